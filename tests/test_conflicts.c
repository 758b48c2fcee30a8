/*
 * Conflicts, limits and pauses (src/core/rules.c, sqlite_gate.c): a claim
 * takes the first due job nothing holds back, a held job reports why and
 * never holds up the jobs behind it, rules changed in one manager bind
 * another on the same database, paused work and paused jobs wait, a pause
 * of a running job turns into the paused status, a cancel wins, and the
 * workers kept for high-class jobs stay free of normal ones.
 *
 * A second manager on the same database stands in for a second process:
 * while a job runs in one manager's jm_run_once, its execute asks the
 * other manager to claim.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "test_util.h"

typedef struct fx fx;
typedef jm_decision (*run_fn)(fx *f, jm_ctx *ctx);

struct fx {
    char *dir;
    char *db;
    jm_manager *m;
    jm_manager *other;
    run_fn fn; /* what a run in `m` does; NULL: completes */
    char ran[16][JM_JOB_ID_SIZE]; /* ids in the order they ran, both managers */
    int nran;
    int other_ran; /* what jm_run_once of `other` ran inside fn */
    atomic_int yielded; /* jm_ctx_should_yield() as fn saw it */
    /* The pool test. */
    atomic_int release;
    atomic_int normal_running, normal_peak, high_done;
};

static void record(fx *f, jm_ctx *ctx)
{
    if (f->nran < 16)
        snprintf(f->ran[f->nran++], JM_JOB_ID_SIZE, "%s", jm_job_id(jm_ctx_job(ctx)));
}

static jm_decision execute(void *self, jm_ctx *ctx)
{
    fx *f = self;
    record(f, ctx);
    run_fn fn = f->fn;
    f->fn = NULL; /* only the outer run: the other manager's runs complete */
    if (fn)
        return fn(f, ctx);
    return jm_decision_completed("ok", NULL);
}

static const char *const types[] = {"AA", "BB", "CO", "BK", "CL", "FL"};

static void register_all(fx *f, jm_manager *m)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        jm_executor ex = {JM_EXECUTOR_VERSION, types[i], "test", 1, NULL, execute, NULL,
                          JM_CLASS_NORMAL, NULL};
        assert_int_equal(jm_register(m, &ex, f), JM_OK);
    }
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    jm_config c = tu_config(f->db);
    assert_int_equal(jm_open(&c, &f->m), JM_OK);
    assert_int_equal(jm_open(&c, &f->other), JM_OK);
    register_all(f, f->m);
    register_all(f, f->other);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    jm_close(f->other);
    jm_close(f->m);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void create(fx *f, const char *type, const char *resource, int priority,
                   char id[JM_JOB_ID_SIZE])
{
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.resource = resource;
    o.priority = priority;
    int rc = jm_create(f->m, type, NULL, &o, id);
    if (rc != JM_OK)
        fail_msg("jm_create: %s: %s", jm_err_name(rc), jm_last_error());
}

static int run(jm_manager *m, int max)
{
    int ran = -1;
    int rc = jm_run_once(m, max, &ran);
    if (rc != JM_OK)
        fail_msg("jm_run_once: %s: %s", jm_err_name(rc), jm_last_error());
    return ran;
}

static jm_job *getj(fx *f, const char *id)
{
    jm_job *j = NULL;
    if (jm_get(f->m, id, &j) != JM_OK)
        fail_msg("jm_get: %s", jm_last_error());
    return j;
}

static int status_of(fx *f, const char *id)
{
    jm_job *j = getj(f, id);
    int s = (int)jm_job_status(j);
    jm_job_free(j);
    return s;
}

/* The blocked_by of job `id`, copied ("" if none). */
static void blocked_by(fx *f, const char *id, char *out, size_t size)
{
    jm_job *j = getj(f, id);
    snprintf(out, size, "%s", jm_job_blocked_by(j) ? jm_job_blocked_by(j) : "");
    jm_job_free(j);
}

/* While the outer job runs, the other manager claims one job. */
static jm_decision other_claims(fx *f, jm_ctx *ctx)
{
    (void)ctx;
    f->other_ran = run(f->other, 1);
    return jm_decision_completed("ok", NULL);
}

