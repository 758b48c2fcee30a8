/*
 * Steering jobs by hand (src/core/control.c): jm_cancel from every status
 * (a running job cancels itself from its own execute, the only way a
 * single thread can cancel a running job), jm_retry of failed and
 * cancelled jobs and its idempotency conflict, and jm_prune with a fake
 * clock, including more rows than one prune transaction takes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#define T0 INT64_C(1700000000000)

typedef struct fx fx;
typedef jm_decision (*run_fn)(fx *f, jm_ctx *ctx);

struct fx {
    char *dir;
    char *db;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
    jm_manager *other; /* a second manager on the same database */
    run_fn fn;
    atomic_int runs; /* workers run execute at once */
    int rc[8];             /* results recorded inside execute */
    int flag[8];
    int64_t prune_cutoff;  /* for prune_from_execute */
    int64_t pruned;
};

static jm_decision execute(void *self, jm_ctx *ctx)
{
    fx *f = self;
    f->runs++;
    if (f->fn)
        return f->fn(f, ctx);
    return jm_decision_completed("ok", NULL);
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clock.now, T0);
    f->cfg = tu_config(f->db);
    f->cfg.now_ms = tu_fake_now;
    f->cfg.now_user = &f->clock;
    f->cfg.node_id = "control-node";
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    jm_executor fl = {JM_EXECUTOR_VERSION, "FL", "flush", 1, NULL, execute, NULL, JM_CLASS_NORMAL, NULL};
    jm_executor cl = {JM_EXECUTOR_VERSION, "CL", "cleanup", 0, NULL, execute, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(f->m, &fl, f), JM_OK);
    assert_int_equal(jm_register(f->m, &cl, f), JM_OK);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    jm_close(f->other);
    jm_close(f->m);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void create_ok(fx *f, const char *type, const jm_create_opts *o, char id[JM_JOB_ID_SIZE])
{
    int rc = jm_create(f->m, type, NULL, o, id);
    if (rc != JM_OK)
        fail_msg("jm_create: %s: %s", jm_err_name(rc), jm_last_error());
}

static int run(fx *f, int max)
{
    int ran = -1;
    int rc = jm_run_once(f->m, max, &ran);
    if (rc != JM_OK)
        fail_msg("jm_run_once: %s: %s", jm_err_name(rc), jm_last_error());
    return ran;
}

static jm_job *getj(fx *f, const char *id)
{
    jm_job *j = NULL;
    int rc = jm_get(f->m, id, &j);
    if (rc != JM_OK)
        fail_msg("jm_get: %s", jm_last_error());
    return j;
}

static int64_t count_status(fx *f, unsigned statuses)
{
    jm_filter flt = JM_FILTER_INIT;
    flt.statuses = statuses;
    int64_t n = -1;
    assert_int_equal(jm_count(f->m, &flt, &n), JM_OK);
    return n;
}

static jm_decision retry_later(fx *f, jm_ctx *ctx)
{
    (void)f;
    (void)ctx;
    return jm_decision_retry("later", NULL, 60000);
}

static jm_decision fail_it(fx *f, jm_ctx *ctx)
{
    (void)f;
    (void)ctx;
    return jm_decision_failed("broken", "trace");
}

/* ------------------------------------------------------------------------
 * Cancel
 * ------------------------------------------------------------------------ */

static void cancel_waiting_jobs(void **state)
{
    fx *f = *state;
    char nw[JM_JOB_ID_SIZE], q[JM_JOB_ID_SIZE], r[JM_JOB_ID_SIZE];
    jm_create_opts sched = JM_CREATE_OPTS_INIT;
    sched.run_at_ms = T0 + 10000;
    create_ok(f, "FL", &sched, nw);
    create_ok(f, "CL", NULL, r); /* not cancellable while running; it will not run */
    f->fn = retry_later;
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(tu_status(f->m, r), JM_STATUS_RETRYING);
    f->fn = NULL;
    create_ok(f, "FL", NULL, q);
    assert_int_equal(tu_status(f->m, nw), JM_STATUS_NEW);
    assert_int_equal(tu_status(f->m, q), JM_STATUS_QUEUED);

    tu_clock_advance(&f->clock, 5);
    const char *ids[] = {nw, q, r};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jm_cancel(f->m, ids[i]), JM_OK);
        jm_job *j = getj(f, ids[i]);
        assert_int_equal(jm_job_status(j), JM_STATUS_CANCELLED);
        assert_int_equal(jm_job_finished_at(j), T0 + 5);
        assert_non_null(jm_job_message(j));
        jm_job_free(j);
    }
    /* Cancelled jobs never run, even when they come due. */
    tu_clock_advance(&f->clock, 100000);
    int runs = f->runs;
    assert_int_equal(run(f, 10), 0);
    assert_int_equal(f->runs, runs);
    assert_int_equal(count_status(f, JM_STATUS_BIT(JM_STATUS_CANCELLED)), 3);
}

