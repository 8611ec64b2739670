/*
 * jobs.c - queue, workers, maintenance (heartbeats, reaping, scheduler).
 *
 * A lease is one UPDATE that claims the best ready row; on PostgreSQL the
 * claiming subquery uses FOR UPDATE SKIP LOCKED so that workers in many
 * processes never wait on each other, on SQLite the statement is already
 * the only writer. Every later state change of a running job is guarded by
 * `lease_owner = me AND status = 'running'`, which is what makes a lost lease
 * (expired, cancelled, released) harmless: the old worker's writes match no
 * row.
 */
#include "services/jobs/jobs.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/cron.h"
#include "core/err.h"
#include "core/metrics.h"
#include "events/events.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* "loci-crn" as the advisory lock key of the scheduler leader. */
#define SCHEDULER_LOCK_KEY 0x6c6f63692d63726eLL

struct handler {
    char *type;
    job_handler_fn fn;
    void *arg;
};

struct schedule {
    char *name;
    char *expr;
    struct cron cron;
    bool is_off;
    char *type;
    json_t *payload;
};

struct worker {
    struct jobs *js;
    int idx;
    pthread_t thread;
    char owner[64];      /* lease_owner value of this worker */
    struct job *current; /* guarded by js->mu */
    uint64_t lease_seq;  /* guarded by js->mu: bumped per job, so a heartbeat
                            never mistakes a new job for the one it renewed */
};

struct jobs {
    struct db *db;
    struct jobs_opts o;
    char instance[UUID_STR_LEN];
    struct handler *handlers;
    int n_handlers;
    struct schedule *schedules;
    int n_schedules;
    struct worker *workers;
    pthread_t maint;
    bool is_started;
    pthread_mutex_t mu; /* guards is_stopping, wake_seq, workers[].current */
    pthread_cond_t cv;
    bool is_stopping;       /* workers: lease nothing more */
    bool is_maint_stopping; /* maintenance: last to stop, heartbeats until then */
    unsigned wake_seq;
    struct db_conn *leader_conn; /* PostgreSQL: holds the scheduler lock */
    bool is_leader;
    int n_detached; /* worker threads left running a stuck handler at stop */
    struct metric_family *m_completed;
    struct metric_family *m_duration;
    struct metric_family *m_queued;
    struct metric_series *m_running;
    struct metric_series *m_lag;
};

struct job {
    struct jobs *js;
    struct worker *w;
    char id[UUID_STR_LEN];
    char *type;
    char *user_id;
    json_t *payload;
    int attempt;
    int max_attempts;
    struct log_ctx log;
    bool is_completed;
    atomic_bool is_cancelled;
    char error[512];
};

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

static bool valid_type(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_'))
            return false;
    }
    return true;
}

bool jobs_status_valid(const char *s)
{
    static const char *const names[] = {"queued", "running", "completed", "dead", "cancelled"};
    for (size_t i = 0; i < 5; i++) {
        if (s && strcmp(s, names[i]) == 0)
            return true;
    }
    return false;
}

int64_t jobs_backoff_bound(int64_t base_ms, int64_t cap_ms, int attempt)
{
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < cap_ms; i++)
        d *= 2;
    return d < cap_ms ? d : cap_ms;
}

static int64_t backoff(const struct jobs_opts *o, int attempt)
{
    int64_t bound = jobs_backoff_bound(o->backoff_base_ms, o->backoff_cap_ms, attempt);
    uint64_t r;
    ids_random(&r, sizeof(r));
    return bound > 0 ? (int64_t)(r % (uint64_t)(bound + 1)) : 0; /* full jitter */
}

/* ------------------------------------------------------------------ */
/* enqueue                                                              */

