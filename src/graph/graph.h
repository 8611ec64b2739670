/*
 * graph.h - each learner's knowledge graph: nodes (one per normalised term,
 * other spellings as aliases), weighted edges (undirected co-occurrence
 * "related", directed typed relations), familiarity, node embeddings.
 *
 * Every function takes an open connection and the user id, and every query
 * filters by that user: another user's id behaves exactly like a missing
 * one (LOCI_ENOTFOUND). Writers run inside the caller's transaction and
 * record what changed in a struct graph_delta; the caller appends it as one
 * `graph.updated` event with graph_emit() in the same transaction, so the
 * change and its event commit together.
 *
 * Node JSON (graph_node_json and deltas):
 *   {"id","term","summary","familiarity","cluster","is_root","created_at",
 *    "updated_at","aliases":[...]}
 * Edge JSON: {"src","dst","type","weight"} ("related" edges have src < dst).
 *
 * Not here: HTTP (api/graph.c), asking (convo), embeddings computation
 * (the graph.embed job in graph_embed.c calls the AI gateway).
 * Threads: any; a connection belongs to its thread.
 */
#ifndef LOCI_GRAPH_H
#define LOCI_GRAPH_H

#include "core/ids.h"
#include "store/db.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define GRAPH_TERM_MAX    200  /* bytes of a term */
#define GRAPH_SUMMARY_MAX 2000 /* bytes of a summary */

/* Edge types. "related" is undirected co-occurrence; the others are directed
 * relations a model gave (from -> to). */
extern const char *const graph_edge_types[];
bool graph_edge_type_valid(const char *type);

struct graph_delta {
    json_t *nodes;         /* nodes added or changed (full node JSON) */
    json_t *edges;         /* edges added or changed */
    json_t *removed_nodes; /* ids */
    json_t *removed_edges; /* {"src","dst","type"} */
    json_t *embed_ids;     /* nodes whose term or summary changed: embed them */
};

void graph_delta_init(struct graph_delta *d);
void graph_delta_release(struct graph_delta *d);
bool graph_delta_is_empty(const struct graph_delta *d);
/* Record the current state of node id in the delta (replacing an earlier
 * record of the same node). */
int graph_delta_add_node(struct db_conn *c, const char *user_id, const char *id,
                         struct graph_delta *d);

/* Append `graph.updated` {reason, nodes, edges, removed_nodes,
 * removed_edges} when the delta is not empty, and enqueue a `graph.embed`
 * job for embed_ids. In the caller's transaction. */
int graph_emit(struct db_conn *c, const char *user_id, const struct graph_delta *d,
               const char *reason);

/* ---- merging terms from an answer (graph_merge.c) ---- */

struct graph_term {
    const char *term;    /* surface form; trimmed and cleaned here */
    const char *summary; /* may be NULL or "" */
};

struct graph_relation {
    const char *from; /* as in terms[] */
    const char *to;
    const char *type; /* one of graph_edge_types, not "related" */
};

struct graph_merged {
    char node_id[UUID_STR_LEN];
    bool is_new;
    bool is_skipped; /* the term had no words (nothing merged) */
};

/* Merge terms into the graph: each term finds its node by key (or alias
 * key) or creates one (the origin message noted; terms[0], the answer's
 * main term, is a root when is_root: a question asked without a focus);
 * a new spelling becomes an alias; an empty summary is filled. Then edges:
 * "related" between every pair of the terms (weight += 1), the focus node
 * to each term, and the typed relations. out[i] tells where terms[i] went.
 * n <= 32. */
int graph_merge_terms(struct db_conn *c, const char *user_id, const struct graph_term *terms,
                      size_t n, const struct graph_relation *rels, size_t n_rels,
                      const char *focus_node_id, const char *origin_message_id, bool is_root,
                      int64_t now, struct graph_delta *delta, struct graph_merged *out);

/* ---- reading (graph_read.c) ---- */

/* The node as JSON; with_neighbours adds "neighbours":[{node (id, term,
 * familiarity), type, weight, direction: "out"|"in"|"both"}] strongest
 * first (at most 200). */
int graph_node_json(struct db_conn *c, const char *user_id, const char *id, bool with_neighbours,
                    json_t **out);
/* LOCI_OK when id is the user's node, else LOCI_ENOTFOUND. */
int graph_node_exists(struct db_conn *c, const char *user_id, const char *id);
/* The node a term lands on: the one whose key, or one of whose aliases'
 * keys, is the term's key. LOCI_OK with its id, LOCI_ENOTFOUND when none,
 * LOCI_EUNPROCESSABLE when the term has no words or is over
 * GRAPH_TERM_MAX bytes once cleaned. */
