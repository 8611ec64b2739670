/*
 * auth.c - sign-up, login, token refresh and logout, email verification,
 * password reset, first-admin setup; the mail and purge jobs behind them.
 *
 * Browser clients get the refresh token in an HttpOnly SameSite=Strict
 * cookie and keep the access token in memory; programs that cannot hold
 * cookies ask for "token_delivery":"body". A request that authenticates with
 * the cookie must come from our own origin (CSRF).
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "services/jobs/jobs.h"
#include "services/mail/mail.h"
#include "services/ratelimit/ratelimit.h"

#include <stdio.h>
#include <string.h>

#define VERIFY_TTL_MS (48LL * 3600 * 1000)
#define RESET_TTL_MS  (3600LL * 1000)

static const struct json_field signup_fields[] = {
    {"email", JF_STRING, true, false, 1, 320},
    {"password", JF_STRING, true, false, 0, 1024},
    {"display_name", JF_STRING, false, false, 0, AUTH_NAME_MAX},
};
const struct json_schema api_signup_schema = {signup_fields, 3, false};

static const struct json_field login_fields[] = {
    {"email", JF_STRING, true, false, 1, 320},
    {"password", JF_STRING, true, false, 0, 1024},
    {"token_delivery", JF_STRING, false, false, 4, 6},
};
const struct json_schema api_login_schema = {login_fields, 3, false};

static const struct json_field refresh_fields[] = {
    {"refresh_token", JF_STRING, false, false, 1, 128},
    {"token_delivery", JF_STRING, false, false, 4, 6},
};
const struct json_schema api_refresh_schema = {refresh_fields, 2, false};

const struct json_schema api_empty_schema = {NULL, 0, false};

static const struct json_field token_fields[] = {{"token", JF_STRING, true, false, 1, 128}};
const struct json_schema api_token_schema = {token_fields, 1, false};

static const struct json_field forgot_fields[] = {{"email", JF_STRING, true, false, 1, 320}};
const struct json_schema api_forgot_schema = {forgot_fields, 1, false};

static const struct json_field reset_fields[] = {
    {"token", JF_STRING, true, false, 1, 128},
    {"password", JF_STRING, true, false, 0, 1024},
};
const struct json_schema api_reset_schema = {reset_fields, 2, false};

static const struct json_field setup_fields[] = {
    {"token", JF_STRING, true, false, 1, 128},
    {"email", JF_STRING, true, false, 1, 320},
    {"password", JF_STRING, true, false, 0, 1024},
    {"display_name", JF_STRING, false, false, 0, AUTH_NAME_MAX},
};
const struct json_schema api_setup_schema = {setup_fields, 4, false};

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static const char *jstr(struct http_req *req, const char *key)
{
    return json_string_value(json_object_get(http_json(req), key));
}

static struct auth_session_opts session_opts(const struct config *cfg)
{
    struct auth_session_opts o = {(int64_t)cfg->refresh_idle_days * 86400000LL,
                                  (int64_t)cfg->refresh_absolute_days * 86400000LL};
    return o;
}

static const char *cookie_name(struct http_req *req)
{
    return http_is_tls(req) ? "__Host-loci_refresh" : "loci_refresh";
}

static void set_refresh_cookie(struct http_req *req, const char *value, int64_t max_age_s)
{
    char v[256];
    snprintf(v, sizeof(v), "%s=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%lld%s",
             cookie_name(req), value, (long long)max_age_s, http_is_tls(req) ? "; Secure" : "");
    http_set_header(req, "Set-Cookie", v);
}

/* A request authenticated by cookie must come from our own pages. */
static bool same_origin(struct http_req *req)
{
    const struct config *cfg = http_config(req);
    const char *site = http_header(req, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return false;
    const char *origin = http_header(req, "Origin");
    if (!origin)
        return true; /* non-browser client: nothing ambient to abuse */
    if (strcmp(origin, cfg->public_url) == 0)
        return true;
    const char *host = http_header(req, "Host");
    if (!host)
        return false;
    char self[300];
    snprintf(self, sizeof(self), "%s://%s", http_is_tls(req) ? "https" : "http", host);
    return strcmp(origin, self) == 0;
}

static int csrf_refused(struct http_req *req)
{
    return http_reply_error_status(req, 403, "csrf_failed", NULL,
                                   "cross-site request refused: the session cookie only works "
                                   "from this site");
}

static bool wants_body_delivery(struct http_req *req)
{
    const char *d = jstr(req, "token_delivery");
    return d && strcmp(d, "body") == 0;
}

static int bad_delivery(struct http_req *req)
{
    const char *d = jstr(req, "token_delivery");
    if (d && strcmp(d, "body") != 0 && strcmp(d, "cookie") != 0)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "token_delivery",
                                "'token_delivery' must be \"cookie\" or \"body\"");
    return LOCI_OK;
}

