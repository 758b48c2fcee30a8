/*
 * The flush executor (src/executors/flush.c) on the fake host: parameter
 * validation, flushing the buffer with its metrics, the threshold, a table
 * of another type or missing, busy and I/O errors, cancellation before the
 * flush, a manager without a host, and the flush's I/O charged to the high
 * class's budget.
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

#define PARAMS "{\"namespace_id\":\"app\",\"table_name\":\"events\",\"table_type\":\"User\"}"

typedef struct fx {
    xh x;
    fh_host *fh;
    char id[JM_JOB_ID_SIZE];
    fh_op cancel_on; /* the hook cancels the job at this operation */
    int cancel_rc;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->fh = fh_new();
    f->cancel_on = FH_OP_COUNT;
    assert_int_equal(xh_open(&f->x, fh_jm_host(f->fh)), JM_OK);
    assert_int_equal(jm_register(f->x.m, &jm__flush_executor, NULL), JM_OK);
    assert_int_equal(fh_add_table(f->fh, "app", "events", JM_TABLE_USER, 0, NULL), JM_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    xh_close(&f->x);
    fh_free(f->fh);
    free(f);
    return 0;
}

static void insert_rows(fx *f, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(fh_insert(f->fh, "app", "events", "{\"n\":1}", XH_T0, NULL), JM_OK);
}

static void cancel_hook(void *arg, fh_op op)
{
    fx *f = arg;
    if (op == f->cancel_on)
        f->cancel_rc = jm_cancel(f->x.m, f->id);
}

static void assert_message_has(fx *f, const char *needle)
{
    xh_assert_message_has(&f->x, f->id, needle);
}

static void test_properties(void **state)
{
    (void)state;
    assert_int_equal(jm__flush_executor.version, JM_EXECUTOR_VERSION);
    assert_string_equal(jm__flush_executor.type, "FL");
    assert_string_equal(jm__flush_executor.name, "flush");
    assert_int_equal(jm__flush_executor.cancellable, 1);
    assert_non_null(jm__flush_executor.validate);
    assert_non_null(jm__flush_executor.execute);
}

static void test_validation(void **state)
{
    fx *f = *state;
    xh *x = &f->x;
    assert_true(xh_rejects(x, "FL", "{\"table_name\":\"t\",\"table_type\":\"User\"}",
                           "namespace_id"));
    assert_true(xh_rejects(x, "FL", "{\"namespace_id\":\"a\",\"table_type\":\"User\"}",
                           "table_name"));
    assert_true(xh_rejects(x, "FL", "{\"namespace_id\":\"a\",\"table_name\":\"t\"}",
                           "table_type"));
    assert_true(xh_rejects(x, "FL",
                           "{\"namespace_id\":7,\"table_name\":\"t\",\"table_type\":\"User\"}",
                           "namespace_id"));
    assert_true(xh_rejects(x, "FL",
                           "{\"namespace_id\":\"a\",\"table_name\":[],\"table_type\":\"User\"}",
                           "table_name"));
    assert_true(xh_rejects(x, "FL",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":1}",
                           "table_type"));
    assert_true(xh_rejects(x, "FL",
                           "{\"namespace_id\":\"a b\",\"table_name\":\"t\","
                           "\"table_type\":\"User\"}",
                           "namespace_id"));
    assert_true(xh_rejects(x, "FL",
                           "{\"namespace_id\":\"a\",\"table_name\":\"../t\","
                           "\"table_type\":\"User\"}",
                           "table_name"));
    assert_true(xh_rejects(x, "FL",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"user\"}",
                           "table_type"));
    assert_true(xh_rejects(x, "FL",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"User\","
                           "\"flush_threshold\":-1}",
                           "flush_threshold"));
    assert_true(xh_rejects(x, "FL",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"User\","
                           "\"flush_threshold\":\"10\"}",
                           "flush_threshold"));
    assert_true(xh_rejects(x, "FL",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"User\","
                           "\"flush_threshold\":2.5}",
                           "flush_threshold"));
    assert_true(xh_rejects(x, "FL",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"User\","
                           "\"flush_threshold\":1e300}",
                           "flush_threshold"));
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(x, "FL",
                               "{\"namespace_id\":\"a\",\"table_name\":\"t\","
                               "\"table_type\":\"Stream\",\"flush_threshold\":0}",
                               id),
                     JM_OK);
}

