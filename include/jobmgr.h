/**
 * @file jobmgr.h
 * @brief jobmgr: an embeddable, persistent job manager.
 *
 * Jobs live in a SQLite table and survive crashes and restarts. A host
 * creates, cancels, lists and inspects jobs; a run loop with a worker pool
 * claims due jobs and hands each to the executor registered for the job's
 * two-letter type prefix.
 *
 * @par Conventions (the whole API follows them)
 *
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

/**
 * @def JM_EXTERN
 * @brief Marks a declaration of the public API: exported from the shared
 * library (default visibility) while the library is built, where everything
 * else is hidden; empty for the library's users.
 */
#if defined(JM_BUILDING_LIBRARY) && defined(__GNUC__)
#define JM_EXTERN __attribute__((visibility("default")))
#else
#define JM_EXTERN
#endif

/**
 * @def JM_PRINTF
 * @brief Lets GCC and Clang check a printf-style format: argument @p fmt is
 * the format, arguments from @p args on are its values. Empty elsewhere.
 */
#if defined(__GNUC__)
#define JM_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define JM_PRINTF(fmt, args)
#endif

/** The library's major version: raised on incompatible changes. */
#define JM_VERSION_MAJOR 0
/** The library's minor version: raised when the API grows. */
#define JM_VERSION_MINOR 1
/** The library's patch version: raised for fixes. */
#define JM_VERSION_PATCH 0
/** The library's version as a string. */
#define JM_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

/**
 * @brief The table of error codes: XX(name, value, description) per code.
 *
 * One table generates the codes, jm_strerror() and jm_err_name(), so they
 * never drift apart. Codes are added at the end and never removed.
 *
 * | code | value | description |
 * | --- | --- | --- |
 * | JM_OK | 0 | success |
 * | JM_EINVAL | -1 | invalid argument |
 * | JM_ENOTFOUND | -2 | not found |
 * | JM_ECONFLICT | -3 | idempotency key held by an active job |
 * | JM_ESTATE | -4 | transition not allowed from the current status |
 * | JM_ENOTCANCELLABLE | -5 | job type cannot be cancelled while running |
 * | JM_ENOEXEC | -6 | no executor registered for that type |
 * | JM_EJSON | -7 | not valid JSON or not a JSON object |
 * | JM_ETOOBIG | -8 | value too large |
 * | JM_EDB | -9 | database error |
 * | JM_EBUSY | -10 | busy |
 * | JM_ENOMEM | -11 | out of memory |
 * | JM_EIO | -12 | input/output error |
 * | JM_ESTOPPED | -13 | manager is stopped |
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

/** The error codes, JM_OK and JM_E*, generated from JM_ERRNO_MAP. */
typedef enum {
#define JM__ERR_ENUM(name, value, text) JM_##name = (value),
    JM_ERRNO_MAP(JM__ERR_ENUM)
#undef JM__ERR_ENUM
} jm_error;

/**
 * @brief A static description of @p code ("not found").
 * @param code  a JM_OK or JM_E* code
 * @return the description; unknown codes give "unknown error". Never NULL.
 */
JM_EXTERN const char *jm_strerror(int code);

/**
 * @brief The code's name without prefix ("ENOTFOUND").
 * @param code  a JM_OK or JM_E* code
 * @return the name, static; never NULL.
 */
JM_EXTERN const char *jm_err_name(int code);

/**
 * @brief The detailed message of the last failure on this thread ("job FL-…
 * not found").
 * @return the message: never NULL; owned by the library and valid until the
 *         next call into the library on this thread. Successful calls do not
 *         clear it.
 */
JM_EXTERN const char *jm_last_error(void);

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

/** The version of jm_allocator this header describes. */
#define JM_ALLOCATOR_VERSION 1u

/**
 * @brief An allocator for jm_set_allocator().
 *
 * Routes every allocation the library makes (and cJSON's, through
 * cJSON_InitHooks). The library never reallocates, so two functions do.
 * SQLite's own allocations are configured apart, with
 * sqlite3_config(SQLITE_CONFIG_MALLOC).
 */
typedef struct jm_allocator {
    unsigned int version; /**< JM_ALLOCATOR_VERSION */
    void *(*malloc_fn)(void *user, size_t size); /**< allocates; NULL when out of memory */
    void (*free_fn)(void *user, void *ptr);      /**< frees what malloc_fn allocated */
    void *user;           /**< handed to both functions */
} jm_allocator;

/**
 * @brief Installs @p a process-wide.
 *
 * Call it before any other jm_ function and while no manager is open:
 * memory must be freed by the allocator that made it. It also replaces
 * cJSON's global hooks.
 * @param a  the allocator (copied), or NULL to restore the C library's
 *           allocator
 * @return JM_OK, or JM_EINVAL for an unknown version or a missing
 *         malloc_fn/free_fn.
 */
JM_EXTERN int jm_set_allocator(const jm_allocator *a);

/**
 * @brief Frees a string or buffer the library handed out.
 * @param p  what the library handed out; NULL is fine
 */
JM_EXTERN void jm_free(void *p);

/* ------------------------------------------------------------------------
 * Types, ids and statuses
 * ------------------------------------------------------------------------ */

/* The built-in job types: a type is its two-letter uppercase prefix. */
/** Built-in job type: flush a table's write buffer into a segment. */
#define JM_FLUSH "FL"
/** Built-in job type: clean up (drop) a table. */
#define JM_CLEANUP "CL"
/** Built-in job type: delete soft-deleted rows past their retention. */
#define JM_RETENTION "RT"
/** Built-in job type: evict stream rows past their TTL. */
#define JM_STREAM_EVICTION "SE"
/** Built-in job type: remove a soft-deleted user and what it owns. */
#define JM_USER_CLEANUP "UC"
/** Built-in job type: merge a table's small segments. */
#define JM_COMPACT "CO"
/** Built-in job type: back a table up. */
#define JM_BACKUP "BK"
/** Built-in job type: restore a table from a backup. */
#define JM_RESTORE "RS"

/** A job id is "<type>-<uuid>", lower-case hex: 39 characters and a NUL.
 * The uuid is time-ordered and ends in the job's sequence number in its
 * database, which makes it unique there. */
#define JM_JOB_ID_SIZE 40

/**
 * @brief Checks that @p id is a well-formed job id.
 * @param id        the id to check
 * @param type_out  if not NULL, receives its type ("FL")
 * @return JM_OK, or JM_EINVAL for anything else.
 */
JM_EXTERN int jm_job_id_parse(const char *id, char type_out[3]);

/** A job's status; docs/design.md's status machine shows the transitions. */
typedef enum {
    JM_STATUS_NEW,       /**< created with a run_at still in the future */
    JM_STATUS_QUEUED,    /**< due, waiting for a worker */
    JM_STATUS_RUNNING,   /**< claimed by a worker */
    JM_STATUS_RETRYING,  /**< failed, due again after its backoff */
    JM_STATUS_COMPLETED, /**< finished well */
    JM_STATUS_FAILED,    /**< finished badly; jm_retry() can requeue it */
    JM_STATUS_CANCELLED, /**< cancelled; jm_retry() can requeue it */
    JM_STATUS_PAUSED     /**< paused by jm_pause_job(); jm_resume_job() requeues it */
} jm_status;

/** The number of statuses in jm_status. */
#define JM_STATUS_COUNT 8

/** Bit of @p status in a jm_filter.statuses mask. */
#define JM_STATUS_BIT(status) (1u << (unsigned)(status))

/**
 * @brief A status's name.
 * @param status  a status
 * @return "new", "queued", "running", "retrying", "completed", "failed",
 *         "cancelled", "paused"; "unknown" for anything else. Never NULL.
 */
JM_EXTERN const char *jm_status_name(jm_status status);

/**
 * @brief Parses a status name as jm_status_name() spells it.
 * @param name  the name
 * @param out   receives the status
 * @return JM_OK, or JM_EINVAL if none.
 */
JM_EXTERN int jm_status_parse(const char *name, jm_status *out);

/* ------------------------------------------------------------------------
 * Manager
 * ------------------------------------------------------------------------ */

/** A manager: one open jobs database, its executors and its workers. */
typedef struct jm_manager jm_manager;
/** A snapshot of one job, read with jm_get() or found in a jm_job_list. */
typedef struct jm_job jm_job;
/** One page of jobs from jm_list(). */
typedef struct jm_job_list jm_job_list;
/** The context of one run of a job, handed to its executor. */
typedef struct jm_ctx jm_ctx;
struct jm_host; /* include/jobmgr/host.h */

/** The level of a log line. */
typedef enum {
    JM_LOG_DEBUG, /**< details for debugging */
    JM_LOG_INFO,  /**< normal events (started, stopped) */
    JM_LOG_WARN,  /**< something went wrong but was handled */
    JM_LOG_ERROR, /**< something failed */
    JM_LOG_OFF    /**< as log_level: log nothing */
} jm_log_level;

/**
 * @brief Receives one finished line; lines about a job begin "[FL-…] ".
 *
 * Called from whichever thread logged, so it must be thread-safe.
 * @param user   cfg.log_user
 * @param level  the line's level
 * @param line   the line, valid during the call
 */
typedef void (*jm_log_fn)(void *user, jm_log_level level, const char *line);

/**
 * @brief A clock: milliseconds since the Unix epoch. Tests pass a fake one.
 * @param user  cfg.now_user
 * @return now, in milliseconds since the Unix epoch.
 */
typedef int64_t (*jm_clock_fn)(void *user);

