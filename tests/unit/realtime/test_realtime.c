/*
 * test_realtime.c - the WebSocket hub without HTTP: the handshake's accept
 * key (RFC 6455's own example), frame headers, and a running hub driven
 * over socketpairs by a small client written here (masked frames, as a
 * browser sends them): authentication by message and its failures, events
 * routed to their user only, ping/pong, oversized frames, a slow client
 * dropped while another keeps receiving, and resume from the event store
 * without gaps or duplicates on SQLite and PostgreSQL.
 */
#include "core/clock.h"
#include "core/err.h"
#include "events/events.h"
#include "harness.h"
#include "services/realtime/realtime.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* wire helpers                                                         */

TEST(accept_key_matches_rfc6455_example)
{
    char out[29];
    CHECK_INT(realtime_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out), ==, LOCI_OK);
    /* RFC 6455 section 1.3 (and 4.2.2) */
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(accept_key_refuses_what_is_not_16_bytes)
{
    char out[29];
    CHECK_INT(realtime_ws_accept(NULL, out), ==, LOCI_EINVAL);
    CHECK_INT(realtime_ws_accept("", out), ==, LOCI_EINVAL);
    CHECK_INT(realtime_ws_accept("dGhlIHNhbXBsZSBub25jZQ", out), ==, LOCI_EINVAL);
    CHECK_INT(realtime_ws_accept("dGhlIHNhbXBsZSBub25jZQ===", out), ==, LOCI_EINVAL);
    CHECK_INT(realtime_ws_accept("dGhlIHNhbXBsZSBub25j!Q==", out), ==, LOCI_EINVAL);
    CHECK_INT(realtime_ws_accept("dGhlIHNhbXBsZSBub25jZQ=A", out), ==, LOCI_EINVAL);
}

TEST(frame_headers_round_trip_at_every_length_form)
{
    const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 1ULL << 40};
    const size_t hlen[] = {2, 2, 2, 4, 4, 4, 10, 10};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t h[14];
        size_t n = realtime_ws_header(h, 0x1, lens[i]);
        CHECK_INT(n, ==, hlen[i]);
        struct realtime_frame f;
        CHECK_INT(realtime_ws_frame(h, n - 1, &f), ==, 0); /* one byte short */
        CHECK_INT(realtime_ws_frame(h, n, &f), ==, 1);
        CHECK(f.is_fin);
        CHECK_INT(f.opcode, ==, 1);
        CHECK(!f.is_masked);
        CHECK_INT(f.header_len, ==, n);
        CHECK(f.payload_len == lens[i]);
    }
    /* a masked client frame: 4 more header bytes */
    const uint8_t masked[] = {0x01, 0x80 | 5, 1, 2, 3, 4};
    struct realtime_frame f;
    CHECK_INT(realtime_ws_frame(masked, 5, &f), ==, 0);
    CHECK_INT(realtime_ws_frame(masked, 6, &f), ==, 1);
    CHECK(!f.is_fin);
    CHECK(f.is_masked);
    CHECK_INT(f.header_len, ==, 6);
    CHECK_INT(f.payload_len, ==, 5);
    const uint8_t huge[] = {0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
    CHECK_INT(realtime_ws_frame(huge, sizeof(huge), &f), ==, LOCI_ETOOBIG);
}

/* ------------------------------------------------------------------ */
/* a small client                                                       */

