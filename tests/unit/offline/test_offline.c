/*
 * test_offline.c - the offline text engine: embeddings (deterministic, unit
 * norm, topical neighbours on a small corpus), YAKE key terms, TextRank
 * summaries within their bounds, definitions, and extractive answers that
 * only ever quote the passages and cite them correctly.
 */
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "harness.h"
#include "services/offline/offline.h"
#include "services/text/text.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- A small corpus: three topics, three texts each ------------------------- */

enum { PHOTO, FRENCH, TCP };

static const char *const corpus[9] = {
    /* photosynthesis */
    "Plants capture sunlight with chlorophyll and turn it into sugar. This process, "
    "photosynthesis, happens inside the chloroplasts of their leaves.",
    "During photosynthesis, carbon dioxide and water are converted into glucose and oxygen. "
    "The light reactions split water molecules and release oxygen gas.",
    "Leaves look green because chlorophyll reflects green light. Without photosynthesis, "
    "plants could not make the glucose they need to grow.",
    /* the French Revolution */
    "The French Revolution began in 1789, when the Estates-General met at Versailles and "
    "crowds in Paris stormed the Bastille.",
    "During the French Revolution the monarchy was abolished, King Louis XVI was executed in "
    "1793, and France became a republic.",
    "The Reign of Terror, led by Robespierre, sent thousands of enemies of the revolution to "
    "the guillotine before Napoleon took power in 1799.",
    /* TCP networking */
    "TCP is a connection-oriented transport protocol used on the Internet. It guarantees that "
    "bytes arrive in order and retransmits lost packets.",
    "A TCP connection starts with a three-way handshake: the client sends SYN, the server "
    "answers with SYN-ACK, and the client replies with ACK.",
    "Congestion control lets TCP slow down when the network is overloaded, and packets that "
    "are not acknowledged in time are sent again.",
};

static int topic_of(size_t i)
{
    return (int)(i / 3);
}

static void embed_corpus(int dims, float *out)
{
    size_t lens[9];
    for (size_t i = 0; i < 9; i++)
        lens[i] = strlen(corpus[i]);
    CHECK_INT(offline_embed(corpus, lens, 9, dims, out), ==, LOCI_OK);
}

TEST(embeddings_deterministic_and_unit_norm)
{
    enum { D = OFFLINE_DEFAULT_DIMS };
    float *a = xmalloc(9 * D * sizeof(float)), *b = xmalloc(9 * D * sizeof(float));
    embed_corpus(D, a);
    embed_corpus(D, b);
    CHECK(memcmp(a, b, 9 * D * sizeof(float)) == 0); /* bit-identical */
    for (size_t i = 0; i < 9; i++) {
        float n2 = offline_dot(a + i * D, a + i * D, D);
        CHECK(fabsf(n2 - 1.0f) < 1e-4f);
    }
    /* One at a time gives the same vectors as a batch. */
    const char *one[1] = {corpus[4]};
    size_t len = strlen(corpus[4]);
    CHECK_INT(offline_embed(one, &len, 1, D, b), ==, LOCI_OK);
    CHECK(memcmp(a + 4 * D, b, D * sizeof(float)) == 0);
    xfree(a);
    xfree(b);
}

TEST(embeddings_zero_for_empty_and_bad_arguments)
{
    float v[64];
    const char *texts[3] = {"", "  ... !!! ", NULL};
    size_t lens[3] = {0, 10, 0};
    float out[3 * 64];
    memset(out, 0x7f, sizeof(out));
    CHECK_INT(offline_embed(texts, lens, 3, 64, out), ==, LOCI_OK);
    for (size_t i = 0; i < 3 * 64; i++)
        CHECK(out[i] == 0.0f);
    const char *t[1] = {"hello"};
    size_t l = 5;
    CHECK_INT(offline_embed(t, &l, 1, 7, v), ==, LOCI_EINVAL);
    CHECK_INT(offline_embed(t, &l, 1, OFFLINE_MAX_DIMS + 1, v), ==, LOCI_EINVAL);
    CHECK_INT(offline_embed(NULL, NULL, 0, 64, NULL), ==, LOCI_OK);
    CHECK_INT(offline_embed(t, &l, 1, 8, v), ==, LOCI_OK);
    /* Invalid UTF-8 is skipped, not fatal, and does not change the words. */
    const char *bad[2] = {"photosynthesis \xff\xfe in leaves", "photosynthesis in leaves"};
    size_t bl[2] = {strlen(bad[0]), strlen(bad[1])};
    float bv[2 * 64];
    CHECK_INT(offline_embed(bad, bl, 2, 64, bv), ==, LOCI_OK);
    CHECK(offline_dot(bv, bv + 64, 64) > 0.999f);
}

