/*
 * http.c - the server core. The life of a request:
 *
 *   1st access call: set up struct http_req, match the route, take the
 *      request id and trace context, refuse an oversized Content-Length with
 *      413 at once (before reading any body).
 *   body calls:      append to a buffer bounded by the route's limit; past
 *      it, stop buffering and discard.
 *   last call:       run the middleware (405/404, 413, 415, 400, 422),
 *      the handler or the static fallback, then queue the response with the
 *      common headers. Responding here and not on the first call keeps the
 *      connection alive (MHD closes connections answered on the 1st call).
 *   completed:       access log line, metrics, free everything.
 */
#include "api/http.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PARAMS       8
#define MAX_RESP_HEADERS 24
/* After the limit, keep discarding at most this much before dropping the
 * connection, so a client that ignores the 413 cannot stream forever. */
#define DISCARD_SLACK (16u << 20)

struct resp_header {
    const char *name;
    const char *value;
};

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_server_opts opts;
    const struct config *cfg;
    atomic_int in_flight;
    int port;
    bool is_tls;
    char *tls_cert_pem;
    char *tls_key_pem;
    struct metric_family *m_requests;
    struct metric_family *m_duration;
    struct metric_series *m_in_flight;
    /* The offload pool: runs HTTP_R_OFFLOAD handlers off the HTTP threads. */
    pthread_mutex_t off_mu; /* guards off_head, off_tail, is_off_stopping */
    pthread_cond_t off_cv;
    struct http_req *off_head;
    struct http_req *off_tail;
    bool is_off_stopping;
    int64_t off_deadline_ns; /* queued work after this is answered 503 */
    int n_off_threads;
    pthread_t *off_threads;
    /* Deferred replies and streams: guarded by defer_mu (each stream's own
     * buffer by its mu). */
    pthread_mutex_t defer_mu;
    struct http_req *deferred;   /* requests waiting for http_deferred_done() */
    struct http_stream *streams; /* open streams */
    bool is_defer_stopping;
};

/* An SSE (or any chunked) body written from another thread. */
struct http_stream {
    struct http_server *srv;
    struct MHD_Connection *conn;
    pthread_mutex_t mu; /* guards everything below */
    struct buf pending; /* bytes not yet handed to MHD, from `off` */
    size_t off;
    bool is_closed;                  /* no more writes: end of stream once drained */
    bool is_gone;                    /* MHD is done with the response (sent or client left) */
    bool is_suspended;               /* the reader found nothing and suspended the connection */
    int refs;                        /* the owner and the MHD response */
    struct http_stream *next, *prev; /* srv->streams, under srv->defer_mu */
};

struct http_req {
    struct http_server *srv;
    struct MHD_Connection *conn;
    struct arena arena;
    unsigned method;
    char *method_str; /* as sent, for messages about unknown methods */
    char *path;
    const struct http_route *route;
    unsigned allow; /* methods allowed on the path when the method did not match */
    bool is_static; /* answered by the fallback */
    const char *pnames[MAX_PARAMS];
    const char *pvals[MAX_PARAMS];
    int n_params;
    long long body_limit;
    struct buf body;
    bool is_body_too_big;
    size_t discarded;
    json_t *json;
    char request_id[130];
    char trace_id[33];
    char client_ip[INET6_ADDRSTRLEN];
    void *principal;
    struct log_ctx log;
    int64_t t0;
    int status; /* 0 until a reply is made */
    struct MHD_Response *resp;
    struct resp_header headers[MAX_RESP_HEADERS];
    int n_headers;
    size_t resp_bytes;
    bool is_queued;
    bool is_offloaded;           /* handed to the offload pool, connection suspended */
    atomic_bool is_offload_done; /* the pool ran the handler; reply on resume */
    struct http_req *off_next;   /* offload queue link */
    /* http_defer(): the fields below are guarded by srv->defer_mu */
    bool is_deferred;
    bool is_suspended;   /* on_access suspended the connection */
    bool is_reply_ready; /* the owner (or shutdown) replied: queue on resume */
    bool is_claimed;     /* someone won http_deferred_claim() */
    int refs;            /* deferred: the owner and MHD; freed at 0 */
    struct http_req *defer_next, *defer_prev;
    http_upgrade_fn upgrade_fn; /* http_reply_upgrade(): until the socket is handed over */
    void *upgrade_arg;
    /* HTTP_R_STREAM_BODY */
    bool is_guarded;  /* the `before` hook ran on the first call */
    int body_rc;      /* on_body's error: the rest of the body is discarded */
    void *body_state; /* http_set_body_state() */
    void (*body_release)(void *);
};

/* ------------------------------------------------------------------ */
/* small parsers                                                        */

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {{"GET", HTTP_GET},        {"HEAD", HTTP_HEAD},   {"POST", HTTP_POST},
               {"PUT", HTTP_PUT},        {"PATCH", HTTP_PATCH}, {"DELETE", HTTP_DELETE},
               {"OPTIONS", HTTP_OPTIONS}};

static unsigned method_bit(const char *m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(methods[i].name, m) == 0)
            return methods[i].bit;
    }
    return 0;
}

const char *http_method_name(unsigned method)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (methods[i].bit == method)
            return methods[i].name;
    }
    return "OTHER";
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static bool all_zero(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '0')
            return false;
    }
    return true;
}

