/*
 * bench_auth.c - the figures the accounts issue asks for:
 *
 *   bench_auth token DATABASE_URL [N]
 *       cost of checking a bearer token per request: the JWT verification
 *       alone, and the whole principal check (verify + one indexed read of
 *       the user and session), in microseconds per call.
 *   bench_auth login BASE_URL [CONCURRENCY=20] [ROUNDS=5]
 *       login latency over HTTP with CONCURRENCY clients logging in at once,
 *       ROUNDS times each (users are created first through sign-up).
 */
#include "auth/auth.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int bench_token(const char *url, long long n)
{
    struct db *db = NULL;
    char err[512];
    int applied = 0;
    if (db_open(url, 4, &db, err, sizeof(err)) || db_migrate(db, &applied, err, sizeof(err))) {
        fprintf(stderr, "bench_auth: %s\n", err);
        return 1;
    }
    struct auth_keys *k = NULL;
    if (auth_keys_load("/tmp",
                       "b1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", &k,
                       err, sizeof(err))) {
        fprintf(stderr, "bench_auth: %s\n", err);
        return 1;
    }
    struct db_conn *c = NULL;
    db_acquire(db, &c);
    db_begin(c);
    struct auth_user u;
    char email[64];
    snprintf(email, sizeof(email), "bench-%lld@example.com", (long long)clock_now_ms());
    struct auth_session_opts so = {86400000, 86400000};
    char tok[AUTH_TOKEN_LEN], sid[UUID_STR_LEN];
    if (auth_user_create(c, email, "x", "user", "", true, &u) ||
        auth_session_create(c, u.id, "", "", &so, clock_now_ms(), tok, sid) || db_commit(c)) {
        fprintf(stderr, "bench_auth: setup failed: %s\n", db_errmsg(c));
        return 1;
    }
    struct auth_claims cl = {.ver = u.token_version};
    snprintf(cl.sub, sizeof(cl.sub), "%s", u.id);
    snprintf(cl.role, sizeof(cl.role), "user");
    snprintf(cl.sid, sizeof(cl.sid), "%s", sid);
    char jwt[AUTH_JWT_MAX];
    auth_jwt_issue(k, &cl, "iss", "loci", clock_now_ms() / 1000, 3600, jwt, sizeof(jwt));
    size_t jn = strlen(jwt);
    int64_t t0 = clock_mono_ns();
    for (long long i = 0; i < n; i++) {
        struct auth_claims out;
        if (auth_jwt_verify(k, jwt, jn, "iss", "loci", clock_now_ms() / 1000, &out)) {
            fprintf(stderr, "verify failed\n");
            return 1;
        }
    }
    double verify_us = (double)(clock_mono_ns() - t0) / 1e3 / (double)n;
    t0 = clock_mono_ns();
    for (long long i = 0; i < n; i++) {
        struct auth_principal p;
        if (auth_authenticate(c, k, "iss", "loci", jwt, clock_now_ms(), &p)) {
            fprintf(stderr, "authenticate failed\n");
            return 1;
        }
    }
    double full_us = (double)(clock_mono_ns() - t0) / 1e3 / (double)n;
    printf("%-9s jwt verify %.2f us/op, full check (verify + user/session read) %.2f us/op "
           "(%lld ops)\n",
           db_backend_name(db), verify_us, full_us, n);
    printf("RESULT token_check backend=%s verify_us=%.3f full_us=%.3f\n", db_backend_name(db),
           verify_us, full_us);
    db_release(c);
    auth_keys_free(k);
    db_close(db);
    return 0;
}

struct client {
    const char *base;
    int idx;
    int rounds;
    int64_t *lat_ns; /* rounds entries */
    pthread_barrier_t *start;
    int failures;
};

static size_t sink(char *p, size_t s, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return s * n;
}

static long post(CURL *curl, const char *url, const char *body)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink);
    long code = 0;
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    return code;
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    CURL *curl = curl_easy_init();
    char url[512], body[256];
    snprintf(body, sizeof(body),
             "{\"email\":\"bench%d@example.com\",\"password\":\"bench-password-1\","
             "\"token_delivery\":\"body\"}",
             cl->idx);
    snprintf(url, sizeof(url), "%s/api/v1/auth/login", cl->base);
    for (int r = 0; r < cl->rounds; r++) {
        pthread_barrier_wait(cl->start); /* everyone logs in at the same moment */
        int64_t t0 = clock_mono_ns();
        long code = post(curl, url, body);
        cl->lat_ns[r] = clock_mono_ns() - t0;
        if (code != 200)
            cl->failures++;
    }
    curl_easy_cleanup(curl);
    return NULL;
}

static int bench_login(const char *base, int conc, int rounds)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();
    char url[512], body[256];
    snprintf(url, sizeof(url), "%s/api/v1/auth/signup", base);
    for (int i = 0; i < conc; i++) {
        snprintf(body, sizeof(body),
                 "{\"email\":\"bench%d@example.com\",\"password\":\"bench-password-1\"}", i);
        long code = post(curl, url, body);
        if (code != 202) {
            fprintf(stderr,
                    "bench_auth: signup answered %ld (rate limits? start the server with "
                    "--rate-auth-burst 1000 --rate-auth-per-min 100000)\n",
                    code);
            return 1;
        }
    }
    curl_easy_cleanup(curl);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)conc);
    struct client *cls = xcalloc((size_t)conc, sizeof(*cls));
    int64_t *all = xcalloc((size_t)(conc * rounds), sizeof(int64_t));
    pthread_t *th = xcalloc((size_t)conc, sizeof(*th));
    for (int i = 0; i < conc; i++) {
        cls[i] = (struct client){base, i, rounds, all + i * rounds, &start, 0};
        pthread_create(&th[i], NULL, client_main, &cls[i]);
    }
    int failures = 0;
    for (int i = 0; i < conc; i++) {
        pthread_join(th[i], NULL);
        failures += cls[i].failures;
    }
    size_t n = (size_t)(conc * rounds);
    qsort(all, n, sizeof(int64_t), cmp_i64);
    double p50 = (double)all[n / 2] / 1e6,
           p99 = (double)all[(n * 99) / 100 >= n ? n - 1 : (n * 99) / 100] / 1e6;
    double max = (double)all[n - 1] / 1e6;
    printf("login: %d concurrent x %d rounds: p50 %.1f ms, p99 %.1f ms, max %.1f ms, failures "
           "%d\n",
           conc, rounds, p50, p99, max, failures);
    printf("RESULT login concurrency=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f failures=%d\n", conc,
           p50, p99, max, failures);
    xfree(cls);
    xfree(all);
    xfree(th);
    pthread_barrier_destroy(&start);
    curl_global_cleanup();
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "token") == 0) {
        long long n = 20000;
        if (argc > 3 && parse_int64(argv[3], 1, 100000000, &n))
            return 2;
        return bench_token(argv[2], n);
    }
    if (argc >= 3 && strcmp(argv[1], "login") == 0) {
        long long conc = 20, rounds = 5;
        if ((argc > 3 && parse_int64(argv[3], 1, 1000, &conc)) ||
            (argc > 4 && parse_int64(argv[4], 1, 1000, &rounds)))
            return 2;
        return bench_login(argv[2], (int)conc, (int)rounds);
    }
    fprintf(stderr, "usage: bench_auth token DATABASE_URL [N] | login BASE_URL [CONCURRENCY] "
                    "[ROUNDS]\n");
    return 2;
}
