/*
 * main.c - the `loci` command: flags and subcommands. Everything here is
 * wiring; the work happens in the layers below.
 *
 *   loci serve      run the server
 *   loci migrate    apply database migrations and exit
 *   loci config     print the effective configuration (secrets masked)
 *   loci ai test    check the AI provider chain and time each provider
 *   loci import     import a folder of Markdown notes for a user
 *   loci routes     print the route table (method, path, summary) as JSON
 *   loci version    print the version
 *
 * Exit status: 0 success, 1 runtime failure, 2 bad usage or configuration.
 */
#include "api/app.h"
#include "api/http.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "auth/auth.h"
#include "events/events.h"
#include "graph/graph.h"
#include "learn/cluster.h"
#include "learn/quiz.h"
#include "learn/learn.h"
#include "convo/convo.h"
#include "docs/docs.h"
#include "services/ai/ai.h"
#include "services/blob/blob.h"
#include "services/bus/bus.h"
#include "services/jobs/jobs.h"
#include "services/mail/mail.h"
#include "services/ratelimit/ratelimit.h"
#include "services/realtime/realtime.h"
#include "search/search.h"
#include "store/db.h"
#include "version.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define EXIT_USAGE 2

#define MAX_POS  8
#define MAX_OPTS 8

/* What a command gets besides the configuration: positional arguments and
 * its own options (flags that are not configuration keys). */
struct cli {
    int n_pos;
    const char *pos[MAX_POS];
    int n_opts;
    char opt_names[MAX_OPTS][64];
    const char *opt_values[MAX_OPTS];
};

static const char *cli_opt(const struct cli *cli, const char *name)
{
    for (int i = 0; i < cli->n_opts; i++) {
        if (strcmp(cli->opt_names[i], name) == 0)
            return cli->opt_values[i];
    }
    return NULL;
}

struct command {
    const char *name;
    int (*run)(struct config *cfg, struct cli *cli);
    bool needs_config;
    int max_pos;         /* positional arguments accepted */
    const char *options; /* comma-separated own options, e.g. "status,type" */
    const char *usage;
    const char *summary;
};

static int cmd_serve(struct config *cfg, struct cli *cli);
static int cmd_migrate(struct config *cfg, struct cli *cli);
static int cmd_config(struct config *cfg, struct cli *cli);
static int cmd_routes(struct config *cfg, struct cli *cli);
static int cmd_version(struct config *cfg, struct cli *cli);
static int cmd_jobs(struct config *cfg, struct cli *cli);
static int cmd_user(struct config *cfg, struct cli *cli);
static int cmd_ai(struct config *cfg, struct cli *cli);
static int cmd_import(struct config *cfg, struct cli *cli);