static void cancel_finished_refused(void **state)
{
    fx *f = *state;
    char done[JM_JOB_ID_SIZE], failed[JM_JOB_ID_SIZE], cancelled[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, done);
    assert_int_equal(run(f, 1), 1);
    f->fn = fail_it;
    create_ok(f, "FL", NULL, failed);
    assert_int_equal(run(f, 1), 1);
    create_ok(f, "FL", NULL, cancelled);
    assert_int_equal(jm_cancel(f->m, cancelled), JM_OK);

    const char *ids[] = {done, failed, cancelled};
    const int want[] = {JM_STATUS_COMPLETED, JM_STATUS_FAILED, JM_STATUS_CANCELLED};
    for (int i = 0; i < 3; i++) {
        jm_job *before = getj(f, ids[i]);
        tu_clock_advance(&f->clock, 1);
        assert_int_equal(jm_cancel(f->m, ids[i]), JM_ESTATE);
        assert_non_null(strstr(jm_last_error(), jm_status_name(want[i])));
        jm_job *after = getj(f, ids[i]);
        assert_int_equal(jm_job_status(after), want[i]);
        assert_int_equal(jm_job_updated_at(after), jm_job_updated_at(before));
        assert_int_equal(jm_job_cancel_requested(after), jm_job_cancel_requested(before));
        jm_job_free(before);
        jm_job_free(after);
    }
}

static void cancel_bad_arguments(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, id);
    assert_int_equal(jm_cancel(NULL, id), JM_EINVAL);
    assert_int_equal(jm_cancel(f->m, NULL), JM_EINVAL);
    assert_int_equal(jm_cancel(f->m, "FL-123"), JM_EINVAL);
    char unknown[JM_JOB_ID_SIZE];
    snprintf(unknown, sizeof unknown, "%s", id);
    unknown[3] = unknown[3] == 'a' ? 'b' : 'a';
    assert_int_equal(jm_cancel(f->m, unknown), JM_ENOTFOUND);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_QUEUED);
}

static jm_decision cancel_self(fx *f, jm_ctx *ctx)
{
    const char *id = jm_job_id(jm_ctx_job(ctx));
    f->flag[0] = jm_ctx_is_cancelled(ctx);
    f->rc[0] = jm_cancel(jm_ctx_manager(ctx), id);
    f->flag[1] = jm_ctx_is_cancelled(ctx);
    /* Asking again while the request stands is fine. */
    f->rc[1] = jm_cancel(jm_ctx_manager(ctx), id);
    jm_job *j = NULL;
    if (jm_get(jm_ctx_manager(ctx), id, &j) == JM_OK) {
        f->flag[2] = (int)jm_job_status(j);
        f->flag[3] = jm_job_cancel_requested(j);
        jm_job_free(j);
    }
    /* The cancel wins over a retry decision. */
    return jm_decision_retry("would retry", NULL, 0);
}

static void cancel_running_job_from_its_execute(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, id);
    f->fn = cancel_self;
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->rc[0], JM_OK);
    assert_int_equal(f->flag[1], 1);
    assert_int_equal(f->rc[1], JM_OK);
    assert_int_equal(f->flag[2], JM_STATUS_RUNNING); /* requested, not yet ended */
    assert_int_equal(f->flag[3], 1);
    jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_CANCELLED);
    assert_int_equal(jm_job_retry_count(j), 0);
    assert_int_equal(jm_job_cancel_requested(j), 1);
    assert_int_not_equal(jm_job_finished_at(j), 0);
    jm_job_free(j);
    assert_int_equal(run(f, 1), 0);
    /* Now finished: a further cancel is refused. */
    assert_int_equal(jm_cancel(f->m, id), JM_ESTATE);
}

