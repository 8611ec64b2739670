/*
 * http.h - Loci's HTTP core on libmicrohttpd: a declarative route table,
 * request/response helpers, and the middleware every request passes through
 * (request id, trace context, body limits, JSON parsing and validation,
 * security headers, CORS, access log, metrics, graceful shutdown).
 *
 * Not for: business rules (domain modules) or SQL (store). Handlers parse,
 * authorise, call the domain and reply.
 *
 * Threads: the server runs a pool of MHD threads; a handler runs on one of
 * them and owns its struct http_req for the duration of the call. Handlers
 * must not block on the network.
 */
#ifndef LOCI_API_HTTP_H
#define LOCI_API_HTTP_H

#include "core/arena.h"
#include "core/config.h"
#include "core/json.h"
#include "core/log.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_req;
struct http_server;

enum http_method {
    HTTP_GET = 1 << 0,
    HTTP_HEAD = 1 << 1,
    HTTP_POST = 1 << 2,
    HTTP_PUT = 1 << 3,
    HTTP_PATCH = 1 << 4,
    HTTP_DELETE = 1 << 5,
    HTTP_OPTIONS = 1 << 6,
};

enum http_route_flags {
    HTTP_R_JSON_BODY = 1 << 0,   /* body must be JSON (415 otherwise), parsed before the handler */
    HTTP_R_NO_LOG = 1 << 1,      /* no access log line (e.g. /metrics scraped every few s) */
    HTTP_R_AUTH = 1 << 2,        /* a signed-in user (access token or API key) */
    HTTP_R_ADMIN = 1 << 3,       /* ... with the admin role (implies HTTP_R_AUTH) */
    HTTP_R_OFFLOAD = 1 << 4,     /* CPU-heavy (password hashing): the `before` hook and the
                                    handler run on the offload pool while the connection is
                                    suspended, so HTTP threads stay free for other requests */
    HTTP_R_STREAM_BODY = 1 << 5, /* the body is not buffered: the route's on_body gets it
                                    piece by piece as it arrives (uploads; see below) */
};

/* A handler replies through the http_reply_* functions and returns 0, or
 * returns an enum loci_err and the core replies with the mapped error. */
typedef int (*http_handler_fn)(struct http_req *req);

/* HTTP_R_STREAM_BODY routes: called once with p == NULL and n == 0 as soon
 * as the headers are in and the `before` hook has accepted the request (a
 * reply or an error here refuses the body unread: check the size and type
 * here; a body announced as at most 16 MiB is discarded so the answer goes
 * out on a live connection, anything else is answered at once and the
 * connection closed), then with each piece of the body as it arrives,
 * on an HTTP thread (no network waits; bounded disk writes are fine). A
 * reply or an error stops the reading: the rest of the body is discarded.
 * The handler runs when the body is complete. */
typedef int (*http_body_fn)(struct http_req *req, const char *p, size_t n);

struct http_route {
    unsigned method;  /* one enum http_method */
    const char *path; /* "/api/v1/jobs/:id"; ":name" matches one segment */
    http_handler_fn handler;
    unsigned flags;                   /* enum http_route_flags */
    long long body_limit;             /* bytes; 0 = config max_body_bytes */
    const struct json_schema *schema; /* validated when HTTP_R_JSON_BODY; NULL = any JSON */
    const char *summary;              /* one line, for docs and errors */
    int rate_class;                   /* interpreted by the `before` hook; 0 = default */
    http_body_fn on_body;             /* HTTP_R_STREAM_BODY routes */
};

struct http_server_opts {
    const struct config *cfg;
    const struct http_route *routes;
    size_t n_routes;
    /* Called for GET/HEAD requests that match no route (static files);
     * returns LOCI_ENOTFOUND to fall through to the JSON 404. May be NULL. */
    http_handler_fn fallback;
    /* Runs after routing and body checks, before every route's handler
     * (authentication, authorisation, rate limits). Replying or returning
     * an error stops the request there. May be NULL. */
    http_handler_fn before;
    void *app; /* handed to handlers by http_app() */
    /* Called by http_server_stop() once still-waiting deferred requests
     * were answered 503 and streams ended, so their owners let go of them
     * (http_deferred_done, http_stream_close). May be NULL. */
    void (*on_drain)(void *app);
};

