/*
 * Writing new segments into the catalog and rewriting existing ones: the
 * shared step of flush, purge and merge, plus the list_segments and
 * merge_segments host operations. Everything here runs inside the caller's
 * catalog transaction; new files are unlinked if it rolls back, replaced
 * files only after it commits, so a crash leaves the old state or the new
 * one and at most orphan files, which the next open removes.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine_internal.h"

static const char sql_insert_segment[] =
    "INSERT INTO segments (table_id, rows, bytes, crc) VALUES (?1, ?2, ?3, ?4)";

int jm__eng_add_segment_locked(jm_engine *e, int64_t table_id, const uint8_t *buf, size_t len,
                               int64_t rows, jm__eng_ids *written, int64_t *id_out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_insert_segment, &st);
    if (rc)
        return rc;
    /* The CRC is the file's last four bytes (little-endian). */
    uint32_t crc = (uint32_t)buf[len - 4] | (uint32_t)buf[len - 3] << 8 |
                   (uint32_t)buf[len - 2] << 16 | (uint32_t)buf[len - 1] << 24;
    sqlite3_bind_int64(st, 1, table_id);
    sqlite3_bind_int64(st, 2, rows);
    sqlite3_bind_int64(st, 3, (int64_t)len);
    sqlite3_bind_int64(st, 4, crc);
    if ((rc = jm__eng_exec(e, st, "recording a segment")))
        return rc;
    int64_t id = sqlite3_last_insert_rowid(e->db);
    /* The id names the file; record it first so a failed transaction
     * removes whatever part of the file exists. */
    if ((rc = jm__eng_ids_push(written, id)) || (rc = jm__eng_write_file(e, id, buf, len)))
        return rc;
    *id_out = id;
    return JM_OK;
}

static const char sql_segment_of[] =
    "SELECT rows, bytes FROM segments WHERE id = ?1 AND table_id = ?2";
static const char sql_row_times[] =
    "SELECT created_at, deleted_at FROM rows WHERE table_id = ?1 AND key = ?2 "
    "AND segment_id = ?3";
static const char sql_rows_in_segment[] =
    "SELECT count(*) FROM rows WHERE table_id = ?1 AND segment_id = ?2";
static const char sql_move_rows[] =
    "UPDATE rows SET segment_id = ?3 WHERE table_id = ?1 AND segment_id = ?2";
static const char sql_delete_segment[] = "DELETE FROM segments WHERE id = ?1";

static int by_key(const void *a, const void *b)
{
    int64_t x = ((const jm__seg_row *)a)->key, y = ((const jm__seg_row *)b)->key;
    return (x > y) - (x < y);
}

static int check_segment(jm_engine *e, int64_t table_id, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_segment_of, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, table_id);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return jm_host_error(JM_ENOTFOUND, "segment %lld is not one of the table's",
                             (long long)id);
    return rc == SQLITE_ROW ? JM_OK : jm__eng_sqlite_err(e->db, rc, "reading a segment");
}

static int count_rows_in(jm_engine *e, int64_t table_id, int64_t id, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_rows_in_segment, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, table_id);
    sqlite3_bind_int64(st, 2, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? JM_OK : jm__eng_sqlite_err(e->db, rc, "counting segment rows");
}

/* Keeps the rows of `s` the catalog still places in segment `id`, with the
 * catalog's times (a soft delete changes only the catalog). */
static int keep_survivors(jm_engine *e, int64_t table_id, int64_t id, const jm__segment *s,
                          jm__seg_row *keep, size_t *nkeep)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_row_times, &st);
    if (rc)
        return rc;
    for (size_t i = 0; i < s->n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, table_id);
        sqlite3_bind_int64(st, 2, s->rows[i].key);
        sqlite3_bind_int64(st, 3, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            continue;
        if (rc != SQLITE_ROW) {
            sqlite3_reset(st);
            return jm__eng_sqlite_err(e->db, rc, "reading a row");
        }
        jm__seg_row r = s->rows[i];
        r.created_at = sqlite3_column_int64(st, 0);
        r.deleted_at = sqlite3_column_int64(st, 1); /* NULL reads as 0: live */
        keep[(*nkeep)++] = r;
    }
    sqlite3_reset(st);
    return JM_OK;
}

