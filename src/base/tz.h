/* What cron.c needs from a loaded zone (tz.c) besides cron.h: the span of
 * constant UTC offset around an instant, and proleptic Gregorian calendar
 * arithmetic, written once for both. Times are seconds since the epoch. */
#ifndef JM_TZ_H
#define JM_TZ_H

#include <stdint.h>

#include "cron.h"

/* A stretch of time with one UTC offset: [start, end). A span begins at
 * a transition; prev_offset is the offset just before it (equal to offset
 * when there is none), so a span whose offset exceeds prev_offset begins
 * after a gap in local time and one whose offset is smaller begins with a
 * repeated stretch of local time. */
typedef struct jm__tz_span {
    int64_t start;       /* INT64_MIN: since always */
    int64_t end;         /* INT64_MAX: for ever */
    int32_t offset;      /* seconds east of UTC */
    int32_t prev_offset; /* the offset before start */
    int isdst;
} jm__tz_span;

/* The span of `tz` (NULL: UTC) that contains the instant t. */
void jm__tz_span_at(const jm__tz *tz, int64_t t, jm__tz_span *out);

/* Days since 1970-01-01 of a date (month 1-12, day 1-31), and back. */
int64_t jm__days_from_civil(int64_t y, int m, int d);
void jm__civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* 0 = Sunday. */
int jm__weekday(int64_t days);
int jm__days_in_month(int64_t y, int m);

#endif
