/*
 * Time zones: reading a TZif file (RFC 8536, versions 1 to 4) from the
 * system's zone database, and the UTC offset in force at any instant,
 * beyond the file's last transition by the POSIX TZ rule in its footer.
 *
 * It never touches the process's TZ, locale or the C library's localtime,
 * so loaded zones are immutable and any thread may use them. It does not
 * read abbreviations, and refuses leap-second ("right/") zones: fire times
 * are POSIX seconds.
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"

/* Where the zone files are when $TZDIR does not say. */
#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
/* No real zone file comes near this (the largest are under 4 KiB); a
 * bigger file is refused unread. */
#define TZ_FILE_MAX (256 * 1024)
/* RFC 8536 allows 256 local time types, and UTC offsets in
 * [-89999, 93599] seconds (just under -25 h and +26 h). */
#define TZ_TYPES_MAX 256
#define TZ_UTOFF_MIN (-89999)
#define TZ_UTOFF_MAX 93599
/* POSIX TZ strings: an offset's hours are 0-24; a rule time's hours are
 * -167..167 (RFC 8536 section 3.3.1, version 3). */
#define TZ_OFFSET_HOURS_MAX 24
#define TZ_RULE_HOURS_MAX 167
#define TZ_DEFAULT_RULE_TIME (2 * 3600)
#define TZ_HEADER_SIZE 44

enum rule_kind { RULE_JULIAN_NOLEAP, RULE_JULIAN, RULE_MONTH_WEEK_DAY };

typedef struct rule_date {
    enum rule_kind kind;
    int day;   /* Jn: 1-365; n: 0-365; M: weekday 0-6 */
    int month; /* M only: 1-12 */
    int week;  /* M only: 1-5, 5 = last */
    int32_t time; /* local seconds after midnight */
} rule_date;

typedef struct posix_rule {
    int32_t std_offset; /* seconds east of UTC */
    int32_t dst_offset;
    int has_dst;
    rule_date start, end;
} posix_rule;

struct jm__tz {
    char name[JM__TZ_NAME_MAX + 1];
    size_t count;      /* transitions */
    int64_t *at;       /* their instants, ascending */
    unsigned char *type; /* the type each begins */
    size_t types;
    int32_t offset[TZ_TYPES_MAX];
    unsigned char isdst[TZ_TYPES_MAX];
    int has_rule;      /* after the last transition the footer rule holds */
    posix_rule rule;
};

static jm__tz utc_zone = { .name = "UTC", .types = 1 };

/* ---- calendar ---------------------------------------------------------- */

