/*
 * The store interface: everything the core asks of the jobs database.
 *
 * The core decides what should happen to a job (next status, backoff,
 * messages); a store makes it happen atomically and guards every write with
 * the status (and, for running jobs, the claim) it expects, so a write based
 * on stale knowledge changes nothing. No SQL lives outside src/store/: each
 * backend has its folder there (sqlite/) and implements this vtable, and
 * nothing in src/core changes for another.
 *
 * A store handle is one connection: the caller serialises calls on it.
 */
#ifndef JM_STORE_H
#define JM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "jobmgr.h"

typedef struct jm__store jm__store;
/* A store's channel for waking managers of other processes (wake_open). */
typedef struct jm__wake jm__wake;

/* Options the core hands to a store when it opens it. */
typedef struct jm__store_config {
    const char *path;   /* SQLite: the database file */
    const char *vfs;
    int64_t busy_timeout_ms;
    /* Non-zero: a second connection that only reads (start checks); no
     * schema work, no checkpointer. */
    int reader;
    /* Non-zero: every commit that records something a caller was told of
     * reaches the disk before it returns (JM_DURABLE_SYNC); zero: commits
     * survive a crash of the process only (JM_DURABLE_PROCESS). */
    int durable_sync;
    const char *url;    /* PostgreSQL: a libpq connection string or URI */
    const char *schema; /* PostgreSQL: the schema of the tables, a validated
                           identifier */
} jm__store_config;

/* A job to insert; every field already validated by the core. */
typedef struct jm__new_row {
    /* In: a new id from jm__job_id_new. Out, once inserted: the id whole,
     * its last group set to the row's seq (jm__job_id_set_seq). */
    char *id;
    const char *type;
    jm_status status; /* new or queued */
    const char *namespace_id;
    const char *params;
    const char *idempotency_key;
    int max_retries;
    int priority;
    int64_t created_at;
    int64_t run_at;
    const char *resource; /* NULL: none */
    const char *node_id;  /* NULL: any node may claim it; else only that one */
    char *resource_owned; /* the core's copy behind `resource`, if it made one */
    /* Set only in the rows of a schedule_fire. */
    const char *schedule_id;
    int64_t fire_time;
} jm__new_row;

/* One schedule's fire (schedule_fire): its jobs, and its next fire time
 * moved from expect_next to new_next, in one step. */
typedef struct jm__fire {
    const char *schedule_id;
    int64_t expect_next; /* the next fire time as read: the compare */
    int64_t new_next;    /* ... and as set */
    int64_t now;
    jm_overlap overlap;
    jm__new_row *rows; /* in fire-time order; ids completed when created */
    size_t nrows;
    /* Out. */
    int lost;          /* another fire, a pause or a delete came first: nothing done */
    size_t created;    /* rows created */
    size_t skipped;    /* rows the overlap policy skipped */
    int *made;         /* nrows entries, if not NULL: 1 for each row created */
} jm__fire;

/* Who claims: written into the rows a claim takes, so recovery can tell
 * which process owns a running job. */
typedef struct jm__owner {
    const char *node_id;
    int64_t pid;
    int64_t instance; /* random per manager: tells two managers of one process apart */
} jm__owner;

typedef struct jm__claim_req {
    const jm__owner *owner;
    const char *types; /* "FL,CL,…": only these types are claimed */
    int64_t now;
    int64_t lease_until;
    size_t max; /* claim at most this many */
    /* Then up to ahead_max more, of ahead_types only: the types known to
     * run short, which the run loop claims ahead of its workers. */
    const char *ahead_types;
    size_t ahead_max;
} jm__claim_req;

/* The end of one run of a job, as the core decided it. */
typedef struct jm__finish {
    int64_t seq;      /* the job's row */
    int64_t attempt;  /* the claim it ran under: the write is refused otherwise */
    jm_status status; /* completed, failed, cancelled, retrying or queued */
    /* Non-zero for retrying/queued outcomes that a standing cancel request
     * overrides: the job ends cancelled instead. */
    int cancel_overrides;
    const char *message;  /* NULL: clear */
    int keep_message;     /* non-zero: leave the stored message as it is */
    const char *trace;    /* NULL: keep the stored trace */
    const char *result;   /* NULL: keep the stored result */
    int retry_count;
    int64_t run_at;       /* for retrying/queued */
    double progress;
    int64_t now;
    int64_t started_at; /* when the run started; kept if the claim set one */
    /* Out: the status the row ended in, or -1 if the job was no longer
     * this claim's (recovered elsewhere), in which case nothing changed. */
    int final_status;
} jm__finish;

