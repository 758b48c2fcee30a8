/*
 * The retention executor (src/executors/retention.c and the batching in
 * purge_batches.c) on the fake host: parameter validation, the cut-off
 * (now − retention_hours, fixed at the first run), batches of 1000 with
 * continue and a checkpoint, the total over all runs, live and recent rows
 * untouched, resuming after a busy error from the saved key, cancellation
 * before a batch and between runs, a pause before the first batch that
 * keeps the cut-off of its first run, missing tables and I/O errors.
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

#define BATCH 1000
#define PARAMS                                                                                 \
    "{\"namespace_id\":\"app\",\"table_name\":\"users\",\"table_type\":\"User\","             \
    "\"retention_hours\":24}"
#define CUTOFF (XH_T0 - 24 * XH_HOUR_MS)

typedef struct fx {
    xh x;
    fh_host *fh;
    char id[JM_JOB_ID_SIZE];
    int runs;
    int cancel_at_run; /* the wrapper cancels the job as run N starts */
    int pause_at_run;  /* ... asks it to pause as run N starts */
} fx;

static fx *current; /* the wrapper executor's fixture */

/* Retention itself, but cancelled (or asked to pause) at the start of a
 * chosen run: the executor then sees jm_ctx_is_cancelled() (or
 * jm_ctx_should_yield()) before its batch. */
static jm_decision cancelling_execute(void *self, jm_ctx *ctx)
{
    fx *f = current;
    if (++f->runs == f->cancel_at_run)
        assert_int_equal(jm_cancel(f->x.m, jm_job_id(jm_ctx_job(ctx))), JM_OK);
    if (f->runs == f->pause_at_run)
        xh_request_pause(&f->x);
    return jm__retention_executor.execute(self, ctx);
}

/* A first run that leaves a checkpoint retention cannot read (its cut-off
 * is no number), then retention itself. */
static jm_decision bad_checkpoint_execute(void *self, jm_ctx *ctx)
{
    if (!jm_job_checkpoint(jm_ctx_job(ctx))) {
        assert_int_equal(jm_ctx_checkpoint(ctx, "{\"cutoff\":\"soon\",\"after_key\":\"7\","
                                                "\"rows_deleted\":3}"),
                         JM_OK);
        return jm_decision_continue("checkpoint planted", 0);
    }
    return jm__retention_executor.execute(self, ctx);
}

/* A host whose purge removes a full batch but reports no progress. */
static jm_host stuck_host;
static int stuck_purge(void *self, const char *ns, const char *table, jm_purge_kind kind,
                       int64_t cutoff_ms, int64_t after_key, int64_t limit, jm_host_purge *out)
{
    fh_host *fh = current->fh;
    int rc = fh_jm_host(fh)->purge(self, ns, table, kind, cutoff_ms, after_key, limit, out);
    out->last_key = after_key;
    return rc;
}

