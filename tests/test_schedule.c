/*
 * Schedules (src/core/schedule.c, schedule_fire.c, the store's schedule
 * ops): creating and checking specs, exactly one job per fire time,
 * overlap and misfire policies, pause and resume, updates, deletion,
 * pausing after failures in a row, and firing from several managers. The
 * clock is the fake one of cfg.now_ms; jm_run_once fires what is due.
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

#include "jobmgr.h"
#include "schedule.h"
#include "test_util.h"

#define T0 INT64_C(1800000000000) /* a round second, 2027-01-15 */
#define MIN_MS INT64_C(60000)

typedef struct fixture {
    char *dir;
    char *db;
    tu_clock clk;
    jm_manager *m;
    _Atomic int runs;
    _Atomic int fail; /* the executor fails its jobs */
} fixture;

static jm_decision sj_execute(void *self, jm_ctx *ctx)
{
    fixture *f = self;
    (void)ctx;
    atomic_fetch_add(&f->runs, 1);
    return atomic_load(&f->fail) ? jm_decision_failed("told to fail", NULL)
                                 : jm_decision_completed(NULL, NULL);
}

static int sj_validate(void *self, const cJSON *params, char *err, size_t errlen)
{
    (void)self;
    if (cJSON_GetObjectItemCaseSensitive(params, "bad")) {
        snprintf(err, errlen, "'bad' is not allowed");
        return 1;
    }
    return 0;
}

static const jm_executor sj = {JM_EXECUTOR_VERSION, "SJ", "scheduled", 1, sj_validate,
                               sj_execute, NULL, JM_CLASS_NORMAL, NULL};

static jm_manager *open_manager(fixture *f)
{
    jm_config cfg = tu_config(f->db);
    cfg.now_ms = tu_fake_now;
    cfg.now_user = &f->clk;
    cfg.max_retries = 0;
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    assert_int_equal(jm_register(m, &sj, f), JM_OK);
    return m;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clk.now, T0);
    f->m = open_manager(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    jm_close(f->m);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static jm_schedule_spec every(const char *name, int64_t interval_ms)
{
    jm_schedule_spec s = JM_SCHEDULE_SPEC_INIT;
    s.name = name;
    s.type = "SJ";
    s.params_json = "{\"n\":1}";
    s.interval_ms = interval_ms;
    s.anchor_ms = T0;
    return s;
}

static int64_t count_jobs(fixture *f)
{
    return tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs");
}

static int64_t count_where(fixture *f, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jm_jobs WHERE %s", where);
    return tu_sql_int(f->db, sql);
}

/* Fires what is due and runs up to `max` jobs. */
static int run(fixture *f, int max)
{
    int ran = 0;
    assert_int_equal(jm_run_once(f->m, max, &ran), JM_OK);
    return ran;
}

/* --- specs ---------------------------------------------------------------- */

static void expect_bad(fixture *f, jm_schedule_spec s, int code, const char *needle)
{
    char id[JM_SCHEDULE_ID_SIZE];
    int rc = jm_schedule_create(f->m, &s, id);
    if (rc != code || !strstr(jm_last_error(), needle))
        fail_msg("expected %s with '%s', got %s: %s", jm_err_name(code), needle,
                 jm_err_name(rc), jm_last_error());
}

static void bad_specs_are_refused_and_store_nothing(void **state)
{
    fixture *f = *state;
    jm_schedule_spec s = every("x", 1000);
    s.name = NULL;
    expect_bad(f, s, JM_EINVAL, "name is NULL");
    s = every("", 1000);
    expect_bad(f, s, JM_EINVAL, "non-empty");
    s = every("x", 1000);
    s.version = 99;
    expect_bad(f, s, JM_EINVAL, "version");
    s = every("x", 0);
    expect_bad(f, s, JM_EINVAL, "exactly one of cron and interval_ms (got neither)");
    s = every("x", 999);
    expect_bad(f, s, JM_EINVAL, "interval_ms must be 1000");
    s = every("x", 1000);
    s.tz = "Europe/Berlin";
    expect_bad(f, s, JM_EINVAL, "tz applies to a cron");
    s = every("x", 1000);
    s.type = "ZZ";
    expect_bad(f, s, JM_ENOEXEC, "no executor registered for type ZZ");
    s = every("x", 1000);
    s.params_json = "{\"bad\":1}";
    expect_bad(f, s, JM_EINVAL, "'bad' is not allowed");
    s = every("x", 1000);
    s.params_json = "[1]";
    expect_bad(f, s, JM_EJSON, "JSON object");
    s = every("x", 1000);
    s.opts.idempotency_key = "k";
    expect_bad(f, s, JM_EINVAL, "idempotency key");
    s = every("x", 1000);
    s.opts.run_at_ms = T0;
    expect_bad(f, s, JM_EINVAL, "run_at_ms");
    s = every("x", 1000);
    s.jitter_ms = -1;
    expect_bad(f, s, JM_EINVAL, "jitter_ms");
    s = every("x", 1000);
    s.overlap = (jm_overlap)7;
    expect_bad(f, s, JM_EINVAL, "overlap policy 7");
    s = every("x", 1000);
    s.misfire = JM_MISFIRE_CATCH_UP;
    expect_bad(f, s, JM_EINVAL, "catch_up_max must be 1 to");
    s = every("x", 1000);
    s.catch_up_max = 3;
    expect_bad(f, s, JM_EINVAL, "catch_up_max applies");
    s = every("x", 1000);
    s.pause_after_failures = -1;
    expect_bad(f, s, JM_EINVAL, "pause_after_failures");
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, NULL, id), JM_EINVAL);
    s = every("x", 1000);
    assert_int_equal(jm_schedule_create(f->m, &s, NULL), JM_EINVAL);
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_schedules"), 0);
}

