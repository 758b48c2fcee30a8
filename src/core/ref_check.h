/* The id-or-name argument of the schedule and policy calls (ref_check.c). */
#ifndef JM_REF_CHECK_H
#define JM_REF_CHECK_H

#include "manager.h"

/* Checks the manager and the id or name `ref` a public call `fn` got for a
 * row of kind `noun` ("schedule", "policy"): neither NULL, `ref` at most
 * JM_SCHEDULE_NAME_MAX bytes of printable UTF-8. JM_EINVAL naming `fn`
 * otherwise. */
int jm__ref_check(const jm_manager *m, const char *ref, const char *noun, const char *fn);

#endif
