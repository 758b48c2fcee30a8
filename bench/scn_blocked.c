/*
 * blocked: the cost of claiming past jobs that a running job holds back.
 * A holder job (type BH on resource "hot") runs in a second manager for
 * the whole measurement; BB conflicts with BH, and 10 000 due BB jobs on
 * "hot" rank above every job measured. The measuring manager runs no-op
 * BW jobs one jm_run_once at a time (claim, run and outcome, each its own
 * transaction) and the same with no BB jobs at all, in the same run; the
 * target is the issue's: within 2x of the claim without blocked jobs.
 *
 * The first claim after the BB jobs arrive judges each of them once
 * (moving them out of the due index); it is reported on its own.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "scenarios.h"

#define MAX_REPS 64

typedef struct holder {
    atomic_int running;
    atomic_int release;
} holder;

static jm_decision hold(void *self, jm_ctx *ctx)
{
    (void)ctx;
    holder *h = self;
    atomic_store(&h->running, 1);
    while (!atomic_load(&h->release))
        bu_sleep_us(1000);
    return jm_decision_completed("held", NULL);
}

static jm_decision noop(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed(NULL, NULL);
}

static int reg(jm_manager *m, const char *type, jm_decision (*fn)(void *, jm_ctx *), void *self)
{
    jm_executor ex = {JM_EXECUTOR_VERSION, type, type, 1, NULL, fn, NULL, JM_CLASS_NORMAL, NULL};
    return jm_register(m, &ex, self);
}

static int fill(jm_manager *m, const char *type, const char *resource, int priority, long n)
{
    enum { BATCH = 1000 };
    jm_new_job *jobs = calloc(BATCH, sizeof *jobs);
    char (*ids)[JM_JOB_ID_SIZE] = calloc(BATCH, JM_JOB_ID_SIZE);
    int rc = jobs && ids ? JM_OK : JM_ENOMEM;
    for (long done = 0; rc == JM_OK && done < n; done += BATCH) {
        size_t k = (size_t)(n - done < BATCH ? n - done : BATCH);
        for (size_t i = 0; i < k; i++) {
            jm_create_opts o = JM_CREATE_OPTS_INIT;
            o.resource = resource;
            o.priority = priority;
            jm_new_job j = {type, NULL, o};
            jobs[i] = j;
        }
        rc = jm_create_many(m, jobs, k, ids);
    }
    free(jobs);
    free(ids);
    return rc;
}

/* One run: µs per jm_run_once of a BW job with `blocked` BB jobs held
 * back ahead of them; *first_ms the first claim's time. */
static int one_run(const bench_opts *o, long blocked, long jobs, double *us, double *first_ms)
{
    char *path = bu_db_path(o->dir, "blocked");
    jm_config cfg = bu_config(path);
    cfg.durability = JM_DURABLE_PROCESS; /* the claim, not the sync, is measured */
    holder h;
    atomic_init(&h.running, 0);
    atomic_init(&h.release, 0);
    jm_manager *hm = NULL, *m = NULL;
    int rc = jm_open(&cfg, &hm);
    if (rc == JM_OK)
        rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = reg(hm, "BH", hold, &h);
    if (rc == JM_OK && (rc = reg(m, "BB", noop, NULL)) == JM_OK)
        rc = reg(m, "BW", noop, NULL);
    if (rc == JM_OK)
        rc = jm_conflict_set(m, "BH", "BB", 1);
    char id[JM_JOB_ID_SIZE];
    jm_create_opts ho = JM_CREATE_OPTS_INIT;
    ho.resource = "hot";
    if (rc == JM_OK)
        rc = jm_create(hm, "BH", NULL, &ho, id);
    int started = rc == JM_OK && (rc = jm_start(hm, 1)) == JM_OK;
    for (int i = 0; rc == JM_OK && !atomic_load(&h.running) && i < 30000; i++)
        bu_sleep_us(1000);
    if (rc == JM_OK && !atomic_load(&h.running))
        rc = JM_EBUSY; /* the holder never started */
    if (rc == JM_OK && blocked)
        rc = fill(m, "BB", "hot", 10, blocked);
    if (rc == JM_OK)
        rc = fill(m, "BW", NULL, 0, jobs + 1);
    int ran = 0;
    int64_t t0 = bu_mono_ns();
    if (rc == JM_OK)
        rc = jm_run_once(m, 1, &ran);
    *first_ms = bu_seconds_since(t0) * 1000;
    t0 = bu_mono_ns();
    for (long i = 0; rc == JM_OK && i < jobs; i++) {
        rc = jm_run_once(m, 1, &ran);
        if (rc == JM_OK && ran != 1)
            rc = JM_EDB;
    }
    *us = bu_seconds_since(t0) * 1e6 / (double)jobs;
    if (rc != JM_OK)
        bench_fail("blocked", "%ld blocked: %s: %s", blocked, jm_strerror(rc), jm_last_error());
    /* None of the held jobs may have run while their holder ran. */
    jm_filter f = JM_FILTER_INIT;
    f.type = "BB";
    f.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED) | JM_STATUS_BIT(JM_STATUS_RUNNING);
    int64_t wrong = 0;
    if (rc == JM_OK && jm_count(m, &f, &wrong) == JM_OK && wrong) {
        bench_fail("blocked", "%lld held job(s) ran beside their holder", (long long)wrong);
        rc = JM_EDB;
    }
    atomic_store(&h.release, 1);
    if (started)
        jm_stop(hm, 10000);
    jm_close(m);
    jm_close(hm);
    bu_remove_db(path);
    free(path);
    return rc == JM_OK ? 0 : 1;
}

int scn_blocked(const bench_opts *o)
{
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    long blocked = o->quick ? 2000 : 10000, jobs = o->quick ? 200 : 2000;
    double base[MAX_REPS], held[MAX_REPS], first[MAX_REPS], ignore;
    for (int r = 0; r < reps; r++) {
        bench_log("blocked: rep %d/%d", r + 1, reps);
        if (one_run(o, 0, jobs, &base[r], &ignore) ||
            one_run(o, blocked, jobs, &held[r], &first[r]))
            return 1;
    }
    double b = bu_median(base, (size_t)reps), h = bu_median(held, (size_t)reps);
    char metric[96];
    bench_report("blocked", "µs per claim+run, no blocked jobs", b, "µs", NAN, NULL, NULL,
                 BENCH_NO_TARGET);
    snprintf(metric, sizeof metric, "µs per claim+run, %ld due jobs blocked ahead", blocked);
    bench_report("blocked", metric, h, "µs", h / b, "no blocked jobs", "<= 2x", h / b <= 2);
    snprintf(metric, sizeof metric, "first claim, judging %ld blocked jobs", blocked);
    bench_report("blocked", metric, bu_median(first, (size_t)reps), "ms", NAN, NULL, NULL,
                 BENCH_NO_TARGET);
    bench_note("blocked", "jm_run_once(m, 1) of no-op jobs, %ld per run, JM_DURABLE_PROCESS; a "
                          "holder job runs in a second manager on the same file, and its "
                          "conflicting jobs (priority above the measured ones) are checked "
                          "afterwards never to have run",
               jobs);
    return 0;
}
