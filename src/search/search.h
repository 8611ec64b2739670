/*
 * search.h - finding passages in a learner's documents: full text (SQLite
 * FTS5 table chunks_fts; PostgreSQL chunks.tsv with GIN), exact vector
 * search over an in-memory flat index per user (float32, SIMD dot
 * products, loaded lazily, dropped when the user's chunks change), and
 * hybrid search by reciprocal rank fusion of the two.
 *
 * The documents module calls search_chunks_added()/search_document_removed()
 * inside the transactions that write chunks, and search_vectors_changed()
 * after committing new vectors; instances learn of other instances' changes
 * from `document.indexed` / `document.deleted` events (search_subscribe).
 *
 * Every query filters by user. Threads: any; the index cache is shared,
 * behind one mutex, with per-user read-mostly indexes.
 */
#ifndef LOCI_SEARCH_H
#define LOCI_SEARCH_H

#include "core/ids.h"
#include "store/db.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct ai;
struct bus;
struct search;

enum search_mode { SEARCH_FTS, SEARCH_VECTOR, SEARCH_HYBRID };

struct search_hit {
    char chunk_id[UUID_STR_LEN];
    char document_id[UUID_STR_LEN];
    char *filename; /* the document's */
    char *text;     /* the whole chunk */
    char *snippet;  /* a short excerpt with the matched words in <mark>…</mark>; HTML-escaped */
    char *heading;  /* may be NULL */
    int page;       /* 0 = none */
    int ord;
    double score; /* higher is better; comparable within one result list */
};

struct search_results {
    size_t n;
    struct search_hit *hits; /* best first */
};

/* The search service: gateway for query embeddings, cache budget in bytes
 * for in-memory vector indexes (least recently used users are dropped). */
struct search *search_new(struct db *db, struct ai *ai, size_t cache_bytes);
void search_free(struct search *s);
/* Drop cached indexes when documents change on any instance. */
void search_subscribe(struct search *s, struct bus *bus);

/* q: 1..500 characters; document_id may be NULL; limit 1..50.
 * LOCI_EUNPROCESSABLE for an empty or too long query; LOCI_ENOTFOUND for
 * a document_id that is not the user's. Release with
 * search_results_release(). */
int search_run(struct search *s, const char *user_id, const char *q, enum search_mode mode,
               const char *document_id, int limit, struct search_results *out);
void search_results_release(struct search_results *r);

/* ---- hooks for the documents module (in its transactions) ---- */
/* Index chunks [first_ord, first_ord + n) of document_id for full text. */
int search_chunks_added(struct db_conn *c, const char *user_id, const char *document_id);
/* Remove a document's full-text rows (its chunks and vectors go by FK). */
int search_document_removed(struct db_conn *c, const char *user_id, const char *document_id);
/* After commit: this user's vectors changed; the cached index is stale. */
void search_vectors_changed(struct search *s, const char *user_id);

/* ---- the vector kernel, exposed for benchmarks and tests ---- */
/* Top k rows of m (n x dims, row-major) by dot product with q; writes
 * indexes and scores best first; returns how many (min(k, n)). */
size_t search_topk(const float *m, size_t n, int dims, const float *q, size_t k, size_t *out_idx,
                   float *out_score);

#endif
