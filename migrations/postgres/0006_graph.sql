-- Conversations, messages and each learner's knowledge graph.
-- Every row carries user_id and every query filters by it.
CREATE TABLE conversations (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX conversations_user ON conversations (user_id, updated_at DESC, id DESC);

-- role 'user': a question (status pending -> done | failed);
-- role 'assistant': its answer (reply_to = the question's id).
CREATE TABLE messages (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id   TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role              TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content           TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'done' CHECK (status IN ('pending', 'done', 'failed')),
    error             TEXT,
    reply_to          TEXT,
    focus_node_id     TEXT,
    node_id           TEXT,
    citations         TEXT NOT NULL DEFAULT '[]',
    terms             TEXT NOT NULL DEFAULT '[]',
    provider          TEXT,
    model             TEXT,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at, id);
CREATE INDEX messages_user ON messages (user_id, created_at);

-- One node per user per normalised key (NFKC, case-folded, stemmed,
-- whitespace collapsed: text_term_key). is_root: started by a question
-- asked without a focus node.
CREATE TABLE nodes (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    term              TEXT NOT NULL,
    key               TEXT NOT NULL,
    summary           TEXT NOT NULL DEFAULT '',
    familiarity       DOUBLE PRECISION NOT NULL DEFAULT 0,
    cluster           TEXT,
    is_root           INTEGER NOT NULL DEFAULT 0,
    origin_message_id TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (user_id, key)
);
CREATE INDEX nodes_user_updated ON nodes (user_id, updated_at DESC, id DESC);
CREATE INDEX nodes_user_root ON nodes (user_id, is_root, created_at DESC, id DESC);

-- Other spellings of a node's term, and keys of nodes merged into it, so
-- a later mention finds the node.
CREATE TABLE node_aliases (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    alias   TEXT NOT NULL,
    key     TEXT NOT NULL,
    PRIMARY KEY (user_id, alias)
);
CREATE INDEX node_aliases_key ON node_aliases (user_id, key);
CREATE INDEX node_aliases_node ON node_aliases (node_id);

-- Undirected co-occurrence ('related', src < dst) and directed typed
-- relations (is_a, part_of, causes, uses, example_of, opposite_of).
CREATE TABLE edges (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    src        TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    dst        TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    weight     DOUBLE PRECISION NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, src, dst, type),
    CHECK (src <> dst)
);
CREATE INDEX edges_dst ON edges (user_id, dst);
CREATE INDEX edges_src ON edges (src);
CREATE INDEX edges_dst_node ON edges (dst);

-- A node's embedding (term + summary) from the AI gateway; content_hash
-- says which text it was computed from, embedder which model.
CREATE TABLE node_embeddings (
    node_id      TEXT PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    embedder     TEXT NOT NULL,
    dims         BIGINT NOT NULL,
    vec          BYTEA NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX node_embeddings_user ON node_embeddings (user_id);
