/*
 * One run of one job: find the executor, parse the parameters, call
 * execute(), and decide what the job becomes. The policy lives here (retry
 * budget, backoff, continue, shutdown); the store applies it atomically,
 * including "a standing cancel request wins over retry and continue".
 */
#include "runner.h"

#include <string.h>

#include "alloc.h"
#include "backoff.h"
#include "claim.h"
#include "ctx.h"
#include "error.h"
#include "job.h"
#include "journal.h"
#include "json_check.h"
#include "log.h"
#include "random.h"
#include "start_check.h"
#include "text.h"

#define SHUTDOWN_MESSAGE "Interrupted by shutdown; will run again"

static int64_t policy_delay(jm_manager *m, int retry_count)
{
    return jm__backoff_delay(m->cfg.backoff_base_ms, m->cfg.backoff_max_ms,
                             m->cfg.backoff_jitter, retry_count, jm__random_unit());
}

/* Copies a decision string within its limit; allocation failure keeps the
 * outcome (status matters more than text) with the string dropped. */
static char *copy_limited(const char *s, size_t limit)
{
    return s ? jm__truncate_utf8(s, limit) : NULL;
}

static char *valid_metrics(jm_manager *m, const jm_job *job, const char *json)
{
    if (!json)
        return NULL;
    size_t len = strnlen(json, JM_MAX_PARAMS_BYTES + 1);
    if (len > JM_MAX_PARAMS_BYTES || jm__json_check(json, len) != JM_JSON_OBJECT) {
        jm__log(m, JM_LOG_WARN, job->id, "metrics dropped: not a JSON object of at most %d bytes",
                JM_MAX_PARAMS_BYTES);
        return NULL;
    }
    return jm__strndup(json, len);
}

/* Fills o->f from the decision. */
static void decide(jm_manager *m, jm_ctx *ctx, jm_decision d, jm__outcome *o)
{
    jm_job *job = ctx->job;
    jm__finish *f = &o->f;
    int64_t now = jm__now(m);
    f->seq = job->seq;
    f->attempt = job->attempts;
    f->now = now;
    f->run_at = job->run_at;
    f->retry_count = job->retry_count;
    f->progress = ctx->progress;
    f->started_at = job->started_at;
    const char *message = d.message;
    const char *trace = d.trace;
    switch (d.kind) {
    case JM_DECISION_COMPLETED:
        f->status = JM_STATUS_COMPLETED;
        f->progress = 1.0;
        o->result = valid_metrics(m, job, d.metrics_json);
        break;
    case JM_DECISION_FAILED:
        f->status = JM_STATUS_FAILED;
        break;
    case JM_DECISION_RETRY:
        f->cancel_overrides = 1;
        if (job->retry_count >= job->max_retries) {
            f->status = JM_STATUS_FAILED;
            trace = d.trace ? d.trace : d.message;
            message = JM__MSG_MAX_RETRIES;
        } else {
            f->status = JM_STATUS_RETRYING;
            f->retry_count = job->retry_count + 1;
            int64_t delay = d.delay_ms >= 0 ? d.delay_ms : policy_delay(m, f->retry_count);
            f->run_at = now + delay;
        }
        break;
    case JM_DECISION_CONTINUE:
        f->cancel_overrides = 1;
        f->status = JM_STATUS_QUEUED;
        f->run_at = now + (d.delay_ms > 0 ? d.delay_ms : 0);
        f->keep_message = d.message == NULL;
        break;
    case JM_DECISION_CANCELLED:
        if (atomic_load(&ctx->shutdown) && !atomic_load(&ctx->cancelled)) {
            /* A shutdown is not a failure: back to retrying, no retry
             * spent; a cancel request stored meanwhile still wins. */
            f->cancel_overrides = 1;
            f->status = JM_STATUS_RETRYING;
            f->run_at = now;
            message = SHUTDOWN_MESSAGE;
        } else {
            f->status = JM_STATUS_CANCELLED;
            if (!message)
                message = JM__MSG_CANCELLED;
        }
        break;
    default:
        f->status = JM_STATUS_FAILED;
        message = "executor returned an unknown decision";
        trace = NULL;
        break;
    }
    if (d.kind != JM_DECISION_COMPLETED && d.metrics_json)
        o->result = valid_metrics(m, job, d.metrics_json);
    if (!f->keep_message)
        o->message = copy_limited(message, JM_MAX_MESSAGE_BYTES);
    o->trace = copy_limited(trace, JM_MAX_TRACE_BYTES);
    f->message = o->message;
    f->trace = o->trace;
    f->result = o->result;
}

