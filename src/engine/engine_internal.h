/*
 * Shared between the reference engine's files: the engine handle, its
 * catalog connection and statement cache, and the helpers every operation
 * uses (names, clocks, transactions, segment files, deferred unlinks).
 *
 * Locking: one mutex serialises every operation on the catalog connection
 * and every change to the segment files. Functions named *_locked, and the
 * helpers declared here unless they say otherwise, expect the caller to hold
 * it. Snapshot readers (engine_snapshot.c) take it only while they open.
 */
#ifndef JM_ENGINE_INTERNAL_H
#define JM_ENGINE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "segment.h"
#include "jobmgr.h"
#include "jobmgr/engine.h"
#include "jobmgr/host.h"

/* A document is at most this many bytes of JSON. */
#define JM_ENG_DOC_MAX (1024 * 1024)
/* How long a catalog statement waits for a lock held by another connection
 * (the snapshot readers, or another process) before JM_EBUSY. */
#define JM_ENG_BUSY_TIMEOUT_MS 5000
/* Distinct statement texts the catalog connection keeps prepared. */
#define JM_ENG_STMT_CACHE 128
/* Room for "<dir>/seg-<id>.jms.tmp" and friends. */
#define JM_ENG_PATH_MAX 4096
/* Rows handed to export_table's callback at a time. */
#define JM_ENG_EXPORT_BATCH 1000
/* The version of export_table's metadata JSON that import_begin accepts. */
#define JM_ENG_META_FORMAT 1

/* Milliseconds in a second: the engine's times are ms, TTLs seconds. */
#define JM_ENG_MS_PER_SEC 1000

/* Permissions of what the engine creates (before the umask). */
#define JM_ENG_DIR_MODE 0755
#define JM_ENG_FILE_MODE 0644

#define JM_ENG_CATALOG "catalog.db"
#define JM_ENG_LOCKFILE "engine.lock"
#define JM_ENG_SEG_PREFIX "seg-"
#define JM_ENG_SEG_SUFFIX ".jms"
#define JM_ENG_TMP_SUFFIX ".tmp"

typedef struct jm__eng_stmt_slot {
    const char *sql; /* the cache key: the address of a static statement text */
    sqlite3_stmt *st;
} jm__eng_stmt_slot;

struct jm_engine {
    pthread_mutex_t mu;
    sqlite3 *db;
    char *dir;
    char *catalog_path;
    int lock_fd; /* holds the engine's flock: one open engine per directory */
    jm__eng_stmt_slot stmts[JM_ENG_STMT_CACHE];
    size_t nstmts;
    jm_host host;
};

/* A growable list of segment ids (files to unlink later, segments to read). */
typedef struct jm__eng_ids {
    int64_t *v;
    size_t n, cap;
} jm__eng_ids;

int jm__eng_ids_push(jm__eng_ids *l, int64_t id);
void jm__eng_ids_free(jm__eng_ids *l);

/* What a table is, read from the catalog. */
typedef struct jm__eng_table {
    int64_t id;
    jm_table_type type;
    int64_t ttl_seconds;
    char owner[JM_HOST_NAME_MAX + 1]; /* "" = none */
} jm__eng_table;

/* --- engine.c: handle, catalog, errors, time ---------------------------- */

void jm__eng_lock(jm_engine *e);
void jm__eng_unlock(jm_engine *e);

/* Maps a SQLite result code to a JM_ code (busy/locked -> JM_EBUSY, I/O ->
 * JM_EIO, ...) and records "what: sqlite message". */
int jm__eng_sqlite_err(sqlite3 *db, int rc, const char *what);
/* The cached statement for `sql` (a static string: its address is the
 * key), prepared on first use, reset and with its bindings cleared. */
int jm__eng_stmt(jm_engine *e, const char *sql, sqlite3_stmt **out);
/* Steps a statement expected to finish without rows; resets it. */
int jm__eng_exec(jm_engine *e, sqlite3_stmt *st, const char *what);
int jm__eng_begin(jm_engine *e);
int jm__eng_commit(jm_engine *e);
void jm__eng_rollback(jm_engine *e);

/* Resolves a caller's time: 0 is now, negative is JM_EINVAL. */
int jm__eng_time(const char *what, int64_t t, int64_t *out);
int64_t jm__eng_now_ms(void);
/* JM_EJSON unless doc[0..len) is one JSON value; JM_ETOOBIG over the cap. */
int jm__eng_check_doc(const char *doc, size_t len);

/* Looks a table up (ns and table already checked). JM_ENOTFOUND. */
int jm__eng_table_locked(jm_engine *e, const char *ns, const char *table, jm__eng_table *out);
/* Checks both names and looks the table up, all in one. */
int jm__eng_find_table_locked(jm_engine *e, const char *ns, const char *table,
                              jm__eng_table *out);

/* --- engine_schema.c ------------------------------------------------------ */

int jm__eng_schema(jm_engine *e);

/* --- engine_files.c: segment files on disk ------------------------------- */

/* "<dir>/seg-<id>.jms", with ".tmp" appended if `tmp`. */
int jm__eng_seg_path(const jm_engine *e, int64_t id, int tmp, char *buf, size_t len);
/* Writes `buf` as segment `id`: temporary name, fsync, rename, fsync of the
 * directory. On failure nothing is left under either name. */
