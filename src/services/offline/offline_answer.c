/*
 * offline_answer.c - extractive answers: the sentences of the given
 * passages that best answer a question, each followed by its passage's
 * citation marker. Nothing is written that is not in the passages, except
 * the [n] markers and the fixed "not found" line.
 *
 * Ranking, with every sentence of every passage a document:
 *
 *   question terms  the distinct stems of the question's words that are not
 *                   stop words or question fillers ("explain", "describe",
 *                   "tell", "please" ...)
 *   candidates      sentences that contain at least one question term, have
 *                   at least three words and are not Markdown headings,
 *                   table rows or fences
 *   BM25            sum over question terms t in the sentence of
 *                   idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)),
 *                   k1 = 1.2, b = 0.75, idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)),
 *                   dl = the sentence's words that are not stop words, N and
 *                   df counted over all sentences of all passages
 *   score           0.7 * BM25 / (best BM25) + 0.3 * max(0, cosine of the
 *                   offline embeddings of question and sentence); only the
 *                   200 best by BM25 are embedded
 *   picking         MMR (lambda 0.7) over score / best score, never a
 *                   sentence under 0.35 of the best, up to max_sentences and
 *                   max_chars (counting the markers), then source order:
 *                   passage order, then sentence order
 *
 * Consecutive picked sentences of the same passage share one marker, after
 * the last of them: "A. B. [2] C. [1]".
 */
#include "services/offline/offline.h"
#include "services/offline/offline_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SENTS  4
#define DEFAULT_CHARS  1200
#define BM25_K1        1.2
#define BM25_B         0.75
#define W_BM25         0.7
#define W_COSINE       0.3
#define MAX_QTERMS     64
#define MAX_EMBEDDED   200
#define MIN_REL        0.35
#define MMR_LAMBDA     0.7
#define SEED_SENTENCE  31
#define MAX_TEXT_BYTES ((size_t)1 << 20)

/* Words that ask rather than tell what the question is about. */
static const char *const fillers[] = {
    "explain",   "describe",  "tell",   "define", "please", "briefly", "summarize",
    "summarise", "elaborate", "detail", "show",   "give",   "know",    NULL,
};

struct qterm {
    const char *stem;
    uint32_t n;
    uint32_t df;
    double idf;
};

struct hit {
    size_t passage, sentence;
    double bm25, score;
    char *text;
    size_t chars;
    float *vec; /* points into the vectors array */
};

static bool is_filler(const struct text_token *t)
{
    for (const char *const *f = fillers; *f; f++) {
        if (strlen(*f) == t->norm_n && memcmp(*f, t->norm, t->norm_n) == 0)
            return true;
    }
    return false;
}

static size_t question_terms(const struct text_doc *q, struct qterm *terms)
{
    size_t n = 0;
    for (size_t k = 0; k < q->n_tokens && n < MAX_QTERMS; k++) {
        const struct text_token *t = &q->tokens[k];
        if (!t->is_word || t->is_stop || is_filler(t))
            continue;
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = terms[i].n == t->stem_n && memcmp(terms[i].stem, t->stem, t->stem_n) == 0;
        if (!seen)
            terms[n++] = (struct qterm){t->stem, t->stem_n, 0, 0.0};
    }
    return n;
}

static int term_of(const struct qterm *terms, size_t n, const struct text_token *t)
{
    for (size_t i = 0; i < n; i++) {
        if (terms[i].n == t->stem_n && memcmp(terms[i].stem, t->stem, t->stem_n) == 0)
            return (int)i;
    }
    return -1;
}

static bool is_candidate(const struct text_doc *d, size_t si)
{
    return !offline__is_block_line(d, si) && offline__n_words(d, si) >= 3;
}

/* Term frequencies of sentence si (tf has one slot per term) and its length
 * in content words. Returns whether any term occurs. */
static bool sentence_tf(const struct text_doc *d, size_t si, const struct qterm *terms,
                        size_t n_terms, uint32_t *tf, size_t *dl)
{
    const struct text_sentence *s = &d->sentences[si];
    bool any = false;
    memset(tf, 0, n_terms * sizeof(*tf));
    *dl = 0;
    for (size_t k = s->first_token; k < s->first_token + s->n_tokens; k++) {
        const struct text_token *t = &d->tokens[k];
        if (!t->is_word || t->is_stop)
            continue;
        (*dl)++;
        int i = term_of(terms, n_terms, t);
        if (i >= 0) {
            tf[i]++;
            any = true;
        }
    }
    return any;
}

