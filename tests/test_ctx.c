/*
 * The job context (src/core/ctx.c): checkpoints saved durably and read by
 * the next run, their limits and their guard by the claim; progress
 * clamping and the stored final value; jm_ctx_strf lifetimes; log lines
 * prefixed with the job id; follow-up jobs; host and manager pointers.
 */
#define _GNU_SOURCE
#include <math.h>
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

typedef struct fx fx;
typedef jm_decision (*run_fn)(fx *f, jm_ctx *ctx);

struct fx {
    char *dir;
    char *db;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
    tu_log log;
    run_fn fn;
    int runs;
    int rc[16];
    char *text[4];
    const void *ptr[4];
    char child[JM_JOB_ID_SIZE];
};

static jm_decision execute(void *self, jm_ctx *ctx)
{
    fx *f = self;
    f->runs++;
    if (f->fn)
        return f->fn(f, ctx);
    return jm_decision_completed("ok", NULL);
}

static int host_marker; /* stands in for a jm_host: only its address matters */

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clock.now, T0);
    tu_log_init(&f->log);
    f->cfg = tu_config(f->db);
    f->cfg.now_ms = tu_fake_now;
    f->cfg.now_user = &f->clock;
    f->cfg.node_id = "ctx-node";
    f->cfg.log_fn = tu_log_fn;
    f->cfg.log_user = &f->log;
    f->cfg.log_level = JM_LOG_DEBUG;
    f->cfg.host = (const struct jm_host *)&host_marker;
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
    tu_log_destroy(&f->log);
    for (int i = 0; i < 4; i++)
        free(f->text[i]);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void create_ok(fx *f, const char *type, const char *params, char id[JM_JOB_ID_SIZE])
{
    int rc = jm_create(f->m, type, params, NULL, id);
    if (rc != JM_OK)
        fail_msg("jm_create: %s", jm_last_error());
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
        fail_msg("jm_get: %s", jm_last_error());
    return j;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ------------------------------------------------------------------------
 * Checkpoints
 * ------------------------------------------------------------------------ */

static char *json_string_of_size(size_t total)
{
    char *s = malloc(total + 1);
    s[0] = '"';
    memset(s + 1, 'c', total - 2);
    s[total - 1] = '"';
    s[total] = '\0';
    return s;
}

static jm_decision checkpointing(fx *f, jm_ctx *ctx)
{
    if (f->runs == 1) {
        f->text[0] = dup_or_null(jm_job_checkpoint(jm_ctx_job(ctx)));
        f->rc[0] = jm_ctx_checkpoint(ctx, "{\"a\":");
        f->rc[1] = jm_ctx_checkpoint(ctx, "not json");
        f->rc[2] = jm_ctx_checkpoint(ctx, NULL);
        char *big = json_string_of_size(JM_MAX_PARAMS_BYTES + 1);
        f->rc[3] = jm_ctx_checkpoint(ctx, big);
        free(big);
        big = json_string_of_size(JM_MAX_PARAMS_BYTES);
        f->rc[4] = jm_ctx_checkpoint(ctx, big); /* exactly the limit */
        free(big);
        f->rc[5] = jm_ctx_checkpoint(ctx, "[1,2]"); /* any JSON value */
        f->rc[6] = jm_ctx_checkpoint(ctx, "{\"offset\":42}");
        /* The running job's own record follows the save. */
        f->text[1] = dup_or_null(jm_job_checkpoint(jm_ctx_job(ctx)));
        /* Saved now, not at the end of the run. */
        jm_job *j = NULL;
        if (jm_get(jm_ctx_manager(ctx), jm_job_id(jm_ctx_job(ctx)), &j) == JM_OK) {
            f->text[2] = dup_or_null(jm_job_checkpoint(j));
            jm_job_free(j);
        }
        return jm_decision_continue("one batch done", 0);
    }
    f->text[3] = dup_or_null(jm_job_checkpoint(jm_ctx_job(ctx)));
    return jm_decision_completed("all batches done", NULL);
}

static void checkpoint_persists_for_next_run(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, id);
    f->fn = checkpointing;
    assert_int_equal(run(f, 1), 1);
    assert_null(f->text[0]);
    assert_int_equal(f->rc[0], JM_EJSON);
    assert_int_equal(f->rc[1], JM_EJSON);
    assert_int_equal(f->rc[2], JM_EINVAL);
    assert_int_equal(f->rc[3], JM_ETOOBIG);
    assert_int_equal(f->rc[4], JM_OK);
    assert_int_equal(f->rc[5], JM_OK);
    assert_int_equal(f->rc[6], JM_OK);
    assert_string_equal(f->text[1], "{\"offset\":42}");
    assert_string_equal(f->text[2], "{\"offset\":42}");

    jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_string_equal(jm_job_checkpoint(j), "{\"offset\":42}");
    jm_job_free(j);

    /* A new manager (as after a restart) hands it to the next run. */
    jm_close(f->m);
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    jm_executor fl = {JM_EXECUTOR_VERSION, "FL", "flush", 1, NULL, execute, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(f->m, &fl, f), JM_OK);
    assert_int_equal(run(f, 1), 1);
    assert_string_equal(f->text[3], "{\"offset\":42}");
    assert_int_equal(tu_status(f->m, id), JM_STATUS_COMPLETED);
}

