/*
 * stats.c - a learner's numbers (see stats.h): read-only queries over
 * nodes, cards, reviews, quizzes and their answers, days counted in UTC.
 */
#include "learn/stats.h"

#include "core/err.h"
#include "learn/learn.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#define DAY_MS      86400000LL
#define DAYS_SHOWN  30
#define STREAK_DAYS 400 /* days looked back for a streak */
#define SCORES_MAX  50

static int familiarity(struct db_conn *c, const char *user_id, json_t *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT familiarity FROM nodes WHERE user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    int64_t buckets[10] = {0}, n = 0;
    double sum = 0;
    while ((rc = db_step(st)) == LOCI_ROW) {
        double f = db_col_double(st, 0);
        int b = f >= 1 ? 9 : f <= 0 ? 0 : (int)(f * 10);
        buckets[b > 9 ? 9 : b]++;
        sum += f;
        n++;
    }
    db_stmt_done(st);
    if (rc)
        return rc;
    json_t *list = json_array();
    for (int i = 0; i < 10; i++)
        json_array_append_new(list, json_integer(buckets[i]));
    json_object_set_new(out, "familiarity",
                        json_pack("{s:o, s:f, s:I}", "buckets", list, "mean",
                                  n ? sum / (double)n : 0.0, "nodes", (json_int_t)n));
    return LOCI_OK;
}

static int quiz_scores(struct db_conn *c, const char *user_id, json_t *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT q.id, q.created_at, COUNT(*), COUNT(a.answered_at), "
                        "COALESCE(SUM(a.is_correct), 0) FROM quizzes q JOIN quiz_questions a "
                        "ON a.quiz_id = q.id AND a.user_id = q.user_id WHERE q.user_id = ? "
                        "GROUP BY q.id, q.created_at HAVING COUNT(a.answered_at) > 0 "
                        "ORDER BY q.created_at DESC, q.id DESC LIMIT 50",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    json_t *list = json_array();
    while ((rc = db_step(st)) == LOCI_ROW) {
        int64_t answered = db_col_int64(st, 3), correct = db_col_int64(st, 4);
        json_array_insert_new(
            list, 0,
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:f}", "quiz_id", db_col_text(st, 0, NULL),
                      "created_at", (json_int_t)db_col_int64(st, 1), "n",
                      (json_int_t)db_col_int64(st, 2), "answered", (json_int_t)answered, "correct",
                      (json_int_t)correct, "score",
                      answered ? (double)correct / (double)answered : 0.0));
    }
    db_stmt_done(st);
    json_object_set_new(out, "quiz_scores", list);
    return rc;
}

static void day_name(int64_t day, char out[16])
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

