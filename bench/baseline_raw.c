/*
 * The physical reference for enqueueing: plain SQLite inserts of a
 * job-sized row into one table (an integer rowid and a time-ordered text
 * id with a UNIQUE index, type, status, ~50 bytes of JSON parameters,
 * limits and timestamps), in WAL mode with the synchronous setting of the
 * library mode it is compared with (FULL for JM_DURABLE_SYNC, NORMAL for
 * JM_DURABLE_PROCESS), SQLite's other settings at their defaults. It has
 * none of the library's other indexes: it is what the disk and SQLite
 * cost at least, not a competing design.
 *
 * One row per transaction can run from several threads, each on its own
 * connection to the one file (raw_insert_threads); batched inserts run on
 * one connection, on a fresh file per run (raw_batch_rate).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios.h"

/* A connection's busy wait: when it began, and its own random sequence. */
typedef struct raw_busy {
    int64_t since_ns;
    unsigned seed;
} raw_busy;

struct bench_raw {
    char *path;
    int nconns;
    sqlite3 *db[RAW_MAX_CONNS];
    sqlite3_stmt *ins[RAW_MAX_CONNS];
    raw_busy busy[RAW_MAX_CONNS];
    long next; /* rows inserted so far: the parameters' counter */
};

static const char raw_schema[] =
    "CREATE TABLE raw_jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
    "type TEXT NOT NULL, status INTEGER NOT NULL, params TEXT NOT NULL, "
    "max_retries INTEGER NOT NULL, priority INTEGER NOT NULL, "
    "created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, run_at INTEGER NOT NULL)";

static const char raw_insert_sql[] =
    "INSERT INTO raw_jobs (id, type, status, params, max_retries, priority, created_at, "
    "updated_at, run_at) VALUES (?1, 'BR', 1, ?2, 3, 0, ?3, ?3, ?3)";

/* Waiting for another connection's write lock the library's way (src/store
 * /sqlite/sqlite_store.c): sleeps of random length from 0.2 to 2 ms, for
 * up to the busy timeout. SQLite's own busy timeout backs off to 100 ms
 * sleeps, under which many writers leave the lock idle most of the time:
 * a baseline weaker than what the library itself does. */
static int busy_wait(void *arg, int count)
{
    raw_busy *b = arg;
    int64_t now = bu_mono_ns();
    if (count == 0)
        b->since_ns = now;
    if (now - b->since_ns >= (int64_t)JM_DEFAULT_BUSY_TIMEOUT_MS * 1000000)
        return 0;
    bu_sleep_us(200 + (long)(rand_r(&b->seed) % 1800));
    return 1;
}

void raw_close(bench_raw *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nconns; i++) {
        sqlite3_finalize(r->ins[i]);
        sqlite3_close(r->db[i]);
    }
    if (r->path)
        bu_remove_db(r->path);
    free(r->path);
    free(r);
}

bench_raw *raw_open(const char *dir, const char *synchronous, int conns)
{
    if (conns < 1 || conns > RAW_MAX_CONNS)
        return NULL;
    bench_raw *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->path = bu_db_path(dir, "raw");
    for (int i = 0; r->path && i < conns; i++) {
        r->db[i] = bu_sqlite_open(r->path, synchronous);
        if (!r->db[i])
            break;
        r->nconns = i + 1;
        r->busy[i].seed = (unsigned)bu_mono_ns() ^ (unsigned)(i * 2654435761u);
        sqlite3_busy_handler(r->db[i], busy_wait, &r->busy[i]);
        /* The schema, and the log it went into, before anything is timed. */
        if (i == 0 && (bu_exec(r->db[0], raw_schema) ||
                       bu_exec(r->db[0], "PRAGMA wal_checkpoint(TRUNCATE)")))
            break;
        if (sqlite3_prepare_v2(r->db[i], raw_insert_sql, -1, &r->ins[i], NULL) != SQLITE_OK) {
            fprintf(stderr, "jm-bench: raw insert: %s\n", sqlite3_errmsg(r->db[i]));
            break;
        }
    }
    if (r->nconns < conns || !r->ins[conns - 1]) {
        raw_close(r);
        return NULL;
    }
    return r;
}

/* n rows on connection c, per_tx per transaction, parameters counted from
 * first. 0 on success. */
static int insert_rows(bench_raw *r, int c, long first, long n, long per_tx)
{
    sqlite3 *db = r->db[c];
    sqlite3_stmt *ins = r->ins[c];
    for (long i = 0; i < n;) {
        long end = i + per_tx < n ? i + per_tx : n;
        if (per_tx > 1 && bu_exec(db, "BEGIN IMMEDIATE"))
            return -1;
        for (; i < end; i++) {
            char id[JM_JOB_ID_SIZE], params[96];
            bu_time_ordered_id("BR", id);
            bu_job_params(params, sizeof params, first + i);
            sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, params, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ins, 3, bu_wall_ms());
            int rc = sqlite3_step(ins);
            sqlite3_reset(ins);
            if (rc != SQLITE_DONE) {
                fprintf(stderr, "jm-bench: raw insert: %s\n", sqlite3_errmsg(db));
                if (per_tx > 1)
                    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                return -1;
            }
        }
        if (per_tx > 1 && bu_exec(db, "COMMIT"))
            return -1;
    }
    return 0;
}

