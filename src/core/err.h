/*
 * err.h - the one error type of Loci.
 *
 * Every fallible function returns an int that is 0 (LOCI_OK) on success or a
 * negative enum loci_err. The API layer maps these to HTTP statuses in one
 * place (api/http.c); nothing else invents status codes. Positive values are
 * reserved for "more data" style results such as LOCI_ROW from the store.
 */
#ifndef LOCI_CORE_ERR_H
#define LOCI_CORE_ERR_H

enum loci_err {
    LOCI_OK = 0,
    LOCI_ENOMEM = -1,          /* allocation failed (normally we abort instead) */
    LOCI_EINVAL = -2,          /* malformed input: 400 */
    LOCI_ENOTFOUND = -3,       /* no such thing, or not yours: 404 */
    LOCI_ECONFLICT = -4,       /* unique violation, state conflict: 409 */
    LOCI_EIO = -5,             /* I/O or backend failure: 500 */
    LOCI_EAGAIN = -6,          /* transient: retry later (busy, serialization): 503 */
    LOCI_EAUTH = -7,           /* not authenticated: 401 */
    LOCI_EPERM = -8,           /* authenticated but not allowed: 403 */
    LOCI_ETOOBIG = -9,         /* over a size limit: 413 */
    LOCI_EMEDIATYPE = -10,     /* unsupported content type: 415 */
    LOCI_EUNPROCESSABLE = -11, /* well-formed but fails validation: 422 */
    LOCI_ERATELIMIT = -12,     /* over a rate limit: 429 */
    LOCI_EPAYMENT = -13,       /* not enough credit: 402 */
    LOCI_EMETHOD = -14,        /* method not allowed on this path: 405 */
    LOCI_EUNAVAILABLE = -15,   /* dependency down (database, ...): 503 */
    LOCI_ETIMEOUT = -16,       /* deadline passed: 504 */
    LOCI_ESCHEMA = -17,        /* database schema newer than this binary */
    LOCI_EINTERNAL = -18,      /* a bug: 500 */
};

/* Short stable machine-readable code for an error, e.g. "not_found".
 * Never NULL; unknown values give "internal". */
const char *loci_err_code(int err);

/* Human-readable default message for an error. Never NULL. */
const char *loci_err_message(int err);

/* The HTTP status for an error (0 maps to 200). */
int loci_err_http_status(int err);

#endif
