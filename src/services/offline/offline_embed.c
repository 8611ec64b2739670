/*
 * offline_embed.c - hashed n-gram embeddings: what the `local` provider
 * returns for /v1/embeddings and what summaries and answers compare
 * sentences with. Not a semantic model: two texts are close when they share
 * (rare) words, word pairs and word pieces.
 *
 * The vector of a text, for dims buckets:
 *
 *   features   f: every word's stem (unigram); every pair of adjacent words
 *                 in a sentence with no punctuation between them (bigram,
 *                 unless both are stop words); every character 3-, 4- and
 *                 5-gram of "<" + case-folded word + ">" for words that are
 *                 not stop words or numbers (at most 40 characters)
 *   weight   w(o): of one occurrence o of a feature, from the IDF prior of
 *                 its word(s):  unigram  idf(w)
 *                               bigram   0.7 * sqrt(idf(a) * idf(b))
 *                               char     0.8 * idf(w) / sqrt(g), g = number
 *                                        of character grams of that word
 *   value    x(f) = (1 + ln tf(f)) * mean of w(o) over f's occurrences
 *   hashing  h = offline__hash(f) (64 bits); bucket = high 32 bits scaled
 *            to [0, dims); sign = bit 31 (+1 or -1);  v[bucket] += sign * x(f)
 *   result   v / |v|  (the zero vector when no feature exists)
 *
 * The IDF prior stands in for corpus statistics, which do not exist at
 * embedding time (and must not: the same text must always give the same
 * vector). A word whose stem is at rank r (1-based) of the compiled-in list
 * of frequent English words below gets
 *
 *   idf = ln(1 + r / 25) / ln(1 + 1500 / 25)
 *
 * so "the" (r = 1) weighs 0.01, a word around rank 100 0.39, the end of the
 * list (r = 617) 0.79, and any word not on the list (rank taken as 1500) 1.
 * Stop words are capped at rank 50 (0.27), numbers count as rank 400.
 */
#include "services/offline/offline.h"
#include "services/offline/offline_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <libstemmer.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* ---- Hashing ---------------------------------------------------------------- */