/* Howard Hinnant's days_from_civil and civil_from_days. */
int64_t jm__days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void jm__civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int jm__weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday. */
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int jm__days_in_month(int64_t y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- the POSIX rule ---------------------------------------------------- */

/* The day (since the epoch) a rule date falls on in year y. */
static int64_t rule_day(const rule_date *r, int64_t y)
{
    int64_t jan1 = jm__days_from_civil(y, 1, 1);
    switch (r->kind) {
    case RULE_JULIAN_NOLEAP:
        /* Jn counts 1-365 and never names February 29. */
        return jan1 + r->day - 1 + (is_leap(y) && r->day >= 60);
    case RULE_JULIAN:
        return jan1 + r->day;
    case RULE_MONTH_WEEK_DAY:
    default: {
        int64_t first = jm__days_from_civil(y, r->month, 1);
        int64_t day = first + (r->day - jm__weekday(first) + 7) % 7 + 7 * (r->week - 1);
        while (day >= first + jm__days_in_month(y, r->month))
            day -= 7;
        return day;
    }
    }
}

typedef struct rule_event {
    int64_t at;
    int starts_dst;
} rule_event;

static void rule_span(const posix_rule *r, int64_t t, jm__tz_span *out)
{
    if (!r->has_dst) {
        *out = (jm__tz_span){ INT64_MIN, INT64_MAX, r->std_offset, r->std_offset, 0 };
        return;
    }
    int64_t y;
    int m, d;
    jm__civil_from_days(floor_div(t, 86400), &y, &m, &d);
    /* Two years either side: a rule time may reach 167 hours past its
     * day, so a year's transitions can fall in the next one. */
    enum { YEARS = 5, EVENTS = 2 * YEARS };
    rule_event ev[EVENTS];
    size_t n = 0;
    for (int64_t yy = y - 2; yy <= y + 2; yy++) {
        /* The start is read on standard time, the end on daylight time. */
        ev[n++] = (rule_event){ rule_day(&r->start, yy) * 86400 + r->start.time - r->std_offset, 1 };
        ev[n++] = (rule_event){ rule_day(&r->end, yy) * 86400 + r->end.time - r->dst_offset, 0 };
    }
    /* Sort by instant; at a tie the start comes last, so a zone on
     * daylight time all year (end of one year = start of the next) stays
     * on it. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            rule_event *a = &ev[j - 1], *b = &ev[j];
            if (a->at < b->at || (a->at == b->at && a->starts_dst <= b->starts_dst))
                break;
            rule_event tmp = *a;
            *a = *b;
            *b = tmp;
        }
    size_t k = n;
    for (size_t i = 0; i < n; i++)
        if (ev[i].at <= t)
            k = i;
    if (k == n) {
        /* Unreachable with the years above; stay defined regardless. */
        *out = (jm__tz_span){ INT64_MIN, ev[0].at, r->std_offset, r->std_offset, 0 };
        return;
    }
    size_t j = k;
    while (j > 0 && ev[j - 1].at == ev[k].at)
        j--;
    int before_dst = j > 0 ? ev[j - 1].starts_dst : !ev[k].starts_dst;
    out->start = ev[k].at;
    out->end = k + 1 < n ? ev[k + 1].at : INT64_MAX;
    out->offset = ev[k].starts_dst ? r->dst_offset : r->std_offset;
    out->prev_offset = before_dst ? r->dst_offset : r->std_offset;
    out->isdst = ev[k].starts_dst;
}

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [+|-]hh[:mm[:ss]] with hh at most max_hours; the sign only if signed_ok. */
static int parse_hms(const char **pp, int max_hours, int signed_ok, int32_t *out)
{
    const char *p = *pp;
    int sign = 1;
    if (*p == '+' || *p == '-') {
        if (*p == '-' && !signed_ok)
            return -1;
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    int parts[3] = { 0, 0, 0 };
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*p != ':')
                break;
            p++;
        }
        int digits = 0, v = 0;
        while (*p >= '0' && *p <= '9' && digits < 3) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        if (digits == 0 || (i > 0 && digits > 2) || is_digit(*p))
            return -1;
        parts[i] = v;
    }
    if (parts[0] > max_hours || parts[1] > 59 || parts[2] > 59)
        return -1;
    *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    *pp = p;
    return 0;
}

/* A zone abbreviation: three or more letters, or <...> of letters,
 * digits, '+' and '-'. Only skipped: it names nothing we use. */
static int parse_abbr(const char **pp)
{
    const char *p = *pp;
    size_t len = 0;
    if (*p == '<') {
        p++;
        while (is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-') {
            p++;
            len++;
        }
        if (*p != '>')
            return -1;
        p++;
    } else
        while (is_alpha(*p)) {
            p++;
            len++;
        }
    if (len < 3)
        return -1;
    *pp = p;
    return 0;
}

static int parse_number(const char **pp, int lo, int hi, int *out)
{
    const char *p = *pp;
    int v = 0, digits = 0;
    while (is_digit(*p) && digits < 4) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || is_digit(*p) || v < lo || v > hi)
        return -1;
    *out = v;
    *pp = p;
    return 0;
}

static int parse_rule_date(const char **pp, rule_date *r)
{
    const char *p = *pp;
    if (*p == 'J') {
        p++;
        r->kind = RULE_JULIAN_NOLEAP;
        if (parse_number(&p, 1, 365, &r->day))
            return -1;
    } else if (*p == 'M') {
        p++;
        r->kind = RULE_MONTH_WEEK_DAY;
        if (parse_number(&p, 1, 12, &r->month) || *p++ != '.' ||
            parse_number(&p, 1, 5, &r->week) || *p++ != '.' ||
            parse_number(&p, 0, 6, &r->day))
            return -1;
    } else {
        r->kind = RULE_JULIAN;
        if (parse_number(&p, 0, 365, &r->day))
            return -1;
    }
    r->time = TZ_DEFAULT_RULE_TIME;
    if (*p == '/') {
        p++;
        if (parse_hms(&p, TZ_RULE_HOURS_MAX, 1, &r->time))
            return -1;
    }
    *pp = p;
    return 0;
}

