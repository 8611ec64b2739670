/*
 * cluster.c - community detection over a learner's graph with igraph, the
 * clusters it stores, the collapsed (meta-node) view and the weekly job.
 *
 * Leiden in igraph optimises CPM unless told otherwise: to optimise
 * modularity it must get the node strengths as node weights and the
 * resolution 1/(2m), m being the total edge weight. Parallel edges (one per
 * edge type) stay parallel: their weights add up in both the strengths and
 * the modularity, as a merged edge's would.
 */
#include "learn/cluster.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/log.h"
#include "graph/graph.h"
#include "services/jobs/jobs.h"

#include <igraph/igraph.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLLAPSED_MAX 2000
#define TOP_TERMS     5 /* kept per cluster; the label uses LEARN_LABEL_TERMS */

struct cnode {
    char id[UUID_STR_LEN];
    char *term;
    char *summary;
    char *old_cluster; /* NULL: none */
    double familiarity;
    int64_t is_root, created_at, updated_at;
    double strength; /* weighted degree */
    int64_t community;
};

struct loaded {
    struct cnode *nodes;
    size_t n, cap;
    int64_t *from, *to;
    double *w;
    size_t n_edges, cap_edges;
    int64_t *slots; /* index_build(): node index by id hash, -1 empty */
    size_t mask;
};

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void loaded_release(struct loaded *l)
{
    for (size_t i = 0; i < l->n; i++) {
        xfree(l->nodes[i].term);
        xfree(l->nodes[i].summary);
        xfree(l->nodes[i].old_cluster);
    }
    xfree(l->nodes);
    xfree(l->from);
    xfree(l->to);
    xfree(l->w);
    xfree(l->slots);
    memset(l, 0, sizeof(*l));
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct cnode *)a)->id, ((const struct cnode *)b)->id);
}

/* Node ids to indexes: open addressing over FNV-1a of the id, built once
 * the nodes are loaded (a binary search of 36-byte ids sharing a long
 * prefix was half of the load time). */
static uint64_t id_hash(const char *s, size_t *out_n)
{
    uint64_t h = 1469598103934665603ull;
    size_t n = 0;
    for (; s[n]; n++) {
        h ^= (unsigned char)s[n];
        h *= 1099511628211ull;
    }
    *out_n = n;
    return h;
}

static void index_build(struct loaded *l)
{
    size_t cap = 16;
    while (cap < l->n * 2)
        cap *= 2;
    l->slots = xmalloc(cap * sizeof(*l->slots));
    for (size_t i = 0; i < cap; i++)
        l->slots[i] = -1;
    l->mask = cap - 1;
    for (size_t i = 0; i < l->n; i++) {
        size_t len;
        size_t at = (size_t)id_hash(l->nodes[i].id, &len) & l->mask;
        while (l->slots[at] >= 0)
            at = (at + 1) & l->mask;
        l->slots[at] = (int64_t)i;
    }
}

static int64_t find_node(const struct loaded *l, const char *id, size_t id_n)
{
    size_t len;
    size_t at = (size_t)id_hash(id, &len) & l->mask;
    (void)id_n;
    for (; l->slots[at] >= 0; at = (at + 1) & l->mask) {
        const char *x = l->nodes[l->slots[at]].id;
        if (memcmp(x, id, len) == 0 && x[len] == '\0')
            return l->slots[at];
    }
    return -1;
}

