/*
 * test_ratelimit.c - GCRA bursts, refill and headers' numbers; login
 * back-off doubling, cap and clearing.
 */
#include "core/err.h"
#include "harness.h"
#include "services/ratelimit/ratelimit.h"

#include <stdio.h>

TEST(gcra_burst_then_refill)
{
    struct ratelimit *rl = rl_new_memory(100);
    struct rl_policy p = {"t", 60, 60, 3}; /* 1 per second, bursts of 3 */
    struct rl_result r;
    int64_t now = 1000000;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(rl_take(rl, "k", &p, now, &r), ==, LOCI_OK);
        CHECK(r.is_allowed);
        CHECK_INT(r.remaining, ==, 2 - i);
    }
    CHECK_INT(rl_take(rl, "k", &p, now, &r), ==, LOCI_OK);
    CHECK(!r.is_allowed);
    CHECK(r.retry_after_ms > 0 && r.retry_after_ms <= 1000);
    CHECK_INT(rl_take(rl, "other", &p, now, &r), ==, LOCI_OK);
    CHECK(r.is_allowed); /* keys are independent */
    CHECK_INT(rl_take(rl, "k", &p, now + 1000, &r), ==, LOCI_OK);
    CHECK(r.is_allowed); /* one more after a second */
    CHECK_INT(rl_take(rl, "k", &p, now + 1000, &r), ==, LOCI_OK);
    CHECK(!r.is_allowed);
    /* A steady client under the rate is never refused. */
    for (int i = 0; i < 100; i++) {
        CHECK_INT(rl_take(rl, "steady", &p, now + i * 1000, &r), ==, LOCI_OK);
        CHECK(r.is_allowed);
    }
    struct rl_policy bad = {"b", 0, 60, 1};
    CHECK_INT(rl_take(rl, "k", &bad, now, &r), ==, LOCI_EINVAL);
    rl_free(rl);
}

TEST(backoff_doubles_caps_and_clears)
{
    struct ratelimit *rl = rl_new_memory(100);
    int64_t now = 5000000;
    for (int i = 0; i < 2; i++)
        rl_backoff_fail(rl, "acct", 3, now);
    CHECK_INT(rl_backoff_wait(rl, "acct", now), ==, 0); /* within the free failures */
    rl_backoff_fail(rl, "acct", 3, now);
    CHECK_INT(rl_backoff_wait(rl, "acct", now), ==, 1000); /* the third: back-off starts */
    rl_backoff_fail(rl, "acct", 3, now);
    CHECK_INT(rl_backoff_wait(rl, "acct", now), ==, 2000);
    rl_backoff_fail(rl, "acct", 3, now);
    CHECK_INT(rl_backoff_wait(rl, "acct", now), ==, 4000);
    CHECK_INT(rl_backoff_wait(rl, "acct", now + 4000), ==, 0); /* it always ends */
    for (int i = 0; i < 40; i++)
        rl_backoff_fail(rl, "acct", 3, now);
    CHECK_INT(rl_backoff_wait(rl, "acct", now), ==, RL_BACKOFF_CAP_MS);
    rl_backoff_clear(rl, "acct");
    CHECK_INT(rl_backoff_wait(rl, "acct", now), ==, 0);
    rl_backoff_fail(rl, "acct", 3, now);
    CHECK_INT(rl_backoff_wait(rl, "acct", now), ==, 0); /* counting starts over */
    rl_free(rl);
}

TEST(full_store_never_switches_limits_off)
{
    struct ratelimit *rl = rl_new_memory(10);
    struct rl_policy p = {"t", 60, 60, 1};
    struct rl_result r;
    char key[16];
    /* An attacker fills the table with fresh keys ... */
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        CHECK_INT(rl_take(rl, key, &p, 1000, &r), ==, LOCI_OK);
        CHECK(r.is_allowed);
    }
    /* ... yet a key over its limit is still refused, even though the store
     * holds at most 10 keys (it used to fail open once full). */
    CHECK_INT(rl_take(rl, "victim", &p, 1000, &r), ==, LOCI_OK);
    CHECK(r.is_allowed);
    CHECK_INT(rl_take(rl, "victim", &p, 1000, &r), ==, LOCI_OK);
    CHECK(!r.is_allowed);
    /* Back-off too, and once the limits are neutral again entries are
     * reclaimed rather than refused. */
    rl_backoff_fail(rl, "login", 1, 1000);
    CHECK_INT(rl_backoff_wait(rl, "login", 1000), ==, 1000);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "later%d", i);
        CHECK_INT(rl_take(rl, key, &p, 500000, &r), ==, LOCI_OK);
        CHECK(r.is_allowed);
    }
    rl_free(rl);
}
