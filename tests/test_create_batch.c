/*
 * Batches large enough for the store's one-statement insert
 * (src/store/sqlite/sqlite_jobs.c, JM_BATCH_STATEMENT_MIN rows and more):
 * every stored field as one-by-one creates store it, ids that name their
 * rows in creation order, created_at never below the newest row's, and
 * failures (a key held by a stored job, a key twice in the batch, another
 * constraint) reported as for a small batch, with nothing created.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#define T0 INT64_C(1700000000000)
/* Comfortably above the store's threshold for one statement. */
#define N 40

typedef struct fx {
    char *dir;
    char *db;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
} fx;

static jm_decision execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed("ok", NULL);
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clock.now, T0);
    f->cfg = tu_config(f->db);
    f->cfg.now_ms = tu_fake_now;
    f->cfg.now_user = &f->clock;
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    jm_executor fl = {JM_EXECUTOR_VERSION, "FL", "flush", 1, NULL, execute, NULL, JM_CLASS_NORMAL, NULL};
    jm_executor cl = {JM_EXECUTOR_VERSION, "CL", "cleanup", 0, NULL, execute, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(f->m, &fl, f), JM_OK);
    assert_int_equal(jm_register(f->m, &cl, f), JM_OK);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    jm_close(f->m);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static int64_t count_all(fx *f)
{
    int64_t n = -1;
    assert_int_equal(jm_count(f->m, NULL, &n), JM_OK);
    return n;
}

static jm_job *getj(fx *f, const char *id)
{
    jm_job *j = NULL;
    int rc = jm_get(f->m, id, &j);
    if (rc != JM_OK)
        fail_msg("jm_get %s: %s", id, jm_last_error());
    return j;
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Job i of a varied batch: both types, some namespaces, keys, priorities,
 * retries and schedules, parameters of several sizes. */
static jm_new_job varied(int i, char (*ns)[16], char (*key)[16], char (*params)[64])
{
    jm_new_job j = {i % 3 ? "FL" : "CL", params[i], JM_CREATE_OPTS_INIT};
    snprintf(params[i], sizeof params[i], "{\"i\":%d,\"s\":\"%.*s\"}", i, i % 20,
             "abcdefghijklmnopqrstuvwxyz");
    if (i % 4 == 1) {
        snprintf(ns[i], sizeof ns[i], "ns-%d", i % 3);
        j.opts.namespace_id = ns[i];
    }
    if (i % 5 == 2) {
        snprintf(key[i], sizeof key[i], "key-%d", i);
        j.opts.idempotency_key = key[i];
    }
    j.opts.priority = i % 7 - 3;
    j.opts.max_retries = i % 6 == 0 ? 9 : -1;
    if (i % 8 == 3)
        j.opts.run_at_ms = T0 + 1000 * i;
    if (i % 11 == 4)
        j.params_json = NULL;
    return j;
}

/* A batch stores what the same jobs created one by one store. */
static void batch_stores_what_single_creates_store(void **state)
{
    fx *f = *state;
    static char ns[N][16], key[N][16], params[N][64], key2[N][16];
    jm_new_job jobs[N], one[N];
    char ids[N][JM_JOB_ID_SIZE], one_ids[N][JM_JOB_ID_SIZE];
    for (int i = 0; i < N; i++)
        jobs[i] = varied(i, ns, key, params);
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_OK);
    /* The same jobs one by one, their keys renamed to be free. */
    for (int i = 0; i < N; i++) {
        one[i] = jobs[i];
        if (jobs[i].opts.idempotency_key) {
            snprintf(key2[i], sizeof key2[i], "one-%d", i);
            one[i].opts.idempotency_key = key2[i];
        }
        assert_int_equal(jm_create(f->m, one[i].type, one[i].params_json, &one[i].opts,
                                   one_ids[i]),
                         JM_OK);
    }
    assert_int_equal(count_all(f), 2 * N);
    for (int i = 0; i < N; i++) {
        jm_job *a = getj(f, ids[i]), *b = getj(f, one_ids[i]);
        assert_string_equal(jm_job_id(a), ids[i]);
        assert_string_equal(jm_job_type(a), jm_job_type(b));
        assert_int_equal(jm_job_status(a), jm_job_status(b));
        assert_true(same_text(jm_job_namespace(a), jm_job_namespace(b)));
        assert_string_equal(jm_job_params(a), jm_job_params(b));
        assert_string_equal(jm_job_params(a), jobs[i].params_json ? jobs[i].params_json : "{}");
        assert_true(same_text(jm_job_idempotency_key(a), jobs[i].opts.idempotency_key));
        assert_int_equal(jm_job_max_retries(a), jm_job_max_retries(b));
        assert_int_equal(jm_job_priority(a), jm_job_priority(b));
        assert_int_equal(jm_job_created_at(a), jm_job_created_at(b));
        assert_int_equal(jm_job_updated_at(a), jm_job_updated_at(b));
        assert_int_equal(jm_job_run_at(a), jm_job_run_at(b));
        assert_int_equal(jm_job_attempts(a), 0);
        assert_int_equal(jm_job_retry_count(a), 0);
        assert_null(jm_job_message(a));
        jm_job_free(a);
        jm_job_free(b);
    }
    /* Ids in creation order: the list in seq order is the batch, then the
     * single creates. */
    jm_filter flt = JM_FILTER_INIT;
    flt.limit = 2 * N;
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, &flt, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 2 * N);
    for (int i = 0; i < N; i++) {
        assert_string_equal(jm_job_id(jm_job_list_at(l, (size_t)i)), ids[i]);
        assert_string_equal(jm_job_id(jm_job_list_at(l, (size_t)(N + i))), one_ids[i]);
    }
    jm_job_list_free(l);
    /* Every key is held, and found by key. */
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = key[2];
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "CL", NULL, &o, id), JM_ECONFLICT);
    assert_string_equal(id, ids[2]);
}

