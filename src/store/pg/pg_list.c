/*
 * Listing and counting jobs in the PostgreSQL store.
 *
 * The listing indexes (status, type, creation time) hold every job but a
 * running one, so that a claim writes no entry into them (pg_schema.c,
 * version 2); running jobs are few and the running index finds them. A
 * filter that takes running jobs and others is therefore asked as two
 * parts, one per side of "status = 2", each of which an index can serve,
 * and the parts are merged in seq order (a list) or added up (a count).
 *
 * The texts are built per call from the filter's set fields, so they run
 * unprepared (jm__pg_run_text); every value is a bound parameter.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "pg_internal.h"

#define RUNNING_BIT JM_STATUS_BIT(JM_STATUS_RUNNING)
#define ALL_STATUSES ((1u << JM_STATUS_COUNT) - 1)

/* The conditions of a filter, with their parameters. Both parts of a
 * split filter use the same text, so they share the parameters. */
typedef struct query {
    char cond[512];
    size_t len;
    jm__pg_params p;
    char statuses[2 * JM_STATUS_COUNT + 2]; /* "{1,3}" */
    int running;                            /* the filter takes running jobs */
    int others;                             /* ... and jobs in other statuses */
} query;

/* Appends `fmt`, in which %d is the number of the parameter just added. */
static void add(query *q, const char *fmt)
{
    size_t cap = sizeof q->cond;
    if (q->len < cap)
        q->len += (size_t)snprintf(q->cond + q->len, cap - q->len, fmt, q->p.n);
}

static void add_str(query *q, const char *fmt, const char *v)
{
    jm__pg_p_str(&q->p, v);
    add(q, fmt);
}

static void add_i64(query *q, const char *fmt, int64_t v)
{
    jm__pg_p_i64(&q->p, v);
    add(q, fmt);
}

/* Statuses in the filter: none or all of them filter nothing. */
static void add_statuses(query *q, unsigned statuses)
{
    unsigned mask = statuses & ALL_STATUSES;
    if (mask == 0)
        mask = ALL_STATUSES;
    q->running = (mask & RUNNING_BIT) != 0;
    q->others = (mask & ~RUNNING_BIT) != 0;
    if (mask == ALL_STATUSES)
        return;
    size_t n = 0;
    q->statuses[n++] = '{';
    for (int b = 0; b < JM_STATUS_COUNT; b++)
        if (mask & JM_STATUS_BIT(b)) {
            if (n > 1)
                q->statuses[n++] = ',';
            q->statuses[n++] = (char)('0' + b);
        }
    q->statuses[n++] = '}';
    q->statuses[n] = '\0';
    add_str(q, " AND status = ANY($%d::int[])", q->statuses);
}

/* The conditions of the filter's set fields. */
static void build_cond(query *q, const jm_filter *f)
{
    memset(q, 0, sizeof *q);
    jm__pg_p_init(&q->p);
    add_statuses(q, f->statuses);
    if (f->type)
        add_str(q, " AND type = $%d", f->type);
    if (f->namespace_id)
        add_str(q, " AND namespace_id = $%d", f->namespace_id);
    if (f->idempotency_key)
        add_str(q, " AND idempotency_key = $%d", f->idempotency_key);
    if (f->created_after_ms)
        add_i64(q, " AND created_at > $%d", f->created_after_ms);
    if (f->created_before_ms)
        add_i64(q, " AND created_at < $%d", f->created_before_ms);
}

/* The seq of the list cursor's job, which must exist. */
static int cursor_seq(jm__store *s, const char *id, int64_t *seq)
{
    char prefix[JM_JOB_ID_SIZE];
    jm_status status;
    int rc = jm__pg_id_split(id, prefix, seq);
    if (rc == JM_OK)
        rc = jm__pg_status(s, id, &status);
    if (rc == JM_ENOTFOUND)
        rc = jm__seterr(JM_ENOTFOUND, "cursor job %s not found", id);
    return rc;
}

/* Moves the rows of r into l, up to `limit`; one more says another page
 * follows. */
