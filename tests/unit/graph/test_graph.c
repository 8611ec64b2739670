/*
 * test_graph.c - reading and editing a learner's graph, on SQLite and
 * PostgreSQL: notes, renames that keep the old spelling as an alias,
 * merges whose edge weights add up and whose self-loops go, deletes that
 * take edges, aliases and embeddings along, familiarity bounds, the
 * neighbourhood of a question (2 hops, strongest first, capped), recent
 * roots page by page, slices for drawing, the graph.embed job, and
 * another user's nodes staying invisible to every function.
 */
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "graph/graph.h"
#include "harness.h"
#include "services/ai/ai.h"
#include "services/jobs/jobs.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* ---- set-up ---- */

static struct db *open_db(const char *url)
{
    struct db *db = harness_open_db(url, 6);
    harness_add_users(db);
    return db;
}

/* Run a statement with text parameters (NULL binds NULL). */
static void sql(struct db *db, const char *q, int n, const char *const *args)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    if (db_prepare(c, q, &st))
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    for (int i = 0; i < n; i++)
        db_bind_text(st, i + 1, args[i], (size_t)-1);
    int rc = db_run(st, NULL);
    if (rc)
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    db_release(c);
}

/* The first column of the first row as a number (-1 when no row). */
static double num(struct db *db, const char *q, int n, const char *const *args)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    if (db_prepare(c, q, &st))
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    for (int i = 0; i < n; i++)
        db_bind_text(st, i + 1, args[i], (size_t)-1);
    double v = db_step(st) == LOCI_ROW ? db_col_double(st, 0) : -1;
    db_stmt_done(st);
    db_release(c);
    return v;
}

#define SQL(db, q, ...)                                                                            \
    sql((db), (q), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),            \
        (const char *[]){__VA_ARGS__})
#define NUM(db, q, ...)                                                                            \
    num((db), (q), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),            \
        (const char *[]){__VA_ARGS__})

/* A node by plain SQL: key = term, created_at as given. */
static void node_at(struct db *db, const char *user, const char *id, const char *term,
                    const char *created_at, const char *is_root)
{
    SQL(db,
        "INSERT INTO nodes (id, user_id, term, key, summary, is_root, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, 'about ' || ?, CAST(? AS INTEGER), CAST(? AS BIGINT), "
        "CAST(? AS BIGINT))",
        id, user, term, term, term, is_root, created_at, created_at);
}

static void node(struct db *db, const char *user, const char *id, const char *term)
{
    node_at(db, user, id, term, "1000", "0");
}

static void edge(struct db *db, const char *user, const char *src, const char *dst,
                 const char *type, const char *weight)
{
    SQL(db,
        "INSERT INTO edges (user_id, src, dst, type, weight, updated_at) "
        "VALUES (?, ?, ?, ?, CAST(? AS DOUBLE PRECISION), 0)",
        user, src, dst, type, weight);
}

static double weight(struct db *db, const char *src, const char *dst, const char *type)
{
    return NUM(db, "SELECT weight FROM edges WHERE src = ? AND dst = ? AND type = ?", src, dst,
               type);
}

/* ---- running edits the way the API does: one transaction, one event ---- */

enum op { OP_CREATE, OP_UPDATE, OP_MERGE, OP_DELETE, OP_FAMILIARITY };

struct edit {
    enum op op;
    const char *user;
    const char *id;
    const char *other; /* merge: into */
    const char *term;
    const char *summary;
    double value;
    char out_id[UUID_STR_LEN];
    struct graph_delta delta;
};

static int tx_edit(struct db_conn *c, void *arg)
{
    struct edit *e = arg;
    graph_delta_release(&e->delta);
    graph_delta_init(&e->delta);
    int64_t now = clock_now_ms();
    int rc = LOCI_EINTERNAL;
    switch (e->op) {
    case OP_CREATE:
        rc = graph_node_create(c, e->user, e->term, e->summary, now, &e->delta, e->out_id);
        break;
    case OP_UPDATE:
        rc = graph_node_update(c, e->user, e->id, e->term, e->summary, now, &e->delta);
        break;
    case OP_MERGE:
        rc = graph_node_merge(c, e->user, e->id, e->other, now, &e->delta);
        break;
    case OP_DELETE:
        rc = graph_node_delete(c, e->user, e->id, &e->delta);
        break;
    case OP_FAMILIARITY:
        rc = graph_set_familiarity(c, e->user, e->id, e->value, now, &e->delta);
        break;
    }
    if (rc == LOCI_OK)
        rc = graph_emit(c, e->user, &e->delta, "test");
    return rc;
}

/* Run e; the delta stays in e (release with graph_delta_release). */
static int run(struct db *db, struct edit *e)
{
    graph_delta_init(&e->delta);
    return db_tx(db, tx_edit, e);
}

static int run_once(struct db *db, struct edit e)
{
    int rc = run(db, &e);
    graph_delta_release(&e.delta);
    return rc;
}

static json_t *node_json(struct db *db, const char *user, const char *id, bool with_neighbours,
                         int *out_rc)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    json_t *o = NULL;
    *out_rc = graph_node_json(c, user, id, with_neighbours, &o);
    db_release(c);
    return o;
}

static json_t *must_node(struct db *db, const char *user, const char *id, bool with_neighbours)
{
    int rc = 0;
    json_t *o = node_json(db, user, id, with_neighbours, &rc);
    if (rc)
        harness_fail(__FILE__, __LINE__, "node %s: %d", id, rc);
    return o;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool has_alias(json_t *node, const char *alias)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(node, "aliases"), i, v)
    {
        if (strcmp(json_string_value(v), alias) == 0)
            return true;
    }
    return false;
}

static int find(struct db *db, const char *user, const char *term, char out[UUID_STR_LEN])
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    int rc = graph_node_find(c, user, term, out);
    db_release(c);
    return rc;
}

