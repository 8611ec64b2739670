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
#include "services/bus/bus.h"
#include "services/ratelimit/ratelimit.h"

#include <arpa/inet.h>
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
    char xff[2048];
    if (http_header_join(req, "X-Forwarded-For", xff, sizeof(xff)) == 0)
        return;
    /* Walk the list from the right: each trusted proxy vouches for the
     * address left of it; the first untrusted address is the client. An
     * item that is not an IP address ends the walk (nothing left of it can
     * be believed), leaving the last proxy as the client. */
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
        unsigned char bin[16];
        if (e0 == s0 || e0 - s0 >= 46)
            return;
        memcpy(ip, xff + s0, e0 - s0);
        ip[e0 - s0] = '\0';
        if (inet_pton(AF_INET, ip, bin) != 1 && inet_pton(AF_INET6, ip, bin) != 1)
            return;
        if (!config_is_trusted_proxy(cfg, ip)) {
            http_set_client_ip(req, ip);
            return;
        }
        end = start > 0 ? start - 1 : 0;
    }
}

/* The key a client is limited by: its address, or for IPv6 its /64 (one
 * host usually owns a whole /64, so per-address keys would be free to
 * multiply). */
void api_client_key(struct http_req *req, char *out, size_t n)
{
    const char *ip = http_client_ip(req);
    unsigned char a[16];
    if (strchr(ip, ':') && inet_pton(AF_INET6, ip, a) == 1) {
        memset(a + 8, 0, 8);
        char net[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, a, net, sizeof(net));
        snprintf(out, n, "%s/64", net);
        return;
    }
    snprintf(out, n, "%s", ip);
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
        char who_ip[80];
        api_client_key(req, who_ip, sizeof(who_ip));
        snprintf(key, sizeof(key), "auth|%s", who_ip);
    } else {
        p = (struct rl_policy){"api", cfg->rate_api_per_min, 60, cfg->rate_api_burst};
        if (who)
            snprintf(key, sizeof(key), "api|u|%s", who->user_id);
        else {
            char who_ip[80];
            api_client_key(req, who_ip, sizeof(who_ip));
            snprintf(key, sizeof(key), "api|ip|%s", who_ip);
        }
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
    int rc = db_tx(app->db, fn, arg);
    if (rc == LOCI_OK && app->bus)
        bus_wake(app->bus); /* its events go out now, not at the next poll */
    return rc;
}

int api_event(struct db_conn *c, const char *user_id, const char *type, json_t *data)
{
    int rc = events_append(c, user_id, type, data, NULL);
    json_decref(data);
    return rc;
}