/* Reply with a fresh access token for the user's session. */
static int reply_tokens(struct http_req *req, int status, const struct auth_user *u,
                        const char *family, const char *refresh, bool in_body)
{
    struct app *app = http_app(req);
    const struct config *cfg = app->cfg;
    struct auth_claims cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", u->id);
    snprintf(cl.role, sizeof(cl.role), "%s", u->role);
    snprintf(cl.sid, sizeof(cl.sid), "%s", family);
    cl.ver = u->token_version;
    char jwt[AUTH_JWT_MAX];
    int rc = auth_jwt_issue(app->keys, &cl, cfg->public_url, "loci", clock_now_ms() / 1000,
                            cfg->access_token_ttl_s, jwt, sizeof(jwt));
    if (rc)
        return rc;
    json_t *o = json_pack("{s:s, s:s, s:i, s:o}", "access_token", jwt, "token_type", "Bearer",
                          "expires_in", cfg->access_token_ttl_s, "user", auth_user_json(u));
    if (refresh) {
        if (in_body) {
            json_object_set_new(o, "refresh_token", json_string(refresh));
        } else {
            set_refresh_cookie(req, refresh, (int64_t)cfg->refresh_absolute_days * 86400);
        }
    }
    return http_reply_json(req, status, o);
}

static int enqueue_mail(struct db_conn *c, const char *user_id, const char *purpose)
{
    json_t *p = json_pack("{s:s, s:s}", "user_id", user_id, "purpose", purpose);
    struct jobs_spec spec = {
        .type = "auth.mail", .payload = p, .user_id = user_id, .max_attempts = 8};
    char id[UUID_STR_LEN];
    int rc = jobs_enqueue(c, &spec, id, NULL);
    json_decref(p);
    return rc;
}

static int check_password_policy(struct http_req *req, const char *field, const char *pw)
{
    if (auth_password_policy(pw, strlen(pw)) != LOCI_OK)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, field,
                                "the password must be %d to %d characters long", AUTH_PASSWORD_MIN,
                                AUTH_PASSWORD_MAX);
    return LOCI_OK;
}

/* The email (normalised) and the password (policy-checked, hashed) of a
 * new account; replies 422 naming the field when one is wrong. The hash is
 * made before anything is looked up, so an existing address costs the same
 * time as a new one. */
static int take_credentials(struct http_req *req, char email[AUTH_EMAIL_MAX + 1],
                            char hash[AUTH_HASH_MAX])
{
    if (auth_email_normalize(jstr(req, "email"), email))
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "email", "not a valid email address");
    if (auth_display_name_check(jstr(req, "display_name")))
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "display_name",
                                "'display_name' must be one line of at most %d characters",
                                AUTH_NAME_MAX);
    const char *pw = jstr(req, "password");
    int rc = check_password_policy(req, "password", pw);
    if (rc || http_has_reply(req))
        return rc;
    return auth_password_hash(pw, strlen(pw), hash);
}

