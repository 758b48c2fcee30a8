/*
 * Consistent readers for scan and export: a read transaction on a second,
 * short-lived catalog connection (a WAL snapshot), plus an open descriptor
 * for every segment file the snapshot refers to. Both are taken while
 * holding the engine mutex, and segment files are only unlinked under it,
 * so every file the snapshot needs is open before anyone can remove it; a
 * long backup then reads without blocking writers. Decoded segments are
 * kept in a small cache because rows come in key order and merged segments
 * can interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "engine_internal.h"

/* Decoded segments a reader keeps at once. */
#define SNAP_CACHE 4

typedef struct snap_cached {
    int64_t id;
    jm__segment *seg;
    uint64_t used; /* last use, for LRU eviction */
} snap_cached;

struct jm__eng_snap {
    jm_engine *e;
    sqlite3 *db;
    sqlite3_stmt *rows;
    int64_t table_id;
    jm__eng_ids seg_ids; /* ascending */
    int *seg_fds;        /* parallel to seg_ids */
    snap_cached cache[SNAP_CACHE];
    uint64_t tick;
};

static const char sql_snap_table[] =
    "SELECT id, type, ttl_seconds, owner_user_id FROM tables WHERE ns = ?1 AND name = ?2";
static const char sql_snap_segments[] =
    "SELECT id FROM segments WHERE table_id = ?1 ORDER BY id";
static const char sql_snap_rows[] =
    "SELECT key, created_at, deleted_at, segment_id, doc FROM rows WHERE table_id = ?1 "
    "ORDER BY key";
static const char sql_snap_acl[] = "SELECT user_id FROM acl WHERE table_id = ?1 ORDER BY user_id";
static const char sql_snap_count[] = "SELECT count(*) FROM rows WHERE table_id = ?1";

static int snap_err(jm__eng_snap *s, int rc, const char *what)
{
    return jm__eng_sqlite_err(s->db, rc, what);
}

static int prepare(jm__eng_snap *s, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? JM_OK : snap_err(s, rc, "preparing a snapshot query");
}

/* Reads the table in the snapshot; this first read fixes the snapshot. */
static int read_table(jm__eng_snap *s, const char *ns, const char *table, jm__eng_table *meta)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, sql_snap_table, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(meta, 0, sizeof *meta);
        meta->id = sqlite3_column_int64(st, 0);
        meta->type = (jm_table_type)sqlite3_column_int(st, 1);
        meta->ttl_seconds = sqlite3_column_int64(st, 2);
        const unsigned char *owner = sqlite3_column_text(st, 3);
        if (owner)
            strncpy(meta->owner, (const char *)owner, sizeof meta->owner - 1);
        rc = JM_OK;
    } else if (rc == SQLITE_DONE) {
        rc = jm_host_error(JM_ENOTFOUND, "table %s:%s not found", ns, table);
    } else {
        rc = snap_err(s, rc, "reading a table");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Opens every segment file of the table as the snapshot sees it. */
static int open_segments(jm__eng_snap *s)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, sql_snap_segments, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, s->table_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int err = jm__eng_ids_push(&s->seg_ids, sqlite3_column_int64(st, 0));
        if (err) {
            sqlite3_finalize(st);
            return err;
        }
    }
    rc = rc == SQLITE_DONE ? JM_OK : snap_err(s, rc, "listing segments");
    sqlite3_finalize(st);
    if (rc)
        return rc;
    s->seg_fds = jm__malloc((s->seg_ids.n ? s->seg_ids.n : 1) * sizeof *s->seg_fds);
    if (!s->seg_fds)
        return jm_host_error(JM_ENOMEM, "out of memory opening a snapshot");
    for (size_t i = 0; i < s->seg_ids.n; i++)
        s->seg_fds[i] = -1;
    char path[JM_ENG_PATH_MAX];
    for (size_t i = 0; i < s->seg_ids.n; i++) {
        if ((rc = jm__eng_seg_path(s->e, s->seg_ids.v[i], 0, path, sizeof path)))
            return rc;
        s->seg_fds[i] = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (s->seg_fds[i] < 0)
            return jm_host_error(JM_EIO, "opening segment %s: %s", path, strerror(errno));
    }
    return JM_OK;
}