static const struct command commands[] = {
    {"serve", cmd_serve, true, 0, NULL, "", "run the HTTP server (migrates the database first)"},
    {"migrate", cmd_migrate, true, 0, NULL, "", "apply database migrations and exit"},
    {"config", cmd_config, true, 0, NULL, "", "print the effective configuration, secrets masked"},
    {"jobs", cmd_jobs, true, 2, "status,type,limit",
     "ls [--status S] [--type T] [--limit N] | show ID | retry ID | cancel ID",
     "list, inspect, retry and cancel background jobs"},
    {"user", cmd_user, true, 3, "admin!,name",
     "add EMAIL [--admin] [--name NAME] | set-role EMAIL user|admin | disable EMAIL | "
     "enable EMAIL",
     "manage accounts (add reads the password from standard input)"},
    {"ai", cmd_ai, true, 1, "json!", "test [--json]",
     "check the AI provider chain: what answers, and how fast"},
    {"import", cmd_import, true, 1, "user", "DIR --user EMAIL",
     "import a folder of Markdown notes (an Obsidian vault) for a user; again: changed notes only"},
    {"routes", cmd_routes, false, 0, NULL, "", "print the API route table as JSON"},
    {"version", cmd_version, false, 0, NULL, "", "print the version"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: loci <command> [--key value ...] [--config FILE]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'loci <command> --help' lists the configuration keys.\n");
}

static void command_help(const struct command *c)
{
    printf("usage: loci %s %s%s[--key value ...] [--config FILE]\n\n%s\n", c->name, c->usage,
           c->usage[0] ? " " : "", c->summary);
    if (!c->needs_config)
        return;
    struct buf b;
    buf_init(&b, 1 << 20);
    config_print_help(&b);
    printf("\nconfiguration (flag, environment, default); precedence: flag > env > file > "
           "default:\n  %-22s %-26s\n      %s\n%s",
           "--config FILE", "", "read `key = value` lines from FILE", buf_cstr(&b));
    buf_release(&b);
}

/* 0: not an option of cmd; 1: takes a value; 2: a switch ("name!"). */
static int own_option(const struct command *cmd, const char *name)
{
    if (!cmd->options)
        return 0;
    size_t n = strlen(name);
    for (const char *p = cmd->options; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool is_switch = len > 0 && p[len - 1] == '!';
        if ((is_switch ? len - 1 : len) == n && strncmp(p, name, n) == 0)
            return is_switch ? 2 : 1;
        p += len + (comma ? 1 : 0);
    }
    return 0;
}

/* Flags > env > file > defaults: collect flags first, then apply in order. */
static int load_config(const struct command *cmd, struct config *cfg, struct cli *cli, int argc,
                       char **argv)
{
    const char *file = NULL;
    char err[640];
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
    }
    if (file && config_load_file(cfg, file, err, sizeof(err))) {
        fprintf(stderr, "loci: %s\n", err);
        return EXIT_USAGE;
    }
    if (config_load_env(cfg, err, sizeof(err))) {
        fprintf(stderr, "loci: %s\n", err);
        return EXIT_USAGE;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            if (cli->n_pos >= cmd->max_pos || cli->n_pos >= MAX_POS) {
                fprintf(stderr, "loci: unexpected argument '%s'\n", a);
                return EXIT_USAGE;
            }
            cli->pos[cli->n_pos++] = a;
            continue;
        }
        char name[64];
        const char *value = NULL;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (n >= sizeof(name)) {
            fprintf(stderr, "loci: unknown flag '%s'\n", a);
            return EXIT_USAGE;
        }
        memcpy(name, a + 2, n);
        name[n] = '\0';
        if (!eq && own_option(cmd, name) == 2 && cli->n_opts < MAX_OPTS) {
            snprintf(cli->opt_names[cli->n_opts], sizeof(cli->opt_names[0]), "%s", name);
            cli->opt_values[cli->n_opts++] = "true";
            continue;
        }
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "loci: flag '%s' needs a value\n", a);
            return EXIT_USAGE;
        }
        if (strcmp(name, "config") == 0)
            continue;
        if (own_option(cmd, name) && cli->n_opts < MAX_OPTS) {
            snprintf(cli->opt_names[cli->n_opts], sizeof(cli->opt_names[0]), "%s", name);
            cli->opt_values[cli->n_opts++] = value;
            continue;
        }
        const char *key = config_key_for_flag(name);
        if (!key) {
            fprintf(stderr, "loci: unknown flag '--%s' (see 'loci serve --help')\n", name);
            return EXIT_USAGE;
        }
        if (config_set(cfg, key, value, CFG_SRC_FLAG, err, sizeof(err))) {
            fprintf(stderr, "loci: %s\n", err);
            return EXIT_USAGE;
        }
    }
    if (config_finish(cfg, err, sizeof(err))) {
        fprintf(stderr, "loci: %s\n", err);
        return EXIT_USAGE;
    }
    log_set_level(cfg->log_level);
    return 0;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int open_and_migrate(struct config *cfg, struct db **out)
{
    char err[1024];
    if (mkdir_p(cfg->data_dir) != 0) {
        log_error(NULL, "cannot create data directory '%s': %s", cfg->data_dir, strerror(errno));
        return 1;
    }
    struct db *db = NULL;
    if (db_open(cfg->database_url, cfg->db_pool_size, &db, err, sizeof(err))) {
        log_error(NULL, "%s", err);
        return 1;
    }
    int applied = 0;
    int rc = db_migrate(db, &applied, err, sizeof(err));
    if (rc) {
        log_error(NULL, "%s", err);
        db_close(db);
        return 1;
    }
    int64_t version = 0;
    db_schema_version(db, &version);
    log_line(NULL, LOG_INFO, "database ready",
             (struct log_field[]){LF_STR("backend", db_backend_name(db)),
                                  LF_INT("schema_version", version),
                                  LF_INT("migrations_applied", applied)},
             3);
    *out = db;
    return 0;
}

static int cmd_migrate(struct config *cfg, struct cli *cli)
{
    (void)cli;
    struct db *db = NULL;
    int rc = open_and_migrate(cfg, &db);
    db_close(db);
    return rc;
}

