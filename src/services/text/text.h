/*
 * text.h - the shared text layer: sentence and word segmentation (ICU break
 * iterators), case folding and Snowball "english" stems per token, the
 * English stop-word list, knowledge-graph node keys, and small cleaning
 * helpers for text shown to people or fenced into prompts.
 *
 * It is what document chunking, the graph's node keys and the offline engine
 * (services/offline) build on. It is not a tokenizer for model prompts (no
 * BPE) and not a language detector: every text gets English stop words and
 * the English stemmer; other scripts still segment correctly (ICU handles
 * CJK with its dictionaries) and simply get no stop words.
 *
 * Every function here is pure computation and safe from any thread
 * concurrently. ICU break iterators, the Snowball stemmer and recent stems
 * are cached per thread, freed when the thread exits: opening the two
 * iterators costs ~15 us, a tenth of segmenting a 300-word chunk (~160 us)
 * and many times the cost of a question or a node key.
 */
#ifndef LOCI_SERVICES_TEXT_H
#define LOCI_SERVICES_TEXT_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Texts longer than this are refused with LOCI_ETOOBIG (ICU indexes UTF-16
 * with int32_t). */
#define TEXT_MAX_BYTES ((size_t)1 << 30)

/* Word tokens longer than this many bytes are kept, but their norm is only
 * ASCII-lowercased and they are not stemmed (base64, URLs, hashes). */
#define TEXT_MAX_WORD_BYTES 128

/* One sentence: a byte range of the source, trimmed of whitespace, control
 * characters and invalid UTF-8 at both ends (never empty), and the tokens it
 * holds. */
struct text_sentence {
    size_t start, end;  /* bytes [start, end) of the source */
    size_t first_token; /* index into text_doc.tokens */
    size_t n_tokens;    /* tokens of this sentence (0 with TEXT_SEG_SENTENCES) */
};

/* One token: an ICU word segment that is not white space. Punctuation and
 * symbols (emoji included) are tokens too, with is_word false, so that
 * callers can see where phrases break. Runs of invalid UTF-8 or control
 * characters are not tokens. */
struct text_token {
    size_t start, end;     /* bytes [start, end) of the source */
    size_t sentence;       /* index into text_doc.sentences */
    const char *norm;      /* NFKC + Unicode case fold, NUL-terminated (doc's pool) */
    const char *stem;      /* Snowball "english" stem of norm; == norm for non-words and numbers */
    uint32_t norm_n;       /* bytes of norm */
    uint32_t stem_n;       /* bytes of stem */
    bool is_word;          /* letters, numbers, kana or ideographs (ICU word rule status >= 100) */
    bool is_number;        /* ICU "number" status: 42, 3.14, 1,000 */
    bool is_stop;          /* an English stop word (text_is_stop on norm) */
    bool is_upper_initial; /* first character upper- or title-case */
    bool is_all_caps;      /* at least two letters, all upper case: acronyms (TCP, DNA) */
};

/* A segmented document. The source text is borrowed: it must outlive the
 * doc. Owned by one thread at a time; release with text_doc_release(). */
struct text_doc {
    const char *text; /* the source, borrowed */
    size_t n;         /* bytes of the source */
    size_t n_sentences;
    struct text_sentence *sentences; /* in source order */
    size_t n_tokens;
    struct text_token *tokens;    /* in source order */
    struct text_pool_block *pool; /* private: the blocks holding every norm and stem */
    size_t pool_len;              /* bytes used in the pool */
};

/* Flags for text_segment(). */
#define TEXT_SEG_SENTENCES 0x1u /* sentences only: no tokens, no stems */
#define TEXT_SEG_NO_STEMS  0x2u /* tokens with norm, but stem == norm */

