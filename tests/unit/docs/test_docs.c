/*
 * test_docs.c - documents: chunking (sizes, overlap, pages, headings, long
 * sentences), and on SQLite and PostgreSQL the whole life of a document:
 * upload streamed in pieces, refusals (size, quota, empty, type,
 * duplicate), processing into chunks, vectors, full text, summary and
 * graph, another user seeing nothing, cancel, reprocess, a failed parse,
 * delete leaving no row or blob behind, and `loci import` of a folder of
 * notes with wikilinks, run twice.
 */
#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "docs/docs.h"
#include "harness.h"
#include "search/search.h"
#include "services/ai/ai.h"
#include "services/blob/blob.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- chunking ---- */

/* n sentences of ten words each, numbered so overlap can be seen. */
static void sentences(struct buf *b, int from, int n)
{
    for (int i = from; i < from + n; i++)
        buf_printf(b, "Sentence %d talks about cells and energy in the living body. ", i);
}

static int words_of(const char *s)
{
    int n = 0;
    bool in = false;
    for (; *s; s++) {
        bool sp = *s == ' ' || *s == '\n' || *s == '\t';
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

TEST(chunk_sizes_and_overlap)
{
    struct buf b;
    buf_init(&b, 1 << 22);
    sentences(&b, 0, 200); /* 2200 words */
    struct docs_chunks cs;
    CHECK_INT(docs_chunk(b.p, b.len, NULL, &cs), ==, LOCI_OK);
    CHECK(cs.n >= 6 && cs.n <= 9);
    CHECK_INT(cs.pages, ==, 0);
    for (size_t i = 0; i < cs.n; i++) {
        int w = words_of(cs.items[i].text);
        CHECK_INT(w, ==, cs.items[i].words);
        CHECK(w <= 400);
        if (i + 1 < cs.n)
            CHECK(w >= 200);
        CHECK_INT(cs.items[i].page, ==, 0);
        CHECK(cs.items[i].heading == NULL);
        /* whole sentences only */
        CHECK(strncmp(cs.items[i].text, "Sentence ", 9) == 0);
        CHECK(cs.items[i].text[strlen(cs.items[i].text) - 1] == '.');
    }
    /* the next chunk starts with sentences the previous one ended with */
    for (size_t i = 0; i + 1 < cs.n; i++) {
        char first[32];
        snprintf(first, sizeof(first), "%.*s",
                 (int)(strchr(cs.items[i + 1].text + 9, ' ') - cs.items[i + 1].text),
                 cs.items[i + 1].text);
        const char *at = strstr(cs.items[i].text, first);
        CHECK(at != NULL && at != cs.items[i].text);
        CHECK(words_of(at) >= 30 && words_of(at) <= 80);
    }
    docs_chunks_release(&cs);

    /* no overlap when asked for none; nothing from nothing */
    struct docs_chunk_opts o = {.overlap_words = 0};
    CHECK_INT(docs_chunk(b.p, b.len, &o, &cs), ==, LOCI_OK);
    int total = 0;
    for (size_t i = 0; i < cs.n; i++)
        total += cs.items[i].words;
    CHECK_INT(total, ==, 2200); /* 200 sentences of 11 words */
    docs_chunks_release(&cs);
    CHECK_INT(docs_chunk(" \n\f \n", 5, NULL, &cs), ==, LOCI_OK);
    CHECK_INT(cs.n, ==, 0);
    docs_chunks_release(&cs);
    buf_release(&b);
}

TEST(chunk_pages_and_headings)
{
    struct buf b;
    buf_init(&b, 1 << 22);
    /* three PDF pages of 250 words, laid out in columns */
    for (int p = 0; p < 3; p++) {
        for (int i = 0; i < 25; i++)
            buf_printf(&b, "Page%d    line %d   has   several   words   in a   row.\n", p + 1, i);
        buf_append_char(&b, '\f');
    }
    struct docs_chunks cs;
    CHECK_INT(docs_chunk(b.p, b.len, NULL, &cs), ==, LOCI_OK);
    CHECK_INT(cs.pages, ==, 3);
    CHECK_INT(cs.items[0].page, ==, 1);
    CHECK(strstr(cs.items[0].text, "   ") == NULL); /* columns collapsed */
    int last = 0;
    for (size_t i = 0; i < cs.n; i++) {
        char want[16];
        snprintf(want, sizeof(want), "Page%d", cs.items[i].page);
        CHECK(strncmp(cs.items[i].text, want, strlen(want)) == 0); /* starts on its page */
        CHECK(cs.items[i].page >= last);
        last = cs.items[i].page;
    }
    CHECK_INT(last, ==, 3);
    docs_chunks_release(&cs);

    /* sections: a heading starts a chunk once the current one is big enough */
    buf_reset(&b);
    buf_append_str(&b, "\x01"
                       "1Cells\n");
    sentences(&b, 0, 15);
    buf_append_str(&b, "\n\x01"
                       "2Mitochondria\n");
    sentences(&b, 100, 3); /* a short section: joins the next one */
    buf_append_str(&b, "\n\x01"
                       "2Ribosomes\n");
    sentences(&b, 200, 15);
    CHECK_INT(docs_chunk(b.p, b.len, NULL, &cs), ==, LOCI_OK);
    CHECK_INT(cs.n, ==, 2);
    CHECK_STR(cs.items[0].heading, "Cells");
    CHECK(strncmp(cs.items[0].text, "Cells\n", 6) == 0);
    CHECK_STR(cs.items[1].heading, "Mitochondria");
    CHECK(strstr(cs.items[1].text, "Ribosomes") != NULL);
    CHECK(strstr(cs.items[1].text, "Sentence 14 ") == NULL); /* no overlap across sections */
    docs_chunks_release(&cs);

    /* one endless sentence is cut between words */
    buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "w%d ", i);
    CHECK_INT(docs_chunk(b.p, b.len, NULL, &cs), ==, LOCI_OK);
    CHECK(cs.n >= 3);
    for (size_t i = 0; i < cs.n; i++)
        CHECK(cs.items[i].words <= 400);
    docs_chunks_release(&cs);
    buf_release(&b);
}

TEST(filenames_are_sanitised)
{
    char out[DOCS_FILENAME_MAX + 1];
    docs_sanitize_filename("../../etc/passwd", out);
    CHECK_STR(out, "passwd");
    docs_sanitize_filename("C:\\Users\\me\\notes.pdf", out);
    CHECK_STR(out, "notes.pdf");
    docs_sanitize_filename("..", out);
    CHECK_STR(out, "document");
    docs_sanitize_filename("", out);
    CHECK_STR(out, "document");
    docs_sanitize_filename(NULL, out);
    CHECK_STR(out, "document");
    docs_sanitize_filename("a\"b;c\r\nd\x01.md", out);
    CHECK_STR(out, "abc d.md");
    docs_sanitize_filename(".hidden. ", out);
    CHECK_STR(out, "hidden");
    char longname[600];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    docs_sanitize_filename(longname, out);
    CHECK_INT(strlen(out), ==, DOCS_FILENAME_MAX);
}

/* ---- the life of a document ---- */

struct env {
    struct db *db;
    struct ai *ai;
    struct blob_store *blobs;
    struct search *search;
    struct docs *docs;
    char blob_dir[512];
};

static void exec_sql(struct db *db, const char *sql)
{
    struct db_conn *c;
    CHECK_INT(db_acquire(db, &c), ==, 0);
    if (db_exec(c, sql))
        harness_fail(__FILE__, __LINE__, "%s: %s", sql, db_errmsg(c));
    db_release(c);
}

static int64_t count(struct db *db, const char *sql, const char *arg)
{
    struct db_conn *c;
    CHECK_INT(db_acquire(db, &c), ==, 0);
    struct db_stmt *st;
    if (db_prepare(c, sql, &st))
        harness_fail(__FILE__, __LINE__, "%s: %s", sql, db_errmsg(c));
    if (arg)
        db_bind_text(st, 1, arg, (size_t)-1);
    int64_t v = db_step(st) == LOCI_ROW ? db_col_int64(st, 0) : -1;
    db_stmt_done(st);
    db_release(c);
    return v;
}

static void env_open(struct env *e, const char *url, int64_t quota)
{
    memset(e, 0, sizeof(*e));
    char err[256];
    if (db_open(url, 6, &e->db, err, sizeof(err)) || db_migrate(e->db, &(int){0}, err, sizeof(err)))
        harness_fail(__FILE__, __LINE__, "db: %s", err);
    exec_sql(e->db, "INSERT INTO users (id, email, email_norm, password_hash, created_at, "
                    "updated_at) VALUES ('u1', 'a@x', 'a@x', 'h', 0, 0), "
                    "('u2', 'b@x', 'b@x', 'h', 0, 0)");
    struct config cfg;
    config_init(&cfg);
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), ==, 0);
    if (ai_new(&cfg, NULL, &e->ai, err, sizeof(err)))
        harness_fail(__FILE__, __LINE__, "ai_new: %s", err);
    config_release(&cfg);
    snprintf(e->blob_dir, sizeof(e->blob_dir), "%s/blobs", harness_tmpdir());
    CHECK_INT(blob_local_new(e->blob_dir, &e->blobs), ==, LOCI_OK);
    e->search = search_new(e->db, e->ai, 1 << 20);
    struct docs_opts o = {
        .db = e->db,
        .ai = e->ai,
        .search = e->search,
        .blobs = e->blobs,
        .max_bytes = 100000,
        .quota_bytes = quota,
        .max_pages = 200,
        .parse_timeout_ms = 10000,
        .parse_memory_mb = 512,
    };
    e->docs = docs_new(&o);
}

