/*
 * The raw libpq baselines of the pg scenario (its helpers: bench_pg.c).
 *
 * Raw inserts put a job-shaped row into one table (a bigserial key and a
 * time-ordered text id with a UNIQUE index, type, status, ~50 bytes of
 * JSON parameters, limits, timestamps) with a prepared statement, one per
 * call in autocommit or many between BEGIN and COMMIT, under the
 * synchronous_commit of the library mode they are compared with. Like the
 * SQLite raw-insert, it is what the server costs at least, not a design.
 *
 * The queue is what a user would write on PostgreSQL: N threads, each on
 * its own connection, take the oldest waiting row with FOR UPDATE SKIP
 * LOCKED and mark it taken in one transaction, run the job (a no-op), then
 * mark it done in autocommit; synchronous_commit on throughout.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios.h"

struct bpg_raw {
    PGconn *conn;
    char schema[BPG_SCHEMA_SIZE];
    long next; /* rows inserted so far: the parameters' counter */
};

static const char raw_table_sql[] =
    "CREATE TABLE raw_jobs (seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, "
    "type text NOT NULL, status int NOT NULL, params text, created_at bigint NOT NULL, "
    "updated_at bigint NOT NULL, run_at bigint NOT NULL, max_retries int, priority int)";

static const char raw_insert_sql[] =
    "INSERT INTO raw_jobs (id, type, status, params, created_at, updated_at, run_at, "
    "max_retries, priority) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/* The queue: state 0 waiting, 1 taken, 2 done. The waiting rows have a
 * partial index, and the table is analysed once filled: with an index on
 * (status, seq) and no statistics until autovacuum's ANALYZE came mid-run,
 * the planner switched to scanning the primary key past every done row,
 * and that run went quadratic (about three times slower than the others). */
static const char queue_table_sql[] =
    "CREATE TABLE raw_q (seq bigserial PRIMARY KEY, status int NOT NULL, payload text NOT NULL, "
    "created_at bigint NOT NULL, updated_at bigint NOT NULL)";
static const char queue_index_sql[] = "CREATE INDEX raw_q_waiting ON raw_q (seq) WHERE status = 0";
static const char queue_analyze_sql[] = "ANALYZE raw_q";
static const char queue_fill_sql[] =
    "INSERT INTO raw_q (status, payload, created_at, updated_at) "
    "SELECT 0, $1, $2, $2 FROM generate_series(1, $3)";
static const char queue_pick_sql[] =
    "SELECT seq FROM raw_q WHERE status = 0 ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED";
static const char queue_take_sql[] = "UPDATE raw_q SET status = 1, updated_at = $2 WHERE seq = $1";
static const char queue_done_sql[] = "UPDATE raw_q SET status = 2, updated_at = $2 WHERE seq = $1";
static const char queue_left_sql[] = "SELECT count(*) FROM raw_q WHERE status <> $1";

static const char *sync_sql(int sync_commit)
{
    return sync_commit ? "SET synchronous_commit TO on" : "SET synchronous_commit TO off";
}

bpg_raw *bpg_raw_open(const char *url, int sync_commit)
{
    bpg_raw *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    bpg_schema_name(r->schema);
    r->conn = bpg_connect(url);
    if (!r->conn || bpg_use_schema(r->conn, r->schema, 1) ||
        bpg_exec(r->conn, "synchronous_commit", sync_sql(sync_commit), 0, NULL) ||
        bpg_exec(r->conn, "creating raw_jobs", raw_table_sql, 0, NULL)) {
        bpg_raw_close(r);
        return NULL;
    }
    PGresult *res = bpg_check(r->conn, PQprepare(r->conn, "ins", raw_insert_sql, 9, NULL),
                              "preparing the raw insert");
    if (!res) {
        bpg_raw_close(r);
        return NULL;
    }
    PQclear(res);
    return r;
}

