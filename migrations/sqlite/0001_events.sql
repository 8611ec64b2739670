-- The event store: every state change appends one row in the same
-- transaction as the change. Append-only; "offset" orders events and is what
-- clients resume from. AUTOINCREMENT guarantees offsets are never reused,
-- and SQLite's single writer makes offset order equal commit order.
CREATE TABLE events (
    "offset"   INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    user_id    TEXT,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL CHECK (json_valid(data)),
    created_at INTEGER NOT NULL
);
CREATE INDEX events_user_offset ON events (user_id, "offset");
CREATE INDEX events_type_offset ON events (type, "offset");

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
