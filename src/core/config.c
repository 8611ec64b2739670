/*
 * config.c - the key table and its validation.
 */
#include "core/config.h"

#include "core/alloc.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum key_type { KT_INT, KT_I64, KT_STR, KT_LEVEL, KT_ADDR, KT_ORIGINS, KT_BOOL, KT_ADDRS };

struct key_def {
    const char *name; /* config file key; env is LOCI_ + upper(name); flag is --name with '-' */
    enum key_type type;
    size_t offset;
    long long min, max;
    const char *def;
    bool is_secret;
    const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct key_def keys[] = {
    {"port", KT_INT, OFF(port), 0, 65535, "8080", false,
     "TCP port to listen on; 0 picks a free port (logged at start)"},
    {"listen", KT_ADDR, OFF(listen), 0, 0, "127.0.0.1", false,
     "address to bind (IPv4 or IPv6 literal; 0.0.0.0 for all)"},
    {"data_dir", KT_STR, OFF(data_dir), 1, 4096, "./data", false,
     "directory for the SQLite database, keys and blobs"},
    {"database_url", KT_STR, OFF(database_url), 0, 4096, "", true,
     "sqlite:PATH, a file path, or postgres://...; default sqlite:$data_dir/loci.db"},
    {"log_level", KT_LEVEL, OFF(log_level), 0, 0, "info", false, "debug, info, warn or error"},
    {"http_threads", KT_INT, OFF(http_threads), 0, 256, "0", false,
     "HTTP worker threads; 0 = one per core"},
    {"db_pool_size", KT_INT, OFF(db_pool_size), 0, 512, "0", false,
     "database connections; 0 = 2 * http_threads + jobs_workers + 4"},
    {"shutdown_timeout_ms", KT_INT, OFF(shutdown_timeout_ms), 0, 600000, "10000", false,
     "how long in-flight requests may finish after SIGTERM"},
    {"connection_timeout_s", KT_INT, OFF(connection_timeout_s), 1, 3600, "60", false,
     "idle keep-alive connections are closed after this"},
    {"max_body_bytes", KT_I64, OFF(max_body_bytes), 1, 1LL << 34, "1048576", false,
     "largest request body a JSON route accepts (413 above)"},
    {"max_json_depth", KT_INT, OFF(max_json_depth), 1, 1000, "32", false,
     "deepest nesting of arrays/objects in a JSON body (400 above)"},
    {"cors_origins", KT_ORIGINS, OFF(cors_origins), 0, 8192, "", false,
     "comma-separated origins allowed by CORS; empty = none"},
    {"tls_cert", KT_STR, OFF(tls_cert), 0, 4096, "", false, "PEM certificate file; enables TLS"},
    {"tls_key", KT_STR, OFF(tls_key), 0, 4096, "", true, "PEM private key file for tls_cert"},
    {"web_dir", KT_STR, OFF(web_dir), 0, 4096, "web/dist", false,
     "directory of the built web UI, served at /"},
    {"jobs_workers", KT_INT, OFF(jobs_workers), 0, 64, "2", false,
     "job worker threads in this process; 0 = enqueue only"},
    {"jobs_lease_ms", KT_INT, OFF(jobs_lease_ms), 1000, 3600000, "30000", false,
     "job lease (visibility timeout); heartbeats renew it while a job runs"},
    {"jobs_poll_ms", KT_INT, OFF(jobs_poll_ms), 10, 60000, "500", false,
     "how often idle workers look for due jobs (new jobs wake them at once)"},
    {"jobs_backoff_base_ms", KT_INT, OFF(jobs_backoff_base_ms), 1, 3600000, "1000", false,
     "retry n waits random(0, min(cap, base * 2^(n-1)))"},
    {"jobs_backoff_cap_ms", KT_INT, OFF(jobs_backoff_cap_ms), 1, 86400000, "3600000", false,
     "upper bound of a retry delay"},
    {"jobs_retention_days", KT_INT, OFF(jobs_retention_days), 1, 3650, "14", false,
     "finished jobs older than this are purged daily"},
    {"schedules", KT_STR, OFF(schedules), 0, 4096, "", false,
     "cron overrides: 'name=MIN HOUR DOM MON DOW;name2=off' (UTC)"},
    {"ws_ping_interval_ms", KT_INT, OFF(ws_ping_interval_ms), 100, 3600000, "30000", false,
     "WebSocket ping interval; a socket that has not answered by the next ping is closed"},
    {"ws_auth_timeout_ms", KT_INT, OFF(ws_auth_timeout_ms), 100, 600000, "5000", false,
     "a WebSocket that has not authenticated by then is closed (1008)"},
    {"ws_max_frame_bytes", KT_INT, OFF(ws_max_frame_bytes), 125, 16777216, "65536", false,
     "largest WebSocket frame or message a client may send (1009 above)"},
    {"ws_send_queue_bytes", KT_INT, OFF(ws_send_queue_bytes), 4096, 268435456, "262144", false,
     "unsent bytes a WebSocket may hold before its client is dropped as too slow"},
    {"ws_max_connections", KT_INT, OFF(ws_max_connections), 1, 1000000, "10000", false,
     "WebSockets open at once (503 above); raises the open-files limit to match"},
    {"public_url", KT_STR, OFF(public_url), 0, 2048, "", false,
     "the URL users reach Loci at (links in mail, token issuer); default http://localhost:PORT"},
    {"jwt_keys", KT_STR, OFF(jwt_keys), 0, 4096, "", true,
     "'kid:hex64,...' access-token keys, first signs; default: generated in data_dir/jwt_keys"},
    {"access_token_ttl_s", KT_INT, OFF(access_token_ttl_s), 60, 86400, "3600", false,
     "lifetime of access tokens"},
    {"refresh_idle_days", KT_INT, OFF(refresh_idle_days), 1, 365, "7", false,
     "a session unused this long ends"},
    {"refresh_absolute_days", KT_INT, OFF(refresh_absolute_days), 1, 3650, "30", false,
     "a session ends this long after login, used or not"},
    {"smtp_url", KT_STR, OFF(smtp_url), 0, 2048, "", false,
     "smtp://host:port or smtps://host:port; empty = mail off (no verification needed)"},
    {"smtp_user", KT_STR, OFF(smtp_user), 0, 256, "", false, "SMTP user name (empty = no AUTH)"},
    {"smtp_password", KT_STR, OFF(smtp_password), 0, 256, "", true, "SMTP password"},
    {"smtp_require_tls", KT_BOOL, OFF(smtp_require_tls), 0, 0, "false", false,
     "smtp:// only: refuse to send unless STARTTLS succeeds"},
    {"mail_from", KT_STR, OFF(mail_from), 3, 254, "loci@localhost", false, "sender address"},
    {"trusted_proxies", KT_ADDRS, OFF(trusted_proxies), 0, 4096, "", false,
     "comma-separated proxy IPs whose X-Forwarded-For is believed"},
    {"rate_auth_per_min", KT_INT, OFF(rate_auth_per_min), 1, 100000, "30", false,
     "auth requests per minute per client IP"},
    {"rate_auth_burst", KT_INT, OFF(rate_auth_burst), 1, 100000, "10", false,
     "auth requests allowed at once per client IP"},
    {"rate_api_per_min", KT_INT, OFF(rate_api_per_min), 1, 1000000, "600", false,
     "API requests per minute per user (per IP when anonymous)"},
    {"rate_api_burst", KT_INT, OFF(rate_api_burst), 1, 1000000, "100", false,
     "API requests allowed at once per user"},
    {"login_free_failures", KT_INT, OFF(login_free_failures), 1, 100, "5", false,
     "failed logins per account before back-off (1 s, doubling, max 15 min)"},
    {"ai_providers", KT_STR, OFF(ai_providers), 1, 256, "local", false,
     "AI provider chain, tried in order: 'local', 'openai', or 'openai,local'"},
    {"ai_base_url", KT_STR, OFF(ai_base_url), 0, 2048, "https://api.openai.com/v1", false,
     "OpenAI-compatible API base (Ollama: http://localhost:11434/v1)"},
    {"ai_api_key", KT_STR, OFF(ai_api_key), 0, 1024, "", true,
     "API key sent as 'Authorization: Bearer'; empty = none (local servers)"},
    {"ai_chat_model", KT_STR, OFF(ai_chat_model), 1, 256, "gpt-4o-mini", false,
     "chat model name of the openai provider"},
    {"ai_embed_model", KT_STR, OFF(ai_embed_model), 0, 256, "text-embedding-3-small", false,
     "embedding model of the openai provider; empty = embeddings from 'local'"},
    {"ai_headers", KT_STR, OFF(ai_headers), 0, 4096, "", true,
     "extra request headers for the openai provider: 'Name: value; Name2: value'"},
    {"ai_connect_timeout_ms", KT_INT, OFF(ai_connect_timeout_ms), 100, 600000, "5000", false,
     "connecting to the model API"},
    {"ai_first_byte_timeout_ms", KT_INT, OFF(ai_first_byte_timeout_ms), 100, 600000, "30000", false,
     "wait for the first byte of a reply, and the longest silence inside a stream"},
    {"ai_timeout_ms", KT_INT, OFF(ai_timeout_ms), 100, 3600000, "120000", false,
     "one model request from start to end"},
    {"ai_retries", KT_INT, OFF(ai_retries), 0, 10, "2", false,
     "retries per provider on 429, 5xx and timeouts (Retry-After honoured)"},
    {"ai_backoff_base_ms", KT_INT, OFF(ai_backoff_base_ms), 1, 600000, "500", false,
     "retry n waits random(half, full) of min(cap, base * 2^(n-1)) without Retry-After"},
    {"ai_backoff_cap_ms", KT_INT, OFF(ai_backoff_cap_ms), 1, 600000, "8000", false,
     "longest wait between retries, Retry-After included (longer: next provider)"},
    {"ai_breaker_failures", KT_INT, OFF(ai_breaker_failures), 1, 1000, "5", false,
     "consecutive failed attempts that open a provider's circuit breaker"},
    {"ai_breaker_cooldown_ms", KT_INT, OFF(ai_breaker_cooldown_ms), 100, 3600000, "30000", false,
     "how long an open breaker skips the provider before one probe is let through"},
    {"ai_cache_ttl_s", KT_INT, OFF(ai_cache_ttl_s), 0, 31536000, "86400", false,
     "how long model responses are reused (shared by all instances); 0 = no cache"},
    {"ai_max_tokens", KT_INT, OFF(ai_max_tokens), 16, 131072, "1024", false,
     "completion token limit sent with each chat request"},
    {"ai_json_mode", KT_STR, OFF(ai_json_mode), 4, 16, "json_object", false,
     "structured replies: json_object, json_schema (strict schema) or prompt (no response_format)"},
    {"ask_wait_timeout_ms", KT_INT, OFF(ask_wait_timeout_ms), 100, 3600000, "120000", false,
     "POST /api/v1/ask in wait mode answers 202 (still pending) after this"},
    {"bus_poll_ms", KT_INT, OFF(bus_poll_ms), 1, 10000, "50", false,
     "how often the event bus looks for events committed by other instances"},
    {"ai_embed_dims", KT_INT, OFF(ai_embed_dims), 8, 4096, "384", false,
     "dimensions of the local provider's embeddings"},
    {"search_cache_bytes", KT_I64, OFF(search_cache_bytes), 0, 1LL << 40, "536870912", false,
     "memory for in-memory vector indexes (least recently used users are dropped); 0 = none kept"},
    {"docs_max_bytes", KT_I64, OFF(docs_max_bytes), 1, 1LL << 40, "52428800", false,
     "largest document a user may upload (413 above)"},
    {"docs_max_pages", KT_INT, OFF(docs_max_pages), 1, 1000000, "2000", false,
     "PDFs with more pages fail with too_many_pages"},
    {"docs_quota_bytes", KT_I64, OFF(docs_quota_bytes), 1, 1LL << 50, "1073741824", false,
     "storage per user for documents (413 quota_exceeded above)"},
    {"parse_timeout_ms", KT_INT, OFF(parse_timeout_ms), 100, 3600000, "60000", false,
     "parsing one document may take this long before its child process is killed"},
    {"parse_memory_mb", KT_INT, OFF(parse_memory_mb), 16, 65536, "1024", false,
     "address space a document's parse child may use"},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(N_KEYS <= CONFIG_MAX_KEYS, "raise CONFIG_MAX_KEYS");

static const char *const source_names[] = {"default", "file", "env", "flag"};

static char **str_field(struct config *c, const struct key_def *k)
{
    return (char **)((char *)c + k->offset);
}

static const struct key_def *find_key(const char *name, size_t *out_idx)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].name, name) == 0) {
            if (out_idx)
                *out_idx = i;
            return &keys[i];
        }
    }
    return NULL;
}

