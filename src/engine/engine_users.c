/*
 * Users, their ACL entries on shared tables and their live queries: the
 * public calls that create them, and the host operations user cleanup
 * needs (user_info, user_tables, remove_user_acl, remove_user_live_queries,
 * delete_user). Dropping the tables a user owns is engine_tables.c's.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "engine_internal.h"

static const char sql_insert_user[] =
    "INSERT INTO users (user_id, username, deleted_at) VALUES (?1, ?2, NULL) "
    "ON CONFLICT DO NOTHING";
static const char sql_user[] = "SELECT username, deleted_at FROM users WHERE user_id = ?1";
static const char sql_soft_delete_user[] =
    "UPDATE users SET deleted_at = ?2 WHERE user_id = ?1 AND deleted_at IS NULL";

int jm_engine_create_user(jm_engine *e, const char *user_id, const char *username)
{
    if (!e)
        return jm_host_error(JM_EINVAL, "jm_engine_create_user: engine is NULL");
    int rc;
    if ((rc = jm_host_name_check("user_id", user_id)) ||
        (rc = jm_host_name_check("username", username)))
        return rc;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    if ((rc = jm__eng_stmt(e, sql_insert_user, &st)))
        goto done;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, username, -1, SQLITE_STATIC);
    if ((rc = jm__eng_exec(e, st, "creating a user")))
        goto done;
    if (sqlite3_changes(e->db) == 0)
        rc = jm_host_error(JM_ECONFLICT, "user %s already exists", user_id);
done:
    jm__eng_unlock(e);
    return rc;
}

/* Reads a user (name checked by the caller). JM_ENOTFOUND. */
static int read_user_locked(jm_engine *e, const char *user_id, jm_host_user *out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_user, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->username, sizeof out->username, "%s",
                 (const char *)sqlite3_column_text(st, 0));
        out->deleted_at = sqlite3_column_int64(st, 1);
        rc = JM_OK;
    } else if (rc == SQLITE_DONE) {
        rc = jm_host_error(JM_ENOTFOUND, "user %s not found", user_id);
    } else {
        rc = jm__eng_sqlite_err(e->db, rc, "reading a user");
    }
    sqlite3_reset(st);
    return rc;
}

int jm_engine_soft_delete_user(jm_engine *e, const char *user_id)
{
    if (!e)
        return jm_host_error(JM_EINVAL, "jm_engine_soft_delete_user: engine is NULL");
    int rc = jm_host_name_check("user_id", user_id);
    if (rc)
        return rc;
    jm_host_user u;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    if ((rc = jm__eng_stmt(e, sql_soft_delete_user, &st)))
        goto done;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, jm__eng_now_ms());
    if ((rc = jm__eng_exec(e, st, "soft-deleting a user")) || sqlite3_changes(e->db) > 0)
        goto done;
    /* Nothing changed: missing, or deleted already. */
    if ((rc = read_user_locked(e, user_id, &u)) == JM_OK)
        rc = jm_host_error(JM_ESTATE, "user %s is already soft-deleted", user_id);
done:
    jm__eng_unlock(e);
    return rc;
}

int jm_engine_user_exists(jm_engine *e, const char *user_id, int *out)
{
    if (!e || !out)
        return jm_host_error(JM_EINVAL, "jm_engine_user_exists: NULL argument");
    *out = 0;
    int rc = jm_host_name_check("user_id", user_id);
    if (rc)
        return rc;
    jm_host_user u;
    jm__eng_lock(e);
    rc = read_user_locked(e, user_id, &u);
    jm__eng_unlock(e);
    if (rc == JM_ENOTFOUND)
        return JM_OK;
    if (rc == JM_OK)
        *out = 1;
    return rc;
}

static const char sql_grant[] =
    "INSERT INTO acl (table_id, user_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING";

