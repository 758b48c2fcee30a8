/*
 * jobmgr: an embeddable, persistent job manager.
 *
 * Jobs live in a SQLite table and survive crashes and restarts. A host
 * creates, cancels, lists and inspects jobs; a run loop with a worker pool
 * claims due jobs and hands each to the executor registered for the job's
 * two-letter type prefix.
 *
 * Conventions (the whole API follows them):
 *  - Every fallible function returns int: JM_OK (0) or a negative JM_E* code.
 *    jm_strerror() names a code; jm_last_error() gives the detailed message
 *    of the last failure on the calling thread.
 *  - An object handed out through an `**out` parameter belongs to the caller,
 *    who frees it with the matching *_free function. A pointer returned
 *    directly is borrowed and lives as long as the object it came from.
 *    Every free/close function accepts NULL.
 *  - Option structs begin with `unsigned int version` and have an *_INIT
 *    macro; always start from it. A version the library does not know is
 *    refused with JM_EINVAL.
 *  - Times are milliseconds since the Unix epoch (int64_t).
 *  - Handles are thread-safe unless a function says otherwise.
 */
#ifndef JOBMGR_H
#define JOBMGR_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(JM_BUILDING_LIBRARY) && defined(__GNUC__)
#define JM_EXTERN __attribute__((visibility("default")))
#else
#define JM_EXTERN
#endif

#if defined(__GNUC__)
#define JM_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define JM_PRINTF(fmt, args)
#endif

#define JM_VERSION_MAJOR 0
#define JM_VERSION_MINOR 1
#define JM_VERSION_PATCH 0
#define JM_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

/*
 * One table generates the codes, jm_strerror() and jm_err_name(), so they
 * never drift apart. Codes are added at the end and never removed.
 */
#define JM_ERRNO_MAP(XX)                                                       \
    XX(OK, 0, "success")                                                       \
    XX(EINVAL, -1, "invalid argument")                                         \
    XX(ENOTFOUND, -2, "not found")                                             \
    XX(ECONFLICT, -3, "idempotency key held by an active job")                 \
    XX(ESTATE, -4, "transition not allowed from the current status")          \
    XX(ENOTCANCELLABLE, -5, "job type cannot be cancelled while running")      \
    XX(ENOEXEC, -6, "no executor registered for that type")                    \
    XX(EJSON, -7, "not valid JSON or not a JSON object")                       \
    XX(ETOOBIG, -8, "value too large")                                         \
    XX(EDB, -9, "database error")                                              \
    XX(EBUSY, -10, "busy")                                                     \
    XX(ENOMEM, -11, "out of memory")                                           \
    XX(EIO, -12, "input/output error")                                         \
    XX(ESTOPPED, -13, "manager is stopped")

typedef enum {
#define JM__ERR_ENUM(name, value, text) JM_##name = (value),
    JM_ERRNO_MAP(JM__ERR_ENUM)
#undef JM__ERR_ENUM
} jm_error;

/* A static description of `code` ("not found"); unknown codes give
 * "unknown error". Never NULL. */
JM_EXTERN const char *jm_strerror(int code);

/* The code's name without prefix ("ENOTFOUND"); never NULL. */
JM_EXTERN const char *jm_err_name(int code);

/* The detailed message of the last failure on this thread ("job FL-… not
 * found"). Never NULL; owned by the library and valid until the next call
 * into the library on this thread. Successful calls do not clear it. */
JM_EXTERN const char *jm_last_error(void);

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

#define JM_ALLOCATOR_VERSION 1u

/* Routes every allocation the library makes (and cJSON's, through
 * cJSON_InitHooks). The library never reallocates, so two functions do.
 * SQLite's own allocations are configured apart, with
 * sqlite3_config(SQLITE_CONFIG_MALLOC). */
typedef struct jm_allocator {
    unsigned int version; /* JM_ALLOCATOR_VERSION */
    void *(*malloc_fn)(void *user, size_t size); /* NULL when out of memory */
    void (*free_fn)(void *user, void *ptr);
    void *user;
} jm_allocator;

/* Installs `a` process-wide (NULL restores the C library's allocator).
 * Call it before any other jm_ function and while no manager is open:
 * memory must be freed by the allocator that made it. It also replaces
 * cJSON's global hooks. Returns JM_EINVAL for an unknown version or a
 * missing malloc_fn/free_fn. */
