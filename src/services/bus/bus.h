/*
 * bus.h - delivers every committed event, in offset order, to subscribers in
 * this process (the WebSocket hub, waiting HTTP requests).
 *
 * A tailer thread reads the event store after the last offset it delivered.
 * The store hands out offsets in commit order, so each event is delivered
 * exactly once and in order, with no gaps, on every instance that shares the
 * database, without a broker. Writers in this process call bus_wake() after
 * they commit so delivery is immediate; otherwise the tailer looks every
 * poll_ms (events committed by other instances).
 *
 * Threads: subscribers are called on the tailer thread, one event at a time;
 * they must not block (queue the work and return). bus_wake() is safe from
 * any thread.
 */
#ifndef LOCI_SERVICES_BUS_H
#define LOCI_SERVICES_BUS_H

#include "events/events.h"
#include "store/db.h"

#include <stdint.h>

struct bus;

/* ev and everything it points to are valid only during the call. */
typedef void (*bus_fn)(const struct event_view *ev, void *arg);

/* A bus on db looking for new events every poll_ms (1..10000). */
struct bus *bus_new(struct db *db, int poll_ms);
/* Add a subscriber; only before bus_start(). At most 8. */
int bus_subscribe(struct bus *b, bus_fn fn, void *arg);
/* Start at the current head: events committed before this are not
 * delivered (readers replay them from the event store). */
int bus_start(struct bus *b);
/* Look for new events now. Any thread; cheap. */
void bus_wake(struct bus *b);
/* The offset of the last event delivered to every subscriber. Any thread. */
int64_t bus_offset(struct bus *b);
/* Stop the tailer (delivering nothing more) and free the bus. NULL-safe. */
void bus_free(struct bus *b);

#endif
