/*
 * realtime.c - the hub thread: an epoll loop over every WebSocket, an inbox
 * (mutex + eventfd) through which the bus and the HTTP threads hand it
 * events and sockets, per-user routing, replay, timers and backpressure.
 *
 * A socket's life: adopted -> AUTH (until an auth message, at most
 * auth_timeout_ms) -> OPEN (in the user table, pinged every
 * ping_interval_ms) -> CLOSING (close frame queued; after it is written the
 * write side is shut and the socket lingers briefly for the client's close)
 * -> freed. Each phase keeps its sockets in a list ordered by deadline: all
 * deadlines of a phase are "now + the same interval", so appending keeps the
 * order and timers cost O(1) per socket, with no scan of idle sockets.
 *
 * Ordering: the bus delivers events in offset order and the hub thread sends
 * them in that order; a socket in replay takes its events from the store
 * instead and skips live ones until a short page says it has caught up.
 * Every event the hub saw before that last read was committed before it, so
 * the read returns it: no gap, and last_sent rules out duplicates.
 */
#include "services/realtime/realtime.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define OP_CONT   0x0u
#define OP_TEXT   0x1u
#define OP_BINARY 0x2u
#define OP_CLOSE  0x8u
#define OP_PING   0x9u
#define OP_PONG   0xau

#define READ_CHUNK        16384
#define AUTH_FRAME_MAX    8192 /* no bigger message before authentication */
#define CLOSE_LINGER_MS   2000 /* wait this long for the client's close/EOF */
#define REPLAY_PAGE       200
#define REPLAY_PAGES      16 /* per loop turn, over all sockets */
#define INBOX_MAX_BYTES   ((size_t)256 << 20)
#define EPOLL_BATCH       256
#define IOV_BATCH         64
#define MIN_BUCKETS       1024
#define KERNEL_SNDBUF_MAX ((size_t)1 << 20)

enum phase { PH_AUTH, PH_OPEN, PH_CLOSING, N_PHASES };

enum reason {
    R_NONE,
    R_CLIENT,
    R_AUTH_TIMEOUT,
    R_AUTH_FAILED,
    R_SLOW,
    R_TOO_BIG,
    R_PING_TIMEOUT,
    R_PROTOCOL,
    R_ERROR,
    R_SHUTDOWN,
    R_OVERLOAD,
    R_REVOKED,
    N_REASONS
};

static const char *const reason_names[N_REASONS] = {
    "none",         "client",   "auth_timeout", "auth_failed", "slow_client", "too_big",
    "ping_timeout", "protocol", "error",        "shutdown",    "overload",    "revoked"};

/* One encoded frame. Built by one thread, then only touched by the hub
 * thread, which shares it among every socket it is queued on. */
struct msg {
    int refs;
    size_t len;
    uint8_t data[];
};

struct outq {
    struct outq *next;
    struct msg *m;
};

/* A partial frame: cap is the frame's full size once its header is known. */
struct inbuf {
    size_t len;
    size_t cap;
    uint8_t p[];
};

/* One socket; owned by the hub thread. */
struct conn {
    struct realtime *rt;
    int fd;
    uint8_t phase;
    uint8_t reason;     /* why it is closing (enum reason) */
    bool is_pong_due;   /* a ping went out, no pong yet */
    bool is_replaying;  /* taking events from the store, not live */
    bool is_in_replay;  /* on rt->replay */
    bool is_in_message; /* a fragmented message is partly received */
    bool wants_out;     /* EPOLLOUT registered */
    bool is_dirty;      /* on rt->dirty */
    bool is_dead;       /* fd closed; freed at the end of the loop turn */
    bool is_doomed;     /* queue overflowed inside a wslay callback */
    bool is_peer_closed;
    bool is_fin_sent;
    char user_id[UUID_STR_LEN];
    char credential_id[UUID_STR_LEN]; /* the session or API key it signed in with */
    int64_t last_sent;                /* offset of the last event queued; before auth: since */
    int64_t deadline;                 /* ms, monotonic; meaning depends on the phase */
    struct conn *prev, *next;         /* phase list, then the dead list */
    struct conn *hnext;               /* user table chain */
    struct conn *dnext;               /* dirty list */
    struct conn *rnext;               /* replay list */
    struct outq *out_head, *out_tail;
    size_t out_off;   /* bytes of out_head already written */
    size_t out_bytes; /* queued and not yet written */
    struct inbuf *in;
    wslay_event_context_ptr ws; /* only while a message is in progress */
};

struct plist {
    struct conn *head, *tail;
};

enum item_kind { IT_EVENT, IT_ADOPT };

struct item {
    struct item *next;
    enum item_kind kind;
    int64_t offset;                   /* IT_EVENT */
    struct msg *msg;                  /* IT_EVENT */
    enum realtime_revoke revoke;      /* IT_EVENT: what it takes away */
    char user_id[UUID_STR_LEN];       /* IT_EVENT: the event's; IT_ADOPT: "" unless authenticated */
    char credential_id[UUID_STR_LEN]; /* IT_EVENT: the one revoked; IT_ADOPT: signed in with */
    int fd;                           /* IT_ADOPT */
    int64_t since;                    /* IT_ADOPT */
    size_t n_extra;
    uint8_t extra[];
};