bool http_parse_traceparent(const char *v, char out_trace_id[33])
{
    /* version(2)-trace-id(32)-parent-id(16)-flags(2) */
    if (!v || strlen(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return false;
    if (!is_hex(v, 2) || strncmp(v, "ff", 2) == 0 || !is_hex(v + 3, 32) || !is_hex(v + 36, 16) ||
        !is_hex(v + 53, 2))
        return false;
    if (all_zero(v + 3, 32) || all_zero(v + 36, 16))
        return false;
    if (strncmp(v, "00", 2) == 0 && v[55] != '\0')
        return false;
    memcpy(out_trace_id, v + 3, 32);
    out_trace_id[32] = '\0';
    return true;
}

bool http_request_id_ok(const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

bool http_path_under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool http_path_match(const char *pattern, const char *path, struct arena *a, const char **names,
                     const char **values, int *n_params, int max_params)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pe = strchr(p, '/');
        const char *se = strchr(s, '/');
        size_t pn = pe ? (size_t)(pe - p) : strlen(p);
        size_t sn = se ? (size_t)(se - s) : strlen(s);
        if (pn > 0 && p[0] == ':') {
            if (sn == 0 || np >= max_params)
                return false;
            if (a) {
                names[np] = arena_strndup(a, p + 1, pn - 1);
                values[np] = arena_strndup(a, s, sn);
            }
            np++;
        } else if (pn != sn || memcmp(p, s, pn) != 0) {
            return false;
        }
        p += pn;
        s += sn;
    }
    if (*p || *s)
        return false;
    if (n_params)
        *n_params = np;
    return true;
}

/* ------------------------------------------------------------------ */
/* accessors                                                            */

void *http_app(struct http_req *req)
{
    return req->srv->opts.app;
}

const struct config *http_config(struct http_req *req)
{
    return req->srv->cfg;
}

struct arena *http_arena(struct http_req *req)
{
    return &req->arena;
}

const struct log_ctx *http_log(struct http_req *req)
{
    return &req->log;
}

unsigned http_method(struct http_req *req)
{
    return req->method;
}

const char *http_path(struct http_req *req)
{
    return req->path;
}

const char *http_route_pattern(struct http_req *req)
{
    return req->route ? req->route->path : "";
}

const char *http_param(struct http_req *req, const char *name)
{
    for (int i = 0; i < req->n_params; i++) {
        if (strcmp(req->pnames[i], name) == 0)
            return req->pvals[i];
    }
    return NULL;
}

const char *http_query(struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const struct http_route *http_route(struct http_req *req)
{
    return req->route;
}

void http_set_principal(struct http_req *req, void *principal)
{
    req->principal = principal;
}

void *http_principal(struct http_req *req)
{
    return req->principal;
}

void http_set_log_user(struct http_req *req, const char *user_id)
{
    req->log.user_id = arena_strdup(&req->arena, user_id);
}

void http_set_client_ip(struct http_req *req, const char *ip)
{
    snprintf(req->client_ip, sizeof(req->client_ip), "%s", ip);
}

const char *http_cookie(struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

struct join_ctx {
    const char *name;
    struct buf *out;
    int count;
};

static enum MHD_Result join_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    struct join_ctx *j = cls;
    if (strcasecmp(key, j->name) != 0 || !value)
        return MHD_YES;
    if (j->count++ > 0)
        buf_append_str(j->out, ", ");
    buf_append_str(j->out, value);
    return MHD_YES;
}

int http_header_join(struct http_req *req, const char *name, char *out, size_t n)
{
    struct buf b;
    buf_init(&b, 16 * 1024);
    struct join_ctx j = {name, &b, 0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, join_value, &j);
    snprintf(out, n, "%s", buf_cstr(&b));
    buf_release(&b);
    return j.count;
}

void http_set_body_state(struct http_req *req, void *state, void (*release)(void *state))
{
    req->body_state = state;
    req->body_release = release;
}

void *http_body_state(struct http_req *req)
{
    return req->body_state;
}

struct http_form {
    struct MHD_PostProcessor *pp;
    http_form_fn fn;
    void *arg;
    int rc; /* fn's error */
};

static enum MHD_Result form_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *content_type,
                                 const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size)
{
    (void)kind;
    (void)transfer_encoding;
    struct http_form *f = cls;
    f->rc = f->fn(f->arg, key, filename, content_type, data, off, size);
    return f->rc == LOCI_OK ? MHD_YES : MHD_NO;
}

struct http_form *http_form_new(struct http_req *req, http_form_fn fn, void *arg)
{
    struct http_form *f = xcalloc(1, sizeof(*f));
    f->fn = fn;
    f->arg = arg;
    f->pp = MHD_create_post_processor(req->conn, 64 * 1024, form_iter, f);
    if (!f->pp) {
        xfree(f);
        return NULL;
    }
    return f;
}

int http_form_feed(struct http_form *f, const char *p, size_t n)
{
    if (MHD_post_process(f->pp, p, n) == MHD_YES)
        return LOCI_OK;
    return f->rc ? f->rc : LOCI_EINVAL;
}

int http_form_finish(struct http_form *f)
{
    if (!f)
        return LOCI_OK;
    int rc = MHD_destroy_post_processor(f->pp) == MHD_YES ? LOCI_OK : LOCI_EINVAL;
    xfree(f);
    return rc;
}

json_t *http_json(struct http_req *req)
{
    return req->json;
}

const char *http_body(struct http_req *req, size_t *out_len)
{
    if (out_len)
        *out_len = req->body.len;
    return buf_cstr(&req->body);
}

const char *http_request_id(struct http_req *req)
{
    return req->request_id;
}

const char *http_client_ip(struct http_req *req)
{
    return req->client_ip;
}

bool http_is_tls(struct http_req *req)
{
    return req->srv->is_tls;
}

bool http_has_reply(struct http_req *req)
{
    return req->resp != NULL;
}

/* ------------------------------------------------------------------ */
/* replies                                                              */

void http_set_header(struct http_req *req, const char *name, const char *value)
{
    if (req->n_headers >= MAX_RESP_HEADERS)
        BUG("too many response headers");
    req->headers[req->n_headers].name = arena_strdup(&req->arena, name);
    req->headers[req->n_headers].value = arena_strdup(&req->arena, value);
    req->n_headers++;
}

static void set_reply(struct http_req *req, int status, struct MHD_Response *resp, size_t n)
{
    if (req->resp) {
        /* A second reply is a programming error; keep the first. */
        log_error(&req->log, "handler replied twice");
        MHD_destroy_response(resp);
        return;
    }
    req->status = status;
    req->resp = resp;
    req->resp_bytes = n;
}

static void free_cb(void *p)
{
    xfree(p);
}

static int reply_owned(struct http_req *req, int status, const char *ctype, char *data, size_t n)
{
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(n, data, free_cb);
    if (!r) {
        xfree(data);
        return LOCI_ENOMEM;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    set_reply(req, status, r, n);
    return LOCI_OK;
}

int http_reply_json(struct http_req *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
    json_decref(body);
    if (!text)
        return LOCI_ENOMEM;
    size_t n = strlen(text);
    /* jansson allocated with malloc; hand over a copy from our allocator so
     * that every free goes through one policy. */
    char *copy = xmalloc(n + 2);
    memcpy(copy, text, n);
    copy[n] = '\n';
    copy[n + 1] = '\0';
    free_cb(text);
    return reply_owned(req, status, "application/json", copy, n + 1);
}

int http_reply_error_status(struct http_req *req, int status, const char *code, const char *field,
                            const char *message)
{
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(code));
    json_object_set_new(err, "message", json_string(message));
    if (field)
        json_object_set_new(err, "field", json_string(field));
    json_object_set_new(err, "request_id", json_string(req->request_id));
    json_t *root = json_object();
    json_object_set_new(root, "error", err);
    return http_reply_json(req, status, root);
}

int http_reply_error(struct http_req *req, int err, const char *field, const char *fmt, ...)
{
    char msg[512];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    } else {
        snprintf(msg, sizeof(msg), "%s", loci_err_message(err));
    }
    return http_reply_error_status(req, loci_err_http_status(err), loci_err_code(err), field, msg);
}

