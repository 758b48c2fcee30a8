/*
 * Creates the jobs schema or migrates an older one, in one transaction.
 * Each version's steps are applied in order; a database newer than this
 * library, or whose version table holds no valid version, is refused
 * rather than guessed at.
 */
#include <limits.h>
#include <stdio.h>

#include "error.h"
#include "text.h"
#include "sqlite_internal.h"

#define JM_SCHEMA_VERSION 6

/* Version 1. Statuses are stored as integers (jm_status). The rowid `seq`
 * orders rows by creation, so inserts append to the table and to the hot
 * indexes; the random part of ids only reaches the id index. Partial
 * indexes keep the claim, lease and prune paths small however many finished
 * jobs the table holds. */
static const char *const schema_v1[] = {
    "CREATE TABLE jm_jobs ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " type TEXT NOT NULL CHECK (length(type) = 2),"
    " status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 6),"
    " namespace_id TEXT,"
    " params TEXT NOT NULL,"
    " idempotency_key TEXT,"
    " message TEXT,"
    " exception_trace TEXT,"
    " result TEXT,"
    " checkpoint TEXT,"
    " node_id TEXT,"
    " owner_pid INTEGER,"
    " owner_instance INTEGER,"
    " progress REAL NOT NULL DEFAULT 0,"
    " retry_count INTEGER NOT NULL DEFAULT 0,"
    " max_retries INTEGER NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " started_at INTEGER,"
    " finished_at INTEGER,"
    " run_at INTEGER NOT NULL,"
    " lease_until INTEGER)",
    /* Idempotency: one active job per key, across threads and processes. */
    "CREATE UNIQUE INDEX jm_jobs_idempotency ON jm_jobs(idempotency_key) "
    "WHERE idempotency_key IS NOT NULL AND status IN (0, 1, 2, 3)",
    /* Claiming: due queued and retrying jobs in claim order. */
    "CREATE INDEX jm_jobs_due ON jm_jobs(priority DESC, run_at, seq) WHERE status IN (1, 3)",
    "CREATE INDEX jm_jobs_scheduled ON jm_jobs(run_at) WHERE status = 0",
    /* Leases and recovery: only running jobs. */
    "CREATE INDEX jm_jobs_running ON jm_jobs(lease_until) WHERE status = 2",
    /* Pruning: only finished jobs. */
    "CREATE INDEX jm_jobs_finished ON jm_jobs(finished_at) WHERE status IN (4, 5, 6)",
    /* Listing and counting by each filter, in creation order. */
    "CREATE INDEX jm_jobs_status ON jm_jobs(status, seq)",
    "CREATE INDEX jm_jobs_type ON jm_jobs(type, seq)",
    "CREATE INDEX jm_jobs_namespace ON jm_jobs(namespace_id, seq) "
    "WHERE namespace_id IS NOT NULL",
    "CREATE INDEX jm_jobs_created ON jm_jobs(created_at)",
    NULL,
};

/* Version 2: listing by idempotency key reached finished jobs only through
 * a full scan (the unique index holds active jobs only). */
static const char *const schema_v2[] = {
    "CREATE INDEX IF NOT EXISTS jm_jobs_key ON jm_jobs(idempotency_key, seq) "
    "WHERE idempotency_key IS NOT NULL",
    NULL,
};

/* Version 3.
 * - Status sets in partial indexes are ranges. SQLite evaluates a list of
 *   three or more values by building a temporary B-tree every time a
 *   statement runs, and every write evaluates every partial index's WHERE:
 *   that cost more than the write itself.
 * - The running index goes: running jobs are few (what the workers hold),
 *   and the status index reaches them without a move per claim and per
 *   heartbeat.
 * - created_at never decreases along seq (inserts clamp it to the newest
 *   row's), so a creation-time filter becomes a seq range found by binary
 *   search on the table itself: the first page of a time-filtered list is
 *   a few seeks, not a walk, and the created_at index, one more B-tree per
 *   insert and delete, goes. Older rows are brought in line here, once. */
