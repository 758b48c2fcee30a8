/*
 * Firing schedules. Any running manager fires every due schedule whose job
 * type it has an executor for; there is no leader to lose. A fire is one
 * step in the store (the next fire time moves by compare-and-set, in the
 * transaction that creates the jobs), so two managers that read the same
 * due schedule create its jobs once: the second finds the time moved and
 * does nothing.
 *
 * Which due times get a job: the latest fire time not after now is on time
 * if it is at most JM_MISFIRE_GRACE_MS old; every earlier one, and the
 * latest if older, was missed (no manager ran, or the schedule was
 * paused). The misfire policy decides the missed ones: skip them, run one
 * job for the latest, or catch up on the most recent catch_up_max.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "create.h"
#include "error.h"
#include "job_id.h"
#include "log.h"
#include "pool.h"
#include "random.h"
#include "schedule.h"
#include "schedule_snapshot.h"
#include "wake.h"

/* Schedules fired per transaction. */
#define JM_FIRE_BATCH 128
/* Fire times stepped through from a stale next fire time before skipping
 * ahead to the ones near now. */
#define JM_FIRE_SCAN_MAX 100000

/* The due fire times of one schedule: the last `keep` of them, the latest,
 * and the first after now. */
typedef struct due_times {
    int64_t *t;   /* ring of the last `keep` */
    size_t keep, count;
    int64_t total; /* all due times, for the misfire count */
    int64_t next; /* the first fire time after now */
} due_times;

static void note_due(due_times *d, int64_t t)
{
    d->t[d->count % d->keep] = t;
    d->count++;
    d->total++;
}

/* The i-th most recent due time (0: the latest). */
static int64_t recent(const due_times *d, size_t i)
{
    return d->t[(d->count - 1 - i) % d->keep];
}

static int collect_due(const jm__trigger *tr, int64_t first, int64_t now, due_times *d)
{
    int64_t t = first, gap = 0;
    int rc = JM_OK;
    for (int64_t steps = 0; t <= now; steps++) {
        if (steps == JM_FIRE_SCAN_MAX && gap > 0) {
            /* Far behind: the times before the window the policy can use
             * are counted as missed without being stepped through. */
            int64_t window = gap * (int64_t)(d->keep + 2) * 4;
            int64_t from = now - window;
            if (from > t) {
                int64_t skipped = 0;
                if (tr->cron == NULL)
                    skipped = (from - t) / tr->interval_ms;
                d->total += skipped;
                if ((rc = jm__trigger_next(tr, from, &t)))
                    return rc;
                continue;
            }
        }
        note_due(d, t);
        int64_t n;
        if ((rc = jm__trigger_next(tr, t, &n)))
            return rc;
        gap = n - t;
        t = n;
    }
    d->next = t;
    return JM_OK;
}

/* The fire times that get a job, ascending, into out (room for keep). */
static size_t choose(const jm_schedule *sc, const due_times *d, int64_t now, int64_t *out,
                     int64_t *missed)
{
    size_t n = d->count < d->keep ? d->count : d->keep;
    int64_t latest = recent(d, 0);
    int on_time = now - latest <= JM_MISFIRE_GRACE_MS;
    *missed = d->total - (on_time ? 1 : 0);
    switch (sc->spec.misfire) {
    case JM_MISFIRE_SKIP:
        if (!on_time)
            return 0;
        out[0] = latest;
        return 1;
    case JM_MISFIRE_RUN_ONCE:
        out[0] = latest;
        return 1;
    case JM_MISFIRE_CATCH_UP: {
        size_t want = (size_t)sc->spec.catch_up_max + (on_time ? 1 : 0);
        if (want > n)
            want = n;
        for (size_t i = 0; i < want; i++)
            out[i] = recent(d, want - 1 - i);
        return want;
    }
    }
    return 0;
}

/* Everything one fire needs, owned. */
typedef struct fire_plan {
    jm__fire f;
    jm_schedule *sc;
    char (*ids)[JM_JOB_ID_SIZE];
    int *made; /* f.nrows entries: which rows the store created */
    int64_t missed;
    int fired;     /* handed to the store */
    size_t nrows;  /* rows allocated, each perhaps owning a derived resource */
} fire_plan;

static void plan_free(fire_plan *p)
{
    for (size_t i = 0; i < p->nrows && p->f.rows; i++)
        jm__free(p->f.rows[i].resource_owned);
    jm__free(p->f.rows);
    jm__free(p->ids);
    jm__free(p->made);
    jm_schedule_free(p->sc);
}

/* Works out one due schedule's fire; 0 rows is still a fire (the time
 * moves on). Returns non-zero if this manager leaves it to another. */
