/*
 * search_vec.c - exact vector search: the top-k kernel (AVX2+FMA when the
 * CPU has it, portable C otherwise) and the cache of per-user flat indexes.
 *
 * An index holds every vector of one user and one embedder as one
 * contiguous, 64-byte aligned float32 matrix plus the chunk ids, built from
 * chunk_vectors the first time the user searches and kept until the user's
 * vectors change (search_vectors_changed, or a document event from the bus)
 * or the least recently used indexes must go to stay within the byte budget.
 * Readers share an index by reference count; building one happens outside
 * the cache mutex, once per user at a time (others wait for it).
 *
 * Not for: approximate search. Exact search over a user's own collection is
 * the design (DESIGN.md: up to ~10^6 vectors); measure before replacing it.
 */
#include "search/search_int.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* ---- top-k: a min-heap whose root is the worst kept candidate ---- */

struct topk {
    size_t *idx;
    float *sc;
    size_t n, k;
};

static inline bool is_worse(float sa, size_t ia, float sb, size_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

static void heap_down(struct topk *t, size_t i, size_t n)
{
    for (;;) {
        size_t l = 2 * i + 1, w = i;
        if (l < n && is_worse(t->sc[l], t->idx[l], t->sc[w], t->idx[w]))
            w = l;
        if (l + 1 < n && is_worse(t->sc[l + 1], t->idx[l + 1], t->sc[w], t->idx[w]))
            w = l + 1;
        if (w == i)
            return;
        float s = t->sc[i];
        size_t x = t->idx[i];
        t->sc[i] = t->sc[w];
        t->idx[i] = t->idx[w];
        t->sc[w] = s;
        t->idx[w] = x;
        i = w;
    }
}

static void heap_up(struct topk *t, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!is_worse(t->sc[i], t->idx[i], t->sc[p], t->idx[p]))
            return;
        float s = t->sc[i];
        size_t x = t->idx[i];
        t->sc[i] = t->sc[p];
        t->idx[i] = t->idx[p];
        t->sc[p] = s;
        t->idx[p] = x;
        i = p;
    }
}

static inline void topk_push(struct topk *t, size_t i, float s)
{
    if (s != s) /* NaN: a broken vector ranks last */
        s = -INFINITY;
    if (t->n < t->k) {
        t->sc[t->n] = s;
        t->idx[t->n] = i;
        heap_up(t, t->n++);
    } else if (is_worse(t->sc[0], t->idx[0], s, i)) {
        t->sc[0] = s;
        t->idx[0] = i;
        heap_down(t, 0, t->n);
    }
}

/* Heap sort in place: best first. */
static size_t topk_finish(struct topk *t)
{
    for (size_t end = t->n; end > 1; end--) {
        float s = t->sc[0];
        size_t x = t->idx[0];
        t->sc[0] = t->sc[end - 1];
        t->idx[0] = t->idx[end - 1];
        t->sc[end - 1] = s;
        t->idx[end - 1] = x;
        heap_down(t, 0, end - 1);
    }
    return t->n;
}

/* ---- dot products ---- */

typedef float v8f __attribute__((vector_size(32)));

static inline float dot_portable(const float *a, const float *b, int d)
{
    v8f acc0 = {0}, acc1 = {0};
    int j = 0;
    for (; j + 16 <= d; j += 16) {
        v8f x0, y0, x1, y1;
        memcpy(&x0, a + j, sizeof(x0));
        memcpy(&y0, b + j, sizeof(y0));
        memcpy(&x1, a + j + 8, sizeof(x1));
        memcpy(&y1, b + j + 8, sizeof(y1));
        acc0 += x0 * y0;
        acc1 += x1 * y1;
    }
    for (; j + 8 <= d; j += 8) {
        v8f x, y;
        memcpy(&x, a + j, sizeof(x));
        memcpy(&y, b + j, sizeof(y));
        acc0 += x * y;
    }
    acc0 += acc1;
    float s =
        ((acc0[0] + acc0[4]) + (acc0[1] + acc0[5])) + ((acc0[2] + acc0[6]) + (acc0[3] + acc0[7]));
    for (; j < d; j++)
        s += a[j] * b[j];
    return s;
}