/* ------------------------------------------------------------------ */
/* options and sign-up                                                  */

int api_auth_options(struct http_req *req)
{
    struct app *app = http_app(req);
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    bool has_admin = true;
    rc = auth_admin_exists(c, &has_admin);
    db_release(c);
    if (rc)
        return rc;
    json_t *o = json_pack("{s:b, s:b, s:b, s:i, s:i}", "mail_enabled", app->is_mail_on,
                          "email_verification_required", app->is_mail_on, "setup_required",
                          !has_admin, "password_min_length", AUTH_PASSWORD_MIN,
                          "password_max_length", AUTH_PASSWORD_MAX);
    return http_reply_json(req, 200, o);
}

struct signup_ctx {
    struct app *app;
    const char *email;
    const char *hash;
    const char *name;
};

static int tx_signup(struct db_conn *c, void *arg)
{
    struct signup_ctx *s = arg;
    struct auth_user u;
    int rc = auth_user_by_email(c, s->email, &u);
    if (rc == LOCI_OK)
        return LOCI_OK; /* exists: answer as if created, change nothing */
    if (rc != LOCI_ENOTFOUND)
        return rc;
    rc = auth_user_create(c, s->email, s->hash, "user", s->name, !s->app->is_mail_on, &u);
    if (rc == LOCI_ECONFLICT)
        return LOCI_OK; /* a concurrent sign-up won: same answer */
    if (rc)
        return rc;
    rc = api_event(
        c, u.id, "user.signed_up",
        json_pack("{s:s, s:b}", "role", "user", "verification_required", s->app->is_mail_on));
    if (rc == LOCI_OK && s->app->is_mail_on)
        rc = enqueue_mail(c, u.id, "verify");
    return rc;
}

int api_auth_signup(struct http_req *req)
{
    struct app *app = http_app(req);
    char email[AUTH_EMAIL_MAX + 1], hash[AUTH_HASH_MAX];
    int rc = take_credentials(req, email, hash);
    if (rc || http_has_reply(req))
        return rc;
    const char *name = jstr(req, "display_name");
    struct signup_ctx s = {app, email, hash, name ? name : ""};
    rc = api_tx(req, tx_signup, &s);
    if (rc)
        return rc;
    if (app->is_mail_on)
        jobs_wake(app->jobs);
    json_t *o = json_pack("{s:s, s:b}", "status", "accepted", "email_verification_required",
                          app->is_mail_on);
    return http_reply_json(req, 202, o);
}

/* ------------------------------------------------------------------ */
/* login                                                                */

struct login_ctx {
    const struct auth_user *u;
    const char *ua;
    const char *ip;
    struct auth_session_opts so;
    const char *rehash;
    char token[AUTH_TOKEN_LEN];
    char family[UUID_STR_LEN];
};

static int tx_login(struct db_conn *c, void *arg)
{
    struct login_ctx *l = arg;
    int rc =
        auth_session_create(c, l->u->id, l->ua, l->ip, &l->so, clock_now_ms(), l->token, l->family);
    if (rc == LOCI_OK && l->rehash)
        rc = auth_user_rehash(c, l->u->id, l->rehash);
    if (rc == LOCI_OK)
        rc = api_event(c, l->u->id, "user.logged_in",
                       json_pack("{s:s, s:s}", "method", "password", "session_id", l->family));
    return rc;
}

struct fail_ctx {
    const char *user_id;
    const char *reason;
};

static int tx_login_failed(struct db_conn *c, void *arg)
{
    struct fail_ctx *f = arg;
    return api_event(c, f->user_id, "user.login_failed", json_pack("{s:s}", "reason", f->reason));
}

static int too_many(struct http_req *req, int64_t wait_ms)
{
    char v[32];
    snprintf(v, sizeof(v), "%lld", (long long)((wait_ms + 999) / 1000));
    http_set_header(req, "Retry-After", v);
    return http_reply_error(req, LOCI_ERATELIMIT, NULL, "too many failed logins: try again in %s s",
                            v);
}

