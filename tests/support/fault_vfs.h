/*
 * fault_vfs: a SQLite VFS shim for fault-injection tests. It wraps the VFS
 * that was the default when it was registered and forwards every call, but
 * counts the calls that can fail in interesting ways (xWrite, xSync,
 * xLock/xShmLock, xOpen) and, once armed, fails the Nth of one kind with a
 * chosen SQLite code, once or from then on. Only files whose name contains
 * an optional filter are counted and faulted, so a test can aim at the
 * jobs database or at the engine's catalog alone. Unlocks, reads and
 * closes always go through: SQLite cannot recover from a failing unlock,
 * and no real disk fails that way either.
 *
 * Not part of the library. The counters are atomic, but arm and disarm are
 * meant to be called while no other thread is inside SQLite.
 */
#ifndef JM_FAULT_VFS_H
#define JM_FAULT_VFS_H

#include <stdint.h>

/* The name to pass as cfg.sqlite_vfs or to sqlite3_open_v2(). */
#define FV_NAME "jm_fault"

typedef enum {
    FV_WRITE, /* xWrite */
    FV_SYNC,  /* xSync */
    FV_LOCK,  /* xLock and xShmLock (lock requests only, never unlocks) */
    FV_OPEN,  /* xOpen */
    FV_KIND_COUNT
} fv_kind;

/* Registers the shim over the current default VFS (once; later calls only
 * change whether it is the default). With make_default non-zero it becomes
 * the default VFS, so connections that name none (the engine's catalog) go
 * through it too. Returns a SQLite code. */
int fv_register(int make_default);
/* Makes the wrapped VFS the default again (the shim stays registered). */
void fv_restore_default(void);

/* Arms a fault: the `nth` (1-based) call of `kind` from now on, on a file
 * whose name contains `filter` (NULL: any file), fails with `rc`. With
 * `persistent` every later call of that kind fails too. Plain SQLITE_IOERR
 * is turned into the extended code that fits the call (SQLITE_IOERR_WRITE,
 * _FSYNC, _LOCK, _SHMLOCK); SQLITE_CANTOPEN, SQLITE_FULL and SQLITE_BUSY are
 * returned as given. Resets the counters. */
void fv_arm(fv_kind kind, int64_t nth, int rc, int persistent, const char *filter);
/* No more faults; counters keep counting. */
void fv_disarm(void);
/* Calls of `kind` on matching files since the last fv_arm(). */
int64_t fv_count(fv_kind kind);
/* Faults injected since the last fv_arm(). */
int64_t fv_injected(void);

/* "write", "sync", "lock", "open". */
const char *fv_kind_name(fv_kind kind);

#endif
