/*
 * Schedules: checking a spec, computing fire times, and the public calls
 * that create, read, change and delete them. A schedule is a row in the
 * jobs database, so every manager on the database fires it (see
 * schedule_fire.c) and a schedule outlives any of them.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "create.h"
#include "error.h"
#include "job_id.h"
#include "pool.h"
#include "random.h"
#include "ref_check.h"
#include "schedule.h"
#include "schedule_snapshot.h"
#include "text.h"

/* The longest jitter: a day. */
#define JM_JITTER_MAX_MS (INT64_C(24) * 3600 * 1000)
/* The longest interval: a year of 366 days. */
#define JM_INTERVAL_MAX_MS (INT64_C(366) * 24 * 3600 * 1000)

/* The zone named `name` (NULL: UTC), from the manager's cache; a zone
 * loaded when the cache is full is the caller's (*owned set). */
static int zone(jm_manager *m, const char *name, jm__tz **out, int *owned)
{
    const char *key = name && *name ? name : "UTC";
    *owned = 0;
    pthread_mutex_lock(&m->tz_lock);
    for (int i = 0; i < m->ntz; i++)
        if (strcmp(jm__tz_name(m->tz_cache[i]), key) == 0) {
            *out = m->tz_cache[i];
            pthread_mutex_unlock(&m->tz_lock);
            return JM_OK;
        }
    int rc = jm__tz_load(name, out);
    if (rc == JM_OK) {
        if (m->ntz < JM__TZ_CACHE)
            m->tz_cache[m->ntz++] = *out;
        else
            *owned = 1;
    }
    pthread_mutex_unlock(&m->tz_lock);
    return rc;
}

int jm__trigger_load(jm_manager *m, const jm_schedule_spec *spec, jm__trigger *t)
{
    *t = (jm__trigger){NULL, NULL, 0, spec->interval_ms, spec->anchor_ms};
    if (!spec->cron)
        return JM_OK;
    int rc = jm__cron_parse(spec->cron, &t->cron);
    if (rc == JM_OK && (rc = zone(m, spec->tz, &t->tz, &t->tz_owned))) {
        jm__cron_free(t->cron);
        t->cron = NULL;
    }
    return rc;
}

void jm__trigger_free(jm__trigger *t)
{
    jm__cron_free(t->cron);
    if (t->tz_owned)
        jm__tz_free(t->tz);
    t->cron = NULL;
    t->tz = NULL;
}

int jm__trigger_next(const jm__trigger *tr, int64_t t, int64_t *out)
{
    if (tr->cron)
        return jm__cron_next(tr->cron, tr->tz, t, out);
    int64_t iv = tr->interval_ms, a = tr->anchor_ms;
    if (iv <= 0)
        return jm__seterr(JM_EINVAL, "a schedule with neither cron nor interval");
    if (t < a) {
        *out = a;
        return JM_OK;
    }
    int64_t k = (t - a) / iv + 1;
    if (k > (INT64_MAX - a) / iv)
        return jm__seterr(JM_ENOTFOUND, "the schedule's next fire time is out of range");
    *out = a + k * iv;
    return JM_OK;
}

/* Checks a spec whole; a bad one gets JM_EINVAL (or the create error of
 * its job template) naming what is wrong. */
