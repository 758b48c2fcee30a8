/* Table type names as job parameters and metadata spell them. */
#include <string.h>

#include "jobmgr/host.h"

static const char *const names[] = {"User", "Shared", "Stream"};

const char *jm_table_type_name(jm_table_type t)
{
    return (unsigned)t < 3 ? names[t] : "unknown";
}

int jm_table_type_parse(const char *name, jm_table_type *out)
{
    if (!name || !out)
        return jm_host_error(JM_EINVAL, "table type: NULL argument");
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (jm_table_type)i;
            return JM_OK;
        }
    }
    return jm_host_error(JM_EINVAL, "unknown table type '%.32s' (User, Shared or Stream)", name);
}
