/*
 * The start check: may a claimed job (still) run? A job may wait in memory
 * between its claim and its start, and a running one between two looks at
 * its cancel flag. A cancel or pause request accepted meanwhile by any
 * process of this host bumps the run journal's counter; only when it moved
 * is the row read, on a reader connection the writer's transactions never
 * block.
 */
#include "start_check.h"

#include "job.h"
#include "log.h"

/* Reads the job's row on the reader connection (opened on first use),
 * which the writer's transactions never block. If the read itself fails
 * the job runs: a cancel still reaches it by the heartbeat. */
jm__start_verdict jm__read_verdict(jm_manager *m, const jm_job *job)
{
    jm__start_verdict v = JM__START_RUN;
    pthread_mutex_lock(&m->reader_lock);
    if (!m->reader && !m->reader_failed) {
        jm__store_config sc = {m->db_path, m->vfs, m->cfg.busy_timeout_ms, 1,
                               m->cfg.durability == JM_DURABLE_SYNC, m->cfg.db_url,
                               m->pg_schema};
        if (m->ops->open(&sc, &m->reader) != JM_OK) {
            m->reader = NULL;
            m->reader_failed = 1;
            jm__log(m, JM_LOG_WARN, NULL,
                    "cannot open a reader connection (cancels reach waiting jobs by the "
                    "heartbeat only): %s",
                    jm_last_error());
        }
    }
    if (m->reader && m->ops->start_check(m->reader, job->seq, job->attempts, &v) != JM_OK) {
        jm__log(m, JM_LOG_DEBUG, job->id, "start check failed, running it: %s",
                jm_last_error());
        v = JM__START_RUN;
    }
    pthread_mutex_unlock(&m->reader_lock);
    return v;
}

/* May the claimed job start? A job may have waited in memory since its
 * claim; a cancel accepted meanwhile, by any process of this host, has
 * bumped the journal's counter, and only then is the row read. Without a
 * journal the row is always read. *seen gets the counter the answer is
 * good for. */
jm__start_verdict jm__start_verdict_of(jm_manager *m, const jm_job *job, uint64_t *seen)
{
    *seen = job->claim_cancels;
    if (job->cancel_requested)
        return JM__START_CANCELLED;
    uint64_t now = jm__journal_cancels(m->journal);
    if (m->journal && now == job->claim_cancels)
        return JM__START_RUN;
    *seen = now; /* read before the row: a later bump is seen next time */
    return jm__read_verdict(m, job);
}
