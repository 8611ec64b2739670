/*
 * blob_local.c - the local-directory blob backend: DIR/ab/cdef... for key
 * "abcdef...", written as DIR/tmp/<random>.tmp (0600), fsync'd, renamed into
 * place and the directory fsync'd, so a crash leaves either the whole blob
 * or none of it (and maybe a temporary file, removed at the next start).
 *
 * Every path is built here from a checked key or from random hex; callers
 * never name files.
 */
#include "services/blob/blob_int.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/ids.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_MAX_AGE_S 3600

struct local {
    int dir_fd; /* the store's directory */
};

struct local_writer {
    struct local *l;
    int fd;
    char tmp[64]; /* "tmp/<hex>.tmp", relative to dir_fd */
};

static int mkdir_at(int dir_fd, const char *name)
{
    if (mkdirat(dir_fd, name, 0700) == 0 || errno == EEXIST)
        return LOCI_OK;
    return LOCI_EIO;
}

/* Temporary files older than TMP_MAX_AGE_S are leftovers of a crash. */
static void sweep_tmp(int dir_fd)
{
    int fd = openat(dir_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".tmp") != 0)
            continue;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            now - st.st_mtime > TMP_MAX_AGE_S)
            unlinkat(fd, e->d_name, 0);
    }
    closedir(d);
}

int blob__local_open(const char *dir, void **out_impl)
{
    *out_impl = NULL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return LOCI_EIO;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return LOCI_EIO;
    if (mkdir_at(fd, "tmp") != LOCI_OK) {
        close(fd);
        return LOCI_EIO;
    }
    sweep_tmp(fd);
    struct local *l = xcalloc(1, sizeof(*l));
    l->dir_fd = fd;
    *out_impl = l;
    return LOCI_OK;
}

static void local_free(void *impl)
{
    struct local *l = impl;
    if (!l)
        return;
    close(l->dir_fd);
    xfree(l);
}

/* "ab/cdef..." for key "abcdef...". */
static void key_path(const char *key, char out[BLOB_KEY_LEN + 2])
{
    out[0] = key[0];
    out[1] = key[1];
    out[2] = '/';
    memcpy(out + 3, key + 2, BLOB_KEY_LEN - 2); /* the rest and the NUL */
}

static int local_put_begin(void *store_impl, void **out_impl)
{
    struct local *l = store_impl;
    struct local_writer *w = xcalloc(1, sizeof(*w));
    w->l = l;
    char rnd[33];
    ids_random_hex(rnd, 16);
    snprintf(w->tmp, sizeof(w->tmp), "tmp/%s.tmp", rnd);
    w->fd = openat(l->dir_fd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (w->fd < 0) {
        xfree(w);
        return LOCI_EIO;
    }
    *out_impl = w;
    return LOCI_OK;
}

static int local_put_write(void *w_impl, const void *p, size_t n)
{
    struct local_writer *w = w_impl;
    const char *s = p;
    while (n > 0) {
        ssize_t k = write(w->fd, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return LOCI_EIO;
        s += k;
        n -= (size_t)k;
    }
    return LOCI_OK;
}

static int local_put_finish(void *w_impl)
{
    struct local_writer *w = w_impl;
    return fsync(w->fd) == 0 ? LOCI_OK : LOCI_EIO;
}

static void local_put_abort(void *w_impl)
{
    struct local_writer *w = w_impl;
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    unlinkat(w->l->dir_fd, w->tmp, 0);
    xfree(w);
}

static int fsync_dir(int dir_fd, const char *name)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return LOCI_EIO;
    int rc = fsync(fd) == 0 ? LOCI_OK : LOCI_EIO;
    close(fd);
    return rc;
}

static int local_put_commit(void *store_impl, void *w_impl, const char *key)
{
    struct local *l = store_impl;
    struct local_writer *w = w_impl;
    char sub[3] = {key[0], key[1], '\0'};
    char path[BLOB_KEY_LEN + 2];
    key_path(key, path);
    int rc = mkdir_at(l->dir_fd, sub);
    if (rc == LOCI_OK && renameat(l->dir_fd, w->tmp, l->dir_fd, path) != 0)
        rc = LOCI_EIO;
    if (rc == LOCI_OK)
        rc = fsync_dir(l->dir_fd, sub);
    close(w->fd);
    w->fd = -1;
    if (rc)
        unlinkat(l->dir_fd, w->tmp, 0);
    xfree(w);
    return rc;
}

static int local_open(void *store_impl, const char *key, int *out_fd, uint64_t *out_size)
{
    struct local *l = store_impl;
    char path[BLOB_KEY_LEN + 2];
    key_path(key, path);
    int fd = openat(l->dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? LOCI_ENOTFOUND : LOCI_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return LOCI_EIO;
    }
    *out_fd = fd;
    if (out_size)
        *out_size = (uint64_t)st.st_size;
    return LOCI_OK;
}

static int local_remove(void *store_impl, const char *key)
{
    struct local *l = store_impl;
    char path[BLOB_KEY_LEN + 2];
    key_path(key, path);
    if (unlinkat(l->dir_fd, path, 0) != 0 && errno != ENOENT)
        return LOCI_EIO;
    return LOCI_OK;
}

static int local_exists(void *store_impl, const char *key, bool *out)
{
    struct local *l = store_impl;
    char path[BLOB_KEY_LEN + 2];
    key_path(key, path);
    struct stat st;
    if (fstatat(l->dir_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        *out = S_ISREG(st.st_mode);
        return LOCI_OK;
    }
    *out = false;
    return errno == ENOENT ? LOCI_OK : LOCI_EIO;
}

const struct blob_backend blob__local_backend = {
    .name = "local",
    .put_begin = local_put_begin,
    .put_write = local_put_write,
    .put_finish = local_put_finish,
    .put_commit = local_put_commit,
    .put_abort = local_put_abort,
    .open = local_open,
    .remove = local_remove,
    .exists = local_exists,
    .free = local_free,
};
