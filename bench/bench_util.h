/*
 * Shared pieces of jm-bench: the options, the result table every scenario
 * reports into, timing, medians and percentiles, temporary directories,
 * process memory and CPU figures, and a few SQLite helpers for baselines
 * and set-up. Nothing here measures anything by itself.
 */
#ifndef JM_BENCH_UTIL_H
#define JM_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include <jobmgr.h>

/* Sizes of every scenario; --quick replaces the defaults with small ones
 * and each has its own command-line option (main.c lists them). */
typedef struct bench_opts {
    int reps;
    int quick;
    int json;
    const char *dir;          /* where databases go (exists, ours to fill) */
    long enqueue_single;      /* jm_create one per call */
    long enqueue_many;        /* jm_create_many, batches of enqueue_batch */
    long enqueue_batch;
    int enqueue_threads;      /* threads of the many-thread jm_create run */
    int enqueue_many_reps;    /* runs of jm_create_many and of its baseline */
    long work_jobs;           /* pre-inserted no-op jobs per work run */
    long naive_jobs;          /* jobs per naive-queue run */
    int threads[8];           /* worker / thread counts for work and naive */
    int nthreads;
    long latency_jobs;
    long latency_gap_us;
    long latency_poll_ms;     /* poll_interval_ms of the cross-process run */
    long scale_sizes[4];      /* finished jobs already in the table */
    int nscale;
    long scale_work_jobs;     /* jobs enqueued (batched) then worked per point */
    long scale_single_jobs;   /* single creates per point */
    int list_calls;           /* calls per jm_list / jm_count median */
    long memory_jobs;
    double idle_seconds;
    long prune_jobs;
    long schedules;           /* schedules of the schedule scenario */
    long schedule_interval_s; /* ... and their interval */
    long callgrind_jobs;
    long callgrind_many_jobs; /* jm_create_many rows of the callgrind workload */
    const char *pg_url;       /* the pg scenario's server; NULL: it is skipped */
    long pg_create_jobs;      /* pg: jm_create one per call, each durability */
    long pg_many_jobs;        /* pg: jm_create_many, batches of enqueue_batch */
    long pg_work_jobs;        /* pg: pre-inserted no-op jobs per work run */
    long pg_pickup_samples;   /* pg: spaced creates of each pickup run */
} bench_opts;

/* Which baseline rows a scenario should produce itself: a baseline that a
 * library scenario also runs (interleaved) is reported by that scenario. */
int bench_selected(const char *scenario);

/* --- Results ---------------------------------------------------------- */

#define BENCH_NO_TARGET (-1)

/* One line of a scenario's table. `ratio` is NaN when there is no
 * baseline; `met` is 1 or 0 against `target`, or BENCH_NO_TARGET. */
typedef struct bench_row {
    char scenario[24];
    char metric[96];
    double value;
    char unit[16];
    double ratio;
    char ratio_to[64];
    char target[64];
    int met;
} bench_row;

/* Adds a row (copied). Pass ratio NaN and ratio_to NULL without baseline,
 * target NULL and met BENCH_NO_TARGET without target. */
void bench_report(const char *scenario, const char *metric, double value, const char *unit,
                  double ratio, const char *ratio_to, const char *target, int met);
