/*
 * jobs.h - the durable job queue and the cron scheduler.
 *
 * Delivery is at least once: a job is leased by one worker at a time, and a
 * worker that dies loses its lease when it expires, after which the job runs
 * again. Handlers that must take effect exactly once write their effect and
 * call job_complete_in_tx() in one transaction: if the lease was lost the
 * completion fails and the effect rolls back with it (the pattern every
 * handler with database effects copies; see tests/unit/jobs).
 *
 * Threads: jobs_enqueue() and the admin functions run on the caller's
 * connection and thread. A struct jobs owns its worker threads and one
 * maintenance thread (lease heartbeats, expired-lease reaping, the
 * scheduler); handlers run on worker threads and may block.
 */
#ifndef LOCI_SERVICES_JOBS_H
#define LOCI_SERVICES_JOBS_H

#include "core/ids.h"
#include "core/log.h"
#include "store/db.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- enqueueing (any thread, inside the caller's transaction) ---- */

struct jobs_spec {
    const char *type;            /* [a-z0-9_.], 1-64 characters */
    const json_t *payload;       /* a JSON object, or NULL for {} */
    const char *user_id;         /* owning user, or NULL for system jobs */
    int64_t run_at;              /* UTC ms; 0 = now */
    int priority;                /* higher runs first; default 0 */
    int max_attempts;            /* 0 = 5 */
    const char *idempotency_key; /* NULL, or unique per type */
};

/* Insert a job on c, normally inside the caller's transaction so that a
 * rolled-back request leaves no job. With an idempotency key that already
 * exists for the type, nothing is inserted and the existing job's id is
 * returned with *out_existed = true. */
int jobs_enqueue(struct db_conn *c, const struct jobs_spec *spec, char out_id[UUID_STR_LEN],
                 bool *out_existed);

/* ---- handlers (worker threads) ---- */

struct job;

const char *job_id(const struct job *j);
const char *job_type(const struct job *j);
const char *job_user_id(const struct job *j); /* NULL for system jobs */
const json_t *job_payload(const struct job *j);
int job_attempt(const struct job *j); /* 1 on the first run */
struct db *job_db(const struct job *j);
const struct log_ctx *job_log(const struct job *j);

/* Report progress (0..1) and a short message; readable through the API and
 * appended as a `job.progress` event for the job's user. Extends the lease. */
int job_progress(struct job *j, double fraction, const char *message);
/* True once an admin cancelled the job; long handlers should stop early. */
bool job_cancel_requested(struct job *j);
/* Mark the job completed inside the handler's own transaction, with an
 * optional result (borrowed). Fails with LOCI_ECONFLICT when this worker no
 * longer holds the lease (the transaction must then roll back). */
int job_complete_in_tx(struct db_conn *c, struct job *j, const json_t *result);
/* Set the error text kept when the handler returns an error. */
void job_set_error(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Return 0 when done (the job is completed if the handler has not done so in
 * its own transaction). Any error is retried with back-off until
 * max_attempts, except LOCI_EINVAL, LOCI_ENOTFOUND and LOCI_EUNPROCESSABLE,
 * which are permanent: the job goes dead at once. */
typedef int (*job_handler_fn)(struct job *j, void *arg);

/* ---- the worker pool ---- */

struct jobs_opts {
    int workers;             /* threads; 0 = none (enqueue/admin only) */
    int64_t lease_ms;        /* visibility timeout; heartbeats renew it */
    int64_t backoff_base_ms; /* retry n waits random(0, min(cap, base*2^(n-1))) */
    int64_t backoff_cap_ms;
    int64_t poll_ms;    /* idle wait between looks at the queue */
    bool run_scheduler; /* enqueue cron ticks from this process */
};

struct jobs;

/* Create a pool on db. Register handlers and schedules, then start. */
struct jobs *jobs_new(struct db *db, const struct jobs_opts *opts);
/* Register the handler for a type (before jobs_start). */
void jobs_register(struct jobs *js, const char *type, job_handler_fn fn, void *arg);
/* Register a cron schedule (5 fields, UTC) that enqueues `type` with payload
 * (borrowed, copied). An invalid expression is LOCI_EINVAL with err naming
 * the schedule. The same name again replaces the expression (config
 * overrides); expression "off" disables the schedule. */
int jobs_schedule(struct jobs *js, const char *name, const char *cron_expr, const char *type,
                  const json_t *payload, char *err, size_t err_n);
/* Apply "name=expr;name2=off" overrides to registered schedules. */
int jobs_schedule_overrides(struct jobs *js, const char *spec, char *err, size_t err_n);
/* Start workers and the maintenance thread; returns expired leases to the
 * queue first (crash recovery). */
int jobs_start(struct jobs *js);
/* Wake idle workers now (after committing an enqueue). Any thread. */
void jobs_wake(struct jobs *js);
/* Stop leasing, wait up to timeout_ms for running jobs, release the leases
 * of those still running (their handlers see job_cancel_requested() and their
 * writes are refused), give them 2 s more to return, stop the threads.
 * Returns how many jobs were released. */
int jobs_stop(struct jobs *js, int timeout_ms);
/* Worker threads jobs_stop() had to leave running (a stuck handler). When
 * non-zero the process must exit without tearing down what they may use
 * (database, libcurl, metrics). */
int jobs_detached(const struct jobs *js);
/* Free the pool (after jobs_stop, or when never started). If a stuck
 * handler's thread had to be left running, the pool is deliberately not
 * freed (the process is exiting). */
void jobs_free(struct jobs *js);

/* One scheduler pass at `now` (the maintenance thread calls this every
 * second; tests call it with chosen times). Returns jobs enqueued. */
int jobs_scheduler_tick(struct jobs *js, int64_t now);

/* ---- inspection and administration (any thread) ---- */

/* A job as JSON. With user_id, only that user's job (else LOCI_ENOTFOUND);
 * with is_admin, internal fields (lease, owner) are included. */
int jobs_get(struct db_conn *c, const char *id, const char *user_id, bool is_admin, json_t **out);
/* Newest first; status/type may be NULL; before_id pages. */
int jobs_list(struct db_conn *c, const char *status, const char *type, const char *before_id,
              int limit, json_t **out);
/* dead, cancelled or completed -> queued now with attempts reset. */
int jobs_retry(struct db_conn *c, const char *id);
/* queued -> cancelled; running -> cancelled (the worker's completion is
 * refused). Finished jobs: LOCI_ECONFLICT. */
int jobs_cancel(struct db_conn *c, const char *id);
/* Requeue (or kill, when out of attempts) jobs whose lease expired. */
int jobs_reap_expired(struct db *db, int64_t now, int *out_n);
/* Delete completed, dead and cancelled jobs finished before `before`. */
int jobs_purge_finished(struct db_conn *c, int64_t before, int64_t *out_n);

/* Register the built-in "jobs.purge" handler and its daily schedule
 * "purge_jobs" (03:20 UTC), deleting jobs finished more than
 * retention_days ago. */
int jobs_register_maintenance(struct jobs *js, int retention_days, char *err, size_t err_n);

/* The retry delay bound for attempt n (>= 1): min(cap, base * 2^(n-1)). */
int64_t jobs_backoff_bound(int64_t base_ms, int64_t cap_ms, int attempt);

/* Valid status names: queued, running, completed, dead, cancelled. */
bool jobs_status_valid(const char *s);

#endif
