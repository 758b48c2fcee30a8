/*
 * jm_metrics_prometheus(): a jm_stats() snapshot in the Prometheus text
 * exposition format, version 0.0.4. Every family has its HELP and TYPE
 * lines before its samples; per-type families list every type of the
 * snapshot, zeros included, so series do not appear and vanish. It only
 * formats: the numbers come from stats.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "jobmgr.h"

static const int64_t bucket_bounds_ms[] = JM_STATS_BUCKET_BOUNDS_MS;

/* Writes into buf while it has room and counts every byte either way, so
 * one pass gives both the text and the size it needs. */
typedef struct writer {
    char *buf;
    size_t len;
    size_t pos; /* bytes the text needs so far, without the NUL */
} writer;

static void put(writer *w, const char *fmt, ...) JM_PRINTF(2, 3);

static void put(writer *w, const char *fmt, ...)
{
    char *dst = w->pos < w->len ? w->buf + w->pos : NULL;
    size_t room = w->pos < w->len ? w->len - w->pos : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->pos += (size_t)n;
}

/* A label value with backslash, double quote and newline escaped, as the
 * format requires. */
static void put_label_value(writer *w, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            put(w, "\\\\");
        else if (*s == '"')
            put(w, "\\\"");
        else if (*s == '\n')
            put(w, "\\n");
        else
            put(w, "%c", *s);
    }
}

/* v / 10^digits, exactly, without trailing zeros: (1, 3) -> "0.001",
 * (1500, 3) -> "1.5", (30000, 3) -> "30". */
static void put_decimal(writer *w, int64_t v, int digits)
{
    if (v < 0) {
        put(w, "-");
        v = -v;
    }
    int64_t unit = 1;
    for (int i = 0; i < digits; i++)
        unit *= 10;
    int64_t whole = v / unit, frac = v % unit;
    if (frac == 0) {
        put(w, "%lld", (long long)whole);
        return;
    }
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    put(w, "%lld.%0*lld", (long long)whole, digits, (long long)frac);
}

/* Milliseconds as seconds, exactly. */
static void put_seconds(writer *w, int64_t ms)
{
    put_decimal(w, ms, 3);
}

