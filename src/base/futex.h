/* Sleeping on a 32-bit word and waking its sleepers (Linux futexes): the
 * group commit's waiters inside one process, and the wake-up file's
 * sleepers across processes. */
#ifndef JM_FUTEX_H
#define JM_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* Sleeps while *word equals `expect`, for at most `timeout` (relative;
 * NULL: no limit). It may return at once or for no reason: callers check
 * again what they wait for. `shared`: the word lies in memory mapped by
 * other processes too. */
void jm__futex_wait(_Atomic uint32_t *word, uint32_t expect, const struct timespec *timeout,
                    int shared);
/* Wakes every thread sleeping on `word`. */
void jm__futex_wake_all(_Atomic uint32_t *word, int shared);

#endif
