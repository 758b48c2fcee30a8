/*
 * The run loop's side of the jobs table: claiming due jobs, recording how
 * runs ended (many per transaction), leases, checkpoints and recovery.
 * Every write to a running job names the claim it belongs to (seq and
 * attempt), so a worker that lost its job to recovery changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "error.h"
#include "job.h"
#include "sqlite_internal.h"

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

/* Runs a statement that binds nothing (a pragma, a savepoint). */
static int exec_fixed(jm__store *s, jm__query q, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, q, &st);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    return src == SQLITE_DONE || src == SQLITE_ROW ? JM_OK : jm__sqlite_err(s, src, what);
}

/* Records one outcome inside the open transaction. */
static int finish_one(jm__store *s, jm__finish *f)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, f->cancel_overrides ? Q_FINISH_CANCELLABLE : Q_FINISH, &st);
    if (rc)
        return rc;
    int final = f->status >= JM_STATUS_COMPLETED;
    sqlite3_bind_int(st, P_FINISH_status, (int)f->status);
    sqlite3_bind_int(st, P_FINISH_keep_message, f->keep_message ? 1 : 0);
    jm__bind_text(st, P_FINISH_message, f->message);
    jm__bind_text(st, P_FINISH_trace, f->trace);
    jm__bind_text(st, P_FINISH_result, f->result);
    sqlite3_bind_int(st, P_FINISH_retry_count, f->retry_count);
    sqlite3_bind_int64(st, P_FINISH_run_at, f->run_at);
    sqlite3_bind_double(st, P_FINISH_progress, f->progress);
    sqlite3_bind_int64(st, P_FINISH_now, f->now);
    if (final)
        sqlite3_bind_int64(st, P_FINISH_finished_at, f->now);
    else
        sqlite3_bind_null(st, P_FINISH_finished_at);
    sqlite3_bind_int64(st, P_FINISH_seq, f->seq);
    sqlite3_bind_int64(st, P_FINISH_attempt, f->attempt);
    if (f->started_at)
        sqlite3_bind_int64(st, P_FINISH_started_at, f->started_at);
    else
        sqlite3_bind_null(st, P_FINISH_started_at);
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
    sqlite3_bind_int64(take, P_TAKE_seq, job->seq);
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

/* Fails a due row that outside damage made unreadable, inside the open
 * transaction; `damage` says what is wrong (jm__row_damage). */
static int set_aside(jm__store *s, int64_t seq, const char *damage, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_SET_ASIDE, &st);
    if (rc)
        return rc;
    jm__bind_text(st, 1, damage);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, seq);
    int64_t changed = 0;
    rc = jm__sqlite_write(s, st, "setting a damaged job row aside", &changed);
    sqlite3_clear_bindings(st);
    if (rc)
        return rc;
    /* The row was just read as due in this transaction; if it cannot be
     * set aside, the claim stops rather than read it again and again. */
    if (!changed)
        return jm__seterr(JM_EDB, "damaged job row (seq %lld) could not be set aside",
                          (long long)seq);
    return JM_OK;
}

/* Reads up to `max` due rows of `types` and takes each, appending to
 * jobs[*got]. A damaged row ends the read early: it is set aside, and
 * *cut_short tells the caller to read on behind it. */
