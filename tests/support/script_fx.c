/* The shared scripted-executor fixture; see script_fx.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "script_fx.h"

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

jm_decision script_execute(void *self, jm_ctx *ctx)
{
    script *s = self;
    int i = s->runs++;
    const jm_job *cj = jm_ctx_job(ctx);
    if (i < MAX_RUNS) {
        snprintf(s->id[i], JM_JOB_ID_SIZE, "%s", jm_job_id(cj));
        s->ctx_status[i] = (int)jm_job_status(cj);
        s->seen_checkpoint[i] = dup_or_null(jm_job_checkpoint(cj));
        jm_job *j = NULL;
        if (jm_get(s->m, jm_job_id(cj), &j) == JM_OK) {
            s->seen_status[i] = (int)jm_job_status(j);
            s->seen_retry[i] = jm_job_retry_count(j);
            s->seen_message[i] = dup_or_null(jm_job_message(j));
            s->seen_trace[i] = dup_or_null(jm_job_exception_trace(j));
            jm_job_free(j);
        } else {
            s->seen_status[i] = -1;
        }
    }
    if (s->fn)
        return s->fn(s, ctx, i);
    if (s->n == 0)
        return jm_decision_completed(NULL, NULL);
    return s->d[i < s->n ? i : s->n - 1];
}

void script_reset(script *s)
{
    for (int i = 0; i < MAX_RUNS; i++) {
        free(s->seen_message[i]);
        free(s->seen_trace[i]);
        free(s->seen_checkpoint[i]);
    }
    jm_manager *m = s->m;
    memset(s, 0, sizeof *s);
    s->m = m;
}

void script_set(script *s, int n, const jm_decision *d)
{
    script_reset(s);
    s->n = n;
    for (int i = 0; i < n; i++)
        s->d[i] = d[i];
}

jm_executor script_executor(const char *type, int cancellable)
{
    jm_executor ex = {0};
    ex.version = JM_EXECUTOR_VERSION;
    ex.type = type;
    ex.name = "script";
    ex.cancellable = cancellable;
    ex.execute = script_execute;
    return ex;
}

void fx_open(fx *f)
{
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    assert_non_null(f->m);
    f->s.m = f->m;
    jm_executor ex = script_executor("TS", 1);
    assert_int_equal(jm_register(f->m, &ex, &f->s), JM_OK);
}

/* Closes and reopens the manager with f->cfg (after a test changed it). */
void fx_reopen(fx *f)
{
    jm_close(f->m);
    f->m = NULL;
    fx_open(f);
}

int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clock.now, T0);
    f->cfg = tu_config(f->db);
    f->cfg.now_ms = tu_fake_now;
    f->cfg.now_user = &f->clock;
    f->cfg.node_id = "test-node";
    fx_open(f);
    *state = f;
    return 0;
}

int fx_teardown(void **state)
{
    fx *f = *state;
    jm_job_free(f->cur);
    jm_close(f->m);
    script_reset(&f->s);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

int64_t now_of(fx *f)
{
    return tu_fake_now(&f->clock);
}

/* Reads job `id` (must exist); the result lives until the next getj(). */
const jm_job *getj(fx *f, const char *id)
{
    jm_job_free(f->cur);
    f->cur = NULL;
    assert_int_equal(jm_get(f->m, id, &f->cur), JM_OK);
    assert_non_null(f->cur);
    return f->cur;
}

int run1(fx *f)
{
    int ran = -1;
    assert_int_equal(jm_run_once(f->m, 1, &ran), JM_OK);
    return ran;
}

void create_ok(fx *f, const char *type, const char *params, const jm_create_opts *o,
                      char id[JM_JOB_ID_SIZE])
{
    memset(id, 0, JM_JOB_ID_SIZE);
    int rc = jm_create(f->m, type, params, o, id);
    if (rc != JM_OK)
        fail_msg("jm_create(%s, %s) = %s: %s", type, params ? params : "NULL", jm_err_name(rc),
                 jm_last_error());
    assert_int_equal(strlen(id), 39);
}

int64_t count_all(fx *f)
{
    int64_t n = -1;
    assert_int_equal(jm_count(f->m, NULL, &n), JM_OK);
    return n;
}