static int cmp_bm25(const void *pa, const void *pb)
{
    const struct hit *a = pa, *b = pb;
    if (a->bm25 != b->bm25)
        return a->bm25 > b->bm25 ? -1 : 1;
    if (a->passage != b->passage)
        return a->passage < b->passage ? -1 : 1;
    return a->sentence < b->sentence ? -1 : a->sentence > b->sentence;
}

static int cmp_source(const void *pa, const void *pb)
{
    const struct hit *a = *(const struct hit *const *)pa, *b = *(const struct hit *const *)pb;
    if (a->passage != b->passage)
        return a->passage < b->passage ? -1 : 1;
    return a->sentence < b->sentence ? -1 : a->sentence > b->sentence;
}

static size_t digits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Score every sentence that holds a question term; the hits are returned
 * best BM25 first, at most MAX_EMBEDDED of them. */
static size_t rank_bm25(const struct text_doc *docs, size_t n_docs, struct qterm *terms,
                        size_t n_terms, struct hit **out_hits)
{
    size_t n_sent = 0, total_len = 0, n_hits = 0, cap = 0;
    uint32_t tf[MAX_QTERMS];
    struct hit *hits = NULL;
    for (size_t p = 0; p < n_docs; p++) {
        for (size_t si = 0; si < docs[p].n_sentences; si++) {
            size_t dl;
            bool any = sentence_tf(&docs[p], si, terms, n_terms, tf, &dl);
            n_sent++;
            total_len += dl;
            for (size_t i = 0; i < n_terms; i++)
                terms[i].df += tf[i] > 0;
            if (!any || !is_candidate(&docs[p], si))
                continue;
            if (n_hits == cap) {
                cap = cap ? cap * 2 : 64;
                hits = xrealloc(hits, cap * sizeof(*hits));
            }
            hits[n_hits++] = (struct hit){p, si, 0.0, 0.0, NULL, 0, NULL};
        }
    }
    double avgdl = n_sent ? (double)total_len / (double)n_sent : 1.0;
    if (avgdl <= 0.0)
        avgdl = 1.0;
    for (size_t i = 0; i < n_terms; i++)
        terms[i].idf = log(1.0 + ((double)n_sent - terms[i].df + 0.5) / (terms[i].df + 0.5));
    for (size_t h = 0; h < n_hits; h++) {
        size_t dl;
        sentence_tf(&docs[hits[h].passage], hits[h].sentence, terms, n_terms, tf, &dl);
        double norm = BM25_K1 * (1.0 - BM25_B + BM25_B * (double)dl / avgdl);
        double s = 0.0;
        for (size_t i = 0; i < n_terms; i++) {
            if (tf[i])
                s += terms[i].idf * tf[i] * (BM25_K1 + 1.0) / (tf[i] + norm);
        }
        hits[h].bm25 = s;
    }
    if (n_hits)
        qsort(hits, n_hits, sizeof(*hits), cmp_bm25);
    *out_hits = hits;
    return n_hits < MAX_EMBEDDED ? n_hits : MAX_EMBEDDED;
}

static int compose(struct hit **picked, size_t k, struct offline_answer *out)
{
    int rc = LOCI_OK;
    struct buf md;
    buf_init(&md, (size_t)-1 / 2);
    qsort(picked, k, sizeof(*picked), cmp_source);
    out->cited = xmalloc(k * sizeof(*out->cited));
    for (size_t i = 0; i < k && rc == LOCI_OK; i++) {
        if (i)
            rc = buf_append_char(&md, ' ');
        if (rc == LOCI_OK)
            rc = buf_append_str(&md, picked[i]->text);
        size_t p = picked[i]->passage;
        if (rc == LOCI_OK && (i + 1 == k || picked[i + 1]->passage != p)) {
            rc = buf_printf(&md, " [%zu]", p + 1);
            out->cited[out->n_cited++] = (int)(p + 1); /* ascending: source order */
        }
    }
    if (rc == LOCI_OK)
        out->markdown = buf_detach(&md, NULL);
    buf_release(&md);
    return rc;
}

void offline_answer_release(struct offline_answer *a)
{
    if (!a)
        return;
    xfree(a->markdown);
    xfree(a->cited);
    memset(a, 0, sizeof(*a));
}

