/*
 * buf.h - length-carrying strings and growable byte buffers with a hard
 * maximum (curl's dynbuf "toobig"): a buffer that grows from input refuses to
 * grow past the limit it was created with.
 *
 * A struct buf is owned by whoever embeds it; not thread-safe.
 */
#ifndef LOCI_CORE_BUF_H
#define LOCI_CORE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A borrowed string slice; p need not be NUL-terminated. */
struct str {
    const char *p;
    size_t n;
};

#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})

struct str str_from(const char *s);
bool str_eq(struct str a, struct str b);
bool str_eq_cstr(struct str a, const char *s);
bool str_case_eq_cstr(struct str a, const char *s);
bool str_has_prefix(struct str a, const char *prefix);
/* FNV-1a of a NUL-terminated string, for hash tables (not for secrets). */
uint32_t str_hash(const char *s);

struct buf {
    char *p; /* NUL-terminated when len > 0 or after buf_cstr() */
    size_t len;
    size_t cap;
    size_t max; /* growth beyond this fails with LOCI_ETOOBIG */
};

/* Set up an empty buffer that may hold at most max bytes. */
void buf_init(struct buf *b, size_t max);
/* Free the contents; the buffer can be reused after buf_init(). */
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
/* Append; return 0 or LOCI_ETOOBIG (the buffer is unchanged then). */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_char(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Append s as the inside of a JSON string (escaped, no quotes). */
int buf_append_json_escaped(struct buf *b, const char *s, size_t n);
/* Always NUL-terminated, never NULL. */
const char *buf_cstr(struct buf *b);
/* Take ownership of the bytes (NUL-terminated); the buffer becomes empty. */
char *buf_detach(struct buf *b, size_t *out_len);

/* Checked integer parsing of a whole string: no sign surprises, no trailing
 * garbage, range-checked. Return 0 or LOCI_EINVAL. */
int parse_int64(const char *s, long long min, long long max, long long *out);
int parse_int64_n(const char *s, size_t n, long long min, long long max, long long *out);
int parse_double(const char *s, double *out);
int parse_bool(const char *s, bool *out);

#endif
