/*
 * Wake-ups across processes (src/store/sqlite/sqlite_wake.c,
 * src/core/wake.c): a job created by another process starts at once, not
 * at the poll; a post never wakes a sleeper of its own process (a process
 * alone pays no system call); a sleeper killed in its sleep leaves no
 * lasting trace; and without a channel the poll still finds every job.
 * Children are this program run again with a mode (a process with threads
 * may only exec after fork); they never use cmocka.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobmgr.h"
#include "sqlite_internal.h"
#include "store.h"
#include "test_util.h"

/* So long that a job found within it was not found by polling. */
#define NO_POLL_MS 600000

typedef struct fixture {
    char *dir;
    char *db;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    *state = f;
    return 0;
}

/* Children still to reap: a failed assertion must not leave them running. */
static pid_t kids[8];
static int nkids;

static pid_t track(pid_t pid)
{
    if (pid > 0 && nkids < 8)
        kids[nkids++] = pid;
    return pid;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < nkids; i++)
        if (kill(kids[i], SIGKILL) == 0)
            waitpid(kids[i], NULL, 0);
    nkids = 0;
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static pid_t spawn(const char *mode, const char *db, const char *arg);

/* --- the channel itself, through the store interface ------------------- */

static jm__store *open_store(const char *db)
{
    jm__store_config c = {db, NULL, 20000, 0, 1, NULL, NULL};
    jm__store *s = NULL;
    assert_int_equal(jm__sqlite_store.open(&c, &s), JM_OK);
    return s;
}

static void own_posts_never_wake_own_sleepers(void **state)
{
    fixture *f = *state;
    jm__store *s = open_store(f->db);
    const jm__store_ops *ops = &jm__sqlite_store;
    jm__wake *a = NULL, *b = NULL;
    assert_int_equal(ops->wake_open(s, &a), JM_OK);
    assert_int_equal(ops->wake_open(s, &b), JM_OK);

    /* A post of another process wakes a sleeper here. */
    uint64_t seen = ops->wake_seq(a);
    pid_t pid = spawn("--poster", f->db, "0");
    assert_true(pid > 0);
    int64_t t0 = tu_mono_ms();
    assert_int_equal(ops->wake_wait(a, &seen, TU_TIMEOUT_MS), 1);
    assert_true(tu_mono_ms() - t0 < TU_TIMEOUT_MS);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* A post of this process counts, but wakes nobody here: a sleeper
     * still sleeps its whole timeout, then sees the count moved. */
    uint64_t before = ops->wake_seq(b);
    ops->wake_post(b);
    assert_int_equal(ops->wake_seq(a), before + 1);
    seen = ops->wake_seq(a);
    t0 = tu_mono_ms();
    assert_int_equal(ops->wake_wait(a, &seen, 200), 0);
    assert_true(tu_mono_ms() - t0 >= 150);

    ops->wake_close(a);
    ops->wake_close(b);
    jm__sqlite_store.close(s);
}

/* --- managers in several processes -------------------------------------- */

static _Atomic int started;

static jm_decision count_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    atomic_fetch_add(&started, 1);
    return jm_decision_completed(NULL, NULL);
}

static const jm_executor counter = {
    .version = JM_EXECUTOR_VERSION, .type = "WK", .name = "wake",
    .cancellable = 1, .execute = count_execute,
};

static int started_at_least(void *arg)
{
    return atomic_load(&started) >= *(int *)arg;
}

/* Children are this program again, run with a mode (see main): a child
 * forked from a process with threads may only exec. */
static pid_t spawn(const char *mode, const char *db, const char *arg)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_wake", mode, db, arg, (char *)NULL);
        _exit(127);
    }
    return track(pid);
}

static pid_t spawn_creator(const char *db, int n)
{
    char arg[16];
    snprintf(arg, sizeof arg, "%d", n);
    return spawn("--creator", db, arg);
}

static pid_t spawn_sleeper(const char *db)
{
    return spawn("--sleeper", db, "0");
}

/* --poster DB: posts once on the channel, a moment after it started. */
static int child_poster(const char *db)
{
    jm__store_config c = {db, NULL, 20000, 0, 1, NULL, NULL};
    jm__store *s = NULL;
    jm__wake *w = NULL;
    if (jm__sqlite_store.open(&c, &s) != JM_OK || jm__sqlite_store.wake_open(s, &w) != JM_OK)
        return 2;
    usleep(100000); /* let the parent fall asleep; either order must work */
    jm__sqlite_store.wake_post(w);
    jm__sqlite_store.wake_close(w);
    jm__sqlite_store.close(s);
    return 0;
}

/* --creator DB N: opens a manager and creates N jobs, one per call. */
static int child_creator(const char *db, int n)
{
    jm_config cfg = tu_config(db);
    jm_manager *m = NULL;
    if (jm_open(&cfg, &m) != JM_OK || jm_register(m, &counter, NULL) != JM_OK)
        return 2;
    for (int i = 0; i < n; i++) {
        char id[JM_JOB_ID_SIZE];
        if (jm_create(m, "WK", "{}", NULL, id) != JM_OK)
            return 3;
    }
    jm_close(m);
    return 0;
}

