/*
 * Cron expressions (src/base/cron.c): every parse error and its message;
 * fire times checked by hand (steps, names, the Vixie day rule, macros,
 * the seconds field, February 29, the horizon); daylight saving in
 * Europe/Berlin and America/New_York, gaps and repeats, for fixed times
 * and wildcards; and jm_schedule_next's arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cron.h"
#include "jobmgr.h"
#include "tz.h"

#define MAX_FIRES 8

/* "2024-03-31T01:00:00Z" (optionally ".500") as ms since the epoch. */
static int64_t ms(const char *iso)
{
    int y, mo, d, h, mi, s, frac = 0;
    int n = sscanf(iso, "%d-%d-%dT%d:%d:%d.%d", &y, &mo, &d, &h, &mi, &s, &frac);
    assert_true(n >= 6);
    return (jm__days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000 + frac;
}

static void iso(int64_t t_ms, char *buf, size_t size)
{
    int64_t s = t_ms / 1000, days = s / 86400, y;
    int mo, d;
    if (s % 86400 < 0)
        days--;
    int64_t sod = s - days * 86400;
    jm__civil_from_days(days, &y, &mo, &d);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, mo, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60));
}

/* Checks the fire times of expr in tz after `from`, in UTC; NULL ends. */
static void expect(const char *expr, const char *tz, const char *from, ...)
{
    const char *want[MAX_FIRES];
    size_t n = 0;
    va_list ap;
    va_start(ap, from);
    for (const char *w; n < MAX_FIRES && (w = va_arg(ap, const char *)) != NULL;)
        want[n++] = w;
    va_end(ap);
    int64_t out[MAX_FIRES];
    int rc = jm_schedule_next(expr, tz, ms(from), n, out);
    if (rc != JM_OK)
        fail_msg("%s in %s: %s", expr, tz ? tz : "UTC", jm_last_error());
    for (size_t i = 0; i < n; i++) {
        char got[32];
        iso(out[i], got, sizeof got);
        if (strcmp(got, want[i]) != 0)
            fail_msg("%s in %s from %s, fire %zu: got %s, want %s", expr, tz ? tz : "UTC", from,
                     i + 1, got, want[i]);
    }
}

static void expect_error(const char *expr, const char *message)
{
    jm__cron *c = (jm__cron *)&c; /* must be reset to NULL */
    assert_int_equal(jm__cron_parse(expr, &c), JM_EINVAL);
    assert_null(c);
    if (strcmp(jm_last_error(), message) != 0)
        fail_msg("\"%s\": got \"%s\", want \"%s\"", expr ? expr : "(null)", jm_last_error(),
                 message);
}

static void parse_errors(void **state)
{
    (void)state;
    expect_error("0 0 32 * *", "cron field 3 (day of month): 32 is out of range 1-31");
    expect_error("0 0 0 0 * *", "cron field 4 (day of month): 0 is out of range 1-31");
    expect_error("60 * * * *", "cron field 1 (minute): 60 is out of range 0-59");
    expect_error("61 * * * * *", "cron field 1 (second): 61 is out of range 0-59");
    expect_error("* 24 * * *", "cron field 2 (hour): 24 is out of range 0-23");
    expect_error("* * * 13 *", "cron field 4 (month): 13 is out of range 1-12");
    expect_error("* * * * 8", "cron field 5 (day of week): 8 is out of range 0-7");
    expect_error("99999 * * * *", "cron field 1 (minute): 99999 is out of range 0-59");
    expect_error("* * * *", "cron expression: expected 5 or 6 fields, got 4");
    expect_error("* * * * * * *", "cron expression: expected 5 or 6 fields, got 7");
    expect_error("   ", "cron expression: expected 5 or 6 fields, got 0");
    expect_error("*/0 * * * *", "cron field 1 (minute): step 0 is out of range 1-60");
    expect_error("* */25 * * *", "cron field 2 (hour): step 25 is out of range 1-24");
    expect_error("5-3 * * * *", "cron field 1 (minute): range 5-3 is reversed");
    expect_error("* * * DEC-JAN *", "cron field 4 (month): range 12-1 is reversed");
    expect_error("1,,2 * * * *", "cron field 1 (minute): empty list item");
    expect_error("1, * * * *", "cron field 1 (minute): empty list item");
    expect_error("1x * * * *", "cron field 1 (minute): unexpected character 'x'");
    expect_error("1-2-3 * * * *", "cron field 1 (minute): unexpected character '-'");
    expect_error("*5 * * * *", "cron field 1 (minute): unexpected character '5'");
    expect_error("1- * * * *", "cron field 1 (minute): missing value");
    expect_error("*/ * * * *", "cron field 1 (minute): missing step");
    expect_error("\x01 * * * *", "cron field 1 (minute): unexpected byte 0x01");
    expect_error("* * L * *", "cron field 3 (day of month): L is not supported (no L, W, # or ?)");
    expect_error("* * 15W * *", "cron field 3 (day of month): W is not supported (no L, W, # or ?)");
    expect_error("* * * * 5#3", "cron field 5 (day of week): # is not supported (no L, W, # or ?)");
    expect_error("* * * * 5L", "cron field 5 (day of week): L is not supported (no L, W, # or ?)");
    expect_error("* * ? * *", "cron field 3 (day of month): ? is not supported (no L, W, # or ?)");
    expect_error("* * * * MONDAY", "cron field 5 (day of week): unknown name \"MONDAY\"");
    expect_error("* * * FOO *", "cron field 4 (month): unknown name \"FOO\"");
    expect_error("JAN * * * *", "cron field 1 (minute): unknown name \"JAN\"");
    expect_error("* * * * */MON", "cron field 5 (day of week): unexpected character 'M'");
    expect_error("@reboot", "cron expression: unknown macro \"@reboot\"");
    expect_error("@daily 5", "cron expression: unexpected text after @daily");
    expect_error(NULL, "cron expression: NULL");
    char longer[JM__CRON_MAX + 2];
    memset(longer, ' ', sizeof longer - 1);
    memcpy(longer, "* * * * *", 9);
    longer[sizeof longer - 1] = '\0';
    expect_error(longer, "cron expression: longer than 256 bytes");
    /* Exactly the limit is accepted. */
    longer[JM__CRON_MAX] = '\0';
    jm__cron *c = NULL;
    assert_int_equal(jm__cron_parse(longer, &c), JM_OK);
    jm__cron_free(c);
}