JM_EXTERN int jm_set_allocator(const jm_allocator *a);

/* Frees a string or buffer the library handed out (NULL is fine). */
JM_EXTERN void jm_free(void *p);

/* ------------------------------------------------------------------------
 * Types, ids and statuses
 * ------------------------------------------------------------------------ */

/* The built-in job types: a type is its two-letter uppercase prefix. */
#define JM_FLUSH "FL"
#define JM_CLEANUP "CL"
#define JM_RETENTION "RT"
#define JM_STREAM_EVICTION "SE"
#define JM_USER_CLEANUP "UC"
#define JM_COMPACT "CO"
#define JM_BACKUP "BK"
#define JM_RESTORE "RS"

/* A job id is "<type>-<uuid>", lower-case hex: 39 characters and a NUL. */
#define JM_JOB_ID_SIZE 40

/* Checks that `id` is a well-formed job id and, if `type_out` is not NULL,
 * writes its type ("FL") there. Returns JM_EINVAL for anything else. */
JM_EXTERN int jm_job_id_parse(const char *id, char type_out[3]);

typedef enum {
    JM_STATUS_NEW,       /* created with a run_at still in the future */
    JM_STATUS_QUEUED,    /* due, waiting for a worker */
    JM_STATUS_RUNNING,   /* claimed by a worker */
    JM_STATUS_RETRYING,  /* failed, due again after its backoff */
    JM_STATUS_COMPLETED, /* finished well */
    JM_STATUS_FAILED,    /* finished badly; jm_retry() can requeue it */
    JM_STATUS_CANCELLED  /* cancelled; jm_retry() can requeue it */
} jm_status;

#define JM_STATUS_COUNT 7

/* Bit of `status` in a jm_filter.statuses mask. */
#define JM_STATUS_BIT(status) (1u << (unsigned)(status))

/* "new", "queued", "running", "retrying", "completed", "failed",
 * "cancelled"; "unknown" for anything else. Never NULL. */
JM_EXTERN const char *jm_status_name(jm_status status);

/* Parses a status name as jm_status_name() spells it. JM_EINVAL if none. */
JM_EXTERN int jm_status_parse(const char *name, jm_status *out);

/* ------------------------------------------------------------------------
 * Manager
 * ------------------------------------------------------------------------ */

typedef struct jm_manager jm_manager;
typedef struct jm_job jm_job;
typedef struct jm_job_list jm_job_list;
typedef struct jm_ctx jm_ctx;
struct jm_host; /* include/jobmgr/host.h */

typedef enum {
    JM_LOG_DEBUG,
    JM_LOG_INFO,
    JM_LOG_WARN,
    JM_LOG_ERROR,
    JM_LOG_OFF /* as log_level: log nothing */
} jm_log_level;

/* Receives one finished line; lines about a job begin "[FL-…] ". Called
 * from whichever thread logged, so it must be thread-safe. */
typedef void (*jm_log_fn)(void *user, jm_log_level level, const char *line);

/* A clock: milliseconds since the Unix epoch. Tests pass a fake one. */
typedef int64_t (*jm_clock_fn)(void *user);

typedef enum {
    JM_RECOVER_RETRY, /* a lost running job is requeued as retrying (at-least-once) */
    JM_RECOVER_FAIL   /* a lost running job fails with "Server restarted" */
} jm_recovery_policy;

#define JM_CONFIG_VERSION 1u

/* Defaults; the README's configuration table lists them too. */
#define JM_DEFAULT_MAX_RETRIES 3
#define JM_DEFAULT_BACKOFF_BASE_MS 1000
#define JM_DEFAULT_BACKOFF_MAX_MS 300000
#define JM_DEFAULT_BACKOFF_JITTER 0.2
#define JM_DEFAULT_LEASE_MS 30000
#define JM_DEFAULT_POLL_INTERVAL_MS 1000
#define JM_DEFAULT_BUSY_TIMEOUT_MS 5000

