/*
 * db.c - the backend-independent half of the store: URL parsing, the
 * connection pool, the statement cache, parameter storage, transactions with
 * retry, and migrations.
 */
#include "store/db.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/db_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static struct metric_family *query_hist;

void db__observe(const struct db *db, double seconds)
{
    const char *labels[] = {db->ops->name};
    metrics_observe(metrics_series(query_hist, labels), seconds);
}

void db__set_error(struct db_conn *c, const char *msg)
{
    snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg ? msg : "unknown error");
    size_t n = strlen(c->errmsg);
    while (n && (c->errmsg[n - 1] == '\n' || c->errmsg[n - 1] == ' '))
        c->errmsg[--n] = '\0';
}

/* Scan SQL, calling on_param at each placeholder outside strings/comments. */
static int scan_sql(const char *sql, struct buf *out)
{
    int n = 0;
    int rc = 0;
    for (const char *p = sql; *p; p++) {
        char c = *p;
        if (c == '\'' || c == '"') {
            const char *q = p + 1;
            while (*q && *q != c)
                q++;
            if (out)
                rc |= buf_append(out, p, (size_t)(q - p) + (*q ? 1 : 0));
            p = *q ? q : q - 1;
            continue;
        }
        if (c == '-' && p[1] == '-') {
            const char *q = p;
            while (*q && *q != '\n')
                q++;
            if (out)
                rc |= buf_append(out, p, (size_t)(q - p));
            p = q - 1;
            continue;
        }
        if (c == '?') {
            n++;
            if (out)
                rc |= buf_printf(out, "$%d", n);
            continue;
        }
        if (out)
            rc |= buf_append_char(out, c);
    }
    return rc ? rc : n;
}

int db__count_params(const char *sql)
{
    return scan_sql(sql, NULL);
}

int db__rewrite_placeholders(const char *sql, struct buf *out)
{
    int rc = scan_sql(sql, out);
    return rc < 0 ? rc : LOCI_OK;
}

static int parse_url(const char *url, struct db *db, char *err, size_t err_n)
{
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        db->ops = &db__pg_ops;
        db->backend = DB_POSTGRES;
        db->target = xstrdup(url);
        return LOCI_OK;
    }
    const char *path = url;
    if (strncmp(url, "sqlite://", 9) == 0)
        path = url + 9;
    else if (strncmp(url, "sqlite:", 7) == 0)
        path = url + 7;
    else if (strstr(url, "://")) {
        snprintf(err, err_n,
                 "unsupported database URL scheme in '%.*s': use sqlite:PATH or postgres://",
                 (int)(strstr(url, "://") - url), url);
        return LOCI_EINVAL;
    }
    if (!*path) {
        snprintf(err, err_n, "empty SQLite path in database URL");
        return LOCI_EINVAL;
    }
    db->ops = &db__sqlite_ops;
    db->backend = DB_SQLITE;
    db->target = xstrdup(path);
    return LOCI_OK;
}

static struct db_conn *conn_new(struct db *db, int slot)
{
    struct db_conn *c = xcalloc(1, sizeof(*c));
    c->db = db;
    c->slot = slot;
    return c;
}

static void conn_close(struct db_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < DB_STMT_CACHE; i++) {
        if (c->cache[i]) {
            c->db->ops->finalize(c->cache[i]);
            xfree(c->cache[i]);
        }
    }
    if (c->be)
        c->db->ops->disconnect(c);
    xfree(c);
}

int db_open(const char *url, int pool_size, struct db **out, char *err, size_t err_n)
{
    *out = NULL;
    if (!query_hist) {
        query_hist =
            metrics_histogram("db_query_duration_seconds", "Time to execute a database statement",
                              "backend", metrics_latency_buckets, metrics_n_latency_buckets);
    }
    struct db *db = xcalloc(1, sizeof(*db));
    int rc = parse_url(url, db, err, err_n);
    if (rc) {
        xfree(db);
        return rc;
    }
    db->pool_size = pool_size > 0 ? pool_size : 1;
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->cv, NULL);
    db->conns = xcalloc((size_t)db->pool_size, sizeof(*db->conns));
    db->is_free = xcalloc((size_t)db->pool_size, sizeof(*db->is_free));
    for (int i = 0; i < db->pool_size; i++)
        db->is_free[i] = true;
    /* Connect one now so that a bad URL fails at start, not on first use. */
    struct db_conn *c = conn_new(db, 0);
    rc = db->ops->connect(db, c, err, err_n);
    if (rc) {
        conn_close(c);
        db_close(db);
        return rc;
    }
    db->conns[0] = c;
    *out = db;
    return LOCI_OK;
}