static void steps_ranges_lists(void **state)
{
    (void)state;
    /* Strictly after: a fire time equal to from is not returned. */
    expect("*/15 * * * *", NULL, "2024-01-01T00:00:00", "2024-01-01T00:15:00Z",
           "2024-01-01T00:30:00Z", "2024-01-01T00:45:00Z", "2024-01-01T01:00:00Z", NULL);
    expect("10/20 * * * *", NULL, "2024-01-01T00:00:00", "2024-01-01T00:10:00Z",
           "2024-01-01T00:30:00Z", "2024-01-01T00:50:00Z", "2024-01-01T01:10:00Z", NULL);
    expect("5-20/5,45 8-9 * * *", "UTC", "2024-01-01T08:16:00", "2024-01-01T08:20:00Z",
           "2024-01-01T08:45:00Z", "2024-01-01T09:05:00Z", NULL);
    expect("0 0 1,15 * *", NULL, "2024-01-20T00:00:00", "2024-02-01T00:00:00Z",
           "2024-02-15T00:00:00Z", "2024-03-01T00:00:00Z", NULL);
    expect("0 0 31 * *", NULL, "2024-01-31T00:00:00", "2024-03-31T00:00:00Z",
           "2024-05-31T00:00:00Z", "2024-07-31T00:00:00Z", "2024-08-31T00:00:00Z", NULL);
    /* A fraction of a second: the next whole one. */
    expect("* * * * * *", NULL, "2024-01-01T00:00:00.500", "2024-01-01T00:00:01Z",
           "2024-01-01T00:00:02Z", NULL);
}

static void names_and_sunday(void **state)
{
    (void)state;
    /* 2024-01-01 is a Monday. */
    expect("0 12 * jan-Feb MON-wed", NULL, "2024-01-01T12:00:00", "2024-01-02T12:00:00Z",
           "2024-01-03T12:00:00Z", "2024-01-08T12:00:00Z", NULL);
    expect("0 0 * * 7", NULL, "2024-01-01T00:00:00", "2024-01-07T00:00:00Z",
           "2024-01-14T00:00:00Z", NULL);
    expect("0 0 * * 0", NULL, "2024-01-01T00:00:00", "2024-01-07T00:00:00Z", NULL);
    /* FRI-SUN written with Sunday as 0. */
    expect("0 0 * * FRI-SUN", NULL, "2024-01-01T00:00:00", "2024-01-05T00:00:00Z",
           "2024-01-06T00:00:00Z", "2024-01-07T00:00:00Z", "2024-01-12T00:00:00Z", NULL);
    /* "1/3" in the day of the week stops at Saturday: Monday, Thursday. */
    expect("0 0 * * 1/3", NULL, "2024-01-01T00:00:00", "2024-01-04T00:00:00Z",
           "2024-01-08T00:00:00Z", "2024-01-11T00:00:00Z", NULL);
}