int jobs_enqueue(struct db_conn *c, const struct jobs_spec *spec, char out_id[UUID_STR_LEN],
                 bool *out_existed)
{
    if (out_existed)
        *out_existed = false;
    if (!spec || !valid_type(spec->type) || (spec->payload && !json_is_object(spec->payload)) ||
        spec->max_attempts < 0 || spec->max_attempts > 1000 ||
        (spec->idempotency_key && strlen(spec->idempotency_key) > 256))
        return LOCI_EINVAL;
    char *payload = spec->payload ? json_dumps(spec->payload, JSON_COMPACT) : NULL;
    int64_t now = clock_now_ms();
    char id[UUID_STR_LEN];
    ids_uuid7(id);
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "INSERT INTO jobs (id, type, payload, user_id, status, priority, run_at, "
                        "max_attempts, idempotency_key, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (type, idempotency_key) DO NOTHING RETURNING id",
                        &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, spec->type, (size_t)-1);
    db_bind_text(st, 3, payload ? payload : "{}", (size_t)-1);
    db_bind_text(st, 4, spec->user_id, (size_t)-1);
    db_bind_int64(st, 5, spec->priority);
    db_bind_int64(st, 6, spec->run_at > 0 ? spec->run_at : now);
    db_bind_int64(st, 7, spec->max_attempts > 0 ? spec->max_attempts : 5);
    db_bind_text(st, 8, spec->idempotency_key, (size_t)-1);
    db_bind_int64(st, 9, now);
    db_bind_int64(st, 10, now);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        snprintf(out_id, UUID_STR_LEN, "%s", db_col_text(st, 0, NULL));
        rc = LOCI_OK;
    }
    db_stmt_done(st);
    if (rc != LOCI_OK || !spec->idempotency_key)
        goto out;
    if (out_id[0] == '\0' || strcmp(out_id, id) != 0) {
        /* The key existed: hand back the first job. */
        rc = db_prepare(c, "SELECT id FROM jobs WHERE type = ? AND idempotency_key = ?", &st);
        if (rc)
            goto out;
        db_bind_text(st, 1, spec->type, (size_t)-1);
        db_bind_text(st, 2, spec->idempotency_key, (size_t)-1);
        rc = db_step(st);
        if (rc == LOCI_ROW) {
            snprintf(out_id, UUID_STR_LEN, "%s", db_col_text(st, 0, NULL));
            if (out_existed)
                *out_existed = true;
            rc = LOCI_OK;
        } else if (rc == LOCI_OK) {
            rc = LOCI_EIO;
        }
        db_stmt_done(st);
    }
out:
    xfree(payload);
    return rc;
}

/* ------------------------------------------------------------------ */
/* job accessors                                                        */

const char *job_id(const struct job *j)
{
    return j->id;
}

const char *job_type(const struct job *j)
{
    return j->type;
}

const char *job_user_id(const struct job *j)
{
    return j->user_id;
}

const json_t *job_payload(const struct job *j)
{
    return j->payload;
}

int job_attempt(const struct job *j)
{
    return j->attempt;
}

struct db *job_db(const struct job *j)
{
    return j->js->db;
}

const struct log_ctx *job_log(const struct job *j)
{
    return &j->log;
}

bool job_cancel_requested(struct job *j)
{
    return atomic_load(&j->is_cancelled);
}

void job_set_error(struct job *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->error, sizeof(j->error), fmt, ap);
    va_end(ap);
}

int job_complete_in_tx(struct db_conn *c, struct job *j, const json_t *result)
{
    char *text = result ? json_dumps(result, JSON_COMPACT) : NULL;
    int64_t now = clock_now_ms();
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE jobs SET status = 'completed', progress = 1, result = ?, "
                        "finished_at = ?, updated_at = ?, lease_owner = NULL, "
                        "lease_expires_at = NULL "
                        "WHERE id = ? AND lease_owner = ? AND status = 'running'",
                        &st);
    if (rc == LOCI_OK) {
        db_bind_text(st, 1, text, (size_t)-1);
        db_bind_int64(st, 2, now);
        db_bind_int64(st, 3, now);
        db_bind_text(st, 4, j->id, (size_t)-1);
        db_bind_text(st, 5, j->w->owner, (size_t)-1);
        rc = db_run_one(st);
        if (rc == LOCI_ENOTFOUND)
            rc = LOCI_ECONFLICT; /* lease lost: the caller's transaction must roll back */
    }
    xfree(text);
    if (rc == LOCI_OK)
        j->is_completed = true;
    return rc;
}

struct progress_args {
    struct job *j;
    double fraction;
    const char *message;
};

static int tx_progress(struct db_conn *c, void *arg)
{
    struct progress_args *pa = arg;
    struct job *j = pa->j;
    int64_t now = clock_now_ms();
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE jobs SET progress = ?, progress_message = ?, lease_expires_at = ?, "
                        "updated_at = ? WHERE id = ? AND lease_owner = ? AND status = 'running'",
                        &st);
    if (rc)
        return rc;
    db_bind_double(st, 1, pa->fraction);
    db_bind_text(st, 2, pa->message, (size_t)-1);
    db_bind_int64(st, 3, now + j->js->o.lease_ms);
    db_bind_int64(st, 4, now);
    db_bind_text(st, 5, j->id, (size_t)-1);
    db_bind_text(st, 6, j->w->owner, (size_t)-1);
    rc = db_run_one(st);
    if (rc == LOCI_ENOTFOUND) {
        atomic_store(&j->is_cancelled, true);
        return LOCI_ECONFLICT;
    }
    if (rc || !j->user_id)
        return rc;
    json_t *data = json_pack("{s:s, s:s, s:f, s:s?}", "job_id", j->id, "type", j->type, "progress",
                             pa->fraction, "message", pa->message);
    rc = events_append(c, j->user_id, "job.progress", data, NULL);
    json_decref(data);
    return rc;
}

