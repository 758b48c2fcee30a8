/*
 * Recording how runs ended in the PostgreSQL store: in the cycle's own
 * transaction (jm__pg_finish_in_tx), or on a connection of their own while
 * the cycle claims (jm__pg_finish_send, then jm__pg_finish_collect).
 * Every outcome is fenced by its claim (seq, attempt, status running): a
 * worker whose job was recovered elsewhere changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "pg_array.h"
#include "pg_internal.h"

/* Every outcome of a cycle in one statement, each column an array with
 * one element per outcome. o.co non-zero: a standing cancel request
 * overrides the outcome (the job ends cancelled, atomically with the
 * write); a standing pause request turns a retrying or queued outcome
 * into paused. */
static const char finish_many_sql[] =
    "UPDATE jm_jobs SET "
    "status = CASE WHEN o.co <> 0 AND cancel_requested <> 0 THEN 6 "
    "  WHEN pause_requested <> 0 AND o.st IN (1, 3) THEN 7 ELSE o.st END, "
    "pause_requested = 0, "
    "message = CASE WHEN o.co <> 0 AND cancel_requested <> 0 THEN '" JM__MSG_CANCELLED
    "' WHEN o.km <> 0 THEN message ELSE o.msg END, "
    "exception_trace = coalesce(o.tr, exception_trace), "
    "result = coalesce(o.res, result), "
    "retry_count = CASE WHEN o.co <> 0 AND cancel_requested <> 0 THEN retry_count "
    "  ELSE o.rc END, "
    "run_at = o.run_at, progress = o.prog, updated_at = o.now, "
    "finished_at = CASE WHEN o.co <> 0 AND cancel_requested <> 0 THEN o.now ELSE o.fin END, "
    "started_at = coalesce(started_at, o.started), "
    "lease_until = NULL, owner_pid = NULL, owner_instance = NULL "
    "FROM unnest($1::integer[], $2::integer[], $3::integer[], $4::text[], $5::text[], "
    " $6::text[], $7::integer[], $8::bigint[], $9::double precision[], $10::bigint[], "
    " $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[]) "
    " AS o(co, st, km, msg, tr, res, rc, run_at, prog, now, fin, started, o_seq, o_att) "
    "WHERE seq = o.o_seq AND status = 2 AND attempts = o.o_att "
    "RETURNING seq, attempts, status";

enum { F_CO, F_ST, F_KM, F_MSG, F_TR, F_RES, F_RC, F_RUN_AT, F_PROG, F_NOW, F_FIN, F_STARTED,
       F_SEQ, F_ATT, F_COLUMNS };

static void finish_columns(const jm__finish *f, jm__pg_arr *c)
{
    jm__pg_arr_i64(&c[F_CO], f->cancel_overrides ? 1 : 0);
    jm__pg_arr_i64(&c[F_ST], (int64_t)f->status);
    jm__pg_arr_i64(&c[F_KM], f->keep_message ? 1 : 0);
    jm__pg_arr_text(&c[F_MSG], f->message, SIZE_MAX);
    jm__pg_arr_text(&c[F_TR], f->trace, SIZE_MAX);
    jm__pg_arr_text(&c[F_RES], f->result, SIZE_MAX);
    jm__pg_arr_i64(&c[F_RC], f->retry_count);
    jm__pg_arr_i64(&c[F_RUN_AT], f->run_at);
    jm__pg_arr_dbl(&c[F_PROG], f->progress);
    jm__pg_arr_i64(&c[F_NOW], f->now);
    if (f->status >= JM_STATUS_COMPLETED)
        jm__pg_arr_i64(&c[F_FIN], f->now);
    else
        jm__pg_arr_null(&c[F_FIN]);
    if (f->started_at)
        jm__pg_arr_i64(&c[F_STARTED], f->started_at);
    else
        jm__pg_arr_null(&c[F_STARTED]);
    jm__pg_arr_i64(&c[F_SEQ], f->seq);
    jm__pg_arr_i64(&c[F_ATT], f->attempt);
}

typedef struct run_status {
    int64_t seq, attempt;
    int status;
} run_status;

static int by_run(const void *a, const void *b)
{
    const run_status *x = a, *y = b;
    if (x->seq != y->seq)
        return (x->seq > y->seq) - (x->seq < y->seq);
    return (x->attempt > y->attempt) - (x->attempt < y->attempt);
}

