/*
 * graph_read.c - reading a learner's graph: one node with its aliases and
 * neighbours, the neighbourhood a question is answered in, the recent root
 * nodes page by page, and a bounded slice for drawing.
 *
 * Nothing here writes. Every query filters by the user id, so another
 * user's node is simply not found.
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define NEIGHBOURS_MAX 200
#define CONTEXT_MAX    500 /* graph_context never gathers more nodes than this */
#define CURSOR_MAX     128 /* characters of a recent-roots cursor */
#define ROOTS_PAGE_MAX 100
#define SLICE_MAX      2000

json_t *graph__node_from_row(struct db_stmt *st, int col)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(db_col_text(st, col, NULL)));
    json_object_set_new(o, "term", json_string(db_col_text(st, col + 1, NULL)));
    json_object_set_new(o, "summary", json_string(db_col_text(st, col + 2, NULL)));
    json_object_set_new(o, "familiarity", json_real(db_col_double(st, col + 3)));
    json_object_set_new(o, "cluster",
                        db_col_is_null(st, col + 4) ? json_null()
                                                    : json_string(db_col_text(st, col + 4, NULL)));
    json_object_set_new(o, "is_root", json_boolean(db_col_int64(st, col + 5) != 0));
    json_object_set_new(o, "created_at", json_integer(db_col_int64(st, col + 6)));
    json_object_set_new(o, "updated_at", json_integer(db_col_int64(st, col + 7)));
    return o;
}

int graph__key_owner(struct db_conn *c, const char *user_id, const char *key,
                     const char *exclude_id, char out_id[UUID_STR_LEN])
{
    out_id[0] = '\0';
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT id FROM nodes WHERE user_id = ? AND key = ? AND id <> ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, key, (size_t)-1);
    db_bind_text(st, 3, exclude_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW)
        snprintf(out_id, UUID_STR_LEN, "%s", db_col_text(st, 0, NULL));
    db_stmt_done(st);
    if (rc == LOCI_ROW)
        return LOCI_OK;
    if (rc)
        return rc;
    /* A spelling kept as an alias finds its node too. */
    rc = db_prepare(c,
                    "SELECT node_id FROM node_aliases WHERE user_id = ? AND key = ? "
                    "AND node_id <> ? ORDER BY node_id LIMIT 1",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, key, (size_t)-1);
    db_bind_text(st, 3, exclude_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW)
        snprintf(out_id, UUID_STR_LEN, "%s", db_col_text(st, 0, NULL));
    db_stmt_done(st);
    if (rc == LOCI_ROW)
        return LOCI_OK;
    return rc ? rc : LOCI_ENOTFOUND;
}

int graph_node_find(struct db_conn *c, const char *user_id, const char *term,
                    char out_id[UUID_STR_LEN])
{
    struct buf clean, key;
    out_id[0] = '\0';
    int rc = graph__term_prepare(term, &clean, &key);
    if (rc == LOCI_OK)
        rc = graph__key_owner(c, user_id, buf_cstr(&key), "", out_id);
    buf_release(&clean);
    buf_release(&key);
    return rc;
}

int graph_node_exists(struct db_conn *c, const char *user_id, const char *id)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT 1 FROM nodes WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    db_stmt_done(st);
    if (rc == LOCI_ROW)
        return LOCI_OK;
    return rc ? rc : LOCI_ENOTFOUND;
}

static int add_aliases(struct db_conn *c, const char *user_id, const char *id, json_t *node)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT alias FROM node_aliases WHERE user_id = ? AND node_id = ? "
                        "ORDER BY alias",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, id, (size_t)-1);
    json_t *aliases = json_array();
    while ((rc = db_step(st)) == LOCI_ROW)
        json_array_append_new(aliases, json_string(db_col_text(st, 0, NULL)));
    db_stmt_done(st);
    json_object_set_new(node, "aliases", aliases);
    return rc;
}

