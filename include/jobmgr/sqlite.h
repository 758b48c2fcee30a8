/**
 * @file jobmgr/sqlite.h
 * @brief The SQLite that jobmgr runs on: its version, and VFS plug-ins.
 *
 * By default libjobmgr carries its own SQLite (the bundled amalgamation,
 * with its symbols renamed and hidden), so a host may link any other
 * SQLite beside it. A VFS shim meant for the jobs database (a fault
 * injector, a power-cut simulator, an encryption layer) must therefore be
 * registered with the library's copy, through these functions, and named
 * in jm_config.sqlite_vfs. `struct sqlite3_vfs` is SQLite's public, stable
 * type: a shim includes its own <sqlite3.h> for it and wraps the VFS
 * jm_sqlite_vfs_find() returns.
 *
 * One thing cannot work: two copies of SQLite in one process opening the
 * same database file. SQLite's POSIX locks belong to the process, and each
 * copy keeps its own table of them, so one copy's close drops the other's
 * locks. Open the jobs database only through jobmgr; a host's own SQLite
 * may open any other file.
 */
#ifndef JOBMGR_SQLITE_H
#define JOBMGR_SQLITE_H

#include "jobmgr.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sqlite3_vfs;

/**
 * @brief The version of the SQLite jobmgr runs on, as "3.53.2".
 * @param bundled  if not NULL, set to 1 when it is the bundled copy, 0 when
 *                 it is the system's library
 * @return a static string.
 */
JM_EXTERN const char *jm_sqlite_version(int *bundled);

/**
 * @brief Finds a VFS registered with jobmgr's SQLite.
 * @param name  the VFS's name, or NULL for the default VFS
 * @return the VFS (owned by SQLite), or NULL if none has that name.
 */
JM_EXTERN struct sqlite3_vfs *jm_sqlite_vfs_find(const char *name);

/**
 * @brief Registers a VFS with jobmgr's SQLite.
 *
 * Registering the same VFS again moves it (and may make it the default).
 * The VFS must outlive every manager that uses it.
 * @param vfs           the VFS; its zName is how jm_config.sqlite_vfs names it
 * @param make_default  non-zero: it becomes the default VFS
 * @return JM_OK; JM_EINVAL for a NULL vfs or one without a name; JM_ENOMEM
 *         or JM_EDB if SQLite cannot initialise.
 */
JM_EXTERN int jm_sqlite_vfs_register(struct sqlite3_vfs *vfs, int make_default);

/**
 * @brief Unregisters a VFS from jobmgr's SQLite.
 * @param vfs  a VFS registered with jm_sqlite_vfs_register()
 * @return JM_OK; JM_EINVAL for NULL.
 */
JM_EXTERN int jm_sqlite_vfs_unregister(struct sqlite3_vfs *vfs);

#ifdef __cplusplus
}
#endif

#endif
