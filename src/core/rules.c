/*
 * The rules every claim obeys: conflicts between types on one resource,
 * limits on running jobs, and pauses of work and of single jobs. The store
 * keeps them in the database, so every manager on it obeys them; this file
 * checks the caller's input and wakes the run loops a change may free.
 */
#include <string.h>

#include "alloc.h"
#include "ctx.h"
#include "error.h"
#include "job.h"
#include "job_id.h"
#include "journal.h"
#include "log.h"
#include "manager.h"
#include "pool.h"
#include "text.h"
#include "throttle.h"
#include "wake.h"

/* A job type ("FL"), or "*" for every type where `star` allows it. */
static int check_type(const char *t, const char *fn, const char *what, int star)
{
    if (!t)
        return jm__seterr(JM_EINVAL, "%s: %s is NULL", fn, what);
    if (star && strcmp(t, "*") == 0)
        return JM_OK;
    if (!jm__type_valid(t))
        return jm__seterr(JM_EINVAL, "%s: %s '%.16s' is not a job type (two letters A-Z)%s",
                          fn, what, t, star ? " or \"*\"" : "");
    return JM_OK;
}

static int check_resource(const char *r, const char *fn)
{
    size_t len = strnlen(r, JM_MAX_RESOURCE_BYTES + 1);
    if (len > JM_MAX_RESOURCE_BYTES)
        return jm__seterr(JM_EINVAL, "%s: resource longer than %d bytes", fn,
                          JM_MAX_RESOURCE_BYTES);
    if (!jm__text_valid(r, len))
        return jm__seterr(JM_EINVAL, "%s: resource must be non-empty printable UTF-8", fn);
    return JM_OK;
}

/* A lifted rule may free due jobs, here and in other processes. */
static void wake_claims(jm_manager *m)
{
    jm__pool_notify(m, 0);
    jm__wake_post(m);
}

int jm_conflict_set(jm_manager *m, const char *type_a, const char *type_b, int exclusive)
{
    static const char fn[] = "jm_conflict_set";
    if (!m)
        return jm__seterr(JM_EINVAL, "%s: manager is NULL", fn);
    int rc;
    if ((rc = check_type(type_a, fn, "type_a", 1)) || (rc = check_type(type_b, fn, "type_b", 1)))
        return rc;
    if (strcmp(type_a, "*") == 0 && strcmp(type_b, "*") == 0)
        return jm__seterr(JM_EINVAL, "%s: at most one of the types may be \"*\"", fn);
    jm__db_lock(m);
    rc = m->ops->conflict_set(m->store, type_a, type_b, exclusive);
    jm__db_unlock(m);
    if (rc == JM_OK && !exclusive)
        wake_claims(m);
    return rc;
}

int jm_limit_set(jm_manager *m, const char *type, const char *resource, int max_running)
{
    static const char fn[] = "jm_limit_set";
    if (!m)
        return jm__seterr(JM_EINVAL, "%s: manager is NULL", fn);
    if (max_running < 0)
        return jm__seterr(JM_EINVAL, "%s: max_running must not be negative (0 removes the limit)",
                          fn);
    int rc;
    if (type && (rc = check_type(type, fn, "type", 0)))
        return rc;
    if (resource && (rc = check_resource(resource, fn)))
        return rc;
    jm__db_lock(m);
    rc = m->ops->limit_set(m->store, type, resource, max_running);
    jm__db_unlock(m);
    if (rc == JM_OK)
        wake_claims(m);
    return rc;
}

static int check_scope(jm_pause_scope scope, const char *what, const char *fn)
{
    switch (scope) {
    case JM_PAUSE_ALL:
        return what ? jm__seterr(JM_EINVAL, "%s: JM_PAUSE_ALL takes no type or resource", fn)
                    : JM_OK;
    case JM_PAUSE_TYPE:
        return check_type(what, fn, "type", 0);
    case JM_PAUSE_RESOURCE:
        if (!what)
            return jm__seterr(JM_EINVAL, "%s: resource is NULL", fn);
        if (strcmp(what, JM_EACH_RESOURCE) == 0)
            return jm__seterr(JM_EINVAL, "%s: resource \"%s\" is reserved", fn,
                              JM_EACH_RESOURCE);
        return check_resource(what, fn);
    }
    return jm__seterr(JM_EINVAL, "%s: unknown scope %d", fn, (int)scope);
}

