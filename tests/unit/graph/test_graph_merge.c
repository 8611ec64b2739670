/*
 * test_graph_merge.c - answer terms into the graph, on SQLite and
 * PostgreSQL: one node per key whatever the spelling (others become
 * aliases), edges that strengthen instead of duplicating, the focus linked
 * to each term, typed relations only between listed terms, summaries
 * filled once, the delta recording it all, and two concurrent merges of the
 * same new term ending on one node.
 */
#include "core/clock.h"
#include "core/err.h"
#include "graph/graph.h"
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static double scalar(struct db *db, const char *sql)
{
    struct db_conn *c;
    CHECK_INT(db_acquire(db, &c), ==, 0);
    struct db_stmt *st;
    if (db_prepare(c, sql, &st))
        harness_fail(__FILE__, __LINE__, "%s: %s", sql, db_errmsg(c));
    double v = db_step(st) == LOCI_ROW ? db_col_double(st, 0) : -1;
    db_stmt_done(st);
    db_release(c);
    return v;
}

struct merge_args {
    const char *user;
    const struct graph_term *terms;
    size_t n;
    const struct graph_relation *rels;
    size_t n_rels;
    const char *focus;
    bool is_root;
    struct graph_merged out[32];
    struct graph_delta delta;
};

static int merge_tx(struct db_conn *c, void *arg)
{
    struct merge_args *m = arg;
    graph_delta_release(&m->delta);
    graph_delta_init(&m->delta);
    return graph_merge_terms(c, m->user, m->terms, m->n, m->rels, m->n_rels, m->focus, NULL,
                             m->is_root, clock_now_ms(), &m->delta, m->out);
}

static void merge(struct db *db, struct merge_args *m)
{
    graph_delta_init(&m->delta);
    int rc = db_tx(db, merge_tx, m);
    if (rc)
        harness_fail(__FILE__, __LINE__, "merge failed: %d", rc);
}

