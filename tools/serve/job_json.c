/*
 * Jobs as JSON: the CLI's --json shape (every field, each time both as ISO
 * 8601 and as ms), plus the lease (both ways too) for the job page, and a slimmer row for
 * lists that leaves out the large fields.
 */
#include "../cli.h"
#include "serve_internal.h"

cJSON *dash_job_full(const jm_job *j)
{
    cJSON *o = cli_job_json(j);
    if (!o)
        return NULL;
    int64_t lease = jm_job_lease_until(j);
    char when[CLI_TIME_BUF];
    cJSON *ms = lease > 0 ? cJSON_CreateNumber((double)lease) : cJSON_CreateNull();
    cJSON *iso = lease > 0 ? cJSON_CreateString(cli_format_time(lease, when, sizeof when))
                           : cJSON_CreateNull();
    int ok = ms && iso && cJSON_AddItemToObject(o, "lease_until_ms", ms);
    if (!ok)
        cJSON_Delete(ms);
    if (!ok || !cJSON_AddItemToObject(o, "lease_until", iso)) {
        cJSON_Delete(iso);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *dash_job_summary(const jm_job *j)
{
    static const char *const large[] = {"params", "result", "checkpoint", "exception_trace",
                                        "idempotency_key", "schedule_id"};
    cJSON *o = cli_job_json(j);
    if (!o)
        return NULL;
    for (size_t i = 0; i < sizeof large / sizeof *large; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(o, large[i]);
    return o;
}
