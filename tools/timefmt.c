/*
 * timefmt.c: times on the command line and in the tool's output.
 *
 * Accepted: "now", relative spans ("30s", "10m", "2h", "7d", "1w", combined
 * as "1h30m"), and ISO 8601 date-times in UTC ("Z"), with an offset
 * ("+02:00", "+0200", "+02") or without one (local time), with "T" or a
 * space between date and time, seconds and a fraction optional; a date
 * alone is local midnight. Shown: local time, ISO 8601 with its offset.
 * It does not accept week dates, ordinal dates or bare times of day.
 */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define MS_PER_SECOND 1000LL
#define MS_PER_MINUTE (60 * MS_PER_SECOND)
#define MS_PER_HOUR (60 * MS_PER_MINUTE)
#define MS_PER_DAY (24 * MS_PER_HOUR)
#define MS_PER_WEEK (7 * MS_PER_DAY)
/* A span longer than this (about 1000 years) is surely a typo. */
#define MAX_SPAN_MS (1000LL * 366 * MS_PER_DAY)

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t unit_ms(char u)
{
    switch (u) {
    case 's':
        return MS_PER_SECOND;
    case 'm':
        return MS_PER_MINUTE;
    case 'h':
        return MS_PER_HOUR;
    case 'd':
        return MS_PER_DAY;
    case 'w':
        return MS_PER_WEEK;
    default:
        return 0;
    }
}

int cli_parse_span(const char *s, int64_t *out_ms)
{
    if (!s || !*s)
        return -1;
    int64_t total = 0;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return -1;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            n = n * 10 + (*p - '0');
            if (n > MAX_SPAN_MS / MS_PER_SECOND)
                return -1;
            p++;
        }
        int64_t unit = MS_PER_SECOND; /* a bare number is seconds */
        if (*p) {
            unit = unit_ms(*p);
            if (!unit)
                return -1;
            p++;
        } else if (total) {
            return -1; /* "1h30" is ambiguous: refuse it */
        }
        if (n > (MAX_SPAN_MS - total) / unit)
            return -1;
        total += n * unit;
    }
    *out_ms = total;
    return 0;
}

/* Reads exactly `digits` decimal digits. */
static int read_num(const char **p, int digits, int *out)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += digits;
    *out = v;
    return 0;
}

/* Parses the zone designator at p: "" (local), "Z", "±HH", "±HHMM",
 * "±HH:MM". *local is set for "", *offset_s otherwise. */
static int parse_zone(const char *p, int *local, long *offset_s)
{
    *local = 0;
    *offset_s = 0;
    if (!*p) {
        *local = 1;
        return 0;
    }
    if ((*p == 'Z' || *p == 'z') && !p[1])
        return 0;
    if (*p != '+' && *p != '-')
        return -1;
    int sign = *p == '-' ? -1 : 1;
    p++;
    int hh = 0, mm = 0;
    if (read_num(&p, 2, &hh))
        return -1;
    if (*p == ':')
        p++;
    if (*p && read_num(&p, 2, &mm))
        return -1;
    if (*p || hh > 23 || mm > 59)
        return -1;
    *offset_s = sign * (hh * 3600L + mm * 60L);
    return 0;
}

static int parse_iso(const char *s, int64_t *out)
{
    const char *p = s;
    int year, mon, day, hour = 0, min = 0, sec = 0, ms = 0;
    if (read_num(&p, 4, &year) || *p++ != '-' || read_num(&p, 2, &mon) || *p++ != '-' ||
        read_num(&p, 2, &day))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (read_num(&p, 2, &hour) || *p++ != ':' || read_num(&p, 2, &min))
            return -1;
        if (*p == ':') {
            p++;
            if (read_num(&p, 2, &sec))
                return -1;
            if (*p == '.' || *p == ',') {
                p++;
                int scale = 100, digits = 0;
                while (isdigit((unsigned char)*p)) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                    digits++;
                    p++;
                }
                if (!digits)
                    return -1;
            }
        }
    } else if (*p) {
        return -1;
    }
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return -1;
    int local;
    long offset_s;
    if (parse_zone(p, &local, &offset_s))
        return -1;

    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t;
    if (local) {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    } else {
        t = timegm(&tm);
        t -= offset_s;
    }
    /* mktime/timegm normalise 31 February into March: refuse such dates. */
    if (tm.tm_mday != day || tm.tm_mon != mon - 1)
        return -1;
    if (t < 0)
        return -1;
    *out = (int64_t)t * 1000 + ms;
    return 0;
}