static void wake_bus(void *bus)
{
    bus_wake(bus);
}

/* Every job type and schedule of the product; config overrides last. */
static int register_jobs(struct app *app, char *err, size_t err_n)
{
    const struct config *cfg = app->cfg;
    int rc = jobs_register_maintenance(app->jobs, cfg->jobs_retention_days, err, err_n);
    if (rc == LOCI_OK)
        rc = api_auth_register_jobs(app, err, err_n);
    if (rc == LOCI_OK)
        rc = ai_register_jobs(app->jobs, app->db, err, err_n);
    if (rc == LOCI_OK && (rc = graph_register_jobs(app->jobs, app->ai)) != LOCI_OK)
        snprintf(err, err_n, "cannot register the graph jobs");
    if (rc == LOCI_OK)
        convo_register_jobs(app->jobs, app->ai, app->search, wake_bus, app->bus);
    if (rc == LOCI_OK && app->docs)
        docs_register_jobs(app->docs, app->jobs);
    if (rc == LOCI_OK)
        rc = learn_cluster_register_jobs(app->jobs, err, err_n);
    if (rc == LOCI_OK)
        learn_quiz_register_jobs(app->jobs, app->ai);
    if (rc == LOCI_OK)
        rc = learn_register_jobs(app->jobs, cfg, err, err_n);
    if (rc == LOCI_OK)
        rc = jobs_schedule_overrides(app->jobs, cfg->schedules, err, err_n);
    return rc;
}

/* The documents service on data_dir/blobs. search, jobs and bus may be
 * NULL (`loci import`). */
static int open_docs(const struct config *cfg, struct db *db, struct ai *ai, struct search *search,
                     struct jobs *jobs, struct bus *bus, struct blob_store **out_blobs,
                     struct docs **out)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/blobs", cfg->data_dir);
    if (blob_local_new(dir, out_blobs) != LOCI_OK) {
        fprintf(stderr, "loci: cannot use the blob directory '%s': %s\n", dir, strerror(errno));
        return 1;
    }
    *out = docs_new(&(struct docs_opts){
        .db = db,
        .ai = ai,
        .search = search,
        .blobs = *out_blobs,
        .jobs = jobs,
        .wake = bus ? wake_bus : NULL,
        .wake_arg = bus,
        .max_bytes = cfg->docs_max_bytes,
        .quota_bytes = cfg->docs_quota_bytes,
        .max_pages = cfg->docs_max_pages,
        .parse_timeout_ms = cfg->parse_timeout_ms,
        .parse_memory_mb = cfg->parse_memory_mb,
    });
    return 0;
}

static int print_json(json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(v);
    if (!text)
        return 1;
    puts(text);
    xfree(text);
    return 0;
}

static int cmd_jobs(struct config *cfg, struct cli *cli)
{
    const char *verb = cli->n_pos > 0 ? cli->pos[0] : "ls";
    const char *id = cli->n_pos > 1 ? cli->pos[1] : NULL;
    bool needs_id = strcmp(verb, "ls") != 0;
    if ((strcmp(verb, "ls") && strcmp(verb, "show") && strcmp(verb, "retry") &&
         strcmp(verb, "cancel")) ||
        (needs_id && !id) || (!needs_id && id)) {
        fprintf(stderr, "usage: loci jobs ls [--status S] [--type T] [--limit N] | show ID | "
                        "retry ID | cancel ID\n");
        return EXIT_USAGE;
    }
    const char *status = cli_opt(cli, "status");
    if (status && !jobs_status_valid(status)) {
        fprintf(stderr,
                "loci: invalid --status '%s': expected queued, running, completed, dead "
                "or cancelled\n",
                status);
        return EXIT_USAGE;
    }
    long long limit = 50;
    const char *lim = cli_opt(cli, "limit");
    if (lim && parse_int64(lim, 1, 500, &limit)) {
        fprintf(stderr, "loci: invalid --limit '%s': expected 1 to 500\n", lim);
        return EXIT_USAGE;
    }
    struct db *db = NULL;
    char err[512];
    if (db_open(cfg->database_url, 2, &db, err, sizeof(err))) {
        fprintf(stderr, "loci: %s\n", err);
        return 1;
    }
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    json_t *out = NULL;
    if (rc == LOCI_OK) {
        if (strcmp(verb, "ls") == 0)
            rc = jobs_list(c, status, cli_opt(cli, "type"), NULL, (int)limit, &out);
        else if (strcmp(verb, "show") == 0)
            rc = jobs_get(c, id, NULL, true, &out);
        else if (strcmp(verb, "retry") == 0)
            rc = jobs_retry(c, id);
        else
            rc = jobs_cancel(c, id);
        db_release(c);
    }
    db_close(db);
    if (rc == LOCI_ENOTFOUND) {
        fprintf(stderr, "loci: no job '%s'\n", id ? id : "");
        return 1;
    }
    if (rc == LOCI_ECONFLICT) {
        fprintf(stderr, "loci: job '%s' cannot be %s in its current state\n", id,
                strcmp(verb, "retry") == 0 ? "retried" : "cancelled");
        return 1;
    }
    if (rc) {
        fprintf(stderr, "loci: %s\n", loci_err_message(rc));
        return 1;
    }
    if (out)
        return print_json(out);
    printf("%s %s\n",
           verb == NULL                 ? ""
           : strcmp(verb, "retry") == 0 ? "requeued"
                                        : "cancelled",
           id);
    return 0;
}

