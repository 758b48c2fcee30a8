/*
 * Running jobs in the PostgreSQL store: leases, the start check, putting
 * a claimed job back, and recovering the jobs of lost workers. The claim
 * and the outcomes are pg_claim.c's.
 *
 * Every write names the claim it belongs to or re-checks "status = 2"
 * under the row's lock, so two recovering nodes never both end a job, and
 * a worker that lost its job changes nothing.
 */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "pg_array.h"
#include "pg_internal.h"

/* What a lost running job becomes. $1 now, $2 non-zero under
 * JM_RECOVER_FAIL, $3 its message. */
#define RECOVER_SET                                                                       \
    "status = CASE WHEN cancel_requested <> 0 THEN 6 WHEN pause_requested <> 0 THEN 7 "   \
    "  WHEN $2::integer <> 0 THEN 5 WHEN retry_count >= max_retries THEN 5 ELSE 3 END, "  \
    "message = CASE WHEN cancel_requested <> 0 THEN '" JM__MSG_CANCELLED "' "             \
    "  WHEN pause_requested <> 0 THEN '" JM__MSG_PAUSED_LOST "' "                         \
    "  WHEN $2::integer <> 0 THEN $3::text "                                              \
    "  WHEN retry_count >= max_retries THEN '" JM__MSG_MAX_RETRIES "' "                   \
    "  ELSE 'Recovered after worker was lost' END, "                                      \
    "exception_trace = CASE WHEN cancel_requested <> 0 OR pause_requested <> 0 "          \
    "  OR $2::integer <> 0 THEN exception_trace "                                         \
    "  WHEN retry_count >= max_retries THEN "                                             \
    "    coalesce(exception_trace, 'worker lost on the last attempt') "                   \
    "  ELSE exception_trace END, "                                                        \
    "finished_at = CASE WHEN cancel_requested <> 0 THEN $1::bigint "                      \
    "  WHEN pause_requested <> 0 THEN NULL "                                              \
    "  WHEN $2::integer <> 0 OR retry_count >= max_retries THEN $1::bigint ELSE NULL END, " \
    "retry_count = CASE WHEN cancel_requested <> 0 OR pause_requested <> 0 "              \
    "  OR $2::integer <> 0 OR retry_count >= max_retries THEN retry_count "               \
    "  ELSE retry_count + 1 END, "                                                        \
    "pause_requested = 0, "                                                               \
    "run_at = $1::bigint, updated_at = $1::bigint, lease_until = NULL, owner_pid = NULL, " \
    "owner_instance = NULL "

/* What a claimed job that never started becomes: back to retrying without
 * spending a retry, unless a cancel or pause was requested. $1 now. */
#define RELEASE_SET                                                                       \
    "status = CASE WHEN cancel_requested <> 0 THEN 6 WHEN pause_requested <> 0 THEN 7 "   \
    "  ELSE 3 END, "                                                                      \
    "pause_requested = 0, "                                                               \
    "message = CASE WHEN cancel_requested <> 0 THEN '" JM__MSG_CANCELLED "' "             \
    "  ELSE message END, "                                                                \
    "finished_at = CASE WHEN cancel_requested <> 0 THEN $1::bigint ELSE NULL END, "       \
    "run_at = $1::bigint, updated_at = $1::bigint, started_at = NULL, "                   \
    "lease_until = NULL, owner_pid = NULL, owner_instance = NULL "

int jm__pg_renew(jm__store *s, const jm__owner *owner, int64_t now, int64_t lease_until,
                 jm__lease_info **out, size_t *n)
{
    static const char sql[] =
        "UPDATE jm_jobs SET lease_until = $1::bigint WHERE status = 2 "
        "AND node_id = $2::text AND owner_pid = $3::bigint AND owner_instance = $4::bigint "
        "RETURNING seq, attempts, cancel_requested, pause_requested";
    (void)now;
    *out = NULL;
    *n = 0;
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, lease_until);
    jm__pg_p_str(&p, owner->node_id);
    jm__pg_p_i64(&p, owner->pid);
    jm__pg_p_i64(&p, owner->instance);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "renewing leases", sql, &p, &r);
    if (rc)
        return rc;
    size_t rows = (size_t)PQntuples(r);
    jm__lease_info *v = rows ? jm__calloc(rows, sizeof *v) : NULL;
    if (rows && !v) {
        PQclear(r);
        return jm__seterr(JM_ENOMEM, "out of memory renewing leases");
    }
    for (size_t i = 0; i < rows; i++) {
        v[i].seq = jm__pg_i64(r, (int)i, 0);
        v[i].attempt = jm__pg_i64(r, (int)i, 1);
        v[i].cancel_requested = jm__pg_i64(r, (int)i, 2) != 0;
        v[i].pause_requested = jm__pg_i64(r, (int)i, 3) != 0;
    }
    PQclear(r);
    *out = v;
    *n = rows;
    return JM_OK;
}