typedef struct jm_config {
    unsigned int version;      /* JM_CONFIG_VERSION */
    const char *db_path;       /* the jobs database file; required */
    const char *node_id;       /* this host's name; NULL: gethostname(). All
                                  processes of one host must share it, so a
                                  dead process's jobs are recovered at once */
    int max_retries;           /* default per job; 0..1000 */
    int64_t backoff_base_ms;   /* first retry delay */
    int64_t backoff_max_ms;    /* cap of the exponential delay */
    double backoff_jitter;     /* 0..1: a delay is cut by up to this fraction */
    int64_t lease_ms;          /* a running job's lease; renewed every lease/3 */
    int64_t poll_interval_ms;  /* how often idle workers look for jobs created
                                  by other processes */
    jm_recovery_policy recovery;
    jm_log_fn log_fn;          /* NULL: stderr */
    void *log_user;
    jm_log_level log_level;    /* lines below it are dropped */
    const struct jm_host *host; /* handed to executors by jm_ctx_host() */
    jm_clock_fn now_ms;        /* NULL: the system clock */
    void *now_user;
    int64_t busy_timeout_ms;   /* how long to wait for another writer before
                                  JM_EBUSY */
    const char *sqlite_vfs;    /* NULL: SQLite's default VFS */
} jm_config;

#define JM_CONFIG_INIT                                                         \
    {                                                                          \
        JM_CONFIG_VERSION, NULL, NULL, JM_DEFAULT_MAX_RETRIES,                 \
            JM_DEFAULT_BACKOFF_BASE_MS, JM_DEFAULT_BACKOFF_MAX_MS,             \
            JM_DEFAULT_BACKOFF_JITTER, JM_DEFAULT_LEASE_MS,                    \
            JM_DEFAULT_POLL_INTERVAL_MS, JM_RECOVER_RETRY, NULL, NULL,         \
            JM_LOG_WARN, NULL, NULL, NULL, JM_DEFAULT_BUSY_TIMEOUT_MS, NULL    \
    }

/* Opens (creating if needed) the jobs database at cfg->db_path, creates or
 * migrates its schema in one transaction, and recovers jobs left running by
 * dead processes. `cfg` is copied (its strings too). On success *out is a
 * manager to close with jm_close().
 * Errors: JM_EINVAL (bad config), JM_EDB (not a jobs database, newer schema),
 * JM_EIO, JM_EBUSY, JM_ENOMEM. */
JM_EXTERN int jm_open(const jm_config *cfg, jm_manager **out);

/* Stops the workers (as jm_stop(m, 0): running jobs are asked to stop and
 * go back to retrying without spending a retry), then frees everything.
 * Must not be called from an executor. NULL is fine. */
JM_EXTERN void jm_close(jm_manager *m);

/* ------------------------------------------------------------------------
 * Executors
 * ------------------------------------------------------------------------ */

typedef enum {
    JM_DECISION_COMPLETED,
    JM_DECISION_RETRY,
    JM_DECISION_FAILED,
    JM_DECISION_CANCELLED,
    JM_DECISION_CONTINUE
} jm_decision_kind;

/* What an executor's run ended in. Build it with the jm_decision_*()
 * functions. Strings are borrowed: the manager copies them when execute()
 * returns, so literals and jm_ctx_strf() results are fine. */
typedef struct jm_decision {
    jm_decision_kind kind;
    const char *message;      /* ≤ 1000 bytes kept (truncated, marked) */
    const char *trace;        /* ≤ 10000 bytes kept (truncated, marked) */
    const char *metrics_json; /* a JSON object stored as the job's result;
                                 may be set on any decision */
    int64_t delay_ms;         /* retry: backoff, < 0 = the manager's policy;
                                 continue: delay before the next run */
} jm_decision;

/* Done; `metrics_json` (may be NULL) becomes the job's result. */
JM_EXTERN jm_decision jm_decision_completed(const char *message, const char *metrics_json);
/* Failed this time, try again: after `backoff_ms`, or by the manager's
 * exponential policy if negative. Spends a retry; after max_retries the job
 * fails with "Max retries exceeded". */
JM_EXTERN jm_decision jm_decision_retry(const char *message, const char *trace,
                                        int64_t backoff_ms);
/* Failed for good. */
JM_EXTERN jm_decision jm_decision_failed(const char *message, const char *trace);
/* Stopped because jm_ctx_is_cancelled() turned true. */
JM_EXTERN jm_decision jm_decision_cancelled(const char *message);
/* One batch done, more remains: back to queued, due after `delay_ms`,
 * keeping checkpoint and message. Spends no retry. */
JM_EXTERN jm_decision jm_decision_continue(const char *message, int64_t delay_ms);

#define JM_EXECUTOR_VERSION 1u

/* An executor: the code behind one job type. The manager never calls one
 * executor's functions for the same job concurrently, but runs different
 * jobs of a type on several threads at once: execute() must be
 * thread-safe with respect to `self`. */