TEST(embeddings_nearest_neighbour_is_same_topic)
{
    enum { D = OFFLINE_DEFAULT_DIMS };
    float *v = xmalloc(9 * D * sizeof(float));
    embed_corpus(D, v);
    for (size_t i = 0; i < 9; i++) {
        size_t best = i;
        float best_cos = -2.0f;
        for (size_t j = 0; j < 9; j++) {
            float c = offline_dot(v + i * D, v + j * D, D);
            if (j != i && c > best_cos) {
                best_cos = c;
                best = j;
            }
        }
        if (topic_of(best) != topic_of(i))
            fprintf(stderr, "  text %zu: nearest is %zu (cos %.3f)\n", i, best, best_cos);
        CHECK_INT(topic_of(best), ==, topic_of(i));
    }
#define COS(i, j) offline_dot(v + (i)*D, v + (j)*D, D)
    CHECK(COS(0, 1) > COS(0, 6)); /* photosynthesis: related > TCP */
    CHECK(COS(2, 0) > COS(2, 4));
    CHECK(COS(7, 6) > COS(7, 4)); /* TCP handshake closer to TCP than to the revolution */
    CHECK(COS(8, 6) > COS(8, 1));
    CHECK(COS(3, 4) > COS(3, 2)); /* revolution texts */
    CHECK(COS(5, 3) > COS(5, 8));
#undef COS
    xfree(v);
}

TEST(embeddings_variants_are_close)
{
    enum { D = 256 };
    const char *t[4] = {"neural networks learn representations",
                        "a neural network learned a representation", "French cooking recipes",
                        "NEURAL NETWORKS LEARN REPRESENTATIONS"};
    size_t l[4] = {strlen(t[0]), strlen(t[1]), strlen(t[2]), strlen(t[3])};
    float v[4 * D];
    CHECK_INT(offline_embed(t, l, 4, D, v), ==, LOCI_OK);
    CHECK(offline_dot(v, v + D, D) > 0.6f);
    CHECK(offline_dot(v, v + 2 * D, D) < 0.2f);
    CHECK(offline_dot(v, v + 3 * D, D) > 0.999f); /* case folding */
}

/* ---- Key terms ------------------------------------------------------------------ */

static const char *photo_text =
    "Photosynthesis is the process by which green plants, algae and some bacteria convert "
    "light energy into chemical energy. During photosynthesis, chlorophyll in the "
    "chloroplasts absorbs light energy from the sun. The plant takes in carbon dioxide from "
    "the air through small pores called stomata, and water from the soil through its roots. "
    "Using the absorbed light energy, the plant converts carbon dioxide and water into "
    "glucose and oxygen. The light-dependent reactions take place in the thylakoid "
    "membranes, where chlorophyll captures photons and splits water molecules. The Calvin "
    "cycle, which does not need light directly, fixes carbon dioxide into sugars in the "
    "stroma. Oxygen is released into the atmosphere as a by-product of photosynthesis. "
    "Without photosynthesis, there would be almost no oxygen in the air and no food for "
    "animals. Chlorophyll gives plants their green colour because it reflects green light "
    "while absorbing red and blue light.";

static long find_term(const struct offline_terms *t, const char *term, size_t within)
{
    for (size_t i = 0; i < t->n_terms && i < within; i++) {
        if (strcmp(t->terms[i].term, term) == 0 || strcmp(t->terms[i].key, term) == 0)
            return (long)i;
    }
    return -1;
}

/* As text.h decides it: case-folded on the list, unless an acronym ("US"). */
static bool word_is_stop(const char *w, size_t n)
{
    size_t n_upper = 0, n_lower = 0;
    for (size_t i = 0; i < n; i++) {
        n_upper += w[i] >= 'A' && w[i] <= 'Z';
        n_lower += w[i] >= 'a' && w[i] <= 'z';
    }
    if (n_upper >= 2 && n_lower == 0)
        return false;
    struct buf b;
    buf_init(&b, 256);
    for (size_t i = 0; i < n; i++)
        buf_append_char(&b, (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + 32 : w[i]));
    bool is_stop = text_is_stop(buf_cstr(&b), b.len);
    buf_release(&b);
    return is_stop;
}

/* Terms are well-formed: scores in (0, 1] best first, the key is the node
 * key of the display form, keys unique, no stop word at either end. */
