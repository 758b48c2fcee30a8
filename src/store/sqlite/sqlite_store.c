/*
 * The SQLite store: the connection, its pragmas, the statement cache,
 * error mapping, and reading snapshot rows (one by id or name, or a list)
 * for the schedule and policy files. The job operations live in sqlite_jobs.c (create, read,
 * cancel, retry, prune) and sqlite_run.c (claim, finish, leases, recovery).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "array.h"
#include "error.h"
#include "job.h"
#include "random.h"
#include "sqlite_error.h"
#include "sqlite_internal.h"

/* Outcome expressions shared by the recovery statements: what a lost
 * running job becomes. :fail is 1 under JM_RECOVER_FAIL, :fail_message its
 * message. The recovery statements bind by name (bind_recovery in
 * sqlite_run.c), since each uses a different subset. */
#define RECOVER_SET                                                                   \
    "status = CASE WHEN cancel_requested THEN 6 WHEN pause_requested THEN 7 "         \
    "  WHEN :fail THEN 5 WHEN retry_count >= max_retries THEN 5 ELSE 3 END, "         \
    "message = CASE WHEN cancel_requested THEN '" JM__MSG_CANCELLED "' "              \
    "  WHEN pause_requested THEN '" JM__MSG_PAUSED_LOST "' "                          \
    "  WHEN :fail THEN :fail_message "                                                \
    "  WHEN retry_count >= max_retries THEN '" JM__MSG_MAX_RETRIES "' "               \
    "  ELSE 'Recovered after worker was lost' END, "                                  \
    "exception_trace = CASE WHEN cancel_requested OR pause_requested OR :fail "       \
    "  THEN exception_trace "                                                         \
    "  WHEN retry_count >= max_retries THEN "                                         \
    "    coalesce(exception_trace, 'worker lost on the last attempt') "               \
    "  ELSE exception_trace END, "                                                    \
    "finished_at = CASE WHEN cancel_requested THEN :now WHEN pause_requested THEN NULL "\
    "  WHEN :fail OR retry_count >= max_retries THEN :now ELSE NULL END, "             \
    "retry_count = CASE WHEN cancel_requested OR pause_requested OR :fail "            \
    "  OR retry_count >= max_retries THEN retry_count ELSE retry_count + 1 END, "      \
    "pause_requested = 0, "                                                            \
    "run_at = :now, updated_at = :now, lease_until = NULL, owner_pid = NULL, "        \
    "owner_instance = NULL "

/* What a claimed job that never started becomes: back to
 * retrying without spending a retry, unless a cancel was requested. */
#define RELEASE_SET                                                                   \
    "status = CASE WHEN cancel_requested THEN 6 WHEN pause_requested THEN 7 ELSE 3 END, "\
    "pause_requested = 0, "                                                            \
    "message = CASE WHEN cancel_requested THEN '" JM__MSG_CANCELLED "' "              \
    "  ELSE message END, "                                                            \
    "finished_at = CASE WHEN cancel_requested THEN :now ELSE NULL END, "              \
    "run_at = :now, updated_at = :now, started_at = NULL, "                           \
    "lease_until = NULL, owner_pid = NULL, owner_instance = NULL "

/* The hot statements name their partial index: without statistics the
 * planner would take the general status index and sort every due row. */
