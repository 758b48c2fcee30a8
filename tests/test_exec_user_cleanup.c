/*
 * The user cleanup executor (src/executors/user_cleanup.c) on the
 * reference engine, with the real cleanup (CL) executor: parameter
 * validation; the cascade end to end (a user owning tables with rows, an
 * ACL entry on a shared table, live queries; soft delete; the UC job
 * creates one CL job per table, waits for them with continue decisions
 * spending no retry, then removes ACL entries, live queries and the user,
 * leaving other users alone); a live user refused; no cascade; a user
 * already removed; a failed cleanup job failing the user cleanup; a rerun
 * finding the same cleanup jobs by their idempotency keys; and JM_EBUSY
 * from the host turned into retries, with metrics totalled over runs.
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
#include "test_util.h"

#define NS "app"

/* ---- the wrapper host ---------------------------------------------------- */

static struct {
    const jm_host *inner;
    int busy_user_info;
    int busy_live_queries; /* remove_user_live_queries */
    int busy_drop;         /* drop_table, as the CL jobs see it */
    int fail_drop;         /* drop_table fails for good (JM_EIO) */
} g;

static int w_user_info(void *self, const char *user, jm_host_user *out)
{
    if (g.busy_user_info > 0) {
        g.busy_user_info--;
        return jm_host_error(JM_EBUSY, "injected: user_info busy");
    }
    return g.inner->user_info(self, user, out);
}

static int w_remove_live_queries(void *self, const char *user, int64_t *removed)
{
    if (g.busy_live_queries > 0) {
        g.busy_live_queries--;
        return jm_host_error(JM_EBUSY, "injected: live queries busy");
    }
    return g.inner->remove_user_live_queries(self, user, removed);
}

static int w_drop_table(void *self, const char *ns, const char *table, jm_host_drop *out)
{
    if (g.fail_drop)
        return jm_host_error(JM_EIO, "injected: disk gone");
    if (g.busy_drop > 0) {
        g.busy_drop--;
        return jm_host_error(JM_EBUSY, "injected: drop busy");
    }
    return g.inner->drop_table(self, ns, table, out);
}

/* ---- fixture ------------------------------------------------------------- */

