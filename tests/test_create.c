/*
 * Creating jobs (src/core/create.c): jm_create_many all or nothing,
 * idempotency conflicts against stored jobs and inside one batch,
 * scheduled jobs and their promotion by a fake clock, priority order,
 * max_retries defaults and overrides, and parameters stored byte for byte.
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
#define MAX_SEEN 64

typedef struct fx {
    char *dir;
    char *db;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
    int retry; /* executor answers retry instead of completed */
    int runs;
    char seen[MAX_SEEN][JM_JOB_ID_SIZE];
    char *seen_params[MAX_SEEN];
} fx;

static jm_decision execute(void *self, jm_ctx *ctx)
{
    fx *f = self;
    const jm_job *j = jm_ctx_job(ctx);
    if (f->runs < MAX_SEEN) {
        snprintf(f->seen[f->runs], JM_JOB_ID_SIZE, "%s", jm_job_id(j));
        f->seen_params[f->runs] = strdup(jm_job_params(j));
    }
    f->runs++;
    if (f->retry)
        return jm_decision_retry("transient", NULL, 1000);
    return jm_decision_completed("ok", NULL);
}

static int refuse_bad(void *self, const cJSON *params, char *err, size_t errlen)
{
    (void)self;
    if (cJSON_GetObjectItemCaseSensitive(params, "bad")) {
        snprintf(err, errlen, "'bad' is not allowed");
        return 1;
    }
    return 0;
}

static void open_manager(fx *f)
{
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    jm_executor fl = {JM_EXECUTOR_VERSION, "FL", "flush", 1, refuse_bad, execute, NULL, JM_CLASS_NORMAL, NULL};
    jm_executor cl = {JM_EXECUTOR_VERSION, "CL", "cleanup", 0, NULL, execute, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(f->m, &fl, f), JM_OK);
    assert_int_equal(jm_register(f->m, &cl, f), JM_OK);
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
    f->cfg.node_id = "create-node";
    open_manager(f);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    jm_close(f->m);
    for (int i = 0; i < MAX_SEEN; i++)
        free(f->seen_params[i]);
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

static int run(fx *f, int max)
{
    int ran = -1;
    int rc = jm_run_once(f->m, max, &ran);
    if (rc != JM_OK)
        fail_msg("jm_run_once: %s", jm_last_error());
    return ran;
}

static jm_job *getj(fx *f, const char *id)
{
    jm_job *j = NULL;
    int rc = jm_get(f->m, id, &j);
    if (rc != JM_OK)
        fail_msg("jm_get %s: %s", id, jm_last_error());
    return j;
}

/* ------------------------------------------------------------------------ */

static void create_many_all_or_nothing(void **state)
{
    fx *f = *state;
    enum { N = 20 };
    jm_new_job jobs[N];
    char ids[N][JM_JOB_ID_SIZE];
    for (int i = 0; i < N; i++)
        jobs[i] = (jm_new_job){i % 2 ? "CL" : "FL", "{\"i\":1}", JM_CREATE_OPTS_INIT};

    /* Each kind of bad job at index 7 spoils the whole batch. */
    const struct {
        const char *type, *params;
        int rc;
    } bad[] = {
        {"CL", "[1,2]", JM_EJSON},        /* not an object */
        {"CL", "{\"a\":", JM_EJSON},       /* not JSON */
        {"zz", "{}", JM_EINVAL},           /* malformed type */
        {"RT", "{}", JM_ENOEXEC},          /* no executor */
        {"FL", "{\"bad\":1}", JM_EINVAL},  /* the executor's validate() refuses */
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        jm_new_job j7 = jobs[7];
        jobs[7].type = bad[k].type;
        jobs[7].params_json = bad[k].params;
        int rc = jm_create_many(f->m, jobs, N, ids);
        jobs[7] = j7;
        if (rc != bad[k].rc)
            fail_msg("case %zu: %s, want %s", k, jm_err_name(rc), jm_err_name(bad[k].rc));
        if (!strstr(jm_last_error(), "job 7"))
            fail_msg("case %zu: last error '%s' does not name job 7", k, jm_last_error());
        assert_int_equal(count_all(f), 0);
    }
    assert_non_null(strstr(jm_last_error(), "'bad' is not allowed"));
    jobs[7].opts.max_retries = JM_MAX_RETRIES_LIMIT + 1;
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "job 7"));
    jobs[7].opts.max_retries = -1;
    jobs[19].opts.version = 99;
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "job 19"));
    jobs[19].opts.version = JM_CREATE_OPTS_VERSION;
    assert_int_equal(count_all(f), 0);

    /* All good: all created, ids in order, distinct, of the right type. */
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_OK);
    assert_int_equal(count_all(f), N);
    for (int i = 0; i < N; i++) {
        char type[3];
        assert_int_equal(jm_job_id_parse(ids[i], type), JM_OK);
        assert_string_equal(type, jobs[i].type);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(ids[i], ids[k]);
    }
    jm_filter flt = JM_FILTER_INIT;
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, &flt, &l), JM_OK);
    for (int i = 0; i < N; i++)
        assert_string_equal(jm_job_id(jm_job_list_at(l, (size_t)i)), ids[i]);
    jm_job_list_free(l);

    /* Bad sizes and arguments. */
    assert_int_equal(jm_create_many(f->m, jobs, 0, ids), JM_EINVAL);
    assert_int_equal(jm_create_many(f->m, jobs, JM_MAX_CREATE_MANY + 1, ids), JM_EINVAL);
    assert_int_equal(jm_create_many(f->m, NULL, 1, ids), JM_EINVAL);
    assert_int_equal(jm_create_many(f->m, jobs, 1, NULL), JM_EINVAL);
    assert_int_equal(jm_create_many(NULL, jobs, 1, ids), JM_EINVAL);
    assert_int_equal(count_all(f), N);
}

