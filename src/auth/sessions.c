/*
 * sessions.c - refresh tokens (RFC 9700 rotation with reuse detection) and
 * single-use mail tokens. Raw tokens are returned once; rows hold hashes.
 */
#include "auth/auth.h"

#include "core/clock.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

/* User agents are shown back to the user: keep printable ASCII only (a
 * header may carry any bytes, and PostgreSQL refuses invalid UTF-8). */
static void clean_user_agent(const char *ua, char *out, size_t n)
{
    size_t o = 0;
    for (const char *p = ua ? ua : ""; *p && o + 1 < n; p++)
        out[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    out[o] = '\0';
}

static int insert_token(struct db_conn *c, const char *family, const char *user_id,
                        int64_t family_created, int64_t expires_at, int64_t idle_ms, const char *ua,
                        const char *ip, int64_t now, char out_token[AUTH_TOKEN_LEN])
{
    char id[UUID_STR_LEN], hash[65];
    ids_uuid7(id);
    auth_random_token(out_token);
    auth_hash_secret(out_token, strlen(out_token), hash);
    int64_t idle = now + idle_ms;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, "
                        "created_at, family_created_at, expires_at, idle_expires_at, user_agent, "
                        "ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, family, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    db_bind_text(st, 4, hash, (size_t)-1);
    db_bind_int64(st, 5, now);
    db_bind_int64(st, 6, family_created);
    db_bind_int64(st, 7, expires_at);
    db_bind_int64(st, 8, idle < expires_at ? idle : expires_at);
    char clean_ua[201];
    clean_user_agent(ua, clean_ua, sizeof(clean_ua));
    db_bind_text(st, 9, clean_ua, (size_t)-1);
    db_bind_text(st, 10, ip ? ip : "", (size_t)-1);
    return db_run(st, NULL);
}

int auth_session_create(struct db_conn *c, const char *user_id, const char *user_agent,
                        const char *ip, const struct auth_session_opts *o, int64_t now,
                        char out_token[AUTH_TOKEN_LEN], char out_family[UUID_STR_LEN])
{
    ids_uuid7(out_family);
    return insert_token(c, out_family, user_id, now, now + o->absolute_ms, o->idle_ms, user_agent,
                        ip, now, out_token);
}

static int revoke_family(struct db_conn *c, const char *family, int64_t now)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE refresh_tokens SET revoked_at = ? "
                        "WHERE family_id = ? AND revoked_at IS NULL",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, now);
    db_bind_text(st, 2, family, (size_t)-1);
    return db_run(st, NULL);
}

int auth_session_rotate(struct db_conn *c, const char *raw, const struct auth_session_opts *o,
                        int64_t now, enum auth_rotate_result *out_result,
                        char out_token[AUTH_TOKEN_LEN], char out_user[UUID_STR_LEN],
                        char out_family[UUID_STR_LEN])
{
    *out_result = AUTH_INVALID;
    out_user[0] = out_family[0] = '\0';
    if (!raw || strlen(raw) != AUTH_TOKEN_LEN - 1)
        return LOCI_OK;
    char hash[65];
    auth_hash_secret(raw, strlen(raw), hash);
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT id, family_id, user_id, family_created_at, expires_at, "
                        "idle_expires_at, rotated_at, revoked_at, user_agent, ip "
                        "FROM refresh_tokens WHERE token_hash = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, hash, (size_t)-1);
    rc = db_step(st);
    if (rc != LOCI_ROW) {
        db_stmt_done(st);
        return rc < 0 ? rc : LOCI_OK;
    }
    char id[UUID_STR_LEN], ua[256], ip[64];
    snprintf(id, sizeof(id), "%s", db_col_text(st, 0, NULL));
    snprintf(out_family, UUID_STR_LEN, "%s", db_col_text(st, 1, NULL));
    snprintf(out_user, UUID_STR_LEN, "%s", db_col_text(st, 2, NULL));
    int64_t family_created = db_col_int64(st, 3);
    int64_t expires_at = db_col_int64(st, 4);
    int64_t idle_expires = db_col_int64(st, 5);
    bool rotated = !db_col_is_null(st, 6);
    bool revoked = !db_col_is_null(st, 7);
    snprintf(ua, sizeof(ua), "%s", db_col_text(st, 8, NULL));
    snprintf(ip, sizeof(ip), "%s", db_col_text(st, 9, NULL));
    db_stmt_done(st);
    if (rotated) {
        /* A token that was already exchanged is being replayed: someone holds
         * a copy. End the whole family, the legitimate holder included. */
        *out_result = AUTH_REUSED;
        return revoke_family(c, out_family, now);
    }
    if (revoked || now >= expires_at || now >= idle_expires) {
        out_user[0] = out_family[0] = '\0';
        return LOCI_OK;
    }
    /* Mark this one rotated only if nobody else did in the meantime. */
    rc = db_prepare(c,
                    "UPDATE refresh_tokens SET rotated_at = ? "
                    "WHERE id = ? AND rotated_at IS NULL AND revoked_at IS NULL",
                    &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, now);
    db_bind_text(st, 2, id, (size_t)-1);
    rc = db_step(st);
    int64_t n = db_changes(st);
    db_stmt_done(st);
    if (rc)
        return rc;
    if (n == 0) {
        *out_result = AUTH_REUSED;
        return revoke_family(c, out_family, now);
    }
    rc = insert_token(c, out_family, out_user, family_created, expires_at, o->idle_ms, ua, ip, now,
                      out_token);
    if (rc == LOCI_OK)
        *out_result = AUTH_ROTATED;
    return rc;
}