int64_t raw_insert(bench_raw *r, long n, long per_tx)
{
    int64_t t0 = bu_mono_ns();
    if (insert_rows(r, 0, r->next, n, per_tx))
        return -1;
    r->next += n;
    return bu_mono_ns() - t0;
}

typedef struct raw_thread {
    bench_raw *r;
    int conn;
    long first, n;
    int rc;
} raw_thread;

static void *insert_thread(void *arg)
{
    raw_thread *t = arg;
    t->rc = insert_rows(t->r, t->conn, t->first, t->n, 1);
    return NULL;
}

int64_t raw_insert_threads(bench_raw *r, long n)
{
    pthread_t tid[RAW_MAX_CONNS];
    raw_thread t[RAW_MAX_CONNS];
    int started = 0, rc = 0;
    int64_t t0 = bu_mono_ns();
    for (int i = 0; i < r->nconns; i++) {
        long share = n / r->nconns + (i < n % r->nconns);
        t[i] = (raw_thread){r, i, r->next, share, 0};
        r->next += share;
        if (pthread_create(&tid[i], NULL, insert_thread, &t[i]) != 0) {
            rc = -1;
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        rc |= t[i].rc;
    }
    return rc ? -1 : bu_mono_ns() - t0;
}

double raw_insert_rate(const char *dir, const char *synchronous, long n, long per_tx)
{
    bench_raw *r = raw_open(dir, synchronous, 1);
    int64_t ns = r ? raw_insert(r, n, per_tx) : -1;
    raw_close(r);
    return ns > 0 ? (double)n * 1e9 / (double)ns : -1;
}

double raw_batch_rate(const char *dir, long n, long per_tx)
{
    return raw_insert_rate(dir, "FULL", n, per_tx);
}

int scn_raw_insert(const bench_opts *o)
{
    if (bench_selected("enqueue")) {
        bench_note("raw-insert", "measured inside the enqueue scenario, beside the library; "
                                 "see its rows here");
        return 0;
    }
    double full[64], normal[64], batch[64];
    int reps = o->reps > 64 ? 64 : o->reps;
    int many_reps = o->enqueue_many_reps > 64 ? 64 : o->enqueue_many_reps;
    for (int r = 0; r < reps; r++) {
        full[r] = raw_insert_rate(o->dir, "FULL", o->enqueue_single, 1);
        normal[r] = raw_insert_rate(o->dir, "NORMAL", o->enqueue_single, 1);
        if (full[r] < 0 || normal[r] < 0) {
            bench_fail("raw-insert", "plain SQLite inserts failed");
            return 1;
        }
    }
    /* A warm-up run of full size first, not counted (see scn_enqueue.c). */
    if (raw_batch_rate(o->dir, o->enqueue_many, o->enqueue_batch) < 0)
        many_reps = 0;
    for (int r = 0; r < many_reps; r++) {
        batch[r] = raw_batch_rate(o->dir, o->enqueue_many, o->enqueue_batch);
        if (batch[r] < 0) {
            bench_fail("raw-insert", "plain SQLite inserts failed");
            return 1;
        }
    }
    if (many_reps == 0) {
        bench_fail("raw-insert", "plain SQLite inserts failed");
        return 1;
    }
    char metric[96];
    snprintf(metric, sizeof metric, "FULL, 1 per transaction (%ld rows)", o->enqueue_single);
    bench_report("raw-insert", metric, bu_median(full, (size_t)reps), "rows/s", NAN, NULL, NULL,
                 BENCH_NO_TARGET);
    snprintf(metric, sizeof metric, "NORMAL, 1 per transaction (%ld rows)", o->enqueue_single);
    bench_report("raw-insert", metric, bu_median(normal, (size_t)reps), "rows/s", NAN, NULL,
                 NULL, BENCH_NO_TARGET);
    double lo = bu_min(batch, (size_t)many_reps), hi = bu_max(batch, (size_t)many_reps);
    double med = bu_median(batch, (size_t)many_reps);
    snprintf(metric, sizeof metric, "lean, FULL, %ld per transaction (%ld rows)", o->enqueue_batch,
             o->enqueue_many);
    bench_report("raw-insert", metric, med, "rows/s", NAN, NULL, NULL, BENCH_NO_TARGET);
    bench_report("raw-insert", "lean batched: spread (max - min) / median", 100 * (hi - lo) / med,
                 "%", NAN, NULL, NULL, BENCH_NO_TARGET);
    bench_note("raw-insert", "lean batched: median of %d runs on fresh files after a warm-up, "
                             "%.0f to %.0f rows/s", many_reps, lo, hi);
    bench_note("raw-insert", "one table: rowid + id TEXT UNIQUE (time-ordered uuid) + job columns, "
                             "~50-byte params; WAL");
    return 0;
}
