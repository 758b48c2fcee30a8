/*
 * Table policies (src/core/policy.c, policy_eval.c, the store's policy
 * ops): checking specs, the rules of each kind against a host's figures,
 * one job per table at a time, periods, filters, pausing, and the run
 * loop evaluating on its own. The host here is a table of figures the
 * test sets; it serves only the two operations policies use.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobmgr.h"
#include "jobmgr/engine.h"
#include "jobmgr/host.h"
#include "test_util.h"

#define T0 INT64_C(1800000000000)
#define NTABLES 4

typedef struct table {
    const char *ns, *name;
    jm_table_type type;
    jm_host_figures f;
} table;

typedef struct fixture {
    char *dir, *db;
    tu_clock clk;
    jm_host host;
    pthread_mutex_t lock;
    table t[NTABLES];
    int64_t asked_small; /* the small_bytes of the last table_figures call */
    int64_t asked_deleted_before; /* ... and its deleted_before */
    jm_manager *m;
} fixture;

static int list_tables(void *self, int (*each)(void *, const char *, const char *, jm_table_type),
                       void *arg)
{
    fixture *f = self;
    for (int i = 0; i < NTABLES; i++) {
        int rc = each(arg, f->t[i].ns, f->t[i].name, f->t[i].type);
        if (rc)
            return rc;
    }
    return JM_OK;
}

