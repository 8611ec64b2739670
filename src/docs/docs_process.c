/*
 * docs_process.c - the `docs.process` job: one document from its stored
 * file to a searchable, summarised part of the learner's graph.
 *
 *   parsing   the file in the sandboxed child (services/parse)
 *   indexing  chunks + full-text rows in one transaction while a second
 *             thread embeds the chunks through the AI gateway (the
 *             database's full-text work and our embedding overlap), then
 *             the vectors in one transaction; a summary and key terms from
 *             the first ~20 KB of text
 *   done      the graph (the document's root node, its key terms linked
 *             to it), the ledger and `document.indexed` in one transaction
 *             with the job's completion
 *
 * Every write is guarded by the document still being active and still
 * belonging to this run (its job_id): a cancel, a delete or a reprocess
 * meanwhile makes the run stop quietly. A parse that fails on the file
 * (timeout, encrypted, too many pages...) is a final `failed` status, not
 * a retry.
 */
#include "docs/docs_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "events/events.h"
#include "graph/graph.h"
#include "search/search.h"
#include "services/ai/ai.h"
#include "services/jobs/jobs.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define EMBED_BATCH   64
#define AI_TEXT_BYTES (20 * 1024) /* what the summary and key terms read */
#define SUMMARY_MAX   4000
#define MAX_TERMS     12

struct run {
    struct docs *d;
    const char *user_id;
    const char *id;
    struct job *job;           /* NULL when processing inline (import) */
    char run_id[UUID_STR_LEN]; /* the document's job_id; "" inline */
    docs_progress_fn fn;
    void *fn_arg;
    const struct log_ctx *log;
    char filename[DOCS_FILENAME_MAX + 1];
    char media_type[64];
    char sha256[BLOB_KEY_LEN];
    struct parse_result pr;
    struct docs_chunks chunks;
    char (*chunk_ids)[UUID_STR_LEN];
    char *title;
    int64_t t_index; /* mono ns when indexing began */
    /* done */
    char *summary;
    struct ai_result terms;
    bool has_terms;
};

static void run_release(struct run *r)
{
    parse_result_release(&r->pr);
    docs_chunks_release(&r->chunks);
    xfree(r->chunk_ids);
    xfree(r->title);
    xfree(r->summary);
    if (r->has_terms)
        ai_result_release(&r->terms);
}

static void progress(struct run *r, double f, const char *msg)
{
    if (r->job)
        job_progress(r->job, f, msg); /* a refusal shows as job_cancel_requested */
    if (r->fn)
        r->fn(r->fn_arg, f, msg);
}

static bool is_cancelled(void *arg)
{
    struct run *r = arg;
    return r->job && job_cancel_requested(r->job);
}

/* ---- guarded writes ---- */

/* Move the document on, if it is still this run's and active.
 * LOCI_ENOTFOUND when it is not (cancelled, deleted, superseded). */
static int stage(struct db_conn *c, struct run *r, const char *status, double progress_value)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE documents SET status = ?, progress = ?, updated_at = ? "
                        "WHERE id = ? AND user_id = ? AND status IN ('queued', 'parsing', "
                        "'indexing') AND COALESCE(job_id, '') = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, status, (size_t)-1);
    db_bind_double(st, 2, progress_value);
    db_bind_int64(st, 3, clock_now_ms());
    db_bind_text(st, 4, r->id, (size_t)-1);
    db_bind_text(st, 5, r->user_id, (size_t)-1);
    db_bind_text(st, 6, r->run_id, (size_t)-1);
    return db_run_one(st);
}

struct stage_tx {
    struct run *r;
    const char *status;
    double progress;
};

static int tx_stage(struct db_conn *c, void *arg)
{
    struct stage_tx *t = arg;
    return stage(c, t->r, t->status, t->progress);
}

static int complete_job(struct db_conn *c, struct run *r, const char *outcome)
{
    if (!r->job)
        return LOCI_OK;
    json_t *res = json_pack("{s:s, s:s}", "document_id", r->id, "outcome", outcome);
    int rc = job_complete_in_tx(c, r->job, res);
    json_decref(res);
    return rc;
}

struct fail_tx {
    struct run *r;
    const char *code;
    const char *message;
};

static int tx_fail(struct db_conn *c, void *arg)
{
    struct fail_tx *t = arg;
    struct run *r = t->r;
    int rc = stage(c, r, "failed", 1);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "UPDATE documents SET error_code = ?, error = ?, parse_ms = ?, chunk_count = 0 "
                    "WHERE id = ? AND user_id = ?",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, t->code, (size_t)-1);
    db_bind_text(st, 2, t->message, (size_t)-1);
    db_bind_int64(st, 3, (int64_t)r->pr.ms);
    db_bind_text(st, 4, r->id, (size_t)-1);
    db_bind_text(st, 5, r->user_id, (size_t)-1);
    rc = db_run(st, NULL);
    if (rc == LOCI_OK)
        rc = docs__remove_index(c, r->user_id, r->id);
    if (rc == LOCI_OK) {
        json_t *ev =
            json_pack("{s:s, s:s, s:s}", "id", r->id, "error_code", t->code, "error", t->message);
        rc = events_append(c, r->user_id, "document.failed", ev, NULL);
        json_decref(ev);
    }
    if (rc == LOCI_OK)
        rc = complete_job(c, r, "failed");
    return rc;
}

