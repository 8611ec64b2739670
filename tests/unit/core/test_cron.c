/*
 * test_cron.c - parsing and next/previous firing times: steps, ranges,
 * lists, names, month ends, leap years, the day-of-month/day-of-week rule.
 */
#include "core/cron.h"
#include "core/err.h"
#include "harness.h"

#include <string.h>
#include <time.h>

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

static struct cron parse(const char *e)
{
    struct cron c;
    char err[128];
    if (cron_parse(e, &c, err, sizeof(err)))
        harness_fail(__FILE__, __LINE__, "cannot parse '%s': %s", e, err);
    return c;
}

#define NEXT(expr, from, want)                                                                     \
    do {                                                                                           \
        struct cron c_ = parse(expr);                                                              \
        CHECK_INT(cron_next(&c_, (from)), ==, (want));                                             \
    } while (0)

TEST(cron_rejects_bad_expressions)
{
    struct cron c;
    char err[128];
    const char *bad[] = {"",
                         "* * * *",
                         "* * * * * *",
                         "60 * * * *",
                         "* 24 * * *",
                         "* * 0 * *",
                         "* * 32 * *",
                         "* * * 13 *",
                         "* * * * 8",
                         "*/0 * * * *",
                         "5-1 * * * *",
                         "a * * * *",
                         "1,,2 * * * *",
                         "1, * * * *",
                         "* * * FOO *",
                         "*/x * * * *"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cron_parse(bad[i], &c, err, sizeof(err)) != LOCI_EINVAL)
            harness_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
        CHECK(err[0] != '\0');
    }
    CHECK_INT(cron_parse("61 * * * *", &c, err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK(strstr(err, "minute") != NULL);
}

TEST(cron_next_basic_fields)
{
    NEXT("* * * * *", at(2026, 1, 1, 0, 0), at(2026, 1, 1, 0, 1));
    NEXT("* * * * *", at(2026, 1, 1, 0, 0) + 30000, at(2026, 1, 1, 0, 1));
    NEXT("*/15 * * * *", at(2026, 1, 1, 0, 14), at(2026, 1, 1, 0, 15));
    NEXT("*/15 * * * *", at(2026, 1, 1, 0, 45), at(2026, 1, 1, 1, 0));
    NEXT("10-30/10 * * * *", at(2026, 1, 1, 0, 21), at(2026, 1, 1, 0, 30));
    NEXT("10-30/10 * * * *", at(2026, 1, 1, 0, 30), at(2026, 1, 1, 1, 10));
    NEXT("5,7 3 * * *", at(2026, 1, 1, 3, 5), at(2026, 1, 1, 3, 7));
    NEXT("0 3 * * *", at(2026, 1, 1, 3, 0), at(2026, 1, 2, 3, 0));
    NEXT("30 23 31 12 *", at(2026, 12, 31, 23, 31), at(2027, 12, 31, 23, 30));
}

TEST(cron_month_ends_and_leap_years)
{
    /* The 31st skips short months. */
    NEXT("0 0 31 * *", at(2026, 1, 31, 0, 0), at(2026, 3, 31, 0, 0));
    NEXT("0 0 31 * *", at(2026, 3, 31, 0, 0), at(2026, 5, 31, 0, 0));
    /* Feb 29 only in leap years; 2100 is not one. */
    NEXT("0 0 29 2 *", at(2026, 3, 1, 0, 0), at(2028, 2, 29, 0, 0));
    NEXT("0 0 29 2 *", at(2096, 3, 1, 0, 0), at(2104, 2, 29, 0, 0));
    NEXT("0 0 30 2 *", at(2026, 1, 1, 0, 0), -1); /* never */
    NEXT("0 12 28-31 2 *", at(2027, 2, 28, 12, 0), at(2028, 2, 28, 12, 0));
    NEXT("0 12 28-31 2 *", at(2028, 2, 28, 12, 0), at(2028, 2, 29, 12, 0));
}

TEST(cron_weekdays_names_and_or_rule)
{
    /* 2026-11-21 is a Saturday. */
    NEXT("0 9 * * 1-5", at(2026, 11, 21, 10, 0), at(2026, 11, 23, 9, 0));
    NEXT("0 9 * * MON-FRI", at(2026, 11, 21, 10, 0), at(2026, 11, 23, 9, 0));
    NEXT("0 0 * * 0", at(2026, 11, 21, 10, 0), at(2026, 11, 22, 0, 0));
    NEXT("0 0 * * 7", at(2026, 11, 21, 10, 0), at(2026, 11, 22, 0, 0)); /* 7 = Sunday */
    NEXT("0 12 * JAN,JUL SUN", at(2026, 11, 21, 0, 0), at(2027, 1, 3, 12, 0));
    /* Both day fields restricted: the 13th OR a Friday. */
    NEXT("0 0 13 * 5", at(2026, 11, 21, 0, 0), at(2026, 11, 27, 0, 0));
    NEXT("0 0 13 * 5", at(2026, 12, 11, 1, 0), at(2026, 12, 13, 0, 0));
    /* Only day-of-week restricted: day-of-month "*" does not widen it. */
    NEXT("0 0 * * 5", at(2026, 12, 11, 1, 0), at(2026, 12, 18, 0, 0));
}

TEST(cron_prev_finds_latest_tick)
{
    struct cron c = parse("*/5 * * * *");
    CHECK_INT(cron_prev(&c, at(2026, 1, 1, 10, 7), 0), ==, at(2026, 1, 1, 10, 5));
    CHECK_INT(cron_prev(&c, at(2026, 1, 1, 10, 5), 0), ==, at(2026, 1, 1, 10, 5));
    CHECK_INT(cron_prev(&c, at(2026, 1, 1, 10, 7), at(2026, 1, 1, 10, 6)), ==, -1);
    struct cron d = parse("20 3 * * *");
    CHECK_INT(cron_prev(&d, at(2026, 1, 9, 1, 0), 0), ==, at(2026, 1, 8, 3, 20));
}
