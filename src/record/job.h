/*
 * The job record as the library hands it out. The store builds these from
 * rows; the core reads them. Strings are owned by the record.
 */
#ifndef JM_JOB_H
#define JM_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "jobmgr.h"

/* Messages the library itself writes into a job's row: the core when it
 * overrides a decision, the store in statements that change a status
 * atomically (spliced into their text, so they hold no quote). */
#define JM__MSG_CANCELLED "Cancelled"
#define JM__MSG_MAX_RETRIES "Max retries exceeded"
#define JM__MSG_PAUSED_LOST "Paused: its worker was lost before it yielded"

struct jm_job {
    int64_t seq; /* the row's position in creation order */
    char id[JM_JOB_ID_SIZE];
    char type[3];
    jm_status status;
    char *namespace_id;
    char *params;
    char *idempotency_key;
    char *message;
    char *trace;
    char *result;
    char *checkpoint;
    char *node_id;
    double progress;
    int retry_count;
    int max_retries;
    int priority;
    int attempts;
    int cancel_requested;
    int64_t created_at;
    int64_t updated_at;
    int64_t started_at;
    int64_t finished_at;
    int64_t run_at;
    int64_t lease_until;
    char *schedule_id; /* the schedule that created it, or NULL */
    int64_t fire_time; /* ... for this fire time; 0 if none */
    char *resource;    /* what it acts on (conflicts, limits), or NULL */
    char *blocked_by;  /* what held it back at the last claim, or NULL */
    int pause_requested;
    /* The run journal's cancel counter read before the claim that took it
     * (runner.c); not stored. */
    uint64_t claim_cancels;
    int high; /* of a JM_CLASS_HIGH type here: what high workers take */
};

struct jm_job_list {
    jm_job **items;
    size_t count;
    int has_more;
};

jm_job *jm__job_new(void);
/* Replaces *slot with a copy of s (NULL clears). JM_ENOMEM on failure. */
int jm__job_set_str(char **slot, const char *s);

#endif
