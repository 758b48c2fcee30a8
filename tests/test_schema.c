/*
 * The jobs schema (src/store/sqlite/sqlite_schema.c): what a new database gets,
 * migration of databases written by earlier versions (built here from the
 * SQL those versions shipped, not derived from the current one), refusal
 * of newer ones, the creation-time order that time filters rely on, and
 * ids that locate their rows by the seq they carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "job.h"
#include "job_id.h"
#include "store.h"
#include "test_util.h"

#define T0 INT64_C(1700000000000)
#define OPS (&jm__sqlite_store)

/* Where tests that do not look at it put a cancelled job's owner. */
static int64_t owner_sink;
#define CURRENT_VERSION 6

typedef struct fx {
    char *dir;
    char *db;
    jm__store *s;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    if (f->s)
        OPS->close(f->s);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static jm__store *open_store(const char *path)
{
    jm__store_config c = {path, NULL, 20000, 0, 1, NULL, NULL};
    jm__store *s = NULL;
    int rc = OPS->open(&c, &s);
    if (rc != JM_OK)
        fail_msg("open %s: %s: %s", path, jm_err_name(rc), jm_last_error());
    return s;
}

/* Inserts one queued FL job created (and due) at T0 + at; its id goes to
 * `id`. Returns what the store's insert returned. */
static int insert_at(jm__store *s, int64_t at, const char *key, char id[JM_JOB_ID_SIZE],
                     char holder[JM_JOB_ID_SIZE])
{
    jm__new_row r = {0};
    jm__job_id_new("FL", id);
    r.id = id;
    r.type = "FL";
    r.params = "{}";
    r.status = JM_STATUS_QUEUED;
    r.idempotency_key = key;
    r.max_retries = 3;
    r.created_at = T0 + at;
    r.run_at = T0 + at;
    size_t index = 0;
    return OPS->insert(s, &r, 1, &index, holder);
}

/* The schema as version 1 shipped it. */
static const char old_v1[] =
    "CREATE TABLE jm_schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE jm_jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " type TEXT NOT NULL CHECK (length(type) = 2),"
    " status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 6), namespace_id TEXT,"
    " params TEXT NOT NULL, idempotency_key TEXT, message TEXT, exception_trace TEXT,"
    " result TEXT, checkpoint TEXT, node_id TEXT, owner_pid INTEGER, owner_instance INTEGER,"
    " progress REAL NOT NULL DEFAULT 0, retry_count INTEGER NOT NULL DEFAULT 0,"
    " max_retries INTEGER NOT NULL, priority INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, started_at INTEGER,"
    " finished_at INTEGER, run_at INTEGER NOT NULL, lease_until INTEGER);"
    "CREATE UNIQUE INDEX jm_jobs_idempotency ON jm_jobs(idempotency_key) "
    "WHERE idempotency_key IS NOT NULL AND status IN (0, 1, 2, 3);"
    "CREATE INDEX jm_jobs_due ON jm_jobs(priority DESC, run_at, seq) WHERE status IN (1, 3);"
    "CREATE INDEX jm_jobs_scheduled ON jm_jobs(run_at) WHERE status = 0;"
    "CREATE INDEX jm_jobs_running ON jm_jobs(lease_until) WHERE status = 2;"
    "CREATE INDEX jm_jobs_finished ON jm_jobs(finished_at) WHERE status IN (4, 5, 6);"
    "CREATE INDEX jm_jobs_status ON jm_jobs(status, seq);"
    "CREATE INDEX jm_jobs_type ON jm_jobs(type, seq);"
    "CREATE INDEX jm_jobs_namespace ON jm_jobs(namespace_id, seq) "
    "WHERE namespace_id IS NOT NULL;"
    "CREATE INDEX jm_jobs_created ON jm_jobs(created_at);"
    "INSERT INTO jm_schema_version VALUES (1);";

/* What version 2 added. */
static const char old_v2[] = "CREATE INDEX jm_jobs_key ON jm_jobs(idempotency_key, seq) "
                             "WHERE idempotency_key IS NOT NULL;"
                             "UPDATE jm_schema_version SET version = 2;";

/* What version 3 changed. */
static const char old_v3[] =
    "DROP INDEX IF EXISTS jm_jobs_idempotency;"
    "CREATE UNIQUE INDEX jm_jobs_idempotency ON jm_jobs(idempotency_key) "
    "WHERE idempotency_key IS NOT NULL AND status <= 3;"
    "DROP INDEX IF EXISTS jm_jobs_finished;"
    "CREATE INDEX jm_jobs_finished ON jm_jobs(finished_at) WHERE status >= 4;"
    "DROP INDEX IF EXISTS jm_jobs_running;"
    "DROP INDEX IF EXISTS jm_jobs_created;"
    "UPDATE jm_jobs SET created_at = m.mx FROM ("
    " SELECT seq, max(created_at) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS mx"
    " FROM jm_jobs) AS m "
    "WHERE jm_jobs.seq = m.seq AND jm_jobs.created_at < m.mx;"
    "UPDATE jm_schema_version SET version = 3;";

/* An id as versions 1 to 3 made them: uuid version 7, random to the end. */
static void old_id(char id[JM_JOB_ID_SIZE], int i)
{
    snprintf(id, JM_JOB_ID_SIZE, "FL-018c%04x-1f2e-7%03x-9a4b-5c6d7e8f%04x", i, i * 7, i * 13);
}

/* Jobs as an older version could leave them: creation times out of seq
 * order (two processes' clocks), a keyed active job, a finished one. */
static void add_old_jobs(const char *db, char ids[4][JM_JOB_ID_SIZE])
{
    static const int64_t created[4] = {100, 300, 200, 250};
    for (int i = 0; i < 4; i++) {
        old_id(ids[i], i);
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT INTO jm_jobs (id, type, status, params, idempotency_key, "
                 "max_retries, created_at, updated_at, run_at, finished_at) VALUES "
                 "('%s', 'FL', %d, '{}', %s, 3, %lld, %lld, %lld, %s)",
                 ids[i], i == 3 ? 4 : 1, i == 0 ? "'k'" : "NULL",
                 (long long)(T0 + created[i]), (long long)(T0 + created[i]),
                 (long long)(T0 + created[i]), i == 3 ? "1700000000999" : "NULL");
        tu_sql_exec(db, sql);
    }
}

static int index_exists(const char *db, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '%s'", name);
    return (int)tu_sql_int(db, sql);
}

/* The list of `f`'s first page as indexes into ids[]. */
static int list_idx(jm__store *s, const jm_filter *f, char ids[][JM_JOB_ID_SIZE], int nids,
                    int *out)
{
    jm_job_list *l = NULL;
    int rc = OPS->list(s, f, &l);
    if (rc != JM_OK)
        fail_msg("list: %s", jm_last_error());
    size_t n = jm_job_list_count(l);
    for (size_t i = 0; i < n; i++) {
        out[i] = -1;
        for (int k = 0; k < nids; k++)
            if (strcmp(jm_job_id(jm_job_list_at(l, i)), ids[k]) == 0)
                out[i] = k;
    }
    jm_job_list_free(l);
    return (int)n;
}

static void assert_current_layout(const char *db)
{
    assert_int_equal(tu_sql_int(db, "SELECT max(version) FROM jm_schema_version"),
                     CURRENT_VERSION);
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM jm_schema_version"), 1);
    assert_int_equal(index_exists(db, "jm_jobs_running"), 0);
    assert_int_equal(index_exists(db, "jm_jobs_created"), 0);
    assert_int_equal(index_exists(db, "jm_jobs_key"), 1);
    /* Ids are not indexed, but for those written before version 4. */
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                    "AND tbl_name = 'jm_jobs' AND sql IS NULL"),
                     0);
    assert_int_equal(index_exists(db, "jm_jobs_legacy_id"), 1);
    /* Version 5: schedules, one job per fire time, the failure count. */
    assert_int_equal(index_exists(db, "jm_jobs_fire"), 1);
    assert_int_equal(index_exists(db, "jm_jobs_schedule_active"), 1);
    assert_int_equal(index_exists(db, "jm_schedules_due"), 1);
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                                    "AND name = 'jm_schedules_outcome'"),
                     1);
    /* No index repeats seq: every entry ends in the rowid anyway. */
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                    "AND sql LIKE '%seq)%'"),
                     0);
    /* Status sets are ranges: no IN list SQLite would build a table for. */
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                    "AND sql LIKE '%status IN (0, 1, 2, 3)%'"),
                     0);
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                    "AND name = 'jm_jobs_finished' AND sql LIKE '%status BETWEEN 4 AND 6'"),
                     1);
    /* Version 6: resources, pauses, and the rules claims obey, with the
     * built-ins' default conflicts. */
    assert_int_equal(index_exists(db, "jm_jobs_blocked"), 1);
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                    "AND name = 'jm_jobs_due' AND sql LIKE '%blocked_by IS NULL'"),
                     1);
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM jm_conflicts WHERE exclusive = 1"), 4);
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM jm_rules"), 1);
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM jm_limits"), 0);
    assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM jm_pauses"), 0);
}

