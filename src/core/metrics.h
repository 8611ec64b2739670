/*
 * metrics.h - a process-wide Prometheus registry: counters, gauges and
 * histograms with labels, rendered in the text exposition format (0.0.4).
 *
 * Families are created at start-up (before threads) and live until
 * metrics_shutdown(). Series are created on first use. Updating a series is
 * lock-free (atomics); finding a series by label values takes the family's
 * mutex briefly. Label values are copied. Safe from any thread after init.
 */
#ifndef LOCI_CORE_METRICS_H
#define LOCI_CORE_METRICS_H

#include "core/buf.h"

#include <stddef.h>

struct metric_family;
struct metric_series;

/* Label names are a comma-separated list ("method,route,status") or NULL.
 * The returned family is owned by the registry. Creating a family twice with
 * the same name returns the first one. */
struct metric_family *metrics_counter(const char *name, const char *help, const char *labels);
struct metric_family *metrics_gauge(const char *name, const char *help, const char *labels);
/* buckets: strictly increasing upper bounds (the +Inf bucket is implicit). */
struct metric_family *metrics_histogram(const char *name, const char *help, const char *labels,
                                        const double *buckets, size_t n_buckets);

/* The series for these label values (one per label name, in order; NULL
 * when the family has no labels). Never NULL. The pointer stays valid until
 * metrics_shutdown(), so hot paths may cache it. */
struct metric_series *metrics_series(struct metric_family *f, const char *const *values);

void metrics_add(struct metric_series *s, double v);       /* counters and gauges */
void metrics_set(struct metric_series *s, double v);       /* gauges */
void metrics_observe(struct metric_series *s, double v);   /* histograms */
double metrics_value(struct metric_series *s);             /* counters and gauges; tests */
unsigned long long metrics_count(struct metric_series *s); /* histograms; tests */

/* A function run at the start of every render, to refresh gauges that are
 * read rather than pushed (memory, fds, queue depth). */
typedef void (*metrics_collect_fn)(void *arg);
void metrics_add_collector(metrics_collect_fn fn, void *arg);
/* Remove a collector added with the same fn and arg (before arg dies). */
void metrics_remove_collector(metrics_collect_fn fn, void *arg);

/* Append the whole registry in the text exposition format. */
int metrics_render(struct buf *out);

/* Default latency buckets in seconds, 0.5 ms .. 10 s. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_n_latency_buckets;

/* Free every family and series. Only at exit, after all threads stopped. */
void metrics_shutdown(void);

#endif
