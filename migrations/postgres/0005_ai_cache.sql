-- Model replies, shared by every instance. key is a BLAKE2b hash of the
-- provider, model, cache scope (the user), rendered messages and parameters;
-- reply is the model's text. Expired rows are ignored and purged hourly.
CREATE TABLE ai_cache (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    reply TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ai_cache_expires ON ai_cache (expires_at);