typedef struct fx {
    xh x;
    char *edir;
    jm_engine *e;
    jm_host host;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    memset(&g, 0, sizeof g);
    f->edir = tu_tmpdir();
    assert_int_equal(jm_engine_open(f->edir, &f->e), JM_OK);
    g.inner = jm_engine_host(f->e);
    f->host = *g.inner;
    f->host.user_info = w_user_info;
    f->host.remove_user_live_queries = w_remove_live_queries;
    f->host.drop_table = w_drop_table;
    assert_int_equal(xh_open(&f->x, &f->host), JM_OK);
    assert_int_equal(jm_register(f->x.m, &jm__user_cleanup_executor, NULL), JM_OK);
    assert_int_equal(jm_register(f->x.m, &jm__cleanup_executor, NULL), JM_OK);
    assert_int_equal(jm_engine_create_namespace(f->e, NS), JM_OK);
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

static void owned_table(fx *f, const char *table, const char *owner, int rows)
{
    jm_table_opts o = JM_TABLE_OPTS_INIT;
    o.owner_user_id = owner;
    assert_int_equal(jm_engine_create_table(f->e, NS, table, JM_TABLE_USER, &o), JM_OK);
    for (int i = 0; i < rows; i++)
        assert_int_equal(jm_engine_insert(f->e, NS, table, "{\"x\":1}", 0, NULL), JM_OK);
}

/* u1 ("alice") owns t1 (5 rows) and t2 (3 rows, one flushed); both users
 * may read the shared table and have live queries on it. */
static void world(fx *f)
{
    assert_int_equal(jm_engine_create_user(f->e, "u1", "alice"), JM_OK);
    assert_int_equal(jm_engine_create_user(f->e, "u2", "bob"), JM_OK);
    owned_table(f, "t1", "u1", 5);
    owned_table(f, "t2", "u1", 3);
    jm_host_flush fl;
    assert_int_equal(g.inner->flush(g.inner->self, NS, "t2", &fl), JM_OK);
    owned_table(f, "bobs", "u2", 2);
    assert_int_equal(jm_engine_create_table(f->e, NS, "shared", JM_TABLE_SHARED, NULL), JM_OK);
    assert_int_equal(jm_engine_grant(f->e, NS, "shared", "u1"), JM_OK);
    assert_int_equal(jm_engine_grant(f->e, NS, "shared", "u2"), JM_OK);
    assert_int_equal(jm_engine_add_live_query(f->e, "u1", NS, "shared", NULL), JM_OK);
    assert_int_equal(jm_engine_add_live_query(f->e, "u1", NS, "shared", NULL), JM_OK);
    assert_int_equal(jm_engine_add_live_query(f->e, "u2", NS, "shared", NULL), JM_OK);
}

static int table_exists(fx *f, const char *table)
{
    int e = -1;
    assert_int_equal(jm_engine_table_exists(f->e, NS, table, &e), JM_OK);
    return e;
}

static int user_exists(fx *f, const char *user)
{
    int e = -1;
    assert_int_equal(jm_engine_user_exists(f->e, user, &e), JM_OK);
    return e;
}

static int64_t acl(fx *f, const char *user)
{
    int64_t n = -1;
    assert_int_equal(jm_engine_count_acl(f->e, user, &n), JM_OK);
    return n;
}

static int64_t live_queries(fx *f, const char *user)
{
    int64_t n = -1;
    assert_int_equal(jm_engine_count_live_queries(f->e, user, &n), JM_OK);
    return n;
}

static void create_uc(fx *f, const char *user, int cascade, char id[JM_JOB_ID_SIZE])
{
    char p[256];
    snprintf(p, sizeof p, "{\"user_id\":\"%s\",\"username\":\"alice\",\"cascade\":%s}", user,
             cascade ? "true" : "false");
    assert_int_equal(xh_create(&f->x, JM_USER_CLEANUP, p, id), JM_OK);
}

static int64_t count_jobs(fx *f, const char *type, unsigned statuses)
{
    jm_filter flt = JM_FILTER_INIT;
    flt.type = type;
    flt.statuses = statuses;
    int64_t n = -1;
    assert_int_equal(jm_count(f->x.m, &flt, &n), JM_OK);
    return n;
}

static void assert_message_has(fx *f, const char *id, const char *needle)
{
    xh_assert_message_has(&f->x, id, needle);
}

/* ---- tests --------------------------------------------------------------- */

static void validation(void **state)
{
    fx *f = *state;
    xh *x = &f->x;
    const char *t = JM_USER_CLEANUP;
    assert_true(xh_rejects(x, t, "{\"username\":\"a\",\"cascade\":true}", "user_id"));
    assert_true(xh_rejects(x, t, "{\"user_id\":12,\"username\":\"a\",\"cascade\":true}", "user_id"));
    assert_true(
        xh_rejects(x, t, "{\"user_id\":\"../u\",\"username\":\"a\",\"cascade\":true}", "user_id"));
    assert_true(xh_rejects(x, t, "{\"user_id\":\"u\",\"cascade\":true}", "username"));
    assert_true(xh_rejects(x, t, "{\"user_id\":\"u\",\"username\":null,\"cascade\":true}",
                           "username"));
    assert_true(xh_rejects(x, t, "{\"user_id\":\"u\",\"username\":\"a\"}", "cascade"));
    assert_true(xh_rejects(x, t, "{\"user_id\":\"u\",\"username\":\"a\",\"cascade\":\"yes\"}",
                           "cascade"));
    assert_true(
        xh_rejects(x, t, "{\"user_id\":\"u\",\"username\":\"a\",\"cascade\":1}", "cascade"));
}

static void not_cancellable(void **state)
{
    fx *f = *state;
    assert_int_equal(jm__user_cleanup_executor.cancellable, 0);
    assert_string_equal(jm__user_cleanup_executor.type, "UC");
    (void)f;
}

static void cascade_end_to_end(void **state)
{
    fx *f = *state;
    world(f);
    assert_int_equal(jm_engine_soft_delete_user(f->e, "u1"), JM_OK);
    char id[JM_JOB_ID_SIZE];
    create_uc(f, "u1", 1, id);

    /* First run: one cleanup job per owned table, then wait. */
    assert_int_equal(xh_run1(&f->x, id), JM_STATUS_QUEUED);
    assert_int_equal(count_jobs(f, JM_CLEANUP, 0), 2);
    assert_message_has(f, id, "waiting for 2 cleanup jobs");
    assert_int_equal(xh_due_in(&f->x, id), 200);
    jm_filter flt = JM_FILTER_INIT;
    flt.idempotency_key = "uc:u1:" NS ":t1";
    int64_t n = 0;
    assert_int_equal(jm_count(f->x.m, &flt, &n), JM_OK);
    assert_int_equal(n, 1);

    int runs = 0;
    assert_int_equal(xh_run_to_end(&f->x, id, 20, &runs), JM_STATUS_COMPLETED);
    assert_int_equal(count_jobs(f, JM_CLEANUP, JM_STATUS_BIT(JM_STATUS_COMPLETED)), 2);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->x.m, id, &j), JM_OK);
    assert_int_equal(jm_job_retry_count(j), 0); /* waiting spent no retry */
    jm_job_free(j);

    assert_int_equal(xh_metric(&f->x, id, "tables_deleted"), 2);
    assert_int_equal(xh_metric(&f->x, id, "acl_entries_removed"), 1);
    assert_int_equal(xh_metric(&f->x, id, "live_queries_deleted"), 2);
    assert_int_equal(table_exists(f, "t1"), 0);
    assert_int_equal(table_exists(f, "t2"), 0);
    assert_int_equal(acl(f, "u1"), 0);
    assert_int_equal(live_queries(f, "u1"), 0);
    assert_int_equal(user_exists(f, "u1"), 0);
    /* Bob and the shared table are untouched. */
    assert_int_equal(user_exists(f, "u2"), 1);
    assert_int_equal(table_exists(f, "bobs"), 1);
    assert_int_equal(table_exists(f, "shared"), 1);
    assert_int_equal(acl(f, "u2"), 1);
    assert_int_equal(live_queries(f, "u2"), 1);

    /* Running it again: the user is already gone. */
    create_uc(f, "u1", 1, id);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_COMPLETED);
    assert_message_has(f, id, "user already removed");
    assert_int_equal(xh_metric(&f->x, id, "tables_deleted"), 0);
    assert_int_equal(xh_metric(&f->x, id, "acl_entries_removed"), 0);
    assert_int_equal(xh_metric(&f->x, id, "live_queries_deleted"), 0);
}

