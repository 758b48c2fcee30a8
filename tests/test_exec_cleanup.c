/*
 * The cleanup executor (src/executors/cleanup.c) on the fake host:
 * parameter validation (table_id halves, operation), dropping a table with
 * its files, ACL entries and live queries, the idempotent second drop, the
 * 5000 ms backoff on a busy store, I/O errors, a table of another type, and
 * refusing cancellation while it runs.
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

#define PARAMS "{\"table_id\":\"app:docs\",\"table_type\":\"Shared\",\"operation\":\"drop_table\"}"
#define SEG_BYTES 4096

typedef struct fx {
    xh x;
    fh_host *fh;
    char id[JM_JOB_ID_SIZE];
    int cancel_rc;
    int hooked;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->fh = fh_new();
    assert_int_equal(xh_open(&f->x, fh_jm_host(f->fh)), JM_OK);
    assert_int_equal(jm_register(f->x.m, &jm__cleanup_executor, NULL), JM_OK);
    assert_int_equal(fh_add_user(f->fh, "u1", "alice"), JM_OK);
    assert_int_equal(fh_add_table(f->fh, "app", "docs", JM_TABLE_SHARED, 0, NULL), JM_OK);
    assert_int_equal(fh_add_table(f->fh, "app", "other", JM_TABLE_SHARED, 0, NULL), JM_OK);
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

static void assert_message_has(fx *f, const char *needle)
{
    xh_assert_message_has(&f->x, f->id, needle);
}

static void test_properties(void **state)
{
    (void)state;
    assert_int_equal(jm__cleanup_executor.version, JM_EXECUTOR_VERSION);
    assert_string_equal(jm__cleanup_executor.type, "CL");
    assert_string_equal(jm__cleanup_executor.name, "cleanup");
    assert_int_equal(jm__cleanup_executor.cancellable, 0);
}

static void test_validation(void **state)
{
    fx *f = *state;
    xh *x = &f->x;
    assert_true(xh_rejects(x, "CL", "{\"table_type\":\"User\",\"operation\":\"drop_table\"}",
                           "table_id"));
    assert_true(xh_rejects(x, "CL", "{\"table_id\":\"a:b\",\"operation\":\"drop_table\"}",
                           "table_type"));
    assert_true(xh_rejects(x, "CL", "{\"table_id\":\"a:b\",\"table_type\":\"User\"}",
                           "operation"));
    assert_true(xh_rejects(x, "CL",
                           "{\"table_id\":5,\"table_type\":\"User\",\"operation\":\"drop_table\"}",
                           "table_id"));
    assert_true(xh_rejects(x, "CL",
                           "{\"table_id\":\"a:b\",\"table_type\":true,"
                           "\"operation\":\"drop_table\"}",
                           "table_type"));
    assert_true(xh_rejects(x, "CL",
                           "{\"table_id\":\"a:b\",\"table_type\":\"User\",\"operation\":1}",
                           "operation"));
    static const char *const bad_ids[] = {"ab", "a:", ":b", "a:b:c", "a b:c", "a:..", "a/x:b"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        char params[256];
        snprintf(params, sizeof params,
                 "{\"table_id\":\"%s\",\"table_type\":\"User\",\"operation\":\"drop_table\"}",
                 bad_ids[i]);
        assert_true(xh_rejects(x, "CL", params, "table_id"));
    }
    assert_true(xh_rejects(x, "CL",
                           "{\"table_id\":\"a:b\",\"table_type\":\"User\","
                           "\"operation\":\"truncate\"}",
                           "operation"));
    assert_true(xh_rejects(x, "CL",
                           "{\"table_id\":\"a:b\",\"table_type\":\"Tables\","
                           "\"operation\":\"drop_table\"}",
                           "table_type"));
}

static void test_drops_table(void **state)
{
    fx *f = *state;
    assert_int_equal(fh_add_segment(f->fh, "app", "docs", 10, SEG_BYTES, XH_T0, NULL), JM_OK);
    assert_int_equal(fh_add_segment(f->fh, "app", "docs", 5, SEG_BYTES, XH_T0, NULL), JM_OK);
    assert_int_equal(fh_insert(f->fh, "app", "docs", "{\"x\":1}", XH_T0, NULL), JM_OK);
    assert_int_equal(fh_add_acl(f->fh, "u1", "app", "docs"), JM_OK);
    assert_int_equal(fh_add_acl(f->fh, "u1", "app", "other"), JM_OK);
    assert_int_equal(fh_add_live_query(f->fh, "u1", "app", "docs"), JM_OK);
    assert_int_equal(xh_create(&f->x, "CL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_message_has(f, "dropped table app:docs");
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 16);
    assert_int_equal(xh_metric(&f->x, f->id, "files_deleted"), 2);
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_freed"), 2 * SEG_BYTES);
    assert_false(fh_table_exists(f->fh, "app", "docs"));
    assert_true(fh_table_exists(f->fh, "app", "other"));
    assert_int_equal(fh_acl_count(f->fh, "u1"), 1);
    assert_int_equal(fh_live_query_count(f->fh, "u1"), 0);
}

static void test_already_dropped(void **state)
{
    fx *f = *state;
    assert_int_equal(xh_create(&f->x, "CL",
                               "{\"table_id\":\"app:gone\",\"table_type\":\"User\","
                               "\"operation\":\"drop_table\"}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_message_has(f, "table app:gone already dropped");
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 0);
    assert_int_equal(xh_metric(&f->x, f->id, "files_deleted"), 0);
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_freed"), 0);

    /* The same drop twice: the second finds nothing and completes. */
    char second[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(&f->x, "CL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(xh_create(&f->x, "CL", PARAMS, second), JM_OK);
    assert_int_equal(xh_run1(&f->x, second), JM_STATUS_COMPLETED);
    memcpy(f->id, second, sizeof second);
    assert_message_has(f, "already dropped");
}

static void test_busy_waits_5000_ms(void **state)
{
    fx *f = *state;
    fh_fail(f->fh, FH_DROP_TABLE, JM_EBUSY, 2);
    assert_int_equal(xh_create(&f->x, "CL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_RETRYING);
    assert_int_equal(xh_due_in(&f->x, f->id), 5000);
    assert_message_has(f, "busy");
    assert_true(fh_table_exists(f->fh, "app", "docs"));
    /* Not due before its backoff. */
    tu_clock_advance(&f->x.clock, 4999);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_RETRYING);
    assert_int_equal(fh_calls(f->fh, FH_DROP_TABLE), 1);
    tu_clock_advance(&f->x.clock, 1);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_RETRYING);
    assert_int_equal(xh_due_in(&f->x, f->id), 5000);
    int runs = 0;
    assert_int_equal(xh_run_to_end(&f->x, f->id, 5, &runs), JM_STATUS_COMPLETED);
    assert_int_equal(runs, 1);
    assert_false(fh_table_exists(f->fh, "app", "docs"));
}

static void test_busy_lookup_waits_5000_ms(void **state)
{
    fx *f = *state;
    fh_fail(f->fh, FH_TABLE_INFO, JM_EBUSY, 1);
    assert_int_equal(xh_create(&f->x, "CL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_RETRYING);
    assert_int_equal(xh_due_in(&f->x, f->id), 5000);
    assert_int_equal(fh_calls(f->fh, FH_DROP_TABLE), 0);
}

static void test_busy_forever_fails(void **state)
{
    fx *f = *state;
    fh_fail(f->fh, FH_DROP_TABLE, JM_EBUSY, 100);
    assert_int_equal(xh_create(&f->x, "CL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 10, NULL), JM_STATUS_FAILED);
    assert_message_has(f, "Max retries exceeded");
    assert_int_equal(fh_calls(f->fh, FH_DROP_TABLE), JM_DEFAULT_MAX_RETRIES + 1);
}

static void test_io_error_fails(void **state)
{
    fx *f = *state;
    fh_fail(f->fh, FH_DROP_TABLE, JM_EIO, 1);
    assert_int_equal(xh_create(&f->x, "CL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "dropping table app:docs failed");
    assert_true(fh_table_exists(f->fh, "app", "docs"));
}

static void test_wrong_type_not_dropped(void **state)
{
    fx *f = *state;
    assert_int_equal(xh_create(&f->x, "CL",
                               "{\"table_id\":\"app:docs\",\"table_type\":\"Stream\","
                               "\"operation\":\"drop_table\"}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "is a Shared table, not Stream");
    assert_true(fh_table_exists(f->fh, "app", "docs"));
    assert_int_equal(fh_calls(f->fh, FH_DROP_TABLE), 0);
}

static void cancel_hook(void *arg, fh_op op)
{
    fx *f = arg;
    if (op == FH_DROP_TABLE) {
        f->hooked++;
        f->cancel_rc = jm_cancel(f->x.m, f->id);
    }
}

static void test_not_cancellable_while_running(void **state)
{
    fx *f = *state;
    fh_set_hook(f->fh, cancel_hook, f);
    assert_int_equal(xh_create(&f->x, "CL", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(f->hooked, 1);
    assert_int_equal(f->cancel_rc, JM_ENOTCANCELLABLE);
    assert_false(fh_table_exists(f->fh, "app", "docs"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_properties),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_already_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_waits_5000_ms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_lookup_waits_5000_ms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_forever_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type_not_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_cancellable_while_running, setup, teardown),
    };
    return cmocka_run_group_tests_name("exec_cleanup", tests, NULL, NULL);
}