static int open_fixture(void **state, int wrapped)
{
    fx *f = calloc(1, sizeof *f);
    current = f;
    f->fh = fh_new();
    assert_int_equal(xh_open(&f->x, fh_jm_host(f->fh)), JM_OK);
    jm_executor ex = jm__retention_executor;
    if (wrapped == 1)
        ex.execute = cancelling_execute;
    else if (wrapped == 2)
        ex.execute = bad_checkpoint_execute;
    assert_int_equal(jm_register(f->x.m, &ex, NULL), JM_OK);
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

static int setup_bad_checkpoint(void **state)
{
    return open_fixture(state, 2);
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

/* Adds n rows soft-deleted at deleted_at (0: live). */
static void add_rows(fx *f, int n, int64_t deleted_at)
{
    for (int i = 0; i < n; i++) {
        int64_t key;
        assert_int_equal(fh_insert(f->fh, "app", "users", "{\"u\":1}", XH_T0 - 1000 * XH_HOUR_MS,
                                   &key),
                         JM_OK);
        if (deleted_at)
            assert_int_equal(fh_soft_delete(f->fh, "app", "users", key, deleted_at), JM_OK);
    }
}

static void assert_message_has(fx *f, const char *needle)
{
    xh_assert_message_has(&f->x, f->id, needle);
}

static void test_properties(void **state)
{
    (void)state;
    assert_int_equal(jm__retention_executor.version, JM_EXECUTOR_VERSION);
    assert_string_equal(jm__retention_executor.type, "RT");
    assert_string_equal(jm__retention_executor.name, "retention");
    assert_int_equal(jm__retention_executor.cancellable, 1);
}

static void test_validation(void **state)
{
    fx *f = *state;
    xh *x = &f->x;
    assert_true(xh_rejects(x, "RT",
                           "{\"table_name\":\"t\",\"table_type\":\"User\",\"retention_hours\":1}",
                           "namespace_id"));
    assert_true(xh_rejects(x, "RT",
                           "{\"namespace_id\":\"a\",\"table_type\":\"User\",\"retention_hours\":1}",
                           "table_name"));
    assert_true(xh_rejects(x, "RT",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"retention_hours\":1}",
                           "table_type"));
    assert_true(xh_rejects(x, "RT",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"User\"}",
                           "retention_hours"));
    assert_true(xh_rejects(x, "RT",
                           "{\"namespace_id\":null,\"table_name\":\"t\",\"table_type\":\"User\","
                           "\"retention_hours\":1}",
                           "namespace_id"));
    assert_true(xh_rejects(x, "RT",
                           "{\"namespace_id\":\"a\",\"table_name\":\"\",\"table_type\":\"User\","
                           "\"retention_hours\":1}",
                           "table_name"));
    assert_true(xh_rejects(x, "RT",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"Users\","
                           "\"retention_hours\":1}",
                           "table_type"));
    static const char *const bad_hours[] = {"-1", "876001", "\"720\"", "1.5", "true", "[]"};
    for (size_t i = 0; i < sizeof bad_hours / sizeof bad_hours[0]; i++) {
        char params[256];
        snprintf(params, sizeof params,
                 "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"User\","
                 "\"retention_hours\":%s}",
                 bad_hours[i]);
        assert_true(xh_rejects(x, "RT", params, "retention_hours"));
    }
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(x, "RT",
                               "{\"namespace_id\":\"a\",\"table_name\":\"t\","
                               "\"table_type\":\"Stream\",\"retention_hours\":876000}",
                               id),
                     JM_OK);
    assert_int_equal(xh_create(x, "RT",
                               "{\"namespace_id\":\"a\",\"table_name\":\"t\","
                               "\"table_type\":\"Shared\",\"retention_hours\":0}",
                               id),
                     JM_OK);
}

static void test_deletes_expired_only(void **state)
{
    fx *f = *state;
    add_rows(f, 4, XH_T0 - 48 * XH_HOUR_MS);  /* expired */
    add_rows(f, 2, XH_T0 - 23 * XH_HOUR_MS);  /* deleted, not yet expired */
    add_rows(f, 1, CUTOFF);                   /* exactly at the cut-off: kept */
    add_rows(f, 3, 0);                        /* live, however old */
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 4);
    assert_message_has(f, "deleted 4 rows from app.users");
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 6);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 0), 3);
    for (int64_t k = 1; k <= 4; k++)
        assert_false(fh_row_exists(f->fh, "app", "users", k));
    fh_purge_args a = fh_last_purge(f->fh);
    assert_int_equal(a.kind, JM_PURGE_DELETED_BEFORE);
    assert_int_equal(a.cutoff_ms, CUTOFF);
    assert_int_equal(a.after_key, 0);
    assert_int_equal(a.limit, BATCH);
}

static void test_nothing_to_delete(void **state)
{
    fx *f = *state;
    add_rows(f, 3, 0);
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 0);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 3);
}

