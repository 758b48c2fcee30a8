/*
 * fault_vfs: the fault-injecting VFS shim (see fault_vfs.h). Every method
 * forwards to the wrapped VFS; the four that can be faulted consult
 * should_fail() first. It does not simulate torn writes or lost syncs that
 * report success: a failing call fails before it reaches the disk.
 */
#include "fault_vfs.h"

#include <sqlite3.h>
#include <stdatomic.h>

#include "jobmgr/sqlite.h"
#include <stdio.h>
#include <string.h>

typedef struct fv_file {
    sqlite3_file base;
    const char *name;   /* SQLite keeps it valid until xClose; NULL for temp files */
    sqlite3_file *real; /* the wrapped VFS's file, right after this struct */
} fv_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static int registered;

static _Atomic int armed;
static _Atomic int arm_kind;
static _Atomic int64_t arm_nth;
static _Atomic int arm_rc;
static _Atomic int arm_persistent;
static char arm_filter[256];
static _Atomic int64_t counts[FV_KIND_COUNT];
static _Atomic int64_t injected;

static int name_matches(const char *name)
{
    if (!arm_filter[0])
        return 1;
    return name && strstr(name, arm_filter) != NULL;
}

/* Counts a call and says whether it must fail; *rc gets the code. */
static int should_fail(fv_kind kind, const char *name, int *rc)
{
    if (!name_matches(name))
        return 0;
    int64_t n = atomic_fetch_add(&counts[kind], 1) + 1;
    if (!atomic_load(&armed) || atomic_load(&arm_kind) != (int)kind)
        return 0;
    int64_t nth = atomic_load(&arm_nth);
    if (n != nth && !(atomic_load(&arm_persistent) && n > nth))
        return 0;
    atomic_fetch_add(&injected, 1);
    *rc = atomic_load(&arm_rc);
    return 1;
}

static int extended(int rc, int ioerr_code)
{
    return rc == SQLITE_IOERR ? ioerr_code : rc;
}

/* ---- file methods ---- */

static int fv_close(sqlite3_file *f)
{
    fv_file *p = (fv_file *)f;
    int rc = p->real->pMethods ? p->real->pMethods->xClose(p->real) : SQLITE_OK;
    p->real->pMethods = NULL;
    return rc;
}

static int fv_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xRead(p->real, buf, amt, off);
}

static int fv_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    fv_file *p = (fv_file *)f;
    int rc;
    if (should_fail(FV_WRITE, p->name, &rc))
        return extended(rc, SQLITE_IOERR_WRITE);
    return p->real->pMethods->xWrite(p->real, buf, amt, off);
}

static int fv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xTruncate(p->real, size);
}

static int fv_sync(sqlite3_file *f, int flags)
{
    fv_file *p = (fv_file *)f;
    int rc;
    if (should_fail(FV_SYNC, p->name, &rc))
        return extended(rc, SQLITE_IOERR_FSYNC);
    return p->real->pMethods->xSync(p->real, flags);
}

static int fv_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xFileSize(p->real, size);
}

static int fv_lock(sqlite3_file *f, int level)
{
    fv_file *p = (fv_file *)f;
    int rc;
    if (should_fail(FV_LOCK, p->name, &rc))
        return extended(rc, SQLITE_IOERR_LOCK);
    return p->real->pMethods->xLock(p->real, level);
}

static int fv_unlock(sqlite3_file *f, int level)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xUnlock(p->real, level);
}

static int fv_check_reserved(sqlite3_file *f, int *out)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int fv_file_control(sqlite3_file *f, int op, void *arg)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int fv_sector_size(sqlite3_file *f)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xSectorSize(p->real);
}

static int fv_device_characteristics(sqlite3_file *f)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int fv_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xShmMap(p->real, page, size, extend, out);
}

static int fv_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    fv_file *p = (fv_file *)f;
    int rc;
    if ((flags & SQLITE_SHM_LOCK) && should_fail(FV_LOCK, p->name, &rc))
        return extended(rc, SQLITE_IOERR_SHMLOCK);
    return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void fv_shm_barrier(sqlite3_file *f)
{
    fv_file *p = (fv_file *)f;
    p->real->pMethods->xShmBarrier(p->real);
}

static int fv_shm_unmap(sqlite3_file *f, int del)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xShmUnmap(p->real, del);
}

static int fv_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **out)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xFetch(p->real, off, amt, out);
}

static int fv_unfetch(sqlite3_file *f, sqlite3_int64 off, void *ptr)
{
    fv_file *p = (fv_file *)f;
    return p->real->pMethods->xUnfetch(p->real, off, ptr);
}

/* One method table per version the wrapped file may have: the shim must
 * not offer shared memory or memory mapping the real file lacks. */
static sqlite3_io_methods methods[3];

