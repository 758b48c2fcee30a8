/*
 * The run loop's side of the jobs table: claiming due jobs, recording how
 * runs ended (many per transaction), leases, checkpoints and recovery.
 * Every write to a running job names the claim it belongs to (seq and
 * attempt), so a worker that lost its job to recovery changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/job.h"
#include "store/sqlite_internal.h"

static int claim_order(const void *a, const void *b)
{
    const jm_job *x = *(jm_job *const *)a, *y = *(jm_job *const *)b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->run_at != y->run_at)
        return x->run_at < y->run_at ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int promote(jm__store *s, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_PROMOTE, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    return src == SQLITE_DONE ? JM_OK : jm__sqlite_err(s, src, "promoting scheduled jobs");
}

static int exec_pragma(jm__store *s, jm__query q)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, q, &st);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    return src == SQLITE_DONE || src == SQLITE_ROW ? JM_OK
                                                   : jm__sqlite_err(s, src, "setting durability");
}

/* Records one outcome inside the open transaction. */
static int finish_one(jm__store *s, jm__finish *f)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, f->cancel_overrides ? Q_FINISH_CANCELLABLE : Q_FINISH, &st);
    if (rc)
        return rc;
    int final = f->status >= JM_STATUS_COMPLETED;
    sqlite3_bind_int(st, 1, (int)f->status);
    sqlite3_bind_int(st, 2, f->keep_message ? 1 : 0);
    jm__bind_text(st, 3, f->message);
    jm__bind_text(st, 4, f->trace);
    jm__bind_text(st, 5, f->result);
    sqlite3_bind_int(st, 6, f->retry_count);
    sqlite3_bind_int64(st, 7, f->run_at);
    sqlite3_bind_double(st, 8, f->progress);
    sqlite3_bind_int64(st, 9, f->now);
    if (final)
        sqlite3_bind_int64(st, 10, f->now);
    else
        sqlite3_bind_null(st, 10);
    sqlite3_bind_int64(st, 11, f->seq);
    sqlite3_bind_int64(st, 12, f->attempt);
    /* No RETURNING: it makes SQLite build a temporary table per statement,
     * which cost more than the update itself. The outcome's status is known
     * unless a standing cancel could have overridden it; then one rowid
     * lookup tells. */
    int src = sqlite3_step(st);
    int changed = src == SQLITE_DONE ? sqlite3_changes(s->db) : 0;
    sqlite3_reset(st);
    if (src != SQLITE_DONE)
        return jm__sqlite_err(s, src, "recording a job's outcome");
    f->final_status = -1;
    if (!changed)
        return JM_OK;
    if (!f->cancel_overrides) {
        f->final_status = (int)f->status;
        return JM_OK;
    }
    sqlite3_stmt *q = NULL;
    if ((rc = jm__sqlite_stmt(s, Q_STATUS_OF_SEQ, &q)))
        return rc;
    sqlite3_bind_int64(q, 1, f->seq);
    src = sqlite3_step(q);
    if (src == SQLITE_ROW)
        f->final_status = sqlite3_column_int(q, 0);
    sqlite3_reset(q);
    return src == SQLITE_ROW ? JM_OK : jm__sqlite_err(s, src, "reading a job's outcome");
}

/* Takes one due row read by claim_rows and makes `job` what the update
 * wrote. Returns 0 if the row was no longer due (cannot happen inside the
 * write transaction, but the guard costs nothing). */
static int take_row(jm__store *s, sqlite3_stmt *take, const jm__claim_req *req, jm_job *job,
                    int *taken)
{
    sqlite3_bind_int64(take, 6, job->seq);
    int src = sqlite3_step(take);
    *taken = src == SQLITE_DONE && sqlite3_changes(s->db) == 1;
    sqlite3_reset(take);
    if (src != SQLITE_DONE)
        return jm__sqlite_err(s, src, "claiming a job");
    if (!*taken)
        return JM_OK;
    if (job->status == JM_STATUS_RETRYING) {
        jm__free(job->message);
        job->message = NULL;
    }
    job->status = JM_STATUS_RUNNING;
    job->attempts++;
    job->lease_until = req->lease_until;
    job->started_at = req->now;
    job->updated_at = req->now;
    return jm__job_set_str(&job->node_id, req->owner->node_id);
}

/* Reads up to `max` due rows of `types` and takes each, appending to
 * jobs[*got]. */
