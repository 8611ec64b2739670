/*
 * search.c - the search service: checks a query, runs full text, vectors or
 * both, fuses the two lists by reciprocal rank (k = 60), and loads the
 * final hits' documents and snippets; keeps the vector cache fresh from
 * the bus.
 *
 * Not for: writing chunks or vectors (the documents module does, and calls
 * the hooks in search.h), answering questions (convo).
 */
#include "search/search_int.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "services/ai/ai.h"
#include "services/bus/bus.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

struct search {
    struct db *db;
    struct ai *ai;
    struct search__vcache vc;
};

struct search *search_new(struct db *db, struct ai *ai, size_t cache_bytes)
{
    struct search *s = xcalloc(1, sizeof(*s));
    s->db = db;
    s->ai = ai;
    search__vcache_init(&s->vc, cache_bytes);
    return s;
}

void search_free(struct search *s)
{
    if (!s)
        return;
    search__vcache_release(&s->vc);
    xfree(s);
}

void search_vectors_changed(struct search *s, const char *user_id)
{
    if (s && user_id)
        search__vcache_drop_user(&s->vc, user_id);
}

/* Events after which a user's vectors may differ: indexed, gone, or partly
 * written and then stopped. */
static const char *const stale_events[] = {"document.indexed", "document.deleted",
                                           "document.failed", "document.cancelled",
                                           "document.reprocessing"};

/* On the bus tailer thread: only drops cache entries (a short mutex hold;
 * indexes being built are marked stale, never waited for). */
static void on_event(const struct event_view *ev, void *arg)
{
    if (!ev->user_id || strncmp(ev->type, "document.", 9) != 0)
        return;
    for (size_t i = 0; i < sizeof(stale_events) / sizeof(stale_events[0]); i++)
        if (strcmp(ev->type, stale_events[i]) == 0) {
            search_vectors_changed(arg, ev->user_id);
            return;
        }
}

void search_subscribe(struct search *s, struct bus *bus)
{
    if (bus_subscribe(bus, on_event, s) != LOCI_OK)
        log_error(NULL, "search: cannot subscribe to the bus; cached vectors go stale");
}

void search_stats(struct search *s, struct search_stats *out)
{
    pthread_mutex_lock(&s->vc.mu);
    out->n_indexes = s->vc.n_entries;
    out->bytes = s->vc.bytes;
    out->cap = s->vc.cap;
    out->n_loads = s->vc.n_loads;
    pthread_mutex_unlock(&s->vc.mu);
}

void search_results_release(struct search_results *r)
{
    for (size_t i = 0; i < r->n; i++) {
        xfree(r->hits[i].filename);
        xfree(r->hits[i].text);
        xfree(r->hits[i].snippet);
        xfree(r->hits[i].heading);
    }
    xfree(r->hits);
    r->hits = NULL;
    r->n = 0;
}

/* ---- snippets as HTML ---- */

#define SNIPPET_MAX (1u << 20)

/* Escape p[0..n) for HTML text, whitespace runs as one space; with marks,
 * \x01 opens and \x02 closes a <mark> (kept balanced), else both go. */
static void html_text(struct buf *b, const char *p, size_t n, bool marks)
{
    bool is_open = false, was_space = false;
    int rc = LOCI_OK;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        bool is_space = ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
        if (is_space) {
            if (!was_space)
                rc |= buf_append_char(b, ' ');
            was_space = true;
            continue;
        }
        was_space = false;
        switch (ch) {
        case 1:
            if (marks && !is_open) {
                rc |= buf_append_str(b, "<mark>");
                is_open = true;
            }
            break;
        case 2:
            if (marks && is_open) {
                rc |= buf_append_str(b, "</mark>");
                is_open = false;
            }
            break;
        case '&':
            rc |= buf_append_str(b, "&amp;");
            break;
        case '<':
            rc |= buf_append_str(b, "&lt;");
            break;
        case '>':
            rc |= buf_append_str(b, "&gt;");
            break;
        case '"':
            rc |= buf_append_str(b, "&quot;");
            break;
        case '\'':
            rc |= buf_append_str(b, "&#39;");
            break;
        default:
            if (ch >= 0x20 && ch != 0x7f)
                rc |= buf_append_char(b, (char)ch);
        }
    }
    if (is_open)
        rc |= buf_append_str(b, "</mark>");
    (void)rc; /* a chunk is far below SNIPPET_MAX; a cut snippet is still a snippet */
}

char *search__snippet_html(const char *p, size_t n)
{
    struct buf b;
    buf_init(&b, SNIPPET_MAX);
    while (n > 0 && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) {
        p++;
        n--;
    }
    html_text(&b, p, n, true);
    while (b.len > 0 && b.p[b.len - 1] == ' ')
        b.p[--b.len] = '\0';
    return buf_detach(&b, NULL);
}

