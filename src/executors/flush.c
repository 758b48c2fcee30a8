/*
 * Flush (FL): moves a table's write buffer into one new segment.
 *
 * The executor decides whether a flush is worth doing (the optional
 * threshold of buffered rows) and reports what happened; the host does the
 * move itself, atomically. It does not pick which rows to flush or write
 * any file: that is the host's storage. Its I/O budget is charged after
 * the host's flush, from the size of the segment it wrote.
 */
#include <stdint.h>

#include "builtin.h"
#include "exec_util.h"

/* No threshold given: flush whatever is buffered. */
#define FLUSH_DEFAULT_THRESHOLD 0

static int flush_validate(void *self, const cJSON *p, char *err, size_t errlen)
{
    (void)self;
    const char *s = NULL;
    jm_table_type type;
    int64_t threshold = FLUSH_DEFAULT_THRESHOLD;
    if (jm__param_name(p, "namespace_id", &s, err, errlen) ||
        jm__param_name(p, "table_name", &s, err, errlen) ||
        jm__param_table_type(p, "table_type", &type, err, errlen) ||
        jm__param_int(p, "flush_threshold", 0, 0, JM__JSON_INT_MAX, &threshold, err, errlen))
        return -1;
    return 0;
}

static int flush_resource(void *self, const cJSON *p, char *buf, size_t buflen)
{
    (void)self;
    return jm__table_resource(p, "namespace_id", "table_name", buf, buflen);
}

static jm_decision flush_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    jm_decision d;
    const jm_host *h = jm__exec_host(ctx, &d);
    if (!h)
        return d;
    const char *ns = jm__get_str(ctx, "namespace_id");
    const char *table = jm__get_str(ctx, "table_name");
    jm_table_type type;
    jm_table_type_parse(jm__get_str(ctx, "table_type"), &type);
    int64_t threshold = jm__get_int(ctx, "flush_threshold", FLUSH_DEFAULT_THRESHOLD);
    static const char *const metric_names[] = {"rows_flushed", "segments_written"};

    jm_host_table info;
    if (jm__exec_table(ctx, h, ns, table, type, &info, &d))
        return d;
    if (info.buffered_rows < threshold) {
        const int64_t none[] = {0, 0};
        jm_ctx_log(ctx, JM_LOG_INFO, "%s.%s: %lld buffered rows, below the threshold of %lld",
                   ns, table, (long long)info.buffered_rows, (long long)threshold);
        return jm_decision_completed(
            jm_ctx_strf(ctx, "%lld buffered rows in %s.%s, below the flush threshold of %lld: "
                             "nothing flushed",
                        (long long)info.buffered_rows, ns, table, (long long)threshold),
            jm__metrics_json(ctx, metric_names, none, 2));
    }
    if (jm_ctx_is_cancelled(ctx))
        return jm_decision_cancelled(
            jm_ctx_strf(ctx, "cancelled before flushing %s.%s", ns, table));

    jm_host_flush out = {0, 0};
    int rc = h->flush(h->self, ns, table, &out);
    if (rc != JM_OK)
        return jm__host_failure(ctx, rc, jm_ctx_strf(ctx, "flushing %s.%s", ns, table),
                                JM__BACKOFF_POLICY);
    /* The host moves the rows in one atomic step, so its I/O is charged to
     * the class's budget once it reports the size: the rows read from the
     * buffer and the segment written, each about the segment's size. */
    jm_ctx_throttle(ctx, 2 * out.bytes);
    /* The host writes a segment only when it moved rows. */
    const int64_t values[] = {out.rows, out.rows > 0 ? 1 : 0};
    const char *metrics = jm__metrics_json(ctx, metric_names, values, 2);
    if (out.rows == 0)
        return jm_decision_completed(
            jm_ctx_strf(ctx, "nothing to flush: the buffer of %s.%s is empty", ns, table),
            metrics);
    jm_ctx_log(ctx, JM_LOG_INFO, "%s.%s: flushed %lld rows into a segment of %lld bytes", ns,
               table, (long long)out.rows, (long long)out.bytes);
    return jm_decision_completed(
        jm_ctx_strf(ctx, "flushed %lld rows into 1 segment", (long long)out.rows), metrics);
}

const jm_executor jm__flush_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = JM_FLUSH,
    .name = "flush",
    .cancellable = 1,
    .validate = flush_validate,
    .execute = flush_execute,
    .cancel = NULL,
    /* A full buffer holds back writes: flushing comes first. */
    .priority_class = JM_CLASS_HIGH,
    .resource = flush_resource,
};
