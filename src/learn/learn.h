/*
 * learn.h - spaced repetition over the knowledge graph: one FSRS card per
 * studied node (src/learn/fsrs.h), the review log, each learner's learning
 * settings, the due queue, and the scheduled work that keeps familiarity
 * equal to what FSRS predicts (daily decay, hourly review digest by mail).
 *
 * Familiarity rule: a node with a card has familiarity = the card's current
 * retrievability (ts-fsrs's get_retrievability: whole days since the last
 * review). A review writes it at once and records the node in the caller's
 * graph delta, so the `graph.updated` event recolours the graph live. The
 * one exception is a self-rating (a manual familiarity): the learner's value
 * is kept until the next decay run.
 *
 * Every function takes the caller's user id and touches only that user's
 * rows; another user's node is LOCI_ENOTFOUND, as is a node that does not
 * exist. Functions taking a struct db_conn run on the caller's connection
 * (inside its transaction when it has one). Not here: quizzes, clustering,
 * stats (src/learn/cluster.h and friends).
 */
#ifndef LOCI_LEARN_LEARN_H
#define LOCI_LEARN_LEARN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ids.h"
#include "learn/fsrs.h"

struct db;
struct db_conn;
struct graph_delta;
struct jobs;

/* Limits of the settings (422 outside them). */
#define LEARN_RETENTION_MIN   0.7
#define LEARN_RETENTION_MAX   0.99
#define LEARN_NEW_PER_DAY_MAX 1000
#define LEARN_DUE_LIMIT_MAX   200

struct learn_settings {
    double desired_retention; /* 0.7..0.99, default 0.9 */
    int new_per_day;          /* new nodes offered per UTC day, 0..1000, default 20 */
    bool review_mail;         /* opted in to the review digest (default off) */
    double threshold;         /* digest counts nodes with retrievability below it, default 0.8 */
    int64_t last_digest_at;   /* UTC ms of the last digest mail, 0 = never */
};

/* The user's settings, defaults when they never changed any. */
int learn_settings_get(struct db_conn *c, const char *user_id, struct learn_settings *out);
/* Store s (validated here: LOCI_EUNPROCESSABLE when out of range). */
int learn_settings_put(struct db_conn *c, const char *user_id, const struct learn_settings *s,
                       int64_t now);
/* {"desired_retention","new_per_day","review_mail","threshold","last_digest_at"}; new
 * reference. */
json_t *learn_settings_json(const struct learn_settings *s);

/* Where a review came from (stored in the log). */
enum learn_source { LEARN_SRC_REVIEW, LEARN_SRC_SELF, LEARN_SRC_QUIZ };

struct learn_review_out {
    char id[UUID_STR_LEN]; /* the review's id */
    struct fsrs_card before;
    struct fsrs_card after;
    double retrievability; /* after the review, at now */
    double familiarity;    /* what the node's familiarity is now */
};

/* Rate node_id (1..4) at now: update or create its card by FSRS at the
 * user's desired retention, append the review to the log and a
 * `review.recorded` event, set the node's familiarity (unless source is
 * LEARN_SRC_SELF) and add the node to delta (may be NULL). duration_ms < 0:
 * not given. The caller runs this in a transaction and emits delta.
 * Returns 0, LOCI_EUNPROCESSABLE (rating), LOCI_ENOTFOUND (node). */
int learn_review(struct db_conn *c, const char *user_id, const char *node_id, int rating,
                 int64_t duration_ms, enum learn_source source, int64_t now,
                 struct graph_delta *delta, struct learn_review_out *out);

/* The rating a manual familiarity value stands for: < 0.25 Again, < 0.5
 * Hard, < 0.85 Good, else Easy. */
int learn_rating_for_familiarity(double value);

/* The due queue at now, at most limit (1..LEARN_DUE_LIMIT_MAX) items: cards
 * due by now (earliest first), then nodes never studied (oldest first), no
 * more of those than new_per_day minus the new nodes already studied this
 * UTC day. Items: {node_id, term, summary, state, due, stability,
 * difficulty, retrievability, reps, lapses, intervals: {"1".."4": ms from now
 * to the due time each rating would give}}. *out is a new array. */
int learn_due(struct db_conn *c, const char *user_id, int64_t now, int limit, json_t **out);

/* A node's review log, oldest first, as a new array; LOCI_ENOTFOUND when
 * the node is not the user's. */
int learn_history(struct db_conn *c, const char *user_id, const char *node_id, json_t **out);

/* The card JSON of a review result (after state, next due...); new
 * reference. */
json_t *learn_review_json(const char *node_id, const struct learn_review_out *r);

/* ---- scheduled work (learn_jobs.c) ---- */

struct config;

/* Register `learn.decay_familiarity` (schedule decay_familiarity, daily
 * 03:00 UTC) and `learn.review_digest` (schedule review_digest, hourly).
 * cfg (SMTP settings, mail_from, public_url; smtp_url "" = no digests are
 * sent) is borrowed and must outlive the pool. */
int learn_register_jobs(struct jobs *js, const struct config *cfg, char *err, size_t err_n);

/* One digest pass at now: for each user who opted in and was not mailed in
 * the last 24 h, count nodes whose retrievability is below their threshold
 * and, when there are any, mail the count and ${public_url}/review; a
 * `review.digest_sent` event records it. send (NULL = no mail is sent, the
 * pass only counts) returns 0 when the mail went out; a user whose mail
 * failed is tried again by the next pass. *out_sent, *out_failed (may be
 * NULL): mails sent and failed. Returns a store error, else 0. */
typedef int (*learn_send_fn)(void *arg, const char *to, const char *subject, const char *body,
                             char *err, size_t err_n);
int learn_digest_all(struct db *db, int64_t now, learn_send_fn send, void *send_arg,
                     const char *public_url, int *out_sent, int *out_failed);

/* One pass of the decay over every card (batches of batch cards, each in its
 * own transaction, keyset by user and node): familiarity := retrievability
 * at now where it differs, a `graph.updated` delta per user and batch, and
 * one `familiarity.decayed` summary event per user whose nodes changed.
 * Idempotent: a second pass at the same now changes nothing and appends
 * nothing. *out_changed (may be NULL): nodes changed. */
int learn_decay_all(struct db *db, int64_t now, int batch, int64_t *out_changed);

#endif
