/**
 * @file jobmgr/host.h
 * @brief The storage operations the built-in executors need from the engine
 * that embeds jobmgr.
 *
 * The built-in executors (flush, cleanup, retention, stream eviction, user
 * cleanup, compact, backup, restore) hold the policy: parameter checks,
 * cut-offs, batching, continuation, cancellation, metrics and decisions.
 * Everything that touches the engine's data goes through this vtable, which
 * a host fills in for its own storage and hands to jobmgr as cfg.host. The
 * reference engine (jobmgr/engine.h) is one implementation.
 *
 * @par Contract for every operation
 *
 *  - It returns JM_OK or a negative JM_E* code, and may describe a failure
 *    with jm_host_error(), which sets jm_last_error() for the executor.
 *  - JM_EBUSY means "transient, try again later" (a lock held elsewhere, a
 *    busy device); executors turn it into a retry. JM_ENOTFOUND means the
 *    named object does not exist. Anything else fails the job.
 *  - An operation is atomic: it happens entirely or not at all, also when
 *    the process dies in the middle. Executors rely on this to resume from
 *    a checkpoint after a crash.
 *  - Operations are called from worker threads, several at once: the host
 *    serialises what needs it. That includes operations on one table: by
 *    default jobmgr runs a flush beside a compaction of the same table
 *    (docs/conflicts.md), so flush() may come while the compaction sits
 *    between list_segments() and merge_segments(). merge_segments() merges
 *    only the segments it names, and leaves a segment flushed meanwhile
 *    alone.
 *  - Strings passed in are borrowed for the duration of the call; rows and
 *    strings passed to callbacks are valid only during the callback.
 *  - Names (namespaces, tables, users) arrive as the job's parameters gave
 *    them, already checked by the executor to be 1..JM_HOST_NAME_MAX bytes of
 *    [A-Za-z0-9_.-] (user ids too); a host must still never splice them into
 *    SQL or paths unchecked.
 *
 * @par Versions
 * New operations are added at the end, with JM_HOST_VERSION raised; an
 * executor checks `version` before it calls an operation newer than 1.
 */
#ifndef JOBMGR_HOST_H
#define JOBMGR_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "jobmgr.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of jm_host this header describes. Version 2 added
 *  list_tables() and table_figures(), which policies use. */
#define JM_HOST_VERSION 2u
/** The longest name of a namespace, table or user, in bytes. */
#define JM_HOST_NAME_MAX 128

/** A table's type. */
typedef enum {
    JM_TABLE_USER,   /**< "User": a table owned by one user */
    JM_TABLE_SHARED, /**< "Shared": a table with ACL entries */
    JM_TABLE_STREAM  /**< "Stream": a table whose rows expire after a TTL */
} jm_table_type;

/**
 * @brief The table type's name as job parameters spell it.
 * @param t  a table type
 * @return "User", "Shared", "Stream"; "unknown" for anything else.
 */
JM_EXTERN const char *jm_table_type_name(jm_table_type t);
/**
 * @brief The reverse of jm_table_type_name(), case-sensitive.
 * @param name  "User", "Shared" or "Stream"
 * @param out   receives the type
 * @return JM_OK, or JM_EINVAL for anything else.
 */
JM_EXTERN int jm_table_type_parse(const char *name, jm_table_type *out);

/**
 * @brief Checks a namespace, table or user name against the rule hosts and
 * executors share: 1..JM_HOST_NAME_MAX bytes of `[A-Za-z0-9_.-]`, and
 * neither "." nor "..", so a name is safe in a file path.
 * @param what  what the name is, for the message ("table name")
 * @param name  the name to check; NULL is refused
 * @return JM_OK, or JM_EINVAL with the reason in jm_last_error().
 */
JM_EXTERN int jm_host_name_check(const char *what, const char *name);

/**
 * @brief Records @p fmt as the detail of a failure (jm_last_error()) and
 * returns @p code, so a host operation can
 * `return jm_host_error(JM_EBUSY, ...)`.
 * @param code  the JM_E* code to return
 * @param fmt   a printf format for the detail, followed by its arguments
 * @return @p code.
 */
JM_EXTERN int jm_host_error(int code, const char *fmt, ...) JM_PRINTF(2, 3);

/** What table_info() reports about a table. */
typedef struct jm_host_table {
    jm_table_type type;      /**< the table's type */
    int64_t ttl_seconds;     /**< stream tables: row lifetime; 0 = none */
    char owner_user_id[JM_HOST_NAME_MAX + 1]; /**< "" = none */
    int64_t buffered_rows;   /**< rows in the write buffer */
    int64_t segments;        /**< immutable segment files */
    int64_t segment_bytes;   /**< their total size */
} jm_host_table;

