/*
 * Crash recovery. A running job belongs to one manager instance (node, pid,
 * random instance id) and holds a lease it renews. On this node a job is
 * lost when its owner is gone (its run journal's lock is free, or without a
 * journal its process is gone, or it is a closed manager of this very
 * process), and never while the owner lives, whatever the clock says. A
 * job of another node is lost when its lease expired. Each recovery is one
 * transaction in the store, so two recovering processes never both requeue
 * a job. Leases themselves are renewed in lease.c.
 */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "journal.h"
#include "lease.h"
#include "log.h"
#include "manager.h"
#include "wake.h"

#define JM_MAX_LIVE_INSTANCES 1024
#define FAIL_MESSAGE "Server restarted"

/* Instances of managers open in this process: a job owned by this pid with
 * an instance not listed here was left by a manager that closed or by an
 * earlier process that had the same pid. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t live[JM_MAX_LIVE_INSTANCES];
static int nlive;

void jm__instance_add(int64_t instance)
{
    pthread_mutex_lock(&live_lock);
    if (nlive < JM_MAX_LIVE_INSTANCES)
        live[nlive++] = instance;
    pthread_mutex_unlock(&live_lock);
}

void jm__instance_remove(int64_t instance)
{
    pthread_mutex_lock(&live_lock);
    for (int i = 0; i < nlive; i++) {
        if (live[i] == instance) {
            live[i] = live[--nlive];
            break;
        }
    }
    pthread_mutex_unlock(&live_lock);
}

static int instance_live(int64_t instance)
{
    int found = 0;
    pthread_mutex_lock(&live_lock);
    for (int i = 0; i < nlive && !found; i++)
        found = live[i] == instance;
    /* With more managers than the table holds, assume alive: a lease
     * expiry recovers the job later, which is safe; a false "dead" is not. */
    if (nlive >= JM_MAX_LIVE_INSTANCES)
        found = 1;
    pthread_mutex_unlock(&live_lock);
    return found;
}

static int owner_dead(const jm_manager *m, const jm__owner_ref *o)
{
    if (o->pid == m->owner.pid)
        return !instance_live(o->instance);
    if (o->pid <= 0 || o->pid > INT32_MAX)
        return 0;
    return kill((pid_t)o->pid, 0) != 0 && errno == ESRCH;
}


int64_t jm__recovery_interval_ms(const jm_manager *m)
{
    return m->cfg.lease_ms / 2;
}

/* Recovers one owner's jobs on this node if the owner is gone. Its run
 * journal, when it has one, decides both: the journal's lock says whether
 * it lives, and its slots which of its claimed jobs had started. */
static int recover_if_dead(jm_manager *m, const jm__owner_ref *o, int64_t now, int *k)
{
    *k = 0;
    jm__journal_probe p;
    int rc = jm__journal_look(m->db_file, o->instance, &p);
    if (rc)
        return rc;
    if (p.state == JM__JOURNAL_ALIVE || (p.state == JM__JOURNAL_NONE && !owner_dead(m, o)))
        return JM_OK;
    int known = p.state == JM__JOURNAL_DEAD;
    jm__db_lock(m);
    rc = m->ops->recover_owner(m->store, m->node_id, o, now, m->cfg.recovery, FAIL_MESSAGE,
                               p.started, p.nstarted, known, k);
    jm__db_unlock(m);
    jm__journal_probe_done(&p, rc == JM_OK);
    if (*k)
        jm__log(m, JM_LOG_WARN, NULL, "recovered %d job(s) of dead process %lld%s", *k,
                (long long)o->pid, known ? "" : " (no run journal: all counted as started)");
    return rc;
}

int jm__recover_all(jm_manager *m, int *recovered)
{
    *recovered = 0;
    jm__owner_ref *owners = NULL;
    size_t n = 0;
    jm__db_lock(m);
    int rc = m->ops->running_owners(m->store, m->node_id, &owners, &n);
    jm__db_unlock(m);
    if (rc)
        return rc;
    int64_t now = jm__now(m);
    for (size_t i = 0; i < n && rc == JM_OK; i++) {
        /* Other nodes' jobs come back by lease expiry, below; ours never
         * do while we hold them. */
        if (!owners[i].same_node ||
            (owners[i].pid == m->owner.pid && owners[i].instance == m->owner.instance))
            continue;
        int k = 0;
        rc = recover_if_dead(m, &owners[i], now, &k);
        *recovered += k;
    }
    jm__free(owners);
    if (rc) {
        jm__stats_recovered(m, *recovered);
        return rc;
    }
    int k = 0;
    jm__db_lock(m);
    rc = m->ops->recover_expired(m->store, m->node_id, now, m->cfg.recovery, FAIL_MESSAGE, &k);
    jm__db_unlock(m);
    *recovered += k;
    if (k)
        jm__log(m, JM_LOG_WARN, NULL, "recovered %d job(s) whose lease expired", k);
    jm__stats_recovered(m, *recovered);
    atomic_store(&m->next_recovery_mono, jm__mono_ms() + jm__recovery_interval_ms(m));
    return rc;
}


void jm__recover_if_due(jm_manager *m)
{
    if (jm__mono_ms() < atomic_load(&m->next_recovery_mono))
        return;
    /* A recovery decision reads leases: ours are renewed first, so a stalled
     * heartbeat never makes us judge by a lease we could still renew. */
    if (!jm__clock_watch(m) && jm__holds_claims(m))
        jm__heartbeat(m);
    int n;
    if (jm__recover_all(m, &n) != JM_OK) {
        jm__log(m, JM_LOG_WARN, NULL, "recovery failed, will try again: %s", jm_last_error());
        atomic_store(&m->next_recovery_mono, jm__mono_ms() + jm__recovery_interval_ms(m));
    }
    if (n > 0) {
        jm__pool_notify(m, 0);
        jm__wake_post(m);
    }
}

int jm_recover(jm_manager *m, int *recovered)
{
    if (recovered)
        *recovered = 0;
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_recover: manager is NULL");
    int n = 0;
    int rc = jm__recover_all(m, &n);
    if (recovered)
        *recovered = n;
    if (n > 0)
        jm__pool_notify(m, 0);
    return rc;
}
