/*
 * json.h - JSON input handling on top of jansson: parsing untrusted bodies
 * with a depth limit and an exact error position, and a small declarative
 * schema check that names the offending field.
 *
 * Not a general JSON Schema implementation: just what request bodies need.
 * Thread-safe (no shared state).
 */
#ifndef LOCI_CORE_JSON_H
#define LOCI_CORE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct json_error {
    size_t position; /* byte offset of the problem */
    int line;        /* 1-based */
    int column;      /* 1-based, in bytes */
    char message[160];
};

/* Parse n bytes as one JSON value with nesting at most max_depth. Returns 0
 * and a new reference in *out (caller json_decref()s), or LOCI_EINVAL with
 * err filled. Duplicate object keys are rejected. */
int json_parse_limited(const char *p, size_t n, int max_depth, json_t **out,
                       struct json_error *err);

enum json_ftype { JF_STRING, JF_INTEGER, JF_NUMBER, JF_BOOLEAN, JF_OBJECT, JF_ARRAY, JF_ANY };

/* One field of an object schema. For strings min/max bound the length in
 * Unicode code points; for integers and numbers the value; for arrays the
 * element count. max 0 means no upper bound. */
struct json_field {
    const char *name;
    enum json_ftype type;
    bool is_required;
    bool is_nullable;
    long long min;
    long long max;
};

struct json_schema {
    const struct json_field *fields;
    size_t n_fields;
    bool allow_unknown; /* false: an unknown field is an error naming it */
};

/* Check that v is an object matching the schema. Returns 0, or
 * LOCI_EUNPROCESSABLE with *out_field (borrowed: schema or body memory) and
 * msg describing the first problem. */
int json_validate(const json_t *v, const struct json_schema *schema, const char **out_field,
                  char *msg, size_t msg_n);

/* Number of Unicode code points in valid UTF-8 s. */
size_t json_utf8_length(const char *s, size_t n);

#endif