void jm__release_job(jm_manager *m, jm_job *job)
{
    jm__db_lock(m);
    int rc = m->ops->release(m->store, job->seq, job->attempts, jm__now(m));
    jm__db_unlock(m);
    if (rc)
        jm__log(m, JM_LOG_WARN, job->id, "could not put the job back (recovery will): %s",
                jm_last_error());
    jm_job_free(job);
}




jm__outcome *jm__run_job(jm_manager *m, jm_job *job, int inline_mode)
{
    int64_t started_mono = jm__mono_ms();
    jm__outcome *o = jm__calloc(1, sizeof *o);
    if (!o) {
        jm__log(m, JM_LOG_ERROR, job->id, "out of memory before running; putting it back");
        jm__release_job(m, job);
        return NULL;
    }
    o->job = job;
    o->slot = -1;
    jm__executor_entry entry;
    jm_decision d;
    cJSON *params = NULL;
    jm_ctx ctx;
    if (!jm__registry_find(&m->registry, job->type, &entry)) {
        /* Claims only take registered types, so this means a bug or a
         * registry that changed shape; fail loudly rather than spin. */
        memset(&entry, 0, sizeof entry);
        jm__ctx_init(&ctx, m, job, NULL, &entry, inline_mode);
        d = jm_decision_failed("no executor registered for this type", NULL);
    } else if (!(params = cJSON_Parse(job->params ? job->params : "{}"))) {
        const char *text = job->params ? job->params : "{}";
        if (jm__json_check(text, strlen(text)) != JM_JSON_INVALID) {
            /* Valid text that did not parse: memory ran short. That is no
             * reason to fail the job; put it back for a later run. */
            jm__log(m, JM_LOG_WARN, job->id, "out of memory parsing parameters; putting it back");
            jm__free(o);
            jm__release_job(m, job);
            return NULL;
        }
        jm__ctx_init(&ctx, m, job, NULL, &entry, inline_mode);
        d = jm_decision_failed("stored parameters are not valid JSON", NULL);
    } else {
        /* Started means: marked in the run journal. Then the check, so a
         * cancel or takeover that lands after it finds a started run. */
        job->started_at = jm__now(m);
        o->slot = jm__journal_mark(m->journal, job->seq, job->attempts);
        jm__ctx_init(&ctx, m, job, params, &entry, inline_mode);
        /* Active before the verdict: a cancel in this process after it
         * flags the context instead. */
        jm__ctx_activate(&ctx);
        jm__start_verdict v = jm__start_verdict_of(m, job, &ctx.seen_cancels);
        if (v != JM__START_RUN)
            jm__ctx_deactivate(&ctx);
        if (v == JM__START_LOST) {
            jm__log(m, JM_LOG_WARN, job->id,
                    "not started: the job was taken over while it waited");
            jm__journal_clear(m->journal, o->slot);
            jm__ctx_release(&ctx);
            cJSON_Delete(params);
            jm__free(o);
            jm_job_free(job);
            return NULL;
        }
        if (v == JM__START_CANCELLED) {
            atomic_store(&ctx.cancelled, 1);
            d = jm_decision_cancelled(NULL);
        } else if (v == JM__START_PAUSED) {
            /* Yields before its first step: the outcome makes it paused. */
            atomic_store(&ctx.paused, 1);
            d = jm_decision_continue(NULL, 0);
        } else {
            jm__log(m, JM_LOG_INFO, job->id, "started (%s, attempt %d)",
                    entry.ex.name ? entry.ex.name : job->type, job->attempts);
            d = entry.ex.execute(entry.self, &ctx);
            jm__ctx_deactivate(&ctx);
        }
    }
    o->duration_ms = jm__mono_ms() - started_mono;
    o->retry_decision = d.kind == JM_DECISION_RETRY;
    decide(m, &ctx, d, o);
    jm__ctx_release(&ctx);
    cJSON_Delete(params);
    return o;
}

