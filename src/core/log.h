/*
 * log.h - structured logs: one JSON object per line on stderr (or a chosen
 * fd), written with a single write(2) so lines from threads never interleave.
 *
 * Every line carries the context it was logged in (request id, trace id,
 * user id, route, job id) so a request can be followed across lines. Bodies
 * are never logged; values of keys that look secret are replaced by
 * "[redacted]" (log_key_is_secret). Safe from any thread.
 */
#ifndef LOCI_CORE_LOG_H
#define LOCI_CORE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Where a line comes from; every member may be NULL. Borrowed. */
struct log_ctx {
    const char *request_id;
    const char *trace_id;
    const char *user_id;
    const char *route;
    const char *job_id;
};

enum log_field_type { LOG_F_STR, LOG_F_INT, LOG_F_DOUBLE, LOG_F_BOOL };

/* An extra key/value on a line. */
struct log_field {
    const char *key;
    enum log_field_type type;
    union {
        const char *s;
        int64_t i;
        double d;
        bool b;
    } v;
};

#define LF_STR(k, val)  ((struct log_field){.key = (k), .type = LOG_F_STR, .v.s = (val)})
#define LF_INT(k, val)  ((struct log_field){.key = (k), .type = LOG_F_INT, .v.i = (int64_t)(val)})
#define LF_DBL(k, val)  ((struct log_field){.key = (k), .type = LOG_F_DOUBLE, .v.d = (val)})
#define LF_BOOL(k, val) ((struct log_field){.key = (k), .type = LOG_F_BOOL, .v.b = (val)})

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Send lines to fd instead of stderr (tests). */
void log_set_fd(int fd);
/* "debug", "info", "warn", "error" -> level; 0 or LOCI_EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);
bool log_enabled(enum log_level level);

/* True for key names that hold secrets: password, token, secret, key,
 * authorization, cookie (case-insensitive, as a part of the name). */
bool log_key_is_secret(const char *key);

void log_line(const struct log_ctx *ctx, enum log_level level, const char *msg,
              const struct log_field *fields, int n_fields);
void log_printf(const struct log_ctx *ctx, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(ctx, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_printf((ctx), LOG_DEBUG, __VA_ARGS__);                                             \
    } while (0)
#define log_info(ctx, ...)  log_printf((ctx), LOG_INFO, __VA_ARGS__)
#define log_warn(ctx, ...)  log_printf((ctx), LOG_WARN, __VA_ARGS__)
#define log_error(ctx, ...) log_printf((ctx), LOG_ERROR, __VA_ARGS__)

#endif