/* A fresh instance with no admin prints a one-time link (to stdout, never
 * to the log) that creates the first admin within an hour. */
static int offer_setup(struct app *app)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    bool has_admin = true;
    rc = auth_admin_exists(c, &has_admin);
    char token[AUTH_TOKEN_LEN] = "";
    if (rc == LOCI_OK && !has_admin) {
        rc = db_begin(c);
        if (rc == LOCI_OK)
            rc = auth_token_create(c, NULL, "setup", 3600 * 1000, clock_now_ms(), token);
        if (rc == LOCI_OK)
            rc = db_commit(c);
        else
            db_rollback(c);
    }
    db_release(c);
    if (rc == LOCI_OK && token[0]) {
        printf("\nLoci has no administrator yet. Within the next hour, create the first one:\n"
               "  open  %s/setup?token=%s\n"
               "  or    curl -X POST %s/api/v1/auth/setup -H 'Content-Type: application/json' \\\n"
               "          -d '{\"token\":\"%s\",\"email\":\"you@example.com\","
               "\"password\":\"...\"}'\n"
               "  or    loci user add you@example.com --admin\n\n",
               app->cfg->public_url, token, app->cfg->public_url, token);
        fflush(stdout);
    }
    memset(token, 0, sizeof(token));
    return rc;
}

static void app_release(struct app *app, bool can_close_db)
{
    jobs_free(app->jobs);
    docs_free(app->docs); /* after the workers that process documents */
    blob_store_free(app->blobs);
    rl_free(app->limits);
    rl_free(app->logins);
    auth_keys_free(app->keys);
    realtime_stop(app->rt);
    bus_free(app->bus); /* before the hub and the search cache it delivers to */
    realtime_free(app->rt);
    search_free(app->search);
    api_ask_hub_free(app->ask);
    ai_free(app->ai);
    if (can_close_db)
        db_close(app->db);
}

static void drain_waiters(void *app)
{
    api_ask_hub_drain(((struct app *)app)->ask);
}

