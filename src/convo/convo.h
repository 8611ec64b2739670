/*
 * convo.h - conversations and the ask pipeline.
 *
 * A question is stored and its answer job enqueued in one transaction
 * (convo_ask_submit). The job (`ask.answer`) builds the context (the focus
 * node and its strongest neighbours, earlier turns), asks the AI gateway
 * for the answer and for key terms, and in one transaction stores the
 * answer with its citations, merges the terms into the graph and appends
 * `graph.updated` and `answer.created` (or, when no provider could answer,
 * marks the question failed and appends `answer.failed`: the question is
 * kept, the graph untouched).
 *
 * `answer.created` data is the whole result, as POST /api/v1/ask returns it:
 *   {question_id, message_id, conversation_id, answer_markdown, citations,
 *    extracted_terms:[{term, node_id, is_new}], provider, model, usage}
 * `answer.failed`: {question_id, conversation_id, error:{code, message}}.
 *
 * Streaming: tokens of an answer being generated reach a sink registered for
 * the question id in this process (convo_sink_add), on the job's thread.
 *
 * Threads: any. The sink registry is process-wide, behind one mutex.
 */
#ifndef LOCI_CONVO_H
#define LOCI_CONVO_H

#include "core/ids.h"
#include "store/db.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct ai;
struct jobs;

#define CONVO_TEXT_MAX 8000 /* characters (code points) of a question */

struct convo_ask {
    const char *user_id;
    const char *text;            /* 1..CONVO_TEXT_MAX characters */
    const char *focus_node_id;   /* NULL = a new root question */
    const char *conversation_id; /* NULL = start a conversation */
    const char *question_id;     /* chosen by the caller (UUIDv7) so it can
                                    listen for the answer before submitting */
    int priority;                /* of the answer job */
};

struct convo_asked {
    char conversation_id[UUID_STR_LEN];
    char job_id[UUID_STR_LEN];
};

/* Store the question and enqueue its answer in one transaction.
 * LOCI_ENOTFOUND when the focus node or conversation is not the user's;
 * LOCI_EUNPROCESSABLE for empty or too long text. */
int convo_ask_submit(struct db *db, const struct convo_ask *a, struct convo_asked *out);

/* Register the `ask.answer` job. search (may be NULL) finds the passages of
 * the user's documents an answer may cite. wake (may be NULL) is called
 * after each answer commits (the bus, so waiting requests hear of it at
 * once). */
typedef void (*convo_wake_fn)(void *arg);
struct search;
void convo_register_jobs(struct jobs *js, struct ai *ai, struct search *search, convo_wake_fn wake,
                         void *wake_arg);

/* ---- token sinks (streaming in this process) ---- */
/* fn(arg, text, n) per piece; fn(arg, NULL, 0) = discard what came so far. */
typedef void (*convo_sink_fn)(void *arg, const char *p, size_t n);
void convo_sink_add(const char *question_id, convo_sink_fn fn, void *arg);
/* After this returns, fn is not running and will not be called again. */
void convo_sink_remove(const char *question_id);

/* ---- reading ---- */
/* The user's conversations, most recently active first, keyset paginated:
 * {"items":[{id, title, created_at, updated_at}], "next_cursor"}. A bad
 * cursor is LOCI_EUNPROCESSABLE. */
int convo_list(struct db_conn *c, const char *user_id, const char *cursor, int limit, json_t **out);
/* A conversation's messages, oldest first, after cursor:
 * {"items":[message], "next_cursor"}. LOCI_ENOTFOUND when not the user's. */
int convo_messages(struct db_conn *c, const char *user_id, const char *conversation_id,
                   const char *cursor, int limit, json_t **out);

#endif
