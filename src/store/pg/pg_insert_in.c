/* jm_pg_create_in's insert: one row through the caller's connection,
 * inside the caller's transaction, so the job commits or vanishes with the
 * caller's own change. Nothing here may change that connection's state:
 * the statements name the schema themselves (the caller's search_path is
 * the caller's), and a key held by an active job is reported, not raised,
 * since an error would abort the caller's transaction. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "job_id.h"
#include "pg_internal.h"

static int fail(PGresult *r, PGconn *conn, const char *what)
{
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    int len = (int)strcspn(msg, "\n");
    int code = PQstatus(conn) == CONNECTION_OK ? JM_EDB : JM_EIO;
    PQclear(r);
    return jm__seterr(code, "%s: %.*s", what, len, msg);
}

static int run(PGconn *conn, const char *sql, const jm__pg_params *p, const char *what,
               PGresult **out)
{
    PGresult *r = PQexecParams(conn, sql, p->n, NULL, p->v, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        return fail(r, conn, what);
    *out = r;
    return JM_OK;
}

static int holder(const jm__store *s, PGconn *conn, const char *key,
                  char conflict_id[JM_JOB_ID_SIZE])
{
    char sql[512];
    snprintf(sql, sizeof sql,
            "SELECT seq, id FROM %s.jm_jobs WHERE idempotency_key = $1 "
            "AND (status <= 3 OR status = 7)",
             s->schema_quoted);
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, key);
    PGresult *r = NULL;
    int rc = run(conn, sql, &p, "finding the job that holds the key", &r);
    if (rc)
        return rc;
    conflict_id[0] = '\0';
    if (PQntuples(r) > 0)
        jm__pg_row_id(r, 0, 0, conflict_id);
    PQclear(r);
    return jm__seterr(JM_ECONFLICT, "idempotency key '%s' is held by active job %s", key,
                      conflict_id);
}

int jm__pg_insert_in(jm__store *s, void *conn_, jm__new_row *row,
                     char conflict_id[JM_JOB_ID_SIZE])
{
    PGconn *conn = conn_;
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return jm__seterr(JM_EIO, "jm_pg_create_in: the connection is not open");
    char sql[1024];
    snprintf(sql, sizeof sql,
            "INSERT INTO %s.jm_jobs (id, type, status, namespace_id, params, "
            "idempotency_key, max_retries, priority, created_at, updated_at, run_at, "
            "resource, pinned_node) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, "
            "$11, $12) ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL "
            "AND (status <= 3 OR status = 7) DO NOTHING RETURNING seq",
             s->schema_quoted);
    char prefix[JM_JOB_ID_SIZE];
    snprintf(prefix, sizeof prefix, "%.*s", JM__ID_SEQ_AT, row->id);
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, prefix);
    jm__pg_p_str(&p, row->type);
    jm__pg_p_i64(&p, row->status);
    jm__pg_p_str(&p, row->namespace_id);
    jm__pg_p_str(&p, row->params);
    jm__pg_p_str(&p, row->idempotency_key);
    jm__pg_p_i64(&p, row->max_retries);
    jm__pg_p_i64(&p, row->priority);
    jm__pg_p_i64(&p, row->created_at);
    jm__pg_p_i64(&p, row->run_at);
    jm__pg_p_str(&p, row->resource);
    jm__pg_p_str(&p, row->node_id);
    PGresult *r = NULL;
    int rc = run(conn, sql, &p, "jm_pg_create_in: inserting the job", &r);
    if (rc)
        return rc;
    int inserted = PQntuples(r) == 1;
    int64_t seq = inserted ? jm__pg_i64(r, 0, 0) : 0;
    PQclear(r);
    if (!inserted)
        return holder(s, conn, row->idempotency_key, conflict_id);
    jm__job_id_set_seq(row->id, seq);
    if (row->run_at > row->created_at)
        return JM_OK;
    /* Delivered when the caller commits, and dropped if it rolls back. */
    char channel[96];
    jm__pg_channel(s, channel, sizeof channel, NULL, 0);
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, channel);
    if ((rc = run(conn, "SELECT pg_notify($1, '')", &p, "jm_pg_create_in: notifying", &r)))
        return rc;
    PQclear(r);
    return JM_OK;
}
