/*
 * text.c - sentence and word segmentation with ICU break iterators over a
 * UTF-16 copy of the text, boundaries mapped back to UTF-8 byte offsets, and
 * the per-thread cache of iterators and the stemmer.
 *
 * Not for node keys or cleaning (text_words.c).
 */
#include "services/text/text.h"
#include "services/text/text_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <libstemmer.h>
#include <pthread.h>
#include <string.h>
#include <unicode/uchar.h>

/* ---- Per-thread cache ---------------------------------------------------- */

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;

static void tls_free(void *p)
{
    struct text__tls *t = p;
    if (!t)
        return;
    if (t->sent)
        ubrk_close(t->sent);
    if (t->word)
        ubrk_close(t->word);
    if (t->stemmer)
        sb_stemmer_delete(t->stemmer);
    xfree(t->u16);
    xfree(t->cps);
    xfree(t->valid);
    xfree(t->stems);
    xfree(t);
}

static void tls_make_key(void)
{
    if (pthread_key_create(&tls_key, tls_free) != 0)
        BUG("cannot create the text module's thread key");
}

struct text__tls *text__tls(void)
{
    pthread_once(&tls_once, tls_make_key);
    struct text__tls *t = pthread_getspecific(tls_key);
    if (t)
        return t;
    t = xcalloc(1, sizeof(*t));
    t->stems = xcalloc(TEXT__STEM_CACHE, sizeof(*t->stems));
    UErrorCode st = U_ZERO_ERROR;
    t->sent = ubrk_open(UBRK_SENTENCE, "en", NULL, 0, &st);
    if (U_SUCCESS(st))
        t->word = ubrk_open(UBRK_WORD, "en", NULL, 0, &st);
    if (U_FAILURE(st))
        goto fail;
    t->stemmer = sb_stemmer_new("english", "UTF_8");
    if (!t->stemmer || pthread_setspecific(tls_key, t) != 0)
        goto fail;
    return t;
fail:
    tls_free(t);
    return NULL;
}

void text__tls_trim(struct text__tls *t)
{
    if (t->u16_cap * sizeof(UChar) > TEXT__SCRATCH_KEEP) {
        xfree(t->u16);
        t->u16 = NULL;
        t->u16_cap = 0;
    }
    if (t->cps_cap * sizeof(int32_t) > TEXT__SCRATCH_KEEP) {
        xfree(t->cps);
        t->cps = NULL;
        t->cps_cap = 0;
    }
    if (t->valid_cap > TEXT__SCRATCH_KEEP) {
        xfree(t->valid);
        t->valid = NULL;
        t->valid_cap = 0;
    }
}

/* ---- String pool ----------------------------------------------------------- */

/* The norms and stems of a doc live in a chain of blocks that never move, so
 * tokens can point into them while the doc grows. */
struct text_pool_block {
    struct text_pool_block *next;
    size_t used, cap;
    char data[];
};

#define POOL_BLOCK_MIN 4096
#define POOL_BLOCK_MAX ((size_t)1 << 20)

struct builder {
    struct text_doc *d;
    struct text_pool_block *blocks; /* newest first */
    size_t block_size;              /* default size of the next block */
    size_t cap_sentences, cap_tokens;
};

static const char *pool_add(struct builder *b, const char *s, size_t n)
{
    struct text_pool_block *blk = b->blocks;
    if (!blk || blk->cap - blk->used < n + 1) {
        size_t cap = n + 1 > b->block_size ? n + 1 : b->block_size;
        blk = xmalloc(sizeof(*blk) + cap);
        blk->next = b->blocks;
        blk->used = 0;
        blk->cap = cap;
        b->blocks = blk;
        if (b->block_size < POOL_BLOCK_MAX)
            b->block_size *= 2;
    }
    char *p = blk->data + blk->used;
    memcpy(p, s, n);
    p[n] = '\0';
    blk->used += n + 1;
    b->d->pool_len += n + 1;
    return p;
}

void text_doc_release(struct text_doc *d)
{
    if (!d)
        return;
    struct text_pool_block *blk = d->pool;
    while (blk) {
        struct text_pool_block *next = blk->next;
        xfree(blk);
        blk = next;
    }
    xfree(d->sentences);
    xfree(d->tokens);
    memset(d, 0, sizeof(*d));
}

/* ---- UTF-8 to UTF-16 ---------------------------------------------------------- */

