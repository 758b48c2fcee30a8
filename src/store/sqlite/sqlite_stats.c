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

/* One type's counts while they are gathered. */
typedef struct tally {
    char type[3]; /* "" for a stored type that is not two bytes */
    int64_t total;
    int64_t by_status[JM_STATUS_COUNT];
} tally;

typedef struct tallies {
    tally *v;
    size_t n, cap;
} tallies;

static tally *tally_of(tallies *t, sqlite3_stmt *st, int col)
{
    char key[3] = {0};
    const unsigned char *type = sqlite3_column_text(st, col);
    if (type && sqlite3_column_bytes(st, col) == 2)
        memcpy(key, type, 2);
    for (size_t i = 0; i < t->n; i++)
        if (memcmp(t->v[i].type, key, sizeof key) == 0)
            return &t->v[i];
    tally *v = jm__array_grow(t->v, t->n, &t->cap, sizeof *v);
    if (!v)
        return NULL;
    t->v = v;
    memset(&v[t->n], 0, sizeof v[t->n]);
    memcpy(v[t->n].type, key, sizeof key);
    return &v[t->n++];
}

/* Steps `st` (reset after) calling row() on each row: JM_OK or the error. */
static int each_row(jm__store *s, sqlite3_stmt *st, int (*row)(sqlite3_stmt *, void *),
                    void *arg)
{
    int rc = JM_OK, src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = row(st, arg)))
            break;
    if (rc == JM_OK && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "counting jobs by type and status");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int status_row(sqlite3_stmt *st, void *arg)
{
    int64_t *by_status = arg;
    int status = sqlite3_column_int(st, 0);
    /* The schema's CHECK keeps statuses in range; never index out of it. */
    if (status >= 0 && status < JM_STATUS_COUNT)
        by_status[status] = sqlite3_column_int64(st, 1);
    return JM_OK;
}

static int type_row(sqlite3_stmt *st, void *arg)
{
    tally *t = tally_of(arg, st, 0);
    if (!t)
        return jm__seterr(JM_ENOMEM, "out of memory reading job counts");
    t->total += sqlite3_column_int64(st, 1);
    return JM_OK;
}

static int type_status_row(sqlite3_stmt *st, void *arg)
{
    tally *t = tally_of(arg, st, 0);
    int status = sqlite3_column_int(st, 1);
    if (!t)
        return jm__seterr(JM_ENOMEM, "out of memory reading job counts");
    if (status >= 0 && status < JM_STATUS_COUNT)
        t->by_status[status] += sqlite3_column_int64(st, 2);
    return JM_OK;
}

/* Counts by type and status. Grouping every row by both would read the
 * whole table and sort it (1.5 s at a million jobs); instead the totals
 * by status and by type come from their indexes alone, the rows of every
 * status but the most common one are grouped, and the most common one's
 * count per type is what is left of the type's total. All in the caller's
 * read transaction, so the numbers agree. */
static int read_counts(jm__store *s, jm__store_stats *out)
{
    int64_t by_status[JM_STATUS_COUNT] = {0};
    tallies t = {0};
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_STATS_BY_STATUS, &st);
    if (rc == JM_OK)
        rc = each_row(s, st, status_row, by_status);
    int common = 0;
    for (int i = 1; i < JM_STATUS_COUNT; i++)
        if (by_status[i] > by_status[common])
            common = i;
    if (rc == JM_OK && (rc = jm__sqlite_stmt(s, Q_STATS_BY_TYPE, &st)) == JM_OK)
        rc = each_row(s, st, type_row, &t);
    if (rc == JM_OK && (rc = jm__sqlite_stmt(s, Q_STATS_COUNTS_EXCEPT, &st)) == JM_OK) {
        sqlite3_bind_int(st, 1, common);
        rc = each_row(s, st, type_status_row, &t);
    }
    size_t cap = 0;
    for (size_t i = 0; i < t.n && rc == JM_OK; i++) {
        int64_t rest = t.v[i].total;
        for (int k = 0; k < JM_STATUS_COUNT; k++)
            rest -= k == common ? 0 : t.v[i].by_status[k];
        t.v[i].by_status[common] = rest > 0 ? rest : 0;
        for (int k = 0; k < JM_STATUS_COUNT && rc == JM_OK; k++) {
            if (t.v[i].by_status[k] == 0)
                continue;
            jm__type_status_count row = {{0}, (jm_status)k, t.v[i].by_status[k]};
            memcpy(row.type, t.v[i].type, sizeof row.type);
            rc = push_row(out, &cap, &row);
        }
    }
    jm__free(t.v);
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