static void new_database_gets_current_schema(void **state)
{
    fx *f = *state;
    f->s = open_store(f->db);
    assert_current_layout(f->db);
    assert_int_equal(index_exists(f->db, "jm_jobs_idempotency"), 1);
}

/* Opens an old database and checks what migration must give: the current
 * layout, the jobs intact, creation times made non-decreasing along seq,
 * idempotency still enforced, and exact time filters. */
static void check_migrated(fx *f, char ids[4][JM_JOB_ID_SIZE])
{
    f->s = open_store(f->db);
    assert_current_layout(f->db);
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs"), 4);
    /* 100, 300, 200, 250 became 100, 300, 300, 300. */
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs a JOIN jm_jobs b "
                                       "ON b.seq > a.seq WHERE b.created_at < a.created_at"),
                     0);
    assert_int_equal(tu_sql_int(f->db, "SELECT sum(created_at - 1700000000000) FROM jm_jobs"),
                     100 + 300 + 300 + 300);
    jm_job *j = NULL;
    assert_int_equal(OPS->get(f->s, ids[2], &j), JM_OK);
    assert_int_equal(jm_job_created_at(j), T0 + 300);
    jm_job_free(j);
    /* Old ids still reach their jobs, by every path that takes an id. */
    jm_status st;
    assert_int_equal(OPS->status(f->s, ids[3], &st), JM_OK);
    assert_int_equal(st, JM_STATUS_COMPLETED);
    jm__cancel_outcome co;
    int64_t seq = 0;
    assert_int_equal(OPS->cancel(f->s, ids[1], 0, T0 + 500, &co, &seq, &owner_sink), JM_OK);
    assert_int_equal(co, JM__CANCEL_CANCELLED);
    assert_int_equal(seq, 2);
    assert_int_equal(OPS->retry(f->s, ids[1], T0 + 600), JM_OK);
    char unknown[JM_JOB_ID_SIZE];
    old_id(unknown, 9);
    assert_int_equal(OPS->get(f->s, unknown, &j), JM_ENOTFOUND);
    /* The keyed active job still holds its key. */
    char id[JM_JOB_ID_SIZE], holder[JM_JOB_ID_SIZE] = "";
    assert_int_equal(insert_at(f->s, 400, "k", id, holder), JM_ECONFLICT);
    assert_string_equal(holder, ids[0]);
    /* Time filters on the migrated rows. */
    jm_filter flt = JM_FILTER_INIT;
    int idx[8];
    flt.created_after_ms = T0 + 100;
    assert_int_equal(list_idx(f->s, &flt, ids, 4, idx), 3);
    assert_int_equal(idx[0], 1);
    flt = (jm_filter)JM_FILTER_INIT;
    flt.created_before_ms = T0 + 300;
    assert_int_equal(list_idx(f->s, &flt, ids, 4, idx), 1);
    assert_int_equal(idx[0], 0);
    /* A new job takes the next seq, and its id carries it. */
    assert_int_equal(insert_at(f->s, 400, NULL, id, holder), JM_OK);
    assert_int_equal(jm__job_id_seq(id), 5);
    assert_int_equal(OPS->get(f->s, id, &j), JM_OK);
    assert_string_equal(jm_job_id(j), id);
    jm_job_free(j);
}

