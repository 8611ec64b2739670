/*
 * test_learn.c - cards, the review log, settings, the due queue, the decay
 * and the review digest on SQLite and PostgreSQL: a review creates and
 * moves the card as FSRS says and logs it with an event, familiarity follows
 * retrievability, the queue puts due cards first and caps new nodes per day,
 * another user's node is not found, the decay works in keyset batches and a
 * second run changes nothing, the digest mails opted-in users once a day.
 */
#include "core/err.h"
#include "graph/graph.h"
#include "harness.h"
#include "learn/learn.h"
#include "store/db.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define T0  1767258000000LL /* 2026-01-01T09:00:00Z */
#define MIN 60000LL
#define DAY 86400000LL

#define N1 "01900000-0000-7000-8000-000000000001"
#define N2 "01900000-0000-7000-8000-000000000002"
#define N3 "01900000-0000-7000-8000-000000000003"
#define N4 "01900000-0000-7000-8000-000000000004" /* u2's */

static struct db *open_db(const char *url)
{
    struct db *db = harness_open_db(url, 4);
    harness_add_users(db);
    harness_exec(db, "INSERT INTO nodes (id, user_id, term, key, created_at, updated_at) VALUES "
                     "('" N1 "', 'u1', 'alpha', 'alpha', 1, 1), "
                     "('" N2 "', 'u1', 'beta', 'beta', 2, 2), "
                     "('" N3 "', 'u1', 'gamma', 'gamma', 3, 3), "
                     "('" N4 "', 'u2', 'delta', 'delta', 4, 4)");
    return db;
}

static double num(struct db *db, const char *q)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    if (db_prepare(c, q, &st))
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    double v = db_step(st) == LOCI_ROW ? db_col_double(st, 0) : -1;
    db_stmt_done(st);
    db_release(c);
    return v;
}

static void exec(struct db *db, const char *q)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    if (db_exec(c, q))
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    db_release(c);
}

struct rv {
    const char *user, *node;
    int rating;
    int64_t now;
    enum learn_source source;
    struct learn_review_out out;
    int n_delta;
};

static int tx_review(struct db_conn *c, void *arg)
{
    struct rv *r = arg;
    struct graph_delta d;
    graph_delta_init(&d);
    int rc = learn_review(c, r->user, r->node, r->rating, 1234, r->source, r->now, &d, &r->out);
    r->n_delta = d.nodes ? (int)json_array_size(d.nodes) : 0;
    graph_delta_release(&d);
    return rc;
}

static int review(struct db *db, const char *user, const char *node, int rating, int64_t now,
                  struct rv *r)
{
    memset(r, 0, sizeof *r);
    r->user = user;
    r->node = node;
    r->rating = rating;
    r->now = now;
    r->source = LEARN_SRC_REVIEW;
    return db_tx(db, tx_review, r);
}

static json_t *due(struct db *db, const char *user, int64_t now, int limit)
{
    struct db_conn *c = NULL;
    json_t *items = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    CHECK_INT(learn_due(c, user, now, limit, &items), ==, LOCI_OK);
    db_release(c);
    return items;
}

static const char *item_id(json_t *items, size_t i)
{
    return json_string_value(json_object_get(json_array_get(items, i), "node_id"));
}

