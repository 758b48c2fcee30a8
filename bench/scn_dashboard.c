/*
 * dashboard: `jobmgr serve` timed from outside, through HTTP, with a
 * million jobs in its table: p50 and p99 of every page and GET of the API
 * (target: p99 <= 50 ms each), then the CPU the server burns while nobody
 * asks (target: < 1 % of a core).
 *
 * The table is what a day of a busy system leaves (dash_seed.c describes
 * it); the server is the real tool in a child process (dash_child.c).
 * Requests go one at a time over a keep-alive connection (http_get.c).
 * First in rounds that ask every endpoint once, in random order, rounds a
 * random pause apart, so the overview's background refreshes (every 2 s or
 * more while someone asks) overlap the other requests at random moments,
 * as they do with a page open; then each endpoint alone, many times in a
 * row after a pause, which tells a slow answer from one that waited for a
 * refresh. This file asks, checks the answers, measures and reports.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dash_bench.h"
#include "http_get.h"
#include "scenarios.h"

#define MAX_REPS 64

/* The requirement. */
#define TARGET_P99_MS 50.0
#define TARGET_IDLE_PCT 1.0

/* The shares of the seeded table (dash_seed.c) that are worked and queued. */
#define WORKED_PER_MILLE 20
#define QUEUED_PER_MILLE 15

/* The measurement. */
#define DEEP_PAGES 50
#define NEWEST_LIMIT 100
/* Before the idle measurement: time for whatever the last requests
 * started (a refresh, a closing connection) to end. */
#define SETTLE_US 3000000
/* Before each endpoint asked alone: this many times what the first
 * snapshot took, plus a little, for a refresh started before to end. */
#define PAUSE_FACTOR 2
#define PAUSE_MIN_US 100000
/* A Prometheus server's usual scrape interval: one /metrics request this
 * long after the last request, as a scrape of a dashboard nobody watches. */
#define SCRAPE_GAP_S 15
/* --quick: still past the 2 s after which a snapshot is refreshed. */
#define QUICK_SCRAPE_GAP_S 5
/* A first overview computes its snapshot: it may take long at a million. */
#define HTTP_TIMEOUT_S 300
/* Below this the queued portion may hold no BK job to list. */
#define MIN_JOBS 10000
/* Room for the note naming the endpoints over the target. */
#define NOTE_OVER_MAX 300

enum {
    EP_INDEX, EP_APP_JS, EP_OVERVIEW, EP_JOBS, EP_FAILED, EP_BK_QUEUED, EP_NEWEST, EP_DEEP,
    EP_JOB, EP_SCHEDULES, EP_PAUSES, EP_METRICS, EP_COUNT
};

/* What each endpoint is called in the table, and its path where fixed. */
static const struct {
    const char *label;
    const char *path;
} endpoints[EP_COUNT] = {
    [EP_INDEX] = {"GET /", "/"},
    [EP_APP_JS] = {"GET /app.js", "/app.js"},
    [EP_OVERVIEW] = {"GET /api/overview", "/api/overview"},
    [EP_JOBS] = {"GET /api/jobs (first page)", "/api/jobs"},
    [EP_FAILED] = {"GET /api/jobs?status=failed", "/api/jobs?status=failed"},
    [EP_BK_QUEUED] = {"GET /api/jobs?type=BK&status=queued", "/api/jobs?type=BK&status=queued"},
    [EP_NEWEST] = {"GET /api/jobs?newest=1&limit=100", "/api/jobs?newest=1&limit=100"},
    [EP_DEEP] = {"GET /api/jobs?cursor=<page 50>", NULL},
    [EP_JOB] = {"GET /api/jobs/<random id>", NULL},
    [EP_SCHEDULES] = {"GET /api/schedules", "/api/schedules"},
    [EP_PAUSES] = {"GET /api/pauses", "/api/pauses"},
    [EP_METRICS] = {"GET /metrics", "/metrics"},
};

