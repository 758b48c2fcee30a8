/* The context an executor sees while it runs one job. */
#ifndef JM_CTX_H
#define JM_CTX_H

#include <stdatomic.h>
#include <stdint.h>

#include "registry.h"
#include "jobmgr.h"

typedef struct jm__strf_node jm__strf_node;

struct jm_ctx {
    jm_manager *m;
    jm_job *job;
    cJSON *params;
    jm__executor_entry entry;
    /* Whoever sets one of these four from another thread then calls
     * jm__throttle_wake(m), so a job waiting in jm_ctx_throttle() sees it. */
    _Atomic int cancelled; /* a cancel request reached this run */
    _Atomic int shutdown;  /* the manager is stopping */
    _Atomic int lost;      /* the lease was lost: another worker may own the job */
    _Atomic int paused;    /* a pause request reached this run */
    int inline_mode;       /* jm_run_once: no loop thread renews the lease */
    int64_t next_heartbeat_mono;
    double progress;
    int64_t progress_saved_mono;
    jm__strf_node *strs;
    uint64_t activation; /* m->activations when it became active */
    uint64_t seen_cancels; /* the run journal's cancel counter its row was read at */
    jm_ctx *prev, *next; /* the manager's active list */
};

/* Prepares ctx for `job`; the caller has looked up the executor. */
void jm__ctx_init(jm_ctx *ctx, jm_manager *m, jm_job *job, cJSON *params,
                  const jm__executor_entry *entry, int inline_mode);
/* Frees what the run allocated (jm_ctx_strf strings); not the job. */
void jm__ctx_release(jm_ctx *ctx);
/* Adds/removes ctx in the manager's active list (under m->lock). */
void jm__ctx_activate(jm_ctx *ctx);
void jm__ctx_deactivate(jm_ctx *ctx);
/* Sets the cancel flag, calls the executor's cancel hook once and wakes
 * the job if it waits in jm_ctx_throttle(). Caller holds m->lock. */
void jm__ctx_signal(jm_ctx *ctx, int shutdown);

#endif