static const char *const sql_text[Q_COUNT_] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    /* :id is the id without its last group, which is the seq the row gets
     * (schema version 4). created_at never goes below the newest row's
     * (version 3), so creation-time filters can seek by seq. */
    [Q_INSERT] = "INSERT INTO jm_jobs (id, type, status, namespace_id, params, "
                 "idempotency_key, max_retries, priority, created_at, updated_at, run_at, "
                 "resource) "
                 "VALUES (:id, :type, :status, :namespace_id, :params, :key, :max_retries, "
                 ":priority, max(:now, coalesce("
                 "(SELECT created_at FROM jm_jobs ORDER BY seq DESC LIMIT 1), :now)), :now, "
                 ":run_at, :resource)",
    [Q_ROW_FROM] = "SELECT seq, created_at FROM jm_jobs WHERE seq >= ?1 ORDER BY seq LIMIT 1",
    [Q_LAST_ROW] = "SELECT seq, created_at FROM jm_jobs ORDER BY seq DESC LIMIT 1",
    [Q_ACTIVE_BY_KEY] = "SELECT seq, id FROM jm_jobs WHERE idempotency_key = ?1 "
                        "AND idempotency_key IS NOT NULL AND (status <= 3 OR status = 7)",
    /* By id: ?2 is the seq the id carries and ?1 the id as stored (see
     * bind_row_key in sqlite_jobs.c). A row whose stored id was damaged
     * away is found by its seq alone, to be reported as damaged; typeof,
     * since SQLite takes IS NULL of a NOT NULL column for false. */
    [Q_GET] = "SELECT " JM_JOB_COLUMNS " FROM jm_jobs WHERE seq = ?2 "
              "AND (id = ?1 OR typeof(id) = 'null' OR id = '')",
    [Q_LEGACY_SEQ] = "SELECT seq FROM jm_jobs WHERE id = ?1 AND length(id) > 27",
    [Q_STATUS_OF] = "SELECT status FROM jm_jobs WHERE seq = ?2 AND id = ?1",
    [Q_COUNT_STATUS_UPTO] = "SELECT count(*) FROM (SELECT 1 FROM jm_jobs INDEXED BY jm_jobs_status "
                            "WHERE status = ?1 LIMIT ?2)",
    [Q_COUNT_STATUS_BY_REST] = "SELECT (SELECT count(*) FROM jm_jobs) "
                               "- (SELECT count(*) FROM jm_jobs WHERE status < ?1) "
                               "- (SELECT count(*) FROM jm_jobs WHERE status > ?1)",
    [Q_STATUS_OF_SEQ] = "SELECT status FROM jm_jobs WHERE seq = ?1",
    [Q_PROMOTE] = "UPDATE jm_jobs INDEXED BY jm_jobs_scheduled SET status = 1, updated_at = ?1 "
                  "WHERE status = 0 AND run_at <= ?1",
    /* Claiming reads the due rows, then takes each by rowid: an UPDATE with
     * an IN subquery and RETURNING builds two temporary B-trees per run. */
    [Q_DUE] = "SELECT " JM_JOB_COLUMNS " FROM jm_jobs INDEXED BY jm_jobs_due "
              "WHERE status IN (1, 3) AND blocked_by IS NULL AND run_at <= ?1 "
              "AND instr(?2, type) > 0 "
              "ORDER BY priority DESC, run_at, seq LIMIT ?3",
    /* :starts: the job starts at once (a worker is idle for it); a job
     * claimed ahead gets its started_at when it really starts. */
    [Q_TAKE] = "UPDATE jm_jobs SET status = 2, attempts = attempts + 1, node_id = :node, "
               "owner_pid = :pid, owner_instance = :instance, lease_until = :lease_until, "
               "started_at = CASE WHEN :starts THEN :now END, updated_at = :now, "
               "message = CASE WHEN status = 3 THEN NULL ELSE message END, blocked_by = NULL "
               "WHERE seq = :seq AND status IN (1, 3)",
    /* A due row outside damage made unreadable (jm__row_damage) ends
     * failed (5) instead of being claimed, so it holds up no other job:
     * ?1 what is wrong, ?2 now, ?3 its seq. */
    [Q_SET_ASIDE] = "UPDATE jm_jobs SET status = 5, message = 'Damaged row: ' || ?1, "
                    "finished_at = ?2, updated_at = ?2, "
                    "lease_until = NULL, owner_pid = NULL, owner_instance = NULL "
                    "WHERE seq = ?3 AND status IN (1, 3)",
    /* The claim runs under a savepoint after the outcomes: a claim that
     * fails undoes only itself (see jm__sqlite_cycle). */
    [Q_CLAIM_SAVEPOINT] = "SAVEPOINT jm_claim",
    [Q_CLAIM_ROLLBACK] = "ROLLBACK TO jm_claim",
    [Q_CLAIM_RELEASE] = "RELEASE jm_claim",
    /* One caller's write in a group (jm__sqlite_write_group). */
    [Q_WRITE_SAVEPOINT] = "SAVEPOINT jm_write",
    [Q_WRITE_ROLLBACK] = "ROLLBACK TO jm_write",
    [Q_WRITE_RELEASE] = "RELEASE jm_write",
    /* An outcome a standing cancel cannot change. :started_at is when the
     * run started, for a job claimed ahead. */
    [Q_FINISH] = "UPDATE jm_jobs SET "
                 "status = CASE WHEN pause_requested AND :status IN (1, 3) THEN 7 ELSE :status END, "
                 "pause_requested = 0, "
                 "message = CASE WHEN :keep_message THEN message ELSE :message END, "
                 "exception_trace = coalesce(:trace, exception_trace), "
                 "result = coalesce(:result, result), retry_count = :retry_count, "
                 "run_at = :run_at, progress = :progress, updated_at = :now, "
                 "finished_at = :finished_at, started_at = coalesce(started_at, :started_at), "
                 "lease_until = NULL, owner_pid = NULL, owner_instance = NULL "
                 "WHERE seq = :seq AND status = 2 AND attempts = :attempt",
    /* The same for an outcome a standing cancel request overrides: it
     * becomes cancelled, atomically with the write. */
    [Q_FINISH_CANCELLABLE] =
        "UPDATE jm_jobs SET "
        "status = CASE WHEN cancel_requested THEN 6 "
        "  WHEN pause_requested AND :status IN (1, 3) THEN 7 ELSE :status END, "
        "pause_requested = 0, "
        "message = CASE WHEN cancel_requested THEN '" JM__MSG_CANCELLED "' "
        "  WHEN :keep_message THEN message ELSE :message END, "
        "exception_trace = coalesce(:trace, exception_trace), "
        "result = coalesce(:result, result), "
        "retry_count = CASE WHEN cancel_requested THEN retry_count ELSE :retry_count END, "
        "run_at = :run_at, progress = :progress, updated_at = :now, "
        "finished_at = CASE WHEN cancel_requested THEN :now ELSE :finished_at END, "
        "started_at = coalesce(started_at, :started_at), "
        "lease_until = NULL, owner_pid = NULL, owner_instance = NULL "
        "WHERE seq = :seq AND status = 2 AND attempts = :attempt",
    [Q_CHECKPOINT] = "UPDATE jm_jobs SET checkpoint = ?1, updated_at = ?2 "
                     "WHERE seq = ?3 AND status = 2 AND attempts = ?4",
    [Q_PROGRESS] = "UPDATE jm_jobs SET progress = ?1, updated_at = ?2 "
                   "WHERE seq = ?3 AND status = 2 AND attempts = ?4",
    [Q_RENEW] = "UPDATE jm_jobs INDEXED BY jm_jobs_status SET lease_until = ?1 WHERE status = 2 AND node_id = ?2 "
                "AND owner_pid = ?3 AND owner_instance = ?4 "
                "RETURNING seq, attempts, cancel_requested, pause_requested",
    /* One statement: a cancel never reads and then writes. */
    [Q_CANCEL] = "UPDATE jm_jobs SET "
                 "status = CASE WHEN status <> 2 THEN 6 ELSE status END, "
                 "finished_at = CASE WHEN status <> 2 THEN ?2 ELSE finished_at END, "
                 "message = CASE WHEN status <> 2 THEN '" JM__MSG_CANCELLED "' "
                 "  ELSE message END, "
                 "cancel_requested = 1, updated_at = ?2 "
                 "WHERE seq = ?4 AND id = ?1 "
                 "AND (status <= 1 OR status = 3 OR status = 7 OR (status = 2 AND ?3)) "
                 "RETURNING status, seq, owner_instance",
    [Q_RETRY] = "UPDATE jm_jobs SET status = 1, retry_count = 0, run_at = ?2, message = NULL, "
                "finished_at = NULL, cancel_requested = 0, pause_requested = 0, blocked_by = NULL, "
                "progress = 0, updated_at = ?2 "
                "WHERE seq = ?3 AND id = ?1 AND status IN (5, 6)",
    [Q_PRUNE] = "DELETE FROM jm_jobs WHERE seq IN (SELECT seq FROM jm_jobs "
                "INDEXED BY jm_jobs_finished "
                "WHERE status BETWEEN 4 AND 6 AND finished_at < ?1 LIMIT ?2)",
    [Q_RUNNING_OWNERS] = "SELECT DISTINCT owner_pid, owner_instance, node_id IS ?1 "
                         "FROM jm_jobs INDEXED BY jm_jobs_status "
                         "WHERE status = 2 AND owner_pid IS NOT NULL",
    [Q_RECOVER_OWNER] = "UPDATE jm_jobs INDEXED BY jm_jobs_status SET " RECOVER_SET
                        "WHERE status = 2 AND node_id = :node AND owner_pid = :pid "
                        "AND owner_instance = :instance",
    /* The owner's runs that started; the rest of its rows go by
     * Q_RELEASE_OWNER (see jm__sqlite_recover_owner). */
    [Q_RECOVER_RUN] = "UPDATE jm_jobs SET " RECOVER_SET
                      "WHERE seq = :seq AND attempts = :attempt AND status = 2 "
                      "AND node_id IS :node AND owner_pid = :pid AND owner_instance = :instance",
    [Q_RELEASE_OWNER] = "UPDATE jm_jobs INDEXED BY jm_jobs_status SET " RELEASE_SET
                        "WHERE status = 2 AND node_id IS :node AND owner_pid = :pid "
                        "AND owner_instance = :instance",
    /* A job on this node whose owner lives is never taken by its lease
     * alone: liveness beats a timestamp (recovery.c). */
    [Q_RECOVER_EXPIRED] = "UPDATE jm_jobs INDEXED BY jm_jobs_status SET " RECOVER_SET
                          "WHERE status = 2 AND (lease_until IS NULL OR lease_until < :now) "
                          "AND (node_id IS NOT :node OR owner_pid IS NULL)",
    /* A claimed job that never ran goes back without spending a retry,
     * unless a cancel was requested meanwhile. */
    [Q_RELEASE] = "UPDATE jm_jobs SET " RELEASE_SET
                  "WHERE seq = :seq AND status = 2 AND attempts = :attempt",
    /* Durability per transaction: see jm__sqlite_cycle. */
    [Q_SYNC_FULL] = "PRAGMA synchronous=FULL",
    [Q_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
    /* Metrics read in one snapshot: a deferred transaction takes no write
     * lock, so it never holds up claims or outcomes. */
    [Q_BEGIN_READ] = "BEGIN DEFERRED",
    /* Counts by type and status without reading every row (sqlite_stats.c):
     * totals by status and by type from their indexes alone, then rows
     * only for the statuses other than ?1, the most common one. */
    [Q_STATS_BY_STATUS] = "SELECT status, count(*) FROM jm_jobs INDEXED BY jm_jobs_status "
                          "GROUP BY status",
    [Q_STATS_BY_TYPE] = "SELECT type, count(*) FROM jm_jobs INDEXED BY jm_jobs_type GROUP BY type",
    [Q_STATS_COUNTS_EXCEPT] = "SELECT type, status, count(*) FROM jm_jobs INDEXED BY jm_jobs_status "
                              "WHERE status < ?1 OR status > ?1 GROUP BY type, status",
    /* ?1 now, ?2 the start of the failure window. Due jobs come from the
     * two partial indexes of active jobs, never from the finished ones. */
    [Q_STATS_QUEUE] =
        "SELECT due.n, due.oldest, "
        "(SELECT count(*) FROM jm_jobs INDEXED BY jm_jobs_status WHERE status = 2), "
        "(SELECT count(*) FROM jm_jobs INDEXED BY jm_jobs_finished "
        "  WHERE status BETWEEN 4 AND 6 AND status = 5 AND finished_at >= ?2) "
        "FROM (SELECT count(*) AS n, min(run_at) AS oldest FROM ("
        "  SELECT run_at FROM jm_jobs INDEXED BY jm_jobs_due "
        "    WHERE status IN (1, 3) AND blocked_by IS NULL AND run_at <= ?1 "
        "  UNION ALL "
        "  SELECT run_at FROM jm_jobs INDEXED BY jm_jobs_blocked "
        "    WHERE status IN (1, 3) AND blocked_by IS NOT NULL AND run_at <= ?1 "
        "  UNION ALL "
        "  SELECT run_at FROM jm_jobs INDEXED BY jm_jobs_scheduled "
        "    WHERE status = 0 AND run_at <= ?1)) AS due",
    /* ?1 the window's start, ?2 the bucket width, ?3 the window's end.
     * finished_at >= ?1, so the division truncates toward the bucket's
     * start. */
    [Q_THROUGHPUT] = "SELECT (finished_at - ?1) / ?2 AS bucket, status, count(*) "
                     "FROM jm_jobs INDEXED BY jm_jobs_finished "
                     "WHERE status BETWEEN 4 AND 6 AND finished_at >= ?1 AND finished_at < ?3 "
                     "GROUP BY bucket, status",
    /* A relative delay counts from when its row was written (updated_at):
     * rows written "after" now were written before the clock stepped back. */
    [Q_REBASE] = "UPDATE jm_jobs INDEXED BY jm_jobs_status "
                 "SET run_at = ?1 + max(0, run_at - updated_at), updated_at = ?1 "
                 "WHERE status IN (1, 3) AND updated_at > ?1",
    /* On the reader connection, right before a claimed job starts. */
    [Q_START_CHECK] = "SELECT status = 2 AND attempts = ?2, cancel_requested, pause_requested "
                      "FROM jm_jobs WHERE seq = ?1",
};

