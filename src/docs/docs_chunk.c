/*
 * docs_chunk.c - framed text to chunks for search and citations.
 *
 * The framed text is first flattened into one clean text: headings become
 * paragraphs of their own, page breaks blank lines, runs of spaces (column
 * layout from pdftotext -layout) one space; where each page and heading
 * starts is remembered. ICU then splits the clean text into sentences once
 * (services/text), a sentence longer than a chunk is cut between words,
 * and sentences are packed into chunks with a little overlap.
 */
#include "docs/docs.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "services/parse/parse.h"
#include "services/text/text.h"

#include <string.h>

struct mark {
    size_t at; /* offset in the clean text */
    int value; /* page number, or heading index */
};

struct unit {
    size_t start, end; /* bytes of the clean text */
    int words;
    int page;
    int heading;     /* index into headings, -1 = none */
    bool is_heading; /* the heading's own line */
};

struct flat {
    struct buf text;
    struct mark *pages; /* where page N starts */
    size_t n_pages, cap_pages;
    struct mark *heads; /* where heading i starts (value = i) */
    size_t n_heads, cap_heads;
    char **heading_text;
};

static void flat_release(struct flat *f)
{
    buf_release(&f->text);
    for (size_t i = 0; i < f->n_heads; i++)
        xfree(f->heading_text[i]);
    xfree(f->heading_text);
    xfree(f->pages);
    xfree(f->heads);
}

static void add_page(struct flat *f, int page)
{
    if (f->n_pages == f->cap_pages) {
        f->cap_pages = f->cap_pages ? f->cap_pages * 2 : 64;
        f->pages = xrealloc(f->pages, f->cap_pages * sizeof(*f->pages));
    }
    f->pages[f->n_pages++] = (struct mark){f->text.len, page};
}

static int add_heading(struct flat *f, const char *p, size_t n)
{
    if (f->n_heads == f->cap_heads) {
        f->cap_heads = f->cap_heads ? f->cap_heads * 2 : 32;
        f->heads = xrealloc(f->heads, f->cap_heads * sizeof(*f->heads));
        f->heading_text = xrealloc(f->heading_text, f->cap_heads * sizeof(char *));
    }
    f->heads[f->n_heads] = (struct mark){f->text.len, (int)f->n_heads};
    f->heading_text[f->n_heads] = xstrndup(p, n);
    f->n_heads++;
    int rc = buf_append(&f->text, p, n);
    return rc ? rc : buf_append(&f->text, "\n\n", 2);
}

/* Append a line of body text with leading and trailing blanks dropped and
 * runs of blanks (column layout) collapsed to one space. */
static int add_body(struct flat *f, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    int rc = LOCI_OK;
    while (i < n && rc == LOCI_OK) {
        size_t k = i;
        while (k < n && p[k] != ' ' && p[k] != '\t')
            k++;
        rc = buf_append(&f->text, p + i, k - i);
        while (k < n && (p[k] == ' ' || p[k] == '\t'))
            k++;
        if (rc == LOCI_OK && k < n)
            rc = buf_append_char(&f->text, ' ');
        i = k;
    }
    return rc;
}

static int flatten(const char *in, size_t n, struct flat *f, int *out_pages)
{
    buf_init(&f->text, n + n / 4 + 64);
    int page = 1, rc = LOCI_OK;
    bool has_pages = memchr(in, PARSE_PAGE_BREAK, n) != NULL;
    if (has_pages)
        add_page(f, 1);
    size_t i = 0;
    while (i < n && rc == LOCI_OK) {
        const char *s = in + i;
        size_t left = n - i;
        size_t len = 0;
        while (len < left && s[len] != '\n' && s[len] != PARSE_PAGE_BREAK)
            len++;
        if (len >= 2 && s[0] == PARSE_HEADING && s[1] >= '1' && s[1] <= '6') {
            if (f->text.len && f->text.p[f->text.len - 1] != '\n')
                rc = buf_append_str(&f->text, "\n\n");
            rc = rc ? rc : add_heading(f, s + 2, len - 2);
        } else {
            rc = add_body(f, s, len);
        }
        if (rc == LOCI_OK && len < left) {
            if (s[len] == PARSE_PAGE_BREAK) {
                rc = buf_append_str(&f->text, "\n\n");
                page++;
                if (len + 1 < left) /* a page follows */
                    add_page(f, page);
            } else {
                rc = buf_append_char(&f->text, '\n');
            }
        }
        i += len + (len < left ? 1 : 0);
    }
    *out_pages = has_pages ? page - 1 : 0;
    return rc;
}

static bool is_word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Words: runs of non-space bytes holding a letter or digit. */
static int count_words(const char *p, size_t n)
{
    int words = 0;
    bool in_run = false, has_word = false;
    for (size_t i = 0; i < n; i++) {
        if (is_space(p[i])) {
            words += in_run && has_word;
            in_run = has_word = false;
        } else {
            in_run = true;
            has_word = has_word || is_word_byte((unsigned char)p[i]);
        }
    }
    return words + (in_run && has_word);
}

struct units {
    struct unit *v;
    size_t n, cap;
};

static void push(struct units *u, struct unit x)
{
    if (u->n == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 256;
        u->v = xrealloc(u->v, u->cap * sizeof(*u->v));
    }
    u->v[u->n++] = x;
}