/* One row: as bench_raw's (baseline_raw.c), every value bound. */
static int insert_row(bpg_raw *r)
{
    char id[JM_JOB_ID_SIZE], params[96], now[24];
    bu_time_ordered_id("BR", id);
    bu_job_params(params, sizeof params, r->next++);
    snprintf(now, sizeof now, "%lld", (long long)bu_wall_ms());
    const char *v[] = {id, "BR", "1", params, now, now, now, "3", "0"};
    PGresult *res = bpg_check(r->conn, PQexecPrepared(r->conn, "ins", 9, v, NULL, NULL, 0),
                              "raw insert");
    PQclear(res);
    return res ? 0 : 1;
}

int64_t bpg_raw_insert(bpg_raw *r, long n, long per_tx)
{
    int64_t t0 = bu_mono_ns();
    for (long done = 0; done < n;) {
        long k = n - done < per_tx ? n - done : per_tx;
        if (per_tx > 1 && bpg_exec(r->conn, "BEGIN", "BEGIN", 0, NULL))
            return -1;
        for (long i = 0; i < k; i++)
            if (insert_row(r))
                return -1;
        if (per_tx > 1 && bpg_exec(r->conn, "COMMIT", "COMMIT", 0, NULL))
            return -1;
        done += k;
    }
    return bu_mono_ns() - t0;
}

void bpg_raw_close(bpg_raw *r)
{
    if (!r)
        return;
    if (r->conn)
        bpg_drop_schema_on(r->conn, r->schema);
    PQfinish(r->conn);
    free(r);
}

/* --- The hand-written queue ----------------------------------------------- */

typedef struct queue_shared {
    const char *url;
    const char *schema;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int ready; /* threads connected (or failed to) */
    int go;    /* 1: run; -1: give up, a thread did not start */
    atomic_long done;
} queue_shared;

typedef struct queue_worker {
    queue_shared *sh;
    pthread_t tid;
    char err[BPG_ERR_SIZE];
} queue_worker;

