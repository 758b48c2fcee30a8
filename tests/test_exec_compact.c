/*
 * The compact executor (src/executors/compact.c) on the fake host:
 * parameter validation, the greedy plan (runs of consecutive small
 * segments whose total stays within the target; big segments and lone
 * small ones left alone), the before/after metrics, rows kept, cancellation
 * between groups, a pause between groups (continue, and a next run that
 * reports over both), busy merges resumed by a later run, I/O errors, a
 * failing re-listing falling back to the computed shape, and the bytes of
 * every merge charged to the I/O budget.
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

#define KB INT64_C(1024)
#define MB (KB * KB)
#define PARAMS                                                                                 \
    "{\"namespace_id\":\"app\",\"table_name\":\"docs\",\"table_type\":\"User\","              \
    "\"target_file_size_mb\":1}"

typedef struct fx {
    xh x;
    fh_host *fh;
    char id[JM_JOB_ID_SIZE];
    int64_t seg[16];
    int merges_seen;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->fh = fh_new();
    assert_int_equal(xh_open(&f->x, fh_jm_host(f->fh)), JM_OK);
    assert_int_equal(jm_register(f->x.m, &jm__compact_executor, NULL), JM_OK);
    assert_int_equal(fh_add_table(f->fh, "app", "docs", JM_TABLE_USER, 0, NULL), JM_OK);
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

/* Adds segments of the given sizes (KiB), 4 rows each; ids in f->seg. */
static int64_t add_segments(fx *f, const int64_t *kib, size_t n)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(fh_add_segment(f->fh, "app", "docs", 4, kib[i] * KB, XH_T0, &f->seg[i]),
                         JM_OK);
        total += kib[i] * KB;
    }
    return total;
}

static void assert_message_has(fx *f, const char *needle)
{
    xh_assert_message_has(&f->x, f->id, needle);
}

/* The layout used by several tests, against a 1 MiB target: [300 300 300]
 * merge (900 KiB), 2000 is too big, 500 cannot join 600 (1100 > 1024) and
 * stays alone, [600 100] merge. */
static const int64_t layout[] = {300, 300, 300, 2000, 500, 600, 100};
#define LAYOUT_N (sizeof layout / sizeof layout[0])

static void test_properties(void **state)
{
    (void)state;
    assert_int_equal(jm__compact_executor.version, JM_EXECUTOR_VERSION);
    assert_string_equal(jm__compact_executor.type, "CO");
    assert_string_equal(jm__compact_executor.name, "compact");
    assert_int_equal(jm__compact_executor.cancellable, 1);
}

static void test_validation(void **state)
{
    fx *f = *state;
    xh *x = &f->x;
    assert_true(xh_rejects(x, "CO",
                           "{\"table_name\":\"t\",\"table_type\":\"User\","
                           "\"target_file_size_mb\":1}",
                           "namespace_id"));
    assert_true(xh_rejects(x, "CO",
                           "{\"namespace_id\":\"a\",\"table_type\":\"User\","
                           "\"target_file_size_mb\":1}",
                           "table_name"));
    assert_true(xh_rejects(x, "CO",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\","
                           "\"target_file_size_mb\":1}",
                           "table_type"));
    assert_true(xh_rejects(x, "CO",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"User\"}",
                           "target_file_size_mb"));
    assert_true(xh_rejects(x, "CO",
                           "{\"namespace_id\":false,\"table_name\":\"t\",\"table_type\":\"User\","
                           "\"target_file_size_mb\":1}",
                           "namespace_id"));
    assert_true(xh_rejects(x, "CO",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t;drop\","
                           "\"table_type\":\"User\",\"target_file_size_mb\":1}",
                           "table_name"));
    assert_true(xh_rejects(x, "CO",
                           "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"\","
                           "\"target_file_size_mb\":1}",
                           "table_type"));
    static const char *const bad_mb[] = {"0", "65537", "-1", "\"128\"", "1.25", "{}"};
    for (size_t i = 0; i < sizeof bad_mb / sizeof bad_mb[0]; i++) {
        char params[256];
        snprintf(params, sizeof params,
                 "{\"namespace_id\":\"a\",\"table_name\":\"t\",\"table_type\":\"User\","
                 "\"target_file_size_mb\":%s}",
                 bad_mb[i]);
        assert_true(xh_rejects(x, "CO", params, "target_file_size_mb"));
    }
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(x, "CO",
                               "{\"namespace_id\":\"a\",\"table_name\":\"t\","
                               "\"table_type\":\"Shared\",\"target_file_size_mb\":65536}",
                               id),
                     JM_OK);
}