uint64_t offline__hash(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

#define SEED_PRIOR   1
#define SEED_UNIGRAM 2
#define SEED_BIGRAM  3
#define SEED_CHAR    4

/* ---- IDF prior ------------------------------------------------------------------ */

/* 617 of the most frequent English words, most frequent first, in the
 * approximate order of general-English frequency lists (written for Loci
 * from that knowledge; the order only needs to be roughly right). */
static const char *const frequent_words[] = {
    "the",
    "be",
    "and",
    "of",
    "a",
    "in",
    "to",
    "have",
    "it",
    "i",
    "that",
    "for",
    "you",
    "he",
    "with",
    "on",
    "do",
    "say",
    "this",
    "they",
    "at",
    "but",
    "we",
    "his",
    "from",
    "not",
    "by",
    "she",
    "or",
    "as",
    "what",
    "go",
    "their",
    "can",
    "who",
    "get",
    "if",
    "would",
    "her",
    "all",
    "my",
    "make",
    "about",
    "know",
    "will",
    "up",
    "one",
    "time",
    "there",
    "year",
    "so",
    "think",
    "when",
    "which",
    "them",
    "some",
    "me",
    "people",
    "take",
    "out",
    "into",
    "just",
    "see",
    "him",
    "your",
    "come",
    "could",
    "now",
    "than",
    "like",
    "other",
    "how",
    "then",
    "its",
    "our",
    "two",
    "more",
    "these",
    "want",
    "way",
    "look",
    "first",
    "also",
    "new",
    "because",
    "day",
    "use",
    "no",
    "man",
    "find",
    "here",
    "thing",
    "give",
    "many",
    "well",
    "only",
    "those",
    "tell",
    "very",
    "even",
    "back",
    "any",
    "good",
    "woman",
    "through",
    "us",
    "life",
    "child",
    "work",
    "down",
    "may",
    "after",
    "should",
    "call",
    "world",
    "over",
    "school",
    "still",
    "try",
    "last",
    "ask",
    "need",
    "too",
    "feel",
    "three",
    "state",
    "never",
    "become",
    "between",
    "high",
    "really",
    "something",
    "most",
    "another",
    "family",
    "own",
    "leave",
    "put",
    "old",
    "while",
    "mean",
    "keep",
    "student",
    "why",
    "let",
    "great",
    "same",
    "big",
    "group",
    "begin",
    "seem",
    "country",
    "help",
    "talk",
    "where",
    "turn",
    "problem",
    "every",
    "start",
    "hand",
    "might",
    "show",
    "part",
    "against",
    "place",
    "such",
    "again",
    "few",
    "case",
    "week",
    "company",
    "system",
    "each",
    "right",
    "program",
    "hear",
    "question",
    "during",
    "play",
    "government",
    "run",
    "small",
    "number",
    "off",
    "always",
    "move",
    "night",
    "live",
    "point",
    "believe",
    "hold",
    "today",
    "bring",
    "happen",
    "next",
    "without",
    "before",
    "large",
    "million",
    "must",
    "home",
    "under",
    "water",
    "room",
    "write",
    "mother",
    "area",
    "national",
    "money",
    "story",
    "young",
    "fact",
    "month",
    "different",
    "lot",
    "study",
    "book",
    "eye",
    "job",
    "word",
    "though",
    "business",
    "issue",
    "side",
    "kind",
    "four",
    "head",
    "far",
    "black",
    "long",
    "both",
    "little",
    "house",
    "yes",
    "since",
    "provide",
    "service",
    "around",
    "friend",
    "important",
    "father",
    "sit",
    "away",
    "until",
    "power",
    "hour",
    "game",
    "often",
    "yet",
    "line",
    "political",
    "end",
    "among",
    "ever",
    "stand",
    "bad",
    "lose",
    "however",
    "member",
    "pay",
    "law",
    "meet",
    "car",
    "city",
    "almost",
    "include",
    "continue",
    "set",
    "later",
    "community",
    "much",
    "name",
    "five",
    "once",
    "white",
    "least",
    "president",
    "learn",
    "real",
    "change",
    "team",
    "minute",
    "best",
    "several",
    "idea",
    "kid",
    "body",
    "information",
    "nothing",
    "ago",
    "lead",
    "social",
    "understand",
    "whether",
    "watch",
    "together",
    "follow",
    "parent",
    "stop",
    "face",
    "anything",
    "create",
    "public",
    "already",
    "speak",
    "others",
    "read",
    "level",
    "allow",
    "add",
    "office",
    "spend",
    "door",
    "health",
    "person",
    "art",
    "sure",
    "war",
    "history",
    "party",
    "within",
    "grow",
    "result",
    "open",
    "morning",
    "walk",
    "reason",
    "low",
    "win",
    "research",
    "girl",
    "guy",
    "early",
    "food",
    "moment",
    "himself",
    "air",
    "teacher",
    "force",
    "offer",
    "enough",
    "education",
    "across",
    "although",
    "remember",
    "foot",
    "second",
    "boy",
    "maybe",
    "toward",
    "able",
    "age",
    "policy",
    "everything",
    "love",
    "process",
    "music",
    "including",
    "consider",
    "appear",
    "actually",
    "buy",
    "probably",
    "human",
    "wait",
    "serve",
    "market",
    "die",
    "send",
    "expect",
    "sense",
    "build",
    "stay",
    "fall",
    "nation",
    "plan",
    "cut",
    "college",
    "interest",
    "death",
    "course",
    "someone",
    "experience",
    "behind",
    "reach",
    "local",
    "kill",
    "six",
    "remain",
    "effect",
    "suggest",
    "class",
    "control",
    "raise",
    "care",
    "perhaps",
    "late",
    "hard",
    "field",
    "else",
    "pass",
    "former",
    "sell",
    "major",
    "sometimes",
    "require",
    "along",
    "development",
    "themselves",
    "report",
    "role",
    "better",
    "economic",
    "effort",
    "decide",
    "rate",
    "strong",
    "possible",
    "heart",
    "leader",
    "light",
    "voice",
    "wife",
    "whole",
    "police",
    "mind",
    "finally",
    "pull",
    "return",
    "free",
    "military",
    "price",
    "less",
    "according",
    "decision",
    "explain",
    "son",
    "hope",
    "develop",
    "view",
    "relationship",
    "carry",
    "town",
    "road",
    "drive",
    "arm",
    "true",
    "federal",
    "break",
    "difference",
    "thank",
    "receive",
    "value",
    "international",
    "building",
    "action",
    "full",
    "model",
    "join",
    "season",
    "society",
    "tax",
    "director",
    "position",
    "player",
    "agree",
    "especially",
    "record",
    "pick",
    "wear",
    "paper",
    "special",
    "space",
    "ground",
    "form",
    "support",
    "event",
    "official",
    "whose",
    "matter",
    "everyone",
    "center",
    "couple",
    "site",
    "project",
    "hit",
    "base",
    "activity",
    "star",
    "table",
    "court",
    "produce",
    "eat",
    "teach",
    "oil",
    "half",
    "situation",
    "easy",
    "cost",
    "industry",
    "figure",
    "street",
    "image",
    "itself",
    "phone",
    "either",
    "data",
    "cover",
    "quite",
    "picture",
    "clear",
    "practice",
    "piece",
    "land",
    "recent",
    "describe",
    "product",
    "doctor",
    "wall",
    "patient",
    "worker",
    "news",
    "test",
    "movie",
    "certain",
    "north",
    "personal",
    "simply",
    "third",
    "technology",
    "catch",
    "step",
    "baby",
    "computer",
    "type",
    "attention",
    "draw",
    "film",
    "tree",
    "source",
    "red",
    "nearly",
    "organization",
    "choose",
    "cause",
    "hair",
    "century",
    "evidence",
    "window",
    "difficult",
    "listen",
    "soon",
    "culture",
    "billion",
    "chance",
    "brother",
    "energy",
    "period",
    "summer",
    "realize",
    "hundred",
    "available",
    "plant",
    "likely",
    "opportunity",
    "term",
    "short",
    "letter",
    "condition",
    "choice",
    "single",
    "rule",
    "daughter",
    "administration",
    "south",
    "husband",
    "floor",
    "campaign",
    "material",
    "population",
    "economy",
    "medical",
    "hospital",
    "church",
    "close",
    "thousand",
    "risk",
    "current",
    "fire",
    "future",
    "wrong",
    "involve",
    "defense",
    "anyone",
    "increase",
    "security",
    "bank",
    "myself",
    "certainly",
    "west",
    "sport",
    "board",
    "seek",
    "per",
    "subject",
    "officer",
    "private",
    "rest",
    "behavior",
    "deal",
    "performance",
    "fight",
    "throw",
    "top",
    "quickly",
    "past",
    "goal",
};

#define N_FREQUENT   (sizeof(frequent_words) / sizeof(frequent_words[0]))
#define PRIOR_SLOTS  2048 /* power of two, over three times the list */
#define PRIOR_K      25.0
#define RANK_UNKNOWN 1500.0
#define RANK_NUMBER  400.0
#define RANK_STOP    50.0

/* Stem hash -> rank, built once per process (pthread_once) and read-only
 * afterwards. Keyed by the stem so that every inflection of a listed word
 * ("years", "studied") finds it; the first (most frequent) word wins. */
static pthread_once_t prior_once = PTHREAD_ONCE_INIT;
static uint64_t prior_keys[PRIOR_SLOTS];
static uint16_t prior_ranks[PRIOR_SLOTS];

static void prior_insert(uint64_t h, uint16_t rank)
{
    h = h ? h : 1;
    size_t slot = (size_t)h & (PRIOR_SLOTS - 1);
    while (prior_keys[slot]) {
        if (prior_keys[slot] == h)
            return;
        slot = (slot + 1) & (PRIOR_SLOTS - 1);
    }
    prior_keys[slot] = h;
    prior_ranks[slot] = rank;
}

static void prior_build(void)
{
    /* A stemmer of its own: this runs once, on whichever thread is first. */
    struct sb_stemmer *st = sb_stemmer_new("english", "UTF_8");
    for (size_t i = 0; i < N_FREQUENT; i++) {
        const char *w = frequent_words[i];
        size_t n = strlen(w);
        const sb_symbol *s = st ? sb_stemmer_stem(st, (const sb_symbol *)w, (int)n) : NULL;
        if (s)
            prior_insert(offline__hash(s, (size_t)sb_stemmer_length(st), SEED_PRIOR),
                         (uint16_t)(i + 1));
        else
            prior_insert(offline__hash(w, n, SEED_PRIOR), (uint16_t)(i + 1));
    }
    if (st)
        sb_stemmer_delete(st);
}

static double prior_rank(const char *stem, size_t n)
{
    uint64_t h = offline__hash(stem, n, SEED_PRIOR);
    h = h ? h : 1;
    size_t slot = (size_t)h & (PRIOR_SLOTS - 1);
    while (prior_keys[slot]) {
        if (prior_keys[slot] == h)
            return prior_ranks[slot];
        slot = (slot + 1) & (PRIOR_SLOTS - 1);
    }
    return RANK_UNKNOWN;
}

float offline__idf(const struct text_token *t)
{
    if (!t->is_word)
        return 0.0f;
    pthread_once(&prior_once, prior_build);
    double r = t->is_number ? RANK_NUMBER : prior_rank(t->stem, t->stem_n);
    if (t->is_stop && r > RANK_STOP)
        r = RANK_STOP;
    return (float)(log1p(r / PRIOR_K) / log1p(RANK_UNKNOWN / PRIOR_K));
}

/* ---- Feature table ---------------------------------------------------------------- */

void offline__feats_init(struct offline__feats *f)
{
    memset(f, 0, sizeof(*f));
}

void offline__feats_release(struct offline__feats *f)
{
    xfree(f->slots);
    xfree(f->used);
    memset(f, 0, sizeof(*f));
}

static void feats_clear(struct offline__feats *f)
{
    for (size_t i = 0; i < f->n_used; i++)
        f->slots[f->used[i]].key = 0;
    f->n_used = 0;
}

static void feats_grow(struct offline__feats *f)
{
    struct offline__feat *old = f->slots;
    uint32_t *old_used = f->used;
    size_t n_old = f->n_used;
    f->cap = f->cap ? f->cap * 2 : 1024;
    f->slots = xcalloc(f->cap, sizeof(*f->slots));
    f->used = xmalloc(f->cap / 2 * sizeof(*f->used));
    f->n_used = 0;
    /* Re-insert in the old insertion order, so that results do not depend
     * on when the table grew. */
    for (size_t i = 0; i < n_old; i++) {
        const struct offline__feat *o = &old[old_used[i]];
        size_t slot = (size_t)o->key & (f->cap - 1);
        while (f->slots[slot].key)
            slot = (slot + 1) & (f->cap - 1);
        f->slots[slot] = *o;
        f->used[f->n_used++] = (uint32_t)slot;
    }
    xfree(old);
    xfree(old_used);
}

static void feats_add(struct offline__feats *f, uint64_t key, float w)
{
    if (f->n_used + 1 > f->cap / 2)
        feats_grow(f);
    key = key ? key : 1;
    size_t slot = (size_t)key & (f->cap - 1);
    struct offline__feat *e;
    while ((e = &f->slots[slot])->key) {
        if (e->key == key) {
            e->tf += 1.0f;
            e->wsum += w;
            return;
        }
        slot = (slot + 1) & (f->cap - 1);
    }
    e->key = key;
    e->tf = 1.0f;
    e->wsum = w;
    f->used[f->n_used++] = (uint32_t)slot;
}

/* ---- Features of a token range ---------------------------------------------------------- */

#define W_BIGRAM      0.7f
#define W_CHAR        0.8f
#define MAX_GRAM_WORD 40 /* characters; longer words get no character grams */

static void add_char_grams(struct offline__feats *f, const struct text_token *t, float idf)
{
    char w[MAX_GRAM_WORD * 4 + 2];
    size_t cps[MAX_GRAM_WORD + 3];
    if (t->norm_n + 2 > sizeof(w))
        return;
    w[0] = '<';
    memcpy(w + 1, t->norm, t->norm_n);
    w[t->norm_n + 1] = '>';
    size_t n = t->norm_n + 2, L = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)w[i] & 0xC0) != 0x80) {
            if (L == MAX_GRAM_WORD + 2)
                return;
            cps[L++] = i;
        }
    }
    cps[L] = n;
    size_t g = 0;
    for (size_t k = 3; k <= 5; k++)
        g += L >= k ? L - k + 1 : 0;
    if (g == 0)
        return;
    float wg = W_CHAR * idf / sqrtf((float)g);
    for (size_t k = 3; k <= 5; k++) {
        for (size_t i = 0; i + k <= L; i++)
            feats_add(f, offline__hash(w + cps[i], cps[i + k] - cps[i], SEED_CHAR), wg);
    }
}

