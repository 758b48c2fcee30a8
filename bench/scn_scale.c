/*
 * scale: how enqueueing and working cost grows with finished jobs already
 * in the table (0, 100 000, 1 000 000 by default), and how fast the first
 * page of jm_list (each filter alone) and jm_count by status answer on the
 * largest table.
 *
 * Set-up shortcut: the finished jobs are created with jm_create_many (with
 * namespaces ns-0..ns-99 and idempotency keys k-<i>, as a populated table
 * would have) and then marked completed by a direct SQL UPDATE on the file
 * while no manager has it open (bu_mark_completed): running a million jobs
 * only to finish them would measure nothing more. The jobs measured at one
 * size stay in the table, completed, for the next.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "scenarios.h"

#define MAX_REPS 64
#define SCALE_WORKERS 2
#define LIST_PAGE 50
#define MS_PER_DAY (24 * 3600 * 1000)

typedef struct scale_ctx {
    const bench_opts *o;
    char *path;
    jm_manager *m;
    bu_counter *c;
    long next_index;
} scale_ctx;

static int reopen(scale_ctx *x)
{
    jm_close(x->m);
    x->m = NULL;
    jm_config cfg = bu_config(x->path);
    int rc = jm_open(&cfg, &x->m);
    if (rc == JM_OK)
        rc = bu_register_noop(x->m, "BA", x->c);
    if (rc != JM_OK)
        bench_fail("scale", "jm_open: %s: %s", jm_strerror(rc), jm_last_error());
    return rc;
}

/* Adds n finished jobs; the manager is closed meanwhile. */
static int add_finished(scale_ctx *x, long n, int64_t *created_mid)
{
    if (n <= 0)
        return 0;
    bench_log("scale: adding %ld finished jobs", n);
    int64_t before = bu_wall_ms();
    int rc = bu_fill(x->m, "BA", n, 1000, 1, x->next_index);
    *created_mid = before + (bu_wall_ms() - before) / 2;
    x->next_index += n;
    if (rc != JM_OK) {
        bench_fail("scale", "set-up: jm_create_many: %s", jm_last_error());
        return 1;
    }
    jm_close(x->m);
    x->m = NULL;
    if (bu_mark_completed(x->path, bu_wall_ms() - MS_PER_DAY)) {
        bench_fail("scale", "set-up: marking jobs completed failed");
        return 1;
    }
    return reopen(x) != JM_OK;
}

static double enqueue_single(scale_ctx *x, long n)
{
    int64_t t0 = bu_mono_ns();
    for (long i = 0; i < n; i++) {
        char params[96], id[JM_JOB_ID_SIZE];
        bu_job_params(params, sizeof params, i);
        int rc = jm_create(x->m, "BA", params, NULL, id);
        if (rc != JM_OK) {
            bench_fail("scale", "jm_create: %s: %s", jm_strerror(rc), jm_last_error());
            return -1;
        }
    }
    return (double)n / bu_seconds_since(t0);
}

typedef struct list_case {
    const char *name;
    jm_filter f;
} list_case;

static double time_list(scale_ctx *x, const jm_filter *f, size_t *got)
{
    double v[256];
    int calls = x->o->list_calls > 256 ? 256 : x->o->list_calls;
    for (int i = 0; i < calls; i++) {
        jm_job_list *l = NULL;
        int64_t t0 = bu_mono_ns();
        int rc = jm_list(x->m, f, &l);
        v[i] = bu_seconds_since(t0) * 1000;
        if (rc != JM_OK) {
            bench_fail("scale", "jm_list: %s: %s", jm_strerror(rc), jm_last_error());
            return -1;
        }
        *got = jm_job_list_count(l);
        jm_job_list_free(l);
    }
    return bu_median(v, (size_t)calls);
}

