/*
 * bench_offline.c - throughput of the offline text engine (services/offline,
 * services/text) on English prose: what the `local` AI provider costs per
 * request, single-threaded.
 *
 * Usage: bench_offline [SECONDS_PER_FIGURE=2] [CORPUS_KB=120]
 *
 * The corpus is built from a dozen paragraphs written for this benchmark,
 * repeated in a rotating order with numbered variations until it holds
 * CORPUS_KB kilobytes. Figures, each repeated until SECONDS_PER_FIGURE
 * have passed:
 *   icu_open        ubrk_open of a sentence and a word iterator (what the
 *                   per-thread cache in text.c saves on every call)
 *   segment         text_segment (sentences, tokens, stems) over 300-word chunks
 *   embed           offline_embed, 300-word chunks in batches of 32, dims 384
 *   keyterms        offline_keyterms (10 terms) on 5 KB documents
 *   keyterms_big    offline_keyterms (10 terms) on the whole corpus at once
 *   summary         offline_summarize (defaults) per 5 KB document
 *   define          offline_define of a frequent term per 5 KB document
 *   answer          offline_answer (defaults) for one question over 10
 *                   passages of 300 words
 * Each is printed in a table and as one machine-readable line
 * "RESULT figure=... calls=... seconds=... per_call_us=... kb_per_s=...".
 *
 * Not for comparing against model providers (no network here) and not a
 * multi-threaded figure: everything is pure computation and scales with
 * cores.
 */
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "services/offline/offline.h"
#include "services/text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ubrk.h>

static const char *const paragraphs[] = {
    "Photosynthesis is the process by which green plants, algae and some bacteria turn light "
    "energy into chemical energy. Chlorophyll in the chloroplasts absorbs red and blue light, "
    "and the plant uses that energy to split water molecules. The oxygen we breathe is released "
    "as a by-product of this step. In the Calvin cycle, carbon dioxide taken in through the "
    "stomata is fixed into three-carbon sugars, which the plant later assembles into glucose, "
    "starch and cellulose. Because almost every food chain starts with a plant or an alga, "
    "photosynthesis ultimately feeds nearly all life on Earth.",

    "The French Revolution began in 1789, when a financial crisis forced King Louis XVI to call "
    "the Estates-General for the first time in 175 years. The Third Estate declared itself a "
    "National Assembly, and on 14 July crowds in Paris stormed the Bastille. Within three years "
    "the monarchy was abolished and France became a republic. The Reign of Terror that followed, "
    "led by Robespierre and the Committee of Public Safety, sent thousands to the guillotine "
    "before the Directory and, finally, Napoleon Bonaparte took power in 1799.",

    "TCP is a connection-oriented transport protocol. Before any data is exchanged, the client "
    "and the server perform a three-way handshake: SYN, SYN-ACK and ACK. Every byte carries a "
    "sequence number, so the receiver can put segments back in order and acknowledge what it "
    "has received. Segments that are not acknowledged before a timeout are retransmitted. "
    "Congestion control, through slow start and congestion avoidance, lets TCP share a busy "
    "link fairly with other connections instead of flooding it.",

    "Spaced repetition is a learning technique in which reviews of a fact are scheduled at "
    "increasing intervals. Each successful recall makes the memory more stable, so the next "
    "review can wait longer; a failed recall shortens the interval again. Algorithms such as "
    "SM-2 and FSRS estimate how likely a learner is to remember an item on a given day and "
    "schedule the review just before that probability drops below a target, often ninety "
    "percent. Learners who review this way remember more while spending less time.",

    "A neural network is a function built from layers of simple units. Each unit computes a "
    "weighted sum of its inputs and passes it through a non-linear activation such as ReLU. "
    "During training, backpropagation computes how much each weight contributed to the error "
    "on a batch of examples, and gradient descent nudges the weights in the direction that "
    "reduces it. Deep networks with many layers can learn representations of images, sound "
    "and text, but they need large amounts of data and careful regularisation to generalise.",

    "The water cycle moves water between the oceans, the atmosphere and the land. Heat from the "
    "sun evaporates water from the sea surface, and plants release more through transpiration. "
    "As moist air rises it cools, and the vapour condenses into clouds. Precipitation returns "
    "the water to the ground as rain or snow, where it either soaks into aquifers, flows into "
    "rivers, or is stored for years in glaciers and ice sheets before it reaches the sea again.",

    "Supply and demand determine prices in a competitive market. When a good becomes scarce, "
    "buyers compete for it and the price rises until some of them drop out; when there is a "
    "surplus, sellers cut prices to clear their stock. Economists call the price at which the "
    "quantity supplied equals the quantity demanded the equilibrium. Taxes, subsidies and price "
    "controls move the market away from that point, which is why they so often create shortages "
    "or queues that their designers did not intend.",

    "The human heart has four chambers. Oxygen-poor blood from the body enters the right atrium, "
    "passes to the right ventricle and is pumped to the lungs, where it releases carbon dioxide "
    "and picks up oxygen. It returns to the left atrium and is pushed by the thick-walled left "
    "ventricle into the aorta and out to every organ. Valves between the chambers keep the flow "
    "moving in one direction, and an electrical signal from the sinoatrial node sets the rhythm "
    "of each beat.",

    "Plate tectonics explains why earthquakes and volcanoes cluster along certain lines on the "
    "map. The outer shell of the Earth is broken into rigid plates that drift a few centimetres "
    "a year over the hotter mantle beneath. Where plates pull apart, new crust forms at mid-ocean "
    "ridges; where they collide, one plate may dive beneath the other in a subduction zone, "
    "building mountain ranges and volcanic arcs. Where they slide past each other, as along the "
    "San Andreas Fault, stress builds up and is released in sudden earthquakes.",

    "A relational database stores data in tables of rows and columns and answers questions "
    "written in SQL. Indexes, usually B-trees, let the engine find rows without scanning a whole "
    "table. Transactions group several changes so that either all of them happen or none do, "
    "and isolation levels decide what one transaction may see of another that has not finished "
    "yet. A good schema avoids storing the same fact twice, which keeps updates simple and the "
    "data consistent.",

    "The printing press, developed by Johannes Gutenberg around 1440, combined movable metal "
    "type, oil-based ink and a screw press adapted from wine making. Books that had taken "
    "scribes months to copy could now be produced in hundreds of identical copies. Within fifty "
    "years presses were running in more than two hundred European cities. Cheaper books spread "
    "literacy, helped the Reformation carry its arguments across borders, and let scientists "
    "build on each other's results instead of rediscovering them.",

    "Vaccines train the immune system to recognise a pathogen without causing the disease. A "
    "vaccine presents an antigen, such as an inactivated virus, a protein fragment or messenger "
    "RNA that tells cells to make one, and the body responds by producing antibodies and memory "
    "cells. If the real pathogen arrives later, those memory cells react within days rather than "
    "weeks. When enough of a population is immune, the pathogen cannot spread easily, which also "
    "protects people who cannot be vaccinated.",
};