/** What recovery does with a running job whose worker was lost. */
typedef enum {
    JM_RECOVER_RETRY, /**< a lost running job is requeued as retrying (at-least-once) */
    JM_RECOVER_FAIL   /**< a lost running job fails with "Server restarted" */
} jm_recovery_policy;

/** What an acknowledged write survives (jm_config.durability). */
typedef enum {
    /** A create, outcome, cancel, retry or checkpoint that returned survives
     * a power cut: every commit is synced (SQLite synchronous=FULL). */
    JM_DURABLE_SYNC,
    /** It survives a crash of the process, not of the machine: commits are
     * not synced (WAL with synchronous=NORMAL), so a power cut may lose the
     * last moments before it, never more, and never leaves the database
     * damaged. Several times faster to write one job at a time. */
    JM_DURABLE_PROCESS
} jm_durability;

/** The version of jm_config this header describes. */
#define JM_CONFIG_VERSION 3u

/* Defaults; docs/embedding.md's configuration table lists them too. */
/** Default of jm_config.max_retries. */
#define JM_DEFAULT_MAX_RETRIES 3
/** Default of jm_config.backoff_base_ms. */
#define JM_DEFAULT_BACKOFF_BASE_MS 1000
/** Default of jm_config.backoff_max_ms. */
#define JM_DEFAULT_BACKOFF_MAX_MS 300000
/** Default of jm_config.backoff_jitter. */
#define JM_DEFAULT_BACKOFF_JITTER 0.2
/** Default of jm_config.lease_ms. */
#define JM_DEFAULT_LEASE_MS 30000
/** Default of jm_config.poll_interval_ms. */
#define JM_DEFAULT_POLL_INTERVAL_MS 1000
/** Default of jm_config.busy_timeout_ms. */
#define JM_DEFAULT_BUSY_TIMEOUT_MS 5000
/** Default of jm_config.policy_interval_ms: 10 s. */
#define JM_DEFAULT_POLICY_INTERVAL_MS 10000

/** A manager's configuration for jm_open(); start from JM_CONFIG_INIT. */
typedef struct jm_config {
    unsigned int version;      /**< JM_CONFIG_VERSION */
    const char *db_path;       /**< the jobs database file (SQLite); exactly
                                    one of db_path and db_url is set */
    const char *node_id;       /**< this host's name; NULL: gethostname(). All
                                    processes of one host must share it, so a
                                    dead process's jobs are recovered at once */
    int max_retries;           /**< default per job; 0..1000 */
    int64_t backoff_base_ms;   /**< first retry delay */
    int64_t backoff_max_ms;    /**< cap of the exponential delay */
    double backoff_jitter;     /**< 0..1: a delay is cut by up to this fraction */
    int64_t lease_ms;          /**< a running job's lease; renewed every lease/3 */
    int64_t poll_interval_ms;  /**< how often idle workers look for jobs created
                                    by other processes */
    jm_recovery_policy recovery; /**< what recovery does with a lost running job */
    jm_log_fn log_fn;          /**< NULL: stderr */
    void *log_user;            /**< handed to log_fn */
    jm_log_level log_level;    /**< lines below it are dropped */
    const struct jm_host *host; /**< handed to executors by jm_ctx_host() */
    jm_clock_fn now_ms;        /**< NULL: the system clock */
    void *now_user;            /**< handed to now_ms */
    int64_t busy_timeout_ms;   /**< how long to wait for another writer before
                                    JM_EBUSY */
    const char *sqlite_vfs;    /**< NULL: SQLite's default VFS */
    jm_durability durability;  /**< JM_DURABLE_SYNC (default) or JM_DURABLE_PROCESS */
    int64_t policy_interval_ms; /**< how often the run loop evaluates policies
                                    (with a host of version 2 or later) */
    /* Version 2: */
    int high_workers;          /**< workers of jm_start() kept for jobs of
                                    JM_CLASS_HIGH; 0: none (fewer than
                                    max_concurrent) */
    /* Version 3: */
    const char *db_url;        /**< a PostgreSQL database: a libpq connection
                                    string ("host=/run/pg dbname=app") or URI
                                    ("postgresql://u@h/app"); NULL: db_path */
    const char *pg_schema;     /**< the schema holding the jobs tables on
                                    PostgreSQL, 1..48 of a-z, 0-9 and _, not
                                    starting with a digit or "pg_";
                                    NULL: "jobmgr" */
} jm_config;

/** Initialiser of jm_config: every default, no database path. */
#define JM_CONFIG_INIT                                                         \
    {                                                                          \
        JM_CONFIG_VERSION, NULL, NULL, JM_DEFAULT_MAX_RETRIES,                 \
            JM_DEFAULT_BACKOFF_BASE_MS, JM_DEFAULT_BACKOFF_MAX_MS,             \
            JM_DEFAULT_BACKOFF_JITTER, JM_DEFAULT_LEASE_MS,                    \
            JM_DEFAULT_POLL_INTERVAL_MS, JM_RECOVER_RETRY, NULL, NULL,         \
            JM_LOG_WARN, NULL, NULL, NULL, JM_DEFAULT_BUSY_TIMEOUT_MS, NULL,   \
            JM_DURABLE_SYNC, JM_DEFAULT_POLICY_INTERVAL_MS, 0, NULL, NULL      \
    }

/**
 * @brief Opens (creating if needed) the jobs database at cfg->db_path.
 *
 * Creates or migrates its schema in one transaction, and recovers jobs left
 * running by dead processes. Starts one thread, ended by jm_close(), that
 * checkpoints the database's write-ahead log on a connection of its own,
 * so that no create or outcome waits for a checkpoint inside its commit.
 * @param cfg  the configuration; copied (its strings too)
 * @param out  on success, a manager to close with jm_close()
 * @return JM_OK, or JM_EINVAL (bad config), JM_EDB (not a jobs database,
 *         newer schema), JM_EIO, JM_EBUSY, JM_ENOMEM.
 */
JM_EXTERN int jm_open(const jm_config *cfg, jm_manager **out);

/**
 * @brief Stops the workers, then frees everything.
 *
 * Stops as jm_stop(m, 0): running jobs are asked to stop and go back to
 * retrying without spending a retry. Must not be called from an executor.
 * @param m  the manager; NULL is fine
 */
JM_EXTERN void jm_close(jm_manager *m);

/* ------------------------------------------------------------------------
 * Executors
 * ------------------------------------------------------------------------ */

/** What an executor's run ended in; see the jm_decision_*() functions. */
typedef enum {
    JM_DECISION_COMPLETED, /**< done: jm_decision_completed() */
    JM_DECISION_RETRY,     /**< failed this time, try again: jm_decision_retry() */
    JM_DECISION_FAILED,    /**< failed for good: jm_decision_failed() */
    JM_DECISION_CANCELLED, /**< stopped on a cancel: jm_decision_cancelled() */
    JM_DECISION_CONTINUE   /**< one batch done, more remains: jm_decision_continue() */
} jm_decision_kind;

/**
 * @brief What an executor's run ended in.
 *
 * Build it with the jm_decision_*() functions. Strings are borrowed: the
 * manager copies them when execute() returns, so literals and jm_ctx_strf()
 * results are fine.
 */
typedef struct jm_decision {
    jm_decision_kind kind;    /**< what the run ended in */
    const char *message;      /**< ≤ 1000 bytes kept (truncated, marked) */
    const char *trace;        /**< ≤ 10000 bytes kept (truncated, marked) */
    const char *metrics_json; /**< a JSON object stored as the job's result;
                                   may be set on any decision */
    int64_t delay_ms;         /**< retry: backoff, < 0 = the manager's policy;
                                   continue: delay before the next run */
} jm_decision;

/**
 * @brief Done.
 * @param message       the job's message; may be NULL
 * @param metrics_json  may be NULL; becomes the job's result
 * @return the decision, for execute() to return.
 */
JM_EXTERN jm_decision jm_decision_completed(const char *message, const char *metrics_json);
/**
 * @brief Failed this time, try again.
 *
 * Spends a retry; after max_retries the job fails with "Max retries
 * exceeded".
 * @param message     the job's message; may be NULL
 * @param trace       the exception trace; may be NULL
 * @param backoff_ms  try again after this long, or by the manager's
 *                    exponential policy if negative
 * @return the decision, for execute() to return.
 */
JM_EXTERN jm_decision jm_decision_retry(const char *message, const char *trace,
                                        int64_t backoff_ms);
/**
 * @brief Failed for good.
 * @param message  the job's message; may be NULL
 * @param trace    the exception trace; may be NULL
 * @return the decision, for execute() to return.
 */
JM_EXTERN jm_decision jm_decision_failed(const char *message, const char *trace);
/**
 * @brief Stopped because jm_ctx_is_cancelled() turned true.
 * @param message  the job's message; may be NULL
 * @return the decision, for execute() to return.
 */
JM_EXTERN jm_decision jm_decision_cancelled(const char *message);
/**
 * @brief One batch done, more remains: back to queued, due after
 * @p delay_ms, keeping checkpoint and message. Spends no retry.
 * @param message   the job's message; may be NULL
 * @param delay_ms  delay before the next run
 * @return the decision, for execute() to return.
 */
JM_EXTERN jm_decision jm_decision_continue(const char *message, int64_t delay_ms);

/** The version of jm_executor this header describes. */
#define JM_EXECUTOR_VERSION 2u

/** A job type's priority class: which workers may take its jobs, and which
 *  I/O budget it spends (jm_set_rate_limit()). */
