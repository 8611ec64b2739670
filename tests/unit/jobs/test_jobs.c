/*
 * test_jobs.c - the durable queue on SQLite and PostgreSQL: idempotent
 * enqueue, transactional enqueue, back-off and dead letters, admin retry and
 * cancel, progress events, a worker process killed with SIGKILL mid-job, many
 * workers (and on PostgreSQL two processes) draining 1,000 jobs exactly once,
 * shutdown releasing leases, and the scheduler collapsing missed ticks.
 *
 * The handler pattern later handlers copy is effect_handler(): write the
 * effect and job_complete_in_tx() in one transaction.
 */
#include "core/clock.h"
#include "core/err.h"
#include "events/events.h"
#include "harness.h"
#include "services/jobs/jobs.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct db *open_db(const char *url, int pool)
{
    struct db *db = NULL;
    char err[512];
    if (db_open(url, pool, &db, err, sizeof(err)) != LOCI_OK)
        harness_fail(__FILE__, __LINE__, "db_open: %s", err);
    int applied = 0;
    if (db_migrate(db, &applied, err, sizeof(err)) != LOCI_OK)
        harness_fail(__FILE__, __LINE__, "migrate: %s", err);
    return db;
}

static void exec_ok(struct db *db, const char *sql)
{
    struct db_conn *c = NULL;
    if (db_acquire(db, &c))
        harness_fail(__FILE__, __LINE__, "acquire");
    if (db_exec(c, sql))
        harness_fail(__FILE__, __LINE__, "exec %s: %s", sql, db_errmsg(c));
    db_release(c);
}

static int64_t scalar(struct db *db, const char *sql, const char *arg)
{
    struct db_conn *c = NULL;
    if (db_acquire(db, &c))
        harness_fail(__FILE__, __LINE__, "acquire");
    struct db_stmt *st = NULL;
    if (db_prepare(c, sql, &st))
        harness_fail(__FILE__, __LINE__, "prepare %s: %s", sql, db_errmsg(c));
    if (arg)
        db_bind_text(st, 1, arg, (size_t)-1);
    int rc = db_step(st);
    int64_t v = rc == LOCI_ROW ? db_col_int64(st, 0) : -1;
    db_stmt_done(st);
    db_release(c);
    return v;
}

static const char *job_status(struct db *db, const char *id)
{
    static char status[32];
    struct db_conn *c = NULL;
    if (db_acquire(db, &c))
        harness_fail(__FILE__, __LINE__, "acquire");
    json_t *j = NULL;
    int rc = jobs_get(c, id, NULL, true, &j);
    db_release(c);
    if (rc)
        return "missing";
    snprintf(status, sizeof(status), "%s", json_string_value(json_object_get(j, "status")));
    json_decref(j);
    return status;
}

struct enq {
    const char *type;
    const char *key;
    const char *user;
    int max_attempts;
    char id[UUID_STR_LEN];
    bool existed;
    bool fail_after;
};

static int tx_enqueue(struct db_conn *c, void *arg)
{
    struct enq *e = arg;
    json_t *p = json_pack("{s:i}", "n", 1);
    struct jobs_spec spec = {.type = e->type,
                             .payload = p,
                             .user_id = e->user,
                             .max_attempts = e->max_attempts,
                             .idempotency_key = e->key};
    int rc = jobs_enqueue(c, &spec, e->id, &e->existed);
    json_decref(p);
    return rc ? rc : e->fail_after ? LOCI_EINVAL : LOCI_OK;
}

static void enqueue(struct db *db, struct enq *e)
{
    if (db_tx(db, tx_enqueue, e) != LOCI_OK)
        harness_fail(__FILE__, __LINE__, "enqueue %s", e->type);
}

static bool wait_for(struct db *db, const char *id, const char *status, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (strcmp(job_status(db, id), status) == 0)
            return true;
        clock_sleep_ms(10);
    }
    return false;
}

static struct jobs *pool(struct db *db, int workers, int64_t lease_ms)
{
    struct jobs_opts o = {.workers = workers,
                          .lease_ms = lease_ms,
                          .backoff_base_ms = 40,
                          .backoff_cap_ms = 100,
                          .poll_ms = 10};
    return jobs_new(db, &o);
}

