/*
 * Idempotency under contention: four threads (each with its own manager, or
 * all sharing one) and two forked processes race to create jobs with the
 * same 50 keys, each creator trying each key many times. At the end every
 * key has exactly one active job, exactly one creation per key succeeded,
 * every JM_ECONFLICT handed back that job's id, and nothing else failed.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobmgr.h"
#include "test_util.h"

#define KEYS 50
#if defined(__SANITIZE_THREAD__)
#define ROUNDS 8 /* ThreadSanitizer is slow; the race is in the first rounds */
#else
#define ROUNDS 20
#endif
#define THREADS 4
#define PROCS 2

#define ACTIVE_MASK                                                                         \
    (JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |                       \
     JM_STATUS_BIT(JM_STATUS_RUNNING) | JM_STATUS_BIT(JM_STATUS_RETRYING))

typedef struct fixture {
    char *dir;
    char *db;
    pid_t children[PROCS];
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
    for (int i = 0; i < PROCS; i++) {
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

static jm_decision noop_exec(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed(NULL, NULL);
}

static int register_noop(jm_manager *m)
{
    jm_executor ex = {JM_EXECUTOR_VERSION, "IR", "race", 1, NULL, noop_exec, NULL, JM_CLASS_NORMAL, NULL};
    return jm_register(m, &ex, NULL);
}

static jm_manager *open_registered(const char *db, int *rc_out)
{
    jm_config cfg = tu_config(db);
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK) {
        rc = register_noop(m);
        if (rc != JM_OK) {
            jm_close(m);
            m = NULL;
        }
    }
    *rc_out = rc;
    return m;
}

/* One creator's view: the id it got back for each key, how many of its
 * creations succeeded, and what went wrong. */
typedef struct creator {
    jm_manager *m;      /* shared manager, or NULL: open one of its own */
    const char *db;
    pthread_barrier_t *barrier;
    char ids[KEYS][JM_JOB_ID_SIZE];
    int successes[KEYS];
    int mismatches;     /* a key's id changed between attempts */
    int bad_ids;        /* a returned id that is not a well-formed job id */
    int other_errors;   /* anything but JM_OK / JM_ECONFLICT */
    int first_error;
    char first_error_msg[256];
    int setup_rc;
} creator;

static void key_name(int k, char *buf, size_t n)
{
    snprintf(buf, n, "race-key-%02d", k);
}

static void create_loop(creator *c, jm_manager *m)
{
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < KEYS; k++) {
            char key[32];
            key_name(k, key, sizeof key);
            jm_create_opts o = JM_CREATE_OPTS_INIT;
            o.idempotency_key = key;
            char id[JM_JOB_ID_SIZE];
            memset(id, 0, sizeof id);
            int rc = jm_create(m, "IR", "{\"x\":1}", &o, id);
            if (rc != JM_OK && rc != JM_ECONFLICT) {
                if (c->other_errors++ == 0) {
                    c->first_error = rc;
                    snprintf(c->first_error_msg, sizeof c->first_error_msg, "%s",
                             jm_last_error());
                }
                continue;
            }
            if (rc == JM_OK)
                c->successes[k]++;
            if (jm_job_id_parse(id, NULL) != JM_OK) {
                c->bad_ids++;
                continue;
            }
            if (c->ids[k][0] == '\0')
                memcpy(c->ids[k], id, JM_JOB_ID_SIZE);
            else if (strcmp(c->ids[k], id) != 0)
                c->mismatches++;
        }
    }
}

static void *creator_thread(void *arg)
{
    creator *c = arg;
    jm_manager *m = c->m;
    if (!m)
        m = open_registered(c->db, &c->setup_rc);
    pthread_barrier_wait(c->barrier);
    if (m)
        create_loop(c, m);
    if (m && !c->m)
        jm_close(m);
    return NULL;
}

/* ------------------------------------------------------------------------
 * The processes: report through a results file
 * ------------------------------------------------------------------------ */

typedef struct proc_arg {
    const char *db;
    const char *results;
    int ready_fd; /* write end: one byte once the manager is open */
    int go_fd;    /* read end: one byte to start */
} proc_arg;

static int proc_main(void *arg)
{
    proc_arg *a = arg;
    static creator c;
    memset(&c, 0, sizeof c);
    int rc;
    jm_manager *m = open_registered(a->db, &rc);
    if (!m)
        return 10;
    if (write(a->ready_fd, "r", 1) != 1)
        return 11;
    char b;
    if (read(a->go_fd, &b, 1) != 1)
        return 12;
    create_loop(&c, m);
    jm_close(m);

    FILE *fp = fopen(a->results, "w");
    if (!fp)
        return 13;
    fprintf(fp, "%d %d %d %d\n", c.other_errors, c.mismatches, c.bad_ids, c.first_error);
    for (int k = 0; k < KEYS; k++)
        fprintf(fp, "%d %s %d\n", k, c.ids[k][0] ? c.ids[k] : "-", c.successes[k]);
    if (fclose(fp) != 0)
        return 14;
    if (c.other_errors) {
        fprintf(stderr, "child %d: %d errors, first %s: %s\n", (int)getpid(),
                c.other_errors, jm_err_name(c.first_error), c.first_error_msg);
        return 15;
    }
    return 0;
}

static void load_results(const char *path, creator *c)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("no results from a child at %s", path);
    memset(c, 0, sizeof *c);
    assert_int_equal(fscanf(fp, "%d %d %d %d", &c->other_errors, &c->mismatches, &c->bad_ids,
                            &c->first_error),
                     4);
    for (int k = 0; k < KEYS; k++) {
        int kk, succ;
        char id[64];
        assert_int_equal(fscanf(fp, "%d %63s %d", &kk, id, &succ), 3);
        assert_int_equal(kk, k);
        c->successes[k] = succ;
        if (strcmp(id, "-") != 0) {
            assert_int_equal(strlen(id), JM_JOB_ID_SIZE - 1);
            memcpy(c->ids[k], id, JM_JOB_ID_SIZE);
        }
    }
    fclose(fp);
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