static void init_methods(void)
{
    static const sqlite3_io_methods base = {
        3,
        fv_close,
        fv_read,
        fv_write,
        fv_truncate,
        fv_sync,
        fv_file_size,
        fv_lock,
        fv_unlock,
        fv_check_reserved,
        fv_file_control,
        fv_sector_size,
        fv_device_characteristics,
        fv_shm_map,
        fv_shm_lock,
        fv_shm_barrier,
        fv_shm_unmap,
        fv_fetch,
        fv_unfetch,
    };
    for (int v = 1; v <= 3; v++) {
        methods[v - 1] = base;
        methods[v - 1].iVersion = v;
    }
}

/* ---- VFS methods ---- */

static int fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    fv_file *p = (fv_file *)f;
    memset(p, 0, sizeof *p);
    p->name = name;
    p->real = (sqlite3_file *)(p + 1);
    int rc;
    if (should_fail(FV_OPEN, name, &rc))
        return extended(rc, SQLITE_CANTOPEN);
    rc = real_vfs->xOpen(real_vfs, name, p->real, flags, out_flags);
    if (rc == SQLITE_OK && p->real->pMethods) {
        int v = p->real->pMethods->iVersion;
        p->base.pMethods = &methods[(v < 1 ? 1 : v > 3 ? 3 : v) - 1];
    }
    return rc;
}

static int fv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int fv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int fv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *fv_dlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void fv_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    real_vfs->xDlError(real_vfs, n, msg);
}

static void (*fv_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void fv_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    real_vfs->xDlClose(real_vfs, h);
}

static int fv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int fv_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}

static int fv_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int fv_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int fv_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    if (real_vfs->iVersion >= 2 && real_vfs->xCurrentTimeInt64)
        return real_vfs->xCurrentTimeInt64(real_vfs, out);
    double d = 0;
    int rc = real_vfs->xCurrentTime(real_vfs, &d);
    *out = (sqlite3_int64)(d * 86400000.0);
    return rc;
}

int fv_register(int make_default)
{
    if (!registered) {
        /* Through the public API: the shim wraps the library's own SQLite,
         * whichever copy that is. */
        real_vfs = jm_sqlite_vfs_find(NULL);
        if (!real_vfs)
            return SQLITE_ERROR;
        init_methods();
        memset(&shim_vfs, 0, sizeof shim_vfs);
        shim_vfs.iVersion = 2;
        shim_vfs.szOsFile = (int)sizeof(fv_file) + real_vfs->szOsFile;
        shim_vfs.mxPathname = real_vfs->mxPathname;
        shim_vfs.zName = FV_NAME;
        shim_vfs.xOpen = fv_open;
        shim_vfs.xDelete = fv_delete;
        shim_vfs.xAccess = fv_access;
        shim_vfs.xFullPathname = fv_full_pathname;
        shim_vfs.xDlOpen = fv_dlopen;
        shim_vfs.xDlError = fv_dlerror;
        shim_vfs.xDlSym = fv_dlsym;
        shim_vfs.xDlClose = fv_dlclose;
        shim_vfs.xRandomness = fv_randomness;
        shim_vfs.xSleep = fv_sleep;
        shim_vfs.xCurrentTime = fv_current_time;
        shim_vfs.xGetLastError = fv_last_error;
        shim_vfs.xCurrentTimeInt64 = fv_current_time64;
        registered = 1;
    }
    return jm_sqlite_vfs_register(&shim_vfs, make_default) == JM_OK ? SQLITE_OK : SQLITE_ERROR;
}

void fv_restore_default(void)
{
    if (real_vfs)
        jm_sqlite_vfs_register(real_vfs, 1);
}

void fv_arm(fv_kind kind, int64_t nth, int rc, int persistent, const char *filter)
{
    atomic_store(&armed, 0);
    snprintf(arm_filter, sizeof arm_filter, "%s", filter ? filter : "");
    for (int k = 0; k < FV_KIND_COUNT; k++)
        atomic_store(&counts[k], 0);
    atomic_store(&injected, 0);
    atomic_store(&arm_kind, (int)kind);
    atomic_store(&arm_nth, nth);
    atomic_store(&arm_rc, rc);
    atomic_store(&arm_persistent, persistent ? 1 : 0);
    atomic_store(&armed, 1);
}

void fv_disarm(void)
{
    atomic_store(&armed, 0);
}

int64_t fv_count(fv_kind kind)
{
    return kind < FV_KIND_COUNT ? atomic_load(&counts[kind]) : 0;
}

int64_t fv_injected(void)
{
    return atomic_load(&injected);
}

const char *fv_kind_name(fv_kind kind)
{
    static const char *const names[FV_KIND_COUNT] = {"write", "sync", "lock", "open"};
    return kind < FV_KIND_COUNT ? names[kind] : "?";
}