static int claim_pass(jm__store *s, const jm__claim_req *req, const char *types, size_t max,
                      jm_job **jobs, size_t *got)
{
    sqlite3_stmt *due = NULL, *take = NULL;
    int rc;
    if ((rc = jm__sqlite_stmt(s, Q_DUE, &due)) || (rc = jm__sqlite_stmt(s, Q_TAKE, &take)))
        return rc;
    sqlite3_bind_int64(due, 1, req->now);
    jm__bind_text(due, 2, types);
    sqlite3_bind_int64(due, 3, (sqlite3_int64)max);
    size_t first = *got, end = *got + max;
    int src;
    while ((src = sqlite3_step(due)) == SQLITE_ROW && *got < end) {
        if ((rc = jm__row_to_job(due, 0, &jobs[*got])))
            break;
        (*got)++;
    }
    if (rc == JM_OK && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "reading due jobs");
    sqlite3_reset(due);
    sqlite3_clear_bindings(due);
    if (rc)
        return rc;
    jm__bind_text(take, 1, req->owner->node_id);
    sqlite3_bind_int64(take, 2, req->owner->pid);
    sqlite3_bind_int64(take, 3, req->owner->instance);
    sqlite3_bind_int64(take, 4, req->lease_until);
    sqlite3_bind_int64(take, 5, req->now);
    size_t kept = first;
    for (size_t i = first; i < *got; i++) {
        int taken = 0;
        if (rc == JM_OK)
            rc = take_row(s, take, req, jobs[i], &taken);
        if (rc == JM_OK && taken)
            jobs[kept++] = jobs[i];
        else
            jm_job_free(jobs[i]);
    }
    *got = kept;
    sqlite3_clear_bindings(take);
    return rc;
}

/* Claims inside the open transaction: req->max of any of req->types, then
 * req->ahead_max of req->ahead_types (rows the first pass took are no
 * longer due, so none is taken twice). */
static int claim_rows(jm__store *s, const jm__claim_req *req, jm_job **jobs, size_t *got)
{
    int rc = promote(s, req->now);
    if (rc == JM_OK && req->max)
        rc = claim_pass(s, req, req->types, req->max, jobs, got);
    if (rc == JM_OK && req->ahead_max && req->ahead_types && *req->ahead_types)
        rc = claim_pass(s, req, req->ahead_types, req->ahead_max, jobs, got);
    return rc;
}

int jm__sqlite_cycle(jm__store *s, jm__finish *items, size_t n, const jm__claim_req *req,
                     jm_job ***out, size_t *nout)
{
    if (out)
        *out = NULL;
    if (nout)
        *nout = 0;
    size_t max = req ? req->max + req->ahead_max : 0;
    if (n == 0 && max == 0)
        return JM_OK;
    jm_job **jobs = NULL;
    size_t got = 0;
    if (max && !(jobs = jm__calloc(max, sizeof *jobs)))
        return jm__seterr(JM_ENOMEM, "out of memory claiming jobs");
    int rc = JM_OK;
    /* A claim alone need not reach the disk before the job starts: after a
     * power loss a lost claim only leaves the job queued (it runs again, as
     * a crash would make it anyway). Skipping that fsync is what lets a
     * newly created job start within a fraction of a millisecond. */
    int relaxed = n == 0;
    if (rc == JM_OK && relaxed) {
        s->relaxing = 1;
        rc = exec_pragma(s, Q_SYNC_NORMAL);
        if (rc == JM_OK)
            s->sync_relaxed = 1;
    }
    if (rc == JM_OK)
        rc = jm__sqlite_begin(s);
    if (rc)
        goto out;
    for (size_t i = 0; i < n && rc == JM_OK; i++)
        rc = finish_one(s, &items[i]);
    /* Each outcome rebinds every parameter; once the batch is done, the
     * strings (the caller's) must not stay bound. */
    if (n && s->q[Q_FINISH])
        sqlite3_clear_bindings(s->q[Q_FINISH]);
    if (n && s->q[Q_FINISH_CANCELLABLE])
        sqlite3_clear_bindings(s->q[Q_FINISH_CANCELLABLE]);
    if (rc == JM_OK && max)
        rc = claim_rows(s, req, jobs, &got);
    if (rc == JM_OK)
        rc = jm__sqlite_commit(s);
    else
        jm__sqlite_rollback(s);
out:
    if (relaxed) {
        s->relaxing = 0;
        /* If this fails, the next statement tries again (jm__sqlite_stmt). */
        if (s->sync_relaxed && exec_pragma(s, Q_SYNC_FULL) == JM_OK)
            s->sync_relaxed = 0;
    }
    if (rc) {
        for (size_t i = 0; i < got; i++)
            jm_job_free(jobs[i]);
        jm__free(jobs);
        return rc;
    }
    if (got > 1)
        qsort(jobs, got, sizeof *jobs, claim_order);
    if (out)
        *out = jobs;
    else
        jm__free(jobs);
    if (nout)
        *nout = got;
    return JM_OK;
}

int jm__sqlite_claim(jm__store *s, const jm__claim_req *req, jm_job ***out, size_t *n)
{
    return jm__sqlite_cycle(s, NULL, 0, req, out, n);
}