static const char *const schema_v3[] = {
    "DROP INDEX IF EXISTS jm_jobs_idempotency",
    "CREATE UNIQUE INDEX jm_jobs_idempotency ON jm_jobs(idempotency_key) "
    "WHERE idempotency_key IS NOT NULL AND status <= 3",
    "DROP INDEX IF EXISTS jm_jobs_finished",
    "CREATE INDEX jm_jobs_finished ON jm_jobs(finished_at) WHERE status >= 4",
    "DROP INDEX IF EXISTS jm_jobs_running",
    "DROP INDEX IF EXISTS jm_jobs_created",
    "UPDATE jm_jobs SET created_at = m.mx FROM ("
    " SELECT seq, max(created_at) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS mx"
    " FROM jm_jobs) AS m "
    "WHERE jm_jobs.seq = m.seq AND jm_jobs.created_at < m.mx",
    NULL,
};

/* Version 4: an id ends in its row's seq (record/job_id.h), and the row
 * stores the rest: the id names its row without an index of its own, one
 * B-tree fewer for every insert to write. Ids written before carry no seq;
 * they stay stored whole, and only they are indexed. The UNIQUE column
 * constraint's index cannot be dropped, so the table is rebuilt, once.
 * The indexes are rebuilt without their trailing seq: every index entry
 * ends in the rowid, which is seq, so the order is the same and an entry
 * a quarter smaller. */
#define JM_JOBS_COLUMNS                                                                    \
    "seq, id, type, status, namespace_id, params, idempotency_key, message, "               \
    "exception_trace, result, checkpoint, node_id, owner_pid, owner_instance, progress, "   \
    "retry_count, max_retries, priority, attempts, cancel_requested, created_at, "          \
    "updated_at, started_at, finished_at, run_at, lease_until"

static const char *const schema_v4[] = {
    "CREATE TABLE jm_jobs_v4 ("
    " seq INTEGER PRIMARY KEY CHECK (seq < 281474976710656),"
    " id TEXT NOT NULL,"
    " type TEXT NOT NULL CHECK (length(type) = 2),"
    " status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 6),"
    " namespace_id TEXT,"
    " params TEXT NOT NULL,"
    " idempotency_key TEXT,"
    " message TEXT,"
    " exception_trace TEXT,"
    " result TEXT,"
    " checkpoint TEXT,"
    " node_id TEXT,"
    " owner_pid INTEGER,"
    " owner_instance INTEGER,"
    " progress REAL NOT NULL DEFAULT 0,"
    " retry_count INTEGER NOT NULL DEFAULT 0,"
    " max_retries INTEGER NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " started_at INTEGER,"
    " finished_at INTEGER,"
    " run_at INTEGER NOT NULL,"
    " lease_until INTEGER)",
    "INSERT INTO jm_jobs_v4 (" JM_JOBS_COLUMNS ") SELECT " JM_JOBS_COLUMNS " FROM jm_jobs",
    "DROP TABLE jm_jobs",
    "ALTER TABLE jm_jobs_v4 RENAME TO jm_jobs",
    /* Ids of earlier versions, stored whole. */
    "CREATE UNIQUE INDEX jm_jobs_legacy_id ON jm_jobs(id) WHERE length(id) > 27",
    "CREATE UNIQUE INDEX jm_jobs_idempotency ON jm_jobs(idempotency_key) "
    "WHERE idempotency_key IS NOT NULL AND status <= 3",
    "CREATE INDEX jm_jobs_key ON jm_jobs(idempotency_key) "
    "WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX jm_jobs_due ON jm_jobs(priority DESC, run_at) WHERE status IN (1, 3)",
    "CREATE INDEX jm_jobs_scheduled ON jm_jobs(run_at) WHERE status = 0",
    "CREATE INDEX jm_jobs_finished ON jm_jobs(finished_at) WHERE status >= 4",
    "CREATE INDEX jm_jobs_status ON jm_jobs(status)",
    "CREATE INDEX jm_jobs_type ON jm_jobs(type)",
    "CREATE INDEX jm_jobs_namespace ON jm_jobs(namespace_id) "
    "WHERE namespace_id IS NOT NULL",
    NULL,
};

/* Version 5: schedules. A job a schedule created carries the schedule's
 * id and its fire time, and the unique index makes a second job for one
 * fire time impossible, whoever fires. The partial index finds a
 * schedule's active jobs (the overlap policy) without reading its
 * finished ones. The trigger counts a schedule's failed jobs in a row, in
 * the transaction that records the outcome, and pauses it at its limit. */