/* Comma-separated lists: yields each item trimmed of spaces; false at the
 * end. *p advances past the item. */
static bool next_item(const char **p, const char **out, size_t *out_n)
{
    if (!**p)
        return false;
    const char *start = *p;
    const char *comma = strchr(start, ',');
    size_t len = comma ? (size_t)(comma - start) : strlen(start);
    *p = comma ? comma + 1 : start + len;
    while (len && *start == ' ') {
        start++;
        len--;
    }
    while (len && start[len - 1] == ' ')
        len--;
    *out = start;
    *out_n = len;
    return true;
}

static bool list_contains(const char *list, const char *item, size_t n)
{
    const char *s;
    size_t sn;
    while (next_item(&list, &s, &sn)) {
        if (sn == n && memcmp(s, item, n) == 0)
            return true;
    }
    return false;
}

static void env_name(const struct key_def *k, char *out, size_t n)
{
    size_t o = (size_t)snprintf(out, n, "LOCI_");
    for (const char *p = k->name; *p && o + 1 < n; p++)
        out[o++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    out[o] = '\0';
}

static void flag_name(const struct key_def *k, char *out, size_t n)
{
    size_t o = (size_t)snprintf(out, n, "--");
    for (const char *p = k->name; *p && o + 1 < n; p++)
        out[o++] = *p == '_' ? '-' : *p;
    out[o] = '\0';
}

const char *config_key_for_flag(const char *flag)
{
    char want[64];
    snprintf(want, sizeof(want), "--%s", flag);
    for (size_t i = 0; i < N_KEYS; i++) {
        char f[64];
        flag_name(&keys[i], f, sizeof(f));
        if (strcmp(f, want) == 0)
            return keys[i].name;
    }
    return NULL;
}

static bool valid_origin(const char *p, size_t n)
{
    /* scheme://host[:port], no path, no wildcard. */
    const char *sep = NULL;
    if (n > 8 && strncmp(p, "https://", 8) == 0)
        sep = p + 8;
    else if (n > 7 && strncmp(p, "http://", 7) == 0)
        sep = p + 7;
    if (!sep)
        return false;
    for (const char *c = sep; c < p + n; c++) {
        if (*c == '/' || *c == '*' || *c == ' ' || *c == '?' || *c == '#')
            return false;
    }
    return sep < p + n;
}

static int validate(const struct key_def *k, const char *value, long long *out_num,
                    const char **out_expect)
{
    switch (k->type) {
    case KT_INT:
    case KT_I64:
        *out_expect = "an integer in range";
        return parse_int64(value, k->min, k->max, out_num);
    case KT_LEVEL: {
        enum log_level lv;
        *out_expect = "one of debug, info, warn, error";
        if (log_parse_level(value, &lv))
            return LOCI_EINVAL;
        *out_num = lv;
        return LOCI_OK;
    }
    case KT_ADDR: {
        unsigned char tmp[16];
        *out_expect = "an IPv4 or IPv6 address literal such as 127.0.0.1 or ::1";
        if (inet_pton(AF_INET, value, tmp) == 1 || inet_pton(AF_INET6, value, tmp) == 1)
            return LOCI_OK;
        return LOCI_EINVAL;
    }
    case KT_ORIGINS: {
        *out_expect = "comma-separated origins like https://app.example.com (no paths, no *)";
        const char *p = value, *item;
        size_t n;
        while (next_item(&p, &item, &n)) {
            if (!valid_origin(item, n))
                return LOCI_EINVAL;
        }
        return strlen(value) > (size_t)k->max ? LOCI_EINVAL : LOCI_OK;
    }
    case KT_BOOL: {
        bool b;
        *out_expect = "true or false";
        if (parse_bool(value, &b))
            return LOCI_EINVAL;
        *out_num = b;
        return LOCI_OK;
    }
    case KT_ADDRS: {
        *out_expect = "comma-separated IP address literals";
        char ip[64];
        const char *p = value, *item;
        size_t n;
        while (next_item(&p, &item, &n)) {
            unsigned char tmp[16];
            if (n == 0 || n >= sizeof(ip))
                return LOCI_EINVAL;
            memcpy(ip, item, n);
            ip[n] = '\0';
            if (inet_pton(AF_INET, ip, tmp) != 1 && inet_pton(AF_INET6, ip, tmp) != 1)
                return LOCI_EINVAL;
        }
        return LOCI_OK;
    }
    case KT_STR:
        *out_expect = "a string of acceptable length";
        return strlen(value) < (size_t)k->min || strlen(value) > (size_t)k->max ? LOCI_EINVAL
                                                                                : LOCI_OK;
    }
    return LOCI_EINVAL;
}

int config_set(struct config *c, const char *key, const char *value, enum config_source src,
               char *err, size_t err_n)
{
    size_t idx = 0;
    const struct key_def *k = find_key(key, &idx);
    if (!k) {
        snprintf(err, err_n, "unknown configuration key '%s'", key);
        return LOCI_ENOTFOUND;
    }
    long long num = 0;
    const char *expect = "";
    if (validate(k, value, &num, &expect) != LOCI_OK) {
        char env[64], flag[64], range[64] = "";
        env_name(k, env, sizeof(env));
        flag_name(k, flag, sizeof(flag));
        if (k->type == KT_INT || k->type == KT_I64)
            snprintf(range, sizeof(range), " from %lld to %lld", k->min, k->max);
        else if (k->type == KT_STR)
            snprintf(range, sizeof(range), " (%lld to %lld characters)", k->min, k->max);
        snprintf(err, err_n, "invalid value '%s' for %s (%s, %s, from %s): expected %s%s",
                 k->is_secret ? "****" : value, k->name, env, flag, source_names[src], expect,
                 range);
        return LOCI_EINVAL;
    }
    switch (k->type) {
    case KT_INT:
    case KT_LEVEL:
        *(int *)((char *)c + k->offset) = (int)num;
        break;
    case KT_BOOL:
        *(bool *)((char *)c + k->offset) = num != 0;
        break;
    case KT_I64:
        *(long long *)((char *)c + k->offset) = num;
        break;
    default: {
        char **f = str_field(c, k);
        xfree(*f);
        *f = xstrdup(value);
    }
    }
    c->sources[idx] = src;
    return LOCI_OK;
}

void config_init(struct config *c)
{
    memset(c, 0, sizeof(*c));
    char err[256];
    for (size_t i = 0; i < N_KEYS; i++) {
        if (config_set(c, keys[i].name, keys[i].def, CFG_SRC_DEFAULT, err, sizeof(err)))
            BUG("bad default in the config key table");
    }
    c->config_file = xstrdup("");
}

void config_release(struct config *c)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (keys[i].type != KT_INT && keys[i].type != KT_I64 && keys[i].type != KT_LEVEL &&
            keys[i].type != KT_BOOL) {
            char **f = str_field(c, &keys[i]);
            xfree(*f);
            *f = NULL;
        }
    }
    xfree(c->config_file);
    c->config_file = NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

