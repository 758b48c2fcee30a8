/*
 * The run loop. One thread claims due jobs ahead of the workers and records
 * finished runs, both in one transaction per wake-up: while that
 * transaction commits, workers run the jobs already claimed and more
 * outcomes pile up for the next one (group commit). It also renews leases,
 * runs periodic recovery and drives shutdown. It never runs executors.
 *
 * Each turn runs the phases in order, as jm__loop_run shows: drain (when
 * stopping), clock, leases, recovery, schedules, policies, claim-or-commit,
 * wait. A phase that
 * did work starts the next turn at once, so every decision is taken on a
 * fresh clock reading; only the wait phase sleeps. m->lock is held except
 * while a phase talks to the store.
 */
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "claim.h"
#include "ctx.h"
#include "job.h"
#include "lease.h"
#include "log.h"
#include "loop.h"
#include "runner.h"
#include "policy.h"
#include "schedule.h"
#include "wake.h"

/* How long to wait before trying again to record outcomes that failed to
 * commit (e.g. the database was busy past its timeout). */
#define JM_COMMIT_RETRY_MS 100


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
static void cycle(jm_manager *m, const jm__claim_plan_t *plan)
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
    int rc = jm__commit_cycle(m, list, n, plan ? plan->now : 0,
                              plan && plan->now_types[0] ? plan->now_types : NULL,
                              plan ? plan->ahead : 0, plan ? plan->ahead_types : NULL, &jobs,
                              &got, &claim_rc);
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
    char high[JM_TYPE_SLOTS * 3 + 1] = "";
    if (got && p->high_workers)
        jm__registry_high_types(&m->registry, high);
    for (size_t i = 0; i < got; i++) {
        jobs[i]->high = high[0] && jm__types_have(high, jobs[i]->type);
        jm__pool_push_pending(p, jobs[i]);
    }
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

/* The loop's own timers and this turn's view of the pool. */
typedef struct loop_turn {
    int64_t mono;             /* monotonic ms at the start of the turn */
    int stopping;             /* jm_stop was called */
    int64_t hb_every;         /* lease renewal interval */
    int64_t next_hb;          /* next lease renewal */
    int64_t next_clock_check; /* next comparison of the two clocks */
    int64_t next_schedule_read; /* next reading of the next fire time */
    int64_t fire_retry;       /* no fire before this (a due schedule left to others) */
    int policies;             /* cfg.host serves policies */
    int64_t next_policy;      /* next evaluation of the policies */
    size_t want;              /* jobs the last claim plan asked for */
} loop_turn;

typedef enum { PHASE_IDLE, PHASE_WORKED, PHASE_EXIT } phase_result;

/* Stopping: put claimed jobs back once, wait for running ones until the
 * drain deadline, then tell them to stop; exit when nothing is left. */
static phase_result drain_phase(jm_manager *m, loop_turn *t)
{
    jm__pool *p = &m->pool;
    if (!t->stopping)
        return PHASE_IDLE;
    if (!p->drain_started) {
        p->drain_started = 1;
        p->drain_deadline_mono = t->mono + p->drain_ms;
        release_pending(m);
        return PHASE_WORKED;
    }
    if (p->executing == 0 && p->npending == 0 && (!p->done || p->give_up_commit))
        return PHASE_EXIT;
    if (!p->shutdown_signalled && t->mono >= p->drain_deadline_mono)
        signal_shutdown(m);
    return PHASE_IDLE;
}

/* A step of the wall clock renews our leases at once (and rebases delays
 * after a step back), before anything is judged by the new time. */
static phase_result clock_phase(jm_manager *m, loop_turn *t)
{
    if (t->mono < t->next_clock_check)
        return PHASE_IDLE;
    t->next_clock_check = t->mono + t->hb_every;
    pthread_mutex_unlock(&m->lock);
    int64_t step = jm__clock_watch(m);
    pthread_mutex_lock(&m->lock);
    if (step) {
        t->next_hb = t->mono + t->hb_every;
        m->pool.claim_now = 1;
    }
    return PHASE_WORKED;
}

/* Renews the leases of every job held; outcomes waiting to be recorded
 * keep theirs too. */
static phase_result lease_phase(jm_manager *m, loop_turn *t)
{
    jm__pool *p = &m->pool;
    if (t->mono < t->next_hb)
        return PHASE_IDLE;
    t->next_hb = t->mono + t->hb_every;
    if (!(p->executing || p->npending || p->done || m->active))
        return PHASE_IDLE;
    pthread_mutex_unlock(&m->lock);
    jm__heartbeat(m);
    pthread_mutex_lock(&m->lock);
    return PHASE_WORKED;
}

static phase_result recovery_phase(jm_manager *m, loop_turn *t)
{
    if (t->stopping || t->mono < atomic_load(&m->next_recovery_mono))
        return PHASE_IDLE;
    pthread_mutex_unlock(&m->lock);
    jm__recover_if_due(m);
    pthread_mutex_lock(&m->lock);
    return PHASE_WORKED;
}

/* Fires the schedules due now. The next fire time is re-read every poll
 * interval, for schedules other processes created or changed. A schedule
 * still due after a pass (its type has no executor here) is left to other
 * managers until the next poll, not fired in a spin. */
