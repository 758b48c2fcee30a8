/*
 * Shared between the PostgreSQL store's files: the connection, its cache of
 * prepared statements, and helpers for parameters, results, errors,
 * transactions and rows.
 *
 * Every statement names its tables unqualified: each connection of the
 * store sets search_path to the store's schema alone on connecting, so one
 * database can hold several applications' jobs (jm_config.pg_schema).
 * Parameters and results travel as text. Timestamps are int64 milliseconds
 * as in the SQLite store (bigint columns), statuses the jm_status numbers.
 */
#ifndef JM_PG_INTERNAL_H
#define JM_PG_INTERNAL_H

#if !defined(JM_LAYER_STORE) && !defined(JM_INTERNAL_TESTS)
#error "pg_internal.h is private to the PostgreSQL store: include store.h"
#endif

#include <libpq-fe.h>
#include <stdint.h>

#include "store.h"

/* The columns a job row is read from, in jm__pg_row_to_job's order (the
 * SQLite store's JM_JOB_COLUMNS, then pinned_node). `id` holds the id's
 * first JM__ID_SEQ_AT characters; the row's seq completes it. */
#define JM_PG_JOB_COLUMNS                                                          \
    "seq, id, type, status, namespace_id, params, idempotency_key, message, "      \
    "exception_trace, result, checkpoint, node_id, progress, retry_count, "         \
    "max_retries, priority, attempts, cancel_requested, created_at, updated_at, " \
    "started_at, finished_at, run_at, lease_until, schedule_id, fire_time, resource, " \
    "pause_requested, blocked_by, pinned_node"
#define JM_PG_JOB_NCOLUMNS 30

/* A statement prepared once per connection on first use (jm__pg_run). */
typedef struct jm__pg_prepared {
    const char *sql; /* the text, by address: the key */
    int number;      /* its name on the server: "jm<number>" */
} jm__pg_prepared;

/* "jm_wake_<schema>" (schema names are at most 48) and a process's
 * token ("<pid>-<16 hex>"). */
#define JM_PG_CHANNEL_SIZE 80
#define JM_PG_TOKEN_SIZE 48

#define JM_PG_MAX_PARAMS 40
#define JM_PG_NUM_SIZE 32

/* Text parameters for one statement. NULL values are SQL NULL. */
typedef struct jm__pg_params {
    const char *v[JM_PG_MAX_PARAMS];
    char num[JM_PG_MAX_PARAMS][JM_PG_NUM_SIZE];
    int n;
} jm__pg_params;

struct jm__store {
    PGconn *conn;          /* NULL after a failed reconnect */
    PGconn *side;          /* the outcomes' own (pg_finish.c), made when first needed */
    int64_t side_retry_at; /* ... and, while it cannot be made, when to try again */
    char *conninfo;        /* as given, for reconnecting */
    char *schema;          /* a validated identifier */
    char *schema_quoted;   /* "\"schema\"" */
    int reader;            /* a connection that only reads: no schema work */
    int durable_sync;      /* synchronous_commit on, else off */
    int64_t busy_timeout_ms; /* how long a reconnect may keep trying */
    int in_tx;             /* BEGIN sent, no COMMIT/ROLLBACK yet */
    jm__pg_prepared *prepared; /* what this connection has prepared */
    size_t nprepared, cap_prepared;
    int next_number;       /* names of statements never repeat on one connection */
    char channel[JM_PG_CHANNEL_SIZE]; /* the schema's NOTIFY channel, plain */
    char token[JM_PG_TOKEN_SIZE];     /* this process's, the payload of its NOTIFYs */
    void *gate;            /* pg_gate.c's cache of the rules, NULL until read */
    int64_t rules_version; /* ... and the version it was read at */
};

/* Parameters. Each adds the next ($1, $2, ...). */
void jm__pg_p_init(jm__pg_params *p);
void jm__pg_p_str(jm__pg_params *p, const char *v);
void jm__pg_p_i64(jm__pg_params *p, int64_t v);
void jm__pg_p_dbl(jm__pg_params *p, double v);

/* Runs `sql` with `p` (NULL: none), prepared on this connection at its
 * first use; `sql` must be a string that lives as long as the process (a
 * static or literal), since its address names it. On success *out (if not
 * NULL) gets the result, which the caller frees with PQclear; a result is
 * cleared otherwise. Outside a transaction, a lost connection is first
 * reconnected with backoff (for up to busy_timeout_ms). Errors as
 * jm__pg_err, with `what` leading the message. */
int jm__pg_run(jm__store *s, const char *what, const char *sql, const jm__pg_params *p,
               PGresult **out);
/* As jm__pg_run, for a text built per call (a filter's WHERE): not
 * prepared. */
int jm__pg_run_text(jm__store *s, const char *what, const char *sql, const jm__pg_params *p,
                    PGresult **out);
/* As jm__pg_run, for a statement without parameters run once (DDL, SET,
 * SAVEPOINT): not prepared. */
