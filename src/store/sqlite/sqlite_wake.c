/*
 * Wake-ups across processes that share one jobs database on one host. A
 * small file beside the database (<db>-jm-wake) is mapped shared by every
 * manager; its first word counts commits that added due work, and idle
 * managers sleep on it with a futex, which works across processes because
 * the mapping is of one file. A poster bumps the counter and wakes the
 * sleepers only when one of another process sleeps (slots tell which),
 * so a process alone pays an atomic add and a short scan per create, no
 * system call. Where the file cannot be made or mapped (a read-only
 * directory, a database in memory) there is no channel and managers poll,
 * as they always could.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "futex.h"
#include "sqlite_internal.h"

#define WAKE_MAGIC UINT64_C(0x3165656b61776d6a) /* "jmwakee1" */
#define WAKE_SLOTS 64
#define WAKE_FILE_BYTES 4096

/* One sleeper's registration: which process, and whether it sleeps now. */
typedef struct wake_slot {
    _Atomic int32_t pid;
    _Atomic uint32_t sleeping;
} wake_slot;

typedef struct wake_page {
    _Atomic uint64_t magic;
    _Atomic uint32_t seq; /* the futex word */
    uint32_t reserved;
    wake_slot slots[WAKE_SLOTS];
} wake_page;

_Static_assert(sizeof(wake_page) <= WAKE_FILE_BYTES, "the wake page fits its file");

struct jm__wake {
    wake_page *page;
    int32_t pid;
    int slot; /* this handle's slot; -1: none free, it sleeps unregistered */
};

static int pid_dead(int32_t pid)
{
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

/* Frees the slots of processes that died (a sleeper killed in its sleep
 * would otherwise make every poster wake nobody forever). */
static void sweep_dead(wake_page *p)
{
    for (int i = 0; i < WAKE_SLOTS; i++) {
        int32_t pid = atomic_load(&p->slots[i].pid);
        if (pid_dead(pid)) {
            atomic_store(&p->slots[i].sleeping, 0);
            atomic_compare_exchange_strong(&p->slots[i].pid, &pid, 0);
        }
    }
}

static int claim_slot(wake_page *p, int32_t pid)
{
    sweep_dead(p);
    for (int i = 0; i < WAKE_SLOTS; i++) {
        int32_t free_pid = 0;
        if (atomic_compare_exchange_strong(&p->slots[i].pid, &free_pid, pid)) {
            atomic_store(&p->slots[i].sleeping, 0);
            return i;
        }
    }
    return -1;
}

int jm__sqlite_wake_open(jm__store *s, jm__wake **out)
{
    *out = NULL;
    const char *db = sqlite3_db_filename(s->db, "main");
    if (!db || !*db)
        return jm__seterr(JM_EINVAL, "no wake-up channel: the database has no file");
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s-jm-wake", db) >= (int)sizeof path)
        return jm__seterr(JM_EINVAL, "no wake-up channel: the path is too long");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return jm__seterr(JM_EIO, "no wake-up channel: opening %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (st.st_size < WAKE_FILE_BYTES && ftruncate(fd, WAKE_FILE_BYTES) != 0)) {
        int e = errno;
        close(fd);
        return jm__seterr(JM_EIO, "no wake-up channel: sizing %s: %s", path, strerror(e));
    }
    void *map = mmap(NULL, WAKE_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return jm__seterr(JM_EIO, "no wake-up channel: mapping %s: %s", path, strerror(e));
    wake_page *p = map;
    /* A new file is zeros, a valid empty page: whoever comes first marks it. */
    uint64_t magic = 0;
    if (!atomic_compare_exchange_strong(&p->magic, &magic, WAKE_MAGIC) && magic != WAKE_MAGIC) {
        munmap(map, WAKE_FILE_BYTES);
        return jm__seterr(JM_EINVAL, "no wake-up channel: %s is not a jobmgr wake file", path);
    }
    jm__wake *w = jm__calloc(1, sizeof *w);
    if (!w) {
        munmap(map, WAKE_FILE_BYTES);
        return jm__seterr(JM_ENOMEM, "out of memory opening the wake-up channel");
    }
    w->page = p;
    w->pid = (int32_t)getpid();
    w->slot = claim_slot(p, w->pid);
    *out = w;
    return JM_OK;
}

int jm__sqlite_wake_sleepers(jm__wake *w)
{
    int n = 0;
    for (int i = 0; i < WAKE_SLOTS; i++)
        n += atomic_load(&w->page->slots[i].sleeping) != 0;
    return n;
}

void jm__sqlite_wake_close(jm__wake *w)
{
    if (!w)
        return;
    if (w->slot >= 0) {
        atomic_store(&w->page->slots[w->slot].sleeping, 0);
        atomic_store(&w->page->slots[w->slot].pid, 0);
    }
    munmap(w->page, WAKE_FILE_BYTES);
    jm__free(w);
}

uint64_t jm__sqlite_wake_seq(jm__wake *w)
{
    return atomic_load(&w->page->seq);
}

void jm__sqlite_wake_post(jm__wake *w)
{
    wake_page *p = w->page;
    atomic_fetch_add(&p->seq, 1);
    /* seq_cst on both sides: a sleeper either sees the new count before it
     * sleeps, or is marked sleeping before this scan reads its slot. */
    for (int i = 0; i < WAKE_SLOTS; i++) {
        if (atomic_load(&p->slots[i].sleeping) && atomic_load(&p->slots[i].pid) != w->pid) {
            jm__futex_wake_all(&p->seq, 1);
            return;
        }
    }
}

int jm__sqlite_wake_wait(jm__wake *w, uint64_t *seen, int64_t timeout_ms)
{
    wake_page *p = w->page;
    uint32_t expect = (uint32_t)*seen;
    wake_slot *slot = w->slot >= 0 ? &p->slots[w->slot] : NULL;
    if (slot)
        atomic_store(&slot->sleeping, 1);
    uint32_t now = atomic_load(&p->seq);
    if (now == expect && timeout_ms > 0) {
        struct timespec ts = {(time_t)(timeout_ms / 1000), (long)(timeout_ms % 1000) * 1000000L};
        jm__futex_wait(&p->seq, expect, &ts, 1);
        now = atomic_load(&p->seq);
    }
    if (slot)
        atomic_store(&slot->sleeping, 0);
    if (now == expect) {
        sweep_dead(p);
        return 0;
    }
    *seen = now;
    return 1;
}

/* A bump, not only a wake: a waiter that has read the count but not yet
 * gone to sleep then finds it changed and returns at once. Other
 * processes' sleepers wake for nothing and sleep again. */
void jm__sqlite_wake_interrupt(jm__wake *w)
{
    atomic_fetch_add(&w->page->seq, 1);
    jm__futex_wake_all(&w->page->seq, 1);
}