typedef struct jm_executor {
    unsigned int version; /* JM_EXECUTOR_VERSION */
    const char *type;     /* two uppercase letters: "FL" */
    const char *name;     /* "flush": for logs and listings */
    int cancellable;      /* 0: jm_cancel() of a running job is refused */
    /* Checks parameters at jm_create(). Return 0 to accept; non-zero to
     * refuse, with a message written to err (NUL-terminated, errlen bytes).
     * May be NULL (anything that is a JSON object is accepted). */
    int (*validate)(void *self, const cJSON *params, char *err, size_t errlen);
    /* Runs the job once. Required. */
    jm_decision (*execute)(void *self, jm_ctx *ctx);
    /* Optional: called from another thread when the running job is
     * cancelled or the manager stops, to nudge a blocked execute() (signal
     * a condition, close a socket). It runs under the manager's internal
     * lock: it must return quickly and must not call jm_ functions other
     * than jm_ctx_job() and jm_ctx_params(). */
    void (*cancel)(void *self, jm_ctx *ctx);
} jm_executor;

/* Registers `ex` (copied; its strings must outlive the manager) for its
 * type, with `self` handed back to its functions. May be called while the
 * manager runs. Errors: JM_EINVAL (NULL, wrong version, malformed type,
 * missing execute), JM_ECONFLICT (type already registered). */
JM_EXTERN int jm_register(jm_manager *m, const jm_executor *ex, void *self);

/* 1 if an executor is registered for `type` in this manager, else 0. */
JM_EXTERN int jm_is_registered(jm_manager *m, const char *type);

/* Registers the eight built-in executors: flush (FL), cleanup (CL),
 * retention (RT), stream eviction (SE), user cleanup (UC), compact (CO),
 * backup (BK) and restore (RS). They reach the engine's storage through
 * cfg.host (include/jobmgr/host.h); their jobs fail with a clear message if
 * the manager has no host. Errors as jm_register(): JM_ECONFLICT if one of
 * the types is already registered (then none is). */
JM_EXTERN int jm_register_builtin(jm_manager *m);

/* ------------------------------------------------------------------------
 * Jobs
 * ------------------------------------------------------------------------ */

#define JM_CREATE_OPTS_VERSION 1u

/* Limits. */
#define JM_MAX_PARAMS_BYTES (512 * 1024)
#define JM_MAX_MESSAGE_BYTES 1000
#define JM_MAX_TRACE_BYTES 10000
#define JM_MAX_KEY_BYTES 255        /* idempotency keys and namespace ids */
#define JM_MAX_RETRIES_LIMIT 1000
#define JM_MAX_CREATE_MANY 100000   /* jobs in one jm_create_many() */

typedef struct jm_create_opts {
    unsigned int version;        /* JM_CREATE_OPTS_VERSION */
    const char *namespace_id;    /* NULL: none */
    const char *idempotency_key; /* NULL: none; case-sensitive */
    int max_retries;             /* < 0: the manager's default */
    int64_t run_at_ms;           /* 0: now; later: the job stays new until then */
    int priority;                /* higher runs first among due jobs */
} jm_create_opts;

#define JM_CREATE_OPTS_INIT { JM_CREATE_OPTS_VERSION, NULL, NULL, -1, 0, 0 }

/* Creates a job of `type` with `params_json` (a JSON object, NULL = "{}").
 * `o` may be NULL for defaults. On success the new id is written to id_out
 * (required). Errors: JM_EINVAL (bad arguments, or the executor's validate() refused:
 * its message is in jm_last_error()), JM_ENOEXEC (type not registered),
 * JM_EJSON, JM_ETOOBIG (params over JM_MAX_PARAMS_BYTES), JM_ECONFLICT (the
 * key is held by an active job, whose id is written to id_out), JM_EDB,
 * JM_EBUSY, JM_ENOMEM. */
JM_EXTERN int jm_create(jm_manager *m, const char *type, const char *params_json,
                        const jm_create_opts *o, char id_out[JM_JOB_ID_SIZE]);

typedef struct jm_new_job {
    const char *type;
    const char *params_json;
    jm_create_opts opts;
} jm_new_job;

