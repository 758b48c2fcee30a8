/*
 * Hostile input, table-driven: hundreds of bad inputs across the whole
 * public API (manager, jobs, filters, engine) and every built-in executor's
 * parameters. Each row names the call, the error code it must return and a
 * fragment of the message jm_last_error() must hold; a row that must change
 * nothing also proves the jobs database (and, for engine calls and executor
 * jobs, the engine's catalog and files) byte-for-byte unchanged.
 *
 * How "unchanged" is measured: a separate SQLite connection runs
 * PRAGMA wal_checkpoint(TRUNCATE), which copies every committed page into
 * the main file and empties the WAL, and then the main file is hashed
 * (SHA-256). The manager and the engine keep their connections open, so
 * that connection is never the last one and SQLite never rewrites the file
 * on close; a refused call that wrote nothing leaves the WAL empty and the
 * checkpoint a no-op, so byte comparison is exact and no SQLite
 * housekeeping disturbs it (a checkpoint that reports "busy" is a test
 * failure, never silently skipped). The engine's segment files are covered
 * by hashing the directory listing (names and sizes) with the catalog.
 *
 * A second group runs jobs whose parameters pass validation but point at
 * hostile places on disk (symbolic links to /etc, a manifest naming
 * "../../etc/passwd", a directory that is not a backup): each job must end
 * failed with a clear message and the engine must be unchanged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "sha256.h"
#include "jobmgr/engine.h"
#include "test_util.h"

#define T0 INT64_C(1700000000000)
#define HOUR_MS INT64_C(3600000)
#define INJECT "x\\\"; DROP TABLE jobs; --" /* as JSON string content */
#define INJECT_C "x\"; DROP TABLE jobs; --" /* as a C string */
#define BAD_UTF8 "bad\xff\xfeutf8"
#define OVERLONG "\xc0\xaf"
#define SURROGATE_UTF8 "\xed\xa0\x80"
#define UNKNOWN_FL "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f"
#define UNKNOWN_ZZ "ZZ-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f"

/* ------------------------------------------------------------------------
 * Fixture: a manager with the built-ins on the reference engine
 * ------------------------------------------------------------------------ */

typedef struct fx {
    char *dir, *db, *edir, *catalog, *bk, *notdb, *otherdb;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
    jm_engine *e;
    char queued[JM_JOB_ID_SIZE], failed[JM_JOB_ID_SIZE], completed[JM_JOB_ID_SIZE],
        cancelled[JM_JOB_ID_SIZE], newjob[JM_JOB_ID_SIZE];
    char backup_dir[4096]; /* a real backup of app.orders */
} fx;

static fx *F; /* the current fixture, for the table's call functions */

static void write_file(const char *path, const char *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static int run_to_end(fx *f, const char *id)
{
    for (int i = 0; i < 50; i++) {
        int s = tu_status(f->m, id);
        if (s == JM_STATUS_COMPLETED || s == JM_STATUS_FAILED || s == JM_STATUS_CANCELLED)
            return s;
        tu_clock_advance(&f->clock, HOUR_MS);
        int ran = 0;
        assert_int_equal(jm_run_once(f->m, 1, &ran), JM_OK);
    }
    return tu_status(f->m, id);
}

static void create_ok(fx *f, const char *type, const char *params, const jm_create_opts *o,
                      char id[JM_JOB_ID_SIZE])
{
    int rc = jm_create(f->m, type, params, o, id);
    if (rc)
        fail_msg("jm_create(%s, %s) = %s: %s", type, params, jm_err_name(rc), jm_last_error());
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    f->edir = tu_path(f->dir, "engine");
    f->catalog = tu_path(f->edir, "catalog.db");
    f->bk = tu_path(f->dir, "backups");
    f->notdb = tu_path(f->dir, "not-a-db");
    f->otherdb = tu_path(f->dir, "other.db");
    write_file(f->notdb, "hello, I am not a database\n", 27);
    tu_sql_exec(f->otherdb, "CREATE TABLE jm_jobs(x); INSERT INTO jm_jobs VALUES(1);");

    assert_int_equal(jm_engine_open(f->edir, &f->e), JM_OK);
    jm_engine *e = f->e;
    assert_int_equal(jm_engine_create_namespace(e, "app"), JM_OK);
    assert_int_equal(jm_engine_create_user(e, "alice", "Alice"), JM_OK);
    jm_table_opts to = JM_TABLE_OPTS_INIT;
    to.owner_user_id = "alice";
    assert_int_equal(jm_engine_create_table(e, "app", "orders", JM_TABLE_USER, &to), JM_OK);
    assert_int_equal(jm_engine_create_table(e, "app", "shared", JM_TABLE_SHARED, NULL), JM_OK);
    jm_table_opts so = JM_TABLE_OPTS_INIT;
    so.ttl_seconds = 3600;
    assert_int_equal(jm_engine_create_table(e, "app", "clicks", JM_TABLE_STREAM, &so), JM_OK);
    for (int i = 0; i < 20; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "{\"n\":%d}", i);
        assert_int_equal(jm_engine_insert(e, "app", "orders", doc, T0 - HOUR_MS + i, NULL),
                         JM_OK);
        assert_int_equal(jm_engine_insert(e, "app", "clicks", doc, T0 - HOUR_MS + i, NULL),
                         JM_OK);
    }
    assert_int_equal(jm_engine_soft_delete(e, "app", "orders", 3, T0 - 2 * HOUR_MS), JM_OK);

    atomic_store(&f->clock.now, T0);
    f->cfg = tu_config(f->db);
    f->cfg.now_ms = tu_fake_now;
    f->cfg.now_user = &f->clock;
    f->cfg.node_id = "hostile-node";
    f->cfg.host = jm_engine_host(e);
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    assert_int_equal(jm_register_builtin(f->m), JM_OK);

    /* A flush (completed), a backup (completed), a flush of a missing table
     * (failed), a cancelled retention, a queued and a scheduled job. */
    create_ok(f, "FL",
              "{\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":\"User\"}",
              NULL, f->completed);
    assert_int_equal(run_to_end(f, f->completed), JM_STATUS_COMPLETED);
    char params[8192], bid[JM_JOB_ID_SIZE];
    snprintf(params, sizeof params,
             "{\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":\"User\","
             "\"backup_location\":\"%s\",\"compression\":\"none\"}",
             f->bk);
    create_ok(f, "BK", params, NULL, bid);
    assert_int_equal(run_to_end(f, bid), JM_STATUS_COMPLETED);
    snprintf(f->backup_dir, sizeof f->backup_dir, "%s/app/orders/%s", f->bk, bid);
    create_ok(f, "FL",
              "{\"namespace_id\":\"app\",\"table_name\":\"missing\",\"table_type\":\"User\"}",
              NULL, f->failed);
    assert_int_equal(run_to_end(f, f->failed), JM_STATUS_FAILED);
    create_ok(f, "RT",
              "{\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":\"User\","
              "\"retention_hours\":1}",
              NULL, f->cancelled);
    assert_int_equal(jm_cancel(f->m, f->cancelled), JM_OK);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = "held";
    o.namespace_id = "ns1";
    create_ok(f, "CO",
              "{\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":\"User\","
              "\"target_file_size_mb\":64}",
              &o, f->queued);
    jm_create_opts later = JM_CREATE_OPTS_INIT;
    later.run_at_ms = T0 + 1000 * HOUR_MS;
    create_ok(f, "RT",
              "{\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":\"User\","
              "\"retention_hours\":24}",
              &later, f->newjob);
    tu_clock_advance(&f->clock, 10); /* a write now would show in updated_at */
    F = f;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    jm_close(f->m);
    jm_engine_close(f->e);
    free(f->db);
    free(f->edir);
    free(f->catalog);
    free(f->bk);
    free(f->notdb);
    free(f->otherdb);
    tu_rmdir(f->dir);
    free(f);
    F = NULL;
    return 0;
}

/* ------------------------------------------------------------------------
 * Database fingerprints
 * ------------------------------------------------------------------------ */

typedef struct notes {
    char text[24000];
    size_t used;
    int count;
} notes;

static notes N;

static void note(const char *fmt, ...) JM_PRINTF(1, 2);
static void note(const char *fmt, ...)
{
    N.count++;
    if (N.used + 400 >= sizeof N.text)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(N.text + N.used, sizeof N.text - N.used - 2, fmt, ap);
    va_end(ap);
    if (k > 0)
        N.used += (size_t)k < sizeof N.text - N.used - 2 ? (size_t)k : sizeof N.text - N.used - 2;
    N.text[N.used++] = '\n';
    N.text[N.used] = '\0';
}

/* Moves the WAL into the main file (see the top comment); 0 if it could. */
static int checkpoint(const char *path)
{
    sqlite3 *db = NULL;
    int ok = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            ok = sqlite3_column_int(st, 0) == 0; /* busy? */
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ok ? 0 : -1;
}

static void hash_file(jm__sha256 *h, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        jm__sha256_update(h, buf, n);
    fclose(fp);
}

static jm__sha256 *g_walk;

static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    char line[8192];
    /* The catalog's WAL and shared-memory files are SQLite's business. */
    if (strstr(path, "catalog.db-"))
        return 0;
    int n = snprintf(line, sizeof line, "%s %d %lld\n", path, flag,
                     S_ISREG(st->st_mode) ? (long long)st->st_size : 0LL);
    jm__sha256_update(g_walk, line, (size_t)n);
    return 0;
}

/* The fingerprint of the jobs database, or of the engine (catalog bytes
 * and the listing of its directory). */
static void fingerprint(int engine, char out[JM_SHA256_HEX_SIZE])
{
    jm__sha256 h;
    jm__sha256_init(&h);
    const char *path = engine ? F->catalog : F->db;
    if (checkpoint(path))
        note("checkpoint of %s was busy: byte comparison impossible", path);
    hash_file(&h, path);
    if (engine) {
        g_walk = &h;
        nftw(F->edir, walk_one, 16, FTW_PHYS);
    }
    jm__sha256_final_hex(&h, out);
}

static void file_fingerprint(const char *path, char out[JM_SHA256_HEX_SIZE])
{
    jm__sha256 h;
    jm__sha256_init(&h);
    hash_file(&h, path);
    jm__sha256_final_hex(&h, out);
}

/* ------------------------------------------------------------------------
 * Generated inputs: a row's string "@NAME" stands for one of these
 * ------------------------------------------------------------------------ */

typedef struct gen {
    const char *name;
    char *text;
} gen;

static gen G[32];
static size_t NG;

static char *repeat(const char *head, const char *unit, size_t times, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * times + tl + 1);
    assert_non_null(s);
    memcpy(s, head, hl);
    for (size_t i = 0; i < times; i++)
        memcpy(s + hl + i * ul, unit, ul);
    memcpy(s + hl + ul * times, tail, tl + 1);
    return s;
}

static void add_gen(const char *name, char *text)
{
    assert_true(NG < sizeof G / sizeof G[0]);
    G[NG].name = name;
    G[NG++].text = text;
}

static void gen_init(void)
{
    if (NG)
        return;
    /* 5000 levels of nesting inside an object, and just past cJSON's limit. */
    char *open = repeat("{\"a\":", "[", 5000, "");
    char *deep = repeat(open, "]", 5000, "}");
    free(open);
    add_gen("DEEP", deep);
    open = repeat("", "[", 1001, "");
    add_gen("DEEP_ARRAY", repeat(open, "]", 1001, ""));
    free(open);
    open = repeat("", "{\"a\":", 1001, "1");
    add_gen("DEEP_OBJECT", repeat(open, "}", 1001, ""));
    free(open);
    /* Just over 512 KiB: a valid object, but too big. */
    add_gen("HUGE", repeat("{\"pad\":\"", "x", JM_MAX_PARAMS_BYTES, "\"}"));
    /* A valid object of 512 KiB whose executor check fails: size is fine. */
    add_gen("LONG129", repeat("", "a", JM_HOST_NAME_MAX + 1, ""));
    add_gen("LONG256", repeat("", "k", JM_MAX_KEY_BYTES + 1, ""));
    add_gen("LONG255", repeat("", "k", JM_MAX_KEY_BYTES, ""));
    add_gen("PATH4097", repeat("\"/", "p", 4096, "\""));
    add_gen("NAME129", repeat("\"", "a", JM_HOST_NAME_MAX + 1, "\""));
    add_gen("DOC_HUGE", repeat("\"", "d", 1024 * 1024 + 1, "\""));
    add_gen("BIGNUM", repeat("{\"n\":", "9", 400, "}"));
}