/* --- Requests -------------------------------------------------------------- */

typedef struct probe {
    http_conn *c;
    const bdash_seed *s;
    char deep[160];           /* the deep page's path */
    uint64_t rng;
    int64_t last_taken;       /* the overview's last taken_at_ms */
    long snapshots;           /* distinct overview snapshots seen */
    long total_in_overview;   /* jobs by_status adds up to, first answer */
    char by_status[256];      /* by_status of the first answer, as JSON */
} probe;

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static const cJSON *array_of(const cJSON *o, const char *name)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsArray(a) ? a : NULL;
}

static const char *text_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Whether every job of a list has `field` equal to `want`. */
static int all_jobs(const cJSON *jobs, const char *field, const char *want)
{
    const cJSON *j;
    cJSON_ArrayForEach(j, jobs)
    {
        const char *v = text_of(j, field);
        if (!v || strcmp(v, want) != 0)
            return 0;
    }
    return 1;
}

static int check_overview(probe *p, const cJSON *o)
{
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(o, "by_status");
    const cJSON *taken = cJSON_GetObjectItemCaseSensitive(o, "taken_at_ms");
    if (!cJSON_IsObject(by) || !cJSON_IsNumber(taken) ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "throughput")))
        return 0;
    if ((int64_t)taken->valuedouble != p->last_taken) {
        p->last_taken = (int64_t)taken->valuedouble;
        p->snapshots++;
    }
    if (!p->total_in_overview) {
        const cJSON *v;
        long sum = 0;
        cJSON_ArrayForEach(v, by) sum += (long)v->valuedouble;
        p->total_in_overview = sum;
        char *text = cJSON_PrintUnformatted(by);
        snprintf(p->by_status, sizeof p->by_status, "%s", text ? text : "?");
        cJSON_free(text);
    }
    return 1;
}

/* Whether an answer is what the endpoint should answer; `what` names the
 * job asked for by EP_JOB. */
static int answer_ok(probe *p, int ep, const http_response *r, const char *what)
{
    if (r->status != 200)
        return 0;
    switch (ep) {
    case EP_INDEX:
        return strstr(r->body, "<html") && strstr(r->body, "name=\"csrf-token\"") &&
               !strstr(r->body, "{{CSRF}}");
    case EP_APP_JS:
        return r->len > 0;
    case EP_METRICS:
        return strstr(r->body, "jobmgr_") != NULL;
    default:
        break;
    }
    cJSON *o = cJSON_ParseWithLength(r->body, r->len);
    const cJSON *a = NULL;
    int ok = 0;
    switch (ep) {
    case EP_OVERVIEW:
        ok = o && check_overview(p, o);
        break;
    case EP_JOBS:
    case EP_DEEP:
        ok = (a = array_of(o, "jobs")) && cJSON_GetArraySize(a) > 0;
        break;
    case EP_FAILED:
        ok = (a = array_of(o, "jobs")) && cJSON_GetArraySize(a) > 0 &&
             all_jobs(a, "status", "failed");
        break;
    case EP_BK_QUEUED:
        ok = (a = array_of(o, "jobs")) && cJSON_GetArraySize(a) > 0 &&
             all_jobs(a, "status", "queued") && all_jobs(a, "type", "BK");
        break;
    case EP_NEWEST:
        ok = (a = array_of(o, "jobs")) && cJSON_GetArraySize(a) == NEWEST_LIMIT;
        break;
    case EP_JOB:
        ok = o && text_of(o, "id") && strcmp(text_of(o, "id"), what) == 0;
        break;
    case EP_SCHEDULES:
        ok = (a = array_of(o, "schedules")) && cJSON_GetArraySize(a) == BDASH_SCHEDULES;
        break;
    case EP_PAUSES:
        ok = (a = array_of(o, "pauses")) && cJSON_GetArraySize(a) == 1;
        break;
    default:
        break;
    }
    cJSON_Delete(o);
    return ok;
}