/* ---- the exactly-once handler pattern ---- */

static int effect_handler(struct job *j, void *arg)
{
    (void)arg;
    struct db_conn *c = NULL;
    int rc = db_acquire(job_db(j), &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == LOCI_OK) {
        struct db_stmt *st = NULL;
        rc = db_prepare(c, "INSERT INTO effects (job_id, pid) VALUES (?, ?)", &st);
        if (rc == LOCI_OK) {
            db_bind_text(st, 1, job_id(j), (size_t)-1);
            db_bind_int64(st, 2, getpid());
            rc = db_step(st);
            db_stmt_done(st);
        }
        if (rc == LOCI_OK)
            rc = job_complete_in_tx(c, j, NULL);
        if (rc == LOCI_OK)
            rc = db_commit(c);
        else
            db_rollback(c);
    }
    db_release(c);
    return rc;
}

static void effects_table(struct db *db)
{
    exec_ok(db, "CREATE TABLE effects (job_id TEXT PRIMARY KEY, pid BIGINT NOT NULL)");
}

static void each_backend(const char *tag, void (*fn)(struct db *db, const char *url))
{
    const char *urls[2];
    int n = harness_db_urls(tag, urls);
    for (int i = 0; i < n; i++) {
        struct db *db = open_db(urls[i], 12);
        fn(db, urls[i]);
        db_close(db);
    }
}

/* ---------------------------------------------------------------- */

static void idempotent_and_transactional(struct db *db, const char *url)
{
    (void)url;
    struct enq a = {.type = "t.idem", .key = "k1"};
    enqueue(db, &a);
    CHECK(!a.existed);
    struct enq b = {.type = "t.idem", .key = "k1"};
    enqueue(db, &b);
    CHECK(b.existed);
    CHECK_STR(b.id, a.id);
    struct enq other = {.type = "t.other", .key = "k1"};
    enqueue(db, &other);
    CHECK(!other.existed && strcmp(other.id, a.id) != 0);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM jobs", NULL), ==, 2);
    /* A rolled-back transaction leaves no job. */
    struct enq rb = {.type = "t.rolled", .fail_after = true};
    CHECK_INT(db_tx(db, tx_enqueue, &rb), ==, LOCI_EINVAL);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM jobs WHERE type = 't.rolled'", NULL), ==, 0);
    /* Bad input changes nothing. */
    struct enq bad = {.type = "Bad Type"};
    CHECK_INT(db_tx(db, tx_enqueue, &bad), ==, LOCI_EINVAL);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM jobs", NULL), ==, 2);
}

TEST(jobs_enqueue_idempotent_and_transactional)
{
    each_backend("jidem", idempotent_and_transactional);
}

struct fail_state {
    atomic_int runs;
    int64_t at[8];
    atomic_bool succeed;
};

static int failing_handler(struct job *j, void *arg)
{
    struct fail_state *fs = arg;
    int n = atomic_fetch_add(&fs->runs, 1);
    if (n < 8)
        fs->at[n] = clock_now_ms();
    if (atomic_load(&fs->succeed))
        return LOCI_OK;
    job_set_error(j, "boom %d", n + 1);
    return LOCI_EIO;
}

static int permanent_handler(struct job *j, void *arg)
{
    (void)arg;
    job_set_error(j, "payload is wrong");
    return LOCI_EINVAL;
}

