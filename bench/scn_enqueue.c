/*
 * enqueue: creating jobs, each way against the raw insert it should be
 * held to, both measured in the same run.
 *
 *   create sync      jm_create one per call, JM_DURABLE_SYNC, against raw
 *                    single-row inserts with synchronous=FULL
 *   create process   the same under JM_DURABLE_PROCESS, against raw
 *                    single-row inserts with synchronous=NORMAL
 *   create xN sync   N threads (--enqueue-threads, 8) calling jm_create on
 *                    one shared manager, JM_DURABLE_SYNC, against the
 *                    one-thread rate and against raw single-row inserts
 *                    with FULL from N threads, each on its own connection
 *   create_many      batches of 1 000 against the lean raw batched insert
 *
 * The one-per-call comparisons alternate the library and its baseline
 * within each rep in chunks of 2 000 rows (which side goes first
 * alternates too), each side timed on its own: a virtual disk's sync time
 * drifts over tens of seconds, and whole runs one after the other gave
 * ratios that varied more than the margins being checked.
 *
 * The batched comparison runs whole: --enqueue-many-reps runs of each
 * side, alternating, each on fresh files, after a full-size warm-up of
 * each. A batched chunk interleaved with the library's timed the baseline
 * beside the library's checkpoint thread, still copying and syncing the
 * chunk before; here the library is closed between runs. The spread of
 * each side over its runs is reported, and every run's figure: what is
 * left of it is the disk's own drift (a million rows write about 400 MB,
 * synced), which moves both sides alike, so the ratio per pair of runs
 * varies far less than either figure.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios.h"

#define MAX_REPS 64
/* Rows per chunk of the one-per-call comparisons. */
#define SINGLE_CHUNK 2000

/* One interleaved comparison: the library's durability and threads, and
 * the raw baseline's synchronous setting (it gets as many threads). */
typedef struct single_spec {
    const char *name;
    jm_durability durability;
    const char *synchronous;
    int threads;
} single_spec;

