/*
 * test_http.c - the HTTP core in-process: a test route table on a free port
 * and a raw socket client, so the middleware (routing, 404/405, body limits,
 * JSON parsing and validation, error shape, headers, keep-alive) is tested
 * byte for byte without any other component.
 */
#include "api/http.h"
#include "core/config.h"
#include "core/err.h"
#include "harness.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int h_echo(struct http_req *req)
{
    json_t *in = http_json(req);
    json_t *out = json_pack("{s:O, s:s}", "text", json_object_get(in, "text"), "route",
                            http_route_pattern(req));
    return http_reply_json(req, 201, out);
}

static int h_item(struct http_req *req)
{
    const char *id = http_param(req, "id");
    const char *q = http_query(req, "q");
    return http_reply_json(req, 200, json_pack("{s:s, s:s?}", "id", id, "q", q));
}

static int h_conflict(struct http_req *req)
{
    (void)req;
    return LOCI_ECONFLICT;
}

static int h_field_error(struct http_req *req)
{
    return http_reply_error(req, LOCI_EUNPROCESSABLE, "name", "'name' is taken");
}

static int h_slow(struct http_req *req)
{
    /* Stands for password hashing: CPU-heavy, not on an HTTP thread. */
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    return http_reply_json(req, 200, json_pack("{s:s}", "id", http_param(req, "id")));
}

/* ---- deferred replies and streams: an owner thread answers later ---- */

struct owner {
    struct http_req *req;
    struct http_stream *st;
    int delay_ms;
    int chunks;
};