static bool is_hspace(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* The line starting at i (after indentation) opens a Markdown block. */
static bool starts_block(const char *s, size_t n, size_t i)
{
    while (i < n && is_hspace((unsigned char)s[i]))
        i++;
    if (i >= n)
        return false;
    unsigned char c = (unsigned char)s[i];
    if (c == '#' || c == '>' || c == '|')
        return true;
    if ((c == '-' || c == '*' || c == '+') && (i + 1 >= n || is_hspace((unsigned char)s[i + 1])))
        return true;
    if (c == '`' && i + 2 < n && s[i + 1] == '`' && s[i + 2] == '`')
        return true;
    if (c >= '0' && c <= '9') {
        size_t k = i;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
        if (k < n && (s[k] == '.' || s[k] == ')') &&
            (k + 1 >= n || is_hspace((unsigned char)s[k + 1])))
            return true;
    }
    return false;
}

/* Whether the line break at s[nl] (after the line that starts at
 * line_start) only wraps a paragraph; next is where the next line starts. */
static bool is_soft_break(const char *s, size_t n, size_t line_start, size_t nl, size_t next)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = line_start;
    while (i < nl && is_hspace(u[i]))
        i++;
    if (i == nl || u[i] == '#' || u[i] == '|')
        return false; /* blank line, heading or table row */
    if (starts_block(s, n, next))
        return false;
    i = next;
    while (i < n && is_hspace(u[i]))
        i++;
    if (i >= n)
        return false;
    int32_t cp;
    text__utf8_decode(u + i, n - i, &cp);
    if (cp < 0)
        return false;
    return u_islower(cp) || (cp >= '0' && cp <= '9') || cp == '(' || cp == '[' || cp == '"' ||
           cp == '\'' || cp == 0x201C || cp == 0x2018;
}

/* Convert to UTF-16 in t->u16: invalid bytes become U+FFFD (one unit per
 * byte), soft line breaks become spaces (same length). Returns the number of
 * UTF-16 units. */
static int32_t to_utf16(struct text__tls *t, const char *s, size_t n)
{
    if (t->u16_cap < n + 1) {
        xfree(t->u16);
        t->u16_cap = n + 1;
        t->u16 = xmalloc(t->u16_cap * sizeof(UChar));
    }
    const unsigned char *u = (const unsigned char *)s;
    UChar *o = t->u16;
    size_t k = 0, line_start = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c == '\r' || c == '\n') {
            size_t len = (c == '\r' && i + 1 < n && u[i + 1] == '\n') ? 2 : 1;
            bool soft = is_soft_break(s, n, line_start, i, i + len);
            for (size_t j = 0; j < len; j++)
                o[k++] = soft ? ' ' : (UChar)u[i + j];
            i += len;
            line_start = i;
            continue;
        }
        if (c < 0x80) {
            o[k++] = c;
            i++;
            continue;
        }
        int32_t cp;
        size_t len = text__utf8_decode(u + i, n - i, &cp);
        if (cp < 0) {
            o[k++] = 0xFFFD;
        } else if (cp < 0x10000) {
            o[k++] = (UChar)cp;
        } else {
            o[k++] = (UChar)(0xD7C0 + (cp >> 10));
            o[k++] = (UChar)(0xDC00 | (cp & 0x3FF));
        }
        i += len;
    }
    return (int32_t)k;
}

/* Walks UTF-16 offsets forward and keeps the matching UTF-8 offset; it
 * repeats to_utf16's decoding, so both agree on invalid bytes. */
struct cursor {
    const unsigned char *s;
    size_t n;
    size_t i8;
    int32_t i16;
};

static size_t cursor_to(struct cursor *c, int32_t i16)
{
    while (c->i16 < i16 && c->i8 < c->n) {
        unsigned char b = c->s[c->i8];
        if (b < 0x80) {
            c->i8++;
            c->i16++;
            continue;
        }
        int32_t cp;
        c->i8 += text__utf8_decode(c->s + c->i8, c->n - c->i8, &cp);
        c->i16 += cp >= 0x10000 ? 2 : 1;
    }
    return c->i8;
}

/* ---- Sentences --------------------------------------------------------------- */

/* Trimmed at sentence edges: white space, controls, format characters and
 * invalid bytes. */
static bool is_edge_junk(int32_t cp)
{
    return cp < 0 || u_isUWhiteSpace(cp) || u_iscntrl(cp) || u_charType(cp) == U_FORMAT_CHAR;
}