static int add_neighbours(struct db_conn *c, const char *user_id, const char *id, json_t *node)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(
        c,
        "SELECT n.id, n.term, n.familiarity, e.type, e.weight, 1 FROM edges e "
        "JOIN nodes n ON n.id = e.dst AND n.user_id = e.user_id WHERE e.user_id = ? AND e.src = ? "
        "UNION ALL "
        "SELECT n.id, n.term, n.familiarity, e.type, e.weight, 0 FROM edges e "
        "JOIN nodes n ON n.id = e.src AND n.user_id = e.user_id WHERE e.user_id = ? AND e.dst = ? "
        "ORDER BY 5 DESC, 1, 4 LIMIT 200",
        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, id, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    db_bind_text(st, 4, id, (size_t)-1);
    json_t *list = json_array();
    while ((rc = db_step(st)) == LOCI_ROW) {
        const char *type = db_col_text(st, 3, NULL);
        const char *dir = strcmp(type, "related") == 0 ? "both"
                          : db_col_int64(st, 5)        ? "out"
                                                       : "in";
        json_t *other = json_pack("{s:s, s:s, s:f}", "id", db_col_text(st, 0, NULL), "term",
                                  db_col_text(st, 1, NULL), "familiarity", db_col_double(st, 2));
        json_array_append_new(list, json_pack("{s:o, s:s, s:f, s:s}", "node", other, "type", type,
                                              "weight", db_col_double(st, 4), "direction", dir));
    }
    db_stmt_done(st);
    json_object_set_new(node, "neighbours", list);
    return rc;
}

int graph_node_json(struct db_conn *c, const char *user_id, const char *id, bool with_neighbours,
                    json_t **out)
{
    *out = NULL;
    json_t *node = NULL;
    struct db_stmt *st = NULL;
    int rc =
        db_prepare(c, "SELECT " GRAPH__NODE_COLS " FROM nodes WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW)
        node = graph__node_from_row(st, 0);
    db_stmt_done(st);
    if (rc != LOCI_ROW) {
        rc = rc ? rc : LOCI_ENOTFOUND;
        goto out;
    }
    rc = add_aliases(c, user_id, id, node);
    if (rc == LOCI_OK && with_neighbours)
        rc = add_neighbours(c, user_id, id, node);
    if (rc == LOCI_OK) {
        *out = node;
        node = NULL;
    }
out:
    json_decref(node);
    return rc;
}

/* ---- the neighbourhood of a question ---- */

struct cand {
    char id[UUID_STR_LEN];
    double score; /* summed weight of the edges that reached it */
};

/* The nodes joined to id by any edge, strongest (summed weight) first, at
 * most limit, appended to *v (grown as needed). */
static int strongest(struct db_conn *c, const char *user_id, const char *id, size_t limit,
                     struct cand **v, size_t *n, size_t *cap)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT nid, SUM(w) AS s FROM ("
                        "SELECT dst AS nid, weight AS w FROM edges WHERE user_id = ? AND src = ? "
                        "UNION ALL "
                        "SELECT src AS nid, weight AS w FROM edges WHERE user_id = ? AND dst = ?"
                        ") x GROUP BY nid ORDER BY s DESC, nid LIMIT ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, id, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    db_bind_text(st, 4, id, (size_t)-1);
    db_bind_int64(st, 5, (int64_t)limit);
    while ((rc = db_step(st)) == LOCI_ROW) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            *v = xrealloc(*v, *cap * sizeof(**v));
        }
        struct cand *x = &(*v)[(*n)++];
        snprintf(x->id, sizeof(x->id), "%s", db_col_text(st, 0, NULL));
        x->score = db_col_double(st, 1);
    }
    db_stmt_done(st);
    return rc;
}

static bool chosen_has(const struct graph_context_node *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return true;
    return false;
}

static int load_text(struct db_conn *c, const char *user_id, struct graph_context_node *x)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT term, summary FROM nodes WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, x->id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        x->term = xstrdup(db_col_text(st, 0, NULL));
        x->summary = xstrdup(db_col_text(st, 1, NULL));
    }
    db_stmt_done(st);
    if (rc == LOCI_ROW)
        return LOCI_OK;
    return rc ? rc : LOCI_ENOTFOUND;
}

/* Strongest first; ties by id, so the order is stable. */
static int by_score(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return strcmp(x->id, y->id);
}