static int graph_events(struct db *db, const char *user)
{
    return (int)NUM(db, "SELECT COUNT(*) FROM events WHERE user_id = ? AND type = 'graph.updated'",
                    user);
}

static int embed_jobs(struct db *db, const char *user)
{
    return (int)NUM(db, "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND type = 'graph.embed'",
                    user);
}

static void for_each_backend(const char *tag, void (*fn)(struct db *db))
{
    const char *urls[2];
    int n = harness_db_urls(tag, urls);
    for (int i = 0; i < n; i++) {
        struct db *db = open_db(urls[i]);
        fn(db);
        db_close(db);
    }
}

/* ---- notes, renames, aliases ---- */

static void create_and_rename(struct db *db)
{
    struct edit e = {.op = OP_CREATE,
                     .user = "u1",
                     .term = "  Neural\tNetworks ",
                     .summary = " Layers of units. "};
    CHECK_INT(run(db, &e), ==, LOCI_OK);
    char nn[UUID_STR_LEN];
    snprintf(nn, sizeof(nn), "%s", e.out_id);
    CHECK_INT(json_array_size(e.delta.nodes), ==, 1);
    CHECK_STR(str(json_array_get(e.delta.nodes, 0), "id"), nn);
    CHECK_INT(json_array_size(e.delta.embed_ids), ==, 1);
    graph_delta_release(&e.delta);
    CHECK_INT(graph_events(db, "u1"), ==, 1);
    CHECK_INT(embed_jobs(db, "u1"), ==, 1);

    json_t *n = must_node(db, "u1", nn, true);
    CHECK_STR(str(n, "term"), "Neural Networks");
    CHECK_STR(str(n, "summary"), "Layers of units.");
    CHECK(json_real_value(json_object_get(n, "familiarity")) == 0);
    CHECK(json_is_null(json_object_get(n, "cluster")));
    CHECK(json_is_false(json_object_get(n, "is_root")));
    CHECK_INT(json_array_size(json_object_get(n, "aliases")), ==, 0);
    CHECK_INT(json_array_size(json_object_get(n, "neighbours")), ==, 0);
    json_decref(n);

    /* Another spelling of the same key is a conflict naming the node. */
    struct edit dup = {.op = OP_CREATE, .user = "u1", .term = "NEURAL NETWORK"};
    CHECK_INT(run(db, &dup), ==, LOCI_ECONFLICT);
    CHECK_STR(dup.out_id, nn);
    graph_delta_release(&dup.delta);
    CHECK_INT(graph_events(db, "u1"), ==, 1); /* nothing appended */

    /* Terms without words, too long, summaries too long. */
    char long_term[GRAPH_TERM_MAX + 2];
    memset(long_term, 'a', sizeof(long_term) - 1);
    long_term[sizeof(long_term) - 1] = '\0';
    char long_sum[GRAPH_SUMMARY_MAX + 2];
    memset(long_sum, 'b', sizeof(long_sum) - 1);
    long_sum[sizeof(long_sum) - 1] = '\0';
    const char *bad_terms[] = {"", "   ", "\t\n", "?!", long_term, NULL};
    for (int i = 0; i < 6; i++)
        CHECK_INT(run_once(db, (struct edit){.op = OP_CREATE, .user = "u1", .term = bad_terms[i]}),
                  ==, LOCI_EUNPROCESSABLE);
    CHECK_INT(
        run_once(db,
                 (struct edit){.op = OP_CREATE, .user = "u1", .term = "ok", .summary = long_sum}),
        ==, LOCI_EUNPROCESSABLE);
    long_term[GRAPH_TERM_MAX] = '\0'; /* exactly the maximum is fine */
    CHECK_INT(run_once(db, (struct edit){.op = OP_CREATE, .user = "u1", .term = long_term}), ==,
              LOCI_OK);

    /* A rename keeps the old spelling, which still finds the node. */
    struct edit ren = {.op = OP_UPDATE, .user = "u1", .id = nn, .term = "Deep Learning"};
    CHECK_INT(run(db, &ren), ==, LOCI_OK);
    CHECK_INT(json_array_size(ren.delta.nodes), ==, 1);
    CHECK_INT(json_array_size(ren.delta.embed_ids), ==, 1);
    graph_delta_release(&ren.delta);
    n = must_node(db, "u1", nn, false);
    CHECK_STR(str(n, "term"), "Deep Learning");
    CHECK(has_alias(n, "Neural Networks"));
    json_decref(n);
    char found[UUID_STR_LEN];
    CHECK_INT(find(db, "u1", "neural network", found), ==, LOCI_OK);
    CHECK_STR(found, nn);
    CHECK_INT(find(db, "u1", "deep learnings", found), ==, LOCI_OK);
    CHECK_STR(found, nn);
    CHECK_INT(find(db, "u1", "unknown thing", found), ==, LOCI_ENOTFOUND);
    CHECK_INT(find(db, "u1", "  ", found), ==, LOCI_EUNPROCESSABLE);
    CHECK_INT(find(db, "u2", "deep learning", found), ==, LOCI_ENOTFOUND);

    /* A note whose key is an alias's is a conflict too. */
    struct edit dup2 = {.op = OP_CREATE, .user = "u1", .term = "neural networks"};
    CHECK_INT(run(db, &dup2), ==, LOCI_ECONFLICT);
    CHECK_STR(dup2.out_id, nn);
    graph_delta_release(&dup2.delta);

    /* Renaming another node onto a taken key (term or alias) is refused. */
    struct edit bp = {.op = OP_CREATE, .user = "u1", .term = "Backpropagation"};
    CHECK_INT(run(db, &bp), ==, LOCI_OK);
    graph_delta_release(&bp.delta);
    CHECK_INT(
        run_once(
            db,
            (struct edit){.op = OP_UPDATE, .user = "u1", .id = bp.out_id, .term = "deep learning"}),
        ==, LOCI_ECONFLICT);
    CHECK_INT(run_once(db, (struct edit){.op = OP_UPDATE,
                                         .user = "u1",
                                         .id = bp.out_id,
                                         .term = "Neural network"}),
              ==, LOCI_ECONFLICT);
    CHECK_INT(
        run_once(db, (struct edit){.op = OP_UPDATE, .user = "u1", .id = bp.out_id, .term = "!!"}),
        ==, LOCI_EUNPROCESSABLE);
    n = must_node(db, "u1", bp.out_id, false);
    CHECK_STR(str(n, "term"), "Backpropagation");
    json_decref(n);

    /* Summary only; then the same values again: no change, no event. */
    int before = graph_events(db, "u1");
    struct edit sum = {.op = OP_UPDATE, .user = "u1", .id = nn, .summary = "Many layers."};
    CHECK_INT(run(db, &sum), ==, LOCI_OK);
    CHECK_INT(json_array_size(sum.delta.embed_ids), ==, 1);
    graph_delta_release(&sum.delta);
    CHECK_INT(graph_events(db, "u1"), ==, before + 1);
    struct edit same = {.op = OP_UPDATE,
                        .user = "u1",
                        .id = nn,
                        .term = "Deep Learning",
                        .summary = "Many layers."};
    CHECK_INT(run(db, &same), ==, LOCI_OK);
    CHECK(graph_delta_is_empty(&same.delta));
    CHECK_INT(json_array_size(same.delta.embed_ids), ==, 0);
    graph_delta_release(&same.delta);
    CHECK_INT(graph_events(db, "u1"), ==, before + 1);

    /* Renaming back: the alias becomes the term, the other name an alias. */
    CHECK_INT(
        run_once(db,
                 (struct edit){.op = OP_UPDATE, .user = "u1", .id = nn, .term = "Neural Networks"}),
        ==, LOCI_OK);
    n = must_node(db, "u1", nn, false);
    CHECK_STR(str(n, "term"), "Neural Networks");
    CHECK_STR(str(n, "summary"), "Many layers.");
    CHECK(!has_alias(n, "Neural Networks"));
    CHECK(has_alias(n, "Deep Learning"));
    json_decref(n);

    /* The same term is free in another user's graph. */
    struct edit other = {.op = OP_CREATE, .user = "u2", .term = "Neural Networks"};
    CHECK_INT(run(db, &other), ==, LOCI_OK);
    CHECK(strcmp(other.out_id, nn) != 0);
    graph_delta_release(&other.delta);
}

