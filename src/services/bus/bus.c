/*
 * bus.c - the tailer thread: read after the last delivered offset, hand
 * each event to every subscriber, sleep until woken or poll_ms passed.
 * A database error is logged once per outage and retried at the next tick;
 * nothing is skipped, because the position only advances past delivered
 * events.
 */
#include "services/bus/bus.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#define MAX_SUBSCRIBERS 8
#define BATCH           500

struct subscriber {
    bus_fn fn;
    void *arg;
};

struct bus {
    struct db *db;
    int poll_ms;
    struct subscriber subs[MAX_SUBSCRIBERS];
    int n_subs;
    pthread_t thread;
    bool is_started;
    pthread_mutex_t mu; /* guards is_woken, is_stopping */
    pthread_cond_t cv;
    bool is_woken;
    bool is_stopping;
    _Atomic int64_t offset; /* last delivered */
    struct metric_series *m_offset;
    struct metric_series *m_delivered;
};

struct bus *bus_new(struct db *db, int poll_ms)
{
    struct bus *b = xcalloc(1, sizeof(*b));
    b->db = db;
    b->poll_ms = poll_ms < 1 ? 1 : poll_ms > 10000 ? 10000 : poll_ms;
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->m_offset = metrics_series(
        metrics_gauge("loci_bus_offset", "Offset of the last event delivered by the bus", NULL),
        NULL);
    b->m_delivered = metrics_series(
        metrics_counter("loci_bus_events_total", "Events delivered by the bus", NULL), NULL);
    return b;
}

int bus_subscribe(struct bus *b, bus_fn fn, void *arg)
{
    if (b->is_started || b->n_subs == MAX_SUBSCRIBERS)
        return LOCI_EINVAL;
    b->subs[b->n_subs++] = (struct subscriber){fn, arg};
    return LOCI_OK;
}

static int deliver(const struct event_view *ev, void *arg)
{
    struct bus *b = arg;
    for (int i = 0; i < b->n_subs; i++)
        b->subs[i].fn(ev, b->subs[i].arg);
    atomic_store(&b->offset, ev->offset);
    metrics_add(b->m_delivered, 1);
    return 0;
}

/* Deliver everything committed so far. Returns false on a database error. */
static bool drain(struct bus *b)
{
    struct db_conn *c;
    if (db_acquire(b->db, &c))
        return false;
    int rc;
    int64_t before, last;
    do {
        before = atomic_load(&b->offset);
        last = before;
        rc = events_read_all(c, before, BATCH, deliver, b, &last);
    } while (rc == LOCI_OK && last != before); /* something came: there may be more */
    db_release(c);
    metrics_set(b->m_offset, (double)atomic_load(&b->offset));
    return rc == LOCI_OK;
}

static void *tail_main(void *arg)
{
    struct bus *b = arg;
    bool was_down = false;
    for (;;) {
        bool ok = drain(b);
        if (!ok && !was_down)
            log_warn(NULL, "event bus cannot read the event store; retrying");
        else if (ok && was_down)
            log_info(NULL, "event bus reading the event store again");
        was_down = !ok;
        pthread_mutex_lock(&b->mu);
        if (!b->is_woken && !b->is_stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + (int64_t)b->poll_ms * 1000000;
            ts.tv_sec += (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&b->cv, &b->mu, &ts);
        }
        b->is_woken = false;
        bool stop = b->is_stopping;
        pthread_mutex_unlock(&b->mu);
        if (stop)
            break;
    }
    return NULL;
}

int bus_start(struct bus *b)
{
    struct db_conn *c;
    int rc = db_acquire(b->db, &c);
    if (rc)
        return rc;
    int64_t head = 0;
    rc = events_head(c, &head);
    db_release(c);
    if (rc)
        return rc;
    atomic_store(&b->offset, head);
    if (pthread_create(&b->thread, NULL, tail_main, b) != 0)
        return LOCI_EIO;
    b->is_started = true;
    return LOCI_OK;
}

void bus_wake(struct bus *b)
{
    pthread_mutex_lock(&b->mu);
    b->is_woken = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

int64_t bus_offset(struct bus *b)
{
    return atomic_load(&b->offset);
}

void bus_free(struct bus *b)
{
    if (!b)
        return;
    if (b->is_started) {
        pthread_mutex_lock(&b->mu);
        b->is_stopping = true;
        pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
    }
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    xfree(b);
}