static jm_manager *open_fresh(const bench_opts *o, jm_durability durability, char **path,
                              bu_counter *c)
{
    *path = bu_db_path(o->dir, "enqueue");
    jm_config cfg = bu_config(*path);
    cfg.durability = durability;
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

/* jm_create one per call, jobs first..first+n; the error message if one
 * failed. */
typedef struct create_run {
    jm_manager *m;
    long first, n;
    int rc;
    char err[256];
} create_run;

static void *create_jobs(void *arg)
{
    create_run *t = arg;
    for (long i = t->first; i < t->first + t->n; i++) {
        char params[96], id[JM_JOB_ID_SIZE];
        bu_job_params(params, sizeof params, i);
        t->rc = jm_create(t->m, "BE", params, NULL, id);
        if (t->rc != JM_OK) {
            snprintf(t->err, sizeof t->err, "%s: %s", jm_strerror(t->rc), jm_last_error());
            break;
        }
    }
    return NULL;
}

/* n more jobs into m, one jm_create per call from `threads` threads, each
 * a share of n: the nanoseconds from the first start to the last end,
 * negative on error. */
static int64_t lib_create(jm_manager *m, long first, long n, int threads)
{
    create_run t[RAW_MAX_CONNS];
    pthread_t tid[RAW_MAX_CONNS];
    int started = 0, failed = 0;
    int64_t t0 = bu_mono_ns();
    if (threads == 1) {
        t[0] = (create_run){m, first, n, JM_OK, ""};
        create_jobs(&t[0]);
        started = 1;
    } else {
        for (int i = 0; i < threads; i++) {
            long share = n / threads + (i < n % threads);
            t[i] = (create_run){m, first, share, JM_OK, ""};
            first += share;
            if (pthread_create(&tid[i], NULL, create_jobs, &t[i]) != 0) {
                bench_fail("enqueue", "could not start a creating thread");
                failed = 1;
                break;
            }
            started++;
        }
        for (int i = 0; i < started; i++)
            pthread_join(tid[i], NULL);
    }
    int64_t ns = bu_mono_ns() - t0;
    for (int i = 0; i < started; i++) {
        if (t[i].rc != JM_OK) {
            bench_fail("enqueue", "jm_create: %s", t[i].err);
            failed = 1;
        }
    }
    return failed ? -1 : ns;
}

/* One rep of a one-per-call comparison: n rows each way on fresh files.
 * Rates in rows/s; 0 on success. */
static int interleaved(const bench_opts *o, bu_counter *c, const single_spec *sp, long n,
                       double *raw_rate, double *lib_rate)
{
    char *path = NULL;
    jm_manager *m = open_fresh(o, sp->durability, &path, c);
    bench_raw *r = m ? raw_open(o->dir, sp->synchronous, sp->threads) : NULL;
    int64_t raw_ns = 0, lib_ns = 0;
    int rc = m && r ? 0 : 1;
    if (m && !r)
        bench_fail("enqueue", "could not open the raw-insert database");
    for (long done = 0, k = 0; done < n && rc == 0; done += SINGLE_CHUNK, k++) {
        long step = n - done < SINGLE_CHUNK ? n - done : SINGLE_CHUNK;
        for (int side = 0; side < 2 && rc == 0; side++) {
            int lib = (side + k) % 2;
            int64_t ns = lib ? lib_create(m, done, step, sp->threads)
                             : sp->threads == 1 ? raw_insert(r, step, 1)
                                                : raw_insert_threads(r, step);
            if (ns < 0)
                rc = 1;
            else if (lib)
                lib_ns += ns;
            else
                raw_ns += ns;
        }
    }
    if (rc == 0)
        rc = bu_check_count(m, "enqueue", n, sp->name);
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

/* One run of jm_create_many: n jobs in batches on a fresh file, jobs/s;
 * negative on error. */
static double lib_many_rate(const bench_opts *o, bu_counter *c, long n)
{
    char *path = NULL;
    jm_manager *m = open_fresh(o, JM_DURABLE_SYNC, &path, c);
    double rate = -1;
    if (m) {
        int64_t t0 = bu_mono_ns();
        int rc = bu_fill(m, "BE", n, o->enqueue_batch, 0, 0);
        int64_t ns = bu_mono_ns() - t0;
        if (rc != JM_OK)
            bench_fail("enqueue", "jm_create_many failed: %s", jm_last_error());
        else if (bu_check_count(m, "enqueue", n, "create_many") == 0)
            rate = (double)n * 1e9 / (double)ns;
    }
    jm_close(m);
    if (path)
        bu_remove_db(path);
    free(path);
    return rate;
}

/* Runs of each side, alternating (raw first in even runs), after a warm-up
 * run of each at full size: the first run of that size on this machine's
 * disk was the slowest by up to a third, and a warm-up of a tenth of the
 * size did not take that away. 0 on success. */
static int many_runs(const bench_opts *o, bu_counter *c, int runs, double *raw, double *lib)
{
    long n = o->enqueue_many;
    if (raw_batch_rate(o->dir, n, o->enqueue_batch) < 0 || lib_many_rate(o, c, n) < 0) {
        bench_fail("enqueue", "the batched warm-up failed");
        return 1;
    }
    for (int i = 0; i < runs; i++) {
        bench_log("enqueue: create_many run %d/%d", i + 1, runs);
        for (int side = 0; side < 2; side++) {
            if ((side + i) % 2) {
                lib[i] = lib_many_rate(o, c, n);
                if (lib[i] < 0)
                    return 1;
            } else {
                raw[i] = raw_batch_rate(o->dir, n, o->enqueue_batch);
                if (raw[i] < 0) {
                    bench_fail("enqueue", "the lean raw batched insert failed");
                    return 1;
                }
            }
        }
    }
    return 0;
}

/* "v1, v2, ..." in thousands, into buf. */
static void list_values(char *buf, size_t size, const double *v, int n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%.0fk", i ? ", " : "", v[i] / 1000);
}

/* "a/b, c/d, ..." of two series, into buf. */
static void list_ratios(char *buf, size_t size, const double *num, const double *den, int n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%.2f", i ? ", " : "", num[i] / den[i]);
}

int scn_enqueue(const bench_opts *o)
{
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    int runs = o->enqueue_many_reps > MAX_REPS ? MAX_REPS : o->enqueue_many_reps;
    int nt = o->enqueue_threads;
    const single_spec sync1 = {"create sync", JM_DURABLE_SYNC, "FULL", 1};
    const single_spec process1 = {"create process", JM_DURABLE_PROCESS, "NORMAL", 1};
    const single_spec syncn = {"create xN sync", JM_DURABLE_SYNC, "FULL", nt};
    double raw1[MAX_REPS], lib1[MAX_REPS], rawp[MAX_REPS], libp[MAX_REPS];
    double rawn[MAX_REPS], libn[MAX_REPS], rawb[MAX_REPS], libb[MAX_REPS];
    bu_counter *c = bu_counter_new(1);
    if (!c)
        return 1;
    int rc = 0;
    for (int r = 0; r < reps && rc == 0; r++) {
        bench_log("enqueue rep %d/%d: one per call, sync, process, %d threads", r + 1, reps, nt);
        rc = interleaved(o, c, &sync1, o->enqueue_single, &raw1[r], &lib1[r]);
        if (rc == 0)
            rc = interleaved(o, c, &process1, o->enqueue_single, &rawp[r], &libp[r]);
        if (rc == 0)
            rc = interleaved(o, c, &syncn, o->enqueue_single, &rawn[r], &libn[r]);
    }
    if (rc == 0)
        rc = many_runs(o, c, runs, rawb, libb);
    bu_counter_free(c);
    if (rc) {
        bench_fail("enqueue", "a run failed (see above)");
        return 1;
    }

    /* Per-rep ratios before the medians sort the series. */
    char per1[256], perp[256], pern1[256], pernr[256], perb[256];
    list_ratios(per1, sizeof per1, lib1, raw1, reps);
    list_ratios(perp, sizeof perp, libp, rawp, reps);
    list_ratios(pern1, sizeof pern1, libn, lib1, reps);
    list_ratios(pernr, sizeof pernr, libn, rawn, reps);
    list_ratios(perb, sizeof perb, libb, rawb, runs);
    char runs_raw[256], runs_lib[256];
    list_values(runs_raw, sizeof runs_raw, rawb, runs);
    list_values(runs_lib, sizeof runs_lib, libb, runs);
    double rb_lo = bu_min(rawb, (size_t)runs), rb_hi = bu_max(rawb, (size_t)runs);
    double lb_lo = bu_min(libb, (size_t)runs), lb_hi = bu_max(libb, (size_t)runs);

    size_t nr = (size_t)reps;
    double r1 = bu_median(raw1, nr), l1 = bu_median(lib1, nr);
    double rp = bu_median(rawp, nr), lp = bu_median(libp, nr);
    double rn = bu_median(rawn, nr), ln = bu_median(libn, nr);
    double rb = bu_median(rawb, (size_t)runs), lb = bu_median(libb, (size_t)runs);

    char metric[96], ratio_to[64];
    long n1 = o->enqueue_single;
    snprintf(metric, sizeof metric, "FULL, 1 per transaction (%ld rows)", n1);
    bench_report("raw-insert", metric, r1, "rows/s", NAN, NULL, NULL, BENCH_NO_TARGET);
    snprintf(metric, sizeof metric, "NORMAL, 1 per transaction (%ld rows)", n1);
    bench_report("raw-insert", metric, rp, "rows/s", NAN, NULL, NULL, BENCH_NO_TARGET);
    snprintf(metric, sizeof metric, "FULL, 1 per transaction, %d threads (%ld rows)", nt, n1);
    bench_report("raw-insert", metric, rn, "rows/s", NAN, NULL, NULL, BENCH_NO_TARGET);
    snprintf(metric, sizeof metric, "lean, FULL, %ld per transaction (%ld rows)",
             o->enqueue_batch, o->enqueue_many);
    bench_report("raw-insert", metric, rb, "rows/s", NAN, NULL, NULL, BENCH_NO_TARGET);
    bench_report("raw-insert", "lean batched: spread (max - min) / median",
                 100 * (rb_hi - rb_lo) / rb, "%", NAN, NULL, NULL, BENCH_NO_TARGET);
    bench_note("raw-insert", "one table: integer rowid + id TEXT UNIQUE (time-ordered uuid, as "
                             "job ids) + type, status, ~50-byte params, limits, timestamps; WAL; "
                             "no other index; SQLite's defaults otherwise");
    bench_note("raw-insert", "%d threads: one connection each to the one file, waiting for the "
                             "write lock as the library does (random 0.2-2 ms sleeps)", nt);
    bench_note("raw-insert", "lean batched: median of %d runs on fresh files after a warm-up, "
                             "%.0f to %.0f rows/s; in order: %s", runs, rb_lo, rb_hi, runs_raw);

    snprintf(metric, sizeof metric, "create sync: jm_create (%ld jobs)", n1);
    bench_report("enqueue", metric, l1, "jobs/s", l1 / r1, "raw FULL 1/tx", ">= 0.8x",
                 l1 / r1 >= 0.8);
    snprintf(metric, sizeof metric, "create process: jm_create, PROCESS (%ld jobs)", n1);
    bench_report("enqueue", metric, lp, "jobs/s", lp / rp, "raw NORMAL 1/tx", ">= 0.8x",
                 lp / rp >= 0.8);
    snprintf(metric, sizeof metric, "create x%d sync: jm_create, %d threads (%ld jobs)", nt, nt,
             n1);
    bench_report("enqueue", metric, ln, "jobs/s", ln / l1, "create sync (1 thread)", ">= 5x",
                 ln / l1 >= 5);
    snprintf(ratio_to, sizeof ratio_to, "raw FULL 1/tx, %d threads", nt);
    bench_report("enqueue", metric, ln, "jobs/s", ln / rn, ratio_to, ">= 4x", ln / rn >= 4);
    snprintf(metric, sizeof metric, "create_many: batches of %ld (%ld jobs)", o->enqueue_batch,
             o->enqueue_many);
    snprintf(ratio_to, sizeof ratio_to, "raw lean %ld/tx", o->enqueue_batch);
    bench_report("enqueue", metric, lb, "jobs/s", lb / rb, ratio_to, ">= 0.7x", lb / rb >= 0.7);
    bench_report("enqueue", "create_many: spread (max - min) / median",
                 100 * (lb_hi - lb_lo) / lb, "%", NAN, NULL, NULL, BENCH_NO_TARGET);
    bench_note("enqueue", "ratio per rep: create sync %s; create process %s; create x%d sync "
                          "to 1 thread %s, to raw %s",
               per1, perp, nt, pern1, pernr);
    bench_note("enqueue", "create_many: ratio per run %s; %.0f to %.0f jobs/s; in order: %s",
               perb, lb_lo, lb_hi, runs_lib);
    bench_note("enqueue", "one per call: raw and library on fresh files, alternating in chunks "
                          "of %d rows, each side timed alone; batched: %d whole runs of each, "
                          "alternating, fresh files, after a warm-up",
               SINGLE_CHUNK, runs);
    return 0;
}