struct realtime {
    struct realtime_opts o;
    int epfd;
    int evfd;
    pthread_t thread;
    bool is_started;
    pthread_mutex_t mu; /* guards the fields down to skipped_upto */
    struct item *in_head, *in_tail;
    size_t in_bytes;
    bool is_signalled; /* evfd written since the hub last drained */
    bool is_stopping;
    bool is_overflowed;   /* the inbox was full: events were dropped */
    int n_open;           /* authenticated sockets; 0 lets the bus skip events */
    int64_t skipped_upto; /* last offset the bus dropped without queueing */
    atomic_int n_conns;   /* every socket held, for realtime_is_full */
    /* hub thread only */
    int64_t live; /* offset of the last event processed */
    int64_t now;  /* ms, monotonic, at the start of the loop turn */
    struct conn **buckets;
    size_t n_buckets;
    struct plist phases[N_PHASES];
    struct conn *dirty;
    struct conn *replay;
    struct conn *dead;
    struct msg *ping;
    const uint8_t *feed; /* what wslay's recv callback hands out */
    size_t feed_n;
    struct metric_series *m_open;
    struct metric_series *m_pending;
    struct metric_series *m_live;
    struct metric_series *m_replayed;
    struct metric_series *m_bytes;
    struct metric_series *m_closed[N_REASONS];
};

/* ------------------------------------------------------------------ */
/* messages and queues                                                  */

static struct msg *msg_new(size_t len)
{
    struct msg *m = xmalloc(sizeof(*m) + len);
    m->refs = 1;
    m->len = len;
    return m;
}

static void msg_unref(struct msg *m)
{
    if (m && --m->refs == 0)
        xfree(m);
}

/* A whole frame with opcode around payload. */
static struct msg *frame_new(unsigned opcode, const void *payload, size_t n)
{
    uint8_t h[10];
    size_t hn = realtime_ws_header(h, opcode, n);
    struct msg *m = msg_new(hn + n);
    memcpy(m->data, h, hn);
    if (n)
        memcpy(m->data + hn, payload, n);
    return m;
}

/* {"type":"<type>","offset":N,"data":<data>} as a text frame. */
static struct msg *event_frame(const char *type, int64_t offset, const char *data, size_t data_n)
{
    struct buf b;
    buf_init(&b, (size_t)1 << 30); /* event data is bounded by the store */
    buf_append_str(&b, "{\"type\":\"");
    buf_append_json_escaped(&b, type, strlen(type));
    buf_printf(&b, "\",\"offset\":%lld,\"data\":", (long long)offset);
    if (data_n)
        buf_append(&b, data, data_n);
    else
        buf_append_str(&b, "{}");
    buf_append_char(&b, '}');
    struct msg *m = frame_new(OP_TEXT, b.p, b.len);
    buf_release(&b);
    return m;
}

static struct msg *close_frame(unsigned code, const char *why)
{
    uint8_t p[125];
    size_t n = strlen(why);
    if (n > sizeof(p) - 2)
        n = sizeof(p) - 2;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, why, n);
    return frame_new(OP_CLOSE, p, n + 2);
}

static void queue_push(struct conn *c, struct msg *m)
{
    struct outq *q = xmalloc(sizeof(*q));
    q->next = NULL;
    q->m = m;
    m->refs++;
    if (c->out_tail)
        c->out_tail->next = q;
    else
        c->out_head = q;
    c->out_tail = q;
    c->out_bytes += m->len;
}

static void queue_free(struct conn *c)
{
    struct outq *q = c->out_head;
    while (q) {
        struct outq *next = q->next;
        msg_unref(q->m);
        xfree(q);
        q = next;
    }
    c->out_head = c->out_tail = NULL;
    c->out_bytes = c->out_off = 0;
}

static void mark_dirty(struct conn *c)
{
    if (c->is_dirty || c->is_dead)
        return;
    c->is_dirty = true;
    c->dnext = c->rt->dirty;
    c->rt->dirty = c;
}

/* Queue m unless that would pass the socket's limit. Not from inside
 * wslay (see enqueue()). */
static bool enqueue_nowrite(struct conn *c, struct msg *m)
{
    if (c->out_bytes + m->len > c->rt->o.send_queue_bytes)
        return false;
    queue_push(c, m);
    mark_dirty(c);
    return true;
}

static void flush(struct conn *c);

/* Queue m; when the queue is full, first write what the socket takes now,
 * so a burst handled in one loop turn never counts against a client that
 * keeps up. False when the client really is behind (or gone). */
static bool enqueue(struct conn *c, struct msg *m)
{
    if (enqueue_nowrite(c, m))
        return true;
    flush(c);
    return !c->is_dead && enqueue_nowrite(c, m);
}

/* ------------------------------------------------------------------ */
/* lists and the user table                                             */

