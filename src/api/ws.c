/*
 * ws.c - GET /ws: the WebSocket handshake (RFC 6455 4.2.1), the Origin
 * check, the browser's session cookie and ?since=, then the 101 and the
 * socket handed to the realtime hub; and the hub's authenticate callback
 * (an access token or API key from the socket's first message).
 *
 * A token never travels in the URL (URLs reach logs and proxies): programs
 * send {"type":"auth","token":"..."} first; browsers are signed in by the
 * refresh cookie that comes with the upgrade request, which is only
 * believed from an allowed Origin (cross-site WebSocket hijacking).
 *
 * Not for: frames, sockets or events (services/realtime).
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "services/realtime/realtime.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_SINCE (1LL << 53) /* offsets stay exact in JSON numbers */

/* Does the comma-separated header value list hold token (any case)? */
static bool has_token(const char *list, const char *token)
{
    size_t tn = strlen(token);
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m == tn && strncasecmp(p, token, tn) == 0)
            return true;
        p += n;
    }
    return false;
}

/* public_url's origin (scheme://host[:port]), the origin of the Host the
 * browser came to (like auth.c's same-origin check: a rebound DNS name gets
 * no cookie of ours), or one in cors_origins. */
static bool origin_allowed(struct http_req *req, const struct config *cfg, const char *origin)
{
    const char *host = http_header(req, "Host");
    if (host) {
        char self[300];
        snprintf(self, sizeof(self), "%s://%s", http_is_tls(req) ? "https" : "http", host);
        if (strcasecmp(origin, self) == 0)
            return true;
    }
    const char *u = cfg->public_url;
    const char *sep = strstr(u, "://");
    if (sep) {
        size_t n = (size_t)(sep + 3 - u) + strcspn(sep + 3, "/?#");
        if (strlen(origin) == n && strncasecmp(origin, u, n) == 0)
            return true;
    }
    return config_cors_allowed(cfg, origin, strlen(origin));
}

struct refresh_user {
    const char *raw;
    bool need_verified;
    struct realtime_identity who; /* the user and the session (family) */
};

/* The user of a live session, the way POST /auth/refresh would accept it
 * (active, verified when mail is on), without rotating the token. */
static int session_user(struct app *app, struct refresh_user *r)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    struct auth_user u;
    rc = auth_session_find(c, r->raw, r->who.user_id, r->who.credential_id);
    if (rc == LOCI_OK)
        rc = auth_user_by_id(c, r->who.user_id, &u);
    db_release(c);
    if (rc == LOCI_OK && (u.disabled_at || (r->need_verified && !u.email_verified_at)))
        rc = LOCI_EAUTH;
    if (rc != LOCI_OK)
        r->who.user_id[0] = '\0';
    return rc == LOCI_ENOTFOUND || rc == LOCI_EAUTH ? LOCI_OK : rc;
}

struct handover {
    struct realtime *rt;
    struct realtime_identity who; /* user "" until the auth message */
    int64_t since;
};

static void on_socket(int fd, const void *extra, size_t n, void *arg)
{
    struct handover *h = arg;
    if (fd >= 0)
        realtime_adopt(h->rt, fd, extra, n, h->who.user_id[0] ? &h->who : NULL, h->since);
    xfree(h);
}

static int upgrade_required(struct http_req *req, const char *why)
{
    http_set_header(req, "Upgrade", "websocket");
    http_set_header(req, "Sec-WebSocket-Version", "13");
    return http_reply_error_status(req, 426, "upgrade_required", NULL, why);
}

