/*
 * bench_jobs.c - throughput of the durable job queue (services/jobs) on one
 * database: how fast jobs go in, and how fast a worker pool leases, runs (a
 * no-op handler) and completes them.
 *
 * Usage: bench_jobs DATABASE_URL [N_JOBS=10000] [WORKERS=4]
 *
 * The database is migrated, then must hold no jobs. Figures, in order:
 *   enqueue_single  min(N, 1000) jobs, one transaction per job (what an API
 *                   request that enqueues does); then deleted again
 *   enqueue_batch   N jobs, 100 per transaction, no workers running
 *   drain           a pool of WORKERS workers started on the N queued jobs,
 *                   until all are completed (a poller counts completed rows
 *                   every 20 ms, so the time is rounded up by up to 20 ms)
 *   combined        N / (enqueue_batch time + drain time)
 * Each is printed in a table and as one machine-readable line
 * "RESULT backend=... figure=... jobs=... seconds=... jobs_per_s=...".
 * The run fails unless every job is completed exactly once.
 *
 * Not for measuring handlers with real work, or enqueue and drain running
 * at the same time. Logs at warn (BENCH_LOG_LEVEL overrides) so that the
 * per-job "job finished" info line is not part of the cost.
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "services/jobs/jobs.h"
#include "store/db.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define BENCH_TYPE      "bench.noop"
#define SINGLE_TYPE     "bench.single"
#define BATCH_SIZE      100
#define SINGLE_MAX      1000
#define COUNT_EVERY_MS  20
#define STALL_LIMIT_MS  60000
#define DRAIN_POLL_MS   5
#define DRAIN_LEASE_MS  30000
#define STOP_TIMEOUT_MS 5000

/* CPU seconds: this process, and the whole machine (all cores, busy). */
struct cpu_mark {
    double self_s;
    double machine_s;
};

struct phase {
    const char *figure;
    const char *label;
    long jobs;
    double seconds;
    double self_cores;    /* this process's CPU / wall time */
    double machine_cores; /* every process's CPU / wall time */
};

struct batch {
    long first;
    long n;
    const char *type;
};

static int parse_long(const char *s, const char *what, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bench_jobs: %s must be an integer in %ld..%ld, not '%s'\n", what, min, max,
                s);
        return LOCI_EINVAL;
    }
    *out = v;
    return LOCI_OK;
}

static double machine_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8)
        return 0;
    /* user nice system idle iowait irq softirq steal: all but idle, iowait */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    long hz = sysconf(_SC_CLK_TCK);
    return (double)busy / (double)(hz > 0 ? hz : 100);
}

static struct cpu_mark cpu_now(void)
{
    struct rusage ru;
    struct cpu_mark m = {0, machine_busy_s()};
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        m.self_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    return m;
}

static void phase_end(struct phase *p, int64_t t0_ns, struct cpu_mark c0)
{
    p->seconds = (double)(clock_mono_ns() - t0_ns) / 1e9;
    struct cpu_mark c1 = cpu_now();
    if (p->seconds > 0) {
        p->self_cores = (c1.self_s - c0.self_s) / p->seconds;
        p->machine_cores = (c1.machine_s - c0.machine_s) / p->seconds;
    }
}

static double rate(const struct phase *p)
{
    return p->seconds > 0 ? (double)p->jobs / p->seconds : 0;
}

static int exec_sql(struct db *db, const char *sql)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    if (rc)
        return rc;
    rc = db_exec(c, sql);
    if (rc)
        fprintf(stderr, "bench_jobs: '%s': %s\n", sql, db_errmsg(c));
    db_release(c);
    return rc;
}

/* One integer from sql (a literal, one `?` bound to arg when arg is set);
 * -1 on any error. */
static int64_t scalar(struct db *db, const char *sql, const char *arg)
{
    struct db_conn *c = NULL;
    if (db_acquire(db, &c))
        return -1;
    struct db_stmt *st = NULL;
    int64_t v = -1;
    if (db_prepare(c, sql, &st) == LOCI_OK) {
        if (arg)
            db_bind_text(st, 1, arg, (size_t)-1);
        if (db_step(st) == LOCI_ROW)
            v = db_col_int64(st, 0);
    }
    db_stmt_done(st);
    db_release(c);
    return v;
}

static int tx_enqueue(struct db_conn *c, void *arg)
{
    const struct batch *b = arg;
    int rc = LOCI_OK;
    for (long i = 0; i < b->n && rc == LOCI_OK; i++) {
        json_t *payload = json_pack("{s:I}", "i", (json_int_t)(b->first + i));
        struct jobs_spec spec = {.type = b->type, .payload = payload};
        char id[UUID_STR_LEN];
        rc = jobs_enqueue(c, &spec, id, NULL);
        json_decref(payload);
    }
    return rc;
}

