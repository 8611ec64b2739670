/*
 * metrics.c - the registry. Families form a list guarded by registry_mu;
 * each family keeps its series in a small chained hash guarded by its own
 * mutex. Values are atomics so updates never lock.
 */
#include "core/metrics.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum family_type { FAM_COUNTER, FAM_GAUGE, FAM_HISTOGRAM };

#define MAX_LABELS     6
#define SERIES_BUCKETS 64

struct metric_series {
    struct metric_series *next; /* hash chain */
    struct metric_series *all;  /* insertion order, for stable output */
    char *key;                  /* label values joined by \x1f */
    char **values;
    _Atomic uint64_t value;   /* double bits: counter or gauge value, histogram sum */
    _Atomic uint64_t *counts; /* histogram: per bucket (not cumulative) + the +Inf one */
    _Atomic uint64_t count;   /* histogram: observations */
    struct metric_family *fam;
};

struct metric_family {
    struct metric_family *next;
    enum family_type type;
    char *name;
    char *help;
    int n_labels;
    char *labels[MAX_LABELS];
    double *buckets;
    size_t n_buckets;
    pthread_mutex_t mu; /* guards table, first, last */
    struct metric_series *table[SERIES_BUCKETS];
    struct metric_series *first;
    struct metric_series *last;
};

struct collector {
    struct collector *next;
    metrics_collect_fn fn;
    void *arg;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct metric_family *families;      /* guarded by registry_mu */
static struct metric_family *families_tail; /* guarded by registry_mu */
static struct collector *collectors;        /* guarded by registry_mu */

const double metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t metrics_n_latency_buckets =
    sizeof(metrics_latency_buckets) / sizeof(metrics_latency_buckets[0]);

static uint64_t dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bits_dbl(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static struct metric_family *family_new(enum family_type type, const char *name, const char *help,
                                        const char *labels)
{
    pthread_mutex_lock(&registry_mu);
    for (struct metric_family *f = families; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            pthread_mutex_unlock(&registry_mu);
            return f;
        }
    }
    struct metric_family *f = xcalloc(1, sizeof(*f));
    f->type = type;
    f->name = xstrdup(name);
    f->help = xstrdup(help);
    pthread_mutex_init(&f->mu, NULL);
    if (labels && *labels) {
        const char *p = labels;
        while (*p) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            ASSERT(f->n_labels < MAX_LABELS);
            f->labels[f->n_labels++] = xstrndup(p, n);
            p += n;
            if (*p == ',')
                p++;
        }
    }
    if (families_tail)
        families_tail->next = f;
    else
        families = f;
    families_tail = f;
    pthread_mutex_unlock(&registry_mu);
    return f;
}

struct metric_family *metrics_counter(const char *name, const char *help, const char *labels)
{
    return family_new(FAM_COUNTER, name, help, labels);
}

struct metric_family *metrics_gauge(const char *name, const char *help, const char *labels)
{
    return family_new(FAM_GAUGE, name, help, labels);
}

struct metric_family *metrics_histogram(const char *name, const char *help, const char *labels,
                                        const double *buckets, size_t n_buckets)
{
    struct metric_family *f = family_new(FAM_HISTOGRAM, name, help, labels);
    pthread_mutex_lock(&f->mu);
    if (!f->buckets) {
        f->buckets = xmalloc(sizeof(double) * (n_buckets ? n_buckets : 1));
        memcpy(f->buckets, buckets, sizeof(double) * n_buckets);
        f->n_buckets = n_buckets;
    }
    pthread_mutex_unlock(&f->mu);
    return f;
}

struct metric_series *metrics_series(struct metric_family *f, const char *const *values)
{
    char key[512];
    size_t o = 0;
    for (int i = 0; i < f->n_labels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        int n = snprintf(key + o, sizeof(key) - o, "%s%s", i ? "\x1f" : "", v);
        if (n < 0 || (size_t)n >= sizeof(key) - o) {
            o = sizeof(key) - 1;
            break;
        }
        o += (size_t)n;
    }
    key[o] = '\0';
    uint32_t slot = str_hash(key) % SERIES_BUCKETS;

