/*
 * me.c - the signed-in user: profile, password, sessions, API keys. Every
 * query is scoped to the caller's user id; another user's session or key id
 * is simply not found (404).
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/clock.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

static const struct json_field patch_fields[] = {
    {"display_name", JF_STRING, true, false, 0, AUTH_NAME_MAX},
};
/* Unknown fields (role, email_verified, disabled, ...) are refused with 422
 * and change nothing: no mass assignment. */
const struct json_schema api_me_patch_schema = {patch_fields, 1, false};

static const struct json_field password_fields[] = {
    {"current_password", JF_STRING, true, false, 0, 1024},
    {"new_password", JF_STRING, true, false, 0, 1024},
};
const struct json_schema api_password_schema = {password_fields, 2, false};

static const struct json_field key_fields[] = {
    {"name", JF_STRING, true, false, 1, 100},
    {"scopes", JF_ARRAY, false, false, 1, 2},
    {"expires_in_days", JF_INTEGER, false, true, 1, 3650},
};
const struct json_schema api_key_schema = {key_fields, 3, false};

static int load_me(struct http_req *req, struct auth_user *u)
{
    struct app *app = http_app(req);
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    rc = auth_user_by_id(c, api_principal(req)->user_id, u);
    db_release(c);
    return rc;
}

/* Credentials are managed with a password-backed session, not an API key. */
static int needs_session(struct http_req *req)
{
    if (api_principal(req)->api_key_id[0])
        return http_reply_error_status(req, 403, "session_required", NULL,
                                       "API keys cannot manage passwords or keys: sign in");
    return LOCI_OK;
}

int api_me_get(struct http_req *req)
{
    struct auth_user u;
    int rc = load_me(req, &u);
    if (rc)
        return rc;
    return http_reply_json(req, 200, auth_user_json(&u));
}

struct name_ctx {
    const char *user;
    const char *name;
};

static int tx_name(struct db_conn *c, void *arg)
{
    struct name_ctx *n = arg;
    int rc = auth_user_set_display_name(c, n->user, n->name);
    if (rc == LOCI_OK)
        rc = api_event(c, n->user, "user.updated", json_pack("{s:[s]}", "fields", "display_name"));
    return rc;
}

int api_me_patch(struct http_req *req)
{
    struct name_ctx n = {api_principal(req)->user_id,
                         json_string_value(json_object_get(http_json(req), "display_name"))};
    if (auth_display_name_check(n.name))
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "display_name",
                                "'display_name' must be one line of at most %d characters",
                                AUTH_NAME_MAX);
    int rc = api_tx(req, tx_name, &n);
    if (rc)
        return rc;
    return api_me_get(req);
}

struct pw_ctx {
    const struct auth_principal *p;
    const char *hash;
    int64_t revoked;
    struct auth_user u;
};

static int tx_password(struct db_conn *c, void *arg)
{
    struct pw_ctx *x = arg;
    int rc = auth_user_set_password(c, x->p->user_id, x->hash);
    int64_t keys = 0;
    if (rc == LOCI_OK)
        rc = auth_session_revoke_all(c, x->p->user_id,
                                     x->p->session_id[0] ? x->p->session_id : NULL, &x->revoked);
    if (rc == LOCI_OK)
        rc = auth_apikeys_revoke_all(c, x->p->user_id, &keys);
    if (rc == LOCI_OK)
        rc = api_event(c, x->p->user_id, "user.password_changed",
                       json_pack("{s:I, s:I}", "sessions_revoked", (json_int_t)x->revoked,
                                 "api_keys_revoked", (json_int_t)keys));
    if (rc == LOCI_OK)
        rc = auth_user_by_id(c, x->p->user_id, &x->u);
    return rc;
}

int api_me_password(struct http_req *req)
{
    int rc = needs_session(req);
    if (rc || http_has_reply(req))
        return rc;
    struct app *app = http_app(req);
    json_t *body = http_json(req);
    const char *cur = json_string_value(json_object_get(body, "current_password"));
    const char *next = json_string_value(json_object_get(body, "new_password"));
    struct auth_user u;
    rc = load_me(req, &u);
    if (rc)
        return rc;
    if (auth_password_verify(u.password_hash, cur, strlen(cur)) != LOCI_OK)
        return http_reply_error_status(req, 403, "wrong_password", "current_password",
                                       "the current password is wrong");
    if (auth_password_policy(next, strlen(next)) != LOCI_OK)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "new_password",
                                "the password must be %d to %d characters long", AUTH_PASSWORD_MIN,
                                AUTH_PASSWORD_MAX);
    char hash[AUTH_HASH_MAX];
    rc = auth_password_hash(next, strlen(next), hash);
    if (rc)
        return rc;
    struct pw_ctx x = {.p = api_principal(req), .hash = hash};
    rc = api_tx(req, tx_password, &x);
    if (rc)
        return rc;
    /* Every access token died with the version bump; this session goes on
     * with a new one. */
    struct auth_claims cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", x.u.id);
    snprintf(cl.role, sizeof(cl.role), "%s", x.u.role);
    snprintf(cl.sid, sizeof(cl.sid), "%s", x.p->session_id);
    cl.ver = x.u.token_version;
    char jwt[AUTH_JWT_MAX];
    rc = auth_jwt_issue(app->keys, &cl, app->cfg->public_url, "loci", clock_now_ms() / 1000,
                        app->cfg->access_token_ttl_s, jwt, sizeof(jwt));
    if (rc)
        return rc;
    return http_reply_json(req, 200,
                           json_pack("{s:s, s:s, s:i, s:I}", "access_token", jwt, "token_type",
                                     "Bearer", "expires_in", app->cfg->access_token_ttl_s,
                                     "sessions_revoked", (json_int_t)x.revoked));
}

