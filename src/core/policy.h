/* Table policies in the core (policy.c, policy_eval.c). */
#ifndef JM_POLICY_H
#define JM_POLICY_H

#include "manager.h"

/* Whether cfg.host can serve policies (version 2, both operations). */
int jm__policies_supported(const jm_manager *m);

#endif
