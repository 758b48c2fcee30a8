/*
 * jm_stats(): the table's counts match the jobs after a scripted workload
 * run with jm_run_once() and a fake clock (every kind of decision), the
 * counters of runs and the per-type duration histograms, the due queue and
 * its oldest job's age, the failure window's boundaries, jobs running in
 * this manager (seen from inside execute, inline and on workers), jobs
 * recovered after their lease expired, and bad input.
 *
 * jm_throughput(): jobs finished at known times land in their buckets by
 * status, a bucket's start belongs to it and its end to the next, jobs
 * outside the window, unfinished jobs and pruned jobs are not counted,
 * and every refused argument.
 */
#define _POSIX_C_SOURCE 200809L
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

#include "jobmgr.h"
#include "test_util.h"

#define T0 1700000000000LL
#define HOUR_MS 3600000LL
#define SLOW_MS 60
#define LE_50MS 4 /* index of the 50 ms bound in JM_STATS_BUCKET_BOUNDS_MS */
#define LAST (JM_STATS_BUCKETS - 1)
#define MINUTE_MS 60000LL

typedef struct fixture {
    char *dir;
    char *db;
    tu_clock clock;
    jm_manager *m;
} fixture;

/* ------------------------------------------------------------------------
 * A scripted executor: {"do": "complete" | "retry" | "fail" | "cancel" |
 * "continue" | "sleep" | "stats" | "recover", ...}
 * ------------------------------------------------------------------------ */

typedef struct script {
    jm_manager *other;        /* "recover": the manager that recovers */
    tu_clock *other_clock;
    _Atomic int started;      /* "stats": runs that reached execute */
    int wait_for;             /* "stats": wait until this many started */
    _Atomic int64_t seen_here; /* "stats": the largest running_here seen */
    _Atomic int64_t seen_running;
    _Atomic int recovered;    /* "recover": what jm_recover reported */
} script;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void store_max(_Atomic int64_t *slot, int64_t v)
{
    int64_t cur = atomic_load(slot);
    while (v > cur && !atomic_compare_exchange_weak(slot, &cur, v))
        ;
}

static jm_decision script_exec(void *self, jm_ctx *ctx)
{
    script *s = self;
    const cJSON *what = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "do");
    const char *d = cJSON_IsString(what) ? what->valuestring : "complete";
    if (strcmp(d, "retry") == 0)
        return jm_decision_retry("try again", NULL, 0);
    if (strcmp(d, "fail") == 0)
        return jm_decision_failed("broken", "trace");
    if (strcmp(d, "cancel") == 0)
        return jm_decision_cancelled("stopped");
    if (strcmp(d, "continue") == 0 && jm_job_attempts(jm_ctx_job(ctx)) == 1)
        return jm_decision_continue("one batch", 0);
    if (strcmp(d, "sleep") == 0)
        sleep_ms(SLOW_MS);
    if (strcmp(d, "stats") == 0) {
        atomic_fetch_add(&s->started, 1);
        int64_t end = tu_mono_ms() + TU_TIMEOUT_MS;
        while (atomic_load(&s->started) < s->wait_for && tu_mono_ms() < end)
            sleep_ms(1);
        jm_stats_report *r = NULL;
        if (jm_stats(jm_ctx_manager(ctx), &r) != JM_OK)
            return jm_decision_failed("jm_stats failed inside execute", NULL);
        store_max(&s->seen_here, r->running_here);
        store_max(&s->seen_running, r->running);
        jm_stats_free(r);
    }
    if (strcmp(d, "recover") == 0) {
        /* Another manager, whose clock is far past this job's lease,
         * takes the job away while it runs. */
        tu_clock_advance(s->other_clock, 100 * HOUR_MS);
        int n = 0;
        if (jm_recover(s->other, &n) != JM_OK)
            return jm_decision_failed("jm_recover failed", NULL);
        atomic_store(&s->recovered, n);
    }
    return jm_decision_completed("done", NULL);
}

static void register_types(jm_manager *m, script *s)
{
    static const char *const types[] = {"SA", "SB", "SC"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        jm_executor ex = {JM_EXECUTOR_VERSION, types[i], "script", 1, NULL, script_exec, NULL, JM_CLASS_NORMAL, NULL};
        assert_int_equal(jm_register(m, &ex, s), JM_OK);
    }
}

