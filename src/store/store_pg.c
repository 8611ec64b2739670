/*
 * store_pg.c - the PostgreSQL backend over libpq: named prepared statements
 * per connection (the cache in db.c keeps them), text-format parameters
 * except blobs, text-format results decoded by the column getters.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "store/db_int.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg_conn {
    PGconn *pg;
    unsigned next_name; /* statement names are unique per connection */
};

struct pg_stmt {
    char name[24];
    PGresult *res;
    int row; /* current row, -1 before the first */
    int n_rows;
    struct buf scratch; /* parameter text */
    struct buf blob;    /* decoded bytea of the last db_col_blob */
};

#define PC(c)  ((struct pg_conn *)(c)->be)
#define PS(st) ((struct pg_stmt *)(st)->be)

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int map_result(struct db_conn *c, PGresult *res)
{
    PGconn *pg = PC(c)->pg;
    if (!res) {
        db__set_error(c, PQerrorMessage(pg));
        return PQstatus(pg) == CONNECTION_BAD ? LOCI_EUNAVAILABLE : LOCI_EIO;
    }
    ExecStatusType s = PQresultStatus(res);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY)
        return LOCI_OK;
    db__set_error(c, PQresultErrorMessage(res));
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (PQstatus(pg) == CONNECTION_BAD || !state)
        return LOCI_EUNAVAILABLE;
    if (strcmp(state, "23505") == 0 || strcmp(state, "23503") == 0)
        return LOCI_ECONFLICT;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
        return LOCI_EAGAIN;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        return LOCI_EUNAVAILABLE;
    if (strncmp(state, "22", 2) == 0 || strcmp(state, "23502") == 0 || strcmp(state, "23514") == 0)
        return LOCI_EINVAL;
    return LOCI_EIO;
}

static int pg_connect(struct db *db, struct db_conn *c, char *err, size_t err_n)
{
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"5", "loci", db->target, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        char masked[512];
        /* libpq's message names host and port but never the password. */
        snprintf(masked, sizeof(masked), "%s", pg ? PQerrorMessage(pg) : "out of memory");
        size_t n = strlen(masked);
        while (n && (masked[n - 1] == '\n' || masked[n - 1] == ' '))
            masked[--n] = '\0';
        snprintf(err, err_n, "cannot connect to PostgreSQL: %s", masked);
        PQfinish(pg);
        return LOCI_EUNAVAILABLE;
    }
    PQsetNoticeProcessor(pg, quiet_notices, NULL);
    struct pg_conn *pc = xcalloc(1, sizeof(*pc));
    pc->pg = pg;
    c->be = pc;
    /* Same wall clock everywhere; UTC for anything time-zoned. */
    PGresult *r = PQexec(pg, "SET TIME ZONE 'UTC'");
    int rc = map_result(c, r);
    PQclear(r);
    if (rc) {
        snprintf(err, err_n, "cannot configure PostgreSQL session: %s", c->errmsg);
        PQfinish(pg);
        xfree(pc);
        c->be = NULL;
        return LOCI_EUNAVAILABLE;
    }
    return LOCI_OK;
}

static void pg_disconnect(struct db_conn *c)
{
    PQfinish(PC(c)->pg);
    xfree(c->be);
    c->be = NULL;
}

static int pg_prepare(struct db_conn *c, struct db_stmt *st)
{
    struct buf sql;
    buf_init(&sql, 1 << 20);
    int rc = db__rewrite_placeholders(st->sql, &sql);
    if (rc) {
        buf_release(&sql);
        return rc;
    }
    struct pg_stmt *ps = xcalloc(1, sizeof(*ps));
    snprintf(ps->name, sizeof(ps->name), "l%u", PC(c)->next_name++);
    ps->row = -1;
    buf_init(&ps->scratch, 1 << 30);
    buf_init(&ps->blob, (size_t)1 << 31);
    PGresult *r = PQprepare(PC(c)->pg, ps->name, buf_cstr(&sql), st->n_params, NULL);
    rc = map_result(c, r);
    PQclear(r);
    buf_release(&sql);
    if (rc) {
        buf_release(&ps->scratch);
        buf_release(&ps->blob);
        xfree(ps);
        return rc;
    }
    st->be = ps;
    return LOCI_OK;
}

