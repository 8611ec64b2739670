/*
 * graph_embed.c - the `graph.embed` job: keeps node_embeddings in step with
 * each node's text ("term: summary") through the AI gateway.
 *
 * graph_emit() enqueues the job with {"node_ids":[...]} for the user whose
 * nodes changed. The job loads those of the user's nodes that still exist,
 * skips the ones whose stored embedding was computed from the same text
 * (content_hash) by the embedder the gateway uses now, embeds the rest
 * outside any transaction (the gateway may block on the network), then
 * stores the vectors as float32 little-endian blobs in one transaction.
 *
 * Not for: searching vectors (search loads them), choosing the embedder
 * (the gateway's chain does).
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "services/ai/ai.h"
#include "services/jobs/jobs.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define EMBED_IDS_MAX 1000 /* node ids one job takes */
#define EMBED_BATCH   64   /* texts per gateway call */
#define HASH_HEX      33   /* 16 bytes of BLAKE2b as hex, NUL */

struct item {
    char id[UUID_STR_LEN];
    char *text; /* "term: summary", or the term alone */
    size_t n;
    char hash[HASH_HEX];
    char old_hash[HASH_HEX]; /* "" when there is no stored embedding */
    char *old_embedder;      /* NULL when there is no stored embedding */
    bool is_wanted;          /* to embed in this run */
    float *vec;              /* the new vector (dims floats), once embedded */
    int dims;
    char embedder[192];
};

struct run {
    const char *user_id;
    struct item *items;
    size_t n;
    struct job *job;
    int64_t stored; /* vectors written */
};

static void run_release(struct run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        xfree(r->items[i].text);
        xfree(r->items[i].old_embedder);
        xfree(r->items[i].vec);
    }
    xfree(r->items);
    r->items = NULL;
    r->n = 0;
}

static void text_hash(const char *text, size_t n, char out[HASH_HEX])
{
    unsigned char h[16];
    crypto_generichash(h, sizeof(h), (const unsigned char *)text, n, NULL, 0);
    sodium_bin2hex(out, HASH_HEX, h, sizeof(h));
}

/* The text a node is embedded from, and its hash. */
static void node_text(const char *term, const char *summary, struct item *it)
{
    struct buf b;
    buf_init(&b, GRAPH_TERM_MAX * 8 + GRAPH_SUMMARY_MAX + 8);
    int rc = buf_append_str(&b, term);
    if (rc == LOCI_OK && summary[0])
        rc = buf_printf(&b, ": %s", summary);
    (void)rc; /* bounded by the limits on terms and summaries */
    it->text = buf_detach(&b, &it->n);
    text_hash(it->text, it->n, it->hash);
}

static bool seen(const struct run *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->items[i].id, id) == 0)
            return true;
    return false;
}

/* The user's nodes among ids, with their stored embedding's hash and
 * embedder. Ids that are not the user's nodes (deleted since, or never
 * theirs) are left out. */
static int load(struct db *db, const json_t *ids, struct run *r)
{
    struct db_conn *c = NULL;
    int rc = db_acquire(db, &c);
    if (rc)
        return rc;
    r->items = xcalloc(json_array_size(ids) + 1, sizeof(*r->items));
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        if (!id || !ids_is_uuid(id, strlen(id)) || seen(r, id))
            continue;
        struct db_stmt *st = NULL;
        rc = db_prepare(c,
                        "SELECT n.term, n.summary, e.content_hash, e.embedder FROM nodes n "
                        "LEFT JOIN node_embeddings e ON e.node_id = n.id AND e.user_id = n.user_id "
                        "WHERE n.id = ? AND n.user_id = ?",
                        &st);
        if (rc)
            break;
        db_bind_text(st, 1, id, (size_t)-1);
        db_bind_text(st, 2, r->user_id, (size_t)-1);
        rc = db_step(st);
        if (rc == LOCI_ROW) {
            struct item *it = &r->items[r->n++];
            snprintf(it->id, sizeof(it->id), "%s", id);
            node_text(db_col_text(st, 0, NULL), db_col_text(st, 1, NULL), it);
            if (!db_col_is_null(st, 2)) {
                snprintf(it->old_hash, sizeof(it->old_hash), "%s", db_col_text(st, 2, NULL));
                it->old_embedder = xstrdup(db_col_text(st, 3, NULL));
            }
            rc = LOCI_OK;
        }
        db_stmt_done(st);
        if (rc)
            break;
    }
    db_release(c);
    return rc;
}

