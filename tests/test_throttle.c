/*
 * I/O budgets (src/core/throttle.c) through real jobs on a running pool:
 * bad input; unlimited budgets and empty requests return at once; the
 * budget holds 10 MB/s within 10 % while two workers spend 50 MB; a
 * request larger than the bucket passes and the next waits its debt off;
 * a wait returns early on cancel, on a pause request and on jm_stop; a
 * rate changed while a job waits takes effect at once; classes spend
 * their own budgets; the metrics count bytes and waits. Built and run
 * under ThreadSanitizer too.
 *
 * The pause request is simulated as the heartbeat will make it: the
 * context's `paused` flag is set and jm__throttle_wake() called.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx.h"
#include "jobmgr.h"
#include "manager.h"
#include "test_util.h"
#include "throttle.h"

#define MB INT64_C(1000000)
#define SLOTS 4

/* ------------------------------------------------------------------------
 * A job that spends bytes: {"slot":i, "first":F, "chunk":C, "times":N}
 * spends F once, then C up to N times, stopping when told to.
 * ------------------------------------------------------------------------ */

typedef struct slot {
    _Atomic(jm_ctx *) ctx; /* while it runs */
    _Atomic int phase;     /* 1: the first request passed */
    _Atomic int done;
    _Atomic int stopped;   /* a request returned early */
    _Atomic int64_t start_us, end_us;
    _Atomic int64_t first_wait_us; /* what the first request returned */
    _Atomic int64_t last_wait_us;  /* ... the last one */
    _Atomic int64_t last_took_us;  /* the last request, timed from outside */
} slot;