static jm_decision cancel_self_not_cancellable(fx *f, jm_ctx *ctx)
{
    const char *id = jm_job_id(jm_ctx_job(ctx));
    f->rc[0] = jm_cancel(jm_ctx_manager(ctx), id);
    f->flag[0] = jm_ctx_is_cancelled(ctx);
    jm_job *j = NULL;
    if (jm_get(jm_ctx_manager(ctx), id, &j) == JM_OK) {
        f->flag[1] = jm_job_cancel_requested(j);
        jm_job_free(j);
    }
    return jm_decision_continue(NULL, 0);
}

static void cancel_running_not_cancellable(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "CL", NULL, id);
    f->fn = cancel_self_not_cancellable;
    f->flag[1] = -1;
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(f->rc[0], JM_ENOTCANCELLABLE);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->flag[1], 0);
    /* Nothing stored: the continue decision stands and the job runs on. */
    assert_int_equal(tu_status(f->m, id), JM_STATUS_QUEUED);
    f->fn = NULL;
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_COMPLETED);
}

static jm_decision cancel_from_other_manager(fx *f, jm_ctx *ctx)
{
    f->rc[0] = jm_cancel(f->other, jm_job_id(jm_ctx_job(ctx)));
    f->flag[0] = jm_ctx_is_cancelled(ctx);
    return jm_decision_completed("finished", NULL);
}

static void cancel_running_of_unknown_type(void **state)
{
    fx *f = *state;
    /* The other manager has no FL executor: it cannot know whether a
     * running FL job may be cancelled. */
    assert_int_equal(jm_open(&f->cfg, &f->other), JM_OK);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, id);
    f->fn = cancel_from_other_manager;
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(f->rc[0], JM_ENOEXEC);
    assert_int_equal(f->flag[0], 0);
    jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_int_equal(jm_job_cancel_requested(j), 0);
    jm_job_free(j);
    /* A waiting job of that type it can cancel: no executor needed. */
    char q[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, q);
    assert_int_equal(jm_cancel(f->other, q), JM_OK);
    assert_int_equal(tu_status(f->m, q), JM_STATUS_CANCELLED);
}

/* ------------------------------------------------------------------------
 * Retry by hand
 * ------------------------------------------------------------------------ */

static jm_decision retry_always(fx *f, jm_ctx *ctx)
{
    (void)ctx;
    return jm_decision_retry(f->runs == 1 ? "first" : "second", f->runs == 1 ? "t1" : NULL, 0);
}

static void retry_requeues_failed(void **state)
{
    fx *f = *state;
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = 1;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", &o, id);
    f->fn = retry_always;
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(run(f, 1), 1);
    jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_string_equal(jm_job_message(j), "Max retries exceeded");
    assert_int_equal(jm_job_retry_count(j), 1);
    jm_job_free(j);
    assert_int_equal(run(f, 1), 0);

    tu_clock_advance(&f->clock, 777);
    assert_int_equal(jm_retry(f->m, id), JM_OK);
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_int_equal(jm_job_retry_count(j), 0);
    assert_null(jm_job_message(j));
    assert_int_equal(jm_job_finished_at(j), 0);
    assert_int_equal(jm_job_run_at(j), T0 + 777);
    jm_job_free(j);
    /* A second jm_retry: it is queued now, so refused. */
    assert_int_equal(jm_retry(f->m, id), JM_ESTATE);

    /* The reset budget is a whole one again: one retry, then failed. */
    f->runs = 0;
    assert_int_equal(run(f, 1), 1);
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
    assert_int_equal(jm_job_retry_count(j), 1);
    jm_job_free(j);
    f->fn = NULL;
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_COMPLETED);
    assert_int_equal(jm_retry(f->m, id), JM_ESTATE);
}

static jm_decision cancel_self_first_time(fx *f, jm_ctx *ctx)
{
    f->flag[f->runs - 1] = jm_ctx_is_cancelled(ctx);
    if (f->runs == 1) {
        jm_cancel(jm_ctx_manager(ctx), jm_job_id(jm_ctx_job(ctx)));
        return jm_decision_cancelled("stopped on request");
    }
    return jm_decision_completed("second time lucky", NULL);
}