int http_reply_bytes(struct http_req *req, int status, const char *content_type, const void *data,
                     size_t n, bool is_copy)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        n, (void *)data, is_copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return LOCI_ENOMEM;
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_reply(req, status, r, n);
    return LOCI_OK;
}

int http_reply_fd(struct http_req *req, int status, const char *content_type, int fd, uint64_t size)
{
    struct MHD_Response *r = MHD_create_response_from_fd64(size, fd);
    if (!r) {
        close(fd);
        return LOCI_ENOMEM;
    }
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_reply(req, status, r, (size_t)size);
    return LOCI_OK;
}

/* MHD sent the 101: give the socket away and let MHD forget the connection
 * (it closes its descriptor; ours keeps the socket open), so an upgraded
 * socket costs the server no connection slot, pool or thread. */
static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
    (void)conn;
    (void)con_cls;
    struct http_req *req = cls;
    http_upgrade_fn fn = req->upgrade_fn;
    req->upgrade_fn = NULL;
    int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    fn(fd, extra_in, extra_in_size, req->upgrade_arg);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

int http_reply_upgrade(struct http_req *req, http_upgrade_fn fn, void *arg)
{
    if (req->srv->is_tls)
        return LOCI_EUNAVAILABLE;
    struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgraded, req);
    if (!r)
        return LOCI_ENOMEM;
    req->upgrade_fn = fn;
    req->upgrade_arg = arg;
    set_reply(req, 101, r, 0);
    return LOCI_OK;
}

/* ------------------------------------------------------------------ */
/* middleware                                                           */

static void allow_header(unsigned mask, char *out, size_t n)
{
    if (mask & HTTP_GET)
        mask |= HTTP_HEAD;
    mask |= HTTP_OPTIONS;
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (mask & methods[i].bit) {
            int w = snprintf(out + o, n - o, "%s%s", o ? ", " : "", methods[i].name);
            if (w < 0 || (size_t)w >= n - o)
                break;
            o += (size_t)w;
        }
    }
}

static void match_route(struct http_req *req)
{
    const struct http_server_opts *o = &req->srv->opts;
    unsigned want = req->method == HTTP_HEAD ? HTTP_GET : req->method;
    for (size_t i = 0; i < o->n_routes; i++) {
        const struct http_route *r = &o->routes[i];
        if (!http_path_match(r->path, req->path, NULL, NULL, NULL, NULL, MAX_PARAMS))
            continue;
        if (r->method == want && !req->route) {
            req->route = r;
            http_path_match(r->path, req->path, &req->arena, req->pnames, req->pvals,
                            &req->n_params, MAX_PARAMS);
        }
        req->allow |= r->method;
    }
}

static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    /* application/<something>+json */
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static void add_cors(struct http_req *req, struct MHD_Response *r, bool is_preflight)
{
    const char *origin = http_header(req, "Origin");
    if (!origin || !config_cors_allowed(req->srv->cfg, origin, strlen(origin)))
        return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(r, "Access-Control-Allow-Credentials", "true");
    if (is_preflight) {
        char allow[96];
        allow_header(req->allow, allow, sizeof(allow));
        MHD_add_response_header(r, "Access-Control-Allow-Methods", allow);
        MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, X-Request-Id, traceparent");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    } else {
        MHD_add_response_header(r, "Access-Control-Expose-Headers",
                                "X-Request-Id, Retry-After, RateLimit, RateLimit-Policy");
    }
}

