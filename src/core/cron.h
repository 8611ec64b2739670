/*
 * cron.h - five-field cron expressions (minute hour day-of-month month
 * day-of-week), evaluated in UTC. Supports `*`, numbers, ranges `a-b`, lists
 * `a,b`, steps `*\/n` and `a-b/n`, month and weekday names (JAN, MON), 7 as
 * Sunday, and the classic rule that when both day fields are restricted a day
 * matching either one fires. Pure computation; safe from any thread.
 */
#ifndef LOCI_CORE_CRON_H
#define LOCI_CORE_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cron {
    uint64_t minutes; /* bit m set: minute m (0-59) */
    uint32_t hours;   /* 0-23 */
    uint32_t days;    /* 1-31 */
    uint16_t months;  /* 1-12 */
    uint8_t weekdays; /* 0-6, Sunday = 0 */
    bool is_dom_star; /* day-of-month was "*" */
    bool is_dow_star; /* day-of-week was "*" */
};

/* Parse expr. Returns 0, or LOCI_EINVAL with a message in err naming the
 * field at fault. */
int cron_parse(const char *expr, struct cron *out, char *err, size_t err_n);

/* The first firing time strictly after `after` (UTC ms; the result is on a
 * whole minute), or -1 when there is none within 50 years. */
int64_t cron_next(const struct cron *c, int64_t after);

/* The latest firing time at or before `at`, not earlier than `not_before`;
 * -1 when none. */
int64_t cron_prev(const struct cron *c, int64_t at, int64_t not_before);

#endif