/**
 * @brief One row as it is stored.
 *
 * `doc` is a JSON document of `doc_len` bytes (not NUL-terminated).
 * deleted_at is 0 for a live row.
 *
 * Row keys are ≥ 1 and grow within a table, so 0 as an `after_key` means
 * "from the first row".
 */
typedef struct jm_host_row {
    int64_t key;        /**< the row's key, ≥ 1, growing within a table */
    int64_t created_at; /**< when the row was created (ms since the epoch) */
    int64_t deleted_at; /**< when it was soft-deleted; 0 for a live row */
    const char *doc;    /**< the JSON document, not NUL-terminated */
    size_t doc_len;     /**< the document's length in bytes */
} jm_host_row;

/** Which rows purge() removes for good. */
typedef enum {
    JM_PURGE_DELETED_BEFORE, /**< soft-deleted with deleted_at < cutoff (retention) */
    JM_PURGE_CREATED_BEFORE  /**< created_at < cutoff, deleted or not (TTL eviction) */
} jm_purge_kind;

/** What one purge() call did. */
typedef struct jm_host_purge {
    int64_t rows;            /**< rows removed */
    int64_t last_key;        /**< the highest key examined; the next call
                                  continues after it */
    int64_t files_rewritten; /**< segment files rewritten to drop the rows */
    int64_t bytes_freed;     /**< bytes freed by the rewrites */
} jm_host_purge;

/** What flush() did. */
typedef struct jm_host_flush {
    int64_t rows;  /**< rows moved from the buffer into the new segment */
    int64_t bytes; /**< size of the new segment file; 0 if none was written */
} jm_host_flush;

/** One segment file of a table. */
typedef struct jm_host_segment {
    int64_t id;    /**< the segment's id, as merge_segments() takes it */
    int64_t rows;  /**< rows in the segment */
    int64_t bytes; /**< the file's size */
} jm_host_segment;

/** What drop_table() removed. */
typedef struct jm_host_drop {
    int64_t rows;  /**< rows deleted, buffer and segments */
    int64_t files; /**< segment files deleted */
    int64_t bytes; /**< their size */
} jm_host_drop;

/** What user_info() reports about a user. */
typedef struct jm_host_user {
    char username[JM_HOST_NAME_MAX + 1]; /**< the user's name */
    int64_t deleted_at; /**< 0: a live user; else when it was soft-deleted */
} jm_host_user;

/**
 * @brief Receives a table's metadata and then its rows, batch by batch, from
 * export_table().
 *
 * Returning non-zero stops the export, which then returns that value (so an
 * executor can stop a cancelled backup).
 */
typedef struct jm_host_export_cb {
    /** Called once with the table's metadata (a JSON object). */
    int (*meta)(void *arg, const char *meta_json);
    /** Called with each batch of @p n rows, in key order. */
    int (*rows)(void *arg, const jm_host_row *rows, size_t n);
    void *arg; /**< handed to both callbacks */
} jm_host_export_cb;

/**
 * @brief A table's maintenance figures at one moment (table_figures()):
 * what policies judge a table by.
 */
typedef struct jm_host_figures {
    jm_table_type type;         /**< the table's type */
    int64_t buffered_rows;      /**< rows in the write buffer */
    int64_t oldest_buffered_at; /**< when the oldest of them was written (ms); 0: none */
    int64_t segments;           /**< segment files */
    int64_t small_segments;     /**< of those, smaller than the size asked about */
    int64_t segment_bytes;      /**< their total size */
    int64_t deleted_rows;       /**< soft-deleted rows not purged yet, deleted before
                                     the cut-off asked about (any, if none) */
    int64_t expired_rows;       /**< stream tables: rows older than the TTL at now */
    int64_t ttl_seconds;        /**< stream tables: row lifetime; 0 = none */
} jm_host_figures;

/** The host interface: see struct jm_host. */
typedef struct jm_host jm_host;

/**
 * @brief The storage operations of a host, filled in by the engine that
 * embeds jobmgr and passed as cfg.host.
 *
 * Every operation follows the contract at the top of jobmgr/host.h: it
 * returns JM_OK or a negative JM_E* code (JM_EBUSY: transient, retried),
 * is atomic also across a crash, and may be called from several worker
 * threads at once.
 */
struct jm_host {
    unsigned int version; /**< JM_HOST_VERSION */
    void *self;           /**< handed back to every operation */

    /** Describes a table. JM_ENOTFOUND if there is none. */
    int (*table_info)(void *self, const char *ns, const char *table, jm_host_table *out);

    /** Moves the table's buffered rows into one new segment, atomically: a
     * crash leaves every row either still buffered or in the segment, never
     * both or neither. Nothing to flush: JM_OK with out->rows == 0. */
    int (*flush)(void *self, const char *ns, const char *table, jm_host_flush *out);

