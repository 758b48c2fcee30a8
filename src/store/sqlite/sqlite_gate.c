/*
 * The claim's gate: which due jobs may start now, given the conflicts,
 * limits and pauses stored in the database (schema version 6), and the
 * statements that change those rules.
 *
 * A claim runs inside the write transaction, so the check and the take
 * are one atomic step across processes. A due job that something holds
 * back gets that reason in blocked_by, which moves it from the due index
 * to jm_jobs_blocked: later claims never step over it again. Each claim
 * first looks at the distinct reasons in jm_jobs_blocked (few: the running
 * holders, the limits, the pauses) and, for a reason that no longer holds
 * its first job back, returns a bounded number of its jobs to the due
 * index, best first; those are checked again like any due job. So a job
 * blocked behind thousands of others costs a claim one index seek, and
 * nothing is left blocked once its reason is gone.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "claim_rules.h"
#include "error.h"
#include "job.h"
#include "sqlite_internal.h"

/* Jobs one claim returns to the due index per reason that lapsed. */
#define GATE_UNBLOCK_MIN 32

enum {
    G_VERSION,
    G_CONFLICTS,
    G_LIMITS,
    G_PAUSES,
    G_RUNNING,
    G_BLOCK,
    G_KEY_NEXT,
    G_KEY_TOP,
    G_UNBLOCK,
    G_BUMP,
    G_CONFLICT_SET,
    G_LIMIT_SET,
    G_LIMIT_DEL,
    G_PAUSE_SET,
    G_PAUSE_DEL,
    G_PAUSE_JOB,
    G_RESUME_JOB,
    G_COUNT_
};

_Static_assert(G_COUNT_ == JM__GATE_QUERIES, "the gate's statement count");

static const char *const gate_sql[G_COUNT_] = {
    [G_VERSION] = "SELECT version FROM jm_rules",
    [G_CONFLICTS] = "SELECT type_a, type_b, exclusive FROM jm_conflicts ORDER BY type_a, type_b",
    [G_LIMITS] = "SELECT type, resource, max_running FROM jm_limits ORDER BY type, resource",
    [G_PAUSES] = "SELECT scope, what, since FROM jm_pauses ORDER BY scope, what",
    [G_RUNNING] = "SELECT seq, id, type, resource FROM jm_jobs INDEXED BY jm_jobs_status "
                  "WHERE status = 2",
    [G_BLOCK] = "UPDATE jm_jobs SET blocked_by = ?1 WHERE seq = ?2 AND status IN (1, 3)",
    [G_KEY_NEXT] = "SELECT blocked_by FROM jm_jobs INDEXED BY jm_jobs_blocked "
                   "WHERE status IN (1, 3) AND blocked_by IS NOT NULL AND blocked_by > ?1 "
                   "ORDER BY blocked_by LIMIT 1",
    [G_KEY_TOP] = "SELECT type, resource FROM jm_jobs INDEXED BY jm_jobs_blocked "
                  "WHERE status IN (1, 3) AND blocked_by IS NOT NULL AND blocked_by = ?1 "
                  "ORDER BY priority DESC, run_at LIMIT 1",
    [G_UNBLOCK] = "UPDATE jm_jobs SET blocked_by = NULL WHERE seq IN ("
                  "SELECT seq FROM jm_jobs INDEXED BY jm_jobs_blocked "
                  "WHERE status IN (1, 3) AND blocked_by IS NOT NULL AND blocked_by = ?1 "
                  "ORDER BY priority DESC, run_at LIMIT ?2)",
    [G_BUMP] = "UPDATE jm_rules SET version = version + 1",
    [G_CONFLICT_SET] = "INSERT INTO jm_conflicts VALUES (?1, ?2, ?3) "
                       "ON CONFLICT (type_a, type_b) DO UPDATE SET exclusive = excluded.exclusive",
    [G_LIMIT_SET] = "INSERT INTO jm_limits VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (type, resource) DO UPDATE SET max_running = excluded.max_running",
    [G_LIMIT_DEL] = "DELETE FROM jm_limits WHERE type = ?1 AND resource = ?2",
    [G_PAUSE_SET] = "INSERT INTO jm_pauses VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (scope, what) DO NOTHING",
    [G_PAUSE_DEL] = "DELETE FROM jm_pauses WHERE scope = ?1 AND what = ?2",
    /* A waiting job pauses at once; a running one gets the request. */
    [G_PAUSE_JOB] = "UPDATE jm_jobs SET "
                    "status = CASE WHEN status = 2 THEN 2 ELSE 7 END, "
                    "pause_requested = CASE WHEN status = 2 THEN 1 ELSE 0 END, "
                    "blocked_by = NULL, updated_at = ?3 "
                    "WHERE seq = ?2 AND id = ?1 AND status <= 3 "
                    "AND NOT (status = 2 AND pause_requested) "
                    "RETURNING status, owner_instance",
    /* A paused job goes back to waiting for its run_at (now, or the backoff
     * it was paused in); a running one loses its request. */
    [G_RESUME_JOB] = "UPDATE jm_jobs SET "
                     "status = CASE WHEN status = 2 THEN 2 WHEN run_at > ?3 THEN 0 ELSE 1 END, "
                     "pause_requested = 0, blocked_by = NULL, updated_at = ?3 "
                     "WHERE seq = ?2 AND id = ?1 AND (status = 7 OR (status = 2 AND pause_requested))",
};

