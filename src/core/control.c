/* Steering jobs by hand: cancel, retry and prune. */
#include "error.h"
#include "job_id.h"
#include "log.h"
#include "manager.h"
#include "wake.h"

/* Rows deleted per prune transaction: small enough that a concurrent
 * create never waits long for the write lock (the store lock is taken in
 * turn, so a create queued behind a batch runs right after it). */
#define JM_PRUNE_BATCH 1000
/* The longest a prune waits between batches for the store to catch up
 * (the log to be checkpointed), so that it, not a concurrent create, pays
 * for the pages it changed. */
#define JM_PRUNE_SETTLE_MS 1000

int jm_cancel(jm_manager *m, const char *id)
{
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_cancel: manager is NULL");
    char type[3];
    int rc = jm_job_id_parse(id, type);
    if (rc)
        return rc;
    jm__executor_entry e;
    int known = jm__registry_find(&m->registry, type, &e);
    jm__write w = {.kind = JM__WRITE_CANCEL};
    w.u.cancel.id = id;
    w.u.cancel.cancellable_running = known && e.ex.cancellable;
    w.u.cancel.now = jm__now(m);
    rc = jm__write_submit(m, &w);
    jm__cancel_outcome outcome = w.u.cancel.outcome;
    int64_t seq = w.u.cancel.seq, owner = w.u.cancel.owner_instance;
    if (rc == JM_ENOTCANCELLABLE && !known)
        return jm__seterr(JM_ENOEXEC,
                          "job %s is running and type %s is not registered here, so whether it "
                          "can be cancelled is unknown",
                          id, type);
    if (rc)
        return rc;
    if (outcome == JM__CANCEL_REQUESTED) {
        jm__log(m, JM_LOG_INFO, id, "cancel requested while running");
        /* After the commit: a claimed job that has not started yet, in
         * any process of this host, then looks at its row before starting. */
        if (owner)
            jm__journal_bump(m->journal, m->owner.instance, m->db_file, owner);
        jm__flag_cancel(m, seq);
    } else {
        jm__log(m, JM_LOG_INFO, id, "cancelled");
    }
    return JM_OK;
}

int jm_retry(jm_manager *m, const char *id)
{
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_retry: manager is NULL");
    int rc = jm_job_id_parse(id, NULL);
    if (rc)
        return rc;
    jm__write w = {.kind = JM__WRITE_RETRY};
    w.u.retry.id = id;
    w.u.retry.now = jm__now(m);
    rc = jm__write_submit(m, &w);
    if (rc == JM_OK) {
        jm__log(m, JM_LOG_INFO, id, "requeued by hand");
        jm__pool_notify(m, 0);
        jm__wake_post(m);
    }
    return rc;
}

int jm_prune(jm_manager *m, int64_t finished_before_ms, int64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_prune: manager is NULL");
    if (finished_before_ms < 0)
        return jm__seterr(JM_EINVAL, "jm_prune: finished_before_ms must not be negative");
    int64_t total = 0, n;
    int rc;
    do {
        jm__db_lock(m);
        rc = m->ops->prune(m->store, finished_before_ms, JM_PRUNE_BATCH, &n);
        jm__db_unlock(m);
        total += n;
        if (rc == JM_OK && n == JM_PRUNE_BATCH && m->ops->settle)
            m->ops->settle(m->store, JM_PRUNE_SETTLE_MS);
    } while (rc == JM_OK && n == JM_PRUNE_BATCH);
    if (deleted)
        *deleted = total;
    return rc;
}