static void create_get_list_and_names_are_unique(void **state)
{
    fixture *f = *state;
    jm_schedule_spec s = every("nightly", MIN_MS);
    s.opts.priority = 7;
    s.opts.namespace_id = "app";
    s.overlap = JM_OVERLAP_ALLOW;
    char id[JM_SCHEDULE_ID_SIZE], id2[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    assert_memory_equal(id, "SC-", 3);
    char type[3];
    assert_int_equal(jm_job_id_parse(id, type), JM_OK);
    assert_int_equal(jm_schedule_create(f->m, &s, id2), JM_ECONFLICT);
    assert_non_null(strstr(jm_last_error(), "nightly"));

    jm_schedule *sc = NULL;
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_string_equal(sc->id, id);
    assert_string_equal(sc->spec.name, "nightly");
    assert_string_equal(sc->spec.type, "SJ");
    assert_string_equal(sc->spec.params_json, "{\"n\":1}");
    assert_string_equal(sc->spec.opts.namespace_id, "app");
    assert_int_equal(sc->spec.opts.priority, 7);
    assert_int_equal(sc->spec.overlap, JM_OVERLAP_ALLOW);
    assert_int_equal(sc->next_fire_ms, T0 + MIN_MS);
    assert_int_equal(sc->created_at, T0);
    jm_schedule_free(sc);
    /* By name too. */
    assert_int_equal(jm_schedule_get(f->m, "nightly", &sc), JM_OK);
    assert_string_equal(sc->id, id);
    jm_schedule_free(sc);
    assert_int_equal(jm_schedule_get(f->m, "nope", &sc), JM_ENOTFOUND);
    assert_null(sc);

    s = every("alpha", MIN_MS);
    assert_int_equal(jm_schedule_create(f->m, &s, id2), JM_OK);
    jm_schedule **list = NULL;
    size_t n = 0;
    assert_int_equal(jm_schedule_list(f->m, &list, &n), JM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->spec.name, "alpha");
    assert_string_equal(list[1]->spec.name, "nightly");
    jm_schedule_list_free(list, n);
}

/* --- firing --------------------------------------------------------------- */

static void each_fire_time_gets_one_job(void **state)
{
    fixture *f = *state;
    jm_schedule_spec s = every("tick", MIN_MS);
    s.overlap = JM_OVERLAP_ALLOW;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    /* Nothing before the first fire time. */
    tu_clock_advance(&f->clk, MIN_MS - 1);
    assert_int_equal(run(f, 10), 0);
    assert_int_equal(count_jobs(f), 0);
    for (int k = 1; k <= 5; k++) {
        tu_clock_advance(&f->clk, k == 1 ? 1 : MIN_MS);
        assert_int_equal(run(f, 10), 1);
        /* Firing again at the same time creates nothing more. */
        assert_int_equal(run(f, 10), 0);
    }
    assert_int_equal(count_jobs(f), 5);
    assert_int_equal(atomic_load(&f->runs), 5);
    char where[200];
    snprintf(where, sizeof where, "schedule_id = '%s' AND fire_time = %lld", id,
             (long long)(T0 + 3 * MIN_MS));
    assert_int_equal(count_where(f, where), 1);
    /* The job says which schedule and fire time made it. */
    jm_job_list *l = NULL;
    jm_filter all = JM_FILTER_INIT;
    assert_int_equal(jm_list(f->m, &all, &l), JM_OK);
    const jm_job *j = jm_job_list_at(l, 0);
    assert_string_equal(jm_job_schedule_id(j), id);
    assert_int_equal(jm_job_fire_time(j), T0 + MIN_MS);
    assert_string_equal(jm_job_params(j), "{\"n\":1}");
    jm_job_list_free(l);
    jm_schedule *sc = NULL;
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->last_fire_ms, T0 + 5 * MIN_MS);
    assert_int_equal(sc->next_fire_ms, T0 + 6 * MIN_MS);
    assert_true(sc->last_job_id[0] != '\0');
    jm_schedule_free(sc);
    /* A plain job carries no schedule. */
    char jid[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "SJ", NULL, NULL, jid), JM_OK);
    jm_job *pj = NULL;
    assert_int_equal(jm_get(f->m, jid, &pj), JM_OK);
    assert_null(jm_job_schedule_id(pj));
    assert_int_equal(jm_job_fire_time(pj), 0);
    jm_job_free(pj);
}

