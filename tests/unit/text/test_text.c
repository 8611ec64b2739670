/*
 * test_text.c - the text layer: sentence and word segmentation (abbreviations,
 * initials, wrapped lines, Unicode, invalid UTF-8, random bytes), token
 * flags and stems, stop words, node keys, cleaning helpers, and use from
 * several threads at once.
 */
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "harness.h"
#include "services/text/text.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The bytes of sentence i, as a new string. */
static char *sentence_str(const struct text_doc *d, size_t i)
{
    const struct text_sentence *s = &d->sentences[i];
    return xstrndup(d->text + s->start, s->end - s->start);
}

static void check_sentences(const char *text, const char *const *want, size_t n_want)
{
    struct text_doc d;
    CHECK_INT(text_segment(text, strlen(text), 0, &d), ==, LOCI_OK);
    if (d.n_sentences != n_want) {
        for (size_t i = 0; i < d.n_sentences; i++) {
            char *s = sentence_str(&d, i);
            fprintf(stderr, "  sentence %zu: [%s]\n", i, s);
            xfree(s);
        }
    }
    CHECK_INT(d.n_sentences, ==, n_want);
    for (size_t i = 0; i < n_want; i++) {
        char *s = sentence_str(&d, i);
        CHECK_STR(s, want[i]);
        xfree(s);
    }
    text_doc_release(&d);
}

/* The index of the first token whose source bytes are w, or -1. */
static long find_token(const struct text_doc *d, const char *w)
{
    size_t n = strlen(w);
    for (size_t i = 0; i < d->n_tokens; i++) {
        const struct text_token *t = &d->tokens[i];
        if (t->end - t->start == n && memcmp(d->text + t->start, w, n) == 0)
            return (long)i;
    }
    return -1;
}

/* Structural invariants every segmentation must keep, whatever the input. */
static void check_invariants(const struct text_doc *d)
{
    size_t prev_end = 0;
    for (size_t i = 0; i < d->n_sentences; i++) {
        const struct text_sentence *s = &d->sentences[i];
        CHECK(s->start < s->end);
        CHECK(s->end <= d->n);
        CHECK(s->start >= prev_end);
        prev_end = s->end;
        for (size_t k = s->first_token; k < s->first_token + s->n_tokens; k++) {
            const struct text_token *t = &d->tokens[k];
            CHECK_INT(t->sentence, ==, i);
            CHECK(t->start >= s->start && t->end <= s->end && t->start < t->end);
        }
    }
    size_t sum = 0;
    for (size_t i = 0; i < d->n_sentences; i++)
        sum += d->sentences[i].n_tokens;
    CHECK_INT(sum, ==, d->n_tokens);
    for (size_t k = 0; k < d->n_tokens; k++) {
        const struct text_token *t = &d->tokens[k];
        CHECK(t->norm && t->stem);
        CHECK_INT(strlen(t->norm), ==, t->norm_n);
        CHECK_INT(strlen(t->stem), ==, t->stem_n);
        if (k)
            CHECK(t->start >= d->tokens[k - 1].end);
    }
}

TEST(sentences_with_abbreviations_and_initials)
{
    const char *text = "Dr. Smith went to Washington, e.g. to see Mr. Jones. He met J. K. Rowling "
                       "at 3 p.m. on Monday. Was it fine? Yes! Prof. Brown agreed, i.e. he "
                       "nodded. We took vitamin C. The end.";
    const char *want[] = {
        "Dr. Smith went to Washington, e.g. to see Mr. Jones.",
        "He met J. K. Rowling at 3 p.m. on Monday.",
        "Was it fine?",
        "Yes!",
        "Prof. Brown agreed, i.e. he nodded.",
        "We took vitamin C.",
        "The end.",
    };
    check_sentences(text, want, sizeof(want) / sizeof(want[0]));
}

