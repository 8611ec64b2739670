/*
 * search_snip.c - snippets built in C: the window of a chunk that holds the
 * most of the query's words, the words in <mark>, the rest HTML-escaped.
 *
 * Used on SQLite for every hit: FTS5's snippet() needs a MATCH per chunk,
 * which opens every query term's doclist again (~150 us a hit at 100,000
 * chunks, most of a 10 ms budget for ten hits), and a vector hit need not
 * match the query at all. Words compare by their Snowball stems (the text
 * module's node-key rule), so "organelles" marks for "organelle" as the
 * full-text engine matched it. PostgreSQL hits get ts_headline, in the same
 * round trip that loads them.
 *
 * Not for: ranking (the engines rank).
 */
#include "search/search_int.h"

#include "core/alloc.h"
#include "core/err.h"
#include "services/text/text.h"

#include <string.h>
#include <utf8proc.h>

#define SNIP_WORDS  24 /* words in a snippet, like FTS5 snippet()'s 24 tokens */
#define SNIP_TOKENS 4096

struct tok {
    size_t start, end;
    int term; /* index of the query stem it matches, or -1 */
};

/* Which query stem the word p[0..n) has, or -1. The first byte rules out
 * most words before any stemming (stems of ASCII words start as the
 * lower-cased word does). */
static int word_term(const struct search__ftq *f, const char *p, size_t n, struct buf *key)
{
    unsigned char c0 = (unsigned char)p[0];
    if (c0 < 0x80) {
        if (c0 >= 'A' && c0 <= 'Z')
            c0 = (unsigned char)(c0 - 'A' + 'a');
        bool is_possible = false;
        for (size_t i = 0; i < f->n_stems && !is_possible; i++)
            is_possible = (unsigned char)f->stems[i][0] == c0;
        if (!is_possible)
            return -1;
    }
    buf_reset(key);
    if (text_term_key(p, n, key) != LOCI_OK)
        return -1;
    for (size_t i = 0; i < f->n_stems; i++)
        if (strlen(f->stems[i]) == key->len && memcmp(f->stems[i], key->p, key->len) == 0)
            return (int)i;
    return -1;
}

void search__ftq_stems(struct search__ftq *f)
{
    struct buf key;
    buf_init(&key, 256);
    for (size_t i = 0; i < f->n_terms && f->n_stems < SEARCH_TERMS_MAX; i++) {
        buf_reset(&key);
        if (text_term_key(f->terms[i], strlen(f->terms[i]), &key) == LOCI_OK && key.len > 0 &&
            !strchr(key.p, ' '))
            f->stems[f->n_stems++] = xstrndup(key.p, key.len);
    }
    buf_release(&key);
}

static size_t tokenize(const char *text, size_t n, const struct search__ftq *f, struct tok *toks,
                       size_t max)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    struct buf key;
    buf_init(&key, 1024);
    size_t nt = 0, i = 0, start = 0;
    bool in_word = false;
    while (i <= n && nt < max) {
        utf8proc_int32_t cp = -1;
        utf8proc_ssize_t len = 1;
        if (i < n) {
            len = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
            if (len < 1) {
                len = 1;
                cp = -1;
            }
        }
        bool is_word = cp >= 0 && search__is_word_char(cp);
        if (is_word && !in_word) {
            start = i;
            in_word = true;
        } else if (!is_word && in_word) {
            toks[nt].start = start;
            toks[nt].end = i;
            toks[nt].term = f->n_stems ? word_term(f, text + start, i - start, &key) : -1;
            nt++;
            in_word = false;
        }
        i += (size_t)len;
    }
    buf_release(&key);
    return nt;
}

/* The first token of the best window of w tokens: most distinct query
 * words, then most marked words, then earliest; moved so that its marked
 * words sit in the middle (all of them still inside). */
static size_t best_window(const struct tok *t, size_t nt, size_t w, size_t n_terms)
{
    if (nt <= w || n_terms == 0)
        return 0;
    unsigned count[SEARCH_TERMS_MAX] = {0};
    size_t distinct = 0, marked = 0, best = 0, best_distinct = 0, best_marked = 0;
    for (size_t i = 0; i < nt; i++) {
        if (t[i].term >= 0) {
            marked++;
            if (count[t[i].term]++ == 0)
                distinct++;
        }
        if (i >= w && t[i - w].term >= 0) {
            marked--;
            if (--count[t[i - w].term] == 0)
                distinct--;
        }
        if (i + 1 >= w &&
            (distinct > best_distinct || (distinct == best_distinct && marked > best_marked))) {
            best = i + 1 - w;
            best_distinct = distinct;
            best_marked = marked;
        }
    }
    if (best_marked == 0)
        return 0;
    size_t first = best, last = best + w - 1;
    while (t[first].term < 0)
        first++;
    while (t[last].term < 0)
        last--;
    size_t mid = (first + last) / 2;
    size_t start = mid > w / 2 ? mid - w / 2 : 0;
    if (start + w - 1 < last)
        start = last + 1 - w;
    if (start > first)
        start = first;
    if (start + w > nt)
        start = nt - w;
    return start;
}

/* Append p[0..n) without the bytes that stand for marks. */
static int append_plain(struct buf *b, const char *p, size_t n)
{
    int rc = LOCI_OK;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\x01' || p[i] == '\x02') {
            rc |= buf_append(b, p + run, i - run);
            run = i + 1;
        }
    }
    rc |= buf_append(b, p + run, n - run);
    return rc;
}

char *search__snippet_for(const char *text, size_t n, const struct search__ftq *f)
{
    struct tok *toks = xmalloc(SNIP_TOKENS * sizeof(*toks));
    size_t nt = tokenize(text, n, f, toks, SNIP_TOKENS);
    char *out = NULL;
    if (nt == 0) {
        out = search__excerpt_html(text, n, SNIP_WORDS);
        goto done;
    }
    size_t first = best_window(toks, nt, SNIP_WORDS, f->n_stems);
    size_t last = first + SNIP_WORDS < nt ? first + SNIP_WORDS : nt; /* exclusive */
    /* Marks as \x01 ... \x02 around matched words, then one escaping pass. */
    struct buf raw;
    buf_init(&raw, n * 2 + 64);
    size_t from = first == 0 ? 0 : toks[first].start;
    size_t to = last == nt ? n : toks[last - 1].end;
    if (last < nt && to < n && (text[to] == '.' || text[to] == ',' || text[to] == ';'))
        to++;
    int rc = LOCI_OK;
    if (first > 0)
        rc |= buf_append_str(&raw, "…");
    size_t at = from;
    for (size_t i = first; i < last; i++) {
        if (toks[i].term < 0)
            continue;
        rc |= append_plain(&raw, text + at, toks[i].start - at);
        rc |= buf_append_char(&raw, '\x01');
        rc |= append_plain(&raw, text + toks[i].start, toks[i].end - toks[i].start);
        rc |= buf_append_char(&raw, '\x02');
        at = toks[i].end;
    }
    rc |= append_plain(&raw, text + at, to - at);
    if (last < nt)
        rc |= buf_append_str(&raw, "…");
    (void)rc; /* sized for the chunk with room to spare */
    out = search__snippet_html(raw.p ? raw.p : "", raw.len);
    buf_release(&raw);
done:
    xfree(toks);
    return out;
}
