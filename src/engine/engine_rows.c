/*
 * Rows of a table: insert into the buffer, soft delete, get by key, count,
 * and scan. The catalog's `rows` table is the index of every row; a row's
 * document lives in it while buffered and in a segment file once flushed.
 * Moving rows between the two is flush's and compact's business.
 */
#include <string.h>

#include "alloc.h"
#include "engine_internal.h"

static const char sql_next_key[] =
    "UPDATE tables SET next_key = next_key + 1 WHERE id = ?1 RETURNING next_key - 1";
static const char sql_insert_row[] =
    "INSERT INTO rows (table_id, key, created_at, deleted_at, segment_id, doc) "
    "VALUES (?1, ?2, ?3, NULL, NULL, ?4)";

int jm_engine_insert(jm_engine *e, const char *ns, const char *table, const char *json_doc,
                     int64_t created_at_ms, int64_t *key_out)
{
    if (!e || !json_doc)
        return jm_host_error(JM_EINVAL, "jm_engine_insert: NULL argument");
    int64_t created = 0, key = 0;
    size_t len = strnlen(json_doc, (size_t)JM_ENG_DOC_MAX + 1);
    int rc;
    if ((rc = jm__eng_time("created_at", created_at_ms, &created)) ||
        (rc = jm__eng_check_doc(json_doc, len)))
        return rc;
    jm__eng_table t;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    if ((rc = jm__eng_find_table_locked(e, ns, table, &t)) || (rc = jm__eng_begin(e)))
        goto done;
    if ((rc = jm__eng_stmt(e, sql_next_key, &st)))
        goto fail;
    sqlite3_bind_int64(st, 1, t.id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        rc = jm__eng_sqlite_err(e->db, rc, "allocating a key");
        goto fail;
    }
    key = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if ((rc = jm__eng_stmt(e, sql_insert_row, &st)))
        goto fail;
    sqlite3_bind_int64(st, 1, t.id);
    sqlite3_bind_int64(st, 2, key);
    sqlite3_bind_int64(st, 3, created);
    sqlite3_bind_text(st, 4, json_doc, (int)len, SQLITE_STATIC);
    if ((rc = jm__eng_exec(e, st, "inserting a row")) || (rc = jm__eng_commit(e)))
        goto fail;
    if (key_out)
        *key_out = key;
    goto done;
fail:
    jm__eng_rollback(e);
done:
    jm__eng_unlock(e);
    return rc;
}

static const char sql_soft_delete[] =
    "UPDATE rows SET deleted_at = ?3 WHERE table_id = ?1 AND key = ?2 AND deleted_at IS NULL";
static const char sql_row_exists[] = "SELECT 1 FROM rows WHERE table_id = ?1 AND key = ?2";

int jm_engine_soft_delete(jm_engine *e, const char *ns, const char *table, int64_t key,
                          int64_t deleted_at_ms)
{
    if (!e)
        return jm_host_error(JM_EINVAL, "jm_engine_soft_delete: engine is NULL");
    int64_t deleted = 0;
    int rc = jm__eng_time("deleted_at", deleted_at_ms, &deleted);
    if (rc)
        return rc;
    jm__eng_table t;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    if ((rc = jm__eng_find_table_locked(e, ns, table, &t)) ||
        (rc = jm__eng_stmt(e, sql_soft_delete, &st)))
        goto done;
    sqlite3_bind_int64(st, 1, t.id);
    sqlite3_bind_int64(st, 2, key);
    sqlite3_bind_int64(st, 3, deleted);
    if ((rc = jm__eng_exec(e, st, "soft-deleting a row")) || sqlite3_changes(e->db) > 0)
        goto done;
    /* Nothing changed: tell a missing row from one already deleted. */
    if ((rc = jm__eng_stmt(e, sql_row_exists, &st)))
        goto done;
    sqlite3_bind_int64(st, 1, t.id);
    sqlite3_bind_int64(st, 2, key);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        rc = jm_host_error(JM_ESTATE, "row %lld of %s:%s is already deleted", (long long)key, ns,
                           table);
    else if (rc == SQLITE_DONE)
        rc = jm_host_error(JM_ENOTFOUND, "row %lld of %s:%s not found", (long long)key, ns,
                           table);
    else
        rc = jm__eng_sqlite_err(e->db, rc, "looking up a row");
done:
    jm__eng_unlock(e);
    return rc;
}

static const char sql_get[] =
    "SELECT segment_id, doc FROM rows WHERE table_id = ?1 AND key = ?2";