int jm_engine_grant(jm_engine *e, const char *ns, const char *table, const char *user_id)
{
    if (!e)
        return jm_host_error(JM_EINVAL, "jm_engine_grant: engine is NULL");
    int rc = jm_host_name_check("user_id", user_id);
    if (rc)
        return rc;
    jm__eng_table t;
    jm_host_user u;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    if ((rc = jm__eng_find_table_locked(e, ns, table, &t)))
        goto done;
    if (t.type != JM_TABLE_SHARED) {
        rc = jm_host_error(JM_EINVAL, "ACL entries exist only on Shared tables; %s:%s is %s", ns,
                           table, jm_table_type_name(t.type));
        goto done;
    }
    if ((rc = read_user_locked(e, user_id, &u)) || (rc = jm__eng_stmt(e, sql_grant, &st)))
        goto done;
    sqlite3_bind_int64(st, 1, t.id);
    sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
    rc = jm__eng_exec(e, st, "granting access");
done:
    jm__eng_unlock(e);
    return rc;
}

static const char sql_add_live_query[] =
    "INSERT INTO live_queries (user_id, table_id) VALUES (?1, ?2)";

int jm_engine_add_live_query(jm_engine *e, const char *user_id, const char *ns,
                             const char *table, int64_t *id_out)
{
    if (!e)
        return jm_host_error(JM_EINVAL, "jm_engine_add_live_query: engine is NULL");
    int rc = jm_host_name_check("user_id", user_id);
    if (rc)
        return rc;
    jm__eng_table t;
    jm_host_user u;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    if ((rc = jm__eng_find_table_locked(e, ns, table, &t)) ||
        (rc = read_user_locked(e, user_id, &u)) ||
        (rc = jm__eng_stmt(e, sql_add_live_query, &st)))
        goto done;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, t.id);
    if ((rc = jm__eng_exec(e, st, "adding a live query")))
        goto done;
    if (id_out)
        *id_out = sqlite3_last_insert_rowid(e->db);
done:
    jm__eng_unlock(e);
    return rc;
}

static const char sql_count_acl[] = "SELECT count(*) FROM acl WHERE user_id = ?1";
static const char sql_count_live[] = "SELECT count(*) FROM live_queries WHERE user_id = ?1";

static int count_for_user(jm_engine *e, const char *user_id, const char *sql, int64_t *out)
{
    if (!e || !out)
        return jm_host_error(JM_EINVAL, "count for a user: NULL argument");
    *out = 0;
    int rc = jm_host_name_check("user_id", user_id);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    if ((rc = jm__eng_stmt(e, sql, &st)))
        goto done;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    rc = rc == SQLITE_ROW ? JM_OK : jm__eng_sqlite_err(e->db, rc, "counting");
done:
    jm__eng_unlock(e);
    return rc;
}

int jm_engine_count_acl(jm_engine *e, const char *user_id, int64_t *out)
{
    return count_for_user(e, user_id, sql_count_acl, out);
}

int jm_engine_count_live_queries(jm_engine *e, const char *user_id, int64_t *out)
{
    return count_for_user(e, user_id, sql_count_live, out);
}

/* --- host operations -------------------------------------------------------- */

int jm__eng_host_user_info(void *self, const char *user_id, jm_host_user *out)
{
    jm_engine *e = self;
    if (!e || !out)
        return jm_host_error(JM_EINVAL, "user_info: NULL argument");
    memset(out, 0, sizeof *out);
    int rc = jm_host_name_check("user_id", user_id);
    if (rc)
        return rc;
    jm__eng_lock(e);
    rc = read_user_locked(e, user_id, out);
    jm__eng_unlock(e);
    return rc;
}

/* One owned table, copied out so the callback runs without the mutex. */
typedef struct owned_table {
    char ns[JM_HOST_NAME_MAX + 1];
    char name[JM_HOST_NAME_MAX + 1];
    jm_table_type type;
} owned_table;

static const char sql_count_owned[] = "SELECT count(*) FROM tables WHERE owner_user_id = ?1";
static const char sql_owned[] =
    "SELECT ns, name, type FROM tables WHERE owner_user_id = ?1 ORDER BY ns, name";