int jm__eng_rewrite_locked(jm_engine *e, int64_t table_id, const int64_t *ids, size_t n,
                           jm__eng_ids *written, jm__eng_ids *obsolete, jm_host_segment *merged)
{
    memset(merged, 0, sizeof *merged);
    jm__segment **segs = jm__calloc(n, sizeof *segs);
    jm__seg_row *keep = NULL;
    uint8_t *buf = NULL;
    size_t nkeep = 0, total = 0;
    int64_t listed = 0;
    int rc = JM_OK;
    if (!segs)
        return jm_host_error(JM_ENOMEM, "out of memory rewriting segments");
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            if (ids[j] == ids[i]) {
                rc = jm_host_error(JM_EINVAL, "segment %lld named twice", (long long)ids[i]);
                goto done;
            }
        int64_t in_catalog = 0;
        if ((rc = check_segment(e, table_id, ids[i])) ||
            (rc = jm__eng_load_segment(e, ids[i], table_id, &segs[i])) ||
            (rc = count_rows_in(e, table_id, ids[i], &in_catalog)))
            goto done;
        total += segs[i]->n;
        listed += in_catalog;
    }
    keep = jm__calloc(total ? total : 1, sizeof *keep);
    if (!keep) {
        rc = jm_host_error(JM_ENOMEM, "out of memory rewriting segments");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = keep_survivors(e, table_id, ids[i], segs[i], keep, &nkeep)))
            goto done;
    /* Every row the catalog places in these segments must be in their
     * files; otherwise moving them would lose documents. */
    if ((int64_t)nkeep != listed) {
        rc = jm_host_error(JM_EIO,
                           "segments of table %lld hold %zu of the %lld rows the catalog "
                           "places in them",
                           (long long)table_id, nkeep, (long long)listed);
        goto done;
    }
    qsort(keep, nkeep, sizeof *keep, by_key);
    if (nkeep > 0) {
        size_t len = 0;
        int64_t new_id = 0;
        if ((rc = jm__segment_encode(table_id, keep, nkeep, &buf, &len)) ||
            (rc = jm__eng_add_segment_locked(e, table_id, buf, len, (int64_t)nkeep, written,
                                             &new_id)))
            goto done;
        merged->id = new_id;
        merged->rows = (int64_t)nkeep;
        merged->bytes = (int64_t)len;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = NULL;
        if (nkeep > 0) {
            if ((rc = jm__eng_stmt(e, sql_move_rows, &st)))
                goto done;
            sqlite3_bind_int64(st, 1, table_id);
            sqlite3_bind_int64(st, 2, ids[i]);
            sqlite3_bind_int64(st, 3, merged->id);
            if ((rc = jm__eng_exec(e, st, "moving rows to a new segment")))
                goto done;
        }
        if ((rc = jm__eng_stmt(e, sql_delete_segment, &st)))
            goto done;
        sqlite3_bind_int64(st, 1, ids[i]);
        if ((rc = jm__eng_exec(e, st, "removing a segment")) ||
            (rc = jm__eng_ids_push(obsolete, ids[i])))
            goto done;
    }
done:
    for (size_t i = 0; i < n; i++)
        jm__segment_free(segs[i]);
    jm__free(segs);
    jm__free(keep);
    jm__free(buf);
    return rc;
}

/* --- host operations -------------------------------------------------------- */

static const char sql_list_segments[] =
    "SELECT id, rows, bytes FROM segments WHERE table_id = ?1 ORDER BY id";
static const char sql_count_segments[] = "SELECT count(*) FROM segments WHERE table_id = ?1";

int jm__eng_host_list_segments(void *self, const char *ns, const char *table,
                               jm_host_segment **out, size_t *n)
{
    jm_engine *e = self;
    if (!e || !out || !n)
        return jm_host_error(JM_EINVAL, "list_segments: NULL argument");
    *out = NULL;
    *n = 0;
    jm__eng_lock(e);
    jm__eng_table t;
    sqlite3_stmt *st = NULL;
    jm_host_segment *list = NULL;
    size_t count = 0, got = 0;
    /* Count and list agree: the mutex keeps every writer out meanwhile. */
    int rc = jm__eng_find_table_locked(e, ns, table, &t);
    if (rc || (rc = jm__eng_stmt(e, sql_count_segments, &st)))
        goto done;
    sqlite3_bind_int64(st, 1, t.id);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        sqlite3_reset(st);
        rc = jm__eng_sqlite_err(e->db, rc, "counting segments");
        goto done;
    }
    count = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    rc = JM_OK;
    if (count == 0)
        goto done;
    if (!(list = jm__calloc(count, sizeof *list))) {
        rc = jm_host_error(JM_ENOMEM, "out of memory listing segments");
        goto done;
    }
    if ((rc = jm__eng_stmt(e, sql_list_segments, &st)))
        goto done;
    sqlite3_bind_int64(st, 1, t.id);
    while (got < count && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        list[got].id = sqlite3_column_int64(st, 0);
        list[got].rows = sqlite3_column_int64(st, 1);
        list[got].bytes = sqlite3_column_int64(st, 2);
        got++;
    }
    sqlite3_reset(st);
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? JM_OK
                                                 : jm__eng_sqlite_err(e->db, rc, "listing segments");
done:
    jm__eng_unlock(e);
    if (rc) {
        jm__free(list);
        return rc;
    }
    *out = list;
    *n = got;
    return JM_OK;
}

void jm__eng_host_free_segments(void *self, jm_host_segment *segments)
{
    (void)self;
    jm__free(segments);
}

int jm__eng_host_merge_segments(void *self, const char *ns, const char *table,
                                const int64_t *ids, size_t n, jm_host_segment *merged)
{
    jm_engine *e = self;
    if (!e || !merged || !ids || n == 0)
        return jm_host_error(JM_EINVAL, "merge_segments: NULL argument or no segments");
    memset(merged, 0, sizeof *merged);
    jm__eng_ids written = {0}, obsolete = {0};
    jm__eng_table t;
    jm__eng_lock(e);
    int rc = jm__eng_find_table_locked(e, ns, table, &t);
    if (rc || (rc = jm__eng_begin(e)))
        goto done;
    if ((rc = jm__eng_rewrite_locked(e, t.id, ids, n, &written, &obsolete, merged)) ||
        (rc = jm__eng_commit(e))) {
        jm__eng_rollback(e);
        jm__eng_unlink_segments(e, &written);
        memset(merged, 0, sizeof *merged);
        goto done;
    }
    jm__eng_unlink_segments(e, &obsolete);
done:
    jm__eng_unlock(e);
    jm__eng_ids_free(&written);
    jm__eng_ids_free(&obsolete);
    return rc;
}