static int load_nodes(struct db_conn *c, const char *user_id, struct loaded *l)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT id, term, summary, familiarity, cluster, is_root, created_at, "
                        "updated_at FROM nodes WHERE user_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    while ((rc = db_step(st)) == LOCI_ROW) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 256;
            l->nodes = xrealloc(l->nodes, l->cap * sizeof(*l->nodes));
        }
        struct cnode *x = &l->nodes[l->n++];
        memset(x, 0, sizeof(*x));
        snprintf(x->id, sizeof(x->id), "%s", db_col_text(st, 0, NULL));
        x->term = xstrdup(db_col_text(st, 1, NULL));
        x->summary = xstrdup(db_col_text(st, 2, NULL));
        x->familiarity = db_col_double(st, 3);
        x->old_cluster = db_col_is_null(st, 4) ? NULL : xstrdup(db_col_text(st, 4, NULL));
        x->is_root = db_col_int64(st, 5);
        x->created_at = db_col_int64(st, 6);
        x->updated_at = db_col_int64(st, 7);
    }
    db_stmt_done(st);
    /* Sorted here, not by SQL: PostgreSQL's collation need not be strcmp's. */
    if (rc == LOCI_OK && l->n > 1)
        qsort(l->nodes, l->n, sizeof(*l->nodes), by_id);
    if (rc == LOCI_OK)
        index_build(l);
    return rc;
}

