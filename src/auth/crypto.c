/*
 * crypto.c - passwords, secrets and access tokens.
 *
 * JWTs are made and checked here with libsodium's HMAC-SHA256 rather than
 * libjwt: libjwt 1.10 verifies with whatever algorithm the token's header
 * names (a re-signed HS512 token passes) and does not check exp, so we would
 * have had to re-check everything around it. Pinning HS256 and checking each
 * claim ourselves is less code and leaves nothing to the library's defaults.
 */
#include "auth/auth.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- passwords ---- */

#define PW_OPS crypto_pwhash_OPSLIMIT_INTERACTIVE
#define PW_MEM crypto_pwhash_MEMLIMIT_INTERACTIVE

/* A real hash of a random password, verified against for unknown accounts
 * so that they cost what a wrong password costs. Made once at start. */
static char burn_hash[crypto_pwhash_STRBYTES];
static pthread_once_t burn_once = PTHREAD_ONCE_INIT;

static void make_burn_hash(void)
{
    char pw[AUTH_TOKEN_LEN];
    auth_random_token(pw);
    if (crypto_pwhash_str(burn_hash, pw, strlen(pw), PW_OPS, PW_MEM) != 0)
        BUG("cannot hash the burn password");
}

int auth_password_policy(const char *pw, size_t n)
{
    if (!pw || memchr(pw, '\0', n))
        return LOCI_EUNPROCESSABLE;
    size_t cp = json_utf8_length(pw, n);
    return cp >= AUTH_PASSWORD_MIN && cp <= AUTH_PASSWORD_MAX ? LOCI_OK : LOCI_EUNPROCESSABLE;
}

int auth_password_hash(const char *pw, size_t n, char *out)
{
    char tmp[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(tmp, pw, n, PW_OPS, PW_MEM) != 0)
        return LOCI_ENOMEM;
    snprintf(out, AUTH_HASH_MAX, "%s", tmp);
    return LOCI_OK;
}

int auth_password_verify(const char *hash, const char *pw, size_t n)
{
    return crypto_pwhash_str_verify(hash, pw, n) == 0 ? LOCI_OK : LOCI_EAUTH;
}

bool auth_password_needs_rehash(const char *hash)
{
    return crypto_pwhash_str_needs_rehash(hash, PW_OPS, PW_MEM) != 0;
}

void auth_password_burn(const char *pw, size_t n)
{
    pthread_once(&burn_once, make_burn_hash);
    if (crypto_pwhash_str_verify(burn_hash, pw, n) == 0)
        BUG("the burn password matched"); /* 256 random bits: cannot happen */
}

void auth_password_params(unsigned long long *out_ops, size_t *out_mem_bytes)
{
    *out_ops = PW_OPS;
    *out_mem_bytes = PW_MEM;
}

/* ---- display names ---- */

int auth_display_name_check(const char *name)
{
    if (!name)
        return LOCI_OK;
    size_t n = strlen(name);
    if (json_utf8_length(name, n) > AUTH_NAME_MAX)
        return LOCI_EUNPROCESSABLE;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f)
            return LOCI_EUNPROCESSABLE;
        /* U+0085, U+2028, U+2029: line breaks outside ASCII */
        if ((ch == 0xc2 && i + 1 < n && (unsigned char)name[i + 1] == 0x85) ||
            (ch == 0xe2 && i + 2 < n && (unsigned char)name[i + 1] == 0x80 &&
             ((unsigned char)name[i + 2] == 0xa8 || (unsigned char)name[i + 2] == 0xa9)))
            return LOCI_EUNPROCESSABLE;
    }
    return LOCI_OK;
}

/* ---- e-mail ---- */