static int check_spec(jm_manager *m, const jm_schedule_spec *sp, int64_t now)
{
    if (!sp)
        return jm__seterr(JM_EINVAL, "schedule spec is NULL");
    if (sp->version != JM_SCHEDULE_SPEC_VERSION)
        return jm__seterr(JM_EINVAL, "unknown jm_schedule_spec version %u", sp->version);
    if (!sp->name)
        return jm__seterr(JM_EINVAL, "schedule name is NULL");
    size_t len = strnlen(sp->name, JM_SCHEDULE_NAME_MAX + 1);
    if (len > JM_SCHEDULE_NAME_MAX)
        return jm__seterr(JM_EINVAL, "schedule name longer than %d bytes", JM_SCHEDULE_NAME_MAX);
    if (!jm__text_valid(sp->name, len))
        return jm__seterr(JM_EINVAL, "schedule name must be non-empty printable UTF-8");
    if (sp->opts.idempotency_key)
        return jm__seterr(JM_EINVAL, "a schedule's jobs take no idempotency key: its overlap "
                                     "policy bounds them");
    if (sp->opts.run_at_ms)
        return jm__seterr(JM_EINVAL, "a schedule's job template takes no run_at_ms: the "
                                     "trigger sets it");
    if (sp->opts.node_id)
        return jm__seterr(JM_EINVAL, "a schedule's job template takes no node_id: its jobs "
                                     "run on any node");
    jm_new_job j = {sp->type, sp->params_json, sp->opts};
    jm__new_row row;
    memset(&row, 0, sizeof row);
    int rc = jm__create_prepare(m, &j, now, &row);
    jm__free(row.resource_owned);
    if (rc) {
        char msg[JM_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "%s", jm_last_error());
        return jm__seterr(rc, "schedule '%.200s': %s", sp->name, msg);
    }
    if (!sp->cron == !(sp->interval_ms > 0))
        return jm__seterr(JM_EINVAL, "a schedule needs exactly one of cron and interval_ms "
                                     "(got %s)", sp->cron ? "both" : "neither");
    if (sp->interval_ms < 0)
        return jm__seterr(JM_EINVAL, "interval_ms must not be negative");
    if (sp->interval_ms && (sp->interval_ms < 1000 || sp->interval_ms > JM_INTERVAL_MAX_MS))
        return jm__seterr(JM_EINVAL, "interval_ms must be 1000 (a second) to %lld (366 days)",
                          (long long)JM_INTERVAL_MAX_MS);
    if (sp->anchor_ms < 0)
        return jm__seterr(JM_EINVAL, "anchor_ms must not be negative");
    if (sp->interval_ms && sp->tz)
        return jm__seterr(JM_EINVAL, "tz applies to a cron expression, not to an interval");
    if (sp->cron && sp->anchor_ms)
        return jm__seterr(JM_EINVAL, "anchor_ms applies to an interval, not to a cron "
                                     "expression");
    if (sp->jitter_ms < 0 || sp->jitter_ms > JM_JITTER_MAX_MS)
        return jm__seterr(JM_EINVAL, "jitter_ms must be 0 to %lld (a day)",
                          (long long)JM_JITTER_MAX_MS);
    if ((unsigned)sp->overlap > JM_OVERLAP_ALLOW)
        return jm__seterr(JM_EINVAL, "unknown overlap policy %d", (int)sp->overlap);
    if ((unsigned)sp->misfire > JM_MISFIRE_CATCH_UP)
        return jm__seterr(JM_EINVAL, "unknown misfire policy %d", (int)sp->misfire);
    if (sp->misfire == JM_MISFIRE_CATCH_UP &&
        (sp->catch_up_max < 1 || sp->catch_up_max > JM_CATCH_UP_MAX))
        return jm__seterr(JM_EINVAL, "catch_up_max must be 1 to %d with JM_MISFIRE_CATCH_UP",
                          JM_CATCH_UP_MAX);
    if (sp->misfire != JM_MISFIRE_CATCH_UP && sp->catch_up_max != 0)
        return jm__seterr(JM_EINVAL, "catch_up_max applies to JM_MISFIRE_CATCH_UP only");
    if (sp->pause_after_failures < 0)
        return jm__seterr(JM_EINVAL, "pause_after_failures must not be negative");
    return JM_OK;
}

/* The first fire time after `now` of a checked spec. */
static int first_fire(jm_manager *m, const jm_schedule_spec *sp, int64_t now, int64_t *out)
{
    jm__trigger t;
    int rc = jm__trigger_load(m, sp, &t);
    if (rc == JM_OK) {
        rc = jm__trigger_next(&t, now, out);
        jm__trigger_free(&t);
    }
    if (rc == JM_ENOTFOUND)
        rc = jm__seterr(JM_EINVAL, "schedule '%.200s' never fires: %s", sp->name,
                        jm_last_error());
    return rc;
}

/* A schedule snapshot holding a copy of `spec`, its trigger resolved. */
static int snapshot_of(jm_manager *m, const jm_schedule_spec *spec, int64_t now,
                       jm_schedule **out)
{
    int rc = check_spec(m, spec, now);
    if (rc)
        return rc;
    jm_schedule *sc = jm__schedule_new();
    if (!sc || jm__schedule_set_spec(sc, spec)) {
        jm_schedule_free(sc);
        return jm__seterr(JM_ENOMEM, "out of memory creating a schedule");
    }
    sc->spec.opts.max_retries = spec->opts.max_retries < 0 ? m->cfg.max_retries
                                                           : spec->opts.max_retries;
    /* An interval without an anchor counts from now, for good. */
    if (sc->spec.interval_ms && !sc->spec.anchor_ms)
        sc->spec.anchor_ms = now;
    if ((rc = first_fire(m, &sc->spec, now, &sc->next_fire_ms))) {
        jm_schedule_free(sc);
        return rc;
    }
    *out = sc;
    return JM_OK;
}

int jm_schedule_create(jm_manager *m, const jm_schedule_spec *spec,
                       char id_out[JM_SCHEDULE_ID_SIZE])
{
    if (!m || !id_out)
        return jm__seterr(JM_EINVAL, "jm_schedule_create: manager or id_out is NULL");
    int64_t now = jm__now(m);
    jm_schedule *sc = NULL;
    int rc = snapshot_of(m, spec, now, &sc);
    if (rc)
        return rc;
    /* A random id: "SC-" and a version-8 UUID whose last group is random
     * too (a job id's is its row's seq). */
    jm__job_id_new("SC", sc->id);
    jm__job_id_set_seq(sc->id, (int64_t)(jm__random_unit() * (double)(JM__ID_SEQ_LIMIT - 1)));
    sc->created_at = sc->updated_at = now;
    jm__db_lock(m);
    rc = m->ops->schedule_insert(m->store, sc);
    jm__db_unlock(m);
    if (rc == JM_OK) {
        memcpy(id_out, sc->id, JM_SCHEDULE_ID_SIZE);
        jm__schedules_refresh(m);
    }
    jm_schedule_free(sc);
    return rc;
}

