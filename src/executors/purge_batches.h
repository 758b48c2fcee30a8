/*
 * Removing rows by a time cut-off, one batch per run, for retention (RT)
 * and stream eviction (SE): the cut-off is fixed at the first run, and the
 * continuation key and running total are kept in the job's checkpoint, so
 * a continue, a retry or a crash resumes where the last batch ended.
 */
#ifndef JM_PURGE_BATCHES_H
#define JM_PURGE_BATCHES_H

#include <stdint.h>

#include "jobmgr.h"
#include "jobmgr/host.h"

typedef struct jm__purge_plan {
    jm_purge_kind kind;
    int64_t window_ms;  /* cut-off = now − window_ms, taken at the first run */
    int64_t batch_rows; /* rows removed per run at most */
    const char *metric; /* "rows_deleted": the metric and the checkpoint's total */
    const char *verb;   /* "deleted", "evicted": for messages */
} jm__purge_plan;

/* One run: reads namespace_id, table_name and table_type from the job's
 * parameters, checks the table, removes one batch and decides: continue
 * after a full batch (checkpoint saved), completed after a short one (the
 * metric counts every run's rows), cancelled if cancellation was requested
 * before the batch, continue without a batch (checkpoint saved) if a pause
 * was, retry by the manager's policy on JM_EBUSY, failed otherwise. Every
 * decision carries the metric so far. */
jm_decision jm__purge_in_batches(jm_ctx *ctx, const jm__purge_plan *plan);

#endif