int job_progress(struct job *j, double fraction, const char *message)
{
    if (fraction < 0 || fraction > 1 || (message && strlen(message) > 200))
        return LOCI_EINVAL;
    struct progress_args pa = {j, fraction, message};
    return db_tx(j->js->db, tx_progress, &pa);
}

/* ------------------------------------------------------------------ */
/* pool                                                                 */

struct jobs *jobs_new(struct db *db, const struct jobs_opts *opts)
{
    struct jobs *js = xcalloc(1, sizeof(*js));
    js->db = db;
    js->o = *opts;
    if (js->o.lease_ms <= 0)
        js->o.lease_ms = 30000;
    if (js->o.poll_ms <= 0)
        js->o.poll_ms = 500;
    if (js->o.backoff_base_ms <= 0)
        js->o.backoff_base_ms = 1000;
    if (js->o.backoff_cap_ms < js->o.backoff_base_ms)
        js->o.backoff_cap_ms = js->o.backoff_base_ms;
    ids_uuid7(js->instance);
    pthread_mutex_init(&js->mu, NULL);
    pthread_cond_init(&js->cv, NULL);
    js->m_completed = metrics_counter("jobs_completed_total",
                                      "Job runs finished, by type and outcome "
                                      "(completed, retried, dead, lost)",
                                      "type,outcome");
    js->m_duration = metrics_histogram("job_duration_seconds", "Time a job run took", "type",
                                       metrics_latency_buckets, metrics_n_latency_buckets);
    js->m_queued = metrics_gauge("jobs_queued", "Jobs waiting to run, by type", "type");
    js->m_running = metrics_series(
        metrics_gauge("jobs_running", "Jobs being run now by all workers", NULL), NULL);
    js->m_lag = metrics_series(
        metrics_gauge("jobs_queue_lag_seconds", "Now minus run_at of the oldest ready job", NULL),
        NULL);
    return js;
}

void jobs_register(struct jobs *js, const char *type, job_handler_fn fn, void *arg)
{
    ASSERT(!js->is_started && valid_type(type));
    js->handlers = xrealloc(js->handlers, sizeof(*js->handlers) * (size_t)(js->n_handlers + 1));
    js->handlers[js->n_handlers++] = (struct handler){xstrdup(type), fn, arg};
    const char *labels[] = {type};
    metrics_series(js->m_queued, labels); /* show 0 rather than nothing */
}

static const struct handler *find_handler(struct jobs *js, const char *type)
{
    for (int i = 0; i < js->n_handlers; i++) {
        if (strcmp(js->handlers[i].type, type) == 0)
            return &js->handlers[i];
    }
    return NULL;
}

static struct schedule *find_schedule(struct jobs *js, const char *name)
{
    for (int i = 0; i < js->n_schedules; i++) {
        if (strcmp(js->schedules[i].name, name) == 0)
            return &js->schedules[i];
    }
    return NULL;
}

static int set_expr(struct schedule *s, const char *expr, char *err, size_t err_n)
{
    char inner[200];
    struct cron cr;
    bool off = strcmp(expr, "off") == 0;
    if (!off && cron_parse(expr, &cr, inner, sizeof(inner))) {
        snprintf(err, err_n, "invalid cron expression '%s' for schedule '%s': %s", expr, s->name,
                 inner);
        return LOCI_EINVAL;
    }
    if (!off)
        s->cron = cr;
    s->is_off = off;
    xfree(s->expr);
    s->expr = xstrdup(expr);
    return LOCI_OK;
}

int jobs_schedule(struct jobs *js, const char *name, const char *cron_expr, const char *type,
                  const json_t *payload, char *err, size_t err_n)
{
    if (!valid_type(type)) {
        snprintf(err, err_n, "schedule '%s': invalid job type", name);
        return LOCI_EINVAL;
    }
    struct schedule *s = find_schedule(js, name);
    if (!s) {
        js->schedules =
            xrealloc(js->schedules, sizeof(*js->schedules) * (size_t)(js->n_schedules + 1));
        s = &js->schedules[js->n_schedules++];
        memset(s, 0, sizeof(*s));
        s->name = xstrdup(name);
        s->type = xstrdup(type);
        s->payload = payload ? json_deep_copy(payload) : json_object();
    }
    int rc = set_expr(s, cron_expr, err, err_n);
    if (rc && !s->expr) {
        /* A brand-new schedule with a bad expression: forget it. */
        xfree(s->name);
        xfree(s->type);
        json_decref(s->payload);
        js->n_schedules--;
    }
    return rc;
}

