/*
 * The run loop. One thread claims due jobs ahead of the workers and records
 * finished runs, both in one transaction per wake-up: while that
 * transaction commits, workers run the jobs already claimed and more
 * outcomes pile up for the next one (group commit). It also renews leases,
 * runs periodic recovery and drives shutdown. It never runs executors.
 *
 * How far ahead it claims adapts to the jobs: it keeps about
 * JM_PREFETCH_AHEAD_US of work per worker claimed (at most
 * JM_PREFETCH_PER_WORKER jobs), so short jobs travel many to a transaction
 * while long ones are claimed only for idle workers, and one process does
 * not hoard work other processes could run.
 */
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "ctx.h"
#include "job.h"
#include "log.h"
#include "loop.h"
#include "runner.h"

/* How long to wait before trying again to record outcomes that failed to
 * commit (e.g. the database was busy past its timeout). */
#define JM_COMMIT_RETRY_MS 100

size_t jm__prefetch_capacity(int nworkers)
{
    size_t n = (size_t)nworkers * JM_PREFETCH_PER_WORKER;
    if (n > JM_PREFETCH_MAX)
        n = JM_PREFETCH_MAX;
    return n < (size_t)nworkers ? (size_t)nworkers : n;
}

/* What the next claim asks for: `now` jobs of any type, one per idle
 * worker, and `ahead` more of the types known to run short (at most half
 * of JM_PREFETCH_AHEAD_US on average), enough to hold about
 * JM_PREFETCH_AHEAD_US of work per worker. A type that has not run here
 * yet counts as long: a burst of long jobs after short ones is claimed
 * only as workers free up. */
typedef struct claim_plan {
    size_t now, ahead;
    char ahead_types[JM_TYPE_SLOTS * 3 + 1];
} claim_plan;

static void plan_claim(jm_manager *m, claim_plan *c)
{
    jm__pool *p = &m->pool;
    size_t have = p->npending + (size_t)p->executing, workers = (size_t)p->nworkers;
    c->now = workers > have ? workers - have : 0;
    c->ahead = 0;
    c->ahead_types[0] = '\0';
    char all[JM_TYPE_SLOTS * 3 + 1];
    jm__registry_types(&m->registry, all);
    int64_t longest = 0;
    size_t len = 0;
    for (const char *t = all; t[0] && t[1]; t += t[2] ? 3 : 2) {
        char type[3] = {t[0], t[1], '\0'};
        int slot = jm__type_slot(type);
        int64_t us = slot >= 0 ? p->type_run_us[slot] : 0;
        if (us <= 0 || us > JM_PREFETCH_AHEAD_US / 2)
            continue;
        memcpy(c->ahead_types + len, t, 2);
        c->ahead_types[len + 2] = ',';
        len += 3;
        if (us > longest)
            longest = us;
    }
    if (!len)
        return;
    c->ahead_types[len - 1] = '\0';
    size_t per = (size_t)(JM_PREFETCH_AHEAD_US / longest);
    if (per > JM_PREFETCH_PER_WORKER)
        per = JM_PREFETCH_PER_WORKER;
    size_t target = per * workers;
    if (target > p->pending_cap)
        target = p->pending_cap;
    size_t total = target > have ? target - have : 0;
    c->ahead = total > c->now ? total - c->now : 0;
}

void jm__pool_push_pending(jm__pool *p, jm_job *job)
{
    p->pending[(p->pending_head + p->npending) % p->pending_cap] = job;
    p->npending++;
}

jm_job *jm__pool_pop_pending(jm__pool *p)
{
    jm_job *job = p->pending[p->pending_head];
    p->pending_head = (p->pending_head + 1) % p->pending_cap;
    p->npending--;
    return job;
}

static void timed_wait(jm_manager *m, int64_t until_mono)
{
    struct timespec ts;
    if (until_mono < 0)
        until_mono = 0;
    ts.tv_sec = (time_t)(until_mono / 1000);
    ts.tv_nsec = (long)(until_mono % 1000) * 1000000L;
    pthread_cond_timedwait(&m->pool.loop_cv, &m->lock, &ts);
}

/* Earliest moment a retried or continued job may be due again. */
static int64_t next_due_mono(jm_manager *m, const jm__outcome *list)
{
    int64_t best = INT64_MAX, now = jm__now(m), mono = jm__mono_ms();
    for (const jm__outcome *o = list; o; o = o->next) {
        if (o->f.status != JM_STATUS_RETRYING && o->f.status != JM_STATUS_QUEUED)
            continue;
        int64_t at = mono + (o->f.run_at > now ? o->f.run_at - now : 0);
        if (at < best)
            best = at;
    }
    return best;
}

