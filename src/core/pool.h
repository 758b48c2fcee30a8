/* The worker pool (pool.c): its threads, the ring of claimed jobs they take
 * from, and the state the run loop (loop.c) steers by. */
#ifndef JM_POOL_H
#define JM_POOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "jobmgr.h"
#include "registry.h"

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
    /* jm_config.high_workers: normal-class jobs run on at most
     * nworkers - high workers; these count them. */
    int high_workers;
    int executing_normal;
    size_t pending_normal;
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

int jm__pool_init(jm_manager *m);
/* Normal-class jobs that may still be claimed or started without taking a
 * worker kept for high-class ones; m->lock held. */
size_t jm__pool_normal_room(const jm__pool *p);
void jm__pool_destroy(jm_manager *m);
/* Sets the pool up for n workers and starts them; m->lock held. */
int jm__pool_begin(jm_manager *m, int n);
/* Whether the calling thread is one of m's workers (an executor). */
int jm__pool_on_worker(const jm_manager *m);
/* A job was created here: wake the run loop if it is due by run_at. */
void jm__pool_notify(jm_manager *m, int64_t run_at);
/* Flags the running context of `seq` cancelled (and nudges its executor). */
void jm__flag_cancel(jm_manager *m, int64_t seq);

/* The size of the claimed-jobs ring for n workers. */
size_t jm__prefetch_capacity(int nworkers);
/* The ring holds pending_cap entries; m->lock held. */
void jm__pool_push_pending(jm__pool *p, jm_job *job);
jm_job *jm__pool_pop_pending(jm__pool *p);

#endif
