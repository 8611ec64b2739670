/*
 * graph_edit.c - what a learner does to their graph by hand: write a note,
 * rename a node or change its summary, merge two nodes that are one idea,
 * delete a node, set how familiar a node is.
 *
 * Each function runs in the caller's transaction and records what it
 * changed in a struct graph_delta; it does not append the event (the
 * caller's graph_emit() does, in the same transaction). Not here: merging
 * the terms of an answer (graph_merge.c), reading (graph_read.c).
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/err.h"
#include "services/text/text.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- intake ---- */

int graph__term_prepare(const char *term, struct buf *clean, struct buf *key)
{
    buf_init(clean, GRAPH_TERM_MAX);
    buf_init(key, GRAPH__KEY_MAX);
    size_t n = term ? strlen(term) : 0;
    /* Cleaning only shrinks white space: far longer input cannot fit. */
    if (n == 0 || n > (size_t)GRAPH_TERM_MAX * 8)
        return LOCI_EUNPROCESSABLE;
    if (text_clean_line(term, n, clean) != LOCI_OK || clean->len == 0)
        return LOCI_EUNPROCESSABLE;
    if (text_term_key(buf_cstr(clean), clean->len, key) != LOCI_OK || key->len == 0)
        return LOCI_EUNPROCESSABLE;
    return LOCI_OK;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

int graph__summary_prepare(const char *summary, struct buf *out)
{
    buf_init(out, GRAPH_SUMMARY_MAX);
    size_t n = summary ? strlen(summary) : 0;
    const char *p = summary;
    while (n > 0 && is_space(*p)) {
        p++;
        n--;
    }
    while (n > 0 && is_space(p[n - 1]))
        n--;
    if (n > (size_t)GRAPH_SUMMARY_MAX * 4)
        return LOCI_EUNPROCESSABLE;
    if (n > 0 && text_strip_controls(p, n, out) != LOCI_OK)
        return LOCI_EUNPROCESSABLE;
    return LOCI_OK;
}

/* ---- delta records ---- */

static bool same_edge(json_t *e, const char *src, const char *dst, const char *type)
{
    return strcmp(json_string_value(json_object_get(e, "src")), src) == 0 &&
           strcmp(json_string_value(json_object_get(e, "dst")), dst) == 0 &&
           strcmp(json_string_value(json_object_get(e, "type")), type) == 0;
}

int graph__delta_put_edge(struct db_conn *c, const char *user_id, const char *src, const char *dst,
                          const char *type, struct graph_delta *d)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT weight FROM edges WHERE user_id = ? AND src = ? AND dst = ? "
                        "AND type = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, src, (size_t)-1);
    db_bind_text(st, 3, dst, (size_t)-1);
    db_bind_text(st, 4, type, (size_t)-1);
    rc = db_step(st);
    double w = rc == LOCI_ROW ? db_col_double(st, 0) : 0;
    db_stmt_done(st);
    if (rc != LOCI_ROW)
        return rc ? rc : LOCI_ENOTFOUND;
    json_t *e =
        json_pack("{s:s, s:s, s:s, s:f}", "src", src, "dst", dst, "type", type, "weight", w);
    size_t i;
    json_t *v;
    json_array_foreach(d->edges, i, v)
    {
        if (same_edge(v, src, dst, type)) {
            json_array_set_new(d->edges, i, e);
            return LOCI_OK;
        }
    }
    json_array_append_new(d->edges, e);
    return LOCI_OK;
}

void graph__delta_removed_edge(struct graph_delta *d, const char *src, const char *dst,
                               const char *type)
{
    size_t i;
    json_t *v;
    json_array_foreach(d->edges, i, v)
    {
        if (same_edge(v, src, dst, type)) {
            json_array_remove(d->edges, i);
            break;
        }
    }
    json_array_append_new(d->removed_edges,
                          json_pack("{s:s, s:s, s:s}", "src", src, "dst", dst, "type", type));
}