static void pg_finalize(struct db_stmt *st)
{
    struct pg_stmt *ps = PS(st);
    if (!ps)
        return;
    PQclear(ps->res);
    struct db_conn *c = st->conn;
    if (c->be && PQstatus(PC(c)->pg) == CONNECTION_OK && !c->is_broken) {
        char sql[48];
        snprintf(sql, sizeof(sql), "DEALLOCATE %s", ps->name);
        PQclear(PQexec(PC(c)->pg, sql));
    }
    buf_release(&ps->scratch);
    buf_release(&ps->blob);
    xfree(ps);
    st->be = NULL;
}

static int pg_execute(struct db_stmt *st)
{
    struct pg_stmt *ps = PS(st);
    const char *values[DB_MAX_PARAMS];
    int lengths[DB_MAX_PARAMS];
    int formats[DB_MAX_PARAMS];
    size_t offsets[DB_MAX_PARAMS];
    buf_reset(&ps->scratch);
    /* First lay all text out in scratch (it may move while growing)... */
    for (int i = 0; i < st->n_params; i++) {
        const struct db_param *p = &st->params[i];
        offsets[i] = (size_t)-1;
        int rc = 0;
        if (p->type == DBP_INT) {
            offsets[i] = ps->scratch.len;
            rc = buf_printf(&ps->scratch, "%lld", (long long)p->i);
        } else if (p->type == DBP_DOUBLE) {
            offsets[i] = ps->scratch.len;
            rc = buf_printf(&ps->scratch, "%.17g", p->d);
        } else if (p->type == DBP_TEXT) {
            offsets[i] = ps->scratch.len;
            rc = buf_append(&ps->scratch, p->p, p->n);
        }
        if (!rc && offsets[i] != (size_t)-1)
            rc = buf_append_char(&ps->scratch, '\0');
        if (rc)
            return LOCI_ETOOBIG;
    }
    /* ...then point into it. */
    for (int i = 0; i < st->n_params; i++) {
        const struct db_param *p = &st->params[i];
        formats[i] = 0;
        lengths[i] = 0;
        if (p->type == DBP_BLOB) {
            values[i] = p->n ? p->p : "";
            lengths[i] = (int)p->n;
            formats[i] = 1;
        } else if (offsets[i] != (size_t)-1) {
            values[i] = ps->scratch.p + offsets[i];
        } else {
            values[i] = NULL;
        }
    }
    PQclear(ps->res);
    ps->res = PQexecPrepared(PC(st->conn)->pg, ps->name, st->n_params, values, lengths, formats, 0);
    int rc = map_result(st->conn, ps->res);
    if (rc) {
        PQclear(ps->res);
        ps->res = NULL;
        return rc;
    }
    ps->row = -1;
    ps->n_rows = PQntuples(ps->res);
    const char *ct = PQcmdTuples(ps->res);
    st->changes = ct && *ct ? strtoll(ct, NULL, 10) : 0;
    return LOCI_OK;
}

static int pg_step(struct db_stmt *st)
{
    struct pg_stmt *ps = PS(st);
    if (!st->started) {
        int rc = pg_execute(st);
        if (rc)
            return rc;
    }
    if (!ps->res)
        return LOCI_OK;
    ps->row++;
    return ps->row < ps->n_rows ? LOCI_ROW : LOCI_OK;
}

static void pg_reset(struct db_stmt *st)
{
    struct pg_stmt *ps = PS(st);
    PQclear(ps->res);
    ps->res = NULL;
    ps->row = -1;
    ps->n_rows = 0;
    /* Keep memory bounded for cached statements after a big blob. */
    if (ps->blob.cap > 1 << 20)
        buf_release(&ps->blob);
    if (ps->scratch.cap > 1 << 20)
        buf_release(&ps->scratch);
}