static int claim_pass(jm__store *s, const jm__claim_req *req, const char *types, size_t max,
                      jm_job **jobs, size_t *got, int *cut_short)
{
    sqlite3_stmt *due = NULL, *take = NULL;
    int rc;
    if ((rc = jm__sqlite_stmt(s, Q_DUE, &due)) || (rc = jm__sqlite_stmt(s, Q_TAKE, &take)))
        return rc;
    sqlite3_bind_int64(due, 1, req->now);
    jm__bind_text(due, 2, types);
    sqlite3_bind_int64(due, 3, (sqlite3_int64)max);
    size_t first = *got, end = *got + max;
    int64_t damaged_seq = 0;
    const char *damage = NULL;
    int src;
    while ((src = sqlite3_step(due)) == SQLITE_ROW && *got < end) {
        if ((rc = jm__row_to_job(due, 0, &jobs[*got]))) {
            if (rc == JM_EDB && (damage = jm__row_damage(due, 0))) {
                damaged_seq = sqlite3_column_int64(due, 0);
                rc = JM_OK;
            }
            break;
        }
        (*got)++;
    }
    if (rc == JM_OK && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "reading due jobs");
    sqlite3_reset(due);
    sqlite3_clear_bindings(due);
    *cut_short = damage != NULL;
    if (rc == JM_OK && damage)
        rc = set_aside(s, damaged_seq, damage, req->now);
    if (rc)
        return rc;
    /* The gate judges each row first: a row something holds back is
     * marked and left, which takes it out of the due index, so the caller
     * reads on behind it. */
    size_t judged = first;
    for (size_t i = first; i < *got; i++) {
        int blocked = 0;
        if (rc == JM_OK)
            rc = jm__sqlite_gate_judge(s, jobs[i], &blocked);
        if (rc || blocked) {
            *cut_short |= blocked;
            jm_job_free(jobs[i]);
        } else {
            jobs[judged++] = jobs[i];
        }
    }
    *got = judged;
    if (rc) {
        for (size_t i = first; i < judged; i++)
            jm_job_free(jobs[i]);
        *got = first;
        return rc;
    }
    jm__bind_text(take, P_TAKE_node, req->owner->node_id);
    sqlite3_bind_int64(take, P_TAKE_pid, req->owner->pid);
    sqlite3_bind_int64(take, P_TAKE_instance, req->owner->instance);
    sqlite3_bind_int64(take, P_TAKE_lease_until, req->lease_until);
    sqlite3_bind_int64(take, P_TAKE_now, req->now);
    /* The first pass is one job per idle worker: those start at once. */
    sqlite3_bind_int(take, P_TAKE_starts, types == req->types);
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

/* Claims up to `max` rows of `types`: one pass, and another behind each
 * damaged row a pass set aside (it is no longer due), so damaged rows never
 * cost good ones their place. */
static int claim_up_to(jm__store *s, const jm__claim_req *req, const char *types, size_t max,
                       jm_job **jobs, size_t *got)
{
    size_t end = *got + max;
    int rc = JM_OK, cut_short = 1;
    while (rc == JM_OK && cut_short && *got < end)
        rc = claim_pass(s, req, types, end - *got, jobs, got, &cut_short);
    return rc;
}

/* Claims inside the open transaction: req->max of any of req->types, then
 * req->ahead_max of req->ahead_types (rows the first pass took are no
 * longer due, so none is taken twice). */
static int claim_rows(jm__store *s, const jm__claim_req *req, jm_job **jobs, size_t *got)
{
    int closed = 0, returned = 0;
    int rc = promote(s, req->now);
    if (rc == JM_OK)
        rc = jm__sqlite_gate_open(s, &closed);
    if (rc || closed)
        return rc;
    /* Jobs whose holder is gone go back first, so they keep their place
     * ahead of lower jobs; while a pass fills no worker and brought some
     * back, the next brings more. */
    size_t want = req->max + req->ahead_max;
    do {
        size_t before = *got;
        rc = jm__sqlite_gate_sweep(s, want, &returned);
        if (rc == JM_OK && req->max && *got < req->max)
            rc = claim_up_to(s, req, req->types, req->max - *got, jobs, got);
        if (returned && *got == before && rc == JM_OK)
            break;
    } while (rc == JM_OK && returned && *got < req->max);
    if (rc == JM_OK && req->ahead_max && req->ahead_types && *req->ahead_types)
        rc = claim_up_to(s, req, req->ahead_types, req->ahead_max, jobs, got);
    return rc;
}

/* Claims under a savepoint, after the outcomes: a claim that fails undoes
 * only itself, its jobs are freed, its error goes to *claim_err, and the
 * outcomes still commit. An error is returned only when the claim cannot
 * be undone alone (SQLite rolls a whole transaction back on some errors,
 * e.g. a full disk): then nothing of the transaction may commit. */
static int claim_apart(jm__store *s, const jm__claim_req *req, jm_job **jobs, size_t *got,
                       int *claim_err)
{
    int rc = exec_fixed(s, Q_CLAIM_SAVEPOINT, "starting the claim");
    int opened = rc == JM_OK;
    if (opened)
        rc = claim_rows(s, req, jobs, got);
    *claim_err = rc;
    /* On success the savepoint ends with the transaction's COMMIT. */
    if (rc == JM_OK)
        return JM_OK;
    for (size_t i = 0; i < *got; i++)
        jm_job_free(jobs[i]);
    *got = 0;
    if (sqlite3_get_autocommit(s->db))
        return rc;
    if (!opened)
        return JM_OK;
    int undo = exec_fixed(s, Q_CLAIM_ROLLBACK, "undoing a failed claim");
    if (undo == JM_OK)
        undo = exec_fixed(s, Q_CLAIM_RELEASE, "undoing a failed claim");
    return undo;
}

int jm__sqlite_cycle(jm__store *s, jm__finish *items, size_t n, const jm__claim_req *req,
                     jm_job ***out, size_t *nout, int *claim_err)
{
    if (out)
        *out = NULL;
    if (nout)
        *nout = 0;
    if (claim_err)
        *claim_err = JM_OK;
    size_t max = req ? req->max + req->ahead_max : 0;
    if (n == 0 && max == 0)
        return JM_OK;
    jm_job **jobs = NULL;
    size_t got = 0;
    int rc = JM_OK, claim_rc = JM_OK;
    if (max && !(jobs = jm__calloc(max, sizeof *jobs))) {
        claim_rc = jm__seterr(JM_ENOMEM, "out of memory claiming jobs");
        if (n == 0) {
            if (claim_err)
                *claim_err = claim_rc;
            return claim_rc;
        }
        /* The outcomes never wait on a claim: they are recorded without it. */
        max = 0;
    }
    /* A claim alone need not reach the disk before the job starts: after a
     * power loss a lost claim only leaves the job queued (it runs again, as
     * a crash would make it anyway). Skipping that fsync is what lets a
     * newly created job start within a fraction of a millisecond. */
    int relaxed = n == 0 && s->durable_sync;
    if (rc == JM_OK && relaxed) {
        s->relaxing = 1;
        rc = exec_fixed(s, Q_SYNC_NORMAL, "setting durability");
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
        rc = claim_apart(s, req, jobs, &got, &claim_rc);
    if (rc == JM_OK)
        rc = jm__sqlite_commit(s);
    else
        jm__sqlite_rollback(s);
out:
    if (relaxed) {
        s->relaxing = 0;
        /* If this fails, the next statement tries again (jm__sqlite_stmt). */
        if (s->sync_relaxed && exec_fixed(s, Q_SYNC_FULL, "setting durability") == JM_OK)
            s->sync_relaxed = 0;
    }
    if (claim_err)
        *claim_err = rc ? rc : claim_rc;
    if (rc || claim_rc) {
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
    int claim_err = JM_OK;
    int rc = jm__sqlite_cycle(s, NULL, 0, req, out, n, &claim_err);
    return rc ? rc : claim_err;
}

int jm__sqlite_finish(jm__store *s, jm__finish *items, size_t n)
{
    return jm__sqlite_cycle(s, items, n, NULL, NULL, NULL, NULL);
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
        jm__lease_info *nv = jm__array_grow(v, *n, &cap, sizeof *v);
        if (!nv) {
            rc = jm__seterr(JM_ENOMEM, "out of memory renewing leases");
            break;
        }
        v = nv;
        v[*n].seq = sqlite3_column_int64(st, 0);
        v[*n].attempt = sqlite3_column_int64(st, 1);
        v[*n].cancel_requested = sqlite3_column_int(st, 2);
        v[*n].pause_requested = sqlite3_column_int(st, 3);
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
        jm__owner_ref *nv = jm__array_grow(v, *n, &cap, sizeof *v);
        if (!nv) {
            rc = jm__seterr(JM_ENOMEM, "out of memory during recovery");
            break;
        }
        v = nv;
        v[*n].pid = sqlite3_column_int64(st, 0);
        v[*n].instance = sqlite3_column_int64(st, 1);
        v[*n].same_node = sqlite3_column_int(st, 2);
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

/* Binds what the recovery statements use, by name: each uses a different
 * subset of :node, :now, :fail, :fail_message, :pid and :instance (a name
 * a statement lacks has index 0 and binds nothing). */
static void bind_recovery(sqlite3_stmt *st, const char *node_id, const jm__owner_ref *owner,
                          int64_t now, jm_recovery_policy policy, const char *fail_message)
{
    jm__bind_text(st, sqlite3_bind_parameter_index(st, ":node"), node_id);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":now"), now);
    sqlite3_bind_int(st, sqlite3_bind_parameter_index(st, ":fail"),
                     policy == JM_RECOVER_FAIL ? 1 : 0);
    jm__bind_text(st, sqlite3_bind_parameter_index(st, ":fail_message"), fail_message);
    if (owner) {
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":pid"), owner->pid);
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":instance"), owner->instance);
    }
}

