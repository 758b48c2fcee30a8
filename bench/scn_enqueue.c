/*
 * enqueue: jm_create one job per call and jm_create_many in batches of
 * 1 000, each rep interleaved with the raw-insert baseline of the same
 * size, so the ratios compare runs made under the same machine load.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "scenarios.h"

#define MAX_REPS 64

static jm_manager *open_fresh(const bench_opts *o, char **path, bu_counter *c)
{
    *path = bu_db_path(o->dir, "enqueue");
    jm_config cfg = bu_config(*path);
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = bu_register_noop(m, "BE", c);
    if (rc != JM_OK) {
        bench_fail("enqueue", "jm_open: %s: %s", jm_strerror(rc), jm_last_error());
        jm_close(m);
        return NULL;
    }
    return m;
}

static double lib_single(const bench_opts *o, bu_counter *c)
{
    char *path = NULL;
    jm_manager *m = open_fresh(o, &path, c);
    double rate = -1;
    if (m) {
        int64_t t0 = bu_mono_ns();
        long i = 0;
        for (; i < o->enqueue_single; i++) {
            char params[96], id[JM_JOB_ID_SIZE];
            bu_job_params(params, sizeof params, i);
            int rc = jm_create(m, "BE", params, NULL, id);
            if (rc != JM_OK) {
                bench_fail("enqueue", "jm_create: %s: %s", jm_strerror(rc), jm_last_error());
                break;
            }
        }
        if (i == o->enqueue_single)
            rate = (double)i / bu_seconds_since(t0);
    }
    jm_close(m);
    bu_remove_db(path);
    free(path);
    return rate;
}

static double lib_many(const bench_opts *o, bu_counter *c)
{
    char *path = NULL;
    jm_manager *m = open_fresh(o, &path, c);
    double rate = -1;
    if (m) {
        int64_t t0 = bu_mono_ns();
        if (bu_fill(m, "BE", o->enqueue_many, o->enqueue_batch, 0, 0) == JM_OK)
            rate = (double)o->enqueue_many / bu_seconds_since(t0);
        else
            bench_fail("enqueue", "jm_create_many failed: %s", jm_last_error());
    }
    jm_close(m);
    bu_remove_db(path);
    free(path);
    return rate;
}

int scn_enqueue(const bench_opts *o)
{
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    double raw1[MAX_REPS], rawb[MAX_REPS], lib1[MAX_REPS], libb[MAX_REPS];
    bu_counter *c = bu_counter_new(1);
    if (!c)
        return 1;
    int rc = 0;
    for (int r = 0; r < reps && rc == 0; r++) {
        bench_log("enqueue rep %d/%d", r + 1, reps);
        raw1[r] = raw_insert_rate(o->dir, o->enqueue_single, 1);
        lib1[r] = lib_single(o, c);
        rawb[r] = raw_insert_rate(o->dir, o->enqueue_many, o->enqueue_batch);
        libb[r] = lib_many(o, c);
        if (raw1[r] < 0 || rawb[r] < 0 || lib1[r] < 0 || libb[r] < 0)
            rc = 1;
    }
    bu_counter_free(c);
    if (rc) {
        bench_fail("enqueue", "a run failed (see above)");
        return 1;
    }
    double r1 = bu_median(raw1, (size_t)reps), rb = bu_median(rawb, (size_t)reps);
    double l1 = bu_median(lib1, (size_t)reps), lb = bu_median(libb, (size_t)reps);
    char metric[96];
    snprintf(metric, sizeof metric, "rows/s, 1 per transaction (%ld rows)", o->enqueue_single);
    bench_report("raw-insert", metric, r1, "rows/s", NAN, NULL, NULL, BENCH_NO_TARGET);
    snprintf(metric, sizeof metric, "rows/s, %ld per transaction (%ld rows)", o->enqueue_batch,
             o->enqueue_many);
    bench_report("raw-insert", metric, rb, "rows/s", NAN, NULL, NULL, BENCH_NO_TARGET);
    bench_note("raw-insert", "one table: integer rowid + id TEXT UNIQUE (time-ordered uuid, as "
                             "job ids) + type, status, ~50-byte params, limits, timestamps; WAL, "
                             "synchronous=FULL; no other index");

    snprintf(metric, sizeof metric, "jm_create, 1 per call (%ld jobs)", o->enqueue_single);
    bench_report("enqueue", metric, l1, "jobs/s", l1 / r1, "raw-insert 1/tx", ">= 0.8x raw",
                 l1 / r1 >= 0.8);
    snprintf(metric, sizeof metric, "jm_create_many, batches of %ld (%ld jobs)", o->enqueue_batch,
             o->enqueue_many);
    bench_report("enqueue", metric, lb, "jobs/s", lb / rb, "raw-insert 1000/tx", ">= 0.5x raw",
                 lb / rb >= 0.5);
    bench_note("enqueue", "each rep runs raw then library, single then batched, on fresh files");
    return 0;
}
