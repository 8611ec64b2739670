/*
 * test_auth.c - the auth domain: password policy and hashing, email
 * normalisation, the JWT verifier's refusals, refresh-token rotation and
 * reuse detection, API keys, single-use tokens, and principals (token
 * version, disabled users, ended sessions) on SQLite and PostgreSQL.
 */
#include "auth/auth.h"
#include "core/clock.h"
#include "core/err.h"
#include "harness.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static struct db *open_db(const char *url)
{
    struct db *db = NULL;
    char err[512];
    if (db_open(url, 4, &db, err, sizeof(err)) != LOCI_OK)
        harness_fail(__FILE__, __LINE__, "db_open: %s", err);
    int applied = 0;
    if (db_migrate(db, &applied, err, sizeof(err)) != LOCI_OK)
        harness_fail(__FILE__, __LINE__, "migrate: %s", err);
    return db;
}

static struct auth_keys *keys(const char *ring)
{
    struct auth_keys *k = NULL;
    char err[256];
    if (auth_keys_load(harness_tmpdir(), ring, &k, err, sizeof(err)))
        harness_fail(__FILE__, __LINE__, "keys: %s", err);
    return k;
}

TEST(password_policy_hash_and_verify)
{
    CHECK_INT(auth_password_policy("short", 5), ==, LOCI_EUNPROCESSABLE);
    CHECK_INT(auth_password_policy("0123456789", 10), ==, LOCI_OK);
    CHECK_INT(auth_password_policy("ééééééééé", strlen("ééééééééé")), ==,
              LOCI_EUNPROCESSABLE); /* 9 code points, 18 bytes */
    char longpw[300];
    memset(longpw, 'a', 257);
    CHECK_INT(auth_password_policy(longpw, 257), ==, LOCI_EUNPROCESSABLE);
    CHECK_INT(auth_password_policy(longpw, 256), ==, LOCI_OK);
    char hash[AUTH_HASH_MAX];
    CHECK_INT(auth_password_hash("correct horse", 13, hash), ==, LOCI_OK);
    CHECK(strncmp(hash, "$argon2id$", 10) == 0);
    CHECK_INT(auth_password_verify(hash, "correct horse", 13), ==, LOCI_OK);
    CHECK_INT(auth_password_verify(hash, "correct horsf", 13), ==, LOCI_EAUTH);
    CHECK(!auth_password_needs_rehash(hash));
    /* Made with other (weaker) parameters: flagged for re-hashing. */
    char weak[crypto_pwhash_STRBYTES];
    CHECK(crypto_pwhash_str(weak, "x", 1, crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN) ==
          0);
    CHECK(auth_password_needs_rehash(weak));
    /* An unknown account costs about a verification. */
    int64_t t0 = clock_mono_ns();
    auth_password_verify(hash, "wrong password", 14);
    int64_t verify_ns = clock_mono_ns() - t0;
    t0 = clock_mono_ns();
    auth_password_burn("wrong password", 14); /* first call also makes the burn hash */
    t0 = clock_mono_ns();
    auth_password_burn("wrong password", 14);
    int64_t burn_ns = clock_mono_ns() - t0;
    CHECK(burn_ns * 3 > verify_ns && burn_ns < verify_ns * 3);
}

TEST(email_normalisation)
{
    char out[AUTH_EMAIL_MAX + 1];
    CHECK_INT(auth_email_normalize("  Ann.Lee@Example.COM ", out), ==, LOCI_OK);
    CHECK_STR(out, "ann.lee@example.com");
    const char *bad[] = {"",         "a",        "no-at.example.com", "@example.com",
                         "a@",       "a@b",      "a@@b.com",          "a b@c.com",
                         "a@b..com", "a@b.com.", "<a@b.com>",         "a\n@b.com",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        if (auth_email_normalize(bad[i], out) != LOCI_EINVAL)
            harness_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
    }
    CHECK_INT(auth_email_normalize(NULL, out), ==, LOCI_EINVAL);
}

