/*
 * test_events.c - the event store on both backends: append inside the
 * caller's transaction, read after an offset, and offsets that follow commit
 * order under concurrent writers (a reader polling "after my last offset"
 * must see every event exactly once).
 */
#include "core/clock.h"
#include "core/err.h"
#include "core/ids.h"
#include "events/events.h"
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static struct db *open_db(const char *url)
{
    struct db *db = NULL;
    char err[512];
    if (db_open(url, 8, &db, err, sizeof(err)) != LOCI_OK)
        harness_fail(__FILE__, __LINE__, "db_open: %s", err);
    int applied = 0;
    if (db_migrate(db, &applied, err, sizeof(err)) != LOCI_OK)
        harness_fail(__FILE__, __LINE__, "migrate: %s", err);
    return db;
}

struct append_ctx {
    const char *user;
    const char *type;
    int fail_after;
    int64_t offset;
    int delay_ms;
};

static int tx_append(struct db_conn *c, void *arg)
{
    struct append_ctx *a = arg;
    json_t *data = json_pack("{s:s, s:i}", "note", "héllo", "n", 1);
    int rc = events_append(c, a->user, a->type, data, &a->offset);
    json_decref(data);
    if (rc)
        return rc;
    if (a->delay_ms)
        clock_sleep_ms(a->delay_ms);
    return a->fail_after ? LOCI_EINVAL : LOCI_OK;
}

struct collected {
    int n;
    int64_t offsets[64];
    char types[64][32];
};

static int collect(const struct event_view *ev, void *arg)
{
    struct collected *col = arg;
    if (col->n < 64) {
        col->offsets[col->n] = ev->offset;
        snprintf(col->types[col->n], 32, "%s", ev->type);
        json_error_t je;
        json_t *d = json_loadb(ev->data, ev->data_len, 0, &je);
        if (!d || strcmp(json_string_value(json_object_get(d, "note")), "héllo") != 0)
            harness_fail(__FILE__, __LINE__, "bad event data");
        json_decref(d);
        if (!ids_is_uuid(ev->id, strlen(ev->id)) || ev->created_at <= 0)
            harness_fail(__FILE__, __LINE__, "bad event row");
    }
    col->n++;
    return 0;
}

static void append_and_read(struct db *db)
{
    struct append_ctx a = {"user-a", "test.created", 0, 0, 0};
    CHECK_INT(db_tx(db, tx_append, &a), ==, LOCI_OK);
    int64_t first = a.offset;
    CHECK(first > 0);
    a.type = "test.updated";
    CHECK_INT(db_tx(db, tx_append, &a), ==, LOCI_OK);
    CHECK(a.offset > first);
    struct append_ctx other = {"user-b", "test.created", 0, 0, 0};
    CHECK_INT(db_tx(db, tx_append, &other), ==, LOCI_OK);
    /* Rolled back: no event. */
    struct append_ctx rb = {"user-a", "test.rolled_back", 1, 0, 0};
    CHECK_INT(db_tx(db, tx_append, &rb), ==, LOCI_EINVAL);
    /* Bad input changes nothing. */
    struct append_ctx bad = {"user-a", "Bad Type!", 0, 0, 0};
    CHECK_INT(db_tx(db, tx_append, &bad), ==, LOCI_EINVAL);

    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct collected col = {0};
    int64_t last = 0;
    CHECK_INT(events_read(c, "user-a", 0, 100, collect, &col, &last), ==, LOCI_OK);
    CHECK_INT(col.n, ==, 2); /* only user-a's, only committed */
    CHECK_STR(col.types[0], "test.created");
    CHECK_STR(col.types[1], "test.updated");
    CHECK_INT(last, ==, col.offsets[1]);
    struct collected after = {0};
    CHECK_INT(events_read(c, "user-a", first, 100, collect, &after, &last), ==, LOCI_OK);
    CHECK_INT(after.n, ==, 1);
    CHECK_INT(events_read(c, "user-a", 0, 0, collect, &after, &last), ==, LOCI_EINVAL);
    CHECK_INT(events_read(c, "user-a", 0, 1001, collect, &after, &last), ==, LOCI_EINVAL);
    int64_t head = 0;
    CHECK_INT(events_head(c, &head), ==, LOCI_OK);
    CHECK(head >= other.offset);
    /* Append-only: an update is refused by the database itself. */
    CHECK(db_exec(c, "UPDATE events SET type = 'x'") < 0);
    db_release(c);
}

TEST(events_append_and_read_both_backends)
{
    const char *urls[2];
    int n = harness_db_urls("ev", urls);
    for (int i = 0; i < n; i++) {
        struct db *db = open_db(urls[i]);
        append_and_read(db);
        db_close(db);
    }
}

#define WRITERS    4
#define PER_WRITER 60

struct race {
    struct db *db;
    atomic_int writers_done;
    int failures;
};

static void *writer(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < PER_WRITER; i++) {
        unsigned x;
        ids_random(&x, sizeof(x));
        /* Hold the transaction open a little so commits overlap. */
        struct append_ctx a = {"racer", "race.tick", 0, 0, (int)(x % 3)};
        if (db_tx(r->db, tx_append, &a) != LOCI_OK)
            r->failures++;
    }
    atomic_fetch_add(&r->writers_done, 1);
    return NULL;
}

struct seen {
    int64_t last;
    int n;
    int out_of_order;
};

static int see(const struct event_view *ev, void *arg)
{
    struct seen *s = arg;
    if (ev->offset <= s->last)
        s->out_of_order++;
    s->last = ev->offset;
    s->n++;
    return 0;
}

static void race(const char *url)
{
    struct race r = {open_db(url), 0, 0};
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&th[i], NULL, writer, &r);
    /* The reader: poll "after the last offset I saw" while writers commit. */
    struct seen s = {0, 0, 0};
    for (;;) {
        bool done = atomic_load(&r.writers_done) == WRITERS;
        struct db_conn *c = NULL;
        CHECK_INT(db_acquire(r.db, &c), ==, LOCI_OK);
        int64_t last = 0;
        CHECK_INT(events_read(c, "racer", s.last, 1000, see, &s, &last), ==, LOCI_OK);
        db_release(c);
        if (done)
            break;
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(r.failures, ==, 0);
    CHECK_INT(s.out_of_order, ==, 0);
    CHECK_INT(s.n, ==, WRITERS * PER_WRITER); /* nothing skipped, nothing twice */
    db_close(r.db);
}

TEST(events_offsets_follow_commit_order_under_concurrency)
{
    const char *urls[2];
    int n = harness_db_urls("race", urls);
    for (int i = 0; i < n; i++)
        race(urls[i]);
}