/* SQLite's message when a row breaks the idempotency index
 * (jm_jobs_idempotency, in sqlite_schema.c). */
#define IDEMPOTENCY_VIOLATION "UNIQUE constraint failed: jm_jobs.idempotency_key"

int jm__sqlite_err(jm__store *s, int rc, const char *what)
{
    const char *msg = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    int code = jm__sqlite_code(rc);
    /* Only a key held by an active job is a conflict the caller can act
     * on. SQLite names a unique index by its columns, and no other unique
     * index of ours is on idempotency_key; any other constraint failing (a
     * trigger or index added by hand, a damaged schema) is the database's
     * fault. */
    if (code == JM_ECONFLICT &&
        !(s && s->db && sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE &&
          strcmp(msg, IDEMPOTENCY_VIOLATION) == 0))
        code = JM_EDB;
    return jm__seterr(code, "%s: %s", what, msg);
}

int jm__sqlite_write(jm__store *s, sqlite3_stmt *st, const char *what, int64_t *changed)
{
    int src = sqlite3_step(st);
    if (changed)
        *changed = src == SQLITE_DONE ? sqlite3_changes64(s->db) : 0;
    sqlite3_reset(st);
    return src == SQLITE_DONE ? JM_OK : jm__sqlite_err(s, src, what);
}

