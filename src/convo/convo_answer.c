/*
 * convo_answer.c - the `ask.answer` job: context, the AI gateway, and one
 * transaction that stores the answer, merges its terms into the graph and
 * appends the events.
 *
 * The model calls happen outside any transaction (they take seconds); the
 * write transaction only runs once both answers are in. A retried job whose
 * question is no longer pending does nothing, so an answer is stored once.
 */
#include "convo/convo.h"
#include "convo/convo_int.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "events/events.h"
#include "graph/graph.h"
#include "services/ai/ai.h"
#include "search/search.h"
#include "services/jobs/jobs.h"
#include "services/text/text.h"

#include <stdio.h>
#include <string.h>

#define HISTORY_TURNS 6
#define CONTEXT_NODES 8
#define DOC_PASSAGES  6
#define MAX_PASSAGES  (CONTEXT_NODES + DOC_PASSAGES)
#define MAX_TERMS     8
#define QUOTE_MAX     300

struct answerer {
    struct ai *ai;
    struct search *search; /* NULL: no document retrieval */
    convo_wake_fn wake;
    void *wake_arg;
};

/* Everything the job gathered, read in one short read. */
struct question {
    char user_id[UUID_STR_LEN];
    char id[UUID_STR_LEN];
    char conversation_id[UUID_STR_LEN];
    char focus[UUID_STR_LEN]; /* "" = none */
    char *text;
    struct ai_msg history[HISTORY_TURNS];
    char *history_text[HISTORY_TURNS];
    size_t n_history;
    struct graph_context_node *ctx;
    size_t n_ctx;
    /* what the answer may cite: the focus node's neighbourhood, then the
     * user's documents (hybrid search) */
    struct ai_passage passages[MAX_PASSAGES];
    char *passage_text[MAX_PASSAGES];
    char *passage_label[MAX_PASSAGES];
    struct source {
        bool is_document;
        char id[UUID_STR_LEN];          /* node id, or chunk id */
        char document_id[UUID_STR_LEN]; /* documents */
        int page;                       /* 0 = none */
        char *heading;                  /* may be NULL */
    } sources[MAX_PASSAGES];
    size_t n_passages;
};

static void question_release(struct question *q)
{
    xfree(q->text);
    for (size_t i = 0; i < q->n_history; i++)
        xfree(q->history_text[i]);
    for (size_t i = 0; i < q->n_passages; i++) {
        xfree(q->passage_text[i]);
        xfree(q->passage_label[i]);
        xfree(q->sources[i].heading);
    }
    graph_context_release(q->ctx, q->n_ctx);
}

