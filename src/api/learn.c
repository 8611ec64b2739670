/*
 * learn.c - spaced repetition over HTTP: the due queue, recording a review,
 * a node's review history, and the learner's learning settings. Each review
 * commits with its `review.recorded` event and the `graph.updated` delta of
 * the node's new familiarity. The rules live in src/learn; this file parses,
 * calls, replies. Node ids that are malformed or someone else's are 404.
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "graph/graph.h"
#include "learn/learn.h"

#include <math.h>
#include <string.h>

static const struct json_field review_fields[] = {
    {"node_id", JF_STRING, true, false, 1, 64},
    {"rating", JF_INTEGER, true, false, 1, 4},
    {"duration_ms", JF_INTEGER, false, true, 0, 86400000},
};
const struct json_schema api_review_schema = {review_fields, 3, false};

static const struct json_field learning_fields[] = {
    {"desired_retention", JF_NUMBER, false, false, 0, 1},
    {"new_per_day", JF_INTEGER, false, false, 0, LEARN_NEW_PER_DAY_MAX},
    {"review_mail", JF_BOOLEAN, false, false, 0, 0},
    {"threshold", JF_NUMBER, false, false, 0, 1},
};
const struct json_schema api_learning_schema = {learning_fields, 4, false};

static const char *caller(struct http_req *req)
{
    return api_principal(req)->user_id;
}

int api_reviews_due(struct http_req *req)
{
    int limit = 20;
    int rc = api_query_limit(req, 20, LEARN_DUE_LIMIT_MAX, &limit);
    if (rc || http_has_reply(req))
        return rc;
    struct db_conn *c = NULL;
    rc = db_acquire(((struct app *)http_app(req))->db, &c);
    if (rc)
        return rc;
    json_t *items = NULL;
    rc = learn_due(c, caller(req), clock_now_ms(), limit, &items);
    db_release(c);
    if (rc)
        return rc;
    return http_reply_json(req, 200, json_pack("{s:o}", "items", items));
}

struct review_tx {
    const char *user;
    const char *node_id;
    int rating;
    int64_t duration_ms;
    int64_t now;
    struct graph_delta delta;
    struct learn_review_out out;
};

static int tx_review(struct db_conn *c, void *arg)
{
    struct review_tx *r = arg;
    graph_delta_release(&r->delta);
    graph_delta_init(&r->delta);
    int rc = learn_review(c, r->user, r->node_id, r->rating, r->duration_ms, LEARN_SRC_REVIEW,
                          r->now, &r->delta, &r->out);
    if (rc == LOCI_OK)
        rc = graph_emit(c, r->user, &r->delta, "review.recorded");
    return rc;
}

int api_review_create(struct http_req *req)
{
    json_t *body = http_json(req);
    json_t *dur = json_object_get(body, "duration_ms");
    struct review_tx r = {
        .user = caller(req),
        .node_id = json_string_value(json_object_get(body, "node_id")),
        .rating = (int)json_integer_value(json_object_get(body, "rating")),
        .duration_ms = json_is_integer(dur) ? (int64_t)json_integer_value(dur) : -1,
        .now = clock_now_ms(),
    };
    if (!r.node_id || !ids_is_uuid(r.node_id, strlen(r.node_id)))
        return http_reply_error(req, LOCI_ENOTFOUND, "node_id", NULL);
    graph_delta_init(&r.delta);
    int rc = api_tx(req, tx_review, &r);
    graph_delta_release(&r.delta);
    if (rc == LOCI_ENOTFOUND)
        return http_reply_error(req, rc, "node_id", NULL);
    if (rc == LOCI_EUNPROCESSABLE)
        return http_reply_error(req, rc, "rating", "'rating' must be 1, 2, 3 or 4");
    if (rc)
        return rc;
    return http_reply_json(req, 201, learn_review_json(r.node_id, &r.out));
}

int api_node_reviews(struct http_req *req)
{
    const char *id = http_param(req, "id");
    if (!id || !ids_is_uuid(id, strlen(id)))
        return LOCI_ENOTFOUND;
    struct db_conn *c = NULL;
    int rc = db_acquire(((struct app *)http_app(req))->db, &c);
    if (rc)
        return rc;
    json_t *items = NULL;
    rc = learn_history(c, caller(req), id, &items);
    db_release(c);
    if (rc)
        return rc;
    return http_reply_json(req, 200, json_pack("{s:s, s:o}", "node_id", id, "items", items));
}

int api_learning_get(struct http_req *req)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(((struct app *)http_app(req))->db, &c);
    if (rc)
        return rc;
    struct learn_settings s;
    rc = learn_settings_get(c, caller(req), &s);
    db_release(c);
    if (rc)
        return rc;
    return http_reply_json(req, 200, learn_settings_json(&s));
}

struct learning_tx {
    const char *user;
    const json_t *body;
    int64_t now;
    struct learn_settings s;
};

static int tx_learning(struct db_conn *c, void *arg)
{
    struct learning_tx *t = arg;
    int rc = learn_settings_get(c, t->user, &t->s);
    if (rc)
        return rc;
    json_t *v;
    if ((v = json_object_get(t->body, "desired_retention")))
        t->s.desired_retention = json_number_value(v);
    if ((v = json_object_get(t->body, "new_per_day")))
        t->s.new_per_day = (int)json_integer_value(v);
    if ((v = json_object_get(t->body, "review_mail")))
        t->s.review_mail = json_is_true(v);
    if ((v = json_object_get(t->body, "threshold")))
        t->s.threshold = json_number_value(v);
    rc = learn_settings_put(c, t->user, &t->s, t->now);
    if (rc == LOCI_OK)
        rc = api_event(c, t->user, "learning.settings_changed", learn_settings_json(&t->s));
    return rc;
}

int api_learning_patch(struct http_req *req)
{
    struct learning_tx t = {.user = caller(req), .body = http_json(req), .now = clock_now_ms()};
    json_t *r = json_object_get(t.body, "desired_retention");
    if (r && !(json_number_value(r) >= LEARN_RETENTION_MIN &&
               json_number_value(r) <= LEARN_RETENTION_MAX))
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "desired_retention",
                                "'desired_retention' must be from 0.7 to 0.99");
    int rc = api_tx(req, tx_learning, &t);
    if (rc)
        return rc;
    return http_reply_json(req, 200, learn_settings_json(&t.s));
}