static void live_user_refused(void **state)
{
    fx *f = *state;
    world(f);
    char id[JM_JOB_ID_SIZE];
    create_uc(f, "u1", 1, id);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_FAILED);
    assert_message_has(f, id, "User must be soft-deleted first");
    assert_int_equal(count_jobs(f, JM_CLEANUP, 0), 0);
    assert_int_equal(user_exists(f, "u1"), 1);
    assert_int_equal(table_exists(f, "t1"), 1);
    assert_int_equal(acl(f, "u1"), 1);
}

static void without_cascade_tables_stay(void **state)
{
    fx *f = *state;
    world(f);
    assert_int_equal(jm_engine_soft_delete_user(f->e, "u1"), JM_OK);
    char id[JM_JOB_ID_SIZE];
    create_uc(f, "u1", 0, id);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(count_jobs(f, JM_CLEANUP, 0), 0);
    assert_int_equal(xh_metric(&f->x, id, "tables_deleted"), 0);
    assert_int_equal(xh_metric(&f->x, id, "acl_entries_removed"), 1);
    assert_int_equal(xh_metric(&f->x, id, "live_queries_deleted"), 2);
    assert_int_equal(user_exists(f, "u1"), 0);
    assert_int_equal(table_exists(f, "t1"), 1);
    assert_int_equal(table_exists(f, "t2"), 1);
}

static void unknown_user_already_removed(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_uc(f, "nobody", 1, id);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_COMPLETED);
    assert_message_has(f, id, "user already removed");
    assert_int_equal(xh_metric(&f->x, id, "tables_deleted"), 0);
}

