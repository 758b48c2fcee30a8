/*
 * What only the PostgreSQL store has: opening by URL and schema, migration
 * by two managers at once and from version 1, node affinity, jm_pg_create_in() inside the
 * caller's transaction, a connection killed under a manager, and wake-ups
 * across processes by LISTEN/NOTIFY. The rest of the suite runs on
 * PostgreSQL too (the "_pg" twins of the tests, test_store.h).
 *
 * Needs JM_TEST_PG_URL (scripts/pg_server.sh); skipped (77) without it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "jobmgr.h"
#include "jobmgr/pg.h"
#include "script_fx.h"
#include "test_util.h"

static const char *url;

/* A schema no other test uses. */
static const char *fresh_schema(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "t_%s_%d", name, (int)getpid());
    return buf;
}

static jm_config pg_config(const char *schema)
{
    jm_config c = tu_config("unused");
    c.db_path = NULL;
    c.db_url = url;
    c.pg_schema = schema;
    return c;
}

static PGconn *connect_plain(void)
{
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static long long count_sql(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void config_needs_exactly_one_database(void **state)
{
    (void)state;
    jm_manager *m = NULL;
    jm_config c = pg_config("t_config_check");
    c.db_path = "/tmp/also.db";
    assert_int_equal(jm_open(&c, &m), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "exactly one"));
    c.db_path = NULL;
    c.db_url = NULL;
    assert_int_equal(jm_open(&c, &m), JM_EINVAL);
    c.db_url = "";
    assert_int_equal(jm_open(&c, &m), JM_EINVAL);
    assert_null(m);
}

static void bad_schema_names_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {"", "Upper", "1digit", "semi;colon", "quote\"d", "pg_catalog",
                         "a_name_that_is_far_too_long_for_a_schema_of_ours_x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        jm_config c = pg_config(bad[i]);
        jm_manager *m = NULL;
        assert_int_equal(jm_open(&c, &m), JM_EINVAL);
        assert_null(m);
    }
}

static void unreachable_server_is_an_io_error(void **state)
{
    (void)state;
    jm_config c = pg_config("t_unreachable");
    c.db_url = "postgresql:///nothing?host=/nonexistent-socket-dir&connect_timeout=2";
    c.busy_timeout_ms = 200;
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&c, &m), JM_EIO);
    assert_null(m);
    assert_non_null(strstr(jm_last_error(), "PostgreSQL"));
}

typedef struct opener {
    jm_config cfg;
    int rc;
} opener;

static void *open_close(void *arg)
{
    opener *o = arg;
    jm_manager *m = NULL;
    o->rc = jm_open(&o->cfg, &m);
    if (o->rc)
        printf("jm_open: %s\n", jm_last_error());
    jm_close(m);
    return NULL;
}

