/*
 * Worker pool integration tests: jm_start / jm_run / jm_stop / jm_close with
 * real threads, cancellation of running jobs in-process, in-process wake-up,
 * follow-up jobs. Built and run under ThreadSanitizer too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobmgr.h"
#include "test_util.h"

/* ------------------------------------------------------------------------
 * Fixture and helpers
 * ------------------------------------------------------------------------ */

typedef struct fixture {
    char *dir;
    char *db;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    assert_non_null(f->db);
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

static jm_manager *open_mgr(const fixture *f, int64_t poll_ms)
{
    jm_config cfg = tu_config(f->db);
    if (poll_ms > 0)
        cfg.poll_interval_ms = poll_ms;
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc != JM_OK)
        fail_msg("jm_open: %s (%s)", jm_err_name(rc), jm_last_error());
    assert_non_null(m);
    return m;
}

static void reg(jm_manager *m, const char *type, int cancellable,
                jm_decision (*execute)(void *, jm_ctx *), void (*cancel)(void *, jm_ctx *),
                void *self)
{
    jm_executor ex = {0};
    ex.version = JM_EXECUTOR_VERSION;
    ex.type = type;
    ex.name = "test";
    ex.cancellable = cancellable;
    ex.execute = execute;
    ex.cancel = cancel;
    int rc = jm_register(m, &ex, self);
    if (rc != JM_OK)
        fail_msg("jm_register(%s): %s (%s)", type, jm_err_name(rc), jm_last_error());
}

static void create(jm_manager *m, const char *type, const char *params, char id[JM_JOB_ID_SIZE])
{
    int rc = jm_create(m, type, params, NULL, id);
    if (rc != JM_OK)
        fail_msg("jm_create(%s): %s (%s)", type, jm_err_name(rc), jm_last_error());
}

static int64_t count_status(jm_manager *m, const char *type, unsigned statuses)
{
    jm_filter f = JM_FILTER_INIT;
    f.type = type;
    f.statuses = statuses;
    int64_t n = -1;
    if (jm_count(m, &f, &n) != JM_OK)
        return -1;
    return n;
}

typedef struct count_wait {
    jm_manager *m;
    const char *type;
    unsigned statuses;
    int64_t want;
} count_wait;

static int count_reached(void *arg)
{
    count_wait *w = arg;
    return count_status(w->m, w->type, w->statuses) == w->want;
}

/* Waits until exactly `want` jobs of `type` are in `statuses`. */
static void wait_count(jm_manager *m, const char *type, unsigned statuses, int64_t want)
{
    count_wait w = {m, type, statuses, want};
    if (!tu_wait_until(count_reached, &w, TU_TIMEOUT_MS))
        fail_msg("timed out: %lld jobs of %s in mask 0x%x, want %lld",
                 (long long)count_status(m, type, statuses), type, statuses,
                 (long long)want);
}

typedef struct status_wait {
    jm_manager *m;
    const char *id;
    int status;
} status_wait;

static int status_reached(void *arg)
{
    status_wait *w = arg;
    return tu_status(w->m, w->id) == w->status;
}

static void wait_status(jm_manager *m, const char *id, jm_status st)
{
    status_wait w = {m, id, (int)st};
    if (!tu_wait_until(status_reached, &w, TU_TIMEOUT_MS))
        fail_msg("timed out: job %s is %s, want %s", id,
                 jm_status_name((jm_status)tu_status(m, id)), jm_status_name(st));
}

static int atomic_at_least(_Atomic int *v, int n)
{
    return atomic_load(v) >= n;
}

typedef struct int_wait {
    _Atomic int *v;
    int n;
} int_wait;

static int int_reached(void *arg)
{
    int_wait *w = arg;
    return atomic_at_least(w->v, w->n);
}

static void wait_int(_Atomic int *v, int n, const char *what)
{
    int_wait w = {v, n};
    if (!tu_wait_until(int_reached, &w, TU_TIMEOUT_MS))
        fail_msg("timed out waiting for %s >= %d (is %d)", what, n, atomic_load(v));
}

static int ctx_cancelled(void *arg)
{
    return jm_ctx_is_cancelled((jm_ctx *)arg);
}

static void check_job(jm_manager *m, const char *id, jm_status st, int retry_count)
{
    jm_job *j = NULL;
    int rc = jm_get(m, id, &j);
    if (rc != JM_OK)
        fail_msg("jm_get(%s): %s", id, jm_err_name(rc));
    jm_status got = jm_job_status(j);
    int rcnt = jm_job_retry_count(j);
    const char *msg = jm_job_message(j);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", msg ? msg : "(null)");
    jm_job_free(j);
    if (got != st)
        fail_msg("job %s is %s (message \"%s\"), want %s", id, jm_status_name(got), buf,
                 jm_status_name(st));
    if (retry_count >= 0 && rcnt != retry_count)
        fail_msg("job %s has retry_count %d, want %d", id, rcnt, retry_count);
}

#define ACTIVE_MASK                                                                         \
    (JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |                       \
     JM_STATUS_BIT(JM_STATUS_RUNNING) | JM_STATUS_BIT(JM_STATUS_RETRYING))