int auth_email_normalize(const char *email, char *out)
{
    if (!email)
        return LOCI_EINVAL;
    while (*email == ' ' || *email == '\t')
        email++;
    size_t n = strlen(email);
    while (n && (email[n - 1] == ' ' || email[n - 1] == '\t'))
        n--;
    if (n < 3 || n > AUTH_EMAIL_MAX)
        return LOCI_EINVAL;
    const char *at = NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)email[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '<' || ch == '>' || ch == '(' || ch == ')' ||
            ch == ',' || ch == ';' || ch == ':' || ch == '\\' || ch == '"' || ch == '[' ||
            ch == ']')
            return LOCI_EINVAL;
        if (ch == '@') {
            if (at)
                return LOCI_EINVAL;
            at = email + i;
        }
        out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    out[n] = '\0';
    if (!at || at == email || (size_t)(at - email) > 64)
        return LOCI_EINVAL;
    const char *domain = at + 1;
    size_t dn = n - (size_t)(domain - email);
    const char *dot = memchr(domain, '.', dn);
    if (dn < 3 || !dot || dot == domain || domain[dn - 1] == '.' || strstr(out, ".."))
        return LOCI_EINVAL;
    return LOCI_OK;
}

/* ---- secrets ---- */

void auth_random_token(char *out)
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, AUTH_TOKEN_LEN, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

void auth_hash_secret(const char *s, size_t n, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)s, n, NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

/* ---- the key ring ---- */

#define MAX_KEYS 8

struct auth_key {
    char kid[33];
    unsigned char secret[32];
};

struct auth_keys {
    int n;
    struct auth_key keys[MAX_KEYS]; /* keys[0] signs */
};

static int parse_key(const char *kid, size_t kid_n, const char *hex, size_t hex_n,
                     struct auth_key *out)
{
    if (kid_n == 0 || kid_n > 32 || hex_n != 64)
        return LOCI_EINVAL;
    for (size_t i = 0; i < kid_n; i++) {
        char ch = kid[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return LOCI_EINVAL;
    }
    memcpy(out->kid, kid, kid_n);
    out->kid[kid_n] = '\0';
    size_t bin_n = 0;
    if (sodium_hex2bin(out->secret, sizeof(out->secret), hex, hex_n, NULL, &bin_n, NULL) != 0 ||
        bin_n != 32)
        return LOCI_EINVAL;
    return LOCI_OK;
}

/* "kid:hex" items separated by commas or newlines ("kid hex" in the file). */
static int parse_ring(const char *text, struct auth_keys *k)
{
    k->n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ',' || *p == '\n' || *p == ' ' || *p == '\r')
            p++;
        if (!*p)
            break;
        if (*p == '#') {
            while (*p && *p != '\n')
                p++;
            continue;
        }
        const char *end = p + strcspn(p, ",\n\r");
        const char *sep = p;
        while (sep < end && *sep != ':' && *sep != ' ')
            sep++;
        if (sep == end || k->n >= MAX_KEYS)
            return LOCI_EINVAL;
        if (parse_key(p, (size_t)(sep - p), sep + 1, (size_t)(end - sep - 1), &k->keys[k->n]))
            return LOCI_EINVAL;
        k->n++;
        p = end;
    }
    return k->n > 0 ? LOCI_OK : LOCI_EINVAL;
}