typedef enum {
    JM_CLASS_NORMAL, /**< any worker but those jm_config.high_workers keeps */
    JM_CLASS_HIGH    /**< any worker: high workers take only these */
} jm_class;

/** The number of classes in jm_class. */
#define JM_CLASS_COUNT 2

/** The longest resource name (jm_create_opts.resource), in bytes. */
#define JM_MAX_RESOURCE_BYTES 255

/**
 * @brief An executor: the code behind one job type.
 *
 * The manager never calls one executor's functions for the same job
 * concurrently, but runs different jobs of a type on several threads at
 * once: execute() must be thread-safe with respect to `self`.
 */
typedef struct jm_executor {
    unsigned int version; /**< JM_EXECUTOR_VERSION */
    const char *type;     /**< two uppercase letters: "FL" */
    const char *name;     /**< "flush": for logs and listings */
    int cancellable;      /**< 0: jm_cancel() of a running job is refused */
    /** Checks parameters at jm_create(). Return 0 to accept; non-zero to
     * refuse, with a message written to err (NUL-terminated, errlen bytes).
     * May be NULL (anything that is a JSON object is accepted). */
    int (*validate)(void *self, const cJSON *params, char *err, size_t errlen);
    /** Runs the job once. Required. */
    jm_decision (*execute)(void *self, jm_ctx *ctx);
    /** Optional: called from another thread when the running job is
     * cancelled or the manager stops, to nudge a blocked execute() (signal
     * a condition, close a socket). It runs under the manager's internal
     * lock: it must return quickly and must not call jm_ functions other
     * than jm_ctx_job() and jm_ctx_params(). */
    void (*cancel)(void *self, jm_ctx *ctx);
    /* Version 2: */
    jm_class priority_class; /**< JM_CLASS_NORMAL or JM_CLASS_HIGH */
    /** Optional: the resource a job acts on when its creator names none
     * (jm_create_opts.resource): write it to buf (NUL-terminated, at most
     * JM_MAX_RESOURCE_BYTES) and return 0, or return non-zero for none.
     * Called at jm_create() after validate(). */
    int (*resource)(void *self, const cJSON *params, char *buf, size_t buflen);
} jm_executor;

/**
 * @brief Registers @p ex for its type, with @p self handed back to its
 * functions.
 *
 * May be called while the manager runs.
 * @param m     the manager
 * @param ex    the executor; copied (its strings must outlive the manager)
 * @param self  handed back to the executor's functions
 * @return JM_OK, or JM_EINVAL (NULL, wrong version, malformed type, missing
 *         execute), JM_ECONFLICT (type already registered).
 */
JM_EXTERN int jm_register(jm_manager *m, const jm_executor *ex, void *self);

/**
 * @brief Whether an executor is registered for @p type in this manager.
 * @param m     the manager
 * @param type  a job type ("FL")
 * @return 1 if an executor is registered for @p type, else 0.
 */
JM_EXTERN int jm_is_registered(jm_manager *m, const char *type);

/**
 * @brief Registers the eight built-in executors.
 *
 * They are flush (FL), cleanup (CL), retention (RT), stream eviction (SE),
 * user cleanup (UC), compact (CO), backup (BK) and restore (RS). They reach
 * the engine's storage through cfg.host (include/jobmgr/host.h); their jobs
 * fail with a clear message if the manager has no host.
 * @param m  the manager
 * @return JM_OK, or errors as jm_register(): JM_ECONFLICT if one of the
 *         types is already registered (then none is).
 */
JM_EXTERN int jm_register_builtin(jm_manager *m);

/* ------------------------------------------------------------------------
 * Jobs
 * ------------------------------------------------------------------------ */

/** The version of jm_create_opts this header describes. */
#define JM_CREATE_OPTS_VERSION 3u

/* Limits. */
/** The largest job parameters, in bytes of JSON. */
#define JM_MAX_PARAMS_BYTES (512 * 1024)
/** The longest job message kept, in bytes (longer ones are truncated). */
#define JM_MAX_MESSAGE_BYTES 1000
/** The longest exception trace kept, in bytes (longer ones are truncated). */
#define JM_MAX_TRACE_BYTES 10000
/** The longest idempotency key or namespace id, in bytes. */
#define JM_MAX_KEY_BYTES 255
/** The largest max_retries, of a job or of the manager. */
#define JM_MAX_RETRIES_LIMIT 1000
/** The most jobs in one jm_create_many(). */
#define JM_MAX_CREATE_MANY 100000

/** Options of jm_create(); start from JM_CREATE_OPTS_INIT. */
typedef struct jm_create_opts {
    unsigned int version;        /**< JM_CREATE_OPTS_VERSION */
    const char *namespace_id;    /**< NULL: none */
    const char *idempotency_key; /**< NULL: none; case-sensitive */
    int max_retries;             /**< < 0: the manager's default */
    int64_t run_at_ms;           /**< 0: now; later: the job stays new until then */
    int priority;                /**< higher runs first among due jobs */
    /* Version 2: */
    const char *resource;        /**< what the job acts on ("app.orders"), for
                                      jm_conflict_set() and jm_limit_set();
                                      NULL: the executor's resource() hook's,
                                      else none. ≤ JM_MAX_RESOURCE_BYTES */
    /* Version 3: */
    const char *node_id;         /**< only the managers of this node_id
                                      (jm_config.node_id) run the job, as a
                                      flush of a node-local buffer needs;
                                      NULL: any node */
} jm_create_opts;

/** Initialiser of jm_create_opts: no namespace or key, the manager's
 *  max_retries, due now, priority 0, the executor's resource. */
#define JM_CREATE_OPTS_INIT { JM_CREATE_OPTS_VERSION, NULL, NULL, -1, 0, 0, NULL, NULL }

/**
 * @brief Creates a job of @p type with @p params_json.
 *
 * @param m            the manager
 * @param type         a registered job type ("FL")
 * @param params_json  a JSON object, NULL = "{}"
 * @param o            may be NULL for defaults
 * @param id_out       required; on success the new id is written to it
 * @return JM_OK, or JM_EINVAL (bad arguments, or the executor's validate()
 *         refused: its message is in jm_last_error()), JM_ENOEXEC (type not
 *         registered), JM_EJSON, JM_ETOOBIG (params over
 *         JM_MAX_PARAMS_BYTES), JM_ECONFLICT (the key is held by an active
 *         job, whose id is written to id_out), JM_EDB, JM_EBUSY, JM_ENOMEM,
 *         JM_EIO (a full disk or an I/O error).
 */
JM_EXTERN int jm_create(jm_manager *m, const char *type, const char *params_json,
                        const jm_create_opts *o, char id_out[JM_JOB_ID_SIZE]);

/** One job of a jm_create_many() batch: the arguments of one jm_create(). */
typedef struct jm_new_job {
    const char *type;        /**< a registered job type */
    const char *params_json; /**< a JSON object, NULL = "{}" */
    jm_create_opts opts;     /**< start from JM_CREATE_OPTS_INIT */
} jm_new_job;

/**
 * @brief Creates @p n jobs in one transaction: all or nothing.
 *
 * Two jobs of one batch with the same key conflict too.
 * @param m        the manager
 * @param jobs     the jobs to create, @p n entries
 * @param n        1..JM_MAX_CREATE_MANY
 * @param ids_out  n entries; receives the ids
 * @return JM_OK, or errors as jm_create(), JM_EIO (a full disk or an I/O
 *         error) among them; on JM_ECONFLICT nothing is created and
 *         ids_out[i] of the conflicting job holds the active job's id
 *         (jm_last_error() names i).
 */
JM_EXTERN int jm_create_many(jm_manager *m, const jm_new_job *jobs, size_t n,
                             char (*ids_out)[JM_JOB_ID_SIZE]);

/**
 * @brief Reads one job.
 * @param m    the manager
 * @param id   the job's id
 * @param out  receives the job; *out is the caller's: free with jm_job_free()
 * @return JM_OK, or JM_EINVAL (malformed id), JM_ENOTFOUND, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_get(jm_manager *m, const char *id, jm_job **out);

/** The version of jm_filter this header describes. */
#define JM_FILTER_VERSION 1u
/** The page size of jm_list() when jm_filter.limit is 0. */
#define JM_LIST_DEFAULT_LIMIT 100
/** The largest page of jm_list(). */
#define JM_LIST_MAX_LIMIT 10000

/** Which jobs jm_list() and jm_count() see; start from JM_FILTER_INIT. */
typedef struct jm_filter {
    unsigned int version;         /**< JM_FILTER_VERSION */
    unsigned int statuses;        /**< JM_STATUS_BIT() mask; 0 = all */
    const char *type;             /**< "FL"; NULL = all */
    const char *namespace_id;     /**< NULL = all */
    const char *idempotency_key;  /**< NULL = all */
    int64_t created_after_ms;     /**< created_at >  this; 0 = unbounded */
    int64_t created_before_ms;    /**< created_at <  this; 0 = unbounded */
    const char *after_id;         /**< keyset cursor: the last id of the previous
                                       page; NULL = from the start */
    int limit;                    /**< 0: JM_LIST_DEFAULT_LIMIT; max JM_LIST_MAX_LIMIT */
    int newest_first;             /**< non-zero: newest first */
} jm_filter;

/** Initialiser of jm_filter: every job, first page, default page size. */
#define JM_FILTER_INIT { JM_FILTER_VERSION, 0, NULL, NULL, NULL, 0, 0, NULL, 0, 0 }

