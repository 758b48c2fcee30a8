/*
 * Checkpoints the jobs database's write-ahead log on a thread and a
 * connection of its own.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses its
 * threshold, on the committing connection: here the store's one
 * connection, which every create, claim and outcome takes in turn.
 * Copying a thousand pages back and syncing the file took up to 100 ms,
 * and a create could wait that long behind it. A checkpoint takes no write
 * lock, so on its own connection it runs beside the writers: the store's
 * commit hook wakes this thread at JM_WAL_CHECKPOINT_PAGES.
 *
 * The log only starts over when a checkpoint has copied every frame and
 * no commit came in between, which under a steady stream of commits a
 * checkpoint beside them never achieves. So once the thread has copied
 * all but JM_WAL_FINISH_PAGES, the next commit finishes the job itself:
 * what is left is short to copy and sync. The thread runs only while more
 * than that is left (every pass ends in a sync of the database file).
 * Should it fall far behind, at JM_WAL_MAX_PAGES the commit checkpoints
 * regardless, which bounds the log.
 *
 * If the thread or its connection cannot be had, the store keeps SQLite's
 * automatic checkpoint: slower to wait for, never a growing log.
 */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "alloc.h"
#include "sqlite_internal.h"

/* WAL pages that wake the checkpointer: SQLite's own default threshold. */
#define JM_WAL_CHECKPOINT_PAGES 1000
/* What a commit may be left to copy when it finishes a checkpoint. */
#define JM_WAL_FINISH_PAGES 256
/* The log's bound (64 MiB of 4 KiB pages). */
#define JM_WAL_MAX_PAGES 16000

struct jm__wal_checkpointer {
    sqlite3 *db; /* used by the thread only */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    pthread_cond_t passed; /* a checkpoint pass ended */
    int wanted;
    int stop;
    int in_pass;    /* a checkpoint is under way */
    uint64_t passes; /* checkpoint passes ended */
    int log_pages;    /* the log's size at the thread's last checkpoint */
    int copied_pages; /* ... and how much of it was copied then */
    int commit_pages; /* the log's size at the last commit */
};

/* Pages of the log not known copied; c->lock held. A larger log at the
 * thread's last pass than now means the log has started over since:
 * nothing of this one is known copied. */
static int uncopied(const jm__wal_checkpointer *c, int pages)
{
    return pages - (c->log_pages <= pages ? c->copied_pages : 0);
}

/* Called by SQLite after each commit on the store's connection, with the
 * log's size in pages. */
static int on_commit(void *arg, sqlite3 *db, const char *schema, int pages)
{
    jm__wal_checkpointer *c = arg;
    pthread_mutex_lock(&c->lock);
    if (pages < c->commit_pages) {
        /* The log started over: what the thread copied was of the old. */
        c->log_pages = 0;
        c->copied_pages = 0;
    }
    c->commit_pages = pages;
    if (pages < JM_WAL_CHECKPOINT_PAGES) {
        pthread_mutex_unlock(&c->lock);
        return SQLITE_OK;
    }
    int left = uncopied(c, pages);
    if (left > JM_WAL_FINISH_PAGES) {
        c->wanted = 1;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->lock);
    /* Busy (the thread is mid-checkpoint) is fine: the next commit asks
     * again. */
    if (left <= JM_WAL_FINISH_PAGES || pages >= JM_WAL_MAX_PAGES)
        sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

static void *run(void *arg)
{
    jm__wal_checkpointer *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->wanted && !c->stop)
            pthread_cond_wait(&c->cv, &c->lock);
        if (c->stop)
            break;
        c->wanted = 0;
        /* Commits during the last pass may have left little to copy: the
         * next commit finishes that, with one sync instead of two. */
        if (uncopied(c, c->commit_pages) <= JM_WAL_FINISH_PAGES)
            continue;
        c->in_pass = 1;
        pthread_mutex_unlock(&c->lock);
        /* PASSIVE never waits for readers or writers. A failure (another
         * process checkpointing, an I/O error) leaves the log as it was;
         * the next commit past the threshold asks again. */
        int log = 0, copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log,
                                           &copied);
        pthread_mutex_lock(&c->lock);
        if (rc == SQLITE_OK) {
            c->log_pages = log;
            c->copied_pages = copied;
        }
        c->in_pass = 0;
        c->passes++;
        pthread_cond_broadcast(&c->passed);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

void jm__wal_checkpointer_start(jm__store *s, const char *path, const char *vfs)
{
    jm__wal_checkpointer *c = jm__calloc(1, sizeof *c);
    if (!c)
        return;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    /* FULL: the copied pages reach the disk before the log may start over,
     * whatever this build of SQLite defaults to. */
    if (sqlite3_open_v2(path, &c->db, flags, vfs) != SQLITE_OK ||
        sqlite3_exec(c->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (pthread_mutex_init(&c->lock, NULL))
        goto fail;
    if (pthread_cond_init(&c->cv, NULL)) {
        pthread_mutex_destroy(&c->lock);
        goto fail;
    }
    if (pthread_cond_init(&c->passed, NULL)) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->lock);
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, run, c)) {
        pthread_cond_destroy(&c->passed);
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->lock);
        goto fail;
    }
    /* Replaces SQLite's automatic checkpoint on the store's connection. */
    sqlite3_wal_hook(s->db, on_commit, c);
    s->wal = c;
    return;
fail:
    sqlite3_close(c->db);
    jm__free(c);
}

void jm__wal_checkpointer_stop(jm__store *s)
{
    jm__wal_checkpointer *c = s->wal;
    if (!c)
        return;
    /* Back to SQLite's own checkpoint for whatever the connection still
     * commits; closing the last connection checkpoints the rest. */
    sqlite3_wal_autocheckpoint(s->db, JM_WAL_CHECKPOINT_PAGES);
    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->passed);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->lock);
    sqlite3_close(c->db);
    jm__free(c);
    s->wal = NULL;
}

void jm__wal_settle(jm__store *s, int64_t max_wait_ms)
{
    jm__wal_checkpointer *c = s->wal;
    if (!c)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(max_wait_ms / 1000);
    until.tv_nsec += (long)(max_wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->lock);
    /* One whole pass begun after this call is enough: a reader holding an
     * old snapshot (in another process, say) can keep any pass from
     * copying everything, and the caller must not wait on it for long. */
    uint64_t enough = c->passes + (c->in_pass ? 2 : 1);
    if (c->commit_pages >= JM_WAL_CHECKPOINT_PAGES &&
        uncopied(c, c->commit_pages) > JM_WAL_FINISH_PAGES) {
        c->wanted = 1;
        pthread_cond_signal(&c->cv);
    }
    while (!c->stop && c->passes < enough && c->commit_pages >= JM_WAL_CHECKPOINT_PAGES &&
           uncopied(c, c->commit_pages) > JM_WAL_FINISH_PAGES)
        if (pthread_cond_timedwait(&c->passed, &c->lock, &until))
            break;
    pthread_mutex_unlock(&c->lock);
}
