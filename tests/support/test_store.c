/* Implementation of test_store.h. */
#include "test_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifdef JM_WITH_PG
#include <libpq-fe.h>
#endif

int tu_store_pg(void)
{
    const char *s = getenv("JM_TEST_STORE");
    return s && strcmp(s, "pg") == 0;
}

const char *tu_pg_url(void)
{
    return tu_store_pg() ? getenv("JM_TEST_PG_URL") : NULL;
}

void tu_skip_without_pg_server(void)
{
    if (tu_store_pg() && !tu_pg_url()) {
        printf("skipped: JM_TEST_STORE=pg without JM_TEST_PG_URL (scripts/pg_server.sh)\n");
        exit(77);
    }
}

#define SCHEMAS_MAX 4096

const char *tu_pg_schema(const char *path)
{
    /* Interned so that a config may point at it for the process's life. */
    static char names[SCHEMAS_MAX][24];
    static uint64_t keys[SCHEMAS_MAX];
    static int n;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = path; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (int i = 0; i < n; i++)
        if (keys[i] == h)
            return names[i];
    if (n == SCHEMAS_MAX)
        fail_msg("tu_pg_schema: more than %d databases in one test program", SCHEMAS_MAX);
    keys[n] = h;
    snprintf(names[n], sizeof names[n], "t_%016llx", (unsigned long long)h);
    return names[n++];
}

long long tu_pg_sql(const char *path, const char *sql, int want_row)
{
#ifdef JM_WITH_PG
    const char *url = tu_pg_url();
    if (!url)
        fail_msg("JM_TEST_STORE=pg needs JM_TEST_PG_URL");
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connecting to %s: %s", url, PQerrorMessage(c));
    char set[96];
    snprintf(set, sizeof set, "SET search_path TO \"%s\"", tu_pg_schema(path));
    PQclear(PQexec(c, set));
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
        fail_msg("%s: %s", sql, msg);
    }
    if (want_row && PQntuples(r) < 1) {
        PQclear(r);
        PQfinish(c);
        fail_msg("%s: no row", sql);
    }
    long long v = 0;
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        /* A boolean reads as SQLite's 0 or 1. */
        const char *t = PQgetvalue(r, 0, 0);
        v = strcmp(t, "t") == 0 ? 1 : strcmp(t, "f") == 0 ? 0 : atoll(t);
    }
    PQclear(r);
    PQfinish(c);
    return v;
#else
    (void)path;
    (void)sql;
    (void)want_row;
    fail_msg("this build has no PostgreSQL store");
    return 0;
#endif
}

int tu_skip_unless_sqlite(const char *why)
{
    if (!tu_store_pg())
        return 0;
    printf("skipped on PostgreSQL: %s\n", why);
    return 1;
}