static void gen_free(void)
{
    for (size_t i = 0; i < NG; i++)
        free(G[i].text);
    NG = 0;
}

static const char *S(const char *s)
{
    if (!s || s[0] != '@')
        return s;
    for (size_t i = 0; i < NG; i++)
        if (strcmp(G[i].name, s + 1) == 0)
            return G[i].text;
    fail_msg("no generated input %s", s);
    return NULL;
}

/* ------------------------------------------------------------------------
 * The rows
 * ------------------------------------------------------------------------ */

#define SAME_JOBS 1u   /* the jobs database must be byte-for-byte unchanged */
#define SAME_ENGINE 2u /* the engine's catalog and files too */
#define SAME_FILE 4u   /* the file named by row.c too */
#define SAME_ALL (SAME_JOBS | SAME_ENGINE)

typedef struct hcase hcase;
struct hcase {
    const char *what;
    int (*call)(const hcase *c);
    const char *a, *b, *c;
    int64_t n;
    int expect;
    const char *frag; /* in jm_last_error(); NULL: not checked (success rows) */
    unsigned same;
};

/* Variants for rows whose call takes no pointer of its own. */
enum { V_PLAIN, V_NULL_M, V_NULL_OUT, V_TYPE_OUT };

static jm_manager *mgr(int64_t v)
{
    return v == V_NULL_M ? NULL : F->m;
}

static const char *id_of(const char *s)
{
    if (!s || s[0] != '$')
        return S(s);
    if (strcmp(s, "$queued") == 0)
        return F->queued;
    if (strcmp(s, "$failed") == 0)
        return F->failed;
    if (strcmp(s, "$completed") == 0)
        return F->completed;
    if (strcmp(s, "$cancelled") == 0)
        return F->cancelled;
    if (strcmp(s, "$new") == 0)
        return F->newjob;
    return s;
}

static int c_parse(const hcase *c)
{
    char t[3];
    return jm_job_id_parse(id_of(c->a), c->n == V_TYPE_OUT ? t : NULL);
}

static int c_get(const hcase *c)
{
    jm_job *j = NULL;
    int rc = jm_get(mgr(c->n), id_of(c->a), c->n == V_NULL_OUT ? NULL : &j);
    jm_job_free(j);
    return rc;
}

static int c_cancel(const hcase *c)
{
    return jm_cancel(mgr(c->n), id_of(c->a));
}

static int c_retry(const hcase *c)
{
    return jm_retry(mgr(c->n), id_of(c->a));
}

/* jm_create variants: which option the row's string c (or number) sets. */
enum {
    O_NONE = 10,
    O_NS,          /* namespace_id = c */
    O_KEY,         /* idempotency_key = c */
    O_VERSION0,
    O_VERSION99,
    O_RETRIES,     /* max_retries = 1001 */
    O_RUN_AT_NEG,  /* run_at_ms = -1 */
    O_RUN_AT_MIN,  /* run_at_ms = INT64_MIN */
    O_NULL_M,
    O_NULL_ID
};

static int c_create(const hcase *c)
{
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    switch (c->n) {
    case O_NS: o.namespace_id = S(c->c); break;
    case O_KEY: o.idempotency_key = S(c->c); break;
    case O_VERSION0: o.version = 0; break;
    case O_VERSION99: o.version = 99; break;
    case O_RETRIES: o.max_retries = JM_MAX_RETRIES_LIMIT + 1; break;
    case O_RUN_AT_NEG: o.run_at_ms = -1; break;
    case O_RUN_AT_MIN: o.run_at_ms = INT64_MIN; break;
    default: break;
    }
    char id[JM_JOB_ID_SIZE] = "";
    return jm_create(c->n == O_NULL_M ? NULL : F->m, S(c->a), S(c->b), &o,
                     c->n == O_NULL_ID ? NULL : id);
}

enum { M_ZERO = 20, M_TOO_MANY, M_NULL_JOBS, M_NULL_IDS, M_SECOND_BAD, M_DUP_KEY, M_HELD };

static int c_create_many(const hcase *c)
{
    jm_new_job jobs[2] = {{"CO", "{\"namespace_id\":\"app\",\"table_name\":\"orders\","
                                 "\"table_type\":\"User\",\"target_file_size_mb\":1}",
                           JM_CREATE_OPTS_INIT},
                          {S(c->a), S(c->b), JM_CREATE_OPTS_INIT}};
    char ids[2][JM_JOB_ID_SIZE];
    size_t n = 2;
    switch (c->n) {
    case M_ZERO: n = 0; break;
    case M_TOO_MANY: n = (size_t)JM_MAX_CREATE_MANY + 1; break;
    case M_DUP_KEY: jobs[0].opts.idempotency_key = jobs[1].opts.idempotency_key = "dup"; break;
    case M_HELD: jobs[1].opts.idempotency_key = "held"; break;
    default: break;
    }
    return jm_create_many(F->m, c->n == M_NULL_JOBS ? NULL : jobs, n,
                          c->n == M_NULL_IDS ? NULL : ids);
}

/* Filter variants. */
enum {
    FL_VERSION0 = 30,
    FL_STATUSES,
    FL_TYPE,      /* type = a */
    FL_NS,        /* namespace_id = a */
    FL_KEY,       /* idempotency_key = a */
    FL_AFTER_NEG,
    FL_BEFORE_NEG,
    FL_LIMIT,     /* limit = b as a number: see c_filter */
    FL_AFTER_ID,  /* after_id = a */
    FL_NULL_M,
    FL_NULL_OUT
};

static void make_filter(const hcase *c, jm_filter *f)
{
    jm_filter init = JM_FILTER_INIT;
    *f = init;
    switch (c->n) {
    case FL_VERSION0: f->version = 0; break;
    case FL_STATUSES: f->statuses = 1u << JM_STATUS_COUNT; break;
    case FL_TYPE: f->type = S(c->a); break;
    case FL_NS: f->namespace_id = S(c->a); break;
    case FL_KEY: f->idempotency_key = S(c->a); break;
    case FL_AFTER_NEG: f->created_after_ms = -1; break;
    case FL_BEFORE_NEG: f->created_before_ms = INT64_MIN; break;
    case FL_LIMIT: f->limit = (int)strtol(c->b, NULL, 10); break;
    case FL_AFTER_ID: f->after_id = id_of(c->a); break;
    default: break;
    }
}

/* For success rows of a filter: how many jobs must match (row.c). */
static int c_list(const hcase *c)
{
    jm_filter f;
    make_filter(c, &f);
    jm_job_list *l = NULL;
    int rc = jm_list(c->n == FL_NULL_M ? NULL : F->m, &f, c->n == FL_NULL_OUT ? NULL : &l);
    if (rc == JM_OK && c->c && jm_job_list_count(l) != (size_t)atoi(c->c))
        note("%s: %zu jobs listed, want %s", c->what, jm_job_list_count(l), c->c);
    jm_job_list_free(l);
    return rc;
}

static int c_count(const hcase *c)
{
    jm_filter f;
    make_filter(c, &f);
    int64_t n = -1;
    int rc = jm_count(c->n == FL_NULL_M ? NULL : F->m, &f, c->n == FL_NULL_OUT ? NULL : &n);
    if (rc == JM_OK && c->c && n != atoi(c->c))
        note("%s: counted %lld jobs, want %s", c->what, (long long)n, c->c);
    return rc;
}

static int c_prune(const hcase *c)
{
    int64_t d = 0;
    return jm_prune(c->a ? NULL : F->m, c->n, &d);
}

static jm_decision noop_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed(NULL, NULL);
}

enum { R_NULL = 40, R_VERSION0, R_TYPE, R_NO_EXECUTE, R_NULL_M };

static int c_register(const hcase *c)
{
    jm_executor ex = {JM_EXECUTOR_VERSION, "XX", "x", 1, NULL, noop_execute, NULL, JM_CLASS_NORMAL, NULL};
    switch (c->n) {
    case R_VERSION0: ex.version = 0; break;
    case R_TYPE: ex.type = S(c->a); break;
    case R_NO_EXECUTE: ex.execute = NULL; break;
    default: break;
    }
    return jm_register(c->n == R_NULL_M ? NULL : F->m, c->n == R_NULL ? NULL : &ex, NULL);
}

static int c_start(const hcase *c)
{
    int rc = jm_start(c->a ? NULL : F->m, (int)c->n);
    if (rc == JM_OK)
        jm_stop(F->m, 0);
    return rc;
}

static int c_run(const hcase *c)
{
    return jm_run(c->a ? NULL : F->m, (int)c->n);
}

static int c_run_once(const hcase *c)
{
    int ran = 0;
    return jm_run_once(c->a ? NULL : F->m, (int)c->n, &ran);
}

static int c_recover(const hcase *c)
{
    (void)c;
    return jm_recover(NULL, NULL);
}

static int c_stats(const hcase *c)
{
    jm_stats_report *r = NULL;
    int rc = jm_stats(c->n == V_NULL_M ? NULL : F->m, c->n == V_NULL_OUT ? NULL : &r);
    jm_stats_free(r);
    return rc;
}

static int c_prometheus(const hcase *c)
{
    char buf[16];
    size_t needed = 0;
    return jm_metrics_prometheus(c->n == V_NULL_M ? NULL : F->m, buf, c->a ? 0 : sizeof buf,
                                 &needed);
}

static int c_status_parse(const hcase *c)
{
    jm_status s;
    return jm_status_parse(S(c->a), c->n == V_NULL_OUT ? NULL : &s);
}

static int c_table_type_parse(const hcase *c)
{
    jm_table_type t;
    return jm_table_type_parse(S(c->a), c->n == V_NULL_OUT ? NULL : &t);
}

static int c_set_allocator(const hcase *c)
{
    jm_allocator a = {(unsigned)c->n, NULL, NULL, NULL};
    return jm_set_allocator(&a);
}

/* jm_open variants: row.a is db_path ("$db" the fixture's jobs db). */
enum {
    CF_NULL = 50,
    CF_VERSION,
    CF_RETRIES,
    CF_JITTER,
    CF_JITTER_NAN,
    CF_LEASE,
    CF_POLL,
    CF_RECOVERY,
    CF_LOG,
    CF_BUSY,
    CF_DURABILITY,
    CF_NODE, /* node_id = b */
    CF_NULL_OUT,
    CF_PLAIN
};

static int c_open(const hcase *c)
{
    jm_config cfg = F->cfg;
    const char *path = c->a;
    if (path && strcmp(path, "$db") == 0)
        path = F->db;
    else if (path && strcmp(path, "$dir") == 0)
        path = F->dir;
    else if (path && strcmp(path, "$notdb") == 0)
        path = F->notdb;
    else if (path && strcmp(path, "$otherdb") == 0)
        path = F->otherdb;
    cfg.db_path = S(path);
    switch (c->n) {
    case CF_VERSION: cfg.version = 7; break;
    case CF_RETRIES: cfg.max_retries = -1; break;
    case CF_JITTER: cfg.backoff_jitter = 1.5; break;
    case CF_JITTER_NAN: cfg.backoff_jitter = 0.0 / 0.0; break;
    case CF_LEASE: cfg.lease_ms = -1; break;
    case CF_POLL: cfg.poll_interval_ms = 0; break;
    case CF_RECOVERY: cfg.recovery = (jm_recovery_policy)9; break;
    case CF_LOG: cfg.log_level = (jm_log_level)-3; break;
    case CF_BUSY: cfg.busy_timeout_ms = -1; break;
    case CF_DURABILITY: cfg.durability = (jm_durability)7; break;
    case CF_NODE: cfg.node_id = S(c->b); break;
    default: break;
    }
    jm_manager *m = NULL;
    int rc = jm_open(c->n == CF_NULL ? NULL : &cfg, c->n == CF_NULL_OUT ? NULL : &m);
    if (rc == JM_OK && m) {
        /* The injected node id is stored as data only: the table survives. */
        int64_t n = -1;
        if (jm_count(m, NULL, &n) != JM_OK || n != 6)
            note("%s: after opening, %lld jobs (want 6)", c->what, (long long)n);
        jm_close(m);
    }
    return rc;
}

