/*
 * convo.c - submitting questions, the token-sink registry, and reading
 * conversations and their messages.
 */
#include "convo/convo.h"
#include "convo/convo_int.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "graph/graph.h"
#include "services/jobs/jobs.h"
#include "services/text/text.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define TITLE_MAX 80

/* ---- submit ---- */

struct submit {
    const struct convo_ask *a;
    struct convo_asked *out;
    char title[TITLE_MAX * 4 + 8];
};

int convo__touch(struct db_conn *c, const char *user_id, const char *id, int64_t now)
{
    struct db_stmt *st;
    int rc =
        db_prepare(c, "UPDATE conversations SET updated_at = ? WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, now);
    db_bind_text(st, 2, id, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    return db_run_one(st);
}

static int submit_tx(struct db_conn *c, void *arg)
{
    struct submit *s = arg;
    const struct convo_ask *a = s->a;
    int64_t now = clock_now_ms();
    int rc;
    if (a->focus_node_id && (rc = graph_node_exists(c, a->user_id, a->focus_node_id)))
        return rc;
    struct db_stmt *st;
    if (a->conversation_id) {
        rc = convo__touch(c, a->user_id, a->conversation_id, now);
        if (rc)
            return rc;
        snprintf(s->out->conversation_id, UUID_STR_LEN, "%s", a->conversation_id);
    } else {
        ids_uuid7(s->out->conversation_id);
        rc = db_prepare(c,
                        "INSERT INTO conversations (id, user_id, title, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        &st);
        if (rc)
            return rc;
        db_bind_text(st, 1, s->out->conversation_id, (size_t)-1);
        db_bind_text(st, 2, a->user_id, (size_t)-1);
        db_bind_text(st, 3, s->title, (size_t)-1);
        db_bind_int64(st, 4, now);
        db_bind_int64(st, 5, now);
        if ((rc = db_run(st, NULL)))
            return rc;
    }
    rc = db_prepare(c,
                    "INSERT INTO messages (id, user_id, conversation_id, role, content, status, "
                    "focus_node_id, created_at) VALUES (?, ?, ?, 'user', ?, 'pending', ?, ?)",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, a->question_id, (size_t)-1);
    db_bind_text(st, 2, a->user_id, (size_t)-1);
    db_bind_text(st, 3, s->out->conversation_id, (size_t)-1);
    db_bind_text(st, 4, a->text, (size_t)-1);
    db_bind_text(st, 5, a->focus_node_id, (size_t)-1);
    db_bind_int64(st, 6, now);
    if ((rc = db_run(st, NULL)))
        return rc;
    json_t *payload = json_pack("{s:s}", "question_id", a->question_id);
    struct jobs_spec spec = {.type = "ask.answer",
                             .payload = payload,
                             .user_id = a->user_id,
                             .priority = a->priority,
                             .max_attempts = 3,
                             .idempotency_key = a->question_id};
    rc = jobs_enqueue(c, &spec, s->out->job_id, NULL);
    json_decref(payload);
    return rc;
}

int convo_ask_submit(struct db *db, const struct convo_ask *a, struct convo_asked *out)
{
    memset(out, 0, sizeof(*out));
    if (!a->text)
        return LOCI_EUNPROCESSABLE;
    size_t n = strlen(a->text);
    size_t chars = json_utf8_length(a->text, n);
    if (chars == 0 || chars > CONVO_TEXT_MAX)
        return LOCI_EUNPROCESSABLE;
    struct submit s = {.a = a, .out = out};
    struct buf title;
    buf_init(&title, sizeof(s.title) * 2);
    text_clean_line(a->text, n < sizeof(s.title) * 2 ? n : sizeof(s.title) * 2 - 1, &title);
    size_t tn = title.len;
    if (tn > TITLE_MAX) {
        tn = TITLE_MAX;
        while (tn > 0 && ((unsigned char)title.p[tn] & 0xC0) == 0x80)
            tn--;
    }
    snprintf(s.title, sizeof(s.title), "%.*s", (int)tn, title.len ? title.p : "");
    buf_release(&title);
    if (s.title[0] == '\0')
        return LOCI_EUNPROCESSABLE; /* nothing but white space or controls */
    return db_tx(db, submit_tx, &s);
}

/* ---- sinks ---- */

struct sink {
    char question_id[UUID_STR_LEN];
    convo_sink_fn fn;
    void *arg;
    struct sink *next;
};

static pthread_mutex_t sinks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sink *sinks;

void convo_sink_add(const char *question_id, convo_sink_fn fn, void *arg)
{
    struct sink *s = xcalloc(1, sizeof(*s));
    snprintf(s->question_id, sizeof(s->question_id), "%s", question_id);
    s->fn = fn;
    s->arg = arg;
    pthread_mutex_lock(&sinks_mu);
    s->next = sinks;
    sinks = s;
    pthread_mutex_unlock(&sinks_mu);
}

void convo_sink_remove(const char *question_id)
{
    pthread_mutex_lock(&sinks_mu);
    for (struct sink **pp = &sinks; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->question_id, question_id) == 0) {
            struct sink *s = *pp;
            *pp = s->next;
            xfree(s);
            break;
        }
    }
    pthread_mutex_unlock(&sinks_mu);
}

/* The sink runs under the registry lock, so removal waits for a running
 * call. */
void convo__sink_emit(const char *question_id, const char *p, size_t n)
{
    pthread_mutex_lock(&sinks_mu);
    for (struct sink *s = sinks; s; s = s->next) {
        if (strcmp(s->question_id, question_id) == 0) {
            s->fn(s->arg, p, n);
            break;
        }
    }
    pthread_mutex_unlock(&sinks_mu);
}

/* ---- reading ---- */

/* "<ms>_<uuid>" cursors: opaque to clients, checked here. */
static int parse_cursor(const char *cursor, int64_t *ms, char id[UUID_STR_LEN])
{
    const char *us = cursor ? strchr(cursor, '_') : NULL;
    long long v;
    if (!us || parse_int64_n(cursor, (size_t)(us - cursor), 0, (1LL << 62), &v) ||
        strlen(us + 1) != UUID_STR_LEN - 1)
        return LOCI_EUNPROCESSABLE;
    *ms = v;
    snprintf(id, UUID_STR_LEN, "%s", us + 1);
    return LOCI_OK;
}

static json_t *make_cursor(int64_t ms, const char *id)
{
    char c[64];
    snprintf(c, sizeof(c), "%lld_%s", (long long)ms, id);
    return json_string(c);
}

int convo_list(struct db_conn *c, const char *user_id, const char *cursor, int limit, json_t **out)
{
    int64_t cms = INT64_MAX;
    char cid[UUID_STR_LEN] = "~";
    if (cursor && parse_cursor(cursor, &cms, cid))
        return LOCI_EUNPROCESSABLE;
    struct db_stmt *st;
    int rc = db_prepare(c,
                        "SELECT id, title, created_at, updated_at FROM conversations "
                        "WHERE user_id = ? AND (updated_at < ? OR (updated_at = ? AND id < ?)) "
                        "ORDER BY updated_at DESC, id DESC LIMIT ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_int64(st, 2, cms);
    db_bind_int64(st, 3, cms);
    db_bind_text(st, 4, cid, (size_t)-1);
    db_bind_int64(st, 5, limit + 1);
    json_t *items = json_array();
    json_t *next = json_null();
    while ((rc = db_step(st)) == LOCI_ROW) {
        if ((int)json_array_size(items) == limit) {
            json_t *last = json_array_get(items, json_array_size(items) - 1);
            json_decref(next);
            next = make_cursor(json_integer_value(json_object_get(last, "updated_at")),
                               json_string_value(json_object_get(last, "id")));
            break;
        }
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:I, s:I}", "id", db_col_text(st, 0, NULL),
                                        "title", db_col_text(st, 1, NULL), "created_at",
                                        (json_int_t)db_col_int64(st, 2), "updated_at",
                                        (json_int_t)db_col_int64(st, 3)));
    }
    db_stmt_done(st);
    if (rc != LOCI_OK && rc != LOCI_ROW) {
        json_decref(items);
        json_decref(next);
        return rc;
    }
    *out = json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
    return LOCI_OK;
}