static void migrates_version_3(void **state)
{
    fx *f = *state;
    char ids[4][JM_JOB_ID_SIZE];
    tu_sql_exec(f->db, old_v1);
    tu_sql_exec(f->db, old_v2);
    add_old_jobs(f->db, ids);
    tu_sql_exec(f->db, old_v3);
    check_migrated(f, ids);
}

static void migrates_version_2(void **state)
{
    fx *f = *state;
    char ids[4][JM_JOB_ID_SIZE];
    tu_sql_exec(f->db, old_v1);
    tu_sql_exec(f->db, old_v2);
    add_old_jobs(f->db, ids);
    check_migrated(f, ids);
}

static void migrates_version_1(void **state)
{
    fx *f = *state;
    char ids[4][JM_JOB_ID_SIZE];
    tu_sql_exec(f->db, old_v1);
    add_old_jobs(f->db, ids);
    check_migrated(f, ids);
}

static void refuses_newer_schema(void **state)
{
    fx *f = *state;
    f->s = open_store(f->db);
    char ids[4][JM_JOB_ID_SIZE];
    add_old_jobs(f->db, ids);
    OPS->close(f->s);
    f->s = NULL;
    tu_sql_exec(f->db, "UPDATE jm_schema_version SET version = 99");
    jm__store_config c = {f->db, NULL, 1000, 0, 1, NULL, NULL};
    jm__store *s = (jm__store *)1;
    assert_int_equal(OPS->open(&c, &s), JM_EDB);
    assert_null(s);
    assert_non_null(strstr(jm_last_error(), "99"));
    jm_config cfg = tu_config(f->db);
    jm_manager *m = NULL;
    assert_int_equal(jm_open(&cfg, &m), JM_EDB);
    assert_null(m);
    /* Refusing changed nothing: the version and the jobs are still there. */
    assert_int_equal(tu_sql_int(f->db, "SELECT max(version) FROM jm_schema_version"), 99);
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs"), 4);
    /* Back to the current version it opens again. */
    char sql[64];
    snprintf(sql, sizeof sql, "UPDATE jm_schema_version SET version = %d", CURRENT_VERSION);
    tu_sql_exec(f->db, sql);
    f->s = open_store(f->db);
}