int jm__eng_write_file(jm_engine *e, int64_t id, const uint8_t *buf, size_t len);
/* Reads a whole file descriptor's content (jm__malloc'd). */
int jm__eng_read_fd(int fd, const char *path, uint8_t **out, size_t *len);
/* Reads, verifies and decodes segment `id`, which must belong to `table_id`. */
int jm__eng_load_segment(jm_engine *e, int64_t id, int64_t table_id, jm__segment **out);
/* Decodes a file's bytes (taking ownership of `buf`) and checks the table. */
int jm__eng_adopt_segment(uint8_t *buf, size_t len, const char *path, int64_t table_id,
                          jm__segment **out);
/* Unlinks the files of segments whose removal is committed. Best effort: a
 * file left behind is an orphan, collected at the next open. */
void jm__eng_unlink_segments(jm_engine *e, const jm__eng_ids *ids);
/* Removes temporary files and segment files the catalog does not know. */
int jm__eng_collect_orphans(jm_engine *e);

/* --- engine_compact.c: writing and rewriting segments --------------------- */

/* Inside a transaction: records a new segment of `table_id` holding `n`
 * rows already encoded in buf[0..len) (crc given), writing its file.
 * `written` gets the id so a failed transaction can unlink it. */
int jm__eng_add_segment_locked(jm_engine *e, int64_t table_id, const uint8_t *buf, size_t len,
                               int64_t rows, jm__eng_ids *written, int64_t *id_out);
/* Inside a transaction: replaces segments `ids` of `table_id` by one new
 * segment holding the rows of theirs that the catalog still lists (with the
 * catalog's created_at/deleted_at), or by nothing if none remain. New files
 * go to `written`, old ones to `obsolete` (unlink after commit). */
int jm__eng_rewrite_locked(jm_engine *e, int64_t table_id, const int64_t *ids, size_t n,
                           jm__eng_ids *written, jm__eng_ids *obsolete, jm_host_segment *merged);

/* --- engine_tables.c ------------------------------------------------------- */

/* Checks a table's definition: a known type, a TTL > 0 for Stream tables
 * and none for others, a valid owner name (NULL: no owner). */
int jm__eng_check_definition(jm_table_type type, int64_t ttl, const char *owner);
/* Inside a transaction: deletes a table and everything on it; its segment
 * ids go to `obsolete`. */
int jm__eng_drop_locked(jm_engine *e, int64_t table_id, jm__eng_ids *obsolete,
                        jm_host_drop *out);

/* --- engine_snapshot.c: consistent readers on their own connection ------- */

typedef struct jm__eng_snap jm__eng_snap;
/* Opens a read snapshot of a table, checking both names. Takes the engine
 * mutex only while opening. *meta gets the table as the snapshot sees it. */
int jm__eng_snap_open(jm_engine *e, const char *ns, const char *table, jm__eng_snap **out,
                      jm__eng_table *meta);
/* The ACL of the snapshot's table, for export: calls `each` per user. */
int jm__eng_snap_acl(jm__eng_snap *s, int (*each)(void *arg, const char *user), void *arg);
/* Row count of the snapshot's table (soft-deleted ones included). */
int jm__eng_snap_count(jm__eng_snap *s, int64_t *out);
/* The next row in key order: 1 and *row (valid until the next call), 0 at
 * the end, or a negative error. */
int jm__eng_snap_next(jm__eng_snap *s, jm_host_row *row);
void jm__eng_snap_close(jm__eng_snap *s);

/* --- host operations (engine_*.c), wired by engine_host.c --------------- */

int jm__eng_host_table_info(void *self, const char *ns, const char *table, jm_host_table *out);
int jm__eng_host_flush(void *self, const char *ns, const char *table, jm_host_flush *out);
int jm__eng_host_purge(void *self, const char *ns, const char *table, jm_purge_kind kind,
                       int64_t cutoff_ms, int64_t after_key, int64_t limit, jm_host_purge *out);
int jm__eng_host_list_segments(void *self, const char *ns, const char *table,
                               jm_host_segment **out, size_t *n);
void jm__eng_host_free_segments(void *self, jm_host_segment *segments);
int jm__eng_host_merge_segments(void *self, const char *ns, const char *table,
                                const int64_t *ids, size_t n, jm_host_segment *merged);
int jm__eng_host_drop_table(void *self, const char *ns, const char *table, jm_host_drop *out);
int jm__eng_host_user_info(void *self, const char *user_id, jm_host_user *out);
int jm__eng_host_user_tables(void *self, const char *user_id,
                             int (*each)(void *arg, const char *ns, const char *table,
                                         jm_table_type type),
                             void *arg);
int jm__eng_host_remove_user_acl(void *self, const char *user_id, int64_t *removed);
int jm__eng_host_remove_user_live_queries(void *self, const char *user_id, int64_t *removed);
int jm__eng_host_delete_user(void *self, const char *user_id);
int jm__eng_host_export_table(void *self, const char *ns, const char *table,
                              const jm_host_export_cb *cb);
int jm__eng_host_import_begin(void *self, const char *ns, const char *table,
                              const char *meta_json, int overwrite, void **import);
int jm__eng_host_import_rows(void *self, void *import, const jm_host_row *rows, size_t n);
int jm__eng_host_import_commit(void *self, void *import);
void jm__eng_host_import_abort(void *self, void *import);
int jm__eng_host_list_tables(void *self,
                             int (*each)(void *arg, const char *ns, const char *table,
                                         jm_table_type type),
                             void *arg);
int jm__eng_host_table_figures(void *self, const char *ns, const char *table, int64_t now_ms,
                               int64_t small_bytes, int64_t deleted_before,
                               jm_host_figures *out);

void jm__eng_host_init(jm_engine *e);

#endif