static slot slots[SLOTS];

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t param(jm_ctx *ctx, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static jm_decision spend(void *self, jm_ctx *ctx)
{
    (void)self;
    slot *s = &slots[param(ctx, "slot")];
    int64_t first = param(ctx, "first"), chunk = param(ctx, "chunk");
    int64_t times = param(ctx, "times");
    atomic_store(&s->ctx, ctx);
    atomic_store(&s->start_us, now_us());
    atomic_store(&s->first_wait_us, jm_ctx_throttle(ctx, first));
    atomic_store(&s->phase, 1);
    for (int64_t i = 0; i < times; i++) {
        int64_t t0 = now_us();
        atomic_store(&s->last_wait_us, jm_ctx_throttle(ctx, chunk));
        atomic_store(&s->last_took_us, now_us() - t0);
        if (jm_ctx_should_yield(ctx)) {
            atomic_store(&s->stopped, 1);
            break;
        }
    }
    atomic_store(&s->end_us, now_us());
    atomic_store(&s->ctx, NULL);
    jm_decision d = jm_ctx_is_cancelled(ctx) ? jm_decision_cancelled("stopped")
                                              : jm_decision_completed("spent", NULL);
    atomic_store(&s->done, 1);
    return d;
}

static int slot_done(void *arg)
{
    return atomic_load(&((slot *)arg)->done);
}

static int slot_waiting(void *arg)
{
    return atomic_load(&((slot *)arg)->phase);
}

/* ------------------------------------------------------------------------
 * Fixture
 * ------------------------------------------------------------------------ */

typedef struct fixture {
    char *dir;
    char *db;
    jm_manager *m;
} fixture;

static void reg(jm_manager *m, const char *type, jm_class cls)
{
    jm_executor ex = {0};
    ex.version = JM_EXECUTOR_VERSION;
    ex.type = type;
    ex.name = "spend";
    ex.cancellable = 1;
    ex.execute = spend;
    ex.priority_class = cls;
    assert_int_equal(jm_register(m, &ex, NULL), JM_OK);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    memset(slots, 0, sizeof slots);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    jm_config cfg = tu_config(f->db);
    assert_int_equal(jm_open(&cfg, &f->m), JM_OK);
    reg(f->m, "SN", JM_CLASS_NORMAL);
    reg(f->m, "SH", JM_CLASS_HIGH);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    jm_close(f->m);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void create(fixture *f, const char *type, int s, int64_t first, int64_t chunk,
                   int64_t times, char id[JM_JOB_ID_SIZE])
{
    char params[256];
    snprintf(params, sizeof params, "{\"slot\":%d,\"first\":%lld,\"chunk\":%lld,\"times\":%lld}",
             s, (long long)first, (long long)chunk, (long long)times);
    assert_int_equal(jm_create(f->m, type, params, NULL, id), JM_OK);
}

static void wait_done(int s)
{
    if (!tu_wait_until(slot_done, &slots[s], TU_TIMEOUT_MS))
        fail_msg("the job of slot %d did not end", s);
}

/* Whether a request waits in the normal class's bucket. */
static int normal_waits(void *arg)
{
    jm__throttle *t = &((jm_manager *)arg)->throttle;
    pthread_mutex_lock(&t->lock);
    int waits = t->buckets[JM_CLASS_NORMAL].head != NULL;
    pthread_mutex_unlock(&t->lock);
    return waits;
}

/* Creates a job that passes `first` bytes and then asks for `chunk` more,
 * and returns once that request waits. */
static void add_waiter(fixture *f, int s, int64_t first, int64_t chunk, char id[JM_JOB_ID_SIZE])
{
    create(f, "SN", s, first, chunk, 1, id);
    if (!tu_wait_until(slot_waiting, &slots[s], TU_TIMEOUT_MS) ||
        !tu_wait_until(normal_waits, f->m, TU_TIMEOUT_MS))
        fail_msg("the job of slot %d never waited", s);
}

static void start_waiter(fixture *f, int s, int64_t first, int64_t chunk,
                         char id[JM_JOB_ID_SIZE])
{
    assert_int_equal(jm_start(f->m, 1), JM_OK);
    add_waiter(f, s, first, chunk, id);
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void bad_input(void **state)
{
    fixture *f = *state;
    assert_int_equal(jm_set_rate_limit(NULL, JM_CLASS_NORMAL, 1), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "manager is NULL"));
    assert_int_equal(jm_set_rate_limit(f->m, (jm_class)JM_CLASS_COUNT, 1), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "unknown priority class 2"));
    assert_int_equal(jm_set_rate_limit(f->m, (jm_class)-1, 1), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "unknown priority class -1"));
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_HIGH, -5), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "must be 0 (unlimited) or more, not -5"));
    assert_int_equal(jm_ctx_throttle(NULL, 100), 0);
    /* Refused calls changed nothing: still unlimited. */
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_int_equal(r->throttle_bytes[JM_CLASS_NORMAL], 0);
    assert_int_equal(r->throttle_wait_us[JM_CLASS_HIGH], 0);
    jm_stats_free(r);
}

static void unlimited_and_empty_return_at_once(void **state)
{
    fixture *f = *state;
    char id[JM_JOB_ID_SIZE];
    /* Unlimited: a terabyte passes without a wait. */
    create(f, "SN", 0, INT64_C(1) << 40, 0, 0, id);
    assert_int_equal(jm_start(f->m, 1), JM_OK);
    wait_done(0);
    assert_int_equal(atomic_load(&slots[0].first_wait_us), 0);
    /* Limited, but nothing to spend: no wait, nothing counted. */
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 1), JM_OK);
    create(f, "SN", 1, 0, -10, 3, id);
    wait_done(1);
    assert_int_equal(atomic_load(&slots[1].first_wait_us), 0);
    assert_int_equal(atomic_load(&slots[1].last_wait_us), 0);
    assert_true(atomic_load(&slots[1].end_us) - atomic_load(&slots[1].start_us) < 1000000);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_int_equal(r->throttle_bytes[JM_CLASS_NORMAL], INT64_C(1) << 40);
    assert_int_equal(r->throttle_wait_us[JM_CLASS_NORMAL], 0);
    jm_stats_free(r);
}

/* Two workers spend 25 MB each in 250 kB requests at 10 MB/s: 5 s, less
 * the 100 ms the full bucket lets through at the start. */
