/*
 * The flush host operation: every buffered row of a table moves into one
 * new segment file. The file is complete and durable (fsynced, renamed,
 * directory fsynced) before the transaction that records it and empties
 * the buffer commits, so a crash leaves each row buffered or in the
 * segment, never both or neither.
 */
#include <string.h>

#include "alloc.h"
#include "engine_internal.h"

static const char sql_buffer_size[] =
    "SELECT count(*), coalesce(sum(length(CAST(doc AS BLOB))), 0) FROM rows "
    "WHERE table_id = ?1 AND segment_id IS NULL";
static const char sql_buffer_rows[] =
    "SELECT key, created_at, deleted_at, doc FROM rows "
    "WHERE table_id = ?1 AND segment_id IS NULL ORDER BY key";
static const char sql_mark_flushed[] =
    "UPDATE rows SET segment_id = ?2, doc = NULL WHERE table_id = ?1 AND segment_id IS NULL";

static int buffer_size(jm_engine *e, int64_t table_id, int64_t *rows, int64_t *bytes)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_buffer_size, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, table_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *rows = sqlite3_column_int64(st, 0);
        *bytes = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? JM_OK : jm__eng_sqlite_err(e->db, rc, "sizing the buffer");
}

/* Encodes the buffered rows straight from the catalog into `w`. */
static int encode_buffer(jm_engine *e, int64_t table_id, jm__seg_writer *w)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_buffer_rows, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, table_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        jm__seg_row r;
        r.key = sqlite3_column_int64(st, 0);
        r.created_at = sqlite3_column_int64(st, 1);
        r.deleted_at = sqlite3_column_int64(st, 2);
        r.doc = (const char *)sqlite3_column_text(st, 3);
        r.doc_len = (uint32_t)sqlite3_column_bytes(st, 3);
        int err = jm__segment_writer_add(w, &r);
        if (err) {
            sqlite3_reset(st);
            return err;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JM_OK : jm__eng_sqlite_err(e->db, rc, "reading the buffer");
}

int jm__eng_host_flush(void *self, const char *ns, const char *table, jm_host_flush *out)
{
    jm_engine *e = self;
    if (!e || !out)
        return jm_host_error(JM_EINVAL, "flush: NULL argument");
    memset(out, 0, sizeof *out);
    jm__eng_ids written = {0};
    uint8_t *buf = NULL;
    jm__eng_table t;
    int64_t rows = 0, doc_bytes = 0, seg_id = 0;
    size_t size = 0, len = 0;
    jm__eng_lock(e);
    int rc = jm__eng_find_table_locked(e, ns, table, &t);
    if (rc || (rc = jm__eng_begin(e)))
        goto done;
    if ((rc = buffer_size(e, t.id, &rows, &doc_bytes)))
        goto fail;
    if (rows == 0) {
        jm__eng_rollback(e);
        goto done;
    }
    size = jm__segment_size((size_t)rows, (size_t)doc_bytes);
    if (size == 0 || !(buf = jm__malloc(size))) {
        rc = jm_host_error(JM_ENOMEM, "out of memory flushing %lld rows", (long long)rows);
        goto fail;
    }
    jm__seg_writer w;
    jm__segment_writer_init(&w, buf, size, t.id, (uint64_t)rows);
    if ((rc = encode_buffer(e, t.id, &w)) || (rc = jm__segment_writer_finish(&w, &len, NULL)) ||
        (rc = jm__eng_add_segment_locked(e, t.id, buf, len, rows, &written, &seg_id)))
        goto fail;
    sqlite3_stmt *st = NULL;
    if ((rc = jm__eng_stmt(e, sql_mark_flushed, &st)))
        goto fail;
    sqlite3_bind_int64(st, 1, t.id);
    sqlite3_bind_int64(st, 2, seg_id);
    if ((rc = jm__eng_exec(e, st, "moving buffered rows")) || (rc = jm__eng_commit(e)))
        goto fail;
    out->rows = rows;
    out->bytes = (int64_t)len;
    goto done;
fail:
    jm__eng_rollback(e);
    jm__eng_unlink_segments(e, &written);
done:
    jm__eng_unlock(e);
    jm__eng_ids_free(&written);
    jm__free(buf);
    return rc;
}
