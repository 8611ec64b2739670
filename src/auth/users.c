/*
 * users.c - the users table and turning credentials into principals.
 */
#include "auth/auth.h"

#include "core/clock.h"
#include "core/err.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define USER_COLUMNS                                                                               \
    "id, email, role, display_name, password_hash, email_verified_at, disabled_at, "               \
    "token_version, created_at"

static void read_user(struct db_stmt *st, struct auth_user *u)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->id, sizeof(u->id), "%s", db_col_text(st, 0, NULL));
    snprintf(u->email, sizeof(u->email), "%s", db_col_text(st, 1, NULL));
    snprintf(u->role, sizeof(u->role), "%s", db_col_text(st, 2, NULL));
    snprintf(u->display_name, sizeof(u->display_name), "%s", db_col_text(st, 3, NULL));
    snprintf(u->password_hash, sizeof(u->password_hash), "%s", db_col_text(st, 4, NULL));
    u->email_verified_at = db_col_int64(st, 5);
    u->disabled_at = db_col_int64(st, 6);
    u->token_version = db_col_int64(st, 7);
    u->created_at = db_col_int64(st, 8);
}

static int one_user(struct db_stmt *st, struct auth_user *out)
{
    int rc = db_step(st);
    if (rc == LOCI_ROW) {
        read_user(st, out);
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_ENOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

int auth_user_create(struct db_conn *c, const char *email, const char *password_hash,
                     const char *role, const char *display_name, bool is_verified,
                     struct auth_user *out)
{
    char id[UUID_STR_LEN];
    ids_uuid7(id);
    int64_t now = clock_now_ms();
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "INSERT INTO users (id, email, email_norm, password_hash, role, "
                        "display_name, email_verified_at, token_version, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, email, (size_t)-1);
    db_bind_text(st, 3, email, (size_t)-1);
    db_bind_text(st, 4, password_hash, (size_t)-1);
    db_bind_text(st, 5, role, (size_t)-1);
    db_bind_text(st, 6, display_name ? display_name : "", (size_t)-1);
    if (is_verified)
        db_bind_int64(st, 7, now);
    else
        db_bind_null(st, 7);
    db_bind_int64(st, 8, now);
    db_bind_int64(st, 9, now);
    rc = db_step(st);
    db_stmt_done(st);
    if (rc == LOCI_OK && out)
        rc = auth_user_by_id(c, id, out);
    return rc;
}

int auth_user_by_email(struct db_conn *c, const char *email_norm, struct auth_user *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT " USER_COLUMNS " FROM users WHERE email_norm = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, email_norm, (size_t)-1);
    return one_user(st, out);
}

int auth_user_by_id(struct db_conn *c, const char *id, struct auth_user *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT " USER_COLUMNS " FROM users WHERE id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    return one_user(st, out);
}

/* Run `UPDATE users SET <col> = ?, ... updated_at = ? WHERE id = ?`. */
static int update_text(struct db_conn *c, const char *sql, const char *value, const char *id)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, sql, &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, value, (size_t)-1);
    db_bind_int64(st, 2, clock_now_ms());
    db_bind_text(st, 3, id, (size_t)-1);
    return db_run_one(st);
}

int auth_user_set_display_name(struct db_conn *c, const char *id, const char *name)
{
    return update_text(c, "UPDATE users SET display_name = ?, updated_at = ? WHERE id = ?", name,
                       id);
}

int auth_user_set_password(struct db_conn *c, const char *id, const char *password_hash)
{
    return update_text(c,
                       "UPDATE users SET password_hash = ?, token_version = token_version + 1, "
                       "updated_at = ? WHERE id = ?",
                       password_hash, id);
}

int auth_user_rehash(struct db_conn *c, const char *id, const char *password_hash)
{
    return update_text(c, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
                       password_hash, id);
}

int auth_user_set_role(struct db_conn *c, const char *id, const char *role)
{
    if (strcmp(role, "user") != 0 && strcmp(role, "admin") != 0)
        return LOCI_EINVAL;
    return update_text(c,
                       "UPDATE users SET role = ?, token_version = token_version + 1, "
                       "updated_at = ? WHERE id = ?",
                       role, id);
}

