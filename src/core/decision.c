/* The decision constructors: plain values, nothing allocated. */
#include "jobmgr.h"

static jm_decision make(jm_decision_kind kind, const char *message, const char *trace,
                        const char *metrics, int64_t delay)
{
    jm_decision d = {kind, message, trace, metrics, delay};
    return d;
}

jm_decision jm_decision_completed(const char *message, const char *metrics_json)
{
    return make(JM_DECISION_COMPLETED, message, NULL, metrics_json, 0);
}

jm_decision jm_decision_retry(const char *message, const char *trace, int64_t backoff_ms)
{
    return make(JM_DECISION_RETRY, message, trace, NULL, backoff_ms);
}

jm_decision jm_decision_failed(const char *message, const char *trace)
{
    return make(JM_DECISION_FAILED, message, trace, NULL, 0);
}

jm_decision jm_decision_cancelled(const char *message)
{
    return make(JM_DECISION_CANCELLED, message, NULL, NULL, 0);
}

jm_decision jm_decision_continue(const char *message, int64_t delay_ms)
{
    return make(JM_DECISION_CONTINUE, message, NULL, NULL, delay_ms);
}