static void add_common_headers(struct http_req *req, struct MHD_Response *r, bool is_preflight)
{
    MHD_add_response_header(r, "X-Request-Id", req->request_id);
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; "
                            "form-action 'self'; object-src 'none'");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Permissions-Policy",
                            "camera=(), microphone=(), geolocation=(), payment=(), usb=()");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    if (req->srv->is_tls)
        MHD_add_response_header(r, "Strict-Transport-Security",
                                "max-age=31536000; includeSubDomains");
    MHD_add_response_header(r, "Vary", "Origin");
    bool has_cache = false;
    for (int i = 0; i < req->n_headers; i++) {
        MHD_add_response_header(r, req->headers[i].name, req->headers[i].value);
        if (strcasecmp(req->headers[i].name, "Cache-Control") == 0)
            has_cache = true;
    }
    if (!has_cache && !req->is_static)
        MHD_add_response_header(r, "Cache-Control", "no-store");
    add_cors(req, r, is_preflight);
}

static void preflight(struct http_req *req)
{
    char allow[96];
    allow_header(req->allow, allow, sizeof(allow));
    http_set_header(req, "Allow", allow);
    http_reply_bytes(req, 204, NULL, "", 0, false);
}

static int parse_json_body(struct http_req *req)
{
    const struct http_route *r = req->route;
    if (!is_json_type(http_header(req, "Content-Type")))
        return http_reply_error(req, LOCI_EMEDIATYPE, NULL,
                                "the body must be JSON: send Content-Type: application/json");
    struct json_error je;
    if (json_parse_limited(req->body.p ? req->body.p : "", req->body.len,
                           req->srv->cfg->max_json_depth, &req->json, &je)) {
        json_t *err = json_object();
        json_object_set_new(err, "code", json_string("invalid_json"));
        json_object_set_new(err, "message",
                            json_sprintf("malformed JSON at line %d, column %d: %s", je.line,
                                         je.column, je.message));
        json_object_set_new(err, "position", json_integer((json_int_t)je.position));
        json_object_set_new(err, "line", json_integer(je.line));
        json_object_set_new(err, "column", json_integer(je.column));
        json_object_set_new(err, "request_id", json_string(req->request_id));
        json_t *root = json_object();
        json_object_set_new(root, "error", err);
        return http_reply_json(req, 400, root);
    }
    if (r->schema) {
        const char *field = NULL;
        char msg[256];
        if (json_validate(req->json, r->schema, &field, msg, sizeof(msg)))
            return http_reply_error(req, LOCI_EUNPROCESSABLE, field, "%s", msg);
    }
    return LOCI_OK;
}

/* The `before` hook, then the route's handler; always leaves a reply. */
static void run_handler(struct http_req *req)
{
    const struct http_server_opts *o = &req->srv->opts;
    int rc = o->before && !req->is_guarded ? o->before(req) : LOCI_OK;
    if (rc == LOCI_OK && !req->resp)
        rc = req->route->handler(req);
    if (rc == LOCI_OK && !req->resp && req->is_deferred)
        return; /* the owner replies later */
    if (req->is_deferred && rc != LOCI_OK) {
        /* A handler that deferred must then return 0. */
        log_error(&req->log, "handler deferred and failed");
    }
    if (!req->resp) {
        if (rc == LOCI_OK) {
            log_error(&req->log, "handler returned without a reply");
            rc = LOCI_EINTERNAL;
        }
        http_reply_error(req, rc, NULL, NULL);
    }
}

static void dispatch(struct http_req *req)
{
    const struct http_server_opts *o = &req->srv->opts;
    if (req->method == HTTP_OPTIONS && (req->allow || req->route)) {
        preflight(req);
        return;
    }
    if (!req->route) {
        if (req->allow) {
            char allow[96];
            allow_header(req->allow, allow, sizeof(allow));
            http_set_header(req, "Allow", allow);
            http_reply_error(req, LOCI_EMETHOD, NULL, "method %s is not allowed here; allowed: %s",
                             req->method_str, allow);
            return;
        }
        if ((req->method == HTTP_GET || req->method == HTTP_HEAD) && o->fallback &&
            !http_path_under(req->path, "/api")) {
            req->is_static = true;
            int rc = o->fallback(req);
            if (rc == LOCI_OK && req->resp)
                return;
            req->is_static = false;
            if (rc != LOCI_ENOTFOUND && !req->resp) {
                http_reply_error(req, rc, NULL, NULL);
                return;
            }
            if (req->resp)
                return;
        }
        http_reply_error(req, LOCI_ENOTFOUND, NULL, "no route for %s %s", req->method_str,
                         req->path);
        return;
    }
    if (req->is_body_too_big) {
        http_reply_error(req, LOCI_ETOOBIG, NULL, "the request body is larger than %lld bytes",
                         req->body_limit);
        return;
    }
    if (req->body_rc && !req->resp) {
        http_reply_error(req, req->body_rc, NULL, NULL);
        return;
    }
    if ((req->route->flags & HTTP_R_JSON_BODY) && parse_json_body(req) != LOCI_OK)
        return;
    if (req->resp)
        return;
    if ((req->route->flags & HTTP_R_OFFLOAD) && req->srv->n_off_threads > 0) {
        req->is_offloaded = true; /* on_access suspends and queues it */
        return;
    }
    run_handler(req);
}

static enum MHD_Result queue(struct http_req *req)
{
    add_common_headers(req, req->resp, req->method == HTTP_OPTIONS && req->status == 204);
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)req->status, req->resp);
    req->is_queued = true;
    return r;
}

/* ------------------------------------------------------------------ */
/* MHD callbacks                                                        */

static void take_request_id(struct http_req *req)
{
    const char *rid = http_header(req, "X-Request-Id");
    if (rid && http_request_id_ok(rid))
        snprintf(req->request_id, sizeof(req->request_id), "%s", rid);
    else
        ids_uuid7(req->request_id);
    req->log.request_id = req->request_id;
    const char *tp = http_header(req, "traceparent");
    if (tp && http_parse_traceparent(tp, req->trace_id))
        req->log.trace_id = req->trace_id;
}

