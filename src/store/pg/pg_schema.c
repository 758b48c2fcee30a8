/* The PostgreSQL store's schema: created or migrated on open, in one
 * transaction, under an advisory lock so that two nodes starting at once
 * migrate once. The tables mirror the SQLite store's version 6, plus the
 * job's pinned node (node affinity); the indexes differ (version 2). */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "pg_internal.h"

#define JM_PG_SCHEMA_VERSION 2

/* The lock every migration of any schema takes ("jobmgr" in ASCII): a
 * CREATE SCHEMA racing another would fail otherwise. */
#define SCHEMA_LOCK "7012345678"

/* Version 1. Statuses as in the SQLite store (pg_internal.h's legend);
 * "status <= 3 OR status = 7" is active, "status BETWEEN 4 AND 6"
 * finished. */
static const char *const schema_v1[] = {
    "CREATE TABLE jm_schema_version (version integer NOT NULL)",
    "CREATE TABLE jm_jobs ("
    " seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY CHECK (seq < 281474976710656),"
    " id text NOT NULL,"
    " type text NOT NULL CHECK (length(type) = 2),"
    " status integer NOT NULL CHECK (status BETWEEN 0 AND 7),"
    " namespace_id text,"
    " params text NOT NULL,"
    " idempotency_key text,"
    " message text,"
    " exception_trace text,"
    " result text,"
    " checkpoint text,"
    " node_id text,"
    " owner_pid bigint,"
    " owner_instance bigint,"
    " progress double precision NOT NULL DEFAULT 0,"
    " retry_count integer NOT NULL DEFAULT 0,"
    " max_retries integer NOT NULL,"
    " priority integer NOT NULL DEFAULT 0,"
    " attempts integer NOT NULL DEFAULT 0,"
    " cancel_requested integer NOT NULL DEFAULT 0,"
    " created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL,"
    " started_at bigint,"
    " finished_at bigint,"
    " run_at bigint NOT NULL,"
    " lease_until bigint,"
    " schedule_id text,"
    " fire_time bigint,"
    " resource text,"
    " pause_requested integer NOT NULL DEFAULT 0,"
    " blocked_by text,"
    " pinned_node text)",
    "CREATE UNIQUE INDEX jm_jobs_idempotency ON jm_jobs(idempotency_key) "
    "WHERE idempotency_key IS NOT NULL AND (status <= 3 OR status = 7)",
    "CREATE INDEX jm_jobs_key ON jm_jobs(idempotency_key, seq) "
    "WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX jm_jobs_due ON jm_jobs(priority DESC, run_at, seq) "
    "WHERE status IN (1, 3) AND blocked_by IS NULL",
    "CREATE INDEX jm_jobs_blocked ON jm_jobs(blocked_by, priority DESC, run_at) "
    "WHERE status IN (1, 3) AND blocked_by IS NOT NULL",
    "CREATE INDEX jm_jobs_scheduled ON jm_jobs(run_at) WHERE status = 0",
    "CREATE INDEX jm_jobs_running ON jm_jobs(lease_until) WHERE status = 2",
    "CREATE INDEX jm_jobs_owner ON jm_jobs(owner_instance) WHERE status = 2",
    "CREATE INDEX jm_jobs_finished ON jm_jobs(finished_at) WHERE status BETWEEN 4 AND 6",
    "CREATE INDEX jm_jobs_status ON jm_jobs(status, seq)",
    "CREATE INDEX jm_jobs_type ON jm_jobs(type, seq)",
    "CREATE INDEX jm_jobs_namespace ON jm_jobs(namespace_id, seq) "
    "WHERE namespace_id IS NOT NULL",
    "CREATE INDEX jm_jobs_created ON jm_jobs(created_at)",
    "CREATE UNIQUE INDEX jm_jobs_fire ON jm_jobs(schedule_id, fire_time) "
    "WHERE schedule_id IS NOT NULL",
    "CREATE INDEX jm_jobs_schedule_active ON jm_jobs(schedule_id, status) "
    "WHERE schedule_id IS NOT NULL AND (status <= 3 OR status = 7)",
    "CREATE TABLE jm_schedules ("
    " id text PRIMARY KEY,"
    " name text NOT NULL UNIQUE,"
    " type text NOT NULL CHECK (length(type) = 2),"
    " params text NOT NULL,"
    " namespace_id text,"
    " max_retries integer NOT NULL,"
    " priority integer NOT NULL,"
    " cron text,"
    " tz text,"
    " interval_ms bigint NOT NULL,"
    " anchor_ms bigint NOT NULL,"
    " jitter_ms bigint NOT NULL,"
    " overlap integer NOT NULL,"
    " misfire integer NOT NULL,"
    " catch_up_max integer NOT NULL,"
    " pause_after_failures integer NOT NULL,"
    " paused integer NOT NULL,"
    " next_fire bigint NOT NULL,"
    " last_fire bigint NOT NULL DEFAULT 0,"
    " last_job_id text,"
    " consecutive_failures integer NOT NULL DEFAULT 0,"
    " created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL)",
    "CREATE INDEX jm_schedules_due ON jm_schedules(next_fire) WHERE paused = 0",
    /* A schedule's failures in a row, and its pause at the limit, move in
     * the transaction that records the outcome. */
    "CREATE FUNCTION jm_schedule_outcome() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    " UPDATE jm_schedules SET"
    "  consecutive_failures = CASE WHEN NEW.status = 5 THEN consecutive_failures + 1"
    "   ELSE 0 END,"
    "  paused = CASE WHEN NEW.status = 5 AND pause_after_failures > 0"
    "   AND consecutive_failures + 1 >= pause_after_failures THEN 1 ELSE paused END"
    " WHERE id = NEW.schedule_id;"
    " RETURN NULL; END $$",
    "CREATE TRIGGER jm_schedules_outcome AFTER UPDATE OF status ON jm_jobs "
    "FOR EACH ROW WHEN (NEW.schedule_id IS NOT NULL AND NEW.status IN (4, 5) "
    "AND OLD.status <> NEW.status) EXECUTE FUNCTION jm_schedule_outcome()",
    "CREATE TABLE jm_policies ("
    " id text PRIMARY KEY,"
    " name text NOT NULL UNIQUE,"
    " kind integer NOT NULL,"
    " ns text,"
    " tbl text,"
    " table_type integer NOT NULL,"
    " rows bigint NOT NULL,"
    " max_age_ms bigint NOT NULL,"
    " segments bigint NOT NULL,"
    " small_files bigint NOT NULL,"
    " small_bytes bigint NOT NULL,"
    " every_ms bigint NOT NULL,"
    " retention_hours bigint NOT NULL,"
    " priority integer NOT NULL,"
    " paused integer NOT NULL,"
    " created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL)",
    /* The rules (docs/conflicts.md); type_a <= type_b, '*' every type. */
    "CREATE TABLE jm_conflicts ("
    " type_a text NOT NULL, type_b text NOT NULL, exclusive integer NOT NULL,"
    " PRIMARY KEY (type_a, type_b))",
    "INSERT INTO jm_conflicts VALUES ('*', 'CL', 1), ('*', 'RS', 1), ('CO', 'CO', 1), "
    "('BK', 'CO', 1)",
    "CREATE TABLE jm_limits ("
    " type text NOT NULL, resource text NOT NULL, max_running integer NOT NULL,"
    " PRIMARY KEY (type, resource))",
    "CREATE TABLE jm_pauses ("
    " scope integer NOT NULL, what text NOT NULL, since bigint NOT NULL,"
    " PRIMARY KEY (scope, what))",
    "CREATE TABLE jm_rules (version bigint NOT NULL)",
    "INSERT INTO jm_rules VALUES (1)",
    "INSERT INTO jm_schema_version VALUES (1)",
    NULL,
};

