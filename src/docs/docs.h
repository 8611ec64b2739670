/*
 * docs.h - learners' documents: uploads stored in the blob store, a
 * processing ledger per document, the `docs.process` job (parse in the
 * sandbox, chunk, index for full text and vectors, summarise, seed the
 * graph), and `loci import` of a folder of Markdown notes.
 *
 * Status: queued -> parsing -> indexing -> done | failed | cancelled. Every
 * change that matters to a reader appends a `document.*` event in the
 * transaction that makes it: document.created, document.indexed,
 * document.failed, document.cancelled, document.reprocessing,
 * document.deleted. Progress goes out as `job.progress` events.
 *
 * Every function takes the user id and filters by it: another user's
 * document behaves exactly like a missing one (LOCI_ENOTFOUND).
 *
 * Not for: HTTP (api/documents.c), search (search/), parsing (services/
 * parse), storing bytes (services/blob).
 * Threads: a struct docs is safe from any thread. Uploads run on HTTP
 * threads (no network, bounded disk writes); processing on job workers.
 */
#ifndef LOCI_DOCS_H
#define LOCI_DOCS_H

#include "core/ids.h"
#include "store/db.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ai;
struct blob_store;
struct jobs;
struct search;

#define DOCS_FILENAME_MAX 200 /* bytes of a sanitised file name */

struct docs_opts {
    struct db *db;
    struct ai *ai;            /* embeddings, summary, key terms */
    struct search *search;    /* told when vectors change; may be NULL */
    struct blob_store *blobs; /* the files */
    struct jobs *jobs;        /* woken after an enqueue; may be NULL */
    void (*wake)(void *arg);  /* called after events commit (the bus); may be NULL */
    void *wake_arg;
    int64_t max_bytes;   /* largest file (docs_max_bytes) */
    int64_t quota_bytes; /* all of a user's files together (docs_quota_bytes) */
    int max_pages;       /* PDFs (docs_max_pages) */
    int parse_timeout_ms;
    int parse_memory_mb;
};

struct docs;

/* The documents service; the structs named in o must outlive it. Free
 * with docs_free(). */
struct docs *docs_new(const struct docs_opts *o);
void docs_free(struct docs *d);

/* Register the `docs.process` job ({"document_id"} of the job's user). */
void docs_register_jobs(struct docs *d, struct jobs *js);

/* Why a request was refused, for the API's error body. */
struct docs_error {
    const char *code; /* payload_too_large, quota_exceeded, empty_file, unsupported_type,
                         type_mismatch, duplicate, not_processing, processing, ... */
    char message[256];
    char existing_id[UUID_STR_LEN]; /* duplicate: the document that has these bytes */
};

/* ---- uploads: streamed into the blob store ---- */

struct docs_upload;

/* Start an upload for user_id. Reads the user's storage use for the
 * quota. */
int docs_upload_new(struct docs *d, const char *user_id, struct docs_upload **out);
/* The file part begins: its name (sanitised here: no directories, no
 * control characters, at most DOCS_FILENAME_MAX bytes) and declared type
 * (may be NULL). A second file part is LOCI_EINVAL. */
int docs_upload_file(struct docs_upload *u, const char *filename, const char *declared_type);
/* Bytes of the file, as they arrive. LOCI_ETOOBIG past docs_max_bytes
 * (code payload_too_large) or the user's remaining quota (quota_exceeded);
 * the upload refuses everything after an error. */
int docs_upload_write(struct docs_upload *u, const void *p, size_t n, struct docs_error *why);
/* The body is complete: check the type by content, store the blob, create
 * the document and enqueue its processing, all or nothing. Errors:
 * LOCI_EUNPROCESSABLE (no file part, empty_file), LOCI_EMEDIATYPE
 * (unsupported_type, type_mismatch), LOCI_ETOOBIG (quota_exceeded),
 * LOCI_ECONFLICT (duplicate: why->existing_id). On success *out is the
 * new document's JSON (see docs_get). */
int docs_upload_finish(struct docs_upload *u, json_t **out, struct docs_error *why);
/* Free; an unfinished upload leaves nothing behind. NULL-safe. */
void docs_upload_free(struct docs_upload *u);

/* Sanitise a client's file name into out (DOCS_FILENAME_MAX + 1 bytes):
 * the last path component (both '/' and '\\' separate), control
 * characters, invalid UTF-8 and `"` `;` dropped, leading dots and spaces
 * trimmed; "document" when nothing is left. */
void docs_sanitize_filename(const char *in, char out[DOCS_FILENAME_MAX + 1]);

/* ---- the ledger ---- */

