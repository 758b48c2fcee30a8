/* Claiming due jobs for this manager (shared by the pool and run_once). */
#ifndef JM_CLAIM_H
#define JM_CLAIM_H

#include "manager.h"

/* Claims up to `max` due jobs of the registered types. *jobs is an array of
 * *n owned jobs (free the array with jm__free). */
int jm__claim(jm_manager *m, size_t max, jm_job ***jobs, size_t *n);

/* Fills a claim request for this manager; `types` (JM_TYPE_SLOTS * 3 + 1
 * bytes) receives the claimable types and must outlive the request. */
void jm__claim_req_init(jm_manager *m, jm__claim_req *req, char *types, size_t max);

#endif