#define N_PARAGRAPHS (sizeof(paragraphs) / sizeof(paragraphs[0]))

/* The corpus: paragraphs in a rotating order, each preceded by a numbered
 * sentence so that repeats are not byte-identical. */
static void build_corpus(struct buf *b, size_t want)
{
    for (size_t round = 0; b->len < want; round++) {
        for (size_t i = 0; i < N_PARAGRAPHS && b->len < want; i++) {
            size_t k = (i * 5 + round * 7) % N_PARAGRAPHS;
            if (buf_printf(b, "Note %zu.%zu reviews this topic again. %s\n\n", round + 1, i + 1,
                           paragraphs[k]) != LOCI_OK) {
                fprintf(stderr, "bench_offline: corpus too big\n");
                exit(1);
            }
        }
    }
}

/* Split s into pieces of about `words` words, cut at white space. */
static size_t split_words(const char *s, size_t n, size_t words, struct str *out, size_t max)
{
    size_t count = 0, start = 0, w = 0;
    for (size_t i = 0; i < n && count < max; i++) {
        bool is_space = s[i] == ' ' || s[i] == '\n';
        if (is_space && i > start && s[i - 1] != ' ' && s[i - 1] != '\n')
            w++;
        if (is_space && w >= words) {
            out[count++] = (struct str){s + start, i - start};
            start = i + 1;
            w = 0;
        }
    }
    return count;
}

/* Split s into pieces of about `bytes` bytes, cut after a paragraph. */
static size_t split_bytes(const char *s, size_t n, size_t bytes, struct str *out, size_t max)
{
    size_t count = 0, start = 0;
    for (size_t i = 0; i + 1 < n && count < max; i++) {
        if (s[i] == '\n' && s[i + 1] == '\n' && i - start >= bytes) {
            out[count++] = (struct str){s + start, i - start};
            start = i + 2;
        }
    }
    return count;
}

struct result {
    const char *figure;
    const char *what;
    long calls;
    double seconds;
    double bytes; /* input bytes processed */
    double items; /* chunks embedded etc., when not calls */
};

static void report(const struct result *r)
{
    double per_call_us = r->seconds / (double)r->calls * 1e6;
    double kb_s = r->bytes / 1024.0 / r->seconds;
    printf("%-13s %-44s %10.1f %12.1f", r->figure, r->what, per_call_us, kb_s);
    if (r->items > 0)
        printf("  %9.0f/s", r->items / r->seconds);
    printf("\n");
}

