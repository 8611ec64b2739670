/*
 * offline_summary.c - extractive summaries (TextRank + MMR) and picking the
 * sentence that best defines a term. Only whole sentences of the text are
 * ever returned; nothing is paraphrased.
 *
 * Summaries: the candidate sentences are those with at least three words
 * that are not Markdown headings, table rows or fences (when no sentence
 * has three words, any sentence with a word). Each gets its offline
 * embedding (OFFLINE__SENT_DIMS buckets); the similarity of two sentences
 * is the cosine of their vectors, negatives and values under 0.02 taken as
 * 0. TextRank is PageRank on that weighted graph (damping 0.85, iterated
 * until the scores move by less than 1e-7 in total, at most 200 rounds;
 * sentences with no edge spread their score evenly). Above 400 candidates
 * the quadratic graph is replaced by each sentence's cosine to the
 * centroid of all of them, which ranks central sentences alike in linear
 * time. MMR (lambda 0.7) then picks up to max_sentences sentences within
 * max_chars, and they are emitted in source order, joined by one space.
 */
#include "services/offline/offline.h"
#include "services/offline/offline_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAMPING        0.85
#define PR_EPSILON     1e-7
#define PR_MAX_ROUNDS  200
#define SIM_FLOOR      0.02
#define TEXTRANK_MAX   400
#define MMR_LAMBDA     0.7
#define SEED_SENTENCE  21
#define DEFAULT_SENTS  3
#define DEFAULT_CHARS  600
#define MIN_WORDS      3
#define MAX_TEXT_BYTES ((size_t)1 << 20) /* one sentence's display text */

/* The candidate sentences of a doc with their display text and vectors. */
struct sents {
    size_t n;
    size_t *idx; /* sentence index in the doc */
    char **text; /* display text */
    size_t *chars;
    float *vecs; /* n * OFFLINE__SENT_DIMS */
};

static void sents_release(struct sents *s)
{
    for (size_t i = 0; i < s->n; i++)
        xfree(s->text[i]);
    xfree(s->idx);
    xfree(s->text);
    xfree(s->chars);
    xfree(s->vecs);
    memset(s, 0, sizeof(*s));
}

static size_t pick_sentences(const struct text_doc *d, size_t min_words, size_t *idx)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_sentences; i++) {
        if (!offline__is_block_line(d, i) && offline__n_words(d, i) >= min_words)
            idx[n++] = i;
    }
    return n;
}

static int sents_build(const struct text_doc *d, struct sents *s)
{
    memset(s, 0, sizeof(*s));
    if (d->n_sentences == 0)
        return LOCI_OK;
    s->idx = xmalloc(d->n_sentences * sizeof(*s->idx));
    s->n = pick_sentences(d, MIN_WORDS, s->idx);
    if (s->n == 0)
        s->n = pick_sentences(d, 1, s->idx);
    if (s->n == 0)
        return LOCI_OK;
    s->text = xcalloc(s->n, sizeof(*s->text));
    s->chars = xmalloc(s->n * sizeof(*s->chars));
    s->vecs = xmalloc(s->n * OFFLINE__SENT_DIMS * sizeof(*s->vecs));
    struct offline__feats f;
    offline__feats_init(&f);
    struct buf b;
    buf_init(&b, MAX_TEXT_BYTES);
    int rc = LOCI_OK;
    for (size_t i = 0; i < s->n; i++) {
        const struct text_sentence *st = &d->sentences[s->idx[i]];
        buf_reset(&b);
        rc = offline__sentence_text(d, s->idx[i], &b);
        if (rc == LOCI_ETOOBIG) {
            /* Longer than any summary could hold: keep it out of reach. */
            rc = LOCI_OK;
            s->text[i] = xstrdup("");
            s->chars[i] = (size_t)-1 / 4;
        } else if (rc) {
            break;
        } else {
            s->chars[i] = text_count_chars(b.p ? b.p : "", b.len);
            s->text[i] = buf_detach(&b, NULL);
        }
        offline__embed_range(d, st->first_token, st->first_token + st->n_tokens, OFFLINE__SENT_DIMS,
                             &f, s->vecs + i * OFFLINE__SENT_DIMS);
    }
    buf_release(&b);
    offline__feats_release(&f);
    return rc;
}