/* Load the question; LOCI_ECONFLICT when it is no longer pending. */
static int load_question(struct db_conn *c, struct question *q)
{
    struct db_stmt *st;
    int rc = db_prepare(c,
                        "SELECT content, conversation_id, focus_node_id, status, created_at "
                        "FROM messages WHERE id = ? AND user_id = ? AND role = 'user'",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, q->id, (size_t)-1);
    db_bind_text(st, 2, q->user_id, (size_t)-1);
    rc = db_step(st);
    if (rc != LOCI_ROW) {
        db_stmt_done(st);
        return rc == LOCI_OK ? LOCI_ENOTFOUND : rc;
    }
    bool is_pending = strcmp(db_col_text(st, 3, NULL), "pending") == 0;
    q->text = xstrdup(db_col_text(st, 0, NULL));
    snprintf(q->conversation_id, UUID_STR_LEN, "%s", db_col_text(st, 1, NULL));
    snprintf(q->focus, UUID_STR_LEN, "%s", db_col_is_null(st, 2) ? "" : db_col_text(st, 2, NULL));
    int64_t asked_at = db_col_int64(st, 4);
    db_stmt_done(st);
    if (!is_pending)
        return LOCI_ECONFLICT;
    /* the turns before this one, oldest first */
    rc = db_prepare(c,
                    "SELECT role, content FROM messages WHERE conversation_id = ? AND user_id = ? "
                    "AND status = 'done' AND (created_at < ? OR (created_at = ? AND id < ?)) "
                    "ORDER BY created_at DESC, id DESC LIMIT ?",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, q->conversation_id, (size_t)-1);
    db_bind_text(st, 2, q->user_id, (size_t)-1);
    db_bind_int64(st, 3, asked_at);
    db_bind_int64(st, 4, asked_at);
    db_bind_text(st, 5, q->id, (size_t)-1);
    db_bind_int64(st, 6, HISTORY_TURNS);
    while ((rc = db_step(st)) == LOCI_ROW && q->n_history < HISTORY_TURNS) {
        size_t i = q->n_history++;
        q->history_text[i] = xstrdup(db_col_text(st, 1, NULL));
        q->history[i].role =
            strcmp(db_col_text(st, 0, NULL), "assistant") == 0 ? "assistant" : "user";
        q->history[i].content = q->history_text[i];
    }
    db_stmt_done(st);
    if (rc != LOCI_OK && rc != LOCI_ROW)
        return rc;
    for (size_t i = 0; i < q->n_history / 2; i++) {
        struct ai_msg t = q->history[i];
        q->history[i] = q->history[q->n_history - 1 - i];
        q->history[q->n_history - 1 - i] = t;
    }
    /* the focus and its neighbourhood become passages the answer may cite */
    if (q->focus[0]) {
        rc = graph_context(c, q->user_id, q->focus, CONTEXT_NODES, &q->ctx, &q->n_ctx);
        if (rc == LOCI_ENOTFOUND) {
            q->focus[0] = '\0'; /* deleted since: answer without it */
            rc = LOCI_OK;
        }
        for (size_t i = 0; !rc && i < q->n_ctx && q->n_passages < MAX_PASSAGES; i++) {
            if (!q->ctx[i].summary || !q->ctx[i].summary[0])
                continue;
            size_t k = q->n_passages++;
            snprintf(q->sources[k].id, UUID_STR_LEN, "%s", q->ctx[i].id);
            size_t n = strlen(q->ctx[i].term) + strlen(q->ctx[i].summary) + 8;
            q->passage_text[k] = xmalloc(n);
            snprintf(q->passage_text[k], n, "%s: %s", q->ctx[i].term, q->ctx[i].summary);
            n = strlen(q->ctx[i].term) + 32;
            q->passage_label[k] = xmalloc(n);
            snprintf(q->passage_label[k], n, "your note '%s'", q->ctx[i].term);
            q->passages[k] = (struct ai_passage){q->passage_text[k], strlen(q->passage_text[k]),
                                                 q->passage_label[k]};
        }
    }
    return rc;
}

struct token_ctx {
    const char *question_id;
};

static void on_token(void *arg, const char *p, size_t n)
{
    struct token_ctx *t = arg;
    convo__sink_emit(t->question_id, p, n);
}

/* The text key terms are taken from: the question, and the answer when it
 * says something (an offline "nothing found" line would add noise). */
static char *terms_text(const struct question *q, const struct ai_result *ans)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_append_str(&b, q->text);
    bool has_answer = ans->is_found || strcmp(ans->provider, "local") != 0;
    if (has_answer && ans->text) {
        buf_append_str(&b, "\n\n");
        /* without the [n] markers */
        for (const char *p = ans->text; *p; p++) {
            if (*p == '[') {
                const char *e = p + 1;
                while (*e >= '0' && *e <= '9')
                    e++;
                if (e > p + 1 && *e == ']') {
                    p = e;
                    continue;
                }
            }
            buf_append_char(&b, *p);
        }
    }
    return buf_detach(&b, NULL);
}

/* The part of a cited passage to show: white space collapsed, and when the
 * passage is long, QUOTE_MAX bytes from where the answer's first sentence
 * citing [n] starts in it (extractive answers quote verbatim), else from
 * the start; "…" marks a cut. */
static void quote_for(const char *passage, const char *answer, int n, struct buf *out)
{
    struct buf clean;
    buf_init(&clean, strlen(passage) + 1);
    text_clean_line(passage, strlen(passage), &clean);
    const char *p = buf_cstr(&clean);
    size_t len = clean.len, start = 0;
    char marker[16];
    snprintf(marker, sizeof(marker), "[%d]", n);
    const char *m = answer ? strstr(answer, marker) : NULL;
    if (len > QUOTE_MAX && m) {
        /* the sentence before the marker: back to the previous marker or
         * sentence end, then its first 30 bytes as the needle */
        const char *b = m;
        while (b > answer && b[-1] != ']' && !(b[-1] == '.' && b - 1 < m - 2))
            b--;
        while (*b == ' ')
            b++;
        char needle[32];
        size_t k = 0;
        while (b[k] && k < sizeof(needle) - 1 && b + k < m)
            k++;
        memcpy(needle, b, k);
        needle[k] = '\0';
        const char *at = k >= 12 ? strstr(p, needle) : NULL;
        if (at)
            start = (size_t)(at - p);
    }
    size_t end = start + QUOTE_MAX < len ? start + QUOTE_MAX : len;
    while (end < len && end > start && ((unsigned char)p[end] & 0xC0) == 0x80)
        end--;
    if (start > 0)
        buf_append_str(out, "…");
    buf_append(out, p + start, end - start);
    if (end < len)
        buf_append_str(out, "…");
    buf_release(&clean);
}