int jm_schedule_get(jm_manager *m, const char *id_or_name, jm_schedule **out)
{
    if (out)
        *out = NULL;
    int rc = jm__ref_check(m, id_or_name, "schedule", "jm_schedule_get");
    if (rc)
        return rc;
    if (!out)
        return jm__seterr(JM_EINVAL, "jm_schedule_get: out is NULL");
    jm__db_lock(m);
    rc = m->ops->schedule_get(m->store, id_or_name, out);
    jm__db_unlock(m);
    return rc;
}

int jm_schedule_list(jm_manager *m, jm_schedule ***out, size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!m || !out || !n)
        return jm__seterr(JM_EINVAL, "jm_schedule_list: manager, out or n is NULL");
    jm__db_lock(m);
    int rc = m->ops->schedule_list(m->store, out, n);
    jm__db_unlock(m);
    return rc;
}

int jm_schedule_update(jm_manager *m, const char *id_or_name, const jm_schedule_spec *spec)
{
    int rc = jm__ref_check(m, id_or_name, "schedule", "jm_schedule_update");
    if (rc)
        return rc;
    int64_t now = jm__now(m);
    jm_schedule *sc = NULL, *old = NULL;
    if ((rc = snapshot_of(m, spec, now, &sc)))
        return rc;
    jm__db_lock(m);
    rc = m->ops->schedule_get(m->store, id_or_name, &old);
    if (rc == JM_OK) {
        memcpy(sc->id, old->id, sizeof sc->id);
        /* The same trigger keeps its next fire time (and so its misfires);
         * a new one fires first at its first time after now. */
        const jm_schedule_spec *a = &old->spec, *b = spec;
        int same = a->interval_ms == b->interval_ms &&
                   (b->interval_ms == 0 || b->anchor_ms == 0 || a->anchor_ms == b->anchor_ms) &&
                   !a->cron == !b->cron && (!a->cron || strcmp(a->cron, b->cron) == 0) &&
                   !a->tz == !b->tz && (!a->tz || strcmp(a->tz, b->tz) == 0);
        if (same) {
            sc->next_fire_ms = old->next_fire_ms;
            sc->spec.anchor_ms = old->spec.anchor_ms;
        }
        rc = m->ops->schedule_update(m->store, sc, now);
    }
    jm__db_unlock(m);
    jm_schedule_free(old);
    jm_schedule_free(sc);
    if (rc == JM_OK)
        jm__schedules_refresh(m);
    return rc;
}

/* Resolves a name to its schedule's id. */
static int resolve(jm_manager *m, const char *id_or_name, char id[JM_SCHEDULE_ID_SIZE])
{
    jm_schedule *sc = NULL;
    int rc = m->ops->schedule_get(m->store, id_or_name, &sc);
    if (rc == JM_OK)
        memcpy(id, sc->id, JM_SCHEDULE_ID_SIZE);
    jm_schedule_free(sc);
    return rc;
}

int jm_schedule_delete(jm_manager *m, const char *id_or_name)
{
    int rc = jm__ref_check(m, id_or_name, "schedule", "jm_schedule_delete");
    if (rc)
        return rc;
    char id[JM_SCHEDULE_ID_SIZE];
    jm__db_lock(m);
    if ((rc = resolve(m, id_or_name, id)) == JM_OK)
        rc = m->ops->schedule_delete(m->store, id);
    jm__db_unlock(m);
    if (rc == JM_OK)
        jm__schedules_refresh(m);
    return rc;
}

static int set_paused(jm_manager *m, const char *id_or_name, int paused, const char *fn)
{
    int rc = jm__ref_check(m, id_or_name, "schedule", fn);
    if (rc)
        return rc;
    char id[JM_SCHEDULE_ID_SIZE];
    jm__db_lock(m);
    if ((rc = resolve(m, id_or_name, id)) == JM_OK)
        rc = m->ops->schedule_pause(m->store, id, paused, jm__now(m));
    jm__db_unlock(m);
    if (rc == JM_OK)
        jm__schedules_refresh(m);
    return rc;
}

int jm_schedule_pause(jm_manager *m, const char *id_or_name)
{
    return set_paused(m, id_or_name, 1, "jm_schedule_pause");
}

int jm_schedule_resume(jm_manager *m, const char *id_or_name)
{
    return set_paused(m, id_or_name, 0, "jm_schedule_resume");
}
