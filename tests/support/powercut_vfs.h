/*
 * powercut_vfs: a SQLite VFS shim that simulates a machine's page cache, so
 * that killing the process is a power cut. It wraps the VFS that was the
 * default when it was registered. Every write to a named file is kept in
 * this process's memory until that file's xSync, which applies the pending
 * writes (and truncations) to the real file and syncs it. Reads, xFileSize
 * and xTruncate see the pending state laid over the real file, so the
 * process itself sees what it wrote, as it would through a page cache.
 *
 * SIGKILL of the process then loses exactly what was never synced, while
 * every synced byte is on disk: what a power cut does to a file system that
 * honours fsync (whole writes, never torn ones; see powercut_vfs.c).
 *
 * The pending state of one path is shared by every file object of that
 * path in the process (jobmgr opens several connections to one database),
 * and outlives the last close as a page cache does; xDelete drops it.
 * Shared memory (the -shm file) and locks go straight to the real file:
 * SQLite rebuilds the -shm file when it opens a database nobody holds.
 * Files without a name (temporary files) are not held back.
 *
 * Not part of the library. Thread-safe: one mutex guards the pending
 * state. Fork only while no other thread is inside the shim.
 */
#ifndef JM_POWERCUT_VFS_H
#define JM_POWERCUT_VFS_H

#include <stdint.h>

/* The name to pass as cfg.sqlite_vfs or to sqlite3_open_v2(). */
#define PC_NAME "jm_powercut"

/* Registers the shim (once; later calls do nothing) with jobmgr's SQLite,
 * never as the default VFS. Returns a SQLite code. */
int pc_register(void);

/* Bytes of this process's pending (unsynced) writes, over all files. */
int64_t pc_pending_bytes(void);

#endif