int graph_context(struct db_conn *c, const char *user_id, const char *focus_id, size_t cap,
                  struct graph_context_node **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    if (cap == 0)
        return LOCI_EINVAL;
    if (cap > CONTEXT_MAX)
        cap = CONTEXT_MAX;
    struct graph_context_node *v = xcalloc(cap, sizeof(*v));
    size_t n = 0;
    struct cand *hop = NULL, *far = NULL;
    size_t n_hop = 0, cap_hop = 0, n_far = 0, cap_far = 0;
    snprintf(v[n++].id, UUID_STR_LEN, "%s", focus_id);
    int rc = load_text(c, user_id, &v[0]);
    if (rc)
        goto out;
    /* Hop 1: the focus node's own neighbours, strongest first. */
    rc = strongest(c, user_id, focus_id, cap - 1, &hop, &n_hop, &cap_hop);
    for (size_t i = 0; rc == LOCI_OK && i < n_hop && n < cap; i++)
        snprintf(v[n++].id, UUID_STR_LEN, "%s", hop[i].id);
    /* Hop 2: their neighbours, each scored by the strongest tie to any hop-1
     * node. */
    for (size_t i = 0; rc == LOCI_OK && n < cap && i < n_hop; i++) {
        size_t before = n_far;
        rc = strongest(c, user_id, hop[i].id, cap, &far, &n_far, &cap_far);
        size_t keep = before;
        for (size_t k = before; rc == LOCI_OK && k < n_far; k++) {
            if (chosen_has(v, n, far[k].id))
                continue;
            bool is_dup = false;
            for (size_t m = 0; m < before && !is_dup; m++) {
                if (strcmp(far[m].id, far[k].id) == 0) {
                    if (far[k].score > far[m].score)
                        far[m].score = far[k].score;
                    is_dup = true;
                }
            }
            if (!is_dup)
                far[keep++] = far[k];
        }
        n_far = keep;
    }
    if (rc == LOCI_OK && n_far > 0) {
        qsort(far, n_far, sizeof(*far), by_score);
        for (size_t i = 0; i < n_far && n < cap; i++)
            snprintf(v[n++].id, UUID_STR_LEN, "%s", far[i].id);
    }
    for (size_t i = 1; rc == LOCI_OK && i < n; i++)
        rc = load_text(c, user_id, &v[i]);
    if (rc == LOCI_OK) {
        *out = v;
        *out_n = n;
        v = NULL;
    }
out:
    if (v)
        graph_context_release(v, cap);
    xfree(hop);
    xfree(far);
    return rc;
}

void graph_context_release(struct graph_context_node *nodes, size_t n)
{
    if (!nodes)
        return;
    for (size_t i = 0; i < n; i++) {
        xfree(nodes[i].term);
        xfree(nodes[i].summary);
    }
    xfree(nodes);
}

/* ---- recent roots ---- */

