/*
 * Group commit (src/core/write_queue.c, src/store/sqlite/sqlite_write.c):
 * threads writing at once share transactions and syncs, each call still
 * gets its own answer (a conflict or a refused transition fails that call
 * alone), and an I/O error during a group's commit fails every call of the
 * group with nothing of it written.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "fault_vfs.h"
#include "jobmgr.h"
#include "test_util.h"

#define THREADS 8
#define PER_THREAD 60
#define KEYS 5

static jm_decision noop_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed(NULL, NULL);
}

static int noop_validate(void *self, const cJSON *params, char *err, size_t errlen)
{
    (void)self;
    if (cJSON_GetObjectItemCaseSensitive(params, "bad")) {
        snprintf(err, errlen, "\"bad\" is refused");
        return -1;
    }
    return 0;
}

static const jm_executor noop = {
    .version = JM_EXECUTOR_VERSION, .type = "GC", .name = "group",
    .cancellable = 1, .validate = noop_validate, .execute = noop_execute,
};

typedef struct fixture {
    char *dir;
    char *db;
    jm_manager *m;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    assert_int_equal(fv_register(0), SQLITE_OK);
    jm_config cfg = tu_config(f->db);
    cfg.sqlite_vfs = FV_NAME;
    assert_int_equal(jm_open(&cfg, &f->m), JM_OK);
    assert_int_equal(jm_register(f->m, &noop, NULL), JM_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fv_disarm();
    jm_close(f->m);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* --- every call its own answer ------------------------------------------ */

typedef enum { A_VALID, A_KEYED, A_BAD_PARAMS, A_RETRY_QUEUED, A_CANCEL_UNKNOWN } action;

typedef struct result {
    action what;
    int rc;
    char id[JM_JOB_ID_SIZE]; /* the created job, or a conflict's holder */
    int key;
} result;

typedef struct worker {
    fixture *f;
    int index;
    _Atomic int *go;
    result results[PER_THREAD];
} worker;

static void *mixed_writer(void *arg)
{
    worker *w = arg;
    jm_manager *m = w->f->m;
    while (!atomic_load(w->go))
        ;
    for (int i = 0; i < PER_THREAD; i++) {
        result *r = &w->results[i];
        r->what = (action)((w->index + i) % 5);
        r->key = (w->index * 7 + i) % KEYS;
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        char key[32];
        switch (r->what) {
        case A_VALID:
            r->rc = jm_create(m, "GC", "{}", NULL, r->id);
            break;
        case A_KEYED:
            snprintf(key, sizeof key, "key-%d", r->key);
            o.idempotency_key = key;
            r->rc = jm_create(m, "GC", "{}", &o, r->id);
            break;
        case A_BAD_PARAMS:
            r->rc = jm_create(m, "GC", "{\"bad\":1}", NULL, r->id);
            break;
        case A_RETRY_QUEUED: {
            /* A job of this thread's own, still queued: retry refuses it. */
            char own[JM_JOB_ID_SIZE];
            assert_int_equal(jm_create(m, "GC", "{}", NULL, own), JM_OK);
            snprintf(r->id, sizeof r->id, "%s", own);
            r->rc = jm_retry(m, own);
            if (r->rc == JM_ESTATE)
                assert_non_null(strstr(jm_last_error(), own));
            break;
        }
        case A_CANCEL_UNKNOWN:
            snprintf(r->id, sizeof r->id, "GC-01a244fc-4cad-8a24-b70f-%012x", 0xfffff0 + i);
            r->rc = jm_cancel(m, r->id);
            break;
        }
    }
    return NULL;
}