/* A running job's lease renewal result. */
typedef struct jm__lease_info {
    int64_t seq;
    int64_t attempt; /* the claim that holds the row now */
    int cancel_requested;
    int pause_requested;
} jm__lease_info;

/* A process that owns running jobs. */
typedef struct jm__owner_ref {
    int64_t pid;
    int64_t instance;
    int same_node; /* on the recovering manager's node */
} jm__owner_ref;

/* One run of a job: its row and the claim it ran under. */
typedef struct jm__run_ref {
    int64_t seq;
    int64_t attempt;
} jm__run_ref;

/* What a worker may do with a claimed job it is about to start. */
typedef enum {
    JM__START_RUN,       /* still this claim's, no cancel requested */
    JM__START_CANCELLED, /* a cancel was requested: end it without running */
    JM__START_LOST,      /* no longer this claim's: drop it */
    JM__START_PAUSED     /* a pause was requested: yield without running */
} jm__start_verdict;

typedef enum {
    JM__CANCEL_CANCELLED, /* it was new/queued/retrying: now cancelled */
    JM__CANCEL_REQUESTED  /* it was running: the request is stored */
} jm__cancel_outcome;

/* One caller's write, which the core may apply together with other
 * callers' in one transaction (group commit, write_group). */
typedef enum {
    JM__WRITE_INSERT,
    JM__WRITE_CANCEL,
    JM__WRITE_RETRY,
    JM__WRITE_CHECKPOINT
} jm__write_kind;

typedef struct jm__write {
    jm__write_kind kind;
    union {
        struct { /* as the insert op */
            const jm__new_row *rows;
            size_t n;
            size_t conflict_index;             /* out */
            char conflict_id[JM_JOB_ID_SIZE]; /* out */
        } insert;
        struct { /* as the cancel op */
            const char *id;
            int cancellable_running;
            int64_t now;
            jm__cancel_outcome outcome; /* out */
            int64_t seq;                /* out */
            int64_t owner_instance;     /* out */
        } cancel;
        struct { /* as the retry op */
            const char *id;
            int64_t now;
        } retry;
        struct { /* as the checkpoint op */
            int64_t seq;
            int64_t attempt;
            const char *json;
            int64_t now;
        } checkpoint;
    } u;
    int rc;                   /* out: this write's result */
    char err[JM_ERRMSG_SIZE]; /* out: its jm_last_error() when it failed */
} jm__write;

/* The most writes one group takes. */
#define JM__WRITE_GROUP_MAX 128

/* Hands a store further writes for the group it has open (write_group):
 * the next, or NULL when the group is complete. */
typedef jm__write *(*jm__write_next)(void *ctx);

/* How far back "failed in the last hour" looks. */
#define JM__STATS_FAILED_WINDOW_MS 3600000

/* Jobs of one type in one status, for jm_stats(). */
typedef struct jm__type_status_count {
    char type[3]; /* "" for a stored type that is not two bytes (a damaged row) */
    jm_status status;
    int64_t count;
} jm__type_status_count;

/* The table-side numbers of jm_stats(), read in one snapshot. */
typedef struct jm__store_stats {
    jm__type_status_count *rows; /* nrows entries; the caller frees it with jm__free */
    size_t nrows;
    int64_t queue_depth;       /* new, queued or retrying with run_at <= now */
    int64_t oldest_due_run_at; /* the smallest run_at among those; 0 if none */
    int64_t running;
    int64_t failed_last_hour; /* failed, finished_at >= now - JM__STATS_FAILED_WINDOW_MS */
} jm__store_stats;

/* Adds `count` jobs that ended in `status` to bucket `bucket` of out[n],
 * for the throughput op: a bucket or status out of range (only a damaged
 * row could give one) is dropped. Both stores map their rows through it. */
static inline void jm__throughput_add(jm_throughput_bucket *out, size_t n, int64_t bucket,
                                      int64_t status, int64_t count)
{
    if (bucket < 0 || (uint64_t)bucket >= n)
        return;
    if (status == JM_STATUS_COMPLETED)
        out[bucket].completed += count;
    else if (status == JM_STATUS_FAILED)
        out[bucket].failed += count;
    else if (status == JM_STATUS_CANCELLED)
        out[bucket].cancelled += count;
}