/**
 * @brief Lists jobs matching @p f, one page at a time.
 *
 * Jobs come in creation order (newest first if asked); pass the last id of
 * a page as after_id to get the next.
 * @param m    the manager
 * @param f    the filter; NULL: all
 * @param out  receives the page; *out is the caller's: free with
 *             jm_job_list_free()
 * @return JM_OK, or JM_EINVAL (bad filter), JM_ENOTFOUND (after_id names no
 *         job), JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_list(jm_manager *m, const jm_filter *f, jm_job_list **out);

/**
 * @brief Counts jobs matching @p f (after_id and limit are ignored).
 * @param m    the manager
 * @param f    the filter; NULL: all
 * @param out  receives the count
 * @return JM_OK, or JM_EINVAL (bad filter), JM_EDB.
 */
JM_EXTERN int jm_count(jm_manager *m, const jm_filter *f, int64_t *out);

/**
 * @brief Cancels a job.
 *
 * A new, queued or retrying job is cancelled at once. A running job gets a
 * durable cancel request: jm_ctx_is_cancelled() turns true for its executor
 * (in this process at once, in another within one heartbeat), and if its
 * worker dies, recovery ends it cancelled. Asking again while the request
 * stands returns JM_OK.
 * @param m   the manager
 * @param id  the job's id
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND, JM_ESTATE (already finished),
 *         JM_ENOTCANCELLABLE (running, and its executor is not
 *         cancellable), JM_ENOEXEC (running, and its type is not registered
 *         here), JM_EDB, JM_EIO (a full disk or an I/O error).
 */
JM_EXTERN int jm_cancel(jm_manager *m, const char *id);

/**
 * @brief Requeues a failed or cancelled job by hand: retry count reset to 0,
 * message cleared, due now.
 * @param m   the manager
 * @param id  the job's id
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND, JM_ESTATE, JM_ECONFLICT (its
 *         idempotency key is now held by another active job), JM_EDB,
 *         JM_EIO (a full disk or an I/O error).
 */
JM_EXTERN int jm_retry(jm_manager *m, const char *id);

/**
 * @brief Deletes completed, failed and cancelled jobs that finished before
 * @p finished_before_ms, in small transactions so writers are not held up.
 * @param m                   the manager
 * @param finished_before_ms  the cut-off time (not negative)
 * @param deleted             may be NULL; receives the count
 * @return JM_OK, or JM_EINVAL, JM_EDB, JM_EBUSY.
 */
JM_EXTERN int jm_prune(jm_manager *m, int64_t finished_before_ms, int64_t *deleted);

/**
 * @brief Frees a job jm_get() handed out.
 * @param job  the job; NULL is fine
 */
JM_EXTERN void jm_job_free(jm_job *job);
/**
 * @brief Frees a page jm_list() handed out, and the jobs in it.
 * @param list  the page; NULL is fine
 */
JM_EXTERN void jm_job_list_free(jm_job_list *list);
/**
 * @brief The number of jobs in a page.
 * @param l  the page
 * @return how many jobs it holds.
 */
JM_EXTERN size_t jm_job_list_count(const jm_job_list *l);
/**
 * @brief The job at position @p i of a page.
 * @param l  the page
 * @param i  0..jm_job_list_count() - 1
 * @return the job, borrowed from the page; NULL if i is out of range.
 */
JM_EXTERN const jm_job *jm_job_list_at(const jm_job_list *l, size_t i);
/**
 * @brief Whether more jobs match after this page.
 * @param l  the page
 * @return non-zero if more jobs match after this page.
 */
JM_EXTERN int jm_job_list_has_more(const jm_job_list *l);

/* Job accessors. Strings are borrowed from the job and NULL when unset. */
/**
 * @brief The job's id.
 * @param j  the job
 * @return the id; borrowed from the job.
 */
JM_EXTERN const char *jm_job_id(const jm_job *j);
/**
 * @brief The job's type ("FL").
 * @param j  the job
 * @return the type; borrowed from the job.
 */
JM_EXTERN const char *jm_job_type(const jm_job *j);
/**
 * @brief The job's status.
 * @param j  the job
 * @return the status.
 */
JM_EXTERN jm_status jm_job_status(const jm_job *j);
/**
 * @brief The job's namespace.
 * @param j  the job
 * @return the namespace id, or NULL when unset; borrowed from the job.
 */
JM_EXTERN const char *jm_job_namespace(const jm_job *j);
/**
 * @brief The job's parameters (a JSON object).
 * @param j  the job
 * @return the parameters as JSON text; borrowed from the job.
 */
JM_EXTERN const char *jm_job_params(const jm_job *j);
/**
 * @brief The job's idempotency key.
 * @param j  the job
 * @return the key, or NULL when unset; borrowed from the job.
 */
JM_EXTERN const char *jm_job_idempotency_key(const jm_job *j);
/**
 * @brief The job's message.
 * @param j  the job
 * @return the message, or NULL when unset; borrowed from the job.
 */
JM_EXTERN const char *jm_job_message(const jm_job *j);
/**
 * @brief The job's exception trace.
 * @param j  the job
 * @return the trace, or NULL when unset; borrowed from the job.
 */
JM_EXTERN const char *jm_job_exception_trace(const jm_job *j);
/**
 * @brief The job's result: metrics JSON.
 * @param j  the job
 * @return the metrics JSON, or NULL when unset; borrowed from the job.
 */
JM_EXTERN const char *jm_job_result(const jm_job *j);
/**
 * @brief The job's checkpoint: the last saved JSON.
 * @param j  the job
 * @return the last saved JSON, or NULL when unset; borrowed from the job.
 */
JM_EXTERN const char *jm_job_checkpoint(const jm_job *j);
/**
 * @brief The job's progress.
 * @param j  the job
 * @return 0..1.
 */
JM_EXTERN double jm_job_progress(const jm_job *j);
/**
 * @brief How many retries the job has spent.
 * @param j  the job
 * @return the retry count.
 */
JM_EXTERN int jm_job_retry_count(const jm_job *j);
/**
 * @brief How many retries the job may spend.
 * @param j  the job
 * @return its max_retries.
 */
JM_EXTERN int jm_job_max_retries(const jm_job *j);
/**
 * @brief The job's priority (higher runs first among due jobs).
 * @param j  the job
 * @return the priority.
 */
JM_EXTERN int jm_job_priority(const jm_job *j);
/**
 * @brief When the job was created.
 *
 * Creation times never decrease in creation order: a job created while
 * the clock reads earlier than an older job's creation time (a clock
 * stepped back, another process's clock) gets that older time. This is
 * what makes jm_filter's created_after_ms / created_before_ms exact and
 * fast on any table size.
 * @param j  the job
 * @return ms since the Unix epoch.
 */
JM_EXTERN int64_t jm_job_created_at(const jm_job *j);
/**
 * @brief When the job's row last changed.
 * @param j  the job
 * @return ms since the Unix epoch.
 */
JM_EXTERN int64_t jm_job_updated_at(const jm_job *j);
/**
 * @brief When the job last started running.
 * @param j  the job
 * @return ms since the Unix epoch; 0: never started.
 */
JM_EXTERN int64_t jm_job_started_at(const jm_job *j);
/**
 * @brief When the job finished.
 * @param j  the job
 * @return ms since the Unix epoch; 0: not finished.
 */
JM_EXTERN int64_t jm_job_finished_at(const jm_job *j);
/**
 * @brief When the job is (or was) due.
 * @param j  the job
 * @return ms since the Unix epoch.
 */
JM_EXTERN int64_t jm_job_run_at(const jm_job *j);
/**
 * @brief The node that last ran the job.
 * @param j  the job
 * @return the node id, or NULL when unset; borrowed from the job.
 */
JM_EXTERN const char *jm_job_node_id(const jm_job *j);
/**
 * @brief The schedule that created the job.
 * @param j  the job
 * @return the schedule's id, or NULL for a job no schedule created;
 *         borrowed from the job.
 */
JM_EXTERN const char *jm_job_schedule_id(const jm_job *j);
/**
 * @brief The fire time the job was created for, by its schedule.
 * @param j  the job
 * @return ms since the epoch, or 0 for a job no schedule created.
 */
JM_EXTERN int64_t jm_job_fire_time(const jm_job *j);
/**
 * @brief How many times the job was claimed.
 * @param j  the job
 * @return times it was claimed.
 */
JM_EXTERN int jm_job_attempts(const jm_job *j);
/**
 * @brief When the lease of a running job ends, unless its owner renews it.
 *
 * Another node may recover the job after that time; on the owner's own
 * node a live owner keeps its jobs whatever the clock says.
 * @param j  the job
 * @return ms since the epoch, or 0 if the job is not running.
 */
JM_EXTERN int64_t jm_job_lease_until(const jm_job *j);
/**
 * @brief Whether a cancel request stands for the job.
 * @param j  the job
 * @return non-zero if a cancel was requested.
 */
JM_EXTERN int jm_job_cancel_requested(const jm_job *j);

/**
 * @brief The resource the job acts on (jm_create_opts.resource).
 * @param j  the job
 * @return the resource, or NULL if none; owned by the job.
 */
JM_EXTERN const char *jm_job_resource(const jm_job *j);

/**
 * @brief What holds a due job back, as the last claim that passed it saw.
 * @param j  the job
 * @return the id of the running job that holds its resource, or
 *         "limit:<type>|*@<resource>|*" naming the limit it waits for, or
 *         "paused:type:<type>" or "paused:resource:<resource>" naming the
 *         pause; NULL if nothing holds it (a JM_PAUSE_ALL pause stops
 *         claims before any job is looked at, so it marks none).
 *         Owned by the job.
 */