/* The server names what was cited from the passages it gave the model,
 * never from the model's text. */
static json_t *citations_json(const struct question *q, const struct ai_result *ans)
{
    json_t *a = json_array();
    for (size_t i = 0; i < ans->n_cited; i++) {
        int n = ans->cited[i];
        if (n < 1 || (size_t)n > q->n_passages)
            continue;
        const struct source *src = &q->sources[n - 1];
        struct buf quote;
        buf_init(&quote, QUOTE_MAX * 4 + 16);
        quote_for(q->passage_text[n - 1], ans->text, n, &quote);
        const char *text = buf_cstr(&quote);
        size_t qn = quote.len;
        json_t *c = json_pack("{s:i, s:s, s:s, s:s%}", "n", n, "kind",
                              src->is_document ? "document" : "node", "label",
                              q->passage_label[n - 1], "quote", text, qn);
        buf_release(&quote);
        if (src->is_document) {
            json_object_set_new(c, "document_id", json_string(src->document_id));
            json_object_set_new(c, "chunk_id", json_string(src->id));
            json_object_set_new(c, "page", src->page ? json_integer(src->page) : json_null());
            json_object_set_new(c, "heading",
                                src->heading ? json_string(src->heading) : json_null());
        } else {
            json_object_set_new(c, "node_id", json_string(src->id));
        }
        json_array_append_new(a, c);
    }
    return a;
}

/* The user's documents: the best passages for the question (hybrid search).
 * A search failure leaves them out; the answer still comes. */
static void add_document_passages(struct answerer *an, struct question *q,
                                  const struct log_ctx *log)
{
    if (!an->search)
        return;
    struct search_results res;
    int rc = search_run(an->search, q->user_id, q->text, SEARCH_HYBRID, NULL, DOC_PASSAGES, &res);
    if (rc) {
        if (rc != LOCI_EUNPROCESSABLE)
            log_warn(log, "ask %s: document search failed (%d)", q->id, rc);
        return;
    }
    for (size_t i = 0; i < res.n && q->n_passages < MAX_PASSAGES; i++) {
        const struct search_hit *h = &res.hits[i];
        size_t k = q->n_passages++;
        q->passage_text[k] = xstrdup(h->text);
        size_t n = strlen(h->filename) + (h->heading ? strlen(h->heading) : 0) + 48;
        q->passage_label[k] = xmalloc(n);
        if (h->page > 0)
            snprintf(q->passage_label[k], n, "%s, p. %d", h->filename, h->page);
        else if (h->heading)
            snprintf(q->passage_label[k], n, "%s, %s", h->filename, h->heading);
        else
            snprintf(q->passage_label[k], n, "%s", h->filename);
        struct source *src = &q->sources[k];
        src->is_document = true;
        snprintf(src->id, UUID_STR_LEN, "%s", h->chunk_id);
        snprintf(src->document_id, UUID_STR_LEN, "%s", h->document_id);
        src->page = h->page;
        src->heading = h->heading ? xstrdup(h->heading) : NULL;
        q->passages[k] = (struct ai_passage){q->passage_text[k], strlen(q->passage_text[k]),
                                             q->passage_label[k]};
    }
    search_results_release(&res);
}

struct commit {
    struct job *job;
    struct question *q;
    const struct ai_result *ans;
    const struct ai_result *terms; /* may have no terms */
    json_t *result;                /* out: answer.created data */
};

