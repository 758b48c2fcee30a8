/*
 * prune: jm_prune deleting a million finished jobs, while another thread
 * calls jm_create about every millisecond and records its longest single
 * call: pruning works in small transactions so writers are not held up,
 * and this is what checks it.
 *
 * Set-up shortcut as in scale: the jobs are created with jm_create_many
 * and marked completed (finished a day ago) by direct SQL on the file while
 * no manager has it open.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "scenarios.h"

#define MAX_REPS 64
#define CREATE_GAP_US 1000
#define WARMUP_US 50000
#define MS_PER_DAY (24 * 3600 * 1000)
#define MS_PER_HOUR (3600 * 1000)

typedef struct creator {
    jm_manager *m;
    atomic_int stop;
    long calls;
    double max_ms;
    int failed;
} creator;

static void *creator_main(void *arg)
{
    creator *c = arg;
    while (!atomic_load(&c->stop)) {
        char params[96], id[JM_JOB_ID_SIZE];
        bu_job_params(params, sizeof params, c->calls);
        int64_t t0 = bu_mono_ns();
        int rc = jm_create(c->m, "BP", params, NULL, id);
        double ms = bu_seconds_since(t0) * 1000;
        if (rc != JM_OK) {
            fprintf(stderr, "jm-bench: prune: concurrent jm_create: %s: %s\n", jm_strerror(rc),
                    jm_last_error());
            c->failed = 1;
            break;
        }
        if (ms > c->max_ms)
            c->max_ms = ms;
        c->calls++;
        bu_sleep_us(CREATE_GAP_US);
    }
    return NULL;
}

static jm_manager *open_prune(const char *path, bu_counter *cnt)
{
    jm_config cfg = bu_config(path);
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = bu_register_noop(m, "BP", cnt);
    if (rc != JM_OK) {
        bench_fail("prune", "jm_open: %s: %s", jm_strerror(rc), jm_last_error());
        jm_close(m);
        return NULL;
    }
    return m;
}

/* One run: *rate jobs/s pruned, *max_ms the longest create, *calls. */
static int one_run(const bench_opts *o, double *rate, double *max_ms, long *calls)
{
    char *path = bu_db_path(o->dir, "prune");
    bu_counter *cnt = bu_counter_new(1);
    jm_manager *m = path && cnt ? open_prune(path, cnt) : NULL;
    int bad = 1;
    if (!m)
        goto done;
    if (bu_fill(m, "BP", o->prune_jobs, 1000, 0, 0) != JM_OK) {
        bench_fail("prune", "set-up: jm_create_many: %s", jm_last_error());
        goto done;
    }
    jm_close(m);
    m = NULL;
    if (bu_mark_completed(path, bu_wall_ms() - MS_PER_DAY)) {
        bench_fail("prune", "set-up: marking jobs completed failed");
        goto done;
    }
    if (!(m = open_prune(path, cnt)))
        goto done;

    creator c = {.m = m};
    atomic_init(&c.stop, 0);
    pthread_t tid;
    if (pthread_create(&tid, NULL, creator_main, &c) != 0)
        goto done;
    bu_sleep_us(WARMUP_US);
    int64_t deleted = 0;
    int64_t t0 = bu_mono_ns();
    int rc = jm_prune(m, bu_wall_ms() - MS_PER_HOUR, &deleted);
    double secs = bu_seconds_since(t0);
    atomic_store(&c.stop, 1);
    pthread_join(tid, NULL);
    if (rc != JM_OK) {
        bench_fail("prune", "jm_prune: %s: %s", jm_strerror(rc), jm_last_error());
        goto done;
    }
    if (deleted != o->prune_jobs) {
        bench_fail("prune", "jm_prune deleted %lld jobs, expected %ld", (long long)deleted,
                   o->prune_jobs);
        goto done;
    }
    jm_filter f = JM_FILTER_INIT;
    int64_t left = -1;
    f.statuses = JM_STATUS_BIT(JM_STATUS_QUEUED);
    if (jm_count(m, &f, &left) != JM_OK || left != c.calls) {
        bench_fail("prune", "%lld queued jobs left, but %ld were created meanwhile",
                   (long long)left, c.calls);
        goto done;
    }
    if (c.failed)
        goto done;
    *rate = (double)deleted / secs;
    *max_ms = c.max_ms;
    *calls = c.calls;
    bad = 0;
done:
    jm_close(m);
    bu_counter_free(cnt);
    if (path)
        bu_remove_db(path);
    free(path);
    return bad;
}

int scn_prune(const bench_opts *o)
{
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    double rate[MAX_REPS], maxms[MAX_REPS];
    long calls[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        bench_log("prune: rep %d/%d (%ld jobs)", r + 1, reps, o->prune_jobs);
        if (one_run(o, &rate[r], &maxms[r], &calls[r]))
            return 1;
    }
    double worst = bu_max(maxms, (size_t)reps);
    char metric[96];
    snprintf(metric, sizeof metric, "jm_prune, %ld finished jobs", o->prune_jobs);
    double rv = bu_median(rate, (size_t)reps);
    bench_report("prune", metric, rv, "jobs/s", NAN, NULL, ">= 200000 jobs/s", rv >= 200000);
    bench_report("prune", "longest concurrent jm_create (worst rep)", worst, "ms", NAN, NULL,
                 "<= 50 ms", worst <= 50);
    bench_report("prune", "longest concurrent jm_create (median rep)",
                 bu_median(maxms, (size_t)reps), "ms", NAN, NULL, NULL, BENCH_NO_TARGET);
    bench_note("prune", "a thread calls jm_create every ~%d us from %d ms before jm_prune until it "
                        "returns (%ld creates in the first rep); set-up: create_many then direct "
                        "SQL marking them completed while no manager had the file open",
               CREATE_GAP_US, WARMUP_US / 1000, calls[0]);
    return 0;
}