int api_ws(struct http_req *req)
{
    struct app *app = http_app(req);
    const struct config *cfg = app->cfg;
    const char *origin = http_header(req, "Origin");
    if (origin && !origin_allowed(req, cfg, origin))
        return http_reply_error_status(req, 403, "origin_refused", NULL,
                                       "this origin may not open a WebSocket here");
    const char *upgrade = http_header(req, "Upgrade");
    const char *connection = http_header(req, "Connection");
    if (!upgrade || !has_token(upgrade, "websocket") || !connection ||
        !has_token(connection, "upgrade"))
        return upgrade_required(req, "this is a WebSocket endpoint: send an upgrade request");
    const char *version = http_header(req, "Sec-WebSocket-Version");
    if (!version || strcmp(version, "13") != 0)
        return upgrade_required(req, "unsupported WebSocket version: use 13");
    char accept[29];
    if (realtime_ws_accept(http_header(req, "Sec-WebSocket-Key"), accept) != LOCI_OK)
        return http_reply_error(req, LOCI_EINVAL, NULL,
                                "Sec-WebSocket-Key must be 16 bytes in base64");
    const char *s = http_query(req, "since");
    long long since = -1;
    if (s && parse_int64(s, 0, MAX_SINCE, &since) != LOCI_OK)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "since",
                                "'since' must be an event offset: an integer >= 0");
    if (!app->rt)
        return http_reply_error(req, LOCI_EUNAVAILABLE, NULL, "realtime delivery is not running");
    if (http_is_tls(req)) /* the HTTP server cannot hand over a TLS socket */
        return http_reply_error(req, LOCI_EUNAVAILABLE, NULL,
                                "WebSockets need TLS ended by a proxy in front of Loci (nginx), "
                                "not tls_cert");
    if (realtime_is_full(app->rt)) {
        http_set_header(req, "Retry-After", "5");
        return http_reply_error(req, LOCI_EUNAVAILABLE, NULL,
                                "too many WebSocket connections; try again later");
    }
    struct refresh_user r = {.need_verified = app->is_mail_on};
    r.raw = http_cookie(req, "loci_refresh"); /* auth.c's name without TLS */
    if (r.raw) {
        int rc = session_user(app, &r);
        if (rc)
            return rc;
    }
    struct handover *h = xcalloc(1, sizeof(*h));
    h->rt = app->rt;
    h->since = since;
    h->who = r.who;
    if (r.who.user_id[0])
        http_set_log_user(req, r.who.user_id);
    http_set_header(req, "Upgrade", "websocket");
    http_set_header(req, "Sec-WebSocket-Accept", accept);
    int rc = http_reply_upgrade(req, on_socket, h);
    if (rc)
        xfree(h);
    return rc;
}

int api_ws_authenticate(void *arg, const char *token, struct realtime_identity *out)
{
    struct app *app = arg;
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    struct auth_principal p;
    rc = auth_authenticate(c, app->keys, app->cfg->public_url, "loci", token, clock_now_ms(), &p);
    db_release(c);
    if (rc == LOCI_OK) {
        snprintf(out->user_id, sizeof(out->user_id), "%s", p.user_id);
        snprintf(out->credential_id, sizeof(out->credential_id), "%s",
                 p.session_id[0] ? p.session_id : p.api_key_id);
    }
    return rc;
}

/* Events that end credentials (auth.c, me.c, admin.c write them). Every
 * access token of the user dies with a password change or reset, logout
 * everywhere, disabling or a role change (the token version moves), API
 * keys with the first three too; one session or key ends alone. */
enum realtime_revoke api_ws_revocation(void *arg, const struct event_view *ev,
                                       char out_credential[UUID_STR_LEN])
{
    (void)arg;
    static const char *const all[] = {"auth.sessions_revoked", "user.password_changed",
                                      "user.password_reset", "user.disabled", "user.role_changed"};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(ev->type, all[i]) == 0)
            return REALTIME_REVOKE_USER;
    }
    const char *field = NULL;
    if (strcmp(ev->type, "auth.logged_out") == 0 || strcmp(ev->type, "auth.session_revoked") == 0 ||
        strcmp(ev->type, "auth.refresh_reuse_detected") == 0)
        field = "session_id";
    else if (strcmp(ev->type, "api_key.revoked") == 0)
        field = "api_key_id";
    if (!field)
        return REALTIME_KEEP;
    json_error_t je;
    json_t *d = json_loadb(ev->data, ev->data_len, 0, &je);
    const char *id = json_string_value(json_object_get(d, field));
    enum realtime_revoke r;
    if (id && strlen(id) < UUID_STR_LEN) {
        snprintf(out_credential, UUID_STR_LEN, "%s", id);
        r = REALTIME_REVOKE_CREDENTIAL;
    } else {
        r = REALTIME_REVOKE_USER; /* cannot tell which: end them all, they can come back */
    }
    json_decref(d);
    return r;
}