/* The named parameters of the checked statements, in index order
 * (JM_PARAMS_* in sqlite_internal.h); NULL: bound by number or by name. */
static const char *const sql_params[Q_COUNT_] = {
    [Q_INSERT] = JM_PARAMS_INSERT(JM_PARAM_NAME, INSERT),
    [Q_TAKE] = JM_PARAMS_TAKE(JM_PARAM_NAME, TAKE),
    [Q_FINISH] = JM_PARAMS_FINISH(JM_PARAM_NAME, FINISH),
    [Q_FINISH_CANCELLABLE] = JM_PARAMS_FINISH(JM_PARAM_NAME, FINISH),
};

/* A statement's text and its binder's constants must agree. */
static int check_params(jm__query q, sqlite3_stmt *st)
{
    const char *want = sql_params[q];
    if (!want)
        return JM_OK;
    int i = 1;
    for (; *want; want += strlen(want) + 1, i++) {
        const char *got = sqlite3_bind_parameter_name(st, i);
        if (!got || strcmp(got, want) != 0)
            return jm__seterr(JM_EDB, "statement %d: parameter %d is %s where %s is bound",
                              (int)q, i, got ? got : "unnamed", want);
    }
    if (sqlite3_bind_parameter_count(st) != i - 1)
        return jm__seterr(JM_EDB, "statement %d has %d parameters, %d are bound", (int)q,
                          sqlite3_bind_parameter_count(st), i - 1);
    return JM_OK;
}