static void retries_and_dead_letters(struct db *db, const char *url)
{
    (void)url;
    struct fail_state fs = {0};
    struct jobs *js = pool(db, 1, 5000);
    jobs_register(js, "t.fail", failing_handler, &fs);
    jobs_register(js, "t.perm", permanent_handler, NULL);
    struct enq e = {.type = "t.fail", .max_attempts = 3};
    enqueue(db, &e);
    struct enq p = {.type = "t.perm", .max_attempts = 5};
    enqueue(db, &p);
    CHECK_INT(jobs_start(js), ==, LOCI_OK);
    CHECK(wait_for(db, e.id, "dead", 5000));
    CHECK(wait_for(db, p.id, "dead", 5000));
    CHECK_INT(atomic_load(&fs.runs), ==, 3);
    /* Each wait is within the full-jitter bound (+ poll and scheduling slack). */
    for (int i = 1; i < 3; i++) {
        int64_t gap = fs.at[i] - fs.at[i - 1];
        CHECK(gap >= 0);
        CHECK_INT(gap, <=, jobs_backoff_bound(40, 100, i) + 500); /* slack: a loaded CI */
    }
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    json_t *j = NULL;
    CHECK_INT(jobs_get(c, e.id, NULL, true, &j), ==, LOCI_OK);
    CHECK_INT(json_integer_value(json_object_get(j, "attempts")), ==, 3);
    CHECK_STR(json_string_value(json_object_get(j, "last_error")), "boom 3");
    json_decref(j);
    CHECK_INT(jobs_get(c, p.id, NULL, true, &j), ==, LOCI_OK);
    CHECK_INT(json_integer_value(json_object_get(j, "attempts")), ==, 1); /* permanent: no retry */
    json_decref(j);
    /* Admin retry revives it; now it succeeds. */
    atomic_store(&fs.succeed, true);
    CHECK_INT(jobs_retry(c, e.id), ==, LOCI_OK);
    CHECK_INT(jobs_retry(c, e.id), ==, LOCI_ECONFLICT); /* already queued */
    CHECK_INT(jobs_retry(c, "no-such-id"), ==, LOCI_ENOTFOUND);
    db_release(c);
    jobs_wake(js);
    CHECK(wait_for(db, e.id, "completed", 5000));
    CHECK_INT(jobs_stop(js, 1000), ==, 0);
    jobs_free(js);
    CHECK_INT(jobs_backoff_bound(40, 100, 1), ==, 40);
    CHECK_INT(jobs_backoff_bound(40, 100, 2), ==, 80);
    CHECK_INT(jobs_backoff_bound(40, 100, 3), ==, 100);
    CHECK_INT(jobs_backoff_bound(1000, 3600000, 40), ==, 3600000);
}

TEST(jobs_backoff_dead_letters_and_admin_retry)
{
    each_backend("jretry", retries_and_dead_letters);
}

static int slow_handler(struct job *j, void *arg)
{
    atomic_int *started = arg;
    atomic_fetch_add(started, 1);
    for (int i = 0; i < 300 && !job_cancel_requested(j); i++)
        clock_sleep_ms(10);
    return LOCI_OK;
}

static int progress_handler(struct job *j, void *arg)
{
    (void)arg;
    int rc = job_progress(j, 0.5, "half way");
    if (rc)
        return rc;
    json_t *res = json_pack("{s:b}", "ok", 1);
    struct db_conn *c = NULL;
    rc = db_acquire(job_db(j), &c);
    if (rc == LOCI_OK) {
        rc = db_begin(c);
        if (rc == LOCI_OK)
            rc = job_complete_in_tx(c, j, res);
        if (rc == LOCI_OK)
            rc = db_commit(c);
        else
            db_rollback(c);
        db_release(c);
    }
    json_decref(res);
    return rc;
}

static int count_events(const struct event_view *ev, void *arg)
{
    int *n = arg;
    if (strcmp(ev->type, "job.progress") == 0 && strstr(ev->data, "half way"))
        (*n)++;
    return 0;
}

