/*
 * What an executor may do while it runs: read its job and parameters,
 * notice cancellation, save checkpoints and progress, log, and create
 * follow-up jobs. Writes are guarded by the job's claim, so a worker that
 * lost its job cannot overwrite the new owner's state.
 */
#include "ctx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "json_check.h"
#include "lease.h"
#include "log.h"
#include "manager.h"
#include "start_check.h"

/* Progress is display data: writing it more often than this buys nothing. */
#define JM_PROGRESS_SAVE_INTERVAL_MS 500

struct jm__strf_node {
    jm__strf_node *next;
    char text[];
};

void jm__ctx_init(jm_ctx *ctx, jm_manager *m, jm_job *job, cJSON *params,
                  const jm__executor_entry *entry, int inline_mode)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->m = m;
    ctx->job = job;
    ctx->params = params;
    ctx->entry = *entry;
    ctx->inline_mode = inline_mode;
    ctx->progress = job->progress;
    ctx->next_heartbeat_mono = jm__mono_ms() + jm__heartbeat_interval_ms(m);
    ctx->progress_saved_mono = jm__mono_ms();
    atomic_store(&ctx->cancelled, job->cancel_requested ? 1 : 0);
}

void jm__ctx_release(jm_ctx *ctx)
{
    jm__strf_node *n = ctx->strs;
    while (n) {
        jm__strf_node *next = n->next;
        jm__free(n);
        n = next;
    }
    ctx->strs = NULL;
}

void jm__ctx_activate(jm_ctx *ctx)
{
    jm_manager *m = ctx->m;
    pthread_mutex_lock(&m->lock);
    ctx->activation = ++m->activations;
    ctx->prev = NULL;
    ctx->next = m->active;
    if (m->active)
        m->active->prev = ctx;
    m->active = ctx;
    /* A job started after the shutdown signal sees it at once. */
    if (m->pool.shutdown_signalled && !ctx->inline_mode)
        atomic_store(&ctx->shutdown, 1);
    pthread_mutex_unlock(&m->lock);
}

void jm__ctx_deactivate(jm_ctx *ctx)
{
    jm_manager *m = ctx->m;
    pthread_mutex_lock(&m->lock);
    if (ctx->prev)
        ctx->prev->next = ctx->next;
    else
        m->active = ctx->next;
    if (ctx->next)
        ctx->next->prev = ctx->prev;
    ctx->prev = ctx->next = NULL;
    pthread_mutex_unlock(&m->lock);
}

void jm__ctx_signal(jm_ctx *ctx, int shutdown)
{
    int was = atomic_load(&ctx->cancelled) || atomic_load(&ctx->shutdown);
    if (shutdown)
        atomic_store(&ctx->shutdown, 1);
    else
        atomic_store(&ctx->cancelled, 1);
    if (!was && ctx->entry.ex.cancel)
        ctx->entry.ex.cancel(ctx->entry.self, ctx);
    /* A job waiting in jm_ctx_throttle() returns now. */
    jm__throttle_wake(ctx->m);
}

const jm_job *jm_ctx_job(const jm_ctx *ctx)
{
    return ctx ? ctx->job : NULL;
}

const cJSON *jm_ctx_params(const jm_ctx *ctx)
{
    return ctx ? ctx->params : NULL;
}

const struct jm_host *jm_ctx_host(const jm_ctx *ctx)
{
    return ctx ? ctx->m->cfg.host : NULL;
}

jm_manager *jm_ctx_manager(const jm_ctx *ctx)
{
    return ctx ? ctx->m : NULL;
}

int64_t jm_ctx_now(const jm_ctx *ctx)
{
    return ctx ? jm__now(ctx->m) : 0;
}

/* Without a loop thread (jm_run_once) the executor's own calls renew the
 * lease and pick up cancel requests from other processes. */
/* If a cancel of one of this manager's jobs was accepted on this host
 * since the context last looked (the run journal's counter moved), reads
 * the job's row and flags the context cancelled or lost. */
static void jm__ctx_check_row(jm_ctx *ctx)
{
    jm_manager *m = ctx->m;
    if (!m->journal || atomic_load(&ctx->cancelled))
        return;
    uint64_t now = jm__journal_cancels(m->journal);
    if (now == ctx->seen_cancels)
        return;
    ctx->seen_cancels = now;
    jm__start_verdict v = jm__read_verdict(m, ctx->job);
    /* The flag only: the executor's cancel hook is for a blocked execute,
     * and this runs on the executor's own thread. */
    if (v == JM__START_CANCELLED)
        atomic_store(&ctx->cancelled, 1);
    else if (v == JM__START_LOST)
        atomic_store(&ctx->lost, 1);
    else if (v == JM__START_PAUSED)
        atomic_store(&ctx->paused, 1);
}