static jm_manager *open_at(const char *db, tu_clock *clock, const char *node, script *s)
{
    jm_config cfg = tu_config(db);
    cfg.now_ms = tu_fake_now;
    cfg.now_user = clock;
    cfg.node_id = node;
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc != JM_OK)
        fail_msg("jm_open: %s (%s)", jm_err_name(rc), jm_last_error());
    register_types(m, s);
    return m;
}

static script the_script;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clock.now, T0);
    memset(&the_script, 0, sizeof the_script);
    f->m = open_at(f->db, &f->clock, "node-a", &the_script);
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

static void create(jm_manager *m, const char *type, const char *params, int max_retries,
                   int64_t run_at, char id[JM_JOB_ID_SIZE])
{
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = max_retries;
    o.run_at_ms = run_at;
    char scratch[JM_JOB_ID_SIZE];
    int rc = jm_create(m, type, params, &o, id ? id : scratch);
    if (rc != JM_OK)
        fail_msg("jm_create: %s (%s)", jm_err_name(rc), jm_last_error());
}

static int run_all(jm_manager *m)
{
    int total = 0, ran = 0;
    do {
        assert_int_equal(jm_run_once(m, 100, &ran), JM_OK);
        total += ran;
    } while (ran > 0);
    return total;
}

static jm_stats_report *stats(jm_manager *m)
{
    jm_stats_report *r = NULL;
    int rc = jm_stats(m, &r);
    if (rc != JM_OK)
        fail_msg("jm_stats: %s (%s)", jm_err_name(rc), jm_last_error());
    assert_non_null(r);
    return r;
}

static const jm_type_stats *type_of(const jm_stats_report *r, const char *type)
{
    for (size_t i = 0; i < r->ntypes; i++)
        if (strcmp(r->types[i].type, type) == 0)
            return &r->types[i];
    fail_msg("type %s missing from the report", type);
    return NULL;
}

static int64_t count(jm_manager *m, const char *type, jm_status status)
{
    jm_filter f = JM_FILTER_INIT;
    f.type = type;
    f.statuses = JM_STATUS_BIT(status);
    int64_t n = -1;
    assert_int_equal(jm_count(m, &f, &n), JM_OK);
    return n;
}