static void test_merges_small_runs(void **state)
{
    fx *f = *state;
    int64_t before = add_segments(f, layout, LAYOUT_N);
    int64_t rows = fh_row_count(f->fh, "app", "docs", 1);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_message_has(f, "merged 2 group(s) of app.docs: 7 segments -> 4");
    assert_int_equal(fh_calls(f->fh, FH_MERGE_SEGMENTS), 2);
    int64_t ids[8];
    assert_int_equal(fh_last_merge(f->fh, ids, 8), 2);
    assert_int_equal(ids[0], f->seg[5]);
    assert_int_equal(ids[1], f->seg[6]);
    assert_int_equal(xh_metric(&f->x, f->id, "files_before"), 7);
    assert_int_equal(xh_metric(&f->x, f->id, "files_after"), 4);
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_before"), before);
    /* Each merge saves the headers of the segments it replaces, less one. */
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_after"), before - 3 * FH_SEGMENT_OVERHEAD);
    assert_int_equal(fh_segments(f->fh, "app", "docs", NULL, 0), 4);
    assert_int_equal(fh_row_count(f->fh, "app", "docs", 1), rows);
}

static void test_first_group_merged(void **state)
{
    fx *f = *state;
    add_segments(f, layout, 4);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    int64_t ids[8];
    assert_int_equal(fh_last_merge(f->fh, ids, 8), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ids[i], f->seg[i]);
    assert_int_equal(xh_metric(&f->x, f->id, "files_after"), 2);
}

static void test_keeps_rows_and_docs(void **state)
{
    fx *f = *state;
    int64_t keys[6];
    char doc[64];
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 2; i++) {
            snprintf(doc, sizeof doc, "{\"seg\":%d,\"i\":%d}", s, i);
            assert_int_equal(fh_insert(f->fh, "app", "docs", doc, XH_T0, &keys[s * 2 + i]), JM_OK);
        }
        jm_host_flush out;
        assert_int_equal(fh_jm_host(f->fh)->flush(fh_jm_host(f->fh)->self, "app", "docs", &out),
                         JM_OK);
    }
    assert_int_equal(fh_soft_delete(f->fh, "app", "docs", keys[2], XH_T0), JM_OK);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, f->id, "files_before"), 3);
    assert_int_equal(xh_metric(&f->x, f->id, "files_after"), 1);
    assert_int_equal(fh_row_count(f->fh, "app", "docs", 1), 6);
    assert_int_equal(fh_row_count(f->fh, "app", "docs", 0), 5);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 2; i++) {
            char want[64], got[64];
            snprintf(want, sizeof want, "{\"seg\":%d,\"i\":%d}", s, i);
            assert_int_equal(fh_row_doc(f->fh, "app", "docs", keys[s * 2 + i], got, sizeof got),
                             JM_OK);
            assert_string_equal(got, want);
        }
}

static void test_nothing_worth_merging(void **state)
{
    fx *f = *state;
    static const int64_t sizes[] = {2000, 600, 700, 1024};
    int64_t before = add_segments(f, sizes, 4);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_message_has(f, "nothing to compact");
    assert_int_equal(fh_calls(f->fh, FH_MERGE_SEGMENTS), 0);
    assert_int_equal(xh_metric(&f->x, f->id, "files_before"), 4);
    assert_int_equal(xh_metric(&f->x, f->id, "files_after"), 4);
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_before"), before);
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_after"), before);
}

static void test_no_segments(void **state)
{
    fx *f = *state;
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, f->id, "files_before"), 0);
    assert_int_equal(xh_metric(&f->x, f->id, "files_after"), 0);
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_after"), 0);
}

static void cancel_on_first_merge(void *arg, fh_op op)
{
    fx *f = arg;
    if (op == FH_MERGE_SEGMENTS && f->merges_seen++ == 0)
        assert_int_equal(jm_cancel(f->x.m, f->id), JM_OK);
}

static void test_cancel_between_groups(void **state)
{
    fx *f = *state;
    int64_t before = add_segments(f, layout, LAYOUT_N);
    fh_set_hook(f->fh, cancel_on_first_merge, f);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_CANCELLED);
    assert_message_has(f, "cancelled after merging 1 of 2 groups");
    assert_int_equal(fh_calls(f->fh, FH_MERGE_SEGMENTS), 1);
    assert_int_equal(fh_segments(f->fh, "app", "docs", NULL, 0), 5);
    assert_int_equal(xh_metric(&f->x, f->id, "files_before"), 7);
    assert_int_equal(xh_metric(&f->x, f->id, "files_after"), 5);
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_after"), before - 2 * FH_SEGMENT_OVERHEAD);
}

static void pause_on_first_merge(void *arg, fh_op op)
{
    fx *f = arg;
    if (op == FH_MERGE_SEGMENTS && f->merges_seen++ == 0)
        xh_request_pause(&f->x);
}

static void test_pause_between_groups(void **state)
{
    fx *f = *state;
    int64_t before = add_segments(f, layout, LAYOUT_N);
    fh_set_hook(f->fh, pause_on_first_merge, f);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_QUEUED);
    assert_message_has(f, "paused after merging 1 of 2 groups of app.docs");
    assert_int_equal(fh_calls(f->fh, FH_MERGE_SEGMENTS), 1);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "groups_merged"), 1);
    assert_int_equal(xh_checkpoint_int(&f->x, f->id, "files_before"), 7);
    assert_int_equal(xh_metric(&f->x, f->id, "files_after"), 5);
    assert_int_equal(xh_due_in(&f->x, f->id), 0);
    /* The next run merges what is left and speaks of the whole job. */
    assert_int_equal(xh_run_to_end(&f->x, f->id, 5, NULL), JM_STATUS_COMPLETED);
    assert_message_has(f, "merged 2 group(s) of app.docs: 7 segments -> 4");
    assert_int_equal(fh_calls(f->fh, FH_MERGE_SEGMENTS), 2);
    assert_int_equal(xh_metric(&f->x, f->id, "files_before"), 7);
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_before"), before);
    assert_int_equal(xh_metric(&f->x, f->id, "files_after"), 4);
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_after"), before - 3 * FH_SEGMENT_OVERHEAD);
}