static void two_managers_migrate_once(void **state)
{
    (void)state;
    char schema[64];
    fresh_schema(schema, sizeof schema, "migrate");
    opener o[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        o[i].cfg = pg_config(schema);
        assert_int_equal(pthread_create(&t[i], NULL, open_close, &o[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(o[i].rc, JM_OK);
    }
    PGconn *c = connect_plain();
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".jm_schema_version", schema);
    assert_int_equal(count_sql(c, sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\".jm_conflicts", schema);
    assert_int_equal(count_sql(c, sql), 4); /* the defaults, once */
    PQfinish(c);
}

/* How many of the schema's jobs indexes are named `name` and have `def`
 * in their definition. */
static long long index_like(PGconn *c, const char *schema, const char *name, const char *def)
{
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_indexes WHERE schemaname = '%s' AND indexname = '%s' "
             "AND indexdef LIKE '%%%s%%'",
             schema, name, def);
    return count_sql(c, sql);
}

/* A schema left at version 1 by an older library: its listing indexes
 * cover every status, and an owner index stands beside the running one.
 * Opening it brings it to version 2 and keeps its jobs. */
static void version_1_schema_is_migrated(void **state)
{
    (void)state;
    char schema[64], sql[640];
    fresh_schema(schema, sizeof schema, "v1");
    jm_config cfg = pg_config(schema);
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    script sc;
    memset(&sc, 0, sizeof sc);
    sc.m = m;
    jm_executor ex = script_executor("TS", 1);
    assert_int_equal(jm_register(m, &ex, &sc), JM_OK);
    char id[JM_JOB_ID_SIZE];
    for (int i = 0; i < 3; i++)
        assert_int_equal(jm_create(m, "TS", "{}", NULL, id), JM_OK);
    jm_close(m);

    PGconn *c = connect_plain();
    snprintf(sql, sizeof sql, "SELECT max(version) FROM \"%s\".jm_schema_version", schema);
    assert_int_equal(count_sql(c, sql), 2);
    snprintf(sql, sizeof sql,
             "SET search_path TO \"%s\"; "
             "DROP INDEX jm_jobs_status, jm_jobs_type, jm_jobs_created; "
             "CREATE INDEX jm_jobs_owner ON jm_jobs(owner_instance) WHERE status = 2; "
             "CREATE INDEX jm_jobs_status ON jm_jobs(status, seq); "
             "CREATE INDEX jm_jobs_type ON jm_jobs(type, seq); "
             "CREATE INDEX jm_jobs_created ON jm_jobs(created_at); "
             "UPDATE jm_schema_version SET version = 1",
             schema);
    exec_ok(c, sql);

    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    snprintf(sql, sizeof sql, "SELECT max(version) FROM \"%s\".jm_schema_version", schema);
    assert_int_equal(count_sql(c, sql), 2);
    assert_int_equal(index_like(c, schema, "jm_jobs_owner", ""), 0);
    const char *listing[] = {"jm_jobs_status", "jm_jobs_type", "jm_jobs_created"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(index_like(c, schema, listing[i], "WHERE (status <> 2)"), 1);
    jm_filter f = JM_FILTER_INIT;
    int64_t n = -1;
    assert_int_equal(jm_count(m, &f, &n), JM_OK);
    assert_int_equal(n, 3);
    jm_close(m);
    PQfinish(c);
}

/* One jm_run_once(m, 1); how many ran. */
static int run_n(jm_manager *m)
{
    int ran = -1;
    assert_int_equal(jm_run_once(m, 1, &ran), JM_OK);
    return ran;
}

/* A manager of node `node` on `schema` connecting with `conninfo`. */
static jm_manager *open_node_with(const char *conninfo, const char *schema, const char *node,
                                  script *s)
{
    jm_config c = pg_config(schema);
    c.db_url = conninfo;
    c.node_id = node;
    jm_manager *m = NULL;
    if (jm_open(&c, &m) != JM_OK)
        fail_msg("jm_open: %s", jm_last_error());
    memset(s, 0, sizeof *s);
    s->m = m;
    jm_executor ex = script_executor("TS", 1);
    assert_int_equal(jm_register(m, &ex, s), JM_OK);
    return m;
}

static jm_manager *open_node(const char *schema, const char *node, script *s)
{
    return open_node_with(url, schema, node, s);
}

static void pinned_job_runs_only_on_its_node(void **state)
{
    (void)state;
    char schema[64];
    fresh_schema(schema, sizeof schema, "affinity");
    script sa, sb;
    jm_manager *a = open_node(schema, "node-a", &sa);
    jm_manager *b = open_node(schema, "node-b", &sb);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.node_id = "node-b";
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(a, "TS", NULL, &o, id), JM_OK);
    assert_int_equal(run_n(a), 0); /* not node-a's */
    assert_int_equal(tu_status(a, id), JM_STATUS_QUEUED);
    assert_int_equal(run_n(b), 1);
    assert_int_equal(tu_status(a, id), JM_STATUS_COMPLETED);
    char unpinned[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(b, "TS", NULL, NULL, unpinned), JM_OK);
    assert_int_equal(run_n(a), 1); /* any node's */
    jm_close(a);
    jm_close(b);
}

static void create_in_follows_the_callers_transaction(void **state)
{
    (void)state;
    char schema[64];
    fresh_schema(schema, sizeof schema, "create_in");
    script s;
    jm_manager *m = open_node(schema, "n1", &s);
    PGconn *c = connect_plain();

    char id[JM_JOB_ID_SIZE];
    exec_ok(c, "BEGIN");
    assert_int_equal(jm_pg_create_in(c, m, "TS", "{\"x\":1}", NULL, id), JM_OK);
    jm_job *j = NULL;
    assert_int_equal(jm_get(m, id, &j), JM_ENOTFOUND); /* not committed yet */
    exec_ok(c, "ROLLBACK");
    assert_int_equal(jm_get(m, id, &j), JM_ENOTFOUND); /* gone with the rollback */

    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = "k1";
    exec_ok(c, "BEGIN");
    assert_int_equal(jm_pg_create_in(c, m, "TS", NULL, &o, id), JM_OK);
    char again[JM_JOB_ID_SIZE];
    assert_int_equal(jm_pg_create_in(c, m, "TS", NULL, &o, again), JM_ECONFLICT);
    assert_string_equal(again, id);
    exec_ok(c, "SELECT 1"); /* the caller's transaction survived the conflict */
    exec_ok(c, "COMMIT");
    assert_int_equal(tu_status(m, id), JM_STATUS_QUEUED);
    assert_int_equal(run_n(m), 1);
    assert_int_equal(tu_status(m, id), JM_STATUS_COMPLETED);

    /* Checked as jm_create checks. */
    assert_int_equal(jm_pg_create_in(c, m, "TS", "[1]", NULL, id), JM_EJSON);
    assert_int_equal(jm_pg_create_in(c, m, "ZZ", NULL, NULL, id), JM_ENOEXEC);
    assert_int_equal(jm_pg_create_in(NULL, m, "TS", NULL, NULL, id), JM_EINVAL);
    PQfinish(c);
    jm_close(m);
}

static void killed_connection_is_replaced(void **state)
{
    (void)state;
    char schema[64];
    fresh_schema(schema, sizeof schema, "terminate");
    /* The manager's connections carry the schema as their application
     * name, so that only they are ended, not those of tests running
     * beside this one. */
    char conninfo[1024];
    int uri = strncmp(url, "postgres", 8) == 0;
    snprintf(conninfo, sizeof conninfo, "%s%sapplication_name=%s", url,
             uri ? (strchr(url, '?') ? "&" : "?") : " ", schema);
    script s;
    jm_manager *m = open_node_with(conninfo, schema, "n1", &s);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(m, "TS", NULL, NULL, id), JM_OK);
    PGconn *c = connect_plain();
    const char *v[1] = {schema};
    PGresult *r = PQexecParams(c,
                               "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE application_name = $1",
                               1, NULL, v, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(atoll(PQgetvalue(r, 0, 0)) >= 1);
    PQclear(r);
    PQfinish(c);
    /* The next call reconnects; nothing created before is lost. */
    char id2[JM_JOB_ID_SIZE];
    int rc = jm_create(m, "TS", NULL, NULL, id2);
    if (rc != JM_OK) /* the first statement on the dead connection may fail */
        assert_int_equal(jm_create(m, "TS", NULL, NULL, id2), JM_OK);
    assert_int_equal(tu_status(m, id), JM_STATUS_QUEUED);
    assert_int_equal(tu_status(m, id2), JM_STATUS_QUEUED);
    jm_close(m);
}

/* Backends whose last statement was `sql_text` (the wake-up connection's
 * LISTEN or UNLISTEN). */
static long long backends_last_ran(PGconn *c, const char *sql_text)
{
    const char *v[1] = {sql_text};
    PGresult *r = PQexecParams(c, "SELECT count(*) FROM pg_stat_activity WHERE query = $1", 1,
                               NULL, v, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

typedef struct last_ran {
    PGconn *c;
    const char *sql_text;
    long long want;
} last_ran;

static int last_ran_is(void *arg)
{
    last_ran *w = arg;
    return backends_last_ran(w->c, w->sql_text) == w->want;
}

static void wait_last_ran(PGconn *c, const char *sql_text, long long want)
{
    last_ran w = {c, sql_text, want};
    if (!tu_wait_until(last_ran_is, &w, TU_TIMEOUT_MS))
        fail_msg("%lld backends last ran %s, want %lld", backends_last_ran(c, sql_text),
                 sql_text, want);
}

/* The server keeps every notification for each listener until it reads
 * them: a manager whose workers do not run must not listen, or it would
 * hold the queue back for every node. */
static void listens_only_while_its_workers_run(void **state)
{
    (void)state;
    char schema[64], listen[128], unlisten[128];
    fresh_schema(schema, sizeof schema, "listen");
    snprintf(listen, sizeof listen, "LISTEN \"jm_wake_%s\"", schema);
    snprintf(unlisten, sizeof unlisten, "UNLISTEN \"jm_wake_%s\"", schema);
    script s;
    jm_manager *m = open_node(schema, "n1", &s);
    PGconn *c = connect_plain();
    assert_int_equal(backends_last_ran(c, listen), 0);
    assert_int_equal(jm_start(m, 1), JM_OK);
    wait_last_ran(c, listen, 1);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    /* jm_stop returns once the watcher stopped listening. */
    assert_int_equal(backends_last_ran(c, listen), 0);
    assert_int_equal(backends_last_ran(c, unlisten), 1);
    /* A second start listens again. */
    assert_int_equal(jm_start(m, 1), JM_OK);
    wait_last_ran(c, listen, 1);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    PQfinish(c);
    jm_close(m);
}

typedef struct counted {
    _Atomic int runs;
} counted;

static jm_decision count_run(void *self, jm_ctx *ctx)
{
    (void)ctx;
    counted *c = self;
    atomic_fetch_add(&c->runs, 1);
    return jm_decision_completed(NULL, NULL);
}

typedef struct runs_at_least {
    counted *c;
    int n;
} runs_at_least;

static int ran(void *arg)
{
    runs_at_least *r = arg;
    return atomic_load(&r->c->runs) >= r->n;
}

/* A producer in a process of its own (wake-ups go between processes):
 * creates one job for each byte read from `go`, acknowledging each on
 * `done`. Forked before the worker starts any thread. */
static void producer(const char *schema, int go, int done)
{
    jm_config c = pg_config(schema);
    c.node_id = "producer";
    jm_manager *m = NULL;
    if (jm_open(&c, &m) != JM_OK)
        _exit(2);
    script s;
    memset(&s, 0, sizeof s);
    jm_executor ex = script_executor("TS", 1);
    if (jm_register(m, &ex, &s) != JM_OK)
        _exit(3);
    char b;
    while (read(go, &b, 1) == 1) {
        char id[JM_JOB_ID_SIZE];
        if (jm_create(m, "TS", NULL, NULL, id) != JM_OK || write(done, "k", 1) != 1)
            _exit(4);
    }
    jm_close(m);
    _exit(0);
}

static void job_of_another_process_starts_without_polling(void **state)
{
    (void)state;
    char schema[64];
    fresh_schema(schema, sizeof schema, "notify");
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(go[1]);
        close(done[0]);
        producer(schema, go[0], done[1]);
    }
    close(go[0]);
    close(done[1]);

    jm_config cw = pg_config(schema);
    cw.node_id = "worker";
    cw.poll_interval_ms = 600000; /* only a notification can wake it in time */
    jm_manager *w = NULL;
    assert_int_equal(jm_open(&cw, &w), JM_OK);
    counted seen = {0};
    jm_executor ex;
    memset(&ex, 0, sizeof ex);
    ex.version = JM_EXECUTOR_VERSION;
    ex.type = "TS";
    ex.name = "count";
    ex.execute = count_run;
    assert_int_equal(jm_register(w, &ex, &seen), JM_OK);
    assert_int_equal(jm_start(w, 1), JM_OK);
    /* The first job may meet the worker's first look; once it ran, the
     * worker sleeps, and only the second job's notification wakes it
     * within the wait (far shorter than the poll interval). */
    for (int n = 1; n <= 2; n++) {
        char b;
        assert_int_equal(write(go[1], "g", 1), 1);
        assert_int_equal(read(done[0], &b, 1), 1);
        runs_at_least want = {&seen, n};
        assert_true(tu_wait_until(ran, &want, TU_TIMEOUT_MS));
    }
    close(go[1]);
    int st = 0;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(done[0]);
    jm_stop(w, 1);
    jm_close(w);
}

int main(void)
{
    url = getenv("JM_TEST_PG_URL");
    if (!url || !*url) {
        printf("skipped: JM_TEST_PG_URL is not set (scripts/pg_server.sh starts a server)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_needs_exactly_one_database),
        cmocka_unit_test(bad_schema_names_are_refused),
        cmocka_unit_test(unreachable_server_is_an_io_error),
        cmocka_unit_test(two_managers_migrate_once),
        cmocka_unit_test(version_1_schema_is_migrated),
        cmocka_unit_test(pinned_job_runs_only_on_its_node),
        cmocka_unit_test(create_in_follows_the_callers_transaction),
        cmocka_unit_test(killed_connection_is_replaced),
        cmocka_unit_test(listens_only_while_its_workers_run),
        cmocka_unit_test(job_of_another_process_starts_without_polling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
