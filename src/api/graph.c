/*
 * graph.c - the knowledge graph over HTTP: a node with its neighbours, the
 * recent roots, a slice for drawing (or, with ?collapsed=true, one
 * meta-node per cluster and the summed edges between clusters), and the
 * learner's own edits (notes, rename, summary, merge, delete, familiarity).
 *
 * Each write runs in one transaction with its `graph.updated` event
 * (graph_emit), so the change and the event commit together. Node ids that
 * are malformed or belong to someone else are 404, like ids that never
 * existed. The rules live in src/graph; this file parses, calls, replies.
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "graph/graph.h"
#include "learn/cluster.h"
#include "learn/learn.h"

#include <stdio.h>
#include <string.h>

#define CLUSTER_MAX 128 /* bytes of ?cluster= */
#define CURSOR_MAX  128 /* bytes of ?cursor= */

static const struct json_field node_create_fields[] = {
    {"term", JF_STRING, true, false, 1, GRAPH_TERM_MAX},
    {"summary", JF_STRING, false, true, 0, GRAPH_SUMMARY_MAX},
};
const struct json_schema api_node_create_schema = {node_create_fields, 2, false};

static const struct json_field node_patch_fields[] = {
    {"term", JF_STRING, false, false, 1, GRAPH_TERM_MAX},
    {"summary", JF_STRING, false, false, 0, GRAPH_SUMMARY_MAX},
};
const struct json_schema api_node_patch_schema = {node_patch_fields, 2, false};

static const struct json_field node_merge_fields[] = {
    {"into", JF_STRING, true, false, 1, 64},
};
const struct json_schema api_node_merge_schema = {node_merge_fields, 1, false};

static const struct json_field familiarity_fields[] = {
    {"value", JF_NUMBER, true, false, 0, 1},
};
const struct json_schema api_familiarity_schema = {familiarity_fields, 1, false};

/* The :id of the path, or NULL when it cannot be a node id (a 404). */
static const char *node_param(struct http_req *req)
{
    const char *id = http_param(req, "id");
    return id && ids_is_uuid(id, strlen(id)) ? id : NULL;
}

static const char *caller(struct http_req *req)
{
    return api_principal(req)->user_id;
}

/* After a committed write: the embedding job may have work. */
static void wake_jobs(struct http_req *req, const struct graph_delta *d)
{
    struct app *app = http_app(req);
    if (app->jobs && json_array_size(d->embed_ids) > 0)
        jobs_wake(app->jobs);
}

/* A term the graph cannot take (no words, too long once cleaned). */
static int bad_term(struct http_req *req)
{
    return http_reply_error(req, LOCI_EUNPROCESSABLE, "term",
                            "'term' must hold at least one word and at most %d bytes",
                            GRAPH_TERM_MAX);
}

static int bad_summary(struct http_req *req)
{
    return http_reply_error(req, LOCI_EUNPROCESSABLE, "summary",
                            "'summary' must be at most %d bytes", GRAPH_SUMMARY_MAX);
}

/* 409 naming the node that already has the term. */
static int term_taken(struct http_req *req, const char *existing_id)
{
    json_t *err = json_pack("{s:s, s:s, s:s, s:s}", "code", loci_err_code(LOCI_ECONFLICT),
                            "message", "a node with this term exists", "field", "term",
                            "request_id", http_request_id(req));
    if (existing_id && existing_id[0])
        json_object_set_new(err, "existing_id", json_string(existing_id));
    return http_reply_json(req, 409, json_pack("{s:o}", "error", err));
}

/* ---- reads ---- */

int api_node_get(struct http_req *req)
{
    const char *id = node_param(req);
    if (!id)
        return LOCI_ENOTFOUND;
    struct app *app = http_app(req);
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *node = NULL;
    rc = graph_node_json(c, caller(req), id, true, &node);
    db_release(c);
    if (rc)
        return rc;
    return http_reply_json(req, 200, node);
}

int api_graphs_recent(struct http_req *req)
{
    int limit = 20;
    int rc = api_query_limit(req, 20, 100, &limit);
    if (rc || http_has_reply(req))
        return rc;
    const char *cursor = http_query(req, "cursor");
    if (cursor && cursor[0] == '\0')
        cursor = NULL;
    if (cursor && strlen(cursor) > CURSOR_MAX)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "cursor",
                                "'cursor' must be a next_cursor this server gave");
    struct app *app = http_app(req);
    struct db_conn *c = NULL;
    rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *page = NULL;
    rc = graph_recent_roots(c, caller(req), cursor, limit, &page);
    db_release(c);
    if (rc == LOCI_EUNPROCESSABLE)
        return http_reply_error(req, rc, "cursor",
                                "'cursor' must be a next_cursor this server gave");
    if (rc)
        return rc;
    return http_reply_json(req, 200, page);
}

