/*
 * ai.c - the gateway: the provider chain, retries with back-off that
 * honours Retry-After, circuit breakers, the shared response cache,
 * rendering of operations into prompts, checks of structured replies (one
 * repair attempt), citation clean-up, and metrics.
 *
 * Not here: the wire protocol (ai_openai.c), the offline engine
 * (services/offline via ai_local.c), what callers do with the results.
 */
#include "services/ai/ai.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/metrics.h"
#include "services/ai/ai_int.h"
#include "services/jobs/jobs.h"
#include "store/db.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define MAX_PROVIDERS    4
#define MAX_PASSAGES     64
#define MAX_MSGS         64
#define QUESTION_CAP     16384 /* bytes of a question sent to a model */
#define PASSAGE_CAP      8192  /* bytes of one passage sent to a model */
#define PASSAGES_CAP     49152 /* bytes of all passages sent to a model */
#define TEXT_CAP         65536 /* bytes of a TERMS/SUMMARY text sent to a model */
#define MSG_CAP          16384 /* bytes of one earlier turn */
#define MAX_TERMS        50
#define PROMPT_MAX_BYTES (1u << 20)
#define REPLY_MAX_BYTES  (4u << 20)

struct ai {
    struct ai_provider *chain[MAX_PROVIDERS];
    size_t n_chain;
    char chain_text[64];
    struct db *db; /* NULL: no cache */
    int64_t cache_ttl_ms;
    int retries;
    int64_t backoff_base_ms, backoff_cap_ms;
    int breaker_failures;
    int64_t breaker_cooldown_ms;
    int max_tokens;
    char json_mode[16];
};

static struct metric_family *m_duration, *m_tokens, *m_errors, *m_breaker, *m_cache;

static const char *const op_names[] = {"chat", "answer", "terms", "summary"};

const char *ai__reason_name(enum ai_reason r)
{
    switch (r) {
    case AI_R_NONE:
        return "none";
    case AI_R_TIMEOUT:
        return "timeout";
    case AI_R_CONNECT:
        return "connect";
    case AI_R_RATE_LIMITED:
        return "rate_limited";
    case AI_R_SERVER_ERROR:
        return "server_error";
    case AI_R_CLIENT_ERROR:
        return "client_error";
    case AI_R_BAD_RESPONSE:
        return "bad_response";
    case AI_R_INVALID_OUTPUT:
        return "invalid_output";
    case AI_R_BREAKER_OPEN:
        return "breaker_open";
    case AI_R_UNSUPPORTED:
        return "unsupported";
    }
    return "unknown";
}

bool ai__reason_is_retryable(enum ai_reason r)
{
    return r == AI_R_TIMEOUT || r == AI_R_CONNECT || r == AI_R_RATE_LIMITED ||
           r == AI_R_SERVER_ERROR;
}

/* Failures that say the provider is unhealthy or misconfigured (not that
 * this request was bad) count towards opening its breaker. */
static bool counts_for_breaker(const struct ai_fail *f)
{
    if (ai__reason_is_retryable(f->reason) || f->reason == AI_R_BAD_RESPONSE)
        return true;
    return f->reason == AI_R_CLIENT_ERROR &&
           (f->status == 401 || f->status == 403 || f->status == 404);
}

static void metrics_once(void)
{
    m_duration =
        metrics_histogram("loci_ai_request_duration_seconds",
                          "Model requests (one attempt each) by provider and operation",
                          "provider,op", metrics_latency_buckets, metrics_n_latency_buckets);
    m_tokens =
        metrics_counter("loci_ai_tokens_total", "Tokens reported by providers", "provider,kind");
    m_errors = metrics_counter("loci_ai_errors_total", "Failed model requests by reason",
                               "provider,reason");
    m_breaker = metrics_gauge("loci_ai_breaker_state",
                              "Circuit breaker: 0 closed, 1 half-open, 2 open", "provider");
    m_cache = metrics_counter("loci_ai_cache_total", "Response cache lookups", "result");
}

/* ---- circuit breaker ---------------------------------------------------- */

static void breaker_publish(struct ai_provider *p)
{
    metrics_set(p->m_breaker, (double)p->state);
}

/* May this provider be called now? Open: no, until the cool-down passed;
 * then exactly one caller gets through as the half-open probe. */
