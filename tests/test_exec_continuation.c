/*
 * Retention and stream eviction against the reference engine, over many
 * runs: 3 000 expired soft-deleted rows deleted 1 000 per run (rows in the
 * buffer and in segments), no other row touched; 50 000 expired stream rows
 * evicted 10 000 per run; a long eviction cancelled between batches leaves
 * the rest; and a process that dies between batches (after a whole run, or
 * after the checkpoint but before its decision was recorded) is resumed by
 * another from the checkpoint, ending with the right total.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec_harness.h"
#include "builtin.h"
#include "jobmgr/engine.h"

#define TTL_S 3600
#define OLD (XH_T0 - 1000 * XH_HOUR_MS)

typedef struct fx {
    xh x;
    char *edir;
    jm_engine *e;
    char id[JM_JOB_ID_SIZE];
    int runs;
    int cancel_at_run;
} fx;

static fx *current;

static jm_decision cancelling_eviction(void *self, jm_ctx *ctx)
{
    fx *f = current;
    if (++f->runs == f->cancel_at_run)
        assert_int_equal(jm_cancel(f->x.m, jm_job_id(jm_ctx_job(ctx))), JM_OK);
    return jm__stream_eviction_executor.execute(self, ctx);
}

static void register_all(fx *f, jm_manager *m)
{
    jm_executor se = jm__stream_eviction_executor;
    se.execute = cancelling_eviction;
    assert_int_equal(jm_register(m, &jm__retention_executor, NULL), JM_OK);
    assert_int_equal(jm_register(m, &se, NULL), JM_OK);
    (void)f;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    current = f;
    f->edir = tu_tmpdir();
    assert_int_equal(jm_engine_open(f->edir, &f->e), JM_OK);
    assert_int_equal(xh_open(&f->x, jm_engine_host(f->e)), JM_OK);
    register_all(f, f->x.m);
    assert_int_equal(jm_engine_create_namespace(f->e, "app"), JM_OK);
    assert_int_equal(jm_engine_create_table(f->e, "app", "users", JM_TABLE_USER, NULL), JM_OK);
    jm_table_opts o = JM_TABLE_OPTS_INIT;
    o.ttl_seconds = TTL_S;
    assert_int_equal(jm_engine_create_table(f->e, "app", "events", JM_TABLE_STREAM, &o), JM_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    xh_close(&f->x);
    jm_engine_close(f->e);
    tu_rmdir(f->edir);
    free(f);
    current = NULL;
    return 0;
}

static void flush_table(fx *f, const char *table)
{
    const jm_host *h = jm_engine_host(f->e);
    jm_host_flush out;
    assert_int_equal(h->flush(h->self, "app", table, &out), JM_OK);
}

/* Inserts n rows into app.<table> created at `created`, soft-deleted at
 * `deleted` unless 0; returns the sum of their keys. */
static int64_t insert(fx *f, const char *table, int n, int64_t created, int64_t deleted)
{
    int64_t sum = 0;
    char doc[64];
    for (int i = 0; i < n; i++) {
        int64_t key;
        snprintf(doc, sizeof doc, "{\"i\":%d,\"t\":\"%s\"}", i, table);
        assert_int_equal(jm_engine_insert(f->e, "app", table, doc, created, &key), JM_OK);
        if (deleted)
            assert_int_equal(jm_engine_soft_delete(f->e, "app", table, key, deleted), JM_OK);
        sum += key;
    }
    return sum;
}

typedef struct survivors {
    int64_t live_keys;
    int64_t deleted_keys;
    int64_t rows;
} survivors;

static int tally(void *arg, const jm_host_row *row)
{
    survivors *s = arg;
    s->rows++;
    if (row->deleted_at)
        s->deleted_keys += row->key;
    else
        s->live_keys += row->key;
    return 0;
}

static survivors scan(fx *f, const char *table)
{
    survivors s = {0, 0, 0};
    assert_int_equal(jm_engine_scan(f->e, "app", table, 1, tally, &s), JM_OK);
    return s;
}

static void test_retention_3000_in_batches(void **state)
{
    fx *f = *state;
    int64_t live = insert(f, "users", 200, OLD, 0);
    insert(f, "users", 1500, OLD, XH_T0 - 48 * XH_HOUR_MS);
    flush_table(f, "users"); /* half the expired rows live in a segment */
    live += insert(f, "users", 300, OLD, 0);
    int64_t recent = insert(f, "users", 100, OLD, XH_T0 - XH_HOUR_MS);
    insert(f, "users", 1500, OLD, XH_T0 - 30 * XH_HOUR_MS);

    assert_int_equal(xh_create(&f->x, "RT",
                               "{\"namespace_id\":\"app\",\"table_name\":\"users\","
                               "\"table_type\":\"User\",\"retention_hours\":24}",
                               f->id),
                     JM_OK);
    int runs = 0;
    assert_int_equal(xh_run_to_end(&f->x, f->id, 10, &runs), JM_STATUS_COMPLETED);
    /* Three full batches, and maybe a last run that finds nothing left. */
    assert_in_range(runs, 3, 4);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 3000);
    int64_t n = -1;
    assert_int_equal(jm_engine_count(f->e, "app", "users", 1, &n), JM_OK);
    assert_int_equal(n, 600);
    assert_int_equal(jm_engine_count(f->e, "app", "users", 0, &n), JM_OK);
    assert_int_equal(n, 500);
    survivors s = scan(f, "users");
    assert_int_equal(s.live_keys, live);
    assert_int_equal(s.deleted_keys, recent);
}

