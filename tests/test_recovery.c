/*
 * Crash recovery across processes: a worker process killed with SIGKILL in
 * the middle of a job, under both recovery policies; a cancel accepted
 * before the crash; a job held by a live process of another node, recovered
 * only once its lease expires (by a fake clock); two managers recovering the
 * same dead owner's jobs at once. Children open their own managers after
 * fork(), never use cmocka, and end with _exit().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobmgr.h"
#include "test_util.h"

#define RECOVERED_MSG "Recovered after worker was lost"
#define RESTARTED_MSG "Server restarted"
#define STARTED "started\n"
#define STARTED_LEN 8

/* ------------------------------------------------------------------------
 * Fixture
 * ------------------------------------------------------------------------ */

typedef struct fixture {
    char *dir;
    char *db;
    pid_t child;     /* 0: none to reap */
    int started_rd;  /* read end of the child's "started" pipe, or -1 */
    int hold_wr;     /* write end the child blocks on, or -1 */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    assert_non_null(f->db);
    f->started_rd = -1;
    f->hold_wr = -1;
    *state = f;
    return 0;
}

static void close_pipes(fixture *f)
{
    if (f->started_rd >= 0)
        close(f->started_rd);
    if (f->hold_wr >= 0)
        close(f->hold_wr);
    f->started_rd = -1;
    f->hold_wr = -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->child > 0) {
        kill(f->child, SIGKILL);
        waitpid(f->child, NULL, 0);
    }
    close_pipes(f);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------------
 * The executor: in a child it reports "started" and blocks; in the parent
 * it completes at once
 * ------------------------------------------------------------------------ */

typedef struct rv_state {
    int started_fd; /* >= 0: child mode */
    int hold_fd;
    _Atomic int runs;
} rv_state;

static jm_decision rv_exec(void *self, jm_ctx *ctx)
{
    (void)ctx;
    rv_state *s = self;
    atomic_fetch_add(&s->runs, 1);
    if (s->started_fd < 0)
        return jm_decision_completed("ran in the parent", NULL);
    if (write(s->started_fd, STARTED, STARTED_LEN) != STARTED_LEN)
        return jm_decision_failed("cannot report", NULL);
    /* Blocks until the parent closes the pipe or kills this process. */
    char b;
    while (read(s->hold_fd, &b, 1) != 0)
        ;
    return jm_decision_completed("released", NULL);
}

static int register_rv(jm_manager *m, rv_state *s)
{
    jm_executor ex = {JM_EXECUTOR_VERSION, "RV", "recovery", 1, NULL, rv_exec, NULL, JM_CLASS_NORMAL, NULL};
    return jm_register(m, &ex, s);
}

static jm_manager *open_mgr(const fixture *f, jm_recovery_policy policy, tu_clock *clk,
                            rv_state *s)
{
    jm_config cfg = tu_config(f->db);
    cfg.recovery = policy;
    if (clk) {
        cfg.now_ms = tu_fake_now;
        cfg.now_user = clk;
    }
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc != JM_OK)
        fail_msg("jm_open: %s (%s)", jm_err_name(rc), jm_last_error());
    if (s) {
        rc = register_rv(m, s);
        if (rc != JM_OK)
            fail_msg("jm_register: %s (%s)", jm_err_name(rc), jm_last_error());
    }
    return m;
}

/* Creates `n` RV jobs (with max_retries, < 0 for the default) and closes the
 * manager again, so nothing is open across fork(). */
static void create_jobs(const fixture *f, int n, int max_retries, char (*ids)[JM_JOB_ID_SIZE])
{
    rv_state s = {-1, -1, 0};
    jm_manager *m = open_mgr(f, JM_RECOVER_RETRY, NULL, &s);
    for (int i = 0; i < n; i++) {
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.max_retries = max_retries;
        int rc = jm_create(m, "RV", NULL, &o, ids[i]);
        if (rc != JM_OK)
            fail_msg("jm_create: %s (%s)", jm_err_name(rc), jm_last_error());
    }
    jm_close(m);
}

typedef struct child_arg {
    const char *db;
    const char *node_id;
    int workers;
    int started_fd;
    int hold_fd;
} child_arg;

