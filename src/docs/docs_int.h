/*
 * docs_int.h - private to src/docs: the service struct and what docs.c,
 * docs_process.c and docs_import.c share (publishing a stored file as a
 * new document, removing a document's rows, collecting unreferenced
 * blobs). Nobody outside src/docs includes this.
 */
#ifndef LOCI_DOCS_INT_H
#define LOCI_DOCS_INT_H

#include "docs/docs.h"
#include "services/blob/blob.h"
#include "services/parse/parse.h"

#include <pthread.h>

struct docs {
    struct docs_opts o;
    /* Publishing a blob with its document row, and removing a blob no
     * row references, exclude each other so a blob is never removed
     * under a document being created with the same bytes (one process;
     * several instances share an S3-compatible store instead). */
    pthread_mutex_t gc_mu;
};

/* A finished blob writer becoming a document. */
struct docs__new_doc {
    const char *user_id;
    const char *filename; /* sanitised */
    const char *media_type;
    const char *sha256;
    uint64_t size;
    const char *source;        /* "upload" or "import" */
    const char *source_path;   /* import: the path in the folder; else NULL */
    const char *replace_id;    /* import: the earlier document of that path, removed; or NULL */
    bool is_job;               /* enqueue docs.process (else the caller processes it) */
    char id[UUID_STR_LEN];     /* out */
    char job_id[UUID_STR_LEN]; /* out ("" without a job) */
};

/* Commit w (finished) and create the document in one transaction, under
 * gc_mu. Frees w. Errors as docs_upload_finish(), with why filled. */
int docs__publish(struct docs *d, struct blob_writer *w, struct docs__new_doc *nd,
                  struct docs_error *why);

/* Inside a transaction: remove the document's full-text rows, vectors,
 * chunks and row, cancel its job if it is still running, append
 * document.deleted. out_sha256 (may be NULL) gets its blob key. */
int docs__remove_rows(struct db_conn *c, const char *user_id, const char *id,
                      char out_sha256[BLOB_KEY_LEN]);

/* Inside a transaction: remove the document's full-text rows, vectors and
 * chunks (not the document). */
int docs__remove_index(struct db_conn *c, const char *user_id, const char *id);

/* After a commit that removed rows: delete the blob when no document
 * references it any more. */
void docs__blob_gc(struct docs *d, const char *sha256);

/* Attempts of a docs.process job; the last one that fails marks the
 * document failed rather than leave it half processed. */
#define DOCS__MAX_ATTEMPTS 3

/* After a commit: wake the job workers and the event bus. */
void docs__wake(struct docs *d);

/* The document JSON columns, in docs__row_json() order. */
#define DOCS__COLS                                                                                 \
    "id, filename, media_type, size_bytes, sha256, status, progress, error_code, error, title, "   \
    "summary, pages, chunk_count, job_id, root_node_id, source, source_path, parse_ms, "           \
    "index_ms, created_at, updated_at"
json_t *docs__row_json(struct db_stmt *st);

#endif
