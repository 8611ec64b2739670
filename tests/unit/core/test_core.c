/*
 * test_core.c - core: buffers, parsing, arena, ids, JSON input, config,
 * metrics exposition, logging and redaction.
 */
#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "harness.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(buf_grows_and_refuses_past_max)
{
    struct buf b;
    buf_init(&b, 10);
    CHECK_INT(buf_append_str(&b, "hello"), ==, LOCI_OK);
    CHECK_INT(buf_printf(&b, "%d", 12345), ==, LOCI_OK);
    CHECK_STR(buf_cstr(&b), "hello12345");
    CHECK_INT(buf_append_char(&b, 'x'), ==, LOCI_ETOOBIG);
    CHECK_STR(buf_cstr(&b), "hello12345"); /* unchanged on failure */
    buf_release(&b);
    buf_init(&b, 1 << 20);
    for (int i = 0; i < 1000; i++)
        CHECK_INT(buf_printf(&b, "%04d", i), ==, LOCI_OK);
    CHECK_INT(b.len, ==, 4000);
    CHECK(memcmp(b.p + 3996, "0999", 4) == 0);
    buf_release(&b);
}

TEST(buf_json_escaping)
{
    struct buf b;
    buf_init(&b, 100);
    const char in[] = "a\"b\\c\n\x01\x7f";
    buf_append_json_escaped(&b, in, sizeof(in) - 1);
    CHECK_STR(buf_cstr(&b), "a\\\"b\\\\c\\n\\u0001\\u007f");
    buf_release(&b);
}

TEST(parse_int64_is_strict)
{
    long long v = 0;
    CHECK_INT(parse_int64("42", 0, 100, &v), ==, LOCI_OK);
    CHECK_INT(v, ==, 42);
    CHECK_INT(parse_int64("-5", -10, 10, &v), ==, LOCI_OK);
    CHECK_INT(v, ==, -5);
    CHECK_INT(parse_int64("", 0, 100, &v), ==, LOCI_EINVAL);
    CHECK_INT(parse_int64("4x", 0, 100, &v), ==, LOCI_EINVAL);
    CHECK_INT(parse_int64(" 4", 0, 100, &v), ==, LOCI_EINVAL);
    CHECK_INT(parse_int64("101", 0, 100, &v), ==, LOCI_EINVAL);
    CHECK_INT(parse_int64("99999999999999999999999", 0, 100, &v), ==, LOCI_EINVAL);
    CHECK_INT(parse_int64_n("123abc", 3, 0, 1000, &v), ==, LOCI_OK);
    CHECK_INT(v, ==, 123);
    bool b = false;
    CHECK_INT(parse_bool("yes", &b), ==, LOCI_OK);
    CHECK(b);
    CHECK_INT(parse_bool("maybe", &b), ==, LOCI_EINVAL);
}

TEST(arena_allocates_aligned_and_large)
{
    struct arena a;
    arena_init(&a, 64);
    char *s = arena_strdup(&a, "hello");
    CHECK_STR(s, "hello");
    void *p = arena_alloc(&a, 3);
    CHECK((uintptr_t)p % _Alignof(max_align_t) == 0);
    char *big = arena_alloc(&a, 10000); /* bigger than a block */
    memset(big, 'x', 10000);
    char *after = arena_printf(&a, "%s-%d", "n", 7);
    CHECK_STR(after, "n-7");
    CHECK_STR(s, "hello"); /* earlier data intact */
    CHECK(a.total >= 10000);
    arena_release(&a);
}