/* A sentence into units of at most max words, cut at spaces. */
static void push_sentence(struct units *u, const char *text, struct unit s, int max)
{
    if (s.words <= max) {
        push(u, s);
        return;
    }
    size_t start = s.start;
    int words = 0;
    bool in_run = false, has_word = false;
    for (size_t i = s.start; i < s.end; i++) {
        if (is_space(text[i])) {
            if (in_run && has_word && ++words == max) {
                struct unit piece = s;
                piece.start = start;
                piece.end = i;
                piece.words = words;
                push(u, piece);
                s.is_heading = false;
                while (i < s.end && is_space(text[i]))
                    i++;
                start = i;
                words = 0;
                i--;
            }
            in_run = has_word = false;
        } else {
            in_run = true;
            has_word = has_word || is_word_byte((unsigned char)text[i]);
        }
    }
    if (start < s.end) {
        struct unit piece = s;
        piece.start = start;
        piece.words = count_words(text + start, s.end - start);
        push(u, piece);
    }
}

static int emit(const struct flat *f, const struct unit *v, size_t from, size_t to,
                struct docs_chunks *out, size_t *cap)
{
    size_t a = v[from].start, b = v[to - 1].end;
    while (a < b && is_space(f->text.p[a]))
        a++;
    while (b > a && is_space(f->text.p[b - 1]))
        b--;
    if (a == b)
        return LOCI_OK;
    if (out->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        out->items = xrealloc(out->items, *cap * sizeof(*out->items));
    }
    struct docs_chunk *c = &out->items[out->n++];
    c->text = xstrndup(f->text.p + a, b - a);
    c->page = v[from].page;
    c->heading = v[from].heading >= 0 ? xstrdup(f->heading_text[v[from].heading]) : NULL;
    c->words = 0;
    for (size_t i = from; i < to; i++)
        c->words += v[i].words;
    return LOCI_OK;
}

int docs_chunk(const char *text, size_t n, const struct docs_chunk_opts *opts,
               struct docs_chunks *out)
{
    memset(out, 0, sizeof(*out));
    struct docs_chunk_opts o = {100, 400, 300, 40};
    if (opts) {
        if (opts->min_words > 0)
            o.min_words = opts->min_words;
        if (opts->max_words > 0)
            o.max_words = opts->max_words;
        if (opts->target_words > 0)
            o.target_words = opts->target_words;
        if (opts->overlap_words >= 0)
            o.overlap_words = opts->overlap_words;
    }
    if (o.target_words > o.max_words)
        o.target_words = o.max_words;
    struct flat f;
    memset(&f, 0, sizeof(f));
    struct text_doc doc;
    memset(&doc, 0, sizeof(doc));
    struct units u = {0};
    int rc = flatten(text, n, &f, &out->pages);
    if (rc == LOCI_OK && f.text.len > 0)
        rc = text_segment(f.text.p, f.text.len, TEXT_SEG_SENTENCES, &doc);
    size_t pi = 0, hi = 0;
    for (size_t i = 0; rc == LOCI_OK && i < doc.n_sentences; i++) {
        const struct text_sentence *s = &doc.sentences[i];
        while (pi + 1 < f.n_pages && f.pages[pi + 1].at <= s->start)
            pi++;
        while (hi < f.n_heads && f.heads[hi].at <= s->start)
            hi++;
        struct unit x = {
            .start = s->start,
            .end = s->end,
            .words = count_words(f.text.p + s->start, s->end - s->start),
            .page = f.n_pages ? f.pages[pi].value : 0,
            .heading = (int)hi - 1,
            .is_heading = hi > 0 && f.heads[hi - 1].at == s->start,
        };
        push_sentence(&u, f.text.p, x, o.max_words);
    }
    size_t cap = 0, i = 0;
    while (rc == LOCI_OK && i < u.n) {
        size_t j = i;
        int words = 0;
        while (j < u.n) {
            const struct unit *x = &u.v[j];
            if (j > i && x->is_heading && words >= o.min_words)
                break;
            /* a chunk stays on one page, so a citation names the page */
            if (j > i && x->page != u.v[i].page)
                break;
            if (j > i && words + x->words > o.max_words)
                break;
            words += x->words;
            j++;
            if (words >= o.target_words)
                break;
        }
        rc = emit(&f, u.v, i, j, out, &cap);
        if (j >= u.n)
            break;
        /* Overlap: whole sentences from the end of this chunk, within a
         * section, never so much that the next sentence would not fit. */
        size_t k = j;
        int ov = 0;
        if (!u.v[j].is_heading) {
            while (k - 1 > i && ov < o.overlap_words && !u.v[k - 1].is_heading &&
                   u.v[k - 1].page == u.v[j].page && ov + u.v[k - 1].words <= o.max_words / 2) {
                k--;
                ov += u.v[k].words;
            }
            /* the next chunk must take sentence j, so it moves on */
            if (ov >= o.target_words || ov + u.v[j].words > o.max_words)
                k = j;
        }
        i = k;
    }
    if (rc)
        docs_chunks_release(out);
    xfree(u.v);
    text_doc_release(&doc);
    flat_release(&f);
    return rc;
}

void docs_chunks_release(struct docs_chunks *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        xfree(c->items[i].text);
        xfree(c->items[i].heading);
    }
    xfree(c->items);
    c->items = NULL;
    c->n = 0;
}