static int table_figures(void *self, const char *ns, const char *name, int64_t now,
                         int64_t small_bytes, int64_t deleted_before, jm_host_figures *out)
{
    fixture *f = self;
    (void)now;
    pthread_mutex_lock(&f->lock);
    f->asked_small = small_bytes;
    f->asked_deleted_before = deleted_before;
    for (int i = 0; i < NTABLES; i++)
        if (strcmp(f->t[i].ns, ns) == 0 && strcmp(f->t[i].name, name) == 0) {
            *out = f->t[i].f;
            pthread_mutex_unlock(&f->lock);
            return JM_OK;
        }
    pthread_mutex_unlock(&f->lock);
    return jm_host_error(JM_ENOTFOUND, "no table %s.%s", ns, name);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clk.now, T0);
    pthread_mutex_init(&f->lock, NULL);
    f->t[0] = (table){"app", "orders", JM_TABLE_SHARED, {0}};
    f->t[1] = (table){"app", "users", JM_TABLE_USER, {0}};
    f->t[2] = (table){"app", "events", JM_TABLE_STREAM, {0}};
    f->t[3] = (table){"ops", "orders", JM_TABLE_SHARED, {0}};
    for (int i = 0; i < NTABLES; i++)
        f->t[i].f.type = f->t[i].type;
    f->host.version = JM_HOST_VERSION;
    f->host.self = f;
    f->host.list_tables = list_tables;
    f->host.table_figures = table_figures;
    jm_config cfg = tu_config(f->db);
    cfg.now_ms = tu_fake_now;
    cfg.now_user = &f->clk;
    cfg.host = &f->host;
    assert_int_equal(jm_open(&cfg, &f->m), JM_OK);
    assert_int_equal(jm_register_builtin(f->m), JM_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    jm_close(f->m);
    pthread_mutex_destroy(&f->lock);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static jm_policy_spec policy(const char *name, jm_policy_kind kind)
{
    jm_policy_spec p = JM_POLICY_SPEC_INIT;
    p.name = name;
    p.kind = kind;
    return p;
}

static void add(fixture *f, jm_policy_spec p)
{
    char id[JM_SCHEDULE_ID_SIZE];
    int rc = jm_policy_create(f->m, &p, id);
    if (rc)
        fail_msg("jm_policy_create: %s: %s", jm_err_name(rc), jm_last_error());
}

static int evaluate(fixture *f)
{
    int n = -1;
    int rc = jm_policy_evaluate(f->m, &n);
    if (rc)
        fail_msg("jm_policy_evaluate: %s: %s", jm_err_name(rc), jm_last_error());
    return n;
}

static int64_t jobs_where(fixture *f, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jm_jobs WHERE %s", where);
    return tu_sql_int(f->db, sql);
}

static void bad_specs_are_refused(void **state)
{
    fixture *f = *state;
    char id[JM_SCHEDULE_ID_SIZE];
    struct {
        jm_policy_spec p;
        const char *needle;
    } bad[12];
    int n = 0;
    bad[n].p = policy("f", JM_POLICY_FLUSH), bad[n++].needle = "needs rows or max_age_ms";
    bad[n].p = policy("c", JM_POLICY_COMPACT), bad[n++].needle = "needs segments or small_files";
    bad[n].p = policy("r", JM_POLICY_RETENTION), bad[n].p.retention_hours = 1,
    bad[n++].needle = "every_ms of at least";
    bad[n].p = policy("r", JM_POLICY_RETENTION), bad[n].p.every_ms = 1000,
    bad[n++].needle = "retention_hours";
    bad[n].p = policy("s", JM_POLICY_STREAM_EVICTION), bad[n].p.every_ms = 1000,
    bad[n].p.table_type = JM_TABLE_USER, bad[n++].needle = "stream tables only";
    bad[n].p = policy("x", (jm_policy_kind)9), bad[n++].needle = "unknown policy kind 9";
    bad[n].p = policy("t", JM_POLICY_FLUSH), bad[n].p.rows = 1, bad[n].p.table = "orders",
    bad[n++].needle = "needs its namespace";
    bad[n].p = policy("t", JM_POLICY_FLUSH), bad[n].p.rows = 1, bad[n].p.ns = "../x",
    bad[n++].needle = "policy namespace";
    bad[n].p = policy("t", JM_POLICY_FLUSH), bad[n].p.rows = -1,
    bad[n++].needle = "must not be negative";
    bad[n].p = policy("t", JM_POLICY_FLUSH), bad[n].p.rows = 1, bad[n].p.table_type = 5,
    bad[n++].needle = "table_type";
    bad[n].p = policy(NULL, JM_POLICY_FLUSH), bad[n].p.rows = 1, bad[n++].needle = "name is NULL";
    bad[n].p = policy("v", JM_POLICY_FLUSH), bad[n].p.rows = 1, bad[n].p.version = 7,
    bad[n++].needle = "version";
    for (int i = 0; i < n; i++) {
        int rc = jm_policy_create(f->m, &bad[i].p, id);
        if (rc != JM_EINVAL || !strstr(jm_last_error(), bad[i].needle))
            fail_msg("case %d: expected JM_EINVAL with '%s', got %s: %s", i, bad[i].needle,
                     jm_err_name(rc), jm_last_error());
    }
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_policies"), 0);
}

static void create_list_pause_delete(void **state)
{
    fixture *f = *state;
    jm_policy_spec p = policy("flush-big", JM_POLICY_FLUSH);
    p.rows = 100;
    p.ns = "app";
    char id[JM_SCHEDULE_ID_SIZE], id2[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_policy_create(f->m, &p, id), JM_OK);
    assert_memory_equal(id, "PO-", 3);
    assert_int_equal(jm_policy_create(f->m, &p, id2), JM_ECONFLICT);
    jm_policy *got = NULL;
    assert_int_equal(jm_policy_get(f->m, "flush-big", &got), JM_OK);
    assert_string_equal(got->id, id);
    assert_int_equal(got->spec.rows, 100);
    assert_string_equal(got->spec.ns, "app");
    assert_null(got->spec.table);
    assert_int_equal(got->spec.table_type, -1);
    jm_policy_free(got);
    p.name = "another";
    assert_int_equal(jm_policy_create(f->m, &p, id2), JM_OK);
    jm_policy **list = NULL;
    size_t n = 0;
    assert_int_equal(jm_policy_list(f->m, &list, &n), JM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->spec.name, "another");
    jm_policy_list_free(list, n);
    assert_int_equal(jm_policy_pause(f->m, id), JM_OK);
    assert_int_equal(jm_policy_get(f->m, id, &got), JM_OK);
    assert_int_equal(got->spec.paused, 1);
    jm_policy_free(got);
    assert_int_equal(jm_policy_resume(f->m, "flush-big"), JM_OK);
    assert_int_equal(jm_policy_delete(f->m, "flush-big"), JM_OK);
    assert_int_equal(jm_policy_get(f->m, id, &got), JM_ENOTFOUND);
    assert_int_equal(jm_policy_delete(f->m, id), JM_ENOTFOUND);
}

static void needs_a_host_that_lists_tables(void **state)
{
    fixture *f = *state;
    f->host.version = 1;
    int n = 0;
    assert_int_equal(jm_policy_evaluate(f->m, &n), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "version 2"));
    f->host.version = JM_HOST_VERSION;
}

static void flush_by_rows_one_job_per_table(void **state)
{
    fixture *f = *state;
    jm_policy_spec p = policy("flush", JM_POLICY_FLUSH);
    p.rows = 100;
    p.priority = 5;
    add(f, p);
    f->t[0].f.buffered_rows = 99;
    assert_int_equal(evaluate(f), 0);
    f->t[0].f.buffered_rows = 100;
    f->t[3].f.buffered_rows = 500;
    assert_int_equal(evaluate(f), 2);
    /* A busy table never gets a second flush queued. */
    assert_int_equal(evaluate(f), 0);
    assert_int_equal(jobs_where(f, "type = 'FL'"), 2);
    assert_int_equal(jobs_where(f, "idempotency_key = 'policy:flush:app.orders' AND "
                                   "namespace_id = 'app' AND priority = 5 AND params = "
                                   "'{\"namespace_id\":\"app\",\"table_name\":\"orders\","
                                   "\"table_type\":\"Shared\",\"flush_threshold\":1}'"),
                     1);
    /* Once it has finished, the table may get another. */
    tu_sql_exec(f->db, "UPDATE jm_jobs SET status = 4, finished_at = 1 "
                       "WHERE idempotency_key = 'policy:flush:app.orders'");
    assert_int_equal(evaluate(f), 1);
    assert_int_equal(jobs_where(f, "idempotency_key = 'policy:flush:app.orders'"), 2);
}

