/*
 * fsrs.h - the FSRS spaced-repetition scheduler, exactly as the npm package
 * ts-fsrs 5.x implements it by default (FSRS-6, 21 default weights, short-term
 * scheduling on, learning steps 1m 10m, relearning step 10m, maximum interval
 * 36500 days, fuzz off). Pure functions on plain structs: no I/O, no clock, no
 * allocation; safe from any thread.
 *
 * Times are UTC milliseconds. "Elapsed days" are counted the way ts-fsrs
 * counts them: whole UTC calendar days between the last review and now for
 * scheduling, whole 24 h periods for the retrievability shown to the learner.
 * Every intermediate value is rounded to 8 decimals where ts-fsrs rounds, in
 * the same order of operations, so results match it to the last bit in all
 * but the rarest libm differences (see tests/e2e/fsrs_parity.test.mjs).
 *
 * Not here: storage of cards (src/learn/learn.h), parameter optimisation.
 */
#ifndef LOCI_LEARN_FSRS_H
#define LOCI_LEARN_FSRS_H

#include <stdint.h>

enum fsrs_state { FSRS_NEW = 0, FSRS_LEARNING = 1, FSRS_REVIEW = 2, FSRS_RELEARNING = 3 };
enum fsrs_rating { FSRS_AGAIN = 1, FSRS_HARD = 2, FSRS_GOOD = 3, FSRS_EASY = 4 };

#define FSRS_DEFAULT_RETENTION 0.9
#define FSRS_MAX_INTERVAL      36500

/* Scheduler parameters derived from the desired retention. */
struct fsrs_params {
    double w[21];
    double request_retention; /* 0 < r <= 1 */
    double decay;             /* -w[20] */
    double factor;            /* 0.9^(1/decay) - 1, rounded to 8 decimals */
    double interval_modifier; /* days per unit of stability at this retention */
    int maximum_interval;     /* days */
};

/* A card's memory state. A fresh card is all zeros with state FSRS_NEW. */
struct fsrs_card {
    int64_t due;         /* UTC ms */
    int64_t last_review; /* UTC ms; 0 = never reviewed */
    double stability;    /* days until recall probability falls to 90 % */
    double difficulty;   /* 1..10 (0 while new) */
    int64_t elapsed_days;
    int64_t scheduled_days;
    int learning_steps; /* index into the (re)learning steps */
    int reps;
    int lapses;
    enum fsrs_state state;
};

/* Fill p with ts-fsrs's defaults and the given desired retention
 * (0 < retention <= 1, else the default 0.9 is used). */
void fsrs_params_init(struct fsrs_params *p, double retention);

/* A new card due at now. */
void fsrs_card_init(struct fsrs_card *c, int64_t now);

/* The card after rating (1..4) at now: ts-fsrs's `fsrs().next(card, now,
 * rating).card`. Returns 0, or LOCI_EINVAL for a rating outside 1..4 (out is
 * untouched then). in and out may be the same struct. */
int fsrs_next(const struct fsrs_params *p, const struct fsrs_card *in, int64_t now, int rating,
              struct fsrs_card *out);

/* Probability of recall at now (ts-fsrs's get_retrievability, unformatted):
 * 0 for a new card, else the forgetting curve after whole days elapsed. */
double fsrs_retrievability(const struct fsrs_params *p, const struct fsrs_card *c, int64_t now);

/* The forgetting curve R(t, s) rounded to 8 decimals. */
double fsrs_forgetting_curve(const struct fsrs_params *p, double elapsed_days, double stability);

#endif
