/*
 * fake_host: an in-memory implementation of the jm_host vtable
 * (include/jobmgr/host.h) for executor tests. Not part of the library.
 *
 * It keeps namespaces-and-tables, rows (a write buffer and segments), users,
 * ACL entries and live queries in memory, and follows the host contract:
 * every operation is atomic and thread-safe (one mutex), names are checked,
 * failures set jm_last_error() through jm_host_error().
 *
 * On top of the data it offers what a test needs to reach an executor's
 * failure paths:
 *  - fault injection per operation: fh_fail(h, FH_PURGE, JM_EBUSY, 2) makes
 *    the next two purge() calls fail with JM_EBUSY, changing nothing;
 *    fh_fail_after() lets some calls succeed first;
 *  - call counters per operation (failed calls included);
 *  - a hook called at the start of every operation (for example to cancel
 *    the running job from "inside" the host);
 *  - the arguments of the last purge() and merge_segments() calls.
 *
 * Sizes: a row inserted with fh_insert() weighs strlen(doc) +
 * FH_ROW_OVERHEAD bytes; a segment weighs FH_SEGMENT_OVERHEAD plus its
 * rows. A merge keeps soft-deleted rows (they still exist). Segments are
 * listed oldest (lowest id) first. A purge that empties a segment removes
 * it. Keys start at 1 and increase per table.
 *
 * Typical use:
 *     fh_host *fh = fh_new();
 *     fh_add_table(fh, "ns", "t", JM_TABLE_USER, 0, NULL);
 *     fh_insert(fh, "ns", "t", "{\"a\":1}", created_at, NULL);
 *     cfg.host = fh_jm_host(fh);
 *     ...
 *     fh_fail(fh, FH_FLUSH, JM_EBUSY, 1);
 *     ... run the job, then: assert_int_equal(fh_calls(fh, FH_FLUSH), 1);
 *     fh_free(fh);
 *
 * Functions returning int give JM_OK or a negative JM_E* code
 * (JM_ENOTFOUND for an unknown table or user, JM_EINVAL for bad
 * arguments); test setup calls are never affected by fault injection or
 * counted.
 */
#ifndef JM_FAKE_HOST_H
#define JM_FAKE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "jobmgr.h"
#include "jobmgr/host.h"

/* Bytes a row weighs beyond its document (key and timestamps). */
#define FH_ROW_OVERHEAD 24
/* Bytes a segment weighs beyond its rows (its header), so merging segments
 * saves space as a real engine's would. */
#define FH_SEGMENT_OVERHEAD 64
/* Rows per export_table() rows callback. */
#define FH_EXPORT_BATCH 100

/* The vtable's operations, for fault injection and counters. */
typedef enum {
    FH_TABLE_INFO,
    FH_FLUSH,
    FH_PURGE,
    FH_LIST_SEGMENTS,
    FH_MERGE_SEGMENTS,
    FH_DROP_TABLE,
    FH_USER_INFO,
    FH_USER_TABLES,
    FH_REMOVE_USER_ACL,
    FH_REMOVE_USER_LIVE_QUERIES,
    FH_DELETE_USER,
    FH_EXPORT_TABLE,
    FH_IMPORT_BEGIN,
    FH_IMPORT_ROWS,
    FH_IMPORT_COMMIT,
    FH_IMPORT_ABORT, /* counted and hooked; cannot fail (it returns void) */
    FH_OP_COUNT
} fh_op;

typedef struct fh_host fh_host;

/* "purge", "merge_segments", ...: the vtable member's name. */
const char *fh_op_name(fh_op op);

/* A new, empty host (NULL if out of memory); free with fh_free(). */
fh_host *fh_new(void);
/* Frees everything, including imports still open. NULL is fine. */
void fh_free(fh_host *h);
/* The vtable to put in cfg.host; borrowed, lives as long as `h`. */
const jm_host *fh_jm_host(fh_host *h);

/* ---- Data setup and inspection (not counted, never injected) ---- */

/* Creates table ns.table (the namespace needs no separate creation).
 * `owner_user_id` may be NULL. JM_ECONFLICT if it exists. */
int fh_add_table(fh_host *h, const char *ns, const char *table, jm_table_type type,
                 int64_t ttl_seconds, const char *owner_user_id);
/* Inserts a row into the table's buffer; *key_out (may be NULL) gets its
 * key. */
