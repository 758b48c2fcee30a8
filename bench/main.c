/*
 * jm-bench: options, scenario dispatch and the result table (text or
 * JSON). The scenarios themselves live in scn_*.c and the baselines in
 * baseline_*.c; this file only collects what they report and prints it.
 *
 * Typical runs:
 *   jm-bench                          every scenario, 3 repetitions
 *   jm-bench --scenario work,enqueue  some of them
 *   jm-bench --quick --scenario all   small sizes (the bench_smoke test)
 *   jm-bench --json > results.json    machine-readable results
 *   valgrind --tool=callgrind jm-bench --callgrind --callgrind-jobs 2000
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "scenarios.h"

#define MAX_ROWS 512
#define MAX_NOTES 128
#define NOTE_LEN 400

typedef struct scenario {
    const char *name;
    int (*run)(const bench_opts *o);
    const char *what;
} scenario;

static const scenario scenarios[] = {
    {"raw-insert", scn_raw_insert, "plain SQLite inserts of job-sized rows (baseline)"},
    {"naive-queue", scn_naive_queue, "a hand-written SQLite queue (baseline)"},
    {"enqueue", scn_enqueue, "jm_create (sync, process, 8 threads) and jm_create_many against "
                             "raw-insert"},
    {"work", scn_work, "no-op jobs worked to completion against naive-queue"},
    {"latency", scn_latency, "create-to-start latency, in-process and cross-process"},
    {"scale", scn_scale, "enqueue, work, list and count with many finished jobs"},
    {"memory", scn_memory, "RSS with a million queued jobs; idle CPU"},
    {"prune", scn_prune, "jm_prune rate and the longest concurrent jm_create"},
    {"schedule", scn_schedule, "schedules firing: lag from fire time to job, CPU between fires"},
    {"blocked", scn_blocked, "claiming past 10 000 due jobs a running job holds back"},
    {"dashboard", scn_dashboard, "jobmgr serve through HTTP, a million jobs: latency, idle CPU"},
#ifdef JM_BENCH_PG
    {"pg", scn_pg, "the library on PostgreSQL (--pg-url) against raw libpq in the same run"},
#endif
};
#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

static int selected[NSCENARIOS];
static bench_row rows[MAX_ROWS];
static size_t nrows;
static struct {
    char scenario[24];
    char text[NOTE_LEN];
    int failure;
} notes[MAX_NOTES];
static size_t nnotes;
static int failures;
static int quiet;
static char load_start[64], load_end[64];
dashboard_opts bench_dashboard;

static void read_loadavg(char *buf, size_t len)
{
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = '\0';
    if (f) {
        if (fgets(buf, (int)len, f))
            buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
    }
}

int bench_selected(const char *name)
{
    for (size_t i = 0; i < NSCENARIOS; i++)
        if (strcmp(scenarios[i].name, name) == 0)
            return selected[i];
    return 0;
}

void bench_report(const char *scenario_name, const char *metric, double value, const char *unit,
                  double ratio, const char *ratio_to, const char *target, int met)
{
    if (nrows == MAX_ROWS)
        return;
    bench_row *r = &rows[nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->scenario, sizeof r->scenario, "%s", scenario_name);
    snprintf(r->metric, sizeof r->metric, "%s", metric);
    r->value = value;
    snprintf(r->unit, sizeof r->unit, "%s", unit ? unit : "");
    r->ratio = ratio;
    snprintf(r->ratio_to, sizeof r->ratio_to, "%s", ratio_to ? ratio_to : "");
    snprintf(r->target, sizeof r->target, "%s", target ? target : "");
    r->met = target ? met : BENCH_NO_TARGET;
}

static void add_note(const char *scenario_name, int failure, const char *fmt, va_list ap)
{
    if (nnotes == MAX_NOTES)
        return;
    snprintf(notes[nnotes].scenario, sizeof notes[nnotes].scenario, "%s", scenario_name);
    vsnprintf(notes[nnotes].text, sizeof notes[nnotes].text, fmt, ap);
    notes[nnotes].failure = failure;
    nnotes++;
}

void bench_note(const char *scenario_name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_note(scenario_name, 0, fmt, ap);
    va_end(ap);
}

void bench_fail(const char *scenario_name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_note(scenario_name, 1, fmt, ap);
    va_end(ap);
    va_start(ap, fmt);
    fprintf(stderr, "jm-bench: %s: FAILED: ", scenario_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

void bench_log(const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* --- Output ------------------------------------------------------------ */

