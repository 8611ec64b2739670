/*
 * auth.h - accounts and access: passwords, access tokens (JWT HS256),
 * refresh-token sessions with rotation and reuse detection, API keys,
 * single-use mail tokens, and turning a bearer credential into a principal.
 *
 * Not for: HTTP (cookies, CSRF, status codes live in src/api/auth.c) or
 * sending mail (a job does that). Secrets never leave this module except as
 * the raw value handed once to the caller to give to the user; the database
 * only holds hashes.
 *
 * Threads: every function is safe from any thread; functions taking a
 * struct db_conn run on the caller's connection (and transaction).
 */
#ifndef LOCI_AUTH_AUTH_H
#define LOCI_AUTH_AUTH_H

#include "core/ids.h"
#include "store/db.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_PASSWORD_MIN 10
#define AUTH_PASSWORD_MAX 256
#define AUTH_EMAIL_MAX    254
#define AUTH_NAME_MAX     100
#define AUTH_HASH_MAX     160 /* argon2id encoded string */
#define AUTH_TOKEN_LEN    44  /* 32 random bytes, base64url, + NUL */
#define AUTH_APIKEY_LEN   72  /* loci_<8 hex>_<43 base64url> + NUL */
#define AUTH_JWT_MAX      2048

/* ---- passwords (argon2id through libsodium) ---- */

/* LOCI_OK when pw is 10-256 Unicode code points of valid UTF-8. */
int auth_password_policy(const char *pw, size_t n);
/* Hash with the current parameters into out (AUTH_HASH_MAX bytes). */
int auth_password_hash(const char *pw, size_t n, char *out);
/* LOCI_OK on a match, LOCI_EAUTH otherwise; constant time. */
int auth_password_verify(const char *hash, const char *pw, size_t n);
/* True when hash was made with other parameters than the current ones. */
bool auth_password_needs_rehash(const char *hash);
/* Spend the time of one verification (unknown accounts cost the same). */
void auth_password_burn(const char *pw, size_t n);
/* The argon2id parameters in force, for logs and the README. */
void auth_password_params(unsigned long long *out_ops, size_t *out_mem_bytes);

/* ---- display names ---- */

/* LOCI_OK for 0-100 code points of one line (no control characters): names
 * go into mail and UI, where a line break would let a stranger write text. */
int auth_display_name_check(const char *name);

/* ---- e-mail addresses ---- */

/* Trim, lower-case, and check the shape local@domain.tld. out must hold
 * AUTH_EMAIL_MAX + 1 bytes. LOCI_EINVAL when it is not an address. */
int auth_email_normalize(const char *email, char *out);

/* ---- secrets ---- */

/* 32 random bytes as base64url (43 characters) into out[AUTH_TOKEN_LEN]. */
void auth_random_token(char *out);
/* BLAKE2b-256 of s as 64 hex characters into out[65]. */
void auth_hash_secret(const char *s, size_t n, char out[65]);

/* ---- access tokens ---- */

struct auth_keys;

/* Load the HS256 key ring: from `configured` ("kid:hex64,kid2:hex64", the
 * first signs) when not empty, else from DATA_DIR/jwt_keys, creating that
 * file (0600) with a fresh key on first start. */
int auth_keys_load(const char *data_dir, const char *configured, struct auth_keys **out, char *err,
                   size_t err_n);
void auth_keys_free(struct auth_keys *k);
const char *auth_keys_active_kid(const struct auth_keys *k);

struct auth_claims {
    char sub[UUID_STR_LEN]; /* user id */
    char role[8];           /* "user" or "admin" at issue time */
    char sid[UUID_STR_LEN]; /* session (refresh family) id */
    char jti[UUID_STR_LEN];
    int64_t ver;           /* the user's token_version at issue time */
    int64_t iat, nbf, exp; /* seconds since the epoch */
};

/* Sign claims with the active key: header {"alg":"HS256","typ":"JWT","kid"}.
 * Fills jti, iat, nbf and exp (now + ttl_s). */
int auth_jwt_issue(const struct auth_keys *k, struct auth_claims *c, const char *iss,
                   const char *aud, int64_t now_s, int64_t ttl_s, char *out, size_t out_n);
/* Verify with the algorithm pinned to HS256 and every claim checked (iss,
 * aud, exp, nbf, iat, sub, jti, role, ver, kid known). LOCI_EAUTH on any
 * failure, without saying which. */
int auth_jwt_verify(const struct auth_keys *k, const char *token, size_t n, const char *iss,
                    const char *aud, int64_t now_s, struct auth_claims *out);

/* ---- users ---- */

struct auth_user {
    char id[UUID_STR_LEN];
    char email[AUTH_EMAIL_MAX + 1];
    char role[8];
    char display_name[4 * AUTH_NAME_MAX + 1];
    char password_hash[AUTH_HASH_MAX];
    int64_t email_verified_at; /* 0 = not verified */
    int64_t disabled_at;       /* 0 = active */
    int64_t token_version;
    int64_t created_at;
};

/* Create a user (email already normalised). LOCI_ECONFLICT if it exists. */
int auth_user_create(struct db_conn *c, const char *email, const char *password_hash,
                     const char *role, const char *display_name, bool is_verified,
                     struct auth_user *out);