TEST(notes_renames_and_aliases)
{
    for_each_backend("gcreate", create_and_rename);
}

/* ---- merge ---- */

static void merging(struct db *db)
{
    node(db, "u1", "n-a", "alpha");
    node(db, "u1", "n-b", "beta");
    node(db, "u1", "n-c", "gamma");
    node(db, "u1", "n-d", "delta");
    node(db, "u1", "n-e", "epsilon");
    SQL(db, "UPDATE nodes SET summary = '' WHERE id = ?", "n-a");
    SQL(db, "UPDATE nodes SET is_root = 1 WHERE id = ?", "n-b");
    SQL(db, "INSERT INTO node_aliases (user_id, node_id, alias, key) VALUES ('u1', ?, ?, ?)", "n-b",
        "Beta!", "beta");
    /* A spelling of b that is a's own term is not kept as an alias of a. */
    SQL(db, "INSERT INTO node_aliases (user_id, node_id, alias, key) VALUES ('u1', ?, ?, ?)", "n-b",
        "alpha", "alpha");
    edge(db, "u1", "n-a", "n-b", "related", "2"); /* becomes a self-loop */
    edge(db, "u1", "n-b", "n-c", "related", "1"); /* adds to a-c */
    edge(db, "u1", "n-a", "n-c", "related", "3");
    edge(db, "u1", "n-b", "n-d", "is_a", "1"); /* adds to a-d is_a */
    edge(db, "u1", "n-a", "n-d", "is_a", "4");
    edge(db, "u1", "n-d", "n-b", "causes", "1.5"); /* new: d -> a */

    struct edit m = {.op = OP_MERGE, .user = "u1", .id = "n-b", .other = "n-a"};
    CHECK_INT(run(db, &m), ==, LOCI_OK);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM nodes WHERE id = ?", "n-b"), ==, 0);
    CHECK(weight(db, "n-a", "n-c", "related") == 4);
    CHECK(weight(db, "n-a", "n-d", "is_a") == 5);
    CHECK(weight(db, "n-d", "n-a", "causes") == 1.5);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM edges WHERE user_id = ?", "u1"), ==, 3);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM edges WHERE src = dst"), ==, 0);
    /* The delta: b gone with its 4 edges, a changed, 3 edges changed. */
    CHECK_INT(json_array_size(m.delta.removed_nodes), ==, 1);
    CHECK_STR(json_string_value(json_array_get(m.delta.removed_nodes, 0)), "n-b");
    CHECK_INT(json_array_size(m.delta.removed_edges), ==, 4);
    CHECK_INT(json_array_size(m.delta.edges), ==, 3);
    CHECK_INT(json_array_size(m.delta.nodes), ==, 1);
    CHECK_STR(str(json_array_get(m.delta.nodes, 0), "id"), "n-a");
    CHECK_INT(json_array_size(m.delta.embed_ids), ==, 1); /* took b's summary */
    graph_delta_release(&m.delta);

    json_t *a = must_node(db, "u1", "n-a", true);
    CHECK_STR(str(a, "summary"), "about beta");
    CHECK(json_is_true(json_object_get(a, "is_root")));
    CHECK(has_alias(a, "beta"));
    CHECK(has_alias(a, "Beta!"));
    CHECK(!has_alias(a, "alpha"));
    CHECK_INT(json_array_size(json_object_get(a, "aliases")), ==, 2);
    CHECK_INT(json_array_size(json_object_get(a, "neighbours")), ==, 3);
    json_decref(a);
    char found[UUID_STR_LEN];
    CHECK_INT(find(db, "u1", "Beta", found), ==, LOCI_OK);
    CHECK_STR(found, "n-a");

    /* Merging a into e: the related edge a-c turns into c-e (src < dst),
     * a's summary does not replace e's. */
    struct edit m2 = {.op = OP_MERGE, .user = "u1", .id = "n-a", .other = "n-e"};
    CHECK_INT(run(db, &m2), ==, LOCI_OK);
    graph_delta_release(&m2.delta);
    CHECK(weight(db, "n-c", "n-e", "related") == 4);
    CHECK(weight(db, "n-e", "n-c", "related") < 0);
    json_t *e = must_node(db, "u1", "n-e", false);
    CHECK_STR(str(e, "summary"), "about epsilon");
    CHECK(has_alias(e, "alpha"));
    CHECK(has_alias(e, "beta"));
    json_decref(e);

    CHECK_INT(
        run_once(db, (struct edit){.op = OP_MERGE, .user = "u1", .id = "n-e", .other = "n-e"}), ==,
        LOCI_EUNPROCESSABLE);
    CHECK_INT(
        run_once(db, (struct edit){.op = OP_MERGE, .user = "u1", .id = "n-e", .other = "n-b"}), ==,
        LOCI_ENOTFOUND);
    CHECK_INT(
        run_once(db, (struct edit){.op = OP_MERGE, .user = "u1", .id = "n-b", .other = "n-e"}), ==,
        LOCI_ENOTFOUND);
}

