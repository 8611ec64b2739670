/*
 * harness.h - a tiny test runner (in the spirit of libuv's): TEST(name)
 * registers a case, CHECK* fail it with file and line, main() runs every
 * case and ends with "N passed, N failed". One binary per module, run by
 * CTest with a timeout.
 */
#ifndef LOCI_TEST_HARNESS_H
#define LOCI_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

typedef void (*test_fn)(void);
void harness_register(const char *name, test_fn fn);
_Noreturn void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The PostgreSQL URL of the test server, or NULL. When the environment says
 * PostgreSQL is required (LOCI_TEST_REQUIRE_PG=1) a missing URL fails. */
const char *harness_pg_url(void);
/* A fresh temporary directory for this test (removed at exit). */
const char *harness_tmpdir(void);
/* The database URLs every storage test runs against: SQLite always,
 * PostgreSQL when available. Returns the count. Each URL is a fresh
 * database/schema so tests do not see each other's rows. */
int harness_db_urls(const char *tag, const char *urls[2]);

struct db;
struct buf;
/* Open url with a pool of pool connections and apply every migration;
 * fails the test on error. */
struct db *harness_open_db(const char *url, int pool);
/* Run SQL without parameters (set-up); fails the test on error. */
void harness_exec(struct db *db, const char *sql);
/* The two users most storage tests need: 'u1' and 'u2'. */
void harness_add_users(struct db *db);
/* Append a minimal valid PDF to out: one page per text (Helvetica, one
 * line each), an xref table. */
void harness_make_pdf(const char *const *pages, size_t n, struct buf *out);

#define TEST(name)                                                                                 \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void reg_##name(void)                                      \
    {                                                                                              \
        harness_register(#name, name);                                                             \
    }                                                                                              \
    static void name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            harness_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                                  \
    } while (0)

#define CHECK_INT(a, op, b)                                                                        \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (!(va_ op vb_))                                                                         \
            harness_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, va_, vb_);     \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0)                                                 \
            harness_fail(__FILE__, __LINE__, "%s == %s: '%s' vs '%s'", #a, #b,                     \
                         sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                              \
    } while (0)

#endif
