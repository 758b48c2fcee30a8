/*
 * Namespaces and tables: creating them, looking them up (table_exists, the
 * table_info host operation) and dropping a table with everything on it
 * (its rows, segment files, ACL entries and live queries). Rows inside a
 * table are engine_rows.c's.
 */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"

static const char sql_insert_ns[] =
    "INSERT INTO namespaces (name) VALUES (?1) ON CONFLICT DO NOTHING";
static const char sql_ns_exists[] = "SELECT 1 FROM namespaces WHERE name = ?1";
static const char sql_user_exists[] = "SELECT 1 FROM users WHERE user_id = ?1";
static const char sql_insert_table[] =
    "INSERT INTO tables (ns, name, type, ttl_seconds, owner_user_id) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

int jm_engine_create_namespace(jm_engine *e, const char *ns)
{
    if (!e)
        return jm_host_error(JM_EINVAL, "jm_engine_create_namespace: engine is NULL");
    int rc = jm_host_name_check("namespace", ns);
    if (rc)
        return rc;
    jm__eng_lock(e);
    sqlite3_stmt *st = NULL;
    if ((rc = jm__eng_stmt(e, sql_insert_ns, &st)))
        goto done;
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    if ((rc = jm__eng_exec(e, st, "creating a namespace")))
        goto done;
    if (sqlite3_changes(e->db) == 0)
        rc = jm_host_error(JM_ECONFLICT, "namespace %s already exists", ns);
done:
    jm__eng_unlock(e);
    return rc;
}

/* 1 if `sql` (one bound text parameter) returns a row. */
static int exists(jm_engine *e, const char *sql, const char *value, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return jm__eng_sqlite_err(e->db, rc, "looking something up");
    *out = rc == SQLITE_ROW;
    return JM_OK;
}

int jm__eng_check_definition(jm_table_type type, int64_t ttl, const char *owner)
{
    if ((unsigned)type > JM_TABLE_STREAM)
        return jm_host_error(JM_EINVAL, "unknown table type %d", (int)type);
    if (type == JM_TABLE_STREAM && ttl <= 0)
        return jm_host_error(JM_EINVAL, "a Stream table needs ttl_seconds > 0");
    if (type != JM_TABLE_STREAM && ttl != 0)
        return jm_host_error(JM_EINVAL, "ttl_seconds applies to Stream tables only");
    return owner ? jm_host_name_check("owner_user_id", owner) : JM_OK;
}

int jm_engine_create_table(jm_engine *e, const char *ns, const char *table,
                           jm_table_type type, const jm_table_opts *o)
{
    if (!e)
        return jm_host_error(JM_EINVAL, "jm_engine_create_table: engine is NULL");
    if (o && o->version != JM_TABLE_OPTS_VERSION)
        return jm_host_error(JM_EINVAL, "unknown jm_table_opts version %u", o->version);
    const char *owner = o ? o->owner_user_id : NULL;
    int64_t ttl = o ? o->ttl_seconds : 0;
    int rc;
    if ((rc = jm_host_name_check("namespace", ns)) ||
        (rc = jm_host_name_check("table name", table)) ||
        (rc = jm__eng_check_definition(type, ttl, owner)))
        return rc;
    jm__eng_lock(e);
    int found = 0;
    sqlite3_stmt *st = NULL;
    if ((rc = jm__eng_begin(e)))
        goto done;
    if ((rc = exists(e, sql_ns_exists, ns, &found)))
        goto fail;
    if (!found) {
        rc = jm_host_error(JM_ENOTFOUND, "namespace %s not found", ns);
        goto fail;
    }
    if (owner) {
        if ((rc = exists(e, sql_user_exists, owner, &found)))
            goto fail;
        if (!found) {
            rc = jm_host_error(JM_ENOTFOUND, "owner %s not found", owner);
            goto fail;
        }
    }
    if ((rc = jm__eng_stmt(e, sql_insert_table, &st)))
        goto fail;
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)type);
    sqlite3_bind_int64(st, 4, ttl);
    if (owner)
        sqlite3_bind_text(st, 5, owner, -1, SQLITE_STATIC);
    if ((rc = jm__eng_exec(e, st, "creating a table")))
        goto fail;
    if (sqlite3_changes(e->db) == 0) {
        rc = jm_host_error(JM_ECONFLICT, "table %s:%s already exists", ns, table);
        goto fail;
    }
    rc = jm__eng_commit(e);
    goto done;
fail:
    jm__eng_rollback(e);
done:
    jm__eng_unlock(e);
    return rc;
}