/* Version 2: a claim writes two index entries instead of six. An update
 * that changes the status writes the new row version into every index
 * whose predicate it meets, and a claim (queued to running) met them all:
 * the listing indexes of status, type and creation time, and the owner
 * index beside the running one. The listing indexes now hold every job
 * but a running one (running jobs are few, and the running index finds
 * them), and the running index serves the owner's look-ups. Measured with
 * 2 workers on no-op jobs: the server spent 78 us per job, 41 us without
 * those four indexes. */
static const char *const schema_v2[] = {
    "DROP INDEX jm_jobs_owner",
    "DROP INDEX jm_jobs_status",
    "DROP INDEX jm_jobs_type",
    "DROP INDEX jm_jobs_created",
    "CREATE INDEX jm_jobs_status ON jm_jobs(status, seq) WHERE status <> 2",
    "CREATE INDEX jm_jobs_type ON jm_jobs(type, seq) WHERE status <> 2",
    "CREATE INDEX jm_jobs_created ON jm_jobs(created_at) WHERE status <> 2",
    NULL,
};

static const char *const *const steps[JM_PG_SCHEMA_VERSION] = {schema_v1, schema_v2};

static int exec_all(jm__store *s, const char *const *sql)
{
    for (int rc; *sql; sql++)
        if ((rc = jm__pg_exec(s, "creating the jobs schema", *sql)))
            return rc;
    return JM_OK;
}