static int pause_set(jm_manager *m, jm_pause_scope scope, const char *what, int paused,
                     const char *fn)
{
    if (!m)
        return jm__seterr(JM_EINVAL, "%s: manager is NULL", fn);
    int rc = check_scope(scope, what, fn);
    if (rc)
        return rc;
    jm__db_lock(m);
    rc = m->ops->pause_set(m->store, scope, what, paused, jm__now(m));
    jm__db_unlock(m);
    if (rc == JM_OK) {
        jm__log(m, JM_LOG_INFO, NULL, "%s %s%s", paused ? "paused" : "resumed",
                scope == JM_PAUSE_ALL ? "all work" : scope == JM_PAUSE_TYPE ? "type " : "resource ",
                what ? what : "");
        if (!paused)
            wake_claims(m);
    }
    return rc;
}

int jm_pause(jm_manager *m, jm_pause_scope scope, const char *what)
{
    return pause_set(m, scope, what, 1, "jm_pause");
}

int jm_resume(jm_manager *m, jm_pause_scope scope, const char *what)
{
    return pause_set(m, scope, what, 0, "jm_resume");
}

int jm_paused_list(jm_manager *m, jm_pause_entry **out, size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!m || !out || !n)
        return jm__seterr(JM_EINVAL, "jm_paused_list: NULL argument");
    jm__db_lock(m);
    int rc = m->ops->pause_list(m->store, out, n);
    jm__db_unlock(m);
    return rc;
}

int jm_conflict_list(jm_manager *m, jm_conflict **out, size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!m || !out || !n)
        return jm__seterr(JM_EINVAL, "jm_conflict_list: NULL argument");
    jm__db_lock(m);
    int rc = m->ops->conflict_list(m->store, out, n);
    jm__db_unlock(m);
    return rc;
}

void jm_conflict_list_free(jm_conflict *list)
{
    jm__free(list);
}

int jm_limit_list(jm_manager *m, jm_limit **out, size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!m || !out || !n)
        return jm__seterr(JM_EINVAL, "jm_limit_list: NULL argument");
    jm__db_lock(m);
    int rc = m->ops->limit_list(m->store, out, n);
    jm__db_unlock(m);
    return rc;
}

void jm_limit_list_free(jm_limit *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        jm__free(list[i].resource);
    jm__free(list);
}

void jm_paused_list_free(jm_pause_entry *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        jm__free(list[i].what);
    jm__free(list);
}

/* This process's run of job `id` sees a pause request, or its withdrawal,
 * at once. */
static void flag_pause(jm_manager *m, const char *id, int paused)
{
    pthread_mutex_lock(&m->lock);
    for (jm_ctx *c = m->active; c; c = c->next)
        if (strcmp(c->job->id, id) == 0)
            atomic_store(&c->paused, paused);
    pthread_mutex_unlock(&m->lock);
    if (paused)
        jm__throttle_wake(m);
}

int jm_pause_job(jm_manager *m, const char *id)
{
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_pause_job: manager is NULL");
    int rc = jm_job_id_parse(id, NULL);
    if (rc)
        return rc;
    int requested = 0;
    int64_t seq = 0, owner = 0;
    jm__db_lock(m);
    rc = m->ops->pause_job(m->store, id, jm__now(m), &requested, &seq, &owner);
    jm__db_unlock(m);
    if (rc)
        return rc;
    if (requested) {
        jm__log(m, JM_LOG_INFO, id, "pause requested while running");
        /* After the commit: a claimed job that has not started yet, in
         * any process of this host, then looks at its row before starting
         * (the same signal as a cancel's). */
        if (owner)
            jm__journal_bump(m->journal, m->owner.instance, m->db_file, owner);
        flag_pause(m, id, 1);
    } else {
        jm__log(m, JM_LOG_INFO, id, "paused");
    }
    return JM_OK;
}

int jm_resume_job(jm_manager *m, const char *id)
{
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_resume_job: manager is NULL");
    int rc = jm_job_id_parse(id, NULL);
    if (rc)
        return rc;
    jm__db_lock(m);
    rc = m->ops->resume_job(m->store, id, jm__now(m));
    jm__db_unlock(m);
    if (rc)
        return rc;
    jm__log(m, JM_LOG_INFO, id, "resumed");
    flag_pause(m, id, 0);
    wake_claims(m);
    return JM_OK;
}
