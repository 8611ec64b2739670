/*
 * test_blob.c - the blob store's local backend: content addressing (the
 * key is the SHA-256 of the bytes), streamed writes in pieces, the size
 * limit, atomic publication (nothing visible before commit, nothing left
 * after abort), 0600 files, idempotent deletes, and keys that are not hex
 * never reaching the file system.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "harness.h"
#include "services/blob/blob.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* sha256("hello world") */
#define HELLO_KEY "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"

static struct blob_store *open_store(char *dir, size_t n)
{
    snprintf(dir, n, "%s/blobs", harness_tmpdir());
    struct blob_store *bs = NULL;
    CHECK_INT(blob_local_new(dir, &bs), ==, LOCI_OK);
    CHECK_STR(blob_store_name(bs), "local");
    return bs;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static char *read_all(int fd, size_t *out_n)
{
    size_t cap = 1 << 16, n = 0;
    char *p = xmalloc(cap);
    ssize_t k;
    while ((k = read(fd, p + n, cap - n)) > 0) {
        n += (size_t)k;
        if (n == cap)
            p = xrealloc(p, cap *= 2);
    }
    *out_n = n;
    return p;
}

TEST(put_in_pieces_is_content_addressed)
{
    char dir[512];
    struct blob_store *bs = open_store(dir, sizeof(dir));
    struct blob_writer *w = NULL;
    CHECK_INT(blob_put_begin(bs, 0, &w), ==, LOCI_OK);
    CHECK_INT(blob_put_write(w, "hello", 5), ==, LOCI_OK);
    CHECK_INT(blob_put_write(w, "", 0), ==, LOCI_OK);
    CHECK_INT(blob_put_write(w, " world", 6), ==, LOCI_OK);
    char key[BLOB_KEY_LEN];
    uint64_t size = 0;
    CHECK_INT(blob_put_finish(w, key, &size), ==, LOCI_OK);
    CHECK_STR(key, HELLO_KEY);
    CHECK_INT(size, ==, 11);
    bool is_there = true;
    CHECK_INT(blob_exists(bs, key, &is_there), ==, LOCI_OK);
    CHECK(!is_there); /* not visible before commit */
    CHECK_INT(blob_put_commit(w), ==, LOCI_OK);
    CHECK_INT(blob_exists(bs, key, &is_there), ==, LOCI_OK);
    CHECK(is_there);

    char path[700];
    snprintf(path, sizeof(path), "%s/b9/%s", dir, HELLO_KEY + 2);
    struct stat st;
    CHECK_INT(stat(path, &st), ==, 0);
    CHECK_INT(st.st_mode & 0777, ==, 0600);
    CHECK_INT(st.st_size, ==, 11);
    snprintf(path, sizeof(path), "%s/tmp", dir);
    CHECK_INT(count_files(path), ==, 0); /* the temporary file was renamed */

    int fd = -1;
    CHECK_INT(blob_open(bs, key, &fd, &size), ==, LOCI_OK);
    CHECK_INT(size, ==, 11);
    size_t n = 0;
    char *got = read_all(fd, &n);
    close(fd);
    CHECK_INT(n, ==, 11);
    CHECK(memcmp(got, "hello world", 11) == 0);
    xfree(got);

    /* The same bytes again: the same key, still one file. */
    char key2[BLOB_KEY_LEN];
    CHECK_INT(blob_put_begin(bs, 0, &w), ==, LOCI_OK);
    CHECK_INT(blob_put_write(w, "hello world", 11), ==, LOCI_OK);
    CHECK_INT(blob_put_finish(w, key2, NULL), ==, LOCI_OK);
    CHECK_INT(blob_put_commit(w), ==, LOCI_OK);
    CHECK_STR(key2, key);
    snprintf(path, sizeof(path), "%s/b9", dir);
    CHECK_INT(count_files(path), ==, 1);

    CHECK_INT(blob_delete(bs, key), ==, LOCI_OK);
    CHECK_INT(blob_exists(bs, key, &is_there), ==, LOCI_OK);
    CHECK(!is_there);
    CHECK_INT(blob_delete(bs, key), ==, LOCI_OK); /* idempotent */
    CHECK_INT(blob_open(bs, key, &fd, &size), ==, LOCI_ENOTFOUND);
    blob_store_free(bs);
}

TEST(size_limit_and_abort_leave_nothing)
{
    char dir[512];
    struct blob_store *bs = open_store(dir, sizeof(dir));
    struct blob_writer *w = NULL;
    CHECK_INT(blob_put_begin(bs, 10, &w), ==, LOCI_OK);
    CHECK_INT(blob_put_write(w, "0123456789", 10), ==, LOCI_OK); /* exactly the limit */
    CHECK_INT(blob_put_write(w, "x", 1), ==, LOCI_ETOOBIG);
    CHECK_INT(blob_put_write(w, "", 0), ==, LOCI_ETOOBIG); /* refused from now on */
    char key[BLOB_KEY_LEN];
    CHECK_INT(blob_put_finish(w, key, NULL), ==, LOCI_EINVAL);
    blob_put_abort(w);
    blob_put_abort(NULL);
    char path[600];
    snprintf(path, sizeof(path), "%s/tmp", dir);
    CHECK_INT(count_files(path), ==, 0);
    CHECK_INT(count_files(dir), ==, 1); /* only tmp/ */

    /* A finished but uncommitted blob is not published by abort. */
    CHECK_INT(blob_put_begin(bs, 0, &w), ==, LOCI_OK);
    CHECK_INT(blob_put_write(w, "hello world", 11), ==, LOCI_OK);
    CHECK_INT(blob_put_finish(w, key, NULL), ==, LOCI_OK);
    blob_put_abort(w);
    bool is_there = true;
    CHECK_INT(blob_exists(bs, HELLO_KEY, &is_there), ==, LOCI_OK);
    CHECK(!is_there);
    CHECK_INT(count_files(path), ==, 0);
    blob_store_free(bs);
}

TEST(put_fd_and_empty_blob)
{
    char dir[512];
    struct blob_store *bs = open_store(dir, sizeof(dir));
    char src[600];
    snprintf(src, sizeof(src), "%s/src.bin", harness_tmpdir());
    int fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    char big[200000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    CHECK_INT(write(fd, big, sizeof(big)), ==, (long long)sizeof(big));
    close(fd);
    fd = open(src, O_RDONLY);
    char key[BLOB_KEY_LEN];
    uint64_t size = 0;
    CHECK_INT(blob_put_fd(bs, fd, 0, key, &size), ==, LOCI_OK);
    close(fd);
    CHECK_INT(size, ==, sizeof(big));
    CHECK(blob_key_valid(key));
    fd = open(src, O_RDONLY);
    CHECK_INT(blob_put_fd(bs, fd, 1000, key, &size), ==, LOCI_ETOOBIG);
    close(fd);

    /* e3b0... is the SHA-256 of nothing */
    fd = open("/dev/null", O_RDONLY);
    CHECK_INT(blob_put_fd(bs, fd, 0, key, &size), ==, LOCI_OK);
    close(fd);
    CHECK_STR(key, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_INT(size, ==, 0);
    blob_store_free(bs);
}

TEST(keys_that_are_not_hex_never_reach_the_disk)
{
    char dir[512];
    struct blob_store *bs = open_store(dir, sizeof(dir));
    const char *bad[] = {
        "",
        "../../etc/passwd",
        "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9",
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde",
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9a",
        "b9/d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
        "..4d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = -1;
        bool b = true;
        CHECK(!blob_key_valid(bad[i]));
        CHECK_INT(blob_open(bs, bad[i], &fd, NULL), ==, LOCI_EINVAL);
        CHECK_INT(fd, ==, -1);
        CHECK_INT(blob_delete(bs, bad[i]), ==, LOCI_EINVAL);
        CHECK_INT(blob_exists(bs, bad[i], &b), ==, LOCI_EINVAL);
        CHECK(!b);
    }
    CHECK(!blob_key_valid(NULL));
    CHECK(blob_key_valid(HELLO_KEY));
    blob_store_free(bs);
}

TEST(stale_temporary_files_are_swept_at_open)
{
    char dir[512];
    struct blob_store *bs = open_store(dir, sizeof(dir));
    blob_store_free(bs);
    char old[700], fresh[700];
    snprintf(old, sizeof(old), "%s/tmp/old.tmp", dir);
    snprintf(fresh, sizeof(fresh), "%s/tmp/fresh.tmp", dir);
    close(open(old, O_WRONLY | O_CREAT, 0600));
    close(open(fresh, O_WRONLY | O_CREAT, 0600));
    struct timespec ts[2] = {{1000, 0}, {1000, 0}};
    CHECK_INT(utimensat(AT_FDCWD, old, ts, 0), ==, 0);
    CHECK_INT(blob_local_new(dir, &bs), ==, LOCI_OK);
    CHECK(access(old, F_OK) != 0);
    CHECK(access(fresh, F_OK) == 0); /* maybe an upload in progress elsewhere */
    blob_store_free(bs);
}
