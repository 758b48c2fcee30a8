/*
 * The status machine of DESIGN.md, every allowed transition and every
 * refused one (JM_ESTATE), driven with jm_run_once(), scripted executors and
 * a fake clock:
 *
 *   new --(run_at reached)--> queued --(claimed)--> running --> completed | failed | cancelled
 *   running --(retry)--> retrying --(backoff elapsed)--> running
 *   running --(continue)--> queued
 *   new|queued|retrying --(cancel)--> cancelled    failed|cancelled --(jm_retry)--> queued
 *   new|queued|retrying --(jm_pause_job)--> paused --(jm_resume_job)--> new|queued
 *   running --(jm_pause_job, then continue)--> paused     paused --(cancel)--> cancelled
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "script_fx.h"
#include "test_util.h"

/* The fixture (fake clock, scripted executor "TS", helpers) is shared:
 * tests/support/script_fx.h. */

/* A snapshot of the fields a refused transition must leave alone. */
typedef struct snap {
    int status;
    int retry_count;
    int attempts;
    int64_t updated_at;
    int64_t finished_at;
    int64_t run_at;
    char message[1100];
    int has_message;
    char trace[64];
} snap;

static snap take(fx *f, const char *id)
{
    snap s;
    memset(&s, 0, sizeof s);
    const jm_job *j = getj(f, id);
    s.status = (int)jm_job_status(j);
    s.retry_count = jm_job_retry_count(j);
    s.attempts = jm_job_attempts(j);
    s.updated_at = jm_job_updated_at(j);
    s.finished_at = jm_job_finished_at(j);
    s.run_at = jm_job_run_at(j);
    s.has_message = jm_job_message(j) != NULL;
    snprintf(s.message, sizeof s.message, "%s", jm_job_message(j) ? jm_job_message(j) : "");
    snprintf(s.trace, sizeof s.trace, "%s",
             jm_job_exception_trace(j) ? jm_job_exception_trace(j) : "");
    return s;
}

static void assert_same(const snap *a, const snap *b)
{
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->retry_count, b->retry_count);
    assert_int_equal(a->attempts, b->attempts);
    assert_true(a->updated_at == b->updated_at);
    assert_true(a->finished_at == b->finished_at);
    assert_true(a->run_at == b->run_at);
    assert_int_equal(a->has_message, b->has_message);
    assert_string_equal(a->message, b->message);
    assert_string_equal(a->trace, b->trace);
}

/* Builders: each leaves job `id` in one status. The clock moves on a little
 * afterwards, so a write by a refused call would show in updated_at. */
typedef void (*make_fn)(fx *f, char id[JM_JOB_ID_SIZE]);

static void make_new(fx *f, char id[JM_JOB_ID_SIZE])
{
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.run_at_ms = now_of(f) + 3600000;
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_NEW);
    tu_clock_advance(&f->clock, 1);
}

static void make_queued(fx *f, char id[JM_JOB_ID_SIZE])
{
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_QUEUED);
    tu_clock_advance(&f->clock, 1);
}

static void make_ran(fx *f, char id[JM_JOB_ID_SIZE], jm_decision d, jm_status want)
{
    script_set(&f->s, 1, &d);
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    assert_int_equal(jm_job_status(getj(f, id)), want);
    script_reset(&f->s);
    tu_clock_advance(&f->clock, 1);
}

static void make_retrying(fx *f, char id[JM_JOB_ID_SIZE])
{
    make_ran(f, id, jm_decision_retry("transient", "tb", 3600000), JM_STATUS_RETRYING);
}

static void make_completed(fx *f, char id[JM_JOB_ID_SIZE])
{
    make_ran(f, id, jm_decision_completed("done", NULL), JM_STATUS_COMPLETED);
}

static void make_failed(fx *f, char id[JM_JOB_ID_SIZE])
{
    make_ran(f, id, jm_decision_failed("broken", "tb"), JM_STATUS_FAILED);
}

static void make_cancelled(fx *f, char id[JM_JOB_ID_SIZE])
{
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(jm_cancel(f->m, id), JM_OK);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_CANCELLED);
    tu_clock_advance(&f->clock, 1);
}

static void make_paused(fx *f, char id[JM_JOB_ID_SIZE])
{
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(jm_pause_job(f->m, id), JM_OK);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_PAUSED);
    tu_clock_advance(&f->clock, 1);
}

typedef struct maker {
    const char *name;
    make_fn make;
} maker;

/* ------------------------------------------------------------------------
 * new -> queued -> running
 * ------------------------------------------------------------------------ */

static void test_new_becomes_queued_when_due_and_runs(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.run_at_ms = T0 + 1000;
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_NEW);
    tu_clock_advance(&f->clock, 999);
    assert_int_equal(run1(f), 0);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_NEW);
    tu_clock_advance(&f->clock, 500); /* past run_at */
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.seen_status[0], JM_STATUS_RUNNING);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_COMPLETED);
}

