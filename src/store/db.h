/*
 * db.h - the only way to SQL in Loci: one API over SQLite and PostgreSQL.
 *
 * Statements are written once with `?` placeholders and run on either
 * backend. Values are bound with typed binds (1-based), rows read with typed
 * column getters (0-based). Where the dialects differ, the difference lives
 * in the backend file (store_sqlite.c, store_pg.c), never in callers.
 *
 * Row locks: write `FOR UPDATE SKIP LOCKED` (exactly so) in a subquery that
 * claims rows; PostgreSQL honours it and SQLite, whose write transactions are
 * already exclusive, drops it.
 *
 * Threads: struct db is safe from any thread. A struct db_conn belongs to
 * the thread that acquired it until db_release(); its statements too.
 *
 * Ownership: db_open() returns a handle freed by db_close(). Statements come
 * from a per-connection cache: finish every statement with db_stmt_done(),
 * which makes it reusable. Memory passed to a bind must stay valid until
 * db_stmt_done(). Text and blobs returned by column getters stay valid until
 * the next db_step() or db_stmt_done().
 */
#ifndef LOCI_STORE_DB_H
#define LOCI_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;
struct db_conn;
struct db_stmt;

enum db_backend { DB_SQLITE, DB_POSTGRES };

/* db_step() result when a row is available (a positive, non-error value). */
#define LOCI_ROW 1

/* Open a database from a URL: "sqlite:PATH", "sqlite://PATH", a plain file
 * path (SQLite), or "postgres://..." / "postgresql://...". pool_size bounds
 * the connections. One connection is made at once so a bad URL or an
 * unreachable server fails here; err gets a message with no password. */
int db_open(const char *url, int pool_size, struct db **out, char *err, size_t err_n);
/* Close every connection and free the handle. No connection may be in use. */
void db_close(struct db *db);

enum db_backend db_backend(const struct db *db);
const char *db_backend_name(const struct db *db);

/* Take a connection from the pool, waiting up to 5 s for one to be free.
 * Broken PostgreSQL connections are re-established here. Returns 0, or
 * LOCI_EUNAVAILABLE when none can be had. */
int db_acquire(struct db *db, struct db_conn **out);
void db_release(struct db_conn *c);
struct db *db_conn_db(struct db_conn *c);

/* A statement for sql (with `?` placeholders) on c. sql must stay valid
 * while the connection lives (use string literals). */
int db_prepare(struct db_conn *c, const char *sql, struct db_stmt **out);
void db_bind_int64(struct db_stmt *st, int idx, int64_t v);
void db_bind_double(struct db_stmt *st, int idx, double v);
/* n == (size_t)-1 means strlen(p). p == NULL binds NULL. */
void db_bind_text(struct db_stmt *st, int idx, const char *p, size_t n);
void db_bind_blob(struct db_stmt *st, int idx, const void *p, size_t n);
void db_bind_null(struct db_stmt *st, int idx);
/* Run or advance: LOCI_ROW with a row to read, LOCI_OK when done, or an
 * error: LOCI_ECONFLICT (unique/foreign key), LOCI_EAGAIN (busy, lock or
 * serialization failure: retry the transaction), LOCI_EUNAVAILABLE (the
 * connection is gone), LOCI_EIO (anything else; see db_errmsg()). */
int db_step(struct db_stmt *st);
int db_col_count(struct db_stmt *st);
bool db_col_is_null(struct db_stmt *st, int col);
int64_t db_col_int64(struct db_stmt *st, int col);
double db_col_double(struct db_stmt *st, int col);
/* Never NULL ("" for NULL values). */
const char *db_col_text(struct db_stmt *st, int col, size_t *out_len);
const void *db_col_blob(struct db_stmt *st, int col, size_t *out_len);
/* Rows changed by the last completed INSERT/UPDATE/DELETE. */
int64_t db_changes(struct db_stmt *st);
/* Run a statement that returns no rows to completion and finish it
 * (db_stmt_done). *out_changes (may be NULL) gets the rows changed. Returns
 * db_step()'s error, or LOCI_OK. */
int db_run(struct db_stmt *st, int64_t *out_changes);
/* db_run(), then LOCI_ENOTFOUND when no row changed. */
int db_run_one(struct db_stmt *st);

/* Reset, clear binds and return the statement to the cache. NULL-safe. */
void db_stmt_done(struct db_stmt *st);

/* Run one or more statements without parameters (DDL, migrations). */
int db_exec(struct db_conn *c, const char *sql);
/* The last error text of this connection (safe to log: no parameters). */
const char *db_errmsg(struct db_conn *c);

/* Transactions. db_begin() starts a write transaction (BEGIN IMMEDIATE on
 * SQLite, so writers queue instead of deadlocking). */
int db_begin(struct db_conn *c);
int db_commit(struct db_conn *c);
int db_rollback(struct db_conn *c);

/* Run fn inside a transaction on a pooled connection: commit when fn
 * returns 0, roll back otherwise. Retries the whole transaction (up to 8
 * times, with jittered back-off) when fn or the commit fails with
 * LOCI_EAGAIN, so fn must be safe to run again. Returns fn's result. */
typedef int (*db_tx_fn)(struct db_conn *c, void *arg);
int db_tx(struct db *db, db_tx_fn fn, void *arg);

/* Serialise transactions on key until this transaction ends
 * (PostgreSQL: pg_advisory_xact_lock; SQLite: writers are already serial). */
int db_xact_lock(struct db_conn *c, int64_t key);

/* Try to take a session-level lock on key for as long as c lives
 * (PostgreSQL: pg_try_advisory_lock; SQLite: always granted, one process).
 * Keep c out of the pool while holding it. Re-taking a held lock succeeds. */
int db_try_session_lock(struct db_conn *c, int64_t key, bool *out_locked);

/* Round trip "SELECT 1"; writes the latency in milliseconds. */
int db_ping(struct db *db, double *out_ms);

/* Apply every embedded migration newer than the database's version.
 * Refuses (LOCI_ESCHEMA, with a message) a database newer than this binary.
 * out_applied: how many were applied now. Safe to run from several
 * processes at once. */
int db_migrate(struct db *db, int *out_applied, char *err, size_t err_n);
/* Highest applied migration version (0 on an empty database). */
int db_schema_version(struct db *db, int64_t *out);
/* Highest version this binary knows for the db's backend. */
int64_t db_schema_latest(const struct db *db);

#endif