static void create_many_conflicts(void **state)
{
    fx *f = *state;
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = "daily-flush";
    char holder[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, holder), JM_OK);

    enum { N = 6 };
    jm_new_job jobs[N];
    char ids[N][JM_JOB_ID_SIZE];
    static char keys[N][16];
    for (int i = 0; i < N; i++) {
        jobs[i] = (jm_new_job){"FL", NULL, JM_CREATE_OPTS_INIT};
        snprintf(keys[i], sizeof keys[i], "key-%d", i);
        jobs[i].opts.idempotency_key = keys[i];
    }
    /* Index 4 wants the key held by an active job. */
    jobs[4].opts.idempotency_key = "daily-flush";
    memset(ids, 0, sizeof ids);
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_ECONFLICT);
    assert_string_equal(ids[4], holder);
    assert_non_null(strstr(jm_last_error(), "job 4"));
    assert_int_equal(count_all(f), 1);
    /* Keys are case-sensitive: a different case is a different key. */
    jobs[4].opts.idempotency_key = "Daily-Flush";
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_OK);
    assert_int_equal(count_all(f), 1 + N);

    /* Two jobs of one batch with one key: nothing created. */
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "batch2-%d", i);
        jobs[i].opts.idempotency_key = keys[i];
    }
    jobs[5].opts.idempotency_key = keys[2];
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_ECONFLICT);
    assert_non_null(strstr(jm_last_error(), "job 5"));
    assert_int_equal(count_all(f), 1 + N);
    jm_filter flt = JM_FILTER_INIT;
    flt.idempotency_key = keys[2];
    int64_t n = -1;
    assert_int_equal(jm_count(f->m, &flt, &n), JM_OK);
    assert_int_equal(n, 0);

    /* A single create conflicting gets the holder's id too. */
    char id[JM_JOB_ID_SIZE] = "";
    assert_int_equal(jm_create(f->m, "CL", NULL, &o, id), JM_ECONFLICT);
    assert_string_equal(id, holder);
    /* Once the holder finished, the key is free. */
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(tu_status(f->m, holder), JM_STATUS_COMPLETED);
    assert_int_equal(jm_create(f->m, "CL", NULL, &o, id), JM_OK);
    assert_string_not_equal(id, holder);
}

/* Only the idempotency index makes a conflict. Any other constraint the
 * database enforces (added here by hand) fails the create with JM_EDB and
 * SQLite's own words, and creates nothing. */