static int load_edges(struct db_conn *c, const char *user_id, struct loaded *l)
{
    struct db_stmt *st = NULL;
    /* In primary-key order: SQLite then walks the (user_id, src, dst, type)
     * index in step with the table instead of edges_dst's random lookups
     * (a quarter of the time on 100,000 edges). */
    int rc = db_prepare(c,
                        "SELECT src, dst, weight FROM edges WHERE user_id = ? "
                        "ORDER BY src, dst, type",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    while ((rc = db_step(st)) == LOCI_ROW) {
        double w = db_col_double(st, 2);
        size_t an = 0, bn = 0;
        const char *as = db_col_text(st, 0, &an);
        int64_t a = find_node(l, as, an);
        const char *bs = db_col_text(st, 1, &bn);
        int64_t b = find_node(l, bs, bn);
        if (a < 0 || b < 0 || a == b || !(w > 0) || !isfinite(w))
            continue; /* a node added after the read, or a weight modularity cannot use */
        if (l->n_edges == l->cap_edges) {
            l->cap_edges = l->cap_edges ? l->cap_edges * 2 : 1024;
            l->from = xrealloc(l->from, l->cap_edges * sizeof(*l->from));
            l->to = xrealloc(l->to, l->cap_edges * sizeof(*l->to));
            l->w = xrealloc(l->w, l->cap_edges * sizeof(*l->w));
        }
        l->from[l->n_edges] = a;
        l->to[l->n_edges] = b;
        l->w[l->n_edges] = w;
        l->n_edges++;
        l->nodes[a].strength += w;
        l->nodes[b].strength += w;
    }
    db_stmt_done(st);
    return rc;
}

/* ---- the igraph call ---- */

int learn_cluster_membership(size_t n, const int64_t *from, const int64_t *to,
                             const double *weights, size_t n_edges, enum learn_cluster_algo algo,
                             int64_t *membership, double *out_modularity)
{
    if (out_modularity)
        *out_modularity = 0;
    if (n == 0)
        return 0;
    if (n_edges == 0) { /* nothing joins anything: every node alone */
        for (size_t i = 0; i < n; i++)
            membership[i] = (int64_t)i;
        return (int)n;
    }
    int rc = LOCI_ENOMEM;
    igraph_t g;
    igraph_vector_int_t ev, memb;
    igraph_vector_t w, strength;
    bool has_g = false, has_ev = false, has_memb = false, has_w = false, has_s = false;
    if (igraph_vector_int_init(&ev, (igraph_integer_t)(2 * n_edges)))
        goto out;
    has_ev = true;
    if (igraph_vector_init(&w, (igraph_integer_t)n_edges))
        goto out;
    has_w = true;
    double m = 0;
    for (size_t i = 0; i < n_edges; i++) {
        VECTOR(ev)[2 * i] = (igraph_integer_t)from[i];
        VECTOR(ev)[2 * i + 1] = (igraph_integer_t)to[i];
        VECTOR(w)[i] = weights[i];
        m += weights[i];
    }
    if (igraph_create(&g, &ev, (igraph_integer_t)n, IGRAPH_UNDIRECTED))
        goto out;
    has_g = true;
    if (igraph_vector_int_init(&memb, (igraph_integer_t)n))
        goto out;
    has_memb = true;
    /* Deterministic runs: the same graph clusters the same way. */
    igraph_rng_seed(igraph_rng_default(), 20261122);
    igraph_error_t ie;
    if (algo == LEARN_LOUVAIN) {
        ie = igraph_community_multilevel(&g, &w, 1.0, &memb, NULL, NULL);
    } else {
        if (igraph_vector_init(&strength, (igraph_integer_t)n))
            goto out;
        has_s = true;
        ie = igraph_strength(&g, &strength, igraph_vss_all(), IGRAPH_ALL, IGRAPH_LOOPS, &w);
        igraph_integer_t k = 0;
        if (ie == IGRAPH_SUCCESS)
            ie = igraph_community_leiden(&g, &w, &strength, 1.0 / (2.0 * m), 0.01, false, -1, &memb,
                                         &k, NULL);
    }
    if (ie != IGRAPH_SUCCESS) {
        rc = LOCI_EIO;
        goto out;
    }
    igraph_integer_t k = 0;
    for (size_t i = 0; i < n; i++) {
        membership[i] = (int64_t)VECTOR(memb)[i];
        if (VECTOR(memb)[i] + 1 > k)
            k = VECTOR(memb)[i] + 1;
    }
    if (out_modularity) {
        igraph_real_t q = 0;
        if (igraph_modularity(&g, &memb, &w, 1.0, IGRAPH_UNDIRECTED, &q) == IGRAPH_SUCCESS)
            *out_modularity = isfinite(q) ? q : 0;
    }
    rc = (int)k;
out:
    if (has_s)
        igraph_vector_destroy(&strength);
    if (has_memb)
        igraph_vector_int_destroy(&memb);
    if (has_g)
        igraph_destroy(&g);
    if (has_w)
        igraph_vector_destroy(&w);
    if (has_ev)
        igraph_vector_int_destroy(&ev);
    return rc;
}

/* ---- stable ids and labels ---- */

struct community {
    size_t *members; /* node indexes, strongest first */
    size_t n;
    char id[UUID_STR_LEN > 64 ? UUID_STR_LEN : 64];
    double mean_familiarity;
};

static int by_strength(const void *a, const void *b, void *arg)
{
    const struct loaded *l = arg;
    const struct cnode *x = &l->nodes[*(const size_t *)a], *y = &l->nodes[*(const size_t *)b];
    if (x->strength != y->strength)
        return x->strength < y->strength ? 1 : -1;
    return strcmp(x->term, y->term);
}

static int by_size(const void *a, const void *b)
{
    const struct community *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return x->members[0] < y->members[0] ? -1 : x->members[0] > y->members[0];
}

/* Group nodes by community, strongest first inside, biggest first. */
static struct community *group(struct loaded *l, size_t k)
{
    struct community *cs = xcalloc(k ? k : 1, sizeof(*cs));
    for (size_t i = 0; i < l->n; i++)
        cs[l->nodes[i].community].n++;
    for (size_t c = 0; c < k; c++) {
        cs[c].members = xmalloc((cs[c].n ? cs[c].n : 1) * sizeof(size_t));
        cs[c].n = 0;
    }
    for (size_t i = 0; i < l->n; i++) {
        struct community *x = &cs[l->nodes[i].community];
        x->members[x->n++] = i;
        x->mean_familiarity += l->nodes[i].familiarity;
    }
    for (size_t c = 0; c < k; c++) {
        qsort_r(cs[c].members, cs[c].n, sizeof(size_t), by_strength, l);
        if (cs[c].n)
            cs[c].mean_familiarity /= (double)cs[c].n;
    }
    qsort(cs, k, sizeof(*cs), by_size);
    return cs;
}

/* Each community, biggest first, takes the old cluster id most of its
 * members had (not yet taken by a bigger one); else a new id. */
static void assign_ids(const struct loaded *l, struct community *cs, size_t k)
{
    json_t *taken = json_object();
    json_t *tally = json_object();
    for (size_t c = 0; c < k; c++) {
        json_object_clear(tally);
        const char *best = NULL;
        json_int_t best_n = 0;
        for (size_t i = 0; i < cs[c].n; i++) {
            const char *old = l->nodes[cs[c].members[i]].old_cluster;
            if (!old || json_object_get(taken, old))
                continue;
            json_int_t v = json_integer_value(json_object_get(tally, old)) + 1;
            json_object_set_new(tally, old, json_integer(v));
            if (v > best_n || (v == best_n && strcmp(old, best) < 0)) {
                best = old; /* owned by the node, which outlives this */
                best_n = v;
            }
        }
        if (best && strlen(best) < sizeof(cs[c].id)) {
            snprintf(cs[c].id, sizeof(cs[c].id), "%s", best);
            json_object_set_new(taken, best, json_true());
        } else {
            ids_uuid7(cs[c].id);
        }
    }
    json_decref(tally);
    json_decref(taken);
}

static json_t *node_json(const struct cnode *x, const char *cluster)
{
    return json_pack("{s:s, s:s, s:s, s:f, s:s, s:b, s:I, s:I}", "id", x->id, "term", x->term,
                     "summary", x->summary, "familiarity", x->familiarity, "cluster", cluster,
                     "is_root", x->is_root != 0, "created_at", (json_int_t)x->created_at,
                     "updated_at", (json_int_t)x->updated_at);
}

/* ---- storing ---- */

struct store_ctx {
    const char *user_id;
    const struct loaded *l;
    const struct community *cs;
    size_t k;
    const char *algorithm;
    double modularity;
    int64_t now;
    size_t n_changed;
};

/* One node's new cluster; *out_changed false when it is gone. */
static int update_one(struct db_conn *c, const char *user_id, const char *id, const char *cluster,
                      bool *out_changed)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "UPDATE nodes SET cluster = ? WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, cluster, (size_t)-1);
    db_bind_text(st, 2, id, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    int64_t changed = 0;
    rc = db_run(st, &changed);
    *out_changed = changed > 0;
    return rc;
}

/* Up to BATCH nodes of one cluster in one statement (a round trip per node
 * was 90 % of a first run on PostgreSQL); unused slots bind NULL, which
 * matches nothing. When fewer rows changed than were named (a node deleted
 * since the read), each is done alone to learn which. `user_id || ''`
 * keeps SQLite's planner off the user_id indexes (it took one over the
 * primary key and scanned every node of the user per batch). */
#define BATCH 32
static int update_batch(struct db_conn *c, struct store_ctx *s, const char *cluster,
                        const struct cnode *const *v, size_t n, struct graph_delta *d)
{
    struct db_stmt *st = NULL;
    int rc =
        db_prepare(c,
                   "UPDATE nodes SET cluster = ? WHERE user_id || '' = ? AND id IN (?, ?, ?, ?, ?, "
                   "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                   "?, ?)",
                   &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, cluster, (size_t)-1);
    db_bind_text(st, 2, s->user_id, (size_t)-1);
    for (size_t i = 0; i < BATCH; i++) {
        if (i < n)
            db_bind_text(st, (int)i + 3, v[i]->id, (size_t)-1);
        else
            db_bind_null(st, (int)i + 3);
    }
    int64_t changed = 0;
    if ((rc = db_run(st, &changed)) != LOCI_OK)
        return rc;
    for (size_t i = 0; i < n && rc == LOCI_OK; i++) {
        bool is_there = true;
        if (changed < (int64_t)n)
            rc = update_one(c, s->user_id, v[i]->id, cluster, &is_there);
        if (rc == LOCI_OK && is_there) {
            s->n_changed++;
            json_array_append_new(d->nodes, node_json(v[i], cluster));
        }
    }
    return rc;
}