static int enqueue(struct db *db, const char *type, long n_jobs, long per_tx)
{
    for (long first = 0; first < n_jobs; first += per_tx) {
        struct batch b = {first, n_jobs - first < per_tx ? n_jobs - first : per_tx, type};
        int rc = db_tx(db, tx_enqueue, &b);
        if (rc) {
            fprintf(stderr, "bench_jobs: enqueue failed at job %ld: %s\n", first,
                    loci_err_message(rc));
            return rc;
        }
    }
    return LOCI_OK;
}

static int noop_handler(struct job *j, void *arg)
{
    (void)j;
    atomic_long *runs = arg;
    atomic_fetch_add(runs, 1);
    return LOCI_OK;
}

/* Start a pool on the queued jobs and wait until n_jobs are completed.
 * out_half_s: seconds until half of them were. */
static int drain(struct db *db, long n_jobs, int workers, struct phase *p, double *out_half_s,
                 atomic_long *runs)
{
    struct jobs_opts o = {.workers = workers,
                          .lease_ms = DRAIN_LEASE_MS,
                          .backoff_base_ms = 1000,
                          .backoff_cap_ms = 1000,
                          .poll_ms = DRAIN_POLL_MS};
    struct jobs *js = jobs_new(db, &o);
    jobs_register(js, BENCH_TYPE, noop_handler, runs);
    struct cpu_mark c0 = cpu_now();
    int64_t t0 = clock_mono_ns();
    int rc = jobs_start(js);
    if (rc) {
        fprintf(stderr, "bench_jobs: jobs_start: %s\n", loci_err_message(rc));
        jobs_free(js);
        return rc;
    }
    int64_t done = 0, last_done = -1, last_progress_ns = t0;
    *out_half_s = 0;
    while (done < n_jobs) {
        clock_sleep_ms(COUNT_EVERY_MS);
        done = scalar(db, "SELECT COUNT(*) FROM jobs WHERE status = 'completed'", NULL);
        int64_t now = clock_mono_ns();
        if (done < 0) {
            fprintf(stderr, "bench_jobs: cannot count completed jobs\n");
            rc = LOCI_EIO;
            break;
        }
        if (*out_half_s == 0 && done * 2 >= n_jobs)
            *out_half_s = (double)(now - t0) / 1e9;
        if (done != last_done) {
            last_done = done;
            last_progress_ns = now;
        } else if ((now - last_progress_ns) / 1000000 > STALL_LIMIT_MS) {
            fprintf(stderr, "bench_jobs: no progress for %d s at %lld of %ld completed\n",
                    STALL_LIMIT_MS / 1000, (long long)done, n_jobs);
            rc = LOCI_EIO;
            break;
        }
    }
    phase_end(p, t0, c0);
    int released = jobs_stop(js, STOP_TIMEOUT_MS);
    jobs_free(js);
    if (rc == LOCI_OK && released != 0) {
        fprintf(stderr, "bench_jobs: %d jobs still running at stop\n", released);
        rc = LOCI_EIO;
    }
    return rc;
}

/* Every bench job completed, each on its first attempt, each handler run
 * once. */
static int verify(struct db *db, long n_jobs, long runs)
{
    int64_t completed =
        scalar(db, "SELECT COUNT(*) FROM jobs WHERE type = ? AND status = 'completed'", BENCH_TYPE);
    int64_t attempts = scalar(db, "SELECT SUM(attempts) FROM jobs WHERE type = ?", BENCH_TYPE);
    int64_t total = scalar(db, "SELECT COUNT(*) FROM jobs", NULL);
    if (completed != n_jobs || attempts != n_jobs || total != n_jobs || runs != n_jobs) {
        fprintf(stderr,
                "bench_jobs: FAIL: %lld completed, %lld attempts, %lld rows, %ld handler runs "
                "(want %ld of each)\n",
                (long long)completed, (long long)attempts, (long long)total, runs, n_jobs);
        return LOCI_EIO;
    }
    return LOCI_OK;
}

static void print_report(const char *backend, long n_jobs, int workers, const struct phase *ph,
                         int n_phases, double half_s)
{
    printf("\njob queue throughput: %s, %ld jobs, %d workers, no-op handler\n\n", backend, n_jobs,
           workers);
    printf("%-42s %7s %9s %10s %11s %11s\n", "figure", "jobs", "seconds", "jobs/s", "cores:self",
           "cores:all");
    for (int i = 0; i < n_phases; i++)
        printf("%-42s %7ld %9.3f %10.0f %11.2f %11.2f\n", ph[i].label, ph[i].jobs, ph[i].seconds,
               rate(&ph[i]), ph[i].self_cores, ph[i].machine_cores);
    const struct phase *d = &ph[2];
    if (half_s > 0 && d->seconds > half_s)
        printf("%-42s %7s %9s %4.0f / %-5.0f\n", "  drain: first half / second half", "", "",
               (double)(n_jobs / 2) / half_s,
               (double)(n_jobs - n_jobs / 2) / (d->seconds - half_s));
    printf("\n(cores:self = this process's CPU time / wall time; cores:all = the whole\n"
           "machine's busy time / wall time, including the database server)\n\n");
    for (int i = 0; i < n_phases; i++)
        printf("RESULT backend=%s figure=%s jobs=%ld workers=%d seconds=%.4f jobs_per_s=%.0f "
               "self_cores=%.2f machine_cores=%.2f\n",
               backend, ph[i].figure, ph[i].jobs, workers, ph[i].seconds, rate(&ph[i]),
               ph[i].self_cores, ph[i].machine_cores);
    if (half_s > 0 && d->seconds > half_s)
        printf("RESULT backend=%s figure=drain_first_half jobs=%ld workers=%d seconds=%.4f "
               "jobs_per_s=%.0f\n"
               "RESULT backend=%s figure=drain_second_half jobs=%ld workers=%d seconds=%.4f "
               "jobs_per_s=%.0f\n",
               backend, n_jobs / 2, workers, half_s, (double)(n_jobs / 2) / half_s, backend,
               n_jobs - n_jobs / 2, workers, d->seconds - half_s,
               (double)(n_jobs - n_jobs / 2) / (d->seconds - half_s));
}

