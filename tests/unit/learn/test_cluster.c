/*
 * test_cluster.c - clustering a learner's graph: the bare igraph call on a
 * planted partition (Leiden for modularity and Louvain recover the planted
 * groups), and the stored result on SQLite and PostgreSQL: every node's
 * cluster, one clusters row per community with its label, stable ids on a
 * second run (no node changes), one graph.updated event, the collapsed
 * graph, and another user's graph left alone.
 */
#include "core/err.h"
#include "harness.h"
#include "learn/cluster.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define GROUPS   4
#define PER      25
#define N_PLANT  (GROUPS * PER)
#define P_IN     0.5
#define P_ACROSS 0.02

/* A reproducible generator (xorshift64). */
static uint64_t rng_state = 88172645463325252ull;
static double rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

struct planted {
    int64_t from[N_PLANT * N_PLANT / 2], to[N_PLANT * N_PLANT / 2];
    double w[N_PLANT * N_PLANT / 2];
    size_t n;
};

static void plant(struct planted *p)
{
    rng_state = 88172645463325252ull;
    p->n = 0;
    for (int i = 0; i < N_PLANT; i++)
        for (int j = i + 1; j < N_PLANT; j++) {
            double prob = i / PER == j / PER ? P_IN : P_ACROSS;
            if (rnd() < prob) {
                p->from[p->n] = i;
                p->to[p->n] = j;
                p->w[p->n] = 1 + (double)(p->n % 3);
                p->n++;
            }
        }
}

/* Each planted group lands in one community of its own: the partition
 * found equals the planted one up to renaming. */
static void check_recovered(const int64_t *memb, int k)
{
    CHECK_INT(k, ==, GROUPS);
    for (int g = 0; g < GROUPS; g++) {
        int64_t c = memb[g * PER];
        for (int i = 0; i < PER; i++)
            CHECK_INT(memb[g * PER + i], ==, c);
        for (int h = 0; h < g; h++)
            CHECK(memb[h * PER] != c);
    }
}

TEST(planted_partition_recovered_by_leiden_and_louvain)
{
    static struct planted p;
    plant(&p);
    int64_t memb[N_PLANT];
    double q = 0;
    int k = learn_cluster_membership(N_PLANT, p.from, p.to, p.w, p.n, LEARN_LEIDEN, memb, &q);
    check_recovered(memb, k);
    printf("# leiden: %zu edges, %d communities, modularity %.4f\n", p.n, k, q);
    CHECK(q > 0.6);
    double q2 = 0;
    k = learn_cluster_membership(N_PLANT, p.from, p.to, p.w, p.n, LEARN_LOUVAIN, memb, &q2);
    check_recovered(memb, k);
    printf("# louvain: %d communities, modularity %.4f\n", k, q2);
    CHECK(q2 > 0.6);
    /* No edges: every node alone. */
    k = learn_cluster_membership(3, NULL, NULL, NULL, 0, LEARN_LEIDEN, memb, &q);
    CHECK_INT(k, ==, 3);
    CHECK_INT(memb[2], ==, 2);
}

/* ---- stored, on both backends ---- */

static void exec_sql(struct db *db, const char *q)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    if (db_exec(c, q))
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    db_release(c);
}

static int64_t count(struct db *db, const char *q, const char *arg)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    if (db_prepare(c, q, &st))
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    if (arg)
        db_bind_text(st, 1, arg, (size_t)-1);
    int64_t v = db_step(st) == LOCI_ROW ? db_col_int64(st, 0) : -1;
    db_stmt_done(st);
    db_release(c);
    return v;
}

static void node_id(int i, char out[40])
{
    snprintf(out, 40, "00000000-0000-7000-8000-%012d", i);
}

