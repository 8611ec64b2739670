/*
 * docs.c - the documents service: uploads into the blob store, the ledger
 * (get, list), download, delete, cancel and reprocess.
 *
 * An upload streams the file into a blob writer (hashing as it goes),
 * keeps the first bytes for the type check, and counts against the size
 * cap and the user's quota while it arrives. When the body is complete the
 * type is decided by content, then the blob is published and the document
 * row, its job and its `document.created` event are written in one
 * transaction: a failure anywhere leaves neither row nor orphan blob.
 */
#include "docs/docs_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "events/events.h"
#include "search/search.h"
#include "services/jobs/jobs.h"
#include "services/text/text.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct docs *docs_new(const struct docs_opts *o)
{
    struct docs *d = xcalloc(1, sizeof(*d));
    d->o = *o;
    pthread_mutex_init(&d->gc_mu, NULL);
    return d;
}

void docs_free(struct docs *d)
{
    if (!d)
        return;
    pthread_mutex_destroy(&d->gc_mu);
    xfree(d);
}

void docs__wake(struct docs *d)
{
    if (d->o.jobs)
        jobs_wake(d->o.jobs);
    if (d->o.wake)
        d->o.wake(d->o.wake_arg);
}

static void set_why(struct docs_error *why, const char *code, const char *fmt, const char *arg)
{
    if (!why)
        return;
    why->code = code;
    snprintf(why->message, sizeof(why->message), fmt, arg ? arg : "");
}

/* ------------------------------------------------------------------ */
/* rows                                                                 */

static json_t *int_or_null(struct db_stmt *st, int col)
{
    return db_col_is_null(st, col) ? json_null() : json_integer(db_col_int64(st, col));
}

static json_t *text_or_null(struct db_stmt *st, int col)
{
    return db_col_is_null(st, col) ? json_null() : json_string(db_col_text(st, col, NULL));
}

json_t *docs__row_json(struct db_stmt *st)
{
    json_t *timings = json_object();
    json_object_set_new(timings, "parse_ms", int_or_null(st, 17));
    json_object_set_new(timings, "index_ms", int_or_null(st, 18));
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(db_col_text(st, 0, NULL)));
    json_object_set_new(o, "filename", json_string(db_col_text(st, 1, NULL)));
    json_object_set_new(o, "media_type", json_string(db_col_text(st, 2, NULL)));
    json_object_set_new(o, "size_bytes", json_integer(db_col_int64(st, 3)));
    json_object_set_new(o, "sha256", json_string(db_col_text(st, 4, NULL)));
    json_object_set_new(o, "status", json_string(db_col_text(st, 5, NULL)));
    json_object_set_new(o, "progress", json_real(db_col_double(st, 6)));
    json_object_set_new(o, "error_code", text_or_null(st, 7));
    json_object_set_new(o, "error", text_or_null(st, 8));
    json_object_set_new(o, "title", text_or_null(st, 9));
    json_object_set_new(o, "summary", text_or_null(st, 10));
    json_object_set_new(o, "pages", int_or_null(st, 11));
    json_object_set_new(o, "chunk_count", json_integer(db_col_int64(st, 12)));
    json_object_set_new(o, "job_id", text_or_null(st, 13));
    json_object_set_new(o, "root_node_id", text_or_null(st, 14));
    json_object_set_new(o, "source", json_string(db_col_text(st, 15, NULL)));
    json_object_set_new(o, "source_path", text_or_null(st, 16));
    json_object_set_new(o, "timings", timings);
    json_object_set_new(o, "created_at", json_integer(db_col_int64(st, 19)));
    json_object_set_new(o, "updated_at", json_integer(db_col_int64(st, 20)));
    return o;
}

