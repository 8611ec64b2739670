/*
 * test_search.c - finding passages, on SQLite and PostgreSQL: full-text
 * ranking and snippets with <mark> (the rest HTML-escaped), AND falling
 * back to OR, hostile query text that is never an error and never shows
 * another user's rows, input checks, document filters, vector search
 * through the local embedder, the index cache (kept until invalidated, by
 * call or by a bus event; bounded by bytes; safe under concurrent readers),
 * hybrid ranking by reciprocal rank fusion on a constructed case, the
 * full-text hooks of the documents module; and the top-k kernel against a
 * brute-force reference, AVX2 and portable alike.
 */
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/ids.h"
#include "events/events.h"
#include "harness.h"
#include "search/search.h"
#include "services/ai/ai.h"
#include "services/bus/bus.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- set-up ---- */

static struct db *open_db(const char *url)
{
    struct db *db = harness_open_db(url, 8);
    harness_add_users(db);
    return db;
}

static struct ai *open_ai(void)
{
    struct config cfg;
    config_init(&cfg);
    char err[256];
    CHECK_INT(config_set(&cfg, "ai_providers", "local", CFG_SRC_FLAG, err, sizeof(err)), ==, 0);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), ==, 0);
    struct ai *ai = NULL;
    if (ai_new(&cfg, NULL, &ai, err, sizeof(err)))
        harness_fail(__FILE__, __LINE__, "ai_new: %s", err);
    config_release(&cfg);
    return ai;
}

/* Run a statement with text parameters (NULL binds NULL). */
static void sql(struct db *db, const char *q, int n, const char *const *args)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    if (db_prepare(c, q, &st))
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    for (int i = 0; i < n; i++)
        db_bind_text(st, i + 1, args[i], (size_t)-1);
    if (db_run(st, NULL))
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    db_release(c);
}

static long long num(struct db *db, const char *q, int n, const char *const *args)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    if (db_prepare(c, q, &st))
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    for (int i = 0; i < n; i++)
        db_bind_text(st, i + 1, args[i], (size_t)-1);
    long long v = db_step(st) == LOCI_ROW ? (long long)db_col_int64(st, 0) : -1;
    db_stmt_done(st);
    db_release(c);
    return v;
}

#define SQL(db, q, ...)                                                                            \
    sql((db), (q), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),            \
        (const char *[]){__VA_ARGS__})
#define NUM(db, q, ...)                                                                            \
    num((db), (q), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),            \
        (const char *[]){__VA_ARGS__})

static void add_doc(struct db *db, const char *user, char id[UUID_STR_LEN], const char *filename)
{
    ids_uuid7(id);
    SQL(db,
        "INSERT INTO documents (id, user_id, filename, media_type, size_bytes, sha256, status, "
        "created_at, updated_at) VALUES (?, ?, ?, 'text/plain', 1, ?, 'done', 0, 0)",
        id, user, filename, id);
}

struct hook_arg {
    const char *user, *doc;
    int (*fn)(struct db_conn *c, const char *user_id, const char *document_id);
};

static int tx_hook(struct db_conn *c, void *arg)
{
    struct hook_arg *h = arg;
    return h->fn(c, h->user, h->doc);
}

static void hook(struct db *db, const char *user, const char *doc,
                 int (*fn)(struct db_conn *, const char *, const char *))
{
    struct hook_arg h = {user, doc, fn};
    CHECK_INT(db_tx(db, tx_hook, &h), ==, LOCI_OK);
}

/* A chunk (page 0 = none, heading may be NULL); not yet in the full-text
 * index until hook(search_chunks_added). */
static void add_chunk(struct db *db, const char *user, const char *doc, int ord, const char *text,
                      int page, const char *heading, char id[UUID_STR_LEN])
{
    ids_uuid7(id);
    char o[16], p[16];
    snprintf(o, sizeof(o), "%d", ord);
    snprintf(p, sizeof(p), "%d", page);
    SQL(db,
        "INSERT INTO chunks (id, user_id, document_id, ord, text, page, heading, created_at) "
        "VALUES (?, ?, ?, CAST(? AS INTEGER), ?, NULLIF(CAST(? AS INTEGER), 0), ?, 0)",
        id, user, doc, o, text, p, heading);
}

static void add_vec(struct db *db, const char *user, const char *doc, const char *chunk,
                    const char *embedder, const float *v, int dims)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    struct db_stmt *st = NULL;
    CHECK_INT(db_prepare(c,
                         "INSERT INTO chunk_vectors (chunk_id, user_id, document_id, embedder, "
                         "dims, vec) VALUES (?, ?, ?, ?, ?, ?)",
                         &st),
              ==, 0);
    db_bind_text(st, 1, chunk, (size_t)-1);
    db_bind_text(st, 2, user, (size_t)-1);
    db_bind_text(st, 3, doc, (size_t)-1);
    db_bind_text(st, 4, embedder, (size_t)-1);
    db_bind_int64(st, 5, dims);
    db_bind_blob(st, 6, v, (size_t)dims * sizeof(float)); /* little-endian hosts */
    if (db_run(st, NULL))
        harness_fail(__FILE__, __LINE__, "vector: %s", db_errmsg(c));
    db_release(c);
}

/* Embed text with the local embedder and store it for chunk. */
static void embed_chunk(struct db *db, struct ai *ai, const char *user, const char *doc,
                        const char *chunk, const char *text)
{
    struct ai_vectors v = {0};
    size_t n = strlen(text);
    CHECK_INT(ai_embed(ai, &text, &n, 1, NULL, &v, NULL), ==, 0);
    add_vec(db, user, doc, chunk, v.embedder, v.v, v.dims);
    ai_vectors_release(&v);
}

/* A chunk with its full-text row and its vector. */
static void add_indexed(struct db *db, struct ai *ai, const char *user, const char *doc, int ord,
                        const char *text, char id[UUID_STR_LEN])
{
    add_chunk(db, user, doc, ord, text, 0, NULL, id);
    hook(db, user, doc, search_chunks_added);
    embed_chunk(db, ai, user, doc, id, text);
}

static int run(struct search *s, const char *user, const char *q, enum search_mode mode,
               const char *doc, int limit, struct search_results *r)
{
    return search_run(s, user, q, mode, doc, limit, r);
}

