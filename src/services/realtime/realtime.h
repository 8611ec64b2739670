/*
 * realtime.h - the WebSocket hub: one thread owns every upgraded socket
 * (epoll), authenticates it, pushes each user's committed events to that
 * user's sockets as {"type","offset","data"}, replays missed events on
 * resume, pings, and drops clients that cannot keep up.
 *
 * Events arrive from the bus (realtime_on_event is a bus_fn): the bus thread
 * frames each event once and queues it to the hub thread (eventfd wake-up);
 * the hub thread queues the same frame on every socket of the event's user.
 * A socket's send queue is bounded: a client that lets it fill up is
 * disconnected, so no client can slow the server or the other clients.
 *
 * Resume: a socket that asks for events after an offset (`since`) first gets
 * them from the event store, page by page as its queue drains, then live
 * ones; each socket remembers the last offset it was sent and skips live
 * events at or below it, so nothing is missed or sent twice.
 *
 * Memory: an idle socket costs one small struct. Incoming bytes go through a
 * stack buffer; a partial frame is kept in a buffer allocated for it; the
 * wslay context that parses frames lives only while a message is being
 * received (wslay's own context is ~9 KiB, more than an idle socket may
 * cost). Outgoing frames are built here (unmasked server frames are a 2-10
 * byte header) so one frame can be shared by every recipient.
 *
 * Not for: HTTP (the api layer checks the upgrade request, Origin and
 * cookies, sends the 101 and hands the socket over) or token rules (the api
 * layer supplies the authenticate callback).
 *
 * Threads: realtime_new/start/stop/free from the main thread;
 * realtime_adopt and realtime_connections from any thread; realtime_on_event
 * from the bus thread; callbacks run on the hub thread.
 */
#ifndef LOCI_SERVICES_REALTIME_H
#define LOCI_SERVICES_REALTIME_H

#include "core/ids.h"
#include "events/events.h"
#include "store/db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct realtime;

/* Who a socket is signed in as. */
struct realtime_identity {
    char user_id[UUID_STR_LEN];
    char credential_id[UUID_STR_LEN]; /* its session (refresh family) or API key; "" if none */
};

/* Turn a bearer credential (access token or API key) from an auth message
 * into an identity. Runs on the hub thread and should be quick (one
 * database lookup). Returns LOCI_OK with out filled, LOCI_EAUTH when the
 * token is not valid (the socket is closed with 1008), or another error
 * when it cannot be checked now (closed with 1011). */
typedef int (*realtime_auth_fn)(void *arg, const char *token, struct realtime_identity *out);

/* What an event takes away: nothing, one credential (out names the session
 * or API key), or every credential of the event's user (a password change,
 * logout everywhere, disabling). Sockets signed in with what was taken are
 * sent the event, then closed with 1008. Runs on the bus thread; quick. */
enum realtime_revoke { REALTIME_KEEP, REALTIME_REVOKE_CREDENTIAL, REALTIME_REVOKE_USER };
typedef enum realtime_revoke (*realtime_revoke_fn)(void *arg, const struct event_view *ev,
                                                   char out_credential[UUID_STR_LEN]);

struct realtime_opts {
    struct db *db; /* the event store, for replay */
    realtime_auth_fn authenticate;
    realtime_revoke_fn revocation; /* NULL: sockets outlive revoked credentials */
    void *auth_arg;                /* for both */
    int ping_interval_ms;          /* a ping this often; no pong by the next one: closed */
    int auth_timeout_ms;           /* an unauthenticated socket is closed after this (1008) */
    size_t max_frame_bytes;        /* a larger frame or message closes the socket (1009) */
    size_t send_queue_bytes;       /* a socket with more than this waiting is dropped */
    int max_connections;           /* sockets at once; realtime_adopt refuses more */
};

/* A hub (not running yet). Returns NULL when the event fds cannot be made. */
struct realtime *realtime_new(const struct realtime_opts *o);
/* Start the hub thread; raises the soft open-files limit towards
 * max_connections when it is lower. */
int realtime_start(struct realtime *rt);
/* Close every socket (1001, "server shutting down") and stop the thread.
 * Events and sockets handed over afterwards are dropped. Idempotent. */
void realtime_stop(struct realtime *rt);
/* Free the hub after realtime_stop() and after the bus that calls
 * realtime_on_event is gone. NULL-safe. */
void realtime_free(struct realtime *rt);

/* The bus subscriber (a bus_fn; arg is the hub). Never blocks. */
void realtime_on_event(const struct event_view *ev, void *arg);

/* Take over an upgraded, non-blocking socket. extra holds bytes the client
 * sent after its HTTP request (may be NULL/0). who, when not NULL, says the
 * socket is already authenticated (the browser's session cookie);
 * otherwise its first message must be {"type":"auth","token":...}. since
 * >= 0 asks for the user's events after that offset first; -1 for none (an
 * auth message may still carry "since"). The hub owns fd from here on, also
 * on error (it is closed). LOCI_EUNAVAILABLE when stopped or full. */
int realtime_adopt(struct realtime *rt, int fd, const void *extra, size_t n_extra,
                   const struct realtime_identity *who, int64_t since);
/* Sockets currently held (authenticating, open or closing). Any thread. */
int realtime_connections(struct realtime *rt);
/* True when another socket would exceed max_connections. Any thread. */
bool realtime_is_full(struct realtime *rt);

/* ---- WebSocket wire helpers (RFC 6455), exposed for the api and tests ---- */

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)),
 * 28 characters + NUL into out. LOCI_EINVAL when key is not the base64 of
 * 16 bytes. */
int realtime_ws_accept(const char *key, char out[29]);

/* Write the header of an unmasked, final server frame with opcode and a
 * payload of n bytes into out; returns its length (2, 4 or 10). */
size_t realtime_ws_header(uint8_t out[10], unsigned opcode, uint64_t n);

struct realtime_frame {
    bool is_fin;
    unsigned opcode;
    bool is_masked;
    size_t header_len;    /* 2-14 bytes */
    uint64_t payload_len; /* as declared by the header */
};

/* Read the frame header at p (n bytes available). Returns 1 with out
 * filled, 0 when more bytes are needed to know, LOCI_ETOOBIG when the
 * declared length does not fit in 63 bits. */
int realtime_ws_frame(const uint8_t *p, size_t n, struct realtime_frame *out);

#endif