static void format_value(char *buf, size_t len, double v)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (fabs(v) >= 1000)
        snprintf(buf, len, "%.0f", v);
    else if (fabs(v) >= 10)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.3f", v);
}

/* A baseline run by another scenario has rows without being selected. */
static int has_rows(const char *scenario_name)
{
    for (size_t i = 0; i < nrows; i++)
        if (strcmp(rows[i].scenario, scenario_name) == 0)
            return 1;
    return 0;
}

static void print_tables(const bench_opts *o)
{
    printf("jm-bench results: medians of %d repetition(s)%s\n", o->reps,
           o->quick ? ", --quick sizes (not comparable with the targets)" : "");
    printf("%ld CPUs, SQLite %s; /proc/loadavg at start: %s; at end: %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), sqlite3_libversion(), load_start, load_end);
    for (size_t s = 0; s < NSCENARIOS; s++) {
        int any = has_rows(scenarios[s].name);
        if (!selected[s] && !any)
            continue;
        printf("\n== %s: %s ==\n", scenarios[s].name, scenarios[s].what);
        if (any)
            printf("%-52s %12s %-7s %8s %-30s %-22s %s\n", "metric", "value", "unit", "ratio",
                   "ratio to", "target", "met");
        for (size_t i = 0; i < nrows; i++) {
            const bench_row *r = &rows[i];
            if (strcmp(r->scenario, scenarios[s].name) != 0)
                continue;
            char v[32], ratio[32];
            format_value(v, sizeof v, r->value);
            if (isnan(r->ratio))
                snprintf(ratio, sizeof ratio, "-");
            else
                snprintf(ratio, sizeof ratio, "%.2f", r->ratio);
            const char *met = r->met == BENCH_NO_TARGET ? "" : r->met ? "\u2713" : "\u2717";
            printf("%-52s %12s %-7s %8s %-30s %-22s %s\n", r->metric, v, r->unit, ratio,
                   r->ratio_to[0] ? r->ratio_to : "-", r->target[0] ? r->target : "-", met);
        }
        for (size_t i = 0; i < nnotes; i++)
            if (strcmp(notes[i].scenario, scenarios[s].name) == 0)
                printf("  %s %s\n", notes[i].failure ? "FAILED:" : "note:", notes[i].text);
    }
    if (failures)
        printf("\n%d failure(s): see the notes marked FAILED.\n", failures);
}

static cJSON *json_number_or_null(double v)
{
    return isnan(v) || isinf(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

static void print_json(const bench_opts *o)
{
    cJSON *root = cJSON_CreateObject();
    struct utsname u;
    if (uname(&u) == 0) {
        cJSON_AddStringToObject(root, "machine", u.machine);
        cJSON_AddStringToObject(root, "kernel", u.release);
    }
    cJSON_AddNumberToObject(root, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(root, "reps", o->reps);
    cJSON_AddBoolToObject(root, "quick", o->quick);
    cJSON_AddStringToObject(root, "sqlite_version", sqlite3_libversion());
    cJSON_AddStringToObject(root, "loadavg_start", load_start);
    cJSON_AddStringToObject(root, "loadavg_end", load_end);
    cJSON *arr = cJSON_AddArrayToObject(root, "scenarios");
    for (size_t s = 0; s < NSCENARIOS; s++) {
        if (!selected[s] && !has_rows(scenarios[s].name))
            continue;
        cJSON *sc = cJSON_CreateObject();
        cJSON_AddStringToObject(sc, "name", scenarios[s].name);
        cJSON *rs = cJSON_AddArrayToObject(sc, "results");
        for (size_t i = 0; i < nrows; i++) {
            const bench_row *r = &rows[i];
            if (strcmp(r->scenario, scenarios[s].name) != 0)
                continue;
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "metric", r->metric);
            cJSON_AddItemToObject(j, "value", json_number_or_null(r->value));
            cJSON_AddStringToObject(j, "unit", r->unit);
            cJSON_AddItemToObject(j, "ratio", json_number_or_null(r->ratio));
            if (r->ratio_to[0])
                cJSON_AddStringToObject(j, "ratio_to", r->ratio_to);
            if (r->met != BENCH_NO_TARGET) {
                cJSON_AddStringToObject(j, "target", r->target);
                cJSON_AddBoolToObject(j, "met", r->met);
            }
            cJSON_AddItemToArray(rs, j);
        }
        cJSON *ns = cJSON_AddArrayToObject(sc, "notes");
        cJSON *fs = cJSON_AddArrayToObject(sc, "failures");
        for (size_t i = 0; i < nnotes; i++)
            if (strcmp(notes[i].scenario, scenarios[s].name) == 0)
                cJSON_AddItemToArray(notes[i].failure ? fs : ns,
                                     cJSON_CreateString(notes[i].text));
        cJSON_AddItemToArray(arr, sc);
    }
    cJSON_AddNumberToObject(root, "failures", failures);
    char *text = cJSON_Print(root);
    if (text)
        puts(text);
    cJSON_free(text);
    cJSON_Delete(root);
}

/* --- Options ------------------------------------------------------------- */

static void defaults(bench_opts *o, int quick)
{
    memset(o, 0, sizeof *o);
    o->quick = quick;
    o->reps = quick ? 1 : 3;
    o->enqueue_single = quick ? 2000 : 100000;
    o->enqueue_many = quick ? 20000 : 1000000;
    o->enqueue_batch = 1000;
    o->enqueue_threads = 8;
    o->enqueue_many_reps = quick ? 2 : 5;
    o->work_jobs = quick ? 10000 : 200000;
    o->naive_jobs = quick ? 2000 : 20000;
    int threads[] = {1, 2, 4, 8};
    memcpy(o->threads, threads, sizeof threads);
    o->nthreads = 4;
    o->latency_jobs = quick ? 200 : 2000;
    o->latency_gap_us = 2000;
    o->latency_poll_ms = 50;
    long sizes[] = {0, quick ? 2000 : 100000, quick ? 20000 : 1000000};
    memcpy(o->scale_sizes, sizes, sizeof sizes);
    o->nscale = 3;
    o->scale_work_jobs = quick ? 2000 : 20000;
    o->scale_single_jobs = quick ? 200 : 2000;
    o->list_calls = quick ? 5 : 21;
    o->memory_jobs = quick ? 20000 : 1000000;
    o->idle_seconds = quick ? 2 : 10;
    o->prune_jobs = quick ? 20000 : 1000000;
    o->schedules = quick ? 200 : 10000;
    o->schedule_interval_s = quick ? 5 : 60;
    o->callgrind_jobs = 2000;
    o->callgrind_many_jobs = 20000;
    const char *url = getenv("JM_BENCH_PG_URL");
    o->pg_url = url && *url ? url : NULL;
    o->pg_create_jobs = quick ? 200 : 5000;
    o->pg_many_jobs = quick ? 2000 : 50000;
    o->pg_work_jobs = quick ? 1000 : 50000;
    o->pg_pickup_samples = quick ? 20 : 200;
    bench_dashboard.jobs = quick ? 20000 : 1000000;
    bench_dashboard.requests = quick ? 30 : 200;
    bench_dashboard.gap_ms = quick ? 50 : 250;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: jm-bench [options]\n"
            "  --scenario LIST       comma-separated: raw-insert, naive-queue, enqueue, work,\n"
            "                        latency, scale, memory, prune, schedule, blocked,\n"
            "                        dashboard, pg (builds with JM_WITH_PG), or all (default)\n"
            "  --reps N              repetitions; medians are reported (default 3, --quick 1)\n"
            "  --json                machine-readable results on stdout\n"
            "  --quick               small sizes (a smoke test, not a measurement)\n"
            "  --dir DIR             where databases go (default: a new dir under $TMPDIR)\n"
            "  --jobs N              cap every job count below at N\n"
            "  --enqueue-jobs N      jm_create one per call, each of sync, process and\n"
            "                        threads (100000)\n"
            "  --enqueue-threads N   threads of the many-thread jm_create (8)\n"
            "  --enqueue-many-jobs N jm_create_many, batches of 1000 (1000000)\n"
            "  --enqueue-many-reps N runs of jm_create_many and of the lean raw batched\n"
            "                        insert, after a warm-up (5)\n"
            "  --work-jobs N         jobs per work run (200000)\n"
            "  --naive-jobs N        jobs per naive-queue run (20000)\n"
            "  --threads LIST        worker counts for work and naive-queue (1,2,4,8)\n"
            "  --latency-jobs N      spaced single creates (2000)\n"
            "  --latency-gap-us N    spacing of those creates (2000)\n"
            "  --poll-ms N           poll_interval_ms of the cross-process run (50)\n"
            "  --scale-sizes LIST    finished jobs already in the table (0,100000,1000000)\n"
            "  --scale-jobs N        jobs enqueued then worked at each size (20000)\n"
            "  --memory-jobs N       queued jobs for the RSS comparison (1000000)\n"
            "  --idle-seconds S      idle CPU measurements of memory and dashboard (10)\n"
            "  --prune-jobs N        finished jobs to prune (1000000)\n"
            "  --schedules N         interval schedules of the schedule scenario (10000)\n"
            "  --schedule-interval-s S  their interval, in seconds (60)\n"
            "  --dashboard-jobs N    jobs in the table `jobmgr serve` answers from (1000000)\n"
            "  --dashboard-requests N  requests per endpoint and repetition (200)\n"
            "  --dashboard-gap-ms N  mean pause between rounds of mixed requests (250)\n"
            "  --callgrind           run the fixed callgrind workload instead\n"
            "  --callgrind-jobs N    its jm_create calls and jobs worked (2000)\n"
            "  --callgrind-many-jobs N  its jm_create_many rows, on their own file (20000)\n"
            "  --pg-url URL          the PostgreSQL of the pg scenario (builds with JM_WITH_PG;\n"
            "                        default $JM_BENCH_PG_URL); without one it is skipped. Sizes:\n"
            "                        5000 creates per durability, 50000 batched, 50000 per\n"
            "                        work run, 200 pickups (--quick: 200, 2000, 1000, 20)\n");
}

static int parse_list(const char *s, long *out, int max)
{
    int n = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        out[n++] = strtol(t, NULL, 10);
    free(copy);
    return n;
}

static int select_scenarios(const char *list)
{
    char *copy = strdup(list), *save = NULL;
    int ok = 1;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "all") == 0) {
            for (size_t i = 0; i < NSCENARIOS; i++)
                selected[i] = 1;
            continue;
        }
        size_t i = 0;
        while (i < NSCENARIOS && strcmp(scenarios[i].name, t) != 0)
            i++;
        if (i == NSCENARIOS) {
            fprintf(stderr, "jm-bench: unknown scenario '%s'\n", t);
            ok = 0;
        } else {
            selected[i] = 1;
        }
    }
    free(copy);
    return ok;
}