/* Batch after batch, with single creates between: seqs go on, ids stay
 * distinct and each names its own row. */
static void batches_follow_each_other(void **state)
{
    fx *f = *state;
    enum { ROUNDS = 5 };
    static char all[ROUNDS * (N + 1)][JM_JOB_ID_SIZE];
    size_t n = 0;
    for (int r = 0; r < ROUNDS; r++) {
        jm_new_job jobs[N];
        for (int i = 0; i < N; i++)
            jobs[i] = (jm_new_job){"FL", "{\"r\":1}", JM_CREATE_OPTS_INIT};
        assert_int_equal(jm_create_many(f->m, jobs, N, (char(*)[JM_JOB_ID_SIZE])all[n]),
                         JM_OK);
        n += N;
        assert_int_equal(jm_create(f->m, "CL", NULL, NULL, all[n]), JM_OK);
        n++;
        tu_clock_advance(&f->clock, 7);
    }
    assert_int_equal(count_all(f), (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        jm_job *j = getj(f, all[i]);
        assert_string_equal(jm_job_id(j), all[i]);
        jm_job_free(j);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(all[i], all[k]);
    }
    jm_filter flt = JM_FILTER_INIT;
    flt.limit = (int)n;
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, &flt, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(jm_job_id(jm_job_list_at(l, i)), all[i]);
    jm_job_list_free(l);
}

/* A clock set back: the batch's creation time is the newest row's, never
 * earlier; its update time is the clock's. */
static void created_at_never_goes_back(void **state)
{
    if (tu_skip_unless_sqlite("on PostgreSQL a job's created_at is its creator's clock"))
        return;
    fx *f = *state;
    char first[JM_JOB_ID_SIZE];
    atomic_store(&f->clock.now, T0 + 5000);
    assert_int_equal(jm_create(f->m, "FL", NULL, NULL, first), JM_OK);
    atomic_store(&f->clock.now, T0);
    jm_new_job jobs[N];
    char ids[N][JM_JOB_ID_SIZE];
    for (int i = 0; i < N; i++)
        jobs[i] = (jm_new_job){"CL", NULL, JM_CREATE_OPTS_INIT};
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_OK);
    for (int i = 0; i < N; i++) {
        jm_job *j = getj(f, ids[i]);
        assert_int_equal(jm_job_created_at(j), T0 + 5000);
        assert_int_equal(jm_job_updated_at(j), T0);
        assert_int_equal(jm_job_run_at(j), T0);
        jm_job_free(j);
    }
    /* Filters by creation time see the batch after the first job. */
    jm_filter flt = JM_FILTER_INIT;
    flt.created_after_ms = T0 + 4999;
    int64_t n = -1;
    assert_int_equal(jm_count(f->m, &flt, &n), JM_OK);
    assert_int_equal(n, N + 1);
    /* A later clock is taken as it is. */
    atomic_store(&f->clock.now, T0 + 9000);
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_OK);
    jm_job *j = getj(f, ids[N - 1]);
    assert_int_equal(jm_job_created_at(j), T0 + 9000);
    jm_job_free(j);
}