int cli_parse_time(const char *s, cli_time_dir dir, int64_t now_ms, int64_t *out)
{
    if (!s || !*s)
        return -1;
    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return 0;
    }
    /* A relative time needs its unit: "--older-than 7" is too easy to
     * misread (seconds? days?) for a command that deletes. */
    int64_t span;
    size_t len = strlen(s);
    if (isalpha((unsigned char)s[len - 1]) && cli_parse_span(s, &span) == 0) {
        int64_t t = dir == CLI_TIME_PAST ? now_ms - span : now_ms + span;
        if (t < 0)
            return -1;
        *out = t;
        return 0;
    }
    return parse_iso(s, out);
}

const char *cli_format_time(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        snprintf(buf, len, "%lld", (long long)ms);
        return buf;
    }
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 3600,
             (off % 3600) / 60);
    return buf;
}

const char *cli_format_span(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    if (ms < MS_PER_SECOND)
        snprintf(buf, len, "%lldms", (long long)ms);
    else if (ms < MS_PER_MINUTE)
        snprintf(buf, len, "%lld.%llds", (long long)(ms / MS_PER_SECOND),
                 (long long)(ms % MS_PER_SECOND / 100));
    else if (ms < MS_PER_HOUR)
        snprintf(buf, len, "%lldm%02llds", (long long)(ms / MS_PER_MINUTE),
                 (long long)(ms % MS_PER_MINUTE / MS_PER_SECOND));
    else if (ms < MS_PER_DAY)
        snprintf(buf, len, "%lldh%02lldm", (long long)(ms / MS_PER_HOUR),
                 (long long)(ms % MS_PER_HOUR / MS_PER_MINUTE));
    else
        snprintf(buf, len, "%lldd%02lldh", (long long)(ms / MS_PER_DAY),
                 (long long)(ms % MS_PER_DAY / MS_PER_HOUR));
    return buf;
}

const char *cli_format_every(int64_t ms, char *buf, size_t len)
{
    static const struct {
        int64_t ms;
        char unit;
    } units[] = {{MS_PER_WEEK, 'w'}, {MS_PER_DAY, 'd'},      {MS_PER_HOUR, 'h'},
                 {MS_PER_MINUTE, 'm'}, {MS_PER_SECOND, 's'}};
    if (ms <= 0 || ms % MS_PER_SECOND) {
        snprintf(buf, len, "%lldms", (long long)(ms < 0 ? 0 : ms));
        return buf;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0] && used < len; i++) {
        if (ms < units[i].ms)
            continue;
        int w = snprintf(buf + used, len - used, "%lld%c", (long long)(ms / units[i].ms),
                         units[i].unit);
        if (w < 0)
            break;
        used += (size_t)w;
        ms %= units[i].ms;
    }
    return buf;
}

const char *cli_format_when(int64_t ms, int64_t now, char *buf, size_t len)
{
    char at[CLI_TIME_BUF], span[32];
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    cli_format_time(ms, at, sizeof at);
    cli_format_span(ms >= now ? ms - now : now - ms, span, sizeof span);
    if (ms >= now)
        snprintf(buf, len, "%s (in %s)", at, span);
    else
        snprintf(buf, len, "%s (%s ago)", at, span);
    return buf;
}
