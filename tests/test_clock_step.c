/*
 * Leases against the wall clock: a manager never takes back jobs it still
 * runs or whose outcome it still holds, whatever the clock does; a step
 * forward renews leases before any recovery decision; a step back keeps
 * relative delays (retry backoff) relative and absolute times absolute; a
 * run whose claim another node took over is told and its outcome refused.
 * The clock is the fake one of cfg.now_ms, stepped by the test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobmgr.h"
#include "test_util.h"

#define LEASE_MS 300
#define HOUR_MS 3600000

typedef struct fixture {
    char *dir;
    char *db;
    tu_clock clk;
} fixture;

static int64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clk.now, real_now_ms());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------------
 * The executor: runs until released, noting whether it was told to stop. Params {"fail_first": true} make its first run ask for a
 * retry.
 * ------------------------------------------------------------------------ */

typedef struct cs_state {
    _Atomic int runs;
    _Atomic int active;
    _Atomic int told; /* runs that saw jm_ctx_is_cancelled() */
    _Atomic int release;
    _Atomic int block; /* 0: runs end at once */
} cs_state;

static jm_decision cs_exec(void *self, jm_ctx *ctx)
{
    cs_state *s = self;
    int run = atomic_fetch_add(&s->runs, 1);
    atomic_fetch_add(&s->active, 1);
    int told = 0;
    while (atomic_load(&s->block) && !atomic_load(&s->release)) {
        if (!told && jm_ctx_is_cancelled(ctx)) {
            told = 1;
            atomic_fetch_add(&s->told, 1);
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_fetch_sub(&s->active, 1);
    const cJSON *p = jm_ctx_params(ctx);
    if (run == 0 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "fail_first")))
        return jm_decision_retry("first run fails", NULL, -1);
    return jm_decision_completed("done", NULL);
}

static jm_manager *open_mgr(fixture *f, const char *node, cs_state *s, tu_log *log,
                            int64_t busy_ms)
{
    jm_config cfg = tu_config(f->db);
    cfg.lease_ms = LEASE_MS;
    cfg.node_id = node;
    cfg.now_ms = tu_fake_now;
    cfg.now_user = &f->clk;
    cfg.backoff_base_ms = 1000;
    cfg.backoff_max_ms = 1000;
    if (busy_ms)
        cfg.busy_timeout_ms = busy_ms;
    if (log) {
        cfg.log_fn = tu_log_fn;
        cfg.log_user = log;
        cfg.log_level = JM_LOG_WARN;
    }
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc != JM_OK)
        fail_msg("jm_open: %s (%s)", jm_err_name(rc), jm_last_error());
    jm_executor ex = {JM_EXECUTOR_VERSION, "CS", "clock step", 1, NULL, cs_exec, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(m, &ex, s), JM_OK);
    return m;
}

typedef struct int_at_least {
    _Atomic int *v;
    int want;
} int_at_least;

static int reached(void *arg)
{
    int_at_least *w = arg;
    return atomic_load(w->v) >= w->want;
}

static void wait_int(_Atomic int *v, int want, const char *what)
{
    int_at_least w = {v, want};
    if (!tu_wait_until(reached, &w, TU_TIMEOUT_MS))
        fail_msg("%s: %d, want %d", what, atomic_load(v), want);
}

typedef struct job_wait {
    jm_manager *m;
    const char *id;
    int status;
    int64_t lease_at_least;
    int64_t run_at_most;
} job_wait;

static int job_is(void *arg)
{
    job_wait *w = arg;
    jm_job *j = NULL;
    if (jm_get(w->m, w->id, &j) != JM_OK)
        return 0;
    int ok = (w->status < 0 || (int)jm_job_status(j) == w->status) &&
             (!w->lease_at_least || jm_job_lease_until(j) >= w->lease_at_least) &&
             (!w->run_at_most || jm_job_run_at(j) <= w->run_at_most);
    jm_job_free(j);
    return ok;
}

static void wait_job(job_wait w, const char *what)
{
    if (!tu_wait_until(job_is, &w, TU_TIMEOUT_MS))
        fail_msg("job %s never %s (status %s)", w.id, what,
                 jm_status_name((jm_status)tu_status(w.m, w.id)));
}

/* ------------------------------------------------------------------------
 * A forward step of many leases: the manager's own jobs keep running
 * ------------------------------------------------------------------------ */

