-- Clusters of each learner's graph (the weekly compress_graph job) and
-- quizzes built from the learner's own material. Every row carries user_id
-- and every query filters by it.

-- One row per community found by the last clustering run: nodes.cluster
-- names it. label: its top terms by weighted degree; member_count and
-- mean_familiarity as of that run (the collapsed graph recounts live).
CREATE TABLE clusters (
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id               TEXT NOT NULL,
    label            TEXT NOT NULL,
    top_terms        TEXT NOT NULL DEFAULT '[]',
    member_count     INTEGER NOT NULL,
    mean_familiarity REAL NOT NULL DEFAULT 0,
    algorithm        TEXT NOT NULL,
    modularity       REAL NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX nodes_user_cluster ON nodes (user_id, cluster);

-- status: building -> ready | failed (the quiz.build job).
CREATE TABLE quizzes (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status      TEXT NOT NULL CHECK (status IN ('building', 'ready', 'failed')),
    scope       TEXT NOT NULL DEFAULT '{}',
    kinds       TEXT NOT NULL DEFAULT '[]',
    n           INTEGER NOT NULL,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX quizzes_user ON quizzes (user_id, created_at DESC, id DESC);

-- A question keeps its source passage; answer_key passed the check
-- against it before the question was stored. choices: a JSON array (mc).
CREATE TABLE quiz_questions (
    id             TEXT PRIMARY KEY,
    quiz_id        TEXT NOT NULL REFERENCES quizzes (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('cloze', 'mc', 'definition')),
    node_id        TEXT,
    term           TEXT NOT NULL,
    prompt         TEXT NOT NULL,
    choices        TEXT,
    answer_key     TEXT NOT NULL,
    source_passage TEXT NOT NULL,
    source_ref     TEXT NOT NULL DEFAULT '{}',
    answer         TEXT,
    is_correct     INTEGER,
    rating         INTEGER,
    duration_ms    INTEGER,
    answered_at    INTEGER,
    created_at     INTEGER NOT NULL,
    UNIQUE (quiz_id, position)
);
CREATE INDEX quiz_questions_user ON quiz_questions (user_id, answered_at);
