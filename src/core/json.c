/*
 * json.c - the depth pre-scan runs before jansson so that a hostile body
 * cannot make the parser recurse deeply; jansson then does the real parse.
 */
#include "core/json.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>

static void locate(const char *p, size_t pos, struct json_error *err)
{
    int line = 1, col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (p[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    err->position = pos;
    err->line = line;
    err->column = col;
}

/* Returns the offset where depth first exceeds max, or (size_t)-1. */
static size_t depth_scan(const char *p, size_t n, int max_depth)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return i;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return (size_t)-1;
}

int json_parse_limited(const char *p, size_t n, int max_depth, json_t **out, struct json_error *err)
{
    memset(err, 0, sizeof(*err));
    *out = NULL;
    if (n == 0) {
        locate(p, 0, err);
        snprintf(err->message, sizeof(err->message), "empty body, expected a JSON value");
        return LOCI_EINVAL;
    }
    size_t deep = depth_scan(p, n, max_depth);
    if (deep != (size_t)-1) {
        locate(p, deep, err);
        snprintf(err->message, sizeof(err->message), "nesting deeper than %d levels", max_depth);
        return LOCI_EINVAL;
    }
    json_error_t je;
    json_t *v = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v) {
        size_t pos = je.position > 0 ? (size_t)je.position : 0;
        if (pos > n)
            pos = n;
        /* jansson reports the position after the offending token. */
        locate(p, pos > 0 ? pos - 1 : 0, err);
        snprintf(err->message, sizeof(err->message), "%s", je.text);
        return LOCI_EINVAL;
    }
    *out = v;
    return LOCI_OK;
}

size_t json_utf8_length(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            count++;
    }
    return count;
}

static const char *type_name(enum json_ftype t)
{
    static const char *const names[] = {"string", "integer", "number", "boolean",
                                        "object", "array",   "any"};
    return names[t];
}

static bool type_ok(const json_t *v, enum json_ftype t)
{
    switch (t) {
    case JF_STRING:
        return json_is_string(v);
    case JF_INTEGER:
        return json_is_integer(v);
    case JF_NUMBER:
        return json_is_number(v);
    case JF_BOOLEAN:
        return json_is_boolean(v);
    case JF_OBJECT:
        return json_is_object(v);
    case JF_ARRAY:
        return json_is_array(v);
    case JF_ANY:
        return true;
    }
    return false;
}

static int check_field(const json_t *v, const struct json_field *f, char *msg, size_t msg_n)
{
    if (json_is_null(v)) {
        if (f->is_nullable)
            return LOCI_OK;
        snprintf(msg, msg_n, "'%s' must not be null", f->name);
        return LOCI_EUNPROCESSABLE;
    }
    if (!type_ok(v, f->type)) {
        snprintf(msg, msg_n, "'%s' must be of type %s", f->name, type_name(f->type));
        return LOCI_EUNPROCESSABLE;
    }
    if (f->type == JF_STRING) {
        size_t len = json_utf8_length(json_string_value(v), json_string_length(v));
        if ((long long)len < f->min || (f->max && (long long)len > f->max)) {
            snprintf(msg, msg_n, "'%s' must be %lld to %lld characters long", f->name, f->min,
                     f->max);
            return LOCI_EUNPROCESSABLE;
        }
        if (memchr(json_string_value(v), '\0', json_string_length(v))) {
            snprintf(msg, msg_n, "'%s' must not contain NUL characters", f->name);
            return LOCI_EUNPROCESSABLE;
        }
    } else if (f->type == JF_INTEGER) {
        long long x = json_integer_value(v);
        if (x < f->min || (f->max && x > f->max)) {
            snprintf(msg, msg_n, "'%s' must be from %lld to %lld", f->name, f->min, f->max);
            return LOCI_EUNPROCESSABLE;
        }
    } else if (f->type == JF_NUMBER) {
        double x = json_number_value(v);
        if (x < (double)f->min || (f->max && x > (double)f->max)) {
            snprintf(msg, msg_n, "'%s' must be from %lld to %lld", f->name, f->min, f->max);
            return LOCI_EUNPROCESSABLE;
        }
    } else if (f->type == JF_ARRAY) {
        long long sz = (long long)json_array_size(v);
        if (sz < f->min || (f->max && sz > f->max)) {
            snprintf(msg, msg_n, "'%s' must have %lld to %lld items", f->name, f->min, f->max);
            return LOCI_EUNPROCESSABLE;
        }
    }
    return LOCI_OK;
}

int json_validate(const json_t *v, const struct json_schema *schema, const char **out_field,
                  char *msg, size_t msg_n)
{
    *out_field = NULL;
    if (!json_is_object(v)) {
        snprintf(msg, msg_n, "the body must be a JSON object");
        return LOCI_EUNPROCESSABLE;
    }
    for (size_t i = 0; i < schema->n_fields; i++) {
        const struct json_field *f = &schema->fields[i];
        const json_t *fv = json_object_get(v, f->name);
        if (!fv) {
            if (f->is_required) {
                *out_field = f->name;
                snprintf(msg, msg_n, "'%s' is required", f->name);
                return LOCI_EUNPROCESSABLE;
            }
            continue;
        }
        int rc = check_field(fv, f, msg, msg_n);
        if (rc) {
            *out_field = f->name;
            return rc;
        }
    }
    if (!schema->allow_unknown) {
        const char *key;
        const json_t *fv;
        json_object_foreach((json_t *)v, key, fv)
        {
            bool known = false;
            for (size_t i = 0; i < schema->n_fields && !known; i++)
                known = strcmp(schema->fields[i].name, key) == 0;
            if (!known) {
                *out_field = key;
                snprintf(msg, msg_n, "unknown field '%.60s'", key);
                return LOCI_EUNPROCESSABLE;
            }
        }
    }
    return LOCI_OK;
}
