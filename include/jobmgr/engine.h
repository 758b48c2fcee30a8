/**
 * @file jobmgr/engine.h
 * @brief The reference table engine.
 *
 * A small but real engine on SQLite that implements the host interface
 * (jobmgr/host.h), so the built-in executors, the examples and the tests do
 * real work. It keeps, in one directory:
 *  - catalog.db: namespaces, tables (user, shared or stream with a TTL),
 *    users, table owners, ACL entries on shared tables, live queries, the
 *    index of every row (key, created_at, deleted_at, where it lives) and
 *    the write buffer;
 *  - immutable, checksummed segment files that flush and compact write.
 *
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

/** An open engine directory; opened with jm_engine_open(), closed with
 *  jm_engine_close(). */
typedef struct jm_engine jm_engine;

/** The version of jm_table_opts this header describes. */
#define JM_TABLE_OPTS_VERSION 1u

/** Options of jm_engine_create_table(); start from JM_TABLE_OPTS_INIT. */
typedef struct jm_table_opts {
    unsigned int version;      /**< JM_TABLE_OPTS_VERSION */
    const char *owner_user_id; /**< NULL: no owner; else an existing user */
    int64_t ttl_seconds;       /**< stream tables: row lifetime (> 0 required) */
} jm_table_opts;

/** Initialiser of jm_table_opts: no owner, no TTL. */
#define JM_TABLE_OPTS_INIT { JM_TABLE_OPTS_VERSION, NULL, 0 }

/**
 * @brief Opens (creating) the engine in directory @p dir (created if missing).
 *
 * The directory holds catalog.db plus segment files. Removes files a crash
 * left behind. One engine at a time may have a directory open (a lock file
 * guards it).
 *
 * @param dir  the engine's directory
 * @param out  receives the engine, the caller's: close it with jm_engine_close()
 * @return JM_OK, or JM_EINVAL, JM_EBUSY (the directory is open elsewhere),
 *         JM_EIO, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_engine_open(const char *dir, jm_engine **out);
/**
 * @brief Closes the engine. NULL is fine.
 *
 * The host returned by jm_engine_host() dies with it.
 * @param e  the engine, or NULL
 */
JM_EXTERN void jm_engine_close(jm_engine *e);
/**
 * @brief The engine as a host for cfg.host (borrowed).
 * @param e  the engine
 * @return the engine's host table, valid until jm_engine_close().
 */
JM_EXTERN const jm_host *jm_engine_host(jm_engine *e);

/**
 * @brief Creates a namespace.
 * @param e   the engine
 * @param ns  the namespace's name
 * @return JM_OK, JM_ECONFLICT if it exists, JM_EINVAL (bad name), JM_EDB.
 */
JM_EXTERN int jm_engine_create_namespace(jm_engine *e, const char *ns);
/**
 * @brief Creates a table in namespace @p ns.
 *
 * @param e      the engine
 * @param ns     an existing namespace
 * @param table  the new table's name
 * @param type   user, shared or stream
 * @param o      options; may be NULL (no owner; stream tables then need a
 *               TTL: JM_EINVAL)
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND (namespace or owner),
 *         JM_ECONFLICT (exists), JM_EDB.
 */
JM_EXTERN int jm_engine_create_table(jm_engine *e, const char *ns, const char *table,
                                     jm_table_type type, const jm_table_opts *o);
/**
 * @brief Inserts @p json_doc (a JSON value, ≤ 1 MiB) into the table's buffer.
 *
 * @param e              the engine
 * @param ns             the table's namespace
 * @param table          the table
 * @param json_doc       the row's document
 * @param created_at_ms  the row's creation time; 0: now
 * @param key_out        may be NULL; gets the row's key, increasing within a
 *                       table
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND (no such table), JM_EJSON (not
 *         JSON), JM_ETOOBIG, JM_EDB.
 */
JM_EXTERN int jm_engine_insert(jm_engine *e, const char *ns, const char *table,
                               const char *json_doc, int64_t created_at_ms, int64_t *key_out);
/**
 * @brief Marks a row deleted (soft delete).
 * @param e              the engine
 * @param ns             the table's namespace
 * @param table          the table
 * @param key            the row's key
 * @param deleted_at_ms  when it was deleted; 0: now
 * @return JM_OK, JM_ENOTFOUND, JM_ESTATE if already deleted, JM_EINVAL, JM_EDB.
 */
JM_EXTERN int jm_engine_soft_delete(jm_engine *e, const char *ns, const char *table,
                                    int64_t key, int64_t deleted_at_ms);
/**
 * @brief A row's document, from buffer or segment (checksum verified).
 *
 * Soft-deleted rows are found too.
 * @param e         the engine
 * @param ns        the table's namespace
 * @param table     the table
 * @param key       the row's key
 * @param json_out  receives the document, the caller's: free it with jm_free()
 * @return JM_OK, JM_ENOTFOUND, or JM_EINVAL, JM_EIO (a damaged segment),
 *         JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_engine_get(jm_engine *e, const char *ns, const char *table, int64_t key,
                            char **json_out);
/**
 * @brief Counts a table's rows, buffer and segments.
 * @param e                the engine
 * @param ns               the table's namespace
 * @param table            the table
 * @param include_deleted  non-zero: count soft-deleted rows too
 * @param out              receives the count
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND (no such table), JM_EDB.
 */