static void test_eviction_50000_in_batches(void **state)
{
    fx *f = *state;
    insert(f, "events", 25000, XH_T0 - 2 * XH_HOUR_MS, 0);
    flush_table(f, "events");
    insert(f, "events", 25000, XH_T0 - 2 * XH_HOUR_MS, 0);
    int64_t fresh = insert(f, "events", 100, XH_T0 - 60 * 1000, 0);
    assert_int_equal(xh_create(&f->x, "SE",
                               "{\"namespace_id\":\"app\",\"table_name\":\"events\","
                               "\"table_type\":\"Stream\",\"ttl_seconds\":3600,"
                               "\"batch_size\":10000}",
                               f->id),
                     JM_OK);
    int runs = 0;
    assert_int_equal(xh_run_to_end(&f->x, f->id, 20, &runs), JM_STATUS_COMPLETED);
    assert_in_range(runs, 5, 6);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 50000);
    survivors s = scan(f, "events");
    assert_int_equal(s.rows, 100);
    assert_int_equal(s.live_keys, fresh);
}

static void create_eviction(fx *f, int batch)
{
    char params[256];
    snprintf(params, sizeof params,
             "{\"namespace_id\":\"app\",\"table_name\":\"events\",\"table_type\":\"Stream\","
             "\"ttl_seconds\":3600,\"batch_size\":%d}",
             batch);
    assert_int_equal(xh_create(&f->x, "SE", params, f->id), JM_OK);
}

static void test_cancel_long_eviction(void **state)
{
    fx *f = *state;
    insert(f, "events", 5000, XH_T0 - 2 * XH_HOUR_MS, 0);
    create_eviction(f, 1000);
    f->cancel_at_run = 3; /* cancelled as the third batch starts */
    assert_int_equal(xh_run_to_end(&f->x, f->id, 20, NULL), JM_STATUS_CANCELLED);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 2000);
    int64_t n = -1;
    assert_int_equal(jm_engine_count(f->e, "app", "events", 1, &n), JM_OK);
    assert_int_equal(n, 3000);

    /* And cancelled while queued between batches. */
    f->runs = 0;
    f->cancel_at_run = 0;
    create_eviction(f, 1000);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_int_equal(jm_cancel(f->x.m, f->id), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 20, NULL), JM_STATUS_CANCELLED);
    assert_int_equal(jm_engine_count(f->e, "app", "events", 1, &n), JM_OK);
    assert_int_equal(n, 2000);
}

/* Kill modes for the child. */
enum { DIE_AFTER_RUN, DIE_BEFORE_DECISION };
static int die_mode;

static jm_decision dying_eviction(void *self, jm_ctx *ctx)
{
    jm_decision d = jm__stream_eviction_executor.execute(self, ctx);
    if (die_mode == DIE_BEFORE_DECISION)
        _exit(d.kind == JM_DECISION_CONTINUE ? 0 : 3); /* checkpoint saved, decision lost */
    return d;
}

/* In a child: opens its own engine and manager (SQLite handles must not
 * cross fork), runs one batch and dies without closing anything. */
static void child_one_batch(fx *f)
{
    jm_engine *e = NULL;
    jm_manager *m = NULL;
    if (jm_engine_open(f->edir, &e) != JM_OK)
        _exit(1);
    jm_config cfg = f->x.cfg;
    cfg.host = jm_engine_host(e);
    if (jm_open(&cfg, &m) != JM_OK)
        _exit(1);
    jm_executor se = jm__stream_eviction_executor;
    se.execute = dying_eviction;
    int ran = 0;
    if (jm_register(m, &se, NULL) != JM_OK || jm_run_once(m, 1, &ran) != JM_OK || ran != 1)
        _exit(2);
    _exit(0);
}

static void resume_after_death(fx *f, int mode)
{
    insert(f, "events", 3500, XH_T0 - 2 * XH_HOUR_MS, 0);
    create_eviction(f, 1000);
    /* Nothing of ours may be open across the fork. */
    jm_close(f->x.m);
    f->x.m = NULL;
    jm_engine_close(f->e);
    f->e = NULL;
    die_mode = mode;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_one_batch(f);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_int_equal(jm_engine_open(f->edir, &f->e), JM_OK);
    f->x.cfg.host = jm_engine_host(f->e);
    assert_int_equal(jm_open(&f->x.cfg, &f->x.m), JM_OK);
    register_all(f, f->x.m);
    int64_t n = -1;
    assert_int_equal(jm_engine_count(f->e, "app", "events", 1, &n), JM_OK);
    assert_int_equal(n, 2500);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "rows_evicted"), 1000);
    int s = tu_status(f->x.m, f->id);
    assert_true(s == JM_STATUS_QUEUED || s == JM_STATUS_RETRYING);

    int runs = 0;
    assert_int_equal(xh_run_to_end(&f->x, f->id, 10, &runs), JM_STATUS_COMPLETED);
    assert_in_range(runs, 3, 4);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 3500);
    assert_int_equal(jm_engine_count(f->e, "app", "events", 1, &n), JM_OK);
    assert_int_equal(n, 0);
}

static void test_killed_after_a_run_resumes(void **state)
{
    resume_after_death(*state, DIE_AFTER_RUN);
}

static void test_killed_before_decision_resumes(void **state)
{
    resume_after_death(*state, DIE_BEFORE_DECISION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retention_3000_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_50000_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_long_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_after_a_run_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_before_decision_resumes, setup, teardown),
    };
    return cmocka_run_group_tests_name("exec_continuation", tests, NULL, NULL);
}
