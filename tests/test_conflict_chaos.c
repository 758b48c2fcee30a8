/*
 * Conflicts and limits under crashes: 3 processes share one database of
 * jobs of 8 types on 5 resources, with a conflict matrix and limits; jobs
 * of random length record the interval they ran in a side file, and
 * workers are SIGKILLed at random and replaced. Afterwards: no two
 * conflicting jobs ever ran at once on one resource, no limit was ever
 * exceeded, and every job completed (so no resource starved).
 *
 * A killed process's open run is taken to end when it was killed: nothing
 * can have started beside it legitimately before then. Children never use
 * cmocka and end with _exit(); no connection is open across a fork().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define NPROC 3
#define NTYPES 8
#define NRES 5
#define NJOBS 480
#define NKILLS 8
#define WORKERS 3

static const char *const types[NTYPES] = {"AA", "BB", "CC", "DD", "EE", "FF", "GG", "HH"};

/* The matrix the database is given, as the check reads it. */
static int exclusive(int a, int b)
{
    if (a == 4 || b == 4) /* EE excludes every type */
        return 1;
    if (a > b) {
        int t = a;
        a = b;
        b = t;
    }
    return (a == 0 && b == 0) || (a == 0 && b == 1) || (a == 2 && b == 3);
}

static void set_rules(jm_manager *m)
{
#ifdef CHAOS_NO_RULES
    return;
#endif
    assert_int_equal(jm_conflict_set(m, "AA", "AA", 1), JM_OK);
    assert_int_equal(jm_conflict_set(m, "BB", "AA", 1), JM_OK);
    assert_int_equal(jm_conflict_set(m, "CC", "DD", 1), JM_OK);
    assert_int_equal(jm_conflict_set(m, "EE", "*", 1), JM_OK);
    assert_int_equal(jm_limit_set(m, "FF", NULL, 1), JM_OK);            /* FF: one at a time */
    assert_int_equal(jm_limit_set(m, NULL, JM_EACH_RESOURCE, 2), JM_OK); /* two per resource */
    assert_int_equal(jm_limit_set(m, "GG", "r0", 1), JM_OK);
    assert_int_equal(jm_limit_set(m, "HH", JM_EACH_RESOURCE, 1), JM_OK);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the children ---- */

typedef struct child_ctx {
    int fd; /* the side file, O_APPEND */
} child_ctx;

static void put(int fd, const char *line)
{
    size_t n = strlen(line);
    if (write(fd, line, n) != (ssize_t)n)
        _exit(3);
}

static jm_decision run_job(void *self, jm_ctx *ctx)
{
    child_ctx *c = self;
    const jm_job *j = jm_ctx_job(ctx);
    char line[256];
    snprintf(line, sizeof line, "S %s %d %d %s %s %lld\n", jm_job_id(j), jm_job_attempts(j),
             (int)getpid(), jm_job_type(j), jm_job_resource(j), (long long)mono_ns());
    put(c->fd, line);
    unsigned seed = (unsigned)(mono_ns() ^ getpid());
    struct timespec ts = {0, (long)(2 + rand_r(&seed) % 30) * 1000000L};
    nanosleep(&ts, NULL);
    snprintf(line, sizeof line, "E %s %d %d %lld\n", jm_job_id(j), jm_job_attempts(j),
             (int)getpid(), (long long)mono_ns());
    put(c->fd, line);
    return jm_decision_completed("ok", NULL);
}

static void child_main(const char *db, const char *side)
{
    child_ctx c = {open(side, O_WRONLY | O_APPEND)};
    if (c.fd < 0)
        _exit(2);
    jm_config cfg = tu_config(db);
    jm_manager *m = NULL;
    if (jm_open(&cfg, &m) != JM_OK)
        _exit(4);
    for (int i = 0; i < NTYPES; i++) {
        jm_executor ex = {JM_EXECUTOR_VERSION, types[i], "chaos", 1, NULL, run_job, NULL,
                          JM_CLASS_NORMAL, NULL};
        if (jm_register(m, &ex, &c) != JM_OK)
            _exit(5);
    }
    if (jm_start(m, WORKERS) != JM_OK)
        _exit(6);
    for (;;)
        pause();
}

/* ---- the parent ---- */

typedef struct fx {
    char *dir, *db, *side;
    pid_t pids[NPROC];
    pid_t killed[NKILLS];
    int64_t killed_at[NKILLS];
    int nkilled;
} fx;

static pid_t spawn(fx *f)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_main(f->db, f->side);
    return pid;
}