static void test_queued_job_claimed_into_running(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_QUEUED);
    assert_int_equal(run1(f), 1);
    assert_string_equal(f->s.id[0], id);
    assert_int_equal(f->s.seen_status[0], JM_STATUS_RUNNING);
}

static jm_decision observe_running(script *s, jm_ctx *ctx, int run)
{
    (void)run;
    jm_filter fl = JM_FILTER_INIT;
    fl.statuses = JM_STATUS_BIT(JM_STATUS_RUNNING);
    int64_t n = -1;
    s->scratch[0] = jm_count(s->m, &fl, &n);
    s->scratch[1] = (int)n;
    jm_job_list *l = NULL;
    s->scratch[2] = jm_list(s->m, &fl, &l);
    s->scratch[3] = (int)jm_job_list_count(l);
    if (jm_job_list_count(l) == 1)
        s->scratch[4] = strcmp(jm_job_id(jm_job_list_at(l, 0)), jm_job_id(jm_ctx_job(ctx))) == 0;
    jm_job_list_free(l);
    jm_job *j = NULL;
    if (jm_get(s->m, jm_job_id(jm_ctx_job(ctx)), &j) == JM_OK) {
        s->scratch[5] = jm_job_started_at(j) == T0;
        s->scratch[6] = jm_job_attempts(j);
        jm_job_free(j);
    }
    return jm_decision_completed(NULL, NULL);
}

static void test_running_job_observed_from_execute(void **state)
{
    fx *f = *state;
    f->s.fn = observe_running;
    char id[JM_JOB_ID_SIZE], other[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.run_at_ms = T0 + 1000;
    create_ok(f, "TS", "{}", &o, other);
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.seen_status[0], JM_STATUS_RUNNING);
    assert_int_equal(f->s.ctx_status[0], JM_STATUS_RUNNING);
    assert_int_equal(f->s.scratch[0], JM_OK);
    assert_int_equal(f->s.scratch[1], 1);
    assert_int_equal(f->s.scratch[2], JM_OK);
    assert_int_equal(f->s.scratch[3], 1);
    assert_int_equal(f->s.scratch[4], 1);
    assert_int_equal(f->s.scratch[5], 1);
    assert_int_equal(f->s.scratch[6], 1);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_COMPLETED);
    assert_int_equal(tu_status(f->m, other), JM_STATUS_NEW);
}

/* ------------------------------------------------------------------------
 * running -> completed | failed | cancelled | retrying | queued
 * ------------------------------------------------------------------------ */

static void test_running_decisions(void **state)
{
    fx *f = *state;
    struct {
        jm_decision d;
        jm_status want;
        const char *message;
        int finished;
    } rows[] = {
        {jm_decision_completed("c", "{\"k\":1}"), JM_STATUS_COMPLETED, "c", 1},
        {jm_decision_failed("f", "tb"), JM_STATUS_FAILED, "f", 1},
        {jm_decision_cancelled("x"), JM_STATUS_CANCELLED, "x", 1},
        {jm_decision_retry("r", "tb", 50), JM_STATUS_RETRYING, "r", 0},
        {jm_decision_continue("more", 70), JM_STATUS_QUEUED, "more", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char id[JM_JOB_ID_SIZE];
        script_set(&f->s, 1, &rows[i].d);
        create_ok(f, "TS", "{}", NULL, id);
        int64_t now = now_of(f);
        assert_int_equal(run1(f), 1);
        const jm_job *j = getj(f, id);
        if ((int)jm_job_status(j) != (int)rows[i].want)
            fail_msg("row %zu: status %s, expected %s", i, jm_status_name(jm_job_status(j)),
                     jm_status_name(rows[i].want));
        assert_string_equal(jm_job_message(j), rows[i].message);
        assert_true((jm_job_finished_at(j) != 0) == rows[i].finished);
        if (rows[i].finished)
            assert_true(jm_job_finished_at(j) == now);
        if (rows[i].want == JM_STATUS_RETRYING) {
            assert_int_equal(jm_job_retry_count(j), 1);
            assert_true(jm_job_run_at(j) == now + 50);
        }
        if (rows[i].want == JM_STATUS_QUEUED) {
            assert_int_equal(jm_job_retry_count(j), 0);
            assert_true(jm_job_run_at(j) == now + 70);
        }
        if (rows[i].want == JM_STATUS_COMPLETED) {
            assert_true(jm_job_progress(j) == 1.0);
            assert_non_null(jm_job_result(j));
        }
        assert_int_equal(jm_cancel(f->m, id) == JM_ESTATE, rows[i].finished);
        tu_clock_advance(&f->clock, 1000);
    }
}

static void test_retrying_runs_again_after_backoff(void **state)
{
    fx *f = *state;
    jm_decision d[2] = {jm_decision_retry("r", NULL, 40), jm_decision_completed("ok", NULL)};
    script_set(&f->s, 2, d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    tu_clock_advance(&f->clock, 39);
    assert_int_equal(run1(f), 0);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_RETRYING);
    tu_clock_advance(&f->clock, 1);
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.seen_status[1], JM_STATUS_RUNNING);
    assert_null(f->s.seen_message[1]); /* cleared when the retry starts */
    assert_int_equal(tu_status(f->m, id), JM_STATUS_COMPLETED);
}

