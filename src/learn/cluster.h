/*
 * cluster.h - communities in each learner's knowledge graph, so a big graph
 * can be drawn collapsed: one meta-node per cluster, inter-cluster edges
 * with summed weights.
 *
 * learn_cluster_user() loads a user's nodes and edges, runs igraph's
 * community detection (Leiden optimising modularity, or Louvain), keeps
 * cluster ids stable across runs (a new community takes the id of the old
 * cluster it shares most members with), writes each node's cluster, one
 * `clusters` row per community (label from its top terms by weighted
 * degree, member count, mean familiarity) and one `graph.updated` event
 * (reason "graph.clustered") with the nodes whose cluster changed, all in
 * one transaction.
 *
 * The weekly `compress_graph` schedule (Sunday 04:00 UTC) enqueues the
 * system job `graph.compress`, which does this for every user with nodes.
 *
 * Not here: drawing (graph_slice; learn_cluster_collapsed gives the meta
 * graph), familiarity (the FSRS module).
 * Threads: any; a connection belongs to its thread.
 */
#ifndef LOCI_LEARN_CLUSTER_H
#define LOCI_LEARN_CLUSTER_H

#include "store/db.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum learn_cluster_algo {
    LEARN_LEIDEN = 0, /* Leiden, modularity: node weights = strengths, resolution 1/(2m) */
    LEARN_LOUVAIN,    /* igraph_community_multilevel */
};

#define LEARN_LABEL_TERMS 3 /* terms in a cluster's label */

struct learn_cluster_stats {
    size_t n_nodes;
    size_t n_edges; /* edges loaded (every type; parallel ones add up in weight) */
    size_t n_clusters;
    size_t n_changed;  /* nodes whose cluster id changed */
    double modularity; /* of the partition found, weighted */
    double load_ms;    /* reading nodes and edges */
    double algo_ms;    /* the igraph call(s) */
    double write_ms;   /* the transaction */
};

/* Cluster one user's graph and store the result (see above) at time now.
 * A user without nodes: LOCI_OK, nothing written. out may be NULL. Runs
 * its own transactions on db (call from a job, never an HTTP thread). */
int learn_cluster_user(struct db *db, const char *user_id, enum learn_cluster_algo algo,
                       int64_t now, struct learn_cluster_stats *out);

/* The bare community detection on an edge list (n nodes 0..n-1; edges as
 * pairs in from/to; weights > 0): membership[i] (caller's array of n) gets
 * node i's community 0..k-1; returns k, or a negative loci_err. The
 * modularity of the result goes to *out_modularity (may be NULL). What
 * learn_cluster_user runs; public for the benchmark and tests. */
int learn_cluster_membership(size_t n, const int64_t *from, const int64_t *to,
                             const double *weights, size_t n_edges, enum learn_cluster_algo algo,
                             int64_t *membership, double *out_modularity);

/* The collapsed graph: {"clusters":[{"id","label","member_count",
 * "mean_familiarity","top_terms"}], "edges":[{"src","dst","weight",
 * "count"}], "unclustered": n}. Member counts and mean familiarity are
 * counted now (nodes added since the last run are "unclustered"); an edge
 * joins two clusters (src < dst) with the summed weight and the number of
 * node edges between them. Biggest clusters first; at most limit clusters
 * (1..2000, else LOCI_EINVAL) and only edges among those. */
int learn_cluster_collapsed(struct db_conn *c, const char *user_id, int limit, json_t **out);

/* LOCI_OK when cluster_id is one of the user's clusters, else
 * LOCI_ENOTFOUND. */
int learn_cluster_exists(struct db_conn *c, const char *user_id, const char *cluster_id);

struct jobs;
/* Register the `graph.compress` job and the `compress_graph` schedule
 * ("0 4 * * 0", UTC). err gets a message on failure. */
int learn_cluster_register_jobs(struct jobs *js, char *err, size_t err_n);

#endif
