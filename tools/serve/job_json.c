/*
 * Jobs as JSON: the CLI's --json shape (every field, each time both as ISO
 * 8601 and as ms), plus the lease for the job page, and a slimmer row for
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
    cJSON *ms = lease > 0 ? cJSON_CreateNumber((double)lease) : cJSON_CreateNull();
    if (!ms || !cJSON_AddItemToObject(o, "lease_until_ms", ms)) {
        cJSON_Delete(ms);
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
