/*
 * ops.c - operational endpoints: liveness, detailed health, Prometheus
 * metrics, version, and the OpenAPI document.
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/metrics.h"
#include "services/ai/ai.h"
#include "version.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char health_ok[] = "{\"status\":\"ok\"}\n";

int api_health(struct http_req *req)
{
    /* Liveness touches nothing: if we can answer, we are alive. */
    return http_reply_bytes(req, 200, "application/json", health_ok, sizeof(health_ok) - 1, false);
}

int api_health_detailed(struct http_req *req)
{
    struct app *app = http_app(req);
    double ms = 0;
    int rc = db_ping(app->db, &ms);
    int64_t schema = 0;
    if (rc == LOCI_OK)
        rc = db_schema_version(app->db, &schema);
    json_t *db = json_object();
    json_object_set_new(db, "backend", json_string(db_backend_name(app->db)));
    json_object_set_new(db, "status", json_string(rc == LOCI_OK ? "up" : "down"));
    json_object_set_new(db, "latency_ms", json_real((double)(int64_t)(ms * 1000) / 1000.0));
    if (rc == LOCI_OK) {
        json_object_set_new(db, "schema_version", json_integer(schema));
        json_object_set_new(db, "schema_latest", json_integer(db_schema_latest(app->db)));
    }
    json_t *root = json_object();
    json_object_set_new(root, "status", json_string(rc == LOCI_OK ? "ok" : "degraded"));
    json_object_set_new(root, "version", json_string(LOCI_VERSION));
    json_object_set_new(root, "commit", json_string(LOCI_COMMIT));
    json_object_set_new(root, "uptime_seconds",
                        json_integer((clock_mono_ns() - app->started_mono_ns) / 1000000000LL));
    json_object_set_new(root, "database", db);
    if (app->ai) {
        /* Breaker states only: a health check never calls a model. */
        json_t *providers = json_array();
        const char *chain = ai_chain(app->ai);
        for (const char *p = chain; *p;) {
            size_t n = strcspn(p, ",");
            char name[16];
            snprintf(name, sizeof(name), "%.*s", (int)(n < 15 ? n : 15), p);
            json_array_append_new(providers, json_pack("{s:s, s:s}", "name", name, "breaker",
                                                       ai_breaker_state(app->ai, name)));
            p += n + (p[n] == ',');
        }
        json_object_set_new(root, "ai",
                            json_pack("{s:s, s:o}", "chain", chain, "providers", providers));
    }
    return http_reply_json(req, rc == LOCI_OK ? 200 : 503, root);
}

int api_metrics(struct http_req *req)
{
    struct buf b;
    buf_init(&b, 16u << 20);
    int rc = metrics_render(&b);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    size_t n = 0;
    char *text = buf_detach(&b, &n);
    rc = http_reply_bytes(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, n, true);
    xfree(text);
    return rc;
}

int api_version(struct http_req *req)
{
    json_t *root = json_object();
    json_object_set_new(root, "name", json_string("loci"));
    json_object_set_new(root, "version", json_string(LOCI_VERSION));
    json_object_set_new(root, "commit", json_string(LOCI_COMMIT));
    json_object_set_new(root, "api", json_string("v1"));
    return http_reply_json(req, 200, root);
}

int api_openapi(struct http_req *req)
{
    return http_reply_bytes(req, 200, "application/json", loci_openapi_json, loci_openapi_json_len,
                            false);
}

/* ---- process metrics ---- */

static void collect_process(void *arg)
{
    struct app *pm = arg;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long size = 0, resident = 0;
        if (fscanf(f, "%lu %lu", &size, &resident) == 2)
            metrics_set(pm->m_rss, (double)resident * (double)sysconf(_SC_PAGESIZE));
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] != '.')
                n++;
        }
        closedir(d);
        metrics_set(pm->m_fds, (double)(n - 1)); /* minus the fd of the listing itself */
    }
}

void api_metrics_init(struct app *app)
{
    app->m_rss = metrics_series(
        metrics_gauge("process_resident_memory_bytes", "Resident memory size in bytes", NULL),
        NULL);
    app->m_fds = metrics_series(
        metrics_gauge("process_open_fds", "Number of open file descriptors", NULL), NULL);
    metrics_set(
        metrics_series(metrics_gauge("process_start_time_seconds",
                                     "Start time of the process since the Unix epoch", NULL),
                       NULL),
        (double)app->started_ms / 1000.0);
    const char *bi[] = {LOCI_VERSION, LOCI_COMMIT, db_backend_name(app->db)};
    metrics_set(
        metrics_series(metrics_gauge("loci_build_info", "Build information; the value is always 1",
                                     "version,commit,backend"),
                       bi),
        1);
    metrics_add_collector(collect_process, app);
}