#define COMPLETED_MASK JM_STATUS_BIT(JM_STATUS_COMPLETED)
#define RUNNING_MASK JM_STATUS_BIT(JM_STATUS_RUNNING)

/* ------------------------------------------------------------------------
 * 500 jobs, 4 workers: each runs exactly once
 * ------------------------------------------------------------------------ */

#define MANY_JOBS 500

typedef struct once_state {
    _Atomic int runs[MANY_JOBS];
    _Atomic int bad_params;
} once_state;

static jm_decision once_exec(void *self, jm_ctx *ctx)
{
    once_state *s = self;
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "i");
    if (!cJSON_IsNumber(i) || i->valueint < 0 || i->valueint >= MANY_JOBS) {
        atomic_fetch_add(&s->bad_params, 1);
        return jm_decision_failed("bad params", NULL);
    }
    atomic_fetch_add(&s->runs[i->valueint], 1);
    return jm_decision_completed("ok", NULL);
}

static void test_pool_runs_each_job_once(void **state)
{
    fixture *f = *state;
    once_state *s = calloc(1, sizeof *s);
    assert_non_null(s);
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PA", 1, once_exec, NULL, s);

    static char params[MANY_JOBS][32];
    static jm_new_job jobs[MANY_JOBS];
    static char ids[MANY_JOBS][JM_JOB_ID_SIZE];
    for (int i = 0; i < MANY_JOBS; i++) {
        snprintf(params[i], sizeof params[i], "{\"i\":%d}", i);
        jm_new_job nj = {"PA", params[i], JM_CREATE_OPTS_INIT};
        jobs[i] = nj;
    }
    /* Half before the pool starts, half while it runs. */
    assert_int_equal(jm_create_many(m, jobs, MANY_JOBS / 2, ids), JM_OK);
    assert_int_equal(jm_start(m, 4), JM_OK);
    for (int i = MANY_JOBS / 2; i < MANY_JOBS; i++)
        create(m, "PA", params[i], ids[i]);

    wait_count(m, "PA", COMPLETED_MASK, MANY_JOBS);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);

    assert_int_equal(atomic_load(&s->bad_params), 0);
    for (int i = 0; i < MANY_JOBS; i++)
        if (atomic_load(&s->runs[i]) != 1)
            fail_msg("job %d (%s) ran %d times", i, ids[i], atomic_load(&s->runs[i]));
    assert_int_equal(count_status(m, "PA", 0), MANY_JOBS);
    assert_int_equal(count_status(m, "PA", COMPLETED_MASK), MANY_JOBS);
    jm_close(m);
    free(s);
}

/* ------------------------------------------------------------------------
 * max_concurrent is respected and reached
 * ------------------------------------------------------------------------ */

#define CONC_JOBS 30
#define CONC_WORKERS 3

typedef struct conc_state {
    _Atomic int active;
    _Atomic int max_seen;
    _Atomic int entered;
    _Atomic int done;
    _Atomic int released; /* the test gave up: let everything go */
} conc_state;

typedef struct conc_wait {
    conc_state *s;
    int want;
} conc_wait;

static int conc_go(void *arg)
{
    conc_wait *w = arg;
    return atomic_load(&w->s->entered) >= w->want || atomic_load(&w->s->released);
}

/* Each job waits until two more jobs have entered after it (or all have):
 * that needs three at once, and can never deadlock with three workers. */
static jm_decision conc_exec(void *self, jm_ctx *ctx)
{
    (void)ctx;
    conc_state *s = self;
    int now = atomic_fetch_add(&s->active, 1) + 1;
    int prev = atomic_load(&s->max_seen);
    while (now > prev && !atomic_compare_exchange_weak(&s->max_seen, &prev, now))
        ;
    int ordinal = atomic_fetch_add(&s->entered, 1);
    conc_wait w = {s, ordinal + 3 < CONC_JOBS ? ordinal + 3 : CONC_JOBS};
    tu_wait_until(conc_go, &w, TU_TIMEOUT_MS);
    atomic_fetch_sub(&s->active, 1);
    atomic_fetch_add(&s->done, 1);
    return jm_decision_completed(NULL, NULL);
}