int jobs_schedule_overrides(struct jobs *js, const char *spec, char *err, size_t err_n)
{
    const char *p = spec;
    while (p && *p) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        char item[256];
        if (n >= sizeof(item)) {
            snprintf(err, err_n, "schedule override too long");
            return LOCI_EINVAL;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        char *eq = strchr(item, '=');
        char *name = item;
        while (*name == ' ')
            name++;
        if (!eq) {
            if (*name) {
                snprintf(err, err_n, "schedule override '%s': expected name=expression", item);
                return LOCI_EINVAL;
            }
        } else {
            *eq = '\0';
            char *expr = eq + 1;
            while (*expr == ' ')
                expr++;
            size_t nl = strlen(name);
            while (nl && name[nl - 1] == ' ')
                name[--nl] = '\0';
            struct schedule *s = find_schedule(js, name);
            if (!s) {
                snprintf(err, err_n, "unknown schedule '%s' in overrides", name);
                return LOCI_EINVAL;
            }
            int rc = set_expr(s, expr, err, err_n);
            if (rc)
                return rc;
        }
        p = semi ? semi + 1 : NULL;
    }
    return LOCI_OK;
}

void jobs_wake(struct jobs *js)
{
    pthread_mutex_lock(&js->mu);
    js->wake_seq++;
    pthread_cond_broadcast(&js->cv);
    pthread_mutex_unlock(&js->mu);
}

/* ------------------------------------------------------------------ */
/* leasing and running                                                  */

struct lease_args {
    struct worker *w;
    struct job *job; /* out */
};

static void job_free(struct job *j);

static int tx_lease(struct db_conn *c, void *arg)
{
    struct lease_args *la = arg;
    job_free(la->job); /* a retried transaction starts over */
    la->job = NULL;
    struct jobs *js = la->w->js;
    int64_t now = clock_now_ms();
    struct db_stmt *st = NULL;
    int rc =
        db_prepare(c,
                   "UPDATE jobs SET status = 'running', lease_owner = ?, lease_expires_at = ?, "
                   "attempts = attempts + 1, started_at = ?, updated_at = ?, cancel_requested = 0 "
                   "WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= ? "
                   "ORDER BY priority DESC, run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                   "RETURNING id, type, payload, user_id, attempts, max_attempts",
                   &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, la->w->owner, (size_t)-1);
    db_bind_int64(st, 2, now + js->o.lease_ms);
    db_bind_int64(st, 3, now);
    db_bind_int64(st, 4, now);
    db_bind_int64(st, 5, now);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        struct job *j = xcalloc(1, sizeof(*j));
        j->js = js;
        j->w = la->w;
        snprintf(j->id, sizeof(j->id), "%s", db_col_text(st, 0, NULL));
        j->type = xstrdup(db_col_text(st, 1, NULL));
        size_t pn = 0;
        const char *p = db_col_text(st, 2, &pn);
        json_error_t je;
        j->payload = json_loadb(p, pn, 0, &je);
        if (!j->payload)
            j->payload = json_object();
        j->user_id = db_col_is_null(st, 3) ? NULL : xstrdup(db_col_text(st, 3, NULL));
        j->attempt = (int)db_col_int64(st, 4);
        j->max_attempts = (int)db_col_int64(st, 5);
        j->log.job_id = j->id;
        j->log.user_id = j->user_id;
        j->log.route = j->type;
        la->job = j;
        rc = LOCI_OK;
    }
    db_stmt_done(st);
    return rc;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    xfree(j->type);
    xfree(j->user_id);
    json_decref(j->payload);
    xfree(j);
}

static bool is_permanent(int rc)
{
    return rc == LOCI_EINVAL || rc == LOCI_ENOTFOUND || rc == LOCI_EUNPROCESSABLE;
}

struct finish_args {
    struct job *j;
    int rc;
    const char **out_outcome;
};

static int tx_finish(struct db_conn *c, void *arg)
{
    struct finish_args *fa = arg;
    struct job *j = fa->j;
    if (fa->rc == LOCI_OK) {
        *fa->out_outcome = "completed";
        return job_complete_in_tx(c, j, NULL);
    }
    int64_t now = clock_now_ms();
    bool dead = is_permanent(fa->rc) || j->attempt >= j->max_attempts;
    if (!j->error[0])
        snprintf(j->error, sizeof(j->error), "%s", loci_err_message(fa->rc));
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE jobs SET status = ?, run_at = ?, last_error = ?, updated_at = ?, "
                        "finished_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                        "WHERE id = ? AND lease_owner = ? AND status = 'running'",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, dead ? "dead" : "queued", (size_t)-1);
    db_bind_int64(st, 2, dead ? now : now + backoff(&j->js->o, j->attempt));
    db_bind_text(st, 3, j->error, (size_t)-1);
    db_bind_int64(st, 4, now);
    if (dead)
        db_bind_int64(st, 5, now);
    else
        db_bind_null(st, 5);
    db_bind_text(st, 6, j->id, (size_t)-1);
    db_bind_text(st, 7, j->w->owner, (size_t)-1);
    *fa->out_outcome = dead ? "dead" : "retried";
    rc = db_run_one(st);
    return rc == LOCI_ENOTFOUND ? LOCI_ECONFLICT : rc;
}