int auth_session_find(struct db_conn *c, const char *raw, char out_user[UUID_STR_LEN],
                      char out_family[UUID_STR_LEN])
{
    if (!raw || strlen(raw) != AUTH_TOKEN_LEN - 1)
        return LOCI_ENOTFOUND;
    char hash[65];
    auth_hash_secret(raw, strlen(raw), hash);
    struct db_stmt *st = NULL;
    int rc =
        db_prepare(c, "SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, hash, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        snprintf(out_user, UUID_STR_LEN, "%s", db_col_text(st, 0, NULL));
        snprintf(out_family, UUID_STR_LEN, "%s", db_col_text(st, 1, NULL));
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_ENOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

int auth_session_revoke(struct db_conn *c, const char *user_id, const char *family_id)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE refresh_tokens SET revoked_at = ? "
                        "WHERE family_id = ? AND user_id = ? AND revoked_at IS NULL",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, clock_now_ms());
    db_bind_text(st, 2, family_id, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    return db_run_one(st);
}

int auth_session_revoke_all(struct db_conn *c, const char *user_id, const char *keep,
                            int64_t *out_n)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? "
                        "AND revoked_at IS NULL AND (CAST(? AS TEXT) IS NULL OR family_id <> ?)",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, clock_now_ms());
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_text(st, 3, keep, (size_t)-1);
    db_bind_text(st, 4, keep, (size_t)-1);
    rc = db_step(st);
    if (out_n)
        *out_n = db_changes(st);
    db_stmt_done(st);
    return rc;
}

int auth_session_alive(struct db_conn *c, const char *family_id, int64_t now, bool *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = ? "
                        "AND revoked_at IS NULL AND expires_at > ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, family_id, (size_t)-1);
    db_bind_int64(st, 2, now);
    rc = db_step(st);
    *out = rc == LOCI_ROW && db_col_int64(st, 0) > 0;
    db_stmt_done(st);
    return rc == LOCI_ROW ? LOCI_OK : rc ? rc : LOCI_EIO;
}

int auth_sessions_list(struct db_conn *c, const char *user_id, const char *current, int64_t now,
                       json_t **out)
{
    *out = NULL;
    /* One line per live family: its newest token says when it was last used. */
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT family_id, MIN(family_created_at), MAX(created_at), "
                        "MIN(expires_at), MAX(user_agent), MAX(ip) FROM refresh_tokens "
                        "WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? "
                        "AND rotated_at IS NULL AND idle_expires_at > ? "
                        "GROUP BY family_id ORDER BY MAX(created_at) DESC LIMIT 200",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_int64(st, 2, now);
    db_bind_int64(st, 3, now);
    json_t *arr = json_array();
    while ((rc = db_step(st)) == LOCI_ROW) {
        const char *fid = db_col_text(st, 0, NULL);
        json_t *o = json_pack(
            "{s:s, s:I, s:I, s:I, s:s, s:s, s:b}", "id", fid, "created_at",
            (json_int_t)db_col_int64(st, 1), "last_used_at", (json_int_t)db_col_int64(st, 2),
            "expires_at", (json_int_t)db_col_int64(st, 3), "user_agent", db_col_text(st, 4, NULL),
            "ip", db_col_text(st, 5, NULL), "current", current && strcmp(current, fid) == 0);
        json_array_append_new(arr, o);
    }
    db_stmt_done(st);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return LOCI_OK;
}