static void test_pool_max_concurrent(void **state)
{
    fixture *f = *state;
    conc_state s = {0};
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PB", 1, conc_exec, NULL, &s);
    char id[JM_JOB_ID_SIZE];
    for (int i = 0; i < CONC_JOBS; i++)
        create(m, "PB", NULL, id);
    assert_int_equal(jm_start(m, CONC_WORKERS), JM_OK);

    count_wait w = {m, "PB", COMPLETED_MASK, CONC_JOBS};
    int ok = tu_wait_until(count_reached, &w, TU_TIMEOUT_MS * 2);
    if (!ok)
        atomic_store(&s.released, 1);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    assert_true(ok);
    assert_int_equal(atomic_load(&s.done), CONC_JOBS);
    assert_true(atomic_load(&s.max_seen) <= CONC_WORKERS);
    assert_int_equal(atomic_load(&s.max_seen), CONC_WORKERS);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * In-process wake-up: a job created after jm_start runs although the poll
 * interval is a minute
 * ------------------------------------------------------------------------ */

typedef struct simple_state {
    _Atomic int runs;
} simple_state;

static jm_decision simple_exec(void *self, jm_ctx *ctx)
{
    (void)ctx;
    simple_state *s = self;
    atomic_fetch_add(&s->runs, 1);
    return jm_decision_completed("done", NULL);
}

static void test_pool_wakeup_in_process(void **state)
{
    fixture *f = *state;
    simple_state s = {0};
    jm_manager *m = open_mgr(f, 60000);
    reg(m, "PC", 1, simple_exec, NULL, &s);
    assert_int_equal(jm_start(m, 2), JM_OK);

    /* The first job may be found by the loop's first look; once it has run,
     * the workers are idle and the next look is a minute away. */
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE], c[JM_JOB_ID_SIZE];
    create(m, "PC", NULL, a);
    wait_status(m, a, JM_STATUS_COMPLETED);
    create(m, "PC", NULL, b);
    wait_status(m, b, JM_STATUS_COMPLETED);
    /* A job created with jm_create_many wakes a worker too. */
    jm_new_job nj = {"PC", NULL, JM_CREATE_OPTS_INIT};
    char many[1][JM_JOB_ID_SIZE];
    assert_int_equal(jm_create_many(m, &nj, 1, many), JM_OK);
    memcpy(c, many[0], JM_JOB_ID_SIZE);
    wait_status(m, c, JM_STATUS_COMPLETED);
    assert_int_equal(atomic_load(&s.runs), 3);

    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * Executors that loop until cancelled
 * ------------------------------------------------------------------------ */

typedef struct loop_state {
    _Atomic int started;
    _Atomic int saw_cancel;
    _Atomic int hook_calls;
    _Atomic int finish_now; /* later runs complete at once */
    _Atomic int release;    /* for executors that wait for the test */
    _Atomic int saw_cancel_before_release;
    _Atomic int stop_rc;
    jm_decision_kind on_cancel; /* what to return once cancelled */
} loop_state;

static jm_decision loop_exec(void *self, jm_ctx *ctx)
{
    loop_state *s = self;
    if (atomic_load(&s->finish_now))
        return jm_decision_completed("finished", NULL);
    atomic_fetch_add(&s->started, 1);
    if (!tu_wait_until(ctx_cancelled, ctx, TU_TIMEOUT_MS))
        return jm_decision_failed("never cancelled", NULL);
    atomic_fetch_add(&s->saw_cancel, 1);
    switch (s->on_cancel) {
    case JM_DECISION_RETRY:
        return jm_decision_retry("retry after cancel", NULL, 0);
    case JM_DECISION_CONTINUE:
        return jm_decision_continue("continue after cancel", 0);
    default:
        return jm_decision_cancelled("stopping");
    }
}

static void loop_cancel_hook(void *self, jm_ctx *ctx)
{
    (void)ctx;
    loop_state *s = self;
    atomic_fetch_add(&s->hook_calls, 1);
}

#define STOP_JOBS 4

static void test_pool_stop_requeues_running_jobs(void **state)
{
    fixture *f = *state;
    loop_state s = {0};
    s.on_cancel = JM_DECISION_CANCELLED;
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PD", 1, loop_exec, loop_cancel_hook, &s);
    char ids[STOP_JOBS][JM_JOB_ID_SIZE];
    for (int i = 0; i < STOP_JOBS; i++)
        create(m, "PD", NULL, ids[i]);
    assert_int_equal(jm_start(m, STOP_JOBS), JM_OK);
    wait_int(&s.started, STOP_JOBS, "started");
    wait_count(m, "PD", RUNNING_MASK, STOP_JOBS);

    assert_int_equal(jm_stop(m, 0), JM_OK);
    /* jm_stop waited for them: they are back to retrying, no retry spent. */
    assert_int_equal(atomic_load(&s.saw_cancel), STOP_JOBS);
    assert_int_equal(count_status(m, "PD", 0), STOP_JOBS);
    for (int i = 0; i < STOP_JOBS; i++) {
        check_job(m, ids[i], JM_STATUS_RETRYING, 0);
        jm_job *j = NULL;
        assert_int_equal(jm_get(m, ids[i], &j), JM_OK);
        assert_int_equal(jm_job_cancel_requested(j), 0);
        jm_job_free(j);
    }

    /* jm_start again on the same manager finishes them. */
    atomic_store(&s.finish_now, 1);
    assert_int_equal(jm_start(m, 2), JM_OK);
    wait_count(m, "PD", COMPLETED_MASK, STOP_JOBS);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    for (int i = 0; i < STOP_JOBS; i++)
        check_job(m, ids[i], JM_STATUS_COMPLETED, 0);
    jm_close(m);
}

static void test_pool_stop_then_new_manager_finishes(void **state)
{
    fixture *f = *state;
    loop_state s = {0};
    s.on_cancel = JM_DECISION_CANCELLED;
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PD", 1, loop_exec, NULL, &s);
    char ids[STOP_JOBS][JM_JOB_ID_SIZE];
    for (int i = 0; i < STOP_JOBS; i++)
        create(m, "PD", NULL, ids[i]);
    assert_int_equal(jm_start(m, 2), JM_OK);
    /* Two run, two wait for a worker. */
    wait_int(&s.started, 2, "started");
    assert_int_equal(jm_stop(m, 0), JM_OK);
    assert_int_equal(count_status(m, "PD", RUNNING_MASK), 0);
    assert_int_equal(count_status(m, "PD", ACTIVE_MASK), STOP_JOBS);
    for (int i = 0; i < STOP_JOBS; i++) {
        jm_job *j = NULL;
        assert_int_equal(jm_get(m, ids[i], &j), JM_OK);
        assert_int_equal(jm_job_retry_count(j), 0);
        jm_job_free(j);
    }
    jm_close(m);

    loop_state s2 = {0};
    atomic_store(&s2.finish_now, 1);
    m = open_mgr(f, 0);
    reg(m, "PD", 1, loop_exec, NULL, &s2);
    assert_int_equal(jm_start(m, 2), JM_OK);
    wait_count(m, "PD", COMPLETED_MASK, STOP_JOBS);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    for (int i = 0; i < STOP_JOBS; i++)
        check_job(m, ids[i], JM_STATUS_COMPLETED, 0);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * jm_stop drain: a job finishing within drain_ms completes normally; one
 * that does not is told to stop after drain_ms and requeued
 * ------------------------------------------------------------------------ */

static int released(void *arg)
{
    return atomic_load(&((loop_state *)arg)->release) != 0;
}

/* Waits for the test's release (noting any cancellation seen), then completes. */
static jm_decision drain_exec(void *self, jm_ctx *ctx)
{
    loop_state *s = self;
    atomic_fetch_add(&s->started, 1);
    while (!atomic_load(&s->release)) {
        if (jm_ctx_is_cancelled(ctx))
            atomic_store(&s->saw_cancel_before_release, 1);
        tu_wait_until(released, s, 5);
    }
    if (jm_ctx_is_cancelled(ctx))
        atomic_store(&s->saw_cancel_before_release, 1);
    return jm_decision_completed("drained", NULL);
}

typedef struct stop_thread_arg {
    jm_manager *m;
    int64_t drain_ms;
    int rc;
    _Atomic int returned;
} stop_thread_arg;

static void *stop_thread(void *arg)
{
    stop_thread_arg *a = arg;
    a->rc = jm_stop(a->m, a->drain_ms);
    atomic_store(&a->returned, 1);
    return NULL;
}

static int stop_returned(void *arg)
{
    return atomic_load(&((stop_thread_arg *)arg)->returned) != 0;
}

#define DRAIN_MS 1500

static void test_pool_stop_drain(void **state)
{
    fixture *f = *state;
    loop_state sd = {0}, sl = {0};
    sl.on_cancel = JM_DECISION_CANCELLED;
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PE", 1, drain_exec, NULL, &sd);
    reg(m, "PF", 1, loop_exec, NULL, &sl);
    char d1[JM_JOB_ID_SIZE], d2[JM_JOB_ID_SIZE], l1[JM_JOB_ID_SIZE];
    create(m, "PE", NULL, d1);
    create(m, "PE", NULL, d2);
    create(m, "PF", NULL, l1);
    assert_int_equal(jm_start(m, 3), JM_OK);
    wait_int(&sd.started, 2, "drain jobs started");
    wait_int(&sl.started, 1, "looping job started");

    stop_thread_arg a = {m, DRAIN_MS, -100, 0};
    pthread_t t;
    int64_t t0 = tu_mono_ms();
    assert_int_equal(pthread_create(&t, NULL, stop_thread, &a), 0);
    /* There is no observable "draining" state: give the stop a moment to
     * begin, then let the draining jobs finish well inside drain_ms. Should
     * the stop begin late, the jobs simply finish before it: same outcome. */
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    atomic_store(&sd.release, 1);
    if (!tu_wait_until(stop_returned, &a, TU_TIMEOUT_MS + DRAIN_MS))
        fail_msg("jm_stop(m, %d) did not return", DRAIN_MS);
    pthread_join(t, NULL);
    int64_t elapsed = tu_mono_ms() - t0;

    assert_int_equal(a.rc, JM_OK);
    /* The looping job was only told to stop once drain_ms had passed. */
    assert_true(elapsed >= DRAIN_MS);
    assert_int_equal(atomic_load(&sd.saw_cancel_before_release), 0);
    check_job(m, d1, JM_STATUS_COMPLETED, 0);
    check_job(m, d2, JM_STATUS_COMPLETED, 0);
    assert_int_equal(atomic_load(&sl.saw_cancel), 1);
    check_job(m, l1, JM_STATUS_RETRYING, 0);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * Cancelling running jobs in-process
 * ------------------------------------------------------------------------ */

static void test_pool_cancel_running_job(void **state)
{
    fixture *f = *state;
    loop_state s = {0};
    s.on_cancel = JM_DECISION_CANCELLED;
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PG", 1, loop_exec, loop_cancel_hook, &s);
    char id[JM_JOB_ID_SIZE];
    create(m, "PG", NULL, id);
    assert_int_equal(jm_start(m, 2), JM_OK);
    wait_int(&s.started, 1, "started");
    wait_status(m, id, JM_STATUS_RUNNING);

    assert_int_equal(jm_cancel(m, id), JM_OK);
    /* Asking again while the request stands is fine. */
    int again = jm_cancel(m, id);
    assert_true(again == JM_OK || again == JM_ESTATE);
    wait_status(m, id, JM_STATUS_CANCELLED);
    wait_int(&s.hook_calls, 1, "cancel hook calls");
    assert_int_equal(atomic_load(&s.saw_cancel), 1);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    check_job(m, id, JM_STATUS_CANCELLED, 0);
    assert_int_equal(jm_cancel(m, id), JM_ESTATE);
    jm_close(m);
}

static jm_decision wait_release_exec(void *self, jm_ctx *ctx)
{
    loop_state *s = self;
    atomic_fetch_add(&s->started, 1);
    if (!tu_wait_until(released, s, TU_TIMEOUT_MS))
        return jm_decision_failed("never released", NULL);
    if (jm_ctx_is_cancelled(ctx))
        atomic_store(&s->saw_cancel_before_release, 1);
    return jm_decision_completed("released", NULL);
}

static void test_pool_cancel_not_cancellable(void **state)
{
    fixture *f = *state;
    loop_state s = {0};
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PH", 0, wait_release_exec, loop_cancel_hook, &s);
    char id[JM_JOB_ID_SIZE];
    create(m, "PH", NULL, id);
    assert_int_equal(jm_start(m, 1), JM_OK);
    wait_int(&s.started, 1, "started");
    wait_status(m, id, JM_STATUS_RUNNING);

    assert_int_equal(jm_cancel(m, id), JM_ENOTCANCELLABLE);
    atomic_store(&s.release, 1);
    wait_status(m, id, JM_STATUS_COMPLETED);
    assert_int_equal(atomic_load(&s.saw_cancel_before_release), 0);
    assert_int_equal(atomic_load(&s.hook_calls), 0);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    check_job(m, id, JM_STATUS_COMPLETED, 0);
    jm_close(m);
}

static void cancel_wins_over(void **state, jm_decision_kind kind)
{
    fixture *f = *state;
    loop_state s = {0};
    s.on_cancel = kind;
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PI", 1, loop_exec, NULL, &s);
    char id[JM_JOB_ID_SIZE];
    create(m, "PI", NULL, id);
    assert_int_equal(jm_start(m, 1), JM_OK);
    wait_int(&s.started, 1, "started");
    assert_int_equal(jm_cancel(m, id), JM_OK);
    wait_int(&s.saw_cancel, 1, "saw cancel");
    /* It must end cancelled, not go on to retrying/queued and run again. */
    wait_status(m, id, JM_STATUS_CANCELLED);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    check_job(m, id, JM_STATUS_CANCELLED, 0);
    assert_int_equal(atomic_load(&s.started), 1);
    jm_close(m);
}

static void test_pool_cancel_wins_over_retry(void **state)
{
    cancel_wins_over(state, JM_DECISION_RETRY);
}

static void test_pool_cancel_wins_over_continue(void **state)
{
    cancel_wins_over(state, JM_DECISION_CONTINUE);
}

/* ------------------------------------------------------------------------
 * Follow-up jobs created by an executor run too
 * ------------------------------------------------------------------------ */

#define FOLLOW_UPS 5

typedef struct follow_state {
    _Atomic int parent_runs;
    _Atomic int child_runs;
    _Atomic int create_errors;
} follow_state;

static jm_decision parent_exec(void *self, jm_ctx *ctx)
{
    follow_state *s = self;
    atomic_fetch_add(&s->parent_runs, 1);
    for (int i = 0; i < FOLLOW_UPS; i++) {
        char id[JM_JOB_ID_SIZE];
        const char *p = jm_ctx_strf(ctx, "{\"n\":%d}", i);
        if (jm_ctx_create_job(ctx, "PK", p, NULL, id) != JM_OK)
            atomic_fetch_add(&s->create_errors, 1);
    }
    return jm_decision_completed("spawned", NULL);
}

static jm_decision child_exec(void *self, jm_ctx *ctx)
{
    (void)ctx;
    follow_state *s = self;
    atomic_fetch_add(&s->child_runs, 1);
    return jm_decision_completed("child", NULL);
}

static void test_pool_follow_up_jobs_run(void **state)
{
    fixture *f = *state;
    follow_state s = {0};
    /* A long poll interval: follow-ups must wake the workers themselves. */
    jm_manager *m = open_mgr(f, 60000);
    reg(m, "PJ", 1, parent_exec, NULL, &s);
    reg(m, "PK", 1, child_exec, NULL, &s);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_start(m, 2), JM_OK);
    create(m, "PJ", NULL, id);
    wait_count(m, "PK", COMPLETED_MASK, FOLLOW_UPS);
    wait_status(m, id, JM_STATUS_COMPLETED);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    assert_int_equal(atomic_load(&s.create_errors), 0);
    assert_int_equal(atomic_load(&s.parent_runs), 1);
    assert_int_equal(atomic_load(&s.child_runs), FOLLOW_UPS);
    assert_int_equal(count_status(m, "PK", 0), FOLLOW_UPS);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * jm_run on a thread, jm_stop from another; jm_stop from an executor
 * ------------------------------------------------------------------------ */

typedef struct run_thread_arg {
    jm_manager *m;
    int workers;
    int rc;
    _Atomic int returned;
} run_thread_arg;

static void *run_thread(void *arg)
{
    run_thread_arg *a = arg;
    a->rc = jm_run(a->m, a->workers);
    atomic_store(&a->returned, 1);
    return NULL;
}

static int run_returned(void *arg)
{
    return atomic_load(&((run_thread_arg *)arg)->returned) != 0;
}

static void test_pool_run_on_thread_stop_from_other(void **state)
{
    fixture *f = *state;
    simple_state s = {0};
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PL", 1, simple_exec, NULL, &s);
    run_thread_arg a = {m, 2, -100, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, &a), 0);
    char id[JM_JOB_ID_SIZE];
    for (int i = 0; i < 10; i++)
        create(m, "PL", NULL, id);
    wait_count(m, "PL", COMPLETED_MASK, 10);
    /* Still running: the loop only returns on jm_stop. */
    assert_int_equal(atomic_load(&a.returned), 0);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    if (!tu_wait_until(run_returned, &a, TU_TIMEOUT_MS))
        fail_msg("jm_run did not return after jm_stop");
    pthread_join(t, NULL);
    assert_int_equal(a.rc, JM_OK);
    assert_int_equal(atomic_load(&s.runs), 10);
    jm_close(m);
}

static jm_decision stopper_exec(void *self, jm_ctx *ctx)
{
    loop_state *s = self;
    atomic_fetch_add(&s->started, 1);
    int64_t t0 = tu_mono_ms();
    atomic_store(&s->stop_rc, jm_stop(jm_ctx_manager(ctx), 0));
    /* "Returns promptly": it must not wait for this very job. */
    if (tu_mono_ms() - t0 < TU_TIMEOUT_MS)
        atomic_store(&s->release, 1);
    return jm_decision_completed("stopped the manager", NULL);
}

static void test_pool_stop_from_executor(void **state)
{
    fixture *f = *state;
    loop_state s = {0};
    atomic_store(&s.stop_rc, -100);
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PM", 1, stopper_exec, NULL, &s);
    char id[JM_JOB_ID_SIZE];
    create(m, "PM", NULL, id);
    run_thread_arg a = {m, 2, -100, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, &a), 0);
    if (!tu_wait_until(run_returned, &a, TU_TIMEOUT_MS))
        fail_msg("jm_run did not return after jm_stop from an executor");
    pthread_join(t, NULL);
    assert_int_equal(a.rc, JM_OK);
    assert_int_equal(atomic_load(&s.started), 1);
    assert_int_equal(atomic_load(&s.stop_rc), JM_OK);
    assert_int_equal(atomic_load(&s.release), 1);
    /* The job's own completed decision stands. */
    check_job(m, id, JM_STATUS_COMPLETED, 0);

    /* The loop is stopped: a new job stays queued. */
    char id2[JM_JOB_ID_SIZE];
    create(m, "PM", NULL, id2);
    check_job(m, id2, JM_STATUS_QUEUED, 0);
    assert_int_equal(atomic_load(&s.started), 1);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * jm_start twice; jm_close with running jobs
 * ------------------------------------------------------------------------ */

static void test_pool_start_twice_busy(void **state)
{
    fixture *f = *state;
    simple_state s = {0};
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PN", 1, simple_exec, NULL, &s);
    assert_int_equal(jm_start(m, 2), JM_OK);
    assert_int_equal(jm_start(m, 2), JM_EBUSY);
    assert_int_equal(jm_run(m, 2), JM_EBUSY);
    /* Still works after the refused calls. */
    char id[JM_JOB_ID_SIZE];
    create(m, "PN", NULL, id);
    wait_status(m, id, JM_STATUS_COMPLETED);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    /* Stopping twice is fine; so is starting again afterwards. */
    assert_int_equal(jm_stop(m, 0), JM_OK);
    assert_int_equal(jm_start(m, 1), JM_OK);
    assert_int_equal(jm_stop(m, 0), JM_OK);
    jm_close(m);
}

typedef struct close_arg {
    jm_manager *m;
    _Atomic int returned;
} close_arg;

static void *close_thread(void *arg)
{
    close_arg *a = arg;
    jm_close(a->m);
    atomic_store(&a->returned, 1);
    return NULL;
}

static int close_returned(void *arg)
{
    return atomic_load(&((close_arg *)arg)->returned) != 0;
}

static void test_pool_close_with_running_jobs(void **state)
{
    fixture *f = *state;
    loop_state s = {0};
    s.on_cancel = JM_DECISION_CANCELLED;
    jm_manager *m = open_mgr(f, 0);
    reg(m, "PO", 1, loop_exec, NULL, &s);
    char ids[3][JM_JOB_ID_SIZE];
    for (int i = 0; i < 3; i++)
        create(m, "PO", NULL, ids[i]);
    assert_int_equal(jm_start(m, 3), JM_OK);
    wait_int(&s.started, 3, "started");
    wait_count(m, "PO", RUNNING_MASK, 3);

    close_arg a = {m, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, close_thread, &a), 0);
    if (!tu_wait_until(close_returned, &a, TU_TIMEOUT_MS))
        fail_msg("jm_close hangs with running jobs");
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&s.saw_cancel), 3);

    /* Reopen: nothing is left running, nothing lost, no retry spent. */
    m = open_mgr(f, 0);
    assert_int_equal(count_status(m, "PO", RUNNING_MASK), 0);
    assert_int_equal(count_status(m, "PO", 0), 3);
    for (int i = 0; i < 3; i++)
        check_job(m, ids[i], JM_STATUS_RETRYING, 0);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * Claiming ahead: after many short jobs, a burst of long ones of another
 * type is claimed only as workers free up, while short ones are still
 * claimed ahead of busy workers
 * ------------------------------------------------------------------------ */

