/* The run loop (loop.c). */
#ifndef JM_LOOP_H
#define JM_LOOP_H

#include "manager.h"

/* Runs the loop on the calling thread until the pool has stopped. */
void jm__loop_run(jm_manager *m);

#endif
