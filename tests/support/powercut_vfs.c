/*
 * powercut_vfs: the power-cut simulating VFS shim (see powercut_vfs.h).
 *
 * A named file's pending state is a node: the size the process sees, a
 * sparse array of 4 KiB chunks that hold every byte written since the last
 * sync (a chunk is filled from the real file when first written), and a
 * floor: real bytes at and past it were cut off by a truncation since the
 * last sync, so they read as zeros (a file shrunk and grown again holds
 * zeros, not its old bytes). Bytes of a chunk past the size are zeros too.
 *
 * xSync applies the node to the real file (truncate to the floor, write the
 * chunks in order, set the size) and then syncs it. A kill in the middle of
 * that leaves part of the writes in the kernel, unsynced: a power cut during
 * an fsync may too, and SQLite relies only on syncs that returned.
 *
 * Memory mapping is refused (xFetch hands out nothing, the mmap size stays
 * 0): a mapping would read the real file past the pending state. The
 * chunk-size and size hints are swallowed for the same reason: they would
 * grow the real file behind the node's back.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "powercut_vfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "jobmgr/sqlite.h"

#define PC_CHUNK 4096

typedef struct pc_node {
    struct pc_node *next; /* in the table, while linked */
    char *path;
    int refs;              /* open file objects */
    int linked;            /* reachable by its path (not deleted) */
    int pending;           /* a write or truncation not synced yet */
    sqlite3_int64 size;    /* the size the process sees */
    sqlite3_int64 floor;   /* real bytes from here on read as zeros */
    unsigned char **chunk; /* chunk i: bytes [i * PC_CHUNK, (i + 1) * PC_CHUNK) */
    sqlite3_int64 nchunk;  /* slots in chunk[] */
} pc_node;

typedef struct pc_file {
    sqlite3_file base;
    pc_node *node;      /* NULL: a temporary file, passed straight through */
    sqlite3_file *real; /* the wrapped VFS's file, right after this struct */
} pc_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static int registered;

/* Guards the table, every node and pending_bytes. Held across the real
 * reads and writes that apply or fill pending state, so a sync is atomic
 * for the other threads of the process. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pc_node *table;
static int64_t pending_bytes;

/* ---- nodes ---- */

static pc_node *find_node(const char *path)
{
    for (pc_node *n = table; n; n = n->next)
        if (strcmp(n->path, path) == 0)
            return n;
    return NULL;
}

static void drop_chunk(pc_node *n, sqlite3_int64 c)
{
    if (c < n->nchunk && n->chunk[c]) {
        free(n->chunk[c]);
        n->chunk[c] = NULL;
        pending_bytes -= PC_CHUNK;
    }
}

static void unlink_node(pc_node *n)
{
    for (pc_node **pp = &table; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            break;
        }
    }
    n->next = NULL;
    n->linked = 0;
}

static void free_node(pc_node *n)
{
    for (sqlite3_int64 c = 0; c < n->nchunk; c++)
        drop_chunk(n, c);
    free(n->chunk);
    free(n->path);
    free(n);
}

/* A node nobody has open goes once it holds nothing or nobody can reach
 * it: unsynced writes to a closed file stay, as in a page cache. */
static void release_if_unused(pc_node *n)
{
    if (n->refs > 0 || (n->linked && n->pending))
        return;
    if (n->linked)
        unlink_node(n);
    free_node(n);
}

/* Chunk c of the node, made (and filled with what the file holds there)
 * if need be. */
static int get_chunk(pc_file *p, sqlite3_int64 c, unsigned char **out)
{
    pc_node *n = p->node;
    if (c >= n->nchunk) {
        sqlite3_int64 want = n->nchunk ? n->nchunk : 16;
        while (want <= c)
            want *= 2;
        unsigned char **grown = realloc(n->chunk, (size_t)want * sizeof *grown);
        if (!grown)
            return SQLITE_NOMEM;
        memset(grown + n->nchunk, 0, (size_t)(want - n->nchunk) * sizeof *grown);
        n->chunk = grown;
        n->nchunk = want;
    }
    if (!n->chunk[c]) {
        unsigned char *buf = calloc(1, PC_CHUNK);
        if (!buf)
            return SQLITE_NOMEM;
        sqlite3_int64 base = c * PC_CHUNK;
        sqlite3_int64 lim = base + PC_CHUNK < n->floor ? base + PC_CHUNK : n->floor;
        if (lim > base) {
            int rc = p->real->pMethods->xRead(p->real, buf, (int)(lim - base), base);
            if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
                free(buf);
                return rc;
            }
        }
        n->chunk[c] = buf;
        pending_bytes += PC_CHUNK;
    }
    *out = n->chunk[c];
    return SQLITE_OK;
}

