/*
 * WAL checkpoints (src/store/sqlite/sqlite_wal.c): the store hands them to a
 * thread with its own connection, and the log still stays bounded while
 * jobs are created one transaction at a time and while a prune deletes
 * many (it waits between batches for the checkpoints to catch up).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "job_id.h"
#include "sqlite_internal.h"
#include "test_util.h"

#define OPS (&jm__sqlite_store)
#define T0 INT64_C(1700000000000)

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void insert_one(jm__store *s, int64_t at)
{
    char id[JM_JOB_ID_SIZE], holder[JM_JOB_ID_SIZE];
    jm__job_id_new("FL", id);
    jm__new_row r = {0};
    r.id = id;
    r.type = "FL";
    r.params = "{\"table\":\"t\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    r.status = JM_STATUS_QUEUED;
    r.max_retries = 3;
    r.created_at = at;
    r.run_at = at;
    size_t index = 0;
    int rc = OPS->insert(s, &r, 1, &index, holder);
    if (rc != JM_OK)
        fail_msg("insert: %s", jm_last_error());
}

typedef struct fx {
    char *dir;
    char *db;
    char *wal;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    f->wal = tu_path(f->dir, "jobs.db-wal");
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    free(f->wal);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

enum { N_SINGLE = 4000 };

/* Opens the store on f->db (optionally stopping its checkpointer) and
 * inserts N_SINGLE jobs, one transaction each. */
static jm__store *open_and_fill(fx *f, int stop_checkpointer)
{
    jm__store_config c = {f->db, NULL, 20000, 0, 1, NULL, NULL};
    jm__store *s = NULL;
    assert_int_equal(OPS->open(&c, &s), JM_OK);
    if (OPS->caveat()) {
        /* A SQLite with the WAL-reset bug (JM_SQLITE=system): no second
         * connection may checkpoint beside the writer. */
        assert_null(s->wal);
        OPS->close(s);
        skip();
    }
    assert_non_null(s->wal);
    if (stop_checkpointer) {
        jm__wal_checkpointer_stop(s);
        assert_null(s->wal);
    }
    for (int i = 0; i < N_SINGLE; i++)
        insert_one(s, T0 + i);
    return s;
}

/* Each insert commits on its own and dirties several pages: 4000 of them
 * write over 15 000 frames (60 MiB) if nothing checkpoints. */
static void log_stays_bounded(void **state)
{
    fx *f = *state;
    jm__store *s = open_and_fill(f, 0);
    int64_t size = file_size(f->wal);
    if (size > INT64_C(16) << 20)
        fail_msg("the log grew to %lld bytes", (long long)size);
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs"), N_SINGLE);
    OPS->close(s);
    /* Closing the last connection checkpointed and removed the log. */
    assert_int_equal(file_size(f->wal), -1);
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs"), N_SINGLE);
}

/* Stopping the checkpointer leaves SQLite's own checkpoint in place: the
 * store keeps committing with a bounded log. */
static void stopped_checkpointer_falls_back(void **state)
{
    fx *f = *state;
    jm__store *s = open_and_fill(f, 1);
    assert_true(file_size(f->wal) <= INT64_C(16) << 20);
    OPS->close(s);
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs"), N_SINGLE);
}

static jm_decision never_runs(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_failed("not run in this test", NULL);
}

/* A prune of 60 000 jobs rewrites thousands of pages: the log must still
 * stay bounded (between batches the prune lets checkpoints catch up). */
static void prune_keeps_log_bounded(void **state)
{
    fx *f = *state;
    jm_config cfg = tu_config(f->db);
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    jm_executor ex = {JM_EXECUTOR_VERSION, "FL", "flush", 1, NULL, never_runs, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(m, &ex, NULL), JM_OK);
    enum { BATCH = 1000, N = 60000 };
    static jm_new_job jobs[BATCH];
    static char ids[BATCH][JM_JOB_ID_SIZE];
    for (int i = 0; i < BATCH; i++)
        jobs[i] = (jm_new_job){"FL", NULL, JM_CREATE_OPTS_INIT};
    for (int b = 0; b < N / BATCH; b++)
        assert_int_equal(jm_create_many(m, jobs, BATCH, ids), JM_OK);
    jm_close(m);
    tu_sql_exec(f->db, "UPDATE jm_jobs SET status = 4, finished_at = 1");
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    int64_t deleted = 0;
    assert_int_equal(jm_prune(m, 2, &deleted), JM_OK);
    assert_int_equal(deleted, N);
    int64_t size = file_size(f->wal);
    if (size > INT64_C(24) << 20)
        fail_msg("the log grew to %lld bytes", (long long)size);
    jm_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(log_stays_bounded, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(stopped_checkpointer_falls_back, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(prune_keeps_log_bounded, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