static void run_job(struct worker *w, struct job *j)
{
    struct jobs *js = w->js;
    const struct handler *h = find_handler(js, j->type);
    int64_t t0 = clock_mono_ns();
    int rc;
    if (!h) {
        job_set_error(j, "no handler registered for job type '%s'", j->type);
        rc = LOCI_ENOTFOUND;
    } else {
        rc = h->fn(j, h->arg);
    }
    const char *outcome = "completed";
    if (!(rc == LOCI_OK && j->is_completed)) {
        struct finish_args fa = {j, rc, &outcome};
        int frc = db_tx(js->db, tx_finish, &fa);
        if (frc == LOCI_ECONFLICT) {
            outcome = "lost"; /* cancelled, or the lease expired and another worker has it */
            log_line(&j->log, LOG_WARN, "job lease lost before finishing", NULL, 0);
        } else if (frc) {
            log_line(&j->log, LOG_ERROR, "cannot record job outcome",
                     (struct log_field[]){LF_STR("error", loci_err_code(frc))}, 1);
        }
    }
    double secs = (double)(clock_mono_ns() - t0) / 1e9;
    const char *l1[] = {j->type, outcome};
    metrics_add(metrics_series(js->m_completed, l1), 1);
    const char *l2[] = {j->type};
    metrics_observe(metrics_series(js->m_duration, l2), secs);
    struct log_field f[] = {LF_STR("outcome", outcome), LF_INT("attempt", j->attempt),
                            LF_DBL("duration_ms", secs * 1000), LF_STR("error", j->error)};
    log_line(&j->log, strcmp(outcome, "completed") == 0 ? LOG_INFO : LOG_WARN, "job finished", f,
             j->error[0] ? 4 : 3);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct jobs *js = w->js;
    for (;;) {
        pthread_mutex_lock(&js->mu);
        bool stop = js->is_stopping;
        unsigned seq = js->wake_seq;
        pthread_mutex_unlock(&js->mu);
        if (stop)
            break;
        struct lease_args la = {w, NULL};
        int rc = db_tx(js->db, tx_lease, &la);
        if (rc == LOCI_OK && la.job) {
            pthread_mutex_lock(&js->mu);
            w->current = la.job;
            w->lease_seq++;
            pthread_mutex_unlock(&js->mu);
            run_job(w, la.job);
            pthread_mutex_lock(&js->mu);
            w->current = NULL;
            pthread_mutex_unlock(&js->mu);
            job_free(la.job);
            continue;
        }
        job_free(la.job); /* leased in a transaction that did not commit */
        la.job = NULL;
        if (rc != LOCI_OK)
            log_line(NULL, LOG_WARN, "cannot lease jobs",
                     (struct log_field[]){LF_STR("error", loci_err_code(rc))}, 1);
        /* Idle: sleep until woken or the poll interval passes. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (js->o.poll_ms % 1000) * 1000000LL;
        ts.tv_sec += (time_t)(js->o.poll_ms / 1000 + ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        pthread_mutex_lock(&js->mu);
        while (!js->is_stopping && js->wake_seq == seq) {
            if (pthread_cond_timedwait(&js->cv, &js->mu, &ts) != 0)
                break;
        }
        pthread_mutex_unlock(&js->mu);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* maintenance: heartbeats, reaping, scheduler, metrics                 */

static void heartbeat(struct jobs *js)
{
    int64_t now = clock_now_ms();
    pthread_mutex_lock(&js->mu);
    /* Collect ids under the lock; update outside it. */
    int n = js->o.workers;
    char(*ids)[UUID_STR_LEN] = xcalloc((size_t)n + 1, UUID_STR_LEN);
    uint64_t *seqs = xcalloc((size_t)n + 1, sizeof(*seqs));
    for (int i = 0; i < n; i++) {
        struct job *j = js->workers[i].current;
        if (j) {
            snprintf(ids[i], UUID_STR_LEN, "%s", j->id);
            seqs[i] = js->workers[i].lease_seq;
        }
    }
    pthread_mutex_unlock(&js->mu);
    struct db_conn *c = NULL;
    if (db_acquire(js->db, &c) == LOCI_OK) {
        for (int i = 0; i < n; i++) {
            if (!ids[i][0])
                continue;
            struct db_stmt *st = NULL;
            if (db_prepare(c,
                           "UPDATE jobs SET lease_expires_at = ?, updated_at = ? "
                           "WHERE id = ? AND lease_owner = ? AND status = 'running'",
                           &st))
                continue;
            db_bind_int64(st, 1, now + js->o.lease_ms);
            db_bind_int64(st, 2, now);
            db_bind_text(st, 3, ids[i], (size_t)-1);
            db_bind_text(st, 4, js->workers[i].owner, (size_t)-1);
            int rc = db_run_one(st);
            if (rc == LOCI_ENOTFOUND) {
                /* Cancelled or lost: tell the handler if it is still ours. */
                pthread_mutex_lock(&js->mu);
                struct job *cur = js->workers[i].current;
                if (cur && js->workers[i].lease_seq == seqs[i])
                    atomic_store(&cur->is_cancelled, true);
                pthread_mutex_unlock(&js->mu);
            }
        }
        db_release(c);
    }
    xfree(ids);
    xfree(seqs);
}

int jobs_reap_expired(struct db *db, int64_t now, int *out_n)
{
    struct db_conn *c = NULL;
    *out_n = 0;
    int rc = db_acquire(db, &c);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "UPDATE jobs SET "
                    "status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, "
                    "finished_at = CASE WHEN attempts >= max_attempts THEN CAST(? AS BIGINT) END, "
                    "last_error = 'lease expired: the worker stopped or died', "
                    "lease_owner = NULL, lease_expires_at = NULL, updated_at = ? "
                    "WHERE status = 'running' AND lease_expires_at < ?",
                    &st);
    if (rc == LOCI_OK) {
        db_bind_int64(st, 1, now);
        db_bind_int64(st, 2, now);
        db_bind_int64(st, 3, now);
        rc = db_step(st);
        *out_n = (int)db_changes(st);
        db_stmt_done(st);
    }
    db_release(c);
    if (*out_n > 0)
        log_line(NULL, LOG_WARN, "returned jobs with expired leases",
                 (struct log_field[]){LF_INT("jobs", *out_n)}, 1);
    return rc;
}

static bool try_lead(struct jobs *js)
{
    if (db_backend(js->db) != DB_POSTGRES)
        return true; /* SQLite: one process */
    if (!js->leader_conn && db_acquire(js->db, &js->leader_conn) != LOCI_OK)
        return false;
    bool locked = false;
    if (db_try_session_lock(js->leader_conn, SCHEDULER_LOCK_KEY, &locked) != LOCI_OK) {
        db_release(js->leader_conn);
        js->leader_conn = NULL;
        return false;
    }
    js->is_leader = locked;
    return locked;
}

struct tick_args {
    struct schedule *s;
    int64_t now;
    int enqueued;
};

static int tx_tick(struct db_conn *c, void *arg)
{
    struct tick_args *ta = arg;
    struct schedule *s = ta->s;
    ta->enqueued = 0;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT last_tick_at FROM schedules WHERE name = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, s->name, (size_t)-1);
    rc = db_step(st);
    int64_t last = rc == LOCI_ROW ? db_col_int64(st, 0) : -1;
    db_stmt_done(st);
    if (rc < 0)
        return rc;
    if (last < 0) {
        /* First sight of this schedule: start counting from now. */
        rc = db_prepare(c,
                        "INSERT INTO schedules (name, last_tick_at, updated_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (name) DO NOTHING",
                        &st);
        if (rc)
            return rc;
        db_bind_text(st, 1, s->name, (size_t)-1);
        db_bind_int64(st, 2, ta->now);
        db_bind_int64(st, 3, ta->now);
        rc = db_step(st);
        db_stmt_done(st);
        return rc;
    }
    int64_t due = cron_next(&s->cron, last);
    if (due < 0 || due > ta->now)
        return LOCI_OK;
    /* However many ticks were missed, run the latest one once. */
    int64_t tick = cron_prev(&s->cron, ta->now, due);
    if (tick < 0)
        tick = due;
    char key[160];
    snprintf(key, sizeof(key), "cron:%s:%lld", s->name, (long long)tick);
    struct jobs_spec spec = {.type = s->type, .payload = s->payload, .idempotency_key = key};
    char id[UUID_STR_LEN] = "";
    bool existed = false;
    rc = jobs_enqueue(c, &spec, id, &existed);
    if (rc)
        return rc;
    rc = db_prepare(c,
                    "UPDATE schedules SET last_tick_at = ?, updated_at = ? "
                    "WHERE name = ? AND last_tick_at < ?",
                    &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, tick);
    db_bind_int64(st, 2, ta->now);
    db_bind_text(st, 3, s->name, (size_t)-1);
    db_bind_int64(st, 4, tick);
    rc = db_step(st);
    db_stmt_done(st);
    if (rc == LOCI_OK && !existed)
        ta->enqueued = 1;
    return rc;
}

