/*
 * ask.c - POST /api/v1/ask and the conversation routes.
 *
 * Three modes:
 *   wait   (default) the connection is suspended (http_defer) until the
 *          answer's `answer.created` / `answer.failed` event reaches this
 *          process through the bus, then answered; no HTTP thread waits.
 *          After ask_wait_timeout_ms it is answered 202 (still pending).
 *   async  202 at once with the ids; the result arrives over the WebSocket.
 *   stream Server-Sent Events: `accepted`, `token`... (`reset` when a
 *          provider failed midway and the next starts over), then one
 *          `answer` (or `error`) event with the whole result.
 * Waiters are registered under the question id before the question is
 * submitted, so an answer can never arrive unheard.
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "convo/convo.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/log.h"
#include "services/bus/bus.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define STREAM_BUFFER (1u << 20) /* bytes a slow SSE client may fall behind */

static const struct json_field ask_fields[] = {
    {"text", JF_STRING, true, false, 1, CONVO_TEXT_MAX},
    {"focus_node_id", JF_STRING, false, true, 1, 64},
    {"conversation_id", JF_STRING, false, true, 1, 64},
    {"mode", JF_STRING, false, false, 4, 6},
};
const struct json_schema api_ask_schema = {ask_fields, 4, false};

/* ---- waiters -------------------------------------------------------- */

enum waiter_kind { W_DEFERRED, W_STREAM };

struct waiter {
    char question_id[UUID_STR_LEN];
    char conversation_id[UUID_STR_LEN];
    char job_id[UUID_STR_LEN];
    enum waiter_kind kind;
    struct http_req *req;   /* W_DEFERRED */
    struct http_stream *st; /* W_STREAM */
    int64_t deadline_ms;    /* W_DEFERRED: answer 202 after this */
    struct waiter *next;
};

struct ask_hub {
    pthread_mutex_t mu; /* guards list, is_stopping */
    pthread_cond_t cv;
    struct waiter *list;
    bool is_stopping;
    pthread_t sweeper;
    int64_t wait_timeout_ms;
};

static void sse(struct http_stream *st, const char *event, json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (!text)
        return;
    struct buf b;
    buf_init(&b, strlen(text) + 64);
    buf_printf(&b, "event: %s\ndata: %s\n\n", event, text);
    http_stream_write(st, b.p, b.len);
    buf_release(&b);
    xfree(text);
}

/* The stream's token sink, on the answer job's thread. */
static void stream_token(void *arg, const char *p, size_t n)
{
    struct http_stream *st = arg;
    if (!p)
        sse(st, "reset", json_object());
    else
        sse(st, "token", json_pack("{s:s%}", "text", p, n));
}

static json_t *pending_body(const struct waiter *w)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "status", "pending", "question_id", w->question_id,
                     "conversation_id", w->conversation_id, "job_id", w->job_id);
}

/* Finish a waiter taken off the list: data is the event's JSON (NULL on
 * timeout or shutdown). */
static void finish(struct waiter *w, const char *type, json_t *data)
{
    bool is_ok = type && strcmp(type, "answer.created") == 0;
    if (w->kind == W_DEFERRED) {
        if (http_deferred_claim(w->req)) {
            if (!type) {
                http_reply_json(w->req, 202, pending_body(w));
            } else if (is_ok) {
                http_reply_json(w->req, 200, json_incref(data));
            } else {
                json_t *e = json_object_get(data, "error");
                http_reply_error_status(w->req, 503, "ai_unavailable", NULL,
                                        json_string_value(json_object_get(e, "message")));
            }
        }
        http_deferred_done(w->req);
    } else {
        convo_sink_remove(w->question_id);
        if (is_ok)
            sse(w->st, "answer", json_incref(data));
        else if (type)
            sse(w->st, "error", json_incref(json_object_get(data, "error")));
        else
            sse(w->st, "error",
                json_pack("{s:s, s:s}", "code", "unavailable", "message",
                          "the server is shutting down"));
        http_stream_close(w->st);
    }
    xfree(w);
}

static struct waiter *take(struct ask_hub *h, const char *question_id)
{
    for (struct waiter **pp = &h->list; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->question_id, question_id) == 0) {
            struct waiter *w = *pp;
            *pp = w->next;
            return w;
        }
    }
    return NULL;
}