/* A compact holds its table: a backup of it (higher priority) is passed
 * over, a flush of it behind the backup runs, and the backup reports the
 * compact as its holder until the compact ends. */
static void conflicting_job_is_passed_over(void **state)
{
    fx *f = *state;
    char co[JM_JOB_ID_SIZE], bk[JM_JOB_ID_SIZE], fl[JM_JOB_ID_SIZE];
    create(f, "CO", "app.t1", 10, co);
    create(f, "BK", "app.t1", 5, bk);
    create(f, "FL", "app.t1", 1, fl);
    f->fn = other_claims;
    assert_int_equal(run(f->m, 1), 1);
    assert_int_equal(f->other_ran, 1);
    assert_int_equal(f->nran, 2);
    assert_string_equal(f->ran[0], co);
    assert_string_equal(f->ran[1], fl);
    char why[JM_JOB_ID_SIZE + 64];
    blocked_by(f, bk, why, sizeof why);
    assert_string_equal(why, co);
    assert_int_equal(status_of(f, bk), JM_STATUS_QUEUED);
    /* The holder is gone: the backup runs and holds nothing back. */
    assert_int_equal(run(f->other, 1), 1);
    assert_string_equal(f->ran[2], bk);
    assert_int_equal(status_of(f, bk), JM_STATUS_COMPLETED);
    blocked_by(f, bk, why, sizeof why);
    assert_string_equal(why, "");
}

/* Jobs without a resource, or on another resource, never conflict. */
static void other_resources_run_side_by_side(void **state)
{
    fx *f = *state;
    char co[JM_JOB_ID_SIZE], co2[JM_JOB_ID_SIZE], none[JM_JOB_ID_SIZE], none2[JM_JOB_ID_SIZE];
    create(f, "CO", "app.t1", 10, co);
    create(f, "CO", "app.t2", 5, co2);
    create(f, "CO", NULL, 1, none);
    create(f, "CO", NULL, 0, none2);
    f->fn = other_claims;
    assert_int_equal(run(f->m, 1), 1);
    assert_int_equal(f->other_ran, 1);
    assert_string_equal(f->ran[0], co);
    assert_string_equal(f->ran[1], co2);
    f->fn = other_claims;
    assert_int_equal(run(f->m, 1), 1);
    assert_int_equal(f->other_ran, 1);
    assert_string_equal(f->ran[2], none);
    assert_string_equal(f->ran[3], none2);
}

/* A conflict set in one manager binds the other; lifting it lets the
 * held job run at once. */
static void conflict_set_binds_every_manager(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_conflict_set(f->m, "AA", "BB", 1), JM_OK);
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE];
    create(f, "AA", "r", 2, a);
    create(f, "BB", "r", 1, b);
    f->fn = other_claims;
    assert_int_equal(run(f->m, 1), 1);
    assert_int_equal(f->other_ran, 0);
    char why[JM_JOB_ID_SIZE + 64];
    blocked_by(f, b, why, sizeof why);
    assert_string_equal(why, a);
    /* Symmetric, and allowed again once set off. */
    assert_int_equal(jm_conflict_set(f->other, "BB", "AA", 0), JM_OK);
    char a2[JM_JOB_ID_SIZE];
    create(f, "AA", "r", 9, a2);
    f->fn = other_claims;
    assert_int_equal(run(f->m, 1), 1);
    assert_string_equal(f->ran[1], a2);
    assert_int_equal(f->other_ran, 1);
    assert_string_equal(f->ran[2], b);
}

/* Cleanup excludes every type on its resource by default. */
static void cleanup_excludes_everything_on_its_resource(void **state)
{
    fx *f = *state;
    char cl[JM_JOB_ID_SIZE], fl[JM_JOB_ID_SIZE], fl2[JM_JOB_ID_SIZE];
    create(f, "CL", "app.t1", 10, cl);
    create(f, "FL", "app.t1", 5, fl);
    create(f, "FL", "app.t2", 1, fl2);
    f->fn = other_claims;
    assert_int_equal(run(f->m, 1), 1);
    assert_string_equal(f->ran[1], fl2);
    char why[JM_JOB_ID_SIZE + 64];
    blocked_by(f, fl, why, sizeof why);
    assert_string_equal(why, cl);
}

