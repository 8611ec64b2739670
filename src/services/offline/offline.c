/*
 * offline.c - pieces the offline engine's features share: sentences as
 * display text, which sentences are Markdown block lines, and maximal
 * marginal relevance (MMR) selection for summaries and answers.
 *
 * The features themselves live in offline_embed.c (embeddings),
 * offline_terms.c (key terms), offline_summary.c (summaries, definitions)
 * and offline_answer.c (extractive answers).
 */
#include "services/offline/offline.h"
#include "services/offline/offline_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <string.h>

/* Length of a Markdown list or quote marker (with its space) at s, or 0. */
static size_t marker_len(const char *s, size_t n)
{
    if (n >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+' || s[0] == '>') &&
        (s[1] == ' ' || s[1] == '\t'))
        return 2;
    size_t i = 0;
    while (i < n && i < 9 && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i > 0 && i + 1 < n && (s[i] == '.' || s[i] == ')') && (s[i + 1] == ' ' || s[i + 1] == '\t'))
        return i + 2;
    return 0;
}

int offline__sentence_text(const struct text_doc *d, size_t si, struct buf *out)
{
    const struct text_sentence *s = &d->sentences[si];
    const char *p = d->text + s->start;
    size_t n = s->end - s->start;
    size_t m = marker_len(p, n);
    return text_clean_line(p + m, n - m, out);
}

bool offline__is_block_line(const struct text_doc *d, size_t si)
{
    const struct text_sentence *s = &d->sentences[si];
    const char *p = d->text + s->start;
    size_t n = s->end - s->start;
    return p[0] == '#' || p[0] == '|' || (n >= 3 && memcmp(p, "```", 3) == 0);
}

size_t offline__n_words(const struct text_doc *d, size_t si)
{
    const struct text_sentence *s = &d->sentences[si];
    size_t n = 0;
    for (size_t k = s->first_token; k < s->first_token + s->n_tokens; k++)
        n += d->tokens[k].is_word;
    return n;
}

#define MMR_DUPLICATE 0.9

size_t offline__mmr(const struct offline__cand *c, size_t n, int dims, double lambda,
                    size_t max_items, size_t max_chars, double min_rel, size_t *out_idx)
{
    if (n == 0 || max_items == 0)
        return 0;
    bool *taken = xcalloc(n, sizeof(*taken));
    double *max_sim = xcalloc(n, sizeof(*max_sim));
    size_t k = 0, used = 0;
    while (k < max_items) {
        size_t best = n;
        double best_score = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            if (taken[i] || c[i].rel < min_rel || max_sim[i] >= MMR_DUPLICATE ||
                c[i].chars > max_chars - used)
                continue;
            double score = lambda * c[i].rel - (1.0 - lambda) * max_sim[i];
            if (score > best_score) {
                best_score = score;
                best = i;
            }
        }
        if (best == n)
            break;
        taken[best] = true;
        out_idx[k++] = best;
        used += c[best].chars;
        for (size_t i = 0; i < n; i++) {
            if (taken[i])
                continue;
            double s = c[i].text_hash == c[best].text_hash
                           ? 1.0
                           : (double)offline_dot(c[i].vec, c[best].vec, dims);
            if (s > max_sim[i])
                max_sim[i] = s;
        }
    }
    xfree(taken);
    xfree(max_sim);
    return k;
}
