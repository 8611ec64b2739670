/*
 * test_bus.c - the event bus on SQLite and PostgreSQL: 4 writer threads
 * append 200 events each in their own transactions while the bus runs; the
 * subscriber must see every one exactly once, in strictly increasing offset
 * order, and nothing committed before bus_start().
 */
#include "core/clock.h"
#include "core/err.h"
#include "events/events.h"
#include "harness.h"
#include "services/bus/bus.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define WRITERS 4
#define PER     200

struct seen {
    pthread_mutex_t mu;
    int64_t last;
    int n;
    bool is_out_of_order;
    int n_before; /* events whose data says they were written before start */
};

static void on_event(const struct event_view *ev, void *arg)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->mu);
    if (ev->offset <= s->last)
        s->is_out_of_order = true;
    s->last = ev->offset;
    if (strstr(ev->data, "\"early\""))
        s->n_before++;
    else if (strcmp(ev->type, "test.bus") == 0)
        s->n++;
    pthread_mutex_unlock(&s->mu);
}

static int append_one(struct db_conn *c, void *arg)
{
    json_t *d = arg;
    return events_append(c, "user-1", "test.bus", d, NULL);
}

struct writer {
    struct db *db;
    struct bus *bus;
};

static void *write_main(void *arg)
{
    struct writer *w = arg;
    json_t *d = json_pack("{s:s}", "phase", "live");
    for (int i = 0; i < PER; i++) {
        if (db_tx(w->db, append_one, d))
            harness_fail(__FILE__, __LINE__, "append failed");
        if (i % 7 == 0)
            bus_wake(w->bus);
    }
    json_decref(d);
    return NULL;
}

TEST(every_event_once_in_order_on_both_backends)
{
    const char *urls[2];
    int n = harness_db_urls("bus", urls);
    for (int u = 0; u < n; u++) {
        struct db *db = NULL;
        char err[256];
        CHECK_INT(db_open(urls[u], 8, &db, err, sizeof(err)), ==, 0);
        int applied;
        CHECK_INT(db_migrate(db, &applied, err, sizeof(err)), ==, 0);
        json_t *early = json_pack("{s:s}", "phase", "early");
        CHECK_INT(db_tx(db, append_one, early), ==, 0);
        json_decref(early);

        struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
        struct bus *bus = bus_new(db, 20);
        CHECK_INT(bus_subscribe(bus, on_event, &s), ==, 0);
        CHECK_INT(bus_start(bus), ==, 0);
        CHECK_INT(bus_subscribe(bus, on_event, &s), ==, LOCI_EINVAL);
        pthread_t t[WRITERS];
        struct writer w = {db, bus};
        for (int i = 0; i < WRITERS; i++)
            pthread_create(&t[i], NULL, write_main, &w);
        for (int i = 0; i < WRITERS; i++)
            pthread_join(t[i], NULL);
        int64_t deadline = clock_now_ms() + 10000;
        for (;;) {
            pthread_mutex_lock(&s.mu);
            int got = s.n;
            pthread_mutex_unlock(&s.mu);
            if (got >= WRITERS * PER || clock_now_ms() > deadline)
                break;
            clock_sleep_ms(10);
        }
        bus_free(bus);
        CHECK_INT(s.n, ==, WRITERS * PER);
        CHECK(!s.is_out_of_order);
        CHECK_INT(s.n_before, ==, 0);
        db_close(db);
    }
}