static const char *const schema_v5[] = {
    "ALTER TABLE jm_jobs ADD COLUMN schedule_id TEXT",
    "ALTER TABLE jm_jobs ADD COLUMN fire_time INTEGER",
    "CREATE UNIQUE INDEX jm_jobs_fire ON jm_jobs(schedule_id, fire_time) "
    "WHERE schedule_id IS NOT NULL",
    "CREATE INDEX jm_jobs_schedule_active ON jm_jobs(schedule_id, status) "
    "WHERE schedule_id IS NOT NULL AND status <= 3",
    "CREATE TABLE jm_schedules ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " type TEXT NOT NULL CHECK (length(type) = 2),"
    " params TEXT NOT NULL,"
    " namespace_id TEXT,"
    " max_retries INTEGER NOT NULL,"
    " priority INTEGER NOT NULL,"
    " cron TEXT,"
    " tz TEXT,"
    " interval_ms INTEGER NOT NULL,"
    " anchor_ms INTEGER NOT NULL,"
    " jitter_ms INTEGER NOT NULL,"
    " overlap INTEGER NOT NULL,"
    " misfire INTEGER NOT NULL,"
    " catch_up_max INTEGER NOT NULL,"
    " pause_after_failures INTEGER NOT NULL,"
    " paused INTEGER NOT NULL,"
    " next_fire INTEGER NOT NULL,"
    " last_fire INTEGER NOT NULL DEFAULT 0,"
    " last_job_id TEXT,"
    " consecutive_failures INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL)",
    "CREATE INDEX jm_schedules_due ON jm_schedules(next_fire) WHERE paused = 0",
    "CREATE TRIGGER jm_schedules_outcome AFTER UPDATE OF status ON jm_jobs "
    "WHEN new.schedule_id IS NOT NULL AND new.status IN (4, 5) AND old.status <> new.status "
    "BEGIN UPDATE jm_schedules SET "
    " consecutive_failures = CASE WHEN new.status = 5 THEN consecutive_failures + 1 ELSE 0 END,"
    " paused = CASE WHEN new.status = 5 AND pause_after_failures > 0"
    "  AND consecutive_failures + 1 >= pause_after_failures THEN 1 ELSE paused END"
    " WHERE id = new.schedule_id; END",
    /* Table policies (the core evaluates them; their jobs are plain jobs
     * with a key per table). */
    "CREATE TABLE jm_policies ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " kind INTEGER NOT NULL,"
    " ns TEXT,"
    " tbl TEXT,"
    " table_type INTEGER NOT NULL,"
    " rows INTEGER NOT NULL,"
    " max_age_ms INTEGER NOT NULL,"
    " segments INTEGER NOT NULL,"
    " small_files INTEGER NOT NULL,"
    " small_bytes INTEGER NOT NULL,"
    " every_ms INTEGER NOT NULL,"
    " retention_hours INTEGER NOT NULL,"
    " priority INTEGER NOT NULL,"
    " paused INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL)",
    NULL,
};

/* Version 6: conflicts, limits and pauses.
 * - Status 7 (paused) joins the statuses: the table is rebuilt for its
 *   CHECK, once, and the partial indexes name their status sets so that a
 *   paused job stays active (its key held, its schedule's overlap counted)
 *   and is never pruned as finished.
 * - resource: what a job acts on. blocked_by: what held a due job back at
 *   the last claim that passed it (a running job's id, a limit, a pause);
 *   such a job leaves the due index for jm_jobs_blocked, so a claim never
 *   steps over it again while it stays blocked, and claims bring it back
 *   (sqlite_gate.c).
 * - pause_requested: jm_pause_job() of a running job, as cancel_requested.
 * - The rules every claim obeys, with jm_rules.version moved by every
 *   change so a connection rereads them only then. */
#define JM_JOBS_COLUMNS_V5 JM_JOBS_COLUMNS ", schedule_id, fire_time"