/* Bus subscriber: answers reach their waiters (never blocks: replies are
 * queued to MHD, SSE writes to a bounded buffer). */
static void on_event(const struct event_view *ev, void *arg)
{
    struct ask_hub *h = arg;
    if (strcmp(ev->type, "answer.created") != 0 && strcmp(ev->type, "answer.failed") != 0)
        return;
    json_t *data = json_loadb(ev->data, ev->data_len, 0, NULL);
    const char *qid = json_string_value(json_object_get(data, "question_id"));
    struct waiter *w = NULL;
    if (qid) {
        pthread_mutex_lock(&h->mu);
        w = take(h, qid);
        pthread_mutex_unlock(&h->mu);
    }
    if (w)
        finish(w, ev->type, data);
    json_decref(data);
}

static void *sweep_main(void *arg)
{
    struct ask_hub *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->is_stopping) {
        int64_t now = clock_now_ms();
        struct waiter *due = NULL;
        for (struct waiter **pp = &h->list; *pp;) {
            struct waiter *w = *pp;
            if (w->kind == W_DEFERRED && w->deadline_ms <= now) {
                *pp = w->next;
                w->next = due;
                due = w;
            } else {
                pp = &w->next;
            }
        }
        pthread_mutex_unlock(&h->mu);
        while (due) {
            struct waiter *w = due;
            due = w->next;
            finish(w, NULL, NULL);
        }
        pthread_mutex_lock(&h->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!h->is_stopping)
            pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

struct ask_hub *api_ask_hub_new(const struct config *cfg)
{
    struct ask_hub *h = xcalloc(1, sizeof(*h));
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->wait_timeout_ms = cfg->ask_wait_timeout_ms;
    pthread_create(&h->sweeper, NULL, sweep_main, h);
    return h;
}

void api_ask_hub_subscribe(struct ask_hub *h, struct bus *bus)
{
    bus_subscribe(bus, on_event, h);
}

void api_ask_hub_drain(struct ask_hub *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->is_stopping = true;
    struct waiter *all = h->list;
    h->list = NULL;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    while (all) {
        struct waiter *w = all;
        all = w->next;
        finish(w, NULL, NULL);
    }
}

void api_ask_hub_free(struct ask_hub *h)
{
    if (!h)
        return;
    api_ask_hub_drain(h);
    pthread_join(h->sweeper, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    xfree(h);
}

static bool add_waiter(struct ask_hub *h, struct waiter *w)
{
    pthread_mutex_lock(&h->mu);
    bool ok = !h->is_stopping;
    if (ok) {
        w->next = h->list;
        h->list = w;
    }
    pthread_mutex_unlock(&h->mu);
    return ok;
}

/* ---- POST /api/v1/ask ----------------------------------------------- */

static const char *opt_string(json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int api_ask(struct http_req *req)
{
    struct app *app = http_app(req);
    json_t *body = http_json(req);
    const char *mode = opt_string(body, "mode");
    if (!mode)
        mode = "wait";
    if (strcmp(mode, "wait") && strcmp(mode, "async") && strcmp(mode, "stream"))
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "mode",
                                "'mode' must be wait, async or stream");
    char qid[UUID_STR_LEN];
    ids_uuid7(qid);
    struct convo_ask a = {
        .user_id = api_principal(req)->user_id,
        .text = opt_string(body, "text"),
        .focus_node_id = opt_string(body, "focus_node_id"),
        .conversation_id = opt_string(body, "conversation_id"),
        .question_id = qid,
        .priority = strcmp(mode, "async") == 0 ? 5 : 10,
    };
    struct convo_asked asked;
    if (strcmp(mode, "async") == 0) {
        int rc = convo_ask_submit(app->db, &a, &asked);
        if (rc == LOCI_EUNPROCESSABLE)
            return http_reply_error(req, rc, "text", "'text' must have 1 to %d characters",
                                    CONVO_TEXT_MAX);
        if (rc)
            return rc; /* another user's focus node or conversation: 404 */
        jobs_wake(app->jobs);
        return http_reply_json(req, 202,
                               json_pack("{s:s, s:s, s:s, s:s}", "status", "pending", "question_id",
                                         qid, "conversation_id", asked.conversation_id, "job_id",
                                         asked.job_id));
    }
    struct waiter *w = xcalloc(1, sizeof(*w));
    snprintf(w->question_id, sizeof(w->question_id), "%s", qid);
    w->deadline_ms = clock_now_ms() + app->ask->wait_timeout_ms;
    if (strcmp(mode, "wait") == 0) {
        w->kind = W_DEFERRED;
        w->req = req;
        int rc = http_defer(req);
        if (rc) {
            xfree(w);
            return rc;
        }
    } else {
        w->kind = W_STREAM;
        w->st = http_stream_open(req, 200, "text/event-stream", STREAM_BUFFER);
        if (!w->st) {
            xfree(w);
            return LOCI_EUNAVAILABLE;
        }
        convo_sink_add(qid, stream_token, w->st);
    }
    if (!add_waiter(app->ask, w)) {
        finish(w, NULL, NULL);
        return LOCI_OK;
    }
    int rc = convo_ask_submit(app->db, &a, &asked);
    pthread_mutex_lock(&app->ask->mu);
    /* Still listed means not finished: the answer cannot have arrived yet
     * (finish() only runs after take() under this lock). */
    struct waiter *mine = NULL;
    for (struct waiter *x = app->ask->list; x; x = x->next)
        if (x == w)
            mine = w;
    if (mine && rc) {
        take(app->ask, qid);
    } else if (mine) {
        snprintf(w->conversation_id, sizeof(w->conversation_id), "%s", asked.conversation_id);
        snprintf(w->job_id, sizeof(w->job_id), "%s", asked.job_id);
        if (w->kind == W_STREAM)
            sse(w->st, "accepted",
                json_pack("{s:s, s:s, s:s}", "question_id", qid, "conversation_id",
                          asked.conversation_id, "job_id", asked.job_id));
    }
    pthread_mutex_unlock(&app->ask->mu);
    if (!rc) {
        jobs_wake(app->jobs);
        return LOCI_OK;
    }
    if (!mine)
        return LOCI_OK; /* shutdown took it and answered */
    if (mine->kind == W_DEFERRED) {
        if (http_deferred_claim(req)) {
            if (rc == LOCI_EUNPROCESSABLE)
                http_reply_error(req, rc, "text", "'text' must have 1 to %d characters",
                                 CONVO_TEXT_MAX);
            else
                http_reply_error(req, rc, NULL, NULL);
        }
        http_deferred_done(req);
    } else {
        convo_sink_remove(qid);
        sse(mine->st, "error",
            json_pack("{s:s, s:s}", "code", loci_err_code(rc), "message",
                      rc == LOCI_ENOTFOUND ? "no such focus node or conversation"
                                           : loci_err_message(rc)));
        http_stream_close(mine->st);
    }
    xfree(mine);
    return LOCI_OK;
}

/* ---- conversations ------------------------------------------------- */

int api_conversations(struct http_req *req)
{
    struct app *app = http_app(req);
    int limit = 20;
    int rc = api_query_limit(req, 20, 100, &limit);
    if (rc || http_has_reply(req))
        return rc;
    struct db_conn *c;
    if ((rc = db_acquire(app->db, &c)))
        return rc;
    json_t *out = NULL;
    rc = convo_list(c, api_principal(req)->user_id, http_query(req, "cursor"), limit, &out);
    db_release(c);
    if (rc == LOCI_EUNPROCESSABLE)
        return http_reply_error(req, rc, "cursor", "'cursor' is not one this server gave");
    return rc ? rc : http_reply_json(req, 200, out);
}

int api_conversation_messages(struct http_req *req)
{
    struct app *app = http_app(req);
    int limit = 50;
    int rc = api_query_limit(req, 50, 200, &limit);
    if (rc || http_has_reply(req))
        return rc;
    struct db_conn *c;
    if ((rc = db_acquire(app->db, &c)))
        return rc;
    json_t *out = NULL;
    rc = convo_messages(c, api_principal(req)->user_id, http_param(req, "id"),
                        http_query(req, "cursor"), limit, &out);
    db_release(c);
    if (rc == LOCI_EUNPROCESSABLE)
        return http_reply_error(req, rc, "cursor", "'cursor' is not one this server gave");
    return rc ? rc : http_reply_json(req, 200, out);
}