static void check_terms(const struct offline_terms *t)
{
    for (size_t i = 0; i < t->n_terms; i++) {
        const struct offline_term *x = &t->terms[i];
        CHECK(x->score > 0.0 && x->score <= 1.0);
        if (i)
            CHECK(x->score <= t->terms[i - 1].score);
        CHECK(x->count >= 1);
        struct buf k;
        buf_init(&k, 1024);
        CHECK_INT(text_term_key(x->term, strlen(x->term), &k), ==, LOCI_OK);
        CHECK_STR(buf_cstr(&k), x->key);
        buf_release(&k);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(x->key, t->terms[j].key) != 0);
        const char *sp = strchr(x->term, ' ');
        const char *last = strrchr(x->term, ' ');
        size_t first_n = sp ? (size_t)(sp - x->term) : strlen(x->term);
        CHECK(!word_is_stop(x->term, first_n));
        if (last)
            CHECK(!word_is_stop(last + 1, strlen(last + 1)));
    }
    if (t->n_terms)
        CHECK(t->terms[0].score == 1.0);
}

TEST(keyterms_of_a_known_paragraph)
{
    struct offline_terms t;
    CHECK_INT(offline_keyterms(photo_text, strlen(photo_text), 10, &t), ==, LOCI_OK);
    CHECK_INT(t.n_terms, ==, 10);
    check_terms(&t);
    CHECK(find_term(&t, "photosynthesis", 10) >= 0);
    CHECK(find_term(&t, "chlorophyll", 10) >= 0);
    CHECK(find_term(&t, "light energy", 10) >= 0);
    CHECK(find_term(&t, "carbon dioxide", 10) >= 0);
    long k = find_term(&t, "carbon dioxide", 10);
    CHECK_INT(t.terms[k].count, ==, 3);
    /* Asking for more terms than there are candidates is fine. */
    struct offline_terms all;
    CHECK_INT(offline_keyterms(photo_text, strlen(photo_text), (size_t)-1, &all), ==, LOCI_OK);
    CHECK(all.n_terms > 10);
    check_terms(&all);
    offline_terms_release(&all);
    /* Deterministic. */
    struct offline_terms t2;
    CHECK_INT(offline_keyterms(photo_text, strlen(photo_text), 10, &t2), ==, LOCI_OK);
    CHECK_INT(t2.n_terms, ==, t.n_terms);
    for (size_t i = 0; i < t.n_terms; i++) {
        CHECK_STR(t2.terms[i].term, t.terms[i].term);
        CHECK(t2.terms[i].score == t.terms[i].score);
    }
    offline_terms_release(&t2);
    offline_terms_release(&t);
    offline_terms_release(&t); /* idempotent */
}

TEST(keyterms_merge_variants_and_keep_the_common_spelling)
{
    const char *text = "Neural networks are models made of layers of neurons. A neural network "
                       "learns its weights with backpropagation. Deep neural networks stack many "
                       "layers. Training neural networks needs data. Neural Networks were "
                       "inspired by the brain.";
    struct offline_terms t;
    CHECK_INT(offline_keyterms(text, strlen(text), 8, &t), ==, LOCI_OK);
    check_terms(&t);
    long k = find_term(&t, "neural network", 8);
    CHECK(k >= 0);
    CHECK_STR(t.terms[k].term, "neural networks"); /* most frequent spelling */
    CHECK_INT(t.terms[k].count, ==, 5);
    CHECK(k < 3);
    size_t n_key = 0;
    for (size_t i = 0; i < t.n_terms; i++)
        n_key += strcmp(t.terms[i].key, "neural network") == 0;
    CHECK_INT(n_key, ==, 1);
    offline_terms_release(&t);
}