static int commit_tx(struct db_conn *c, void *arg)
{
    struct commit *cm = arg;
    struct question *q = cm->q;
    const struct ai_result *ans = cm->ans;
    int64_t now = clock_now_ms();
    char answer_id[UUID_STR_LEN];
    ids_uuid7(answer_id);
    struct graph_term gt[MAX_TERMS];
    struct graph_relation gr[MAX_TERMS * 2];
    size_t nt = 0, nr = 0;
    for (size_t i = 0; i < cm->terms->n_terms && nt < MAX_TERMS; i++)
        gt[nt++] = (struct graph_term){cm->terms->terms[i].term, cm->terms->terms[i].summary};
    for (size_t i = 0; i < cm->terms->n_relations && nr < MAX_TERMS * 2; i++)
        gr[nr++] = (struct graph_relation){cm->terms->relations[i].from, cm->terms->relations[i].to,
                                           cm->terms->relations[i].type};
    struct graph_merged merged[MAX_TERMS];
    struct graph_delta delta;
    graph_delta_init(&delta);
    json_t *terms = json_array();
    json_t *citations = citations_json(q, ans);
    int rc = graph_merge_terms(c, q->user_id, gt, nt, gr, nr, q->focus[0] ? q->focus : NULL, q->id,
                               !q->focus[0], now, &delta, merged);
    const char *main_node = NULL;
    for (size_t i = 0; !rc && i < nt; i++) {
        if (merged[i].is_skipped)
            continue;
        if (!main_node)
            main_node = merged[i].node_id;
        json_array_append_new(terms, json_pack("{s:s, s:s, s:b}", "term", gt[i].term, "node_id",
                                               merged[i].node_id, "is_new", merged[i].is_new));
    }
    char *terms_s = json_dumps(terms, JSON_COMPACT);
    char *cit_s = json_dumps(citations, JSON_COMPACT);
    int64_t pt = ans->prompt_tokens + cm->terms->prompt_tokens;
    int64_t ct = ans->completion_tokens + cm->terms->completion_tokens;
    struct db_stmt *st;
    if (!rc)
        rc = db_prepare(c,
                        "INSERT INTO messages (id, user_id, conversation_id, role, content, "
                        "status, reply_to, node_id, citations, terms, provider, model, "
                        "prompt_tokens, completion_tokens, created_at) VALUES (?, ?, ?, "
                        "'assistant', ?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        &st);
    if (!rc) {
        db_bind_text(st, 1, answer_id, (size_t)-1);
        db_bind_text(st, 2, q->user_id, (size_t)-1);
        db_bind_text(st, 3, q->conversation_id, (size_t)-1);
        db_bind_text(st, 4, ans->text, (size_t)-1);
        db_bind_text(st, 5, q->id, (size_t)-1);
        db_bind_text(st, 6, main_node, (size_t)-1);
        db_bind_text(st, 7, cit_s, (size_t)-1);
        db_bind_text(st, 8, terms_s, (size_t)-1);
        db_bind_text(st, 9, ans->provider, (size_t)-1);
        db_bind_text(st, 10, ans->model, (size_t)-1);
        db_bind_int64(st, 11, pt);
        db_bind_int64(st, 12, ct);
        db_bind_int64(st, 13, now);
        rc = db_run(st, NULL);
    }
    if (!rc)
        rc = db_prepare(c,
                        "UPDATE messages SET status = 'done', node_id = ? WHERE id = ? AND "
                        "user_id = ? AND status = 'pending'",
                        &st);
    if (!rc) {
        db_bind_text(st, 1, main_node, (size_t)-1);
        db_bind_text(st, 2, q->id, (size_t)-1);
        db_bind_text(st, 3, q->user_id, (size_t)-1);
        rc = db_run_one(st);
        if (rc == LOCI_ENOTFOUND)
            rc = LOCI_ECONFLICT; /* answered meanwhile by another attempt */
    }
    if (!rc)
        rc = convo__touch(c, q->user_id, q->conversation_id, now);
    if (!rc)
        rc = graph_emit(c, q->user_id, &delta, "answer");
    if (!rc) {
        json_decref(cm->result);
        cm->result =
            json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:s, s:s, s:{s:I, s:I}, s:b, s:s?}",
                      "question_id", q->id, "message_id", answer_id, "conversation_id",
                      q->conversation_id, "answer_markdown", ans->text, "citations", citations,
                      "extracted_terms", terms, "provider", ans->provider, "model", ans->model,
                      "usage", "prompt_tokens", (json_int_t)pt, "completion_tokens", (json_int_t)ct,
                      "is_found", ans->is_found, "focus_node_id", q->focus[0] ? q->focus : NULL);
        rc = events_append(c, q->user_id, "answer.created", cm->result, NULL);
    }
    if (!rc)
        rc = job_complete_in_tx(c, cm->job, NULL);
    xfree(terms_s);
    xfree(cit_s);
    json_decref(terms);
    json_decref(citations);
    graph_delta_release(&delta);
    return rc;
}

struct failure {
    struct job *job;
    struct question *q;
    const struct ai_failure *why;
};

