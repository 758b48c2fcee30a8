/*
 * Metrics: the counters a manager keeps of the runs it finished, and
 * jm_stats(), which joins them with the jobs table's numbers (read by the
 * store in one snapshot) into one report; and jm_throughput(), finished
 * jobs by time bucket, which come from the table alone. Rendering the
 * report for Prometheus is in prometheus.c; nothing here formats text.
 */
#include "stats.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ctx.h"
#include "error.h"
#include "manager.h"

static const int64_t bucket_bounds_ms[] = JM_STATS_BUCKET_BOUNDS_MS;
_Static_assert(sizeof bucket_bounds_ms / sizeof bucket_bounds_ms[0] == JM_STATS_BUCKETS - 1,
               "JM_STATS_BUCKET_BOUNDS_MS must list JM_STATS_BUCKETS - 1 bounds");

int jm__stats_init(jm__stats *s)
{
    memset(s, 0, sizeof *s);
    return pthread_mutex_init(&s->lock, NULL);
}

void jm__stats_destroy(jm__stats *s)
{
    pthread_mutex_destroy(&s->lock);
}

static int bucket_of(int64_t duration_ms)
{
    for (int i = 0; i < JM_STATS_BUCKETS - 1; i++)
        if (duration_ms <= bucket_bounds_ms[i])
            return i;
    return JM_STATS_BUCKETS - 1;
}

void jm__stats_record(jm_manager *m, const char *type, int final_status, int retry_decision,
                      int64_t duration_ms)
{
    if (final_status < 0)
        return;
    if (duration_ms < 0)
        duration_ms = 0;
    int completed = final_status == JM_STATUS_COMPLETED;
    int failed = final_status == JM_STATUS_FAILED;
    int cancelled = final_status == JM_STATUS_CANCELLED;
    int retried = retry_decision != 0;
    int slot = jm__type_slot(type);
    jm__stats *s = &m->stats;
    pthread_mutex_lock(&s->lock);
    s->runs++;
    s->completed += completed;
    s->failures += failed;
    s->cancelled += cancelled;
    s->retries += retried;
    /* Claims only take registered types, so slot is valid; a malformed
     * type still counts in the totals. */
    if (slot >= 0) {
        jm__type_counters *t = &s->types[slot];
        t->present = 1;
        t->runs++;
        t->completed += completed;
        t->failures += failed;
        t->cancelled += cancelled;
        t->retries += retried;
        t->duration_sum_ms += duration_ms;
        if (duration_ms > t->duration_max_ms)
            t->duration_max_ms = duration_ms;
        t->buckets[bucket_of(duration_ms)]++;
    }
    pthread_mutex_unlock(&s->lock);
}

void jm__stats_recovered(jm_manager *m, int n)
{
    if (n <= 0)
        return;
    pthread_mutex_lock(&m->stats.lock);
    m->stats.recovered += n;
    pthread_mutex_unlock(&m->stats.lock);
}

void jm__stats_schedule_fire(jm_manager *m, int64_t created, int64_t skipped, int64_t missed,
                             int64_t lag_ms)
{
    jm__stats *s = &m->stats;
    pthread_mutex_lock(&s->lock);
    s->schedule_jobs += created;
    s->schedule_skipped += skipped;
    s->schedule_misfires += missed;
    if (lag_ms > s->schedule_lag_max_ms)
        s->schedule_lag_max_ms = lag_ms;
    pthread_mutex_unlock(&s->lock);
}

static int64_t running_here(jm_manager *m)
{
    int64_t n = 0;
    pthread_mutex_lock(&m->lock);
    for (const jm_ctx *c = m->active; c; c = c->next)
        n++;
    pthread_mutex_unlock(&m->lock);
    return n;
}

static int by_type(const void *a, const void *b)
{
    return strcmp(((const jm_type_stats *)a)->type, ((const jm_type_stats *)b)->type);
}

/* Copies the counters into the report: totals, and one entry per type that
 * ran here (types has room for every slot in use). */
