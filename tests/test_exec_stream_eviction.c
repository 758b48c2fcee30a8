/*
 * The stream eviction executor (src/executors/stream_eviction.c and the
 * batching in purge_batches.c) on the fake host: parameter validation
 * (only "Stream" tables, ttl and batch limits), the cut-off now − ttl fixed
 * at the first run, batch after batch with continue and a checkpoint,
 * soft-deleted rows evicted too and fresh rows kept, cancellation between
 * batches (partial eviction, metrics so far), a pause between batches (the
 * run returns continue before its batch, its place kept), busy and I/O
 * errors, and the bytes of rewritten segments charged to the high class's
 * I/O budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec_harness.h"
#include "builtin.h"
#include "fake_host.h"

#define TTL_S 3600
#define CUTOFF (XH_T0 - TTL_S * INT64_C(1000))
#define PARAMS_B10                                                                             \
    "{\"namespace_id\":\"app\",\"table_name\":\"events\",\"table_type\":\"Stream\","          \
    "\"ttl_seconds\":3600,\"batch_size\":10}"

typedef struct fx {
    xh x;
    fh_host *fh;
    char id[JM_JOB_ID_SIZE];
    int runs;
    int cancel_at_run;
    int pause_at_run; /* the wrapper asks the job to pause as run N starts */
    fh_op cancel_on;
} fx;

static fx *current;

/* Stream eviction itself, but cancelled or asked to pause as a chosen run
 * starts. */
static jm_decision cancelling_execute(void *self, jm_ctx *ctx)
{
    fx *f = current;
    if (++f->runs == f->cancel_at_run)
        assert_int_equal(jm_cancel(f->x.m, jm_job_id(jm_ctx_job(ctx))), JM_OK);
    if (f->runs == f->pause_at_run)
        xh_request_pause(&f->x);
    return jm__stream_eviction_executor.execute(self, ctx);
}

static int open_fixture(void **state, int wrapped)
{
    fx *f = calloc(1, sizeof *f);
    current = f;
    f->cancel_on = FH_OP_COUNT;
    f->fh = fh_new();
    assert_int_equal(xh_open(&f->x, fh_jm_host(f->fh)), JM_OK);
    jm_executor ex = jm__stream_eviction_executor;
    if (wrapped)
        ex.execute = cancelling_execute;
    assert_int_equal(jm_register(f->x.m, &ex, NULL), JM_OK);
    assert_int_equal(fh_add_table(f->fh, "app", "events", JM_TABLE_STREAM, TTL_S, NULL), JM_OK);
    assert_int_equal(fh_add_table(f->fh, "app", "users", JM_TABLE_USER, 0, NULL), JM_OK);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return open_fixture(state, 0);
}

static int setup_wrapped(void **state)
{
    return open_fixture(state, 1);
}

static int teardown(void **state)
{
    fx *f = *state;
    xh_close(&f->x);
    fh_free(f->fh);
    free(f);
    current = NULL;
    return 0;
}

static void add_rows(fx *f, int n, int64_t created_at)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(fh_insert(f->fh, "app", "events", "{\"e\":1}", created_at, NULL), JM_OK);
}

static void assert_message_has(fx *f, const char *needle)
{
    xh_assert_message_has(&f->x, f->id, needle);
}

static void test_properties(void **state)
{
    (void)state;
    assert_int_equal(jm__stream_eviction_executor.version, JM_EXECUTOR_VERSION);
    assert_string_equal(jm__stream_eviction_executor.type, "SE");
    assert_string_equal(jm__stream_eviction_executor.name, "stream_eviction");
    assert_int_equal(jm__stream_eviction_executor.cancellable, 1);
}

