/*
 * The physical reference for enqueueing: plain SQLite inserts of a
 * job-sized row into one table (an integer rowid and a time-ordered text
 * id with a UNIQUE index, type, status, ~50 bytes of JSON parameters,
 * limits and timestamps), WAL and synchronous=FULL as jm_create uses.
 * It has none of the library's other indexes: it is what the disk and
 * SQLite cost at least, not a competing design.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <stdio.h>
#include <math.h>
#include <stdlib.h>

#include "scenarios.h"

struct bench_raw {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *ins;
    long next; /* rows inserted so far */
};

void raw_close(bench_raw *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->ins);
    sqlite3_close(r->db);
    if (r->path)
        bu_remove_db(r->path);
    free(r->path);
    free(r);
}

bench_raw *raw_open(const char *dir)
{
    bench_raw *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->path = bu_db_path(dir, "raw");
    r->db = r->path ? bu_sqlite_open(r->path, "FULL") : NULL;
    if (!r->db ||
        bu_exec(r->db, "CREATE TABLE raw_jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
                       "type TEXT NOT NULL, status INTEGER NOT NULL, params TEXT NOT NULL, "
                       "max_retries INTEGER NOT NULL, priority INTEGER NOT NULL, "
                       "created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
                       "run_at INTEGER NOT NULL)") ||
        sqlite3_prepare_v2(r->db,
                           "INSERT INTO raw_jobs (id, type, status, params, max_retries, "
                           "priority, created_at, updated_at, run_at) "
                           "VALUES (?1, 'BR', 1, ?2, 3, 0, ?3, ?3, ?3)",
                           -1, &r->ins, NULL) != SQLITE_OK) {
        raw_close(r);
        return NULL;
    }
    return r;
}

int64_t raw_insert(bench_raw *r, long n, long per_tx)
{
    int64_t t0 = bu_mono_ns();
    for (long i = 0; i < n;) {
        long end = i + per_tx < n ? i + per_tx : n;
        if (per_tx > 1 && bu_exec(r->db, "BEGIN IMMEDIATE"))
            return -1;
        for (; i < end; i++) {
            char id[JM_JOB_ID_SIZE], params[96];
            bu_time_ordered_id("BR", id);
            bu_job_params(params, sizeof params, r->next++);
            int64_t now = bu_wall_ms();
            sqlite3_bind_text(r->ins, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(r->ins, 2, params, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(r->ins, 3, now);
            int rc = sqlite3_step(r->ins);
            sqlite3_reset(r->ins);
            if (rc != SQLITE_DONE) {
                fprintf(stderr, "jm-bench: raw insert: %s\n", sqlite3_errmsg(r->db));
                return -1;
            }
        }
        if (per_tx > 1 && bu_exec(r->db, "COMMIT"))
            return -1;
    }
    return bu_mono_ns() - t0;
}

double raw_insert_rate(const char *dir, long n, long per_tx)
{
    bench_raw *r = raw_open(dir);
    int64_t ns = r ? raw_insert(r, n, per_tx) : -1;
    raw_close(r);
    return ns > 0 ? (double)n * 1e9 / (double)ns : -1;
}

int scn_raw_insert(const bench_opts *o)
{
    if (bench_selected("enqueue")) {
        bench_note("raw-insert", "measured inside the enqueue scenario, interleaved with it "
                                 "chunk by chunk; see its rows here");
        return 0;
    }
    double single[64], batch[64];
    int reps = o->reps > 64 ? 64 : o->reps;
    for (int r = 0; r < reps; r++) {
        single[r] = raw_insert_rate(o->dir, o->enqueue_single, 1);
        batch[r] = raw_insert_rate(o->dir, o->enqueue_many, o->enqueue_batch);
        if (single[r] < 0 || batch[r] < 0) {
            bench_fail("raw-insert", "plain SQLite inserts failed");
            return 1;
        }
    }
    bench_report("raw-insert", "rows/s, 1 per transaction", bu_median(single, (size_t)reps),
                 "rows/s", NAN, NULL, NULL, BENCH_NO_TARGET);
    bench_report("raw-insert", "rows/s, 1000 per transaction", bu_median(batch, (size_t)reps),
                 "rows/s", NAN, NULL, NULL, BENCH_NO_TARGET);
    bench_note("raw-insert", "one table: rowid + id TEXT UNIQUE (time-ordered uuid) + job columns, "
                             "~50-byte params; WAL, synchronous=FULL");
    return 0;
}