static int list_owned_locked(jm_engine *e, const char *user_id, owned_table **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_count_owned, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    size_t count = rc == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return jm__eng_sqlite_err(e->db, rc, "counting owned tables");
    owned_table *list = jm__calloc(count ? count : 1, sizeof *list);
    if (!list)
        return jm_host_error(JM_ENOMEM, "out of memory listing owned tables");
    size_t got = 0;
    if ((rc = jm__eng_stmt(e, sql_owned, &st))) {
        jm__free(list);
        return rc;
    }
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    rc = SQLITE_DONE;
    while (got < count && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        snprintf(list[got].ns, sizeof list[got].ns, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(list[got].name, sizeof list[got].name, "%s",
                 (const char *)sqlite3_column_text(st, 1));
        list[got].type = (jm_table_type)sqlite3_column_int(st, 2);
        got++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        jm__free(list);
        return jm__eng_sqlite_err(e->db, rc, "listing owned tables");
    }
    *out = list;
    *n = got;
    return JM_OK;
}

int jm__eng_host_user_tables(void *self, const char *user_id,
                             int (*each)(void *arg, const char *ns, const char *table,
                                         jm_table_type type),
                             void *arg)
{
    jm_engine *e = self;
    if (!e || !each)
        return jm_host_error(JM_EINVAL, "user_tables: NULL argument");
    int rc = jm_host_name_check("user_id", user_id);
    if (rc)
        return rc;
    owned_table *list = NULL;
    size_t n = 0;
    jm__eng_lock(e);
    rc = list_owned_locked(e, user_id, &list, &n);
    jm__eng_unlock(e);
    /* The callback may call back into the engine: it runs unlocked. */
    for (size_t i = 0; rc == JM_OK && i < n; i++)
        rc = each(arg, list[i].ns, list[i].name, list[i].type);
    jm__free(list);
    return rc;
}

static const char sql_remove_acl[] = "DELETE FROM acl WHERE user_id = ?1";
static const char sql_remove_live[] = "DELETE FROM live_queries WHERE user_id = ?1";

static int remove_for_user(void *self, const char *user_id, const char *sql, int64_t *removed)
{
    jm_engine *e = self;
    if (!e)
        return jm_host_error(JM_EINVAL, "remove for a user: engine is NULL");
    if (removed)
        *removed = 0;
    int rc = jm_host_name_check("user_id", user_id);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    if ((rc = jm__eng_stmt(e, sql, &st)))
        goto done;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    if ((rc = jm__eng_exec(e, st, "removing a user's entries")))
        goto done;
    if (removed)
        *removed = sqlite3_changes(e->db);
done:
    jm__eng_unlock(e);
    return rc;
}

int jm__eng_host_remove_user_acl(void *self, const char *user_id, int64_t *removed)
{
    return remove_for_user(self, user_id, sql_remove_acl, removed);
}

int jm__eng_host_remove_user_live_queries(void *self, const char *user_id, int64_t *removed)
{
    return remove_for_user(self, user_id, sql_remove_live, removed);
}

static const char sql_delete_user[] =
    "DELETE FROM users WHERE user_id = ?1 AND deleted_at IS NOT NULL";

int jm__eng_host_delete_user(void *self, const char *user_id)
{
    jm_engine *e = self;
    if (!e)
        return jm_host_error(JM_EINVAL, "delete_user: engine is NULL");
    int rc = jm_host_name_check("user_id", user_id);
    if (rc)
        return rc;
    jm_host_user u;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    if ((rc = read_user_locked(e, user_id, &u)))
        goto done;
    if (u.deleted_at == 0) {
        rc = jm_host_error(JM_ESTATE, "user %s is live: soft-delete it first", user_id);
        goto done;
    }
    /* Remaining ACL entries and live queries go with the user (ON DELETE
     * CASCADE); tables it owned lose their owner (ON DELETE SET NULL). */
    if ((rc = jm__eng_stmt(e, sql_delete_user, &st)))
        goto done;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    rc = jm__eng_exec(e, st, "deleting a user");
done:
    jm__eng_unlock(e);
    return rc;
}