/* End the run with status failed. A run that lost its document ends
 * quietly. */
static int fail_doc(struct run *r, const char *code, const char *message)
{
    log_info(r->log, "document '%s' failed: %s (%s)", r->id, code, message);
    struct fail_tx t = {r, code, message};
    int rc = db_tx(r->d->o.db, tx_fail, &t);
    if (rc == LOCI_ENOTFOUND || rc == LOCI_ECONFLICT)
        return LOCI_OK;
    if (rc == LOCI_OK) {
        progress(r, 1, code);
        docs__wake(r->d);
    }
    return rc;
}

/* ---- loading and parsing ---- */

static int load(struct run *r, bool *out_is_mine)
{
    *out_is_mine = false;
    struct db_conn *c = NULL;
    int rc = db_acquire(r->d->o.db, &c);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "SELECT filename, media_type, sha256, status, COALESCE(job_id, '') "
                    "FROM documents WHERE id = ? AND user_id = ?",
                    &st);
    if (rc == LOCI_OK) {
        db_bind_text(st, 1, r->id, (size_t)-1);
        db_bind_text(st, 2, r->user_id, (size_t)-1);
        rc = db_step(st);
        if (rc == LOCI_ROW) {
            snprintf(r->filename, sizeof(r->filename), "%s", db_col_text(st, 0, NULL));
            snprintf(r->media_type, sizeof(r->media_type), "%s", db_col_text(st, 1, NULL));
            snprintf(r->sha256, sizeof(r->sha256), "%s", db_col_text(st, 2, NULL));
            const char *status = db_col_text(st, 3, NULL);
            const char *job_id = db_col_text(st, 4, NULL);
            bool is_active = strcmp(status, "queued") == 0 || strcmp(status, "parsing") == 0 ||
                             strcmp(status, "indexing") == 0;
            if (!r->job)
                snprintf(r->run_id, sizeof(r->run_id), "%s", job_id);
            *out_is_mine = is_active && strcmp(job_id, r->run_id) == 0;
            rc = LOCI_OK;
        } else if (rc == LOCI_OK) {
            rc = LOCI_ENOTFOUND;
        }
        db_stmt_done(st);
    }
    db_release(c);
    return rc;
}

/* Parse the stored file. LOCI_OK with r->pr filled (maybe with an
 * error_code), or an error when the file cannot even be read. */
static int parse_file(struct run *r, void (*page_fn)(void *, int, const char *, size_t),
                      void *page_arg)
{
    int fd = -1;
    uint64_t size = 0;
    int rc = blob_open(r->d->o.blobs, r->sha256, &fd, &size);
    if (rc)
        return rc;
    char head[PARSE_HEAD_BYTES];
    ssize_t n = pread(fd, head, sizeof(head), 0);
    struct parse_type t;
    const char *code = NULL;
    char why[200];
    if (n <= 0) {
        close(fd);
        return LOCI_EIO;
    }
    rc = parse_detect(head, (size_t)n, r->media_type, r->filename, &t, &code, why, sizeof(why));
    if (rc) {
        r->pr.error_code = code;
        snprintf(r->pr.error, sizeof(r->pr.error), "%s", why);
        close(fd);
        return LOCI_OK;
    }
    struct parse_opts o = {
        .timeout_ms = r->d->o.parse_timeout_ms,
        .memory_mb = r->d->o.parse_memory_mb,
        .max_pages = r->d->o.max_pages,
        .is_cancelled = is_cancelled,
        .cancel_arg = r,
        .on_page = t.kind == PARSE_PDF ? page_fn : NULL,
        .page_arg = page_arg,
    };
    rc = parse_run(fd, &t, &o, &r->pr);
    close(fd);
    return rc;
}

/* The title: the file's own, else the file name without its extension. */
static void choose_title(struct run *r)
{
    if (r->pr.title && r->pr.title[0]) {
        r->title = xstrdup(r->pr.title);
        return;
    }
    const char *dot = strrchr(r->filename, '.');
    size_t n = dot && dot != r->filename ? (size_t)(dot - r->filename) : strlen(r->filename);
    r->title = xstrndup(r->filename, n);
}

/* ---- indexing ---- */