/* Split text (n bytes of UTF-8; invalid bytes are treated as U+FFFD and
 * never end up inside a word) into sentences and tokens.
 *
 * Sentences follow ICU's UBRK_SENTENCE rules ("en" locale) with two
 * adjustments:
 *   - a break after a common abbreviation ("Dr.", "Mr.", "Prof.", "e.g.",
 *     "i.e.", "Fig.", "vs." ...) or after a single-letter initial followed by
 *     a capitalised word that is not a stop word ("J. K. Rowling") is
 *     removed;
 *   - a single line break inside a paragraph (hard-wrapped text) does not
 *     end a sentence when the next line starts with a lower-case letter, a
 *     digit or an opening bracket or quote, the current line is not a
 *     Markdown heading or table row, and the next line does not start a
 *     Markdown block (#, >, -, *, +, |, "1." list, ``` fence). Every other
 *     line break does, and so does a blank line.
 *
 * In full mode a word is never split across sentences: in the rare text
 * where ICU's word and sentence rules disagree ("Dr.ח", "end.Next" are one
 * ICU word), the sentences it spans are merged, so TEXT_SEG_SENTENCES may
 * then give one sentence more than full mode.
 *
 * out is set up in place (any previous contents are not freed); on error
 * it is left empty and needs no release. Returns 0, LOCI_ETOOBIG when n >
 * TEXT_MAX_BYTES, LOCI_EINTERNAL when ICU or the stemmer cannot be opened.
 * Safe from any thread. */
int text_segment(const char *text, size_t n, unsigned flags, struct text_doc *out);

/* Free what the doc holds (not the struct, not the source text); it is empty
 * afterwards. NULL-safe and idempotent. */
void text_doc_release(struct text_doc *d);

/* Whether word (n bytes, already case-folded, e.g. a token's norm) is on the
 * built-in English stop-word list (about 220 function words: articles,
 * pronouns, auxiliaries, prepositions, conjunctions, contractions). Both
 * ASCII and typographic apostrophes match ("don't", "don’t"). */
bool text_is_stop(const char *word, size_t n);

/* The knowledge-graph node key of a term, appended to out. The rule:
 *   1. invalid UTF-8 bytes are dropped; U+2018, U+2019 and U+02BC become an
 *      ASCII apostrophe;
 *   2. Unicode NFKC with full case folding, default-ignorable code points
 *      (soft hyphens, zero-width joiners) removed (utf8proc);
 *   3. words are split on white space and on dash punctuation (Unicode Pd:
 *      "-", "–", "—"), so "light-dependent" and "light dependent" agree;
 *   4. each word loses leading and trailing punctuation (Unicode P*) except
 *      '#' and '+' ("C#", "C++" survive, "(TCP)," becomes "tcp"); words left
 *      empty are dropped;
 *   5. each word of at most TEXT_MAX_WORD_BYTES bytes is replaced by its
 *      Snowball "english" stem; stop words are kept;
 *   6. the words are joined with single spaces.
 * So "Neural Networks", "neural  network" and "NEURAL NETWORKS" all give
 * "neural network". Returns 0; LOCI_EINVAL when no word is left (nothing
 * is appended then); LOCI_ETOOBIG when out would exceed its maximum (out
 * is then unchanged). Safe from any thread. */
int text_term_key(const char *term, size_t n, struct buf *out);

/* Append in (n bytes) to out without control characters (Unicode Cc, which
 * includes C1 controls and DEL) except '\n' and '\t', and without invalid
 * UTF-8 sequences; everything else is copied byte for byte. For fencing user
 * text into prompts and logs. Returns 0 or LOCI_ETOOBIG (out unchanged). */
int text_strip_controls(const char *in, size_t n, struct buf *out);

/* Append in (n bytes) to out as one line of display text: control
 * characters and invalid UTF-8 are dropped, every run of white space
 * (including line breaks and tabs) becomes one ASCII space, and leading
 * and trailing white space is trimmed. Returns 0 or LOCI_ETOOBIG (out
 * unchanged). */
int text_clean_line(const char *in, size_t n, struct buf *out);

/* Number of Unicode code points in s (n bytes); each invalid byte counts as
 * one. */
size_t text_count_chars(const char *s, size_t n);

#endif