static void cursor_encode(int64_t created_at, const char *id, char *out, size_t n)
{
    char raw[64];
    int len = snprintf(raw, sizeof(raw), "%lld:%s", (long long)created_at, id);
    sodium_bin2base64(out, n, (const unsigned char *)raw, (size_t)len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static int cursor_decode(const char *cursor, int64_t *out_at, char out_id[UUID_STR_LEN])
{
    size_t n = strlen(cursor);
    unsigned char raw[CURSOR_MAX];
    size_t len = 0;
    if (n == 0 || n > CURSOR_MAX ||
        sodium_base642bin(raw, sizeof(raw) - 1, cursor, n, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return LOCI_EUNPROCESSABLE;
    const char *colon = memchr(raw, ':', len);
    if (!colon)
        return LOCI_EUNPROCESSABLE;
    size_t at_n = (size_t)(colon - (const char *)raw);
    size_t id_n = len - at_n - 1;
    long long at = 0;
    if (parse_int64_n((const char *)raw, at_n, 0, INT64_MAX, &at) || !ids_is_uuid(colon + 1, id_n))
        return LOCI_EUNPROCESSABLE;
    *out_at = at;
    memcpy(out_id, colon + 1, id_n);
    out_id[id_n] = '\0';
    return LOCI_OK;
}

int graph_recent_roots(struct db_conn *c, const char *user_id, const char *cursor, int limit,
                       json_t **out)
{
    *out = NULL;
    if (limit < 1 || limit > ROOTS_PAGE_MAX)
        return LOCI_EINVAL;
    int64_t at = 0;
    char after[UUID_STR_LEN];
    int rc = cursor ? cursor_decode(cursor, &at, after) : LOCI_OK;
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    if (cursor)
        rc = db_prepare(c,
                        "SELECT " GRAPH__NODE_COLS " FROM nodes WHERE user_id = ? AND is_root = 1 "
                        "AND (created_at < ? OR (created_at = ? AND id < ?)) "
                        "ORDER BY created_at DESC, id DESC LIMIT ?",
                        &st);
    else
        rc = db_prepare(c,
                        "SELECT " GRAPH__NODE_COLS " FROM nodes WHERE user_id = ? AND is_root = 1 "
                        "ORDER BY created_at DESC, id DESC LIMIT ?",
                        &st);
    if (rc)
        return rc;
    int i = 1;
    db_bind_text(st, i++, user_id, (size_t)-1);
    if (cursor) {
        db_bind_int64(st, i++, at);
        db_bind_int64(st, i++, at);
        db_bind_text(st, i++, after, (size_t)-1);
    }
    db_bind_int64(st, i, (int64_t)limit + 1); /* one more: is there a next page? */
    json_t *items = json_array();
    bool has_more = false;
    while ((rc = db_step(st)) == LOCI_ROW) {
        if ((int)json_array_size(items) == limit) {
            has_more = true;
            continue;
        }
        json_array_append_new(items, graph__node_from_row(st, 0));
    }
    db_stmt_done(st);
    size_t k;
    json_t *node;
    json_array_foreach(items, k, node)
    {
        if (rc)
            break;
        rc = add_aliases(c, user_id, json_string_value(json_object_get(node, "id")), node);
    }
    if (rc) {
        json_decref(items);
        return rc;
    }
    json_t *next = json_null();
    json_t *last = json_array_get(items, json_array_size(items) - 1);
    if (has_more && last) {
        char enc[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
        cursor_encode(json_integer_value(json_object_get(last, "created_at")),
                      json_string_value(json_object_get(last, "id")), enc, sizeof(enc));
        next = json_string(enc);
    }
    *out = json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
    return LOCI_OK;
}

/* ---- a slice for drawing ---- */

static int slice_edges(struct db_conn *c, const char *user_id, int limit, const char *cluster,
                       json_t *nodes, json_t *order, json_t *edges, bool *truncated)
{
    struct db_stmt *st = NULL;
    int rc;
    if (cluster)
        rc = db_prepare(c,
                        "SELECT e.src, e.dst, e.type, e.weight, "
                        "a.id, a.term, a.summary, a.familiarity, a.cluster, a.is_root, "
                        "a.created_at, a.updated_at, "
                        "b.id, b.term, b.summary, b.familiarity, b.cluster, b.is_root, "
                        "b.created_at, b.updated_at FROM edges e "
                        "JOIN nodes a ON a.id = e.src AND a.user_id = e.user_id "
                        "JOIN nodes b ON b.id = e.dst AND b.user_id = e.user_id "
                        "WHERE e.user_id = ? AND a.cluster = ? AND b.cluster = ? "
                        "ORDER BY e.weight DESC, e.src, e.dst, e.type LIMIT ?",
                        &st);
    else
        rc = db_prepare(c,
                        "SELECT e.src, e.dst, e.type, e.weight, "
                        "a.id, a.term, a.summary, a.familiarity, a.cluster, a.is_root, "
                        "a.created_at, a.updated_at, "
                        "b.id, b.term, b.summary, b.familiarity, b.cluster, b.is_root, "
                        "b.created_at, b.updated_at FROM edges e "
                        "JOIN nodes a ON a.id = e.src AND a.user_id = e.user_id "
                        "JOIN nodes b ON b.id = e.dst AND b.user_id = e.user_id "
                        "WHERE e.user_id = ? "
                        "ORDER BY e.weight DESC, e.src, e.dst, e.type LIMIT ?",
                        &st);
    if (rc)
        return rc;
    int i = 1;
    db_bind_text(st, i++, user_id, (size_t)-1);
    if (cluster) {
        db_bind_text(st, i++, cluster, (size_t)-1);
        db_bind_text(st, i++, cluster, (size_t)-1);
    }
    size_t max_edges = (size_t)limit * 4;
    db_bind_int64(st, i, (int64_t)max_edges + 1);
    size_t n_rows = 0;
    while ((rc = db_step(st)) == LOCI_ROW) {
        if (++n_rows > max_edges) {
            *truncated = true;
            continue;
        }
        const char *src = db_col_text(st, 0, NULL), *dst = db_col_text(st, 1, NULL);
        bool has_src = json_object_get(nodes, src) != NULL;
        bool has_dst = json_object_get(nodes, dst) != NULL;
        size_t needed = (size_t)!has_src + (size_t)!has_dst;
        if (json_object_size(nodes) + needed > (size_t)limit) {
            *truncated = true; /* an edge to a node that does not fit */
            continue;
        }
        if (!has_src) {
            json_object_set_new(nodes, src, graph__node_from_row(st, 4));
            json_array_append_new(order, json_string(src));
        }
        if (!has_dst) {
            json_object_set_new(nodes, dst, graph__node_from_row(st, 12));
            json_array_append_new(order, json_string(dst));
        }
        json_array_append_new(edges,
                              json_pack("{s:s, s:s, s:s, s:f}", "src", db_col_text(st, 0, NULL),
                                        "dst", db_col_text(st, 1, NULL), "type",
                                        db_col_text(st, 2, NULL), "weight", db_col_double(st, 3)));
    }
    db_stmt_done(st);
    return rc;
}

static int slice_recent(struct db_conn *c, const char *user_id, int limit, const char *cluster,
                        json_t *nodes, json_t *order)
{
    if (json_object_size(nodes) >= (size_t)limit)
        return LOCI_OK;
    struct db_stmt *st = NULL;
    int rc;
    if (cluster)
        rc = db_prepare(c,
                        "SELECT " GRAPH__NODE_COLS " FROM nodes WHERE user_id = ? AND cluster = ? "
                        "ORDER BY updated_at DESC, id DESC LIMIT ?",
                        &st);
    else
        rc = db_prepare(c,
                        "SELECT " GRAPH__NODE_COLS " FROM nodes WHERE user_id = ? "
                        "ORDER BY updated_at DESC, id DESC LIMIT ?",
                        &st);
    if (rc)
        return rc;
    int i = 1;
    db_bind_text(st, i++, user_id, (size_t)-1);
    if (cluster)
        db_bind_text(st, i++, cluster, (size_t)-1);
    /* At most size(nodes) rows are already in: limit rows always suffice. */
    db_bind_int64(st, i, limit);
    while ((rc = db_step(st)) == LOCI_ROW) {
        const char *id = db_col_text(st, 0, NULL);
        if (json_object_size(nodes) >= (size_t)limit || json_object_get(nodes, id))
            continue;
        json_object_set_new(nodes, id, graph__node_from_row(st, 0));
        json_array_append_new(order, json_string(id));
    }
    db_stmt_done(st);
    return rc;
}

static int count_nodes(struct db_conn *c, const char *user_id, const char *cluster, int64_t *out)
{
    struct db_stmt *st = NULL;
    int rc =
        cluster ? db_prepare(c, "SELECT COUNT(*) FROM nodes WHERE user_id = ? AND cluster = ?", &st)
                : db_prepare(c, "SELECT COUNT(*) FROM nodes WHERE user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    if (cluster)
        db_bind_text(st, 2, cluster, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        *out = db_col_int64(st, 0);
        rc = LOCI_OK;
    }
    db_stmt_done(st);
    return rc;
}

int graph_slice(struct db_conn *c, const char *user_id, int limit, const char *cluster,
                json_t **out)
{
    *out = NULL;
    if (limit < 1 || limit > SLICE_MAX)
        return LOCI_EINVAL;
    json_t *nodes = json_object(); /* id -> node: the set drawn */
    json_t *order = json_array();  /* ids in the order they joined */
    json_t *edges = json_array();
    bool truncated = false;
    int64_t total = 0;
    int rc = slice_edges(c, user_id, limit, cluster, nodes, order, edges, &truncated);
    if (rc == LOCI_OK)
        rc = slice_recent(c, user_id, limit, cluster, nodes, order);
    if (rc == LOCI_OK)
        rc = count_nodes(c, user_id, cluster, &total);
    if (rc == LOCI_OK) {
        if (total > (int64_t)json_object_size(nodes))
            truncated = true;
        json_t *list = json_array();
        size_t i;
        json_t *id;
        json_array_foreach(order, i, id)
        {
            json_array_append(list, json_object_get(nodes, json_string_value(id)));
        }
        *out = json_pack("{s:o, s:O, s:b}", "nodes", list, "edges", edges, "truncated", truncated);
    }
    json_decref(nodes);
    json_decref(order);
    json_decref(edges);
    return rc;
}