/* Start listening per cfg (listen, port, threads, TLS). Returns 0 and the
 * server, or an error with a message in err (e.g. the port is taken). */
int http_server_start(const struct http_server_opts *opts, struct http_server **out, char *err,
                      size_t err_n);
/* The port actually bound (useful with port 0 in tests). */
int http_server_port(const struct http_server *srv);
/* Graceful stop: stop accepting, wait up to timeout_ms for in-flight
 * requests, then close everything and free the server. Returns the number of
 * requests that were still in flight when the deadline passed. */
int http_server_stop(struct http_server *srv, int timeout_ms);
/* Requests currently being handled. */
int http_server_in_flight(const struct http_server *srv);

/* ---- request accessors (valid for the duration of the handler) ---- */
void *http_app(struct http_req *req);
const struct config *http_config(struct http_req *req);
struct arena *http_arena(struct http_req *req);
const struct log_ctx *http_log(struct http_req *req);
unsigned http_method(struct http_req *req);
const char *http_path(struct http_req *req);
/* The matched route's pattern, e.g. "/api/v1/jobs/:id" ("" when none). */
const char *http_route_pattern(struct http_req *req);
/* A ":name" path parameter, NULL when absent. */
const char *http_param(struct http_req *req, const char *name);
/* A query-string argument, NULL when absent. */
const char *http_query(struct http_req *req, const char *name);
/* A request header (case-insensitive name), NULL when absent. With several
 * lines of the same name, the first. */
const char *http_header(struct http_req *req, const char *name);
/* Every line of a header joined with ", " into out (list headers such as
 * X-Forwarded-For may come as several lines). Returns the line count; 0
 * and "" when absent. A value that does not fit is cut. */
int http_header_join(struct http_req *req, const char *name, char *out, size_t n);
/* The route matched (NULL for fallbacks). */
const struct http_route *http_route(struct http_req *req);
/* What the `before` hook learnt about the caller (arena memory), for
 * handlers; NULL when anonymous. */
void http_set_principal(struct http_req *req, void *principal);
void *http_principal(struct http_req *req);
/* Put the caller's user id in every log line of this request. */
void http_set_log_user(struct http_req *req, const char *user_id);
/* Replace the peer address (after X-Forwarded-For from a trusted proxy). */
void http_set_client_ip(struct http_req *req, const char *ip);
/* Value of cookie `name` from the Cookie header, NULL when absent. */
const char *http_cookie(struct http_req *req, const char *name);

/* State a streamed body is read into (HTTP_R_STREAM_BODY): release runs
 * when the request ends, however it ends (the client gone mid-body too). */
void http_set_body_state(struct http_req *req, void *state, void (*release)(void *state));
void *http_body_state(struct http_req *req);

/* multipart/form-data (or urlencoded) bodies of streamed routes, parsed as
 * they arrive by libmicrohttpd's post processor: fn gets each piece of
 * each field in order (off: the piece's offset in its field; a new part
 * starts at off 0) and returns 0 or an error, which stops the parsing.
 * http_form_new() is NULL when the request is not a form. */
typedef int (*http_form_fn)(void *arg, const char *field, const char *filename,
                            const char *content_type, const char *data, uint64_t off, size_t n);
struct http_form;
struct http_form *http_form_new(struct http_req *req, http_form_fn fn, void *arg);
/* Feed a piece of the body: fn's error, or LOCI_EINVAL for a malformed form. */
int http_form_feed(struct http_form *f, const char *p, size_t n);
/* Free the parser; LOCI_EINVAL when the body ended inside a part. NULL-safe. */
int http_form_finish(struct http_form *f);

/* The parsed JSON body of a HTTP_R_JSON_BODY route (borrowed). */
json_t *http_json(struct http_req *req);
/* The raw body bytes (borrowed; NUL-terminated). */
const char *http_body(struct http_req *req, size_t *out_len);
const char *http_request_id(struct http_req *req);
/* The client's IP address as text. */
const char *http_client_ip(struct http_req *req);
bool http_is_tls(struct http_req *req);

