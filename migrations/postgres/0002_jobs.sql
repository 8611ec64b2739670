-- Durable jobs. A job is leased by one worker at a time (lease_owner,
-- lease_expires_at); an expired lease returns it to the queue. status:
-- queued -> running -> completed | queued (retry, run_at in the future) |
-- dead (attempts exhausted) | cancelled.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    type             TEXT NOT NULL,
    payload          TEXT NOT NULL DEFAULT '{}' ,
    user_id          TEXT,
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'completed', 'dead', 'cancelled')),
    priority         INTEGER NOT NULL DEFAULT 0,
    run_at           BIGINT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 5,
    idempotency_key  TEXT,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    progress         DOUBLE PRECISION NOT NULL DEFAULT 0,
    progress_message TEXT,
    result           TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    UNIQUE (type, idempotency_key)
);
CREATE INDEX jobs_ready ON jobs (status, run_at, priority);
CREATE INDEX jobs_lease ON jobs (status, lease_expires_at);
CREATE INDEX jobs_user ON jobs (user_id, created_at);
CREATE INDEX jobs_finished ON jobs (status, finished_at);

-- The scheduler's memory: the last tick each schedule enqueued, so that a
-- tick missed during downtime runs once at start, not once per missed tick.
CREATE TABLE schedules (
    name         TEXT PRIMARY KEY,
    last_tick_at BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
