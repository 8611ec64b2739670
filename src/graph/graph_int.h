/*
 * graph_int.h - private to src/graph: what graph_read.c, graph_edit.c and
 * graph_embed.c share (node rows as JSON, term and summary intake, edge
 * records in a delta). Nobody outside src/graph includes this.
 */
#ifndef LOCI_GRAPH_INT_H
#define LOCI_GRAPH_INT_H

#include "core/buf.h"
#include "graph/graph.h"

/* A key is at most this long: NFKC can expand a term, so it gets room. */
#define GRAPH__KEY_MAX (GRAPH_TERM_MAX * 8)

/* The columns graph__node_from_row() reads, in this order. */
#define GRAPH__NODE_COLS "id, term, summary, familiarity, cluster, is_root, created_at, updated_at"

/* Node JSON (without "aliases") from the GRAPH__NODE_COLS columns starting
 * at column col. A new reference. */
json_t *graph__node_from_row(struct db_stmt *st, int col);

/* A term as stored: one clean display line (text_clean_line) of 1 to
 * GRAPH_TERM_MAX bytes into clean, its node key (text_term_key) into key.
 * Both buffers are set up here and released by the caller, also on error.
 * LOCI_EUNPROCESSABLE when the term is empty, too long or has no words. */
int graph__term_prepare(const char *term, struct buf *clean, struct buf *key);

/* A summary as stored: control characters (except line breaks and tabs)
 * and invalid UTF-8 dropped, surrounding white space trimmed, at most
 * GRAPH_SUMMARY_MAX bytes (else LOCI_EUNPROCESSABLE). out is set up here
 * and released by the caller. */
int graph__summary_prepare(const char *summary, struct buf *out);

/* The node whose key or alias key is key, other than exclude_id (may be
 * ""): LOCI_OK with its id, or LOCI_ENOTFOUND. */
int graph__key_owner(struct db_conn *c, const char *user_id, const char *key,
                     const char *exclude_id, char out_id[UUID_STR_LEN]);

/* Record edge (src, dst, type) in the delta with its current weight, read
 * from the table (replacing an earlier record of the same edge). */
int graph__delta_put_edge(struct db_conn *c, const char *user_id, const char *src, const char *dst,
                          const char *type, struct graph_delta *d);
/* Record an edge as removed. */
void graph__delta_removed_edge(struct graph_delta *d, const char *src, const char *dst,
                               const char *type);
/* Add id to the delta's embed_ids once. */
void graph__delta_embed(struct graph_delta *d, const char *id);

#endif
