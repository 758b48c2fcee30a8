/*
 * enqueue: jm_create one job per call and jm_create_many in batches of
 * 1 000, against the raw-insert baseline of the same size. Within a rep
 * the two alternate in chunks of about a second or less (which goes first
 * alternates too), each side timed on its own: a virtual disk's sync time
 * drifts over tens of seconds, and whole runs one after the other gave
 * ratios that varied more than the margins being checked.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "scenarios.h"

#define MAX_REPS 64
/* Rows per chunk: one per call, and batched. */
#define SINGLE_CHUNK 2000
#define MANY_CHUNK 20000

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

/* n more jobs into m, one jm_create each (per_call 1) or in batches of
 * per_call; the nanoseconds it took, negative on error. */
static int64_t lib_insert(jm_manager *m, long first, long n, long per_call)
{
    int64_t t0 = bu_mono_ns();
    if (per_call > 1) {
        if (bu_fill(m, "BE", n, per_call, 0, first) != JM_OK) {
            bench_fail("enqueue", "jm_create_many failed: %s", jm_last_error());
            return -1;
        }
        return bu_mono_ns() - t0;
    }
    for (long i = first; i < first + n; i++) {
        char params[96], id[JM_JOB_ID_SIZE];
        bu_job_params(params, sizeof params, i);
        int rc = jm_create(m, "BE", params, NULL, id);
        if (rc != JM_OK) {
            bench_fail("enqueue", "jm_create: %s: %s", jm_strerror(rc), jm_last_error());
            return -1;
        }
    }
    return bu_mono_ns() - t0;
}

/* One rep: n rows each way, per_call rows per transaction or call, on
 * fresh files. Rates in rows/s; 0 on success. */
static int interleaved(const bench_opts *o, bu_counter *c, long n, long per_call, long chunk,
                       double *raw_rate, double *lib_rate)
{
    char *path = NULL;
    jm_manager *m = open_fresh(o, &path, c);
    bench_raw *r = raw_open(o->dir);
    int64_t raw_ns = 0, lib_ns = 0;
    int rc = m && r ? 0 : 1;
    if (m && !r)
        bench_fail("enqueue", "could not open the raw-insert database");
    for (long done = 0, k = 0; done < n && rc == 0; done += chunk, k++) {
        long step = n - done < chunk ? n - done : chunk;
        for (int side = 0; side < 2 && rc == 0; side++) {
            int64_t ns = (side + k) % 2 ? lib_insert(m, done, step, per_call)
                                        : raw_insert(r, step, per_call);
            if (ns < 0)
                rc = 1;
            else if ((side + k) % 2)
                lib_ns += ns;
            else
                raw_ns += ns;
        }
    }
    if (rc == 0) {
        *raw_rate = (double)n * 1e9 / (double)raw_ns;
        *lib_rate = (double)n * 1e9 / (double)lib_ns;
    }
    raw_close(r);
    jm_close(m);
    if (path)
        bu_remove_db(path);
    free(path);
    return rc;
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
        rc = interleaved(o, c, o->enqueue_single, 1, SINGLE_CHUNK, &raw1[r], &lib1[r]);
        if (rc == 0)
            rc = interleaved(o, c, o->enqueue_many, o->enqueue_batch, MANY_CHUNK, &rawb[r],
                             &libb[r]);
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
    char spread[256];
    size_t len = 0;
    for (int r = 0; r < reps && len < sizeof spread; r++)
        len += (size_t)snprintf(spread + len, sizeof spread - len, "%s%.2f/%.2f", r ? ", " : "",
                                lib1[r] / raw1[r], libb[r] / rawb[r]);
    bench_note("enqueue", "ratio per rep, one per call/batched: %s", spread);
    bench_note("enqueue", "each rep: raw and library on fresh files, alternating in chunks of "
                          "2000 rows one per call and 20000 batched, each side timed alone");
    return 0;
}