static void b64(const void *p, size_t n, char *out, size_t out_n)
{
    sodium_bin2base64(out, out_n, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Build a token by hand: header and payload JSON, signed with key (or not). */
static void forge(char *out, size_t out_n, const char *hdr, const char *pl,
                  const unsigned char *key, bool sha512)
{
    char h[1024], p[2048];
    b64(hdr, strlen(hdr), h, sizeof(h));
    b64(pl, strlen(pl), p, sizeof(p));
    char msg[3200];
    snprintf(msg, sizeof(msg), "%s.%s", h, p);
    if (!key) {
        snprintf(out, out_n, "%s.", msg);
        return;
    }
    unsigned char mac[64];
    size_t mac_n = 32;
    if (sha512) {
        crypto_auth_hmacsha512_state st;
        crypto_auth_hmacsha512_init(&st, key, 32);
        crypto_auth_hmacsha512_update(&st, (const unsigned char *)msg, strlen(msg));
        crypto_auth_hmacsha512_final(&st, mac);
        mac_n = 64;
    } else {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, key, 32);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, strlen(msg));
        crypto_auth_hmacsha256_final(&st, mac);
    }
    char sig[128];
    b64(mac, mac_n, sig, sizeof(sig));
    snprintf(out, out_n, "%s.%s", msg, sig);
}

#define KID "k1"
#define HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define SUB "01a1fffd-6ae6-72d3-bca2-494fe7663c56"

static int verify(struct auth_keys *k, const char *tok, int64_t now)
{
    struct auth_claims c;
    return auth_jwt_verify(k, tok, strlen(tok), "http://loci.test", "loci", now, &c);
}

TEST(jwt_issue_verify_and_refusals)
{
    struct auth_keys *k = keys(KID ":" HEX);
    unsigned char key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)i;
    int64_t now = 1800000000;
    struct auth_claims c = {.ver = 3};
    snprintf(c.sub, sizeof(c.sub), SUB);
    snprintf(c.role, sizeof(c.role), "user");
    snprintf(c.sid, sizeof(c.sid), SUB);
    char tok[AUTH_JWT_MAX];
    CHECK_INT(auth_jwt_issue(k, &c, "http://loci.test", "loci", now, 3600, tok, sizeof(tok)), ==,
              LOCI_OK);
    struct auth_claims got;
    CHECK_INT(auth_jwt_verify(k, tok, strlen(tok), "http://loci.test", "loci", now + 10, &got), ==,
              LOCI_OK);
    CHECK_STR(got.sub, SUB);
    CHECK_INT(got.ver, ==, 3);
    CHECK_INT(verify(k, tok, now + 3600 + 31), ==, LOCI_EAUTH); /* expired (30 s leeway) */
    struct auth_claims bad;
    CHECK_INT(auth_jwt_verify(k, tok, strlen(tok), "http://other", "loci", now, &bad), ==,
              LOCI_EAUTH);
    CHECK_INT(auth_jwt_verify(k, tok, strlen(tok), "http://loci.test", "other", now, &bad), ==,
              LOCI_EAUTH);

    const char *good_pl = "{\"iss\":\"http://loci.test\",\"aud\":\"loci\",\"sub\":\"" SUB
                          "\",\"role\":\"user\",\"sid\":\"" SUB "\",\"jti\":\"j\",\"ver\":1,"
                          "\"iat\":1800000000,\"nbf\":1800000000,\"exp\":1800003600}";
    const char *hs256 = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"" KID "\"}";
    char t[4096];
    forge(t, sizeof(t), hs256, good_pl, key, false);
    CHECK_INT(verify(k, t, now), ==, LOCI_OK); /* the control: forging works when correct */

    forge(t, sizeof(t), "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"" KID "\"}", good_pl, NULL,
          false);
    CHECK_INT(verify(k, t, now), ==, LOCI_EAUTH);
    forge(t, sizeof(t), "{\"alg\":\"NONE\",\"kid\":\"" KID "\"}", good_pl, NULL, false);
    CHECK_INT(verify(k, t, now), ==, LOCI_EAUTH);
    forge(t, sizeof(t), "{\"alg\":\"HS512\",\"typ\":\"JWT\",\"kid\":\"" KID "\"}", good_pl, key,
          true);
    CHECK_INT(verify(k, t, now), ==, LOCI_EAUTH);
    forge(t, sizeof(t), "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"nope\"}", good_pl, key,
          false);
    CHECK_INT(verify(k, t, now), ==, LOCI_EAUTH);
    forge(t, sizeof(t), hs256, good_pl, key, false);
    CHECK_INT(verify(k, t, 1800000000 - 100), ==, LOCI_EAUTH); /* nbf in the future */
    /* Tampered payload with the original signature. */
    char t2[4096];
    forge(t2, sizeof(t2), hs256,
          "{\"iss\":\"http://loci.test\",\"aud\":\"loci\",\"sub\":\"" SUB
          "\",\"role\":\"admin\",\"sid\":\"" SUB "\",\"jti\":\"j\",\"ver\":1,"
          "\"iat\":1800000000,\"nbf\":1800000000,\"exp\":1800003600}",
          key, false);
    char *sig_good = strrchr(t, '.');
    char *sig_bad = strrchr(t2, '.');
    memcpy(sig_bad, sig_good, strlen(sig_good) + 1);
    CHECK_INT(verify(k, t2, now), ==, LOCI_EAUTH);
    /* Missing claims, wrong types, garbage. */
    forge(t, sizeof(t), hs256,
          "{\"iss\":\"http://loci.test\",\"aud\":\"loci\",\"sub\":\"" SUB "\"}", key, false);
    CHECK_INT(verify(k, t, now), ==, LOCI_EAUTH);
    const char *garbage[] = {"", "abc", "a.b", "a.b.c.d", "...", "eyJ.eyJ.", NULL};
    for (int i = 0; garbage[i]; i++)
        CHECK_INT(verify(k, garbage[i], now), ==, LOCI_EAUTH);
    auth_keys_free(k);

    /* A ring with a second key verifies tokens of either; the first signs. */
    struct auth_keys *k2 =
        keys("k2:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff," KID ":" HEX);
    CHECK_STR(auth_keys_active_kid(k2), "k2");
    forge(t, sizeof(t), hs256, good_pl, key, false);
    CHECK_INT(verify(k2, t, now), ==, LOCI_OK);
    auth_keys_free(k2);
    struct auth_keys *k3 = NULL;
    char err[256];
    CHECK_INT(auth_keys_load("/tmp", "k1:zz", &k3, err, sizeof(err)), ==, LOCI_EINVAL);
}

