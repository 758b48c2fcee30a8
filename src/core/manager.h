/*
 * The manager: configuration, the store connection and its lock, the
 * executor registry, the run journal and the worker pool. Shared by the
 * core's files; hosts only see the opaque handle.
 */
#ifndef JM_MANAGER_H
#define JM_MANAGER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "journal.h"
#include "pool.h"
#include "registry.h"
#include "stats.h"
#include "throttle.h"
#include "jobmgr.h"
#include "store.h"
#include "write_queue.h"


/* Zones a manager keeps loaded for its schedules. */
#define JM__TZ_CACHE 16

struct jm_manager {
    jm_config cfg; /* strings point at the copies below */
    char *db_path;        /* the SQLite file, or the PostgreSQL URL */
    char *pg_schema;      /* NULL: the store's default */
    char *node_id;
    char *vfs;
    const jm__store_ops *ops;
    jm__store *store;
    /* The store connection is used by one thread at a time, in the order
     * they asked (a ticket lock): a plain mutex let a thread that releases
     * and retakes it at once (prune's batches, the run loop) starve the
     * others. */
    pthread_mutex_t db_lock;
    pthread_cond_t db_turn;
    uint64_t db_next_ticket;
    uint64_t db_serving;
    jm__write_queue writes; /* callers' writes, committed in groups */
    /* Wake-ups across processes (wake.c); NULL: none here, poll. */
    jm__wake *wake;
    pthread_t watch_thread;
    int watch_started;
    _Atomic int watch_stop;
    jm__registry registry;
    jm__owner owner;
    char *db_file;        /* the database file's full path; NULL in memory */
    jm__journal *journal; /* which claimed jobs started; NULL if it could not be made */
    /* A second connection, opened on first use, for the check a claimed
     * job passes right before it starts; never blocked by the writer. */
    pthread_mutex_t reader_lock;
    jm__store *reader;
    int reader_failed;
    /* The last reading of both clocks, to notice wall-clock steps. */
    pthread_mutex_t clock_lock;
    int64_t clock_wall, clock_mono;
    pthread_mutex_t lock; /* pool state and the active contexts */
    jm__pool pool;
    jm_ctx *active; /* contexts of jobs running in this manager */
    jm__outcome *unrecorded; /* jm_run_once outcomes not yet committed */
    uint64_t activations; /* counts jm__ctx_activate calls */
    _Atomic int64_t next_recovery_mono;
    _Atomic int64_t next_fire; /* wall ms of the next schedule fire; 0: none */
    /* Zones schedules use, read once (a zone is immutable once loaded). */
    pthread_mutex_t tz_lock;
    struct jm__tz *tz_cache[JM__TZ_CACHE];
    int ntz;
    jm__stats stats; /* counters for jm_stats() (stats.c) */
    jm__throttle throttle; /* I/O budgets by class (throttle.c) */
};

/* The manager's clock (cfg.now_ms or the system clock). */
int64_t jm__now(const jm_manager *m);
/* Monotonic milliseconds for timers that must not jump. */
int64_t jm__mono_ms(void);
int64_t jm__mono_us(void);

/* Lock helpers around the store connection. */
void jm__db_lock(jm_manager *m);
void jm__db_unlock(jm_manager *m);

/* Recovery (recovery.c). */
int jm__recover_all(jm_manager *m, int *recovered);
/* Runs recovery if its interval passed; errors are logged, not returned. */
void jm__recover_if_due(jm_manager *m);
int64_t jm__recovery_interval_ms(const jm_manager *m);
/* The process-wide set of live manager instances (for dead-owner checks). */
void jm__instance_add(int64_t instance);
void jm__instance_remove(int64_t instance);

/* Commits outcomes jm_run_once could not record earlier (run_once.c). */
int jm__flush_unrecorded(jm_manager *m);


#endif
