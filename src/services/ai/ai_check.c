/*
 * ai_check.c - `loci ai test`: how an operator verifies their model
 * settings. Every provider of the chain is exercised on its own, then the
 * chain as a whole, and each check is timed.
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "services/ai/ai_int.h"

#include <stdio.h>
#include <string.h>

static const char check_text[] =
    "Photosynthesis is the process by which green plants turn light energy into chemical "
    "energy. Chlorophyll in the chloroplasts absorbs the light. Carbon dioxide and water "
    "become glucose and oxygen. Cellular respiration later releases the stored energy.";

struct stream_probe {
    int64_t t0;
    double first_ms;
    int pieces;
};

static void probe_token(void *arg, const char *p, size_t n)
{
    (void)n;
    struct stream_probe *s = arg;
    if (!p) {
        s->pieces = 0;
        return;
    }
    if (s->pieces++ == 0)
        s->first_ms = (double)(clock_mono_ns() - s->t0) / 1e6;
}

static void add(json_t *checks, const char *provider, const char *check, bool ok, double ms,
                const char *detail)
{
    json_array_append_new(checks, json_pack("{s:s, s:s, s:b, s:f, s:s}", "provider", provider,
                                            "check", check, "ok", ok, "ms", ms, "detail", detail));
}

static void failed(char *d, size_t n, const struct ai_failure *why)
{
    snprintf(d, n, "%s%s%s", why->reason, why->message[0] ? ": " : "", why->message);
}

/* Run req and record the outcome; detail from the result on success. */
static bool run_check(struct ai *ai, json_t *checks, const char *provider, const char *name,
                      struct ai_request *req, struct stream_probe *sp)
{
    struct ai_result r;
    struct ai_failure why;
    char d[400];
    int64_t t0 = clock_mono_ns();
    if (sp)
        sp->t0 = t0;
    int rc = ai_run(ai, req, &r, &why);
    double ms = (double)(clock_mono_ns() - t0) / 1e6;
    if (rc) {
        failed(d, sizeof(d), &why);
        add(checks, provider, name, false, ms, d);
        return false;
    }
    if (req->op == AI_OP_TERMS) {
        snprintf(d, sizeof(d), "%zu terms, first '%s'", r.n_terms,
                 r.n_terms ? r.terms[0].term : "");
    } else if (sp) {
        snprintf(d, sizeof(d), "first token after %.0f ms, %d pieces", sp->first_ms, sp->pieces);
    } else {
        snprintf(d, sizeof(d), "%s%s%.80s%s", req->only_provider ? "" : "answered by ",
                 req->only_provider ? "" : r.provider, req->only_provider ? r.text : "",
                 r.text && strlen(r.text) > 80 && req->only_provider ? "..." : "");
        for (char *c = d; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
    }
    bool ok = req->op != AI_OP_TERMS || r.n_terms > 0;
    if (r.prompt_tokens || r.completion_tokens) {
        size_t used = strlen(d);
        snprintf(d + used, sizeof(d) - used, " (%lld+%lld tokens)", (long long)r.prompt_tokens,
                 (long long)r.completion_tokens);
    }
    add(checks, provider, name, ok, ms, d);
    ai_result_release(&r);
    return ok;
}

int ai_check(struct ai *ai, json_t **out)
{
    json_t *checks = json_array();
    bool all_ok = true;
    struct ai_passage passage = {check_text, sizeof(check_text) - 1, "check"};
    struct ai_msg ping = {"user", "Reply with the single word: pong"};
    for (size_t i = 0; i < ai__chain_len(ai); i++) {
        struct ai_provider *p = ai__chain_at(ai, i);
        struct ai_request req = {.only_provider = p->name, .max_tokens = 64};
        if (!p->run) {
            req.op = AI_OP_CHAT;
            req.msgs = &ping;
            req.n_msgs = 1;
            all_ok &= run_check(ai, checks, p->name, "chat", &req, NULL);
            struct stream_probe sp = {0};
            req.on_token = probe_token;
            req.token_arg = &sp;
            all_ok &= run_check(ai, checks, p->name, "stream", &req, &sp);
            req.on_token = NULL;
            req.max_tokens = 0;
        } else {
            req.op = AI_OP_ANSWER;
            req.question = "What does chlorophyll do?";
            req.passages = &passage;
            req.n_passages = 1;
            all_ok &= run_check(ai, checks, p->name, "answer", &req, NULL);
        }
        req = (struct ai_request){.op = AI_OP_TERMS,
                                  .text = check_text,
                                  .text_n = sizeof(check_text) - 1,
                                  .max_terms = 5,
                                  .only_provider = p->name};
        all_ok &= run_check(ai, checks, p->name, "json", &req, NULL);
        if (p->embed) {
            const char *texts[] = {check_text};
            size_t lens[] = {sizeof(check_text) - 1};
            struct ai_vectors v = {0};
            struct ai_fail f = {.retry_after_ms = -1};
            int64_t t0 = clock_mono_ns();
            int rc = p->embed(p, texts, lens, 1, &v, &f);
            double ms = (double)(clock_mono_ns() - t0) / 1e6;
            char d[320];
            if (rc)
                snprintf(d, sizeof(d), "%s: %s", ai__reason_name(f.reason), f.msg);
            else
                snprintf(d, sizeof(d), "%d dimensions (%s)", v.dims, v.embedder);
            add(checks, p->name, "embed", rc == 0, ms, d);
            all_ok &= rc == 0;
            ai_vectors_release(&v);
        }
    }
    struct ai_request req = {.op = AI_OP_ANSWER,
                             .question = "What does chlorophyll do?",
                             .passages = &passage,
                             .n_passages = 1};
    all_ok &= run_check(ai, checks, "chain", "answer", &req, NULL);
    *out = json_pack("{s:s, s:b, s:o}", "chain", ai_chain(ai), "ok", all_ok, "checks", checks);
    return *out ? LOCI_OK : LOCI_ENOMEM;
}