static const float *vec(const struct sents *s, size_t i)
{
    return s->vecs + i * OFFLINE__SENT_DIMS;
}

static void textrank(const struct sents *s, double *score)
{
    size_t n = s->n;
    float *w = xmalloc(n * n * sizeof(*w));
    double *out_sum = xcalloc(n, sizeof(*out_sum));
    double *next = xmalloc(n * sizeof(*next));
    double *share = xmalloc(n * sizeof(*share)); /* score[j] / out_sum[j] */
    for (size_t i = 0; i < n; i++) {
        w[i * n + i] = 0.0f;
        for (size_t j = i + 1; j < n; j++) {
            float x = offline_dot(vec(s, i), vec(s, j), OFFLINE__SENT_DIMS);
            x = x >= SIM_FLOOR ? x : 0.0f;
            w[i * n + j] = w[j * n + i] = x;
            out_sum[i] += x;
            out_sum[j] += x;
        }
    }
    for (size_t i = 0; i < n; i++)
        score[i] = 1.0 / (double)n;
    for (int round = 0; round < PR_MAX_ROUNDS; round++) {
        double dangling = 0.0;
        for (size_t j = 0; j < n; j++) {
            if (out_sum[j] <= 0.0)
                dangling += score[j];
        }
        for (size_t j = 0; j < n; j++)
            share[j] = out_sum[j] > 0.0 ? score[j] / out_sum[j] : 0.0;
        double delta = 0.0;
        for (size_t i = 0; i < n; i++) {
            /* w is symmetric: row i holds the edges into i. */
            const float *row = w + i * n;
            double in = 0.0;
            for (size_t j = 0; j < n; j++) {
                if (row[j] > 0.0f)
                    in += row[j] * share[j];
            }
            next[i] = (1.0 - DAMPING) / (double)n + DAMPING * (in + dangling / (double)n);
            delta += fabs(next[i] - score[i]);
        }
        memcpy(score, next, n * sizeof(*score));
        if (delta < PR_EPSILON)
            break;
    }
    xfree(w);
    xfree(out_sum);
    xfree(next);
    xfree(share);
}

