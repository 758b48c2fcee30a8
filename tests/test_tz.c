/*
 * Time zones (src/base/tz.c): offsets around real transitions, the
 * footer's POSIX rule beyond the table (2100) and in its Jn, n and <...>
 * forms, UTC, unknown zones and names that try to leave the database,
 * and hostile TZif files (truncated, corrupt counts and indexes) written
 * to a temporary $TZDIR: each must be refused, none may crash.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, setenv */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cron.h"
#include "jobmgr.h"
#include "tz.h"

#define FILE_MAX 4096

static int64_t at(int y, int mo, int d, int h, int mi, int s)
{
    return jm__days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

static jm__tz *load(const char *name)
{
    jm__tz *tz = NULL;
    int rc = jm__tz_load(name, &tz);
    if (rc != JM_OK)
        fail_msg("%s: %s", name, jm_last_error());
    return tz;
}

static void expect_offset(const jm__tz *tz, int64_t t, int32_t offset, int isdst)
{
    jm__tz_span sp;
    jm__tz_span_at(tz, t, &sp);
    if (sp.offset != offset || sp.isdst != isdst)
        fail_msg("%s at %lld: offset %d dst %d, want %d %d", jm__tz_name(tz), (long long)t,
                 sp.offset, sp.isdst, offset, isdst);
    assert_true(sp.start <= t && t < sp.end);
}

static void utc(void **state)
{
    (void)state;
    const char *names[] = { NULL, "", "UTC" };
    for (size_t i = 0; i < 3; i++) {
        jm__tz *tz = NULL;
        assert_int_equal(jm__tz_load(names[i], &tz), JM_OK);
        assert_non_null(tz);
        assert_string_equal(jm__tz_name(tz), "UTC");
        expect_offset(tz, 0, 0, 0);
        jm__tz_free(tz);
    }
    assert_string_equal(jm__tz_name(NULL), "UTC");
    jm__tz_free(NULL);
}

static void berlin_transitions(void **state)
{
    (void)state;
    jm__tz *tz = load("Europe/Berlin");
    assert_string_equal(jm__tz_name(tz), "Europe/Berlin");
    int64_t spring = at(2024, 3, 31, 1, 0, 0), autumn = at(2024, 10, 27, 1, 0, 0);
    expect_offset(tz, spring - 1, 3600, 0);
    expect_offset(tz, spring, 7200, 1);
    expect_offset(tz, autumn - 1, 7200, 1);
    expect_offset(tz, autumn, 3600, 0);
    jm__tz_span sp;
    jm__tz_span_at(tz, spring + 100, &sp);
    assert_true(sp.start == spring && sp.end == autumn && sp.prev_offset == 3600);
    /* 2100, past the table: the footer's CET-1CEST,M3.5.0,M10.5.0/3. */
    int64_t spring2100 = at(2100, 3, 28, 1, 0, 0), autumn2100 = at(2100, 10, 31, 1, 0, 0);
    expect_offset(tz, spring2100 - 1, 3600, 0);
    expect_offset(tz, spring2100, 7200, 1);
    expect_offset(tz, autumn2100 - 1, 7200, 1);
    expect_offset(tz, autumn2100, 3600, 0);
    jm__tz_span_at(tz, autumn2100, &sp);
    assert_true(sp.start == autumn2100 && sp.prev_offset == 7200);
    /* Before the first transition: local mean time, type 0 (+0:53:28). */
    expect_offset(tz, at(1850, 1, 1, 0, 0, 0), 3208, 0);
    jm__tz_free(tz);
}

static void new_york_transitions(void **state)
{
    (void)state;
    jm__tz *tz = load("America/New_York");
    expect_offset(tz, at(2024, 3, 10, 7, 0, 0) - 1, -5 * 3600, 0);
    expect_offset(tz, at(2024, 3, 10, 7, 0, 0), -4 * 3600, 1);
    expect_offset(tz, at(2024, 11, 3, 6, 0, 0) - 1, -4 * 3600, 1);
    expect_offset(tz, at(2024, 11, 3, 6, 0, 0), -5 * 3600, 0);
    expect_offset(tz, at(2100, 3, 14, 7, 0, 0) - 1, -5 * 3600, 0);
    expect_offset(tz, at(2100, 3, 14, 7, 0, 0), -4 * 3600, 1);
    expect_offset(tz, at(2100, 11, 7, 6, 0, 0), -5 * 3600, 0);
    jm__tz_free(tz);
}

static void bad_names(void **state)
{
    (void)state;
    const char *names[] = { "../etc/passwd", "/etc/passwd", "Europe/../../etc/passwd",
                            "Europe//Berlin", "./UTC", "Europe/Berlin/", "Europe/Ber lin",
                            "Europe/Berlin\n", "Mars/Olympus", "Europe", "Europe/Berlin.." };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        jm__tz *tz = (jm__tz *)&tz;
        if (jm__tz_load(names[i], &tz) != JM_EINVAL)
            fail_msg("\"%s\" accepted", names[i]);
        assert_null(tz);
    }
    char longer[JM__TZ_NAME_MAX + 2];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    jm__tz *tz = NULL;
    assert_int_equal(jm__tz_load(longer, &tz), JM_EINVAL);
    assert_string_equal(jm_last_error(), "time zone name: longer than 128 bytes");
    assert_int_equal(jm__tz_load("../etc/passwd", &tz), JM_EINVAL);
    assert_string_equal(jm_last_error(), "time zone name: character 0x2e is not allowed");
    assert_int_equal(jm__tz_load("/etc/passwd", &tz), JM_EINVAL);
    assert_string_equal(jm_last_error(), "time zone name \"/etc/passwd\": not a relative zone name");
    assert_int_equal(jm__tz_load("Mars/Olympus", &tz), JM_EINVAL);
    assert_true(strncmp(jm_last_error(), "time zone \"Mars/Olympus\": unknown", 29) == 0);
}