/* Creates `n` jobs (1..JM_MAX_CREATE_MANY) in one transaction: all or
 * nothing. ids_out (n entries) receives the ids. Errors as jm_create(); on
 * JM_ECONFLICT nothing is created and ids_out[i] of the conflicting job
 * holds the active job's id (jm_last_error() names i). Two jobs of one batch
 * with the same key conflict too. */
JM_EXTERN int jm_create_many(jm_manager *m, const jm_new_job *jobs, size_t n,
                             char (*ids_out)[JM_JOB_ID_SIZE]);

/* Reads one job. *out is the caller's: free with jm_job_free().
 * Errors: JM_EINVAL (malformed id), JM_ENOTFOUND, JM_EDB, JM_ENOMEM. */
JM_EXTERN int jm_get(jm_manager *m, const char *id, jm_job **out);

#define JM_FILTER_VERSION 1u
#define JM_LIST_DEFAULT_LIMIT 100
#define JM_LIST_MAX_LIMIT 10000

typedef struct jm_filter {
    unsigned int version;         /* JM_FILTER_VERSION */
    unsigned int statuses;        /* JM_STATUS_BIT() mask; 0 = all */
    const char *type;             /* "FL"; NULL = all */
    const char *namespace_id;     /* NULL = all */
    const char *idempotency_key;  /* NULL = all */
    int64_t created_after_ms;     /* created_at >  this; 0 = unbounded */
    int64_t created_before_ms;    /* created_at <  this; 0 = unbounded */
    const char *after_id;         /* keyset cursor: the last id of the previous
                                     page; NULL = from the start */
    int limit;                    /* 0: JM_LIST_DEFAULT_LIMIT; max JM_LIST_MAX_LIMIT */
    int newest_first;             /* non-zero: newest first */
} jm_filter;

#define JM_FILTER_INIT { JM_FILTER_VERSION, 0, NULL, NULL, NULL, 0, 0, NULL, 0, 0 }

/* Lists jobs matching `f` (NULL: all), in creation order (newest first if
 * asked), one page at a time: pass the last id of a page as after_id to get
 * the next. *out is the caller's: free with jm_job_list_free().
 * Errors: JM_EINVAL (bad filter), JM_ENOTFOUND (after_id names no job),
 * JM_EDB, JM_ENOMEM. */
JM_EXTERN int jm_list(jm_manager *m, const jm_filter *f, jm_job_list **out);

/* Counts jobs matching `f` (after_id and limit are ignored). */
JM_EXTERN int jm_count(jm_manager *m, const jm_filter *f, int64_t *out);

/* Cancels a job. A new, queued or retrying job is cancelled at once. A
 * running job gets a durable cancel request: jm_ctx_is_cancelled() turns
 * true for its executor (in this process at once, in another within one
 * heartbeat), and if its worker dies, recovery ends it cancelled. Asking
 * again while the request stands returns JM_OK.
 * Errors: JM_EINVAL, JM_ENOTFOUND, JM_ESTATE (already finished),
 * JM_ENOTCANCELLABLE (running, and its executor is not cancellable),
 * JM_ENOEXEC (running, and its type is not registered here), JM_EDB. */
JM_EXTERN int jm_cancel(jm_manager *m, const char *id);

/* Requeues a failed or cancelled job by hand: retry count reset to 0,
 * message cleared, due now. Errors: JM_EINVAL, JM_ENOTFOUND, JM_ESTATE,
 * JM_ECONFLICT (its idempotency key is now held by another active job). */
JM_EXTERN int jm_retry(jm_manager *m, const char *id);

/* Deletes completed, failed and cancelled jobs that finished before
 * `finished_before_ms`, in small transactions so writers are not held up.
 * `deleted` (may be NULL) receives the count. */
JM_EXTERN int jm_prune(jm_manager *m, int64_t finished_before_ms, int64_t *deleted);

JM_EXTERN void jm_job_free(jm_job *job);
JM_EXTERN void jm_job_list_free(jm_job_list *list);
JM_EXTERN size_t jm_job_list_count(const jm_job_list *l);
/* Borrowed; NULL if i is out of range. */
JM_EXTERN const jm_job *jm_job_list_at(const jm_job_list *l, size_t i);
/* Non-zero if more jobs match after this page. */
JM_EXTERN int jm_job_list_has_more(const jm_job_list *l);

