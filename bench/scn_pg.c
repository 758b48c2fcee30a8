/*
 * pg: the library on PostgreSQL (--pg-url, or $JM_BENCH_PG_URL) against
 * raw libpq baselines measured in the same run (baseline_pg.c, with the
 * libpq helpers of bench_pg.c). Every library run and every baseline run
 * gets a fresh schema, dropped after, so no run sees another's rows or dead
 * tuples. Without a URL the scenario only notes that it was skipped, so
 * "--scenario all" runs without a server.
 *
 *   create sync      jm_create one per call, JM_DURABLE_SYNC, against a
 *                    prepared single-row INSERT in autocommit with
 *                    synchronous_commit on
 *   create process   the same under JM_DURABLE_PROCESS, against the INSERT
 *                    with synchronous_commit off
 *   create_many      jm_create_many in batches of 1 000 against 1 000
 *                    prepared INSERTs per transaction, synchronous_commit on
 *   work @2, @8      pre-inserted no-op jobs (jm_create_many, not timed)
 *                    worked to completion by 2 and 8 workers, against the
 *                    SKIP LOCKED queue a user would write, with as many
 *                    threads
 *   pickup           jm_create in one process to the executor's first line
 *                    in another process on another node id, whose poll is
 *                    1 s (so only the wake-up explains a fast start); and
 *                    the same in one process (scn_pg_pickup.c)
 *
 * The one-per-call comparisons alternate library and baseline in chunks
 * within each rep (which side goes first alternates too), each side timed
 * alone, as the enqueue scenario does: commit time drifts with the disk and
 * the server's checkpoints, and interleaving lets both sides see the same
 * drift. The batched and work comparisons run whole, alternating which side
 * goes first from rep to rep.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios.h"

#define MAX_REPS 64
/* Rows per chunk of the one-per-call comparisons. */
#define PG_CHUNK 500
/* The worker counts of the work rows. */
static const int work_workers[] = {2, 8};
#define NWORK (sizeof work_workers / sizeof work_workers[0])

jm_config bpg_lib_config(const char *url, const char *schema)
{
    jm_config cfg = bu_config(NULL);
    cfg.db_url = url;
    cfg.pg_schema = schema;
    return cfg;
}

/* A manager on the fresh schema with a no-op executor of `type`; NULL
 * after reporting. */
static jm_manager *lib_open(const bench_opts *o, const char *schema, jm_durability durability,
                            const char *type, bu_counter *c)
{
    jm_config cfg = bpg_lib_config(o->pg_url, schema);
    cfg.durability = durability;
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = bu_register_noop(m, type, c);
    if (rc != JM_OK) {
        bench_fail("pg", "jm_open: %s: %s", jm_strerror(rc), jm_last_error());
        jm_close(m);
        return NULL;
    }
    return m;
}

/* jm_create one per call, jobs first..first+n: nanoseconds, negative on
 * error. */
static int64_t lib_create(jm_manager *m, long first, long n)
{
    int64_t t0 = bu_mono_ns();
    for (long i = first; i < first + n; i++) {
        char params[96], id[JM_JOB_ID_SIZE];
        bu_job_params(params, sizeof params, i);
        int rc = jm_create(m, "BP", params, NULL, id);
        if (rc != JM_OK) {
            bench_fail("pg", "jm_create: %s: %s", jm_strerror(rc), jm_last_error());
            return -1;
        }
    }
    return bu_mono_ns() - t0;
}

/* One rep of a one-per-call comparison; rates in rows/s; 0 on success. */
static int create_pair(const bench_opts *o, bu_counter *c, jm_durability durability,
                       const char *what, double *raw_rate, double *lib_rate)
{
    char schema[BPG_SCHEMA_SIZE];
    bpg_schema_name(schema);
    long n = o->pg_create_jobs;
    jm_manager *m = lib_open(o, schema, durability, "BP", c);
    bpg_raw *r = m ? bpg_raw_open(o->pg_url, durability == JM_DURABLE_SYNC) : NULL;
    int64_t raw_ns = 0, lib_ns = 0;
    int rc = m && r ? 0 : 1;
    for (long done = 0, k = 0; done < n && rc == 0; done += PG_CHUNK, k++) {
        long step = n - done < PG_CHUNK ? n - done : PG_CHUNK;
        for (int side = 0; side < 2 && rc == 0; side++) {
            int lib = (side + k) % 2;
            int64_t ns = lib ? lib_create(m, done, step) : bpg_raw_insert(r, step, 1);
            if (ns < 0)
                rc = 1;
            else if (lib)
                lib_ns += ns;
            else
                raw_ns += ns;
        }
    }
    if (rc == 0)
        rc = bu_check_count(m, "pg", n, what);
    if (rc == 0) {
        *raw_rate = (double)n * 1e9 / (double)raw_ns;
        *lib_rate = (double)n * 1e9 / (double)lib_ns;
    }
    bpg_raw_close(r);
    jm_close(m);
    bpg_drop_schema(o->pg_url, schema);
    return rc;
}