static void failed_cleanup_job_fails_user_cleanup(void **state)
{
    fx *f = *state;
    world(f);
    assert_int_equal(jm_engine_soft_delete_user(f->e, "u1"), JM_OK);
    g.fail_drop = 1;
    char id[JM_JOB_ID_SIZE];
    create_uc(f, "u1", 1, id);
    assert_int_equal(xh_run_to_end(&f->x, id, 30, NULL), JM_STATUS_FAILED);
    assert_message_has(f, id, "cleanup job CL-");
    assert_message_has(f, id, "the user was not removed");
    assert_int_equal(user_exists(f, "u1"), 1);
    assert_int_equal(acl(f, "u1"), 1);
}

/* A rerun after a crash before the checkpoint: the cleanup jobs of the
 * first run are still queued, and the conflict on their keys hands back
 * their ids instead of new jobs. */
static void rerun_reuses_cleanup_jobs(void **state)
{
    fx *f = *state;
    world(f);
    assert_int_equal(jm_engine_soft_delete_user(f->e, "u1"), JM_OK);
    char first[JM_JOB_ID_SIZE], second[JM_JOB_ID_SIZE];
    create_uc(f, "u1", 1, first);
    assert_int_equal(xh_run1(&f->x, first), JM_STATUS_QUEUED);
    assert_int_equal(count_jobs(f, JM_CLEANUP, 0), 2);
    /* The first job is lost before it saw its jobs end; a second one (run
     * before the queued cleanup jobs: higher priority) finds the same jobs
     * by their keys. */
    assert_int_equal(jm_cancel(f->x.m, first), JM_OK);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.priority = 10;
    assert_int_equal(jm_create(f->x.m, JM_USER_CLEANUP,
                               "{\"user_id\":\"u1\",\"username\":\"alice\",\"cascade\":true}",
                               &o, second),
                     JM_OK);
    assert_int_equal(xh_run1(&f->x, second), JM_STATUS_QUEUED);
    assert_int_equal(count_jobs(f, JM_CLEANUP, 0), 2); /* no new ones */
    /* The cleanup jobs are due now, the user cleanup in 200 ms. */
    int ran = 0;
    assert_int_equal(jm_run_once(f->x.m, 2, &ran), JM_OK);
    assert_int_equal(ran, 2);
    assert_int_equal(xh_run_to_end(&f->x, second, 20, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, second, "tables_deleted"), 2);
    assert_int_equal(count_jobs(f, JM_CLEANUP, 0), 2);
    assert_int_equal(user_exists(f, "u1"), 0);
}

static void busy_host_retries_and_totals(void **state)
{
    fx *f = *state;
    world(f);
    assert_int_equal(jm_engine_soft_delete_user(f->e, "u1"), JM_OK);
    g.busy_user_info = 1;
    g.busy_live_queries = 1; /* after the ACL entries were removed */
    g.busy_drop = 1;         /* one CL job retries too */
    char id[JM_JOB_ID_SIZE];
    create_uc(f, "u1", 1, id);
    assert_int_equal(xh_run1(&f->x, id), JM_STATUS_RETRYING);
    /* The busy cleanup job backs off 5 s; the user cleanup polls every
     * 200 ms meanwhile, without spending retries. */
    assert_int_equal(xh_run_to_end(&f->x, id, 100, NULL), JM_STATUS_COMPLETED);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->x.m, id, &j), JM_OK);
    assert_int_equal(jm_job_retry_count(j), 2); /* user_info and live queries */
    jm_job_free(j);
    /* The ACL entry removed before the busy failure still counts. */
    assert_int_equal(xh_metric(&f->x, id, "acl_entries_removed"), 1);
    assert_int_equal(xh_metric(&f->x, id, "live_queries_deleted"), 2);
    assert_int_equal(xh_metric(&f->x, id, "tables_deleted"), 2);
    assert_int_equal(user_exists(f, "u1"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(validation, setup, teardown),
        cmocka_unit_test_setup_teardown(not_cancellable, setup, teardown),
        cmocka_unit_test_setup_teardown(cascade_end_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(live_user_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(without_cascade_tables_stay, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_user_already_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_cleanup_job_fails_user_cleanup, setup, teardown),
        cmocka_unit_test_setup_teardown(rerun_reuses_cleanup_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_host_retries_and_totals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