static int cmd_serve(struct config *cfg, struct cli *cli)
{
    (void)cli;
    /* Block the stop signals in every thread; main waits for them below. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct app app = {0};
    app.cfg = cfg;
    app.started_ms = clock_now_ms();
    app.started_mono_ns = clock_mono_ns();
    app.is_mail_on = cfg->smtp_url[0] != '\0';
    int rc = open_and_migrate(cfg, &app.db);
    if (rc)
        return rc;
    char err[512];
    if (auth_keys_load(cfg->data_dir, cfg->jwt_keys, &app.keys, err, sizeof(err))) {
        fprintf(stderr, "loci: %s\n", err);
        app_release(&app, true);
        return EXIT_USAGE;
    }
    if (ai_new(cfg, app.db, &app.ai, err, sizeof(err))) {
        fprintf(stderr, "loci: %s\n", err);
        app_release(&app, true);
        return EXIT_USAGE;
    }
    app.search = search_new(app.db, app.ai, (size_t)cfg->search_cache_bytes);
    app.bus = bus_new(app.db, cfg->bus_poll_ms);
    search_subscribe(app.search, app.bus);
    app.ask = api_ask_hub_new(cfg);
    api_ask_hub_subscribe(app.ask, app.bus);
    app.rt = realtime_new(&(struct realtime_opts){
        .db = app.db,
        .authenticate = api_ws_authenticate,
        .revocation = api_ws_revocation,
        .auth_arg = &app,
        .ping_interval_ms = cfg->ws_ping_interval_ms,
        .auth_timeout_ms = cfg->ws_auth_timeout_ms,
        .max_frame_bytes = (size_t)cfg->ws_max_frame_bytes,
        .send_queue_bytes = (size_t)cfg->ws_send_queue_bytes,
        .max_connections = cfg->ws_max_connections,
    });
    if (!app.rt || bus_subscribe(app.bus, realtime_on_event, app.rt) != LOCI_OK) {
        fprintf(stderr, "loci: cannot set up the WebSocket hub\n");
        app_release(&app, true);
        return 1;
    }
    app.limits = rl_new_memory(200000);
    app.logins = rl_new_memory(200000);
    app.jobs = jobs_new(app.db, &(struct jobs_opts){
                                    .workers = cfg->jobs_workers,
                                    .lease_ms = cfg->jobs_lease_ms,
                                    .poll_ms = cfg->jobs_poll_ms,
                                    .backoff_base_ms = cfg->jobs_backoff_base_ms,
                                    .backoff_cap_ms = cfg->jobs_backoff_cap_ms,
                                    .run_scheduler = true,
                                });
    if (open_docs(cfg, app.db, app.ai, app.search, app.jobs, app.bus, &app.blobs, &app.docs)) {
        app_release(&app, true);
        return 1;
    }
    if (register_jobs(&app, err, sizeof(err)) != LOCI_OK) {
        fprintf(stderr, "loci: %s\n", err);
        app_release(&app, true);
        return EXIT_USAGE;
    }
    rc = jobs_start(app.jobs);
    if (rc == LOCI_OK && (rc = realtime_start(app.rt)) != LOCI_OK)
        jobs_stop(app.jobs, 0);
    if (rc == LOCI_OK && (rc = bus_start(app.bus)) != LOCI_OK)
        jobs_stop(app.jobs, 0);
    if (rc != LOCI_OK) {
        log_error(NULL, "cannot start the job workers or the event bus: %s", loci_err_message(rc));
        app_release(&app, true);
        return 1;
    }
    api_metrics_init(&app);

    struct http_server_opts opts = {
        .cfg = cfg,
        .routes = api_routes,
        .n_routes = api_n_routes,
        .fallback = api_static_serve,
        .before = api_guard,
        .app = &app,
        .on_drain = drain_waiters,
    };
    struct http_server *srv = NULL;
    if (http_server_start(&opts, &srv, err, sizeof(err))) {
        log_error(NULL, "%s", err);
        jobs_stop(app.jobs, 0);
        app_release(&app, true);
        return 1;
    }
    char url[300];
    bool v6 = strchr(cfg->listen, ':') != NULL;
    snprintf(url, sizeof(url), "%s://%s%s%s:%d", cfg->tls_cert[0] ? "https" : "http", v6 ? "[" : "",
             cfg->listen, v6 ? "]" : "", http_server_port(srv));
    unsigned long long ops = 0;
    size_t mem = 0;
    auth_password_params(&ops, &mem);
    log_line(NULL, LOG_INFO, "listening",
             (struct log_field[]){
                 LF_STR("url", url), LF_STR("public_url", cfg->public_url),
                 LF_STR("version", LOCI_VERSION), LF_INT("http_threads", cfg->http_threads),
                 LF_INT("job_workers", cfg->jobs_workers),
                 LF_STR("backend", db_backend_name(app.db)), LF_BOOL("mail", app.is_mail_on),
                 LF_STR("ai", ai_chain(app.ai)), LF_INT("argon2id_ops", (int64_t)ops),
                 LF_INT("argon2id_mem_kib", (int64_t)(mem / 1024))},
             10);
    if (offer_setup(&app) != LOCI_OK)
        log_warn(NULL, "cannot create the first-admin setup token");

    int sig = 0;
    sigwait(&stop, &sig);
    log_line(NULL, LOG_INFO, "shutting down",
             (struct log_field[]){LF_STR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
                                  LF_INT("in_flight", http_server_in_flight(srv)),
                                  LF_INT("deadline_ms", cfg->shutdown_timeout_ms)},
             3);
    int64_t t0 = clock_mono_ns();
    int left = http_server_stop(srv, cfg->shutdown_timeout_ms);
    realtime_stop(app.rt); /* after HTTP (no socket comes any more), before the bus */
    int spent_ms = (int)((clock_mono_ns() - t0) / 1000000);
    int budget = cfg->shutdown_timeout_ms > spent_ms ? cfg->shutdown_timeout_ms - spent_ms : 0;
    int released = jobs_stop(app.jobs, budget);
    log_line(NULL, LOG_INFO, "stopped",
             (struct log_field[]){LF_INT("abandoned_requests", left),
                                  LF_INT("released_jobs", released),
                                  LF_INT("stuck_job_threads", jobs_detached(app.jobs))},
             3);
    if (jobs_detached(app.jobs) > 0) {
        /* A handler is still running on a detached thread: it may be using
         * the database or libcurl, so nothing may be torn down under it. The
         * leases are released; exit now. */
        fflush(stdout);
        _exit(0);
    }
    app_release(&app, true);
    return 0;
}