/* Job accessors. Strings are borrowed from the job and NULL when unset. */
JM_EXTERN const char *jm_job_id(const jm_job *j);
JM_EXTERN const char *jm_job_type(const jm_job *j);
JM_EXTERN jm_status jm_job_status(const jm_job *j);
JM_EXTERN const char *jm_job_namespace(const jm_job *j);
JM_EXTERN const char *jm_job_params(const jm_job *j);
JM_EXTERN const char *jm_job_idempotency_key(const jm_job *j);
JM_EXTERN const char *jm_job_message(const jm_job *j);
JM_EXTERN const char *jm_job_exception_trace(const jm_job *j);
JM_EXTERN const char *jm_job_result(const jm_job *j);     /* metrics JSON */
JM_EXTERN const char *jm_job_checkpoint(const jm_job *j); /* last saved JSON */
JM_EXTERN double jm_job_progress(const jm_job *j);        /* 0..1 */
JM_EXTERN int jm_job_retry_count(const jm_job *j);
JM_EXTERN int jm_job_max_retries(const jm_job *j);
JM_EXTERN int jm_job_priority(const jm_job *j);
JM_EXTERN int64_t jm_job_created_at(const jm_job *j);
JM_EXTERN int64_t jm_job_updated_at(const jm_job *j);
JM_EXTERN int64_t jm_job_started_at(const jm_job *j);  /* 0: never started */
JM_EXTERN int64_t jm_job_finished_at(const jm_job *j); /* 0: not finished */
JM_EXTERN int64_t jm_job_run_at(const jm_job *j);
JM_EXTERN const char *jm_job_node_id(const jm_job *j); /* node that last ran it */
JM_EXTERN int jm_job_attempts(const jm_job *j);        /* times it was claimed */
JM_EXTERN int jm_job_cancel_requested(const jm_job *j);

/* ------------------------------------------------------------------------
 * Inside an executor: the job context
 * ------------------------------------------------------------------------ */

/* The job being run (borrowed, as it was when claimed). */
JM_EXTERN const jm_job *jm_ctx_job(const jm_ctx *ctx);
/* Its parameters, parsed (borrowed). */
JM_EXTERN const cJSON *jm_ctx_params(const jm_ctx *ctx);
/* cfg.host of the manager (may be NULL). */
JM_EXTERN const struct jm_host *jm_ctx_host(const jm_ctx *ctx);
/* Non-zero once the job is cancelled or the manager is stopping. Cheap:
 * check it between batches. */
JM_EXTERN int jm_ctx_is_cancelled(jm_ctx *ctx);
/* Saves `json` (a JSON value) as the job's checkpoint, durably, now. The
 * next run of the job, after a continue, a retry or a crash, reads it with
 * jm_job_checkpoint(jm_ctx_job(ctx)). Errors: JM_EJSON, JM_ETOOBIG,
 * JM_ESTATE (the job is no longer this worker's), JM_EDB. */
JM_EXTERN int jm_ctx_checkpoint(jm_ctx *ctx, const char *json);
/* Reports progress 0..1 (clamped). Persisted at most every 500 ms and at
 * the end of the run. */
JM_EXTERN void jm_ctx_progress(jm_ctx *ctx, double fraction);
/* Logs a line prefixed "[<job id>] ". */
JM_EXTERN void jm_ctx_log(jm_ctx *ctx, jm_log_level level, const char *fmt, ...)
    JM_PRINTF(3, 4);
/* Formats a string that lives until the job's run ends (for decisions).
 * Returns "" if out of memory. */
JM_EXTERN const char *jm_ctx_strf(jm_ctx *ctx, const char *fmt, ...) JM_PRINTF(2, 3);
/* Creates a follow-up job, as jm_create(). */
JM_EXTERN int jm_ctx_create_job(jm_ctx *ctx, const char *type, const char *params_json,
                                const jm_create_opts *o, char id_out[JM_JOB_ID_SIZE]);
/* The manager running the job. */
JM_EXTERN jm_manager *jm_ctx_manager(const jm_ctx *ctx);
/* Now, by the manager's clock (cfg.now_ms): executors compute cut-offs
 * with it so tests can drive time. */
JM_EXTERN int64_t jm_ctx_now(const jm_ctx *ctx);

/* ------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------ */

#define JM_MAX_WORKERS 256

/* Starts a run loop thread and `max_concurrent` worker threads
 * (1..JM_MAX_WORKERS) and returns. Errors: JM_EINVAL, JM_EBUSY (already
 * running), JM_ENOMEM. */
JM_EXTERN int jm_start(jm_manager *m, int max_concurrent);