/* One transaction: the finished runs so far, and the jobs `plan` asks for
 * (none if NULL). */
static void cycle(jm_manager *m, const claim_plan *plan)
{
    size_t want = plan ? plan->now + plan->ahead : 0;
    jm__pool *p = &m->pool;
    jm__outcome *list = p->done;
    size_t n = p->ndone;
    p->done = NULL;
    p->ndone = 0;
    if (want) {
        p->claim_now = 0;
        p->next_poll_mono = jm__mono_ms() + m->cfg.poll_interval_ms;
    }
    pthread_mutex_unlock(&m->lock);
    int64_t due = next_due_mono(m, list);
    jm_job **jobs = NULL;
    size_t got = 0;
    int claim_rc = JM_OK;
    int rc = jm__commit_cycle(m, list, n, plan ? plan->now : 0, plan ? plan->ahead : 0,
                              plan ? plan->ahead_types : NULL, &jobs, &got, &claim_rc);
    if (rc)
        jm__log(m, list ? JM_LOG_ERROR : JM_LOG_WARN, NULL,
                "recording %zu outcome(s) and claiming failed, will try again: %s", n,
                jm_last_error());
    else if (claim_rc)
        jm__log(m, JM_LOG_WARN, NULL, "claiming failed, will try again: %s", jm_last_error());
    pthread_mutex_lock(&m->lock);
    if (rc || claim_rc) {
        if (want) {
            /* Claim again soon, not in a spin and not only at the poll. */
            p->maybe_more = 0;
            p->idle_may_claim = 0;
            p->next_poll_mono = jm__mono_ms() + JM_COMMIT_RETRY_MS;
        }
        if (rc && list) {
            /* Put them back in front; the loop tries again after a pause.
             * A failed claim alone left them recorded (and freed). */
            jm__outcome *tail = list;
            while (tail->next)
                tail = tail->next;
            tail->next = p->done;
            p->done = list;
            p->ndone += n;
            p->commit_retry_mono = jm__mono_ms() + JM_COMMIT_RETRY_MS;
        }
        return;
    }
    if (got && m->active)
        jm__lose_older_runs(m, jobs, got);
    for (size_t i = 0; i < got; i++)
        jm__pool_push_pending(p, jobs[i]);
    jm__free(jobs);
    if (got)
        pthread_cond_broadcast(&p->work_cv);
    if (want) {
        p->maybe_more = got == want;
        /* The ahead pass only takes short types: a short fill of it says
         * nothing of other types. Only a first pass that came back short
         * (and so left nothing due of any type) does. */
        p->idle_may_claim = got >= plan->now;
    }
    if (due < p->next_poll_mono)
        p->next_poll_mono = due;
}

/* Puts claimed jobs that never started back, in one transaction: running ->
 * retrying without spending a retry (a standing cancel still wins). */
static void release_pending(jm_manager *m)
{
    jm__pool *p = &m->pool;
    jm__outcome *list = NULL;
    size_t n = 0;
    int64_t now = jm__now(m);
    while (p->npending) {
        jm_job *job = jm__pool_pop_pending(p);
        jm__outcome *o = jm__calloc(1, sizeof *o);
        if (!o) {
            /* Out of memory: leave the rest to recovery (their lease ends
             * with this manager); nothing is lost. */
            jm_job_free(job);
            continue;
        }
        o->job = job;
        o->slot = -1; /* never started */
        o->f.seq = job->seq;
        o->f.attempt = job->attempts;
        o->f.status = JM_STATUS_RETRYING;
        o->f.cancel_overrides = 1;
        o->f.keep_message = 1;
        o->f.retry_count = job->retry_count;
        o->f.run_at = now;
        o->f.progress = job->progress;
        o->f.now = now;
        o->next = list;
        list = o;
        n++;
    }
    if (!list)
        return;
    pthread_mutex_unlock(&m->lock);
    if (jm__commit_outcomes(m, list, n) != JM_OK) {
        jm__log(m, JM_LOG_WARN, NULL, "could not put %zu claimed job(s) back (recovery will): %s",
                n, jm_last_error());
        jm__outcome_free_list(list);
    }
    pthread_mutex_lock(&m->lock);
}