int jm__sqlite_finish(jm__store *s, jm__finish *items, size_t n)
{
    return jm__sqlite_cycle(s, items, n, NULL, NULL, NULL);
}

static int guarded_update(jm__store *s, jm__query q, int64_t seq, int64_t attempt,
                          int64_t now, const char *what)
{
    sqlite3_stmt *st = s->q[q];
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, seq);
    sqlite3_bind_int64(st, 4, attempt);
    int src = sqlite3_step(st);
    int changed = sqlite3_changes(s->db);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src != SQLITE_DONE)
        return jm__sqlite_err(s, src, what);
    if (!changed)
        return jm__seterr(JM_ESTATE, "%s: the job is no longer running under this worker", what);
    return JM_OK;
}

int jm__sqlite_checkpoint(jm__store *s, int64_t seq, int64_t attempt, const char *json,
                          int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_CHECKPOINT, &st);
    if (rc)
        return rc;
    jm__bind_text(st, 1, json);
    return guarded_update(s, Q_CHECKPOINT, seq, attempt, now, "saving a checkpoint");
}

int jm__sqlite_progress(jm__store *s, int64_t seq, int64_t attempt, double progress,
                        int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_PROGRESS, &st);
    if (rc)
        return rc;
    sqlite3_bind_double(st, 1, progress);
    return guarded_update(s, Q_PROGRESS, seq, attempt, now, "saving progress");
}

int jm__sqlite_renew(jm__store *s, const jm__owner *owner, int64_t now, int64_t lease_until,
                     jm__lease_info **out, size_t *n)
{
    (void)now;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_RENEW, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, lease_until);
    jm__bind_text(st, 2, owner->node_id);
    sqlite3_bind_int64(st, 3, owner->pid);
    sqlite3_bind_int64(st, 4, owner->instance);
    size_t cap = 0;
    jm__lease_info *v = NULL;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            jm__lease_info *nv = jm__calloc(ncap, sizeof *nv);
            if (!nv) {
                rc = jm__seterr(JM_ENOMEM, "out of memory renewing leases");
                break;
            }
            if (v)
                memcpy(nv, v, *n * sizeof *v);
            jm__free(v);
            v = nv;
            cap = ncap;
        }
        v[*n].seq = sqlite3_column_int64(st, 0);
        v[*n].cancel_requested = sqlite3_column_int(st, 1);
        (*n)++;
    }
    if (rc == JM_OK && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "renewing leases");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc) {
        /* The UPDATE runs to completion on reset; only the report is lost. */
        jm__free(v);
        *n = 0;
        return rc;
    }
    *out = v;
    return JM_OK;
}

int jm__sqlite_running_owners(jm__store *s, const char *node_id, jm__owner_ref **out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_RUNNING_OWNERS, &st);
    if (rc)
        return rc;
    jm__bind_text(st, 1, node_id);
    size_t cap = 0;
    jm__owner_ref *v = NULL;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            jm__owner_ref *nv = jm__calloc(ncap, sizeof *nv);
            if (!nv) {
                rc = jm__seterr(JM_ENOMEM, "out of memory during recovery");
                break;
            }
            if (v)
                memcpy(nv, v, *n * sizeof *v);
            jm__free(v);
            v = nv;
            cap = ncap;
        }
        v[*n].pid = sqlite3_column_int64(st, 0);
        v[*n].instance = sqlite3_column_int64(st, 1);
        (*n)++;
    }
    if (rc == JM_OK && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "listing running jobs' owners");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc) {
        jm__free(v);
        *n = 0;
        return rc;
    }
    *out = v;
    return JM_OK;
}

int jm__sqlite_recover(jm__store *s, const char *node_id, const jm__owner_ref *owner,
                       int64_t now, jm_recovery_policy policy, const char *fail_message,
                       int *recovered)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, owner ? Q_RECOVER_OWNER : Q_RECOVER_EXPIRED, &st);
    if (rc)
        return rc;
    jm__bind_text(st, 1, node_id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int(st, 3, policy == JM_RECOVER_FAIL ? 1 : 0);
    jm__bind_text(st, 4, fail_message);
    if (owner) {
        sqlite3_bind_int64(st, 5, owner->pid);
        sqlite3_bind_int64(st, 6, owner->instance);
    }
    int src = sqlite3_step(st);
    *recovered = src == SQLITE_DONE ? sqlite3_changes(s->db) : 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return src == SQLITE_DONE ? JM_OK : jm__sqlite_err(s, src, "recovering jobs");
}

int jm__sqlite_release(jm__store *s, int64_t seq, int64_t attempt, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_RELEASE, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_int64(st, 3, attempt);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    return src == SQLITE_DONE ? JM_OK : jm__sqlite_err(s, src, "releasing a job");
}