static int gstmt(jm__store *s, int q, sqlite3_stmt **out)
{
    return jm__sqlite_stmt_text(s, &s->gate[q], gate_sql[q], out);
}

/* ---- the rules, cached per connection ---- */

struct jm__gate {
    int64_t version; /* of the rules read; 0: none read */
    jm__rules rules; /* the running jobs in it per claim */
};

static void rules_clear(jm__gate *g)
{
    jm__rules_clear(&g->rules);
    g->version = 0;
}

void jm__sqlite_gate_free(jm__gate *g)
{
    if (!g)
        return;
    jm__rules_free(&g->rules);
    jm__free(g);
}

static int oom(void)
{
    return jm__seterr(JM_ENOMEM, "out of memory reading the claim rules");
}

static void copy_type(char dst[3], const unsigned char *src)
{
    snprintf(dst, 3, "%s", src ? (const char *)src : "");
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static int read_conflicts(jm__store *s, jm__gate *g)
{
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, G_CONFLICTS, &st), src;
    while (rc == JM_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
        rc = jm__rules_add_conflict(&g->rules, col_text(st, 0), col_text(st, 1),
                                    sqlite3_column_int(st, 2) != 0);
    if (rc == JM_OK && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "reading the conflicts");
    if (st)
        sqlite3_reset(st);
    return rc;
}

static int read_limits(jm__store *s, jm__gate *g)
{
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, G_LIMITS, &st), src;
    while (rc == JM_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
        rc = jm__rules_add_limit(&g->rules, col_text(st, 0), col_text(st, 1),
                                 sqlite3_column_int(st, 2));
    if (rc == JM_OK && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "reading the limits");
    if (st)
        sqlite3_reset(st);
    return rc;
}

static int read_pauses(jm__store *s, jm__gate *g)
{
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, G_PAUSES, &st), src;
    while (rc == JM_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
        rc = jm__rules_add_pause(&g->rules, (jm_pause_scope)sqlite3_column_int(st, 0),
                                 col_text(st, 1), sqlite3_column_int64(st, 2));
    if (rc == JM_OK && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "reading the pauses");
    if (st)
        sqlite3_reset(st);
    return rc;
}

/* Rereads the rules if another connection changed them since. */
static int rules_refresh(jm__store *s, jm__gate *g)
{
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, G_VERSION, &st);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    int64_t version = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (src != SQLITE_ROW)
        return src == SQLITE_DONE ? jm__seterr(JM_EDB, "the jm_rules table is empty")
                                  : jm__sqlite_err(s, src, "reading the rules version");
    if (version == g->version)
        return JM_OK;
    rules_clear(g);
    if ((rc = read_conflicts(s, g)) || (rc = read_limits(s, g)) || (rc = read_pauses(s, g))) {
        rules_clear(g);
        return rc;
    }
    g->version = version;
    return JM_OK;
}

