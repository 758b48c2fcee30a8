/*
 * SQLITE_BUSY under real contention: 4 processes × 4 threads create,
 * claim and run (jm_run_once) and cancel jobs on one database for
 * JM_BUSY_SECONDS (default 20) with busy_timeout_ms 5000. In two of the
 * processes every thread has its own manager; in the other two the
 * threads share one. Every outcome is counted. No operation may fail with
 * anything but its documented answers (JM_ECONFLICT for a held key,
 * JM_ESTATE for cancelling a finished job), and JM_EBUSY only after waiting
 * at least the busy timeout: busy must be waited out inside the library,
 * never surface as an unexplained "database is locked". At this load none
 * is expected at all. The database passes integrity_check at the end and
 * every created job is there and ends completed or cancelled.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobmgr.h"
#include "test_util.h"

#define PROCS 4
#define THREADS 4
#define DEFAULT_SECONDS 20
#define BUSY_TIMEOUT_MS 5000
#define RECENT 64   /* ids a thread remembers to cancel */
#define NKEYS 32    /* idempotency keys shared by everyone */
#define MAX_UNEXPECTED 20

enum { OP_CREATE, OP_RUN, OP_CANCEL, OP_COUNT_ };
static const char *const op_names[OP_COUNT_] = {"create", "run_once", "cancel"};

/* Per process, written to a file for the parent. */
typedef struct tally {
    int64_t ok[OP_COUNT_];
    int64_t conflict;       /* create: key held */
    int64_t estate;         /* cancel: already finished */
    int64_t busy_late;      /* JM_EBUSY after waiting the timeout: allowed */
    int64_t busy_early;     /* JM_EBUSY before it: a bug */
    int64_t unexpected;     /* anything else: a bug */
    int64_t created;        /* jobs that exist because of this process */
    int64_t ran;            /* jobs run */
    int64_t max_wait_ms;    /* the longest single operation */
} tally;

typedef struct worker {
    const char *db;
    jm_manager *shared; /* NULL: open one per thread */
    int proc, thread;
    int64_t until_ms;
    tally t;
} worker;

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static jm_decision bz_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed("ok", NULL);
}

static const jm_executor bz_executor = {
    JM_EXECUTOR_VERSION, "BZ", "busy", 1, NULL, bz_execute, NULL, JM_CLASS_NORMAL, NULL,
};

static jm_config busy_config(const char *db)
{
    jm_config cfg = tu_config(db);
    cfg.busy_timeout_ms = BUSY_TIMEOUT_MS;
    cfg.lease_ms = 10000;
    return cfg;
}

static void note(worker *w, int op, int rc, int64_t waited, const char *extra)
{
    if (rc == JM_EBUSY) {
        if (waited >= BUSY_TIMEOUT_MS)
            w->t.busy_late++;
        else
            w->t.busy_early++;
    } else {
        w->t.unexpected++;
    }
    if (w->t.busy_early + w->t.unexpected <= MAX_UNEXPECTED) {
        pthread_mutex_lock(&print_lock);
        printf("# proc %d thread %d: %s -> %s after %lld ms (%s)%s\n", w->proc, w->thread,
               op_names[op], jm_err_name(rc), (long long)waited, jm_last_error(), extra);
        fflush(stdout); /* the process ends with _exit() */
        pthread_mutex_unlock(&print_lock);
    }
}

static void *thread_main(void *arg)
{
    worker *w = arg;
    jm_manager *m = w->shared;
    if (!m) {
        jm_config cfg = busy_config(w->db);
        int64_t t0 = tu_mono_ms();
        int rc = jm_open(&cfg, &m);
        if (rc == JM_OK)
            rc = jm_register(m, &bz_executor, NULL);
        if (rc != JM_OK) {
            note(w, OP_CREATE, rc, tu_mono_ms() - t0, " (jm_open)");
            jm_close(m);
            return NULL;
        }
    }
    char recent[RECENT][JM_JOB_ID_SIZE];
    int nrecent = 0;
    unsigned seed = (unsigned)(w->proc * 7919 + w->thread * 104729 + 1);
    while (tu_mono_ms() < w->until_ms) {
        unsigned r = (unsigned)rand_r(&seed) % 100;
        int op = r < 50 ? OP_CREATE : r < 80 ? OP_RUN : OP_CANCEL;
        if (op == OP_CANCEL && nrecent == 0)
            op = OP_CREATE;
        int64_t t0 = tu_mono_ms();
        int rc;
        char id[JM_JOB_ID_SIZE];
        int ran = 0;
        switch (op) {
        case OP_CREATE: {
            jm_create_opts o = JM_CREATE_OPTS_INIT;
            char key[32];
            if (r % 5 == 0) {
                snprintf(key, sizeof key, "busy-%u", (unsigned)rand_r(&seed) % NKEYS);
                o.idempotency_key = key;
            }
            rc = jm_create(m, "BZ", "{\"n\": 1}", &o, id);
            if (rc == JM_OK) {
                w->t.created++;
                snprintf(recent[nrecent % RECENT], JM_JOB_ID_SIZE, "%s", id);
                nrecent++;
            }
            break;
        }
        case OP_RUN:
            rc = jm_run_once(m, 2, &ran);
            w->t.ran += ran;
            break;
        default:
            rc = jm_cancel(m, recent[(unsigned)rand_r(&seed) % (nrecent < RECENT ? nrecent
                                                                                : RECENT)]);
            break;
        }
        int64_t waited = tu_mono_ms() - t0;
        if (waited > w->t.max_wait_ms)
            w->t.max_wait_ms = waited;
        if (rc == JM_OK)
            w->t.ok[op]++;
        else if (op == OP_CREATE && rc == JM_ECONFLICT)
            w->t.conflict++;
        else if (op == OP_CANCEL && rc == JM_ESTATE)
            w->t.estate++;
        else
            note(w, op, rc, waited, "");
    }
    if (!w->shared)
        jm_close(m);
    return NULL;
}

