-- Spaced repetition (FSRS): one card per studied node, a log of every
-- review, and each learner's learning settings. Every row carries user_id
-- and every query filters by it. Times are UTC milliseconds.

-- state: 0 new, 1 learning, 2 review, 3 relearning (ts-fsrs's State).
-- last_review 0: never reviewed. Deleting a node deletes its card.
CREATE TABLE cards (
    node_id        TEXT PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state          INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 3),
    stability      REAL NOT NULL DEFAULT 0,
    difficulty     REAL NOT NULL DEFAULT 0,
    due            INTEGER NOT NULL,
    last_review    INTEGER NOT NULL DEFAULT 0,
    reps           INTEGER NOT NULL DEFAULT 0,
    lapses         INTEGER NOT NULL DEFAULT 0,
    scheduled_days INTEGER NOT NULL DEFAULT 0,
    elapsed_days   INTEGER NOT NULL DEFAULT 0,
    learning_steps INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX cards_user_due ON cards (user_id, due, node_id);
-- the decay job walks every card in (user_id, node_id) order
CREATE INDEX cards_user_node ON cards (user_id, node_id);

-- Append-only. source: 'review' (POST /reviews), 'self' (a manual
-- familiarity), 'quiz' (a graded quiz answer).
CREATE TABLE reviews (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    node_id           TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    rating            INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 4),
    source            TEXT NOT NULL DEFAULT 'review',
    duration_ms       INTEGER,
    reviewed_at       INTEGER NOT NULL,
    elapsed_days      INTEGER NOT NULL,
    scheduled_days    INTEGER NOT NULL,
    state_before      INTEGER NOT NULL,
    stability_before  REAL NOT NULL,
    difficulty_before REAL NOT NULL,
    due_before        INTEGER NOT NULL,
    state_after       INTEGER NOT NULL,
    stability_after   REAL NOT NULL,
    difficulty_after  REAL NOT NULL,
    due_after         INTEGER NOT NULL
);
CREATE INDEX reviews_user_node ON reviews (user_id, node_id, reviewed_at, id);
CREATE INDEX reviews_user_time ON reviews (user_id, reviewed_at);

-- Defaults apply while a user has no row. threshold: the review digest
-- mails when nodes' retrievability falls below it.
CREATE TABLE learning_settings (
    user_id           TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    desired_retention REAL NOT NULL DEFAULT 0.9
                      CHECK (desired_retention BETWEEN 0.7 AND 0.99),
    new_per_day       INTEGER NOT NULL DEFAULT 20 CHECK (new_per_day BETWEEN 0 AND 1000),
    review_mail       INTEGER NOT NULL DEFAULT 0,
    threshold         REAL NOT NULL DEFAULT 0.8 CHECK (threshold BETWEEN 0 AND 1),
    last_digest_at    INTEGER NOT NULL DEFAULT 0,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX learning_settings_mail ON learning_settings (review_mail, user_id);
