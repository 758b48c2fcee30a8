/*
 * Counters of the runs one manager finished and the jobs it recovered, for
 * jm_stats() and jm_metrics_prometheus(). The table's side of the numbers
 * (counts by status, the queue) comes from the store; these are what the
 * table cannot tell: how many runs, how each ended, how long they took.
 */
#ifndef JM_STATS_H
#define JM_STATS_H

#include <pthread.h>
#include <stdint.h>

#include "registry.h"
#include "jobmgr.h"

/* One type's counters. Buckets hold the runs whose duration fell in bucket
 * i (not cumulative); jm_stats() makes them cumulative. */
typedef struct jm__type_counters {
    int present; /* a run of this type was recorded */
    int64_t runs, completed, retries, failures, cancelled;
    int64_t duration_sum_ms;
    int64_t duration_max_ms;
    int64_t buckets[JM_STATS_BUCKETS];
} jm__type_counters;

/* Direct-indexed by type like the registry, so recording a run never
 * allocates and cannot fail. */
typedef struct jm__stats {
    pthread_mutex_t lock;
    int64_t runs, completed, retries, failures, cancelled, recovered;
    int64_t schedule_jobs, schedule_skipped, schedule_misfires, schedule_lag_max_ms;
    jm__type_counters types[JM_TYPE_SLOTS];
} jm__stats;

/* 0 on success (pthread_mutex_init's result otherwise). */
int jm__stats_init(jm__stats *s);
void jm__stats_destroy(jm__stats *s);

/* Records one committed run of a job of `type`: final_status is the status
 * the store wrote (-1: the outcome was discarded because the job was no
 * longer this claim's, and nothing is recorded), retry_decision is non-zero
 * when the executor asked for a retry, duration_ms how long the run took. */
void jm__stats_record(jm_manager *m, const char *type, int final_status, int retry_decision,
                      int64_t duration_ms);
/* One fire of a schedule: jobs created, fire times the overlap policy
 * skipped, fire times found missed, and how late the fire came. */
void jm__stats_schedule_fire(jm_manager *m, int64_t created, int64_t skipped, int64_t missed,
                             int64_t lag_ms);
/* Adds `n` jobs recovered by this manager. */
void jm__stats_recovered(jm_manager *m, int n);

#endif