static void trim_span(const char *s, size_t *start, size_t *end)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t a = *start, b = *end;
    while (a < b) {
        int32_t cp;
        size_t len = text__utf8_decode(u + a, b - a, &cp);
        if (!is_edge_junk(cp))
            break;
        a += len;
    }
    while (b > a) {
        /* Step back one sequence: at most 3 continuation bytes. */
        size_t p = b - 1, steps = 0;
        while (p > a && (u[p] & 0xC0) == 0x80 && steps < 3) {
            p--;
            steps++;
        }
        int32_t cp;
        size_t len = text__utf8_decode(u + p, b - p, &cp);
        if (p + len != b) { /* not one whole sequence: the last byte is invalid */
            p = b - 1;
            cp = -1;
        }
        if (!is_edge_junk(cp))
            break;
        b = p;
    }
    *start = a;
    *end = b;
}

/* Abbreviations after which ICU's break is removed when the next sentence
 * starts with a capital letter or a digit; lower case, without the final
 * dot. */
static const char *const abbreviations[] = {
    "mr",  "mrs", "ms",  "dr",  "prof", "rev",  "hon", "gen",    "col",  "capt", "lt",
    "sgt", "sen", "rep", "gov", "st",   "mt",   "ft",  "jr",     "sr",   "fig",  "figs",
    "eq",  "eqs", "no",  "nos", "vol",  "vols", "pp",  "ch",     "sec",  "ref",  "refs",
    "e.g", "i.e", "cf",  "vs",  "viz",  "al",   "ca",  "approx", "dept", "univ", "est",
    "jan", "feb", "apr", "aug", "sept", "oct",  "nov", "dec",
};

/* The word before the final '.' of s[start, end): [*ws, end - 1). */
static bool last_word_before_dot(const char *s, size_t start, size_t end, size_t *ws)
{
    if (end - start < 2 || s[end - 1] != '.')
        return false;
    size_t i = end - 1;
    while (i > start) {
        unsigned char c = (unsigned char)s[i - 1];
        bool is_alpha = (c | 32) >= 'a' && (c | 32) <= 'z';
        if (!is_alpha && !(c == '.' && i - 1 > start))
            break;
        i--;
    }
    if (i == end - 1)
        return false;
    *ws = i;
    return true;
}

static bool is_abbreviation(const char *w, size_t n)
{
    char low[8];
    if (n > sizeof(low))
        return false;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)((unsigned char)w[i] | ((w[i] >= 'A' && w[i] <= 'Z') ? 32 : 0));
    for (size_t k = 0; k < sizeof(abbreviations) / sizeof(abbreviations[0]); k++) {
        if (strlen(abbreviations[k]) == n && memcmp(abbreviations[k], low, n) == 0)
            return true;
    }
    return false;
}

/* Whether ICU's break between sentence a and the following b (starting at
 * next) is after an abbreviation or an initial rather than a sentence. */
static bool is_false_break(const char *s, size_t a_start, size_t a_end, size_t next, size_t n)
{
    size_t ws;
    if (!last_word_before_dot(s, a_start, a_end, &ws))
        return false;
    unsigned char c = (unsigned char)s[next];
    bool is_upper = c >= 'A' && c <= 'Z';
    size_t wn = a_end - 1 - ws;
    if (is_abbreviation(s + ws, wn))
        return is_upper || (c >= '0' && c <= '9');
    bool is_initial = wn == 1 && s[ws] >= 'A' && s[ws] <= 'Z';
    if (!is_initial || !is_upper)
        return false;
    /* "J. K. Rowling", but not "vitamin C. The next ...". */
    size_t k = next;
    char low[16];
    size_t m = 0;
    while (k < n && m < sizeof(low) &&
           (((unsigned char)s[k] | 32) >= 'a' && ((unsigned char)s[k] | 32) <= 'z')) {
        low[m++] = (char)((unsigned char)s[k] | 32);
        k++;
    }
    return !text_is_stop(low, m);
}

static bool has_blank_line(const char *s, size_t a, size_t e)
{
    const char *nl = memchr(s + a, '\n', e - a);
    return nl && memchr(nl + 1, '\n', e - (size_t)(nl + 1 - s)) != NULL;
}

