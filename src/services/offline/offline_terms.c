/*
 * offline_terms.c - key terms with YAKE (Campos et al., "YAKE! Keyword
 * extraction from single documents using multiple local features",
 * Information Sciences 509, 2020): statistics of each word inside the one
 * text, no corpus and no training.
 *
 * Words are grouped by stem ("network" and "networks" are one word). For
 * each word w (sentences numbered from 0):
 *
 *   casing     T_case = max(TF_upper, TF_acronym) / (1 + ln TF)
 *              (TF_upper: capitalised, not first word of its sentence)
 *   position   T_pos  = ln(ln(3 + median of the sentences w occurs in))
 *   frequency  T_freq = TF / (mean TF + standard deviation of TF), over the
 *              words that are not stop words or numbers
 *   relatedness T_rel = 1 + (DL + DR) * TF / max TF, where DL = distinct left
 *              neighbours / all left co-occurrences (DR alike on the right);
 *              neighbours are adjacent words within a phrase
 *   spread     T_sent = sentences with w / all sentences
 *
 *   S(w) = T_rel * T_pos / (T_case + T_freq / T_rel + T_sent / T_rel)
 *
 * Candidates are 1- to 3-word phrases inside one sentence that cross no
 * punctuation (an in-word hyphen, as in "light-dependent", is not a break)
 * and no number, whose first and last words are not stop words and have at
 * least two characters. A stop word inside ("speed of light") contributes
 * through the probability b of its neighbours, as in YAKE: the product is
 * multiplied by (1 + (1 - b)) and (1 - b) is subtracted from the sum.
 *
 *   S(kw) = prod S(w) / (TF(kw) * (1 + sum S(w)))      lower is better
 *
 * Two adjustments to plain YAKE, both because it has no parts of speech and
 * no notion of how common a word is in English:
 *   - S(kw) is divided by the geometric mean of the IDF prior (see
 *     offline_embed.c) of its content words, so that "chlorophyll" beats
 *     "water" when both are equally prominent in the text;
 *   - in a text of five sentences or more, phrases of two or three words
 *     must occur at least twice (in a shorter one, phrases of three): seen
 *     once, they are mostly verb chains like "bacteria convert light".
 *
 * Candidates with the same stems are one candidate (so variants merge); its
 * display form is its most frequent spelling. Picking best first, a
 * candidate is dropped as a near-duplicate of a picked term when its stems
 * are a run inside the picked term's stems (or the reverse) and it does not
 * occur more often, or when the two keys differ by at most 20% of their
 * length (Levenshtein). Relevance is 1 / (1 + ln(S / S_best)), so the best
 * term has 1 and a term ten times worse has 0.30.
 */
#include "services/offline/offline.h"
#include "services/offline/offline_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NGRAM                3
#define MIN_SENTENCES_FOR_REPEAT 5
#define SEED_SURFACE             11
#define SEED_WORD                12 /* and 13 for stop words */
#define SEED_CAND                15

struct yword {
    const char *stem;
    uint32_t stem_n;
    uint32_t tf, tf_upper, tf_acronym;
    uint32_t n_sent;                               /* distinct sentences */
    uint32_t last_sent;                            /* last sentence seen + 1 (0: none yet) */
    uint32_t sent_off;                             /* into yake.sent_ids */
    uint32_t left_n, left_sum, right_n, right_sum; /* co-occurrence: distinct, total */
    bool is_stop, is_number;
    double idf; /* offline__idf(), the IDF prior */
    double score;
};

struct ycand {
    uint32_t ids[MAX_NGRAM];
    uint32_t len;
    uint32_t tf;
    uint32_t surf;  /* head of its list of spellings (index + 1; 0: none) */
    uint32_t order; /* creation order = order of first occurrence */
    double score;
};

struct ysurf {
    uint64_t h;
    uint32_t count;
    uint32_t next; /* index + 1 of the next spelling of the same candidate */
    size_t start, end;
};

/* A uint64 -> uint32 hash map (open addressing); 0 is not a valid key. */
struct u64map {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, n;
};

struct yake {
    const struct text_doc *d;
    int32_t *tok_word; /* word id of each token, -1 for none */
    struct yword *words;
    size_t n_words, cap_words;
    struct u64map word_map; /* stem hash -> id + 1 */
    struct u64map pairs;    /* (left id + 1) << 32 | (right id + 1) -> co-occurrences */
    uint32_t *sent_ids;
    struct ycand *cands;
    size_t n_cands, cap_cands;
    struct u64map cand_map; /* candidate hash -> index + 1 */
    struct ysurf *surfs;
    size_t n_surfs, cap_surfs;
};

