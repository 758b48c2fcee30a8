/*
 * Retention (RT): permanently deletes soft-deleted rows whose deleted_at is
 * older than now − retention_hours, a bounded batch per run.
 *
 * This file holds the parameters and the policy's numbers; the batching,
 * continuation and cancellation are shared with stream eviction in
 * purge_batches.c, and the host removes the rows. Live rows are never
 * touched, however old.
 */
#include <stdint.h>

#include "builtin.h"
#include "exec_util.h"
#include "purge_batches.h"

/* Rows per run: small enough that one atomic purge holds the table's lock
 * briefly, large enough that a big backlog needs few runs. */
#define RETENTION_BATCH_ROWS 1000

/* 100 years: anything longer is a typo, not a policy. */
#define RETENTION_HOURS_MAX 876000

#define MS_PER_HOUR INT64_C(3600000)

static int retention_validate(void *self, const cJSON *p, char *err, size_t errlen)
{
    (void)self;
    const char *s = NULL;
    jm_table_type type;
    int64_t hours = 0;
    if (jm__param_name(p, "namespace_id", &s, err, errlen) ||
        jm__param_name(p, "table_name", &s, err, errlen) ||
        jm__param_table_type(p, "table_type", &type, err, errlen) ||
        jm__param_int(p, "retention_hours", 1, 0, RETENTION_HOURS_MAX, &hours, err, errlen))
        return -1;
    return 0;
}

static int retention_resource(void *self, const cJSON *p, char *buf, size_t buflen)
{
    (void)self;
    return jm__table_resource(p, "namespace_id", "table_name", buf, buflen);
}

static jm_decision retention_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    const jm__purge_plan plan = {
        .kind = JM_PURGE_DELETED_BEFORE,
        .window_ms = jm__get_int(ctx, "retention_hours", 0) * MS_PER_HOUR,
        .batch_rows = RETENTION_BATCH_ROWS,
        .metric = "rows_deleted",
        .verb = "deleted",
    };
    return jm__purge_in_batches(ctx, &plan);
}

const jm_executor jm__retention_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = JM_RETENTION,
    .name = "retention",
    .cancellable = 1,
    .validate = retention_validate,
    .execute = retention_execute,
    .cancel = NULL,
    .priority_class = JM_CLASS_NORMAL,
    .resource = retention_resource,
};
