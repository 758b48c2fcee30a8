/*
 * Stream eviction (SE): removes rows of a stream table whose created_at is
 * older than now − ttl_seconds, deleted or not, one batch per run.
 *
 * This file holds the parameters and their limits; the batching,
 * continuation and cancellation are shared with retention in
 * purge_batches.c, and the host removes the rows. Only stream tables are
 * accepted: other tables keep their rows until someone deletes them.
 */
#include <stdint.h>
#include <stdio.h>

#include "builtin.h"
#include "exec_util.h"
#include "purge_batches.h"

/* The seeds' default: large batches, since stream rows are small and many. */
#define EVICTION_DEFAULT_BATCH 10000
/* One purge of more rows would hold the table too long. */
#define EVICTION_BATCH_MAX 1000000
/* 100 years, as retention's limit: longer is a typo. */
#define EVICTION_TTL_SECONDS_MAX (INT64_C(876000) * 3600)

#define MS_PER_SECOND INT64_C(1000)

static int eviction_validate(void *self, const cJSON *p, char *err, size_t errlen)
{
    (void)self;
    const char *s = NULL;
    jm_table_type type;
    int64_t ttl = 0, batch = EVICTION_DEFAULT_BATCH;
    if (jm__param_name(p, "namespace_id", &s, err, errlen) ||
        jm__param_name(p, "table_name", &s, err, errlen) ||
        jm__param_table_type(p, "table_type", &type, err, errlen))
        return -1;
    if (type != JM_TABLE_STREAM) {
        snprintf(err, errlen,
                 "parameter \"table_type\" must be \"Stream\": only stream tables have a TTL "
                 "(got \"%s\")",
                 jm_table_type_name(type));
        return -1;
    }
    if (jm__param_int(p, "ttl_seconds", 1, 1, EVICTION_TTL_SECONDS_MAX, &ttl, err, errlen) ||
        jm__param_int(p, "batch_size", 0, 1, EVICTION_BATCH_MAX, &batch, err, errlen))
        return -1;
    return 0;
}

static int eviction_resource(void *self, const cJSON *p, char *buf, size_t buflen)
{
    (void)self;
    return jm__table_resource(p, "namespace_id", "table_name", buf, buflen);
}

static jm_decision eviction_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    const jm__purge_plan plan = {
        .kind = JM_PURGE_CREATED_BEFORE,
        .window_ms = jm__get_int(ctx, "ttl_seconds", 0) * MS_PER_SECOND,
        .batch_rows = jm__get_int(ctx, "batch_size", EVICTION_DEFAULT_BATCH),
        .metric = "rows_evicted",
        .verb = "evicted",
    };
    return jm__purge_in_batches(ctx, &plan);
}

const jm_executor jm__stream_eviction_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = JM_STREAM_EVICTION,
    .name = "stream_eviction",
    .cancellable = 1,
    .validate = eviction_validate,
    .execute = eviction_execute,
    .cancel = NULL,
    /* Expired stream rows keep growing the table: evicting comes first. */
    .priority_class = JM_CLASS_HIGH,
    .resource = eviction_resource,
};
