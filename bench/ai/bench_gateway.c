/*
 * bench_gateway.c - what the AI gateway adds on top of the model's own time.
 *
 * Against the stand-in answering every request after a fixed delay (run it
 * with --delay-ms 50), T threads make N chat calls each, twice in one run:
 *   raw:     a bare libcurl POST of a fixed request body (keep-alive, one
 *            handle per thread): the floor any client pays;
 *   gateway: ai_run() through the gateway (rendering, the provider's curl
 *            multi loop with deadlines, SSE or JSON parsing, the breaker,
 *            metrics), the cache off.
 * Prints p50/p95/p99 of both and the difference: the gateway's overhead.
 *
 * usage: bench_gateway BASE_URL [threads=64] [calls_per_thread=40]
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "services/ai/ai.h"
#include "services/ai/ai_int.h"
#include "services/mail/mail.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct worker {
    struct ai *ai;
    const char *url;
    int calls;
    bool is_raw;
    bool is_stream;
    double *lat_ms; /* calls entries */
    int failures;
    pthread_barrier_t *start;
};

static size_t discard(char *p, size_t s, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return s * n;
}

/* The same request the gateway sends (system prompt included), so both
 * paths cost the stand-in the same. */
static char *raw_body;

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    CURL *e = NULL;
    struct curl_slist *h = NULL;
    char endpoint[512];
    if (w->is_raw) {
        e = curl_easy_init();
        snprintf(endpoint, sizeof(endpoint), "%s/chat/completions", w->url);
        h = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_URL, endpoint);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, raw_body);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    }
    pthread_barrier_wait(w->start);
    for (int i = 0; i < w->calls; i++) {
        int64_t t0 = clock_mono_ns();
        bool ok;
        if (w->is_raw) {
            long status = 0;
            ok = curl_easy_perform(e) == CURLE_OK &&
                 curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200;
        } else {
            struct ai_msg m = {"user", "Say pong"};
            struct ai_request req = {.op = AI_OP_CHAT, .msgs = &m, .n_msgs = 1, .max_tokens = 64};
            struct ai_result r;
            ok = ai_run(w->ai, &req, &r, NULL) == 0;
            if (ok)
                ai_result_release(&r);
        }
        w->lat_ms[i] = (double)(clock_mono_ns() - t0) / 1e6;
        w->failures += !ok;
    }
    if (e) {
        curl_easy_cleanup(e);
        curl_slist_free_all(h);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct stats {
    double p50, p95, p99, secs;
    int failures;
    long n;
};

static struct stats run(struct ai *ai, const char *url, int threads, int calls, bool is_raw)
{
    struct worker *ws = xcalloc((size_t)threads, sizeof(*ws));
    pthread_t *ts = xcalloc((size_t)threads, sizeof(*ts));
    double *all = xcalloc((size_t)threads * (size_t)calls, sizeof(double));
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        ws[i] = (struct worker){.ai = ai,
                                .url = url,
                                .calls = calls,
                                .is_raw = is_raw,
                                .lat_ms = all + (size_t)i * (size_t)calls,
                                .start = &start};
        pthread_create(&ts[i], NULL, run_worker, &ws[i]);
    }
    pthread_barrier_wait(&start);
    int64_t t0 = clock_mono_ns();
    struct stats s = {0};
    for (int i = 0; i < threads; i++) {
        pthread_join(ts[i], NULL);
        s.failures += ws[i].failures;
    }
    s.secs = (double)(clock_mono_ns() - t0) / 1e9;
    s.n = (long)threads * calls;
    qsort(all, (size_t)s.n, sizeof(double), cmp_double);
    s.p50 = all[s.n / 2];
    s.p95 = all[(long)((double)s.n * 0.95)];
    s.p99 = all[(long)((double)s.n * 0.99)];
    pthread_barrier_destroy(&start);
    xfree(all);
    xfree(ts);
    xfree(ws);
    return s;
}

static void print(const char *name, struct stats s)
{
    printf("%-8s %6ld calls %6.1f/s  p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  failures %d\n", name,
           s.n, (double)s.n / s.secs, s.p50, s.p95, s.p99, s.failures);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_gateway BASE_URL [threads] [calls_per_thread]\n");
        return 2;
    }
    const char *url = argv[1];
    long long threads = 64, calls = 40;
    if ((argc > 2 && parse_int64(argv[2], 1, 1024, &threads)) ||
        (argc > 3 && parse_int64(argv[3], 1, 100000, &calls))) {
        fprintf(stderr, "threads: 1..1024, calls: 1..100000\n");
        return 2;
    }
    mail_global_init();
    struct config c;
    config_init(&c);
    char err[256];
    const char *kv[][2] = {
        {"ai_providers", "openai"}, {"ai_base_url", url},  {"ai_chat_model", "standin-chat"},
        {"ai_embed_model", ""},     {"ai_retries", "0"},   {"ai_breaker_failures", "1000"},
        {"ai_cache_ttl_s", "0"},    {"log_level", "error"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (config_set(&c, kv[i][0], kv[i][1], CFG_SRC_FLAG, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
    if (config_finish(&c, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    struct ai *ai = NULL;
    if (ai_new(&c, NULL, &ai, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    json_t *rb =
        json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i, s:f}", "model", "standin-chat",
                  "messages", "role", "system", "content", ai__template("system.txt"), "role",
                  "user", "content", "Say pong", "max_tokens", 64, "temperature", 0.7);
    raw_body = json_dumps(rb, JSON_COMPACT);
    json_decref(rb);
    /* warm both paths (connections, pools) */
    run(ai, url, (int)threads, 2, true);
    run(ai, url, (int)threads, 2, false);
    printf("AI gateway overhead: %lld concurrent callers, %lld calls each, 3 rounds\n", threads,
           calls);
    double add50[3], add95[3];
    for (int round = 0; round < 3; round++) {
        struct stats raw = run(ai, url, (int)threads, (int)calls, true);
        struct stats gw = run(ai, url, (int)threads, (int)calls, false);
        print("raw", raw);
        print("gateway", gw);
        add50[round] = gw.p50 - raw.p50;
        add95[round] = gw.p95 - raw.p95;
        printf("added    p50 %+.2f ms  p95 %+.2f ms  p99 %+.2f ms\n", add50[round], add95[round],
               gw.p99 - raw.p99);
        if (raw.failures || gw.failures)
            return 1;
    }
    qsort(add50, 3, sizeof(double), cmp_double);
    qsort(add95, 3, sizeof(double), cmp_double);
    printf("median added: p50 %+.2f ms, p95 %+.2f ms (target: p95 <= 5 ms)\n", add50[1], add95[1]);
    xfree(raw_body);
    ai_free(ai);
    config_release(&c);
    mail_global_cleanup();
    return 0;
}