/* ---- judging one job ---- */

static int runs_read(jm__store *s, jm__gate *g)
{
    if (g->rules.runs_read)
        return JM_OK;
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, G_RUNNING, &st), src;
    while (rc == JM_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        char id[JM_JOB_ID_SIZE];
        jm__row_id(st, 0, id);
        rc = jm__rules_add_run(&g->rules, id, col_text(st, 2), col_text(st, 3));
    }
    if (rc == JM_OK && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "reading the running jobs");
    if (st)
        sqlite3_reset(st);
    if (rc)
        jm__rules_runs_clear(&g->rules);
    g->rules.runs_read = rc == JM_OK;
    return rc;
}

/* ---- the claim's side ---- */

int jm__sqlite_gate_open(jm__store *s, int *closed)
{
    *closed = 0;
    if (!s->gatep && !(s->gatep = jm__calloc(1, sizeof *s->gatep)))
        return oom();
    jm__gate *g = s->gatep;
    jm__rules_runs_clear(&g->rules);
    int rc = rules_refresh(s, g);
    if (rc)
        return rc;
    *closed = g->rules.pause_all;
    return JM_OK;
}

int jm__sqlite_gate_judge(jm__store *s, const jm_job *job, int *blocked)
{
    jm__gate *g = s->gatep;
    *blocked = 0;
    if (!g)
        return JM_OK;
    int runs = jm__rules_needs_runs(&g->rules, job->type, job->resource);
    if (!runs && !g->rules.npauses)
        return JM_OK;
    int rc = runs ? runs_read(s, g) : JM_OK;
    if (rc)
        return rc;
    char key[JM_MAX_RESOURCE_BYTES + 32];
    /* A job taken before the running jobs are read is read with them. */
    if (!jm__rules_held_by(&g->rules, job->type, job->resource, key, sizeof key))
        return g->rules.runs_read ? jm__rules_add_run(&g->rules, job->id, job->type, job->resource)
                                  : JM_OK;
    *blocked = 1;
    sqlite3_stmt *st = NULL;
    if ((rc = gstmt(s, G_BLOCK, &st)))
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, job->seq);
    return jm__sqlite_write(s, st, "marking a blocked job", NULL);
}

/* Returns up to `n` jobs blocked by `key` to the due index. */
static int unblock(jm__store *s, const char *key, int64_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, G_UNBLOCK, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, n);
    return jm__sqlite_write(s, st, "returning blocked jobs", NULL);
}