int api_auth_login(struct http_req *req)
{
    struct app *app = http_app(req);
    const struct config *cfg = app->cfg;
    int rc = bad_delivery(req);
    if (rc || http_has_reply(req))
        return rc;
    const char *pw = jstr(req, "password");
    char email[AUTH_EMAIL_MAX + 1];
    bool valid_email = auth_email_normalize(jstr(req, "email"), email) == LOCI_OK;
    char acct_key[AUTH_EMAIL_MAX + 16], ip_key[100];
    snprintf(acct_key, sizeof(acct_key), "login|a|%s", valid_email ? email : "-");
    char who[80];
    api_client_key(req, who, sizeof(who));
    snprintf(ip_key, sizeof(ip_key), "login|ip|%s", who);
    int64_t now = clock_now_ms();
    int64_t wait = rl_backoff_wait(app->logins, acct_key, now);
    int64_t wait_ip = rl_backoff_wait(app->logins, ip_key, now);
    if (wait_ip > wait)
        wait = wait_ip;
    if (wait > 0)
        return too_many(req, wait);

    struct auth_user u;
    bool found = false;
    if (valid_email) {
        struct db_conn *c = NULL;
        rc = db_acquire(app->db, &c);
        if (rc)
            return rc;
        rc = auth_user_by_email(c, email, &u);
        db_release(c);
        if (rc && rc != LOCI_ENOTFOUND)
            return rc;
        found = rc == LOCI_OK;
    }
    bool ok;
    if (found) {
        ok = auth_password_verify(u.password_hash, pw, strlen(pw)) == LOCI_OK;
    } else {
        auth_password_burn(pw, strlen(pw));
        ok = false;
    }
    if (ok && u.disabled_at)
        ok = false;
    if (!ok) {
        rl_backoff_fail(app->logins, acct_key, cfg->login_free_failures, now);
        rl_backoff_fail(app->logins, ip_key, cfg->login_free_failures * 4, now);
        struct fail_ctx f = {found ? u.id : NULL,
                             found && u.disabled_at ? "disabled" : "bad_credentials"};
        api_tx(req, tx_login_failed, &f);
        return http_reply_error_status(req, 401, "invalid_credentials", NULL,
                                       "the email or password is wrong");
    }
    rl_backoff_clear(app->logins, acct_key);
    if (app->is_mail_on && !u.email_verified_at)
        return http_reply_error_status(req, 403, "email_not_verified", "email",
                                       "confirm your email address first: follow the link in "
                                       "the mail we sent");
    char rehash[AUTH_HASH_MAX];
    struct login_ctx l = {.u = &u,
                          .ua = http_header(req, "User-Agent"),
                          .ip = http_client_ip(req),
                          .so = session_opts(cfg)};
    if (auth_password_needs_rehash(u.password_hash) &&
        auth_password_hash(pw, strlen(pw), rehash) == LOCI_OK)
        l.rehash = rehash;
    rc = api_tx(req, tx_login, &l);
    if (rc)
        return rc;
    return reply_tokens(req, 200, &u, l.family, l.token, wants_body_delivery(req));
}

/* ------------------------------------------------------------------ */
/* refresh and logout                                                   */

struct refresh_ctx {
    const char *raw;
    struct auth_session_opts so;
    enum auth_rotate_result result;
    char token[AUTH_TOKEN_LEN];
    char user[UUID_STR_LEN];
    char family[UUID_STR_LEN];
    struct auth_user u;
    bool is_user_ok;
    bool need_verified;
};