void db_close(struct db *db)
{
    if (!db)
        return;
    for (int i = 0; i < db->pool_size; i++)
        conn_close(db->conns[i]);
    xfree(db->conns);
    xfree(db->is_free);
    pthread_mutex_destroy(&db->mu);
    pthread_cond_destroy(&db->cv);
    xfree(db->target);
    xfree(db);
}

enum db_backend db_backend(const struct db *db)
{
    return db->backend;
}

const char *db_backend_name(const struct db *db)
{
    return db->ops->name;
}

struct db *db_conn_db(struct db_conn *c)
{
    return c->db;
}

int db_acquire(struct db *db, struct db_conn **out)
{
    *out = NULL;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&db->mu);
    int slot = -1;
    for (;;) {
        /* Prefer a slot that already has a connection. */
        for (int i = 0; i < db->pool_size; i++) {
            if (db->is_free[i] && db->conns[i]) {
                slot = i;
                break;
            }
        }
        if (slot < 0) {
            for (int i = 0; i < db->pool_size; i++) {
                if (db->is_free[i]) {
                    slot = i;
                    break;
                }
            }
        }
        if (slot >= 0)
            break;
        if (pthread_cond_timedwait(&db->cv, &db->mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&db->mu);
            log_warn(NULL, "database pool exhausted after 5 s wait");
            return LOCI_EUNAVAILABLE;
        }
    }
    db->is_free[slot] = false;
    struct db_conn *c = db->conns[slot];
    pthread_mutex_unlock(&db->mu);

    if (c && c->is_broken) {
        conn_close(c);
        c = NULL;
    }
    if (!c) {
        c = conn_new(db, slot);
        char err[512];
        int rc = db->ops->connect(db, c, err, sizeof(err));
        if (rc) {
            log_warn(NULL, "cannot connect to the database: %s", err);
            conn_close(c);
            pthread_mutex_lock(&db->mu);
            db->conns[slot] = NULL;
            db->is_free[slot] = true;
            pthread_cond_signal(&db->cv);
            pthread_mutex_unlock(&db->mu);
            return LOCI_EUNAVAILABLE;
        }
    }
    pthread_mutex_lock(&db->mu);
    db->conns[slot] = c;
    pthread_mutex_unlock(&db->mu);
    *out = c;
    return LOCI_OK;
}

void db_release(struct db_conn *c)
{
    if (!c)
        return;
    struct db *db = c->db;
    pthread_mutex_lock(&db->mu);
    db->is_free[c->slot] = true;
    pthread_cond_signal(&db->cv);
    pthread_mutex_unlock(&db->mu);
}

static uint32_t sql_slot(const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= 0x9e3779b1u;
    return (uint32_t)(h % DB_STMT_CACHE);
}

int db_prepare(struct db_conn *c, const char *sql, struct db_stmt **out)
{
    *out = NULL;
    uint32_t slot = sql_slot(sql);
    struct db_stmt *st = c->cache[slot];
    if (st && st->sql == sql && !st->in_use) {
        st->in_use = true;
        *out = st;
        return LOCI_OK;
    }
    st = xcalloc(1, sizeof(*st));
    st->conn = c;
    st->sql = sql;
    int n = db__count_params(sql);
    if (n < 0 || n > DB_MAX_PARAMS) {
        xfree(st);
        db__set_error(c, "too many parameters in statement");
        return LOCI_EINVAL;
    }
    st->n_params = n;
    int rc = c->db->ops->prepare(c, st);
    if (rc) {
        xfree(st);
        if (rc == LOCI_EUNAVAILABLE)
            c->is_broken = true;
        return rc;
    }
    st->in_use = true;
    /* Cache it unless the slot holds a statement that is busy right now. */
    struct db_stmt *old = c->cache[slot];
    if (!old || !old->in_use) {
        if (old) {
            c->db->ops->finalize(old);
            xfree(old);
        }
        c->cache[slot] = st;
        st->is_cached = true;
    }
    *out = st;
    return LOCI_OK;
}

static struct db_param *param(struct db_stmt *st, int idx)
{
    if (idx < 1 || idx > st->n_params)
        BUG("bind index out of range");
    return &st->params[idx - 1];
}

void db_bind_int64(struct db_stmt *st, int idx, int64_t v)
{
    struct db_param *p = param(st, idx);
    p->type = DBP_INT;
    p->i = v;
}

void db_bind_double(struct db_stmt *st, int idx, double v)
{
    struct db_param *p = param(st, idx);
    p->type = DBP_DOUBLE;
    p->d = v;
}

void db_bind_text(struct db_stmt *st, int idx, const char *s, size_t n)
{
    struct db_param *p = param(st, idx);
    if (!s) {
        p->type = DBP_NULL;
        return;
    }
    p->type = DBP_TEXT;
    p->p = s;
    p->n = n == (size_t)-1 ? strlen(s) : n;
}