/* ---- files of our own in a temporary TZDIR ---------------------------- */

static char tzdir[64];

static int make_tzdir(void **state)
{
    (void)state;
    strcpy(tzdir, "/tmp/jm_test_tz_XXXXXX");
    if (!mkdtemp(tzdir))
        return -1;
    return setenv("TZDIR", tzdir, 1);
}

static int remove_tzdir(void **state)
{
    (void)state;
    char path[128];
    const char *files[] = { "t" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tzdir, files[i]);
        unlink(path);
    }
    unsetenv("TZDIR");
    return rmdir(tzdir);
}

static void write_zone(const unsigned char *data, size_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/t", tzdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

typedef struct zone_spec {
    int version; /* 1, 2 or 3 */
    size_t times;
    int64_t at[4];
    unsigned char idx[4];
    size_t types;
    int32_t offset[3];
    unsigned char isdst[3];
    const char *footer;
} zone_spec;

static size_t put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

static size_t header(unsigned char *p, int version, size_t times, size_t types, size_t chars)
{
    memset(p, 0, 44);
    memcpy(p, "TZif", 4);
    p[4] = version == 1 ? 0 : (unsigned char)('0' + version);
    put32(p + 32, (uint32_t)times);
    put32(p + 36, (uint32_t)types);
    put32(p + 40, (uint32_t)chars);
    return 44;
}

static size_t block(unsigned char *p, const zone_spec *z, int wide)
{
    size_t n = 0;
    for (size_t i = 0; i < z->times; i++) {
        if (wide)
            n += put32(p + n, (uint32_t)((uint64_t)z->at[i] >> 32));
        n += put32(p + n, (uint32_t)z->at[i]);
    }
    for (size_t i = 0; i < z->times; i++)
        p[n++] = z->idx[i];
    for (size_t i = 0; i < z->types; i++) {
        n += put32(p + n, (uint32_t)z->offset[i]);
        p[n++] = z->isdst[i];
        p[n++] = 0;
    }
    memcpy(p + n, "ABC", 4);
    return n + 4;
}

static size_t build(unsigned char *p, const zone_spec *z)
{
    size_t n = header(p, z->version, z->times, z->types, 4);
    n += block(p + n, z, 0);
    if (z->version == 1)
        return n;
    n += header(p + n, z->version, z->times, z->types, 4);
    n += block(p + n, z, 1);
    n += (size_t)sprintf((char *)p + n, "\n%s\n", z->footer);
    return n;
}

static int load_built(const unsigned char *data, size_t size, jm__tz **out)
{
    write_zone(data, size);
    *out = NULL;
    return jm__tz_load("t", out);
}

static const zone_spec two_types = {
    2, 2, { 1000, 2000 }, { 1, 0 }, 2, { 3600, 7200 }, { 0, 1 }, "ABC-1",
};

static void own_files(void **state)
{
    (void)state;
    unsigned char buf[FILE_MAX];
    jm__tz *tz;
    size_t n = build(buf, &two_types);
    assert_int_equal(load_built(buf, n, &tz), JM_OK);
    expect_offset(tz, 999, 3600, 0);
    expect_offset(tz, 1000, 7200, 1);
    expect_offset(tz, 2000, 3600, 0);
    expect_offset(tz, at(2200, 1, 1, 0, 0, 0), 3600, 0);
    jm__tz_free(tz);

    /* Version 1: 32-bit times, no footer; the last type holds. */
    zone_spec v1 = two_types;
    v1.version = 1;
    n = build(buf, &v1);
    assert_int_equal(load_built(buf, n, &tz), JM_OK);
    expect_offset(tz, 1500, 7200, 1);
    expect_offset(tz, 5000, 3600, 0);
    jm__tz_free(tz);

    /* Rules only: XST +2, XDT +3 from J60 (March 1, never February 29)
     * 02:00 to day 300 counted from 0 (October 28, or 27 in a leap year)
     * 03:00. */
    zone_spec rule = { 3, 0, { 0 }, { 0 }, 1, { 7200 }, { 0 }, "XST-2XDT,J60/2,300/3" };
    n = build(buf, &rule);
    assert_int_equal(load_built(buf, n, &tz), JM_OK);
    expect_offset(tz, at(2023, 3, 1, 0, 0, 0) - 1, 7200, 0);
    expect_offset(tz, at(2023, 3, 1, 0, 0, 0), 10800, 1);
    expect_offset(tz, at(2023, 10, 28, 0, 0, 0) - 1, 10800, 1);
    expect_offset(tz, at(2023, 10, 28, 0, 0, 0), 7200, 0);
    expect_offset(tz, at(2024, 3, 1, 0, 0, 0), 10800, 1);
    expect_offset(tz, at(2024, 10, 27, 0, 0, 0), 7200, 0);
    jm__tz_free(tz);

    /* Quoted names, a fixed offset. */
    zone_spec quoted = { 2, 0, { 0 }, { 0 }, 1, { 10800 }, { 0 }, "<+03>-3" };
    n = build(buf, &quoted);
    assert_int_equal(load_built(buf, n, &tz), JM_OK);
    expect_offset(tz, at(2100, 7, 1, 0, 0, 0), 10800, 0);
    jm__tz_free(tz);

    /* Version 3: negative rule times (as zic writes for America/Nuuk):
     * from the last Sunday of March at -02:00 local to October's at
     * -01:00. */
    zone_spec neg = { 3, 0, { 0 }, { 0 }, 1, { -10800 }, { 0 }, "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1" };
    n = build(buf, &neg);
    assert_int_equal(load_built(buf, n, &tz), JM_OK);
    /* 2024-03-31 is the last Sunday of March: -02:00 local is March 30
     * 22:00 at -03, 2024-03-31T01:00Z. */
    expect_offset(tz, at(2024, 3, 31, 1, 0, 0) - 1, -10800, 0);
    expect_offset(tz, at(2024, 3, 31, 1, 0, 0), -7200, 1);
    /* October 27, -01:00 local at -02 is 2024-10-27T01:00Z. */
    expect_offset(tz, at(2024, 10, 27, 1, 0, 0) - 1, -7200, 1);
    expect_offset(tz, at(2024, 10, 27, 1, 0, 0), -10800, 0);
    jm__tz_free(tz);

    /* Southern: daylight time from October to March. */
    zone_spec south = { 2, 0, { 0 }, { 0 }, 1, { 36000 }, { 0 }, "AEST-10AEDT,M10.1.0,M4.1.0/3" };
    n = build(buf, &south);
    assert_int_equal(load_built(buf, n, &tz), JM_OK);
    expect_offset(tz, at(2024, 1, 15, 0, 0, 0), 39600, 1);
    expect_offset(tz, at(2024, 7, 15, 0, 0, 0), 36000, 0);
    /* 2024-10-06 02:00 AEST = 2024-10-05T16:00Z. */
    expect_offset(tz, at(2024, 10, 5, 16, 0, 0) - 1, 36000, 0);
    expect_offset(tz, at(2024, 10, 5, 16, 0, 0), 39600, 1);
    jm__tz_free(tz);
}

static void expect_refused(const unsigned char *data, size_t size, const char *what)
{
    jm__tz *tz = (jm__tz *)&tz;
    int rc = load_built(data, size, &tz);
    if (rc != JM_EINVAL)
        fail_msg("%s: accepted (rc %d)", what, rc);
    assert_null(tz);
}

static void hostile_files(void **state)
{
    (void)state;
    unsigned char buf[FILE_MAX], bad[FILE_MAX];
    size_t n = build(buf, &two_types);

    /* Every truncation, from nothing to one byte short. */
    for (size_t cut = 0; cut < n; cut++)
        expect_refused(buf, cut, "truncated");

    /* Every single byte flipped: refused or accepted, never a crash; a
     * zone that loads must answer. */
    for (size_t i = 0; i < n; i++) {
        memcpy(bad, buf, n);
        bad[i] ^= 0xff;
        jm__tz *tz = NULL;
        write_zone(bad, n);
        if (jm__tz_load("t", &tz) == JM_OK) {
            jm__tz_span sp;
            jm__tz_span_at(tz, 1500, &sp);
            jm__tz_span_at(tz, at(2100, 1, 1, 0, 0, 0), &sp);
            jm__tz_free(tz);
        }
    }

    zone_spec z = two_types;
    z.idx[1] = 2; /* no type 2 */
    n = build(bad, &z);
    expect_refused(bad, n, "transition type out of range");

    z = two_types;
    z.at[1] = 500; /* before the first */
    n = build(bad, &z);
    expect_refused(bad, n, "transitions out of order");

    z = two_types;
    z.offset[1] = 100000;
    n = build(bad, &z);
    expect_refused(bad, n, "offset out of range");

    z = two_types;
    z.isdst[0] = 2;
    n = build(bad, &z);
    expect_refused(bad, n, "daylight flag");

    const char *footers[] = { "AB-1", "ABC", "ABC-25", "ABC-1XYZ", "ABC-1XYZ,M13.1.0,M10.5.0",
                              "ABC-1XYZ,M3.6.0,M10.5.0", "ABC-1XYZ,J0,J365", "ABC-1XYZ,366,1",
                              "ABC-1XYZ,M3.5.0/168,M10.5.0", "<AB-1", "ABC-1 ", "ABC-1XYZ,M3.5.0" };
    for (size_t i = 0; i < sizeof footers / sizeof footers[0]; i++) {
        z = two_types;
        z.footer = footers[i];
        n = build(bad, &z);
        expect_refused(bad, n, footers[i]);
    }

    /* Counts that claim more than the file holds. */
    n = build(buf, &two_types);
    memcpy(bad, buf, n);
    put32(bad + 32, 0xffffffffu); /* v1 timecnt */
    expect_refused(bad, n, "huge count");
    memcpy(bad, buf, n);
    put32(bad + 36, 0); /* no types */
    expect_refused(bad, n, "no types");
    memcpy(bad, buf, n);
    put32(bad + 28, 1); /* leap seconds */
    expect_refused(bad, n, "leap seconds");
    memcpy(bad, buf, n);
    bad[4] = '9';
    expect_refused(bad, n, "version");
    memcpy(bad, buf, n);
    bad[0] = 'X';
    expect_refused(bad, n, "magic");
    /* Trailing bytes after the footer. */
    memcpy(bad, buf, n);
    memcpy(bad + n, "junk", 4);
    expect_refused(bad, n + 4, "trailing bytes");

    /* Too large: refused unread. */
    static unsigned char big[300 * 1024];
    memcpy(big, buf, n);
    expect_refused(big, sizeof big, "too large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utc),
        cmocka_unit_test(berlin_transitions),
        cmocka_unit_test(new_york_transitions),
        cmocka_unit_test(bad_names),
        cmocka_unit_test_setup_teardown(own_files, make_tzdir, remove_tzdir),
        cmocka_unit_test_setup_teardown(hostile_files, make_tzdir, remove_tzdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
