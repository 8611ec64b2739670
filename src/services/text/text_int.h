/*
 * text_int.h - private declarations shared by the text module's files: the
 * per-thread cache of ICU iterators, the stemmer and scratch buffers, and
 * the UTF-8 decoder. Nobody outside src/services/text includes this.
 */
#ifndef LOCI_SERVICES_TEXT_INT_H
#define LOCI_SERVICES_TEXT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <unicode/ubrk.h>

struct sb_stemmer;

/* A direct-mapped cache of recent stems: words repeat (Zipf), and the
 * Snowball stemmer costs as much as both ICU iterators together. */
#define TEXT__STEM_CACHE     2048 /* entries, a power of two */
#define TEXT__STEM_CACHE_LEN 24   /* longest word (and stem) cached, bytes */

struct text__stem_entry {
    uint64_t h; /* hash of the word; 0 = empty */
    uint8_t word_n, stem_n;
    char word[TEXT__STEM_CACHE_LEN];
    char stem[TEXT__STEM_CACHE_LEN];
};

/* Per-thread cache, owned by the thread that text__tls() returned it to;
 * freed by the pthread key destructor when that thread exits. */
struct text__tls {
    UBreakIterator *sent;       /* UBRK_SENTENCE, "en" */
    UBreakIterator *word;       /* UBRK_WORD, "en" */
    struct sb_stemmer *stemmer; /* Snowball english, UTF_8 */
    UChar *u16;                 /* the UTF-16 copy being segmented */
    size_t u16_cap;             /* UChars */
    int32_t *cps;               /* utf8proc scratch (code points, then UTF-8) */
    size_t cps_cap;             /* int32_t slots */
    char *valid;                /* scratch: input with invalid UTF-8 dropped */
    size_t valid_cap;
    struct text__stem_entry *stems; /* TEXT__STEM_CACHE entries */
};

/* This thread's cache, opened on first use; NULL when ICU or the stemmer
 * cannot be opened (the next call tries again). */
struct text__tls *text__tls(void);

/* Scratch buffers above this size are freed after use so that one huge text
 * does not pin memory in every thread that ever saw one. */
#define TEXT__SCRATCH_KEEP ((size_t)1 << 20)
void text__tls_trim(struct text__tls *t);

/* Decode one UTF-8 sequence at s (n > 0 bytes available). Returns its length
 * and sets *out_cp; an invalid or truncated sequence gives length 1 and
 * *out_cp = -1. Strict RFC 3629: no overlongs, surrogates or > U+10FFFF. */
static inline size_t text__utf8_decode(const unsigned char *s, size_t n, int32_t *out_cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *out_cp = (int32_t)c;
        return 1;
    }
    if (c >= 0xC2 && c < 0xE0) {
        if (n >= 2 && (s[1] & 0xC0) == 0x80) {
            *out_cp = (int32_t)(((c & 0x1Fu) << 6) | (s[1] & 0x3Fu));
            return 2;
        }
    } else if (c >= 0xE0 && c < 0xF0) {
        if (n >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
            uint32_t cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
            if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
                *out_cp = (int32_t)cp;
                return 3;
            }
        }
    } else if (c >= 0xF0 && c < 0xF5) {
        if (n >= 4 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) {
            uint32_t cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
                          (s[3] & 0x3Fu);
            if (cp >= 0x10000 && cp <= 0x10FFFF) {
                *out_cp = (int32_t)cp;
                return 4;
            }
        }
    }
    *out_cp = -1;
    return 1;
}

/* NFKC + full case fold (+ default ignorables removed, typographic
 * apostrophes to ASCII) of s, n bytes. s may hold invalid UTF-8 (dropped).
 * *out points into t's scratch and stays valid until the next call using t.
 * Returns 0, or LOCI_EINTERNAL when utf8proc fails. */
int text__fold(struct text__tls *t, const char *s, size_t n, const char **out, size_t *out_n);

/* The Snowball english stem of w (n bytes, case-folded, valid UTF-8). The
 * result points into the stemmer and stays valid until its next use; on
 * failure (or n > TEXT_MAX_WORD_BYTES) w itself is returned. */
const char *text__stem(struct text__tls *t, const char *w, size_t n, size_t *out_n);

#endif