/* The rules read back: the defaults, then what was set, in order. */
static void rules_list_back(void **state)
{
    fx *f = *state;
    jm_conflict *c = NULL;
    size_t nc = 0;
    assert_int_equal(jm_conflict_list(f->m, &c, &nc), JM_OK);
    assert_int_equal(nc, 4);
    assert_string_equal(c[0].type_a, "*");
    assert_string_equal(c[0].type_b, "CL");
    assert_string_equal(c[2].type_a, "BK");
    assert_string_equal(c[2].type_b, "CO");
    assert_int_equal(c[2].exclusive, 1);
    jm_conflict_list_free(c);
    assert_int_equal(jm_conflict_set(f->other, "BB", "AA", 1), JM_OK);
    assert_int_equal(jm_conflict_set(f->other, "CO", "BK", 0), JM_OK);
    assert_int_equal(jm_conflict_list(f->m, &c, &nc), JM_OK);
    assert_int_equal(nc, 5);
    assert_string_equal(c[2].type_a, "AA"); /* stored with type_a <= type_b */
    assert_string_equal(c[2].type_b, "BB");
    assert_string_equal(c[3].type_a, "BK");
    assert_int_equal(c[3].exclusive, 0);
    jm_conflict_list_free(c);

    jm_limit *l = (jm_limit *)1;
    size_t nl = 9;
    assert_int_equal(jm_limit_list(f->m, &l, &nl), JM_OK);
    assert_null(l);
    assert_int_equal(nl, 0);
    assert_int_equal(jm_limit_set(f->m, "AA", JM_EACH_RESOURCE, 2), JM_OK);
    assert_int_equal(jm_limit_set(f->m, NULL, NULL, 7), JM_OK);
    assert_int_equal(jm_limit_set(f->m, NULL, "hot", 1), JM_OK);
    assert_int_equal(jm_limit_set(f->m, NULL, "hot", 3), JM_OK); /* replaced */
    assert_int_equal(jm_limit_list(f->other, &l, &nl), JM_OK);
    assert_int_equal(nl, 3);
    assert_string_equal(l[0].type, "");
    assert_null(l[0].resource);
    assert_int_equal(l[0].max_running, 7);
    assert_string_equal(l[1].resource, "hot");
    assert_int_equal(l[1].max_running, 3);
    assert_string_equal(l[2].type, "AA");
    assert_string_equal(l[2].resource, JM_EACH_RESOURCE);
    jm_limit_list_free(l, nl);
    assert_int_equal(jm_limit_list(NULL, &l, &nl), JM_EINVAL);
    assert_int_equal(jm_conflict_list(f->m, NULL, &nc), JM_EINVAL);
    jm_limit_list_free(NULL, 2);
    jm_conflict_list_free(NULL);
}

/* A per-type limit of 1: while one AA runs, no other AA starts anywhere;
 * a job of another type behind it does. */
static void limit_per_type(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_limit_set(f->m, "AA", NULL, 1), JM_OK);
    char a1[JM_JOB_ID_SIZE], a2[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE];
    create(f, "AA", "r1", 10, a1);
    create(f, "AA", "r2", 5, a2);
    create(f, "BB", "r3", 1, b);
    f->fn = other_claims;
    assert_int_equal(run(f->m, 1), 1);
    assert_string_equal(f->ran[1], b);
    char why[JM_JOB_ID_SIZE + 64];
    blocked_by(f, a2, why, sizeof why);
    assert_non_null(strstr(why, "limit:"));
    /* Removed: nothing holds the second back. */
    assert_int_equal(jm_limit_set(f->m, "AA", NULL, 0), JM_OK);
    assert_int_equal(run(f->other, 1), 1);
    assert_string_equal(f->ran[2], a2);
}

/* One job at a time on each resource, of any type. */
static void limit_on_each_resource(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_limit_set(f->m, NULL, JM_EACH_RESOURCE, 1), JM_OK);
    char a1[JM_JOB_ID_SIZE], b1[JM_JOB_ID_SIZE], a2[JM_JOB_ID_SIZE];
    create(f, "AA", "r1", 10, a1);
    create(f, "BB", "r1", 5, b1);
    create(f, "AA", "r2", 1, a2);
    f->fn = other_claims;
    assert_int_equal(run(f->m, 1), 1);
    assert_string_equal(f->ran[1], a2);
    assert_int_equal(status_of(f, b1), JM_STATUS_QUEUED);
}