static bool in_row(struct db_stmt *st, int col)
{
    struct pg_stmt *ps = PS(st);
    return ps->res && ps->row >= 0 && ps->row < ps->n_rows && col >= 0 && col < PQnfields(ps->res);
}

static int pg_col_count(struct db_stmt *st)
{
    return PS(st)->res ? PQnfields(PS(st)->res) : 0;
}

static bool pg_col_is_null(struct db_stmt *st, int col)
{
    return !in_row(st, col) || PQgetisnull(PS(st)->res, PS(st)->row, col);
}

static int64_t pg_col_int64(struct db_stmt *st, int col)
{
    if (pg_col_is_null(st, col))
        return 0;
    const char *v = PQgetvalue(PS(st)->res, PS(st)->row, col);
    if (v[0] == 't' && v[1] == '\0')
        return 1;
    if (v[0] == 'f' && v[1] == '\0')
        return 0;
    return strtoll(v, NULL, 10);
}

static double pg_col_double(struct db_stmt *st, int col)
{
    if (pg_col_is_null(st, col))
        return 0;
    return strtod(PQgetvalue(PS(st)->res, PS(st)->row, col), NULL);
}

static const char *pg_col_text(struct db_stmt *st, int col, size_t *out_len)
{
    if (pg_col_is_null(st, col)) {
        if (out_len)
            *out_len = 0;
        return "";
    }
    if (out_len)
        *out_len = (size_t)PQgetlength(PS(st)->res, PS(st)->row, col);
    return PQgetvalue(PS(st)->res, PS(st)->row, col);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static const void *pg_col_blob(struct db_stmt *st, int col, size_t *out_len)
{
    *out_len = 0;
    if (pg_col_is_null(st, col))
        return NULL;
    struct pg_stmt *ps = PS(st);
    const char *v = PQgetvalue(ps->res, ps->row, col);
    size_t n = (size_t)PQgetlength(ps->res, ps->row, col);
    buf_reset(&ps->blob);
    if (n >= 2 && v[0] == '\\' && v[1] == 'x') {
        for (size_t i = 2; i + 1 < n; i += 2) {
            int hi = hexval(v[i]), lo = hexval(v[i + 1]);
            if (hi < 0 || lo < 0 || buf_append_char(&ps->blob, (char)(hi << 4 | lo)))
                return NULL;
        }
    } else if (buf_append(&ps->blob, v, n)) {
        return NULL;
    }
    *out_len = ps->blob.len;
    return ps->blob.p ? ps->blob.p : "";
}

static int pg_exec(struct db_conn *c, const char *sql)
{
    PGresult *r = PQexec(PC(c)->pg, sql);
    int rc = map_result(c, r);
    PQclear(r);
    return rc;
}

static int pg_xact_lock(struct db_conn *c, int64_t key)
{
    char k[32];
    snprintf(k, sizeof(k), "%lld", (long long)key);
    const char *vals[] = {k};
    PGresult *r = PQexecParams(PC(c)->pg, "SELECT pg_advisory_xact_lock($1::bigint)", 1, NULL, vals,
                               NULL, NULL, 0);
    int rc = map_result(c, r);
    PQclear(r);
    return rc;
}

static int pg_try_session_lock(struct db_conn *c, int64_t key, bool *out_locked)
{
    char k[32];
    snprintf(k, sizeof(k), "%lld", (long long)key);
    const char *vals[] = {k};
    PGresult *r = PQexecParams(PC(c)->pg, "SELECT pg_try_advisory_lock($1::bigint)", 1, NULL, vals,
                               NULL, NULL, 0);
    int rc = map_result(c, r);
    if (rc == LOCI_OK)
        *out_locked = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return rc;
}

const struct db_ops db__pg_ops = {
    .name = "postgres",
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .step = pg_step,
    .reset = pg_reset,
    .col_count = pg_col_count,
    .col_is_null = pg_col_is_null,
    .col_int64 = pg_col_int64,
    .col_double = pg_col_double,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .exec = pg_exec,
    .begin_sql = "BEGIN",
    .xact_lock = pg_xact_lock,
    .try_session_lock = pg_try_session_lock,
};
