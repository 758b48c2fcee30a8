/*
 * Compact (CO): merges runs of small segments into fewer segments near a
 * target size, dropping rows that no longer exist.
 *
 * The executor plans the merges from the segment list (sizes only) and
 * reports the before/after shape; the host merges each group atomically,
 * so stopping between groups (cancellation, a busy error, a crash) leaves
 * a valid, partly compacted table, and the next run plans afresh from what
 * is there. A segment of the plan that is gone when its group is merged
 * (another compaction of the table took it) makes the run a retry, which
 * plans again. It never splits a segment or reorders rows.
 */
#include <stdint.h>

#include "builtin.h"
#include "exec_util.h"

/* 64 GiB: no sane segment is larger. */
#define COMPACT_TARGET_MB_MAX 65536
#define BYTES_PER_MB (INT64_C(1024) * 1024)
/* Merging a single segment would rewrite it for nothing. */
#define COMPACT_MIN_GROUP 2

typedef struct shape {
    int64_t files;
    int64_t bytes;
} shape;

static int compact_validate(void *self, const cJSON *p, char *err, size_t errlen)
{
    (void)self;
    const char *s = NULL;
    jm_table_type type;
    int64_t mb = 0;
    if (jm__param_name(p, "namespace_id", &s, err, errlen) ||
        jm__param_name(p, "table_name", &s, err, errlen) ||
        jm__param_table_type(p, "table_type", &type, err, errlen) ||
        jm__param_int(p, "target_file_size_mb", 1, 1, COMPACT_TARGET_MB_MAX, &mb, err, errlen))
        return -1;
    return 0;
}

static shape shape_of(const jm_host_segment *segs, size_t n)
{
    shape s = {(int64_t)n, 0};
    for (size_t i = 0; i < n; i++)
        s.bytes += segs[i].bytes;
    return s;
}

/* The end (exclusive) of the group that starts at `start`: the following
 * segments, each below the target, while the group's total stays within
 * it. A segment at or above the target makes a group of one. */
static size_t group_end(const jm_host_segment *segs, size_t n, size_t start, int64_t target)
{
    if (segs[start].bytes >= target)
        return start + 1;
    int64_t total = segs[start].bytes;
    size_t end = start + 1;
    while (end < n && segs[end].bytes < target && total + segs[end].bytes <= target)
        total += segs[end++].bytes;
    return end;
}

static jm_decision with_metrics(jm_decision d, const char *metrics)
{
    d.metrics_json = metrics;
    return d;
}

static const char *shape_metrics(jm_ctx *ctx, shape before, shape after)
{
    static const char *const names[] = {"files_before", "files_after", "bytes_before",
                                        "bytes_after"};
    const int64_t values[] = {before.files, after.files, before.bytes, after.bytes};
    return jm__metrics_json(ctx, names, values, 4);
}

static jm_decision compact_execute(void *self, jm_ctx *ctx)
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
    int64_t target = jm__get_int(ctx, "target_file_size_mb", 1) * BYTES_PER_MB;
    jm_host_segment *segs = NULL, *fresh = NULL;
    size_t n = 0, nfresh = 0, groups = 0, merged = 0;
    int64_t *ids = NULL;
    shape before = {0, 0}, after = {0, 0};
    int rc;

    jm_host_table info;
    if (jm__exec_table(ctx, h, ns, table, type, &info, &d))
        return d;
    rc = h->list_segments(h->self, ns, table, &segs, &n);
    if (rc != JM_OK) {
        d = jm__host_failure(ctx, rc, jm_ctx_strf(ctx, "listing the segments of %s.%s", ns,
                                                  table),
                             JM__BACKOFF_POLICY);
        goto done;
    }
    before = shape_of(segs, n);
    /* What the table looks like after the merges done so far, kept as we
     * go so a stop half-way still reports the truth. */
    after = before;
    if (n > 0 && !(ids = cJSON_malloc(n * sizeof *ids))) {
        d = jm_decision_retry("out of memory planning the compaction", NULL, JM__BACKOFF_POLICY);
        goto done;
    }
    for (size_t start = 0; start < n;) {
        size_t end = group_end(segs, n, start, target);
        if (end - start >= COMPACT_MIN_GROUP)
            groups++;
        start = end;
    }
    for (size_t start = 0; start < n;) {
        size_t end = group_end(segs, n, start, target), k = end - start;
        if (k < COMPACT_MIN_GROUP) {
            start = end;
            continue;
        }
        if (jm_ctx_is_cancelled(ctx)) {
            d = with_metrics(jm_decision_cancelled(jm_ctx_strf(
                                 ctx, "cancelled after merging %zu of %zu groups of %s.%s",
                                 merged, groups, ns, table)),
                             shape_metrics(ctx, before, after));
            goto done;
        }
        for (size_t i = 0; i < k; i++)
            ids[i] = segs[start + i].id;
        jm_host_segment out = {0, 0, 0};
        rc = h->merge_segments(h->self, ns, table, ids, k, &out);
        if (rc == JM_ENOTFOUND) {
            /* A segment of the plan is gone: another compaction of this
             * table merged it meanwhile. The next run plans afresh. */
            d = with_metrics(jm_decision_retry(
                                 jm_ctx_strf(ctx,
                                             "the segments of %s.%s changed while merging "
                                             "(%s); will plan again",
                                             ns, table, jm_last_error()),
                                 NULL, JM__BACKOFF_POLICY),
                             shape_metrics(ctx, before, after));
            goto done;
        }
        if (rc != JM_OK) {
            d = with_metrics(jm__host_failure(ctx, rc,
                                              jm_ctx_strf(ctx, "merging %zu segments of %s.%s",
                                                          k, ns, table),
                                              JM__BACKOFF_POLICY),
                             shape_metrics(ctx, before, after));
            goto done;
        }
        shape group = shape_of(segs + start, k);
        int wrote = out.rows > 0 || out.bytes > 0;
        after.files -= group.files - (wrote ? 1 : 0);
        after.bytes -= group.bytes - out.bytes;
        jm_ctx_log(ctx, JM_LOG_INFO, "%s.%s: merged %zu segments (%lld bytes) into %lld bytes",
                   ns, table, k, (long long)group.bytes, (long long)out.bytes);
        merged++;
        jm_ctx_progress(ctx, (double)merged / (double)groups);
        start = end;
    }
    /* After merges, prefer the host's own account: a flush may have added
     * a segment meanwhile. The computed shape stands in if the listing
     * fails, since the merges themselves succeeded. */
    if (merged > 0) {
        if (h->list_segments(h->self, ns, table, &fresh, &nfresh) == JM_OK)
            after = shape_of(fresh, nfresh);
        else
            jm_ctx_log(ctx, JM_LOG_WARN,
                       "could not list segments after compacting (%s); reporting the "
                       "computed sizes",
                       jm_last_error());
    }
    d = jm_decision_completed(
        merged == 0
            ? jm_ctx_strf(ctx, "nothing to compact: %zu segments of %s.%s, none worth merging",
                          n, ns, table)
            : jm_ctx_strf(ctx, "merged %zu group(s) of %s.%s: %lld segments -> %lld", merged, ns,
                          table, (long long)before.files, (long long)after.files),
        shape_metrics(ctx, before, after));
done:
    cJSON_free(ids);
    if (segs)
        h->free_segments(h->self, segs);
    if (fresh)
        h->free_segments(h->self, fresh);
    return d;
}

const jm_executor jm__compact_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = JM_COMPACT,
    .name = "compact",
    .cancellable = 1,
    .validate = compact_validate,
    .execute = compact_execute,
    .cancel = NULL,
};