/* jm_create_many on a fresh schema: jobs/s, negative on error. */
static double lib_many_rate(const bench_opts *o, bu_counter *c)
{
    char schema[BPG_SCHEMA_SIZE];
    bpg_schema_name(schema);
    long n = o->pg_many_jobs;
    jm_manager *m = lib_open(o, schema, JM_DURABLE_SYNC, "BP", c);
    double rate = -1;
    if (m) {
        int64_t t0 = bu_mono_ns();
        int rc = bu_fill(m, "BP", n, o->enqueue_batch, 0, 0);
        int64_t ns = bu_mono_ns() - t0;
        if (rc != JM_OK)
            bench_fail("pg", "jm_create_many: %s: %s", jm_strerror(rc), jm_last_error());
        else if (bu_check_count(m, "pg", n, "create_many") == 0)
            rate = (double)n * 1e9 / (double)ns;
    }
    jm_close(m);
    bpg_drop_schema(o->pg_url, schema);
    return rate;
}

static double raw_many_rate(const bench_opts *o)
{
    bpg_raw *r = bpg_raw_open(o->pg_url, 1);
    int64_t ns = r ? bpg_raw_insert(r, o->pg_many_jobs, o->enqueue_batch) : -1;
    bpg_raw_close(r);
    return ns < 0 ? -1 : (double)o->pg_many_jobs * 1e9 / (double)ns;
}

/* Pre-inserted no-op jobs worked by `workers` on a fresh schema: jobs/s,
 * negative on error. */
static double lib_work(const bench_opts *o, int workers)
{
    char schema[BPG_SCHEMA_SIZE];
    bpg_schema_name(schema);
    long n = o->pg_work_jobs;
    bu_counter *c = bu_counter_new(n);
    jm_manager *m = c ? lib_open(o, schema, JM_DURABLE_SYNC, "BW", c) : NULL;
    double rate = -1;
    if (m) {
        int rc = bu_fill(m, "BW", n, o->enqueue_batch, 0, 0);
        if (rc != JM_OK)
            bench_fail("pg", "work set-up: %s: %s", jm_strerror(rc), jm_last_error());
        else
            rate = lib_work_rate("pg", m, c, n, workers);
    }
    jm_close(m);
    bu_counter_free(c);
    bpg_drop_schema(o->pg_url, schema);
    return rate;
}

/* "a/b, c/d, ..." of two series, into buf. */
static void list_ratios(char *buf, size_t size, const double *num, const double *den, int n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%.2f", i ? ", " : "", num[i] / den[i]);
}

/* One comparison's rows: the library's against its baseline, then the
 * baseline's own (rows/s or jobs/s). */
typedef struct pair_rows {
    char label[24]; /* names the per-rep ratios in a note */
    char metric[96];
    char raw_metric[96];
    const char *raw_unit;
    char ratio_to[64];
    double target; /* the least ratio; 0: none */
} pair_rows;

/* Medians of reps, with the ratio per rep in a note. */
static void report_pair(const pair_rows *p, double *lib, double *raw, int reps)
{
    char per[256], t[32];
    list_ratios(per, sizeof per, lib, raw, reps);
    double l = bu_median(lib, (size_t)reps), r = bu_median(raw, (size_t)reps);
    if (p->target > 0) {
        snprintf(t, sizeof t, ">= %.1fx", p->target);
        bench_report("pg", p->metric, l, "jobs/s", l / r, p->ratio_to, t, l / r >= p->target);
    } else {
        bench_report("pg", p->metric, l, "jobs/s", l / r, p->ratio_to, NULL, BENCH_NO_TARGET);
    }
    bench_report("pg", p->raw_metric, r, p->raw_unit, NAN, NULL, NULL, BENCH_NO_TARGET);
    bench_note("pg", "%s: ratio per rep %s", p->label, per);
}

