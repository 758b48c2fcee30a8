/*
 * Shared between the SQLite store's files: the connection, its cache of
 * prepared statements, and helpers for errors, transactions and rows.
 */
#ifndef JM_SQLITE_INTERNAL_H
#define JM_SQLITE_INTERNAL_H

/* The core reaches a store through store.h alone. */
#if !defined(JM_LAYER_STORE) && !defined(JM_INTERNAL_TESTS)
#error "sqlite_internal.h is private to the SQLite store: include store.h"
#endif

#include <sqlite3.h>
#include <stdint.h>

#include "store.h"

/* Statuses as the statements spell them (jm_status); literals, not
 * parameters, so the planner can match the partial indexes:
 *   0 new   1 queued   2 running   3 retrying
 *   4 completed   5 failed   6 cancelled   7 paused
 * "status <= 3 OR status = 7" is active (the idempotency index),
 * "status BETWEEN 4 AND 6" finished, "status IN (1, 3)" waiting to run once
 * run_at has passed. */
_Static_assert(JM_STATUS_NEW == 0 && JM_STATUS_QUEUED == 1 && JM_STATUS_RUNNING == 2 &&
                   JM_STATUS_RETRYING == 3 && JM_STATUS_COMPLETED == 4 &&
                   JM_STATUS_FAILED == 5 && JM_STATUS_CANCELLED == 6 &&
                   JM_STATUS_PAUSED == 7,
               "the statements' status legend");

/* Named parameters of the hot statements with many bindings. Each list is
 * the order in which its statement's text first names them (":now"),
 * which is their index; binders use the P_<STATEMENT>_<name> constants,
 * at no cost per call, and jm__sqlite_stmt checks on preparing that text
 * and list agree. */
#define JM_PARAMS_INSERT(X, S)                                                           \
    X(S, id) X(S, type) X(S, status) X(S, namespace_id) X(S, params) X(S, key)            \
    X(S, max_retries) X(S, priority) X(S, now) X(S, run_at) X(S, resource)
#define JM_PARAMS_TAKE(X, S)                                                             \
    X(S, node) X(S, pid) X(S, instance) X(S, lease_until) X(S, starts) X(S, now) X(S, seq)
/* Both finish statements. */
#define JM_PARAMS_FINISH(X, S)                                                           \
    X(S, status) X(S, keep_message) X(S, message) X(S, trace) X(S, result)                \
    X(S, retry_count) X(S, run_at) X(S, progress) X(S, now) X(S, finished_at)             \
    X(S, started_at) X(S, seq) X(S, attempt)

#define JM_PARAM_ENUM(S, name) P_##S##_##name,
#define JM_PARAM_NAME(S, name) ":" #name "\0"
enum { P_INSERT_BEFORE_FIRST_, JM_PARAMS_INSERT(JM_PARAM_ENUM, INSERT) };
enum { P_TAKE_BEFORE_FIRST_, JM_PARAMS_TAKE(JM_PARAM_ENUM, TAKE) };
enum { P_FINISH_BEFORE_FIRST_, JM_PARAMS_FINISH(JM_PARAM_ENUM, FINISH) };

/* Statements with fixed text, each prepared once per connection on first
 * use. The order here matches sql_text[] in sqlite_store.c. */
typedef enum {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_INSERT,
    Q_ROW_FROM,
    Q_LAST_ROW,
    Q_ACTIVE_BY_KEY,
    Q_GET,
    Q_LEGACY_SEQ,
    Q_STATUS_OF,
    Q_STATUS_OF_SEQ,
    Q_COUNT_STATUS_UPTO,
    Q_COUNT_STATUS_BY_REST,
    Q_PROMOTE,
    Q_DUE,
    Q_TAKE,
    Q_FINISH,
    Q_FINISH_CANCELLABLE,
    Q_CHECKPOINT,
    Q_PROGRESS,
    Q_RENEW,
    Q_CANCEL,
    Q_RETRY,
    Q_PRUNE,
    Q_RUNNING_OWNERS,
    Q_RECOVER_OWNER,
    Q_RECOVER_EXPIRED,
    Q_RELEASE,
    Q_SET_ASIDE,
    Q_CLAIM_SAVEPOINT,
    Q_CLAIM_ROLLBACK,
    Q_CLAIM_RELEASE,
    Q_WRITE_SAVEPOINT,
    Q_WRITE_ROLLBACK,
    Q_WRITE_RELEASE,
    Q_SYNC_FULL,
    Q_SYNC_NORMAL,
    Q_BEGIN_READ,
    Q_STATS_BY_STATUS,
    Q_STATS_BY_TYPE,
    Q_STATS_COUNTS_EXCEPT,
    Q_STATS_QUEUE,
    Q_THROUGHPUT,
    Q_RECOVER_RUN,
    Q_RELEASE_OWNER,
    Q_REBASE,
    Q_START_CHECK,
    Q_COUNT_
} jm__query;