static int take_rows(const PGresult *r, size_t limit, jm_job_list *l)
{
    size_t rows = (size_t)PQntuples(r);
    for (size_t i = 0; i < rows; i++) {
        if (l->count == limit) {
            l->has_more = 1;
            break;
        }
        int rc = jm__pg_row_to_job(r, (int)i, 0, &l->items[l->count]);
        if (rc)
            return rc;
        l->count++;
    }
    return JM_OK;
}

/* The list statement into sql: one SELECT, or the two parts merged. */
static int list_sql(const query *q, int newest_first, char *sql, size_t size)
{
    const char *order = newest_first ? "seq DESC" : "seq";
    int n;
    if (q->running && q->others)
        n = snprintf(sql, size,
                     "SELECT * FROM ("
                     "(SELECT " JM_PG_JOB_COLUMNS " FROM jm_jobs WHERE status <> 2%s "
                     "ORDER BY %s LIMIT $%d) UNION ALL "
                     "(SELECT " JM_PG_JOB_COLUMNS " FROM jm_jobs WHERE status = 2%s "
                     "ORDER BY %s LIMIT $%d)) AS j ORDER BY %s LIMIT $%d",
                     q->cond, order, q->p.n, q->cond, order, q->p.n, order, q->p.n);
    else
        n = snprintf(sql, size,
                     "SELECT " JM_PG_JOB_COLUMNS " FROM jm_jobs WHERE status %s 2%s "
                     "ORDER BY %s LIMIT $%d",
                     q->running ? "=" : "<>", q->cond, order, q->p.n);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int jm__pg_list(jm__store *s, const jm_filter *f, jm_job_list **out)
{
    int64_t cursor = 0;
    int rc;
    if (f->after_id && (rc = cursor_seq(s, f->after_id, &cursor)))
        return rc;
    size_t limit = (size_t)(f->limit ? f->limit : JM_LIST_DEFAULT_LIMIT);
    query q;
    build_cond(&q, f);
    if (f->after_id)
        add_i64(&q, f->newest_first ? " AND seq < $%d" : " AND seq > $%d", cursor);
    jm__pg_p_i64(&q.p, (int64_t)limit + 1); /* the LIMIT: the last parameter */
    char sql[2 * sizeof q.cond + 2048];
    if (q.len >= sizeof q.cond || list_sql(&q, f->newest_first, sql, sizeof sql))
        return jm__seterr(JM_EINVAL, "listing jobs: the filter is too long");
    jm_job_list *l = jm__calloc(1, sizeof *l);
    if (!l || !(l->items = jm__calloc(limit, sizeof(jm_job *)))) {
        jm__free(l);
        return jm__seterr(JM_ENOMEM, "out of memory listing jobs");
    }
    PGresult *r = NULL;
    if ((rc = jm__pg_run_text(s, "listing jobs", sql, &q.p, &r)) == JM_OK) {
        rc = take_rows(r, limit, l);
        PQclear(r);
    }
    if (rc) {
        jm_job_list_free(l);
        return rc;
    }
    *out = l;
    return JM_OK;
}

int jm__pg_count(jm__store *s, const jm_filter *f, int64_t *out)
{
    query q;
    build_cond(&q, f);
    char sql[2 * sizeof q.cond + 256];
    int n;
    if (q.running && q.others)
        n = snprintf(sql, sizeof sql,
                     "SELECT (SELECT count(*) FROM jm_jobs WHERE status <> 2%s) + "
                     "(SELECT count(*) FROM jm_jobs WHERE status = 2%s)",
                     q.cond, q.cond);
    else
        n = snprintf(sql, sizeof sql, "SELECT count(*) FROM jm_jobs WHERE status %s 2%s",
                     q.running ? "=" : "<>", q.cond);
    if (q.len >= sizeof q.cond || n < 0 || (size_t)n >= sizeof sql)
        return jm__seterr(JM_EINVAL, "counting jobs: the filter is too long");
    PGresult *r = NULL;
    int rc = jm__pg_run_text(s, "counting jobs", sql, &q.p, &r);
    if (rc)
        return rc;
    *out = jm__pg_i64(r, 0, 0);
    PQclear(r);
    return JM_OK;
}