int jm__sqlite_stmt(jm__store *s, jm__query q, sqlite3_stmt **out)
{
    /* Durability is relaxed only for a claim-only cycle. Should restoring
     * it have failed then, restore it before anything else is written. */
    if (s->sync_relaxed && !s->relaxing && q != Q_SYNC_FULL && q != Q_SYNC_NORMAL) {
        sqlite3_stmt *full = NULL;
        int rc = jm__sqlite_stmt(s, Q_SYNC_FULL, &full);
        if (rc)
            return rc;
        int src = sqlite3_step(full);
        sqlite3_reset(full);
        if (src != SQLITE_DONE && src != SQLITE_ROW)
            return jm__sqlite_err(s, src, "restoring durability");
        s->sync_relaxed = 0;
    }
    if (!s->q[q]) {
        int rc = sqlite3_prepare_v3(s->db, sql_text[q], -1, SQLITE_PREPARE_PERSISTENT, &s->q[q],
                                    NULL);
        if (rc != SQLITE_OK)
            return jm__sqlite_err(s, rc, "preparing a statement");
        if ((rc = check_params(q, s->q[q])) != JM_OK) {
            sqlite3_finalize(s->q[q]);
            s->q[q] = NULL;
            return rc;
        }
    }
    *out = s->q[q];
    return JM_OK;
}