static const char *const schema_v6[] = {
    "CREATE TABLE jm_jobs_v6 ("
    " seq INTEGER PRIMARY KEY CHECK (seq < 281474976710656),"
    " id TEXT NOT NULL,"
    " type TEXT NOT NULL CHECK (length(type) = 2),"
    " status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 7),"
    " namespace_id TEXT,"
    " params TEXT NOT NULL,"
    " idempotency_key TEXT,"
    " message TEXT,"
    " exception_trace TEXT,"
    " result TEXT,"
    " checkpoint TEXT,"
    " node_id TEXT,"
    " owner_pid INTEGER,"
    " owner_instance INTEGER,"
    " progress REAL NOT NULL DEFAULT 0,"
    " retry_count INTEGER NOT NULL DEFAULT 0,"
    " max_retries INTEGER NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " started_at INTEGER,"
    " finished_at INTEGER,"
    " run_at INTEGER NOT NULL,"
    " lease_until INTEGER,"
    " schedule_id TEXT,"
    " fire_time INTEGER,"
    " resource TEXT,"
    " pause_requested INTEGER NOT NULL DEFAULT 0,"
    " blocked_by TEXT)",
    "INSERT INTO jm_jobs_v6 (" JM_JOBS_COLUMNS_V5 ") SELECT " JM_JOBS_COLUMNS_V5 " FROM jm_jobs",
    "DROP TABLE jm_jobs",
    "ALTER TABLE jm_jobs_v6 RENAME TO jm_jobs",
    "CREATE UNIQUE INDEX jm_jobs_legacy_id ON jm_jobs(id) WHERE length(id) > 27",
    "CREATE UNIQUE INDEX jm_jobs_idempotency ON jm_jobs(idempotency_key) "
    "WHERE idempotency_key IS NOT NULL AND (status <= 3 OR status = 7)",
    "CREATE INDEX jm_jobs_key ON jm_jobs(idempotency_key) "
    "WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX jm_jobs_due ON jm_jobs(priority DESC, run_at) "
    "WHERE status IN (1, 3) AND blocked_by IS NULL",
    "CREATE INDEX jm_jobs_blocked ON jm_jobs(blocked_by, priority DESC, run_at) "
    "WHERE status IN (1, 3) AND blocked_by IS NOT NULL",
    "CREATE INDEX jm_jobs_scheduled ON jm_jobs(run_at) WHERE status = 0",
    "CREATE INDEX jm_jobs_finished ON jm_jobs(finished_at) WHERE status BETWEEN 4 AND 6",
    "CREATE INDEX jm_jobs_status ON jm_jobs(status)",
    "CREATE INDEX jm_jobs_type ON jm_jobs(type)",
    "CREATE INDEX jm_jobs_namespace ON jm_jobs(namespace_id) "
    "WHERE namespace_id IS NOT NULL",
    "CREATE UNIQUE INDEX jm_jobs_fire ON jm_jobs(schedule_id, fire_time) "
    "WHERE schedule_id IS NOT NULL",
    "CREATE INDEX jm_jobs_schedule_active ON jm_jobs(schedule_id, status) "
    "WHERE schedule_id IS NOT NULL AND (status <= 3 OR status = 7)",
    "CREATE TRIGGER jm_schedules_outcome AFTER UPDATE OF status ON jm_jobs "
    "WHEN new.schedule_id IS NOT NULL AND new.status IN (4, 5) AND old.status <> new.status "
    "BEGIN UPDATE jm_schedules SET "
    " consecutive_failures = CASE WHEN new.status = 5 THEN consecutive_failures + 1 ELSE 0 END,"
    " paused = CASE WHEN new.status = 5 AND pause_after_failures > 0"
    "  AND consecutive_failures + 1 >= pause_after_failures THEN 1 ELSE paused END"
    " WHERE id = new.schedule_id; END",
    /* type_a <= type_b; '*' stands for every type. A pair's own row wins
     * over a '*' row. The defaults are docs/conflicts.md's. */
    "CREATE TABLE jm_conflicts ("
    " type_a TEXT NOT NULL, type_b TEXT NOT NULL, exclusive INTEGER NOT NULL,"
    " PRIMARY KEY (type_a, type_b)) WITHOUT ROWID",
    "INSERT INTO jm_conflicts VALUES ('*', 'CL', 1), ('*', 'RS', 1), ('CO', 'CO', 1), "
    "('BK', 'CO', 1)",
    /* '' stands for any type or resource, '*' for each resource apart. */
    "CREATE TABLE jm_limits ("
    " type TEXT NOT NULL, resource TEXT NOT NULL, max_running INTEGER NOT NULL,"
    " PRIMARY KEY (type, resource)) WITHOUT ROWID",
    "CREATE TABLE jm_pauses ("
    " scope INTEGER NOT NULL, what TEXT NOT NULL, since INTEGER NOT NULL,"
    " PRIMARY KEY (scope, what)) WITHOUT ROWID",
    "CREATE TABLE jm_rules (version INTEGER NOT NULL)",
    "INSERT INTO jm_rules VALUES (1)",
    NULL,
};