static jm_decision checkpoint_step(script *s, jm_ctx *ctx, int run)
{
    char buf[64];
    snprintf(buf, sizeof buf, "{\"offset\":%d}", (run + 1) * 100);
    s->scratch[run < 8 ? run : 7] = jm_ctx_checkpoint(ctx, buf);
    if (run < 2)
        return jm_decision_continue(run == 0 ? "batch 1 done" : NULL, run == 0 ? 250 : 0);
    if (run == 2)
        return jm_decision_retry("hiccup", NULL, 0);
    if (run == 3)
        return jm_decision_continue("batch 4 done", 0);
    return jm_decision_completed("all done", NULL);
}

static void test_continue_semantics(void **state)
{
    fx *f = *state;
    f->s.fn = checkpoint_step;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);

    /* run 0: continue("batch 1 done", 250) */
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.scratch[0], JM_OK);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_true(jm_job_run_at(j) == T0 + 250);
    assert_int_equal(jm_job_retry_count(j), 0);
    assert_string_equal(jm_job_message(j), "batch 1 done");
    assert_string_equal(jm_job_checkpoint(j), "{\"offset\":100}");
    assert_true(jm_job_finished_at(j) == 0);
    tu_clock_advance(&f->clock, 249);
    assert_int_equal(run1(f), 0);
    tu_clock_advance(&f->clock, 1);

    /* run 1: sees the checkpoint; continue(NULL, 0) keeps the message */
    assert_int_equal(run1(f), 1);
    assert_string_equal(f->s.seen_checkpoint[1], "{\"offset\":100}");
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_true(jm_job_run_at(j) == T0 + 250);
    assert_string_equal(jm_job_message(j), "batch 1 done");

    /* run 2: retry; run 3: continue keeps retry_count 1 */
    assert_int_equal(run1(f), 1);
    assert_string_equal(f->s.seen_checkpoint[2], "{\"offset\":200}");
    assert_int_equal(jm_job_retry_count(getj(f, id)), 1);
    assert_int_equal(run1(f), 1);
    assert_string_equal(f->s.seen_checkpoint[3], "{\"offset\":300}"); /* kept across a retry */
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_int_equal(jm_job_retry_count(j), 1);
    assert_string_equal(jm_job_message(j), "batch 4 done");

    assert_int_equal(run1(f), 1);
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_string_equal(jm_job_message(j), "all done");
    assert_int_equal(jm_job_attempts(j), 5);
}

static void test_continue_spends_no_retry(void **state)
{
    fx *f = *state;
    jm_decision d[51];
    for (int i = 0; i < 50; i++)
        d[i] = jm_decision_continue("batch", 0);
    d[50] = jm_decision_completed("done", NULL);
    char id[JM_JOB_ID_SIZE];
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = 0;
    create_ok(f, "TS", "{}", &o, id);
    script_set(&f->s, 50, d);
    for (int i = 0; i < 50; i++)
        assert_int_equal(run1(f), 1);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_QUEUED);
    assert_int_equal(jm_job_retry_count(getj(f, id)), 0);
    script_set(&f->s, 1, &d[50]);
    assert_int_equal(run1(f), 1);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_int_equal(jm_job_retry_count(j), 0);
}

/* ------------------------------------------------------------------------
 * Cancel
 * ------------------------------------------------------------------------ */

static void test_cancel_not_running_jobs(void **state)
{
    fx *f = *state;
    const maker makers[] = {{"new", make_new}, {"queued", make_queued}, {"retrying", make_retrying}};
    for (size_t i = 0; i < 3; i++) {
        char id[JM_JOB_ID_SIZE];
        makers[i].make(f, id);
        int64_t now = now_of(f);
        int rc = jm_cancel(f->m, id);
        if (rc != JM_OK)
            fail_msg("cancel of %s: %s (%s)", makers[i].name, jm_err_name(rc), jm_last_error());
        const jm_job *j = getj(f, id);
        assert_int_equal(jm_job_status(j), JM_STATUS_CANCELLED);
        assert_true(jm_job_finished_at(j) == now);
    }
    /* None of them runs, whenever. */
    int runs = f->s.runs;
    tu_clock_advance(&f->clock, 10 * 3600000);
    int ran = -1;
    assert_int_equal(jm_run_once(f->m, 10, &ran), JM_OK);
    assert_int_equal(ran, 0);
    assert_int_equal(f->s.runs, runs);
}

static void test_cancel_finished_refused(void **state)
{
    fx *f = *state;
    const maker makers[] = {
        {"completed", make_completed}, {"failed", make_failed}, {"cancelled", make_cancelled}};
    for (size_t i = 0; i < 3; i++) {
        char id[JM_JOB_ID_SIZE];
        makers[i].make(f, id);
        snap before = take(f, id);
        int rc = jm_cancel(f->m, id);
        if (rc != JM_ESTATE)
            fail_msg("cancel of %s: %s, expected ESTATE", makers[i].name, jm_err_name(rc));
        assert_string_not_equal(jm_last_error(), "");
        snap after = take(f, id);
        assert_same(&before, &after);
    }
}