static void each_call_gets_its_own_answer(void **state)
{
    fixture *f = *state;
    fv_arm(FV_SYNC, INT64_MAX, SQLITE_IOERR, 0, "jobs.db"); /* counts syncs, fails none */
    _Atomic int go = 0;
    worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].f = f;
        w[i].index = i;
        w[i].go = &go;
        assert_int_equal(pthread_create(&t[i], NULL, mixed_writer, &w[i]), 0);
    }
    atomic_store(&go, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    int64_t syncs = fv_count(FV_SYNC);

    long created = 0, writes = 0;
    char holder[KEYS][JM_JOB_ID_SIZE];
    memset(holder, 0, sizeof holder);
    for (int i = 0; i < THREADS; i++) {
        for (int k = 0; k < PER_THREAD; k++) {
            result *r = &w[i].results[k];
            jm_job *job = NULL;
            switch (r->what) {
            case A_VALID:
                assert_int_equal(r->rc, JM_OK);
                assert_int_equal(jm_get(f->m, r->id, &job), JM_OK);
                jm_job_free(job);
                created++;
                writes++;
                break;
            case A_KEYED:
                /* One job per key was ever created: every other call
                 * conflicts and names that same holder. */
                assert_true(r->rc == JM_OK || r->rc == JM_ECONFLICT);
                if (!holder[r->key][0])
                    snprintf(holder[r->key], JM_JOB_ID_SIZE, "%s", r->id);
                assert_string_equal(r->id, holder[r->key]);
                created += r->rc == JM_OK;
                writes++;
                break;
            case A_BAD_PARAMS:
                assert_int_equal(r->rc, JM_EINVAL);
                break;
            case A_RETRY_QUEUED:
                assert_int_equal(r->rc, JM_ESTATE);
                assert_int_equal(tu_status(f->m, r->id), JM_STATUS_QUEUED);
                created++;
                writes += 2;
                break;
            case A_CANCEL_UNKNOWN:
                assert_int_equal(r->rc, JM_ENOTFOUND);
                writes++;
                break;
            }
        }
    }
    for (int k = 0; k < KEYS; k++)
        assert_true(holder[k][0] != '\0');
    int64_t total = 0;
    jm_filter all = JM_FILTER_INIT;
    assert_int_equal(jm_count(f->m, &all, &total), JM_OK);
    assert_int_equal(total, created);
    /* Valid creates and the retried jobs' own creates, a fifth of the
     * calls each, and one job per key. */
    assert_int_equal(created, 2 * (THREADS * PER_THREAD / 5) + KEYS);
    /* Shared syncs: without grouping every write that changed the table
     * (each create) would sync on its own; refused writes change nothing. */
    printf("# %ld writes reached the store, %ld created a job, %lld syncs\n", writes, created,
           (long long)syncs);
    assert_true(syncs < created * 9 / 10);
}

/* --- an I/O error fails the whole group ---------------------------------- */

typedef struct eio_worker {
    fixture *f;
    _Atomic int *go;
    int rc[PER_THREAD];
    char ids[PER_THREAD][3][JM_JOB_ID_SIZE];
    int many[PER_THREAD];
} eio_worker;

static void *eio_writer(void *arg)
{
    eio_worker *w = arg;
    while (!atomic_load(w->go))
        ;
    for (int i = 0; i < PER_THREAD; i++) {
        w->many[i] = i % 2;
        if (w->many[i]) {
            jm_new_job jobs[3];
            for (int k = 0; k < 3; k++) {
                jobs[k].type = "GC";
                jobs[k].params_json = "{}";
                jobs[k].opts = (jm_create_opts)JM_CREATE_OPTS_INIT;
            }
            w->rc[i] = jm_create_many(w->f->m, jobs, 3, w->ids[i]);
        } else {
            w->rc[i] = jm_create(w->f->m, "GC", "{}", NULL, w->ids[i][0]);
        }
    }
    return NULL;
}

static void io_error_fails_the_whole_group(void **state)
{
    if (tu_skip_unless_sqlite("injects the I/O error through an SQLite VFS"))
        return;
    fixture *f = *state;
    /* One write to the log fails while eight threads keep writing: the
     * commit of whichever group it hits. */
    fv_arm(FV_WRITE, 40, SQLITE_IOERR, 0, "jobs.db-wal");
    _Atomic int go = 0;
    eio_worker *w = calloc(THREADS, sizeof *w);
    assert_non_null(w);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].f = f;
        w[i].go = &go;
        assert_int_equal(pthread_create(&t[i], NULL, eio_writer, &w[i]), 0);
    }
    atomic_store(&go, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    fv_disarm();

    long failed = 0, ok = 0;
    for (int i = 0; i < THREADS; i++) {
        for (int k = 0; k < PER_THREAD; k++) {
            int n = w[i].many[k] ? 3 : 1;
            if (w[i].rc[k] == JM_OK) {
                ok++;
                for (int j = 0; j < n; j++)
                    assert_int_equal(tu_status(f->m, w[i].ids[k][j]), JM_STATUS_QUEUED);
                continue;
            }
            assert_int_equal(w[i].rc[k], JM_EIO);
            failed++;
        }
    }
    assert_true(failed > 0);
    /* Nothing of a failed call was written: the table holds exactly the
     * jobs of the calls that succeeded. */
    int64_t expected = 0, total = 0;
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < PER_THREAD; k++)
            if (w[i].rc[k] == JM_OK)
                expected += w[i].many[k] ? 3 : 1;
    jm_filter all = JM_FILTER_INIT;
    assert_int_equal(jm_count(f->m, &all, &total), JM_OK);
    assert_int_equal(total, expected);
    printf("# %ld calls succeeded, %ld failed with JM_EIO\n", ok, failed);
    /* And the manager still writes. */
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "GC", "{}", NULL, id), JM_OK);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(each_call_gets_its_own_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(io_error_fails_the_whole_group, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
