/*
 * search_int.h - private to src/search: what search.c (the service, fusion,
 * snippets), search_fts.c (full text per backend) and search_vec.c (the
 * kernel and the per-user index cache) share.
 */
#ifndef LOCI_SEARCH_INT_H
#define LOCI_SEARCH_INT_H

#include "core/buf.h"
#include "search/search.h"

#include <pthread.h>
#include <stdint.h>

#define SEARCH_Q_MAX      500 /* characters (code points) of a query */
#define SEARCH_LIMIT_MAX  50
#define SEARCH_FUSE_DEPTH 50 /* hybrid: candidates taken from each list */
#define SEARCH_RRF_K      60
#define SEARCH_TERMS_MAX  32 /* words of a query that reach the full-text engine */

/* A ranked candidate before its metadata is loaded. */
struct search__cand {
    char chunk_id[UUID_STR_LEN];
    double score;
};

/* ---- full text (search_fts.c) ---- */

/* A user's query turned into engine queries that cannot carry syntax:
 * only the query's words (letters and digits), each quoted for FTS5. */
struct search__ftq {
    size_t n_terms;
    char *terms[SEARCH_TERMS_MAX]; /* the words searched for: stop words go unless all are */
    struct buf all; /* SQLite: "w1" "w2" (AND); PostgreSQL: w1 w2 for plainto_tsquery */
    struct buf any; /* SQLite: "w1" OR "w2"; PostgreSQL: w1 or w2 for websearch_to_tsquery */
    size_t n_stems;
    char *stems[SEARCH_TERMS_MAX]; /* the terms' Snowball stems, for snippets */
};

void search__ftq_init(struct search__ftq *f, const char *q, enum db_backend be);
void search__ftq_release(struct search__ftq *f);
/* Letters, digits, marks: what a word of a query or a chunk is made of. */
bool search__is_word_char(int32_t cp);

/* ---- snippets built in C (search_snip.c) ---- */

/* Fill f->stems from f->terms. */
void search__ftq_stems(struct search__ftq *f);
/* The best window of text (n bytes) for f's words, as HTML with <mark>;
 * the start of the text when no word is there. */
char *search__snippet_for(const char *text, size_t n, const struct search__ftq *f);

/* Top `limit` chunks of the user (of one document when document_id is not
 * NULL) for f: AND of the words, or, when that finds nothing and can_widen,
 * OR of them. Fills out (capacity limit), *out_n and *out_is_any (the OR
 * query was used). */
int search__fts_rank(struct db_conn *c, const char *user_id, const struct search__ftq *f,
                     const char *document_id, int limit, bool can_widen, struct search__cand *out,
                     size_t *out_n, bool *out_is_any);

/* Fill each hit's metadata (document, filename, text, heading, page, ord)
 * and snippet by chunk_id; hits whose chunk is gone (or not the user's) are
 * dropped, the rest keep their order. */
int search__load_hits(struct db_conn *c, const char *user_id, const struct search__ftq *f,
                      struct search_results *r);

/* Snippet text from an engine (words between \x01 and \x02) as HTML:
 * escaped, the marks as <mark>…</mark>, always balanced. */
char *search__snippet_html(const char *p, size_t n);
/* The start of text (about `words` words) as an HTML-escaped excerpt. */
char *search__excerpt_html(const char *text, size_t n, int words);

/* ---- vectors (search_vec.c) ---- */

/* One user's vectors of one embedder, immutable once built; shared by
 * readers through a reference count (guarded by the cache mutex). */
struct search__vindex;
struct search__ventry; /* a cache slot (search_vec.c) */

struct search__vcache {
    pthread_mutex_t mu; /* guards everything here and every index's refs */
    pthread_cond_t cv;  /* a load finished */
    struct search__ventry **buckets;
    size_t n_buckets, n_entries;
    struct search__ventry *lru_head, *lru_tail; /* most recently used first */
    size_t bytes, cap;
    uint64_t n_loads; /* indexes built from the store (tests, metrics) */
    int n_threads;    /* for scanning one big index: the cores, at most 4 */
};

void search__vcache_init(struct search__vcache *vc, size_t cap);
void search__vcache_release(struct search__vcache *vc);
/* The index of user_id's vectors of embedder with dims, built from the store
 * when it is not cached (other readers of the same user wait for that one
 * build). The caller drops it with search__vindex_put(). */
int search__vindex_get(struct search__vcache *vc, struct db *db, const char *user_id,
                       const char *embedder, int dims, struct search__vindex **out);
void search__vindex_put(struct search__vcache *vc, struct search__vindex *ix);
void search__vcache_drop_user(struct search__vcache *vc, const char *user_id);

/* Top k of the index (of one document when document_id is not NULL) into
 * out (capacity k), a big index on up to `threads` threads; returns how
 * many. */
size_t search__vindex_topk(const struct search__vindex *ix, const char *document_id, const float *q,
                           size_t k, int threads, struct search__cand *out);
/* Rows in the index. */
size_t search__vindex_n(const struct search__vindex *ix);

#endif