/* Writes the node's pending state to the real file (not synced yet). */
static int apply(pc_file *p)
{
    pc_node *n = p->node;
    sqlite3_file *r = p->real;
    sqlite3_int64 real_size = 0;
    int rc = r->pMethods->xFileSize(r, &real_size);
    if (rc == SQLITE_OK && n->floor < real_size)
        rc = r->pMethods->xTruncate(r, n->floor);
    for (sqlite3_int64 c = 0; rc == SQLITE_OK && c < n->nchunk; c++) {
        if (!n->chunk[c])
            continue;
        sqlite3_int64 base = c * PC_CHUNK;
        if (base < n->size) {
            sqlite3_int64 len = n->size - base < PC_CHUNK ? n->size - base : PC_CHUNK;
            rc = r->pMethods->xWrite(r, n->chunk[c], (int)len, base);
        }
        if (rc == SQLITE_OK)
            drop_chunk(n, c);
    }
    if (rc == SQLITE_OK)
        rc = r->pMethods->xFileSize(r, &real_size);
    if (rc == SQLITE_OK && real_size != n->size)
        rc = r->pMethods->xTruncate(r, n->size);
    if (rc == SQLITE_OK) {
        n->floor = n->size;
        n->pending = 0;
    }
    return rc;
}

/* ---- file methods ---- */

static int pc_close(sqlite3_file *f)
{
    pc_file *p = (pc_file *)f;
    int rc = p->real->pMethods ? p->real->pMethods->xClose(p->real) : SQLITE_OK;
    p->real->pMethods = NULL;
    if (p->node) {
        pthread_mutex_lock(&lock);
        p->node->refs--;
        release_if_unused(p->node);
        pthread_mutex_unlock(&lock);
        p->node = NULL;
    }
    return rc;
}

static int pc_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    pc_file *p = (pc_file *)f;
    pc_node *n = p->node;
    if (!n)
        return p->real->pMethods->xRead(p->real, buf, amt, off);
    unsigned char *out = buf;
    sqlite3_int64 end = off + amt;
    memset(out, 0, (size_t)amt);
    pthread_mutex_lock(&lock);
    int rc = SQLITE_OK;
    sqlite3_int64 lim = end < n->floor ? end : n->floor;
    if (lim > off) {
        /* A short read fills the rest with zeros, which is what it holds. */
        rc = p->real->pMethods->xRead(p->real, out, (int)(lim - off), off);
        if (rc == SQLITE_IOERR_SHORT_READ)
            rc = SQLITE_OK;
    }
    for (sqlite3_int64 c = off / PC_CHUNK; rc == SQLITE_OK && c * PC_CHUNK < end; c++) {
        if (c >= n->nchunk || !n->chunk[c])
            continue;
        sqlite3_int64 from = c * PC_CHUNK > off ? c * PC_CHUNK : off;
        sqlite3_int64 to = (c + 1) * PC_CHUNK < end ? (c + 1) * PC_CHUNK : end;
        memcpy(out + (from - off), n->chunk[c] + (from - c * PC_CHUNK), (size_t)(to - from));
    }
    if (rc == SQLITE_OK && end > n->size)
        rc = SQLITE_IOERR_SHORT_READ;
    pthread_mutex_unlock(&lock);
    return rc;
}

static int pc_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    pc_file *p = (pc_file *)f;
    pc_node *n = p->node;
    if (!n)
        return p->real->pMethods->xWrite(p->real, buf, amt, off);
    const unsigned char *in = buf;
    sqlite3_int64 end = off + amt;
    pthread_mutex_lock(&lock);
    int rc = SQLITE_OK;
    for (sqlite3_int64 pos = off; rc == SQLITE_OK && pos < end;) {
        sqlite3_int64 c = pos / PC_CHUNK;
        unsigned char *chunk = NULL;
        if ((rc = get_chunk(p, c, &chunk)) != SQLITE_OK)
            break;
        sqlite3_int64 at = pos - c * PC_CHUNK;
        sqlite3_int64 take = PC_CHUNK - at < end - pos ? PC_CHUNK - at : end - pos;
        memcpy(chunk + at, in + (pos - off), (size_t)take);
        pos += take;
    }
    if (rc == SQLITE_OK) {
        if (end > n->size)
            n->size = end;
        n->pending = 1;
    }
    pthread_mutex_unlock(&lock);
    return rc == SQLITE_NOMEM ? SQLITE_IOERR_NOMEM : rc;
}

