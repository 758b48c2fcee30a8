/*
 * The retry delay policy (src/core/backoff.c): the exponential sequence,
 * its cap, degenerate inputs, overflow with huge retry counts (this suite
 * also runs under UBSan), the jitter bounds, and the random source.
 */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"
#include "random.h"

/* d·(1−j) ≤ delay ≤ d, with one millisecond of slack for the rounding of
 * the double product. */
static void assert_jitter_bounds(int64_t delay, int64_t d, double j)
{
    double lo = (double)d * (1.0 - j);
    if ((double)delay < lo - 1.0)
        fail_msg("delay %lld below %f (d=%lld, jitter=%f)", (long long)delay, lo, (long long)d, j);
    if (delay > d)
        fail_msg("delay %lld above d=%lld", (long long)delay, (long long)d);
}

static void exponential_sequence(void **state)
{
    (void)state;
    /* base * 2^(retry_count-1) while under the cap. */
    int64_t want = 100;
    for (int r = 1; r <= 12; r++) {
        assert_int_equal(jm__backoff_delay(100, INT64_C(1) << 40, 0, r, 0), want);
        want *= 2;
    }
    assert_int_equal(jm__backoff_delay(1000, 300000, 0, 1, 0), 1000);
    assert_int_equal(jm__backoff_delay(1000, 300000, 0, 2, 0), 2000);
    assert_int_equal(jm__backoff_delay(1000, 300000, 0, 3, 0), 4000);
    /* Jitter 0 ignores the random draw. */
    assert_int_equal(jm__backoff_delay(1000, 300000, 0, 3, 0.9), 4000);
}

static void capped_at_max(void **state)
{
    (void)state;
    /* 1000·2^3 = 8000 > 5000. */
    assert_int_equal(jm__backoff_delay(1000, 5000, 0, 3, 0), 4000);
    assert_int_equal(jm__backoff_delay(1000, 5000, 0, 4, 0), 5000);
    assert_int_equal(jm__backoff_delay(1000, 5000, 0, 10, 0), 5000);
    assert_int_equal(jm__backoff_delay(1000, 5000, 0, 1000, 0), 5000);
    /* Non-decreasing up to the cap. */
    int64_t prev = 0;
    for (int r = 1; r <= 64; r++) {
        int64_t d = jm__backoff_delay(7, 100000, 0, r, 0);
        assert_true(d >= prev);
        assert_true(d <= 100000);
        prev = d;
    }
    assert_int_equal(prev, 100000);
}

static void max_below_base(void **state)
{
    (void)state;
    for (int r = -1; r <= 20; r++)
        assert_int_equal(jm__backoff_delay(1000, 300, 0, r, 0), 300);
    assert_int_equal(jm__backoff_delay(1000, 0, 0, 5, 0), 0);
}

static void retry_count_below_one(void **state)
{
    (void)state;
    assert_int_equal(jm__backoff_delay(250, 100000, 0, 0, 0), 250);
    assert_int_equal(jm__backoff_delay(250, 100000, 0, -1, 0), 250);
    assert_int_equal(jm__backoff_delay(250, 100000, 0, INT_MIN, 0), 250);
}

static void negative_base_is_zero(void **state)
{
    (void)state;
    assert_int_equal(jm__backoff_delay(-5, 1000, 0, 1, 0), 0);
    assert_int_equal(jm__backoff_delay(-5, 1000, 0, 30, 0), 0);
    assert_int_equal(jm__backoff_delay(0, 1000, 0.5, 1000, 0.5), 0);
}

