/*
 * ai.h - the AI gateway: every call to a model goes through here.
 *
 * A gateway holds a chain of providers from configuration ("openai,local"):
 *   - openai: any OpenAI-compatible endpoint (OpenAI, Ollama, llama.cpp
 *     server, vLLM, LM Studio) over HTTP with libcurl;
 *   - local:  Loci's offline engine (services/offline), always available.
 * A request names an operation (answer a question from passages, extract
 * terms, summarise, free chat). For a model provider the gateway renders the
 * operation's embedded prompt template, with user content fenced off as data,
 * and checks structured (JSON) replies; the local provider runs the
 * operation natively. Per provider: timeouts, retries with back-off that
 * honours Retry-After, a circuit breaker; when a provider is open or fails,
 * the next in the chain answers and the result names it. Model replies are
 * cached in the database (table ai_cache) so every instance shares them.
 *
 * Calls block on the network: run them from jobs or CLI commands, never on
 * an HTTP thread. A struct ai is safe from any thread once created. libcurl
 * must be initialised once per process first (mail_global_init() does).
 */
#ifndef LOCI_SERVICES_AI_H
#define LOCI_SERVICES_AI_H

#include "core/log.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct db;
struct ai;

enum ai_op {
    AI_OP_CHAT,    /* free conversation: msgs */
    AI_OP_ANSWER,  /* question + passages (+ earlier turns in msgs) -> Markdown with [n] */
    AI_OP_TERMS,   /* text -> key terms with short summaries and relations */
    AI_OP_SUMMARY, /* text -> a short summary */
};

struct ai_msg {
    const char *role; /* "user" or "assistant" (system prompts come from templates) */
    const char *content;
};

struct ai_passage {
    const char *text; /* UTF-8; n bytes */
    size_t n;
    const char *label; /* where it comes from ("notes.pdf, p. 3"); may be NULL */
};

/* Streaming: called with each piece of text in order, from the calling
 * thread. p == NULL (n == 0) means "reset": a provider failed after it had
 * streamed part of its reply and the next one starts over, so discard what
 * arrived so far. */
typedef void (*ai_token_fn)(void *arg, const char *p, size_t n);

struct ai_request {
    enum ai_op op;
    const struct ai_msg *msgs; /* CHAT: the conversation; ANSWER: earlier turns */
    size_t n_msgs;
    const char *question; /* ANSWER */
    const struct ai_passage *passages;
    size_t n_passages;
    const char *text; /* TERMS, SUMMARY: text_n bytes */
    size_t text_n;
    size_t max_terms; /* TERMS: 0 = 8 */
    int max_tokens;   /* 0 = configured ai_max_tokens */
    /* Replies are cached per scope (the user id), so one user can never
     * learn from timing what another asked. NULL = do not cache. */
    const char *cache_scope;
    ai_token_fn on_token; /* NULL: not streamed */
    void *token_arg;
    const struct log_ctx *log;
    /* Use only this provider, no fallback, no cache (`loci ai test`). */
    const char *only_provider;
};

struct ai_term {
    char *term;
    char *summary; /* one or two sentences; may be "" */
    double score;  /* relevance in (0, 1] */
};

struct ai_relation {
    char *from; /* terms as given in terms[] */
    char *to;
    char *type; /* is_a, part_of, causes, uses, example_of, opposite_of, related_to */
};

struct ai_result {
    char *text;    /* CHAT, ANSWER, SUMMARY: Markdown; TERMS: NULL */
    bool is_found; /* ANSWER: false when the answer says nothing relevant was found */
    size_t n_cited;
    int *cited; /* ANSWER: passage numbers (1-based) cited in text, ascending */
    size_t n_terms;
    struct ai_term *terms; /* TERMS */
    size_t n_relations;
    struct ai_relation *relations; /* TERMS (model providers only) */
    char provider[16];             /* which provider answered */
    char model[128];
    int64_t prompt_tokens; /* as the provider reported them; 0 for local */
    int64_t completion_tokens;
    bool is_cached;
    int attempts; /* requests made, all providers */
    double ms;    /* wall time of the whole call */
};

struct ai_vectors {
    size_t n;
    int dims;
    float *v;           /* n * dims, row-major, L2-normalised */
    char embedder[192]; /* "local:hash-v1:384" or "openai:<model>:<dims>": store it with
                           the vectors; only vectors of one embedder compare */
    char provider[16];
};

/* Why the last failure happened: for callers that report it (ai test). */
struct ai_failure {
    char provider[16];
    char reason[24]; /* timeout, connect, rate_limited, server_error, client_error,
                        bad_response, invalid_output, breaker_open, cancelled */
    int status;      /* HTTP status, 0 when none */
    char message[256];
};

/* Create the gateway from configuration. db may be NULL (no response cache).
 * LOCI_EINVAL with err for a bad provider setting. Free with ai_free(). */
int ai_new(const struct config *cfg, struct db *db, struct ai **out, char *err, size_t err_n);
void ai_free(struct ai *ai);

/* The chain, e.g. "openai,local". */
const char *ai_chain(const struct ai *ai);

/* Run req down the chain. Returns 0 and fills *out (release with
 * ai_result_release), or LOCI_EUNAVAILABLE when every provider failed
 * (*why, if not NULL, describes the last failure), LOCI_EINVAL for a
 * malformed request. */
int ai_run(struct ai *ai, const struct ai_request *req, struct ai_result *out,
           struct ai_failure *why);
void ai_result_release(struct ai_result *r);

/* Embed n texts with the first provider of the chain that embeds (openai
 * when ai_embed_model is set, else local). Fails over to the next one, which
 * gives vectors of another embedder: check out->embedder. */
int ai_embed(struct ai *ai, const char *const *texts, const size_t *lens, size_t n,
             const struct log_ctx *log, struct ai_vectors *out, struct ai_failure *why);
void ai_vectors_release(struct ai_vectors *v);

/* Delete cached replies that expired before now (ms). */
int ai_cache_purge(struct db *db, int64_t now, int64_t *out_n);

/* Breaker state of a provider in the chain: "closed", "open", "half_open";
 * NULL when the provider is not in the chain. */
const char *ai_breaker_state(struct ai *ai, const char *provider);

/* Check every provider of the chain on its own (model providers: chat,
 * streaming, a structured reply, embeddings; local: answer, terms, summary,
 * embeddings), then the chain as a whole, timing each. *out is a new JSON
 * object {"chain", "ok", "checks":[{provider, check, ok, ms, detail}]};
 * "ok" is true when every check passed. Blocks on the network. */
int ai_check(struct ai *ai, json_t **out);

struct jobs;
/* Register the "ai.cache_purge" job and its hourly schedule
 * "purge_ai_cache" (minute 17), deleting expired cache rows. */
int ai_register_jobs(struct jobs *js, struct db *db, char *err, size_t err_n);

#endif