static void take_client_ip(struct http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    req->client_ip[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                  req->client_ip, sizeof(req->client_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                  req->client_ip, sizeof(req->client_ip));
}

static struct http_req *req_new(struct http_server *srv, struct MHD_Connection *conn,
                                const char *url, const char *method)
{
    struct http_req *req = xcalloc(1, sizeof(*req));
    req->srv = srv;
    req->conn = conn;
    req->t0 = clock_mono_ns();
    arena_init(&req->arena, 4096);
    req->method = method_bit(method);
    req->method_str = arena_strndup(&req->arena, method, strnlen(method, 32));
    req->path = arena_strdup(&req->arena, url);
    take_request_id(req);
    take_client_ip(req);
    match_route(req);
    req->log.route = req->route ? req->route->path : NULL;
    req->body_limit =
        req->route && req->route->body_limit ? req->route->body_limit : srv->cfg->max_body_bytes;
    buf_init(&req->body, (size_t)req->body_limit);
    atomic_fetch_add(&srv->in_flight, 1);
    metrics_add(srv->m_in_flight, 1);
    return req;
}

struct framing {
    int n_content_length;
    bool has_transfer_encoding;
    bool is_ambiguous; /* differing Content-Length values */
    const char *first_cl;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct framing *f = cls;
    if (strcasecmp(key, "Content-Length") == 0) {
        if (f->n_content_length++ > 0 && value && f->first_cl && strcmp(value, f->first_cl) != 0)
            f->is_ambiguous = true;
        if (!f->first_cl)
            f->first_cl = value;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->has_transfer_encoding = true;
    }
    return MHD_YES;
}

/* Request smuggling defence (RFC 9112 6.1, 6.3): a message whose length is
 * ambiguous is refused and its connection closed, so no bytes after it can be
 * read as another request. */
static bool framing_is_ambiguous(struct http_req *req)
{
    struct framing f = {0, false, false, NULL};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_framing, &f);
    return f.is_ambiguous || (f.n_content_length > 0 && f.has_transfer_encoding);
}

/* ------------------------------------------------------------------ */
/* deferred replies                                                     */

static void req_free(struct http_req *req);

int http_defer(struct http_req *req)
{
    struct http_server *srv = req->srv;
    if (req->is_offloaded || req->resp)
        BUG("http_defer on an offloaded or answered request");
    pthread_mutex_lock(&srv->defer_mu);
    if (srv->is_defer_stopping) {
        pthread_mutex_unlock(&srv->defer_mu);
        return LOCI_EUNAVAILABLE;
    }
    req->is_deferred = true;
    req->refs = 2;
    req->defer_next = srv->deferred;
    if (srv->deferred)
        srv->deferred->defer_prev = req;
    srv->deferred = req;
    pthread_mutex_unlock(&srv->defer_mu);
    return LOCI_OK;
}

bool http_deferred_claim(struct http_req *req)
{
    pthread_mutex_lock(&req->srv->defer_mu);
    bool won = !req->is_claimed;
    req->is_claimed = true;
    pthread_mutex_unlock(&req->srv->defer_mu);
    return won;
}

/* Under defer_mu: the reply is made; let MHD send it. */
static void deferred_ready_locked(struct http_req *req)
{
    if (req->is_reply_ready)
        return;
    req->is_reply_ready = true;
    if (req->is_suspended) {
        req->is_suspended = false;
        MHD_resume_connection(req->conn);
    }
}

/* Under defer_mu: drop a reference; true when the request must be freed. */
static bool deferred_unref_locked(struct http_req *req)
{
    if (--req->refs > 0)
        return false;
    struct http_server *srv = req->srv;
    if (req->defer_prev)
        req->defer_prev->defer_next = req->defer_next;
    else
        srv->deferred = req->defer_next;
    if (req->defer_next)
        req->defer_next->defer_prev = req->defer_prev;
    return true;
}

void http_deferred_done(struct http_req *req)
{
    struct http_server *srv = req->srv;
    pthread_mutex_lock(&srv->defer_mu);
    if (req->is_claimed && !req->is_reply_ready) {
        if (!req->resp) {
            pthread_mutex_unlock(&srv->defer_mu);
            log_error(&req->log, "deferred request finished without a reply");
            http_reply_error(req, LOCI_EINTERNAL, NULL, NULL);
            pthread_mutex_lock(&srv->defer_mu);
        }
        deferred_ready_locked(req);
    }
    bool is_last = deferred_unref_locked(req);
    pthread_mutex_unlock(&srv->defer_mu);
    if (is_last)
        req_free(req);
}

/* on_access for a deferred request: suspend until the reply is ready, then
 * queue it. The check and the suspension happen under defer_mu so a reply
 * made meanwhile on another thread is never missed. */
static enum MHD_Result deferred_access(struct http_req *req)
{
    struct http_server *srv = req->srv;
    pthread_mutex_lock(&srv->defer_mu);
    if (req->is_reply_ready) {
        pthread_mutex_unlock(&srv->defer_mu);
        return queue(req);
    }
    if (!req->is_suspended) {
        MHD_suspend_connection(req->conn);
        req->is_suspended = true;
    }
    pthread_mutex_unlock(&srv->defer_mu);
    return MHD_YES;
}

/* ------------------------------------------------------------------ */
/* streams                                                              */

static void stream_wake_locked(struct http_stream *st)
{
    if (st->is_suspended) {
        st->is_suspended = false;
        MHD_resume_connection(st->conn);
    }
}