/* Engine calls: a = namespace, b = table, c = user, n = variant. */
enum {
    E_NS = 60,
    E_TABLE,       /* create_table(a, b, User) */
    E_TABLE_TYPE,  /* create_table(app, t, 42) */
    E_STREAM_NOTTL,
    E_USER_TTL,
    E_OPTS_VERSION,
    E_OWNER,       /* create_table(app, t, User, owner c) */
    E_INSERT,      /* insert(a, b, doc c) */
    E_INSERT_NEG,
    E_SOFT_DELETE, /* soft_delete(app, orders, key n2) */
    E_GET,
    E_COUNT,
    E_EXISTS,
    E_SCAN,
    E_DROP,
    E_USER,        /* create_user(c, "name") */
    E_USERNAME,    /* create_user("u2", c) */
    E_SOFT_DELETE_USER,
    E_USER_EXISTS,
    E_GRANT,       /* grant(a, b, c) */
    E_LIVE_QUERY,  /* add_live_query(c, a, b) */
    E_COUNT_ACL,
    E_OPEN,        /* jm_engine_open(a) */
    E_NULL_ENGINE
};

static int scan_none(void *arg, const jm_host_row *r)
{
    (void)arg;
    (void)r;
    return 0;
}

static int c_engine(const hcase *c)
{
    jm_engine *e = F->e;
    const char *a = S(c->a), *b = S(c->b), *u = S(c->c);
    int64_t k = 0;
    int flag = 0;
    char *doc = NULL;
    jm_table_opts o = JM_TABLE_OPTS_INIT;
    switch (c->n) {
    case E_NS: return jm_engine_create_namespace(e, a);
    case E_TABLE: return jm_engine_create_table(e, a, b, JM_TABLE_USER, NULL);
    case E_TABLE_TYPE: return jm_engine_create_table(e, "app", "t", (jm_table_type)42, NULL);
    case E_STREAM_NOTTL: return jm_engine_create_table(e, "app", "t", JM_TABLE_STREAM, NULL);
    case E_USER_TTL:
        o.ttl_seconds = 5;
        return jm_engine_create_table(e, "app", "t", JM_TABLE_USER, &o);
    case E_OPTS_VERSION:
        o.version = 0;
        return jm_engine_create_table(e, "app", "t", JM_TABLE_USER, &o);
    case E_OWNER:
        o.owner_user_id = u;
        return jm_engine_create_table(e, "app", "t", JM_TABLE_USER, &o);
    case E_INSERT: return jm_engine_insert(e, a, b, u, 0, &k);
    case E_INSERT_NEG: return jm_engine_insert(e, "app", "orders", "{}", -5, &k);
    case E_SOFT_DELETE: return jm_engine_soft_delete(e, a, b, atoll(u), 0);
    case E_GET: {
        int rc = jm_engine_get(e, a, b, atoll(u), &doc);
        jm_free(doc);
        return rc;
    }
    case E_COUNT: return jm_engine_count(e, a, b, 1, &k);
    case E_EXISTS: return jm_engine_table_exists(e, a, b, &flag);
    case E_SCAN: return jm_engine_scan(e, a, b, 1, scan_none, NULL);
    case E_DROP: return jm_engine_drop_table(e, a, b);
    case E_USER: return jm_engine_create_user(e, u, "name");
    case E_USERNAME: return jm_engine_create_user(e, "u2", u);
    case E_SOFT_DELETE_USER: return jm_engine_soft_delete_user(e, u);
    case E_USER_EXISTS: return jm_engine_user_exists(e, u, &flag);
    case E_GRANT: return jm_engine_grant(e, a, b, u);
    case E_LIVE_QUERY: return jm_engine_add_live_query(e, u, a, b, &k);
    case E_COUNT_ACL: return jm_engine_count_acl(e, u, &k);
    case E_OPEN: {
        jm_engine *x = NULL;
        int rc = jm_engine_open(a, &x);
        jm_engine_close(x);
        return rc;
    }
    case E_NULL_ENGINE: return jm_engine_create_namespace(NULL, "app");
    default: return JM_OK;
    }
}

#define ID_CASES(fn, name, flags)                                                              \
    {name ": NULL id", fn, NULL, NULL, NULL, V_PLAIN, JM_EINVAL, "NULL", flags},               \
    {name ": empty id", fn, "", NULL, NULL, V_PLAIN, JM_EINVAL, "39 characters", flags},       \
    {name ": type only", fn, "FL", NULL, NULL, V_PLAIN, JM_EINVAL, "39 characters", flags},    \
    {name ": one short", fn, "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6", NULL, NULL, V_PLAIN,    \
     JM_EINVAL, "39 characters", flags},                                                       \
    {name ": one long", fn, "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f0", NULL, NULL, V_PLAIN,  \
     JM_EINVAL, "39 characters", flags},                                                       \
    {name ": lower-case type", fn, "fl-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f", NULL, NULL,      \
     V_PLAIN, JM_EINVAL, "two-letter type", flags},                                            \
    {name ": wrong separator", fn, "FL_0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f", NULL, NULL,      \
     V_PLAIN, JM_EINVAL, "two-letter type", flags},                                            \
    {name ": three-letter type", fn, "FLX0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f", NULL, NULL,    \
     V_PLAIN, JM_EINVAL, "two-letter type", flags},                                            \
    {name ": upper-case hex", fn, "FL-0B6C2F3E-8A1D-4C5E-9F70-1A2B3C4D5E6F", NULL, NULL,      \
     V_PLAIN, JM_EINVAL, "bad uuid", flags},                                                   \
    {name ": non-hex digit", fn, "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6g", NULL, NULL,       \
     V_PLAIN, JM_EINVAL, "bad uuid", flags},                                                   \
    {name ": dashes moved", fn, "FL-0b6c2f3e8-a1d-4c5e-9f70-1a2b3c4d5e6f", NULL, NULL,        \
     V_PLAIN, JM_EINVAL, "bad uuid", flags},                                                   \
    {name ": invalid UTF-8", fn, "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e\xff\xfe", NULL, NULL,\
     V_PLAIN, JM_EINVAL, "bad uuid", flags},                                                   \
    {name ": injection", fn, "FL-'); DROP TABLE jobs; --aaaaaaaaaaaaa", NULL, NULL, V_PLAIN,\
     JM_EINVAL, "bad uuid", flags},                                                            \
    {name ": LIKE wildcard", fn, "FL-%%%%%%%%-%%%%-%%%%-%%%%-%%%%%%%%%%%%", NULL, NULL,       \
     V_PLAIN, JM_EINVAL, "bad uuid", flags}