static PGconn *queue_connect(queue_worker *w)
{
    PGconn *c = bpg_connect_quiet(w->sh->url, w->err, sizeof w->err);
    if (!c)
        return NULL;
    int ok = bpg_search_path(c, w->sh->schema, w->err, sizeof w->err) &&
             bpg_result_ok(c, PQexec(c, sync_sql(1)), "synchronous_commit", w->err,
                           sizeof w->err) &&
             bpg_result_ok(c, PQprepare(c, "pick", queue_pick_sql, 0, NULL), "prepare pick",
                           w->err, sizeof w->err) &&
             bpg_result_ok(c, PQprepare(c, "take", queue_take_sql, 2, NULL), "prepare take",
                           w->err, sizeof w->err) &&
             bpg_result_ok(c, PQprepare(c, "done", queue_done_sql, 2, NULL), "prepare done",
                           w->err, sizeof w->err);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Runs a prepared statement; 0 on success, the message in w->err else. */
static int queue_step(queue_worker *w, PGconn *c, const char *stmt, const char *const *v,
                      int n, PGresult **out)
{
    PGresult *res = PQexecPrepared(c, stmt, n, v, NULL, NULL, 0);
    if (!bpg_result_ok(c, res, stmt, w->err, sizeof w->err))
        return 1;
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

/* Takes the oldest waiting job, runs it and marks it done; *empty when none
 * was left. */
static int queue_one(queue_worker *w, PGconn *c, int *empty)
{
    PGresult *res = NULL;
    char seq[24], now[24];
    if (!bpg_result_ok(c, PQexec(c, "BEGIN"), "BEGIN", w->err, sizeof w->err) ||
        queue_step(w, c, "pick", NULL, 0, &res))
        return 1;
    *empty = PQntuples(res) == 0;
    if (!*empty)
        snprintf(seq, sizeof seq, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    snprintf(now, sizeof now, "%lld", (long long)bu_wall_ms());
    const char *v[] = {seq, now};
    if ((!*empty && queue_step(w, c, "take", v, 2, NULL)) ||
        !bpg_result_ok(c, PQexec(c, "COMMIT"), "COMMIT", w->err, sizeof w->err))
        return 1;
    if (*empty)
        return 0;
    atomic_fetch_add(&w->sh->done, 1); /* the no-op job */
    snprintf(now, sizeof now, "%lld", (long long)bu_wall_ms());
    return queue_step(w, c, "done", v, 2, NULL);
}

/* Everyone connects first: the clock starts when all are ready. */
static int gate_wait(queue_shared *sh)
{
    pthread_mutex_lock(&sh->lock);
    sh->ready++;
    pthread_cond_broadcast(&sh->cv);
    while (!sh->go)
        pthread_cond_wait(&sh->cv, &sh->lock);
    int go = sh->go;
    pthread_mutex_unlock(&sh->lock);
    return go > 0;
}

static void gate_open(queue_shared *sh, int started, int go)
{
    pthread_mutex_lock(&sh->lock);
    while (sh->ready < started)
        pthread_cond_wait(&sh->cv, &sh->lock);
    sh->go = go;
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->lock);
}

static void *queue_thread(void *arg)
{
    queue_worker *w = arg;
    PGconn *c = queue_connect(w);
    int empty = !gate_wait(w->sh);
    while (c && !empty && queue_one(w, c, &empty) == 0)
        ;
    PQfinish(c);
    return NULL;
}

/* A fresh schema holding n waiting jobs; 0 on success. */
static int queue_setup(const char *url, const char *schema, long n)
{
    PGconn *c = bpg_connect(url);
    char params[96], now[24], count[24];
    bu_job_params(params, sizeof params, 0);
    snprintf(now, sizeof now, "%lld", (long long)bu_wall_ms());
    snprintf(count, sizeof count, "%ld", n);
    const char *v[] = {params, now, count};
    int rc = !c || bpg_use_schema(c, schema, 1) ||
             bpg_exec(c, "creating raw_q", queue_table_sql, 0, NULL) ||
             bpg_exec(c, "indexing raw_q", queue_index_sql, 0, NULL) ||
             bpg_exec(c, "filling raw_q", queue_fill_sql, 3, v) ||
             bpg_exec(c, "analysing raw_q", queue_analyze_sql, 0, NULL);
    PQfinish(c);
    return rc;
}

/* Every job done, none twice: 0 if so. */
static int queue_verify(const char *url, const char *schema, long n, long runs)
{
    PGconn *c = bpg_connect(url);
    const char *v[] = {"2"};
    PGresult *res = c && bpg_use_schema(c, schema, 0) == 0
                        ? bpg_check(c, PQexecParams(c, queue_left_sql, 1, NULL, v, NULL, NULL, 0),
                                    "counting raw_q")
                        : NULL;
    int counted = res != NULL;
    long left = counted ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    PQfinish(c);
    if (counted && (left != 0 || runs != n))
        bench_fail("pg", "raw queue: %ld runs for %ld jobs, %ld not done", runs, n, left);
    return counted && left == 0 && runs == n ? 0 : 1;
}

double bpg_queue_rate(const char *url, long n, int threads)
{
    char schema[BPG_SCHEMA_SIZE];
    bpg_schema_name(schema);
    queue_shared sh = {.url = url, .schema = schema};
    pthread_mutex_init(&sh.lock, NULL);
    pthread_cond_init(&sh.cv, NULL);
    atomic_init(&sh.done, 0);
    queue_worker *w = calloc((size_t)threads, sizeof *w);
    double rate = -1;
    int started = 0, failed = 0;
    if (!w || queue_setup(url, schema, n))
        goto done;
    for (; started < threads; started++) {
        w[started].sh = &sh;
        if (pthread_create(&w[started].tid, NULL, queue_thread, &w[started]) != 0)
            break;
    }
    if (started < threads) {
        bench_fail("pg", "raw queue: could not start a thread");
        failed = 1;
    }
    gate_open(&sh, started, failed ? -1 : 1);
    int64_t t0 = bu_mono_ns();
    for (int i = 0; i < started; i++)
        pthread_join(w[i].tid, NULL);
    double secs = bu_seconds_since(t0);
    for (int i = 0; i < started; i++) {
        if (w[i].err[0]) {
            bench_fail("pg", "raw queue: %s", w[i].err);
            failed = 1;
        }
    }
    if (!failed && queue_verify(url, schema, n, atomic_load(&sh.done)) == 0)
        rate = (double)n / secs;
done:
    bpg_drop_schema(url, schema);
    pthread_mutex_destroy(&sh.lock);
    pthread_cond_destroy(&sh.cv);
    free(w);
    return rate;
}
