/*
 * harness.c - runs the registered cases in order, each under setjmp so a
 * failed CHECK ends only its case.
 */
#include "harness.h"

#include "core/alloc.h"
#include "core/ids.h"

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