static int pc_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    pc_file *p = (pc_file *)f;
    pc_node *n = p->node;
    if (!n)
        return p->real->pMethods->xTruncate(p->real, size);
    pthread_mutex_lock(&lock);
    if (size < n->size) {
        for (sqlite3_int64 c = (size + PC_CHUNK - 1) / PC_CHUNK; c < n->nchunk; c++)
            drop_chunk(n, c);
        sqlite3_int64 c = size / PC_CHUNK;
        if (size % PC_CHUNK && c < n->nchunk && n->chunk[c])
            memset(n->chunk[c] + size % PC_CHUNK, 0, (size_t)(PC_CHUNK - size % PC_CHUNK));
        if (size < n->floor)
            n->floor = size;
    }
    /* Growing needs nothing more: past the old size everything is zeros. */
    n->size = size;
    n->pending = 1;
    pthread_mutex_unlock(&lock);
    return SQLITE_OK;
}

static int pc_sync(sqlite3_file *f, int flags)
{
    pc_file *p = (pc_file *)f;
    if (!p->node)
        return p->real->pMethods->xSync(p->real, flags);
    pthread_mutex_lock(&lock);
    int rc = p->node->pending ? apply(p) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = p->real->pMethods->xSync(p->real, flags);
    pthread_mutex_unlock(&lock);
    return rc;
}

static int pc_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    pc_file *p = (pc_file *)f;
    if (!p->node)
        return p->real->pMethods->xFileSize(p->real, size);
    pthread_mutex_lock(&lock);
    *size = p->node->size;
    pthread_mutex_unlock(&lock);
    return SQLITE_OK;
}

static int pc_lock(sqlite3_file *f, int level)
{
    pc_file *p = (pc_file *)f;
    return p->real->pMethods->xLock(p->real, level);
}

static int pc_unlock(sqlite3_file *f, int level)
{
    pc_file *p = (pc_file *)f;
    return p->real->pMethods->xUnlock(p->real, level);
}

static int pc_check_reserved(sqlite3_file *f, int *out)
{
    pc_file *p = (pc_file *)f;
    return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int pc_file_control(sqlite3_file *f, int op, void *arg)
{
    pc_file *p = (pc_file *)f;
    if (p->node) {
        switch (op) {
        case SQLITE_FCNTL_MMAP_SIZE:
            *(sqlite3_int64 *)arg = 0;
            return SQLITE_OK;
        case SQLITE_FCNTL_CHUNK_SIZE:
        case SQLITE_FCNTL_SIZE_HINT:
            return SQLITE_OK;
        default:
            break;
        }
    }
    return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int pc_sector_size(sqlite3_file *f)
{
    pc_file *p = (pc_file *)f;
    return p->real->pMethods->xSectorSize(p->real);
}

static int pc_device_characteristics(sqlite3_file *f)
{
    pc_file *p = (pc_file *)f;
    int caps = p->real->pMethods->xDeviceCharacteristics(p->real);
    /* Atomic batches would be the real file system's, which this shim
     * stands in front of. */
    return p->node ? caps & ~SQLITE_IOCAP_BATCH_ATOMIC : caps;
}

static int pc_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
    pc_file *p = (pc_file *)f;
    return p->real->pMethods->xShmMap(p->real, page, size, extend, out);
}

static int pc_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    pc_file *p = (pc_file *)f;
    return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void pc_shm_barrier(sqlite3_file *f)
{
    pc_file *p = (pc_file *)f;
    p->real->pMethods->xShmBarrier(p->real);
}

static int pc_shm_unmap(sqlite3_file *f, int del)
{
    pc_file *p = (pc_file *)f;
    return p->real->pMethods->xShmUnmap(p->real, del);
}

static int pc_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **out)
{
    pc_file *p = (pc_file *)f;
    if (p->node) {
        *out = NULL; /* SQLite reads with xRead instead */
        return SQLITE_OK;
    }
    return p->real->pMethods->xFetch(p->real, off, amt, out);
}

static int pc_unfetch(sqlite3_file *f, sqlite3_int64 off, void *ptr)
{
    pc_file *p = (pc_file *)f;
    if (p->node)
        return SQLITE_OK;
    return p->real->pMethods->xUnfetch(p->real, off, ptr);
}

/* One method table per version the wrapped file may have: the shim must
 * not offer shared memory or memory mapping the real file lacks. */
static sqlite3_io_methods methods[3];

static void init_methods(void)
{
    static const sqlite3_io_methods base = {
        3,
        pc_close,
        pc_read,
        pc_write,
        pc_truncate,
        pc_sync,
        pc_file_size,
        pc_lock,
        pc_unlock,
        pc_check_reserved,
        pc_file_control,
        pc_sector_size,
        pc_device_characteristics,
        pc_shm_map,
        pc_shm_lock,
        pc_shm_barrier,
        pc_shm_unmap,
        pc_fetch,
        pc_unfetch,
    };
    for (int v = 1; v <= 3; v++) {
        methods[v - 1] = base;
        methods[v - 1].iVersion = v;
    }
}