static void test_forward_step_never_recovers_own_jobs(void **state)
{
    fixture *f = *state;
    cs_state s = {0};
    atomic_store(&s.block, 1);
    jm_manager *m = open_mgr(f, NULL, &s, NULL, 0);
    char ids[2][JM_JOB_ID_SIZE];
    for (int i = 0; i < 2; i++)
        assert_int_equal(jm_create(m, "CS", NULL, NULL, ids[i]), JM_OK);
    assert_int_equal(jm_start(m, 3), JM_OK);
    wait_int(&s.active, 2, "jobs running");

    tu_clock_advance(&f->clk, 20 * LEASE_MS);
    /* The loop notices the step and renews by the new time. */
    wait_job((job_wait){m, ids[0], JM_STATUS_RUNNING, atomic_load(&f->clk.now), 0},
             "renewed after the step");
    int n = -1;
    assert_int_equal(jm_recover(m, &n), JM_OK);
    assert_int_equal(n, 0);
    /* Another manager on this node, whose clock is far ahead, knows the
     * owner lives. */
    cs_state other = {0};
    jm_manager *m2 = open_mgr(f, NULL, &other, NULL, 0);
    tu_clock_advance(&f->clk, 20 * LEASE_MS);
    assert_int_equal(jm_recover(m2, &n), JM_OK);
    assert_int_equal(n, 0);
    jm_close(m2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tu_status(m, ids[i]), JM_STATUS_RUNNING);

    atomic_store(&s.release, 1);
    for (int i = 0; i < 2; i++)
        wait_job((job_wait){m, ids[i], JM_STATUS_COMPLETED, 0, 0}, "completed");
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    /* Each ran once, under its first claim, and was never told to stop. */
    assert_int_equal(atomic_load(&s.runs), 2);
    for (int i = 0; i < 2; i++) {
        jm_job *j = NULL;
        assert_int_equal(jm_get(m, ids[i], &j), JM_OK);
        assert_int_equal(jm_job_attempts(j), 1);
        jm_job_free(j);
    }
    assert_int_equal(atomic_load(&s.told), 0);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * An outcome that cannot be written for many leases is kept, not re-run
 * ------------------------------------------------------------------------ */

static int log_has(void *arg)
{
    return tu_log_has(arg, "will try again");
}

static void test_unwritable_outcome_keeps_its_job(void **state)
{
    if (tu_skip_unless_sqlite("holds SQLite's write lock from outside"))
        return;
    fixture *f = *state;
    cs_state s = {0};
    atomic_store(&s.block, 1);
    tu_log log;
    tu_log_init(&log);
    jm_manager *m = open_mgr(f, NULL, &s, &log, 50);
    cs_state other = {0};
    jm_manager *m2 = open_mgr(f, NULL, &other, NULL, 0);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(m, "CS", NULL, NULL, id), JM_OK);
    assert_int_equal(jm_start(m, 2), JM_OK);
    wait_int(&s.active, 1, "job running");

    /* Another connection holds the write lock while the run ends. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    atomic_store(&s.release, 1);
    if (!tu_wait_until(log_has, &log, TU_TIMEOUT_MS))
        fail_msg("the outcome was never refused by the lock");
    tu_clock_advance(&f->clk, 10 * LEASE_MS);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    /* Right away, before the outcome is recorded or not: nothing to take. */
    int n = -1;
    assert_int_equal(jm_recover(m2, &n), JM_OK);
    assert_int_equal(n, 0);
    wait_job((job_wait){m, id, JM_STATUS_COMPLETED, 0, 0}, "completed");
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    assert_int_equal(atomic_load(&s.runs), 1);
    assert_int_equal(atomic_load(&other.runs), 0);
    jm_close(m2);
    jm_close(m);
    tu_log_destroy(&log);
}

/* ------------------------------------------------------------------------
 * A step back: a 1 s backoff stays 1 s; a scheduled time stays put
 * ------------------------------------------------------------------------ */