int config_load_file(struct config *c, const char *path, char *err, size_t err_n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_n, "cannot open config file '%s': %s", path, strerror(errno));
        return LOCI_EINVAL;
    }
    char line[8192];
    int lineno = 0;
    int rc = LOCI_OK;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, err_n, "%s:%d: expected 'key = value'", path, lineno);
            rc = LOCI_EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        char *val = trim(eq + 1);
        size_t vn = strlen(val);
        if (vn >= 2 &&
            ((val[0] == '"' && val[vn - 1] == '"') || (val[0] == '\'' && val[vn - 1] == '\''))) {
            val[vn - 1] = '\0';
            val++;
        }
        char inner[512];
        rc = config_set(c, key, val, CFG_SRC_FILE, inner, sizeof(inner));
        if (rc) {
            snprintf(err, err_n, "%s:%d: %s", path, lineno, inner);
            rc = LOCI_EINVAL;
            break;
        }
    }
    fclose(f);
    if (!rc) {
        xfree(c->config_file);
        c->config_file = xstrdup(path);
    }
    return rc;
}

int config_load_env(struct config *c, char *err, size_t err_n)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        char env[64];
        env_name(&keys[i], env, sizeof(env));
        const char *v = getenv(env);
        if (!v)
            continue;
        int rc = config_set(c, keys[i].name, v, CFG_SRC_ENV, err, err_n);
        if (rc)
            return rc;
    }
    return LOCI_OK;
}

