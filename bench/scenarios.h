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
int scn_dashboard(const bench_opts *o);

/* The dashboard scenario's sizes, set by main.c from --dashboard-jobs,
 * --dashboard-requests and --dashboard-gap-ms (or their --quick defaults)
 * before any scenario runs. They sit here, not in bench_opts
 * (bench_util.h), so that adding the scenario touched no header the other
 * scenarios share; moving them there is mechanical. Its idle window is
 * bench_opts.idle_seconds, as the memory scenario's is. */
typedef struct dashboard_opts {
    long jobs;     /* jobs in the served table */
    long requests; /* requests per endpoint per repetition */
    long gap_ms;   /* mean pause between rounds of mixed requests */
} dashboard_opts;
extern dashboard_opts bench_dashboard;

/* Library work rate (jobs/s): n pre-inserted no-op jobs, whose executor
 * counts into `c`, worked to completion by `workers` workers (jm_start to
 * jm_stop), then checked with jm_count: every job of the table must be
 * completed. Used by work and scale. Negative on error (reported under
 * `scenario`). */
double lib_work_rate(const char *scenario, jm_manager *m, bu_counter *c, long n, int workers);

#ifdef JM_BENCH_PG
/* PostgreSQL (scn_pg*.c, baseline_pg.c, bench_pg.c). Every run uses a
 * fresh schema of --pg-url, dropped afterwards; errors are reported under
 * "pg" with bench_fail unless a function says otherwise. */
#include <libpq-fe.h>

/* "jmbench_<pid>_<n>" and its NUL: within the library's 48 characters. */
#define BPG_SCHEMA_SIZE 49
/* Room for one libpq error message. */
#define BPG_ERR_SIZE 512

/* bench_pg.c: helpers. A function that takes err reports nothing (so
 * threads may call it) and writes "what: message" there on error. */

/* A schema name not used before in this process. */
void bpg_schema_name(char out[BPG_SCHEMA_SIZE]);
/* A connection to url; NULL on error. */
PGconn *bpg_connect(const char *url);
PGconn *bpg_connect_quiet(const char *url, char *err, size_t len);
/* 1 if res is a success; else 0, with res cleared. */
int bpg_result_ok(PGconn *c, PGresult *res, const char *what, char *err, size_t len);
/* res if a success, for the caller to PQclear; NULL if not. */
PGresult *bpg_check(PGconn *c, PGresult *res, const char *what);
/* Runs one statement with n text parameters; 0 on success. */
int bpg_exec(PGconn *c, const char *what, const char *sql, int n, const char *const *values);
/* Sets c's search_path to schema: 1 on success. */
int bpg_search_path(PGconn *c, const char *schema, char *err, size_t len);
/* The same, creating the schema first with `create`: 0 on success. */
int bpg_use_schema(PGconn *c, const char *schema, int create);
/* DROP SCHEMA IF EXISTS ... CASCADE, on c or on a connection of its own;
 * 0 if done. */
int bpg_drop_schema_on(PGconn *c, const char *schema);
int bpg_drop_schema(const char *url, const char *schema);

/* baseline_pg.c: the raw baselines. */

/* Raw job-shaped inserts into a fresh schema, synchronous_commit on or off. */
typedef struct bpg_raw bpg_raw;
bpg_raw *bpg_raw_open(const char *url, int sync_commit);
/* n more rows, per_tx per transaction (1: autocommit): nanoseconds taken,
 * negative on error. */
int64_t bpg_raw_insert(bpg_raw *r, long n, long per_tx);
/* Drops its schema and disconnects. */
void bpg_raw_close(bpg_raw *r);
/* Jobs/s of a hand-written SKIP LOCKED queue: n jobs worked by `threads`
 * threads with their own connections. Negative on error. */
double bpg_queue_rate(const char *url, long n, int threads);

/* scn_pg.c, scn_pg_pickup.c: a library configuration for schema on url
 * (errors logged only). */
jm_config bpg_lib_config(const char *url, const char *schema);
/* The pickup rows: create-to-executor latency across nodes and in-process. */
int bpg_pickup(const bench_opts *o);
int scn_pg(const bench_opts *o);
#endif

/* The hidden child process of the memory scenario: measures one manager's
 * RSS and prints it. argv after "--child-rss". */
int memory_child(int argc, char **argv);

/* --callgrind: the fixed workload, no timing. */
int callgrind_run(const bench_opts *o);

#endif