TEST(keyterms_never_stop_words_and_empty_inputs)
{
    struct offline_terms t;
    const char *stops = "The and of it was. They were there, and it is what it is.";
    CHECK_INT(offline_keyterms(stops, strlen(stops), 10, &t), ==, LOCI_OK);
    CHECK_INT(t.n_terms, ==, 0);
    offline_terms_release(&t);
    CHECK_INT(offline_keyterms("", 0, 10, &t), ==, LOCI_OK);
    CHECK_INT(t.n_terms, ==, 0);
    offline_terms_release(&t);
    CHECK_INT(offline_keyterms(NULL, 0, 10, &t), ==, LOCI_OK);
    CHECK_INT(t.n_terms, ==, 0);
    CHECK_INT(offline_keyterms(photo_text, strlen(photo_text), 0, &t), ==, LOCI_OK);
    CHECK_INT(t.n_terms, ==, 0);
    CHECK_INT(offline_keyterms("12 345 6.7 !!", 13, 10, &t), ==, LOCI_OK);
    CHECK_INT(t.n_terms, ==, 0); /* numbers are not terms */
    /* "us" (a stop word) and "US" (an acronym) share a stem. */
    const char *us = "They told us about it. The US economy grew. US exports rose, and the US "
                     "economy kept growing.";
    CHECK_INT(offline_keyterms(us, strlen(us), 10, &t), ==, LOCI_OK);
    check_terms(&t);
    CHECK(find_term(&t, "US economy", 10) >= 0);
    offline_terms_release(&t);
    /* The whole corpus: stop words never appear as terms. */
    for (size_t i = 0; i < 9; i++) {
        CHECK_INT(offline_keyterms(corpus[i], strlen(corpus[i]), 20, &t), ==, LOCI_OK);
        CHECK(t.n_terms > 0);
        check_terms(&t);
        offline_terms_release(&t);
    }
}

/* ---- Summaries -------------------------------------------------------------------- */

/* The cleaned sentences of text (as offline returns them). */
static size_t source_sentences(const char *text, char ***out)
{
    struct text_doc d;
    CHECK_INT(text_segment(text, strlen(text), TEXT_SEG_SENTENCES, &d), ==, LOCI_OK);
    char **s = xcalloc(d.n_sentences + 1, sizeof(*s));
    for (size_t i = 0; i < d.n_sentences; i++) {
        struct buf b;
        buf_init(&b, 1 << 20);
        CHECK_INT(text_clean_line(text + d.sentences[i].start,
                                  d.sentences[i].end - d.sentences[i].start, &b),
                  ==, LOCI_OK);
        s[i] = buf_detach(&b, NULL);
    }
    size_t n = d.n_sentences;
    text_doc_release(&d);
    *out = s;
    return n;
}

static void free_sentences(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        xfree(s[i]);
    xfree(s);
}

/* Whether s[0..n) is made of whole sentences of src, in strictly increasing
 * source order, separated by single spaces. Returns how many (or -1). */
static long tile(const char *s, size_t n, char **src, size_t n_src)
{
    size_t pos = 0, next = 0;
    long count = 0;
    while (pos < n) {
        size_t i = next;
        for (; i < n_src; i++) {
            size_t m = strlen(src[i]);
            if (m && pos + m <= n && memcmp(s + pos, src[i], m) == 0 &&
                (pos + m == n || s[pos + m] == ' '))
                break;
        }
        if (i == n_src)
            return -1;
        pos += strlen(src[i]);
        if (pos < n)
            pos++;
        next = i + 1;
        count++;
    }
    return count;
}

static char *summarize(const char *text, size_t max_sentences, size_t max_chars)
{
    struct offline_summary_opts o = {max_sentences, max_chars};
    char *out = NULL;
    CHECK_INT(offline_summarize(text, strlen(text), &o, &out), ==, LOCI_OK);
    CHECK(out != NULL);
    return out;
}

TEST(summaries_are_bounded_whole_sentences_in_order)
{
    char **src;
    size_t n_src = source_sentences(photo_text, &src);
    CHECK_INT(n_src, ==, 9);
    size_t limits[][2] = {{3, 600}, {2, 250}, {1, 200}, {5, 400}, {9, 5000}};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        char *s = summarize(photo_text, limits[i][0], limits[i][1]);
        size_t chars = text_count_chars(s, strlen(s));
        CHECK(chars <= limits[i][1]);
        CHECK(chars > 0);
        long k = tile(s, strlen(s), src, n_src);
        if (k < 0)
            fprintf(stderr, "  not whole sentences in order: %s\n", s);
        CHECK(k >= 1);
        CHECK(k <= (long)limits[i][0]);
        xfree(s);
    }
    /* Defaults (NULL options): 3 sentences, 600 characters. */
    char *s = NULL;
    CHECK_INT(offline_summarize(photo_text, strlen(photo_text), NULL, &s), ==, LOCI_OK);
    CHECK(text_count_chars(s, strlen(s)) <= 600);
    long k = tile(s, strlen(s), src, n_src);
    CHECK(k >= 1 && k <= 3);
    /* The definition of the topic is central: it makes the summary. */
    CHECK(strstr(s, "Photosynthesis is the process") != NULL);
    xfree(s);
    free_sentences(src, n_src);
}