TEST(merge_moves_edges_aliases_and_summary)
{
    for_each_backend("gmerge", merging);
}

/* ---- delete ---- */

static void deleting(struct db *db)
{
    node(db, "u1", "d-1", "one");
    node(db, "u1", "d-2", "two");
    node(db, "u1", "d-3", "three");
    edge(db, "u1", "d-1", "d-2", "related", "1");
    edge(db, "u1", "d-3", "d-1", "uses", "1");
    edge(db, "u1", "d-2", "d-3", "related", "1");
    SQL(db, "INSERT INTO node_aliases (user_id, node_id, alias, key) VALUES ('u1', ?, ?, ?)", "d-1",
        "One", "one");
    SQL(db,
        "INSERT INTO node_embeddings (node_id, user_id, embedder, dims, vec, content_hash, "
        "updated_at) VALUES (?, 'u1', 'x', 0, ?, 'h', 0)",
        "d-1", "");
    SQL(db, "INSERT INTO conversations (id, user_id, title, created_at, updated_at) "
            "VALUES ('c1', 'u1', 't', 0, 0)");
    SQL(db,
        "INSERT INTO messages (id, user_id, conversation_id, role, content, node_id, "
        "focus_node_id, created_at) VALUES ('m1', 'u1', 'c1', 'user', 'q', ?, ?, 0)",
        "d-1", "d-1");

    CHECK_INT(run_once(db, (struct edit){.op = OP_DELETE, .user = "u2", .id = "d-1"}), ==,
              LOCI_ENOTFOUND);
    struct edit d = {.op = OP_DELETE, .user = "u1", .id = "d-1"};
    CHECK_INT(run(db, &d), ==, LOCI_OK);
    CHECK_INT(json_array_size(d.delta.removed_nodes), ==, 1);
    CHECK_INT(json_array_size(d.delta.removed_edges), ==, 2);
    graph_delta_release(&d.delta);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM nodes WHERE id = ?", "d-1"), ==, 0);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM edges WHERE src = ? OR dst = ?", "d-1", "d-1"), ==, 0);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM edges WHERE user_id = ?", "u1"), ==, 1);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM node_aliases WHERE node_id = ?", "d-1"), ==, 0);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM node_embeddings WHERE node_id = ?", "d-1"), ==, 0);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM messages WHERE id = 'm1' AND node_id IS NULL "
                      "AND focus_node_id IS NULL"),
              ==, 1);
    CHECK_INT(graph_events(db, "u1"), ==, 1);
    CHECK_INT(run_once(db, (struct edit){.op = OP_DELETE, .user = "u1", .id = "d-1"}), ==,
              LOCI_ENOTFOUND);
    char found[UUID_STR_LEN];
    CHECK_INT(find(db, "u1", "One", found), ==, LOCI_ENOTFOUND);
}

TEST(delete_takes_edges_aliases_and_embedding)
{
    for_each_backend("gdelete", deleting);
}

/* ---- familiarity ---- */

static void familiarity(struct db *db)
{
    node(db, "u1", "f-1", "fam");
    const double bad[] = {-0.1, 1.5, -1e-9, 1.0000001, NAN, INFINITY};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(run_once(db,
                           (struct edit){
                               .op = OP_FAMILIARITY, .user = "u1", .id = "f-1", .value = bad[i]}),
                  ==, LOCI_EUNPROCESSABLE);
    CHECK_INT(graph_events(db, "u1"), ==, 0);
    const double good[] = {0, 1, 0.25};
    for (size_t i = 0; i < 3; i++) {
        struct edit e = {.op = OP_FAMILIARITY, .user = "u1", .id = "f-1", .value = good[i]};
        CHECK_INT(run(db, &e), ==, LOCI_OK);
        CHECK_INT(json_array_size(e.delta.nodes), ==, 1);
        CHECK_INT(json_array_size(e.delta.embed_ids), ==, 0);
        graph_delta_release(&e.delta);
        CHECK(NUM(db, "SELECT familiarity FROM nodes WHERE id = ?", "f-1") == good[i]);
    }
    CHECK_INT(graph_events(db, "u1"), ==, 3);
    CHECK_INT(
        run_once(db, (struct edit){.op = OP_FAMILIARITY, .user = "u2", .id = "f-1", .value = 0.5}),
        ==, LOCI_ENOTFOUND);
    CHECK_INT(
        run_once(db, (struct edit){.op = OP_FAMILIARITY, .user = "u1", .id = "nope", .value = 0.5}),
        ==, LOCI_ENOTFOUND);
    CHECK(NUM(db, "SELECT familiarity FROM nodes WHERE id = ?", "f-1") == 0.25);
}

