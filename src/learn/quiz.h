/*
 * quiz.h - quizzes built from the learner's own material, weakest nodes
 * first, with answer keys checked against their source before they are
 * shown, graded answers fed to spaced repetition as reviews.
 *
 * Kinds:
 *   cloze       a sentence from the learner's documents (or, failing that,
 *               the node's summary) holding the term, the term blanked;
 *               the key is the term as the sentence writes it.
 *   mc          the same blanked sentence with four choices: the key and
 *               three distractors the model wrote (AI_OP_CHAT, a JSON reply
 *               validated here) or, offline or when the reply is unusable,
 *               the terms of other nodes of the same cluster, then of graph
 *               neighbours, then of the learner's other nodes.
 *   definition  the term asked for, the node's summary the key.
 *
 * The check (learn_quiz_key_supported): a key is supported by its source
 * passage when every content word of the key (a word token that is not a
 * stop word), stemmed as text_segment stems it, occurs among the stems of
 * the passage's words. A question whose key fails is dropped, never
 * repaired.
 *
 * Grading:
 *   cloze       the answer's term key (text_term_key: NFKC, case-folded,
 *               stemmed) equals the key's.
 *   mc          the answer names the key among the choices (the choice's
 *               text, or its 0-based index).
 *   definition  the answer holds at least half of the key's distinct
 *               content-word stems, or at least 4 of them.
 * Rating fed to FSRS: wrong 1 (Again); right 3 (Good); right within
 * LEARN_QUIZ_FAST_MS (cloze, mc) or LEARN_QUIZ_FAST_DEF_MS (definition)
 * by the client's duration_ms 4 (Easy). Without duration_ms a right
 * answer is 3.
 *
 * Not here: HTTP (api/quiz.c), the scheduler itself (fsrs.h).
 * Threads: any; a connection belongs to its thread. learn_quiz_build calls
 * the model: jobs only.
 */
#ifndef LOCI_LEARN_QUIZ_H
#define LOCI_LEARN_QUIZ_H

#include "core/ids.h"
#include "core/log.h"
#include "store/db.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEARN_QUIZ_MAX         50    /* questions in a quiz */
#define LEARN_QUIZ_NODE_IDS    50    /* node_ids a quiz may name */
#define LEARN_QUIZ_ANSWER_MAX  2000  /* bytes of an answer */
#define LEARN_QUIZ_FAST_MS     10000 /* a right cloze/mc answer this fast is Easy */
#define LEARN_QUIZ_FAST_DEF_MS 30000 /* a right definition this fast is Easy */

enum learn_quiz_kind {
    LEARN_Q_CLOZE = 1,
    LEARN_Q_MC = 2,
    LEARN_Q_DEFINITION = 4,
};
#define LEARN_Q_ALL (LEARN_Q_CLOZE | LEARN_Q_MC | LEARN_Q_DEFINITION)

/* "cloze", "mc", "definition" -> the kind, 0 for anything else. */
unsigned learn_quiz_kind_parse(const char *name);

/* What a quiz is drawn from: at most one of node_ids, document_id,
 * cluster_id (none: all the learner's nodes). */
struct learn_quiz_scope {
    const char *const *node_ids; /* n_node_ids of them, or NULL */
    size_t n_node_ids;
    const char *document_id; /* or NULL */
    const char *cluster_id;  /* or NULL */
};

/* Record a new quiz (status "building") and enqueue its `quiz.build` job,
 * in the caller's transaction. n 1..LEARN_QUIZ_MAX, kinds a non-empty set
 * of enum learn_quiz_kind (else LOCI_EINVAL). A node, document or cluster
 * that is not the user's: LOCI_ENOTFOUND with *out_field naming it
 * ("node_ids", "document_id", "cluster_id"). A scope without any node:
 * LOCI_EUNPROCESSABLE. */
int learn_quiz_create(struct db_conn *c, const char *user_id, const struct learn_quiz_scope *scope,
                      int n, unsigned kinds, int64_t now, char out_id[UUID_STR_LEN],
                      const char **out_field);

struct ai;
/* Build quiz_id's questions (a job's work): candidate nodes weakest first
 * (lowest familiarity, which is the card's retrievability once FSRS keeps
 * it), one question per node in turn over the kinds asked for, each key
 * checked, then status "ready" (or "failed" when no question survived)
 * and a `quiz.ready` / `quiz.failed` event. A quiz no longer building is
 * left alone (LOCI_OK). ai may be NULL (offline distractors only). */
int learn_quiz_build(struct db *db, struct ai *ai, const char *user_id, const char *quiz_id,
                     const struct log_ctx *log);

/* The quiz as JSON: {id, status, error, n, kinds, scope, created_at,
 * answered, correct, questions:[{id, position, kind, node_id, prompt,
 * choices?, result}]}; result is null until answered, then {answer,
 * is_correct, rating, answer_key, explanation, source_passage,
 * source_ref, answered_at}. Keys and sources are never shown before the
 * answer. Another user's quiz: LOCI_ENOTFOUND. */
int learn_quiz_json(struct db_conn *c, const char *user_id, const char *quiz_id, json_t **out);

/* Grade an answer (a string; for mc also the 0-based choice index as an
 * integer) to one question of the user's quiz, in the caller's
 * transaction: store it, feed the rating to spaced repetition, append a
 * `quiz.answered` event. duration_ms < 0: not given. Returns the result
 * object with {question_id, ..., quiz: {answered, correct, n}}. Unknown
 * quiz or question: LOCI_ENOTFOUND (*out_field "question_id" for the
 * question); already answered: LOCI_ECONFLICT; a quiz not ready:
 * LOCI_ECONFLICT; an answer of the wrong type or an mc answer that is no
 * choice: LOCI_EUNPROCESSABLE (field "answer"). */
int learn_quiz_answer(struct db_conn *c, const char *user_id, const char *quiz_id,
                      const char *question_id, const json_t *answer, int64_t duration_ms,
                      int64_t now, json_t **out, const char **out_field);

/* The check above: true when key is supported by passage. */
bool learn_quiz_key_supported(const char *key, const char *passage);

/* A question as built, before it is stored. */
struct learn_question {
    enum learn_quiz_kind kind;
    char node_id[UUID_STR_LEN];
    char *term;
    char *prompt;
    json_t *choices; /* mc: array of strings; else NULL */
    char *answer_key;
    char *source_passage;
    json_t
        *source_ref; /* {"type":"chunk","document_id","chunk_id"} | {"type":"summary","node_id"} */
};
void learn_question_release(struct learn_question *q);

/* Drop (and release) every question whose key fails the check, keeping
 * the others in order; returns how many are kept. */
size_t learn_quiz_keep_checked(struct learn_question *qs, size_t n);

struct jobs;
/* Register the `quiz.build` job. ai may be NULL; it must outlive the
 * workers. */
void learn_quiz_register_jobs(struct jobs *js, struct ai *ai);

#endif