JM_EXTERN const char *jm_job_blocked_by(const jm_job *j);

/**
 * @brief Whether a pause of the job was requested (jm_pause_job()).
 * @param j  the job
 * @return 1 if a pause request stands, else 0.
 */
JM_EXTERN int jm_job_pause_requested(const jm_job *j);

/* ------------------------------------------------------------------------
 * Schedules
 * ------------------------------------------------------------------------ */

/** Room for a schedule id and its NUL ("SC-" and a UUID, as job ids). */
#define JM_SCHEDULE_ID_SIZE JM_JOB_ID_SIZE
/** The longest schedule name, in bytes. */
#define JM_SCHEDULE_NAME_MAX 200
/** How late a fire time may be and still count as on time, not missed. */
#define JM_MISFIRE_GRACE_MS 60000
/** The most missed fire times JM_MISFIRE_CATCH_UP may run. */
#define JM_CATCH_UP_MAX 1000

/** What a fire does while the schedule's last job is still active. */
typedef enum {
    JM_OVERLAP_SKIP,      /**< create nothing for this fire time */
    JM_OVERLAP_QUEUE_ONE, /**< create one only if none of its jobs is waiting */
    JM_OVERLAP_ALLOW      /**< create one anyway */
} jm_overlap;

/** What fire times missed while no manager ran, or while paused, become. */
typedef enum {
    JM_MISFIRE_SKIP,     /**< nothing: go on from the next future time */
    JM_MISFIRE_RUN_ONCE, /**< one job, for the latest missed time */
    JM_MISFIRE_CATCH_UP  /**< a job for each missed time, at most catch_up_max */
} jm_misfire;

/** The version of jm_schedule_spec this header describes. */
#define JM_SCHEDULE_SPEC_VERSION 1u

/**
 * A schedule: the job to create and when. Exactly one of @c cron and
 * @c interval_ms is set. Start from JM_SCHEDULE_SPEC_INIT.
 */
typedef struct jm_schedule_spec {
    unsigned int version;    /**< JM_SCHEDULE_SPEC_VERSION */
    const char *name;        /**< unique, 1..JM_SCHEDULE_NAME_MAX bytes, no control characters */
    const char *type;        /**< the job type, registered */
    const char *params_json; /**< the job's parameters, NULL = "{}" */
    jm_create_opts opts;     /**< the job's options; run_at_ms must be 0 */
    const char *cron;        /**< a cron expression (see jm_schedule_next()) */
    const char *tz;          /**< the zone @c cron is read in: NULL or "UTC", or an IANA name */
    int64_t interval_ms;     /**< or: every interval_ms (≥ 1000) ... */
    int64_t anchor_ms;       /**< ... at anchor_ms + k·interval_ms; 0: from creation */
    int64_t jitter_ms;       /**< each job runs up to this much after its fire time, at random */
    jm_overlap overlap;      /**< default JM_OVERLAP_SKIP */
    jm_misfire misfire;      /**< default JM_MISFIRE_SKIP */
    int catch_up_max;        /**< for JM_MISFIRE_CATCH_UP: 1..JM_CATCH_UP_MAX */
    int pause_after_failures; /**< pause after this many failed jobs in a row; 0: never */
    int paused;              /**< create it paused */
} jm_schedule_spec;

/** Initialiser of jm_schedule_spec: no trigger yet, UTC, skip overlaps and misfires. */
#define JM_SCHEDULE_SPEC_INIT                                                  \
    { JM_SCHEDULE_SPEC_VERSION, NULL, NULL, NULL, JM_CREATE_OPTS_INIT, NULL, NULL, 0, 0, 0, \
      JM_OVERLAP_SKIP, JM_MISFIRE_SKIP, 0, 0, 0 }

/** A snapshot of one schedule, from jm_schedule_get() or jm_schedule_list(). */
typedef struct jm_schedule {
    char id[JM_SCHEDULE_ID_SIZE]; /**< "SC-…" */
    jm_schedule_spec spec;      /**< its strings live as long as the snapshot */
    int64_t next_fire_ms;       /**< the next fire time (a missed one while overdue) */
    int64_t last_fire_ms;       /**< the last fire time that created a job; 0: none */
    char last_job_id[JM_JOB_ID_SIZE]; /**< that job; "" if none */
    int consecutive_failures;   /**< its jobs that failed in a row */
    int64_t created_at;         /**< ms since the epoch */
    int64_t updated_at;         /**< ms since the epoch */
} jm_schedule;

/**
 * @brief The first @p n fire times of a cron expression strictly after
 * @p from_ms. Pure: reads only the zone's file.
 *
 * Five fields (minute, hour, day of month, month, day of week) or six with
 * a leading seconds field; each a `*`, a value, a range `a-b`, either of
 * `*` and a range followed by `/step`, or a comma list of those; months and days of the
 * week by number or by three-letter English name; day 0 and 7 are Sunday.
 * When both day fields are restricted, a day matching either fires (as in
 * Vixie cron). `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`,
 * `@yearly` (`@annually`). Daylight saving: see docs/schedules.md.
 * @param expr     the expression
 * @param tz       NULL or "UTC", or an IANA zone name ("Europe/Berlin")
 * @param from_ms  ms since the epoch
 * @param n        how many, ≥ 1
 * @param out_ms   n entries; receives the fire times, ascending
 * @return JM_OK, or JM_EINVAL (bad expression or zone: the reason is in
 *         jm_last_error(); or @p from_ms outside the years 1 to 9999),
 *         JM_ENOTFOUND (a fire time not followed by another within eight
 *         years, as with "0 0 30 2 *", which never fires), JM_ENOMEM.
 */
JM_EXTERN int jm_schedule_next(const char *expr, const char *tz, int64_t from_ms, size_t n,
                               int64_t *out_ms);

/**
 * @brief Creates a schedule: a row in the jobs database that every running
 * manager with an executor for its type fires.
 *
 * Its first fire time is the first after now. Each fire time gets at most
 * one job, whichever managers and processes fire it; the job carries the
 * schedule's id and the fire time (jm_job_schedule_id(),
 * jm_job_fire_time()).
 * @param m       the manager
 * @param spec    the schedule; its strings are copied
 * @param id_out  receives the schedule's id ("SC-…")
 * @return JM_OK, or JM_EINVAL (a bad spec: the reason is in
 *         jm_last_error()), the errors of jm_create() for its job template,
 *         JM_ECONFLICT (the name is taken), JM_EDB, JM_EBUSY, JM_ENOMEM,
 *         JM_EIO.
 */
JM_EXTERN int jm_schedule_create(jm_manager *m, const jm_schedule_spec *spec,
                                 char id_out[JM_SCHEDULE_ID_SIZE]);
/**
 * @brief Reads one schedule.
 * @param m           the manager
 * @param id_or_name  its id or its name
 * @param out         receives it; free with jm_schedule_free()
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_schedule_get(jm_manager *m, const char *id_or_name, jm_schedule **out);
/**
 * @brief Reads every schedule, by name.
 * @param m    the manager
 * @param out  receives an array of *n; free with jm_schedule_list_free()
 * @param n    receives the count
 * @return JM_OK, or JM_EINVAL, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_schedule_list(jm_manager *m, jm_schedule ***out, size_t *n);
/**
 * @brief Replaces a schedule's spec (its name included).
 *
 * With the same trigger it keeps its next fire time; with a new one it
 * fires first at the new trigger's first time after now. Jobs already
 * created are not touched.
 * @param m           the manager
 * @param id_or_name  its id or its name
 * @param spec        the new spec
 * @return JM_OK, or as jm_schedule_create(), JM_ENOTFOUND.
 */
JM_EXTERN int jm_schedule_update(jm_manager *m, const char *id_or_name,
                                 const jm_schedule_spec *spec);
/**
 * @brief Deletes a schedule. Its jobs stay, with its id.
 * @param m           the manager
 * @param id_or_name  its id or its name
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND, JM_EDB, JM_EBUSY, JM_EIO.
 */
JM_EXTERN int jm_schedule_delete(jm_manager *m, const char *id_or_name);
/**
 * @brief Pauses a schedule: it fires no more until resumed. Its fire times
 * that pass meanwhile are missed, for its misfire policy on resume.
 * @param m           the manager
 * @param id_or_name  its id or its name
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND, JM_EDB, JM_EBUSY, JM_EIO.
 */
JM_EXTERN int jm_schedule_pause(jm_manager *m, const char *id_or_name);
/**
 * @brief Resumes a paused schedule, and clears its count of failures in a
 * row.
 * @param m           the manager
 * @param id_or_name  its id or its name
 * @return as jm_schedule_pause().
 */
JM_EXTERN int jm_schedule_resume(jm_manager *m, const char *id_or_name);
/**
 * @brief Frees a schedule jm_schedule_get() handed out.
 * @param sc  the schedule; NULL is fine
 */
JM_EXTERN void jm_schedule_free(jm_schedule *sc);
/**
 * @brief Frees what jm_schedule_list() handed out.
 * @param list  the array; NULL is fine
 * @param n     its count
 */
JM_EXTERN void jm_schedule_list_free(jm_schedule **list, size_t n);

/* ------------------------------------------------------------------------
 * Table policies: maintenance the data asks for
 * ------------------------------------------------------------------------ */

