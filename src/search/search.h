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
 * from `document.indexed` / `document.deleted` events (search_subscribe; also
 * `document.failed`, `.cancelled` and `.reprocessing`, which may leave
 * vectors changed).
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
#include <stdint.h>

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
 * search_results_release().
 * Also: a blank query or one that is not UTF-8 is LOCI_EUNPROCESSABLE; a
 * bad limit or mode LOCI_EINVAL. Query text is only ever words to the
 * engines (no syntax; stop words dropped unless there is nothing else), so
 * any other text is a search, possibly with no hits. Full text wants all
 * the words, then, if no chunk has them all, any; hybrid fuses the top 50
 * chunks with all the words and the top 50 by vector (no any-word
 * widening: the vectors cover near misses, and ranking every chunk with
 * any of the words is what makes a search slow). Vector and hybrid modes embed q through the
 * gateway (which blocks on the network with a remote embedder: call from a job or the offload
 * pool); when that fails, vector mode returns the gateway's error and
 * hybrid mode answers from full text alone. Hits whose chunk was deleted
 * meanwhile are left out, so there may be fewer than limit. Any thread. */
int search_run(struct search *s, const char *user_id, const char *q, enum search_mode mode,
               const char *document_id, int limit, struct search_results *out);
void search_results_release(struct search_results *r);

/* ---- hooks for the documents module (in its transactions) ---- */
/* Index for full text every chunk of document_id not indexed yet, so it is
 * safe to call after each batch of chunks or once at the end; call it in
 * the transaction that wrote them. No-op on PostgreSQL (chunks.tsv is a
 * generated column). */
int search_chunks_added(struct db_conn *c, const char *user_id, const char *document_id);
/* Remove a document's full-text rows (its chunks and vectors go by FK).
 * Call it in the deleting transaction (also before replacing the chunks on
 * reprocess) while the chunks are still there: their rows are then found
 * directly; afterwards it has to scan the whole table. No-op on PostgreSQL. */
int search_document_removed(struct db_conn *c, const char *user_id, const char *document_id);
/* After commit: this user's vectors changed; the cached index is stale. */
void search_vectors_changed(struct search *s, const char *user_id);

/* Account erasure: remove every full-text row of the user (chunks go by
 * FK; FTS5 rows have none). No-op on PostgreSQL. */
int search_user_removed(struct db_conn *c, const char *user_id);

/* What the index cache holds now. Any thread. */
struct search_stats {
    size_t n_indexes; /* cached (user, embedder) indexes */
    size_t bytes;     /* their memory */
    size_t cap;       /* the budget */
    uint64_t n_loads; /* indexes built from the store since start */
};
void search_stats(struct search *s, struct search_stats *out);

/* ---- the vector kernel, exposed for benchmarks and tests ---- */
/* Top k rows of m (n x dims, row-major) by dot product with q; writes
 * indexes and scores best first (equal scores: lower index first); returns
 * how many (min(k, n)). Uses the AVX2+FMA kernel when the CPU has it. Any
 * thread; m needs no particular alignment. */
size_t search_topk(const float *m, size_t n, int dims, const float *q, size_t k, size_t *out_idx,
                   float *out_score);

enum search_kernel { SEARCH_KERNEL_AUTO, SEARCH_KERNEL_PORTABLE, SEARCH_KERNEL_AVX2 };
/* search_topk() with a chosen kernel; SEARCH_KERNEL_AVX2 on a CPU without
 * AVX2 and FMA runs the portable one. Scores of the two kernels may differ
 * in the last bits (summation order). */
size_t search_topk_kernel(enum search_kernel kern, const float *m, size_t n, int dims,
                          const float *q, size_t k, size_t *out_idx, float *out_score);
/* The kernel SEARCH_KERNEL_AUTO picks on this CPU: "avx2" or "portable". */
const char *search_kernel_name(void);

#endif