static bool readable(const char *path)
{
    return access(path, R_OK) == 0;
}

/* The AI keys: a chain of known, distinct providers; an http(s) base URL
 * without a trailing slash; a known JSON mode; header lines that cannot
 * smuggle a line break. */
static int finish_ai(struct config *c, char *err, size_t err_n)
{
    const char *p = c->ai_providers, *item;
    size_t n, seen = 0;
    while (next_item(&p, &item, &n)) {
        unsigned bit;
        if (n == 5 && memcmp(item, "local", 5) == 0)
            bit = 1;
        else if (n == 6 && memcmp(item, "openai", 6) == 0)
            bit = 2;
        else
            bit = 0;
        if (!bit || (seen & bit)) {
            snprintf(err, err_n,
                     "invalid value '%s' for ai_providers (LOCI_AI_PROVIDERS): expected a "
                     "comma-separated list of distinct providers: local, openai",
                     c->ai_providers);
            return LOCI_EINVAL;
        }
        seen |= bit;
    }
    if (!seen) {
        snprintf(err, err_n,
                 "invalid value '' for ai_providers (LOCI_AI_PROVIDERS): expected "
                 "at least one of: local, openai");
        return LOCI_EINVAL;
    }
    size_t len = strlen(c->ai_base_url);
    while (len > 0 && c->ai_base_url[len - 1] == '/')
        c->ai_base_url[--len] = '\0';
    if ((seen & 2) && strncmp(c->ai_base_url, "http://", 7) != 0 &&
        strncmp(c->ai_base_url, "https://", 8) != 0) {
        snprintf(err, err_n,
                 "invalid value '%s' for ai_base_url (LOCI_AI_BASE_URL): expected an http:// or "
                 "https:// URL",
                 c->ai_base_url);
        return LOCI_EINVAL;
    }
    if (strcmp(c->ai_json_mode, "json_object") != 0 &&
        strcmp(c->ai_json_mode, "json_schema") != 0 && strcmp(c->ai_json_mode, "prompt") != 0) {
        snprintf(err, err_n,
                 "invalid value '%s' for ai_json_mode (LOCI_AI_JSON_MODE): expected json_object, "
                 "json_schema or prompt",
                 c->ai_json_mode);
        return LOCI_EINVAL;
    }
    for (const char *h = c->ai_headers; *h; h++) {
        if (*h == '\r' || *h == '\n') {
            snprintf(err, err_n,
                     "invalid value for ai_headers (LOCI_AI_HEADERS): line breaks are "
                     "not allowed; separate headers with ';'");
            return LOCI_EINVAL;
        }
    }
    if (c->ai_backoff_cap_ms < c->ai_backoff_base_ms) {
        snprintf(err, err_n,
                 "invalid value %d for ai_backoff_cap_ms (LOCI_AI_BACKOFF_CAP_MS): must be at "
                 "least ai_backoff_base_ms (%d)",
                 c->ai_backoff_cap_ms, c->ai_backoff_base_ms);
        return LOCI_EINVAL;
    }
    return LOCI_OK;
}