int offline_answer(const char *question, size_t qn, const struct offline_passage *passages,
                   size_t n_passages, const struct offline_answer_opts *o,
                   struct offline_answer *out)
{
    memset(out, 0, sizeof(*out));
    if ((!question && qn) || (!passages && n_passages))
        return LOCI_EINVAL;
    size_t max_sents = o && o->max_sentences ? o->max_sentences : DEFAULT_SENTS;
    size_t max_chars = o && o->max_chars ? o->max_chars : DEFAULT_CHARS;
    if (max_chars > (size_t)-1 / 8)
        max_chars = (size_t)-1 / 8;
    struct text_doc q;
    struct text_doc *docs = xcalloc(n_passages ? n_passages : 1, sizeof(*docs));
    struct hit *hits = NULL;
    struct hit **picked_hits = NULL;
    struct offline__cand *cands = NULL;
    size_t *picked = NULL, n_hits = 0, k = 0;
    float *vecs = NULL;
    struct offline__feats f;
    offline__feats_init(&f);
    struct buf b;
    buf_init(&b, MAX_TEXT_BYTES);
    int rc = text_segment(question ? question : "", qn, 0, &q);
    if (rc)
        goto out;
    struct qterm terms[MAX_QTERMS];
    size_t n_terms = question_terms(&q, terms);
    if (n_terms == 0)
        goto out;
    for (size_t p = 0; p < n_passages; p++) {
        if (!passages[p].text && passages[p].n) {
            rc = LOCI_EINVAL;
            goto out;
        }
        rc = text_segment(passages[p].text ? passages[p].text : "", passages[p].n, 0, &docs[p]);
        if (rc)
            goto out;
    }
    n_hits = rank_bm25(docs, n_passages, terms, n_terms, &hits);
    if (n_hits == 0)
        goto out;

    float qv[OFFLINE__SENT_DIMS];
    offline__embed_range(&q, 0, q.n_tokens, OFFLINE__SENT_DIMS, &f, qv);
    vecs = xmalloc(n_hits * OFFLINE__SENT_DIMS * sizeof(*vecs));
    double top_bm25 = hits[0].bm25 > 0 ? hits[0].bm25 : 1.0, top = 0.0;
    for (size_t h = 0; h < n_hits; h++) {
        struct hit *x = &hits[h];
        const struct text_doc *d = &docs[x->passage];
        const struct text_sentence *s = &d->sentences[x->sentence];
        x->vec = vecs + h * OFFLINE__SENT_DIMS;
        offline__embed_range(d, s->first_token, s->first_token + s->n_tokens, OFFLINE__SENT_DIMS,
                             &f, x->vec);
        double cos = offline_dot(qv, x->vec, OFFLINE__SENT_DIMS);
        x->score = W_BM25 * x->bm25 / top_bm25 + W_COSINE * (cos > 0 ? cos : 0.0);
        top = x->score > top ? x->score : top;
        buf_reset(&b);
        rc = offline__sentence_text(d, x->sentence, &b);
        if (rc == LOCI_ETOOBIG) {
            rc = LOCI_OK; /* cannot fit in any answer */
            x->text = xstrdup("");
            x->chars = (size_t)-1 / 4;
            continue;
        }
        if (rc)
            goto out;
        x->chars = text_count_chars(b.p ? b.p : "", b.len) + 1 + digits(x->passage + 1) + 3;
        x->text = buf_detach(&b, NULL);
    }
    cands = xmalloc(n_hits * sizeof(*cands));
    for (size_t h = 0; h < n_hits; h++) {
        cands[h].rel = top > 0 ? hits[h].score / top : 0.0;
        cands[h].vec = hits[h].vec;
        cands[h].chars = hits[h].chars;
        cands[h].text_hash = offline__hash(hits[h].text, strlen(hits[h].text), SEED_SENTENCE);
    }
    size_t want = max_sents < n_hits ? max_sents : n_hits;
    picked = xmalloc(want * sizeof(*picked));
    /* max_chars + 1: the first sentence needs no separating space. */
    k = offline__mmr(cands, n_hits, OFFLINE__SENT_DIMS, MMR_LAMBDA, want, max_chars + 1, MIN_REL,
                     picked);
    if (k == 0)
        goto out;
    picked_hits = xmalloc(k * sizeof(*picked_hits));
    for (size_t i = 0; i < k; i++)
        picked_hits[i] = &hits[picked[i]];
    rc = compose(picked_hits, k, out);
    if (rc == LOCI_OK)
        out->is_found = true;
out:
    if (rc == LOCI_OK && !out->is_found) {
        offline_answer_release(out);
        out->markdown = xstrdup(OFFLINE_NOT_FOUND);
    } else if (rc) {
        offline_answer_release(out);
    }
    for (size_t h = 0; h < n_hits; h++)
        xfree(hits[h].text);
    xfree(hits);
    xfree(picked_hits);
    xfree(picked);
    xfree(cands);
    xfree(vecs);
    buf_release(&b);
    offline__feats_release(&f);
    text_doc_release(&q);
    for (size_t p = 0; p < n_passages; p++)
        text_doc_release(&docs[p]);
    xfree(docs);
    return rc;
}
