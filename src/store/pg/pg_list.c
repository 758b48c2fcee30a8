/*
 * Listing and counting jobs in the PostgreSQL store.
 *
 * A filter is asked in parts, one per status it takes, merged in seq order
 * (a list) or added up (a count): "status = 5 ORDER BY seq" reads the
 * (status, seq) index in order, where "status = ANY('{5}')" does not, and
 * the planner, which cannot know that the failed jobs are the newest,
 * scanned the whole table for them by the primary key. A part returns at
 * most a page, so a list costs a page per status asked for.
 *
 * The listing indexes (status, type, creation time) hold every job but a
 * running one, so that a claim writes no entry into them (pg_schema.c,
 * version 2); running jobs are few and the running index finds them. A
 * filter of every status is therefore asked as two parts, one per side of
 * "status = 2", each of which an index can serve.
 *
 * The texts are built per call from the filter's set fields, so they run
 * unprepared (jm__pg_run_text); every value is a bound parameter, and the
 * statuses, from the filter's bit mask, are digits.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "pg_internal.h"

#define ALL_STATUSES ((1u << JM_STATUS_COUNT) - 1)

/* The conditions of a filter but its statuses, with their parameters,
 * and the parts it is asked in. Every part uses the same conditions, so
 * they share the parameters. */
typedef struct query {
    char cond[512];
    size_t len;
    jm__pg_params p;
    const char *part[JM_STATUS_COUNT]; /* each part's status condition */
    int nparts;
} query;

static const char *const status_is[JM_STATUS_COUNT] = {
    "status = 0", "status = 1", "status = 2", "status = 3",
    "status = 4", "status = 5", "status = 6", "status = 7",
};

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

/* The parts of the filter's statuses: none or all of them filter nothing,
 * and are asked as "status <> 2" and "status = 2". */
static void plan_parts(query *q, unsigned statuses)
{
    unsigned mask = statuses & ALL_STATUSES;
    if (mask == 0 || mask == ALL_STATUSES) {
        q->part[q->nparts++] = "status <> 2";
        q->part[q->nparts++] = "status = 2";
        return;
    }
    for (int b = 0; b < JM_STATUS_COUNT; b++)
        if (mask & JM_STATUS_BIT(b))
            q->part[q->nparts++] = status_is[b];
}

/* The conditions of the filter's set fields. */
static void build_cond(query *q, const jm_filter *f)
{
    memset(q, 0, sizeof *q);
    jm__pg_p_init(&q->p);
    plan_parts(q, f->statuses);
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

/* A statement of the query's parts, or NULL (reported, as `what`) when
 * out of memory: `one` is a part's text, with %s for the status condition and %s
 * for the conditions; `join` goes between parts, `head` and `tail` around
 * them when there are several. */
static char *parts_sql(const query *q, const char *what, const char *one, const char *head,
                       const char *join, const char *tail)
{
    size_t size = strlen(head) + strlen(tail) + 1;
    size += (size_t)q->nparts * (strlen(one) + strlen(join) + q->len + 16);
    char *sql = jm__malloc(size);
    if (!sql) {
        jm__seterr(JM_ENOMEM, "out of memory %s", what);
        return NULL;
    }
    size_t len = 0;
    int several = q->nparts > 1;
    if (several)
        len += (size_t)snprintf(sql + len, size - len, "%s", head);
    for (int i = 0; i < q->nparts; i++) {
        if (i)
            len += (size_t)snprintf(sql + len, size - len, "%s", join);
        len += (size_t)snprintf(sql + len, size - len, one, q->part[i], q->cond);
    }
    if (several)
        snprintf(sql + len, size - len, "%s", tail);
    return sql;
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

/* The list statement: its parts each a page in seq order, merged. The
 * LIMIT is the last parameter. */
static char *list_sql(const query *q, int newest_first)
{
    char one[sizeof JM_PG_JOB_COLUMNS + 96], tail[64];
    const char *order = newest_first ? "seq DESC" : "seq";
    snprintf(one, sizeof one,
             "(SELECT " JM_PG_JOB_COLUMNS " FROM jm_jobs WHERE %%s%%s ORDER BY %s LIMIT $%d)",
             order, q->p.n);
    snprintf(tail, sizeof tail, ") AS j ORDER BY %s LIMIT $%d", order, q->p.n);
    return parts_sql(q, "listing jobs", one, "SELECT * FROM (", " UNION ALL ", tail);
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
    if (q.len >= sizeof q.cond)
        return jm__seterr(JM_EINVAL, "listing jobs: the filter is too long");
    jm__pg_p_i64(&q.p, (int64_t)limit + 1);
    char *sql = list_sql(&q, f->newest_first);
    if (!sql)
        return JM_ENOMEM;
    jm_job_list *l = jm__calloc(1, sizeof *l);
    if (!l || !(l->items = jm__calloc(limit, sizeof(jm_job *)))) {
        jm__free(l);
        jm__free(sql);
        return jm__seterr(JM_ENOMEM, "out of memory listing jobs");
    }
    PGresult *r = NULL;
    if ((rc = jm__pg_run_text(s, "listing jobs", sql, &q.p, &r)) == JM_OK) {
        rc = take_rows(r, limit, l);
        PQclear(r);
    }
    jm__free(sql);
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
    if (q.len >= sizeof q.cond)
        return jm__seterr(JM_EINVAL, "counting jobs: the filter is too long");
    char *sql = parts_sql(&q, "counting jobs", "(SELECT count(*) FROM jm_jobs WHERE %s%s)",
                          "SELECT ", " + ", "");
    if (!sql)
        return JM_ENOMEM;
    PGresult *r = NULL;
    int rc = jm__pg_run_text(s, "counting jobs", sql, &q.p, &r);
    jm__free(sql);
    if (rc)
        return rc;
    *out = jm__pg_i64(r, 0, 0);
    PQclear(r);
    return JM_OK;
}