int jm__pg_release(jm__store *s, int64_t seq, int64_t attempt, int64_t now)
{
    static const char sql[] = "UPDATE jm_jobs SET " RELEASE_SET
                              "WHERE seq = $2::bigint AND status = 2 AND attempts = $3::bigint";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, now);
    jm__pg_p_i64(&p, seq);
    jm__pg_p_i64(&p, attempt);
    return jm__pg_run(s, "releasing a job", sql, &p, NULL);
}

int jm__pg_start_check(jm__store *s, int64_t seq, int64_t attempt, jm__start_verdict *out)
{
    static const char sql[] =
        "SELECT (status = 2 AND attempts = $2::bigint)::integer, cancel_requested, "
        "pause_requested FROM jm_jobs WHERE seq = $1::bigint";
    *out = JM__START_RUN;
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, seq);
    jm__pg_p_i64(&p, attempt);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "checking a job", sql, &p, &r);
    if (rc)
        return rc;
    if (PQntuples(r) == 0)
        *out = JM__START_LOST; /* the row is gone: deleted from outside */
    else
        *out = !jm__pg_i64(r, 0, 0)  ? JM__START_LOST
               : jm__pg_i64(r, 0, 1) ? JM__START_CANCELLED
               : jm__pg_i64(r, 0, 2) ? JM__START_PAUSED
                                     : JM__START_RUN;
    PQclear(r);
    return JM_OK;
}

int jm__pg_running_owners(jm__store *s, const char *node_id, jm__owner_ref **out, size_t *n)
{
    static const char sql[] =
        "SELECT DISTINCT owner_pid, owner_instance, "
        "(node_id IS NOT DISTINCT FROM $1::text)::integer "
        "FROM jm_jobs WHERE status = 2 AND owner_pid IS NOT NULL";
    *out = NULL;
    *n = 0;
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, node_id);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "listing running jobs' owners", sql, &p, &r);
    if (rc)
        return rc;
    size_t rows = (size_t)PQntuples(r);
    jm__owner_ref *v = rows ? jm__calloc(rows, sizeof *v) : NULL;
    if (rows && !v) {
        PQclear(r);
        return jm__seterr(JM_ENOMEM, "out of memory during recovery");
    }
    for (size_t i = 0; i < rows; i++) {
        v[i].pid = jm__pg_i64(r, (int)i, 0);
        v[i].instance = jm__pg_i64(r, (int)i, 1);
        v[i].same_node = jm__pg_i64(r, (int)i, 2) != 0;
    }
    PQclear(r);
    *out = v;
    *n = rows;
    return JM_OK;
}

/* ---- recovery ---- */

static void recovery_params(jm__pg_params *p, int64_t now, jm_recovery_policy policy,
                            const char *fail_message)
{
    jm__pg_p_init(p);
    jm__pg_p_i64(p, now);
    jm__pg_p_i64(p, policy == JM_RECOVER_FAIL ? 1 : 0);
    jm__pg_p_str(p, fail_message);
}

static void owner_params(jm__pg_params *p, const char *node_id, const jm__owner_ref *owner)
{
    jm__pg_p_str(p, node_id);
    jm__pg_p_i64(p, owner->pid);
    jm__pg_p_i64(p, owner->instance);
}

/* Runs a recovery statement, adding the rows it changed. */
static int run_recovery(jm__store *s, const char *sql, const jm__pg_params *p,
                        int *recovered)
{
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "recovering jobs", sql, p, &r);
    if (rc == JM_OK)
        *recovered += (int)jm__pg_changes(r);
    PQclear(r);
    return rc;
}

/* The seqs (attempts 0) or attempts (1) of the started runs as an array
 * literal ("{1,2}") in *a: 0, or -1 when out of memory. */
static int run_array(const jm__run_ref *runs, size_t n, int attempts, jm__pg_arr *a)
{
    memset(a, 0, sizeof *a);
    for (size_t i = 0; i < n; i++)
        jm__pg_arr_i64(a, attempts ? runs[i].attempt : runs[i].seq);
    return jm__pg_arr_end(a);
}