/* Opens f->db through jm_open, which must refuse it with JM_EDB and an
 * error naming `why`. */
static void expect_refused(fx *f, const char *why)
{
    jm_config cfg = tu_config(f->db);
    jm_manager *m = (jm_manager *)1;
    assert_int_equal(jm_open(&cfg, &m), JM_EDB);
    assert_null(m);
    if (!strstr(jm_last_error(), why))
        fail_msg("expected '%s' in: %s", why, jm_last_error());
}

/* A stored version that is not a whole number from 1 to INT_MAX is
 * refused, not cut to 32 bits or read as 0, and left as it was. */
static void refuses_invalid_schema_version(void **state)
{
    fx *f = *state;
    f->s = open_store(f->db);
    char ids[4][JM_JOB_ID_SIZE];
    add_old_jobs(f->db, ids);
    OPS->close(f->s);
    f->s = NULL;
    static const struct {
        const char *value;  /* as SQL */
        const char *shown;  /* in the error */
        const char *type;   /* typeof() it keeps */
    } bad[] = {
        {"4294967300", "found 4294967300", "integer"}, /* 2^32 + 4 */
        {"2147483648", "found 2147483648", "integer"}, /* INT_MAX + 1 */
        {"-1", "found -1", "integer"},
        {"0", "found 0", "integer"},
        {"'abc'", "found 'abc'", "text"},
        {"4.5", "found 4.5", "real"},
        {"x'04'", "found a 1-byte blob", "blob"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE jm_schema_version SET version = %s", bad[i].value);
        tu_sql_exec(f->db, sql);
        expect_refused(f, "not a valid version number");
        expect_refused(f, bad[i].shown);
        /* Untouched: the same value of the same type, the jobs intact. */
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM jm_schema_version WHERE version IS %s "
                 "AND typeof(version) = '%s'",
                 bad[i].value, bad[i].type);
        assert_int_equal(tu_sql_int(f->db, sql), 1);
        assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_schema_version"), 1);
        assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs"), 4);
    }
    char sql[64];
    snprintf(sql, sizeof sql, "UPDATE jm_schema_version SET version = %d", CURRENT_VERSION);
    tu_sql_exec(f->db, sql);
    f->s = open_store(f->db);
}

/* A version table with no row in it says nothing about the schema: it is
 * refused, not taken for a new database, and left empty. */
static void refuses_empty_version_table(void **state)
{
    fx *f = *state;
    f->s = open_store(f->db);
    char ids[4][JM_JOB_ID_SIZE];
    add_old_jobs(f->db, ids);
    OPS->close(f->s);
    f->s = NULL;
    tu_sql_exec(f->db, "DELETE FROM jm_schema_version");
    expect_refused(f, "jm_schema_version table with no version in it");
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_schema_version"), 0);
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs"), 4);
    assert_int_equal(index_exists(f->db, "jm_jobs_idempotency"), 1);
}

/* A creation time below the newest row's (a clock stepped back, another
 * process's clock) is raised to it, so time filters stay exact. */
