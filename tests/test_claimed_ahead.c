/*
 * Jobs claimed ahead of the workers wait in memory while their rows say
 * running. Two promises hold for them: a cancel accepted before such a job
 * starts means its executor never runs and it ends cancelled; and a crash
 * charges (by the recovery policy) only the jobs that had started, never
 * those still waiting. Children open their own managers after fork(), never
 * use cmocka, and end with _exit().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobmgr.h"
#include "test_util.h"

#define STORM_JOBS 2000
#define CRASH_JOBS 600
#define WARM_JOBS 20

typedef struct fixture {
    char *dir;
    char *db;
    char *started_log;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    f->started_log = tu_path(f->dir, "started.log");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->db);
    free(f->started_log);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void spin_us(int64_t us)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static int job_index(jm_ctx *ctx)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "i");
    return cJSON_IsNumber(i) ? (int)i->valuedouble : -1;
}

static void create_indexed(jm_manager *m, const char *type, int from, int n, int max_retries,
                           char (*ids)[JM_JOB_ID_SIZE])
{
    jm_new_job *jobs = calloc((size_t)n, sizeof *jobs);
    char (*params)[32] = calloc((size_t)n, sizeof *params);
    assert_true(jobs && params);
    for (int k = 0; k < n; k++) {
        snprintf(params[k], sizeof params[k], "{\"i\": %d}", from + k);
        jobs[k].type = type;
        jobs[k].params_json = params[k];
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.max_retries = max_retries;
        jobs[k].opts = o;
    }
    int rc = jm_create_many(m, jobs, (size_t)n, ids + from);
    if (rc != JM_OK)
        fail_msg("jm_create_many: %s (%s)", jm_err_name(rc), jm_last_error());
    free(jobs);
    free(params);
}

/* ------------------------------------------------------------------------
 * A cancel storm against claimed-ahead jobs
 * ------------------------------------------------------------------------ */

typedef struct storm {
    _Atomic int accepted[WARM_JOBS + STORM_JOBS]; /* jm_cancel returned JM_OK */
    _Atomic int ran[WARM_JOBS + STORM_JOBS];
    _Atomic int late; /* executors that began after their cancel was accepted, untold */
    _Atomic int finished;
    char ids[WARM_JOBS + STORM_JOBS][JM_JOB_ID_SIZE];
    jm_manager *canceller;
    int pause; /* a storm of jm_pause_job() instead of jm_cancel() */
} storm;

static jm_decision storm_exec(void *self, jm_ctx *ctx)
{
    storm *s = self;
    int k = job_index(ctx);
    if (k >= 0 && k < WARM_JOBS + STORM_JOBS) {
        /* A cancel accepted before this line either kept the executor
         * from being called or is seen at its first check. */
        if (atomic_load(&s->accepted[k]) && !jm_ctx_should_yield(ctx))
            atomic_fetch_add(&s->late, 1);
        atomic_store(&s->ran[k], 1);
    }
    spin_us(300);
    return jm_decision_completed(NULL, NULL);
}

/* Cancels every tenth job as soon as it is claimed and before it ran:
 * exactly the window where it waits in the other manager's memory. */
static void *cancel_all(void *arg)
{
    storm *s = arg;
    for (int k = WARM_JOBS; k < WARM_JOBS + STORM_JOBS; k += 10) {
        int64_t end = tu_mono_ms() + TU_TIMEOUT_MS;
        while (!atomic_load(&s->ran[k]) && tu_status(s->canceller, s->ids[k]) != JM_STATUS_RUNNING &&
               tu_mono_ms() < end)
            ;
        if (!atomic_load(&s->ran[k]) &&
            (s->pause ? jm_pause_job(s->canceller, s->ids[k]) : jm_cancel(s->canceller, s->ids[k])) ==
                JM_OK)
            atomic_store(&s->accepted[k], 1);
    }
    return NULL;
}

static int all_done(void *arg)
{
    jm_manager *m = arg;
    jm_filter flt = JM_FILTER_INIT;
    flt.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED) | JM_STATUS_BIT(JM_STATUS_CANCELLED) |
                   JM_STATUS_BIT(JM_STATUS_PAUSED);
    int64_t n = 0;
    return jm_count(m, &flt, &n) == JM_OK && n == WARM_JOBS + STORM_JOBS;
}