static int tx_refresh(struct db_conn *c, void *arg)
{
    struct refresh_ctx *r = arg;
    int rc = auth_session_rotate(c, r->raw, &r->so, clock_now_ms(), &r->result, r->token, r->user,
                                 r->family);
    if (rc)
        return rc;
    if (r->result == AUTH_REUSED)
        return api_event(c, r->user, "auth.refresh_reuse_detected",
                         json_pack("{s:s}", "session_id", r->family));
    if (r->result != AUTH_ROTATED)
        return LOCI_OK;
    rc = auth_user_by_id(c, r->user, &r->u);
    if (rc)
        return rc;
    r->is_user_ok = !r->u.disabled_at && (!r->need_verified || r->u.email_verified_at);
    if (!r->is_user_ok)
        return auth_session_revoke(c, r->user, r->family);
    return LOCI_OK;
}

/* The refresh token from the body, else the cookie (CSRF-checked). */
static int refresh_source(struct http_req *req, const char **out_raw, bool *out_from_cookie)
{
    const char *raw = jstr(req, "refresh_token");
    *out_from_cookie = false;
    if (!raw) {
        raw = http_cookie(req, cookie_name(req));
        *out_from_cookie = raw != NULL;
        if (raw && !same_origin(req))
            return csrf_refused(req);
    }
    *out_raw = raw;
    return LOCI_OK;
}

int api_auth_refresh(struct http_req *req)
{
    struct app *app = http_app(req);
    int rc = bad_delivery(req);
    if (rc || http_has_reply(req))
        return rc;
    const char *raw = NULL;
    bool from_cookie = false;
    rc = refresh_source(req, &raw, &from_cookie);
    if (rc || http_has_reply(req))
        return rc;
    if (!raw)
        return http_reply_error_status(req, 401, "invalid_refresh_token", NULL,
                                       "no refresh token: send it in the body or the cookie");
    struct refresh_ctx r = {
        .raw = raw, .so = session_opts(app->cfg), .need_verified = app->is_mail_on};
    rc = api_tx(req, tx_refresh, &r);
    if (rc)
        return rc;
    if (r.result != AUTH_ROTATED || !r.is_user_ok) {
        if (r.result == AUTH_REUSED)
            log_line(http_log(req), LOG_WARN, "refresh token reuse: session revoked",
                     (struct log_field[]){LF_STR("session_id", r.family)}, 1);
        if (from_cookie)
            set_refresh_cookie(req, "", 0);
        return http_reply_error_status(req, 401, "invalid_refresh_token", NULL,
                                       "the refresh token is invalid, expired or revoked");
    }
    return reply_tokens(req, 200, &r.u, r.family, r.token,
                        !from_cookie || wants_body_delivery(req));
}

struct logout_ctx {
    const char *user;
    const char *family;
    int64_t revoked;
    bool all;
};

static int tx_logout(struct db_conn *c, void *arg)
{
    struct logout_ctx *l = arg;
    int rc;
    int64_t keys = 0;
    if (l->all) {
        rc = auth_session_revoke_all(c, l->user, NULL, &l->revoked);
        if (rc == LOCI_OK)
            rc = auth_apikeys_revoke_all(c, l->user, &keys);
        if (rc == LOCI_OK)
            rc = auth_user_bump_version(c, l->user);
    } else {
        rc = auth_session_revoke(c, l->user, l->family);
        if (rc == LOCI_ENOTFOUND)
            return LOCI_OK; /* already ended: logging out twice is fine */
        l->revoked = rc == LOCI_OK;
    }
    if (rc)
        return rc;
    return api_event(
        c, l->user, l->all ? "auth.sessions_revoked" : "auth.logged_out",
        l->all ? json_pack("{s:s, s:I}", "reason", "logout_all", "sessions", (json_int_t)l->revoked)
               : json_pack("{s:s}", "session_id", l->family));
}