int api_graph_slice(struct http_req *req)
{
    int limit = 500;
    int rc = api_query_limit(req, 500, 2000, &limit);
    if (rc || http_has_reply(req))
        return rc;
    const char *collapsed = http_query(req, "collapsed");
    bool is_collapsed = false;
    if (collapsed && strcmp(collapsed, "true") == 0)
        is_collapsed = true;
    else if (collapsed && strcmp(collapsed, "false") != 0)
        return http_reply_error(req, LOCI_EINVAL, "collapsed", "'collapsed' must be true or false");
    const char *cluster = http_query(req, "cluster");
    if (is_collapsed && cluster)
        return http_reply_error(req, LOCI_EINVAL, "cluster",
                                "'cluster' and 'collapsed=true' do not go together");
    if (cluster && (cluster[0] == '\0' || strlen(cluster) > CLUSTER_MAX))
        return http_reply_error(req, LOCI_EINVAL, "cluster", "'cluster' must be 1 to %d bytes",
                                CLUSTER_MAX);
    struct app *app = http_app(req);
    struct db_conn *c = NULL;
    rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *slice = NULL;
    if (is_collapsed)
        rc = learn_cluster_collapsed(c, caller(req), limit, &slice);
    else
        rc = graph_slice(c, caller(req), limit, cluster, &slice);
    db_release(c);
    if (rc)
        return rc;
    return http_reply_json(req, 200, slice);
}

/* ---- writes ---- */

/* One write: what to do, its delta, and the node to answer with. */
struct edit {
    const char *user;
    const char *id;   /* the node (create: filled in) */
    const char *into; /* merge */
    const char *term;
    const char *summary;
    double value;
    int (*apply)(struct db_conn *c, struct edit *e);
    const char *reason;
    bool is_reply_node;   /* answer with the node (and neighbours) */
    bool is_into_missing; /* merge: `into` is not the caller's node */
    const char *reply_id;
    int64_t now;
    struct graph_delta delta;
    json_t *node;
    char new_id[UUID_STR_LEN];
};

static int tx_edit(struct db_conn *c, void *arg)
{
    struct edit *e = arg;
    /* A retried transaction starts over. */
    graph_delta_release(&e->delta);
    graph_delta_init(&e->delta);
    json_decref(e->node);
    e->node = NULL;
    int rc = e->apply(c, e);
    if (rc == LOCI_OK)
        rc = graph_emit(c, e->user, &e->delta, e->reason);
    if (rc == LOCI_OK && e->is_reply_node)
        rc = graph_node_json(c, e->user, e->reply_id, true, &e->node);
    return rc;
}

static int run_edit(struct http_req *req, struct edit *e)
{
    graph_delta_init(&e->delta);
    e->user = caller(req);
    e->now = clock_now_ms();
    int rc = api_tx(req, tx_edit, e);
    if (rc == LOCI_OK)
        wake_jobs(req, &e->delta);
    graph_delta_release(&e->delta);
    return rc;
}

static int apply_create(struct db_conn *c, struct edit *e)
{
    int rc = graph_node_create(c, e->user, e->term, e->summary, e->now, &e->delta, e->new_id);
    e->reply_id = e->new_id;
    return rc;
}

int api_node_create(struct http_req *req)
{
    json_t *body = http_json(req);
    struct edit e = {
        .term = json_string_value(json_object_get(body, "term")),
        .summary = json_string_value(json_object_get(body, "summary")),
        .apply = apply_create,
        .reason = "node.created",
        .is_reply_node = true,
    };
    if (e.summary && strlen(e.summary) > GRAPH_SUMMARY_MAX)
        return bad_summary(req);
    int rc = run_edit(req, &e);
    if (rc == LOCI_ECONFLICT)
        return term_taken(req, e.new_id);
    if (rc == LOCI_EUNPROCESSABLE)
        return bad_term(req);
    if (rc)
        return rc;
    char location[64];
    snprintf(location, sizeof(location), "/api/v1/nodes/%s", e.new_id);
    http_set_header(req, "Location", location);
    return http_reply_json(req, 201, e.node);
}

static int apply_update(struct db_conn *c, struct edit *e)
{
    return graph_node_update(c, e->user, e->id, e->term, e->summary, e->now, &e->delta);
}