static void test_validation(void **state)
{
    fx *f = *state;
    xh *x = &f->x;
    assert_true(xh_rejects(x, "SE",
                           "{\"table_name\":\"t\",\"table_type\":\"Stream\",\"ttl_seconds\":1}",
                           "namespace_id"));
    assert_true(xh_rejects(x, "SE",
                           "{\"namespace_id\":\"a\",\"table_type\":\"Stream\",\"ttl_seconds\":1}",
                           "table_name"));
    assert_true(xh_rejects(x, "SE",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"ttl_seconds\":1}",
                           "table_type"));
    assert_true(xh_rejects(x, "SE",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\","
                           "\"table_type\":\"Stream\"}",
                           "ttl_seconds"));
    assert_true(xh_rejects(x, "SE",
                           "{\"namespace_id\":{},\"table_name\":\"t\",\"table_type\":\"Stream\","
                           "\"ttl_seconds\":1}",
                           "namespace_id"));
    assert_true(xh_rejects(x, "SE",
                           "{\"namespace_id\":\"a\",\"table_name\":\".\",\"table_type\":\"Stream\","
                           "\"ttl_seconds\":1}",
                           "table_name"));
    /* Only stream tables have a TTL. */
    assert_true(xh_rejects(x, "SE",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"User\","
                           "\"ttl_seconds\":1}",
                           "table_type"));
    assert_non_null(strstr(jm_last_error(), "Stream"));
    assert_true(xh_rejects(x, "SE",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"Shared\","
                           "\"ttl_seconds\":1}",
                           "table_type"));
    static const char *const bad_ttl[] = {"0", "-5", "\"60\"", "0.5", "null"};
    for (size_t i = 0; i < sizeof bad_ttl / sizeof bad_ttl[0]; i++) {
        char params[256];
        snprintf(params, sizeof params,
                 "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"Stream\","
                 "\"ttl_seconds\":%s}",
                 bad_ttl[i]);
        assert_true(xh_rejects(x, "SE", params, "ttl_seconds"));
    }
    static const char *const bad_batch[] = {"0", "1000001", "\"10\"", "2.5", "false"};
    for (size_t i = 0; i < sizeof bad_batch / sizeof bad_batch[0]; i++) {
        char params[256];
        snprintf(params, sizeof params,
                 "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"Stream\","
                 "\"ttl_seconds\":1,\"batch_size\":%s}",
                 bad_batch[i]);
        assert_true(xh_rejects(x, "SE", params, "batch_size"));
    }
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(x, "SE",
                               "{\"namespace_id\":\"a\",\"table_name\":\"t\","
                               "\"table_type\":\"Stream\",\"ttl_seconds\":1,"
                               "\"batch_size\":1000000}",
                               id),
                     JM_OK);
}

static void test_default_batch_and_cutoff(void **state)
{
    fx *f = *state;
    add_rows(f, 6, XH_T0 - 2 * XH_HOUR_MS);
    add_rows(f, 1, CUTOFF); /* exactly at the cut-off: kept */
    add_rows(f, 4, XH_T0);
    assert_int_equal(fh_soft_delete(f->fh, "app", "events", 1, XH_T0 - XH_HOUR_MS), JM_OK);
    assert_int_equal(xh_create(&f->x, "SE",
                               "{\"namespace_id\":\"app\",\"table_name\":\"events\","
                               "\"table_type\":\"Stream\",\"ttl_seconds\":3600}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 6);
    assert_message_has(f, "evicted 6 rows from app.events");
    fh_purge_args a = fh_last_purge(f->fh);
    assert_int_equal(a.kind, JM_PURGE_CREATED_BEFORE);
    assert_int_equal(a.cutoff_ms, CUTOFF);
    assert_int_equal(a.limit, 10000);
    assert_int_equal(a.after_key, 0);
    assert_int_equal(fh_row_count(f->fh, "app", "events", 1), 5);
    for (int64_t k = 1; k <= 6; k++)
        assert_false(fh_row_exists(f->fh, "app", "events", k));
}

static void test_batches_until_done(void **state)
{
    fx *f = *state;
    add_rows(f, 25, XH_T0 - 2 * XH_HOUR_MS);
    add_rows(f, 5, XH_T0 - 60 * 1000);
    assert_int_equal(xh_create(&f->x, "SE", PARAMS_B10, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "rows_evicted"), 10);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "after_key"), 10);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "cutoff"), CUTOFF);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 10);
    assert_message_has(f, "evicted 10 rows from app.events so far; more remain");
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_int_equal(fh_last_purge(f->fh).after_key, 10);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(fh_last_purge(f->fh).after_key, 20);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 25);
    assert_int_equal(fh_row_count(f->fh, "app", "events", 1), 5);
}

static void test_cutoff_fixed_at_first_run(void **state)
{
    fx *f = *state;
    add_rows(f, 10, XH_T0 - 2 * XH_HOUR_MS);
    add_rows(f, 3, XH_T0 - 60 * 1000);
    assert_int_equal(xh_create(&f->x, "SE", PARAMS_B10, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    tu_clock_advance(&f->x.clock, 2 * XH_HOUR_MS);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(fh_last_purge(f->fh).cutoff_ms, CUTOFF);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 10);
    assert_int_equal(fh_row_count(f->fh, "app", "events", 1), 3);
}

static void test_cancel_before_second_batch(void **state)
{
    fx *f = *state;
    f->cancel_at_run = 2;
    add_rows(f, 25, XH_T0 - 2 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "SE", PARAMS_B10, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_CANCELLED);
    assert_message_has(f, "cancelled: 10 rows evicted from app.events so far");
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 10);
    assert_int_equal(fh_calls(f->fh, FH_PURGE), 1);
    assert_int_equal(fh_row_count(f->fh, "app", "events", 1), 15);
}

static void cancel_hook(void *arg, fh_op op)
{
    fx *f = arg;
    if (op == f->cancel_on)
        assert_int_equal(jm_cancel(f->x.m, f->id), JM_OK);
}