int jobs_scheduler_tick(struct jobs *js, int64_t now)
{
    int total = 0;
    for (int i = 0; i < js->n_schedules; i++) {
        struct schedule *s = &js->schedules[i];
        if (s->is_off)
            continue;
        struct tick_args ta = {s, now, 0};
        int rc = db_tx(js->db, tx_tick, &ta);
        if (rc) {
            log_line(NULL, LOG_WARN, "scheduler tick failed",
                     (struct log_field[]){LF_STR("schedule", s->name),
                                          LF_STR("error", loci_err_code(rc))},
                     2);
            continue;
        }
        if (ta.enqueued)
            log_line(NULL, LOG_INFO, "scheduled job enqueued",
                     (struct log_field[]){LF_STR("schedule", s->name), LF_STR("type", s->type)}, 2);
        total += ta.enqueued;
    }
    if (total)
        jobs_wake(js);
    return total;
}

static void collect_metrics(void *arg)
{
    struct jobs *js = arg;
    struct db_conn *c = NULL;
    if (db_acquire(js->db, &c) != LOCI_OK)
        return;
    int64_t now = clock_now_ms();
    for (int i = 0; i < js->n_handlers; i++) {
        const char *l[] = {js->handlers[i].type};
        metrics_set(metrics_series(js->m_queued, l), 0);
    }
    struct db_stmt *st = NULL;
    int64_t oldest = -1;
    if (db_prepare(c,
                   "SELECT type, COUNT(*), MIN(CASE WHEN run_at <= ? THEN run_at END) "
                   "FROM jobs WHERE status = 'queued' GROUP BY type",
                   &st) == LOCI_OK) {
        db_bind_int64(st, 1, now);
        while (db_step(st) == LOCI_ROW) {
            const char *l[] = {db_col_text(st, 0, NULL)};
            metrics_set(metrics_series(js->m_queued, l), (double)db_col_int64(st, 1));
            if (!db_col_is_null(st, 2)) {
                int64_t r = db_col_int64(st, 2);
                if (oldest < 0 || r < oldest)
                    oldest = r;
            }
        }
        db_stmt_done(st);
    }
    metrics_set(js->m_lag, oldest < 0 ? 0 : (double)(now - oldest) / 1000.0);
    if (db_prepare(c, "SELECT COUNT(*) FROM jobs WHERE status = 'running'", &st) == LOCI_OK) {
        if (db_step(st) == LOCI_ROW)
            metrics_set(js->m_running, (double)db_col_int64(st, 0));
        db_stmt_done(st);
    }
    db_release(c);
}