int docs_get(struct db_conn *c, const char *user_id, const char *id, json_t **out)
{
    *out = NULL;
    struct db_stmt *st = NULL;
    int rc =
        db_prepare(c, "SELECT " DOCS__COLS " FROM documents WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        *out = docs__row_json(st);
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_ENOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

static bool status_valid(const char *s)
{
    static const char *const all[] = {"queued", "parsing",   "indexing", "done",
                                      "failed", "cancelled", NULL};
    for (size_t i = 0; all[i]; i++)
        if (strcmp(s, all[i]) == 0)
            return true;
    return false;
}

int docs_list(struct db_conn *c, const char *user_id, const char *status, const char *cursor,
              int limit, json_t **out)
{
    *out = NULL;
    if (limit < 1 || limit > 100 || (status && !status_valid(status)))
        return LOCI_EINVAL;
    int64_t after_at = INT64_MAX;
    const char *after_id = "";
    struct db_stmt *st = NULL;
    int rc;
    if (cursor) {
        if (!ids_is_uuid(cursor, strlen(cursor)))
            return LOCI_EUNPROCESSABLE;
        rc = db_prepare(c, "SELECT created_at FROM documents WHERE id = ? AND user_id = ?", &st);
        if (rc)
            return rc;
        db_bind_text(st, 1, cursor, (size_t)-1);
        db_bind_text(st, 2, user_id, (size_t)-1);
        rc = db_step(st);
        if (rc == LOCI_ROW)
            after_at = db_col_int64(st, 0);
        db_stmt_done(st);
        if (rc != LOCI_ROW)
            return rc ? rc : LOCI_EUNPROCESSABLE; /* gone, or never a cursor of yours */
        after_id = cursor;
    }
    rc = db_prepare(
        c,
        "SELECT " DOCS__COLS " FROM documents WHERE user_id = ? "
        "AND (created_at < ? OR (created_at = ? AND id < ?)) "
        "AND (status = ? OR CAST(? AS TEXT) = '') ORDER BY created_at DESC, id DESC LIMIT ?",
        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_int64(st, 2, after_at);
    db_bind_int64(st, 3, after_at);
    db_bind_text(st, 4, cursor ? after_id : "\x7f", (size_t)-1);
    db_bind_text(st, 5, status ? status : "", (size_t)-1);
    db_bind_text(st, 6, status ? status : "", (size_t)-1);
    db_bind_int64(st, 7, limit + 1);
    json_t *items = json_array();
    while ((rc = db_step(st)) == LOCI_ROW)
        json_array_append_new(items, docs__row_json(st));
    db_stmt_done(st);
    if (rc) {
        json_decref(items);
        return rc;
    }
    json_t *next = json_null();
    if (json_array_size(items) > (size_t)limit) {
        json_array_remove(items, (size_t)limit);
        next = json_incref(json_object_get(json_array_get(items, (size_t)limit - 1), "id"));
    }
    *out = json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
    return LOCI_OK;
}

/* ------------------------------------------------------------------ */
/* file names                                                           */

void docs_sanitize_filename(const char *in, char out[DOCS_FILENAME_MAX + 1])
{
    const char *base = in ? in : "";
    for (const char *p = base; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    struct buf clean, kept;
    buf_init(&clean, 4 * DOCS_FILENAME_MAX + 64);
    buf_init(&kept, 4 * DOCS_FILENAME_MAX + 64);
    size_t n = strlen(base);
    if (text_clean_line(base, n < 4 * DOCS_FILENAME_MAX ? n : 4 * DOCS_FILENAME_MAX, &clean))
        buf_reset(&clean);
    const char *s = buf_cstr(&clean);
    while (*s == '.' || *s == ' ')
        s++;
    for (; *s; s++)
        if (*s != '"' && *s != ';' && *s != '<' && *s != '>' && *s != '*' && *s != '?' &&
            *s != '|' && *s != ':')
            buf_append_char(&kept, *s);
    /* cut at a character boundary */
    size_t len = kept.len;
    if (len > DOCS_FILENAME_MAX) {
        len = DOCS_FILENAME_MAX;
        while (len > 0 && ((unsigned char)kept.p[len] & 0xC0) == 0x80)
            len--;
    }
    while (len > 0 && (kept.p[len - 1] == ' ' || kept.p[len - 1] == '.'))
        len--;
    if (len == 0)
        snprintf(out, DOCS_FILENAME_MAX + 1, "document");
    else
        snprintf(out, DOCS_FILENAME_MAX + 1, "%.*s", (int)len, kept.p);
    buf_release(&clean);
    buf_release(&kept);
}

/* ------------------------------------------------------------------ */
/* publishing a stored file                                             */

static int used_bytes(struct db_conn *c, const char *user_id, int64_t *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM documents "
                        "WHERE user_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    rc = db_step(st);
    *out = rc == LOCI_ROW ? db_col_int64(st, 0) : 0;
    db_stmt_done(st);
    return rc == LOCI_ROW ? LOCI_OK : rc ? rc : LOCI_EIO;
}

static int find_by_sha(struct db_conn *c, const char *user_id, const char *sha,
                       char out_id[UUID_STR_LEN])
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT id FROM documents WHERE user_id = ? AND sha256 = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_text(st, 2, sha, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        snprintf(out_id, UUID_STR_LEN, "%s", db_col_text(st, 0, NULL));
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_ENOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

struct create_tx {
    struct docs *d;
    struct docs__new_doc *nd;
    struct docs_error *why;
};

static int tx_create(struct db_conn *c, void *arg)
{
    struct create_tx *t = arg;
    struct docs__new_doc *nd = t->nd;
    int rc = find_by_sha(c, nd->user_id, nd->sha256, t->why->existing_id);
    if (rc == LOCI_OK) {
        set_why(t->why, "duplicate", "you already uploaded this file%s", NULL);
        return LOCI_ECONFLICT;
    }
    if (rc != LOCI_ENOTFOUND)
        return rc;
    if (nd->replace_id && (rc = docs__remove_rows(c, nd->user_id, nd->replace_id, NULL)) != 0 &&
        rc != LOCI_ENOTFOUND)
        return rc;
    int64_t used = 0;
    if ((rc = used_bytes(c, nd->user_id, &used)) != LOCI_OK)
        return rc;
    if (used + (int64_t)nd->size > t->d->o.quota_bytes) {
        char lim[48];
        snprintf(lim, sizeof(lim), "%lld", (long long)t->d->o.quota_bytes);
        set_why(t->why, "quota_exceeded", "your documents would take more than %s bytes", lim);
        return LOCI_ETOOBIG;
    }
    ids_uuid7(nd->id);
    nd->job_id[0] = '\0';
    if (nd->is_job) {
        json_t *payload = json_pack("{s:s}", "document_id", nd->id);
        struct jobs_spec spec = {.type = "docs.process",
                                 .payload = payload,
                                 .user_id = nd->user_id,
                                 .max_attempts = DOCS__MAX_ATTEMPTS};
        rc = jobs_enqueue(c, &spec, nd->job_id, NULL);
        json_decref(payload);
        if (rc)
            return rc;
    }
    int64_t now = clock_now_ms();
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "INSERT INTO documents (id, user_id, filename, media_type, size_bytes, sha256, "
                    "status, job_id, source, source_path, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, nd->id, (size_t)-1);
    db_bind_text(st, 2, nd->user_id, (size_t)-1);
    db_bind_text(st, 3, nd->filename, (size_t)-1);
    db_bind_text(st, 4, nd->media_type, (size_t)-1);
    db_bind_int64(st, 5, (int64_t)nd->size);
    db_bind_text(st, 6, nd->sha256, (size_t)-1);
    db_bind_text(st, 7, nd->job_id[0] ? nd->job_id : NULL, (size_t)-1);
    db_bind_text(st, 8, nd->source, (size_t)-1);
    db_bind_text(st, 9, nd->source_path, (size_t)-1);
    db_bind_int64(st, 10, now);
    db_bind_int64(st, 11, now);
    rc = db_run(st, NULL);
    if (rc)
        return rc;
    json_t *ev =
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:s?}", "id", nd->id, "filename", nd->filename,
                  "media_type", nd->media_type, "size_bytes", (json_int_t)nd->size, "source",
                  nd->source, "job_id", nd->job_id[0] ? nd->job_id : NULL);
    rc = events_append(c, nd->user_id, "document.created", ev, NULL);
    json_decref(ev);
    return rc;
}

static int count_sha(struct db *db, const char *sha, int64_t *out)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(c, "SELECT COUNT(*) FROM documents WHERE sha256 = ?", &st);
    if (rc == LOCI_OK) {
        db_bind_text(st, 1, sha, (size_t)-1);
        rc = db_step(st);
        *out = rc == LOCI_ROW ? db_col_int64(st, 0) : 0;
        rc = rc == LOCI_ROW ? LOCI_OK : rc ? rc : LOCI_EIO;
        db_stmt_done(st);
    }
    db_release(c);
    return rc;
}

/* Under gc_mu. */
static void gc_locked(struct docs *d, const char *sha)
{
    int64_t n = 1;
    if (count_sha(d->o.db, sha, &n) == LOCI_OK && n == 0)
        blob_delete(d->o.blobs, sha);
}

void docs__blob_gc(struct docs *d, const char *sha256)
{
    if (!sha256 || !sha256[0])
        return;
    pthread_mutex_lock(&d->gc_mu);
    gc_locked(d, sha256);
    pthread_mutex_unlock(&d->gc_mu);
}

int docs__publish(struct docs *d, struct blob_writer *w, struct docs__new_doc *nd,
                  struct docs_error *why)
{
    pthread_mutex_lock(&d->gc_mu);
    int rc = blob_put_commit(w);
    if (rc == LOCI_OK) {
        struct create_tx t = {d, nd, why};
        rc = db_tx(d->o.db, tx_create, &t);
        if (rc == LOCI_ECONFLICT && !why->code) {
            /* the unique (user, sha256) index: the same bytes raced in */
            rc = db_tx(d->o.db, tx_create, &t);
            if (rc == LOCI_ECONFLICT && !why->code)
                set_why(why, "conflict", "the document changed meanwhile%s", NULL);
        }
        if (rc)
            gc_locked(d, nd->sha256);
    }
    pthread_mutex_unlock(&d->gc_mu);
    if (rc == LOCI_OK)
        docs__wake(d);
    return rc;
}

/* ------------------------------------------------------------------ */
/* uploads                                                              */

struct docs_upload {
    struct docs *d;
    char user_id[UUID_STR_LEN];
    int64_t quota_left;
    struct blob_writer *w;
    char filename[DOCS_FILENAME_MAX + 1];
    char declared[128];
    char head[PARSE_HEAD_BYTES];
    size_t head_n;
    uint64_t size;
    bool has_file;
    int err;               /* sticky: the first refusal */
    struct docs_error why; /* and why */
};

int docs_upload_new(struct docs *d, const char *user_id, struct docs_upload **out)
{
    *out = NULL;
    struct db_conn *c = NULL;
    int rc = db_acquire(d->o.db, &c);
    if (rc)
        return rc;
    int64_t used = 0;
    rc = used_bytes(c, user_id, &used);
    db_release(c);
    if (rc)
        return rc;
    struct docs_upload *u = xcalloc(1, sizeof(*u));
    u->d = d;
    snprintf(u->user_id, sizeof(u->user_id), "%s", user_id);
    u->quota_left = d->o.quota_bytes - used;
    *out = u;
    return LOCI_OK;
}

int docs_upload_file(struct docs_upload *u, const char *filename, const char *declared_type)
{
    if (u->has_file)
        return LOCI_EINVAL;
    int rc = blob_put_begin(u->d->o.blobs, 0, &u->w);
    if (rc)
        return rc;
    u->has_file = true;
    docs_sanitize_filename(filename, u->filename);
    snprintf(u->declared, sizeof(u->declared), "%s", declared_type ? declared_type : "");
    return LOCI_OK;
}

static int refuse(struct docs_upload *u, int err, const char *code, const char *fmt, long long arg)
{
    char n[32];
    snprintf(n, sizeof(n), "%lld", arg);
    u->err = err;
    set_why(&u->why, code, fmt, n);
    blob_put_abort(u->w);
    u->w = NULL;
    return err;
}

int docs_upload_write(struct docs_upload *u, const void *p, size_t n, struct docs_error *why)
{
    int rc = u->err;
    if (rc == LOCI_OK && !u->w)
        rc = LOCI_EINVAL;
    else if (rc == LOCI_OK && (int64_t)(u->size + n) > u->d->o.max_bytes)
        rc = refuse(u, LOCI_ETOOBIG, "payload_too_large", "the file is larger than %s bytes",
                    (long long)u->d->o.max_bytes);
    else if (rc == LOCI_OK && (int64_t)(u->size + n) > u->quota_left)
        rc = refuse(u, LOCI_ETOOBIG, "quota_exceeded",
                    "the file does not fit in your storage quota (%s bytes left)",
                    (long long)(u->quota_left > 0 ? u->quota_left : 0));
    if (rc == LOCI_OK && u->head_n < sizeof(u->head)) {
        size_t k = sizeof(u->head) - u->head_n;
        if (k > n)
            k = n;
        memcpy(u->head + u->head_n, p, k);
        u->head_n += k;
    }
    if (rc == LOCI_OK && (rc = blob_put_write(u->w, p, n)) != LOCI_OK)
        rc = refuse(u, rc, "storage_failed", "the file cannot be stored%s", 0);
    if (rc == LOCI_OK)
        u->size += n;
    if (rc && why)
        *why = u->why;
    return rc;
}

int docs_upload_finish(struct docs_upload *u, json_t **out, struct docs_error *why)
{
    *out = NULL;
    memset(why, 0, sizeof(*why));
    if (u->err) {
        *why = u->why;
        return u->err;
    }
    if (!u->has_file) {
        set_why(why, "file_missing", "send the file in a multipart/form-data field named 'file'%s",
                NULL);
        return LOCI_EUNPROCESSABLE;
    }
    if (u->size == 0) {
        set_why(why, "empty_file", "the file is empty%s", NULL);
        return LOCI_EUNPROCESSABLE;
    }
    struct parse_type t;
    const char *code = NULL;
    char msg[200];
    int rc =
        parse_detect(u->head, u->head_n, u->declared, u->filename, &t, &code, msg, sizeof(msg));
    if (rc) {
        set_why(why, code, "%s", msg);
        return rc;
    }
    char sha[BLOB_KEY_LEN];
    uint64_t size = 0;
    rc = blob_put_finish(u->w, sha, &size);
    if (rc)
        return rc;
    struct docs__new_doc nd = {
        .user_id = u->user_id,
        .filename = u->filename,
        .media_type = t.media_type,
        .sha256 = sha,
        .size = size,
        .source = "upload",
        .is_job = true,
    };
    struct blob_writer *w = u->w;
    u->w = NULL; /* docs__publish frees it */
    rc = docs__publish(u->d, w, &nd, why);
    if (rc)
        return rc;
    struct db_conn *c = NULL;
    rc = db_acquire(u->d->o.db, &c);
    if (rc == LOCI_OK) {
        rc = docs_get(c, u->user_id, nd.id, out);
        db_release(c);
    }
    return rc;
}

void docs_upload_free(struct docs_upload *u)
{
    if (!u)
        return;
    blob_put_abort(u->w);
    xfree(u);
}

/* ------------------------------------------------------------------ */
/* reading the file                                                     */

int docs_open_file(struct docs *d, const char *user_id, const char *id, int *out_fd,
                   uint64_t *out_size, char media_type[64], char filename[DOCS_FILENAME_MAX + 1])
{
    *out_fd = -1;
    struct db_conn *c = NULL;
    int rc = db_acquire(d->o.db, &c);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    char sha[BLOB_KEY_LEN] = "";
    rc = db_prepare(c,
                    "SELECT sha256, media_type, filename FROM documents WHERE id = ? AND "
                    "user_id = ?",
                    &st);
    if (rc == LOCI_OK) {
        db_bind_text(st, 1, id, (size_t)-1);
        db_bind_text(st, 2, user_id, (size_t)-1);
        rc = db_step(st);
        if (rc == LOCI_ROW) {
            snprintf(sha, sizeof(sha), "%s", db_col_text(st, 0, NULL));
            snprintf(media_type, 64, "%s", db_col_text(st, 1, NULL));
            snprintf(filename, DOCS_FILENAME_MAX + 1, "%s", db_col_text(st, 2, NULL));
            rc = LOCI_OK;
        } else if (rc == LOCI_OK) {
            rc = LOCI_ENOTFOUND;
        }
        db_stmt_done(st);
    }
    db_release(c);
    if (rc)
        return rc;
    rc = blob_open(d->o.blobs, sha, out_fd, out_size);
    return rc == LOCI_ENOTFOUND || rc == LOCI_EINVAL ? LOCI_EIO : rc; /* the row says it exists */
}

/* ------------------------------------------------------------------ */
/* delete, cancel, reprocess                                            */

struct doc_state {
    char status[16];
    char job_id[UUID_STR_LEN]; /* "" when none */
    char sha256[BLOB_KEY_LEN];
};

static int load_state(struct db_conn *c, const char *user_id, const char *id, struct doc_state *s)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT status, COALESCE(job_id, ''), sha256 FROM documents WHERE id = ? "
                        "AND user_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        snprintf(s->status, sizeof(s->status), "%s", db_col_text(st, 0, NULL));
        snprintf(s->job_id, sizeof(s->job_id), "%s", db_col_text(st, 1, NULL));
        snprintf(s->sha256, sizeof(s->sha256), "%s", db_col_text(st, 2, NULL));
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_ENOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

static bool is_active(const char *status)
{
    return strcmp(status, "queued") == 0 || strcmp(status, "parsing") == 0 ||
           strcmp(status, "indexing") == 0;
}

/* Stop the job of an active document (it may have finished meanwhile). */
static int stop_job(struct db_conn *c, const struct doc_state *s)
{
    if (!s->job_id[0] || !is_active(s->status))
        return LOCI_OK;
    int rc = jobs_cancel(c, s->job_id);
    return rc == LOCI_ECONFLICT || rc == LOCI_ENOTFOUND ? LOCI_OK : rc;
}

/* The document's index: full-text rows first (they are found through the
 * chunks), then vectors and chunks. */
int docs__remove_index(struct db_conn *c, const char *user_id, const char *id)
{
    int rc = search_document_removed(c, user_id, id);
    struct db_stmt *st = NULL;
    if (rc == LOCI_OK &&
        (rc = db_prepare(c, "DELETE FROM chunk_vectors WHERE document_id = ? AND user_id = ?",
                         &st)) == LOCI_OK) {
        db_bind_text(st, 1, id, (size_t)-1);
        db_bind_text(st, 2, user_id, (size_t)-1);
        rc = db_run(st, NULL);
    }
    if (rc == LOCI_OK &&
        (rc = db_prepare(c, "DELETE FROM chunks WHERE document_id = ? AND user_id = ?", &st)) ==
            LOCI_OK) {
        db_bind_text(st, 1, id, (size_t)-1);
        db_bind_text(st, 2, user_id, (size_t)-1);
        rc = db_run(st, NULL);
    }
    return rc;
}

int docs__remove_rows(struct db_conn *c, const char *user_id, const char *id,
                      char out_sha256[BLOB_KEY_LEN])
{
    struct doc_state s;
    int rc = load_state(c, user_id, id, &s);
    if (rc == LOCI_OK)
        rc = stop_job(c, &s);
    if (rc == LOCI_OK)
        rc = docs__remove_index(c, user_id, id);
    struct db_stmt *st = NULL;
    if (rc == LOCI_OK && (rc = db_prepare(c, "DELETE FROM documents WHERE id = ? AND user_id = ?",
                                          &st)) == LOCI_OK) {
        db_bind_text(st, 1, id, (size_t)-1);
        db_bind_text(st, 2, user_id, (size_t)-1);
        rc = db_run_one(st);
    }
    if (rc == LOCI_OK) {
        json_t *ev = json_pack("{s:s}", "id", id);
        rc = events_append(c, user_id, "document.deleted", ev, NULL);
        json_decref(ev);
    }
    if (rc == LOCI_OK && out_sha256)
        memcpy(out_sha256, s.sha256, BLOB_KEY_LEN);
    return rc;
}

struct delete_tx {
    const char *user_id;
    const char *id;
    char sha256[BLOB_KEY_LEN];
};

static int tx_delete(struct db_conn *c, void *arg)
{
    struct delete_tx *t = arg;
    return docs__remove_rows(c, t->user_id, t->id, t->sha256);
}

int docs_delete(struct docs *d, const char *user_id, const char *id)
{
    struct delete_tx t = {user_id, id, ""};
    int rc = db_tx(d->o.db, tx_delete, &t);
    if (rc)
        return rc;
    docs__blob_gc(d, t.sha256);
    search_vectors_changed(d->o.search, user_id);
    docs__wake(d);
    return LOCI_OK;
}

struct state_tx {
    struct docs *d;
    const char *user_id;
    const char *id;
    struct docs_error *why;
    json_t *out;
};

static int set_status_row(struct db_conn *c, const char *user_id, const char *id,
                          const char *status, const char *job_id, const char *error_code,
                          const char *error)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE documents SET status = ?, job_id = ?, error_code = ?, error = ?, "
                        "progress = 0, chunk_count = CASE WHEN CAST(? AS BIGINT) = 1 THEN 0 "
                        "ELSE chunk_count END, updated_at = ? WHERE id = ? AND user_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, status, (size_t)-1);
    db_bind_text(st, 2, job_id, (size_t)-1);
    db_bind_text(st, 3, error_code, (size_t)-1);
    db_bind_text(st, 4, error, (size_t)-1);
    db_bind_int64(st, 5, strcmp(status, "cancelled") == 0);
    db_bind_int64(st, 6, clock_now_ms());
    db_bind_text(st, 7, id, (size_t)-1);
    db_bind_text(st, 8, user_id, (size_t)-1);
    return db_run_one(st);
}

static int tx_cancel(struct db_conn *c, void *arg)
{
    struct state_tx *t = arg;
    json_decref(t->out);
    t->out = NULL;
    struct doc_state s;
    int rc = load_state(c, t->user_id, t->id, &s);
    if (rc)
        return rc;
    if (!is_active(s.status)) {
        set_why(t->why, "not_processing", "the document is %s: there is nothing to cancel",
                s.status);
        return LOCI_ECONFLICT;
    }
    rc = stop_job(c, &s);
    if (rc == LOCI_OK)
        rc = docs__remove_index(c, t->user_id, t->id);
    if (rc == LOCI_OK)
        rc = set_status_row(c, t->user_id, t->id, "cancelled", s.job_id[0] ? s.job_id : NULL,
                            "cancelled", "processing was cancelled");
    if (rc == LOCI_OK) {
        json_t *ev = json_pack("{s:s}", "id", t->id);
        rc = events_append(c, t->user_id, "document.cancelled", ev, NULL);
        json_decref(ev);
    }
    if (rc == LOCI_OK)
        rc = docs_get(c, t->user_id, t->id, &t->out);
    return rc;
}

int docs_cancel(struct docs *d, const char *user_id, const char *id, json_t **out,
                struct docs_error *why)
{
    memset(why, 0, sizeof(*why));
    struct state_tx t = {d, user_id, id, why, NULL};
    int rc = db_tx(d->o.db, tx_cancel, &t);
    if (rc) {
        json_decref(t.out);
        return rc;
    }
    search_vectors_changed(d->o.search, user_id);
    docs__wake(d);
    *out = t.out;
    return LOCI_OK;
}

static int tx_reprocess(struct db_conn *c, void *arg)
{
    struct state_tx *t = arg;
    json_decref(t->out);
    t->out = NULL;
    struct doc_state s;
    int rc = load_state(c, t->user_id, t->id, &s);
    if (rc)
        return rc;
    if (is_active(s.status)) {
        set_why(t->why, "processing", "the document is %s already", s.status);
        return LOCI_ECONFLICT;
    }
    char job_id[UUID_STR_LEN];
    json_t *payload = json_pack("{s:s}", "document_id", t->id);
    struct jobs_spec spec = {.type = "docs.process",
                             .payload = payload,
                             .user_id = t->user_id,
                             .max_attempts = DOCS__MAX_ATTEMPTS};
    rc = jobs_enqueue(c, &spec, job_id, NULL);
    json_decref(payload);
    if (rc == LOCI_OK)
        rc = set_status_row(c, t->user_id, t->id, "queued", job_id, NULL, NULL);
    if (rc == LOCI_OK) {
        json_t *ev = json_pack("{s:s, s:s}", "id", t->id, "job_id", job_id);
        rc = events_append(c, t->user_id, "document.reprocessing", ev, NULL);
        json_decref(ev);
    }
    if (rc == LOCI_OK)
        rc = docs_get(c, t->user_id, t->id, &t->out);
    return rc;
}

int docs_reprocess(struct docs *d, const char *user_id, const char *id, json_t **out,
                   struct docs_error *why)
{
    memset(why, 0, sizeof(*why));
    struct state_tx t = {d, user_id, id, why, NULL};
    int rc = db_tx(d->o.db, tx_reprocess, &t);
    if (rc) {
        json_decref(t.out);
        return rc;
    }
    docs__wake(d);
    *out = t.out;
    return LOCI_OK;
}
