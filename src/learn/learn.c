/*
 * learn.c - cards, the review log, learning settings and the due queue on
 * the store (tables of migration 0009). FSRS itself is fsrs.c; the jobs are
 * learn_jobs.c. Every statement filters by user_id.
 */
#include "learn/learn.h"

#include <math.h>
#include <string.h>

#include "core/err.h"
#include "events/events.h"
#include "graph/graph.h"
#include "store/db.h"

#define DAY_MS      86400000LL
#define HISTORY_MAX 1000

static const char *const source_names[] = {"review", "self", "quiz"};

static void settings_defaults(struct learn_settings *s)
{
    s->desired_retention = FSRS_DEFAULT_RETENTION;
    s->new_per_day = 20;
    s->review_mail = false;
    s->threshold = 0.8;
    s->last_digest_at = 0;
}

int learn_settings_get(struct db_conn *c, const char *user_id, struct learn_settings *out)
{
    settings_defaults(out);
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT desired_retention, new_per_day, review_mail, threshold, "
                        "last_digest_at FROM learning_settings WHERE user_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        out->desired_retention = db_col_double(st, 0);
        out->new_per_day = (int)db_col_int64(st, 1);
        out->review_mail = db_col_int64(st, 2) != 0;
        out->threshold = db_col_double(st, 3);
        out->last_digest_at = db_col_int64(st, 4);
        rc = LOCI_OK;
    }
    db_stmt_done(st);
    return rc;
}

int learn_settings_put(struct db_conn *c, const char *user_id, const struct learn_settings *s,
                       int64_t now)
{
    if (!(s->desired_retention >= LEARN_RETENTION_MIN &&
          s->desired_retention <= LEARN_RETENTION_MAX) ||
        s->new_per_day < 0 || s->new_per_day > LEARN_NEW_PER_DAY_MAX ||
        !(s->threshold >= 0 && s->threshold <= 1))
        return LOCI_EUNPROCESSABLE;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "INSERT INTO learning_settings (user_id, desired_retention, new_per_day, "
                        "review_mail, threshold, last_digest_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                        "desired_retention = excluded.desired_retention, "
                        "new_per_day = excluded.new_per_day, review_mail = excluded.review_mail, "
                        "threshold = excluded.threshold, updated_at = excluded.updated_at",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_double(st, 2, s->desired_retention);
    db_bind_int64(st, 3, s->new_per_day);
    db_bind_int64(st, 4, s->review_mail ? 1 : 0);
    db_bind_double(st, 5, s->threshold);
    db_bind_int64(st, 6, s->last_digest_at);
    db_bind_int64(st, 7, now);
    return db_run(st, NULL);
}

json_t *learn_settings_json(const struct learn_settings *s)
{
    json_t *o =
        json_pack("{s:f, s:i, s:b, s:f}", "desired_retention", s->desired_retention, "new_per_day",
                  s->new_per_day, "review_mail", s->review_mail, "threshold", s->threshold);
    json_object_set_new(o, "last_digest_at",
                        s->last_digest_at ? json_integer(s->last_digest_at) : json_null());
    return o;
}

int learn_rating_for_familiarity(double value)
{
    if (value < 0.25)
        return FSRS_AGAIN;
    if (value < 0.5)
        return FSRS_HARD;
    if (value < 0.85)
        return FSRS_GOOD;
    return FSRS_EASY;
}

/* Columns of a card, in this order, after `prefix` columns. */
#define CARD_COLS                                                                                  \
    "state, stability, difficulty, due, last_review, reps, lapses, scheduled_days, elapsed_days, " \
    "learning_steps"

static void read_card(struct db_stmt *st, int col, struct fsrs_card *out)
{
    out->state = (enum fsrs_state)db_col_int64(st, col);
    out->stability = db_col_double(st, col + 1);
    out->difficulty = db_col_double(st, col + 2);
    out->due = db_col_int64(st, col + 3);
    out->last_review = db_col_int64(st, col + 4);
    out->reps = (int)db_col_int64(st, col + 5);
    out->lapses = (int)db_col_int64(st, col + 6);
    out->scheduled_days = db_col_int64(st, col + 7);
    out->elapsed_days = db_col_int64(st, col + 8);
    out->learning_steps = (int)db_col_int64(st, col + 9);
}

/* LOCI_OK when node_id is the user's, else LOCI_ENOTFOUND. */
static int node_owned(struct db_conn *c, const char *user_id, const char *node_id)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT 1 FROM nodes WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, node_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    db_stmt_done(st);
    return rc == LOCI_ROW ? LOCI_OK : rc == LOCI_OK ? LOCI_ENOTFOUND : rc;
}

