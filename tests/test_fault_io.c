/*
 * I/O fault injection, the way SQLite tests itself: every public operation
 * that writes (create, create_many, claim and completion, a retry
 * decision, cancel, retry by hand, prune, recovery of a dead owner's job
 * by jm_recover and at jm_open (also with a claimed job it never started), and the engine writes of a flush and a retention job) runs with the Nth
 * xWrite, xSync, xLock/xShmLock or xOpen failing, for N = 1, 2, 3, ...
 * until the operation no longer reaches the fault. Each run must return
 * JM_OK or the error the fault maps to (never crash, never hang); after the
 * fault is lifted the database passes PRAGMA integrity_check, no job is
 * lost or half-created, and the operation succeeds when tried again.
 *
 * The jobs database is opened through the shim by name (cfg.sqlite_vfs);
 * for the engine the shim becomes the default VFS, and only the catalog's
 * files are faulted so the jobs database's own writes do not mask them.
 * The number of faults injected per operation is printed for the README.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, fork */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault_vfs.h"
#include "jobmgr.h"
#include "jobmgr/engine.h"
#include "test_util.h"

/* A run that still reaches the fault after this many N is a hang in the
 * making (or an operation with unbounded I/O): fail. */
#define MAX_N 400
#define JOBS_DB "jobs.db"
#define CATALOG "catalog.db"
#define MANY 25
#define PRUNE_DONE 30
#define PRUNE_ACTIVE 3
#define FLUSH_ROWS 50
#define RET_ROWS 60
#define RET_OLD_DELETED 20
#define RET_NEW_DELETED 10
#define DAY_MS INT64_C(86400000)
/* Short: a lock fault answered SQLITE_BUSY must not stall the run. */
#define FAULT_BUSY_TIMEOUT_MS 100

typedef struct fault {
    fv_kind kind;
    int rc;
    int persistent;
    const char *label;
} fault;

/* A SQLITE_BUSY from xShmLock that never ends would keep a WAL reader in
 * SQLite's own ~10 s retry loop per run, so busy is injected once: it
 * proves the busy path is retried, not reported. */
static const fault faults[] = {
    {FV_WRITE, SQLITE_IOERR, 0, "write IOERR once"},
    {FV_WRITE, SQLITE_IOERR, 1, "write IOERR always"},
    {FV_WRITE, SQLITE_FULL, 1, "write FULL always"},
    {FV_SYNC, SQLITE_IOERR, 0, "sync IOERR once"},
    {FV_SYNC, SQLITE_IOERR, 1, "sync IOERR always"},
    {FV_LOCK, SQLITE_IOERR, 0, "lock IOERR once"},
    {FV_LOCK, SQLITE_IOERR, 1, "lock IOERR always"},
    {FV_LOCK, SQLITE_BUSY, 0, "lock BUSY once"},
    {FV_OPEN, SQLITE_CANTOPEN, 1, "open CANTOPEN always"},
};
#define NFAULTS (sizeof faults / sizeof faults[0])

typedef struct fx {
    char *dir;
    char *db;
    char *engdir;
    char *catalog;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
    jm_engine *e;
    int use_engine;
    char id[JM_JOB_ID_SIZE];
    char waiting[JM_JOB_ID_SIZE]; /* claimed by the dead owner, never started */
    int64_t keys[RET_ROWS];
    int64_t nkeys;
    int effect;    /* the operation's effect is there (whatever it returned) */
    int ambiguous; /* the operation failed but its effect is there */
} fx;

/* ---- the test executor ---- */

static jm_decision ft_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "mode");
    const char *s = cJSON_IsString(mode) ? mode->valuestring : "complete";
    if (strcmp(s, "retry") == 0)
        return jm_decision_retry("again", NULL, 0);
    if (strcmp(s, "fail") == 0)
        return jm_decision_failed("failed on purpose", NULL);
    if (strcmp(s, "die") == 0)
        _exit(0); /* a worker process dying mid-run */
    return jm_decision_completed("done", "{\"ok\": 1}");
}

static const jm_executor ft_executor = {
    JM_EXECUTOR_VERSION, "FT", "fault test", 1, NULL, ft_execute, NULL, JM_CLASS_NORMAL, NULL,
};