/* Filter shapes: which clauses a list/count query has. Each shape's text
 * is prepared once and cached, so filter values are always bound. */
#define JM_FILTER_SHAPES 2048

typedef struct jm__wal_checkpointer jm__wal_checkpointer;
/* Statements of sqlite_schedule.c. */
#define JM__SCHED_QUERIES 11
/* Statements of sqlite_policy.c. */
#define JM__POLICY_QUERIES 6
/* Statements of sqlite_gate.c, and its rules cache. */
#define JM__GATE_QUERIES 17
typedef struct jm__gate jm__gate;

struct jm__store {
    sqlite3 *db;
    jm__wal_checkpointer *wal; /* NULL: SQLite checkpoints on commit */
    sqlite3_stmt *q[Q_COUNT_];
    sqlite3_stmt *shape[JM_FILTER_SHAPES];
    sqlite3_stmt *sched[JM__SCHED_QUERIES]; /* sqlite_schedule.c's statements */
    sqlite3_stmt *policy[JM__POLICY_QUERIES]; /* sqlite_policy.c's */
    sqlite3_stmt *gate[JM__GATE_QUERIES];     /* sqlite_gate.c's */
    jm__gate *gatep;                          /* the rules it read, NULL until then */
    int64_t busy_timeout_us; /* how long one wait for the lock may last */
    int64_t busy_since_us;   /* when the current wait began */
    int durable_sync;        /* synchronous=FULL except for claim-only cycles */
    int sync_relaxed;        /* synchronous=NORMAL is set (a claim-only cycle) */
    int relaxing;            /* ... on purpose, for the statement under way */
};

/* A statement of a file's own cache: prepared into *slot on first use,
 * reset for reuse; like jm__sqlite_stmt, it first restores durability a
 * claim-only cycle left relaxed. */
int jm__sqlite_stmt_text(jm__store *s, sqlite3_stmt **slot, const char *sql,
                         sqlite3_stmt **out);

/* The row of `table` whose id is ?1, else the one whose name is ?1: ids
 * are looked at first, so a name spelled like another row's id cannot
 * hide that row. For jm__sqlite_get_by_ref. */
#define JM__SQL_BY_ID_OR_NAME(columns, table)                                            \
    "SELECT " columns " FROM " table " WHERE id = ?1 UNION ALL "                         \
    "SELECT " columns " FROM " table " WHERE name = ?1 AND id <> ?1 LIMIT 1"

/* Reads the current row of a statement into *slot, one element of the
 * caller's array of snapshots (a jm_schedule **, a jm_policy **), which
 * then belongs to the caller. Errors as jm__seterr. */
typedef int (*jm__sqlite_row_reader)(sqlite3_stmt *st, void *slot);

/* A kind of row named by id or name, for the helpers below: how to read
 * one, how to free a list of them, and the words of their messages. */
typedef struct jm__sqlite_rows {
    const char *noun;    /* "schedule": "no schedule 'x'" */
    const char *reading; /* "reading a schedule" */
    const char *listing; /* "listing schedules" */
    size_t elem_size;    /* of one element of a list: a pointer to a snapshot */
    jm__sqlite_row_reader read;
    void (*free_list)(void *list, size_t n); /* the first n elements, and the list */
} jm__sqlite_rows;

/* Binds `id_or_name` to ?1 of `st` (prepared from JM__SQL_BY_ID_OR_NAME),
 * steps it and reads its row into *out with k->read. JM_ENOTFOUND "no
 * <noun> '<id_or_name>'" if there is none; a database error as
 * jm__sqlite_err with k->reading. The statement is reset either way. */
int jm__sqlite_get_by_ref(jm__store *s, sqlite3_stmt *st, const char *id_or_name,
                          const jm__sqlite_rows *k, void *out);

/* Steps a bound statement to its end and reads every row with k->read into
 * a list of k->elem_size elements: *out gets it (NULL if empty; free it
 * with k->free_list), *n its length. On error nothing is handed out. The
 * statement is reset and its bindings cleared either way. */
int jm__sqlite_read_list(jm__store *s, sqlite3_stmt *st, const jm__sqlite_rows *k, void **out,
                         size_t *n);

