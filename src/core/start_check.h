/* The start check (start_check.c). */
#ifndef JM_START_CHECK_H
#define JM_START_CHECK_H

#include <stdint.h>

#include "manager.h"

/* Reads a claimed job's row on the reader connection: may it (still) run?
 * A failed read says run: a cancel still reaches the job by the heartbeat. */
jm__start_verdict jm__read_verdict(jm_manager *m, const jm_job *job);

/* May the claimed job start? Reads the row only if the run journal's
 * cancel counter moved since the claim (always without a journal); *seen
 * gets the counter the answer is good for. */
jm__start_verdict jm__start_verdict_of(jm_manager *m, const jm_job *job, uint64_t *seen);

#endif