/* A limit on one resource caps it alone. */
static void limit_on_one_resource(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_limit_set(f->m, NULL, "hot", 1), JM_OK);
    char h1[JM_JOB_ID_SIZE], h2[JM_JOB_ID_SIZE], c1[JM_JOB_ID_SIZE];
    create(f, "AA", "hot", 10, h1);
    create(f, "BB", "hot", 5, h2);
    create(f, "AA", "cold", 1, c1);
    f->fn = other_claims;
    assert_int_equal(run(f->m, 1), 1);
    assert_string_equal(f->ran[1], c1);
}

/* A paused type is not claimed by any manager; resuming releases it. */
static void pause_type_and_resume(void **state)
{
    fx *f = *state;
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE];
    create(f, "AA", NULL, 10, a);
    create(f, "BB", NULL, 1, b);
    assert_int_equal(jm_pause(f->other, JM_PAUSE_TYPE, "AA"), JM_OK);
    assert_int_equal(jm_pause(f->other, JM_PAUSE_TYPE, "AA"), JM_OK); /* no change */
    jm_pause_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(jm_paused_list(f->m, &list, &n), JM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].scope, JM_PAUSE_TYPE);
    assert_string_equal(list[0].what, "AA");
    assert_true(list[0].since_ms > 0);
    jm_paused_list_free(list, n);
    assert_int_equal(run(f->m, 1), 1);
    assert_string_equal(f->ran[0], b);
    assert_int_equal(run(f->m, 1), 0);
    assert_int_equal(status_of(f, a), JM_STATUS_QUEUED);
    assert_int_equal(jm_resume(f->m, JM_PAUSE_TYPE, "AA"), JM_OK);
    assert_int_equal(jm_resume(f->m, JM_PAUSE_TYPE, "AA"), JM_ENOTFOUND);
    assert_int_equal(run(f->m, 1), 1);
    assert_string_equal(f->ran[1], a);
    assert_int_equal(jm_paused_list(f->m, &list, &n), JM_OK);
    assert_int_equal(n, 0);
    assert_null(list);
}

static void pause_all_and_resource(void **state)
{
    fx *f = *state;
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE];
    create(f, "AA", "r1", 10, a);
    create(f, "BB", "r2", 1, b);
    assert_int_equal(jm_pause(f->m, JM_PAUSE_ALL, NULL), JM_OK);
    assert_int_equal(run(f->other, 4), 0);
    assert_int_equal(jm_pause(f->m, JM_PAUSE_RESOURCE, "r1"), JM_OK);
    assert_int_equal(jm_resume(f->m, JM_PAUSE_ALL, NULL), JM_OK);
    assert_int_equal(run(f->other, 4), 1);
    assert_string_equal(f->ran[0], b);
    assert_int_equal(status_of(f, a), JM_STATUS_QUEUED);
    char why[128];
    blocked_by(f, a, why, sizeof why);
    assert_non_null(strstr(why, "r1"));
    assert_int_equal(jm_resume(f->m, JM_PAUSE_RESOURCE, "r1"), JM_OK);
    assert_int_equal(run(f->other, 4), 1);
    assert_string_equal(f->ran[1], a);
}

/* A waiting job pauses at once, waits, cannot be paused twice, and is
 * requeued by jm_resume_job; a paused job can be cancelled. */