static bool has_hit(const struct search_results *r, const char *chunk_id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->hits[i].chunk_id, chunk_id) == 0)
            return true;
    return false;
}

static const enum search_mode modes[] = {SEARCH_FTS, SEARCH_VECTOR, SEARCH_HYBRID};

/* ---- full text ---- */

static void fts_ranking(const char *url)
{
    struct db *db = open_db(url);
    struct ai *ai = open_ai();
    struct search *s = search_new(db, ai, 64u << 20);
    char d1[UUID_STR_LEN], d2[UUID_STR_LEN], dx[UUID_STR_LEN];
    char many[UUID_STR_LEN], once[UUID_STR_LEN], none[UUID_STR_LEN], html[UUID_STR_LEN];
    char other[UUID_STR_LEN];
    add_doc(db, "u1", d1, "biology.pdf");
    add_doc(db, "u1", d2, "notes.md");
    add_doc(db, "u2", dx, "theirs.md");
    add_chunk(db, "u1", d1, 0,
              "Mitochondria are the powerhouse of the cell. The mitochondria make energy; "
              "mitochondria divide on their own.",
              3, NULL, many);
    add_chunk(db, "u1", d1, 1,
              "Cells contain many organelles, among them the mitochondria, a nucleus and "
              "ribosomes, each with a job of its own in the life of the cell.",
              4, NULL, once);
    add_chunk(db, "u1", d1, 2, "Rivers carry water to the sea.", 5, NULL, none);
    add_chunk(db, "u1", d2, 0, "Energy <script>alert('x')</script> & \"quotes\" in the cell", 0,
              "Markup & more", html);
    add_chunk(db, "u2", dx, 0, "Mitochondria powerhouse cell energy of someone else", 0, NULL,
              other);
    hook(db, "u1", d1, search_chunks_added);
    hook(db, "u1", d2, search_chunks_added);
    hook(db, "u2", dx, search_chunks_added);
    hook(db, "u1", d1, search_chunks_added); /* idempotent */

    struct search_results r = {0};
    CHECK_INT(run(s, "u1", "mitochondria", SEARCH_FTS, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 2);
    CHECK_STR(r.hits[0].chunk_id, many); /* three mentions beat one */
    CHECK_STR(r.hits[1].chunk_id, once);
    CHECK(r.hits[0].score > r.hits[1].score);
    CHECK_STR(r.hits[0].document_id, d1);
    CHECK_STR(r.hits[0].filename, "biology.pdf");
    CHECK_INT(r.hits[0].page, ==, 3);
    CHECK_INT(r.hits[0].ord, ==, 0);
    CHECK(r.hits[0].heading == NULL);
    CHECK(strstr(r.hits[0].text, "powerhouse of the cell") != NULL);
    CHECK(strstr(r.hits[0].snippet, "<mark>Mitochondria</mark>") != NULL);
    CHECK(strstr(r.hits[1].snippet, "<mark>mitochondria</mark>") != NULL);
    search_results_release(&r);
    CHECK_INT(run(s, "u1", "organelle", SEARCH_FTS, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 1);
    CHECK(strstr(r.hits[0].snippet, "<mark>organelles</mark>") != NULL); /* stemmed */
    search_results_release(&r);

    /* The rest of a snippet is HTML-escaped; the heading comes back. */
    CHECK_INT(run(s, "u1", "quotes energy", SEARCH_FTS, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 1);
    CHECK_STR(r.hits[0].chunk_id, html);
    CHECK_STR(r.hits[0].heading, "Markup & more");
    CHECK_INT(r.hits[0].page, ==, 0);
    const char *sn = r.hits[0].snippet;
    CHECK(strstr(sn, "<script") == NULL);
    if (db_backend(db) == DB_SQLITE) /* ts_headline leaves out what looks like a tag */
        CHECK(strstr(sn, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") != NULL);
    CHECK(strstr(sn, "alert(&#39;x&#39;)") != NULL);
    CHECK(strstr(sn, "&amp;") != NULL);
    CHECK(strstr(sn, "&quot;<mark>quotes</mark>&quot;") != NULL);
    CHECK(strstr(sn, "<mark>Energy</mark>") != NULL);
    search_results_release(&r);

    /* AND first; when no chunk has every word, any word will do. */
    CHECK_INT(run(s, "u1", "powerhouse cell", SEARCH_FTS, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 1);
    CHECK_STR(r.hits[0].chunk_id, many);
    search_results_release(&r);
    CHECK_INT(run(s, "u1", "powerhouse zebra", SEARCH_FTS, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 1);
    CHECK_STR(r.hits[0].chunk_id, many);
    CHECK(strstr(r.hits[0].snippet, "<mark>powerhouse</mark>") != NULL);
    search_results_release(&r);
    CHECK_INT(run(s, "u1", "zebra giraffe", SEARCH_FTS, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 0);
    search_results_release(&r);

    /* limit, and one document only */
    CHECK_INT(run(s, "u1", "cell", SEARCH_FTS, NULL, 1, &r), ==, 0);
    CHECK_INT(r.n, ==, 1);
    search_results_release(&r);
    CHECK_INT(run(s, "u1", "cell", SEARCH_FTS, d2, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 1);
    CHECK_STR(r.hits[0].chunk_id, html);
    search_results_release(&r);

    /* another user's document: not found, whatever the mode */
    for (size_t m = 0; m < 3; m++) {
        CHECK_INT(run(s, "u1", "cell", modes[m], dx, 10, &r), ==, LOCI_ENOTFOUND);
        CHECK_INT(r.n, ==, 0);
        CHECK_INT(run(s, "u2", "cell", modes[m], d1, 10, &r), ==, LOCI_ENOTFOUND);
        CHECK_INT(run(s, "u1", "cell", modes[m], "0190a5e6-0000-7000-8000-000000000000", 10, &r),
                  ==, LOCI_ENOTFOUND);
    }
    search_free(s);
    ai_free(ai);
    db_close(db);
}

TEST(fts_ranks_marks_and_falls_back)
{
    const char *urls[2];
    int n = harness_db_urls("search_fts", urls);
    for (int i = 0; i < n; i++)
        fts_ranking(urls[i]);
}

static void hostile(const char *url)
{
    struct db *db = open_db(url);
    struct ai *ai = open_ai();
    struct search *s = search_new(db, ai, 64u << 20);
    char d1[UUID_STR_LEN], dx[UUID_STR_LEN], mine[3][UUID_STR_LEN], theirs[UUID_STR_LEN];
    add_doc(db, "u1", d1, "a.md");
    add_doc(db, "u2", dx, "b.md");
    add_indexed(db, ai, "u1", d1, 0, "near a quote \" and a star * OR maybe AND not", mine[0]);
    add_indexed(db, ai, "u1", d1, 1, "O'Brien said: drop table students; -- a or b", mine[1]);
    add_indexed(db, ai, "u1", d1, 2, "café naïve 東京 emoji 🙂 text", mine[2]);
    add_indexed(db, ai, "u2", dx, 0,
                "near quote star OR AND not O'Brien drop table students café naïve 東京 a or b",
                theirs);
    static const char *const qs[] = {"\"",
                                     "*",
                                     "NEAR(",
                                     "a OR",
                                     "OR",
                                     "AND",
                                     "NOT",
                                     "NEAR",
                                     "a AND",
                                     "\"unbalanced",
                                     "(((",
                                     ")",
                                     "^a",
                                     "a*",
                                     "text:near",
                                     "-",
                                     "- a",
                                     "+",
                                     "'",
                                     "''",
                                     "O'Brien",
                                     "'; DROP TABLE chunks; --",
                                     "\" OR 1=1 --",
                                     "%",
                                     "_",
                                     "\\",
                                     "\\\\'",
                                     "{a b}",
                                     "a:b",
                                     "a & b | !c",
                                     "<->",
                                     "a <-> b",
                                     "café",
                                     "東京",
                                     "🙂",
                                     "\xc2\xa0x",
                                     "near quote",
                                     "students drop",
                                     "a or b",
                                     "OR AND NOT NEAR",
                                     "\x01\x02",
                                     "col:*",
                                     "a NEAR/3 b",
                                     "NEAR(a b, 2)"};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        for (size_t m = 0; m < 3; m++) {
            struct search_results r = {0};
            int rc = run(s, "u1", qs[i], modes[m], NULL, 50, &r);
            if (rc)
                harness_fail(__FILE__, __LINE__, "query '%s' mode %d: %d", qs[i], (int)modes[m],
                             rc);
            for (size_t h = 0; h < r.n; h++) {
                CHECK(strcmp(r.hits[h].chunk_id, theirs) != 0);
                CHECK_STR(r.hits[h].document_id, d1);
                CHECK(strstr(r.hits[h].snippet, "<script") == NULL);
            }
            search_results_release(&r);
        }
    /* the words of a hostile query still find what they say */
    struct search_results r = {0};
    CHECK_INT(run(s, "u1", "O'Brien", SEARCH_FTS, NULL, 10, &r), ==, 0);
    CHECK(has_hit(&r, mine[1]));
    search_results_release(&r);
    CHECK_INT(run(s, "u1", "\"star\" OR", SEARCH_FTS, NULL, 10, &r), ==, 0);
    CHECK(has_hit(&r, mine[0]));
    search_results_release(&r);
    CHECK_INT(run(s, "u1", "café", SEARCH_FTS, NULL, 10, &r), ==, 0);
    CHECK(has_hit(&r, mine[2]));
    search_results_release(&r);
    /* the tables are all still there */
    CHECK_INT(NUM(db, "SELECT COUNT(*) FROM chunks WHERE user_id = ?", "u1"), ==, 3);
    search_free(s);
    ai_free(ai);
    db_close(db);
}

TEST(hostile_queries_are_words)
{
    const char *urls[2];
    int n = harness_db_urls("search_hostile", urls);
    for (int i = 0; i < n; i++)
        hostile(urls[i]);
}

TEST(bad_input)
{
    const char *urls[2];
    int n = harness_db_urls("search_input", urls);
    for (int u = 0; u < n; u++) {
        struct db *db = open_db(urls[u]);
        struct ai *ai = open_ai();
        struct search *s = search_new(db, ai, 1u << 20);
        struct search_results r = {0};
        char q[2048];
        memset(q, 'a', 501);
        q[501] = '\0';
        CHECK_INT(run(s, "u1", q, SEARCH_FTS, NULL, 10, &r), ==, LOCI_EUNPROCESSABLE);
        q[500] = '\0';
        CHECK_INT(run(s, "u1", q, SEARCH_HYBRID, NULL, 10, &r), ==, 0);
        search_results_release(&r);
        /* 500 characters of three bytes each are fine */
        for (int i = 0; i < 500; i++)
            memcpy(q + 3 * i, "\xe6\x9d\xb1", 3);
        q[1500] = '\0';
        CHECK_INT(run(s, "u1", q, SEARCH_HYBRID, NULL, 10, &r), ==, 0);
        search_results_release(&r);
        CHECK_INT(run(s, "u1", "", SEARCH_FTS, NULL, 10, &r), ==, LOCI_EUNPROCESSABLE);
        CHECK_INT(run(s, "u1", NULL, SEARCH_FTS, NULL, 10, &r), ==, LOCI_EUNPROCESSABLE);
        CHECK_INT(run(s, "u1", "  \t\n ", SEARCH_VECTOR, NULL, 10, &r), ==, LOCI_EUNPROCESSABLE);
        CHECK_INT(run(s, "u1", "bad \xff utf8", SEARCH_HYBRID, NULL, 10, &r), ==,
                  LOCI_EUNPROCESSABLE);
        CHECK_INT(run(s, "u1", "ok", SEARCH_FTS, NULL, 0, &r), ==, LOCI_EINVAL);
        CHECK_INT(run(s, "u1", "ok", SEARCH_FTS, NULL, 51, &r), ==, LOCI_EINVAL);
        CHECK_INT(run(s, "u1", "ok", (enum search_mode)7, NULL, 10, &r), ==, LOCI_EINVAL);
        CHECK_INT(r.n, ==, 0);
        /* nothing indexed yet: empty, not an error */
        for (size_t m = 0; m < 3; m++) {
            CHECK_INT(run(s, "u1", "anything", modes[m], NULL, 10, &r), ==, 0);
            CHECK_INT(r.n, ==, 0);
        }
        search_free(s);
        ai_free(ai);
        db_close(db);
    }
}

/* ---- vectors ---- */

static void vectors(const char *url)
{
    struct db *db = open_db(url);
    struct ai *ai = open_ai();
    struct search *s = search_new(db, ai, 64u << 20);
    char d1[UUID_STR_LEN], d2[UUID_STR_LEN], dx[UUID_STR_LEN];
    char c[4][UUID_STR_LEN], theirs[UUID_STR_LEN];
    add_doc(db, "u1", d1, "a.md");
    add_doc(db, "u1", d2, "b.md");
    add_doc(db, "u2", dx, "x.md");
    const char *texts[] = {"The French revolution began in 1789 with the storming of the Bastille.",
                           "Photosynthesis turns light, water and carbon dioxide into sugar.",
                           "Binary search halves the interval at every step of the loop.",
                           "Plants need light for photosynthesis in their green leaves."};
    for (int i = 0; i < 4; i++)
        add_indexed(db, ai, "u1", i < 2 ? d1 : d2, i, texts[i], c[i]);
    add_indexed(db, ai, "u2", dx, 0, texts[2], theirs); /* the very same text */

    struct search_results r = {0};
    CHECK_INT(run(s, "u1", texts[2], SEARCH_VECTOR, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 4); /* all of u1's chunks, none of u2's */
    CHECK_STR(r.hits[0].chunk_id, c[2]);
    CHECK(fabs(r.hits[0].score - 1.0) < 1e-4);
    for (size_t i = 1; i < r.n; i++)
        CHECK(r.hits[i].score <= r.hits[i - 1].score);
    CHECK(!has_hit(&r, theirs));
    CHECK_STR(r.hits[0].filename, "b.md");
    CHECK(strlen(r.hits[0].snippet) > 0);
    search_results_release(&r);

    CHECK_INT(run(s, "u1", "photosynthesis in green leaves", SEARCH_VECTOR, NULL, 2, &r), ==, 0);
    CHECK_INT(r.n, ==, 2);
    CHECK_STR(r.hits[0].chunk_id, c[3]);
    /* a vector hit's snippet marks the query's words it holds */
    CHECK(strstr(r.hits[0].snippet, "<mark>") != NULL);
    search_results_release(&r);

    /* one document only */
    CHECK_INT(run(s, "u1", texts[2], SEARCH_VECTOR, d1, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 2);
    for (size_t i = 0; i < r.n; i++)
        CHECK_STR(r.hits[i].document_id, d1);
    search_results_release(&r);
    CHECK_INT(run(s, "u1", "photosynthesis", SEARCH_HYBRID, d2, 10, &r), ==, 0);
    for (size_t i = 0; i < r.n; i++)
        CHECK_STR(r.hits[i].document_id, d2);
    CHECK_STR(r.hits[0].chunk_id, c[3]);
    search_results_release(&r);

    /* vectors of another embedder never compare */
    char e[UUID_STR_LEN];
    add_chunk(db, "u1", d1, 9, "odd one", 0, NULL, e);
    float odd[384];
    for (int i = 0; i < 384; i++)
        odd[i] = i == 0 ? 1.0f : 0.0f;
    add_vec(db, "u1", d1, e, "openai:other-model:384", odd, 384);
    search_vectors_changed(s, "u1");
    CHECK_INT(run(s, "u1", "odd one", SEARCH_VECTOR, NULL, 50, &r), ==, 0);
    CHECK(!has_hit(&r, e));
    CHECK_INT(r.n, ==, 4);
    search_results_release(&r);
    search_free(s);
    ai_free(ai);
    db_close(db);
}

TEST(vector_search)
{
    const char *urls[2];
    int n = harness_db_urls("search_vec", urls);
    for (int i = 0; i < n; i++)
        vectors(urls[i]);
}

struct bus_wait {
    pthread_mutex_t mu;
    int64_t n;
};

static int tx_event(struct db_conn *c, void *arg)
{
    (void)arg;
    return events_append(c, "u1", "document.indexed", NULL, NULL);
}

static void invalidation(const char *url)
{
    struct db *db = open_db(url);
    struct ai *ai = open_ai();
    struct search *s = search_new(db, ai, 64u << 20);
    struct bus *bus = bus_new(db, 10);
    search_subscribe(s, bus);
    CHECK_INT(bus_start(bus), ==, 0);
    char d1[UUID_STR_LEN], a[UUID_STR_LEN], b[UUID_STR_LEN], x[UUID_STR_LEN];
    add_doc(db, "u1", d1, "a.md");
    add_indexed(db, ai, "u1", d1, 0, "the heart pumps blood through the body", a);
    struct search_results r = {0};
    struct search_stats st;
    CHECK_INT(run(s, "u1", "heart", SEARCH_VECTOR, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 1);
    search_results_release(&r);
    search_stats(s, &st);
    CHECK_INT(st.n_loads, ==, 1);
    CHECK_INT(st.n_indexes, ==, 1);
    CHECK(st.bytes > 384 * 4);

    /* cached: a new vector is not seen until the cache hears of it */
    add_indexed(db, ai, "u1", d1, 1, "the lungs exchange oxygen and carbon dioxide", b);
    CHECK_INT(run(s, "u1", "lungs oxygen", SEARCH_VECTOR, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 1);
    search_results_release(&r);
    search_stats(s, &st);
    CHECK_INT(st.n_loads, ==, 1);
    search_vectors_changed(s, "u1");
    search_vectors_changed(s, "nobody");
    CHECK_INT(run(s, "u1", "lungs oxygen", SEARCH_VECTOR, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 2);
    CHECK_STR(r.hits[0].chunk_id, b);
    search_results_release(&r);
    search_stats(s, &st);
    CHECK_INT(st.n_loads, ==, 2);

    /* another instance's change arrives as an event on the bus */
    add_indexed(db, ai, "u1", d1, 2, "xylophones are struck with mallets", x);
    CHECK_INT(db_tx(db, tx_event, NULL), ==, 0);
    bus_wake(bus);
    for (int i = 0; i < 500; i++) {
        search_stats(s, &st);
        if (st.n_indexes == 0)
            break;
        clock_sleep_ms(10);
    }
    CHECK_INT(st.n_indexes, ==, 0);
    CHECK_INT(run(s, "u1", "xylophones mallets", SEARCH_VECTOR, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 3);
    CHECK_STR(r.hits[0].chunk_id, x);
    search_results_release(&r);

    /* a deleted chunk never comes back, even from a stale index */
    SQL(db, "DELETE FROM chunks WHERE id = ?", x);
    CHECK_INT(run(s, "u1", "xylophones mallets", SEARCH_HYBRID, NULL, 10, &r), ==, 0);
    CHECK(!has_hit(&r, x));
    CHECK_INT(r.n, ==, 2);
    search_results_release(&r);
    bus_free(bus);
    search_free(s);
    ai_free(ai);
    db_close(db);
}

TEST(index_invalidation)
{
    const char *urls[2];
    int n = harness_db_urls("search_inval", urls);
    for (int i = 0; i < n; i++)
        invalidation(urls[i]);
}

TEST(cache_bounded_by_bytes)
{
    const char *urls[2];
    harness_db_urls("search_lru", urls);
    struct db *db = open_db(urls[0]);
    struct ai *ai = open_ai();
    char d1[UUID_STR_LEN], d2[UUID_STR_LEN], id[UUID_STR_LEN];
    add_doc(db, "u1", d1, "a.md");
    add_doc(db, "u2", d2, "b.md");
    for (int i = 0; i < 20; i++) {
        char t[64];
        snprintf(t, sizeof(t), "chunk number %d about things", i);
        add_indexed(db, ai, "u1", d1, i, t, id);
        add_indexed(db, ai, "u2", d2, i, t, id);
    }
    /* room for one user's index (20 x 384 floats and ids), not two */
    struct search *s = search_new(db, ai, 50000);
    struct search_results r = {0};
    struct search_stats st;
    CHECK_INT(run(s, "u1", "things", SEARCH_VECTOR, NULL, 5, &r), ==, 0);
    CHECK_INT(r.n, ==, 5);
    search_results_release(&r);
    search_stats(s, &st);
    CHECK_INT(st.n_indexes, ==, 1);
    CHECK_INT(run(s, "u2", "things", SEARCH_VECTOR, NULL, 5, &r), ==, 0);
    CHECK_INT(r.n, ==, 5);
    search_results_release(&r);
    search_stats(s, &st);
    CHECK_INT(st.n_indexes, ==, 1);
    CHECK(st.bytes <= st.cap);
    CHECK_INT(st.n_loads, ==, 2);
    search_free(s);
    /* a budget smaller than one index: searches work, nothing is kept */
    s = search_new(db, ai, 1000);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(run(s, "u1", "things", SEARCH_VECTOR, NULL, 5, &r), ==, 0);
        CHECK_INT(r.n, ==, 5);
        search_results_release(&r);
    }
    search_stats(s, &st);
    CHECK_INT(st.n_indexes, ==, 0);
    CHECK_INT(st.bytes, ==, 0);
    CHECK_INT(st.n_loads, ==, 3);
    search_free(s);
    ai_free(ai);
    db_close(db);
}

struct reader {
    struct search *s;
    const char *user;
    int errors;
    int wrong;
};

static void *read_main(void *arg)
{
    struct reader *rd = arg;
    for (int i = 0; i < 150; i++) {
        struct search_results r = {0};
        if (search_run(rd->s, rd->user, "things", i % 2 ? SEARCH_VECTOR : SEARCH_HYBRID, NULL, 5,
                       &r))
            rd->errors++;
        else if (r.n != 5)
            rd->wrong++;
        search_results_release(&r);
    }
    return NULL;
}

TEST(concurrent_readers_and_invalidation)
{
    const char *urls[2];
    harness_db_urls("search_threads", urls);
    struct db *db = open_db(urls[0]);
    struct ai *ai = open_ai();
    char d1[UUID_STR_LEN], d2[UUID_STR_LEN], id[UUID_STR_LEN];
    add_doc(db, "u1", d1, "a.md");
    add_doc(db, "u2", d2, "b.md");
    for (int i = 0; i < 30; i++) {
        char t[64];
        snprintf(t, sizeof(t), "chunk number %d about things", i);
        add_indexed(db, ai, "u1", d1, i, t, id);
        add_indexed(db, ai, "u2", d2, i, t, id);
    }
    struct search *s = search_new(db, ai, 80000); /* about one index: evictions too */
    pthread_t t[4];
    struct reader rd[4];
    for (int i = 0; i < 4; i++) {
        rd[i] = (struct reader){.s = s, .user = i % 2 ? "u2" : "u1"};
        CHECK_INT(pthread_create(&t[i], NULL, read_main, &rd[i]), ==, 0);
    }
    for (int i = 0; i < 300; i++) {
        search_vectors_changed(s, i % 2 ? "u1" : "u2");
        clock_sleep_ms(1);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(rd[i].errors, ==, 0);
        CHECK_INT(rd[i].wrong, ==, 0);
    }
    struct search_stats st;
    search_stats(s, &st);
    CHECK(st.bytes <= st.cap);
    search_free(s);
    ai_free(ai);
    db_close(db);
}

/* ---- hybrid ---- */

/* A unit vector whose dot product with unit q is a. */
static void vec_at(const float *q, int dims, double a, unsigned seed, float *out)
{
    double r[4096], dot = 0, norm = 0;
    srand(seed);
    for (int i = 0; i < dims; i++) {
        r[i] = rand() / (double)RAND_MAX - 0.5;
        dot += r[i] * q[i];
    }
    for (int i = 0; i < dims; i++) {
        r[i] -= dot * q[i];
        norm += r[i] * r[i];
    }
    norm = sqrt(norm);
    double b = sqrt(1 - a * a);
    for (int i = 0; i < dims; i++)
        out[i] = (float)(a * q[i] + b * r[i] / norm);
}

static void hybrid(const char *url)
{
    struct db *db = open_db(url);
    struct ai *ai = open_ai();
    struct search *s = search_new(db, ai, 64u << 20);
    const char *q = "photosynthesis chlorophyll";
    struct ai_vectors qv = {0};
    size_t qn = strlen(q);
    CHECK_INT(ai_embed(ai, &q, &qn, 1, NULL, &qv, NULL), ==, 0);
    char d[UUID_STR_LEN], a[UUID_STR_LEN], b[UUID_STR_LEN], c[UUID_STR_LEN], e[UUID_STR_LEN];
    add_doc(db, "u1", d, "plants.md");
    /* full text: a, b, e; vectors: b (0.9), c (0.5), e (0.1); a has none */
    add_chunk(db, "u1", d, 0, "Photosynthesis chlorophyll, photosynthesis chlorophyll.", 0, NULL,
              a);
    add_chunk(db, "u1", d, 1, "Photosynthesis needs chlorophyll in leaves.", 0, NULL, b);
    add_chunk(db, "u1", d, 2, "Rivers carry water and sand to the sea.", 0, NULL, c);
    add_chunk(db, "u1", d, 3,
              "Chlorophyll is green, and it absorbs red and blue light, which the plant then "
              "uses, in the long and slow process of photosynthesis, to make sugar and oxygen.",
              0, NULL, e);
    hook(db, "u1", d, search_chunks_added);
    float v[4096];
    vec_at(qv.v, qv.dims, 0.9, 1, v);
    add_vec(db, "u1", d, b, qv.embedder, v, qv.dims);
    vec_at(qv.v, qv.dims, 0.5, 2, v);
    add_vec(db, "u1", d, c, qv.embedder, v, qv.dims);
    vec_at(qv.v, qv.dims, 0.1, 3, v);
    add_vec(db, "u1", d, e, qv.embedder, v, qv.dims);

    struct search_results f = {0}, vr = {0}, h = {0};
    CHECK_INT(run(s, "u1", q, SEARCH_FTS, NULL, 50, &f), ==, 0);
    CHECK_INT(f.n, ==, 3);
    CHECK_STR(f.hits[0].chunk_id, a);
    CHECK_STR(f.hits[1].chunk_id, b);
    CHECK_STR(f.hits[2].chunk_id, e);
    CHECK_INT(run(s, "u1", q, SEARCH_VECTOR, NULL, 50, &vr), ==, 0);
    CHECK_INT(vr.n, ==, 3);
    CHECK_STR(vr.hits[0].chunk_id, b);
    CHECK(fabs(vr.hits[0].score - 0.9) < 1e-4);
    CHECK_STR(vr.hits[1].chunk_id, c);
    CHECK_STR(vr.hits[2].chunk_id, e);
    /* RRF, k = 60: b 1/62 + 1/61, e 1/63 + 1/63, a 1/61, c 1/62 */
    CHECK_INT(run(s, "u1", q, SEARCH_HYBRID, NULL, 10, &h), ==, 0);
    CHECK_INT(h.n, ==, 4);
    CHECK_STR(h.hits[0].chunk_id, b);
    CHECK_STR(h.hits[1].chunk_id, e);
    CHECK_STR(h.hits[2].chunk_id, a);
    CHECK_STR(h.hits[3].chunk_id, c);
    CHECK(fabs(h.hits[0].score - (1.0 / 62 + 1.0 / 61)) < 1e-12);
    CHECK(fabs(h.hits[1].score - 2.0 / 63) < 1e-12);
    CHECK(fabs(h.hits[2].score - 1.0 / 61) < 1e-12);
    CHECK(fabs(h.hits[3].score - 1.0 / 62) < 1e-12);
    /* every hit has a snippet; the full-text ones mark the words */
    CHECK(strstr(h.hits[0].snippet, "<mark>") != NULL);
    CHECK(strstr(h.hits[3].snippet, "<mark>") == NULL);
    CHECK(strstr(h.hits[3].snippet, "Rivers carry water") != NULL);
    search_results_release(&h);
    CHECK_INT(run(s, "u1", q, SEARCH_HYBRID, NULL, 2, &h), ==, 0);
    CHECK_INT(h.n, ==, 2);
    CHECK_STR(h.hits[1].chunk_id, e);
    search_results_release(&h);
    /* no chunk has every word: full text alone widens to any word, hybrid
     * leaves near misses to the vectors (a has none) */
    CHECK_INT(run(s, "u1", "chlorophyll zebra", SEARCH_FTS, NULL, 10, &h), ==, 0);
    CHECK(has_hit(&h, a));
    search_results_release(&h);
    CHECK_INT(run(s, "u1", "chlorophyll zebra", SEARCH_HYBRID, NULL, 10, &h), ==, 0);
    CHECK(!has_hit(&h, a));
    CHECK_INT(h.n, ==, 3);
    search_results_release(&h);
    search_results_release(&f);
    search_results_release(&vr);
    ai_vectors_release(&qv);
    search_free(s);
    ai_free(ai);
    db_close(db);
}

TEST(hybrid_reciprocal_rank_fusion)
{
    const char *urls[2];
    int n = harness_db_urls("search_hybrid", urls);
    for (int i = 0; i < n; i++)
        hybrid(urls[i]);
}

/* ---- the full-text hooks ---- */

static void hooks(const char *url)
{
    struct db *db = open_db(url);
    struct ai *ai = open_ai();
    struct search *s = search_new(db, ai, 1u << 20);
    bool is_sqlite = db_backend(db) == DB_SQLITE;
    char d1[UUID_STR_LEN], d2[UUID_STR_LEN], id[UUID_STR_LEN];
    add_doc(db, "u1", d1, "a.md");
    add_doc(db, "u1", d2, "b.md");
    for (int i = 0; i < 5; i++) {
        add_chunk(db, "u1", d1, i, "volcanoes erupt lava", 0, NULL, id);
        add_chunk(db, "u1", d2, i, "volcanoes sleep for centuries", 0, NULL, id);
    }
    hook(db, "u1", d1, search_chunks_added);
    hook(db, "u1", d2, search_chunks_added);
    hook(db, "u1", d2, search_chunks_added);
    if (is_sqlite)
        CHECK_INT(NUM(db, "SELECT COUNT(*) FROM chunks_fts WHERE user_id = ?", "u1"), ==, 10);
    struct search_results r = {0};
    CHECK_INT(run(s, "u1", "volcanoes", SEARCH_FTS, NULL, 50, &r), ==, 0);
    CHECK_INT(r.n, ==, 10);
    search_results_release(&r);

    /* a document goes: its rows first, then the document (chunks by FK) */
    hook(db, "u1", d1, search_document_removed);
    SQL(db, "DELETE FROM documents WHERE id = ?", d1);
    if (is_sqlite)
        CHECK_INT(NUM(db, "SELECT COUNT(*) FROM chunks_fts WHERE document_id = ?", d1), ==, 0);
    CHECK_INT(run(s, "u1", "volcanoes", SEARCH_FTS, NULL, 50, &r), ==, 0);
    CHECK_INT(r.n, ==, 5);
    search_results_release(&r);
    /* removal after the chunks are gone still finds the rows */
    SQL(db, "DELETE FROM chunks WHERE document_id = ?", d2);
    hook(db, "u1", d2, search_document_removed);
    if (is_sqlite)
        CHECK_INT(NUM(db, "SELECT COUNT(*) FROM chunks_fts WHERE user_id = ?", "u1"), ==, 0);
    /* re-adding after rows went astray: the stray row at a rowid is replaced */
    add_chunk(db, "u1", d2, 0, "geysers spout water", 0, NULL, id);
    if (is_sqlite)
        SQL(db,
            "INSERT INTO chunks_fts (rowid, text, chunk_id, user_id, document_id) "
            "SELECT rowid, 'stray text', 'stray', 'u1', ? FROM chunks WHERE id = ?",
            d2, id);
    hook(db, "u1", d2, search_chunks_added);
    CHECK_INT(run(s, "u1", "geysers", SEARCH_FTS, NULL, 50, &r), ==, 0);
    CHECK_INT(r.n, ==, 1);
    CHECK_STR(r.hits[0].chunk_id, id);
    search_results_release(&r);
    CHECK_INT(run(s, "u1", "stray", SEARCH_FTS, NULL, 50, &r), ==, 0);
    CHECK_INT(r.n, ==, 0);
    search_results_release(&r);
    /* account erasure */
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, 0);
    CHECK_INT(search_user_removed(c, "u1"), ==, 0);
    db_release(c);
    if (is_sqlite)
        CHECK_INT(NUM(db, "SELECT COUNT(*) FROM chunks_fts WHERE user_id = ?", "u1"), ==, 0);
    search_free(s);
    ai_free(ai);
    db_close(db);
}

TEST(fulltext_hooks)
{
    const char *urls[2];
    int n = harness_db_urls("search_hooks", urls);
    for (int i = 0; i < n; i++)
        hooks(urls[i]);
}

/* ---- the kernel ---- */

struct ref {
    double s;
    size_t i;
};

static int ref_cmp(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static void check_topk(enum search_kernel kern, const float *m, size_t n, int dims, const float *q,
                       size_t k, size_t *idx, float *sc, size_t *out_n)
{
    size_t got = search_topk_kernel(kern, m, n, dims, q, k, idx, sc);
    size_t want = k < n ? k : n;
    if (got != want)
        harness_fail(__FILE__, __LINE__, "n %zu dims %d k %zu: got %zu", n, dims, k, got);
    struct ref *ref = calloc(n ? n : 1, sizeof(*ref));
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < dims; j++)
            s += (double)m[i * (size_t)dims + (size_t)j] * q[j];
        ref[i] = (struct ref){s, i};
    }
    qsort(ref, n, sizeof(*ref), ref_cmp);
    for (size_t r = 0; r < got; r++) {
        double exact = 0;
        for (int j = 0; j < dims; j++)
            exact += (double)m[idx[r] * (size_t)dims + (size_t)j] * q[j];
        double tol = 1e-5 * (1 + sqrt((double)dims));
        if (fabs(sc[r] - exact) > tol || fabs(sc[r] - ref[r].s) > tol)
            harness_fail(__FILE__, __LINE__, "n %zu dims %d k %zu rank %zu: %g vs %g / %g", n, dims,
                         k, r, sc[r], exact, ref[r].s);
        if (r > 0)
            CHECK(sc[r] <= sc[r - 1]);
        for (size_t p = 0; p < r; p++)
            CHECK(idx[p] != idx[r]);
    }
    free(ref);
    *out_n = got;
}

TEST(topk_matches_brute_force)
{
    static const size_t ns[] = {0, 1, 2, 7, 100, 1000, 5003};
    static const int dims_list[] = {1, 3, 7, 8, 13, 31, 64, 100, 384, 385};
    static const size_t ks[] = {1, 3, 10, 50, 6000};
    srand(42);
    for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++)
        for (size_t b = 0; b < sizeof(dims_list) / sizeof(dims_list[0]); b++) {
            size_t n = ns[a];
            int dims = dims_list[b];
            if (n * (size_t)dims > 600000)
                continue;
            /* one float in front so rows are not aligned */
            float *mem = calloc(n * (size_t)dims + 1, sizeof(float));
            float *m = mem + 1;
            float *q = calloc((size_t)dims, sizeof(float));
            for (size_t i = 0; i < n * (size_t)dims; i++)
                m[i] = (float)(rand() / (double)RAND_MAX * 2 - 1);
            for (int j = 0; j < dims; j++)
                q[j] = (float)(rand() / (double)RAND_MAX * 2 - 1);
            for (size_t c = 0; c < sizeof(ks) / sizeof(ks[0]); c++) {
                size_t k = ks[c];
                size_t *i1 = calloc(k, sizeof(size_t)), *i2 = calloc(k, sizeof(size_t));
                float *s1 = calloc(k, sizeof(float)), *s2 = calloc(k, sizeof(float));
                size_t n1 = 0, n2 = 0;
                check_topk(SEARCH_KERNEL_AVX2, m, n, dims, q, k, i1, s1, &n1);
                check_topk(SEARCH_KERNEL_PORTABLE, m, n, dims, q, k, i2, s2, &n2);
                CHECK_INT(n1, ==, n2);
                for (size_t r = 0; r < n1; r++)
                    if (i1[r] != i2[r] && fabsf(s1[r] - s2[r]) > 1e-5f)
                        harness_fail(__FILE__, __LINE__, "kernels differ at rank %zu", r);
                size_t n3 = search_topk(m, n, dims, q, k, i2, s2);
                CHECK_INT(n3, ==, n1);
                free(i1);
                free(i2);
                free(s1);
                free(s2);
            }
            free(mem);
            free(q);
        }
    CHECK(strcmp(search_kernel_name(), "avx2") == 0 ||
          strcmp(search_kernel_name(), "portable") == 0);
}

TEST(topk_ties_and_edges)
{
    /* identical rows: equal scores, lower index first, in both kernels */
    float m[6 * 5], q[5] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 5; j++)
            m[i * 5 + j] = i == 4 ? 2.0f : 1.0f;
    size_t idx[6];
    float sc[6];
    for (int kern = SEARCH_KERNEL_PORTABLE; kern <= SEARCH_KERNEL_AVX2; kern++) {
        CHECK_INT(search_topk_kernel((enum search_kernel)kern, m, 6, 5, q, 4, idx, sc), ==, 4);
        CHECK_INT(idx[0], ==, 4);
        CHECK_INT(idx[1], ==, 0);
        CHECK_INT(idx[2], ==, 1);
        CHECK_INT(idx[3], ==, 2);
        CHECK(sc[0] == 30.0f && sc[1] == 15.0f && sc[3] == 15.0f);
        /* a NaN row ranks last */
        m[0] = NAN;
        CHECK_INT(search_topk_kernel((enum search_kernel)kern, m, 6, 5, q, 6, idx, sc), ==, 6);
        CHECK_INT(idx[5], ==, 0);
        m[0] = 1.0f;
    }
    CHECK_INT(search_topk(m, 6, 5, q, 0, idx, sc), ==, 0);
    CHECK_INT(search_topk(NULL, 0, 5, q, 3, idx, sc), ==, 0);
    CHECK_INT(search_topk(m, 6, 0, q, 3, idx, sc), ==, 0);
}

/* ---- an index big enough to be scanned on several threads ---- */

struct bulk {
    const char *doc;
    const char *embedder;
    int dims;
    size_t n;
    float *m;
    char (*ids)[UUID_STR_LEN];
};

static int tx_bulk(struct db_conn *c, void *arg)
{
    struct bulk *b = arg;
    for (size_t i = 0; i < b->n; i++) {
        struct db_stmt *st = NULL;
        int rc = db_prepare(c,
                            "INSERT INTO chunks (id, user_id, document_id, ord, text, created_at) "
                            "VALUES (?, 'u1', ?, ?, 'bulk', 0)",
                            &st);
        if (rc)
            return rc;
        db_bind_text(st, 1, b->ids[i], (size_t)-1);
        db_bind_text(st, 2, b->doc, (size_t)-1);
        db_bind_int64(st, 3, (int64_t)i);
        if ((rc = db_run(st, NULL)))
            return rc;
        rc = db_prepare(c,
                        "INSERT INTO chunk_vectors (chunk_id, user_id, document_id, embedder, "
                        "dims, vec) VALUES (?, 'u1', ?, ?, ?, ?)",
                        &st);
        if (rc)
            return rc;
        db_bind_text(st, 1, b->ids[i], (size_t)-1);
        db_bind_text(st, 2, b->doc, (size_t)-1);
        db_bind_text(st, 3, b->embedder, (size_t)-1);
        db_bind_int64(st, 4, b->dims);
        db_bind_blob(st, 5, b->m + i * (size_t)b->dims, (size_t)b->dims * sizeof(float));
        if ((rc = db_run(st, NULL)))
            return rc;
    }
    return LOCI_OK;
}

TEST(big_index_scanned_in_parts)
{
    const char *urls[2];
    harness_db_urls("search_big", urls);
    struct db *db = open_db(urls[0]);
    struct ai *ai = open_ai();
    struct search *s = search_new(db, ai, 256u << 20);
    const char *q = "probe words";
    struct ai_vectors qv = {0};
    size_t qn = strlen(q);
    CHECK_INT(ai_embed(ai, &q, &qn, 1, NULL, &qv, NULL), ==, 0);
    char d1[UUID_STR_LEN], d2[UUID_STR_LEN];
    add_doc(db, "u1", d1, "big.md");
    add_doc(db, "u1", d2, "small.md");
    /* 12,000 x 384 floats: over the 4 M floats that split a scan */
    struct bulk b = {.doc = d1, .embedder = qv.embedder, .dims = qv.dims, .n = 12000};
    b.m = calloc(b.n * (size_t)b.dims, sizeof(float));
    b.ids = calloc(b.n, sizeof(*b.ids));
    srand(7);
    for (size_t i = 0; i < b.n; i++) {
        ids_uuid7(b.ids[i]);
        vec_at(qv.v, qv.dims, rand() / (double)RAND_MAX * 1.8 - 0.9, (unsigned)i + 100,
               b.m + i * (size_t)b.dims);
    }
    CHECK_INT(db_tx(db, tx_bulk, &b), ==, 0);
    /* the exact top 10 by brute force */
    struct ref *ref = calloc(b.n, sizeof(*ref));
    for (size_t i = 0; i < b.n; i++) {
        double dot = 0;
        for (int j = 0; j < b.dims; j++)
            dot += (double)b.m[i * (size_t)b.dims + (size_t)j] * qv.v[j];
        ref[i] = (struct ref){dot, i};
    }
    qsort(ref, b.n, sizeof(*ref), ref_cmp);
    struct search_results r = {0};
    CHECK_INT(run(s, "u1", q, SEARCH_VECTOR, NULL, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 10);
    for (size_t i = 0; i < r.n; i++) {
        CHECK_STR(r.hits[i].chunk_id, b.ids[ref[i].i]);
        CHECK(fabs(r.hits[i].score - ref[i].s) < 1e-4);
    }
    search_results_release(&r);
    /* one document of the big index: its rows only, found in every part */
    char small[3][UUID_STR_LEN];
    for (int i = 0; i < 3; i++) {
        add_chunk(db, "u1", d2, i, "small", 0, NULL, small[i]);
        float v[4096];
        vec_at(qv.v, qv.dims, 0.1 * i, 50 + (unsigned)i, v);
        add_vec(db, "u1", d2, small[i], qv.embedder, v, qv.dims);
    }
    search_vectors_changed(s, "u1");
    CHECK_INT(run(s, "u1", q, SEARCH_VECTOR, d2, 10, &r), ==, 0);
    CHECK_INT(r.n, ==, 3);
    CHECK_STR(r.hits[0].chunk_id, small[2]);
    CHECK_STR(r.hits[2].chunk_id, small[0]);
    search_results_release(&r);
    free(ref);
    free(b.m);
    free(b.ids);
    ai_vectors_release(&qv);
    search_free(s);
    ai_free(ai);
    db_close(db);
}