/* A document as JSON: {id, filename, media_type, size_bytes, sha256,
 * status, progress, error_code, error, title, summary, pages, chunk_count,
 * job_id, root_node_id, source, source_path, timings: {parse_ms,
 * index_ms}, created_at, updated_at}. */
int docs_get(struct db_conn *c, const char *user_id, const char *id, json_t **out);
/* Newest first: {"items": [...], "next_cursor": id | null}. status may be
 * NULL (else one of the six, LOCI_EINVAL otherwise); cursor is a
 * next_cursor given before (else LOCI_EUNPROCESSABLE); limit 1..100. */
int docs_list(struct db_conn *c, const char *user_id, const char *status, const char *cursor,
              int limit, json_t **out);
/* The stored file: a descriptor (the caller closes it), size, media type
 * and file name (into the given buffers). */
int docs_open_file(struct docs *d, const char *user_id, const char *id, int *out_fd,
                   uint64_t *out_size, char media_type[64], char filename[DOCS_FILENAME_MAX + 1]);
/* Delete the document with its chunks, vectors and full-text rows, stop
 * its job, and remove the blob when no other document holds the same
 * bytes. */
int docs_delete(struct docs *d, const char *user_id, const char *id);
/* Stop processing: the job is cancelled (a running one stops at its next
 * check), the partial index removed, the status `cancelled`. LOCI_ECONFLICT
 * (code not_processing) when the document is done, failed or cancelled. */
int docs_cancel(struct docs *d, const char *user_id, const char *id, json_t **out,
                struct docs_error *why);
/* Process again from the stored file (a new job; the old index serves
 * until the new one replaces it). LOCI_ECONFLICT (code processing) while
 * it is queued or being processed. */
int docs_reprocess(struct docs *d, const char *user_id, const char *id, json_t **out,
                   struct docs_error *why);

/* ---- chunking (docs_chunk.c; exposed for tests and benchmarks) ---- */

struct docs_chunk_opts {
    int min_words;     /* a chunk ends at a heading once it has this many (default 100) */
    int max_words;     /* never more, except a single word run (default 400) */
    int target_words;  /* a chunk ends at a sentence once it has this many (default 300) */
    int overlap_words; /* words of whole sentences carried into the next chunk (default 40) */
};

struct docs_chunk {
    char *text;    /* trimmed */
    int page;      /* 1-based; 0 when the text has no pages */
    char *heading; /* nearest heading at or above the chunk's start; NULL when none */
    int words;
};

struct docs_chunks {
    size_t n;
    struct docs_chunk *items;
    int pages; /* page breaks seen */
};

/* Split framed text (services/parse) into sentence-aware chunks of about
 * target words, each ending at a sentence end (a sentence longer than
 * max_words is cut between words), starting a new chunk at a heading once
 * the current one has min_words, carrying whole sentences of about
 * overlap_words into the next chunk within a section. o may be NULL.
 * Release with docs_chunks_release(). */
int docs_chunk(const char *text, size_t n, const struct docs_chunk_opts *o,
               struct docs_chunks *out);
void docs_chunks_release(struct docs_chunks *c);

/* ---- processing (docs_process.c) ---- */

/* Called with progress in [0, 1] and a short message; may be NULL. */
typedef void (*docs_progress_fn)(void *arg, double fraction, const char *message);

/* Process a document now, on this thread (what the job does; `loci
 * import` calls it directly): parse, chunk, index, embed, summarise, seed
 * the graph. Returns LOCI_OK when the document reached a final status
 * (done or failed: read it with docs_get), or an error when processing
 * could not run (database down). */
int docs_process_now(struct docs *d, const char *user_id, const char *id, docs_progress_fn fn,
                     void *arg);

/* ---- import (docs_import.c) ---- */

struct docs_import_stats {
    int imported;  /* new or changed notes processed */
    int unchanged; /* same path and bytes as last time */
    int failed;    /* could not be read, stored or processed */
    int links;     /* [[wikilinks]] that became edges */
};

/* Called after each file: done of total, the file's path relative to the
 * folder, and what happened ("imported", "unchanged", "failed"). */
typedef void (*docs_import_fn)(void *arg, int done, int total, const char *path, const char *what);

/* Import every Markdown file (.md, .markdown) under dir (hidden entries
 * such as .obsidian and .git skipped, symbolic links not followed) for
 * user_id: each becomes a document (source "import", source_path
 * relative to dir) processed at once; a file whose path and bytes are
 * unchanged since the last import is skipped; a changed file replaces
 * its earlier document. Then [[wikilinks]] become "related" edges between
 * the notes' root nodes (a link to a note that does not exist makes a
 * node for it). */
int docs_import_dir(struct docs *d, const char *user_id, const char *dir, docs_import_fn fn,
                    void *arg, struct docs_import_stats *out);

#endif