static jm_decision cancel_self_step(script *s, jm_ctx *ctx, int run)
{
    const char *id = jm_job_id(jm_ctx_job(ctx));
    s->scratch[0] = jm_ctx_is_cancelled(ctx);
    s->scratch[1] = jm_cancel(s->m, id);
    s->scratch[2] = jm_cancel(s->m, id); /* asking again while it stands */
    s->scratch[3] = jm_ctx_is_cancelled(ctx);
    jm_job *j = NULL;
    if (jm_get(s->m, id, &j) == JM_OK) {
        s->scratch[4] = jm_job_cancel_requested(j);
        s->scratch[5] = (int)jm_job_status(j);
        jm_job_free(j);
    }
    return s->d[run < s->n ? run : s->n - 1];
}

static void test_cancel_running_then_decision(void **state)
{
    fx *f = *state;
    struct {
        jm_decision d;
        jm_status want;
    } rows[] = {
        {jm_decision_cancelled("stopped"), JM_STATUS_CANCELLED},
        {jm_decision_retry("r", NULL, 0), JM_STATUS_CANCELLED},     /* cancel wins */
        {jm_decision_continue("more", 0), JM_STATUS_CANCELLED},     /* cancel wins */
        {jm_decision_completed("done", NULL), JM_STATUS_COMPLETED}, /* stands */
        {jm_decision_failed("bad", NULL), JM_STATUS_FAILED},        /* stands */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        script_set(&f->s, 1, &rows[i].d);
        f->s.fn = cancel_self_step;
        char id[JM_JOB_ID_SIZE];
        create_ok(f, "TS", "{}", NULL, id);
        assert_int_equal(run1(f), 1);
        assert_int_equal(f->s.scratch[0], 0);
        assert_int_equal(f->s.scratch[1], JM_OK);
        assert_int_equal(f->s.scratch[2], JM_OK);
        assert_int_equal(f->s.scratch[3], 1);
        assert_int_equal(f->s.scratch[4], 1);
        assert_int_equal(f->s.scratch[5], JM_STATUS_RUNNING);
        const jm_job *j = getj(f, id);
        if ((int)jm_job_status(j) != (int)rows[i].want)
            fail_msg("row %zu: %s, expected %s", i, jm_status_name(jm_job_status(j)),
                     jm_status_name(rows[i].want));
        assert_int_equal(jm_job_retry_count(j), 0);
        assert_true(jm_job_finished_at(j) != 0);
        /* Nothing runs it again. */
        tu_clock_advance(&f->clock, 1000);
        assert_int_equal(run1(f), 0);
    }
}

static void test_cancel_running_not_cancellable(void **state)
{
    fx *f = *state;
    script nc;
    memset(&nc, 0, sizeof nc);
    nc.m = f->m;
    jm_decision d = jm_decision_completed("done", NULL);
    nc.n = 1;
    nc.d[0] = d;
    nc.fn = cancel_self_step;
    jm_executor ex = script_executor("NC", 0);
    assert_int_equal(jm_register(f->m, &ex, &nc), JM_OK);

    char id[JM_JOB_ID_SIZE];
    create_ok(f, "NC", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    assert_int_equal(nc.scratch[1], JM_ENOTCANCELLABLE);
    assert_int_equal(nc.scratch[2], JM_ENOTCANCELLABLE);
    assert_int_equal(nc.scratch[3], 0);
    assert_int_equal(nc.scratch[4], 0);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_COMPLETED);

    /* Not yet running: a non-cancellable job is cancelled at once. */
    create_ok(f, "NC", "{}", NULL, id);
    assert_int_equal(jm_cancel(f->m, id), JM_OK);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_CANCELLED);
    assert_int_equal(run1(f), 0);
    script_reset(&nc);
}

/* ------------------------------------------------------------------------
 * jm_retry
 * ------------------------------------------------------------------------ */

static void test_retry_refused_for_unfinished_and_completed(void **state)
{
    fx *f = *state;
    const maker makers[] = {{"new", make_new},
                            {"queued", make_queued},
                            {"retrying", make_retrying},
                            {"completed", make_completed}};
    for (size_t i = 0; i < 4; i++) {
        char id[JM_JOB_ID_SIZE];
        makers[i].make(f, id);
        snap before = take(f, id);
        int rc = jm_retry(f->m, id);
        if (rc != JM_ESTATE)
            fail_msg("jm_retry of %s: %s, expected ESTATE", makers[i].name, jm_err_name(rc));
        assert_string_not_equal(jm_last_error(), "");
        snap after = take(f, id);
        assert_same(&before, &after);
        if (before.status != JM_STATUS_COMPLETED)
            assert_int_equal(jm_cancel(f->m, id), JM_OK); /* out of the way */
    }
}

