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

double raw_insert_rate(const char *dir, long n, long per_tx)
{
    char *path = bu_db_path(dir, "raw");
    sqlite3 *db = path ? bu_sqlite_open(path, "FULL") : NULL;
    sqlite3_stmt *ins = NULL;
    double rate = -1;
    if (!db)
        goto done;
    if (bu_exec(db, "CREATE TABLE raw_jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
                    "type TEXT NOT NULL, status INTEGER NOT NULL, params TEXT NOT NULL, "
                    "max_retries INTEGER NOT NULL, priority INTEGER NOT NULL, "
                    "created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
                    "run_at INTEGER NOT NULL)"))
        goto done;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO raw_jobs (id, type, status, params, max_retries, "
                           "priority, created_at, updated_at, run_at) "
                           "VALUES (?1, 'BR', 1, ?2, 3, 0, ?3, ?3, ?3)",
                           -1, &ins, NULL) != SQLITE_OK)
        goto done;
    int64_t t0 = bu_mono_ns();
    for (long i = 0; i < n;) {
        long end = i + per_tx < n ? i + per_tx : n;
        if (per_tx > 1 && bu_exec(db, "BEGIN IMMEDIATE"))
            goto done;
        for (; i < end; i++) {
            char id[JM_JOB_ID_SIZE], params[96];
            bu_time_ordered_id("BR", id);
            bu_job_params(params, sizeof params, i);
            int64_t now = bu_wall_ms();
            sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, params, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ins, 3, now);
            int rc = sqlite3_step(ins);
            sqlite3_reset(ins);
            if (rc != SQLITE_DONE) {
                fprintf(stderr, "jm-bench: raw insert: %s\n", sqlite3_errmsg(db));
                goto done;
            }
        }
        if (per_tx > 1 && bu_exec(db, "COMMIT"))
            goto done;
    }
    rate = (double)n / bu_seconds_since(t0);
done:
    sqlite3_finalize(ins);
    sqlite3_close(db);
    if (path)
        bu_remove_db(path);
    free(path);
    return rate;
}

int scn_raw_insert(const bench_opts *o)
{
    if (bench_selected("enqueue")) {
        bench_note("raw-insert", "measured inside the enqueue scenario, interleaved with it "
                                 "rep by rep; see its rows here");
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