/* A free-text note printed under a scenario's table (and in the JSON). */
void bench_note(const char *scenario, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A scenario failed or found a library problem: printed, and the exit
 * status becomes non-zero. */
void bench_fail(const char *scenario, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Progress lines on stderr (quiet with --json unless verbose). */
void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- Time, statistics ------------------------------------------------- */

int64_t bu_mono_ns(void);
double bu_seconds_since(int64_t start_ns);
void bu_sleep_us(long us);
/* Median of v[0..n) (sorts v). NaN for n == 0. */
double bu_median(double *v, size_t n);
/* p-th percentile (0..100) of v[0..n) by nearest rank (sorts v). */
double bu_percentile(double *v, size_t n, double p);
double bu_max(const double *v, size_t n);
double bu_min(const double *v, size_t n);

/* --- Files, memory, CPU ----------------------------------------------- */

/* Creates a fresh directory under `parent`; returns a malloc'd path. */
char *bu_mkdtemp(const char *parent, const char *prefix);
/* Removes a directory tree (best effort). */
void bu_rm_rf(const char *path);
/* "<dir>/<name>" in a malloc'd string. */
char *bu_path(const char *dir, const char *name);
/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"); -1 if absent. */
long bu_status_kib(const char *field);
/* User + system CPU seconds of the whole process (every thread). */
double bu_cpu_seconds(void);

/* --- Jobs and SQLite helpers ------------------------------------------ */

/* The parameters every benchmark job carries: a small JSON object of
 * about 50 bytes, written into buf (at least 96 bytes). */
void bu_job_params(char *buf, size_t len, long i);
/* A time-ordered id like the library's: "<type>-" and a UUID whose first
 * 48 bits are the milliseconds since the epoch. */
void bu_time_ordered_id(const char *type, char out[JM_JOB_ID_SIZE]);
/* Opens a connection with the library's settings: WAL, the given
 * synchronous mode ("FULL", "NORMAL"), busy timeout 5 s. NULL on error
 * (printed). */
sqlite3 *bu_sqlite_open(const char *path, const char *synchronous);
/* Runs SQL, printing and returning non-zero on error. */
int bu_exec(sqlite3 *db, const char *sql);

/* A jobmgr config for benchmarks: logging only errors. */
jm_config bu_config(const char *db_path);
/* A no-op executor of `type` whose runs bump *counter (an _Atomic long
 * behind a pointer) and wake bu_wait_count(). */
typedef struct bu_counter bu_counter;
bu_counter *bu_counter_new(long target);
void bu_counter_free(bu_counter *c);
long bu_counter_value(bu_counter *c);
/* Sets the count to 0 and a new target; only while no executor runs. */
void bu_counter_reset(bu_counter *c, long target);
/* Counts one run, waking the waiter when the target is reached. */
void bu_counter_bump(bu_counter *c);
/* Waits until the counter reaches its target or `timeout_s` passes;
 * returns 0 if reached. */
int bu_counter_wait(bu_counter *c, double timeout_s);
int bu_register_noop(jm_manager *m, const char *type, bu_counter *c);
/* Every job created is in the table, once: 0, or 1 after reporting the
 * difference as a failure of `scenario`. */
int bu_check_count(jm_manager *m, const char *scenario, long want, const char *what);
/* Creates n jobs of `type` with jm_create_many in batches of `batch`;
 * with `varied`, jobs get a namespace (ns-<i % 100>) and an idempotency
 * key (k-<i>), as a populated table would. Returns a jm_ code. */
int bu_fill(jm_manager *m, const char *type, long n, long batch, int varied, long first);
/* A named parameter of bu_update_in_chunks and its value. */
typedef struct bu_bind {
    const char *name;
    int64_t value;
} bu_bind;
/* Runs the UPDATE `sql` over the jobs of the file in chunks of seq
 * (:lo..:hi), with `binds` and :maxseq (the highest seq, at least 1)
 * bound, then checkpoints; for set-up only, while no manager has the file
 * open. `what` names the work in an error. Returns 0 on success. */
int bu_update_in_chunks(const char *db_path, const char *sql, const bu_bind *binds, size_t n,
                        const char *what);
/* Marks every queued job of the file completed (finished_at = `finished`)
 * with bu_update_in_chunks. Returns 0 on success. */
int bu_mark_completed(const char *db_path, int64_t finished);
int64_t bu_wall_ms(void);
/* Removes a database file and its -wal and -shm files. */
void bu_remove_db(const char *path);
/* A new database path "<dir>/<stem>-<n>.db" (malloc'd), unique per run. */
char *bu_db_path(const char *dir, const char *stem);

#endif
