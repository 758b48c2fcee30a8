/* Runs one claimed job and turns its decision into a recorded outcome. */
#ifndef JM_RUNNER_H
#define JM_RUNNER_H

#include "manager.h"

struct jm__outcome {
    jm__finish f; /* its strings point at the copies below */
    char *message;
    char *trace;
    char *result;
    jm_job *job;
    jm__outcome *next;
    int64_t duration_ms; /* the run, from jm__run_job to execute()'s return */
    int retry_decision;  /* the executor asked for a retry */
    int slot;            /* its run journal slot, cleared once recorded; -1: none */
};

/* Runs `job` (taking ownership) on the calling thread and returns how it
 * ended, ready to commit. NULL only when even the outcome could not be
 * allocated: the job is then released (or left to recovery). */
jm__outcome *jm__run_job(jm_manager *m, jm_job *job, int inline_mode);

/* Records the outcomes in one transaction and logs them. On JM_OK the list
 * is freed; on error it is left to the caller to try again or drop. */
int jm__commit_outcomes(jm_manager *m, jm__outcome *list, size_t n);
/* The same, claiming in the same transaction (the run loop's group
 * commit) up to claim_max jobs of any registered type, then up to
 * ahead_max of ahead_types; *claimed gets *nclaimed owned jobs. The
 * return is the outcomes' part: a failed claim alone still records (and
 * frees) the list, and puts its error in *claim_err (may be NULL when
 * nothing is claimed). */
int jm__commit_cycle(jm_manager *m, jm__outcome *list, size_t n, size_t claim_max,
                     const char *claim_types,
                     size_t ahead_max, const char *ahead_types, jm_job ***claimed,
                     size_t *nclaimed, int *claim_err);
void jm__outcome_free_list(jm__outcome *list);


/* Puts a claimed job that never ran back (running -> retrying, no retry
 * spent) and frees it. */
void jm__release_job(jm_manager *m, jm_job *job);

#endif
