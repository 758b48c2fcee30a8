/*
 * work: pre-inserted no-op jobs worked to completion by 1, 2, 4 and 8
 * workers, each rep interleaved with the naive-queue baseline at the same
 * thread count. The executor counts its runs; the clock runs from
 * jm_start until jm_stop has returned, so the last outcomes are committed
 * inside the measured time. jm_count then checks that every job is
 * completed (never polled during the run: it would compete for the file).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "scenarios.h"

#define MAX_REPS 64
/* Give up on a run after this long plus one second per 1 000 jobs: a hang. */
#define WORK_TIMEOUT_BASE_S 60.0
/* How long jm_stop may drain: every job has run by then. */
#define WORK_STOP_DRAIN_MS 10000

static int count_status(jm_manager *m, unsigned mask, int64_t *out)
{
    jm_filter f = JM_FILTER_INIT;
    f.statuses = mask;
    return jm_count(m, &f, out);
}

double lib_work_rate(const char *scenario, jm_manager *m, bu_counter *c, long n, int workers)
{
    bu_counter_reset(c, n);
    int64_t t0 = bu_mono_ns();
    int rc = jm_start(m, workers);
    if (rc != JM_OK) {
        bench_fail(scenario, "jm_start: %s: %s", jm_strerror(rc), jm_last_error());
        return -1;
    }
    int hung = bu_counter_wait(c, WORK_TIMEOUT_BASE_S + (double)n / 1000.0);
    rc = jm_stop(m, WORK_STOP_DRAIN_MS);
    double secs = bu_seconds_since(t0);
    if (hung) {
        bench_fail(scenario, "only %ld of %ld jobs ran with %d workers before the timeout",
                   bu_counter_value(c), n, workers);
        return -1;
    }
    if (rc != JM_OK) {
        bench_fail(scenario, "jm_stop: %s: %s", jm_strerror(rc), jm_last_error());
        return -1;
    }
    if (bu_counter_value(c) != n)
        bench_fail(scenario, "%ld runs for %ld jobs with %d workers (a job ran twice?)",
                   bu_counter_value(c), n, workers);
    unsigned unfinished = JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |
                          JM_STATUS_BIT(JM_STATUS_RUNNING) | JM_STATUS_BIT(JM_STATUS_RETRYING) |
                          JM_STATUS_BIT(JM_STATUS_FAILED) | JM_STATUS_BIT(JM_STATUS_CANCELLED);
    int64_t left = -1;
    if ((rc = count_status(m, unfinished, &left)) != JM_OK) {
        bench_fail(scenario, "jm_count: %s: %s", jm_strerror(rc), jm_last_error());
        return -1;
    }
    if (left != 0) {
        bench_fail(scenario, "after jm_stop, %lld job(s) are not completed (%d workers, %ld jobs)",
                   (long long)left, workers, n);
        return -1;
    }
    return (double)n / secs;
}

static double one_lib_run(const bench_opts *o, int workers)
{
    char *path = bu_db_path(o->dir, "work");
    jm_config cfg = bu_config(path);
    jm_manager *m = NULL;
    bu_counter *c = bu_counter_new(o->work_jobs);
    double rate = -1;
    int rc = c ? jm_open(&cfg, &m) : JM_ENOMEM;
    if (rc == JM_OK)
        rc = bu_register_noop(m, "BW", c);
    if (rc == JM_OK)
        rc = bu_fill(m, "BW", o->work_jobs, 1000, 0, 0);
    if (rc != JM_OK)
        bench_fail("work", "set-up: %s: %s", jm_strerror(rc), jm_last_error());
    else
        rate = lib_work_rate("work", m, c, o->work_jobs, workers);
    jm_close(m);
    bu_counter_free(c);
    bu_remove_db(path);
    free(path);
    return rate;
}

int scn_work(const bench_opts *o)
{
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    for (int t = 0; t < o->nthreads; t++) {
        int n = o->threads[t];
        double naive[MAX_REPS], lib[MAX_REPS];
        for (int r = 0; r < reps; r++) {
            bench_log("work: %d worker(s), rep %d/%d", n, r + 1, reps);
            naive[r] = naive_queue_rate(o->dir, o->naive_jobs, n);
            lib[r] = one_lib_run(o, n);
            if (naive[r] < 0 || lib[r] < 0) {
                bench_fail("work", "a run with %d worker(s) failed", n);
                return 1;
            }
        }
        double nv = bu_median(naive, (size_t)reps), lv = bu_median(lib, (size_t)reps);
        char metric[96], to[64];
        snprintf(metric, sizeof metric, "jobs/s, %d thread(s) (%ld jobs)", n, o->naive_jobs);
        bench_report("naive-queue", metric, nv, "jobs/s", NAN, NULL, NULL, BENCH_NO_TARGET);
        snprintf(metric, sizeof metric, "no-op jobs/s, %d worker(s) (%ld jobs)", n, o->work_jobs);
        snprintf(to, sizeof to, "naive-queue %d thread(s)", n);
        bench_report("work", metric, lv, "jobs/s", lv / nv, to, ">= 4x naive", lv / nv >= 4);
        if (n == 2)
            bench_report("work", "no-op jobs/s, 2 workers, absolute", lv, "jobs/s", NAN, NULL,
                         ">= 50000 jobs/s", lv >= 50000);
    }
    bench_note("naive-queue", "jobs(id INTEGER PRIMARY KEY, status TEXT, payload, created_at, "
                              "updated_at) + index (status, id); per job: BEGIN IMMEDIATE; "
                              "SELECT oldest queued; UPDATE running; COMMIT; no-op; UPDATE "
                              "completed; WAL, synchronous=FULL, busy_timeout 5 s");
    bench_note("work", "timed from jm_start to the return of jm_stop (last outcomes committed); "
                       "jobs pre-inserted with jm_create_many; all verified completed with "
                       "jm_count; a rate is a rate: the naive queue runs %ld jobs, the library %ld",
               o->naive_jobs, o->work_jobs);
    return 0;
}