/* Fires what is due without running anything; returns the jobs created. */
static int fire(fixture *f)
{
    int n = -1;
    assert_int_equal(jm__schedules_fire_due(f->m, &n), JM_OK);
    return n;
}

/* The fires of an overlap policy: while the schedule's first job waits,
 * then while it runs. */
static void overlap_case(fixture *f, jm_overlap policy, int while_waiting, int while_running)
{
    jm_schedule_spec s = every("o", MIN_MS);
    s.overlap = policy;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    tu_clock_advance(&f->clk, MIN_MS);
    assert_int_equal(fire(f), 1);
    tu_clock_advance(&f->clk, MIN_MS);
    assert_int_equal(fire(f), while_waiting);
    /* Every job of it now runs (as a worker elsewhere would have it). */
    tu_sql_exec(f->db, "UPDATE jm_jobs SET status = 2, attempts = 1 WHERE status = 1");
    tu_clock_advance(&f->clk, MIN_MS);
    assert_int_equal(fire(f), while_running);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_int_equal(r->schedule_jobs, 1 + while_waiting + while_running);
    assert_int_equal(r->schedule_skipped, 2 - while_waiting - while_running);
    jm_stats_free(r);
}

static void overlap_skip(void **state)
{
    overlap_case(*state, JM_OVERLAP_SKIP, 0, 0);
}

static void overlap_queue_one(void **state)
{
    overlap_case(*state, JM_OVERLAP_QUEUE_ONE, 0, 1);
}

static void overlap_allow(void **state)
{
    overlap_case(*state, JM_OVERLAP_ALLOW, 1, 1);
}

/* A paused job of the schedule is still active: skip fires no other
 * beside it, queue-one counts it as the one waiting. */
static void overlap_counts_a_paused_job(void **state)
{
    fixture *f = *state;
    const jm_overlap policies[] = {JM_OVERLAP_SKIP, JM_OVERLAP_QUEUE_ONE};
    for (size_t i = 0; i < 2; i++) {
        jm_schedule_spec s = every(i ? "pq" : "ps", MIN_MS);
        s.overlap = policies[i];
        char id[JM_SCHEDULE_ID_SIZE];
        assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
        tu_clock_advance(&f->clk, MIN_MS);
        assert_int_equal(fire(f), 1);
        jm_schedule *sc = NULL;
        assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
        assert_int_equal(jm_pause_job(f->m, sc->last_job_id), JM_OK);
        jm_schedule_free(sc);
        tu_clock_advance(&f->clk, MIN_MS);
        assert_int_equal(fire(f), 0);
        assert_int_equal(jm_schedule_delete(f->m, id), JM_OK);
    }
}