static void insert_keeps_creation_times_in_order(void **state)
{
    fx *f = *state;
    f->s = open_store(f->db);
    static const int64_t clock[5] = {500, 400, 600, 600, 100};
    char ids[5][JM_JOB_ID_SIZE];
    for (int i = 0; i < 5; i++) {
        char holder[JM_JOB_ID_SIZE];
        assert_int_equal(insert_at(f->s, clock[i], NULL, ids[i], holder), JM_OK);
    }
    static const int64_t want[5] = {500, 500, 600, 600, 600};
    for (int i = 0; i < 5; i++) {
        jm_job *j = NULL;
        assert_int_equal(OPS->get(f->s, ids[i], &j), JM_OK);
        assert_int_equal(jm_job_created_at(j), T0 + want[i]);
        jm_job_free(j);
    }
    jm_filter flt = JM_FILTER_INIT;
    int idx[8];
    int64_t n = 0;
    /* After 500: the last three; the bound itself is excluded. */
    flt.created_after_ms = T0 + 500;
    assert_int_equal(list_idx(f->s, &flt, ids, 5, idx), 3);
    assert_int_equal(idx[0], 2);
    assert_int_equal(idx[2], 4);
    assert_int_equal(OPS->count(f->s, &flt, &n), JM_OK);
    assert_int_equal(n, 3);
    /* Newest first, with a cursor. */
    flt.newest_first = 1;
    flt.after_id = ids[4];
    assert_int_equal(list_idx(f->s, &flt, ids, 5, idx), 2);
    assert_int_equal(idx[0], 3);
    assert_int_equal(idx[1], 2);
    /* Before 600: the first two. After 600, before 500: none. */
    flt = (jm_filter)JM_FILTER_INIT;
    flt.created_before_ms = T0 + 600;
    assert_int_equal(list_idx(f->s, &flt, ids, 5, idx), 2);
    assert_int_equal(idx[1], 1);
    flt.created_after_ms = T0 + 600;
    assert_int_equal(list_idx(f->s, &flt, ids, 5, idx), 0);
    /* Bounds past every row, and the largest bound there is. */
    flt = (jm_filter)JM_FILTER_INIT;
    flt.created_before_ms = T0 + 10000;
    assert_int_equal(list_idx(f->s, &flt, ids, 5, idx), 5);
    flt.created_after_ms = INT64_MAX;
    assert_int_equal(list_idx(f->s, &flt, ids, 5, idx), 0);
    flt = (jm_filter)JM_FILTER_INIT;
    flt.created_before_ms = 1;
    assert_int_equal(OPS->count(f->s, &flt, &n), JM_OK);
    assert_int_equal(n, 0);
}

/* The seq bounds behind time filters agree with a plain scan, on a table
 * with clock steps back and holes left by deleted rows. */
static void time_filters_match_a_full_scan(void **state)
{
    fx *f = *state;
    f->s = open_store(f->db);
    unsigned seed = 12345;
    int64_t clock = 1000;
    for (int i = 0; i < 400; i++) {
        seed = seed * 1103515245u + 12345u;
        clock += (int64_t)((seed >> 16) % 7) - 2; /* sometimes back */
        char id[JM_JOB_ID_SIZE], holder[JM_JOB_ID_SIZE];
        assert_int_equal(insert_at(f->s, clock, NULL, id, holder), JM_OK);
    }
    tu_sql_exec(f->db, "DELETE FROM jm_jobs WHERE seq % 3 = 0 OR seq BETWEEN 100 AND 160 "
                       "OR seq = (SELECT max(seq) FROM jm_jobs)");
    for (int64_t x = 990; x <= clock + 3; x += 3) {
        char sql[200];
        jm_filter flt = JM_FILTER_INIT;
        int64_t n = -1;
        flt.created_after_ms = T0 + x;
        assert_int_equal(OPS->count(f->s, &flt, &n), JM_OK);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM jm_jobs WHERE created_at > %lld",
                 (long long)(T0 + x));
        assert_int_equal(n, tu_sql_int(f->db, sql));
        flt.created_after_ms = 0;
        flt.created_before_ms = T0 + x;
        assert_int_equal(OPS->count(f->s, &flt, &n), JM_OK);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM jm_jobs WHERE created_at < %lld",
                 (long long)(T0 + x));
        assert_int_equal(n, tu_sql_int(f->db, sql));
        flt.created_after_ms = T0 + x - 40;
        assert_int_equal(OPS->count(f->s, &flt, &n), JM_OK);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM jm_jobs WHERE created_at > %lld AND created_at < %lld",
                 (long long)(T0 + x - 40), (long long)(T0 + x));
        assert_int_equal(n, tu_sql_int(f->db, sql));
    }
}

