/*
 * The claim's gate in the PostgreSQL store: which due jobs may start now,
 * given the conflicts, limits and pauses of docs/conflicts.md. The rules
 * are cached per connection and reread when jm_rules.version moves (every
 * change bumps it in its own transaction, pg_rules.c).
 *
 * As in the SQLite store, a job held back gets its reason in blocked_by,
 * which moves it from the due index to jm_jobs_blocked, and each claim
 * returns the jobs of reasons that lapsed (the sweep).
 *
 * Several nodes claim at once here, each under row locks it skips past
 * (SKIP LOCKED), so a claim does not see the jobs another claim is taking
 * until that one commits: two claims could each start the last job a limit
 * allows. A claim about to judge a job that running jobs could hold back
 * therefore first takes the gate lock (pg_gate.h) and reads the running
 * jobs after it: the claims that could affect one another run one after
 * the other, and the others never wait. Pauses need no lock: they do not
 * depend on what runs.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "claim_rules.h"
#include "error.h"
#include "job.h"
#include "pg_gate.h"

/* Jobs one claim returns to the due index per reason that lapsed. */
#define GATE_UNBLOCK_MIN 32

typedef struct gate {
    jm__rules rules; /* the rules, cached per connection; the running jobs per claim */
    int locked;      /* the gate lock is held */
} gate;

/* ---- the rules, cached per connection (s->gate, s->rules_version) ---- */

static int oom(void)
{
    return jm__seterr(JM_ENOMEM, "out of memory reading the claim rules");
}

static void rules_clear(jm__store *s, gate *g)
{
    jm__rules_clear(&g->rules);
    s->rules_version = 0;
}

void jm__pg_gate_free(jm__store *s)
{
    gate *g = s ? s->gate : NULL;
    if (!g)
        return;
    jm__rules_free(&g->rules);
    jm__free(g);
    s->gate = NULL;
}

static void copy_type(char dst[3], const char *src)
{
    snprintf(dst, 3, "%s", src ? src : "");
}

static int read_conflicts(jm__store *s, gate *g)
{
    static const char sql[] = "SELECT type_a, type_b, exclusive FROM jm_conflicts";
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading the conflicts", sql, NULL, &r);
    for (int i = 0; rc == JM_OK && i < PQntuples(r); i++)
        rc = jm__rules_add_conflict(&g->rules, jm__pg_str(r, i, 0), jm__pg_str(r, i, 1),
                                    jm__pg_i64(r, i, 2) != 0);
    PQclear(r);
    return rc;
}

static int read_limits(jm__store *s, gate *g)
{
    static const char sql[] = "SELECT type, resource, max_running FROM jm_limits";
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading the limits", sql, NULL, &r);
    for (int i = 0; rc == JM_OK && i < PQntuples(r); i++)
        rc = jm__rules_add_limit(&g->rules, jm__pg_str(r, i, 0), jm__pg_str(r, i, 1),
                                 (int)jm__pg_i64(r, i, 2));
    PQclear(r);
    return rc;
}

static int read_pauses(jm__store *s, gate *g)
{
    static const char sql[] = "SELECT scope, what, since FROM jm_pauses";
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading the pauses", sql, NULL, &r);
    for (int i = 0; rc == JM_OK && i < PQntuples(r); i++)
        rc = jm__rules_add_pause(&g->rules, (jm_pause_scope)jm__pg_i64(r, i, 0),
                                 jm__pg_str(r, i, 1), jm__pg_i64(r, i, 2));
    PQclear(r);
    return rc;
}

/* Rereads the rules if a rule change committed since they were read. */
static int rules_refresh(jm__store *s, gate *g, int64_t version)
{
    int rc;
    if (version == s->rules_version)
        return JM_OK;
    rules_clear(s, g);
    if ((rc = read_conflicts(s, g)) || (rc = read_limits(s, g)) || (rc = read_pauses(s, g))) {
        rules_clear(s, g);
        return rc;
    }
    s->rules_version = version;
    return JM_OK;
}

/* ---- judging one job ---- */

/* The running jobs, this transaction's takes among them. */
static int runs_read(jm__store *s, gate *g)
{
    static const char sql[] = "SELECT seq, id, type, resource FROM jm_jobs WHERE status = 2";
    if (g->rules.runs_read)
        return JM_OK;
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading the running jobs", sql, NULL, &r);
    for (int i = 0; rc == JM_OK && i < PQntuples(r); i++) {
        char id[JM_JOB_ID_SIZE];
        jm__pg_row_id(r, i, 0, id);
        rc = jm__rules_add_run(&g->rules, id, jm__pg_str(r, i, 2), jm__pg_str(r, i, 3));
    }
    PQclear(r);
    if (rc)
        jm__rules_runs_clear(&g->rules);
    g->rules.runs_read = rc == JM_OK;
    return rc;
}

int jm__pg_gate_open(jm__store *s, int64_t version, int *closed)
{
    *closed = 0;
    if (!s->gate && !(s->gate = jm__calloc(1, sizeof(gate))))
        return oom();
    gate *g = s->gate;
    jm__rules_runs_clear(&g->rules);
    g->locked = 0;
    int rc = rules_refresh(s, g, version);
    if (rc)
        return rc;
    *closed = g->rules.pause_all;
    return JM_OK;
}

