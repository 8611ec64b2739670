/*
 * guard.c - what runs before every handler: the client's address (through
 * trusted proxies only), authentication by access token or API key, roles
 * and scopes, and rate limits with their headers.
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/err.h"
#include "events/events.h"
#include "services/ratelimit/ratelimit.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const struct auth_principal *api_principal(struct http_req *req)
{
    return http_principal(req);
}

/* X-Forwarded-For is only believed from a trusted proxy; then the client is
 * the rightmost address that is not itself a trusted proxy. */
static void resolve_client_ip(struct http_req *req, const struct config *cfg)
{
    if (!cfg->trusted_proxies[0] || !config_is_trusted_proxy(cfg, http_client_ip(req)))
        return;
    const char *xff = http_header(req, "X-Forwarded-For");
    if (!xff)
        return;
    /* Walk the list from the right. */
    size_t end = strlen(xff);
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        size_t s0 = start, e0 = end;
        while (s0 < e0 && xff[s0] == ' ')
            s0++;
        while (e0 > s0 && xff[e0 - 1] == ' ')
            e0--;
        char ip[64];
        if (e0 == s0 || e0 - s0 >= 46)
            return;
        memcpy(ip, xff + s0, e0 - s0);
        ip[e0 - s0] = '\0';
        if (!config_is_trusted_proxy(cfg, ip)) {
            http_set_client_ip(req, ip);
            return;
        }
        end = start > 0 ? start - 1 : 0;
    }
}

static int unauthorized(struct http_req *req, const char *why)
{
    http_set_header(req, "WWW-Authenticate", "Bearer realm=\"loci\"");
    return http_reply_error(req, LOCI_EAUTH, NULL, "%s", why);
}

static int authenticate(struct http_req *req, struct app *app)
{
    const char *h = http_header(req, "Authorization");
    if (!h)
        return unauthorized(req, "sign in: send Authorization: Bearer <access token or API key>");
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return unauthorized(req, "the Authorization scheme must be Bearer");
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    struct auth_principal *p = arena_calloc(http_arena(req), sizeof(*p));
    rc = auth_authenticate(c, app->keys, app->cfg->public_url, "loci", token, clock_now_ms(), p);
    db_release(c);
    if (rc == LOCI_EAUTH)
        return unauthorized(req, "the access token or API key is invalid, expired or revoked");
    if (rc)
        return rc;
    http_set_principal(req, p);
    http_set_log_user(req, p->user_id);
    const struct http_route *r = http_route(req);
    if ((r->flags & HTTP_R_ADMIN) && strcmp(p->role, "admin") != 0)
        return http_reply_error(req, LOCI_EPERM, NULL, "this needs the admin role");
    unsigned m = http_method(req);
    if (!p->can_write && m != HTTP_GET && m != HTTP_HEAD)
        return http_reply_error_status(req, 403, "insufficient_scope", NULL,
                                       "this API key has the read scope only");
    return LOCI_OK;
}

static int limit(struct http_req *req, struct app *app, int rate_class)
{
    const struct config *cfg = app->cfg;
    struct rl_policy p;
    char key[128];
    const struct auth_principal *who = http_principal(req);
    if (rate_class == RATE_AUTH) {
        p = (struct rl_policy){"auth", cfg->rate_auth_per_min, 60, cfg->rate_auth_burst};
        snprintf(key, sizeof(key), "auth|%s", http_client_ip(req));
    } else {
        p = (struct rl_policy){"api", cfg->rate_api_per_min, 60, cfg->rate_api_burst};
        if (who)
            snprintf(key, sizeof(key), "api|u|%s", who->user_id);
        else
            snprintf(key, sizeof(key), "api|ip|%s", http_client_ip(req));
    }
    struct rl_result r;
    int rc = rl_take(app->limits, key, &p, clock_now_ms(), &r);
    if (rc)
        return LOCI_OK; /* a broken limiter must not take the API down */
    char v[96];
    snprintf(v, sizeof(v), "\"%s\";q=%d;w=60", p.name, p.limit);
    http_set_header(req, "RateLimit-Policy", v);
    int64_t reset_s = (r.reset_ms + 999) / 1000;
    snprintf(v, sizeof(v), "\"%s\";r=%d;t=%lld", p.name, r.remaining, (long long)reset_s);
    http_set_header(req, "RateLimit", v);
    if (r.is_allowed)
        return LOCI_OK;
    snprintf(v, sizeof(v), "%lld", (long long)((r.retry_after_ms + 999) / 1000));
    http_set_header(req, "Retry-After", v);
    return http_reply_error(req, LOCI_ERATELIMIT, NULL, "too many requests: retry in %s s", v);
}

int api_guard(struct http_req *req)
{
    struct app *app = http_app(req);
    const struct http_route *r = http_route(req);
    resolve_client_ip(req, app->cfg);
    if (r->rate_class == RATE_AUTH) {
        int rc = limit(req, app, RATE_AUTH);
        if (rc || http_has_reply(req))
            return rc;
    }
    if (r->flags & (HTTP_R_AUTH | HTTP_R_ADMIN)) {
        int rc = authenticate(req, app);
        if (rc || http_has_reply(req))
            return rc;
    }
    if (r->rate_class == RATE_API)
        return limit(req, app, RATE_API);
    return LOCI_OK;
}

int api_tx(struct http_req *req, api_tx_fn fn, void *arg)
{
    struct app *app = http_app(req);
    return db_tx(app->db, fn, arg);
}

int api_event(struct db_conn *c, const char *user_id, const char *type, json_t *data)
{
    int rc = events_append(c, user_id, type, data, NULL);
    json_decref(data);
    return rc;
}