/* Ten fire times pass with no manager running, then one fires. */
static int64_t after_downtime(fixture *f, jm_misfire policy, int catch_up_max, int64_t late_ms)
{
    jm_schedule_spec s = every("m", MIN_MS);
    s.overlap = JM_OVERLAP_ALLOW;
    s.misfire = policy;
    s.catch_up_max = catch_up_max;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    tu_clock_advance(&f->clk, 10 * MIN_MS + late_ms);
    fire(f);
    jm_schedule *sc = NULL;
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    /* Whatever the policy, the next fire time is the first in the future. */
    assert_int_equal(sc->next_fire_ms, T0 + 11 * MIN_MS);
    jm_schedule_free(sc);
    return count_jobs(f);
}

static void misfire_skip(void **state)
{
    fixture *f = *state;
    /* The latest time (10) is on time, 5 s late: it runs, the 9 before not. */
    assert_int_equal(after_downtime(f, JM_MISFIRE_SKIP, 0, 5000), 1);
    assert_int_equal(count_where(f, "fire_time = 1800000600000"), 1);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_int_equal(r->schedule_misfires, 9);
    assert_int_equal(r->schedule_lag_max_ms, 5000);
    jm_stats_free(r);
}

static void misfire_skip_when_even_the_latest_is_late(void **state)
{
    fixture *f = *state;
    assert_int_equal(after_downtime(f, JM_MISFIRE_SKIP, 0, JM_MISFIRE_GRACE_MS / 2 + 1000), 1);
    teardown(state);
    setup(state);
    f = *state;
    /* Past the grace: the latest is missed too, and nothing runs. */
    jm_schedule_spec s = every("m", 10 * MIN_MS);
    s.misfire = JM_MISFIRE_SKIP;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    tu_clock_advance(&f->clk, 10 * MIN_MS + JM_MISFIRE_GRACE_MS + 1);
    assert_int_equal(fire(f), 0);
    assert_int_equal(count_jobs(f), 0);
}

static void misfire_run_once(void **state)
{
    fixture *f = *state;
    /* Every 10 minutes; ten times pass and the latest is 2 minutes late,
     * past the grace: all missed. One job, for the latest. */
    jm_schedule_spec s = every("r", 10 * MIN_MS);
    s.misfire = JM_MISFIRE_RUN_ONCE;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    tu_clock_advance(&f->clk, 100 * MIN_MS + 2 * MIN_MS);
    assert_int_equal(fire(f), 1);
    assert_int_equal(count_jobs(f), 1);
    char where[100];
    snprintf(where, sizeof where, "fire_time = %lld", (long long)(T0 + 100 * MIN_MS));
    assert_int_equal(count_where(f, where), 1);
    jm_schedule *sc = NULL;
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->next_fire_ms, T0 + 110 * MIN_MS);
    jm_schedule_free(sc);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_int_equal(r->schedule_misfires, 10);
    jm_stats_free(r);
}

static void misfire_catch_up(void **state)
{
    fixture *f = *state;
    /* Times 1..10 are due, 10 on time: the 3 most recent missed ones
     * (7, 8, 9) and 10. */
    assert_int_equal(after_downtime(f, JM_MISFIRE_CATCH_UP, 3, 1000), 4);
    for (int k = 7; k <= 10; k++) {
        char where[100];
        snprintf(where, sizeof where, "fire_time = %lld", (long long)(T0 + k * MIN_MS));
        assert_int_equal(count_where(f, where), 1);
    }
}

static void pause_and_resume(void **state)
{
    fixture *f = *state;
    jm_schedule_spec s = every("p", MIN_MS);
    s.overlap = JM_OVERLAP_ALLOW;
    s.misfire = JM_MISFIRE_RUN_ONCE;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    assert_int_equal(jm_schedule_pause(f->m, "p"), JM_OK);
    tu_clock_advance(&f->clk, 5 * MIN_MS);
    assert_int_equal(fire(f), 0);
    jm_schedule *sc = NULL;
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->spec.paused, 1);
    jm_schedule_free(sc);
    /* Resumed after the grace: the missed times make one job (run_once). */
    tu_clock_advance(&f->clk, JM_MISFIRE_GRACE_MS + 1);
    assert_int_equal(jm_schedule_resume(f->m, id), JM_OK);
    assert_int_equal(fire(f), 1);
    assert_int_equal(count_where(f, "fire_time = 1800000360000"), 1);
    assert_int_equal(jm_schedule_pause(f->m, "nope"), JM_ENOTFOUND);
    assert_int_equal(jm_schedule_resume(f->m, NULL), JM_EINVAL);
}

