/*
 * log.c - JSON line writer. The level and fd are set once at start-up
 * (before threads) and read with relaxed atomics afterwards.
 */
#include "core/log.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static atomic_int log_level_cur = LOG_INFO;
static atomic_int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    atomic_store(&log_level_cur, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&log_level_cur, memory_order_relaxed);
}

void log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load_explicit(&log_level_cur, memory_order_relaxed);
}

int log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return LOCI_OK;
        }
    }
    return LOCI_EINVAL;
}

const char *log_level_name(enum log_level level)
{
    return level_names[(int)level & 3];
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        if (strncasecmp(p, needle, n) == 0)
            return true;
    }
    return false;
}

bool log_key_is_secret(const char *key)
{
    static const char *const words[] = {"password", "passwd",        "token",  "secret",
                                        "key",      "authorization", "cookie", "credential"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (contains_ci(key, words[i]))
            return true;
    }
    return false;
}

static int add_str(struct buf *b, const char *key, const char *val)
{
    int rc = buf_append_str(b, ",\"");
    rc |= buf_append_json_escaped(b, key, strlen(key));
    rc |= buf_append_str(b, "\":\"");
    rc |= buf_append_json_escaped(b, val, strlen(val));
    rc |= buf_append_char(b, '"');
    return rc;
}

void log_line(const struct log_ctx *ctx, enum log_level level, const char *msg,
              const struct log_field *fields, int n_fields)
{
    if (!log_enabled(level))
        return;
    char ts[32];
    clock_format_rfc3339(clock_now_ms(), ts, sizeof(ts));
    struct buf b;
    int rc = 0;
    buf_init(&b, 64 * 1024);
    rc |= buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, log_level_name(level));
    rc |= buf_append_json_escaped(&b, msg, strlen(msg));
    rc |= buf_append_char(&b, '"');
    if (ctx) {
        if (ctx->request_id)
            rc |= add_str(&b, "request_id", ctx->request_id);
        if (ctx->trace_id)
            rc |= add_str(&b, "trace_id", ctx->trace_id);
        if (ctx->user_id)
            rc |= add_str(&b, "user_id", ctx->user_id);
        if (ctx->route)
            rc |= add_str(&b, "route", ctx->route);
        if (ctx->job_id)
            rc |= add_str(&b, "job_id", ctx->job_id);
    }
    for (int i = 0; i < n_fields; i++) {
        const struct log_field *f = &fields[i];
        if (f->type == LOG_F_STR) {
            rc |= add_str(&b, f->key,
                          !f->v.s                     ? ""
                          : log_key_is_secret(f->key) ? "[redacted]"
                                                      : f->v.s);
        } else if (f->type == LOG_F_INT) {
            rc |= buf_printf(&b, ",\"%s\":%lld", f->key, (long long)f->v.i);
        } else if (f->type == LOG_F_DOUBLE) {
            rc |= buf_printf(&b, ",\"%s\":%.3f", f->key, f->v.d);
        } else {
            rc |= buf_printf(&b, ",\"%s\":%s", f->key, f->v.b ? "true" : "false");
        }
    }
    rc |= buf_append_str(&b, "}\n");
    if (rc != LOCI_OK) {
        /* Over the line limit: say so rather than emit broken JSON. */
        buf_reset(&b);
        buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"log line too long\"}\n", ts,
                   log_level_name(level));
    }
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    const char *p = b.p;
    size_t left = b.len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    buf_release(&b);
}

void log_printf(const struct log_ctx *ctx, enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_line(ctx, level, msg, NULL, 0);
}
