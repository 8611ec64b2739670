/*
 * events.h - the event store: an append-only log of every state change.
 *
 * Callers append inside the transaction that makes the change, so the change
 * and its event commit or vanish together. Offsets strictly increase in
 * commit order and are never reused, on both backends, so a reader that
 * remembers the last offset it saw misses nothing and sees nothing twice.
 *
 * Not for: delivery to sockets (services/bus does that from this log).
 * Threads: any; a struct db_conn is used by its owning thread.
 */
#ifndef LOCI_EVENTS_EVENTS_H
#define LOCI_EVENTS_EVENTS_H

#include "store/db.h"

#include <jansson.h>
#include <stdint.h>

/* A row as read back; every pointer is borrowed and valid only during the
 * callback. */
struct event_view {
    int64_t offset;
    const char *id;
    const char *user_id; /* NULL for system events */
    const char *type;
    const char *data; /* JSON text */
    size_t data_len;
    int64_t created_at; /* UTC ms */
};

/* Append an event inside the caller's open transaction on c. user_id may be
 * NULL (a system event); type is a dotted name ("user.signed_up"), 1-64
 * characters of [a-z0-9._]; data must be a JSON object (NULL = {}). Writes
 * the new offset to *out_offset when not NULL. */
int events_append(struct db_conn *c, const char *user_id, const char *type, const json_t *data,
                  int64_t *out_offset);

/* Call fn for each of user_id's events with offset > after, oldest first, at
 * most limit (1..1000). fn returning non-zero stops the walk and is
 * returned. *out_last receives the offset of the last event passed to fn (or
 * `after` when none). */
typedef int (*events_fn)(const struct event_view *ev, void *arg);
int events_read(struct db_conn *c, const char *user_id, int64_t after, int limit, events_fn fn,
                void *arg, int64_t *out_last);

/* Every user's events (and system events) after `after`, oldest first, at
 * most limit (1..1000): for the bus, which fans them out. Same contract as
 * events_read otherwise. */
int events_read_all(struct db_conn *c, int64_t after, int limit, events_fn fn, void *arg,
                    int64_t *out_last);

/* The highest committed offset (0 when empty). */
int events_head(struct db_conn *c, int64_t *out);

#endif