void graph__delta_embed(struct graph_delta *d, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(d->embed_ids, i, v)
    {
        if (strcmp(json_string_value(v), id) == 0)
            return;
    }
    json_array_append_new(d->embed_ids, json_string(id));
}

static void delta_removed_node(struct graph_delta *d, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(d->nodes, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0) {
            json_array_remove(d->nodes, i);
            break;
        }
    }
    json_array_foreach(d->embed_ids, i, v)
    {
        if (strcmp(json_string_value(v), id) == 0) {
            json_array_remove(d->embed_ids, i);
            break;
        }
    }
    json_array_append_new(d->removed_nodes, json_string(id));
}

/* ---- a node's own row ---- */

struct node_row {
    char id[UUID_STR_LEN];
    char *term;
    char *key;
    char *summary;
    char *origin; /* NULL when none */
    bool is_root;
};

static void node_row_release(struct node_row *r)
{
    xfree(r->term);
    xfree(r->key);
    xfree(r->summary);
    xfree(r->origin);
    memset(r, 0, sizeof(*r));
}

static int node_row_load(struct db_conn *c, const char *user_id, const char *id,
                         struct node_row *out)
{
    memset(out, 0, sizeof(*out));
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT term, key, summary, origin_message_id, is_root FROM nodes "
                        "WHERE id = ? AND user_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        snprintf(out->id, sizeof(out->id), "%s", id);
        out->term = xstrdup(db_col_text(st, 0, NULL));
        out->key = xstrdup(db_col_text(st, 1, NULL));
        out->summary = xstrdup(db_col_text(st, 2, NULL));
        out->origin = db_col_is_null(st, 3) ? NULL : xstrdup(db_col_text(st, 3, NULL));
        out->is_root = db_col_int64(st, 4) != 0;
    }
    db_stmt_done(st);
    if (rc == LOCI_ROW)
        return LOCI_OK;
    return rc ? rc : LOCI_ENOTFOUND;
}

/* Keep a spelling (and its key) as an alias of node_id; a spelling already
 * kept stays where it is. */
static int alias_add(struct db_conn *c, const char *user_id, const char *node_id, const char *alias,
                     const char *key)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "INSERT INTO node_aliases (user_id, node_id, alias, key) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, node_id, (size_t)-1);
    db_bind_text(st, 3, alias, (size_t)-1);
    db_bind_text(st, 4, key, (size_t)-1);
    return db_run(st, NULL);
}

/* ---- create ---- */