static void test_pool_long_jobs_not_claimed_ahead(void **state)
{
    fixture *f = *state;
    simple_state quick = {0};
    loop_state gate = {0};
    jm_manager *m = open_mgr(f, 0);
    reg(m, "SH", 1, simple_exec, NULL, &quick);
    reg(m, "LG", 1, drain_exec, NULL, &gate);
    assert_int_equal(jm_start(m, 2), JM_OK);

    enum { SHORT = 300, LONG = 20, LATE = 3 };
    static jm_new_job jobs[SHORT];
    static char ids[SHORT][JM_JOB_ID_SIZE];
    for (int i = 0; i < SHORT; i++)
        jobs[i] = (jm_new_job){"SH", NULL, JM_CREATE_OPTS_INIT};
    assert_int_equal(jm_create_many(m, jobs, SHORT, ids), JM_OK);
    wait_count(m, "SH", COMPLETED_MASK, SHORT);

    for (int i = 0; i < LONG; i++)
        jobs[i] = (jm_new_job){"LG", NULL, JM_CREATE_OPTS_INIT};
    assert_int_equal(jm_create_many(m, jobs, LONG, ids), JM_OK);
    wait_int(&gate.started, 2, "two long jobs started");
    /* Both workers are busy: short jobs created now are claimed ahead. The
     * claim that took them would have taken long ones too. */
    for (int i = 0; i < LATE; i++)
        jobs[i] = (jm_new_job){"SH", NULL, JM_CREATE_OPTS_INIT};
    assert_int_equal(jm_create_many(m, jobs, LATE, ids), JM_OK);
    wait_count(m, "SH", RUNNING_MASK, LATE);
    assert_int_equal(count_status(m, "LG", RUNNING_MASK), 2);
    assert_int_equal(count_status(m, "LG", JM_STATUS_BIT(JM_STATUS_QUEUED)), LONG - 2);

    atomic_store(&gate.release, 1);
    wait_count(m, "LG", COMPLETED_MASK, LONG);
    wait_count(m, "SH", COMPLETED_MASK, SHORT + LATE);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    assert_int_equal(atomic_load(&quick.runs), SHORT + LATE);
    assert_int_equal(atomic_load(&gate.started), LONG);
    jm_close(m);
}

