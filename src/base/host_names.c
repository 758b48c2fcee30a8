/* The names hosts and executors share: table types as job parameters and
 * metadata spell them, and the rule for namespace, table and user names. */
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

int jm_host_name_check(const char *what, const char *name)
{
    if (!what)
        what = "name";
    if (!name)
        return jm_host_error(JM_EINVAL, "%s is NULL", what);
    size_t n = strnlen(name, JM_HOST_NAME_MAX + 1);
    if (n == 0 || n > JM_HOST_NAME_MAX)
        return jm_host_error(JM_EINVAL, "%s must be 1..%d bytes", what, JM_HOST_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok)
            return jm_host_error(JM_EINVAL,
                                 "%s may only hold letters, digits, '_', '.' and '-' "
                                 "(byte %zu is 0x%02x)",
                                 what, i, (unsigned)(unsigned char)c);
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return jm_host_error(JM_EINVAL, "%s may not be \".\" or \"..\"", what);
    return JM_OK;
}