static bool breaker_allow(struct ai *ai, struct ai_provider *p)
{
    bool ok;
    pthread_mutex_lock(&p->mu);
    if (p->state == AI_BREAKER_CLOSED) {
        ok = true;
    } else if (p->state == AI_BREAKER_OPEN &&
               clock_now_ms() - p->opened_at >= ai->breaker_cooldown_ms) {
        p->state = AI_BREAKER_HALF_OPEN;
        p->is_probing = true;
        ok = true;
    } else if (p->state == AI_BREAKER_HALF_OPEN && !p->is_probing) {
        p->is_probing = true;
        ok = true;
    } else {
        ok = false;
    }
    breaker_publish(p);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void breaker_record(struct ai *ai, struct ai_provider *p, bool is_success)
{
    pthread_mutex_lock(&p->mu);
    if (is_success) {
        p->state = AI_BREAKER_CLOSED;
        p->n_failures = 0;
    } else if (p->state == AI_BREAKER_HALF_OPEN || ++p->n_failures >= ai->breaker_failures) {
        p->state = AI_BREAKER_OPEN;
        p->opened_at = clock_now_ms();
        p->n_failures = 0;
    }
    p->is_probing = false;
    breaker_publish(p);
    pthread_mutex_unlock(&p->mu);
}

/* A probe that ended without a verdict (a bad request) frees the slot. */
static void breaker_release(struct ai_provider *p)
{
    pthread_mutex_lock(&p->mu);
    p->is_probing = false;
    pthread_mutex_unlock(&p->mu);
}

const char *ai_breaker_state(struct ai *ai, const char *provider)
{
    static const char *const names[] = {"closed", "half_open", "open"};
    for (size_t i = 0; i < ai->n_chain; i++) {
        struct ai_provider *p = ai->chain[i];
        if (strcmp(p->name, provider) == 0) {
            pthread_mutex_lock(&p->mu);
            enum ai_breaker_state s = p->state;
            if (s == AI_BREAKER_OPEN && clock_now_ms() - p->opened_at >= ai->breaker_cooldown_ms)
                s = AI_BREAKER_HALF_OPEN;
            pthread_mutex_unlock(&p->mu);
            return names[s];
        }
    }
    return NULL;
}

/* ---- set-up ------------------------------------------------------------- */

static void provider_setup(struct ai_provider *p)
{
    pthread_mutex_init(&p->mu, NULL);
    p->state = AI_BREAKER_CLOSED;
    const char *lv[] = {p->name};
    p->m_breaker = metrics_series(m_breaker, lv);
    breaker_publish(p);
}

static void provider_free(struct ai_provider *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->mu);
    p->destroy(p);
    xfree(p);
}