/* After a short type has run, a claim asks for short jobs ahead as well as
 * one job per idle worker. Jobs of another type left over when that claim
 * returned (more than the idle workers) must still be claimed as workers
 * free up, not wait for the poll. */
static void test_pool_other_types_claimed_after_ahead_pass(void **state)
{
    fixture *f = *state;
    simple_state quick = {0}, other = {0};
    jm_manager *m = open_mgr(f, 60000);
    reg(m, "SH", 1, simple_exec, NULL, &quick);
    reg(m, "UN", 1, simple_exec, NULL, &other);
    assert_int_equal(jm_start(m, 2), JM_OK);
    char id[JM_JOB_ID_SIZE];
    create(m, "SH", NULL, id);
    wait_status(m, id, JM_STATUS_COMPLETED);
    enum { N = 6 };
    static jm_new_job jobs[N];
    static char ids[N][JM_JOB_ID_SIZE];
    for (int i = 0; i < N; i++)
        jobs[i] = (jm_new_job){"UN", NULL, JM_CREATE_OPTS_INIT};
    assert_int_equal(jm_create_many(m, jobs, N, ids), JM_OK);
    wait_count(m, "UN", COMPLETED_MASK, N);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    assert_int_equal(atomic_load(&other.runs), N);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * Rows damaged from outside; claims that fail
 * ------------------------------------------------------------------------ */

static int64_t nth_seq(const fixture *f, int i)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT seq FROM jm_jobs ORDER BY seq LIMIT 1 OFFSET %d", i);
    return tu_sql_int(f->db, sql);
}

