/*
 * Table policies in SQLite: the jm_policies table. Evaluating them is the
 * core's (policy_eval.c); their jobs are plain jobs whose idempotency key
 * names the table, so the store's key index is all that keeps one table
 * from getting two at once.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "policy_snapshot.h"
#include "sqlite_internal.h"

enum { P_INSERT, P_GET, P_LIST, P_DELETE, P_PAUSE, P_KEYED };
_Static_assert(P_KEYED + 1 == JM__POLICY_QUERIES, "JM__POLICY_QUERIES counts the statements");

#define POLICY_COLUMNS                                                                   \
    "id, name, kind, ns, tbl, table_type, rows, max_age_ms, segments, small_files, "     \
    "small_bytes, every_ms, retention_hours, priority, paused, created_at, updated_at"

static const char *const policy_sql[JM__POLICY_QUERIES] = {
    [P_INSERT] = "INSERT INTO jm_policies (" POLICY_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                 "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)",
    [P_GET] = JM__SQL_BY_ID_OR_NAME(POLICY_COLUMNS, "jm_policies"),
    [P_LIST] = "SELECT " POLICY_COLUMNS " FROM jm_policies ORDER BY name",
    [P_DELETE] = "DELETE FROM jm_policies WHERE id = ?1",
    [P_PAUSE] = "UPDATE jm_policies SET paused = ?2, updated_at = ?3 WHERE id = ?1",
    [P_KEYED] = ("SELECT max(created_at) FROM jm_jobs INDEXED BY jm_jobs_key "
                 "WHERE idempotency_key = ?1"),
};

static int stmt(jm__store *s, int q, sqlite3_stmt **out)
{
    return jm__sqlite_stmt_text(s, &s->policy[q], policy_sql[q], out);
}

static int finish(jm__store *s, sqlite3_stmt *st, int src, const char *what)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return src == SQLITE_DONE ? JM_OK : jm__sqlite_err(s, src, what);
}

int jm__sqlite_policy_insert(jm__store *s, const jm_policy *p)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, P_INSERT, &st);
    if (rc)
        return rc;
    const jm_policy_spec *sp = &p->spec;
    jm__bind_text(st, 1, p->id);
    jm__bind_text(st, 2, sp->name);
    sqlite3_bind_int(st, 3, (int)sp->kind);
    jm__bind_text(st, 4, sp->ns);
    jm__bind_text(st, 5, sp->table);
    sqlite3_bind_int(st, 6, sp->table_type);
    sqlite3_bind_int64(st, 7, sp->rows);
    sqlite3_bind_int64(st, 8, sp->max_age_ms);
    sqlite3_bind_int64(st, 9, sp->segments);
    sqlite3_bind_int64(st, 10, sp->small_files);
    sqlite3_bind_int64(st, 11, sp->small_bytes);
    sqlite3_bind_int64(st, 12, sp->every_ms);
    sqlite3_bind_int(st, 13, sp->retention_hours);
    sqlite3_bind_int(st, 14, sp->priority);
    sqlite3_bind_int(st, 15, sp->paused != 0);
    sqlite3_bind_int64(st, 16, p->created_at);
    int src = sqlite3_step(st);
    if (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY) {
        finish(s, st, SQLITE_DONE, NULL);
        return jm__seterr(JM_ECONFLICT, "a policy named '%.200s' exists already", sp->name);
    }
    return finish(s, st, src, "creating a policy");
}

static int col_text(sqlite3_stmt *st, int i, const char **out)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    if (!t && sqlite3_column_type(st, i) != SQLITE_NULL)
        return jm__seterr(JM_ENOMEM, "out of memory reading a policy");
    *out = t;
    return JM_OK;
}

/* A jm__sqlite_row_reader: `slot` is a jm_policy **. */
static int read_row(sqlite3_stmt *st, void *slot)
{
    jm_policy **out = slot;
    jm_policy_spec sp = JM_POLICY_SPEC_INIT;
    int rc = col_text(st, 1, &sp.name);
    if (!rc)
        rc = col_text(st, 3, &sp.ns);
    if (!rc)
        rc = col_text(st, 4, &sp.table);
    if (rc)
        return rc;
    sp.kind = (jm_policy_kind)sqlite3_column_int(st, 2);
    sp.table_type = sqlite3_column_int(st, 5);
    sp.rows = sqlite3_column_int64(st, 6);
    sp.max_age_ms = sqlite3_column_int64(st, 7);
    sp.segments = sqlite3_column_int64(st, 8);
    sp.small_files = sqlite3_column_int64(st, 9);
    sp.small_bytes = sqlite3_column_int64(st, 10);
    sp.every_ms = sqlite3_column_int64(st, 11);
    sp.retention_hours = sqlite3_column_int(st, 12);
    sp.priority = sqlite3_column_int(st, 13);
    sp.paused = sqlite3_column_int(st, 14);
    jm_policy *p = jm__policy_new();
    if (!p || jm__policy_set_spec(p, &sp)) {
        jm_policy_free(p);
        return jm__seterr(JM_ENOMEM, "out of memory reading a policy");
    }
    const char *id = (const char *)sqlite3_column_text(st, 0);
    snprintf(p->id, sizeof p->id, "%s", id ? id : "");
    p->created_at = sqlite3_column_int64(st, 15);
    p->updated_at = sqlite3_column_int64(st, 16);
    *out = p;
    return JM_OK;
}

static void free_list(void *list, size_t n)
{
    jm_policy_list_free(list, n);
}

static const jm__sqlite_rows policy_rows = {
    .noun = "policy",
    .reading = "reading a policy",
    .listing = "listing policies",
    .elem_size = sizeof(jm_policy *),
    .read = read_row,
    .free_list = free_list,
};

int jm__sqlite_policy_get(jm__store *s, const char *id_or_name, jm_policy **out)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, P_GET, &st);
    return rc ? rc : jm__sqlite_get_by_ref(s, st, id_or_name, &policy_rows, out);
}

int jm__sqlite_policy_list(jm__store *s, jm_policy ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    void *list = NULL;
    int rc = stmt(s, P_LIST, &st);
    if (rc || (rc = jm__sqlite_read_list(s, st, &policy_rows, &list, n)))
        return rc;
    *out = list;
    return JM_OK;
}

int jm__sqlite_policy_delete(jm__store *s, const char *id)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, P_DELETE, &st);
    if (rc)
        return rc;
    jm__bind_text(st, 1, id);
    if ((rc = finish(s, st, sqlite3_step(st), "deleting a policy")))
        return rc;
    return sqlite3_changes(s->db) ? JM_OK : jm__seterr(JM_ENOTFOUND, "no policy '%.200s'", id);
}

int jm__sqlite_policy_pause(jm__store *s, const char *id, int paused, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, P_PAUSE, &st);
    if (rc)
        return rc;
    jm__bind_text(st, 1, id);
    sqlite3_bind_int(st, 2, paused != 0);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = finish(s, st, sqlite3_step(st), "pausing a policy")))
        return rc;
    return sqlite3_changes(s->db) ? JM_OK : jm__seterr(JM_ENOTFOUND, "no policy '%.200s'", id);
}

int jm__sqlite_keyed_job_created(jm__store *s, const char *key, int64_t *out)
{
    *out = 0;
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, P_KEYED, &st);
    if (rc)
        return rc;
    jm__bind_text(st, 1, key);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = jm__sqlite_err(s, src, "reading a policy's last job");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}
