/* Wake-ups across processes (wake.c). */
#ifndef JM_WAKE_H
#define JM_WAKE_H

#include "manager.h"

/* Opens the store's wake-up channel, if it has one here (else the manager
 * polls, as before); at jm_open. */
void jm__wake_open(jm_manager *m);
void jm__wake_close(jm_manager *m);
/* After a commit that added work due now: idle managers of other
 * processes look for it at once. */
void jm__wake_post(jm_manager *m);
/* The run loop's companion thread that turns posts into claims; started
 * and stopped by the loop, without m->lock held. */
void jm__wake_watch_start(jm_manager *m);
void jm__wake_watch_stop(jm_manager *m);

#endif