/* "std offset [dst [offset] ,start[/time],end[/time]]"; POSIX offsets
 * count west of UTC, ours east. A daylight name without its rule is
 * refused: zic always writes the rule. */
static int parse_posix_tz(const char *s, posix_rule *r)
{
    const char *p = s;
    int32_t off;
    memset(r, 0, sizeof *r);
    if (parse_abbr(&p) || parse_hms(&p, TZ_OFFSET_HOURS_MAX, 1, &off))
        return -1;
    r->std_offset = -off;
    if (*p == '\0')
        return 0;
    if (parse_abbr(&p))
        return -1;
    r->has_dst = 1;
    r->dst_offset = r->std_offset + 3600;
    if (*p != ',') {
        if (parse_hms(&p, TZ_OFFSET_HOURS_MAX, 1, &off))
            return -1;
        r->dst_offset = -off;
    }
    if (*p++ != ',' || parse_rule_date(&p, &r->start) || *p++ != ',' ||
        parse_rule_date(&p, &r->end) || *p != '\0')
        return -1;
    return 0;
}

/* ---- the TZif file ----------------------------------------------------- */

typedef struct reader {
    const unsigned char *p;
    size_t left;
} reader;

typedef struct tzif_header {
    int version; /* 0 for version 1, else 2, 3, 4 */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_header;

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t get_i64(const unsigned char *p)
{
    uint64_t v = (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
    return (int64_t)v;
}

static int bad_file(const char *name, const char *why)
{
    return jm__seterr(JM_EINVAL, "time zone \"%s\": not a valid TZif file (%s)", name, why);
}

static int read_header(reader *r, const char *name, tzif_header *h)
{
    if (r->left < TZ_HEADER_SIZE)
        return bad_file(name, "truncated header");
    const unsigned char *p = r->p;
    if (memcmp(p, "TZif", 4) != 0)
        return bad_file(name, "no TZif magic");
    if (p[4] == 0)
        h->version = 0;
    else if (p[4] >= '2' && p[4] <= '4')
        h->version = p[4] - '0';
    else
        return bad_file(name, "unknown version");
    h->isutcnt = get_u32(p + 20);
    h->isstdcnt = get_u32(p + 24);
    h->leapcnt = get_u32(p + 28);
    h->timecnt = get_u32(p + 32);
    h->typecnt = get_u32(p + 36);
    h->charcnt = get_u32(p + 40);
    r->p += TZ_HEADER_SIZE;
    r->left -= TZ_HEADER_SIZE;
    if (h->typecnt == 0 || h->typecnt > TZ_TYPES_MAX)
        return bad_file(name, "type count out of range");
    if (h->charcnt == 0)
        return bad_file(name, "no abbreviations");
    if ((h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
        return bad_file(name, "indicator count mismatch");
    if (h->leapcnt != 0)
        return jm__seterr(JM_EINVAL, "time zone \"%s\": leap-second zones are not supported", name);
    return 0;
}

/* The size of a data block whose times are time_size bytes, or 0 when it
 * does not fit in what is left (counts are 32-bit: 64-bit sums cannot
 * overflow). */
static uint64_t block_size(const tzif_header *h, unsigned time_size)
{
    return (uint64_t)h->timecnt * (time_size + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

static int read_block(reader *r, const char *name, const tzif_header *h, unsigned time_size,
                      jm__tz *tz)
{
    uint64_t size = block_size(h, time_size);
    if (size > r->left)
        return bad_file(name, "truncated data");
    const unsigned char *times = r->p;
    const unsigned char *idx = times + (size_t)h->timecnt * time_size;
    const unsigned char *types = idx + h->timecnt;
    tz->count = h->timecnt;
    tz->types = h->typecnt;
    if (h->timecnt > 0) {
        tz->at = jm__malloc(h->timecnt * sizeof *tz->at);
        tz->type = jm__malloc(h->timecnt);
        if (!tz->at || !tz->type)
            return jm__seterr(JM_ENOMEM, "time zone \"%s\": out of memory", name);
    }
    for (size_t i = 0; i < h->timecnt; i++) {
        const unsigned char *t = times + i * time_size;
        tz->at[i] = time_size == 8 ? get_i64(t) : (int64_t)(int32_t)get_u32(t);
        if (i > 0 && tz->at[i] <= tz->at[i - 1])
            return bad_file(name, "transitions out of order");
        if (idx[i] >= h->typecnt)
            return bad_file(name, "transition names no type");
        tz->type[i] = idx[i];
    }
    for (size_t i = 0; i < h->typecnt; i++) {
        const unsigned char *t = types + i * 6;
        int32_t off = (int32_t)get_u32(t);
        if (off < TZ_UTOFF_MIN || off > TZ_UTOFF_MAX)
            return bad_file(name, "UTC offset out of range");
        if (t[4] > 1)
            return bad_file(name, "bad daylight-saving flag");
        if (t[5] >= h->charcnt)
            return bad_file(name, "abbreviation index out of range");
        tz->offset[i] = off;
        tz->isdst[i] = t[4];
    }
    r->p += size;
    r->left -= (size_t)size;
    return 0;
}

/* The footer: "\n" TZ-string "\n", the end of the file. An empty string
 * means no rule: the last transition's type holds for ever. */
static int read_footer(reader *r, const char *name, jm__tz *tz)
{
    if (r->left < 2 || r->p[0] != '\n' || r->p[r->left - 1] != '\n')
        return bad_file(name, "bad footer");
    size_t len = r->left - 2;
    const char *s = (const char *)r->p + 1;
    if (memchr(s, '\n', len) || memchr(s, '\0', len))
        return bad_file(name, "bad footer");
    if (len == 0)
        return 0;
    char rule[TZ_HEADER_SIZE * 4];
    if (len >= sizeof rule)
        return bad_file(name, "footer too long");
    memcpy(rule, s, len);
    rule[len] = '\0';
    if (parse_posix_tz(rule, &tz->rule))
        return bad_file(name, "bad TZ rule in footer");
    if (tz->rule.std_offset < TZ_UTOFF_MIN || tz->rule.std_offset > TZ_UTOFF_MAX ||
        tz->rule.dst_offset < TZ_UTOFF_MIN || tz->rule.dst_offset > TZ_UTOFF_MAX)
        return bad_file(name, "footer offset out of range");
    tz->has_rule = 1;
    return 0;
}

static int parse_tzif(const unsigned char *data, size_t size, jm__tz *tz)
{
    reader r = { data, size };
    tzif_header h;
    int rc = read_header(&r, tz->name, &h);
    if (rc)
        return rc;
    if (h.version == 0)
        return read_block(&r, tz->name, &h, 4, tz);
    /* Version 2 and later repeat everything with 64-bit times: skip the
     * 32-bit block. */
    uint64_t v1 = block_size(&h, 4);
    if (v1 > r.left)
        return bad_file(tz->name, "truncated data");
    r.p += v1;
    r.left -= (size_t)v1;
    rc = read_header(&r, tz->name, &h);
    if (rc)
        return rc;
    rc = read_block(&r, tz->name, &h, 8, tz);
    if (rc)
        return rc;
    return read_footer(&r, tz->name, tz);
}

/* ---- loading ----------------------------------------------------------- */

/* IANA names only: letters, digits, '/', '_', '-', '+' (no '.', so no
 * "." or ".." component); relative; no empty component. Nothing else can
 * reach outside the database directory. */
static int check_name(const char *name)
{
    size_t len = strlen(name);
    if (len > JM__TZ_NAME_MAX)
        return jm__seterr(JM_EINVAL, "time zone name: longer than %d bytes", JM__TZ_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!is_alpha(c) && !is_digit(c) && c != '/' && c != '_' && c != '-' && c != '+')
            return jm__seterr(JM_EINVAL, "time zone name: character 0x%02x is not allowed",
                              (unsigned char)c);
    }
    const char *comp = name;
    for (;;) {
        const char *slash = strchr(comp, '/');
        size_t n = slash ? (size_t)(slash - comp) : strlen(comp);
        if (n == 0)
            return jm__seterr(JM_EINVAL, "time zone name \"%s\": not a relative zone name", name);
        if (!slash)
            return 0;
        comp = slash + 1;
    }
}

/* Reads the whole file into *out (jm__free it). */
static int read_zone_file(const char *name, unsigned char **out, size_t *out_size)
{
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = TZ_DEFAULT_DIR;
    size_t dlen = strlen(dir), nlen = strlen(name);
    char *path = jm__malloc(dlen + nlen + 2);
    unsigned char *data = NULL;
    int fd = -1, rc = 0;
    if (!path)
        return jm__seterr(JM_ENOMEM, "time zone \"%s\": out of memory", name);
    memcpy(path, dir, dlen);
    path[dlen] = '/';
    memcpy(path + dlen + 1, name, nlen + 1);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = jm__seterr(JM_EINVAL, "time zone \"%s\": unknown (no zone file %s)", name, path);
        goto done;
    }
    if (st.st_size > TZ_FILE_MAX) {
        rc = bad_file(name, "file too large");
        goto done;
    }
    size_t size = (size_t)st.st_size, got = 0;
    data = jm__malloc(size ? size : 1);
    if (!data) {
        rc = jm__seterr(JM_ENOMEM, "time zone \"%s\": out of memory", name);
        goto done;
    }
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = bad_file(name, "short read");
            goto done;
        }
        got += (size_t)n;
    }
    *out = data;
    *out_size = size;
    data = NULL;
done:
    if (fd >= 0)
        close(fd);
    jm__free(data);
    jm__free(path);
    return rc;
}

int jm__tz_load(const char *name, jm__tz **out)
{
    if (!out)
        return jm__seterr(JM_EINVAL, "time zone: out is NULL");
    *out = NULL;
    if (!name || !*name || strcmp(name, "UTC") == 0) {
        *out = &utc_zone;
        return 0;
    }
    int rc = check_name(name);
    if (rc)
        return rc;
    unsigned char *data = NULL;
    size_t size = 0;
    jm__tz *tz = jm__calloc(1, sizeof *tz);
    if (!tz)
        return jm__seterr(JM_ENOMEM, "time zone \"%s\": out of memory", name);
    strcpy(tz->name, name);
    rc = read_zone_file(name, &data, &size);
    if (rc)
        goto done;
    rc = parse_tzif(data, size, tz);
done:
    jm__free(data);
    if (rc)
        jm__tz_free(tz);
    else
        *out = tz;
    return rc;
}

void jm__tz_free(jm__tz *tz)
{
    if (!tz || tz == &utc_zone)
        return;
    jm__free(tz->at);
    jm__free(tz->type);
    jm__free(tz);
}

const char *jm__tz_name(const jm__tz *tz)
{
    return tz ? tz->name : utc_zone.name;
}

/* ---- offsets ----------------------------------------------------------- */

void jm__tz_span_at(const jm__tz *tz, int64_t t, jm__tz_span *out)
{
    if (!tz)
        tz = &utc_zone;
    int32_t first = tz->offset[0];
    size_t n = tz->count;
    /* Before the first transition, type 0 (RFC 8536). */
    if (n > 0 && t < tz->at[0]) {
        *out = (jm__tz_span){ INT64_MIN, tz->at[0], first, first, tz->isdst[0] };
        return;
    }
    if (n > 0 && (t < tz->at[n - 1] || !tz->has_rule)) {
        size_t lo = 0, hi = n; /* the last transition at or before t */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (tz->at[mid] <= t)
                lo = mid;
            else
                hi = mid;
        }
        out->start = tz->at[lo];
        out->end = lo + 1 < n ? tz->at[lo + 1] : INT64_MAX;
        out->offset = tz->offset[tz->type[lo]];
        out->prev_offset = lo > 0 ? tz->offset[tz->type[lo - 1]] : first;
        out->isdst = tz->isdst[tz->type[lo]];
        return;
    }
    if (!tz->has_rule) {
        *out = (jm__tz_span){ INT64_MIN, INT64_MAX, first, first, tz->isdst[0] };
        return;
    }
    rule_span(&tz->rule, t, out);
    if (n > 0 && out->start < tz->at[n - 1]) {
        /* The rule takes over at the table's last transition. */
        out->start = tz->at[n - 1];
        out->prev_offset = n > 1 ? tz->offset[tz->type[n - 2]] : first;
    }
}
