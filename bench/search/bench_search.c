/*
 * bench_search.c - the search figures of issue 7.
 *
 * Usage:
 *   bench_search kernel [N=100000] [DIMS=384] [ROUNDS=15]
 *   bench_search hybrid DATABASE_URL [N_CHUNKS=100000] [QUERIES=300]
 *
 * kernel: exact top-10 over an N x DIMS float32 matrix (random unit rows,
 * 64-byte aligned) on one thread, against the memory-bandwidth floor
 * measured in the same run: the time to read the same array once, summing
 * it with as little work per byte as possible (8 AVX2 accumulators). Rounds
 * alternate floor, AVX2 kernel and portable kernel so that drift hits all
 * three; the report gives min and median and the ratio of the medians.
 *
 * hybrid: search_run() latency over N_CHUNKS synthetic English-like chunks
 * (about 200 words each, Zipf-distributed words from a made-up vocabulary
 * with English function words on top) of one user, 100 per document, with
 * their FTS rows and local-embedder vectors (384 dims). The database is
 * filled on first use and reused when it already holds the chunks. Queries
 * are 2-3 mid-frequency words. The first search builds the user's vector
 * index (timed apart); then QUERIES searches per mode (hybrid, fts, vector),
 * limit 10, one thread: p50, p95, p99, max.
 *
 * Every figure is also one machine-readable line "RESULT key=value ...".
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/log.h"
#include "search/search.h"
#include "services/ai/ai.h"
#include "store/db.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static double rng_unit(void)
{
    return (double)(rng() >> 11) / (double)(1ULL << 53);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_double);
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return v[i == 0 ? 0 : i - 1];
}

static long long arg_num(int argc, char **argv, int i, long long def)
{
    long long v = def;
    if (argc > i && (parse_int64(argv[i], 1, 1LL << 40, &v) != LOCI_OK)) {
        fprintf(stderr, "bench_search: bad number '%s'\n", argv[i]);
        exit(2);
    }
    return v;
}

/* ---- kernel vs the bandwidth floor ---- */

/* Eight independent accumulators in registers: one load and one add per 32
 * bytes, far below what a core can do, so the time is the memory's. */
