/*
 * docs_import.c - `loci import DIR`: a folder of Markdown notes (an
 * Obsidian vault, say) into one user's documents and graph.
 *
 * Each note becomes a document like an upload (blob, ledger, events) with
 * source "import" and its path in the folder, processed on this thread.
 * A note whose path and bytes are the same as last time is left alone, so
 * running the import again only does the changed notes. Once every note
 * is in, the [[wikilinks]] of the notes processed in this run become
 * "related" edges from the note's root node to the linked note's (by note
 * name, as Obsidian resolves them; a link to no note makes a node of its
 * own, like an unresolved link in Obsidian).
 *
 * Not for: uploads over HTTP (docs.c), watching the folder.
 */
#include "docs/docs_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "graph/graph.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES     100000
#define MAX_DEPTH     32
#define MAX_LINKS     256 /* per note */
#define PATH_BYTES    4096
#define LINK_READ_MAX (8u << 20)

struct note {
    char *rel;  /* path relative to the folder */
    char *name; /* the file name without .md: what [[links]] name */
    char id[UUID_STR_LEN];
    bool is_processed; /* imported in this run */
    char root[UUID_STR_LEN];
    char *title;
};

struct walk {
    struct note *notes;
    size_t n, cap;
    bool is_truncated;
};

static bool is_markdown(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && dot != name && (strcasecmp(dot, ".md") == 0 || strcasecmp(dot, ".markdown") == 0);
}

static void walk_dir(const char *root, const char *rel, int depth, struct walk *w)
{
    char path[PATH_BYTES];
    int k = snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
    if (k < 0 || (size_t)k >= sizeof(path) || depth > MAX_DEPTH)
        return;
    DIR *dir = opendir(path);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ., .., .obsidian, .git, .trash */
        char sub[PATH_BYTES], full[PATH_BYTES];
        int a = snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        int b = snprintf(full, sizeof(full), "%s/%s", root, sub);
        if (a < 0 || (size_t)a >= sizeof(sub) || b < 0 || (size_t)b >= sizeof(full))
            continue;
        struct stat st;
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            walk_dir(root, sub, depth + 1, w);
        } else if (S_ISREG(st.st_mode) && is_markdown(e->d_name)) {
            if (w->n >= MAX_FILES) {
                w->is_truncated = true;
                continue;
            }
            if (w->n == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 64;
                w->notes = xrealloc(w->notes, w->cap * sizeof(*w->notes));
            }
            struct note *nt = &w->notes[w->n++];
            memset(nt, 0, sizeof(*nt));
            nt->rel = xstrdup(sub);
            const char *dot = strrchr(e->d_name, '.');
            nt->name = xstrndup(e->d_name, (size_t)(dot - e->d_name));
        }
    }
    closedir(dir);
}

static int by_rel(const void *a, const void *b)
{
    return strcmp(((const struct note *)a)->rel, ((const struct note *)b)->rel);
}

/* ---- one note ---- */

struct earlier {
    char id[UUID_STR_LEN];
    char sha256[BLOB_KEY_LEN];
    char status[16];
};

static int find_earlier(struct db *db, const char *user_id, const char *rel, struct earlier *out)
{
    memset(out, 0, sizeof(*out));
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "SELECT id, sha256, status FROM documents WHERE user_id = ? AND "
                    "source = 'import' AND source_path = ? ORDER BY created_at DESC LIMIT 1",
                    &st);
    if (rc == LOCI_OK) {
        db_bind_text(st, 1, user_id, (size_t)-1);
        db_bind_text(st, 2, rel, (size_t)-1);
        rc = db_step(st);
        if (rc == LOCI_ROW) {
            snprintf(out->id, sizeof(out->id), "%s", db_col_text(st, 0, NULL));
            snprintf(out->sha256, sizeof(out->sha256), "%s", db_col_text(st, 1, NULL));
            snprintf(out->status, sizeof(out->status), "%s", db_col_text(st, 2, NULL));
            rc = LOCI_OK;
        }
        db_stmt_done(st);
    }
    db_release(c);
    return rc;
}

/* Read fd into a blob writer (not committed), keeping the first bytes. */
static int hash_file(struct docs *d, int fd, struct blob_writer **out_w, char sha[BLOB_KEY_LEN],
                     uint64_t *size, char *head, size_t *head_n)
{
    int rc = blob_put_begin(d->o.blobs, (uint64_t)d->o.max_bytes, out_w);
    if (rc)
        return rc;
    char *chunk = xmalloc(65536);
    *head_n = 0;
    for (;;) {
        ssize_t k = read(fd, chunk, 65536);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = LOCI_EIO;
            break;
        }
        if (k == 0)
            break;
        if (*head_n < PARSE_HEAD_BYTES) {
            size_t take =
                PARSE_HEAD_BYTES - *head_n < (size_t)k ? PARSE_HEAD_BYTES - *head_n : (size_t)k;
            memcpy(head + *head_n, chunk, take);
            *head_n += take;
        }
        if ((rc = blob_put_write(*out_w, chunk, (size_t)k)) != LOCI_OK)
            break;
    }
    xfree(chunk);
    if (rc == LOCI_OK)
        rc = blob_put_finish(*out_w, sha, size);
    if (rc) {
        blob_put_abort(*out_w);
        *out_w = NULL;
    }
    return rc;
}

