/*
 * Cleanup (CL): drops a table for good: its rows, segment files and
 * metadata (catalog entry, ACL entries, live queries on it).
 *
 * The executor checks the request, makes a repeated drop harmless (a table
 * already gone completes) and retries transient errors after a fixed pause;
 * the host does the drop itself, atomically. It is not cancellable: a drop
 * stopped half-way would leave orphaned data, so the host's drop is one step
 * and the job runs to its end.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "builtin.h"
#include "exec_util.h"

/* A busy store (a lock held by a flush or compaction of the same table)
 * usually clears within seconds: wait this long rather than the manager's
 * short first backoff. */
#define CLEANUP_BUSY_BACKOFF_MS 5000

/* The only operation the seeds define. */
#define CLEANUP_OPERATION_DROP "drop_table"

/* "ns:table" with both halves valid names. */
#define TABLE_ID_MAX (2 * JM_HOST_NAME_MAX + 1)

/* Splits "ns:table" into its halves; -1 unless both are valid names. */
static int split_table_id(const char *id, char ns[JM_HOST_NAME_MAX + 1],
                          char table[JM_HOST_NAME_MAX + 1])
{
    const char *colon = strchr(id, ':');
    if (!colon)
        return -1;
    size_t ns_len = (size_t)(colon - id);
    size_t table_len = strlen(colon + 1);
    if (ns_len > JM_HOST_NAME_MAX || table_len > JM_HOST_NAME_MAX)
        return -1;
    memcpy(ns, id, ns_len);
    ns[ns_len] = '\0';
    memcpy(table, colon + 1, table_len + 1);
    return jm__name_valid(ns) && jm__name_valid(table) ? 0 : -1;
}

static int cleanup_validate(void *self, const cJSON *p, char *err, size_t errlen)
{
    (void)self;
    const char *id = NULL, *op = NULL;
    char ns[JM_HOST_NAME_MAX + 1], table[JM_HOST_NAME_MAX + 1];
    jm_table_type type;
    if (jm__param_string(p, "table_id", 1, TABLE_ID_MAX, &id, err, errlen))
        return -1;
    if (split_table_id(id, ns, table)) {
        snprintf(err, errlen,
                 "parameter \"table_id\" must be \"namespace:table\", both names of letters, "
                 "digits, '_', '.' or '-'");
        return -1;
    }
    if (jm__param_table_type(p, "table_type", &type, err, errlen) ||
        jm__param_string(p, "operation", 1, JM_HOST_NAME_MAX, &op, err, errlen))
        return -1;
    if (strcmp(op, CLEANUP_OPERATION_DROP) != 0) {
        snprintf(err, errlen, "parameter \"operation\" must be \"%s\"", CLEANUP_OPERATION_DROP);
        return -1;
    }
    return 0;
}

/* "ns:table" names the same table as the other executors' "ns.table". */
static int cleanup_resource(void *self, const cJSON *p, char *buf, size_t buflen)
{
    (void)self;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "table_id");
    char ns[JM_HOST_NAME_MAX + 1], table[JM_HOST_NAME_MAX + 1];
    if (!cJSON_IsString(id) || !id->valuestring || split_table_id(id->valuestring, ns, table))
        return -1;
    char text[TABLE_ID_MAX + 1];
    snprintf(text, sizeof text, "%s.%s", ns, table);
    return jm__resource_text(text, buf, buflen);
}

static jm_decision cleanup_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    jm_decision d;
    const jm_host *h = jm__exec_host(ctx, &d);
    if (!h)
        return d;
    char ns[JM_HOST_NAME_MAX + 1], table[JM_HOST_NAME_MAX + 1];
    const char *id = jm__get_str(ctx, "table_id");
    if (!id || split_table_id(id, ns, table))
        return jm_decision_failed("parameter \"table_id\" is not \"namespace:table\"", NULL);
    jm_table_type type;
    jm_table_type_parse(jm__get_str(ctx, "table_type"), &type);
    static const char *const metric_names[] = {"rows_deleted", "files_deleted", "bytes_freed"};
    const int64_t none[] = {0, 0, 0};

    /* The type check guards against dropping a table that was recreated
     * with another type since the job was created. */
    jm_host_table info;
    int rc = h->table_info(h->self, ns, table, &info);
    if (rc == JM_OK && info.type != type)
        return jm_decision_failed(jm_ctx_strf(ctx, "table %s is a %s table, not %s; not dropped",
                                              id, jm_table_type_name(info.type),
                                              jm_table_type_name(type)),
                                  NULL);
    jm_host_drop out = {0, 0, 0};
    if (rc == JM_OK)
        rc = h->drop_table(h->self, ns, table, &out);
    if (rc == JM_ENOTFOUND) {
        /* A second cleanup of the same table, or one that raced a manual
         * drop: the goal is reached. */
        jm_ctx_log(ctx, JM_LOG_INFO, "table %s already dropped", id);
        return jm_decision_completed(jm_ctx_strf(ctx, "table %s already dropped", id),
                                     jm__metrics_json(ctx, metric_names, none, 3));
    }
    if (rc != JM_OK)
        return jm__host_failure(ctx, rc, jm_ctx_strf(ctx, "dropping table %s", id),
                                CLEANUP_BUSY_BACKOFF_MS);
    const int64_t values[] = {out.rows, out.files, out.bytes};
    jm_ctx_log(ctx, JM_LOG_INFO, "dropped table %s: %lld rows, %lld files, %lld bytes", id,
               (long long)out.rows, (long long)out.files, (long long)out.bytes);
    return jm_decision_completed(
        jm_ctx_strf(ctx, "dropped table %s: %lld rows, %lld files (%lld bytes) deleted", id,
                    (long long)out.rows, (long long)out.files, (long long)out.bytes),
        jm__metrics_json(ctx, metric_names, values, 3));
}

const jm_executor jm__cleanup_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = JM_CLEANUP,
    .name = "cleanup",
    .cancellable = 0,
    .validate = cleanup_validate,
    .execute = cleanup_execute,
    .cancel = NULL,
    .priority_class = JM_CLASS_NORMAL,
    .resource = cleanup_resource,
};
