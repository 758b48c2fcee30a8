/* Implementation of the executor test harness; see exec_harness.h. */
#define _GNU_SOURCE
#include "exec_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctx.h"
#include "manager.h"

int xh_open(xh *x, const jm_host *host)
{
    memset(x, 0, sizeof *x);
    x->dir = tu_tmpdir();
    if (!x->dir)
        return JM_EIO;
    x->db = tu_path(x->dir, "jobs.db");
    atomic_store(&x->clock.now, XH_T0);
    x->cfg = tu_config(x->db);
    x->cfg.now_ms = tu_fake_now;
    x->cfg.now_user = &x->clock;
    x->cfg.host = host;
    return jm_open(&x->cfg, &x->m);
}

void xh_close(xh *x)
{
    jm_close(x->m);
    x->m = NULL;
    free(x->db);
    tu_rmdir(x->dir);
    x->db = NULL;
    x->dir = NULL;
}

int xh_create(xh *x, const char *type, const char *params, char id[JM_JOB_ID_SIZE])
{
    return jm_create(x->m, type, params, NULL, id);
}

int xh_run1(xh *x, const char *id)
{
    int ran = 0;
    jm_run_once(x->m, 1, &ran);
    return tu_status(x->m, id);
}

static int finished(int s)
{
    return s == JM_STATUS_COMPLETED || s == JM_STATUS_FAILED || s == JM_STATUS_CANCELLED;
}

int xh_run_to_end(xh *x, const char *id, int max_runs, int *runs)
{
    int count = 0, s = tu_status(x->m, id);
    while (s >= 0 && !finished(s) && count < max_runs) {
        int64_t wait = xh_due_in(x, id);
        if (wait > 0)
            tu_clock_advance(&x->clock, wait);
        int ran = 0;
        if (jm_run_once(x->m, 1, &ran) != JM_OK || ran == 0)
            break;
        count++;
        s = tu_status(x->m, id);
    }
    if (runs)
        *runs = count;
    if (s == JM_STATUS_FAILED) {
        /* Diagnostics for a test that did not expect it. */
        char *msg = xh_message(x, id);
        printf("# job %s failed: %s\n", id, msg);
        free(msg);
    }
    return s;
}

static cJSON *job_json(xh *x, const char *id, int checkpoint)
{
    jm_job *j = NULL;
    if (jm_get(x->m, id, &j) != JM_OK)
        return NULL;
    const char *text = checkpoint ? jm_job_checkpoint(j) : jm_job_result(j);
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    jm_job_free(j);
    return v;
}

int64_t xh_metric(xh *x, const char *id, const char *name)
{
    cJSON *v = job_json(x, id, 0);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, name);
    int64_t r = cJSON_IsNumber(f) ? (int64_t)f->valuedouble : -1;
    cJSON_Delete(v);
    return r;
}

int64_t xh_checkpoint_int(xh *x, const char *id, const char *name)
{
    cJSON *v = job_json(x, id, 1);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, name);
    int64_t r = INT64_MIN;
    if (cJSON_IsNumber(f))
        r = (int64_t)f->valuedouble;
    else if (cJSON_IsString(f))
        r = strtoll(f->valuestring, NULL, 10);
    cJSON_Delete(v);
    return r;
}

char *xh_message(xh *x, const char *id)
{
    jm_job *j = NULL;
    if (jm_get(x->m, id, &j) != JM_OK)
        return strdup("");
    const char *msg = jm_job_message(j);
    char *copy = strdup(msg ? msg : "");
    jm_job_free(j);
    return copy;
}

int64_t xh_due_in(xh *x, const char *id)
{
    jm_job *j = NULL;
    if (jm_get(x->m, id, &j) != JM_OK)
        return 0;
    int64_t d = jm_job_run_at(j) - tu_fake_now(&x->clock);
    jm_job_free(j);
    return d;
}

int xh_rejects(xh *x, const char *type, const char *params, const char *field)
{
    char id[JM_JOB_ID_SIZE];
    int rc = jm_create(x->m, type, params, NULL, id);
    if (rc != JM_EINVAL) {
        printf("# %s %s: expected JM_EINVAL, got %s\n", type, params, jm_err_name(rc));
        return 0;
    }
    if (!strstr(jm_last_error(), field)) {
        printf("# %s %s: error does not name \"%s\": %s\n", type, params, field,
               jm_last_error());
        return 0;
    }
    return 1;
}

void xh_assert_message_has(xh *x, const char *id, const char *needle)
{
    char *msg = xh_message(x, id);
    if (!strstr(msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
    free(msg);
}

void xh_request_pause(xh *x)
{
    jm_manager *m = x->m;
    pthread_mutex_lock(&m->lock);
    for (jm_ctx *c = m->active; c; c = c->next)
        atomic_store(&c->paused, 1);
    jm__throttle_wake(m);
    pthread_mutex_unlock(&m->lock);
}