static int exec_simple(jm__store *s, jm__query q, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, q, &st);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return jm__sqlite_err(s, rc, what);
    return JM_OK;
}

int jm__sqlite_stmt_text(jm__store *s, sqlite3_stmt **slot, const char *sql,
                         sqlite3_stmt **out)
{
    if (s->sync_relaxed && !s->relaxing) {
        sqlite3_stmt *any = NULL;
        int rc = jm__sqlite_stmt(s, Q_COMMIT, &any);
        if (rc)
            return rc;
    }
    if (!*slot) {
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK)
            return jm__sqlite_err(s, rc, "preparing a statement");
    }
    *out = *slot;
    sqlite3_reset(*out);
    sqlite3_clear_bindings(*out);
    return JM_OK;
}

int jm__sqlite_get_by_ref(jm__store *s, sqlite3_stmt *st, const char *id_or_name,
                          const jm__sqlite_rows *k, void *out)
{
    int rc;
    jm__bind_text(st, 1, id_or_name);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = k->read(st, out);
    else if (src == SQLITE_DONE)
        rc = jm__seterr(JM_ENOTFOUND, "no %s '%.200s'", k->noun, id_or_name);
    else
        rc = jm__sqlite_err(s, src, k->reading);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int jm__sqlite_read_list(jm__store *s, sqlite3_stmt *st, const jm__sqlite_rows *k, void **out,
                         size_t *n)
{
    char *list = NULL; /* bytes: the element type is the caller's */
    size_t count = 0, cap = 0;
    int rc = JM_OK, src = SQLITE_DONE;
    while (rc == JM_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        char *grown = jm__array_grow(list, count, &cap, k->elem_size);
        if (!grown)
            rc = jm__seterr(JM_ENOMEM, "out of memory %s", k->listing);
        else if ((rc = k->read(st, (list = grown) + count * k->elem_size)) == JM_OK)
            count++;
    }
    if (rc == JM_OK && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, k->listing);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc) {
        k->free_list(list, count);
        return rc;
    }
    *out = list;
    *n = count;
    return JM_OK;
}

int jm__sqlite_begin(jm__store *s)
{
    return exec_simple(s, Q_BEGIN, "beginning a transaction");
}

int jm__sqlite_commit(jm__store *s)
{
    int rc = exec_simple(s, Q_COMMIT, "committing");
    /* A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY);
     * roll it back so the connection is usable and nothing half-done stays. */
    if (rc != JM_OK && !sqlite3_get_autocommit(s->db))
        jm__sqlite_rollback(s);
    return rc;
}