int api_me_sessions(struct http_req *req)
{
    struct app *app = http_app(req);
    const struct auth_principal *p = api_principal(req);
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *items = NULL;
    rc = auth_sessions_list(c, p->user_id, p->session_id, clock_now_ms(), &items);
    db_release(c);
    if (rc)
        return rc;
    return http_reply_json(req, 200, json_pack("{s:o}", "items", items));
}

struct revoke_ctx {
    const char *user;
    const char *id;
    bool is_key;
};

static int tx_revoke(struct db_conn *c, void *arg)
{
    struct revoke_ctx *r = arg;
    int rc =
        r->is_key ? auth_apikey_revoke(c, r->user, r->id) : auth_session_revoke(c, r->user, r->id);
    if (rc == LOCI_OK)
        rc = api_event(c, r->user, r->is_key ? "api_key.revoked" : "auth.session_revoked",
                       json_pack("{s:s}", r->is_key ? "api_key_id" : "session_id", r->id));
    return rc;
}

int api_me_session_delete(struct http_req *req)
{
    struct revoke_ctx r = {api_principal(req)->user_id, http_param(req, "id"), false};
    int rc = api_tx(req, tx_revoke, &r);
    if (rc)
        return rc;
    return http_reply_bytes(req, 204, NULL, "", 0, false);
}

int api_me_keys(struct http_req *req)
{
    struct app *app = http_app(req);
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *items = NULL;
    rc = auth_apikeys_list(c, api_principal(req)->user_id, &items);
    db_release(c);
    if (rc)
        return rc;
    return http_reply_json(req, 200, json_pack("{s:o}", "items", items));
}

struct key_ctx {
    const char *user;
    const char *name;
    const char *scopes;
    int64_t expires_at;
    char key[AUTH_APIKEY_LEN];
    json_t *meta;
};

static int tx_key(struct db_conn *c, void *arg)
{
    struct key_ctx *k = arg;
    json_decref(k->meta); /* a retried transaction starts over */
    k->meta = NULL;
    int rc = auth_apikey_create(c, k->user, k->name, k->scopes, k->expires_at, k->key, &k->meta);
    if (rc == LOCI_OK)
        rc =
            api_event(c, k->user, "api_key.created",
                      json_pack("{s:O, s:O, s:s}", "api_key_id", json_object_get(k->meta, "id"),
                                "prefix", json_object_get(k->meta, "prefix"), "scopes", k->scopes));
    return rc;
}

int api_me_key_create(struct http_req *req)
{
    int rc = needs_session(req);
    if (rc || http_has_reply(req))
        return rc;
    json_t *body = http_json(req);
    bool read = false, write = false;
    json_t *scopes = json_object_get(body, "scopes");
    size_t i;
    json_t *s;
    json_array_foreach(scopes, i, s)
    {
        const char *v = json_string_value(s);
        if (v && strcmp(v, "read") == 0)
            read = true;
        else if (v && strcmp(v, "write") == 0)
            write = true;
        else
            return http_reply_error(req, LOCI_EUNPROCESSABLE, "scopes",
                                    "scopes are \"read\" and \"write\"");
    }
    (void)read;
    json_t *days = json_object_get(body, "expires_in_days");
    struct key_ctx k = {
        .user = api_principal(req)->user_id,
        .name = json_string_value(json_object_get(body, "name")),
        .scopes = write ? "read,write" : "read",
        .expires_at = json_is_integer(days)
                          ? clock_now_ms() + (int64_t)json_integer_value(days) * 86400000LL
                          : 0,
    };
    rc = api_tx(req, tx_key, &k);
    if (rc) {
        json_decref(k.meta);
        return rc;
    }
    json_object_set_new(k.meta, "key", json_string(k.key));
    memset(k.key, 0, sizeof(k.key));
    return http_reply_json(req, 201, k.meta);
}

int api_me_key_delete(struct http_req *req)
{
    int rc = needs_session(req);
    if (rc || http_has_reply(req))
        return rc;
    struct revoke_ctx r = {api_principal(req)->user_id, http_param(req, "id"), true};
    rc = api_tx(req, tx_revoke, &r);
    if (rc)
        return rc;
    return http_reply_bytes(req, 204, NULL, "", 0, false);
}
