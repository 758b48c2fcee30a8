/*
 * The manager: configuration, the store connection and its lock, the
 * executor registry and the worker pool's shared state. Shared by the core's
 * files; hosts only see the opaque handle.
 */
#ifndef JM_MANAGER_H
#define JM_MANAGER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "journal.h"
#include "registry.h"
#include "stats.h"
#include "jobmgr.h"
#include "store.h"

typedef struct jm__outcome jm__outcome;

typedef enum { JM__POOL_IDLE, JM__POOL_RUNNING, JM__POOL_STOPPING } jm__pool_state;

typedef struct jm__pool {
    jm__pool_state state;
    int nworkers;
    pthread_t *workers;
    pthread_t loop_thread;
    int loop_thread_started; /* jm_start: someone must join it */
    jm_job **pending;        /* claimed, waiting for a worker: a ring */
    size_t pending_cap;
    size_t pending_head;
    size_t npending;
    /* Moving average run time per type, 0 until one ran: how far ahead the
     * loop claims (loop.c). */
    int64_t type_run_us[JM_TYPE_SLOTS];
    int executing;
    jm__outcome *done; /* finished runs waiting for the group commit */
    size_t ndone;
    int claim_now;          /* a local create or a full claim: look again now */
    int64_t next_poll_mono; /* monotonic ms */
    int64_t drain_ms;
    int drain_started;
    int64_t drain_deadline_mono;
    int shutdown_signalled;
    int workers_exit;
    int maybe_more;            /* the last claim was full: more may be due */
    int idle_may_claim;        /* ... its any-type pass was: jobs an idle
                                  worker could run may be due */
    int64_t commit_retry_mono; /* outcomes that failed to commit wait until then */
    int give_up_commit;        /* stopping, and outcomes still cannot be committed */
    pthread_cond_t loop_cv;    /* the loop waits for work to do */
    pthread_cond_t work_cv;    /* workers wait for jobs */
    pthread_cond_t stopped_cv; /* jm_stop waits for the pool to stop */
} jm__pool;

struct jm_manager {
    jm_config cfg; /* strings point at the copies below */
    char *db_path;
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
    jm__stats stats; /* counters for jm_stats() (stats.c) */
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
/* Compares the wall clock with the monotonic one since the last call. A
 * step of more than JM_CLOCK_STEP_MS either way renews this manager's
 * leases at once; a step back also rebases relative delays (retry
 * backoffs, continue delays) so they stay relative. Returns the step in ms
 * (0: none). */
int64_t jm__clock_watch(jm_manager *m);
/* How far the two clocks may drift apart between readings before it counts
 * as a step. */
#define JM_CLOCK_STEP_MS 1000
int64_t jm__recovery_interval_ms(const jm_manager *m);
int64_t jm__heartbeat_interval_ms(const jm_manager *m);
/* The process-wide set of live manager instances (for dead-owner checks). */
void jm__instance_add(int64_t instance);
void jm__instance_remove(int64_t instance);

/* Commits outcomes jm_run_once could not record earlier (run_once.c). */
int jm__flush_unrecorded(jm_manager *m);

/* Pool hooks (pool.c). */
int jm__pool_init(jm_manager *m);
void jm__pool_destroy(jm_manager *m);
/* A job was created here: wake the run loop if it is due by run_at. */
void jm__pool_notify(jm_manager *m, int64_t run_at);
/* Flags the running context of `seq` cancelled (and nudges its executor). */
void jm__flag_cancel(jm_manager *m, int64_t seq);
/* Renews the leases of every job this manager holds (running, claimed
 * ahead, or finished with the outcome not yet recorded); flags cancel
 * requests and lost leases of running jobs. */
void jm__heartbeat(jm_manager *m);
/* Whether this manager holds any claim (running, waiting, or an outcome
 * not yet recorded). */
int jm__holds_claims(jm_manager *m);
/* Tells runs of this manager that an older claim of a job just claimed
 * again is lost (a takeover by another node); m->lock held. */
void jm__lose_older_runs(jm_manager *m, jm_job *const *claimed, size_t n);

#endif