static void holds_the_rate(void **state)
{
    fixture *f = *state;
    const int64_t rate = 10 * MB, chunk = 250000, per_job = 25 * MB;
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, rate), JM_OK);
    char id[2][JM_JOB_ID_SIZE];
    create(f, "SN", 0, 0, chunk, per_job / chunk, id[0]);
    create(f, "SN", 1, 0, chunk, per_job / chunk, id[1]);
    assert_int_equal(jm_start(f->m, 2), JM_OK);
    wait_done(0);
    wait_done(1);
    int64_t start = atomic_load(&slots[0].start_us), end = atomic_load(&slots[0].end_us);
    if (atomic_load(&slots[1].start_us) < start)
        start = atomic_load(&slots[1].start_us);
    if (atomic_load(&slots[1].end_us) > end)
        end = atomic_load(&slots[1].end_us);
    double secs = (double)(end - start) / 1e6;
    double mbps = (double)(2 * per_job) / (double)MB / secs;
    printf("# throttle: 50 MB at 10 MB/s by 2 workers took %.3f s (%.2f MB/s)\n", secs, mbps);
    assert_true(secs >= 4.5 && secs <= 5.5);
    /* Both ran at once: each took most of the time. */
    for (int s = 0; s < 2; s++)
        assert_true(atomic_load(&slots[s].end_us) - atomic_load(&slots[s].start_us) > 4000000);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_int_equal(r->throttle_bytes[JM_CLASS_NORMAL], 2 * per_job);
    assert_int_equal(r->throttle_bytes[JM_CLASS_HIGH], 0);
    /* Two workers waited most of the 5 s each. */
    printf("# throttle: the workers waited %.3f s in all\n",
           (double)r->throttle_wait_us[JM_CLASS_NORMAL] / 1e6);
    assert_true(r->throttle_wait_us[JM_CLASS_NORMAL] > 8000000);
    assert_int_equal(r->throttle_wait_us[JM_CLASS_HIGH], 0);
    jm_stats_free(r);
    /* The same numbers in the Prometheus text. */
    char text[65536];
    assert_int_equal(jm_metrics_prometheus(f->m, text, sizeof text, NULL), JM_OK);
    assert_non_null(strstr(text, "jobmgr_throttle_bytes_total{class=\"normal\"} 50000000\n"));
    assert_non_null(strstr(text, "jobmgr_throttle_bytes_total{class=\"high\"} 0\n"));
    assert_non_null(strstr(text, "jobmgr_throttle_wait_seconds_total{class=\"high\"} 0\n"));
}

/* More than the bucket holds passes at once when it is full; the next
 * request waits the debt off. */
static void large_request_leaves_a_debt(void **state)
{
    fixture *f = *state;
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 10 * MB), JM_OK);
    char id[JM_JOB_ID_SIZE];
    create(f, "SN", 0, 10 * MB, 1000, 1, id);
    assert_int_equal(jm_start(f->m, 1), JM_OK);
    wait_done(0);
    int64_t first = atomic_load(&slots[0].first_wait_us);
    int64_t second = atomic_load(&slots[0].last_wait_us);
    printf("# throttle: 10 MB at 10 MB/s waited %lld us, the next 1 kB %lld us\n",
           (long long)first, (long long)second);
    assert_true(first < 500000);
    /* 9.9 MB of debt at 10 MB/s. */
    assert_true(second >= 900000 && second < 5000000);
}

static void cancel_wakes_a_waiter(void **state)
{
    fixture *f = *state;
    /* 1 kB/s: after 1 MB the next request would wait about 1000 s. */
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 1000), JM_OK);
    char id[JM_JOB_ID_SIZE];
    start_waiter(f, 0, MB, 1000, id);
    assert_int_equal(jm_cancel(f->m, id), JM_OK);
    wait_done(0);
    int64_t took = atomic_load(&slots[0].last_took_us);
    printf("# throttle: a cancel ended a 1000 s wait after %lld us\n", (long long)took);
    assert_true(took < 10000000);
    assert_int_equal(atomic_load(&slots[0].stopped), 1);
    /* An early return spends nothing. */
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_int_equal(r->throttle_bytes[JM_CLASS_NORMAL], MB);
    jm_stats_free(r);
}

typedef struct status_wait {
    jm_manager *m;
    const char *id;
} status_wait;

