/*
 * test_db.c - the store API, run against SQLite and PostgreSQL alike.
 */
#include "core/err.h"
#include "harness.h"
#include "store/db.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static struct db *open_db(const char *url)
{
    struct db *db = NULL;
    char err[512];
    if (db_open(url, 4, &db, err, sizeof(err)) != LOCI_OK)
        harness_fail(__FILE__, __LINE__, "db_open(%s): %s", url, err);
    int applied = 0;
    if (db_migrate(db, &applied, err, sizeof(err)) != LOCI_OK)
        harness_fail(__FILE__, __LINE__, "db_migrate: %s", err);
    return db;
}

static void exec_ok(struct db *db, const char *sql)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    int rc = db_exec(c, sql);
    if (rc)
        harness_fail(__FILE__, __LINE__, "exec '%s': %s", sql, db_errmsg(c));
    db_release(c);
}

static void for_each_backend(const char *tag, void (*fn)(struct db *db))
{
    const char *urls[2];
    int n = harness_db_urls(tag, urls);
    for (int i = 0; i < n; i++) {
        struct db *db = open_db(urls[i]);
        fn(db);
        db_close(db);
    }
}

static void roundtrip(struct db *db)
{
    const char *blob_type = db_backend(db) == DB_POSTGRES ? "BYTEA" : "BLOB";
    char ddl[256];
    snprintf(ddl, sizeof(ddl),
             "CREATE TABLE t (id BIGINT PRIMARY KEY, d DOUBLE PRECISION, s TEXT, b %s, "
             "u TEXT UNIQUE)",
             blob_type);
    exec_ok(db, ddl);
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    static const char ins[] = "INSERT INTO t (id, d, s, b, u) VALUES (?, ?, ?, ?, ?)";
    const unsigned char blob[] = {0, 1, 2, 0xff, 0x5c, 'x'};
    CHECK_INT(db_prepare(c, ins, &st), ==, LOCI_OK);
    db_bind_int64(st, 1, 9007199254740993LL);
    db_bind_double(st, 2, 0.1);
    db_bind_text(st, 3, "héllo 'quoted' ? not a param", (size_t)-1);
    db_bind_blob(st, 4, blob, sizeof(blob));
    db_bind_text(st, 5, "uniq-and-more", 4); /* length-bounded: "uniq" */
    CHECK_INT(db_step(st), ==, LOCI_OK);
    CHECK_INT(db_changes(st), ==, 1);
    db_stmt_done(st);

    /* Same statement again from the cache; NULLs. */
    CHECK_INT(db_prepare(c, ins, &st), ==, LOCI_OK);
    db_bind_int64(st, 1, 2);
    db_bind_null(st, 2);
    db_bind_text(st, 3, NULL, 0);
    db_bind_blob(st, 4, NULL, 0);
    db_bind_text(st, 5, "uniq", (size_t)-1);
    CHECK_INT(db_step(st), ==, LOCI_ECONFLICT); /* unique violation maps to conflict */
    db_stmt_done(st);

    static const char sel[] = "SELECT id, d, s, b, u, '?' FROM t WHERE id = ?";
    CHECK_INT(db_prepare(c, sel, &st), ==, LOCI_OK);
    db_bind_int64(st, 1, 9007199254740993LL);
    CHECK_INT(db_step(st), ==, LOCI_ROW);
    CHECK_INT(db_col_count(st), ==, 6);
    CHECK_INT(db_col_int64(st, 0), ==, 9007199254740993LL);
    CHECK(db_col_double(st, 1) == 0.1);
    size_t n = 0;
    CHECK_STR(db_col_text(st, 2, &n), "héllo 'quoted' ? not a param");
    const unsigned char *b = db_col_blob(st, 3, &n);
    CHECK_INT(n, ==, sizeof(blob));
    CHECK(memcmp(b, blob, n) == 0);
    CHECK_STR(db_col_text(st, 4, NULL), "uniq");
    CHECK_STR(db_col_text(st, 5, NULL), "?");
    CHECK_INT(db_step(st), ==, LOCI_OK);
    db_stmt_done(st);

    /* A statement that is in use is not handed out twice (nested reads). */
    struct db_stmt *a = NULL, *b2 = NULL;
    CHECK_INT(db_prepare(c, sel, &a), ==, LOCI_OK);
    CHECK_INT(db_prepare(c, sel, &b2), ==, LOCI_OK);
    CHECK(a != b2);
    db_bind_int64(a, 1, 9007199254740993LL);
    db_bind_int64(b2, 1, 12345);
    CHECK_INT(db_step(a), ==, LOCI_ROW);
    CHECK_INT(db_step(b2), ==, LOCI_OK);
    db_stmt_done(b2);
    db_stmt_done(a);

    /* Errors carry a message. */
    CHECK_INT(db_prepare(c, "SELECT nope FROM nowhere", &st), <, 0);
    CHECK(db_errmsg(c)[0] != '\0');
    db_release(c);
}

TEST(store_roundtrip_both_backends)
{
    for_each_backend("rt", roundtrip);
}

static int tx_insert_then_fail(struct db_conn *c, void *arg)
{
    int *mode = arg;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "INSERT INTO k (v) VALUES (?)", &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, 7);
    rc = db_step(st);
    db_stmt_done(st);
    if (rc)
        return rc;
    return *mode == 1 ? LOCI_EINVAL : LOCI_OK;
}