static phase_result schedule_phase(jm_manager *m, loop_turn *t)
{
    if (t->stopping)
        return PHASE_IDLE;
    int64_t next = atomic_load(&m->next_fire);
    int due = next > 0 && t->mono >= t->fire_retry && jm__now(m) >= next;
    if (!due && t->mono < t->next_schedule_read)
        return PHASE_IDLE;
    t->next_schedule_read = t->mono + m->cfg.poll_interval_ms;
    pthread_mutex_unlock(&m->lock);
    if (!due) {
        jm__schedules_refresh(m);
    } else if (jm__schedules_fire_due(m, NULL)) {
        jm__log(m, JM_LOG_WARN, NULL, "firing schedules failed, will try again: %s",
                jm_last_error());
    }
    /* Still due and not moved: what is due is left to other managers. A
     * next fire time that moved but is due again (it came due during the
     * pass) is fired on the next turn. */
    int64_t after = atomic_load(&m->next_fire);
    if (due && after == next && jm__now(m) >= after)
        t->fire_retry = t->mono + m->cfg.poll_interval_ms;
    pthread_mutex_lock(&m->lock);
    return due ? PHASE_WORKED : PHASE_IDLE;
}

/* Evaluates the table policies every cfg.policy_interval_ms. */
static phase_result policy_phase(jm_manager *m, loop_turn *t)
{
    if (t->stopping || !t->policies || t->mono < t->next_policy)
        return PHASE_IDLE;
    t->next_policy = t->mono + m->cfg.policy_interval_ms;
    pthread_mutex_unlock(&m->lock);
    int created = 0;
    if (jm_policy_evaluate(m, &created))
        jm__log(m, JM_LOG_WARN, NULL, "evaluating policies: %s", jm_last_error());
    pthread_mutex_lock(&m->lock);
    return PHASE_WORKED;
}

/* One transaction when there is something to claim or to record. Claims
 * when told to (a local create), when the poll is due, or when the queue
 * runs low or a worker is idle and the last claim suggests more are
 * waiting. */
static phase_result claim_phase(jm_manager *m, loop_turn *t)
{
    jm__pool *p = &m->pool;
    jm__claim_plan_t plan = {0, 0, "", ""};
    if (!t->stopping)
        jm__claim_plan(m, &plan);
    t->want = plan.now + plan.ahead;
    int claim = t->want > 0 && (p->claim_now || t->mono >= p->next_poll_mono ||
                                (p->maybe_more && p->npending < (size_t)p->nworkers) ||
                                (p->idle_may_claim && plan.now > 0));
    int commit = p->done && t->mono >= p->commit_retry_mono;
    if (!claim && !commit)
        return PHASE_IDLE;
    cycle(m, claim ? &plan : NULL);
    return PHASE_WORKED;
}

/* Sleeps until the earliest timer (or a signal of loop_cv: a local create,
 * a finished run, jm_stop). */
static void wait_phase(jm_manager *m, loop_turn *t)
{
    jm__pool *p = &m->pool;
    int64_t until = t->next_hb < t->next_clock_check ? t->next_hb : t->next_clock_check;
    if (!t->stopping) {
        if (t->policies && t->next_policy < until)
            until = t->next_policy;
        if (t->next_schedule_read < until)
            until = t->next_schedule_read;
        int64_t next = atomic_load(&m->next_fire);
        if (next > 0) {
            int64_t at = t->mono + (next > jm__now(m) ? next - jm__now(m) : 0);
            if (at < t->fire_retry)
                at = t->fire_retry;
            if (at < until)
                until = at;
        }
    }
    if (p->done && p->commit_retry_mono < until)
        until = p->commit_retry_mono;
    if (!t->stopping) {
        int64_t rec = atomic_load(&m->next_recovery_mono);
        if (rec < until)
            until = rec;
        if (t->want > 0 && p->next_poll_mono < until)
            until = p->next_poll_mono;
    } else if (!p->shutdown_signalled && p->drain_deadline_mono < until) {
        until = p->drain_deadline_mono;
    }
    if (t->stopping && p->shutdown_signalled && p->done && p->executing == 0 &&
        p->npending == 0) {
        /* Outcomes that still cannot be recorded after every job ended:
         * give up after one more try; recovery requeues those jobs. */
        p->give_up_commit = 1;
    }
    timed_wait(m, until);
}

/* Stops the workers (all idle now), waits for them, and drops what could
 * not be recorded. */
static void loop_close(jm_manager *m)
{
    jm__pool *p = &m->pool;
    p->workers_exit = 1;
    pthread_cond_broadcast(&p->work_cv);
    int n = p->nworkers;
    pthread_mutex_unlock(&m->lock);
    jm__wake_watch_stop(m);
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
}

void jm__loop_run(jm_manager *m)
{
    jm__wake_watch_start(m);
    loop_turn t = {0};
    t.hb_every = jm__heartbeat_interval_ms(m);
    t.next_hb = jm__mono_ms() + t.hb_every;
    t.policies = jm__policies_supported(m);
    pthread_mutex_lock(&m->lock);
    for (;;) {
        t.mono = jm__mono_ms();
        t.stopping = m->pool.state == JM__POOL_STOPPING;
        phase_result r = drain_phase(m, &t);
        if (r == PHASE_EXIT)
            break;
        if (r == PHASE_WORKED || clock_phase(m, &t) || lease_phase(m, &t) ||
            recovery_phase(m, &t) || schedule_phase(m, &t) || policy_phase(m, &t) ||
            claim_phase(m, &t))
            continue;
        wait_phase(m, &t);
    }
    loop_close(m);
    pthread_mutex_unlock(&m->lock);
}
