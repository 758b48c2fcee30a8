/*
 * Helpers shared by the scenarios: clocks, statistics, temporary
 * directories, /proc and getrusage figures, the common job parameters, and
 * set-up shortcuts. It times nothing itself and prints only errors.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700

#include "bench_util.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

/* Rows of the set-up UPDATE per transaction: keeps the WAL small. */
#define BU_MARK_CHUNK 100000

int64_t bu_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bu_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double bu_seconds_since(int64_t start_ns)
{
    return (double)(bu_mono_ns() - start_ns) / 1e9;
}

void bu_sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bu_median(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bu_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    double rank = ceil(p / 100.0 * (double)n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    return v[i < n ? i : n - 1];
}

double bu_max(const double *v, size_t n)
{
    double m = n ? v[0] : NAN;
    for (size_t i = 1; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

double bu_min(const double *v, size_t n)
{
    double m = n ? v[0] : NAN;
    for (size_t i = 1; i < n; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

char *bu_path(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s/%s", dir, name);
    return p;
}

char *bu_mkdtemp(const char *parent, const char *prefix)
{
    size_t len = strlen(parent) + strlen(prefix) + 16;
    char *p = malloc(len);
    if (!p)
        return NULL;
    snprintf(p, len, "%s/%s-XXXXXX", parent, prefix);
    if (!mkdtemp(p)) {
        fprintf(stderr, "jm-bench: mkdtemp %s: %s\n", p, strerror(errno));
        free(p);
        return NULL;
    }
    return p;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void bu_rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

long bu_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    size_t flen = strlen(field);
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kib = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

double bu_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void bu_job_params(char *buf, size_t len, long i)
{
    snprintf(buf, len, "{\"i\":%ld,\"payload\":\"abcdefghijklmnopqrstuvwxyz01\"}", i);
}

/* Random bytes for ids, drawn from the kernel 512 at a time, per thread.
 * libuuid's uuid_generate_random makes six system calls per id (it
 * reseeds the C library's generator every time): 12 to 20 us here, more
 * than a batched insert's row, and varying with the load of the machine,
 * which made the raw baseline slow and unsteady. The library draws its
 * ids' random bits in blocks too (src/record/job_id.c). */
#define BU_ID_POOL 512

static void id_random(unsigned char *dst, size_t n)
{
    static _Thread_local unsigned char pool[BU_ID_POOL];
    static _Thread_local size_t used = BU_ID_POOL;
    if (used + n > BU_ID_POOL) {
        size_t got = 0;
        while (got < BU_ID_POOL) {
            ssize_t r = getrandom(pool + got, BU_ID_POOL - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got < BU_ID_POOL) {
            uuid_t u;
            uuid_generate_random(u);
            memcpy(dst, u, n < sizeof u ? n : sizeof u);
            return;
        }
        used = 0;
    }
    memcpy(dst, pool + used, n);
    used += n;
}

void bu_time_ordered_id(const char *type, char out[JM_JOB_ID_SIZE])
{
    uuid_t u;
    id_random(u, sizeof u);
    uint64_t ms = (uint64_t)bu_wall_ms();
    for (int i = 5; i >= 0; i--) {
        u[i] = (unsigned char)(ms & 0xff);
        ms >>= 8;
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x70);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    out[0] = type[0];
    out[1] = type[1];
    out[2] = '-';
    uuid_unparse_lower(u, out + 3);
}

int bu_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "jm-bench: SQL error (%s): %s\n", sql, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return 1;
    }
    return 0;
}

sqlite3 *bu_sqlite_open(const char *path, const char *synchronous)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        fprintf(stderr, "jm-bench: open %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, JM_DEFAULT_BUSY_TIMEOUT_MS);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", synchronous);
    if (bu_exec(db, "PRAGMA journal_mode=WAL") || bu_exec(db, sql)) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

jm_config bu_config(const char *db_path)
{
    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = db_path;
    cfg.log_level = JM_LOG_ERROR;
    return cfg;
}

struct bu_counter {
    atomic_long count;
    long target;
    pthread_mutex_t lock;
    pthread_cond_t cv;
};

bu_counter *bu_counter_new(long target)
{
    bu_counter *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_init(&c->count, 0);
    c->target = target;
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    return c;
}

void bu_counter_free(bu_counter *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cv);
    free(c);
}

long bu_counter_value(bu_counter *c)
{
    return atomic_load(&c->count);
}

int bu_counter_wait(bu_counter *c, double timeout_s)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)timeout_s;
    until.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    while (atomic_load(&c->count) < c->target && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->lock, &until);
    int reached = atomic_load(&c->count) >= c->target;
    pthread_mutex_unlock(&c->lock);
    return reached ? 0 : 1;
}

void bu_counter_bump(bu_counter *c)
{
    if (atomic_fetch_add(&c->count, 1) + 1 == c->target) {
        pthread_mutex_lock(&c->lock);
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->lock);
    }
}

static jm_decision noop_execute(void *self, jm_ctx *ctx)
{
    (void)ctx;
    bu_counter_bump(self);
    return jm_decision_completed(NULL, NULL);
}

int bu_register_noop(jm_manager *m, const char *type, bu_counter *c)
{
    jm_executor ex = {JM_EXECUTOR_VERSION, type, "bench-noop", 1, NULL, noop_execute, NULL, JM_CLASS_NORMAL, NULL};
    return jm_register(m, &ex, c);
}

int bu_check_count(jm_manager *m, const char *scenario, long want, const char *what)
{
    jm_filter f = JM_FILTER_INIT;
    int64_t total = -1;
    int rc = jm_count(m, &f, &total);
    if (rc != JM_OK || total != want) {
        bench_fail(scenario, "%s: %lld jobs in the table after %ld creates (%s)", what,
                   (long long)total, want, rc == JM_OK ? "count" : jm_last_error());
        return 1;
    }
    return 0;
}

int bu_fill(jm_manager *m, const char *type, long n, long batch, int varied, long first)
{
    if (batch > JM_MAX_CREATE_MANY)
        batch = JM_MAX_CREATE_MANY;
    jm_new_job *jobs = calloc((size_t)batch, sizeof *jobs);
    char (*params)[96] = calloc((size_t)batch, sizeof *params);
    char (*ns)[16] = calloc((size_t)batch, sizeof *ns);
    char (*keys)[24] = calloc((size_t)batch, sizeof *keys);
    char (*ids)[JM_JOB_ID_SIZE] = calloc((size_t)batch, sizeof *ids);
    int rc = JM_ENOMEM;
    if (!jobs || !params || !ns || !keys || !ids)
        goto done;
    rc = JM_OK;
    for (long done_n = 0; done_n < n && rc == JM_OK;) {
        long k = n - done_n < batch ? n - done_n : batch;
        for (long j = 0; j < k; j++) {
            long i = first + done_n + j;
            jm_create_opts o = JM_CREATE_OPTS_INIT;
            bu_job_params(params[j], sizeof params[j], i);
            if (varied) {
                snprintf(ns[j], sizeof ns[j], "ns-%ld", i % 100);
                snprintf(keys[j], sizeof keys[j], "k-%ld", i);
                o.namespace_id = ns[j];
                o.idempotency_key = keys[j];
            }
            jobs[j].type = type;
            jobs[j].params_json = params[j];
            jobs[j].opts = o;
        }
        rc = jm_create_many(m, jobs, (size_t)k, ids);
        if (rc != JM_OK)
            fprintf(stderr, "jm-bench: jm_create_many: %s: %s\n", jm_strerror(rc), jm_last_error());
        done_n += k;
    }
done:
    free(jobs);
    free(params);
    free(ns);
    free(keys);
    free(ids);
    return rc;
}

int bu_update_in_chunks(const char *db_path, const char *sql, const bu_bind *binds, size_t n,
                        const char *what)
{
    sqlite3 *db = bu_sqlite_open(db_path, "NORMAL");
    if (!db)
        return 1;
    int rc = 0;
    sqlite3_int64 maxseq = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), 0) FROM jm_jobs", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        maxseq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "jm-bench: %s: %s\n", what, sqlite3_errmsg(db));
        rc = 1;
        goto done;
    }
    /* Bindings outlive sqlite3_reset: only the chunk's bounds change. */
    for (size_t i = 0; i < n; i++)
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, binds[i].name), binds[i].value);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":maxseq"), maxseq ? maxseq : 1);
    for (sqlite3_int64 lo = 1; lo <= maxseq && rc == 0; lo += BU_MARK_CHUNK) {
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":lo"), lo);
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":hi"), lo + BU_MARK_CHUNK - 1);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "jm-bench: %s: %s\n", what, sqlite3_errmsg(db));
            rc = 1;
        }
        sqlite3_reset(st);
    }
    if (rc == 0)
        rc = bu_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int bu_mark_completed(const char *db_path, int64_t finished)
{
    /* The library's schema stores statuses as jm_status integers. */
    static const char sql[] =
        "UPDATE jm_jobs SET status = :completed, attempts = 1, "
        "started_at = :finished, finished_at = :finished, updated_at = :finished "
        "WHERE seq BETWEEN :lo AND :hi AND status = :queued";
    const bu_bind binds[] = {
        {":completed", JM_STATUS_COMPLETED},
        {":queued", JM_STATUS_QUEUED},
        {":finished", finished},
    };
    return bu_update_in_chunks(db_path, sql, binds, sizeof binds / sizeof binds[0],
                               "marking jobs completed");
}

void bu_remove_db(const char *path)
{
    size_t len = strlen(path) + 8;
    char *side = malloc(len);
    remove(path);
    if (!side)
        return;
    snprintf(side, len, "%s-wal", path);
    remove(side);
    snprintf(side, len, "%s-shm", path);
    remove(side);
    free(side);
}

char *bu_db_path(const char *dir, const char *stem)
{
    static atomic_int seq;
    char name[64];
    snprintf(name, sizeof name, "%s-%d.db", stem, atomic_fetch_add(&seq, 1));
    return bu_path(dir, name);
}

void bu_counter_reset(bu_counter *c, long target)
{
    pthread_mutex_lock(&c->lock);
    atomic_store(&c->count, 0);
    c->target = target;
    pthread_mutex_unlock(&c->lock);
}