static void reviews_and_queue(const char *url)
{
    struct db *db = open_db(url);
    struct rv r;

    /* new -> learning: due in 10 minutes, familiarity = R(0) = 1 */
    CHECK_INT(review(db, "u1", N1, 3, T0, &r), ==, LOCI_OK);
    CHECK_INT(r.out.before.state, ==, FSRS_NEW);
    CHECK_INT(r.out.after.state, ==, FSRS_LEARNING);
    CHECK_INT(r.out.after.due, ==, T0 + 10 * MIN);
    CHECK(r.out.after.stability == 2.3065);
    CHECK(r.out.familiarity == 1.0);
    CHECK_INT(r.n_delta, ==, 1);
    CHECK(num(db, "SELECT familiarity FROM nodes WHERE id = '" N1 "'") == 1.0);
    CHECK(num(db, "SELECT COUNT(*) FROM reviews WHERE node_id = '" N1 "'") == 1);
    CHECK(num(db, "SELECT duration_ms FROM reviews WHERE node_id = '" N1 "'") == 1234);
    CHECK(num(db, "SELECT COUNT(*) FROM events WHERE type = 'review.recorded'") == 1);

    /* bad rating, another user's node, a node that does not exist */
    CHECK_INT(review(db, "u1", N1, 0, T0, &r), ==, LOCI_EUNPROCESSABLE);
    CHECK_INT(review(db, "u1", N1, 5, T0, &r), ==, LOCI_EUNPROCESSABLE);
    CHECK_INT(review(db, "u2", N1, 3, T0, &r), ==, LOCI_ENOTFOUND);
    CHECK_INT(review(db, "u1", N4, 3, T0, &r), ==, LOCI_ENOTFOUND);
    CHECK_INT(review(db, "u1", "01900000-0000-7000-8000-00000000dead", 3, T0, &r), ==,
              LOCI_ENOTFOUND);
    CHECK(num(db, "SELECT COUNT(*) FROM reviews") == 1);

    /* the queue: N1 not due yet; N2, N3 new (oldest first) */
    json_t *items = due(db, "u1", T0 + MIN, 10);
    CHECK_INT(json_array_size(items), ==, 2);
    CHECK_STR(item_id(items, 0), N2);
    CHECK_STR(item_id(items, 1), N3);
    CHECK(json_is_null(json_object_get(json_array_get(items, 0), "due")));
    json_t *iv = json_object_get(json_array_get(items, 0), "intervals");
    CHECK_INT(json_integer_value(json_object_get(iv, "1")), ==, MIN);
    CHECK_INT(json_integer_value(json_object_get(iv, "3")), ==, 10 * MIN);
    json_decref(items);
    /* after 11 minutes N1 is due, first */
    items = due(db, "u1", T0 + 11 * MIN, 10);
    CHECK_INT(json_array_size(items), ==, 3);
    CHECK_STR(item_id(items, 0), N1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "state")), "learning");
    json_decref(items);
    /* limit */
    items = due(db, "u1", T0 + 11 * MIN, 1);
    CHECK_INT(json_array_size(items), ==, 1);
    json_decref(items);
    /* new per day: one new node studied today, cap 1 -> no more new ones */
    struct db_conn *c = NULL;
    struct learn_settings s;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    CHECK_INT(learn_settings_get(c, "u1", &s), ==, LOCI_OK);
    CHECK(s.desired_retention == 0.9);
    CHECK_INT(s.new_per_day, ==, 20);
    s.new_per_day = 1;
    CHECK_INT(learn_settings_put(c, "u1", &s, T0), ==, LOCI_OK);
    s.desired_retention = 0.5;
    CHECK_INT(learn_settings_put(c, "u1", &s, T0), ==, LOCI_EUNPROCESSABLE);
    db_release(c);
    items = due(db, "u1", T0 + 11 * MIN, 10);
    CHECK_INT(json_array_size(items), ==, 1);
    CHECK_STR(item_id(items, 0), N1);
    json_decref(items);
    /* the next UTC day offers one new node again */
    items = due(db, "u1", T0 + DAY, 10);
    CHECK_INT(json_array_size(items), ==, 2);
    CHECK_STR(item_id(items, 1), N2);
    json_decref(items);
    /* u2 sees only its own node */
    items = due(db, "u2", T0, 10);
    CHECK_INT(json_array_size(items), ==, 1);
    CHECK_STR(item_id(items, 0), N4);
    json_decref(items);

    /* learning -> review in 2 days (as ts-fsrs) */
    CHECK_INT(review(db, "u1", N1, 3, T0 + 10 * MIN, &r), ==, LOCI_OK);
    CHECK_INT(r.out.after.state, ==, FSRS_REVIEW);
    CHECK_INT(r.out.after.scheduled_days, ==, 2);
    CHECK(r.out.after.difficulty == 2.11121424);

    /* a self-rating keeps the familiarity the learner set */
    exec(db, "UPDATE nodes SET familiarity = 0.3 WHERE id = '" N2 "'");
    memset(&r, 0, sizeof r);
    r.user = "u1";
    r.node = N2;
    r.rating = learn_rating_for_familiarity(0.3);
    r.now = T0;
    r.source = LEARN_SRC_SELF;
    CHECK_INT(r.rating, ==, 2);
    CHECK_INT(db_tx(db, tx_review, &r), ==, LOCI_OK);
    CHECK(num(db, "SELECT familiarity FROM nodes WHERE id = '" N2 "'") == 0.3);
    CHECK(num(db, "SELECT COUNT(*) FROM reviews WHERE source = 'self'") == 1);
    CHECK_INT(learn_rating_for_familiarity(0), ==, 1);
    CHECK_INT(learn_rating_for_familiarity(0.85), ==, 4);
    CHECK_INT(learn_rating_for_familiarity(0.6), ==, 3);

    /* history */
    json_t *h = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    CHECK_INT(learn_history(c, "u2", N1, &h), ==, LOCI_ENOTFOUND);
    CHECK_INT(learn_history(c, "u1", N1, &h), ==, LOCI_OK);
    db_release(c);
    CHECK_INT(json_array_size(h), ==, 2);
    json_t *first = json_array_get(h, 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(first, "before"), "state")), "new");
    CHECK_STR(json_string_value(json_object_get(json_object_get(first, "after"), "state")),
              "learning");
    json_decref(h);
    db_close(db);
}

