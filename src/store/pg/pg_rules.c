/*
 * The rules every claim obeys (docs/conflicts.md) in the PostgreSQL store:
 * setting and listing conflicts, limits and pauses, and pausing or
 * resuming one job. The claim's judgement by these rules is pg_gate.c's.
 *
 * A rule change bumps jm_rules.version in its own transaction, so every
 * connection rereads the rules at its next claim, and holds the rules lock
 * (pg_gate.h), so it waits for the claims in flight and the claims after
 * it see it. Jobs a lifted rule held back return through the claims'
 * sweep.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "pg_gate.h"

/* A stored type into a char[3] ("" for NULL). */
static void copy_type(char dst[3], const char *src)
{
    snprintf(dst, 3, "%s", src ? src : "");
}

static int oom(const char *what)
{
    return jm__seterr(JM_ENOMEM, "out of memory %s", what);
}

/* Runs `sql` with `p` inside one transaction with the rules lock and the
 * version bump; *changed (if not NULL) gets the rows it changed. */
static int rules_write(jm__store *s, const char *sql, const jm__pg_params *p,
                       const char *what, int64_t *changed)
{
    static const char lock_sql[] = "SELECT " JM_PG_RULES_LOCK;
    static const char bump_sql[] = "UPDATE jm_rules SET version = version + 1";
    int rc = jm__pg_begin(s, what);
    if (rc)
        return rc;
    PGresult *r = NULL;
    if ((rc = jm__pg_run(s, what, lock_sql, NULL, NULL)) == JM_OK &&
        (rc = jm__pg_run(s, what, sql, p, &r)) == JM_OK) {
        if (changed)
            *changed = jm__pg_changes(r);
        rc = jm__pg_run(s, what, bump_sql, NULL, NULL);
    }
    PQclear(r);
    if (rc == JM_OK)
        return jm__pg_commit(s, what);
    jm__pg_rollback(s);
    return rc;
}

int jm__pg_conflict_set(jm__store *s, const char *type_a, const char *type_b, int exclusive)
{
    static const char sql[] =
        "INSERT INTO jm_conflicts VALUES ($1::text, $2::text, $3::integer) "
        "ON CONFLICT (type_a, type_b) DO UPDATE SET exclusive = excluded.exclusive";
    /* Stored in order (type_a <= type_b, bytewise as the gate compares). */
    if (strcmp(type_a, type_b) > 0) {
        const char *t = type_a;
        type_a = type_b;
        type_b = t;
    }
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, type_a);
    jm__pg_p_str(&p, type_b);
    jm__pg_p_i64(&p, exclusive ? 1 : 0);
    return rules_write(s, sql, &p, "setting a conflict", NULL);
}

int jm__pg_limit_set(jm__store *s, const char *type, const char *resource, int max_running)
{
    static const char set_sql[] =
        "INSERT INTO jm_limits VALUES ($1::text, $2::text, $3::integer) "
        "ON CONFLICT (type, resource) DO UPDATE SET max_running = excluded.max_running";
    static const char del_sql[] =
        "DELETE FROM jm_limits WHERE type = $1::text AND resource = $2::text";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, type ? type : "");
    jm__pg_p_str(&p, resource ? resource : "");
    if (max_running > 0)
        jm__pg_p_i64(&p, max_running);
    return rules_write(s, max_running > 0 ? set_sql : del_sql, &p, "setting a limit", NULL);
}

int jm__pg_pause_set(jm__store *s, jm_pause_scope scope, const char *what, int paused,
                     int64_t now)
{
    static const char set_sql[] = "INSERT INTO jm_pauses VALUES ($1::integer, $2::text, "
                                  "$3::bigint) ON CONFLICT (scope, what) DO NOTHING";
    static const char del_sql[] =
        "DELETE FROM jm_pauses WHERE scope = $1::integer AND what = $2::text";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, (int64_t)scope);
    jm__pg_p_str(&p, what ? what : "");
    if (paused)
        jm__pg_p_i64(&p, now);
    int64_t changed = 0;
    int rc = rules_write(s, paused ? set_sql : del_sql, &p, paused ? "pausing" : "resuming",
                         &changed);
    if (rc == JM_OK && !paused && changed == 0)
        return jm__seterr(JM_ENOTFOUND, "no such pause: %s%s%s",
                          scope == JM_PAUSE_ALL    ? "all"
                          : scope == JM_PAUSE_TYPE ? "type"
                                                   : "resource",
                          what ? " " : "", what ? what : "");
    return rc;
}

/* The lists read the tables, never the claim's cache: a list must be
 * fresh. COLLATE "C" orders them bytewise, as the SQLite store does. */

int jm__pg_conflict_list(jm__store *s, jm_conflict **out, size_t *n)
{
    static const char sql[] = "SELECT type_a, type_b, exclusive FROM jm_conflicts "
                              "ORDER BY type_a COLLATE \"C\", type_b COLLATE \"C\"";
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "listing the conflicts", sql, NULL, &r);
    if (rc)
        return rc;
    int rows = PQntuples(r);
    jm_conflict *v = rows ? jm__calloc((size_t)rows, sizeof *v) : NULL;
    if (rows && !v) {
        PQclear(r);
        return oom("listing the conflicts");
    }
    for (int i = 0; i < rows; i++) {
        copy_type(v[i].type_a, jm__pg_str(r, i, 0));
        copy_type(v[i].type_b, jm__pg_str(r, i, 1));
        v[i].exclusive = jm__pg_i64(r, i, 2) != 0;
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return JM_OK;
}

