/*
 * Several processes on one jobs database: two forked workers share 2000
 * jobs and run each exactly once; a cancel from one process reaches a job
 * running in another. Each process opens its own manager after fork();
 * children never use cmocka and end with _exit().
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
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobmgr.h"
#include "test_util.h"

#define ACTIVE_MASK                                                                         \
    (JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |                       \
     JM_STATUS_BIT(JM_STATUS_RUNNING) | JM_STATUS_BIT(JM_STATUS_RETRYING))
#define FINISHED_MASK                                                                       \
    (JM_STATUS_BIT(JM_STATUS_COMPLETED) | JM_STATUS_BIT(JM_STATUS_FAILED) |                 \
     JM_STATUS_BIT(JM_STATUS_CANCELLED))

/* ------------------------------------------------------------------------
 * Fixture: a temporary directory, and the children still to reap
 * ------------------------------------------------------------------------ */

#define MAX_CHILDREN 4

typedef struct fixture {
    char *dir;
    char *db;
    pid_t children[MAX_CHILDREN];
    int nchildren;
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

/* Kills and reaps any child a failed test left behind. */
static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < f->nchildren; i++) {
        if (f->children[i] > 0) {
            kill(f->children[i], SIGKILL);
            waitpid(f->children[i], NULL, 0);
        }
    }
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static pid_t spawn(fixture *f, int (*child_main)(void *), void *arg)
{
    assert_true(f->nchildren < MAX_CHILDREN);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_main(arg));
    f->children[f->nchildren++] = pid;
    return pid;
}

typedef struct child_wait {
    pid_t pid;
    int status;
    int done;
} child_wait;

static int child_exited(void *arg)
{
    child_wait *w = arg;
    if (w->done)
        return 1;
    pid_t r = waitpid(w->pid, &w->status, WNOHANG);
    if (r == w->pid)
        w->done = 1;
    return w->done;
}

/* Waits for a child to end and asserts it exited with status 0. */
static void reap_ok(fixture *f, pid_t pid, int64_t timeout_ms)
{
    child_wait w = {pid, 0, 0};
    if (!tu_wait_until(child_exited, &w, timeout_ms))
        fail_msg("child %d did not exit", (int)pid);
    for (int i = 0; i < f->nchildren; i++)
        if (f->children[i] == pid)
            f->children[i] = 0;
    if (WIFSIGNALED(w.status))
        fail_msg("child %d killed by signal %d", (int)pid, WTERMSIG(w.status));
    assert_true(WIFEXITED(w.status));
    if (WEXITSTATUS(w.status) != 0)
        fail_msg("child %d exited with %d", (int)pid, WEXITSTATUS(w.status));
}

/* Reads exactly n bytes within timeout_ms; 0 on success, -1 on EOF/timeout. */
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

static int64_t count_mask(jm_manager *m, const char *type, unsigned statuses)
{
    jm_filter f = JM_FILTER_INIT;
    f.type = type;
    f.statuses = statuses;
    int64_t n = -1;
    if (jm_count(m, &f, &n) != JM_OK)
        return -1;
    return n;
}

/* A condition that asks the database at most every 20 ms, so that polling
 * does not compete with the workers for it. */
typedef struct unfinished_wait {
    jm_manager *m;
    const char *type;
    int64_t last_ms;
    int64_t last;
} unfinished_wait;