/* steps[v] brings a database from version v to v + 1. */
static const char *const *const steps[JM_SCHEMA_VERSION] = {
    schema_v1, schema_v2, schema_v3, schema_v4, schema_v5, schema_v6};

static int exec_all(jm__store *s, const char *const *sql)
{
    for (; *sql; sql++) {
        int rc = sqlite3_exec(s->db, *sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return jm__sqlite_err(s, rc, "creating the jobs schema");
    }
    return JM_OK;
}

/* The longest text version quoted in the error refusing it. */
#define VERSION_QUOTE_MAX 40

/* The stored version that is not one, as the error refusing it shows it:
 * a number as written, short printable text quoted, anything else by its
 * kind and size. */
static void describe_version(sqlite3_stmt *st, char *buf, size_t size)
{
    switch (sqlite3_column_type(st, 0)) {
    case SQLITE_INTEGER:
        snprintf(buf, size, "%lld", (long long)sqlite3_column_int64(st, 0));
        break;
    case SQLITE_FLOAT:
        snprintf(buf, size, "%g", sqlite3_column_double(st, 0));
        break;
    case SQLITE_TEXT: {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        if (t && n <= VERSION_QUOTE_MAX && jm__text_valid(t, (size_t)n))
            snprintf(buf, size, "'%s'", t);
        else
            snprintf(buf, size, "a %d-byte text", n);
        break;
    }
    default:
        snprintf(buf, size, "a %d-byte blob", sqlite3_column_bytes(st, 0));
        break;
    }
}

/* The stored version: 0 for a database without our tables. A version
 * table that holds no version, or one that is not a whole number from 1
 * to INT_MAX, is refused: guessing could migrate a database that is not
 * what its table says. */
static int read_version(jm__store *s, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                "AND name = 'jm_schema_version'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return jm__sqlite_err(s, rc, "reading the schema");
    rc = sqlite3_step(st);
    int exists = rc == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return jm__sqlite_err(s, rc, "reading the schema");
    *version = 0;
    if (!exists)
        return JM_OK;
    rc = sqlite3_prepare_v2(s->db, "SELECT max(version) FROM jm_schema_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return jm__sqlite_err(s, rc, "reading the schema version");
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return jm__sqlite_err(s, rc, "reading the schema version");
    }
    int type = sqlite3_column_type(st, 0);
    sqlite3_int64 v = type == SQLITE_INTEGER ? sqlite3_column_int64(st, 0) : 0;
    if (type == SQLITE_NULL) {
        rc = jm__seterr(JM_EDB, "the jobs database has a jm_schema_version table with no "
                                "version in it");
    } else if (type != SQLITE_INTEGER || v < 1 || v > INT_MAX) {
        char found[64];
        describe_version(st, found, sizeof found);
        rc = jm__seterr(JM_EDB, "the jobs database's schema version is not a valid version "
                                "number (found %s)",
                        found);
    } else {
        *version = (int)v;
        rc = JM_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int jm__sqlite_schema(jm__store *s)
{
    int rc = jm__sqlite_begin(s);
    if (rc)
        return rc;
    int version = 0;
    if ((rc = read_version(s, &version)))
        goto fail;
    if (version > JM_SCHEMA_VERSION) {
        rc = jm__seterr(JM_EDB,
                        "the jobs database has schema version %d, newer than this "
                        "library's %d",
                        version, JM_SCHEMA_VERSION);
        goto fail;
    }
    if (version == JM_SCHEMA_VERSION) {
        jm__sqlite_rollback(s);
        return JM_OK;
    }
    if (version == 0) {
        rc = sqlite3_exec(s->db, "CREATE TABLE jm_schema_version (version INTEGER NOT NULL)",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            rc = jm__sqlite_err(s, rc, "creating the jobs schema");
            goto fail;
        }
    }
    for (int v = version; v < JM_SCHEMA_VERSION; v++)
        if ((rc = exec_all(s, steps[v])))
            goto fail;
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM jm_schema_version; "
                              "INSERT INTO jm_schema_version VALUES (%d)", JM_SCHEMA_VERSION);
    rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = jm__sqlite_err(s, rc, "recording the schema version");
        goto fail;
    }
    return jm__sqlite_commit(s);
fail:
    jm__sqlite_rollback(s);
    return rc;
}
