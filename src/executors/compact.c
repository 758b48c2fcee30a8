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
 *
 * Between groups it yields to a pause: the table's shape before the first
 * run and the groups merged so far go into the checkpoint, and the run
 * returns continue; the next run plans afresh and reports over all runs.
 * Each group is charged to the class's I/O budget: its segments before the
 * host reads them, the merged segment once the host has written it.
 */
#include <stdint.h>

#include "builtin.h"
#include "exec_util.h"

/* 64 GiB: no sane segment is larger. */
#define COMPACT_TARGET_MB_MAX 65536
#define BYTES_PER_MB (INT64_C(1024) * 1024)
/* Merging a single segment would rewrite it for nothing. */
#define COMPACT_MIN_GROUP 2
/* A paused compaction is due again at once: the pause holds it back. */
#define COMPACT_RESUME_DELAY_MS 0

/* Checkpoint fields: the shape before the first run, groups merged. */
#define CP_FILES_BEFORE "files_before"
#define CP_BYTES_BEFORE "bytes_before"
#define CP_GROUPS_MERGED "groups_merged"

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

static int compact_resource(void *self, const cJSON *p, char *buf, size_t buflen)
{
    (void)self;
    return jm__table_resource(p, "namespace_id", "table_name", buf, buflen);
}

/* What earlier runs of the job left in its checkpoint: the table's shape
 * before the first run and the groups merged. 0, or -1 if there is none
 * (or it is unreadable: the counts then start from this run). */
static int progress_load(jm_ctx *ctx, shape *first, int64_t *merged)
{
    cJSON *cp = jm__checkpoint_load(ctx);
    shape s;
    int64_t m;
    int rc = cp && jm__json_int(cp, CP_FILES_BEFORE, &s.files) == 0 &&
                     jm__json_int(cp, CP_BYTES_BEFORE, &s.bytes) == 0 &&
                     jm__json_int(cp, CP_GROUPS_MERGED, &m) == 0 && m >= 0
                 ? 0
                 : -1;
    cJSON_Delete(cp);
    if (rc == 0) {
        *first = s;
        *merged = m;
    }
    return rc;
}

static int progress_save(jm_ctx *ctx, shape first, int64_t merged)
{
    int rc = JM_ENOMEM;
    cJSON *cp = cJSON_CreateObject();
    if (cp && cJSON_AddNumberToObject(cp, CP_FILES_BEFORE, (double)first.files) &&
        cJSON_AddNumberToObject(cp, CP_BYTES_BEFORE, (double)first.bytes) &&
        cJSON_AddNumberToObject(cp, CP_GROUPS_MERGED, (double)merged))
        rc = jm__checkpoint_save(ctx, cp);
    else
        jm_host_error(JM_ENOMEM, "out of memory building a checkpoint");
    cJSON_Delete(cp);
    return rc;
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
    shape before = {0, 0}, after = {0, 0}, first = {0, 0};
    int64_t earlier = 0; /* groups merged by earlier runs */
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
    /* Metrics and messages speak of the whole job: a run after a pause
     * reports the shape before the first run. */
    if (progress_load(ctx, &first, &earlier) != 0)
        first = before;
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
        shape group = shape_of(segs + start, k);
        /* The host reads the whole group. A stop or a pause that comes
         * while this waits is seen just below, before the merge. */
        jm_ctx_throttle(ctx, group.bytes);
        if (jm_ctx_is_cancelled(ctx)) {
            d = with_metrics(jm_decision_cancelled(jm_ctx_strf(
                                 ctx, "cancelled after merging %zu of %zu groups of %s.%s",
                                 merged, groups, ns, table)),
                             shape_metrics(ctx, first, after));
            goto done;
        }
        if (jm__exec_should_pause(ctx)) {
            rc = progress_save(ctx, first, earlier + (int64_t)merged);
            d = rc != JM_OK
                    ? jm__host_failure(ctx, rc, "saving the checkpoint", JM__BACKOFF_POLICY)
                    : jm_decision_continue(
                          jm_ctx_strf(ctx, "paused after merging %zu of %zu groups of %s.%s",
                                      merged, groups, ns, table),
                          COMPACT_RESUME_DELAY_MS);
            d = with_metrics(d, shape_metrics(ctx, first, after));
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
                             shape_metrics(ctx, first, after));
            goto done;
        }
        if (rc != JM_OK) {
            d = with_metrics(jm__host_failure(ctx, rc,
                                              jm_ctx_strf(ctx, "merging %zu segments of %s.%s",
                                                          k, ns, table),
                                              JM__BACKOFF_POLICY),
                             shape_metrics(ctx, first, after));
            goto done;
        }
        /* What the host wrote: charged once it says how much. */
        jm_ctx_throttle(ctx, out.bytes);
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
    int64_t total = earlier + (int64_t)merged;
    d = jm_decision_completed(
        total == 0
            ? jm_ctx_strf(ctx, "nothing to compact: %zu segments of %s.%s, none worth merging",
                          n, ns, table)
            : jm_ctx_strf(ctx, "merged %lld group(s) of %s.%s: %lld segments -> %lld",
                          (long long)total, ns, table, (long long)first.files,
                          (long long)after.files),
        shape_metrics(ctx, first, after));
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
    .priority_class = JM_CLASS_NORMAL,
    .resource = compact_resource,
};