static int store_node_clusters(struct db_conn *c, struct store_ctx *s, struct graph_delta *d)
{
    const struct cnode *batch[BATCH];
    int rc = LOCI_OK;
    for (size_t ci = 0; ci < s->k && rc == LOCI_OK; ci++) {
        const struct community *x = &s->cs[ci];
        size_t n = 0;
        for (size_t i = 0; i < x->n && rc == LOCI_OK; i++) {
            const struct cnode *nd = &s->l->nodes[x->members[i]];
            if (nd->old_cluster && strcmp(nd->old_cluster, x->id) == 0)
                continue;
            batch[n++] = nd;
            if (n == BATCH) {
                rc = update_batch(c, s, x->id, batch, n, d);
                n = 0;
            }
        }
        if (rc == LOCI_OK && n > 0)
            rc = update_batch(c, s, x->id, batch, n, d);
    }
    return rc;
}

static int store_clusters(struct db_conn *c, struct store_ctx *s)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "DELETE FROM clusters WHERE user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, s->user_id, (size_t)-1);
    if ((rc = db_run(st, NULL)) != LOCI_OK)
        return rc;
    for (size_t ci = 0; ci < s->k && rc == LOCI_OK; ci++) {
        const struct community *x = &s->cs[ci];
        json_t *top = json_array();
        struct buf label;
        buf_init(&label, 256);
        for (size_t i = 0; i < x->n && i < TOP_TERMS; i++) {
            const char *term = s->l->nodes[x->members[i]].term;
            json_array_append_new(top, json_string(term));
            if (i < LEARN_LABEL_TERMS)
                buf_printf(&label, "%s%s", i ? ", " : "", term);
        }
        char *top_text = json_dumps(top, JSON_COMPACT);
        json_decref(top);
        rc = db_prepare(c,
                        "INSERT INTO clusters (user_id, id, label, top_terms, member_count, "
                        "mean_familiarity, algorithm, modularity, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        &st);
        if (rc == LOCI_OK) {
            db_bind_text(st, 1, s->user_id, (size_t)-1);
            db_bind_text(st, 2, x->id, (size_t)-1);
            db_bind_text(st, 3, buf_cstr(&label), (size_t)-1);
            db_bind_text(st, 4, top_text, (size_t)-1);
            db_bind_int64(st, 5, (int64_t)x->n);
            db_bind_double(st, 6, x->mean_familiarity);
            db_bind_text(st, 7, s->algorithm, (size_t)-1);
            db_bind_double(st, 8, s->modularity);
            db_bind_int64(st, 9, s->now);
            rc = db_run(st, NULL);
        }
        xfree(top_text);
        buf_release(&label);
    }
    return rc;
}