void db_bind_blob(struct db_stmt *st, int idx, const void *b, size_t n)
{
    struct db_param *p = param(st, idx);
    p->type = b ? DBP_BLOB : DBP_NULL;
    p->p = b;
    p->n = n;
}

void db_bind_null(struct db_stmt *st, int idx)
{
    param(st, idx)->type = DBP_NULL;
}

int db_step(struct db_stmt *st)
{
    int64_t t0 = st->started ? 0 : clock_mono_ns();
    int rc = st->conn->db->ops->step(st);
    if (t0)
        db__observe(st->conn->db, (double)(clock_mono_ns() - t0) / 1e9);
    st->started = true;
    if (rc == LOCI_EUNAVAILABLE)
        st->conn->is_broken = true;
    return rc;
}

int db_col_count(struct db_stmt *st)
{
    return st->conn->db->ops->col_count(st);
}

bool db_col_is_null(struct db_stmt *st, int col)
{
    return st->conn->db->ops->col_is_null(st, col);
}

int64_t db_col_int64(struct db_stmt *st, int col)
{
    return st->conn->db->ops->col_int64(st, col);
}

double db_col_double(struct db_stmt *st, int col)
{
    return st->conn->db->ops->col_double(st, col);
}

const char *db_col_text(struct db_stmt *st, int col, size_t *out_len)
{
    return st->conn->db->ops->col_text(st, col, out_len);
}

const void *db_col_blob(struct db_stmt *st, int col, size_t *out_len)
{
    return st->conn->db->ops->col_blob(st, col, out_len);
}

int64_t db_changes(struct db_stmt *st)
{
    return st->changes;
}

int db_run(struct db_stmt *st, int64_t *out_changes)
{
    int rc = db_step(st);
    if (rc == LOCI_ROW)
        rc = LOCI_OK; /* RETURNING rows nobody asked for */
    if (out_changes)
        *out_changes = st->changes;
    db_stmt_done(st);
    return rc;
}

int db_run_one(struct db_stmt *st)
{
    int64_t n = 0;
    int rc = db_run(st, &n);
    return rc ? rc : n > 0 ? LOCI_OK : LOCI_ENOTFOUND;
}

void db_stmt_done(struct db_stmt *st)
{
    if (!st)
        return;
    struct db_conn *c = st->conn;
    c->db->ops->reset(st);
    memset(st->params, 0, sizeof(st->params));
    st->started = false;
    st->changes = 0;
    st->in_use = false;
    if (!st->is_cached) {
        c->db->ops->finalize(st);
        xfree(st);
    }
}

int db_exec(struct db_conn *c, const char *sql)
{
    int64_t t0 = clock_mono_ns();
    int rc = c->db->ops->exec(c, sql);
    db__observe(c->db, (double)(clock_mono_ns() - t0) / 1e9);
    if (rc == LOCI_EUNAVAILABLE)
        c->is_broken = true;
    return rc;
}

const char *db_errmsg(struct db_conn *c)
{
    return c->errmsg;
}

int db_begin(struct db_conn *c)
{
    return db_exec(c, c->db->ops->begin_sql);
}

int db_commit(struct db_conn *c)
{
    return db_exec(c, "COMMIT");
}

int db_rollback(struct db_conn *c)
{
    return db_exec(c, "ROLLBACK");
}

int db_xact_lock(struct db_conn *c, int64_t key)
{
    return c->db->ops->xact_lock(c, key);
}

int db_try_session_lock(struct db_conn *c, int64_t key, bool *out_locked)
{
    *out_locked = false;
    int rc = c->db->ops->try_session_lock(c, key, out_locked);
    if (rc == LOCI_EUNAVAILABLE)
        c->is_broken = true;
    return rc;
}

int db_tx(struct db *db, db_tx_fn fn, void *arg)
{
    int rc = LOCI_EAGAIN;
    for (int attempt = 0; attempt < 8; attempt++) {
        if (attempt > 0) {
            unsigned r;
            ids_random(&r, sizeof(r));
            int64_t cap = 2LL << (attempt < 6 ? attempt : 6); /* ms */
            clock_sleep_ms(1 + (int64_t)(r % (unsigned)cap));
        }
        struct db_conn *c = NULL;
        rc = db_acquire(db, &c);
        if (rc)
            return rc;
        rc = db_begin(c);
        if (rc == LOCI_EUNAVAILABLE && attempt == 0) {
            /* A stale pooled connection: nothing ran, try a fresh one. */
            db_release(c);
            rc = LOCI_EAGAIN;
            continue;
        }
        if (rc == LOCI_OK) {
            rc = fn(c, arg);
            if (rc == LOCI_OK)
                rc = db_commit(c);
            if (rc != LOCI_OK) {
                int rb = db_rollback(c);
                if (rb && rb != LOCI_EUNAVAILABLE)
                    log_warn(NULL, "rollback failed: %s", db_errmsg(c));
            }
        }
        db_release(c);
        if (rc != LOCI_EAGAIN)
            return rc;
    }
    return rc;
}