static void check_histogram(const jm_type_stats *t)
{
    for (int i = 1; i < JM_STATS_BUCKETS; i++)
        assert_true(t->duration_le[i] >= t->duration_le[i - 1]);
    assert_int_equal(t->duration_le[LAST], t->runs);
    assert_true(t->duration_sum_ms >= (double)t->duration_max_ms);
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void test_counts_match_table_after_workload(void **state)
{
    fixture *f = *state;
    jm_manager *m = f->m;
    char cancel_id[JM_JOB_ID_SIZE];
    for (int i = 0; i < 3; i++)
        create(m, "SA", "{\"do\":\"complete\"}", -1, 0, NULL);
    create(m, "SA", "{\"do\":\"retry\"}", 1, 0, NULL); /* retry, then max retries */
    create(m, "SA", "{\"do\":\"fail\"}", -1, 0, NULL);
    create(m, "SB", "{\"do\":\"cancel\"}", -1, 0, NULL);
    create(m, "SB", "{\"do\":\"continue\"}", -1, 0, NULL); /* continue, then complete */
    create(m, "SB", NULL, -1, 0, cancel_id);
    assert_int_equal(jm_cancel(m, cancel_id), JM_OK); /* cancelled, never run */
    create(m, "SC", NULL, -1, T0 + HOUR_MS, NULL);    /* scheduled: stays new */

    assert_int_equal(run_all(m), 9);

    jm_stats_report *r = stats(m);
    assert_int_equal(r->taken_at_ms, T0);
    /* Every (type, status) count equals what jm_count finds. */
    static const char *const types[] = {"SA", "SB", "SC"};
    assert_int_equal(r->ntypes, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(r->types[i].type, types[i]); /* sorted */
        for (int s = 0; s < JM_STATUS_COUNT; s++)
            assert_int_equal(r->types[i].by_status[s], count(m, types[i], (jm_status)s));
    }
    for (int s = 0; s < JM_STATUS_COUNT; s++)
        assert_int_equal(r->by_status[s], count(m, NULL, (jm_status)s));
    assert_int_equal(r->by_status[JM_STATUS_COMPLETED], 4);
    assert_int_equal(r->by_status[JM_STATUS_FAILED], 2);
    assert_int_equal(r->by_status[JM_STATUS_CANCELLED], 2);
    assert_int_equal(r->by_status[JM_STATUS_NEW], 1);

    /* Counters: 9 runs; the retry job asked twice (the second exhausted
     * its budget and failed it). */
    assert_int_equal(r->runs, 9);
    assert_int_equal(r->completed, 4);
    assert_int_equal(r->retries, 2);
    assert_int_equal(r->failures, 2);
    assert_int_equal(r->cancelled, 1);
    assert_int_equal(r->recovered, 0);
    const jm_type_stats *a = type_of(r, "SA");
    assert_int_equal(a->runs, 6);
    assert_int_equal(a->completed, 3);
    assert_int_equal(a->retries, 2);
    assert_int_equal(a->failures, 2);
    assert_int_equal(a->cancelled, 0);
    check_histogram(a);
    const jm_type_stats *b = type_of(r, "SB");
    assert_int_equal(b->runs, 3);
    assert_int_equal(b->completed, 1);
    assert_int_equal(b->cancelled, 1);
    assert_int_equal(b->retries, 0);
    check_histogram(b);
    const jm_type_stats *c = type_of(r, "SC"); /* only in the table */
    assert_int_equal(c->runs, 0);
    assert_int_equal(c->by_status[JM_STATUS_NEW], 1);
    check_histogram(c);
    jm_stats_free(r);

    /* Pruned jobs leave the table; their type stays, from the counters. */
    int64_t deleted = 0;
    assert_int_equal(jm_prune(m, T0 + 1, &deleted), JM_OK);
    assert_int_equal(deleted, 8);
    r = stats(m);
    assert_int_equal(r->ntypes, 3);
    a = type_of(r, "SA");
    assert_int_equal(a->runs, 6);
    for (int s = 0; s < JM_STATUS_COUNT; s++)
        assert_int_equal(a->by_status[s], 0);
    jm_stats_free(r);
}

/* The most common status may be one that waits, and a type may have none
 * of it: every count still equals the table's. */
static void test_counts_when_most_jobs_wait(void **state)
{
    fixture *f = *state;
    jm_manager *m = f->m;
    create(m, "SB", "{\"do\":\"complete\"}", -1, 0, NULL);
    create(m, "SB", "{\"do\":\"complete\"}", -1, 0, NULL);
    create(m, "SB", "{\"do\":\"fail\"}", -1, 0, NULL);
    assert_int_equal(run_all(m), 3);
    for (int i = 0; i < 6; i++)
        create(m, "SA", NULL, -1, 0, NULL);
    create(m, "SC", NULL, -1, 0, NULL);
    jm_stats_report *r = stats(m);
    assert_int_equal(r->by_status[JM_STATUS_QUEUED], 7);
    static const char *const types[] = {"SA", "SB", "SC"};
    assert_int_equal(r->ntypes, 3);
    for (size_t i = 0; i < 3; i++)
        for (int st = 0; st < JM_STATUS_COUNT; st++)
            assert_int_equal(type_of(r, types[i])->by_status[st],
                             count(m, types[i], (jm_status)st));
    assert_int_equal(type_of(r, "SB")->by_status[JM_STATUS_QUEUED], 0);
    assert_int_equal(type_of(r, "SB")->by_status[JM_STATUS_COMPLETED], 2);
    jm_stats_free(r);
}

static void test_duration_histograms_per_type(void **state)
{
    fixture *f = *state;
    jm_manager *m = f->m;
    create(m, "SA", "{\"do\":\"sleep\"}", -1, 0, NULL);
    create(m, "SA", "{\"do\":\"complete\"}", -1, 0, NULL);
    for (int i = 0; i < 3; i++)
        create(m, "SB", "{\"do\":\"complete\"}", -1, 0, NULL);
    assert_int_equal(run_all(m), 5);

    jm_stats_report *r = stats(m);
    const jm_type_stats *a = type_of(r, "SA");
    check_histogram(a);
    assert_int_equal(a->duration_le[LAST], 2);
    assert_true(a->duration_max_ms >= SLOW_MS);
    assert_true(a->duration_sum_ms >= SLOW_MS);
    /* The slow run is above the 50 ms bound, so that bucket lacks it. */
    assert_true(a->duration_le[LE_50MS] <= 1);
    const jm_type_stats *b = type_of(r, "SB");
    check_histogram(b);
    assert_int_equal(b->duration_le[LAST], 3);
    jm_stats_free(r);
}

static void test_queue_depth_and_oldest_age(void **state)
{
    fixture *f = *state;
    jm_manager *m = f->m;
    jm_stats_report *r = stats(m);
    assert_int_equal(r->queue_depth, 0);
    assert_int_equal(r->oldest_due_age_ms, 0);
    jm_stats_free(r);

    for (int i = 0; i < 3; i++)
        create(m, "SA", NULL, -1, 0, NULL);         /* due at T0 */
    create(m, "SA", NULL, -1, T0 + 10000, NULL);    /* new until T0 + 10 s */
    tu_clock_advance(&f->clock, 5000);
    r = stats(m);
    assert_int_equal(r->queue_depth, 3);
    assert_int_equal(r->oldest_due_age_ms, 5000);
    jm_stats_free(r);

    /* The scheduled job became due (still "new" until a claim promotes it). */
    tu_clock_advance(&f->clock, 7000);
    r = stats(m);
    assert_int_equal(r->queue_depth, 4);
    assert_int_equal(r->oldest_due_age_ms, 12000);
    assert_int_equal(r->by_status[JM_STATUS_NEW], 1);
    jm_stats_free(r);

    /* A retrying job waits out its backoff outside the queue. */
    assert_int_equal(run_all(m), 4);
    create(m, "SB", "{\"do\":\"retry\"}", -1, 0, NULL);
    int ran = 0;
    assert_int_equal(jm_run_once(m, 1, &ran), JM_OK);
    assert_int_equal(ran, 1); /* now retrying, due at once (backoff 0) */
    r = stats(m);
    assert_int_equal(r->by_status[JM_STATUS_RETRYING], 1);
    assert_int_equal(r->queue_depth, 1);
    assert_int_equal(r->oldest_due_age_ms, 0);
    jm_stats_free(r);
    tu_clock_advance(&f->clock, 250);
    r = stats(m);
    assert_int_equal(r->oldest_due_age_ms, 250);
    jm_stats_free(r);
}

static void test_failed_last_hour_boundaries(void **state)
{
    fixture *f = *state;
    jm_manager *m = f->m;
    create(m, "SA", "{\"do\":\"fail\"}", -1, 0, NULL);
    create(m, "SA", "{\"do\":\"complete\"}", -1, 0, NULL);
    create(m, "SA", "{\"do\":\"cancel\"}", -1, 0, NULL);
    assert_int_equal(run_all(m), 3); /* finished at T0 */

    static const struct {
        int64_t at;
        int64_t expect;
    } cases[] = {
        {T0, 1},
        {T0 + HOUR_MS - 1, 1},
        {T0 + HOUR_MS, 1}, /* finished exactly an hour ago: still inside */
        {T0 + HOUR_MS + 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        atomic_store(&f->clock.now, cases[i].at);
        jm_stats_report *r = stats(m);
        assert_int_equal(r->failed_last_hour, cases[i].expect);
        assert_int_equal(r->by_status[JM_STATUS_FAILED], 1);
        jm_stats_free(r);
    }
}

static void test_running_here_inline(void **state)
{
    fixture *f = *state;
    the_script.wait_for = 1;
    create(f->m, "SA", "{\"do\":\"stats\"}", -1, 0, NULL);
    assert_int_equal(run_all(f->m), 1);
    assert_int_equal(atomic_load(&the_script.seen_here), 1);
    assert_int_equal(atomic_load(&the_script.seen_running), 1);
    jm_stats_report *r = stats(f->m);
    assert_int_equal(r->running_here, 0);
    assert_int_equal(r->running, 0);
    assert_int_equal(r->completed, 1);
    jm_stats_free(r);
}

static int all_finished(void *arg)
{
    jm_manager *m = arg;
    jm_filter done = JM_FILTER_INIT;
    done.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
    int64_t n = 0;
    return jm_count(m, &done, &n) == JM_OK && n == 2;
}

static void test_running_here_on_workers(void **state)
{
    fixture *f = *state;
    the_script.wait_for = 2; /* both runs are inside execute at once */
    create(f->m, "SA", "{\"do\":\"stats\"}", -1, 0, NULL);
    create(f->m, "SB", "{\"do\":\"stats\"}", -1, 0, NULL);
    assert_int_equal(jm_start(f->m, 2), JM_OK);
    assert_true(tu_wait_until(all_finished, f->m, TU_TIMEOUT_MS));
    assert_int_equal(jm_stop(f->m, 1000), JM_OK);
    assert_int_equal(atomic_load(&the_script.seen_here), 2);
    assert_int_equal(atomic_load(&the_script.seen_running), 2);
}

static void test_recovered_after_lease_expiry(void **state)
{
    fixture *f = *state;
    tu_clock other_clock;
    atomic_store(&other_clock.now, T0);
    script other_script;
    memset(&other_script, 0, sizeof other_script);
    jm_manager *other = open_at(f->db, &other_clock, "node-b", &other_script);
    the_script.other = other;
    the_script.other_clock = &other_clock;

    char id[JM_JOB_ID_SIZE];
    create(f->m, "SA", "{\"do\":\"recover\"}", -1, 0, id);
    assert_int_equal(run_all(f->m), 1);
    assert_int_equal(atomic_load(&the_script.recovered), 1);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_RETRYING);

    jm_stats_report *r = stats(other);
    assert_int_equal(r->recovered, 1);
    assert_int_equal(r->runs, 0);
    jm_stats_free(r);
    /* The worker that lost the job had its outcome discarded: no run. */
    r = stats(f->m);
    assert_int_equal(r->recovered, 0);
    assert_int_equal(r->runs, 0);
    assert_int_equal(r->by_status[JM_STATUS_RETRYING], 1);
    jm_stats_free(r);
    jm_close(other);
}

/* Rows the API cannot create (written behind its back): a type of two
 * bytes that is not a registered type is listed; one that is not two
 * bytes counts in the totals only. */
static void test_odd_types_in_table(void **state)
{
    fixture *f = *state;
    tu_sql_exec(f->db,
                "INSERT INTO jm_jobs (id, type, status, params, max_retries, created_at, "
                "updated_at, run_at) VALUES ('x1', 'zz', 4, '{}', 3, 1, 1, 1), "
                "('x2', 'é!', 1, '{}', 3, 1, 1, 1)");
    jm_stats_report *r = stats(f->m);
    assert_int_equal(r->ntypes, 1);
    assert_string_equal(r->types[0].type, "zz");
    assert_int_equal(r->types[0].by_status[JM_STATUS_COMPLETED], 1);
    assert_int_equal(r->by_status[JM_STATUS_COMPLETED], 1);
    assert_int_equal(r->by_status[JM_STATUS_QUEUED], 1);
    assert_int_equal(r->queue_depth, 1);
    assert_int_equal(r->oldest_due_age_ms, T0 - 1);
    jm_stats_free(r);
}

static void test_bad_input(void **state)
{
    fixture *f = *state;
    jm_stats_report *r = (jm_stats_report *)&r;
    assert_int_equal(jm_stats(NULL, &r), JM_EINVAL);
    assert_null(r);
    assert_int_equal(jm_stats(f->m, NULL), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "out"));
    jm_stats_free(NULL);
}