int auth_user_by_email(struct db_conn *c, const char *email_norm, struct auth_user *out);
int auth_user_by_id(struct db_conn *c, const char *id, struct auth_user *out);
int auth_user_set_display_name(struct db_conn *c, const char *id, const char *name);
/* These bump token_version: every access token of the user stops working. */
int auth_user_set_password(struct db_conn *c, const char *id, const char *password_hash);
int auth_user_set_role(struct db_conn *c, const char *id, const char *role);
int auth_user_set_disabled(struct db_conn *c, const char *id, bool is_disabled);
int auth_user_bump_version(struct db_conn *c, const char *id);
/* Keep the version: only the stored hash changes (re-hash on login). */
int auth_user_rehash(struct db_conn *c, const char *id, const char *password_hash);
int auth_user_mark_verified(struct db_conn *c, const char *id);
/* The public view (never the hash or the token version). */
json_t *auth_user_json(const struct auth_user *u);
/* Page through users by email prefix q (NULL = all), ordered by email. */
int auth_users_list(struct db_conn *c, const char *q, const char *after_email, int limit,
                    json_t **out_items, bool *out_has_more);
int auth_admin_exists(struct db_conn *c, bool *out);

/* ---- sessions (refresh tokens) ---- */

struct auth_session_opts {
    int64_t idle_ms;     /* a token unused this long expires */
    int64_t absolute_ms; /* a family ends this long after login */
};

/* Start a family: writes the raw refresh token and the family id. */
int auth_session_create(struct db_conn *c, const char *user_id, const char *user_agent,
                        const char *ip, const struct auth_session_opts *o, int64_t now,
                        char out_token[AUTH_TOKEN_LEN], char out_family[UUID_STR_LEN]);

enum auth_rotate_result {
    AUTH_ROTATED, /* new token written */
    AUTH_INVALID, /* unknown, expired or revoked: nothing changed */
    AUTH_REUSED,  /* an already-rotated token: the whole family is revoked now */
};

/* Exchange raw for a new token in the same family. On AUTH_REUSED the
 * revocation is written on c, so the caller must commit. out_user and
 * out_family are set for AUTH_ROTATED and AUTH_REUSED. */
int auth_session_rotate(struct db_conn *c, const char *raw, const struct auth_session_opts *o,
                        int64_t now, enum auth_rotate_result *out_result,
                        char out_token[AUTH_TOKEN_LEN], char out_user[UUID_STR_LEN],
                        char out_family[UUID_STR_LEN]);
/* The family of a raw token still usable (for logout by cookie). */
int auth_session_find(struct db_conn *c, const char *raw, char out_user[UUID_STR_LEN],
                      char out_family[UUID_STR_LEN]);
int auth_session_revoke(struct db_conn *c, const char *user_id, const char *family_id);
/* Revoke every family of the user except `keep` (NULL: all). */
int auth_session_revoke_all(struct db_conn *c, const char *user_id, const char *keep,
                            int64_t *out_n);
/* Is this family still alive (not revoked, not past its end)? */
int auth_session_alive(struct db_conn *c, const char *family_id, int64_t now, bool *out);
int auth_sessions_list(struct db_conn *c, const char *user_id, const char *current, int64_t now,
                       json_t **out);

/* ---- API keys ---- */

/* Create a key: out_key gets loci_<prefix>_<secret> (shown once); out_meta
 * the public description. scopes: "read" or "read,write". expires_at 0 =
 * never. */
int auth_apikey_create(struct db_conn *c, const char *user_id, const char *name, const char *scopes,
                       int64_t expires_at, char out_key[AUTH_APIKEY_LEN], json_t **out_meta);
int auth_apikeys_list(struct db_conn *c, const char *user_id, json_t **out);
int auth_apikey_revoke(struct db_conn *c, const char *user_id, const char *id);
/* Revoke every key of the user (password reset or change, logout-all: a
 * stolen session must not leave a key behind). */
int auth_apikeys_revoke_all(struct db_conn *c, const char *user_id, int64_t *out_n);
/* True when s looks like an API key (starts with "loci_"). */
bool auth_is_apikey(const char *s);

/* ---- single-use tokens (mail links, first-admin setup) ---- */

/* purpose: "verify", "reset" or "setup". Earlier unused tokens of the same
 * user and purpose are invalidated. user_id NULL only for "setup". */
int auth_token_create(struct db_conn *c, const char *user_id, const char *purpose, int64_t ttl_ms,
                      int64_t now, char out_raw[AUTH_TOKEN_LEN]);
/* Use a token once. LOCI_EAUTH when unknown, used, expired or of another
 * purpose. out_user is "" for setup tokens. */
int auth_token_consume(struct db_conn *c, const char *purpose, const char *raw, int64_t now,
                       char out_user[UUID_STR_LEN]);
/* Delete expired refresh tokens (families past their end) and mail tokens. */
int auth_purge_expired(struct db_conn *c, int64_t now, int64_t *out_n);

/* ---- principals ---- */

struct auth_principal {
    char user_id[UUID_STR_LEN];
    char role[8];                  /* from the database, not the token */
    char session_id[UUID_STR_LEN]; /* "" for API keys */
    char api_key_id[UUID_STR_LEN]; /* "" for access tokens */
    bool can_write;                /* API keys without the write scope: false */
};

/* Turn an access token or API key into a principal, checking the user is
 * active and (for tokens) that token_version still matches, and (for keys)
 * that the key is live. LOCI_EAUTH otherwise. */
int auth_authenticate(struct db_conn *c, const struct auth_keys *k, const char *iss,
                      const char *aud, const char *bearer, int64_t now_ms,
                      struct auth_principal *out);

#endif