static void one_backend(const char *url)
{
    struct db *db = harness_open_db(url, 6);
    harness_add_users(db);
    const struct graph_term t1[] = {
        {"Neural Networks", "Layers of weighted units."},
        {"backpropagation", ""},
        {"neural  network", "A different summary that must not replace the first."},
        {"   ", NULL},
        {"Gradient Descent", NULL},
    };
    const struct graph_relation r1[] = {
        {"backpropagation", "Gradient Descent", "uses"},
        {"backpropagation", "Unicorn", "is_a"},          /* not a term here: dropped */
        {"Neural Networks", "backpropagation", "bogus"}, /* unknown type: dropped */
    };
    struct merge_args m = {
        .user = "u1", .terms = t1, .n = 5, .rels = r1, .n_rels = 3, .is_root = true};
    merge(db, &m);
    CHECK(m.out[0].is_new && m.out[1].is_new && m.out[4].is_new);
    CHECK(m.out[3].is_skipped);
    CHECK_STR(m.out[2].node_id, m.out[0].node_id); /* same key in one answer */
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM nodes WHERE user_id = 'u1'"), ==, 3);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM nodes WHERE user_id = 'u1' AND key = 'neural "
                         "network' AND summary = 'Layers of weighted units.'"),
              ==, 1);
    /* only the answer's main term is a root */
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM nodes WHERE user_id = 'u1' AND is_root = 1"), ==, 1);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM edges WHERE user_id = 'u1' AND type = 'related'"),
              ==, 3);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM edges WHERE user_id = 'u1' AND type = 'uses'"), ==,
              1);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM edges WHERE user_id = 'u1' AND type NOT IN "
                         "('related', 'uses')"),
              ==, 0);
    CHECK_INT(json_array_size(m.delta.nodes), ==, 3);
    CHECK_INT(json_array_size(m.delta.edges), ==, 4);
    CHECK_INT(json_array_size(m.delta.embed_ids), ==, 3);
    char nn[UUID_STR_LEN], bp[UUID_STR_LEN];
    snprintf(nn, sizeof(nn), "%s", m.out[0].node_id);
    snprintf(bp, sizeof(bp), "%s", m.out[1].node_id);
    graph_delta_release(&m.delta);

    /* again, other spellings, a focus: the same nodes, stronger edges */
    const struct graph_term t2[] = {
        {"NEURAL NETWORK", "ignored: it has one"},
        {"Backpropagation", "Error gradients flow backwards."},
    };
    struct merge_args m2 = {.user = "u1", .terms = t2, .n = 2, .focus = m.out[4].node_id};
    merge(db, &m2);
    CHECK(!m2.out[0].is_new && !m2.out[1].is_new);
    CHECK_STR(m2.out[0].node_id, nn);
    CHECK_STR(m2.out[1].node_id, bp);
    char sql[512];
    const char *lo = strcmp(nn, bp) < 0 ? nn : bp, *hi = strcmp(nn, bp) < 0 ? bp : nn;
    snprintf(sql, sizeof(sql),
             "SELECT weight FROM edges WHERE user_id = 'u1' AND src = '%s' AND dst = '%s' AND "
             "type = 'related'",
             lo, hi);
    CHECK(scalar(db, sql) == 2.0);
    /* the new spellings are aliases, the summary filled only where empty */
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM node_aliases WHERE user_id = 'u1' AND alias IN "
                         "('NEURAL NETWORK', 'Backpropagation', 'neural network')"),
              ==, 3);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM nodes WHERE user_id = 'u1' AND summary = 'Error "
                         "gradients flow backwards.'"),
              ==, 1);
    CHECK_INT(json_array_size(m2.delta.embed_ids), ==, 1); /* backpropagation's new summary */
    /* focus (gradient descent) linked to both terms */
    CHECK_INT(json_array_size(m2.delta.edges), ==, 3);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM nodes WHERE user_id = 'u1'"), ==, 3);
    graph_delta_release(&m2.delta);

    /* another user: the same term is their own node */
    struct merge_args m3 = {.user = "u2", .terms = t2, .n = 1};
    merge(db, &m3);
    CHECK(m3.out[0].is_new);
    CHECK(strcmp(m3.out[0].node_id, nn) != 0);
    graph_delta_release(&m3.delta);

    /* a term with only punctuation, or too many terms */
    const struct graph_term t4[] = {{"!!!", NULL}, {"", NULL}};
    struct merge_args m4 = {.user = "u1", .terms = t4, .n = 2};
    merge(db, &m4);
    CHECK(m4.out[0].is_skipped && m4.out[1].is_skipped);
    CHECK(graph_delta_is_empty(&m4.delta));
    graph_delta_release(&m4.delta);
    db_close(db);
}

TEST(merge_on_both_backends)
{
    const char *urls[2];
    int n = harness_db_urls("graph_merge", urls);
    for (int i = 0; i < n; i++)
        one_backend(urls[i]);
}

struct racer {
    struct db *db;
    struct merge_args m;
};

static void *race_main(void *arg)
{
    struct racer *r = arg;
    graph_delta_init(&r->m.delta);
    if (db_tx(r->db, merge_tx, &r->m))
        harness_fail(__FILE__, __LINE__, "racing merge failed");
    return NULL;
}

TEST(concurrent_merges_of_a_new_term_make_one_node)
{
    const char *urls[2];
    int n = harness_db_urls("graph_race", urls);
    for (int u = 0; u < n; u++) {
        struct db *db = harness_open_db(urls[u], 6);
        harness_add_users(db);
        for (int round = 0; round < 10; round++) {
            char term[32];
            snprintf(term, sizeof(term), "Racing Term %d", round);
            struct graph_term t[] = {{term, NULL}};
            struct racer r[4];
            pthread_t th[4];
            for (int i = 0; i < 4; i++) {
                r[i] = (struct racer){.db = db, .m = {.user = "u1", .terms = t, .n = 1}};
                pthread_create(&th[i], NULL, race_main, &r[i]);
            }
            for (int i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
            int n_new = 0;
            for (int i = 0; i < 4; i++) {
                n_new += r[i].m.out[0].is_new;
                CHECK_STR(r[i].m.out[0].node_id, r[0].m.out[0].node_id);
                graph_delta_release(&r[i].m.delta);
            }
            CHECK_INT(n_new, ==, 1);
        }
        CHECK_INT(scalar(db, "SELECT COUNT(*) FROM nodes WHERE user_id = 'u1'"), ==, 10);
        db_close(db);
    }
}
