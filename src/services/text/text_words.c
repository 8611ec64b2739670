/*
 * text_words.c - word-level pieces of the text layer: the English stop-word
 * list, case folding (utf8proc) and stemming (Snowball) helpers, node keys,
 * and the cleaning helpers for display and prompt text. Segmentation lives
 * in text.c.
 */
#include "services/text/text.h"
#include "services/text/text_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <libstemmer.h>
#include <pthread.h>
#include <string.h>
#include <unicode/uchar.h>
#include <utf8proc.h>

/* ---- Stop words --------------------------------------------------------- */

/* Function words that carry no topic on their own: articles, pronouns,
 * auxiliaries and modals, prepositions, conjunctions, common adverbs of
 * degree and time, and their contractions. Written for Loci; lower case,
 * ASCII apostrophes. */
static const char *const stop_words[] = {
    "a",          "about",   "above",    "across",  "after",      "again",     "against",
    "all",        "almost",  "along",    "also",    "although",   "am",        "among",
    "an",         "and",     "another",  "any",     "are",        "aren't",    "around",
    "as",         "at",      "be",       "because", "been",       "before",    "being",
    "below",      "between", "both",     "but",     "by",         "can",       "can't",
    "cannot",     "could",   "couldn't", "did",     "didn't",     "do",        "does",
    "doesn't",    "doing",   "don't",    "down",    "during",     "each",      "either",
    "else",       "etc",     "even",     "ever",    "every",      "few",       "for",
    "from",       "further", "had",      "hadn't",  "has",        "hasn't",    "have",
    "haven't",    "having",  "he",       "he'd",    "he'll",      "he's",      "her",
    "here",       "here's",  "hers",     "herself", "him",        "himself",   "his",
    "how",        "how's",   "however",  "i",       "i'd",        "i'll",      "i'm",
    "i've",       "if",      "in",       "into",    "is",         "isn't",     "it",
    "it's",       "its",     "itself",   "just",    "let's",      "may",       "me",
    "might",      "more",    "most",     "much",    "must",       "mustn't",   "my",
    "myself",     "neither", "no",       "nor",     "not",        "now",       "of",
    "off",        "often",   "on",       "once",    "only",       "onto",      "or",
    "other",      "others",  "ought",    "our",     "ours",       "ourselves", "out",
    "over",       "own",     "per",      "quite",   "rather",     "same",      "shall",
    "shan't",     "she",     "she'd",    "she'll",  "she's",      "should",    "shouldn't",
    "since",      "so",      "some",     "such",    "than",       "that",      "that's",
    "the",        "their",   "theirs",   "them",    "themselves", "then",      "there",
    "there's",    "these",   "they",     "they'd",  "they'll",    "they're",   "they've",
    "this",       "those",   "though",   "through", "thus",       "to",        "too",
    "toward",     "towards", "under",    "until",   "up",         "upon",      "us",
    "very",       "via",     "was",      "wasn't",  "we",         "we'd",      "we'll",
    "we're",      "we've",   "were",     "weren't", "what",       "what's",    "when",
    "when's",     "where",   "where's",  "whether", "which",      "while",     "who",
    "who's",      "whom",    "whose",    "why",     "why's",      "will",      "with",
    "within",     "without", "won't",    "would",   "wouldn't",   "yet",       "you",
    "you'd",      "you'll",  "you're",   "you've",  "your",       "yours",     "yourself",
    "yourselves",
};

#define N_STOP_WORDS (sizeof(stop_words) / sizeof(stop_words[0]))
#define STOP_SLOTS   512 /* power of two, well over twice the list */

/* Open-addressing set of the list, built once per process and read-only
 * afterwards (pthread_once), so lookups need no lock. */
static pthread_once_t stop_once = PTHREAD_ONCE_INIT;
static const char *stop_table[STOP_SLOTS];