static void *maint_main(void *arg)
{
    struct jobs *js = arg;
    int64_t next_beat = 0, next_reap = 0, next_tick = 0;
    for (;;) {
        pthread_mutex_lock(&js->mu);
        bool stop = js->is_maint_stopping;
        bool draining = js->is_stopping;
        pthread_mutex_unlock(&js->mu);
        if (stop)
            break;
        int64_t now = clock_now_ms();
        if (now >= next_beat) {
            heartbeat(js);
            next_beat = now + js->o.lease_ms / 3;
        }
        if (now >= next_reap) {
            int n = 0;
            jobs_reap_expired(js->db, now, &n);
            if (n)
                jobs_wake(js);
            next_reap = now + 1000;
        }
        if (js->o.run_scheduler && !draining && now >= next_tick) {
            if (try_lead(js))
                jobs_scheduler_tick(js, now);
            next_tick = now + 1000;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&js->mu);
        if (!js->is_maint_stopping)
            pthread_cond_timedwait(&js->cv, &js->mu, &ts);
        pthread_mutex_unlock(&js->mu);
    }
    return NULL;
}

int jobs_start(struct jobs *js)
{
    ASSERT(!js->is_started);
    int n = 0;
    int rc = jobs_reap_expired(js->db, clock_now_ms(), &n);
    if (rc)
        return rc;
    metrics_add_collector(collect_metrics, js);
    js->workers = xcalloc((size_t)(js->o.workers > 0 ? js->o.workers : 1), sizeof(*js->workers));
    for (int i = 0; i < js->o.workers; i++) {
        struct worker *w = &js->workers[i];
        w->js = js;
        w->idx = i;
        snprintf(w->owner, sizeof(w->owner), "%s/%d", js->instance, i);
        pthread_create(&w->thread, NULL, worker_main, w);
    }
    pthread_create(&js->maint, NULL, maint_main, js);
    js->is_started = true;
    return LOCI_OK;
}

