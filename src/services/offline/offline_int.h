/*
 * offline_int.h - private declarations shared by the offline engine's files:
 * hashing, the IDF prior, embedding a token range of a segmented doc,
 * sentence display text, and MMR selection. Nobody outside
 * src/services/offline includes this.
 */
#ifndef LOCI_SERVICES_OFFLINE_INT_H
#define LOCI_SERVICES_OFFLINE_INT_H

#include "core/buf.h"
#include "services/text/text.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Dimensions of the sentence vectors used inside summaries, definitions and
 * answers (only compared with each other, never returned). */
#define OFFLINE__SENT_DIMS 256

/* 64-bit hash of n bytes with a seed: FNV-1a over the bytes, then the
 * MurmurHash3 finaliser so every output bit depends on every input bit. */
uint64_t offline__hash(const void *p, size_t n, uint64_t seed);

/* The IDF-prior weight of a word token in (0, 1]: see offline_embed.c. */
float offline__idf(const struct text_token *t);

/* One feature of the table below: its hash, occurrences and the sum of
 * their weights, in one 16-byte slot so that a probe touches one line. */
struct offline__feat {
    uint64_t key; /* feature hash; 0 = empty slot */
    float tf;
    float wsum;
};

/* Scratch for building vectors: a feature hash table reused across calls.
 * Owned by one thread. */
struct offline__feats {
    struct offline__feat *slots;
    uint32_t *used; /* slots in use, in insertion order */
    size_t n_used;
    size_t cap; /* slots, a power of two */
};

void offline__feats_init(struct offline__feats *f);
void offline__feats_release(struct offline__feats *f);

/* The embedding of tokens [t0, t1) of d into out (dims floats, L2-normalised,
 * all zero when the range has no word). */
void offline__embed_range(const struct text_doc *d, size_t t0, size_t t1, int dims,
                          struct offline__feats *f, float *out);

/* Sentence si of d as display text appended to out: cleaned with
 * text_clean_line(), and a leading Markdown list or quote marker ("- ",
 * "* ", "+ ", "> ", "1. ") dropped. Returns 0 or LOCI_ETOOBIG. */
int offline__sentence_text(const struct text_doc *d, size_t si, struct buf *out);

/* Whether sentence si is a Markdown heading, table row or code fence line:
 * never a summary, definition or answer. */
bool offline__is_block_line(const struct text_doc *d, size_t si);

/* Number of word tokens of sentence si. */
size_t offline__n_words(const struct text_doc *d, size_t si);

/* One item offered to MMR selection. */
struct offline__cand {
    double rel;         /* relevance in [0, 1] */
    const float *vec;   /* L2-normalised, dims floats */
    size_t chars;       /* cost in characters when picked (text plus separators) */
    uint64_t text_hash; /* hash of the display text: equal texts are never both picked */
};

/* Maximal marginal relevance: repeatedly pick the item maximising
 * lambda * rel - (1 - lambda) * (max cosine to the items already picked),
 * skipping items whose cosine to a picked item is >= 0.9 or whose text
 * equals a picked item's, and items that no longer fit in max_chars (the
 * sum of chars of the picked items). Items with rel < min_rel are never
 * picked. Writes the picked indexes to out_idx in pick order and returns
 * how many (<= max_items). */
size_t offline__mmr(const struct offline__cand *c, size_t n, int dims, double lambda,
                    size_t max_items, size_t max_chars, double min_rel, size_t *out_idx);

#endif
