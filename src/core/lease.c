/*
 * Leases: a claimed job's row names its owner (node, pid, instance) and
 * holds a lease the owner renews every third of cfg.lease_ms, for every job
 * it holds: running, claimed ahead, or finished with the outcome not yet
 * recorded. The renewal also tells running jobs of cancel requests and of
 * claims they lost. A step of the wall clock renews at once, before anyone
 * judges our leases by the new time.
 */
#include "lease.h"

#include "alloc.h"
#include "ctx.h"
#include "error.h"
#include "job.h"
#include "log.h"

int64_t jm__heartbeat_interval_ms(const jm_manager *m)
{
    return m->cfg.lease_ms / 3;
}

int jm__holds_claims(jm_manager *m)
{
    pthread_mutex_lock(&m->lock);
    const jm__pool *p = &m->pool;
    int held = p->executing || p->npending || p->done || m->active || m->unrecorded;
    pthread_mutex_unlock(&m->lock);
    return held;
}

void jm__heartbeat(jm_manager *m)
{
    pthread_mutex_lock(&m->lock);
    uint64_t mark = m->activations;
    pthread_mutex_unlock(&m->lock);
    int64_t now = jm__now(m);
    jm__lease_info *infos = NULL;
    size_t n = 0;
    jm__db_lock(m);
    int rc = m->ops->renew(m->store, &m->owner, now, now + m->cfg.lease_ms, &infos, &n);
    jm__db_unlock(m);
    if (rc) {
        jm__log(m, JM_LOG_WARN, NULL, "lease renewal failed, will try again: %s",
                jm_last_error());
        return;
    }
    pthread_mutex_lock(&m->lock);
    for (jm_ctx *c = m->active; c; c = c->next) {
        /* A job activated after `mark` may have been claimed after the
         * renewal read the table; it is judged next time. */
        if (c->activation > mark)
            continue;
        /* The row must still be this run's claim: a row the same instance
         * claimed again after a takeover belongs to the newer run. */
        const jm__lease_info *hit = NULL;
        for (size_t i = 0; i < n && !hit; i++)
            if (infos[i].seq == c->job->seq && infos[i].attempt == c->job->attempts)
                hit = &infos[i];
        if (hit && hit->cancel_requested) {
            jm__ctx_signal(c, 0);
        } else if (hit && hit->pause_requested) {
            if (!atomic_exchange(&c->paused, 1))
                jm__throttle_wake(m);
        } else if (!hit && !atomic_exchange(&c->lost, 1)) {
            jm__log(m, JM_LOG_WARN, c->job->id,
                    "lease lost: the job was recovered elsewhere; asking it to stop");
            jm__throttle_wake(m);
        }
    }
    pthread_mutex_unlock(&m->lock);
    jm__free(infos);
}

void jm__lose_older_runs(jm_manager *m, jm_job *const *claimed, size_t n)
{
    for (jm_ctx *c = m->active; c; c = c->next)
        for (size_t i = 0; i < n; i++)
            if (claimed[i]->seq == c->job->seq && claimed[i]->attempts > c->job->attempts &&
                !atomic_exchange(&c->lost, 1)) {
                jm__log(m, JM_LOG_WARN, c->job->id,
                        "lease lost: the job was taken over and claimed again; asking it "
                        "to stop");
                jm__throttle_wake(m);
            }
}

int64_t jm__clock_watch(jm_manager *m)
{
    int64_t wall = jm__now(m), mono = jm__mono_ms();
    pthread_mutex_lock(&m->clock_lock);
    int64_t step = (wall - m->clock_wall) - (mono - m->clock_mono);
    m->clock_wall = wall;
    m->clock_mono = mono;
    pthread_mutex_unlock(&m->clock_lock);
    int64_t limit = m->cfg.lease_ms / 4 < JM_CLOCK_STEP_MS ? m->cfg.lease_ms / 4
                                                           : JM_CLOCK_STEP_MS;
    if (step <= limit && step >= -limit)
        return 0;
    jm__log(m, JM_LOG_DEBUG, NULL, "the wall clock stepped %lld ms", (long long)step);
    /* Before anyone judges our leases by the new time. */
    if (jm__holds_claims(m))
        jm__heartbeat(m);
    if (step < 0) {
        int changed = 0;
        jm__db_lock(m);
        int rc = m->ops->rebase(m->store, wall, &changed);
        jm__db_unlock(m);
        if (rc)
            jm__log(m, JM_LOG_WARN, NULL, "could not rebase delays after a clock step: %s",
                    jm_last_error());
        else if (changed)
            jm__log(m, JM_LOG_WARN, NULL,
                    "the wall clock stepped back %lld ms: %d delayed job(s) keep their delays",
                    (long long)-step, changed);
    }
    return step;
}