/* Embed the wanted items that have no vector yet, EMBED_BATCH at a time. */
static int embed_wanted(struct ai *ai, struct run *r, const struct log_ctx *log)
{
    const char *texts[EMBED_BATCH];
    size_t lens[EMBED_BATCH];
    struct item *batch[EMBED_BATCH];
    size_t i = 0;
    while (i < r->n) {
        size_t k = 0;
        for (; i < r->n && k < EMBED_BATCH; i++) {
            struct item *it = &r->items[i];
            if (!it->is_wanted || it->vec)
                continue;
            texts[k] = it->text;
            lens[k] = it->n;
            batch[k++] = it;
        }
        if (k == 0)
            break;
        if (r->job && job_cancel_requested(r->job))
            return LOCI_EAGAIN;
        struct ai_vectors vs;
        memset(&vs, 0, sizeof(vs));
        struct ai_failure why;
        memset(&why, 0, sizeof(why));
        int rc = ai_embed(ai, texts, lens, k, log, &vs, &why);
        if (rc) {
            if (r->job)
                job_set_error(r->job, "embedding failed: %s %s", why.provider, why.reason);
            return rc;
        }
        if (vs.n != k || vs.dims <= 0) {
            ai_vectors_release(&vs);
            return LOCI_EIO;
        }
        for (size_t m = 0; m < k; m++) {
            struct item *it = batch[m];
            it->dims = vs.dims;
            it->vec = xmalloc((size_t)vs.dims * sizeof(float));
            memcpy(it->vec, vs.v + m * (size_t)vs.dims, (size_t)vs.dims * sizeof(float));
            snprintf(it->embedder, sizeof(it->embedder), "%s", vs.embedder);
        }
        ai_vectors_release(&vs);
    }
    return LOCI_OK;
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

/* Is the node's text still what was embedded? (It may have changed or gone
 * while the gateway worked; a change brings its own job.) */
static int still_current(struct db_conn *c, const char *user_id, const struct item *it, bool *out)
{
    *out = false;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT term, summary FROM nodes WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, it->id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        struct item now;
        memset(&now, 0, sizeof(now));
        node_text(db_col_text(st, 0, NULL), db_col_text(st, 1, NULL), &now);
        *out = strcmp(now.hash, it->hash) == 0;
        xfree(now.text);
        rc = LOCI_OK;
    }
    db_stmt_done(st);
    return rc;
}

static int tx_store(struct db_conn *c, void *arg)
{
    struct run *r = arg;
    r->stored = 0;
    int rc = LOCI_OK;
    unsigned char *blob = NULL;
    for (size_t i = 0; rc == LOCI_OK && i < r->n; i++) {
        struct item *it = &r->items[i];
        if (!it->vec)
            continue;
        bool is_current = false;
        rc = still_current(c, r->user_id, it, &is_current);
        if (rc || !is_current)
            continue;
        blob = xrealloc(blob, (size_t)it->dims * 4);
        vec_le(it->vec, it->dims, blob);
        struct db_stmt *st = NULL;
        rc = db_prepare(c,
                        "INSERT INTO node_embeddings (node_id, user_id, embedder, dims, vec, "
                        "content_hash, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (node_id) DO UPDATE SET embedder = excluded.embedder, "
                        "dims = excluded.dims, vec = excluded.vec, "
                        "content_hash = excluded.content_hash, updated_at = excluded.updated_at",
                        &st);
        if (rc)
            break;
        db_bind_text(st, 1, it->id, (size_t)-1);
        db_bind_text(st, 2, r->user_id, (size_t)-1);
        db_bind_text(st, 3, it->embedder, (size_t)-1);
        db_bind_int64(st, 4, it->dims);
        db_bind_blob(st, 5, blob, (size_t)it->dims * 4);
        db_bind_text(st, 6, it->hash, (size_t)-1);
        db_bind_int64(st, 7, clock_now_ms());
        rc = db_run(st, NULL);
        /* A node deleted under us (foreign key): the next try skips it. */
        if (rc == LOCI_ECONFLICT)
            rc = LOCI_EAGAIN;
        if (rc == LOCI_OK)
            r->stored++;
    }
    xfree(blob);
    if (rc == LOCI_OK && r->job) {
        json_t *res = json_pack("{s:I}", "embedded", (json_int_t)r->stored);
        rc = job_complete_in_tx(c, r->job, res);
        json_decref(res);
    }
    return rc;
}

static int handle_embed(struct job *j, void *arg)
{
    struct ai *ai = arg;
    struct run r = {.user_id = job_user_id(j), .job = j};
    const json_t *ids = json_object_get(job_payload(j), "node_ids");
    if (!r.user_id || !json_is_array(ids) || json_array_size(ids) > EMBED_IDS_MAX) {
        job_set_error(j, "graph.embed wants a user and {\"node_ids\": [...]} (at most %d)",
                      EMBED_IDS_MAX);
        return LOCI_EINVAL;
    }
    int rc = load(job_db(j), ids, &r);
    if (rc)
        goto out;
    /* First the nodes whose text has no embedding yet... */
    size_t n_wanted = 0;
    for (size_t i = 0; i < r.n; i++) {
        struct item *it = &r.items[i];
        it->is_wanted = !it->old_embedder || strcmp(it->old_hash, it->hash) != 0;
        n_wanted += it->is_wanted;
    }
    if (n_wanted == 0)
        goto out; /* nothing changed since the last run (a retry, a repeat) */
    rc = embed_wanted(ai, &r, job_log(j));
    if (rc)
        goto out;
    /* ...then, now that we know the embedder, those embedded by another. */
    const char *embedder = NULL;
    for (size_t i = 0; i < r.n && !embedder; i++)
        if (r.items[i].vec)
            embedder = r.items[i].embedder;
    bool has_stale = false;
    for (size_t i = 0; embedder && i < r.n; i++) {
        struct item *it = &r.items[i];
        if (!it->is_wanted && strcmp(it->old_embedder, embedder) != 0) {
            it->is_wanted = true;
            has_stale = true;
        }
    }
    if (has_stale)
        rc = embed_wanted(ai, &r, job_log(j));
    if (rc == LOCI_OK)
        rc = db_tx(job_db(j), tx_store, &r);
out:
    run_release(&r);
    return rc;
}

int graph_register_jobs(struct jobs *js, struct ai *ai)
{
    if (!js || !ai)
        return LOCI_EINVAL;
    jobs_register(js, "graph.embed", handle_embed, ai);
    return LOCI_OK;
}