/* One request, timed; -1 (after bench_fail) if it failed or answered
 * wrong, else the milliseconds it took. */
static double ask(probe *p, int ep)
{
    char path[160];
    const char *what = "";
    if (ep == EP_DEEP) {
        snprintf(path, sizeof path, "%s", p->deep);
    } else if (ep == EP_JOB) {
        what = p->s->ids[next_rand(&p->rng) % p->s->nids];
        snprintf(path, sizeof path, "/api/jobs/%s", what);
    } else {
        snprintf(path, sizeof path, "%s", endpoints[ep].path);
    }
    http_response r;
    int64_t t0 = bu_mono_ns();
    int rc = http_get(p->c, path, &r);
    double ms = bu_seconds_since(t0) * 1000;
    if (rc != 0) {
        bench_fail(BDASH_SCN, "GET %s: %s", path, http_error(p->c));
        return -1;
    }
    if (!answer_ok(p, ep, &r, what)) {
        bench_fail(BDASH_SCN, "GET %s answered %d, not as expected: %.200s", path, r.status,
                   r.body);
        return -1;
    }
    return ms;
}

/* Follows next_cursor DEEP_PAGES pages into the plain list. */
static int find_deep_page(probe *p)
{
    snprintf(p->deep, sizeof p->deep, "/api/jobs");
    for (int page = 0; page < DEEP_PAGES; page++) {
        http_response r;
        if (http_get(p->c, p->deep, &r) != 0 || r.status != 200) {
            bench_fail(BDASH_SCN, "following the cursor: GET %s: %s", p->deep,
                       r.status != 200 ? "not 200" : http_error(p->c));
            return 1;
        }
        cJSON *o = cJSON_ParseWithLength(r.body, r.len);
        const char *next = text_of(o, "next_cursor");
        if (next)
            snprintf(p->deep, sizeof p->deep, "/api/jobs?cursor=%s", next);
        cJSON_Delete(o);
        if (!next) {
            bench_fail(BDASH_SCN, "the job list ended after %d pages", page + 1);
            return 1;
        }
    }
    return 0;
}

/* --- Reporting ------------------------------------------------------------- */

/* Per endpoint and repetition, in milliseconds: p50 and p99 of the mixed
 * rounds, and p99 of the endpoint asked alone. */
typedef struct figures {
    double p50[EP_COUNT][MAX_REPS];
    double p99[EP_COUNT][MAX_REPS];
    double alone[EP_COUNT][MAX_REPS];
} figures;

static void report_p99(const char *metric, double v, double *worst, char *worst_metric,
                       char *over, size_t *used)
{
    char target[32];
    snprintf(target, sizeof target, "<= %.0f ms", TARGET_P99_MS);
    bench_report(BDASH_SCN, metric, v, "ms", NAN, NULL, target, v <= TARGET_P99_MS);
    if (v > *worst) {
        *worst = v;
        snprintf(worst_metric, 96, "worst: %s", metric);
    }
    if (v > TARGET_P99_MS && *used < NOTE_OVER_MAX)
        *used += (size_t)snprintf(over + *used, NOTE_OVER_MAX - *used, "%s%s %.1f ms",
                                  *used ? ", " : "", metric, v);
}

static void report_all(long jobs, figures *f, int reps)
{
    double worst = -1;
    char worst_metric[96] = "", over[NOTE_OVER_MAX] = "", metric[96];
    size_t used = 0;
    for (int ep = 0; ep < EP_COUNT; ep++) {
        snprintf(metric, sizeof metric, "%s p50", endpoints[ep].label);
        bench_report(BDASH_SCN, metric, bu_median(f->p50[ep], (size_t)reps), "ms", NAN, NULL, NULL,
                     BENCH_NO_TARGET);
        snprintf(metric, sizeof metric, "%s p99", endpoints[ep].label);
        report_p99(metric, bu_median(f->p99[ep], (size_t)reps), &worst, worst_metric, over,
                   &used);
        snprintf(metric, sizeof metric, "%s p99 alone", endpoints[ep].label);
        report_p99(metric, bu_median(f->alone[ep], (size_t)reps), &worst, worst_metric, over,
                   &used);
    }
    char ratio_to[64], target[32];
    snprintf(ratio_to, sizeof ratio_to, "the %.0f ms target", TARGET_P99_MS);
    snprintf(target, sizeof target, "<= %.0f ms", TARGET_P99_MS);
    bench_report(BDASH_SCN, worst_metric, worst, "ms", worst / TARGET_P99_MS, ratio_to, target,
                 worst <= TARGET_P99_MS);
    if (over[0])
        bench_note(BDASH_SCN, "over the p99 target with %ld jobs: %s", jobs, over);
}

