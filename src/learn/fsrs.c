/*
 * fsrs.c - FSRS-6 scheduling, a line-by-line port of ts-fsrs 5.x
 * (src/algorithm.ts, src/impl/basic_scheduler.ts, src/abstract_scheduler.ts,
 * src/strategies/learning_steps.ts) with its defaults. Where ts-fsrs rounds
 * (roundTo(x, 8) = Math.round(x * 1e8) / 1e8) this file rounds the same way,
 * and products are written in the same left-to-right order, so the doubles
 * agree with JavaScript's. Not for: storage, clocks, per-user settings.
 */
#include "learn/fsrs.h"

#include <math.h>
#include <string.h>

#include "core/err.h"

#define DAY_MS    86400000LL
#define MINUTE_MS 60000LL
#define S_MIN     0.001
#define S_MAX     36500.0

/* ts-fsrs's default_w (FSRS-6). */
static const double default_w[21] = {
    0.212,  1.2931, 2.3065, 8.2956, 6.4133, 0.8334, 3.0194, 0.001,  1.8722, 0.1666, 0.796,
    1.4835, 0.0614, 0.2629, 1.6483, 0.6014, 1.8729, 0.5425, 0.0912, 0.0658, 0.1542,
};

/* Learning steps ['1m', '10m'] and relearning steps ['10m'], in minutes. */
static const int learning_steps[] = {1, 10};
static const int relearning_steps[] = {10};

/* JavaScript's Math.round: the nearest integer, halves towards +infinity,
 * -0 kept (V8 computes it as ceil, minus one when ceil overshoots by more
 * than a half, which is exact for every double). */
static double js_round(double x)
{
    if (!isfinite(x))
        return x;
    double r = ceil(x);
    if (r - 0.5 > x)
        r -= 1.0;
    return r;
}

/* ts-fsrs's roundTo(num, 8). */
static double round8(double x)
{
    return js_round(x * 1e8) / 1e8;
}