static void update_keeps_or_moves_the_next_fire(void **state)
{
    fixture *f = *state;
    jm_schedule_spec s = every("u", MIN_MS);
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    tu_clock_advance(&f->clk, 30000);
    /* Same trigger, new parameters and name: the next fire stays. */
    s.params_json = "{\"n\":2}";
    s.name = "u2";
    assert_int_equal(jm_schedule_update(f->m, "u", &s), JM_OK);
    jm_schedule *sc = NULL;
    assert_int_equal(jm_schedule_get(f->m, "u2", &sc), JM_OK);
    assert_string_equal(sc->id, id);
    assert_int_equal(sc->next_fire_ms, T0 + MIN_MS);
    assert_string_equal(sc->spec.params_json, "{\"n\":2}");
    jm_schedule_free(sc);
    /* A new trigger: its first time after now. */
    s = every("u2", 10 * MIN_MS);
    s.anchor_ms = 0;
    assert_int_equal(jm_schedule_update(f->m, id, &s), JM_OK);
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->next_fire_ms, T0 + 30000 + 10 * MIN_MS);
    jm_schedule_free(sc);
    /* A bad spec changes nothing. */
    s.interval_ms = 5;
    assert_int_equal(jm_schedule_update(f->m, id, &s), JM_EINVAL);
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->spec.interval_ms, 10 * MIN_MS);
    jm_schedule_free(sc);
    /* Renaming onto another schedule's name conflicts. */
    jm_schedule_spec o = every("other", MIN_MS);
    char oid[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &o, oid), JM_OK);
    s = every("other", MIN_MS);
    assert_int_equal(jm_schedule_update(f->m, id, &s), JM_ECONFLICT);
    assert_int_equal(jm_schedule_update(f->m, "gone", &s), JM_ENOTFOUND);
}

static void update_while_its_job_runs(void **state)
{
    fixture *f = *state;
    jm_schedule_spec s = every("w", MIN_MS);
    s.overlap = JM_OVERLAP_ALLOW;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    tu_clock_advance(&f->clk, MIN_MS);
    assert_int_equal(fire(f), 1);
    tu_sql_exec(f->db, "UPDATE jm_jobs SET status = 2, attempts = 1");
    s.params_json = "{\"n\":3}";
    assert_int_equal(jm_schedule_update(f->m, id, &s), JM_OK);
    /* The running job keeps what it was created with; the next fire takes
     * the new spec. */
    assert_int_equal(count_where(f, "status = 2 AND params = '{\"n\":1}'"), 1);
    tu_clock_advance(&f->clk, MIN_MS);
    assert_int_equal(fire(f), 1);
    assert_int_equal(count_where(f, "status = 1 AND params = '{\"n\":3}'"), 1);
}

static void delete_leaves_its_jobs(void **state)
{
    fixture *f = *state;
    jm_schedule_spec s = every("d", MIN_MS);
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    tu_clock_advance(&f->clk, MIN_MS);
    assert_int_equal(fire(f), 1);
    assert_int_equal(jm_schedule_delete(f->m, "d"), JM_OK);
    assert_int_equal(jm_schedule_delete(f->m, id), JM_ENOTFOUND);
    tu_clock_advance(&f->clk, MIN_MS);
    assert_int_equal(fire(f), 0);
    /* The job it made still runs, and its outcome touches no schedule. */
    assert_int_equal(run(f, 10), 1);
    assert_int_equal(count_where(f, "status = 4"), 1);
}

static void pauses_after_failures_in_a_row(void **state)
{
    fixture *f = *state;
    jm_schedule_spec s = every("f", MIN_MS);
    s.pause_after_failures = 3;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    atomic_store(&f->fail, 1);
    jm_schedule *sc = NULL;
    for (int k = 1; k <= 2; k++) {
        tu_clock_advance(&f->clk, MIN_MS);
        assert_int_equal(run(f, 10), 1);
    }
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->consecutive_failures, 2);
    jm_schedule_free(sc);
    /* A success resets the count. */
    atomic_store(&f->fail, 0);
    tu_clock_advance(&f->clk, MIN_MS);
    assert_int_equal(run(f, 10), 1);
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->consecutive_failures, 0);
    jm_schedule_free(sc);
    atomic_store(&f->fail, 1);
    for (int k = 1; k <= 3; k++) {
        tu_clock_advance(&f->clk, MIN_MS);
        assert_int_equal(run(f, 10), 1);
    }
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->consecutive_failures, 3);
    assert_int_equal(sc->spec.paused, 1);
    jm_schedule_free(sc);
    tu_clock_advance(&f->clk, MIN_MS);
    assert_int_equal(run(f, 10), 0);
    /* Resuming clears the count. */
    assert_int_equal(jm_schedule_resume(f->m, id), JM_OK);
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->consecutive_failures, 0);
    jm_schedule_free(sc);
}