static void other_constraints_are_database_errors(void **state)
{
    if (tu_skip_unless_sqlite("SQLite's own words for a constraint"))
        return;
    fx *f = *state;
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    char id[JM_JOB_ID_SIZE], holder[JM_JOB_ID_SIZE];
    o.idempotency_key = "k1";
    assert_int_equal(jm_create(f->m, "FL", "{\"n\":1}", &o, holder), JM_OK);

    /* A unique index on another column, for one job and for a batch. */
    tu_sql_exec(f->db, "CREATE UNIQUE INDEX other_params ON jm_jobs(params)");
    o.idempotency_key = "k2";
    assert_int_equal(jm_create(f->m, "FL", "{\"n\":1}", &o, id), JM_EDB);
    assert_non_null(strstr(jm_last_error(), "UNIQUE constraint failed: jm_jobs.params"));
    jm_new_job jobs[2] = {{"FL", "{\"n\":2}", JM_CREATE_OPTS_INIT},
                          {"FL", "{\"n\":1}", JM_CREATE_OPTS_INIT}};
    char ids[2][JM_JOB_ID_SIZE];
    assert_int_equal(jm_create_many(f->m, jobs, 2, ids), JM_EDB);
    assert_non_null(strstr(jm_last_error(), "UNIQUE constraint failed: jm_jobs.params"));
    assert_int_equal(count_all(f), 1);
    /* The key held by an active job still is a conflict, naming it. */
    o.idempotency_key = "k1";
    memset(id, 0, sizeof id);
    assert_int_equal(jm_create(f->m, "FL", "{\"n\":3}", &o, id), JM_ECONFLICT);
    assert_string_equal(id, holder);
    tu_sql_exec(f->db, "DROP INDEX other_params");

    /* A unique index over the key and another column: once the holder has
     * finished, the idempotency index lets the key through and this one
     * does not. */
    tu_sql_exec(f->db, "CREATE UNIQUE INDEX other_key_type ON jm_jobs(idempotency_key, type)");
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(tu_status(f->m, holder), JM_STATUS_COMPLETED);
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, id), JM_EDB);
    assert_non_null(strstr(jm_last_error(), "jm_jobs.idempotency_key, jm_jobs.type"));
    assert_int_equal(count_all(f), 1);
    assert_int_equal(jm_create(f->m, "CL", NULL, &o, id), JM_OK);
    tu_sql_exec(f->db, "DROP INDEX other_key_type");

    /* A trigger's RAISE. */
    tu_sql_exec(f->db, "CREATE TRIGGER no_cleanups BEFORE INSERT ON jm_jobs "
                       "WHEN NEW.type = 'CL' BEGIN SELECT RAISE(ABORT, 'no more cleanups'); END");
    o.idempotency_key = "k3";
    assert_int_equal(jm_create(f->m, "CL", NULL, &o, id), JM_EDB);
    assert_non_null(strstr(jm_last_error(), "no more cleanups"));
    assert_int_equal(count_all(f), 2);
}

static void scheduled_jobs_wait_for_their_time(void **state)
{
    fx *f = *state;
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.run_at_ms = T0 + 10000;
    char id[JM_JOB_ID_SIZE], past[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, id), JM_OK);
    jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_NEW);
    assert_int_equal(jm_job_run_at(j), T0 + 10000);
    assert_int_equal(jm_job_created_at(j), T0);
    jm_job_free(j);

    /* A run_at already past (but not 0) is due at once. */
    o.run_at_ms = T0 - 5;
    assert_int_equal(jm_create(f->m, "CL", NULL, &o, past), JM_OK);
    assert_int_equal(tu_status(f->m, past), JM_STATUS_QUEUED);
    assert_int_equal(run(f, 10), 1);
    assert_string_equal(f->seen[0], past);

    tu_clock_advance(&f->clock, 9999);
    assert_int_equal(run(f, 10), 0);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_NEW);
    tu_clock_advance(&f->clock, 1);
    assert_int_equal(run(f, 10), 1);
    assert_string_equal(f->seen[1], id);
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_int_equal(jm_job_started_at(j), T0 + 10000);
    jm_job_free(j);

    o.run_at_ms = -1;
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, id), JM_EINVAL);
}

static void priority_order(void **state)
{
    fx *f = *state;
    const int prio[] = {0, 5, -1, 5, 10, 0};
    const int order[] = {4, 1, 3, 0, 5, 2};
    enum { N = 6 };
    char ids[N][JM_JOB_ID_SIZE];
    for (int i = 0; i < N; i++) {
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.priority = prio[i];
        assert_int_equal(jm_create(f->m, i % 2 ? "CL" : "FL", NULL, &o, ids[i]), JM_OK);
    }
    assert_int_equal(run(f, 100), N);
    for (int i = 0; i < N; i++)
        if (strcmp(f->seen[i], ids[order[i]]) != 0)
            fail_msg("run %d was job %d's turn", i, order[i]);
}

static void priority_beats_age_but_not_schedule(void **state)
{
    fx *f = *state;
    char old_low[JM_JOB_ID_SIZE], new_high[JM_JOB_ID_SIZE], future_top[JM_JOB_ID_SIZE];
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.priority = -5;
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, old_low), JM_OK);
    tu_clock_advance(&f->clock, 1000);
    o.priority = 1;
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, new_high), JM_OK);
    o.priority = 100;
    o.run_at_ms = T0 + 5000;
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, future_top), JM_OK);
    assert_int_equal(run(f, 100), 2);
    assert_string_equal(f->seen[0], new_high);
    assert_string_equal(f->seen[1], old_low);
    tu_clock_advance(&f->clock, 4000);
    assert_int_equal(run(f, 100), 1);
    assert_string_equal(f->seen[2], future_top);
}