static void test_flushes_buffer(void **state)
{
    fx *f = *state;
    insert_rows(f, 5);
    assert_int_equal(xh_create(&f->x, "FL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_message_has(f, "flushed 5 rows into 1 segment");
    assert_int_equal(xh_metric(&f->x, f->id, "rows_flushed"), 5);
    assert_int_equal(xh_metric(&f->x, f->id, "segments_written"), 1);
    assert_int_equal(fh_buffered_rows(f->fh, "app", "events"), 0);
    assert_int_equal(fh_segments(f->fh, "app", "events", NULL, 0), 1);
    assert_int_equal(fh_row_count(f->fh, "app", "events", 1), 5);
    assert_int_equal(fh_calls(f->fh, FH_FLUSH), 1);
}

/* The rows read from the buffer and the segment written, each taken at the
 * segment's size, from the high class's budget. */
static void test_io_charged_to_the_high_budget(void **state)
{
    fx *f = *state;
    insert_rows(f, 10);
    assert_int_equal(xh_create(&f->x, "FL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    jm_host_segment seg;
    assert_int_equal(fh_segments(f->fh, "app", "events", &seg, 1), 1);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->x.m, &r), JM_OK);
    assert_int_equal(r->throttle_bytes[JM_CLASS_HIGH], 2 * seg.bytes);
    assert_int_equal(r->throttle_bytes[JM_CLASS_NORMAL], 0);
    jm_stats_free(r);
}

static void test_empty_buffer(void **state)
{
    fx *f = *state;
    assert_int_equal(xh_create(&f->x, "FL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_message_has(f, "nothing to flush");
    assert_int_equal(xh_metric(&f->x, f->id, "rows_flushed"), 0);
    assert_int_equal(xh_metric(&f->x, f->id, "segments_written"), 0);
    assert_int_equal(fh_segments(f->fh, "app", "events", NULL, 0), 0);
}

static void test_below_threshold(void **state)
{
    fx *f = *state;
    insert_rows(f, 3);
    assert_int_equal(xh_create(&f->x, "FL",
                               "{\"namespace_id\":\"app\",\"table_name\":\"events\","
                               "\"table_type\":\"User\",\"flush_threshold\":4}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_message_has(f, "below the flush threshold of 4");
    assert_int_equal(xh_metric(&f->x, f->id, "rows_flushed"), 0);
    assert_int_equal(xh_metric(&f->x, f->id, "segments_written"), 0);
    assert_int_equal(fh_calls(f->fh, FH_FLUSH), 0);
    assert_int_equal(fh_buffered_rows(f->fh, "app", "events"), 3);

    /* At the threshold it flushes. */
    insert_rows(f, 1);
    assert_int_equal(xh_create(&f->x, "FL",
                               "{\"namespace_id\":\"app\",\"table_name\":\"events\","
                               "\"table_type\":\"User\",\"flush_threshold\":4}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_flushed"), 4);
    assert_int_equal(fh_buffered_rows(f->fh, "app", "events"), 0);
}

static void test_wrong_type(void **state)
{
    fx *f = *state;
    insert_rows(f, 2);
    assert_int_equal(xh_create(&f->x, "FL",
                               "{\"namespace_id\":\"app\",\"table_name\":\"events\","
                               "\"table_type\":\"Shared\"}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "app.events is a User table, not Shared");
    assert_int_equal(fh_calls(f->fh, FH_FLUSH), 0);
    assert_int_equal(fh_buffered_rows(f->fh, "app", "events"), 2);
}

static void test_missing_table(void **state)
{
    fx *f = *state;
    assert_int_equal(xh_create(&f->x, "FL",
                               "{\"namespace_id\":\"app\",\"table_name\":\"nope\","
                               "\"table_type\":\"User\"}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "table app.nope not found");
}

static void test_busy_retries(void **state)
{
    fx *f = *state;
    insert_rows(f, 2);
    fh_fail(f->fh, FH_FLUSH, JM_EBUSY, 1);
    assert_int_equal(xh_create(&f->x, "FL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_RETRYING);
    assert_message_has(f, "busy");
    /* The manager's policy: tu_config's base backoff, no jitter. */
    assert_int_equal(xh_due_in(&f->x, f->id), f->x.cfg.backoff_base_ms);
    assert_int_equal(fh_buffered_rows(f->fh, "app", "events"), 2);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 5, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_flushed"), 2);
    assert_int_equal(fh_calls(f->fh, FH_FLUSH), 2);
}

static void test_busy_table_info_retries(void **state)
{
    fx *f = *state;
    fh_fail(f->fh, FH_TABLE_INFO, JM_EBUSY, 1);
    assert_int_equal(xh_create(&f->x, "FL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_RETRYING);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 5, NULL), JM_STATUS_COMPLETED);
}

static void test_io_error_fails(void **state)
{
    fx *f = *state;
    insert_rows(f, 2);
    fh_fail(f->fh, FH_FLUSH, JM_EIO, 1);
    assert_int_equal(xh_create(&f->x, "FL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "flushing app.events failed");
    assert_message_has(f, "injected flush failure");
    assert_int_equal(fh_buffered_rows(f->fh, "app", "events"), 2);
}

static void test_cancel_before_flush(void **state)
{
    fx *f = *state;
    insert_rows(f, 2);
    f->cancel_on = FH_TABLE_INFO;
    fh_set_hook(f->fh, cancel_hook, f);
    assert_int_equal(xh_create(&f->x, "FL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_CANCELLED);
    assert_int_equal(f->cancel_rc, JM_OK);
    assert_message_has(f, "cancelled before flushing");
    assert_int_equal(fh_calls(f->fh, FH_FLUSH), 0);
    assert_int_equal(fh_buffered_rows(f->fh, "app", "events"), 2);
}

static void test_no_host(void **state)
{
    (void)state;
    xh x;
    assert_int_equal(xh_open(&x, NULL), JM_OK);
    assert_int_equal(jm_register(x.m, &jm__flush_executor, NULL), JM_OK);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(&x, "FL", PARAMS, id), JM_OK);
    assert_int_equal(xh_run1(&x, id), JM_STATUS_FAILED);
    char *msg = xh_message(&x, id);
    assert_non_null(strstr(msg, "no host configured"));
    free(msg);
    xh_close(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_properties),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flushes_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_charged_to_the_high_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_below_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_table_info_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_flush, setup, teardown),
        cmocka_unit_test(test_no_host),
    };
    return cmocka_run_group_tests_name("exec_flush", tests, NULL, NULL);
}
