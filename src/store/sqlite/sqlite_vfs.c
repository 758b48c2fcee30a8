/*
 * The public face of the SQLite the library runs on: its version and VFS
 * registration. With the bundled copy these are the only way in, since its
 * symbols are renamed and hidden.
 */
#include <sqlite3.h>

#include "error.h"
#include "jobmgr/sqlite.h"

const char *jm_sqlite_version(int *bundled)
{
    if (bundled) {
#ifdef JM_SQLITE_BUNDLED
        *bundled = 1;
#else
        *bundled = 0;
#endif
    }
    return sqlite3_libversion();
}

struct sqlite3_vfs *jm_sqlite_vfs_find(const char *name)
{
    return sqlite3_vfs_find(name);
}

int jm_sqlite_vfs_register(struct sqlite3_vfs *vfs, int make_default)
{
    if (!vfs || !vfs->zName || !*vfs->zName)
        return jm__seterr(JM_EINVAL, "jm_sqlite_vfs_register: a VFS with a name is needed");
    int rc = sqlite3_vfs_register(vfs, make_default ? 1 : 0);
    if (rc == SQLITE_NOMEM)
        return jm__seterr(JM_ENOMEM, "out of memory registering VFS %s", vfs->zName);
    if (rc != SQLITE_OK)
        return jm__seterr(JM_EDB, "cannot register VFS %s: %s", vfs->zName, sqlite3_errstr(rc));
    return JM_OK;
}

int jm_sqlite_vfs_unregister(struct sqlite3_vfs *vfs)
{
    if (!vfs)
        return jm__seterr(JM_EINVAL, "jm_sqlite_vfs_unregister: vfs is NULL");
    int rc = sqlite3_vfs_unregister(vfs);
    return rc == SQLITE_OK ? JM_OK
                           : jm__seterr(JM_EDB, "cannot unregister VFS %s: %s", vfs->zName,
                                        sqlite3_errstr(rc));
}