TEST(summaries_never_repeat_a_sentence)
{
    const char *text = "TCP retransmits packets that are lost in the network. TCP retransmits "
                       "packets that are lost in the network. The handshake opens a TCP "
                       "connection between client and server. TCP retransmits packets that are "
                       "lost in the network. Congestion control slows TCP down when the network "
                       "is overloaded.";
    char **src;
    size_t n_src = source_sentences(text, &src);
    char *s = summarize(text, 3, 1000);
    const char *rep = "TCP retransmits packets that are lost in the network.";
    const char *first = strstr(s, rep);
    CHECK(first != NULL);
    CHECK(strstr(first + 1, rep) == NULL);
    CHECK(tile(s, strlen(s), src, n_src) == 3);
    xfree(s);
    free_sentences(src, n_src);
}

TEST(summaries_skip_sentences_that_do_not_fit)
{
    const char *text = "Photosynthesis turns light energy into chemical energy stored in glucose, "
                       "using carbon dioxide and water, inside the chloroplasts of plant cells. "
                       "Plants make glucose by photosynthesis. Chlorophyll absorbs light.";
    /* 40 characters: the long sentence does not fit and the two short ones
     * do not fit together, so exactly one short sentence, never a cut one. */
    char *s = summarize(text, 3, 40);
    CHECK(text_count_chars(s, strlen(s)) <= 40);
    CHECK(strcmp(s, "Plants make glucose by photosynthesis.") == 0 ||
          strcmp(s, "Chlorophyll absorbs light.") == 0);
    xfree(s);
    s = summarize(text, 3, 10); /* nothing fits */
    CHECK_STR(s, "");
    xfree(s);
    s = summarize("", 3, 100);
    CHECK_STR(s, "");
    xfree(s);
    s = summarize("   \n\n  ", 3, 100);
    CHECK_STR(s, "");
    xfree(s);
    s = summarize("Hello.", 3, 100);
    CHECK_STR(s, "Hello.");
    xfree(s);
}

TEST(summaries_of_large_text)
{
    /* Many sentences: the linear (centroid) ranking takes over. */
    struct buf b;
    buf_init(&b, 1 << 22);
    for (int i = 0; i < 150; i++) {
        buf_printf(&b, "Paragraph %d says that photosynthesis needs light and water. ", i);
        buf_printf(&b, "Item %d is about the French Revolution of 1789. ", i);
        buf_printf(&b, "Note %d: TCP uses a handshake to open a connection.\n\n", i);
    }
    char **src;
    size_t n_src = source_sentences(buf_cstr(&b), &src);
    CHECK_INT(n_src, ==, 450);
    char *s = summarize(buf_cstr(&b), 3, 600);
    CHECK(strlen(s) > 0 && text_count_chars(s, strlen(s)) <= 600);
    long k = tile(s, strlen(s), src, n_src);
    CHECK(k >= 1 && k <= 3);
    xfree(s);
    free_sentences(src, n_src);
    buf_release(&b);
}

/* ---- Definitions ------------------------------------------------------------------ */

TEST(define_picks_the_defining_sentence)
{
    char *d = NULL;
    CHECK_INT(offline_define("photosynthesis", 14, photo_text, strlen(photo_text), &d), ==,
              LOCI_OK);
    CHECK(d && strncmp(d, "Photosynthesis is the process", 29) == 0);
    xfree(d);
    CHECK_INT(offline_define("Calvin cycles", 13, photo_text, strlen(photo_text), &d), ==, LOCI_OK);
    CHECK(d && strncmp(d, "The Calvin cycle, which", 23) == 0);
    xfree(d);
    const char *text = "Many people use stomata in examples. Stomata are small pores in the "
                       "surface of a leaf that let gases in and out. Stomata close at night.";
    CHECK_INT(offline_define("stomata", 7, text, strlen(text), &d), ==, LOCI_OK);
    CHECK_STR(d, "Stomata are small pores in the surface of a leaf that let gases in and out.");
    xfree(d);
    const char *called = "Cells need energy. The molecule that stores it is called ATP, and it "
                         "powers most reactions. ATP levels fall during exercise.";
    CHECK_INT(offline_define("ATP", 3, called, strlen(called), &d), ==, LOCI_OK);
    CHECK(d && strstr(d, "is called ATP") != NULL);
    xfree(d);
    CHECK_INT(offline_define("quantum chromodynamics", 22, photo_text, strlen(photo_text), &d), ==,
              LOCI_OK);
    CHECK(d == NULL);
    CHECK_INT(offline_define("", 0, photo_text, strlen(photo_text), &d), ==, LOCI_OK);
    CHECK(d == NULL);
    CHECK_INT(offline_define("the", 3, "", 0, &d), ==, LOCI_OK);
    CHECK(d == NULL);
}