static int tx_store(struct db_conn *c, void *arg)
{
    struct store_ctx *s = arg;
    s->n_changed = 0;
    struct graph_delta d;
    graph_delta_init(&d);
    int rc = store_node_clusters(c, s, &d);
    if (rc == LOCI_OK)
        rc = store_clusters(c, s);
    if (rc == LOCI_OK)
        rc = graph_emit(c, s->user_id, &d, "graph.clustered");
    graph_delta_release(&d);
    return rc;
}

int learn_cluster_user(struct db *db, const char *user_id, enum learn_cluster_algo algo,
                       int64_t now, struct learn_cluster_stats *out)
{
    struct learn_cluster_stats stats = {0};
    struct loaded l = {0};
    struct community *cs = NULL;
    size_t k = 0;
    int64_t *memb = NULL;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    if (rc)
        goto out;
    rc = load_nodes(c, user_id, &l);
    if (rc == LOCI_OK)
        rc = load_edges(c, user_id, &l);
    db_release(c);
    stats.load_ms = ms_since(&t0);
    if (rc || l.n == 0)
        goto out;
    stats.n_nodes = l.n;
    stats.n_edges = l.n_edges;
    memb = xmalloc(l.n * sizeof(*memb));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int found =
        learn_cluster_membership(l.n, l.from, l.to, l.w, l.n_edges, algo, memb, &stats.modularity);
    stats.algo_ms = ms_since(&t0);
    if (found < 0) {
        rc = found;
        goto out;
    }
    k = (size_t)found;
    for (size_t i = 0; i < l.n; i++)
        l.nodes[i].community = memb[i];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cs = group(&l, k);
    assign_ids(&l, cs, k);
    struct store_ctx s = {
        .user_id = user_id,
        .l = &l,
        .cs = cs,
        .k = k,
        .algorithm = algo == LEARN_LOUVAIN ? "louvain" : "leiden",
        .modularity = stats.modularity,
        .now = now,
    };
    rc = db_tx(db, tx_store, &s);
    stats.write_ms = ms_since(&t0);
    stats.n_clusters = k;
    stats.n_changed = s.n_changed;
out:
    if (cs)
        for (size_t i = 0; i < k; i++)
            xfree(cs[i].members);
    xfree(cs);
    xfree(memb);
    loaded_release(&l);
    if (out)
        *out = stats;
    return rc;
}