static void clock_jumps(void **state)
{
    fixture *f = *state;
    jm_schedule_spec s = every("j", MIN_MS);
    s.overlap = JM_OVERLAP_ALLOW;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    tu_clock_advance(&f->clk, MIN_MS);
    assert_int_equal(fire(f), 1);
    /* Back 10 minutes: the time already fired is not fired again, and
     * nothing fires until the clock is back past the next fire time. */
    tu_clock_advance(&f->clk, -10 * MIN_MS);
    assert_int_equal(fire(f), 0);
    tu_clock_advance(&f->clk, 10 * MIN_MS + MIN_MS - 1);
    assert_int_equal(fire(f), 0);
    tu_clock_advance(&f->clk, 1);
    assert_int_equal(fire(f), 1);
    /* Forward a day: the times in between are misfires (skipped by
     * default), the next fire is the first after the new now. */
    tu_clock_advance(&f->clk, 24 * 60 * MIN_MS + 1000);
    assert_int_equal(fire(f), 1);
    jm_schedule *sc = NULL;
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->next_fire_ms, T0 + (2 + 24 * 60 + 1) * MIN_MS);
    jm_schedule_free(sc);
    assert_int_equal(count_jobs(f), 3);
}

static void cron_in_a_zone(void **state)
{
    fixture *f = *state;
    /* T0 is 2027-01-15T08:00:00Z; 09:30 in Berlin (CET, +1) is 08:30Z. */
    jm_schedule_spec s = JM_SCHEDULE_SPEC_INIT;
    s.name = "berlin";
    s.type = "SJ";
    s.cron = "30 9 * * *";
    s.tz = "Europe/Berlin";
    s.overlap = JM_OVERLAP_ALLOW; /* the first job never runs here */
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    jm_schedule *sc = NULL;
    assert_int_equal(jm_schedule_get(f->m, id, &sc), JM_OK);
    assert_int_equal(sc->next_fire_ms, T0 + 30 * MIN_MS);
    assert_string_equal(sc->spec.cron, "30 9 * * *");
    assert_string_equal(sc->spec.tz, "Europe/Berlin");
    jm_schedule_free(sc);
    int64_t want[2];
    assert_int_equal(jm_schedule_next("30 9 * * *", "Europe/Berlin", T0, 2, want), JM_OK);
    tu_clock_advance(&f->clk, 30 * MIN_MS);
    assert_int_equal(fire(f), 1);
    tu_clock_advance(&f->clk, 24 * 60 * MIN_MS);
    assert_int_equal(fire(f), 1);
    char where[100];
    for (int i = 0; i < 2; i++) {
        snprintf(where, sizeof where, "fire_time = %lld", (long long)want[i]);
        assert_int_equal(count_where(f, where), 1);
    }
}

static void bad_cron_and_zone_are_refused(void **state)
{
    fixture *f = *state;
    jm_schedule_spec s = JM_SCHEDULE_SPEC_INIT;
    s.name = "bad";
    s.type = "SJ";
    s.cron = "61 * * * *";
    expect_bad(f, s, JM_EINVAL, "out of range");
    s.cron = "0 0 30 2 *";
    expect_bad(f, s, JM_EINVAL, "never fires");
    s.cron = "* * * * *";
    s.tz = "Mars/Olympus";
    expect_bad(f, s, JM_EINVAL, "Mars/Olympus");
    s.tz = "../../etc/passwd";
    expect_bad(f, s, JM_EINVAL, "");
    s.tz = NULL;
    s.anchor_ms = 5;
    expect_bad(f, s, JM_EINVAL, "anchor_ms applies to an interval");
    s.anchor_ms = 0;
    s.interval_ms = 1000;
    expect_bad(f, s, JM_EINVAL, "(got both)");
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_schedules"), 0);
}