TEST(sentences_wrapped_lines_and_markdown_blocks)
{
    const char *text = "This sentence is wrapped\nacross two lines. Next one.\n\n# A heading\n"
                       "Text after the heading.\n- first item\n- second item\r\n"
                       "Windows line\r\nending here.";
    const char *want[] = {
        "This sentence is wrapped\nacross two lines.",
        "Next one.",
        "# A heading",
        "Text after the heading.",
        "- first item",
        "- second item",
        "Windows line\r\nending here.",
    };
    check_sentences(text, want, sizeof(want) / sizeof(want[0]));
}

TEST(unicode_segmentation_and_byte_ranges)
{
    const char *text = "Le café coûte 3 €. 東京は日本の首都です。I love pizza 🍕! Straße "
                       "ﬁnal NAÏVE.";
    struct text_doc d;
    CHECK_INT(text_segment(text, strlen(text), 0, &d), ==, LOCI_OK);
    check_invariants(&d);
    CHECK_INT(d.n_sentences, ==, 4);
    char *s0 = sentence_str(&d, 0), *s1 = sentence_str(&d, 1), *s2 = sentence_str(&d, 2);
    CHECK_STR(s0, "Le café coûte 3 €.");
    CHECK_STR(s1, "東京は日本の首都です。");
    CHECK_STR(s2, "I love pizza 🍕!");
    xfree(s0);
    xfree(s1);
    xfree(s2);

    long k = find_token(&d, "café");
    CHECK(k >= 0);
    CHECK(d.tokens[k].is_word);
    CHECK_STR(d.tokens[k].norm, "café");
    k = find_token(&d, "3");
    CHECK(k >= 0 && d.tokens[k].is_number && d.tokens[k].is_word);
    k = find_token(&d, "€");
    CHECK(k >= 0 && !d.tokens[k].is_word);
    k = find_token(&d, "🍕");
    CHECK(k >= 0 && !d.tokens[k].is_word);
    CHECK_INT(d.tokens[k].sentence, ==, 2);
    /* ICU splits Japanese into dictionary words: more than one, all words. */
    size_t n_cjk = 0;
    for (size_t i = d.sentences[1].first_token;
         i < d.sentences[1].first_token + d.sentences[1].n_tokens; i++)
        n_cjk += d.tokens[i].is_word;
    CHECK(n_cjk >= 3);
    k = find_token(&d, "東京");
    CHECK(k >= 0 && d.tokens[k].is_word);
    /* NFKC + case folding. */
    k = find_token(&d, "Straße");
    CHECK(k >= 0);
    CHECK_STR(d.tokens[k].norm, "strasse");
    k = find_token(&d, "ﬁnal");
    CHECK(k >= 0);
    CHECK_STR(d.tokens[k].norm, "final");
    k = find_token(&d, "NAÏVE");
    CHECK(k >= 0);
    CHECK_STR(d.tokens[k].norm, "naïve");
    CHECK(d.tokens[k].is_all_caps && d.tokens[k].is_upper_initial);
    text_doc_release(&d);
}