/* ---- helpers ---- */

static void check_integrity(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *res = (const char *)sqlite3_column_text(st, 0);
    if (!res || strcmp(res, "ok") != 0)
        fail_msg("integrity_check of %s: %s", path, res ? res : "(null)");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int64_t count_status(fx *x, unsigned statuses)
{
    jm_filter f = JM_FILTER_INIT;
    f.statuses = statuses;
    int64_t n = -1;
    assert_int_equal(jm_count(x->m, &f, &n), JM_OK);
    return n;
}

static int64_t count_all(fx *x)
{
    return count_status(x, 0);
}

static void open_manager(fx *x)
{
    assert_int_equal(jm_open(&x->cfg, &x->m), JM_OK);
    assert_int_equal(jm_register(x->m, &ft_executor, NULL), JM_OK);
    if (x->use_engine)
        assert_int_equal(jm_register_builtin(x->m), JM_OK);
}

/* Closes and reopens the manager (and the engine): recovery at open takes
 * back a job whose outcome could not be recorded. */
static void reopen(fx *x)
{
    jm_close(x->m);
    x->m = NULL;
    if (x->use_engine) {
        jm_engine_close(x->e);
        x->e = NULL;
        check_integrity(x->catalog);
        assert_int_equal(jm_engine_open(x->engdir, &x->e), JM_OK);
        x->cfg.host = jm_engine_host(x->e);
    }
    check_integrity(x->db);
    open_manager(x);
}

static void fx_setup(fx *x, int use_engine)
{
    memset(x, 0, sizeof *x);
    x->dir = tu_tmpdir();
    assert_non_null(x->dir);
    x->db = tu_path(x->dir, JOBS_DB);
    x->use_engine = use_engine;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_store(&x->clock.now, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    x->cfg = tu_config(x->db);
    x->cfg.sqlite_vfs = FV_NAME;
    x->cfg.busy_timeout_ms = FAULT_BUSY_TIMEOUT_MS;
    x->cfg.now_ms = tu_fake_now;
    x->cfg.now_user = &x->clock;
    x->cfg.max_retries = 10;
    if (use_engine) {
        assert_int_equal(fv_register(1), SQLITE_OK);
        x->engdir = tu_path(x->dir, "engine");
        x->catalog = tu_path(x->engdir, CATALOG);
        assert_int_equal(jm_engine_open(x->engdir, &x->e), JM_OK);
        x->cfg.host = jm_engine_host(x->e);
    }
    open_manager(x);
}

static void fx_teardown(fx *x)
{
    jm_close(x->m);
    jm_engine_close(x->e);
    check_integrity(x->db);
    if (x->catalog)
        check_integrity(x->catalog);
    if (x->use_engine)
        fv_restore_default();
    free(x->db);
    free(x->catalog);
    free(x->engdir);
    tu_rmdir(x->dir);
}

static jm_job *get_job(fx *x, const char *id)
{
    jm_job *j = NULL;
    int rc = jm_get(x->m, id, &j);
    if (rc != JM_OK)
        fail_msg("job %s: %s (%s)", id, jm_err_name(rc), jm_last_error());
    return j;
}

static jm_status status_of(fx *x, const char *id)
{
    jm_job *j = get_job(x, id);
    jm_status s = jm_job_status(j);
    jm_job_free(j);
    return s;
}

static void create_ft(fx *x, const char *mode, char id[JM_JOB_ID_SIZE])
{
    char params[64];
    snprintf(params, sizeof params, "{\"mode\": \"%s\"}", mode);
    assert_int_equal(jm_create(x->m, "FT", params, NULL, id), JM_OK);
}

/* Runs due jobs until `id` is final (or waits in status `stop_at`). */
static jm_status run_until(fx *x, const char *id, int stop_at)
{
    for (int i = 0; i < 50; i++) {
        jm_status s = status_of(x, id);
        if (s == JM_STATUS_COMPLETED || s == JM_STATUS_FAILED || s == JM_STATUS_CANCELLED ||
            (int)s == stop_at)
            return s;
        int ran = 0;
        assert_int_equal(jm_run_once(x->m, 1, &ran), JM_OK);
        if (!ran)
            tu_clock_advance(&x->clock, 1000);
    }
    return status_of(x, id);
}

/* The retried operation's code must be one of the two. */
static const char *cur_label = "";
static int64_t cur_n;
static void expect_again(const char *what, int rc, int ok2)
{
    if (rc == JM_OK || ok2)
        return;
    fail_msg("%s retried after %s at N=%lld: %s (%s)", what, cur_label, (long long)cur_n,
             jm_err_name(rc), jm_last_error());
}

/* ---- the operations ---- */

typedef struct op_def {
    const char *name;
    int use_engine;
    void (*prepare)(fx *x);
    int (*run)(fx *x);
    /* Right after the fault is lifted: what may be true now. */
    void (*after)(fx *x, int rc);
    /* Tries the operation again: it must succeed. */
    void (*again)(fx *x);
} op_def;

/* jm_create */
static int create_run(fx *x)
{
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = "fault-key";
    return jm_create(x->m, "FT", "{\"mode\": \"complete\", \"tag\": \"c\"}", &o, x->id);
}

static void create_after(fx *x, int rc)
{
    int64_t n = count_all(x);
    assert_true(n == 0 || n == 1);
    if (rc == JM_OK)
        assert_int_equal(n, 1);
    x->effect = n == 1;
    x->ambiguous = x->effect && rc != JM_OK;
    if (n == 1) {
        jm_filter f = JM_FILTER_INIT;
        jm_job_list *l = NULL;
        assert_int_equal(jm_list(x->m, &f, &l), JM_OK);
        const jm_job *j = jm_job_list_at(l, 0);
        assert_string_equal(jm_job_params(j), "{\"mode\": \"complete\", \"tag\": \"c\"}");
        assert_string_equal(jm_job_idempotency_key(j), "fault-key");
        assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
        jm_job_list_free(l);
    }
}

static void create_again(fx *x)
{
    int rc = create_run(x);
    expect_again("jm_create", rc, rc == JM_ECONFLICT && x->effect);
    assert_int_equal(count_all(x), 1);
    assert_int_equal(status_of(x, x->id), JM_STATUS_QUEUED);
}

/* jm_create_many */
static int many_run(fx *x)
{
    jm_new_job jobs[MANY];
    char keys[MANY][16];
    char ids[MANY][JM_JOB_ID_SIZE];
    for (int i = 0; i < MANY; i++) {
        snprintf(keys[i], sizeof keys[i], "many-%d", i);
        jm_new_job j = {"FT", "{\"mode\": \"complete\"}", JM_CREATE_OPTS_INIT};
        j.opts.idempotency_key = keys[i];
        jobs[i] = j;
    }
    return jm_create_many(x->m, jobs, MANY, ids);
}

static void many_after(fx *x, int rc)
{
    int64_t n = count_all(x);
    if (n != 0 && n != MANY)
        fail_msg("jm_create_many left %lld of %d jobs (rc %s)", (long long)n, MANY,
                 jm_err_name(rc));
    if (rc == JM_OK)
        assert_int_equal(n, MANY);
    x->effect = n == MANY;
    x->ambiguous = x->effect && rc != JM_OK;
}

static void many_again(fx *x)
{
    int rc = many_run(x);
    expect_again("jm_create_many", rc, rc == JM_ECONFLICT && x->effect);
    assert_int_equal(count_all(x), MANY);
    assert_int_equal(count_status(x, JM_STATUS_BIT(JM_STATUS_QUEUED)), MANY);
}

/* claim + completion: jm_run_once of a job that completes */
static void complete_prepare(fx *x)
{
    create_ft(x, "complete", x->id);
}

static int run_once_run(fx *x)
{
    int ran = 0;
    return jm_run_once(x->m, 1, &ran);
}

static void complete_after(fx *x, int rc)
{
    jm_status s = status_of(x, x->id);
    if (rc == JM_OK)
        assert_true(s == JM_STATUS_COMPLETED || s == JM_STATUS_QUEUED);
    else
        assert_true(s == JM_STATUS_QUEUED || s == JM_STATUS_RUNNING ||
                    s == JM_STATUS_COMPLETED);
}

static void complete_again(fx *x)
{
    reopen(x); /* takes back a job left running by a lost outcome */
    assert_int_equal(run_until(x, x->id, -1), JM_STATUS_COMPLETED);
    assert_int_equal(count_all(x), 1);
}

/* a retry decision */
static void retry_dec_prepare(fx *x)
{
    create_ft(x, "retry", x->id);
}

static void retry_dec_after(fx *x, int rc)
{
    jm_job *j = get_job(x, x->id);
    jm_status s = jm_job_status(j);
    if (rc == JM_OK && s == JM_STATUS_RETRYING)
        assert_int_equal(jm_job_retry_count(j), 1);
    else
        assert_true(s == JM_STATUS_QUEUED || s == JM_STATUS_RUNNING ||
                    s == JM_STATUS_RETRYING);
    jm_job_free(j);
}

static void retry_dec_again(fx *x)
{
    reopen(x);
    jm_job *j = get_job(x, x->id);
    int before = jm_job_retry_count(j);
    jm_job_free(j);
    int ran = 0;
    assert_int_equal(jm_run_once(x->m, 1, &ran), JM_OK);
    assert_int_equal(ran, 1);
    j = get_job(x, x->id);
    assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
    assert_int_equal(jm_job_retry_count(j), before + 1);
    jm_job_free(j);
}

/* jm_cancel of a queued job */
static int cancel_run(fx *x)
{
    return jm_cancel(x->m, x->id);
}

static void cancel_after(fx *x, int rc)
{
    jm_status s = status_of(x, x->id);
    if (rc == JM_OK)
        assert_int_equal(s, JM_STATUS_CANCELLED);
    else if (s != JM_STATUS_CANCELLED)
        assert_int_equal(s, JM_STATUS_QUEUED);
    x->effect = s == JM_STATUS_CANCELLED;
    x->ambiguous = x->effect && rc != JM_OK;
}

static void cancel_again(fx *x)
{
    int rc = cancel_run(x);
    expect_again("jm_cancel", rc, rc == JM_ESTATE && x->effect);
    assert_int_equal(status_of(x, x->id), JM_STATUS_CANCELLED);
}

/* jm_retry of a failed job */
static void manual_retry_prepare(fx *x)
{
    create_ft(x, "fail", x->id);
    assert_int_equal(run_until(x, x->id, -1), JM_STATUS_FAILED);
}

static int manual_retry_run(fx *x)
{
    return jm_retry(x->m, x->id);
}

static void manual_retry_after(fx *x, int rc)
{
    jm_status s = status_of(x, x->id);
    if (rc == JM_OK)
        assert_int_equal(s, JM_STATUS_QUEUED);
    else if (s != JM_STATUS_QUEUED)
        assert_int_equal(s, JM_STATUS_FAILED);
    x->effect = s == JM_STATUS_QUEUED;
    x->ambiguous = x->effect && rc != JM_OK;
}

static void manual_retry_again(fx *x)
{
    int rc = manual_retry_run(x);
    expect_again("jm_retry", rc, rc == JM_ESTATE && x->effect);
    jm_job *j = get_job(x, x->id);
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_int_equal(jm_job_retry_count(j), 0);
    jm_job_free(j);
}

/* jm_prune */
static void prune_prepare(fx *x)
{
    for (int i = 0; i < PRUNE_DONE; i++) {
        char id[JM_JOB_ID_SIZE];
        create_ft(x, "complete", id);
    }
    int ran = 0;
    assert_int_equal(jm_run_once(x->m, PRUNE_DONE, &ran), JM_OK);
    assert_int_equal(ran, PRUNE_DONE);
    for (int i = 0; i < PRUNE_ACTIVE; i++)
        create_ft(x, "complete", x->id);
    tu_clock_advance(&x->clock, 1000);
}

static int prune_run(fx *x)
{
    int64_t deleted = 0;
    return jm_prune(x->m, tu_fake_now(&x->clock), &deleted);
}

static void prune_after(fx *x, int rc)
{
    int64_t done = count_status(x, JM_STATUS_BIT(JM_STATUS_COMPLETED));
    assert_int_equal(count_status(x, JM_STATUS_BIT(JM_STATUS_QUEUED)), PRUNE_ACTIVE);
    assert_true(done == 0 || done == PRUNE_DONE);
    if (rc == JM_OK)
        assert_int_equal(done, 0);
    x->ambiguous = done == 0 && rc != JM_OK;
}

static void prune_again(fx *x)
{
    assert_int_equal(prune_run(x), JM_OK);
    assert_int_equal(count_all(x), PRUNE_ACTIVE);
}

/* recovery: jm_recover with the job of a process that died running it */
static void recover_prepare(fx *x)
{
    create_ft(x, "die", x->id);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        jm_config c = x->cfg;
        c.sqlite_vfs = NULL;
        jm_manager *m = NULL;
        if (jm_open(&c, &m) != JM_OK || jm_register(m, &ft_executor, NULL) != JM_OK)
            _exit(3);
        int ran = 0;
        jm_run_once(m, 1, &ran); /* dies inside the job */
        _exit(4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(status_of(x, x->id), JM_STATUS_RUNNING);
}

static int recover_run(fx *x)
{
    int n = 0;
    return jm_recover(x->m, &n);
}

static void recover_after(fx *x, int rc)
{
    jm_job *j = get_job(x, x->id);
    jm_status s = jm_job_status(j);
    if (rc == JM_OK)
        assert_int_equal(s, JM_STATUS_RETRYING);
    else
        assert_true(s == JM_STATUS_RUNNING || s == JM_STATUS_RETRYING);
    if (s == JM_STATUS_RETRYING)
        assert_int_equal(jm_job_retry_count(j), 1);
    jm_job_free(j);
}

static void recover_again(fx *x)
{
    assert_int_equal(recover_run(x), JM_OK);
    jm_job *j = get_job(x, x->id);
    assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
    assert_int_equal(jm_job_retry_count(j), 1);
    jm_job_free(j);
}

/* recovery of a dead owner that had also claimed a job it never started
 * (as the run loop claims ahead): that one goes back without a retry
 * spent, in the same transaction as the started one's recovery. */
static void recover_ahead_prepare(fx *x)
{
    recover_prepare(x);
    create_ft(x, "complete", x->waiting);
    tu_sql_exec(x->db, "UPDATE jm_jobs SET status = 2, attempts = 1, "
                       "node_id = (SELECT node_id FROM jm_jobs WHERE status = 2), "
                       "owner_pid = (SELECT owner_pid FROM jm_jobs WHERE status = 2), "
                       "owner_instance = (SELECT owner_instance FROM jm_jobs WHERE status = 2), "
                       "lease_until = (SELECT lease_until FROM jm_jobs WHERE status = 2) "
                       "WHERE status = 1");
    assert_int_equal(status_of(x, x->waiting), JM_STATUS_RUNNING);
}

static void recover_ahead_after(fx *x, int rc)
{
    recover_after(x, rc);
    jm_job *j = get_job(x, x->waiting);
    jm_status s = jm_job_status(j);
    /* One transaction: both recovered, or neither. */
    assert_int_equal(s == JM_STATUS_RETRYING, status_of(x, x->id) == JM_STATUS_RETRYING);
    if (s == JM_STATUS_RETRYING) {
        assert_int_equal(jm_job_retry_count(j), 0);
        assert_int_equal(jm_job_started_at(j), 0);
    }
    jm_job_free(j);
}

static void recover_ahead_again(fx *x)
{
    recover_again(x);
    recover_ahead_after(x, JM_OK);
}

/* jm_open: schema check and recovery at open of a dead owner's job; the
 * only operation that opens files, so the one xOpen faults reach. */
static int open_run(fx *x)
{
    jm_close(x->m);
    x->m = NULL;
    int rc = jm_open(&x->cfg, &x->m);
    if (rc == JM_OK)
        rc = jm_register(x->m, &ft_executor, NULL);
    return rc;
}

static void open_after(fx *x, int rc)
{
    if (rc != JM_OK) {
        jm_close(x->m);
        x->m = NULL;
        open_manager(x); /* recovers the job now that the fault is lifted */
    }
    recover_after(x, JM_OK);
}

static void open_again(fx *x)
{
    assert_int_equal(open_run(x), JM_OK);
    recover_after(x, JM_OK);
}

/* ---- engine writes ---- */

static int64_t eng_count(fx *x, const char *table)
{
    int64_t n = -1;
    assert_int_equal(jm_engine_count(x->e, "app", table, 1, &n), JM_OK);
    return n;
}

static void doc_of(int64_t i, char *buf, size_t len)
{
    snprintf(buf, len, "{\"row\": %lld}", (long long)i);
}

/* Every key in keys[0..nkeys) that `want` says is present has its
 * document; the others are gone. */
static void check_rows(fx *x, const char *table, int (*want)(fx *x, int64_t i))
{
    int64_t expect = 0;
    for (int64_t i = 0; i < x->nkeys; i++) {
        char *doc = NULL;
        int rc = jm_engine_get(x->e, "app", table, x->keys[i], &doc);
        if (want(x, i)) {
            expect++;
            if (rc != JM_OK)
                fail_msg("row %lld of %s lost: %s", (long long)i, table, jm_last_error());
            char exp[64];
            doc_of(i, exp, sizeof exp);
            assert_string_equal(doc, exp);
        } else if (rc != JM_ENOTFOUND) {
            fail_msg("row %lld of %s should be gone (rc %s)", (long long)i, table,
                     jm_err_name(rc));
        }
        jm_free(doc);
    }
    assert_int_equal(eng_count(x, table), expect);
}

/* No temporary file and exactly one file per catalogued segment. */
static void check_files(fx *x, const char *table)
{
    int64_t segs = -1;
    assert_int_equal(jm_engine_segment_count(x->e, "app", table, &segs), JM_OK);
    DIR *d = opendir(x->engdir);
    assert_non_null(d);
    int64_t files = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strstr(de->d_name, ".tmp"))
            fail_msg("temporary file %s left behind", de->d_name);
        if (strncmp(de->d_name, "seg-", 4) == 0)
            files++;
    }
    closedir(d);
    assert_int_equal(files, segs);
}

static int all_rows(fx *x, int64_t i)
{
    (void)x;
    (void)i;
    return 1;
}

static void create_builtin(fx *x, const char *type, const char *params)
{
    assert_int_equal(jm_create(x->m, type, params, NULL, x->id), JM_OK);
}

static void flush_prepare(fx *x)
{
    assert_int_equal(jm_engine_create_namespace(x->e, "app"), JM_OK);
    assert_int_equal(jm_engine_create_table(x->e, "app", "f", JM_TABLE_USER, NULL), JM_OK);
    for (int64_t i = 0; i < FLUSH_ROWS; i++) {
        char doc[64];
        doc_of(i, doc, sizeof doc);
        assert_int_equal(jm_engine_insert(x->e, "app", "f", doc, 0, &x->keys[i]), JM_OK);
    }
    x->nkeys = FLUSH_ROWS;
    create_builtin(x, JM_FLUSH,
                   "{\"namespace_id\": \"app\", \"table_name\": \"f\", \"table_type\": \"User\"}");
}

static void engine_job_after(fx *x, const char *table, int (*want_before)(fx *, int64_t),
                             int (*want_after)(fx *, int64_t), int rc)
{
    (void)rc;
    jm_status s = status_of(x, x->id);
    /* A host I/O error fails the job, a busy one makes it retry. */
    assert_true(s == JM_STATUS_COMPLETED || s == JM_STATUS_FAILED || s == JM_STATUS_RETRYING ||
                s == JM_STATUS_QUEUED || s == JM_STATUS_RUNNING);
    /* All or nothing: either every row as before, or the job's effect. */
    int64_t n = eng_count(x, table);
    int64_t before = 0, after = 0;
    for (int64_t i = 0; i < x->nkeys; i++) {
        before += want_before(x, i);
        after += want_after(x, i);
    }
    if (n == before)
        check_rows(x, table, want_before);
    else if (n == after)
        check_rows(x, table, want_after);
    else
        fail_msg("%s holds %lld rows: neither %lld before nor %lld after", table, (long long)n,
                 (long long)before, (long long)after);
    check_files(x, table);
}

static void engine_job_again(fx *x, const char *table, int (*want_after)(fx *, int64_t))
{
    reopen(x); /* the engine collects what a failed write left behind */
    check_files(x, table);
    jm_status s = run_until(x, x->id, -1);
    if (s == JM_STATUS_FAILED) {
        assert_int_equal(jm_retry(x->m, x->id), JM_OK);
        s = run_until(x, x->id, -1);
    }
    assert_int_equal(s, JM_STATUS_COMPLETED);
    check_rows(x, table, want_after);
    check_files(x, table);
}

static void flush_after(fx *x, int rc)
{
    engine_job_after(x, "f", all_rows, all_rows, rc);
    int64_t segs = -1;
    assert_int_equal(jm_engine_segment_count(x->e, "app", "f", &segs), JM_OK);
    assert_true(segs == 0 || segs == 1);
}

static void flush_again(fx *x)
{
    engine_job_again(x, "f", all_rows);
    int64_t segs = -1;
    assert_int_equal(jm_engine_segment_count(x->e, "app", "f", &segs), JM_OK);
    assert_int_equal(segs, 1);
}

/* Retention: rows [0, 20) were deleted 60 days ago (past the 30-day
 * retention), [20, 30) an hour ago, the rest are live. Half the rows sit in
 * a segment, half in the buffer, so the purge rewrites a file too. */
static int ret_before(fx *x, int64_t i)
{
    (void)x;
    (void)i;
    return 1;
}

static int ret_after(fx *x, int64_t i)
{
    (void)x;
    return i >= RET_OLD_DELETED;
}

static void retention_prepare(fx *x)
{
    const jm_host *h = jm_engine_host(x->e);
    int64_t now = tu_fake_now(&x->clock);
    assert_int_equal(jm_engine_create_namespace(x->e, "app"), JM_OK);
    assert_int_equal(jm_engine_create_table(x->e, "app", "r", JM_TABLE_USER, NULL), JM_OK);
    for (int64_t i = 0; i < RET_ROWS; i++) {
        char doc[64];
        doc_of(i, doc, sizeof doc);
        int64_t created = now - 90 * DAY_MS + i;
        assert_int_equal(jm_engine_insert(x->e, "app", "r", doc, created, &x->keys[i]), JM_OK);
        if (i == RET_ROWS / 2 - 1) {
            jm_host_flush fl;
            assert_int_equal(h->flush(h->self, "app", "r", &fl), JM_OK);
        }
    }
    x->nkeys = RET_ROWS;
    for (int64_t i = 0; i < RET_OLD_DELETED + RET_NEW_DELETED; i += 2) {
        /* Every other row of each group, so both the segment and the buffer
         * lose rows. */
        int64_t when = i < RET_OLD_DELETED ? now - 60 * DAY_MS : now - 3600 * 1000;
        assert_int_equal(jm_engine_soft_delete(x->e, "app", "r", x->keys[i], when), JM_OK);
        assert_int_equal(jm_engine_soft_delete(x->e, "app", "r", x->keys[i + 1], when), JM_OK);
    }
    create_builtin(x, JM_RETENTION,
                   "{\"namespace_id\": \"app\", \"table_name\": \"r\", \"table_type\": \"User\", "
                   "\"retention_hours\": 720}");
}

static void retention_after(fx *x, int rc)
{
    engine_job_after(x, "r", ret_before, ret_after, rc);
}

static void retention_again(fx *x)
{
    engine_job_again(x, "r", ret_after);
}

static const op_def ops[] = {
    {"jm_create", 0, NULL, create_run, create_after, create_again},
    {"jm_create_many", 0, NULL, many_run, many_after, many_again},
    {"claim+complete", 0, complete_prepare, run_once_run, complete_after, complete_again},
    {"retry decision", 0, retry_dec_prepare, run_once_run, retry_dec_after, retry_dec_again},
    {"jm_cancel", 0, complete_prepare, cancel_run, cancel_after, cancel_again},
    {"jm_retry", 0, manual_retry_prepare, manual_retry_run, manual_retry_after,
     manual_retry_again},
    {"jm_prune", 0, prune_prepare, prune_run, prune_after, prune_again},
    {"jm_recover", 0, recover_prepare, recover_run, recover_after, recover_again},
    {"jm_recover, claimed ahead", 0, recover_ahead_prepare, recover_run, recover_ahead_after,
     recover_ahead_again},
    {"jm_open + recovery", 0, recover_prepare, open_run, open_after, open_again},
    {"flush job (engine)", 1, flush_prepare, run_once_run, flush_after, flush_again},
    {"retention job (engine)", 1, retention_prepare, run_once_run, retention_after,
     retention_again},
};

/* The codes a fault may surface as. */
static int allowed(const fault *f, int rc)
{
    if (rc == JM_OK)
        return 1;
    if (f->rc == SQLITE_BUSY)
        return rc == JM_EBUSY;
    return rc == JM_EIO;
}

static int64_t total_injected;

/* One operation under one fault at N; returns 1 if the fault was reached. */
static int one_run(const op_def *op, const fault *f, int64_t n, int64_t *injected)
{
    fx x;
    fx_setup(&x, op->use_engine);
    if (op->prepare)
        op->prepare(&x);
    cur_label = f->label;
    cur_n = n;
    fv_arm(f->kind, n, f->rc, f->persistent, op->use_engine ? CATALOG : JOBS_DB);
    int rc = op->run(&x);
    fv_disarm();
    int64_t got = fv_injected();
    *injected += got;
    if (!allowed(f, rc))
        fail_msg("%s, %s at N=%lld: returned %s (%s)", op->name, f->label, (long long)n,
                 jm_err_name(rc), jm_last_error());
    if (got == 0 && rc != JM_OK)
        fail_msg("%s without a fault returned %s (%s)", op->name, jm_err_name(rc),
                 jm_last_error());
    check_integrity(x.db);
    if (x.catalog)
        check_integrity(x.catalog);
    op->after(&x, rc);
    op->again(&x);
    int ambiguous = x.ambiguous;
    fx_teardown(&x);
    if (ambiguous)
        print_message("# note: %s, %s at N=%lld: failed (%s) but took effect\n", op->name,
                      f->label, (long long)n, jm_err_name(rc));
    return got > 0;
}

static void run_op(void **state)
{
    const op_def *op = *state;
    int64_t injected = 0, runs = 0, by_kind[FV_KIND_COUNT] = {0};
    for (size_t k = 0; k < NFAULTS; k++) {
        int64_t n = 1, before = injected;
        while (one_run(op, &faults[k], n, &injected)) {
            runs++;
            if (++n > MAX_N)
                fail_msg("%s, %s: still faulting at N=%d", op->name, faults[k].label, MAX_N);
        }
        runs++;
        by_kind[faults[k].kind] += injected - before;
    }
    total_injected += injected;
    print_message("# fault_io: %-24s runs %4lld, faults injected %5lld (write %lld, sync %lld, "
                  "lock %lld, open %lld)\n",
                  op->name, (long long)runs, (long long)injected, (long long)by_kind[FV_WRITE],
                  (long long)by_kind[FV_SYNC], (long long)by_kind[FV_LOCK],
                  (long long)by_kind[FV_OPEN]);
}

int main(void)
{
    /* Hundreds of databases are made and synced: in memory when the
     * caller did not choose a place, since the faults are simulated
     * anyway and a real disk only adds minutes. */
    if (!getenv("TMPDIR") && access("/dev/shm", W_OK) == 0)
        setenv("TMPDIR", "/dev/shm", 1);
    assert_int_equal(fv_register(0), SQLITE_OK);
    struct CMUnitTest tests[sizeof ops / sizeof ops[0]];
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        struct CMUnitTest t = {ops[i].name, run_op, NULL, NULL, (void *)&ops[i]};
        tests[i] = t;
    }
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    print_message("# fault_io: total faults injected %lld\n", (long long)total_injected);
    return failed;
}
