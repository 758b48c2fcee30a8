/*
 * The overview (counts by type and status, the queue, running jobs, the
 * last hour's throughput, schedules and pauses) and /metrics. Counting a
 * large table takes longer than a page may wait, so a background thread
 * takes snapshots while someone looks, both answers from one count, on a
 * manager of its own so requests never queue behind it, and requests
 * answer from the latest. Nobody looking means no work: the thread only
 * runs at start and when a request finds the snapshot old.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cli.h"
#include "serve_internal.h"

#define RUNNING_SHOWN 50
#define MINUTE_MS 60000
#define MINUTES 60
/* How long a request waits for a snapshot. */
#define FIRST_WAIT_S 60

static int add_stats(cJSON *o, const jm_stats_report *st)
{
    cJSON *types = cJSON_AddArrayToObject(o, "types");
    int bad = !cJSON_AddNumberToObject(o, "taken_at_ms", (double)st->taken_at_ms) ||
              !cJSON_AddItemToObject(o, "by_status", cli_status_counts_json(st->by_status)) || !types ||
              !cJSON_AddNumberToObject(o, "queue_depth", (double)st->queue_depth) ||
              !cJSON_AddNumberToObject(o, "oldest_due_age_ms", (double)st->oldest_due_age_ms) ||
              !cJSON_AddNumberToObject(o, "running", (double)st->running) ||
              !cJSON_AddNumberToObject(o, "failed_last_hour", (double)st->failed_last_hour);
    for (size_t i = 0; i < st->ntypes && !bad; i++) {
        cJSON *t = cJSON_CreateObject();
        bad = !t || !cJSON_AddItemToArray(types, t) ||
              !cJSON_AddStringToObject(t, "type", st->types[i].type) ||
              !cJSON_AddItemToObject(t, "by_status", cli_status_counts_json(st->types[i].by_status));
    }
    return bad ? JM_ENOMEM : JM_OK;
}

static int add_running(cJSON *o, jm_manager *m)
{
    jm_filter f = JM_FILTER_INIT;
    f.statuses = JM_STATUS_BIT(JM_STATUS_RUNNING);
    f.newest_first = 1;
    f.limit = RUNNING_SHOWN;
    jm_job_list *list = NULL;
    int rc = jm_list(m, &f, &list);
    if (rc)
        return rc;
    cJSON *arr = cJSON_AddArrayToObject(o, "running_jobs");
    int bad = !arr;
    for (size_t i = 0; i < jm_job_list_count(list) && !bad; i++) {
        cJSON *row = dash_job_summary(jm_job_list_at(list, i));
        bad = !row || !cJSON_AddItemToArray(arr, row);
    }
    jm_job_list_free(list);
    return bad ? JM_ENOMEM : JM_OK;
}

static int add_throughput(cJSON *o, jm_manager *m, int64_t now)
{
    jm_throughput_bucket b[MINUTES];
    int64_t since = (now / MINUTE_MS - (MINUTES - 1)) * MINUTE_MS;
    int rc = jm_throughput(m, since, MINUTE_MS, b, MINUTES);
    if (rc)
        return rc;
    cJSON *t = cJSON_AddObjectToObject(o, "throughput");
    cJSON *arr = t ? cJSON_AddArrayToObject(t, "buckets") : NULL;
    int bad = !arr || !cJSON_AddNumberToObject(t, "bucket_ms", MINUTE_MS);
    for (size_t i = 0; i < MINUTES && !bad; i++) {
        cJSON *e = cJSON_CreateObject();
        bad = !e || !cJSON_AddItemToArray(arr, e) ||
              !cJSON_AddNumberToObject(e, "start_ms", (double)b[i].start_ms) ||
              !cJSON_AddNumberToObject(e, "completed", (double)b[i].completed) ||
              !cJSON_AddNumberToObject(e, "failed", (double)b[i].failed) ||
              !cJSON_AddNumberToObject(e, "cancelled", (double)b[i].cancelled);
    }
    return bad ? JM_ENOMEM : JM_OK;
}