/* ---- Answers ------------------------------------------------------------------------ */

static const char *const passages_text[3] = {
    "The French Revolution began in 1789 with the storming of the Bastille. The revolutionaries "
    "abolished the monarchy in 1792. King Louis XVI was tried for treason and executed by "
    "guillotine in January 1793. The Reign of Terror followed, led by Robespierre.",
    "TCP is a reliable, connection-oriented transport protocol. TCP establishes a connection "
    "with a three-way handshake: the client sends a SYN segment, the server answers with "
    "SYN-ACK, and the client acknowledges with ACK. After the handshake both sides exchange "
    "data with sequence numbers. Lost segments are retransmitted after a timeout.",
    "Photosynthesis converts light energy into chemical energy. Chlorophyll absorbs red and "
    "blue light. Plants release oxygen as a by-product.",
};

static void make_passages(struct offline_passage *p)
{
    for (size_t i = 0; i < 3; i++)
        p[i] = (struct offline_passage){passages_text[i], strlen(passages_text[i])};
}

/* Every run of the answer before a [n] marker is made of whole sentences of
 * passage n, in order; markers are in range and agree with cited[]. */
static void check_answer(const struct offline_answer *a, const struct offline_passage *p,
                         size_t n_passages)
{
    CHECK(a->markdown != NULL);
    CHECK(a->is_found);
    CHECK(a->n_cited >= 1);
    for (size_t i = 0; i < a->n_cited; i++) {
        CHECK(a->cited[i] >= 1 && (size_t)a->cited[i] <= n_passages);
        if (i)
            CHECK(a->cited[i] > a->cited[i - 1]);
    }
    const char *s = a->markdown;
    bool seen[16] = {false};
    size_t n_runs = 0;
    while (*s) {
        const char *m = strstr(s, " [");
        CHECK(m != NULL);
        unsigned long num = 0;
        const char *q = m + 2;
        while (*q >= '0' && *q <= '9')
            num = num * 10 + (unsigned long)(*q++ - '0');
        CHECK(*q == ']');
        CHECK(num >= 1 && num <= n_passages);
        char *src_text = xstrndup(p[num - 1].text, p[num - 1].n);
        char **src;
        size_t n_src = source_sentences(src_text, &src);
        long k = tile(s, (size_t)(m - s), src, n_src);
        if (k < 1)
            fprintf(stderr, "  run not from passage %lu: %.*s\n", num, (int)(m - s), s);
        CHECK(k >= 1);
        free_sentences(src, n_src);
        xfree(src_text);
        seen[num] = true;
        n_runs++;
        s = q + 1;
        if (*s == ' ')
            s++;
    }
    CHECK(n_runs >= 1);
    size_t n_seen = 0;
    for (size_t i = 1; i <= n_passages; i++) {
        if (seen[i]) {
            bool in_cited = false;
            for (size_t c = 0; c < a->n_cited; c++)
                in_cited = in_cited || (size_t)a->cited[c] == i;
            CHECK(in_cited);
            n_seen++;
        }
    }
    CHECK_INT(n_seen, ==, a->n_cited);
}

static void check_not_found(const struct offline_answer *a)
{
    CHECK(!a->is_found);
    CHECK_INT(a->n_cited, ==, 0);
    CHECK_STR(a->markdown, OFFLINE_NOT_FOUND);
}

TEST(answers_cite_the_passage_that_holds_the_answer)
{
    struct offline_passage p[3];
    make_passages(p);
    struct offline_answer a;
    const char *q = "How does TCP establish a connection?";
    CHECK_INT(offline_answer(q, strlen(q), p, 3, NULL, &a), ==, LOCI_OK);
    check_answer(&a, p, 3);
    CHECK_INT(a.n_cited, ==, 1);
    CHECK_INT(a.cited[0], ==, 2);
    CHECK(strstr(a.markdown, "TCP establishes a connection with a three-way handshake") != NULL);
    offline_answer_release(&a);
    offline_answer_release(&a);

    q = "What happened to King Louis XVI?";
    CHECK_INT(offline_answer(q, strlen(q), p, 3, NULL, &a), ==, LOCI_OK);
    check_answer(&a, p, 3);
    CHECK_INT(a.cited[0], ==, 1);
    CHECK(strstr(a.markdown, "executed by guillotine") != NULL);
    offline_answer_release(&a);

    /* A question spanning two passages cites both, in passage order. */
    q = "Explain the guillotine and the TCP handshake.";
    CHECK_INT(offline_answer(q, strlen(q), p, 3, NULL, &a), ==, LOCI_OK);
    check_answer(&a, p, 3);
    CHECK_INT(a.n_cited, ==, 2);
    CHECK_INT(a.cited[0], ==, 1);
    CHECK_INT(a.cited[1], ==, 2);
    CHECK(strstr(a.markdown, "[1]") < strstr(a.markdown, "[2]"));
    offline_answer_release(&a);
}