TEST(familiarity_bounds)
{
    for_each_backend("gfam", familiarity);
}

/* ---- neighbours and context ---- */

static void neighbours(struct db *db)
{
    node(db, "u1", "x-0", "centre");
    char id[16], term[16], w[16];
    for (int i = 1; i <= 210; i++) {
        snprintf(id, sizeof(id), "x-%03d", i);
        snprintf(term, sizeof(term), "t%03d", i);
        snprintf(w, sizeof(w), "%d", i);
        node(db, "u1", id, term);
        if (i % 3 == 0)
            edge(db, "u1", "x-0", id, "related", w);
        else if (i % 3 == 1)
            edge(db, "u1", "x-0", id, "is_a", w);
        else
            edge(db, "u1", id, "x-0", "part_of", w);
    }
    json_t *n = must_node(db, "u1", "x-0", true);
    json_t *list = json_object_get(n, "neighbours");
    CHECK_INT(json_array_size(list), ==, 200);
    double last = 1e9;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        double wt = json_real_value(json_object_get(v, "weight"));
        CHECK(wt <= last);
        last = wt;
        const char *type = str(v, "type");
        const char *dir = str(v, "direction");
        json_t *other = json_object_get(v, "node");
        CHECK(str(other, "id") && str(other, "term"));
        CHECK(json_is_number(json_object_get(other, "familiarity")));
        if (strcmp(type, "related") == 0)
            CHECK_STR(dir, "both");
        else if (strcmp(type, "is_a") == 0)
            CHECK_STR(dir, "out");
        else
            CHECK_STR(dir, "in");
    }
    CHECK_STR(str(json_object_get(json_array_get(list, 0), "node"), "id"), "x-210");
    json_decref(n);
    /* From the other side. */
    n = must_node(db, "u1", "x-002", true);
    list = json_object_get(n, "neighbours");
    CHECK_INT(json_array_size(list), ==, 1);
    CHECK_STR(str(json_array_get(list, 0), "direction"), "out");
    json_decref(n);
    n = must_node(db, "u1", "x-001", true);
    CHECK_STR(str(json_array_get(json_object_get(n, "neighbours"), 0), "direction"), "in");
    json_decref(n);
}

TEST(node_neighbours_strongest_first_capped)
{
    for_each_backend("gneigh", neighbours);
}

static void context_ids(struct db *db, const char *user, const char *focus, size_t cap,
                        const char *expect, int expect_rc)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct graph_context_node *v = NULL;
    size_t n = 0;
    int rc = graph_context(c, user, focus, cap, &v, &n);
    db_release(c);
    CHECK_INT(rc, ==, expect_rc);
    char got[512] = "";
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(got);
        snprintf(got + len, sizeof(got) - len, "%s%s", i ? " " : "", v[i].id);
        CHECK(v[i].term && v[i].term[0]);
        CHECK(v[i].summary && strncmp(v[i].summary, "about ", 6) == 0);
    }
    graph_context_release(v, n);
    if (expect)
        CHECK_STR(got, expect);
}

static void context(struct db *db)
{
    const char *ids[] = {"F", "N1", "N2", "N3", "M1", "M2", "M3", "Z", "Q"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        node(db, "u1", ids[i], ids[i]);
    node(db, "u2", "O", "other");
    edge(db, "u1", "F", "N1", "related", "5");
    edge(db, "u1", "F", "N2", "related", "3");
    edge(db, "u1", "F", "N3", "related", "1");
    edge(db, "u1", "N3", "F", "uses", "2.5"); /* N3: 3.5 in all, before N2 */
    edge(db, "u1", "M1", "N1", "related", "10");
    edge(db, "u1", "N1", "M2", "part_of", "1");
    edge(db, "u1", "M3", "N2", "is_a", "7");
    edge(db, "u1", "N2", "M2", "related", "2"); /* M2's best tie: 2 */
    edge(db, "u1", "M1", "Z", "related", "50"); /* 3 hops: never */
    context_ids(db, "u1", "F", 20, "F N1 N3 N2 M1 M3 M2", LOCI_OK);
    context_ids(db, "u1", "F", 3, "F N1 N3", LOCI_OK);
    context_ids(db, "u1", "F", 5, "F N1 N3 N2 M1", LOCI_OK);
    context_ids(db, "u1", "F", 1, "F", LOCI_OK);
    context_ids(db, "u1", "Q", 10, "Q", LOCI_OK);
    context_ids(db, "u1", "M1", 3, "M1 Z N1", LOCI_OK);
    context_ids(db, "u1", "F", 0, NULL, LOCI_EINVAL);
    context_ids(db, "u1", "nope", 5, NULL, LOCI_ENOTFOUND);
    context_ids(db, "u2", "F", 5, NULL, LOCI_ENOTFOUND);
    context_ids(db, "u1", "O", 5, NULL, LOCI_ENOTFOUND);
}

TEST(context_two_hops_strongest_first)
{
    for_each_backend("gctx", context);
}

/* ---- recent roots ---- */

static json_t *roots(struct db *db, const char *user, const char *cursor, int limit, int *out_rc)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    json_t *o = NULL;
    *out_rc = graph_recent_roots(c, user, cursor, limit, &o);
    db_release(c);
    return o;
}

