/*
 * Checking the id-or-name argument of the schedule and policy calls. Both
 * kinds of row are named by an id or a name under the same limit
 * (JM_SCHEDULE_NAME_MAX), so one check serves both; whether such a row
 * exists is the store's to say.
 */
#include <string.h>

#include "error.h"
#include "ref_check.h"
#include "text.h"

int jm__ref_check(const jm_manager *m, const char *ref, const char *noun, const char *fn)
{
    if (!m || !ref)
        return jm__seterr(JM_EINVAL, "%s: manager or %s is NULL", fn, noun);
    size_t len = strnlen(ref, JM_SCHEDULE_NAME_MAX + 1);
    if (len > JM_SCHEDULE_NAME_MAX || !jm__text_valid(ref, len))
        return jm__seterr(JM_EINVAL, "%s: not a %s id or name", fn, noun);
    return JM_OK;
}