JM_EXTERN int jm_engine_count(jm_engine *e, const char *ns, const char *table,
                              int include_deleted, int64_t *out);
/**
 * @brief Counts a table's segment files.
 * @param e      the engine
 * @param ns     the table's namespace
 * @param table  the table
 * @param out    receives the count
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND (no such table), JM_EDB.
 */
JM_EXTERN int jm_engine_segment_count(jm_engine *e, const char *ns, const char *table,
                                      int64_t *out);
/**
 * @brief Whether a table exists.
 * @param e      the engine
 * @param ns     the table's namespace
 * @param table  the table
 * @param out    receives 1 if the table exists, else 0
 * @return JM_OK (also when it does not exist), or JM_EINVAL, JM_EDB.
 */
JM_EXTERN int jm_engine_table_exists(jm_engine *e, const char *ns, const char *table, int *out);
/**
 * @brief Calls @p each for every row in key order.
 *
 * Rows come from buffer and segments; deleted ones if include_deleted.
 * Stops at a non-zero return, which is returned.
 * @param e                the engine
 * @param ns               the table's namespace
 * @param table            the table
 * @param include_deleted  non-zero: soft-deleted rows too
 * @param each             called with @p arg and each row (valid during the call)
 * @param arg              handed to @p each
 * @return JM_OK, the first non-zero return of @p each, or JM_EINVAL,
 *         JM_ENOTFOUND (no such table), JM_EIO, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_engine_scan(jm_engine *e, const char *ns, const char *table,
                             int include_deleted,
                             int (*each)(void *arg, const jm_host_row *row), void *arg);
/**
 * @brief Drops a table at once (what a cleanup job does, without the job).
 * @param e      the engine
 * @param ns     the table's namespace
 * @param table  the table
 * @return JM_OK, JM_ENOTFOUND if it is already gone, or JM_EINVAL, JM_EIO,
 *         JM_EDB.
 */
JM_EXTERN int jm_engine_drop_table(jm_engine *e, const char *ns, const char *table);

/**
 * @brief Creates a user.
 * @param e         the engine
 * @param user_id   the user's id
 * @param username  the user's name
 * @return JM_OK, JM_ECONFLICT (the user exists), JM_EINVAL, JM_EDB.
 */
JM_EXTERN int jm_engine_create_user(jm_engine *e, const char *user_id, const char *username);
/**
 * @brief Soft-deletes a user.
 * @param e        the engine
 * @param user_id  the user's id
 * @return JM_OK, JM_ENOTFOUND, JM_ESTATE if already soft-deleted, JM_EINVAL,
 *         JM_EDB.
 */
JM_EXTERN int jm_engine_soft_delete_user(jm_engine *e, const char *user_id);
/**
 * @brief Whether a user exists.
 * @param e        the engine
 * @param user_id  the user's id
 * @param out      receives 1 if the user exists (soft-deleted or not), else 0
 * @return JM_OK (also when it does not exist), or JM_EINVAL, JM_EDB.
 */
JM_EXTERN int jm_engine_user_exists(jm_engine *e, const char *user_id, int *out);
/**
 * @brief Gives a user access to a shared table.
 * @param e        the engine
 * @param ns       the table's namespace
 * @param table    the table
 * @param user_id  an existing user
 * @return JM_OK, JM_EINVAL for other table types (or bad names),
 *         JM_ENOTFOUND (no such table or user), JM_EDB.
 */
JM_EXTERN int jm_engine_grant(jm_engine *e, const char *ns, const char *table,
                              const char *user_id);
/**
 * @brief Records a live query of a user on a table.
 * @param e        the engine
 * @param user_id  an existing user
 * @param ns       the table's namespace
 * @param table    the table
 * @param id_out   may be NULL; gets the live query's id
 * @return JM_OK, JM_ENOTFOUND (no such table or user), JM_EINVAL, JM_EDB.
 */
JM_EXTERN int jm_engine_add_live_query(jm_engine *e, const char *user_id, const char *ns,
                                       const char *table, int64_t *id_out);
/**
 * @brief Counts a user's ACL entries.
 * @param e        the engine
 * @param user_id  the user's id
 * @param out      receives the count
 * @return JM_OK, JM_EINVAL, JM_EDB.
 */
JM_EXTERN int jm_engine_count_acl(jm_engine *e, const char *user_id, int64_t *out);
/**
 * @brief Counts a user's live queries.
 * @param e        the engine
 * @param user_id  the user's id
 * @param out      receives the count
 * @return JM_OK, JM_EINVAL, JM_EDB.
 */
JM_EXTERN int jm_engine_count_live_queries(jm_engine *e, const char *user_id, int64_t *out);

#ifdef __cplusplus
}
#endif

#endif /* JOBMGR_ENGINE_H */