    /** Removes for good at most `limit` (≥ 1) rows selected by `kind` and
     * `cutoff_ms` (≥ 0) with keys greater than `after_key`, in key order,
     * wherever they live
     * (rewriting segments as needed), in one atomic step. Fewer than `limit`
     * rows removed means none remain after `after_key`. */
    int (*purge)(void *self, const char *ns, const char *table, jm_purge_kind kind,
                 int64_t cutoff_ms, int64_t after_key, int64_t limit, jm_host_purge *out);

    /** Lists the table's segments, oldest first, into *out (n entries, freed
     * with free_segments). */
    int (*list_segments)(void *self, const char *ns, const char *table, jm_host_segment **out,
                         size_t *n);
    /** Frees the array list_segments() handed out. */
    void (*free_segments)(void *self, jm_host_segment *segments);

    /** Merges the named segments into one new segment, dropping rows that no
     * longer exist, atomically (a crash leaves either the old segments or the
     * new one). *merged gets the new segment (bytes 0 and rows 0 if every
     * row was gone and no segment was written). JM_ENOTFOUND if a segment is
     * not the table's. */
    int (*merge_segments)(void *self, const char *ns, const char *table, const int64_t *ids,
                          size_t n, jm_host_segment *merged);

    /** Drops the table: its rows, segment files and metadata (catalog entry,
     * ACL entries, live queries on it). JM_ENOTFOUND if it is already gone. */
    int (*drop_table)(void *self, const char *ns, const char *table, jm_host_drop *out);

    /** Looks up a user. JM_ENOTFOUND if there is none (or it was removed). */
    int (*user_info)(void *self, const char *user_id, jm_host_user *out);
    /** Calls `each` for every table the user owns; a non-zero return stops
     * and is returned. */
    int (*user_tables)(void *self, const char *user_id,
                       int (*each)(void *arg, const char *ns, const char *table,
                                   jm_table_type type),
                       void *arg);
    /** Removes the user's ACL entries; *removed gets how many. */
    int (*remove_user_acl)(void *self, const char *user_id, int64_t *removed);
    /** Removes the user's live queries; *removed gets how many. */
    int (*remove_user_live_queries)(void *self, const char *user_id, int64_t *removed);
    /** Removes a soft-deleted user for good. JM_ESTATE if the user is live. */
    int (*delete_user)(void *self, const char *user_id);

    /** A consistent snapshot of the table: calls cb->meta once with its
     * metadata (a JSON object the same host's import_begin accepts, with a
     * member "type" naming the table type as jm_table_type_name() spells
     * it: restore checks it against the backup's manifest), then
     * cb->rows with every row (soft-deleted ones included), in key order. */
    int (*export_table)(void *self, const char *ns, const char *table,
                        const jm_host_export_cb *cb);

    /** Restores a table in steps: nothing is visible until import_commit,
     * which makes the whole table appear (or replace an existing one, with
     * `overwrite`) atomically. import_begin fails with JM_ECONFLICT if the
     * table exists and !overwrite, JM_EINVAL if it cannot take `meta_json`.
     * After import_begin succeeded, exactly one of import_commit or
     * import_abort must be called; import_commit ends the import whether it
     * succeeds or fails (a failed commit leaves nothing staged), and
     * import_rows failing leaves the import open for import_abort. */
    int (*import_begin)(void *self, const char *ns, const char *table, const char *meta_json,
                        int overwrite, void **import);
    /** Stages `n` rows into the import that import_begin opened, invisibly;
     * a failure leaves the import open for import_abort. */
    int (*import_rows)(void *self, void *import, const jm_host_row *rows, size_t n);
    /** Makes the staged table visible, atomically; ends the import whether
     * it succeeds or fails (a failed commit leaves nothing staged). */
    int (*import_commit)(void *self, void *import);
    /** Ends the import without making anything visible, discarding what was
     * staged. */
    void (*import_abort)(void *self, void *import);

    /* Version 2: policies. A host may leave both NULL (policies then
     * report that they cannot see its tables). */

    /** Calls @p each for every table, in any order; a non-zero return from
     * @p each stops the walk and is returned. */
    int (*list_tables)(void *self,
                       int (*each)(void *arg, const char *ns, const char *table,
                                   jm_table_type type),
                       void *arg);
    /** A table's figures at @p now_ms; segments smaller than
     * @p small_bytes count as small; soft-deleted rows count when deleted
     * before @p deleted_before (0: all of them). JM_ENOTFOUND if there is
     * no table. */
    int (*table_figures)(void *self, const char *ns, const char *table, int64_t now_ms,
                         int64_t small_bytes, int64_t deleted_before, jm_host_figures *out);
};

#ifdef __cplusplus
}
#endif

#endif /* JOBMGR_HOST_H */