static void signal_shutdown(jm_manager *m)
{
    m->pool.shutdown_signalled = 1;
    for (jm_ctx *c = m->active; c; c = c->next)
        if (!c->inline_mode)
            jm__ctx_signal(c, 1);
}

void jm__loop_run(jm_manager *m)
{
    jm__pool *p = &m->pool;
    int64_t hb_every = jm__heartbeat_interval_ms(m);
    int64_t next_hb = jm__mono_ms() + hb_every;
    int64_t next_clock_check = 0;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        int64_t mono = jm__mono_ms();
        int stopping = p->state == JM__POOL_STOPPING;
        if (stopping) {
            if (!p->drain_started) {
                p->drain_started = 1;
                p->drain_deadline_mono = mono + p->drain_ms;
                release_pending(m);
                continue;
            }
            if (p->executing == 0 && p->npending == 0 && (!p->done || p->give_up_commit))
                break;
            if (!p->shutdown_signalled && mono >= p->drain_deadline_mono)
                signal_shutdown(m);
        }
        if (mono >= next_clock_check) {
            /* A step renews our leases at once (and rebases delays after a
             * step back), before anything is judged by the new time. */
            next_clock_check = mono + hb_every;
            pthread_mutex_unlock(&m->lock);
            int64_t step = jm__clock_watch(m);
            pthread_mutex_lock(&m->lock);
            if (step) {
                next_hb = mono + hb_every;
                p->claim_now = 1;
            }
            continue;
        }
        if (mono >= next_hb) {
            next_hb = mono + hb_every;
            /* Outcomes waiting to be recorded keep their leases too. */
            if (p->executing || p->npending || p->done || m->active) {
                pthread_mutex_unlock(&m->lock);
                jm__heartbeat(m);
                pthread_mutex_lock(&m->lock);
                continue;
            }
        }
        if (!stopping && mono >= atomic_load(&m->next_recovery_mono)) {
            pthread_mutex_unlock(&m->lock);
            jm__recover_if_due(m);
            pthread_mutex_lock(&m->lock);
            continue;
        }
        claim_plan plan = {0, 0, ""};
        if (!stopping)
            plan_claim(m, &plan);
        size_t want = plan.now + plan.ahead;
        /* Claim when told to (a local create), when the poll is due, or when
         * the queue runs low or a worker is idle and the last claim suggests
         * more are waiting. */
        int claim = want > 0 && (p->claim_now || mono >= p->next_poll_mono ||
                                 (p->maybe_more && p->npending < (size_t)p->nworkers) ||
                                 (p->idle_may_claim && plan.now > 0));
        int commit = p->done && mono >= p->commit_retry_mono;
        if (claim || commit) {
            cycle(m, claim ? &plan : NULL);
            continue;
        }
        int64_t until = next_hb < next_clock_check ? next_hb : next_clock_check;
        if (p->done && p->commit_retry_mono < until)
            until = p->commit_retry_mono;
        if (!stopping) {
            int64_t rec = atomic_load(&m->next_recovery_mono);
            if (rec < until)
                until = rec;
            if (want > 0 && p->next_poll_mono < until)
                until = p->next_poll_mono;
        } else if (!p->shutdown_signalled && p->drain_deadline_mono < until) {
            until = p->drain_deadline_mono;
        }
        if (stopping && p->shutdown_signalled && p->done && p->executing == 0 &&
            p->npending == 0) {
            /* Outcomes that still cannot be recorded after every job ended:
             * give up after one more try; recovery requeues those jobs. */
            p->give_up_commit = 1;
        }
        timed_wait(m, until);
    }
    /* Stop the workers (all idle now) and wait for them. */
    p->workers_exit = 1;
    pthread_cond_broadcast(&p->work_cv);
    int n = p->nworkers;
    pthread_mutex_unlock(&m->lock);
    for (int i = 0; i < n; i++)
        pthread_join(p->workers[i], NULL);
    pthread_mutex_lock(&m->lock);
    if (p->done) {
        jm__log(m, JM_LOG_ERROR, NULL,
                "%zu outcome(s) could not be recorded; recovery will requeue those jobs",
                p->ndone);
        jm__outcome_free_list(p->done);
        p->done = NULL;
        p->ndone = 0;
    }
    p->state = JM__POOL_IDLE;
    pthread_cond_broadcast(&p->stopped_cv);
    pthread_mutex_unlock(&m->lock);
}