void offline__embed_range(const struct text_doc *d, size_t t0, size_t t1, int dims,
                          struct offline__feats *f, float *out)
{
    memset(out, 0, (size_t)dims * sizeof(*out));
    feats_clear(f);
    const struct text_token *prev = NULL;
    uint64_t prev_h = 0;
    float prev_idf = 0.0f;
    for (size_t k = t0; k < t1; k++) {
        const struct text_token *t = &d->tokens[k];
        if (!t->is_word) {
            prev = NULL;
            continue;
        }
        float idf = offline__idf(t);
        uint64_t h = offline__hash(t->stem, t->stem_n, SEED_UNIGRAM);
        feats_add(f, h, idf);
        if (prev && prev->sentence == t->sentence && !(prev->is_stop && t->is_stop)) {
            uint64_t pair[2] = {prev_h, h};
            feats_add(f, offline__hash(pair, sizeof(pair), SEED_BIGRAM),
                      W_BIGRAM * sqrtf(prev_idf * idf));
        }
        if (!t->is_stop && !t->is_number)
            add_char_grams(f, t, idf);
        prev = t;
        prev_h = h;
        prev_idf = idf;
    }
    double norm = 0.0;
    for (size_t i = 0; i < f->n_used; i++) {
        const struct offline__feat *e = &f->slots[f->used[i]];
        size_t bucket = (size_t)(((e->key >> 32) * (uint64_t)dims) >> 32);
        float x = (1.0f + logf(e->tf)) * (e->wsum / e->tf);
        out[bucket] += (e->key & 0x80000000u) ? -x : x;
    }
    for (int i = 0; i < dims; i++)
        norm += (double)out[i] * out[i];
    if (norm > 0.0) {
        float inv = (float)(1.0 / sqrt(norm));
        for (int i = 0; i < dims; i++)
            out[i] *= inv;
    }
}

/* ---- Public ------------------------------------------------------------------------------- */

int offline_embed(const char *const *texts, const size_t *lens, size_t n, int dims, float *out)
{
    if (dims < 8 || dims > OFFLINE_MAX_DIMS || (n && (!texts || !lens || !out)))
        return LOCI_EINVAL;
    int rc = LOCI_OK;
    struct offline__feats f;
    offline__feats_init(&f);
    for (size_t i = 0; i < n; i++) {
        float *v = out + i * (size_t)dims;
        if (!texts[i] && lens[i]) {
            rc = LOCI_EINVAL;
            break;
        }
        struct text_doc d;
        rc = text_segment(texts[i] ? texts[i] : "", lens[i], 0, &d);
        if (rc)
            break;
        offline__embed_range(&d, 0, d.n_tokens, dims, &f, v);
        text_doc_release(&d);
    }
    offline__feats_release(&f);
    return rc;
}

float offline_dot(const float *a, const float *b, int dims)
{
    float s = 0.0f;
    for (int i = 0; i < dims; i++)
        s += a[i] * b[i];
    return s;
}