/** What a policy keeps in check, and the built-in job it creates. */
typedef enum {
    JM_POLICY_FLUSH,          /**< FL when buffered rows ≥ rows, or the oldest is older than max_age_ms */
    JM_POLICY_COMPACT,        /**< CO when segments ≥ segments, or small segments > small_files */
    JM_POLICY_RETENTION,      /**< RT at most every every_ms, purging rows deleted retention_hours ago */
    JM_POLICY_STREAM_EVICTION /**< SE at most every every_ms, for stream tables with a TTL */
} jm_policy_kind;

/** The version of jm_policy_spec this header describes. */
#define JM_POLICY_SPEC_VERSION 1u
/** Segments smaller than this count as small when small_bytes is 0: 1 MiB. */
#define JM_POLICY_SMALL_BYTES_DEFAULT (INT64_C(1) << 20)

/**
 * A rule on one table, or on every table (of one type, in one namespace).
 * Start from JM_POLICY_SPEC_INIT. Each job it creates has the idempotency
 * key "policy:<kind>:<namespace>.<table>", so one table never has two of
 * its jobs waiting or running at once, whichever manager evaluates it.
 */
typedef struct jm_policy_spec {
    unsigned int version; /**< JM_POLICY_SPEC_VERSION */
    const char *name;     /**< unique, 1..JM_SCHEDULE_NAME_MAX bytes */
    jm_policy_kind kind;  /**< what it keeps in check */
    const char *ns;       /**< the namespace; NULL: every namespace */
    const char *table;    /**< one table (ns required); NULL: every table */
    int table_type;       /**< with table NULL: a jm_table_type, or -1 for any */
    int64_t rows;         /**< flush: buffered rows that trigger it; 0: not a trigger */
    int64_t max_age_ms;   /**< flush: age of the oldest buffered row that triggers it; 0: not */
    int64_t segments;     /**< compact: segments that trigger it; 0: not a trigger */
    int64_t small_files;  /**< compact: small segments above this trigger it; 0: not */
    int64_t small_bytes;  /**< compact: below this a segment is small; 0: the default */
    int64_t every_ms;     /**< retention, stream eviction: at most this often per table */
    int retention_hours;  /**< retention: rows deleted longer ago than this are purged */
    int priority;         /**< of the jobs it creates */
    int paused;           /**< create it paused */
} jm_policy_spec;