TEST(answers_respect_limits)
{
    struct offline_passage p[3];
    make_passages(p);
    const char *q = "TCP handshake SYN ACK connection segments data";
    for (size_t max_chars = 60; max_chars <= 600; max_chars += 90) {
        struct offline_answer_opts o = {2, max_chars};
        struct offline_answer a;
        CHECK_INT(offline_answer(q, strlen(q), p, 3, &o, &a), ==, LOCI_OK);
        CHECK(text_count_chars(a.markdown, strlen(a.markdown)) <= max_chars);
        if (a.is_found) {
            check_answer(&a, p, 3);
            size_t n_sent = 0;
            for (const char *c = a.markdown; *c; c++)
                n_sent += (*c == '.' || *c == ':') && (c[1] == ' ' || c[1] == '\0');
            CHECK(n_sent <= 4); /* 2 sentences (one holds a colon) */
        } else {
            check_not_found(&a);
        }
        offline_answer_release(&a);
    }
}

TEST(answers_not_found)
{
    struct offline_passage p[3];
    make_passages(p);
    struct offline_answer a;
    const char *q = "What is the boiling point of mercury?";
    CHECK_INT(offline_answer(q, strlen(q), p, 3, NULL, &a), ==, LOCI_OK);
    check_not_found(&a);
    offline_answer_release(&a);
    q = "What is it and why?"; /* only stop words */
    CHECK_INT(offline_answer(q, strlen(q), p, 3, NULL, &a), ==, LOCI_OK);
    check_not_found(&a);
    offline_answer_release(&a);
    q = "How does TCP work?";
    CHECK_INT(offline_answer(q, strlen(q), NULL, 0, NULL, &a), ==, LOCI_OK);
    check_not_found(&a);
    offline_answer_release(&a);
    struct offline_passage empty[2] = {{"", 0}, {NULL, 0}};
    CHECK_INT(offline_answer(q, strlen(q), empty, 2, NULL, &a), ==, LOCI_OK);
    check_not_found(&a);
    offline_answer_release(&a);
    CHECK_INT(offline_answer("", 0, p, 3, NULL, &a), ==, LOCI_OK);
    check_not_found(&a);
    offline_answer_release(&a);
    struct offline_passage bad = {NULL, 5};
    CHECK_INT(offline_answer(q, strlen(q), &bad, 1, NULL, &a), ==, LOCI_EINVAL);
    CHECK(a.markdown == NULL);
}

TEST(answers_on_huge_input)
{
    struct buf b;
    buf_init(&b, 3u << 20);
    int i = 0;
    while (b.len < (2u << 20)) {
        buf_printf(&b, "Section %d of the notes covers the French Revolution and its causes. ", i);
        buf_printf(&b, "Bread prices rose sharply in year %d of the decade. ", i);
        buf_printf(&b, "Nothing here is about networks.\n\n");
        i++;
    }
    struct offline_passage p[2] = {{b.p, b.len}, {passages_text[1], strlen(passages_text[1])}};
    struct offline_answer a;
    const char *q = "How does TCP establish a connection with a handshake?";
    CHECK_INT(offline_answer(q, strlen(q), p, 2, NULL, &a), ==, LOCI_OK);
    check_answer(&a, p, 2);
    CHECK_INT(a.cited[0], ==, 2);
    offline_answer_release(&a);
    q = "Why did bread prices rise before the French Revolution?";
    CHECK_INT(offline_answer(q, strlen(q), p, 2, NULL, &a), ==, LOCI_OK);
    CHECK(a.is_found);
    CHECK_INT(a.n_cited, ==, 1);
    CHECK_INT(a.cited[0], ==, 1);
    CHECK(text_count_chars(a.markdown, strlen(a.markdown)) <= 1200);
    offline_answer_release(&a);
    /* Key terms and a summary of the same 2 MB. */
    struct offline_terms t;
    CHECK_INT(offline_keyterms(b.p, b.len, 10, &t), ==, LOCI_OK);
    CHECK(t.n_terms > 0);
    check_terms(&t);
    offline_terms_release(&t);
    char *s = NULL;
    CHECK_INT(offline_summarize(b.p, b.len, NULL, &s), ==, LOCI_OK);
    CHECK(s && text_count_chars(s, strlen(s)) <= 600);
    xfree(s);
    buf_release(&b);
}

