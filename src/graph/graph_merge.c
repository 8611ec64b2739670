/*
 * graph_merge.c - terms from an answer become nodes and edges.
 *
 * A term finds its node by key (text_term_key: NFKC case-fold, stemmed,
 * whitespace collapsed), or by an alias key (other spellings, merged
 * nodes), or a node is created. Inserts use ON CONFLICT so two concurrent
 * answers naming the same new term end on one node. Edges are upserts that
 * add 1 to the weight, so asking about the same thing again strengthens the
 * graph instead of duplicating it.
 */
#include "graph/graph.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "services/text/text.h"

#include <string.h>

#define MAX_MERGE_TERMS 32

/* Cut s to at most max bytes at a UTF-8 boundary. */
static size_t utf8_prefix(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

static int find_node(struct db_conn *c, const char *user_id, const char *key,
                     char out[UUID_STR_LEN], char *term, size_t term_n)
{
    struct db_stmt *st;
    int rc = db_prepare(c, "SELECT id, term FROM nodes WHERE user_id = ? AND key = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, key, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        snprintf(out, UUID_STR_LEN, "%s", db_col_text(st, 0, NULL));
        snprintf(term, term_n, "%s", db_col_text(st, 1, NULL));
        db_stmt_done(st);
        return LOCI_OK;
    }
    db_stmt_done(st);
    if (rc != LOCI_OK)
        return rc;
    rc = db_prepare(c,
                    "SELECT n.id, n.term FROM node_aliases a JOIN nodes n ON n.id = a.node_id "
                    "WHERE a.user_id = ? AND a.key = ? AND n.user_id = ? ORDER BY n.created_at "
                    "LIMIT 1",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, key, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        snprintf(out, UUID_STR_LEN, "%s", db_col_text(st, 0, NULL));
        snprintf(term, term_n, "%s", db_col_text(st, 1, NULL));
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_ENOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

/* Insert the node unless its key exists; *is_new says which happened. */
static int insert_node(struct db_conn *c, const char *user_id, const char *term, const char *key,
                       const char *summary, bool is_root, const char *origin, int64_t now,
                       char out[UUID_STR_LEN], bool *is_new)
{
    char id[UUID_STR_LEN];
    ids_uuid7(id);
    struct db_stmt *st;
    int rc = db_prepare(c,
                        "INSERT INTO nodes (id, user_id, term, key, summary, is_root, "
                        "origin_message_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
                        "?, ?) ON CONFLICT (user_id, key) DO NOTHING RETURNING id",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_text(st, 3, term, (size_t)-1);
    db_bind_text(st, 4, key, (size_t)-1);
    db_bind_text(st, 5, summary ? summary : "", (size_t)-1);
    db_bind_int64(st, 6, is_root ? 1 : 0);
    db_bind_text(st, 7, origin, (size_t)-1);
    db_bind_int64(st, 8, now);
    db_bind_int64(st, 9, now);
    rc = db_step(st);
    db_stmt_done(st);
    if (rc == LOCI_ROW) {
        snprintf(out, UUID_STR_LEN, "%s", id);
        *is_new = true;
        return LOCI_OK;
    }
    if (rc != LOCI_OK)
        return rc;
    /* another transaction created it first */
    *is_new = false;
    char t[8];
    return find_node(c, user_id, key, out, t, sizeof(t));
}

static int touch_node(struct db_conn *c, const char *user_id, const char *id, const char *summary,
                      int64_t now, bool *out_summary_set)
{
    struct db_stmt *st;
    *out_summary_set = false;
    int rc;
    if (summary && summary[0]) {
        rc = db_prepare(c,
                        "UPDATE nodes SET summary = ?, updated_at = ? "
                        "WHERE id = ? AND user_id = ? AND summary = ''",
                        &st);
        if (rc)
            return rc;
        db_bind_text(st, 1, summary, (size_t)-1);
        db_bind_int64(st, 2, now);
        db_bind_text(st, 3, id, (size_t)-1);
        db_bind_text(st, 4, user_id, (size_t)-1);
        int64_t changed = 0;
        rc = db_run(st, &changed);
        if (rc || changed)
            return (*out_summary_set = changed > 0), rc;
    }
    rc = db_prepare(c, "UPDATE nodes SET updated_at = ? WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, now);
    db_bind_text(st, 2, id, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    return db_run(st, NULL);
}

static int add_alias(struct db_conn *c, const char *user_id, const char *id, const char *alias,
                     const char *key)
{
    struct db_stmt *st;
    int rc =
        db_prepare(c,
                   "INSERT INTO node_aliases (user_id, node_id, alias, key) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (user_id, alias) DO NOTHING",
                   &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, id, (size_t)-1);
    db_bind_text(st, 3, alias, (size_t)-1);
    db_bind_text(st, 4, key, (size_t)-1);
    return db_run(st, NULL);
}

/* Add 1 to the edge's weight (creating it at 1) and record it. "related"
 * edges are stored with src < dst. */
static int bump_edge(struct db_conn *c, const char *user_id, const char *a, const char *b,
                     const char *type, int64_t now, struct graph_delta *delta)
{
    if (strcmp(a, b) == 0)
        return LOCI_OK;
    const char *src = a, *dst = b;
    if (strcmp(type, "related") == 0 && strcmp(a, b) > 0) {
        src = b;
        dst = a;
    }
    struct db_stmt *st;
    int rc = db_prepare(c,
                        "INSERT INTO edges (user_id, src, dst, type, weight, updated_at) "
                        "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (user_id, src, dst, type) "
                        "DO UPDATE SET weight = edges.weight + 1, updated_at = excluded.updated_at "
                        "RETURNING weight",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, src, (size_t)-1);
    db_bind_text(st, 3, dst, (size_t)-1);
    db_bind_text(st, 4, type, (size_t)-1);
    db_bind_int64(st, 5, now);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        double w = db_col_double(st, 0);
        json_array_append_new(delta->edges, json_pack("{s:s, s:s, s:s, s:f}", "src", src, "dst",
                                                      dst, "type", type, "weight", w));
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_EIO;
    }
    db_stmt_done(st);
    return rc;
}

/* Clean term into a display form and its key. LOCI_EINVAL: no words. */
static int normalise(const char *term, struct buf *clean, struct buf *key)
{
    if (!term)
        return LOCI_EINVAL;
    size_t n = strlen(term);
    int rc = text_clean_line(term, n, clean);
    if (rc)
        return rc;
    clean->len = utf8_prefix(buf_cstr(clean), clean->len, GRAPH_TERM_MAX);
    clean->p[clean->len] = '\0';
    if (clean->len == 0)
        return LOCI_EINVAL;
    return text_term_key(clean->p, clean->len, key);
}

/* out[i] merged a node no earlier term of this answer landed on. */
static bool is_first(const struct graph_merged *out, size_t i)
{
    if (out[i].is_skipped)
        return false;
    for (size_t j = 0; j < i; j++)
        if (!out[j].is_skipped && strcmp(out[j].node_id, out[i].node_id) == 0)
            return false;
    return true;
}

int graph_merge_terms(struct db_conn *c, const char *user_id, const struct graph_term *terms,
                      size_t n, const struct graph_relation *rels, size_t n_rels,
                      const char *focus_node_id, const char *origin_message_id, bool is_root,
                      int64_t now, struct graph_delta *delta, struct graph_merged *out)
{
    if (n > MAX_MERGE_TERMS)
        return LOCI_EINVAL;
    char keys[MAX_MERGE_TERMS][GRAPH_TERM_MAX * 2 + 8];
    char node_terms[MAX_MERGE_TERMS][GRAPH_TERM_MAX + 8]; /* the term each landed on */
    int rc = LOCI_OK;
    struct buf clean, key;
    buf_init(&clean, GRAPH_TERM_MAX * 4 + 16);
    buf_init(&key, sizeof(keys[0]) - 1);
    for (size_t i = 0; i < n && !rc; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        keys[i][0] = '\0';
        buf_reset(&clean);
        buf_reset(&key);
        if (normalise(terms[i].term, &clean, &key) != LOCI_OK) {
            out[i].is_skipped = true;
            continue;
        }
        snprintf(keys[i], sizeof(keys[i]), "%s", buf_cstr(&key));
        size_t same = 0;
        while (same < i && (out[same].is_skipped || strcmp(keys[same], keys[i]) != 0))
            same++;
        if (same < i) {
            /* the same term twice in one answer, maybe spelt otherwise */
            out[i] = out[same];
            memcpy(node_terms[i], node_terms[same], sizeof(node_terms[i]));
            if (strcmp(node_terms[i], clean.p) != 0)
                rc = add_alias(c, user_id, out[i].node_id, clean.p, keys[i]);
            continue;
        }
        char summary[GRAPH_SUMMARY_MAX + 8] = "";
        if (terms[i].summary) {
            size_t sn = utf8_prefix(terms[i].summary, strlen(terms[i].summary), GRAPH_SUMMARY_MAX);
            snprintf(summary, sizeof(summary), "%.*s", (int)sn, terms[i].summary);
        }
        char *existing_term = node_terms[i];
        rc = find_node(c, user_id, keys[i], out[i].node_id, existing_term, sizeof(node_terms[i]));
        if (rc == LOCI_ENOTFOUND) {
            snprintf(node_terms[i], sizeof(node_terms[i]), "%s", clean.p);
            rc = insert_node(c, user_id, clean.p, keys[i], summary, is_root && i == 0,
                             origin_message_id, now, out[i].node_id, &out[i].is_new);
            if (!rc && out[i].is_new)
                json_array_append_new(delta->embed_ids, json_string(out[i].node_id));
        } else if (rc == LOCI_OK) {
            bool is_summary_set = false;
            rc = touch_node(c, user_id, out[i].node_id, summary, now, &is_summary_set);
            if (!rc && is_summary_set)
                json_array_append_new(delta->embed_ids, json_string(out[i].node_id));
            if (!rc && strcmp(existing_term, clean.p) != 0)
                rc = add_alias(c, user_id, out[i].node_id, clean.p, keys[i]);
        }
        if (!rc)
            rc = graph_delta_add_node(c, user_id, out[i].node_id, delta);
    }
    /* co-occurrence between distinct nodes, and the focus to each */
    for (size_t i = 0; i < n && !rc; i++) {
        if (!is_first(out, i))
            continue;
        for (size_t j = i + 1; j < n && !rc; j++)
            if (is_first(out, j))
                rc = bump_edge(c, user_id, out[i].node_id, out[j].node_id, "related", now, delta);
        if (!rc && focus_node_id)
            rc = bump_edge(c, user_id, focus_node_id, out[i].node_id, "related", now, delta);
    }
    /* typed relations between terms of this answer */
    for (size_t r = 0; r < n_rels && !rc; r++) {
        if (!graph_edge_type_valid(rels[r].type) || strcmp(rels[r].type, "related") == 0)
            continue;
        const char *from = NULL, *to = NULL;
        for (size_t i = 0; i < n; i++) {
            if (out[i].is_skipped || !terms[i].term)
                continue;
            if (!from && rels[r].from && strcasecmp(terms[i].term, rels[r].from) == 0)
                from = out[i].node_id;
            if (!to && rels[r].to && strcasecmp(terms[i].term, rels[r].to) == 0)
                to = out[i].node_id;
        }
        if (from && to)
            rc = bump_edge(c, user_id, from, to, rels[r].type, now, delta);
    }
    buf_release(&clean);
    buf_release(&key);
    return rc;
}
