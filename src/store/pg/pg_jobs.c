/*
 * Job rows outside the run loop: read, cancel, retry by hand, prune, a
 * running job's checkpoint and progress, and the wall clock's rebase.
 * Every value is a bound parameter. Creating jobs and group commit live in
 * pg_write.c, listing and counting in pg_list.c.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "pg_internal.h"

/* The row an id names: $1 its seq, $2 the id as stored. */
#define BY_ID "seq = $1 AND id = $2"

static const char get_sql[] = "SELECT " JM_PG_JOB_COLUMNS " FROM jm_jobs WHERE " BY_ID;
static const char status_sql[] = "SELECT status FROM jm_jobs WHERE " BY_ID;

/* One statement: a cancel never reads and then writes. $3 now, $4 1 if a
 * running job may be asked to stop. RETURNING gives the status written. */
static const char cancel_sql[] =
    "UPDATE jm_jobs SET "
    "status = CASE WHEN status <> 2 THEN 6 ELSE status END, "
    "finished_at = CASE WHEN status <> 2 THEN $3 ELSE finished_at END, "
    "message = CASE WHEN status <> 2 THEN '" JM__MSG_CANCELLED "' ELSE message END, "
    "cancel_requested = 1, updated_at = $3 "
    "WHERE " BY_ID " AND (status <= 1 OR status = 3 OR status = 7 OR (status = 2 AND $4 = 1)) "
    "RETURNING status, seq, owner_instance";

/* $3 now. Only failed (5) or cancelled (6) jobs go back to queued. */
static const char retry_sql[] =
    "UPDATE jm_jobs SET status = 1, retry_count = 0, run_at = $3, message = NULL, "
    "finished_at = NULL, cancel_requested = 0, pause_requested = 0, blocked_by = NULL, "
    "progress = 0, updated_at = $3 "
    "WHERE " BY_ID " AND status IN (5, 6)";

/* Rows another pruner is deleting are left to it. */
static const char prune_sql[] =
    "DELETE FROM jm_jobs WHERE seq IN (SELECT seq FROM jm_jobs "
    "WHERE status BETWEEN 4 AND 6 AND finished_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";

static const char keyed_sql[] =
    "SELECT max(created_at) FROM jm_jobs WHERE idempotency_key = $1";

/* A relative delay counts from when its row was written (updated_at):
 * rows written "after" now were written before the clock stepped back. */
static const char rebase_sql[] =
    "UPDATE jm_jobs SET run_at = $1 + greatest(0, run_at - updated_at), updated_at = $1 "
    "WHERE status IN (1, 3) AND updated_at > $1";

/* What finds the row an id names: its seq ($1) and the id as stored ($2),
 * the parameters a statement by id starts with. */
typedef struct row_key {
    char prefix[JM_JOB_ID_SIZE];
    int64_t seq;
    jm__pg_params p;
} row_key;

static int key_init(row_key *k, const char *id)
{
    int rc = jm__pg_id_split(id, k->prefix, &k->seq);
    if (rc)
        return rc;
    jm__pg_p_init(&k->p);
    jm__pg_p_i64(&k->p, k->seq);
    jm__pg_p_str(&k->p, k->prefix);
    return JM_OK;
}

/* Runs a statement that takes only the row key. */
static int run_by_id(jm__store *s, const char *what, const char *sql, const char *id,
                     row_key *k, PGresult **out)
{
    int rc = key_init(k, id);
    return rc ? rc : jm__pg_run(s, what, sql, &k->p, out);
}

int jm__pg_get(jm__store *s, const char *id, jm_job **out)
{
    row_key k;
    PGresult *r = NULL;
    int rc = run_by_id(s, "reading a job", get_sql, id, &k, &r);
    if (rc)
        return rc;
    if (PQntuples(r) > 0)
        rc = jm__pg_row_to_job(r, 0, 0, out);
    else
        rc = jm__seterr(JM_ENOTFOUND, "job %s not found", id);
    PQclear(r);
    return rc;
}

int jm__pg_status(jm__store *s, const char *id, jm_status *out)
{
    row_key k;
    PGresult *r = NULL;
    int rc = run_by_id(s, "reading a job's status", status_sql, id, &k, &r);
    if (rc)
        return rc;
    if (PQntuples(r) > 0)
        *out = (jm_status)jm__pg_i64(r, 0, 0);
    else
        rc = jm__seterr(JM_ENOTFOUND, "job %s not found", id);
    PQclear(r);
    return rc;
}

