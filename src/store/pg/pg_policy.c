/*
 * Table policies in PostgreSQL: the jm_policies table. Evaluating them is
 * the core's (policy_eval.c); their jobs are plain jobs whose idempotency
 * key names the table, so the key index is all that keeps one table from
 * getting two at once. The op that reads a key's last job is pg_jobs.c's.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pg_internal.h"
#include "policy_snapshot.h"

#define POLICY_COLUMNS                                                                   \
    "id, name, kind, ns, tbl, table_type, rows, max_age_ms, segments, small_files, "     \
    "small_bytes, every_ms, retention_hours, priority, paused, created_at, updated_at"

/* A name spelled like another row's id cannot hide that row: the row
 * whose id it is comes first. */
static const char get_sql[] = "SELECT " POLICY_COLUMNS " FROM jm_policies "
                              "WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1";

int jm__pg_policy_insert(jm__store *s, const jm_policy *p)
{
    /* A name or id in use inserts nothing: the caller's conflict. */
    static const char sql[] =
        "INSERT INTO jm_policies (" POLICY_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, "
        "$8, $9, $10, $11, $12, $13, $14, $15, $16, $16) ON CONFLICT DO NOTHING";
    const jm_policy_spec *sp = &p->spec;
    jm__pg_params q;
    jm__pg_p_init(&q);
    jm__pg_p_str(&q, p->id);
    jm__pg_p_str(&q, sp->name);
    jm__pg_p_i64(&q, (int64_t)sp->kind);
    jm__pg_p_str(&q, sp->ns);
    jm__pg_p_str(&q, sp->table);
    jm__pg_p_i64(&q, sp->table_type);
    jm__pg_p_i64(&q, sp->rows);
    jm__pg_p_i64(&q, sp->max_age_ms);
    jm__pg_p_i64(&q, sp->segments);
    jm__pg_p_i64(&q, sp->small_files);
    jm__pg_p_i64(&q, sp->small_bytes);
    jm__pg_p_i64(&q, sp->every_ms);
    jm__pg_p_i64(&q, sp->retention_hours);
    jm__pg_p_i64(&q, sp->priority);
    jm__pg_p_i64(&q, sp->paused != 0);
    jm__pg_p_i64(&q, p->created_at);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "creating a policy", sql, &q, &r);
    if (rc)
        return rc;
    int64_t inserted = jm__pg_changes(r);
    PQclear(r);
    if (!inserted)
        return jm__seterr(JM_ECONFLICT, "a policy named '%.200s' exists already", sp->name);
    return JM_OK;
}

/* Row `row` of a result selecting POLICY_COLUMNS, as a snapshot. */
static int read_row(const PGresult *r, int row, jm_policy **out)
{
    jm_policy_spec sp = JM_POLICY_SPEC_INIT;
    sp.name = jm__pg_str(r, row, 1);
    sp.kind = (jm_policy_kind)jm__pg_i64(r, row, 2);
    sp.ns = jm__pg_str(r, row, 3);
    sp.table = jm__pg_str(r, row, 4);
    sp.table_type = (int)jm__pg_i64(r, row, 5);
    sp.rows = jm__pg_i64(r, row, 6);
    sp.max_age_ms = jm__pg_i64(r, row, 7);
    sp.segments = jm__pg_i64(r, row, 8);
    sp.small_files = jm__pg_i64(r, row, 9);
    sp.small_bytes = jm__pg_i64(r, row, 10);
    sp.every_ms = jm__pg_i64(r, row, 11);
    sp.retention_hours = (int)jm__pg_i64(r, row, 12);
    sp.priority = (int)jm__pg_i64(r, row, 13);
    sp.paused = (int)jm__pg_i64(r, row, 14);
    jm_policy *p = jm__policy_new();
    if (!p || jm__policy_set_spec(p, &sp)) {
        jm_policy_free(p);
        return jm__seterr(JM_ENOMEM, "out of memory reading a policy");
    }
    const char *id = jm__pg_str(r, row, 0);
    snprintf(p->id, sizeof p->id, "%s", id ? id : "");
    p->created_at = jm__pg_i64(r, row, 15);
    p->updated_at = jm__pg_i64(r, row, 16);
    *out = p;
    return JM_OK;
}

int jm__pg_policy_get(jm__store *s, const char *id_or_name, jm_policy **out)
{
    *out = NULL;
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, id_or_name);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading a policy", get_sql, &p, &r);
    if (rc)
        return rc;
    if (PQntuples(r) == 0)
        rc = jm__seterr(JM_ENOTFOUND, "no policy '%.200s'", id_or_name);
    else
        rc = read_row(r, 0, out);
    PQclear(r);
    return rc;
}

int jm__pg_policy_list(jm__store *s, jm_policy ***out, size_t *n)
{
    static const char sql[] = "SELECT " POLICY_COLUMNS " FROM jm_policies ORDER BY name";
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "listing policies", sql, NULL, &r);
    if (rc)
        return rc;
    int rows = PQntuples(r);
    jm_policy **list = NULL;
    size_t count = 0;
    if (rows > 0 && !(list = jm__calloc((size_t)rows, sizeof *list)))
        rc = jm__seterr(JM_ENOMEM, "out of memory listing policies");
    for (int i = 0; rc == JM_OK && i < rows; i++)
        if ((rc = read_row(r, i, &list[i])) == JM_OK)
            count++;
    PQclear(r);
    if (rc) {
        jm_policy_list_free(list, count);
        return rc;
    }
    *out = list;
    *n = count;
    return JM_OK;
}

/* Runs a write of one policy; JM_ENOTFOUND naming `id` if it changed no
 * row. */
static int write_one(jm__store *s, const char *what, const char *sql, const jm__pg_params *p,
                     const char *id)
{
    PGresult *r = NULL;
    int rc = jm__pg_run(s, what, sql, p, &r);
    if (rc)
        return rc;
    int64_t changed = jm__pg_changes(r);
    PQclear(r);
    return changed ? JM_OK : jm__seterr(JM_ENOTFOUND, "no policy '%.200s'", id);
}

int jm__pg_policy_delete(jm__store *s, const char *id)
{
    static const char sql[] = "DELETE FROM jm_policies WHERE id = $1";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, id);
    return write_one(s, "deleting a policy", sql, &p, id);
}

int jm__pg_policy_pause(jm__store *s, const char *id, int paused, int64_t now)
{
    static const char sql[] = "UPDATE jm_policies SET paused = $2, updated_at = $3 WHERE id = $1";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, id);
    jm__pg_p_i64(&p, paused != 0);
    jm__pg_p_i64(&p, now);
    return write_one(s, "pausing a policy", sql, &p, id);
}