static size_t copy_counters(jm_manager *m, jm_stats_report *r, size_t room)
{
    jm__stats *s = &m->stats;
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    r->runs = s->runs;
    r->completed = s->completed;
    r->retries = s->retries;
    r->failures = s->failures;
    r->cancelled = s->cancelled;
    r->recovered = s->recovered;
    r->schedule_jobs = s->schedule_jobs;
    r->schedule_skipped = s->schedule_skipped;
    r->schedule_misfires = s->schedule_misfires;
    r->schedule_lag_max_ms = s->schedule_lag_max_ms;
    for (int slot = 0; slot < JM_TYPE_SLOTS && n < room; slot++) {
        const jm__type_counters *c = &s->types[slot];
        if (!c->present)
            continue;
        jm_type_stats *t = &r->types[n++];
        t->type[0] = (char)('A' + slot / 26);
        t->type[1] = (char)('A' + slot % 26);
        t->type[2] = '\0';
        t->runs = c->runs;
        t->completed = c->completed;
        t->retries = c->retries;
        t->failures = c->failures;
        t->cancelled = c->cancelled;
        t->duration_sum_ms = (double)c->duration_sum_ms;
        t->duration_max_ms = c->duration_max_ms;
        int64_t cumulative = 0;
        for (int i = 0; i < JM_STATS_BUCKETS; i++) {
            cumulative += c->buckets[i];
            t->duration_le[i] = cumulative;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

static size_t types_in_use(jm_manager *m)
{
    size_t n = 0;
    pthread_mutex_lock(&m->stats.lock);
    for (int slot = 0; slot < JM_TYPE_SLOTS; slot++)
        n += m->stats.types[slot].present != 0;
    pthread_mutex_unlock(&m->stats.lock);
    return n;
}

/* Adds the table's counts: each row's type joins the list if it did not run
 * here. A row of a malformed stored type counts in the totals only. */
static void merge_table(jm_stats_report *r, const jm__store_stats *ts)
{
    for (size_t i = 0; i < ts->nrows; i++) {
        const jm__type_status_count *row = &ts->rows[i];
        r->by_status[row->status] += row->count;
        if (!row->type[0])
            continue;
        size_t k = 0;
        while (k < r->ntypes && strcmp(r->types[k].type, row->type) != 0)
            k++;
        if (k == r->ntypes) {
            memcpy(r->types[k].type, row->type, sizeof row->type);
            r->ntypes++;
        }
        r->types[k].by_status[row->status] += row->count;
    }
}

int jm_stats(jm_manager *m, jm_stats_report **out)
{
    if (out)
        *out = NULL;
    if (!m || !out)
        return jm__seterr(JM_EINVAL, "jm_stats: %s is NULL", m ? "out" : "manager");
    int64_t now = jm__now(m);
    jm__store_stats ts;
    jm__db_lock(m);
    int rc = m->ops->stats(m->store, now, &ts);
    jm__db_unlock(m);
    if (rc)
        return rc;
    jm_stats_report *r = jm__calloc(1, sizeof *r);
    /* Room for every type that ran here (more may have run since we
     * counted: copy_counters stops at the room) and every table row. */
    size_t room = types_in_use(m) + ts.nrows;
    if (r && room)
        r->types = jm__calloc(room, sizeof *r->types);
    if (!r || (room && !r->types)) {
        jm_stats_free(r);
        jm__free(ts.rows);
        return jm__seterr(JM_ENOMEM, "out of memory taking metrics");
    }
    r->taken_at_ms = now;
    r->queue_depth = ts.queue_depth;
    r->oldest_due_age_ms =
        ts.queue_depth > 0 && now > ts.oldest_due_run_at ? now - ts.oldest_due_run_at : 0;
    r->running = ts.running;
    r->failed_last_hour = ts.failed_last_hour;
    r->running_here = running_here(m);
    jm__throttle_totals(m, r->throttle_bytes, r->throttle_wait_us);
    r->ntypes = copy_counters(m, r, room - ts.nrows);
    merge_table(r, &ts);
    jm__free(ts.rows);
    if (r->ntypes)
        qsort(r->types, r->ntypes, sizeof *r->types, by_type);
    else {
        jm__free(r->types);
        r->types = NULL;
    }
    *out = r;
    return JM_OK;
}

void jm_stats_free(jm_stats_report *r)
{
    if (!r)
        return;
    jm__free(r->types);
    jm__free(r);
}

/* Sets each bucket's start and clears its counts. */
static void throughput_clear(jm_throughput_bucket *out, size_t n, int64_t since,
                             int64_t bucket_ms)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (jm_throughput_bucket){.start_ms = since + (int64_t)i * bucket_ms};
}

int jm_throughput(jm_manager *m, int64_t since_ms, int64_t bucket_ms,
                  jm_throughput_bucket *out, size_t nbuckets)
{
    if (!m || !out)
        return jm__seterr(JM_EINVAL, "jm_throughput: %s is NULL", m ? "out" : "manager");
    if (bucket_ms < 1)
        return jm__seterr(JM_EINVAL, "jm_throughput: bucket_ms must be at least 1");
    if (nbuckets < 1 || nbuckets > JM_THROUGHPUT_MAX_BUCKETS)
        return jm__seterr(JM_EINVAL, "jm_throughput: nbuckets must be 1..%d",
                          JM_THROUGHPUT_MAX_BUCKETS);
    if (since_ms < 0)
        return jm__seterr(JM_EINVAL, "jm_throughput: since_ms must not be negative");
    /* The window's end, since_ms + nbuckets * bucket_ms, must fit. */
    if (bucket_ms > (INT64_MAX - since_ms) / (int64_t)nbuckets)
        return jm__seterr(JM_EINVAL, "jm_throughput: the window's end overflows");
    throughput_clear(out, nbuckets, since_ms, bucket_ms);
    jm__db_lock(m);
    int rc = m->ops->throughput(m->store, since_ms, bucket_ms, out, nbuckets);
    jm__db_unlock(m);
    if (rc)
        throughput_clear(out, nbuckets, since_ms, bucket_ms);
    return rc;
}