static void kill_one(fx *f, int i)
{
    f->killed[f->nkilled] = f->pids[i];
    f->killed_at[f->nkilled++] = mono_ns();
    kill(f->pids[i], SIGKILL);
    waitpid(f->pids[i], NULL, 0);
    f->pids[i] = 0;
}

typedef struct run {
    char id[JM_JOB_ID_SIZE];
    int attempt, pid, type, res;
    int64_t start, end;
} run;

static int type_index(const char *t)
{
    for (int i = 0; i < NTYPES; i++)
        if (strcmp(types[i], t) == 0)
            return i;
    return -1;
}

/* Reads the side file into runs; an open run ends at its process's kill. */
static run *read_runs(fx *f, size_t *n)
{
    FILE *in = fopen(f->side, "r");
    assert_non_null(in);
    size_t cap = 4096, len = 0;
    run *v = calloc(cap, sizeof *v);
    char line[256];
    while (fgets(line, sizeof line, in)) {
        char id[64], type[8], res[16];
        int attempt, pid;
        long long t;
        if (sscanf(line, "S %63s %d %d %7s %15s %lld", id, &attempt, &pid, type, res, &t) == 6) {
            assert_true(len < cap);
            run *r = &v[len++];
            snprintf(r->id, sizeof r->id, "%.39s", id);
            r->attempt = attempt;
            r->pid = pid;
            r->type = type_index(type);
            r->res = res[0] == 'r' ? atoi(res + 1) : -1;
            r->start = t;
            r->end = -1;
        } else if (sscanf(line, "E %63s %d %d %lld", id, &attempt, &pid, &t) == 4) {
            for (size_t i = len; i-- > 0;)
                if (v[i].pid == pid && v[i].attempt == attempt && strcmp(v[i].id, id) == 0) {
                    v[i].end = t;
                    break;
                }
        }
    }
    fclose(in);
    for (size_t i = 0; i < len; i++) {
        if (v[i].end >= 0)
            continue;
        for (int k = 0; k < f->nkilled; k++)
            if (f->killed[k] == v[i].pid)
                v[i].end = f->killed_at[k];
        if (v[i].end < 0)
            fail_msg("run of %s in live process %d never ended", v[i].id, v[i].pid);
    }
    *n = len;
    return v;
}

static int overlap(const run *a, const run *b)
{
    return a->start < b->end && b->start < a->end;
}

/* The most runs matching `match` at once, at some run's start. */
static int peak(const run *v, size_t n, int (*match)(const run *r, int arg), int arg)
{
    int most = 0;
    for (size_t i = 0; i < n; i++) {
        if (!match(&v[i], arg))
            continue;
        int at = 0;
        for (size_t k = 0; k < n; k++)
            at += match(&v[k], arg) && v[k].start <= v[i].start && v[i].start < v[k].end;
        if (at > most)
            most = at;
    }
    return most;
}

static int of_type(const run *r, int t)
{
    return r->type == t;
}

static int on_res(const run *r, int res)
{
    return r->res == res;
}

static int gg_on_r0(const run *r, int unused)
{
    (void)unused;
    return r->type == 6 && r->res == 0;
}

static int hh_on(const run *r, int res)
{
    return r->type == 7 && r->res == res;
}