static void retry_clears_cancel_request(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, id);
    f->fn = cancel_self_first_time;
    assert_int_equal(run(f, 1), 1);
    jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_CANCELLED);
    assert_int_equal(jm_job_cancel_requested(j), 1);
    assert_string_equal(jm_job_message(j), "stopped on request");
    jm_job_free(j);

    assert_int_equal(jm_retry(f->m, id), JM_OK);
    j = getj(f, id);
    assert_int_equal(jm_job_cancel_requested(j), 0);
    assert_null(jm_job_message(j));
    jm_job_free(j);
    assert_int_equal(run(f, 1), 1);
    /* The old request does not reach the new run. */
    assert_int_equal(f->flag[1], 0);
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_string_equal(jm_job_message(j), "second time lucky");
    jm_job_free(j);
}

static void retry_conflicts_with_new_key_holder(void **state)
{
    fx *f = *state;
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = "nightly";
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE];
    create_ok(f, "FL", &o, a);
    assert_int_equal(jm_cancel(f->m, a), JM_OK);
    /* The cancelled job no longer holds the key. */
    create_ok(f, "FL", &o, b);
    assert_int_equal(jm_retry(f->m, a), JM_ECONFLICT);
    assert_int_equal(tu_status(f->m, a), JM_STATUS_CANCELLED);
    assert_int_equal(tu_status(f->m, b), JM_STATUS_QUEUED);
    /* Once b is done, a may run again (and then holds the key). */
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(tu_status(f->m, b), JM_STATUS_COMPLETED);
    assert_int_equal(jm_retry(f->m, a), JM_OK);
    char c[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, c), JM_ECONFLICT);
    assert_string_equal(c, a);
}

static void retry_refusals(void **state)
{
    fx *f = *state;
    char q[JM_JOB_ID_SIZE], nw[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, q);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.run_at_ms = T0 + 1000;
    create_ok(f, "FL", &o, nw);
    assert_int_equal(jm_retry(f->m, q), JM_ESTATE);
    assert_int_equal(jm_retry(f->m, nw), JM_ESTATE);
    assert_int_equal(tu_status(f->m, nw), JM_STATUS_NEW);
    assert_int_equal(jm_retry(NULL, q), JM_EINVAL);
    assert_int_equal(jm_retry(f->m, "garbage"), JM_EINVAL);
    char unknown[JM_JOB_ID_SIZE];
    snprintf(unknown, sizeof unknown, "%s", q);
    unknown[3] = unknown[3] == 'a' ? 'b' : 'a';
    assert_int_equal(jm_retry(f->m, unknown), JM_ENOTFOUND);
}

/* ------------------------------------------------------------------------
 * Prune
 * ------------------------------------------------------------------------ */

static jm_decision prune_from_execute(fx *f, jm_ctx *ctx)
{
    (void)ctx;
    f->rc[0] = jm_prune(jm_ctx_manager(ctx), f->prune_cutoff, &f->pruned);
    return jm_decision_completed("pruner done", NULL);
}