int api_auth_logout(struct http_req *req)
{
    struct app *app = http_app(req);
    const char *raw = NULL;
    bool from_cookie = false;
    int rc = refresh_source(req, &raw, &from_cookie);
    if (rc || http_has_reply(req))
        return rc;
    char user[UUID_STR_LEN] = "", family[UUID_STR_LEN] = "";
    struct db_conn *c = NULL;
    rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    if (raw) {
        if (auth_session_find(c, raw, user, family) != LOCI_OK)
            user[0] = '\0';
    } else {
        /* No refresh token: the access token names the session. */
        const char *h = http_header(req, "Authorization");
        struct auth_principal p;
        if (h && strncmp(h, "Bearer ", 7) == 0 &&
            auth_authenticate(c, app->keys, app->cfg->public_url, "loci", h + 7, clock_now_ms(),
                              &p) == LOCI_OK &&
            p.session_id[0]) {
            snprintf(user, sizeof(user), "%s", p.user_id);
            snprintf(family, sizeof(family), "%s", p.session_id);
        }
    }
    db_release(c);
    if (user[0]) {
        struct logout_ctx l = {user, family, 0, false};
        rc = api_tx(req, tx_logout, &l);
        if (rc)
            return rc;
    }
    if (from_cookie || http_cookie(req, cookie_name(req)))
        set_refresh_cookie(req, "", 0);
    return http_reply_bytes(req, 204, NULL, "", 0, false);
}

int api_auth_logout_all(struct http_req *req)
{
    const struct auth_principal *p = api_principal(req);
    struct logout_ctx l = {p->user_id, NULL, 0, true};
    int rc = api_tx(req, tx_logout, &l);
    if (rc)
        return rc;
    set_refresh_cookie(req, "", 0);
    return http_reply_bytes(req, 204, NULL, "", 0, false);
}

/* ------------------------------------------------------------------ */
/* verification, reset, setup                                           */

static int invalid_token(struct http_req *req)
{
    return http_reply_error_status(req, 400, "invalid_token", "token",
                                   "the link is invalid, used or expired");
}

struct verify_ctx {
    const char *raw;
    char user[UUID_STR_LEN];
};

static int tx_verify(struct db_conn *c, void *arg)
{
    struct verify_ctx *v = arg;
    int rc = auth_token_consume(c, "verify", v->raw, clock_now_ms(), v->user);
    if (rc)
        return rc;
    rc = auth_user_mark_verified(c, v->user);
    if (rc == LOCI_OK)
        rc = api_event(c, v->user, "user.email_verified", json_object());
    return rc;
}

int api_auth_verify_email(struct http_req *req)
{
    struct verify_ctx v = {.raw = jstr(req, "token")};
    int rc = api_tx(req, tx_verify, &v);
    if (rc == LOCI_EAUTH || rc == LOCI_ENOTFOUND)
        return invalid_token(req);
    if (rc)
        return rc;
    return http_reply_json(req, 200, json_pack("{s:s}", "status", "verified"));
}

struct forgot_ctx {
    const char *email;
};

static int tx_forgot(struct db_conn *c, void *arg)
{
    struct forgot_ctx *f = arg;
    struct auth_user u;
    int rc = auth_user_by_email(c, f->email, &u);
    if (rc == LOCI_ENOTFOUND || (rc == LOCI_OK && u.disabled_at))
        return LOCI_OK; /* same answer, no mail */
    if (rc)
        return rc;
    return enqueue_mail(c, u.id, "reset");
}

int api_auth_forgot(struct http_req *req)
{
    struct app *app = http_app(req);
    if (!app->is_mail_on)
        return http_reply_error_status(req, 409, "mail_disabled", NULL,
                                       "mail is not configured on this server: ask an "
                                       "administrator to reset your password");
    char email[AUTH_EMAIL_MAX + 1];
    if (auth_email_normalize(jstr(req, "email"), email) == LOCI_OK) {
        struct forgot_ctx f = {email};
        int rc = api_tx(req, tx_forgot, &f);
        if (rc)
            return rc;
        jobs_wake(app->jobs);
    }
    return http_reply_json(req, 202, json_pack("{s:s}", "status", "accepted"));
}

