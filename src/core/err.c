/*
 * err.c - the single mapping of enum loci_err to codes, messages and HTTP
 * statuses. Adding an error means adding one row here.
 */
#include "core/err.h"

#include <stddef.h>

struct err_row {
    int err;
    int status;
    const char *code;
    const char *message;
};

static const struct err_row err_rows[] = {
    {LOCI_OK, 200, "ok", "ok"},
    {LOCI_ENOMEM, 500, "internal", "out of memory"},
    {LOCI_EINVAL, 400, "bad_request", "the request is malformed"},
    {LOCI_ENOTFOUND, 404, "not_found", "not found"},
    {LOCI_ECONFLICT, 409, "conflict", "conflicts with the current state"},
    {LOCI_EIO, 500, "internal", "internal error"},
    {LOCI_EAGAIN, 503, "unavailable", "temporarily unavailable, retry later"},
    {LOCI_EAUTH, 401, "unauthorized", "authentication required"},
    {LOCI_EPERM, 403, "forbidden", "not allowed"},
    {LOCI_ETOOBIG, 413, "payload_too_large", "the request body is too large"},
    {LOCI_EMEDIATYPE, 415, "unsupported_media_type", "unsupported content type"},
    {LOCI_EUNPROCESSABLE, 422, "validation_failed", "the request failed validation"},
    {LOCI_ERATELIMIT, 429, "rate_limited", "too many requests"},
    {LOCI_EPAYMENT, 402, "payment_required", "not enough energy"},
    {LOCI_EMETHOD, 405, "method_not_allowed", "method not allowed"},
    {LOCI_EUNAVAILABLE, 503, "unavailable", "a dependency is unavailable"},
    {LOCI_ETIMEOUT, 504, "timeout", "the operation timed out"},
    {LOCI_ESCHEMA, 500, "schema_too_new", "the database schema is newer than this binary"},
    {LOCI_EINTERNAL, 500, "internal", "internal error"},
};

static const struct err_row *err_find(int err)
{
    for (size_t i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++) {
        if (err_rows[i].err == err)
            return &err_rows[i];
    }
    return &err_rows[sizeof(err_rows) / sizeof(err_rows[0]) - 1];
}

const char *loci_err_code(int err)
{
    return err_find(err)->code;
}

const char *loci_err_message(int err)
{
    return err_find(err)->message;
}

int loci_err_http_status(int err)
{
    return err_find(err)->status;
}