/* --- The scenario ------------------------------------------------------------ */

/* `rounds` rounds that ask every endpoint once each, in a new random
 * order every round, a random pause of 0 to 2 gap_ms between rounds: the
 * overview's refreshes overlap the other requests at random moments, as
 * with a page open while someone browses. */
static int measure_mixed(probe *p, long rounds, long gap_ms, double *lat[EP_COUNT])
{
    int order[EP_COUNT];
    for (int ep = 0; ep < EP_COUNT; ep++)
        order[ep] = ep;
    for (long i = 0; i < rounds; i++) {
        if (i > 0 && gap_ms > 0)
            bu_sleep_us((long)(next_rand(&p->rng) % (uint64_t)(2 * gap_ms * 1000 + 1)));
        for (int k = EP_COUNT - 1; k > 0; k--) {
            int j = (int)(next_rand(&p->rng) % (uint64_t)(k + 1)), t = order[k];
            order[k] = order[j];
            order[j] = t;
        }
        for (int k = 0; k < EP_COUNT; k++) {
            double ms = ask(p, order[k]);
            if (ms < 0)
                return 1;
            lat[order[k]][i] = ms;
        }
    }
    return 0;
}

/* Each endpoint `rounds` times in a row, after a pause of pause_us for
 * any overview refresh started before to end. */
static int measure_alone(probe *p, long rounds, long pause_us, double *lat[EP_COUNT])
{
    for (int ep = 0; ep < EP_COUNT; ep++) {
        bu_sleep_us(pause_us);
        for (long i = 0; i < rounds; i++)
            if ((lat[ep][i] = ask(p, ep)) < 0)
                return 1;
    }
    return 0;
}

/* The CPU the server burns over idle_seconds with nobody asking. */
static int idle_cost(const bench_opts *o, const bdash_server *sv)
{
    bench_log(BDASH_SCN ": idle for %.1f s, then measuring %.0f s", SETTLE_US / 1e6,
              o->idle_seconds);
    bu_sleep_us(SETTLE_US);
    double c0 = bdash_proc_cpu_seconds(sv->pid);
    int64_t t0 = bu_mono_ns();
    bu_sleep_us((long)(o->idle_seconds * 1e6));
    double c1 = bdash_proc_cpu_seconds(sv->pid);
    double secs = bu_seconds_since(t0);
    if (c0 < 0 || c1 < 0) {
        bench_fail(BDASH_SCN, "cannot read /proc/%d/stat", (int)sv->pid);
        return 1;
    }
    double pct = (c1 - c0) / secs * 100;
    char metric[96], target[32];
    snprintf(metric, sizeof metric, "idle server CPU over %.0f s, no requests", o->idle_seconds);
    snprintf(target, sizeof target, "< %.0f%% of a core", TARGET_IDLE_PCT);
    bench_report(BDASH_SCN, metric, pct, "% core", NAN, NULL, target, pct < TARGET_IDLE_PCT);
    return 0;
}