static void batch_conflicts_create_nothing(void **state)
{
    fx *f = *state;
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = "daily";
    char holder[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, holder), JM_OK);

    jm_new_job jobs[N];
    char ids[N][JM_JOB_ID_SIZE];
    static char keys[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k-%d", i);
        jobs[i] = (jm_new_job){"FL", NULL, JM_CREATE_OPTS_INIT};
        jobs[i].opts.idempotency_key = keys[i];
    }
    /* Index 13 wants the key a stored job holds. */
    jobs[13].opts.idempotency_key = "daily";
    memset(ids, 0, sizeof ids);
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_ECONFLICT);
    assert_string_equal(ids[13], holder);
    assert_non_null(strstr(jm_last_error(), "job 13"));
    assert_non_null(strstr(jm_last_error(), holder));
    assert_int_equal(count_all(f), 1);

    /* Index 31 repeats the key of index 3: the conflict names 31, and no
     * id, since the holder was never created. */
    jobs[13].opts.idempotency_key = keys[13];
    jobs[31].opts.idempotency_key = keys[3];
    memset(ids, 0, sizeof ids);
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_ECONFLICT);
    assert_non_null(strstr(jm_last_error(), "job 31"));
    assert_string_equal(ids[31], "");
    assert_int_equal(count_all(f), 1);

    /* Put right, the whole batch goes in. */
    jobs[31].opts.idempotency_key = keys[31];
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_OK);
    assert_int_equal(count_all(f), 1 + N);
    jm_job *j = getj(f, ids[31]);
    assert_string_equal(jm_job_idempotency_key(j), keys[31]);
    jm_job_free(j);
}

/* Any other constraint is the database's error, in SQLite's words, and
 * leaves nothing behind. */
static void batch_other_constraint_is_a_database_error(void **state)
{
    if (tu_skip_unless_sqlite("SQLite's own words for a constraint"))
        return;
    fx *f = *state;
    tu_sql_exec(f->db, "CREATE UNIQUE INDEX other_params ON jm_jobs(params)");
    jm_new_job jobs[N];
    char ids[N][JM_JOB_ID_SIZE];
    static char params[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(params[i], sizeof params[i], "{\"n\":%d}", i);
        jobs[i] = (jm_new_job){"FL", params[i], JM_CREATE_OPTS_INIT};
    }
    jobs[20].params_json = params[5];
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_EDB);
    assert_non_null(strstr(jm_last_error(), "UNIQUE constraint failed: jm_jobs.params"));
    assert_int_equal(count_all(f), 0);
    jobs[20].params_json = params[20];
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_OK);
    assert_int_equal(count_all(f), N);
    tu_sql_exec(f->db, "DROP INDEX other_params");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(batch_stores_what_single_creates_store),
        T(batches_follow_each_other),
        T(created_at_never_goes_back),
        T(batch_conflicts_create_nothing),
        T(batch_other_constraint_is_a_database_error),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
