/*
 * Batched removal by a time cut-off, shared by retention and stream
 * eviction; see purge_batches.h.
 *
 * One run removes one batch and returns: a continue decision puts the job
 * back in the queue, so a long purge never holds a worker, spends no retry,
 * and gives way to other jobs between batches. A run that starts while the
 * job is asked to pause returns at once, its place saved, so the pause
 * takes it between batches. Each batch is charged to the class's I/O
 * budget after the host's purge, from the segments it rewrote. It does not select or delete
 * rows itself: the host's purge() does, atomically, which is what makes the
 * checkpoint (saved after the batch) safe to resume from.
 */
#include "purge_batches.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "exec_util.h"

/* The continuation key before any batch: purge() takes keys greater than
 * it. Host keys are positive (the reference engine's start at 1, and it
 * refuses a negative after_key). */
#define PURGE_FROM_START 0

/* Times are milliseconds since the epoch, never negative: a window longer
 * than the time since 1970 selects nothing, as a cut-off of 0 does. */
#define PURGE_EARLIEST_CUTOFF 0

/* A full batch means more may remain: run again at once. The job goes
 * through the queue, so other due jobs get their turn first. */
#define PURGE_NEXT_BATCH_DELAY_MS 0

/* Checkpoint fields (the total is stored under plan->metric). */
#define CP_CUTOFF "cutoff"
#define CP_AFTER_KEY "after_key"

typedef struct purge_state {
    int64_t cutoff;
    int64_t after_key;
    int64_t total;
} purge_state;

/* The key is kept as a decimal string: keys are int64_t, which a JSON
 * number (a double) does not hold exactly. */
static int key_from_json(const cJSON *cp, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cp, CP_AFTER_KEY);
    if (!cJSON_IsString(v) || !v->valuestring || !*v->valuestring)
        return -1;
    char *end = NULL;
    errno = 0;
    long long k = strtoll(v->valuestring, &end, 10);
    if (errno || *end)
        return -1;
    *out = (int64_t)k;
    return 0;
}

/* The state saved by an earlier run, or a fresh one with the cut-off taken
 * now. An unreadable checkpoint starts over: removing rows is idempotent,
 * so that only costs time. */
static void state_load(jm_ctx *ctx, const jm__purge_plan *plan, purge_state *st)
{
    st->cutoff = jm_ctx_now(ctx) - plan->window_ms;
    if (st->cutoff < PURGE_EARLIEST_CUTOFF)
        st->cutoff = PURGE_EARLIEST_CUTOFF;
    st->after_key = PURGE_FROM_START;
    st->total = 0;
    cJSON *cp = jm__checkpoint_load(ctx);
    if (!cp)
        return;
    purge_state saved;
    if (jm__json_int(cp, CP_CUTOFF, &saved.cutoff) == 0 &&
        jm__json_int(cp, plan->metric, &saved.total) == 0 && saved.total >= 0 &&
        key_from_json(cp, &saved.after_key) == 0)
        *st = saved;
    else
        jm_ctx_log(ctx, JM_LOG_WARN, "checkpoint unreadable; starting from the first row");
    cJSON_Delete(cp);
}

static int state_save(jm_ctx *ctx, const jm__purge_plan *plan, const purge_state *st)
{
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)st->after_key);
    int rc = JM_ENOMEM;
    cJSON *cp = cJSON_CreateObject();
    if (cp && cJSON_AddNumberToObject(cp, CP_CUTOFF, (double)st->cutoff) &&
        cJSON_AddStringToObject(cp, CP_AFTER_KEY, key) &&
        cJSON_AddNumberToObject(cp, plan->metric, (double)st->total))
        rc = jm__checkpoint_save(ctx, cp);
    else
        jm_host_error(JM_ENOMEM, "out of memory building a checkpoint");
    cJSON_Delete(cp);
    return rc;
}

static jm_decision with_metrics(jm_decision d, const char *metrics)
{
    d.metrics_json = metrics;
    return d;
}

/* The bytes a purge read and wrote, for the I/O budget. The host reports
 * how many segments it rewrote and what that freed, not their sizes:
 * each is taken to be the table's average segment, read whole and written
 * back less what was freed. */
