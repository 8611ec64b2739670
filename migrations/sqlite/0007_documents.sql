-- Learners' documents: the file (in the blob store, by content hash), its
-- processing ledger, its chunks (with page and heading for citations), the
-- chunks' embeddings and the full-text index.
CREATE TABLE documents (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename     TEXT NOT NULL,               -- sanitised display name
    media_type   TEXT NOT NULL,               -- decided from content (libmagic)
    size_bytes   INTEGER NOT NULL,
    sha256       TEXT NOT NULL,               -- hex; also the blob key
    status       TEXT NOT NULL CHECK (status IN ('queued', 'parsing', 'indexing', 'done', 'failed', 'cancelled')),
    progress     REAL NOT NULL DEFAULT 0,
    error_code   TEXT,                        -- parse_timeout, parse_failed, encrypted_pdf, ...
    error        TEXT,
    title        TEXT,
    summary      TEXT,
    pages        INTEGER,
    chunk_count  INTEGER NOT NULL DEFAULT 0,
    job_id       TEXT,
    root_node_id TEXT,
    source       TEXT NOT NULL DEFAULT 'upload' CHECK (source IN ('upload', 'import')),
    source_path  TEXT,                        -- import: path relative to the imported folder
    parse_ms     INTEGER,
    index_ms     INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (user_id, sha256)
);
CREATE INDEX documents_user ON documents (user_id, created_at DESC, id DESC);
CREATE INDEX documents_source ON documents (user_id, source, source_path);

CREATE TABLE chunks (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ord         INTEGER NOT NULL,             -- position in the document, from 0
    text        TEXT NOT NULL,
    page        INTEGER,                      -- 1-based, PDFs
    heading     TEXT,                         -- nearest heading above, Markdown/HTML
    created_at  INTEGER NOT NULL,
    UNIQUE (document_id, ord)
);
CREATE INDEX chunks_user ON chunks (user_id);

CREATE TABLE chunk_vectors (
    chunk_id    TEXT PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    embedder    TEXT NOT NULL,
    dims        INTEGER NOT NULL,
    vec         BLOB NOT NULL                 -- float32 little-endian, L2-normalised
);
CREATE INDEX chunk_vectors_user ON chunk_vectors (user_id, embedder);

-- Full text: an FTS5 table kept in step with chunks by the search module
-- (rowid-less external content is not possible with text ids).
CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    text,
    chunk_id UNINDEXED,
    user_id UNINDEXED,
    document_id UNINDEXED,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