/* ------------------------------------------------------------------------
 * jm_throughput()
 * ------------------------------------------------------------------------ */

/* A job of `type` that ends by `what` ("complete", "fail", "cancel") with
 * the clock at `at`: created due then and run at once. */
static void finish_at(fixture *f, int64_t at, const char *type, const char *what)
{
    atomic_store(&f->clock.now, at);
    char params[64];
    snprintf(params, sizeof params, "{\"do\":\"%s\"}", what);
    create(f->m, type, params, -1, 0, NULL);
    assert_int_equal(run_all(f->m), 1);
}

static void throughput(jm_manager *m, int64_t since, int64_t bucket_ms,
                       jm_throughput_bucket *out, size_t n)
{
    int rc = jm_throughput(m, since, bucket_ms, out, n);
    if (rc != JM_OK)
        fail_msg("jm_throughput: %s (%s)", jm_err_name(rc), jm_last_error());
}

static void check_bucket(const jm_throughput_bucket *b, int64_t start, int64_t completed,
                         int64_t failed, int64_t cancelled)
{
    assert_int_equal(b->start_ms, start);
    assert_int_equal(b->completed, completed);
    assert_int_equal(b->failed, failed);
    assert_int_equal(b->cancelled, cancelled);
}

static void test_throughput_buckets_by_status(void **state)
{
    fixture *f = *state;
    const int64_t since = T0 + HOUR_MS;
    finish_at(f, since - 1, "SA", "complete"); /* just before the window */
    finish_at(f, since, "SA", "complete");     /* a bucket's start is its own */
    finish_at(f, since, "SB", "complete");
    finish_at(f, since, "SA", "fail");
    finish_at(f, since + MINUTE_MS - 1, "SA", "cancel");
    finish_at(f, since + MINUTE_MS, "SB", "complete"); /* the next bucket's start */
    /* Cancelled while queued, never run: it finished when cancelled. */
    char queued[JM_JOB_ID_SIZE];
    create(f->m, "SA", NULL, -1, 0, queued);
    atomic_store(&f->clock.now, since + MINUTE_MS + 1);
    assert_int_equal(jm_cancel(f->m, queued), JM_OK);
    finish_at(f, since + 3 * MINUTE_MS + 5, "SB", "fail");
    finish_at(f, since + 4 * MINUTE_MS, "SA", "complete"); /* the window's end */

    jm_throughput_bucket b[4];
    throughput(f->m, since, MINUTE_MS, b, 4);
    check_bucket(&b[0], since, 2, 1, 1);
    check_bucket(&b[1], since + MINUTE_MS, 1, 0, 1);
    check_bucket(&b[2], since + 2 * MINUTE_MS, 0, 0, 0);
    check_bucket(&b[3], since + 3 * MINUTE_MS, 0, 1, 0);

    /* One bucket more takes in the job at the old window's end; one
     * millisecond earlier, the job before it. */
    jm_throughput_bucket b5[5];
    throughput(f->m, since, MINUTE_MS, b5, 5);
    check_bucket(&b5[4], since + 4 * MINUTE_MS, 1, 0, 0);
    jm_throughput_bucket one;
    throughput(f->m, since - 1, 1, &one, 1);
    check_bucket(&one, since - 1, 1, 0, 0);

    /* A dashboard's last hour by minute: everything lands by its offset. */
    jm_throughput_bucket hour[60];
    throughput(f->m, since + 5 * MINUTE_MS - HOUR_MS, MINUTE_MS, hour, 60);
    int64_t completed = 0, failed = 0, cancelled = 0;
    for (size_t i = 0; i < 60; i++) {
        completed += hour[i].completed;
        failed += hour[i].failed;
        cancelled += hour[i].cancelled;
    }
    assert_int_equal(completed, 5);
    assert_int_equal(failed, 2);
    assert_int_equal(cancelled, 2);
    check_bucket(&hour[54], since - MINUTE_MS, 1, 0, 0);
    check_bucket(&hour[55], since, 2, 1, 1);

    /* Pruned jobs are no longer counted; later ones stay. */
    int64_t deleted = 0;
    assert_int_equal(jm_prune(f->m, since + MINUTE_MS, &deleted), JM_OK);
    assert_int_equal(deleted, 5);
    throughput(f->m, since, MINUTE_MS, b, 4);
    check_bucket(&b[0], since, 0, 0, 0);
    check_bucket(&b[1], since + MINUTE_MS, 1, 0, 1);
    check_bucket(&b[3], since + 3 * MINUTE_MS, 0, 1, 0);
}