/* Ends the owner's runs that started, inside the open transaction. */
static int recover_started(jm__store *s, const char *node_id, const jm__owner_ref *owner,
                           int64_t now, jm_recovery_policy policy, const char *fail_message,
                           const jm__run_ref *started, size_t nstarted, int *recovered)
{
    static const char sql[] =
        "UPDATE jm_jobs SET " RECOVER_SET
        "FROM unnest($7::bigint[], $8::bigint[]) AS r(r_seq, r_attempt) "
        "WHERE seq = r.r_seq AND attempts = r.r_attempt AND status = 2 "
        "AND node_id IS NOT DISTINCT FROM $4::text AND owner_pid = $5::bigint "
        "AND owner_instance = $6::bigint";
    jm__pg_arr seqs, attempts;
    int bad = run_array(started, nstarted, 0, &seqs);
    bad |= run_array(started, nstarted, 1, &attempts);
    int rc = JM_OK;
    if (bad) {
        rc = jm__seterr(JM_ENOMEM, "out of memory during recovery");
    } else {
        jm__pg_params p;
        recovery_params(&p, now, policy, fail_message);
        owner_params(&p, node_id, owner);
        jm__pg_p_str(&p, seqs.p);
        jm__pg_p_str(&p, attempts.p);
        rc = run_recovery(s, sql, &p, recovered);
    }
    jm__pg_arr_free(&seqs);
    jm__pg_arr_free(&attempts);
    return rc;
}

/* Ends the owner's other runs: as started ones, or (started_known) back
 * as a release puts them. */
static int recover_rest(jm__store *s, const char *node_id, const jm__owner_ref *owner,
                        int64_t now, jm_recovery_policy policy, const char *fail_message,
                        int started_known, int *recovered)
{
    static const char recover_sql[] =
        "UPDATE jm_jobs SET " RECOVER_SET
        "WHERE status = 2 AND node_id = $4::text AND owner_pid = $5::bigint "
        "AND owner_instance = $6::bigint";
    static const char release_sql[] =
        "UPDATE jm_jobs SET " RELEASE_SET
        "WHERE status = 2 AND node_id IS NOT DISTINCT FROM $2::text "
        "AND owner_pid = $3::bigint AND owner_instance = $4::bigint";
    jm__pg_params p;
    if (started_known) {
        jm__pg_p_init(&p);
        jm__pg_p_i64(&p, now);
    } else {
        recovery_params(&p, now, policy, fail_message);
    }
    owner_params(&p, node_id, owner);
    return run_recovery(s, started_known ? release_sql : recover_sql, &p, recovered);
}

int jm__pg_recover_owner(jm__store *s, const char *node_id, const jm__owner_ref *owner,
                         int64_t now, jm_recovery_policy policy, const char *fail_message,
                         const jm__run_ref *started, size_t nstarted, int started_known,
                         int *recovered)
{
    /* The owner's rows are locked first, in seq order: a second node
     * recovering the same owner waits here rather than deadlock, then
     * finds them no longer running. */
    static const char lock_sql[] =
        "SELECT seq FROM jm_jobs WHERE status = 2 AND node_id IS NOT DISTINCT FROM $1::text "
        "AND owner_pid = $2::bigint AND owner_instance = $3::bigint ORDER BY seq FOR UPDATE";
    *recovered = 0;
    int rc = jm__pg_begin(s, "recovering jobs");
    if (rc)
        return rc;
    jm__pg_params p;
    jm__pg_p_init(&p);
    owner_params(&p, node_id, owner);
    rc = jm__pg_run(s, "recovering jobs", lock_sql, &p, NULL);
    if (rc == JM_OK && nstarted)
        rc = recover_started(s, node_id, owner, now, policy, fail_message, started, nstarted,
                             recovered);
    if (rc == JM_OK)
        rc = recover_rest(s, node_id, owner, now, policy, fail_message, started_known,
                          recovered);
    if (rc == JM_OK)
        rc = jm__pg_commit(s, "recovering jobs");
    else
        jm__pg_rollback(s);
    if (rc)
        *recovered = 0;
    return rc;
}

int jm__pg_recover_expired(jm__store *s, const char *node_id, int64_t now,
                           jm_recovery_policy policy, const char *fail_message,
                           int *recovered)
{
    /* A job on this node whose owner lives is never taken by its lease
     * alone: liveness beats a timestamp (recovery.c). Rows another
     * transaction holds are left to it (a renewal, an outcome, another
     * node's recovery): the next pass sees what it did. */
    static const char sql[] =
        "UPDATE jm_jobs SET " RECOVER_SET
        "WHERE status = 2 AND seq = ANY (ARRAY(SELECT seq FROM jm_jobs WHERE status = 2 "
        "AND (lease_until IS NULL OR lease_until < $1::bigint) "
        "AND (node_id IS DISTINCT FROM $4::text OR owner_pid IS NULL) "
        "FOR UPDATE SKIP LOCKED))";
    *recovered = 0;
    jm__pg_params p;
    recovery_params(&p, now, policy, fail_message);
    jm__pg_p_str(&p, node_id);
    return run_recovery(s, sql, &p, recovered);
}
