/*
 * apikeys.c - long-lived keys for programs: loci_<prefix>_<secret>. The
 * prefix is stored in clear (to find the row and to show the user which key
 * is which), the whole key only as a hash.
 */
#include "auth/auth.h"

#include "core/clock.h"
#include "core/err.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

bool auth_is_apikey(const char *s)
{
    return s && strncmp(s, "loci_", 5) == 0;
}

static json_t *key_json(struct db_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(db_col_text(st, 0, NULL)));
    json_object_set_new(o, "name", json_string(db_col_text(st, 1, NULL)));
    json_object_set_new(o, "prefix", json_string(db_col_text(st, 2, NULL)));
    json_t *scopes = json_array();
    const char *sc = db_col_text(st, 3, NULL);
    json_array_append_new(scopes, json_string("read"));
    if (strstr(sc, "write"))
        json_array_append_new(scopes, json_string("write"));
    json_object_set_new(o, "scopes", scopes);
    json_object_set_new(o, "expires_at",
                        db_col_is_null(st, 4) ? json_null() : json_integer(db_col_int64(st, 4)));
    json_object_set_new(o, "last_used_at",
                        db_col_is_null(st, 5) ? json_null() : json_integer(db_col_int64(st, 5)));
    json_object_set_new(o, "created_at", json_integer(db_col_int64(st, 6)));
    return o;
}

#define KEY_COLUMNS "id, name, prefix, scopes, expires_at, last_used_at, created_at"

int auth_apikey_create(struct db_conn *c, const char *user_id, const char *name, const char *scopes,
                       int64_t expires_at, char out_key[AUTH_APIKEY_LEN], json_t **out_meta)
{
    *out_meta = NULL;
    if (strcmp(scopes, "read") != 0 && strcmp(scopes, "read,write") != 0)
        return LOCI_EINVAL;
    char id[UUID_STR_LEN], prefix[9], secret[AUTH_TOKEN_LEN], hash[65];
    unsigned char pb[4];
    randombytes_buf(pb, sizeof(pb));
    sodium_bin2hex(prefix, sizeof(prefix), pb, sizeof(pb));
    auth_random_token(secret);
    snprintf(out_key, AUTH_APIKEY_LEN, "loci_%s_%s", prefix, secret);
    sodium_memzero(secret, sizeof(secret));
    auth_hash_secret(out_key, strlen(out_key), hash);
    ids_uuid7(id);
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, scopes, "
                        "expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_text(st, 3, name, (size_t)-1);
    db_bind_text(st, 4, prefix, (size_t)-1);
    db_bind_text(st, 5, hash, (size_t)-1);
    db_bind_text(st, 6, scopes, (size_t)-1);
    if (expires_at > 0)
        db_bind_int64(st, 7, expires_at);
    else
        db_bind_null(st, 7);
    db_bind_int64(st, 8, clock_now_ms());
    rc = db_step(st);
    db_stmt_done(st);
    if (rc)
        return rc;
    rc = db_prepare(c, "SELECT " KEY_COLUMNS " FROM api_keys WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        *out_meta = key_json(st);
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_EIO;
    }
    db_stmt_done(st);
    return rc;
}

int auth_apikeys_list(struct db_conn *c, const char *user_id, json_t **out)
{
    *out = NULL;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT " KEY_COLUMNS " FROM api_keys WHERE user_id = ? "
                        "AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 500",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    json_t *arr = json_array();
    while ((rc = db_step(st)) == LOCI_ROW)
        json_array_append_new(arr, key_json(st));
    db_stmt_done(st);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return LOCI_OK;
}

int auth_apikey_revoke(struct db_conn *c, const char *user_id, const char *id)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE api_keys SET revoked_at = ? "
                        "WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, clock_now_ms());
    db_bind_text(st, 2, id, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    return db_run_one(st);
}

int auth_apikeys_revoke_all(struct db_conn *c, const char *user_id, int64_t *out_n)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(
        c, "UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, clock_now_ms());
    db_bind_text(st, 2, user_id, (size_t)-1);
    return db_run(st, out_n);
}