int config_finish(struct config *c, char *err, size_t err_n)
{
    if (c->database_url[0] == '\0') {
        xfree(c->database_url);
        size_t n = strlen(c->data_dir) + 16;
        c->database_url = xmalloc(n);
        snprintf(c->database_url, n, "sqlite:%s/loci.db", c->data_dir);
    }
    if (c->http_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->http_threads = n > 0 ? (int)(n > 64 ? 64 : n) : 2;
    }
    if (c->db_pool_size == 0)
        c->db_pool_size = 2 * c->http_threads + c->jobs_workers + 4; /* + offload pool */
    if (c->public_url[0] == '\0') {
        xfree(c->public_url);
        size_t n = 64;
        c->public_url = xmalloc(n);
        snprintf(c->public_url, n, "%s://localhost:%d", c->tls_cert[0] ? "https" : "http", c->port);
    } else {
        size_t n = strlen(c->public_url);
        while (n > 0 && c->public_url[n - 1] == '/')
            c->public_url[--n] = '\0';
        if (strncmp(c->public_url, "http://", 7) != 0 &&
            strncmp(c->public_url, "https://", 8) != 0) {
            snprintf(err, err_n,
                     "invalid value '%s' for public_url (LOCI_PUBLIC_URL): expected an http:// or "
                     "https:// URL",
                     c->public_url);
            return LOCI_EINVAL;
        }
    }
    if (c->smtp_url[0] && strncmp(c->smtp_url, "smtp://", 7) != 0 &&
        strncmp(c->smtp_url, "smtps://", 8) != 0) {
        snprintf(err, err_n,
                 "invalid value '%s' for smtp_url (LOCI_SMTP_URL): expected smtp://host:port or "
                 "smtps://host:port",
                 c->smtp_url);
        return LOCI_EINVAL;
    }
    int rc = finish_ai(c, err, err_n);
    if (rc)
        return rc;
    if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
        snprintf(err, err_n,
                 "invalid TLS configuration: tls_cert (LOCI_TLS_CERT) and tls_key (LOCI_TLS_KEY) "
                 "must be set together");
        return LOCI_EINVAL;
    }
    if (c->tls_cert[0] && !readable(c->tls_cert)) {
        snprintf(err, err_n, "invalid value '%s' for tls_cert (LOCI_TLS_CERT): file not readable",
                 c->tls_cert);
        return LOCI_EINVAL;
    }
    if (c->tls_key[0] && !readable(c->tls_key)) {
        snprintf(err, err_n, "invalid value for tls_key (LOCI_TLS_KEY): file not readable");
        return LOCI_EINVAL;
    }
    return LOCI_OK;
}