/* Rows per multi-row INSERT: fewer round trips to PostgreSQL (8 rows of 8
 * parameters: the store takes at most 64 per statement). */
#define CHUNK_ROW   "(?, ?, ?, ?, ?, ?, ?, ?)"
#define CHUNK_ROWS4 CHUNK_ROW ", " CHUNK_ROW ", " CHUNK_ROW ", " CHUNK_ROW
#define CHUNK_ROWS8 CHUNK_ROWS4 ", " CHUNK_ROWS4
#define VEC_ROW     "(?, ?, ?, ?, ?, ?)"
#define VEC_ROWS4   VEC_ROW ", " VEC_ROW ", " VEC_ROW ", " VEC_ROW
#define VEC_ROWS8   VEC_ROWS4 ", " VEC_ROWS4
#define ROWS        8

static void bind_chunk(struct db_stmt *st, int base, struct run *r, size_t i, int64_t now)
{
    const struct docs_chunk *ch = &r->chunks.items[i];
    db_bind_text(st, base + 1, r->chunk_ids[i], (size_t)-1);
    db_bind_text(st, base + 2, r->user_id, (size_t)-1);
    db_bind_text(st, base + 3, r->id, (size_t)-1);
    db_bind_int64(st, base + 4, (int64_t)i);
    db_bind_text(st, base + 5, ch->text, (size_t)-1);
    if (ch->page > 0)
        db_bind_int64(st, base + 6, ch->page);
    else
        db_bind_null(st, base + 6);
    db_bind_text(st, base + 7, ch->heading, (size_t)-1);
    db_bind_int64(st, base + 8, now);
}

static int insert_chunks(struct db_conn *c, struct run *r)
{
    int64_t now = clock_now_ms();
    size_t i = 0;
    int rc = LOCI_OK;
    while (rc == LOCI_OK && i < r->chunks.n) {
        bool is_batch = r->chunks.n - i >= ROWS;
        struct db_stmt *st = NULL;
        rc = db_prepare(c,
                        is_batch ? "INSERT INTO chunks (id, user_id, document_id, ord, text, page, "
                                   "heading, created_at) VALUES " CHUNK_ROWS8
                                 : "INSERT INTO chunks (id, user_id, document_id, ord, text, page, "
                                   "heading, created_at) VALUES " CHUNK_ROW,
                        &st);
        if (rc)
            break;
        size_t k = is_batch ? ROWS : 1;
        for (size_t j = 0; j < k; j++)
            bind_chunk(st, (int)(8 * j), r, i + j, now);
        rc = db_run(st, NULL);
        i += k;
    }
    return rc;
}

static int tx_index(struct db_conn *c, void *arg)
{
    struct run *r = arg;
    int rc = stage(c, r, "indexing", 0.3);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "UPDATE documents SET title = ?, pages = ?, parse_ms = ?, chunk_count = ?, "
                    "error_code = NULL, error = NULL WHERE id = ? AND user_id = ?",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, r->title, (size_t)-1);
    if (r->pr.pages > 0)
        db_bind_int64(st, 2, r->pr.pages);
    else
        db_bind_null(st, 2);
    db_bind_int64(st, 3, (int64_t)r->pr.ms);
    db_bind_int64(st, 4, (int64_t)r->chunks.n);
    db_bind_text(st, 5, r->id, (size_t)-1);
    db_bind_text(st, 6, r->user_id, (size_t)-1);
    rc = db_run(st, NULL);
    if (rc == LOCI_OK)
        rc = docs__remove_index(c, r->user_id, r->id); /* a reprocess replaces the old one */
    if (rc == LOCI_OK)
        rc = insert_chunks(c, r);
    if (rc == LOCI_OK)
        rc = search_chunks_added(c, r->user_id, r->id);
    return rc;
}

/* Write a vector as float32 little-endian, whatever this machine is. */
static void vec_le(const float *v, int dims, unsigned char *out)
{
    for (int i = 0; i < dims; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof(u));
        out[4 * i] = (unsigned char)(u & 0xff);
        out[4 * i + 1] = (unsigned char)((u >> 8) & 0xff);
        out[4 * i + 2] = (unsigned char)((u >> 16) & 0xff);
        out[4 * i + 3] = (unsigned char)(u >> 24);
    }
}

/* Vectors of chunks [first, first + n), each with its embedder. */
struct vecs {
    size_t first, n;
    int dims;
    float *v;              /* n * dims */
    char (*embedder)[192]; /* per chunk */
};

static void vecs_release(struct vecs *vs)
{
    xfree(vs->v);
    xfree(vs->embedder);
    memset(vs, 0, sizeof(*vs));
}

