/*
 * --callgrind: a fixed, untimed workload for instruction counts. It creates
 * N jobs one jm_create per call (bench_cg_create_all), then works them on
 * the calling thread with jm_run_once (bench_cg_work_all): no worker
 * threads, no sleeps, so the count does not depend on scheduling. On a
 * database of its own it then creates M jobs with jm_create_many in
 * batches of --enqueue-batch (bench_cg_create_many_all; M is
 * --callgrind-many-jobs, 20 000).
 *
 * Per-job figures without the set-up cost: run it at two sizes and take
 * the difference of each function's inclusive cost, divided by the
 * difference in jobs:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=cg.2000 \
 *       ./jm-bench --callgrind --callgrind-jobs 2000
 *   valgrind --tool=callgrind --callgrind-out-file=cg.4000 \
 *       ./jm-bench --callgrind --callgrind-jobs 4000
 *   callgrind_annotate --inclusive=yes cg.2000 | grep bench_cg_
 *   callgrind_annotate --inclusive=yes cg.4000 | grep bench_cg_
 *
 * instructions per created job = (create Ir at 4000 - at 2000) / 2000, and
 * likewise per worked job with bench_cg_work_all. For jm_create_many, vary
 * --callgrind-many-jobs instead (20000 and 40000) and read
 * bench_cg_create_many_all; --inclusive=yes on the whole output then gives
 * the cost of each function below it, per row by the same difference.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <stdio.h>
#include <stdlib.h>

#include "scenarios.h"

/* Not static and never inlined: callgrind_annotate names them. */
long bench_cg_create_all(jm_manager *m, long n) __attribute__((noinline));
long bench_cg_work_all(jm_manager *m, long n) __attribute__((noinline));
long bench_cg_create_many_all(jm_manager *m, long n, long batch) __attribute__((noinline));

long bench_cg_create_all(jm_manager *m, long n)
{
    long i = 0;
    for (; i < n; i++) {
        char params[96], id[JM_JOB_ID_SIZE];
        bu_job_params(params, sizeof params, i);
        if (jm_create(m, "BC", params, NULL, id) != JM_OK) {
            fprintf(stderr, "jm-bench: jm_create: %s\n", jm_last_error());
            break;
        }
    }
    return i;
}

long bench_cg_work_all(jm_manager *m, long n)
{
    long total = 0;
    int idle = 0;
    while (total < n && idle < 3) {
        int ran = 0;
        if (jm_run_once(m, (int)(n - total), &ran) != JM_OK) {
            fprintf(stderr, "jm-bench: jm_run_once: %s\n", jm_last_error());
            break;
        }
        total += ran;
        idle = ran ? 0 : idle + 1;
    }
    return total;
}

long bench_cg_create_many_all(jm_manager *m, long n, long batch)
{
    return bu_fill(m, "BC", n, batch, 0, 0) == JM_OK ? n : 0;
}

/* jm_create_many on a fresh database of its own: the rows it created. */
static long create_many_run(const bench_opts *o, bu_counter *c)
{
    char *path = bu_db_path(o->dir, "callgrind-many");
    jm_config cfg = bu_config(path);
    jm_manager *m = NULL;
    long created = 0;
    int rc = path ? jm_open(&cfg, &m) : JM_ENOMEM;
    if (rc == JM_OK)
        rc = bu_register_noop(m, "BC", c);
    if (rc == JM_OK)
        created = bench_cg_create_many_all(m, o->callgrind_many_jobs, o->enqueue_batch);
    else
        fprintf(stderr, "jm-bench: jm_open: %s\n", jm_last_error());
    int64_t total = -1;
    jm_filter f = JM_FILTER_INIT;
    if (m && jm_count(m, &f, &total) == JM_OK && total != created)
        created = 0;
    jm_close(m);
    if (path)
        bu_remove_db(path);
    free(path);
    return created;
}

int callgrind_run(const bench_opts *o)
{
    char *path = bu_db_path(o->dir, "callgrind");
    jm_config cfg = bu_config(path);
    jm_manager *m = NULL;
    bu_counter *c = bu_counter_new(o->callgrind_jobs);
    int rc = c ? jm_open(&cfg, &m) : JM_ENOMEM;
    if (rc == JM_OK)
        rc = bu_register_noop(m, "BC", c);
    long created = 0, worked = 0;
    if (rc == JM_OK) {
        created = bench_cg_create_all(m, o->callgrind_jobs);
        worked = bench_cg_work_all(m, created);
    } else {
        fprintf(stderr, "jm-bench: jm_open: %s\n", jm_last_error());
    }
    jm_filter f = JM_FILTER_INIT;
    f.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
    int64_t completed = -1;
    if (m)
        jm_count(m, &f, &completed);
    jm_close(m);
    long many = rc == JM_OK ? create_many_run(o, c) : 0;
    printf("callgrind workload: created %ld jobs (bench_cg_create_all), worked %ld jobs "
           "(bench_cg_work_all), %lld completed, executor ran %ld times; created %ld jobs in "
           "batches of %ld (bench_cg_create_many_all)\n",
           created, worked, (long long)completed, c ? bu_counter_value(c) : 0L, many,
           o->enqueue_batch);
    int ok = rc == JM_OK && created == o->callgrind_jobs && worked == created &&
             completed == created && bu_counter_value(c) == created &&
             many == o->callgrind_many_jobs;
    bu_counter_free(c);
    bu_remove_db(path);
    free(path);
    return ok ? 0 : 1;
}