int graph_node_find(struct db_conn *c, const char *user_id, const char *term,
                    char out_id[UUID_STR_LEN]);

struct graph_context_node {
    char id[UUID_STR_LEN];
    char *term;
    char *summary;
};
/* The focus node and its strongest neighbours up to 2 hops, at most cap
 * nodes (focus first; cap 1..500, 0 is LOCI_EINVAL, more is 500): first the
 * focus node's neighbours by the summed weight of the edges between them,
 * then theirs, each by its strongest tie to a first-hop node. A missing
 * focus node is LOCI_ENOTFOUND. Free with graph_context_release(*out,
 * *out_n). */
int graph_context(struct db_conn *c, const char *user_id, const char *focus_id, size_t cap,
                  struct graph_context_node **out, size_t *out_n);
void graph_context_release(struct graph_context_node *nodes, size_t n);

/* Root nodes (started by a question without focus), newest first, keyset
 * paginated: {"items":[node], "next_cursor": "..." | null}. cursor is NULL
 * for the first page, else a next_cursor given before (an opaque string;
 * anything else is LOCI_EUNPROCESSABLE); limit 1..100 (else LOCI_EINVAL). */
int graph_recent_roots(struct db_conn *c, const char *user_id, const char *cursor, int limit,
                       json_t **out);
/* A slice for drawing: the strongest edges (at most limit*4) and the nodes
 * they touch plus the most recent nodes, at most limit nodes in all;
 * cluster (may be NULL) restricts to one cluster. {"nodes":[], "edges":[],
 * "truncated": bool}. limit 1..2000 (else LOCI_EINVAL). Nodes here are node
 * JSON without "aliases"; "truncated" says the user has more nodes (in the
 * cluster) or edges than the slice holds. */
int graph_slice(struct db_conn *c, const char *user_id, int limit, const char *cluster,
                json_t **out);

/* ---- editing (graph_edit.c); each records its changes in delta ---- */

/* A manual note (not a root). The term is cleaned to one line of 1..
 * GRAPH_TERM_MAX bytes with at least one word, the summary (may be NULL)
 * stripped of control characters and at most GRAPH_SUMMARY_MAX bytes: else
 * LOCI_EUNPROCESSABLE. LOCI_ECONFLICT when a node with the same key (or an
 * alias with it) exists (out_id then holds it); else out_id is the new
 * node. */
int graph_node_create(struct db_conn *c, const char *user_id, const char *term, const char *summary,
                      int64_t now, struct graph_delta *delta, char out_id[UUID_STR_LEN]);
/* Rename and/or change the summary (NULL = keep). A rename to a term whose
 * key another node has (as its key or an alias's) is LOCI_ECONFLICT
 * (graph_node_find names it); the old spelling stays as an alias. Terms
 * and summaries as in graph_node_create. No change, no delta. */
int graph_node_update(struct db_conn *c, const char *user_id, const char *id, const char *term,
                      const char *summary, int64_t now, struct graph_delta *delta);
/* Merge id into `into`: edges move (weights add, self-loops dropped),
 * aliases and the term's key move, the summary is kept if into has none,
 * into becomes a root if either was, messages naming id name into, id is
 * deleted. Either node missing: LOCI_ENOTFOUND; id == into:
 * LOCI_EUNPROCESSABLE. */
int graph_node_merge(struct db_conn *c, const char *user_id, const char *id, const char *into,
                     int64_t now, struct graph_delta *delta);
/* Delete a node with its edges, aliases and embedding; messages that
 * named it keep no node. */
int graph_node_delete(struct db_conn *c, const char *user_id, const char *id,
                      struct graph_delta *delta);
/* value in [0, 1] else LOCI_EUNPROCESSABLE. */
int graph_set_familiarity(struct db_conn *c, const char *user_id, const char *id, double value,
                          int64_t now, struct graph_delta *delta);

/* ---- embeddings (graph_embed.c) ---- */

struct jobs;
struct ai;
/* Register the `graph.embed` job ({"node_ids":[...]} of the job's user):
 * embeds "term: summary" of those nodes through ai (the gateway) into
 * node_embeddings, skipping nodes whose text and embedder are unchanged
 * and nodes that are gone. ai must outlive the workers. */
int graph_register_jobs(struct jobs *js, struct ai *ai);

#endif