static int release_lease(struct jobs *js, const char *id, const char *owner)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(js->db, &c);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "UPDATE jobs SET status = 'queued', attempts = attempts - 1, "
                    "lease_owner = NULL, lease_expires_at = NULL, updated_at = ? "
                    "WHERE id = ? AND lease_owner = ? AND status = 'running'",
                    &st);
    if (rc == LOCI_OK) {
        db_bind_int64(st, 1, clock_now_ms());
        db_bind_text(st, 2, id, (size_t)-1);
        db_bind_text(st, 3, owner, (size_t)-1);
        rc = db_run_one(st);
    }
    db_release(c);
    return rc;
}

/* Wait until no worker runs a job, or until the monotonic deadline. */
static void wait_idle(struct jobs *js, int64_t deadline_ns)
{
    for (;;) {
        int busy = 0;
        pthread_mutex_lock(&js->mu);
        for (int i = 0; i < js->o.workers; i++)
            busy += js->workers[i].current != NULL;
        pthread_mutex_unlock(&js->mu);
        if (busy == 0 || clock_mono_ns() >= deadline_ns)
            return;
        clock_sleep_ms(10);
    }
}

int jobs_stop(struct jobs *js, int timeout_ms)
{
    if (!js->is_started)
        return 0;
    pthread_mutex_lock(&js->mu);
    js->is_stopping = true;
    pthread_cond_broadcast(&js->cv);
    pthread_mutex_unlock(&js->mu);
    /* The maintenance thread keeps heartbeating the running jobs' leases
     * while we wait; it stops last. */
    int64_t deadline = clock_mono_ns() + (int64_t)timeout_ms * 1000000LL;
    wait_idle(js, deadline);
    int released = 0;
    for (int i = 0; i < js->o.workers; i++) {
        pthread_mutex_lock(&js->mu);
        struct job *j = js->workers[i].current;
        char id[UUID_STR_LEN] = "";
        if (j) {
            snprintf(id, sizeof(id), "%s", j->id);
            atomic_store(&j->is_cancelled, true); /* ask the handler to stop */
        }
        pthread_mutex_unlock(&js->mu);
        if (id[0] && release_lease(js, id, js->workers[i].owner) == LOCI_OK) {
            released++;
            log_line(NULL, LOG_WARN, "released a running job at shutdown",
                     (struct log_field[]){LF_STR("job_id", id)}, 1);
        }
    }
    /* Give handlers a short grace to return (their writes are refused now);
     * a handler that still runs cannot be interrupted: detach its thread. */
    wait_idle(js, clock_mono_ns() + 2000000000LL);
    pthread_mutex_lock(&js->mu);
    js->is_maint_stopping = true;
    pthread_cond_broadcast(&js->cv);
    pthread_mutex_unlock(&js->mu);
    pthread_join(js->maint, NULL);
    for (int i = 0; i < js->o.workers; i++) {
        pthread_mutex_lock(&js->mu);
        bool stuck = js->workers[i].current != NULL;
        pthread_mutex_unlock(&js->mu);
        if (stuck) {
            pthread_detach(js->workers[i].thread);
            js->n_detached++;
        } else {
            pthread_join(js->workers[i].thread, NULL);
        }
    }
    if (js->leader_conn) {
        if (js->is_leader && db_backend(js->db) == DB_POSTGRES)
            db_exec(js->leader_conn, "SELECT pg_advisory_unlock_all()");
        db_release(js->leader_conn);
        js->leader_conn = NULL;
    }
    metrics_remove_collector(collect_metrics, js);
    js->is_started = false;
    return released;
}

int jobs_detached(const struct jobs *js)
{
    return js ? js->n_detached : 0;
}

void jobs_free(struct jobs *js)
{
    if (!js)
        return;
    if (js->n_detached > 0) {
        /* A detached worker still points at js; the process is exiting. */
        log_line(NULL, LOG_WARN, "job workers still running at exit",
                 (struct log_field[]){LF_INT("workers", js->n_detached)}, 1);
        return;
    }
    for (int i = 0; i < js->n_handlers; i++)
        xfree(js->handlers[i].type);
    xfree(js->handlers);
    for (int i = 0; i < js->n_schedules; i++) {
        xfree(js->schedules[i].name);
        xfree(js->schedules[i].expr);
        xfree(js->schedules[i].type);
        json_decref(js->schedules[i].payload);
    }
    xfree(js->schedules);
    xfree(js->workers);
    pthread_mutex_destroy(&js->mu);
    pthread_cond_destroy(&js->cv);
    xfree(js);
}