TEST(uuid7_is_ordered_and_well_formed)
{
    char prev[UUID_STR_LEN] = "";
    for (int i = 0; i < 5000; i++) {
        char id[UUID_STR_LEN];
        ids_uuid7(id);
        CHECK(ids_is_uuid(id, strlen(id)));
        CHECK(id[14] == '7');                                                    /* version */
        CHECK(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b'); /* variant */
        CHECK(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof(prev));
    }
    CHECK(!ids_is_uuid("not-a-uuid", 10));
    char hex[33];
    ids_random_hex(hex, 16);
    CHECK_INT(strlen(hex), ==, 32);
}

TEST(json_parse_reports_position)
{
    json_t *v = NULL;
    struct json_error e;
    const char *bad = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    CHECK_INT(json_parse_limited(bad, strlen(bad), 32, &v, &e), ==, LOCI_EINVAL);
    CHECK(v == NULL);
    CHECK_INT(e.line, ==, 3);
    CHECK(e.column >= 8);
    CHECK(e.message[0] != '\0');
    CHECK_INT(json_parse_limited("", 0, 32, &v, &e), ==, LOCI_EINVAL);
    const char *dup = "{\"a\":1,\"a\":2}";
    CHECK_INT(json_parse_limited(dup, strlen(dup), 32, &v, &e), ==, LOCI_EINVAL);
    const char *ok = "{\"a\":[1,2,{\"b\":\"]]]\"}]}";
    CHECK_INT(json_parse_limited(ok, strlen(ok), 3, &v, &e), ==, LOCI_OK);
    json_decref(v);
}

TEST(json_depth_limit)
{
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    json_t *v = NULL;
    struct json_error e;
    CHECK_INT(json_parse_limited(deep, 200, 32, &v, &e), ==, LOCI_EINVAL);
    CHECK_INT(e.position, ==, 32); /* the 33rd '[' */
    CHECK(strstr(e.message, "32") != NULL);
    CHECK_INT(json_parse_limited(deep + 68, 64, 32, &v, &e), ==, LOCI_OK);
    json_decref(v);
}

static const struct json_field fields[] = {
    {"text", JF_STRING, true, false, 1, 5},
    {"count", JF_INTEGER, false, false, 0, 10},
    {"tags", JF_ARRAY, false, true, 0, 2},
};
static const struct json_schema schema = {fields, 3, false};

static const char *validate_text(const char *text, char *msg, size_t n)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v)
        harness_fail(__FILE__, __LINE__, "bad test JSON: %s", text);
    const char *field = NULL;
    int rc = json_validate(v, &schema, &field, msg, n);
    static char last[64];
    snprintf(last, sizeof(last), "%s", rc == LOCI_OK ? "ok" : field ? field : "(body)");
    json_decref(v);
    return last;
}

TEST(json_schema_names_the_field)
{
    char msg[256];
    CHECK_STR(validate_text("{\"text\":\"hi\"}", msg, sizeof(msg)), "ok");
    CHECK_STR(validate_text("{\"text\":\"héllo\"}", msg, sizeof(msg)), "ok"); /* 5 code points */
    CHECK_STR(validate_text("{}", msg, sizeof(msg)), "text");
    CHECK(strstr(msg, "required") != NULL);
    CHECK_STR(validate_text("{\"text\":5}", msg, sizeof(msg)), "text");
    CHECK(strstr(msg, "string") != NULL);
    CHECK_STR(validate_text("{\"text\":\"\"}", msg, sizeof(msg)), "text");
    CHECK_STR(validate_text("{\"text\":\"toolong\"}", msg, sizeof(msg)), "text");
    CHECK_STR(validate_text("{\"text\":\"a\",\"count\":11}", msg, sizeof(msg)), "count");
    CHECK_STR(validate_text("{\"text\":\"a\",\"count\":1.5}", msg, sizeof(msg)), "count");
    CHECK_STR(validate_text("{\"text\":\"a\",\"tags\":null}", msg, sizeof(msg)), "ok");
    CHECK_STR(validate_text("{\"text\":\"a\",\"tags\":[1,2,3]}", msg, sizeof(msg)), "tags");
    CHECK_STR(validate_text("{\"text\":\"a\",\"role\":\"admin\"}", msg, sizeof(msg)), "role");
    CHECK_STR(validate_text("[1]", msg, sizeof(msg)), "(body)");
}