static int list_and_count(scale_ctx *x, int64_t created_mid, long size)
{
    char key[32];
    snprintf(key, sizeof key, "k-%ld", size / 2);
    list_case cases[7];
    for (int i = 0; i < 7; i++) {
        jm_filter f = JM_FILTER_INIT;
        f.limit = LIST_PAGE;
        cases[i].f = f;
    }
    cases[0].name = "status=completed";
    cases[0].f.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
    cases[1].name = "type=BA";
    cases[1].f.type = "BA";
    cases[2].name = "namespace=ns-7";
    cases[2].f.namespace_id = "ns-7";
    cases[3].name = "idempotency_key (one match)";
    cases[3].f.idempotency_key = key;
    cases[4].name = "created_after=midpoint";
    cases[4].f.created_after_ms = created_mid;
    cases[5].name = "created_before=midpoint";
    cases[5].f.created_before_ms = created_mid;
    cases[6].name = "newest_first";
    cases[6].f.newest_first = 1;
    for (int i = 0; i < 7; i++) {
        size_t got = 0;
        double ms = time_list(x, &cases[i].f, &got);
        if (ms < 0)
            return 1;
        char metric[96];
        snprintf(metric, sizeof metric, "jm_list first page (50), %s", cases[i].name);
        bench_report("scale", metric, ms, "ms", NAN, NULL, "<= 1 ms", ms <= 1.0);
        size_t want = i == 3 ? 1 : LIST_PAGE;
        if (got != want)
            bench_fail("scale", "jm_list %s returned %zu jobs, expected %zu", cases[i].name, got,
                       want);
    }
    double v[256];
    int calls = x->o->list_calls > 256 ? 256 : x->o->list_calls;
    int64_t n = 0;
    for (int i = 0; i < calls; i++) {
        jm_filter f = JM_FILTER_INIT;
        f.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
        int64_t t0 = bu_mono_ns();
        int rc = jm_count(x->m, &f, &n);
        v[i] = bu_seconds_since(t0) * 1000;
        if (rc != JM_OK) {
            bench_fail("scale", "jm_count: %s: %s", jm_strerror(rc), jm_last_error());
            return 1;
        }
    }
    double ms = bu_median(v, (size_t)calls);
    char metric[96];
    snprintf(metric, sizeof metric, "jm_count status=completed (%lld jobs)", (long long)n);
    bench_report("scale", metric, ms, "ms", NAN, NULL, "<= 50 ms", ms <= 50.0);
    return 0;
}

int scn_scale(const bench_opts *o)
{
    scale_ctx x = {o, bu_db_path(o->dir, "scale"), NULL, bu_counter_new(1), 0};
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    double base_many = NAN, base_single = NAN, base_work = NAN;
    int bad = 1;
    long have = 0;
    int64_t created_mid = 0;
    if (!x.path || !x.c || reopen(&x) != JM_OK)
        goto done;
    for (int s = 0; s < o->nscale; s++) {
        long size = o->scale_sizes[s];
        if (add_finished(&x, size - have, &created_mid))
            goto done;
        have = size > have ? size : have;
        double many[MAX_REPS], single[MAX_REPS], work[MAX_REPS];
        for (int r = 0; r < reps; r++) {
            bench_log("scale: %ld finished jobs, rep %d/%d", size, r + 1, reps);
            int64_t t0 = bu_mono_ns();
            if (bu_fill(x.m, "BA", o->scale_work_jobs, 1000, 0, 0) != JM_OK) {
                bench_fail("scale", "jm_create_many: %s", jm_last_error());
                goto done;
            }
            many[r] = (double)o->scale_work_jobs / bu_seconds_since(t0);
            single[r] = enqueue_single(&x, o->scale_single_jobs);
            long total = o->scale_work_jobs + o->scale_single_jobs;
            work[r] = single[r] < 0 ? -1 : lib_work_rate("scale", x.m, x.c, total, SCALE_WORKERS);
            if (work[r] < 0)
                goto done;
        }
        double mv = bu_median(many, (size_t)reps), sv = bu_median(single, (size_t)reps);
        double wv = bu_median(work, (size_t)reps);
        if (s == 0) {
            base_many = mv;
            base_single = sv;
            base_work = wv;
        }
        char metric[96], to[64];
        int last = s == o->nscale - 1 && s > 0;
        snprintf(to, sizeof to, "same, %ld finished", o->scale_sizes[0]);
        snprintf(metric, sizeof metric, "jm_create_many, %ld finished jobs", size);
        bench_report("scale", metric, mv, "jobs/s", s ? mv / base_many : NAN, s ? to : NULL,
                     last ? ">= 0.8x (within 20%)" : NULL, mv / base_many >= 0.8);
        snprintf(metric, sizeof metric, "jm_create 1 per call, %ld finished jobs", size);
        bench_report("scale", metric, sv, "jobs/s", s ? sv / base_single : NAN, s ? to : NULL,
                     last ? ">= 0.8x (within 20%)" : NULL, sv / base_single >= 0.8);
        snprintf(metric, sizeof metric, "claim+complete, 2 workers, %ld finished jobs", size);
        bench_report("scale", metric, wv, "jobs/s", s ? wv / base_work : NAN, s ? to : NULL,
                     last ? ">= 0.8x (within 20%)" : NULL, wv / base_work >= 0.8);
    }
    bench_log("scale: list and count on %ld+ jobs", have);
    if (list_and_count(&x, created_mid, have))
        goto done;
    bad = 0;
    bench_note("scale", "per size and rep: %ld jobs by jm_create_many (batches of 1000), %ld by "
                        "jm_create, then all worked by %d workers; they stay in the table, "
                        "completed, so later sizes hold slightly more finished jobs",
               o->scale_work_jobs, o->scale_single_jobs, SCALE_WORKERS);
    bench_note("scale", "set-up: finished jobs created with jm_create_many (namespaces, keys) and "
                        "marked completed by direct SQL on the file while no manager had it open");
    bench_note("scale", "list/count: median of %d calls each on the largest table", o->list_calls);
done:
    jm_close(x.m);
    bu_counter_free(x.c);
    if (x.path)
        bu_remove_db(x.path);
    free(x.path);
    return bad;
}
