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
#include "array.h"
#include "error.h"
#include "job.h"
#include "pg_gate.h"

/* Jobs one claim returns to the due index per reason that lapsed. */
#define GATE_UNBLOCK_MIN 32

typedef struct rule_conflict {
    char a[3], b[3]; /* a <= b; "*" for every type */
    int exclusive;
} rule_conflict;

typedef struct rule_limit {
    char type[3];   /* "" for any */
    char *resource; /* "" for any, "*" for each */
    int max;
} rule_limit;

typedef struct rule_pause {
    jm_pause_scope scope;
    char *what;
} rule_pause;

/* A running job, or one this claim took. */
typedef struct gate_run {
    char id[JM_JOB_ID_SIZE];
    char type[3];
    char *resource;
} gate_run;

typedef struct gate {
    rule_conflict *conflicts;
    size_t nconflicts, cap_conflicts;
    rule_limit *limits;
    size_t nlimits, cap_limits;
    rule_pause *pauses;
    size_t npauses, cap_pauses;
    int pause_all;
    /* Per claim. */
    gate_run *runs;
    size_t nruns, cap_runs;
    int runs_read;
    int locked; /* the gate lock is held */
} gate;

/* ---- the rules, cached per connection (s->gate, s->rules_version) ---- */

static int oom(void)
{
    return jm__seterr(JM_ENOMEM, "out of memory reading the claim rules");
}

static void rules_clear(jm__store *s, gate *g)
{
    for (size_t i = 0; i < g->nlimits; i++)
        jm__free(g->limits[i].resource);
    for (size_t i = 0; i < g->npauses; i++)
        jm__free(g->pauses[i].what);
    g->nconflicts = g->nlimits = g->npauses = 0;
    g->pause_all = 0;
    s->rules_version = 0;
}

static void runs_clear(gate *g)
{
    for (size_t i = 0; i < g->nruns; i++)
        jm__free(g->runs[i].resource);
    g->nruns = 0;
    g->runs_read = 0;
}

void jm__pg_gate_free(jm__store *s)
{
    gate *g = s ? s->gate : NULL;
    if (!g)
        return;
    rules_clear(s, g);
    runs_clear(g);
    jm__free(g->conflicts);
    jm__free(g->limits);
    jm__free(g->pauses);
    jm__free(g->runs);
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
    for (int i = 0; rc == JM_OK && i < PQntuples(r); i++) {
        rule_conflict *v = jm__array_grow(g->conflicts, g->nconflicts, &g->cap_conflicts,
                                          sizeof *v);
        if (!v) {
            rc = oom();
            break;
        }
        g->conflicts = v;
        rule_conflict *c = &v[g->nconflicts++];
        copy_type(c->a, jm__pg_str(r, i, 0));
        copy_type(c->b, jm__pg_str(r, i, 1));
        c->exclusive = jm__pg_i64(r, i, 2) != 0;
    }
    PQclear(r);
    return rc;
}

static int read_limits(jm__store *s, gate *g)
{
    static const char sql[] = "SELECT type, resource, max_running FROM jm_limits";
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading the limits", sql, NULL, &r);
    for (int i = 0; rc == JM_OK && i < PQntuples(r); i++) {
        rule_limit *v = jm__array_grow(g->limits, g->nlimits, &g->cap_limits, sizeof *v);
        if (!v) {
            rc = oom();
            break;
        }
        g->limits = v;
        rule_limit *l = &v[g->nlimits];
        copy_type(l->type, jm__pg_str(r, i, 0));
        const char *res = jm__pg_str(r, i, 1);
        if (!(l->resource = jm__strdup(res ? res : ""))) {
            rc = oom();
            break;
        }
        l->max = (int)jm__pg_i64(r, i, 2);
        g->nlimits++;
    }
    PQclear(r);
    return rc;
}