static uint64_t fnv1a64(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void stop_build(void)
{
    for (size_t i = 0; i < N_STOP_WORDS; i++) {
        const char *w = stop_words[i];
        size_t slot = (size_t)fnv1a64(w, strlen(w)) & (STOP_SLOTS - 1);
        while (stop_table[slot])
            slot = (slot + 1) & (STOP_SLOTS - 1);
        stop_table[slot] = w;
    }
}

static bool stop_lookup(const char *w, size_t n)
{
    size_t slot = (size_t)fnv1a64(w, n) & (STOP_SLOTS - 1);
    while (stop_table[slot]) {
        const char *s = stop_table[slot];
        if (strncmp(s, w, n) == 0 && s[n] == '\0')
            return true;
        slot = (slot + 1) & (STOP_SLOTS - 1);
    }
    return false;
}

bool text_is_stop(const char *word, size_t n)
{
    /* The longest entry is "yourselves" (10); "you’ve" needs 8 bytes. */
    if (n == 0 || n > 16)
        return false;
    pthread_once(&stop_once, stop_build);
    if (!memchr(word, 0xE2, n))
        return stop_lookup(word, n);
    /* Typographic apostrophe U+2019 (E2 80 99) to ASCII. */
    char tmp[16];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n && (unsigned char)word[i] == 0xE2 && (unsigned char)word[i + 1] == 0x80 &&
            (unsigned char)word[i + 2] == 0x99) {
            tmp[m++] = '\'';
            i += 2;
        } else {
            tmp[m++] = word[i];
        }
    }
    return stop_lookup(tmp, m);
}

/* ---- Folding and stemming ------------------------------------------------ */

static utf8proc_int32_t map_apostrophe(utf8proc_int32_t cp, void *data)
{
    (void)data;
    if (cp == 0x2018 || cp == 0x2019 || cp == 0x02BC)
        return '\'';
    return cp;
}

static void ensure_valid_cap(struct text__tls *t, size_t need)
{
    if (t->valid_cap >= need)
        return;
    size_t cap = t->valid_cap ? t->valid_cap : 256;
    while (cap < need)
        cap *= 2;
    xfree(t->valid);
    t->valid = xmalloc(cap);
    t->valid_cap = cap;
}

