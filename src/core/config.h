/*
 * config.h - the effective configuration of a Loci process.
 *
 * Sources, lowest to highest precedence: built-in defaults, an optional file
 * of `key = value` lines, the environment (LOCI_<KEY>), command-line flags
 * (--key value or --key=value). Every key is declared once in a table in
 * config.c with its type, range, default and help; values are validated as
 * they are set, so a bad value is reported with the key, the value, where it
 * came from and what is accepted.
 *
 * A struct config is filled once at start-up and then only read, from any
 * thread.
 */
#ifndef LOCI_CORE_CONFIG_H
#define LOCI_CORE_CONFIG_H

#include "core/buf.h"
#include "core/log.h"

#include <stdbool.h>
#include <stddef.h>

enum config_source { CFG_SRC_DEFAULT, CFG_SRC_FILE, CFG_SRC_ENV, CFG_SRC_FLAG };

#define CONFIG_MAX_KEYS 80

struct config {
    int port;
    char *listen;
    char *data_dir;
    char *database_url; /* after config_finish(): never empty */
    enum log_level log_level;
    int http_threads; /* after config_finish(): >= 1 */
    int db_pool_size; /* after config_finish(): >= 1 */
    int shutdown_timeout_ms;
    int connection_timeout_s;
    long long max_body_bytes;
    int max_json_depth;
    char *cors_origins; /* comma-separated exact origins; "" = none */
    char *tls_cert;
    char *tls_key;
    char *web_dir;
    int jobs_workers;
    int jobs_lease_ms;
    int jobs_poll_ms;
    int jobs_backoff_base_ms;
    int jobs_backoff_cap_ms;
    int jobs_retention_days;
    char *schedules; /* "name=cron;name2=off" overrides of built-in schedules */
    int ws_ping_interval_ms;
    int ws_auth_timeout_ms;
    int ws_max_frame_bytes;
    int ws_send_queue_bytes;
    int ws_max_connections;
    char *public_url; /* after config_finish(): never empty, no trailing slash */
    char *jwt_keys;
    int access_token_ttl_s;
    int refresh_idle_days;
    int refresh_absolute_days;
    char *smtp_url; /* "" = mail off */
    char *smtp_user;
    char *smtp_password;
    bool smtp_require_tls;
    char *mail_from;
    char *trusted_proxies; /* comma-separated IP literals */
    int rate_auth_per_min;
    int rate_auth_burst;
    int rate_api_per_min;
    int rate_api_burst;
    int login_free_failures;
    char *ai_providers; /* comma-separated chain: local, openai */
    char *ai_base_url;  /* after config_finish(): no trailing slash */
    char *ai_api_key;
    char *ai_chat_model;
    char *ai_embed_model; /* "" = embeddings from local */
    char *ai_headers;     /* "Name: value; Name2: value" */
    int ai_connect_timeout_ms;
    int ai_first_byte_timeout_ms;
    int ai_timeout_ms;
    int ai_retries;
    int ai_backoff_base_ms;
    int ai_backoff_cap_ms;
    int ai_breaker_failures;
    int ai_breaker_cooldown_ms;
    int ai_cache_ttl_s;
    int ai_max_tokens;
    char *ai_json_mode; /* json_object, json_schema, prompt */
    int ai_embed_dims;
    long long search_cache_bytes; /* vector indexes kept in memory */
    long long docs_max_bytes;     /* one uploaded file */
    int docs_max_pages;           /* PDFs */
    long long docs_quota_bytes;   /* all of one user's files */
    int parse_timeout_ms;         /* wall clock of one parse (the child is killed after) */
    int parse_memory_mb;          /* address space of the parse child */
    int ask_wait_timeout_ms;
    int bus_poll_ms;
    char *config_file;                           /* the file that was read, or "" */
    enum config_source sources[CONFIG_MAX_KEYS]; /* per key, by table index */
};

/* Fill with defaults. Release with config_release(). */
void config_init(struct config *c);
void config_release(struct config *c);

/* Set key (its config name, e.g. "port") from text. On a bad value returns
 * LOCI_EINVAL and writes a one-line explanation into err. An unknown key is
 * LOCI_ENOTFOUND (with a message too). */
int config_set(struct config *c, const char *key, const char *value, enum config_source src,
               char *err, size_t err_n);

/* Read `key = value` lines ('#' comments, blank lines allowed). */
int config_load_file(struct config *c, const char *path, char *err, size_t err_n);
/* Apply every LOCI_<KEY> variable present in the environment. */
int config_load_env(struct config *c, char *err, size_t err_n);
/* Map a command-line flag name ("port", "tls-cert") to a key; NULL if none. */
const char *config_key_for_flag(const char *flag);
/* Derive defaults that depend on other keys and check combinations (TLS
 * cert and key together, files readable). */
int config_finish(struct config *c, char *err, size_t err_n);

/* Print every key, its value (secrets masked) and its source. */
int config_print(const struct config *c, struct buf *out);
/* Print the reference: key, env name, flag, default, help. */
int config_print_help(struct buf *out);

/* Copy url with any password replaced by "****" into out. */
void config_mask_url(const char *url, char *out, size_t n);

/* True when ip (text) is one of trusted_proxies. */
bool config_is_trusted_proxy(const struct config *c, const char *ip);

/* True when origin is in the CORS allowlist. */
bool config_cors_allowed(const struct config *c, const char *origin, size_t n);

#endif