static void family(writer *w, const char *name, const char *type, const char *help)
{
    put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_type_label(writer *w, const char *metric, const char *type)
{
    put(w, "%s{type=\"", metric);
    put_label_value(w, type);
    put(w, "\"");
}

static void gauge(writer *w, const char *name, const char *help, int64_t v)
{
    family(w, name, "gauge", help);
    put(w, "%s %lld\n", name, (long long)v);
}

/* A counter family with one sample per type; `field` picks the value. */
static void type_counter(writer *w, const jm_stats_report *r, const char *name,
                         const char *help, size_t field)
{
    family(w, name, "counter", help);
    for (size_t i = 0; i < r->ntypes; i++) {
        const jm_type_stats *t = &r->types[i];
        int64_t v;
        memcpy(&v, (const char *)t + field, sizeof v);
        put_type_label(w, name, t->type);
        put(w, "} %lld\n", (long long)v);
    }
}

/* Label values of jm_class, by class. */
static const char *const class_names[JM_CLASS_COUNT] = {"normal", "high"};

static void throttle_families(writer *w, const jm_stats_report *r)
{
    family(w, "jobmgr_throttle_bytes_total", "counter",
           "Bytes jobs spent from their priority class's I/O budget.");
    for (int c = 0; c < JM_CLASS_COUNT; c++)
        put(w, "jobmgr_throttle_bytes_total{class=\"%s\"} %lld\n", class_names[c],
            (long long)r->throttle_bytes[c]);
    family(w, "jobmgr_throttle_wait_seconds_total", "counter",
           "Time jobs waited for their priority class's I/O budget.");
    for (int c = 0; c < JM_CLASS_COUNT; c++) {
        put(w, "jobmgr_throttle_wait_seconds_total{class=\"%s\"} ", class_names[c]);
        put_decimal(w, r->throttle_wait_us[c], 6);
        put(w, "\n");
    }
}

static void render(writer *w, const jm_stats_report *r)
{
    family(w, "jobmgr_jobs", "gauge", "Jobs in the jobs table by type and status.");
    for (size_t i = 0; i < r->ntypes; i++) {
        for (int s = 0; s < JM_STATUS_COUNT; s++) {
            put_type_label(w, "jobmgr_jobs", r->types[i].type);
            put(w, ",status=\"%s\"} %lld\n", jm_status_name((jm_status)s),
                (long long)r->types[i].by_status[s]);
        }
    }
    gauge(w, "jobmgr_queue_depth", "Jobs due now and waiting for a worker.", r->queue_depth);
    family(w, "jobmgr_oldest_due_age_seconds", "gauge",
           "How long the oldest due job has waited; 0 if none.");
    put(w, "jobmgr_oldest_due_age_seconds ");
    put_seconds(w, r->oldest_due_age_ms);
    put(w, "\n");
    gauge(w, "jobmgr_running_jobs", "Running jobs in the jobs table, in any process.",
          r->running);
    gauge(w, "jobmgr_running_jobs_here", "Jobs running in this manager now.", r->running_here);
    gauge(w, "jobmgr_failed_last_hour", "Jobs that ended failed in the last hour.",
          r->failed_last_hour);

    type_counter(w, r, "jobmgr_runs_total", "Runs this manager finished, by type.",
                 offsetof(jm_type_stats, runs));
    type_counter(w, r, "jobmgr_completed_total", "Runs that completed their job, by type.",
                 offsetof(jm_type_stats, completed));
    type_counter(w, r, "jobmgr_retries_total", "Runs that asked for a retry, by type.",
                 offsetof(jm_type_stats, retries));
    type_counter(w, r, "jobmgr_failures_total", "Runs that ended their job failed, by type.",
                 offsetof(jm_type_stats, failures));
    type_counter(w, r, "jobmgr_cancelled_total", "Runs that ended their job cancelled, by type.",
                 offsetof(jm_type_stats, cancelled));
    family(w, "jobmgr_recovered_total", "counter",
           "Jobs this manager recovered from lost workers.");
    put(w, "jobmgr_recovered_total %lld\n", (long long)r->recovered);
    family(w, "jobmgr_schedule_jobs_total", "counter",
           "Jobs created by this manager's fires of schedules.");
    put(w, "jobmgr_schedule_jobs_total %lld\n", (long long)r->schedule_jobs);
    family(w, "jobmgr_schedule_skipped_total", "counter",
           "Fire times the overlap policy skipped.");
    put(w, "jobmgr_schedule_skipped_total %lld\n", (long long)r->schedule_skipped);
    family(w, "jobmgr_schedule_misfires_total", "counter",
           "Fire times found missed (no manager ran, or the schedule was paused).");
    put(w, "jobmgr_schedule_misfires_total %lld\n", (long long)r->schedule_misfires);
    family(w, "jobmgr_schedule_lag_max_seconds", "gauge",
           "The longest a fire came after its fire time.");
    put(w, "jobmgr_schedule_lag_max_seconds %.3f\n", (double)r->schedule_lag_max_ms / 1000.0);
    throttle_families(w, r);

    const char *h = "jobmgr_run_duration_seconds";
    family(w, h, "histogram", "How long runs took, from start to the executor's return.");
    for (size_t i = 0; i < r->ntypes; i++) {
        const jm_type_stats *t = &r->types[i];
        for (int b = 0; b < JM_STATS_BUCKETS; b++) {
            put_type_label(w, "jobmgr_run_duration_seconds_bucket", t->type);
            put(w, ",le=\"");
            if (b < JM_STATS_BUCKETS - 1)
                put_seconds(w, bucket_bounds_ms[b]);
            else
                put(w, "+Inf");
            put(w, "\"} %lld\n", (long long)t->duration_le[b]);
        }
        put_type_label(w, "jobmgr_run_duration_seconds_sum", t->type);
        put(w, "} ");
        put_seconds(w, (int64_t)t->duration_sum_ms);
        put(w, "\n");
        put_type_label(w, "jobmgr_run_duration_seconds_count", t->type);
        put(w, "} %lld\n", (long long)t->duration_le[JM_STATS_BUCKETS - 1]);
    }
}

int jm_stats_prometheus(const jm_stats_report *r, char *buf, size_t len, size_t *needed)
{
    if (needed)
        *needed = 0;
    if (!r)
        return jm__seterr(JM_EINVAL, "jm_stats_prometheus: report is NULL");
    if (!buf && len > 0)
        return jm__seterr(JM_EINVAL, "jm_stats_prometheus: buf is NULL but len is %zu", len);
    writer w = {buf, len, 0};
    render(&w, r);
    if (needed)
        *needed = w.pos + 1;
    if (w.pos + 1 > len) {
        if (len > 0)
            buf[0] = '\0';
        return jm__seterr(JM_ETOOBIG, "the Prometheus text needs %zu bytes, not %zu", w.pos + 1,
                          len);
    }
    return JM_OK;
}

int jm_metrics_prometheus(jm_manager *m, char *buf, size_t len, size_t *needed)
{
    if (needed)
        *needed = 0;
    if (!m)
        return jm__seterr(JM_EINVAL, "jm_metrics_prometheus: manager is NULL");
    if (!buf && len > 0)
        return jm__seterr(JM_EINVAL, "jm_metrics_prometheus: buf is NULL but len is %zu", len);
    jm_stats_report *r = NULL;
    int rc = jm_stats(m, &r);
    if (rc) {
        if (len > 0)
            buf[0] = '\0';
        return rc;
    }
    rc = jm_stats_prometheus(r, buf, len, needed);
    jm_stats_free(r);
    return rc;
}
