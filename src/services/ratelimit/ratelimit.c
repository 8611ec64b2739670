/*
 * ratelimit.c - GCRA (the generic cell rate algorithm: one "theoretical
 * arrival time" per key, no counters to reset) and exponential back-off, in
 * an in-process hash table with bounded size.
 */
#include "services/ratelimit/ratelimit.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

#include <pthread.h>
#include <string.h>

struct rl_entry {
    struct rl_entry *next;
    char *key;
    int64_t tat;  /* GCRA theoretical arrival time */
    int failures; /* back-off: failures in a row */
    int64_t blocked_until;
    int64_t touched;
};

struct mem_store {
    pthread_mutex_t mu; /* guards everything below */
    struct rl_entry **table;
    size_t n_slots;
    size_t n_keys;
    size_t max_keys;
};

struct ratelimit {
    const struct rl_store_ops *ops;
    void *self;
};

/* An entry whose limits are all back to neutral holds no information: a
 * fresh entry would behave the same. */
static bool is_neutral(const struct rl_entry *e, int64_t now)
{
    return e->tat <= now && e->blocked_until <= now && e->failures == 0;
}

static void unlink_free(struct mem_store *m, struct rl_entry **pp)
{
    struct rl_entry *e = *pp;
    *pp = e->next;
    xfree(e->key);
    xfree(e);
    m->n_keys--;
}

/* Make room when the table is full. One sweep drops every neutral entry (and
 * failure counts untouched for an hour), so sweeps are rare; if every entry
 * is still live, the least recently touched entry of the probed chains goes.
 * A key is never left untracked: a full table must not switch limits off. */
static void make_room(struct mem_store *m, uint32_t slot, int64_t now)
{
    for (size_t i = 0; i < m->n_slots; i++) {
        struct rl_entry **pp = &m->table[i];
        while (*pp) {
            struct rl_entry *e = *pp;
            bool stale_failures = e->blocked_until <= now && now - e->touched > 3600000;
            if (is_neutral(e, now) || stale_failures)
                unlink_free(m, pp);
            else
                pp = &e->next;
        }
    }
    if (m->n_keys < m->max_keys)
        return;
    struct rl_entry **victim = NULL;
    for (uint32_t k = 0; k < 8 && !victim; k++) {
        uint32_t s = (slot + k) % (uint32_t)m->n_slots;
        for (struct rl_entry **pp = &m->table[s]; *pp; pp = &(*pp)->next) {
            if (!victim || (*pp)->touched < (*victim)->touched)
                victim = pp;
        }
    }
    if (victim)
        unlink_free(m, victim);
}

static struct rl_entry *get_entry(struct mem_store *m, const char *key, int64_t now)
{
    uint32_t slot = str_hash(key) % (uint32_t)m->n_slots;
    for (struct rl_entry *e = m->table[slot]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            e->touched = now;
            return e;
        }
    }
    if (m->n_keys >= m->max_keys)
        make_room(m, slot, now);
    struct rl_entry *e = xcalloc(1, sizeof(*e));
    e->key = xstrdup(key);
    e->touched = now;
    e->next = m->table[slot];
    m->table[slot] = e;
    m->n_keys++;
    return e;
}

static int mem_take(void *self, const char *key, const struct rl_policy *p, int64_t now,
                    struct rl_result *out)
{
    struct mem_store *m = self;
    /* Emission interval T and burst tolerance B*T, in ms. */
    double t = (double)p->window_s * 1000.0 / (double)p->limit;
    double tolerance = t * (double)p->burst;
    pthread_mutex_lock(&m->mu);
    struct rl_entry *e = get_entry(m, key, now);
    double tat = e->tat > now ? (double)e->tat : (double)now;
    double new_tat = tat + t;
    double ahead = new_tat - (double)now;
    if (ahead > tolerance) {
        out->is_allowed = false;
        out->remaining = 0;
        out->retry_after_ms = (int64_t)(ahead - tolerance + 0.999);
        out->reset_ms = (int64_t)(tat - (double)now);
    } else {
        e->tat = (int64_t)new_tat;
        out->is_allowed = true;
        out->remaining = (int)((tolerance - ahead) / t);
        out->retry_after_ms = 0;
        out->reset_ms = (int64_t)ahead;
    }
    pthread_mutex_unlock(&m->mu);
    return LOCI_OK;
}

static int mem_fail(void *self, const char *key, int free_failures, int64_t now)
{
    struct mem_store *m = self;
    pthread_mutex_lock(&m->mu);
    struct rl_entry *e = get_entry(m, key, now);
    e->failures++;
    int over = e->failures - free_failures;
    if (over >= 0) {
        int64_t wait = over >= 20 ? RL_BACKOFF_CAP_MS : 1000LL << over;
        e->blocked_until = now + (wait < RL_BACKOFF_CAP_MS ? wait : RL_BACKOFF_CAP_MS);
    }
    pthread_mutex_unlock(&m->mu);
    return LOCI_OK;
}

static int mem_clear(void *self, const char *key)
{
    struct mem_store *m = self;
    pthread_mutex_lock(&m->mu);
    uint32_t slot = str_hash(key) % m->n_slots;
    for (struct rl_entry *e = m->table[slot]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            e->failures = 0;
            e->blocked_until = 0;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return LOCI_OK;
}

static int64_t mem_wait(void *self, const char *key, int64_t now)
{
    struct mem_store *m = self;
    int64_t wait = 0;
    pthread_mutex_lock(&m->mu);
    uint32_t slot = str_hash(key) % m->n_slots;
    for (struct rl_entry *e = m->table[slot]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            wait = e->blocked_until > now ? e->blocked_until - now : 0;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return wait;
}

static void mem_destroy(void *self)
{
    struct mem_store *m = self;
    for (size_t i = 0; i < m->n_slots; i++) {
        struct rl_entry *e = m->table[i];
        while (e) {
            struct rl_entry *next = e->next;
            xfree(e->key);
            xfree(e);
            e = next;
        }
    }
    xfree(m->table);
    pthread_mutex_destroy(&m->mu);
    xfree(m);
}

static const struct rl_store_ops mem_ops = {mem_take, mem_fail, mem_clear, mem_wait, mem_destroy};

struct ratelimit *rl_new_memory(size_t max_keys)
{
    struct mem_store *m = xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    m->max_keys = max_keys ? max_keys : 100000;
    m->n_slots = 4096;
    m->table = xcalloc(m->n_slots, sizeof(*m->table));
    struct ratelimit *rl = xcalloc(1, sizeof(*rl));
    rl->ops = &mem_ops;
    rl->self = m;
    return rl;
}

void rl_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    rl->ops->destroy(rl->self);
    xfree(rl);
}

int rl_take(struct ratelimit *rl, const char *key, const struct rl_policy *p, int64_t now_ms,
            struct rl_result *out)
{
    if (p->limit <= 0 || p->window_s <= 0 || p->burst <= 0)
        return LOCI_EINVAL;
    return rl->ops->take(rl->self, key, p, now_ms, out);
}

int rl_backoff_fail(struct ratelimit *rl, const char *key, int free_failures, int64_t now_ms)
{
    return rl->ops->fail(rl->self, key, free_failures, now_ms);
}

int rl_backoff_clear(struct ratelimit *rl, const char *key)
{
    return rl->ops->clear(rl->self, key);
}

int64_t rl_backoff_wait(struct ratelimit *rl, const char *key, int64_t now_ms)
{
    return rl->ops->wait_ms(rl->self, key, now_ms);
}