TEST(key_file_created_private_and_reloaded)
{
    const char *dir = harness_tmpdir();
    struct auth_keys *a = NULL, *b = NULL;
    char err[256];
    CHECK_INT(auth_keys_load(dir, "", &a, err, sizeof(err)), ==, LOCI_OK);
    CHECK_INT(auth_keys_load(dir, "", &b, err, sizeof(err)), ==, LOCI_OK);
    CHECK_STR(auth_keys_active_kid(a), auth_keys_active_kid(b));
    char path[600];
    snprintf(path, sizeof(path), "%s/jwt_keys", dir);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK_INT(st.st_mode & 0777, ==, 0600);
    auth_keys_free(a);
    auth_keys_free(b);
}

/* ---- database parts, both backends ---- */

static void sessions_keys_tokens(struct db *db)
{
    struct auth_keys *k = keys(KID ":" HEX);
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct auth_user u, other;
    char hash[AUTH_HASH_MAX] = "$argon2id$v=19$m=65536,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA";
    CHECK_INT(auth_user_create(c, "ann@example.com", hash, "user", "Ann", true, &u), ==, LOCI_OK);
    CHECK_INT(auth_user_create(c, "ann@example.com", hash, "user", "", true, NULL), ==,
              LOCI_ECONFLICT);
    CHECK_INT(auth_user_create(c, "bob@example.com", hash, "user", "", true, &other), ==, LOCI_OK);

    /* Sessions: rotate, reuse, revoke. */
    struct auth_session_opts so = {3600000, 86400000};
    int64_t now = clock_now_ms();
    char t1[AUTH_TOKEN_LEN], fam[UUID_STR_LEN];
    CHECK_INT(auth_session_create(c, u.id, "ua", "127.0.0.1", &so, now, t1, fam), ==, LOCI_OK);
    enum auth_rotate_result r;
    char t2[AUTH_TOKEN_LEN], user[UUID_STR_LEN], fam2[UUID_STR_LEN];
    CHECK_INT(auth_session_rotate(c, t1, &so, now + 1, &r, t2, user, fam2), ==, LOCI_OK);
    CHECK_INT(r, ==, AUTH_ROTATED);
    CHECK_STR(fam2, fam);
    CHECK_STR(user, u.id);
    CHECK(strcmp(t1, t2) != 0);
    bool alive = false;
    CHECK_INT(auth_session_alive(c, fam, now + 2, &alive), ==, LOCI_OK);
    CHECK(alive);
    char t3[AUTH_TOKEN_LEN];
    CHECK_INT(auth_session_rotate(c, t1, &so, now + 3, &r, t3, user, fam2), ==, LOCI_OK);
    CHECK_INT(r, ==, AUTH_REUSED); /* the old one again: the whole family ends */
    CHECK_INT(auth_session_alive(c, fam, now + 4, &alive), ==, LOCI_OK);
    CHECK(!alive);
    CHECK_INT(auth_session_rotate(c, t2, &so, now + 5, &r, t3, user, fam2), ==, LOCI_OK);
    CHECK_INT(r, ==, AUTH_INVALID);
    CHECK_INT(auth_session_rotate(c, "garbage", &so, now, &r, t3, user, fam2), ==, LOCI_OK);
    CHECK_INT(r, ==, AUTH_INVALID);
    /* Idle expiry. */
    CHECK_INT(auth_session_create(c, u.id, "", "", &so, now, t1, fam), ==, LOCI_OK);
    CHECK_INT(auth_session_rotate(c, t1, &so, now + 3600001, &r, t3, user, fam2), ==, LOCI_OK);
    CHECK_INT(r, ==, AUTH_INVALID);
    /* Another user cannot revoke it; the owner can. */
    CHECK_INT(auth_session_revoke(c, other.id, fam), ==, LOCI_ENOTFOUND);
    CHECK_INT(auth_session_revoke(c, u.id, fam), ==, LOCI_OK);

    /* Principals through access tokens. */
    char sess_tok[AUTH_TOKEN_LEN], sid[UUID_STR_LEN];
    CHECK_INT(auth_session_create(c, u.id, "", "", &so, now, sess_tok, sid), ==, LOCI_OK);
    struct auth_claims cl = {.ver = u.token_version};
    snprintf(cl.sub, sizeof(cl.sub), "%s", u.id);
    snprintf(cl.role, sizeof(cl.role), "user");
    snprintf(cl.sid, sizeof(cl.sid), "%s", sid);
    char jwt[AUTH_JWT_MAX];
    CHECK_INT(auth_jwt_issue(k, &cl, "iss", "loci", now / 1000, 3600, jwt, sizeof(jwt)), ==,
              LOCI_OK);
    struct auth_principal p;
    CHECK_INT(auth_authenticate(c, k, "iss", "loci", jwt, now, &p), ==, LOCI_OK);
    CHECK_STR(p.user_id, u.id);
    CHECK(p.can_write);
    CHECK_INT(auth_user_set_role(c, u.id, "admin"), ==, LOCI_OK); /* bumps the version */
    CHECK_INT(auth_authenticate(c, k, "iss", "loci", jwt, now, &p), ==, LOCI_EAUTH);
    CHECK_INT(auth_user_by_id(c, u.id, &u), ==, LOCI_OK);
    cl.ver = u.token_version;
    CHECK_INT(auth_jwt_issue(k, &cl, "iss", "loci", now / 1000, 3600, jwt, sizeof(jwt)), ==,
              LOCI_OK);
    CHECK_INT(auth_authenticate(c, k, "iss", "loci", jwt, now, &p), ==, LOCI_OK);
    CHECK_STR(p.role, "admin"); /* from the database, not the token */
    CHECK_INT(auth_session_revoke(c, u.id, sid), ==, LOCI_OK);
    CHECK_INT(auth_authenticate(c, k, "iss", "loci", jwt, now, &p), ==, LOCI_EAUTH);

    /* API keys. */
    char key[AUTH_APIKEY_LEN];
    json_t *meta = NULL;
    CHECK_INT(auth_apikey_create(c, u.id, "ci", "read", 0, key, &meta), ==, LOCI_OK);
    CHECK(strncmp(key, "loci_", 5) == 0 && strlen(key) == 5 + 8 + 1 + 43);
    CHECK(json_object_get(meta, "key") == NULL);
    const char *kid = json_string_value(json_object_get(meta, "id"));
    char key_id[UUID_STR_LEN];
    snprintf(key_id, sizeof(key_id), "%s", kid);
    json_decref(meta);
    CHECK_INT(auth_authenticate(c, k, "iss", "loci", key, now, &p), ==, LOCI_OK);
    CHECK(!p.can_write);
    CHECK_STR(p.api_key_id, key_id);
    char wrong[AUTH_APIKEY_LEN];
    snprintf(wrong, sizeof(wrong), "%s", key);
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == 'A' ? 'B' : 'A';
    CHECK_INT(auth_authenticate(c, k, "iss", "loci", wrong, now, &p), ==, LOCI_EAUTH);
    CHECK_INT(auth_apikey_revoke(c, other.id, key_id), ==, LOCI_ENOTFOUND);
    CHECK_INT(auth_apikey_revoke(c, u.id, key_id), ==, LOCI_OK);
    CHECK_INT(auth_authenticate(c, k, "iss", "loci", key, now, &p), ==, LOCI_EAUTH);
    CHECK_INT(auth_apikey_create(c, u.id, "old", "read,write", now - 1, key, &meta), ==, LOCI_OK);
    json_decref(meta);
    CHECK_INT(auth_authenticate(c, k, "iss", "loci", key, now, &p), ==, LOCI_EAUTH); /* expired */
    CHECK_INT(auth_apikey_create(c, u.id, "x", "admin", 0, key, &meta), ==, LOCI_EINVAL);

    /* Single-use tokens: newest wins, used once, expire. */
    char m1[AUTH_TOKEN_LEN], m2[AUTH_TOKEN_LEN];
    CHECK_INT(auth_token_create(c, u.id, "verify", 60000, now, m1), ==, LOCI_OK);
    CHECK_INT(auth_token_create(c, u.id, "verify", 60000, now, m2), ==, LOCI_OK);
    CHECK_INT(auth_token_consume(c, "verify", m1, now, user), ==, LOCI_EAUTH);
    CHECK_INT(auth_token_consume(c, "reset", m2, now, user), ==, LOCI_EAUTH);
    CHECK_INT(auth_token_consume(c, "verify", m2, now + 60001, user), ==, LOCI_EAUTH);
    CHECK_INT(auth_token_consume(c, "verify", m2, now, user), ==, LOCI_OK);
    CHECK_STR(user, u.id);
    CHECK_INT(auth_token_consume(c, "verify", m2, now, user), ==, LOCI_EAUTH);
    CHECK_INT(auth_token_create(c, NULL, "setup", 60000, now, m1), ==, LOCI_OK);
    CHECK_INT(auth_token_consume(c, "setup", m1, now, user), ==, LOCI_OK);
    CHECK_STR(user, "");
    int64_t purged = 0;
    CHECK_INT(auth_purge_expired(c, now + 100LL * 86400000, &purged), ==, LOCI_OK);
    CHECK(purged > 0);

    /* Users listing with prefix search and paging; LIKE wildcards are literal. */
    json_t *items = NULL;
    bool more = false;
    CHECK_INT(auth_users_list(c, "AN", NULL, 10, &items, &more), ==, LOCI_OK);
    CHECK_INT(json_array_size(items), ==, 1);
    json_decref(items);
    CHECK_INT(auth_users_list(c, "%", NULL, 10, &items, &more), ==, LOCI_OK);
    CHECK_INT(json_array_size(items), ==, 0);
    json_decref(items);
    CHECK_INT(auth_users_list(c, NULL, NULL, 1, &items, &more), ==, LOCI_OK);
    CHECK(more);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "email")),
              "ann@example.com");
    json_decref(items);
    CHECK_INT(auth_users_list(c, NULL, "ann@example.com", 1, &items, &more), ==, LOCI_OK);
    CHECK(!more);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "email")),
              "bob@example.com");
    json_decref(items);
    db_release(c);
    auth_keys_free(k);
}

TEST(sessions_keys_tokens_principals_both_backends)
{
    const char *urls[2];
    int n = harness_db_urls("auth", urls);
    for (int i = 0; i < n; i++) {
        struct db *db = open_db(urls[i]);
        sessions_keys_tokens(db);
        db_close(db);
    }
}