static jm_decision checkpoint_after_loss(fx *f, jm_ctx *ctx)
{
    f->rc[0] = jm_ctx_checkpoint(ctx, "{\"before\":1}");
    /* The lease runs out and another node's recovery requeues the job (its
     * own node never takes a job from a live owner). */
    jm_config other = f->cfg;
    other.node_id = "another-node";
    jm_manager *o = NULL;
    f->rc[1] = jm_open(&other, &o);
    tu_clock_advance(&f->clock, f->cfg.lease_ms + 1);
    int recovered = 0;
    if (f->rc[1] == JM_OK)
        f->rc[1] = jm_recover(o, &recovered);
    jm_close(o);
    f->rc[2] = recovered;
    f->rc[3] = jm_ctx_checkpoint(ctx, "{\"after\":1}");
    return jm_decision_completed("too late", NULL);
}

static void checkpoint_refused_once_claim_lost(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, id);
    f->fn = checkpoint_after_loss;
    assert_int_equal(run(f, 1), 1);
    assert_int_equal(f->rc[0], JM_OK);
    assert_int_equal(f->rc[1], JM_OK);
    assert_int_equal(f->rc[2], 1);
    assert_int_equal(f->rc[3], JM_ESTATE);
    jm_job *j = getj(f, id);
    /* Neither the late checkpoint nor the late outcome was written. */
    assert_string_equal(jm_job_checkpoint(j), "{\"before\":1}");
    assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
    assert_string_equal(jm_job_message(j), "Recovered after worker was lost");
    jm_job_free(j);
}

/* ------------------------------------------------------------------------
 * Progress
 * ------------------------------------------------------------------------ */

static jm_decision progressing(fx *f, jm_ctx *ctx)
{
    (void)f;
    const cJSON *p = jm_ctx_params(ctx);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(p, "p");
    const cJSON *v;
    cJSON_ArrayForEach(v, steps)
    {
        jm_ctx_progress(ctx, cJSON_GetNumberValue(v));
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "nan")))
        jm_ctx_progress(ctx, NAN);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "complete")))
        return jm_decision_completed(NULL, NULL);
    return jm_decision_failed("stopped to look at the progress", NULL);
}

