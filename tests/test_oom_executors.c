/*
 * Out of memory beyond the core: every built-in executor's job, run on the
 * reference engine with small tables, while allocation N fails, for
 * N = 1, 2, 3, ... until a run completes without reaching the fault. The
 * failing allocation may be the library's (jm_set_allocator, which cJSON
 * shares) or SQLite's (sqlite3_config(SQLITE_CONFIG_MALLOC) with a wrapper
 * around SQLite's default methods): one counter covers both, so every
 * allocation of a run is failed in turn.
 *
 * Each run must end in JM_OK or JM_ENOMEM from jm_run_once, with the job
 * completed, waiting to run again (queued or retrying), or failed with an
 * out-of-memory message; never a crash, never a leak (the allocator counts
 * live blocks; ASan/LSan watch the rest). With the fault lifted the job
 * runs to completion (after jm_retry if it had failed), no job is lost, the
 * engine holds exactly the rows it should, and both the jobs database and
 * the engine's catalog pass PRAGMA integrity_check. jm_open and
 * jm_engine_open are walked the same way.
 *
 * Cost: every N up to OOM_DENSE is tried; beyond it N grows by about 2% a
 * step, which keeps the plain ctest run short while still reaching the end
 * of each run. JM_OOM_FULL=1 in the environment tries every N.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "jobmgr/engine.h"
#include "test_util.h"

#define T0 INT64_C(1700000000000)
#define HOUR_MS INT64_C(3600000)
#define OOM_DENSE 400
#define MAX_N 200000

/* ------------------------------------------------------------------------
 * One fault counter for the library's and SQLite's allocations
 * ------------------------------------------------------------------------ */

typedef struct counter {
    _Atomic long live;        /* library blocks alive */
    _Atomic long armed_count; /* allocations (both kinds) since arming */
    _Atomic long fail_at;     /* 0: never */
    _Atomic int failed;
    _Atomic long injected;    /* failures injected over the whole run */
} counter;

static counter C;

static int should_fail(void)
{
    long at = atomic_load(&C.fail_at);
    if (at <= 0)
        return 0;
    long k = atomic_fetch_add(&C.armed_count, 1) + 1;
    if (k != at)
        return 0;
    atomic_store(&C.failed, 1);
    atomic_fetch_add(&C.injected, 1);
    return 1;
}

static void arm(long n)
{
    atomic_store(&C.armed_count, 0);
    atomic_store(&C.failed, 0);
    atomic_store(&C.fail_at, n);
}

static void disarm(void)
{
    atomic_store(&C.fail_at, 0);
}

typedef union header {
    size_t size;
    max_align_t align;
} header;

static void *count_malloc(void *user, size_t size)
{
    (void)user;
    if (should_fail())
        return NULL;
    header *h = malloc(sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    atomic_fetch_add(&C.live, 1);
    return h + 1;
}

static void count_free(void *user, void *p)
{
    (void)user;
    if (!p)
        return;
    atomic_fetch_sub(&C.live, 1);
    free((header *)p - 1);
}

static const jm_allocator counting = {JM_ALLOCATOR_VERSION, count_malloc, count_free, NULL};

/* SQLite's default methods, wrapped. */
static sqlite3_mem_methods orig_mem;

static void *sq_malloc(int n)
{
    return should_fail() ? NULL : orig_mem.xMalloc(n);
}

static void *sq_realloc(void *p, int n)
{
    return should_fail() ? NULL : orig_mem.xRealloc(p, n);
}

static void sq_free(void *p)
{
    orig_mem.xFree(p);
}

static int sq_size(void *p)
{
    return orig_mem.xSize(p);
}

static int sq_roundup(int n)
{
    return orig_mem.xRoundup(n);
}

static int sq_init(void *app)
{
    (void)app;
    return orig_mem.xInit(orig_mem.pAppData);
}

static void sq_shutdown(void *app)
{
    (void)app;
    orig_mem.xShutdown(orig_mem.pAppData);
}

static int group_setup(void **state)
{
    (void)state;
    /* SQLite takes a new allocator only while it is shut down. */
    assert_int_equal(sqlite3_shutdown(), SQLITE_OK);
    assert_int_equal(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &orig_mem), SQLITE_OK);
    static sqlite3_mem_methods wrap;
    wrap = orig_mem;
    wrap.xMalloc = sq_malloc;
    wrap.xRealloc = sq_realloc;
    wrap.xFree = sq_free;
    wrap.xSize = sq_size;
    wrap.xRoundup = sq_roundup;
    wrap.xInit = sq_init;
    wrap.xShutdown = sq_shutdown;
    wrap.pAppData = NULL;
    assert_int_equal(sqlite3_config(SQLITE_CONFIG_MALLOC, &wrap), SQLITE_OK);
    assert_int_equal(sqlite3_initialize(), SQLITE_OK);
    assert_int_equal(jm_set_allocator(&counting), JM_OK);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    disarm();
    jm_set_allocator(NULL);
    sqlite3_shutdown();
    sqlite3_config(SQLITE_CONFIG_MALLOC, &orig_mem);
    sqlite3_initialize();
    printf("# out of memory: %ld allocation failures injected in all\n",
           atomic_load(&C.injected));
    return 0;
}

