/*
 * The worker pool: the worker threads, the ring of claimed jobs they take
 * from, wake-ups from local creates and cancel flags. jm_start, jm_run and
 * jm_stop (run.c) start and stop it with the run loop (loop.c) that claims
 * and commits; lease renewal is in lease.c. Workers only execute. A job is reported
 * finished only once its outcome is committed; until then its row stays
 * running under this manager's lease, so a crash means a re-run, never a
 * lost job.
 */
#include "pool.h"

#include <time.h>

#include "alloc.h"
#include "claim.h"
#include "ctx.h"
#include "error.h"
#include "job.h"
#include "log.h"
#include "runner.h"

static _Thread_local jm_manager *tl_worker_of;

int jm__pool_init(jm_manager *m)
{
    jm__pool *p = &m->pool;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return jm__seterr(JM_ENOMEM, "cannot create the pool's condition variables");
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int ok = pthread_cond_init(&p->loop_cv, &attr) == 0;
    ok &= pthread_cond_init(&p->work_cv, NULL) == 0;
    ok &= pthread_cond_init(&p->stopped_cv, NULL) == 0;
    pthread_condattr_destroy(&attr);
    p->state = JM__POOL_IDLE;
    return ok ? JM_OK : jm__seterr(JM_ENOMEM, "cannot create the pool's condition variables");
}

void jm__pool_destroy(jm_manager *m)
{
    jm__pool *p = &m->pool;
    pthread_cond_destroy(&p->loop_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->stopped_cv);
    jm__free(p->pending);
    jm__free(p->workers);
    p->pending = NULL;
    p->workers = NULL;
}

void jm__pool_notify(jm_manager *m, int64_t run_at)
{
    int64_t now = jm__now(m);
    pthread_mutex_lock(&m->lock);
    jm__pool *p = &m->pool;
    if (p->state == JM__POOL_RUNNING) {
        if (run_at <= now) {
            p->claim_now = 1;
        } else {
            int64_t at = jm__mono_ms() + (run_at - now);
            if (at < p->next_poll_mono)
                p->next_poll_mono = at;
        }
        pthread_cond_signal(&p->loop_cv);
    }
    pthread_mutex_unlock(&m->lock);
}

void jm__flag_cancel(jm_manager *m, int64_t seq)
{
    pthread_mutex_lock(&m->lock);
    for (jm_ctx *c = m->active; c; c = c->next)
        if (c->job->seq == seq)
            jm__ctx_signal(c, 0);
    pthread_mutex_unlock(&m->lock);
}




/* ---- the claimed-jobs ring ---- */

size_t jm__prefetch_capacity(int nworkers)
{
    size_t n = (size_t)nworkers * JM_PREFETCH_PER_WORKER;
    if (n > JM_PREFETCH_MAX)
        n = JM_PREFETCH_MAX;
    return n < (size_t)nworkers ? (size_t)nworkers : n;
}

size_t jm__pool_normal_room(const jm__pool *p)
{
    size_t cap = (size_t)(p->nworkers - p->high_workers);
    size_t have = (size_t)p->executing_normal + p->pending_normal;
    return cap > have ? cap - have : 0;
}

void jm__pool_push_pending(jm__pool *p, jm_job *job)
{
    p->pending_normal += !job->high;
    p->pending[(p->pending_head + p->npending) % p->pending_cap] = job;
    p->npending++;
}

jm_job *jm__pool_pop_pending(jm__pool *p)
{
    jm_job *job = p->pending[p->pending_head];
    p->pending_head = (p->pending_head + 1) % p->pending_cap;
    p->npending--;
    p->pending_normal -= !job->high;
    return job;
}

/* The next job a worker may start: the first in the ring, or while the
 * normal-class jobs fill every worker not kept for high ones, the first
 * high one (moved to the front, the others keeping their order). NULL if
 * none. */