struct requeue_tx {
    const char *user_id;
    const char *id;
};

/* The same bytes, not done last time: run it again. */
static int tx_requeue(struct db_conn *c, void *arg)
{
    struct requeue_tx *t = arg;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE documents SET status = 'queued', job_id = NULL, progress = 0, "
                        "error_code = NULL, error = NULL, updated_at = ? WHERE id = ? AND "
                        "user_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, clock_now_ms());
    db_bind_text(st, 2, t->id, (size_t)-1);
    db_bind_text(st, 3, t->user_id, (size_t)-1);
    return db_run_one(st);
}

static int doc_status(struct db *db, const char *user_id, const char *id, char status[16],
                      char root[UUID_STR_LEN], char **title)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "SELECT status, COALESCE(root_node_id, ''), COALESCE(title, '') FROM "
                    "documents WHERE id = ? AND user_id = ?",
                    &st);
    if (rc == LOCI_OK) {
        db_bind_text(st, 1, id, (size_t)-1);
        db_bind_text(st, 2, user_id, (size_t)-1);
        rc = db_step(st);
        if (rc == LOCI_ROW) {
            snprintf(status, 16, "%s", db_col_text(st, 0, NULL));
            snprintf(root, UUID_STR_LEN, "%s", db_col_text(st, 1, NULL));
            xfree(*title);
            *title = xstrdup(db_col_text(st, 2, NULL));
            rc = LOCI_OK;
        } else if (rc == LOCI_OK) {
            rc = LOCI_ENOTFOUND;
        }
        db_stmt_done(st);
    }
    db_release(c);
    return rc;
}

/* Import one note: "imported", "unchanged" or "failed". */
static const char *import_note(struct docs *d, const char *user_id, const char *dir,
                               struct note *nt)
{
    char path[PATH_BYTES];
    int k = snprintf(path, sizeof(path), "%s/%s", dir, nt->rel);
    if (k < 0 || (size_t)k >= sizeof(path))
        return "failed";
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return "failed";
    struct blob_writer *w = NULL;
    char sha[BLOB_KEY_LEN], head[PARSE_HEAD_BYTES];
    size_t head_n = 0;
    uint64_t size = 0;
    int rc = hash_file(d, fd, &w, sha, &size, head, &head_n);
    close(fd);
    if (rc)
        return "failed";
    struct earlier e;
    if (find_earlier(d->o.db, user_id, nt->rel, &e) != LOCI_OK) {
        blob_put_abort(w);
        return "failed";
    }
    if (e.id[0] && strcmp(e.sha256, sha) == 0) {
        blob_put_abort(w);
        memcpy(nt->id, e.id, UUID_STR_LEN);
        if (strcmp(e.status, "done") == 0)
            return "unchanged";
        struct requeue_tx t = {user_id, e.id};
        if (db_tx(d->o.db, tx_requeue, &t) != LOCI_OK)
            return "failed";
    } else {
        if (size == 0) {
            blob_put_abort(w);
            return "failed";
        }
        struct parse_type type;
        const char *code = NULL;
        char why[200];
        if (parse_detect(head, head_n, "text/markdown", nt->rel, &type, &code, why, sizeof(why)) !=
            LOCI_OK) {
            blob_put_abort(w);
            return "failed";
        }
        char filename[DOCS_FILENAME_MAX + 1];
        docs_sanitize_filename(nt->rel, filename);
        struct docs__new_doc nd = {
            .user_id = user_id,
            .filename = filename,
            .media_type = type.media_type,
            .sha256 = sha,
            .size = size,
            .source = "import",
            .source_path = nt->rel,
            .replace_id = e.id[0] ? e.id : NULL,
        };
        struct docs_error err;
        memset(&err, 0, sizeof(err));
        rc = docs__publish(d, w, &nd, &err);
        if (rc == LOCI_ECONFLICT && err.code && strcmp(err.code, "duplicate") == 0)
            return "unchanged"; /* the same bytes are in already (another path, an upload) */
        if (rc)
            return "failed";
        if (e.id[0])
            docs__blob_gc(d, e.sha256); /* the replaced version's bytes */
        memcpy(nt->id, nd.id, UUID_STR_LEN);
    }
    rc = docs_process_now(d, user_id, nt->id, NULL, NULL);
    char status[16] = "";
    if (rc || doc_status(d->o.db, user_id, nt->id, status, nt->root, &nt->title) != LOCI_OK ||
        strcmp(status, "done") != 0)
        return "failed";
    nt->is_processed = true;
    return "imported";
}

/* ---- links ---- */

/* The note a link names: by file name, case-insensitively; a path in the
 * link ("folder/Note") is matched by its last part. */