static void load_planted(struct db *db, const struct planted *p)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    CHECK_INT(db_begin(c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    for (int i = 0; i < N_PLANT; i++) {
        char id[40], term[32];
        node_id(i, id);
        snprintf(term, sizeof(term), "g%d term %02d", i / PER, i % PER);
        CHECK_INT(db_prepare(c,
                             "INSERT INTO nodes (id, user_id, term, key, familiarity, created_at, "
                             "updated_at) VALUES (?, 'u1', ?, ?, ?, 0, 0)",
                             &st),
                  ==, LOCI_OK);
        db_bind_text(st, 1, id, (size_t)-1);
        db_bind_text(st, 2, term, (size_t)-1);
        db_bind_text(st, 3, term, (size_t)-1);
        db_bind_double(st, 4, (i / PER) * 0.25);
        CHECK_INT(db_run(st, NULL), ==, LOCI_OK);
    }
    for (size_t e = 0; e < p->n; e++) {
        char a[40], b[40];
        node_id((int)p->from[e], a);
        node_id((int)p->to[e], b);
        CHECK_INT(db_prepare(c,
                             "INSERT INTO edges (user_id, src, dst, type, weight, updated_at) "
                             "VALUES ('u1', ?, ?, 'related', ?, 0)",
                             &st),
                  ==, LOCI_OK);
        db_bind_text(st, 1, a, (size_t)-1);
        db_bind_text(st, 2, b, (size_t)-1);
        db_bind_double(st, 3, p->w[e]);
        CHECK_INT(db_run(st, NULL), ==, LOCI_OK);
    }
    CHECK_INT(db_commit(c), ==, LOCI_OK);
    db_release(c);
}

static void stored(struct db *db)
{
    static struct planted p;
    plant(&p);
    load_planted(db, &p);
    /* Another user's lone node stays unclustered. */
    exec_sql(db, "INSERT INTO nodes (id, user_id, term, key, created_at, updated_at) VALUES "
                 "('00000000-0000-7000-8000-999999999999', 'u2', 'other', 'other', 0, 0)");
    struct learn_cluster_stats s;
    CHECK_INT(learn_cluster_user(db, "u1", LEARN_LEIDEN, 5000, &s), ==, LOCI_OK);
    printf("# %s: %zu nodes, %zu edges, %zu clusters, modularity %.4f, changed %zu\n",
           db_backend_name(db), s.n_nodes, s.n_edges, s.n_clusters, s.modularity, s.n_changed);
    CHECK_INT(s.n_nodes, ==, N_PLANT);
    CHECK_INT(s.n_clusters, ==, GROUPS);
    CHECK_INT(s.n_changed, ==, N_PLANT);
    CHECK_INT(count(db, "SELECT COUNT(*) FROM clusters WHERE user_id = ?", "u1"), ==, GROUPS);
    CHECK_INT(count(db, "SELECT COUNT(DISTINCT cluster) FROM nodes WHERE user_id = ?", "u1"), ==,
              GROUPS);
    CHECK_INT(count(db, "SELECT COUNT(*) FROM nodes WHERE user_id = ? AND cluster IS NULL", "u2"),
              ==, 1);
    /* Each planted group is one cluster, and the label names its terms. */
    for (int g = 0; g < GROUPS; g++) {
        char like[16];
        snprintf(like, sizeof(like), "g%d term %%", g);
        CHECK_INT(count(db,
                        "SELECT COUNT(DISTINCT cluster) FROM nodes WHERE user_id = 'u1' AND "
                        "term LIKE ?",
                        like),
                  ==, 1);
        CHECK_INT(count(db,
                        "SELECT member_count FROM clusters k WHERE user_id = 'u1' AND id = "
                        "(SELECT MIN(cluster) FROM nodes WHERE user_id = 'u1' AND term LIKE ?)",
                        like),
                  ==, PER);
        char label_like[16];
        snprintf(label_like, sizeof(label_like), "g%d term%%", g);
        CHECK_INT(count(db, "SELECT COUNT(*) FROM clusters WHERE user_id = 'u1' AND label LIKE ?",
                        label_like),
                  ==, 1);
    }
    CHECK_INT(
        count(db, "SELECT COUNT(*) FROM events WHERE user_id = ? AND type = 'graph.updated'", "u1"),
        ==, 1);
    /* Mean familiarity per cluster: group g has 0.25 * g. */
    CHECK_INT(count(db,
                    "SELECT COUNT(*) FROM clusters WHERE user_id = ? AND "
                    "mean_familiarity IN (0, 0.25, 0.5, 0.75)",
                    "u1"),
              ==, GROUPS);

    /* Again: same clusters, same ids, nothing changes, no new event. */
    CHECK_INT(learn_cluster_user(db, "u1", LEARN_LEIDEN, 6000, &s), ==, LOCI_OK);
    CHECK_INT(s.n_changed, ==, 0);
    CHECK_INT(
        count(db, "SELECT COUNT(*) FROM events WHERE user_id = ? AND type = 'graph.updated'", "u1"),
        ==, 1);

    /* A new node joins a group: only it changes. */
    exec_sql(db, "INSERT INTO nodes (id, user_id, term, key, created_at, updated_at) VALUES "
                 "('00000000-0000-7000-8000-000000000500', 'u1', 'newcomer', 'newcomer', 0, 0)");
    for (int i = 0; i < 5; i++) {
        char q[256];
        snprintf(q, sizeof(q),
                 "INSERT INTO edges (user_id, src, dst, type, weight, updated_at) VALUES ('u1', "
                 "'00000000-0000-7000-8000-%012d', '00000000-0000-7000-8000-000000000500', "
                 "'related', 3, 0)",
                 i);
        exec_sql(db, q);
    }
    /* The collapsed view before the run: the newcomer is unclustered. */
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    json_t *col = NULL;
    CHECK_INT(learn_cluster_collapsed(c, "u1", 100, &col), ==, LOCI_OK);
    CHECK_INT(json_array_size(json_object_get(col, "clusters")), ==, GROUPS);
    CHECK_INT(json_integer_value(json_object_get(col, "unclustered")), ==, 1);
    json_decref(col);
    db_release(c);

    CHECK_INT(learn_cluster_user(db, "u1", LEARN_LOUVAIN, 7000, &s), ==, LOCI_OK);
    CHECK_INT(s.n_changed, ==, 1);
    CHECK_INT(count(db,
                    "SELECT COUNT(*) FROM nodes WHERE user_id = 'u1' AND cluster = (SELECT cluster "
                    "FROM nodes WHERE id = '00000000-0000-7000-8000-000000000000')",
                    NULL),
              ==, PER + 1);

    /* Collapsed: 4 meta-nodes of 25/26 members, edges between them summed. */
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    CHECK_INT(learn_cluster_collapsed(c, "u1", 100, &col), ==, LOCI_OK);
    json_t *clusters = json_object_get(col, "clusters");
    CHECK_INT(json_array_size(clusters), ==, GROUPS);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(clusters, 0), "member_count")), ==,
              PER + 1);
    CHECK_INT(json_integer_value(json_object_get(col, "unclustered")), ==, 0);
    json_t *edges = json_object_get(col, "edges");
    CHECK(json_array_size(edges) > 0 && json_array_size(edges) <= 6);
    double across = 0;
    size_t i;
    json_t *e;
    json_array_foreach(edges, i, e)
    {
        CHECK(strcmp(json_string_value(json_object_get(e, "src")),
                     json_string_value(json_object_get(e, "dst"))) < 0);
        across += json_real_value(json_object_get(e, "weight"));
    }
    double expect = 0;
    for (size_t k = 0; k < p.n; k++)
        if (p.from[k] / PER != p.to[k] / PER)
            expect += p.w[k];
    CHECK(across == expect);
    json_decref(col);
    CHECK_INT(learn_cluster_collapsed(c, "u1", 2, &col), ==, LOCI_OK);
    CHECK_INT(json_array_size(json_object_get(col, "clusters")), ==, 2);
    CHECK(json_array_size(json_object_get(col, "edges")) <= 1);
    json_decref(col);
    CHECK_INT(learn_cluster_collapsed(c, "u1", 0, &col), ==, LOCI_EINVAL);
    /* Another user sees no clusters, and cannot name ours. */
    CHECK_INT(learn_cluster_collapsed(c, "u2", 100, &col), ==, LOCI_OK);
    CHECK_INT(json_array_size(json_object_get(col, "clusters")), ==, 0);
    CHECK_INT(json_integer_value(json_object_get(col, "unclustered")), ==, 1);
    json_decref(col);
    char cid[64];
    {
        struct db_stmt *st = NULL;
        CHECK_INT(db_prepare(c, "SELECT id FROM clusters WHERE user_id = 'u1'", &st), ==, LOCI_OK);
        CHECK_INT(db_step(st), ==, LOCI_ROW);
        snprintf(cid, sizeof(cid), "%s", db_col_text(st, 0, NULL));
        db_stmt_done(st);
    }
    CHECK_INT(learn_cluster_exists(c, "u1", cid), ==, LOCI_OK);
    CHECK_INT(learn_cluster_exists(c, "u2", cid), ==, LOCI_ENOTFOUND);
    db_release(c);
    /* A user without nodes: nothing to do. */
    CHECK_INT(learn_cluster_user(db, "nobody", LEARN_LEIDEN, 8000, &s), ==, LOCI_OK);
    CHECK_INT(s.n_nodes, ==, 0);
}

TEST(clusters_stored_on_both_backends)
{
    const char *urls[2];
    int n = harness_db_urls("cluster", urls);
    for (int i = 0; i < n; i++) {
        struct db *db = NULL;
        char err[256];
        if (db_open(urls[i], 4, &db, err, sizeof(err)) ||
            db_migrate(db, &(int){0}, err, sizeof(err)))
            harness_fail(__FILE__, __LINE__, "db: %s", err);
        exec_sql(db, "INSERT INTO users (id, email, email_norm, password_hash, created_at, "
                     "updated_at) VALUES ('u1', 'a@x', 'a@x', 'h', 0, 0), "
                     "('u2', 'b@x', 'b@x', 'h', 0, 0)");
        stored(db);
        db_close(db);
    }
}