static void flush_by_age(void **state)
{
    fixture *f = *state;
    jm_policy_spec p = policy("aged", JM_POLICY_FLUSH);
    p.max_age_ms = 60000;
    add(f, p);
    f->t[1].f.buffered_rows = 1;
    f->t[1].f.oldest_buffered_at = T0 - 59999;
    assert_int_equal(evaluate(f), 0);
    tu_clock_advance(&f->clk, 1);
    assert_int_equal(evaluate(f), 1);
    assert_int_equal(jobs_where(f, "idempotency_key = 'policy:flush:app.users'"), 1);
}

static void compact_by_segments_or_small_files(void **state)
{
    fixture *f = *state;
    jm_policy_spec p = policy("compact", JM_POLICY_COMPACT);
    p.segments = 10;
    p.small_files = 3;
    p.small_bytes = 3 << 20;
    add(f, p);
    f->t[0].f.segments = 9;
    f->t[0].f.small_segments = 3;
    assert_int_equal(evaluate(f), 0);
    assert_int_equal(f->asked_small, 3 << 20);
    f->t[0].f.small_segments = 4;
    f->t[3].f.segments = 10;
    assert_int_equal(evaluate(f), 2);
    assert_int_equal(jobs_where(f, "type = 'CO' AND params LIKE '%\"target_file_size_mb\":3}'"),
                     2);
}

static void retention_at_most_every_period(void **state)
{
    fixture *f = *state;
    jm_policy_spec p = policy("retain", JM_POLICY_RETENTION);
    p.every_ms = 3600000;
    p.retention_hours = 24;
    p.table = "orders";
    p.ns = "ops";
    add(f, p);
    f->t[3].f.deleted_rows = 5;
    f->t[0].f.deleted_rows = 5; /* another table: not this policy's */
    assert_int_equal(evaluate(f), 1);
    /* Rows deleted more than 24 hours ago are what it asks about. */
    assert_int_equal(f->asked_deleted_before, T0 - 24 * INT64_C(3600000));
    assert_int_equal(jobs_where(f, "type = 'RT' AND params LIKE '%\"retention_hours\":24}'"), 1);
    /* Done, but within the period: nothing new. */
    tu_sql_exec(f->db, "UPDATE jm_jobs SET status = 4, finished_at = 1");
    tu_clock_advance(&f->clk, 3599999);
    assert_int_equal(evaluate(f), 0);
    tu_clock_advance(&f->clk, 1);
    assert_int_equal(evaluate(f), 1);
    assert_int_equal(jobs_where(f, "type = 'RT'"), 2);
}

static void stream_eviction_only_where_rows_expired(void **state)
{
    fixture *f = *state;
    jm_policy_spec p = policy("evict", JM_POLICY_STREAM_EVICTION);
    p.every_ms = 60000;
    add(f, p);
    f->t[2].f.ttl_seconds = 3600;
    assert_int_equal(evaluate(f), 0);
    f->t[2].f.expired_rows = 10;
    f->t[0].f.expired_rows = 10; /* not a stream table */
    assert_int_equal(evaluate(f), 1);
    assert_int_equal(jobs_where(f, "type = 'SE' AND idempotency_key = "
                                   "'policy:stream_eviction:app.events' AND params LIKE "
                                   "'%\"ttl_seconds\":3600}'"),
                     1);
}

static void filters_by_namespace_and_type_and_pause(void **state)
{
    fixture *f = *state;
    jm_policy_spec p = policy("shared-in-app", JM_POLICY_FLUSH);
    p.rows = 1;
    p.ns = "app";
    p.table_type = JM_TABLE_SHARED;
    add(f, p);
    for (int i = 0; i < NTABLES; i++)
        f->t[i].f.buffered_rows = 10;
    assert_int_equal(jm_policy_pause(f->m, "shared-in-app"), JM_OK);
    assert_int_equal(evaluate(f), 0);
    assert_int_equal(jm_policy_resume(f->m, "shared-in-app"), JM_OK);
    assert_int_equal(evaluate(f), 1);
    assert_int_equal(jobs_where(f, "idempotency_key = 'policy:flush:app.orders'"), 1);
}

static int a_job_exists(void *arg)
{
    fixture *f = arg;
    jm_filter all = JM_FILTER_INIT;
    int64_t n = 0;
    return jm_count(f->m, &all, &n) == JM_OK && n > 0;
}