static void env_close(struct env *e)
{
    docs_free(e->docs);
    search_free(e->search);
    blob_store_free(e->blobs);
    ai_free(e->ai);
    db_close(e->db);
}

/* Upload bytes in pieces of 7; returns the result and fills out/why. */
static int upload(struct env *e, const char *user, const char *name, const char *type,
                  const char *p, size_t n, json_t **out, struct docs_error *why)
{
    struct docs_upload *u = NULL;
    CHECK_INT(docs_upload_new(e->docs, user, &u), ==, LOCI_OK);
    int rc = docs_upload_file(u, name, type);
    CHECK_INT(rc, ==, LOCI_OK);
    for (size_t off = 0; off < n && rc == LOCI_OK; off += 7)
        rc = docs_upload_write(u, p + off, n - off < 7 ? n - off : 7, why);
    if (rc == LOCI_OK)
        rc = docs_upload_finish(u, out, why);
    else
        CHECK_INT(docs_upload_finish(u, out, why), ==, rc); /* the refusal sticks */
    docs_upload_free(u);
    return rc;
}

static const char *str_of(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *get(struct env *e, const char *user, const char *id)
{
    struct db_conn *c;
    CHECK_INT(db_acquire(e->db, &c), ==, 0);
    json_t *out = NULL;
    int rc = docs_get(c, user, id, &out);
    db_release(c);
    return rc ? NULL : out;
}

static size_t blob_files(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "find '%s' -type f -not -path '*/blobs/tmp/*' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    size_t n = 0;
    if (f) {
        if (fscanf(f, "%zu", &n) != 1)
            n = 999;
        pclose(f);
    }
    return n;
}

static const char *NOTE = "---\n"
                          "title: Cell Biology\n"
                          "---\n"
                          "# Cells\n"
                          "Mitochondria produce most of the chemical energy of the cell. "
                          "They are often called the powerhouse of the cell.\n"
                          "## Ribosomes\n"
                          "Ribosomes translate messenger RNA into proteins. Proteins fold into "
                          "shapes that decide what they do.\n";

static void life_of_a_document(const char *url)
{
    struct env e;
    env_open(&e, url, 1000000);
    json_t *doc = NULL;
    struct docs_error why;
    memset(&why, 0, sizeof(why));
    CHECK_INT(
        upload(&e, "u1", "../notes/cells.md", "text/markdown", NOTE, strlen(NOTE), &doc, &why), ==,
        LOCI_OK);
    char id[UUID_STR_LEN];
    snprintf(id, sizeof(id), "%s", str_of(doc, "id"));
    CHECK_STR(str_of(doc, "status"), "queued");
    CHECK_STR(str_of(doc, "filename"), "cells.md");
    CHECK_STR(str_of(doc, "media_type"), "text/markdown");
    CHECK_STR(str_of(doc, "source"), "upload");
    CHECK(str_of(doc, "job_id") != NULL);
    CHECK_INT(json_integer_value(json_object_get(doc, "size_bytes")), ==, strlen(NOTE));
    json_decref(doc);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM jobs WHERE type = 'docs.process'", NULL), ==, 1);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM events WHERE type = 'document.created'", NULL), ==,
              1);
    CHECK_INT(blob_files(e.blob_dir), ==, 1);

    /* the same bytes again: the existing document */
    CHECK_INT(upload(&e, "u1", "copy.md", NULL, NOTE, strlen(NOTE), &doc, &why), ==,
              LOCI_ECONFLICT);
    CHECK_STR(why.code, "duplicate");
    CHECK_STR(why.existing_id, id);
    /* another user may upload the same bytes: their own document, one blob */
    char other_id[UUID_STR_LEN];
    CHECK_INT(upload(&e, "u2", "mine.md", NULL, NOTE, strlen(NOTE), &doc, &why), ==, LOCI_OK);
    snprintf(other_id, sizeof(other_id), "%s", str_of(doc, "id"));
    json_decref(doc);
    CHECK_INT(blob_files(e.blob_dir), ==, 1);

    /* process */
    CHECK_INT(docs_process_now(e.docs, "u1", id, NULL, NULL), ==, LOCI_OK);
    doc = get(&e, "u1", id);
    CHECK(doc != NULL);
    CHECK_STR(str_of(doc, "status"), "done");
    CHECK_STR(str_of(doc, "title"), "Cell Biology");
    CHECK(str_of(doc, "summary") && strlen(str_of(doc, "summary")) > 10);
    CHECK(str_of(doc, "root_node_id") != NULL);
    CHECK(json_is_null(json_object_get(doc, "pages")));
    CHECK(json_real_value(json_object_get(doc, "progress")) == 1.0);
    int64_t chunks = json_integer_value(json_object_get(doc, "chunk_count"));
    CHECK(chunks >= 1);
    CHECK(json_is_integer(json_object_get(json_object_get(doc, "timings"), "parse_ms")));
    CHECK(json_is_integer(json_object_get(json_object_get(doc, "timings"), "index_ms")));
    char root[UUID_STR_LEN];
    snprintf(root, sizeof(root), "%s", str_of(doc, "root_node_id"));
    json_decref(doc);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunks WHERE document_id = ?", id), ==, chunks);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunk_vectors WHERE document_id = ?", id), ==,
              chunks);
    CHECK_INT(
        count(e.db, "SELECT COUNT(*) FROM chunks WHERE document_id = ? AND heading = 'Cells'", id),
        ==, 1);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM nodes WHERE id = ? AND is_root = 1", root), ==, 1);
    CHECK(count(e.db, "SELECT COUNT(*) FROM edges WHERE src = ? OR dst = ?", root) != 0 ||
          count(e.db, "SELECT COUNT(*) FROM nodes WHERE user_id = 'u1'", NULL) >= 1);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM events WHERE type = 'document.indexed'", NULL), ==,
              1);
    struct search_results sr;
    CHECK_INT(search_run(e.search, "u1", "mitochondria", SEARCH_FTS, NULL, 5, &sr), ==, LOCI_OK);
    CHECK_INT(sr.n, >=, 1);
    CHECK_STR(sr.hits[0].document_id, id);
    search_results_release(&sr);
    CHECK_INT(search_run(e.search, "u2", "mitochondria", SEARCH_FTS, NULL, 5, &sr), ==, LOCI_OK);
    CHECK_INT(sr.n, ==, 0); /* u2's copy is not processed, and u1's is not theirs */
    search_results_release(&sr);

    /* another user sees nothing */
    CHECK(get(&e, "u2", id) == NULL);
    int fd = -1;
    uint64_t size = 0;
    char media[64], fname[DOCS_FILENAME_MAX + 1];
    CHECK_INT(docs_open_file(e.docs, "u2", id, &fd, &size, media, fname), ==, LOCI_ENOTFOUND);
    CHECK_INT(docs_delete(e.docs, "u2", id), ==, LOCI_ENOTFOUND);
    CHECK_INT(docs_reprocess(e.docs, "u2", id, &doc, &why), ==, LOCI_ENOTFOUND);
    CHECK_INT(docs_cancel(e.docs, "u2", id, &doc, &why), ==, LOCI_ENOTFOUND);

    /* the file, byte for byte */
    CHECK_INT(docs_open_file(e.docs, "u1", id, &fd, &size, media, fname), ==, LOCI_OK);
    CHECK_INT(size, ==, strlen(NOTE));
    char back[1024];
    CHECK_INT(read(fd, back, sizeof(back)), ==, (long long)strlen(NOTE));
    close(fd);
    CHECK(memcmp(back, NOTE, strlen(NOTE)) == 0);
    CHECK_STR(media, "text/markdown");
    CHECK_STR(fname, "cells.md");

    /* a list, newest first, paged and filtered */
    struct db_conn *c;
    CHECK_INT(db_acquire(e.db, &c), ==, 0);
    json_t *page = NULL;
    CHECK_INT(docs_list(c, "u1", NULL, NULL, 10, &page), ==, LOCI_OK);
    CHECK_INT(json_array_size(json_object_get(page, "items")), ==, 1);
    CHECK(json_is_null(json_object_get(page, "next_cursor")));
    json_decref(page);
    CHECK_INT(docs_list(c, "u1", "failed", NULL, 10, &page), ==, LOCI_OK);
    CHECK_INT(json_array_size(json_object_get(page, "items")), ==, 0);
    json_decref(page);
    CHECK_INT(docs_list(c, "u1", "bogus", NULL, 10, &page), ==, LOCI_EINVAL);
    CHECK_INT(docs_list(c, "u1", NULL, other_id, 10, &page), ==, LOCI_EUNPROCESSABLE);
    db_release(c);

    /* cancel: only while processing; reprocess: only when not */
    CHECK_INT(docs_cancel(e.docs, "u1", id, &doc, &why), ==, LOCI_ECONFLICT);
    CHECK_STR(why.code, "not_processing");
    CHECK_INT(docs_reprocess(e.docs, "u1", id, &doc, &why), ==, LOCI_OK);
    CHECK_STR(str_of(doc, "status"), "queued");
    json_decref(doc);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunks WHERE document_id = ?", id), ==,
              chunks); /* the old index serves meanwhile */
    CHECK_INT(docs_reprocess(e.docs, "u1", id, &doc, &why), ==, LOCI_ECONFLICT);
    CHECK_STR(why.code, "processing");
    CHECK_INT(docs_cancel(e.docs, "u1", id, &doc, &why), ==, LOCI_OK);
    CHECK_STR(str_of(doc, "status"), "cancelled");
    CHECK_STR(str_of(doc, "error_code"), "cancelled");
    json_decref(doc);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunks WHERE document_id = ?", id), ==, 0);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM jobs WHERE status = 'cancelled'", NULL), ==, 1);
    CHECK_INT(docs_process_now(e.docs, "u1", id, NULL, NULL), ==, LOCI_OK); /* stale: nothing */
    doc = get(&e, "u1", id);
    CHECK_STR(str_of(doc, "status"), "cancelled");
    json_decref(doc);
    CHECK_INT(docs_reprocess(e.docs, "u1", id, &doc, &why), ==, LOCI_OK);
    json_decref(doc);
    CHECK_INT(docs_process_now(e.docs, "u1", id, NULL, NULL), ==, LOCI_OK);
    doc = get(&e, "u1", id);
    CHECK_STR(str_of(doc, "status"), "done");
    CHECK(json_is_null(json_object_get(doc, "error_code")));
    json_decref(doc);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunks WHERE document_id = ?", id), ==, chunks);

    /* a long document: chunks and vectors go in several rows per statement */
    struct buf longtext;
    buf_init(&longtext, 1 << 20);
    sentences(&longtext, 0, 330); /* 3630 words: about a dozen chunks */
    CHECK_INT(upload(&e, "u1", "long.txt", NULL, longtext.p, longtext.len, &doc, &why), ==,
              LOCI_OK);
    char long_id[UUID_STR_LEN];
    snprintf(long_id, sizeof(long_id), "%s", str_of(doc, "id"));
    json_decref(doc);
    buf_release(&longtext);
    CHECK_INT(docs_process_now(e.docs, "u1", long_id, NULL, NULL), ==, LOCI_OK);
    doc = get(&e, "u1", long_id);
    CHECK_STR(str_of(doc, "status"), "done");
    int64_t long_chunks = json_integer_value(json_object_get(doc, "chunk_count"));
    json_decref(doc);
    CHECK(long_chunks >= 9 && long_chunks % 8 != 0); /* whole batches and a rest */
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunks WHERE document_id = ?", long_id), ==,
              long_chunks);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunk_vectors WHERE document_id = ?", long_id), ==,
              long_chunks);
    CHECK_INT(count(e.db, "SELECT COUNT(DISTINCT ord) FROM chunks WHERE document_id = ?", long_id),
              ==, long_chunks);
    if (strncmp(url, "sqlite", 6) == 0)
        CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunks_fts WHERE document_id = ?", long_id), ==,
                  long_chunks);
    CHECK_INT(docs_delete(e.docs, "u1", long_id), ==, LOCI_OK);

    /* a PDF of 80 pages: chunked and embedded page by page while it is parsed */
    char texts[80][64];
    const char *pages[80];
    for (int i = 0; i < 80; i++) {
        snprintf(texts[i], sizeof(texts[i]), "Page %d is about enzyme number %d.", i + 1, i + 1);
        pages[i] = texts[i];
    }
    struct buf pdf;
    buf_init(&pdf, 1 << 20);
    harness_make_pdf(pages, 80, &pdf);
    CHECK_INT(upload(&e, "u1", "enzymes.pdf", "application/pdf", pdf.p, pdf.len, &doc, &why), ==,
              LOCI_OK);
    buf_release(&pdf);
    char pdf_id[UUID_STR_LEN];
    snprintf(pdf_id, sizeof(pdf_id), "%s", str_of(doc, "id"));
    json_decref(doc);
    CHECK_INT(docs_process_now(e.docs, "u1", pdf_id, NULL, NULL), ==, LOCI_OK);
    doc = get(&e, "u1", pdf_id);
    CHECK_STR(str_of(doc, "status"), "done");
    CHECK_INT(json_integer_value(json_object_get(doc, "pages")), ==, 80);
    CHECK_INT(json_integer_value(json_object_get(doc, "chunk_count")), ==, 80);
    CHECK(str_of(doc, "summary") && strstr(str_of(doc, "summary"), "enzyme") != NULL);
    CHECK(str_of(doc, "root_node_id") != NULL);
    json_decref(doc);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunk_vectors WHERE document_id = ?", pdf_id), ==,
              80);
    CHECK_INT(
        count(e.db, "SELECT COUNT(*) FROM chunks WHERE document_id = ? AND page = ord + 1", pdf_id),
        ==, 80);
    CHECK_INT(count(e.db,
                    "SELECT COUNT(*) FROM chunks WHERE document_id = ? AND ord = 41 AND text = "
                    "'Page 42 is about enzyme number 42.'",
                    pdf_id),
              ==, 1);
    CHECK_INT(docs_delete(e.docs, "u1", pdf_id), ==, LOCI_OK);

    /* delete: u1's rows go, the blob stays while u2 holds the same bytes */
    CHECK_INT(docs_delete(e.docs, "u1", id), ==, LOCI_OK);
    CHECK(get(&e, "u1", id) == NULL);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunks WHERE document_id = ?", id), ==, 0);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunk_vectors WHERE document_id = ?", id), ==, 0);
    if (strncmp(url, "sqlite", 6) == 0)
        CHECK_INT(count(e.db, "SELECT COUNT(*) FROM chunks_fts WHERE document_id = ?", id), ==, 0);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM events WHERE type = 'document.deleted'", NULL), ==,
              3); /* the long one, the PDF, then this one */
    CHECK_INT(blob_files(e.blob_dir), ==, 1);
    CHECK_INT(docs_delete(e.docs, "u1", id), ==, LOCI_ENOTFOUND);
    CHECK_INT(docs_delete(e.docs, "u2", other_id), ==, LOCI_OK);
    CHECK_INT(blob_files(e.blob_dir), ==, 0);
    env_close(&e);
}

