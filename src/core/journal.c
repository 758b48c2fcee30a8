/*
 * The run journal (see journal.h). The file is a header and an array of
 * slots in a shared mapping; this process writes it with plain stores and
 * never syncs it: it only has to outlive the process, not the machine. A
 * power cut loses it together with the unsynced claims it describes.
 * Free slots are tracked in memory, never in the file.
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"

#define JOURNAL_MAGIC "jmrunj1"
#define JOURNAL_HEADER 64
/* Where the cancel counter sits in the header. */
#define JOURNAL_CANCELS_AT 16

typedef struct slot {
    int64_t attempt;
    _Atomic int64_t seq; /* 0: free; written last, cleared first */
} slot;

struct jm__journal {
    int fd;
    unsigned char *map;
    size_t size;
    slot *slots;
    pthread_mutex_t lock;
    int free_top;
    int *free_list; /* a stack of free slot numbers */
    char path[4096];
};

static size_t file_size(void)
{
    return JOURNAL_HEADER + (size_t)JM_JOURNAL_SLOTS * sizeof(slot);
}

int jm__journal_path(const char *db_file, int64_t instance, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s-jm-%016llx", db_file, (unsigned long long)instance);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int jm__journal_base(const char *name, char *out, size_t outlen)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    int n = snprintf(dir, sizeof dir, "%s/jobmgr-%lu", tmp && *tmp ? tmp : "/tmp",
                     (unsigned long)getuid());
    if (n < 0 || (size_t)n >= sizeof dir)
        return -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    /* Only a folder of this user's, closed to others: journals steer which
     * jobs start. */
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) != 0)
        return -1;
    n = snprintf(out, outlen, "%s/pg-%016llx", dir, (unsigned long long)h);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int jm__journal_create(const char *db_file, int64_t instance, jm__journal **out)
{
    *out = NULL;
    jm__journal *j = jm__calloc(1, sizeof *j);
    if (!j)
        return jm__seterr(JM_ENOMEM, "out of memory creating the run journal");
    j->fd = -1;
    j->free_list = jm__calloc(JM_JOURNAL_SLOTS, sizeof *j->free_list);
    if (!j->free_list || pthread_mutex_init(&j->lock, NULL) != 0) {
        jm__free(j->free_list);
        jm__free(j);
        return jm__seterr(JM_ENOMEM, "out of memory creating the run journal");
    }
    int rc = JM_OK;
    if (jm__journal_path(db_file, instance, j->path, sizeof j->path) != 0) {
        rc = jm__seterr(JM_EINVAL, "the database path is too long for its run journal");
        goto fail;
    }
    j->fd = open(j->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        rc = jm__seterr(JM_EIO, "cannot create the run journal %s: %s", j->path, strerror(errno));
        goto fail;
    }
    j->size = file_size();
    if (flock(j->fd, LOCK_EX | LOCK_NB) != 0 || ftruncate(j->fd, (off_t)j->size) != 0) {
        rc = jm__seterr(JM_EIO, "cannot set up the run journal %s: %s", j->path, strerror(errno));
        unlink(j->path);
        goto fail;
    }
    j->map = mmap(NULL, j->size, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
    if (j->map == MAP_FAILED) {
        j->map = NULL;
        rc = jm__seterr(JM_EIO, "cannot map the run journal %s: %s", j->path, strerror(errno));
        unlink(j->path);
        goto fail;
    }
    memcpy(j->map, JOURNAL_MAGIC, sizeof JOURNAL_MAGIC);
    j->slots = (slot *)(void *)(j->map + JOURNAL_HEADER);
    for (int i = 0; i < JM_JOURNAL_SLOTS; i++)
        j->free_list[i] = JM_JOURNAL_SLOTS - 1 - i;
    j->free_top = JM_JOURNAL_SLOTS;
    *out = j;
    return JM_OK;
fail:
    if (j->fd >= 0)
        close(j->fd);
    pthread_mutex_destroy(&j->lock);
    jm__free(j->free_list);
    jm__free(j);
    return rc;
}

void jm__journal_close(jm__journal *j)
{
    if (!j)
        return;
    /* Started runs without a recorded outcome: recovery must read them. */
    if (j->free_top == JM_JOURNAL_SLOTS)
        unlink(j->path);
    munmap(j->map, j->size);
    close(j->fd);
    pthread_mutex_destroy(&j->lock);
    jm__free(j->free_list);
    jm__free(j);
}

int jm__journal_mark(jm__journal *j, int64_t seq, int64_t attempt)
{
    if (!j)
        return -1;
    pthread_mutex_lock(&j->lock);
    int n = j->free_top > 0 ? j->free_list[--j->free_top] : -1;
    pthread_mutex_unlock(&j->lock);
    if (n < 0)
        return -1;
    j->slots[n].attempt = attempt;
    atomic_store_explicit(&j->slots[n].seq, seq, memory_order_release);
    return n;
}

static _Atomic uint64_t *cancels_of(unsigned char *map)
{
    return (_Atomic uint64_t *)(void *)(map + JOURNAL_CANCELS_AT);
}

uint64_t jm__journal_cancels(const jm__journal *j)
{
    return j ? atomic_load_explicit(cancels_of(j->map), memory_order_acquire) : 0;
}

void jm__journal_bump(jm__journal *own, int64_t own_instance, const char *db_file,
                      int64_t instance)
{
    if (own && instance == own_instance) {
        atomic_fetch_add_explicit(cancels_of(own->map), 1, memory_order_acq_rel);
        return;
    }
    char path[4096];
    if (!db_file || jm__journal_path(db_file, instance, path, sizeof path) != 0)
        return;
    /* No journal (another host, an older owner, gone): the heartbeat
     * brings the cancel instead. */
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < JOURNAL_HEADER) {
        close(fd); /* still being made: no job of it has started */
        return;
    }
    void *map = mmap(NULL, JOURNAL_HEADER, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return;
    if (memcmp(map, JOURNAL_MAGIC, sizeof JOURNAL_MAGIC) == 0)
        atomic_fetch_add_explicit(cancels_of(map), 1, memory_order_acq_rel);
    munmap(map, JOURNAL_HEADER);
}

void jm__journal_clear(jm__journal *j, int n)
{
    if (!j || n < 0 || n >= JM_JOURNAL_SLOTS)
        return;
    atomic_store_explicit(&j->slots[n].seq, 0, memory_order_release);
    pthread_mutex_lock(&j->lock);
    j->free_list[j->free_top++] = n;
    pthread_mutex_unlock(&j->lock);
}

/* Reads the marked slots of a locked journal file. */
static int read_started(jm__journal_probe *p)
{
    size_t size = file_size();
    unsigned char *buf = jm__malloc(size);
    if (!buf)
        return jm__seterr(JM_ENOMEM, "out of memory reading a run journal");
    ssize_t got = pread(p->fd, buf, size, 0);
    if (got < (ssize_t)JOURNAL_HEADER || memcmp(buf, JOURNAL_MAGIC, sizeof JOURNAL_MAGIC) != 0) {
        /* Created but never set up: its owner died before starting a run. */
        jm__free(buf);
        return JM_OK;
    }
    size_t nslots = ((size_t)got - JOURNAL_HEADER) / 16;
    if (nslots > JM_JOURNAL_SLOTS)
        nslots = JM_JOURNAL_SLOTS;
    p->started = jm__calloc(nslots ? nslots : 1, sizeof *p->started);
    if (!p->started) {
        jm__free(buf);
        return jm__seterr(JM_ENOMEM, "out of memory reading a run journal");
    }
    for (size_t i = 0; i < nslots; i++) {
        int64_t attempt, seq;
        memcpy(&attempt, buf + JOURNAL_HEADER + i * 16, 8);
        memcpy(&seq, buf + JOURNAL_HEADER + i * 16 + 8, 8);
        if (seq > 0) {
            p->started[p->nstarted].seq = seq;
            p->started[p->nstarted].attempt = attempt;
            p->nstarted++;
        }
    }
    jm__free(buf);
    return JM_OK;
}

int jm__journal_look(const char *db_file, int64_t instance, jm__journal_probe *p)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->state = JM__JOURNAL_NONE;
    if (!db_file || jm__journal_path(db_file, instance, p->path, sizeof p->path) != 0)
        return JM_OK;
    /* A journal this process cannot open (another user's) says nothing:
     * the caller judges the owner by its pid, as without one. */
    p->fd = open(p->path, O_RDONLY | O_CLOEXEC);
    if (p->fd < 0)
        return JM_OK;
    if (flock(p->fd, LOCK_EX | LOCK_NB) != 0) {
        /* Held, or not lockable here: never take a possibly live owner's
         * jobs on a guess. */
        close(p->fd);
        p->fd = -1;
        p->state = JM__JOURNAL_ALIVE;
        return JM_OK;
    }
    p->state = JM__JOURNAL_DEAD;
    int rc = read_started(p);
    if (rc)
        jm__journal_probe_done(p, 0);
    return rc;
}

void jm__journal_probe_done(jm__journal_probe *p, int remove_file)
{
    if (p->fd >= 0) {
        /* Unlinked while still locked: no other recoverer can take it for
         * a live owner's file afterwards. */
        if (remove_file)
            unlink(p->path);
        close(p->fd);
    }
    p->fd = -1;
    jm__free(p->started);
    p->started = NULL;
    p->nstarted = 0;
}
