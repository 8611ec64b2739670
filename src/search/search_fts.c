/*
 * search_fts.c - full-text search over a user's chunks, per backend:
 * SQLite FTS5 (chunks_fts, bm25, snippet) and PostgreSQL (chunks.tsv with
 * GIN, ts_rank_cd, ts_headline); and the hooks that keep chunks_fts in step
 * with chunks on SQLite.
 *
 * User text never reaches an engine as syntax: the query is cut into its
 * words (letters, digits, marks), each quoted for FTS5 (a word holds no
 * quote) or handed to plainto_tsquery / websearch_to_tsquery, which never
 * fail on their input. All the words must match; when nothing does, any of
 * them may.
 *
 * chunks_fts rows carry the rowid of their chunk, so one document's rows
 * are found without scanning the table (its UNINDEXED columns cannot be
 * searched otherwise); every use also checks chunk_id, so a row whose rowid
 * went astray is never taken for another chunk.
 *
 * Not for: vectors (search_vec.c), fusion (search.c).
 */
#include "search/search_int.h"

#include "core/alloc.h"
#include "core/err.h"
#include "services/text/text.h"

#include <string.h>
#include <utf8proc.h>

#define Q_BUF_MAX 8192 /* an engine query: 500 characters, quoted, with ORs */

/* ---- queries from user text ---- */

bool search__is_word_char(int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
    case UTF8PROC_CATEGORY_CO:
        return true;
    default:
        return false;
    }
}

static void add_term(struct search__ftq *f, const char *p, size_t n, enum db_backend be)
{
    int rc = LOCI_OK;
    if (be == DB_SQLITE) {
        if (f->n_terms) {
            rc |= buf_append_char(&f->all, ' ');
            rc |= buf_append_str(&f->any, " OR ");
        }
        rc |= buf_append_char(&f->all, '"');
        rc |= buf_append(&f->all, p, n);
        rc |= buf_append_char(&f->all, '"');
        rc |= buf_append_char(&f->any, '"');
        rc |= buf_append(&f->any, p, n);
        rc |= buf_append_char(&f->any, '"');
    } else {
        if (f->n_terms) {
            rc |= buf_append_char(&f->all, ' ');
            rc |= buf_append_str(&f->any, " or ");
        }
        rc |= buf_append(&f->all, p, n);
        rc |= buf_append(&f->any, p, n);
    }
    (void)rc; /* bounded: SEARCH_TERMS_MAX words of a query of at most 500 characters */
    f->terms[f->n_terms++] = xstrndup(p, n);
}

/* A stop word ("the", "how", "does")? Stop words are left out of a query
 * that has other words: they match nearly every chunk, so they would only
 * make "all the words" fail and "any word" match everything. */
static bool is_stop(const char *p, size_t n)
{
    char low[32];
    if (n >= sizeof(low))
        return false;
    for (size_t i = 0; i < n; i++)
        low[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (char)(p[i] - 'A' + 'a') : p[i];
    return text_is_stop(low, n);
}

void search__ftq_init(struct search__ftq *f, const char *q, enum db_backend be)
{
    memset(f, 0, sizeof(*f));
    buf_init(&f->all, Q_BUF_MAX);
    buf_init(&f->any, Q_BUF_MAX);
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)q;
    size_t n = strlen(q), i = 0, start = 0, n_words = 0, n_content = 0;
    size_t w_start[SEARCH_TERMS_MAX], w_len[SEARCH_TERMS_MAX];
    bool w_stop[SEARCH_TERMS_MAX];
    bool in_word = false;
    while (i <= n && n_words < SEARCH_TERMS_MAX) {
        utf8proc_int32_t cp = -1;
        utf8proc_ssize_t len = 1;
        if (i < n) {
            len = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
            if (len < 1) { /* not UTF-8: a separator */
                len = 1;
                cp = -1;
            }
        }
        bool is_word = cp >= 0 && search__is_word_char(cp);
        if (is_word && !in_word) {
            start = i;
            in_word = true;
        } else if (!is_word && in_word) {
            w_start[n_words] = start;
            w_len[n_words] = i - start;
            w_stop[n_words] = is_stop(q + start, i - start);
            n_content += !w_stop[n_words];
            n_words++;
            in_word = false;
        }
        i += (size_t)len;
    }
    for (size_t w = 0; w < n_words; w++)
        if (!w_stop[w] || n_content == 0)
            add_term(f, q + w_start[w], w_len[w], be);
    search__ftq_stems(f);
}