void jm__sqlite_rollback(jm__store *s)
{
    if (sqlite3_get_autocommit(s->db))
        return;
    sqlite3_stmt *st = NULL;
    if (jm__sqlite_stmt(s, Q_ROLLBACK, &st) == JM_OK) {
        sqlite3_step(st);
        sqlite3_reset(st);
    } else {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

int jm__bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* SQLite's default page cache (2 MiB) is smaller than the hot part of a
 * busy jobs table, and refilling evicted pages dominated the cost of a
 * batch. A fixed bound keeps memory flat however many jobs the table holds. */
#define JM_PAGE_CACHE_PRAGMA "PRAGMA cache_size=-8192"

/* Waiting for another writer. SQLite's built-in handler backs off to
 * 100 ms sleeps, so under contention a waiting connection keeps losing the
 * lock to busier ones and can wait out the whole timeout. Short sleeps of
 * random length (0.2 to 2 ms) keep the waiters in the race; the wait gives
 * up only when busy_timeout_ms has passed since it began. */
#define JM_BUSY_SLEEP_MIN_US 200
#define JM_BUSY_SLEEP_SPAN_US 1800

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int busy_wait(void *arg, int count)
{
    jm__store *s = arg;
    int64_t now = mono_us();
    if (count == 0)
        s->busy_since_us = now;
    if (now - s->busy_since_us >= s->busy_timeout_us)
        return 0;
    int64_t nap = JM_BUSY_SLEEP_MIN_US + (int64_t)(jm__random_unit() * JM_BUSY_SLEEP_SPAN_US);
    struct timespec ts = {0, (long)nap * 1000};
    nanosleep(&ts, NULL);
    return 1;
}

static int pragma(jm__store *s, const char *sql)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? JM_OK : jm__sqlite_err(s, rc, sql);
}

static void sqlite_close(jm__store *s)
{
    if (!s)
        return;
    jm__wal_checkpointer_stop(s);
    for (int i = 0; i < Q_COUNT_; i++)
        sqlite3_finalize(s->q[i]);
    for (int i = 0; i < JM_FILTER_SHAPES; i++)
        sqlite3_finalize(s->shape[i]);
    for (int i = 0; i < JM__SCHED_QUERIES; i++)
        sqlite3_finalize(s->sched[i]);
    for (int i = 0; i < JM__POLICY_QUERIES; i++)
        sqlite3_finalize(s->policy[i]);
    for (int i = 0; i < JM__GATE_QUERIES; i++)
        sqlite3_finalize(s->gate[i]);
    jm__sqlite_gate_free(s->gatep);
    sqlite3_close(s->db);
    jm__free(s);
}

/* The WAL-reset race: SQLite 3.7.0 through 3.51.2, fixed in 3.51.3 and
 * backported to 3.44.6 and 3.50.7. Only a system SQLite can have it. */
static int has_wal_reset_bug(void)
{
    int v = sqlite3_libversion_number();
    if (v >= 3051003 || (v >= 3050007 && v < 3051000) || (v >= 3044006 && v < 3045000))
        return 0;
    return v >= 3007000;
}

static const char *sqlite_caveat(void)
{
    return has_wal_reset_bug()
               ? "this SQLite has the WAL-reset bug (fixed in 3.51.3, 3.50.7, 3.44.6): the "
                 "jobs database is checkpointed on its writer connection only, but other "
                 "processes on the same file can still hit it; build with JM_SQLITE=bundled"
               : NULL;
}

static int sqlite_open(const jm__store_config *cfg, jm__store **out)
{
    *out = NULL;
    jm__store *s = jm__calloc(1, sizeof *s);
    if (!s)
        return jm__seterr(JM_ENOMEM, "out of memory opening the store");
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(cfg->path, &s->db, flags, cfg->vfs);
    if (rc != SQLITE_OK) {
        int code;
        if (!s->db)
            code = jm__seterr(JM_ENOMEM, "out of memory opening %s", cfg->path);
        else
            code = jm__sqlite_err(s, rc, cfg->path);
        sqlite_close(s);
        return code;
    }
    sqlite3_extended_result_codes(s->db, 1);
    s->busy_timeout_us = cfg->busy_timeout_ms > INT64_MAX / 1000 ? INT64_MAX
                                                                 : cfg->busy_timeout_ms * 1000;
    sqlite3_busy_handler(s->db, busy_wait, s);
    if (cfg->reader) {
        /* The writer connection made the schema; this one never writes. */
        if ((rc = pragma(s, "PRAGMA query_only=1"))) {
            sqlite_close(s);
            return rc;
        }
        *out = s;
        return JM_OK;
    }
    /* WAL lets readers (listing, inspection) run beside the one writer;
     * FULL sync makes every acknowledged create and completion durable
     * (JM_DURABLE_SYNC); NORMAL keeps the file intact and loses only
     * unsynced commits to a power cut (JM_DURABLE_PROCESS).
     * journal_mode=WAL is written into the file's header for good, so it
     * comes after the schema check: a file that is not a jobs database
     * (or has a newer schema) is refused without being touched. */
    s->durable_sync = cfg->durable_sync;
    if ((rc = pragma(s, s->durable_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")) ||
        (rc = pragma(s, JM_PAGE_CACHE_PRAGMA)) ||
        (rc = pragma(s, "PRAGMA foreign_keys=ON")) || (rc = jm__sqlite_schema(s)) ||
        (rc = pragma(s, "PRAGMA journal_mode=WAL"))) {
        sqlite_close(s);
        return rc;
    }
    /* A second connection checkpointing beside the writer is the very
     * pattern of the WAL-reset race. */
    if (!has_wal_reset_bug())
        jm__wal_checkpointer_start(s, cfg->path, cfg->vfs);
    *out = s;
    return JM_OK;
}

static const char *sqlite_file_path(jm__store *s)
{
    const char *path = sqlite3_db_filename(s->db, "main");
    return path && *path ? path : NULL;
}

const jm__store_ops jm__sqlite_store = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .insert = jm__sqlite_insert,
    .get = jm__sqlite_get,
    .list = jm__sqlite_list,
    .count = jm__sqlite_count,
    .claim = jm__sqlite_claim,
    .finish = jm__sqlite_finish,
    .cycle = jm__sqlite_cycle,
    .write_group = jm__sqlite_write_group,
    .schedule_insert = jm__sqlite_schedule_insert,
    .schedule_get = jm__sqlite_schedule_get,
    .schedule_list = jm__sqlite_schedule_list,
    .schedule_update = jm__sqlite_schedule_update,
    .schedule_delete = jm__sqlite_schedule_delete,
    .schedule_pause = jm__sqlite_schedule_pause,
    .schedule_due = jm__sqlite_schedule_due,
    .schedule_next_fire = jm__sqlite_schedule_next_fire,
    .schedule_fire = jm__sqlite_schedule_fire,
    .policy_insert = jm__sqlite_policy_insert,
    .policy_get = jm__sqlite_policy_get,
    .policy_list = jm__sqlite_policy_list,
    .policy_delete = jm__sqlite_policy_delete,
    .policy_pause = jm__sqlite_policy_pause,
    .keyed_job_created = jm__sqlite_keyed_job_created,
    .conflict_set = jm__sqlite_conflict_set,
    .limit_set = jm__sqlite_limit_set,
    .pause_set = jm__sqlite_pause_set,
    .pause_list = jm__sqlite_pause_list,
    .conflict_list = jm__sqlite_conflict_list,
    .limit_list = jm__sqlite_limit_list,
    .pause_job = jm__sqlite_pause_job,
    .resume_job = jm__sqlite_resume_job,
    .checkpoint = jm__sqlite_checkpoint,
    .progress = jm__sqlite_progress,
    .renew = jm__sqlite_renew,
    .cancel = jm__sqlite_cancel,
    .status = jm__sqlite_status,
    .retry = jm__sqlite_retry,
    .prune = jm__sqlite_prune,
    .settle = jm__wal_settle,
    .running_owners = jm__sqlite_running_owners,
    .recover_owner = jm__sqlite_recover_owner,
    .recover_expired = jm__sqlite_recover_expired,
    .rebase = jm__sqlite_rebase,
    .file_path = sqlite_file_path,
    .start_check = jm__sqlite_start_check,
    .caveat = sqlite_caveat,
    .release = jm__sqlite_release,
    .stats = jm__sqlite_stats,
    .throughput = jm__sqlite_throughput,
    .wake_open = jm__sqlite_wake_open,
    .wake_close = jm__sqlite_wake_close,
    .wake_post = jm__sqlite_wake_post,
    .wake_seq = jm__sqlite_wake_seq,
    .wake_wait = jm__sqlite_wake_wait,
    .wake_interrupt = jm__sqlite_wake_interrupt,
};
