/*
 * Which store the tests run on. One suite covers both: a test that builds
 * its config with tu_config() and reaches the table through tu_sql_*()
 * runs on SQLite by default, and on PostgreSQL when JM_TEST_STORE=pg and
 * JM_TEST_PG_URL names a server (scripts/pg_server.sh starts one). On
 * PostgreSQL each database path becomes a schema of its own, so tests stay
 * as isolated as their temporary files make them.
 */
#ifndef JM_TEST_STORE_H
#define JM_TEST_STORE_H

/* Non-zero when the tests run on PostgreSQL. */
int tu_store_pg(void);
/* The PostgreSQL URL of the run (NULL on SQLite). */
const char *tu_pg_url(void);
/* Ends the program as skipped (77) when the run is on PostgreSQL without
 * a server to reach. */
void tu_skip_without_pg_server(void);
/* The schema standing for the database file `path` ("t_<hash>"); the
 * string lives as long as the process. */
const char *tu_pg_schema(const char *path);
/* Runs `sql` in `path`'s schema; returns the first column of the first
 * row as an integer (0 without rows), or fails the test. */
long long tu_pg_sql(const char *path, const char *sql, int want_row);
/* For a test that only makes sense on one store: non-zero (and a note on
 * stdout) when it should skip itself on this run's store. */
int tu_skip_unless_sqlite(const char *why);

#endif