static void result_line(const struct result *r)
{
    printf("RESULT figure=%s calls=%ld seconds=%.3f per_call_us=%.1f kb_per_s=%.1f", r->figure,
           r->calls, r->seconds, r->seconds / (double)r->calls * 1e6,
           r->bytes / 1024.0 / r->seconds);
    if (r->items > 0)
        printf(" items_per_s=%.1f", r->items / r->seconds);
    printf("\n");
}

static void fail(const char *what, int rc)
{
    fprintf(stderr, "bench_offline: %s failed: %s\n", what, loci_err_code(rc));
    exit(1);
}

static double seconds_since(int64_t t0)
{
    return (double)(clock_mono_ns() - t0) / 1e9;
}

int main(int argc, char **argv)
{
    double budget = 2.0;
    long long kb = 120;
    if (argc > 1 && (parse_double(argv[1], &budget) != LOCI_OK || budget <= 0)) {
        fprintf(stderr, "usage: bench_offline [SECONDS_PER_FIGURE=2] [CORPUS_KB=120]\n");
        return 2;
    }
    if (argc > 2 && parse_int64(argv[2], 16, 100000, &kb) != LOCI_OK) {
        fprintf(stderr, "usage: bench_offline [SECONDS_PER_FIGURE=2] [CORPUS_KB=120]\n");
        return 2;
    }
    struct buf corpus;
    buf_init(&corpus, (size_t)kb * 1024 + 4096);
    build_corpus(&corpus, (size_t)kb * 1024);

    enum { MAX_PIECES = 4096, BATCH = 32 };
    struct str *chunks = xmalloc(MAX_PIECES * sizeof(*chunks));
    struct str *docs = xmalloc(MAX_PIECES * sizeof(*docs));
    size_t n_chunks = split_words(corpus.p, corpus.len, 300, chunks, MAX_PIECES);
    size_t n_docs = split_bytes(corpus.p, corpus.len, 5 * 1024, docs, MAX_PIECES);
    if (n_chunks < 10 || n_docs < 2) {
        fprintf(stderr, "bench_offline: corpus too small\n");
        return 1;
    }
    double chunk_bytes = 0;
    for (size_t i = 0; i < n_chunks; i++)
        chunk_bytes += (double)chunks[i].n;
    printf("corpus: %zu KB, %zu chunks of 300 words (avg %.0f bytes), %zu documents of ~5 KB\n",
           corpus.len / 1024, n_chunks, chunk_bytes / (double)n_chunks, n_docs);
    printf("%.1f s per figure, one thread\n\n", budget);

    struct result res[8];
    size_t n_res = 0;
    int rc;

    /* icu_open: what every call would pay without the per-thread cache. */
    {
        struct result r = {"icu_open", "ubrk_open sentence + word iterators", 0, 0, 0, 0};
        int64_t t0 = clock_mono_ns();
        do {
            UErrorCode st = U_ZERO_ERROR;
            UBreakIterator *s = ubrk_open(UBRK_SENTENCE, "en", NULL, 0, &st);
            UBreakIterator *w = ubrk_open(UBRK_WORD, "en", NULL, 0, &st);
            if (U_FAILURE(st))
                fail("ubrk_open", LOCI_EINTERNAL);
            ubrk_close(s);
            ubrk_close(w);
            r.calls++;
        } while ((r.seconds = seconds_since(t0)) < budget);
        res[n_res++] = r;
    }

    /* segment: the text layer alone. */
    {
        struct result r = {"segment", "text_segment, one 300-word chunk", 0, 0, 0, 0};
        int64_t t0 = clock_mono_ns();
        size_t i = 0;
        do {
            struct text_doc d;
            const struct str *c = &chunks[i++ % n_chunks];
            if ((rc = text_segment(c->p, c->n, 0, &d)) != LOCI_OK)
                fail("text_segment", rc);
            text_doc_release(&d);
            r.calls++;
            r.bytes += (double)c->n;
        } while ((r.seconds = seconds_since(t0)) < budget);
        res[n_res++] = r;
    }

    /* embed: batches of 32 chunks at 384 dimensions. */
    {
        struct result r = {"embed", "offline_embed, batch of 32 chunks, dims 384", 0, 0, 0, 0};
        const char *texts[BATCH];
        size_t lens[BATCH];
        float *out = xmalloc(BATCH * OFFLINE_DEFAULT_DIMS * sizeof(float));
        int64_t t0 = clock_mono_ns();
        size_t i = 0;
        do {
            for (size_t k = 0; k < BATCH; k++, i++) {
                texts[k] = chunks[i % n_chunks].p;
                lens[k] = chunks[i % n_chunks].n;
                r.bytes += (double)lens[k];
            }
            if ((rc = offline_embed(texts, lens, BATCH, OFFLINE_DEFAULT_DIMS, out)) != LOCI_OK)
                fail("offline_embed", rc);
            r.calls++;
            r.items += BATCH;
        } while ((r.seconds = seconds_since(t0)) < budget);
        xfree(out);
        res[n_res++] = r;
    }

    /* keyterms on 5 KB documents and on the whole corpus. */
    {
        struct result r = {"keyterms", "offline_keyterms, 10 terms, one 5 KB document", 0, 0, 0, 0};
        int64_t t0 = clock_mono_ns();
        size_t i = 0;
        do {
            struct offline_terms t;
            const struct str *d = &docs[i++ % n_docs];
            if ((rc = offline_keyterms(d->p, d->n, 10, &t)) != LOCI_OK)
                fail("offline_keyterms", rc);
            offline_terms_release(&t);
            r.calls++;
            r.bytes += (double)d->n;
        } while ((r.seconds = seconds_since(t0)) < budget);
        res[n_res++] = r;
    }
    {
        struct result r = {
            "keyterms_big", "offline_keyterms, 10 terms, the whole corpus", 0, 0, 0, 0};
        int64_t t0 = clock_mono_ns();
        do {
            struct offline_terms t;
            if ((rc = offline_keyterms(corpus.p, corpus.len, 10, &t)) != LOCI_OK)
                fail("offline_keyterms", rc);
            offline_terms_release(&t);
            r.calls++;
            r.bytes += (double)corpus.len;
        } while ((r.seconds = seconds_since(t0)) < budget);
        res[n_res++] = r;
    }

    /* summary per 5 KB document. */
    {
        struct result r = {"summary", "offline_summarize, one 5 KB document", 0, 0, 0, 0};
        int64_t t0 = clock_mono_ns();
        size_t i = 0;
        do {
            char *s = NULL;
            const struct str *d = &docs[i++ % n_docs];
            if ((rc = offline_summarize(d->p, d->n, NULL, &s)) != LOCI_OK)
                fail("offline_summarize", rc);
            xfree(s);
            r.calls++;
            r.bytes += (double)d->n;
        } while ((r.seconds = seconds_since(t0)) < budget);
        res[n_res++] = r;
    }

    /* define a frequent term per 5 KB document. */
    {
        struct result r = {"define", "offline_define, one 5 KB document", 0, 0, 0, 0};
        const char *terms[] = {"photosynthesis", "TCP", "neural network", "spaced repetition"};
        int64_t t0 = clock_mono_ns();
        size_t i = 0;
        do {
            char *s = NULL;
            const struct str *d = &docs[i % n_docs];
            const char *term = terms[i % 4];
            i++;
            if ((rc = offline_define(term, strlen(term), d->p, d->n, &s)) != LOCI_OK)
                fail("offline_define", rc);
            xfree(s);
            r.calls++;
            r.bytes += (double)d->n;
        } while ((r.seconds = seconds_since(t0)) < budget);
        res[n_res++] = r;
    }

    /* answer: one question over 10 passages of 300 words. */
    {
        struct result r = {"answer", "offline_answer, 10 passages of 300 words", 0, 0, 0, 0};
        const char *questions[] = {
            "How does TCP establish a connection?",
            "Why did the French monarchy fall?",
            "What does chlorophyll absorb?",
            "How does spaced repetition schedule reviews?",
        };
        struct offline_passage p[10];
        int64_t t0 = clock_mono_ns();
        size_t i = 0, found = 0;
        do {
            for (size_t k = 0; k < 10; k++) {
                const struct str *c = &chunks[(i * 10 + k) % n_chunks];
                p[k] = (struct offline_passage){c->p, c->n};
                r.bytes += (double)c->n;
            }
            const char *q = questions[i % 4];
            i++;
            struct offline_answer a;
            if ((rc = offline_answer(q, strlen(q), p, 10, NULL, &a)) != LOCI_OK)
                fail("offline_answer", rc);
            found += a.is_found;
            offline_answer_release(&a);
            r.calls++;
        } while ((r.seconds = seconds_since(t0)) < budget);
        if (found == 0)
            fail("offline_answer (never found anything)", LOCI_EINTERNAL);
        res[n_res++] = r;
    }

    printf("%-13s %-44s %10s %12s  %10s\n", "figure", "what", "us/call", "KB/s", "items");
    for (size_t i = 0; i < n_res; i++)
        report(&res[i]);
    printf("\n");
    for (size_t i = 0; i < n_res; i++)
        result_line(&res[i]);
    xfree(chunks);
    xfree(docs);
    buf_release(&corpus);
    return 0;
}
