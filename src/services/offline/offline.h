/*
 * offline.h - Loci's own text engine: embeddings, key terms, summaries and
 * extractive answers, with no model weights and no network.
 *
 * This is what the `local` AI provider runs, and what other modules may call
 * directly when they want the offline behaviour (node keys, chunking use
 * text.h instead). English is the supported language (stop words and the
 * Snowball "english" stemmer); other text is processed with the same
 * statistics and no stop words.
 *
 * Everything here is pure computation: deterministic for the same input,
 * allocates with xmalloc, and is safe from any thread concurrently. Texts
 * are UTF-8 with their length (invalid bytes are skipped); a NULL text is
 * allowed only with length 0. Failures are LOCI_EINVAL (bad arguments),
 * LOCI_ETOOBIG (a text over TEXT_MAX_BYTES) and LOCI_EINTERNAL (ICU or the
 * stemmer unavailable). The formulas are documented at the top of each
 * offline_*.c file.
 */
#ifndef LOCI_SERVICES_OFFLINE_H
#define LOCI_SERVICES_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>

#define OFFLINE_DEFAULT_DIMS 384
#define OFFLINE_MAX_DIMS     4096

/* ---- Embeddings --------------------------------------------------------
 * Hashed word uni- and bi-grams plus character 3..5-grams of each word,
 * sublinear TF (1 + ln tf) times an IDF prior, signed feature hashing into
 * dims buckets, L2-normalised. The same text always gives the same vector.
 * An empty (or all-punctuation) text gives the zero vector.
 *
 * texts[i] has lens[i] bytes of UTF-8 (invalid bytes are skipped). out must
 * hold n * dims floats, row-major. dims in 8..OFFLINE_MAX_DIMS, else
 * LOCI_EINVAL. */
int offline_embed(const char *const *texts, const size_t *lens, size_t n, int dims, float *out);

/* Cosine of two L2-normalised vectors (their dot product). Safe from any
 * thread. */
float offline_dot(const float *a, const float *b, int dims);

/* ---- Key terms (YAKE-style) --------------------------------------------- */
struct offline_term {
    char *term;   /* display form: the most frequent surface spelling, NUL-terminated */
    char *key;    /* stemmed, case-folded key; variants share one key */
    double score; /* relevance in (0, 1], higher is better */
    int count;    /* occurrences in the text */
};

struct offline_terms {
    size_t n_terms;
    struct offline_term *terms; /* best first */
};

/* Extract up to max_terms 1..3-word key terms from text (n bytes). A text
 * with no candidates (or max_terms 0) gives n_terms = 0 and returns 0.
 * key is text_term_key() of term, and no two terms share a key. out is set
 * up in place; on error it is empty. Release the result with
 * offline_terms_release() (NULL-safe, idempotent). */
int offline_keyterms(const char *text, size_t n, size_t max_terms, struct offline_terms *out);
void offline_terms_release(struct offline_terms *t);

/* ---- Summaries (TextRank + MMR) ----------------------------------------- */
struct offline_summary_opts {
    size_t max_sentences; /* 0 = 3 */
    size_t max_chars;     /* 0 = 600; the summary never exceeds it (Unicode code points) */
};

/* A summary made only of whole sentences of the text, in source order,
 * joined by one space; each sentence is trimmed, its white space runs
 * collapsed to one space, control characters and invalid UTF-8 dropped, and
 * a leading Markdown list marker removed. o may be NULL (defaults). A
 * sentence that does not fit in max_chars is skipped, never cut. *out is a
 * new NUL-terminated string (free with xfree); an empty text, or one where
 * no sentence fits, gives "". */
int offline_summarize(const char *text, size_t n, const struct offline_summary_opts *o, char **out);

/* The sentence of text that best defines term (mentions it, reads like a
 * definition: "X is …", "X refers to …", early, not too long). A sentence
 * mentions the term when the stems of the term's words occur as
 * consecutive words of it. *out is a new string (cleaned as in summaries;
 * free with xfree), or NULL when no sentence mentions the term. */
int offline_define(const char *term, size_t term_n, const char *text, size_t n, char **out);

/* ---- Extractive answers ------------------------------------------------- */
struct offline_passage {
    const char *text; /* UTF-8, not necessarily NUL-terminated */
    size_t n;
};

struct offline_answer_opts {
    size_t max_sentences; /* 0 = 4 */
    size_t max_chars;     /* 0 = 1200; markdown never exceeds it (code points, markers included) */
};

/* The whole markdown of an answer that found nothing. */
#define OFFLINE_NOT_FOUND "I could not find anything about this in your material."

struct offline_answer {
    char *markdown; /* new string: the answer, with [n] markers (1-based passage numbers) */
    bool is_found;  /* false: nothing relevant; markdown then says so plainly */
    size_t n_cited;
    int *cited; /* the passage numbers cited (1-based), ascending, no repeats */
};

/* Answer question from passages only: rank the passages' sentences by BM25
 * (over sentences) plus embedding cosine to the question, pick with MMR,
 * keep source order, end each picked sentence with its passage's [n]
 * (consecutive sentences of one passage share the marker after the last).
 * Sentences are cleaned as in summaries. When no sentence shares a content
 * word (stem) with the question, or none fits in max_chars, is_found is
 * false, markdown is OFFLINE_NOT_FOUND and nothing is cited. o may be NULL (defaults). out is set
 * up in place; on error it is empty. Release with offline_answer_release() (NULL-safe, idempotent).
 */
int offline_answer(const char *question, size_t qn, const struct offline_passage *passages,
                   size_t n_passages, const struct offline_answer_opts *o,
                   struct offline_answer *out);
void offline_answer_release(struct offline_answer *a);

#endif
