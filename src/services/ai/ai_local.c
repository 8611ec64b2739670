/*
 * ai_local.c - the `local` provider: runs gateway operations on Loci's
 * offline engine (services/offline). Always available, no network, no
 * model weights; deterministic.
 *
 * It cannot hold a free conversation (AI_OP_CHAT): that needs a model, so
 * it reports "unsupported" and the chain moves on (or fails when local is
 * the last provider).
 */
#include "core/alloc.h"
#include "core/err.h"
#include "services/ai/ai_int.h"
#include "services/offline/offline.h"

#include <stdio.h>
#include <string.h>

struct local {
    int dims;
};

static void stream_all(const struct ai_request *req, const char *text)
{
    if (req->on_token && text && text[0])
        req->on_token(req->token_arg, text, strlen(text));
}

static int local_answer(const struct ai_request *req, struct ai_result *out)
{
    struct offline_passage ps[64];
    size_t n = req->n_passages < 64 ? req->n_passages : 64;
    for (size_t i = 0; i < n; i++)
        ps[i] = (struct offline_passage){req->passages[i].text, req->passages[i].n};
    struct offline_answer a;
    int rc = offline_answer(req->question, strlen(req->question), ps, n, NULL, &a);
    if (rc)
        return rc;
    out->text = a.markdown;
    out->is_found = a.is_found;
    out->n_cited = a.n_cited;
    out->cited = a.cited;
    a.markdown = NULL;
    a.cited = NULL;
    a.n_cited = 0;
    offline_answer_release(&a);
    stream_all(req, out->text);
    return LOCI_OK;
}

/* Terms from key-term extraction; each summary is the sentence of the text
 * that best defines the term ("" when none does). */
static int local_terms(const struct ai_request *req, struct ai_result *out)
{
    struct offline_terms t;
    int rc = offline_keyterms(req->text, req->text_n, req->max_terms ? req->max_terms : 8, &t);
    if (rc)
        return rc;
    out->terms = t.n_terms ? xcalloc(t.n_terms, sizeof(*out->terms)) : NULL;
    for (size_t i = 0; i < t.n_terms && !rc; i++) {
        char *def = NULL;
        rc = offline_define(t.terms[i].term, strlen(t.terms[i].term), req->text, req->text_n, &def);
        struct ai_term *at = &out->terms[out->n_terms++];
        at->term = xstrdup(t.terms[i].term);
        at->summary = def ? def : xstrdup("");
        at->score = t.terms[i].score;
    }
    offline_terms_release(&t);
    return rc;
}

static int local_run(struct ai_provider *p, const struct ai_request *req, struct ai_result *out,
                     struct ai_fail *f)
{
    (void)p;
    int rc;
    switch (req->op) {
    case AI_OP_ANSWER:
        rc = local_answer(req, out);
        break;
    case AI_OP_TERMS:
        rc = local_terms(req, out);
        break;
    case AI_OP_SUMMARY:
        rc = offline_summarize(req->text, req->text_n, NULL, &out->text);
        if (!rc)
            stream_all(req, out->text);
        break;
    case AI_OP_CHAT:
    default:
        f->reason = AI_R_UNSUPPORTED;
        snprintf(f->msg, sizeof(f->msg),
                 "the local provider cannot hold a free conversation; configure a model "
                 "(ai_providers=openai,local)");
        return LOCI_EIO;
    }
    if (rc) {
        f->reason = AI_R_BAD_RESPONSE;
        snprintf(f->msg, sizeof(f->msg), "offline engine failed (%d)", rc);
        return rc == LOCI_EINVAL ? LOCI_EINVAL : LOCI_EIO;
    }
    return LOCI_OK;
}

static int local_embed(struct ai_provider *p, const char *const *texts, const size_t *lens,
                       size_t n, struct ai_vectors *out, struct ai_fail *f)
{
    struct local *l = p->impl;
    out->n = n;
    out->dims = l->dims;
    out->v = xcalloc(n ? n * (size_t)l->dims : 1, sizeof(float));
    int rc = offline_embed(texts, lens, n, l->dims, out->v);
    if (rc) {
        f->reason = AI_R_CLIENT_ERROR;
        snprintf(f->msg, sizeof(f->msg), "offline embedding failed (%d)", rc);
        return rc;
    }
    snprintf(out->embedder, sizeof(out->embedder), "local:hash-v1:%d", l->dims);
    return LOCI_OK;
}

static void local_destroy(struct ai_provider *p)
{
    xfree(p->impl);
}

struct ai_provider *ai__local_new(int dims)
{
    struct ai_provider *p = xcalloc(1, sizeof(*p));
    struct local *l = xcalloc(1, sizeof(*l));
    l->dims = dims;
    snprintf(p->name, sizeof(p->name), "local");
    snprintf(p->model, sizeof(p->model), "offline-v1");
    p->run = local_run;
    p->embed = local_embed;
    p->destroy = local_destroy;
    p->impl = l;
    return p;
}