    pthread_mutex_lock(&f->mu);
    struct metric_series *s = f->table[slot];
    while (s && strcmp(s->key, key) != 0)
        s = s->next;
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->fam = f;
        s->key = xstrdup(key);
        if (f->n_labels) {
            s->values = xcalloc((size_t)f->n_labels, sizeof(char *));
            for (int i = 0; i < f->n_labels; i++)
                s->values[i] = xstrdup(values && values[i] ? values[i] : "");
        }
        if (f->type == FAM_HISTOGRAM)
            s->counts = xcalloc(f->n_buckets + 1, sizeof(*s->counts));
        atomic_init(&s->value, dbl_bits(0.0));
        s->next = f->table[slot];
        f->table[slot] = s;
        if (f->last)
            f->last->all = s;
        else
            f->first = s;
        f->last = s;
    }
    pthread_mutex_unlock(&f->mu);
    return s;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, dbl_bits(bits_dbl(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void metrics_add(struct metric_series *s, double v)
{
    atomic_add_double(&s->value, v);
}

void metrics_set(struct metric_series *s, double v)
{
    atomic_store_explicit(&s->value, dbl_bits(v), memory_order_relaxed);
}

void metrics_observe(struct metric_series *s, double v)
{
    struct metric_family *f = s->fam;
    size_t i = 0;
    while (i < f->n_buckets && v > f->buckets[i])
        i++;
    atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_add_double(&s->value, v);
}

double metrics_value(struct metric_series *s)
{
    return bits_dbl(atomic_load_explicit(&s->value, memory_order_relaxed));
}

unsigned long long metrics_count(struct metric_series *s)
{
    return (unsigned long long)atomic_load_explicit(&s->count, memory_order_relaxed);
}

void metrics_add_collector(metrics_collect_fn fn, void *arg)
{
    struct collector *c = xcalloc(1, sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&registry_mu);
    c->next = collectors;
    collectors = c;
    pthread_mutex_unlock(&registry_mu);
}

void metrics_remove_collector(metrics_collect_fn fn, void *arg)
{
    pthread_mutex_lock(&registry_mu);
    for (struct collector **pp = &collectors; *pp; pp = &(*pp)->next) {
        if ((*pp)->fn == fn && (*pp)->arg == arg) {
            struct collector *dead = *pp;
            *pp = dead->next;
            xfree(dead);
            break;
        }
    }
    pthread_mutex_unlock(&registry_mu);
}

static int put_escaped(struct buf *out, const char *v, int for_help)
{
    int rc = 0;
    for (; *v && !rc; v++) {
        if (*v == '\\')
            rc = buf_append_str(out, "\\\\");
        else if (*v == '\n')
            rc = buf_append_str(out, "\\n");
        else if (*v == '"' && !for_help)
            rc = buf_append_str(out, "\\\"");
        else
            rc = buf_append_char(out, *v);
    }
    return rc;
}

static int put_number(struct buf *out, double v)
{
    if (isinf(v))
        return buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
    if (isnan(v))
        return buf_append_str(out, "NaN");
    if (v == (double)(long long)v && fabs(v) < 1e15)
        return buf_printf(out, "%lld", (long long)v);
    return buf_printf(out, "%.17g", v);
}

/* name{l1="v1",...,extra_k="extra_v"} */
static int put_labels(struct buf *out, const struct metric_series *s, const char *extra_k,
                      const char *extra_v)
{
    const struct metric_family *f = s->fam;
    if (f->n_labels == 0 && !extra_k)
        return 0;
    int rc = buf_append_char(out, '{');
    for (int i = 0; i < f->n_labels && !rc; i++) {
        rc |= buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
        rc |= put_escaped(out, s->values[i], 0);
        rc |= buf_append_char(out, '"');
    }
    if (extra_k && !rc)
        rc |= buf_printf(out, "%s%s=\"%s\"", f->n_labels ? "," : "", extra_k, extra_v);
    rc |= buf_append_char(out, '}');
    return rc;
}

static int render_family(struct buf *out, struct metric_family *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    int rc = buf_printf(out, "# HELP %s ", f->name);
    rc |= put_escaped(out, f->help, 1);
    rc |= buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    pthread_mutex_lock(&f->mu);
    for (struct metric_series *s = f->first; s && !rc; s = s->all) {
        if (f->type != FAM_HISTOGRAM) {
            rc |= buf_append_str(out, f->name);
            rc |= put_labels(out, s, NULL, NULL);
            rc |= buf_append_char(out, ' ');
            rc |= put_number(out, metrics_value(s));
            rc |= buf_append_char(out, '\n');
            continue;
        }
        unsigned long long cum = 0;
        for (size_t i = 0; i <= f->n_buckets && !rc; i++) {
            char le[40];
            if (i < f->n_buckets)
                snprintf(le, sizeof(le), "%g", f->buckets[i]);
            else
                snprintf(le, sizeof(le), "+Inf");
            cum += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
            rc |= buf_printf(out, "%s_bucket", f->name);
            rc |= put_labels(out, s, "le", le);
            rc |= buf_printf(out, " %llu\n", cum);
        }
        rc |= buf_printf(out, "%s_sum", f->name);
        rc |= put_labels(out, s, NULL, NULL);
        rc |= buf_append_char(out, ' ');
        rc |= put_number(out, metrics_value(s));
        rc |= buf_printf(out, "\n%s_count", f->name);
        rc |= put_labels(out, s, NULL, NULL);
        /* The count is the +Inf bucket so the two always agree. */
        rc |= buf_printf(out, " %llu\n", cum);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int metrics_render(struct buf *out)
{
    /* Collectors run under the registry lock so none is removed mid-call;
     * they only touch series, which take their own family locks. */
    pthread_mutex_lock(&registry_mu);
    for (struct collector *c = collectors; c; c = c->next)
        c->fn(c->arg);
    struct metric_family *fs = families;
    pthread_mutex_unlock(&registry_mu);
    /* Families are only appended, never removed before shutdown. */
    int rc = 0;
    for (struct metric_family *f = fs; f && !rc; f = f->next)
        rc = render_family(out, f);
    return rc ? LOCI_ETOOBIG : LOCI_OK;
}

void metrics_shutdown(void)
{
    pthread_mutex_lock(&registry_mu);
    struct metric_family *f = families;
    while (f) {
        struct metric_family *next = f->next;
        struct metric_series *s = f->first;
        while (s) {
            struct metric_series *sn = s->all;
            for (int i = 0; i < f->n_labels; i++)
                xfree(s->values[i]);
            xfree(s->values);
            xfree(s->counts);
            xfree(s->key);
            xfree(s);
            s = sn;
        }
        for (int i = 0; i < f->n_labels; i++)
            xfree(f->labels[i]);
        pthread_mutex_destroy(&f->mu);
        xfree(f->buckets);
        xfree(f->name);
        xfree(f->help);
        xfree(f);
        f = next;
    }
    families = families_tail = NULL;
    struct collector *c = collectors;
    while (c) {
        struct collector *next = c->next;
        xfree(c);
        c = next;
    }
    collectors = NULL;
    pthread_mutex_unlock(&registry_mu);
}
