-- Accounts and access. Secrets are never stored: passwords as argon2id
-- strings, refresh tokens, API key secrets and mail tokens as BLAKE2b
-- hashes. token_version is bumped by logout-all, password change, disabling
-- and role changes; access tokens carry it and stop working at once.
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL,
    email_norm        TEXT NOT NULL UNIQUE,
    password_hash     TEXT NOT NULL,
    role              TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    display_name      TEXT NOT NULL DEFAULT '',
    email_verified_at INTEGER,
    disabled_at       INTEGER,
    token_version     INTEGER NOT NULL DEFAULT 1,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX users_role ON users (role);

-- One row per refresh token; a family is one login session. Rotation marks
-- the old row rotated_at and inserts the next; presenting a rotated token
-- again revokes the whole family.
CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY,
    family_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    family_created_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,  -- absolute end of the family
    idle_expires_at INTEGER NOT NULL,
    rotated_at   INTEGER,
    revoked_at   INTEGER,
    user_agent   TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX refresh_family ON refresh_tokens (family_id);
CREATE INDEX refresh_user ON refresh_tokens (user_id, revoked_at);
CREATE INDEX refresh_expiry ON refresh_tokens (expires_at);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL,
    scopes       TEXT NOT NULL,      -- "read" or "read,write"
    expires_at   INTEGER,
    last_used_at INTEGER,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- Single-use tokens sent by mail (verify, reset) or printed at start (setup).
CREATE TABLE mail_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'setup')),
    token_hash TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX mail_tokens_expiry ON mail_tokens (expires_at);
CREATE INDEX mail_tokens_user ON mail_tokens (user_id, purpose);