static jm_decision retry_self_step(script *s, jm_ctx *ctx, int run)
{
    (void)run;
    s->scratch[0] = jm_retry(s->m, jm_job_id(jm_ctx_job(ctx)));
    return jm_decision_completed("done", NULL);
}

static void test_retry_refused_while_running(void **state)
{
    fx *f = *state;
    f->s.fn = retry_self_step;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.scratch[0], JM_ESTATE);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_int_equal(jm_job_attempts(j), 1);
}

static void test_retry_failed_requeues(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_retry("transient", "tb", 0);
    script_set(&f->s, 1, &d);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = 2;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", &o, id);
    for (int i = 0; i < 3; i++)
        assert_int_equal(run1(f), 1);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_int_equal(jm_job_retry_count(j), 2);
    assert_string_equal(jm_job_message(j), "Max retries exceeded");

    tu_clock_advance(&f->clock, 500);
    assert_int_equal(jm_retry(f->m, id), JM_OK);
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_int_equal(jm_job_retry_count(j), 0);
    assert_null(jm_job_message(j));
    assert_true(jm_job_run_at(j) <= now_of(f));
    assert_true(jm_job_finished_at(j) == 0);

    /* It runs again with its retries back. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(run1(f), 1);
    assert_int_equal(run1(f), 0);
    assert_int_equal(f->s.runs, 6);
    assert_int_equal(f->s.seen_retry[3], 0);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_FAILED);
}

static void test_retry_cancelled_requeues(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    make_cancelled(f, id);
    assert_int_equal(jm_retry(f->m, id), JM_OK);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_int_equal(jm_job_retry_count(j), 0);
    assert_null(jm_job_message(j));
    assert_int_equal(run1(f), 1);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_COMPLETED);
    /* Completed now: no more jm_retry. */
    assert_int_equal(jm_retry(f->m, id), JM_ESTATE);
}

static void test_retry_conflicts_with_active_key(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_failed("broken", NULL);
    script_set(&f->s, 1, &d);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = "nightly";
    char old[JM_JOB_ID_SIZE], cur[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", &o, old);
    assert_int_equal(run1(f), 1);
    assert_int_equal(tu_status(f->m, old), JM_STATUS_FAILED);
    create_ok(f, "TS", "{}", &o, cur);
    tu_clock_advance(&f->clock, 5);
    snap before = take(f, old);
    assert_int_equal(jm_retry(f->m, old), JM_ECONFLICT);
    snap after = take(f, old);
    assert_same(&before, &after);
    /* Once the holder ends, the old job can be retried. */
    assert_int_equal(jm_cancel(f->m, cur), JM_OK);
    assert_int_equal(jm_retry(f->m, old), JM_OK);
    assert_int_equal(tu_status(f->m, old), JM_STATUS_QUEUED);
}

static void test_transitions_of_unknown_job(void **state)
{
    fx *f = *state;
    const char *ghost = "TS-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f";
    assert_int_equal(jm_cancel(f->m, ghost), JM_ENOTFOUND);
    assert_int_equal(jm_retry(f->m, ghost), JM_ENOTFOUND);
    assert_true(count_all(f) == 0);
}

/* ------------------------------------------------------------------------
 * Claim order and list order
 * ------------------------------------------------------------------------ */

static void test_claim_order_priority_run_at_creation(void **state)
{
    fx *f = *state;
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE], c[JM_JOB_ID_SIZE], d[JM_JOB_ID_SIZE],
        e[JM_JOB_ID_SIZE];
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.run_at_ms = T0 + 30; /* later run_at, low priority */
    create_ok(f, "TS", "{}", &o, a);
    o.run_at_ms = T0 + 20;
    create_ok(f, "TS", "{}", &o, b);
    o.run_at_ms = T0 + 20; /* same run_at as b, created after it */
    create_ok(f, "TS", "{}", &o, c);
    o.run_at_ms = T0 + 40;
    o.priority = 5; /* highest priority, latest run_at */
    create_ok(f, "TS", "{}", &o, d);
    o.run_at_ms = T0 + 10;
    o.priority = -3;
    create_ok(f, "TS", "{}", &o, e);
    tu_clock_advance(&f->clock, 100);
    for (int i = 0; i < 5; i++)
        assert_int_equal(run1(f), 1);
    assert_int_equal(run1(f), 0);
    const char *want[] = {d, b, c, a, e};
    for (int i = 0; i < 5; i++)
        assert_string_equal(f->s.id[i], want[i]);
}

