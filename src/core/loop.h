/* The run loop (loop.c) and the claimed-jobs queue it shares with workers. */
#ifndef JM_LOOP_H
#define JM_LOOP_H

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

/* The size of the claimed-jobs queue for n workers. */
size_t jm__prefetch_capacity(int nworkers);

/* The queue is a ring of pending_cap entries; m->lock held. */
void jm__pool_push_pending(jm__pool *p, jm_job *job);
jm_job *jm__pool_pop_pending(jm__pool *p);

/* Runs the loop on the calling thread until the pool has stopped. */
void jm__loop_run(jm_manager *m);

#endif