static int completed(void *arg)
{
    status_wait *w = arg;
    return tu_status(w->m, w->id) == JM_STATUS_COMPLETED;
}

static void pause_request_wakes_a_waiter(void **state)
{
    fixture *f = *state;
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 1000), JM_OK);
    char id[JM_JOB_ID_SIZE];
    start_waiter(f, 0, MB, 1000, id);
    /* What the heartbeat does when it sees the job's pause request. */
    jm_manager *m = f->m;
    pthread_mutex_lock(&m->lock);
    jm_ctx *ctx = atomic_load(&slots[0].ctx);
    assert_non_null(ctx);
    atomic_store(&ctx->paused, 1);
    jm__throttle_wake(m);
    pthread_mutex_unlock(&m->lock);
    wait_done(0);
    assert_int_equal(atomic_load(&slots[0].stopped), 1);
    assert_true(atomic_load(&slots[0].last_took_us) < 10000000);
    /* The executor has returned; its outcome commits with the loop's next
     * transaction. */
    status_wait w = {f->m, id};
    assert_true(tu_wait_until(completed, &w, TU_TIMEOUT_MS));
}

static void stop_wakes_a_waiter(void **state)
{
    fixture *f = *state;
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 1000), JM_OK);
    char id[JM_JOB_ID_SIZE];
    start_waiter(f, 0, MB, 1000, id);
    int64_t t0 = now_us();
    assert_int_equal(jm_stop(f->m, 0), JM_OK);
    assert_true(now_us() - t0 < 10000000);
    assert_int_equal(atomic_load(&slots[0].done), 1);
    assert_int_equal(atomic_load(&slots[0].stopped), 1);
}

static void rate_change_takes_effect_while_waiting(void **state)
{
    fixture *f = *state;
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 1000), JM_OK);
    char id[JM_JOB_ID_SIZE];
    start_waiter(f, 0, MB, 1000, id);
    /* A faster budget: about 1 MB of debt at 100 MB/s is 10 ms. */
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 100 * MB), JM_OK);
    wait_done(0);
    assert_int_equal(atomic_load(&slots[0].stopped), 0);
    int64_t took = atomic_load(&slots[0].last_took_us);
    printf("# throttle: after the rate went from 1 kB/s to 100 MB/s the wait took %lld us\n",
           (long long)took);
    assert_true(took < 10000000);

    /* Unlimited while waiting: the waiter goes at once, and is counted. */
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 1000), JM_OK);
    add_waiter(f, 1, MB, 1000, id);
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 0), JM_OK);
    wait_done(1);
    assert_int_equal(atomic_load(&slots[1].stopped), 0);
    assert_true(atomic_load(&slots[1].last_took_us) < 10000000);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_int_equal(r->throttle_bytes[JM_CLASS_NORMAL], 2 * (MB + 1000));
    jm_stats_free(r);
}

/* A class spends its own budget: a slow normal class holds back nothing
 * of the high class. */
static void classes_have_their_own_budget(void **state)
{
    fixture *f = *state;
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_NORMAL, 1000), JM_OK);
    assert_int_equal(jm_set_rate_limit(f->m, JM_CLASS_HIGH, 100 * MB), JM_OK);
    char id[JM_JOB_ID_SIZE];
    create(f, "SH", 0, 0, MB, 5, id);
    assert_int_equal(jm_start(f->m, 1), JM_OK);
    wait_done(0);
    /* The high bucket holds 10 MB (100 ms at 100 MB/s): no real wait. */
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_int_equal(r->throttle_bytes[JM_CLASS_HIGH], 5 * MB);
    assert_int_equal(r->throttle_bytes[JM_CLASS_NORMAL], 0);
    assert_true(r->throttle_wait_us[JM_CLASS_HIGH] < 5000000);
    assert_int_equal(r->throttle_wait_us[JM_CLASS_NORMAL], 0);
    jm_stats_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(unlimited_and_empty_return_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(holds_the_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(large_request_leaves_a_debt, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_wakes_a_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(pause_request_wakes_a_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_wakes_a_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(rate_change_takes_effect_while_waiting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(classes_have_their_own_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