void search__ftq_release(struct search__ftq *f)
{
    buf_release(&f->all);
    buf_release(&f->any);
    for (size_t i = 0; i < f->n_terms; i++)
        xfree(f->terms[i]);
    for (size_t i = 0; i < f->n_stems; i++)
        xfree(f->stems[i]);
    f->n_terms = f->n_stems = 0;
}

/* ---- ranking ---- */

static const char *rank_sql(enum db_backend be, bool is_any, bool has_doc)
{
    if (be == DB_SQLITE)
        /* `rank` (bm25) sorted inside FTS5; negative, lower is better. */
        return has_doc ? "SELECT chunk_id, rank FROM chunks_fts WHERE chunks_fts MATCH ? "
                         "AND user_id = ? AND document_id = ? ORDER BY rank LIMIT ?"
                       : "SELECT chunk_id, rank FROM chunks_fts WHERE chunks_fts MATCH ? "
                         "AND user_id = ? ORDER BY rank LIMIT ?";
    if (!is_any)
        return has_doc ? "SELECT c.id, ts_rank_cd(c.tsv, q) AS r "
                         "FROM chunks c, plainto_tsquery('english', ?) q "
                         "WHERE c.tsv @@ q AND c.user_id = ? AND c.document_id = ? "
                         "ORDER BY r DESC, c.id LIMIT ?"
                       : "SELECT c.id, ts_rank_cd(c.tsv, q) AS r "
                         "FROM chunks c, plainto_tsquery('english', ?) q "
                         "WHERE c.tsv @@ q AND c.user_id = ? ORDER BY r DESC, c.id LIMIT ?";
    return has_doc ? "SELECT c.id, ts_rank_cd(c.tsv, q) AS r "
                     "FROM chunks c, websearch_to_tsquery('english', ?) q "
                     "WHERE c.tsv @@ q AND c.user_id = ? AND c.document_id = ? "
                     "ORDER BY r DESC, c.id LIMIT ?"
                   : "SELECT c.id, ts_rank_cd(c.tsv, q) AS r "
                     "FROM chunks c, websearch_to_tsquery('english', ?) q "
                     "WHERE c.tsv @@ q AND c.user_id = ? ORDER BY r DESC, c.id LIMIT ?";
}

static int rank_once(struct db_conn *c, const char *user_id, const struct buf *query, bool is_any,
                     const char *document_id, int limit, struct search__cand *out, size_t *out_n)
{
    enum db_backend be = db_backend(db_conn_db(c));
    struct db_stmt *st = NULL;
    *out_n = 0;
    int rc = db_prepare(c, rank_sql(be, is_any, document_id != NULL), &st);
    if (rc)
        return rc;
    int i = 1;
    db_bind_text(st, i++, query->p, query->len);
    db_bind_text(st, i++, user_id, (size_t)-1);
    if (document_id)
        db_bind_text(st, i++, document_id, (size_t)-1);
    db_bind_int64(st, i, limit);
    size_t n = 0;
    while ((rc = db_step(st)) == LOCI_ROW && n < (size_t)limit) {
        size_t id_n = 0;
        const char *id = db_col_text(st, 0, &id_n);
        if (id_n >= UUID_STR_LEN)
            continue;
        memcpy(out[n].chunk_id, id, id_n + 1);
        double r = db_col_double(st, 1);
        out[n].score = be == DB_SQLITE ? -r : r;
        n++;
    }
    db_stmt_done(st);
    if (rc == LOCI_ROW)
        rc = LOCI_OK;
    *out_n = n;
    return rc;
}

int search__fts_rank(struct db_conn *c, const char *user_id, const struct search__ftq *f,
                     const char *document_id, int limit, bool can_widen, struct search__cand *out,
                     size_t *out_n, bool *out_is_any)
{
    *out_n = 0;
    *out_is_any = false;
    if (f->n_terms == 0)
        return LOCI_OK;
    int rc = rank_once(c, user_id, &f->all, false, document_id, limit, out, out_n);
    if (rc || *out_n > 0 || f->n_terms == 1 || !can_widen)
        return rc;
    *out_is_any = true;
    return rank_once(c, user_id, &f->any, true, document_id, limit, out, out_n);
}

