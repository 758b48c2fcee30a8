/*
 * The scenarios of jm-bench and the baselines they compare against. Each
 * scenario takes the options, reports its rows with bench_report() and
 * returns 0, or non-zero when it could not run or found the library
 * misbehaving (it has then called bench_fail()).
 */
#ifndef JM_BENCH_SCENARIOS_H
#define JM_BENCH_SCENARIOS_H

#include "bench_util.h"

/* Baselines: plain SQLite with the library's journal and sync settings. */

/* The most connections a raw-insert database opens (one per thread). */
#define RAW_MAX_CONNS 64

/* A fresh raw-insert database in `dir` (WAL, synchronous "FULL" or
 * "NORMAL"), with `conns` connections to it, and the rows to put into it
 * in steps, so that a scenario can interleave it finely with the library. */
typedef struct bench_raw bench_raw;
bench_raw *raw_open(const char *dir, const char *synchronous, int conns);
/* Inserts n more job-sized rows on the first connection, per_tx rows per
 * transaction: the nanoseconds it took, negative on error. */
int64_t raw_insert(bench_raw *r, long n, long per_tx);
/* Inserts n more rows, one per transaction, from as many threads as the
 * database has connections, each on its own, each a share of n: the
 * nanoseconds from the first thread's start to the last one's end,
 * negative on error. */
int64_t raw_insert_threads(bench_raw *r, long n);
/* Closes it and removes the files. */
void raw_close(bench_raw *r);
/* Rows/s inserting n rows, per_tx per transaction, into a fresh database
 * in `dir`. Negative on error. */
double raw_insert_rate(const char *dir, const char *synchronous, long n, long per_tx);
/* The lean batched baseline: raw_insert_rate with synchronous=FULL, as
 * jm_create_many commits under JM_DURABLE_SYNC. */
double raw_batch_rate(const char *dir, long n, long per_tx);
/* Jobs/s of a hand-written queue: n jobs worked by `threads` threads with
 * their own connections. Negative on error. */
double naive_queue_rate(const char *dir, long n, int threads);

int scn_raw_insert(const bench_opts *o);
int scn_naive_queue(const bench_opts *o);
int scn_enqueue(const bench_opts *o);
int scn_work(const bench_opts *o);
int scn_latency(const bench_opts *o);
int scn_scale(const bench_opts *o);
int scn_memory(const bench_opts *o);
int scn_prune(const bench_opts *o);
int scn_schedule(const bench_opts *o);
int scn_blocked(const bench_opts *o);

/* Library work rate (jobs/s): n pre-inserted no-op jobs, whose executor
 * counts into `c`, worked to completion by `workers` workers (jm_start to
 * jm_stop), then checked with jm_count: every job of the table must be
 * completed. Used by work and scale. Negative on error (reported under
 * `scenario`). */
double lib_work_rate(const char *scenario, jm_manager *m, bu_counter *c, long n, int workers);

/* The hidden child process of the memory scenario: measures one manager's
 * RSS and prints it. argv after "--child-rss". */
int memory_child(int argc, char **argv);

/* --callgrind: the fixed workload, no timing. */
int callgrind_run(const bench_opts *o);

#endif
