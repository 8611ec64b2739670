/*
 * cron.c - parse into bit sets, then walk forward field by field (month,
 * day, hour, minute), jumping over whole non-matching units rather than
 * testing every minute.
 */
#include "core/cron.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct field_def {
    const char *name;
    int min, max;
    const char *const *names; /* optional symbolic names, index = value - min */
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct field_def fields[5] = {
    {"minute", 0, 59, NULL},          {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, day_names},
};

static int parse_value(const char *s, size_t n, const struct field_def *f, int *out)
{
    if (n == 0)
        return LOCI_EINVAL;
    if (f->names && n == 3) {
        int count = f == &fields[3] ? 12 : 7;
        for (int i = 0; i < count; i++) {
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->min + i;
                return LOCI_OK;
            }
        }
    }
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > 1000)
            return LOCI_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < f->min || v > f->max)
        return LOCI_EINVAL;
    *out = v;
    return LOCI_OK;
}

/* One comma-separated item: "*", "a", "a-b", with optional "/step". */
static int parse_item(const char *s, size_t n, const struct field_def *f, uint64_t *bits)
{
    const char *slash = memchr(s, '/', n);
    size_t rn = slash ? (size_t)(slash - s) : n;
    int step = 1;
    if (slash) {
        int st = 0;
        size_t sn = n - rn - 1;
        if (sn == 0 || sn > 2)
            return LOCI_EINVAL;
        for (size_t i = 0; i < sn; i++) {
            if (slash[1 + i] < '0' || slash[1 + i] > '9')
                return LOCI_EINVAL;
            st = st * 10 + (slash[1 + i] - '0');
        }
        if (st < 1 || st > f->max)
            return LOCI_EINVAL;
        step = st;
    }
    int lo, hi;
    if (rn == 1 && s[0] == '*') {
        lo = f->min;
        hi = f->max;
        if (f == &fields[4])
            hi = 6; /* 7 is an alias of 0, not an extra day */
    } else {
        const char *dash = memchr(s, '-', rn);
        if (dash) {
            if (parse_value(s, (size_t)(dash - s), f, &lo) ||
                parse_value(dash + 1, rn - (size_t)(dash - s) - 1, f, &hi) || hi < lo)
                return LOCI_EINVAL;
        } else {
            if (parse_value(s, rn, f, &lo))
                return LOCI_EINVAL;
            hi = slash ? f->max : lo;
        }
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << (f == &fields[4] && v == 7 ? 0 : v);
    return LOCI_OK;
}

int cron_parse(const char *expr, struct cron *out, char *err, size_t err_n)
{
    memset(out, 0, sizeof(*out));
    const char *p = expr;
    uint64_t bits[5] = {0};
    for (int fi = 0; fi < 5; fi++) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - start);
        if (n == 0) {
            snprintf(err, err_n, "expected 5 fields, found %d", fi);
            return LOCI_EINVAL;
        }
        if (fi == 2)
            out->is_dom_star = n == 1 && start[0] == '*';
        if (fi == 4)
            out->is_dow_star = n == 1 && start[0] == '*';
        const char *item = start;
        while (item < p) {
            const char *comma = memchr(item, ',', (size_t)(p - item));
            size_t in = comma ? (size_t)(comma - item) : (size_t)(p - item);
            if (parse_item(item, in, &fields[fi], &bits[fi])) {
                snprintf(err, err_n, "invalid %s field '%.*s' (allowed %d-%d)", fields[fi].name,
                         (int)n, start, fields[fi].min, fields[fi].max);
                return LOCI_EINVAL;
            }
            item += in + (comma ? 1 : 0);
            if (comma && item == p) {
                snprintf(err, err_n, "invalid %s field '%.*s'", fields[fi].name, (int)n, start);
                return LOCI_EINVAL;
            }
        }
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p) {
        snprintf(err, err_n, "expected 5 fields, found more ('%s')", p);
        return LOCI_EINVAL;
    }
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->days = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    out->weekdays = (uint8_t)bits[4];
    return LOCI_OK;
}

static bool day_matches(const struct cron *c, const struct tm *tm)
{
    bool dom = (c->days >> tm->tm_mday) & 1;
    bool dow = (c->weekdays >> tm->tm_wday) & 1;
    if (c->is_dom_star && c->is_dow_star)
        return true;
    if (c->is_dom_star)
        return dow;
    if (c->is_dow_star)
        return dom;
    return dom || dow;
}

static int64_t to_ms(struct tm *tm)
{
    return (int64_t)timegm(tm) * 1000;
}

int64_t cron_next(const struct cron *c, int64_t after)
{
    time_t t = (time_t)(after / 1000) + 60;
    t -= t % 60; /* the next whole minute strictly after `after` */
    if (after % 60000 == 0 && (int64_t)t * 1000 <= after)
        t += 60;
    struct tm tm;
    gmtime_r(&t, &tm);
    int start_year = tm.tm_year;
    while (tm.tm_year - start_year <= 50) {
        if (!((c->months >> (tm.tm_mon + 1)) & 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = 0;
            tm.tm_min = 0;
            timegm(&tm); /* normalise */
            continue;
        }
        if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = 0;
            tm.tm_min = 0;
            timegm(&tm);
            continue;
        }
        if (!((c->hours >> tm.tm_hour) & 1)) {
            tm.tm_hour++;
            tm.tm_min = 0;
            timegm(&tm);
            continue;
        }
        if (!((c->minutes >> tm.tm_min) & 1)) {
            tm.tm_min++;
            timegm(&tm);
            continue;
        }
        return to_ms(&tm);
    }
    return -1;
}

static bool minute_matches(const struct cron *c, const struct tm *tm)
{
    return ((c->months >> (tm->tm_mon + 1)) & 1) && day_matches(c, tm) &&
           ((c->hours >> tm->tm_hour) & 1) && ((c->minutes >> tm->tm_min) & 1);
}

int64_t cron_prev(const struct cron *c, int64_t at, int64_t not_before)
{
    /* Walk back from `at`, a whole hour at a time where the hour cannot match.
     * Only used after downtime, so a bounded walk (one year) is enough. */
    time_t t = (time_t)(at / 1000);
    t -= t % 60;
    time_t floor_t = (time_t)(not_before / 1000);
    time_t limit = t - 366 * 24 * 3600;
    if (floor_t < limit)
        floor_t = limit;
    struct tm tm;
    while (t >= floor_t) {
        gmtime_r(&t, &tm);
        if (!((c->months >> (tm.tm_mon + 1)) & 1) || !day_matches(c, &tm) ||
            !((c->hours >> tm.tm_hour) & 1)) {
            t -= (time_t)tm.tm_min * 60 + 60; /* to the last minute of the previous hour */
            continue;
        }
        if (minute_matches(c, &tm))
            return (int64_t)t * 1000 >= not_before ? (int64_t)t * 1000 : -1;
        t -= 60;
    }
    return -1;
}
