/*
 * blob.h - the blob store: immutable files addressed by the SHA-256 of
 * their bytes (lowercase hex, the "key"). Uploads are streamed in pieces
 * through a writer that hashes as it goes, so a file is never held whole in
 * memory, and becomes visible under its key only when committed, atomically.
 *
 * Backends are a table of function pointers (struct blob_backend); this
 * header's functions do the hashing, the size limit and the key checks once
 * for all of them. The local-directory backend keeps DIR/ab/cdef... (the
 * key's first two hex digits as a subdirectory), written to DIR/tmp first,
 * fsync'd, renamed into place, mode 0600. An S3-compatible backend comes
 * with scale-out.
 *
 * Keys are the only names: every function refuses anything but 64
 * lowercase hex digits, so no name from a client can reach the file system.
 *
 * Not for: deciding when a blob is unreferenced (the documents module
 * does), file types (services/parse).
 *
 * Threads: a struct blob_store is safe from any thread; a writer belongs to
 * the thread using it.
 */
#ifndef LOCI_SERVICES_BLOB_H
#define LOCI_SERVICES_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOB_KEY_LEN 65 /* 64 hex digits + NUL */

struct blob_store;
struct blob_writer;

/* What a backend implements. Backend data hangs off store->impl and
 * writer->impl (see blob.c); every key handed to a backend is valid. */
struct blob_backend {
    const char *name;
    /* Start a new temporary object; *out_impl is the backend's state. */
    int (*put_begin)(void *store_impl, void **out_impl);
    int (*put_write)(void *w_impl, const void *p, size_t n);
    /* Make the bytes durable (still invisible). */
    int (*put_finish)(void *w_impl);
    /* Publish under key (an existing object with that key is kept: it holds
     * the same bytes) and free the state. */
    int (*put_commit)(void *store_impl, void *w_impl, const char *key);
    /* Throw the object away and free the state. */
    void (*put_abort)(void *w_impl);
    int (*open)(void *store_impl, const char *key, int *out_fd, uint64_t *out_size);
    int (*remove)(void *store_impl, const char *key);
    int (*exists)(void *store_impl, const char *key, bool *out);
    void (*free)(void *store_impl);
};

/* A store on the local directory dir (created 0700 when missing; temporary
 * files older than an hour, left by a crash, are removed). LOCI_EIO when dir
 * cannot be created or used. Free with blob_store_free(). */
int blob_local_new(const char *dir, struct blob_store **out);
/* NULL-safe. No writer may be open. */
void blob_store_free(struct blob_store *bs);
/* The backend's name ("local"). */
const char *blob_store_name(const struct blob_store *bs);

/* True when key is 64 lowercase hex digits. */
bool blob_key_valid(const char *key);

/* ---- writing: begin, write pieces, finish, then commit or abort ---- */

/* Start a blob of at most max_bytes (0 = no limit). */
int blob_put_begin(struct blob_store *bs, uint64_t max_bytes, struct blob_writer **out);
/* Append n bytes. LOCI_ETOOBIG once the total would pass max_bytes (the
 * writer then refuses every further write; abort it), LOCI_EIO on a write
 * failure. */
int blob_put_write(struct blob_writer *w, const void *p, size_t n);
/* No more bytes: make them durable and give the key and size. The blob is
 * not visible yet; commit or abort the writer next. */
int blob_put_finish(struct blob_writer *w, char out_key[BLOB_KEY_LEN], uint64_t *out_size);
/* Publish the finished blob under its key (atomic: readers see all of it
 * or nothing) and free the writer, whatever the result. */
int blob_put_commit(struct blob_writer *w);
/* Discard the writer and its bytes. NULL-safe. */
void blob_put_abort(struct blob_writer *w);

/* Store everything readable from fd (to its end) as one blob: begin,
 * write, finish, commit. */
int blob_put_fd(struct blob_store *bs, int fd, uint64_t max_bytes, char out_key[BLOB_KEY_LEN],
                uint64_t *out_size);

/* ---- reading and removing ---- */

/* A read-only, close-on-exec descriptor positioned at the start, and the
 * size; the caller closes it. LOCI_ENOTFOUND when there is no such blob,
 * LOCI_EINVAL for a malformed key. */
int blob_open(struct blob_store *bs, const char *key, int *out_fd, uint64_t *out_size);
/* Remove the blob; a missing one is not an error (LOCI_OK). */
int blob_delete(struct blob_store *bs, const char *key);
int blob_exists(struct blob_store *bs, const char *key, bool *out);

#endif
