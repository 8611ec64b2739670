/*
 * ratelimit.h - request rate limits (GCRA) and login back-off, behind a
 * store interface: the in-process store now, a Redis store when several
 * instances must share counters (same operations, other backend).
 *
 * Threads: safe from any thread (the memory store takes one mutex per call).
 */
#ifndef LOCI_SERVICES_RATELIMIT_H
#define LOCI_SERVICES_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rl_policy {
    const char *name; /* shown in RateLimit-Policy */
    int limit;        /* requests per window ... */
    int window_s;     /* ... of this many seconds, in a burst of at most `burst` */
    int burst;
};

struct rl_result {
    bool is_allowed;
    int remaining;          /* requests left in the current burst */
    int64_t retry_after_ms; /* when refused: wait this long */
    int64_t reset_ms;       /* until the burst is full again */
};

/* Backend operations; `self` is the store's state. */
struct rl_store_ops {
    /* GCRA: account one request for key under policy at now_ms. */
    int (*take)(void *self, const char *key, const struct rl_policy *p, int64_t now_ms,
                struct rl_result *out);
    /* Back-off: record a failure / clear / read the wait for key. */
    int (*fail)(void *self, const char *key, int free_failures, int64_t now_ms);
    int (*clear)(void *self, const char *key);
    int64_t (*wait_ms)(void *self, const char *key, int64_t now_ms);
    void (*destroy)(void *self);
};

struct ratelimit;

/* An in-process store holding at most max_keys keys (old ones evicted). */
struct ratelimit *rl_new_memory(size_t max_keys);
void rl_free(struct ratelimit *rl);

/* Count one request. On refusal out->is_allowed is false. */
int rl_take(struct ratelimit *rl, const char *key, const struct rl_policy *p, int64_t now_ms,
            struct rl_result *out);

/* Login back-off per key (account or IP): once free_failures failures in a
 * row are reached, the next attempt must wait 1 s, and each further failure
 * doubles the wait (2 s, 4 s ... capped at 15 minutes). Never a permanent lock: the wait always
 * ends, and a success clears it. */
int rl_backoff_fail(struct ratelimit *rl, const char *key, int free_failures, int64_t now_ms);
int rl_backoff_clear(struct ratelimit *rl, const char *key);
/* 0 when the key may try now, else how long to wait. */
int64_t rl_backoff_wait(struct ratelimit *rl, const char *key, int64_t now_ms);

#define RL_BACKOFF_CAP_MS (15 * 60 * 1000)

#endif