TEST(token_flags_and_stems)
{
    const char *text = "The TCP protocol uses 3 handshakes. NASA studies Networks, and it's "
                       "US policy. Don’t panic.";
    struct text_doc d;
    CHECK_INT(text_segment(text, strlen(text), 0, &d), ==, LOCI_OK);
    check_invariants(&d);
    long k = find_token(&d, "The");
    CHECK(k >= 0 && d.tokens[k].is_stop && d.tokens[k].is_upper_initial &&
          !d.tokens[k].is_all_caps);
    k = find_token(&d, "TCP");
    CHECK(k >= 0 && d.tokens[k].is_all_caps && !d.tokens[k].is_stop);
    CHECK_STR(d.tokens[k].norm, "tcp");
    k = find_token(&d, "handshakes");
    CHECK(k >= 0 && !d.tokens[k].is_upper_initial);
    CHECK_STR(d.tokens[k].stem, "handshak");
    k = find_token(&d, "Networks");
    CHECK(k >= 0);
    CHECK_STR(d.tokens[k].norm, "networks");
    CHECK_STR(d.tokens[k].stem, "network");
    k = find_token(&d, "studies");
    CHECK(k >= 0);
    CHECK_STR(d.tokens[k].stem, "studi");
    k = find_token(&d, "it's");
    CHECK(k >= 0 && d.tokens[k].is_stop);
    k = find_token(&d, "US"); /* an acronym, not the pronoun */
    CHECK(k >= 0 && d.tokens[k].is_all_caps && !d.tokens[k].is_stop);
    k = find_token(&d, "Don’t");
    CHECK(k >= 0 && d.tokens[k].is_stop);
    CHECK_STR(d.tokens[k].norm, "don't");
    k = find_token(&d, ",");
    CHECK(k >= 0 && !d.tokens[k].is_word && !d.tokens[k].is_stop);
    CHECK_INT(d.tokens[k].sentence, ==, 1);

    /* Without stems: stem == norm. Sentences only: no tokens. */
    struct text_doc d2;
    CHECK_INT(text_segment(text, strlen(text), TEXT_SEG_NO_STEMS, &d2), ==, LOCI_OK);
    CHECK_INT(d2.n_tokens, ==, d.n_tokens);
    for (size_t i = 0; i < d2.n_tokens; i++)
        CHECK_STR(d2.tokens[i].stem, d2.tokens[i].norm);
    text_doc_release(&d2);
    CHECK_INT(text_segment(text, strlen(text), TEXT_SEG_SENTENCES, &d2), ==, LOCI_OK);
    CHECK_INT(d2.n_sentences, ==, d.n_sentences);
    CHECK_INT(d2.n_tokens, ==, 0);
    text_doc_release(&d2);
    text_doc_release(&d);
}

TEST(empty_and_blank_input)
{
    struct text_doc d;
    CHECK_INT(text_segment("", 0, 0, &d), ==, LOCI_OK);
    CHECK_INT(d.n_sentences, ==, 0);
    CHECK_INT(d.n_tokens, ==, 0);
    text_doc_release(&d);
    text_doc_release(&d); /* idempotent */
    CHECK_INT(text_segment(" \n\t\r\n  \x01 ", 9, 0, &d), ==, LOCI_OK);
    CHECK_INT(d.n_sentences, ==, 0);
    text_doc_release(&d);
    CHECK_INT(text_segment("...", 3, 0, &d), ==, LOCI_OK);
    CHECK_INT(d.n_sentences, ==, 1);
    CHECK_INT(d.n_tokens, >=, 1);
    CHECK(!d.tokens[0].is_word);
    text_doc_release(&d);
}

TEST(invalid_utf8_is_skipped)
{
    const char text[] = "abc \xff\xfe def. G\xc3(hi) \xed\xa0\x80 x\xf4\x90\x80\x80y. \xe2\x82";
    struct text_doc d;
    CHECK_INT(text_segment(text, sizeof(text) - 1, 0, &d), ==, LOCI_OK);
    check_invariants(&d);
    CHECK_INT(d.n_sentences, ==, 2);
    CHECK(find_token(&d, "abc") >= 0);
    CHECK(find_token(&d, "def") >= 0);
    CHECK(find_token(&d, "hi") >= 0);
    for (size_t i = 0; i < d.n_tokens; i++) {
        const struct text_token *t = &d.tokens[i];
        if (t->is_word) {
            for (size_t k = t->start; k < t->end; k++)
                CHECK((unsigned char)text[k] < 0x80); /* no invalid byte inside a word */
        }
    }
    /* The sentence is trimmed of the trailing invalid bytes. */
    CHECK(d.sentences[1].end <= sizeof(text) - 1 - 3);
    text_doc_release(&d);
}