int jm__pg_exec(jm__store *s, const char *what, const char *sql);
/* The rows a command changed (its "UPDATE n"). */
int64_t jm__pg_changes(const PGresult *r);

/* Transactions. begin fails inside one; rollback is harmless outside one
 * and after a lost connection. */
int jm__pg_begin(jm__store *s, const char *what);
/* As jm__pg_begin, with statements after the BEGIN in the same round trip:
 * `sql` is "BEGIN; ...", statements without parameters. On failure nothing
 * stays open. */
int jm__pg_begin_with(jm__store *s, const char *what, const char *sql);
int jm__pg_commit(jm__store *s, const char *what);
void jm__pg_rollback(jm__store *s);

/* Maps a failed result (or, if r is NULL, the connection's state) to a JM_
 * code and records "what: message":
 *   23505 on jm_jobs_idempotency   JM_ECONFLICT (and on a schedule's or
 *                                  policy's name)
 *   40001, 40P01, 55P03            JM_EBUSY (serialisation, deadlock, lock)
 *   classes 53, 58, 08 and 57P     JM_EIO (insufficient resources such as
 *                                  a full disk, system I/O, the
 *                                  connection, a server shutting down)
 *   a lost connection              JM_EIO
 *   anything else                  JM_EDB */
int jm__pg_err(jm__store *s, const PGresult *r, const char *what);

/* Values of a result; NULL columns read as 0 / NULL. */
int64_t jm__pg_i64(const PGresult *r, int row, int col);
double jm__pg_dbl(const PGresult *r, int row, int col);
const char *jm__pg_str(const PGresult *r, int row, int col);

/* Builds a job from row `row` of a result selecting JM_PG_JOB_COLUMNS
 * from column `first`. JM_ENOMEM. */
int jm__pg_row_to_job(const PGresult *r, int row, int first, jm_job **out);
/* The whole id of a row whose seq is column `first` and stored id the next. */
void jm__pg_row_id(const PGresult *r, int row, int first, char out[JM_JOB_ID_SIZE]);
/* Splits a job id into its stored prefix and its seq. JM_ENOTFOUND (with a
 * message naming the id) when it is not an id this store could have made. */
int jm__pg_id_split(const char *id, char prefix[JM_JOB_ID_SIZE], int64_t *seq);

/* The schema (pg_schema.c): creates or migrates it under an advisory lock
 * inside one transaction. */
int jm__pg_schema_ensure(jm__store *s);
/* The NOTIFY channel of the store's schema, for LISTEN (quoted) and for
 * pg_notify (plain). */
void jm__pg_channel(const jm__store *s, char *plain, size_t plain_size, char *quoted,
                    size_t quoted_size);
/* This process's token, the payload of its NOTIFYs: a listener tells its
 * own process's posts (whose sleepers the process wakes itself) from
 * another's. Made again in a forked child. */
void jm__pg_process_token(char out[JM_PG_TOKEN_SIZE]);

/* Connects `conninfo` with search_path set to `schema_quoted` and the
 * session settings every connection of the store uses. NULL with the
 * error recorded as jm__pg_err would. */
PGconn *jm__pg_connect(const char *conninfo, const char *schema_quoted, int durable_sync);
/* Whether an idle connection still works: reads what waits in its socket,
 * so one the server ended (a restart, pg_terminate_backend) shows as
 * such before a statement is sent on it. */
int jm__pg_conn_alive(PGconn *c);
/* Monotonic milliseconds. */
int64_t jm__pg_mono_ms(void);

/* Outcomes (pg_finish.c). In the open transaction: */
int jm__pg_finish_in_tx(jm__store *s, jm__finish *items, size_t n);
/* On the outcomes' own connection, in a transaction of their own: sends
 * them and returns at once (JM_EIO, nothing sent, when that connection
 * cannot be had: record them with jm__pg_finish_in_tx instead); collect
 * waits for the commit and sets each final_status. */
int jm__pg_finish_send(jm__store *s, jm__finish *items, size_t n);
int jm__pg_finish_collect(jm__store *s, jm__finish *items, size_t n);

/* The ops of each file, gathered into jm__pg_store by pg_store.c. */
/* pg_jobs.c */
int jm__pg_insert(jm__store *s, const jm__new_row *rows, size_t n, size_t *conflict_index,
                  char conflict_id[JM_JOB_ID_SIZE]);
int jm__pg_get(jm__store *s, const char *id, jm_job **out);
int jm__pg_list(jm__store *s, const jm_filter *f, jm_job_list **out);
int jm__pg_count(jm__store *s, const jm_filter *f, int64_t *out);
int jm__pg_status(jm__store *s, const char *id, jm_status *out);
int jm__pg_cancel(jm__store *s, const char *id, int cancellable_running, int64_t now,
                  jm__cancel_outcome *outcome, int64_t *seq, int64_t *owner_instance);
int jm__pg_retry(jm__store *s, const char *id, int64_t now);
int jm__pg_prune(jm__store *s, int64_t finished_before, int64_t batch, int64_t *deleted);
int jm__pg_checkpoint(jm__store *s, int64_t seq, int64_t attempt, const char *json,
                      int64_t now);