/* Append the vectors of the next k chunks (those after vs's) to vs. */
static int embed_more(struct run *r, struct vecs *vs, size_t k, struct ai_failure *why)
{
    if (is_cancelled(r))
        return LOCI_ENOTFOUND;
    size_t first = vs->first + vs->n;
    const char *texts[EMBED_BATCH];
    size_t lens[EMBED_BATCH];
    for (size_t i = 0; i < k; i++) {
        texts[i] = r->chunks.items[first + i].text;
        lens[i] = strlen(texts[i]);
    }
    struct ai_vectors av;
    memset(&av, 0, sizeof(av));
    int rc = ai_embed(r->d->o.ai, texts, lens, k, r->log, &av, why);
    if (rc == LOCI_OK && (av.n != k || av.dims <= 0 || (vs->dims && av.dims != vs->dims)))
        rc = LOCI_EIO;
    if (rc == LOCI_OK) {
        vs->dims = av.dims;
        vs->v = xrealloc(vs->v, (vs->n + k) * (size_t)vs->dims * sizeof(float));
        vs->embedder = xrealloc(vs->embedder, (vs->n + k) * sizeof(*vs->embedder));
        memcpy(vs->v + vs->n * (size_t)vs->dims, av.v, k * (size_t)vs->dims * sizeof(float));
        for (size_t i = 0; i < k; i++)
            snprintf(vs->embedder[vs->n + i], sizeof(vs->embedder[0]), "%s", av.embedder);
        vs->n += k;
    }
    ai_vectors_release(&av);
    return rc;
}

/* Embed chunks [first, first + n) into vs, EMBED_BATCH at a time. */
static int embed_range(struct run *r, size_t first, size_t n, struct vecs *vs,
                       struct ai_failure *why)
{
    memset(vs, 0, sizeof(*vs));
    vs->first = first;
    int rc = LOCI_OK;
    while (rc == LOCI_OK && vs->n < n)
        rc = embed_more(r, vs, n - vs->n < EMBED_BATCH ? n - vs->n : EMBED_BATCH, why);
    return rc;
}

struct vec_tx {
    struct run *r;
    const struct vecs *vs;
    double progress;
};

static int tx_vectors(struct db_conn *c, void *arg)
{
    struct vec_tx *t = arg;
    struct run *r = t->r;
    const struct vecs *vs = t->vs;
    int rc = stage(c, r, "indexing", t->progress);
    if (rc)
        return rc;
    size_t bytes = (size_t)vs->dims * 4;
    unsigned char *blob = xmalloc(bytes * ROWS);
    size_t i = 0;
    while (rc == LOCI_OK && i < vs->n) {
        bool is_batch = vs->n - i >= ROWS;
        struct db_stmt *st = NULL;
        rc = db_prepare(c,
                        is_batch ? "INSERT INTO chunk_vectors (chunk_id, user_id, document_id, "
                                   "embedder, dims, vec) VALUES " VEC_ROWS8
                                 : "INSERT INTO chunk_vectors (chunk_id, user_id, document_id, "
                                   "embedder, dims, vec) VALUES " VEC_ROW,
                        &st);
        if (rc)
            break;
        size_t k = is_batch ? ROWS : 1;
        for (size_t j = 0; j < k; j++) {
            int base = (int)(6 * j);
            vec_le(vs->v + (i + j) * (size_t)vs->dims, vs->dims, blob + j * bytes);
            db_bind_text(st, base + 1, r->chunk_ids[vs->first + i + j], (size_t)-1);
            db_bind_text(st, base + 2, r->user_id, (size_t)-1);
            db_bind_text(st, base + 3, r->id, (size_t)-1);
            db_bind_text(st, base + 4, vs->embedder[i + j], (size_t)-1);
            db_bind_int64(st, base + 5, vs->dims);
            db_bind_blob(st, base + 6, blob + j * bytes, bytes);
        }
        rc = db_run(st, NULL);
        i += k;
    }
    xfree(blob);
    return rc;
}

static int store_vectors(struct run *r, const struct vecs *vs)
{
    double f = 0.35 + 0.45 * (double)(vs->first + vs->n) / (double)r->chunks.n;
    struct vec_tx t = {r, vs, f};
    int rc = db_tx(r->d->o.db, tx_vectors, &t);
    if (rc == LOCI_OK)
        progress(r, f, "embedding");
    return rc;
}

/* The first chunks are embedded on a thread of their own while the index
 * transaction runs (the full-text work is the database's, the embedding
 * ours: two cores busy instead of one); at most this many, so the
 * vectors held in memory stay small. */
#define EMBED_AHEAD 8192

struct ahead {
    struct run *r;
    size_t n;
    struct vecs vs;
    struct ai_failure why;
    int rc;
};

static void *embed_ahead(void *arg)
{
    struct ahead *a = arg;
    a->rc = embed_range(a->r, 0, a->n, &a->vs, &a->why);
    return NULL;
}

/* After the index transaction: store the vectors embedded ahead (embed_rc:
 * how that went), then embed and store the chunks after them, a batch at a
 * time. */