int jm__sqlite_gate_sweep(jm__store *s, size_t want, int *returned)
{
    jm__gate *g = s->gatep;
    *returned = 0;
    char last[JM_MAX_RESOURCE_BYTES + 32] = "";
    char key[sizeof last], now_key[sizeof last];
    int64_t n = (int64_t)want * 2 > GATE_UNBLOCK_MIN ? (int64_t)want * 2 : GATE_UNBLOCK_MIN;
    for (;;) {
        sqlite3_stmt *st = NULL;
        int rc = gstmt(s, G_KEY_NEXT, &st);
        if (rc)
            return rc;
        sqlite3_bind_text(st, 1, last, -1, SQLITE_TRANSIENT);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            snprintf(key, sizeof key, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_reset(st);
        if (src == SQLITE_DONE)
            return JM_OK;
        if (src != SQLITE_ROW)
            return jm__sqlite_err(s, src, "reading blocked jobs");
        snprintf(last, sizeof last, "%s", key);
        /* The reason still holds if it still holds its best job back. */
        if ((rc = gstmt(s, G_KEY_TOP, &st)))
            return rc;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        src = sqlite3_step(st);
        int holds = 0;
        if (src == SQLITE_ROW) {
            char type[3];
            copy_type(type, sqlite3_column_text(st, 0));
            const char *res = (const char *)sqlite3_column_text(st, 1);
            rc = jm__rules_needs_runs(&g->rules, type, res) ? runs_read(s, g) : JM_OK;
            holds = rc == JM_OK &&
                    jm__rules_held_by(&g->rules, type, res, now_key, sizeof now_key) &&
                    strcmp(now_key, key) == 0;
        }
        sqlite3_reset(st);
        if (rc)
            return rc;
        if (src != SQLITE_ROW && src != SQLITE_DONE)
            return jm__sqlite_err(s, src, "reading blocked jobs");
        if (src == SQLITE_ROW && !holds) {
            if ((rc = unblock(s, key, n)))
                return rc;
            *returned = 1;
        }
    }
}

/* ---- changing the rules ---- */

/* Runs `st` (bound) inside one transaction with the version bump, so
 * every connection rereads the rules at its next claim. Jobs a lifted rule
 * held back return through the claims' sweep. */
static int rules_write(jm__store *s, sqlite3_stmt *st, const char *what, int64_t *changed)
{
    int rc = jm__sqlite_begin(s);
    if (rc) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc;
    }
    rc = jm__sqlite_write(s, st, what, changed);
    sqlite3_clear_bindings(st);
    sqlite3_stmt *bump = NULL;
    if (rc == JM_OK && (rc = gstmt(s, G_BUMP, &bump)) == JM_OK)
        rc = jm__sqlite_write(s, bump, what, NULL);
    if (rc == JM_OK)
        return jm__sqlite_commit(s);
    jm__sqlite_rollback(s);
    return rc;
}

int jm__sqlite_conflict_set(jm__store *s, const char *a, const char *b, int exclusive_)
{
    if (strcmp(a, b) > 0) {
        const char *t = a;
        a = b;
        b = t;
    }
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, G_CONFLICT_SET, &st);
    if (rc)
        return rc;
    jm__bind_text(st, 1, a);
    jm__bind_text(st, 2, b);
    sqlite3_bind_int(st, 3, exclusive_ ? 1 : 0);
    return rules_write(s, st, "setting a conflict", NULL);
}

int jm__sqlite_limit_set(jm__store *s, const char *type, const char *resource, int max)
{
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, max > 0 ? G_LIMIT_SET : G_LIMIT_DEL, &st);
    if (rc)
        return rc;
    jm__bind_text(st, 1, type ? type : "");
    jm__bind_text(st, 2, resource ? resource : "");
    if (max > 0)
        sqlite3_bind_int(st, 3, max);
    return rules_write(s, st, "setting a limit", NULL);
}

int jm__sqlite_pause_set(jm__store *s, jm_pause_scope scope, const char *what, int paused,
                         int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, paused ? G_PAUSE_SET : G_PAUSE_DEL, &st);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 1, (int)scope);
    jm__bind_text(st, 2, what ? what : "");
    if (paused)
        sqlite3_bind_int64(st, 3, now);
    int64_t changed = 0;
    rc = rules_write(s, st, paused ? "pausing" : "resuming", &changed);
    if (rc == JM_OK && !paused && changed == 0)
        return jm__seterr(JM_ENOTFOUND, "no such pause: %s%s%s",
                          scope == JM_PAUSE_ALL ? "all" : scope == JM_PAUSE_TYPE ? "type" : "resource",
                          what ? " " : "", what ? what : "");
    return rc;
}

/* The rules read fresh, outside any claim: a list must not be a cached
 * one. */
static int rules_fresh(jm__store *s)
{
    if (!s->gatep && !(s->gatep = jm__calloc(1, sizeof *s->gatep)))
        return oom();
    s->gatep->version = -1;
    return rules_refresh(s, s->gatep);
}

