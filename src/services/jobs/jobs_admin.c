/*
 * jobs_admin.c - reading and steering jobs: the API, the CLI and the purge
 * schedule use these. Every query names its columns; users only ever see
 * their own jobs (user_id in the WHERE clause, 404 otherwise).
 */
#include "core/clock.h"
#include "core/err.h"
#include "services/jobs/jobs.h"

#include <string.h>

#define JOB_COLUMNS                                                                                \
    "id, type, payload, user_id, status, priority, run_at, attempts, max_attempts, "               \
    "idempotency_key, lease_owner, lease_expires_at, last_error, progress, progress_message, "     \
    "result, created_at, updated_at, started_at, finished_at"

static void set_opt_int(json_t *o, const char *k, struct db_stmt *st, int col)
{
    json_object_set_new(
        o, k, db_col_is_null(st, col) ? json_null() : json_integer(db_col_int64(st, col)));
}

static void set_opt_text(json_t *o, const char *k, struct db_stmt *st, int col)
{
    json_object_set_new(
        o, k, db_col_is_null(st, col) ? json_null() : json_string(db_col_text(st, col, NULL)));
}

static void set_json_text(json_t *o, const char *k, struct db_stmt *st, int col)
{
    if (db_col_is_null(st, col)) {
        json_object_set_new(o, k, json_null());
        return;
    }
    size_t n = 0;
    const char *t = db_col_text(st, col, &n);
    json_error_t je;
    json_t *v = json_loadb(t, n, 0, &je);
    json_object_set_new(o, k, v ? v : json_null());
}

static json_t *row_to_json(struct db_stmt *st, bool is_admin)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(db_col_text(st, 0, NULL)));
    json_object_set_new(o, "type", json_string(db_col_text(st, 1, NULL)));
    set_json_text(o, "payload", st, 2);
    json_object_set_new(o, "status", json_string(db_col_text(st, 4, NULL)));
    json_object_set_new(o, "priority", json_integer(db_col_int64(st, 5)));
    json_object_set_new(o, "run_at", json_integer(db_col_int64(st, 6)));
    json_object_set_new(o, "attempts", json_integer(db_col_int64(st, 7)));
    json_object_set_new(o, "max_attempts", json_integer(db_col_int64(st, 8)));
    set_opt_text(o, "last_error", st, 12);
    json_object_set_new(o, "progress", json_real(db_col_double(st, 13)));
    set_opt_text(o, "progress_message", st, 14);
    set_json_text(o, "result", st, 15);
    json_object_set_new(o, "created_at", json_integer(db_col_int64(st, 16)));
    json_object_set_new(o, "updated_at", json_integer(db_col_int64(st, 17)));
    set_opt_int(o, "started_at", st, 18);
    set_opt_int(o, "finished_at", st, 19);
    if (is_admin) {
        set_opt_text(o, "user_id", st, 3);
        set_opt_text(o, "idempotency_key", st, 9);
        set_opt_text(o, "lease_owner", st, 10);
        set_opt_int(o, "lease_expires_at", st, 11);
    }
    return o;
}

