/*
 * blob.c - what every blob backend shares: the running SHA-256 of a write
 * (nettle), the size limit, key validation, and the whole-descriptor put.
 */
#include "services/blob/blob_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <errno.h>
#include <nettle/sha2.h>
#include <string.h>
#include <unistd.h>

struct blob_store {
    const struct blob_backend *be;
    void *impl;
};

struct blob_writer {
    struct blob_store *bs;
    void *impl;
    struct sha256_ctx sha;
    uint64_t size;
    uint64_t max;    /* 0 = none */
    bool is_refused; /* passed max or failed: no more writes */
    bool is_finished;
    char key[BLOB_KEY_LEN];
};

int blob_local_new(const char *dir, struct blob_store **out)
{
    *out = NULL;
    void *impl = NULL;
    int rc = blob__local_open(dir, &impl);
    if (rc)
        return rc;
    struct blob_store *bs = xcalloc(1, sizeof(*bs));
    bs->be = &blob__local_backend;
    bs->impl = impl;
    *out = bs;
    return LOCI_OK;
}

void blob_store_free(struct blob_store *bs)
{
    if (!bs)
        return;
    bs->be->free(bs->impl);
    xfree(bs);
}

const char *blob_store_name(const struct blob_store *bs)
{
    return bs->be->name;
}

bool blob_key_valid(const char *key)
{
    if (!key)
        return false;
    for (int i = 0; i < BLOB_KEY_LEN - 1; i++) {
        char c = key[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return key[BLOB_KEY_LEN - 1] == '\0';
}

int blob_put_begin(struct blob_store *bs, uint64_t max_bytes, struct blob_writer **out)
{
    *out = NULL;
    void *impl = NULL;
    int rc = bs->be->put_begin(bs->impl, &impl);
    if (rc)
        return rc;
    struct blob_writer *w = xcalloc(1, sizeof(*w));
    w->bs = bs;
    w->impl = impl;
    w->max = max_bytes;
    sha256_init(&w->sha);
    *out = w;
    return LOCI_OK;
}

int blob_put_write(struct blob_writer *w, const void *p, size_t n)
{
    if (w->is_refused || w->is_finished)
        return w->is_finished ? LOCI_EINVAL : LOCI_ETOOBIG;
    if (n == 0)
        return LOCI_OK;
    if (w->max && (n > w->max || w->size > w->max - n)) {
        w->is_refused = true;
        return LOCI_ETOOBIG;
    }
    int rc = w->bs->be->put_write(w->impl, p, n);
    if (rc) {
        w->is_refused = true;
        return rc;
    }
    sha256_update(&w->sha, n, p);
    w->size += n;
    return LOCI_OK;
}

static void hex(const uint8_t *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

int blob_put_finish(struct blob_writer *w, char out_key[BLOB_KEY_LEN], uint64_t *out_size)
{
    if (w->is_refused || w->is_finished)
        return LOCI_EINVAL;
    int rc = w->bs->be->put_finish(w->impl);
    if (rc)
        return rc;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_digest(&w->sha, sizeof(digest), digest);
    hex(digest, sizeof(digest), w->key);
    w->is_finished = true;
    if (out_key)
        memcpy(out_key, w->key, BLOB_KEY_LEN);
    if (out_size)
        *out_size = w->size;
    return LOCI_OK;
}

int blob_put_commit(struct blob_writer *w)
{
    if (!w->is_finished) {
        blob_put_abort(w);
        return LOCI_EINVAL;
    }
    int rc = w->bs->be->put_commit(w->bs->impl, w->impl, w->key);
    xfree(w);
    return rc;
}

void blob_put_abort(struct blob_writer *w)
{
    if (!w)
        return;
    w->bs->be->put_abort(w->impl);
    xfree(w);
}

int blob_put_fd(struct blob_store *bs, int fd, uint64_t max_bytes, char out_key[BLOB_KEY_LEN],
                uint64_t *out_size)
{
    struct blob_writer *w = NULL;
    int rc = blob_put_begin(bs, max_bytes, &w);
    if (rc)
        return rc;
    char *chunk = xmalloc(64 * 1024);
    for (;;) {
        ssize_t n = read(fd, chunk, 64 * 1024);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = LOCI_EIO;
            break;
        }
        if (n == 0)
            break;
        rc = blob_put_write(w, chunk, (size_t)n);
        if (rc)
            break;
    }
    xfree(chunk);
    if (rc == LOCI_OK)
        rc = blob_put_finish(w, out_key, out_size);
    if (rc) {
        blob_put_abort(w);
        return rc;
    }
    return blob_put_commit(w);
}

int blob_open(struct blob_store *bs, const char *key, int *out_fd, uint64_t *out_size)
{
    *out_fd = -1;
    if (!blob_key_valid(key))
        return LOCI_EINVAL;
    return bs->be->open(bs->impl, key, out_fd, out_size);
}

int blob_delete(struct blob_store *bs, const char *key)
{
    if (!blob_key_valid(key))
        return LOCI_EINVAL;
    return bs->be->remove(bs->impl, key);
}

int blob_exists(struct blob_store *bs, const char *key, bool *out)
{
    *out = false;
    if (!blob_key_valid(key))
        return LOCI_EINVAL;
    return bs->be->exists(bs->impl, key, out);
}