static void test_list_order(void **state)
{
    fx *f = *state;
    char ids[4][JM_JOB_ID_SIZE];
    for (int i = 0; i < 4; i++) {
        create_ok(f, "TS", "{}", NULL, ids[i]);
        if (i != 1)
            tu_clock_advance(&f->clock, 1); /* two share a creation time */
    }
    jm_filter fl = JM_FILTER_INIT;
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, &fl, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(jm_job_id(jm_job_list_at(l, (size_t)i)), ids[i]);
    assert_null(jm_job_list_at(l, 4));
    jm_job_list_free(l);
    fl.newest_first = 1;
    assert_int_equal(jm_list(f->m, &fl, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(jm_job_id(jm_job_list_at(l, (size_t)i)), ids[3 - i]);
    assert_false(jm_job_list_has_more(l));
    jm_job_list_free(l);

    /* limit 0: JM_LIST_DEFAULT_LIMIT per page. */
    jm_new_job many[150];
    char many_ids[150][JM_JOB_ID_SIZE];
    for (int i = 0; i < 150; i++)
        many[i] = (jm_new_job){"TS", NULL, JM_CREATE_OPTS_INIT};
    assert_int_equal(jm_create_many(f->m, many, 150, many_ids), JM_OK);
    fl = (jm_filter)JM_FILTER_INIT;
    assert_int_equal(jm_list(f->m, &fl, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), JM_LIST_DEFAULT_LIMIT);
    assert_true(jm_job_list_has_more(l));
    assert_string_equal(jm_job_id(jm_job_list_at(l, 4)), many_ids[0]);
    jm_job_list_free(l);
}


static void list_ids(fx *f, const jm_filter *fl, char out[][JM_JOB_ID_SIZE], size_t *n,
                     int *has_more)
{
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, fl, &l), JM_OK);
    *n = jm_job_list_count(l);
    for (size_t i = 0; i < *n; i++)
        snprintf(out[i], JM_JOB_ID_SIZE, "%s", jm_job_id(jm_job_list_at(l, i)));
    *has_more = jm_job_list_has_more(l);
    jm_job_list_free(l);
}

static void test_list_pagination_and_filters(void **state)
{
    fx *f = *state;
    script other;
    memset(&other, 0, sizeof other);
    other.m = f->m;
    jm_executor ex = script_executor("TU", 1);
    assert_int_equal(jm_register(f->m, &ex, &other), JM_OK);

    char ids[7][JM_JOB_ID_SIZE];
    for (int i = 0; i < 7; i++) {
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.namespace_id = (i % 2) ? "a" : "b";
        o.idempotency_key = i == 4 ? "the-key" : NULL;
        create_ok(f, i < 5 ? "TS" : "TU", "{}", &o, ids[i]);
        tu_clock_advance(&f->clock, 10); /* created at T0 + 10 i */
    }
    assert_int_equal(jm_cancel(f->m, ids[1]), JM_OK);

    /* Pages of 3, both directions. */
    for (int desc = 0; desc < 2; desc++) {
        jm_filter fl = JM_FILTER_INIT;
        fl.limit = 3;
        fl.newest_first = desc;
        char page[3][JM_JOB_ID_SIZE], last[JM_JOB_ID_SIZE];
        size_t got = 0, n;
        int more;
        do {
            list_ids(f, &fl, page, &n, &more);
            for (size_t i = 0; i < n; i++) {
                assert_true(got < 7);
                assert_string_equal(page[i], ids[desc ? 6 - got : got]);
                got++;
            }
            assert_int_equal(more, got < 7);
            if (n) {
                snprintf(last, sizeof last, "%s", page[n - 1]);
                fl.after_id = last;
            }
        } while (more);
        assert_int_equal(got, 7);
    }

    struct {
        const char *what;
        jm_filter fl;
        int64_t want;
    } rows[] = {
        {"type TU", {JM_FILTER_VERSION, 0, "TU", NULL, NULL, 0, 0, NULL, 0, 0}, 2},
        {"namespace a", {JM_FILTER_VERSION, 0, NULL, "a", NULL, 0, 0, NULL, 0, 0}, 3},
        {"key", {JM_FILTER_VERSION, 0, NULL, NULL, "the-key", 0, 0, NULL, 0, 0}, 1},
        {"key other case", {JM_FILTER_VERSION, 0, NULL, NULL, "THE-KEY", 0, 0, NULL, 0, 0}, 0},
        {"cancelled", {JM_FILTER_VERSION, JM_STATUS_BIT(JM_STATUS_CANCELLED), NULL, NULL, NULL, 0, 0, NULL, 0, 0}, 1},
        {"queued|cancelled",
         {JM_FILTER_VERSION, JM_STATUS_BIT(JM_STATUS_QUEUED) | JM_STATUS_BIT(JM_STATUS_CANCELLED), NULL,
          NULL, NULL, 0, 0, NULL, 0, 0},
         7},
        {"running", {JM_FILTER_VERSION, JM_STATUS_BIT(JM_STATUS_RUNNING), NULL, NULL, NULL, 0, 0, NULL, 0, 0}, 0},
        {"created after T0+20", {JM_FILTER_VERSION, 0, NULL, NULL, NULL, T0 + 20, 0, NULL, 0, 0}, 4},
        {"created before T0+20", {JM_FILTER_VERSION, 0, NULL, NULL, NULL, 0, T0 + 20, NULL, 0, 0}, 2},
        {"window", {JM_FILTER_VERSION, 0, NULL, NULL, NULL, T0 + 5, T0 + 45, NULL, 0, 0}, 4},
        {"TS in a, queued", {JM_FILTER_VERSION, JM_STATUS_BIT(JM_STATUS_QUEUED), "TS", "a", NULL, 0, 0, NULL, 0, 0}, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t n = -1;
        assert_int_equal(jm_count(f->m, &rows[i].fl, &n), JM_OK);
        if (n != rows[i].want)
            fail_msg("count %s: %lld, expected %lld", rows[i].what, (long long)n,
                     (long long)rows[i].want);
        jm_job_list *l = NULL;
        assert_int_equal(jm_list(f->m, &rows[i].fl, &l), JM_OK);
        assert_int_equal(jm_job_list_count(l), (size_t)rows[i].want);
        jm_job_list_free(l);
    }
    script_reset(&other);
}

static jm_decision followup_step(script *s, jm_ctx *ctx, int run)
{
    (void)run;
    if (cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "child"))
        return jm_decision_completed("child done", "{\"child\":true}");
    jm_ctx_progress(ctx, 0.25);
    char *child = s->user;
    s->scratch[0] = jm_ctx_create_job(ctx, "TS", "{\"child\":1}", NULL, child);
    s->scratch[1] = jm_ctx_manager(ctx) == s->m;
    return jm_decision_continue("waiting for child", 1000);
}