/* Schedules (sqlite_schedule.c). */
int jm__sqlite_schedule_insert(jm__store *s, const jm_schedule *sc);
int jm__sqlite_schedule_get(jm__store *s, const char *id_or_name, jm_schedule **out);
int jm__sqlite_schedule_list(jm__store *s, jm_schedule ***out, size_t *n);
int jm__sqlite_schedule_update(jm__store *s, const jm_schedule *sc, int64_t now);
int jm__sqlite_schedule_delete(jm__store *s, const char *id);
int jm__sqlite_schedule_pause(jm__store *s, const char *id, int paused, int64_t now);
int jm__sqlite_schedule_due(jm__store *s, int64_t now, size_t limit, jm_schedule ***out,
                            size_t *n);
int jm__sqlite_schedule_next_fire(jm__store *s, int64_t *out);
int jm__sqlite_schedule_fire(jm__store *s, jm__fire *fires, size_t n);
/* Policies (sqlite_policy.c). */
int jm__sqlite_policy_insert(jm__store *s, const jm_policy *p);
int jm__sqlite_policy_get(jm__store *s, const char *id_or_name, jm_policy **out);
int jm__sqlite_policy_list(jm__store *s, jm_policy ***out, size_t *n);
int jm__sqlite_policy_delete(jm__store *s, const char *id);
int jm__sqlite_policy_pause(jm__store *s, const char *id, int paused, int64_t now);
int jm__sqlite_keyed_job_created(jm__store *s, const char *key, int64_t *out);
/* The claim's gate (sqlite_gate.c). gate_open rereads changed rules at
 * the start of a claim; *closed: everything is paused. gate_sweep returns
 * jobs whose reason lapsed to the due index (*returned: some were).
 * gate_judge marks a due job blocked (*blocked) or counts it as taken. */
int jm__sqlite_gate_open(jm__store *s, int *closed);
int jm__sqlite_gate_sweep(jm__store *s, size_t want, int *returned);
int jm__sqlite_gate_judge(jm__store *s, const jm_job *job, int *blocked);
void jm__sqlite_gate_free(jm__gate *g);
int jm__sqlite_conflict_set(jm__store *s, const char *a, const char *b, int exclusive);
int jm__sqlite_limit_set(jm__store *s, const char *type, const char *resource, int max);
int jm__sqlite_pause_set(jm__store *s, jm_pause_scope scope, const char *what, int paused,
                         int64_t now);
int jm__sqlite_pause_list(jm__store *s, jm_pause_entry **out, size_t *n);
int jm__sqlite_conflict_list(jm__store *s, jm_conflict **out, size_t *n);
int jm__sqlite_limit_list(jm__store *s, jm_limit **out, size_t *n);
int jm__sqlite_pause_job(jm__store *s, const char *id, int64_t now, int *requested,
                         int64_t *seq, int64_t *owner_instance);
int jm__sqlite_resume_job(jm__store *s, const char *id, int64_t now);
int jm__sqlite_bind_row_key(jm__store *s, sqlite3_stmt *st, const char *id, int id_param,
                            int seq_param, int64_t *seq_out);

/* The columns every job query selects, in the order jm__row_to_job reads. */
#define JM_JOB_COLUMNS                                                             \
    "seq, id, type, status, namespace_id, params, idempotency_key, message, "      \
    "exception_trace, result, checkpoint, node_id, progress, retry_count, "         \
    "max_retries, priority, attempts, cancel_requested, created_at, updated_at, " \
    "started_at, finished_at, run_at, lease_until, schedule_id, fire_time, resource, " \
    "pause_requested, blocked_by"

/* Maps a SQLite result to a JM_ code and records "what: sqlite message". */
int jm__sqlite_err(jm__store *s, int rc, const char *what);
/* Steps a bound write statement once and resets it (bindings stay);
 * *changed (if not NULL) gets the rows it changed. Errors as
 * jm__sqlite_err with `what`. */
int jm__sqlite_write(jm__store *s, sqlite3_stmt *st, const char *what, int64_t *changed);
/* The cached statement, prepared on first use and reset for reuse. */
int jm__sqlite_stmt(jm__store *s, jm__query q, sqlite3_stmt **out);
int jm__sqlite_begin(jm__store *s);
int jm__sqlite_commit(jm__store *s);
void jm__sqlite_rollback(jm__store *s);
/* Builds a job from the current row of a statement selecting JM_JOB_COLUMNS
 * starting at column `first`. JM_EDB (naming the row by its seq) for a row
 * jm__row_damage finds damaged, JM_ENOMEM when SQLite ran out of memory. */
int jm__row_to_job(sqlite3_stmt *st, int first, jm_job **out);
/* What outside damage did to that row, which no write of ours makes: a
 * NULL or empty id, a NULL type or one that is not two bytes. NULL if the
 * row is sound. The text is static ("id is NULL"). */