/* The next N after `n`: every one up to OOM_DENSE (all with JM_OOM_FULL). */
static long next_n(long n)
{
    static int full = -1;
    if (full < 0) {
        const char *e = getenv("JM_OOM_FULL");
        full = e && *e && strcmp(e, "0") != 0;
    }
    if (full || n < OOM_DENSE)
        return n + 1;
    return n + n / 50 + 1;
}

/* ------------------------------------------------------------------------
 * Fixture: a manager with the built-ins on an engine
 * ------------------------------------------------------------------------ */

/* Wrong outcomes, grouped by executor and kind so that one cause failing
 * hundreds of N still reads as one line: count, first and last N, and the
 * first occurrence's detail. */
typedef struct finding {
    char key[64];
    long count, first, last;
    char detail[400];
} finding;

#define MAX_FINDINGS 64
static finding FD[MAX_FINDINGS];
static int NFD;
static int NT_COUNT;

static void finding_add(const char *who, const char *kind, long n, const char *fmt, ...)
    JM_PRINTF(4, 5);
static void finding_add(const char *who, const char *kind, long n, const char *fmt, ...)
{
    char key[64];
    snprintf(key, sizeof key, "%s: %s", who, kind);
    NT_COUNT++;
    for (int i = 0; i < NFD; i++) {
        if (strcmp(FD[i].key, key) == 0) {
            FD[i].count++;
            FD[i].last = n;
            return;
        }
    }
    if (NFD == MAX_FINDINGS)
        return;
    finding *f = &FD[NFD++];
    snprintf(f->key, sizeof f->key, "%s", key);
    f->count = 1;
    f->first = f->last = n;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->detail, sizeof f->detail, fmt, ap);
    va_end(ap);
}

static void findings_reset(void)
{
    NFD = 0;
    NT_COUNT = 0;
}

static void findings_check(void)
{
    if (!NT_COUNT)
        return;
    for (int i = 0; i < NFD; i++)
        printf("FINDING %s: %ld time(s), allocation %ld..%ld failing; first: %s\n", FD[i].key,
               FD[i].count, FD[i].first, FD[i].last, FD[i].detail);
    fail_msg("%d wrong outcome(s) under allocation failure, listed above", NT_COUNT);
}

typedef struct fx {
    char *dir, *db, *edir, *catalog, *bk;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
    jm_engine *e;
    int64_t jobs; /* jobs the manager must hold */
    int iter;     /* iterations so far, for unique names */
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    f->edir = tu_path(f->dir, "engine");
    f->catalog = tu_path(f->edir, "catalog.db");
    f->bk = tu_path(f->dir, "backups");
    assert_int_equal(jm_engine_open(f->edir, &f->e), JM_OK);
    assert_int_equal(jm_engine_create_namespace(f->e, "app"), JM_OK);
    atomic_store(&f->clock.now, T0);
    f->cfg = tu_config(f->db);
    f->cfg.now_ms = tu_fake_now;
    f->cfg.now_user = &f->clock;
    f->cfg.node_id = "oom-node";
    f->cfg.host = jm_engine_host(f->e);
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    assert_int_equal(jm_register_builtin(f->m), JM_OK);
    findings_reset();
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    disarm();
    jm_close(f->m);
    jm_engine_close(f->e);
    /* Every block the library allocated has been given back. */
    long live = atomic_load(&C.live);
    free(f->db);
    free(f->edir);
    free(f->catalog);
    free(f->bk);
    tu_rmdir(f->dir);
    free(f);
    if (live != 0)
        fail_msg("%ld library allocations leaked", live);
    return 0;
}