/* ---- VFS methods ---- */

static int pc_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    pc_file *p = (pc_file *)f;
    memset(p, 0, sizeof *p);
    p->real = (sqlite3_file *)(p + 1);
    int rc = real_vfs->xOpen(real_vfs, name, p->real, flags, out_flags);
    if (p->real->pMethods) {
        /* Set even on failure: SQLite then calls xClose, which closes the
         * real file. */
        int v = p->real->pMethods->iVersion;
        p->base.pMethods = &methods[(v < 1 ? 1 : v > 3 ? 3 : v) - 1];
    }
    if (rc != SQLITE_OK || !p->real->pMethods || !name || (flags & SQLITE_OPEN_DELETEONCLOSE))
        return rc;
    pthread_mutex_lock(&lock);
    pc_node *n = find_node(name);
    if (!n) {
        sqlite3_int64 size = 0;
        rc = p->real->pMethods->xFileSize(p->real, &size);
        if (rc == SQLITE_OK && (n = calloc(1, sizeof *n)) != NULL &&
            (n->path = strdup(name)) == NULL) {
            free(n);
            n = NULL;
        }
        if (n) {
            n->linked = 1;
            n->size = size;
            n->floor = size;
            n->next = table;
            table = n;
        } else if (rc == SQLITE_OK) {
            rc = SQLITE_NOMEM;
        }
    }
    if (n) {
        n->refs++;
        p->node = n;
    }
    pthread_mutex_unlock(&lock);
    return rc; /* on failure xClose closes the real file */
}

static int pc_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    pthread_mutex_lock(&lock);
    pc_node *n = find_node(name);
    if (n) {
        /* Open objects keep the deleted file's node; a new file of that
         * name starts afresh. */
        unlink_node(n);
        release_if_unused(n);
    }
    pthread_mutex_unlock(&lock);
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int pc_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    int rc = real_vfs->xAccess(real_vfs, name, flags, out);
    if (rc != SQLITE_OK || flags != SQLITE_ACCESS_EXISTS)
        return rc;
    /* The unix VFS calls an empty file absent: judge by the size the
     * process sees (a log written but not synced yet exists). */
    pthread_mutex_lock(&lock);
    pc_node *n = find_node(name);
    if (n)
        *out = n->size > 0;
    pthread_mutex_unlock(&lock);
    return rc;
}

static int pc_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *pc_dlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void pc_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    real_vfs->xDlError(real_vfs, n, msg);
}

static void (*pc_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void pc_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    real_vfs->xDlClose(real_vfs, h);
}

static int pc_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int pc_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}

static int pc_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int pc_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int pc_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    if (real_vfs->iVersion >= 2 && real_vfs->xCurrentTimeInt64)
        return real_vfs->xCurrentTimeInt64(real_vfs, out);
    double d = 0;
    int rc = real_vfs->xCurrentTime(real_vfs, &d);
    *out = (sqlite3_int64)(d * 86400000.0);
    return rc;
}

int pc_register(void)
{
    if (registered)
        return SQLITE_OK;
    /* Through the public API: the shim wraps the library's own SQLite,
     * whichever copy that is. */
    real_vfs = jm_sqlite_vfs_find(NULL);
    if (!real_vfs)
        return SQLITE_ERROR;
    init_methods();
    memset(&shim_vfs, 0, sizeof shim_vfs);
    shim_vfs.iVersion = 2;
    shim_vfs.szOsFile = (int)sizeof(pc_file) + real_vfs->szOsFile;
    shim_vfs.mxPathname = real_vfs->mxPathname;
    shim_vfs.zName = PC_NAME;
    shim_vfs.xOpen = pc_open;
    shim_vfs.xDelete = pc_delete;
    shim_vfs.xAccess = pc_access;
    shim_vfs.xFullPathname = pc_full_pathname;
    shim_vfs.xDlOpen = pc_dlopen;
    shim_vfs.xDlError = pc_dlerror;
    shim_vfs.xDlSym = pc_dlsym;
    shim_vfs.xDlClose = pc_dlclose;
    shim_vfs.xRandomness = pc_randomness;
    shim_vfs.xSleep = pc_sleep;
    shim_vfs.xCurrentTime = pc_current_time;
    shim_vfs.xGetLastError = pc_last_error;
    shim_vfs.xCurrentTimeInt64 = pc_current_time64;
    if (jm_sqlite_vfs_register(&shim_vfs, 0) != JM_OK)
        return SQLITE_ERROR;
    registered = 1;
    return SQLITE_OK;
}

int64_t pc_pending_bytes(void)
{
    pthread_mutex_lock(&lock);
    int64_t n = pending_bytes;
    pthread_mutex_unlock(&lock);
    return n;
}