static void cancel_and_progress(struct db *db, const char *url)
{
    (void)url;
    atomic_int started = 0;
    struct jobs *js = pool(db, 2, 300); /* heartbeats every 100 ms */
    jobs_register(js, "t.slow", slow_handler, &started);
    jobs_register(js, "t.progress", progress_handler, NULL);
    struct enq queued = {.type = "t.slow"};
    struct enq running = {.type = "t.slow"};
    struct enq prog = {.type = "t.progress", .user = "user-p"};
    enqueue(db, &running);
    /* Cancel one while still queued (nobody runs yet). */
    enqueue(db, &queued);
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    CHECK_INT(jobs_cancel(c, queued.id), ==, LOCI_OK);
    CHECK_INT(jobs_cancel(c, queued.id), ==, LOCI_ECONFLICT);
    db_release(c);
    CHECK_INT(jobs_start(js), ==, LOCI_OK);
    CHECK(wait_for(db, running.id, "running", 3000));
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    CHECK_INT(jobs_cancel(c, running.id), ==, LOCI_OK);
    db_release(c);
    /* The handler notices through the heartbeat and stops; its completion is
     * refused, so the job stays cancelled. */
    clock_sleep_ms(600);
    CHECK_STR(job_status(db, running.id), "cancelled");
    CHECK_STR(job_status(db, queued.id), "cancelled");
    CHECK_INT(atomic_load(&started), ==, 1);

    enqueue(db, &prog);
    jobs_wake(js);
    CHECK(wait_for(db, prog.id, "completed", 3000));
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    json_t *j = NULL;
    CHECK_INT(jobs_get(c, prog.id, "user-p", false, &j), ==, LOCI_OK);
    CHECK_STR(json_string_value(json_object_get(j, "progress_message")), "half way");
    CHECK(json_is_true(json_object_get(json_object_get(j, "result"), "ok")));
    CHECK(json_object_get(j, "lease_owner") == NULL); /* not shown to users */
    json_decref(j);
    CHECK_INT(jobs_get(c, prog.id, "someone-else", false, &j), ==, LOCI_ENOTFOUND);
    int n = 0;
    int64_t last = 0;
    CHECK_INT(events_read(c, "user-p", 0, 100, count_events, &n, &last), ==, LOCI_OK);
    CHECK_INT(n, ==, 1);
    json_t *list = NULL;
    CHECK_INT(jobs_list(c, "cancelled", "t.slow", NULL, 10, &list), ==, LOCI_OK);
    CHECK_INT(json_array_size(list), ==, 2);
    json_decref(list);
    CHECK_INT(jobs_list(c, "bogus", NULL, NULL, 10, &list), ==, LOCI_EINVAL);
    db_release(c);
    CHECK_INT(jobs_stop(js, 1000), ==, 0);
    jobs_free(js);
}

TEST(jobs_cancel_and_progress)
{
    each_backend("jcancel", cancel_and_progress);
}

/* ---- a worker process killed with SIGKILL mid-job ---- */

static int wedge_fd = -1;

static int wedged_handler(struct job *j, void *arg)
{
    (void)arg;
    struct db_conn *c = NULL;
    if (db_acquire(job_db(j), &c))
        _exit(3);
    db_begin(c);
    struct db_stmt *st = NULL;
    db_prepare(c, "INSERT INTO effects (job_id, pid) VALUES (?, ?)", &st);
    db_bind_text(st, 1, job_id(j), (size_t)-1);
    db_bind_int64(st, 2, getpid());
    db_step(st);
    db_stmt_done(st);
    /* The effect is written but not committed: tell the parent, then hang. */
    if (write(wedge_fd, "x", 1) != 1)
        _exit(4);
    for (;;)
        pause();
    return LOCI_OK;
}

static void killed_worker(struct db *db, const char *url)
{
    effects_table(db);
    struct enq e = {.type = "t.effect", .max_attempts = 3};
    enqueue(db, &e);
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        wedge_fd = p[1];
        struct db *cdb = NULL;
        char err[256];
        if (db_open(url, 4, &cdb, err, sizeof(err)))
            _exit(2);
        struct jobs *js = pool(cdb, 1, 800);
        jobs_register(js, "t.effect", wedged_handler, NULL);
        jobs_start(js);
        for (;;)
            pause();
    }
    close(p[1]);
    char x;
    CHECK_INT(read(p[0], &x, 1), ==, 1); /* the child is mid-job */
    close(p[0]);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    CHECK_STR(job_status(db, e.id), "running"); /* its lease has not expired yet */

    struct jobs *js = pool(db, 2, 800);
    jobs_register(js, "t.effect", effect_handler, NULL);
    CHECK_INT(jobs_start(js), ==, LOCI_OK);
    CHECK(wait_for(db, e.id, "completed", 8000));
    CHECK_INT(jobs_stop(js, 1000), ==, 0);
    jobs_free(js);
    /* Applied once, by this process, on the second attempt. */
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM effects", NULL), ==, 1);
    CHECK_INT(scalar(db, "SELECT pid FROM effects", NULL), ==, getpid());
    CHECK_INT(scalar(db, "SELECT attempts FROM jobs WHERE id = ?", e.id), ==, 2);
}