static void progress_clamped_and_stored(void **state)
{
    fx *f = *state;
    f->fn = progressing;
    const struct {
        const char *params;
        double want;
    } cases[] = {
        {"{\"p\":[0.5,-1]}", 0.0},
        {"{\"p\":[0.5,2]}", 1.0},
        {"{\"p\":[0.5],\"nan\":true}", 0.0},
        {"{\"p\":[0.25,0.37]}", 0.37},
        {"{\"p\":[0.1],\"complete\":true}", 1.0},
        {"{\"p\":[]}", 0.0},
    };
    enum { N = sizeof cases / sizeof *cases };
    char ids[N][JM_JOB_ID_SIZE];
    for (int i = 0; i < N; i++)
        create_ok(f, "FL", cases[i].params, ids[i]);
    assert_int_equal(run(f, 100), N);
    for (int i = 0; i < N; i++) {
        jm_job *j = getj(f, ids[i]);
        if (jm_job_progress(j) != cases[i].want)
            fail_msg("%s: progress %f, want %f", cases[i].params, jm_job_progress(j),
                     cases[i].want);
        jm_job_free(j);
    }
}

/* ------------------------------------------------------------------------
 * Strings, logs, follow-up jobs, host
 * ------------------------------------------------------------------------ */

static jm_decision formatting(fx *f, jm_ctx *ctx)
{
    (void)f;
    const char *msg = jm_ctx_strf(ctx, "processed %d rows of %s", 42, "t1");
    const char *metrics = jm_ctx_strf(ctx, "{\"rows\":%d}", 42);
    /* Many more strings in the same run do not disturb the first. */
    for (int i = 0; i < 200; i++)
        jm_ctx_strf(ctx, "filler %d %0*d", i, 64, i);
    f->rc[0] = strcmp(jm_ctx_strf(NULL, "x"), "");
    if (f->runs == 2) {
        char *long_msg = malloc(3001);
        memset(long_msg, 'm', 3000);
        long_msg[3000] = '\0';
        msg = jm_ctx_strf(ctx, "%s", long_msg);
        free(long_msg);
    }
    return jm_decision_completed(msg, metrics);
}

static void strf_lives_until_recorded(void **state)
{
    fx *f = *state;
    f->fn = formatting;
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, a);
    create_ok(f, "FL", NULL, b);
    assert_int_equal(run(f, 2), 2);
    assert_int_equal(f->rc[0], 0);
    jm_job *j = getj(f, a);
    assert_string_equal(jm_job_message(j), "processed 42 rows of t1");
    assert_string_equal(jm_job_result(j), "{\"rows\":42}");
    jm_job_free(j);
    /* A long strf message is kept up to the limit, marked truncated. */
    j = getj(f, b);
    const char *m = jm_job_message(j);
    assert_true(strlen(m) <= JM_MAX_MESSAGE_BYTES);
    assert_true(strlen(m) > JM_MAX_MESSAGE_BYTES - 20);
    assert_non_null(strstr(m, "truncated"));
    assert_memory_equal(m, "mmmmmmmmmm", 10);
    jm_job_free(j);
}

static jm_decision logging(fx *f, jm_ctx *ctx)
{
    (void)f;
    jm_ctx_log(ctx, JM_LOG_WARN, "hello %d from %s", 5, "inside");
    jm_ctx_log(ctx, JM_LOG_DEBUG, "debug detail");
    jm_ctx_log(ctx, JM_LOG_ERROR, NULL);
    jm_ctx_log(NULL, JM_LOG_ERROR, "nowhere");
    return jm_decision_completed(NULL, NULL);
}