int auth_keys_load(const char *data_dir, const char *configured, struct auth_keys **out, char *err,
                   size_t err_n)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, err_n, "libsodium failed to initialise");
        return LOCI_EIO;
    }
    struct auth_keys *k = xcalloc(1, sizeof(*k));
    if (configured && configured[0]) {
        if (parse_ring(configured, k)) {
            snprintf(err, err_n,
                     "invalid jwt_keys (LOCI_JWT_KEYS): expected kid:64-hex-characters, comma "
                     "separated");
            sodium_memzero(k, sizeof(*k));
            xfree(k);
            return LOCI_EINVAL;
        }
        *out = k;
        return LOCI_OK;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/jwt_keys", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        /* First start: make a key, readable by us only. */
        unsigned char secret[32];
        char kid[17], hex[65];
        randombytes_buf(secret, sizeof(secret));
        sodium_bin2hex(hex, sizeof(hex), secret, sizeof(secret));
        unsigned char kb[8];
        randombytes_buf(kb, sizeof(kb));
        sodium_bin2hex(kid, sizeof(kid), kb, sizeof(kb));
        int wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (wfd < 0) {
            snprintf(err, err_n, "cannot create '%s': %s", path, strerror(errno));
            xfree(k);
            return LOCI_EIO;
        }
        char line[256];
        int len = snprintf(line, sizeof(line),
                           "# JWT signing keys: 'kid hex'; the first signs. Keep secret.\n%s %s\n",
                           kid, hex);
        bool ok = len > 0 && (size_t)len < sizeof(line) && write(wfd, line, (size_t)len) == len &&
                  fsync(wfd) == 0;
        close(wfd);
        sodium_memzero(line, sizeof(line));
        sodium_memzero(hex, sizeof(hex));
        sodium_memzero(secret, sizeof(secret));
        if (!ok) {
            snprintf(err, err_n, "cannot write '%s'", path);
            xfree(k);
            return LOCI_EIO;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        snprintf(err, err_n, "cannot open '%s': %s", path, strerror(errno));
        xfree(k);
        return LOCI_EIO;
    }
    char text[4096];
    ssize_t got = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (got <= 0) {
        snprintf(err, err_n, "cannot read '%s'", path);
        xfree(k);
        return LOCI_EIO;
    }
    text[got] = '\0';
    int rc = parse_ring(text, k);
    sodium_memzero(text, sizeof(text));
    if (rc) {
        snprintf(err, err_n, "'%s' is malformed: expected lines 'kid hex64'", path);
        xfree(k);
        return LOCI_EINVAL;
    }
    *out = k;
    return LOCI_OK;
}

void auth_keys_free(struct auth_keys *k)
{
    if (!k)
        return;
    sodium_memzero(k, sizeof(*k));
    xfree(k);
}

const char *auth_keys_active_kid(const struct auth_keys *k)
{
    return k->keys[0].kid;
}

/* ---- JWT ---- */

static int b64url(const void *bin, size_t n, struct buf *out)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *tmp = xmalloc(cap);
    sodium_bin2base64(tmp, cap, bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    int rc = buf_append_str(out, tmp);
    xfree(tmp);
    return rc;
}

static void hmac(const struct auth_key *key, const char *msg, size_t n, unsigned char out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key->secret, sizeof(key->secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, n);
    crypto_auth_hmacsha256_final(&st, out);
}

int auth_jwt_issue(const struct auth_keys *k, struct auth_claims *c, const char *iss,
                   const char *aud, int64_t now_s, int64_t ttl_s, char *out, size_t out_n)
{
    ids_uuid7(c->jti);
    c->iat = now_s;
    c->nbf = now_s;
    c->exp = now_s + ttl_s;
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "typ", "JWT", "kid", k->keys[0].kid);
    json_t *pl = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "iss", iss, "aud",
                           aud, "sub", c->sub, "role", c->role, "sid", c->sid, "jti", c->jti, "ver",
                           (json_int_t)c->ver, "iat", (json_int_t)c->iat, "nbf", (json_int_t)c->nbf,
                           "exp", (json_int_t)c->exp);
    char *h = json_dumps(hdr, JSON_COMPACT);
    char *p = json_dumps(pl, JSON_COMPACT);
    json_decref(hdr);
    json_decref(pl);
    struct buf b;
    buf_init(&b, AUTH_JWT_MAX);
    int rc = h && p ? LOCI_OK : LOCI_ENOMEM;
    if (!rc)
        rc = b64url(h, strlen(h), &b);
    if (!rc)
        rc = buf_append_char(&b, '.');
    if (!rc)
        rc = b64url(p, strlen(p), &b);
    unsigned char mac[32];
    if (!rc) {
        hmac(&k->keys[0], b.p, b.len, mac);
        rc = buf_append_char(&b, '.');
    }
    if (!rc)
        rc = b64url(mac, sizeof(mac), &b);
    if (!rc && b.len + 1 > out_n)
        rc = LOCI_ETOOBIG;
    if (!rc)
        memcpy(out, b.p, b.len + 1);
    xfree(h);
    xfree(p);
    buf_release(&b);
    return rc;
}

