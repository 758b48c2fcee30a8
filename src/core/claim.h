/* Claiming due jobs for this manager (claim.c), shared by the run loop and
 * jm_run_once. */
#ifndef JM_CLAIM_H
#define JM_CLAIM_H

#include <stddef.h>

#include "manager.h"

/* Prefetch: the loop keeps about JM_PREFETCH_AHEAD_US of work per worker
 * claimed (by a moving average of run times), between one and
 * JM_PREFETCH_PER_WORKER jobs, and never more than JM_PREFETCH_MAX. Short
 * jobs thus share one synced commit among many; no process holds more
 * than that much work another process could run. */
#define JM_PREFETCH_PER_WORKER 128
#define JM_PREFETCH_MAX 1024
#define JM_PREFETCH_AHEAD_US 50000

/* Claims up to `max` due jobs of the registered types. *jobs is an array of
 * *n owned jobs (free the array with jm__free). */
int jm__claim(jm_manager *m, size_t max, jm_job ***jobs, size_t *n);

/* Fills a claim request for this manager; `types` (JM_TYPE_SLOTS * 3 + 1
 * bytes) receives the claimable types and must outlive the request. */
void jm__claim_req_init(jm_manager *m, jm__claim_req *req, char *types, size_t max);

/* What the run loop's next claim asks for: `now` jobs of any type, one per
 * idle worker, and `ahead` more of `ahead_types` (comma-separated). */
typedef struct jm__claim_plan_t {
    size_t now, ahead;
    char ahead_types[JM_TYPE_SLOTS * 3 + 1];
    /* The types of the `now` pass when only high-class jobs may start
     * (jm_config.high_workers); "" for every registered type. */
    char now_types[JM_TYPE_SLOTS * 3 + 1];
} jm__claim_plan_t;

/* Plans the next claim from the pool's state; m->lock held. */
void jm__claim_plan(jm_manager *m, jm__claim_plan_t *c);

#endif