static const hcase api_cases[] = {
    /* ---- job ids ---- */
    ID_CASES(c_parse, "jm_job_id_parse", 0),
    {"jm_job_id_parse: trailing space", c_parse, "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f ",
     NULL, NULL, V_TYPE_OUT, JM_EINVAL, "39 characters", 0},
    {"jm_job_id_parse: leading space", c_parse, " FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
     NULL, NULL, V_TYPE_OUT, JM_EINVAL, "39 characters", 0},
    {"jm_job_id_parse: digits as type", c_parse, "12-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
     NULL, NULL, V_TYPE_OUT, JM_EINVAL, "two-letter type", 0},
    ID_CASES(c_get, "jm_get", SAME_JOBS),
    ID_CASES(c_cancel, "jm_cancel", SAME_JOBS),
    ID_CASES(c_retry, "jm_retry", SAME_JOBS),
    {"jm_get: unknown id", c_get, UNKNOWN_FL, NULL, NULL, V_PLAIN, JM_ENOTFOUND, "not found",
     SAME_JOBS},
    {"jm_get: unknown type", c_get, UNKNOWN_ZZ, NULL, NULL, V_PLAIN, JM_ENOTFOUND, "not found",
     SAME_JOBS},
    {"jm_get: NULL manager", c_get, "$queued", NULL, NULL, V_NULL_M, JM_EINVAL, "NULL",
     SAME_JOBS},
    {"jm_get: NULL out", c_get, "$queued", NULL, NULL, V_NULL_OUT, JM_EINVAL, "NULL",
     SAME_JOBS},
    {"jm_cancel: unknown id", c_cancel, UNKNOWN_FL, NULL, NULL, V_PLAIN, JM_ENOTFOUND,
     "not found", SAME_JOBS},
    {"jm_cancel: unknown type", c_cancel, UNKNOWN_ZZ, NULL, NULL, V_PLAIN, JM_ENOTFOUND,
     "not found", SAME_JOBS},
    {"jm_cancel: NULL manager", c_cancel, "$queued", NULL, NULL, V_NULL_M, JM_EINVAL, "NULL",
     SAME_JOBS},
    {"jm_retry: unknown id", c_retry, UNKNOWN_FL, NULL, NULL, V_PLAIN, JM_ENOTFOUND,
     "not found", SAME_JOBS},
    {"jm_retry: NULL manager", c_retry, "$failed", NULL, NULL, V_NULL_M, JM_EINVAL, "NULL",
     SAME_JOBS},

    /* ---- status transitions ---- */
    {"jm_cancel: completed job", c_cancel, "$completed", NULL, NULL, V_PLAIN, JM_ESTATE,
     "is completed: it cannot be cancelled", SAME_JOBS},
    {"jm_cancel: failed job", c_cancel, "$failed", NULL, NULL, V_PLAIN, JM_ESTATE,
     "is failed: it cannot be cancelled", SAME_JOBS},
    {"jm_cancel: cancelled job", c_cancel, "$cancelled", NULL, NULL, V_PLAIN, JM_ESTATE,
     "is cancelled: it cannot be cancelled", SAME_JOBS},
    {"jm_retry: queued job", c_retry, "$queued", NULL, NULL, V_PLAIN, JM_ESTATE,
     "only failed or cancelled", SAME_JOBS},
    {"jm_retry: new job", c_retry, "$new", NULL, NULL, V_PLAIN, JM_ESTATE,
     "only failed or cancelled", SAME_JOBS},
    {"jm_retry: completed job", c_retry, "$completed", NULL, NULL, V_PLAIN, JM_ESTATE,
     "only failed or cancelled", SAME_JOBS},

    /* ---- jm_create: arguments and type ---- */
    {"jm_create: NULL manager", c_create, "FL", "{}", NULL, O_NULL_M, JM_EINVAL, "NULL",
     SAME_JOBS},
    {"jm_create: NULL id_out", c_create, "FL", "{}", NULL, O_NULL_ID, JM_EINVAL, "NULL",
     SAME_JOBS},
    {"jm_create: NULL type", c_create, NULL, "{}", NULL, O_NONE, JM_EINVAL, "type is NULL",
     SAME_JOBS},
    {"jm_create: empty type", c_create, "", "{}", NULL, O_NONE, JM_EINVAL,
     "two uppercase letters", SAME_JOBS},
    {"jm_create: lower-case type", c_create, "fl", "{}", NULL, O_NONE, JM_EINVAL,
     "two uppercase letters", SAME_JOBS},
    {"jm_create: one-letter type", c_create, "F", "{}", NULL, O_NONE, JM_EINVAL,
     "two uppercase letters", SAME_JOBS},
    {"jm_create: three-letter type", c_create, "FLX", "{}", NULL, O_NONE, JM_EINVAL,
     "two uppercase letters", SAME_JOBS},
    {"jm_create: invalid UTF-8 type", c_create, "\xff\xfe", "{}", NULL, O_NONE, JM_EINVAL,
     "two uppercase letters", SAME_JOBS},
    {"jm_create: injection as type", c_create, INJECT_C, "{}", NULL, O_NONE, JM_EINVAL,
     "two uppercase letters", SAME_JOBS},
    {"jm_create: unregistered type", c_create, "ZZ", "{}", NULL, O_NONE, JM_ENOEXEC,
     "no executor registered for type ZZ", SAME_JOBS},

    /* ---- jm_create: parameters that are not a JSON object ---- */
    {"params: empty", c_create, "FL", "", NULL, O_NONE, JM_EJSON, "not valid JSON", SAME_JOBS},
    {"params: blanks", c_create, "FL", " \t\n", NULL, O_NONE, JM_EJSON, "not valid JSON",
     SAME_JOBS},
    {"params: unterminated", c_create, "FL", "{", NULL, O_NONE, JM_EJSON, "not valid JSON",
     SAME_JOBS},
    {"params: missing value", c_create, "FL", "{\"a\":}", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: trailing comma", c_create, "FL", "{\"a\":1,}", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: trailing garbage", c_create, "FL", "{} x", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: two objects", c_create, "FL", "{}{}", NULL, O_NONE, JM_EJSON, "not valid JSON",
     SAME_JOBS},
    {"params: single quotes", c_create, "FL", "{'a':1}", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: comment", c_create, "FL", "/* hi */ {}", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: NaN", c_create, "FL", "{\"a\":NaN}", NULL, O_NONE, JM_EJSON, "not valid JSON",
     SAME_JOBS},
    {"params: Infinity", c_create, "FL", "{\"a\":-Infinity}", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: leading zero", c_create, "FL", "{\"a\":01}", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: hex number", c_create, "FL", "{\"a\":0x10}", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: raw control character", c_create, "FL", "{\"a\":\"x\x01y\"}", NULL, O_NONE,
     JM_EJSON, "not valid JSON", SAME_JOBS},
    {"params: bad escape", c_create, "FL", "{\"a\":\"\\x41\"}", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: lone high surrogate", c_create, "FL", "{\"a\":\"\\ud800\"}", NULL, O_NONE,
     JM_EJSON, "not valid JSON", SAME_JOBS},
    {"params: lone low surrogate", c_create, "FL", "{\"a\":\"\\udc00x\"}", NULL, O_NONE,
     JM_EJSON, "not valid JSON", SAME_JOBS},
    {"params: short \\u escape", c_create, "FL", "{\"a\":\"\\u12\"}", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: array", c_create, "FL", "[]", NULL, O_NONE, JM_EJSON, "must be a JSON object",
     SAME_JOBS},
    {"params: null", c_create, "FL", "null", NULL, O_NONE, JM_EJSON, "must be a JSON object",
     SAME_JOBS},
    {"params: number", c_create, "FL", "42", NULL, O_NONE, JM_EJSON, "must be a JSON object",
     SAME_JOBS},
    {"params: string", c_create, "FL", "\"{}\"", NULL, O_NONE, JM_EJSON,
     "must be a JSON object", SAME_JOBS},
    {"params: 5000 levels deep", c_create, "FL", "@DEEP", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: 1001 nested arrays", c_create, "FL", "@DEEP_ARRAY", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: 1001 nested objects", c_create, "FL", "@DEEP_OBJECT", NULL, O_NONE, JM_EJSON,
     "not valid JSON", SAME_JOBS},
    {"params: over 512 KiB", c_create, "FL", "@HUGE", NULL, O_NONE, JM_ETOOBIG,
     "larger than 524288 bytes", SAME_JOBS},
    {"params: invalid UTF-8 in a value", c_create, "FL", "{\"a\":\"" BAD_UTF8 "\"}", NULL,
     O_NONE, JM_EJSON, "not valid UTF-8", SAME_JOBS},
    {"params: invalid UTF-8 in a key", c_create, "FL", "{\"\xff\":1}", NULL, O_NONE, JM_EJSON,
     "not valid UTF-8", SAME_JOBS},
    {"params: overlong UTF-8", c_create, "FL", "{\"a\":\"" OVERLONG "\"}", NULL, O_NONE,
     JM_EJSON, "not valid UTF-8", SAME_JOBS},
    {"params: UTF-8 encoded surrogate", c_create, "FL", "{\"a\":\"" SURROGATE_UTF8 "\"}", NULL,
     O_NONE, JM_EJSON, "not valid UTF-8", SAME_JOBS},
    {"params: truncated UTF-8", c_create, "FL", "{\"a\":\"\xe2\x82\"}", NULL, O_NONE, JM_EJSON,
     "not valid UTF-8", SAME_JOBS},
    {"params: escaped NUL", c_create, "FL", "{\"x\":\"a\\u0000b\"}", NULL, O_NONE,
     JM_EINVAL, "must not contain \\u0000", SAME_JOBS},
    {"params: escaped NUL in a key", c_create, "FL", "{\"\\u0000\":1}", NULL, O_NONE,
     JM_EINVAL, "must not contain \\u0000", SAME_JOBS},
    {"params: escaped backslash before u0000 (no NUL)", c_create, "FL",
     "{\"x\":\"\\\\u0000\"}", NULL, O_NONE, JM_EINVAL,
     "missing required parameter \"namespace_id\"", SAME_JOBS},
    {"params: 400-digit number", c_create, "FL", "@BIGNUM", NULL, O_NONE, JM_EINVAL,
     "missing required parameter \"namespace_id\"", SAME_JOBS},

    /* ---- jm_create: options ---- */
    {"opts: version 0", c_create, "FL", "{}", NULL, O_VERSION0, JM_EINVAL,
     "unknown jm_create_opts version 0", SAME_JOBS},
    {"opts: version 99", c_create, "FL", "{}", NULL, O_VERSION99, JM_EINVAL,
     "unknown jm_create_opts version 99", SAME_JOBS},
    {"opts: max_retries 1001", c_create, "FL", "{}", NULL, O_RETRIES, JM_EINVAL,
     "max_retries must be at most 1000", SAME_JOBS},
    {"opts: run_at -1", c_create, "FL", "{}", NULL, O_RUN_AT_NEG, JM_EINVAL,
     "run_at_ms must not be negative", SAME_JOBS},
    {"opts: run_at INT64_MIN", c_create, "FL", "{}", NULL, O_RUN_AT_MIN, JM_EINVAL,
     "run_at_ms must not be negative", SAME_JOBS},
    {"opts: empty namespace", c_create, "FL", "{}", "", O_NS, JM_EINVAL,
     "namespace_id must be non-empty printable UTF-8", SAME_JOBS},
    {"opts: invalid UTF-8 namespace", c_create, "FL", "{}", BAD_UTF8, O_NS, JM_EINVAL,
     "namespace_id must be non-empty printable UTF-8", SAME_JOBS},
    {"opts: overlong UTF-8 namespace", c_create, "FL", "{}", OVERLONG, O_NS, JM_EINVAL,
     "namespace_id must be non-empty printable UTF-8", SAME_JOBS},
    {"opts: control character in namespace", c_create, "FL", "{}", "a\nb", O_NS, JM_EINVAL,
     "namespace_id must be non-empty printable UTF-8", SAME_JOBS},
    {"opts: 256-byte namespace", c_create, "FL", "{}", "@LONG256", O_NS, JM_ETOOBIG,
     "namespace_id longer than 255 bytes", SAME_JOBS},
    {"opts: empty key", c_create, "FL", "{}", "", O_KEY, JM_EINVAL,
     "idempotency_key must be non-empty printable UTF-8", SAME_JOBS},
    {"opts: invalid UTF-8 key", c_create, "FL", "{}", BAD_UTF8, O_KEY, JM_EINVAL,
     "idempotency_key must be non-empty printable UTF-8", SAME_JOBS},
    {"opts: UTF-8 surrogate key", c_create, "FL", "{}", SURROGATE_UTF8, O_KEY, JM_EINVAL,
     "idempotency_key must be non-empty printable UTF-8", SAME_JOBS},
    {"opts: 256-byte key", c_create, "FL", "{}", "@LONG256", O_KEY, JM_ETOOBIG,
     "idempotency_key longer than 255 bytes", SAME_JOBS},
    {"opts: key held by an active job", c_create, "CO",
     "{\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":\"User\","
     "\"target_file_size_mb\":2}",
     "held", O_KEY, JM_ECONFLICT, "idempotency key 'held' is held by active job", SAME_JOBS},

    /* ---- jm_create_many ---- */
    {"jm_create_many: n = 0", c_create_many, "FL", "{}", NULL, M_ZERO, JM_EINVAL,
     "n must be 1..100000", SAME_JOBS},
    {"jm_create_many: n too large", c_create_many, "FL", "{}", NULL, M_TOO_MANY, JM_EINVAL,
     "n must be 1..100000", SAME_JOBS},
    {"jm_create_many: NULL jobs", c_create_many, "FL", "{}", NULL, M_NULL_JOBS, JM_EINVAL,
     "NULL", SAME_JOBS},
    {"jm_create_many: NULL ids", c_create_many, "FL", "{}", NULL, M_NULL_IDS, JM_EINVAL, "NULL",
     SAME_JOBS},
    {"jm_create_many: second job bad JSON", c_create_many, "CO", "{", NULL, M_SECOND_BAD,
     JM_EJSON, "job 1: parameters are not valid JSON", SAME_JOBS},
    {"jm_create_many: second job refused", c_create_many, "CO", "{\"namespace_id\":1}", NULL,
     M_SECOND_BAD, JM_EINVAL, "job 1: invalid CO parameters", SAME_JOBS},
    {"jm_create_many: second job unknown type", c_create_many, "QQ", "{}", NULL, M_SECOND_BAD,
     JM_ENOEXEC, "job 1: no executor", SAME_JOBS},
    {"jm_create_many: duplicate key in batch", c_create_many, "CO",
     "{\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":\"User\","
     "\"target_file_size_mb\":1}",
     NULL, M_DUP_KEY, JM_ECONFLICT, "dup", SAME_JOBS},
    {"jm_create_many: key held", c_create_many, "CO",
     "{\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":\"User\","
     "\"target_file_size_mb\":1}",
     NULL, M_HELD, JM_ECONFLICT, "held", SAME_JOBS},

    /* ---- filters (jm_list and jm_count) ---- */
    {"jm_list: NULL manager", c_list, NULL, NULL, NULL, FL_NULL_M, JM_EINVAL, "NULL",
     SAME_JOBS},
    {"jm_list: NULL out", c_list, NULL, NULL, NULL, FL_NULL_OUT, JM_EINVAL, "NULL", SAME_JOBS},
    {"jm_list: version 0", c_list, NULL, NULL, NULL, FL_VERSION0, JM_EINVAL,
     "unknown jm_filter version", SAME_JOBS},
    {"jm_list: unknown status bit", c_list, NULL, NULL, NULL, FL_STATUSES, JM_EINVAL,
     "unknown statuses", SAME_JOBS},
    {"jm_list: lower-case type", c_list, "fl", NULL, NULL, FL_TYPE, JM_EINVAL,
     "two uppercase letters", SAME_JOBS},
    {"jm_list: injection as type", c_list, INJECT_C, NULL, NULL, FL_TYPE, JM_EINVAL,
     "two uppercase letters", SAME_JOBS},
    {"jm_list: empty type", c_list, "", NULL, NULL, FL_TYPE, JM_EINVAL,
     "two uppercase letters", SAME_JOBS},
    {"jm_list: invalid UTF-8 namespace", c_list, BAD_UTF8, NULL, NULL, FL_NS, JM_EINVAL,
     "namespace", SAME_JOBS},
    {"jm_list: 256-byte namespace", c_list, "@LONG256", NULL, NULL, FL_NS, JM_ETOOBIG,
     "longer than 255 bytes", SAME_JOBS},
    {"jm_list: invalid UTF-8 key", c_list, SURROGATE_UTF8, NULL, NULL, FL_KEY, JM_EINVAL,
     "idempotency", SAME_JOBS},
    {"jm_list: 256-byte key", c_list, "@LONG256", NULL, NULL, FL_KEY, JM_ETOOBIG,
     "longer than 255 bytes", SAME_JOBS},
    {"jm_list: negative created_after", c_list, NULL, NULL, NULL, FL_AFTER_NEG, JM_EINVAL,
     "must not be negative", SAME_JOBS},
    {"jm_list: INT64_MIN created_before", c_list, NULL, NULL, NULL, FL_BEFORE_NEG, JM_EINVAL,
     "must not be negative", SAME_JOBS},
    {"jm_list: limit -1", c_list, NULL, "-1", NULL, FL_LIMIT, JM_EINVAL,
     "limit must be 0..10000", SAME_JOBS},
    {"jm_list: limit 10001", c_list, NULL, "10001", NULL, FL_LIMIT, JM_EINVAL,
     "limit must be 0..10000", SAME_JOBS},
    {"jm_list: limit INT_MIN", c_list, NULL, "-2147483648", NULL, FL_LIMIT, JM_EINVAL,
     "limit must be 0..10000", SAME_JOBS},
    {"jm_list: malformed after_id", c_list, "FL-nope", NULL, NULL, FL_AFTER_ID, JM_EINVAL,
     "after_id is not a job id", SAME_JOBS},
    {"jm_list: injection as after_id", c_list, "FL-'); DROP TABLE jobs; --aaaaaaaaaaaaa",
     NULL, NULL, FL_AFTER_ID, JM_EINVAL, "after_id is not a job id", SAME_JOBS},
    {"jm_list: unknown after_id", c_list, UNKNOWN_FL, NULL, NULL, FL_AFTER_ID, JM_ENOTFOUND,
     "cursor job", SAME_JOBS},
    {"jm_list: injection as namespace (bound, matches nothing)", c_list, INJECT_C, NULL, "0",
     FL_NS, JM_OK, NULL, SAME_JOBS},
    {"jm_list: injection as key (bound, matches nothing)", c_list,
     "held' OR '1'='1", NULL, "0", FL_KEY, JM_OK, NULL, SAME_JOBS},
    {"jm_list: LIKE wildcards as namespace (matches nothing)", c_list, "%", NULL, "0", FL_NS,
     JM_OK, NULL, SAME_JOBS},
    {"jm_count: NULL manager", c_count, NULL, NULL, NULL, FL_NULL_M, JM_EINVAL, "NULL",
     SAME_JOBS},
    {"jm_count: NULL out", c_count, NULL, NULL, NULL, FL_NULL_OUT, JM_EINVAL, "NULL",
     SAME_JOBS},
    {"jm_count: version 0", c_count, NULL, NULL, NULL, FL_VERSION0, JM_EINVAL,
     "unknown jm_filter version", SAME_JOBS},
    {"jm_count: unknown status bit", c_count, NULL, NULL, NULL, FL_STATUSES, JM_EINVAL,
     "unknown statuses", SAME_JOBS},
    {"jm_count: injection as type", c_count, INJECT_C, NULL, NULL, FL_TYPE, JM_EINVAL,
     "two uppercase letters", SAME_JOBS},
    {"jm_count: invalid UTF-8 namespace", c_count, OVERLONG, NULL, NULL, FL_NS, JM_EINVAL,
     "namespace", SAME_JOBS},
    {"jm_count: negative time", c_count, NULL, NULL, NULL, FL_AFTER_NEG, JM_EINVAL,
     "must not be negative", SAME_JOBS},
    {"jm_count: injection as namespace (bound, matches nothing)", c_count, INJECT_C, NULL, "0",
     FL_NS, JM_OK, NULL, SAME_JOBS},
    {"jm_count: injection as key (bound, matches nothing)", c_count, "x' OR 1=1 --", NULL, "0",
     FL_KEY, JM_OK, NULL, SAME_JOBS},

    /* ---- other manager calls ---- */
    {"jm_prune: negative time", c_prune, NULL, NULL, NULL, -1, JM_EINVAL,
     "must not be negative", SAME_JOBS},
    {"jm_prune: INT64_MIN", c_prune, NULL, NULL, NULL, INT64_MIN, JM_EINVAL,
     "must not be negative", SAME_JOBS},
    {"jm_prune: NULL manager", c_prune, "null", NULL, NULL, 0, JM_EINVAL, "NULL", SAME_JOBS},
    {"jm_register: NULL executor", c_register, NULL, NULL, NULL, R_NULL, JM_EINVAL,
     "executor is NULL", SAME_JOBS},
    {"jm_register: version 0", c_register, NULL, NULL, NULL, R_VERSION0, JM_EINVAL,
     "unknown executor version", SAME_JOBS},
    {"jm_register: lower-case type", c_register, "xx", NULL, NULL, R_TYPE, JM_EINVAL, "type",
     SAME_JOBS},
    {"jm_register: injection as type", c_register, INJECT_C, NULL, NULL, R_TYPE, JM_EINVAL,
     "type", SAME_JOBS},
    {"jm_register: NULL type", c_register, NULL, NULL, NULL, R_TYPE, JM_EINVAL, "type",
     SAME_JOBS},
    {"jm_register: built-in type again", c_register, "FL", NULL, NULL, R_TYPE, JM_ECONFLICT,
     "type FL is already registered", SAME_JOBS},
    {"jm_register: no execute", c_register, NULL, NULL, NULL, R_NO_EXECUTE, JM_EINVAL,
     "no execute function", SAME_JOBS},
    {"jm_register: NULL manager", c_register, NULL, NULL, NULL, R_NULL_M, JM_EINVAL,
     "manager is NULL", SAME_JOBS},
    {"jm_start: 0 workers", c_start, NULL, NULL, NULL, 0, JM_EINVAL,
     "max_concurrent must be 1..256", SAME_JOBS},
    {"jm_start: -1 workers", c_start, NULL, NULL, NULL, -1, JM_EINVAL,
     "max_concurrent must be 1..256", SAME_JOBS},
    {"jm_start: 257 workers", c_start, NULL, NULL, NULL, 257, JM_EINVAL,
     "max_concurrent must be 1..256", SAME_JOBS},
    {"jm_start: NULL manager", c_start, "null", NULL, NULL, 1, JM_EINVAL, "manager is NULL",
     SAME_JOBS},
    {"jm_run: 0 workers", c_run, NULL, NULL, NULL, 0, JM_EINVAL,
     "max_concurrent must be 1..256", SAME_JOBS},
    {"jm_run: NULL manager", c_run, "null", NULL, NULL, 1, JM_EINVAL, "manager is NULL",
     SAME_JOBS},
    {"jm_run_once: 0 jobs", c_run_once, NULL, NULL, NULL, 0, JM_EINVAL, "max_jobs must be",
     SAME_JOBS},
    {"jm_run_once: -5 jobs", c_run_once, NULL, NULL, NULL, -5, JM_EINVAL, "max_jobs must be",
     SAME_JOBS},
    {"jm_run_once: NULL manager", c_run_once, "null", NULL, NULL, 1, JM_EINVAL,
     "manager is NULL", SAME_JOBS},
    {"jm_recover: NULL manager", c_recover, NULL, NULL, NULL, 0, JM_EINVAL, "NULL", SAME_JOBS},
    {"jm_stats: NULL manager", c_stats, NULL, NULL, NULL, V_NULL_M, JM_EINVAL, "NULL",
     SAME_JOBS},
    {"jm_stats: NULL out", c_stats, NULL, NULL, NULL, V_NULL_OUT, JM_EINVAL, "NULL", SAME_JOBS},
    {"jm_metrics_prometheus: 16-byte buffer", c_prometheus, NULL, NULL, NULL, V_PLAIN,
     JM_ETOOBIG, "", SAME_JOBS},
    {"jm_metrics_prometheus: NULL manager", c_prometheus, NULL, NULL, NULL, V_NULL_M,
     JM_EINVAL, "NULL", SAME_JOBS},
    {"jm_status_parse: capitalised", c_status_parse, "Queued", NULL, NULL, V_PLAIN, JM_EINVAL,
     "unknown status 'Queued'", 0},
    {"jm_status_parse: injection", c_status_parse, INJECT_C, NULL, NULL, V_PLAIN, JM_EINVAL,
     "unknown status", 0},
    {"jm_status_parse: NULL", c_status_parse, NULL, NULL, NULL, V_PLAIN, JM_EINVAL, "NULL", 0},
    {"jm_status_parse: NULL out", c_status_parse, "queued", NULL, NULL, V_NULL_OUT, JM_EINVAL,
     "NULL", 0},
    {"jm_table_type_parse: lower case", c_table_type_parse, "user", NULL, NULL, V_PLAIN,
     JM_EINVAL, "", 0},
    {"jm_table_type_parse: NULL", c_table_type_parse, NULL, NULL, NULL, V_PLAIN, JM_EINVAL, "",
     0},
    {"jm_set_allocator: version 0", c_set_allocator, NULL, NULL, NULL, 0, JM_EINVAL,
     "unknown jm_allocator version 0", 0},
    {"jm_set_allocator: no functions", c_set_allocator, NULL, NULL, NULL,
     JM_ALLOCATOR_VERSION, JM_EINVAL, "needs malloc_fn and free_fn", 0},

    /* ---- jm_open: configurations, paths and foreign files ---- */
    {"jm_open: NULL config", c_open, "$db", NULL, NULL, CF_NULL, JM_EINVAL, "config is NULL",
     SAME_JOBS},
    {"jm_open: NULL out", c_open, "$db", NULL, NULL, CF_NULL_OUT, JM_EINVAL, "out is NULL",
     SAME_JOBS},
    {"jm_open: unknown version", c_open, "$db", NULL, NULL, CF_VERSION, JM_EINVAL,
     "unknown config version 7", SAME_JOBS},
    {"jm_open: NULL db_path", c_open, NULL, NULL, NULL, CF_PLAIN, JM_EINVAL,
     "set exactly one of db_path (SQLite) and db_url", SAME_JOBS},
    {"jm_open: empty db_path", c_open, "", NULL, NULL, CF_PLAIN, JM_EINVAL, "db_path",
     SAME_JOBS},
    {"jm_open: max_retries -1", c_open, "$db", NULL, NULL, CF_RETRIES, JM_EINVAL,
     "max_retries must be 0..1000", SAME_JOBS},
    {"jm_open: jitter 1.5", c_open, "$db", NULL, NULL, CF_JITTER, JM_EINVAL,
     "backoff_jitter must be within 0..1", SAME_JOBS},
    {"jm_open: jitter NaN", c_open, "$db", NULL, NULL, CF_JITTER_NAN, JM_EINVAL,
     "backoff_jitter must be within 0..1", SAME_JOBS},
    {"jm_open: lease -1", c_open, "$db", NULL, NULL, CF_LEASE, JM_EINVAL,
     "lease_ms must be", SAME_JOBS},
    {"jm_open: poll 0", c_open, "$db", NULL, NULL, CF_POLL, JM_EINVAL,
     "poll_interval_ms must be", SAME_JOBS},
    {"jm_open: recovery 9", c_open, "$db", NULL, NULL, CF_RECOVERY, JM_EINVAL,
     "unknown recovery policy 9", SAME_JOBS},
    {"jm_open: log level -3", c_open, "$db", NULL, NULL, CF_LOG, JM_EINVAL,
     "unknown log level -3", SAME_JOBS},
    {"jm_open: busy timeout -1", c_open, "$db", NULL, NULL, CF_BUSY, JM_EINVAL,
     "busy_timeout_ms must not be negative", SAME_JOBS},
    {"jm_open: durability 7", c_open, "$db", NULL, NULL, CF_DURABILITY, JM_EINVAL,
     "unknown durability 7", SAME_JOBS},
    {"jm_open: empty node_id", c_open, "$db", "", NULL, CF_NODE, JM_EINVAL,
     "node_id must be", SAME_JOBS},
    {"jm_open: invalid UTF-8 node_id", c_open, "$db", BAD_UTF8, NULL, CF_NODE, JM_EINVAL,
     "node_id must be", SAME_JOBS},
    {"jm_open: 256-byte node_id", c_open, "$db", "@LONG256", NULL, CF_NODE, JM_EINVAL,
     "node_id must be", SAME_JOBS},
    {"jm_open: injection as node_id (stored as data only)", c_open, "$db", INJECT_C, NULL,
     CF_NODE, JM_OK, NULL, 0},
    {"jm_open: a directory", c_open, "$dir", NULL, NULL, CF_PLAIN, JM_EIO, "", SAME_JOBS},
    {"jm_open: missing parent directory", c_open, "/nonexistent-dir/x/jobs.db", NULL, NULL,
     CF_PLAIN, JM_EIO, "", SAME_JOBS},
    {"jm_open: a text file", c_open, "$notdb", NULL, "$notdb", CF_PLAIN, JM_EDB, "",
     SAME_JOBS | SAME_FILE},
    {"jm_open: a SQLite database whose jm_jobs is not ours", c_open, "$otherdb", NULL, "$otherdb", CF_PLAIN,
     JM_EDB, "", SAME_JOBS | SAME_FILE},

    /* ---- the reference engine's API ---- */
    {"engine: NULL engine", c_engine, NULL, NULL, NULL, E_NULL_ENGINE, JM_EINVAL, "NULL",
     SAME_ENGINE},
    {"engine: NULL namespace", c_engine, NULL, NULL, NULL, E_NS, JM_EINVAL, "is NULL",
     SAME_ENGINE},
    {"engine: empty namespace", c_engine, "", NULL, NULL, E_NS, JM_EINVAL,
     "must be 1..128 bytes", SAME_ENGINE},
    {"engine: namespace \"..\"", c_engine, "..", NULL, NULL, E_NS, JM_EINVAL,
     "may not be \".\" or \"..\"", SAME_ENGINE},
    {"engine: namespace \".\"", c_engine, ".", NULL, NULL, E_NS, JM_EINVAL,
     "may not be \".\" or \"..\"", SAME_ENGINE},
    {"engine: namespace with slash", c_engine, "a/b", NULL, NULL, E_NS, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: namespace injection", c_engine, INJECT_C, NULL, NULL, E_NS, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: namespace invalid UTF-8", c_engine, BAD_UTF8, NULL, NULL, E_NS, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: namespace 129 bytes", c_engine, "@LONG129", NULL, NULL, E_NS, JM_EINVAL,
     "must be 1..128 bytes", SAME_ENGINE},
    {"engine: namespace exists", c_engine, "app", NULL, NULL, E_NS, JM_ECONFLICT, "",
     SAME_ENGINE},
    {"engine: table injection", c_engine, "app", INJECT_C, NULL, E_TABLE, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: table \"..\"", c_engine, "app", "..", NULL, E_TABLE, JM_EINVAL,
     "may not be \".\" or \"..\"", SAME_ENGINE},
    {"engine: table path traversal", c_engine, "app", "../../etc", NULL, E_TABLE, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: table in missing namespace", c_engine, "nope", "t", NULL, E_TABLE, JM_ENOTFOUND,
     "", SAME_ENGINE},
    {"engine: table exists", c_engine, "app", "orders", NULL, E_TABLE, JM_ECONFLICT, "",
     SAME_ENGINE},
    {"engine: table type 42", c_engine, NULL, NULL, NULL, E_TABLE_TYPE, JM_EINVAL,
     "unknown table type 42", SAME_ENGINE},
    {"engine: stream without TTL", c_engine, NULL, NULL, NULL, E_STREAM_NOTTL, JM_EINVAL,
     "needs ttl_seconds > 0", SAME_ENGINE},
    {"engine: TTL on a user table", c_engine, NULL, NULL, NULL, E_USER_TTL, JM_EINVAL,
     "Stream tables only", SAME_ENGINE},
    {"engine: table opts version 0", c_engine, NULL, NULL, NULL, E_OPTS_VERSION, JM_EINVAL,
     "unknown jm_table_opts version 0", SAME_ENGINE},
    {"engine: owner injection", c_engine, NULL, NULL, INJECT_C, E_OWNER, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: owner unknown", c_engine, NULL, NULL, "nobody", E_OWNER, JM_ENOTFOUND, "",
     SAME_ENGINE},
    {"engine: insert invalid JSON", c_engine, "app", "orders", "{", E_INSERT, JM_EJSON,
     "not valid JSON", SAME_ENGINE},
    {"engine: insert trailing bytes", c_engine, "app", "orders", "{} {}", E_INSERT, JM_EJSON,
     "", SAME_ENGINE},
    {"engine: insert 5000 levels deep", c_engine, "app", "orders", "@DEEP", E_INSERT, JM_EJSON,
     "", SAME_ENGINE},
    {"engine: insert over 1 MiB", c_engine, "app", "orders", "@DOC_HUGE", E_INSERT, JM_ETOOBIG,
     "exceeds", SAME_ENGINE},
    {"engine: insert NULL document", c_engine, "app", "orders", NULL, E_INSERT, JM_EINVAL, "",
     SAME_ENGINE},
    {"engine: insert into injection", c_engine, "app", INJECT_C, "{}", E_INSERT, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: insert into missing table", c_engine, "app", "nope", "{}", E_INSERT,
     JM_ENOTFOUND, "", SAME_ENGINE},
    {"engine: insert negative time", c_engine, NULL, NULL, NULL, E_INSERT_NEG, JM_EINVAL,
     "must not be negative", SAME_ENGINE},
    {"engine: soft delete key -1", c_engine, "app", "orders", "-1", E_SOFT_DELETE,
     JM_ENOTFOUND, "", SAME_ENGINE},
    {"engine: soft delete twice", c_engine, "app", "orders", "3", E_SOFT_DELETE, JM_ESTATE, "",
     SAME_ENGINE},
    {"engine: soft delete in injection", c_engine, INJECT_C, "orders", "1", E_SOFT_DELETE,
     JM_EINVAL, "may only hold letters", SAME_ENGINE},
    {"engine: get key 2^63-1", c_engine, "app", "orders", "9223372036854775807", E_GET,
     JM_ENOTFOUND, "", SAME_ENGINE},
    {"engine: get from injection", c_engine, "app", INJECT_C, "1", E_GET, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: count injection", c_engine, INJECT_C, "orders", NULL, E_COUNT, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: exists injection", c_engine, "app", INJECT_C, NULL, E_EXISTS, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: scan injection", c_engine, "app", INJECT_C, NULL, E_SCAN, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: drop injection", c_engine, "app", INJECT_C, NULL, E_DROP, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: drop traversal", c_engine, "..", "orders", NULL, E_DROP, JM_EINVAL,
     "may not be", SAME_ENGINE},
    {"engine: drop missing", c_engine, "app", "nope", NULL, E_DROP, JM_ENOTFOUND, "",
     SAME_ENGINE},
    {"engine: user injection", c_engine, NULL, NULL, INJECT_C, E_USER, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: user invalid UTF-8", c_engine, NULL, NULL, BAD_UTF8, E_USER, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: user exists", c_engine, NULL, NULL, "alice", E_USER, JM_ECONFLICT, "",
     SAME_ENGINE},
    {"engine: username injection", c_engine, NULL, NULL, INJECT_C, E_USERNAME, JM_EINVAL, "",
     SAME_ENGINE},
    {"engine: soft delete user injection", c_engine, NULL, NULL, INJECT_C, E_SOFT_DELETE_USER,
     JM_EINVAL, "may only hold letters", SAME_ENGINE},
    {"engine: soft delete unknown user", c_engine, NULL, NULL, "nobody", E_SOFT_DELETE_USER,
     JM_ENOTFOUND, "", SAME_ENGINE},
    {"engine: user_exists injection", c_engine, NULL, NULL, INJECT_C, E_USER_EXISTS, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: grant on a user table", c_engine, "app", "orders", "alice", E_GRANT, JM_EINVAL,
     "", SAME_ENGINE},
    {"engine: grant to injection", c_engine, "app", "shared", INJECT_C, E_GRANT, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"engine: grant to unknown user", c_engine, "app", "shared", "nobody", E_GRANT,
     JM_ENOTFOUND, "", SAME_ENGINE},
    {"engine: live query injection", c_engine, "app", "shared", INJECT_C, E_LIVE_QUERY,
     JM_EINVAL, "may only hold letters", SAME_ENGINE},
    {"engine: live query on missing table", c_engine, "app", "nope", "alice", E_LIVE_QUERY,
     JM_ENOTFOUND, "", SAME_ENGINE},
    {"engine: count_acl injection", c_engine, NULL, NULL, INJECT_C, E_COUNT_ACL, JM_EINVAL,
     "may only hold letters", SAME_ENGINE},
    {"jm_engine_open: NULL", c_engine, NULL, NULL, NULL, E_OPEN, JM_EINVAL, "NULL",
     SAME_ENGINE},
    {"jm_engine_open: empty", c_engine, "", NULL, NULL, E_OPEN, JM_EINVAL, "", SAME_ENGINE},
    {"jm_engine_open: a file", c_engine, "/etc/passwd", NULL, NULL, E_OPEN, JM_EIO, "",
     SAME_ENGINE},
};

/* ------------------------------------------------------------------------
 * Executor parameters: each executor's fields × bad values of their kind
 * ------------------------------------------------------------------------ */

typedef enum { K_NAME, K_TYPE, K_STREAM_TYPE, K_INT, K_BOOL, K_STR, K_PATH, K_TABLE_ID,
               K_OP, K_COMPRESSION } kind;

typedef struct field {
    const char *name;
    const char *good; /* raw JSON */
    kind k;
    int required;
} field;

typedef struct exdef {
    const char *type;
    field f[6];
} exdef;

#define NS_F {"namespace_id", "\"app\"", K_NAME, 1}
#define TABLE_F {"table_name", "\"orders\"", K_NAME, 1}
#define TYPE_F {"table_type", "\"User\"", K_TYPE, 1}

static const exdef executors[] = {
    {"FL", {NS_F, TABLE_F, TYPE_F, {"flush_threshold", "10", K_INT, 0}}},
    {"CL",
     {{"table_id", "\"app:orders\"", K_TABLE_ID, 1}, TYPE_F,
      {"operation", "\"drop_table\"", K_OP, 1}}},
    {"RT", {NS_F, TABLE_F, TYPE_F, {"retention_hours", "24", K_INT, 1}}},
    {"SE",
     {NS_F, {"table_name", "\"clicks\"", K_NAME, 1},
      {"table_type", "\"Stream\"", K_STREAM_TYPE, 1}, {"ttl_seconds", "60", K_INT, 1},
      {"batch_size", "100", K_INT, 0}}},
    {"UC",
     {{"user_id", "\"alice\"", K_NAME, 1}, {"username", "\"Alice\"", K_STR, 1},
      {"cascade", "true", K_BOOL, 1}}},
    {"CO", {NS_F, TABLE_F, TYPE_F, {"target_file_size_mb", "64", K_INT, 1}}},
    {"BK",
     {NS_F, TABLE_F, TYPE_F, {"backup_location", "\"/var/backups/jm\"", K_PATH, 1},
      {"compression", "\"zstd\"", K_COMPRESSION, 1}}},
    {"RS",
     {{"backup_location", "\"/var/backups/jm/x\"", K_PATH, 1},
      {"target_namespace", "\"app\"", K_NAME, 1},
      {"target_table_name", "\"restored\"", K_NAME, 1}, {"overwrite", "false", K_BOOL, 0}}},
};

typedef struct badval {
    kind k;
    const char *raw; /* "" = the field is left out */
    int code;
    const char *frag; /* after the field's quoted name; NULL: the field's name only */
} badval;

#define STR_TYPES(k)                                                                           \
    {k, "42", JM_EINVAL, "must be a string"}, {k, "true", JM_EINVAL, "must be a string"},      \
    {k, "null", JM_EINVAL, "must be a string"}, {k, "[\"app\"]", JM_EINVAL, "must be a string"}, \
    {k, "{\"a\":1}", JM_EINVAL, "must be a string"}, {k, "\"\"", JM_EINVAL, "must be 1.."},     \
    {k, "\"" BAD_UTF8 "\"", JM_EJSON, "not valid UTF-8"}

#define INT_TYPES(k)                                                                           \
    {k, "\"10\"", JM_EINVAL, "must be an integer"}, {k, "true", JM_EINVAL, "must be an integer"}, \
    {k, "null", JM_EINVAL, "must be an integer"}, {k, "[1]", JM_EINVAL, "must be an integer"},  \
    {k, "1e300", JM_EINVAL, "must be an integer"}, {k, "-1e300", JM_EINVAL, "must be an integer"}, \
    {k, "-1", JM_EINVAL, "must be an integer"},                                                \
    {k, "9223372036854775808", JM_EINVAL, "must be an integer"},                               \
    {k, "9223372036854775807", JM_EINVAL, "must be an integer"},                               \
    {k, "-9223372036854775809", JM_EINVAL, "must be an integer"},                              \
    {k, "2.5", JM_EINVAL, "must be an integer"}, {k, "1e-300", JM_EINVAL, "must be an integer"}

static const badval badvals[] = {
    STR_TYPES(K_NAME),
    {K_NAME, "\"..\"", JM_EINVAL, "must be letters"},
    {K_NAME, "\".\"", JM_EINVAL, "must be letters"},
    {K_NAME, "\"a/b\"", JM_EINVAL, "must be letters"},
    {K_NAME, "\"../../etc\"", JM_EINVAL, "must be letters"},
    {K_NAME, "\"" INJECT "\"", JM_EINVAL, "must be letters"},
    {K_NAME, "\"a b\"", JM_EINVAL, "must be letters"},
    {K_NAME, "\"caf\\u00e9\"", JM_EINVAL, "must be letters"},
    {K_NAME, "\"a\\u0000b\"", JM_EINVAL, "=parameters must not contain \\u0000"},
    {K_NAME, "\"app\\u0000\"", JM_EINVAL, "=parameters must not contain \\u0000"},
    {K_NAME, "@NAME129", JM_EINVAL, "must be 1.."},
    STR_TYPES(K_TYPE),
    {K_TYPE, "\"user\"", JM_EINVAL, "must be \"User\", \"Shared\" or \"Stream\""},
    {K_TYPE, "\"Table\"", JM_EINVAL, "must be \"User\", \"Shared\" or \"Stream\""},
    {K_TYPE, "\"" INJECT "\"", JM_EINVAL, "must be 1.."},
    {K_STREAM_TYPE, "\"User\"", JM_EINVAL, "must be \"Stream\""},
    {K_STREAM_TYPE, "\"Shared\"", JM_EINVAL, "must be \"Stream\""},
    {K_STREAM_TYPE, "\"stream\"", JM_EINVAL, "must be \"User\", \"Shared\" or \"Stream\""},
    {K_STREAM_TYPE, "7", JM_EINVAL, "must be a string"},
    INT_TYPES(K_INT),
    {K_BOOL, "\"true\"", JM_EINVAL, "must be true or false"},
    {K_BOOL, "1", JM_EINVAL, "must be true or false"},
    {K_BOOL, "null", JM_EINVAL, "must be true or false"},
    {K_BOOL, "[]", JM_EINVAL, "must be true or false"},
    STR_TYPES(K_STR),
    {K_STR, "@NAME129", JM_EINVAL, "must be 1.."},
    STR_TYPES(K_PATH),
    {K_PATH, "\"backups\"", JM_EINVAL, "must be an absolute path"},
    {K_PATH, "\"./backups\"", JM_EINVAL, "must be an absolute path"},
    {K_PATH, "\"../etc\"", JM_EINVAL, "must be an absolute path"},
    {K_PATH, "\"/var/backups/../../etc\"", JM_EINVAL, "must not contain \\\"..\\\""},
    {K_PATH, "\"/var/backups/..\"", JM_EINVAL, "must not contain"},
    {K_PATH, "\"/..\"", JM_EINVAL, "must not contain"},
    {K_PATH, "\"s3://bucket/backups\"", JM_EINVAL, "only local directories are supported: s3"},
    {K_PATH, "\"file:///var/backups\"", JM_EINVAL, "only local directories are supported: file"},
    {K_PATH, "\"http://evil/x\"", JM_EINVAL, "only local directories are supported: http"},
    {K_PATH, "\"/etc\\u0000/var/backups\"", JM_EINVAL, "=parameters must not contain \\u0000"},
    {K_PATH, "\"~/backups\"", JM_EINVAL, "must be an absolute path"},
    {K_PATH, "@PATH4097", JM_EINVAL, "must be 1.."},
    STR_TYPES(K_TABLE_ID),
    {K_TABLE_ID, "\"orders\"", JM_EINVAL, "must be \\\"namespace:table\\\""},
    {K_TABLE_ID, "\":orders\"", JM_EINVAL, "must be \\\"namespace:table\\\""},
    {K_TABLE_ID, "\"app:\"", JM_EINVAL, "must be \\\"namespace:table\\\""},
    {K_TABLE_ID, "\"app:a:b\"", JM_EINVAL, "must be \\\"namespace:table\\\""},
    {K_TABLE_ID, "\"..:orders\"", JM_EINVAL, "must be \\\"namespace:table\\\""},
    {K_TABLE_ID, "\"app:..\"", JM_EINVAL, "must be \\\"namespace:table\\\""},
    {K_TABLE_ID, "\"" INJECT ":orders\"", JM_EINVAL, "must be \\\"namespace:table\\\""},
    {K_TABLE_ID, "\"app:" INJECT "\"", JM_EINVAL, "must be \\\"namespace:table\\\""},
    {K_TABLE_ID, "\"app:orders\\u0000x\"", JM_EINVAL, "=parameters must not contain \\u0000"},
    {K_TABLE_ID, "\"app/orders\"", JM_EINVAL, "must be \\\"namespace:table\\\""},
    STR_TYPES(K_OP),
    {K_OP, "\"DROP TABLE jobs\"", JM_EINVAL, "must be \\\"drop_table\\\""},
    {K_OP, "\"truncate\"", JM_EINVAL, "must be \\\"drop_table\\\""},
    {K_OP, "\"Drop_Table\"", JM_EINVAL, "must be \\\"drop_table\\\""},
    STR_TYPES(K_COMPRESSION),
    {K_COMPRESSION, "\"gzip\"", JM_EINVAL, "must be \\\"zstd\\\" or \\\"none\\\""},
    {K_COMPRESSION, "\"ZSTD\"", JM_EINVAL, "must be \\\"zstd\\\" or \\\"none\\\""},
    {K_COMPRESSION, "\"" INJECT "\"", JM_EINVAL, "must be"},
};

/* The executor rows are built at run time: their parameters are text. */
typedef struct exrow {
    hcase c;
    char *params;
    char frag[256];
} exrow;

static size_t field_count(const exdef *x)
{
    size_t n = 0;
    while (n < 6 && x->f[n].name)
        n++;
    return n;
}

/* The executor's valid parameters with field `skip` replaced by `raw`
 * (left out if raw is ""). */
static char *params_with(const exdef *x, size_t skip, const char *raw)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    fputc('{', out);
    int first = 1;
    for (size_t i = 0; i < field_count(x); i++) {
        const char *v = i == skip ? raw : x->f[i].good;
        if (!*v)
            continue;
        fprintf(out, "%s\"%s\":%s", first ? "" : ",", x->f[i].name, S(v));
        first = 0;
    }
    fputc('}', out);
    fclose(out);
    return buf;
}

/* The JSON text of a message fragment with \" escapes turned back. */
static void unescape(const char *in, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < n; i++) {
        if (in[i] == '\\' && in[i + 1] == '"')
            continue;
        out[j++] = in[i];
    }
    out[j] = '\0';
}

static exrow *build_executor_rows(size_t *count)
{
    size_t cap = 1024, n = 0;
    exrow *rows = calloc(cap, sizeof *rows);
    assert_non_null(rows);
    for (size_t e = 0; e < sizeof executors / sizeof executors[0]; e++) {
        const exdef *x = &executors[e];
        /* The valid parameters themselves must pass (checked apart). */
        for (size_t i = 0; i < field_count(x); i++) {
            const field *fd = &x->f[i];
            if (fd->required) {
                assert_true(n < cap);
                exrow *r = &rows[n++];
                r->params = params_with(x, i, "");
                snprintf(r->frag, sizeof r->frag,
                         "invalid %s parameters: missing required parameter \"%s\"", x->type,
                         fd->name);
                r->c = (hcase){"", c_create, x->type, r->params, NULL, O_NONE, JM_EINVAL,
                               r->frag, SAME_ALL};
            }
            for (size_t b = 0; b < sizeof badvals / sizeof badvals[0]; b++) {
                const badval *bv = &badvals[b];
                if (bv->k != fd->k)
                    continue;
                assert_true(n < cap);
                exrow *r = &rows[n++];
                r->params = params_with(x, i, bv->raw);
                char frag[200];
                unescape(bv->frag, frag, sizeof frag);
                if (bv->code == JM_EJSON || frag[0] == '=')
                    snprintf(r->frag, sizeof r->frag, "%s", frag[0] == '=' ? frag + 1 : frag);
                else
                    snprintf(r->frag, sizeof r->frag, "invalid %s parameters: parameter \"%s\"%s%s",
                             x->type, fd->name,
                             strncmp(frag, "must", 4) == 0 || strncmp(frag, "only", 4) == 0
                                 ? (strncmp(frag, "only", 4) == 0 ? ": " : " ")
                                 : " ",
                             frag);
                r->c = (hcase){"", c_create, x->type, r->params, NULL, O_NONE, bv->code,
                               r->frag, SAME_ALL};
            }
        }
    }
    *count = n;
    return rows;
}

/* ------------------------------------------------------------------------
 * Running a row
 * ------------------------------------------------------------------------ */

static void printable(const char *in, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; in && in[i] && j + 5 < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch < 0x20 || ch >= 0x7f)
            j += (size_t)snprintf(out + j, n - j, "\\x%02x", ch);
        else
            out[j++] = (char)ch;
    }
    out[j] = '\0';
    if (in && strlen(in) > 80 && n > 4)
        memcpy(out + (n > 84 ? 80 : n - 4), "...", 4);
}

static void run_case(const hcase *c, const char *label)
{
    char jobs_before[JM_SHA256_HEX_SIZE], eng_before[JM_SHA256_HEX_SIZE],
        file_before[JM_SHA256_HEX_SIZE];
    const char *file = c->c && strcmp(c->c, "$notdb") == 0     ? F->notdb
                       : c->c && strcmp(c->c, "$otherdb") == 0 ? F->otherdb
                                                               : NULL;
    if (c->same & SAME_JOBS)
        fingerprint(0, jobs_before);
    if (c->same & SAME_ENGINE)
        fingerprint(1, eng_before);
    if (c->same & SAME_FILE)
        file_fingerprint(file, file_before);

    int rc = c->call(c);
    const char *err = jm_last_error();
    if (rc != c->expect) {
        note("%s: returned %s (%s), want %s", label, jm_err_name(rc), err,
             jm_err_name(c->expect));
    } else if (c->frag && !strstr(err, c->frag)) {
        note("%s: message \"%s\" lacks \"%s\"", label, err, c->frag);
    }

    char after[JM_SHA256_HEX_SIZE];
    if (c->same & SAME_JOBS) {
        fingerprint(0, after);
        if (strcmp(after, jobs_before) != 0)
            note("%s: the jobs database changed", label);
    }
    if (c->same & SAME_ENGINE) {
        fingerprint(1, after);
        if (strcmp(after, eng_before) != 0)
            note("%s: the engine changed", label);
    }
    if (c->same & SAME_FILE) {
        file_fingerprint(file, after);
        if (strcmp(after, file_before) != 0)
            note("%s: %s changed", label, file);
    }
}

static void check_intact(void)
{
    /* Whatever was thrown at it, every seeded job is still there. */
    int64_t n = -1;
    assert_int_equal(jm_count(F->m, NULL, &n), JM_OK);
    assert_int_equal(n, 6);
    assert_int_equal(tu_status(F->m, F->queued), JM_STATUS_QUEUED);
    assert_int_equal(tu_status(F->m, F->completed), JM_STATUS_COMPLETED);
    assert_int_equal(tu_status(F->m, F->failed), JM_STATUS_FAILED);
    assert_int_equal(tu_status(F->m, F->cancelled), JM_STATUS_CANCELLED);
    assert_int_equal(tu_status(F->m, F->newjob), JM_STATUS_NEW);
    int64_t rows = -1;
    assert_int_equal(jm_engine_count(F->e, "app", "orders", 1, &rows), JM_OK);
    assert_int_equal(rows, 20);
}

static size_t g_total; /* rows run by every test */

/* cmocka prints about 1 KiB of a failure message: the list goes to stdout. */
static void report_notes(void)
{
    printf("%s", N.text);
    fail_msg("%d wrong outcome(s), listed above", N.count);
}

static void api_inputs(void **state)
{
    (void)state;
    gen_init();
    memset(&N, 0, sizeof N);
    size_t n = sizeof api_cases / sizeof api_cases[0];
    for (size_t i = 0; i < n; i++) {
        char label[200];
        snprintf(label, sizeof label, "[api %zu] %s", i, api_cases[i].what);
        run_case(&api_cases[i], label);
    }
    g_total += n;
    printf("# hostile input: %zu public API rows\n", n);
    check_intact();
    if (N.count)
        report_notes();
}

static void executor_params(void **state)
{
    (void)state;
    gen_init();
    memset(&N, 0, sizeof N);
    size_t n = 0;
    exrow *rows = build_executor_rows(&n);
    /* The valid parameters of every executor are accepted (else every row
     * below would pass for the wrong reason): created and cancelled here. */
    for (size_t e = 0; e < sizeof executors / sizeof executors[0]; e++) {
        char *good = params_with(&executors[e], (size_t)-1, "");
        char id[JM_JOB_ID_SIZE];
        jm_create_opts later = JM_CREATE_OPTS_INIT;
        later.run_at_ms = T0 + 1000 * HOUR_MS;
        int rc = jm_create(F->m, executors[e].type, good, &later, id);
        if (rc != JM_OK)
            fail_msg("valid %s parameters %s refused: %s", executors[e].type, good,
                     jm_last_error());
        assert_int_equal(jm_cancel(F->m, id), JM_OK);
        free(good);
    }
    int64_t jobs_before = -1;
    assert_int_equal(jm_count(F->m, NULL, &jobs_before), JM_OK);
    for (size_t i = 0; i < n; i++) {
        char label[300], shown[100];
        printable(rows[i].params, shown, sizeof shown);
        snprintf(label, sizeof label, "[%s] %s", rows[i].c.a, shown);
        run_case(&rows[i].c, label);
    }
    int64_t jobs_after = -1;
    assert_int_equal(jm_count(F->m, NULL, &jobs_after), JM_OK);
    if (jobs_after != jobs_before)
        note("%lld jobs were created by refused parameters",
             (long long)(jobs_after - jobs_before));
    printf("# hostile input: %zu executor parameter rows (8 executors)\n", n);
    g_total += n;
    for (size_t i = 0; i < n; i++)
        free(rows[i].params);
    free(rows);
    if (N.count)
        report_notes();
}

/* ------------------------------------------------------------------------
 * Hostile places on disk: jobs that pass validation and must fail safely
 * ------------------------------------------------------------------------ */

/* Creates the job (first in line by priority), runs it to its end, and
 * checks it failed with `frag` while the engine stayed the same. */
static void expect_job_fails(const char *type, const char *params, const char *frag)
{
    char before[JM_SHA256_HEX_SIZE], after[JM_SHA256_HEX_SIZE];
    fingerprint(1, before);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.priority = 100;
    char id[JM_JOB_ID_SIZE];
    int rc = jm_create(F->m, type, params, &o, id);
    if (rc != JM_OK) {
        note("%s %s: jm_create = %s (%s)", type, params, jm_err_name(rc), jm_last_error());
        return;
    }
    int st = run_to_end(F, id);
    jm_job *j = NULL;
    assert_int_equal(jm_get(F->m, id, &j), JM_OK);
    const char *msg = jm_job_message(j) ? jm_job_message(j) : "";
    if (st != JM_STATUS_FAILED)
        note("%s %s: ended %s (\"%s\"), want failed", type, params, jm_status_name(st), msg);
    else if (!strstr(msg, frag))
        note("%s %s: message \"%s\" lacks \"%s\"", type, params, msg, frag);
    jm_job_free(j);
    fingerprint(1, after);
    if (strcmp(before, after) != 0)
        note("%s %s: the engine changed", type, params);
    g_total++;
}

static char *restore_params(const char *location, const char *table)
{
    char *p = NULL;
    if (asprintf(&p,
                 "{\"backup_location\":\"%s\",\"target_namespace\":\"app\","
                 "\"target_table_name\":\"%s\"}",
                 location, table) < 0)
        return NULL;
    return p;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    assert_non_null(in);
    FILE *out = fopen(to, "wb");
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

static char *join(const char *a, const char *b)
{
    return tu_path(a, b);
}

/* A copy of the fixture's backup in `dir`, with its manifest replaced by
 * `manifest` if not NULL. */
static void copy_backup(const char *dir, const char *manifest_text)
{
    assert_int_equal(mkdir(dir, 0700), 0);
    static const char *const files[] = {"manifest.json", "meta.json", "rows.jsonl"};
    for (size_t i = 0; i < 3; i++) {
        char *from = join(F->backup_dir, files[i]);
        char *to = join(dir, files[i]);
        copy_file(from, to);
        free(from);
        free(to);
    }
    if (manifest_text) {
        char *to = join(dir, "manifest.json");
        write_file(to, manifest_text, strlen(manifest_text));
        free(to);
    }
}

static char *read_text(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* The real manifest with `from` replaced by `to` (once). */
static char *manifest_replacing(const char *from, const char *to)
{
    char *path = join(F->backup_dir, "manifest.json");
    char *text = read_text(path);
    free(path);
    char *at = strstr(text, from);
    assert_non_null(at);
    char *out = NULL;
    assert_true(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
    free(text);
    return out;
}

static void hostile_locations(void **state)
{
    (void)state;
    gen_init();
    memset(&N, 0, sizeof N);
    char *p;
    /* A working restore first: the backup is good, so the refusals below
     * are about the places, not the data. */
    p = restore_params(F->backup_dir, "restored");
    {
        char id[JM_JOB_ID_SIZE];
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.priority = 100;
        assert_int_equal(jm_create(F->m, "RS", p, &o, id), JM_OK);
        if (run_to_end(F, id) != JM_STATUS_COMPLETED)
            fail_msg("the fixture's backup does not restore");
        assert_int_equal(jm_engine_drop_table(F->e, "app", "restored"), JM_OK);
    }
    free(p);

    /* Restore from a symbolic link to /etc: links are not followed. */
    char *link_etc = join(F->dir, "link-to-etc");
    assert_int_equal(symlink("/etc", link_etc), 0);
    p = restore_params(link_etc, "t1");
    expect_job_fails("RS", p, "links are not followed");
    free(p);

    /* Restore from a symbolic link to the real backup: refused too. */
    char *link_bk = join(F->dir, "link-to-backup");
    assert_int_equal(symlink(F->backup_dir, link_bk), 0);
    p = restore_params(link_bk, "t2");
    expect_job_fails("RS", p, "links are not followed");
    free(p);

    /* Restore from /etc itself: not a backup. */
    p = restore_params("/etc", "t3");
    expect_job_fails("RS", p, "manifest");
    free(p);

    /* Restore from a path that does not exist. */
    p = restore_params("/nonexistent-backup-dir/x", "t4");
    expect_job_fails("RS", p, "cannot open backup directory");
    free(p);

    /* A manifest that is a link to /etc/passwd. */
    char *d = join(F->dir, "bk-manifest-link");
    copy_backup(d, NULL);
    char *mf = join(d, "manifest.json");
    assert_int_equal(unlink(mf), 0);
    assert_int_equal(symlink("/etc/passwd", mf), 0);
    p = restore_params(d, "t5");
    expect_job_fails("RS", p, "manifest");
    free(p);
    free(mf);
    free(d);

    /* A data file that is a link to /etc/passwd. */
    d = join(F->dir, "bk-rows-link");
    copy_backup(d, NULL);
    char *rows = join(d, "rows.jsonl");
    assert_int_equal(unlink(rows), 0);
    assert_int_equal(symlink("/etc/passwd", rows), 0);
    p = restore_params(d, "t6");
    expect_job_fails("RS", p, "rows.jsonl");
    free(p);
    free(rows);
    free(d);

    /* A manifest naming files outside the directory. */
    static const char *const evil_names[] = {"../../../../etc/passwd", "/etc/passwd",
                                             ".hidden", "meta.json/../rows.jsonl", ""};
    for (size_t i = 0; i < sizeof evil_names / sizeof evil_names[0]; i++) {
        char name[64], *text;
        snprintf(name, sizeof name, "bk-evil-%zu", i);
        d = join(F->dir, name);
        char quoted[128];
        snprintf(quoted, sizeof quoted, "\"%s\"", evil_names[i]);
        text = manifest_replacing("\"rows.jsonl\"", quoted);
        copy_backup(d, text);
        p = restore_params(d, "t7");
        expect_job_fails("RS", p, "manifest");
        free(p);
        free(text);
        free(d);
    }

    /* A manifest whose table name is an injection, and one with a huge
     * row count or file size. */
    static const char *const evil_fields[][2] = {
        {"\"orders\"", "\"" INJECT "\""},
        {"\"app\"", "\"../..\""},
        {"\"none\"", "\"gzip\""},
        {"\"User\"", "\"Stream\""},
    };
    for (size_t i = 0; i < sizeof evil_fields / sizeof evil_fields[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "bk-field-%zu", i);
        d = join(F->dir, name);
        char *text = manifest_replacing(evil_fields[i][0], evil_fields[i][1]);
        copy_backup(d, text);
        p = restore_params(d, "t8");
        expect_job_fails("RS", p, i == 3 ? "" : "manifest");
        free(p);
        free(text);
        free(d);
    }

    /* Backups: a location whose namespace directory is a link to /etc
     * (subdirectories are opened without following links), and a location
     * that is a regular file. The location itself may be a link: the
     * operator chose it (README), so that is not refused. */
    char *loc = join(F->dir, "bk-links");
    assert_int_equal(mkdir(loc, 0700), 0);
    char *nslink = join(loc, "app");
    assert_int_equal(symlink("/etc", nslink), 0);
    char *bk = NULL;
    assert_true(asprintf(&bk,
                         "{\"namespace_id\":\"app\",\"table_name\":\"orders\","
                         "\"table_type\":\"User\",\"backup_location\":\"%s\","
                         "\"compression\":\"none\"}",
                         loc) > 0);
    struct stat st;
    expect_job_fails("BK", bk, "creating the directory for");
    if (lstat("/etc/orders", &st) == 0)
        note("a backup wrote /etc/orders through a link");
    free(bk);
    assert_true(asprintf(&bk,
                         "{\"namespace_id\":\"app\",\"table_name\":\"orders\","
                         "\"table_type\":\"User\",\"backup_location\":\"%s\","
                         "\"compression\":\"none\"}",
                         F->notdb) > 0);
    expect_job_fails("BK", bk, "backup failed");
    free(bk);
    free(nslink);
    free(loc);

    /* A user cleanup of a live user, and jobs on tables that do not exist
     * or have another type: the engine is left alone. */
    expect_job_fails("UC", "{\"user_id\":\"alice\",\"username\":\"Alice\",\"cascade\":true}",
                     "User must be soft-deleted first");
    expect_job_fails("RT",
                     "{\"namespace_id\":\"app\",\"table_name\":\"shared\",\"table_type\":"
                     "\"User\",\"retention_hours\":1}",
                     "");
    expect_job_fails("SE",
                     "{\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":"
                     "\"Stream\",\"ttl_seconds\":1}",
                     "");
    expect_job_fails("CO",
                     "{\"namespace_id\":\"nope\",\"table_name\":\"orders\",\"table_type\":"
                     "\"User\",\"target_file_size_mb\":1}",
                     "not found");

    free(link_etc);
    free(link_bk);
    int64_t rows_now = -1;
    assert_int_equal(jm_engine_count(F->e, "app", "orders", 1, &rows_now), JM_OK);
    assert_int_equal(rows_now, 20);
    printf("# hostile input: hostile places on disk and tables checked\n");
    if (N.count)
        report_notes();
}

static int print_total(void **state)
{
    (void)state;
    printf("# hostile input: %zu bad inputs in all\n", g_total);
    gen_free();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(api_inputs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(executor_params, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(hostile_locations, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, print_total);
}