/* ---- single-use tokens ---- */

int auth_token_create(struct db_conn *c, const char *user_id, const char *purpose, int64_t ttl_ms,
                      int64_t now, char out_raw[AUTH_TOKEN_LEN])
{
    if (strcmp(purpose, "verify") != 0 && strcmp(purpose, "reset") != 0 &&
        strcmp(purpose, "setup") != 0)
        return LOCI_EINVAL;
    struct db_stmt *st = NULL;
    /* Only the newest token of a kind works. */
    int rc = db_prepare(c,
                        "UPDATE mail_tokens SET used_at = ? WHERE purpose = ? AND used_at IS NULL "
                        "AND ((CAST(? AS TEXT) IS NULL AND user_id IS NULL) OR user_id = ?)",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, now);
    db_bind_text(st, 2, purpose, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    db_bind_text(st, 4, user_id, (size_t)-1);
    rc = db_step(st);
    db_stmt_done(st);
    if (rc)
        return rc;
    char id[UUID_STR_LEN], hash[65];
    ids_uuid7(id);
    auth_random_token(out_raw);
    auth_hash_secret(out_raw, strlen(out_raw), hash);
    rc = db_prepare(c,
                    "INSERT INTO mail_tokens (id, user_id, purpose, token_hash, expires_at, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_text(st, 3, purpose, (size_t)-1);
    db_bind_text(st, 4, hash, (size_t)-1);
    db_bind_int64(st, 5, now + ttl_ms);
    db_bind_int64(st, 6, now);
    return db_run(st, NULL);
}

int auth_token_consume(struct db_conn *c, const char *purpose, const char *raw, int64_t now,
                       char out_user[UUID_STR_LEN])
{
    out_user[0] = '\0';
    if (!raw || strlen(raw) != AUTH_TOKEN_LEN - 1)
        return LOCI_EAUTH;
    char hash[65];
    auth_hash_secret(raw, strlen(raw), hash);
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE mail_tokens SET used_at = ? WHERE token_hash = ? AND purpose = ? "
                        "AND used_at IS NULL AND expires_at > ? RETURNING user_id",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, now);
    db_bind_text(st, 2, hash, (size_t)-1);
    db_bind_text(st, 3, purpose, (size_t)-1);
    db_bind_int64(st, 4, now);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        if (!db_col_is_null(st, 0))
            snprintf(out_user, UUID_STR_LEN, "%s", db_col_text(st, 0, NULL));
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_EAUTH;
    }
    db_stmt_done(st);
    return rc;
}

/* DELETE with two time bounds (now, now - keep_ms); adds the rows deleted. */
static int purge(struct db_conn *c, const char *sql, int64_t now, int64_t keep_ms, int64_t *out_n)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, sql, &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, now);
    db_bind_int64(st, 2, now - keep_ms);
    int64_t n = 0;
    rc = db_run(st, &n);
    *out_n += n;
    return rc;
}

int auth_purge_expired(struct db_conn *c, int64_t now, int64_t *out_n)
{
    *out_n = 0;
    /* Rotated rows live as long as their family so that a replayed token is
     * recognised; revoked and used ones are kept a day for the same reason. */
    int rc = purge(c, "DELETE FROM refresh_tokens WHERE expires_at < ? OR revoked_at < ?", now,
                   86400000LL, out_n);
    if (rc == LOCI_OK)
        rc = purge(c, "DELETE FROM mail_tokens WHERE expires_at < ? OR used_at < ?", now,
                   86400000LL, out_n);
    return rc;
}