static void test_backward_step_keeps_delays_relative(void **state)
{
    fixture *f = *state;
    cs_state s = {0};
    jm_manager *m = open_mgr(f, NULL, &s, NULL, 0);
    char retried[JM_JOB_ID_SIZE], scheduled[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(m, "CS", "{\"fail_first\": true}", NULL, retried), JM_OK);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    int64_t at = atomic_load(&f->clk.now) + 2 * HOUR_MS;
    o.run_at_ms = at;
    assert_int_equal(jm_create(m, "CS", NULL, &o, scheduled), JM_OK);
    assert_int_equal(jm_start(m, 1), JM_OK);
    wait_job((job_wait){m, retried, JM_STATUS_RETRYING, 0, 0}, "retrying");

    tu_clock_advance(&f->clk, -HOUR_MS);
    int64_t now = atomic_load(&f->clk.now);
    wait_job((job_wait){m, retried, JM_STATUS_RETRYING, 0, now + 1000}, "rebased");
    tu_clock_advance(&f->clk, 1000);
    wait_job((job_wait){m, retried, JM_STATUS_COMPLETED, 0, 0}, "completed after 1 s");
    assert_int_equal(atomic_load(&s.runs), 2);

    jm_job *j = NULL;
    assert_int_equal(jm_get(m, scheduled, &j), JM_OK);
    assert_int_equal(jm_job_status(j), JM_STATUS_NEW);
    assert_int_equal(jm_job_run_at(j), at);
    jm_job_free(j);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * Another node takes a job over by its lease; this manager claims it
 * again: the older run is told at once and its outcome refused
 * ------------------------------------------------------------------------ */

typedef struct recover_wait {
    jm_manager *by;
    jm_manager *owner;
    const char *id;
    int rc;
} recover_wait;

/* True once the job is no longer in its first run: recovered by this
 * pass or an earlier one (opening included). */
static int recovered_away(void *arg)
{
    recover_wait *w = arg;
    int n = 0;
    w->rc = jm_recover(w->by, &n);
    if (w->rc != JM_OK)
        return 0;
    if (n > 0)
        return 1;
    jm_job *j = NULL;
    if (jm_get(w->owner, w->id, &j) != JM_OK)
        return 0;
    int away = jm_job_status(j) != JM_STATUS_RUNNING || jm_job_attempts(j) >= 2;
    jm_job_free(j);
    return away;
}

static void test_taken_over_run_is_told(void **state)
{
    fixture *f = *state;
    cs_state s = {0};
    atomic_store(&s.block, 1);
    tu_log log;
    tu_log_init(&log);
    jm_manager *m = open_mgr(f, "node-a", &s, &log, 0);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(m, "CS", NULL, NULL, id), JM_OK);
    assert_int_equal(jm_start(m, 2), JM_OK);
    wait_int(&s.active, 1, "job running");

    /* Node b's clock says node a's lease is long gone. */
    tu_clock bclk;
    atomic_store(&bclk.now, atomic_load(&f->clk.now) + 100 * LEASE_MS);
    jm_config cfg = tu_config(f->db);
    cfg.lease_ms = LEASE_MS;
    cfg.node_id = "node-b";
    cfg.now_ms = tu_fake_now;
    cfg.now_user = &bclk;
    jm_manager *b = NULL;
    assert_int_equal(jm_open(&cfg, &b), JM_OK);
    /* Opening may have taken it already; a pass may also skip it while
     * node a's renewal holds the row (PostgreSQL's SKIP LOCKED), so node
     * b recovers until the first claim is gone. */
    recover_wait rw = {b, m, id, 0};
    if (!tu_wait_until(recovered_away, &rw, TU_TIMEOUT_MS))
        fail_msg("node b never recovered the job (last rc %d)", rw.rc);
    jm_close(b);

    /* Node a claims it again on its free worker; the first run hears of it
     * while still running. */
    wait_int(&s.runs, 2, "second run");
    wait_int(&s.told, 1, "first run told");
    atomic_store(&s.release, 1);
    wait_job((job_wait){m, id, JM_STATUS_COMPLETED, 0, 0}, "completed");
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    assert_true(tu_log_has(&log, "outcome discarded"));
    jm_job *j = NULL;
    assert_int_equal(jm_get(m, id, &j), JM_OK);
    assert_int_equal(jm_job_attempts(j), 2);
    jm_job_free(j);
    jm_close(m);
    tu_log_destroy(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forward_step_never_recovers_own_jobs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_outcome_keeps_its_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_step_keeps_delays_relative, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_taken_over_run_is_told, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
