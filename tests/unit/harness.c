/*
 * harness.c - runs the registered cases in order, each under setjmp so a
 * failed CHECK ends only its case.
 */
#include "harness.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/ids.h"
#include "store/db.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TESTS 256

struct test_case {
    const char *name;
    test_fn fn;
};

static struct test_case cases[MAX_TESTS];
static int n_cases;
static jmp_buf on_fail;
static char tmp_root[256];
static char tmp_dir[512];
static int tmp_seq;

void harness_register(const char *name, test_fn fn)
{
    if (n_cases < MAX_TESTS)
        cases[n_cases++] = (struct test_case){name, fn};
}

_Noreturn void harness_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "    %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    longjmp(on_fail, 1);
}

const char *harness_pg_url(void)
{
    const char *url = getenv("LOCI_TEST_PG_URL");
    if (url && *url)
        return url;
    const char *req = getenv("LOCI_TEST_REQUIRE_PG");
    if (req && strcmp(req, "1") == 0)
        harness_fail(__FILE__, __LINE__, "LOCI_TEST_PG_URL is not set but PostgreSQL is required");
    return NULL;
}

const char *harness_tmpdir(void)
{
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/t%d", tmp_root, ++tmp_seq);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", tmp_dir);
    if (system(cmd) != 0)
        harness_fail(__FILE__, __LINE__, "cannot create %s", tmp_dir);
    return tmp_dir;
}

/* A fresh PostgreSQL schema per call, selected through the URL's options. */
static char pg_urls[64][512];
static int n_pg_urls;

static const char *fresh_pg_url(const char *base, const char *tag)
{
    char schema[64];
    char hex[9];
    ids_random_hex(hex, 4);
    snprintf(schema, sizeof(schema), "t_%s_%s", tag, hex);
    PGconn *pg = PQconnectdb(base);
    if (PQstatus(pg) != CONNECTION_OK)
        harness_fail(__FILE__, __LINE__, "cannot connect to %s: %s", base, PQerrorMessage(pg));
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        harness_fail(__FILE__, __LINE__, "create schema: %s", PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    if (n_pg_urls >= 64)
        harness_fail(__FILE__, __LINE__, "too many databases");
    char *u = pg_urls[n_pg_urls++];
    snprintf(u, 512, "%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?",
             schema);
    return u;
}

int harness_db_urls(const char *tag, const char *urls[2])
{
    static char sqlite_urls[64][600];
    static int n_sqlite;
    char *s = sqlite_urls[n_sqlite++ % 64];
    snprintf(s, 600, "sqlite:%s/%s.db", harness_tmpdir(), tag);
    urls[0] = s;
    const char *pg = harness_pg_url();
    if (!pg)
        return 1;
    urls[1] = fresh_pg_url(pg, tag);
    return 2;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/loci-unit-%d", (int)getpid());
    const char *only = argc > 1 ? argv[1] : NULL;
    /* volatile: these live across longjmp from a failed CHECK */
    volatile int passed = 0, failed = 0;
    for (volatile int i = 0; i < n_cases; i++) {
        if (only && strcmp(only, cases[i].name) != 0)
            continue;
        if (setjmp(on_fail) == 0) {
            cases[i].fn();
            printf("ok     %s\n", cases[i].name);
            passed++;
        } else {
            printf("FAILED %s\n", cases[i].name);
            failed++;
        }
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmp_root);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

struct db *harness_open_db(const char *url, int pool)
{
    struct db *db = NULL;
    char err[256];
    int applied = 0;
    if (db_open(url, pool, &db, err, sizeof(err)) || db_migrate(db, &applied, err, sizeof(err)))
        harness_fail(__FILE__, __LINE__, "db %s: %s", url, err);
    return db;
}

void harness_exec(struct db *db, const char *sql)
{
    struct db_conn *c = NULL;
    if (db_acquire(db, &c))
        harness_fail(__FILE__, __LINE__, "no database connection");
    if (db_exec(c, sql))
        harness_fail(__FILE__, __LINE__, "%s: %s", sql, db_errmsg(c));
    db_release(c);
}

void harness_add_users(struct db *db)
{
    harness_exec(db, "INSERT INTO users (id, email, email_norm, password_hash, created_at, "
                     "updated_at) VALUES ('u1', 'a@x', 'a@x', 'h', 0, 0), "
                     "('u2', 'b@x', 'b@x', 'h', 0, 0)");
}

void harness_make_pdf(const char *const *pages, size_t n, struct buf *out)
{
    size_t n_objs = 2 + 2 * n + 1;
    size_t *offs = xcalloc(n_objs + 1, sizeof(size_t));
    buf_append_str(out, "%PDF-1.4\n");
    struct buf kids;
    buf_init(&kids, 1 << 16);
    for (size_t i = 0; i < n; i++)
        buf_printf(&kids, "%s%zu 0 R", i ? " " : "", 3 + 2 * i);
    size_t font = 3 + 2 * n;
    offs[1] = out->len;
    buf_printf(out, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    offs[2] = out->len;
    buf_printf(out, "2 0 obj\n<< /Type /Pages /Kids [%s] /Count %zu >>\nendobj\n", buf_cstr(&kids),
               n);
    for (size_t i = 0; i < n; i++) {
        char stream[512];
        snprintf(stream, sizeof(stream), "BT /F1 12 Tf 72 720 Td (%s) Tj ET", pages[i]);
        offs[3 + 2 * i] = out->len;
        buf_printf(out,
                   "%zu 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %zu "
                   "0 R /Resources << /Font << /F1 %zu 0 R >> >> >>\nendobj\n",
                   3 + 2 * i, 4 + 2 * i, font);
        offs[4 + 2 * i] = out->len;
        buf_printf(out, "%zu 0 obj\n<< /Length %zu >>\nstream\n%s\nendstream\nendobj\n", 4 + 2 * i,
                   strlen(stream), stream);
    }
    offs[font] = out->len;
    buf_printf(out, "%zu 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n",
               font);
    size_t xref = out->len;
    buf_printf(out, "xref\n0 %zu\n0000000000 65535 f \n", n_objs + 1);
    for (size_t i = 1; i <= n_objs; i++)
        buf_printf(out, "%010zu 00000 n \n", offs[i]);
    buf_printf(out, "trailer\n<< /Size %zu /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", n_objs + 1,
               xref);
    buf_release(&kids);
    xfree(offs);
}
