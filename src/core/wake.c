/*
 * Wake-ups across processes. A commit that adds work due now posts on the
 * store's channel; while the pool runs, a watcher thread sleeps on it and
 * turns a post into a claim at once, so a job created by another process
 * starts within a fraction of a millisecond instead of at the next poll.
 * Without a channel (the store has none here) nothing changes: the poll
 * finds the job.
 */
#include "wake.h"

#include "error.h"
#include "log.h"

void jm__wake_open(jm_manager *m)
{
    if (!m->ops->wake_open || m->ops->wake_open(m->store, &m->wake) != JM_OK) {
        m->wake = NULL;
        jm__log(m, JM_LOG_DEBUG, NULL, "%s; jobs of other processes are found by polling",
                jm_last_error());
    }
}

void jm__wake_close(jm_manager *m)
{
    if (m->wake)
        m->ops->wake_close(m->wake);
    m->wake = NULL;
}

void jm__wake_post(jm_manager *m)
{
    if (m->wake)
        m->ops->wake_post(m->wake);
}

static void *watch_main(void *arg)
{
    jm_manager *m = arg;
    uint64_t seen = m->ops->wake_seq(m->wake);
    while (!atomic_load(&m->watch_stop)) {
        if (!m->ops->wake_wait(m->wake, &seen, m->cfg.poll_interval_ms))
            continue;
        pthread_mutex_lock(&m->lock);
        if (m->pool.state == JM__POOL_RUNNING) {
            m->pool.claim_now = 1;
            pthread_cond_signal(&m->pool.loop_cv);
        }
        pthread_mutex_unlock(&m->lock);
    }
    return NULL;
}

void jm__wake_watch_start(jm_manager *m)
{
    if (!m->wake || m->watch_started)
        return;
    atomic_store(&m->watch_stop, 0);
    if (m->ops->wake_listen)
        m->ops->wake_listen(m->wake, 1);
    if (pthread_create(&m->watch_thread, NULL, watch_main, m) == 0) {
        m->watch_started = 1;
        return;
    }
    if (m->ops->wake_listen)
        m->ops->wake_listen(m->wake, 0);
    jm__log(m, JM_LOG_WARN, NULL,
            "cannot start the wake-up watcher; jobs of other processes are found by polling");
}

void jm__wake_watch_stop(jm_manager *m)
{
    if (!m->watch_started)
        return;
    atomic_store(&m->watch_stop, 1);
    m->ops->wake_interrupt(m->wake);
    pthread_join(m->watch_thread, NULL);
    m->watch_started = 0;
    if (m->ops->wake_listen)
        m->ops->wake_listen(m->wake, 0);
}