static int finish_vectors(struct run *r, struct vecs *ahead, int embed_rc,
                          const struct ai_failure *why)
{
    int rc = embed_rc;
    if (rc && rc != LOCI_ENOTFOUND)
        log_warn(r->log, "document '%s': embedding failed (%s: %s)", r->id, why->reason,
                 why->message);
    if (rc == LOCI_OK && ahead->n > 0)
        rc = store_vectors(r, ahead);
    size_t first = ahead->first + ahead->n;
    for (; rc == LOCI_OK && first < r->chunks.n; first += EMBED_BATCH) {
        size_t k = r->chunks.n - first < EMBED_BATCH ? r->chunks.n - first : EMBED_BATCH;
        struct vecs vs;
        struct ai_failure w;
        memset(&w, 0, sizeof(w));
        rc = embed_range(r, first, k, &vs, &w);
        if (rc == LOCI_OK)
            rc = store_vectors(r, &vs);
        else if (rc != LOCI_ENOTFOUND)
            log_warn(r->log, "document '%s': embedding failed (%s: %s)", r->id, w.reason,
                     w.message);
        vecs_release(&vs);
    }
    if (rc == LOCI_OK)
        search_vectors_changed(r->d->o.search, r->user_id);
    return rc;
}

/* Index the chunks and embed them: LOCI_ENOTFOUND when the document is no
 * longer this run's. */
static int index_and_embed(struct run *r)
{
    struct ahead a = {.r = r, .n = r->chunks.n < EMBED_AHEAD ? r->chunks.n : EMBED_AHEAD};
    pthread_t th;
    bool is_threaded = pthread_create(&th, NULL, embed_ahead, &a) == 0;
    int rc = db_tx(r->d->o.db, tx_index, r);
    if (is_threaded)
        pthread_join(th, NULL);
    else if (rc == LOCI_OK)
        embed_ahead(&a);
    if (rc == LOCI_OK) {
        progress(r, 0.35, "embedding");
        rc = finish_vectors(r, &a.vs, a.rc, &a.why);
    }
    vecs_release(&a.vs);
    return rc;
}

/* ---- PDFs: pages chunked and embedded while the parse still runs ----
 *
 * pdftotext hands over its pages as it extracts them (parse_opts.on_page),
 * and a chunk never spans pages (docs_chunk), so a PDF is chunked page by
 * page and embedded on a worker thread while the parse child works on the
 * later pages: the extraction keeps one core busy, chunking and embedding
 * the other. */

static void summarise(struct run *r);

struct page_item {
    char *text;
    size_t n;
    int page;
};

struct pipeline {
    struct run *r;
    pthread_mutex_t mu; /* guards the queue and the flags */
    pthread_cond_t cv;
    struct page_item *q;
    size_t q_n, q_cap, q_next;
    bool is_closed;     /* the parse ended: no more pages */
    bool is_stopping;   /* give up (the parse failed or was cancelled) */
    bool is_chunked;    /* every page is chunked: r->chunks is final */
    bool is_summarised; /* the worker made the summary and key terms (read after join) */
    /* the worker's, read by the run after join */
    struct vecs vs;
    int rc;
    struct ai_failure why;
    size_t chunk_cap;
};

