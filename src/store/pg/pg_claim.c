/*
 * The run loop's write in the PostgreSQL store: recording how runs ended
 * and claiming due jobs, together in one transaction (cycle).
 *
 * Several nodes claim from one table at once. A claim locks the rows it
 * reads with FOR UPDATE SKIP LOCKED, so concurrent claims never wait on
 * each other nor take the same row; the rules (pg_gate.c) serialise only
 * the claims whose jobs running jobs could hold back. Every outcome is
 * fenced by its claim (seq, attempt, status running): a worker whose job
 * was recovered elsewhere changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "pg_array.h"
#include "pg_gate.h"

/* The order a claim hands its jobs out in: as the due index reads. */
static int claim_order(const void *a, const void *b)
{
    const jm_job *x = *(jm_job *const *)a, *y = *(jm_job *const *)b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->run_at != y->run_at)
        return x->run_at < y->run_at ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* ---- the claim ---- */

/* Promotes new jobs whose run_at came, skipping rows another transaction
 * holds (they are promoted next time), and reads the rules version and
 * whether any job waits blocked. The rules lock was taken by an earlier
 * statement of the transaction (cycle_begin), so this one's snapshot sees
 * every rule change committed before the claim. "seq = ANY (ARRAY(...))"
 * keeps the plan a seek by seq whatever the statistics say. */
static int promote(jm__store *s, int64_t now, int64_t *rules_version, int *any_blocked)
{
    static const char sql[] =
        "WITH promoted AS (UPDATE jm_jobs SET status = 1, updated_at = $1::bigint "
        " WHERE status = 0 AND seq = ANY (ARRAY(SELECT seq FROM jm_jobs WHERE status = 0 "
        "  AND run_at <= $1::bigint FOR UPDATE SKIP LOCKED)) RETURNING 1) "
        "SELECT (SELECT count(*) FROM promoted), (SELECT version FROM jm_rules), "
        " EXISTS (SELECT 1 FROM jm_jobs WHERE status IN (1, 3) AND blocked_by IS NOT NULL)::int";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, now);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "promoting scheduled jobs", sql, &p, &r);
    if (rc)
        return rc;
    if (PQgetisnull(r, 0, 1))
        rc = jm__seterr(JM_EDB, "the jm_rules table is empty");
    *rules_version = jm__pg_i64(r, 0, 1);
    *any_blocked = (int)jm__pg_i64(r, 0, 2);
    PQclear(r);
    return rc;
}

/* The due jobs of a pass, best first, locked; rows other claims hold are
 * skipped, not waited for. Only rows pinned to no node or to this one. */
static const char due_sql[] =
    "SELECT seq, id, type, resource FROM jm_jobs "
    "WHERE status IN (1, 3) AND blocked_by IS NULL AND run_at <= $1::bigint "
    "AND type = ANY (string_to_array($2::text, ',')) "
    "AND (pinned_node IS NULL OR pinned_node = $3::text) "
    "ORDER BY priority DESC, run_at, seq LIMIT $4::bigint "
    "FOR UPDATE SKIP LOCKED";

/* Takes the judged rows ($7, an array). $5: the jobs start at once (a
 * worker is idle for each); a job claimed ahead gets its started_at when
 * it really starts. */
static const char take_sql[] =
    "UPDATE jm_jobs SET status = 2, attempts = attempts + 1, node_id = $1::text, "
    "owner_pid = $2::bigint, owner_instance = $3::bigint, lease_until = $4::bigint, "
    "started_at = CASE WHEN $5::integer <> 0 THEN $6::bigint END, updated_at = $6::bigint, "
    "message = CASE WHEN status = 3 THEN NULL ELSE message END, blocked_by = NULL "
    "WHERE seq = ANY ($7::bigint[]) AND status IN (1, 3) "
    "RETURNING " JM_PG_JOB_COLUMNS;

/* The seqs of the candidates to take as an array literal ("{1,2}") in
 * *a: 0, or -1 when out of memory. */
static int seq_array(const jm__pg_cand *c, const unsigned char *take, size_t n, jm__pg_arr *a)
{
    memset(a, 0, sizeof *a);
    for (size_t i = 0; i < n; i++)
        if (take[i])
            jm__pg_arr_i64(a, c[i].seq);
    return jm__pg_arr_end(a);
}