static int plan_fire(jm_manager *m, jm_schedule *sc, int64_t now, fire_plan *p)
{
    memset(p, 0, sizeof *p);
    p->sc = sc;
    jm__executor_entry e;
    if (!jm__registry_find(&m->registry, sc->spec.type, &e))
        return 1; /* no executor here: a manager that has one fires it */
    jm__trigger tr;
    int rc = jm__trigger_load(m, &sc->spec, &tr);
    int64_t ring[JM_CATCH_UP_MAX + 1];
    due_times d = {ring, (size_t)sc->spec.catch_up_max + 1, 0, 0, 0};
    if (rc == JM_OK)
        rc = collect_due(&tr, sc->next_fire_ms, now, &d);
    jm__trigger_free(&tr);
    if (rc) {
        /* A trigger that no longer loads (its zone is gone from this
         * system, say): left for a manager that can read it. */
        jm__log(m, JM_LOG_ERROR, NULL, "schedule %s (%s): cannot compute its fire times: %s",
                sc->id, sc->spec.name, jm_last_error());
        return 1;
    }
    int64_t times[JM_CATCH_UP_MAX + 1];
    size_t n = d.count ? choose(sc, &d, now, times, &p->missed) : 0;
    p->f.schedule_id = sc->id;
    p->f.expect_next = sc->next_fire_ms;
    p->f.new_next = d.next;
    p->f.now = now;
    p->f.overlap = sc->spec.overlap;
    if (n == 0)
        return 0;
    p->f.rows = jm__calloc(n, sizeof *p->f.rows);
    p->ids = jm__calloc(n, JM_JOB_ID_SIZE);
    p->f.made = p->made = jm__calloc(n, sizeof *p->made);
    if (!p->f.rows || !p->ids || !p->made) {
        jm__log(m, JM_LOG_ERROR, NULL, "schedule %s: out of memory firing it", sc->id);
        return 1;
    }
    p->nrows = n;
    for (size_t i = 0; i < n; i++) {
        jm_new_job j = {sc->spec.type, sc->spec.params_json, sc->spec.opts};
        int64_t jitter = sc->spec.jitter_ms
                             ? (int64_t)(jm__random_unit() * (double)(sc->spec.jitter_ms + 1))
                             : 0;
        j.opts.run_at_ms = times[i] + jitter > 0 ? times[i] + jitter : 1;
        jm__new_row *r = &p->f.rows[i];
        if ((rc = jm__create_prepare(m, &j, now, r))) {
            /* The template no longer passes (the executor's rules
             * changed): the time moves on without a job. */
            jm__log(m, JM_LOG_ERROR, NULL, "schedule %s (%s): its job was refused: %s", sc->id,
                    sc->spec.name, jm_last_error());
            p->f.nrows = 0;
            return 0;
        }
        jm__job_id_new(r->type, p->ids[i]);
        r->id = p->ids[i];
        r->created_at = now;
        r->schedule_id = sc->id;
        r->fire_time = times[i];
    }
    p->f.nrows = n;
    return 0;
}

/* Fires one batch of due schedules, by the clock as it reads now (a job's
 * created_at is its fire's commit, give or take a batch); *more is set if
 * the batch was full. */
static int fire_batch(jm_manager *m, int *fired, int *more)
{
    int64_t now = jm__now(m);
    jm_schedule **due = NULL;
    size_t ndue = 0;
    jm__db_lock(m);
    int rc = m->ops->schedule_due(m->store, now, JM_FIRE_BATCH, &due, &ndue);
    jm__db_unlock(m);
    *more = 0;
    if (rc || ndue == 0) {
        jm__free(due);
        return rc;
    }
    *more = ndue == JM_FIRE_BATCH;
    fire_plan *plans = jm__calloc(ndue, sizeof *plans);
    jm__fire *fires = jm__calloc(ndue, sizeof *fires);
    if (!plans || !fires) {
        jm__free(plans);
        jm__free(fires);
        jm_schedule_list_free(due, ndue);
        return jm__seterr(JM_ENOMEM, "out of memory firing schedules");
    }
    size_t nf = 0;
    for (size_t i = 0; i < ndue; i++) {
        if (plan_fire(m, due[i], now, &plans[i]))
            continue;
        plans[i].fired = 1;
        fires[nf++] = plans[i].f;
    }
    jm__free(due); /* the snapshots are the plans' now */
    if (nf) {
        jm__db_lock(m);
        rc = m->ops->schedule_fire(m->store, fires, nf);
        jm__db_unlock(m);
    }
    int64_t earliest = INT64_MAX;
    size_t k = 0;
    for (size_t i = 0; i < ndue && rc == JM_OK; i++) {
        fire_plan *p = &plans[i];
        if (!p->fired)
            continue;
        const jm__fire *f = &fires[k++];
        if (f->lost)
            continue;
        jm__stats_schedule_fire(m, (int64_t)f->created, (int64_t)f->skipped, p->missed,
                                f->nrows ? now - f->rows[f->nrows - 1].fire_time : 0);
        for (size_t r = 0; r < f->nrows; r++)
            if (p->made[r] && f->rows[r].run_at < earliest)
                earliest = f->rows[r].run_at;
        if (fired)
            *fired += (int)f->created;
    }
    /* A plan that was never fired kept its snapshot too. */
    for (size_t i = 0; i < ndue; i++)
        plan_free(&plans[i]);
    jm__free(plans);
    jm__free(fires);
    if (earliest != INT64_MAX) {
        jm__pool_notify(m, earliest);
        if (earliest <= now)
            jm__wake_post(m);
    }
    /* A whole batch left to other managers is not worth another pass. */
    if (nf == 0)
        *more = 0;
    return rc;
}

int jm__schedules_fire_due(jm_manager *m, int *fired)
{
    if (fired)
        *fired = 0;
    int more = 1, rc = JM_OK;
    while (more && rc == JM_OK)
        rc = fire_batch(m, fired, &more);
    jm__schedules_refresh(m);
    return rc;
}

void jm__schedules_refresh(jm_manager *m)
{
    int64_t next = 0;
    jm__db_lock(m);
    int rc = m->ops->schedule_next_fire(m->store, &next);
    jm__db_unlock(m);
    if (rc)
        return;
    atomic_store(&m->next_fire, next);
    pthread_mutex_lock(&m->lock);
    pthread_cond_signal(&m->pool.loop_cv);
    pthread_mutex_unlock(&m->lock);
}