/** Initialiser of jm_policy_spec: a flush policy on every table, no trigger yet. */
#define JM_POLICY_SPEC_INIT                                                    \
    { JM_POLICY_SPEC_VERSION, NULL, JM_POLICY_FLUSH, NULL, NULL, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/** A snapshot of one policy. */
typedef struct jm_policy {
    char id[JM_SCHEDULE_ID_SIZE]; /**< "PO-…" */
    jm_policy_spec spec;          /**< its strings live as long as the snapshot */
    int64_t created_at;           /**< ms since the epoch */
    int64_t updated_at;           /**< ms since the epoch */
} jm_policy;

/**
 * @brief Creates a policy, evaluated by every running manager whose host
 * (cfg.host, version 2 or later) can list tables, every
 * cfg.policy_interval_ms.
 * @param m       the manager
 * @param spec    the policy; its strings are copied
 * @param id_out  receives its id
 * @return JM_OK, or JM_EINVAL (a bad spec, with the reason), JM_ECONFLICT
 *         (the name is taken), JM_EDB, JM_EBUSY, JM_ENOMEM, JM_EIO.
 */
JM_EXTERN int jm_policy_create(jm_manager *m, const jm_policy_spec *spec,
                               char id_out[JM_SCHEDULE_ID_SIZE]);
/**
 * @brief Reads one policy.
 * @param m           the manager
 * @param id_or_name  its id or its name
 * @param out         receives it; free with jm_policy_free()
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_policy_get(jm_manager *m, const char *id_or_name, jm_policy **out);
/**
 * @brief Reads every policy, by name.
 * @param m    the manager
 * @param out  receives an array of *n; free with jm_policy_list_free()
 * @param n    receives the count
 * @return JM_OK, or JM_EINVAL, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_policy_list(jm_manager *m, jm_policy ***out, size_t *n);
/**
 * @brief Deletes a policy; the jobs it created stay.
 * @param m           the manager
 * @param id_or_name  its id or its name
 * @return JM_OK, or JM_EINVAL, JM_ENOTFOUND, JM_EDB, JM_EBUSY, JM_EIO.
 */
JM_EXTERN int jm_policy_delete(jm_manager *m, const char *id_or_name);
/**
 * @brief Pauses a policy: it is not evaluated until resumed.
 * @param m           the manager
 * @param id_or_name  its id or its name
 * @return as jm_policy_delete().
 */
JM_EXTERN int jm_policy_pause(jm_manager *m, const char *id_or_name);
/**
 * @brief Resumes a paused policy.
 * @param m           the manager
 * @param id_or_name  its id or its name
 * @return as jm_policy_delete().
 */
JM_EXTERN int jm_policy_resume(jm_manager *m, const char *id_or_name);
/**
 * @brief Evaluates every unpaused policy now, against cfg.host's tables,
 * and creates the jobs they call for. The run loop does this every
 * cfg.policy_interval_ms; hosts driving jm_run_once() call it themselves.
 * @param m        the manager
 * @param created  if not NULL, receives the jobs created
 * @return JM_OK, or JM_EINVAL (no host, or one that cannot list tables:
 *         older than version 2), JM_EDB, JM_ENOMEM, or a host operation's
 *         error.
 */
JM_EXTERN int jm_policy_evaluate(jm_manager *m, int *created);
/**
 * @brief Frees a policy jm_policy_get() handed out.
 * @param p  the policy; NULL is fine
 */
JM_EXTERN void jm_policy_free(jm_policy *p);
/**
 * @brief Frees what jm_policy_list() handed out.
 * @param list  the array; NULL is fine
 * @param n     its count
 */
JM_EXTERN void jm_policy_list_free(jm_policy **list, size_t n);

/* ------------------------------------------------------------------------
 * Conflicts, limits and pauses (docs/conflicts.md)
 *
 * Stored in the database: every manager on it obeys them, and a claim
 * checks them and takes its jobs in one atomic step.
 * ------------------------------------------------------------------------ */

/** jm_limit_set() resource meaning "each resource on its own". */
#define JM_EACH_RESOURCE "*"

/**
 * @brief Sets whether jobs of two types may run at the same time on the
 * same resource.
 *
 * Symmetric; @p type_a may equal @p type_b. Jobs without a resource never
 * conflict. Defaults for the built-in types are in docs/conflicts.md.
 * @param m          the manager
 * @param type_a     a job type ("CO")
 * @param type_b     a job type ("BK")
 * @param exclusive  non-zero: never together on one resource; 0: allowed
 * @return JM_OK, or JM_EINVAL (malformed type), JM_EDB, JM_EBUSY.
 */
JM_EXTERN int jm_conflict_set(jm_manager *m, const char *type_a, const char *type_b,
                              int exclusive);

/**
 * @brief Caps how many jobs run at once, across all processes on the
 * database.
 *
 * (type, NULL): of that type in all; (NULL, resource): on that resource;
 * (type, resource): of that type on that resource; JM_EACH_RESOURCE as the
 * resource: on each resource on its own. (NULL, NULL) caps every job.
 * @param m            the manager
 * @param type         a job type, or NULL for any
 * @param resource     a resource, JM_EACH_RESOURCE, or NULL for any
 * @param max_running  at least 1; 0 removes the limit
 * @return JM_OK, or JM_EINVAL (malformed type, over-long resource,
 *         negative max_running), JM_EDB, JM_EBUSY.
 */
JM_EXTERN int jm_limit_set(jm_manager *m, const char *type, const char *resource,
                           int max_running);

/** One conflict rule, from jm_conflict_list(). */
typedef struct jm_conflict {
    char type_a[3]; /**< a job type, or "*" for every type */
    char type_b[3]; /**< a job type, or "*"; type_a <= type_b */
    int exclusive;  /**< 1: never together on one resource; 0: allowed
                         (a pair's own rule wins over a "*" rule) */
} jm_conflict;

/**
 * @brief The conflict rules stored in the database, the defaults
 * included, ordered by (type_a, type_b).
 * @param m    the manager
 * @param out  receives *n rules; free with jm_conflict_list_free()
 * @param n    receives the count
 * @return JM_OK, or JM_EINVAL, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_conflict_list(jm_manager *m, jm_conflict **out, size_t *n);

/**
 * @brief Frees what jm_conflict_list() returned.
 * @param list  the array; NULL is allowed
 */
JM_EXTERN void jm_conflict_list_free(jm_conflict *list);

/** One limit, from jm_limit_list(). */
typedef struct jm_limit {
    char type[3];    /**< a job type; "" for any type */
    char *resource;  /**< a resource, JM_EACH_RESOURCE, or NULL for any */
    int max_running; /**< at least 1 */
} jm_limit;

/**
 * @brief The limits stored in the database, ordered by (type, resource).
 * @param m    the manager
 * @param out  receives *n limits; free with jm_limit_list_free()
 * @param n    receives the count
 * @return JM_OK, or JM_EINVAL, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_limit_list(jm_manager *m, jm_limit **out, size_t *n);

/**
 * @brief Frees what jm_limit_list() returned.
 * @param list  the array; NULL is allowed
 * @param n     the count jm_limit_list() gave
 */
JM_EXTERN void jm_limit_list_free(jm_limit *list, size_t n);

/** What jm_pause() and jm_resume() act on. */
typedef enum {
    JM_PAUSE_ALL,      /**< every job */
    JM_PAUSE_TYPE,     /**< jobs of one type */
    JM_PAUSE_RESOURCE  /**< jobs on one resource */
} jm_pause_scope;

/** One standing pause, from jm_paused_list(). */
typedef struct jm_pause_entry {
    jm_pause_scope scope; /**< what it pauses */
    char *what;           /**< the type or resource; NULL for JM_PAUSE_ALL */
    int64_t since_ms;     /**< when it was set */
} jm_pause_entry;

/**
 * @brief Stops claiming the jobs in @p scope, in every process, from its
 * next claim on. Running jobs finish (jm_pause_job() asks one to yield).
 * Pausing what is paused changes nothing.
 * @param m      the manager
 * @param scope  what to pause
 * @param what   the type or resource; NULL with JM_PAUSE_ALL
 * @return JM_OK, or JM_EINVAL (bad scope, malformed type, over-long
 *         resource), JM_EDB, JM_EBUSY.
 */
JM_EXTERN int jm_pause(jm_manager *m, jm_pause_scope scope, const char *what);

/**
 * @brief Ends a pause set by jm_pause().
 * @param m      the manager
 * @param scope  what to resume
 * @param what   the type or resource; NULL with JM_PAUSE_ALL
 * @return JM_OK, or JM_ENOTFOUND (no such pause), JM_EINVAL, JM_EDB,
 *         JM_EBUSY.
 */
JM_EXTERN int jm_resume(jm_manager *m, jm_pause_scope scope, const char *what);

/**
 * @brief The standing pauses.
 * @param m    the manager
 * @param out  receives *n entries; free with jm_paused_list_free()
 * @param n    receives the count
 * @return JM_OK, or JM_EINVAL, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_paused_list(jm_manager *m, jm_pause_entry **out, size_t *n);

/**
 * @brief Frees what jm_paused_list() returned.
 * @param list  the array; NULL is allowed
 * @param n     the count jm_paused_list() gave
 */
JM_EXTERN void jm_paused_list_free(jm_pause_entry *list, size_t n);

/**
 * @brief Pauses one job.
 *
 * A waiting job (new, queued, retrying) becomes paused at once. A running
 * job gets a pause request, seen by its worker (in any process) within one
 * heartbeat: jm_ctx_should_yield() turns true, and when its executor
 * returns jm_decision_continue() the job becomes paused with its
 * checkpoint. A pause spends no retry; a cancel wins over it.
 * @param m   the manager
 * @param id  the job
 * @return JM_OK, or JM_ENOTFOUND, JM_ESTATE (finished, or paused already),
 *         JM_EINVAL, JM_EDB, JM_EBUSY.
 */
JM_EXTERN int jm_pause_job(jm_manager *m, const char *id);

/**
 * @brief Puts a paused job back to waiting: queued if its run_at has come,
 * else new until then (a job paused in its retry backoff keeps it);
 * withdraws the pause request of a running one, which then goes on.
 * @param m   the manager
 * @param id  the job
 * @return JM_OK, or JM_ENOTFOUND, JM_ESTATE (neither paused nor asked to
 *         pause), JM_EINVAL, JM_EDB, JM_EBUSY.
 */
JM_EXTERN int jm_resume_job(jm_manager *m, const char *id);

/** How much of its I/O budget an idle class saves up, in milliseconds of
 *  its rate (jm_set_rate_limit()). */
#define JM_RATE_LIMIT_BURST_MS 100

/**
 * @brief Sets the I/O budget of one class, shared by every worker of this
 * manager; takes effect at once, running jobs included.
 *
 * A token bucket: an idle class saves up at most JM_RATE_LIMIT_BURST_MS of
 * its budget, and a request larger than that passes once the bucket is
 * full, leaving a debt the next requests of the class wait off. Each
 * manager has its own budgets (docs/io-budgets.md); every class starts
 * unlimited.
 * @param m              the manager
 * @param cls            the class
 * @param bytes_per_sec  the budget; 0: unlimited
 * @return JM_OK, or JM_EINVAL (NULL manager, bad class, negative rate).
 */
JM_EXTERN int jm_set_rate_limit(jm_manager *m, jm_class cls, int64_t bytes_per_sec);

/* ------------------------------------------------------------------------
 * Inside an executor: the job context
 * ------------------------------------------------------------------------ */

/**
 * @brief The job being run.
 * @param ctx  the run's context
 * @return the job (borrowed, as it was when claimed).
 */
JM_EXTERN const jm_job *jm_ctx_job(const jm_ctx *ctx);
/**
 * @brief Its parameters, parsed.
 * @param ctx  the run's context
 * @return the parameters (borrowed).
 */
JM_EXTERN const cJSON *jm_ctx_params(const jm_ctx *ctx);
/**
 * @brief cfg.host of the manager.
 * @param ctx  the run's context
 * @return the host (may be NULL).
 */
JM_EXTERN const struct jm_host *jm_ctx_host(const jm_ctx *ctx);
/**
 * @brief Whether the job is cancelled or the manager is stopping.
 *
 * Cheap: check it between batches.
 * @param ctx  the run's context
 * @return non-zero once the job is cancelled or the manager is stopping.
 */
JM_EXTERN int jm_ctx_is_cancelled(jm_ctx *ctx);
/**
 * @brief Saves @p json as the job's checkpoint, durably, now.
 *
 * The next run of the job, after a continue, a retry or a crash, reads it
 * with jm_job_checkpoint(jm_ctx_job(ctx)).
 * @param ctx   the run's context
 * @param json  a JSON value
 * @return JM_OK, or JM_EJSON, JM_ETOOBIG, JM_ESTATE (the job is no longer
 *         this worker's), JM_EDB, JM_EIO (a full disk or an I/O error).
 */
JM_EXTERN int jm_ctx_checkpoint(jm_ctx *ctx, const char *json);
/**
 * @brief Reports progress.
 *
 * Persisted at most every 500 ms and at the end of the run.
 * @param ctx       the run's context
 * @param fraction  0..1 (clamped)
 */
JM_EXTERN void jm_ctx_progress(jm_ctx *ctx, double fraction);
/**
 * @brief Logs a line prefixed "[<job id>] ".
 * @param ctx    the run's context
 * @param level  the line's level
 * @param fmt    a printf format, followed by its arguments
 */
JM_EXTERN void jm_ctx_log(jm_ctx *ctx, jm_log_level level, const char *fmt, ...)
    JM_PRINTF(3, 4);
/**
 * @brief Formats a string that lives until the job's run ends (for
 * decisions).
 * @param ctx  the run's context
 * @param fmt  a printf format, followed by its arguments
 * @return the string, owned by the run; "" if out of memory.
 */
JM_EXTERN const char *jm_ctx_strf(jm_ctx *ctx, const char *fmt, ...) JM_PRINTF(2, 3);
/**
 * @brief Creates a follow-up job, as jm_create().
 * @param ctx          the run's context
 * @param type         a registered job type
 * @param params_json  a JSON object, NULL = "{}"
 * @param o            may be NULL for defaults
 * @param id_out       required; receives the new id (or, on JM_ECONFLICT,
 *                     the active job's)
 * @return JM_OK, or errors as jm_create().
 */
JM_EXTERN int jm_ctx_create_job(jm_ctx *ctx, const char *type, const char *params_json,
                                const jm_create_opts *o, char id_out[JM_JOB_ID_SIZE]);
/**
 * @brief The manager running the job.
 * @param ctx  the run's context
 * @return the manager (borrowed).
 */
JM_EXTERN jm_manager *jm_ctx_manager(const jm_ctx *ctx);
/**
 * @brief Now, by the manager's clock (cfg.now_ms).
 *
 * Executors compute cut-offs with it so tests can drive time.
 * @param ctx  the run's context
 * @return now, in ms since the Unix epoch.
 */
JM_EXTERN int64_t jm_ctx_now(const jm_ctx *ctx);

/**
 * @brief Whether the executor should stop at its next safe point: a pause
 * of the job was requested, or the job was cancelled, or the manager is
 * stopping. On a pause, return jm_decision_continue() after saving a
 * checkpoint; the job then waits paused until jm_resume_job().
 * @param ctx  the running job's context
 * @return 1 if it should yield, else 0.
 */
JM_EXTERN int jm_ctx_should_yield(jm_ctx *ctx);

/**
 * @brief Spends @p bytes of the I/O budget of the job's class, waiting
 * until the budget allows them (jm_set_rate_limit()). Call it before
 * reading or writing. Callers of one class are served in the order they
 * came. Returns at once when the class is unlimited or @p bytes ≤ 0.
 * Returns early, spending nothing, when the job is cancelled, asked to
 * pause, loses its lease, or the manager stops: check
 * jm_ctx_should_yield() then, rather than doing the I/O.
 * @param ctx    the running job's context; NULL: returns 0
 * @param bytes  bytes about to be read or written; ≤ 0 spends nothing
 * @return how long it waited, in microseconds.
 */
JM_EXTERN int64_t jm_ctx_throttle(jm_ctx *ctx, int64_t bytes);

/* ------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------ */

/** The most worker threads jm_start() and jm_run() take. */
#define JM_MAX_WORKERS 256

/**
 * @brief Starts a run loop thread and @p max_concurrent worker threads and
 * returns.
 * @param m               the manager
 * @param max_concurrent  worker threads, 1..JM_MAX_WORKERS
 * @return JM_OK, or JM_EINVAL, JM_EBUSY (already running), JM_ENOMEM.
 */
JM_EXTERN int jm_start(jm_manager *m, int max_concurrent);

/**
 * @brief As jm_start(), but runs the loop on the calling thread until
 * jm_stop() is called from another thread (or from an executor).
 * @param m               the manager
 * @param max_concurrent  worker threads, 1..JM_MAX_WORKERS
 * @return JM_OK once stopped; errors as jm_start().
 */
JM_EXTERN int jm_run(jm_manager *m, int max_concurrent);

/**
 * @brief Stops claiming jobs, waits up to @p drain_ms for running jobs to
 * end, then tells the rest to stop (jm_ctx_is_cancelled() turns true) and
 * waits for them.
 *
 * A job that returns "cancelled" because of the shutdown goes back to
 * retrying without spending a retry. Thread-safe; from an executor it only
 * asks for the stop and returns.
 * @param m         the manager
 * @param drain_ms  how long running jobs may take to end on their own
 * @return JM_OK, also if the manager was not running; JM_EINVAL if @p m is
 *         NULL.
 */
JM_EXTERN int jm_stop(jm_manager *m, int64_t drain_ms);

/**
 * @brief Runs up to @p max_jobs due jobs one after another on the calling
 * thread, for hosts with their own event loop.
 *
 * Also does the periodic recovery. If a job's outcome cannot be recorded
 * (the database busy past its timeout, out of memory, an I/O error), the
 * error is returned and the outcome is kept: the next call, or jm_close(),
 * records it before anything else, so the job does not wait for its lease.
 * @param m         the manager
 * @param max_jobs  the most jobs to run (1..100000)
 * @param ran       may be NULL; gets how many ran
 * @return JM_OK (with *ran == 0 when nothing is due), or JM_EINVAL, JM_EDB,
 *         JM_EBUSY, JM_ENOMEM, JM_EIO.
 */
JM_EXTERN int jm_run_once(jm_manager *m, int max_jobs, int *ran);

/**
 * @brief Runs crash recovery now (it also runs at open and periodically
 * while the manager runs).
 *
 * Jobs whose lease expired or whose owner process on this host is gone are
 * requeued or failed by the recovery policy, or ended cancelled if a cancel
 * was accepted.
 * @param m          the manager
 * @param recovered  may be NULL; gets the count
 * @return JM_OK, or JM_EINVAL, JM_EDB, JM_EBUSY.
 */
JM_EXTERN int jm_recover(jm_manager *m, int *recovered);

/* ------------------------------------------------------------------------
 * Metrics
 * ------------------------------------------------------------------------ */

/** The number of buckets of the run-duration histogram, +Inf included. */
#define JM_STATS_BUCKETS 12
/** Upper bounds (ms) of the run-duration histogram's buckets; the last
 *  bucket is +Inf. Prometheus "le" labels use the same bounds. */
#define JM_STATS_BUCKET_BOUNDS_MS                                              \
    { 1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000 }

/** The metrics of one job type in a jm_stats_report. */
typedef struct jm_type_stats {
    char type[3];                       /**< the job type ("FL") */
    int64_t by_status[JM_STATUS_COUNT]; /**< jobs of this type in the table now */
    /* Since this manager opened, runs it finished (any outcome): */
    int64_t runs;      /**< since this manager opened, runs it finished (any outcome) */
    int64_t completed; /**< of those, runs that completed the job */
    int64_t retries;   /**< retry decisions (retrying or max retries reached) */
    int64_t failures;  /**< runs that ended the job failed */
    int64_t cancelled; /**< runs that ended the job cancelled */
    double duration_sum_ms;  /**< the runs' total duration */
    int64_t duration_max_ms; /**< the longest run */
    /** Runs whose duration was ≤ bound i (cumulative, as Prometheus wants);
     * the last entry counts every run. */
    int64_t duration_le[JM_STATS_BUCKETS];
} jm_type_stats;

/** A snapshot of a manager's metrics, from jm_stats(). */
typedef struct jm_stats_report {
    int64_t taken_at_ms;                /**< by the manager's clock */
    int64_t by_status[JM_STATUS_COUNT]; /**< all jobs in the table now */
    int64_t queue_depth;       /**< jobs due now and waiting (new, queued, retrying) */
    int64_t oldest_due_age_ms; /**< how long the oldest due job has waited; 0 if none */
    int64_t running;           /**< running jobs in the table (any process) */
    int64_t running_here;      /**< running in this manager right now */
    int64_t failed_last_hour;  /**< jobs that ended failed in the last hour */
    /* Since this manager opened, over all types: */
    int64_t runs,      /**< since this manager opened, over all types: runs finished */
        completed,     /**< runs that completed their job */
        retries,       /**< retry decisions */
        failures,      /**< runs that ended their job failed */
        cancelled,     /**< runs that ended their job cancelled */
        recovered;     /**< jobs this manager recovered from lost workers */
    size_t ntypes;             /**< types seen in the table or run here */
    jm_type_stats *types;      /**< ntypes entries, sorted by type */
    /* Schedules fired by this manager since it opened: */
    int64_t schedule_jobs;       /**< jobs its fires created */
    int64_t schedule_skipped;    /**< fire times the overlap policy skipped */
    int64_t schedule_misfires;   /**< fire times it found missed */
    int64_t schedule_lag_max_ms; /**< the longest a fire came after its fire time */
    /* I/O budgets of this manager since it opened, by jm_class: */
    int64_t throttle_bytes[JM_CLASS_COUNT];   /**< bytes jm_ctx_throttle() spent,
                                                   also while unlimited */
    int64_t throttle_wait_us[JM_CLASS_COUNT]; /**< time it waited, in µs */
} jm_stats_report;

/**
 * @brief Takes a snapshot of the manager's metrics: counts from the jobs
 * table (all processes) and counters of this manager.
 * @param m    the manager
 * @param out  receives the snapshot; *out is the caller's: free it with
 *             jm_stats_free()
 * @return JM_OK, or JM_EINVAL, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_stats(jm_manager *m, jm_stats_report **out);
/**
 * @brief Frees a snapshot jm_stats() handed out.
 * @param r  the snapshot; NULL is fine
 */
JM_EXTERN void jm_stats_free(jm_stats_report *r);

/**
 * @brief Renders a fresh snapshot in the Prometheus text exposition format
 * (0.0.4): counters, gauges and a run-duration histogram per type, names
 * starting "jobmgr_".
 * @param m       the manager
 * @param buf     receives the text (len bytes, always NUL-terminated when
 *                len > 0); may be NULL when len is 0
 * @param len     the size of buf
 * @param needed  may be NULL; gets the size the text needs, NUL included, so
 *                a caller can size its buffer with buf NULL and len 0
 * @return JM_OK, or JM_ETOOBIG (len too small; nothing useful in buf),
 *         JM_EINVAL, JM_EDB, JM_ENOMEM.
 */
JM_EXTERN int jm_metrics_prometheus(jm_manager *m, char *buf, size_t len, size_t *needed);

/**
 * @brief Renders a snapshot jm_stats() took in the Prometheus text format,
 * as jm_metrics_prometheus() does, for a caller that also uses the
 * snapshot otherwise (one count of the table serves both).
 * @param r       the snapshot
 * @param buf     receives the text (len bytes, always NUL-terminated when
 *                len > 0); may be NULL when len is 0
 * @param len     the size of buf
 * @param needed  may be NULL; gets the size the text needs, NUL included
 * @return JM_OK, or JM_ETOOBIG (len too small), JM_EINVAL.
 */
JM_EXTERN int jm_stats_prometheus(const jm_stats_report *r, char *buf, size_t len,
                                  size_t *needed);

/** The most buckets jm_throughput() fills in one call. */
#define JM_THROUGHPUT_MAX_BUCKETS 1440

/** Jobs that finished in one time bucket, from jm_throughput(). */
typedef struct jm_throughput_bucket {
    int64_t start_ms;  /**< the bucket covers [start_ms, start_ms + bucket_ms) */
    int64_t completed; /**< jobs in the table now that ended completed in it */
    int64_t failed;    /**< ... that ended failed in it */
    int64_t cancelled; /**< ... that ended cancelled in it */
} jm_throughput_bucket;

/**
 * @brief Counts the jobs that finished in each of @p nbuckets consecutive
 * time buckets, by how they ended: completed, failed or cancelled.
 *
 * Bucket i starts at since_ms + i * bucket_ms and covers bucket_ms
 * milliseconds, its end excluded; a job counts in the bucket its
 * finished_at (by the clock of the manager that finished it) falls in.
 * The counts come from the jobs table as it is now, across every process:
 * jobs pruned since they finished (jm_prune()) are not counted, and a job
 * retried by hand (jm_retry()) counts again only when it ends again. One
 * query through the index of finished jobs; its cost grows with the jobs
 * that finished in the window, not with the table.
 * @param m          the manager
 * @param since_ms   the start of the first bucket (ms since the epoch, ≥ 0)
 * @param bucket_ms  the width of every bucket, ≥ 1
 * @param out        receives nbuckets buckets, in time order; the caller's
 * @param nbuckets   1..JM_THROUGHPUT_MAX_BUCKETS; since_ms + nbuckets *
 *                   bucket_ms must fit in an int64_t
 * @return JM_OK, or JM_EINVAL (out left as it was), or JM_EDB, JM_ENOMEM,
 *         JM_EIO (every count in out then 0).
 */
JM_EXTERN int jm_throughput(jm_manager *m, int64_t since_ms, int64_t bucket_ms,
                            jm_throughput_bucket *out, size_t nbuckets);

#ifdef __cplusplus
}
#endif

#endif /* JOBMGR_H */