static void refusals(const char *url)
{
    struct env e;
    env_open(&e, url, 3000);
    json_t *doc = NULL;
    struct docs_error why;
    char big[2500];
    memset(big, 'a', sizeof(big));
    /* the size cap is 100000, the quota 3000 */
    CHECK_INT(upload(&e, "u1", "a.txt", NULL, big, 2500, &doc, &why), ==, LOCI_OK);
    json_decref(doc);
    big[0] = 'b';
    CHECK_INT(upload(&e, "u1", "b.txt", NULL, big, 2500, &doc, &why), ==, LOCI_ETOOBIG);
    CHECK_STR(why.code, "quota_exceeded");
    CHECK_INT(upload(&e, "u2", "b.txt", NULL, big, 2500, &doc, &why), ==, LOCI_OK); /* per user */
    json_decref(doc);
    docs_free(e.docs);
    struct docs_opts o = {.db = e.db,
                          .ai = e.ai,
                          .blobs = e.blobs,
                          .max_bytes = 1000,
                          .quota_bytes = 1 << 30,
                          .parse_timeout_ms = 10000};
    e.docs = docs_new(&o);
    big[0] = 'c';
    CHECK_INT(upload(&e, "u1", "c.txt", NULL, big, 1001, &doc, &why), ==, LOCI_ETOOBIG);
    CHECK_STR(why.code, "payload_too_large");
    CHECK_INT(upload(&e, "u1", "e.txt", NULL, "", 0, &doc, &why), ==, LOCI_EUNPROCESSABLE);
    CHECK_STR(why.code, "empty_file");
    static const char zip[] = "PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00!\x00"
                              "abcdefghijklmnopqrstuvwxyz0123456789";
    CHECK_INT(upload(&e, "u1", "paper.pdf", "application/pdf", zip, sizeof(zip) - 1, &doc, &why),
              ==, LOCI_EMEDIATYPE);
    CHECK_STR(why.code, "type_mismatch");
    CHECK_INT(upload(&e, "u1", "x.zip", NULL, zip, sizeof(zip) - 1, &doc, &why), ==,
              LOCI_EMEDIATYPE);
    CHECK_STR(why.code, "unsupported_type");
    /* no file part at all */
    struct docs_upload *u = NULL;
    CHECK_INT(docs_upload_new(e.docs, "u1", &u), ==, LOCI_OK);
    CHECK_INT(docs_upload_finish(u, &doc, &why), ==, LOCI_EUNPROCESSABLE);
    CHECK_STR(why.code, "file_missing");
    docs_upload_free(u);
    /* two files in one request */
    CHECK_INT(docs_upload_new(e.docs, "u1", &u), ==, LOCI_OK);
    CHECK_INT(docs_upload_file(u, "a.txt", NULL), ==, LOCI_OK);
    CHECK_INT(docs_upload_file(u, "b.txt", NULL), ==, LOCI_EINVAL);
    docs_upload_free(u);
    /* refused uploads left no rows and no blobs behind */
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM documents", NULL), ==, 2);
    CHECK_INT(blob_files(e.blob_dir), ==, 2);

    /* a file that parses to nothing: failed, with its event */
    const char *hollow = "---\ntitle: x\n---\n\n<!-- nothing -->\n";
    CHECK_INT(upload(&e, "u1", "h.md", NULL, hollow, strlen(hollow), &doc, &why), ==, LOCI_OK);
    char id[UUID_STR_LEN];
    snprintf(id, sizeof(id), "%s", str_of(doc, "id"));
    json_decref(doc);
    CHECK_INT(docs_process_now(e.docs, "u1", id, NULL, NULL), ==, LOCI_OK);
    doc = get(&e, "u1", id);
    CHECK_STR(str_of(doc, "status"), "failed");
    CHECK_STR(str_of(doc, "error_code"), "empty_document");
    json_decref(doc);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM events WHERE type = 'document.failed'", NULL), ==,
              1);
    env_close(&e);
}