static void test_zero_hours_deletes_every_deleted_row(void **state)
{
    fx *f = *state;
    add_rows(f, 2, XH_T0 - 1);
    add_rows(f, 2, 0);
    assert_int_equal(xh_create(&f->x, "RT",
                               "{\"namespace_id\":\"app\",\"table_name\":\"users\","
                               "\"table_type\":\"User\",\"retention_hours\":0}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 2);
    assert_int_equal(fh_last_purge(f->fh).cutoff_ms, XH_T0);
}

static void test_century_cutoff_clamped_to_epoch(void **state)
{
    fx *f = *state;
    add_rows(f, 2, XH_T0 - 48 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "RT",
                               "{\"namespace_id\":\"app\",\"table_name\":\"users\","
                               "\"table_type\":\"User\",\"retention_hours\":876000}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 0);
    assert_int_equal(fh_last_purge(f->fh).cutoff_ms, 0);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 2);
}

static void test_batches_continue_with_checkpoint(void **state)
{
    fx *f = *state;
    add_rows(f, 100, 0);
    add_rows(f, 2500, XH_T0 - 48 * XH_HOUR_MS);
    add_rows(f, 50, XH_T0 - XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);

    /* Run 1: a full batch; back to queued, due at once, no retry spent. */
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_int_equal(xh_due_in(&f->x, f->id), 0);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "rows_deleted"), 1000);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "cutoff"), CUTOFF);
    /* Keys 1..100 are live, so the 1000th deleted one is key 1100. */
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "after_key"), 1100);
    assert_message_has(f, "deleted 1000 rows from app.users so far; more remain");
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->x.m, f->id, &j), JM_OK);
    assert_int_equal(jm_job_retry_count(j), 0);
    jm_job_free(j);

    /* Run 2 resumes after the saved key. */
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_int_equal(fh_last_purge(f->fh).after_key, 1100);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "rows_deleted"), 2000);

    /* Run 3: the last 500 end it. */
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(fh_last_purge(f->fh).after_key, 2100);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 2500);
    assert_int_equal(fh_calls(f->fh, FH_PURGE), 3);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 150);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 0), 100);
}

static void test_exact_multiple_ends_with_empty_run(void **state)
{
    fx *f = *state;
    add_rows(f, 2000, XH_T0 - 48 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    int runs = 0;
    assert_int_equal(xh_run_to_end(&f->x, f->id, 10, &runs), JM_STATUS_COMPLETED);
    assert_int_equal(runs, 3);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 2000);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 0);
}

static void test_cutoff_fixed_at_first_run(void **state)
{
    fx *f = *state;
    add_rows(f, 1000, XH_T0 - 48 * XH_HOUR_MS);
    add_rows(f, 10, XH_T0 - 20 * XH_HOUR_MS); /* expires 4 hours later */
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    tu_clock_advance(&f->x.clock, 10 * XH_HOUR_MS);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(fh_last_purge(f->fh).cutoff_ms, CUTOFF);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 1000);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 10);
}

static void test_busy_resumes_from_checkpoint(void **state)
{
    fx *f = *state;
    add_rows(f, 1500, XH_T0 - 48 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    fh_fail(f->fh, FH_PURGE, JM_EBUSY, 1);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_RETRYING);
    assert_message_has(f, "busy");
    assert_int_equal(xh_due_in(&f->x, f->id), f->x.cfg.backoff_base_ms);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "after_key"), 1000);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 1000);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 5, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(fh_last_purge(f->fh).after_key, 1000);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 1500);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 0);
}

static void test_cancel_before_batch(void **state)
{
    fx *f = *state;
    f->cancel_at_run = 2;
    add_rows(f, 1500, XH_T0 - 48 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_CANCELLED);
    assert_message_has(f, "cancelled: 1000 rows deleted from app.users so far");
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 1000);
    assert_int_equal(fh_calls(f->fh, FH_PURGE), 1);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 500);
}

