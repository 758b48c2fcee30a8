/*
 * Running the pool: jm_start (in the background), jm_run (on the calling
 * thread) and jm_stop. Starting sets the pool up and hands the calling or a
 * new thread to the run loop; stopping asks the loop to drain and waits
 * until it has stopped the workers.
 */
#include <pthread.h>

#include "error.h"
#include "log.h"
#include "loop.h"
#include "manager.h"

static void *loop_main(void *arg)
{
    jm__loop_run(arg);
    return NULL;
}

/* Joins a loop thread that ended on its own (a stop asked for from an
 * executor) and was not joined yet; m->lock held, dropped meanwhile. */
static void join_finished_loop(jm_manager *m)
{
    jm__pool *p = &m->pool;
    if (p->state != JM__POOL_IDLE || !p->loop_thread_started)
        return;
    p->loop_thread_started = 0;
    pthread_t t = p->loop_thread;
    pthread_mutex_unlock(&m->lock);
    pthread_join(t, NULL);
    pthread_mutex_lock(&m->lock);
}

static int check_workers(jm_manager *m, int n, const char *fn)
{
    if (!m)
        return jm__seterr(JM_EINVAL, "%s: manager is NULL", fn);
    if (n < 1 || n > JM_MAX_WORKERS)
        return jm__seterr(JM_EINVAL, "%s: max_concurrent must be 1..%d", fn, JM_MAX_WORKERS);
    if (m->cfg.high_workers >= n)
        return jm__seterr(JM_EINVAL,
                          "%s: max_concurrent (%d) must be more than jm_config.high_workers (%d)",
                          fn, n, m->cfg.high_workers);
    return JM_OK;
}

int jm_start(jm_manager *m, int max_concurrent)
{
    int rc = check_workers(m, max_concurrent, "jm_start");
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    join_finished_loop(m);
    if ((rc = jm__pool_begin(m, max_concurrent))) {
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    if (pthread_create(&m->pool.loop_thread, NULL, loop_main, m) != 0) {
        /* Run the stop sequence with no loop: only idle workers exist. */
        m->pool.state = JM__POOL_STOPPING;
        pthread_mutex_unlock(&m->lock);
        jm__loop_run(m);
        return jm__seterr(JM_ENOMEM, "cannot start the run loop thread");
    }
    m->pool.loop_thread_started = 1;
    pthread_mutex_unlock(&m->lock);
    jm__log(m, JM_LOG_INFO, NULL, "started with %d worker(s)", max_concurrent);
    return JM_OK;
}

int jm_run(jm_manager *m, int max_concurrent)
{
    int rc = check_workers(m, max_concurrent, "jm_run");
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    join_finished_loop(m);
    rc = jm__pool_begin(m, max_concurrent);
    pthread_mutex_unlock(&m->lock);
    if (rc)
        return rc;
    jm__log(m, JM_LOG_INFO, NULL, "running with %d worker(s)", max_concurrent);
    jm__loop_run(m);
    return JM_OK;
}

int jm_stop(jm_manager *m, int64_t drain_ms)
{
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_stop: manager is NULL");
    if (drain_ms < 0)
        drain_ms = 0;
    jm__pool *p = &m->pool;
    pthread_mutex_lock(&m->lock);
    if (p->state == JM__POOL_IDLE && !p->loop_thread_started) {
        pthread_mutex_unlock(&m->lock);
        return JM_OK;
    }
    if (p->state == JM__POOL_RUNNING) {
        p->state = JM__POOL_STOPPING;
        p->drain_ms = drain_ms;
        jm__log(m, JM_LOG_INFO, NULL, "stopping (drain %lld ms)", (long long)drain_ms);
    } else if (p->state == JM__POOL_STOPPING && p->drain_started) {
        int64_t d = jm__mono_ms() + drain_ms;
        if (d < p->drain_deadline_mono)
            p->drain_deadline_mono = d;
    } else if (p->state == JM__POOL_STOPPING && drain_ms < p->drain_ms) {
        p->drain_ms = drain_ms;
    }
    pthread_cond_signal(&p->loop_cv);
    if (jm__pool_on_worker(m)) {
        /* From an executor: waiting here would wait for ourselves. */
        pthread_mutex_unlock(&m->lock);
        return JM_OK;
    }
    while (p->state != JM__POOL_IDLE)
        pthread_cond_wait(&p->stopped_cv, &m->lock);
    int join = p->loop_thread_started;
    p->loop_thread_started = 0;
    pthread_t t = p->loop_thread;
    pthread_mutex_unlock(&m->lock);
    if (join)
        pthread_join(t, NULL);
    return JM_OK;
}
