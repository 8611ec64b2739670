-- Learners' documents: the file (in the blob store, by content hash), its
-- processing ledger, its chunks (with page and heading for citations), the
-- chunks' embeddings and the full-text index (a generated tsvector + GIN).
CREATE TABLE documents (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename     TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'parsing', 'indexing', 'done', 'failed', 'cancelled')),
    progress     DOUBLE PRECISION NOT NULL DEFAULT 0,
    error_code   TEXT,
    error        TEXT,
    title        TEXT,
    summary      TEXT,
    pages        BIGINT,
    chunk_count  BIGINT NOT NULL DEFAULT 0,
    job_id       TEXT,
    root_node_id TEXT,
    source       TEXT NOT NULL DEFAULT 'upload' CHECK (source IN ('upload', 'import')),
    source_path  TEXT,
    parse_ms     BIGINT,
    index_ms     BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (user_id, sha256)
);
CREATE INDEX documents_user ON documents (user_id, created_at DESC, id DESC);
CREATE INDEX documents_source ON documents (user_id, source, source_path);

CREATE TABLE chunks (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ord         BIGINT NOT NULL,
    text        TEXT NOT NULL,
    page        BIGINT,
    heading     TEXT,
    created_at  BIGINT NOT NULL,
    tsv         tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    UNIQUE (document_id, ord)
);
CREATE INDEX chunks_user ON chunks (user_id);
CREATE INDEX chunks_tsv ON chunks USING GIN (tsv);

CREATE TABLE chunk_vectors (
    chunk_id    TEXT PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    embedder    TEXT NOT NULL,
    dims        BIGINT NOT NULL,
    vec         BYTEA NOT NULL
);
CREATE INDEX chunk_vectors_user ON chunk_vectors (user_id, embedder);