static int proc_main(const char *db, const char *out, int proc, int shared, int64_t until)
{
    jm_manager *m = NULL;
    worker ws[THREADS];
    memset(ws, 0, sizeof ws);
    if (shared) {
        jm_config cfg = busy_config(db);
        if (jm_open(&cfg, &m) != JM_OK || jm_register(m, &bz_executor, NULL) != JM_OK) {
            printf("# proc %d: open failed: %s\n", proc, jm_last_error());
            return 1;
        }
    }
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ws[i] = (worker){db, m, proc, i, until, {{0}, 0, 0, 0, 0, 0, 0, 0, 0}};
        if (pthread_create(&th[i], NULL, thread_main, &ws[i]) != 0)
            return 1;
    }
    tally sum;
    memset(&sum, 0, sizeof sum);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        for (int k = 0; k < OP_COUNT_; k++)
            sum.ok[k] += ws[i].t.ok[k];
        sum.conflict += ws[i].t.conflict;
        sum.estate += ws[i].t.estate;
        sum.busy_late += ws[i].t.busy_late;
        sum.busy_early += ws[i].t.busy_early;
        sum.unexpected += ws[i].t.unexpected;
        sum.created += ws[i].t.created;
        sum.ran += ws[i].t.ran;
        if (ws[i].t.max_wait_ms > sum.max_wait_ms)
            sum.max_wait_ms = ws[i].t.max_wait_ms;
    }
    jm_close(m);
    FILE *f = fopen(out, "wb");
    if (!f || fwrite(&sum, sizeof sum, 1, f) != 1)
        return 1;
    fclose(f);
    return 0;
}

static void integrity_ok(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void busy_contention(void **state)
{
    (void)state;
    const char *env = getenv("JM_BUSY_SECONDS");
    int seconds = env && atoi(env) > 0 ? atoi(env) : DEFAULT_SECONDS;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char *db = tu_path(dir, "jobs.db");

    /* Create the schema first, then hold no connection across the fork. */
    jm_config cfg = busy_config(db);
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    jm_close(m);

    int64_t until = tu_mono_ms() + (int64_t)seconds * 1000;
    pid_t pids[PROCS];
    char *outs[PROCS];
    for (int p = 0; p < PROCS; p++) {
        char name[32];
        snprintf(name, sizeof name, "tally-%d", p);
        outs[p] = tu_path(dir, name);
        fflush(stdout);
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0)
            _exit(proc_main(db, outs[p], p, p % 2, until));
    }
    tally total;
    memset(&total, 0, sizeof total);
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        FILE *f = fopen(outs[p], "rb");
        assert_non_null(f);
        tally t;
        assert_int_equal(fread(&t, sizeof t, 1, f), 1);
        fclose(f);
        for (int k = 0; k < OP_COUNT_; k++)
            total.ok[k] += t.ok[k];
        total.conflict += t.conflict;
        total.estate += t.estate;
        total.busy_late += t.busy_late;
        total.busy_early += t.busy_early;
        total.unexpected += t.unexpected;
        total.created += t.created;
        total.ran += t.ran;
        if (t.max_wait_ms > total.max_wait_ms)
            total.max_wait_ms = t.max_wait_ms;
        free(outs[p]);
    }
    print_message("# busy: %d s, %d processes x %d threads: create ok %lld (key held %lld), "
                  "run_once ok %lld (jobs run %lld), cancel ok %lld (finished %lld); "
                  "EBUSY past the timeout %lld, EBUSY early %lld, other errors %lld; "
                  "longest operation %lld ms\n",
                  seconds, PROCS, THREADS, (long long)total.ok[OP_CREATE],
                  (long long)total.conflict, (long long)total.ok[OP_RUN],
                  (long long)total.ran, (long long)total.ok[OP_CANCEL],
                  (long long)total.estate, (long long)total.busy_late,
                  (long long)total.busy_early, (long long)total.unexpected,
                  (long long)total.max_wait_ms);
    assert_int_equal(total.busy_early, 0);
    assert_int_equal(total.unexpected, 0);
    assert_true(total.ok[OP_CREATE] > 0 && total.ran > 0);

    /* Everything created is there; finish what is left and every job ends
     * completed or cancelled. */
    if (!tu_store_pg())
        integrity_ok(db);
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    assert_int_equal(jm_register(m, &bz_executor, NULL), JM_OK);
    jm_filter all = JM_FILTER_INIT;
    int64_t n = -1;
    assert_int_equal(jm_count(m, &all, &n), JM_OK);
    assert_int_equal(n, total.created);
    int ran = 1;
    while (ran > 0)
        assert_int_equal(jm_run_once(m, 1000, &ran), JM_OK);
    jm_filter fin = JM_FILTER_INIT;
    fin.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED) | JM_STATUS_BIT(JM_STATUS_CANCELLED);
    assert_int_equal(jm_count(m, &fin, &n), JM_OK);
    assert_int_equal(n, total.created);
    jm_close(m);
    if (!tu_store_pg())
        integrity_ok(db);
    free(db);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(busy_contention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
