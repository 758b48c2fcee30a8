/* The run loop (loop.c) and the claimed-jobs queue it shares with workers. */
#ifndef JM_LOOP_H
#define JM_LOOP_H

#include <stddef.h>

#include "core/manager.h"

/* Prefetch: jobs held claimed per worker while jobs are fast, the cap on
 * the queue, and what counts as fast (a moving average of run times). */
#define JM_PREFETCH_PER_WORKER 32
#define JM_PREFETCH_MAX 1024
#define JM_FAST_JOB_US 5000

/* The size of the claimed-jobs queue for n workers. */
size_t jm__prefetch_capacity(int nworkers);

/* The queue is a ring of pending_cap entries; m->lock held. */
void jm__pool_push_pending(jm__pool *p, jm_job *job);
jm_job *jm__pool_pop_pending(jm__pool *p);

/* Runs the loop on the calling thread until the pool has stopped. */
void jm__loop_run(jm_manager *m);

#endif
