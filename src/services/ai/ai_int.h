/*
 * ai_int.h - private to the AI gateway: the provider table every backend
 * fills (ai_openai.c, ai_local.c), failure classification, prompts.
 */
#ifndef LOCI_SERVICES_AI_INT_H
#define LOCI_SERVICES_AI_INT_H

#include "core/buf.h"
#include "core/metrics.h"
#include "services/ai/ai.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum ai_reason {
    AI_R_NONE,
    AI_R_TIMEOUT,        /* connect, first byte, stall or total: retried */
    AI_R_CONNECT,        /* could not connect / connection lost: retried */
    AI_R_RATE_LIMITED,   /* 429: retried, Retry-After honoured */
    AI_R_SERVER_ERROR,   /* 5xx: retried */
    AI_R_CLIENT_ERROR,   /* other 4xx: next provider */
    AI_R_BAD_RESPONSE,   /* malformed JSON, wrong content type, truncated stream */
    AI_R_INVALID_OUTPUT, /* structured reply failed validation after one repair */
    AI_R_BREAKER_OPEN,
    AI_R_UNSUPPORTED, /* the provider cannot do this (e.g. embeddings) */
};

const char *ai__reason_name(enum ai_reason r);
/* Worth another attempt at the same provider? */
bool ai__reason_is_retryable(enum ai_reason r);

struct ai_fail {
    enum ai_reason reason;
    int status;             /* HTTP status or 0 */
    int64_t retry_after_ms; /* from Retry-After / retry-after-ms; -1 = none */
    bool has_streamed;      /* tokens reached the caller before the failure */
    char msg[256];
};

/* One chat request, rendered for a model provider. */
struct ai_chat_msg {
    const char *role;
    const char *content;
};

struct ai_call {
    const struct ai_chat_msg *msgs;
    size_t n_msgs;
    int max_tokens;
    double temperature;
    const char *schema_name; /* structured reply: a name and a JSON Schema text; */
    const char *schema;      /* NULL for free text */
    ai_token_fn on_token;    /* NULL: not streamed */
    void *token_arg;
};

struct ai_reply {
    struct buf text;
    int64_t prompt_tokens;
    int64_t completion_tokens;
};

enum ai_breaker_state { AI_BREAKER_CLOSED = 0, AI_BREAKER_HALF_OPEN = 1, AI_BREAKER_OPEN = 2 };

struct ai_provider {
    char name[16];
    char model[128];
    /* Model providers: one chat request. Returns 0, or LOCI_EIO with f set. */
    int (*chat)(struct ai_provider *p, const struct ai_call *call, struct ai_reply *out,
                struct ai_fail *f);
    /* NULL when the provider does not embed. */
    int (*embed)(struct ai_provider *p, const char *const *texts, const size_t *lens, size_t n,
                 struct ai_vectors *out, struct ai_fail *f);
    /* Native providers (local) run operations themselves; NULL otherwise. */
    int (*run)(struct ai_provider *p, const struct ai_request *req, struct ai_result *out,
               struct ai_fail *f);
    void (*destroy)(struct ai_provider *p);
    void *impl;

    /* circuit breaker, guarded by mu */
    pthread_mutex_t mu;
    enum ai_breaker_state state;
    int n_failures;    /* consecutive failed attempts */
    int64_t opened_at; /* ms */
    bool is_probing;   /* half-open: the one probe is in flight */
    struct metric_series *m_breaker;
};

struct ai_openai_opts {
    const char *base_url;
    const char *api_key;
    const char *chat_model;
    const char *embed_model;
    const char *headers; /* "Name: value; Name2: value" */
    const char *json_mode;
    int connect_timeout_ms;
    int first_byte_timeout_ms;
    int timeout_ms;
};

int ai__openai_new(const struct ai_openai_opts *o, struct ai_provider **out, char *err,
                   size_t err_n);
struct ai_provider *ai__local_new(int dims);

/* The providers of the chain, in order (ai_check.c). */
size_t ai__chain_len(const struct ai *ai);
struct ai_provider *ai__chain_at(struct ai *ai, size_t i);

/* ---- prompts (ai_prompt.c) ---- */

/* The embedded template file name ("answer.txt"), NULL if unknown. */
const char *ai__template(const char *name);
/* Render template (NUL-terminated) into out, replacing {{key}} with values
 * (already fenced where they hold user content). Unknown keys: LOCI_EINVAL. */
int ai__render(const char *tmpl, const char *const *keys, const char *const *values, size_t n,
               struct buf *out);
/* Append user content fenced as data: control characters stripped, at most
 * max_bytes (cut at a UTF-8 boundary), between markers the content cannot
 * forge (any marker text inside is neutralised). */
int ai__fence(struct buf *out, const char *label, const char *p, size_t n, size_t max_bytes);

#endif