static void on_page(void *arg, int page, const char *text, size_t n)
{
    struct pipeline *pl = arg;
    pthread_mutex_lock(&pl->mu);
    if (pl->q_n == pl->q_cap) {
        pl->q_cap = pl->q_cap ? pl->q_cap * 2 : 64;
        pl->q = xrealloc(pl->q, pl->q_cap * sizeof(*pl->q));
    }
    pl->q[pl->q_n++] = (struct page_item){xstrndup(text, n), n, page};
    pthread_cond_signal(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
}

/* Chunk one page onto the end of r->chunks (the worker owns r->chunks
 * until is_chunked). */
static void chunk_page(struct pipeline *pl, const struct page_item *it)
{
    struct docs_chunks cs;
    if (docs_chunk(it->text, it->n, NULL, &cs) != LOCI_OK)
        return;
    struct docs_chunks *all = &pl->r->chunks;
    for (size_t i = 0; i < cs.n; i++) {
        if (all->n == pl->chunk_cap) {
            pl->chunk_cap = pl->chunk_cap ? pl->chunk_cap * 2 : 256;
            all->items = xrealloc(all->items, pl->chunk_cap * sizeof(*all->items));
        }
        all->items[all->n] = cs.items[i];
        all->items[all->n].page = it->page;
        all->n++;
    }
    xfree(cs.items); /* the texts moved */
}

static void *pipeline_main(void *arg)
{
    struct pipeline *pl = arg;
    struct run *r = pl->r;
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        while (pl->q_next == pl->q_n && !pl->is_closed && !pl->is_stopping)
            pthread_cond_wait(&pl->cv, &pl->mu);
        if (pl->is_stopping) {
            pthread_mutex_unlock(&pl->mu);
            return NULL;
        }
        if (pl->q_next == pl->q_n) {
            /* closed and drained: the chunks are final */
            pl->is_chunked = true;
            pthread_cond_broadcast(&pl->cv);
            pthread_mutex_unlock(&pl->mu);
            break;
        }
        struct page_item it = pl->q[pl->q_next];
        pl->q[pl->q_next++].text = NULL;
        pthread_mutex_unlock(&pl->mu);
        chunk_page(pl, &it);
        xfree(it.text);
        while (pl->rc == LOCI_OK && r->chunks.n - pl->vs.n >= EMBED_BATCH && pl->vs.n < EMBED_AHEAD)
            pl->rc = embed_more(r, &pl->vs, EMBED_BATCH, &pl->why);
    }
    size_t upto = r->chunks.n < EMBED_AHEAD ? r->chunks.n : EMBED_AHEAD;
    while (pl->rc == LOCI_OK && pl->vs.n < upto)
        pl->rc = embed_more(
            r, &pl->vs, upto - pl->vs.n < EMBED_BATCH ? upto - pl->vs.n : EMBED_BATCH, &pl->why);
    /* the summary and key terms too, while the index transaction runs (the
     * text is final once the parse has ended) */
    pthread_mutex_lock(&pl->mu);
    bool is_stopping = pl->is_stopping;
    pthread_mutex_unlock(&pl->mu);
    if (!is_stopping && pl->rc == LOCI_OK && r->chunks.n > 0) {
        summarise(r);
        pl->is_summarised = true;
    }
    return NULL;
}

