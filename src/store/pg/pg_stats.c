/*
 * The jobs table's side of jm_stats(): counts by type and status, the due
 * queue, running jobs and recent failures, read in one snapshot (a
 * read-only REPEATABLE READ transaction, which takes no row locks and so
 * never holds up claims or outcomes); and of jm_throughput(): finished
 * jobs by time bucket and status, one statement. It only reads; the
 * counters of runs, retries and durations live in the core
 * (src/core/stats.c).
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "error.h"
#include "pg_internal.h"

static const char counts_sql[] =
    "SELECT type, status, count(*) FROM jm_jobs GROUP BY type, status";

/* $1 now, $2 the start of the failure window. Due jobs come from the
 * three partial indexes of waiting jobs, never from the finished ones. */
static const char queue_sql[] =
    "SELECT due.n, due.oldest, "
    "(SELECT count(*) FROM jm_jobs WHERE status = 2), "
    "(SELECT count(*) FROM jm_jobs WHERE status = 5 AND finished_at >= $2) "
    "FROM (SELECT count(*) AS n, min(run_at) AS oldest FROM ("
    "  SELECT run_at FROM jm_jobs "
    "    WHERE status IN (1, 3) AND blocked_by IS NULL AND run_at <= $1 "
    "  UNION ALL "
    "  SELECT run_at FROM jm_jobs "
    "    WHERE status IN (1, 3) AND blocked_by IS NOT NULL AND run_at <= $1 "
    "  UNION ALL "
    "  SELECT run_at FROM jm_jobs WHERE status = 0 AND run_at <= $1) AS w) AS due";

/* $1 the window's start, $2 the bucket width, $3 the window's end.
 * "status BETWEEN 4 AND 6" is jm_jobs_finished's own predicate, so the
 * planner may read through it; finished_at >= $1, so the division
 * truncates toward the bucket's start. */
static const char throughput_sql[] =
    "SELECT (finished_at - $1) / $2 AS bucket, status, count(*) FROM jm_jobs "
    "WHERE status BETWEEN 4 AND 6 AND finished_at >= $1 AND finished_at < $3 "
    "GROUP BY bucket, status";

static int read_counts(jm__store *s, jm__store_stats *out)
{
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "counting jobs by type and status", counts_sql, NULL, &r);
    if (rc)
        return rc;
    size_t cap = 0;
    for (int i = 0; i < PQntuples(r) && rc == JM_OK; i++) {
        int64_t status = jm__pg_i64(r, i, 1);
        if (status < JM_STATUS_NEW || status > JM_STATUS_PAUSED)
            continue; /* the schema's CHECK forbids it; never index out of range */
        jm__type_status_count row = {{0}, (jm_status)status, jm__pg_i64(r, i, 2)};
        const char *type = jm__pg_str(r, i, 0);
        if (type && strlen(type) == 2)
            memcpy(row.type, type, 2);
        jm__type_status_count *v = jm__array_grow(out->rows, out->nrows, &cap, sizeof *v);
        if (!v) {
            rc = jm__seterr(JM_ENOMEM, "out of memory reading job counts");
            break;
        }
        out->rows = v;
        out->rows[out->nrows++] = row;
    }
    PQclear(r);
    return rc;
}

static int read_queue(jm__store *s, int64_t now, jm__store_stats *out)
{
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, now);
    jm__pg_p_i64(&p, now - JM__STATS_FAILED_WINDOW_MS);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading the job queue", queue_sql, &p, &r);
    if (rc)
        return rc;
    out->queue_depth = jm__pg_i64(r, 0, 0);
    out->oldest_due_run_at = jm__pg_i64(r, 0, 1); /* NULL reads as 0 */
    out->running = jm__pg_i64(r, 0, 2);
    out->failed_last_hour = jm__pg_i64(r, 0, 3);
    PQclear(r);
    return JM_OK;
}

int jm__pg_stats(jm__store *s, int64_t now, jm__store_stats *out)
{
    memset(out, 0, sizeof *out);
    int rc = jm__pg_begin(s, "beginning a read transaction");
    if (rc)
        return rc;
    if ((rc = jm__pg_exec(s, "beginning a read transaction",
                          "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")) ||
        (rc = read_counts(s, out)) || (rc = read_queue(s, now, out)) ||
        (rc = jm__pg_commit(s, "ending a read transaction"))) {
        char msg[JM_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "%s", jm_last_error());
        jm__pg_rollback(s);
        jm__free(out->rows);
        memset(out, 0, sizeof *out);
        return jm__seterr(rc, "%s", msg);
    }
    return JM_OK;
}

int jm__pg_throughput(jm__store *s, int64_t since, int64_t bucket_ms, jm_throughput_bucket *out,
                      size_t n)
{
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, since);
    jm__pg_p_i64(&p, bucket_ms);
    jm__pg_p_i64(&p, since + (int64_t)n * bucket_ms);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "counting finished jobs by time", throughput_sql, &p, &r);
    if (rc)
        return rc;
    for (int i = 0; i < PQntuples(r); i++)
        jm__throughput_add(out, n, jm__pg_i64(r, i, 0), jm__pg_i64(r, i, 1),
                           jm__pg_i64(r, i, 2));
    PQclear(r);
    return JM_OK;
}