static void test_followup_job_and_progress(void **state)
{
    fx *f = *state;
    char parent[JM_JOB_ID_SIZE], child[JM_JOB_ID_SIZE] = {0};
    f->s.fn = followup_step;
    f->s.user = child;
    create_ok(f, "TS", "{}", NULL, parent);
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.scratch[0], JM_OK);
    assert_int_equal(f->s.scratch[1], 1);
    assert_int_equal(jm_job_id_parse(child, NULL), JM_OK);
    const jm_job *j = getj(f, parent);
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_true(jm_job_progress(j) == 0.25); /* persisted at the end of the run */
    assert_int_equal(tu_status(f->m, child), JM_STATUS_QUEUED);
    /* The parent waits; the child runs now. */
    assert_int_equal(run1(f), 1);
    assert_string_equal(f->s.id[1], child);
    j = getj(f, child);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_string_equal(jm_job_message(j), "child done");
    assert_int_equal(run1(f), 0);
}

static void test_prune_finished_jobs(void **state)
{
    fx *f = *state;
    char done[JM_JOB_ID_SIZE], failed[JM_JOB_ID_SIZE], cancelled[JM_JOB_ID_SIZE],
        waiting[JM_JOB_ID_SIZE];
    make_completed(f, done);             /* finished at T0 */
    tu_clock_advance(&f->clock, 100);
    make_failed(f, failed);              /* finished at T0 + 101 */
    tu_clock_advance(&f->clock, 100);
    make_cancelled(f, cancelled);        /* finished at T0 + 202 */
    make_retrying(f, waiting);
    int64_t deleted = -1;
    assert_int_equal(jm_prune(f->m, T0 + 50, &deleted), JM_OK);
    assert_true(deleted == 1);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->m, done, &j), JM_ENOTFOUND);
    assert_int_equal(tu_status(f->m, failed), JM_STATUS_FAILED);
    assert_int_equal(jm_prune(f->m, T0 + 1000000, &deleted), JM_OK);
    assert_true(deleted == 2);
    assert_true(count_all(f) == 1);
    assert_int_equal(tu_status(f->m, waiting), JM_STATUS_RETRYING); /* unfinished: kept */
    assert_int_equal(jm_prune(f->m, T0 + 1000000, NULL), JM_OK);
    assert_true(count_all(f) == 1);
}


/* ------------------------------------------------------------------------
 * paused
 * ------------------------------------------------------------------------ */

/* Each waiting status pauses at once and resumes to waiting for its
 * run_at: new stays new until then, the others are due. */
static void test_pause_and_resume_waiting_jobs(void **state)
{
    fx *f = *state;
    const maker makers[] = {{"new", make_new}, {"queued", make_queued}, {"retrying", make_retrying}};
    const jm_status back[] = {JM_STATUS_NEW, JM_STATUS_QUEUED, JM_STATUS_NEW};
    for (size_t i = 0; i < 3; i++) {
        char id[JM_JOB_ID_SIZE];
        makers[i].make(f, id);
        snap before = take(f, id);
        assert_int_equal(jm_pause_job(f->m, id), JM_OK);
        snap paused = take(f, id);
        assert_int_equal(paused.status, JM_STATUS_PAUSED);
        assert_int_equal(paused.retry_count, before.retry_count);
        assert_true(paused.run_at == before.run_at);
        assert_int_equal(run1(f), 0); /* never claimed while paused */
        assert_int_equal(jm_resume_job(f->m, id), JM_OK);
        snap after = take(f, id);
        if ((jm_status)after.status != back[i])
            fail_msg("%s resumed to %s", makers[i].name, jm_status_name((jm_status)after.status));
        assert_int_equal(after.retry_count, before.retry_count);
        assert_int_equal(jm_cancel(f->m, id), JM_OK); /* out of the way */
    }
}