/* An id whose seq is right but whose other digits are not names no job,
 * through any path; nor does one whose seq no row has. */
static void ids_locate_rows_by_their_seq(void **state)
{
    fx *f = *state;
    f->s = open_store(f->db);
    char ids[3][JM_JOB_ID_SIZE], holder[JM_JOB_ID_SIZE];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(insert_at(f->s, i, NULL, ids[i], holder), JM_OK);
        assert_int_equal(jm__job_id_seq(ids[i]), i + 1);
        char sql[160];
        /* The row stores all of the id but the seq. */
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM jm_jobs WHERE seq = %d AND id = substr('%.39s', 1, 27)",
                 i + 1, ids[i]);
        assert_int_equal(tu_sql_int(f->db, sql), 1);
    }
    char forged[JM_JOB_ID_SIZE];
    memcpy(forged, ids[1], sizeof forged);
    forged[4] = forged[4] == '0' ? '1' : '0'; /* another millisecond */
    jm_job *j = NULL;
    jm_status st;
    jm__cancel_outcome co;
    int64_t seq;
    assert_int_equal(OPS->get(f->s, forged, &j), JM_ENOTFOUND);
    assert_int_equal(OPS->status(f->s, forged, &st), JM_ENOTFOUND);
    assert_int_equal(OPS->cancel(f->s, forged, 1, T0, &co, &seq, &owner_sink), JM_ENOTFOUND);
    assert_int_equal(OPS->retry(f->s, forged, T0), JM_ENOTFOUND);
    jm_filter flt = JM_FILTER_INIT;
    flt.after_id = forged;
    jm_job_list *l = NULL;
    assert_int_equal(OPS->list(f->s, &flt, &l), JM_ENOTFOUND);
    /* The job itself was not touched. */
    assert_int_equal(OPS->status(f->s, ids[1], &st), JM_OK);
    assert_int_equal(st, JM_STATUS_QUEUED);
    /* The newest row deleted, its seq is taken again, by another id. */
    tu_sql_exec(f->db, "DELETE FROM jm_jobs WHERE seq = 3");
    char again[JM_JOB_ID_SIZE];
    assert_int_equal(insert_at(f->s, 5, NULL, again, holder), JM_OK);
    assert_int_equal(jm__job_id_seq(again), 3);
    assert_string_not_equal(again, ids[2]);
    assert_int_equal(OPS->get(f->s, ids[2], &j), JM_ENOTFOUND);
    /* A valid id with no row at its seq. */
    jm__job_id_set_seq(forged, 77);
    assert_int_equal(OPS->get(f->s, forged, &j), JM_ENOTFOUND);
}

/* Past the last seq an id can carry, a create fails cleanly: the table is
 * left as it was and the error says why. */
static void sequence_exhaustion_is_an_error(void **state)
{
    fx *f = *state;
    f->s = open_store(f->db);
    char id[JM_JOB_ID_SIZE], holder[JM_JOB_ID_SIZE];
    assert_int_equal(insert_at(f->s, 0, NULL, id, holder), JM_OK);
    char sql[64];
    snprintf(sql, sizeof sql, "UPDATE jm_jobs SET seq = %lld",
             (long long)(JM__ID_SEQ_LIMIT - 2));
    tu_sql_exec(f->db, sql);
    assert_int_equal(insert_at(f->s, 1, NULL, id, holder), JM_OK);
    assert_int_equal(jm__job_id_seq(id), JM__ID_SEQ_LIMIT - 1);
    assert_string_equal(id + JM__ID_SEQ_AT, "ffffffffffff");
    assert_int_equal(insert_at(f->s, 2, NULL, id, holder), JM_EDB);
    assert_non_null(strstr(jm_last_error(), "sequence"));
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs"), 2);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(new_database_gets_current_schema),
        T(migrates_version_1),
        T(migrates_version_2),
        T(migrates_version_3),
        T(refuses_newer_schema),
        T(refuses_invalid_schema_version),
        T(refuses_empty_version_table),
        T(insert_keeps_creation_times_in_order),
        T(time_filters_match_a_full_scan),
        T(ids_locate_rows_by_their_seq),
        T(sequence_exhaustion_is_an_error),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