TEST(config_validates_and_layers)
{
    struct config c;
    config_init(&c);
    char err[512];
    CHECK_INT(c.port, ==, 8080);
    CHECK_STR(c.listen, "127.0.0.1");
    CHECK_INT(config_set(&c, "port", "70000", CFG_SRC_FLAG, err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK(strstr(err, "port") && strstr(err, "70000") && strstr(err, "65535") &&
          strstr(err, "LOCI_PORT"));
    CHECK_INT(config_set(&c, "log_level", "loud", CFG_SRC_ENV, err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK(strstr(err, "debug, info, warn, error") != NULL);
    CHECK_INT(config_set(&c, "listen", "::1", CFG_SRC_FLAG, err, sizeof(err)), ==, LOCI_OK);
    CHECK_INT(config_set(&c, "listen", "localhost", CFG_SRC_FLAG, err, sizeof(err)), ==,
              LOCI_EINVAL);
    CHECK_INT(config_set(&c, "cors_origins", "https://a.example, http://b.example:8080",
                         CFG_SRC_FLAG, err, sizeof(err)),
              ==, LOCI_OK);
    CHECK(config_cors_allowed(&c, "http://b.example:8080", 21));
    CHECK(!config_cors_allowed(&c, "https://c.example", 17));
    CHECK_INT(config_set(&c, "cors_origins", "*", CFG_SRC_FLAG, err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK_INT(
        config_set(&c, "cors_origins", "https://a.example/path", CFG_SRC_FLAG, err, sizeof(err)),
        ==, LOCI_EINVAL);
    CHECK_INT(config_set(&c, "nope", "1", CFG_SRC_FLAG, err, sizeof(err)), ==, LOCI_ENOTFOUND);
    CHECK(config_key_for_flag("tls-cert") &&
          strcmp(config_key_for_flag("tls-cert"), "tls_cert") == 0);
    CHECK(config_key_for_flag("tls_cert") == NULL);

    /* File, then env over it. */
    const char *dir = harness_tmpdir();
    char path[600];
    snprintf(path, sizeof(path), "%s/loci.conf", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "# comment\n\nport = 9000\nlog_level = \"debug\"\n");
    fclose(f);
    CHECK_INT(config_load_file(&c, path, err, sizeof(err)), ==, LOCI_OK);
    CHECK_INT(c.port, ==, 9000);
    CHECK_INT(c.log_level, ==, LOG_DEBUG);
    setenv("LOCI_PORT", "9100", 1);
    CHECK_INT(config_load_env(&c, err, sizeof(err)), ==, LOCI_OK);
    unsetenv("LOCI_PORT");
    CHECK_INT(c.port, ==, 9100);
    f = fopen(path, "w");
    fprintf(f, "port = 9000\nport = -1\n");
    fclose(f);
    CHECK_INT(config_load_file(&c, path, err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK(strstr(err, ":2:") != NULL);

    CHECK_INT(config_finish(&c, err, sizeof(err)), ==, LOCI_OK);
    CHECK(strncmp(c.database_url, "sqlite:", 7) == 0);
    CHECK(c.http_threads >= 1);
    CHECK_INT(config_set(&c, "tls_cert", "/nonexistent.pem", CFG_SRC_FLAG, err, sizeof(err)), ==,
              LOCI_OK);
    CHECK_INT(config_finish(&c, err, sizeof(err)), ==, LOCI_EINVAL);
    CHECK(strstr(err, "tls_key") != NULL);
    config_release(&c);
}

TEST(config_masks_secrets)
{
    char out[256];
    config_mask_url("postgres://loci:s3cret@db:5432/loci", out, sizeof(out));
    CHECK_STR(out, "postgres://loci:****@db:5432/loci");
    config_mask_url("postgres://db/loci?user=x&password=s3cret&sslmode=require", out, sizeof(out));
    CHECK(strstr(out, "s3cret") == NULL);
    CHECK(strstr(out, "sslmode=require") != NULL);
    config_mask_url("sqlite:./data/loci.db", out, sizeof(out));
    CHECK_STR(out, "sqlite:./data/loci.db");

    struct config c;
    config_init(&c);
    char err[256];
    config_set(&c, "database_url", "postgres://u:hunter2@h/db", CFG_SRC_ENV, err, sizeof(err));
    struct buf b;
    buf_init(&b, 1 << 16);
    config_print(&c, &b);
    CHECK(strstr(buf_cstr(&b), "hunter2") == NULL);
    CHECK(strstr(buf_cstr(&b), "database_url = postgres://u:****@h/db    # env") != NULL);
    buf_release(&b);
    config_release(&c);
}

TEST(metrics_exposition_format)
{
    struct metric_family *c = metrics_counter("t_requests_total", "Requests", "method,path");
    const char *l1[] = {"GET", "/a\"b\\c\nd"};
    metrics_add(metrics_series(c, l1), 1);
    metrics_add(metrics_series(c, l1), 2);
    struct metric_family *h =
        metrics_histogram("t_latency_seconds", "Latency", NULL, (const double[]){0.1, 1}, 2);
    struct metric_series *hs = metrics_series(h, NULL);
    metrics_observe(hs, 0.05);
    metrics_observe(hs, 0.5);
    metrics_observe(hs, 5);
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(metrics_render(&b), ==, LOCI_OK);
    const char *t = buf_cstr(&b);
    CHECK(strstr(t, "# TYPE t_requests_total counter\n") != NULL);
    CHECK(strstr(t, "t_requests_total{method=\"GET\",path=\"/a\\\"b\\\\c\\nd\"} 3\n") != NULL);
    CHECK(strstr(t, "t_latency_seconds_bucket{le=\"0.1\"} 1\n") != NULL);
    CHECK(strstr(t, "t_latency_seconds_bucket{le=\"1\"} 2\n") != NULL);
    CHECK(strstr(t, "t_latency_seconds_bucket{le=\"+Inf\"} 3\n") != NULL);
    CHECK(strstr(t, "t_latency_seconds_count 3\n") != NULL);
    CHECK(strstr(t, "t_latency_seconds_sum 5.5") != NULL);
    buf_release(&b);
    CHECK_INT(metrics_count(hs), ==, 3);
}

TEST(log_lines_are_json_and_redacted)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    log_set_fd(fds[1]);
    struct log_ctx ctx = {.request_id = "r-1", .user_id = "u-1"};
    log_line(&ctx, LOG_INFO, "hello \"world\"",
             (struct log_field[]){LF_STR("password", "hunter2"), LF_STR("api_key", "k-123"),
                                  LF_INT("n", 5), LF_STR("route", "/x")},
             4);
    log_debug(&ctx, "hidden %d", 1); /* below the level: not written */
    log_set_fd(2);
    close(fds[1]);
    char out[2048] = "";
    ssize_t n = read(fds[0], out, sizeof(out) - 1);
    close(fds[0]);
    CHECK(n > 0);
    out[n] = '\0';
    json_error_t je;
    json_t *v = json_loads(out, JSON_DISABLE_EOF_CHECK, &je);
    CHECK(v != NULL);
    CHECK_STR(json_string_value(json_object_get(v, "msg")), "hello \"world\"");
    CHECK_STR(json_string_value(json_object_get(v, "request_id")), "r-1");
    CHECK_STR(json_string_value(json_object_get(v, "password")), "[redacted]");
    CHECK_STR(json_string_value(json_object_get(v, "api_key")), "[redacted]");
    CHECK_INT(json_integer_value(json_object_get(v, "n")), ==, 5);
    json_decref(v);
    CHECK(strstr(out, "hunter2") == NULL && strstr(out, "hidden") == NULL);
    CHECK(log_key_is_secret("Authorization") && log_key_is_secret("refresh_token") &&
          !log_key_is_secret("route"));
}

TEST(err_mapping_is_total)
{
    CHECK_INT(loci_err_http_status(LOCI_ENOTFOUND), ==, 404);
    CHECK_INT(loci_err_http_status(LOCI_EUNPROCESSABLE), ==, 422);
    CHECK_INT(loci_err_http_status(LOCI_ETOOBIG), ==, 413);
    CHECK_INT(loci_err_http_status(LOCI_EMEDIATYPE), ==, 415);
    CHECK_INT(loci_err_http_status(LOCI_ERATELIMIT), ==, 429);
    CHECK_INT(loci_err_http_status(LOCI_EPAYMENT), ==, 402);
    CHECK_INT(loci_err_http_status(-999), ==, 500);
    CHECK_STR(loci_err_code(LOCI_ECONFLICT), "conflict");
    for (int e = 0; e >= LOCI_EINTERNAL; e--)
        CHECK(loci_err_code(e)[0] != '\0' && loci_err_message(e)[0] != '\0');
}