typedef struct jm__store_ops {
    const char *name;
    int (*open)(const jm__store_config *cfg, jm__store **out);
    void (*close)(jm__store *s);

    /* Inserts all rows in one transaction, each with the next seq, which
     * completes its id. On a unique-key conflict nothing is inserted,
     * *conflict_index is the row's index and conflict_id gets the active
     * holder's id (or "" if the holder is in the same batch). */
    int (*insert)(jm__store *s, const jm__new_row *rows, size_t n, size_t *conflict_index,
                  char conflict_id[JM_JOB_ID_SIZE]);
    /* 1: an insert of rows due now wakes other processes itself, with its
     * own commit (no round trip or commit of its own), and the caller
     * posts nothing; 0: the caller calls wake_post after it. */
    int insert_wakes;
    /* A row outside damage made unreadable: get reports JM_EDB naming it,
     * list leaves it out (count still counts it). */
    int (*get)(jm__store *s, const char *id, jm_job **out);
    int (*list)(jm__store *s, const jm_filter *f, jm_job_list **out);
    int (*count)(jm__store *s, const jm_filter *f, int64_t *out);

    /* Promotes new jobs whose run_at came, then claims up to req->max due
     * jobs in one atomic statement. *out is an array of *n jobs (free each
     * with jm_job_free and the array with jm__free). Damaged rows are set
     * aside as in `cycle`. */
    int (*claim)(jm__store *s, const jm__claim_req *req, jm_job ***out, size_t *n);
    /* Applies the outcomes in one transaction (group commit). */
    int (*finish)(jm__store *s, jm__finish *items, size_t n);
    /* The run loop's one write per wake-up: applies `n` outcomes and, if
     * `req` is not NULL, claims up to req->max due jobs, in one transaction
     * (group commit). It is synced when it records outcomes; a claim alone
     * is not, since after a power loss a lost claim only leaves the job
     * queued, and its next synced commit persists it anyway.
     * The outcomes never depend on the claim: a claim that fails is undone
     * alone, *claim_err gets its error (JM_OK otherwise; required with
     * `req`), *out is NULL, and the outcomes are still recorded. The
     * return is the outcomes' part: on an error nothing was recorded and
     * nothing claimed (*claim_err is then that error too). Due rows that
     * outside damage made unreadable are failed ("Damaged row: ...")
     * instead of claimed, and never stop the claim. */
    int (*cycle)(jm__store *s, jm__finish *items, size_t n, const jm__claim_req *req,
                 jm_job ***out, size_t *nout, int *claim_err);
    /* Applies n writes in order, in one transaction and one sync. Each
     * runs under a savepoint: a write refused on its own (a conflict, a
     * refused transition, an unknown job) is undone alone, with its error
     * in ->rc and ->err, and the others commit. An error of the
     * transaction itself (I/O, memory, a busy database, the commit) undoes
     * them all: it is returned and every ->rc holds it. With n == 1 and
     * no `more` the write runs as its own op would, and ->err is left
     * empty. `more`, if not NULL, is called after the n writes, inside the
     * transaction, for each further write of the group until it returns
     * NULL (it may wait for one); the store stops calling it after an
     * error of the transaction or at JM__WRITE_GROUP_MAX writes in all. */
    int (*write_group)(jm__store *s, jm__write *const *w, size_t n, jm__write_next more,
                       void *ctx);
    /* Saves a running job's checkpoint / progress, guarded by its claim. */
    int (*checkpoint)(jm__store *s, int64_t seq, int64_t attempt, const char *json,
                      int64_t now);
    int (*progress)(jm__store *s, int64_t seq, int64_t attempt, double progress,
                    int64_t now);
    /* Renews the leases of every running job `owner` holds, reporting each
     * one with its cancel flag. *out is the caller's (jm__free). */
    int (*renew)(jm__store *s, const jm__owner *owner, int64_t now, int64_t lease_until,
                 jm__lease_info **out, size_t *n);

    /* Cancel in one statement; `cancellable_running` says whether a running
     * job may be asked to stop; *owner_instance gets a running job's owner
     * (0 if none). Errors: JM_ENOTFOUND, JM_ESTATE,
     * JM_ENOTCANCELLABLE (with the job running). */
    int (*cancel)(jm__store *s, const char *id, int cancellable_running, int64_t now,
                  jm__cancel_outcome *outcome, int64_t *seq, int64_t *owner_instance);
    /* The status of a job (to explain a refusal); JM_ENOTFOUND. */
    int (*status)(jm__store *s, const char *id, jm_status *out);
    int (*retry)(jm__store *s, const char *id, int64_t now);
    /* Deletes up to `batch` finished jobs older than the cut-off; *deleted
     * gets how many (fewer than batch: none remain). */
    int (*prune)(jm__store *s, int64_t finished_before, int64_t batch, int64_t *deleted);
    /* Called between the batches of a bulk write, without the store lock:
     * waits (at most max_wait_ms) until the store has caught up with what
     * was written (SQLite: the write-ahead log is checkpointed), so the
     * bulk writer, not the next small write, pays for it. May be NULL. */
    void (*settle)(jm__store *s, int64_t max_wait_ms);

    /* Recovery. The owners (pid, instance) with running jobs, each marked
     * whether it is on node_id. */
    int (*running_owners)(jm__store *s, const char *node_id, jm__owner_ref **out, size_t *n);
    /* Ends the running jobs of one owner on node_id, in one transaction
     * (two recovering processes never both take a job). A run that started
     * ends cancelled if a cancel was requested, else by the policy:
     * retrying (a retry spent; failed "Max retries exceeded" past
     * max_retries) or failed with `fail_message`. With started_known, only
     * the runs listed in `started` started; every other row goes back as a
     * release does (no retry spent). Without it, every row counts as
     * started. */
    int (*recover_owner)(jm__store *s, const char *node_id, const jm__owner_ref *owner,
                         int64_t now, jm_recovery_policy policy, const char *fail_message,
                         const jm__run_ref *started, size_t nstarted, int started_known,
                         int *recovered);
    /* Ends, as started runs, the running jobs whose lease expired before
     * now (or that have none) and whose owner is not a process on node_id:
     * those of other nodes and those without an owner. One statement. */
    int (*recover_expired)(jm__store *s, const char *node_id, int64_t now,
                           jm_recovery_policy policy, const char *fail_message,
                           int *recovered);
    /* After the wall clock stepped back: jobs waiting out a relative delay
     * (retrying, or queued with a later run_at) that were written "after"
     * now get their delay counted from now again. Idempotent. */
    int (*rebase)(jm__store *s, int64_t now, int *changed);
    /* The database file's full path, or NULL if it has none (in memory). */
    const char *(*file_path)(jm__store *s);
    /* On a reader connection: may the claim (seq, attempt) start? */
    int (*start_check)(jm__store *s, int64_t seq, int64_t attempt, jm__start_verdict *out);
    /* A warning about the store's own library that users should see (once
     * per process), or NULL. */
    const char *(*caveat)(void);
    /* Puts claimed-but-never-started jobs back (running -> retrying, no retry
     * spent). */
    int (*release)(jm__store *s, int64_t seq, int64_t attempt, int64_t now);

    /* Schedules. Names are unique: insert and update give JM_ECONFLICT
     * for a name in use. get finds by id or by name. A snapshot is the
     * caller's (jm_schedule_free). */
    int (*schedule_insert)(jm__store *s, const jm_schedule *sc);
    int (*schedule_get)(jm__store *s, const char *id_or_name, jm_schedule **out);
    /* By name; *out is the caller's (jm__free, each with jm_schedule_free). */
    int (*schedule_list)(jm__store *s, jm_schedule ***out, size_t *n);
    /* Rewrites the spec and next fire time of sc->id. */
    int (*schedule_update)(jm__store *s, const jm_schedule *sc, int64_t now);
    int (*schedule_delete)(jm__store *s, const char *id);
    /* Resuming clears the count of failures in a row. */
    int (*schedule_pause)(jm__store *s, const char *id, int paused, int64_t now);
    /* Unpaused schedules due at `now`, earliest first, at most `limit`. */
    int (*schedule_due)(jm__store *s, int64_t now, size_t limit, jm_schedule ***out,
                        size_t *n);
    /* The earliest next fire time of an unpaused schedule; 0 if none. */
    int (*schedule_next_fire)(jm__store *s, int64_t *out);
    /* Fires, in one transaction, each fire in one step: its next fire
     * time moves by compare-and-set, and only if it moved are its jobs
     * created, each unless the overlap policy skips it (judged against
     * the schedule's active jobs, those created here included). */
    int (*schedule_fire)(jm__store *s, jm__fire *fires, size_t n);

    /* Policies: as schedules, without firing. */
    int (*policy_insert)(jm__store *s, const jm_policy *p);
    int (*policy_get)(jm__store *s, const char *id_or_name, jm_policy **out);
    int (*policy_list)(jm__store *s, jm_policy ***out, size_t *n);
    int (*policy_delete)(jm__store *s, const char *id);
    int (*policy_pause)(jm__store *s, const char *id, int paused, int64_t now);
    /* When the newest job holding idempotency key `key` (active or not)
     * was created; 0 if none. */
    int (*keyed_job_created)(jm__store *s, const char *key, int64_t *out);

    /* Conflicts, limits and pauses: the rules every claim obeys (see
     * jm_conflict_set, jm_limit_set, jm_pause). Types and resources are
     * validated by the core; "" never reaches a store. */
    int (*conflict_set)(jm__store *s, const char *type_a, const char *type_b, int exclusive);
    /* max_running 0 removes the limit. */
    int (*limit_set)(jm__store *s, const char *type, const char *resource, int max_running);
    /* JM_ENOTFOUND when resuming what is not paused. */
    int (*pause_set)(jm__store *s, jm_pause_scope scope, const char *what, int paused,
                     int64_t now);
    int (*pause_list)(jm__store *s, jm_pause_entry **out, size_t *n);
    int (*conflict_list)(jm__store *s, jm_conflict **out, size_t *n);
    int (*limit_list)(jm__store *s, jm_limit **out, size_t *n);
    /* A waiting job becomes paused (*requested 0); a running one gets the
     * request (*requested 1, *owner_instance its owner). JM_ENOTFOUND,
     * JM_ESTATE. */
    int (*pause_job)(jm__store *s, const char *id, int64_t now, int *requested, int64_t *seq,
                     int64_t *owner_instance);
    /* A paused job waits again; a running one loses its request.
     * JM_ENOTFOUND, JM_ESTATE. */
    int (*resume_job)(jm__store *s, const char *id, int64_t now);

    /* Metrics: counts by (type, status), the due queue and recent failures,
     * all from one read snapshot. */
    int (*stats)(jm__store *s, int64_t now, jm__store_stats *out);
    /* jm_throughput(): adds to out[i], for i < n, the jobs that ended
     * completed, failed or cancelled with finished_at in [since + i *
     * bucket_ms, since + (i + 1) * bucket_ms). The core has set each
     * start_ms and zeroed the counts, and checked that since + n *
     * bucket_ms fits. One statement grouped by bucket and status, read
     * through the index of finished jobs alone. */
    int (*throughput)(jm__store *s, int64_t since, int64_t bucket_ms, jm_throughput_bucket *out,
                      size_t n);

    /* Inserts one row through `conn`, a connection of the caller's own, in
     * whatever transaction it has open, as `insert` would; wakes other
     * processes once that commits. NULL where the store has no such
     * connections (SQLite). */
    int (*insert_in)(jm__store *s, void *conn, jm__new_row *row,
                     char conflict_id[JM_JOB_ID_SIZE]);

    /* Wake-ups across processes. wake_open fails when the store has no
     * channel here; managers then find other processes' jobs by polling.
     * The handle is independent of the connection `s` and may be used from
     * any thread. */
    int (*wake_open)(jm__store *s, jm__wake **out);
    void (*wake_close)(jm__wake *w);
    /* After a commit that added work due now: wakes sleepers of other
     * processes (a sleeper of this process is woken by the caller). */
    void (*wake_post)(jm__wake *w);
    /* The posts so far, for a first wake_wait. */
    uint64_t (*wake_seq)(jm__wake *w);
    /* Sleeps until a post after *seen (returns 1 and updates *seen) or for
     * timeout_ms (returns 0). */
    int (*wake_wait)(jm__wake *w, uint64_t *seen, int64_t timeout_ms);
    /* Ends this process's wake_wait calls at once (they return 1). */
    void (*wake_interrupt)(jm__wake *w);
    /* 1 while a watcher waits on the handle, 0 once it stopped: a channel
     * that queues posts for a reader (PostgreSQL's NOTIFY) listens only
     * meanwhile, so a manager whose workers do not run never holds the
     * server's queue back. NULL where nothing queues. */
    void (*wake_listen)(jm__wake *w, int on);
} jm__store_ops;

/* The built-in SQLite store. */
extern const jm__store_ops jm__sqlite_store;
#ifdef JM_WITH_PG
/* The PostgreSQL store (src/store/pg/). */
extern const jm__store_ops jm__pg_store;
#endif

#endif