char *search__excerpt_html(const char *text, size_t n, int words)
{
    size_t i = 0, end = n;
    int seen = 0;
    bool in_word = false;
    for (; i < n; i++) {
        bool is_space = text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r';
        if (!is_space && !in_word) {
            if (seen == words) {
                end = i;
                break;
            }
            seen++;
        }
        in_word = !is_space;
    }
    struct buf b;
    buf_init(&b, SNIPPET_MAX);
    size_t start = 0;
    while (start < end && (text[start] == ' ' || text[start] == '\t' || text[start] == '\n' ||
                           text[start] == '\r'))
        start++;
    html_text(&b, text + start, end - start, false);
    while (b.len > 0 && b.p[b.len - 1] == ' ')
        b.p[--b.len] = '\0';
    if (end < n)
        (void)buf_append_str(&b, "…");
    return buf_detach(&b, NULL);
}

/* 1..SEARCH_Q_MAX characters of UTF-8, not all of them blank. */
static bool query_ok(const char *q)
{
    if (!q)
        return false;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)q;
    size_t n = strlen(q), i = 0, chars = 0;
    bool has_ink = false;
    while (i < n) {
        utf8proc_int32_t cp = -1;
        utf8proc_ssize_t len = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (len < 1 || ++chars > SEARCH_Q_MAX)
            return false;
        utf8proc_category_t cat = utf8proc_category(cp);
        if (cat != UTF8PROC_CATEGORY_ZS && cat != UTF8PROC_CATEGORY_ZL &&
            cat != UTF8PROC_CATEGORY_ZP && !(cp >= 9 && cp <= 13))
            has_ink = true;
        i += (size_t)len;
    }
    return has_ink;
}

static int check_document(struct db_conn *c, const char *user_id, const char *document_id)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT 1 FROM documents WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, document_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    db_stmt_done(st);
    return rc == LOCI_ROW ? LOCI_OK : rc == LOCI_OK ? LOCI_ENOTFOUND : rc;
}

/* The query's vector and the user's nearest chunks of the same embedder. */
static int vector_rank(struct search *s, const char *user_id, const char *q,
                       const char *document_id, size_t k, struct search__cand *out, size_t *out_n)
{
    struct ai_vectors v = {0};
    struct search__vindex *ix = NULL;
    size_t len = strlen(q);
    *out_n = 0;
    int rc = ai_embed(s->ai, &q, &len, 1, NULL, &v, NULL);
    if (rc)
        goto out;
    if (v.n != 1 || v.dims <= 0) {
        rc = LOCI_EIO;
        goto out;
    }
    rc = search__vindex_get(&s->vc, s->db, user_id, v.embedder, v.dims, &ix);
    if (rc)
        goto out;
    *out_n = search__vindex_topk(ix, document_id, v.v, k, s->vc.n_threads, out);
out:
    search__vindex_put(&s->vc, ix);
    ai_vectors_release(&v);
    return rc;
}

struct vec_job {
    struct search *s;
    const char *user_id, *q, *document_id;
    size_t k;
    struct search__cand *out; /* capacity k */
    size_t n;
    int rc;
};

static void *vec_main(void *arg)
{
    struct vec_job *j = arg;
    j->rc = vector_rank(j->s, j->user_id, j->q, j->document_id, j->k, j->out, &j->n);
    return NULL;
}

/* ---- reciprocal rank fusion ---- */

struct fused {
    struct search__cand c;
    size_t best_rank; /* the better of its two ranks, from 0 */
    size_t order;     /* first seen: full-text list, then vector list */
};