/* Takes the gate lock once per claim. What was read of the running jobs
 * before it may miss the takes of a claim that committed meanwhile. */
static int gate_lock(jm__store *s, gate *g)
{
    static const char sql[] = "SELECT " JM_PG_GATE_LOCK;
    if (g->locked)
        return JM_OK;
    int rc = jm__pg_run(s, "waiting for the claim gate", sql, NULL, NULL);
    if (rc)
        return rc;
    g->locked = 1;
    jm__rules_runs_clear(&g->rules);
    return JM_OK;
}

static int mark_blocked(jm__store *s, int64_t seq, const char *key)
{
    static const char sql[] = "UPDATE jm_jobs SET blocked_by = $1::text "
                              "WHERE seq = $2::bigint AND status IN (1, 3)";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, key);
    jm__pg_p_i64(&p, seq);
    return jm__pg_run(s, "marking a blocked job", sql, &p, NULL);
}

int jm__pg_gate_judge(jm__store *s, const jm__pg_cand *c, size_t n, unsigned char *take,
                      int *blocked)
{
    gate *g = s->gate;
    *blocked = 0;
    int rc = JM_OK;
    for (size_t i = 0; i < n && rc == JM_OK; i++)
        if (g && jm__rules_needs_runs(&g->rules, c[i].type, c[i].resource))
            rc = gate_lock(s, g);
    char key[JM_MAX_RESOURCE_BYTES + 32];
    for (size_t i = 0; i < n && rc == JM_OK; i++) {
        take[i] = 1;
        if (!g || (!g->locked && !g->rules.npauses))
            continue;
        int runs = jm__rules_needs_runs(&g->rules, c[i].type, c[i].resource);
        if (runs && (rc = runs_read(s, g)))
            break;
        if (!jm__rules_held_by(&g->rules, c[i].type, c[i].resource, key, sizeof key)) {
            /* A job taken before the running jobs are read is read with them. */
            if (g->rules.runs_read)
                rc = jm__rules_add_run(&g->rules, c[i].id, c[i].type, c[i].resource);
            continue;
        }
        take[i] = 0;
        *blocked = 1;
        rc = mark_blocked(s, c[i].seq, key);
    }
    return rc;
}

/* Returns up to `n` jobs blocked by `key` to the due index, best first;
 * rows another claim holds are left to it. */
static int unblock(jm__store *s, const char *key, int64_t n, int *returned)
{
    static const char sql[] =
        "UPDATE jm_jobs SET blocked_by = NULL WHERE status IN (1, 3) AND seq = ANY (ARRAY("
        "SELECT seq FROM jm_jobs WHERE status IN (1, 3) AND blocked_by IS NOT NULL "
        "AND blocked_by = $1::text ORDER BY priority DESC, run_at LIMIT $2::bigint "
        "FOR UPDATE SKIP LOCKED))";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, key);
    jm__pg_p_i64(&p, n);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "returning blocked jobs", sql, &p, &r);
    if (rc == JM_OK && jm__pg_changes(r) > 0)
        *returned = 1;
    PQclear(r);
    return rc;
}

int jm__pg_gate_sweep(jm__store *s, size_t want, int *returned)
{
    /* Each distinct reason with its best job, by a loose scan of the
     * blocked index: one seek per reason however many jobs wait on it. */
    static const char sql[] =
        "WITH RECURSIVE k(key) AS ("
        " (SELECT blocked_by FROM jm_jobs WHERE status IN (1, 3) AND blocked_by IS NOT NULL"
        "  ORDER BY blocked_by LIMIT 1)"
        " UNION ALL"
        " SELECT (SELECT j.blocked_by FROM jm_jobs j WHERE j.status IN (1, 3)"
        "  AND j.blocked_by IS NOT NULL AND j.blocked_by > k.key ORDER BY j.blocked_by LIMIT 1)"
        " FROM k WHERE k.key IS NOT NULL) "
        "SELECT k.key, t.type, t.resource FROM k CROSS JOIN LATERAL ("
        " SELECT j.type, j.resource FROM jm_jobs j WHERE j.status IN (1, 3)"
        " AND j.blocked_by IS NOT NULL AND j.blocked_by = k.key"
        " ORDER BY j.priority DESC, j.run_at LIMIT 1) t WHERE k.key IS NOT NULL";
    gate *g = s->gate;
    *returned = 0;
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading blocked jobs", sql, NULL, &r);
    int64_t n = (int64_t)want * 2 > GATE_UNBLOCK_MIN ? (int64_t)want * 2 : GATE_UNBLOCK_MIN;
    char now_key[JM_MAX_RESOURCE_BYTES + 32];
    for (int i = 0; rc == JM_OK && i < PQntuples(r); i++) {
        const char *key = jm__pg_str(r, i, 0), *type = jm__pg_str(r, i, 1);
        const char *res = jm__pg_str(r, i, 2);
        char t[3];
        copy_type(t, type);
        if (jm__rules_needs_runs(&g->rules, t, res) && (rc = runs_read(s, g)))
            break;
        /* The reason still holds if it still holds its best job back. */
        if (jm__rules_held_by(&g->rules, t, res, now_key, sizeof now_key) &&
            strcmp(now_key, key) == 0)
            continue;
        rc = unblock(s, key, n, returned);
    }
    PQclear(r);
    return rc;
}