/* End the worker: wait for it (stopping it first when is_stop). */
static void pipeline_end(struct pipeline *pl, pthread_t th, bool is_stop)
{
    pthread_mutex_lock(&pl->mu);
    pl->is_closed = true;
    pl->is_stopping = pl->is_stopping || is_stop;
    pthread_cond_broadcast(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
    pthread_join(th, NULL);
    for (size_t i = pl->q_next; i < pl->q_n; i++)
        xfree(pl->q[i].text);
    xfree(pl->q);
    pthread_mutex_destroy(&pl->mu);
    pthread_cond_destroy(&pl->cv);
}

static bool pipeline_start(struct run *r, struct pipeline *pl, pthread_t *th)
{
    memset(pl, 0, sizeof(*pl));
    pl->r = r;
    pthread_mutex_init(&pl->mu, NULL);
    pthread_cond_init(&pl->cv, NULL);
    if (pthread_create(th, NULL, pipeline_main, pl) == 0)
        return true;
    pthread_mutex_destroy(&pl->mu);
    pthread_cond_destroy(&pl->cv);
    return false;
}

/* The parse ended well: wait until every page is chunked (r->chunks is then
 * final; the worker may still be embedding). */
static void pipeline_wait_chunked(struct pipeline *pl)
{
    pthread_mutex_lock(&pl->mu);
    pl->is_closed = true;
    pthread_cond_broadcast(&pl->cv);
    while (!pl->is_chunked)
        pthread_cond_wait(&pl->cv, &pl->mu);
    pthread_mutex_unlock(&pl->mu);
}

/* The start of the text for the model, markers removed, at most
 * AI_TEXT_BYTES, cut at a character boundary. */
static char *ai_text(const struct run *r, size_t *out_n)
{
    struct buf b;
    buf_init(&b, AI_TEXT_BYTES + 8);
    const char *p = r->pr.text;
    for (size_t i = 0; i < r->pr.n && b.len < AI_TEXT_BYTES; i++) {
        char ch = p[i];
        if (ch == PARSE_HEADING && i + 1 < r->pr.n) {
            i++; /* the level */
            continue;
        }
        if (buf_append_char(&b, ch == PARSE_PAGE_BREAK ? '\n' : ch))
            break;
    }
    size_t n = b.len;
    while (n > 0 && ((unsigned char)b.p[n - 1] & 0xC0) == 0x80)
        n--;
    if (n > 0 && ((unsigned char)b.p[n - 1] & 0x80))
        n--; /* a lead byte whose continuation was cut */
    if (b.p)
        b.p[n] = '\0';
    *out_n = n;
    return buf_detach(&b, NULL);
}

static void summarise(struct run *r)
{
    size_t n = 0;
    char *text = ai_text(r, &n);
    if (n == 0) {
        xfree(text);
        return;
    }
    struct ai_request req = {
        .op = AI_OP_SUMMARY, .text = text, .text_n = n, .cache_scope = r->user_id, .log = r->log};
    struct ai_result res;
    struct ai_failure why;
    if (ai_run(r->d->o.ai, &req, &res, &why) == LOCI_OK) {
        if (res.text && res.text[0]) {
            size_t sn = strlen(res.text);
            if (sn > SUMMARY_MAX) {
                sn = SUMMARY_MAX;
                while (sn > 0 && ((unsigned char)res.text[sn] & 0xC0) == 0x80)
                    sn--;
            }
            r->summary = xstrndup(res.text, sn);
        }
        ai_result_release(&res);
    } else {
        log_warn(r->log, "document '%s': no summary (%s: %s)", r->id, why.reason, why.message);
    }
    struct ai_request treq = {.op = AI_OP_TERMS,
                              .text = text,
                              .text_n = n,
                              .max_terms = MAX_TERMS,
                              .cache_scope = r->user_id,
                              .log = r->log};
    if (ai_run(r->d->o.ai, &treq, &r->terms, &why) == LOCI_OK)
        r->has_terms = true;
    else
        log_warn(r->log, "document '%s': no key terms (%s: %s)", r->id, why.reason, why.message);
    xfree(text);
}

/* The document's root node (its title) and its key terms linked to it. */
static int seed_graph(struct db_conn *c, struct run *r, int64_t now, char root[UUID_STR_LEN])
{
    root[0] = '\0';
    struct graph_delta delta;
    graph_delta_init(&delta);
    struct graph_term rt = {r->title, r->summary};
    struct graph_merged m;
    int rc = graph_merge_terms(c, r->user_id, &rt, 1, NULL, 0, NULL, NULL, true, now, &delta, &m);
    if (rc == LOCI_OK && !m.is_skipped)
        memcpy(root, m.node_id, UUID_STR_LEN);
    if (rc == LOCI_OK && r->has_terms && r->terms.n_terms > 0) {
        struct graph_term gt[MAX_TERMS];
        struct graph_relation gr[MAX_TERMS * 2];
        struct graph_merged merged[MAX_TERMS];
        size_t nt = 0, nr = 0;
        for (size_t i = 0; i < r->terms.n_terms && nt < MAX_TERMS; i++)
            gt[nt++] = (struct graph_term){r->terms.terms[i].term, r->terms.terms[i].summary};
        for (size_t i = 0; i < r->terms.n_relations && nr < MAX_TERMS * 2; i++)
            gr[nr++] = (struct graph_relation){r->terms.relations[i].from, r->terms.relations[i].to,
                                               r->terms.relations[i].type};
        rc = graph_merge_terms(c, r->user_id, gt, nt, gr, nr, root[0] ? root : NULL, NULL, false,
                               now, &delta, merged);
    }
    if (rc == LOCI_OK)
        rc = graph_emit(c, r->user_id, &delta, "document.indexed");
    graph_delta_release(&delta);
    return rc;
}

static int tx_done(struct db_conn *c, void *arg)
{
    struct run *r = arg;
    int64_t now = clock_now_ms();
    int rc = stage(c, r, "done", 1);
    if (rc)
        return rc;
    char root[UUID_STR_LEN];
    rc = seed_graph(c, r, now, root);
    if (rc)
        return rc;
    int64_t index_ms = (clock_mono_ns() - r->t_index) / 1000000;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "UPDATE documents SET summary = ?, root_node_id = ?, index_ms = ? "
                    "WHERE id = ? AND user_id = ?",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, r->summary, (size_t)-1);
    db_bind_text(st, 2, root[0] ? root : NULL, (size_t)-1);
    db_bind_int64(st, 3, index_ms);
    db_bind_text(st, 4, r->id, (size_t)-1);
    db_bind_text(st, 5, r->user_id, (size_t)-1);
    rc = db_run(st, NULL);
    if (rc == LOCI_OK) {
        json_t *ev = json_pack("{s:s, s:s, s:I, s:i, s:s?, s:I, s:I}", "id", r->id, "title",
                               r->title, "chunk_count", (json_int_t)r->chunks.n, "pages",
                               r->pr.pages, "root_node_id", root[0] ? root : NULL, "parse_ms",
                               (json_int_t)r->pr.ms, "index_ms", (json_int_t)index_ms);
        rc = events_append(c, r->user_id, "document.indexed", ev, NULL);
        json_decref(ev);
    }
    if (rc == LOCI_OK)
        rc = complete_job(c, r, "done");
    return rc;
}

/* ---- the run ---- */

