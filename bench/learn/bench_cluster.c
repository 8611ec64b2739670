/*
 * bench_cluster.c - the clustering figure of issue 8: the compress_graph
 * job's time for one user's 100,000-edge graph against the bare igraph
 * call on the same graph (target: the job within 1.5 x the bare call).
 *
 * Usage: bench_cluster [DATABASE_URL] [EDGES=100000] [ROUNDS=7]
 *
 * The graph: EDGES distinct "related" edges (weights 1-3) over EDGES/5
 * nodes in planted groups of 50, 90 % of the edges inside a group. It is
 * written once into a fresh database (default: a SQLite file under /tmp).
 *
 * Timed, ROUNDS times each, alternating, median and min reported:
 *   bare   igraph_create + igraph_strength + igraph_community_leiden
 *          (modularity: node strengths, resolution 1/(2m)) on in-memory
 *          arrays, nothing else;
 *   job    learn_cluster_user(): read nodes and edges from the database,
 *          the same igraph work plus the modularity of the result, stable
 *          cluster ids, labels, and the transaction that stores them.
 * The job's first run writes every node's cluster (all of them change) and
 * is reported apart; later runs find the same clusters and write only the
 * clusters rows. Every figure is also a line "RESULT key=value ...".
 */
#include "core/alloc.h"
#include "core/err.h"
#include "learn/cluster.h"
#include "store/db.h"

#include <igraph/igraph.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GROUP    50
#define P_INSIDE 0.9

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* EDGES distinct pairs a < b, encoded a * n + b, sorted. */
static uint64_t *make_pairs(size_t n, size_t edges)
{
    uint64_t *p = xmalloc(edges * sizeof(*p));
    size_t have = 0;
    while (have < edges) {
        while (have < edges) {
            uint64_t a = rng() % n, b;
            if ((double)(rng() >> 11) / 9007199254740992.0 < P_INSIDE)
                b = a / GROUP * GROUP + rng() % GROUP;
            else
                b = rng() % n;
            if (b >= n || a == b)
                continue;
            p[have++] = a < b ? a * n + b : b * n + a;
        }
        qsort(p, have, sizeof(*p), cmp_u64);
        size_t k = 0;
        for (size_t i = 0; i < have; i++)
            if (k == 0 || p[i] != p[k - 1])
                p[k++] = p[i];
        have = k;
    }
    return p;
}

static void node_id(size_t i, char out[64])
{
    snprintf(out, 64, "01900000-0000-7000-8000-%012zu", i % 1000000000000u);
}

static int fill(struct db *db, size_t n, const uint64_t *pairs, size_t edges)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    if (rc)
        return rc;
    rc = db_exec(c, "INSERT INTO users (id, email, email_norm, password_hash, created_at, "
                    "updated_at) VALUES ('bench', 'b@x', 'b@x', 'h', 0, 0)");
    if (rc == LOCI_OK)
        rc = db_begin(c);
    struct db_stmt *st = NULL;
    for (size_t i = 0; rc == LOCI_OK && i < n; i++) {
        char id[64], term[32];
        node_id(i, id);
        snprintf(term, sizeof(term), "term %zu", i);
        rc = db_prepare(c,
                        "INSERT INTO nodes (id, user_id, term, key, familiarity, created_at, "
                        "updated_at) VALUES (?, 'bench', ?, ?, 0.5, 0, 0)",
                        &st);
        if (rc)
            break;
        db_bind_text(st, 1, id, (size_t)-1);
        db_bind_text(st, 2, term, (size_t)-1);
        db_bind_text(st, 3, term, (size_t)-1);
        rc = db_run(st, NULL);
    }
    for (size_t e = 0; rc == LOCI_OK && e < edges; e++) {
        char a[64], b[64];
        node_id((size_t)(pairs[e] / n), a);
        node_id((size_t)(pairs[e] % n), b);
        rc = db_prepare(c,
                        "INSERT INTO edges (user_id, src, dst, type, weight, updated_at) "
                        "VALUES ('bench', ?, ?, 'related', ?, 0)",
                        &st);
        if (rc)
            break;
        db_bind_text(st, 1, a, (size_t)-1);
        db_bind_text(st, 2, b, (size_t)-1);
        db_bind_double(st, 3, (double)(1 + e % 3));
        rc = db_run(st, NULL);
    }
    if (rc == LOCI_OK)
        rc = db_commit(c);
    else
        db_rollback(c);
    if (rc)
        fprintf(stderr, "bench_cluster: cannot fill: %s\n", db_errmsg(c));
    db_release(c);
    return rc;
}

/* The bare igraph work: build, strengths, Leiden for modularity. */
static double bare_leiden(size_t n, const uint64_t *pairs, size_t edges, igraph_integer_t *out_k)
{
    double t0 = now_ms();
    igraph_vector_int_t ev, memb;
    igraph_vector_t w, s;
    igraph_t g;
    igraph_vector_int_init(&ev, (igraph_integer_t)(2 * edges));
    igraph_vector_init(&w, (igraph_integer_t)edges);
    double m = 0;
    for (size_t e = 0; e < edges; e++) {
        VECTOR(ev)[2 * e] = (igraph_integer_t)(pairs[e] / n);
        VECTOR(ev)[2 * e + 1] = (igraph_integer_t)(pairs[e] % n);
        VECTOR(w)[e] = (double)(1 + e % 3);
        m += VECTOR(w)[e];
    }
    igraph_create(&g, &ev, (igraph_integer_t)n, IGRAPH_UNDIRECTED);
    igraph_vector_init(&s, (igraph_integer_t)n);
    igraph_strength(&g, &s, igraph_vss_all(), IGRAPH_ALL, IGRAPH_LOOPS, &w);
    igraph_vector_int_init(&memb, (igraph_integer_t)n);
    igraph_rng_seed(igraph_rng_default(), 20261122);
    igraph_community_leiden(&g, &w, &s, 1.0 / (2.0 * m), 0.01, false, -1, &memb, out_k, NULL);
    double ms = now_ms() - t0;
    igraph_vector_int_destroy(&memb);
    igraph_vector_destroy(&s);
    igraph_destroy(&g);
    igraph_vector_destroy(&w);
    igraph_vector_int_destroy(&ev);
    return ms;
}