__attribute__((target("avx2"))) static float stream_sum_avx2(const float *m, size_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(m + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(m + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(m + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(m + i + 24));
        a4 = _mm256_add_ps(a4, _mm256_load_ps(m + i + 32));
        a5 = _mm256_add_ps(a5, _mm256_load_ps(m + i + 40));
        a6 = _mm256_add_ps(a6, _mm256_load_ps(m + i + 48));
        a7 = _mm256_add_ps(a7, _mm256_load_ps(m + i + 56));
    }
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    float t[8];
    _mm256_storeu_ps(t, a0);
    float s = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
    for (; i < n; i++)
        s += m[i];
    return s;
}

static float stream_sum_portable(const float *m, size_t n)
{
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += m[i + (size_t)j];
    for (; i < n; i++)
        s[0] += m[i];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static int bench_kernel(size_t n, int dims, int rounds)
{
    size_t count = n * (size_t)dims;
    double mb = (double)count * sizeof(float) / 1e6;
    void *mem = xmalloc(count * sizeof(float) + 64);
    float *m = (float *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    float *q = xmalloc((size_t)dims * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float *r = m + i * (size_t)dims;
        double norm = 0;
        for (int j = 0; j < dims; j++) {
            r[j] = (float)(rng_unit() * 2 - 1);
            norm += (double)r[j] * r[j];
        }
        for (int j = 0; j < dims; j++)
            r[j] = (float)(r[j] / sqrt(norm));
    }
    for (int j = 0; j < dims; j++)
        q[j] = (float)(rng_unit() * 2 - 1);
    bool is_avx2 = strcmp(search_kernel_name(), "avx2") == 0;
    double *t_floor = xcalloc((size_t)rounds, sizeof(double));
    double *t_auto = xcalloc((size_t)rounds, sizeof(double));
    double *t_port = xcalloc((size_t)rounds, sizeof(double));
    size_t idx_a[10], idx_p[10];
    float sc_a[10], sc_p[10];
    volatile float sink = 0;
    /* a pass untimed: pages are touched, caches and clocks warm */
    sink += is_avx2 ? stream_sum_avx2(m, count) : stream_sum_portable(m, count);
    search_topk(m, n, dims, q, 10, idx_a, sc_a);
    for (int r = 0; r < rounds; r++) {
        int64_t t0 = clock_mono_ns();
        sink += is_avx2 ? stream_sum_avx2(m, count) : stream_sum_portable(m, count);
        int64_t t1 = clock_mono_ns();
        search_topk_kernel(SEARCH_KERNEL_AUTO, m, n, dims, q, 10, idx_a, sc_a);
        int64_t t2 = clock_mono_ns();
        search_topk_kernel(SEARCH_KERNEL_PORTABLE, m, n, dims, q, 10, idx_p, sc_p);
        int64_t t3 = clock_mono_ns();
        t_floor[r] = (double)(t1 - t0) / 1e6;
        t_auto[r] = (double)(t2 - t1) / 1e6;
        t_port[r] = (double)(t3 - t2) / 1e6;
    }
    (void)sink;
    int same = memcmp(idx_a, idx_p, sizeof(idx_a)) == 0;
    double f_min = pct(t_floor, (size_t)rounds, 0), f_med = pct(t_floor, (size_t)rounds, 50);
    double a_min = pct(t_auto, (size_t)rounds, 0), a_med = pct(t_auto, (size_t)rounds, 50);
    double p_min = pct(t_port, (size_t)rounds, 0), p_med = pct(t_port, (size_t)rounds, 50);
    printf("exact top-10 over %zu x %d float32 (%.1f MB), one thread, %d rounds\n", n, dims, mb,
           rounds);
    printf("  %-34s %9s %9s %9s %8s\n", "", "min ms", "median ms", "GB/s", "x floor");
    printf("  %-34s %9.2f %9.2f %9.1f %8.2f\n", "floor: read the array (sum)", f_min, f_med,
           mb / f_med, 1.0);
    printf("  %-34s %9.2f %9.2f %9.1f %8.2f\n",
           is_avx2 ? "top-10, AVX2+FMA kernel" : "top-10, portable (no AVX2)", a_min, a_med,
           mb / a_med, a_med / f_med);
    printf("  %-34s %9.2f %9.2f %9.1f %8.2f\n", "top-10, portable kernel", p_min, p_med, mb / p_med,
           p_med / f_med);
    printf("  kernels agree on the top 10: %s\n", same ? "yes" : "NO");
    printf("RESULT figure=kernel n=%zu dims=%d kernel=%s floor_ms=%.3f topk_ms=%.3f "
           "portable_ms=%.3f ratio=%.3f ratio_min=%.3f floor_gbps=%.2f\n",
           n, dims, search_kernel_name(), f_med, a_med, p_med, a_med / f_med, a_min / f_min,
           mb / f_med);
    xfree(t_floor);
    xfree(t_auto);
    xfree(t_port);
    xfree(q);
    xfree(mem);
    return same ? 0 : 1;
}

/* ---- synthetic text ---- */

static const char *const function_words[] = {
    "the",     "of",    "and",   "to",   "a",     "in",   "is",   "that", "for",   "it",
    "as",      "was",   "with",  "be",   "by",    "on",   "not",  "this", "are",   "or",
    "from",    "at",    "which", "an",   "but",   "have", "has",  "can",  "its",   "their",
    "also",    "these", "more",  "than", "other", "into", "when", "such", "only",  "through",
    "between", "each",  "may",   "most", "they",  "we",   "one",  "all",  "there", "been"};
#define N_FUNCTION (sizeof(function_words) / sizeof(function_words[0]))
#define N_CONTENT  20000
#define N_VOCAB    (N_FUNCTION + N_CONTENT)

struct vocab {
    char (*words)[24];
    double *cdf; /* Zipf over ranks: function words first */
};

static void vocab_init(struct vocab *v)
{
    static const char *const onset[] = {"b",  "c",  "d",  "f",  "g",  "h",  "l",  "m",
                                        "n",  "p",  "r",  "s",  "t",  "v",  "st", "tr",
                                        "pr", "ch", "th", "sh", "gr", "cl", "br", ""};
    static const char *const nucleus[] = {"a", "e", "i", "o", "u", "ea", "io", "ou", "ai"};
    static const char *const coda[] = {"", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck"};
    v->words = xcalloc(N_VOCAB, sizeof(*v->words));
    v->cdf = xcalloc(N_VOCAB, sizeof(*v->cdf));
    for (size_t i = 0; i < N_FUNCTION; i++)
        snprintf(v->words[i], sizeof(v->words[i]), "%s", function_words[i]);
    for (size_t i = N_FUNCTION; i < N_VOCAB; i++) {
        for (;;) {
            char w[24] = "";
            int syl = 2 + (int)(rng() % 3);
            for (int s = 0; s < syl; s++) {
                size_t used = strlen(w);
                snprintf(w + used, sizeof(w) - used, "%s%s%s", onset[rng() % 24],
                         nucleus[rng() % 9], s == syl - 1 ? coda[rng() % 11] : "");
            }
            bool is_dup = strlen(w) < 4;
            for (size_t j = N_FUNCTION; j < i && !is_dup; j++) /* 2e8 compares: ~1 s */
                is_dup = strcmp(v->words[j], w) == 0;
            if (!is_dup) {
                snprintf(v->words[i], sizeof(v->words[i]), "%s", w);
                break;
            }
        }
    }
    double sum = 0;
    for (size_t i = 0; i < N_VOCAB; i++) {
        sum += 1.0 / pow((double)i + 2.7, 1.0);
        v->cdf[i] = sum;
    }
    for (size_t i = 0; i < N_VOCAB; i++)
        v->cdf[i] /= sum;
}

static const char *vocab_draw(const struct vocab *v)
{
    double u = rng_unit();
    size_t lo = 0, hi = N_VOCAB - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return v->words[lo];
}

/* About `words` words in sentences of 8-22 words. */
static char *make_chunk(const struct vocab *v, int words)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    int n = 0;
    while (n < words) {
        int len = 8 + (int)(rng() % 15);
        for (int i = 0; i < len; i++, n++) {
            const char *w = vocab_draw(v);
            if (i == 0) {
                buf_append_char(&b, (char)(w[0] - 'a' + 'A'));
                buf_append_str(&b, w + 1);
            } else {
                buf_append_char(&b, ' ');
                buf_append_str(&b, w);
            }
            if (i > 2 && i < len - 2 && rng() % 12 == 0)
                buf_append_char(&b, ',');
        }
        buf_append_str(&b, ". ");
    }
    b.p[--b.len] = '\0';
    return buf_detach(&b, NULL);
}

/* ---- filling the database ---- */

#define BENCH_USER  "01900000-0000-7000-8000-0000000be5c1"
#define PER_DOC     100
#define CHUNK_WORDS 200

struct doc_batch {
    char doc_id[UUID_STR_LEN];
    int doc_no;
    char *texts[PER_DOC];
    char ids[PER_DOC][UUID_STR_LEN];
    struct ai_vectors vecs;
};

static int tx_doc(struct db_conn *c, void *arg)
{
    struct doc_batch *d = arg;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "INSERT INTO documents (id, user_id, filename, media_type, size_bytes, "
                        "sha256, status, chunk_count, created_at, updated_at) "
                        "VALUES (?, ?, ?, 'text/plain', 1, ?, 'done', ?, 0, 0)",
                        &st);
    if (rc)
        return rc;
    char name[64];
    snprintf(name, sizeof(name), "synthetic-%05d.txt", d->doc_no);
    db_bind_text(st, 1, d->doc_id, (size_t)-1);
    db_bind_text(st, 2, BENCH_USER, (size_t)-1);
    db_bind_text(st, 3, name, (size_t)-1);
    db_bind_text(st, 4, d->doc_id, (size_t)-1);
    db_bind_int64(st, 5, PER_DOC);
    if ((rc = db_run(st, NULL)))
        return rc;
    for (int i = 0; i < PER_DOC; i++) {
        rc = db_prepare(c,
                        "INSERT INTO chunks (id, user_id, document_id, ord, text, page, heading, "
                        "created_at) VALUES (?, ?, ?, ?, ?, ?, NULL, 0)",
                        &st);
        if (rc)
            return rc;
        db_bind_text(st, 1, d->ids[i], (size_t)-1);
        db_bind_text(st, 2, BENCH_USER, (size_t)-1);
        db_bind_text(st, 3, d->doc_id, (size_t)-1);
        db_bind_int64(st, 4, i);
        db_bind_text(st, 5, d->texts[i], (size_t)-1);
        db_bind_int64(st, 6, 1 + i / 3);
        if ((rc = db_run(st, NULL)))
            return rc;
        rc = db_prepare(c,
                        "INSERT INTO chunk_vectors (chunk_id, user_id, document_id, embedder, "
                        "dims, vec) VALUES (?, ?, ?, ?, ?, ?)",
                        &st);
        if (rc)
            return rc;
        db_bind_text(st, 1, d->ids[i], (size_t)-1);
        db_bind_text(st, 2, BENCH_USER, (size_t)-1);
        db_bind_text(st, 3, d->doc_id, (size_t)-1);
        db_bind_text(st, 4, d->vecs.embedder, (size_t)-1);
        db_bind_int64(st, 5, d->vecs.dims);
        db_bind_blob(st, 6, d->vecs.v + (size_t)i * (size_t)d->vecs.dims,
                     (size_t)d->vecs.dims * sizeof(float));
        if ((rc = db_run(st, NULL)))
            return rc;
    }
    return search_chunks_added(c, BENCH_USER, d->doc_id);
}

static int64_t count_chunks(struct db *db)
{
    struct db_conn *c = NULL;
    struct db_stmt *st = NULL;
    int64_t n = -1;
    if (db_acquire(db, &c))
        return -1;
    if (!db_prepare(c, "SELECT COUNT(*) FROM chunks WHERE user_id = ?", &st)) {
        db_bind_text(st, 1, BENCH_USER, (size_t)-1);
        if (db_step(st) == LOCI_ROW)
            n = db_col_int64(st, 0);
        db_stmt_done(st);
    }
    db_release(c);
    return n;
}

static int fill(struct db *db, struct ai *ai, const struct vocab *v, int64_t n_chunks)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    if (rc)
        return rc;
    /* start over: the user and everything of theirs (FTS rows have no FK) */
    rc = db_exec(c, "DELETE FROM users WHERE id = '" BENCH_USER "'");
    if (!rc && db_backend(db) == DB_SQLITE)
        rc = db_exec(c, "DELETE FROM chunks_fts WHERE user_id = '" BENCH_USER "'");
    if (!rc)
        rc = db_exec(c, "INSERT INTO users (id, email, email_norm, password_hash, created_at, "
                        "updated_at) VALUES ('" BENCH_USER "', 'bench@search', 'bench@search', "
                        "'x', 0, 0)");
    db_release(c);
    if (rc)
        return rc;
    int n_docs = (int)((n_chunks + PER_DOC - 1) / PER_DOC);
    int64_t t0 = clock_mono_ns(), embed_ns = 0;
    for (int d = 0; d < n_docs && !rc; d++) {
        struct doc_batch b = {.doc_no = d};
        ids_uuid7(b.doc_id);
        size_t lens[PER_DOC];
        for (int i = 0; i < PER_DOC; i++) {
            b.texts[i] = make_chunk(v, CHUNK_WORDS);
            lens[i] = strlen(b.texts[i]);
            ids_uuid7(b.ids[i]);
        }
        int64_t e0 = clock_mono_ns();
        rc = ai_embed(ai, (const char *const *)b.texts, lens, PER_DOC, NULL, &b.vecs, NULL);
        embed_ns += clock_mono_ns() - e0;
        if (!rc)
            rc = db_tx(db, tx_doc, &b);
        for (int i = 0; i < PER_DOC; i++)
            xfree(b.texts[i]);
        ai_vectors_release(&b.vecs);
        if ((d + 1) % (n_docs / 20 ? n_docs / 20 : 1) == 0)
            fprintf(stderr, "bench_search: filled %d of %d documents (%.0f s, embedding %.0f s)\n",
                    d + 1, n_docs, (double)(clock_mono_ns() - t0) / 1e9, (double)embed_ns / 1e9);
    }
    if (!rc)
        printf("filled %d chunks in %d documents in %.1f s (embedding %.1f s)\n", n_docs * PER_DOC,
               n_docs, (double)(clock_mono_ns() - t0) / 1e9, (double)embed_ns / 1e9);
    return rc;
}

/* ---- hybrid latency ---- */

static int bench_hybrid(const char *url, int64_t n_chunks, int n_queries)
{
    struct db *db = NULL;
    struct ai *ai = NULL;
    struct search *s = NULL;
    struct vocab v = {0};
    char **queries = NULL;
    double *lat = xcalloc((size_t)n_queries, sizeof(double));
    char err[512];
    struct config cfg;
    config_init(&cfg);
    int rc = db_open(url, 4, &db, err, sizeof(err));
    if (!rc)
        rc = db_migrate(db, &(int){0}, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "bench_search: %s\n", err);
        goto out;
    }
    if ((rc = config_finish(&cfg, err, sizeof(err))) ||
        (rc = ai_new(&cfg, NULL, &ai, err, sizeof(err)))) {
        fprintf(stderr, "bench_search: %s\n", err);
        goto out;
    }
    vocab_init(&v);
    int64_t have = count_chunks(db);
    int64_t want = (n_chunks + PER_DOC - 1) / PER_DOC * PER_DOC;
    if (have != want) {
        fprintf(stderr, "bench_search: filling %lld chunks (found %lld)\n", (long long)want,
                (long long)have);
        if ((rc = fill(db, ai, &v, n_chunks))) {
            fprintf(stderr, "bench_search: fill failed: %s\n", loci_err_message(rc));
            goto out;
        }
        have = count_chunks(db);
    } else {
        printf("reusing %lld chunks already in the database\n", (long long)have);
    }
    /* queries: 2-3 words of mid frequency (content ranks 20..2000) */
    rng_state = 0x1234567ULL;
    queries = xcalloc((size_t)n_queries, sizeof(*queries));
    for (int i = 0; i < n_queries; i++) {
        int nw = 2 + (int)(rng() % 2);
        char q[128] = "";
        for (int w = 0; w < nw; w++) {
            size_t used = strlen(q);
            snprintf(q + used, sizeof(q) - used, "%s%s", w ? " " : "",
                     v.words[N_FUNCTION + 20 + rng() % 1980]);
        }
        queries[i] = xstrdup(q);
    }
    s = search_new(db, ai, (size_t)1 << 30);
    struct search_results r = {0};
    int64_t t0 = clock_mono_ns();
    rc = search_run(s, BENCH_USER, queries[0], SEARCH_VECTOR, NULL, 10, &r);
    double load_ms = (double)(clock_mono_ns() - t0) / 1e6;
    search_results_release(&r);
    if (rc) {
        fprintf(stderr, "bench_search: first search failed: %s\n", loci_err_message(rc));
        goto out;
    }
    struct search_stats st;
    search_stats(s, &st);
    printf("%s: first vector search (builds the index, %.1f MB) %.0f ms\n", db_backend_name(db),
           (double)st.bytes / 1e6, load_ms);
    printf("RESULT figure=index_load backend=%s chunks=%lld ms=%.1f bytes=%zu\n",
           db_backend_name(db), (long long)have, load_ms, st.bytes);
    static const enum search_mode modes[] = {SEARCH_HYBRID, SEARCH_FTS, SEARCH_VECTOR};
    static const char *const names[] = {"hybrid", "fts", "vector"};
    printf("%s: %d queries per mode, limit 10, one thread (ms)\n", db_backend_name(db), n_queries);
    printf("  %-8s %8s %8s %8s %8s %8s %10s\n", "mode", "p50", "p95", "p99", "max", "mean",
           "hits/query");
    for (size_t m = 0; m < 3; m++) {
        for (int i = 0; i < 10; i++) { /* warm */
            search_run(s, BENCH_USER, queries[i], modes[m], NULL, 10, &r);
            search_results_release(&r);
        }
        double sum = 0;
        size_t hits = 0;
        for (int i = 0; i < n_queries; i++) {
            int64_t a = clock_mono_ns();
            rc = search_run(s, BENCH_USER, queries[i], modes[m], NULL, 10, &r);
            lat[i] = (double)(clock_mono_ns() - a) / 1e6;
            sum += lat[i];
            hits += r.n;
            search_results_release(&r);
            if (rc) {
                fprintf(stderr, "bench_search: '%s' failed: %s\n", queries[i],
                        loci_err_message(rc));
                goto out;
            }
        }
        double p50 = pct(lat, (size_t)n_queries, 50), p95 = pct(lat, (size_t)n_queries, 95);
        double p99 = pct(lat, (size_t)n_queries, 99), mx = pct(lat, (size_t)n_queries, 100);
        printf("  %-8s %8.2f %8.2f %8.2f %8.2f %8.2f %10.1f\n", names[m], p50, p95, p99, mx,
               sum / n_queries, (double)hits / n_queries);
        printf("RESULT figure=latency backend=%s mode=%s chunks=%lld queries=%d p50_ms=%.3f "
               "p95_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
               db_backend_name(db), names[m], (long long)have, n_queries, p50, p95, p99, mx);
    }
    printf("  e.g. '%s' -> ", queries[1]);
    search_run(s, BENCH_USER, queries[1], SEARCH_HYBRID, NULL, 3, &r);
    for (size_t i = 0; i < r.n; i++)
        printf("%s[%.4f] ", r.hits[i].chunk_id, r.hits[i].score);
    printf("\n  snippet: %s\n", r.n ? r.hits[0].snippet : "-");
    search_results_release(&r);
out:
    if (queries)
        for (int i = 0; i < n_queries; i++)
            xfree(queries[i]);
    xfree(queries);
    xfree(lat);
    xfree(v.words);
    xfree(v.cdf);
    search_free(s);
    ai_free(ai);
    if (db)
        db_close(db);
    config_release(&cfg);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    log_set_level(LOG_WARN);
    if (argc >= 2 && strcmp(argv[1], "kernel") == 0)
        return bench_kernel((size_t)arg_num(argc, argv, 2, 100000),
                            (int)arg_num(argc, argv, 3, 384), (int)arg_num(argc, argv, 4, 15));
    if (argc >= 3 && strcmp(argv[1], "hybrid") == 0)
        return bench_hybrid(argv[2], arg_num(argc, argv, 3, 100000),
                            (int)arg_num(argc, argv, 4, 300));
    fprintf(stderr, "usage: bench_search kernel [N] [DIMS] [ROUNDS]\n"
                    "       bench_search hybrid DATABASE_URL [N_CHUNKS] [QUERIES]\n");
    return 2;
}