/* ---- replies: exactly one per request ---- */
/* Add a response header (copied). */
void http_set_header(struct http_req *req, const char *name, const char *value);
/* Reply with a JSON document; takes the reference to body. */
int http_reply_json(struct http_req *req, int status, json_t *body);
/* Reply with the one error shape:
 * {"error":{"code","message","field","request_id"}}. field may be NULL;
 * fmt NULL uses the error's default message. */
int http_reply_error(struct http_req *req, int err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reply with the one error shape but an explicit status and code. */
int http_reply_error_status(struct http_req *req, int status, const char *code, const char *field,
                            const char *message);
/* Reply with bytes; copied when is_copy, else they must be static. */
int http_reply_bytes(struct http_req *req, int status, const char *content_type, const void *data,
                     size_t n, bool is_copy);
/* Reply with an open file (the core closes fd). */
int http_reply_fd(struct http_req *req, int status, const char *content_type, int fd,
                  uint64_t size);
bool http_has_reply(struct http_req *req);

/* ---- deferred replies: answer later, from another thread ----
 * A handler that waits for work done elsewhere (a job) calls http_defer()
 * and returns 0 without replying: the connection is suspended, holding no
 * HTTP thread. Later, on any thread, the owner calls http_deferred_claim();
 * when it returns true the owner replies with http_reply_*() on req. Either
 * way the owner then calls http_deferred_done() exactly once, which sends the
 * reply and drops its hold on req (req must not be touched after). At
 * shutdown the server answers still-waiting requests 503 itself, so the
 * owner's claim then returns false. */
int http_defer(struct http_req *req); /* LOCI_EUNAVAILABLE when shutting down */
bool http_deferred_claim(struct http_req *req);
void http_deferred_done(struct http_req *req);

/* ---- streamed bodies (Server-Sent Events) ----
 * http_stream_open() replies now with status and content_type and a body
 * written later by http_stream_write() from any thread; the handler then
 * returns 0. Writes are buffered up to max_buffered bytes: a client too slow
 * to take them ends the stream (LOCI_ETOOBIG); after the client left a write
 * is LOCI_EIO. The owner calls http_stream_close() exactly once; the body
 * ends when the buffer is drained. NULL when the server is shutting down. */
struct http_stream;
struct http_stream *http_stream_open(struct http_req *req, int status, const char *content_type,
                                     size_t max_buffered);
int http_stream_write(struct http_stream *s, const void *p, size_t n);
void http_stream_close(struct http_stream *s);

/* ---- protocol upgrades (WebSocket) ----
 * http_reply_upgrade() replies 101 Switching Protocols with the headers set
 * by http_set_header() (Upgrade, Sec-WebSocket-Accept...). Once the 101 is
 * sent, fn runs on an HTTP thread with the connection's socket: fd is then
 * the callee's to close (non-blocking, close-on-exec; the server keeps
 * nothing of the connection) and extra holds bytes the client sent after
 * its request (valid during the call). fn must not block. When the 101
 * never goes out (the client left), fn gets fd -1 so it can free arg.
 * LOCI_EUNAVAILABLE with TLS (terminate TLS at a proxy for WebSockets). */
typedef void (*http_upgrade_fn)(int fd, const void *extra, size_t n_extra, void *arg);
int http_reply_upgrade(struct http_req *req, http_upgrade_fn fn, void *arg);

/* Exposed for tests and docs: match path against pattern, filling up to
 * max_params (name, value) pairs. */
bool http_path_match(const char *pattern, const char *path, struct arena *a, const char **names,
                     const char **values, int *n_params, int max_params);
const char *http_method_name(unsigned method);
/* True when path is prefix itself or below it ("/api" covers "/api/x",
 * not "/apix"). */
bool http_path_under(const char *path, const char *prefix);
/* Parse a W3C traceparent header; writes the 32-hex trace id. */
bool http_parse_traceparent(const char *v, char out_trace_id[33]);
/* True for a client-supplied request id we accept (1-128 of [A-Za-z0-9._:-]). */
bool http_request_id_ok(const char *v);

#endif