static void huge_retry_counts_do_not_overflow(void **state)
{
    (void)state;
    /* Doubling saturates instead of overflowing (UBSan would report a
     * signed overflow). */
    assert_int_equal(jm__backoff_delay(1000, INT64_MAX, 0, INT_MAX, 0), INT64_MAX);
    assert_int_equal(jm__backoff_delay(1000, INT64_MAX, 0, 64, 0), INT64_MAX);
    assert_int_equal(jm__backoff_delay(1000, INT64_MAX, 0, 200, 0), INT64_MAX);
    assert_int_equal(jm__backoff_delay(INT64_MAX, INT64_MAX, 0, INT_MAX, 0), INT64_MAX);
    assert_int_equal(jm__backoff_delay(INT64_MAX / 3, INT64_MAX, 0, 3, 0), INT64_MAX);
    assert_int_equal(jm__backoff_delay(1000, INT64_MAX - 1, 0, INT_MAX, 0), INT64_MAX - 1);
    assert_int_equal(jm__backoff_delay(1000, 300000, 0, INT_MAX, 0), 300000);
    /* 2^62 is still exact: 1·2^62 at retry 63. */
    assert_int_equal(jm__backoff_delay(1, INT64_MAX, 0, 63, 0), INT64_C(1) << 62);

    /* With jitter on the saturated value the result stays positive and
     * within its bounds. */
    int64_t d = jm__backoff_delay(1000, INT64_MAX, 0.5, INT_MAX, 0.999999);
    assert_true(d > 0);
    assert_jitter_bounds(d, INT64_MAX, 0.5);
    d = jm__backoff_delay(1000, INT64_MAX, 1.0, INT_MAX, 0.999999);
    assert_true(d >= 0);
    assert_true(d < INT64_MAX / 1000);
}

static void jitter_bounds(void **state)
{
    (void)state;
    const double jitters[] = {0.0, 0.1, 0.2, 0.5, 0.9, 1.0};
    const double units[] = {0.0, 1e-9, 0.25, 0.5, 0.75, 0.999999, 0.9999999999999999};
    const int retries[] = {1, 2, 5, 9, 40};
    for (size_t a = 0; a < sizeof jitters / sizeof *jitters; a++)
        for (size_t b = 0; b < sizeof units / sizeof *units; b++)
            for (size_t c = 0; c < sizeof retries / sizeof *retries; c++) {
                int64_t d = jm__backoff_delay(1000, 300000, 0, retries[c], 0);
                int64_t got = jm__backoff_delay(1000, 300000, jitters[a], retries[c], units[b]);
                assert_jitter_bounds(got, d, jitters[a]);
            }

    /* unit_random 0: no cut at all. */
    assert_int_equal(jm__backoff_delay(1000, 300000, 0.2, 3, 0), 4000);
    assert_int_equal(jm__backoff_delay(1000, 300000, 1.0, 3, 0), 4000);

    /* Near 1: cut by almost the whole jitter fraction. */
    int64_t near = jm__backoff_delay(1000, 300000, 0.2, 3, 0.999999);
    assert_true(near < 4000);
    assert_true(near >= 3200);
    assert_true(near <= 3201);

    /* Jitter 1, unit near 1: almost nothing left, never negative. */
    int64_t tiny = jm__backoff_delay(1000, 300000, 1.0, 1, 0.999999);
    assert_true(tiny >= 0);
    assert_true(tiny <= 1);

    /* Half the jitter at unit 0.5. */
    assert_int_equal(jm__backoff_delay(10000, 300000, 0.5, 1, 0.5), 7500);

    /* The cut applies after the cap. */
    int64_t capped = jm__backoff_delay(1000, 5000, 0.2, 30, 0.999999);
    assert_true(capped >= 4000 && capped < 5000);
}

static void random_unit_range_and_mean(void **state)
{
    (void)state;
    const int n = 100000;
    double sum = 0, lo = 1, hi = 0;
    int below_half = 0;
    for (int i = 0; i < n; i++) {
        double u = jm__random_unit();
        if (!(u >= 0.0 && u < 1.0))
            fail_msg("draw %d = %.17g is outside [0, 1)", i, u);
        sum += u;
        if (u < lo)
            lo = u;
        if (u > hi)
            hi = u;
        below_half += u < 0.5;
    }
    double mean = sum / n;
    if (fabs(mean - 0.5) > 0.01)
        fail_msg("mean %f is not near 0.5", mean);
    /* Spread over the whole interval, not stuck. */
    assert_true(lo < 0.001);
    assert_true(hi > 0.999);
    assert_true(below_half > n * 45 / 100 && below_half < n * 55 / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exponential_sequence),
        cmocka_unit_test(capped_at_max),
        cmocka_unit_test(max_below_base),
        cmocka_unit_test(retry_count_below_one),
        cmocka_unit_test(negative_base_is_zero),
        cmocka_unit_test(huge_retry_counts_do_not_overflow),
        cmocka_unit_test(jitter_bounds),
        cmocka_unit_test(random_unit_range_and_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
