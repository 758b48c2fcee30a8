/* Schedule snapshots (jm_schedule): their strings are the snapshot's own. */
#ifndef JM_SCHEDULE_SNAPSHOT_H
#define JM_SCHEDULE_SNAPSHOT_H

#include "jobmgr.h"

jm_schedule *jm__schedule_new(void);
/* Sets *slot (a string of the snapshot's spec) to a copy of s (NULL
 * clears). JM_ENOMEM on failure. */
int jm__schedule_set_str(const char **slot, const char *s);
/* A copy of `spec`'s strings into `sc`'s spec, the rest copied as is. */
int jm__schedule_set_spec(jm_schedule *sc, const jm_schedule_spec *spec);

#endif