static void plist_remove(struct plist *l, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static void plist_append(struct plist *l, struct conn *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void set_phase(struct conn *c, enum phase p, int64_t deadline)
{
    struct realtime *rt = c->rt;
    plist_remove(&rt->phases[c->phase], c);
    c->phase = (uint8_t)p;
    c->deadline = deadline;
    plist_append(&rt->phases[p], c);
}

static size_t bucket_of(const struct realtime *rt, const char *user_id)
{
    return str_hash(user_id) & (rt->n_buckets - 1);
}

static void table_grow(struct realtime *rt)
{
    size_t n = rt->n_buckets * 2;
    struct conn **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < rt->n_buckets; i++) {
        struct conn *c = rt->buckets[i];
        while (c) {
            struct conn *next = c->hnext;
            size_t k = str_hash(c->user_id) & (n - 1);
            c->hnext = b[k];
            b[k] = c;
            c = next;
        }
    }
    xfree(rt->buckets);
    rt->buckets = b;
    rt->n_buckets = n;
}

static void table_remove(struct realtime *rt, struct conn *c)
{
    struct conn **pp = &rt->buckets[bucket_of(rt, c->user_id)];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    c->hnext = NULL;
}

static void replay_remove(struct realtime *rt, struct conn *c)
{
    if (!c->is_in_replay)
        return;
    struct conn **pp = &rt->replay;
    while (*pp && *pp != c)
        pp = &(*pp)->rnext;
    if (*pp)
        *pp = c->rnext;
    c->rnext = NULL;
    c->is_in_replay = false;
}

/* Leave the user table (the OPEN phase); the bus may skip events again
 * once no socket is left. */
static void leave_open(struct realtime *rt, struct conn *c)
{
    if (c->phase != PH_OPEN)
        return;
    table_remove(rt, c);
    replay_remove(rt, c);
    pthread_mutex_lock(&rt->mu);
    rt->n_open--;
    pthread_mutex_unlock(&rt->mu);
    metrics_add(rt->m_open, -1);
}

/* ------------------------------------------------------------------ */
/* closing                                                              */

static void free_parser(struct conn *c)
{
    if (c->ws) {
        wslay_event_context_free(c->ws);
        c->ws = NULL;
    }
    xfree(c->in);
    c->in = NULL;
    c->is_in_message = false;
}

static void log_close(struct conn *c, enum reason r)
{
    if (r == R_SLOW || r == R_AUTH_FAILED || r == R_OVERLOAD) {
        struct log_ctx ctx = {.user_id = c->user_id[0] ? c->user_id : NULL, .route = "/ws"};
        log_line(&ctx, LOG_INFO, "websocket closed",
                 (struct log_field[]){LF_STR("reason", reason_names[r]),
                                      LF_INT("queued_bytes", (int64_t)c->out_bytes)},
                 2);
    }
}

/* Close the socket now, without a close frame. The struct lives until the
 * end of the loop turn (epoll may still hold an event for it). */
static void conn_kill(struct conn *c, enum reason r)
{
    struct realtime *rt = c->rt;
    if (c->is_dead)
        return;
    if (c->reason == R_NONE) {
        c->reason = (uint8_t)r;
        metrics_add(rt->m_closed[r], 1);
        log_close(c, r);
    }
    leave_open(rt, c);
    if (c->phase == PH_AUTH)
        metrics_add(rt->m_pending, -1);
    plist_remove(&rt->phases[c->phase], c);
    /* Deregister explicitly: epoll keys on the open file, which another
     * descriptor (the HTTP server's, until it lets go) may still share. */
    epoll_ctl(rt->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    free_parser(c);
    queue_free(c);
    c->is_dead = true;
    c->next = rt->dead;
    rt->dead = c;
    atomic_fetch_sub(&rt->n_conns, 1);
}

/* Enter CLOSING: stop reading messages, write what is queued (a close frame
 * last), then shut the write side and linger for the client. */
static void enter_closing(struct conn *c, enum reason r)
{
    struct realtime *rt = c->rt;
    if (c->phase == PH_CLOSING || c->is_dead)
        return;
    if (c->reason == R_NONE) {
        c->reason = (uint8_t)r;
        metrics_add(rt->m_closed[r], 1);
        log_close(c, r);
    }
    leave_open(rt, c);
    if (c->phase == PH_AUTH)
        metrics_add(rt->m_pending, -1);
    set_phase(c, PH_CLOSING, rt->now + CLOSE_LINGER_MS);
    mark_dirty(c);
}

/* Queue a close frame (past the queue limit: it is small and the last) and
 * start closing. The parser is freed by the caller when inside it. */
static void close_with(struct conn *c, unsigned code, const char *why, enum reason r)
{
    if (c->phase == PH_CLOSING || c->is_dead)
        return;
    struct msg *m = close_frame(code, why);
    queue_push(c, m);
    msg_unref(m);
    enter_closing(c, r);
}

/* ------------------------------------------------------------------ */
/* writing                                                              */

static void want_out(struct conn *c, bool on)
{
    if (c->wants_out == on || c->is_dead)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(c->rt->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->wants_out = on;
}

static void flush(struct conn *c)
{
    struct realtime *rt = c->rt;
    while (c->out_head && !c->is_dead) {
        struct iovec iov[IOV_BATCH];
        int n = 0;
        for (struct outq *q = c->out_head; q && n < IOV_BATCH; q = q->next, n++) {
            size_t off = n == 0 ? c->out_off : 0;
            iov[n].iov_base = q->m->data + off;
            iov[n].iov_len = q->m->len - off;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                want_out(c, true);
                return;
            }
            conn_kill(c, R_CLIENT);
            return;
        }
        metrics_add(rt->m_bytes, (double)w);
        c->out_bytes -= (size_t)w;
        size_t left = (size_t)w;
        while (left > 0) {
            struct outq *q = c->out_head;
            size_t rest = q->m->len - c->out_off;
            if (left < rest) {
                c->out_off += left;
                break;
            }
            left -= rest;
            c->out_off = 0;
            c->out_head = q->next;
            if (!c->out_head)
                c->out_tail = NULL;
            msg_unref(q->m);
            xfree(q);
        }
    }
    if (c->is_dead)
        return;
    want_out(c, false);
    if (c->phase == PH_CLOSING) {
        if (c->is_peer_closed) {
            conn_kill(c, R_CLIENT); /* their close came first; ours is the reply */
        } else if (!c->is_fin_sent) {
            shutdown(c->fd, SHUT_WR);
            c->is_fin_sent = true;
        }
    }
}

/* ------------------------------------------------------------------ */
/* wslay glue                                                           */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    struct conn *c = user;
    struct realtime *rt = c->rt;
    if (rt->feed_n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = rt->feed_n < len ? rt->feed_n : len;
    memcpy(buf, rt->feed, n);
    rt->feed += n;
    rt->feed_n -= n;
    return (ssize_t)n;
}

/* wslay's own frames (pong, close replies) join our queue. */
static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)ctx;
    (void)flags;
    struct conn *c = user;
    if (c->is_doomed || c->phase == PH_CLOSING)
        return (ssize_t)len;
    struct msg *m = msg_new(len);
    memcpy(m->data, data, len);
    if (!enqueue_nowrite(c, m)) /* no flush here: it may free this parser */
        c->is_doomed = true;
    msg_unref(m);
    return (ssize_t)len;
}