int jm__pg_progress(jm__store *s, int64_t seq, int64_t attempt, double progress,
                    int64_t now);
int jm__pg_write_group(jm__store *s, jm__write *const *w, size_t n, jm__write_next more,
                       void *ctx);
int jm__pg_keyed_job_created(jm__store *s, const char *key, int64_t *out);
int jm__pg_rebase(jm__store *s, int64_t now, int *changed);
int jm__pg_stats(jm__store *s, int64_t now, jm__store_stats *out);
int jm__pg_throughput(jm__store *s, int64_t since, int64_t bucket_ms, jm_throughput_bucket *out,
                      size_t n);
/* pg_run.c */
int jm__pg_claim(jm__store *s, const jm__claim_req *req, jm_job ***out, size_t *n);
int jm__pg_finish(jm__store *s, jm__finish *items, size_t n);
int jm__pg_cycle(jm__store *s, jm__finish *items, size_t n, const jm__claim_req *req,
                 jm_job ***out, size_t *nout, int *claim_err);
int jm__pg_renew(jm__store *s, const jm__owner *owner, int64_t now, int64_t lease_until,
                 jm__lease_info **out, size_t *n);
int jm__pg_release(jm__store *s, int64_t seq, int64_t attempt, int64_t now);
int jm__pg_start_check(jm__store *s, int64_t seq, int64_t attempt, jm__start_verdict *out);
int jm__pg_running_owners(jm__store *s, const char *node_id, jm__owner_ref **out,
                          size_t *n);
int jm__pg_recover_owner(jm__store *s, const char *node_id, const jm__owner_ref *owner,
                         int64_t now, jm_recovery_policy policy, const char *fail_message,
                         const jm__run_ref *started, size_t nstarted, int started_known,
                         int *recovered);
int jm__pg_recover_expired(jm__store *s, const char *node_id, int64_t now,
                           jm_recovery_policy policy, const char *fail_message,
                           int *recovered);
/* pg_gate.c: the rules, and the claim's judgement of due jobs by them. */
int jm__pg_conflict_set(jm__store *s, const char *type_a, const char *type_b, int exclusive);
int jm__pg_limit_set(jm__store *s, const char *type, const char *resource, int max_running);
int jm__pg_pause_set(jm__store *s, jm_pause_scope scope, const char *what, int paused,
                     int64_t now);
int jm__pg_pause_list(jm__store *s, jm_pause_entry **out, size_t *n);
int jm__pg_conflict_list(jm__store *s, jm_conflict **out, size_t *n);
int jm__pg_limit_list(jm__store *s, jm_limit **out, size_t *n);
int jm__pg_pause_job(jm__store *s, const char *id, int64_t now, int *requested, int64_t *seq,
                     int64_t *owner_instance);
int jm__pg_resume_job(jm__store *s, const char *id, int64_t now);
void jm__pg_gate_free(jm__store *s);
/* pg_schedule.c and pg_policy.c */
int jm__pg_schedule_insert(jm__store *s, const jm_schedule *sc);
int jm__pg_schedule_get(jm__store *s, const char *id_or_name, jm_schedule **out);
int jm__pg_schedule_list(jm__store *s, jm_schedule ***out, size_t *n);
int jm__pg_schedule_update(jm__store *s, const jm_schedule *sc, int64_t now);
int jm__pg_schedule_delete(jm__store *s, const char *id);
int jm__pg_schedule_pause(jm__store *s, const char *id, int paused, int64_t now);
int jm__pg_schedule_due(jm__store *s, int64_t now, size_t limit, jm_schedule ***out,
                        size_t *n);
int jm__pg_schedule_next_fire(jm__store *s, int64_t *out);
int jm__pg_schedule_fire(jm__store *s, jm__fire *fires, size_t n);
int jm__pg_policy_insert(jm__store *s, const jm_policy *p);
int jm__pg_policy_get(jm__store *s, const char *id_or_name, jm_policy **out);
int jm__pg_policy_list(jm__store *s, jm_policy ***out, size_t *n);
int jm__pg_policy_delete(jm__store *s, const char *id);
int jm__pg_policy_pause(jm__store *s, const char *id, int paused, int64_t now);
/* pg_insert_in.c */
int jm__pg_insert_in(jm__store *s, void *conn, jm__new_row *row,
                     char conflict_id[JM_JOB_ID_SIZE]);
/* pg_wake.c: LISTEN/NOTIFY on a connection of its own. */
int jm__pg_wake_open(jm__store *s, jm__wake **out);
void jm__pg_wake_close(jm__wake *w);
void jm__pg_wake_post(jm__wake *w);
void jm__pg_wake_listen(jm__wake *w, int on);
uint64_t jm__pg_wake_seq(jm__wake *w);
int jm__pg_wake_wait(jm__wake *w, uint64_t *seen, int64_t timeout_ms);
void jm__pg_wake_interrupt(jm__wake *w);

#endif