static int activity(struct db_conn *c, const char *user_id, int64_t now, json_t *out)
{
    int64_t today = now / DAY_MS;
    int64_t counts[STREAK_DAYS] = {0}; /* [0] today, [i] i days ago */
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT answered_at FROM quiz_questions WHERE user_id = ? AND "
                        "answered_at >= ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_int64(st, 2, (today - STREAK_DAYS + 1) * DAY_MS);
    while ((rc = db_step(st)) == LOCI_ROW) {
        int64_t ago = today - db_col_int64(st, 0) / DAY_MS;
        if (ago >= 0 && ago < STREAK_DAYS)
            counts[ago]++;
    }
    db_stmt_done(st);
    if (rc)
        return rc;
    int64_t reviews[STREAK_DAYS] = {0};
    rc = db_prepare(c, "SELECT reviewed_at FROM reviews WHERE user_id = ? AND reviewed_at >= ?",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_int64(st, 2, (today - STREAK_DAYS + 1) * DAY_MS);
    while ((rc = db_step(st)) == LOCI_ROW) {
        int64_t ago = today - db_col_int64(st, 0) / DAY_MS;
        if (ago >= 0 && ago < STREAK_DAYS)
            reviews[ago]++;
    }
    db_stmt_done(st);
    if (rc)
        return rc;
    json_t *days = json_array();
    for (int i = DAYS_SHOWN - 1; i >= 0; i--) {
        char name[16];
        day_name(today - i, name);
        json_array_append_new(days, json_pack("{s:s, s:I, s:I}", "date", name, "reviews",
                                              (json_int_t)reviews[i], "quiz_answers",
                                              (json_int_t)counts[i]));
    }
    /* Reviews include quiz answers (source "quiz"); either keeps a streak. */
    bool active_today = counts[0] + reviews[0] > 0;
    int64_t streak = 0;
    for (int i = active_today ? 0 : 1; i < STREAK_DAYS && counts[i] + reviews[i] > 0; i++)
        streak++;
    json_object_set_new(out, "activity_per_day", days);
    json_object_set_new(
        out, "streak",
        json_pack("{s:I, s:b}", "current", (json_int_t)streak, "active_today", active_today));
    return LOCI_OK;
}

/* Retention: desired (the learner's setting) and actual, the share of
 * reviews of cards in the review state (state_before 2) in the last 30
 * days that were not rated Again; null without such reviews. */
static int retention(struct db_conn *c, const char *user_id, int64_t now, json_t *out)
{
    struct learn_settings set;
    int rc = learn_settings_get(c, user_id, &set);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN rating > 1 THEN 1 ELSE 0 END), 0) "
                    "FROM reviews WHERE user_id = ? AND state_before = 2 AND reviewed_at >= ?",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_int64(st, 2, now - DAYS_SHOWN * DAY_MS);
    rc = db_step(st);
    int64_t n = 0, kept = 0;
    if (rc == LOCI_ROW) {
        n = db_col_int64(st, 0);
        kept = db_col_int64(st, 1);
        rc = LOCI_OK;
    }
    db_stmt_done(st);
    if (rc)
        return rc;
    json_object_set_new(out, "retention",
                        json_pack("{s:f, s:o, s:I}", "desired", set.desired_retention, "actual",
                                  n ? json_real((double)kept / (double)n) : json_null(), "reviews",
                                  (json_int_t)n));
    return LOCI_OK;
}

/* Cards due by the end of today (overdue included) and during tomorrow
 * (UTC); nodes by card state, nodes without a card counted as new. */
static int cards(struct db_conn *c, const char *user_id, int64_t now, json_t *out)
{
    int64_t end_today = (now / DAY_MS + 1) * DAY_MS;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT COALESCE(SUM(CASE WHEN due < ? THEN 1 ELSE 0 END), 0), "
                        "COALESCE(SUM(CASE WHEN due >= ? AND due < ? THEN 1 ELSE 0 END), 0) "
                        "FROM cards WHERE user_id = ? AND state > 0",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, end_today);
    db_bind_int64(st, 2, end_today);
    db_bind_int64(st, 3, end_today + DAY_MS);
    db_bind_text(st, 4, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        json_object_set_new(out, "due",
                            json_pack("{s:I, s:I}", "today", (json_int_t)db_col_int64(st, 0),
                                      "tomorrow", (json_int_t)db_col_int64(st, 1)));
        rc = LOCI_OK;
    }
    db_stmt_done(st);
    if (rc)
        return rc;
    rc = db_prepare(c,
                    "SELECT COALESCE(k.state, 0), COUNT(*) FROM nodes n LEFT JOIN cards k ON "
                    "k.node_id = n.id AND k.user_id = n.user_id WHERE n.user_id = ? "
                    "GROUP BY COALESCE(k.state, 0)",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    json_int_t by[4] = {0};
    while ((rc = db_step(st)) == LOCI_ROW) {
        int64_t state = db_col_int64(st, 0);
        if (state >= 0 && state < 4)
            by[state] += (json_int_t)db_col_int64(st, 1);
    }
    db_stmt_done(st);
    json_object_set_new(out, "nodes_by_state",
                        json_pack("{s:I, s:I, s:I, s:I}", "new", by[0], "learning", by[1], "review",
                                  by[2], "relearning", by[3]));
    return rc;
}

int learn_stats_json(struct db_conn *c, const char *user_id, int64_t now, json_t **out)
{
    *out = NULL;
    json_t *o = json_object();
    int rc = familiarity(c, user_id, o);
    if (rc == LOCI_OK)
        rc = quiz_scores(c, user_id, o);
    if (rc == LOCI_OK)
        rc = activity(c, user_id, now, o);
    if (rc == LOCI_OK)
        rc = retention(c, user_id, now, o);
    if (rc == LOCI_OK)
        rc = cards(c, user_id, now, o);
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return LOCI_OK;
}