static void push_sentence(struct builder *b, size_t start, size_t end)
{
    struct text_doc *d = b->d;
    if (d->n_sentences == b->cap_sentences) {
        b->cap_sentences = b->cap_sentences ? b->cap_sentences * 2 : 16;
        d->sentences = xrealloc(d->sentences, b->cap_sentences * sizeof(*d->sentences));
    }
    struct text_sentence *st = &d->sentences[d->n_sentences++];
    st->start = start;
    st->end = end;
    st->first_token = 0;
    st->n_tokens = 0;
}

static void split_sentences(struct builder *b, struct text__tls *t, int32_t n16)
{
    struct text_doc *d = b->d;
    struct cursor cur = {(const unsigned char *)d->text, d->n, 0, 0};
    int32_t p = ubrk_first(t->sent);
    size_t p8 = 0;
    for (int32_t q = ubrk_next(t->sent); q != UBRK_DONE && p < n16; q = ubrk_next(t->sent)) {
        size_t q8 = cursor_to(&cur, q);
        size_t a = p8, e = q8;
        trim_span(d->text, &a, &e);
        if (a < e) {
            struct text_sentence *last = d->n_sentences ? &d->sentences[d->n_sentences - 1] : NULL;
            if (last && !has_blank_line(d->text, last->end, a) &&
                is_false_break(d->text, last->start, last->end, a, d->n))
                last->end = e;
            else
                push_sentence(b, a, e);
        }
        p = q;
        p8 = q8;
    }
}

/* ---- Tokens ------------------------------------------------------------------- */

static struct text_token *push_token(struct builder *b)
{
    struct text_doc *d = b->d;
    if (d->n_tokens == b->cap_tokens) {
        b->cap_tokens = b->cap_tokens ? b->cap_tokens * 2 : 64;
        d->tokens = xrealloc(d->tokens, b->cap_tokens * sizeof(*d->tokens));
    }
    struct text_token *tok = &d->tokens[d->n_tokens++];
    memset(tok, 0, sizeof(*tok));
    return tok;
}

/* A non-word segment that is only white space, controls, format characters
 * or invalid bytes is not a token. */
static bool is_junk_segment(const char *s, size_t a, size_t e)
{
    const unsigned char *u = (const unsigned char *)s;
    while (a < e) {
        int32_t cp;
        size_t len = text__utf8_decode(u + a, e - a, &cp);
        if (!is_edge_junk(cp) && cp != 0xFFFD)
            return false;
        a += len;
    }
    return true;
}

static void set_case_flags(struct text_token *tok, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n_upper = 0, n_lower = 0;
    bool is_first = true;
    for (size_t i = tok->start; i < tok->end;) {
        int32_t cp;
        size_t len = text__utf8_decode(u + i, tok->end - i, &cp);
        bool up, low;
        if (cp < 0x80) {
            up = cp >= 'A' && cp <= 'Z';
            low = cp >= 'a' && cp <= 'z';
        } else {
            up = u_isupper(cp) || u_istitle(cp);
            low = u_islower(cp);
        }
        if (is_first)
            tok->is_upper_initial = up;
        is_first = false;
        n_upper += up;
        n_lower += low;
        i += len;
    }
    tok->is_all_caps = n_upper >= 2 && n_lower == 0;
}