static void test_throughput_counts_finished_jobs_only(void **state)
{
    fixture *f = *state;
    finish_at(f, T0, "SA", "complete");
    create(f->m, "SB", "{\"do\":\"retry\"}", 3, 0, NULL);
    int ran = 0;
    assert_int_equal(jm_run_once(f->m, 1, &ran), JM_OK);
    assert_int_equal(ran, 1);
    assert_int_equal(count(f->m, "SB", JM_STATUS_RETRYING), 1);
    create(f->m, "SA", NULL, -1, 0, NULL);            /* queued */
    create(f->m, "SA", NULL, -1, T0 + HOUR_MS, NULL); /* new */
    char paused[JM_JOB_ID_SIZE];
    create(f->m, "SA", NULL, -1, 0, paused);
    assert_int_equal(jm_pause_job(f->m, paused), JM_OK);
    /* Rows no manager writes, written behind its back: active statuses
     * with a finished_at inside the window, and one finished row. */
    tu_sql_exec(f->db,
                "INSERT INTO jm_jobs (id, type, status, params, max_retries, created_at, "
                "updated_at, run_at, finished_at) VALUES "
                "('x0', 'SC', 0, '{}', 3, 1, 1, 1, 1700000000100), "
                "('x1', 'SC', 1, '{}', 3, 1, 1, 1, 1700000000100), "
                "('x2', 'SC', 2, '{}', 3, 1, 1, 1, 1700000000100), "
                "('x3', 'SC', 3, '{}', 3, 1, 1, 1, 1700000000100), "
                "('x7', 'SC', 7, '{}', 3, 1, 1, 1, 1700000000100), "
                "('x4', 'SC', 4, '{}', 3, 1, 1, 1, 1700000000100)");

    jm_throughput_bucket b;
    throughput(f->m, T0, HOUR_MS, &b, 1);
    check_bucket(&b, T0, 2, 0, 0); /* the SA run and the finished row */
}