/* ---- Map ------------------------------------------------------------------------ */

static void map_release(struct u64map *m)
{
    xfree(m->keys);
    xfree(m->vals);
    memset(m, 0, sizeof(*m));
}

static uint32_t *map_slot(struct u64map *m, uint64_t key, bool *is_new);

static void map_grow(struct u64map *m)
{
    struct u64map old = *m;
    m->cap = old.cap ? old.cap * 2 : 256;
    m->keys = xcalloc(m->cap, sizeof(*m->keys));
    m->vals = xmalloc(m->cap * sizeof(*m->vals));
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.keys[i]) {
            bool is_new;
            *map_slot(m, old.keys[i], &is_new) = old.vals[i];
        }
    }
    xfree(old.keys);
    xfree(old.vals);
}

/* The value slot of key, inserted (value 0) when new. */
static uint32_t *map_slot(struct u64map *m, uint64_t key, bool *is_new)
{
    if ((m->n + 1) * 2 > m->cap)
        map_grow(m);
    key = key ? key : 1;
    size_t i = (size_t)key & (m->cap - 1);
    while (m->keys[i]) {
        if (m->keys[i] == key) {
            *is_new = false;
            return &m->vals[i];
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = key;
    m->vals[i] = 0;
    m->n++;
    *is_new = true;
    return &m->vals[i];
}

static uint32_t map_get(const struct u64map *m, uint64_t key)
{
    if (!m->cap)
        return 0;
    key = key ? key : 1;
    size_t i = (size_t)key & (m->cap - 1);
    while (m->keys[i]) {
        if (m->keys[i] == key)
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

/* ---- Words ------------------------------------------------------------------------- */

static bool is_candidate_word(const struct text_token *t)
{
    return t->is_word && !t->is_number && t->norm_n <= TEXT_MAX_WORD_BYTES;
}

/* Word ids by stem (and stop flag). Stems are compared by a 64-bit hash: a
 * collision of two different stems in one text is vanishingly unlikely and
 * would only merge their statistics. */
static uint32_t word_id(struct yake *y, const struct text_token *t)
{
    bool is_new;
    /* The stop flag is part of the identity: "US" (an acronym) and "us"
     * share a stem but only one is a stop word. */
    uint64_t h = offline__hash(t->stem, t->stem_n, SEED_WORD + (t->is_stop ? 1 : 0));
    uint32_t *v = map_slot(&y->word_map, h, &is_new);
    if (!is_new)
        return *v - 1;
    if (y->n_words == y->cap_words) {
        y->cap_words = y->cap_words ? y->cap_words * 2 : 256;
        y->words = xrealloc(y->words, y->cap_words * sizeof(*y->words));
    }
    struct yword *w = &y->words[y->n_words];
    memset(w, 0, sizeof(*w));
    w->stem = t->stem;
    w->stem_n = t->stem_n;
    w->is_stop = t->is_stop;
    w->is_number = t->is_number;
    w->idf = offline__idf(t);
    *v = (uint32_t)++y->n_words;
    return (uint32_t)(y->n_words - 1);
}

static void count_words(struct yake *y)
{
    const struct text_doc *d = y->d;
    size_t sent_of_first = (size_t)-1; /* sentence whose first word was seen */
    for (size_t k = 0; k < d->n_tokens; k++) {
        const struct text_token *t = &d->tokens[k];
        y->tok_word[k] = -1;
        if (!t->is_word)
            continue;
        bool is_first = sent_of_first != t->sentence;
        sent_of_first = t->sentence;
        if (t->norm_n > TEXT_MAX_WORD_BYTES)
            continue;
        uint32_t id = word_id(y, t);
        struct yword *w = &y->words[id];
        y->tok_word[k] = (int32_t)id;
        w->tf++;
        if (t->is_all_caps)
            w->tf_acronym++;
        else if (t->is_upper_initial && !is_first)
            w->tf_upper++;
        if (w->last_sent != t->sentence + 1) {
            w->last_sent = (uint32_t)t->sentence + 1;
            w->n_sent++;
        }
    }
    /* The distinct sentences of each word, in order, for the median. */
    size_t total = 0;
    for (size_t i = 0; i < y->n_words; i++) {
        y->words[i].sent_off = (uint32_t)total;
        total += y->words[i].n_sent;
        y->words[i].n_sent = 0;
        y->words[i].last_sent = 0;
    }
    y->sent_ids = xmalloc((total ? total : 1) * sizeof(*y->sent_ids));
    for (size_t k = 0; k < d->n_tokens; k++) {
        if (y->tok_word[k] < 0)
            continue;
        struct yword *w = &y->words[y->tok_word[k]];
        size_t s = d->tokens[k].sentence;
        if (w->last_sent != s + 1) {
            w->last_sent = (uint32_t)s + 1;
            y->sent_ids[w->sent_off + w->n_sent++] = (uint32_t)s;
        }
    }
}

static void score_words(struct yake *y)
{
    double sum = 0, sum2 = 0, max_tf = 0;
    size_t n_valid = 0;
    for (size_t i = 0; i < y->n_words; i++) {
        const struct yword *w = &y->words[i];
        if (w->tf > max_tf)
            max_tf = w->tf;
        if (w->is_stop || w->is_number)
            continue;
        sum += w->tf;
        sum2 += (double)w->tf * w->tf;
        n_valid++;
    }
    double mean = n_valid ? sum / (double)n_valid : 1.0;
    double var = n_valid ? sum2 / (double)n_valid - mean * mean : 0.0;
    double spread = mean + sqrt(var > 0 ? var : 0);
    double n_sent = y->d->n_sentences ? (double)y->d->n_sentences : 1.0;
    for (size_t i = 0; i < y->n_words; i++) {
        struct yword *w = &y->words[i];
        double tf = w->tf;
        const uint32_t *ids = y->sent_ids + w->sent_off;
        double median = w->n_sent % 2 ? ids[w->n_sent / 2]
                                      : (ids[w->n_sent / 2 - 1] + ids[w->n_sent / 2]) / 2.0;
        double t_case =
            (w->tf_upper > w->tf_acronym ? w->tf_upper : w->tf_acronym) / (1.0 + log(tf));
        double t_pos = log(log(3.0 + median));
        double t_freq = tf / spread;
        double dl = w->left_sum ? (double)w->left_n / w->left_sum : 0.0;
        double dr = w->right_sum ? (double)w->right_n / w->right_sum : 0.0;
        double t_rel = 1.0 + (dl + dr) * tf / max_tf;
        double t_sent = w->n_sent / n_sent;
        w->score = t_rel * t_pos / (t_case + t_freq / t_rel + t_sent / t_rel);
    }
}

/* ---- Phrases ----------------------------------------------------------------------------- */

/* Whether token k (not a word) joins the words on its sides into one phrase:
 * a hyphen written without spaces, as in "light-dependent". */
static bool is_joiner(const struct text_doc *d, size_t k)
{
    const struct text_token *t = &d->tokens[k];
    if (k == 0 || k + 1 >= d->n_tokens || t->is_word)
        return false;
    const struct text_token *a = &d->tokens[k - 1], *b = &d->tokens[k + 1];
    bool is_hyphen = (t->norm_n == 1 && t->norm[0] == '-') ||
                     (t->norm_n == 3 && memcmp(t->norm, "\xe2\x80\x90", 3) == 0);
    return is_hyphen && a->is_word && b->is_word && a->end == t->start && t->end == b->start &&
           a->sentence == b->sentence;
}

static uint64_t surface_hash(const char *s, size_t a, size_t e)
{
    char buf[512];
    size_t m = 0;
    bool was_space = false;
    for (size_t i = a; i < e && m < sizeof(buf); i++) {
        char c = s[i];
        bool sp = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if (sp && !was_space)
            buf[m++] = ' ';
        else if (!sp)
            buf[m++] = c;
        was_space = sp;
    }
    return offline__hash(buf, m, SEED_SURFACE);
}

static void add_surface(struct yake *y, struct ycand *c, size_t start, size_t end)
{
    uint64_t h = surface_hash(y->d->text, start, end);
    for (uint32_t s = c->surf; s; s = y->surfs[s - 1].next) {
        if (y->surfs[s - 1].h == h) {
            y->surfs[s - 1].count++;
            return;
        }
    }
    if (y->n_surfs == y->cap_surfs) {
        y->cap_surfs = y->cap_surfs ? y->cap_surfs * 2 : 256;
        y->surfs = xrealloc(y->surfs, y->cap_surfs * sizeof(*y->surfs));
    }
    struct ysurf *sf = &y->surfs[y->n_surfs++];
    sf->h = h;
    sf->count = 1;
    sf->start = start;
    sf->end = end;
    sf->next = 0;
    /* Append, so that the first spelling seen wins ties. */
    uint32_t *link = &c->surf;
    while (*link)
        link = &y->surfs[*link - 1].next;
    *link = (uint32_t)y->n_surfs;
}

static void add_candidate(struct yake *y, const size_t *toks, size_t len)
{
    const struct text_doc *d = y->d;
    uint32_t ids[MAX_NGRAM] = {0, 0, 0};
    for (size_t i = 0; i < len; i++)
        ids[i] = (uint32_t)y->tok_word[toks[i]];
    bool is_new;
    uint32_t *v =
        map_slot(&y->cand_map, offline__hash(ids, len * sizeof(ids[0]), SEED_CAND), &is_new);
    if (is_new) {
        if (y->n_cands == y->cap_cands) {
            y->cap_cands = y->cap_cands ? y->cap_cands * 2 : 256;
            y->cands = xrealloc(y->cands, y->cap_cands * sizeof(*y->cands));
        }
        struct ycand *c = &y->cands[y->n_cands];
        memset(c, 0, sizeof(*c));
        memcpy(c->ids, ids, sizeof(ids));
        c->len = (uint32_t)len;
        c->order = (uint32_t)y->n_cands;
        *v = (uint32_t)++y->n_cands;
    }
    struct ycand *c = &y->cands[*v - 1];
    c->tf++;
    add_surface(y, c, d->tokens[toks[0]].start, d->tokens[toks[len - 1]].end);
}

static bool can_bound(const struct yake *y, size_t k)
{
    const struct text_token *t = &y->d->tokens[k];
    return !t->is_stop && text_count_chars(t->norm, t->norm_n) >= 2;
}

/* One phrase: words not separated by punctuation or numbers. */
static void phrase(struct yake *y, const size_t *toks, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        uint64_t key =
            ((uint64_t)(y->tok_word[toks[i]] + 1) << 32) | (uint64_t)(y->tok_word[toks[i + 1]] + 1);
        bool is_new;
        uint32_t *v = map_slot(&y->pairs, key, &is_new);
        if (is_new) {
            y->words[y->tok_word[toks[i]]].right_n++;
            y->words[y->tok_word[toks[i + 1]]].left_n++;
        }
        (*v)++;
        y->words[y->tok_word[toks[i]]].right_sum++;
        y->words[y->tok_word[toks[i + 1]]].left_sum++;
    }
    for (size_t i = 0; i < n; i++) {
        if (!can_bound(y, toks[i]))
            continue;
        for (size_t len = 1; len <= MAX_NGRAM && i + len <= n; len++) {
            if (can_bound(y, toks[i + len - 1]))
                add_candidate(y, toks + i, len);
        }
    }
}

static void collect_phrases(struct yake *y)
{
    const struct text_doc *d = y->d;
    size_t *toks = xmalloc((d->n_tokens ? d->n_tokens : 1) * sizeof(*toks));
    for (size_t si = 0; si < d->n_sentences; si++) {
        const struct text_sentence *s = &d->sentences[si];
        size_t n = 0;
        for (size_t k = s->first_token; k < s->first_token + s->n_tokens; k++) {
            const struct text_token *t = &d->tokens[k];
            if (y->tok_word[k] >= 0 && is_candidate_word(t)) {
                toks[n++] = k;
            } else if (!is_joiner(d, k)) {
                phrase(y, toks, n);
                n = 0;
            }
        }
        phrase(y, toks, n);
    }
    xfree(toks);
}

/* ---- Candidate scores --------------------------------------------------------------------- */

static double cooc(const struct yake *y, uint32_t a, uint32_t b)
{
    return map_get(&y->pairs, ((uint64_t)(a + 1) << 32) | (uint64_t)(b + 1));
}

static double specificity(const struct yake *y, const struct ycand *c);

static void score_candidates(struct yake *y)
{
    for (size_t i = 0; i < y->n_cands; i++) {
        struct ycand *c = &y->cands[i];
        double prod = 1.0, sum = 0.0;
        for (uint32_t k = 0; k < c->len; k++) {
            const struct yword *w = &y->words[c->ids[k]];
            if (!w->is_stop || k == 0 || k + 1 == c->len) {
                prod *= w->score;
                sum += w->score;
                continue;
            }
            /* Inner stop word: k is neither first nor last. */
            const struct yword *l = &y->words[c->ids[k - 1]];
            double p_left = cooc(y, c->ids[k - 1], c->ids[k]) / (l->tf ? l->tf : 1);
            const struct yword *r = &y->words[c->ids[k + 1]];
            double p_right = cooc(y, c->ids[k], c->ids[k + 1]) / (r->tf ? r->tf : 1);
            double b = p_left * p_right;
            prod *= 1.0 + (1.0 - b);
            sum -= 1.0 - b;
        }
        double denom = c->tf * (1.0 + sum);
        c->score = prod / (denom > 1e-9 ? denom : 1e-9) / specificity(y, c);
    }
}

/* Geometric mean of the IDF prior of the candidate's content words. */
static double specificity(const struct yake *y, const struct ycand *c)
{
    double sum = 0.0;
    int n = 0;
    for (uint32_t k = 0; k < c->len; k++) {
        const struct yword *w = &y->words[c->ids[k]];
        if (!w->is_stop && w->idf > 0.0) {
            sum += log(w->idf);
            n++;
        }
    }
    return n ? exp(sum / n) : 1.0;
}

/* Drop phrases seen once that are probably verb chains: in a text of
 * MIN_SENTENCES_FOR_REPEAT sentences or more, every phrase of two or three
 * words; in a shorter text (a question), phrases of three words ("Neural
 * Networks learn", "learn with backpropagation"): without parts of speech
 * these are mostly chains like "bacteria convert light". */
static void drop_unrepeated(struct yake *y)
{
    uint32_t max_len = y->d->n_sentences < MIN_SENTENCES_FOR_REPEAT ? 2 : 1;
    size_t k = 0;
    for (size_t i = 0; i < y->n_cands; i++) {
        if (y->cands[i].len <= max_len || y->cands[i].tf >= 2)
            y->cands[k++] = y->cands[i];
    }
    y->n_cands = k;
}

static int cmp_cands(const void *pa, const void *pb)
{
    const struct ycand *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score < b->score ? -1 : 1;
    if (a->tf != b->tf)
        return a->tf > b->tf ? -1 : 1;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* ---- Near-duplicates ----------------------------------------------------------------------- */

/* Whether the stems of a are a contiguous run inside those of b. */
static bool is_inside(const struct ycand *a, const struct ycand *b)
{
    if (a->len > b->len)
        return false;
    for (uint32_t off = 0; off + a->len <= b->len; off++) {
        if (memcmp(b->ids + off, a->ids, a->len * sizeof(a->ids[0])) == 0)
            return true;
    }
    return false;
}

static size_t stem_key(const struct yake *y, const struct ycand *c, char *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t k = 0; k < c->len; k++) {
        const struct yword *w = &y->words[c->ids[k]];
        if (k && n < cap)
            out[n++] = ' ';
        size_t m = w->stem_n < cap - n ? w->stem_n : cap - n;
        memcpy(out + n, w->stem, m);
        n += m;
    }
    return n;
}

#define LEV_MAX 128

/* Levenshtein distance of two byte strings of at most LEV_MAX bytes. */
static size_t levenshtein(const char *a, size_t an, const char *b, size_t bn)
{
    size_t row[LEV_MAX + 1];
    for (size_t j = 0; j <= bn; j++)
        row[j] = j;
    for (size_t i = 1; i <= an; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn];
}

/* c and p share a word (by stem). */
static bool shares_word(const struct ycand *c, const struct ycand *p)
{
    for (uint32_t i = 0; i < c->len; i++)
        for (uint32_t j = 0; j < p->len; j++)
            if (c->ids[i] == p->ids[j])
                return true;
    return false;
}

static bool is_near_duplicate(const struct yake *y, const struct ycand *c, const struct ycand *p)
{
    if ((is_inside(c, p) || is_inside(p, c)) && c->tf <= p->tf)
        return true;
    /* In a short text (a question) a phrase seen once that overlaps a
     * better one is its verb chain: "Networks learn" after "Neural
     * Networks". */
    if (y->d->n_sentences < MIN_SENTENCES_FOR_REPEAT && c->tf == 1 && c->len > 1 &&
        shares_word(c, p))
        return true;
    char ka[LEV_MAX], kb[LEV_MAX];
    size_t an = stem_key(y, c, ka, sizeof(ka)), bn = stem_key(y, p, kb, sizeof(kb));
    size_t longer = an > bn ? an : bn;
    if (longer == 0 || longer >= LEV_MAX)
        return false;
    return (double)levenshtein(ka, an, kb, bn) <= 0.2 * (double)longer;
}

/* ---- Output -------------------------------------------------------------------------------------
 */

static const struct ysurf *best_surface(const struct yake *y, const struct ycand *c)
{
    const struct ysurf *best = NULL;
    for (uint32_t s = c->surf; s; s = y->surfs[s - 1].next) {
        if (!best || y->surfs[s - 1].count > best->count)
            best = &y->surfs[s - 1];
    }
    return best;
}

static bool has_key(const struct offline_terms *out, const char *key)
{
    for (size_t i = 0; i < out->n_terms; i++) {
        if (strcmp(out->terms[i].key, key) == 0)
            return true;
    }
    return false;
}

static int emit(struct yake *y, size_t max_terms, struct offline_terms *out)
{
    int rc = LOCI_OK;
    struct buf disp, key;
    buf_init(&disp, 4096);
    buf_init(&key, 4096);
    const struct ycand **picked = xmalloc(max_terms * sizeof(*picked));
    size_t n_picked = 0;
    out->terms = xcalloc(max_terms, sizeof(*out->terms));
    double best = y->n_cands ? y->cands[0].score : 1.0;
    for (size_t i = 0; i < y->n_cands && out->n_terms < max_terms; i++) {
        const struct ycand *c = &y->cands[i];
        bool is_dup = false;
        for (size_t k = 0; k < n_picked && !is_dup; k++)
            is_dup = is_near_duplicate(y, c, picked[k]);
        if (is_dup)
            continue;
        const struct ysurf *sf = best_surface(y, c);
        buf_reset(&disp);
        buf_reset(&key);
        rc = text_clean_line(y->d->text + sf->start, sf->end - sf->start, &disp);
        if (rc == LOCI_ETOOBIG)
            continue; /* an absurdly long spelling: not a term */
        if (rc)
            goto out;
        rc = text_term_key(buf_cstr(&disp), disp.len, &key);
        if (rc == LOCI_EINVAL || rc == LOCI_ETOOBIG || has_key(out, buf_cstr(&key))) {
            rc = LOCI_OK;
            continue;
        }
        if (rc)
            goto out;
        picked[n_picked++] = c;
        struct offline_term *t = &out->terms[out->n_terms++];
        t->term = xstrdup(buf_cstr(&disp));
        t->key = xstrdup(buf_cstr(&key));
        t->count = (int)c->tf;
        double ratio = best > 0 ? c->score / best : 1.0;
        t->score = 1.0 / (1.0 + log(ratio > 1.0 ? ratio : 1.0));
    }
out:
    xfree(picked);
    buf_release(&disp);
    buf_release(&key);
    return rc;
}

void offline_terms_release(struct offline_terms *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_terms; i++) {
        xfree(t->terms[i].term);
        xfree(t->terms[i].key);
    }
    xfree(t->terms);
    t->terms = NULL;
    t->n_terms = 0;
}

int offline_keyterms(const char *text, size_t n, size_t max_terms, struct offline_terms *out)
{
    memset(out, 0, sizeof(*out));
    if (!text && n)
        return LOCI_EINVAL;
    struct yake y;
    memset(&y, 0, sizeof(y));
    struct text_doc d;
    int rc = text_segment(text ? text : "", n, 0, &d);
    if (rc)
        return rc;
    if (max_terms == 0 || d.n_tokens == 0)
        goto out;
    y.d = &d;
    y.tok_word = xmalloc(d.n_tokens * sizeof(*y.tok_word));
    count_words(&y);
    collect_phrases(&y);
    score_words(&y);
    score_candidates(&y);
    drop_unrepeated(&y);
    if (y.n_cands == 0)
        goto out;
    qsort(y.cands, y.n_cands, sizeof(*y.cands), cmp_cands);
    rc = emit(&y, max_terms < y.n_cands ? max_terms : y.n_cands, out);
    if (rc)
        offline_terms_release(out);
out:
    xfree(y.tok_word);
    xfree(y.words);
    xfree(y.sent_ids);
    xfree(y.cands);
    xfree(y.surfs);
    map_release(&y.word_map);
    map_release(&y.pairs);
    map_release(&y.cand_map);
    text_doc_release(&d);
    return rc;
}