static void recent(struct db *db)
{
    /* 25 roots over 15 distinct times (ties broken by id), 5 non-roots. */
    char id[UUID_STR_LEN], term[16], at[16];
    for (int i = 0; i < 30; i++) {
        ids_uuid7(id);
        snprintf(term, sizeof(term), "r%02d", i);
        snprintf(at, sizeof(at), "%d", 1000 + (i % 15) * 10);
        node_at(db, "u1", id, term, at, i < 25 ? "1" : "0");
    }
    int rc = 0;
    json_t *seen = json_array();
    char cursor[256] = "";
    int pages = 0;
    int64_t last_at = INT64_MAX;
    char last_id[UUID_STR_LEN] = "~";
    for (;;) {
        json_t *page = roots(db, "u1", cursor[0] ? cursor : NULL, 10, &rc);
        CHECK_INT(rc, ==, LOCI_OK);
        pages++;
        json_t *items = json_object_get(page, "items");
        size_t i;
        json_t *v;
        json_array_foreach(items, i, v)
        {
            CHECK(json_is_true(json_object_get(v, "is_root")));
            CHECK(json_is_array(json_object_get(v, "aliases")));
            int64_t a = json_integer_value(json_object_get(v, "created_at"));
            const char *vid = str(v, "id");
            CHECK(a < last_at || (a == last_at && strcmp(vid, last_id) < 0));
            last_at = a;
            snprintf(last_id, sizeof(last_id), "%s", vid);
            json_array_append_new(seen, json_string(vid));
        }
        json_t *next = json_object_get(page, "next_cursor");
        if (json_is_null(next)) {
            CHECK_INT(json_array_size(items), ==, 5);
            json_decref(page);
            break;
        }
        CHECK_INT(json_array_size(items), ==, 10);
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        json_decref(page);
        CHECK(pages < 10);
    }
    CHECK_INT(pages, ==, 3);
    CHECK_INT(json_array_size(seen), ==, 25);
    for (size_t i = 0; i < 25; i++)
        for (size_t k = i + 1; k < 25; k++)
            CHECK(strcmp(json_string_value(json_array_get(seen, i)),
                         json_string_value(json_array_get(seen, k))) != 0);
    json_decref(seen);

    /* A full last page still says there is no more. */
    json_t *all = roots(db, "u1", NULL, 25, &rc);
    CHECK_INT(rc, ==, LOCI_OK);
    CHECK(json_is_null(json_object_get(all, "next_cursor")));
    json_decref(all);

    /* Bad cursors and limits. */
    char enc[128];
    const char *raw = "12:not-a-uuid";
    sodium_bin2base64(enc, sizeof(enc), (const unsigned char *)raw, strlen(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    const char *bad[] = {"!!!", "", "abc=", enc, "x", NULL};
    for (int i = 0; bad[i]; i++) {
        json_t *o = roots(db, "u1", bad[i], 10, &rc);
        CHECK_INT(rc, ==, LOCI_EUNPROCESSABLE);
        CHECK(o == NULL);
    }
    char huge[300];
    memset(huge, 'A', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    CHECK(roots(db, "u1", huge, 10, &rc) == NULL);
    CHECK_INT(rc, ==, LOCI_EUNPROCESSABLE);
    CHECK(roots(db, "u1", NULL, 0, &rc) == NULL);
    CHECK_INT(rc, ==, LOCI_EINVAL);
    CHECK(roots(db, "u1", NULL, 101, &rc) == NULL);
    CHECK_INT(rc, ==, LOCI_EINVAL);

    /* Another user has no roots. */
    json_t *none = roots(db, "u2", NULL, 10, &rc);
    CHECK_INT(rc, ==, LOCI_OK);
    CHECK_INT(json_array_size(json_object_get(none, "items")), ==, 0);
    CHECK(json_is_null(json_object_get(none, "next_cursor")));
    json_decref(none);
}

TEST(recent_roots_paginate_with_a_cursor)
{
    for_each_backend("groots", recent);
}

/* ---- slices ---- */

static json_t *slice(struct db *db, const char *user, int limit, const char *cluster, int *out_rc)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    json_t *o = NULL;
    *out_rc = graph_slice(c, user, limit, cluster, &o);
    db_release(c);
    return o;
}

static bool in_nodes(json_t *nodes, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(nodes, i, v)
    {
        if (strcmp(str(v, "id"), id) == 0)
            return true;
    }
    return false;
}

/* Every edge's ends are in the slice; edges are strongest first. */
static void check_slice(json_t *s, int max_nodes)
{
    json_t *nodes = json_object_get(s, "nodes");
    json_t *edges = json_object_get(s, "edges");
    CHECK(json_array_size(nodes) <= (size_t)max_nodes);
    CHECK(json_array_size(edges) <= (size_t)max_nodes * 4);
    double last = 1e18;
    size_t i;
    json_t *e;
    json_array_foreach(edges, i, e)
    {
        CHECK(in_nodes(nodes, str(e, "src")));
        CHECK(in_nodes(nodes, str(e, "dst")));
        double w = json_real_value(json_object_get(e, "weight"));
        CHECK(w <= last);
        last = w;
    }
    for (i = 0; i < json_array_size(nodes); i++)
        for (size_t k = i + 1; k < json_array_size(nodes); k++)
            CHECK(strcmp(str(json_array_get(nodes, i), "id"),
                         str(json_array_get(nodes, k), "id")) != 0);
}

static void slicing(struct db *db)
{
    char id[16], prev[16], term[16], w[16];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "s-%02d", i);
        snprintf(term, sizeof(term), "s%02d", i);
        node(db, "u1", id, term);
        if (i < 10)
            SQL(db, "UPDATE nodes SET cluster = 'c1' WHERE id = ?", id);
        if (i > 0 && i < 30) {
            snprintf(w, sizeof(w), "%d", i);
            edge(db, "u1", prev, id, "related", w);
        }
        snprintf(prev, sizeof(prev), "%s", id);
    }
    SQL(db, "UPDATE nodes SET updated_at = 5000 WHERE id = 's-39'");
    node(db, "u2", "s-other", "other");

    int rc = 0;
    json_t *s = slice(db, "u1", 5, NULL, &rc);
    CHECK_INT(rc, ==, LOCI_OK);
    check_slice(s, 5);
    CHECK(json_is_true(json_object_get(s, "truncated")));
    CHECK_INT(json_array_size(json_object_get(s, "nodes")), ==, 5);
    /* The strongest edge is s-28 - s-29 (weight 29). */
    json_t *e0 = json_array_get(json_object_get(s, "edges"), 0);
    CHECK_STR(str(e0, "src"), "s-28");
    CHECK_STR(str(e0, "dst"), "s-29");
    CHECK(json_object_get(json_array_get(json_object_get(s, "nodes"), 0), "aliases") == NULL);
    json_decref(s);

    /* One node: no edge fits, the most recent node does. */
    s = slice(db, "u1", 1, NULL, &rc);
    CHECK_INT(rc, ==, LOCI_OK);
    check_slice(s, 1);
    CHECK_INT(json_array_size(json_object_get(s, "edges")), ==, 0);
    CHECK_STR(str(json_array_get(json_object_get(s, "nodes"), 0), "id"), "s-39");
    json_decref(s);

    /* Room for everything. */
    s = slice(db, "u1", 2000, NULL, &rc);
    CHECK_INT(rc, ==, LOCI_OK);
    check_slice(s, 2000);
    CHECK(json_is_false(json_object_get(s, "truncated")));
    CHECK_INT(json_array_size(json_object_get(s, "nodes")), ==, 40);
    CHECK_INT(json_array_size(json_object_get(s, "edges")), ==, 29);
    CHECK(!in_nodes(json_object_get(s, "nodes"), "s-other"));
    json_decref(s);

    /* Edges cap at 4 per node of limit: 10 nodes, 29 edges -> truncated. */
    s = slice(db, "u1", 10, NULL, &rc);
    check_slice(s, 10);
    CHECK(json_is_true(json_object_get(s, "truncated")));
    json_decref(s);

    /* One cluster: its nodes and the edges inside it only. */
    s = slice(db, "u1", 100, "c1", &rc);
    CHECK_INT(rc, ==, LOCI_OK);
    check_slice(s, 100);
    CHECK_INT(json_array_size(json_object_get(s, "nodes")), ==, 10);
    CHECK_INT(json_array_size(json_object_get(s, "edges")), ==, 9);
    CHECK(json_is_false(json_object_get(s, "truncated")));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "nodes"), i, v)
    {
        CHECK_STR(str(v, "cluster"), "c1");
    }
    json_decref(s);
    s = slice(db, "u1", 100, "none", &rc);
    CHECK_INT(json_array_size(json_object_get(s, "nodes")), ==, 0);
    json_decref(s);

    CHECK(slice(db, "u1", 0, NULL, &rc) == NULL);
    CHECK_INT(rc, ==, LOCI_EINVAL);
    CHECK(slice(db, "u1", 2001, NULL, &rc) == NULL);
    CHECK_INT(rc, ==, LOCI_EINVAL);

    s = slice(db, "u2", 100, NULL, &rc);
    CHECK_INT(json_array_size(json_object_get(s, "nodes")), ==, 1);
    CHECK_INT(json_array_size(json_object_get(s, "edges")), ==, 0);
    json_decref(s);
}