static int none_unfinished(void *arg)
{
    unfinished_wait *w = arg;
    int64_t now = tu_mono_ms();
    if (w->last_ms != 0 && now - w->last_ms < 20)
        return 0;
    w->last_ms = now;
    w->last = count_mask(w->m, w->type, ACTIVE_MASK);
    return w->last == 0;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Two processes, 2000 jobs: each runs exactly once
 * ------------------------------------------------------------------------ */

#define MP_JOBS 2000

typedef struct ledger_exec_state {
    int fd;
    _Atomic int write_errors;
    _Atomic int runs;
} ledger_exec_state;

static jm_decision ledger_exec(void *self, jm_ctx *ctx)
{
    ledger_exec_state *s = self;
    char line[JM_JOB_ID_SIZE + 1];
    int n = snprintf(line, sizeof line, "%s\n", jm_job_id(jm_ctx_job(ctx)));
    /* One write() per line: O_APPEND keeps lines of both processes whole. */
    if (n != JM_JOB_ID_SIZE || write(s->fd, line, (size_t)n) != n)
        atomic_fetch_add(&s->write_errors, 1);
    atomic_fetch_add(&s->runs, 1);
    return jm_decision_completed(NULL, NULL);
}

typedef struct ledger_child_arg {
    const char *db;
    const char *ledger;
    int runs_fd; /* write end: the child's run count, one int */
} ledger_child_arg;

static int ledger_child(void *arg)
{
    ledger_child_arg *a = arg;
    ledger_exec_state s = {0};
    s.fd = open(a->ledger, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (s.fd < 0)
        return 10;
    jm_config cfg = tu_config(a->db);
    cfg.lease_ms = 30000; /* no lease may expire under load: exactly once */
    jm_manager *m = NULL;
    if (jm_open(&cfg, &m) != JM_OK) {
        fprintf(stderr, "child %d: jm_open: %s\n", (int)getpid(), jm_last_error());
        return 11;
    }
    jm_executor ex = {JM_EXECUTOR_VERSION, "ML", "ledger", 1, NULL, ledger_exec, NULL, JM_CLASS_NORMAL, NULL};
    if (jm_register(m, &ex, &s) != JM_OK)
        return 12;
    if (jm_start(m, 2) != JM_OK)
        return 13;
    unfinished_wait w = {m, "ML", 0, -1};
    int done = tu_wait_until(none_unfinished, &w, 4 * TU_TIMEOUT_MS);
    int stop_rc = jm_stop(m, TU_TIMEOUT_MS);
    jm_close(m);
    close(s.fd);
    int runs = atomic_load(&s.runs);
    if (write(a->runs_fd, &runs, sizeof runs) != (ssize_t)sizeof runs)
        return 17;
    if (!done) {
        fprintf(stderr, "child %d: %lld jobs still unfinished\n", (int)getpid(),
                (long long)w.last);
        return 14;
    }
    if (stop_rc != JM_OK)
        return 15;
    if (atomic_load(&s.write_errors) != 0)
        return 16;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_two_processes_run_each_job_once(void **state)
{
    fixture *f = *state;
    char *ledger = tu_path(f->dir, "ledger.txt");
    assert_non_null(ledger);

    static char ids[MP_JOBS][JM_JOB_ID_SIZE];
    {
        jm_config cfg = tu_config(f->db);
        jm_manager *m = NULL;
        assert_int_equal(jm_open(&cfg, &m), JM_OK);
        ledger_exec_state unused = {0};
        jm_executor ex = {JM_EXECUTOR_VERSION, "ML", "ledger", 1, NULL, ledger_exec, NULL, JM_CLASS_NORMAL, NULL};
        assert_int_equal(jm_register(m, &ex, &unused), JM_OK);
        static jm_new_job jobs[MP_JOBS];
        for (int i = 0; i < MP_JOBS; i++) {
            jm_new_job nj = {"ML", NULL, JM_CREATE_OPTS_INIT};
            jobs[i] = nj;
        }
        int rc = jm_create_many(m, jobs, MP_JOBS, ids);
        if (rc != JM_OK)
            fail_msg("jm_create_many: %s (%s)", jm_err_name(rc), jm_last_error());
        jm_close(m);
    }

    int runs_pipe[2];
    assert_int_equal(pipe2(runs_pipe, O_CLOEXEC), 0);
    ledger_child_arg a = {f->db, ledger, runs_pipe[1]};
    pid_t p1 = spawn(f, ledger_child, &a);
    pid_t p2 = spawn(f, ledger_child, &a);
    close(runs_pipe[1]);
    reap_ok(f, p1, 5 * TU_TIMEOUT_MS);
    reap_ok(f, p2, 5 * TU_TIMEOUT_MS);
    int runs[2] = {-1, -1};
    assert_int_equal(read_exact(runs_pipe[0], (char *)runs, sizeof runs, TU_TIMEOUT_MS), 0);
    close(runs_pipe[0]);
    /* Informative only: how the work was shared is up to the scheduler. */
    print_message("jobs run by each process: %d and %d\n", runs[0], runs[1]);
    assert_int_equal(runs[0] + runs[1], MP_JOBS);

    /* The ledger holds each id exactly once. */
    FILE *fp = fopen(ledger, "r");
    assert_non_null(fp);
    static char seen[MP_JOBS + 16][JM_JOB_ID_SIZE];
    int lines = 0;
    char buf[256];
    while (fgets(buf, sizeof buf, fp)) {
        size_t len = strlen(buf);
        if (len != JM_JOB_ID_SIZE || buf[len - 1] != '\n')
            fail_msg("malformed ledger line %d: \"%s\"", lines + 1, buf);
        buf[len - 1] = '\0';
        if (lines < MP_JOBS + 16)
            memcpy(seen[lines], buf, JM_JOB_ID_SIZE);
        lines++;
    }
    fclose(fp);
    assert_int_equal(lines, MP_JOBS);
    qsort(seen, MP_JOBS, JM_JOB_ID_SIZE, cmp_id);
    qsort(ids, MP_JOBS, JM_JOB_ID_SIZE, cmp_id);
    for (int i = 1; i < MP_JOBS; i++)
        if (strcmp(seen[i - 1], seen[i]) == 0)
            fail_msg("job %s ran more than once", seen[i]);
    for (int i = 0; i < MP_JOBS; i++)
        if (strcmp(seen[i], ids[i]) != 0)
            fail_msg("ledger and created ids differ at %d: %s vs %s", i, seen[i], ids[i]);

    /* And every job is completed, having been claimed once. */
    jm_config cfg = tu_config(f->db);
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    assert_int_equal(count_mask(m, "ML", 0), MP_JOBS);
    assert_int_equal(count_mask(m, "ML", JM_STATUS_BIT(JM_STATUS_COMPLETED)), MP_JOBS);
    jm_job *j = NULL;
    assert_int_equal(jm_get(m, ids[0], &j), JM_OK);
    assert_int_equal(jm_job_attempts(j), 1);
    assert_int_equal(jm_job_retry_count(j), 0);
    jm_job_free(j);
    jm_close(m);
    free(ledger);
}

/* ------------------------------------------------------------------------
 * A cancel from another process reaches a running job
 * ------------------------------------------------------------------------ */

#define XP_LEASE_MS 600

typedef struct xcancel_state {
    int started_fd; /* child: write end of the "started" pipe; -1 in the parent */
    _Atomic int saw_cancel;
    _Atomic int runs;
} xcancel_state;

static int ctx_cancelled(void *arg)
{
    return jm_ctx_is_cancelled((jm_ctx *)arg);
}

static jm_decision xcancel_exec(void *self, jm_ctx *ctx)
{
    xcancel_state *s = self;
    atomic_fetch_add(&s->runs, 1);
    if (s->started_fd >= 0)
        write_all(s->started_fd, "started\n", 8);
    if (!tu_wait_until(ctx_cancelled, ctx, 2 * TU_TIMEOUT_MS))
        return jm_decision_failed("never saw the cancel", NULL);
    atomic_store(&s->saw_cancel, 1);
    return jm_decision_cancelled("cancelled from another process");
}

typedef struct xcancel_child_arg {
    const char *db;
    const char *id;
    int started_fd;
} xcancel_child_arg;

typedef struct job_finished_wait {
    jm_manager *m;
    const char *id;
} job_finished_wait;

static int job_finished(void *arg)
{
    job_finished_wait *w = arg;
    int s = tu_status(w->m, w->id);
    return s == JM_STATUS_COMPLETED || s == JM_STATUS_FAILED || s == JM_STATUS_CANCELLED;
}

static int xcancel_child(void *arg)
{
    xcancel_child_arg *a = arg;
    xcancel_state s = {0};
    s.started_fd = a->started_fd;
    jm_config cfg = tu_config(a->db);
    cfg.lease_ms = XP_LEASE_MS; /* heartbeat every 200 ms */
    jm_manager *m = NULL;
    if (jm_open(&cfg, &m) != JM_OK)
        return 11;
    jm_executor ex = {JM_EXECUTOR_VERSION, "XC", "xcancel", 1, NULL, xcancel_exec, NULL, JM_CLASS_NORMAL, NULL};
    if (jm_register(m, &ex, &s) != JM_OK)
        return 12;
    if (jm_start(m, 1) != JM_OK)
        return 13;
    job_finished_wait w = {m, a->id};
    int done = tu_wait_until(job_finished, &w, 3 * TU_TIMEOUT_MS);
    int status = tu_status(m, a->id);
    jm_stop(m, TU_TIMEOUT_MS);
    jm_close(m);
    close(a->started_fd);
    if (!done)
        return 14;
    if (status != JM_STATUS_CANCELLED)
        return 15;
    if (!atomic_load(&s.saw_cancel))
        return 16;
    if (atomic_load(&s.runs) != 1)
        return 17;
    return 0;
}

static void test_cancel_reaches_other_process(void **state)
{
    fixture *f = *state;
    char id[JM_JOB_ID_SIZE];
    xcancel_state ps = {0};
    ps.started_fd = -1;
    jm_executor ex = {JM_EXECUTOR_VERSION, "XC", "xcancel", 1, NULL, xcancel_exec, NULL, JM_CLASS_NORMAL, NULL};
    {
        jm_config cfg = tu_config(f->db);
        jm_manager *m = NULL;
        assert_int_equal(jm_open(&cfg, &m), JM_OK);
        assert_int_equal(jm_register(m, &ex, &ps), JM_OK);
        assert_int_equal(jm_create(m, "XC", NULL, NULL, id), JM_OK);
        jm_close(m);
    }

    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    xcancel_child_arg a = {f->db, id, p[1]};
    pid_t pid = spawn(f, xcancel_child, &a);
    close(p[1]);
    char buf[8];
    if (read_exact(p[0], buf, 8, TU_TIMEOUT_MS) != 0)
        fail_msg("the child never started the job");
    assert_memory_equal(buf, "started\n", 8);

    jm_config cfg = tu_config(f->db);
    cfg.lease_ms = XP_LEASE_MS;
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    assert_int_equal(jm_register(m, &ex, &ps), JM_OK);
    /* Opening ran recovery: the job's owner is alive, so it still runs. */
    assert_int_equal(tu_status(m, id), JM_STATUS_RUNNING);
    int rc = jm_cancel(m, id);
    if (rc != JM_OK)
        fail_msg("jm_cancel: %s (%s)", jm_err_name(rc), jm_last_error());

    job_finished_wait w = {m, id};
    if (!tu_wait_until(job_finished, &w, TU_TIMEOUT_MS))
        fail_msg("job %s still %s", id, jm_status_name((jm_status)tu_status(m, id)));
    assert_int_equal(tu_status(m, id), JM_STATUS_CANCELLED);
    reap_ok(f, pid, 2 * TU_TIMEOUT_MS);
    assert_int_equal(atomic_load(&ps.runs), 0);
    jm_close(m);
    close(p[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_processes_run_each_job_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_reaches_other_process, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