/* Paused before its first batch: the checkpoint keeps the cut-off taken
 * then, so rows that age past it while the job is paused stay. */
static void test_pause_keeps_the_first_cutoff(void **state)
{
    fx *f = *state;
    f->pause_at_run = 1;
    add_rows(f, 5, XH_T0 - 30 * XH_HOUR_MS);
    add_rows(f, 3, XH_T0 - 20 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_message_has(f, "paused: 0 rows deleted from app.users so far");
    assert_int_equal(fh_calls(f->fh, FH_PURGE), 0);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "cutoff"), CUTOFF);
    tu_clock_advance(&f->x.clock, 10 * XH_HOUR_MS);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 3, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(fh_last_purge(f->fh).cutoff_ms, CUTOFF);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 5);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 3);
}

static void test_cancel_between_runs(void **state)
{
    fx *f = *state;
    add_rows(f, 1500, XH_T0 - 48 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_int_equal(jm_cancel(f->x.m, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_CANCELLED);
    assert_int_equal(fh_calls(f->fh, FH_PURGE), 1);
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 500);
}

static void test_missing_table_fails(void **state)
{
    fx *f = *state;
    assert_int_equal(xh_create(&f->x, "RT",
                               "{\"namespace_id\":\"app\",\"table_name\":\"nope\","
                               "\"table_type\":\"User\",\"retention_hours\":24}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "table app.nope not found");
}

static void test_wrong_type_fails(void **state)
{
    fx *f = *state;
    add_rows(f, 3, XH_T0 - 48 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "RT",
                               "{\"namespace_id\":\"app\",\"table_name\":\"users\","
                               "\"table_type\":\"Shared\",\"retention_hours\":24}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "is a User table, not Shared");
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 3);
}

static void test_io_error_fails(void **state)
{
    fx *f = *state;
    add_rows(f, 3, XH_T0 - 48 * XH_HOUR_MS);
    fh_fail(f->fh, FH_PURGE, JM_EIO, 1);
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "removing rows from app.users failed");
    assert_int_equal(fh_row_count(f->fh, "app", "users", 1), 3);
}

static void test_unreadable_checkpoint_starts_over(void **state)
{
    fx *f = *state;
    add_rows(f, 5, XH_T0 - 48 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    tu_clock_advance(&f->x.clock, XH_HOUR_MS);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    /* Nothing of it was used: first key, a cut-off taken now, a new total. */
    fh_purge_args a = fh_last_purge(f->fh);
    assert_int_equal(a.after_key, 0);
    assert_int_equal(a.cutoff_ms, CUTOFF + XH_HOUR_MS);
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 5);
}

static void test_host_not_advancing_fails(void **state)
{
    fx *f = *state;
    xh_close(&f->x);
    stuck_host = *fh_jm_host(f->fh);
    stuck_host.purge = stuck_purge;
    assert_int_equal(xh_open(&f->x, &stuck_host), JM_OK);
    assert_int_equal(jm_register(f->x.m, &jm__retention_executor, NULL), JM_OK);
    add_rows(f, 1500, XH_T0 - 48 * XH_HOUR_MS);
    assert_int_equal(xh_create(&f->x, "RT", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "did not advance past key 0");
    assert_int_equal(xh_metric(&f->x, f->id, "rows_deleted"), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_properties),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes_expired_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_to_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_hours_deletes_every_deleted_row, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_century_cutoff_clamped_to_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_continue_with_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exact_multiple_ends_with_empty_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cutoff_fixed_at_first_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_resumes_from_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_batch, setup_wrapped, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_between_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_keeps_the_first_cutoff, setup_wrapped,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_table_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_checkpoint_starts_over,
                                        setup_bad_checkpoint, teardown),
        cmocka_unit_test_setup_teardown(test_host_not_advancing_fails, setup, teardown),
    };
    return cmocka_run_group_tests_name("exec_retention", tests, NULL, NULL);
}