static void authenticated(struct conn *c, const struct realtime_identity *who, int64_t since);

static void bad_auth(struct conn *c, const char *why)
{
    close_with(c, 1008, why, R_AUTH_FAILED);
}

/* The first message: {"type":"auth","token":"...","since":N?}. */
static void on_auth_message(struct conn *c, const uint8_t *p, size_t n)
{
    struct realtime *rt = c->rt;
    json_t *v = NULL;
    struct json_error je;
    if (json_parse_limited((const char *)p, n, 4, &v, &je) != LOCI_OK || !json_is_object(v)) {
        json_decref(v);
        bad_auth(c, "the first message must be {\"type\":\"auth\",\"token\":\"...\"}");
        return;
    }
    const char *type = json_string_value(json_object_get(v, "type"));
    json_t *tok = json_object_get(v, "token");
    json_t *since_v = json_object_get(v, "since");
    int64_t since = c->last_sent;
    if (!type || strcmp(type, "auth") != 0 || !json_is_string(tok) ||
        json_string_length(tok) == 0 || json_string_length(tok) > 4096 ||
        strlen(json_string_value(tok)) != json_string_length(tok)) {
        bad_auth(c, "the first message must be {\"type\":\"auth\",\"token\":\"...\"}");
    } else if (since_v && (!json_is_integer(since_v) || json_integer_value(since_v) < 0)) {
        bad_auth(c, "'since' must be an event offset (an integer >= 0)");
    } else {
        if (since_v)
            since = (int64_t)json_integer_value(since_v);
        struct realtime_identity who = {"", ""};
        int rc = rt->o.authenticate(rt->o.auth_arg, json_string_value(tok), &who);
        if (rc == LOCI_EAUTH)
            bad_auth(c, "authentication failed: the token is invalid, expired or revoked");
        else if (rc != LOCI_OK || !who.user_id[0])
            close_with(c, 1011, "cannot check the token now; try again", R_ERROR);
        else
            authenticated(c, &who, since);
    }
    json_decref(v);
}

static void ws_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user)
{
    struct conn *c = user;
    if (c->phase == PH_CLOSING || c->is_dead)
        return;
    switch (arg->opcode) {
    case OP_PONG:
        c->is_pong_due = false;
        break;
    case OP_TEXT:
        if (c->phase == PH_AUTH)
            on_auth_message(c, arg->msg, arg->msg_length);
        /* Later messages carry nothing the server needs; ignored. */
        break;
    case OP_BINARY:
        close_with(c, 1003, "binary messages are not accepted", R_PROTOCOL);
        break;
    default:
        break; /* ping: wslay answers; close: handled after the feed */
    }
    if (c->phase == PH_CLOSING)
        wslay_event_shutdown_read(ctx);
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .on_msg_recv_callback = ws_on_msg,
};

static size_t frame_limit(const struct conn *c)
{
    size_t max = c->rt->o.max_frame_bytes;
    return c->phase == PH_AUTH && max > AUTH_FRAME_MAX ? AUTH_FRAME_MAX : max;
}

/* Hand n bytes of whole frames to wslay. */
static void feed(struct conn *c, const uint8_t *p, size_t n)
{
    struct realtime *rt = c->rt;
    if (!c->ws) {
        if (wslay_event_context_server_init(&c->ws, &ws_callbacks, c) != 0) {
            c->ws = NULL;
            conn_kill(c, R_ERROR);
            return;
        }
        wslay_event_config_set_max_recv_msg_length(c->ws, frame_limit(c));
    }
    rt->feed = p;
    rt->feed_n = n;
    int r = wslay_event_recv(c->ws);
    rt->feed_n = 0;
    if (c->is_dead)
        return;
    if (c->is_doomed) {
        conn_kill(c, R_SLOW);
        return;
    }
    if (c->phase == PH_CLOSING) {
        free_parser(c); /* we closed from a callback */
        return;
    }
    if (r != 0) {
        conn_kill(c, R_PROTOCOL);
        return;
    }
    if (wslay_event_send(c->ws) != 0 || c->is_doomed) {
        conn_kill(c, c->is_doomed ? R_SLOW : R_ERROR);
        return;
    }
    if (wslay_event_get_close_received(c->ws)) {
        c->is_peer_closed = true;
        enter_closing(c, R_CLIENT);
        free_parser(c);
    } else if (wslay_event_get_close_sent(c->ws)) {
        /* wslay refused the input (protocol error, bad UTF-8, too big) */
        enum reason why = wslay_event_get_status_code_sent(c->ws) == 1009 ? R_TOO_BIG : R_PROTOCOL;
        enter_closing(c, why);
        free_parser(c);
    }
}

/* Keep the bytes of an unfinished frame. */
static void keep_tail(struct conn *c, const uint8_t *p, size_t n)
{
    if (n == 0) {
        xfree(c->in);
        c->in = NULL;
        return;
    }
    struct realtime_frame f;
    size_t need = 14; /* enough for any header */
    if (realtime_ws_frame(p, n, &f) == 1)
        need = f.header_len + (size_t)f.payload_len;
    if (need < n)
        need = n;
    if (c->in && c->in->p == p) {
        if (c->in->cap < need)
            c->in = xrealloc(c->in, sizeof(*c->in) + need);
        c->in->cap = need;
        return;
    }
    if (c->in && p >= c->in->p && p < c->in->p + c->in->len) {
        memmove(c->in->p, p, n);
    } else {
        xfree(c->in);
        c->in = xmalloc(sizeof(*c->in) + need);
        memcpy(c->in->p, p, n);
        c->in->cap = need;
    }
    if (c->in->cap < need) {
        c->in = xrealloc(c->in, sizeof(*c->in) + need);
        c->in->cap = need;
    }
    c->in->len = n;
}