static int fail_tx(struct db_conn *c, void *arg)
{
    struct failure *f = arg;
    struct db_stmt *st;
    char msg[400];
    snprintf(msg, sizeof(msg), "no AI provider could answer (%s%s%s)", f->why->reason,
             f->why->message[0] ? ": " : "", f->why->message);
    int rc = db_prepare(c,
                        "UPDATE messages SET status = 'failed', error = ? WHERE id = ? AND "
                        "user_id = ? AND status = 'pending'",
                        &st);
    if (!rc) {
        db_bind_text(st, 1, msg, (size_t)-1);
        db_bind_text(st, 2, f->q->id, (size_t)-1);
        db_bind_text(st, 3, f->q->user_id, (size_t)-1);
        rc = db_run_one(st);
    }
    if (!rc) {
        json_t *data =
            json_pack("{s:s, s:s, s:{s:s, s:s}}", "question_id", f->q->id, "conversation_id",
                      f->q->conversation_id, "error", "code", "ai_unavailable", "message", msg);
        rc = events_append(c, f->q->user_id, "answer.failed", data, NULL);
        json_decref(data);
    }
    if (!rc)
        rc = job_complete_in_tx(c, f->job, NULL);
    return rc;
}

static int answer_job(struct job *j, void *arg)
{
    struct answerer *an = arg;
    const json_t *qid = json_object_get(job_payload(j), "question_id");
    if (!json_is_string(qid) || !job_user_id(j)) {
        job_set_error(j, "payload needs question_id and the job a user");
        return LOCI_EINVAL;
    }
    struct question q = {0};
    snprintf(q.id, sizeof(q.id), "%s", json_string_value(qid));
    snprintf(q.user_id, sizeof(q.user_id), "%s", job_user_id(j));
    struct db_conn *c;
    int rc = db_acquire(job_db(j), &c);
    if (rc)
        return rc;
    rc = load_question(c, &q);
    db_release(c);
    if (rc == LOCI_OK)
        add_document_passages(an, &q, job_log(j));
    if (rc == LOCI_ECONFLICT) {
        question_release(&q);
        return LOCI_OK; /* answered already */
    }
    if (rc) {
        question_release(&q);
        return rc;
    }
    struct token_ctx tc = {q.id};
    struct ai_request req = {.op = AI_OP_ANSWER,
                             .question = q.text,
                             .msgs = q.history,
                             .n_msgs = q.n_history,
                             .passages = q.passages,
                             .n_passages = q.n_passages,
                             .cache_scope = q.user_id,
                             .on_token = on_token,
                             .token_arg = &tc,
                             .log = job_log(j)};
    struct ai_result ans, terms = {0};
    struct ai_failure why;
    rc = ai_run(an->ai, &req, &ans, &why);
    if (rc) {
        log_warn(job_log(j), "ask %s: no answer (%s: %s)", q.id, why.reason, why.message);
        struct failure f = {j, &q, &why};
        rc = db_tx(job_db(j), fail_tx, &f);
        question_release(&q);
        if (!rc && an->wake)
            an->wake(an->wake_arg);
        return rc;
    }
    char *tt = terms_text(&q, &ans);
    struct ai_request treq = {.op = AI_OP_TERMS,
                              .text = tt,
                              .text_n = strlen(tt),
                              .max_terms = MAX_TERMS,
                              .cache_scope = q.user_id,
                              .log = job_log(j)};
    if (ai_run(an->ai, &treq, &terms, &why) != LOCI_OK) {
        log_warn(job_log(j), "ask %s: no key terms (%s: %s)", q.id, why.reason, why.message);
        memset(&terms, 0, sizeof(terms));
    }
    struct commit cm = {.job = j, .q = &q, .ans = &ans, .terms = &terms};
    rc = db_tx(job_db(j), commit_tx, &cm);
    if (rc == LOCI_ECONFLICT)
        rc = LOCI_OK; /* another attempt stored it first */
    json_decref(cm.result);
    xfree(tt);
    ai_result_release(&ans);
    ai_result_release(&terms);
    question_release(&q);
    if (!rc && an->wake)
        an->wake(an->wake_arg);
    return rc;
}

static struct answerer the_answerer;

void convo_register_jobs(struct jobs *js, struct ai *ai, struct search *search, convo_wake_fn wake,
                         void *wake_arg)
{
    the_answerer = (struct answerer){ai, search, wake, wake_arg};
    jobs_register(js, "ask.answer", answer_job, &the_answerer);
}