/* A NUL-terminated copy from the library's allocator, so jm_free frees it. */
static int copy_doc(const char *doc, size_t len, char **out)
{
    char *copy = jm__malloc(len + 1);
    if (!copy)
        return jm_host_error(JM_ENOMEM, "out of memory copying a document");
    memcpy(copy, doc, len);
    copy[len] = '\0';
    *out = copy;
    return JM_OK;
}

int jm_engine_get(jm_engine *e, const char *ns, const char *table, int64_t key,
                  char **json_out)
{
    if (!e || !json_out)
        return jm_host_error(JM_EINVAL, "jm_engine_get: NULL argument");
    *json_out = NULL;
    jm__eng_table t;
    sqlite3_stmt *st = NULL;
    jm__segment *seg = NULL;
    int64_t seg_id = 0;
    jm__eng_lock(e);
    int rc = jm__eng_find_table_locked(e, ns, table, &t);
    if (rc || (rc = jm__eng_stmt(e, sql_get, &st)))
        goto done;
    sqlite3_bind_int64(st, 1, t.id);
    sqlite3_bind_int64(st, 2, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        rc = jm_host_error(JM_ENOTFOUND, "row %lld of %s:%s not found", (long long)key, ns,
                           table);
        goto done;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        rc = jm__eng_sqlite_err(e->db, rc, "reading a row");
        goto done;
    }
    if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
        rc = copy_doc((const char *)sqlite3_column_text(st, 1),
                      (size_t)sqlite3_column_bytes(st, 1), json_out);
        sqlite3_reset(st);
        goto done;
    }
    seg_id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    /* Reading under the mutex keeps the file from being replaced meanwhile. */
    if ((rc = jm__eng_load_segment(e, seg_id, t.id, &seg)))
        goto done;
    const jm__seg_row *r = jm__segment_find(seg, key);
    if (!r) {
        rc = jm_host_error(JM_EIO, "segment %lld lacks row %lld that the catalog places there",
                           (long long)seg_id, (long long)key);
        goto done;
    }
    rc = copy_doc(r->doc, r->doc_len, json_out);
done:
    jm__eng_unlock(e);
    jm__segment_free(seg);
    return rc;
}

static const char sql_count_all[] = "SELECT count(*) FROM rows WHERE table_id = ?1";
static const char sql_count_live[] =
    "SELECT count(*) FROM rows WHERE table_id = ?1 AND deleted_at IS NULL";
static const char sql_count_segments[] = "SELECT count(*) FROM segments WHERE table_id = ?1";

/* Runs a count over one table: `sql` takes the table id as ?1. */
static int count_of(jm_engine *e, const char *ns, const char *table, const char *sql,
                    int64_t *out)
{
    jm__eng_table t;
    sqlite3_stmt *st = NULL;
    jm__eng_lock(e);
    int rc = jm__eng_find_table_locked(e, ns, table, &t);
    if (rc || (rc = jm__eng_stmt(e, sql, &st)))
        goto done;
    sqlite3_bind_int64(st, 1, t.id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    rc = rc == SQLITE_ROW ? JM_OK : jm__eng_sqlite_err(e->db, rc, "counting");
done:
    jm__eng_unlock(e);
    return rc;
}

int jm_engine_count(jm_engine *e, const char *ns, const char *table, int include_deleted,
                    int64_t *out)
{
    if (!e || !out)
        return jm_host_error(JM_EINVAL, "jm_engine_count: NULL argument");
    *out = 0;
    return count_of(e, ns, table, include_deleted ? sql_count_all : sql_count_live, out);
}

int jm_engine_segment_count(jm_engine *e, const char *ns, const char *table, int64_t *out)
{
    if (!e || !out)
        return jm_host_error(JM_EINVAL, "jm_engine_segment_count: NULL argument");
    *out = 0;
    return count_of(e, ns, table, sql_count_segments, out);
}

int jm_engine_scan(jm_engine *e, const char *ns, const char *table, int include_deleted,
                   int (*each)(void *arg, const jm_host_row *row), void *arg)
{
    if (!e || !each)
        return jm_host_error(JM_EINVAL, "jm_engine_scan: NULL argument");
    jm__eng_snap *s = NULL;
    jm__eng_table t;
    /* A snapshot on its own connection: the callback may call the engine
     * (the mutex is not held) and sees one consistent state throughout. */
    int rc = jm__eng_snap_open(e, ns, table, &s, &t);
    if (rc)
        return rc;
    jm_host_row row;
    while ((rc = jm__eng_snap_next(s, &row)) == 1) {
        if (!include_deleted && row.deleted_at != 0)
            continue;
        if ((rc = each(arg, &row)) != 0)
            break;
    }
    jm__eng_snap_close(s);
    return rc;
}
