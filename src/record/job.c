/* Job records and lists: allocation, freeing and the public accessors. */
#include "job.h"

#include "alloc.h"
#include "error.h"

#include <string.h>

jm_job *jm__job_new(void)
{
    return jm__calloc(1, sizeof(jm_job));
}

int jm__job_set_str(char **slot, const char *s)
{
    char *copy = NULL;
    if (s && !(copy = jm__strdup(s)))
        return jm__seterr(JM_ENOMEM, "out of memory");
    jm__free(*slot);
    *slot = copy;
    return JM_OK;
}

void jm_job_free(jm_job *j)
{
    if (!j)
        return;
    jm__free(j->namespace_id);
    jm__free(j->params);
    jm__free(j->idempotency_key);
    jm__free(j->message);
    jm__free(j->trace);
    jm__free(j->result);
    jm__free(j->checkpoint);
    jm__free(j->node_id);
    jm__free(j->schedule_id);
    jm__free(j->resource);
    jm__free(j->blocked_by);
    jm__free(j);
}

void jm_job_list_free(jm_job_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        jm_job_free(l->items[i]);
    jm__free(l->items);
    jm__free(l);
}

size_t jm_job_list_count(const jm_job_list *l)
{
    return l ? l->count : 0;
}

const jm_job *jm_job_list_at(const jm_job_list *l, size_t i)
{
    return l && i < l->count ? l->items[i] : NULL;
}

int jm_job_list_has_more(const jm_job_list *l)
{
    return l ? l->has_more : 0;
}

static const char *const status_names[JM_STATUS_COUNT] = {
    "new", "queued", "running", "retrying", "completed", "failed", "cancelled", "paused",
};

const char *jm_status_name(jm_status s)
{
    return (unsigned)s < JM_STATUS_COUNT ? status_names[s] : "unknown";
}

int jm_status_parse(const char *name, jm_status *out)
{
    if (!name || !out)
        return jm__seterr(JM_EINVAL, "jm_status_parse: NULL argument");
    for (int i = 0; i < JM_STATUS_COUNT; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (jm_status)i;
            return JM_OK;
        }
    }
    return jm__seterr(JM_EINVAL, "unknown status '%.64s'", name);
}

/* Accessors tolerate NULL so a caller's missing check cannot crash here. */
#define STR_ACCESSOR(fn, field) \
    const char *fn(const jm_job *j) { return j ? j->field : NULL; }
#define INT_ACCESSOR(fn, type, field) \
    type fn(const jm_job *j) { return j ? j->field : 0; }

const char *jm_job_id(const jm_job *j)
{
    return j ? j->id : NULL;
}

const char *jm_job_type(const jm_job *j)
{
    return j ? j->type : NULL;
}

STR_ACCESSOR(jm_job_namespace, namespace_id)
STR_ACCESSOR(jm_job_params, params)
STR_ACCESSOR(jm_job_idempotency_key, idempotency_key)
STR_ACCESSOR(jm_job_message, message)
STR_ACCESSOR(jm_job_exception_trace, trace)
STR_ACCESSOR(jm_job_result, result)
STR_ACCESSOR(jm_job_checkpoint, checkpoint)
STR_ACCESSOR(jm_job_node_id, node_id)
STR_ACCESSOR(jm_job_schedule_id, schedule_id)
STR_ACCESSOR(jm_job_resource, resource)
STR_ACCESSOR(jm_job_blocked_by, blocked_by)
INT_ACCESSOR(jm_job_pause_requested, int, pause_requested)
INT_ACCESSOR(jm_job_fire_time, int64_t, fire_time)
INT_ACCESSOR(jm_job_status, jm_status, status)
INT_ACCESSOR(jm_job_progress, double, progress)
INT_ACCESSOR(jm_job_retry_count, int, retry_count)
INT_ACCESSOR(jm_job_max_retries, int, max_retries)
INT_ACCESSOR(jm_job_priority, int, priority)
INT_ACCESSOR(jm_job_attempts, int, attempts)
INT_ACCESSOR(jm_job_lease_until, int64_t, lease_until)
INT_ACCESSOR(jm_job_cancel_requested, int, cancel_requested)
INT_ACCESSOR(jm_job_created_at, int64_t, created_at)
INT_ACCESSOR(jm_job_updated_at, int64_t, updated_at)
INT_ACCESSOR(jm_job_started_at, int64_t, started_at)
INT_ACCESSOR(jm_job_finished_at, int64_t, finished_at)
INT_ACCESSOR(jm_job_run_at, int64_t, run_at)