static void *defer_owner(void *arg)
{
    struct owner *o = arg;
    struct timespec ts = {o->delay_ms / 1000, (o->delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (http_deferred_claim(o->req))
        http_reply_json(o->req, 200,
                        json_pack("{s:s, s:i}", "deferred", "yes", "delay", o->delay_ms));
    http_deferred_done(o->req);
    free(o);
    return NULL;
}

static int h_defer(struct http_req *req)
{
    long long d = 0;
    const char *q = http_query(req, "ms");
    if (!q || parse_int64(q, 0, 10000, &d))
        return LOCI_EINVAL;
    int rc = http_defer(req);
    if (rc)
        return rc;
    struct owner *o = calloc(1, sizeof(*o));
    o->req = req;
    o->delay_ms = (int)d;
    pthread_t t;
    pthread_create(&t, NULL, defer_owner, o);
    pthread_detach(t);
    return 0;
}

static void *stream_owner(void *arg)
{
    struct owner *o = arg;
    for (int i = 0; i < o->chunks; i++) {
        char ev[64];
        int n = snprintf(ev, sizeof(ev), "data: {\"i\":%d}\n\n", i);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        if (http_stream_write(o->st, ev, (size_t)n))
            break;
    }
    http_stream_close(o->st);
    free(o);
    return NULL;
}

static int h_stream(struct http_req *req)
{
    struct owner *o = calloc(1, sizeof(*o));
    o->chunks = 5;
    o->st = http_stream_open(req, 200, "text/event-stream", 1 << 16);
    if (!o->st) {
        free(o);
        return LOCI_EUNAVAILABLE;
    }
    pthread_t t;
    pthread_create(&t, NULL, stream_owner, o);
    pthread_detach(t);
    return 0;
}

/* ---- streamed bodies: a multipart upload read piece by piece ---- */

struct upload {
    struct http_form *form;
    char field[32];
    char filename[64];
    size_t bytes;
    unsigned sum; /* of the file's bytes, to prove they all came, in order */
    size_t pieces;
    size_t max;
};

static atomic_int uploads_released;

static void upload_release(void *state)
{
    struct upload *u = state;
    http_form_finish(u->form);
    free(u);
    atomic_fetch_add(&uploads_released, 1);
}

static int upload_field(void *arg, const char *field, const char *filename,
                        const char *content_type, const char *data, uint64_t off, size_t n)
{
    (void)content_type;
    (void)off;
    struct upload *u = arg;
    snprintf(u->field, sizeof(u->field), "%s", field);
    snprintf(u->filename, sizeof(u->filename), "%s", filename ? filename : "");
    for (size_t i = 0; i < n; i++)
        u->sum = u->sum * 31 + (unsigned char)data[i];
    u->bytes += n;
    return u->bytes > u->max ? LOCI_ETOOBIG : LOCI_OK;
}

static int upload_body(struct http_req *req, const char *p, size_t n)
{
    struct upload *u = http_body_state(req);
    if (!p) {
        if (http_header(req, "X-Refuse"))
            return http_reply_error(req, LOCI_EMEDIATYPE, NULL, "refused at the headers");
        u = calloc(1, sizeof(*u));
        u->max = 1 << 20;
        http_set_body_state(req, u, upload_release);
        u->form = http_form_new(req, upload_field, u);
        return u->form ? LOCI_OK : LOCI_EMEDIATYPE;
    }
    u->pieces++;
    return http_form_feed(u->form, p, n);
}

static int h_upload(struct http_req *req)
{
    struct upload *u = http_body_state(req);
    int rc = http_form_finish(u->form);
    u->form = NULL;
    if (rc)
        return http_reply_error(req, rc, NULL, "the form ended early");
    return http_reply_json(req, 200,
                           json_pack("{s:s, s:s, s:I, s:I, s:b}", "field", u->field, "filename",
                                     u->filename, "bytes", (json_int_t)u->bytes, "sum",
                                     (json_int_t)u->sum, "in_pieces", u->pieces > 1));
}

static const struct json_field echo_fields[] = {
    {"text", JF_STRING, true, false, 1, 20},
    {"n", JF_INTEGER, false, false, 0, 5},
};
static const struct json_schema echo_schema = {echo_fields, 2, false};

static const struct http_route routes[] = {
    {HTTP_POST, "/echo", h_echo, HTTP_R_JSON_BODY, 256, &echo_schema, "echo", 0, NULL},
    {HTTP_GET, "/items/:id", h_item, 0, 0, NULL, "item", 0, NULL},
    {HTTP_DELETE, "/items/:id", h_conflict, 0, 0, NULL, "delete", 0, NULL},
    {HTTP_PUT, "/named", h_field_error, 0, 0, NULL, "field error", 0, NULL},
    {HTTP_GET, "/slow/:id", h_slow, HTTP_R_OFFLOAD, 0, NULL, "offloaded", 0, NULL},
    {HTTP_GET, "/defer", h_defer, 0, 0, NULL, "deferred", 0, NULL},
    {HTTP_GET, "/stream", h_stream, 0, 0, NULL, "streamed", 0, NULL},
    {HTTP_POST, "/upload", h_upload, HTTP_R_STREAM_BODY, 0, NULL, "upload", 0, upload_body},
};

static struct http_server *srv;
static struct config cfg;
static int port;

static void start(void)
{
    if (srv)
        return;
    config_init(&cfg);
    char err[256];
    config_set(&cfg, "port", "0", CFG_SRC_FLAG, err, sizeof(err));
    config_set(&cfg, "log_level", "error", CFG_SRC_FLAG, err, sizeof(err));
    config_set(&cfg, "max_json_depth", "4", CFG_SRC_FLAG, err, sizeof(err));
    config_set(&cfg, "cors_origins", "https://app.example", CFG_SRC_FLAG, err, sizeof(err));
    if (config_finish(&cfg, err, sizeof(err)))
        harness_fail(__FILE__, __LINE__, "config: %s", err);
    log_set_level(LOG_ERROR);
    struct http_server_opts o = {
        .cfg = &cfg, .routes = routes, .n_routes = sizeof(routes) / sizeof(routes[0])};
    if (http_server_start(&o, &srv, err, sizeof(err)))
        harness_fail(__FILE__, __LINE__, "start: %s", err);
    port = http_server_port(srv);
    CHECK(port > 0);
}

static int connect_local(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        harness_fail(__FILE__, __LINE__, "connect failed");
    return fd;
}

struct resp {
    int status;
    char head[4096];
    char body[8192];
};

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close early (413) */
        s += w;
        n -= (size_t)w;
    }
}