static void check_damaged(jm_manager *m, const char *id, const char *damage)
{
    jm_job *j = NULL;
    int rc = jm_get(m, id, &j);
    if (rc != JM_EDB || !strstr(jm_last_error(), damage))
        fail_msg("jm_get(%s): %s (%s), want JM_EDB naming \"%s\"", id, jm_err_name(rc),
                 jm_last_error(), damage);
    assert_null(j);
}

/* Damaged rows among due jobs: every other job runs, a damaged row that
 * looks due ends failed naming the damage, and reading or listing never
 * fails for the rest. */
static void test_pool_sets_damaged_rows_aside(void **state)
{
    if (tu_skip_unless_sqlite("damages the row through SQLite's writable schema"))
        return;
    fixture *f = *state;
    simple_state s = {0};
    jm_manager *m = open_mgr(f, 20);
    reg(m, "PD", 1, simple_exec, NULL, &s);
    enum { N = 6 };
    char ids[N][JM_JOB_ID_SIZE];
    for (int i = 0; i < N; i++)
        create(m, "PD", NULL, ids[i]);
    int64_t null_id = nth_seq(f, 1), null_type = nth_seq(f, 3), short_type = nth_seq(f, 4);
    tu_damage_null(f->db, "id", null_id);
    tu_damage_null(f->db, "type", null_type); /* no type matches it: never due */
    char sql[256];
    snprintf(sql, sizeof sql,
             "PRAGMA ignore_check_constraints=ON; UPDATE jm_jobs SET type = 'P' WHERE seq = %lld",
             (long long)short_type);
    tu_sql_exec(f->db, sql);

    assert_int_equal(jm_start(m, 2), JM_OK);
    wait_count(m, "PD", COMPLETED_MASK, 3);
    wait_count(m, NULL, JM_STATUS_BIT(JM_STATUS_FAILED), 2);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    assert_int_equal(atomic_load(&s.runs), 3);
    check_job(m, ids[0], JM_STATUS_COMPLETED, 0);
    check_job(m, ids[2], JM_STATUS_COMPLETED, 0);
    check_job(m, ids[5], JM_STATUS_COMPLETED, 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM jm_jobs WHERE status = 5 AND finished_at IS NOT NULL AND "
             "((seq = %lld AND message = 'Damaged row: id is NULL') OR "
             "(seq = %lld AND message = 'Damaged row: type is not two bytes'))",
             (long long)null_id, (long long)short_type);
    assert_int_equal(tu_sql_int(f->db, sql), 2);
    check_damaged(m, ids[1], "id is NULL");
    check_damaged(m, ids[3], "type is NULL");
    check_damaged(m, ids[4], "type is not two bytes");

    jm_job_list *l = NULL;
    assert_int_equal(jm_list(m, NULL, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 3);
    assert_string_equal(jm_job_id(jm_job_list_at(l, 0)), ids[0]);
    assert_string_equal(jm_job_id(jm_job_list_at(l, 1)), ids[2]);
    assert_string_equal(jm_job_id(jm_job_list_at(l, 2)), ids[5]);
    jm_job_list_free(l);
    int64_t n = -1;
    assert_int_equal(jm_count(m, NULL, &n), JM_OK);
    assert_int_equal(n, N);
    jm_close(m);
}

/* Every claim fails while a job runs (a trigger refuses to take any):
 * the run's outcome is still recorded, and the claims go on once they
 * work again. */
static void test_pool_outcomes_recorded_while_claims_fail(void **state)
{
    if (tu_skip_unless_sqlite("fails claims with an SQLite trigger"))
        return;
    fixture *f = *state;
    loop_state s = {0};
    jm_manager *m = open_mgr(f, 20);
    reg(m, "PF", 0, wait_release_exec, NULL, &s);
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE];
    create(m, "PF", NULL, a);
    assert_int_equal(jm_start(m, 2), JM_OK);
    wait_int(&s.started, 1, "started");
    tu_sql_exec(f->db, "CREATE TRIGGER no_claims BEFORE UPDATE OF status ON jm_jobs "
                       "WHEN NEW.status = 2 BEGIN SELECT RAISE(ABORT, 'claims are off'); END");
    create(m, "PF", NULL, b);
    atomic_store(&s.release, 1);
    wait_status(m, a, JM_STATUS_COMPLETED);
    check_job(m, b, JM_STATUS_QUEUED, 0);
    tu_sql_exec(f->db, "DROP TRIGGER no_claims");
    wait_status(m, b, JM_STATUS_COMPLETED);
    assert_int_equal(atomic_load(&s.started), 2);
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);
    jm_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pool_runs_each_job_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_max_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_wakeup_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_stop_requeues_running_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_stop_then_new_manager_finishes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_stop_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_cancel_running_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_cancel_not_cancellable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_cancel_wins_over_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_cancel_wins_over_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_follow_up_jobs_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_run_on_thread_stop_from_other, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_stop_from_executor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_start_twice_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_close_with_running_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_long_jobs_not_claimed_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_other_types_claimed_after_ahead_pass, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_sets_damaged_rows_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_outcomes_recorded_while_claims_fail, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