TEST(jobs_survive_a_worker_killed_mid_job)
{
    each_backend("jkill", killed_worker);
}

/* ---- 1,000 jobs, many workers, exactly once ---- */

#define N_BULK 1000

static int tx_bulk(struct db_conn *c, void *arg)
{
    (void)arg;
    for (int i = 0; i < N_BULK; i++) {
        struct jobs_spec spec = {.type = "t.effect"};
        char id[UUID_STR_LEN];
        int rc = jobs_enqueue(c, &spec, id, NULL);
        if (rc)
            return rc;
    }
    return LOCI_OK;
}

static void drain(struct db *db, const char *url)
{
    effects_table(db);
    CHECK_INT(db_tx(db, tx_bulk, NULL), ==, LOCI_OK);
    pid_t child = -1;
    if (db_backend(db) == DB_POSTGRES) {
        fflush(NULL);
        child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            struct db *cdb = NULL;
            char err[256];
            if (db_open(url, 8, &cdb, err, sizeof(err)))
                _exit(2);
            struct jobs *cjs = pool(cdb, 4, 60000);
            jobs_register(cjs, "t.effect", effect_handler, NULL);
            jobs_start(cjs);
            for (int i = 0; i < 6000; i++) {
                clock_sleep_ms(10);
                if (i % 20 == 0 && scalar(cdb,
                                          "SELECT COUNT(*) FROM jobs WHERE status = "
                                          "'queued'",
                                          NULL) == 0)
                    break;
            }
            jobs_stop(cjs, 5000);
            _exit(0);
        }
    }
    int64_t t0 = clock_mono_ns();
    struct jobs *js = pool(db, 4, 60000);
    jobs_register(js, "t.effect", effect_handler, NULL);
    CHECK_INT(jobs_start(js), ==, LOCI_OK);
    for (int i = 0; i < 6000; i++) {
        if (scalar(db, "SELECT COUNT(*) FROM jobs WHERE status = 'completed'", NULL) == N_BULK)
            break;
        clock_sleep_ms(20);
    }
    double secs = (double)(clock_mono_ns() - t0) / 1e9;
    CHECK_INT(jobs_stop(js, 5000), ==, 0);
    jobs_free(js);
    if (child > 0) {
        int status = 0;
        waitpid(child, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    printf("    %s: %d jobs in %.2f s (%.0f jobs/s)\n", db_backend_name(db), N_BULK, secs,
           N_BULK / secs);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM jobs WHERE status = 'completed'", NULL), ==, N_BULK);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM effects", NULL), ==, N_BULK);
    /* Exactly once: no job needed a second attempt. */
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM jobs WHERE attempts <> 1", NULL), ==, 0);
    if (child > 0) {
        /* Both processes did real work. */
        CHECK_INT(scalar(db, "SELECT COUNT(DISTINCT pid) FROM effects", NULL), ==, 2);
    }
}

TEST(jobs_many_workers_run_each_job_exactly_once)
{
    each_backend("jbulk", drain);
}

/* ---- shutdown releases, reaper returns expired leases ---- */

static int stubborn_handler(struct job *j, void *arg)
{
    (void)j;
    atomic_int *started = arg;
    atomic_fetch_add(started, 1);
    clock_sleep_ms(400); /* ignores cancellation on purpose */
    return LOCI_OK;
}

