/*
 * buf.c - bounded growable buffers, string slices and checked number parsing.
 */
#include "core/buf.h"

#include "core/alloc.h"
#include "core/err.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct str str_from(const char *s)
{
    struct str r = {s ? s : "", s ? strlen(s) : 0};
    return r;
}

bool str_eq(struct str a, struct str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

bool str_eq_cstr(struct str a, const char *s)
{
    return str_eq(a, str_from(s));
}

bool str_case_eq_cstr(struct str a, const char *s)
{
    size_t n = strlen(s);
    return a.n == n && strncasecmp(a.p, s, n) == 0;
}

bool str_has_prefix(struct str a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.n >= n && memcmp(a.p, prefix, n) == 0;
}

uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

void buf_init(struct buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_release(struct buf *b)
{
    xfree(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return LOCI_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return LOCI_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
    return LOCI_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return LOCI_OK;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_append_char(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return LOCI_EINVAL;
    if ((size_t)n < sizeof(small))
        return buf_append(b, small, (size_t)n);
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return LOCI_OK;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int buf_append_json_escaped(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = '\0';
            esc = u;
        }
        if (!esc)
            continue;
        int rc = buf_append(b, s + start, i - start);
        if (!rc)
            rc = buf_append_str(b, esc);
        if (rc)
            return rc;
        start = i + 1;
    }
    return buf_append(b, s + start, n - start);
}

const char *buf_cstr(struct buf *b)
{
    return b->p ? b->p : "";
}

char *buf_detach(struct buf *b, size_t *out_len)
{
    char *p = b->p ? b->p : xstrdup("");
    if (out_len)
        *out_len = b->len;
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

int parse_int64_n(const char *s, size_t n, long long min, long long max, long long *out)
{
    char tmp[32];
    if (n == 0 || n >= sizeof(tmp))
        return LOCI_EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return parse_int64(tmp, min, max, out);
}

int parse_int64(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return LOCI_EINVAL;
    const char *c = s;
    if (*c == '-' || *c == '+')
        c++;
    if (*c < '0' || *c > '9')
        return LOCI_EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end != '\0' || v < min || v > max)
        return LOCI_EINVAL;
    *out = v;
    return LOCI_OK;
}

int parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return LOCI_EINVAL;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno || !end || *end != '\0' || !isfinite(v))
        return LOCI_EINVAL;
    *out = v;
    return LOCI_OK;
}

int parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return LOCI_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return LOCI_OK;
        }
    }
    return LOCI_EINVAL;
}