enum {
    OPT_SCENARIO = 256, OPT_REPS, OPT_JSON, OPT_QUICK, OPT_DIR, OPT_JOBS, OPT_ENQ, OPT_ENQ_MANY,
    OPT_ENQ_THREADS, OPT_ENQ_MANY_REPS, OPT_WORK, OPT_NAIVE, OPT_THREADS, OPT_LAT_JOBS,
    OPT_LAT_GAP, OPT_POLL, OPT_SCALE_SIZES, OPT_SCALE_JOBS, OPT_MEM_JOBS, OPT_IDLE, OPT_PRUNE,
    OPT_CALLGRIND, OPT_CG_JOBS, OPT_CG_MANY, OPT_SCHEDULES, OPT_SCHED_IV, OPT_PG_URL,
    OPT_DASH_JOBS, OPT_DASH_REQUESTS, OPT_DASH_GAP, OPT_HELP
};

static void cap(long *v, long max)
{
    if (max > 0 && *v > max)
        *v = max;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child-rss") == 0)
        return memory_child(argc - 2, argv + 2);

    static const struct option longopts[] = {
        {"scenario", required_argument, NULL, OPT_SCENARIO},
        {"reps", required_argument, NULL, OPT_REPS},
        {"json", no_argument, NULL, OPT_JSON},
        {"quick", no_argument, NULL, OPT_QUICK},
        {"dir", required_argument, NULL, OPT_DIR},
        {"jobs", required_argument, NULL, OPT_JOBS},
        {"enqueue-jobs", required_argument, NULL, OPT_ENQ},
        {"enqueue-many-jobs", required_argument, NULL, OPT_ENQ_MANY},
        {"enqueue-threads", required_argument, NULL, OPT_ENQ_THREADS},
        {"enqueue-many-reps", required_argument, NULL, OPT_ENQ_MANY_REPS},
        {"work-jobs", required_argument, NULL, OPT_WORK},
        {"naive-jobs", required_argument, NULL, OPT_NAIVE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"latency-jobs", required_argument, NULL, OPT_LAT_JOBS},
        {"latency-gap-us", required_argument, NULL, OPT_LAT_GAP},
        {"poll-ms", required_argument, NULL, OPT_POLL},
        {"scale-sizes", required_argument, NULL, OPT_SCALE_SIZES},
        {"scale-jobs", required_argument, NULL, OPT_SCALE_JOBS},
        {"memory-jobs", required_argument, NULL, OPT_MEM_JOBS},
        {"idle-seconds", required_argument, NULL, OPT_IDLE},
        {"prune-jobs", required_argument, NULL, OPT_PRUNE},
        {"callgrind", no_argument, NULL, OPT_CALLGRIND},
        {"callgrind-jobs", required_argument, NULL, OPT_CG_JOBS},
        {"callgrind-many-jobs", required_argument, NULL, OPT_CG_MANY},
        {"schedules", required_argument, NULL, OPT_SCHEDULES},
        {"schedule-interval-s", required_argument, NULL, OPT_SCHED_IV},
        {"pg-url", required_argument, NULL, OPT_PG_URL},
        {"dashboard-jobs", required_argument, NULL, OPT_DASH_JOBS},
        {"dashboard-requests", required_argument, NULL, OPT_DASH_REQUESTS},
        {"dashboard-gap-ms", required_argument, NULL, OPT_DASH_GAP},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };

    /* --quick changes the defaults, so it is looked for first. */
    int quick = 0;
    for (int i = 1; i < argc; i++)
        quick |= strcmp(argv[i], "--quick") == 0;
    bench_opts o;
    defaults(&o, quick);

    const char *scenario_list = "all";
    const char *dir = NULL;
    long jobs_cap = 0, threads[8];
    int callgrind = 0, c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SCENARIO: scenario_list = optarg; break;
        case OPT_REPS: o.reps = atoi(optarg); break;
        case OPT_JSON: o.json = 1; break;
        case OPT_QUICK: break;
        case OPT_DIR: dir = optarg; break;
        case OPT_JOBS: jobs_cap = strtol(optarg, NULL, 10); break;
        case OPT_ENQ: o.enqueue_single = strtol(optarg, NULL, 10); break;
        case OPT_ENQ_MANY: o.enqueue_many = strtol(optarg, NULL, 10); break;
        case OPT_ENQ_THREADS: o.enqueue_threads = atoi(optarg); break;
        case OPT_ENQ_MANY_REPS: o.enqueue_many_reps = atoi(optarg); break;
        case OPT_WORK: o.work_jobs = strtol(optarg, NULL, 10); break;
        case OPT_NAIVE: o.naive_jobs = strtol(optarg, NULL, 10); break;
        case OPT_THREADS:
            o.nthreads = parse_list(optarg, threads, 8);
            for (int i = 0; i < o.nthreads; i++)
                o.threads[i] = (int)threads[i];
            break;
        case OPT_LAT_JOBS: o.latency_jobs = strtol(optarg, NULL, 10); break;
        case OPT_LAT_GAP: o.latency_gap_us = strtol(optarg, NULL, 10); break;
        case OPT_POLL: o.latency_poll_ms = strtol(optarg, NULL, 10); break;
        case OPT_SCALE_SIZES: o.nscale = parse_list(optarg, o.scale_sizes, 4); break;
        case OPT_SCALE_JOBS: o.scale_work_jobs = strtol(optarg, NULL, 10); break;
        case OPT_MEM_JOBS: o.memory_jobs = strtol(optarg, NULL, 10); break;
        case OPT_IDLE: o.idle_seconds = strtod(optarg, NULL); break;
        case OPT_PRUNE: o.prune_jobs = strtol(optarg, NULL, 10); break;
        case OPT_CALLGRIND: callgrind = 1; break;
        case OPT_CG_JOBS: o.callgrind_jobs = strtol(optarg, NULL, 10); break;
        case OPT_CG_MANY: o.callgrind_many_jobs = strtol(optarg, NULL, 10); break;
        case OPT_SCHEDULES: o.schedules = strtol(optarg, NULL, 10); break;
        case OPT_SCHED_IV: o.schedule_interval_s = strtol(optarg, NULL, 10); break;
        case OPT_PG_URL: o.pg_url = *optarg ? optarg : NULL; break;
        case OPT_DASH_JOBS: bench_dashboard.jobs = strtol(optarg, NULL, 10); break;
        case OPT_DASH_REQUESTS: bench_dashboard.requests = strtol(optarg, NULL, 10); break;
        case OPT_DASH_GAP: bench_dashboard.gap_ms = strtol(optarg, NULL, 10); break;
        case OPT_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || o.reps < 1 || o.nthreads < 1 || o.nscale < 1 ||
        o.enqueue_many_reps < 1 || bench_dashboard.requests < 1 || bench_dashboard.gap_ms < 0) {
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < o.nthreads; i++) {
        if (o.threads[i] < 1 || o.threads[i] > JM_MAX_WORKERS) {
            fprintf(stderr, "jm-bench: thread counts must be 1..%d\n", JM_MAX_WORKERS);
            return 2;
        }
    }
    if (o.enqueue_threads < 1 || o.enqueue_threads > RAW_MAX_CONNS) {
        fprintf(stderr, "jm-bench: --enqueue-threads must be 1..%d\n", RAW_MAX_CONNS);
        return 2;
    }
    long *counts[] = {&o.enqueue_single, &o.enqueue_many, &o.work_jobs, &o.naive_jobs,
                      &o.latency_jobs, &o.scale_work_jobs, &o.scale_single_jobs,
                      &o.memory_jobs, &o.prune_jobs, &o.callgrind_jobs,
                      &o.callgrind_many_jobs, &o.schedules, &o.pg_create_jobs,
                      &o.pg_many_jobs, &o.pg_work_jobs, &o.pg_pickup_samples,
                      &bench_dashboard.jobs};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        cap(counts[i], jobs_cap);
        if (*counts[i] < 1) {
            fprintf(stderr, "jm-bench: job counts must be at least 1\n");
            return 2;
        }
    }
    for (int i = 0; i < o.nscale; i++)
        cap(&o.scale_sizes[i], jobs_cap);
    if (o.schedule_interval_s < 2 || o.schedule_interval_s > 3600) {
        fprintf(stderr, "jm-bench: --schedule-interval-s must be 2..3600\n");
        return 2;
    }
    if (!select_scenarios(scenario_list)) {
        usage(stderr);
        return 2;
    }
    quiet = o.json;

    /* Our own directory, removed at the end, even under a given --dir. */
    const char *parent = dir ? dir : getenv("TMPDIR");
    if (!parent || !*parent)
        parent = "/tmp";
    char *work = bu_mkdtemp(parent, "jm-bench");
    if (!work)
        return 1;
    o.dir = work;

    int rc = 0;
    if (callgrind) {
        rc = callgrind_run(&o);
    } else {
        read_loadavg(load_start, sizeof load_start);
        bench_log("databases in %s; %ld CPUs; load average %s", work,
                  sysconf(_SC_NPROCESSORS_ONLN), load_start);
        for (size_t i = 0; i < NSCENARIOS; i++) {
            if (!selected[i])
                continue;
            bench_log("scenario %s", scenarios[i].name);
            int64_t t0 = bu_mono_ns();
            if (scenarios[i].run(&o) != 0 && failures == 0)
                bench_fail(scenarios[i].name, "the scenario stopped early");
            bench_log("scenario %s took %.1f s", scenarios[i].name, bu_seconds_since(t0));
        }
        read_loadavg(load_end, sizeof load_end);
        if (o.json)
            print_json(&o);
        else
            print_tables(&o);
        rc = failures ? 1 : 0;
    }
    bu_rm_rf(work);
    free(work);
    return rc;
}
