/*
 * bench_graph.c - merging an answer's 20 terms into a learner's graph:
 * new terms (20 node inserts, 190 co-occurrence edges, 20 focus edges) and
 * the same terms again (20 lookups, 210 weight updates), each in its own
 * transaction, on SQLite and (with LOCI_BENCH_PG_URL) PostgreSQL.
 *
 * usage: bench_graph [rounds=200]
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "graph/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_TERMS 20

struct merge {
    const char *focus;
    struct graph_term terms[N_TERMS];
    char names[N_TERMS][48];
    struct graph_merged out[N_TERMS];
};

static int merge_tx(struct db_conn *c, void *arg)
{
    struct merge *m = arg;
    struct graph_delta d;
    graph_delta_init(&d);
    int rc = graph_merge_terms(c, "bench-user", m->terms, N_TERMS, NULL, 0, m->focus, NULL, true,
                               clock_now_ms(), &d, m->out);
    if (!rc)
        rc = graph_emit(c, "bench-user", &d, "bench");
    graph_delta_release(&d);
    return rc;
}

static int run(const char *label, const char *url, int rounds)
{
    struct db *db = NULL;
    char err[256];
    if (db_open(url, 4, &db, err, sizeof(err)) || db_migrate(db, &(int){0}, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", label, err);
        return 1;
    }
    struct db_conn *c;
    db_acquire(db, &c);
    db_exec(c, "INSERT INTO users (id, email, email_norm, password_hash, created_at, updated_at) "
               "VALUES ('bench-user', 'b@x', 'b@x', 'h', 0, 0)");
    db_release(c);
    static struct merge m;
    double t_new = 0, t_again = 0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < N_TERMS; i++) {
            snprintf(m.names[i], sizeof(m.names[i]), "Concept %d of answer %d", i, r);
            m.terms[i] = (struct graph_term){m.names[i], "A short summary of the concept."};
        }
        m.focus = NULL;
        int64_t t0 = clock_mono_ns();
        if (db_tx(db, merge_tx, &m))
            return 1;
        t_new += (double)(clock_mono_ns() - t0) / 1e6;
        t0 = clock_mono_ns();
        if (db_tx(db, merge_tx, &m))
            return 1;
        t_again += (double)(clock_mono_ns() - t0) / 1e6;
    }
    printf("%-10s 20 new terms: %6.2f ms/merge   the same 20 again: %6.2f ms/merge   (%d rounds, "
           "graph of %d nodes at the end)\n",
           label, t_new / rounds, t_again / rounds, rounds, rounds * N_TERMS);
    db_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    long long rounds = 200;
    if (argc > 1 && parse_int64(argv[1], 1, 100000, &rounds)) {
        fprintf(stderr, "usage: bench_graph [rounds]\n");
        return 2;
    }
    char path[] = "/tmp/loci-bench-graph-XXXXXX";
    if (!mkdtemp(path))
        return 1;
    char url[300];
    snprintf(url, sizeof(url), "sqlite:%s/g.db", path);
    int rc = run("sqlite", url, (int)rounds);
    const char *pg = getenv("LOCI_BENCH_PG_URL");
    if (!rc && pg && pg[0])
        rc = run("postgres", pg, (int)rounds);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
    return rc;
}