/* Takes the candidates judged free, appending them to jobs[*got]. */
static int take_rows(jm__store *s, const jm__claim_req *req, int starts,
                     const jm__pg_cand *c, const unsigned char *take, size_t n,
                     jm_job **jobs, size_t *got)
{
    size_t ntake = 0;
    for (size_t i = 0; i < n; i++)
        ntake += take[i] != 0;
    if (!ntake)
        return JM_OK;
    jm__pg_arr seqs;
    if (seq_array(c, take, n, &seqs)) {
        jm__pg_arr_free(&seqs);
        return jm__seterr(JM_ENOMEM, "out of memory claiming jobs");
    }
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, req->owner->node_id);
    jm__pg_p_i64(&p, req->owner->pid);
    jm__pg_p_i64(&p, req->owner->instance);
    jm__pg_p_i64(&p, req->lease_until);
    jm__pg_p_i64(&p, starts);
    jm__pg_p_i64(&p, req->now);
    jm__pg_p_str(&p, seqs.p);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "claiming jobs", take_sql, &p, &r);
    jm__pg_arr_free(&seqs);
    int rows = rc == JM_OK ? PQntuples(r) : 0;
    for (int i = 0; i < rows && rc == JM_OK && (size_t)i < ntake; i++)
        if ((rc = jm__pg_row_to_job(r, i, 0, &jobs[*got])) == JM_OK) {
            /* As the SQLite store hands it out: a job claimed ahead reads
             * as started at the claim until its worker starts it. */
            jobs[*got]->started_at = req->now;
            (*got)++;
        }
    PQclear(r);
    return rc;
}

/* Reads up to `max` due rows of `types`, has the gate judge them and takes
 * those it lets start. *cut_short: some were held back (and so left the
 * due index): the caller reads on behind them. */
static int claim_pass(jm__store *s, const jm__claim_req *req, const char *types, int starts,
                      size_t max, jm_job **jobs, size_t *got, int *cut_short)
{
    *cut_short = 0;
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, req->now);
    jm__pg_p_str(&p, types);
    jm__pg_p_str(&p, req->owner->node_id);
    jm__pg_p_i64(&p, (int64_t)max);
    PGresult *due = NULL;
    int rc = jm__pg_run(s, "reading due jobs", due_sql, &p, &due);
    if (rc)
        return rc;
    size_t n = (size_t)PQntuples(due);
    jm__pg_cand *c = n ? jm__calloc(n, sizeof *c) : NULL;
    unsigned char *take = n ? jm__calloc(n, 1) : NULL;
    if (n && (!c || !take)) {
        rc = jm__seterr(JM_ENOMEM, "out of memory claiming jobs");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        c[i].seq = jm__pg_i64(due, (int)i, 0);
        jm__pg_row_id(due, (int)i, 0, c[i].id);
        snprintf(c[i].type, sizeof c[i].type, "%s", jm__pg_str(due, (int)i, 2));
        c[i].resource = jm__pg_str(due, (int)i, 3);
    }
    if (n && (rc = jm__pg_gate_judge(s, c, n, take, cut_short)) == JM_OK)
        rc = take_rows(s, req, starts, c, take, n, jobs, got);
done:
    jm__free(c);
    jm__free(take);
    PQclear(due);
    return rc;
}

/* Claims up to `max` rows of `types`: passes until one holds nothing back
 * or `max` are taken. */
static int claim_up_to(jm__store *s, const jm__claim_req *req, const char *types, int starts,
                       size_t max, jm_job **jobs, size_t *got)
{
    size_t end = *got + max;
    int rc = JM_OK, cut_short = 1;
    while (rc == JM_OK && cut_short && *got < end)
        rc = claim_pass(s, req, types, starts, end - *got, jobs, got, &cut_short);
    return rc;
}

/* Claims inside the open transaction: req->max of any of req->types, then
 * req->ahead_max of req->ahead_types (rows the first pass took are no
 * longer due, so none is taken twice). */
static int claim_rows(jm__store *s, const jm__claim_req *req, jm_job **jobs, size_t *got)
{
    int closed = 0, returned = 0, any_blocked = 0;
    int64_t version = 0;
    int rc = promote(s, req->now, &version, &any_blocked);
    if (rc == JM_OK)
        rc = jm__pg_gate_open(s, version, &closed);
    if (rc || closed)
        return rc;
    /* Jobs whose holder is gone go back first, so they keep their place
     * ahead of lower jobs; while a pass fills no worker and brought some
     * back, the next brings more. */
    size_t want = req->max + req->ahead_max;
    do {
        size_t before = *got;
        if (any_blocked)
            rc = jm__pg_gate_sweep(s, want, &returned);
        if (rc == JM_OK && req->max && *got < req->max)
            rc = claim_up_to(s, req, req->types, 1, req->max - *got, jobs, got);
        if (returned && *got == before && rc == JM_OK)
            break;
    } while (rc == JM_OK && returned && *got < req->max);
    if (rc == JM_OK && req->ahead_max && req->ahead_types && *req->ahead_types)
        rc = claim_up_to(s, req, req->ahead_types, 0, req->ahead_max, jobs, got);
    return rc;
}

static void free_jobs(jm_job **jobs, size_t *got)
{
    for (size_t i = 0; i < *got; i++)
        jm_job_free(jobs[i]);
    *got = 0;
}