void config_mask_url(const char *url, char *out, size_t n)
{
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = NULL;
    if (scheme && at) {
        for (const char *p = scheme + 3; p < at; p++) {
            if (*p == ':') {
                colon = p;
                break;
            }
        }
    }
    if (colon)
        snprintf(out, n, "%.*s:****%s", (int)(colon - url), url, at);
    else
        snprintf(out, n, "%s", url);
    /* A password may also come as a query parameter. */
    char *pw = strstr(out, "password=");
    if (pw) {
        char *end = strchr(pw, '&');
        char tail[1024];
        snprintf(tail, sizeof(tail), "%s", end ? end : "");
        size_t pos = (size_t)(pw - out) + 9;
        snprintf(out + pos, n - pos, "****%s", tail);
    }
}

static int print_value(const struct config *c, const struct key_def *k, struct buf *out)
{
    const char *base = (const char *)c + k->offset;
    switch (k->type) {
    case KT_INT:
        return buf_printf(out, "%d", *(const int *)base);
    case KT_I64:
        return buf_printf(out, "%lld", *(const long long *)base);
    case KT_LEVEL:
        return buf_append_str(out, log_level_name((enum log_level) * (const int *)base));
    case KT_BOOL:
        return buf_append_str(out, *(const bool *)base ? "true" : "false");
    default: {
        const char *v = *(char *const *)base;
        if (strcmp(k->name, "database_url") == 0) {
            char masked[4200];
            config_mask_url(v, masked, sizeof(masked));
            return buf_append_str(out, masked);
        }
        if (k->is_secret && v[0])
            return buf_append_str(out, "****");
        return buf_append_str(out, v);
    }
    }
}

int config_print(const struct config *c, struct buf *out)
{
    int rc = 0;
    if (c->config_file[0])
        rc |= buf_printf(out, "# config file: %s\n", c->config_file);
    for (size_t i = 0; i < N_KEYS; i++) {
        rc |= buf_printf(out, "%s = ", keys[i].name);
        rc |= print_value(c, &keys[i], out);
        rc |= buf_printf(out, "    # %s\n", source_names[c->sources[i]]);
    }
    return rc ? LOCI_ETOOBIG : LOCI_OK;
}

int config_print_help(struct buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        char env[64], flag[64];
        env_name(&keys[i], env, sizeof(env));
        flag_name(&keys[i], flag, sizeof(flag));
        rc |= buf_printf(out, "  %-22s %-26s default '%s'\n      %s\n", flag, env, keys[i].def,
                         keys[i].help);
    }
    return rc ? LOCI_ETOOBIG : LOCI_OK;
}

bool config_is_trusted_proxy(const struct config *c, const char *ip)
{
    return list_contains(c->trusted_proxies, ip, strlen(ip));
}

bool config_cors_allowed(const struct config *c, const char *origin, size_t n)
{
    return list_contains(c->cors_origins, origin, n);
}
