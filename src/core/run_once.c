/* Running due jobs on the caller's thread, for hosts with their own event
 * loop. */
#include <pthread.h>

#include "alloc.h"
#include "claim.h"
#include "error.h"
#include "job.h"
#include "log.h"
#include "runner.h"
#include "schedule.h"

#define JM_RUN_ONCE_MAX 100000



/* Records outcomes an earlier call could not (the database was busy or out
 * of memory then). Until they are recorded their jobs stay running under
 * this manager's lease, so they are tried again before new work. */
int jm__flush_unrecorded(jm_manager *m)
{
    pthread_mutex_lock(&m->lock);
    jm__outcome *list = m->unrecorded;
    m->unrecorded = NULL;
    pthread_mutex_unlock(&m->lock);
    if (!list)
        return JM_OK;
    size_t n = 0;
    for (jm__outcome *o = list; o; o = o->next)
        n++;
    int rc = jm__commit_outcomes(m, list, n);
    if (rc) {
        pthread_mutex_lock(&m->lock);
        jm__outcome *tail = list;
        while (tail->next)
            tail = tail->next;
        tail->next = m->unrecorded;
        m->unrecorded = list;
        pthread_mutex_unlock(&m->lock);
    }
    return rc;
}

int jm_run_once(jm_manager *m, int max_jobs, int *ran)
{
    if (ran)
        *ran = 0;
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_run_once: manager is NULL");
    if (max_jobs < 1 || max_jobs > JM_RUN_ONCE_MAX)
        return jm__seterr(JM_EINVAL, "jm_run_once: max_jobs must be 1..%d", JM_RUN_ONCE_MAX);
    jm__recover_if_due(m);
    if (jm__schedules_fire_due(m, NULL))
        jm__log(m, JM_LOG_WARN, NULL, "firing schedules failed, will try again: %s",
                jm_last_error());
    int count = 0;
    int rc = jm__flush_unrecorded(m);
    while (rc == JM_OK && count < max_jobs) {
        /* One at a time: a job that becomes due while another runs is
         * taken in its proper order, and no lease is held for jobs that
         * only wait on this thread. */
        jm_job **jobs = NULL;
        size_t n = 0;
        if ((rc = jm__claim(m, 1, &jobs, &n)) || n == 0) {
            jm__free(jobs);
            break;
        }
        jm_job *job = jobs[0];
        jm__free(jobs);
        count++;
        jm__outcome *o = jm__run_job(m, job, 1);
        if (o && (rc = jm__commit_outcomes(m, o, 1))) {
            jm__log(m, JM_LOG_WARN, o->job->id,
                    "outcome not recorded yet, will try again on the next call: %s",
                    jm_last_error());
            pthread_mutex_lock(&m->lock);
            o->next = m->unrecorded;
            m->unrecorded = o;
            pthread_mutex_unlock(&m->lock);
            break;
        }
    }
    if (ran)
        *ran = count;
    return rc;
}