TEST(random_bytes_never_break_invariants)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    char buf[600];
    const char pieces[][8] = {"a",
                              "B",
                              " ",
                              ".",
                              "\n",
                              "\xc3\xa9",
                              "\xe6\x9d\xb1",
                              "\xff",
                              "\xf0\x9f\x8d\x95",
                              "Dr.",
                              "!",
                              "\r\n",
                              "\xe2\x80\x99",
                              "7"};
    for (int iter = 0; iter < 400; iter++) {
        size_t n = 0;
        size_t want = (size_t)(iter * 7 % 500);
        while (n < want) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (x % 3 == 0) {
                buf[n++] = (char)(x >> 24); /* any byte at all */
            } else {
                const char *p = pieces[(x >> 8) % (sizeof(pieces) / sizeof(pieces[0]))];
                size_t pn = strlen(p);
                if (n + pn > sizeof(buf))
                    break;
                memcpy(buf + n, p, pn);
                n += pn;
            }
        }
        struct text_doc d;
        CHECK_INT(text_segment(buf, n, 0, &d), ==, LOCI_OK);
        check_invariants(&d);
        text_doc_release(&d);
    }
}

TEST(stop_words)
{
    CHECK(text_is_stop("the", 3));
    CHECK(text_is_stop("don't", 5));
    CHECK(text_is_stop("don\xe2\x80\x99t", 7));
    CHECK(text_is_stop("yourselves", 10));
    CHECK(!text_is_stop("network", 7));
    CHECK(!text_is_stop("The", 3)); /* expects case-folded input */
    CHECK(!text_is_stop("", 0));
    CHECK(!text_is_stop("th", 2));
}