TEST(learn_reviews_and_queue)
{
    const char *urls[2];
    int n = harness_db_urls("learn_reviews", urls);
    for (int i = 0; i < n; i++)
        reviews_and_queue(urls[i]);
}

static void decay(const char *url)
{
    struct db *db = open_db(url);
    struct rv r;
    CHECK_INT(review(db, "u1", N1, 4, T0, &r), ==, LOCI_OK); /* review, 8 days */
    CHECK_INT(review(db, "u1", N2, 4, T0, &r), ==, LOCI_OK);
    CHECK_INT(review(db, "u2", N4, 4, T0, &r), ==, LOCI_OK);
    CHECK(num(db, "SELECT COUNT(*) FROM events WHERE type = 'familiarity.decayed'") == 0);
    /* 30 days on, in batches of one card: all three change */
    int64_t changed = 0;
    CHECK_INT(learn_decay_all(db, T0 + 30 * DAY, 1, &changed), ==, LOCI_OK);
    CHECK_INT(changed, ==, 3);
    struct fsrs_params p;
    struct fsrs_card k;
    fsrs_params_init(&p, 0.9);
    fsrs_card_init(&k, T0);
    fsrs_next(&p, &k, T0, 4, &k);
    double want = fsrs_retrievability(&p, &k, T0 + 30 * DAY);
    CHECK(want < 0.9);
    CHECK(num(db, "SELECT familiarity FROM nodes WHERE id = '" N1 "'") == want);
    CHECK(num(db, "SELECT familiarity FROM nodes WHERE id = '" N4 "'") == want);
    CHECK(num(db, "SELECT familiarity FROM nodes WHERE id = '" N3 "'") == 0); /* no card */
    CHECK(num(db, "SELECT COUNT(*) FROM events WHERE type = 'familiarity.decayed'") == 2);
    CHECK(num(db, "SELECT COUNT(*) FROM events WHERE type = 'familiarity.decayed' AND "
                  "user_id = 'u1'") == 1);
    CHECK(num(db, "SELECT COUNT(*) FROM events WHERE type = 'graph.updated'") >= 2);
    double events = num(db, "SELECT COUNT(*) FROM events");
    /* idempotent: the same pass again (any batch size) changes nothing */
    CHECK_INT(learn_decay_all(db, T0 + 30 * DAY, 500, &changed), ==, LOCI_OK);
    CHECK_INT(changed, ==, 0);
    CHECK(num(db, "SELECT COUNT(*) FROM events") == events);
    db_close(db);
}

