/*
 * A host that links its own SQLite (the system's) and libjobmgr, and uses
 * both at once on different files: every job jobmgr runs writes a row into
 * the host's own database through the host's SQLite. Proves that the two
 * copies do not replace each other: the host's calls reach the host's
 * library (its version is the one its header names), jobmgr's reach the
 * bundled one, and both databases end complete and intact.
 * scripts/checks/install.sh builds it against the installed library, shared
 * and static. Usage: coexist DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobmgr.h"
#include "jobmgr/sqlite.h"

#define JOBS 200

static char host_db[4096];

/* The host's executor: one row into the host's database, with its SQLite. */
static jm_decision host_write(void *self, jm_ctx *ctx)
{
    (void)self;
    sqlite3 *db = NULL;
    if (sqlite3_open(host_db, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return jm_decision_failed("host open failed", NULL);
    }
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT INTO t(job) VALUES (?1)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, jm_job_id(jm_ctx_job(ctx)), -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc == SQLITE_OK ? jm_decision_completed(NULL, NULL)
                           : jm_decision_retry("host write failed", NULL, 10);
}

static int64_t host_rows(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_open(host_db, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: coexist DIR\n");
        return 2;
    }
    /* The host's calls reach the host's library. */
    if (strcmp(sqlite3_libversion(), SQLITE_VERSION) != 0) {
        fprintf(stderr, "host SQLite is %s, its header says %s\n", sqlite3_libversion(),
                SQLITE_VERSION);
        return 1;
    }
    snprintf(host_db, sizeof host_db, "%s/host.db", argv[1]);
    char jobs_db[4096];
    snprintf(jobs_db, sizeof jobs_db, "%s/jobs.db", argv[1]);
    sqlite3 *db = NULL;
    if (sqlite3_open(host_db, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(job TEXT NOT NULL)", NULL,
                     NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "host database: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_close(db);

    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = jobs_db;
    cfg.log_level = JM_LOG_OFF;
    jm_manager *m = NULL;
    jm_executor ex = {JM_EXECUTOR_VERSION, "HW", "host write", 1, NULL, host_write, NULL, JM_CLASS_NORMAL, NULL};
    if (jm_open(&cfg, &m) != JM_OK || jm_register(m, &ex, NULL) != JM_OK) {
        fprintf(stderr, "jobmgr: %s\n", jm_last_error());
        return 1;
    }
    for (int i = 0; i < JOBS; i++) {
        char id[JM_JOB_ID_SIZE];
        if (jm_create(m, "HW", NULL, NULL, id) != JM_OK) {
            fprintf(stderr, "jm_create: %s\n", jm_last_error());
            return 1;
        }
    }
    /* Both SQLites at work at once: two jobmgr workers, each job a host
     * write. */
    if (jm_start(m, 2) != JM_OK)
        return 1;
    jm_filter done = JM_FILTER_INIT;
    done.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
    int64_t n = 0;
    for (int tries = 0; tries < 6000 && n < JOBS; tries++) {
        if (jm_count(m, &done, &n) != JM_OK)
            return 1;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    jm_stop(m, 10000);
    jm_close(m);
    int64_t rows = host_rows();
    int bundled = 0;
    const char *ours = jm_sqlite_version(&bundled);
    if (n != JOBS || rows != JOBS) {
        fprintf(stderr, "%lld jobs completed, %lld host rows; want %d\n", (long long)n,
                (long long)rows, JOBS);
        return 1;
    }
    printf("host SQLite %s and jobmgr's SQLite %s (%s) side by side: %d jobs, %d host rows\n",
           sqlite3_libversion(), ours, bundled ? "bundled" : "system", JOBS, JOBS);
    return 0;
}