/* Each group's segments are charged before the host reads them, and the
 * merged segment once written. */
static void test_io_charged_to_the_budget(void **state)
{
    fx *f = *state;
    add_segments(f, layout, LAYOUT_N);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    /* Read [300 300 300] and [600 100] KiB; written the same less the
     * headers the merges saved (2 and 1). */
    int64_t read = 1600 * KB, written = 1600 * KB - 3 * FH_SEGMENT_OVERHEAD;
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->x.m, &r), JM_OK);
    assert_int_equal(r->throttle_bytes[JM_CLASS_NORMAL], read + written);
    jm_stats_free(r);
}

static void test_busy_merge_resumes(void **state)
{
    fx *f = *state;
    add_segments(f, layout, LAYOUT_N);
    /* The first group merges, the second finds the store busy. */
    fh_fail_after(f->fh, FH_MERGE_SEGMENTS, 1, JM_EBUSY, 1);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_RETRYING);
    assert_int_equal(xh_due_in(&f->x, f->id), f->x.cfg.backoff_base_ms);
    assert_int_equal(fh_segments(f->fh, "app", "docs", NULL, 0), 5);
    /* The next run plans afresh: only [600 100] is left to merge. */
    assert_int_equal(xh_run_to_end(&f->x, f->id, 5, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(fh_calls(f->fh, FH_MERGE_SEGMENTS), 3);
    assert_int_equal(xh_metric(&f->x, f->id, "files_before"), 5);
    assert_int_equal(xh_metric(&f->x, f->id, "files_after"), 4);
}

static void test_list_error_fails(void **state)
{
    fx *f = *state;
    add_segments(f, layout, LAYOUT_N);
    fh_fail(f->fh, FH_LIST_SEGMENTS, JM_EIO, 1);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "listing the segments of app.docs failed");
    assert_int_equal(fh_calls(f->fh, FH_MERGE_SEGMENTS), 0);
}

static void test_merge_error_fails(void **state)
{
    fx *f = *state;
    add_segments(f, layout, LAYOUT_N);
    fh_fail(f->fh, FH_MERGE_SEGMENTS, JM_EIO, 1);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "merging 3 segments of app.docs failed");
    assert_int_equal(fh_segments(f->fh, "app", "docs", NULL, 0), 7);
}

/* Another compaction merged a planned segment first: the run retries and
 * the next one plans from what is there. */
static void test_vanished_segment_replans(void **state)
{
    fx *f = *state;
    add_segments(f, layout, LAYOUT_N);
    fh_fail_after(f->fh, FH_MERGE_SEGMENTS, 1, JM_ENOTFOUND, 1);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_RETRYING);
    assert_message_has(f, "changed while merging");
    assert_int_equal(fh_segments(f->fh, "app", "docs", NULL, 0), 5);
    assert_int_equal(xh_run_to_end(&f->x, f->id, 5, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(fh_segments(f->fh, "app", "docs", NULL, 0), 4);
}

static void test_relist_failure_reports_computed_shape(void **state)
{
    fx *f = *state;
    int64_t before = add_segments(f, layout, LAYOUT_N);
    fh_fail_after(f->fh, FH_LIST_SEGMENTS, 1, JM_EIO, 1);
    assert_int_equal(xh_create(&f->x, "CO", PARAMS, f->id), JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_COMPLETED);
    assert_int_equal(fh_calls(f->fh, FH_LIST_SEGMENTS), 2);
    assert_int_equal(xh_metric(&f->x, f->id, "files_after"), 4);
    assert_int_equal(xh_metric(&f->x, f->id, "bytes_after"), before - 3 * FH_SEGMENT_OVERHEAD);
}

static void test_wrong_type_fails(void **state)
{
    fx *f = *state;
    add_segments(f, layout, LAYOUT_N);
    assert_int_equal(xh_create(&f->x, "CO",
                               "{\"namespace_id\":\"app\",\"table_name\":\"docs\","
                               "\"table_type\":\"Stream\",\"target_file_size_mb\":1}",
                               f->id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, f->id), JM_STATUS_FAILED);
    assert_message_has(f, "is a User table, not Stream");
    assert_int_equal(fh_calls(f->fh, FH_LIST_SEGMENTS), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_properties),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merges_small_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_group_merged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keeps_rows_and_docs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_worth_merging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_between_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_between_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_charged_to_the_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_merge_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_error_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_error_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vanished_segment_replans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relist_failure_reports_computed_shape, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type_fails, setup, teardown),
    };
    return cmocka_run_group_tests_name("exec_compact", tests, NULL, NULL);
}