/* ---- reading ---- */

int learn_cluster_exists(struct db_conn *c, const char *user_id, const char *cluster_id)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT 1 FROM clusters WHERE user_id = ? AND id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, cluster_id, (size_t)-1);
    rc = db_step(st);
    db_stmt_done(st);
    if (rc == LOCI_ROW)
        return LOCI_OK;
    return rc ? rc : LOCI_ENOTFOUND;
}

int learn_cluster_collapsed(struct db_conn *c, const char *user_id, int limit, json_t **out)
{
    *out = NULL;
    if (limit < 1 || limit > COLLAPSED_MAX)
        return LOCI_EINVAL;
    json_t *clusters = json_array();
    json_t *kept = json_object(); /* id -> true: the clusters shown */
    json_t *edges = json_array();
    int64_t unclustered = 0;
    struct db_stmt *st = NULL;
    /* Counted now; the label and top terms come from the last run. */
    int rc = db_prepare(c,
                        "SELECT n.cluster, COUNT(*), AVG(n.familiarity), k.label, k.top_terms "
                        "FROM nodes n LEFT JOIN clusters k ON k.user_id = n.user_id "
                        "AND k.id = n.cluster WHERE n.user_id = ? "
                        "GROUP BY n.cluster, k.label, k.top_terms ORDER BY 2 DESC, 1",
                        &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, user_id, (size_t)-1);
    while ((rc = db_step(st)) == LOCI_ROW) {
        if (db_col_is_null(st, 0)) {
            unclustered += db_col_int64(st, 1);
            continue;
        }
        if ((int)json_array_size(clusters) >= limit)
            continue;
        const char *id = db_col_text(st, 0, NULL);
        json_t *top = json_loads(db_col_text(st, 4, NULL), 0, NULL);
        if (!json_is_array(top)) {
            json_decref(top);
            top = json_array();
        }
        json_array_append_new(
            clusters, json_pack("{s:s, s:s, s:I, s:f, s:o}", "id", id, "label",
                                db_col_is_null(st, 3) ? "" : db_col_text(st, 3, NULL),
                                "member_count", (json_int_t)db_col_int64(st, 1), "mean_familiarity",
                                db_col_double(st, 2), "top_terms", top));
        json_object_set_new(kept, id, json_true());
    }
    db_stmt_done(st);
    if (rc)
        goto out;
    rc = db_prepare(c,
                    "SELECT CASE WHEN a.cluster < b.cluster THEN a.cluster ELSE b.cluster END, "
                    "CASE WHEN a.cluster < b.cluster THEN b.cluster ELSE a.cluster END, "
                    "SUM(e.weight), COUNT(*) FROM edges e "
                    "JOIN nodes a ON a.id = e.src AND a.user_id = e.user_id "
                    "JOIN nodes b ON b.id = e.dst AND b.user_id = e.user_id "
                    "WHERE e.user_id = ? AND a.cluster IS NOT NULL AND b.cluster IS NOT NULL "
                    "AND a.cluster <> b.cluster GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
                    &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, user_id, (size_t)-1);
    while ((rc = db_step(st)) == LOCI_ROW) {
        const char *a = db_col_text(st, 0, NULL);
        const char *b = db_col_text(st, 1, NULL);
        if (!json_object_get(kept, a) || !json_object_get(kept, b))
            continue;
        /* strcmp order, whatever the database's collation said */
        bool swap = strcmp(a, b) > 0;
        json_array_append_new(edges, json_pack("{s:s, s:s, s:f, s:I}", "src", swap ? b : a, "dst",
                                               swap ? a : b, "weight", db_col_double(st, 2),
                                               "count", (json_int_t)db_col_int64(st, 3)));
    }
    db_stmt_done(st);
    if (rc == LOCI_OK) {
        *out = json_pack("{s:O, s:O, s:I}", "clusters", clusters, "edges", edges, "unclustered",
                         (json_int_t)unclustered);
    }
out:
    json_decref(clusters);
    json_decref(kept);
    json_decref(edges);
    return rc;
}