static void shutdown_and_reap(struct db *db, const char *url)
{
    (void)url;
    atomic_int started = 0;
    struct jobs *js = pool(db, 1, 30000);
    jobs_register(js, "t.stubborn", stubborn_handler, &started);
    struct enq e = {.type = "t.stubborn"};
    enqueue(db, &e);
    CHECK_INT(jobs_start(js), ==, LOCI_OK);
    CHECK(wait_for(db, e.id, "running", 3000));
    CHECK_INT(jobs_stop(js, 50), ==, 1); /* released, handler refused afterwards */
    jobs_free(js);
    CHECK_STR(job_status(db, e.id), "queued");
    CHECK_INT(scalar(db, "SELECT attempts FROM jobs WHERE id = ?", e.id), ==, 0);

    /* A lease that expired (its worker vanished) goes back to the queue. */
    exec_ok(db, "UPDATE jobs SET status = 'running', lease_owner = 'ghost', attempts = 1, "
                "lease_expires_at = 1");
    int n = 0;
    CHECK_INT(jobs_reap_expired(db, clock_now_ms(), &n), ==, LOCI_OK);
    CHECK_INT(n, ==, 1);
    CHECK_STR(job_status(db, e.id), "queued");
    exec_ok(db, "UPDATE jobs SET status = 'running', lease_owner = 'ghost', attempts = 5, "
                "max_attempts = 5, lease_expires_at = 1");
    CHECK_INT(jobs_reap_expired(db, clock_now_ms(), &n), ==, LOCI_OK);
    CHECK_STR(job_status(db, e.id), "dead"); /* out of attempts */
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    int64_t purged = 0;
    CHECK_INT(jobs_purge_finished(c, clock_now_ms() + 1000, &purged), ==, LOCI_OK);
    CHECK_INT(purged, ==, 1);
    db_release(c);
}

TEST(jobs_shutdown_releases_and_reaper_requeues)
{
    each_backend("jstop", shutdown_and_reap);
}

/* ---- scheduler ---- */

static int64_t at(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm) * 1000;
}

static void scheduler(struct db *db, const char *url)
{
    (void)url;
    struct jobs *a = pool(db, 0, 30000);
    struct jobs *b = pool(db, 0, 30000);
    char err[256];
    CHECK_INT(jobs_schedule(a, "five", "*/5 * * * *", "t.tick", NULL, err, sizeof(err)), ==,
              LOCI_OK);
    CHECK_INT(jobs_schedule(b, "five", "*/5 * * * *", "t.tick", NULL, err, sizeof(err)), ==,
              LOCI_OK);
    CHECK_INT(jobs_schedule(a, "bad", "* * *", "t.tick", NULL, err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK(strstr(err, "'bad'") != NULL);
    CHECK_INT(jobs_schedule_overrides(a, "nope=off", err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK_INT(jobs_schedule_overrides(a, "five=99 * * * *", err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK(strstr(err, "five") != NULL);

    int64_t t0 = at(2026, 1, 1, 10, 2);
    CHECK_INT(jobs_scheduler_tick(a, t0), ==, 0); /* first sight: remember, no job */
    CHECK_INT(jobs_scheduler_tick(a, at(2026, 1, 1, 10, 4)), ==, 0);
    CHECK_INT(jobs_scheduler_tick(a, at(2026, 1, 1, 10, 5)), ==, 1);
    CHECK_INT(jobs_scheduler_tick(a, at(2026, 1, 1, 10, 5) + 500), ==, 0);
    /* Another instance on the same tick enqueues nothing more. */
    CHECK_INT(jobs_scheduler_tick(b, at(2026, 1, 1, 10, 5) + 700), ==, 0);
    /* Down for an hour: 12 ticks missed, one job. */
    CHECK_INT(jobs_scheduler_tick(a, at(2026, 1, 1, 11, 7)), ==, 1);
    CHECK_INT(jobs_scheduler_tick(b, at(2026, 1, 1, 11, 8)), ==, 0);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM jobs WHERE type = 't.tick'", NULL), ==, 2);
    CHECK_INT(scalar(db, "SELECT COUNT(*) FROM jobs WHERE idempotency_key = ?",
                     "cron:five:1767265500000"),
              ==, 1); /* 11:05, the latest missed tick */
    /* Turned off by an override: nothing. */
    CHECK_INT(jobs_schedule_overrides(a, "five=off", err, sizeof(err)), ==, LOCI_OK);
    CHECK_INT(jobs_scheduler_tick(a, at(2026, 1, 1, 12, 0)), ==, 0);
    jobs_free(a);
    jobs_free(b);
}

TEST(jobs_scheduler_runs_missed_ticks_once)
{
    each_backend("jsched", scheduler);
}