static void pause_waiting_job(void **state)
{
    fx *f = *state;
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE];
    create(f, "AA", NULL, 0, a);
    create(f, "AA", NULL, 0, b);
    assert_int_equal(jm_pause_job(f->m, a), JM_OK);
    assert_int_equal(status_of(f, a), JM_STATUS_PAUSED);
    assert_int_equal(jm_pause_job(f->m, a), JM_ESTATE);
    assert_int_equal(jm_resume_job(f->m, b), JM_ESTATE);
    assert_int_equal(run(f->m, 4), 1);
    assert_string_equal(f->ran[0], b);
    assert_int_equal(jm_pause_job(f->m, b), JM_ESTATE); /* completed */
    assert_int_equal(jm_resume_job(f->m, a), JM_OK);
    assert_int_equal(status_of(f, a), JM_STATUS_QUEUED);
    assert_int_equal(run(f->m, 4), 1);
    assert_int_equal(status_of(f, a), JM_STATUS_COMPLETED);
    char c[JM_JOB_ID_SIZE];
    create(f, "AA", NULL, 0, c);
    assert_int_equal(jm_pause_job(f->m, c), JM_OK);
    assert_int_equal(jm_cancel(f->m, c), JM_OK);
    assert_int_equal(status_of(f, c), JM_STATUS_CANCELLED);
    assert_int_equal(jm_resume_job(f->m, c), JM_ESTATE);
    char missing[JM_JOB_ID_SIZE];
    snprintf(missing, sizeof missing, "%s", c);
    missing[strlen(missing) - 1] = missing[strlen(missing) - 1] == '1' ? '2' : '1';
    assert_int_equal(jm_pause_job(f->m, missing), JM_ENOTFOUND);
}

/* A running job asked to pause sees it at once, yields with `continue`
 * and waits paused, its retries unspent; resumed it runs again. */
static jm_decision pause_self(fx *f, jm_ctx *ctx)
{
    const char *id = jm_job_id(jm_ctx_job(ctx));
    assert_int_equal(jm_ctx_should_yield(ctx), 0);
    assert_int_equal(jm_pause_job(f->m, id), JM_OK);
    assert_int_equal(jm_pause_job(f->m, id), JM_ESTATE); /* requested already */
    f->yielded = jm_ctx_should_yield(ctx);
    assert_int_equal(jm_ctx_checkpoint(ctx, "{\"at\":3}"), JM_OK);
    return jm_decision_continue("yielding", 0);
}

static void pause_running_job(void **state)
{
    fx *f = *state;
    char a[JM_JOB_ID_SIZE];
    create(f, "AA", NULL, 0, a);
    f->fn = pause_self;
    assert_int_equal(run(f->m, 1), 1);
    assert_int_equal(f->yielded, 1);
    jm_job *j = getj(f, a);
    assert_int_equal(jm_job_status(j), JM_STATUS_PAUSED);
    assert_int_equal(jm_job_retry_count(j), 0);
    assert_int_equal(jm_job_pause_requested(j), 0);
    assert_string_equal(jm_job_checkpoint(j), "{\"at\":3}");
    jm_job_free(j);
    assert_int_equal(run(f->m, 1), 0);
    assert_int_equal(jm_resume_job(f->m, a), JM_OK);
    assert_int_equal(run(f->m, 1), 1);
    assert_int_equal(status_of(f, a), JM_STATUS_COMPLETED);
}

/* Withdrawn while running, the request leaves the job to go on. */
static jm_decision pause_then_withdraw(fx *f, jm_ctx *ctx)
{
    const char *id = jm_job_id(jm_ctx_job(ctx));
    assert_int_equal(jm_pause_job(f->m, id), JM_OK);
    assert_int_equal(jm_ctx_should_yield(ctx), 1);
    assert_int_equal(jm_resume_job(f->m, id), JM_OK);
    f->yielded = jm_ctx_should_yield(ctx);
    return jm_decision_continue("next step", 0);
}

static void resume_withdraws_a_request(void **state)
{
    fx *f = *state;
    char a[JM_JOB_ID_SIZE];
    create(f, "AA", NULL, 0, a);
    f->fn = pause_then_withdraw;
    f->yielded = -1;
    assert_int_equal(run(f->m, 1), 1);
    assert_int_equal(f->yielded, 0);
    assert_int_equal(status_of(f, a), JM_STATUS_QUEUED);
}

/* A cancel wins over a pause request. */
static jm_decision pause_then_cancel(fx *f, jm_ctx *ctx)
{
    const char *id = jm_job_id(jm_ctx_job(ctx));
    assert_int_equal(jm_pause_job(f->m, id), JM_OK);
    assert_int_equal(jm_cancel(f->m, id), JM_OK);
    return jm_decision_continue("yielding", 0);
}