TEST(slice_strongest_edges_first_capped)
{
    for_each_backend("gslice", slicing);
}

/* ---- another user's nodes ---- */

static void isolation(struct db *db)
{
    node(db, "u1", "i-1", "mine");
    node(db, "u2", "i-2", "theirs");
    edge(db, "u1", "i-1", "i-2", "related", "1"); /* a bad row must not leak */
    int rc = 0;
    json_t *o = node_json(db, "u2", "i-1", true, &rc);
    CHECK_INT(rc, ==, LOCI_ENOTFOUND);
    CHECK(o == NULL);
    o = must_node(db, "u1", "i-1", true);
    CHECK_INT(json_array_size(json_object_get(o, "neighbours")), ==, 0);
    json_decref(o);
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    CHECK_INT(graph_node_exists(c, "u1", "i-1"), ==, LOCI_OK);
    CHECK_INT(graph_node_exists(c, "u2", "i-1"), ==, LOCI_ENOTFOUND);
    db_release(c);
    CHECK_INT(run_once(db, (struct edit){.op = OP_UPDATE, .user = "u2", .id = "i-1", .term = "x"}),
              ==, LOCI_ENOTFOUND);
    CHECK_INT(
        run_once(db, (struct edit){.op = OP_MERGE, .user = "u2", .id = "i-1", .other = "i-2"}), ==,
        LOCI_ENOTFOUND);
    CHECK_INT(
        run_once(db, (struct edit){.op = OP_MERGE, .user = "u2", .id = "i-2", .other = "i-1"}), ==,
        LOCI_ENOTFOUND);
    CHECK_INT(
        run_once(db, (struct edit){.op = OP_MERGE, .user = "u1", .id = "i-1", .other = "i-2"}), ==,
        LOCI_ENOTFOUND);
    CHECK_INT(run_once(db, (struct edit){.op = OP_DELETE, .user = "u2", .id = "i-1"}), ==,
              LOCI_ENOTFOUND);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM nodes"), ==, 2);
    CHECK_INT(graph_events(db, "u1") + graph_events(db, "u2"), ==, 0);
}

TEST(another_users_nodes_are_not_found)
{
    for_each_backend("giso", isolation);
}

/* ---- the graph.embed job ---- */

