/*
 * bench_fsrs.c - drives Loci's FSRS (src/learn/fsrs.h) with review histories
 * read as JSON lines on stdin, one history a line:
 *   {"start": MS, "retention": R, "reviews": [[MS, RATING], ...]}
 * Two modes:
 *   bench_fsrs replay   prints, per history, a JSON array with the card after
 *                       each review: [state, stability, difficulty, due,
 *                       last_review, elapsed_days, scheduled_days,
 *                       learning_steps, reps, lapses, retrievability at the
 *                       next review] (doubles with 17 digits); used by the
 *                       parity test tests/e2e/fsrs_parity.test.mjs
 *   bench_fsrs bench [ROUNDS]  schedules every review ROUNDS times (default
 *                       5) and prints reviews scheduled per second (best run)
 * Not a test by itself; not part of the server.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "learn/fsrs.h"

struct history {
    int64_t start;
    double retention;
    size_t n;
    int64_t *at;
    int *rating;
};

static int parse_line(const char *line, struct history *h)
{
    json_error_t jerr;
    json_t *root = json_loads(line, 0, &jerr);
    if (!root)
        return -1;
    json_t *revs = json_object_get(root, "reviews");
    if (!json_is_array(revs)) {
        json_decref(root);
        return -1;
    }
    h->start = (int64_t)json_integer_value(json_object_get(root, "start"));
    h->retention = json_number_value(json_object_get(root, "retention"));
    h->n = json_array_size(revs);
    h->at = xcalloc(h->n ? h->n : 1, sizeof *h->at);
    h->rating = xcalloc(h->n ? h->n : 1, sizeof *h->rating);
    for (size_t i = 0; i < h->n; i++) {
        json_t *r = json_array_get(revs, i);
        h->at[i] = (int64_t)json_integer_value(json_array_get(r, 0));
        h->rating[i] = (int)json_integer_value(json_array_get(r, 1));
    }
    json_decref(root);
    return 0;
}

static void replay(const struct history *h)
{
    struct fsrs_params p;
    struct fsrs_card c;
    fsrs_params_init(&p, h->retention);
    fsrs_card_init(&c, h->start);
    putchar('[');
    for (size_t i = 0; i < h->n; i++) {
        if (fsrs_next(&p, &c, h->at[i], h->rating[i], &c) != 0) {
            printf("%s\"error\"", i ? "," : "");
            break;
        }
        double r = i + 1 < h->n ? fsrs_retrievability(&p, &c, h->at[i + 1]) : 0;
        printf("%s[%d,%.17g,%.17g,%lld,%lld,%lld,%lld,%d,%d,%d,%.17g]", i ? "," : "", (int)c.state,
               c.stability, c.difficulty, (long long)c.due, (long long)c.last_review,
               (long long)c.elapsed_days, (long long)c.scheduled_days, c.learning_steps, c.reps,
               c.lapses, r);
    }
    puts("]");
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int rounds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 5;
    if (strcmp(mode, "replay") != 0 && strcmp(mode, "bench") != 0) {
        fprintf(stderr, "usage: bench_fsrs replay|bench [ROUNDS] < histories.jsonl\n");
        return 2;
    }
    size_t n = 0, cap = 1024;
    struct history *hs = xcalloc(cap, sizeof *hs);
    char *line = NULL;
    size_t line_cap = 0;
    while (getline(&line, &line_cap, stdin) > 0) {
        if (n == cap) {
            cap *= 2;
            hs = xrealloc(hs, cap * sizeof *hs);
        }
        if (parse_line(line, &hs[n]) != 0) {
            fprintf(stderr, "bench_fsrs: bad line %zu\n", n + 1);
            return 1;
        }
        n++;
    }
    free(line); /* allocated by getline */
    if (strcmp(mode, "replay") == 0) {
        for (size_t i = 0; i < n; i++)
            replay(&hs[i]);
    } else {
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += hs[i].n;
        double best = 1e30;
        volatile double sink = 0;
        for (int r = 0; r < (rounds > 0 ? rounds : 1); r++) {
            int64_t t0 = clock_mono_ns();
            for (size_t i = 0; i < n; i++) {
                struct fsrs_params p;
                struct fsrs_card c;
                fsrs_params_init(&p, hs[i].retention);
                fsrs_card_init(&c, hs[i].start);
                for (size_t k = 0; k < hs[i].n; k++)
                    fsrs_next(&p, &c, hs[i].at[k], hs[i].rating[k], &c);
                sink += c.stability;
            }
            double s = (double)(clock_mono_ns() - t0) / 1e9;
            if (s < best)
                best = s;
        }
        printf("{\"reviews\":%zu,\"seconds\":%.6f,\"reviews_per_s\":%.0f}\n", total, best,
               (double)total / best);
    }
    for (size_t i = 0; i < n; i++) {
        xfree(hs[i].at);
        xfree(hs[i].rating);
    }
    xfree(hs);
    return 0;
}