int jobs_get(struct db_conn *c, const char *id, const char *user_id, bool is_admin, json_t **out)
{
    *out = NULL;
    struct db_stmt *st = NULL;
    int rc =
        user_id
            ? db_prepare(c, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ? AND user_id = ?", &st)
            : db_prepare(c, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    if (user_id)
        db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        *out = row_to_json(st, is_admin);
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_ENOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

int jobs_list(struct db_conn *c, const char *status, const char *type, const char *before_id,
              int limit, json_t **out)
{
    *out = NULL;
    if (limit < 1 || limit > 500 || (status && !jobs_status_valid(status)))
        return LOCI_EINVAL;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT " JOB_COLUMNS " FROM jobs "
                        "WHERE (CAST(? AS TEXT) IS NULL OR status = ?) "
                        "AND (CAST(? AS TEXT) IS NULL OR type = ?) "
                        "AND (CAST(? AS TEXT) IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, status, (size_t)-1);
    db_bind_text(st, 2, status, (size_t)-1);
    db_bind_text(st, 3, type, (size_t)-1);
    db_bind_text(st, 4, type, (size_t)-1);
    db_bind_text(st, 5, before_id, (size_t)-1);
    db_bind_text(st, 6, before_id, (size_t)-1);
    db_bind_int64(st, 7, limit);
    json_t *arr = json_array();
    while ((rc = db_step(st)) == LOCI_ROW)
        json_array_append_new(arr, row_to_json(st, true));
    db_stmt_done(st);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return LOCI_OK;
}

static int current_status(struct db_conn *c, const char *id, char *out, size_t n)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT status FROM jobs WHERE id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        snprintf(out, n, "%s", db_col_text(st, 0, NULL));
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_ENOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

/* Run a state change `... = ? (now), updated_at = ? (now) ... WHERE id = ?
 * AND status IN (...)`; a row that moved on meanwhile is a conflict. */
static int transition(struct db_conn *c, const char *id, const char *sql)
{
    int64_t now = clock_now_ms();
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, sql, &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, now);
    db_bind_int64(st, 2, now);
    db_bind_text(st, 3, id, (size_t)-1);
    rc = db_run_one(st);
    return rc == LOCI_ENOTFOUND ? LOCI_ECONFLICT : rc;
}

int jobs_retry(struct db_conn *c, const char *id)
{
    char status[16];
    int rc = current_status(c, id, status, sizeof(status));
    if (rc)
        return rc;
    if (strcmp(status, "queued") == 0 || strcmp(status, "running") == 0)
        return LOCI_ECONFLICT;
    return transition(c, id,
                      "UPDATE jobs SET status = 'queued', attempts = 0, run_at = ?, "
                      "updated_at = ?, finished_at = NULL, progress = 0, progress_message = NULL, "
                      "cancel_requested = 0 "
                      "WHERE id = ? AND status IN ('dead', 'cancelled', 'completed')");
}

int jobs_cancel(struct db_conn *c, const char *id)
{
    char status[16];
    int rc = current_status(c, id, status, sizeof(status));
    if (rc)
        return rc;
    if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
        return LOCI_ECONFLICT;
    return transition(c, id,
                      "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, "
                      "finished_at = ?, updated_at = ?, lease_owner = NULL, "
                      "lease_expires_at = NULL WHERE id = ? AND status IN ('queued', 'running')");
}

int jobs_purge_finished(struct db_conn *c, int64_t before, int64_t *out_n)
{
    struct db_stmt *st = NULL;
    *out_n = 0;
    int rc = db_prepare(c,
                        "DELETE FROM jobs WHERE status IN ('completed', 'dead', 'cancelled') "
                        "AND finished_at < ?",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, before);
    return db_run(st, out_n);
}

/* ---- built-in maintenance job ---- */

static int purge_handler(struct job *j, void *arg)
{
    (void)arg;
    json_t *days = json_object_get(job_payload(j), "retention_days");
    if (!json_is_integer(days) || json_integer_value(days) < 1) {
        job_set_error(j, "payload needs a positive integer 'retention_days'");
        return LOCI_EINVAL;
    }
    int64_t before = clock_now_ms() - (int64_t)json_integer_value(days) * 86400000LL;
    struct db_conn *c = NULL;
    int rc = db_acquire(job_db(j), &c);
    if (rc)
        return rc;
    int64_t n = 0;
    rc = jobs_purge_finished(c, before, &n);
    db_release(c);
    if (rc == LOCI_OK)
        log_line(job_log(j), LOG_INFO, "purged finished jobs",
                 (struct log_field[]){LF_INT("deleted", n)}, 1);
    return rc;
}

int jobs_register_maintenance(struct jobs *js, int retention_days, char *err, size_t err_n)
{
    jobs_register(js, "jobs.purge", purge_handler, NULL);
    json_t *payload = json_pack("{s:i}", "retention_days", retention_days);
    int rc = jobs_schedule(js, "purge_jobs", "20 3 * * *", "jobs.purge", payload, err, err_n);
    json_decref(payload);
    return rc;
}