static char *key_of(const char *term)
{
    struct buf b;
    buf_init(&b, 1024);
    int rc = text_term_key(term, strlen(term), &b);
    if (rc) {
        buf_release(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

static void check_key(const char *term, const char *want)
{
    char *k = key_of(term);
    CHECK_STR(k, want);
    xfree(k);
}

TEST(term_keys_merge_variants)
{
    check_key("Neural Networks", "neural network");
    check_key("neural  network", "neural network");
    check_key("NEURAL NETWORKS", "neural network");
    check_key(" neural\tnetworks! ", "neural network");
    check_key("(Neural Networks),", "neural network");
    check_key("light-dependent reactions", "light depend reaction");
    check_key("light dependent reaction", "light depend reaction");
    check_key("Ｆｕｌｌｗｉｄｔｈ Text", "fullwidth text");
    check_key("Straße", "strass");
    check_key("Newton’s laws", "newton law");
    check_key("Newton's Laws", "newton law");
    check_key("C++", "c++");
    check_key("C#", "c#");
    check_key("TCP/IP", "tcp/ip");
    check_key("soft\xc2\xadhyphen", "softhyphen");
    check_key("bad\xff byte", "bad byte");
    check_key("Theory of Mind", "theori of mind");

    char *a = key_of("photosynthesis"), *b = key_of("chlorophyll"), *c = key_of("network neural");
    CHECK(a && b && c);
    CHECK(strcmp(a, b) != 0);
    CHECK(strcmp(c, "neural network") != 0);
    xfree(a);
    xfree(b);
    xfree(c);

    struct buf out;
    buf_init(&out, 8);
    CHECK_INT(text_term_key("...", 3, &out), ==, LOCI_EINVAL);
    CHECK_INT(text_term_key("  ", 2, &out), ==, LOCI_EINVAL);
    CHECK_INT(out.len, ==, 0);
    CHECK_INT(text_term_key("extraordinarily long", 20, &out), ==, LOCI_ETOOBIG);
    CHECK_INT(out.len, ==, 0);
    CHECK_INT(text_term_key("cats", 4, &out), ==, LOCI_OK);
    CHECK_STR(buf_cstr(&out), "cat");
    buf_release(&out);
}

TEST(strip_controls_and_clean_line)
{
    struct buf b;
    buf_init(&b, 1024);
    const char in[] = "a\x01"
                      "b\tc\nd\x7f\xc2\x85"
                      "e\xff\r\xe2\x80\x99";
    CHECK_INT(text_strip_controls(in, sizeof(in) - 1, &b), ==, LOCI_OK);
    CHECK_STR(buf_cstr(&b), "ab\tc\nde\xe2\x80\x99");
    buf_reset(&b);
    CHECK_INT(text_strip_controls("", 0, &b), ==, LOCI_OK);
    CHECK_STR(buf_cstr(&b), "");
    const char line[] = "  One \n\t two\x01three\xc2\xa0\xc2\xa0 four  \n";
    CHECK_INT(text_clean_line(line, sizeof(line) - 1, &b), ==, LOCI_OK);
    CHECK_STR(buf_cstr(&b), "One twothree four");
    buf_release(&b);

    struct buf small;
    buf_init(&small, 4);
    CHECK_INT(buf_append_str(&small, "xy"), ==, LOCI_OK);
    CHECK_INT(text_strip_controls("abcdef", 6, &small), ==, LOCI_ETOOBIG);
    CHECK_STR(buf_cstr(&small), "xy");
    CHECK_INT(text_clean_line("a b c d", 7, &small), ==, LOCI_ETOOBIG);
    CHECK_STR(buf_cstr(&small), "xy");
    buf_release(&small);

    CHECK_INT(text_count_chars("héllo 🍕", strlen("héllo 🍕")), ==, 7);
    CHECK_INT(text_count_chars("a\xff", 2), ==, 2);
}

static const char *thread_text =
    "Photosynthesis converts light energy into chemical energy. Chlorophyll absorbs "
    "light. Dr. Smith measured the rates, e.g. in leaves. Neural networks learn "
    "representations. 東京は日本の首都です。 The end.";

struct thread_arg {
    size_t n_tokens;
    uint64_t stem_hash;
    int failures;
};

static void *segment_many(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 40; i++) {
        struct text_doc d;
        if (text_segment(thread_text, strlen(thread_text), 0, &d) != LOCI_OK) {
            a->failures++;
            continue;
        }
        uint64_t h = 1469598103934665603ull;
        for (size_t k = 0; k < d.n_tokens; k++)
            for (const char *c = d.tokens[k].stem; *c; c++)
                h = (h ^ (unsigned char)*c) * 1099511628211ull;
        if (i == 0) {
            a->n_tokens = d.n_tokens;
            a->stem_hash = h;
        } else if (a->n_tokens != d.n_tokens || a->stem_hash != h) {
            a->failures++;
        }
        text_doc_release(&d);
        struct buf b;
        buf_init(&b, 256);
        if (text_term_key("Neural Networks", 15, &b) != LOCI_OK ||
            strcmp(buf_cstr(&b), "neural network") != 0)
            a->failures++;
        buf_release(&b);
    }
    return NULL;
}

TEST(safe_from_many_threads)
{
    enum { N = 4 };
    pthread_t th[N];
    struct thread_arg args[N];
    memset(args, 0, sizeof(args));
    for (int i = 0; i < N; i++)
        CHECK_INT(pthread_create(&th[i], NULL, segment_many, &args[i]), ==, 0);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        CHECK_INT(args[i].failures, ==, 0);
        CHECK_INT(args[i].n_tokens, ==, args[0].n_tokens);
        CHECK(args[i].stem_hash == args[0].stem_hash);
    }
    CHECK(args[0].n_tokens > 20);
}

TEST(large_input)
{
    const char *para = "Large inputs are segmented in one pass. Each sentence here has a few "
                       "words, and some have numbers like 3.14 or 1,000.\n\n";
    size_t pn = strlen(para), reps = (2u << 20) / pn + 1;
    char *big = xmalloc(pn * reps);
    for (size_t i = 0; i < reps; i++)
        memcpy(big + i * pn, para, pn);
    struct text_doc d;
    CHECK_INT(text_segment(big, pn * reps, 0, &d), ==, LOCI_OK);
    CHECK_INT(d.n_sentences, ==, 2 * reps);
    CHECK_INT(d.n_tokens, >, 20 * reps);
    CHECK(d.tokens[d.n_tokens - 1].end <= pn * reps);
    text_doc_release(&d);
    xfree(big);
}