/* Non-zero if `all` has `line` as a whole line. */
static int has_line(const char *all, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = all; (p = strstr(p, line)); p++)
        if ((p == all || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

static void log_lines_carry_job_id(void **state)
{
    fx *f = *state;
    f->fn = logging;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, id);
    int before = atomic_load(&f->log.lines);
    assert_int_equal(run(f, 1), 1);
    char want[128];
    snprintf(want, sizeof want, "[%s] hello 5 from inside", id);
    if (!has_line(f->log.all, want))
        fail_msg("no line '%s' in:\n%s", want, f->log.all);
    snprintf(want, sizeof want, "[%s] debug detail", id);
    assert_true(has_line(f->log.all, want));
    assert_null(strstr(f->log.all, "nowhere"));
    assert_true(atomic_load(&f->log.lines) > before + 1);
}

static jm_decision spawning(fx *f, jm_ctx *ctx)
{
    if (strcmp(jm_job_type(jm_ctx_job(ctx)), "FL") != 0) {
        f->text[0] = dup_or_null(jm_job_params(jm_ctx_job(ctx)));
        return jm_decision_completed("child done", NULL);
    }
    const char *params = jm_ctx_strf(ctx, "{\"parent\":\"%s\"}", jm_job_id(jm_ctx_job(ctx)));
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = "child-of-spawn";
    f->rc[0] = jm_ctx_create_job(ctx, "CL", params, &o, f->child);
    char again[JM_JOB_ID_SIZE] = "";
    f->rc[1] = jm_ctx_create_job(ctx, "CL", params, &o, again);
    f->rc[2] = strcmp(again, f->child);
    f->rc[3] = jm_ctx_create_job(NULL, "CL", params, NULL, again);
    f->rc[4] = jm_ctx_create_job(ctx, "ZZ", NULL, NULL, again);
    return jm_decision_completed("spawned", NULL);
}

static void create_job_from_context(void **state)
{
    fx *f = *state;
    f->fn = spawning;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, id);
    assert_int_equal(run(f, 10), 2);
    assert_int_equal(f->rc[0], JM_OK);
    assert_int_equal(f->rc[1], JM_ECONFLICT);
    assert_int_equal(f->rc[2], 0);
    assert_int_equal(f->rc[3], JM_EINVAL);
    assert_int_equal(f->rc[4], JM_ENOEXEC);
    char want[128];
    snprintf(want, sizeof want, "{\"parent\":\"%s\"}", id);
    assert_string_equal(f->text[0], want);
    jm_job *j = getj(f, f->child);
    assert_string_equal(jm_job_type(j), "CL");
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_string_equal(jm_job_message(j), "child done");
    assert_string_equal(jm_job_params(j), want);
    jm_job_free(j);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_COMPLETED);
}

static jm_decision inspecting(fx *f, jm_ctx *ctx)
{
    f->ptr[0] = jm_ctx_host(ctx);
    f->ptr[1] = jm_ctx_manager(ctx);
    f->ptr[2] = jm_ctx_host(NULL);
    f->ptr[3] = jm_ctx_manager(NULL);
    const jm_job *j = jm_ctx_job(ctx);
    f->rc[0] = (int)jm_job_status(j);
    f->rc[1] = jm_job_attempts(j);
    f->rc[2] = (int)cJSON_GetNumberValue(
        cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "answer"));
    f->rc[3] = jm_ctx_job(NULL) == NULL && jm_ctx_params(NULL) == NULL;
    f->rc[4] = jm_ctx_is_cancelled(ctx);
    f->rc[5] = jm_ctx_is_cancelled(NULL);
    jm_ctx_progress(NULL, 0.5);
    return jm_decision_completed(NULL, NULL);
}

static void host_manager_job_and_params(void **state)
{
    fx *f = *state;
    f->fn = inspecting;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", "{\"answer\":42}", id);
    assert_int_equal(run(f, 1), 1);
    assert_ptr_equal(f->ptr[0], &host_marker);
    assert_ptr_equal(f->ptr[1], f->m);
    assert_null(f->ptr[2]);
    assert_null(f->ptr[3]);
    assert_int_equal(f->rc[0], JM_STATUS_RUNNING);
    assert_int_equal(f->rc[1], 1);
    assert_int_equal(f->rc[2], 42);
    assert_true(f->rc[3]);
    assert_int_equal(f->rc[4], 0);
    assert_int_equal(f->rc[5], 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(checkpoint_persists_for_next_run),
        T(checkpoint_refused_once_claim_lost),
        T(progress_clamped_and_stored),
        T(strf_lives_until_recorded),
        T(log_lines_carry_job_id),
        T(create_job_from_context),
        T(host_manager_job_and_params),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
