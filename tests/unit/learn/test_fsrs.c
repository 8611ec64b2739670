/*
 * test_fsrs.c - FSRS against values printed by ts-fsrs 5.4.2 (defaults) for
 * hand-picked sequences; the 12,000-history parity run is
 * tests/e2e/fsrs_parity.test.mjs.
 */
#include <string.h>

#include "core/err.h"
#include "harness.h"
#include "learn/fsrs.h"

#define T0  1767258000000LL /* 2026-01-01T09:00:00Z */
#define MIN 60000LL
#define DAY 86400000LL

struct step {
    int64_t at;
    int rating;
    int state;
    double stability, difficulty;
    int64_t due;
    int64_t scheduled_days;
    int learning_steps, reps, lapses;
};

TEST(fsrs_sequence_matches_ts_fsrs)
{
    /* new -> learning -> review -> lapse -> relearning -> review, then a
     * same-day Hard (short-term stability) */
    static const struct step steps[] = {
        {0, 3, 1, 2.3065, 2.11810397, 600000, 0, 1, 1, 0},
        {10 * MIN, 3, 2, 2.3065, 2.11121424, 173400000, 2, 0, 2, 0},
        {3 * DAY, 3, 2, 13.8358397, 2.1043314, 1468800000, 14, 0, 3, 0},
        {20 * DAY, 1, 3, 1.76729057, 7.38997579, 1728600000, 0, 0, 4, 1},
        {20 * DAY + 10 * MIN, 3, 2, 1.78863716, 7.37781418, 1901400000, 2, 0, 5, 1},
        {60 * DAY, 4, 2, 27.32122674, 6.48683024, 7516800000, 27, 0, 6, 1},
        {60 * DAY + 5000, 2, 2, 27.32122674, 7.65302257, 7516805000, 27, 0, 7, 1},
    };
    struct fsrs_params p;
    struct fsrs_card c;
    fsrs_params_init(&p, 0.9);
    fsrs_card_init(&c, T0);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const struct step *s = &steps[i];
        CHECK_INT(fsrs_next(&p, &c, T0 + s->at, s->rating, &c), ==, LOCI_OK);
        CHECK_INT(c.state, ==, s->state);
        CHECK(c.stability == s->stability);
        CHECK(c.difficulty == s->difficulty);
        CHECK_INT(c.due - T0, ==, s->due);
        CHECK_INT(c.scheduled_days, ==, s->scheduled_days);
        CHECK_INT(c.learning_steps, ==, s->learning_steps);
        CHECK_INT(c.reps, ==, s->reps);
        CHECK_INT(c.lapses, ==, s->lapses);
        CHECK_INT(c.last_review, ==, T0 + s->at);
    }
    CHECK(fsrs_retrievability(&p, &c, T0 + 200 * DAY) == 0.75883489);
}

TEST(fsrs_retention_changes_intervals)
{
    struct fsrs_params p;
    struct fsrs_card c;
    fsrs_params_init(&p, 0.8);
    fsrs_card_init(&c, T0);
    CHECK_INT(fsrs_next(&p, &c, T0, 4, &c), ==, LOCI_OK);
    CHECK_INT(c.scheduled_days, ==, 28);
    CHECK(c.stability == 8.2956);
    CHECK_INT(fsrs_next(&p, &c, T0 + 28 * DAY, 3, &c), ==, LOCI_OK);
    CHECK_INT(c.scheduled_days, ==, 246);
    CHECK(c.stability == 74.32595003);
}

TEST(fsrs_rejects_bad_input)
{
    struct fsrs_params p;
    struct fsrs_card c, out;
    fsrs_params_init(&p, 2.0); /* out of range: the default */
    CHECK(p.request_retention == FSRS_DEFAULT_RETENTION);
    fsrs_card_init(&c, T0);
    memset(&out, 0x5a, sizeof out);
    CHECK_INT(fsrs_next(&p, &c, T0, 0, &out), ==, LOCI_EINVAL);
    CHECK_INT(fsrs_next(&p, &c, T0, 5, &out), ==, LOCI_EINVAL);
    CHECK_INT(out.reps, ==, 0x5a5a5a5a);
    CHECK(fsrs_retrievability(&p, &c, T0 + DAY) == 0);
    CHECK_INT(fsrs_next(&p, &c, T0, 3, &c), ==, LOCI_OK);
    /* a review dated a day before the last one is refused, as ts-fsrs throws */
    CHECK_INT(fsrs_next(&p, &c, T0 - DAY, 3, &out), ==, LOCI_EINVAL);
}
