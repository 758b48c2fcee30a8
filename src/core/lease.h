/* Leases of the jobs this manager holds (lease.c). */
#ifndef JM_LEASE_H
#define JM_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "manager.h"

/* Renewals come every third of a lease, so two can fail before it ends. */
int64_t jm__heartbeat_interval_ms(const jm_manager *m);
/* Renews the leases of every job this manager holds (running, claimed
 * ahead, or finished with the outcome not yet recorded); flags cancel
 * requests and lost leases of running jobs. */
void jm__heartbeat(jm_manager *m);
/* Whether this manager holds any claim (running, waiting, or an outcome
 * not yet recorded). */
int jm__holds_claims(jm_manager *m);
/* Tells runs of this manager that an older claim of a job just claimed
 * again is lost (a takeover by another node); m->lock held. */
void jm__lose_older_runs(jm_manager *m, jm_job *const *claimed, size_t n);

/* Compares the wall clock with the monotonic one since the last call. A
 * step of more than JM_CLOCK_STEP_MS either way renews this manager's
 * leases at once; a step back also rebases relative delays (retry
 * backoffs, continue delays) so they stay relative. Returns the step in ms
 * (0: none). */
int64_t jm__clock_watch(jm_manager *m);
/* How far the two clocks may drift apart between readings before it counts
 * as a step. */
#define JM_CLOCK_STEP_MS 1000

#endif
