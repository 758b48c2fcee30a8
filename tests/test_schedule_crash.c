/*
 * Exactly one job per fire time across processes: two processes fire one
 * schedule every second of a shared fake clock for 60 seconds, while a
 * third, firing too, is killed with SIGKILL at random moments and started
 * again. Every fire time must end with exactly one job. Children open
 * their own managers after fork(), never use cmocka and end with _exit().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobmgr.h"
#include "schedule.h"
#include "test_util.h"

#define T0 INT64_C(1800000000000)
#define SECONDS 60

typedef struct shared {
    _Atomic int64_t now;
    _Atomic int stop;
    _Atomic long fires; /* fire passes made, by every child */
} shared;

static shared *sh;

static int64_t shared_now(void *user)
{
    (void)user;
    return atomic_load(&sh->now);
}

static jm_decision never(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed(NULL, NULL);
}

static const jm_executor sj = {JM_EXECUTOR_VERSION, "SJ", "scheduled", 1, NULL, never, NULL, JM_CLASS_NORMAL, NULL};

static jm_config child_config(const char *db)
{
    jm_config cfg = tu_config(db);
    cfg.now_ms = shared_now;
    return cfg;
}

/* A firing process: fires whatever is due until told to stop. */
static void firer(const char *db)
{
    jm_config cfg = child_config(db);
    jm_manager *m = NULL;
    if (jm_open(&cfg, &m) != JM_OK || jm_register(m, &sj, NULL) != JM_OK)
        _exit(2);
    while (!atomic_load(&sh->stop)) {
        int n = 0;
        if (jm__schedules_fire_due(m, &n) != JM_OK && jm_last_error()[0] == '\0')
            _exit(3);
        atomic_fetch_add(&sh->fires, 1);
    }
    jm_close(m);
    _exit(0);
}

static pid_t spawn(const char *db)
{
    pid_t pid = fork();
    if (pid == 0)
        firer(db);
    assert_true(pid > 0);
    return pid;
}

typedef struct wait_arg {
    const char *db;
    int64_t after;
} wait_arg;

/* The schedule's next fire time has moved past `after`: someone fired. */
static int fired_past(void *arg)
{
    wait_arg *w = arg;
    return tu_sql_int(w->db, "SELECT next_fire FROM jm_schedules") > w->after;
}

static void each_fire_time_once_under_kills(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *db = tu_path(dir, "jobs.db");
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    atomic_store(&sh->now, T0);
    {
        jm_config cfg = child_config(db);
        jm_manager *m = NULL;
        assert_int_equal(jm_open(&cfg, &m), JM_OK);
        assert_int_equal(jm_register(m, &sj, NULL), JM_OK);
        jm_schedule_spec s = JM_SCHEDULE_SPEC_INIT;
        s.name = "every-second";
        s.type = "SJ";
        s.interval_ms = 1000;
        s.anchor_ms = T0;
        s.overlap = JM_OVERLAP_ALLOW;
        /* A time no firer was alive for is caught up on, not dropped. */
        s.misfire = JM_MISFIRE_CATCH_UP;
        s.catch_up_max = JM_CATCH_UP_MAX;
        char id[JM_SCHEDULE_ID_SIZE];
        assert_int_equal(jm_schedule_create(m, &s, id), JM_OK);
        jm_close(m);
    }
    pid_t steady[2] = {spawn(db), spawn(db)};
    pid_t victim = spawn(db);
    unsigned seed = (unsigned)time(NULL);
    printf("# seed %u\n", seed);
    int kills = 0;
    for (int k = 1; k <= SECONDS; k++) {
        atomic_store(&sh->now, T0 + k * 1000);
        /* Kill the third firer at a random moment of this second's fire. */
        long before = atomic_load(&sh->fires);
        long wait_passes = rand_r(&seed) % 6;
        while (atomic_load(&sh->fires) < before + wait_passes)
            ;
        kill(victim, SIGKILL);
        waitpid(victim, NULL, 0);
        kills++;
        victim = spawn(db);
        wait_arg w = {db, T0 + (int64_t)k * 1000};
        assert_true(tu_wait_until(fired_past, &w, 60000));
    }
    atomic_store(&sh->stop, 1);
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    for (int i = 0; i < 2; i++) {
        int st = 0;
        assert_int_equal(waitpid(steady[i], &st, 0), steady[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    printf("# %d kills, %ld fire passes\n", kills, atomic_load(&sh->fires));
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM jm_jobs"), SECONDS);
    assert_int_equal(tu_sql_int(db, "SELECT count(DISTINCT fire_time) FROM jm_jobs"), SECONDS);
    assert_int_equal(tu_sql_int(db, "SELECT min(fire_time) FROM jm_jobs"), T0 + 1000);
    assert_int_equal(tu_sql_int(db, "SELECT max(fire_time) FROM jm_jobs"), T0 + SECONDS * 1000);
    assert_int_equal(tu_sql_int(db, "SELECT next_fire FROM jm_schedules"),
                     T0 + (SECONDS + 1) * 1000);
    munmap(sh, sizeof *sh);
    free(db);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_fire_time_once_under_kills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