static const struct note *resolve(const struct walk *w, const char *p, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        if (p[i - 1] == '/') {
            p += i;
            n -= i;
            break;
        }
    }
    if (n > 3 && strncasecmp(p + n - 3, ".md", 3) == 0)
        n -= 3;
    for (size_t i = 0; i < w->n; i++)
        if (strlen(w->notes[i].name) == n && strncasecmp(w->notes[i].name, p, n) == 0)
            return &w->notes[i];
    return NULL;
}

struct links_tx {
    const char *user_id;
    const struct note *from;
    char **targets; /* the terms to link to */
    size_t n;
    int linked; /* out */
};

static int tx_links(struct db_conn *c, void *arg)
{
    struct links_tx *t = arg;
    t->linked = 0;
    struct graph_delta delta;
    graph_delta_init(&delta);
    int64_t now = clock_now_ms();
    int rc = LOCI_OK;
    for (size_t i = 0; i < t->n && rc == LOCI_OK; i++) {
        struct graph_term term = {t->targets[i], NULL};
        struct graph_merged m;
        rc = graph_merge_terms(c, t->user_id, &term, 1, NULL, 0, t->from->root, NULL, false, now,
                               &delta, &m);
        if (rc == LOCI_OK && !m.is_skipped)
            t->linked++;
    }
    if (rc == LOCI_OK)
        rc = graph_emit(c, t->user_id, &delta, "import.links");
    graph_delta_release(&delta);
    return rc;
}

static char *read_small(const char *path, size_t *out_n)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct buf b;
    buf_init(&b, LINK_READ_MAX);
    char chunk[65536];
    ssize_t k;
    while ((k = read(fd, chunk, sizeof(chunk))) > 0)
        if (buf_append(&b, chunk, (size_t)k))
            break;
    close(fd);
    return buf_detach(&b, out_n);
}

static int link_note(struct docs *d, const char *user_id, const char *dir, const struct walk *w,
                     const struct note *nt, int *out_linked)
{
    char path[PATH_BYTES];
    int k = snprintf(path, sizeof(path), "%s/%s", dir, nt->rel);
    if (k < 0 || (size_t)k >= sizeof(path) || !nt->root[0])
        return LOCI_OK;
    size_t n = 0;
    char *text = read_small(path, &n);
    if (!text)
        return LOCI_OK;
    struct str links[MAX_LINKS];
    size_t nl = parse_wikilinks(text, n, links, MAX_LINKS);
    char **targets = xcalloc(nl + 1, sizeof(char *));
    size_t nt_ = 0;
    for (size_t i = 0; i < nl; i++) {
        const struct note *to = resolve(w, links[i].p, links[i].n);
        if (to == nt)
            continue; /* a note linking to itself */
        char *term =
            to && to->title && to->title[0] ? xstrdup(to->title) : xstrndup(links[i].p, links[i].n);
        bool is_dup = false;
        for (size_t j = 0; j < nt_ && !is_dup; j++)
            is_dup = strcasecmp(targets[j], term) == 0;
        if (is_dup)
            xfree(term);
        else
            targets[nt_++] = term;
    }
    int rc = LOCI_OK;
    if (nt_ > 0) {
        struct links_tx t = {user_id, nt, targets, nt_, 0};
        rc = db_tx(d->o.db, tx_links, &t);
        if (rc == LOCI_OK)
            *out_linked += t.linked;
    }
    for (size_t i = 0; i < nt_; i++)
        xfree(targets[i]);
    xfree(targets);
    xfree(text);
    return rc;
}

/* Titles and root nodes of the notes left unchanged, so links to them
 * resolve to their nodes. */
static void load_unchanged(struct docs *d, const char *user_id, struct note *nt)
{
    char status[16];
    if (nt->id[0] && !nt->title)
        doc_status(d->o.db, user_id, nt->id, status, nt->root, &nt->title);
}

int docs_import_dir(struct docs *d, const char *user_id, const char *dir, docs_import_fn fn,
                    void *arg, struct docs_import_stats *out)
{
    memset(out, 0, sizeof(*out));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return LOCI_ENOTFOUND;
    struct walk w = {0};
    walk_dir(dir, "", 0, &w);
    if (w.n > 1)
        qsort(w.notes, w.n, sizeof(*w.notes), by_rel);
    for (size_t i = 0; i < w.n; i++) {
        const char *what = import_note(d, user_id, dir, &w.notes[i]);
        if (strcmp(what, "imported") == 0)
            out->imported++;
        else if (strcmp(what, "unchanged") == 0)
            out->unchanged++;
        else
            out->failed++;
        if (fn)
            fn(arg, (int)i + 1, (int)w.n, w.notes[i].rel, what);
    }
    for (size_t i = 0; i < w.n; i++)
        load_unchanged(d, user_id, &w.notes[i]);
    int rc = LOCI_OK;
    for (size_t i = 0; i < w.n && rc == LOCI_OK; i++)
        if (w.notes[i].is_processed)
            rc = link_note(d, user_id, dir, &w, &w.notes[i], &out->links);
    for (size_t i = 0; i < w.n; i++) {
        xfree(w.notes[i].rel);
        xfree(w.notes[i].name);
        xfree(w.notes[i].title);
    }
    xfree(w.notes);
    return rc;
}