static void prune_only_old_finished_jobs(void **state)
{
    fx *f = *state;
    char done[JM_JOB_ID_SIZE], failed[JM_JOB_ID_SIZE], cancelled[JM_JOB_ID_SIZE];
    char queued[JM_JOB_ID_SIZE], scheduled[JM_JOB_ID_SIZE], retrying[JM_JOB_ID_SIZE];
    char pruner[JM_JOB_ID_SIZE];
    jm_create_opts high = JM_CREATE_OPTS_INIT;
    high.priority = 10;

    tu_clock_advance(&f->clock, 100); /* T0 + 100: completes */
    create_ok(f, "FL", &high, done);
    assert_int_equal(run(f, 1), 1);
    tu_clock_advance(&f->clock, 100); /* T0 + 200: fails */
    f->fn = fail_it;
    create_ok(f, "FL", &high, failed);
    assert_int_equal(run(f, 1), 1);
    tu_clock_advance(&f->clock, 100); /* T0 + 300: retrying, then a cancel */
    f->fn = retry_later;
    create_ok(f, "FL", &high, retrying);
    assert_int_equal(run(f, 1), 1);
    create_ok(f, "FL", NULL, cancelled);
    assert_int_equal(jm_cancel(f->m, cancelled), JM_OK);
    jm_create_opts later = JM_CREATE_OPTS_INIT;
    later.run_at_ms = T0 + 999999;
    create_ok(f, "FL", &later, scheduled);
    create_ok(f, "FL", NULL, queued);
    assert_int_equal(tu_status(f->m, retrying), JM_STATUS_RETRYING);

    /* While the pruner runs (it is running itself), cut at T0 + 250. */
    tu_clock_advance(&f->clock, 700); /* T0 + 1000 */
    create_ok(f, "FL", &high, pruner);
    f->fn = prune_from_execute;
    f->prune_cutoff = T0 + 250;
    f->pruned = -1;
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(f->rc[0], JM_OK);
    assert_int_equal(f->pruned, 2);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->m, done, &j), JM_ENOTFOUND);
    assert_int_equal(jm_get(f->m, failed, &j), JM_ENOTFOUND);
    assert_int_equal(tu_status(f->m, cancelled), JM_STATUS_CANCELLED);
    assert_int_equal(tu_status(f->m, pruner), JM_STATUS_COMPLETED);

    /* A cut-off far ahead still leaves unfinished jobs alone. */
    f->fn = NULL;
    int64_t deleted = -1;
    assert_int_equal(jm_prune(f->m, T0 + 100000000, &deleted), JM_OK);
    assert_int_equal(deleted, 2); /* cancelled, pruner */
    assert_int_equal(tu_status(f->m, queued), JM_STATUS_QUEUED);
    assert_int_equal(tu_status(f->m, scheduled), JM_STATUS_NEW);
    assert_int_equal(tu_status(f->m, retrying), JM_STATUS_RETRYING);
    assert_int_equal(count_status(f, 0), 3);
    assert_int_equal(jm_prune(f->m, T0 + 100000000, &deleted), JM_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(jm_prune(f->m, T0 + 100000000, NULL), JM_OK);

    assert_int_equal(jm_prune(f->m, -1, &deleted), JM_EINVAL);
    assert_int_equal(jm_prune(NULL, T0, &deleted), JM_EINVAL);
    assert_int_equal(deleted, 0);
}

static void prune_more_than_one_batch(void **state)
{
    fx *f = *state;
    enum { N = 4500 };
    jm_new_job *jobs = calloc(N, sizeof *jobs);
    char(*ids)[JM_JOB_ID_SIZE] = calloc(N, JM_JOB_ID_SIZE);
    for (int i = 0; i < N; i++)
        jobs[i] = (jm_new_job){"FL", NULL, JM_CREATE_OPTS_INIT};
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_OK);
    char keep[JM_JOB_ID_SIZE];
    jm_create_opts later = JM_CREATE_OPTS_INIT;
    later.run_at_ms = T0 + 1000000;
    create_ok(f, "FL", &later, keep);

    /* The pool records outcomes in groups, which keeps this quick. */
    assert_int_equal(jm_start(f->m, 4), JM_OK);
    assert_true(tu_wait_completed(f->m, N, TU_TIMEOUT_MS * 4));
    assert_int_equal(jm_stop(f->m, 1000), JM_OK);

    tu_clock_advance(&f->clock, 10);
    int64_t deleted = -1;
    assert_int_equal(jm_prune(f->m, T0 + 10, &deleted), JM_OK);
    assert_int_equal(deleted, N);
    assert_int_equal(count_status(f, 0), 1);
    assert_int_equal(tu_status(f->m, keep), JM_STATUS_NEW);
    free(jobs);
    free(ids);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(cancel_waiting_jobs),
        T(cancel_finished_refused),
        T(cancel_bad_arguments),
        T(cancel_running_job_from_its_execute),
        T(cancel_running_not_cancellable),
        T(cancel_running_of_unknown_type),
        T(retry_requeues_failed),
        T(retry_clears_cancel_request),
        T(retry_conflicts_with_new_key_holder),
        T(retry_refusals),
        T(prune_only_old_finished_jobs),
        T(prune_more_than_one_batch),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
