/* Schedules in the core: validation and fire times (schedule.c), firing
 * (schedule_fire.c). */
#ifndef JM_SCHEDULE_H
#define JM_SCHEDULE_H

#include "cron.h"
#include "manager.h"

/* A schedule's trigger, ready to compute fire times. */
typedef struct jm__trigger {
    jm__cron *cron; /* NULL for an interval */
    jm__tz *tz;
    int tz_owned; /* else the manager's cache holds it */
    int64_t interval_ms, anchor_ms;
} jm__trigger;

/* Parses the trigger of a spec already checked (or stored); its zone comes
 * from the manager's cache, loaded on first use. anchor_ms of an interval
 * is the spec's, which creation fills. */
int jm__trigger_load(jm_manager *m, const jm_schedule_spec *spec, jm__trigger *t);
void jm__trigger_free(jm__trigger *t);
/* The first fire time strictly after `t`; JM_ENOTFOUND if none. */
int jm__trigger_next(const jm__trigger *tr, int64_t t, int64_t *out);

/* Fires the schedules due now, in batches; *fired (if not NULL) gets the
 * jobs created. Sets m->next_fire (wall ms of the next fire, 0: none). */
int jm__schedules_fire_due(jm_manager *m, int *fired);
/* Re-reads the next fire time from the store into m->next_fire. */
void jm__schedules_refresh(jm_manager *m);

#endif