/* Claims under a savepoint, after the outcomes: a claim that fails undoes
 * only itself, its jobs are freed, its error goes to *claim_err, and the
 * outcomes still commit. An error is returned only when the claim cannot
 * be undone alone (the connection is gone): then nothing may commit. */
static int claim_apart(jm__store *s, const jm__claim_req *req, jm_job **jobs, size_t *got,
                       int *claim_err)
{
    int rc = jm__pg_exec(s, "starting the claim", "SAVEPOINT jm_claim");
    if (rc)
        return rc;
    rc = claim_rows(s, req, jobs, got);
    *claim_err = rc;
    /* On success the savepoint ends with the transaction's COMMIT. */
    if (rc == JM_OK)
        return JM_OK;
    free_jobs(jobs, got);
    int undo = jm__pg_exec(s, "undoing a failed claim", "ROLLBACK TO SAVEPOINT jm_claim");
    if (undo == JM_OK)
        undo = jm__pg_exec(s, "undoing a failed claim", "RELEASE SAVEPOINT jm_claim");
    return undo;
}

/* Opens the cycle's transaction in one round trip. A claim takes the
 * rules lock shared (pg_gate.h) before it reads anything. A claim alone
 * need not be synced: after a power loss a lost claim only leaves the job
 * queued (it runs again, as a crash would make it anyway). Without
 * durable_sync the connection never syncs commits. */
static int cycle_begin(jm__store *s, size_t n, int claims)
{
    static const char plain[] = "BEGIN";
    static const char claim[] = "BEGIN; SELECT " JM_PG_RULES_LOCK_SHARED;
    static const char claim_unsynced[] =
        "BEGIN; SET LOCAL synchronous_commit TO off; SELECT " JM_PG_RULES_LOCK_SHARED;
    const char *sql = !claims ? plain : n == 0 && s->durable_sync ? claim_unsynced : claim;
    return jm__pg_begin_with(s, "beginning a transaction", sql);
}

/* Ends a cycle whose outcomes went on their own connection, its claim's
 * transaction open (unless claim_begin_rc says it failed): the claim
 * commits once the outcomes did. Returns the cycle's error: the outcomes'
 * (the claim then undone too), else JM_OK with any failure of the claim
 * alone in *claim_rc. */
static int side_outcome(jm__store *s, jm__finish *items, size_t n, int claim_begin_rc,
                        int *claim_rc)
{
    int rc = jm__pg_finish_collect(s, items, n);
    if (rc || claim_begin_rc || *claim_rc) {
        jm__pg_rollback(s);
        if (!rc && !*claim_rc)
            *claim_rc = claim_begin_rc;
        return rc;
    }
    *claim_rc = jm__pg_commit(s, "committing a claim");
    return JM_OK;
}

int jm__pg_cycle(jm__store *s, jm__finish *items, size_t n, const jm__claim_req *req,
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
    /* Outcomes beside a claim go on their own connection (pg_finish.c);
     * without it, into the claim's transaction. */
    int side = n && max && jm__pg_finish_send(s, items, n) == JM_OK;
    size_t n_tx = side ? 0 : n;
    rc = cycle_begin(s, n_tx, max != 0);
    if (rc == JM_OK && n_tx)
        rc = jm__pg_finish_in_tx(s, items, n_tx);
    /* A claim alone needs no savepoint: when it fails, the rollback undoes
     * all there is. */
    if (rc == JM_OK && max && n_tx)
        rc = claim_apart(s, req, jobs, &got, &claim_rc);
    else if (rc == JM_OK && max)
        claim_rc = claim_rows(s, req, jobs, &got);
    if (side)
        rc = side_outcome(s, items, n, rc, &claim_rc);
    else if (rc == JM_OK && (n || claim_rc == JM_OK))
        rc = jm__pg_commit(s, "committing");
    else
        jm__pg_rollback(s);
    if (claim_err)
        *claim_err = rc ? rc : claim_rc;
    if (rc || claim_rc) {
        free_jobs(jobs, &got);
        jm__free(jobs);
        return rc;
    }
    if (jobs && got > 1)
        qsort(jobs, got, sizeof *jobs, claim_order);
    if (out)
        *out = jobs;
    else
        jm__free(jobs);
    if (nout)
        *nout = got;
    return JM_OK;
}

int jm__pg_claim(jm__store *s, const jm__claim_req *req, jm_job ***out, size_t *n)
{
    int claim_err = JM_OK;
    int rc = jm__pg_cycle(s, NULL, 0, req, out, n, &claim_err);
    return rc ? rc : claim_err;
}

int jm__pg_finish(jm__store *s, jm__finish *items, size_t n)
{
    return jm__pg_cycle(s, items, n, NULL, NULL, NULL, NULL);
}
