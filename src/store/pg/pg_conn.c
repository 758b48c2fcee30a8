/* The PostgreSQL store's connection: connecting and reconnecting with
 * backoff, statements prepared once per connection, transactions, and
 * errors mapped to JM_ codes. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "error.h"
#include "pg_internal.h"

/* Reconnect backoff: from 10 ms, doubling, at most 1 s between tries. */
#define RECONNECT_FIRST_MS 10
#define RECONNECT_MAX_MS 1000

void jm__pg_p_init(jm__pg_params *p)
{
    p->n = 0;
}

void jm__pg_p_str(jm__pg_params *p, const char *v)
{
    if (p->n < JM_PG_MAX_PARAMS)
        p->v[p->n++] = v;
}

void jm__pg_p_i64(jm__pg_params *p, int64_t v)
{
    if (p->n >= JM_PG_MAX_PARAMS)
        return;
    snprintf(p->num[p->n], JM_PG_NUM_SIZE, "%lld", (long long)v);
    p->v[p->n] = p->num[p->n];
    p->n++;
}

void jm__pg_p_dbl(jm__pg_params *p, double v)
{
    if (p->n >= JM_PG_MAX_PARAMS)
        return;
    snprintf(p->num[p->n], JM_PG_NUM_SIZE, "%.17g", v);
    p->v[p->n] = p->num[p->n];
    p->n++;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq's default prints notices, and the server's FATAL on an idle
 * connection it ends, on the host's stderr. A library must not: what
 * matters reaches the caller as an error of the next statement. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *jm__pg_connect(const char *conninfo, const char *schema_quoted, int durable_sync)
{
    PGconn *c = PQconnectdb(conninfo);
    if (!c) {
        jm__seterr(JM_ENOMEM, "out of memory connecting to PostgreSQL");
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    if (PQstatus(c) != CONNECTION_OK) {
        /* libpq's message ends in a newline. */
        const char *msg = PQerrorMessage(c);
        int len = (int)strcspn(msg, "\n");
        jm__seterr(JM_EIO, "connecting to PostgreSQL: %.*s", len, msg);
        PQfinish(c);
        return NULL;
    }
    char set[256];
    snprintf(set, sizeof set,
             "SET search_path TO %s; SET synchronous_commit TO %s; "
             "SET client_min_messages TO warning",
             schema_quoted, durable_sync ? "on" : "off");
    PGresult *r = PQexec(c, set);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
        int len = (int)strcspn(msg, "\n");
        jm__seterr(JM_EDB, "setting up the PostgreSQL connection: %.*s", len, msg);
    }
    PQclear(r);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* A connection that is gone is replaced, with backoff, for up to the busy
 * timeout; the statements it had prepared are forgotten. Never inside a
 * transaction: what it did is gone with it, and the caller must learn so. */
int jm__pg_conn_alive(PGconn *c)
{
    if (PQstatus(c) != CONNECTION_OK)
        return 0;
    /* libpq learns that the server ended an idle connection (a restart,
     * pg_terminate_backend) only by reading: its farewell waits in the
     * socket. Read it now, while replacing the connection is still safe,
     * not as the failure of a statement that may or may not have run. */
    struct pollfd pfd = {PQsocket(c), POLLIN, 0};
    for (int reads = 0; reads < 4 && pfd.fd >= 0 && poll(&pfd, 1, 0) > 0; reads++)
        if (!PQconsumeInput(c)) /* the end of the stream: gone */
            break;
    return PQstatus(c) == CONNECTION_OK;
}

int64_t jm__pg_mono_ms(void)
{
    return mono_ms();
}

static int ensure_connected(jm__store *s)
{
    if (s->conn && !s->in_tx)
        jm__pg_conn_alive(s->conn);
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return JM_OK;
    if (s->in_tx)
        return jm__seterr(JM_EIO, "the PostgreSQL connection was lost inside a transaction");
    int64_t deadline = mono_ms() + (s->busy_timeout_ms > 0 ? s->busy_timeout_ms : 0);
    int64_t wait = RECONNECT_FIRST_MS;
    for (;;) {
        if (s->conn)
            PQfinish(s->conn);
        s->nprepared = 0;
        s->conn = jm__pg_connect(s->conninfo, s->schema_quoted, s->durable_sync);
        if (s->conn)
            return JM_OK;
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return JM_EIO; /* jm__pg_connect recorded why */
        sleep_ms(wait < left ? wait : left);
        wait = wait * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : wait * 2;
    }
}

int jm__pg_err(jm__store *s, const PGresult *r, const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : NULL;
    if (!msg || !*msg)
        msg = s && s->conn ? PQerrorMessage(s->conn) : "no connection";
    int len = (int)strcspn(msg, "\n");
    int code = JM_EDB;
    if (!s || !s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        code = JM_EIO;
    } else if (state) {
        const char *constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
        if (strcmp(state, "23505") == 0 && constraint &&
            (strcmp(constraint, "jm_jobs_idempotency") == 0 ||
             strcmp(constraint, "jm_schedules_name_key") == 0 ||
             strcmp(constraint, "jm_policies_name_key") == 0))
            code = JM_ECONFLICT;
        else if (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
                 !strcmp(state, "55P03"))
            code = JM_EBUSY;
        else if (!strncmp(state, "53", 2) || !strncmp(state, "58", 2) ||
                 !strncmp(state, "08", 2) || !strncmp(state, "57P", 3))
            code = JM_EIO;
    }
    return jm__seterr(code, "%s: %.*s", what, len, msg);
}

int64_t jm__pg_changes(const PGresult *r)
{
    const char *t = PQcmdTuples((PGresult *)r);
    return t && *t ? (int64_t)strtoll(t, NULL, 10) : 0;
}

/* The server name of `sql` on this connection, preparing it first if it
 * is new here. */
static int prepared_name(jm__store *s, const char *what, const char *sql, int nparams,
                         char name[24])
{
    for (size_t i = 0; i < s->nprepared; i++)
        if (s->prepared[i].sql == sql) {
            snprintf(name, 24, "jm%d", s->prepared[i].number);
            return JM_OK;
        }
    if (s->nprepared == s->cap_prepared) {
        size_t cap = s->cap_prepared ? s->cap_prepared * 2 : 32;
        jm__pg_prepared *grown = jm__realloc(s->prepared, s->cap_prepared * sizeof *grown,
                                             cap * sizeof *grown);
        if (!grown)
            return jm__seterr(JM_ENOMEM, "out of memory preparing a statement");
        s->prepared = grown;
        s->cap_prepared = cap;
    }
    int number = s->next_number++;
    snprintf(name, 24, "jm%d", number);
    PGresult *r = PQprepare(s->conn, name, sql, nparams, NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        int rc = jm__pg_err(s, r, what);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    s->prepared[s->nprepared++] = (jm__pg_prepared){sql, number};
    return JM_OK;
}

static int result_ok(const PGresult *r)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int jm__pg_run(jm__store *s, const char *what, const char *sql, const jm__pg_params *p,
               PGresult **out)
{
    if (out)
        *out = NULL;
    int rc = ensure_connected(s);
    if (rc)
        return rc;
    char name[24];
    int n = p ? p->n : 0;
    if ((rc = prepared_name(s, what, sql, n, name)))
        return rc;
    PGresult *r = PQexecPrepared(s->conn, name, n, p ? p->v : NULL, NULL, NULL, 0);
    if (!result_ok(r)) {
        rc = jm__pg_err(s, r, what);
        PQclear(r);
        return rc;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return JM_OK;
}

int jm__pg_run_text(jm__store *s, const char *what, const char *sql, const jm__pg_params *p,
                    PGresult **out)
{
    if (out)
        *out = NULL;
    int rc = ensure_connected(s);
    if (rc)
        return rc;
    PGresult *r = PQexecParams(s->conn, sql, p ? p->n : 0, NULL, p ? p->v : NULL, NULL, NULL, 0);
    if (!result_ok(r)) {
        rc = jm__pg_err(s, r, what);
        PQclear(r);
        return rc;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return JM_OK;
}

int jm__pg_exec(jm__store *s, const char *what, const char *sql)
{
    int rc = ensure_connected(s);
    if (rc)
        return rc;
    PGresult *r = PQexec(s->conn, sql);
    rc = result_ok(r) ? JM_OK : jm__pg_err(s, r, what);
    PQclear(r);
    return rc;
}

int jm__pg_begin_with(jm__store *s, const char *what, const char *sql)
{
    if (s->in_tx)
        return jm__seterr(JM_EINVAL, "%s: a transaction is already open", what);
    int rc = jm__pg_exec(s, what, sql);
    /* A BEGIN lost with its connection did nothing: once more, afresh. */
    if (rc == JM_EIO && s->conn && PQstatus(s->conn) != CONNECTION_OK)
        rc = jm__pg_exec(s, what, sql);
    if (!rc) {
        s->in_tx = 1;
    } else if (s->conn && PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        /* BEGIN went through and a statement after it failed. */
        s->in_tx = 1;
        jm__pg_rollback(s);
    }
    return rc;
}

int jm__pg_begin(jm__store *s, const char *what)
{
    return jm__pg_begin_with(s, what, "BEGIN");
}

int jm__pg_commit(jm__store *s, const char *what)
{
    s->in_tx = 0;
    int rc = ensure_connected(s);
    if (rc)
        return rc;
    PGresult *r = PQexec(s->conn, "COMMIT");
    if (!result_ok(r))
        rc = jm__pg_err(s, r, what);
    /* PostgreSQL ends a failed transaction's COMMIT with ROLLBACK, and
     * calls that success. */
    else if (strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
        rc = jm__seterr(JM_EDB, "%s: the transaction had failed and was rolled back", what);
    PQclear(r);
    return rc;
}

void jm__pg_rollback(jm__store *s)
{
    if (!s->in_tx)
        return;
    s->in_tx = 0;
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        PQclear(PQexec(s->conn, "ROLLBACK"));
}

int64_t jm__pg_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return (int64_t)strtoll(PQgetvalue(r, row, col), NULL, 10);
}

double jm__pg_dbl(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtod(PQgetvalue(r, row, col), NULL);
}

const char *jm__pg_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}