static void log_outcome(jm_manager *m, const jm__outcome *o)
{
    const jm_job *job = o->job;
    const char *msg = o->message ? o->message : "";
    switch (o->f.final_status) {
    case -1:
        jm__log(m, JM_LOG_WARN, job->id,
                "outcome discarded: the job was recovered by another worker meanwhile");
        break;
    case JM_STATUS_COMPLETED:
        jm__log(m, JM_LOG_INFO, job->id, "completed%s%s", *msg ? ": " : "", msg);
        break;
    case JM_STATUS_FAILED:
        jm__log(m, JM_LOG_WARN, job->id, "failed: %s", msg);
        break;
    case JM_STATUS_CANCELLED:
        jm__log(m, JM_LOG_INFO, job->id, "cancelled");
        break;
    case JM_STATUS_RETRYING:
        jm__log(m, JM_LOG_INFO, job->id, "retrying (%d/%d) in %lld ms: %s", o->f.retry_count,
                job->max_retries, (long long)(o->f.run_at - o->f.now), msg);
        break;
    default:
        jm__log(m, JM_LOG_DEBUG, job->id, "more work remains; due in %lld ms",
                (long long)(o->f.run_at - o->f.now));
        break;
    }
}

int jm__commit_cycle(jm_manager *m, jm__outcome *list, size_t n, size_t claim_max,
                     const char *claim_types,
                     size_t ahead_max, const char *ahead_types, jm_job ***claimed,
                     size_t *nclaimed, int *claim_err)
{
    if (!list)
        n = 0;
    jm__finish stack_items[64];
    jm__finish *items = n <= 64 ? stack_items : jm__calloc(n, sizeof *items);
    if (!items)
        return jm__seterr(JM_ENOMEM, "out of memory recording outcomes");
    size_t i = 0;
    for (jm__outcome *o = list; o && i < n; o = o->next)
        items[i++] = o->f;
    char types[JM_TYPE_SLOTS * 3 + 1];
    jm__claim_req req;
    int claiming = claim_max || ahead_max;
    if (claiming) {
        jm__claim_req_init(m, &req, types, claim_max);
        if (claim_types)
            req.types = claim_types;
        req.ahead_types = ahead_types;
        req.ahead_max = ahead_types ? ahead_max : 0;
    }
    /* Read before the claim: a cancel that the claim did not see bumps it
     * after (see jm__start_verdict_of). */
    uint64_t cancels = jm__journal_cancels(m->journal);
    jm__db_lock(m);
    int claim_rc = JM_OK;
    int rc = m->ops->cycle(m->store, items, i, claiming ? &req : NULL, claimed, nclaimed,
                           &claim_rc);
    jm__db_unlock(m);
    if (claimed && nclaimed && *claimed)
        for (size_t k = 0; k < *nclaimed; k++)
            (*claimed)[k]->claim_cancels = cancels;
    if (claim_err)
        *claim_err = claim_rc;
    if (rc == JM_OK && list) {
        i = 0;
        for (jm__outcome *o = list; o && i < n; o = o->next) {
            jm__journal_clear(m->journal, o->slot);
            o->slot = -1;
            o->f.final_status = items[i++].final_status;
            jm__stats_record(m, o->job->type, o->f.final_status, o->retry_decision,
                             o->duration_ms);
            log_outcome(m, o);
        }
        jm__outcome_free_list(list);
    }
    if (items != stack_items)
        jm__free(items);
    return rc;
}

int jm__commit_outcomes(jm_manager *m, jm__outcome *list, size_t n)
{
    return list ? jm__commit_cycle(m, list, n, 0, NULL, 0, NULL, NULL, NULL, NULL) : JM_OK;
}

void jm__outcome_free_list(jm__outcome *o)
{
    while (o) {
        jm__outcome *next = o->next;
        jm__free(o->message);
        jm__free(o->trace);
        jm__free(o->result);
        jm_job_free(o->job);
        jm__free(o);
        o = next;
    }
}