__attribute__((target("avx2,fma"))) static inline float dot_avx2(const float *a, const float *b,
                                                                 int d)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int j = 0;
    for (; j + 32 <= d; j += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 16), _mm256_loadu_ps(b + j + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 24), _mm256_loadu_ps(b + j + 24), a3);
    }
    for (; j + 8 <= d; j += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), a0);
    a0 = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float s = _mm_cvtss_f32(h);
    for (; j < d; j++)
        s += a[j] * b[j];
    return s;
}

/* ---- kernels: every row, or the rows of one document ---- */

static void scan_portable(const float *m, size_t n, int d, const float *q, const uint32_t *row_doc,
                          uint32_t want, struct topk *t)
{
    for (size_t i = 0; i < n; i++)
        if (!row_doc || row_doc[i] == want)
            topk_push(t, i, dot_portable(m + i * (size_t)d, q, d));
}

__attribute__((target("avx2,fma"))) static void scan_avx2(const float *m, size_t n, int d,
                                                          const float *q, const uint32_t *row_doc,
                                                          uint32_t want, struct topk *t)
{
    if (!row_doc) {
        for (size_t i = 0; i < n; i++)
            topk_push(t, i, dot_avx2(m + i * (size_t)d, q, d));
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (row_doc[i] == want)
            topk_push(t, i, dot_avx2(m + i * (size_t)d, q, d));
}

static bool has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

const char *search_kernel_name(void)
{
    return has_avx2() ? "avx2" : "portable";
}

static size_t topk_run(enum search_kernel kern, const float *m, size_t n, int dims, const float *q,
                       const uint32_t *row_doc, uint32_t want, size_t k, size_t *out_idx,
                       float *out_score)
{
    struct topk t = {.idx = out_idx, .sc = out_score, .k = k};
    if (!m || !q || dims <= 0 || k == 0 || n == 0)
        return 0;
    if (kern != SEARCH_KERNEL_PORTABLE && has_avx2())
        scan_avx2(m, n, dims, q, row_doc, want, &t);
    else
        scan_portable(m, n, dims, q, row_doc, want, &t);
    return topk_finish(&t);
}

size_t search_topk_kernel(enum search_kernel kern, const float *m, size_t n, int dims,
                          const float *q, size_t k, size_t *out_idx, float *out_score)
{
    return topk_run(kern, m, n, dims, q, NULL, 0, k, out_idx, out_score);
}

size_t search_topk(const float *m, size_t n, int dims, const float *q, size_t k, size_t *out_idx,
                   float *out_score)
{
    return topk_run(SEARCH_KERNEL_AUTO, m, n, dims, q, NULL, 0, k, out_idx, out_score);
}

/* ---- an index ---- */

struct search__vindex {
    int refs; /* guarded by the cache mutex */
    int dims;
    size_t n, cap;
    float *m;    /* n * dims, 64-byte aligned */
    void *m_mem; /* what was allocated for m */
    char (*ids)[UUID_STR_LEN];
    uint32_t *row_doc; /* per row: its document's number in docs */
    size_t n_docs, cap_docs;
    char (*docs)[UUID_STR_LEN];
    size_t bytes;
};

static void vindex_free(struct search__vindex *ix)
{
    if (!ix)
        return;
    xfree(ix->m_mem);
    xfree(ix->ids);
    xfree(ix->row_doc);
    xfree(ix->docs);
    xfree(ix);
}

/* Room for cap rows, keeping the n there are. */
static void vindex_reserve(struct search__vindex *ix, size_t cap)
{
    size_t row = (size_t)ix->dims * sizeof(float);
    void *mem = xmalloc(cap * row + 64);
    float *m = (float *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    if (ix->n)
        memcpy(m, ix->m, ix->n * row);
    xfree(ix->m_mem);
    ix->m_mem = mem;
    ix->m = m;
    ix->ids = xrealloc(ix->ids, cap * sizeof(*ix->ids));
    ix->row_doc = xrealloc(ix->row_doc, cap * sizeof(*ix->row_doc));
    ix->cap = cap;
}

static uint32_t vindex_doc(struct search__vindex *ix, const char *doc)
{
    /* Rows of one document mostly come together: look at the last first. */
    for (size_t i = ix->n_docs; i > 0 && i + 8 > ix->n_docs; i--)
        if (strcmp(ix->docs[i - 1], doc) == 0)
            return (uint32_t)(i - 1);
    for (size_t i = 0; i + 8 <= ix->n_docs; i++)
        if (strcmp(ix->docs[i], doc) == 0)
            return (uint32_t)i;
    if (ix->n_docs == ix->cap_docs) {
        ix->cap_docs = ix->cap_docs ? ix->cap_docs * 2 : 16;
        ix->docs = xrealloc(ix->docs, ix->cap_docs * sizeof(*ix->docs));
    }
    snprintf(ix->docs[ix->n_docs], UUID_STR_LEN, "%s", doc);
    return (uint32_t)ix->n_docs++;
}

static void decode_le(float *dst, const unsigned char *src, int dims)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(dst, src, (size_t)dims * sizeof(float));
#else
    for (int i = 0; i < dims; i++) {
        uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                     (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
        memcpy(&dst[i], &u, sizeof(u));
    }
#endif
}

static int vindex_load(struct db *db, const char *user_id, const char *embedder, int dims,
                       struct search__vindex **out)
{
    struct search__vindex *ix = xcalloc(1, sizeof(*ix));
    ix->dims = dims;
    struct db_conn *c = NULL;
    struct db_stmt *st = NULL;
    size_t skipped = 0;
    int rc = db_acquire(db, &c);
    if (rc)
        goto out;
    rc =
        db_prepare(c, "SELECT COUNT(*) FROM chunk_vectors WHERE user_id = ? AND embedder = ?", &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, embedder, (size_t)-1);
    rc = db_step(st);
    if (rc != LOCI_ROW)
        goto out;
    int64_t count = db_col_int64(st, 0);
    db_stmt_done(st);
    st = NULL;
    vindex_reserve(ix, count > 0 ? (size_t)count : 1);
    rc = db_prepare(c,
                    "SELECT chunk_id, document_id, dims, vec FROM chunk_vectors "
                    "WHERE user_id = ? AND embedder = ?",
                    &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, embedder, (size_t)-1);
    while ((rc = db_step(st)) == LOCI_ROW) {
        size_t id_n = 0, doc_n = 0, vec_n = 0;
        const char *id = db_col_text(st, 0, &id_n);
        const char *doc = db_col_text(st, 1, &doc_n);
        const void *vec = db_col_blob(st, 3, &vec_n);
        if (db_col_int64(st, 2) != dims || vec_n != (size_t)dims * sizeof(float) ||
            id_n >= UUID_STR_LEN || doc_n >= UUID_STR_LEN) {
            skipped++;
            continue;
        }
        if (ix->n == ix->cap) /* rows added since the count */
            vindex_reserve(ix, ix->cap * 2);
        decode_le(ix->m + ix->n * (size_t)dims, vec, dims);
        memcpy(ix->ids[ix->n], id, id_n + 1);
        ix->row_doc[ix->n] = vindex_doc(ix, doc);
        ix->n++;
    }
    if (rc == LOCI_OK) {
        ix->bytes =
            sizeof(*ix) +
            ix->cap * ((size_t)dims * sizeof(float) + sizeof(*ix->ids) + sizeof(*ix->row_doc)) +
            64 + ix->cap_docs * sizeof(*ix->docs);
        ix->refs = 1;
        if (skipped)
            log_warn(NULL, "search: skipped %zu malformed vectors of embedder '%s'", skipped,
                     embedder);
        *out = ix;
        ix = NULL;
    }
out:
    db_stmt_done(st);
    if (c)
        db_release(c);
    vindex_free(ix);
    return rc;
}

/* A big index is scanned in parts on several threads: one core cannot
 * draw all of the memory bandwidth (here 17 GB/s on one, 28 on two). Below
 * PAR_MIN_FLOATS starting threads costs more than it saves. */
#define PAR_MIN_FLOATS ((size_t)4 << 20)
#define PAR_MAX        4

struct part {
    const struct search__vindex *ix;
    const float *q;
    const uint32_t *row_doc; /* NULL: every row */
    uint32_t want;
    size_t lo, n, k;
    size_t *idx;
    float *sc;
    size_t got;
};

static void *part_main(void *arg)
{
    struct part *p = arg;
    size_t d = (size_t)p->ix->dims;
    p->got = topk_run(SEARCH_KERNEL_AUTO, p->ix->m + p->lo * d, p->n, p->ix->dims, p->q,
                      p->row_doc ? p->row_doc + p->lo : NULL, p->want, p->k, p->idx, p->sc);
    for (size_t i = 0; i < p->got; i++)
        p->idx[i] += p->lo;
    return NULL;
}

size_t search__vindex_topk(const struct search__vindex *ix, const char *document_id, const float *q,
                           size_t k, int threads, struct search__cand *out)
{
    const uint32_t *row_doc = NULL;
    uint32_t want = 0;
    if (document_id) {
        size_t d = 0;
        while (d < ix->n_docs && strcmp(ix->docs[d], document_id) != 0)
            d++;
        if (d == ix->n_docs)
            return 0;
        row_doc = ix->row_doc;
        want = (uint32_t)d;
    }
    size_t n_parts =
        ix->n * (size_t)ix->dims >= PAR_MIN_FLOATS && threads > 1 ? (size_t)threads : 1;
    if (n_parts > PAR_MAX)
        n_parts = PAR_MAX;
    struct part parts[PAR_MAX];
    pthread_t tids[PAR_MAX];
    bool is_started[PAR_MAX] = {0};
    size_t *idx = xmalloc(n_parts * k * sizeof(*idx));
    float *sc = xmalloc(n_parts * k * sizeof(*sc));
    for (size_t p = 0; p < n_parts; p++) {
        size_t lo = ix->n * p / n_parts, hi = ix->n * (p + 1) / n_parts;
        parts[p] = (struct part){.ix = ix,
                                 .q = q,
                                 .row_doc = row_doc,
                                 .want = want,
                                 .lo = lo,
                                 .n = hi - lo,
                                 .k = k,
                                 .idx = idx + p * k,
                                 .sc = sc + p * k};
        if (p > 0)
            is_started[p] = pthread_create(&tids[p], NULL, part_main, &parts[p]) == 0;
    }
    part_main(&parts[0]);
    for (size_t p = 1; p < n_parts; p++) {
        if (is_started[p])
            pthread_join(tids[p], NULL);
        else
            part_main(&parts[p]); /* no thread to be had: do it here */
    }
    /* Merge the parts' best into one top k (ties: lower row first). */
    size_t *m_idx = xmalloc(k * sizeof(*m_idx));
    float *m_sc = xmalloc(k * sizeof(*m_sc));
    struct topk t = {.idx = m_idx, .sc = m_sc, .k = k};
    for (size_t p = 0; p < n_parts; p++)
        for (size_t i = 0; i < parts[p].got; i++)
            topk_push(&t, parts[p].idx[i], parts[p].sc[i]);
    size_t n = topk_finish(&t);
    for (size_t i = 0; i < n; i++) {
        memcpy(out[i].chunk_id, ix->ids[m_idx[i]], UUID_STR_LEN);
        out[i].score = m_sc[i];
    }
    xfree(m_idx);
    xfree(m_sc);
    xfree(idx);
    xfree(sc);
    return n;
}

/* ---- the cache ---- */

struct search__ventry {
    char *user_id;
    char *embedder;
    int dims;
    uint32_t hash;                      /* of user_id: a user's entries share a bucket */
    struct search__vindex *ix;          /* NULL while loading */
    bool is_loading;                    /* someone is building ix */
    bool is_dirty;                      /* the user's vectors changed during that build */
    struct search__ventry *chain;       /* next in the bucket */
    struct search__ventry *prev, *next; /* LRU list */
};

void search__vcache_init(struct search__vcache *vc, size_t cap)
{
    memset(vc, 0, sizeof(*vc));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    vc->n_threads = cores < 1 ? 1 : cores > PAR_MAX ? PAR_MAX : (int)cores;
    pthread_mutex_init(&vc->mu, NULL);
    pthread_cond_init(&vc->cv, NULL);
    vc->n_buckets = 64;
    vc->buckets = xcalloc(vc->n_buckets, sizeof(*vc->buckets));
    vc->cap = cap;
}

static void entry_free(struct search__ventry *e)
{
    xfree(e->user_id);
    xfree(e->embedder);
    xfree(e);
}

void search__vcache_release(struct search__vcache *vc)
{
    struct search__ventry *e = vc->lru_head;
    while (e) {
        struct search__ventry *next = e->next;
        vindex_free(e->ix); /* no reader may be left at release */
        entry_free(e);
        e = next;
    }
    xfree(vc->buckets);
    pthread_mutex_destroy(&vc->mu);
    pthread_cond_destroy(&vc->cv);
    memset(vc, 0, sizeof(*vc));
}

static void lru_unlink(struct search__vcache *vc, struct search__ventry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        vc->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        vc->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct search__vcache *vc, struct search__ventry *e)
{
    e->prev = NULL;
    e->next = vc->lru_head;
    if (vc->lru_head)
        vc->lru_head->prev = e;
    vc->lru_head = e;
    if (!vc->lru_tail)
        vc->lru_tail = e;
}

static void bucket_grow(struct search__vcache *vc)
{
    size_t nb = vc->n_buckets * 2;
    struct search__ventry **b = xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < vc->n_buckets; i++) {
        struct search__ventry *e = vc->buckets[i];
        while (e) {
            struct search__ventry *next = e->chain;
            e->chain = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    xfree(vc->buckets);
    vc->buckets = b;
    vc->n_buckets = nb;
}

/* Take e out of the table and the LRU list; returns its index when that was
 * the last reference (to free outside the mutex). */
static struct search__vindex *entry_remove(struct search__vcache *vc, struct search__ventry *e)
{
    struct search__ventry **pp = &vc->buckets[e->hash & (vc->n_buckets - 1)];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    lru_unlink(vc, e);
    vc->n_entries--;
    struct search__vindex *dead = NULL;
    if (e->ix) {
        vc->bytes -= e->ix->bytes;
        if (--e->ix->refs == 0)
            dead = e->ix;
    }
    entry_free(e);
    return dead;
}

static struct search__ventry *entry_find(struct search__vcache *vc, uint32_t h, const char *user_id,
                                         const char *embedder, int dims)
{
    for (struct search__ventry *e = vc->buckets[h & (vc->n_buckets - 1)]; e; e = e->chain)
        if (e->hash == h && e->dims == dims && strcmp(e->user_id, user_id) == 0 &&
            strcmp(e->embedder, embedder) == 0)
            return e;
    return NULL;
}

/* Indexes to free once the mutex is let go (freeing 100 MB takes a while). */
struct graveyard {
    struct search__vindex *ix[8];
    size_t n;
};

static void bury(struct graveyard *g, struct search__vindex *ix)
{
    if (!ix)
        return;
    if (g->n == sizeof(g->ix) / sizeof(g->ix[0])) {
        vindex_free(ix); /* rare: many at once; free under the mutex */
        return;
    }
    g->ix[g->n++] = ix;
}

static void graveyard_empty(struct graveyard *g)
{
    for (size_t i = 0; i < g->n; i++)
        vindex_free(g->ix[i]);
    g->n = 0;
}

int search__vindex_get(struct search__vcache *vc, struct db *db, const char *user_id,
                       const char *embedder, int dims, struct search__vindex **out)
{
    uint32_t h = str_hash(user_id);
    struct graveyard g = {0};
    *out = NULL;
    pthread_mutex_lock(&vc->mu);
    struct search__ventry *e;
    while ((e = entry_find(vc, h, user_id, embedder, dims)) && e->is_loading)
        pthread_cond_wait(&vc->cv, &vc->mu);
    if (e) {
        e->ix->refs++;
        lru_unlink(vc, e);
        lru_push(vc, e);
        *out = e->ix;
        pthread_mutex_unlock(&vc->mu);
        return LOCI_OK;
    }
    e = xcalloc(1, sizeof(*e));
    e->user_id = xstrdup(user_id);
    e->embedder = xstrdup(embedder);
    e->dims = dims;
    e->hash = h;
    e->is_loading = true;
    if (vc->n_entries >= vc->n_buckets * 2)
        bucket_grow(vc);
    e->chain = vc->buckets[h & (vc->n_buckets - 1)];
    vc->buckets[h & (vc->n_buckets - 1)] = e;
    vc->n_entries++;
    lru_push(vc, e);
    pthread_mutex_unlock(&vc->mu);

    struct search__vindex *ix = NULL;
    int rc = vindex_load(db, user_id, embedder, dims, &ix);

    pthread_mutex_lock(&vc->mu);
    e->is_loading = false;
    if (!rc)
        vc->n_loads++;
    if (rc || e->is_dirty || ix->bytes > vc->cap) {
        /* Failed, already stale, or over the whole budget: this caller
         * alone uses what was built. */
        bury(&g, entry_remove(vc, e));
    } else {
        e->ix = ix;
        ix->refs++;
        vc->bytes += ix->bytes;
        struct search__ventry *v = vc->lru_tail;
        while (vc->bytes > vc->cap && v) {
            struct search__ventry *prev = v->prev;
            if (v != e && !v->is_loading)
                bury(&g, entry_remove(vc, v));
            v = prev;
        }
    }
    pthread_cond_broadcast(&vc->cv);
    pthread_mutex_unlock(&vc->mu);
    graveyard_empty(&g);
    *out = ix;
    return rc;
}

void search__vindex_put(struct search__vcache *vc, struct search__vindex *ix)
{
    if (!ix)
        return;
    pthread_mutex_lock(&vc->mu);
    bool is_last = --ix->refs == 0;
    pthread_mutex_unlock(&vc->mu);
    if (is_last)
        vindex_free(ix);
}

void search__vcache_drop_user(struct search__vcache *vc, const char *user_id)
{
    uint32_t h = str_hash(user_id);
    struct graveyard g = {0};
    pthread_mutex_lock(&vc->mu);
    struct search__ventry *e = vc->buckets[h & (vc->n_buckets - 1)];
    while (e) {
        struct search__ventry *next = e->chain;
        if (e->hash == h && strcmp(e->user_id, user_id) == 0) {
            if (e->is_loading)
                e->is_dirty = true;
            else
                bury(&g, entry_remove(vc, e));
        }
        e = next;
    }
    pthread_mutex_unlock(&vc->mu);
    graveyard_empty(&g);
}

size_t search__vindex_n(const struct search__vindex *ix)
{
    return ix->n;
}