static void test_throughput_bad_input(void **state)
{
    fixture *f = *state;
    finish_at(f, T0, "SA", "complete");
    static const jm_throughput_bucket untouched = {-7, -7, -7, -7};
    /* A refused call writes nothing, whatever nbuckets says. */
    jm_throughput_bucket b = untouched;
    static const struct {
        int64_t since, bucket_ms;
        size_t n;
        const char *says;
    } cases[] = {
        {T0, 0, 1, "bucket_ms"},
        {T0, -MINUTE_MS, 1, "bucket_ms"},
        {T0, INT64_MIN, 1, "bucket_ms"},
        {T0, MINUTE_MS, 0, "nbuckets"},
        {T0, MINUTE_MS, JM_THROUGHPUT_MAX_BUCKETS + 1, "nbuckets"},
        {T0, MINUTE_MS, SIZE_MAX, "nbuckets"},
        {-1, MINUTE_MS, 1, "since_ms"},
        {INT64_MIN, MINUTE_MS, 1, "since_ms"},
        {INT64_MAX - 10, 1, 11, "overflows"},     /* ends at INT64_MAX + 1 */
        {INT64_MAX - 10, 6, 2, "overflows"},
        {0, INT64_MAX / 2 + 1, 2, "overflows"},
        {T0, INT64_MAX, JM_THROUGHPUT_MAX_BUCKETS, "overflows"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(jm_throughput(f->m, cases[i].since, cases[i].bucket_ms, &b, cases[i].n),
                         JM_EINVAL);
        if (!strstr(jm_last_error(), cases[i].says))
            fail_msg("case %zu: \"%s\" does not name %s", i, jm_last_error(), cases[i].says);
        assert_memory_equal(&b, &untouched, sizeof untouched);
    }
    assert_int_equal(jm_throughput(NULL, T0, MINUTE_MS, &b, 1), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "manager"));
    assert_int_equal(jm_throughput(f->m, T0, MINUTE_MS, NULL, 1), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "out"));
    assert_memory_equal(&b, &untouched, sizeof untouched);

    /* The limits themselves are accepted. */
    jm_throughput_bucket last[10];
    throughput(f->m, INT64_MAX - 10, 1, last, 10); /* ends exactly at INT64_MAX */
    check_bucket(&last[9], INT64_MAX - 1, 0, 0, 0);
    throughput(f->m, 0, INT64_MAX, &b, 1);
    check_bucket(&b, 0, 1, 0, 0);
    jm_throughput_bucket *many = calloc(JM_THROUGHPUT_MAX_BUCKETS, sizeof *many);
    assert_non_null(many);
    throughput(f->m, T0, 1, many, JM_THROUGHPUT_MAX_BUCKETS);
    check_bucket(&many[0], T0, 1, 0, 0);
    for (size_t i = 1; i < JM_THROUGHPUT_MAX_BUCKETS; i++)
        check_bucket(&many[i], T0 + (int64_t)i, 0, 0, 0);
    free(many);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_match_table_after_workload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_when_most_jobs_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duration_histograms_per_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_depth_and_oldest_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_last_hour_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_here_inline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_here_on_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovered_after_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_types_in_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput_buckets_by_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput_counts_finished_jobs_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_throughput_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