TEST(learn_decay_in_batches_is_idempotent)
{
    const char *urls[2];
    int n = harness_db_urls("learn_decay", urls);
    for (int i = 0; i < n; i++)
        decay(urls[i]);
}

struct outbox {
    int n;
    int fail;
    char to[4][64];
    char body[1024];
};

static int fake_send(void *arg, const char *to, const char *subject, const char *body, char *err,
                     size_t err_n)
{
    struct outbox *o = arg;
    (void)subject;
    if (o->fail) {
        snprintf(err, err_n, "refused");
        return LOCI_EAGAIN;
    }
    if (o->n < 4)
        snprintf(o->to[o->n], sizeof o->to[0], "%s", to);
    snprintf(o->body, sizeof o->body, "%s", body);
    o->n++;
    return LOCI_OK;
}

static void digest(const char *url)
{
    struct db *db = open_db(url);
    struct rv r;
    CHECK_INT(review(db, "u1", N1, 4, T0, &r), ==, LOCI_OK);
    CHECK_INT(review(db, "u2", N4, 4, T0, &r), ==, LOCI_OK);
    /* u1 opted in with threshold 0.95; u2 did not */
    exec(db, "INSERT INTO learning_settings (user_id, review_mail, threshold, updated_at) "
             "VALUES ('u1', 1, 0.95, 0), ('u2', 0, 0.95, 0)");
    struct outbox o = {0};
    int sent = 0, failed = 0;
    /* the day of the review nothing is below the threshold: no mail */
    CHECK_INT(learn_digest_all(db, T0 + MIN, fake_send, &o, "https://loci.test", &sent, &failed),
              ==, LOCI_OK);
    CHECK_INT(o.n, ==, 0);
    int64_t later = T0 + 20 * DAY;
    /* a failed mail is tried again next time */
    o.fail = 1;
    CHECK_INT(learn_digest_all(db, later, fake_send, &o, "https://loci.test", &sent, &failed), ==,
              LOCI_OK);
    CHECK_INT(failed, ==, 1);
    CHECK(num(db, "SELECT last_digest_at FROM learning_settings WHERE user_id = 'u1'") == 0);
    o.fail = 0;
    CHECK_INT(learn_digest_all(db, later, fake_send, &o, "https://loci.test", &sent, &failed), ==,
              LOCI_OK);
    CHECK_INT(sent, ==, 1);
    CHECK_INT(o.n, ==, 1);
    CHECK_STR(o.to[0], "a@x");
    CHECK(strstr(o.body, "https://loci.test/review") != NULL);
    CHECK(strstr(o.body, "1 of your nodes") != NULL);
    CHECK(num(db, "SELECT COUNT(*) FROM events WHERE type = 'review.digest_sent'") == 1);
    /* once a day */
    CHECK_INT(learn_digest_all(db, later + 23 * 3600000LL, fake_send, &o, "x", &sent, &failed), ==,
              LOCI_OK);
    CHECK_INT(o.n, ==, 1);
    CHECK_INT(learn_digest_all(db, later + DAY, fake_send, &o, "x", &sent, &failed), ==, LOCI_OK);
    CHECK_INT(o.n, ==, 2);
    CHECK_STR(o.to[1], "a@x");
    db_close(db);
}

TEST(learn_digest_once_a_day_for_opted_in)
{
    const char *urls[2];
    int n = harness_db_urls("learn_digest", urls);
    for (int i = 0; i < n; i++)
        digest(urls[i]);
}
