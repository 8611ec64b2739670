/*
 * store_sqlite.c - the SQLite backend: WAL, foreign keys, busy timeout; one
 * connection per pool slot, opened NOMUTEX because a connection is only used
 * by the thread that acquired it.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "store/db_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#define SQ(c)  ((sqlite3 *)(c)->be)
#define SS(st) ((sqlite3_stmt *)(st)->be)

static int map_rc(struct db_conn *c, int rc)
{
    db__set_error(c, sqlite3_errmsg(SQ(c)));
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
        return LOCI_OK;
    case SQLITE_ROW:
        return LOCI_ROW;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return LOCI_EAGAIN;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
            rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return LOCI_ECONFLICT;
        return LOCI_EINVAL;
    case SQLITE_NOMEM:
        return LOCI_ENOMEM;
    case SQLITE_CANTOPEN:
        return LOCI_EUNAVAILABLE;
    default:
        return LOCI_EIO;
    }
}

static int sq_connect(struct db *db, struct db_conn *c, char *err, size_t err_n)
{
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(
        db->target, &h,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, err_n, "cannot open SQLite database '%s': %s", db->target,
                 h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
        sqlite3_close(h);
        return LOCI_EUNAVAILABLE;
    }
    sqlite3_extended_result_codes(h, 1);
    sqlite3_busy_timeout(h, 5000);
    c->be = h;
    static const char *const pragmas = "PRAGMA journal_mode=WAL;"
                                       "PRAGMA synchronous=NORMAL;"
                                       "PRAGMA foreign_keys=ON;"
                                       "PRAGMA temp_store=MEMORY;";
    char *msg = NULL;
    rc = sqlite3_exec(h, pragmas, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, err_n, "cannot configure SQLite database '%s': %s", db->target,
                 msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sqlite3_close(h);
        c->be = NULL;
        return LOCI_EUNAVAILABLE;
    }
    return LOCI_OK;
}

static void sq_disconnect(struct db_conn *c)
{
    sqlite3_close_v2(SQ(c));
    c->be = NULL;
}

/* Row-lock clauses mean nothing to SQLite, where a write transaction is
 * already the only writer: drop them so one statement text serves both. */
static const char *strip_row_locks(const char *sql, struct buf *tmp)
{
    static const char clause[] = " FOR UPDATE SKIP LOCKED";
    const char *hit = strstr(sql, clause);
    if (!hit)
        return sql;
    buf_append(tmp, sql, (size_t)(hit - sql));
    buf_append_str(tmp, hit + sizeof(clause) - 1);
    return buf_cstr(tmp);
}

static int sq_prepare(struct db_conn *c, struct db_stmt *st)
{
    sqlite3_stmt *s = NULL;
    struct buf tmp;
    buf_init(&tmp, 1 << 20);
    int rc = sqlite3_prepare_v3(SQ(c), strip_row_locks(st->sql, &tmp), -1,
                                SQLITE_PREPARE_PERSISTENT, &s, NULL);
    buf_release(&tmp);
    if (rc != SQLITE_OK)
        return map_rc(c, rc);
    st->be = s;
    return LOCI_OK;
}

static void sq_finalize(struct db_stmt *st)
{
    sqlite3_finalize(SS(st));
    st->be = NULL;
}

static int bind_all(struct db_stmt *st)
{
    sqlite3_stmt *s = SS(st);
    for (int i = 0; i < st->n_params; i++) {
        const struct db_param *p = &st->params[i];
        int rc;
        switch (p->type) {
        case DBP_INT:
            rc = sqlite3_bind_int64(s, i + 1, p->i);
            break;
        case DBP_DOUBLE:
            rc = sqlite3_bind_double(s, i + 1, p->d);
            break;
        case DBP_TEXT:
            rc = sqlite3_bind_text64(s, i + 1, p->p, p->n, SQLITE_STATIC, SQLITE_UTF8);
            break;
        case DBP_BLOB:
            rc = sqlite3_bind_blob64(s, i + 1, p->p, p->n, SQLITE_STATIC);
            break;
        default:
            rc = sqlite3_bind_null(s, i + 1);
        }
        if (rc != SQLITE_OK)
            return map_rc(st->conn, rc);
    }
    return LOCI_OK;
}

static int sq_step(struct db_stmt *st)
{
    if (!st->started) {
        int rc = bind_all(st);
        if (rc)
            return rc;
    }
    int rc = sqlite3_step(SS(st));
    if (rc == SQLITE_ROW)
        return LOCI_ROW;
    if (rc == SQLITE_DONE) {
        st->changes = sqlite3_changes64(SQ(st->conn));
        return LOCI_OK;
    }
    return map_rc(st->conn, rc);
}

static void sq_reset(struct db_stmt *st)
{
    sqlite3_reset(SS(st));
    sqlite3_clear_bindings(SS(st));
}

static int sq_col_count(struct db_stmt *st)
{
    return sqlite3_column_count(SS(st));
}

static bool sq_col_is_null(struct db_stmt *st, int col)
{
    return sqlite3_column_type(SS(st), col) == SQLITE_NULL;
}

static int64_t sq_col_int64(struct db_stmt *st, int col)
{
    return sqlite3_column_int64(SS(st), col);
}

static double sq_col_double(struct db_stmt *st, int col)
{
    return sqlite3_column_double(SS(st), col);
}

static const char *sq_col_text(struct db_stmt *st, int col, size_t *out_len)
{
    const unsigned char *t = sqlite3_column_text(SS(st), col);
    if (out_len)
        *out_len = t ? (size_t)sqlite3_column_bytes(SS(st), col) : 0;
    return t ? (const char *)t : "";
}

static const void *sq_col_blob(struct db_stmt *st, int col, size_t *out_len)
{
    const void *b = sqlite3_column_blob(SS(st), col);
    *out_len = b ? (size_t)sqlite3_column_bytes(SS(st), col) : 0;
    return b;
}

static int sq_exec(struct db_conn *c, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(SQ(c), sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int mapped = map_rc(c, sqlite3_extended_errcode(SQ(c)));
        if (msg)
            db__set_error(c, msg);
        sqlite3_free(msg);
        return mapped ? mapped : LOCI_EIO;
    }
    return LOCI_OK;
}

static int sq_xact_lock(struct db_conn *c, int64_t key)
{
    (void)c;
    (void)key;
    /* BEGIN IMMEDIATE already made this transaction the only writer. */
    return LOCI_OK;
}

static int sq_try_session_lock(struct db_conn *c, int64_t key, bool *out_locked)
{
    (void)c;
    (void)key;
    *out_locked = true; /* one process owns an SQLite database */
    return LOCI_OK;
}

const struct db_ops db__sqlite_ops = {
    .name = "sqlite",
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .step = sq_step,
    .reset = sq_reset,
    .col_count = sq_col_count,
    .col_is_null = sq_col_is_null,
    .col_int64 = sq_col_int64,
    .col_double = sq_col_double,
    .col_text = sq_col_text,
    .col_blob = sq_col_blob,
    .exec = sq_exec,
    .begin_sql = "BEGIN IMMEDIATE",
    .xact_lock = sq_xact_lock,
    .try_session_lock = sq_try_session_lock,
};