static int fused_cmp(const void *a, const void *b)
{
    const struct fused *x = a, *y = b;
    if (x->c.score != y->c.score)
        return x->c.score > y->c.score ? -1 : 1;
    if (x->best_rank != y->best_rank)
        return x->best_rank < y->best_rank ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Fuse lists a and b (best first) into out (capacity na + nb). */
static size_t rrf(const struct search__cand *a, size_t na, const struct search__cand *b, size_t nb,
                  struct search__cand *out)
{
    struct fused *f = xcalloc(na + nb + 1, sizeof(*f));
    size_t n = 0;
    for (size_t i = 0; i < na; i++) {
        f[n].c = a[i];
        f[n].c.score = 1.0 / (SEARCH_RRF_K + (double)(i + 1));
        f[n].best_rank = i;
        f[n].order = n;
        n++;
    }
    for (size_t j = 0; j < nb; j++) {
        double add = 1.0 / (SEARCH_RRF_K + (double)(j + 1));
        size_t i = 0;
        while (i < na && strcmp(f[i].c.chunk_id, b[j].chunk_id) != 0)
            i++;
        if (i < na) {
            f[i].c.score += add;
            if (j < f[i].best_rank)
                f[i].best_rank = j;
            continue;
        }
        f[n].c = b[j];
        f[n].c.score = add;
        f[n].best_rank = j;
        f[n].order = n;
        n++;
    }
    qsort(f, n, sizeof(*f), fused_cmp);
    for (size_t i = 0; i < n; i++)
        out[i] = f[i].c;
    xfree(f);
    return n;
}

int search_run(struct search *s, const char *user_id, const char *q, enum search_mode mode,
               const char *document_id, int limit, struct search_results *out)
{
    memset(out, 0, sizeof(*out));
    if (!query_ok(q))
        return LOCI_EUNPROCESSABLE;
    if (limit < 1 || limit > SEARCH_LIMIT_MAX ||
        (mode != SEARCH_FTS && mode != SEARCH_VECTOR && mode != SEARCH_HYBRID) || !user_id)
        return LOCI_EINVAL;
    size_t depth = mode == SEARCH_HYBRID ? SEARCH_FUSE_DEPTH : (size_t)limit;
    struct search__cand *fts = xcalloc(depth, sizeof(*fts));
    struct search__cand *vec = xcalloc(depth, sizeof(*vec));
    struct search__cand *all = xcalloc(2 * depth, sizeof(*all));
    size_t n_fts = 0, n_vec = 0, n_all = 0;
    bool is_any = false;
    struct search__ftq f;
    struct db_conn *c = NULL;
    search__ftq_init(&f, q, db_backend(s->db));

    struct vec_job vj = {
        .s = s, .user_id = user_id, .q = q, .document_id = document_id, .k = depth, .out = vec};
    bool is_vec_running = false;
    int rc = db_acquire(s->db, &c);
    if (rc)
        goto out;
    if (document_id && (rc = check_document(c, user_id, document_id)) != LOCI_OK)
        goto out;
    /* Hybrid: the vector scan (memory-bound) runs on its own thread while
     * the full-text engine ranks on this one. */
    pthread_t vt;
    if (mode == SEARCH_HYBRID)
        is_vec_running = pthread_create(&vt, NULL, vec_main, &vj) == 0;
    /* Hybrid takes the chunks with all the words only: the vector list
     * stands in for near misses, and ranking every chunk with any of the
     * words is what makes a search slow (bm25 costs ~1.5 us a row: 40 ms
     * for a quarter of 100,000 chunks). */
    if (mode != SEARCH_VECTOR)
        rc = search__fts_rank(c, user_id, &f, document_id, (int)depth, mode == SEARCH_FTS, fts,
                              &n_fts, &is_any);
    /* No connection held while embedding: the gateway may be remote. */
    db_release(c);
    c = NULL;
    if (is_vec_running) {
        pthread_join(vt, NULL);
        is_vec_running = false;
    } else if (!rc && mode != SEARCH_FTS) {
        vec_main(&vj);
    }
    if (rc)
        goto out;
    if (mode != SEARCH_FTS) {
        rc = vj.rc;
        n_vec = vj.n;
        if (rc && mode == SEARCH_HYBRID) {
            log_warn(NULL, "search: vectors unavailable (%s), full text only", loci_err_code(rc));
            n_vec = 0;
            rc = LOCI_OK;
        }
        if (rc)
            goto out;
    }

    if (mode == SEARCH_HYBRID)
        n_all = rrf(fts, n_fts, vec, n_vec, all);
    else {
        n_all = mode == SEARCH_FTS ? n_fts : n_vec;
        memcpy(all, mode == SEARCH_FTS ? fts : vec, n_all * sizeof(*all));
    }
    if (n_all > (size_t)limit)
        n_all = (size_t)limit;
    if (n_all == 0)
        goto out;
    out->hits = xcalloc(n_all, sizeof(*out->hits));
    out->n = n_all;
    for (size_t i = 0; i < n_all; i++) {
        memcpy(out->hits[i].chunk_id, all[i].chunk_id, UUID_STR_LEN);
        out->hits[i].score = all[i].score;
    }
    rc = db_acquire(s->db, &c);
    if (rc)
        goto out;
    rc = search__load_hits(c, user_id, &f, out);
out:
    if (is_vec_running)
        pthread_join(vt, NULL);
    if (c)
        db_release(c);
    if (rc)
        search_results_release(out);
    search__ftq_release(&f);
    xfree(fts);
    xfree(vec);
    xfree(all);
    return rc;
}