/* ---- hits: metadata and snippets ---- */

static void hit_fill(struct search_hit *h, struct db_stmt *st, int col)
{
    size_t n = 0;
    const char *p = db_col_text(st, col, &n);
    snprintf(h->document_id, sizeof(h->document_id), "%.*s", (int)n, p);
    p = db_col_text(st, col + 1, &n);
    h->filename = xstrndup(p, n);
    p = db_col_text(st, col + 2, &n);
    h->text = xstrndup(p, n);
    if (!db_col_is_null(st, col + 3)) {
        p = db_col_text(st, col + 3, &n);
        h->heading = xstrndup(p, n);
    }
    h->page = db_col_is_null(st, col + 4) ? 0 : (int)db_col_int64(st, col + 4);
    h->ord = (int)db_col_int64(st, col + 5);
}

static void hit_release(struct search_hit *h)
{
    xfree(h->filename);
    xfree(h->text);
    xfree(h->snippet);
    xfree(h->heading);
    memset(h, 0, sizeof(*h));
}

/* Keep the hits that were found (is_found[i]), in order. */
static void compact(struct search_results *r, const bool *is_found)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (!is_found[i]) {
            hit_release(&r->hits[i]);
            continue;
        }
        if (k != i)
            r->hits[k] = r->hits[i];
        k++;
    }
    r->n = k;
}

static int load_sqlite(struct db_conn *c, const char *user_id, const struct search__ftq *f,
                       struct search_results *r, bool *is_found)
{
    int rc = LOCI_OK;
    for (size_t i = 0; i < r->n && !rc; i++) {
        struct search_hit *h = &r->hits[i];
        struct db_stmt *st = NULL;
        rc = db_prepare(c,
                        "SELECT c.document_id, d.filename, c.text, c.heading, c.page, c.ord "
                        "FROM chunks c JOIN documents d ON d.id = c.document_id "
                        "WHERE c.id = ? AND c.user_id = ?",
                        &st);
        if (rc)
            break;
        db_bind_text(st, 1, h->chunk_id, (size_t)-1);
        db_bind_text(st, 2, user_id, (size_t)-1);
        rc = db_step(st);
        if (rc == LOCI_ROW) {
            hit_fill(h, st, 0);
            is_found[i] = true;
            rc = LOCI_OK;
        }
        db_stmt_done(st);
        if (!rc && is_found[i])
            h->snippet = search__snippet_for(h->text, strlen(h->text), f);
    }
    return rc;
}

/* PostgreSQL: every hit in one round trip, matched back by id. */
#define PG_IN_12 "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
#define PG_IN_50 PG_IN_12 ", " PG_IN_12 ", " PG_IN_12 ", " PG_IN_12 ", ?, ?"
_Static_assert(SEARCH_LIMIT_MAX == 50, "PG_IN_50 holds one placeholder per hit");

static int load_pg(struct db_conn *c, const char *user_id, const struct search__ftq *f,
                   struct search_results *r, bool *is_found)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(
        c,
        "SELECT c.id, c.document_id, d.filename, c.text, c.heading, c.page, c.ord, "
        "ts_headline('english', c.text, q, 'StartSel=\"\x01\", StopSel=\"\x02\", MaxWords=35, "
        "MinWords=15, MaxFragments=1, FragmentDelimiter=\" … \"') "
        "FROM chunks c JOIN documents d ON d.id = c.document_id, "
        "websearch_to_tsquery('english', ?) q WHERE c.user_id = ? AND c.id IN (" PG_IN_50 ")",
        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, f->any.len ? f->any.p : "", f->any.len);
    db_bind_text(st, 2, user_id, (size_t)-1);
    for (size_t i = 0; i < SEARCH_LIMIT_MAX; i++) {
        if (i < r->n)
            db_bind_text(st, (int)i + 3, r->hits[i].chunk_id, (size_t)-1);
        else
            db_bind_null(st, (int)i + 3);
    }
    while ((rc = db_step(st)) == LOCI_ROW) {
        size_t n = 0;
        const char *id = db_col_text(st, 0, &n);
        for (size_t i = 0; i < r->n; i++) {
            struct search_hit *h = &r->hits[i];
            if (is_found[i] || strlen(h->chunk_id) != n || memcmp(h->chunk_id, id, n) != 0)
                continue;
            hit_fill(h, st, 1);
            const char *p = db_col_text(st, 7, &n);
            /* No match in this chunk (a vector hit): ts_headline gives its
             * start, without marks, as the excerpt. */
            h->snippet = search__snippet_html(p, n);
            is_found[i] = true;
            break;
        }
    }
    db_stmt_done(st);
    return rc == LOCI_OK || rc == LOCI_ROW ? LOCI_OK : rc;
}