int jm__sqlite_conflict_list(jm__store *s, jm_conflict **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = rules_fresh(s);
    if (rc)
        return rc;
    const jm__rules *r = &s->gatep->rules;
    if (!r->nconflicts)
        return JM_OK;
    jm_conflict *v = jm__calloc(r->nconflicts, sizeof *v);
    if (!v)
        return oom();
    for (size_t i = 0; i < r->nconflicts; i++) {
        memcpy(v[i].type_a, r->conflicts[i].a, 3);
        memcpy(v[i].type_b, r->conflicts[i].b, 3);
        v[i].exclusive = r->conflicts[i].exclusive;
    }
    *out = v;
    *n = r->nconflicts;
    return JM_OK;
}

int jm__sqlite_limit_list(jm__store *s, jm_limit **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = rules_fresh(s);
    if (rc)
        return rc;
    const jm__rules *r = &s->gatep->rules;
    if (!r->nlimits)
        return JM_OK;
    jm_limit *v = jm__calloc(r->nlimits, sizeof *v);
    if (!v)
        return oom();
    for (size_t i = 0; i < r->nlimits; i++) {
        memcpy(v[i].type, r->limits[i].type, 3);
        v[i].max_running = r->limits[i].max;
        if (*r->limits[i].resource && !(v[i].resource = jm__strdup(r->limits[i].resource))) {
            for (size_t j = 0; j < i; j++)
                jm__free(v[j].resource);
            jm__free(v);
            return oom();
        }
    }
    *out = v;
    *n = r->nlimits;
    return JM_OK;
}

int jm__sqlite_pause_list(jm__store *s, jm_pause_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = rules_fresh(s);
    if (rc)
        return rc;
    const jm__rules *r = &s->gatep->rules;
    if (!r->npauses)
        return JM_OK;
    jm_pause_entry *v = jm__calloc(r->npauses, sizeof *v);
    if (!v)
        return oom();
    for (size_t i = 0; i < r->npauses; i++) {
        v[i].scope = r->pauses[i].scope;
        v[i].since_ms = r->pauses[i].since;
        if (r->pauses[i].scope != JM_PAUSE_ALL && !(v[i].what = jm__strdup(r->pauses[i].what))) {
            for (size_t j = 0; j < i; j++)
                jm__free(v[j].what);
            jm__free(v);
            return oom();
        }
    }
    *out = v;
    *n = r->npauses;
    return JM_OK;
}

int jm__sqlite_pause_job(jm__store *s, const char *id, int64_t now, int *requested,
                         int64_t *seq, int64_t *owner_instance)
{
    *requested = 0;
    *owner_instance = 0;
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, G_PAUSE_JOB, &st);
    if (rc == JM_OK)
        rc = jm__sqlite_bind_row_key(s, st, id, 1, 2, seq);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 3, now);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *requested = sqlite3_column_int(st, 0) == JM_STATUS_RUNNING;
        *owner_instance = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src == SQLITE_ROW)
        return JM_OK;
    if (src != SQLITE_DONE)
        return jm__sqlite_err(s, src, "pausing a job");
    jm_status status;
    if ((rc = jm__sqlite_status(s, id, &status)))
        return rc;
    return jm__seterr(JM_ESTATE, "job %s is %s%s: it cannot be paused", id,
                      jm_status_name(status),
                      status == JM_STATUS_RUNNING ? " with a pause already requested" : "");
}

int jm__sqlite_resume_job(jm__store *s, const char *id, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = gstmt(s, G_RESUME_JOB, &st);
    if (rc == JM_OK)
        rc = jm__sqlite_bind_row_key(s, st, id, 1, 2, NULL);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 3, now);
    int64_t changed = 0;
    rc = jm__sqlite_write(s, st, "resuming a job", &changed);
    sqlite3_clear_bindings(st);
    if (rc || changed)
        return rc;
    jm_status status;
    if ((rc = jm__sqlite_status(s, id, &status)))
        return rc;
    return jm__seterr(JM_ESTATE, "job %s is %s and not asked to pause: nothing to resume", id,
                      jm_status_name(status));
}
