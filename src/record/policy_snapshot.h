/* Policy snapshots (jm_policy): their strings are the snapshot's own. */
#ifndef JM_POLICY_SNAPSHOT_H
#define JM_POLICY_SNAPSHOT_H

#include "jobmgr.h"

jm_policy *jm__policy_new(void);
/* A copy of `spec` into `p`'s spec, its strings copied. JM_ENOMEM. */
int jm__policy_set_spec(jm_policy *p, const jm_policy_spec *spec);

#endif