int search__load_hits(struct db_conn *c, const char *user_id, const struct search__ftq *f,
                      struct search_results *r)
{
    if (r->n == 0)
        return LOCI_OK;
    ASSERT(r->n <= SEARCH_LIMIT_MAX);
    bool is_found[SEARCH_LIMIT_MAX] = {0};
    int rc = db_backend(db_conn_db(c)) == DB_SQLITE ? load_sqlite(c, user_id, f, r, is_found)
                                                    : load_pg(c, user_id, f, r, is_found);
    if (rc)
        return rc;
    compact(r, is_found);
    for (size_t i = 0; i < r->n; i++)
        if (!r->hits[i].snippet)
            r->hits[i].snippet = search__excerpt_html(r->hits[i].text, strlen(r->hits[i].text), 30);
    return LOCI_OK;
}

/* ---- keeping chunks_fts in step (SQLite) ---- */

int search_chunks_added(struct db_conn *c, const char *user_id, const char *document_id)
{
    if (db_backend(db_conn_db(c)) != DB_SQLITE)
        return LOCI_OK; /* chunks.tsv is a generated column */
    struct db_stmt *st = NULL;
    /* A row left at a new chunk's rowid by some other chunk goes first. */
    int rc = db_prepare(c,
                        "DELETE FROM chunks_fts WHERE rowid IN (SELECT c.rowid FROM chunks c "
                        "WHERE c.document_id = ? AND c.user_id = ? AND NOT EXISTS (SELECT 1 FROM "
                        "chunks_fts f WHERE f.rowid = c.rowid AND f.chunk_id = c.id))",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, document_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_run(st, NULL);
    if (rc)
        return rc;
    rc = db_prepare(c,
                    "INSERT INTO chunks_fts (rowid, text, chunk_id, user_id, document_id) "
                    "SELECT c.rowid, c.text, c.id, c.user_id, c.document_id FROM chunks c "
                    "WHERE c.document_id = ? AND c.user_id = ? AND NOT EXISTS "
                    "(SELECT 1 FROM chunks_fts f WHERE f.rowid = c.rowid)",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, document_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    return db_run(st, NULL);
}

int search_document_removed(struct db_conn *c, const char *user_id, const char *document_id)
{
    if (db_backend(db_conn_db(c)) != DB_SQLITE)
        return LOCI_OK;
    struct db_stmt *st = NULL;
    int rc =
        db_prepare(c, "SELECT COUNT(*) FROM chunks WHERE document_id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, document_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    int64_t n_chunks = rc == LOCI_ROW ? db_col_int64(st, 0) : 0;
    db_stmt_done(st);
    if (rc != LOCI_ROW)
        return rc ? rc : LOCI_EIO;
    int64_t removed = 0;
    if (n_chunks > 0) {
        rc = db_prepare(c,
                        "DELETE FROM chunks_fts WHERE rowid IN (SELECT rowid FROM chunks "
                        "WHERE document_id = ? AND user_id = ?) AND document_id = ?",
                        &st);
        if (rc)
            return rc;
        db_bind_text(st, 1, document_id, (size_t)-1);
        db_bind_text(st, 2, user_id, (size_t)-1);
        db_bind_text(st, 3, document_id, (size_t)-1);
        rc = db_run(st, &removed);
        if (rc || removed == n_chunks)
            return rc;
    }
    /* The chunks are gone already, or their rows were not where expected:
     * look through the whole table. */
    rc = db_prepare(c, "DELETE FROM chunks_fts WHERE document_id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, document_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    return db_run(st, NULL);
}

int search_user_removed(struct db_conn *c, const char *user_id)
{
    if (db_backend(db_conn_db(c)) != DB_SQLITE)
        return LOCI_OK;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "DELETE FROM chunks_fts WHERE user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    return db_run(st, NULL);
}
