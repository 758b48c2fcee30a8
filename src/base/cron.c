/*
 * Cron expressions: parsing into one bitmask per field, and the next fire
 * time in a zone, with daylight saving handled as cronie handles it (see
 * next_in_span and docs/schedules.md).
 *
 * It does not know about schedules, clocks or the store; it does not
 * accept the Quartz extensions (L, W, #, ?) or @reboot.
 */
#include "cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "tz.h"

#define DAY_SECONDS 86400
/* The horizon in seconds: eight Gregorian years of 365.2425 days. */
#define HORIZON_SECONDS ((int64_t)JM__CRON_HORIZON_YEARS * 31556952)
/* Start times are accepted in the years 1-9999: the calendar is exact
 * there and no sum can overflow. */
#define FROM_MIN_S (-62135596800LL)  /* 0001-01-01T00:00:00Z */
#define FROM_MAX_S 253402300799LL    /* 9999-12-31T23:59:59Z */
/* A repeated stretch of local time is shorter than the widest offset
 * change RFC 8536 allows (about 51 hours); three days bound it. */
#define REPEAT_MAX_SECONDS (3 * DAY_SECONDS)
/* More digits than any field value or step needs. */
#define NUMBER_DIGITS_MAX 4

enum field_id { F_SECOND, F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

typedef struct field_desc {
    const char *name;
    int lo, hi; /* the values accepted */
    int last;   /* the last value '*' and "a/s" reach: 6 for the days of the week */
    const char *const *names; /* names[i] is value lo + i; NULL: none */
} field_desc;

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                           "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL };
static const char *const day_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL };

/* Day of week 7 is Sunday again, folded onto 0 once parsed; '*' and
 * "a/s" stop at Saturday, so "1/3" is Monday and Thursday, not Sunday. */
static const field_desc fields[F_COUNT] = {
    { "second", 0, 59, 59, NULL },         { "minute", 0, 59, 59, NULL },
    { "hour", 0, 23, 23, NULL },           { "day of month", 1, 31, 31, NULL },
    { "month", 1, 12, 12, month_names },   { "day of week", 0, 7, 6, day_names },
};

struct jm__cron {
    uint64_t mask[F_COUNT];
    int dom_star, dow_star; /* the field begins with '*' (the Vixie day rule) */
    int wildcard;           /* the minute or the hour field begins with '*' */
};

typedef struct macro {
    const char *name;
    const char *expr;
} macro;

static const macro macros[] = {
    { "@hourly", "0 * * * *" },  { "@daily", "0 0 * * *" },   { "@midnight", "0 0 * * *" },
    { "@weekly", "0 0 * * 0" },  { "@monthly", "0 0 1 * *" }, { "@yearly", "0 0 1 1 *" },
    { "@annually", "0 0 1 1 *" },
};

/* ---- parsing ----------------------------------------------------------- */

typedef struct field_ctx {
    const field_desc *desc;
    int position; /* 1-based, as written */
} field_ctx;

static int field_err(const field_ctx *f, const char *fmt, ...) JM_PRINTF(2, 3);