int db_ping(struct db *db, double *out_ms)
{
    int rc = LOCI_EUNAVAILABLE;
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t t0 = clock_mono_ns();
        struct db_conn *c = NULL;
        rc = db_acquire(db, &c);
        if (rc)
            return rc;
        struct db_stmt *st = NULL;
        rc = db_prepare(c, "SELECT 1", &st);
        if (rc == LOCI_OK) {
            rc = db_step(st);
            if (rc == LOCI_ROW)
                rc = db_col_int64(st, 0) == 1 ? LOCI_OK : LOCI_EIO;
            db_stmt_done(st);
        }
        db_release(c);
        *out_ms = (double)(clock_mono_ns() - t0) / 1e6;
        if (rc == LOCI_OK || rc != LOCI_EUNAVAILABLE)
            break;
        /* The pooled connection died; a retry reconnects once. */
    }
    return rc == LOCI_OK ? LOCI_OK : LOCI_EUNAVAILABLE;
}

static void migrations_for(const struct db *db, const struct db_migration **out, size_t *out_n)
{
    if (db->backend == DB_POSTGRES) {
        *out = db__migrations_postgres;
        *out_n = db__n_migrations_postgres;
    } else {
        *out = db__migrations_sqlite;
        *out_n = db__n_migrations_sqlite;
    }
}

int64_t db_schema_latest(const struct db *db)
{
    const struct db_migration *m;
    size_t n;
    migrations_for(db, &m, &n);
    return n ? m[n - 1].version : 0;
}

static int current_version(struct db_conn *c, int64_t *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &st);
    if (rc)
        return rc;
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        *out = db_col_int64(st, 0);
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_EIO;
    }
    db_stmt_done(st);
    return rc;
}

int db_schema_version(struct db *db, int64_t *out)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    if (rc)
        return rc;
    rc = current_version(c, out);
    db_release(c);
    return rc;
}

/* Lock key for migrations: "loci-mig" as an integer. */
#define MIGRATION_LOCK_KEY 0x6c6f63692d6d6967LL

struct mig_ctx {
    const struct db_migration *m;
    int *applied;
    char *err;
    size_t err_n;
};

static int apply_one(struct db_conn *c, void *arg)
{
    struct mig_ctx *mc = arg;
    int rc = db_xact_lock(c, MIGRATION_LOCK_KEY);
    if (rc)
        return rc;
    /* Another process may have applied it while we waited for the lock. */
    int64_t cur = 0;
    rc = current_version(c, &cur);
    if (rc)
        return rc;
    if (cur >= mc->m->version)
        return LOCI_OK;
    rc = db_exec(c, mc->m->sql);
    if (rc) {
        snprintf(mc->err, mc->err_n, "migration %04lld_%s failed: %s", (long long)mc->m->version,
                 mc->m->name, db_errmsg(c));
        return rc;
    }
    struct db_stmt *st = NULL;
    rc = db_prepare(c, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, mc->m->version);
    db_bind_text(st, 2, mc->m->name, (size_t)-1);
    db_bind_int64(st, 3, clock_now_ms());
    rc = db_step(st);
    db_stmt_done(st);
    if (rc == LOCI_OK)
        (*mc->applied)++;
    return rc;
}

int db_migrate(struct db *db, int *out_applied, char *err, size_t err_n)
{
    *out_applied = 0;
    err[0] = '\0';
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    if (rc) {
        snprintf(err, err_n, "database unavailable");
        return rc;
    }
    rc = db_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
    if (rc == LOCI_ECONFLICT && db->backend == DB_POSTGRES)
        rc = LOCI_OK; /* two processes raced on CREATE TABLE IF NOT EXISTS */
    int64_t cur = 0;
    if (!rc)
        rc = current_version(c, &cur);
    if (rc)
        snprintf(err, err_n, "cannot read schema_migrations: %s", db_errmsg(c));
    db_release(c);
    if (rc)
        return rc;

    const struct db_migration *m;
    size_t n;
    migrations_for(db, &m, &n);
    int64_t latest = n ? m[n - 1].version : 0;
    if (cur > latest) {
        snprintf(err, err_n,
                 "the database schema is at version %lld but this binary knows only up to %lld: "
                 "upgrade loci (refusing to run an old binary on a newer database)",
                 (long long)cur, (long long)latest);
        return LOCI_ESCHEMA;
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].version <= cur)
            continue;
        struct mig_ctx mc = {&m[i], out_applied, err, err_n};
        rc = db_tx(db, apply_one, &mc);
        if (rc) {
            if (!err[0])
                snprintf(err, err_n, "migration %04lld_%s failed", (long long)m[i].version,
                         m[i].name);
            return rc;
        }
    }
    return LOCI_OK;
}
