/*
 * schedule: --schedules interval schedules (10 000) of --schedule-interval-s
 * (60 s), run by one manager with 2 idle workers on the real clock, for
 * two fires. Two shapes, one after the other on fresh files:
 *
 *   aligned   every schedule fires at the same instant
 *   spread    their anchors are spread evenly over the interval
 *
 * Reported: each job's lag, from its fire time to the commit that created
 * it (created_at - fire_time, both by the manager's clock, in ms), as p50,
 * p99 and max; and the process's CPU time over a quiet stretch of the
 * aligned run (from a second after the first fire's jobs all ran to a
 * second before the next fire), as a share of one core.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios.h"

#define SCHED_WORKERS 2
#define SCHED_FIRES 2

/* Lags (ms) of every job, from the database. */
static int read_lags(const char *path, double **out, size_t *n)
{
    sqlite3 *db = bu_sqlite_open(path, "NORMAL");
    if (!db)
        return -1;
    sqlite3_stmt *st = NULL;
    size_t cap = 0, count = 0;
    double *v = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT created_at - fire_time FROM jm_jobs "
                                    "WHERE schedule_id IS NOT NULL",
                                -1, &st, NULL);
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 1024;
            double *g = realloc(v, cap * sizeof *v);
            if (!g) {
                rc = SQLITE_NOMEM;
                break;
            }
            v = g;
        }
        v[count++] = (double)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc != SQLITE_OK) {
        free(v);
        return -1;
    }
    *out = v;
    *n = count;
    return 0;
}

/* One shape: returns non-zero on failure. */
static int run_shape(const bench_opts *o, int spread)
{
    const char *shape = spread ? "spread" : "aligned";
    char *path = bu_db_path(o->dir, spread ? "sched-spread" : "sched-aligned");
    long n = o->schedules;
    int64_t iv = (int64_t)o->schedule_interval_s * 1000;
    jm_config cfg = bu_config(path);
    jm_manager *m = NULL;
    bu_counter *c = bu_counter_new(n * SCHED_FIRES);
    int rc = c ? jm_open(&cfg, &m) : JM_ENOMEM;
    if (rc == JM_OK)
        rc = bu_register_noop(m, "BS", c);
    /* The first fire comes once every schedule exists: each create
     * commits and syncs on its own (about 1 to 3 ms here). */
    int64_t first = ((bu_wall_ms() + 2000 + n * 5) / 1000 + 1) * 1000;
    int64_t t_create = bu_mono_ns();
    for (long i = 0; rc == JM_OK && i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%ld", i);
        jm_schedule_spec s = JM_SCHEDULE_SPEC_INIT;
        s.name = name;
        s.type = "BS";
        s.interval_ms = iv;
        s.anchor_ms = first + (spread ? (int64_t)((double)i / (double)n * (double)iv) : 0);
        s.overlap = JM_OVERLAP_ALLOW;
        char id[JM_SCHEDULE_ID_SIZE];
        rc = jm_schedule_create(m, &s, id);
    }
    bench_log("schedule %s: %ld schedules created in %.1f s", shape, n,
              bu_seconds_since(t_create));
    if (rc == JM_OK && bu_wall_ms() >= first) {
        bench_fail("schedule", "creating the schedules took past their first fire time");
        rc = JM_EINVAL;
    }
    /* Aligned: one fire's jobs, a quiet stretch, the next fire's. Spread:
     * both fires' jobs, all along. */
    if (rc == JM_OK) {
        bu_counter_reset(c, spread ? n * SCHED_FIRES : n);
        rc = jm_start(m, SCHED_WORKERS);
    }
    double cpu_pct = NAN;
    if (rc == JM_OK && !spread) {
        double wait_s = (double)(first - bu_wall_ms()) / 1000 + 120;
        if (bu_counter_wait(c, wait_s)) {
            bench_fail("schedule", "the first fire's jobs did not all run");
            rc = JM_EINVAL;
        } else {
            bu_sleep_us(1000000);
            int64_t quiet_ms = first + iv - 1000 - bu_wall_ms();
            if (quiet_ms > 1000) {
                double cpu0 = bu_cpu_seconds();
                int64_t t0 = bu_mono_ns();
                bu_sleep_us((long)quiet_ms * 1000);
                cpu_pct = (bu_cpu_seconds() - cpu0) / bu_seconds_since(t0) * 100;
            }
        }
    }
    if (rc == JM_OK) {
        if (!spread)
            bu_counter_reset(c, n);
        double wait_s = (double)(first + iv - bu_wall_ms()) / 1000 + 120;
        if (bu_counter_wait(c, wait_s)) {
            bench_fail("schedule", "%s: the jobs of %d fires did not all run", shape,
                       SCHED_FIRES);
            rc = JM_EINVAL;
        }
    }
    if (m && jm_stop(m, 5000) != JM_OK && rc == JM_OK)
        rc = JM_EINVAL;
    jm_close(m);
    double *lags = NULL;
    size_t nl = 0;
    if (rc == JM_OK && read_lags(path, &lags, &nl) == 0 && nl >= (size_t)(n * SCHED_FIRES)) {
        char metric[96];
        double p99 = bu_percentile(lags, nl, 99);
        snprintf(metric, sizeof metric, "%s: fire lag p50 (%ld schedules, %zu jobs)", shape, n,
                 nl);
        bench_report("schedule", metric, bu_percentile(lags, nl, 50), "ms", NAN, NULL, NULL,
                     BENCH_NO_TARGET);
        snprintf(metric, sizeof metric, "%s: fire lag p99", shape);
        bench_report("schedule", metric, p99, "ms", NAN, NULL, "<= 50 ms", p99 <= 50);
        snprintf(metric, sizeof metric, "%s: fire lag max", shape);
        bench_report("schedule", metric, bu_max(lags, nl), "ms", NAN, NULL, NULL,
                     BENCH_NO_TARGET);
    } else if (rc == JM_OK) {
        bench_fail("schedule", "%s: expected %ld scheduled jobs, found %zu", shape,
                   n * SCHED_FIRES, nl);
        rc = JM_EINVAL;
    }
    if (!isnan(cpu_pct))
        bench_report("schedule", "aligned: CPU between fires", cpu_pct, "% core", NAN, NULL,
                     "< 1% of a core", cpu_pct < 1.0);
    free(lags);
    bu_counter_free(c);
    bu_remove_db(path);
    free(path);
    return rc != JM_OK;
}

int scn_schedule(const bench_opts *o)
{
    int bad = run_shape(o, 0);
    bad |= run_shape(o, 1);
    bench_note("schedule", "lag: created_at - fire_time of every job, two fires of each "
                           "schedule; CPU: getrusage over the quiet stretch between fires");
    return bad;
}