const char *jm__row_damage(sqlite3_stmt *st, int first);
/* The job id of a row whose seq is column `first` and stored id the next:
 * the stored id completed by the seq (schema version 4), or as stored. */
void jm__row_id(sqlite3_stmt *st, int first, char out[JM_JOB_ID_SIZE]);
int jm__sqlite_schema(jm__store *s);
/* Moves WAL checkpoints off the store's connection (sqlite_wal.c); on any
 * failure SQLite's automatic checkpoint stays. */
void jm__wal_checkpointer_start(jm__store *s, const char *path, const char *vfs);
void jm__wal_checkpointer_stop(jm__store *s);
void jm__wal_settle(jm__store *s, int64_t max_wait_ms);

/* Bind helpers: a NULL string binds SQL NULL. Strings are bound static:
 * callers keep them alive until the statement is reset. */
int jm__bind_text(sqlite3_stmt *st, int i, const char *v);

/* Store operations defined in the individual files. */
int jm__sqlite_write_group(jm__store *s, jm__write *const *w, size_t n, jm__write_next more,
                           void *ctx);
/* The wake-up channel (sqlite_wake.c). */
int jm__sqlite_wake_open(jm__store *s, jm__wake **out);
void jm__sqlite_wake_close(jm__wake *w);
void jm__sqlite_wake_post(jm__wake *w);
uint64_t jm__sqlite_wake_seq(jm__wake *w);
int jm__sqlite_wake_wait(jm__wake *w, uint64_t *seen, int64_t timeout_ms);
void jm__sqlite_wake_interrupt(jm__wake *w);
/* How many handles, of any process, sleep on the channel now (tests). */
int jm__sqlite_wake_sleepers(jm__wake *w);
int jm__sqlite_insert(jm__store *s, const jm__new_row *rows, size_t n, size_t *conflict_index,
                      char conflict_id[JM_JOB_ID_SIZE]);
int jm__sqlite_get(jm__store *s, const char *id, jm_job **out);
int jm__sqlite_list(jm__store *s, const jm_filter *f, jm_job_list **out);
int jm__sqlite_count(jm__store *s, const jm_filter *f, int64_t *out);
int jm__sqlite_claim(jm__store *s, const jm__claim_req *req, jm_job ***out, size_t *n);
int jm__sqlite_finish(jm__store *s, jm__finish *items, size_t n);
int jm__sqlite_checkpoint(jm__store *s, int64_t seq, int64_t attempt, const char *json,
                          int64_t now);
int jm__sqlite_progress(jm__store *s, int64_t seq, int64_t attempt, double progress,
                        int64_t now);
int jm__sqlite_renew(jm__store *s, const jm__owner *owner, int64_t now, int64_t lease_until,
                     jm__lease_info **out, size_t *n);
int jm__sqlite_cancel(jm__store *s, const char *id, int cancellable_running, int64_t now,
                      jm__cancel_outcome *outcome, int64_t *seq, int64_t *owner_instance);
int jm__sqlite_status(jm__store *s, const char *id, jm_status *out);
int jm__sqlite_retry(jm__store *s, const char *id, int64_t now);
int jm__sqlite_prune(jm__store *s, int64_t finished_before, int64_t batch, int64_t *deleted);
int jm__sqlite_running_owners(jm__store *s, const char *node_id, jm__owner_ref **out,
                              size_t *n);
int jm__sqlite_recover_owner(jm__store *s, const char *node_id, const jm__owner_ref *owner,
                             int64_t now, jm_recovery_policy policy, const char *fail_message,
                             const jm__run_ref *started, size_t nstarted, int started_known,
                             int *recovered);
int jm__sqlite_recover_expired(jm__store *s, const char *node_id, int64_t now,
                               jm_recovery_policy policy, const char *fail_message,
                               int *recovered);
int jm__sqlite_rebase(jm__store *s, int64_t now, int *changed);
int jm__sqlite_start_check(jm__store *s, int64_t seq, int64_t attempt, jm__start_verdict *out);
int jm__sqlite_release(jm__store *s, int64_t seq, int64_t attempt, int64_t now);
int jm__sqlite_cycle(jm__store *s, jm__finish *items, size_t n, const jm__claim_req *req,
                     jm_job ***out, size_t *nout, int *claim_err);
int jm__sqlite_stats(jm__store *s, int64_t now, jm__store_stats *out);
int jm__sqlite_throughput(jm__store *s, int64_t since, int64_t bucket_ms,
                          jm_throughput_bucket *out, size_t n);

#endif
