/* Implementation of the test helpers; see test_util.h. */
#define _GNU_SOURCE
#include "test_util.h"

#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "test_store.h"

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/jmtest-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmdir(char *dir)
{
    if (!dir)
        return;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

char *tu_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int64_t tu_fake_now(void *user)
{
    return atomic_load(&((tu_clock *)user)->now);
}

void tu_clock_advance(tu_clock *c, int64_t ms)
{
    atomic_fetch_add(&c->now, ms);
}

int64_t tu_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tu_wait_until(int (*cond)(void *arg), void *arg, int64_t timeout_ms)
{
    int64_t end = tu_mono_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return 1;
        if (tu_mono_ms() > end)
            return cond(arg);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

void tu_log_init(tu_log *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_t *mu = malloc(sizeof *mu);
    pthread_mutex_init(mu, NULL);
    l->mutex = mu;
}

void tu_log_destroy(tu_log *l)
{
    if (l->mutex) {
        pthread_mutex_destroy(l->mutex);
        free(l->mutex);
        l->mutex = NULL;
    }
}

int tu_log_has(tu_log *l, const char *needle)
{
    pthread_mutex_lock(l->mutex);
    int found = strstr(l->all, needle) != NULL;
    pthread_mutex_unlock(l->mutex);
    return found;
}

void tu_log_fn(void *user, jm_log_level level, const char *line)
{
    (void)level;
    tu_log *l = user;
    pthread_mutex_lock(l->mutex);
    snprintf(l->last, sizeof l->last, "%s", line);
    size_t len = strlen(line);
    if (l->used + len + 2 < sizeof l->all) {
        memcpy(l->all + l->used, line, len);
        l->used += len;
        l->all[l->used++] = '\n';
        l->all[l->used] = '\0';
    }
    atomic_fetch_add(&l->lines, 1);
    pthread_mutex_unlock(l->mutex);
}

jm_config tu_config(const char *db)
{
    jm_config cfg = JM_CONFIG_INIT;
    tu_skip_without_pg_server();
    if (tu_store_pg()) {
        cfg.db_url = tu_pg_url();
        cfg.pg_schema = tu_pg_schema(db);
    } else {
        cfg.db_path = db;
    }
    cfg.log_level = JM_LOG_OFF;
    cfg.lease_ms = 2000;
    cfg.poll_interval_ms = 50;
    cfg.backoff_base_ms = 10;
    cfg.backoff_max_ms = 100;
    cfg.backoff_jitter = 0;
    cfg.busy_timeout_ms = 20000;
    return cfg;
}

int tu_status(jm_manager *m, const char *id)
{
    jm_job *j = NULL;
    if (jm_get(m, id, &j) != JM_OK)
        return -1;
    int s = (int)jm_job_status(j);
    jm_job_free(j);
    return s;
}

typedef struct completed_wait {
    jm_manager *m;
    int64_t want;
} completed_wait;

static int completed_reached(void *arg)
{
    completed_wait *w = arg;
    jm_filter f = JM_FILTER_INIT;
    f.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
    int64_t n = 0;
    return jm_count(w->m, &f, &n) == JM_OK && n >= w->want;
}

int tu_wait_completed(jm_manager *m, int64_t want, int64_t timeout_ms)
{
    completed_wait w = {m, want};
    return tu_wait_until(completed_reached, &w, timeout_ms);
}

void tu_sql_exec(const char *path, const char *sql)
{
    if (tu_store_pg()) {
        tu_pg_sql(path, sql, 0);
        return;
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 20000);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : "?");
    sqlite3_close(db);
}

int64_t tu_sql_int(const char *path, const char *sql)
{
    if (tu_store_pg())
        return (int64_t)tu_pg_sql(path, sql, 1);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    /* Other processes may be writing: wait for their locks, as tu_sql_exec. */
    sqlite3_busy_timeout(db, 20000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void tu_damage_null(const char *path, const char *column, int64_t seq)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "PRAGMA writable_schema=ON; UPDATE sqlite_master SET sql = replace(sql, "
             "' %s TEXT NOT NULL', ' %s TEXT /*lifted*/') WHERE name = 'jm_jobs'",
             column, column);
    tu_sql_exec(path, sql);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM sqlite_master WHERE name = 'jm_jobs' "
             "AND instr(sql, ' %s TEXT /*lifted*/') > 0",
             column);
    assert_int_equal(tu_sql_int(path, sql), 1);
    /* A new connection reads the lifted schema. */
    snprintf(sql, sizeof sql, "UPDATE jm_jobs SET %s = NULL WHERE seq = %lld", column,
             (long long)seq);
    tu_sql_exec(path, sql);
    snprintf(sql, sizeof sql,
             "PRAGMA writable_schema=ON; UPDATE sqlite_master SET sql = replace(sql, "
             "' %s TEXT /*lifted*/', ' %s TEXT NOT NULL') WHERE name = 'jm_jobs'",
             column, column);
    tu_sql_exec(path, sql);
}