static int read_byte(int fd, int64_t timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    for (;;) {
        int r = poll(&p, 1, (int)timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        char b;
        ssize_t k = read(fd, &b, 1);
        return k == 1 ? 0 : -1;
    }
}

/* ------------------------------------------------------------------------
 * The race
 * ------------------------------------------------------------------------ */

static void race(fixture *f, int shared_manager)
{
    /* Create the schema first, so the race is about keys, not set-up. */
    {
        int rc;
        jm_manager *m = open_registered(f->db, &rc);
        if (!m)
            fail_msg("jm_open: %s (%s)", jm_err_name(rc), jm_last_error());
        jm_close(m);
    }

    /* Fork before any thread exists. */
    int ready[2], go[2];
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    char *results[PROCS];
    proc_arg pa[PROCS];
    for (int i = 0; i < PROCS; i++) {
        char name[32];
        snprintf(name, sizeof name, "results-%d.txt", i);
        results[i] = tu_path(f->dir, name);
        proc_arg a = {f->db, results[i], ready[1], go[0]};
        pa[i] = a;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(ready[0]);
            close(go[1]);
            _exit(proc_main(&pa[i]));
        }
        f->children[i] = pid;
    }
    close(ready[1]);
    close(go[0]);
    for (int i = 0; i < PROCS; i++)
        if (read_byte(ready[0], TU_TIMEOUT_MS) != 0)
            fail_msg("a child could not open its manager");

    jm_manager *shared = NULL;
    if (shared_manager) {
        int rc;
        shared = open_registered(f->db, &rc);
        if (!shared)
            fail_msg("jm_open: %s (%s)", jm_err_name(rc), jm_last_error());
    }
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, THREADS + 1), 0);
    static creator creators[THREADS + PROCS];
    memset(creators, 0, sizeof creators);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        creators[i].m = shared;
        creators[i].db = f->db;
        creators[i].barrier = &barrier;
        assert_int_equal(pthread_create(&t[i], NULL, creator_thread, &creators[i]), 0);
    }
    /* All go at once: the threads through the barrier, the children
     * through the pipe. */
    assert_int_equal(write(go[1], "gg", PROCS), PROCS);
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    close(go[1]);
    close(ready[0]);

    for (int i = 0; i < PROCS; i++) {
        child_wait w = {f->children[i], 0, 0};
        if (!tu_wait_until(child_exited, &w, 4 * TU_TIMEOUT_MS))
            fail_msg("child %d did not finish", (int)f->children[i]);
        f->children[i] = 0;
        if (!WIFEXITED(w.status) || WEXITSTATUS(w.status) != 0)
            fail_msg("child %d ended with status 0x%x", (int)w.pid, w.status);
        load_results(results[i], &creators[THREADS + i]);
        free(results[i]);
    }

    for (int i = 0; i < THREADS + PROCS; i++) {
        creator *c = &creators[i];
        if (c->setup_rc != JM_OK)
            fail_msg("creator %d could not open a manager: %s", i, jm_err_name(c->setup_rc));
        if (c->other_errors)
            fail_msg("creator %d: %d unexpected errors, first %s (%s)", i, c->other_errors,
                     jm_err_name(c->first_error), c->first_error_msg);
        assert_int_equal(c->bad_ids, 0);
        assert_int_equal(c->mismatches, 0);
    }

    /* Exactly one active job per key, and it is the one everybody saw. */
    jm_manager *m = shared;
    if (!m) {
        int rc;
        m = open_registered(f->db, &rc);
        assert_non_null(m);
    }
    for (int k = 0; k < KEYS; k++) {
        char key[32];
        key_name(k, key, sizeof key);
        jm_filter flt = JM_FILTER_INIT;
        flt.idempotency_key = key;
        flt.statuses = ACTIVE_MASK;
        int64_t n = -1;
        assert_int_equal(jm_count(m, &flt, &n), JM_OK);
        if (n != 1)
            fail_msg("key %s has %lld active jobs", key, (long long)n);
        jm_job_list *l = NULL;
        assert_int_equal(jm_list(m, &flt, &l), JM_OK);
        assert_int_equal(jm_job_list_count(l), 1);
        const char *active = jm_job_id(jm_job_list_at(l, 0));
        assert_string_equal(jm_job_idempotency_key(jm_job_list_at(l, 0)), key);
        int succ = 0;
        for (int i = 0; i < THREADS + PROCS; i++) {
            creator *c = &creators[i];
            succ += c->successes[k];
            if (strcmp(c->ids[k], active) != 0)
                fail_msg("creator %d got %s for key %s, the active job is %s", i, c->ids[k],
                         key, active);
        }
        jm_job_list_free(l);
        if (succ != 1)
            fail_msg("key %s was created %d times", key, succ);
    }
    /* Nothing else was created either. */
    jm_filter all = JM_FILTER_INIT;
    int64_t total = -1;
    assert_int_equal(jm_count(m, &all, &total), JM_OK);
    assert_int_equal(total, KEYS);
    jm_close(m);
}

static void test_race_threads_own_managers_and_processes(void **state)
{
    race(*state, 0);
}

static void test_race_threads_shared_manager_and_processes(void **state)
{
    race(*state, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_race_threads_own_managers_and_processes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_race_threads_shared_manager_and_processes, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