static int add_schedules(cJSON *o, jm_manager *m)
{
    jm_schedule **list = NULL;
    size_t n = 0;
    int rc = jm_schedule_list(m, &list, &n);
    if (rc)
        return rc;
    cli_schedules_by_next_fire(list, n);
    cJSON *arr = cJSON_AddArrayToObject(o, "schedules");
    int bad = !arr;
    for (size_t i = 0; i < n && !bad; i++) {
        cJSON *full = cli_schedule_json(list[i]);
        cJSON *e = cJSON_CreateObject();
        static const char *const keep[] = {"id", "name", "type", "next_fire", "next_fire_ms",
                                           "paused", "cron", "interval"};
        bad = !full || !e || !cJSON_AddItemToArray(arr, e);
        for (size_t k = 0; k < sizeof keep / sizeof *keep && !bad; k++) {
            cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(full, keep[k]);
            bad = !v || !cJSON_AddItemToObject(e, keep[k], v);
        }
        cJSON_Delete(full);
    }
    jm_schedule_list_free(list, n);
    return bad ? JM_ENOMEM : JM_OK;
}

/* The Prometheus text of a snapshot, allocated with cJSON_malloc. */
static char *metrics_text(const jm_stats_report *st, int *rc)
{
    size_t need = 0;
    jm_stats_prometheus(st, NULL, 0, &need);
    char *buf = cJSON_malloc(need ? need : 1);
    if (!buf) {
        *rc = JM_ENOMEM;
        return NULL;
    }
    if ((*rc = jm_stats_prometheus(st, buf, need, NULL))) {
        cJSON_free(buf);
        return NULL;
    }
    return buf;
}

/* One snapshot: the overview's JSON and the metrics' text from one count
 * of the table. 0, or the library's error. */
static int compute(jm_manager *m, char **json, char **metrics)
{
    jm_stats_report *st = NULL;
    cJSON *o = cJSON_CreateObject();
    int rc = o ? JM_OK : JM_ENOMEM;
    *json = *metrics = NULL;
    if (rc || (rc = jm_stats(m, &st)) || (rc = add_stats(o, st)) || (rc = add_running(o, m)) ||
        (rc = add_throughput(o, m, st->taken_at_ms)) || (rc = add_schedules(o, m)))
        goto done;
    cJSON *pauses = dash_pauses_json(m, &rc);
    if (!pauses)
        goto done;
    if (!cJSON_AddItemToObject(o, "pauses", pauses)) {
        cJSON_Delete(pauses);
        rc = JM_ENOMEM;
        goto done;
    }
    if (!(*metrics = metrics_text(st, &rc)))
        goto done;
    if (!(*json = cJSON_PrintUnformatted(o))) {
        cJSON_free(*metrics);
        *metrics = NULL;
        rc = JM_ENOMEM;
    }
done:
    jm_stats_free(st);
    cJSON_Delete(o);
    return rc;
}

static void *refresher(void *arg)
{
    dash_server *s = arg;
    dash_overview *ov = &s->ov;
    pthread_mutex_lock(&ov->mu);
    for (;;) {
        while (!ov->wanted && !ov->stopping)
            pthread_cond_wait(&ov->wake, &ov->mu);
        if (ov->stopping)
            break;
        ov->wanted = 0;
        pthread_mutex_unlock(&ov->mu);
        int64_t taken = dash_now_ms();
        char *json = NULL, *metrics = NULL;
        int rc = compute(s->reader, &json, &metrics);
        int64_t took = dash_now_ms() - taken;
        const char *err = rc ? jm_last_error() : "";
        pthread_mutex_lock(&ov->mu);
        if (rc == JM_OK) {
            cJSON_free(ov->json);
            cJSON_free(ov->metrics);
            ov->json = json;
            ov->metrics = metrics;
            ov->taken_ms = taken;
        }
        /* A large table costs more to count: space the snapshots so that
         * taking them keeps under a tenth of a core. */
        ov->max_age_ms = took * 10 > DASH_SNAPSHOT_MAX_AGE_MS ? took * 10
                                                               : DASH_SNAPSHOT_MAX_AGE_MS;
        ov->last_rc = rc;
        snprintf(ov->last_err, sizeof ov->last_err, "%s", err);
        ov->generation++;
        pthread_cond_broadcast(&ov->fresh);
    }
    pthread_mutex_unlock(&ov->mu);
    return NULL;
}