/* The node's card; *out_exists false (and a new card due at now) when none. */
static int card_get(struct db_conn *c, const char *user_id, const char *node_id, int64_t now,
                    struct fsrs_card *out, bool *out_exists)
{
    struct db_stmt *st = NULL;
    fsrs_card_init(out, now);
    *out_exists = false;
    int rc =
        db_prepare(c, "SELECT " CARD_COLS " FROM cards WHERE node_id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, node_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        read_card(st, 0, out);
        *out_exists = true;
        rc = LOCI_OK;
    }
    db_stmt_done(st);
    return rc;
}

static int card_put(struct db_conn *c, const char *user_id, const char *node_id,
                    const struct fsrs_card *k, int64_t now)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(
        c,
        "INSERT INTO cards (node_id, user_id, " CARD_COLS ", created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET "
        "state = excluded.state, stability = excluded.stability, "
        "difficulty = excluded.difficulty, due = excluded.due, "
        "last_review = excluded.last_review, reps = excluded.reps, lapses = excluded.lapses, "
        "scheduled_days = excluded.scheduled_days, elapsed_days = excluded.elapsed_days, "
        "learning_steps = excluded.learning_steps, updated_at = excluded.updated_at",
        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, node_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_int64(st, 3, k->state);
    db_bind_double(st, 4, k->stability);
    db_bind_double(st, 5, k->difficulty);
    db_bind_int64(st, 6, k->due);
    db_bind_int64(st, 7, k->last_review);
    db_bind_int64(st, 8, k->reps);
    db_bind_int64(st, 9, k->lapses);
    db_bind_int64(st, 10, k->scheduled_days);
    db_bind_int64(st, 11, k->elapsed_days);
    db_bind_int64(st, 12, k->learning_steps);
    db_bind_int64(st, 13, now);
    db_bind_int64(st, 14, now);
    return db_run(st, NULL);
}

static int review_log(struct db_conn *c, const char *user_id, const char *node_id, int rating,
                      int64_t duration_ms, enum learn_source source, int64_t now,
                      const struct learn_review_out *r)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(
        c,
        "INSERT INTO reviews (id, user_id, node_id, rating, source, duration_ms, reviewed_at, "
        "elapsed_days, scheduled_days, state_before, stability_before, difficulty_before, "
        "due_before, state_after, stability_after, difficulty_after, due_after) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, r->id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_text(st, 3, node_id, (size_t)-1);
    db_bind_int64(st, 4, rating);
    db_bind_text(st, 5, source_names[source], (size_t)-1);
    if (duration_ms >= 0)
        db_bind_int64(st, 6, duration_ms);
    else
        db_bind_null(st, 6);
    db_bind_int64(st, 7, now);
    db_bind_int64(st, 8, r->after.elapsed_days);
    db_bind_int64(st, 9, r->after.scheduled_days);
    db_bind_int64(st, 10, r->before.state);
    db_bind_double(st, 11, r->before.stability);
    db_bind_double(st, 12, r->before.difficulty);
    db_bind_int64(st, 13, r->before.due);
    db_bind_int64(st, 14, r->after.state);
    db_bind_double(st, 15, r->after.stability);
    db_bind_double(st, 16, r->after.difficulty);
    db_bind_int64(st, 17, r->after.due);
    return db_run(st, NULL);
}

static int set_familiarity(struct db_conn *c, const char *user_id, const char *node_id,
                           double value, int64_t now)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE nodes SET familiarity = ?, updated_at = ? "
                        "WHERE id = ? AND user_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_double(st, 1, value);
    db_bind_int64(st, 2, now);
    db_bind_text(st, 3, node_id, (size_t)-1);
    db_bind_text(st, 4, user_id, (size_t)-1);
    return db_run_one(st);
}

static int node_familiarity(struct db_conn *c, const char *user_id, const char *node_id,
                            double *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT familiarity FROM nodes WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, node_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        *out = db_col_double(st, 0);
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_ENOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

static const char *state_name(enum fsrs_state s)
{
    static const char *const names[] = {"new", "learning", "review", "relearning"};
    return (unsigned)s < 4 ? names[s] : "new";
}

json_t *learn_review_json(const char *node_id, const struct learn_review_out *r)
{
    const struct fsrs_card *a = &r->after;
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:f, s:I, s:i, s:i, s:f, s:f, s:s}", "node_id",
                     node_id, "review_id", r->id, "state", state_name(a->state), "due",
                     (json_int_t)a->due, "last_review", (json_int_t)a->last_review, "stability",
                     a->stability, "difficulty", a->difficulty, "scheduled_days",
                     (json_int_t)a->scheduled_days, "reps", a->reps, "lapses", a->lapses,
                     "retrievability", r->retrievability, "familiarity", r->familiarity,
                     "previous_state", state_name(r->before.state));
}