int jm__eng_snap_open(jm_engine *e, const char *ns, const char *table, jm__eng_snap **out,
                      jm__eng_table *meta)
{
    *out = NULL;
    int rc;
    if ((rc = jm_host_name_check("namespace", ns)) ||
        (rc = jm_host_name_check("table name", table)))
        return rc;
    jm__eng_snap *s = jm__calloc(1, sizeof *s);
    if (!s)
        return jm_host_error(JM_ENOMEM, "out of memory opening a snapshot");
    s->e = e;
    jm__eng_lock(e);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    rc = sqlite3_open_v2(e->catalog_path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        rc = s->db ? snap_err(s, rc, "opening a snapshot connection")
                   : jm_host_error(JM_ENOMEM, "out of memory opening a snapshot");
        goto done;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, JM_ENG_BUSY_TIMEOUT_MS);
    if ((rc = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK) {
        rc = snap_err(s, rc, "starting a snapshot");
        goto done;
    }
    if ((rc = read_table(s, ns, table, meta)))
        goto done;
    s->table_id = meta->id;
    if ((rc = open_segments(s)) || (rc = prepare(s, sql_snap_rows, &s->rows)))
        goto done;
    sqlite3_bind_int64(s->rows, 1, s->table_id);
done:
    jm__eng_unlock(e);
    if (rc) {
        jm__eng_snap_close(s);
        return rc;
    }
    *out = s;
    return JM_OK;
}

static int snap_scalar(jm__eng_snap *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, sql, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, s->table_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    rc = rc == SQLITE_ROW ? JM_OK : snap_err(s, rc, "counting in a snapshot");
    sqlite3_finalize(st);
    return rc;
}

int jm__eng_snap_count(jm__eng_snap *s, int64_t *out)
{
    return snap_scalar(s, sql_snap_count, out);
}

int jm__eng_snap_acl(jm__eng_snap *s, int (*each)(void *arg, const char *user), void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, sql_snap_acl, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, s->table_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int err = each(arg, (const char *)sqlite3_column_text(st, 0));
        if (err) {
            sqlite3_finalize(st);
            return err;
        }
    }
    rc = rc == SQLITE_DONE ? JM_OK : snap_err(s, rc, "reading the ACL");
    sqlite3_finalize(st);
    return rc;
}

/* The decoded segment `id`, from the cache or read from its open file. */
static int segment(jm__eng_snap *s, int64_t id, const jm__segment **out)
{
    s->tick++;
    snap_cached *victim = &s->cache[0];
    for (size_t i = 0; i < SNAP_CACHE; i++) {
        if (s->cache[i].seg && s->cache[i].id == id) {
            s->cache[i].used = s->tick;
            *out = s->cache[i].seg;
            return JM_OK;
        }
        if (!s->cache[i].seg || s->cache[i].used < victim->used)
            victim = &s->cache[i];
        if (!victim->seg)
            break;
    }
    size_t lo = 0, hi = s->seg_ids.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->seg_ids.v[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == s->seg_ids.n || s->seg_ids.v[lo] != id)
        return jm_host_error(JM_EIO, "row refers to segment %lld, unknown to the snapshot",
                             (long long)id);
    char path[JM_ENG_PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    jm__segment *seg = NULL;
    int rc;
    if ((rc = jm__eng_seg_path(s->e, id, 0, path, sizeof path)) ||
        (rc = jm__eng_read_fd(s->seg_fds[lo], path, &buf, &len)) ||
        (rc = jm__eng_adopt_segment(buf, len, path, s->table_id, &seg)))
        return rc;
    jm__segment_free(victim->seg);
    victim->id = id;
    victim->seg = seg;
    victim->used = s->tick;
    *out = seg;
    return JM_OK;
}

int jm__eng_snap_next(jm__eng_snap *s, jm_host_row *row)
{
    int rc = sqlite3_step(s->rows);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return snap_err(s, rc, "reading rows");
    memset(row, 0, sizeof *row);
    row->key = sqlite3_column_int64(s->rows, 0);
    row->created_at = sqlite3_column_int64(s->rows, 1);
    row->deleted_at = sqlite3_column_int64(s->rows, 2);
    if (sqlite3_column_type(s->rows, 3) == SQLITE_NULL) {
        row->doc = (const char *)sqlite3_column_text(s->rows, 4);
        row->doc_len = (size_t)sqlite3_column_bytes(s->rows, 4);
        return 1;
    }
    int64_t id = sqlite3_column_int64(s->rows, 3);
    const jm__segment *seg = NULL;
    if ((rc = segment(s, id, &seg)))
        return rc;
    const jm__seg_row *r = jm__segment_find(seg, row->key);
    if (!r)
        return jm_host_error(JM_EIO, "segment %lld lacks row %lld that the catalog places there",
                             (long long)id, (long long)row->key);
    row->doc = r->doc;
    row->doc_len = r->doc_len;
    return 1;
}

void jm__eng_snap_close(jm__eng_snap *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->rows);
    if (s->db) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(s->db);
    }
    for (size_t i = 0; s->seg_fds && i < s->seg_ids.n; i++)
        if (s->seg_fds[i] >= 0)
            close(s->seg_fds[i]);
    for (size_t i = 0; i < SNAP_CACHE; i++)
        jm__segment_free(s->cache[i].seg);
    jm__free(s->seg_fds);
    jm__eng_ids_free(&s->seg_ids);
    jm__free(s);
}