/* Runs a bound recovery statement once, adding the rows it changed. */
static int step_recovery(jm__store *s, sqlite3_stmt *st, int *recovered)
{
    int64_t changed = 0;
    int rc = jm__sqlite_write(s, st, "recovering jobs", &changed);
    *recovered += (int)changed;
    return rc;
}

int jm__sqlite_recover_owner(jm__store *s, const char *node_id, const jm__owner_ref *owner,
                             int64_t now, jm_recovery_policy policy, const char *fail_message,
                             const jm__run_ref *started, size_t nstarted, int started_known,
                             int *recovered)
{
    *recovered = 0;
    sqlite3_stmt *run = NULL, *rest = NULL;
    int rc = jm__sqlite_stmt(s, Q_RECOVER_RUN, &run);
    if (rc == JM_OK)
        rc = jm__sqlite_stmt(s, started_known ? Q_RELEASE_OWNER : Q_RECOVER_OWNER, &rest);
    if (rc == JM_OK)
        rc = jm__sqlite_begin(s);
    if (rc)
        return rc;
    bind_recovery(run, node_id, owner, now, policy, fail_message);
    int at_seq = sqlite3_bind_parameter_index(run, ":seq");
    int at_attempt = sqlite3_bind_parameter_index(run, ":attempt");
    for (size_t i = 0; i < nstarted && rc == JM_OK; i++) {
        sqlite3_bind_int64(run, at_seq, started[i].seq);
        sqlite3_bind_int64(run, at_attempt, started[i].attempt);
        rc = step_recovery(s, run, recovered);
    }
    sqlite3_clear_bindings(run);
    if (rc == JM_OK) {
        bind_recovery(rest, node_id, owner, now, policy, fail_message);
        rc = step_recovery(s, rest, recovered);
        sqlite3_clear_bindings(rest);
    }
    if (rc == JM_OK)
        rc = jm__sqlite_commit(s);
    else
        jm__sqlite_rollback(s);
    if (rc)
        *recovered = 0;
    return rc;
}