int dash_overview_start(dash_server *s)
{
    dash_overview *ov = &s->ov;
    ov->max_age_ms = DASH_SNAPSHOT_MAX_AGE_MS;
    ov->wanted = 1; /* the first look finds one ready */
    if (pthread_mutex_init(&ov->mu, NULL))
        return -1;
    if (pthread_cond_init(&ov->wake, NULL)) {
        pthread_mutex_destroy(&ov->mu);
        return -1;
    }
    if (pthread_cond_init(&ov->fresh, NULL) == 0) {
        if (pthread_create(&ov->thread, NULL, refresher, s) == 0) {
            ov->started = 1;
            return 0;
        }
        pthread_cond_destroy(&ov->fresh);
    }
    pthread_cond_destroy(&ov->wake);
    pthread_mutex_destroy(&ov->mu);
    return -1;
}

void dash_overview_stop(dash_server *s)
{
    dash_overview *ov = &s->ov;
    if (!ov->started)
        return;
    pthread_mutex_lock(&ov->mu);
    ov->stopping = 1;
    pthread_cond_broadcast(&ov->wake);
    pthread_cond_broadcast(&ov->fresh);
    pthread_mutex_unlock(&ov->mu);
    pthread_join(ov->thread, NULL);
    cJSON_free(ov->json);
    cJSON_free(ov->metrics);
    pthread_cond_destroy(&ov->fresh);
    pthread_cond_destroy(&ov->wake);
    pthread_mutex_destroy(&ov->mu);
    ov->started = 0;
}

/* Answers the snapshot's `metrics` text or its JSON. A snapshot older
 * than max_age_ms is answered at once and replaced in the background; with
 * none, or one older than DASH_SNAPSHOT_STALE_MS, the request waits for a
 * fresh one. */
static void answer_snapshot(dash_server *s, int metrics, dash_resp *r)
{
    dash_overview *ov = &s->ov;
    pthread_mutex_lock(&ov->mu);
    int64_t now = dash_now_ms(), age = now - ov->taken_ms;
    if (!ov->json || age >= ov->max_age_ms || age < 0) {
        ov->wanted = 1;
        pthread_cond_signal(&ov->wake);
    }
    if (!ov->json || age >= DASH_SNAPSHOT_STALE_MS || age < 0) {
        uint64_t gen = ov->generation;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += FIRST_WAIT_S;
        while (ov->generation == gen && !ov->stopping)
            if (pthread_cond_timedwait(&ov->fresh, &ov->mu, &until) == ETIMEDOUT)
                break;
    }
    const char *text = metrics ? ov->metrics : ov->json;
    size_t len = text ? strlen(text) : 0;
    char *copy = text ? cJSON_malloc(len + 1) : NULL;
    if (copy)
        memcpy(copy, text, len + 1);
    int had = text != NULL, rc = ov->last_rc;
    char err[sizeof ov->last_err];
    memcpy(err, ov->last_err, sizeof err);
    pthread_mutex_unlock(&ov->mu);
    if (copy) {
        dash_text(r, 200, copy,
                  metrics ? "text/plain; version=0.0.4; charset=utf-8" : "application/json");
    } else if (had) {
        dash_nomem(r);
    } else if (rc) {
        char code[48];
        snprintf(code, sizeof code, "JM_%s", jm_err_name(rc));
        dash_error(r, rc == JM_EBUSY ? 503 : 500, code, "%s", err);
    } else {
        dash_error(r, 503, "unavailable", "no snapshot yet");
    }
}

void dash_route_overview(dash_server *s, const dash_req *rq, dash_resp *r)
{
    (void)rq;
    answer_snapshot(s, 0, r);
}

void dash_route_metrics(dash_server *s, const dash_req *rq, dash_resp *r)
{
    (void)rq;
    answer_snapshot(s, 1, r);
}