static jm_job *take_pending(jm__pool *p)
{
    if (p->npending == 0)
        return NULL;
    if (!p->high_workers || p->executing_normal < p->nworkers - p->high_workers)
        return jm__pool_pop_pending(p);
    for (size_t i = 0; i < p->npending; i++) {
        size_t at = (p->pending_head + i) % p->pending_cap;
        jm_job *job = p->pending[at];
        if (!job->high)
            continue;
        for (size_t k = i; k > 0; k--) {
            size_t to = (p->pending_head + k) % p->pending_cap;
            p->pending[to] = p->pending[(p->pending_head + k - 1) % p->pending_cap];
        }
        p->pending[p->pending_head] = job;
        return jm__pool_pop_pending(p);
    }
    return NULL;
}

/* ---- workers ---- */

int jm__pool_on_worker(const jm_manager *m)
{
    return tl_worker_of == m;
}

static void *worker_main(void *arg)
{
    jm_manager *m = arg;
    jm__pool *p = &m->pool;
    tl_worker_of = m;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        jm_job *job;
        while (!(job = take_pending(p)) && !(p->workers_exit && p->npending == 0))
            pthread_cond_wait(&p->work_cv, &m->lock);
        if (!job)
            break;
        int slot = jm__type_slot(job->type);
        int normal = !job->high;
        p->executing++;
        p->executing_normal += normal;
        pthread_mutex_unlock(&m->lock);
        int64_t t0 = jm__mono_us();
        jm__outcome *o = jm__run_job(m, job, 0);
        int64_t took = jm__mono_us() - t0;
        pthread_mutex_lock(&m->lock);
        p->executing--;
        p->executing_normal -= normal;
        /* A worker waiting for a normal job's turn may take it now. */
        if (normal && p->high_workers && p->pending_normal)
            pthread_cond_broadcast(&p->work_cv);
        /* Claims took only high-class jobs while normal ones had no room:
         * now they have, claim them with this outcome's commit. */
        if (normal && p->high_workers && jm__pool_normal_room(p) == 1)
            p->claim_now = 1;
        /* Moving average (1/8 weight) per type: how far ahead the loop
         * claims. */
        if (slot >= 0) {
            int64_t *avg = &p->type_run_us[slot];
            *avg = *avg ? *avg + (took - *avg) / 8 : took;
            if (*avg < 1)
                *avg = 1;
        }
        if (o) {
            o->next = p->done;
            p->done = o;
            p->ndone++;
        }
        pthread_cond_signal(&p->loop_cv);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}



int jm__pool_begin(jm_manager *m, int n)
{
    jm__pool *p = &m->pool;
    if (p->state == JM__POOL_RUNNING)
        return jm__seterr(JM_EBUSY, "the manager is already running");
    if (p->state == JM__POOL_STOPPING)
        return jm__seterr(JM_ESTOPPED, "the manager is stopping");
    jm__free(p->pending);
    jm__free(p->workers);
    p->pending_cap = jm__prefetch_capacity(n);
    p->pending = jm__calloc(p->pending_cap, sizeof *p->pending);
    p->workers = jm__calloc((size_t)n, sizeof *p->workers);
    if (!p->pending || !p->workers)
        return jm__seterr(JM_ENOMEM, "out of memory starting workers");
    p->nworkers = 0;
    p->npending = 0;
    p->pending_head = 0;
    p->executing = 0;
    p->executing_normal = 0;
    p->pending_normal = 0;
    p->high_workers = m->cfg.high_workers;
    p->claim_now = 1;
    p->maybe_more = 0;
    p->idle_may_claim = 0;
    p->next_poll_mono = 0;
    p->drain_started = 0;
    p->shutdown_signalled = 0;
    p->workers_exit = 0;
    p->give_up_commit = 0;
    p->commit_retry_mono = 0;
    p->state = JM__POOL_RUNNING;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&p->workers[i], NULL, worker_main, m) != 0)
            break;
        p->nworkers++;
    }
    if (p->nworkers == n)
        return JM_OK;
    p->workers_exit = 1;
    pthread_cond_broadcast(&p->work_cv);
    int started = p->nworkers;
    pthread_mutex_unlock(&m->lock);
    for (int i = 0; i < started; i++)
        pthread_join(p->workers[i], NULL);
    pthread_mutex_lock(&m->lock);
    p->state = JM__POOL_IDLE;
    return jm__seterr(JM_ENOMEM, "cannot start worker threads");
}