/* Each outcome's final_status from the rows the statement changed. */
static int finish_statuses(const PGresult *r, jm__finish *items, size_t n)
{
    size_t rows = (size_t)PQntuples(r);
    run_status *got = rows ? jm__calloc(rows, sizeof *got) : NULL;
    if (rows && !got)
        return jm__seterr(JM_ENOMEM, "out of memory recording outcomes");
    for (size_t i = 0; i < rows; i++) {
        got[i].seq = jm__pg_i64(r, (int)i, 0);
        got[i].attempt = jm__pg_i64(r, (int)i, 1);
        got[i].status = (int)jm__pg_i64(r, (int)i, 2);
    }
    if (rows)
        qsort(got, rows, sizeof *got, by_run);
    for (size_t i = 0; i < n; i++) {
        run_status key = {items[i].seq, items[i].attempt, 0};
        const run_status *hit = rows ? bsearch(&key, got, rows, sizeof *got, by_run) : NULL;
        items[i].final_status = hit ? hit->status : -1;
    }
    jm__free(got);
    return JM_OK;
}

/* finish_many_sql's parameters for n outcomes, in c (freed by the
 * caller with free_columns) and p. */
static int finish_params(jm__finish *items, size_t n, jm__pg_arr *c, jm__pg_params *p)
{
    memset(c, 0, F_COLUMNS * sizeof *c);
    for (size_t i = 0; i < n; i++) {
        items[i].final_status = -1;
        finish_columns(&items[i], c);
    }
    jm__pg_p_init(p);
    for (int i = 0; i < F_COLUMNS; i++) {
        if (jm__pg_arr_end(&c[i]) != 0)
            return jm__seterr(JM_ENOMEM, "out of memory recording %zu outcomes", n);
        jm__pg_p_str(p, c[i].p);
    }
    return JM_OK;
}

static void free_columns(jm__pg_arr *c)
{
    for (int i = 0; i < F_COLUMNS; i++)
        jm__pg_arr_free(&c[i]);
}

int jm__pg_finish_in_tx(jm__store *s, jm__finish *items, size_t n)
{
    jm__pg_arr c[F_COLUMNS];
    jm__pg_params p;
    int rc = finish_params(items, n, c, &p);
    PGresult *r = NULL;
    if (rc == JM_OK)
        rc = jm__pg_run(s, "recording jobs' outcomes", finish_many_sql, &p, &r);
    if (rc == JM_OK)
        rc = finish_statuses(r, items, n);
    PQclear(r);
    free_columns(c);
    return rc;
}

/* ---- the outcomes' own connection ----
 *
 * While a cycle claims on the store's connection, its outcomes commit on
 * a second one, so the server works on both at once (one server process
 * per connection). The claim commits only once the outcomes have: when
 * they fail, the claim is undone and the cycle reports that nothing was
 * written, as with one transaction. The two never wait on each other's
 * rows: outcomes touch running jobs, a claim due and scheduled ones. */

/* The side connection, made (again) if it is missing or the server ended
 * it; NULL when it cannot be had. */
static PGconn *side_conn(jm__store *s)
{
    if (s->side && !jm__pg_conn_alive(s->side)) {
        PQfinish(s->side);
        s->side = NULL;
    }
    if (!s->side && s->side_retry_at <= jm__pg_mono_ms()) {
        s->side = jm__pg_connect(s->conninfo, s->schema_quoted, s->durable_sync);
        /* Down: the store's connection reports why; try again later. */
        if (!s->side)
            s->side_retry_at = jm__pg_mono_ms() + 1000;
    }
    return s->side;
}

int jm__pg_finish_send(jm__store *s, jm__finish *items, size_t n)
{
    PGconn *c = side_conn(s);
    if (!c)
        return JM_EIO;
    jm__pg_arr cols[F_COLUMNS];
    jm__pg_params p;
    int rc = finish_params(items, n, cols, &p);
    if (rc == JM_OK && !PQsendQueryParams(c, finish_many_sql, p.n, NULL, p.v, NULL, NULL, 0)) {
        PQfinish(s->side);
        s->side = NULL;
        rc = JM_EIO;
    }
    free_columns(cols);
    return rc;
}

int jm__pg_finish_collect(jm__store *s, jm__finish *items, size_t n)
{
    PGconn *c = s->side;
    PGresult *r, *last = NULL;
    while ((r = PQgetResult(c)) != NULL) {
        PQclear(last);
        last = r;
    }
    int rc;
    ExecStatusType st = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK) {
        rc = finish_statuses(last, items, n);
    } else if (PQstatus(c) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(c);
        rc = jm__seterr(JM_EIO, "recording jobs' outcomes: the connection was lost: %.*s",
                        (int)strcspn(msg, "\n"), msg);
    } else {
        rc = jm__pg_err(s, last, "recording jobs' outcomes");
    }
    PQclear(last);
    if (rc == JM_EIO) {
        PQfinish(s->side);
        s->side = NULL;
    }
    return rc;
}