int jm__pg_limit_list(jm__store *s, jm_limit **out, size_t *n)
{
    static const char sql[] = "SELECT type, resource, max_running FROM jm_limits "
                              "ORDER BY type COLLATE \"C\", resource COLLATE \"C\"";
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "listing the limits", sql, NULL, &r);
    if (rc)
        return rc;
    int rows = PQntuples(r);
    jm_limit *v = rows ? jm__calloc((size_t)rows, sizeof *v) : NULL;
    if (rows && !v) {
        PQclear(r);
        return oom("listing the limits");
    }
    for (int i = 0; i < rows; i++) {
        const char *res = jm__pg_str(r, i, 1);
        copy_type(v[i].type, jm__pg_str(r, i, 0));
        v[i].max_running = (int)jm__pg_i64(r, i, 2);
        if (res && *res && !(v[i].resource = jm__strdup(res))) {
            for (int j = 0; j < i; j++)
                jm__free(v[j].resource);
            jm__free(v);
            PQclear(r);
            return oom("listing the limits");
        }
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return JM_OK;
}

int jm__pg_pause_list(jm__store *s, jm_pause_entry **out, size_t *n)
{
    static const char sql[] = "SELECT scope, what, since FROM jm_pauses "
                              "ORDER BY scope, what COLLATE \"C\"";
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "listing the pauses", sql, NULL, &r);
    if (rc)
        return rc;
    int rows = PQntuples(r);
    jm_pause_entry *v = rows ? jm__calloc((size_t)rows, sizeof *v) : NULL;
    if (rows && !v) {
        PQclear(r);
        return oom("listing the pauses");
    }
    for (int i = 0; i < rows; i++) {
        const char *what = jm__pg_str(r, i, 1);
        v[i].scope = (jm_pause_scope)jm__pg_i64(r, i, 0);
        v[i].since_ms = jm__pg_i64(r, i, 2);
        if (v[i].scope != JM_PAUSE_ALL && !(v[i].what = jm__strdup(what ? what : ""))) {
            for (int j = 0; j < i; j++)
                jm__free(v[j].what);
            jm__free(v);
            PQclear(r);
            return oom("listing the pauses");
        }
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return JM_OK;
}

int jm__pg_pause_job(jm__store *s, const char *id, int64_t now, int *requested, int64_t *seq,
                     int64_t *owner_instance)
{
    /* A waiting job pauses at once; a running one gets the request. */
    static const char sql[] =
        "UPDATE jm_jobs SET "
        "status = CASE WHEN status = 2 THEN 2 ELSE 7 END, "
        "pause_requested = CASE WHEN status = 2 THEN 1 ELSE 0 END, "
        "blocked_by = NULL, updated_at = $3::bigint "
        "WHERE seq = $2::bigint AND id = $1::text AND status <= 3 "
        "AND NOT (status = 2 AND pause_requested <> 0) "
        "RETURNING status, owner_instance";
    *requested = 0;
    *owner_instance = 0;
    char prefix[JM_JOB_ID_SIZE];
    int rc = jm__pg_id_split(id, prefix, seq);
    if (rc)
        return rc;
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, prefix);
    jm__pg_p_i64(&p, *seq);
    jm__pg_p_i64(&p, now);
    PGresult *r = NULL;
    if ((rc = jm__pg_run(s, "pausing a job", sql, &p, &r)))
        return rc;
    int found = PQntuples(r) > 0;
    if (found) {
        *requested = jm__pg_i64(r, 0, 0) == JM_STATUS_RUNNING;
        *owner_instance = jm__pg_i64(r, 0, 1);
    }
    PQclear(r);
    if (found)
        return JM_OK;
    jm_status status;
    if ((rc = jm__pg_status(s, id, &status)))
        return rc;
    return jm__seterr(JM_ESTATE, "job %s is %s%s: it cannot be paused", id,
                      jm_status_name(status),
                      status == JM_STATUS_RUNNING ? " with a pause already requested" : "");
}

int jm__pg_resume_job(jm__store *s, const char *id, int64_t now)
{
    /* A paused job goes back to waiting for its run_at (now, or the backoff
     * it was paused in); a running one loses its request. */
    static const char sql[] =
        "UPDATE jm_jobs SET "
        "status = CASE WHEN status = 2 THEN 2 WHEN run_at > $3::bigint THEN 0 ELSE 1 END, "
        "pause_requested = 0, blocked_by = NULL, updated_at = $3::bigint "
        "WHERE seq = $2::bigint AND id = $1::text "
        "AND (status = 7 OR (status = 2 AND pause_requested <> 0))";
    char prefix[JM_JOB_ID_SIZE];
    int64_t seq = 0;
    int rc = jm__pg_id_split(id, prefix, &seq);
    if (rc)
        return rc;
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, prefix);
    jm__pg_p_i64(&p, seq);
    jm__pg_p_i64(&p, now);
    PGresult *r = NULL;
    if ((rc = jm__pg_run(s, "resuming a job", sql, &p, &r)))
        return rc;
    int64_t changed = jm__pg_changes(r);
    PQclear(r);
    if (changed)
        return JM_OK;
    jm_status status;
    if ((rc = jm__pg_status(s, id, &status)))
        return rc;
    return jm__seterr(JM_ESTATE, "job %s is %s and not asked to pause: nothing to resume", id,
                      jm_status_name(status));
}