static int blocker_child(const child_arg *a)
{
    static rv_state s;
    s.started_fd = a->started_fd;
    s.hold_fd = a->hold_fd;
    jm_config cfg = tu_config(a->db);
    cfg.node_id = a->node_id;
    jm_manager *m = NULL;
    if (jm_open(&cfg, &m) != JM_OK) {
        fprintf(stderr, "child: jm_open: %s\n", jm_last_error());
        return 10;
    }
    if (register_rv(m, &s) != JM_OK)
        return 11;
    if (jm_start(m, a->workers) != JM_OK)
        return 12;
    /* Until the parent kills us (or goes away). */
    char b;
    while (read(a->hold_fd, &b, 1) != 0)
        ;
    return 0;
}

static int read_exact(int fd, char *buf, size_t n, int64_t timeout_ms)
{
    size_t got = 0;
    int64_t end = tu_mono_ms() + timeout_ms;
    while (got < n) {
        int64_t left = end - tu_mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

/* Forks a worker process running `workers` RV jobs at once, and returns once
 * `jobs` of them have started in it. */
static void start_blocker(fixture *f, const char *node_id, int workers, int jobs)
{
    int started[2], hold[2];
    assert_int_equal(pipe2(started, O_CLOEXEC), 0);
    assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(started[0]);
        close(hold[1]);
        child_arg a = {f->db, node_id, workers, started[1], hold[0]};
        _exit(blocker_child(&a));
    }
    f->child = pid;
    close(started[1]);
    close(hold[0]);
    f->started_rd = started[0];
    f->hold_wr = hold[1];
    char buf[STARTED_LEN * 16];
    assert_true(jobs <= 16);
    if (read_exact(f->started_rd, buf, (size_t)jobs * STARTED_LEN, TU_TIMEOUT_MS) != 0)
        fail_msg("the worker process did not start %d job(s)", jobs);
}

typedef struct child_wait {
    pid_t pid;
    int status;
    int done;
} child_wait;

static int child_exited(void *arg)
{
    child_wait *w = arg;
    if (!w->done && waitpid(w->pid, &w->status, WNOHANG) == w->pid)
        w->done = 1;
    return w->done;
}

static void kill_blocker(fixture *f)
{
    assert_true(f->child > 0);
    assert_int_equal(kill(f->child, SIGKILL), 0);
    child_wait w = {f->child, 0, 0};
    if (!tu_wait_until(child_exited, &w, TU_TIMEOUT_MS))
        fail_msg("child %d survived SIGKILL", (int)f->child);
    f->child = 0;
    close_pipes(f);
    if (!WIFSIGNALED(w.status))
        fail_msg("child exited with %d before it was killed",
                 WIFEXITED(w.status) ? WEXITSTATUS(w.status) : -1);
    assert_int_equal(WTERMSIG(w.status), SIGKILL);
}

static void check_job(jm_manager *m, const char *id, jm_status st, int retry_count,
                      const char *message)
{
    jm_job *j = NULL;
    int rc = jm_get(m, id, &j);
    if (rc != JM_OK)
        fail_msg("jm_get(%s): %s", id, jm_err_name(rc));
    jm_status got = jm_job_status(j);
    int rcnt = jm_job_retry_count(j);
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", jm_job_message(j) ? jm_job_message(j) : "(null)");
    jm_job_free(j);
    if (got != st)
        fail_msg("job %s is %s (message \"%s\"), want %s", id, jm_status_name(got), msg,
                 jm_status_name(st));
    if (retry_count >= 0 && rcnt != retry_count)
        fail_msg("job %s has retry_count %d, want %d", id, rcnt, retry_count);
    if (message && strcmp(msg, message) != 0)
        fail_msg("job %s has message \"%s\", want \"%s\"", id, msg, message);
}

static int64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------
 * SIGKILL mid-job, then a new manager's jm_open recovers it
 * ------------------------------------------------------------------------ */

static void test_sigkill_recover_retry(void **state)
{
    fixture *f = *state;
    char id[1][JM_JOB_ID_SIZE];
    create_jobs(f, 1, -1, id);
    start_blocker(f, NULL, 1, 1);
    kill_blocker(f);

    rv_state s = {-1, -1, 0};
    jm_manager *m = open_mgr(f, JM_RECOVER_RETRY, NULL, &s);
    check_job(m, id[0], JM_STATUS_RETRYING, 1, RECOVERED_MSG);
    jm_job *j = NULL;
    assert_int_equal(jm_get(m, id[0], &j), JM_OK);
    assert_int_equal(jm_job_attempts(j), 1);
    assert_int_equal(jm_job_cancel_requested(j), 0);
    jm_job_free(j);
    /* Recovery is done: a second pass finds nothing. */
    int n = -1;
    assert_int_equal(jm_recover(m, &n), JM_OK);
    assert_int_equal(n, 0);

    /* Due now: it runs to completion on this thread. */
    int ran = -1;
    assert_int_equal(jm_run_once(m, 10, &ran), JM_OK);
    assert_int_equal(ran, 1);
    assert_int_equal(atomic_load(&s.runs), 1);
    check_job(m, id[0], JM_STATUS_COMPLETED, 1, NULL);
    jm_close(m);
}

static void test_sigkill_recover_fail(void **state)
{
    fixture *f = *state;
    char id[1][JM_JOB_ID_SIZE];
    create_jobs(f, 1, -1, id);
    start_blocker(f, NULL, 1, 1);
    kill_blocker(f);

    rv_state s = {-1, -1, 0};
    jm_manager *m = open_mgr(f, JM_RECOVER_FAIL, NULL, &s);
    check_job(m, id[0], JM_STATUS_FAILED, -1, RESTARTED_MSG);
    int ran = -1;
    assert_int_equal(jm_run_once(m, 10, &ran), JM_OK);
    assert_int_equal(ran, 0);
    assert_int_equal(atomic_load(&s.runs), 0);
    check_job(m, id[0], JM_STATUS_FAILED, -1, RESTARTED_MSG);
    jm_close(m);
}

/* A job that has no retry left fails instead of being requeued. */
static void test_sigkill_recover_retry_exhausted(void **state)
{
    fixture *f = *state;
    char id[1][JM_JOB_ID_SIZE];
    create_jobs(f, 1, 0, id);
    start_blocker(f, NULL, 1, 1);
    kill_blocker(f);

    rv_state s = {-1, -1, 0};
    jm_manager *m = open_mgr(f, JM_RECOVER_RETRY, NULL, &s);
    check_job(m, id[0], JM_STATUS_FAILED, -1, "Max retries exceeded");
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * A cancel accepted while the job ran survives its worker's death
 * ------------------------------------------------------------------------ */

static void test_cancel_survives_worker_death(void **state)
{
    fixture *f = *state;
    char id[1][JM_JOB_ID_SIZE];
    create_jobs(f, 1, -1, id);
    start_blocker(f, NULL, 1, 1);

    rv_state s = {-1, -1, 0};
    jm_manager *m = open_mgr(f, JM_RECOVER_RETRY, NULL, &s);
    /* The owner is alive: opening recovered nothing. */
    check_job(m, id[0], JM_STATUS_RUNNING, 0, NULL);
    int rc = jm_cancel(m, id[0]);
    if (rc != JM_OK)
        fail_msg("jm_cancel: %s (%s)", jm_err_name(rc), jm_last_error());
    jm_job *j = NULL;
    assert_int_equal(jm_get(m, id[0], &j), JM_OK);
    assert_int_equal(jm_job_status(j), JM_STATUS_RUNNING);
    assert_int_not_equal(jm_job_cancel_requested(j), 0);
    jm_job_free(j);

    kill_blocker(f);
    int n = -1;
    assert_int_equal(jm_recover(m, &n), JM_OK);
    assert_int_equal(n, 1);
    check_job(m, id[0], JM_STATUS_CANCELLED, 0, NULL);
    int ran = -1;
    assert_int_equal(jm_run_once(m, 10, &ran), JM_OK);
    assert_int_equal(ran, 0);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * Another node's live worker: recovered only after its lease expires
 * ------------------------------------------------------------------------ */

static void test_foreign_node_lease_expiry(void **state)
{
    fixture *f = *state;
    char id[1][JM_JOB_ID_SIZE];
    create_jobs(f, 1, -1, id);
    start_blocker(f, "other-host", 1, 1);

    tu_clock clk;
    atomic_store(&clk.now, real_now_ms());
    rv_state s = {-1, -1, 0};
    jm_manager *m = open_mgr(f, JM_RECOVER_RETRY, &clk, &s);
    jm_config cfg = tu_config(f->db);

    /* This host cannot tell whether that process lives: its lease holds. */
    check_job(m, id[0], JM_STATUS_RUNNING, 0, NULL);
    int n = -1;
    assert_int_equal(jm_recover(m, &n), JM_OK);
    assert_int_equal(n, 0);
    check_job(m, id[0], JM_STATUS_RUNNING, 0, NULL);
    {
        jm_job *j = NULL;
        assert_int_equal(jm_get(m, id[0], &j), JM_OK);
        const char *node = jm_job_node_id(j);
        assert_non_null(node);
        assert_string_equal(node, "other-host");
        jm_job_free(j);
    }

    /* Well past the lease by this manager's clock (the worker keeps
     * renewing it by the real one). */
    tu_clock_advance(&clk, 30 * cfg.lease_ms);
    n = -1;
    assert_int_equal(jm_recover(m, &n), JM_OK);
    assert_int_equal(n, 1);
    check_job(m, id[0], JM_STATUS_RETRYING, 1, RECOVERED_MSG);
    n = -1;
    assert_int_equal(jm_recover(m, &n), JM_OK);
    assert_int_equal(n, 0);

    kill_blocker(f);
    check_job(m, id[0], JM_STATUS_RETRYING, 1, RECOVERED_MSG);
    jm_close(m);
}

/* ------------------------------------------------------------------------
 * Two managers recover the same dead owner's jobs at once
 * ------------------------------------------------------------------------ */

#define RACE_JOBS 4
#define RACE_ROUNDS 3

typedef struct recover_arg {
    jm_manager *m;
    pthread_barrier_t *barrier;
    int rc;
    int recovered;
} recover_arg;

static void *recover_thread(void *arg)
{
    recover_arg *a = arg;
    pthread_barrier_wait(a->barrier);
    a->rc = jm_recover(a->m, &a->recovered);
    return NULL;
}

static void test_concurrent_recover_once(void **state)
{
    fixture *f = *state;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        /* A fresh database each round: the jobs recovered in the previous
         * one are due again and would be claimed by the next worker. */
        char name[32];
        snprintf(name, sizeof name, "jobs-%d.db", round);
        free(f->db);
        f->db = tu_path(f->dir, name);
        assert_non_null(f->db);
        char ids[RACE_JOBS][JM_JOB_ID_SIZE];
        create_jobs(f, RACE_JOBS, -1, ids);
        start_blocker(f, NULL, RACE_JOBS, RACE_JOBS);

        /* Both open while the owner lives, so neither jm_open recovers. */
        rv_state s1 = {-1, -1, 0}, s2 = {-1, -1, 0};
        jm_manager *m1 = open_mgr(f, JM_RECOVER_RETRY, NULL, &s1);
        jm_manager *m2 = open_mgr(f, JM_RECOVER_RETRY, NULL, &s2);
        for (int i = 0; i < RACE_JOBS; i++)
            check_job(m1, ids[i], JM_STATUS_RUNNING, 0, NULL);
        kill_blocker(f);

        pthread_barrier_t barrier;
        assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
        recover_arg a1 = {m1, &barrier, -100, -1}, a2 = {m2, &barrier, -100, -1};
        pthread_t t1, t2;
        assert_int_equal(pthread_create(&t1, NULL, recover_thread, &a1), 0);
        assert_int_equal(pthread_create(&t2, NULL, recover_thread, &a2), 0);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        pthread_barrier_destroy(&barrier);

        if (a1.rc != JM_OK || a2.rc != JM_OK)
            fail_msg("jm_recover: %s / %s", jm_err_name(a1.rc), jm_err_name(a2.rc));
        if (a1.recovered + a2.recovered != RACE_JOBS)
            fail_msg("round %d: recovered %d + %d, want %d in all", round, a1.recovered,
                     a2.recovered, RACE_JOBS);
        for (int i = 0; i < RACE_JOBS; i++)
            check_job(m2, ids[i], JM_STATUS_RETRYING, 1, RECOVERED_MSG);
        jm_close(m1);
        jm_close(m2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_recover_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_recover_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_recover_retry_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_survives_worker_death, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_node_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_recover_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