static jm_decision noop_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed(NULL, NULL);
}

static void the_loop_evaluates_on_its_own(void **state)
{
    fixture *f = *state;
    jm_close(f->m);
    jm_config cfg = tu_config(f->db);
    cfg.host = &f->host;
    cfg.policy_interval_ms = 20;
    assert_int_equal(jm_open(&cfg, &f->m), JM_OK);
    /* A flush that touches nothing: this host has no table operations. */
    static const jm_executor noop_flush = {JM_EXECUTOR_VERSION, "FL", "flush", 1, NULL,
                                           noop_execute, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(f->m, &noop_flush, NULL), JM_OK);
    jm_policy_spec p = policy("loop", JM_POLICY_FLUSH);
    p.rows = 1;
    add(f, p);
    assert_int_equal(jm_start(f->m, 1), JM_OK);
    pthread_mutex_lock(&f->lock);
    f->t[0].f.buffered_rows = 10;
    pthread_mutex_unlock(&f->lock);
    assert_true(tu_wait_until(a_job_exists, f, 30000));
    assert_int_equal(jm_stop(f->m, 1000), JM_OK);
}

/* --- against the reference engine ---------------------------------------- */

static int64_t segments_of(jm_engine *e, const char *name)
{
    int64_t n = -1;
    assert_int_equal(jm_engine_segment_count(e, "app", name, &n), JM_OK);
    return n;
}

static void the_engine_flushes_a_table_once_per_crossing(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *edir = tu_path(dir, "engine");
    char *db = tu_path(dir, "jobs.db");
    jm_engine *e = NULL;
    assert_int_equal(jm_engine_open(edir, &e), JM_OK);
    assert_int_equal(jm_engine_create_namespace(e, "app"), JM_OK);
    assert_int_equal(jm_engine_create_table(e, "app", "busy", JM_TABLE_SHARED, NULL), JM_OK);
    assert_int_equal(jm_engine_create_table(e, "app", "quiet", JM_TABLE_SHARED, NULL), JM_OK);
    jm_config cfg = tu_config(db);
    cfg.host = jm_engine_host(e);
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    assert_int_equal(jm_register_builtin(m), JM_OK);
    jm_policy_spec p = policy("flush-at-50", JM_POLICY_FLUSH);
    p.rows = 50;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_policy_create(m, &p, id), JM_OK);
    for (int i = 0; i < 49; i++)
        assert_int_equal(jm_engine_insert(e, "app", "busy", "{\"v\":1}", 0, NULL), JM_OK);
    assert_int_equal(jm_engine_insert(e, "app", "quiet", "{\"v\":1}", 0, NULL), JM_OK);
    int n = -1;
    assert_int_equal(jm_policy_evaluate(m, &n), JM_OK);
    assert_int_equal(n, 0);
    /* Crossing the threshold: one flush, however often it is evaluated
     * while that flush waits, and more rows meanwhile change nothing. */
    assert_int_equal(jm_engine_insert(e, "app", "busy", "{\"v\":1}", 0, NULL), JM_OK);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(jm_policy_evaluate(m, &n), JM_OK);
        assert_int_equal(n, k == 0 ? 1 : 0);
        assert_int_equal(jm_engine_insert(e, "app", "busy", "{\"v\":1}", 0, NULL), JM_OK);
    }
    jm_filter fl = JM_FILTER_INIT;
    fl.type = "FL";
    int64_t count = 0;
    assert_int_equal(jm_count(m, &fl, &count), JM_OK);
    assert_int_equal(count, 1);
    assert_int_equal(segments_of(e, "busy"), 0);
    int ran = 0;
    assert_int_equal(jm_run_once(m, 10, &ran), JM_OK);
    assert_int_equal(ran, 1);
    /* The flush ran: the buffer went into a segment; the quiet table,
     * under the threshold, was left alone. */
    assert_int_equal(segments_of(e, "busy"), 1);
    assert_int_equal(segments_of(e, "quiet"), 0);
    assert_int_equal(jm_policy_evaluate(m, &n), JM_OK);
    assert_int_equal(n, 0);
    jm_close(m);
    jm_engine_close(e);
    free(db);
    free(edir);
    tu_rmdir(dir);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(bad_specs_are_refused),
        T(create_list_pause_delete),
        T(needs_a_host_that_lists_tables),
        T(flush_by_rows_one_job_per_table),
        T(flush_by_age),
        T(compact_by_segments_or_small_files),
        T(retention_at_most_every_period),
        T(stream_eviction_only_where_rows_expired),
        T(filters_by_namespace_and_type_and_pause),
        T(the_loop_evaluates_on_its_own),
        cmocka_unit_test(the_engine_flushes_a_table_once_per_crossing),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