/* Process received bytes: find whole frames (refusing oversized ones
 * before buffering them), feed them to wslay, keep the rest. */
static void process_input(struct conn *c, const uint8_t *p, size_t n)
{
    size_t limit = frame_limit(c);
    size_t pos = 0;
    bool in_msg = c->is_in_message;
    for (;;) {
        struct realtime_frame f;
        int r = realtime_ws_frame(p + pos, n - pos, &f);
        if (r == 0)
            break;
        if (r < 0 || f.payload_len > limit) {
            char why[80];
            snprintf(why, sizeof(why), "frame larger than %zu bytes", limit);
            close_with(c, 1009, why, R_TOO_BIG);
            free_parser(c);
            return;
        }
        size_t total = f.header_len + (size_t)f.payload_len;
        if (n - pos < total)
            break;
        if (f.opcode == OP_TEXT || f.opcode == OP_BINARY)
            in_msg = !f.is_fin;
        else if (f.opcode == OP_CONT && f.is_fin)
            in_msg = false;
        pos += total;
    }
    if (pos > 0) {
        feed(c, p, pos);
        if (c->is_dead || c->phase == PH_CLOSING)
            return;
    }
    c->is_in_message = in_msg;
    keep_tail(c, p + pos, n - pos);
    if (!in_msg && c->ws) {
        /* Between messages wslay holds nothing: give its ~9 KiB back. */
        wslay_event_context_free(c->ws);
        c->ws = NULL;
    }
}

static void on_readable(struct conn *c)
{
    uint8_t stack[READ_CHUNK];
    uint8_t *p = stack;
    size_t room = sizeof(stack);
    if (c->in && c->phase != PH_CLOSING) {
        p = c->in->p + c->in->len;
        room = c->in->cap - c->in->len;
    }
    ssize_t r = read(c->fd, p, room);
    if (r == 0) {
        conn_kill(c, R_CLIENT);
        return;
    }
    if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_kill(c, R_CLIENT);
        return;
    }
    if (c->phase == PH_CLOSING)
        return; /* draining until the client closes */
    if (c->in) {
        c->in->len += (size_t)r;
        process_input(c, c->in->p, c->in->len);
    } else {
        process_input(c, stack, (size_t)r);
    }
}

/* ------------------------------------------------------------------ */
/* authentication and replay                                            */

static void authenticated(struct conn *c, const struct realtime_identity *who, int64_t since)
{
    struct realtime *rt = c->rt;
    snprintf(c->user_id, sizeof(c->user_id), "%s", who->user_id);
    snprintf(c->credential_id, sizeof(c->credential_id), "%s", who->credential_id);
    metrics_add(rt->m_pending, -1);
    metrics_add(rt->m_open, 1);
    set_phase(c, PH_OPEN, rt->now + rt->o.ping_interval_ms);
    size_t k = bucket_of(rt, c->user_id);
    c->hnext = rt->buckets[k];
    rt->buckets[k] = c;
    pthread_mutex_lock(&rt->mu);
    int n_open = ++rt->n_open;
    int64_t live = rt->live > rt->skipped_upto ? rt->live : rt->skipped_upto;
    pthread_mutex_unlock(&rt->mu);
    if ((size_t)n_open > rt->n_buckets)
        table_grow(rt);
    int64_t from = since >= 0 ? since : live;
    c->last_sent = from;
    if (since >= 0 && since < live) {
        c->is_replaying = true;
        c->is_in_replay = true;
        c->rnext = rt->replay;
        rt->replay = c;
    }
    char ready[64];
    int n = snprintf(ready, sizeof(ready), "{\"type\":\"ready\",\"offset\":%lld}", (long long)from);
    struct msg *m = frame_new(OP_TEXT, ready, (size_t)n);
    /* The queue is empty here, and this may run inside wslay's callback,
     * where the socket must not be killed: no limit check. */
    queue_push(c, m);
    mark_dirty(c);
    msg_unref(m);
}

struct replay_walk {
    struct conn *c;
    int n;
    bool is_slow;
};

static int replay_one(const struct event_view *ev, void *arg)
{
    struct replay_walk *w = arg;
    struct conn *c = w->c;
    struct msg *m = event_frame(ev->type, ev->offset, ev->data, ev->data_len);
    bool ok = enqueue(c, m);
    msg_unref(m);
    if (!ok) {
        w->is_slow = true;
        return 1;
    }
    c->last_sent = ev->offset;
    w->n++;
    metrics_add(c->rt->m_replayed, 1);
    /* Leave room for live traffic; continue when the client drained it. */
    return c->out_bytes > c->rt->o.send_queue_bytes / 4 * 3 ? 1 : 0;
}

enum replay_step { RP_MORE, RP_DONE, RP_WAIT, RP_FAILED, RP_SLOW };

static enum replay_step replay_page(struct realtime *rt, struct conn *c)
{
    if (c->out_bytes > rt->o.send_queue_bytes / 2)
        return RP_WAIT;
    struct db_conn *dc = NULL;
    if (db_acquire(rt->o.db, &dc) != LOCI_OK)
        return RP_FAILED;
    struct replay_walk w = {c, 0, false};
    int64_t last = c->last_sent;
    int r = events_read(dc, c->user_id, c->last_sent, REPLAY_PAGE, replay_one, &w, &last);
    db_release(dc);
    if (w.is_slow)
        return RP_SLOW;
    if (r < 0)
        return RP_FAILED;
    if (r > 0)
        return RP_WAIT;
    return w.n < REPLAY_PAGE ? RP_DONE : RP_MORE;
}

