/*
 * jobmgr/engine.h: the reference table engine.
 *
 * A small but real engine on SQLite that implements the host interface
 * (jobmgr/host.h), so the built-in executors, the examples and the tests do
 * real work. It keeps, in one directory:
 *  - catalog.db: namespaces, tables (user, shared or stream with a TTL),
 *    users, table owners, ACL entries on shared tables, live queries, the
 *    index of every row (key, created_at, deleted_at, where it lives) and
 *    the write buffer;
 *  - immutable, checksummed segment files that flush and compact write.
 * Inserts go to the buffer; flush moves them into a new segment. Reads see
 * buffer and segments together. A segment file is written under a temporary
 * name, fsynced, renamed, and recorded in the catalog in the same
 * transaction that moves its rows, so a crash neither loses nor duplicates a
 * row; files a crash left behind are removed when the engine opens.
 *
 * Names of namespaces, tables and users are 1..JM_HOST_NAME_MAX bytes of
 * [A-Za-z0-9_.-] (not "." or ".."); anything else is JM_EINVAL. Times are
 * milliseconds since the Unix epoch; 0 means "now" by the engine's clock.
 * An engine handle is thread-safe. Errors follow jobmgr.h: JM_OK or a
 * negative code, details in jm_last_error().
 */
#ifndef JOBMGR_ENGINE_H
#define JOBMGR_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "jobmgr.h"
#include "jobmgr/host.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jm_engine jm_engine;

#define JM_TABLE_OPTS_VERSION 1u

typedef struct jm_table_opts {
    unsigned int version;      /* JM_TABLE_OPTS_VERSION */
    const char *owner_user_id; /* NULL: no owner; else an existing user */
    int64_t ttl_seconds;       /* stream tables: row lifetime (> 0 required) */
} jm_table_opts;

#define JM_TABLE_OPTS_INIT { JM_TABLE_OPTS_VERSION, NULL, 0 }

/* Opens (creating) the engine in directory `dir` (created if missing):
 * catalog.db plus segment files. Removes files a crash left behind.
 * One engine at a time may have a directory open (a lock file guards it).
 * Errors: JM_EINVAL, JM_EBUSY (the directory is open elsewhere), JM_EIO,
 * JM_EDB, JM_ENOMEM. */
JM_EXTERN int jm_engine_open(const char *dir, jm_engine **out);
/* NULL is fine. The host returned by jm_engine_host() dies with it. */
JM_EXTERN void jm_engine_close(jm_engine *e);
/* The engine as a host for cfg.host (borrowed). */
JM_EXTERN const jm_host *jm_engine_host(jm_engine *e);

/* JM_ECONFLICT if it exists. */
JM_EXTERN int jm_engine_create_namespace(jm_engine *e, const char *ns);
/* `o` may be NULL (no owner; stream tables then need a TTL: JM_EINVAL).
 * Errors: JM_ENOTFOUND (namespace or owner), JM_ECONFLICT (exists). */
JM_EXTERN int jm_engine_create_table(jm_engine *e, const char *ns, const char *table,
                                     jm_table_type type, const jm_table_opts *o);
/* Inserts `json_doc` (a JSON value, ≤ 1 MiB) into the table's buffer; key_out
 * (may be NULL) gets its key, increasing within a table. Errors: JM_EINVAL,
 * JM_ENOTFOUND (no such table), JM_EJSON (not JSON), JM_ETOOBIG. */
JM_EXTERN int jm_engine_insert(jm_engine *e, const char *ns, const char *table,
                               const char *json_doc, int64_t created_at_ms, int64_t *key_out);
/* Marks a row deleted (soft delete). JM_ENOTFOUND, JM_ESTATE if already. */
JM_EXTERN int jm_engine_soft_delete(jm_engine *e, const char *ns, const char *table,
                                    int64_t key, int64_t deleted_at_ms);
/* A row's document, from buffer or segment (checksum verified); free with
 * jm_free. Soft-deleted rows are found too. JM_ENOTFOUND. */
JM_EXTERN int jm_engine_get(jm_engine *e, const char *ns, const char *table, int64_t key,
                            char **json_out);
JM_EXTERN int jm_engine_count(jm_engine *e, const char *ns, const char *table,
                              int include_deleted, int64_t *out);
JM_EXTERN int jm_engine_segment_count(jm_engine *e, const char *ns, const char *table,
                                      int64_t *out);
JM_EXTERN int jm_engine_table_exists(jm_engine *e, const char *ns, const char *table, int *out);
/* Calls `each` for every row in key order (buffer and segments; deleted ones
 * if include_deleted), stopping at a non-zero return, which is returned. */
JM_EXTERN int jm_engine_scan(jm_engine *e, const char *ns, const char *table,
                             int include_deleted,
                             int (*each)(void *arg, const jm_host_row *row), void *arg);
/* Drops a table at once (what a cleanup job does, without the job). */
JM_EXTERN int jm_engine_drop_table(jm_engine *e, const char *ns, const char *table);

JM_EXTERN int jm_engine_create_user(jm_engine *e, const char *user_id, const char *username);
/* JM_ENOTFOUND, JM_ESTATE if already soft-deleted. */
JM_EXTERN int jm_engine_soft_delete_user(jm_engine *e, const char *user_id);
/* *out: 1 if the user exists (soft-deleted or not), else 0. */
JM_EXTERN int jm_engine_user_exists(jm_engine *e, const char *user_id, int *out);
/* Gives a user access to a shared table (JM_EINVAL for other types). */
JM_EXTERN int jm_engine_grant(jm_engine *e, const char *ns, const char *table,
                              const char *user_id);
JM_EXTERN int jm_engine_add_live_query(jm_engine *e, const char *user_id, const char *ns,
                                       const char *table, int64_t *id_out);
JM_EXTERN int jm_engine_count_acl(jm_engine *e, const char *user_id, int64_t *out);
JM_EXTERN int jm_engine_count_live_queries(jm_engine *e, const char *user_id, int64_t *out);

#ifdef __cplusplus
}
#endif

#endif /* JOBMGR_ENGINE_H */