int scn_dashboard(const bench_opts *o)
{
    if (!bdash_cli_path[0]) {
        bench_note(BDASH_SCN,
                   "skipped: jm-bench was built without the jobmgr tool (JM_BUILD_TOOLS)");
        return 0;
    }
    if (bench_dashboard.jobs < MIN_JOBS) {
        bench_note(BDASH_SCN, "skipped: it needs at least %d jobs (--dashboard-jobs, --jobs)",
                   MIN_JOBS);
        return 0;
    }
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    long rounds = bench_dashboard.requests;
    bdash_seed s = {.total = bench_dashboard.jobs};
    s.worked = s.total * WORKED_PER_MILLE / 1000;
    s.queued = s.total * QUEUED_PER_MILLE / 1000;
    s.history = s.total - s.worked - s.queued - BDASH_HELD_JOBS;
    s.stride = s.total / BDASH_ID_SAMPLES > 0 ? s.total / BDASH_ID_SAMPLES : 1;
    s.ids = calloc(BDASH_ID_SAMPLES, sizeof *s.ids);
    bdash_mix_state mix = {bu_counter_new(s.worked), 0};
    bdash_hold_state hold = {bu_counter_new(BDASH_HELD_JOBS), bu_counter_new(1)};
    bdash_server sv = {-1, -1, NULL, 0};
    probe p = {.s = &s, .rng = 0x9e3779b97f4a7c15u};
    jm_manager *held = NULL;
    double *lat[EP_COUNT] = {0};
    static figures fig;
    char *dir = bu_mkdtemp(o->dir, "dashboard");
    char *db = dir ? bu_path(dir, "jobs.db") : NULL;
    char *token_file = dir ? bu_path(dir, "token") : NULL;
    char *log = dir ? bu_path(dir, "serve.log") : NULL;
    char token[BDASH_TOKEN_SIZE];
    int bad = 1;
    int alloc_ok = s.ids && mix.runs && hold.started && hold.release && db && token_file && log;
    for (int ep = 0; ep < EP_COUNT; ep++)
        alloc_ok &= (lat[ep] = calloc((size_t)rounds, sizeof *lat[ep])) != NULL;
    if (!alloc_ok) {
        bench_fail(BDASH_SCN, "out of memory or no temporary directory");
        goto done;
    }
    s.path = db;
    sv.log = log;

    int64_t t0 = bu_mono_ns();
    if (bdash_seed_table(&s, &mix) || !(held = bdash_hold_jobs(&s, &hold)))
        goto done;
    bench_log(BDASH_SCN ": %ld jobs seeded in %.1f s; starting %s", s.total, bu_seconds_since(t0),
              bdash_cli_path);
    if (bdash_write_token(token_file, token, sizeof token)) {
        bench_fail(BDASH_SCN, "cannot write the token file %s", token_file);
        goto done;
    }
    if (bdash_start_server(db, token_file, &sv))
        goto done;
    if (!(p.c = http_new("127.0.0.1", sv.port, token, HTTP_TIMEOUT_S))) {
        bench_fail(BDASH_SCN, "out of memory");
        goto done;
    }

    /* The first overview waits for the first snapshot: reported apart. */
    double first = ask(&p, EP_OVERVIEW);
    if (first < 0 || find_deep_page(&p))
        goto done;
    long pause_us = (long)(first * 1000 * PAUSE_FACTOR) + PAUSE_MIN_US;
    for (int ep = 0; ep < EP_COUNT; ep++)
        if (ask(&p, ep) < 0)
            goto done;
    if (p.total_in_overview != s.total) {
        bench_fail(BDASH_SCN, "the overview counts %ld jobs; %ld were created", p.total_in_overview,
                   s.total);
        goto done;
    }
    for (int r = 0; r < reps; r++) {
        bench_log(BDASH_SCN ": rep %d/%d: %ld rounds of %d requests, then %ld of each alone", r + 1,
                  reps, rounds, EP_COUNT, rounds);
        if (measure_mixed(&p, rounds, bench_dashboard.gap_ms, lat))
            goto done;
        for (int ep = 0; ep < EP_COUNT; ep++) {
            fig.p50[ep][r] = bu_percentile(lat[ep], (size_t)rounds, 50);
            fig.p99[ep][r] = bu_percentile(lat[ep], (size_t)rounds, 99);
        }
        if (measure_alone(&p, rounds, pause_us, lat))
            goto done;
        for (int ep = 0; ep < EP_COUNT; ep++)
            fig.alone[ep][r] = bu_percentile(lat[ep], (size_t)rounds, 99);
    }
    /* Idle means no connection either, as after the page is closed. */
    http_close(p.c);
    p.c = NULL;
    int64_t last_request = bu_mono_ns();
    report_all(s.total, &fig, reps);
    char metric[96], target[32];
    snprintf(target, sizeof target, "<= %.0f ms", TARGET_P99_MS);
    /* Right after start the first snapshot may still be counting: a
     * start-up cost, shown, with no target. */
    bench_report(BDASH_SCN, "GET /api/overview right after start (may wait for the first snapshot)",
                 first, "ms", NAN, NULL, NULL, 1);
    if (idle_cost(o, &sv))
        goto done;
    int gap_s = o->quick ? QUICK_SCRAPE_GAP_S : SCRAPE_GAP_S;
    double quiet = bu_seconds_since(last_request);
    if (quiet < gap_s)
        bu_sleep_us((long)((gap_s - quiet) * 1e6));
    if (!(p.c = http_new("127.0.0.1", sv.port, token, HTTP_TIMEOUT_S))) {
        bench_fail(BDASH_SCN, "out of memory");
        goto done;
    }
    double scrape = ask(&p, EP_METRICS);
    if (scrape < 0)
        goto done;
    snprintf(metric, sizeof metric, "GET /metrics, once, %d s after the last request", gap_s);
    bench_report(BDASH_SCN, metric, scrape, "ms", NAN, NULL, target, scrape <= TARGET_P99_MS);
    bench_note(BDASH_SCN,
               "table: %ld jobs by status %s; types FL 40 %%, CO 15, SE, RT, CL 10 each, "
               "BK 8, UC 5, RS 2; %d schedules, 1 pause",
               s.total, p.by_status, BDASH_SCHEDULES);
    bench_note(BDASH_SCN,
               "history backdated over 24 h and finished by SQL; %ld jobs worked just now by "
               "%d workers (1/%d failed, 1/%d retrying); %ld queued after (1/%d due in 1 h); "
               "%d held running by a second manager",
               s.worked, BDASH_WORKERS, BDASH_FAIL_EVERY, BDASH_RETRY_EVERY, s.queued,
               BDASH_LATER_EVERY, BDASH_HELD_JOBS);
    bench_note(BDASH_SCN,
               "one keep-alive connection, one warm-up request each; per rep %ld rounds "
               "asking each of the %d endpoints once in random order, 0 to %ld ms between "
               "rounds (p50, p99), then %ld requests of each endpoint in a row after a "
               "%.1f s pause (p99 alone); overview snapshots seen meanwhile: %ld",
               rounds, EP_COUNT, 2 * bench_dashboard.gap_ms, rounds, pause_us / 1e6, p.snapshots);
    bad = 0;
done:
    http_close(p.c);
    if (sv.pid > 0 || sv.out >= 0)
        bad |= bdash_stop_server(&sv);
    if (hold.release)
        bu_counter_bump(hold.release);
    if (held && jm_stop(held, BDASH_HOLD_TIMEOUT_S * 1000LL) != JM_OK)
        bench_fail(BDASH_SCN, "stopping the held jobs' manager: %s", jm_last_error());
    jm_close(held);
    for (int ep = 0; ep < EP_COUNT; ep++)
        free(lat[ep]);
    bu_counter_free(mix.runs);
    bu_counter_free(hold.started);
    bu_counter_free(hold.release);
    free(s.ids);
    free(db);
    free(token_file);
    free(log);
    if (dir)
        bu_rm_rf(dir);
    free(dir);
    return bad;
}