static void conflicts_and_limits_hold_under_kills(void **state)
{
    (void)state;
    fx f;
    memset(&f, 0, sizeof f);
    f.dir = tu_tmpdir();
    f.db = tu_path(f.dir, "jobs.db");
    f.side = tu_path(f.dir, "runs.log");
    int fd = open(f.side, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);

    jm_config cfg = tu_config(f.db);
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    for (int i = 0; i < NTYPES; i++) {
        jm_executor ex = {JM_EXECUTOR_VERSION, types[i], "chaos", 1, NULL, run_job, NULL,
                          JM_CLASS_NORMAL, NULL};
        assert_int_equal(jm_register(m, &ex, NULL), JM_OK);
    }
    set_rules(m);
    unsigned seed = 12345;
    jm_new_job *jobs = calloc(NJOBS, sizeof *jobs);
    char (*ids)[JM_JOB_ID_SIZE] = calloc(NJOBS, JM_JOB_ID_SIZE);
    char res[NRES][4];
    for (int r = 0; r < NRES; r++)
        snprintf(res[r], sizeof res[r], "r%d", r);
    for (int i = 0; i < NJOBS; i++) {
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.resource = res[rand_r(&seed) % NRES];
        o.priority = (int)(rand_r(&seed) % 4);
        o.max_retries = 100; /* kills spend retries: none may fail for it */
        jm_new_job j = {types[rand_r(&seed) % NTYPES], NULL, o};
        jobs[i] = j;
    }
    assert_int_equal(jm_create_many(m, jobs, NJOBS, ids), JM_OK);
    free(jobs);
    free(ids);
    jm_close(m); /* nothing open across fork() */

    for (int i = 0; i < NPROC; i++)
        f.pids[i] = spawn(&f);
    /* Kill one at random every 60-200 ms, replacing it, while work remains. */
    int64_t deadline = tu_mono_ms() + 240000;
    while (tu_mono_ms() < deadline) {
        int64_t done = tu_sql_int(f.db, "SELECT count(*) FROM jm_jobs WHERE status = 4");
        int64_t bad = tu_sql_int(f.db, "SELECT count(*) FROM jm_jobs WHERE status IN (5, 6)");
        assert_int_equal(bad, 0);
        if (done == NJOBS)
            break;
        struct timespec ts = {0, (long)(60 + rand_r(&seed) % 140) * 1000000L};
        nanosleep(&ts, NULL);
        if (f.nkilled < NKILLS) {
            int i = (int)(rand_r(&seed) % NPROC);
            kill_one(&f, i);
            f.pids[i] = spawn(&f);
        }
    }
    for (int i = 0; i < NPROC; i++)
        if (f.pids[i]) {
            kill(f.pids[i], SIGKILL);
            waitpid(f.pids[i], NULL, 0);
        }
    assert_int_equal(tu_sql_int(f.db, "SELECT count(*) FROM jm_jobs WHERE status = 4"), NJOBS);
    assert_true(f.nkilled > 0);

    size_t n = 0;
    run *v = read_runs(&f, &n);
    assert_true(n >= NJOBS);
    print_message("%zu runs of %d jobs, %d process(es) killed\n", n, NJOBS, f.nkilled);
    for (size_t i = 0; i < n; i++)
        for (size_t k = i + 1; k < n; k++)
            if (v[i].res == v[k].res && exclusive(v[i].type, v[k].type) && overlap(&v[i], &v[k]))
                fail_msg("%s (%s) and %s (%s) ran at once on r%d", v[i].id, types[v[i].type],
                         v[k].id, types[v[k].type], v[i].res);
    assert_true(peak(v, n, of_type, 5) <= 1);
    for (int r = 0; r < NRES; r++) {
        assert_true(peak(v, n, on_res, r) <= 2);
        assert_true(peak(v, n, hh_on, r) <= 1);
    }
    assert_true(peak(v, n, gg_on_r0, 0) <= 1);
    /* Every resource's jobs ran to the end: none starved. */
    for (int r = 0; r < NRES; r++) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM jm_jobs WHERE resource = 'r%d' AND status <> 4", r);
        assert_int_equal(tu_sql_int(f.db, sql), 0);
    }
    free(v);
    free(f.db);
    free(f.side);
    tu_rmdir(f.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conflicts_and_limits_hold_under_kills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
