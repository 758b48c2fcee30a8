/*
 * The jobs table's side of jm_stats(): counts by type and status, the due
 * queue, running jobs and recent failures, read in one snapshot; and of
 * jm_throughput(): finished jobs by time bucket and status. It only
 * reads; the counters of runs, retries and durations live in the core
 * (src/core/stats.c), since the table does not remember past runs.
 */
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "error.h"
#include "sqlite_internal.h"

static int push_row(jm__store_stats *out, size_t *cap, const jm__type_status_count *row)
{
    jm__type_status_count *v = jm__array_grow(out->rows, out->nrows, cap, sizeof *v);
    if (!v)
        return jm__seterr(JM_ENOMEM, "out of memory reading job counts");
    out->rows = v;
    out->rows[out->nrows++] = *row;
    return JM_OK;
}

static int read_counts(jm__store *s, jm__store_stats *out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_STATS_COUNTS, &st);
    if (rc)
        return rc;
    size_t cap = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int status = sqlite3_column_int(st, 1);
        if (status < JM_STATUS_NEW || status > JM_STATUS_PAUSED)
            continue; /* the schema's CHECK forbids it; never index out of range */
        jm__type_status_count row = {{0}, (jm_status)status, sqlite3_column_int64(st, 2)};
        const unsigned char *type = sqlite3_column_text(st, 0);
        if (type && sqlite3_column_bytes(st, 0) == 2)
            memcpy(row.type, type, 2);
        if ((rc = push_row(out, &cap, &row)))
            break;
    }
    if (rc == JM_OK && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "counting jobs by type and status");
    sqlite3_reset(st);
    return rc;
}

static int read_queue(jm__store *s, int64_t now, jm__store_stats *out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_STATS_QUEUE, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, now - JM__STATS_FAILED_WINDOW_MS);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        out->queue_depth = sqlite3_column_int64(st, 0);
        out->oldest_due_run_at = sqlite3_column_int64(st, 1); /* NULL reads as 0 */
        out->running = sqlite3_column_int64(st, 2);
        out->failed_last_hour = sqlite3_column_int64(st, 3);
        src = sqlite3_step(st);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return src == SQLITE_DONE ? JM_OK : jm__sqlite_err(s, src, "reading the job queue");
}

int jm__sqlite_stats(jm__store *s, int64_t now, jm__store_stats *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *begin = NULL;
    int rc = jm__sqlite_stmt(s, Q_BEGIN_READ, &begin);
    if (rc)
        return rc;
    int src = sqlite3_step(begin);
    sqlite3_reset(begin);
    if (src != SQLITE_DONE)
        return jm__sqlite_err(s, src, "beginning a read transaction");
    if ((rc = read_counts(s, out)) || (rc = read_queue(s, now, out))) {
        jm__sqlite_rollback(s);
        jm__free(out->rows);
        memset(out, 0, sizeof *out);
        return rc;
    }
    /* A read transaction that fails to end is rolled back by the commit
     * helper; its numbers are dropped with it. */
    if ((rc = jm__sqlite_commit(s))) {
        jm__free(out->rows);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int jm__sqlite_throughput(jm__store *s, int64_t since, int64_t bucket_ms,
                          jm_throughput_bucket *out, size_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_THROUGHPUT, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, bucket_ms);
    sqlite3_bind_int64(st, 3, since + (int64_t)n * bucket_ms);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        jm__throughput_add(out, n, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                           sqlite3_column_int64(st, 2));
    rc = src == SQLITE_DONE ? JM_OK : jm__sqlite_err(s, src, "counting finished jobs by time");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}