struct reset_ctx {
    const char *raw;
    const char *hash;
    char user[UUID_STR_LEN];
};

static int tx_reset(struct db_conn *c, void *arg)
{
    struct reset_ctx *r = arg;
    int rc = auth_token_consume(c, "reset", r->raw, clock_now_ms(), r->user);
    if (rc)
        return rc;
    rc = auth_user_set_password(c, r->user, r->hash);
    int64_t n = 0, keys = 0;
    if (rc == LOCI_OK)
        rc = auth_session_revoke_all(c, r->user, NULL, &n);
    if (rc == LOCI_OK)
        rc = auth_apikeys_revoke_all(c, r->user, &keys);
    if (rc == LOCI_OK)
        rc = auth_user_mark_verified(c, r->user); /* they read the mail */
    if (rc == LOCI_OK)
        rc = api_event(c, r->user, "user.password_reset",
                       json_pack("{s:I, s:I}", "sessions_revoked", (json_int_t)n,
                                 "api_keys_revoked", (json_int_t)keys));
    return rc;
}

int api_auth_reset(struct http_req *req)
{
    const char *pw = jstr(req, "password");
    int rc = check_password_policy(req, "password", pw);
    if (rc || http_has_reply(req))
        return rc;
    char hash[AUTH_HASH_MAX];
    rc = auth_password_hash(pw, strlen(pw), hash);
    if (rc)
        return rc;
    struct reset_ctx r = {.raw = jstr(req, "token"), .hash = hash};
    rc = api_tx(req, tx_reset, &r);
    if (rc == LOCI_EAUTH || rc == LOCI_ENOTFOUND)
        return invalid_token(req);
    if (rc)
        return rc;
    return http_reply_json(req, 200, json_pack("{s:s}", "status", "password_changed"));
}

struct setup_ctx {
    const char *raw;
    const char *email;
    const char *hash;
    const char *name;
    struct auth_user u;
};

static int tx_setup(struct db_conn *c, void *arg)
{
    struct setup_ctx *s = arg;
    char none[UUID_STR_LEN];
    int rc = auth_token_consume(c, "setup", s->raw, clock_now_ms(), none);
    if (rc)
        return rc;
    bool has_admin = false;
    rc = auth_admin_exists(c, &has_admin);
    if (rc)
        return rc;
    if (has_admin)
        return LOCI_ECONFLICT;
    rc = auth_user_create(c, s->email, s->hash, "admin", s->name, true, &s->u);
    if (rc)
        return rc;
    return api_event(c, s->u.id, "user.signed_up",
                     json_pack("{s:s, s:s}", "role", "admin", "via", "setup"));
}

int api_auth_setup(struct http_req *req)
{
    char email[AUTH_EMAIL_MAX + 1], hash[AUTH_HASH_MAX];
    int rc = take_credentials(req, email, hash);
    if (rc || http_has_reply(req))
        return rc;
    const char *name = jstr(req, "display_name");
    struct setup_ctx s = {
        .raw = jstr(req, "token"), .email = email, .hash = hash, .name = name ? name : ""};
    rc = api_tx(req, tx_setup, &s);
    if (rc == LOCI_EAUTH)
        return invalid_token(req);
    if (rc == LOCI_ECONFLICT)
        return http_reply_error(req, LOCI_ECONFLICT, "email",
                                "an admin already exists, or the email is taken");
    if (rc)
        return rc;
    return http_reply_json(req, 201, json_pack("{s:o}", "user", auth_user_json(&s.u)));
}

/* ------------------------------------------------------------------ */
/* jobs: mail and purge                                                 */

struct mail_job_ctx {
    const char *user_id;
    const char *purpose;
    struct auth_user u;
    char raw[AUTH_TOKEN_LEN];
    bool skip;
};