static void vixie_day_rule(void **state)
{
    (void)state;
    /* Both restricted: the 13th or a Friday (2024-10-01 is a Tuesday). */
    expect("0 0 13 * 5", NULL, "2024-10-01T00:00:00", "2024-10-04T00:00:00Z",
           "2024-10-11T00:00:00Z", "2024-10-13T00:00:00Z", "2024-10-18T00:00:00Z", NULL);
    /* "*\/10" begins with '*': both must match, days 1, 11, 21, 31 that are
     * Mondays. */
    expect("0 0 */10 * 1", NULL, "2024-01-01T00:00:00", "2024-03-11T00:00:00Z",
           "2024-04-01T00:00:00Z", "2024-07-01T00:00:00Z", NULL);
    /* A restricted field covering every value is still restricted. */
    expect("0 0 1-31 * 1", NULL, "2024-01-01T00:00:00", "2024-01-02T00:00:00Z",
           "2024-01-03T00:00:00Z", NULL);
    /* February 30 never comes, so only the Mondays fire. */
    expect("0 0 30 2 1", NULL, "2024-01-31T00:00:00", "2024-02-05T00:00:00Z",
           "2024-02-12T00:00:00Z", NULL);
}

static void macros_and_seconds(void **state)
{
    (void)state;
    expect("@hourly", NULL, "2024-01-01T00:30:00", "2024-01-01T01:00:00Z", NULL);
    expect("@daily", NULL, "2024-01-01T00:30:00", "2024-01-02T00:00:00Z", NULL);
    expect("@midnight", NULL, "2024-01-01T00:30:00", "2024-01-02T00:00:00Z", NULL);
    expect("  @weekly ", NULL, "2024-01-01T00:00:00", "2024-01-07T00:00:00Z", NULL);
    expect("@monthly", NULL, "2024-01-01T00:00:00", "2024-02-01T00:00:00Z", NULL);
    expect("@yearly", NULL, "2024-01-01T00:00:00", "2025-01-01T00:00:00Z", NULL);
    expect("@annually", NULL, "2024-06-01T00:00:00", "2025-01-01T00:00:00Z", NULL);
    expect("30 */20 * * * *", NULL, "2024-01-01T00:00:30", "2024-01-01T00:20:30Z",
           "2024-01-01T00:40:30Z", "2024-01-01T01:00:30Z", NULL);
    expect("*/20 0 0 1 1 *", NULL, "2024-01-01T00:00:00", "2024-01-01T00:00:20Z",
           "2024-01-01T00:00:40Z", "2025-01-01T00:00:00Z", NULL);
}

static void leap_years_and_horizon(void **state)
{
    (void)state;
    expect("0 0 29 2 *", NULL, "2024-03-01T00:00:00", "2028-02-29T00:00:00Z",
           "2032-02-29T00:00:00Z", NULL);
    /* 2100 is not a leap year: the longest wait, still within the horizon. */
    expect("0 0 29 2 *", NULL, "2096-03-01T00:00:00", "2104-02-29T00:00:00Z", NULL);
    expect("0 0 29 2 *", "Europe/Berlin", "2096-03-01T00:00:00", "2104-02-28T23:00:00Z", NULL);
    int64_t out[2];
    assert_int_equal(jm_schedule_next("0 0 30 2 *", NULL, 0, 1, out), JM_ENOTFOUND);
    assert_string_equal(jm_last_error(), "cron expression: no fire time in the next 8 years");
    assert_int_equal(jm_schedule_next("0 0 31 4,6,9,11 *", "Europe/Berlin", 0, 1, out),
                     JM_ENOTFOUND);
    /* Start times outside the years 1-9999 are refused, not overflowed. */
    assert_int_equal(jm_schedule_next("* * * * *", NULL, INT64_MAX, 1, out), JM_EINVAL);
    assert_int_equal(jm_schedule_next("* * * * *", NULL, INT64_MIN, 1, out), JM_EINVAL);
    expect("0 0 1 1 *", NULL, "1969-12-31T12:00:00", "1970-01-01T00:00:00Z", NULL);
}

/* Europe/Berlin, 2024: clocks go 02:00 -> 03:00 on March 31 (01:00Z) and
 * 03:00 -> 02:00 on October 27 (01:00Z). */