/* ---- loci ai ---- */

static int cmd_ai(struct config *cfg, struct cli *cli)
{
    if (cli->n_pos != 1 || strcmp(cli->pos[0], "test") != 0) {
        fprintf(stderr, "usage: loci ai test [--json]\n");
        return EXIT_USAGE;
    }
    struct ai *ai = NULL;
    char err[512];
    if (ai_new(cfg, NULL, &ai, err, sizeof(err))) {
        fprintf(stderr, "loci: %s\n", err);
        return EXIT_USAGE;
    }
    json_t *report = NULL;
    int rc = ai_check(ai, &report);
    ai_free(ai);
    if (rc) {
        fprintf(stderr, "loci: %s\n", loci_err_message(rc));
        return 1;
    }
    bool ok = json_is_true(json_object_get(report, "ok"));
    if (cli_opt(cli, "json"))
        return print_json(report) || !ok;
    printf("AI chain: %s\n\n%-8s %-8s %-5s %9s  %s\n",
           json_string_value(json_object_get(report, "chain")), "provider", "check", "", "ms",
           "detail");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(report, "checks"), i, c)
    {
        printf("%-8s %-8s %-5s %9.1f  %s\n", json_string_value(json_object_get(c, "provider")),
               json_string_value(json_object_get(c, "check")),
               json_is_true(json_object_get(c, "ok")) ? "ok" : "FAIL",
               json_real_value(json_object_get(c, "ms")),
               json_string_value(json_object_get(c, "detail")));
    }
    printf("\n%s\n", ok ? "all checks passed" : "some checks failed");
    json_decref(report);
    return ok ? 0 : 1;
}

/* ---- loci import ---- */

struct import_ui {
    bool is_tty;
    int failed_shown;
};

static void import_progress(void *arg, int done, int total, const char *path, const char *what)
{
    struct import_ui *ui = arg;
    if (!ui->is_tty) {
        printf("%-9s %s\n", what, path);
        fflush(stdout);
        return;
    }
    if (strcmp(what, "failed") == 0)
        fprintf(stderr, "\r\033[Kfailed    %s\n", path);
    int width = 30, filled = total > 0 ? done * width / total : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    size_t n = strlen(path);
    fprintf(stderr, "\r\033[K[%s] %d/%d %s%.40s", bar, done, total, n > 40 ? "..." : "",
            n > 40 ? path + n - 40 : path);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

static int cmd_import(struct config *cfg, struct cli *cli)
{
    const char *email_in = cli_opt(cli, "user");
    if (cli->n_pos != 1 || !email_in) {
        fprintf(stderr, "usage: loci import DIR --user EMAIL\n");
        return EXIT_USAGE;
    }
    const char *dir = cli->pos[0];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "loci: '%s' is not a directory\n", dir);
        return EXIT_USAGE;
    }
    char email[AUTH_EMAIL_MAX + 1];
    if (auth_email_normalize(email_in, email)) {
        fprintf(stderr, "loci: '%s' is not a valid email address\n", email_in);
        return EXIT_USAGE;
    }
    struct db *db = NULL;
    int rc = open_and_migrate(cfg, &db);
    if (rc)
        return rc;
    struct auth_user u;
    struct db_conn *c = NULL;
    rc = db_acquire(db, &c);
    if (rc == LOCI_OK) {
        rc = auth_user_by_email(c, email, &u);
        db_release(c);
    }
    if (rc) {
        fprintf(stderr, "loci: %s\n",
                rc == LOCI_ENOTFOUND ? "no user with that email" : loci_err_message(rc));
        db_close(db);
        return 1;
    }
    char err[512];
    struct ai *ai = NULL;
    struct blob_store *blobs = NULL;
    struct docs *docs = NULL;
    if (ai_new(cfg, db, &ai, err, sizeof(err))) {
        fprintf(stderr, "loci: %s\n", err);
        db_close(db);
        return EXIT_USAGE;
    }
    rc = open_docs(cfg, db, ai, NULL, NULL, NULL, &blobs, &docs);
    struct docs_import_stats stats;
    memset(&stats, 0, sizeof(stats));
    if (rc == 0) {
        struct import_ui ui = {.is_tty = isatty(STDERR_FILENO) && isatty(STDOUT_FILENO)};
        int64_t t0 = clock_mono_ns();
        rc = docs_import_dir(docs, u.id, dir, import_progress, &ui, &stats);
        double secs = (double)(clock_mono_ns() - t0) / 1e9;
        if (rc)
            fprintf(stderr, "loci: import stopped: %s\n", loci_err_message(rc));
        printf("imported %d, unchanged %d, failed %d; %d links; %.1f s\n", stats.imported,
               stats.unchanged, stats.failed, stats.links, secs);
        rc = rc || stats.failed > 0 ? 1 : 0;
    }
    docs_free(docs);
    blob_store_free(blobs);
    ai_free(ai);
    db_close(db);
    return rc;
}

