/*
 * Helpers shared by the tests: temporary databases, a fake clock, waiting
 * on a condition with a generous timeout instead of sleeping, and a small
 * scriptable executor. Not part of the library.
 */
#ifndef JM_TEST_UTIL_H
#define JM_TEST_UTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "jobmgr.h"
#include "test_store.h"

/* Generous for a loaded 2-core machine. */
#define TU_TIMEOUT_MS 30000

/* A fresh empty directory under $TMPDIR (or /tmp), removed by tu_rmdir(). */
char *tu_tmpdir(void);
void tu_rmdir(char *dir); /* removes recursively and frees the string */
/* dir + "/" + name, malloc'd. */
char *tu_path(const char *dir, const char *name);

/* A fake clock: pass tu_fake_now as cfg.now_ms and &clock as cfg.now_user. */
typedef struct tu_clock {
    _Atomic int64_t now;
} tu_clock;
int64_t tu_fake_now(void *user);
void tu_clock_advance(tu_clock *c, int64_t ms);

int64_t tu_mono_ms(void);

/* Polls cond() every millisecond until true or timeout; returns its last value. */
int tu_wait_until(int (*cond)(void *arg), void *arg, int64_t timeout_ms);

/* Counts log lines (thread-safe) and keeps the last one; use as cfg.log_fn. */
typedef struct tu_log {
    _Atomic int lines;
    char last[1024];
    char all[65536]; /* every line, newline-separated, truncated when full */
    size_t used;
    void *mutex; /* internal */
} tu_log;
void tu_log_init(tu_log *l);
void tu_log_destroy(tu_log *l);
void tu_log_fn(void *user, jm_log_level level, const char *line);
/* Whether a line logged so far contains `needle` (safe while logging). */
int tu_log_has(tu_log *l, const char *needle);

/* A config for `db` with test-friendly defaults: logs off, short leases.
 * On a PostgreSQL run (test_store.h) `db` names a schema of its own. */
jm_config tu_config(const char *db);

/* Status of job `id`, or -1 if it cannot be read. */
int tu_status(jm_manager *m, const char *id);
/* Waits until at least `want` jobs are completed; 0 on timeout. */
int tu_wait_completed(jm_manager *m, int64_t want, int64_t timeout_ms);

/* SQL on a separate plain connection to the database at `path`; a failure
 * fails the test. tu_sql_int returns the first column of the first row. */
void tu_sql_exec(const char *path, const char *sql);
int64_t tu_sql_int(const char *path, const char *sql);
/* Damage from outside (a tool or a bad disk writing the file): sets the
 * NOT NULL TEXT `column` of jm_jobs row `seq` to NULL. The constraint is
 * lifted for that one write and put back, so a connection open meanwhile
 * keeps the schema it knows and meets a row none of its writes could make. */
void tu_damage_null(const char *path, const char *column, int64_t seq);

#endif