int graph_node_create(struct db_conn *c, const char *user_id, const char *term, const char *summary,
                      int64_t now, struct graph_delta *delta, char out_id[UUID_STR_LEN])
{
    struct buf clean, key, sum;
    out_id[0] = '\0';
    buf_init(&sum, 0);
    struct db_stmt *st = NULL;
    int rc = graph__term_prepare(term, &clean, &key);
    if (rc == LOCI_OK) {
        buf_release(&sum);
        rc = graph__summary_prepare(summary, &sum);
    }
    if (rc)
        goto out;
    rc = graph__key_owner(c, user_id, buf_cstr(&key), "", out_id);
    if (rc == LOCI_OK) {
        rc = LOCI_ECONFLICT;
        goto out;
    }
    if (rc != LOCI_ENOTFOUND)
        goto out;
    char id[UUID_STR_LEN];
    ids_uuid7(id);
    rc = db_prepare(c,
                    "INSERT INTO nodes (id, user_id, term, key, summary, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_text(st, 3, buf_cstr(&clean), clean.len);
    db_bind_text(st, 4, buf_cstr(&key), key.len);
    db_bind_text(st, 5, buf_cstr(&sum), sum.len);
    db_bind_int64(st, 6, now);
    db_bind_int64(st, 7, now);
    rc = db_run(st, NULL);
    if (rc)
        goto out;
    rc = graph_delta_add_node(c, user_id, id, delta);
    if (rc)
        goto out;
    graph__delta_embed(delta, id);
    snprintf(out_id, UUID_STR_LEN, "%s", id);
out:
    buf_release(&clean);
    buf_release(&key);
    buf_release(&sum);
    return rc;
}

/* ---- update ---- */

static int rename_node(struct db_conn *c, const char *user_id, const struct node_row *cur,
                       const char *term, const char *key, int64_t now)
{
    char owner[UUID_STR_LEN];
    int rc = LOCI_OK;
    if (strcmp(key, cur->key) != 0) {
        rc = graph__key_owner(c, user_id, key, cur->id, owner);
        if (rc == LOCI_OK)
            return LOCI_ECONFLICT;
        if (rc != LOCI_ENOTFOUND)
            return rc;
    }
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "UPDATE nodes SET term = ?, key = ?, updated_at = ? "
                    "WHERE id = ? AND user_id = ?",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, term, (size_t)-1);
    db_bind_text(st, 2, key, (size_t)-1);
    db_bind_int64(st, 3, now);
    db_bind_text(st, 4, cur->id, (size_t)-1);
    db_bind_text(st, 5, user_id, (size_t)-1);
    rc = db_run_one(st);
    /* The new spelling is the term now, not an alias of it... */
    if (rc == LOCI_OK)
        rc = db_prepare(
            c, "DELETE FROM node_aliases WHERE user_id = ? AND node_id = ? AND alias = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, cur->id, (size_t)-1);
    db_bind_text(st, 3, term, (size_t)-1);
    rc = db_run(st, NULL);
    /* ...and the old one still finds the node. */
    if (rc == LOCI_OK)
        rc = alias_add(c, user_id, cur->id, cur->term, cur->key);
    return rc;
}

static int set_summary(struct db_conn *c, const char *user_id, const char *id, const char *summary,
                       int64_t now)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(
        c, "UPDATE nodes SET summary = ?, updated_at = ? WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, summary, (size_t)-1);
    db_bind_int64(st, 2, now);
    db_bind_text(st, 3, id, (size_t)-1);
    db_bind_text(st, 4, user_id, (size_t)-1);
    return db_run_one(st);
}

int graph_node_update(struct db_conn *c, const char *user_id, const char *id, const char *term,
                      const char *summary, int64_t now, struct graph_delta *delta)
{
    struct node_row cur;
    struct buf clean, key, sum;
    buf_init(&clean, 0);
    buf_init(&key, 0);
    buf_init(&sum, 0);
    bool is_changed = false;
    int rc = node_row_load(c, user_id, id, &cur);
    if (rc)
        goto out;
    if (term) {
        buf_release(&clean);
        buf_release(&key);
        rc = graph__term_prepare(term, &clean, &key);
        if (rc == LOCI_OK && strcmp(buf_cstr(&clean), cur.term) != 0) {
            rc = rename_node(c, user_id, &cur, buf_cstr(&clean), buf_cstr(&key), now);
            is_changed = true;
        }
        if (rc)
            goto out;
    }
    if (summary) {
        buf_release(&sum);
        rc = graph__summary_prepare(summary, &sum);
        if (rc == LOCI_OK && strcmp(buf_cstr(&sum), cur.summary) != 0) {
            rc = set_summary(c, user_id, id, buf_cstr(&sum), now);
            is_changed = true;
        }
        if (rc)
            goto out;
    }
    if (is_changed) {
        rc = graph_delta_add_node(c, user_id, id, delta);
        if (rc == LOCI_OK)
            graph__delta_embed(delta, id);
    }
out:
    node_row_release(&cur);
    buf_release(&clean);
    buf_release(&key);
    buf_release(&sum);
    return rc;
}

/* ---- merge and delete ---- */

struct edge_rec {
    char src[UUID_STR_LEN];
    char dst[UUID_STR_LEN];
    char type[32];
    double weight;
};

/* Every edge touching id, into *out (caller frees). */
static int edges_of(struct db_conn *c, const char *user_id, const char *id, struct edge_rec **out,
                    size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    size_t cap = 0;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT src, dst, type, weight FROM edges "
                        "WHERE user_id = ? AND (src = ? OR dst = ?) ORDER BY src, dst, type",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, id, (size_t)-1);
    db_bind_text(st, 3, id, (size_t)-1);
    while ((rc = db_step(st)) == LOCI_ROW) {
        if (*out_n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof(**out));
        }
        struct edge_rec *e = &(*out)[(*out_n)++];
        snprintf(e->src, sizeof(e->src), "%s", db_col_text(st, 0, NULL));
        snprintf(e->dst, sizeof(e->dst), "%s", db_col_text(st, 1, NULL));
        snprintf(e->type, sizeof(e->type), "%s", db_col_text(st, 2, NULL));
        e->weight = db_col_double(st, 3);
    }
    db_stmt_done(st);
    return rc;
}