static int add_token(struct builder *b, struct text__tls *t, size_t a, size_t e, int32_t status,
                     size_t sentence, unsigned flags)
{
    const char *s = b->d->text;
    bool is_word = status >= UBRK_WORD_NUMBER;
    if (!is_word && is_junk_segment(s, a, e))
        return LOCI_OK;
    struct text_token *tok = push_token(b);
    tok->start = a;
    tok->end = e;
    tok->sentence = sentence;
    tok->is_word = is_word;
    tok->is_number = status >= UBRK_WORD_NUMBER && status < UBRK_WORD_NUMBER_LIMIT;
    if (!is_word || e - a > TEXT_MAX_WORD_BYTES) {
        /* Punctuation is kept as written; over-long words are only
         * ASCII-lowercased. */
        char *p = (char *)pool_add(b, s + a, e - a);
        if (is_word) {
            for (size_t i = 0; i < e - a; i++)
                p[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
            set_case_flags(tok, s);
        }
        tok->norm = tok->stem = p;
        tok->norm_n = tok->stem_n = (uint32_t)(e - a);
        return LOCI_OK;
    }
    set_case_flags(tok, s);
    const char *f;
    size_t fn;
    int rc = text__fold(t, s + a, e - a, &f, &fn);
    if (rc)
        return rc;
    tok->norm = pool_add(b, f, fn);
    tok->norm_n = (uint32_t)fn;
    tok->is_stop = !tok->is_all_caps && text_is_stop(tok->norm, fn);
    tok->stem = tok->norm;
    tok->stem_n = tok->norm_n;
    if (!tok->is_number && !(flags & TEXT_SEG_NO_STEMS)) {
        size_t sn;
        const char *stem = text__stem(t, tok->norm, fn, &sn);
        if (sn != fn || memcmp(stem, tok->norm, fn) != 0) {
            tok->stem = pool_add(b, stem, sn);
            tok->stem_n = (uint32_t)sn;
        }
    }
    return LOCI_OK;
}

/* Word and sentence rules do not always agree ("Dr.ח", "end.Next" are one
 * ICU word across a sentence break): a word never straddles sentences, so
 * the sentences it reaches into are merged. Sentences are compacted in
 * place: w is the sentence being filled, r the last input sentence read. */
static int split_tokens(struct builder *b, struct text__tls *t, unsigned flags)
{
    struct text_doc *d = b->d;
    struct text_sentence *sent = d->sentences;
    size_t n = d->n_sentences, w = 0, r = 0, p8 = 0;
    struct cursor cur = {(const unsigned char *)d->text, d->n, 0, 0};
    ubrk_first(t->word);
    for (int32_t q = ubrk_next(t->word); q != UBRK_DONE; q = ubrk_next(t->word)) {
        size_t q8 = cursor_to(&cur, q);
        int32_t status = ubrk_getRuleStatus(t->word);
        size_t a = p8;
        p8 = q8;
        while (sent[w].end <= a && r + 1 < n)
            sent[++w] = sent[++r];
        if (sent[w].end <= a)
            break; /* after the last sentence */
        if (a < sent[w].start || q8 <= a)
            continue; /* between sentences: white space and junk only */
        while (q8 > sent[w].end) {
            if (r + 1 < n && sent[r + 1].start < q8)
                sent[w].end = sent[++r].end > sent[w].end ? sent[r].end : sent[w].end;
            else
                sent[w].end = q8;
        }
        int rc = add_token(b, t, a, q8, status, w, flags);
        if (rc)
            return rc;
    }
    while (r + 1 < n)
        sent[++w] = sent[++r];
    d->n_sentences = w + 1;
    for (size_t i = 0, k = 0; i < d->n_sentences; i++) {
        sent[i].first_token = k;
        while (k < d->n_tokens && d->tokens[k].sentence == i)
            k++;
        sent[i].n_tokens = k - sent[i].first_token;
    }
    return LOCI_OK;
}

int text_segment(const char *text, size_t n, unsigned flags, struct text_doc *out)
{
    memset(out, 0, sizeof(*out));
    if (n > TEXT_MAX_BYTES)
        return LOCI_ETOOBIG;
    out->text = text;
    out->n = n;
    if (n == 0)
        return LOCI_OK;
    struct text__tls *t = text__tls();
    if (!t)
        return LOCI_EINTERNAL;
    struct builder b = {out, NULL, POOL_BLOCK_MIN, 0, 0};
    int rc = LOCI_OK;
    int32_t n16 = to_utf16(t, text, n);
    UErrorCode st = U_ZERO_ERROR;
    ubrk_setText(t->sent, t->u16, n16, &st);
    if (U_FAILURE(st)) {
        rc = LOCI_EINTERNAL;
        goto out;
    }
    split_sentences(&b, t, n16);
    if (!(flags & TEXT_SEG_SENTENCES) && out->n_sentences) {
        ubrk_setText(t->word, t->u16, n16, &st);
        if (U_FAILURE(st)) {
            rc = LOCI_EINTERNAL;
            goto out;
        }
        rc = split_tokens(&b, t, flags);
    }
out:
    out->pool = b.blocks;
    /* Detach the iterators from the scratch copy before it may be freed. */
    st = U_ZERO_ERROR;
    ubrk_setText(t->sent, NULL, 0, &st);
    st = U_ZERO_ERROR;
    ubrk_setText(t->word, NULL, 0, &st);
    text__tls_trim(t);
    if (rc) {
        text_doc_release(out);
        out->text = text;
        out->n = n;
    }
    return rc;
}