static int run_doc(struct run *r)
{
    bool is_mine = false;
    int rc = load(r, &is_mine);
    if (rc == LOCI_ENOTFOUND || (rc == LOCI_OK && !is_mine))
        return LOCI_OK; /* deleted, cancelled or superseded: nothing to do */
    if (rc)
        return rc;
    struct stage_tx st = {r, "parsing", 0.05};
    rc = db_tx(r->d->o.db, tx_stage, &st);
    if (rc)
        return rc == LOCI_ENOTFOUND ? LOCI_OK : rc;
    docs__wake(r->d);
    progress(r, 0.05, "parsing");
    struct pipeline pl;
    pthread_t th;
    bool has_pl = strcmp(r->media_type, "application/pdf") == 0 && pipeline_start(r, &pl, &th);
    rc = parse_file(r, has_pl ? on_page : NULL, &pl);
    if (has_pl && (rc || r->pr.error_code)) {
        pipeline_end(&pl, th, true);
        vecs_release(&pl.vs);
        has_pl = false;
    }
    if (rc == LOCI_ENOTFOUND || rc == LOCI_EINVAL)
        return fail_doc(r, "blob_missing", "the stored file is missing");
    if (rc)
        return rc;
    if (r->pr.error_code) {
        if (strcmp(r->pr.error_code, "cancelled") == 0)
            return LOCI_OK;
        return fail_doc(r, r->pr.error_code, r->pr.error);
    }
    if (has_pl)
        pipeline_wait_chunked(&pl);
    else if (docs_chunk(r->pr.text, r->pr.n, NULL, &r->chunks) != LOCI_OK)
        return fail_doc(r, "parse_failed", "the text cannot be split into passages");
    if (r->chunks.n == 0) {
        if (has_pl) {
            pipeline_end(&pl, th, true);
            vecs_release(&pl.vs);
        }
        return fail_doc(r, "empty_document", "the document has no text");
    }
    choose_title(r);
    r->chunk_ids = xcalloc(r->chunks.n, sizeof(*r->chunk_ids));
    for (size_t i = 0; i < r->chunks.n; i++)
        ids_uuid7(r->chunk_ids[i]);
    r->t_index = clock_mono_ns();
    bool is_summarised = false;
    if (has_pl) {
        rc = db_tx(r->d->o.db, tx_index, r);
        pipeline_end(&pl, th, rc != LOCI_OK);
        is_summarised = pl.is_summarised;
        if (rc == LOCI_OK) {
            progress(r, 0.35, "embedding");
            rc = finish_vectors(r, &pl.vs, pl.rc, &pl.why);
        }
        vecs_release(&pl.vs);
    } else {
        rc = index_and_embed(r);
    }
    if (rc)
        return rc == LOCI_ENOTFOUND ? LOCI_OK : rc;
    progress(r, 0.85, "summarising");
    if (!is_summarised)
        summarise(r);
    rc = db_tx(r->d->o.db, tx_done, r);
    if (rc == LOCI_ENOTFOUND)
        return LOCI_OK;
    if (rc)
        return rc;
    search_vectors_changed(r->d->o.search, r->user_id);
    docs__wake(r->d);
    progress(r, 1, "done");
    return LOCI_OK;
}

int docs_process_now(struct docs *d, const char *user_id, const char *id, docs_progress_fn fn,
                     void *arg)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    r.d = d;
    r.user_id = user_id;
    r.id = id;
    r.fn = fn;
    r.fn_arg = arg;
    int rc = run_doc(&r);
    if (rc && rc != LOCI_ECONFLICT)
        rc = fail_doc(&r, "index_failed", loci_err_message(rc)) ? rc : LOCI_OK;
    run_release(&r);
    return rc;
}

static int handle_process(struct job *j, void *arg)
{
    struct docs *d = arg;
    const char *id = json_string_value(json_object_get(job_payload(j), "document_id"));
    if (!job_user_id(j) || !id || !ids_is_uuid(id, strlen(id))) {
        job_set_error(j, "docs.process wants a user and {\"document_id\": \"...\"}");
        return LOCI_EINVAL;
    }
    struct run r;
    memset(&r, 0, sizeof(r));
    r.d = d;
    r.user_id = job_user_id(j);
    r.id = id;
    r.job = j;
    r.log = job_log(j);
    snprintf(r.run_id, sizeof(r.run_id), "%s", job_id(j));
    int rc = run_doc(&r);
    bool is_permanent = rc == LOCI_EINVAL || rc == LOCI_ENOTFOUND || rc == LOCI_EUNPROCESSABLE;
    if (rc && rc != LOCI_ECONFLICT && (is_permanent || job_attempt(j) >= DOCS__MAX_ATTEMPTS)) {
        /* no retry will come: a final status rather than a document stuck in "indexing" */
        job_set_error(j, "%s", loci_err_message(rc));
        if (fail_doc(&r, "index_failed", loci_err_message(rc)) == LOCI_OK)
            rc = LOCI_OK;
    }
    if (rc == LOCI_ECONFLICT)
        rc = LOCI_OK; /* the lease was lost: another worker has it now */
    run_release(&r);
    return rc;
}

void docs_register_jobs(struct docs *d, struct jobs *js)
{
    jobs_register(js, "docs.process", handle_process, d);
}