static void cancel_wins_over_pause(void **state)
{
    fx *f = *state;
    char a[JM_JOB_ID_SIZE];
    create(f, "AA", NULL, 0, a);
    f->fn = pause_then_cancel;
    assert_int_equal(run(f->m, 1), 1);
    assert_int_equal(status_of(f, a), JM_STATUS_CANCELLED);
    assert_int_equal(jm_resume_job(f->m, a), JM_ESTATE);
}

/* A paused job still holds its idempotency key. */
static void paused_job_keeps_its_key(void **state)
{
    fx *f = *state;
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = "k1";
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "AA", NULL, &o, a), JM_OK);
    assert_int_equal(jm_pause_job(f->m, a), JM_OK);
    assert_int_equal(jm_create(f->m, "AA", NULL, &o, b), JM_ECONFLICT);
    /* Cancelled, it lets the key go. */
    assert_int_equal(jm_cancel(f->m, a), JM_OK);
    assert_int_equal(jm_create(f->m, "AA", NULL, &o, b), JM_OK);
}

static void bad_input(void **state)
{
    fx *f = *state;
    jm_manager *m = f->m;
    assert_int_equal(jm_conflict_set(NULL, "AA", "BB", 1), JM_EINVAL);
    assert_int_equal(jm_conflict_set(m, NULL, "BB", 1), JM_EINVAL);
    assert_int_equal(jm_conflict_set(m, "aa", "BB", 1), JM_EINVAL);
    assert_int_equal(jm_conflict_set(m, "AAA", "BB", 1), JM_EINVAL);
    assert_int_equal(jm_conflict_set(m, "*", "*", 1), JM_EINVAL);
    assert_int_equal(jm_conflict_set(m, "A'", "BB", 1), JM_EINVAL);
    assert_int_equal(jm_limit_set(NULL, "AA", NULL, 1), JM_EINVAL);
    assert_int_equal(jm_limit_set(m, "AA", NULL, -1), JM_EINVAL);
    assert_int_equal(jm_limit_set(m, "x", NULL, 1), JM_EINVAL);
    assert_int_equal(jm_limit_set(m, NULL, "", 1), JM_EINVAL);
    char big[JM_MAX_RESOURCE_BYTES + 2];
    memset(big, 'r', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(jm_limit_set(m, NULL, big, 1), JM_EINVAL);
    assert_int_equal(jm_limit_set(m, NULL, "bad\ttab", 1), JM_EINVAL);
    assert_int_equal(jm_pause(NULL, JM_PAUSE_ALL, NULL), JM_EINVAL);
    assert_int_equal(jm_pause(m, JM_PAUSE_ALL, "AA"), JM_EINVAL);
    assert_int_equal(jm_pause(m, JM_PAUSE_TYPE, NULL), JM_EINVAL);
    assert_int_equal(jm_pause(m, JM_PAUSE_TYPE, "a"), JM_EINVAL);
    assert_int_equal(jm_pause(m, JM_PAUSE_RESOURCE, NULL), JM_EINVAL);
    assert_int_equal(jm_pause(m, JM_PAUSE_RESOURCE, JM_EACH_RESOURCE), JM_EINVAL);
    assert_int_equal(jm_pause(m, JM_PAUSE_RESOURCE, big), JM_EINVAL);
    assert_int_equal(jm_pause(m, (jm_pause_scope)42, NULL), JM_EINVAL);
    assert_int_equal(jm_resume(m, JM_PAUSE_ALL, NULL), JM_ENOTFOUND);
    jm_pause_entry *list = (jm_pause_entry *)1;
    size_t n = 7;
    assert_int_equal(jm_paused_list(NULL, &list, &n), JM_EINVAL);
    assert_null(list);
    assert_int_equal(n, 0);
    assert_int_equal(jm_paused_list(m, NULL, &n), JM_EINVAL);
    jm_paused_list_free(NULL, 3);
    assert_int_equal(jm_pause_job(NULL, "x"), JM_EINVAL);
    assert_int_equal(jm_pause_job(m, NULL), JM_EINVAL);
    assert_int_equal(jm_pause_job(m, "not an id"), JM_EINVAL);
    assert_int_equal(jm_resume_job(m, "AA-'; DROP TABLE jm_jobs"), JM_EINVAL);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.resource = big;
    char id[JM_JOB_ID_SIZE];
    assert_int_not_equal(jm_create(m, "AA", NULL, &o, id), JM_OK);
    o.resource = JM_EACH_RESOURCE;
    assert_int_equal(jm_create(m, "AA", NULL, &o, id), JM_EINVAL);
    /* Nothing of it reached the rules: jobs still run. */
    create(f, "AA", "r", 0, id);
    assert_int_equal(run(m, 1), 1);
    /* Quoting: a resource with SQL in it is only a name. */
    assert_int_equal(jm_pause(m, JM_PAUSE_RESOURCE, "r'); DELETE FROM jm_jobs; --"), JM_OK);
    assert_int_equal(jm_resume(m, JM_PAUSE_RESOURCE, "r'); DELETE FROM jm_jobs; --"), JM_OK);
    assert_int_equal(status_of(f, id), JM_STATUS_COMPLETED);
}

/* Thousands of blocked jobs ahead never hold up the one behind them, and
 * all of them run once their holder is gone. */
static jm_decision claim_past_many(fx *f, jm_ctx *ctx)
{
    (void)ctx;
    f->other_ran = run(f->other, 1);
    return jm_decision_completed("ok", NULL);
}

static void many_blocked_jobs_hold_nothing_up(void **state)
{
    fx *f = *state;
    char co[JM_JOB_ID_SIZE], fl[JM_JOB_ID_SIZE];
    create(f, "CO", "t", 100, co);
    enum { N = 2000 };
    jm_new_job *jobs = calloc(N, sizeof *jobs);
    char (*ids)[JM_JOB_ID_SIZE] = calloc(N, JM_JOB_ID_SIZE);
    for (int i = 0; i < N; i++) {
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.resource = "t";
        o.priority = 50;
        jm_new_job j = {"BK", NULL, o};
        jobs[i] = j;
    }
    assert_int_equal(jm_create_many(f->m, jobs, N, ids), JM_OK);
    create(f, "FL", "u", 1, fl);
    f->fn = claim_past_many;
    assert_int_equal(run(f->m, 1), 1);
    assert_int_equal(f->other_ran, 1);
    assert_string_equal(f->ran[1], fl);
    /* The compact is done: each backup runs, one at a time by default. */
    int total = 0, got;
    while ((got = run(f->other, 64)) > 0)
        total += got;
    assert_int_equal(total, N);
    jm_filter flt = JM_FILTER_INIT;
    flt.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
    int64_t done = 0;
    assert_int_equal(jm_count(f->m, &flt, &done), JM_OK);
    assert_int_equal(done, N + 2);
    free(jobs);
    free(ids);
}

/* ---- a pause from another manager reaches a running job ---- */

static jm_decision run_until_yield(void *self, jm_ctx *ctx)
{
    fx *f = self;
    atomic_store(&f->normal_running, 1);
    int64_t end = tu_mono_ms() + 60000;
    while (!jm_ctx_should_yield(ctx) && tu_mono_ms() < end) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    f->yielded = jm_ctx_should_yield(ctx);
    return jm_decision_continue("yielded", 0);
}

static int job_running(void *arg)
{
    fx *f = arg;
    return atomic_load(&f->normal_running) == 1;
}

typedef struct status_wait {
    fx *f;
    const char *id;
    int want;
} status_wait;

static int reached(void *arg)
{
    status_wait *w = arg;
    return tu_status(w->f->other, w->id) == w->want;
}

static void pause_reaches_another_manager(void **state)
{
    fx *f = *state;
    jm_config c = tu_config(f->db);
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&c, &m), JM_OK);
    jm_executor ex = {JM_EXECUTOR_VERSION, "YY", "yield", 1, NULL, run_until_yield, NULL,
                      JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(m, &ex, f), JM_OK);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(m, "YY", NULL, NULL, id), JM_OK);
    assert_int_equal(jm_start(m, 1), JM_OK);
    assert_true(tu_wait_until(job_running, f, TU_TIMEOUT_MS));
    /* `other` runs nothing of YY: the request reaches the runner by its
     * row, at the next heartbeat. */
    assert_int_equal(jm_pause_job(f->other, id), JM_OK);
    status_wait w = {f, id, JM_STATUS_PAUSED};
    assert_true(tu_wait_until(reached, &w, TU_TIMEOUT_MS));
    assert_int_equal(f->yielded, 1);
    assert_int_equal(jm_stop(m, 10000), JM_OK);
    jm_close(m);
}