int fh_insert(fh_host *h, const char *ns, const char *table, const char *doc,
              int64_t created_at, int64_t *key_out);
/* Marks a row deleted at `deleted_at` (> 0). JM_ESTATE if already. */
int fh_soft_delete(fh_host *h, const char *ns, const char *table, int64_t key,
                   int64_t deleted_at);
/* Adds a segment directly (as if flushed long ago): `rows` (≥ 1) rows of
 * document "{}" created at `created_at`, the segment weighing exactly
 * `bytes` (≥ rows + FH_SEGMENT_OVERHEAD). *id_out (may be NULL) gets the
 * segment id. */
int fh_add_segment(fh_host *h, const char *ns, const char *table, int64_t rows, int64_t bytes,
                   int64_t created_at, int64_t *id_out);

/* 1 if the table exists, else 0. */
int fh_table_exists(fh_host *h, const char *ns, const char *table);
/* Rows of the table (buffer and segments; soft-deleted ones only if
 * include_deleted), or -1 if there is no such table. */
int64_t fh_row_count(fh_host *h, const char *ns, const char *table, int include_deleted);
/* Rows still in the buffer, or -1. */
int64_t fh_buffered_rows(fh_host *h, const char *ns, const char *table);
/* 1 if the row with `key` exists (deleted or not), else 0. */
int fh_row_exists(fh_host *h, const char *ns, const char *table, int64_t key);
/* Copies the row's document into buf (NUL-terminated, truncated to len).
 * JM_ENOTFOUND if there is no such row. */
int fh_row_doc(fh_host *h, const char *ns, const char *table, int64_t key, char *buf,
               size_t len);
/* Number of segments, or -1. With `out`, copies up to `max` of them, oldest
 * first. */
int64_t fh_segments(fh_host *h, const char *ns, const char *table, jm_host_segment *out,
                    size_t max);

/* Users, ACL entries and live queries. */
int fh_add_user(fh_host *h, const char *user_id, const char *username);
/* JM_ESTATE if already soft-deleted. */
int fh_soft_delete_user(fh_host *h, const char *user_id, int64_t deleted_at);
/* 1 if the user exists (soft-deleted or not), else 0. */
int fh_user_exists(fh_host *h, const char *user_id);
int fh_add_acl(fh_host *h, const char *user_id, const char *ns, const char *table);
int fh_add_live_query(fh_host *h, const char *user_id, const char *ns, const char *table);
/* Entries for `user_id`, or for everyone when user_id is NULL. */
int64_t fh_acl_count(fh_host *h, const char *user_id);
int64_t fh_live_query_count(fh_host *h, const char *user_id);

/* ---- Fault injection, counters, hook ---- */

/* The next `times` calls of `op` fail with `code` (a negative JM_E* code)
 * and change nothing (a failed import_commit still ends its import, as the
 * contract says; FH_IMPORT_ABORT cannot fail). Replaces any fault set for
 * `op`; times 0 clears it. */
void fh_fail(fh_host *h, fh_op op, int code, int times);
/* As fh_fail(), but the first `skip` calls succeed normally. */
void fh_fail_after(fh_host *h, fh_op op, int skip, int code, int times);
/* Clears every injected fault. */
void fh_clear_faults(fh_host *h);

/* Calls of `op` so far (succeeded or failed); reset by fh_reset_calls(). */
int fh_calls(fh_host *h, fh_op op);
void fh_reset_calls(fh_host *h);

/* `fn(arg, op)` runs at the start of every operation, before fault
 * injection and outside the host's lock (so it may call jm_cancel(), or
 * the fh_* setup functions). NULL removes it. */
typedef void (*fh_hook_fn)(void *arg, fh_op op);
void fh_set_hook(fh_host *h, fh_hook_fn fn, void *arg);

/* The arguments of the last purge() call (zeros before the first). */
typedef struct fh_purge_args {
    jm_purge_kind kind;
    int64_t cutoff_ms;
    int64_t after_key;
    int64_t limit;
} fh_purge_args;
fh_purge_args fh_last_purge(fh_host *h);

/* The segment ids of the last merge_segments() call: copies up to `max`
 * into ids (may be NULL) and returns how many there were. */
size_t fh_last_merge(fh_host *h, int64_t *ids, size_t max);

#endif