static void max_retries_default_and_override(void **state)
{
    fx *f = *state;
    jm_close(f->m);
    f->cfg.max_retries = 7;
    open_manager(f);

    char dflt[JM_JOB_ID_SIZE], two[JM_JOB_ID_SIZE], zero[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "FL", NULL, NULL, dflt), JM_OK);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = 2;
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, two), JM_OK);
    o.max_retries = 0;
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, zero), JM_OK);
    jm_job *j = getj(f, dflt);
    assert_int_equal(jm_job_max_retries(j), 7);
    jm_job_free(j);
    j = getj(f, two);
    assert_int_equal(jm_job_max_retries(j), 2);
    jm_job_free(j);
    j = getj(f, zero);
    assert_int_equal(jm_job_max_retries(j), 0);
    jm_job_free(j);

    /* The budgets are what the runs obey: zero fails on its first retry,
     * two after its third run, the default keeps retrying. */
    f->retry = 1;
    for (int round = 0; round < 3; round++) {
        run(f, 10);
        tu_clock_advance(&f->clock, 1000);
    }
    j = getj(f, zero);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_string_equal(jm_job_message(j), "Max retries exceeded");
    assert_int_equal(jm_job_retry_count(j), 0);
    jm_job_free(j);
    j = getj(f, two);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_int_equal(jm_job_retry_count(j), 2);
    jm_job_free(j);
    j = getj(f, dflt);
    assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
    assert_int_equal(jm_job_retry_count(j), 3);
    jm_job_free(j);

    o.max_retries = JM_MAX_RETRIES_LIMIT + 1;
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, two), JM_EINVAL);
    o.max_retries = JM_MAX_RETRIES_LIMIT;
    assert_int_equal(jm_create(f->m, "FL", NULL, &o, two), JM_OK);
}

static void params_stored_byte_for_byte(void **state)
{
    fx *f = *state;
    /* The first element is one literal in two pieces (parenthesised, so
     * the compiler knows the concatenation is meant). */
    const char *odd[] = {
        ("{ \"b\" : 1,\n\t\"a\":[1, 2.50, 1e3, -0],  \"s\":\"caf\xc3\xa9 \\u00e9 \\\"q\\\"\", "
         "\"n\":null ,\"t\":true}"),
        "{}",
        "  {\"x\":{\"y\":{\"z\":[]}}}  ",
        "{\"dup\":1,\"dup\":2}",
    };
    enum { N = 4 };
    char ids[N][JM_JOB_ID_SIZE];
    for (int i = 0; i < N; i++)
        assert_int_equal(jm_create(f->m, "FL", odd[i], NULL, ids[i]), JM_OK);
    char none[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "FL", NULL, NULL, none), JM_OK);
    for (int i = 0; i < N; i++) {
        jm_job *j = getj(f, ids[i]);
        assert_string_equal(jm_job_params(j), odd[i]);
        jm_job_free(j);
    }
    jm_job *j = getj(f, none);
    assert_string_equal(jm_job_params(j), "{}");
    jm_job_free(j);
    /* The executor sees the same bytes. */
    assert_int_equal(run(f, 10), N + 1);
    for (int i = 0; i < N; i++)
        assert_string_equal(f->seen_params[i], odd[i]);

    /* Limits: exactly JM_MAX_PARAMS_BYTES is fine, one more is not. */
    char *big = malloc(JM_MAX_PARAMS_BYTES + 2);
    size_t len = JM_MAX_PARAMS_BYTES;
    memcpy(big, "{\"p\":\"", 6);
    memset(big + 6, 'x', len - 8);
    memcpy(big + len - 2, "\"}", 2);
    big[len] = '\0';
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "CL", big, NULL, id), JM_OK);
    j = getj(f, id);
    assert_int_equal(strlen(jm_job_params(j)), len);
    assert_memory_equal(jm_job_params(j), big, len);
    jm_job_free(j);
    memmove(big + 7, big + 6, len - 6 + 1);
    big[6] = 'x';
    assert_int_equal(strlen(big), len + 1);
    assert_int_equal(jm_create(f->m, "CL", big, NULL, id), JM_ETOOBIG);
    free(big);
    assert_int_equal(jm_create(f->m, "CL", "{\"s\":\"\xc3\x28\"}", NULL, id), JM_EJSON);
    assert_int_equal(jm_create(f->m, "CL", "\"a string\"", NULL, id), JM_EJSON);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(create_many_all_or_nothing),
        T(create_many_conflicts),
        T(other_constraints_are_database_errors),
        T(scheduled_jobs_wait_for_their_time),
        T(priority_order),
        T(priority_beats_age_but_not_schedule),
        T(max_retries_default_and_override),
        T(params_stored_byte_for_byte),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