int auth_user_set_disabled(struct db_conn *c, const char *id, bool is_disabled)
{
    struct db_stmt *st = NULL;
    int64_t now = clock_now_ms();
    int rc = db_prepare(c,
                        "UPDATE users SET disabled_at = ?, token_version = token_version + 1, "
                        "updated_at = ? WHERE id = ?",
                        &st);
    if (rc)
        return rc;
    if (is_disabled)
        db_bind_int64(st, 1, now);
    else
        db_bind_null(st, 1);
    db_bind_int64(st, 2, now);
    db_bind_text(st, 3, id, (size_t)-1);
    return db_run_one(st);
}

int auth_user_bump_version(struct db_conn *c, const char *id)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE users SET token_version = token_version + 1, updated_at = ? "
                        "WHERE id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, clock_now_ms());
    db_bind_text(st, 2, id, (size_t)-1);
    return db_run_one(st);
}

int auth_user_mark_verified(struct db_conn *c, const char *id)
{
    struct db_stmt *st = NULL;
    int64_t now = clock_now_ms();
    int rc = db_prepare(c,
                        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, ?), "
                        "updated_at = ? WHERE id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, now);
    db_bind_int64(st, 2, now);
    db_bind_text(st, 3, id, (size_t)-1);
    return db_run_one(st);
}

json_t *auth_user_json(const struct auth_user *u)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(u->id));
    json_object_set_new(o, "email", json_string(u->email));
    json_object_set_new(o, "display_name", json_string(u->display_name));
    json_object_set_new(o, "role", json_string(u->role));
    json_object_set_new(o, "email_verified", json_boolean(u->email_verified_at != 0));
    json_object_set_new(o, "disabled", json_boolean(u->disabled_at != 0));
    json_object_set_new(o, "created_at", json_integer(u->created_at));
    return o;
}

int auth_users_list(struct db_conn *c, const char *q, const char *after_email, int limit,
                    json_t **out_items, bool *out_has_more)
{
    *out_items = NULL;
    *out_has_more = false;
    if (limit < 1 || limit > 200)
        return LOCI_EINVAL;
    /* Prefix search on the normalised address; LIKE wildcards in q are
     * escaped so a search for "a_b" means exactly that. */
    char pattern[2 * AUTH_EMAIL_MAX + 2] = "";
    if (q && *q) {
        size_t o = 0;
        for (const char *p = q; *p && o + 3 < sizeof(pattern); p++) {
            char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p + 32) : *p;
            if (ch == '%' || ch == '_' || ch == '\\')
                pattern[o++] = '\\';
            pattern[o++] = ch;
        }
        pattern[o++] = '%';
        pattern[o] = '\0';
    }
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT " USER_COLUMNS " FROM users "
                        "WHERE (CAST(? AS TEXT) IS NULL OR email_norm LIKE ? ESCAPE '\\') "
                        "AND (CAST(? AS TEXT) IS NULL OR email_norm > ?) "
                        "ORDER BY email_norm LIMIT ?",
                        &st);
    if (rc)
        return rc;
    const char *pat = pattern[0] ? pattern : NULL;
    db_bind_text(st, 1, pat, (size_t)-1);
    db_bind_text(st, 2, pat, (size_t)-1);
    db_bind_text(st, 3, after_email, (size_t)-1);
    db_bind_text(st, 4, after_email, (size_t)-1);
    db_bind_int64(st, 5, limit + 1);
    json_t *arr = json_array();
    int n = 0;
    while ((rc = db_step(st)) == LOCI_ROW) {
        if (n++ == limit) {
            *out_has_more = true;
            break;
        }
        struct auth_user u;
        read_user(st, &u);
        json_array_append_new(arr, auth_user_json(&u));
    }
    db_stmt_done(st);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out_items = arr;
    return LOCI_OK;
}

int auth_admin_exists(struct db_conn *c, bool *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT COUNT(*) FROM users WHERE role = 'admin'", &st);
    if (rc)
        return rc;
    rc = db_step(st);
    *out = rc == LOCI_ROW && db_col_int64(st, 0) > 0;
    db_stmt_done(st);
    return rc == LOCI_ROW ? LOCI_OK : rc ? rc : LOCI_EIO;
}

/* ---- principals ---- */