/* ---- Any bytes at all ------------------------------------------------------------- */

/* Whether s (NUL-terminated) is valid UTF-8 with no control characters. */
static bool is_clean_utf8(const char *s)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    bool ok = text_strip_controls(s, strlen(s), &b) == LOCI_OK && strcmp(buf_cstr(&b), s) == 0 &&
              !strchr(s, '\n') && !strchr(s, '\t');
    buf_release(&b);
    return ok;
}

TEST(random_bytes_through_every_function)
{
    uint64_t x = 0x2545F4914F6CDD1Dull;
    const char pieces[][16] = {"TCP ",
                               "the ",
                               "Photosynthesis",
                               ". ",
                               "\n\n",
                               "\xc3\xa9",
                               "\xff",
                               "\xe2\x80\x99s ",
                               "Dr. ",
                               "- ",
                               "# ",
                               "|",
                               "1789 ",
                               "\x01",
                               "\t",
                               "handshake ",
                               "light-",
                               "US ",
                               "? "};
    char buf[800];
    for (int iter = 0; iter < 150; iter++) {
        size_t n = 0, want = (size_t)(iter * 13 % 700);
        while (n < want) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const char *p = pieces[(x >> 11) % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t pn = strlen(p);
            if (x % 5 == 0) {
                buf[n++] = (char)(x >> 40);
            } else if (n + pn <= sizeof(buf)) {
                memcpy(buf + n, p, pn);
                n += pn;
            } else {
                break;
            }
        }
        struct offline_terms t;
        CHECK_INT(offline_keyterms(buf, n, 8, &t), ==, LOCI_OK);
        for (size_t i = 0; i < t.n_terms; i++)
            CHECK(is_clean_utf8(t.terms[i].term) && is_clean_utf8(t.terms[i].key));
        offline_terms_release(&t);
        struct offline_summary_opts so = {2, 150};
        char *s = NULL;
        CHECK_INT(offline_summarize(buf, n, &so, &s), ==, LOCI_OK);
        CHECK(is_clean_utf8(s) && text_count_chars(s, strlen(s)) <= 150);
        xfree(s);
        s = NULL;
        CHECK_INT(offline_define("TCP handshake", 13, buf, n, &s), ==, LOCI_OK);
        CHECK(!s || is_clean_utf8(s));
        xfree(s);
        struct offline_passage p[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
        struct offline_answer_opts ao = {3, 200};
        struct offline_answer a;
        CHECK_INT(offline_answer("What is the TCP handshake?", 26, p, 2, &ao, &a), ==, LOCI_OK);
        CHECK(is_clean_utf8(a.markdown));
        CHECK(text_count_chars(a.markdown, strlen(a.markdown)) <= 200 || !a.is_found);
        offline_answer_release(&a);
        float v[32];
        const char *texts[1] = {buf};
        CHECK_INT(offline_embed(texts, &n, 1, 32, v), ==, LOCI_OK);
        float n2 = offline_dot(v, v, 32);
        CHECK(n2 == 0.0f || fabsf(n2 - 1.0f) < 1e-4f);
    }
}

/* ---- Threads ------------------------------------------------------------------------- */

struct worker {
    float v[9 * 128];
    int failures;
};

static void *work(void *p)
{
    struct worker *w = p;
    size_t lens[9];
    for (size_t i = 0; i < 9; i++)
        lens[i] = strlen(corpus[i]);
    for (int r = 0; r < 10; r++) {
        if (offline_embed(corpus, lens, 9, 128, w->v) != LOCI_OK)
            w->failures++;
        struct offline_terms t;
        if (offline_keyterms(photo_text, strlen(photo_text), 5, &t) != LOCI_OK || t.n_terms != 5)
            w->failures++;
        offline_terms_release(&t);
    }
    return NULL;
}

TEST(safe_from_many_threads)
{
    enum { N = 4 };
    pthread_t th[N];
    struct worker *w = xcalloc(N, sizeof(*w));
    for (int i = 0; i < N; i++)
        CHECK_INT(pthread_create(&th[i], NULL, work, &w[i]), ==, 0);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        CHECK_INT(w[i].failures, ==, 0);
        CHECK(memcmp(w[i].v, w[0].v, sizeof(w[0].v)) == 0);
    }
    xfree(w);
}