static double clampd(double v, double lo, double hi)
{
    return fmin(fmax(v, lo), hi);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

void fsrs_params_init(struct fsrs_params *p, double retention)
{
    memcpy(p->w, default_w, sizeof p->w);
    if (!(retention > 0 && retention <= 1))
        retention = FSRS_DEFAULT_RETENTION;
    p->request_retention = retention;
    p->maximum_interval = FSRS_MAX_INTERVAL;
    p->decay = -p->w[20];
    p->factor = round8(exp((1.0 / p->decay) * log(0.9)) - 1.0);
    p->interval_modifier = round8((pow(retention, 1 / p->decay) - 1) / p->factor);
}

void fsrs_card_init(struct fsrs_card *c, int64_t now)
{
    memset(c, 0, sizeof *c);
    c->due = now;
    c->state = FSRS_NEW;
}

double fsrs_forgetting_curve(const struct fsrs_params *p, double elapsed_days, double stability)
{
    return round8(pow(1 + (p->factor * elapsed_days) / stability, p->decay));
}

static double init_stability(const struct fsrs_params *p, int g)
{
    return fmax(p->w[g - 1], 0.1);
}

static double init_difficulty(const struct fsrs_params *p, int g)
{
    return round8(p->w[4] - exp((g - 1) * p->w[5]) + 1);
}

static double next_difficulty(const struct fsrs_params *p, double d, int g)
{
    double delta_d = -p->w[6] * (g - 3);
    double next_d = d + round8((delta_d * (10 - d)) / 9);
    double mean = round8(p->w[7] * init_difficulty(p, FSRS_EASY) + (1 - p->w[7]) * next_d);
    return clampd(mean, 1, 10);
}

static double next_recall_stability(const struct fsrs_params *p, double d, double s, double r,
                                    int g)
{
    const double *w = p->w;
    double hard_penalty = g == FSRS_HARD ? w[15] : 1;
    double easy_bound = g == FSRS_EASY ? w[16] : 1;
    return round8(clampd(s * (1 + exp(w[8]) * (11 - d) * pow(s, -w[9]) *
                                      (exp((1 - r) * w[10]) - 1) * hard_penalty * easy_bound),
                         S_MIN, S_MAX));
}

static double next_forget_stability(const struct fsrs_params *p, double d, double s, double r)
{
    const double *w = p->w;
    return round8(clampd(w[11] * pow(d, -w[12]) * (pow(s + 1, w[13]) - 1) * exp((1 - r) * w[14]),
                         S_MIN, S_MAX));
}

static double next_short_term_stability(const struct fsrs_params *p, double s, int g)
{
    const double *w = p->w;
    double sinc = pow(s, -w[19]) * exp(w[17] * (g - 3 + w[18]));
    double masked = g >= FSRS_HARD ? fmax(sinc, 1.0) : sinc;
    return round8(clampd(s * masked, S_MIN, S_MAX));
}

/* FSRSAlgorithm.next_state (short-term scheduling on); r < 0 = compute it. */
static void next_memory(const struct fsrs_params *p, double d, double s, double t, int g, double r,
                        double *out_d, double *out_s)
{
    if (d == 0 && s == 0) {
        *out_d = clampd(init_difficulty(p, g), 1, 10);
        *out_s = init_stability(p, g);
        return;
    }
    if (r < 0)
        r = fsrs_forgetting_curve(p, t, s);
    double new_s;
    if (t == 0) {
        new_s = next_short_term_stability(p, s, g);
    } else if (g == FSRS_AGAIN) {
        double s_after_fail = next_forget_stability(p, d, s, r);
        double next_s_min = s / exp(p->w[17] * p->w[18]);
        new_s = clampd(round8(next_s_min), S_MIN, s_after_fail);
    } else {
        new_s = next_recall_stability(p, d, s, r, g);
    }
    *out_d = next_difficulty(p, d, g);
    *out_s = new_s;
}

/* FSRSAlgorithm.next_interval with fuzz off. */
static int64_t next_interval(const struct fsrs_params *p, double s)
{
    double ivl = fmin(fmax(1, js_round(s * p->interval_modifier)), p->maximum_interval);
    return (int64_t)js_round(ivl);
}

/* BasicLearningStepsStrategy: minutes and next step for grade g from a card
 * in state `state` at step cur_step; minutes 0 = graduate to Review. */
static void step_info(enum fsrs_state state, int cur_step, int g, double *out_minutes,
                      int *out_next_step)
{
    const int *steps = learning_steps;
    int n = (int)(sizeof learning_steps / sizeof learning_steps[0]);
    if (state == FSRS_RELEARNING || state == FSRS_REVIEW) {
        steps = relearning_steps;
        n = (int)(sizeof relearning_steps / sizeof relearning_steps[0]);
    }
    *out_minutes = 0;
    *out_next_step = 0;
    if (n == 0 || cur_step >= n)
        return;
    if (state == FSRS_REVIEW) {
        if (g == FSRS_AGAIN) {
            *out_minutes = steps[cur_step < 0 ? 0 : cur_step];
            *out_next_step = 0;
        }
        return;
    }
    switch (g) {
    case FSRS_AGAIN:
        *out_minutes = steps[0];
        *out_next_step = 0;
        break;
    case FSRS_HARD:
        *out_minutes = n == 1 ? js_round(steps[0] * 1.5) : js_round((steps[0] + steps[1]) / 2.0);
        *out_next_step = cur_step;
        break;
    case FSRS_GOOD:
        if (cur_step + 1 >= 0 && cur_step + 1 < n && steps[cur_step + 1] != 0) {
            *out_minutes = steps[cur_step + 1];
            *out_next_step = cur_step + 1;
        }
        break;
    default:
        break;
    }
}

/* BasicScheduler.applyLearningSteps; cur is the card being reviewed (after
 * the scheduler's init), next the candidate with its new memory state. */
static void apply_learning_steps(const struct fsrs_params *p, const struct fsrs_card *cur,
                                 struct fsrs_card *next, int g, enum fsrs_state to_state,
                                 int64_t now)
{
    double minutes;
    int next_step;
    step_info(cur->state, cur->learning_steps, g, &minutes, &next_step);
    minutes = fmax(0, minutes);
    if (next_step < 0)
        next_step = 0;
    if (minutes > 0 && minutes < 1440) {
        next->learning_steps = next_step;
        next->scheduled_days = 0;
        next->state = to_state;
        next->due = now + (int64_t)js_round(minutes) * MINUTE_MS;
        return;
    }
    next->state = FSRS_REVIEW;
    if (minutes >= 1440) {
        next->learning_steps = next_step;
        next->due = now + (int64_t)js_round(minutes) * MINUTE_MS;
        next->scheduled_days = (int64_t)floor(minutes / 1440);
    } else {
        next->learning_steps = 0;
        int64_t ivl = next_interval(p, next->stability);
        next->scheduled_days = ivl;
        next->due = now + ivl * DAY_MS;
    }
}

int fsrs_next(const struct fsrs_params *p, const struct fsrs_card *in, int64_t now, int rating,
              struct fsrs_card *out)
{
    if (rating < FSRS_AGAIN || rating > FSRS_EASY)
        return LOCI_EINVAL;
    struct fsrs_card cur = *in;
    int64_t elapsed = 0;
    if (cur.state != FSRS_NEW && cur.last_review != 0)
        elapsed = floor_div(now, DAY_MS) - floor_div(cur.last_review, DAY_MS);
    if (elapsed < 0)
        return LOCI_EINVAL; /* ts-fsrs throws "Invalid delta_t" */
    cur.last_review = now;
    cur.elapsed_days = elapsed;
    cur.reps += 1;

    struct fsrs_card next = cur;
    double t = (double)elapsed;
    if (cur.state != FSRS_REVIEW) {
        next_memory(p, cur.difficulty, cur.stability, t, rating, -1, &next.difficulty,
                    &next.stability);
        apply_learning_steps(p, &cur, &next, rating,
                             cur.state == FSRS_NEW ? FSRS_LEARNING : cur.state, now);
        *out = next;
        return LOCI_OK;
    }

    /* Review: every grade's stability is needed to keep hard < good < easy. */
    double r = fsrs_forgetting_curve(p, t, cur.stability);
    struct fsrs_card g[5];
    for (int i = FSRS_AGAIN; i <= FSRS_EASY; i++) {
        g[i] = cur;
        next_memory(p, cur.difficulty, cur.stability, t, i, r, &g[i].difficulty, &g[i].stability);
    }
    if (rating == FSRS_AGAIN) {
        apply_learning_steps(p, &cur, &g[FSRS_AGAIN], FSRS_AGAIN, FSRS_RELEARNING, now);
        g[FSRS_AGAIN].lapses += 1;
        *out = g[FSRS_AGAIN];
        return LOCI_OK;
    }
    int64_t hard = next_interval(p, g[FSRS_HARD].stability);
    int64_t good = next_interval(p, g[FSRS_GOOD].stability);
    hard = hard < good ? hard : good;
    good = good > hard + 1 ? good : hard + 1;
    int64_t easy = next_interval(p, g[FSRS_EASY].stability);
    easy = easy > good + 1 ? easy : good + 1;
    int64_t ivl[5] = {0, 0, hard, good, easy};
    next = g[rating];
    next.state = FSRS_REVIEW;
    next.learning_steps = 0;
    next.scheduled_days = ivl[rating];
    next.due = now + ivl[rating] * DAY_MS;
    *out = next;
    return LOCI_OK;
}

double fsrs_retrievability(const struct fsrs_params *p, const struct fsrs_card *c, int64_t now)
{
    if (c->state == FSRS_NEW)
        return 0;
    int64_t t = floor_div(now - c->last_review, DAY_MS);
    if (t < 0)
        t = 0;
    return fsrs_forgetting_curve(p, (double)t, round8(c->stability));
}