static bool job_is(struct db *db, const char *id, const char *status)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    json_t *j = NULL;
    bool is = jobs_get(c, id, NULL, true, &j) == LOCI_OK && strcmp(str(j, "status"), status) == 0;
    json_decref(j);
    db_release(c);
    return is;
}

static void embed_and_wait(struct db *db, const char *user, const char *ids_json)
{
    json_error_t je;
    json_t *payload = json_loads(ids_json, 0, &je);
    CHECK(payload);
    struct jobs_spec spec = {.type = "graph.embed", .payload = payload, .user_id = user};
    char id[UUID_STR_LEN];
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    CHECK_INT(jobs_enqueue(c, &spec, id, NULL), ==, LOCI_OK);
    db_release(c);
    json_decref(payload);
    for (int i = 0; i < 1000 && !job_is(db, id, "completed"); i++) {
        CHECK(!job_is(db, id, "dead"));
        clock_sleep_ms(10);
    }
    CHECK(job_is(db, id, "completed"));
}

static void embedding(struct db *db)
{
    struct config cfg;
    config_init(&cfg);
    char err[256];
    CHECK_INT(config_set(&cfg, "ai_providers", "local", CFG_SRC_FLAG, err, sizeof(err)), ==, 0);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), ==, 0);
    struct ai *ai = NULL;
    if (ai_new(&cfg, db, &ai, err, sizeof(err)))
        harness_fail(__FILE__, __LINE__, "ai_new: %s", err);
    struct jobs_opts o = {.workers = 1,
                          .lease_ms = 30000,
                          .backoff_base_ms = 20,
                          .backoff_cap_ms = 50,
                          .poll_ms = 10};
    struct jobs *js = jobs_new(db, &o);
    CHECK_INT(graph_register_jobs(js, ai), ==, LOCI_OK);
    CHECK_INT(jobs_start(js), ==, LOCI_OK);

    /* A note enqueues its own embedding through graph_emit. */
    struct edit e = {
        .op = OP_CREATE, .user = "u1", .term = "Photosynthesis", .summary = "Light into sugar."};
    CHECK_INT(run(db, &e), ==, LOCI_OK);
    graph_delta_release(&e.delta);
    jobs_wake(js);
    for (int i = 0; i < 1000 && NUM(db, "SELECT COUNT(*) FROM node_embeddings") < 1; i++)
        clock_sleep_ms(10);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM node_embeddings WHERE node_id = ? AND user_id = 'u1'",
                  e.out_id),
              ==, 1);
    double dims = NUM(db, "SELECT dims FROM node_embeddings WHERE node_id = ?", e.out_id);
    CHECK(dims > 0);
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    CHECK_INT(db_prepare(c,
                         "SELECT vec, embedder, content_hash, updated_at FROM node_embeddings "
                         "WHERE node_id = ?",
                         &st),
              ==, LOCI_OK);
    db_bind_text(st, 1, e.out_id, (size_t)-1);
    CHECK_INT(db_step(st), ==, LOCI_ROW);
    size_t blob_n = 0;
    const unsigned char *blob = db_col_blob(st, 0, &blob_n);
    CHECK_INT(blob_n, ==, (size_t)dims * 4);
    /* L2-normalised float32 little-endian. */
    double norm = 0;
    for (size_t i = 0; i < blob_n; i += 4) {
        uint32_t u = (uint32_t)blob[i] | (uint32_t)blob[i + 1] << 8 | (uint32_t)blob[i + 2] << 16 |
                     (uint32_t)blob[i + 3] << 24;
        float f;
        memcpy(&f, &u, sizeof(f));
        norm += (double)f * f;
    }
    CHECK(fabs(norm - 1) < 1e-3);
    CHECK(strncmp(db_col_text(st, 1, NULL), "local:", 6) == 0);
    char hash[64];
    snprintf(hash, sizeof(hash), "%s", db_col_text(st, 2, NULL));
    CHECK_INT(strlen(hash), ==, 32);
    int64_t stamp = db_col_int64(st, 3);
    db_stmt_done(st);
    db_release(c);

    /* The same text again: skipped, the row untouched. */
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"node_ids\":[\"%s\",\"%s\"]}", e.out_id, e.out_id);
    clock_sleep_ms(5);
    embed_and_wait(db, "u1", payload);
    CHECK(NUM(db, "SELECT updated_at FROM node_embeddings WHERE node_id = ?", e.out_id) ==
          (double)stamp);

    /* A new summary: a new hash. */
    CHECK_INT(run_once(db, (struct edit){.op = OP_UPDATE,
                                         .user = "u1",
                                         .id = e.out_id,
                                         .summary = "Sugar from light."}),
              ==, LOCI_OK);
    embed_and_wait(db, "u1", payload);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM node_embeddings WHERE node_id = ? AND content_hash = ?",
                  e.out_id, hash),
              ==, 0);

    /* Another user's job cannot embed u1's node; deleted and unknown ids
     * are skipped. */
    char n2[UUID_STR_LEN];
    ids_uuid7(n2);
    node(db, "u1", n2, "Chlorophyll"); /* no job of its own */
    snprintf(payload, sizeof(payload), "{\"node_ids\":[\"%s\", 7, \"zz\"]}", n2);
    embed_and_wait(db, "u2", payload);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM node_embeddings WHERE node_id = ?", n2), ==, 0);
    CHECK_INT(run_once(db, (struct edit){.op = OP_DELETE, .user = "u1", .id = n2}), ==, LOCI_OK);
    embed_and_wait(db, "u1", payload);
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM node_embeddings"), ==, 1);

    jobs_stop(js, 2000);
    jobs_free(js);
    ai_free(ai);
    config_release(&cfg);
}

TEST(embed_job_stores_vectors_and_skips_unchanged)
{
    for_each_backend("gembed", embedding);
}