static int tx_mail_token(struct db_conn *c, void *arg)
{
    struct mail_job_ctx *m = arg;
    int rc = auth_user_by_id(c, m->user_id, &m->u);
    if (rc)
        return rc;
    if (m->u.disabled_at || (strcmp(m->purpose, "verify") == 0 && m->u.email_verified_at)) {
        m->skip = true;
        return LOCI_OK;
    }
    int64_t ttl = strcmp(m->purpose, "verify") == 0 ? VERIFY_TTL_MS : RESET_TTL_MS;
    return auth_token_create(c, m->user_id, m->purpose, ttl, clock_now_ms(), m->raw);
}

static int mail_job(struct job *j, void *arg)
{
    struct app *app = arg;
    const struct config *cfg = app->cfg;
    const json_t *p = job_payload(j);
    struct mail_job_ctx m = {
        .user_id = json_string_value(json_object_get(p, "user_id")),
        .purpose = json_string_value(json_object_get(p, "purpose")),
    };
    if (!m.user_id || !m.purpose ||
        (strcmp(m.purpose, "verify") != 0 && strcmp(m.purpose, "reset") != 0)) {
        job_set_error(j, "payload needs user_id and purpose verify|reset");
        return LOCI_EINVAL;
    }
    /* The raw token exists only here and in the mail: never in the job row. */
    int rc = db_tx(job_db(j), tx_mail_token, &m);
    if (rc == LOCI_ENOTFOUND || (rc == LOCI_OK && m.skip))
        return LOCI_OK; /* user gone or already verified: nothing to send */
    if (rc)
        return rc;
    bool verify = strcmp(m.purpose, "verify") == 0;
    char body[2048], subject[128];
    snprintf(subject, sizeof(subject), "%s",
             verify ? "Confirm your email for Loci" : "Reset your Loci password");
    snprintf(body, sizeof(body),
             "Hello%s%s,\n\n%s\n\n%s/%s?token=%s\n\n%s\n\nIf this was not you, ignore this "
             "mail.\n\n-- Loci\n",
             m.u.display_name[0] ? " " : "", m.u.display_name,
             verify ? "Please confirm your email address by opening this link:"
                    : "Someone (hopefully you) asked to reset your password. Open this link to "
                      "choose a new one:",
             cfg->public_url, verify ? "verify-email" : "reset-password", m.raw,
             verify ? "The link works for 48 hours." : "The link works for one hour, once.");
    struct mail_opts mo = {cfg->smtp_url,         cfg->smtp_user, cfg->smtp_password,
                           cfg->smtp_require_tls, cfg->mail_from, 30};
    char err[256];
    rc = mail_send(&mo, m.u.email, subject, body, err, sizeof(err));
    memset(body, 0, sizeof(body));
    memset(m.raw, 0, sizeof(m.raw));
    if (rc) {
        job_set_error(j, "%s", err);
        return rc == LOCI_EINVAL ? LOCI_EINVAL : LOCI_EAGAIN;
    }
    log_line(job_log(j), LOG_INFO, "mail sent", (struct log_field[]){LF_STR("purpose", m.purpose)},
             1);
    return LOCI_OK;
}

static int purge_job(struct job *j, void *arg)
{
    (void)arg;
    struct db_conn *c = NULL;
    int rc = db_acquire(job_db(j), &c);
    if (rc)
        return rc;
    int64_t n = 0;
    rc = auth_purge_expired(c, clock_now_ms(), &n);
    db_release(c);
    if (rc == LOCI_OK)
        log_line(job_log(j), LOG_INFO, "purged expired tokens",
                 (struct log_field[]){LF_INT("deleted", n)}, 1);
    return rc;
}

int api_auth_register_jobs(struct app *app, char *err, size_t err_n)
{
    jobs_register(app->jobs, "auth.mail", mail_job, app);
    jobs_register(app->jobs, "auth.purge_tokens", purge_job, app);
    return jobs_schedule(app->jobs, "purge_tokens", "40 3 * * *", "auth.purge_tokens", NULL, err,
                         err_n);
}