/* ---- loci user ---- */

static int read_password(const char *prompt, char *out, size_t n)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    bool ok = fgets(out, (int)n, stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fprintf(stderr, "\n");
    }
    if (!ok)
        return LOCI_EINVAL;
    out[strcspn(out, "\r\n")] = '\0';
    return LOCI_OK;
}

struct user_cmd {
    const char *verb;
    const char *email;
    const char *arg; /* role */
    const char *hash;
    const char *name;
    bool is_admin;
    struct auth_user u;
};

static int tx_user_cmd(struct db_conn *c, void *arg)
{
    struct user_cmd *u = arg;
    int rc;
    if (strcmp(u->verb, "add") == 0) {
        rc = auth_user_create(c, u->email, u->hash, u->is_admin ? "admin" : "user", u->name, true,
                              &u->u);
        if (rc == LOCI_OK)
            rc = events_append(c, u->u.id, "user.signed_up",
                               json_pack("{s:s, s:s}", "role", u->u.role, "via", "cli"), NULL);
        return rc;
    }
    rc = auth_user_by_email(c, u->email, &u->u);
    if (rc)
        return rc;
    json_t *data = NULL;
    const char *type = NULL;
    if (strcmp(u->verb, "set-role") == 0) {
        rc = auth_user_set_role(c, u->u.id, u->arg);
        data = json_pack("{s:s, s:s, s:s}", "from", u->u.role, "to", u->arg, "by", "cli");
        type = "user.role_changed";
    } else {
        bool off = strcmp(u->verb, "disable") == 0;
        int64_t n = 0;
        rc = auth_user_set_disabled(c, u->u.id, off);
        if (rc == LOCI_OK && off)
            rc = auth_session_revoke_all(c, u->u.id, NULL, &n);
        data = json_pack("{s:s, s:I}", "by", "cli", "sessions_revoked", (json_int_t)n);
        type = off ? "user.disabled" : "user.enabled";
    }
    if (rc == LOCI_OK)
        rc = events_append(c, u->u.id, type, data, NULL);
    json_decref(data);
    return rc;
}