/* --- several managers ----------------------------------------------------- */

typedef struct firer {
    fixture *f;
    jm_manager *m;
    _Atomic int *go;
    int created;
} firer;

static void *fire_loop(void *arg)
{
    firer *fr = arg;
    while (!atomic_load(fr->go))
        ;
    for (int i = 0; i < 200; i++) {
        int n = 0;
        assert_int_equal(jm__schedules_fire_due(fr->m, &n), JM_OK);
        fr->created += n;
    }
    return NULL;
}

static void managers_fire_each_time_once(void **state)
{
    fixture *f = *state;
    enum { SCHEDULES = 20, MANAGERS = 4, STEPS = 30 };
    for (int i = 0; i < SCHEDULES; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%d", i);
        jm_schedule_spec s = every(name, 1000 * (1 + i % 3));
        s.overlap = JM_OVERLAP_ALLOW;
        char id[JM_SCHEDULE_ID_SIZE];
        assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    }
    jm_manager *ms[MANAGERS];
    ms[0] = f->m;
    for (int i = 1; i < MANAGERS; i++)
        ms[i] = open_manager(f);
    long total = 0;
    for (int step = 0; step < STEPS; step++) {
        tu_clock_advance(&f->clk, 1000);
        _Atomic int go = 0;
        firer fr[MANAGERS];
        pthread_t t[MANAGERS];
        for (int i = 0; i < MANAGERS; i++) {
            fr[i] = (firer){f, ms[i], &go, 0};
            assert_int_equal(pthread_create(&t[i], NULL, fire_loop, &fr[i]), 0);
        }
        atomic_store(&go, 1);
        for (int i = 0; i < MANAGERS; i++) {
            pthread_join(t[i], NULL);
            total += fr[i].created;
        }
    }
    for (int i = 1; i < MANAGERS; i++)
        jm_close(ms[i]);
    /* Each schedule fired once per fire time that passed: every second,
     * every two or every three seconds over 30 s. */
    long expected = 0;
    for (int i = 0; i < SCHEDULES; i++)
        expected += STEPS / (1 + i % 3);
    assert_int_equal(count_jobs(f), expected);
    assert_int_equal(total, expected);
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM (SELECT schedule_id, fire_time "
                                       "FROM jm_jobs GROUP BY 1, 2 HAVING count(*) > 1) AS twice"),
                     0);
}

/* --- the run loop ----------------------------------------------------------- */

static int runs_at_least_3(void *arg)
{
    fixture *f = arg;
    return atomic_load(&f->runs) >= 3;
}

static void the_loop_fires_when_due(void **state)
{
    fixture *f = *state;
    /* Real time here: the loop sleeps until the next fire time. */
    jm_close(f->m);
    jm_config cfg = tu_config(f->db);
    cfg.poll_interval_ms = 60000; /* the fire must not wait for a poll */
    assert_int_equal(jm_open(&cfg, &f->m), JM_OK);
    assert_int_equal(jm_register(f->m, &sj, f), JM_OK);
    jm_schedule_spec s = every("loop", 1000);
    s.anchor_ms = 0;
    char id[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &s, id), JM_OK);
    assert_int_equal(jm_start(f->m, 2), JM_OK);
    assert_true(tu_wait_until(runs_at_least_3, f, 30000));
    assert_int_equal(jm_stop(f->m, 10000), JM_OK);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->m, &r), JM_OK);
    assert_true(r->schedule_jobs >= 3);
    jm_stats_free(r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(bad_specs_are_refused_and_store_nothing),
        T(create_get_list_and_names_are_unique),
        T(each_fire_time_gets_one_job),
        T(overlap_skip),
        T(overlap_queue_one),
        T(overlap_allow),
        T(overlap_counts_a_paused_job),
        T(misfire_skip),
        T(misfire_skip_when_even_the_latest_is_late),
        T(misfire_run_once),
        T(misfire_catch_up),
        T(pause_and_resume),
        T(update_keeps_or_moves_the_next_fire),
        T(update_while_its_job_runs),
        T(delete_leaves_its_jobs),
        T(pauses_after_failures_in_a_row),
        T(clock_jumps),
        T(cron_in_a_zone),
        T(bad_cron_and_zone_are_refused),
        T(managers_fire_each_time_once),
        T(the_loop_fires_when_due),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