static void centrality(const struct sents *s, double *score)
{
    double *c = xcalloc(OFFLINE__SENT_DIMS, sizeof(*c));
    for (size_t i = 0; i < s->n; i++)
        for (int k = 0; k < OFFLINE__SENT_DIMS; k++)
            c[k] += vec(s, i)[k];
    double norm = 0.0;
    for (int k = 0; k < OFFLINE__SENT_DIMS; k++)
        norm += c[k] * c[k];
    norm = norm > 0 ? sqrt(norm) : 1.0;
    for (size_t i = 0; i < s->n; i++) {
        double dot = 0.0;
        for (int k = 0; k < OFFLINE__SENT_DIMS; k++)
            dot += vec(s, i)[k] * c[k];
        score[i] = dot > 0 ? dot / norm : 0.0;
    }
    xfree(c);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int offline_summarize(const char *text, size_t n, const struct offline_summary_opts *o, char **out)
{
    *out = NULL;
    if (!text && n)
        return LOCI_EINVAL;
    size_t max_sents = o && o->max_sentences ? o->max_sentences : DEFAULT_SENTS;
    size_t max_chars = o && o->max_chars ? o->max_chars : DEFAULT_CHARS;
    if (max_chars > (size_t)-1 / 8)
        max_chars = (size_t)-1 / 8;
    struct text_doc d;
    struct sents s;
    memset(&s, 0, sizeof(s));
    struct offline__cand *cands = NULL;
    double *score = NULL;
    size_t *picked = NULL;
    struct buf res;
    buf_init(&res, max_chars * 4 + 1);
    int rc = text_segment(text ? text : "", n, 0, &d);
    if (rc)
        goto out;
    rc = sents_build(&d, &s);
    if (rc || s.n == 0)
        goto out;
    score = xmalloc(s.n * sizeof(*score));
    if (s.n <= TEXTRANK_MAX)
        textrank(&s, score);
    else
        centrality(&s, score);
    double top = 0.0;
    for (size_t i = 0; i < s.n; i++)
        top = score[i] > top ? score[i] : top;
    cands = xmalloc(s.n * sizeof(*cands));
    for (size_t i = 0; i < s.n; i++) {
        cands[i].rel = top > 0 ? score[i] / top : 1.0;
        cands[i].vec = vec(&s, i);
        cands[i].chars = s.chars[i] + 1; /* the separating space */
        cands[i].text_hash = offline__hash(s.text[i], strlen(s.text[i]), SEED_SENTENCE);
    }
    picked = xmalloc((max_sents < s.n ? max_sents : s.n) * sizeof(*picked));
    /* max_chars + 1: the first sentence needs no separator. */
    size_t k = offline__mmr(cands, s.n, OFFLINE__SENT_DIMS, MMR_LAMBDA,
                            max_sents < s.n ? max_sents : s.n, max_chars + 1, 0.0, picked);
    qsort(picked, k, sizeof(*picked), cmp_size);
    for (size_t i = 0; i < k && rc == LOCI_OK; i++) {
        if (i)
            rc = buf_append_char(&res, ' ');
        if (rc == LOCI_OK)
            rc = buf_append_str(&res, s.text[picked[i]]);
    }
out:
    if (rc == LOCI_OK)
        *out = res.len ? buf_detach(&res, NULL) : xstrdup("");
    buf_release(&res);
    xfree(picked);
    xfree(cands);
    xfree(score);
    sents_release(&s);
    text_doc_release(&d);
    return rc;
}

/* ---- Definitions ------------------------------------------------------------------ */

static bool norm_is(const struct text_token *t, const char *w)
{
    size_t n = strlen(w);
    return t->norm_n == n && memcmp(t->norm, w, n) == 0;
}

static bool norm_in(const struct text_token *t, const char *const *list)
{
    for (; *list; list++) {
        if (norm_is(t, *list))
            return true;
    }
    return false;
}

static const char *const copulas[] = {"is", "are", "was", "were", NULL};
static const char *const defining_verbs[] = {
    "refers",    "refer",    "means",      "mean",      "denotes",    "denote",
    "describes", "describe", "represents", "represent", "consists",   "consist",
    "comprises", "involves", "defines",    "define",    "designates", NULL,
};
static const char *const articles[] = {"a", "an", "the", NULL};
static const char *const naming[] = {"called", "termed", "named", "dubbed", NULL};

/* Word tokens of sentence si, as indexes into d->tokens. */
static size_t sentence_words(const struct text_doc *d, size_t si, size_t *w)
{
    const struct text_sentence *s = &d->sentences[si];
    size_t n = 0;
    for (size_t k = s->first_token; k < s->first_token + s->n_tokens; k++) {
        if (d->tokens[k].is_word)
            w[n++] = k;
    }
    return n;
}

/* Where the term's stems occur as consecutive words of w, or n (none). */
static size_t find_term(const struct text_doc *d, const size_t *w, size_t n,
                        const struct text_doc *term, const size_t *tw, size_t tn)
{
    for (size_t i = 0; i + tn <= n; i++) {
        size_t k = 0;
        while (k < tn) {
            const struct text_token *a = &d->tokens[w[i + k]], *b = &term->tokens[tw[k]];
            if (a->stem_n != b->stem_n || memcmp(a->stem, b->stem, a->stem_n) != 0)
                break;
            k++;
        }
        if (k == tn)
            return i;
    }
    return n;
}

/* How much sentence si reads like a definition of the term found at word
 * position at (of n words w[]). */
static double definition_score(const struct text_doc *d, size_t si, const size_t *w, size_t n,
                               size_t at, size_t tn)
{
    double score = 0.0;
    size_t after = at + tn;
    const struct text_token *t1 = after < n ? &d->tokens[w[after]] : NULL;
    const struct text_token *t2 = after + 1 < n ? &d->tokens[w[after + 1]] : NULL;
    /* Right after the term: "X is a ...", "X refers to ...". */
    if (t1 && norm_in(t1, copulas)) {
        score += 2.0;
        if (t2 && (norm_in(t2, articles) || norm_is(t2, "defined") || norm_is(t2, "called")))
            score += 0.5;
    } else if (t1 && norm_in(t1, defining_verbs)) {
        score += 2.0;
    } else if (t1 && t2 && norm_is(t1, "can") && norm_is(t2, "be")) {
        score += 1.0;
    }
    /* Apposition: "X, a ...", "X (the ...". */
    size_t last_tok = w[after - 1];
    if (last_tok + 1 < d->n_tokens && d->tokens[last_tok + 1].sentence == si &&
        !d->tokens[last_tok + 1].is_word && t1 && norm_in(t1, articles)) {
        const struct text_token *p = &d->tokens[last_tok + 1];
        if (norm_is(p, ",") || norm_is(p, "(") || norm_is(p, ":"))
            score += 1.0;
    }
    /* Before the term: "... is called X", "known as X", "defined as X". */
    if (at >= 1 && norm_in(&d->tokens[w[at - 1]], naming))
        score += 1.5;
    else if (at >= 2 && norm_is(&d->tokens[w[at - 1]], "as") &&
             (norm_is(&d->tokens[w[at - 2]], "known") || norm_is(&d->tokens[w[at - 2]], "defined")))
        score += 1.5;
    /* The term is the subject. */
    if (at == 0 || (at == 1 && norm_in(&d->tokens[w[0]], articles)))
        score += 1.0;
    /* Earlier is better; neither fragments nor walls of text. */
    score += 0.5 * (1.0 - (double)si / (double)d->n_sentences);
    if (n < 5)
        score -= 1.0;
    else if (n <= 35)
        score += 0.5;
    else
        score -= 0.02 * (double)(n - 35);
    const struct text_sentence *s = &d->sentences[si];
    if (d->text[s->end - 1] == '?')
        score -= 1.5;
    return score;
}

int offline_define(const char *term, size_t term_n, const char *text, size_t n, char **out)
{
    *out = NULL;
    if ((!term && term_n) || (!text && n))
        return LOCI_EINVAL;
    struct text_doc td, d;
    memset(&d, 0, sizeof(d));
    size_t *tw = NULL, *w = NULL;
    struct buf b;
    buf_init(&b, MAX_TEXT_BYTES);
    int rc = text_segment(term ? term : "", term_n, 0, &td);
    if (rc)
        return rc;
    tw = xmalloc((td.n_tokens ? td.n_tokens : 1) * sizeof(*tw));
    size_t tn = 0;
    for (size_t k = 0; k < td.n_tokens; k++) {
        if (td.tokens[k].is_word)
            tw[tn++] = k;
    }
    if (tn == 0)
        goto out;
    rc = text_segment(text ? text : "", n, 0, &d);
    if (rc)
        goto out;
    w = xmalloc((d.n_tokens ? d.n_tokens : 1) * sizeof(*w));
    size_t best = d.n_sentences;
    double best_score = -INFINITY;
    for (size_t si = 0; si < d.n_sentences; si++) {
        if (offline__is_block_line(&d, si))
            continue;
        size_t nw = sentence_words(&d, si, w);
        if (nw < tn + 1)
            continue;
        size_t at = find_term(&d, w, nw, &td, tw, tn);
        if (at == nw)
            continue;
        double score = definition_score(&d, si, w, nw, at, tn);
        if (score > best_score) {
            best_score = score;
            best = si;
        }
    }
    if (best == d.n_sentences)
        goto out;
    rc = offline__sentence_text(&d, best, &b);
    if (rc == LOCI_OK && b.len)
        *out = buf_detach(&b, NULL);
    else if (rc == LOCI_ETOOBIG)
        rc = LOCI_OK; /* no readable definition in a megabyte-long "sentence" */
out:
    buf_release(&b);
    xfree(tw);
    xfree(w);
    text_doc_release(&td);
    text_doc_release(&d);
    return rc;
}