/* Refused: pausing a finished or paused job, resuming one that is
 * neither paused nor asked to pause, retrying a paused one. Nothing
 * changes. */
static void test_pause_transitions_refused(void **state)
{
    fx *f = *state;
    const maker no_pause[] = {{"completed", make_completed},
                              {"failed", make_failed},
                              {"cancelled", make_cancelled},
                              {"paused", make_paused}};
    for (size_t i = 0; i < 4; i++) {
        char id[JM_JOB_ID_SIZE];
        no_pause[i].make(f, id);
        snap before = take(f, id);
        int rc = jm_pause_job(f->m, id);
        if (rc != JM_ESTATE)
            fail_msg("pause of %s: %s, expected ESTATE", no_pause[i].name, jm_err_name(rc));
        assert_string_not_equal(jm_last_error(), "");
        snap after = take(f, id);
        assert_same(&before, &after);
    }
    const maker no_resume[] = {{"new", make_new},           {"queued", make_queued},
                               {"retrying", make_retrying}, {"completed", make_completed},
                               {"failed", make_failed},     {"cancelled", make_cancelled}};
    for (size_t i = 0; i < 6; i++) {
        char id[JM_JOB_ID_SIZE];
        no_resume[i].make(f, id);
        snap before = take(f, id);
        int rc = jm_resume_job(f->m, id);
        if (rc != JM_ESTATE)
            fail_msg("resume of %s: %s, expected ESTATE", no_resume[i].name, jm_err_name(rc));
        snap after = take(f, id);
        assert_same(&before, &after);
        if (before.status < JM_STATUS_COMPLETED)
            assert_int_equal(jm_cancel(f->m, id), JM_OK);
    }
    char id[JM_JOB_ID_SIZE];
    make_paused(f, id);
    snap before = take(f, id);
    assert_int_equal(jm_retry(f->m, id), JM_ESTATE);
    snap after = take(f, id);
    assert_same(&before, &after);
    /* A cancel wins: paused -> cancelled. */
    assert_int_equal(jm_cancel(f->m, id), JM_OK);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_CANCELLED);
}

/* Paused while running: only `continue` turns into paused; a completed
 * or failed outcome stands, and the request is gone either way. */
static jm_decision pause_self_step(script *s, jm_ctx *ctx, int run)
{
    const char *id = jm_job_id(jm_ctx_job(ctx));
    s->scratch[0] = jm_pause_job(s->m, id);
    s->scratch[1] = jm_ctx_should_yield(ctx);
    return s->d[run < s->n ? run : s->n - 1];
}

static void test_pause_running_then_decision(void **state)
{
    fx *f = *state;
    struct {
        jm_decision d;
        jm_status want;
    } cases[] = {
        {jm_decision_continue("yield", 0), JM_STATUS_PAUSED},
        {jm_decision_completed("done", NULL), JM_STATUS_COMPLETED},
        {jm_decision_failed("broken", "tb"), JM_STATUS_FAILED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        script_set(&f->s, 1, &cases[i].d);
        f->s.fn = pause_self_step;
        char id[JM_JOB_ID_SIZE];
        create_ok(f, "TS", "{}", NULL, id);
        assert_int_equal(run1(f), 1);
        assert_int_equal(f->s.scratch[0], JM_OK);
        assert_int_equal(f->s.scratch[1], 1);
        const jm_job *j = getj(f, id);
        assert_int_equal(jm_job_status(j), cases[i].want);
        assert_int_equal(jm_job_pause_requested(j), 0);
        assert_int_equal(jm_job_retry_count(j), 0);
        script_reset(&f->s);
        f->s.fn = NULL;
        if (cases[i].want == JM_STATUS_PAUSED)
            assert_int_equal(jm_cancel(f->m, id), JM_OK);
    }
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_new_becomes_queued_when_due_and_runs),
        T(test_pause_and_resume_waiting_jobs),
        T(test_pause_transitions_refused),
        T(test_pause_running_then_decision),
        T(test_queued_job_claimed_into_running),
        T(test_running_job_observed_from_execute),
        T(test_running_decisions),
        T(test_retrying_runs_again_after_backoff),
        T(test_continue_semantics),
        T(test_continue_spends_no_retry),
        T(test_cancel_not_running_jobs),
        T(test_cancel_finished_refused),
        T(test_cancel_running_then_decision),
        T(test_cancel_running_not_cancellable),
        T(test_retry_refused_for_unfinished_and_completed),
        T(test_retry_refused_while_running),
        T(test_retry_failed_requeues),
        T(test_retry_cancelled_requeues),
        T(test_retry_conflicts_with_active_key),
        T(test_transitions_of_unknown_job),
        T(test_claim_order_priority_run_at_creation),
        T(test_list_order),
        T(test_list_pagination_and_filters),
        T(test_followup_job_and_progress),
        T(test_prune_finished_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