int text__fold(struct text__tls *t, const char *s, size_t n, const char **out, size_t *out_n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && u[i] < 0x80)
        i++;
    ensure_valid_cap(t, n + 1);
    if (i == n) {
        /* ASCII: NFKC is the identity and case folding is lower-casing. */
        for (size_t k = 0; k < n; k++) {
            unsigned char c = u[k];
            t->valid[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        t->valid[n] = '\0';
        *out = t->valid;
        *out_n = n;
        return LOCI_OK;
    }
    /* utf8proc refuses invalid UTF-8: keep only the valid sequences. */
    size_t m = 0;
    for (size_t k = 0; k < n;) {
        int32_t cp;
        size_t len = text__utf8_decode(u + k, n - k, &cp);
        if (cp >= 0) {
            memcpy(t->valid + m, s + k, len);
            m += len;
        }
        k += len;
    }
    const utf8proc_option_t opts =
        UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE;
    utf8proc_ssize_t r;
    for (;;) {
        r = utf8proc_decompose_custom((const utf8proc_uint8_t *)t->valid, (utf8proc_ssize_t)m,
                                      t->cps, (utf8proc_ssize_t)t->cps_cap, opts, map_apostrophe,
                                      NULL);
        if (r < 0)
            return LOCI_EINTERNAL;
        /* One spare slot: re-encoding writes a NUL after up to 4 bytes per
         * code point. */
        if ((size_t)r + 1 <= t->cps_cap)
            break;
        xfree(t->cps);
        t->cps_cap = (size_t)r + 1 > 64 ? (size_t)r + 1 : 64;
        t->cps = xmalloc(t->cps_cap * sizeof(*t->cps));
    }
    utf8proc_ssize_t len = utf8proc_reencode(t->cps, r, opts);
    if (len < 0)
        return LOCI_EINTERNAL;
    *out = (const char *)t->cps;
    *out_n = (size_t)len;
    return LOCI_OK;
}

const char *text__stem(struct text__tls *t, const char *w, size_t n, size_t *out_n)
{
    struct text__stem_entry *e = NULL;
    uint64_t h = 0;
    if (n > 0 && n <= TEXT__STEM_CACHE_LEN) {
        h = fnv1a64(w, n) | 1; /* never 0, which marks an empty entry */
        e = &t->stems[(h >> 32) & (TEXT__STEM_CACHE - 1)];
        if (e->h == h && e->word_n == n && memcmp(e->word, w, n) == 0) {
            *out_n = e->stem_n;
            return e->stem;
        }
    }
    if (n > 0 && n <= TEXT_MAX_WORD_BYTES) {
        const sb_symbol *r = sb_stemmer_stem(t->stemmer, (const sb_symbol *)w, (int)n);
        if (r) {
            size_t sn = (size_t)sb_stemmer_length(t->stemmer);
            if (e && sn <= TEXT__STEM_CACHE_LEN) {
                e->h = h;
                e->word_n = (uint8_t)n;
                e->stem_n = (uint8_t)sn;
                memcpy(e->word, w, n);
                memcpy(e->stem, r, sn);
            }
            *out_n = sn;
            return (const char *)r;
        }
    }
    *out_n = n;
    return w;
}

/* ---- Node keys ------------------------------------------------------------ */

static bool is_key_separator(int32_t cp)
{
    return u_isUWhiteSpace(cp) || u_charType(cp) == U_DASH_PUNCTUATION;
}

static bool is_key_trimmed(int32_t cp)
{
    return cp != '#' && u_ispunct(cp);
}

/* Start of the code point that ends just before end (s is valid UTF-8). */
static size_t prev_cp_start(const char *s, size_t start, size_t end)
{
    size_t i = end - 1;
    while (i > start && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

int text_term_key(const char *term, size_t n, struct buf *out)
{
    int rc = LOCI_EINTERNAL;
    struct buf key;
    buf_init(&key, (size_t)-1 / 2);
    struct text__tls *t = text__tls();
    if (!t)
        goto out;
    const char *f;
    size_t fn;
    rc = text__fold(t, term, n, &f, &fn);
    if (rc)
        goto out;
    const unsigned char *u = (const unsigned char *)f;
    size_t i = 0;
    while (i < fn) {
        int32_t cp;
        size_t len = text__utf8_decode(u + i, fn - i, &cp);
        if (is_key_separator(cp)) {
            i += len;
            continue;
        }
        size_t ws = i;
        while (i < fn) {
            len = text__utf8_decode(u + i, fn - i, &cp);
            if (is_key_separator(cp))
                break;
            i += len;
        }
        size_t we = i;
        while (ws < we) {
            len = text__utf8_decode(u + ws, we - ws, &cp);
            if (!is_key_trimmed(cp))
                break;
            ws += len;
        }
        while (we > ws) {
            size_t ps = prev_cp_start(f, ws, we);
            text__utf8_decode(u + ps, we - ps, &cp);
            if (!is_key_trimmed(cp))
                break;
            we = ps;
        }
        if (we == ws)
            continue;
        size_t sn;
        const char *stem = text__stem(t, f + ws, we - ws, &sn);
        if ((key.len && buf_append_char(&key, ' ')) || buf_append(&key, stem, sn)) {
            rc = LOCI_ETOOBIG;
            goto out;
        }
    }
    if (key.len == 0) {
        rc = LOCI_EINVAL;
        goto out;
    }
    rc = buf_append(out, key.p, key.len);
out:
    buf_release(&key);
    return rc;
}

/* ---- Cleaning --------------------------------------------------------------- */

static bool is_control(int32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* Undo a partial append so that a failed call leaves out as it was. */
static int restore(struct buf *out, size_t old_len, int rc)
{
    if (rc && out->p) {
        out->len = old_len;
        out->p[old_len] = '\0';
    }
    return rc;
}

int text_strip_controls(const char *in, size_t n, struct buf *out)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t old_len = out->len;
    size_t run = 0; /* start of the pending run of bytes to copy */
    int rc = LOCI_OK;
    size_t i = 0;
    while (i < n) {
        int32_t cp;
        size_t len = text__utf8_decode(u + i, n - i, &cp);
        bool keep = cp >= 0 && (!is_control(cp) || cp == '\n' || cp == '\t');
        if (!keep) {
            if (i > run && (rc = buf_append(out, in + run, i - run)) != 0)
                return restore(out, old_len, rc);
            run = i + len;
        }
        i += len;
    }
    if (n > run)
        rc = buf_append(out, in + run, n - run);
    else if (!out->p)
        rc = buf_append(out, "", 0); /* always leave a NUL-terminated buffer */
    return restore(out, old_len, rc);
}

int text_clean_line(const char *in, size_t n, struct buf *out)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t old_len = out->len;
    bool has_text = false, has_space = false;
    int rc = LOCI_OK;
    size_t i = 0;
    while (i < n && rc == LOCI_OK) {
        int32_t cp;
        size_t len = text__utf8_decode(u + i, n - i, &cp);
        if (cp >= 0 && u_isUWhiteSpace(cp)) {
            has_space = true;
        } else if (cp >= 0 && !is_control(cp)) {
            if (has_space && has_text)
                rc = buf_append_char(out, ' ');
            if (rc == LOCI_OK)
                rc = buf_append(out, in + i, len);
            has_text = true;
            has_space = false;
        }
        i += len;
    }
    if (rc == LOCI_OK && !out->p)
        rc = buf_append(out, "", 0);
    return restore(out, old_len, rc);
}

size_t text_count_chars(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t count = 0;
    for (size_t i = 0; i < n; count++) {
        int32_t cp;
        i += text__utf8_decode(u + i, n - i, &cp);
    }
    return count;
}