/* Send one masked frame (fin as given). */
static void send_frame(int fd, bool fin, unsigned opcode, const void *p, size_t n)
{
    uint8_t h[14];
    size_t hn = realtime_ws_header(h, opcode, n);
    if (!fin)
        h[0] &= 0x7f;
    h[1] |= 0x80;
    const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    memcpy(h + hn, key, 4);
    hn += 4;
    uint8_t *buf = malloc(hn + n);
    memcpy(buf, h, hn);
    for (size_t i = 0; i < n; i++)
        buf[hn + i] = ((const uint8_t *)p)[i] ^ key[i % 4];
    size_t off = 0;
    while (off < hn + n) {
        ssize_t w = write(fd, buf + off, hn + n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(buf);
}

static void send_text(int fd, const char *s)
{
    send_frame(fd, true, 0x1, s, strlen(s));
}

struct frame_in {
    unsigned opcode;
    size_t len;
    char data[70000];
    int close_code;
};

/* Read exactly n bytes within the deadline; false on timeout or EOF. */
static bool read_full(int fd, void *out, size_t n, int64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        int64_t left = deadline - clock_now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(fd, (char *)out + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* The next frame from the server, or false (timeout, EOF). */
static bool read_frame(int fd, struct frame_in *f, int timeout_ms)
{
    int64_t deadline = clock_now_ms() + timeout_ms;
    uint8_t h[10];
    if (!read_full(fd, h, 2, deadline))
        return false;
    CHECK((h[1] & 0x80) == 0); /* server frames are never masked */
    size_t hn = 2;
    unsigned l7 = h[1] & 0x7f;
    if (l7 == 126)
        hn = 4;
    else if (l7 == 127)
        hn = 10;
    if (hn > 2 && !read_full(fd, h + 2, hn - 2, deadline))
        return false;
    struct realtime_frame rf;
    CHECK_INT(realtime_ws_frame(h, hn, &rf), ==, 1);
    CHECK(rf.payload_len < sizeof(f->data));
    f->opcode = rf.opcode;
    f->len = (size_t)rf.payload_len;
    if (!read_full(fd, f->data, f->len, deadline))
        return false;
    f->data[f->len] = '\0';
    f->close_code = f->opcode == 0x8 && f->len >= 2
                        ? ((unsigned char)f->data[0] << 8) | (unsigned char)f->data[1]
                        : 0;
    return true;
}

/* The next data frame, answering pings on the way. */
static bool read_message(int fd, struct frame_in *f, int timeout_ms)
{
    for (;;) {
        if (!read_frame(fd, f, timeout_ms))
            return false;
        if (f->opcode == 0x9) {
            send_frame(fd, true, 0xa, f->data, f->len);
            continue;
        }
        return true;
    }
}

static json_t *read_json(int fd, int timeout_ms)
{
    static struct frame_in f;
    if (!read_message(fd, &f, timeout_ms))
        harness_fail(__FILE__, __LINE__, "no message within %d ms", timeout_ms);
    if (f.opcode != 0x1)
        harness_fail(__FILE__, __LINE__, "expected a text frame, got opcode %u (%d %s)", f.opcode,
                     f.close_code, f.len > 2 ? f.data + 2 : "");
    json_error_t je;
    json_t *v = json_loadb(f.data, f.len, 0, &je);
    if (!v)
        harness_fail(__FILE__, __LINE__, "not JSON: %s", f.data);
    return v;
}

/* Expect a close frame with code (and the reason containing why). */
static void expect_close(int fd, int code, const char *why, int timeout_ms)
{
    static struct frame_in f;
    for (;;) {
        if (!read_frame(fd, &f, timeout_ms))
            harness_fail(__FILE__, __LINE__, "no close frame within %d ms", timeout_ms);
        if (f.opcode == 0x8)
            break;
    }
    CHECK_INT(f.close_code, ==, code);
    if (why && !strstr(f.data + 2, why))
        harness_fail(__FILE__, __LINE__, "close reason '%s' lacks '%s'", f.data + 2, why);
}

static bool is_closed_soon(int fd, int timeout_ms)
{
    int64_t deadline = clock_now_ms() + timeout_ms;
    char b[4096];
    while (clock_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(fd, b, sizeof(b));
        if (r <= 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* a hub                                                                */

/* "tok-<user>" or "tok-<user>.<credential>" */
static int fake_auth(void *arg, const char *token, struct realtime_identity *out)
{
    (void)arg;
    if (strcmp(token, "down") == 0)
        return LOCI_EIO;
    if (strncmp(token, "tok-", 4) != 0)
        return LOCI_EAUTH;
    const char *dot = strchr(token, '.');
    int n = dot ? (int)(dot - token - 4) : (int)strlen(token + 4);
    snprintf(out->user_id, sizeof(out->user_id), "user-%.*s", n, token + 4);
    snprintf(out->credential_id, sizeof(out->credential_id), "%s", dot ? dot + 1 : "");
    return LOCI_OK;
}

/* test.revoke_user takes every credential; test.revoke_one the one in data.c */
static enum realtime_revoke fake_revocation(void *arg, const struct event_view *ev,
                                            char out[UUID_STR_LEN])
{
    (void)arg;
    if (strcmp(ev->type, "test.revoke_user") == 0)
        return REALTIME_REVOKE_USER;
    if (strcmp(ev->type, "test.revoke_one") != 0)
        return REALTIME_KEEP;
    json_error_t je;
    json_t *d = json_loadb(ev->data, ev->data_len, 0, &je);
    snprintf(out, UUID_STR_LEN, "%s", json_string_value(json_object_get(d, "c")));
    json_decref(d);
    return REALTIME_REVOKE_CREDENTIAL;
}

static struct realtime_opts opts(struct db *db)
{
    struct realtime_opts o = {
        .db = db,
        .authenticate = fake_auth,
        .revocation = fake_revocation,
        .ping_interval_ms = 30000,
        .auth_timeout_ms = 5000,
        .max_frame_bytes = 65536,
        .send_queue_bytes = 256 * 1024,
        .max_connections = 100,
    };
    return o;
}

static struct realtime *start(const struct realtime_opts *o)
{
    struct realtime *rt = realtime_new(o);
    CHECK(rt != NULL);
    CHECK_INT(realtime_start(rt), ==, LOCI_OK);
    return rt;
}

static const struct realtime_identity *as(const char *user_id)
{
    static struct realtime_identity who;
    snprintf(who.user_id, sizeof(who.user_id), "%s", user_id);
    who.credential_id[0] = '\0';
    return &who;
}

/* A connected client; the hub gets the other end. */
static int connect_client(struct realtime *rt, const char *user_id, int64_t since)
{
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    CHECK_INT(realtime_adopt(rt, sv[1], NULL, 0, user_id ? as(user_id) : NULL, since), ==, LOCI_OK);
    return sv[0];
}

/* Connect and authenticate with a token; returns the fd, ready's offset. */
static int login(struct realtime *rt, const char *token, int64_t *out_ready)
{
    int fd = connect_client(rt, NULL, -1);
    char msg[128];
    snprintf(msg, sizeof(msg), "{\"type\":\"auth\",\"token\":\"%s\"}", token);
    send_text(fd, msg);
    json_t *r = read_json(fd, 3000);
    CHECK_STR(json_string_value(json_object_get(r, "type")), "ready");
    if (out_ready)
        *out_ready = json_integer_value(json_object_get(r, "offset"));
    json_decref(r);
    return fd;
}

static void emit(struct realtime *rt, const char *user, int64_t offset, const char *type)
{
    char data[64];
    snprintf(data, sizeof(data), "{\"n\":%lld}", (long long)offset);
    struct event_view ev = {.offset = offset,
                            .id = "x",
                            .user_id = user,
                            .type = type,
                            .data = data,
                            .data_len = strlen(data),
                            .created_at = 1};
    realtime_on_event(&ev, rt);
}

static void expect_event(int fd, const char *type, int64_t offset)
{
    json_t *m = read_json(fd, 3000);
    CHECK_STR(json_string_value(json_object_get(m, "type")), type);
    CHECK_INT(json_integer_value(json_object_get(m, "offset")), ==, offset);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(m, "data"), "n")), ==, offset);
    json_decref(m);
}

static void expect_type(int fd, const char *type)
{
    json_t *m = read_json(fd, 3000);
    CHECK_STR(json_string_value(json_object_get(m, "type")), type);
    json_decref(m);
}

static bool has_message(int fd, int timeout_ms)
{
    static struct frame_in f;
    return read_message(fd, &f, timeout_ms) && f.opcode == 0x1;
}

TEST(events_reach_only_their_users_sockets)
{
    struct realtime_opts o = opts(NULL);
    struct realtime *rt = start(&o);
    int64_t ready = -1;
    int a1 = login(rt, "tok-a", &ready);
    CHECK_INT(ready, ==, 0);
    int a2 = login(rt, "tok-a", NULL);
    int b = login(rt, "tok-b", NULL);
    CHECK_INT(realtime_connections(rt), ==, 3);
    emit(rt, "user-a", 5, "note.created");
    emit(rt, NULL, 6, "system.tick");
    emit(rt, "user-b", 7, "graph.updated");
    emit(rt, "user-c", 8, "note.created");
    emit(rt, "user-a", 9, "note.deleted");
    expect_event(a1, "note.created", 5);
    expect_event(a1, "note.deleted", 9);
    expect_event(a2, "note.created", 5);
    expect_event(a2, "note.deleted", 9);
    expect_event(b, "graph.updated", 7);
    CHECK(!has_message(b, 200));
    CHECK(!has_message(a1, 50));
    /* A new socket starts after what the hub already passed on. */
    int a3 = login(rt, "tok-a", &ready);
    CHECK_INT(ready, ==, 9);
    emit(rt, "user-a", 10, "x.y");
    expect_event(a3, "x.y", 10);
    expect_event(a1, "x.y", 10);
    close(a1);
    close(a2);
    close(b);
    close(a3);
    realtime_stop(rt);
    realtime_free(rt);
}

TEST(auth_failures_close_with_1008_or_1011)
{
    struct realtime_opts o = opts(NULL);
    o.auth_timeout_ms = 300;
    struct realtime *rt = start(&o);

    int fd = connect_client(rt, NULL, -1);
    send_text(fd, "{\"type\":\"auth\",\"token\":\"wrong\"}");
    expect_close(fd, 1008, "authentication failed", 2000);
    CHECK(is_closed_soon(fd, 3000));
    close(fd);

    fd = connect_client(rt, NULL, -1);
    send_text(fd, "{\"type\":\"hello\"}");
    expect_close(fd, 1008, "first message", 2000);
    close(fd);

    fd = connect_client(rt, NULL, -1);
    send_text(fd, "not json");
    expect_close(fd, 1008, "first message", 2000);
    close(fd);

    fd = connect_client(rt, NULL, -1);
    send_text(fd, "{\"type\":\"auth\",\"token\":\"tok-a\",\"since\":-4}");
    expect_close(fd, 1008, "since", 2000);
    close(fd);

    fd = connect_client(rt, NULL, -1);
    send_text(fd, "{\"type\":\"auth\",\"token\":\"down\"}");
    expect_close(fd, 1011, "try again", 2000);
    close(fd);

    fd = connect_client(rt, NULL, -1);
    send_frame(fd, true, 0x2, "\x01\x02", 2);
    expect_close(fd, 1003, "binary", 2000);
    close(fd);

    /* silence: closed after the auth deadline */
    int64_t t0 = clock_now_ms();
    fd = connect_client(rt, NULL, -1);
    expect_close(fd, 1008, "timed out", 3000);
    CHECK_INT(clock_now_ms() - t0, >=, 250);
    close(fd);

    /* a socket that authenticated in time is not touched by the deadline */
    fd = login(rt, "tok-a", NULL);
    clock_sleep_ms(500);
    emit(rt, "user-a", 3, "still.here");
    expect_event(fd, "still.here", 3);
    close(fd);
    realtime_stop(rt);
    realtime_free(rt);
}

TEST(auth_in_fragments_with_a_ping_between_and_in_early_bytes)
{
    struct realtime_opts o = opts(NULL);
    struct realtime *rt = start(&o);
    int fd = connect_client(rt, NULL, -1);
    const char *m = "{\"type\":\"auth\",\"token\":\"tok-f\"}";
    size_t half = strlen(m) / 2;
    send_frame(fd, false, 0x1, m, half);
    send_frame(fd, true, 0x9, "hi", 2); /* control frames may interleave */
    struct frame_in *f = calloc(1, sizeof(*f));
    CHECK(read_frame(fd, f, 2000));
    CHECK_INT(f->opcode, ==, 0xa);
    CHECK_STR(f->data, "hi");
    send_frame(fd, true, 0x0, m + half, strlen(m) - half);
    json_t *r = read_json(fd, 2000);
    CHECK_STR(json_string_value(json_object_get(r, "type")), "ready");
    json_decref(r);
    emit(rt, "user-f", 1, "a.b");
    expect_event(fd, "a.b", 1);
    close(fd);

    /* bytes that came with the HTTP request, byte by byte after that */
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    uint8_t early[64];
    size_t n = realtime_ws_header(early, 0x1, strlen(m));
    early[1] |= 0x80;
    memset(early + n, 0, 4); /* zero mask */
    memcpy(early + n + 4, m, strlen(m));
    size_t total = n + 4 + strlen(m);
    CHECK_INT(realtime_adopt(rt, sv[1], early, 3, NULL, -1), ==, LOCI_OK);
    for (size_t i = 3; i < total; i++) {
        CHECK_INT(write(sv[0], early + i, 1), ==, 1);
        clock_sleep_ms(1);
    }
    r = read_json(sv[0], 2000);
    CHECK_STR(json_string_value(json_object_get(r, "type")), "ready");
    json_decref(r);
    close(sv[0]);
    free(f);
    realtime_stop(rt);
    realtime_free(rt);
}

TEST(oversized_frames_close_with_1009)
{
    struct realtime_opts o = opts(NULL);
    o.max_frame_bytes = 1000;
    struct realtime *rt = start(&o);
    int fd = login(rt, "tok-a", NULL);
    char *big = calloc(1, 2000);
    memset(big, 'x', 1999);
    send_text(fd, big);
    expect_close(fd, 1009, "larger than 1000", 2000);
    close(fd);
    /* under the limit: an ordinary refusal of a bad first message */
    fd = connect_client(rt, NULL, -1);
    send_frame(fd, true, 0x1, big, 900);
    expect_close(fd, 1008, "first message", 2000);
    close(fd);
    /* fragments that add up to too much: wslay's message limit */
    fd = login(rt, "tok-a", NULL);
    send_frame(fd, false, 0x1, big, 600);
    send_frame(fd, true, 0x0, big, 600);
    expect_close(fd, 1009, NULL, 2000);
    close(fd);
    realtime_stop(rt);
    realtime_free(rt);

    /* before authentication the limit is 8 KiB whatever the setting */
    o.max_frame_bytes = 65536;
    rt = start(&o);
    big = realloc(big, 9001);
    memset(big, 'x', 9000);
    big[9000] = '\0';
    fd = connect_client(rt, NULL, -1);
    send_text(fd, big);
    expect_close(fd, 1009, "larger than 8192", 2000);
    close(fd);
    fd = login(rt, "tok-a", NULL);
    send_text(fd, big); /* fine once authenticated (and ignored) */
    emit(rt, "user-a", 1, "after.big");
    expect_event(fd, "after.big", 1);
    close(fd);
    free(big);
    realtime_stop(rt);
    realtime_free(rt);
}

TEST(ping_pong_keeps_a_live_client_and_closes_a_silent_one)
{
    struct realtime_opts o = opts(NULL);
    o.ping_interval_ms = 100;
    struct realtime *rt = start(&o);
    int live = login(rt, "tok-a", NULL);
    int mute = login(rt, "tok-b", NULL);
    /* live answers every ping; mute reads them but never answers */
    struct frame_in *f = calloc(1, sizeof(*f));
    int pings = 0;
    bool is_mute_closed = false;
    int64_t end = clock_now_ms() + 600;
    while (clock_now_ms() < end) {
        if (read_frame(live, f, 20) && f->opcode == 0x9) {
            pings++;
            send_frame(live, true, 0xa, f->data, f->len);
        }
        if (!is_mute_closed && read_frame(mute, f, 20) && f->opcode == 0x8) {
            CHECK_INT(f->close_code, ==, 1008);
            CHECK(strstr(f->data + 2, "pong") != NULL);
            is_mute_closed = true;
        }
    }
    CHECK_INT(pings, >=, 3);
    CHECK(is_mute_closed);
    emit(rt, "user-a", 1, "still.open");
    expect_event(live, "still.open", 1);
    free(f);
    close(live);
    close(mute);
    realtime_stop(rt);
    realtime_free(rt);
}

TEST(a_slow_client_is_dropped_and_the_others_keep_receiving)
{
    struct realtime_opts o = opts(NULL);
    o.send_queue_bytes = 8192;
    struct realtime *rt = start(&o);
    /* small kernel buffers on the slow socket, so the hub's queue fills */
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    int small = 4096;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    CHECK_INT(realtime_adopt(rt, sv[1], NULL, 0, as("user-a"), -1), ==, LOCI_OK);
    int slow = sv[0];
    json_decref(read_json(slow, 2000));
    int fast = login(rt, "tok-a", NULL);
    int n_got = 0;
    struct frame_in *f = calloc(1, sizeof(*f));
    /* the fast one keeps up (reads each batch), the slow one reads nothing */
    for (int64_t off = 1; off <= 2000; off++) {
        emit(rt, "user-a", off, "bulk.item");
        if (off % 20 == 0) {
            while (n_got < off && read_message(fast, f, 2000)) {
                CHECK_INT(f->opcode, ==, 1);
                n_got++;
            }
        }
    }
    CHECK_INT(n_got, ==, 2000);
    /* the slow one was dropped: after what its buffers held, EOF */
    CHECK(is_closed_soon(slow, 3000));
    CHECK_INT(realtime_connections(rt), ==, 1);
    free(f);
    close(slow);
    close(fast);
    realtime_stop(rt);
    realtime_free(rt);
}

TEST(client_close_is_answered_and_stop_says_going_away)
{
    struct realtime_opts o = opts(NULL);
    struct realtime *rt = start(&o);
    int fd = login(rt, "tok-a", NULL);
    send_frame(fd, true, 0x8, "\x03\xe8", 2);
    expect_close(fd, 1000, NULL, 2000);
    CHECK(is_closed_soon(fd, 2000));
    close(fd);
    fd = login(rt, "tok-a", NULL);
    int pending = connect_client(rt, NULL, -1);
    clock_sleep_ms(50);
    CHECK_INT(realtime_connections(rt), ==, 2);
    realtime_stop(rt);
    expect_close(fd, 1001, "shutting down", 2000);
    expect_close(pending, 1001, "shutting down", 2000);
    CHECK_INT(realtime_connections(rt), ==, 0);
    /* after stop: refused and closed */
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    CHECK_INT(realtime_adopt(rt, sv[1], NULL, 0, as("user-a"), -1), ==, LOCI_EUNAVAILABLE);
    CHECK(is_closed_soon(sv[0], 1000));
    close(sv[0]);
    close(fd);
    close(pending);
    realtime_free(rt);
}

static void emit_data(struct realtime *rt, const char *user, int64_t offset, const char *type,
                      const char *data)
{
    struct event_view ev = {.offset = offset,
                            .id = "x",
                            .user_id = user,
                            .type = type,
                            .data = data,
                            .data_len = strlen(data),
                            .created_at = 1};
    realtime_on_event(&ev, rt);
}

TEST(revoked_credentials_close_their_sockets_after_the_event)
{
    struct realtime_opts o = opts(NULL);
    struct realtime *rt = start(&o);
    int s1 = login(rt, "tok-a.sess1", NULL);
    int s2 = login(rt, "tok-a.sess2", NULL);
    int k = login(rt, "tok-a.key1", NULL);
    int b = login(rt, "tok-b.sess1", NULL); /* same credential id, another user */
    /* the session cookie path carries its credential too */
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    struct realtime_identity who = {"user-a", "sess1"};
    CHECK_INT(realtime_adopt(rt, sv[1], NULL, 0, &who, -1), ==, LOCI_OK);
    int cookie = sv[0];
    json_decref(read_json(cookie, 2000));

    emit_data(rt, "user-a", 1, "test.revoke_one", "{\"c\":\"sess1\"}");
    for (int i = 0; i < 2; i++) {
        int fd = i == 0 ? s1 : cookie;
        json_t *m = read_json(fd, 2000);
        CHECK_STR(json_string_value(json_object_get(m, "type")), "test.revoke_one");
        json_decref(m);
        expect_close(fd, 1008, "revoked", 2000);
    }
    emit(rt, "user-a", 2, "still.here");
    expect_type(s2, "test.revoke_one");
    expect_event(s2, "still.here", 2);
    expect_type(k, "test.revoke_one");
    expect_event(k, "still.here", 2);
    emit(rt, "user-b", 3, "b.here");
    expect_event(b, "b.here", 3);

    emit_data(rt, "user-a", 4, "test.revoke_user", "{}");
    for (int i = 0; i < 2; i++) {
        int fd = i == 0 ? s2 : k;
        json_t *m = read_json(fd, 2000);
        CHECK_STR(json_string_value(json_object_get(m, "type")), "test.revoke_user");
        json_decref(m);
        expect_close(fd, 1008, "revoked", 2000);
    }
    emit(rt, "user-b", 5, "b.still.here");
    expect_event(b, "b.still.here", 5);
    /* the revoked clients hang up after the close frame, as clients do;
     * only b stays (generous deadline: this runs under ASan on a busy CI) */
    close(s1);
    close(s2);
    close(k);
    close(cookie);
    int64_t deadline = clock_now_ms() + 10000;
    while (realtime_connections(rt) > 1 && clock_now_ms() < deadline)
        clock_sleep_ms(5);
    CHECK_INT(realtime_connections(rt), ==, 1);
    close(b);
    realtime_stop(rt);
    realtime_free(rt);
}

TEST(connection_limit_refuses_more)
{
    struct realtime_opts o = opts(NULL);
    o.max_connections = 2;
    struct realtime *rt = start(&o);
    int a = connect_client(rt, NULL, -1);
    int b = connect_client(rt, NULL, -1);
    CHECK(realtime_is_full(rt));
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    CHECK_INT(realtime_adopt(rt, sv[1], NULL, 0, NULL, -1), ==, LOCI_EUNAVAILABLE);
    close(sv[0]);
    close(a);
    int64_t deadline = clock_now_ms() + 2000;
    while (realtime_is_full(rt) && clock_now_ms() < deadline)
        clock_sleep_ms(5);
    CHECK(!realtime_is_full(rt));
    close(b);
    realtime_stop(rt);
    realtime_free(rt);
}

/* ------------------------------------------------------------------ */
/* resume                                                               */

struct append {
    const char *user;
    int n;
    int64_t last;
    const char *type; /* NULL: test.stored */
};

static int tx_append(struct db_conn *c, void *arg)
{
    struct append *a = arg;
    for (int i = 0; i < a->n; i++) {
        int64_t off = 0;
        json_t *d = json_pack("{s:s}", "user", a->user);
        int rc = events_append(c, a->user, a->type ? a->type : "test.stored", d, &off);
        json_decref(d);
        if (rc)
            return rc;
        a->last = off;
    }
    return LOCI_OK;
}

TEST(resume_replays_missed_events_then_live_without_gaps_or_duplicates)
{
    const char *urls[2];
    int n_urls = harness_db_urls("realtime", urls);
    for (int u = 0; u < n_urls; u++) {
        struct db *db = NULL;
        char err[256];
        CHECK_INT(db_open(urls[u], 4, &db, err, sizeof(err)), ==, 0);
        int applied;
        CHECK_INT(db_migrate(db, &applied, err, sizeof(err)), ==, 0);
        struct append a = {"user-r", 5, 0, NULL};
        CHECK_INT(db_tx(db, tx_append, &a), ==, 0);
        int64_t first_batch_end = a.last;
        struct append other = {"user-s", 3, 0, NULL};
        CHECK_INT(db_tx(db, tx_append, &other), ==, 0);
        a.n = 450; /* more than two replay pages */
        CHECK_INT(db_tx(db, tx_append, &a), ==, 0);
        int64_t head = a.last > other.last ? a.last : other.last;

        struct realtime_opts o = opts(db);
        o.send_queue_bytes = 16384; /* replay must pace itself to the queue */
        struct realtime *rt = start(&o);
        /* the hub has seen everything up to head (as after bus_start) */
        emit(rt, "nobody", head, "x.y");

        int fd = connect_client(rt, "user-r", first_batch_end);
        json_t *r = read_json(fd, 3000);
        CHECK_STR(json_string_value(json_object_get(r, "type")), "ready");
        CHECK_INT(json_integer_value(json_object_get(r, "offset")), ==, first_batch_end);
        json_decref(r);
        /* events committed while the replay runs come through the bus too
         * (emit, as the bus would): one replayed already, two new */
        emit(rt, "user-r", a.last, "test.stored");
        struct append late = {"user-r", 2, 0, "test.late"};
        CHECK_INT(db_tx(db, tx_append, &late), ==, 0);
        emit(rt, "user-r", late.last - 1, "test.late");
        emit(rt, "user-r", late.last, "test.late");
        int64_t last = first_batch_end;
        int n = 0;
        while (last < late.last) {
            json_t *m = read_json(fd, 3000);
            int64_t off = json_integer_value(json_object_get(m, "offset"));
            CHECK_INT(off, >, last); /* in order, nothing twice */
            json_decref(m);
            last = off;
            n++;
        }
        CHECK_INT(n, ==, 452); /* nothing missing */
        CHECK(!has_message(fd, 200));
        /* caught up: live from here */
        struct append after = {"user-r", 1, 0, "test.live"};
        CHECK_INT(db_tx(db, tx_append, &after), ==, 0);
        emit(rt, "user-r", after.last, "test.live");
        expect_event(fd, "test.live", after.last);
        CHECK(!has_message(fd, 100));
        head = after.last;

        /* an auth message may carry since; a since at the head replays nothing */
        int fd2 = connect_client(rt, NULL, -1);
        char msg[128];
        snprintf(msg, sizeof(msg), "{\"type\":\"auth\",\"token\":\"tok-s\",\"since\":0}");
        send_text(fd2, msg);
        r = read_json(fd2, 3000);
        CHECK_INT(json_integer_value(json_object_get(r, "offset")), ==, 0);
        json_decref(r);
        for (int i = 0; i < 3; i++) {
            json_t *m = read_json(fd2, 3000);
            CHECK_STR(json_string_value(json_object_get(m, "type")), "test.stored");
            json_decref(m);
        }
        CHECK(!has_message(fd2, 100));
        int fd3 = connect_client(rt, "user-s", head);
        r = read_json(fd3, 3000);
        CHECK_INT(json_integer_value(json_object_get(r, "offset")), ==, head);
        json_decref(r);
        CHECK(!has_message(fd3, 100));
        close(fd);
        close(fd2);
        close(fd3);
        realtime_stop(rt);
        realtime_free(rt);
        db_close(db);
    }
}