/* The stored version: 0 when the schema has no jobs tables yet. */
static int read_version(jm__store *s, int *version)
{
    static const char exists_sql[] =
        "SELECT count(*) FROM pg_catalog.pg_tables "
        "WHERE schemaname = $1 AND tablename = 'jm_schema_version'";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, s->schema);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading the schema", exists_sql, &p, &r);
    if (rc)
        return rc;
    int exists = jm__pg_i64(r, 0, 0) > 0;
    PQclear(r);
    *version = 0;
    if (!exists)
        return JM_OK;
    static const char version_sql[] = "SELECT max(version) FROM jm_schema_version";
    if ((rc = jm__pg_run(s, "reading the schema version", version_sql, NULL, &r)))
        return rc;
    int none = PQgetisnull(r, 0, 0);
    int64_t v = jm__pg_i64(r, 0, 0);
    PQclear(r);
    if (none || v < 1)
        return jm__seterr(JM_EDB, "schema %s has a jm_schema_version table with no valid "
                                  "version in it",
                          s->schema);
    if (v > JM_PG_SCHEMA_VERSION)
        return jm__seterr(JM_EDB,
                          "schema %s is at version %lld, newer than this library's %d: "
                          "open it with a newer jobmgr",
                          s->schema, (long long)v, JM_PG_SCHEMA_VERSION);
    *version = (int)v;
    return JM_OK;
}

int jm__pg_schema_ensure(jm__store *s)
{
    int rc = jm__pg_begin(s, "creating the jobs schema");
    if (rc)
        return rc;
    int version = 0;
    char create[160];
    snprintf(create, sizeof create, "CREATE SCHEMA IF NOT EXISTS %s", s->schema_quoted);
    if (!(rc = jm__pg_exec(s, "locking the schema for migration",
                           "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")")) &&
        !(rc = jm__pg_exec(s, "creating the jobs schema", create)) &&
        !(rc = read_version(s, &version))) {
        for (int v = version; v < JM_PG_SCHEMA_VERSION && !rc; v++)
            rc = exec_all(s, steps[v]);
        if (!rc && version < JM_PG_SCHEMA_VERSION) {
            char set[96];
            snprintf(set, sizeof set, "UPDATE jm_schema_version SET version = %d",
                     JM_PG_SCHEMA_VERSION);
            rc = jm__pg_exec(s, "recording the schema version", set);
        }
    }
    if (rc) {
        jm__pg_rollback(s);
        return rc;
    }
    return jm__pg_commit(s, "creating the jobs schema");
}

void jm__pg_channel(const jm__store *s, char *plain, size_t plain_size, char *quoted,
                    size_t quoted_size)
{
    if (plain)
        snprintf(plain, plain_size, "jm_wake_%s", s->schema);
    if (quoted)
        snprintf(quoted, quoted_size, "\"jm_wake_%s\"", s->schema);
}