static void inline_heartbeat(jm_ctx *ctx)
{
    int64_t now = jm__mono_ms();
    if (!ctx->inline_mode || now < ctx->next_heartbeat_mono)
        return;
    ctx->next_heartbeat_mono = now + jm__heartbeat_interval_ms(ctx->m);
    jm__heartbeat(ctx->m);
}

int jm_ctx_is_cancelled(jm_ctx *ctx)
{
    if (!ctx)
        return 0;
    inline_heartbeat(ctx);
    /* A cancel from another process of this host is seen here at once. */
    jm__ctx_check_row(ctx);
    return atomic_load(&ctx->cancelled) || atomic_load(&ctx->shutdown) ||
           atomic_load(&ctx->lost);
}

int jm_ctx_should_yield(jm_ctx *ctx)
{
    if (!ctx)
        return 0;
    return jm_ctx_is_cancelled(ctx) || atomic_load(&ctx->paused);
}

int jm_ctx_checkpoint(jm_ctx *ctx, const char *json)
{
    if (!ctx || !json)
        return jm__seterr(JM_EINVAL, "jm_ctx_checkpoint: NULL argument");
    size_t len = strnlen(json, JM_MAX_PARAMS_BYTES + 1);
    if (len > JM_MAX_PARAMS_BYTES)
        return jm__seterr(JM_ETOOBIG, "checkpoint larger than %d bytes", JM_MAX_PARAMS_BYTES);
    if (jm__json_check(json, len) == JM_JSON_INVALID)
        return jm__seterr(JM_EJSON, "checkpoint is not valid JSON");
    char *copy = jm__strndup(json, len);
    if (!copy)
        return jm__seterr(JM_ENOMEM, "out of memory saving a checkpoint");
    jm_manager *m = ctx->m;
    /* Grouped with other writers' commits: workers checkpointing at once
     * share one sync. */
    jm__write w = {.kind = JM__WRITE_CHECKPOINT};
    w.u.checkpoint.seq = ctx->job->seq;
    w.u.checkpoint.attempt = ctx->job->attempts;
    w.u.checkpoint.json = copy;
    w.u.checkpoint.now = jm__now(m);
    int rc = jm__write_submit(m, &w);
    if (rc) {
        jm__free(copy);
        return rc;
    }
    jm__free(ctx->job->checkpoint);
    ctx->job->checkpoint = copy;
    inline_heartbeat(ctx);
    return JM_OK;
}

void jm_ctx_progress(jm_ctx *ctx, double fraction)
{
    if (!ctx)
        return;
    if (!(fraction >= 0)) /* also catches NaN */
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    ctx->progress = fraction;
    int64_t mono = jm__mono_ms();
    if (mono - ctx->progress_saved_mono >= JM_PROGRESS_SAVE_INTERVAL_MS) {
        ctx->progress_saved_mono = mono;
        jm_manager *m = ctx->m;
        jm__db_lock(m);
        int rc = m->ops->progress(m->store, ctx->job->seq, ctx->job->attempts, fraction,
                                  jm__now(m));
        jm__db_unlock(m);
        if (rc)
            jm__log(m, JM_LOG_DEBUG, ctx->job->id, "progress not saved: %s", jm_last_error());
    }
    inline_heartbeat(ctx);
}

void jm_ctx_log(jm_ctx *ctx, jm_log_level level, const char *fmt, ...)
{
    if (!ctx || !fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    jm__vlog(ctx->m, level, ctx->job->id, fmt, ap);
    va_end(ap);
}

const char *jm_ctx_strf(jm_ctx *ctx, const char *fmt, ...)
{
    if (!ctx || !fmt)
        return "";
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return "";
    jm__strf_node *node = jm__malloc(sizeof *node + (size_t)n + 1);
    if (!node)
        return "";
    va_start(ap, fmt);
    vsnprintf(node->text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    node->next = ctx->strs;
    ctx->strs = node;
    return node->text;
}

int jm_ctx_create_job(jm_ctx *ctx, const char *type, const char *params_json,
                      const jm_create_opts *o, char id_out[JM_JOB_ID_SIZE])
{
    if (!ctx)
        return jm__seterr(JM_EINVAL, "jm_ctx_create_job: ctx is NULL");
    return jm_create(ctx->m, type, params_json, o, id_out);
}