static json_t *parsed_or_empty(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    return v ? v : json_array();
}

static json_t *nullable(struct db_stmt *st, int col)
{
    return db_col_is_null(st, col) ? json_null() : json_string(db_col_text(st, col, NULL));
}

int convo_messages(struct db_conn *c, const char *user_id, const char *conversation_id,
                   const char *cursor, int limit, json_t **out)
{
    int64_t cms = -1;
    char cid[UUID_STR_LEN] = "";
    if (cursor && parse_cursor(cursor, &cms, cid))
        return LOCI_EUNPROCESSABLE;
    struct db_stmt *st;
    int rc = db_prepare(c, "SELECT 1 FROM conversations WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, conversation_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    db_stmt_done(st);
    if (rc != LOCI_ROW)
        return rc == LOCI_OK ? LOCI_ENOTFOUND : rc;
    rc = db_prepare(c,
                    "SELECT id, role, content, status, error, reply_to, focus_node_id, node_id, "
                    "citations, terms, provider, model, prompt_tokens, completion_tokens, "
                    "created_at FROM messages WHERE conversation_id = ? AND user_id = ? "
                    "AND (created_at > ? OR (created_at = ? AND id > ?)) "
                    "ORDER BY created_at, id LIMIT ?",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, conversation_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_int64(st, 3, cms);
    db_bind_int64(st, 4, cms);
    db_bind_text(st, 5, cid, (size_t)-1);
    db_bind_int64(st, 6, limit + 1);
    json_t *items = json_array();
    json_t *next = json_null();
    while ((rc = db_step(st)) == LOCI_ROW) {
        if ((int)json_array_size(items) == limit) {
            json_t *last = json_array_get(items, json_array_size(items) - 1);
            json_decref(next);
            next = make_cursor(json_integer_value(json_object_get(last, "created_at")),
                               json_string_value(json_object_get(last, "id")));
            break;
        }
        json_t *m = json_pack(
            "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:I, s:I}, s:I}", "id",
            db_col_text(st, 0, NULL), "role", db_col_text(st, 1, NULL), "content",
            db_col_text(st, 2, NULL), "status", db_col_text(st, 3, NULL), "error", nullable(st, 4),
            "reply_to", nullable(st, 5), "focus_node_id", nullable(st, 6), "node_id",
            nullable(st, 7), "citations", parsed_or_empty(db_col_text(st, 8, NULL)),
            "extracted_terms", parsed_or_empty(db_col_text(st, 9, NULL)), "provider",
            nullable(st, 10), "model", nullable(st, 11), "usage", "prompt_tokens",
            (json_int_t)db_col_int64(st, 12), "completion_tokens", (json_int_t)db_col_int64(st, 13),
            "created_at", (json_int_t)db_col_int64(st, 14));
        json_array_append_new(items, m);
    }
    db_stmt_done(st);
    if (rc != LOCI_OK && rc != LOCI_ROW) {
        json_decref(items);
        json_decref(next);
        return rc;
    }
    *out = json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
    return LOCI_OK;
}