static void storm_against_claimed_ahead(fixture *f, int pause)
{
    storm *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->pause = pause;
    jm_config cfg = tu_config(f->db);
    jm_manager *m = NULL, *c = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    /* The canceller is another manager: what it knows comes from the
     * database only, as from another process. */
    assert_int_equal(jm_open(&cfg, &c), JM_OK);
    s->canceller = c;
    jm_executor ex = {JM_EXECUTOR_VERSION, "ST", "storm", 1, NULL, storm_exec, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(m, &ex, s), JM_OK);
    assert_int_equal(jm_register(c, &ex, s), JM_OK);

    /* A few runs first, so the loop knows the type runs short and claims
     * it ahead. */
    create_indexed(m, "ST", 0, WARM_JOBS, -1, s->ids);
    assert_int_equal(jm_start(m, 1), JM_OK);
    create_indexed(m, "ST", WARM_JOBS, STORM_JOBS, -1, s->ids);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_all, s), 0);
    pthread_join(t, NULL);
    if (!tu_wait_until(all_done, m, 4 * TU_TIMEOUT_MS))
        fail_msg("not every job ended");
    assert_int_equal(jm_stop(m, TU_TIMEOUT_MS), JM_OK);

    assert_int_equal(atomic_load(&s->late), 0);
    int cancelled_waiting = 0;
    for (int k = WARM_JOBS; k < WARM_JOBS + STORM_JOBS; k++) {
        if (!atomic_load(&s->accepted[k]))
            continue;
        int st = tu_status(m, s->ids[k]);
        if (!atomic_load(&s->ran[k])) {
            if (st != (pause ? JM_STATUS_PAUSED : JM_STATUS_CANCELLED))
                fail_msg("job %d: %s accepted, never ran, yet %s", k, pause ? "pause" : "cancel",
                         jm_status_name((jm_status)st));
            cancelled_waiting++;
        }
    }
    /* The storm reached jobs that were waiting, claimed or not. */
    assert_true(cancelled_waiting > 0);
    jm_close(c);
    jm_close(m);
    free(s);
}

static void test_cancel_storm_against_claimed_ahead(void **state)
{
    storm_against_claimed_ahead(*state, 0);
}

/* The same with pause requests: a job paused while it waited claimed
 * never starts, and ends paused. */
static void test_pause_storm_against_claimed_ahead(void **state)
{
    storm_against_claimed_ahead(*state, 1);
}

/* ------------------------------------------------------------------------
 * SIGKILL with jobs claimed ahead, under each recovery policy
 * ------------------------------------------------------------------------ */

/* The child's single worker runs CRASH_RUNS short jobs, then sticks in the
 * next one: the loop keeps jobs claimed ahead of it, which never start,
 * until the kill. So the kill always finds both kinds. */
#define CRASH_RUNS 60

static int log_fd = -1;
static int crash_starts;

static jm_decision crash_exec(void *self, jm_ctx *ctx)
{
    (void)self;
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", job_index(ctx));
    if (write(log_fd, line, (size_t)n) != n)
        return jm_decision_failed("cannot log", NULL);
    if (++crash_starts > CRASH_RUNS)
        for (;;)
            pause();
    spin_us(1000);
    return jm_decision_completed(NULL, NULL);
}

static int crash_child(const fixture *f, jm_recovery_policy policy)
{
    log_fd = open(f->started_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return 10;
    jm_config cfg = tu_config(f->db);
    cfg.recovery = policy;
    jm_manager *m = NULL;
    if (jm_open(&cfg, &m) != JM_OK)
        return 11;
    jm_executor ex = {JM_EXECUTOR_VERSION, "KA", "crash", 1, NULL, crash_exec, NULL, JM_CLASS_NORMAL, NULL};
    if (jm_register(m, &ex, NULL) != JM_OK || jm_start(m, 1) != JM_OK)
        return 12;
    for (;;)
        pause();
}

/* The child is stuck in its last start, every earlier run's outcome is
 * recorded, and at least one more job waits claimed behind it. */
static int stuck_with_claims_ahead(void *arg)
{
    const fixture *f = arg;
    FILE *in = fopen(f->started_log, "r");
    if (!in)
        return 0;
    int lines = 0, c;
    while ((c = fgetc(in)) != EOF)
        lines += c == '\n';
    fclose(in);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM jm_jobs WHERE status = 4) >= %d "
             "AND (SELECT count(*) FROM jm_jobs WHERE status = 2) >= 2",
             CRASH_RUNS);
    return lines > CRASH_RUNS && tu_sql_int(f->db, sql);
}