/* ---- workers kept for high-class jobs ---- */

static jm_decision normal_exec(void *self, jm_ctx *ctx)
{
    (void)ctx;
    fx *f = self;
    int now = atomic_fetch_add(&f->normal_running, 1) + 1;
    int peak = atomic_load(&f->normal_peak);
    while (now > peak && !atomic_compare_exchange_weak(&f->normal_peak, &peak, now))
        ;
    while (!atomic_load(&f->release)) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    atomic_fetch_sub(&f->normal_running, 1);
    return jm_decision_completed("ok", NULL);
}

static jm_decision high_exec(void *self, jm_ctx *ctx)
{
    (void)ctx;
    fx *f = self;
    atomic_fetch_add(&f->high_done, 1);
    return jm_decision_completed("ok", NULL);
}

static int normal_full(void *arg)
{
    fx *f = arg;
    return atomic_load(&f->normal_running) == 2;
}

static int high_ran(void *arg)
{
    fx *f = arg;
    return atomic_load(&f->high_done) == 3;
}

typedef struct {
    jm_manager *m;
    int64_t want;
} done_wait;

static int all_done(void *arg)
{
    done_wait *w = arg;
    jm_filter flt = JM_FILTER_INIT;
    flt.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
    int64_t done = 0;
    return jm_count(w->m, &flt, &done) == JM_OK && done == w->want;
}