static int run(struct db *db, long n_jobs, int workers)
{
    if (scalar(db, "SELECT COUNT(*) FROM jobs", NULL) != 0) {
        fprintf(stderr, "bench_jobs: the jobs table is not empty; use a fresh database\n");
        return LOCI_EINVAL;
    }
    struct phase ph[4] = {
        {.figure = "enqueue_single", .label = "enqueue, 1 job per transaction"},
        {.figure = "enqueue_batch", .label = "enqueue, 100 jobs per transaction"},
        {.figure = "drain", .label = "drain: lease + no-op + complete"},
        {.figure = "combined", .label = "enqueue + lease + complete (batch + drain)"},
    };

    /* (d) one job per transaction, then gone again so the drain sees N. */
    ph[0].jobs = n_jobs < SINGLE_MAX ? n_jobs : SINGLE_MAX;
    struct cpu_mark c0 = cpu_now();
    int64_t t0 = clock_mono_ns();
    int rc = enqueue(db, SINGLE_TYPE, ph[0].jobs, 1);
    if (rc)
        return rc;
    phase_end(&ph[0], t0, c0);
    rc = exec_sql(db, "DELETE FROM jobs");
    if (rc == LOCI_OK)
        rc = exec_sql(db, "VACUUM");
    if (rc)
        return rc;

    /* (a) batches of 100 */
    ph[1].jobs = n_jobs;
    c0 = cpu_now();
    t0 = clock_mono_ns();
    rc = enqueue(db, BENCH_TYPE, n_jobs, BATCH_SIZE);
    if (rc)
        return rc;
    phase_end(&ph[1], t0, c0);

    /* (b) drain */
    ph[2].jobs = n_jobs;
    double half_s = 0;
    atomic_long runs = 0;
    rc = drain(db, n_jobs, workers, &ph[2], &half_s, &runs);
    if (rc)
        return rc;
    rc = verify(db, n_jobs, atomic_load(&runs));
    if (rc)
        return rc;

    /* (c) both, as one figure */
    ph[3].jobs = n_jobs;
    ph[3].seconds = ph[1].seconds + ph[2].seconds;
    if (ph[3].seconds > 0) {
        ph[3].self_cores =
            (ph[1].self_cores * ph[1].seconds + ph[2].self_cores * ph[2].seconds) / ph[3].seconds;
        ph[3].machine_cores =
            (ph[1].machine_cores * ph[1].seconds + ph[2].machine_cores * ph[2].seconds) /
            ph[3].seconds;
    }
    print_report(db_backend_name(db), n_jobs, workers, ph, 4, half_s);
    return LOCI_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: bench_jobs DATABASE_URL [N_JOBS=10000] [WORKERS=4]\n");
        return 2;
    }
    long n_jobs = 10000, workers = 4;
    if ((argc > 2 && parse_long(argv[2], "N_JOBS", 1, 10000000, &n_jobs)) ||
        (argc > 3 && parse_long(argv[3], "WORKERS", 1, 64, &workers)))
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    enum log_level level = LOG_WARN;
    const char *lv = getenv("BENCH_LOG_LEVEL");
    if (lv && log_parse_level(lv, &level)) {
        fprintf(stderr, "bench_jobs: BENCH_LOG_LEVEL must be debug, info, warn or error\n");
        return 2;
    }
    log_set_level(level);

    struct db *db = NULL;
    char err[512];
    /* workers, the maintenance thread, the counting thread, and slack */
    if (db_open(argv[1], (int)workers + 4, &db, err, sizeof(err))) {
        fprintf(stderr, "bench_jobs: %s\n", err);
        return 1;
    }
    int applied = 0;
    int rc = db_migrate(db, &applied, err, sizeof(err));
    if (rc)
        fprintf(stderr, "bench_jobs: migrate: %s\n", err);
    else
        rc = run(db, n_jobs, (int)workers);
    db_close(db);
    return rc ? 1 : 0;
}
