/* Registers the eight built-in executors, all or none. */
#include "builtin.h"

#include "jobmgr/host.h"

static const jm_executor *const builtins[] = {
    &jm__flush_executor,       &jm__cleanup_executor, &jm__retention_executor,
    &jm__stream_eviction_executor, &jm__user_cleanup_executor, &jm__compact_executor,
    &jm__backup_executor,      &jm__restore_executor,
};

#define NBUILTINS (sizeof builtins / sizeof builtins[0])

int jm_register_builtin(jm_manager *m)
{
    if (!m)
        return jm_host_error(JM_EINVAL, "jm_register_builtin: manager is NULL");
    for (size_t i = 0; i < NBUILTINS; i++)
        if (jm_is_registered(m, builtins[i]->type))
            return jm_host_error(JM_ECONFLICT,
                                 "jm_register_builtin: type %s is already registered",
                                 builtins[i]->type);
    for (size_t i = 0; i < NBUILTINS; i++) {
        int rc = jm_register(m, builtins[i], NULL);
        if (rc)
            return rc;
    }
    return JM_OK;
}