int learn_review(struct db_conn *c, const char *user_id, const char *node_id, int rating,
                 int64_t duration_ms, enum learn_source source, int64_t now,
                 struct graph_delta *delta, struct learn_review_out *out)
{
    if (rating < FSRS_AGAIN || rating > FSRS_EASY)
        return LOCI_EUNPROCESSABLE;
    memset(out, 0, sizeof *out);
    int rc = node_owned(c, user_id, node_id);
    struct learn_settings s;
    bool exists = false;
    if (rc == LOCI_OK)
        rc = learn_settings_get(c, user_id, &s);
    if (rc == LOCI_OK)
        rc = card_get(c, user_id, node_id, now, &out->before, &exists);
    if (rc)
        return rc;
    struct fsrs_params p;
    fsrs_params_init(&p, s.desired_retention);
    /* A clock that stepped back must not date a review before the last. */
    int64_t at = now > out->before.last_review ? now : out->before.last_review;
    rc = fsrs_next(&p, &out->before, at, rating, &out->after);
    if (rc)
        return rc;
    ids_uuid7(out->id);
    out->retrievability = fsrs_retrievability(&p, &out->after, at);
    rc = card_put(c, user_id, node_id, &out->after, at);
    if (rc == LOCI_OK)
        rc = review_log(c, user_id, node_id, rating, duration_ms, source, at, out);
    if (rc == LOCI_OK && source != LEARN_SRC_SELF)
        rc = set_familiarity(c, user_id, node_id, out->retrievability, at);
    if (rc == LOCI_OK)
        rc = node_familiarity(c, user_id, node_id, &out->familiarity);
    if (rc == LOCI_OK && delta)
        rc = graph_delta_add_node(c, user_id, node_id, delta);
    if (rc == LOCI_OK) {
        json_t *ev = learn_review_json(node_id, out);
        json_object_set_new(ev, "rating", json_integer(rating));
        json_object_set_new(ev, "source", json_string(source_names[source]));
        rc = events_append(c, user_id, "review.recorded", ev, NULL);
        json_decref(ev);
    }
    (void)exists;
    return rc;
}

/* ---- the due queue ---- */

static json_t *intervals_json(const struct fsrs_params *p, const struct fsrs_card *k, int64_t now)
{
    json_t *o = json_object();
    int64_t at = now > k->last_review ? now : k->last_review;
    for (int g = FSRS_AGAIN; g <= FSRS_EASY; g++) {
        struct fsrs_card next;
        char key[2] = {(char)('0' + g), '\0'};
        if (fsrs_next(p, k, at, g, &next) == LOCI_OK)
            json_object_set_new(o, key, json_integer(next.due - now));
    }
    return o;
}

static json_t *due_item(const struct fsrs_params *p, const char *node_id, const char *term,
                        const char *summary, const struct fsrs_card *k, bool is_new, int64_t now)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:i, s:i}", "node_id", node_id,
                          "term", term, "summary", summary, "state", state_name(k->state),
                          "stability", k->stability, "difficulty", k->difficulty, "retrievability",
                          fsrs_retrievability(p, k, now), "reps", k->reps, "lapses", k->lapses);
    json_object_set_new(o, "due", is_new ? json_null() : json_integer(k->due));
    json_object_set_new(o, "last_review", is_new ? json_null() : json_integer(k->last_review));
    json_object_set_new(o, "intervals", intervals_json(p, k, now));
    return o;
}

static int due_cards(struct db_conn *c, const char *user_id, const struct fsrs_params *p,
                     int64_t now, int limit, json_t *items)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT c.node_id, n.term, n.summary, c.state, c.stability, "
                        "c.difficulty, c.due, c.last_review, c.reps, c.lapses, c.scheduled_days, "
                        "c.elapsed_days, c.learning_steps FROM cards c "
                        "JOIN nodes n ON n.id = c.node_id AND n.user_id = c.user_id "
                        "WHERE c.user_id = ? AND c.due <= ? ORDER BY c.due, c.node_id LIMIT ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_int64(st, 2, now);
    db_bind_int64(st, 3, limit);
    while ((rc = db_step(st)) == LOCI_ROW) {
        struct fsrs_card k;
        read_card(st, 3, &k);
        json_array_append_new(items, due_item(p, db_col_text(st, 0, NULL), db_col_text(st, 1, NULL),
                                              db_col_text(st, 2, NULL), &k, false, now));
    }
    db_stmt_done(st);
    return rc;
}