static json_t *decode_part(const char *s, size_t n)
{
    unsigned char bin[AUTH_JWT_MAX];
    size_t bin_n = 0;
    if (sodium_base642bin(bin, sizeof(bin), s, n, NULL, &bin_n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return NULL;
    json_error_t je;
    json_t *v = json_loadb((const char *)bin, bin_n, JSON_REJECT_DUPLICATES, &je);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static bool str_claim(json_t *pl, const char *name, char *out, size_t out_n)
{
    const char *v = json_string_value(json_object_get(pl, name));
    if (!v || strlen(v) >= out_n || !*v)
        return false;
    snprintf(out, out_n, "%s", v);
    return true;
}

static bool int_claim(json_t *pl, const char *name, int64_t *out)
{
    json_t *v = json_object_get(pl, name);
    if (!json_is_integer(v))
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

static bool aud_matches(json_t *v, const char *aud)
{
    if (json_is_string(v))
        return strcmp(json_string_value(v), aud) == 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (json_is_string(e) && strcmp(json_string_value(e), aud) == 0)
                return true;
        }
    }
    return false;
}

#define LEEWAY_S 30 /* clock skew between instances */

int auth_jwt_verify(const struct auth_keys *k, const char *token, size_t n, const char *iss,
                    const char *aud, int64_t now_s, struct auth_claims *out)
{
    memset(out, 0, sizeof(*out));
    if (!token || n == 0 || n > AUTH_JWT_MAX)
        return LOCI_EAUTH;
    const char *d1 = memchr(token, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)))
        return LOCI_EAUTH;
    int rc = LOCI_EAUTH;
    json_t *hdr = decode_part(token, (size_t)(d1 - token));
    json_t *pl = NULL;
    if (!hdr)
        goto out;
    /* The algorithm is pinned: anything but exactly HS256 is refused. */
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    const char *typ = json_string_value(json_object_get(hdr, "typ"));
    const char *kid = json_string_value(json_object_get(hdr, "kid"));
    if (!alg || strcmp(alg, "HS256") != 0 || (typ && strcmp(typ, "JWT") != 0) || !kid ||
        json_object_get(hdr, "crit"))
        goto out;
    const struct auth_key *key = NULL;
    for (int i = 0; i < k->n && !key; i++) {
        if (strcmp(k->keys[i].kid, kid) == 0)
            key = &k->keys[i];
    }
    if (!key)
        goto out;
    unsigned char want[32], got[64];
    size_t got_n = 0;
    hmac(key, token, (size_t)(d2 - token), want);
    if (sodium_base642bin(got, sizeof(got), d2 + 1, n - (size_t)(d2 + 1 - token), NULL, &got_n,
                          NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        got_n != 32 || sodium_memcmp(want, got, 32) != 0)
        goto out;
    pl = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!pl)
        goto out;
    const char *tiss = json_string_value(json_object_get(pl, "iss"));
    if (!tiss || strcmp(tiss, iss) != 0 || !aud_matches(json_object_get(pl, "aud"), aud))
        goto out;
    if (!int_claim(pl, "exp", &out->exp) || !int_claim(pl, "nbf", &out->nbf) ||
        !int_claim(pl, "iat", &out->iat) || !int_claim(pl, "ver", &out->ver))
        goto out;
    if (now_s >= out->exp + LEEWAY_S || out->nbf > now_s + LEEWAY_S ||
        out->iat > now_s + LEEWAY_S || out->exp <= out->iat)
        goto out;
    if (!str_claim(pl, "sub", out->sub, sizeof(out->sub)) ||
        !ids_is_uuid(out->sub, strlen(out->sub)) ||
        !str_claim(pl, "jti", out->jti, sizeof(out->jti)) ||
        !str_claim(pl, "sid", out->sid, sizeof(out->sid)) ||
        !str_claim(pl, "role", out->role, sizeof(out->role)) ||
        (strcmp(out->role, "user") != 0 && strcmp(out->role, "admin") != 0))
        goto out;
    rc = LOCI_OK;
out:
    json_decref(hdr);
    json_decref(pl);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}