/* Which node already holds term (for a 409), "" when none is found. */
static void term_owner(struct http_req *req, const char *term, char out[UUID_STR_LEN])
{
    struct app *app = http_app(req);
    struct db_conn *c = NULL;
    out[0] = '\0';
    if (db_acquire(app->db, &c) == LOCI_OK) {
        graph_node_find(c, caller(req), term, out);
        db_release(c);
    }
}

int api_node_patch(struct http_req *req)
{
    json_t *body = http_json(req);
    struct edit e = {
        .id = node_param(req),
        .term = json_string_value(json_object_get(body, "term")),
        .summary = json_string_value(json_object_get(body, "summary")),
        .apply = apply_update,
        .reason = "node.updated",
        .is_reply_node = true,
    };
    if (!e.id)
        return LOCI_ENOTFOUND;
    e.reply_id = e.id;
    if (!e.term && !e.summary)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, NULL, "give 'term', 'summary' or both");
    if (e.summary && strlen(e.summary) > GRAPH_SUMMARY_MAX)
        return bad_summary(req);
    int rc = run_edit(req, &e);
    if (rc == LOCI_ECONFLICT) {
        char owner[UUID_STR_LEN];
        term_owner(req, e.term, owner);
        return term_taken(req, owner);
    }
    if (rc == LOCI_EUNPROCESSABLE)
        return bad_term(req);
    if (rc)
        return rc;
    return http_reply_json(req, 200, e.node);
}

static int apply_merge(struct db_conn *c, struct edit *e)
{
    /* Say which of the two is missing: both are the caller's ids. */
    int rc = graph_node_exists(c, e->user, e->id);
    if (rc == LOCI_OK) {
        rc = graph_node_exists(c, e->user, e->into);
        e->is_into_missing = rc == LOCI_ENOTFOUND;
    }
    if (rc == LOCI_OK)
        rc = graph_node_merge(c, e->user, e->id, e->into, e->now, &e->delta);
    return rc;
}

int api_node_merge(struct http_req *req)
{
    struct edit e = {
        .id = node_param(req),
        .into = json_string_value(json_object_get(http_json(req), "into")),
        .apply = apply_merge,
        .reason = "node.merged",
        .is_reply_node = true,
    };
    if (!e.id)
        return LOCI_ENOTFOUND;
    if (!ids_is_uuid(e.into, strlen(e.into)))
        return http_reply_error(req, LOCI_ENOTFOUND, "into", NULL);
    e.reply_id = e.into;
    int rc = run_edit(req, &e);
    if (rc == LOCI_ENOTFOUND && e.is_into_missing)
        return http_reply_error(req, rc, "into", NULL);
    if (rc == LOCI_EUNPROCESSABLE)
        return http_reply_error(req, rc, "into", "a node cannot be merged into itself");
    if (rc)
        return rc;
    return http_reply_json(req, 200, e.node);
}

static int apply_delete(struct db_conn *c, struct edit *e)
{
    return graph_node_delete(c, e->user, e->id, &e->delta);
}

int api_node_delete(struct http_req *req)
{
    struct edit e = {.id = node_param(req), .apply = apply_delete, .reason = "node.deleted"};
    if (!e.id)
        return LOCI_ENOTFOUND;
    int rc = run_edit(req, &e);
    if (rc)
        return rc;
    return http_reply_bytes(req, 204, NULL, "", 0, false);
}

/* A manual familiarity is also a self-rating that feeds the node's FSRS
 * card (learn_rating_for_familiarity); the value set stays until decay. */
static int apply_familiarity(struct db_conn *c, struct edit *e)
{
    struct learn_review_out r;
    int rc = graph_set_familiarity(c, e->user, e->id, e->value, e->now, &e->delta);
    if (rc == LOCI_OK)
        rc = learn_review(c, e->user, e->id, learn_rating_for_familiarity(e->value), -1,
                          LEARN_SRC_SELF, e->now, &e->delta, &r);
    return rc;
}

int api_node_familiarity(struct http_req *req)
{
    struct edit e = {
        .id = node_param(req),
        .value = json_number_value(json_object_get(http_json(req), "value")),
        .apply = apply_familiarity,
        .reason = "node.familiarity",
    };
    if (!e.id)
        return LOCI_ENOTFOUND;
    int rc = run_edit(req, &e);
    if (rc == LOCI_EUNPROCESSABLE)
        return http_reply_error(req, rc, "value", "'value' must be from 0 to 1");
    if (rc)
        return rc;
    return http_reply_bytes(req, 204, NULL, "", 0, false);
}