int ai_new(const struct config *cfg, struct db *db, struct ai **out, char *err, size_t err_n)
{
    metrics_once();
    struct ai *ai = xcalloc(1, sizeof(*ai));
    ai->db = cfg->ai_cache_ttl_s > 0 ? db : NULL;
    ai->cache_ttl_ms = (int64_t)cfg->ai_cache_ttl_s * 1000;
    ai->retries = cfg->ai_retries;
    ai->backoff_base_ms = cfg->ai_backoff_base_ms;
    ai->backoff_cap_ms = cfg->ai_backoff_cap_ms;
    ai->breaker_failures = cfg->ai_breaker_failures;
    ai->breaker_cooldown_ms = cfg->ai_breaker_cooldown_ms;
    ai->max_tokens = cfg->ai_max_tokens;
    snprintf(ai->json_mode, sizeof(ai->json_mode), "%s", cfg->ai_json_mode);
    const char *p = cfg->ai_providers;
    int rc = LOCI_OK;
    while (*p && !rc) {
        size_t n = strcspn(p, ",");
        char name[16];
        snprintf(name, sizeof(name), "%.*s", (int)(n < 15 ? n : 15), p);
        char *t = name + strlen(name);
        while (t > name && t[-1] == ' ')
            *--t = '\0';
        const char *nm = name;
        while (*nm == ' ')
            nm++;
        struct ai_provider *prov = NULL;
        if (strcmp(nm, "local") == 0) {
            prov = ai__local_new(cfg->ai_embed_dims);
        } else if (strcmp(nm, "openai") == 0) {
            struct ai_openai_opts o = {
                .base_url = cfg->ai_base_url,
                .api_key = cfg->ai_api_key,
                .chat_model = cfg->ai_chat_model,
                .embed_model = cfg->ai_embed_model,
                .headers = cfg->ai_headers,
                .json_mode = cfg->ai_json_mode,
                .connect_timeout_ms = cfg->ai_connect_timeout_ms,
                .first_byte_timeout_ms = cfg->ai_first_byte_timeout_ms,
                .timeout_ms = cfg->ai_timeout_ms,
            };
            rc = ai__openai_new(&o, &prov, err, err_n);
        } else {
            snprintf(err, err_n, "invalid value '%s' for ai_providers: unknown provider '%s'",
                     cfg->ai_providers, nm);
            rc = LOCI_EINVAL;
        }
        if (!rc && ai->n_chain == MAX_PROVIDERS) {
            provider_free(prov);
            snprintf(err, err_n, "invalid value for ai_providers: too many providers");
            rc = LOCI_EINVAL;
        } else if (!rc) {
            provider_setup(prov);
            ai->chain[ai->n_chain++] = prov;
            size_t used = strlen(ai->chain_text);
            snprintf(ai->chain_text + used, sizeof(ai->chain_text) - used, "%s%s", used ? "," : "",
                     prov->name);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (!rc && ai->n_chain == 0) {
        snprintf(err, err_n, "invalid value for ai_providers: no provider");
        rc = LOCI_EINVAL;
    }
    if (rc) {
        ai_free(ai);
        return rc;
    }
    *out = ai;
    return LOCI_OK;
}

void ai_free(struct ai *ai)
{
    if (!ai)
        return;
    for (size_t i = 0; i < ai->n_chain; i++)
        provider_free(ai->chain[i]);
    xfree(ai);
}

const char *ai_chain(const struct ai *ai)
{
    return ai->chain_text;
}

size_t ai__chain_len(const struct ai *ai)
{
    return ai->n_chain;
}

struct ai_provider *ai__chain_at(struct ai *ai, size_t i)
{
    return ai->chain[i];
}

/* ---- results ------------------------------------------------------------ */

void ai_result_release(struct ai_result *r)
{
    if (!r)
        return;
    xfree(r->text);
    xfree(r->cited);
    for (size_t i = 0; i < r->n_terms; i++) {
        xfree(r->terms[i].term);
        xfree(r->terms[i].summary);
    }
    xfree(r->terms);
    for (size_t i = 0; i < r->n_relations; i++) {
        xfree(r->relations[i].from);
        xfree(r->relations[i].to);
        xfree(r->relations[i].type);
    }
    xfree(r->relations);
    memset(r, 0, sizeof(*r));
}

void ai_vectors_release(struct ai_vectors *v)
{
    if (!v)
        return;
    xfree(v->v);
    memset(v, 0, sizeof(*v));
}

static void fail_set(struct ai_failure *why, const struct ai_provider *p, const struct ai_fail *f)
{
    if (!why)
        return;
    snprintf(why->provider, sizeof(why->provider), "%s", p ? p->name : "");
    snprintf(why->reason, sizeof(why->reason), "%s", ai__reason_name(f->reason));
    why->status = f->status;
    snprintf(why->message, sizeof(why->message), "%s", f->msg);
}

/* ---- rendering ---------------------------------------------------------- */

/* The rendered conversation for a model provider: system + messages. */
struct prompt {
    struct buf user; /* the operation's user message */
    struct ai_chat_msg msgs[MAX_MSGS + 4];
    size_t n_msgs;
    const char *schema_name;
    const char *schema;
    double temperature;
};

static int render_answer(const struct ai_request *req, struct buf *out)
{
    struct buf history, passages;
    buf_init(&history, PROMPT_MAX_BYTES);
    buf_init(&passages, PROMPT_MAX_BYTES);
    int rc = LOCI_OK;
    for (size_t i = 0; i < req->n_msgs && !rc; i++) {
        char label[48];
        snprintf(label, sizeof(label), "turn %zu (%s)", i + 1,
                 strcmp(req->msgs[i].role, "assistant") == 0 ? "assistant" : "learner");
        rc =
            ai__fence(&history, label, req->msgs[i].content, strlen(req->msgs[i].content), MSG_CAP);
    }
    if (!rc && req->n_msgs == 0)
        rc = buf_append_str(&history, "(none)\n");
    size_t budget = PASSAGES_CAP;
    for (size_t i = 0; i < req->n_passages && !rc; i++) {
        char label[160];
        snprintf(label, sizeof(label), "passage [%zu]%s%.100s", i + 1,
                 req->passages[i].label ? " from " : "",
                 req->passages[i].label ? req->passages[i].label : "");
        for (char *c = label; *c; c++)
            if (*c == '<' || *c == '>' || (unsigned char)*c < 0x20)
                *c = ' ';
        size_t cap = PASSAGE_CAP < budget ? PASSAGE_CAP : budget;
        rc = ai__fence(&passages, label, req->passages[i].text, req->passages[i].n, cap);
        size_t used = req->passages[i].n < cap ? req->passages[i].n : cap;
        budget = budget > used ? budget - used : 0;
    }
    if (!rc && req->n_passages == 0)
        rc = buf_append_str(&passages, "(none: the learner's material has nothing on this)\n");
    struct buf question;
    buf_init(&question, PROMPT_MAX_BYTES);
    if (!rc)
        rc = ai__fence(&question, "question", req->question, strlen(req->question), QUESTION_CAP);
    char n_passages[24], max_words[24];
    snprintf(n_passages, sizeof(n_passages), "%zu", req->n_passages);
    snprintf(max_words, sizeof(max_words), "%d", 250);
    const char *keys[] = {"n_passages", "max_words", "history", "passages", "question"};
    const char *vals[] = {n_passages, max_words, buf_cstr(&history), buf_cstr(&passages),
                          buf_cstr(&question)};
    if (!rc)
        rc = ai__render(ai__template("answer.txt"), keys, vals, 5, out);
    buf_release(&history);
    buf_release(&passages);
    buf_release(&question);
    return rc;
}

static int render_text_op(const struct ai_request *req, const char *tmpl, struct buf *out)
{
    struct buf text;
    buf_init(&text, PROMPT_MAX_BYTES);
    int rc = ai__fence(&text, "text", req->text, req->text_n, TEXT_CAP);
    char max_terms[24];
    snprintf(max_terms, sizeof(max_terms), "%zu", req->max_terms ? req->max_terms : 8);
    const char *keys[] = {"max_terms", "max_words", "text"};
    const char *vals[] = {max_terms, "120", buf_cstr(&text)};
    if (!rc)
        rc = ai__render(ai__template(tmpl), keys, vals, 3, out);
    buf_release(&text);
    return rc;
}

static int prompt_build(const struct ai_request *req, struct prompt *pr)
{
    memset(pr, 0, sizeof(*pr));
    buf_init(&pr->user, PROMPT_MAX_BYTES);
    pr->msgs[pr->n_msgs++] = (struct ai_chat_msg){"system", ai__template("system.txt")};
    pr->temperature = 0.2;
    int rc = LOCI_OK;
    switch (req->op) {
    case AI_OP_CHAT:
        /* The learner's own conversation is sent as is (it is theirs to
         * instruct), only stripped of control characters by the caller. */
        for (size_t i = 0; i < req->n_msgs; i++)
            pr->msgs[pr->n_msgs++] = (struct ai_chat_msg){req->msgs[i].role, req->msgs[i].content};
        pr->temperature = 0.7;
        return LOCI_OK;
    case AI_OP_ANSWER:
        rc = render_answer(req, &pr->user);
        break;
    case AI_OP_TERMS:
        rc = render_text_op(req, "terms.txt", &pr->user);
        pr->schema_name = "terms";
        pr->schema = ai__template("terms.schema.json");
        break;
    case AI_OP_SUMMARY:
        rc = render_text_op(req, "summary.txt", &pr->user);
        break;
    }
    if (!rc)
        pr->msgs[pr->n_msgs++] = (struct ai_chat_msg){"user", buf_cstr(&pr->user)};
    return rc;
}

static void prompt_release(struct prompt *pr)
{
    buf_release(&pr->user);
}

/* ---- cache ---------------------------------------------------------------- */

static void hash_part(crypto_generichash_state *st, const char *s)
{
    crypto_generichash_update(st, (const unsigned char *)s, strlen(s) + 1);
}

static void cache_key(struct ai *ai, const struct ai_provider *p, const struct ai_request *req,
                      const struct prompt *pr, int max_tokens, char out[65])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    char params[96];
    snprintf(params, sizeof(params), "v1|%s|%d|%.2f|%s", op_names[req->op], max_tokens,
             pr->temperature, pr->schema ? ai->json_mode : "-");
    hash_part(&st, params);
    hash_part(&st, p->name);
    hash_part(&st, p->model);
    hash_part(&st, req->cache_scope);
    for (size_t i = 0; i < pr->n_msgs; i++) {
        hash_part(&st, pr->msgs[i].role);
        hash_part(&st, pr->msgs[i].content);
    }
    unsigned char h[32];
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2hex(out, 65, h, sizeof(h));
}

static bool cache_get(struct ai *ai, const char *key, struct ai_reply *out)
{
    struct db_conn *c;
    if (db_acquire(ai->db, &c))
        return false;
    struct db_stmt *st;
    bool hit = false;
    if (db_prepare(c,
                   "SELECT reply, prompt_tokens, completion_tokens FROM ai_cache "
                   "WHERE key = ? AND expires_at > ?",
                   &st) == 0) {
        db_bind_text(st, 1, key, 64);
        db_bind_int64(st, 2, clock_now_ms());
        if (db_step(st) == LOCI_ROW) {
            size_t n;
            const char *t = db_col_text(st, 0, &n);
            hit = buf_append(&out->text, t, n) == 0;
            out->prompt_tokens = db_col_int64(st, 1);
            out->completion_tokens = db_col_int64(st, 2);
        }
        db_stmt_done(st);
    }
    db_release(c);
    metrics_add(metrics_series(m_cache, (const char *[]){hit ? "hit" : "miss"}), 1);
    return hit;
}

static void cache_put(struct ai *ai, const char *key, const struct ai_provider *p,
                      const struct ai_reply *r, const struct log_ctx *log)
{
    struct db_conn *c;
    if (db_acquire(ai->db, &c))
        return;
    struct db_stmt *st;
    int rc =
        db_prepare(c,
                   "INSERT INTO ai_cache (key, provider, model, reply, prompt_tokens, "
                   "completion_tokens, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT (key) DO UPDATE SET reply = excluded.reply, "
                   "prompt_tokens = excluded.prompt_tokens, "
                   "completion_tokens = excluded.completion_tokens, "
                   "created_at = excluded.created_at, expires_at = excluded.expires_at",
                   &st);
    if (!rc) {
        int64_t now = clock_now_ms();
        db_bind_text(st, 1, key, 64);
        db_bind_text(st, 2, p->name, (size_t)-1);
        db_bind_text(st, 3, p->model, (size_t)-1);
        db_bind_text(st, 4, r->text.p ? r->text.p : "", r->text.len);
        db_bind_int64(st, 5, r->prompt_tokens);
        db_bind_int64(st, 6, r->completion_tokens);
        db_bind_int64(st, 7, now);
        db_bind_int64(st, 8, now + ai->cache_ttl_ms);
        rc = db_run(st, NULL);
    }
    if (rc)
        log_warn(log, "ai cache write failed: %s", db_errmsg(c));
    db_release(c);
}

int ai_cache_purge(struct db *db, int64_t now, int64_t *out_n)
{
    struct db_conn *c;
    int rc = db_acquire(db, &c);
    if (rc)
        return rc;
    struct db_stmt *st;
    rc = db_prepare(c, "DELETE FROM ai_cache WHERE expires_at <= ?", &st);
    if (!rc) {
        db_bind_int64(st, 1, now);
        rc = db_run(st, out_n);
    }
    db_release(c);
    return rc;
}

/* ---- structured replies --------------------------------------------------- */

/* Models often wrap JSON in Markdown fences despite being asked not to. */
static struct str unfence_json(const char *p, size_t n)
{
    struct str s = {p, n};
    while (s.n && (*s.p == ' ' || *s.p == '\n' || *s.p == '\r' || *s.p == '\t')) {
        s.p++;
        s.n--;
    }
    if (str_has_prefix(s, "```")) {
        const char *nl = memchr(s.p, '\n', s.n);
        if (nl) {
            s.n -= (size_t)(nl + 1 - s.p);
            s.p = nl + 1;
        }
        while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\n' || s.p[s.n - 1] == '\r'))
            s.n--;
        if (s.n >= 3 && memcmp(s.p + s.n - 3, "```", 3) == 0)
            s.n -= 3;
    }
    return s;
}

static const char *const relation_types[] = {"is_a",       "part_of",     "causes",    "uses",
                                             "example_of", "opposite_of", "related_to"};

static const char *find_term(const struct ai_result *r, const char *t)
{
    for (size_t i = 0; i < r->n_terms; i++)
        if (strcasecmp(r->terms[i].term, t) == 0)
            return r->terms[i].term;
    return NULL;
}

static bool is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* Check a TERMS reply and fill r. On failure msg says what is wrong (it is
 * sent back to the model in the repair attempt). */
static int parse_terms(const char *p, size_t n, size_t max_terms, struct ai_result *r, char *msg,
                       size_t msg_n)
{
    struct str s = unfence_json(p, n);
    json_error_t je;
    json_t *j = json_loadb(s.p, s.n, 0, &je);
    int rc = LOCI_EUNPROCESSABLE;
    if (!j) {
        snprintf(msg, msg_n, "it is not valid JSON (%s at line %d)", je.text, je.line);
        return rc;
    }
    json_t *terms = json_object_get(j, "terms");
    if (!json_is_object(j) || !json_is_array(terms)) {
        snprintf(msg, msg_n, "it must be an object with a \"terms\" array");
        goto out;
    }
    size_t nt = json_array_size(terms);
    if (nt == 0) {
        snprintf(msg, msg_n, "\"terms\" is empty");
        goto out;
    }
    if (nt > max_terms)
        nt = max_terms;
    r->terms = xcalloc(nt, sizeof(*r->terms));
    for (size_t i = 0; i < nt; i++) {
        json_t *t = json_array_get(terms, i);
        json_t *term = json_object_get(t, "term");
        json_t *sum = json_object_get(t, "summary");
        if (!json_is_string(term) || json_string_length(term) == 0 ||
            json_string_length(term) > 200 || is_blank(json_string_value(term))) {
            snprintf(msg, msg_n, "terms[%zu].term must be a non-empty string of at most 200 bytes",
                     i);
            goto out;
        }
        if (sum && !json_is_string(sum)) {
            snprintf(msg, msg_n, "terms[%zu].summary must be a string", i);
            goto out;
        }
        struct ai_term *at = &r->terms[r->n_terms++];
        at->term = xstrdup(json_string_value(term));
        at->summary = xstrdup(sum ? json_string_value(sum) : "");
        at->score = 1.0 - 0.9 * (double)i / (double)nt;
    }
    json_t *rels = json_object_get(j, "relations");
    if (rels && !json_is_array(rels)) {
        snprintf(msg, msg_n, "\"relations\" must be an array");
        goto out;
    }
    size_t nr = json_array_size(rels);
    r->relations = nr ? xcalloc(nr, sizeof(*r->relations)) : NULL;
    for (size_t i = 0; i < nr; i++) {
        json_t *rel = json_array_get(rels, i);
        json_t *from = json_object_get(rel, "from"), *to = json_object_get(rel, "to");
        json_t *type = json_object_get(rel, "type");
        if (!json_is_string(from) || !json_is_string(to))
            continue; /* a relation is optional detail: drop, do not fail */
        const char *f = find_term(r, json_string_value(from));
        const char *t = find_term(r, json_string_value(to));
        if (!f || !t || f == t)
            continue; /* between terms it did not list: not trusted */
        const char *ty = "related_to";
        for (size_t k = 0;
             json_is_string(type) && k < sizeof(relation_types) / sizeof(*relation_types); k++)
            if (strcmp(json_string_value(type), relation_types[k]) == 0)
                ty = relation_types[k];
        struct ai_relation *ar = &r->relations[r->n_relations++];
        ar->from = xstrdup(f);
        ar->to = xstrdup(t);
        ar->type = xstrdup(ty);
    }
    rc = LOCI_OK;
out:
    json_decref(j);
    return rc;
}

/* Keep [n] markers that name a given passage; drop the others (a model
 * citing a passage it was not given). Fills r->text and r->cited. */
static void clean_citations(const char *p, size_t n, size_t n_passages, struct ai_result *r)
{
    struct buf out;
    buf_init(&out, n + 1);
    bool seen[MAX_PASSAGES + 1] = {false};
    for (size_t i = 0; i < n;) {
        if (p[i] == '[') {
            size_t k = i + 1;
            long long v = 0;
            while (k < n && k - i <= 4 && p[k] >= '0' && p[k] <= '9')
                v = v * 10 + (p[k++] - '0');
            if (k > i + 1 && k < n && p[k] == ']') {
                if (v >= 1 && (size_t)v <= n_passages) {
                    seen[v] = true;
                    buf_append(&out, p + i, k + 1 - i);
                } else if (out.len && out.p[out.len - 1] == ' ' &&
                           (k + 1 >= n || p[k + 1] != '[')) {
                    out.p[--out.len] = '\0'; /* no dangling space before the cut marker */
                }
                i = k + 1;
                continue;
            }
        }
        buf_append_char(&out, p[i++]);
    }
    size_t nc = 0;
    for (size_t i = 1; i <= n_passages; i++)
        nc += seen[i];
    r->cited = nc ? xcalloc(nc, sizeof(int)) : NULL;
    for (size_t i = 1; i <= n_passages; i++)
        if (seen[i])
            r->cited[r->n_cited++] = (int)i;
    r->is_found = nc > 0;
    r->text = buf_detach(&out, NULL);
}

/* Turn a model reply into the result of req. LOCI_EUNPROCESSABLE with msg
 * when a structured reply does not check out. */
static int finish_reply(const struct ai_request *req, const struct ai_reply *rep,
                        struct ai_result *r, char *msg, size_t msg_n)
{
    const char *t = rep->text.p ? rep->text.p : "";
    switch (req->op) {
    case AI_OP_TERMS:
        return parse_terms(t, rep->text.len, req->max_terms ? req->max_terms : 8, r, msg, msg_n);
    case AI_OP_ANSWER:
        clean_citations(t, rep->text.len, req->n_passages, r);
        break;
    case AI_OP_CHAT:
    case AI_OP_SUMMARY:
        r->text = xstrdup(t);
        break;
    }
    if (is_blank(r->text)) {
        snprintf(msg, msg_n, "the reply is empty");
        return LOCI_EUNPROCESSABLE;
    }
    return LOCI_OK;
}

/* ---- calling a model provider ---------------------------------------------- */

static void observe(struct ai_provider *p, enum ai_op op, int64_t t0, const struct ai_reply *rep,
                    const struct ai_fail *f, int rc)
{
    double s = (double)(clock_mono_ns() - t0) / 1e9;
    metrics_observe(metrics_series(m_duration, (const char *[]){p->name, op_names[op]}), s);
    if (rc) {
        metrics_add(metrics_series(m_errors, (const char *[]){p->name, ai__reason_name(f->reason)}),
                    1);
        return;
    }
    if (rep->prompt_tokens)
        metrics_add(metrics_series(m_tokens, (const char *[]){p->name, "prompt"}),
                    (double)rep->prompt_tokens);
    if (rep->completion_tokens)
        metrics_add(metrics_series(m_tokens, (const char *[]){p->name, "completion"}),
                    (double)rep->completion_tokens);
}

static int64_t backoff_ms(struct ai *ai, int retry)
{
    int64_t bound = ai->backoff_base_ms;
    for (int i = 1; i < retry && bound < ai->backoff_cap_ms; i++)
        bound *= 2;
    if (bound > ai->backoff_cap_ms)
        bound = ai->backoff_cap_ms;
    return bound / 2 + (int64_t)randombytes_uniform((uint32_t)(bound / 2 + 1));
}

/* One provider, with retries. The caller already got breaker_allow(). */
static int call_with_retries(struct ai *ai, struct ai_provider *p, enum ai_op op,
                             const struct ai_call *call, struct ai_reply *rep, int *attempts,
                             const struct log_ctx *log, struct ai_fail *f)
{
    for (int attempt = 0;; attempt++) {
        if (attempt > 0 && !breaker_allow(ai, p)) {
            f->reason = AI_R_BREAKER_OPEN;
            snprintf(f->msg, sizeof(f->msg), "circuit breaker opened");
            return LOCI_EUNAVAILABLE;
        }
        buf_reset(&rep->text);
        rep->prompt_tokens = rep->completion_tokens = 0;
        memset(f, 0, sizeof(*f));
        f->retry_after_ms = -1;
        int64_t t0 = clock_mono_ns();
        (*attempts)++;
        int rc = p->chat(p, call, rep, f);
        observe(p, op, t0, rep, f, rc);
        if (!rc) {
            breaker_record(ai, p, true);
            return LOCI_OK;
        }
        if (counts_for_breaker(f))
            breaker_record(ai, p, false);
        else
            breaker_release(p);
        if (f->has_streamed && call->on_token)
            call->on_token(call->token_arg, NULL, 0);
        log_warn(log, "ai provider '%s' failed (%s): %s", p->name, ai__reason_name(f->reason),
                 f->msg);
        if (!ai__reason_is_retryable(f->reason) || attempt >= ai->retries)
            return rc;
        int64_t wait = f->retry_after_ms >= 0 ? f->retry_after_ms : backoff_ms(ai, attempt + 1);
        if (wait > ai->backoff_cap_ms) {
            snprintf(f->msg + strlen(f->msg), sizeof(f->msg) - strlen(f->msg),
                     " (asked to wait %lld ms, more than ai_backoff_cap_ms)", (long long)wait);
            return rc;
        }
        clock_sleep_ms(wait);
    }
}

/* A model provider for one request: cache, breaker, retries, the check of
 * a structured reply with one repair attempt. */
static int run_model(struct ai *ai, struct ai_provider *p, const struct ai_request *req,
                     const struct prompt *pr, bool use_cache, struct ai_result *r,
                     struct ai_fail *f)
{
    int max_tokens = req->max_tokens > 0 ? req->max_tokens : ai->max_tokens;
    bool is_streamed = req->on_token && req->op != AI_OP_TERMS;
    char key[65];
    struct ai_reply rep = {0};
    buf_init(&rep.text, REPLY_MAX_BYTES);
    int rc;
    if (use_cache) {
        cache_key(ai, p, req, pr, max_tokens, key);
        if (cache_get(ai, key, &rep)) {
            char msg[8];
            rc = finish_reply(req, &rep, r, msg, sizeof(msg));
            if (!rc) {
                r->is_cached = true;
                r->prompt_tokens = rep.prompt_tokens;
                r->completion_tokens = rep.completion_tokens;
                if (is_streamed && r->text)
                    req->on_token(req->token_arg, r->text, strlen(r->text));
                goto out;
            }
            ai_result_release(r);
            buf_reset(&rep.text);
        }
    }
    if (!breaker_allow(ai, p)) {
        f->reason = AI_R_BREAKER_OPEN;
        snprintf(f->msg, sizeof(f->msg), "circuit breaker open");
        metrics_add(metrics_series(m_errors, (const char *[]){p->name, "breaker_open"}), 1);
        rc = LOCI_EUNAVAILABLE;
        goto out;
    }
    struct ai_call call = {
        .msgs = pr->msgs,
        .n_msgs = pr->n_msgs,
        .max_tokens = max_tokens,
        .temperature = pr->temperature,
        .schema_name = pr->schema_name,
        .schema = pr->schema,
        .on_token = is_streamed ? req->on_token : NULL,
        .token_arg = req->token_arg,
    };
    rc = call_with_retries(ai, p, req->op, &call, &rep, &r->attempts, req->log, f);
    if (rc)
        goto out;
    char msg[200];
    rc = finish_reply(req, &rep, r, msg, sizeof(msg));
    if (rc == LOCI_EUNPROCESSABLE && pr->schema) {
        /* One repair: show the model its reply and what is wrong with it. */
        log_warn(req->log, "ai provider '%s' gave an invalid structured reply: %s", p->name, msg);
        ai_result_release(r);
        r->attempts = 0;
        struct ai_chat_msg fix[MAX_MSGS + 6];
        memcpy(fix, pr->msgs, pr->n_msgs * sizeof(*fix));
        size_t nf = pr->n_msgs;
        char *bad = buf_detach(&rep.text, NULL);
        buf_init(&rep.text, REPLY_MAX_BYTES);
        struct buf repair;
        buf_init(&repair, 4096);
        const char *keys[] = {"error"};
        const char *vals[] = {msg};
        ai__render(ai__template("repair.txt"), keys, vals, 1, &repair);
        fix[nf++] = (struct ai_chat_msg){"assistant", bad};
        fix[nf++] = (struct ai_chat_msg){"user", buf_cstr(&repair)};
        call.msgs = fix;
        call.n_msgs = nf;
        int tries = 0;
        if (!breaker_allow(ai, p)) {
            rc = LOCI_EUNAVAILABLE;
        } else {
            rc = call_with_retries(ai, p, req->op, &call, &rep, &tries, req->log, f);
            if (!rc)
                rc = finish_reply(req, &rep, r, msg, sizeof(msg));
        }
        r->attempts += tries + 1;
        xfree(bad);
        buf_release(&repair);
    }
    if (rc == LOCI_EUNPROCESSABLE) {
        ai_result_release(r);
        f->reason = AI_R_INVALID_OUTPUT;
        snprintf(f->msg, sizeof(f->msg), "invalid reply: %s", msg);
        metrics_add(metrics_series(m_errors, (const char *[]){p->name, "invalid_output"}), 1);
        rc = LOCI_EIO;
        goto out;
    }
    if (rc)
        goto out;
    r->prompt_tokens = rep.prompt_tokens;
    r->completion_tokens = rep.completion_tokens;
    if (use_cache)
        cache_put(ai, key, p, &rep, req->log);
out:
    buf_release(&rep.text);
    return rc;
}

static int check_request(const struct ai_request *req)
{
    if ((unsigned)req->op > AI_OP_SUMMARY || req->n_msgs > MAX_MSGS ||
        req->n_passages > MAX_PASSAGES || req->max_terms > MAX_TERMS)
        return LOCI_EINVAL;
    for (size_t i = 0; i < req->n_msgs; i++)
        if (!req->msgs[i].role || !req->msgs[i].content ||
            (strcmp(req->msgs[i].role, "user") != 0 && strcmp(req->msgs[i].role, "assistant") != 0))
            return LOCI_EINVAL;
    for (size_t i = 0; i < req->n_passages; i++)
        if (!req->passages[i].text)
            return LOCI_EINVAL;
    switch (req->op) {
    case AI_OP_CHAT:
        return req->n_msgs ? LOCI_OK : LOCI_EINVAL;
    case AI_OP_ANSWER:
        return req->question && req->question[0] ? LOCI_OK : LOCI_EINVAL;
    case AI_OP_TERMS:
    case AI_OP_SUMMARY:
        return req->text ? LOCI_OK : LOCI_EINVAL;
    }
    return LOCI_EINVAL;
}

int ai_run(struct ai *ai, const struct ai_request *req, struct ai_result *out,
           struct ai_failure *why)
{
    memset(out, 0, sizeof(*out));
    if (why)
        memset(why, 0, sizeof(*why));
    int rc = check_request(req);
    if (rc)
        return rc;
    int64_t t0 = clock_mono_ns();
    struct prompt pr;
    bool has_prompt = false;
    struct ai_fail f = {.reason = AI_R_NONE, .retry_after_ms = -1};
    struct ai_provider *last = NULL;
    int attempts = 0;
    rc = LOCI_EUNAVAILABLE;
    for (size_t i = 0; i < ai->n_chain; i++) {
        struct ai_provider *p = ai->chain[i];
        if (req->only_provider && strcmp(req->only_provider, p->name) != 0)
            continue;
        last = p;
        memset(&f, 0, sizeof(f));
        f.retry_after_ms = -1;
        if (p->run) {
            int64_t t1 = clock_mono_ns();
            rc = p->run(p, req, out, &f);
            struct ai_reply none = {0};
            observe(p, req->op, t1, &none, &f, rc);
            attempts++;
        } else {
            if (!has_prompt) {
                rc = prompt_build(req, &pr);
                has_prompt = true;
                if (rc)
                    break;
            }
            bool use_cache = ai->db && req->cache_scope && !req->only_provider;
            rc = run_model(ai, p, req, &pr, use_cache, out, &f);
            attempts += out->attempts;
        }
        if (!rc) {
            snprintf(out->provider, sizeof(out->provider), "%s", p->name);
            snprintf(out->model, sizeof(out->model), "%s", p->model);
            break;
        }
        ai_result_release(out);
        if (rc == LOCI_EINVAL)
            break;
        rc = LOCI_EUNAVAILABLE;
    }
    if (has_prompt)
        prompt_release(&pr);
    if (rc) {
        if (!last) {
            f.reason = AI_R_UNSUPPORTED;
            snprintf(f.msg, sizeof(f.msg), "provider '%s' is not in the chain",
                     req->only_provider ? req->only_provider : "");
        }
        fail_set(why, last, &f);
        return rc;
    }
    out->attempts = attempts;
    out->ms = (double)(clock_mono_ns() - t0) / 1e6;
    return LOCI_OK;
}

int ai_embed(struct ai *ai, const char *const *texts, const size_t *lens, size_t n,
             const struct log_ctx *log, struct ai_vectors *out, struct ai_failure *why)
{
    memset(out, 0, sizeof(*out));
    if (why)
        memset(why, 0, sizeof(*why));
    struct ai_fail f = {.reason = AI_R_UNSUPPORTED, .retry_after_ms = -1};
    snprintf(f.msg, sizeof(f.msg), "no provider in the chain embeds");
    struct ai_provider *last = NULL;
    for (size_t i = 0; i < ai->n_chain; i++) {
        struct ai_provider *p = ai->chain[i];
        if (!p->embed)
            continue;
        last = p;
        int rc = LOCI_EUNAVAILABLE;
        for (int attempt = 0; attempt <= ai->retries; attempt++) {
            if (!breaker_allow(ai, p)) {
                f.reason = AI_R_BREAKER_OPEN;
                snprintf(f.msg, sizeof(f.msg), "circuit breaker open");
                break;
            }
            memset(&f, 0, sizeof(f));
            f.retry_after_ms = -1;
            int64_t t0 = clock_mono_ns();
            rc = p->embed(p, texts, lens, n, out, &f);
            metrics_observe(metrics_series(m_duration, (const char *[]){p->name, "embed"}),
                            (double)(clock_mono_ns() - t0) / 1e9);
            if (!rc) {
                breaker_record(ai, p, true);
                snprintf(out->provider, sizeof(out->provider), "%s", p->name);
                return LOCI_OK;
            }
            /* the duration is observed above, under "embed" */
            metrics_add(
                metrics_series(m_errors, (const char *[]){p->name, ai__reason_name(f.reason)}), 1);
            ai_vectors_release(out);
            if (rc == LOCI_EINVAL) {
                breaker_release(p);
                fail_set(why, p, &f);
                return rc;
            }
            if (counts_for_breaker(&f))
                breaker_record(ai, p, false);
            else
                breaker_release(p);
            log_warn(log, "ai provider '%s' failed to embed (%s): %s", p->name,
                     ai__reason_name(f.reason), f.msg);
            if (!ai__reason_is_retryable(f.reason) || attempt == ai->retries)
                break;
            int64_t wait = f.retry_after_ms >= 0 ? f.retry_after_ms : backoff_ms(ai, attempt + 1);
            if (wait > ai->backoff_cap_ms)
                break;
            clock_sleep_ms(wait);
        }
    }
    fail_set(why, last, &f);
    return LOCI_EUNAVAILABLE;
}

static int purge_job(struct job *j, void *arg)
{
    (void)j;
    int64_t n = 0;
    return ai_cache_purge(arg, clock_now_ms(), &n);
}

int ai_register_jobs(struct jobs *js, struct db *db, char *err, size_t err_n)
{
    jobs_register(js, "ai.cache_purge", purge_job, db);
    return jobs_schedule(js, "purge_ai_cache", "17 * * * *", "ai.cache_purge", NULL, err, err_n);
}
