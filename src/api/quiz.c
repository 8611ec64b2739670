/*
 * quiz.c - quizzes over HTTP: create one (built by the `quiz.build` job:
 * 202, then poll GET or hear `quiz.ready` on the WebSocket), read it
 * (without keys until answered), answer its questions one at a time; and
 * the learner's stats.
 *
 * The rules (what a question is, the key check, grading, ratings) live in
 * src/learn/quiz.h; this file parses, calls, replies. Ids that are
 * malformed or belong to someone else are 404, like ids that never existed.
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "learn/quiz.h"
#include "learn/stats.h"

#include <stdio.h>
#include <string.h>

static const struct json_field quiz_fields[] = {
    {"node_ids", JF_ARRAY, false, false, 1, LEARN_QUIZ_NODE_IDS},
    {"document_id", JF_STRING, false, false, 1, 64},
    {"cluster_id", JF_STRING, false, false, 1, 128},
    {"n", JF_INTEGER, false, false, 1, LEARN_QUIZ_MAX},
    {"kinds", JF_ARRAY, false, false, 1, 3},
};
const struct json_schema api_quiz_schema = {quiz_fields, 5, false};

static const struct json_field answer_fields[] = {
    {"question_id", JF_STRING, true, false, 1, 64},
    {"answer", JF_ANY, true, false, 0, 0},
    {"duration_ms", JF_INTEGER, false, false, 0, 86400000},
};
const struct json_schema api_quiz_answer_schema = {answer_fields, 3, false};

static const char *caller(struct http_req *req)
{
    return api_principal(req)->user_id;
}

static bool is_id(const char *s)
{
    return s && ids_is_uuid(s, strlen(s));
}

struct create {
    const char *user;
    struct learn_quiz_scope scope;
    int n;
    unsigned kinds;
    char id[UUID_STR_LEN];
    const char *field;
    json_t *quiz;
};

static int tx_create(struct db_conn *c, void *arg)
{
    struct create *q = arg;
    json_decref(q->quiz);
    q->quiz = NULL;
    int rc =
        learn_quiz_create(c, q->user, &q->scope, q->n, q->kinds, clock_now_ms(), q->id, &q->field);
    if (rc == LOCI_OK)
        rc = learn_quiz_json(c, q->user, q->id, &q->quiz);
    return rc;
}

int api_quiz_create(struct http_req *req)
{
    json_t *body = http_json(req);
    const char *ids[LEARN_QUIZ_NODE_IDS];
    struct create q = {.user = caller(req), .n = 10, .kinds = LEARN_Q_ALL};
    json_t *node_ids = json_object_get(body, "node_ids");
    q.scope.document_id = json_string_value(json_object_get(body, "document_id"));
    q.scope.cluster_id = json_string_value(json_object_get(body, "cluster_id"));
    if ((node_ids != NULL) + (q.scope.document_id != NULL) + (q.scope.cluster_id != NULL) > 1)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, NULL,
                                "give at most one of 'node_ids', 'document_id', 'cluster_id'");
    size_t i;
    json_t *v;
    json_array_foreach(node_ids, i, v)
    {
        const char *id = json_string_value(v);
        if (!id)
            return http_reply_error(req, LOCI_EUNPROCESSABLE, "node_ids",
                                    "'node_ids' must be node ids");
        if (!is_id(id))
            return http_reply_error(req, LOCI_ENOTFOUND, "node_ids", NULL);
        for (size_t k = 0; k < q.scope.n_node_ids; k++)
            if (strcmp(ids[k], id) == 0)
                return http_reply_error(req, LOCI_EUNPROCESSABLE, "node_ids",
                                        "'node_ids' must not repeat a node");
        ids[q.scope.n_node_ids++] = id;
    }
    q.scope.node_ids = ids;
    if (q.scope.document_id && !is_id(q.scope.document_id))
        return http_reply_error(req, LOCI_ENOTFOUND, "document_id", NULL);
    json_t *n = json_object_get(body, "n");
    if (n)
        q.n = (int)json_integer_value(n);
    json_t *kinds = json_object_get(body, "kinds");
    if (kinds) {
        q.kinds = 0;
        json_array_foreach(kinds, i, v)
        {
            unsigned k = learn_quiz_kind_parse(json_string_value(v));
            if (!k || (q.kinds & k))
                return http_reply_error(req, LOCI_EUNPROCESSABLE, "kinds",
                                        "'kinds' must list distinct kinds of cloze, mc, "
                                        "definition");
            q.kinds |= k;
        }
    }
    int rc = api_tx(req, tx_create, &q);
    if (rc == LOCI_ENOTFOUND && q.field)
        return http_reply_error(req, rc, q.field, NULL);
    if (rc == LOCI_EUNPROCESSABLE)
        return http_reply_error(req, rc, NULL, "there is no material to ask about in this scope");
    if (rc) {
        json_decref(q.quiz);
        return rc;
    }
    struct app *app = http_app(req);
    if (app->jobs)
        jobs_wake(app->jobs);
    char location[80];
    snprintf(location, sizeof(location), "/api/v1/quizzes/%s", q.id);
    http_set_header(req, "Location", location);
    return http_reply_json(req, 202, q.quiz);
}

int api_quiz_get(struct http_req *req)
{
    const char *id = http_param(req, "id");
    if (!is_id(id))
        return LOCI_ENOTFOUND;
    struct app *app = http_app(req);
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *quiz = NULL;
    rc = learn_quiz_json(c, caller(req), id, &quiz);
    db_release(c);
    if (rc)
        return rc;
    return http_reply_json(req, 200, quiz);
}

struct answer {
    const char *user, *quiz, *question;
    const json_t *answer;
    int64_t duration_ms;
    json_t *out;
    const char *field;
};

static int tx_answer(struct db_conn *c, void *arg)
{
    struct answer *a = arg;
    json_decref(a->out);
    a->out = NULL;
    return learn_quiz_answer(c, a->user, a->quiz, a->question, a->answer, a->duration_ms,
                             clock_now_ms(), &a->out, &a->field);
}

int api_quiz_answer(struct http_req *req)
{
    json_t *body = http_json(req);
    struct answer a = {
        .user = caller(req),
        .quiz = http_param(req, "id"),
        .question = json_string_value(json_object_get(body, "question_id")),
        .answer = json_object_get(body, "answer"),
        .duration_ms = -1,
    };
    if (!is_id(a.quiz))
        return LOCI_ENOTFOUND;
    if (!is_id(a.question))
        return http_reply_error(req, LOCI_ENOTFOUND, "question_id", NULL);
    if (json_is_string(a.answer) && strlen(json_string_value(a.answer)) > LEARN_QUIZ_ANSWER_MAX)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "answer",
                                "'answer' must be at most %d bytes", LEARN_QUIZ_ANSWER_MAX);
    if (!json_is_string(a.answer) && !json_is_integer(a.answer))
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "answer",
                                "'answer' must be a string (or a choice's index)");
    json_t *d = json_object_get(body, "duration_ms");
    if (d)
        a.duration_ms = json_integer_value(d);
    int rc = api_tx(req, tx_answer, &a);
    if (rc == LOCI_ENOTFOUND && a.field)
        return http_reply_error(req, rc, a.field, NULL);
    if (rc == LOCI_ECONFLICT)
        return http_reply_error(req, rc, "question_id",
                                "the question is answered already, or the quiz is not ready");
    if (rc == LOCI_EUNPROCESSABLE)
        return http_reply_error(req, rc, "answer",
                                "'answer' must be a string; for a multiple-choice question one "
                                "of its choices or the choice's index");
    if (rc)
        return rc;
    return http_reply_json(req, 200, a.out);
}

int api_user_stats(struct http_req *req)
{
    struct app *app = http_app(req);
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *stats = NULL;
    rc = learn_stats_json(c, caller(req), clock_now_ms(), &stats);
    db_release(c);
    if (rc)
        return rc;
    return http_reply_json(req, 200, stats);
}
