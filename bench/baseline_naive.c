/*
 * What a user would write instead of the library: a jobs table with a
 * status index, and N threads, each with its own connection, that take
 * the oldest queued job in a BEGIN IMMEDIATE transaction, mark it running,
 * commit, run it (a no-op) and mark it completed in a second transaction.
 * WAL, synchronous=FULL and a busy timeout, as the library for its
 * creates and completions. No batching, no group commit: the point.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios.h"

typedef struct naive_shared {
    const char *path;
    atomic_long done;
    atomic_int error;
} naive_shared;

static int step_done(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "jm-bench: naive queue: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    return 0;
}

/* Takes one job; *id = 0 when the queue is empty. Retries on SQLITE_BUSY
 * beyond the busy timeout, as a careful user would. */
static int take_one(sqlite3 *db, sqlite3_stmt *begin, sqlite3_stmt *pick, sqlite3_stmt *mark,
                    sqlite3_stmt *commit, sqlite3_stmt *rollback, sqlite3_int64 *id)
{
    *id = 0;
    int rc;
    while ((rc = sqlite3_step(begin)) == SQLITE_BUSY)
        sqlite3_reset(begin);
    sqlite3_reset(begin);
    if (rc != SQLITE_DONE)
        return 1;
    rc = sqlite3_step(pick);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(pick, 0);
    sqlite3_reset(pick);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        goto fail;
    if (*id) {
        sqlite3_bind_int64(mark, 1, bu_wall_ms());
        sqlite3_bind_int64(mark, 2, *id);
        if (step_done(db, mark))
            goto fail;
    }
    while ((rc = sqlite3_step(commit)) == SQLITE_BUSY)
        sqlite3_reset(commit);
    sqlite3_reset(commit);
    return rc == SQLITE_DONE ? 0 : 1;
fail:
    step_done(db, rollback);
    return 1;
}

static void *naive_worker(void *arg)
{
    naive_shared *sh = arg;
    sqlite3 *db = bu_sqlite_open(sh->path, "FULL");
    sqlite3_stmt *begin = NULL, *pick = NULL, *mark = NULL, *commit = NULL, *rollback = NULL,
                 *complete = NULL;
    if (!db ||
        sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT id, payload FROM jobs WHERE status = 'queued' "
                               "ORDER BY id LIMIT 1", -1, &pick, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE jobs SET status = 'running', updated_at = ?1 "
                               "WHERE id = ?2", -1, &mark, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "ROLLBACK", -1, &rollback, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE jobs SET status = 'completed', updated_at = ?1 "
                               "WHERE id = ?2", -1, &complete, NULL) != SQLITE_OK) {
        atomic_store(&sh->error, 1);
        goto done;
    }
    for (;;) {
        sqlite3_int64 id;
        if (take_one(db, begin, pick, mark, commit, rollback, &id)) {
            atomic_store(&sh->error, 1);
            break;
        }
        if (!id)
            break;
        /* The job: nothing. Then its completion, in its own transaction. */
        sqlite3_bind_int64(complete, 1, bu_wall_ms());
        sqlite3_bind_int64(complete, 2, id);
        int rc;
        while ((rc = sqlite3_step(complete)) == SQLITE_BUSY)
            sqlite3_reset(complete);
        sqlite3_reset(complete);
        if (rc != SQLITE_DONE) {
            atomic_store(&sh->error, 1);
            break;
        }
        atomic_fetch_add(&sh->done, 1);
    }
done:
    sqlite3_finalize(begin);
    sqlite3_finalize(pick);
    sqlite3_finalize(mark);
    sqlite3_finalize(commit);
    sqlite3_finalize(rollback);
    sqlite3_finalize(complete);
    sqlite3_close(db);
    return NULL;
}

double naive_queue_rate(const char *dir, long n, int threads)
{
    char *path = bu_db_path(dir, "naive");
    sqlite3 *db = path ? bu_sqlite_open(path, "FULL") : NULL;
    sqlite3_stmt *ins = NULL;
    pthread_t tids[JM_MAX_WORKERS];
    double rate = -1;
    if (!db)
        goto done;
    if (bu_exec(db, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, "
                    "payload TEXT NOT NULL, created_at INTEGER NOT NULL, "
                    "updated_at INTEGER NOT NULL)") ||
        bu_exec(db, "CREATE INDEX jobs_status ON jobs(status, id)") ||
        sqlite3_prepare_v2(db, "INSERT INTO jobs (status, payload, created_at, updated_at) "
                               "VALUES ('queued', ?1, ?2, ?2)", -1, &ins, NULL) != SQLITE_OK ||
        bu_exec(db, "BEGIN"))
        goto done;
    for (long i = 0; i < n; i++) {
        char params[96];
        bu_job_params(params, sizeof params, i);
        sqlite3_bind_text(ins, 1, params, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 2, bu_wall_ms());
        if (step_done(db, ins))
            goto done;
    }
    if (bu_exec(db, "COMMIT"))
        goto done;

    naive_shared sh = {.path = path};
    atomic_init(&sh.done, 0);
    atomic_init(&sh.error, 0);
    int64_t t0 = bu_mono_ns();
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, naive_worker, &sh) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    double secs = bu_seconds_since(t0);
    if (started < threads || atomic_load(&sh.error) || atomic_load(&sh.done) != n) {
        fprintf(stderr, "jm-bench: naive queue: %ld of %ld jobs done\n", atomic_load(&sh.done), n);
        goto done;
    }
    rate = (double)n / secs;
done:
    sqlite3_finalize(ins);
    sqlite3_close(db);
    if (path)
        bu_remove_db(path);
    free(path);
    return rate;
}

int scn_naive_queue(const bench_opts *o)
{
    if (bench_selected("work")) {
        bench_note("naive-queue", "measured inside the work scenario, interleaved with it rep "
                                  "by rep; see its rows here");
        return 0;
    }
    int reps = o->reps > 64 ? 64 : o->reps;
    for (int t = 0; t < o->nthreads; t++) {
        double v[64];
        for (int r = 0; r < reps; r++) {
            v[r] = naive_queue_rate(o->dir, o->naive_jobs, o->threads[t]);
            if (v[r] < 0) {
                bench_fail("naive-queue", "the naive queue failed at %d threads", o->threads[t]);
                return 1;
            }
        }
        char metric[64];
        snprintf(metric, sizeof metric, "jobs/s, %d thread(s)", o->threads[t]);
        bench_report("naive-queue", metric, bu_median(v, (size_t)reps), "jobs/s", NAN, NULL,
                     NULL, BENCH_NO_TARGET);
    }
    bench_note("naive-queue", "%ld jobs per run; jobs(id INTEGER PRIMARY KEY, status, payload, "
                              "created_at, updated_at) + index (status, id); WAL, FULL",
               o->naive_jobs);
    return 0;
}