static void test_pause_between_batches(void **state)
{
    fx *f = *state;
    f->pause_at_run = 2;
    add_rows(f, 25, XH_T0 - 2 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "SE", PARAMS_B10, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    /* Asked to pause: no batch, the place kept, due again at once. */
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_message_has(f, "paused: 10 rows evicted from app.events so far");
    assert_int_equal(fh_calls(f->fh, FH_PURGE), 1);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "after_key"), 10);
    assert_int_equal(xh_due_in(&f->x, f->id), 0);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 10);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->x.m, f->id, &j), JM_OK);
    assert_int_equal(jm_job_retry_count(j), 0);
    jm_job_free(j);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 5, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(fh_last_purge(f->fh).after_key, 20);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 25);
}

/* The host reports segments rewritten and bytes freed: each segment is
 * taken at the table's average size, read whole and written back less
 * what was freed. */
static void test_io_charged_to_the_high_budget(void **state)
{
    fx *f = *state;
    /* 10 rows of 100 bytes and 10 of 300, each segment 64 bytes more. */
    assert_int_equal(fh_add_segment(f->fh, "app", "events", 10, 1064, XH_T0 - 2 * XH_HOUR_MS,
                                    NULL),
                     JM_OK);
    assert_int_equal(fh_add_segment(f->fh, "app", "events", 10, 3064, XH_T0 - 2 * XH_HOUR_MS,
                                    NULL),
                     JM_OK);
    assert_int_equal(xh_create(&f->x, "SE",
                               "{\"namespace_id\":\"app\",\"table_name\":\"events\","
                               "\"table_type\":\"Stream\",\"ttl_seconds\":3600}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 3, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 20);
    /* Read 2 x 2064, written 4128 - 4000 freed. */
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->x.m, &r), JM_OK);
    assert_int_equal(r->throttle_bytes[JM_CLASS_HIGH], 4128 + 128);
    assert_int_equal(r->throttle_bytes[JM_CLASS_NORMAL], 0);
    jm_stats_free(r);
}

static void test_cancel_during_batch(void **state)
{
    fx *f = *state;
    add_rows(f, 25, XH_T0 - 2 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "SE", PARAMS_B10, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    /* The cancel arrives while the second batch runs: the batch completes
     * (it is atomic) and the cancel wins over the continue decision. */
    f->cancel_on = FH_PURGE;
    fh_set_hook(f->fh, cancel_hook, f);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_CANCELLED);
    assert_int_equal(fh_calls(f->fh, FH_PURGE), 2);
    assert_int_equal(fh_row_count(f->fh, "app", "events", 1), 5);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 20);
}

static void test_cancel_while_queued(void **state)
{
    fx *f = *state;
    add_rows(f, 25, XH_T0 - 2 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "SE", PARAMS_B10, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_int_equal(jm_cancel(f->x.m, f->id), JM_OK);
    assert_int_equal(tu_status(f->x.m, f->id), JM_STATUS_CANCELLED);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_CANCELLED);
    assert_int_equal(fh_row_count(f->fh, "app", "events", 1), 15);
}

static void test_busy_resumes(void **state)
{
    fx *f = *state;
    add_rows(f, 15, XH_T0 - 2 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "SE", PARAMS_B10, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    fh_fail(f->fh, FH_PURGE, JM_EBUSY, 1);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_RETRYING);
    assert_int_equal(xh_due_in(&f->x, f->id), f->x.cfg.backoff_base_ms);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 5, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(fh_last_purge(f->fh).after_key, 10);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 15);
}

static void test_not_a_stream_table_fails(void **state)
{
    fx *f = *state;
    assert_int_equal(xh_create(&f->x, "SE",
                               "{\"namespace_id\":\"app\",\"table_name\":\"users\","
                               "\"table_type\":\"Stream\",\"ttl_seconds\":60}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "app.users is a User table, not Stream");
    assert_int_equal(fh_calls(f->fh, FH_PURGE), 0);
}

static void test_io_error_fails(void **state)
{
    fx *f = *state;
    add_rows(f, 15, XH_T0 - 2 * XH_HOUR_MS);
    fh_fail_after(f->fh, FH_PURGE, 1, JM_EIO, 1);
    assert_int_equal(xh_create(&f->x, "SE", PARAMS_B10, f->id), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 5, NULL), JM_STATUS_FAILED);
    assert_message_has(f, "removing rows from app.events failed");
    /* The metrics still tell what the first batch did. */
    assert_int_equal(xh_metric(&f->x, f->id, "rows_evicted"), 10);
    assert_int_equal(fh_row_count(f->fh, "app", "events", 1), 5);
}

static void test_missing_table_fails(void **state)
{
    fx *f = *state;
    assert_int_equal(xh_create(&f->x, "SE",
                               "{\"namespace_id\":\"app\",\"table_name\":\"gone\","
                               "\"table_type\":\"Stream\",\"ttl_seconds\":60}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "table app.gone not found");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_properties),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_batch_and_cutoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_until_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cutoff_fixed_at_first_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_second_batch, setup_wrapped, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_during_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_between_batches, setup_wrapped, teardown),
        cmocka_unit_test_setup_teardown(test_io_charged_to_the_high_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_stream_table_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_table_fails, setup, teardown),
    };
    return cmocka_run_group_tests_name("exec_stream_eviction", tests, NULL, NULL);
}