int jm__sqlite_recover_expired(jm__store *s, const char *node_id, int64_t now,
                               jm_recovery_policy policy, const char *fail_message,
                               int *recovered)
{
    *recovered = 0;
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_RECOVER_EXPIRED, &st);
    if (rc)
        return rc;
    bind_recovery(st, node_id, NULL, now, policy, fail_message);
    rc = step_recovery(s, st, recovered);
    sqlite3_clear_bindings(st);
    return rc;
}

int jm__sqlite_rebase(jm__store *s, int64_t now, int *changed)
{
    *changed = 0;
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_REBASE, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    int64_t n = 0;
    rc = jm__sqlite_write(s, st, "rebasing delayed jobs", &n);
    *changed = (int)n;
    return rc;
}

int jm__sqlite_start_check(jm__store *s, int64_t seq, int64_t attempt, jm__start_verdict *out)
{
    *out = JM__START_RUN;
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_START_CHECK, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, attempt);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = !sqlite3_column_int(st, 0)  ? JM__START_LOST
               : sqlite3_column_int(st, 1) ? JM__START_CANCELLED
               : sqlite3_column_int(st, 2) ? JM__START_PAUSED
                                           : JM__START_RUN;
    else if (src == SQLITE_DONE)
        *out = JM__START_LOST; /* the row is gone: deleted from outside */
    sqlite3_reset(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? JM_OK
                                                   : jm__sqlite_err(s, src, "checking a job");
}

int jm__sqlite_release(jm__store *s, int64_t seq, int64_t attempt, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_RELEASE, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":now"), now);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":seq"), seq);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":attempt"), attempt);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    return src == SQLITE_DONE ? JM_OK : jm__sqlite_err(s, src, "releasing a job");
}