static int from_api_key(struct db_conn *c, const char *key, int64_t now, struct auth_principal *out)
{
    /* loci_<prefix>_<secret> */
    const char *p = key + 5;
    const char *us = strchr(p, '_');
    if (!us || us - p != 8 || strlen(us + 1) != 43)
        return LOCI_EAUTH;
    char prefix[9];
    memcpy(prefix, p, 8);
    prefix[8] = '\0';
    char hash[65];
    auth_hash_secret(key, strlen(key), hash);
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT k.id, k.user_id, k.secret_hash, k.scopes, k.expires_at, "
                        "k.revoked_at, k.last_used_at, u.role, u.disabled_at "
                        "FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.prefix = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, prefix, (size_t)-1);
    rc = db_step(st);
    if (rc != LOCI_ROW) {
        db_stmt_done(st);
        return rc < 0 ? rc : LOCI_EAUTH;
    }
    bool ok = strlen(db_col_text(st, 2, NULL)) == 64 &&
              sodium_memcmp(db_col_text(st, 2, NULL), hash, 64) == 0 &&
              (db_col_is_null(st, 4) || db_col_int64(st, 4) > now) && db_col_is_null(st, 5) &&
              db_col_is_null(st, 8);
    int64_t last_used = db_col_int64(st, 6);
    if (ok) {
        snprintf(out->api_key_id, sizeof(out->api_key_id), "%s", db_col_text(st, 0, NULL));
        snprintf(out->user_id, sizeof(out->user_id), "%s", db_col_text(st, 1, NULL));
        out->can_write = strstr(db_col_text(st, 3, NULL), "write") != NULL;
        snprintf(out->role, sizeof(out->role), "%s", db_col_text(st, 7, NULL));
    }
    db_stmt_done(st);
    if (!ok)
        return LOCI_EAUTH;
    /* last_used_at at minute resolution: no write on every request. */
    if (now - last_used > 60000) {
        rc = db_prepare(c, "UPDATE api_keys SET last_used_at = ? WHERE id = ?", &st);
        if (rc == LOCI_OK) {
            db_bind_int64(st, 1, now);
            db_bind_text(st, 2, out->api_key_id, (size_t)-1);
            db_step(st);
            db_stmt_done(st);
        }
    }
    return LOCI_OK;
}

int auth_authenticate(struct db_conn *c, const struct auth_keys *k, const char *iss,
                      const char *aud, const char *bearer, int64_t now_ms,
                      struct auth_principal *out)
{
    memset(out, 0, sizeof(*out));
    if (!bearer || !*bearer)
        return LOCI_EAUTH;
    if (auth_is_apikey(bearer))
        return from_api_key(c, bearer, now_ms, out);
    struct auth_claims cl;
    if (auth_jwt_verify(k, bearer, strlen(bearer), iss, aud, now_ms / 1000, &cl))
        return LOCI_EAUTH;
    /* One indexed read per request makes logout, password change,
     * disabling and role changes effective on the very next request, on
     * every instance. */
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT u.role, u.disabled_at, u.token_version, "
                        "(SELECT COUNT(*) FROM refresh_tokens r WHERE r.family_id = ? "
                        "AND r.user_id = u.id AND r.revoked_at IS NULL AND r.expires_at > ?) "
                        "FROM users u WHERE u.id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, cl.sid, (size_t)-1);
    db_bind_int64(st, 2, now_ms);
    db_bind_text(st, 3, cl.sub, (size_t)-1);
    rc = db_step(st);
    /* Live user, same token version, and the session it came from still
     * open (logout of one session ends its access tokens too). */
    bool ok = rc == LOCI_ROW && db_col_is_null(st, 1) && db_col_int64(st, 2) == cl.ver &&
              db_col_int64(st, 3) > 0;
    if (ok) {
        snprintf(out->role, sizeof(out->role), "%s", db_col_text(st, 0, NULL));
        snprintf(out->user_id, sizeof(out->user_id), "%s", cl.sub);
        snprintf(out->session_id, sizeof(out->session_id), "%s", cl.sid);
        out->can_write = true;
    }
    db_stmt_done(st);
    if (rc < 0)
        return rc;
    return ok ? LOCI_OK : LOCI_EAUTH;
}