/* Read one response (headers + Content-Length body) from fd. */
static void read_resp(int fd, struct resp *r)
{
    char buf[16384];
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        ssize_t got = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
        if (got <= 0)
            harness_fail(__FILE__, __LINE__, "connection closed before headers");
        n += (size_t)got;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t hlen = (size_t)(end - buf) + 4;
    snprintf(r->head, sizeof(r->head), "%.*s", (int)hlen, buf);
    r->status = (int)strtol(buf + 9, NULL, 10);
    const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
    size_t want = cl ? (size_t)strtoul(cl + 18, NULL, 10) : 0;
    while (n - hlen < want) {
        ssize_t got = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    snprintf(r->body, sizeof(r->body), "%.*s", (int)(n - hlen), buf + hlen);
}

static void request(const char *raw, struct resp *r)
{
    start();
    int fd = connect_local();
    send_all(fd, raw, strlen(raw));
    read_resp(fd, r);
    close(fd);
}

static void post_json(const char *ctype, const char *body, struct resp *r)
{
    char raw[8192];
    snprintf(raw, sizeof(raw),
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
             ctype, strlen(body), body);
    request(raw, r);
}

static json_t *body_json(struct resp *r)
{
    json_error_t je;
    json_t *v = json_loads(r->body, 0, &je);
    if (!v)
        harness_fail(__FILE__, __LINE__, "body is not JSON: %s", r->body);
    return v;
}

static const char *err_field(json_t *v, const char *key)
{
    return json_string_value(json_object_get(json_object_get(v, "error"), key));
}

TEST(json_route_happy_path)
{
    struct resp r;
    post_json("application/json; charset=utf-8", "{\"text\":\"hi\"}", &r);
    CHECK_INT(r.status, ==, 201);
    json_t *v = body_json(&r);
    CHECK_STR(json_string_value(json_object_get(v, "text")), "hi");
    CHECK_STR(json_string_value(json_object_get(v, "route")), "/echo");
    json_decref(v);
    CHECK(strcasestr(r.head, "X-Request-Id: ") != NULL);
    CHECK(strcasestr(r.head, "X-Content-Type-Options: nosniff") != NULL);
    CHECK(strcasestr(r.head, "Cache-Control: no-store") != NULL);
}

TEST(wrong_content_type_is_415)
{
    struct resp r;
    post_json("text/plain", "{\"text\":\"hi\"}", &r);
    CHECK_INT(r.status, ==, 415);
    json_t *v = body_json(&r);
    CHECK_STR(err_field(v, "code"), "unsupported_media_type");
    json_decref(v);
    post_json("application/x-www-form-urlencoded", "text=hi", &r);
    CHECK_INT(r.status, ==, 415);
    post_json("application/merge-patch+json", "{\"text\":\"hi\"}", &r);
    CHECK_INT(r.status, ==, 201);
}

TEST(malformed_json_is_400_with_position)
{
    struct resp r;
    post_json("application/json", "{\"text\": \"hi\",\n \"n\": }", &r);
    CHECK_INT(r.status, ==, 400);
    json_t *v = body_json(&r);
    CHECK_STR(err_field(v, "code"), "invalid_json");
    json_t *e = json_object_get(v, "error");
    CHECK_INT(json_integer_value(json_object_get(e, "line")), ==, 2);
    CHECK(json_integer_value(json_object_get(e, "column")) >= 6);
    CHECK(strstr(err_field(v, "message"), "line 2") != NULL);
    json_decref(v);
    post_json("application/json", "", &r);
    CHECK_INT(r.status, ==, 400);
    post_json("application/json", "{\"text\":\"a\"} trailing", &r);
    CHECK_INT(r.status, ==, 400);
}

TEST(too_deep_json_is_400)
{
    struct resp r;
    post_json("application/json", "{\"text\":[[[[[1]]]]]}", &r);
    CHECK_INT(r.status, ==, 400);
    json_t *v = body_json(&r);
    CHECK(strstr(err_field(v, "message"), "nesting") != NULL);
    json_decref(v);
}

TEST(schema_errors_are_422_naming_the_field)
{
    struct resp r;
    post_json("application/json", "{\"n\":1}", &r);
    CHECK_INT(r.status, ==, 422);
    json_t *v = body_json(&r);
    CHECK_STR(err_field(v, "code"), "validation_failed");
    CHECK_STR(err_field(v, "field"), "text");
    json_decref(v);
    post_json("application/json", "{\"text\":\"ok\",\"n\":\"5\"}", &r);
    CHECK_INT(r.status, ==, 422);
    v = body_json(&r);
    CHECK_STR(err_field(v, "field"), "n");
    json_decref(v);
    post_json("application/json", "{\"text\":\"ok\",\"role\":\"admin\"}", &r);
    CHECK_INT(r.status, ==, 422);
    v = body_json(&r);
    CHECK_STR(err_field(v, "field"), "role");
    json_decref(v);
    post_json("application/json", "[\"text\"]", &r);
    CHECK_INT(r.status, ==, 422);
}

TEST(body_over_route_limit_is_413_before_reading)
{
    struct resp r;
    /* Headers only: the server must answer without waiting for the body. */
    request("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n",
            &r);
    CHECK_INT(r.status, ==, 413);
    json_t *v = body_json(&r);
    CHECK_STR(err_field(v, "code"), "payload_too_large");
    json_decref(v);
    /* Chunked, growing past the limit. */
    char raw[2048];
    char chunk[301];
    memset(chunk, 'a', 300);
    chunk[300] = '\0';
    snprintf(raw, sizeof(raw),
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n\r\n12c\r\n%s\r\n0\r\n\r\n",
             chunk);
    request(raw, &r);
    CHECK_INT(r.status, ==, 413);
}

TEST(routing_404_405_params_and_mapped_errors)
{
    struct resp r;
    request("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    CHECK_INT(r.status, ==, 404);
    request("PATCH /items/7 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r);
    CHECK_INT(r.status, ==, 405);
    CHECK(strcasestr(r.head, "Allow: GET, HEAD, DELETE, OPTIONS") != NULL);
    request("GET /items/abc-1?q=x%20y HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    CHECK_INT(r.status, ==, 200);
    json_t *v = body_json(&r);
    CHECK_STR(json_string_value(json_object_get(v, "id")), "abc-1");
    CHECK_STR(json_string_value(json_object_get(v, "q")), "x y");
    json_decref(v);
    request("GET /items/ HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    CHECK_INT(r.status, ==, 404);
    request("GET /items/1/2 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    CHECK_INT(r.status, ==, 404);
    request("DELETE /items/1 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    CHECK_INT(r.status, ==, 409);
    request("PUT /named HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r);
    CHECK_INT(r.status, ==, 422);
    v = body_json(&r);
    CHECK_STR(err_field(v, "field"), "name");
    json_decref(v);
}

TEST(error_shape_carries_request_id)
{
    struct resp r;
    request("GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: my-req.1\r\n\r\n", &r);
    CHECK(strstr(r.head, "X-Request-Id: my-req.1\r\n") != NULL);
    json_t *v = body_json(&r);
    CHECK_STR(err_field(v, "request_id"), "my-req.1");
    CHECK(err_field(v, "message") != NULL);
    json_decref(v);
    request("GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad id \"quoted\"\r\n\r\n", &r);
    CHECK(strstr(r.head, "bad id") == NULL);
}

TEST(keep_alive_serves_several_requests_on_one_connection)
{
    start();
    int fd = connect_local();
    for (int i = 0; i < 3; i++) {
        const char *raw = "GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n";
        send_all(fd, raw, strlen(raw));
        struct resp r;
        read_resp(fd, &r);
        CHECK_INT(r.status, ==, 200);
        CHECK(strcasestr(r.head, "Connection: close") == NULL);
    }
    close(fd);
}

TEST(cors_allowlist_and_preflight)
{
    struct resp r;
    request("GET /items/1 HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n", &r);
    CHECK(strstr(r.head, "Access-Control-Allow-Origin: https://app.example\r\n") != NULL);
    request("GET /items/1 HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n", &r);
    CHECK(strstr(r.head, "Access-Control-Allow-Origin") == NULL);
    request("OPTIONS /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
            "Access-Control-Request-Method: POST\r\n\r\n",
            &r);
    CHECK_INT(r.status, ==, 204);
    CHECK(strstr(r.head, "Access-Control-Allow-Methods: POST, OPTIONS") != NULL);
}

TEST(parsers_for_trace_and_request_ids)
{
    char t[33];
    CHECK(http_parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t));
    CHECK_STR(t, "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(!http_parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01", t));
    CHECK(!http_parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", t));
    CHECK(!http_parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t));
    CHECK(!http_parse_traceparent("garbage", t));
    CHECK(http_request_id_ok("abc-123_x.y:z"));
    CHECK(!http_request_id_ok(""));
    CHECK(!http_request_id_ok("a b"));
    const char *names[4], *values[4];
    int n = 0;
    struct arena a;
    arena_init(&a, 256);
    CHECK(http_path_match("/a/:x/b/:y", "/a/1/b/two", &a, names, values, &n, 4));
    CHECK_INT(n, ==, 2);
    CHECK_STR(values[1], "two");
    CHECK(!http_path_match("/a/:x", "/a/1/", &a, names, values, &n, 4));
    CHECK(!http_path_match("/a", "/a/", &a, names, values, &n, 4));
    arena_release(&a);
}

TEST(offloaded_handlers_leave_http_threads_free)
{
    start();
    /* More slow requests than HTTP threads, then a fast one: the fast one
     * must not wait behind them. */
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = connect_local();
        char raw[128];
        snprintf(raw, sizeof(raw), "GET /slow/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        send_all(fds[i], raw, strlen(raw));
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct resp r;
    request("GET /items/fast HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_INT(r.status, ==, 200);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK_INT(ms, <, 150);
    for (int i = 0; i < 4; i++) {
        read_resp(fds[i], &r);
        CHECK_INT(r.status, ==, 200);
        char want[32];
        snprintf(want, sizeof(want), "\"id\":\"%d\"", i);
        CHECK(strstr(r.body, want) != NULL);
        close(fds[i]);
    }
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

TEST(deferred_replies_hold_no_http_thread)
{
    start();
    /* 16 requests each answered 300 ms later by another thread: with a few
     * HTTP threads they only finish together if none holds a thread. */
    enum { N = 16 };
    int fds[N];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        fds[i] = connect_local();
        const char *raw = "GET /defer?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n";
        send_all(fds[i], raw, strlen(raw));
    }
    struct resp r;
    request("GET /items/fast HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    CHECK_INT(r.status, ==, 200);
    CHECK_INT(ms_since(&t0), <, 200);
    for (int i = 0; i < N; i++) {
        read_resp(fds[i], &r);
        CHECK_INT(r.status, ==, 200);
        CHECK(strstr(r.body, "\"deferred\":\"yes\"") != NULL);
        close(fds[i]);
    }
    CHECK_INT(ms_since(&t0), <, 900);
    /* an owner that answers at once, before the connection is suspended */
    for (int i = 0; i < 50; i++) {
        request("GET /defer?ms=0 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
        CHECK_INT(r.status, ==, 200);
    }
    /* a deferred reply on a keep-alive connection, then another request */
    int fd = connect_local();
    const char *two = "GET /defer?ms=50 HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, two, strlen(two));
    read_resp(fd, &r);
    CHECK_INT(r.status, ==, 200);
    const char *fast = "GET /items/after HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, fast, strlen(fast));
    read_resp(fd, &r);
    CHECK_INT(r.status, ==, 200);
    CHECK(strstr(r.body, "after") != NULL);
    close(fd);
}

TEST(streams_deliver_chunks_in_order_as_written)
{
    start();
    int fd = connect_local();
    const char *raw = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, raw, strlen(raw));
    char buf[8192];
    size_t n = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long first_ms = -1;
    while (n < sizeof(buf) - 1) {
        ssize_t got = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
        buf[n] = '\0';
        if (first_ms < 0 && strstr(buf, "{\"i\":0}"))
            first_ms = ms_since(&t0);
        if (strstr(buf, "\r\n0\r\n\r\n"))
            break; /* the last chunk */
    }
    close(fd);
    buf[n] = '\0';
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    CHECK(strcasestr(buf, "Content-Type: text/event-stream") != NULL);
    CHECK(strcasestr(buf, "Transfer-Encoding: chunked") != NULL);
    const char *p = buf;
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof(want), "data: {\"i\":%d}", i);
        const char *at = strstr(p, want);
        CHECK(at != NULL);
        p = at;
    }
    CHECK(strstr(buf, "\r\n0\r\n\r\n") != NULL);
    /* the first event arrived before the stream ended (not buffered) */
    CHECK(first_ms >= 0 && first_ms < 90);
}

/* A multipart request for /upload with a file of n bytes (i * 7 % 251). */
static char *multipart(size_t n, bool is_truncated, size_t *out_len, unsigned *out_sum)
{
    const char *head = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
                       "filename=\"../a b.pdf\"\r\nContent-Type: application/pdf\r\n\r\n";
    const char *tail = is_truncated ? "" : "\r\n--XyZ--\r\n";
    size_t body = strlen(head) + n + strlen(tail);
    char *raw = malloc(body + 512);
    int k = snprintf(raw, 512,
                     "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                     "boundary=XyZ\r\nContent-Length: %zu\r\n\r\n%s",
                     body, head);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        raw[(size_t)k + i] = (char)(i * 7 % 251);
        sum = sum * 31 + (unsigned char)raw[(size_t)k + i];
    }
    memcpy(raw + k + n, tail, strlen(tail));
    *out_len = (size_t)k + n + strlen(tail);
    *out_sum = sum;
    return raw;
}

TEST(streamed_bodies_arrive_piece_by_piece)
{
    start();
    size_t len;
    unsigned sum;
    char *raw = multipart(300000, false, &len, &sum);
    int fd = connect_local();
    send_all(fd, raw, len);
    struct resp r;
    read_resp(fd, &r);
    close(fd);
    free(raw);
    CHECK_INT(r.status, ==, 200);
    json_t *v = body_json(&r);
    CHECK_STR(json_string_value(json_object_get(v, "field")), "file");
    CHECK_STR(json_string_value(json_object_get(v, "filename")), "../a b.pdf");
    CHECK_INT(json_integer_value(json_object_get(v, "bytes")), ==, 300000);
    CHECK_INT(json_integer_value(json_object_get(v, "sum")), ==, sum);
    CHECK(json_is_true(json_object_get(v, "in_pieces")));
    json_decref(v);

    /* refused at the headers: answered before the body is read */
    request("POST /upload HTTP/1.1\r\nHost: x\r\nX-Refuse: 1\r\nContent-Type: "
            "multipart/form-data; boundary=XyZ\r\nContent-Length: 100000000\r\n\r\n",
            &r);
    CHECK_INT(r.status, ==, 415);
    /* not a form */
    request("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            "Content-Length: 5\r\n\r\nhello",
            &r);
    CHECK_INT(r.status, ==, 415);
    /* the reader refuses midway (over its own limit): the rest is discarded */
    raw = multipart(1200000, false, &len, &sum);
    fd = connect_local();
    send_all(fd, raw, len);
    read_resp(fd, &r);
    close(fd);
    free(raw);
    CHECK_INT(r.status, ==, 413);
    /* a form cut short */
    raw = multipart(1000, true, &len, &sum);
    fd = connect_local();
    send_all(fd, raw, len);
    read_resp(fd, &r);
    close(fd);
    free(raw);
    CHECK_INT(r.status, ==, 400);

    /* a client gone mid-body: the state is released all the same (after
     * the requests above have finished releasing theirs) */
    struct timespec settle = {0, 300 * 1000000L};
    nanosleep(&settle, NULL);
    int before = atomic_load(&uploads_released);
    raw = multipart(100000, false, &len, &sum);
    fd = connect_local();
    send_all(fd, raw, len / 2);
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    close(fd);
    free(raw);
    for (int i = 0; i < 100 && atomic_load(&uploads_released) == before; i++)
        nanosleep(&ts, NULL);
    CHECK_INT(atomic_load(&uploads_released), ==, before + 1);
}

TEST(zz_stop_answers_deferred_requests_503)
{
    start();
    int fd = connect_local();
    const char *raw = "GET /defer?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, raw, strlen(raw));
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    struct http_server *s = srv;
    srv = NULL;
    CHECK_INT(http_server_stop(s, 100), ==, 1);
    struct resp r;
    read_resp(fd, &r);
    CHECK_INT(r.status, ==, 503);
    close(fd);
    config_release(&cfg);
}

TEST(zz_stop_waits_for_nothing_when_idle)
{
    start();
    CHECK_INT(http_server_stop(srv, 1000), ==, 0);
    srv = NULL;
    config_release(&cfg);
}
