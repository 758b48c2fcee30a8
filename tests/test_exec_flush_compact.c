/*
 * Flush and compact jobs against the reference engine: each flush job moves
 * the buffer into one new segment (metrics match the engine's counts), then
 * a compact job merges the small segments into one: the segment count
 * drops, and every row (documents, times, soft deletes) reads back exactly
 * as before. Also: a flush job on an empty buffer and on a missing table.
 */
#define _GNU_SOURCE
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
#include "jobmgr/engine.h"

#define SEGMENTS 6
#define ROWS_PER_FLUSH 40

#define FLUSH_PARAMS "{\"namespace_id\":\"app\",\"table_name\":\"docs\",\"table_type\":\"User\"}"
#define COMPACT_PARAMS                                                                         \
    "{\"namespace_id\":\"app\",\"table_name\":\"docs\",\"table_type\":\"User\","              \
    "\"target_file_size_mb\":64}"

typedef struct fx {
    xh x;
    char *edir;
    jm_engine *e;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->edir = tu_tmpdir();
    assert_int_equal(jm_engine_open(f->edir, &f->e), JM_OK);
    assert_int_equal(xh_open(&f->x, jm_engine_host(f->e)), JM_OK);
    assert_int_equal(jm_register(f->x.m, &jm__flush_executor, NULL), JM_OK);
    assert_int_equal(jm_register(f->x.m, &jm__compact_executor, NULL), JM_OK);
    assert_int_equal(jm_engine_create_namespace(f->e, "app"), JM_OK);
    assert_int_equal(jm_engine_create_table(f->e, "app", "docs", JM_TABLE_USER, NULL), JM_OK);
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
    return 0;
}

/* Every row as text "key created deleted doc", one per line. */
typedef struct dump {
    char *text;
    size_t len, cap;
} dump;

static int dump_row(void *arg, const jm_host_row *row)
{
    dump *d = arg;
    size_t need = d->len + row->doc_len + 96;
    if (need > d->cap) {
        d->cap = need * 2;
        d->text = realloc(d->text, d->cap);
        assert_non_null(d->text);
    }
    d->len += (size_t)snprintf(d->text + d->len, d->cap - d->len, "%lld %lld %lld %.*s\n",
                               (long long)row->key, (long long)row->created_at,
                               (long long)row->deleted_at, (int)row->doc_len, row->doc);
    return 0;
}

static char *dump_table(fx *f)
{
    dump d = {calloc(1, 1), 0, 1};
    assert_int_equal(jm_engine_scan(f->e, "app", "docs", 1, dump_row, &d), JM_OK);
    return d.text;
}

static int64_t segment_count(fx *f)
{
    int64_t n = -1;
    assert_int_equal(jm_engine_segment_count(f->e, "app", "docs", &n), JM_OK);
    return n;
}

static void run_flush(fx *f, int64_t expect_rows)
{
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(&f->x, "FL", FLUSH_PARAMS, id), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, id, 5, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, id, "rows_flushed"), expect_rows);
    assert_int_equal(xh_metric(&f->x, id, "segments_written"), expect_rows > 0 ? 1 : 0);
}

static void test_flush_then_compact(void **state)
{
    fx *f = *state;
    char doc[128];
    int64_t key = 0;
    for (int s = 0; s < SEGMENTS; s++) {
        for (int i = 0; i < ROWS_PER_FLUSH; i++) {
            snprintf(doc, sizeof doc, "{\"segment\":%d,\"row\":%d,\"text\":\"r%d-%d\"}", s, i, s,
                     i);
            assert_int_equal(jm_engine_insert(f->e, "app", "docs", doc,
                                              XH_T0 - (int64_t)(s * 1000 + i), &key),
                             JM_OK);
            if (i % 7 == 3)
                assert_int_equal(jm_engine_soft_delete(f->e, "app", "docs", key, XH_T0 - 5),
                                 JM_OK);
        }
        run_flush(f, ROWS_PER_FLUSH);
        assert_int_equal(segment_count(f), s + 1);
    }
    /* A few rows stay buffered: compaction leaves the buffer alone. */
    assert_int_equal(jm_engine_insert(f->e, "app", "docs", "{\"buffered\":true}", XH_T0, NULL),
                     JM_OK);
    char *before = dump_table(f);
    int64_t rows_before = -1;
    assert_int_equal(jm_engine_count(f->e, "app", "docs", 1, &rows_before), JM_OK);
    assert_int_equal(rows_before, SEGMENTS * ROWS_PER_FLUSH + 1);

    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(&f->x, "CO", COMPACT_PARAMS, id), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, id, 5, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, id, "files_before"), SEGMENTS);
    assert_int_equal(xh_metric(&f->x, id, "files_after"), 1);
    assert_true(xh_metric(&f->x, id, "bytes_after") > 0);
    assert_true(xh_metric(&f->x, id, "bytes_after") <= xh_metric(&f->x, id, "bytes_before"));
    assert_int_equal(segment_count(f), 1);

    char *after = dump_table(f);
    assert_string_equal(after, before);
    int64_t rows_after = -1;
    assert_int_equal(jm_engine_count(f->e, "app", "docs", 1, &rows_after), JM_OK);
    assert_int_equal(rows_after, rows_before);
    free(before);
    free(after);

    /* A second compaction finds nothing worth merging. */
    assert_int_equal(xh_create(&f->x, "CO", COMPACT_PARAMS, id), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, id, 5, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, id, "files_before"), 1);
    assert_int_equal(xh_metric(&f->x, id, "files_after"), 1);
}

static void test_flush_empty_buffer(void **state)
{
    fx *f = *state;
    run_flush(f, 0);
    assert_int_equal(segment_count(f), 0);
}

static void test_flush_missing_table(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(&f->x, "FL",
                               "{\"namespace_id\":\"app\",\"table_name\":\"nope\","
                               "\"table_type\":\"User\"}",
                               id),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, id), JM_STATUS_FAILED);
    char *msg = xh_message(&f->x, id);
    assert_non_null(strstr(msg, "table app.nope not found"));
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_then_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_empty_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_missing_table, setup, teardown),
    };
    return cmocka_run_group_tests_name("exec_flush_compact", tests, NULL, NULL);
}
