/*
 * The purge host operation behind retention and stream eviction: removes
 * for good up to `limit` rows chosen by deletion or creation time, in key
 * order after a continuation key, wherever they live. Buffered rows are
 * deleted from the catalog; every segment that held one of them is
 * rewritten without it (an emptied segment simply disappears), all in one
 * catalog transaction. Replaced files are unlinked after the commit.
 * bytes_freed counts the segment bytes the rewrites saved plus the
 * documents removed from the buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine_internal.h"

static const char sql_pick_deleted[] =
    "SELECT key, segment_id, coalesce(length(CAST(doc AS BLOB)), 0) FROM rows "
    "WHERE table_id = ?1 AND key > ?2 AND deleted_at IS NOT NULL AND deleted_at < ?3 "
    "ORDER BY key LIMIT ?4";
static const char sql_pick_created[] =
    "SELECT key, segment_id, coalesce(length(CAST(doc AS BLOB)), 0) FROM rows "
    "WHERE table_id = ?1 AND key > ?2 AND created_at < ?3 ORDER BY key LIMIT ?4";
static const char sql_delete_row[] = "DELETE FROM rows WHERE table_id = ?1 AND key = ?2";
static const char sql_segment_bytes[] = "SELECT bytes FROM segments WHERE id = ?1";

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Selects the victims: their keys, and the segments that hold some. */
static int pick(jm_engine *e, int64_t table_id, jm_purge_kind kind, int64_t cutoff,
                int64_t after_key, int64_t limit, jm__eng_ids *keys, jm__eng_ids *segs,
                int64_t *buffered_bytes)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, kind == JM_PURGE_DELETED_BEFORE ? sql_pick_deleted : sql_pick_created,
                          &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, table_id);
    sqlite3_bind_int64(st, 2, after_key);
    sqlite3_bind_int64(st, 3, cutoff);
    sqlite3_bind_int64(st, 4, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int err = jm__eng_ids_push(keys, sqlite3_column_int64(st, 0));
        if (!err && sqlite3_column_type(st, 1) != SQLITE_NULL)
            err = jm__eng_ids_push(segs, sqlite3_column_int64(st, 1));
        *buffered_bytes += sqlite3_column_int64(st, 2);
        if (err) {
            sqlite3_reset(st);
            return err;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return jm__eng_sqlite_err(e->db, rc, "selecting rows to purge");
    /* Each affected segment once, oldest first. */
    if (segs->n > 1)
        qsort(segs->v, segs->n, sizeof *segs->v, cmp_i64);
    size_t n = 0;
    for (size_t i = 0; i < segs->n; i++)
        if (n == 0 || segs->v[n - 1] != segs->v[i])
            segs->v[n++] = segs->v[i];
    segs->n = n;
    return JM_OK;
}

static int delete_rows(jm_engine *e, int64_t table_id, const jm__eng_ids *keys)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_delete_row, &st);
    for (size_t i = 0; rc == JM_OK && i < keys->n; i++) {
        sqlite3_bind_int64(st, 1, table_id);
        sqlite3_bind_int64(st, 2, keys->v[i]);
        rc = jm__eng_exec(e, st, "purging a row");
    }
    return rc;
}

static int segment_bytes(jm_engine *e, int64_t id, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_segment_bytes, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? JM_OK
                                                 : jm__eng_sqlite_err(e->db, rc, "sizing a segment");
}

int jm__eng_host_purge(void *self, const char *ns, const char *table, jm_purge_kind kind,
                       int64_t cutoff_ms, int64_t after_key, int64_t limit, jm_host_purge *out)
{
    jm_engine *e = self;
    if (!e || !out)
        return jm_host_error(JM_EINVAL, "purge: NULL argument");
    memset(out, 0, sizeof *out);
    if (kind != JM_PURGE_DELETED_BEFORE && kind != JM_PURGE_CREATED_BEFORE)
        return jm_host_error(JM_EINVAL, "purge: unknown kind %d", (int)kind);
    if (cutoff_ms < 0 || after_key < 0 || limit <= 0)
        return jm_host_error(JM_EINVAL,
                             "purge: cutoff and after_key must be >= 0 and limit > 0");
    jm__eng_ids keys = {0}, segs = {0}, written = {0}, obsolete = {0};
    int64_t freed = 0;
    jm__eng_table t;
    jm__eng_lock(e);
    int rc = jm__eng_find_table_locked(e, ns, table, &t);
    if (rc || (rc = jm__eng_begin(e)))
        goto done;
    if ((rc = pick(e, t.id, kind, cutoff_ms, after_key, limit, &keys, &segs, &freed)) ||
        (rc = delete_rows(e, t.id, &keys)))
        goto fail;
    for (size_t i = 0; i < segs.n; i++) {
        int64_t before = 0;
        jm_host_segment merged;
        if ((rc = segment_bytes(e, segs.v[i], &before)) ||
            (rc = jm__eng_rewrite_locked(e, t.id, &segs.v[i], 1, &written, &obsolete, &merged)))
            goto fail;
        freed += before - merged.bytes;
    }
    if ((rc = jm__eng_commit(e)))
        goto fail;
    jm__eng_unlink_segments(e, &obsolete);
    out->rows = (int64_t)keys.n;
    out->last_key = keys.n ? keys.v[keys.n - 1] : after_key;
    out->files_rewritten = (int64_t)segs.n;
    out->bytes_freed = freed;
    goto done;
fail:
    jm__eng_rollback(e);
    jm__eng_unlink_segments(e, &written);
done:
    jm__eng_unlock(e);
    jm__eng_ids_free(&keys);
    jm__eng_ids_free(&segs);
    jm__eng_ids_free(&written);
    jm__eng_ids_free(&obsolete);
    return rc;
}