int jm_engine_table_exists(jm_engine *e, const char *ns, const char *table, int *out)
{
    if (!e || !out)
        return jm_host_error(JM_EINVAL, "jm_engine_table_exists: NULL argument");
    *out = 0;
    jm__eng_table t;
    jm__eng_lock(e);
    int rc = jm__eng_find_table_locked(e, ns, table, &t);
    jm__eng_unlock(e);
    if (rc == JM_ENOTFOUND)
        return JM_OK;
    if (rc == JM_OK)
        *out = 1;
    return rc;
}

static const char sql_table_stats[] =
    "SELECT (SELECT count(*) FROM rows WHERE table_id = ?1 AND segment_id IS NULL), "
    "(SELECT count(*) FROM segments WHERE table_id = ?1), "
    "(SELECT coalesce(sum(bytes), 0) FROM segments WHERE table_id = ?1)";

int jm__eng_host_table_info(void *self, const char *ns, const char *table, jm_host_table *out)
{
    jm_engine *e = self;
    if (!e || !out)
        return jm_host_error(JM_EINVAL, "table_info: NULL argument");
    memset(out, 0, sizeof *out);
    jm__eng_table t;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    int rc = jm__eng_find_table_locked(e, ns, table, &t);
    if (rc || (rc = jm__eng_stmt(e, sql_table_stats, &st)))
        goto done;
    sqlite3_bind_int64(st, 1, t.id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        rc = jm__eng_sqlite_err(e->db, rc, "describing a table");
        goto done;
    }
    out->type = t.type;
    out->ttl_seconds = t.ttl_seconds;
    snprintf(out->owner_user_id, sizeof out->owner_user_id, "%s", t.owner);
    out->buffered_rows = sqlite3_column_int64(st, 0);
    out->segments = sqlite3_column_int64(st, 1);
    out->segment_bytes = sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    rc = JM_OK;
done:
    jm__eng_unlock(e);
    return rc;
}

/* --- dropping ------------------------------------------------------------- */

static const char sql_count_rows[] = "SELECT count(*) FROM rows WHERE table_id = ?1";
static const char sql_table_segments[] = "SELECT id, bytes FROM segments WHERE table_id = ?1";
static const char *const sql_drop[] = {
    "DELETE FROM rows WHERE table_id = ?1",
    "DELETE FROM segments WHERE table_id = ?1",
    "DELETE FROM acl WHERE table_id = ?1",
    "DELETE FROM live_queries WHERE table_id = ?1",
    "DELETE FROM tables WHERE id = ?1",
};

int jm__eng_drop_locked(jm_engine *e, int64_t table_id, jm__eng_ids *obsolete,
                        jm_host_drop *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_count_rows, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, table_id);
    rc = sqlite3_step(st);
    out->rows = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return jm__eng_sqlite_err(e->db, rc, "counting a table's rows");
    if ((rc = jm__eng_stmt(e, sql_table_segments, &st)))
        return rc;
    sqlite3_bind_int64(st, 1, table_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int err = jm__eng_ids_push(obsolete, sqlite3_column_int64(st, 0));
        if (err) {
            sqlite3_reset(st);
            return err;
        }
        out->files++;
        out->bytes += sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return jm__eng_sqlite_err(e->db, rc, "listing a table's segments");
    for (size_t i = 0; i < sizeof sql_drop / sizeof *sql_drop; i++) {
        if ((rc = jm__eng_stmt(e, sql_drop[i], &st)))
            return rc;
        sqlite3_bind_int64(st, 1, table_id);
        if ((rc = jm__eng_exec(e, st, "dropping a table")))
            return rc;
    }
    return JM_OK;
}

int jm__eng_host_drop_table(void *self, const char *ns, const char *table, jm_host_drop *out)
{
    jm_engine *e = self;
    jm_host_drop ignored;
    if (!e)
        return jm_host_error(JM_EINVAL, "drop_table: engine is NULL");
    if (!out)
        out = &ignored;
    memset(out, 0, sizeof *out);
    jm__eng_ids obsolete = {0};
    jm__eng_table t;
    jm__eng_lock(e);
    int rc = jm__eng_find_table_locked(e, ns, table, &t);
    if (rc || (rc = jm__eng_begin(e)))
        goto done;
    if ((rc = jm__eng_drop_locked(e, t.id, &obsolete, out)) || (rc = jm__eng_commit(e))) {
        jm__eng_rollback(e);
        memset(out, 0, sizeof *out);
        goto done;
    }
    jm__eng_unlink_segments(e, &obsolete);
done:
    jm__eng_unlock(e);
    jm__eng_ids_free(&obsolete);
    return rc;
}

int jm_engine_drop_table(jm_engine *e, const char *ns, const char *table)
{
    return jm__eng_host_drop_table(e, ns, table, NULL);
}