/* As jm_start(), but runs the loop on the calling thread until jm_stop()
 * is called from another thread (or from an executor); returns JM_OK then. */
JM_EXTERN int jm_run(jm_manager *m, int max_concurrent);

/* Stops claiming jobs, waits up to `drain_ms` for running jobs to end, then
 * tells the rest to stop (jm_ctx_is_cancelled() turns true) and waits for
 * them. A job that returns "cancelled" because of the shutdown goes back to
 * retrying without spending a retry. Thread-safe; from an executor it only
 * asks for the stop and returns. JM_OK also if the manager was not running. */
JM_EXTERN int jm_stop(jm_manager *m, int64_t drain_ms);

/* Runs up to `max_jobs` due jobs one after another on the calling thread,
 * for hosts with their own event loop; *ran (may be NULL) gets how many
 * ran. Also does the periodic recovery. Returns JM_OK with *ran == 0 when
 * nothing is due. */
JM_EXTERN int jm_run_once(jm_manager *m, int max_jobs, int *ran);

/* Runs crash recovery now (it also runs at open and periodically while the
 * manager runs): jobs whose lease expired or whose owner process on this
 * host is gone are requeued or failed by the recovery policy, or ended
 * cancelled if a cancel was accepted. `recovered` (may be NULL) gets the
 * count. */
JM_EXTERN int jm_recover(jm_manager *m, int *recovered);

/* ------------------------------------------------------------------------
 * Metrics
 * ------------------------------------------------------------------------ */

/* Upper bounds (ms) of the run-duration histogram's buckets; the last bucket
 * is +Inf. Prometheus "le" labels use the same bounds. */
#define JM_STATS_BUCKETS 12
#define JM_STATS_BUCKET_BOUNDS_MS                                              \
    { 1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000 }

typedef struct jm_type_stats {
    char type[3];
    int64_t by_status[JM_STATUS_COUNT]; /* jobs of this type in the table now */
    /* Since this manager opened, runs it finished (any outcome): */
    int64_t runs;
    int64_t completed;
    int64_t retries;  /* retry decisions (retrying or max retries reached) */
    int64_t failures; /* runs that ended the job failed */
    int64_t cancelled;
    double duration_sum_ms;
    int64_t duration_max_ms;
    /* Runs whose duration was ≤ bound i (cumulative, as Prometheus wants);
     * the last entry counts every run. */
    int64_t duration_le[JM_STATS_BUCKETS];
} jm_type_stats;

typedef struct jm_stats_report {
    int64_t taken_at_ms;                /* by the manager's clock */
    int64_t by_status[JM_STATUS_COUNT]; /* all jobs in the table now */
    int64_t queue_depth;       /* jobs due now and waiting (new, queued, retrying) */
    int64_t oldest_due_age_ms; /* how long the oldest due job has waited; 0 if none */
    int64_t running;           /* running jobs in the table (any process) */
    int64_t running_here;      /* running in this manager right now */
    int64_t failed_last_hour;  /* jobs that ended failed in the last hour */
    /* Since this manager opened, over all types: */
    int64_t runs, completed, retries, failures, cancelled, recovered;
    size_t ntypes;             /* types seen in the table or run here */
    jm_type_stats *types;      /* ntypes entries, sorted by type */
} jm_stats_report;

/* Takes a snapshot of the manager's metrics: counts from the jobs table
 * (all processes) and counters of this manager. *out is the caller's: free
 * it with jm_stats_free(). Errors: JM_EINVAL, JM_EDB, JM_ENOMEM. */
JM_EXTERN int jm_stats(jm_manager *m, jm_stats_report **out);
JM_EXTERN void jm_stats_free(jm_stats_report *r);

/* Renders a fresh snapshot in the Prometheus text exposition format (0.0.4)
 * into buf (len bytes, always NUL-terminated when len > 0): counters,
 * gauges and a run-duration histogram per type, names starting "jobmgr_".
 * *needed (may be NULL) gets the size the text needs, NUL included, so a
 * caller can size its buffer with buf NULL and len 0.
 * Errors: JM_ETOOBIG (len too small; nothing useful in buf), JM_EINVAL,
 * JM_EDB, JM_ENOMEM. */
JM_EXTERN int jm_metrics_prometheus(jm_manager *m, char *buf, size_t len, size_t *needed);

#ifdef __cplusplus
}
#endif

#endif /* JOBMGR_H */
