/*
 * stats.h - what a learner's progress looks like in numbers, for
 * GET /api/v1/user/stats.
 *
 * {"familiarity": {"buckets": [10 counts: [0, 0.1), ..., [0.9, 1]],
 *                  "mean", "nodes"},
 *  "quiz_scores": [{quiz_id, created_at, n, answered, correct, score}]
 *                  (the last 50 quizzes with an answer, oldest first;
 *                  score = correct / answered),
 *  "activity_per_day": [{date "YYYY-MM-DD", reviews, quiz_answers}] (the
 *                  last 30 UTC days, oldest first, today included; reviews
 *                  count every FSRS review, quiz answers included),
 *  "streak": {"current", "active_today"}: days in a row (UTC) with a
 *                  review or a quiz answer, ending today, or yesterday
 *                  when today has none yet,
 *  "retention": {"desired", "actual", "reviews"}: the learner's desired
 *                  retention, and the share of the last 30 days' reviews
 *                  of cards in the review state not rated Again (null
 *                  without any), over that many reviews,
 *  "due": {"today", "tomorrow"}: cards due by the end of today (UTC,
 *                  overdue included) and during tomorrow,
 *  "nodes_by_state": {"new", "learning", "review", "relearning"}: nodes
 *                  without a card count as new}
 *
 * Threads: any; the connection belongs to the caller's thread.
 */
#ifndef LOCI_LEARN_STATS_H
#define LOCI_LEARN_STATS_H

#include "store/db.h"

#include <jansson.h>
#include <stdint.h>

/* The stats above for user_id at now (UTC ms); a new reference in *out. */
int learn_stats_json(struct db_conn *c, const char *user_id, int64_t now, json_t **out);

#endif
