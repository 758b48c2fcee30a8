/*
 * libpq helpers of the pg scenario and its baselines: connecting without
 * the server's notices on stderr, checking results (quietly, for threads,
 * or reported with bench_fail), fresh schema names, and creating,
 * selecting and dropping those schemas. Nothing here measures anything.
 *
 * Values are always bound as parameters. An identifier (the schema) cannot
 * be one, so it is quoted with PQescapeIdentifier.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scenarios.h"

/* libpq's messages end in a newline; the table's notes are one line. */
static void copy_message(char *err, size_t len, const char *what, const char *msg)
{
    snprintf(err, len, "%s: %s", what, msg && *msg ? msg : "unknown libpq error");
    err[strcspn(err, "\n")] = '\0';
}

int bpg_result_ok(PGconn *c, PGresult *res, const char *what, char *err, size_t len)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return 1;
    copy_message(err, len, what, res ? PQresultErrorMessage(res) : PQerrorMessage(c));
    PQclear(res);
    return 0;
}

PGresult *bpg_check(PGconn *c, PGresult *res, const char *what)
{
    char err[BPG_ERR_SIZE];
    if (bpg_result_ok(c, res, what, err, sizeof err))
        return res;
    bench_fail("pg", "%s", err);
    return NULL;
}

int bpg_exec(PGconn *c, const char *what, const char *sql, int n, const char *const *values)
{
    PGresult *res = bpg_check(c, PQexecParams(c, sql, n, NULL, values, NULL, NULL, 0), what);
    PQclear(res);
    return res ? 0 : 1;
}

/* The server's notices (every object a DROP ... CASCADE drops) are not
 * results: libpq would print them on stderr. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *bpg_connect_quiet(const char *url, char *err, size_t len)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        copy_message(err, len, "connecting", c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, ignore_notice, NULL);
    return c;
}

PGconn *bpg_connect(const char *url)
{
    char err[BPG_ERR_SIZE];
    PGconn *c = bpg_connect_quiet(url, err, sizeof err);
    if (!c)
        bench_fail("pg", "%s", err);
    return c;
}

void bpg_schema_name(char out[BPG_SCHEMA_SIZE])
{
    static atomic_long counter;
    snprintf(out, BPG_SCHEMA_SIZE, "jmbench_%ld_%ld", (long)getpid(),
             atomic_fetch_add(&counter, 1) + 1);
}

/* Runs "<head> <quoted schema><tail>" without parameters. */
static int exec_on_schema(PGconn *c, const char *what, const char *head, const char *schema,
                          const char *tail)
{
    char *quoted = PQescapeIdentifier(c, schema, strlen(schema));
    if (!quoted) {
        bench_fail("pg", "%s: %s", what, PQerrorMessage(c));
        return 1;
    }
    char sql[256];
    snprintf(sql, sizeof sql, "%s %s%s", head, quoted, tail);
    PQfreemem(quoted);
    return bpg_exec(c, what, sql, 0, NULL);
}

int bpg_search_path(PGconn *c, const char *schema, char *err, size_t len)
{
    char *quoted = PQescapeIdentifier(c, schema, strlen(schema));
    if (!quoted) {
        copy_message(err, len, "search_path", PQerrorMessage(c));
        return 0;
    }
    const char *v[] = {quoted};
    PGresult *res = PQexecParams(c, "SELECT set_config('search_path', $1, false)", 1, NULL, v,
                                 NULL, NULL, 0);
    PQfreemem(quoted);
    int ok = bpg_result_ok(c, res, "search_path", err, len);
    if (ok)
        PQclear(res);
    return ok;
}

int bpg_use_schema(PGconn *c, const char *schema, int create)
{
    char err[BPG_ERR_SIZE];
    if (create && exec_on_schema(c, "creating a schema", "CREATE SCHEMA", schema, ""))
        return 1;
    if (bpg_search_path(c, schema, err, sizeof err))
        return 0;
    bench_fail("pg", "%s", err);
    return 1;
}

int bpg_drop_schema_on(PGconn *c, const char *schema)
{
    return exec_on_schema(c, "dropping a schema", "DROP SCHEMA IF EXISTS", schema, " CASCADE");
}

int bpg_drop_schema(const char *url, const char *schema)
{
    PGconn *c = bpg_connect(url);
    int rc = c ? bpg_drop_schema_on(c, schema) : 1;
    PQfinish(c);
    return rc;
}