int jm__pg_cancel(jm__store *s, const char *id, int cancellable_running, int64_t now,
                  jm__cancel_outcome *outcome, int64_t *seq, int64_t *owner_instance)
{
    *owner_instance = 0;
    row_key k;
    int rc = key_init(&k, id);
    if (rc)
        return rc;
    jm__pg_p_i64(&k.p, now);
    jm__pg_p_i64(&k.p, cancellable_running ? 1 : 0);
    PGresult *r = NULL;
    if ((rc = jm__pg_run(s, "cancelling a job", cancel_sql, &k.p, &r)))
        return rc;
    int found = PQntuples(r) > 0;
    if (found) {
        *outcome = jm__pg_i64(r, 0, 0) == JM_STATUS_RUNNING ? JM__CANCEL_REQUESTED
                                                             : JM__CANCEL_CANCELLED;
        *seq = jm__pg_i64(r, 0, 1);
        *owner_instance = jm__pg_i64(r, 0, 2);
    }
    PQclear(r);
    if (found)
        return JM_OK;
    /* Nothing changed: read the status only to explain the refusal. */
    jm_status cur;
    if ((rc = jm__pg_status(s, id, &cur)))
        return rc;
    if (cur == JM_STATUS_RUNNING)
        return jm__seterr(JM_ENOTCANCELLABLE, "job %s is running and its type cannot be cancelled",
                          id);
    return jm__seterr(JM_ESTATE, "job %s is %s: it cannot be cancelled", id, jm_status_name(cur));
}

int jm__pg_retry(jm__store *s, const char *id, int64_t now)
{
    row_key k;
    int rc = key_init(&k, id);
    if (rc)
        return rc;
    jm__pg_p_i64(&k.p, now);
    PGresult *r = NULL;
    rc = jm__pg_run(s, "requeueing a job", retry_sql, &k.p, &r);
    if (rc == JM_ECONFLICT)
        return jm__seterr(JM_ECONFLICT, "job %s cannot be requeued: its idempotency key is held "
                                        "by another active job",
                          id);
    if (rc)
        return rc;
    int64_t changed = jm__pg_changes(r);
    PQclear(r);
    if (changed)
        return JM_OK;
    jm_status cur;
    if ((rc = jm__pg_status(s, id, &cur)))
        return rc;
    return jm__seterr(JM_ESTATE, "job %s is %s: only failed or cancelled jobs can be retried", id,
                      jm_status_name(cur));
}

/* Runs a write of its own and reports how many rows it changed. */
static int run_write(jm__store *s, const char *what, const char *sql, const jm__pg_params *p,
                     int64_t *changed)
{
    PGresult *r = NULL;
    int rc = jm__pg_run(s, what, sql, p, &r);
    *changed = rc ? 0 : jm__pg_changes(r);
    PQclear(r);
    return rc;
}

int jm__pg_prune(jm__store *s, int64_t finished_before, int64_t batch, int64_t *deleted)
{
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, finished_before);
    jm__pg_p_i64(&p, batch);
    return run_write(s, "pruning jobs", prune_sql, &p, deleted);
}

int jm__pg_rebase(jm__store *s, int64_t now, int *changed)
{
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, now);
    int64_t n = 0;
    int rc = run_write(s, "rebasing delayed jobs", rebase_sql, &p, &n);
    *changed = (int)n;
    return rc;
}

int jm__pg_keyed_job_created(jm__store *s, const char *key, int64_t *out)
{
    *out = 0;
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, key);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading a policy's last job", keyed_sql, &p, &r);
    if (rc)
        return rc;
    *out = jm__pg_i64(r, 0, 0); /* max() of no rows is NULL: 0 */
    PQclear(r);
    return JM_OK;
}

/* ---- a running job's checkpoint and progress ---- */

static const char checkpoint_sql[] =
    "UPDATE jm_jobs SET checkpoint = $1, updated_at = $2 "
    "WHERE seq = $3 AND status = 2 AND attempts = $4";
static const char progress_sql[] =
    "UPDATE jm_jobs SET progress = $1, updated_at = $2 "
    "WHERE seq = $3 AND status = 2 AND attempts = $4";

/* Runs an update fenced by the claim: $1 set by the caller, then now, seq
 * and attempt. */
static int guarded_update(jm__store *s, const char *sql, jm__pg_params *p, int64_t seq,
                          int64_t attempt, int64_t now, const char *what)
{
    jm__pg_p_i64(p, now);
    jm__pg_p_i64(p, seq);
    jm__pg_p_i64(p, attempt);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, what, sql, p, &r);
    if (rc)
        return rc;
    int64_t changed = jm__pg_changes(r);
    PQclear(r);
    if (!changed)
        return jm__seterr(JM_ESTATE, "%s: the job is no longer running under this worker", what);
    return JM_OK;
}

int jm__pg_checkpoint(jm__store *s, int64_t seq, int64_t attempt, const char *json,
                      int64_t now)
{
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, json);
    return guarded_update(s, checkpoint_sql, &p, seq, attempt, now, "saving a checkpoint");
}

int jm__pg_progress(jm__store *s, int64_t seq, int64_t attempt, double progress,
                    int64_t now)
{
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_dbl(&p, progress);
    return guarded_update(s, progress_sql, &p, seq, attempt, now, "saving progress");
}
