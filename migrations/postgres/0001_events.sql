-- The event store: every state change appends one row in the same
-- transaction as the change. Append-only; "offset" orders events and is what
-- clients resume from. Appends take a transaction-level advisory lock before
-- drawing the offset (see src/events/events.c), so offsets become visible in
-- commit order even with many concurrent writers.
CREATE TABLE events (
    "offset"   BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    user_id    TEXT,
    type       TEXT NOT NULL,
    data       JSONB NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_user_offset ON events (user_id, "offset");
CREATE INDEX events_type_offset ON events (type, "offset");

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