static int field_err(const field_ctx *f, const char *fmt, ...)
{
    char reason[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return jm__seterr(JM_EINVAL, "cron field %d (%s): %s", f->position, f->desc->name, reason);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_letter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* A character that may not stand where it stands. */
static int unexpected(const field_ctx *f, char c)
{
    char u = upper(c);
    if (u == 'L' || u == 'W' || c == '#' || c == '?')
        return field_err(f, "%c is not supported (no L, W, # or ?)", c);
    if (c > ' ' && c < 0x7f)
        return field_err(f, "unexpected character '%c'", c);
    return field_err(f, "unexpected byte 0x%02x", (unsigned char)c);
}

/* A number of at most NUMBER_DIGITS_MAX digits; more is reported as out
 * of range by the caller through *too_long. */
static int read_number(const char **pp, const char *end, int *out, int *too_long)
{
    const char *p = *pp;
    int v = 0, digits = 0;
    while (p < end && is_digit(*p)) {
        if (digits < NUMBER_DIGITS_MAX)
            v = v * 10 + (*p - '0');
        digits++;
        p++;
    }
    *too_long = digits > NUMBER_DIGITS_MAX;
    *out = v;
    *pp = p;
    return digits > 0;
}

/* A value: a number in the field's range or, where the field has them, a
 * three-letter name. */
static int read_value(const field_ctx *f, const char **pp, const char *end, int *out)
{
    const char *p = *pp;
    if (p < end && is_letter(*p)) {
        const char *start = p;
        while (p < end && is_letter(*p))
            p++;
        size_t len = (size_t)(p - start);
        char word[8];
        if (f->desc->names && len == 3) {
            for (size_t i = 0; i < 3; i++)
                word[i] = upper(start[i]);
            for (int i = 0; f->desc->names[i]; i++)
                if (memcmp(word, f->desc->names[i], 3) == 0) {
                    *out = f->desc->lo + i;
                    *pp = p;
                    return 0;
                }
        }
        if (len <= 2 && (upper(start[0]) == 'L' || upper(start[0]) == 'W'))
            return unexpected(f, start[0]);
        return field_err(f, "unknown name \"%.*s\"", len > 16 ? 16 : (int)len, start);
    }
    int too_long;
    if (!read_number(&p, end, out, &too_long))
        return p < end ? unexpected(f, *p) : field_err(f, "missing value");
    if (too_long || *out < f->desc->lo || *out > f->desc->hi)
        return field_err(f, "%.*s is out of range %d-%d", (int)(p - *pp), *pp, f->desc->lo,
                         f->desc->hi);
    *pp = p;
    return 0;
}

/* item: ( '*' | value [ '-' value ] ) [ '/' step ] */
static int parse_item(const field_ctx *f, const char *p, const char *end, uint64_t *mask)
{
    int lo = f->desc->lo, last = f->desc->last, a, b, step = 1, rc;
    int span = last - lo + 1;
    if (p == end)
        return field_err(f, "empty list item");
    if (*p == '*') {
        a = lo;
        b = last;
        p++;
    } else {
        if ((rc = read_value(f, &p, end, &a)) != 0)
            return rc;
        b = a;
        if (p < end && *p == '-') {
            p++;
            if ((rc = read_value(f, &p, end, &b)) != 0)
                return rc;
            /* "FRI-SUN": a day range may end on Sunday written as 0. */
            if (f->desc == &fields[F_DOW] && b == 0 && a > 0)
                b = 7;
            if (a > b)
                return field_err(f, "range %d-%d is reversed", a, b);
        } else if (p < end && *p == '/')
            b = a > last ? a : last; /* "a/s": from a to the end, as Vixie cron reads it */
    }
    if (p < end && *p == '/') {
        p++;
        const char *digits = p;
        int too_long;
        if (!read_number(&p, end, &step, &too_long))
            return p < end ? unexpected(f, *p) : field_err(f, "missing step");
        if (too_long || step < 1 || step > span)
            return field_err(f, "step %.*s is out of range 1-%d", (int)(p - digits), digits, span);
    }
    if (p < end)
        return unexpected(f, *p);
    for (int v = a; v <= b; v += step)
        *mask |= (uint64_t)1 << v;
    return 0;
}

static int parse_field(const field_ctx *f, const char *p, const char *end, uint64_t *mask)
{
    *mask = 0;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        int rc = parse_item(f, p, item_end, mask);
        if (rc)
            return rc;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (f->desc == &fields[F_DOW] && (*mask >> 7 & 1))
        *mask = (*mask & ~((uint64_t)1 << 7)) | 1;
    return 0;
}

static int parse_fields(const char *s, jm__cron *c)
{
    const char *start[F_COUNT], *stop[F_COUNT];
    int n = 0;
    const char *p = s;
    for (;;) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        const char *b = p;
        while (*p && !is_space(*p))
            p++;
        if (n < F_COUNT) {
            start[n] = b;
            stop[n] = p;
        }
        n++;
    }
    if (n != 5 && n != 6)
        return jm__seterr(JM_EINVAL, "cron expression: expected 5 or 6 fields, got %d", n);
    int first = n == 6 ? F_SECOND : F_MINUTE;
    c->mask[F_SECOND] = 1; /* five fields: at second 0 */
    for (int i = 0; i < n; i++) {
        field_ctx f = { &fields[first + i], i + 1 };
        int rc = parse_field(&f, start[i], stop[i], &c->mask[first + i]);
        if (rc)
            return rc;
    }
    c->dom_star = *start[F_DOM - first] == '*';
    c->dow_star = *start[F_DOW - first] == '*';
    c->wildcard = *start[F_MINUTE - first] == '*' || *start[F_HOUR - first] == '*';
    return 0;
}

int jm__cron_parse(const char *expr, jm__cron **out)
{
    if (!out)
        return jm__seterr(JM_EINVAL, "cron expression: out is NULL");
    *out = NULL;
    if (!expr)
        return jm__seterr(JM_EINVAL, "cron expression: NULL");
    size_t len = strnlen(expr, JM__CRON_MAX + 1);
    if (len > JM__CRON_MAX)
        return jm__seterr(JM_EINVAL, "cron expression: longer than %d bytes", JM__CRON_MAX);
    const char *p = expr;
    while (is_space(*p))
        p++;
    if (*p == '@') {
        const char *word = p;
        while (*p && !is_space(*p))
            p++;
        size_t wlen = (size_t)(p - word);
        while (is_space(*p))
            p++;
        const char *text = NULL;
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (strlen(macros[i].name) == wlen && memcmp(macros[i].name, word, wlen) == 0)
                text = macros[i].expr;
        if (!text)
            return jm__seterr(JM_EINVAL, "cron expression: unknown macro \"%.*s\"", (int)wlen, word);
        if (*p)
            return jm__seterr(JM_EINVAL, "cron expression: unexpected text after %.*s", (int)wlen,
                              word);
        p = text;
    }
    jm__cron *c = jm__calloc(1, sizeof *c);
    if (!c)
        return jm__seterr(JM_ENOMEM, "cron expression: out of memory");
    int rc = parse_fields(p, c);
    if (rc) {
        jm__free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void jm__cron_free(jm__cron *c)
{
    jm__free(c);
}

/* ---- searching --------------------------------------------------------- */

static int has(uint64_t mask, int v)
{
    return (int)(mask >> v & 1);
}

/* The smallest value ≥ v in mask (values below 64), or -1. */
static int next_set(uint64_t mask, int v)
{
    for (; v < 64; v++)
        if (has(mask, v))
            return v;
    return -1;
}

/* The Vixie rule: when both day fields are restricted either may match. */
static int day_matches(const jm__cron *c, int64_t days, int mday)
{
    int dom = has(c->mask[F_DOM], mday);
    int dow = has(c->mask[F_DOW], jm__weekday(days));
    return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

/*
 * The first local time in [lo, hi) the expression matches, in *out; 0 if
 * there is none. Local times are seconds on the zone's wall clock counted
 * like POSIX seconds. Skips a whole month, day, hour or minute at a time,
 * so a search over years costs a few thousand steps at most.
 */
static int find_local(const jm__cron *c, int64_t lo, int64_t hi, int64_t *out)
{
    if (lo >= hi)
        return 0;
    int64_t days = lo / DAY_SECONDS - (lo % DAY_SECONDS < 0);
    int64_t sod = lo - days * DAY_SECONDS, y;
    int mo, d, h = (int)(sod / 3600), mi = (int)(sod / 60 % 60), s = (int)(sod % 60), v;
    jm__civil_from_days(days, &y, &mo, &d);
    for (;;) {
        days = jm__days_from_civil(y, mo, d);
        if (days * DAY_SECONDS + h * 3600 + mi * 60 + s >= hi)
            return 0;
        if (!has(c->mask[F_MONTH], mo)) {
            v = next_set(c->mask[F_MONTH], mo + 1);
            if (v < 0 || v > 12) {
                y++;
                v = next_set(c->mask[F_MONTH], 1);
            }
            mo = v;
            d = 1;
            h = mi = s = 0;
            continue;
        }
        if (!day_matches(c, days, d) || (v = next_set(c->mask[F_HOUR], h)) < 0)
            goto next_day;
        if (v != h) {
            h = v;
            mi = s = 0;
        }
        if ((v = next_set(c->mask[F_MINUTE], mi)) < 0 || v > 59)
            goto next_hour;
        if (v != mi) {
            mi = v;
            s = 0;
        }
        if ((v = next_set(c->mask[F_SECOND], s)) < 0 || v > 59) {
            mi++;
            s = 0;
            if (mi < 60)
                continue;
            goto next_hour;
        }
        s = v;
        *out = days * DAY_SECONDS + h * 3600 + mi * 60 + s;
        return *out < hi;
    next_hour:
        mi = s = 0;
        if (++h < 24)
            continue;
    next_day:
        h = mi = s = 0;
        if (++d > jm__days_in_month(y, mo)) {
            d = 1;
            if (++mo > 12) {
                mo = 1;
                y++;
            }
        }
    }
}

/*
 * The first fire time at or after t within the span, which holds one UTC
 * offset, or -1 (no candidate below stop). Daylight saving, as cronie:
 *
 *  - A wildcard expression (its minute or hour field begins with '*')
 *    fires by the wall clock as local times occur: never in a gap, in both
 *    passes of a repeated stretch.
 *  - A fixed expression fires once at the first instant after a gap
 *    (the span's start) for all its times the gap skipped, and only in the
 *    first pass of a repeated stretch.
 */
static int64_t next_in_span(const jm__cron *c, const jm__tz_span *sp, int64_t t, int64_t stop)
{
    int64_t local, base = sp->start < t - REPEAT_MAX_SECONDS ? t - REPEAT_MAX_SECONDS : sp->start;
    if (!c->wildcard && sp->offset > sp->prev_offset && sp->start >= t &&
        find_local(c, sp->start + sp->prev_offset, sp->start + sp->offset, &local))
        return sp->start;
    int64_t lo = t + sp->offset;
    if (!c->wildcard && sp->offset < sp->prev_offset && lo < base + sp->prev_offset)
        lo = base + sp->prev_offset;
    if (find_local(c, lo, stop + sp->offset, &local))
        return local - sp->offset;
    return -1;
}

static int next_second(const jm__cron *c, const jm__tz *tz, int64_t from_s, int64_t *out_s)
{
    int64_t limit = from_s + HORIZON_SECONDS; /* the last instant that may fire */
    for (int64_t t = from_s + 1; t <= limit;) {
        jm__tz_span sp;
        jm__tz_span_at(tz, t, &sp);
        int64_t stop = sp.end <= limit ? sp.end : limit + 1;
        int64_t found = next_in_span(c, &sp, t, stop);
        if (found >= 0) {
            *out_s = found;
            return 0;
        }
        t = stop;
    }
    return jm__seterr(JM_ENOTFOUND, "cron expression: no fire time in the next %d years",
                      JM__CRON_HORIZON_YEARS);
}

int jm__cron_next(const jm__cron *c, const jm__tz *tz, int64_t from_ms, int64_t *out_ms)
{
    if (!c || !out_ms)
        return jm__seterr(JM_EINVAL, "cron next: NULL argument");
    int64_t from_s = from_ms / 1000 - (from_ms % 1000 < 0);
    if (from_s < FROM_MIN_S || from_s > FROM_MAX_S)
        return jm__seterr(JM_EINVAL, "cron next: from_ms is outside the years 1-9999");
    int64_t s = 0;
    int rc = next_second(c, tz, from_s, &s);
    if (rc)
        return rc;
    *out_ms = s * 1000;
    return 0;
}

int jm_schedule_next(const char *expr, const char *tz_name, int64_t from_ms, size_t n,
                     int64_t *out_ms)
{
    if (!expr || !out_ms)
        return jm__seterr(JM_EINVAL, "jm_schedule_next: expr and out_ms are required");
    if (n == 0)
        return jm__seterr(JM_EINVAL, "jm_schedule_next: n must be at least 1");
    jm__cron *c = NULL;
    jm__tz *tz = NULL;
    int rc = jm__cron_parse(expr, &c);
    if (rc)
        goto done;
    rc = jm__tz_load(tz_name, &tz);
    if (rc)
        goto done;
    for (size_t i = 0; i < n; i++) {
        rc = jm__cron_next(c, tz, i == 0 ? from_ms : out_ms[i - 1], &out_ms[i]);
        if (rc)
            goto done;
    }
done:
    jm__tz_free(tz);
    jm__cron_free(c);
    return rc;
}
