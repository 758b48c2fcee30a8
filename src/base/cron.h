/* Cron expressions and time zones: parsing, and the next fire time
 * (cron.c, tz.c). Pure: no clock, no store; a parsed expression and a
 * loaded zone are immutable and may be shared between threads. */
#ifndef JM_CRON_H
#define JM_CRON_H

#include <stdint.h>

/* The longest expression or zone name accepted, in bytes. */
#define JM__CRON_MAX 256
#define JM__TZ_NAME_MAX 128

typedef struct jm__cron jm__cron;
typedef struct jm__tz jm__tz;

/* Parses a cron expression: five fields (minute hour day-of-month month
 * day-of-week), six with a leading seconds field, or an @macro (@hourly,
 * @daily, @midnight, @weekly, @monthly, @yearly, @annually). JM_EINVAL
 * with the exact reason ("cron field 3 (day of month): 32 is out of range
 * 1-31"), JM_ENOMEM. */
int jm__cron_parse(const char *expr, jm__cron **out);
void jm__cron_free(jm__cron *c);

/* Loads a zone: NULL, "" or "UTC" is UTC and never fails; otherwise an
 * IANA name ("Europe/Berlin") read from the system's time-zone database
 * ($TZDIR, else /usr/share/zoneinfo). JM_EINVAL for a malformed or unknown
 * name or a file that is not a valid TZif file, JM_ENOMEM. */
int jm__tz_load(const char *name, jm__tz **out);
void jm__tz_free(jm__tz *tz);
/* The zone's name as loaded ("UTC" for UTC). */
const char *jm__tz_name(const jm__tz *tz);

/* The first fire time of `c` in zone `tz` (NULL: UTC) strictly after
 * `from_ms` (ms since the epoch); fire times are whole seconds. JM_OK,
 * or JM_ENOTFOUND if there is none in the next JM__CRON_HORIZON_YEARS
 * years ("0 0 30 2 *"), JM_EINVAL if from_ms is outside the years
 * 1-9999. */
#define JM__CRON_HORIZON_YEARS 8
int jm__cron_next(const jm__cron *c, const jm__tz *tz, int64_t from_ms, int64_t *out_ms);

#endif