static int new_today(struct db_conn *c, const char *user_id, int64_t now, int64_t *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT COUNT(*) FROM reviews WHERE user_id = ? AND state_before = 0 "
                        "AND reviewed_at >= ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_int64(st, 2, now - now % DAY_MS);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        *out = db_col_int64(st, 0);
        rc = LOCI_OK;
    }
    db_stmt_done(st);
    return rc;
}

static int new_nodes(struct db_conn *c, const char *user_id, const struct fsrs_params *p,
                     int64_t now, int limit, json_t *items)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT n.id, n.term, n.summary FROM nodes n WHERE n.user_id = ? "
                        "AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.node_id = n.id) "
                        "ORDER BY n.created_at, n.id LIMIT ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_int64(st, 2, limit);
    struct fsrs_card k;
    fsrs_card_init(&k, now);
    while ((rc = db_step(st)) == LOCI_ROW)
        json_array_append_new(items, due_item(p, db_col_text(st, 0, NULL), db_col_text(st, 1, NULL),
                                              db_col_text(st, 2, NULL), &k, true, now));
    db_stmt_done(st);
    return rc;
}

int learn_due(struct db_conn *c, const char *user_id, int64_t now, int limit, json_t **out)
{
    *out = NULL;
    if (limit < 1 || limit > LEARN_DUE_LIMIT_MAX)
        return LOCI_EINVAL;
    struct learn_settings s;
    int rc = learn_settings_get(c, user_id, &s);
    if (rc)
        return rc;
    struct fsrs_params p;
    fsrs_params_init(&p, s.desired_retention);
    json_t *items = json_array();
    int64_t studied = 0;
    rc = due_cards(c, user_id, &p, now, limit, items);
    if (rc == LOCI_OK)
        rc = new_today(c, user_id, now, &studied);
    int room = limit - (int)json_array_size(items);
    int64_t allowed = s.new_per_day - studied;
    if (allowed < room)
        room = allowed < 0 ? 0 : (int)allowed;
    if (rc == LOCI_OK && room > 0)
        rc = new_nodes(c, user_id, &p, now, room, items);
    if (rc) {
        json_decref(items);
        return rc;
    }
    *out = items;
    return LOCI_OK;
}

int learn_history(struct db_conn *c, const char *user_id, const char *node_id, json_t **out)
{
    *out = NULL;
    int rc = node_owned(c, user_id, node_id);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "SELECT id, rating, source, duration_ms, reviewed_at, elapsed_days, "
                    "scheduled_days, state_before, stability_before, difficulty_before, "
                    "due_before, state_after, stability_after, difficulty_after, due_after "
                    "FROM reviews WHERE user_id = ? AND node_id = ? "
                    "ORDER BY reviewed_at, id LIMIT ?",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, node_id, (size_t)-1);
    db_bind_int64(st, 3, HISTORY_MAX);
    json_t *items = json_array();
    while ((rc = db_step(st)) == LOCI_ROW) {
        json_t *o = json_pack(
            "{s:s, s:I, s:s, s:I, s:I, s:I, s:{s:s, s:f, s:f, s:I}, s:{s:s, s:f, s:f, s:I}}", "id",
            db_col_text(st, 0, NULL), "rating", (json_int_t)db_col_int64(st, 1), "source",
            db_col_text(st, 2, NULL), "reviewed_at", (json_int_t)db_col_int64(st, 4),
            "elapsed_days", (json_int_t)db_col_int64(st, 5), "scheduled_days",
            (json_int_t)db_col_int64(st, 6), "before", "state",
            state_name((enum fsrs_state)db_col_int64(st, 7)), "stability", db_col_double(st, 8),
            "difficulty", db_col_double(st, 9), "due", (json_int_t)db_col_int64(st, 10), "after",
            "state", state_name((enum fsrs_state)db_col_int64(st, 11)), "stability",
            db_col_double(st, 12), "difficulty", db_col_double(st, 13), "due",
            (json_int_t)db_col_int64(st, 14));
        json_object_set_new(o, "duration_ms",
                            db_col_is_null(st, 3) ? json_null()
                                                  : json_integer(db_col_int64(st, 3)));
        json_array_append_new(items, o);
    }
    db_stmt_done(st);
    if (rc) {
        json_decref(items);
        return rc;
    }
    *out = items;
    return LOCI_OK;
}
