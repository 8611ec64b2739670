/*
 * clock.h - time in the units Loci stores: UTC milliseconds since the epoch,
 * and a monotonic clock for durations. Safe from any thread.
 */
#ifndef LOCI_CORE_CLOCK_H
#define LOCI_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock, UTC milliseconds since 1970. */
int64_t clock_now_ms(void);
/* Monotonic nanoseconds, for measuring durations only. */
int64_t clock_mono_ns(void);
/* Format ms as RFC 3339 UTC with milliseconds ("2026-11-21T21:14:25.123Z").
 * out must hold at least 25 bytes. */
void clock_format_rfc3339(int64_t ms, char *out, size_t n);
/* Sleep for ms milliseconds (never on an HTTP thread). */
void clock_sleep_ms(int64_t ms);

#endif