static void dst_berlin(void **state)
{
    (void)state;
    const char *tz = "Europe/Berlin";
    /* Fixed: 02:30 is skipped, it fires once when the gap ends. */
    expect("30 2 * * *", tz, "2024-03-30T12:00:00", "2024-03-31T01:00:00Z",
           "2024-04-01T00:30:00Z", NULL);
    /* Several skipped times make one fire. */
    expect("0,30 2 * * *", tz, "2024-03-30T12:00:00", "2024-03-31T01:00:00Z",
           "2024-04-01T00:00:00Z", NULL);
    /* Fixed: 02:30 happens twice, it fires at the first only... */
    expect("30 2 * * *", tz, "2024-10-26T12:00:00", "2024-10-27T00:30:00Z",
           "2024-10-28T01:30:00Z", NULL);
    /* ... also when the search starts between the two. */
    expect("30 2 * * *", tz, "2024-10-27T00:45:00", "2024-10-28T01:30:00Z", NULL);
    /* Wildcards follow the wall clock: nothing in the gap... */
    expect("*/30 2 * * *", tz, "2024-03-30T12:00:00", "2024-04-01T00:00:00Z",
           "2024-04-01T00:30:00Z", NULL);
    expect("0 * * * *", tz, "2024-03-31T00:00:00", "2024-03-31T01:00:00Z",
           "2024-03-31T02:00:00Z", NULL);
    /* ... and both passes of the repeat. */
    expect("*/30 2 * * *", tz, "2024-10-26T12:00:00", "2024-10-27T00:00:00Z",
           "2024-10-27T00:30:00Z", "2024-10-27T01:00:00Z", "2024-10-27T01:30:00Z",
           "2024-10-28T01:00:00Z", NULL);
    expect("@hourly", tz, "2024-10-26T22:30:00", "2024-10-26T23:00:00Z",
           "2024-10-27T00:00:00Z", "2024-10-27T01:00:00Z", "2024-10-27T02:00:00Z", NULL);
    /* Times away from the changes are plain local times. */
    expect("0 9 * * *", tz, "2024-01-10T00:00:00", "2024-01-10T08:00:00Z", NULL);
    expect("0 9 * * *", tz, "2024-07-10T00:00:00", "2024-07-10T07:00:00Z", NULL);
    /* Beyond the zone file's table, by its footer rule (2100: March 28). */
    expect("30 2 * * *", tz, "2100-03-27T12:00:00", "2100-03-28T01:00:00Z",
           "2100-03-29T00:30:00Z", NULL);
}

/* America/New_York, 2024: 02:00 -> 03:00 on March 10 (07:00Z), 02:00 ->
 * 01:00 on November 3 (06:00Z). */
static void dst_new_york(void **state)
{
    (void)state;
    const char *tz = "America/New_York";
    expect("30 2 * * *", tz, "2024-03-09T12:00:00", "2024-03-10T07:00:00Z",
           "2024-03-11T06:30:00Z", NULL);
    expect("30 1 * * *", tz, "2024-11-02T12:00:00", "2024-11-03T05:30:00Z",
           "2024-11-04T06:30:00Z", NULL);
    expect("*/30 1 * * *", tz, "2024-11-02T12:00:00", "2024-11-03T05:00:00Z",
           "2024-11-03T05:30:00Z", "2024-11-03T06:00:00Z", "2024-11-03T06:30:00Z",
           "2024-11-04T06:00:00Z", NULL);
    expect("15 * * * *", tz, "2024-03-10T06:00:00", "2024-03-10T06:15:00Z",
           "2024-03-10T07:15:00Z", NULL);
    /* Seconds: a fixed time in the gap fires when it ends, at 03:00:00. */
    expect("30 10 2 * * *", tz, "2024-03-09T12:00:00", "2024-03-10T07:00:00Z", NULL);
}

static void schedule_next_arguments(void **state)
{
    (void)state;
    int64_t out[3];
    assert_int_equal(jm_schedule_next(NULL, NULL, 0, 1, out), JM_EINVAL);
    assert_int_equal(jm_schedule_next("* * * * *", NULL, 0, 1, NULL), JM_EINVAL);
    assert_int_equal(jm_schedule_next("* * * * *", NULL, 0, 0, out), JM_EINVAL);
    assert_string_equal(jm_last_error(), "jm_schedule_next: n must be at least 1");
    assert_int_equal(jm_schedule_next("* * * * *", "Mars/Olympus", 0, 1, out), JM_EINVAL);
    assert_int_equal(jm_schedule_next("* * * * *", "../etc/passwd", 0, 1, out), JM_EINVAL);
    assert_int_equal(jm_schedule_next("bad", NULL, 0, 1, out), JM_EINVAL);
    assert_int_equal(jm_schedule_next("0 * * * *", "", 0, 3, out), JM_OK);
    assert_true(out[0] == 3600000 && out[1] == 7200000 && out[2] == 10800000);
    /* The internal interface: a NULL zone is UTC. */
    jm__cron *c = NULL;
    int64_t next;
    assert_int_equal(jm__cron_parse("0 0 * * *", &c), JM_OK);
    assert_int_equal(jm__cron_next(c, NULL, -1, &next), JM_OK);
    assert_int_equal(next, 0);
    jm__cron_free(c);
    jm__cron_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_errors),
        cmocka_unit_test(steps_ranges_lists),
        cmocka_unit_test(names_and_sunday),
        cmocka_unit_test(vixie_day_rule),
        cmocka_unit_test(macros_and_seconds),
        cmocka_unit_test(leap_years_and_horizon),
        cmocka_unit_test(dst_berlin),
        cmocka_unit_test(dst_new_york),
        cmocka_unit_test(schedule_next_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