static void stream_unref(struct http_stream *st)
{
    pthread_mutex_lock(&st->mu);
    bool is_last = --st->refs == 0;
    pthread_mutex_unlock(&st->mu);
    if (!is_last)
        return;
    struct http_server *srv = st->srv;
    pthread_mutex_lock(&srv->defer_mu);
    if (st->prev)
        st->prev->next = st->next;
    else
        srv->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    pthread_mutex_unlock(&srv->defer_mu);
    buf_release(&st->pending);
    pthread_mutex_destroy(&st->mu);
    xfree(st);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct http_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    ssize_t n;
    if (st->pending.len > st->off) {
        size_t k = st->pending.len - st->off;
        if (k > max)
            k = max;
        memcpy(out, st->pending.p + st->off, k);
        st->off += k;
        if (st->off == st->pending.len) {
            buf_reset(&st->pending);
            st->off = 0;
        }
        n = (ssize_t)k;
    } else if (st->is_closed) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing yet: park the connection until a write wakes it. */
        MHD_suspend_connection(st->conn);
        st->is_suspended = true;
        n = 0;
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

static void stream_gone(void *cls)
{
    struct http_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    st->is_gone = true;
    pthread_mutex_unlock(&st->mu);
    stream_unref(st);
}

struct http_stream *http_stream_open(struct http_req *req, int status, const char *content_type,
                                     size_t max_buffered)
{
    struct http_server *srv = req->srv;
    struct http_stream *st = xcalloc(1, sizeof(*st));
    st->srv = srv;
    st->conn = req->conn;
    st->refs = 2;
    pthread_mutex_init(&st->mu, NULL);
    buf_init(&st->pending, max_buffered);
    pthread_mutex_lock(&srv->defer_mu);
    bool is_stopping = srv->is_defer_stopping;
    if (!is_stopping) {
        st->next = srv->streams;
        if (srv->streams)
            srv->streams->prev = st;
        srv->streams = st;
    }
    pthread_mutex_unlock(&srv->defer_mu);
    struct MHD_Response *r = is_stopping
                                 ? NULL
                                 : MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                                     stream_read, st, stream_gone);
    if (!r) {
        if (!is_stopping) {
            st->refs = 1; /* no response will ever call stream_gone */
            stream_unref(st);
        } else {
            buf_release(&st->pending);
            pthread_mutex_destroy(&st->mu);
            xfree(st);
        }
        return NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    set_reply(req, status, r, 0);
    return st;
}

int http_stream_write(struct http_stream *st, const void *p, size_t n)
{
    pthread_mutex_lock(&st->mu);
    int rc = LOCI_OK;
    if (st->is_gone || st->is_closed) {
        rc = LOCI_EIO;
    } else if (buf_append(&st->pending, p, n)) {
        /* The client does not keep up: end the stream rather than buffer
         * without bound. */
        st->is_closed = true;
        rc = LOCI_ETOOBIG;
    }
    stream_wake_locked(st);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void http_stream_close(struct http_stream *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    st->is_closed = true;
    stream_wake_locked(st);
    pthread_mutex_unlock(&st->mu);
    stream_unref(st);
}

/* Shutdown: answer every deferred request still waiting with 503 and end
 * every stream, so no connection stays suspended when the daemon stops. */
static void defer_stop_all(struct http_server *srv)
{
    pthread_mutex_lock(&srv->defer_mu);
    srv->is_defer_stopping = true;
    for (struct http_req *req = srv->deferred; req; req = req->defer_next) {
        if (req->is_claimed)
            continue; /* its owner is replying now */
        req->is_claimed = true;
        http_set_header(req, "Connection", "close");
        http_reply_error(req, LOCI_EUNAVAILABLE, NULL, "the server is shutting down");
        deferred_ready_locked(req);
    }
    for (struct http_stream *st = srv->streams; st; st = st->next) {
        pthread_mutex_lock(&st->mu);
        st->is_closed = true;
        stream_wake_locked(st);
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&srv->defer_mu);
}

/* A streamed body's first call: the `before` hook and on_body's look at
 * the headers. When either refuses, a body announced as small enough is
 * read and discarded so the client (a browser still sending) gets the
 * answer on a live connection; a larger or unannounced one is answered at
 * once and the connection closed. */
static enum MHD_Result stream_start(struct http_req *req)
{
    const struct http_server_opts *o = &req->srv->opts;
    req->is_guarded = true;
    int rc = o->before ? o->before(req) : LOCI_OK;
    if (rc == LOCI_OK && !req->resp)
        rc = req->route->on_body(req, NULL, 0);
    if (rc != LOCI_OK && !req->resp)
        http_reply_error(req, rc, NULL, NULL);
    if (!req->resp)
        return MHD_YES;
    const char *cl = http_header(req, "Content-Length");
    long long len = 0;
    if (cl && parse_int64(cl, 0, DISCARD_SLACK, &len) == LOCI_OK) {
        req->body_rc = rc ? rc : LOCI_EINVAL; /* discard what comes, answer at the end */
        return MHD_YES;
    }
    return queue(req);
}

/* A piece of a streamed body: to on_body until it refuses, then discarded
 * (up to DISCARD_SLACK, then the connection is dropped). */
static enum MHD_Result stream_piece(struct http_req *req, const char *p, size_t n)
{
    if (req->body_rc == LOCI_OK && !req->resp) {
        int rc = req->route->on_body(req, p, n);
        if (rc == LOCI_OK && !req->resp)
            return MHD_YES;
        req->body_rc = rc ? rc : LOCI_EINVAL;
        return MHD_YES;
    }
    req->discarded += n;
    return req->discarded > DISCARD_SLACK ? MHD_NO : MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct http_req *req = *con_cls;
    if (!req) {
        req = req_new(srv, conn, url, method);
        *con_cls = req;
        if (framing_is_ambiguous(req)) {
            http_set_header(req, "Connection", "close");
            http_reply_error(req, LOCI_EINVAL, NULL,
                             "ambiguous message length: conflicting Content-Length, or both "
                             "Content-Length and Transfer-Encoding");
            return queue(req);
        }
        if (req->route && (req->route->flags & HTTP_R_STREAM_BODY))
            return stream_start(req);
        const char *cl = http_header(req, "Content-Length");
        long long len = 0;
        if (cl && parse_int64(cl, 0, (long long)1 << 62, &len) == LOCI_OK &&
            len > req->body_limit) {
            /* Refuse before reading the body; MHD closes the connection. */
            http_reply_error(req, LOCI_ETOOBIG, NULL, "the request body is larger than %lld bytes",
                             req->body_limit);
            return queue(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->route && (req->route->flags & HTTP_R_STREAM_BODY))
            return stream_piece(req, upload_data, n);
        if (req->resp)
            return MHD_YES; /* already answered (early 413); ignore the rest */
        if (!req->is_body_too_big && buf_append(&req->body, upload_data, n) == LOCI_OK)
            return MHD_YES;
        req->is_body_too_big = true;
        req->discarded += n;
        buf_release(&req->body);
        return req->discarded > DISCARD_SLACK ? MHD_NO : MHD_YES;
    }
    if (req->is_queued)
        return MHD_YES;
    if (req->is_deferred)
        return deferred_access(req);
    if (req->is_offloaded) {
        if (!atomic_load(&req->is_offload_done))
            return MHD_YES; /* spurious call while the pool works */
        return queue(req);  /* resumed: the pool left the reply */
    }
    dispatch(req);
    if (req->is_deferred && !req->resp)
        return deferred_access(req);
    if (req->is_offloaded) {
        pthread_mutex_lock(&srv->off_mu);
        if (srv->is_off_stopping) {
            /* Shutting down: suspending now could outlive the daemon. */
            pthread_mutex_unlock(&srv->off_mu);
            req->is_offloaded = false;
            http_set_header(req, "Connection", "close");
            http_reply_error(req, LOCI_EUNAVAILABLE, NULL, "the server is shutting down");
            return queue(req);
        }
        MHD_suspend_connection(conn);
        if (srv->off_tail)
            srv->off_tail->off_next = req;
        else
            srv->off_head = req;
        srv->off_tail = req;
        pthread_cond_signal(&srv->off_cv);
        pthread_mutex_unlock(&srv->off_mu);
        return MHD_YES;
    }
    return queue(req);
}

static void *offload_main(void *arg)
{
    struct http_server *srv = arg;
    for (;;) {
        pthread_mutex_lock(&srv->off_mu);
        while (!srv->off_head && !srv->is_off_stopping)
            pthread_cond_wait(&srv->off_cv, &srv->off_mu);
        struct http_req *req = srv->off_head;
        if (req) {
            srv->off_head = req->off_next;
            if (!srv->off_head)
                srv->off_tail = NULL;
        }
        bool is_late = srv->is_off_stopping && clock_mono_ns() > srv->off_deadline_ns;
        pthread_mutex_unlock(&srv->off_mu);
        if (!req)
            break; /* stopping and drained */
        if (is_late) {
            http_set_header(req, "Connection", "close");
            http_reply_error(req, LOCI_EUNAVAILABLE, NULL, "the server is shutting down");
        } else {
            run_handler(req);
        }
        atomic_store(&req->is_offload_done, true);
        MHD_resume_connection(req->conn);
    }
    return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    struct http_server *srv = cls;
    struct http_req *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    double secs = (double)(clock_mono_ns() - req->t0) / 1e9;
    const char *route = req->route ? req->route->path : req->is_static ? "static" : "unmatched";
    if (req->status) {
        char status[8];
        snprintf(status, sizeof(status), "%d", req->status);
        const char *labels[] = {http_method_name(req->method), route, status};
        metrics_add(metrics_series(srv->m_requests, labels), 1);
        const char *dl[] = {route};
        metrics_observe(metrics_series(srv->m_duration, dl), secs);
    }
    bool quiet = req->route && (req->route->flags & HTTP_R_NO_LOG);
    if (!quiet || req->status >= 500) {
        struct log_field f[] = {
            LF_STR("method", http_method_name(req->method)),
            LF_STR("path", req->path),
            LF_INT("status", req->status),
            LF_DBL("duration_ms", secs * 1000.0),
            LF_INT("bytes", (int64_t)req->resp_bytes),
            LF_STR("ip", req->client_ip),
            LF_BOOL("completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK),
        };
        struct log_ctx ctx = req->log;
        ctx.route = route;
        log_line(&ctx, req->status >= 500 || req->status == 0 ? LOG_WARN : LOG_INFO, "request", f,
                 (int)(sizeof(f) / sizeof(f[0])));
    }
    if (req->upgrade_fn) /* the 101 never went out: let the owner free arg */
        req->upgrade_fn(-1, NULL, 0, req->upgrade_arg);
    if (req->resp) {
        MHD_destroy_response(req->resp);
        req->resp = NULL;
    }
    metrics_add(srv->m_in_flight, -1);
    atomic_fetch_sub(&srv->in_flight, 1);
    if (req->is_deferred) {
        pthread_mutex_lock(&srv->defer_mu);
        bool is_last = deferred_unref_locked(req);
        pthread_mutex_unlock(&srv->defer_mu);
        if (!is_last)
            return; /* the owner still holds it; http_deferred_done() frees */
    }
    req_free(req);
}

static void req_free(struct http_req *req)
{
    if (req->body_release)
        req->body_release(req->body_state);
    if (req->resp)
        MHD_destroy_response(req->resp);
    json_decref(req->json);
    buf_release(&req->body);
    arena_release(&req->arena);
    xfree(req);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    log_line(NULL, LOG_WARN, msg, (struct log_field[]){LF_STR("component", "http")}, 1);
}

/* ------------------------------------------------------------------ */
/* start / stop                                                         */

static char *read_file(const char *path, char *err, size_t err_n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_n, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct buf b;
    buf_init(&b, 1 << 20);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
        if (buf_append(&b, chunk, (size_t)n)) {
            snprintf(err, err_n, "'%s' is larger than 1 MiB", path);
            close(fd);
            buf_release(&b);
            return NULL;
        }
    }
    close(fd);
    return buf_detach(&b, NULL);
}

int http_server_start(const struct http_server_opts *opts, struct http_server **out, char *err,
                      size_t err_n)
{
    *out = NULL;
    const struct config *cfg = opts->cfg;
    struct http_server *srv = xcalloc(1, sizeof(*srv));
    srv->opts = *opts;
    srv->cfg = cfg;
    atomic_init(&srv->in_flight, 0);
    pthread_mutex_init(&srv->off_mu, NULL);
    pthread_cond_init(&srv->off_cv, NULL);
    pthread_mutex_init(&srv->defer_mu, NULL);
    srv->m_requests =
        metrics_counter("http_requests_total", "HTTP requests answered", "method,route,status");
    srv->m_duration =
        metrics_histogram("http_request_duration_seconds", "Time from request start to completion",
                          "route", metrics_latency_buckets, metrics_n_latency_buckets);
    srv->m_in_flight = metrics_series(
        metrics_gauge("http_requests_in_flight", "HTTP requests being handled now", NULL), NULL);

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->listen, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, cfg->listen, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, err_n, "invalid listen address '%s'", cfg->listen);
        xfree(srv);
        return LOCI_EINVAL;
    }
    if (cfg->tls_cert[0]) {
        srv->tls_cert_pem = read_file(cfg->tls_cert, err, err_n);
        srv->tls_key_pem = srv->tls_cert_pem ? read_file(cfg->tls_key, err, err_n) : NULL;
        if (!srv->tls_key_pem) {
            xfree(srv->tls_cert_pem);
            xfree(srv);
            return LOCI_EINVAL;
        }
        flags |= MHD_USE_TLS;
        srv->is_tls = true;
    }
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)cfg->http_threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        /* Per-connection pool for headers and reads (bodies go to our own
         * bounded buffer): 16 KiB instead of 32 halves what MHD clears per
         * keep-alive request. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024), MHD_OPTION_ARRAY,
        srv->is_tls ? tls_opts : no_opts, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, err_n, "cannot listen on %s port %d (in use, or not permitted%s)",
                 cfg->listen, cfg->port, srv->is_tls ? ", or bad TLS certificate/key" : "");
        xfree(srv->tls_cert_pem);
        xfree(srv->tls_key_pem);
        xfree(srv);
        return LOCI_EUNAVAILABLE;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : cfg->port;
    srv->n_off_threads = cfg->http_threads;
    srv->off_threads = xcalloc((size_t)srv->n_off_threads + 1, sizeof(pthread_t));
    for (int i = 0; i < srv->n_off_threads; i++)
        pthread_create(&srv->off_threads[i], NULL, offload_main, srv);
    *out = srv;
    return LOCI_OK;
}

int http_server_port(const struct http_server *srv)
{
    return srv->port;
}

int http_server_in_flight(const struct http_server *srv)
{
    return atomic_load((atomic_int *)&srv->in_flight);
}

int http_server_stop(struct http_server *srv, int timeout_ms)
{
    if (!srv)
        return 0;
    /* Stop accepting. shutdown() makes new connections refused at once;
     * the descriptor itself is closed only after MHD_stop_daemon(): MHD's
     * threads may still use it until then, and its number reused meanwhile
     * by another socket would confuse them. */
    MHD_socket lfd = MHD_quiesce_daemon(srv->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        shutdown(lfd, SHUT_RDWR);
    int64_t deadline = clock_mono_ns() + (int64_t)timeout_ms * 1000000LL;
    /* Offloaded work already queued runs until the deadline; new work is
     * refused (keep-alive connections outlive the listening socket). */
    pthread_mutex_lock(&srv->off_mu);
    srv->is_off_stopping = true;
    srv->off_deadline_ns = deadline;
    pthread_cond_broadcast(&srv->off_cv);
    pthread_mutex_unlock(&srv->off_mu);
    while (atomic_load(&srv->in_flight) > 0 && clock_mono_ns() < deadline)
        clock_sleep_ms(10);
    int left = atomic_load(&srv->in_flight);
    /* Deferred replies and streams still open at the deadline end now; give
     * their connections a moment to send that. */
    defer_stop_all(srv);
    if (srv->opts.on_drain)
        srv->opts.on_drain(srv->opts.app);
    int64_t grace = clock_mono_ns() + 1000000000LL;
    while (atomic_load(&srv->in_flight) > 0 && clock_mono_ns() < grace)
        clock_sleep_ms(10);
    /* Drain the offload pool: every suspended connection is resumed before
     * the daemon stops (MHD requires it). */
    for (int i = 0; i < srv->n_off_threads; i++)
        pthread_join(srv->off_threads[i], NULL);
    xfree(srv->off_threads);
    MHD_stop_daemon(srv->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    /* Owners of deferred requests and streams drop them when told (their
     * claim fails, their writes fail): wait for that before freeing. */
    bool is_held = true;
    for (int i = 0; i < 200 && is_held; i++) {
        pthread_mutex_lock(&srv->defer_mu);
        is_held = srv->deferred || srv->streams;
        pthread_mutex_unlock(&srv->defer_mu);
        if (is_held)
            clock_sleep_ms(10);
    }
    if (is_held) {
        log_warn(NULL, "deferred replies or streams still held at stop; server left allocated");
        return left;
    }
    pthread_mutex_destroy(&srv->off_mu);
    pthread_cond_destroy(&srv->off_cv);
    pthread_mutex_destroy(&srv->defer_mu);
    xfree(srv->tls_cert_pem);
    xfree(srv->tls_key_pem);
    xfree(srv);
    return left;
}