static int64_t count_k(struct db *db)
{
    struct db_conn *c = NULL;
    if (db_acquire(db, &c))
        harness_fail(__FILE__, __LINE__, "acquire");
    struct db_stmt *st = NULL;
    if (db_prepare(c, "SELECT COUNT(*) FROM k", &st))
        harness_fail(__FILE__, __LINE__, "prepare: %s", db_errmsg(c));
    int64_t n = db_step(st) == LOCI_ROW ? db_col_int64(st, 0) : -1;
    db_stmt_done(st);
    db_release(c);
    return n;
}

static void transactions(struct db *db)
{
    exec_ok(db, "CREATE TABLE k (v BIGINT)");
    int mode = 1;
    CHECK_INT(db_tx(db, tx_insert_then_fail, &mode), ==, LOCI_EINVAL);
    CHECK_INT(count_k(db), ==, 0); /* rolled back */
    mode = 0;
    CHECK_INT(db_tx(db, tx_insert_then_fail, &mode), ==, LOCI_OK);
    CHECK_INT(count_k(db), ==, 1);
}

TEST(store_transactions_commit_and_roll_back)
{
    for_each_backend("tx", transactions);
}

struct counter_ctx {
    struct db *db;
    int n;
};

static int tx_increment(struct db_conn *c, void *arg)
{
    (void)arg;
    struct db_stmt *st = NULL;
    int rc = db_xact_lock(c, 42);
    if (rc)
        return rc;
    rc = db_prepare(c, "SELECT n FROM counter WHERE id = 1", &st);
    if (rc)
        return rc;
    rc = db_step(st);
    int64_t n = rc == LOCI_ROW ? db_col_int64(st, 0) : -1;
    db_stmt_done(st);
    if (rc != LOCI_ROW)
        return rc < 0 ? rc : LOCI_EIO;
    rc = db_prepare(c, "UPDATE counter SET n = ? WHERE id = 1", &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, n + 1);
    rc = db_step(st);
    db_stmt_done(st);
    return rc;
}

static void *incrementer(void *arg)
{
    struct counter_ctx *cc = arg;
    for (int i = 0; i < cc->n; i++) {
        if (db_tx(cc->db, tx_increment, NULL) != LOCI_OK)
            return (void *)1;
    }
    return NULL;
}

static void concurrent_writers(struct db *db)
{
    exec_ok(db, "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)");
    exec_ok(db, "INSERT INTO counter (id, n) VALUES (1, 0)");
    pthread_t th[4];
    struct counter_ctx cc = {db, 50};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, incrementer, &cc);
    int failures = 0;
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        failures += r != NULL;
    }
    CHECK_INT(failures, ==, 0);
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    CHECK_INT(db_prepare(c, "SELECT n FROM counter WHERE id = 1", &st), ==, LOCI_OK);
    CHECK_INT(db_step(st), ==, LOCI_ROW);
    CHECK_INT(db_col_int64(st, 0), ==, 200); /* no lost updates */
    db_stmt_done(st);
    db_release(c);
}

TEST(store_concurrent_transactions_lose_nothing)
{
    for_each_backend("cc", concurrent_writers);
}

static void migrations(struct db *db)
{
    char err[512];
    int applied = -1;
    CHECK_INT(db_migrate(db, &applied, err, sizeof(err)), ==, LOCI_OK);
    CHECK_INT(applied, ==, 0); /* open_db already migrated */
    int64_t v = 0;
    CHECK_INT(db_schema_version(db, &v), ==, LOCI_OK);
    CHECK_INT(v, ==, db_schema_latest(db));
    CHECK(v >= 1);
    exec_ok(
        db,
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999999, 'future', 0)");
    CHECK_INT(db_migrate(db, &applied, err, sizeof(err)), ==, LOCI_ESCHEMA);
    CHECK(strstr(err, "999999") != NULL);
}

TEST(store_migrations_idempotent_and_refuse_newer_schema)
{
    for_each_backend("mg", migrations);
}

TEST(store_rejects_bad_urls)
{
    struct db *db = NULL;
    char err[512];
    CHECK_INT(db_open("mysql://x", 1, &db, err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK(strstr(err, "mysql") != NULL);
    CHECK_INT(db_open("sqlite:", 1, &db, err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK_INT(db_open("sqlite:/nonexistent-dir/x/y.db", 1, &db, err, sizeof(err)), ==,
              LOCI_EUNAVAILABLE);
    CHECK_INT(db_open("postgres://nobody:pw-secret@127.0.0.1:1/x", 1, &db, err, sizeof(err)), ==,
              LOCI_EUNAVAILABLE);
    CHECK(strstr(err, "pw-secret") == NULL);
    CHECK(db == NULL);
}

TEST(store_ping)
{
    const char *urls[2];
    int n = harness_db_urls("ping", urls);
    for (int i = 0; i < n; i++) {
        struct db *db = open_db(urls[i]);
        double ms = -1;
        CHECK_INT(db_ping(db, &ms), ==, LOCI_OK);
        CHECK(ms >= 0);
        db_close(db);
    }
    CHECK(n == 2 || harness_pg_url() == NULL);
}