/* --sleeper DB: runs an idle pool of another type until killed: it sleeps
 * on the channel and is woken by every post, but never takes a WK job. */
static jm_decision other_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed(NULL, NULL);
}

static const jm_executor other = {
    .version = JM_EXECUTOR_VERSION, .type = "ZZ", .name = "other",
    .cancellable = 1, .execute = other_execute,
};

static int child_sleeper(const char *db)
{
    jm_config cfg = tu_config(db);
    cfg.poll_interval_ms = NO_POLL_MS;
    jm_manager *m = NULL;
    if (jm_open(&cfg, &m) != JM_OK || jm_register(m, &other, NULL) != JM_OK)
        return 2;
    jm_run(m, 1);
    return 0;
}

typedef struct sleepers {
    jm__wake *w;
    int want;
} sleepers;

static int enough_sleep(void *arg)
{
    sleepers *s = arg;
    return jm__sqlite_wake_sleepers(s->w) >= s->want;
}

static void reap_ok(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static jm_manager *open_runner(const char *db, int64_t poll_ms)
{
    jm_config cfg = tu_config(db);
    cfg.poll_interval_ms = poll_ms;
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    assert_int_equal(jm_register(m, &counter, NULL), JM_OK);
    assert_int_equal(jm_start(m, 2), JM_OK);
    return m;
}

/* Waits until `n` WK jobs completed; returns how long it took. */
static int64_t wait_completed(jm_manager *m, int64_t n)
{
    jm_filter done = JM_FILTER_INIT;
    done.type = "WK";
    done.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
    int64_t t0 = tu_mono_ms(), got = 0;
    while (tu_mono_ms() - t0 < TU_TIMEOUT_MS) {
        assert_int_equal(jm_count(m, &done, &got), JM_OK);
        if (got >= n)
            break;
        usleep(500);
    }
    assert_int_equal(got, n);
    return tu_mono_ms() - t0;
}

static void another_process_job_starts_at_once(void **state)
{
    fixture *f = *state;
    atomic_store(&started, 0);
    /* A first job, there before the pool starts: once it ran, the pool's
     * first claim is behind it and it next polls in ten minutes. */
    jm_config cfg = tu_config(f->db);
    jm_manager *pre = NULL;
    assert_int_equal(jm_open(&cfg, &pre), JM_OK);
    assert_int_equal(jm_register(pre, &counter, NULL), JM_OK);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(pre, "WK", "{}", NULL, id), JM_OK);
    jm_close(pre);
    jm_manager *m = open_runner(f->db, NO_POLL_MS);
    int one = 1;
    assert_true(tu_wait_until(started_at_least, &one, TU_TIMEOUT_MS));

    /* Two more processes sleep on the channel; one is killed in its sleep. */
    jm__store *s = open_store(f->db);
    sleepers sl = {NULL, 3};
    assert_int_equal(jm__sqlite_store.wake_open(s, &sl.w), JM_OK);
    pid_t dead = spawn_sleeper(f->db);
    pid_t alive = spawn_sleeper(f->db);
    assert_true(tu_wait_until(enough_sleep, &sl, TU_TIMEOUT_MS));
    kill(dead, SIGKILL);
    waitpid(dead, NULL, 0);

    pid_t c = spawn_creator(f->db, 1);
    reap_ok(c);
    int64_t took = wait_completed(m, 2);
    printf("# a job of another process ran %lld ms after its creator exited\n",
           (long long)took);
    c = spawn_creator(f->db, 20);
    reap_ok(c);
    wait_completed(m, 22);

    kill(alive, SIGKILL);
    waitpid(alive, NULL, 0);
    jm__sqlite_store.wake_close(sl.w);
    jm__sqlite_store.close(s);
    jm_close(m);
}

static void without_a_channel_the_poll_finds_every_job(void **state)
{
    fixture *f = *state;
    atomic_store(&started, 0);
    /* A directory where the channel's file would be: it cannot open. */
    char *wake = tu_path(f->dir, "jobs.db-jm-wake");
    assert_int_equal(mkdir(wake, 0700), 0);
    jm_manager *m = open_runner(f->db, 100);
    pid_t c = spawn_creator(f->db, 50);
    reap_ok(c);
    int want = 50;
    assert_true(tu_wait_until(started_at_least, &want, TU_TIMEOUT_MS));
    jm_close(m);
    rmdir(wake);
    free(wake);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--poster") == 0)
        return child_poster(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--creator") == 0)
        return child_creator(argv[2], atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "--sleeper") == 0)
        return child_sleeper(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(own_posts_never_wake_own_sleepers, setup, teardown),
        cmocka_unit_test_setup_teardown(another_process_job_starts_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(without_a_channel_the_poll_finds_every_job, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