static int read_pauses(jm__store *s, gate *g)
{
    static const char sql[] = "SELECT scope, what FROM jm_pauses";
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading the pauses", sql, NULL, &r);
    for (int i = 0; rc == JM_OK && i < PQntuples(r); i++) {
        rule_pause *v = jm__array_grow(g->pauses, g->npauses, &g->cap_pauses, sizeof *v);
        if (!v) {
            rc = oom();
            break;
        }
        g->pauses = v;
        rule_pause *p = &v[g->npauses];
        p->scope = (jm_pause_scope)jm__pg_i64(r, i, 0);
        const char *w = jm__pg_str(r, i, 1);
        if (!(p->what = jm__strdup(w ? w : ""))) {
            rc = oom();
            break;
        }
        if (p->scope == JM_PAUSE_ALL)
            g->pause_all = 1;
        g->npauses++;
    }
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

static int exclusive(const gate *g, const char *x, const char *y)
{
    const char *lo = strcmp(x, y) <= 0 ? x : y, *hi = lo == x ? y : x;
    for (size_t i = 0; i < g->nconflicts; i++)
        if (strcmp(g->conflicts[i].a, lo) == 0 && strcmp(g->conflicts[i].b, hi) == 0)
            return g->conflicts[i].exclusive;
    for (size_t i = 0; i < g->nconflicts; i++) {
        const rule_conflict *c = &g->conflicts[i];
        if (c->exclusive && strcmp(c->a, "*") == 0 &&
            (strcmp(c->b, "*") == 0 || strcmp(c->b, x) == 0 || strcmp(c->b, y) == 0))
            return 1;
    }
    return 0;
}

static int same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Whether limit `l` counts a job of `type` on `resource`. */
static int counts(const rule_limit *l, const char *type, const char *resource)
{
    if (*l->type && strcmp(l->type, type) != 0)
        return 0;
    if (!*l->resource)
        return 1;
    return strcmp(l->resource, "*") == 0 ? resource != NULL : same(l->resource, resource);
}

/* Whether the running jobs could hold a job of `type` on `resource` back
 * (or it could hold one of theirs: a take counts for later judges). Errs
 * on the side of yes: a type named by any exclusive conflict. */
static int needs_runs(const gate *g, const char *type, const char *resource)
{
    for (size_t i = 0; i < g->nlimits; i++)
        if (counts(&g->limits[i], type, resource))
            return 1;
    if (!resource)
        return 0;
    for (size_t i = 0; i < g->nconflicts; i++) {
        const rule_conflict *c = &g->conflicts[i];
        if (c->exclusive && (strcmp(c->a, "*") == 0 || strcmp(c->a, type) == 0 ||
                             strcmp(c->b, "*") == 0 || strcmp(c->b, type) == 0))
            return 1;
    }
    return 0;
}

static int runs_add(gate *g, const char *id, const char *type, const char *resource)
{
    gate_run *v = jm__array_grow(g->runs, g->nruns, &g->cap_runs, sizeof *v);
    if (!v)
        return oom();
    g->runs = v;
    gate_run *r = &v[g->nruns];
    snprintf(r->id, sizeof r->id, "%s", id);
    copy_type(r->type, type);
    r->resource = NULL;
    if (resource && !(r->resource = jm__strdup(resource)))
        return oom();
    g->nruns++;
    return JM_OK;
}

/* The running jobs, this transaction's takes among them. */
static int runs_read(jm__store *s, gate *g)
{
    static const char sql[] = "SELECT seq, id, type, resource FROM jm_jobs WHERE status = 2";
    if (g->runs_read)
        return JM_OK;
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading the running jobs", sql, NULL, &r);
    for (int i = 0; rc == JM_OK && i < PQntuples(r); i++) {
        char id[JM_JOB_ID_SIZE];
        jm__pg_row_id(r, i, 0, id);
        rc = runs_add(g, id, jm__pg_str(r, i, 2), jm__pg_str(r, i, 3));
    }
    PQclear(r);
    if (rc)
        runs_clear(g);
    g->runs_read = rc == JM_OK;
    return rc;
}

/* Writes into key what holds a job of `type` on `resource` back, or
 * returns 0 if nothing does: a pause, an exclusive running job on its
 * resource, a full limit, in that order. */
static int held_by(const gate *g, const char *type, const char *resource, char *key,
                   size_t keylen)
{
    for (size_t i = 0; i < g->npauses; i++) {
        const rule_pause *p = &g->pauses[i];
        if ((p->scope == JM_PAUSE_TYPE && same(p->what, type)) ||
            (p->scope == JM_PAUSE_RESOURCE && same(p->what, resource))) {
            snprintf(key, keylen, "paused:%s:%s", p->scope == JM_PAUSE_TYPE ? "type" : "resource",
                     p->what);
            return 1;
        }
    }
    if (resource)
        for (size_t i = 0; i < g->nruns; i++)
            if (same(g->runs[i].resource, resource) && exclusive(g, type, g->runs[i].type)) {
                snprintf(key, keylen, "%s", g->runs[i].id);
                return 1;
            }
    for (size_t i = 0; i < g->nlimits; i++) {
        const rule_limit *l = &g->limits[i];
        if (!counts(l, type, resource))
            continue;
        const char *on = *l->resource ? resource : NULL; /* counted on this resource */
        int count = 0;
        for (size_t j = 0; j < g->nruns; j++)
            if ((!*l->type || strcmp(g->runs[j].type, l->type) == 0) &&
                (!on || same(g->runs[j].resource, on)))
                count++;
        if (count >= l->max) {
            snprintf(key, keylen, "limit:%s@%s", *l->type ? l->type : "*", on ? on : "*");
            return 1;
        }
    }
    return 0;
}

/* ---- the claim's side ---- */

int jm__pg_gate_open(jm__store *s, int64_t version, int *closed)
{
    *closed = 0;
    if (!s->gate && !(s->gate = jm__calloc(1, sizeof(gate))))
        return oom();
    gate *g = s->gate;
    runs_clear(g);
    g->locked = 0;
    int rc = rules_refresh(s, g, version);
    if (rc)
        return rc;
    *closed = g->pause_all;
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
    runs_clear(g);
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
        if (g && needs_runs(g, c[i].type, c[i].resource))
            rc = gate_lock(s, g);
    char key[JM_MAX_RESOURCE_BYTES + 32];
    for (size_t i = 0; i < n && rc == JM_OK; i++) {
        take[i] = 1;
        if (!g || (!g->locked && !g->npauses))
            continue;
        int runs = needs_runs(g, c[i].type, c[i].resource);
        if (runs && (rc = runs_read(s, g)))
            break;
        if (!held_by(g, c[i].type, c[i].resource, key, sizeof key)) {
            /* A job taken before the running jobs are read is read with them. */
            if (g->runs_read)
                rc = runs_add(g, c[i].id, c[i].type, c[i].resource);
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
        if (needs_runs(g, t, res) && (rc = runs_read(s, g)))
            break;
        /* The reason still holds if it still holds its best job back. */
        if (held_by(g, t, res, now_key, sizeof now_key) && strcmp(now_key, key) == 0)
            continue;
        rc = unblock(s, key, n, returned);
    }
    PQclear(r);
    return rc;
}