static void integrity_ok(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *r = (const char *)sqlite3_column_text(st, 0);
    if (!r || strcmp(r, "ok") != 0)
        fail_msg("integrity_check of %s: %s", path, r ? r : "(null)");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int finished(int s)
{
    return s == JM_STATUS_COMPLETED || s == JM_STATUS_FAILED || s == JM_STATUS_CANCELLED;
}

/* Runs due jobs (follow-up jobs too) until `id` ends; moves the clock over
 * backoffs and continuation delays. */
static int run_to_end(fx *f, const char *id)
{
    for (int i = 0; i < 200; i++) {
        int s = tu_status(f->m, id);
        if (finished(s))
            return s;
        int ran = 0;
        int rc = jm_run_once(f->m, 1, &ran);
        if (rc != JM_OK)
            fail_msg("jm_run_once without a fault: %s (%s)", jm_err_name(rc), jm_last_error());
        if (ran == 0) {
            tu_clock_advance(&f->clock, HOUR_MS);
            int rec = 0;
            assert_int_equal(jm_recover(f->m, &rec), JM_OK);
        }
    }
    return tu_status(f->m, id);
}

/* ------------------------------------------------------------------------
 * One executor's scenario: prepare (fault off), the job, the check after
 * ------------------------------------------------------------------------ */

typedef struct scenario {
    const char *name;
    /* Prepares the engine for iteration `i` and writes the job's params. */
    void (*prepare)(fx *f, int i, char *params, size_t len);
    /* After the job completed: the engine holds what it should. */
    void (*check)(fx *f, int i);
} scenario;

static void insert_rows(fx *f, const char *table, int n, int64_t created, int64_t deleted)
{
    for (int k = 0; k < n; k++) {
        char doc[96];
        snprintf(doc, sizeof doc, "{\"k\":%d,\"text\":\"row %d of %s\"}", k, k, table);
        int64_t key = 0;
        assert_int_equal(jm_engine_insert(f->e, "app", table, doc, created, &key), JM_OK);
        if (deleted)
            assert_int_equal(jm_engine_soft_delete(f->e, "app", table, key, deleted), JM_OK);
    }
}

static int64_t rows_of(fx *f, const char *table, int include_deleted)
{
    int64_t n = -1;
    assert_int_equal(jm_engine_count(f->e, "app", table, include_deleted, &n), JM_OK);
    return n;
}

static int exists(fx *f, const char *table)
{
    int yes = -1;
    assert_int_equal(jm_engine_table_exists(f->e, "app", table, &yes), JM_OK);
    return yes;
}

static void ensure_table(fx *f, const char *table, jm_table_type type, int64_t ttl)
{
    if (exists(f, table))
        return;
    jm_table_opts o = JM_TABLE_OPTS_INIT;
    o.ttl_seconds = ttl;
    assert_int_equal(jm_engine_create_table(f->e, "app", table, type, &o), JM_OK);
}

#define TABLE_PARAMS(table, type) \
    "{\"namespace_id\":\"app\",\"table_name\":\"" table "\",\"table_type\":\"" type "\""

/* Flush: 4 new rows each time; afterwards none is buffered. */
static void fl_prepare(fx *f, int i, char *p, size_t n)
{
    (void)i;
    ensure_table(f, "fl", JM_TABLE_USER, 0);
    insert_rows(f, "fl", 4, 0, 0);
    snprintf(p, n, TABLE_PARAMS("fl", "User") "}");
}

static void fl_check(fx *f, int i)
{
    jm_host_table info;
    const jm_host *h = jm_engine_host(f->e);
    assert_int_equal(h->table_info(h->self, "app", "fl", &info), JM_OK);
    assert_int_equal(info.buffered_rows, 0);
    assert_int_equal(rows_of(f, "fl", 1), 4 * (i + 1));
}

/* Cleanup: a fresh table with rows in the buffer and a segment. */
static void cl_prepare(fx *f, int i, char *p, size_t n)
{
    char t[32];
    snprintf(t, sizeof t, "cl%d", i);
    ensure_table(f, t, JM_TABLE_SHARED, 0);
    insert_rows(f, t, 3, 0, 0);
    const jm_host *h = jm_engine_host(f->e);
    jm_host_flush fo;
    assert_int_equal(h->flush(h->self, "app", t, &fo), JM_OK);
    insert_rows(f, t, 2, 0, 0);
    snprintf(p, n,
             "{\"table_id\":\"app:%s\",\"table_type\":\"Shared\",\"operation\":\"drop_table\"}",
             t);
}

static void cl_check(fx *f, int i)
{
    char t[32];
    snprintf(t, sizeof t, "cl%d", i);
    assert_int_equal(exists(f, t), 0);
}

/* Retention: 3 rows soft-deleted two days ago and 2 live rows. */
static void rt_prepare(fx *f, int i, char *p, size_t n)
{
    (void)i;
    ensure_table(f, "rt", JM_TABLE_USER, 0);
    int64_t now = tu_fake_now(&f->clock);
    insert_rows(f, "rt", 3, now - 72 * HOUR_MS, now - 48 * HOUR_MS);
    insert_rows(f, "rt", 2, now - 72 * HOUR_MS, 0);
    snprintf(p, n, TABLE_PARAMS("rt", "User") ",\"retention_hours\":1}");
}

static void rt_check(fx *f, int i)
{
    /* Every soft-deleted row is gone, every live one kept. */
    assert_int_equal(rows_of(f, "rt", 1), rows_of(f, "rt", 0));
    assert_int_equal(rows_of(f, "rt", 0), 2 * (i + 1));
}

/* Stream eviction: 3 rows past their TTL, 1 fresh, batches of 2. */
static void se_prepare(fx *f, int i, char *p, size_t n)
{
    (void)i;
    ensure_table(f, "se", JM_TABLE_STREAM, 60);
    int64_t now = tu_fake_now(&f->clock);
    insert_rows(f, "se", 3, now - HOUR_MS, 0);
    insert_rows(f, "se", 1, now + 100000 * HOUR_MS, 0); /* the clock moves on */
    snprintf(p, n, TABLE_PARAMS("se", "Stream") ",\"ttl_seconds\":60,\"batch_size\":2}");
}

static void se_check(fx *f, int i)
{
    assert_int_equal(rows_of(f, "se", 1), i + 1);
}

/* User cleanup: a soft-deleted user owning a table, with an ACL entry and
 * a live query; cascade creates a cleanup job for the table. */
static void uc_prepare(fx *f, int i, char *p, size_t n)
{
    char u[32], t[32];
    snprintf(u, sizeof u, "u%d", i);
    snprintf(t, sizeof t, "uct%d", i);
    assert_int_equal(jm_engine_create_user(f->e, u, "User"), JM_OK);
    jm_table_opts o = JM_TABLE_OPTS_INIT;
    o.owner_user_id = u;
    assert_int_equal(jm_engine_create_table(f->e, "app", t, JM_TABLE_USER, &o), JM_OK);
    insert_rows(f, t, 2, 0, 0);
    ensure_table(f, "ucshared", JM_TABLE_SHARED, 0);
    assert_int_equal(jm_engine_grant(f->e, "app", "ucshared", u), JM_OK);
    int64_t q = 0;
    assert_int_equal(jm_engine_add_live_query(f->e, u, "app", "ucshared", &q), JM_OK);
    assert_int_equal(jm_engine_soft_delete_user(f->e, u), JM_OK);
    snprintf(p, n, "{\"user_id\":\"%s\",\"username\":\"User\",\"cascade\":true}", u);
}

static void uc_check(fx *f, int i)
{
    char u[32], t[32];
    snprintf(u, sizeof u, "u%d", i);
    snprintf(t, sizeof t, "uct%d", i);
    int yes = -1;
    assert_int_equal(jm_engine_user_exists(f->e, u, &yes), JM_OK);
    assert_int_equal(yes, 0);
    assert_int_equal(exists(f, t), 0);
    int64_t k = -1;
    assert_int_equal(jm_engine_count_acl(f->e, u, &k), JM_OK);
    assert_int_equal(k, 0);
    assert_int_equal(jm_engine_count_live_queries(f->e, u, &k), JM_OK);
    assert_int_equal(k, 0);
}

/* Compact: three small segments (one row soft-deleted) into one. */
static void co_prepare(fx *f, int i, char *p, size_t n)
{
    (void)i;
    ensure_table(f, "co", JM_TABLE_USER, 0);
    const jm_host *h = jm_engine_host(f->e);
    for (int k = 0; k < 3; k++) {
        insert_rows(f, "co", 2, 0, 0);
        jm_host_flush fo;
        assert_int_equal(h->flush(h->self, "app", "co", &fo), JM_OK);
    }
    snprintf(p, n, TABLE_PARAMS("co", "User") ",\"target_file_size_mb\":64}");
}

static void co_check(fx *f, int i)
{
    int64_t segs = -1;
    assert_int_equal(jm_engine_segment_count(f->e, "app", "co", &segs), JM_OK);
    assert_int_equal(segs, 1);
    assert_int_equal(rows_of(f, "co", 1), 6 * (i + 1));
}

/* Backup (zstd) of a small table with a segment and buffered rows. */
static void bk_prepare(fx *f, int i, char *p, size_t n)
{
    if (!exists(f, "bk")) {
        ensure_table(f, "bk", JM_TABLE_USER, 0);
        insert_rows(f, "bk", 3, 0, 0);
        const jm_host *h = jm_engine_host(f->e);
        jm_host_flush fo;
        assert_int_equal(h->flush(h->self, "app", "bk", &fo), JM_OK);
        insert_rows(f, "bk", 2, 0, T0);
    }
    snprintf(p, n,
             TABLE_PARAMS("bk", "User") ",\"backup_location\":\"%s\",\"compression\":\"%s\"}",
             f->bk, i % 2 ? "none" : "zstd");
}

static char g_last_backup[4096]; /* a completed backup, for the restores */

static void bk_check(fx *f, int i)
{
    (void)f;
    (void)i;
}

/* Restore of a backup made without faults into a new table each time. */
static void rs_prepare(fx *f, int i, char *p, size_t n)
{
    if (!g_last_backup[0]) {
        char bparams[4096], id[JM_JOB_ID_SIZE];
        bk_prepare(f, 0, bparams, sizeof bparams);
        assert_int_equal(jm_create(f->m, "BK", bparams, NULL, id), JM_OK);
        f->jobs++;
        assert_int_equal(run_to_end(f, id), JM_STATUS_COMPLETED);
        snprintf(g_last_backup, sizeof g_last_backup, "%s/app/bk/%s", f->bk, id);
    }
    snprintf(p, n,
             "{\"backup_location\":\"%s\",\"target_namespace\":\"app\","
             "\"target_table_name\":\"rs%d\"}",
             g_last_backup, i);
}

static void rs_check(fx *f, int i)
{
    char t[32];
    snprintf(t, sizeof t, "rs%d", i);
    assert_int_equal(rows_of(f, t, 1), 5);
    assert_int_equal(rows_of(f, t, 0), 3);
}

static const scenario scenarios[] = {
    {"FL", fl_prepare, fl_check}, {"CL", cl_prepare, cl_check}, {"RT", rt_prepare, rt_check},
    {"SE", se_prepare, se_check}, {"UC", uc_prepare, uc_check}, {"CO", co_prepare, co_check},
    {"BK", bk_prepare, bk_check}, {"RS", rs_prepare, rs_check},
};

static int oom_message(const char *msg)
{
    return msg && (strcasestr(msg, "out of memory") || strcasestr(msg, "ENOMEM"));
}

/* Walks N for one executor's job; returns the number of faults injected. */
static long walk(fx *f, const scenario *sc)
{
    long injected0 = atomic_load(&C.injected);
    long n;
    int i = 0;
    for (n = 1; n < MAX_N; n = next_n(n), i++) {
        char params[8192], id[JM_JOB_ID_SIZE];
        sc->prepare(f, i, params, sizeof params);
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.priority = 10; /* before any follow-up job */
        int rc = jm_create(f->m, sc->name, params, &o, id);
        if (rc)
            fail_msg("%s: jm_create(%s) = %s (%s)", sc->name, params, jm_err_name(rc),
                     jm_last_error());
        f->jobs++;

        arm(n);
        int ran = -1;
        rc = jm_run_once(f->m, 1, &ran);
        int failed = atomic_load(&C.failed);
        disarm();
        int rc0 = rc;

        if (rc != JM_OK && rc != JM_ENOMEM)
            finding_add(sc->name, "jm_run_once returned another code", n, "%s (%s)",
                        jm_err_name(rc), jm_last_error());
        jm_job *j = NULL;
        rc = jm_get(f->m, id, &j);
        if (rc != JM_OK)
            fail_msg("%s, allocation %ld failing: the job is lost (%s)", sc->name, n,
                     jm_last_error());
        int st = (int)jm_job_status(j);
        const char *msg = jm_job_message(j);
        char seen[300];
        snprintf(seen, sizeof seen, "%s (\"%s\")", jm_status_name((jm_status)st),
                 msg ? msg : "");
        if (st == JM_STATUS_FAILED && !oom_message(msg))
            finding_add(sc->name, "failed without an out-of-memory message", n, "\"%s\"",
                        msg ? msg : "");
        if (st == JM_STATUS_CANCELLED)
            finding_add(sc->name, "cancelled", n, "%s", seen);
        jm_job_free(j);
        if (st == JM_STATUS_RUNNING) {
            /* An outcome that could not be recorded is kept and recorded by
             * the next call: the job must not wait for its lease to end. */
            char why[300];
            snprintf(why, sizeof why, "%s", jm_last_error());
            ran = -1;
            rc = jm_run_once(f->m, 1, &ran);
            j = NULL;
            assert_int_equal(jm_get(f->m, id, &j), JM_OK);
            int after = (int)jm_job_status(j);
            jm_job_free(j);
            if (rc != JM_OK || after == JM_STATUS_RUNNING)
                finding_add(sc->name, "left running (recovered only when its lease expires)", n,
                            "jm_run_once returned %s (\"%s\"); the next call %s, job %s",
                            jm_err_name(rc0), why, jm_err_name(rc),
                            jm_status_name((jm_status)after));
            if (after != JM_STATUS_RUNNING)
                st = after;
        }

        /* The fault lifted: the job ends well (by hand if it had failed). */
        if (st == JM_STATUS_FAILED) {
            rc = jm_retry(f->m, id);
            if (rc)
                fail_msg("%s: jm_retry after allocation %ld: %s", sc->name, n,
                         jm_last_error());
        }
        int end = run_to_end(f, id);
        if (end != JM_STATUS_COMPLETED) {
            jm_job *jj = NULL;
            assert_int_equal(jm_get(f->m, id, &jj), JM_OK);
            finding_add(sc->name, "did not complete once the fault was lifted", n,
                        "after the faulty run %s; then it ended %s (\"%s\")", seen,
                        jm_status_name((jm_status)end),
                        jm_job_message(jj) ? jm_job_message(jj) : "");
            jm_job_free(jj);
        } else {
            sc->check(f, i);
        }
        int64_t total = -1;
        assert_int_equal(jm_count(f->m, NULL, &total), JM_OK);
        if (total < f->jobs)
            fail_msg("%s: %lld jobs, want at least %lld", sc->name, (long long)total,
                     (long long)f->jobs);
        f->jobs = total; /* follow-up jobs (user cleanup) count from now on */
        if (i % 16 == 0 || !failed) {
            integrity_ok(f->db);
            integrity_ok(f->catalog);
        }
        if (!failed)
            break;
    }
    if (n >= MAX_N)
        fail_msg("%s: still failing at allocation %ld", sc->name, n);
    long k = atomic_load(&C.injected) - injected0;
    printf("# %s: %ld allocation failures injected over %d runs (a run makes %ld "
           "allocations)\n",
           sc->name, k, i + 1, n - 1);
    return k;
}

static void executor_jobs(void **state)
{
    fx *f = *state;
    for (size_t s = 0; s < sizeof scenarios / sizeof scenarios[0]; s++)
        walk(f, &scenarios[s]);
    findings_check();
}

/* jm_open and jm_engine_open under the same faults. */
static void opens(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *db = tu_path(dir, "jobs.db");
    char *edir = tu_path(dir, "engine");
    jm_config cfg = tu_config(db);
    cfg.node_id = "oom-node";
    long injected0 = atomic_load(&C.injected);
    long n;
    for (n = 1; n < MAX_N; n = next_n(n)) {
        arm(n);
        jm_manager *m = NULL;
        int rc = jm_open(&cfg, &m);
        int failed = atomic_load(&C.failed);
        disarm();
        if (rc == JM_OK) {
            assert_non_null(m);
            assert_int_equal(jm_register_builtin(m), JM_OK);
            char id[JM_JOB_ID_SIZE];
            assert_int_equal(jm_create(m, "FL", TABLE_PARAMS("t", "User") "}", NULL, id),
                             JM_OK);
            jm_close(m);
        } else if (rc != JM_ENOMEM) {
            finding_add("jm_open", "returned another code", n, "%s (%s)", jm_err_name(rc),
                        jm_last_error());
        }
        assert_int_equal(atomic_load(&C.live), 0);
        if (access(db, F_OK) == 0)
            integrity_ok(db);
        if (rc == JM_OK && !failed)
            break;
    }
    long open_n = n;
    for (n = 1; n < MAX_N; n = next_n(n)) {
        arm(n);
        jm_engine *e = NULL;
        int rc = jm_engine_open(edir, &e);
        int failed = atomic_load(&C.failed);
        disarm();
        if (rc == JM_OK) {
            assert_non_null(e);
            int rc2 = jm_engine_create_namespace(e, "app");
            assert_true(rc2 == JM_OK || rc2 == JM_ECONFLICT);
            jm_engine_close(e);
        } else if (rc != JM_ENOMEM) {
            finding_add("jm_engine_open", "returned another code", n, "%s (%s)",
                        jm_err_name(rc), jm_last_error());
        }
        assert_int_equal(atomic_load(&C.live), 0);
        if (rc == JM_OK && !failed)
            break;
    }
    char *catalog = tu_path(edir, "catalog.db");
    integrity_ok(catalog);
    /* Both open normally afterwards and hold what was made. */
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_OK);
    int64_t jobs = -1;
    assert_int_equal(jm_count(m, NULL, &jobs), JM_OK);
    assert_true(jobs >= 1);
    jm_close(m);
    jm_engine *e = NULL;
    assert_int_equal(jm_engine_open(edir, &e), JM_OK);
    assert_int_equal(jm_engine_create_namespace(e, "app"), JM_ECONFLICT);
    jm_engine_close(e);
    printf("# jm_open: %ld allocations; jm_engine_open: %ld; %ld failures injected\n",
           open_n - 1, n - 1, atomic_load(&C.injected) - injected0);
    free(catalog);
    free(db);
    free(edir);
    tu_rmdir(dir);
    findings_check();
}

static int plain_setup(void **state)
{
    findings_reset();
    *state = NULL;
    return 0;
}

int main(void)
{
    /* Thousands of short runs, each with several durable commits: on a
     * memory file system fsync costs nothing, and this test is about
     * memory, not disks. An explicit JM_OOM_TMPDIR wins. */
    struct stat st;
    const char *tmp = getenv("JM_OOM_TMPDIR");
    if (tmp)
        setenv("TMPDIR", tmp, 1);
    else if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        setenv("TMPDIR", "/dev/shm", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(opens, plain_setup),
        cmocka_unit_test_setup_teardown(executor_jobs, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