int main(int argc, char **argv)
{
    char path[256];
    snprintf(path, sizeof(path), "sqlite:/tmp/bench_cluster_%d.db", (int)getpid());
    const char *url = argc > 1 ? argv[1] : path;
    size_t edges = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 100000;
    int rounds = argc > 3 ? atoi(argv[3]) : 7;
    if (edges < 100 || rounds < 1 || rounds > 100) {
        fprintf(stderr, "usage: bench_cluster [DATABASE_URL] [EDGES>=100] [ROUNDS 1..100]\n");
        return 2;
    }
    size_t n = edges / 5;
    struct db *db = NULL;
    char err[256];
    if (db_open(url, 2, &db, err, sizeof(err)) || db_migrate(db, &(int){0}, err, sizeof(err))) {
        fprintf(stderr, "bench_cluster: %s\n", err);
        return 1;
    }
    uint64_t *pairs = make_pairs(n, edges);
    double t0 = now_ms();
    if (fill(db, n, pairs, edges)) {
        db_close(db);
        return 1;
    }
    printf("graph: %zu nodes, %zu edges in groups of %d (%.0f %% inside), %s, filled in %.0f ms\n",
           n, edges, GROUP, P_INSIDE * 100, db_backend_name(db), now_ms() - t0);

    double *bare = xcalloc((size_t)rounds, sizeof(double));
    double *job = xcalloc((size_t)rounds, sizeof(double));
    double *load = xcalloc((size_t)rounds, sizeof(double));
    double *algo = xcalloc((size_t)rounds, sizeof(double));
    double *write = xcalloc((size_t)rounds, sizeof(double));
    igraph_integer_t k = 0;

    struct learn_cluster_stats s;
    t0 = now_ms();
    int rc = learn_cluster_user(db, "bench", LEARN_LEIDEN, 1000, &s);
    double first = now_ms() - t0;
    if (rc) {
        fprintf(stderr, "bench_cluster: the job failed: %s\n", loci_err_code(rc));
        return 1;
    }
    printf("job, first run: %.1f ms (load %.1f, igraph %.1f, write %.1f), %zu clusters, "
           "modularity %.4f, %zu nodes changed\n",
           first, s.load_ms, s.algo_ms, s.write_ms, s.n_clusters, s.modularity, s.n_changed);
    size_t changed = 0;
    /* Bare and job alternate, so that drift in the machine's load hits both. */
    for (int r = 0; r < rounds; r++) {
        bare[r] = bare_leiden(n, pairs, edges, &k);
        t0 = now_ms();
        rc = learn_cluster_user(db, "bench", LEARN_LEIDEN, 2000 + r, &s);
        job[r] = now_ms() - t0;
        load[r] = s.load_ms;
        algo[r] = s.algo_ms;
        write[r] = s.write_ms;
        changed += s.n_changed;
        if (rc) {
            fprintf(stderr, "bench_cluster: the job failed: %s\n", loci_err_code(rc));
            return 1;
        }
    }
    double mb = median(bare, rounds), mj = median(job, rounds);
    double min_b = bare[0], min_j = job[0]; /* sorted by median() */
    printf("bare igraph (create + strength + Leiden): median %.1f ms over %d, %lld communities\n",
           mb, rounds, (long long)k);
    printf("job, later runs: median %.1f ms (load %.1f, igraph %.1f, write %.1f), %zu nodes "
           "changed in all\n",
           mj, median(load, rounds), median(algo, rounds), median(write, rounds), changed);
    printf("min: bare %.1f ms, job %.1f ms\n", min_b, min_j);
    printf("ratio job / bare: median %.2f x, min %.2f x (first run %.2f x); target <= 1.5 x\n",
           mj / mb, min_j / min_b, first / mb);
    printf("RESULT backend=%s nodes=%zu edges=%zu bare_ms=%.1f job_ms=%.1f job_first_ms=%.1f "
           "ratio=%.3f ratio_min=%.3f ratio_first=%.3f clusters=%zu modularity=%.4f\n",
           db_backend_name(db), n, edges, mb, mj, first, mj / mb, min_j / min_b, first / mb,
           s.n_clusters, s.modularity);
    xfree(bare);
    xfree(job);
    xfree(load);
    xfree(algo);
    xfree(write);
    xfree(pairs);
    db_close(db);
    if (strcmp(url, path) == 0) {
        unlink(path + strlen("sqlite:"));
        char side[300];
        snprintf(side, sizeof(side), "%s-wal", path + strlen("sqlite:"));
        unlink(side);
        snprintf(side, sizeof(side), "%s-shm", path + strlen("sqlite:"));
        unlink(side);
    }
    return 0;
}