static int64_t purge_io_bytes(const jm_host_table *info, const jm_host_purge *out)
{
    if (info->segments <= 0 || out->files_rewritten <= 0)
        return 0;
    int64_t read = out->files_rewritten * (info->segment_bytes / info->segments);
    int64_t written = read > out->bytes_freed ? read - out->bytes_freed : 0;
    return read + written;
}

jm_decision jm__purge_in_batches(jm_ctx *ctx, const jm__purge_plan *plan)
{
    jm_decision d;
    const jm_host *h = jm__exec_host(ctx, &d);
    if (!h)
        return d;
    const char *ns = jm__get_str(ctx, "namespace_id");
    const char *table = jm__get_str(ctx, "table_name");
    jm_table_type type;
    jm_table_type_parse(jm__get_str(ctx, "table_type"), &type);
    purge_state st;
    state_load(ctx, plan, &st);
    const char *names[] = {plan->metric};
    const char *so_far = jm__metrics_json(ctx, names, &st.total, 1);

    if (jm_ctx_is_cancelled(ctx)) {
        const char *msg = jm_ctx_strf(ctx, "cancelled: %lld rows %s from %s.%s so far",
                                      (long long)st.total, plan->verb, ns, table);
        return with_metrics(jm_decision_cancelled(msg), so_far);
    }
    if (jm__exec_should_pause(ctx)) {
        /* A batch boundary: the place is the checkpoint's, which a first
         * run saves now so the cut-off stays the one taken at its start. */
        int rc = state_save(ctx, plan, &st);
        if (rc != JM_OK)
            return with_metrics(jm__host_failure(ctx, rc, "saving the checkpoint",
                                                 JM__BACKOFF_POLICY),
                                so_far);
        const char *msg = jm_ctx_strf(ctx, "paused: %lld rows %s from %s.%s so far",
                                      (long long)st.total, plan->verb, ns, table);
        return with_metrics(jm_decision_continue(msg, PURGE_NEXT_BATCH_DELAY_MS), so_far);
    }

    jm_host_table info;
    if (jm__exec_table(ctx, h, ns, table, type, &info, &d))
        return with_metrics(d, so_far);

    jm_host_purge out = {0, 0, 0, 0};
    int rc = h->purge(h->self, ns, table, plan->kind, st.cutoff, st.after_key, plan->batch_rows,
                      &out);
    if (rc != JM_OK) {
        const char *what = jm_ctx_strf(ctx, "removing rows from %s.%s", ns, table);
        return with_metrics(jm__host_failure(ctx, rc, what, JM__BACKOFF_POLICY), so_far);
    }
    /* One atomic step of the host's: charged once it says what it did. */
    jm_ctx_throttle(ctx, purge_io_bytes(&info, &out));
    st.total += out.rows;
    const char *metrics = jm__metrics_json(ctx, names, &st.total, 1);
    jm_ctx_log(ctx, JM_LOG_INFO,
               "%s.%s: %s %lld rows after key %lld (cut-off %lld, %lld files rewritten)", ns,
               table, plan->verb, (long long)out.rows, (long long)st.after_key,
               (long long)st.cutoff, (long long)out.files_rewritten);

    if (out.rows < plan->batch_rows) {
        const char *msg = jm_ctx_strf(ctx, "%s %lld rows from %s.%s (cut-off %lld)", plan->verb,
                                      (long long)st.total, ns, table, (long long)st.cutoff);
        return jm_decision_completed(msg, metrics);
    }
    /* A host that does not move past the key would have us repeat the same
     * batch forever. */
    if (out.last_key <= st.after_key) {
        const char *msg = jm_ctx_strf(ctx, "host purge did not advance past key %lld on %s.%s",
                                      (long long)st.after_key, ns, table);
        return with_metrics(jm_decision_failed(msg, NULL), metrics);
    }
    st.after_key = out.last_key;
    /* If the save fails, the next run resumes from the previous key: no row
     * is skipped, though this batch's rows, already gone, miss the total. */
    rc = state_save(ctx, plan, &st);
    if (rc != JM_OK)
        return with_metrics(jm__host_failure(ctx, rc, "saving the checkpoint",
                                             JM__BACKOFF_POLICY),
                            metrics);
    const char *msg = jm_ctx_strf(ctx, "%s %lld rows from %s.%s so far; more remain",
                                  plan->verb, (long long)st.total, ns, table);
    return with_metrics(jm_decision_continue(msg, PURGE_NEXT_BATCH_DELAY_MS), metrics);
}