static void high_workers_stay_free_for_high_jobs(void **state)
{
    fx *f = *state;
    jm_config c = tu_config(f->db);
    c.high_workers = 1;
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&c, &m), JM_OK);
    jm_executor nn = {JM_EXECUTOR_VERSION, "NN", "normal", 1, NULL, normal_exec, NULL,
                      JM_CLASS_NORMAL, NULL};
    jm_executor hh = {JM_EXECUTOR_VERSION, "HH", "high", 1, NULL, high_exec, NULL, JM_CLASS_HIGH,
                      NULL};
    assert_int_equal(jm_register(m, &nn, f), JM_OK);
    assert_int_equal(jm_register(m, &hh, f), JM_OK);
    assert_int_equal(jm_start(m, 1), JM_EINVAL); /* no worker left for normal jobs */
    char id[JM_JOB_ID_SIZE];
    for (int i = 0; i < 8; i++)
        assert_int_equal(jm_create(m, "NN", NULL, NULL, id), JM_OK);
    assert_int_equal(jm_start(m, 3), JM_OK);
    assert_true(tu_wait_until(normal_full, f, 30000));
    /* Two normal jobs hold two workers; the third is kept: high jobs
     * created now run on it while the normal ones still run. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(jm_create(m, "HH", NULL, NULL, id), JM_OK);
    assert_true(tu_wait_until(high_ran, f, 30000));
    assert_int_equal(atomic_load(&f->normal_running), 2);
    atomic_store(&f->release, 1);
    done_wait w = {m, 11};
    assert_true(tu_wait_until(all_done, &w, 60000));
    assert_int_equal(jm_stop(m, 10000), JM_OK);
    assert_int_equal(atomic_load(&f->normal_peak), 2);
    jm_close(m);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(conflicting_job_is_passed_over),
        T(other_resources_run_side_by_side),
        T(conflict_set_binds_every_manager),
        T(cleanup_excludes_everything_on_its_resource),
        T(rules_list_back),
        T(limit_per_type),
        T(limit_on_each_resource),
        T(limit_on_one_resource),
        T(pause_type_and_resume),
        T(pause_all_and_resource),
        T(pause_waiting_job),
        T(pause_running_job),
        T(resume_withdraws_a_request),
        T(cancel_wins_over_pause),
        T(paused_job_keeps_its_key),
        T(bad_input),
        T(many_blocked_jobs_hold_nothing_up),
        T(pause_reaches_another_manager),
        T(high_workers_stay_free_for_high_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