/* Replay a few pages over the sockets that have room. */
static void run_replay(struct realtime *rt)
{
    int budget = REPLAY_PAGES;
    struct conn **pp = &rt->replay;
    while (*pp && budget > 0) {
        struct conn *c = *pp;
        enum replay_step s = replay_page(rt, c);
        if (s != RP_WAIT)
            budget--;
        if (!c->is_in_replay)
            continue; /* a write failed and killed it: already unlinked */
        if (s == RP_MORE || s == RP_WAIT) {
            pp = &c->rnext;
            continue;
        }
        *pp = c->rnext; /* done, or failed */
        c->rnext = NULL;
        c->is_in_replay = false;
        c->is_replaying = false;
        if (s == RP_SLOW)
            conn_kill(c, R_SLOW);
        else if (s == RP_FAILED)
            close_with(c, 1011, "cannot read the event log now; reconnect with since", R_ERROR);
    }
}

/* True when a socket in replay could take another page now. */
static bool can_replay(const struct realtime *rt)
{
    for (const struct conn *c = rt->replay; c; c = c->rnext) {
        if (c->out_bytes <= rt->o.send_queue_bytes / 2)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* the inbox                                                            */

static void adopt(struct realtime *rt, struct item *it)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    c->rt = rt;
    c->fd = it->fd;
    c->last_sent = it->since;
    c->phase = PH_AUTH;
    c->deadline = rt->now + rt->o.auth_timeout_ms;
    plist_append(&rt->phases[PH_AUTH], c);
    metrics_add(rt->m_pending, 1);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(rt->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_kill(c, R_ERROR);
        return;
    }
    if (it->user_id[0]) {
        struct realtime_identity who;
        memcpy(who.user_id, it->user_id, sizeof(who.user_id));
        memcpy(who.credential_id, it->credential_id, sizeof(who.credential_id));
        authenticated(c, &who, it->since);
    }
    if (it->n_extra > 0 && !c->is_dead)
        process_input(c, it->extra, it->n_extra);
}

static bool is_revoked(const struct conn *c, const struct item *it)
{
    return it->revoke == REALTIME_REVOKE_USER ||
           (it->revoke == REALTIME_REVOKE_CREDENTIAL && c->credential_id[0] &&
            strcmp(c->credential_id, it->credential_id) == 0);
}

static void dispatch(struct realtime *rt, struct item *it)
{
    if (it->offset > rt->live)
        rt->live = it->offset;
    struct conn *c = rt->buckets[bucket_of(rt, it->user_id)];
    while (c) {
        struct conn *next = c->hnext;
        if (strcmp(c->user_id, it->user_id) != 0) {
            c = next;
            continue;
        }
        if (!c->is_replaying && c->last_sent < it->offset) {
            if (enqueue(c, it->msg)) {
                c->last_sent = it->offset;
                metrics_add(rt->m_live, 1);
            } else {
                conn_kill(c, R_SLOW);
            }
        }
        /* The event goes out first, so the client can tell why. */
        if (!c->is_dead && is_revoked(c, it))
            close_with(c, 1008, "signed out: this session or key was revoked", R_REVOKED);
        c = next;
    }
}

static void close_all_open(struct realtime *rt, unsigned code, const char *why, enum reason r)
{
    while (rt->phases[PH_OPEN].head)
        close_with(rt->phases[PH_OPEN].head, code, why, r);
}

static void free_item(struct item *it)
{
    msg_unref(it->msg);
    xfree(it);
}

/* Take everything queued to the hub. Returns false when stopping. */
static bool drain_inbox(struct realtime *rt)
{
    uint64_t v;
    ssize_t rd = read(rt->evfd, &v, sizeof(v));
    (void)rd;
    pthread_mutex_lock(&rt->mu);
    struct item *it = rt->in_head;
    rt->in_head = rt->in_tail = NULL;
    rt->in_bytes = 0;
    rt->is_signalled = false;
    bool is_stopping = rt->is_stopping;
    bool is_overflowed = rt->is_overflowed;
    rt->is_overflowed = false;
    if (rt->skipped_upto > rt->live)
        rt->live = rt->skipped_upto; /* every queued event comes after it */
    pthread_mutex_unlock(&rt->mu);
    while (it) {
        struct item *next = it->next;
        if (is_stopping) {
            if (it->kind == IT_ADOPT) {
                close(it->fd);
                atomic_fetch_sub(&rt->n_conns, 1);
            }
        } else if (it->kind == IT_ADOPT) {
            adopt(rt, it);
        } else {
            dispatch(rt, it);
        }
        free_item(it);
        it = next;
    }
    if (is_overflowed && !is_stopping) {
        log_warn(NULL, "websocket hub fell behind the event bus; closing every socket "
                       "(clients resume with since)");
        close_all_open(rt, 1013, "server overloaded; reconnect with since", R_OVERLOAD);
        pthread_mutex_lock(&rt->mu);
        if (rt->skipped_upto > rt->live)
            rt->live = rt->skipped_upto;
        pthread_mutex_unlock(&rt->mu);
    }
    return !is_stopping;
}

static void signal_hub(struct realtime *rt)
{
    if (rt->is_signalled)
        return;
    rt->is_signalled = true;
    uint64_t one = 1;
    ssize_t w = write(rt->evfd, &one, sizeof(one));
    (void)w;
}

void realtime_on_event(const struct event_view *ev, void *arg)
{
    struct realtime *rt = arg;
    if (!ev->user_id || !ev->user_id[0] || strlen(ev->user_id) >= UUID_STR_LEN)
        return; /* system events go to no socket */
    pthread_mutex_lock(&rt->mu);
    if (rt->is_stopping || (rt->n_open == 0 && !rt->in_head)) {
        /* Nobody to tell; new sockets start after this offset. */
        if (ev->offset > rt->skipped_upto)
            rt->skipped_upto = ev->offset;
        pthread_mutex_unlock(&rt->mu);
        return;
    }
    pthread_mutex_unlock(&rt->mu);
    struct item *it = xcalloc(1, sizeof(*it));
    it->kind = IT_EVENT;
    it->offset = ev->offset;
    snprintf(it->user_id, sizeof(it->user_id), "%s", ev->user_id);
    it->msg = event_frame(ev->type, ev->offset, ev->data, ev->data_len);
    if (rt->o.revocation)
        it->revoke = rt->o.revocation(rt->o.auth_arg, ev, it->credential_id);
    pthread_mutex_lock(&rt->mu);
    if (rt->is_stopping || rt->in_bytes + it->msg->len > INBOX_MAX_BYTES) {
        if (!rt->is_stopping)
            rt->is_overflowed = true;
        if (ev->offset > rt->skipped_upto)
            rt->skipped_upto = ev->offset;
        signal_hub(rt);
        pthread_mutex_unlock(&rt->mu);
        free_item(it);
        return;
    }
    if (rt->in_tail)
        rt->in_tail->next = it;
    else
        rt->in_head = it;
    rt->in_tail = it;
    rt->in_bytes += it->msg->len;
    signal_hub(rt);
    pthread_mutex_unlock(&rt->mu);
}

int realtime_adopt(struct realtime *rt, int fd, const void *extra, size_t n_extra,
                   const struct realtime_identity *who, int64_t since)
{
    if (fd < 0)
        return LOCI_EINVAL;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        close(fd);
        return LOCI_EIO;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on socketpairs */
    /* Cap the kernel's send buffer like our queue (TCP would grow it to
     * megabytes): a stalled client then holds at most about twice
     * send_queue_bytes, and is found out before it holds more. */
    size_t cap =
        rt->o.send_queue_bytes < KERNEL_SNDBUF_MAX ? rt->o.send_queue_bytes : KERNEL_SNDBUF_MAX;
    int sndbuf = (int)cap;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    struct item *it = xcalloc(1, sizeof(*it) + n_extra);
    it->kind = IT_ADOPT;
    it->fd = fd;
    it->since = since < 0 ? -1 : since;
    if (who) {
        snprintf(it->user_id, sizeof(it->user_id), "%s", who->user_id);
        snprintf(it->credential_id, sizeof(it->credential_id), "%s", who->credential_id);
    }
    if (n_extra)
        memcpy(it->extra, extra, n_extra);
    it->n_extra = n_extra;
    pthread_mutex_lock(&rt->mu);
    if (rt->is_stopping || atomic_load(&rt->n_conns) >= rt->o.max_connections) {
        pthread_mutex_unlock(&rt->mu);
        close(fd);
        xfree(it);
        return LOCI_EUNAVAILABLE;
    }
    atomic_fetch_add(&rt->n_conns, 1);
    if (rt->in_tail)
        rt->in_tail->next = it;
    else
        rt->in_head = it;
    rt->in_tail = it;
    signal_hub(rt);
    pthread_mutex_unlock(&rt->mu);
    return LOCI_OK;
}

int realtime_connections(struct realtime *rt)
{
    return atomic_load(&rt->n_conns);
}

bool realtime_is_full(struct realtime *rt)
{
    return atomic_load(&rt->n_conns) >= rt->o.max_connections;
}

/* ------------------------------------------------------------------ */
/* the loop                                                             */

static void run_timers(struct realtime *rt)
{
    struct conn *c;
    while ((c = rt->phases[PH_AUTH].head) && c->deadline <= rt->now)
        close_with(c, 1008, "authentication timed out", R_AUTH_TIMEOUT);
    while ((c = rt->phases[PH_OPEN].head) && c->deadline <= rt->now) {
        if (c->is_pong_due) {
            close_with(c, 1008, "no pong within the ping interval", R_PING_TIMEOUT);
            continue;
        }
        if (!enqueue(c, rt->ping)) {
            conn_kill(c, R_SLOW);
            continue;
        }
        c->is_pong_due = true;
        set_phase(c, PH_OPEN, rt->now + rt->o.ping_interval_ms);
    }
    while ((c = rt->phases[PH_CLOSING].head) && c->deadline <= rt->now)
        conn_kill(c, R_CLIENT);
}

static int next_timeout(struct realtime *rt)
{
    int64_t t = 1000;
    for (int p = 0; p < N_PHASES; p++) {
        struct conn *c = rt->phases[p].head;
        if (c && c->deadline - rt->now < t)
            t = c->deadline - rt->now;
    }
    return t < 0 ? 0 : (int)t;
}

static void flush_dirty(struct realtime *rt)
{
    while (rt->dirty) {
        struct conn *c = rt->dirty;
        rt->dirty = c->dnext;
        c->dnext = NULL;
        c->is_dirty = false;
        if (!c->is_dead)
            flush(c);
    }
}

static void free_dead(struct realtime *rt)
{
    while (rt->dead) {
        struct conn *c = rt->dead;
        rt->dead = c->next;
        xfree(c);
    }
}

static void on_conn_event(struct conn *c, uint32_t events)
{
    if (c->is_dead)
        return;
    if (events & EPOLLOUT)
        flush(c);
    if (!c->is_dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
        on_readable(c);
}

static void shut_everything(struct realtime *rt)
{
    for (int p = 0; p < N_PHASES; p++) {
        while (rt->phases[p].head) {
            struct conn *c = rt->phases[p].head;
            if (c->phase != PH_CLOSING)
                close_with(c, 1001, "server shutting down", R_SHUTDOWN);
            flush(c); /* best effort: whatever the socket takes now */
            conn_kill(c, R_SHUTDOWN);
        }
    }
    drain_inbox(rt);
    rt->dirty = NULL;
    free_dead(rt);
}

static void *hub_main(void *arg)
{
    struct realtime *rt = arg;
    struct epoll_event evs[EPOLL_BATCH];
    int timeout = 0;
    for (;;) {
        int n = epoll_wait(rt->epfd, evs, EPOLL_BATCH, timeout);
        rt->now = clock_mono_ns() / 1000000;
        bool has_inbox = false;
        for (int i = 0; i < n; i++) {
            if (!evs[i].data.ptr)
                has_inbox = true;
            else
                on_conn_event(evs[i].data.ptr, evs[i].events);
        }
        if (has_inbox && !drain_inbox(rt))
            break;
        run_timers(rt);
        if (rt->replay)
            run_replay(rt);
        flush_dirty(rt);
        free_dead(rt);
        timeout = can_replay(rt) ? 0 : next_timeout(rt);
    }
    shut_everything(rt);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* life cycle                                                           */

struct realtime *realtime_new(const struct realtime_opts *o)
{
    struct realtime *rt = xcalloc(1, sizeof(*rt));
    rt->o = *o;
    if (rt->o.max_frame_bytes < 125)
        rt->o.max_frame_bytes = 125;
    if (rt->o.send_queue_bytes < 4096)
        rt->o.send_queue_bytes = 4096;
    if (rt->o.ping_interval_ms < 10)
        rt->o.ping_interval_ms = 10;
    if (rt->o.auth_timeout_ms < 10)
        rt->o.auth_timeout_ms = 10;
    if (rt->o.max_connections < 1)
        rt->o.max_connections = 1;
    rt->epfd = epoll_create1(EPOLL_CLOEXEC);
    rt->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (rt->epfd < 0 || rt->evfd < 0 || epoll_ctl(rt->epfd, EPOLL_CTL_ADD, rt->evfd, &ev) != 0) {
        if (rt->epfd >= 0)
            close(rt->epfd);
        if (rt->evfd >= 0)
            close(rt->evfd);
        xfree(rt);
        return NULL;
    }
    pthread_mutex_init(&rt->mu, NULL);
    atomic_init(&rt->n_conns, 0);
    rt->n_buckets = MIN_BUCKETS;
    rt->buckets = xcalloc(rt->n_buckets, sizeof(*rt->buckets));
    rt->ping = frame_new(OP_PING, NULL, 0);
    rt->m_open = metrics_series(
        metrics_gauge("loci_ws_connections", "WebSocket connections open and authenticated", NULL),
        NULL);
    rt->m_pending = metrics_series(metrics_gauge("loci_ws_connections_pending",
                                                 "WebSocket connections waiting for their "
                                                 "auth message",
                                                 NULL),
                                   NULL);
    struct metric_family *sent = metrics_counter(
        "loci_ws_messages_sent_total", "Event messages queued to WebSocket clients", "source");
    rt->m_live = metrics_series(sent, (const char *[]){"live"});
    rt->m_replayed = metrics_series(sent, (const char *[]){"replay"});
    rt->m_bytes = metrics_series(
        metrics_counter("loci_ws_bytes_sent_total", "Bytes written to WebSocket clients", NULL),
        NULL);
    struct metric_family *closed = metrics_counter(
        "loci_ws_closed_total",
        "WebSocket connections closed, by reason (slow_client: dropped for a full send queue)",
        "reason");
    for (int r = 1; r < N_REASONS; r++)
        rt->m_closed[r] = metrics_series(closed, (const char *[]){reason_names[r]});
    rt->m_closed[R_NONE] = rt->m_closed[R_ERROR];
    return rt;
}

/* Many sockets need many descriptors: lift the soft limit (up to the hard
 * one) when it is below what max_connections needs. */
static void raise_fd_limit(int max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)max_connections + 1024;
    if (rl.rlim_cur >= want)
        return;
    rlim_t before = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (rl.rlim_cur > before && setrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = before;
    if (rl.rlim_cur < want)
        log_line(NULL, LOG_WARN, "open-files limit below ws_max_connections",
                 (struct log_field[]){LF_INT("limit", (int64_t)rl.rlim_cur),
                                      LF_INT("ws_max_connections", max_connections)},
                 2);
}

int realtime_start(struct realtime *rt)
{
    raise_fd_limit(rt->o.max_connections);
    rt->now = clock_mono_ns() / 1000000;
    if (pthread_create(&rt->thread, NULL, hub_main, rt) != 0)
        return LOCI_EIO;
    rt->is_started = true;
    return LOCI_OK;
}

void realtime_stop(struct realtime *rt)
{
    if (!rt)
        return;
    pthread_mutex_lock(&rt->mu);
    bool was = rt->is_stopping;
    rt->is_stopping = true;
    rt->is_signalled = false;
    signal_hub(rt);
    pthread_mutex_unlock(&rt->mu);
    if (!was && rt->is_started)
        pthread_join(rt->thread, NULL);
}

void realtime_free(struct realtime *rt)
{
    if (!rt)
        return;
    realtime_stop(rt);
    if (!rt->is_started)
        drain_inbox(rt); /* never ran: close sockets handed over anyway */
    msg_unref(rt->ping);
    xfree(rt->buckets);
    close(rt->epfd);
    close(rt->evfd);
    pthread_mutex_destroy(&rt->mu);
    xfree(rt);
}