/* Add weight to edge (src, dst, type), creating it when missing. */
static int edge_add(struct db_conn *c, const char *user_id, const char *src, const char *dst,
                    const char *type, double weight, int64_t now)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "INSERT INTO edges (user_id, src, dst, type, weight, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, src, dst, type) "
                        "DO UPDATE SET weight = edges.weight + excluded.weight, "
                        "updated_at = excluded.updated_at",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, src, (size_t)-1);
    db_bind_text(st, 3, dst, (size_t)-1);
    db_bind_text(st, 4, type, (size_t)-1);
    db_bind_double(st, 5, weight);
    db_bind_int64(st, 6, now);
    return db_run(st, NULL);
}

/* Messages that named the node name its replacement (NULL: nothing). */
static int repoint_messages(struct db_conn *c, const char *user_id, const char *id,
                            const char *into)
{
    struct db_stmt *st = NULL;
    int rc =
        db_prepare(c, "UPDATE messages SET node_id = ? WHERE user_id = ? AND node_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, into, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_text(st, 3, id, (size_t)-1);
    rc = db_run(st, NULL);
    if (rc == LOCI_OK)
        rc = db_prepare(c,
                        "UPDATE messages SET focus_node_id = ? WHERE user_id = ? "
                        "AND focus_node_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, into, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_text(st, 3, id, (size_t)-1);
    return db_run(st, NULL);
}

static int delete_row(struct db_conn *c, const char *user_id, const char *id)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "DELETE FROM nodes WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    return db_run_one(st);
}

/* Move id's edges onto into: weights add up where into already has the
 * edge, an edge between the two would become a self-loop and goes. */
static int move_edges(struct db_conn *c, const char *user_id, const char *id, const char *into,
                      int64_t now, struct graph_delta *delta)
{
    struct edge_rec *v = NULL;
    size_t n = 0;
    int rc = edges_of(c, user_id, id, &v, &n);
    for (size_t i = 0; rc == LOCI_OK && i < n; i++) {
        struct edge_rec *e = &v[i];
        graph__delta_removed_edge(delta, e->src, e->dst, e->type);
        const char *src = strcmp(e->src, id) == 0 ? into : e->src;
        const char *dst = strcmp(e->dst, id) == 0 ? into : e->dst;
        if (strcmp(src, dst) == 0)
            continue;
        if (strcmp(e->type, "related") == 0 && strcmp(src, dst) > 0) {
            const char *t = src;
            src = dst;
            dst = t;
        }
        rc = edge_add(c, user_id, src, dst, e->type, e->weight, now);
        if (rc == LOCI_OK)
            rc = graph__delta_put_edge(c, user_id, src, dst, e->type, delta);
    }
    xfree(v);
    return rc;
}

int graph_node_merge(struct db_conn *c, const char *user_id, const char *id, const char *into,
                     int64_t now, struct graph_delta *delta)
{
    struct node_row from, to;
    memset(&to, 0, sizeof(to));
    struct db_stmt *st = NULL;
    int rc = node_row_load(c, user_id, id, &from);
    if (rc == LOCI_OK)
        rc = node_row_load(c, user_id, into, &to);
    if (rc)
        goto out;
    if (strcmp(id, into) == 0) {
        rc = LOCI_EUNPROCESSABLE;
        goto out;
    }
    rc = move_edges(c, user_id, id, into, now, delta);
    if (rc)
        goto out;
    /* Every spelling of the merged node, its own included, now finds into. */
    rc =
        db_prepare(c, "UPDATE node_aliases SET node_id = ? WHERE user_id = ? AND node_id = ?", &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, into, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_text(st, 3, id, (size_t)-1);
    rc = db_run(st, NULL);
    if (rc == LOCI_OK)
        rc = alias_add(c, user_id, into, from.term, from.key);
    /* A moved spelling that is into's own term is no alias. */
    if (rc == LOCI_OK)
        rc = db_prepare(
            c, "DELETE FROM node_aliases WHERE user_id = ? AND node_id = ? AND alias = ?", &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, into, (size_t)-1);
    db_bind_text(st, 3, to.term, (size_t)-1);
    rc = db_run(st, NULL);
    if (rc == LOCI_OK)
        rc = repoint_messages(c, user_id, id, into);
    if (rc)
        goto out;
    bool takes_summary = to.summary[0] == '\0' && from.summary[0] != '\0';
    rc = db_prepare(c,
                    "UPDATE nodes SET summary = ?, is_root = ?, origin_message_id = ?, "
                    "updated_at = ? WHERE id = ? AND user_id = ?",
                    &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, takes_summary ? from.summary : to.summary, (size_t)-1);
    db_bind_int64(st, 2, to.is_root || from.is_root);
    db_bind_text(st, 3, to.origin ? to.origin : from.origin, (size_t)-1);
    db_bind_int64(st, 4, now);
    db_bind_text(st, 5, into, (size_t)-1);
    db_bind_text(st, 6, user_id, (size_t)-1);
    rc = db_run_one(st);
    if (rc == LOCI_OK)
        rc = delete_row(c, user_id, id);
    if (rc == LOCI_OK)
        rc = graph_delta_add_node(c, user_id, into, delta);
    if (rc)
        goto out;
    delta_removed_node(delta, id);
    if (takes_summary)
        graph__delta_embed(delta, into);
out:
    node_row_release(&from);
    node_row_release(&to);
    return rc;
}

int graph_node_delete(struct db_conn *c, const char *user_id, const char *id,
                      struct graph_delta *delta)
{
    struct edge_rec *v = NULL;
    size_t n = 0;
    int rc = graph_node_exists(c, user_id, id);
    if (rc == LOCI_OK)
        rc = edges_of(c, user_id, id, &v, &n);
    if (rc == LOCI_OK)
        rc = repoint_messages(c, user_id, id, NULL);
    /* Edges, aliases and the embedding go with the row (ON DELETE CASCADE). */
    if (rc == LOCI_OK)
        rc = delete_row(c, user_id, id);
    if (rc == LOCI_OK) {
        for (size_t i = 0; i < n; i++)
            graph__delta_removed_edge(delta, v[i].src, v[i].dst, v[i].type);
        delta_removed_node(delta, id);
    }
    xfree(v);
    return rc;
}

int graph_set_familiarity(struct db_conn *c, const char *user_id, const char *id, double value,
                          int64_t now, struct graph_delta *delta)
{
    if (isnan(value) || value < 0 || value > 1)
        return LOCI_EUNPROCESSABLE;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE nodes SET familiarity = ?, updated_at = ? "
                        "WHERE id = ? AND user_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_double(st, 1, value);
    db_bind_int64(st, 2, now);
    db_bind_text(st, 3, id, (size_t)-1);
    db_bind_text(st, 4, user_id, (size_t)-1);
    rc = db_run_one(st);
    if (rc == LOCI_OK)
        rc = graph_delta_add_node(c, user_id, id, delta);
    return rc;
}