/* ---- the weekly job ---- */

static int compress_job(struct job *j, void *arg)
{
    (void)arg;
    const json_t *p = job_payload(j);
    const char *only = json_string_value(json_object_get(p, "user_id"));
    const char *algo_name = json_string_value(json_object_get(p, "algorithm"));
    enum learn_cluster_algo algo =
        algo_name && strcmp(algo_name, "louvain") == 0 ? LEARN_LOUVAIN : LEARN_LEIDEN;
    json_t *users = json_array();
    int rc = LOCI_OK;
    if (only) {
        json_array_append_new(users, json_string(only));
    } else {
        struct db_conn *c = NULL;
        struct db_stmt *st = NULL;
        rc = db_acquire(job_db(j), &c);
        if (rc == LOCI_OK)
            rc = db_prepare(c, "SELECT DISTINCT user_id FROM nodes ORDER BY user_id", &st);
        if (rc == LOCI_OK) {
            while ((rc = db_step(st)) == LOCI_ROW)
                json_array_append_new(users, json_string(db_col_text(st, 0, NULL)));
            db_stmt_done(st);
        }
        if (c)
            db_release(c);
    }
    size_t n = json_array_size(users), failed = 0;
    for (size_t i = 0; rc == LOCI_OK && i < n; i++) {
        if (job_cancel_requested(j))
            break;
        const char *user = json_string_value(json_array_get(users, i));
        struct learn_cluster_stats s;
        int urc = learn_cluster_user(job_db(j), user, algo, clock_now_ms(), &s);
        if (urc) {
            failed++;
            log_line(
                job_log(j), LOG_WARN, "cannot cluster graph",
                (struct log_field[]){LF_STR("for_user", user), LF_STR("error", loci_err_code(urc))},
                2);
        } else {
            log_line(job_log(j), LOG_INFO, "graph clustered",
                     (struct log_field[]){LF_STR("for_user", user), LF_INT("nodes", s.n_nodes),
                                          LF_INT("clusters", s.n_clusters),
                                          LF_INT("changed", s.n_changed),
                                          LF_DBL("modularity", s.modularity)},
                     5);
        }
        job_progress(j, (double)(i + 1) / (double)n, "clustering graphs");
    }
    json_decref(users);
    if (rc == LOCI_OK && failed > 0 && failed == n) {
        job_set_error(j, "no graph could be clustered");
        rc = LOCI_EIO;
    }
    return rc;
}

int learn_cluster_register_jobs(struct jobs *js, char *err, size_t err_n)
{
    jobs_register(js, "graph.compress", compress_job, NULL);
    return jobs_schedule(js, "compress_graph", "0 4 * * 0", "graph.compress", NULL, err, err_n);
}