static void crash_with_claims_ahead(const fixture *f, jm_recovery_policy policy,
                                    int max_retries)
{
    static char ids[CRASH_JOBS][JM_JOB_ID_SIZE];
    jm_config cfg = tu_config(f->db);
    cfg.recovery = policy;
    jm_manager *m = NULL;
    jm_executor ex = {JM_EXECUTOR_VERSION, "KA", "crash", 1, NULL, crash_exec, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    assert_int_equal(jm_register(m, &ex, NULL), JM_OK);
    create_indexed(m, "KA", 0, CRASH_JOBS, max_retries, ids);
    jm_close(m);

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(crash_child(f, policy));
    if (!tu_wait_until(stuck_with_claims_ahead, (void *)f, TU_TIMEOUT_MS)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the child did not start jobs");
    }
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));

    static char started[CRASH_JOBS];
    memset(started, 0, sizeof started);
    FILE *in = fopen(f->started_log, "r");
    assert_non_null(in);
    int k;
    while (fscanf(in, "%d", &k) == 1)
        if (k >= 0 && k < CRASH_JOBS)
            started[k] = 1;
    fclose(in);

    /* Opening recovers the dead child's jobs. */
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    assert_int_equal(jm_register(m, &ex, NULL), JM_OK);
    int released = 0, charged_unstarted = 0, charged = 0;
    for (k = 0; k < CRASH_JOBS; k++) {
        jm_job *j = NULL;
        assert_int_equal(jm_get(m, ids[k], &j), JM_OK);
        jm_status st = jm_job_status(j);
        int retries = jm_job_retry_count(j);
        int attempts = jm_job_attempts(j);
        assert_int_not_equal(st, JM_STATUS_RUNNING);
        if (st == JM_STATUS_FAILED || retries > 0) {
            charged++;
            if (!started[k])
                charged_unstarted++;
        }
        if (!started[k] && attempts > 0) {
            /* Claimed, never started: back without a retry spent, and no
             * start time. */
            assert_int_equal(st, JM_STATUS_RETRYING);
            assert_int_equal(retries, 0);
            assert_int_equal(jm_job_started_at(j), 0);
            released++;
        }
        if (started[k] && st != JM_STATUS_COMPLETED) {
            /* Started, outcome lost: the policy decides. */
            if (policy == JM_RECOVER_FAIL) {
                assert_int_equal(st, JM_STATUS_FAILED);
                assert_string_equal(jm_job_message(j), "Server restarted");
            } else if (max_retries == 0) {
                assert_int_equal(st, JM_STATUS_FAILED);
                assert_string_equal(jm_job_message(j), "Max retries exceeded");
            } else {
                assert_int_equal(st, JM_STATUS_RETRYING);
                assert_int_equal(retries, 1);
            }
        }
        jm_job_free(j);
    }
    /* Only the stuck run started without an outcome: it alone is charged,
     * and every job claimed behind it goes back. */
    assert_int_equal(charged_unstarted, 0);
    assert_int_equal(charged, 1);
    assert_true(released > 0);
    jm_close(m);
}

static void test_crash_ahead_retry_none_left(void **state)
{
    crash_with_claims_ahead(*state, JM_RECOVER_RETRY, 0);
}

static void test_crash_ahead_fail_policy(void **state)
{
    crash_with_claims_ahead(*state, JM_RECOVER_FAIL, 3);
}

static void test_crash_ahead_retry(void **state)
{
    crash_with_claims_ahead(*state, JM_RECOVER_RETRY, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cancel_storm_against_claimed_ahead, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pause_storm_against_claimed_ahead, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crash_ahead_retry_none_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_ahead_fail_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_ahead_retry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