static int run_creates(const bench_opts *o, int reps)
{
    double raws[MAX_REPS], libs[MAX_REPS], rawp[MAX_REPS], libp[MAX_REPS];
    double rawb[MAX_REPS], libb[MAX_REPS];
    bu_counter *c = bu_counter_new(1);
    int rc = c ? 0 : 1;
    for (int r = 0; r < reps && rc == 0; r++) {
        bench_log("pg rep %d/%d: jm_create sync, process; jm_create_many", r + 1, reps);
        rc = create_pair(o, c, JM_DURABLE_SYNC, "create sync", &raws[r], &libs[r]);
        if (rc == 0)
            rc = create_pair(o, c, JM_DURABLE_PROCESS, "create process", &rawp[r], &libp[r]);
        for (int side = 0; side < 2 && rc == 0; side++) {
            if ((side + r) % 2)
                rc = (libb[r] = lib_many_rate(o, c)) < 0;
            else
                rc = (rawb[r] = raw_many_rate(o)) < 0;
        }
    }
    bu_counter_free(c);
    if (rc)
        return 1;
    long n = o->pg_create_jobs, b = o->enqueue_batch;
    pair_rows p = {.label = "create sync", .raw_unit = "rows/s", .target = 1.0};
    snprintf(p.metric, sizeof p.metric, "create sync: jm_create, SYNC (%ld jobs)", n);
    snprintf(p.raw_metric, sizeof p.raw_metric, "raw: INSERT 1/call, sync on (%ld rows)", n);
    snprintf(p.ratio_to, sizeof p.ratio_to, "raw INSERT 1/call, sync on");
    report_pair(&p, libs, raws, reps);
    snprintf(p.label, sizeof p.label, "create process");
    snprintf(p.metric, sizeof p.metric, "create process: jm_create, PROCESS (%ld jobs)", n);
    snprintf(p.raw_metric, sizeof p.raw_metric, "raw: INSERT 1/call, sync off (%ld rows)", n);
    snprintf(p.ratio_to, sizeof p.ratio_to, "raw INSERT 1/call, sync off");
    report_pair(&p, libp, rawp, reps);
    snprintf(p.label, sizeof p.label, "create_many");
    p.target = 0;
    snprintf(p.metric, sizeof p.metric, "create_many: batches of %ld (%ld jobs)", b,
             o->pg_many_jobs);
    snprintf(p.raw_metric, sizeof p.raw_metric, "raw: INSERT %ld/transaction, sync on (%ld rows)",
             b, o->pg_many_jobs);
    snprintf(p.ratio_to, sizeof p.ratio_to, "raw INSERT %ld/tx, sync on", b);
    report_pair(&p, libb, rawb, reps);
    return 0;
}

static int run_work(const bench_opts *o, int reps)
{
    for (size_t w = 0; w < NWORK; w++) {
        int n = work_workers[w];
        double raw[MAX_REPS], lib[MAX_REPS];
        for (int r = 0; r < reps; r++) {
            bench_log("pg: work with %d workers, rep %d/%d", n, r + 1, reps);
            for (int side = 0; side < 2; side++) {
                int is_lib = (side + r) % 2;
                double v = is_lib ? lib_work(o, n) : bpg_queue_rate(o->pg_url, o->pg_work_jobs, n);
                if (v < 0)
                    return 1;
                *(is_lib ? &lib[r] : &raw[r]) = v;
            }
        }
        pair_rows p = {.raw_unit = "jobs/s"};
        snprintf(p.label, sizeof p.label, "work @%d", n);
        snprintf(p.metric, sizeof p.metric, "work @%d: no-op jobs, %d workers (%ld jobs)", n, n,
                 o->pg_work_jobs);
        snprintf(p.raw_metric, sizeof p.raw_metric, "raw: SKIP LOCKED queue, %d threads (%ld jobs)",
                 n, o->pg_work_jobs);
        snprintf(p.ratio_to, sizeof p.ratio_to, "raw SKIP LOCKED queue, %d thr", n);
        report_pair(&p, lib, raw, reps);
    }
    return 0;
}

int scn_pg(const bench_opts *o)
{
    if (!o->pg_url) {
        bench_note("pg", "skipped: no --pg-url (nor JM_BENCH_PG_URL)");
        return 0;
    }
    PGconn *probe = bpg_connect(o->pg_url);
    if (!probe)
        return 1;
    bench_log("pg: PostgreSQL %d", PQserverVersion(probe));
    PQfinish(probe);
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    if (run_creates(o, reps) || run_work(o, reps) || bpg_pickup(o))
        return 1;
    bench_note("pg", "raw rows: table raw_jobs(seq bigserial PRIMARY KEY, id text UNIQUE "
                     "(time-ordered uuid, as job ids), type, status, ~50-byte params, "
                     "timestamps, limits), prepared INSERT, every value bound");
    bench_note("pg", "one per call: library and raw alternating in chunks of %d rows, each "
                     "side timed alone; batched and work: whole runs, alternating; every run "
                     "on a fresh schema; medians of %d rep(s)", PG_CHUNK, reps);
    bench_note("pg", "raw queue: per job BEGIN; SELECT oldest status=0 FOR UPDATE SKIP LOCKED; "
                     "UPDATE status=1; COMMIT; no-op; UPDATE status=2 (autocommit); partial "
                     "index (seq) WHERE status=0, analysed once filled; synchronous_commit on; "
                     "its clock starts once every thread is connected");
    bench_note("pg", "work: timed from jm_start to the return of jm_stop, all jobs verified "
                     "completed with jm_count");
    bench_note("pg", "the issue's work target is >= 2x graphile-worker tuned at 2 workers "
                     "(14.5-22k jobs/s here); run ../shared/peers beside this for that figure");
    return 0;
}