static int cmd_user(struct config *cfg, struct cli *cli)
{
    const char *verb = cli->n_pos > 0 ? cli->pos[0] : "";
    const char *email_in = cli->n_pos > 1 ? cli->pos[1] : NULL;
    bool is_add = strcmp(verb, "add") == 0, is_role = strcmp(verb, "set-role") == 0;
    bool is_toggle = strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0;
    if (!email_in || !(is_add || is_role || is_toggle) || (is_role != (cli->n_pos == 3)) ||
        (!is_role && cli->n_pos != 2)) {
        fprintf(stderr, "usage: loci user add EMAIL [--admin] [--name NAME] | set-role EMAIL "
                        "user|admin | disable EMAIL | enable EMAIL\n");
        return EXIT_USAGE;
    }
    struct user_cmd u = {.verb = verb, .arg = is_role ? cli->pos[2] : NULL};
    char email[AUTH_EMAIL_MAX + 1];
    if (auth_email_normalize(email_in, email)) {
        fprintf(stderr, "loci: '%s' is not a valid email address\n", email_in);
        return EXIT_USAGE;
    }
    u.email = email;
    if (is_role && strcmp(u.arg, "user") != 0 && strcmp(u.arg, "admin") != 0) {
        fprintf(stderr, "loci: the role must be 'user' or 'admin'\n");
        return EXIT_USAGE;
    }
    char hash[AUTH_HASH_MAX] = "";
    if (is_add) {
        const char *admin = cli_opt(cli, "admin");
        bool b = false;
        if (admin && parse_bool(admin, &b)) {
            fprintf(stderr, "loci: --admin takes true or false\n");
            return EXIT_USAGE;
        }
        u.is_admin = b;
        u.name = cli_opt(cli, "name") ? cli_opt(cli, "name") : "";
        if (auth_display_name_check(u.name)) {
            fprintf(stderr, "loci: --name must be one line of at most %d characters\n",
                    AUTH_NAME_MAX);
            return EXIT_USAGE;
        }
        char pw[AUTH_PASSWORD_MAX * 4 + 2];
        if (read_password("password: ", pw, sizeof(pw)) ||
            auth_password_policy(pw, strlen(pw)) != LOCI_OK) {
            fprintf(stderr,
                    "loci: the password must be %d to %d characters (read from standard "
                    "input)\n",
                    AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX);
            return EXIT_USAGE;
        }
        int hrc = auth_password_hash(pw, strlen(pw), hash);
        memset(pw, 0, sizeof(pw));
        if (hrc)
            return 1;
        u.hash = hash;
    }
    struct db *db = NULL;
    int rc = open_and_migrate(cfg, &db);
    if (rc)
        return rc;
    rc = db_tx(db, tx_user_cmd, &u);
    db_close(db);
    if (rc == LOCI_ECONFLICT) {
        fprintf(stderr, "loci: a user with email '%s' already exists\n", email);
        return 1;
    }
    if (rc == LOCI_ENOTFOUND) {
        fprintf(stderr, "loci: no user with email '%s'\n", email);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "loci: %s\n", loci_err_message(rc));
        return 1;
    }
    printf("%s %s (%s)\n",
           is_add    ? "created"
           : is_role ? "updated"
                     : verb,
           email,
           is_add    ? u.is_admin ? "admin" : "user"
           : is_role ? u.arg
                     : "");
    return 0;
}

static int cmd_config(struct config *cfg, struct cli *cli)
{
    (void)cli;
    struct buf b;
    buf_init(&b, 1 << 20);
    config_print(cfg, &b);
    fputs(buf_cstr(&b), stdout);
    buf_release(&b);
    return 0;
}

static int cmd_routes(struct config *cfg, struct cli *cli)
{
    (void)cli;
    (void)cfg;
    json_t *arr = json_array();
    for (size_t i = 0; i < api_n_routes; i++) {
        const struct http_route *r = &api_routes[i];
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:s}", "method", http_method_name(r->method),
                                        "path", r->path, "summary", r->summary ? r->summary : ""));
    }
    char *text = json_dumps(arr, JSON_INDENT(2));
    json_decref(arr);
    if (!text)
        return 1;
    puts(text);
    xfree(text);
    return 0;
}

static int cmd_version(struct config *cfg, struct cli *cli)
{
    (void)cli;
    (void)cfg;
    printf("loci %s (%s)\n", LOCI_VERSION, LOCI_COMMIT);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, argv[1]) == 0)
            cmd = &commands[i];
    }
    if (!cmd) {
        fprintf(stderr, "loci: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            command_help(cmd);
            return 0;
        }
    }
    struct config cfg;
    config_init(&cfg);
    struct cli cli;
    memset(&cli, 0, sizeof(cli));
    int rc = 0;
    if (cmd->needs_config)
        rc = load_config(cmd, &cfg, &cli, argc - 2, argv + 2);
    else if (argc > 2) {
        fprintf(stderr, "loci: '%s' takes no arguments\n", cmd->name);
        rc = EXIT_USAGE;
    }
    if (rc == 0) {
        mail_global_init();
        rc = cmd->run(&cfg, &cli);
        mail_global_cleanup();
    }
    config_release(&cfg);
    metrics_shutdown();
    return rc;
}
