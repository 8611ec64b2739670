/*
 * app.h - what every handler may reach: configuration, the store, process
 * facts. Built once by `loci serve` and shared read-only by all threads.
 */
#ifndef LOCI_API_APP_H
#define LOCI_API_APP_H

#include "api/http.h"
#include "core/config.h"
#include "core/ids.h"
#include "core/metrics.h"
#include "services/jobs/jobs.h"
#include "services/realtime/realtime.h"
#include "store/db.h"

#include <stdint.h>

/* Rate classes of the route table (guard.c applies them). */
enum api_rate_class {
    RATE_API = 0, /* per user, or per IP when anonymous */
    RATE_AUTH,    /* per client IP: sign-up, login, tokens */
    RATE_NONE,    /* health, metrics */
};

struct auth_keys;
struct ratelimit;
struct realtime;
struct ai;
struct ask_hub;
struct bus;
struct search;
struct docs;
struct blob_store;

struct app {
    const struct config *cfg;
    struct db *db;
    struct jobs *jobs;        /* wake workers after enqueueing */
    struct ai *ai;            /* the AI gateway: call it from jobs, never on HTTP threads */
    struct ask_hub *ask;      /* requests waiting for answers (ask.c) */
    struct bus *bus;          /* committed events, in order, to in-process subscribers */
    struct realtime *rt;      /* the WebSocket hub (GET /ws) */
    struct search *search;    /* passages: full text, vectors, hybrid (NULL: 503) */
    struct docs *docs;        /* learners' documents (NULL: 503) */
    struct blob_store *blobs; /* the documents' files */
    struct auth_keys *keys;
    struct ratelimit *limits; /* request rates */
    struct ratelimit *logins; /* login back-off, apart so request floods cannot evict it */
    bool is_mail_on;          /* smtp_url set: verification required, mail jobs run */
    int64_t started_ms;       /* wall clock at start */
    int64_t started_mono_ns;
    struct metric_series *m_rss; /* refreshed at each scrape */
    struct metric_series *m_fds;
};

/* The `before` hook: client IP, authentication, roles, scopes, rate
 * limits, by the matched route's flags and rate class. */
int api_guard(struct http_req *req);

/* Register the account job types (mail, token purge) and their schedules. */
int api_auth_register_jobs(struct app *app, char *err, size_t err_n);

/* ask.c: requests waiting for their answers. Create before the bus starts,
 * subscribe it, drain it when the HTTP server stops (http_server_opts
 * on_drain), free it after. */
struct ask_hub *api_ask_hub_new(const struct config *cfg);
void api_ask_hub_subscribe(struct ask_hub *h, struct bus *bus);
void api_ask_hub_drain(struct ask_hub *h);
void api_ask_hub_free(struct ask_hub *h);

/* The WebSocket hub's callbacks (arg: the struct app): an access token or
 * API key from a socket's auth message to who it is; which credentials an
 * event ends (logout, password change, key revoked...). */
int api_ws_authenticate(void *arg, const char *token, struct realtime_identity *out);
enum realtime_revoke api_ws_revocation(void *arg, const struct event_view *ev,
                                       char out_credential[UUID_STR_LEN]);

/* The production route table. */
extern const struct http_route api_routes[];
extern const size_t api_n_routes;

/* Static files of the web UI from cfg->web_dir, with SPA fallback; the
 * built-in "Loci is running" page when no UI is built. */
int api_static_serve(struct http_req *req);

/* Register process metrics (memory, fds, start time, build info). */
void api_metrics_init(struct app *app);

/* The embedded OpenAPI document. */
extern const char loci_openapi_json[];
extern const size_t loci_openapi_json_len;

#endif