static void write_note(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0700);
    *slash = '/';
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

static int seen;
static void on_file(void *arg, int done, int total, const char *path, const char *what)
{
    (void)arg;
    (void)path;
    (void)what;
    CHECK(done >= 1 && done <= total);
    seen++;
}

static void import_vault(const char *url)
{
    struct env e;
    env_open(&e, url, 1 << 30);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/vault", harness_tmpdir());
    mkdir(dir, 0700);
    write_note(dir, "Photosynthesis.md",
               "---\ntitle: Photosynthesis\n---\nPlants turn light into sugar. It needs "
               "[[Chlorophyll]] and happens in the [[biology/Chloroplast|chloroplast]].\n");
    write_note(dir, "biology/Chloroplast.md",
               "# Chloroplast\nThe organelle where [[Photosynthesis]] takes place. It holds "
               "[[Chlorophyll]].\n");
    write_note(dir, ".obsidian/workspace.md", "not a note\n");
    write_note(dir, "image.png", "\x89PNG\r\n");
    struct docs_import_stats st;
    seen = 0;
    CHECK_INT(docs_import_dir(e.docs, "u1", dir, on_file, NULL, &st), ==, LOCI_OK);
    CHECK_INT(st.imported, ==, 2);
    CHECK_INT(st.unchanged, ==, 0);
    CHECK_INT(st.failed, ==, 0);
    CHECK_INT(seen, ==, 2);
    CHECK(st.links >= 3);
    CHECK_INT(count(e.db,
                    "SELECT COUNT(*) FROM documents WHERE source = 'import' AND status = 'done'",
                    NULL),
              ==, 2);
    CHECK_INT(count(e.db,
                    "SELECT COUNT(*) FROM documents WHERE source_path = 'biology/Chloroplast.md'",
                    NULL),
              ==, 1);
    /* the two notes' root nodes are linked */
    CHECK_INT(count(e.db,
                    "SELECT COUNT(*) FROM edges e JOIN documents a ON a.root_node_id = e.src "
                    "JOIN documents b ON b.root_node_id = e.dst WHERE a.source = 'import' AND "
                    "b.source = 'import'",
                    NULL),
              >=, 1);
    CHECK_INT(count(e.db,
                    "SELECT COUNT(*) FROM nodes WHERE key = 'chlorophyl' OR key = 'chlorophyll'",
                    NULL),
              ==, 1);

    /* again: nothing changed */
    CHECK_INT(docs_import_dir(e.docs, "u1", dir, NULL, NULL, &st), ==, LOCI_OK);
    CHECK_INT(st.imported, ==, 0);
    CHECK_INT(st.unchanged, ==, 2);
    CHECK_INT(st.links, ==, 0);
    /* one note changed: only it */
    write_note(dir, "biology/Chloroplast.md", "# Chloroplast\nGreen and full of [[Thylakoid]].\n");
    CHECK_INT(docs_import_dir(e.docs, "u1", dir, NULL, NULL, &st), ==, LOCI_OK);
    CHECK_INT(st.imported, ==, 1);
    CHECK_INT(st.unchanged, ==, 1);
    CHECK_INT(count(e.db, "SELECT COUNT(*) FROM documents WHERE source = 'import'", NULL), ==, 2);
    CHECK_INT(blob_files(e.blob_dir), ==, 2); /* the old version's bytes are gone */
    CHECK_INT(docs_import_dir(e.docs, "u1", "/nonexistent/vault", NULL, NULL, &st), ==,
              LOCI_ENOTFOUND);
    env_close(&e);
}

TEST(documents_on_every_backend)
{
    const char *urls[2];
    int n = harness_db_urls("docs", urls);
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "  backend %s\n", urls[i]);
        life_of_a_document(urls[i]);
        const char *more[2];
        harness_db_urls("docs_refusals", more);
        refusals(more[i]);
        harness_db_urls("docs_import", more);
        import_vault(more[i]);
    }
}
