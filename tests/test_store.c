/*
 * The SQLite store (src/store/), driven directly through the
 * jm__sqlite_store operations, without a manager: reopening and refusal,
 * inserts and idempotency, claiming (order, type filter,
 * promotion, concurrency across connections), outcomes guarded by the
 * claim, checkpoints, leases, recovery, release, pruning, listing and
 * counting.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "alloc.h"
#include "job.h"
#include "job_id.h"
#include "store.h"
#include "store_pick.h"
#include "test_util.h"

#define T0 INT64_C(1700000000000)
#define OPS (tu_store_ops())

/* Where tests that do not look at it put a cancelled job's owner. */
static int64_t owner_sink;

typedef struct fx {
    char *dir;
    char *db;
    jm__store *s;
} fx;

static const jm__owner owner_a = {"node-a", 111, 1};
static const jm__owner owner_b = {"node-a", 222, 2};
static const jm__owner owner_far = {"node-b", 111, 1};

static jm__store *open_store(const char *path)
{
    jm__store_config c = tu_store_config(path, 20000);
    jm__store *s = NULL;
    int rc = OPS->open(&c, &s);
    if (rc != JM_OK)
        fail_msg("open %s: %s: %s", path, jm_err_name(rc), jm_last_error());
    assert_non_null(s);
    return s;
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    f->s = open_store(f->db);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    OPS->close(f->s);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* A queued job row due at `now`, with a fresh id written to `id`. */
static jm__new_row row_of(const char *type, char id[JM_JOB_ID_SIZE], int64_t now)
{
    jm__job_id_new(type, id);
    jm__new_row r = {0};
    r.id = id;
    r.type = type;
    r.status = JM_STATUS_QUEUED;
    r.params = "{}";
    r.max_retries = 3;
    r.created_at = now;
    r.run_at = now;
    return r;
}

static void insert_ok(jm__store *s, const jm__new_row *rows, size_t n)
{
    size_t ci = 99;
    char cid[JM_JOB_ID_SIZE] = "untouched";
    int rc = OPS->insert(s, rows, n, &ci, cid);
    if (rc != JM_OK)
        fail_msg("insert: %s: %s", jm_err_name(rc), jm_last_error());
}

/* Inserts one plain queued job of `type`; returns its seq. */
static int64_t add_job(jm__store *s, const char *type, char id[JM_JOB_ID_SIZE], int64_t now)
{
    jm__new_row r = row_of(type, id, now);
    insert_ok(s, &r, 1);
    jm_job *j = NULL;
    assert_int_equal(OPS->get(s, id, &j), JM_OK);
    int64_t seq = j->seq;
    jm_job_free(j);
    return seq;
}

static jm_job *get(jm__store *s, const char *id)
{
    jm_job *j = NULL;
    int rc = OPS->get(s, id, &j);
    if (rc != JM_OK)
        fail_msg("get %s: %s", id, jm_last_error());
    return j;
}

static int status_of(jm__store *s, const char *id)
{
    jm_job *j = get(s, id);
    int st = (int)j->status;
    jm_job_free(j);
    return st;
}

static int64_t count_all(jm__store *s)
{
    jm_filter f = JM_FILTER_INIT;
    int64_t n = -1;
    assert_int_equal(OPS->count(s, &f, &n), JM_OK);
    return n;
}

static size_t claim(jm__store *s, const jm__owner *o, const char *types, int64_t now,
                    size_t max, jm_job ***out)
{
    jm__claim_req req = {o, types, now, now + 30000, max, NULL, 0};
    jm_job **jobs = NULL;
    size_t n = 0;
    int rc = OPS->claim(s, &req, &jobs, &n);
    if (rc != JM_OK)
        fail_msg("claim: %s: %s", jm_err_name(rc), jm_last_error());
    if (out)
        *out = jobs;
    else {
        for (size_t i = 0; i < n; i++)
            jm_job_free(jobs[i]);
        jm__free(jobs);
    }
    return n;
}

static void free_claimed(jm_job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        jm_job_free(jobs[i]);
    jm__free(jobs);
}

/* Claims exactly the one job due (of any test type); returns it. */
static jm_job *claim_one(jm__store *s, const jm__owner *o, int64_t now)
{
    jm_job **jobs = NULL;
    size_t n = claim(s, o, "FL,CL", now, 1, &jobs);
    assert_int_equal(n, 1);
    jm_job *j = jobs[0];
    jm__free(jobs);
    return j;
}

static jm__finish finish_of(const jm_job *j, jm_status st, int64_t now)
{
    jm__finish f = {0};
    f.seq = j->seq;
    f.attempt = j->attempts;
    f.status = st;
    f.retry_count = j->retry_count;
    f.run_at = j->run_at;
    f.now = now;
    f.final_status = 12345;
    return f;
}

static void finish1(jm__store *s, jm__finish *f)
{
    int rc = OPS->finish(s, f, 1);
    if (rc != JM_OK)
        fail_msg("finish: %s: %s", jm_err_name(rc), jm_last_error());
}

/* ------------------------------------------------------------------------
 * Schema
 * ------------------------------------------------------------------------ */

static void reopen_keeps_data(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", id, T0);
    OPS->close(f->s);
    f->s = open_store(f->db);
    jm_job *j = get(f->s, id);
    assert_string_equal(j->id, id);
    jm_job_free(j);
    assert_int_equal(count_all(f->s), 1);
    /* Reopening did not add a second version row or touch the schema. */
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_schema_version"), 1);
}

static void open_refuses_non_database(void **state)
{
    if (tu_skip_unless_sqlite("a file that is not a database"))
        return;
    fx *f = *state;
    char *bad = tu_path(f->dir, "not-a-db");
    FILE *fp = fopen(bad, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 512; i++)
        fputs("this is a text file, not a database. ", fp);
    fclose(fp);
    jm__store_config c = {bad, NULL, 1000, 0, 1, NULL, NULL};
    jm__store *s = (jm__store *)1;
    assert_int_equal(OPS->open(&c, &s), JM_EDB);
    assert_null(s);
    /* Through the public API too. */
    jm_config cfg = tu_config(bad);
    jm_manager *m = (jm_manager *)1;
    assert_int_equal(jm_open(&cfg, &m), JM_EDB);
    assert_null(m);
    free(bad);
}

/* ------------------------------------------------------------------------
 * Insert, get, idempotency
 * ------------------------------------------------------------------------ */

static void insert_get_round_trip(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    jm__new_row r = row_of("CL", id, T0);
    r.status = JM_STATUS_NEW;
    r.namespace_id = "tenant-\xc3\xa9";
    r.params = "{ \"table\" : \"t1\",\"n\":[1, 2.5 ,null] }";
    r.idempotency_key = "key-1";
    r.max_retries = 9;
    r.priority = -4;
    r.created_at = T0 + 5;
    r.run_at = T0 + 60000;
    insert_ok(f->s, &r, 1);

    jm_job *j = get(f->s, id);
    assert_true(j->seq > 0);
    assert_string_equal(j->id, id);
    assert_string_equal(j->type, "CL");
    assert_int_equal(j->status, JM_STATUS_NEW);
    assert_string_equal(j->namespace_id, r.namespace_id);
    assert_string_equal(j->params, r.params);
    assert_string_equal(j->idempotency_key, "key-1");
    assert_int_equal(j->max_retries, 9);
    assert_int_equal(j->priority, -4);
    assert_int_equal(j->created_at, T0 + 5);
    assert_int_equal(j->updated_at, T0 + 5);
    assert_int_equal(j->run_at, T0 + 60000);
    /* Everything a run fills in starts empty. */
    assert_null(j->message);
    assert_null(j->trace);
    assert_null(j->result);
    assert_null(j->checkpoint);
    assert_null(j->node_id);
    assert_true(j->progress == 0.0);
    assert_int_equal(j->retry_count, 0);
    assert_int_equal(j->attempts, 0);
    assert_int_equal(j->cancel_requested, 0);
    assert_int_equal(j->started_at, 0);
    assert_int_equal(j->finished_at, 0);
    assert_int_equal(j->lease_until, 0);
    jm_job_free(j);

    /* Optional fields left NULL stay NULL. */
    char id2[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", id2, T0);
    j = get(f->s, id2);
    assert_null(j->namespace_id);
    assert_null(j->idempotency_key);
    assert_int_equal(j->status, JM_STATUS_QUEUED);
    jm_job_free(j);

    /* Seqs follow insertion order. */
    jm_job *a = get(f->s, id), *b = get(f->s, id2);
    assert_true(b->seq > a->seq);
    jm_job_free(a);
    jm_job_free(b);

    char unknown[JM_JOB_ID_SIZE];
    jm__job_id_new("FL", unknown);
    jm_job *none = (jm_job *)1;
    assert_int_equal(OPS->get(f->s, unknown, &none), JM_ENOTFOUND);
    jm_status st;
    assert_int_equal(OPS->status(f->s, unknown, &st), JM_ENOTFOUND);
    assert_int_equal(OPS->status(f->s, id, &st), JM_OK);
    assert_int_equal(st, JM_STATUS_NEW);
}

static void idempotency_conflict_names_holder(void **state)
{
    fx *f = *state;
    char holder[JM_JOB_ID_SIZE], id[JM_JOB_ID_SIZE];
    jm__new_row r = row_of("FL", holder, T0);
    r.idempotency_key = "K";
    insert_ok(f->s, &r, 1);

    jm__new_row r2 = row_of("FL", id, T0);
    r2.idempotency_key = "K";
    size_t ci = 99;
    char cid[JM_JOB_ID_SIZE] = "";
    assert_int_equal(OPS->insert(f->s, &r2, 1, &ci, cid), JM_ECONFLICT);
    assert_int_equal(ci, 0);
    assert_string_equal(cid, holder);
    assert_int_equal(count_all(f->s), 1);

    /* Keys are case-sensitive. */
    r2 = row_of("FL", id, T0);
    r2.idempotency_key = "k";
    insert_ok(f->s, &r2, 1);
    assert_int_equal(count_all(f->s), 2);

    /* A finished holder no longer blocks the key. */
    jm_job *j = claim_one(f->s, &owner_a, T0);
    assert_string_equal(j->id, holder);
    jm__finish fin = finish_of(j, JM_STATUS_COMPLETED, T0 + 1);
    finish1(f->s, &fin);
    jm_job_free(j);
    char again[JM_JOB_ID_SIZE];
    jm__new_row r3 = row_of("FL", again, T0 + 2);
    r3.idempotency_key = "K";
    insert_ok(f->s, &r3, 1);
    assert_int_equal(count_all(f->s), 3);
}

static void conflict_in_batch_inserts_nothing(void **state)
{
    fx *f = *state;
    char holder[JM_JOB_ID_SIZE];
    jm__new_row h = row_of("FL", holder, T0);
    h.idempotency_key = "held";
    insert_ok(f->s, &h, 1);

    /* The third row of a batch conflicts with the stored job. */
    char ids[4][JM_JOB_ID_SIZE];
    jm__new_row rows[4];
    const char *keys[4] = {"a", NULL, "held", "d"};
    for (int i = 0; i < 4; i++) {
        rows[i] = row_of("FL", ids[i], T0);
        rows[i].idempotency_key = keys[i];
    }
    size_t ci = 99;
    char cid[JM_JOB_ID_SIZE] = "";
    assert_int_equal(OPS->insert(f->s, rows, 4, &ci, cid), JM_ECONFLICT);
    assert_int_equal(ci, 2);
    assert_string_equal(cid, holder);
    assert_int_equal(count_all(f->s), 1);
    jm_job *none = NULL;
    assert_int_equal(OPS->get(f->s, ids[0], &none), JM_ENOTFOUND);
    assert_int_equal(OPS->get(f->s, ids[1], &none), JM_ENOTFOUND);

    /* Two rows of one batch share a key: the second conflicts with the
     * first, whose id is not reported as a holder ("" ). */
    keys[2] = "a";
    for (int i = 0; i < 4; i++) {
        rows[i] = row_of("FL", ids[i], T0);
        rows[i].idempotency_key = keys[i];
    }
    strcpy(cid, "untouched");
    assert_int_equal(OPS->insert(f->s, rows, 4, &ci, cid), JM_ECONFLICT);
    assert_int_equal(ci, 2);
    assert_string_equal(cid, "");
    assert_int_equal(count_all(f->s), 1);

    /* The store is usable afterwards: the transaction was rolled back. */
    keys[2] = "c";
    for (int i = 0; i < 4; i++) {
        rows[i] = row_of("FL", ids[i], T0);
        rows[i].idempotency_key = keys[i];
    }
    insert_ok(f->s, rows, 4);
    assert_int_equal(count_all(f->s), 5);
}

/* ------------------------------------------------------------------------
 * Claiming
 * ------------------------------------------------------------------------ */

static void claim_order_and_fields(void **state)
{
    fx *f = *state;
    /* priority desc, then run_at, then seq. */
    struct {
        int priority;
        int64_t run_at;
    } spec[] = {{0, T0}, {5, T0 + 3}, {0, T0 - 10}, {5, T0 + 1}, {9, T0 + 5},
                {0, T0}, {-3, T0 - 1000}, {5, T0 + 1}};
    const int expect[] = {4, 3, 7, 1, 2, 0, 5, 6};
    enum { N = 8 };
    char ids[N][JM_JOB_ID_SIZE];
    for (int i = 0; i < N; i++) {
        jm__new_row r = row_of("FL", ids[i], T0);
        r.priority = spec[i].priority;
        r.run_at = spec[i].run_at;
        insert_ok(f->s, &r, 1);
    }
    /* A job not yet due is left alone. */
    char later[JM_JOB_ID_SIZE];
    jm__new_row lr = row_of("FL", later, T0);
    lr.priority = 100;
    lr.run_at = T0 + 10;
    insert_ok(f->s, &lr, 1);

    jm_job **jobs = NULL;
    size_t n = claim(f->s, &owner_a, "FL", T0 + 5, 100, &jobs);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        if (strcmp(jobs[i]->id, ids[expect[i]]) != 0)
            fail_msg("claim position %d: got %s, want job %d", i, jobs[i]->id, expect[i]);
        assert_int_equal(jobs[i]->status, JM_STATUS_RUNNING);
        assert_int_equal(jobs[i]->attempts, 1);
        assert_string_equal(jobs[i]->node_id, "node-a");
        assert_int_equal(jobs[i]->started_at, T0 + 5);
        assert_int_equal(jobs[i]->lease_until, T0 + 5 + 30000);
    }
    free_claimed(jobs, n);
    assert_int_equal(status_of(f->s, later), JM_STATUS_QUEUED);
    assert_int_equal(claim(f->s, &owner_a, "FL", T0 + 9, 10, NULL), 0);
    assert_int_equal(claim(f->s, &owner_a, "FL", T0 + 10, 10, NULL), 1);
}

static void claim_one_at_a_time_follows_order(void **state)
{
    fx *f = *state;
    const int prio[] = {1, 3, 2, 3, 0};
    const int expect[] = {1, 3, 2, 0, 4};
    char ids[5][JM_JOB_ID_SIZE];
    for (int i = 0; i < 5; i++) {
        jm__new_row r = row_of("FL", ids[i], T0);
        r.priority = prio[i];
        insert_ok(f->s, &r, 1);
    }
    for (int i = 0; i < 5; i++) {
        jm_job *j = claim_one(f->s, &owner_a, T0);
        assert_string_equal(j->id, ids[expect[i]]);
        jm_job_free(j);
    }
    assert_int_equal(claim(f->s, &owner_a, "FL", T0, 1, NULL), 0);
}

/* The claim-ahead pass: after `max` of any type, more of the listed types
 * only, never a job twice, all in claim order. */
static void claim_ahead_takes_listed_types(void **state)
{
    fx *f = *state;
    char ids[6][JM_JOB_ID_SIZE];
    static const char *const types[6] = {"LG", "SH", "LG", "SH", "LG", "SH"};
    for (int i = 0; i < 6; i++)
        add_job(f->s, types[i], ids[i], T0 + i);
    jm__claim_req req = {&owner_a, "LG,SH", T0 + 10, T0 + 30000, 1, "SH", 2};
    jm_job **jobs = NULL;
    size_t n = 0;
    assert_int_equal(OPS->claim(f->s, &req, &jobs, &n), JM_OK);
    assert_int_equal(n, 3);
    assert_string_equal(jobs[0]->id, ids[0]);
    assert_string_equal(jobs[1]->id, ids[1]);
    assert_string_equal(jobs[2]->id, ids[3]);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(jobs[i]->status, JM_STATUS_RUNNING);
        assert_int_equal(jobs[i]->attempts, 1);
        assert_string_equal(jobs[i]->node_id, owner_a.node_id);
    }
    free_claimed(jobs, n);
    assert_int_equal(status_of(f->s, ids[2]), JM_STATUS_QUEUED);
    assert_int_equal(status_of(f->s, ids[5]), JM_STATUS_QUEUED);
    /* Ahead only (no idle worker), and more asked than there are. */
    jm__claim_req more = {&owner_a, "LG,SH", T0 + 10, T0 + 30000, 0, "SH", 5};
    assert_int_equal(OPS->claim(f->s, &more, &jobs, &n), JM_OK);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0]->id, ids[5]);
    free_claimed(jobs, n);
    assert_int_equal(status_of(f->s, ids[2]), JM_STATUS_QUEUED);
}

static void claim_filters_types(void **state)
{
    fx *f = *state;
    char fl[JM_JOB_ID_SIZE], cl[JM_JOB_ID_SIZE], rt[JM_JOB_ID_SIZE], lc[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", fl, T0);
    add_job(f->s, "CL", cl, T0);
    add_job(f->s, "RT", rt, T0);
    /* "LC" appears in no list below, though its letters do. */
    add_job(f->s, "LC", lc, T0);

    assert_int_equal(claim(f->s, &owner_a, "ZZ", T0, 10, NULL), 0);
    assert_int_equal(claim(f->s, &owner_a, "", T0, 10, NULL), 0);
    jm_job **jobs = NULL;
    size_t n = claim(f->s, &owner_a, "CL", T0, 10, &jobs);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0]->id, cl);
    free_claimed(jobs, n);
    n = claim(f->s, &owner_a, "FL,CL", T0, 10, &jobs);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0]->id, fl);
    free_claimed(jobs, n);
    assert_int_equal(status_of(f->s, rt), JM_STATUS_QUEUED);
    assert_int_equal(status_of(f->s, lc), JM_STATUS_QUEUED);
    n = claim(f->s, &owner_a, "AB,RT", T0, 10, &jobs);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0]->id, rt);
    free_claimed(jobs, n);
    assert_int_equal(status_of(f->s, lc), JM_STATUS_QUEUED);
    /* max 0 claims nothing. */
    assert_int_equal(claim(f->s, &owner_a, "LC", T0, 0, NULL), 0);
    assert_int_equal(status_of(f->s, lc), JM_STATUS_QUEUED);
}

static void claim_promotes_due_new_jobs(void **state)
{
    fx *f = *state;
    char early[JM_JOB_ID_SIZE], late[JM_JOB_ID_SIZE], other[JM_JOB_ID_SIZE];
    jm__new_row r = row_of("FL", early, T0);
    r.status = JM_STATUS_NEW;
    r.run_at = T0 + 1000;
    insert_ok(f->s, &r, 1);
    r = row_of("FL", late, T0);
    r.status = JM_STATUS_NEW;
    r.run_at = T0 + 2000;
    insert_ok(f->s, &r, 1);
    r = row_of("CL", other, T0);
    r.status = JM_STATUS_NEW;
    r.run_at = T0 + 1000;
    insert_ok(f->s, &r, 1);

    assert_int_equal(claim(f->s, &owner_a, "FL", T0 + 999, 10, NULL), 0);
    assert_int_equal(status_of(f->s, early), JM_STATUS_NEW);

    jm_job **jobs = NULL;
    size_t n = claim(f->s, &owner_a, "FL", T0 + 1000, 10, &jobs);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0]->id, early);
    free_claimed(jobs, n);
    assert_int_equal(status_of(f->s, late), JM_STATUS_NEW);
    /* Promotion does not depend on the claimed types: the CL job is due
     * and queued now, though nobody here may run it. */
    assert_int_equal(status_of(f->s, other), JM_STATUS_QUEUED);
    jm_job *j = get(f->s, other);
    assert_int_equal(j->updated_at, T0 + 1000);
    jm_job_free(j);
}

#define RACE_JOBS 500

typedef struct racer {
    const char *db;
    jm__owner owner;
    int64_t *seqs;
    size_t n;
    int rc;
} racer;

static void *race_main(void *arg)
{
    racer *r = arg;
    jm__store_config c = tu_store_config(r->db, 60000);
    jm__store *s = NULL;
    if ((r->rc = OPS->open(&c, &s)))
        return NULL;
    r->seqs = calloc(RACE_JOBS, sizeof *r->seqs);
    for (;;) {
        jm__claim_req req = {&r->owner, "FL", T0, T0 + 30000, 1, NULL, 0};
        jm_job **jobs = NULL;
        size_t n = 0;
        if ((r->rc = OPS->claim(s, &req, &jobs, &n)))
            break;
        if (n == 0) {
            jm__free(jobs);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (r->n < RACE_JOBS)
                r->seqs[r->n] = jobs[i]->seq;
            r->n++;
            jm_job_free(jobs[i]);
        }
        jm__free(jobs);
    }
    OPS->close(s);
    return NULL;
}

static void concurrent_claims_never_share_a_job(void **state)
{
    fx *f = *state;
    jm__new_row *rows = calloc(RACE_JOBS, sizeof *rows);
    char(*ids)[JM_JOB_ID_SIZE] = calloc(RACE_JOBS, JM_JOB_ID_SIZE);
    for (int i = 0; i < RACE_JOBS; i++)
        rows[i] = row_of("FL", ids[i], T0);
    insert_ok(f->s, rows, RACE_JOBS);
    int64_t min_seq = tu_sql_int(f->db, "SELECT min(seq) FROM jm_jobs");

    racer r[2] = {{f->db, owner_a, NULL, 0, 0}, {f->db, owner_b, NULL, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race_main, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++)
        if (r[i].rc)
            fail_msg("racer %d: %s: %s", i, jm_err_name(r[i].rc), jm_last_error());
    assert_int_equal(r[0].n + r[1].n, RACE_JOBS);
    int *seen = calloc(RACE_JOBS, sizeof *seen);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < r[k].n; i++) {
            int64_t idx = r[k].seqs[i] - min_seq;
            assert_true(idx >= 0 && idx < RACE_JOBS);
            seen[idx]++;
        }
    for (int i = 0; i < RACE_JOBS; i++)
        if (seen[i] != 1)
            fail_msg("job seq %lld claimed %d times", (long long)(min_seq + i), seen[i]);
    /* Each claim recorded its owner: the database agrees with the threads. */
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs WHERE owner_pid = 111"),
                     (int64_t)r[0].n);
    assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM jm_jobs WHERE attempts = 1"),
                     RACE_JOBS);
    free(seen);
    free(r[0].seqs);
    free(r[1].seqs);
    free(rows);
    free(ids);
}

/* ------------------------------------------------------------------------
 * Finishing
 * ------------------------------------------------------------------------ */

static void finish_records_outcome(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", id, T0);
    jm_job *j = claim_one(f->s, &owner_a, T0 + 10);

    /* Retrying: due later, a retry spent, not finished, lease dropped. */
    jm__finish fin = finish_of(j, JM_STATUS_RETRYING, T0 + 20);
    fin.message = "transient";
    fin.trace = "trace-1";
    fin.retry_count = 1;
    fin.run_at = T0 + 5000;
    fin.progress = 0.25;
    finish1(f->s, &fin);
    assert_int_equal(fin.final_status, JM_STATUS_RETRYING);
    jm_job_free(j);
    jm_job *g = get(f->s, id);
    assert_int_equal(g->status, JM_STATUS_RETRYING);
    assert_string_equal(g->message, "transient");
    assert_string_equal(g->trace, "trace-1");
    assert_int_equal(g->retry_count, 1);
    assert_int_equal(g->run_at, T0 + 5000);
    assert_true(g->progress == 0.25);
    assert_int_equal(g->updated_at, T0 + 20);
    assert_int_equal(g->finished_at, 0);
    assert_int_equal(g->lease_until, 0);
    jm_job_free(g);

    /* Claiming a retrying job clears its message; the trace stays. */
    assert_int_equal(claim(f->s, &owner_a, "FL", T0 + 4999, 1, NULL), 0);
    j = claim_one(f->s, &owner_a, T0 + 5000);
    assert_int_equal(j->attempts, 2);
    assert_null(j->message);
    assert_string_equal(j->trace, "trace-1");

    /* Completed with a NULL trace keeps the stored one. */
    fin = finish_of(j, JM_STATUS_COMPLETED, T0 + 6000);
    fin.message = "done";
    fin.result = "{\"rows\":3}";
    fin.progress = 1.0;
    finish1(f->s, &fin);
    assert_int_equal(fin.final_status, JM_STATUS_COMPLETED);
    jm_job_free(j);
    g = get(f->s, id);
    assert_int_equal(g->status, JM_STATUS_COMPLETED);
    assert_string_equal(g->message, "done");
    assert_string_equal(g->trace, "trace-1");
    assert_string_equal(g->result, "{\"rows\":3}");
    assert_int_equal(g->finished_at, T0 + 6000);
    assert_int_equal(g->retry_count, 1);
    jm_job_free(g);
}

static void finish_keep_message_and_continue(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", id, T0);
    jm_job *j = claim_one(f->s, &owner_a, T0);
    jm__finish fin = finish_of(j, JM_STATUS_QUEUED, T0 + 1);
    fin.message = "batch 1 of 3";
    fin.run_at = T0 + 100;
    finish1(f->s, &fin);
    jm_job_free(j);
    j = claim_one(f->s, &owner_a, T0 + 100);
    /* A queued (continued) job keeps its message when claimed. */
    assert_string_equal(j->message, "batch 1 of 3");
    fin = finish_of(j, JM_STATUS_QUEUED, T0 + 101);
    fin.keep_message = 1;
    fin.message = "ignored";
    finish1(f->s, &fin);
    jm_job_free(j);
    jm_job *g = get(f->s, id);
    assert_int_equal(g->status, JM_STATUS_QUEUED);
    assert_string_equal(g->message, "batch 1 of 3");
    assert_int_equal(g->retry_count, 0);
    jm_job_free(g);
}

static void finish_with_stale_attempt_changes_nothing(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", id, T0);
    jm_job *j = claim_one(f->s, &owner_a, T0);

    jm__finish fin = finish_of(j, JM_STATUS_COMPLETED, T0 + 5);
    fin.attempt = j->attempts + 1;
    fin.message = "stale";
    finish1(f->s, &fin);
    assert_int_equal(fin.final_status, -1);
    jm_job *g = get(f->s, id);
    assert_int_equal(g->status, JM_STATUS_RUNNING);
    assert_null(g->message);
    assert_int_equal(g->updated_at, T0);
    jm_job_free(g);

    /* A finish batch applies the good item and reports the stale one. */
    char id2[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", id2, T0);
    jm_job *j2 = claim_one(f->s, &owner_a, T0);
    jm__finish two[2] = {finish_of(j, JM_STATUS_FAILED, T0 + 7),
                         finish_of(j2, JM_STATUS_COMPLETED, T0 + 7)};
    two[0].attempt = 0;
    assert_int_equal(OPS->finish(f->s, two, 2), JM_OK);
    assert_int_equal(two[0].final_status, -1);
    assert_int_equal(two[1].final_status, JM_STATUS_COMPLETED);
    assert_int_equal(status_of(f->s, id), JM_STATUS_RUNNING);

    /* Recorded once, a second finish of the same claim is stale too. */
    fin = finish_of(j, JM_STATUS_COMPLETED, T0 + 8);
    finish1(f->s, &fin);
    assert_int_equal(fin.final_status, JM_STATUS_COMPLETED);
    fin = finish_of(j, JM_STATUS_FAILED, T0 + 9);
    fin.message = "late";
    finish1(f->s, &fin);
    assert_int_equal(fin.final_status, -1);
    g = get(f->s, id);
    assert_int_equal(g->status, JM_STATUS_COMPLETED);
    assert_int_equal(g->finished_at, T0 + 8);
    jm_job_free(g);
    jm_job_free(j);
    jm_job_free(j2);
}

static void finish_cancel_request_overrides(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", id, T0);
    jm_job *j = claim_one(f->s, &owner_a, T0);
    jm__cancel_outcome out;
    int64_t seq = 0;
    assert_int_equal(OPS->cancel(f->s, id, 1, T0 + 1, &out, &seq, &owner_sink), JM_OK);
    assert_int_equal(out, JM__CANCEL_REQUESTED);
    assert_int_equal(seq, j->seq);
    assert_int_equal(owner_sink, owner_a.instance); /* whose journal to tell */
    assert_int_equal(status_of(f->s, id), JM_STATUS_RUNNING);

    jm__finish fin = finish_of(j, JM_STATUS_RETRYING, T0 + 2);
    fin.cancel_overrides = 1;
    fin.message = "would retry";
    fin.retry_count = 1;
    fin.run_at = T0 + 1000;
    finish1(f->s, &fin);
    assert_int_equal(fin.final_status, JM_STATUS_CANCELLED);
    jm_job *g = get(f->s, id);
    assert_int_equal(g->status, JM_STATUS_CANCELLED);
    assert_string_equal(g->message, "Cancelled");
    assert_int_equal(g->retry_count, 0);
    assert_int_equal(g->finished_at, T0 + 2);
    assert_int_equal(g->cancel_requested, 1);
    jm_job_free(g);
    jm_job_free(j);

    /* Without cancel_overrides (a completed decision) the outcome stands. */
    char id2[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", id2, T0);
    j = claim_one(f->s, &owner_a, T0);
    assert_int_equal(OPS->cancel(f->s, id2, 1, T0 + 1, &out, &seq, &owner_sink), JM_OK);
    fin = finish_of(j, JM_STATUS_COMPLETED, T0 + 2);
    fin.message = "finished anyway";
    finish1(f->s, &fin);
    assert_int_equal(fin.final_status, JM_STATUS_COMPLETED);
    assert_int_equal(status_of(f->s, id2), JM_STATUS_COMPLETED);
    jm_job_free(j);
}

static void cancel_by_status(void **state)
{
    fx *f = *state;
    char q[JM_JOB_ID_SIZE], n[JM_JOB_ID_SIZE], r[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", q, T0);
    jm__new_row nr = row_of("CL", n, T0);
    nr.status = JM_STATUS_NEW;
    nr.run_at = T0 + 99999;
    insert_ok(f->s, &nr, 1);
    add_job(f->s, "CL", r, T0);
    jm_job **jobs = NULL;
    size_t k = claim(f->s, &owner_a, "CL", T0, 1, &jobs);
    assert_int_equal(k, 1);
    assert_string_equal(jobs[0]->id, r);
    free_claimed(jobs, k);

    jm__cancel_outcome out;
    int64_t seq;
    assert_int_equal(OPS->cancel(f->s, q, 0, T0 + 3, &out, &seq, &owner_sink), JM_OK);
    assert_int_equal(out, JM__CANCEL_CANCELLED);
    jm_job *g = get(f->s, q);
    assert_int_equal(g->status, JM_STATUS_CANCELLED);
    assert_int_equal(g->finished_at, T0 + 3);
    assert_string_equal(g->message, "Cancelled");
    jm_job_free(g);
    assert_int_equal(OPS->cancel(f->s, n, 0, T0 + 3, &out, &seq, &owner_sink), JM_OK);
    assert_int_equal(status_of(f->s, n), JM_STATUS_CANCELLED);
    /* Running, not cancellable: refused and unchanged. */
    assert_int_equal(OPS->cancel(f->s, r, 0, T0 + 3, &out, &seq, &owner_sink), JM_ENOTCANCELLABLE);
    g = get(f->s, r);
    assert_int_equal(g->cancel_requested, 0);
    jm_job_free(g);
    /* Finished: JM_ESTATE. */
    assert_int_equal(OPS->cancel(f->s, q, 1, T0 + 4, &out, &seq, &owner_sink), JM_ESTATE);
    char unknown[JM_JOB_ID_SIZE];
    jm__job_id_new("FL", unknown);
    assert_int_equal(OPS->cancel(f->s, unknown, 1, T0, &out, &seq, &owner_sink), JM_ENOTFOUND);
    /* Retry by hand: cancelled -> queued, running -> refused. */
    assert_int_equal(OPS->retry(f->s, q, T0 + 9), JM_OK);
    g = get(f->s, q);
    assert_int_equal(g->status, JM_STATUS_QUEUED);
    assert_int_equal(g->cancel_requested, 0);
    assert_null(g->message);
    assert_int_equal(g->finished_at, 0);
    assert_int_equal(g->run_at, T0 + 9);
    jm_job_free(g);
    assert_int_equal(OPS->retry(f->s, r, T0 + 9), JM_ESTATE);
    assert_int_equal(OPS->retry(f->s, unknown, T0 + 9), JM_ENOTFOUND);
}

/* A requeue that breaks the idempotency index is a conflict; one that
 * breaks any other constraint (added here by hand) is a database error in
 * SQLite's own words, and the job stays as it was. */
static void retry_constraint_failures(void **state)
{
    if (tu_skip_unless_sqlite("adds constraints in SQLite's dialect"))
        return;
    fx *f = *state;
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE], c[JM_JOB_ID_SIZE];
    jm__new_row r = row_of("FL", a, T0);
    r.idempotency_key = "K";
    insert_ok(f->s, &r, 1);
    jm__cancel_outcome out;
    int64_t seq;
    assert_int_equal(OPS->cancel(f->s, a, 0, T0 + 1, &out, &seq, &owner_sink), JM_OK);
    r = row_of("FL", b, T0 + 2);
    r.idempotency_key = "K";
    insert_ok(f->s, &r, 1);
    assert_int_equal(OPS->retry(f->s, a, T0 + 3), JM_ECONFLICT);
    assert_non_null(strstr(jm_last_error(), "idempotency key"));

    /* The key free again, a trigger refuses the requeue. */
    assert_int_equal(OPS->cancel(f->s, b, 0, T0 + 4, &out, &seq, &owner_sink), JM_OK);
    tu_sql_exec(f->db, "CREATE TRIGGER no_requeue BEFORE UPDATE OF status ON jm_jobs "
                       "WHEN NEW.status = 1 BEGIN SELECT RAISE(ABORT, 'requeueing is off'); END");
    assert_int_equal(OPS->retry(f->s, a, T0 + 5), JM_EDB);
    assert_non_null(strstr(jm_last_error(), "requeueing is off"));
    assert_int_equal(status_of(f->s, a), JM_STATUS_CANCELLED);
    tu_sql_exec(f->db, "DROP TRIGGER no_requeue");

    /* A unique index on another column. */
    tu_sql_exec(f->db, "CREATE UNIQUE INDEX one_queued_per_type ON jm_jobs(type) "
                       "WHERE status = 1");
    add_job(f->s, "FL", c, T0 + 6);
    assert_int_equal(OPS->retry(f->s, a, T0 + 7), JM_EDB);
    assert_non_null(strstr(jm_last_error(), "UNIQUE constraint failed: jm_jobs.type"));
    assert_int_equal(status_of(f->s, a), JM_STATUS_CANCELLED);
    tu_sql_exec(f->db, "DROP INDEX one_queued_per_type");
    assert_int_equal(OPS->retry(f->s, a, T0 + 8), JM_OK);
}

/* ------------------------------------------------------------------------
 * Checkpoints, progress, leases
 * ------------------------------------------------------------------------ */

static void checkpoint_and_progress_guarded(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", id, T0);
    jm_job *j = claim_one(f->s, &owner_a, T0);

    assert_int_equal(OPS->checkpoint(f->s, j->seq, j->attempts, "{\"at\":7}", T0 + 1), JM_OK);
    assert_int_equal(OPS->progress(f->s, j->seq, j->attempts, 0.5, T0 + 2), JM_OK);
    jm_job *g = get(f->s, id);
    assert_string_equal(g->checkpoint, "{\"at\":7}");
    assert_true(g->progress == 0.5);
    assert_int_equal(g->updated_at, T0 + 2);
    jm_job_free(g);

    /* Another attempt's writes are refused. */
    assert_int_equal(OPS->checkpoint(f->s, j->seq, j->attempts + 1, "{\"at\":8}", T0 + 3),
                     JM_ESTATE);
    assert_int_equal(OPS->progress(f->s, j->seq, j->attempts + 1, 0.9, T0 + 3), JM_ESTATE);
    assert_int_equal(OPS->checkpoint(f->s, j->seq + 1000, j->attempts, "{}", T0 + 3),
                     JM_ESTATE);
    g = get(f->s, id);
    assert_string_equal(g->checkpoint, "{\"at\":7}");
    assert_true(g->progress == 0.5);
    jm_job_free(g);

    /* Once the job is no longer running, the same claim is stale. */
    jm__finish fin = finish_of(j, JM_STATUS_RETRYING, T0 + 4);
    fin.progress = 0.5;
    finish1(f->s, &fin);
    assert_int_equal(OPS->checkpoint(f->s, j->seq, j->attempts, "{\"at\":9}", T0 + 5),
                     JM_ESTATE);
    assert_int_equal(OPS->progress(f->s, j->seq, j->attempts, 0.7, T0 + 5), JM_ESTATE);
    g = get(f->s, id);
    /* The checkpoint survives the retry, for the next run to read. */
    assert_string_equal(g->checkpoint, "{\"at\":7}");
    jm_job_free(g);
    jm_job_free(j);
    j = claim_one(f->s, &owner_a, T0 + 6);
    assert_string_equal(j->checkpoint, "{\"at\":7}");
    assert_int_equal(OPS->checkpoint(f->s, j->seq, j->attempts, "{\"at\":9}", T0 + 7), JM_OK);
    jm_job_free(j);
}

static int find_lease(const jm__lease_info *v, size_t n, int64_t seq)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].seq == seq)
            return (int)i;
    return -1;
}

static void renew_reports_owned_jobs(void **state)
{
    fx *f = *state;
    char a1[JM_JOB_ID_SIZE], a2[JM_JOB_ID_SIZE], b1[JM_JOB_ID_SIZE], q[JM_JOB_ID_SIZE];
    int64_t sa1 = add_job(f->s, "FL", a1, T0);
    int64_t sa2 = add_job(f->s, "FL", a2, T0);
    assert_int_equal(claim(f->s, &owner_a, "FL", T0, 2, NULL), 2);
    int64_t sb1 = add_job(f->s, "FL", b1, T0);
    assert_int_equal(claim(f->s, &owner_b, "FL", T0, 2, NULL), 1);
    add_job(f->s, "FL", q, T0);
    jm__cancel_outcome out;
    int64_t seq;
    assert_int_equal(OPS->cancel(f->s, a2, 1, T0 + 1, &out, &seq, &owner_sink), JM_OK);

    jm__lease_info *v = NULL;
    size_t n = 0;
    assert_int_equal(OPS->renew(f->s, &owner_a, T0 + 10, T0 + 77777, &v, &n), JM_OK);
    assert_int_equal(n, 2);
    int i1 = find_lease(v, n, sa1), i2 = find_lease(v, n, sa2);
    assert_true(i1 >= 0 && i2 >= 0);
    assert_int_equal(v[i1].cancel_requested, 0);
    assert_int_equal(v[i2].cancel_requested, 1);
    assert_int_equal(find_lease(v, n, sb1), -1);
    jm__free(v);
    jm_job *g = get(f->s, a1);
    assert_int_equal(g->lease_until, T0 + 77777);
    jm_job_free(g);
    g = get(f->s, b1);
    assert_int_equal(g->lease_until, T0 + 30000);
    jm_job_free(g);

    assert_int_equal(OPS->renew(f->s, &owner_b, T0 + 10, T0 + 5, &v, &n), JM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].seq, sb1);
    jm__free(v);

    /* Same pid and instance on another node: owns nothing here. */
    assert_int_equal(OPS->renew(f->s, &owner_far, T0 + 10, T0 + 5, &v, &n), JM_OK);
    assert_int_equal(n, 0);
    jm__free(v);
    g = get(f->s, a1);
    assert_int_equal(g->lease_until, T0 + 77777);
    jm_job_free(g);
}

/* ------------------------------------------------------------------------
 * Recovery and release
 * ------------------------------------------------------------------------ */

static void recover_by_owner(void **state)
{
    fx *f = *state;
    char a1[JM_JOB_ID_SIZE], a2[JM_JOB_ID_SIZE], a3[JM_JOB_ID_SIZE], b1[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", a1, T0);
    add_job(f->s, "FL", a2, T0);
    jm__new_row r = row_of("FL", a3, T0);
    r.max_retries = 0; /* its budget is spent already */
    insert_ok(f->s, &r, 1);
    assert_int_equal(claim(f->s, &owner_a, "FL", T0, 3, NULL), 3);
    add_job(f->s, "FL", b1, T0);
    assert_int_equal(claim(f->s, &owner_b, "FL", T0, 3, NULL), 1);
    jm__cancel_outcome out;
    int64_t seq;
    assert_int_equal(OPS->cancel(f->s, a2, 1, T0 + 1, &out, &seq, &owner_sink), JM_OK);

    jm__owner_ref *owners = NULL;
    size_t n = 0;
    assert_int_equal(OPS->running_owners(f->s, "node-a", &owners, &n), JM_OK);
    assert_int_equal(n, 2);
    int has_a = 0, has_b = 0;
    for (size_t i = 0; i < n; i++) {
        has_a |= owners[i].pid == 111 && owners[i].instance == 1 && owners[i].same_node;
        has_b |= owners[i].pid == 222 && owners[i].instance == 2 && owners[i].same_node;
    }
    assert_true(has_a && has_b);
    jm__free(owners);
    /* Seen from another node: the same owners, not on its node. */
    assert_int_equal(OPS->running_owners(f->s, "node-b", &owners, &n), JM_OK);
    assert_int_equal(n, 2);
    assert_false(owners[0].same_node || owners[1].same_node);
    jm__free(owners);

    /* Another node's recovery does not touch these jobs. */
    jm__owner_ref ref_a = {111, 1, 1};
    int k = -1;
    assert_int_equal(OPS->recover_owner(f->s, "node-b", &ref_a, T0 + 50, JM_RECOVER_RETRY,
                                        "Server restarted", NULL, 0, 0, &k),
                     JM_OK);
    assert_int_equal(k, 0);

    assert_int_equal(OPS->recover_owner(f->s, "node-a", &ref_a, T0 + 50, JM_RECOVER_RETRY,
                                        "Server restarted", NULL, 0, 0, &k),
                     JM_OK);
    assert_int_equal(k, 3);
    jm_job *g = get(f->s, a1);
    assert_int_equal(g->status, JM_STATUS_RETRYING);
    assert_string_equal(g->message, "Recovered after worker was lost");
    assert_int_equal(g->retry_count, 1);
    assert_int_equal(g->run_at, T0 + 50);
    assert_int_equal(g->finished_at, 0);
    assert_int_equal(g->lease_until, 0);
    jm_job_free(g);
    g = get(f->s, a2);
    assert_int_equal(g->status, JM_STATUS_CANCELLED);
    assert_string_equal(g->message, "Cancelled");
    assert_int_equal(g->retry_count, 0);
    assert_int_equal(g->finished_at, T0 + 50);
    jm_job_free(g);
    g = get(f->s, a3);
    assert_int_equal(g->status, JM_STATUS_FAILED);
    assert_string_equal(g->message, "Max retries exceeded");
    assert_non_null(g->trace);
    assert_int_equal(g->finished_at, T0 + 50);
    jm_job_free(g);
    g = get(f->s, b1);
    assert_int_equal(g->status, JM_STATUS_RUNNING);
    jm_job_free(g);

    /* Done once: a second recovery of the same owner finds nothing. */
    assert_int_equal(OPS->recover_owner(f->s, "node-a", &ref_a, T0 + 60, JM_RECOVER_RETRY,
                                        "Server restarted", NULL, 0, 0, &k),
                     JM_OK);
    assert_int_equal(k, 0);

    /* Under the fail policy. */
    jm__owner_ref ref_b = {222, 2, 1};
    assert_int_equal(OPS->recover_owner(f->s, "node-a", &ref_b, T0 + 70, JM_RECOVER_FAIL,
                                        "Server restarted", NULL, 0, 0, &k),
                     JM_OK);
    assert_int_equal(k, 1);
    g = get(f->s, b1);
    assert_int_equal(g->status, JM_STATUS_FAILED);
    assert_string_equal(g->message, "Server restarted");
    assert_int_equal(g->retry_count, 0);
    assert_int_equal(g->finished_at, T0 + 70);
    jm_job_free(g);
}

static void recover_expired_leases(void **state)
{
    fx *f = *state;
    char ids[4][JM_JOB_ID_SIZE];
    for (int i = 0; i < 4; i++)
        add_job(f->s, "FL", ids[i], T0);
    /* Leases end at T0 + 30000 for the first two, T0 + 60000 for the rest. */
    assert_int_equal(claim(f->s, &owner_a, "FL", T0, 2, NULL), 2);
    assert_int_equal(claim(f->s, &owner_b, "FL", T0 + 30000, 2, NULL), 2);
    jm__cancel_outcome out;
    int64_t seq;
    assert_int_equal(OPS->cancel(f->s, ids[1], 1, T0 + 1, &out, &seq, &owner_sink), JM_OK);

    int k = -1;
    /* The owners' own node never takes them by their lease: it knows
     * whether they live. */
    assert_int_equal(OPS->recover_expired(f->s, "node-a", T0 + 90000, JM_RECOVER_RETRY,
                                          "Server restarted", &k),
                     JM_OK);
    assert_int_equal(k, 0);
    /* Another node: a lease is lost only once it is past (lease_until < now). */
    assert_int_equal(OPS->recover_expired(f->s, "node-y", T0 + 30000, JM_RECOVER_RETRY,
                                          "Server restarted", &k),
                     JM_OK);
    assert_int_equal(k, 0);
    assert_int_equal(OPS->recover_expired(f->s, "node-y", T0 + 30001, JM_RECOVER_RETRY,
                                          "Server restarted", &k),
                     JM_OK);
    assert_int_equal(k, 2);
    jm_job *g = get(f->s, ids[0]);
    assert_int_equal(g->status, JM_STATUS_RETRYING);
    assert_string_equal(g->message, "Recovered after worker was lost");
    assert_int_equal(g->retry_count, 1);
    jm_job_free(g);
    g = get(f->s, ids[1]);
    assert_int_equal(g->status, JM_STATUS_CANCELLED);
    jm_job_free(g);
    assert_int_equal(status_of(f->s, ids[2]), JM_STATUS_RUNNING);
    assert_int_equal(status_of(f->s, ids[3]), JM_STATUS_RUNNING);

    /* Expired leases are found whatever node held them, under FAIL. */
    assert_int_equal(OPS->recover_expired(f->s, "node-z", T0 + 60001, JM_RECOVER_FAIL,
                                          "Server restarted", &k),
                     JM_OK);
    assert_int_equal(k, 2);
    g = get(f->s, ids[2]);
    assert_int_equal(g->status, JM_STATUS_FAILED);
    assert_string_equal(g->message, "Server restarted");
    assert_int_equal(g->finished_at, T0 + 60001);
    jm_job_free(g);

    /* A recovered job's old claim cannot finish it any more. */
    jm_job **jobs = NULL;
    size_t n = claim(f->s, &owner_a, "FL", T0 + 60001, 1, &jobs);
    assert_int_equal(n, 1); /* ids[0], retrying and due */
    assert_string_equal(jobs[0]->id, ids[0]);
    jm__finish stale = finish_of(jobs[0], JM_STATUS_COMPLETED, T0 + 60002);
    stale.attempt = 1;
    finish1(f->s, &stale);
    assert_int_equal(stale.final_status, -1);
    assert_int_equal(status_of(f->s, ids[0]), JM_STATUS_RUNNING);
    free_claimed(jobs, n);
}

/* A running row without a lease (only outside damage makes one) is lost
 * as soon as anyone looks, unless its owner on the recovering node lives. */
static void recover_running_without_lease(void **state)
{
    fx *f = *state;
    char ids[2][JM_JOB_ID_SIZE];
    add_job(f->s, "FL", ids[0], T0);
    add_job(f->s, "FL", ids[1], T0);
    assert_int_equal(claim(f->s, &owner_a, "FL", T0, 2, NULL), 2);
    tu_sql_exec(f->db, "UPDATE jm_jobs SET lease_until = NULL");
    tu_sql_exec(f->db, "UPDATE jm_jobs SET owner_pid = NULL, owner_instance = NULL "
                       "WHERE seq = (SELECT min(seq) FROM jm_jobs)");
    int k = -1;
    assert_int_equal(OPS->recover_expired(f->s, "node-a", T0 + 1, JM_RECOVER_RETRY,
                                          "Server restarted", &k),
                     JM_OK);
    assert_int_equal(k, 1); /* the ownerless one; the other's owner is judged alive */
    assert_int_equal(status_of(f->s, ids[0]), JM_STATUS_RETRYING);
    assert_int_equal(status_of(f->s, ids[1]), JM_STATUS_RUNNING);
    assert_int_equal(OPS->recover_expired(f->s, "node-z", T0 + 1, JM_RECOVER_RETRY,
                                          "Server restarted", &k),
                     JM_OK);
    assert_int_equal(k, 1); /* from another node, no lease is an expired lease */
    assert_int_equal(status_of(f->s, ids[1]), JM_STATUS_RETRYING);
}

static void release_puts_back_without_retry(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", id, T0);
    jm_job *j = claim_one(f->s, &owner_a, T0);
    /* A stale release changes nothing. */
    assert_int_equal(OPS->release(f->s, j->seq, j->attempts + 1, T0 + 5), JM_OK);
    assert_int_equal(status_of(f->s, id), JM_STATUS_RUNNING);
    assert_int_equal(OPS->release(f->s, j->seq, j->attempts, T0 + 5), JM_OK);
    jm_job *g = get(f->s, id);
    assert_int_equal(g->status, JM_STATUS_RETRYING);
    assert_int_equal(g->retry_count, 0);
    assert_int_equal(g->run_at, T0 + 5);
    assert_int_equal(g->lease_until, 0);
    assert_int_equal(g->finished_at, 0);
    jm_job_free(g);
    /* Nobody owns it any more: renewals skip it. */
    jm__lease_info *v = NULL;
    size_t n = 9;
    assert_int_equal(OPS->renew(f->s, &owner_a, T0 + 6, T0 + 9999, &v, &n), JM_OK);
    assert_int_equal(n, 0);
    jm__free(v);
    jm_job_free(j);
    j = claim_one(f->s, &owner_a, T0 + 5);
    assert_int_equal(j->attempts, 2);
    jm_job_free(j);
}

/* ------------------------------------------------------------------------
 * Prune
 * ------------------------------------------------------------------------ */

static void prune_finished_before_cutoff_in_batches(void **state)
{
    fx *f = *state;
    enum { OLD = 7 };
    char ids[OLD + 3][JM_JOB_ID_SIZE];
    /* OLD jobs finished at T0 + 100 (completed, failed, cancelled mixed). */
    for (int i = 0; i < OLD; i++)
        add_job(f->s, "FL", ids[i], T0);
    jm_job **jobs = NULL;
    size_t n = claim(f->s, &owner_a, "FL", T0, OLD, &jobs);
    assert_int_equal(n, OLD);
    for (size_t i = 0; i < n; i++) {
        jm_status st = i % 3 == 0 ? JM_STATUS_COMPLETED
                                  : i % 3 == 1 ? JM_STATUS_FAILED : JM_STATUS_CANCELLED;
        jm__finish fin = finish_of(jobs[i], st, T0 + 100);
        finish1(f->s, &fin);
    }
    free_claimed(jobs, n);
    /* One finished at the cut-off exactly, one running, one queued. */
    char at_cut[JM_JOB_ID_SIZE], running[JM_JOB_ID_SIZE], queued[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", at_cut, T0);
    jm_job *j = claim_one(f->s, &owner_a, T0);
    jm__finish fin = finish_of(j, JM_STATUS_COMPLETED, T0 + 200);
    finish1(f->s, &fin);
    jm_job_free(j);
    add_job(f->s, "FL", running, T0);
    jm_job_free(claim_one(f->s, &owner_a, T0));
    add_job(f->s, "FL", queued, T0);

    int64_t total = 0, d = 0;
    int batches = 0;
    do {
        assert_int_equal(OPS->prune(f->s, T0 + 200, 3, &d), JM_OK);
        assert_true(d <= 3);
        total += d;
        batches++;
    } while (d == 3);
    assert_int_equal(total, OLD);
    assert_int_equal(batches, 3); /* 3 + 3 + 1 */
    assert_int_equal(count_all(f->s), 3);
    assert_int_equal(status_of(f->s, at_cut), JM_STATUS_COMPLETED);
    assert_int_equal(status_of(f->s, running), JM_STATUS_RUNNING);
    assert_int_equal(status_of(f->s, queued), JM_STATUS_QUEUED);
    assert_int_equal(OPS->prune(f->s, T0 + 201, 100, &d), JM_OK);
    assert_int_equal(d, 1);
    assert_int_equal(count_all(f->s), 2);
}

/* ------------------------------------------------------------------------
 * List and count
 * ------------------------------------------------------------------------ */

/* 12 jobs: types alternate FL/CL, namespaces ns0..ns2, keys k0..k11 on
 * even jobs, created at T0 + i*10. Jobs 0..2 claimed (running), job 3
 * completed. */
static void seed_list(fx *f, char ids[12][JM_JOB_ID_SIZE])
{
    static char ns[3][8] = {"ns0", "ns1", "ns2"};
    static char keys[12][8];
    for (int i = 0; i < 12; i++) {
        jm__new_row r = row_of(i % 2 ? "CL" : "FL", ids[i], T0 + i * 10);
        r.namespace_id = ns[i % 3];
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        r.idempotency_key = i % 2 ? NULL : keys[i];
        r.run_at = T0;
        insert_ok(f->s, &r, 1);
    }
    jm_job **jobs = NULL;
    size_t n = claim(f->s, &owner_a, "FL,CL", T0, 4, &jobs);
    assert_int_equal(n, 4);
    jm__finish fin = finish_of(jobs[3], JM_STATUS_COMPLETED, T0 + 500);
    finish1(f->s, &fin);
    free_claimed(jobs, n);
}

static size_t list_ids(jm__store *s, const jm_filter *flt, char ids[12][JM_JOB_ID_SIZE],
                       int *idx, int *has_more)
{
    jm_job_list *l = NULL;
    int rc = OPS->list(s, flt, &l);
    if (rc)
        fail_msg("list: %s: %s", jm_err_name(rc), jm_last_error());
    size_t n = jm_job_list_count(l);
    for (size_t i = 0; i < n; i++) {
        idx[i] = -1;
        for (int k = 0; k < 12; k++)
            if (strcmp(jm_job_id(jm_job_list_at(l, i)), ids[k]) == 0)
                idx[i] = k;
    }
    if (has_more)
        *has_more = jm_job_list_has_more(l);
    jm_job_list_free(l);
    return n;
}

static int64_t count_of(jm__store *s, const jm_filter *flt)
{
    int64_t n = -1;
    assert_int_equal(OPS->count(s, flt, &n), JM_OK);
    return n;
}

static void list_and_count_filters(void **state)
{
    fx *f = *state;
    char ids[12][JM_JOB_ID_SIZE];
    seed_list(f, ids);
    int idx[12], more;

    jm_filter flt = JM_FILTER_INIT;
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 12);
    for (int i = 0; i < 12; i++)
        assert_int_equal(idx[i], i);
    assert_false(more);
    assert_int_equal(count_of(f->s, &flt), 12);

    /* Status mask with every bit set = all. */
    flt.statuses = (1u << JM_STATUS_COUNT) - 1;
    assert_int_equal(count_of(f->s, &flt), 12);

    flt = (jm_filter)JM_FILTER_INIT;
    flt.statuses = JM_STATUS_BIT(JM_STATUS_RUNNING);
    assert_int_equal(list_ids(f->s, &flt, ids, idx, NULL), 3);
    assert_int_equal(count_of(f->s, &flt), 3);
    flt.statuses |= JM_STATUS_BIT(JM_STATUS_COMPLETED);
    assert_int_equal(count_of(f->s, &flt), 4);
    flt.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
    assert_int_equal(list_ids(f->s, &flt, ids, idx, NULL), 1);
    assert_int_equal(idx[0], 3);
    flt.statuses = JM_STATUS_BIT(JM_STATUS_FAILED);
    assert_int_equal(count_of(f->s, &flt), 0);

    flt = (jm_filter)JM_FILTER_INIT;
    flt.type = "CL";
    assert_int_equal(list_ids(f->s, &flt, ids, idx, NULL), 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(idx[i], 2 * i + 1);
    assert_int_equal(count_of(f->s, &flt), 6);

    flt = (jm_filter)JM_FILTER_INIT;
    flt.namespace_id = "ns1";
    assert_int_equal(list_ids(f->s, &flt, ids, idx, NULL), 4);
    const int ns1[] = {1, 4, 7, 10};
    for (int i = 0; i < 4; i++)
        assert_int_equal(idx[i], ns1[i]);
    flt.namespace_id = "NS1";
    assert_int_equal(count_of(f->s, &flt), 0);

    flt = (jm_filter)JM_FILTER_INIT;
    flt.idempotency_key = "k6";
    assert_int_equal(list_ids(f->s, &flt, ids, idx, NULL), 1);
    assert_int_equal(idx[0], 6);
    flt.idempotency_key = "k7";
    assert_int_equal(count_of(f->s, &flt), 0);

    flt = (jm_filter)JM_FILTER_INIT;
    flt.created_after_ms = T0 + 30; /* strictly after: 4..11 */
    assert_int_equal(count_of(f->s, &flt), 8);
    flt.created_before_ms = T0 + 80; /* strictly before: 4..7 */
    assert_int_equal(list_ids(f->s, &flt, ids, idx, NULL), 4);
    assert_int_equal(idx[0], 4);
    assert_int_equal(idx[3], 7);

    /* Combined: FL, ns0, created after T0: jobs 6 (ns0, FL). */
    flt = (jm_filter)JM_FILTER_INIT;
    flt.type = "FL";
    flt.namespace_id = "ns0";
    flt.created_after_ms = T0;
    assert_int_equal(list_ids(f->s, &flt, ids, idx, NULL), 1);
    assert_int_equal(idx[0], 6);
    flt.statuses = JM_STATUS_BIT(JM_STATUS_QUEUED) | JM_STATUS_BIT(JM_STATUS_RUNNING);
    assert_int_equal(count_of(f->s, &flt), 1);
    flt.statuses = JM_STATUS_BIT(JM_STATUS_RUNNING);
    assert_int_equal(count_of(f->s, &flt), 0);
    flt.created_after_ms = 0;
    assert_int_equal(count_of(f->s, &flt), 1); /* job 0 */
}

static void list_keyset_cursor(void **state)
{
    fx *f = *state;
    char ids[12][JM_JOB_ID_SIZE];
    seed_list(f, ids);
    int idx[12], more = -1;

    jm_filter flt = JM_FILTER_INIT;
    flt.limit = 5;
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 5);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[4], 4);
    assert_true(more);
    flt.after_id = ids[4];
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 5);
    assert_int_equal(idx[0], 5);
    assert_true(more);
    flt.after_id = ids[9];
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 2);
    assert_int_equal(idx[0], 10);
    assert_int_equal(idx[1], 11);
    assert_false(more);
    /* A page that ends exactly at the last job says no more. */
    flt.after_id = ids[6];
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 5);
    assert_false(more);

    flt = (jm_filter)JM_FILTER_INIT;
    flt.newest_first = 1;
    flt.limit = 5;
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 5);
    assert_int_equal(idx[0], 11);
    assert_int_equal(idx[4], 7);
    assert_true(more);
    flt.after_id = ids[7];
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 5);
    assert_int_equal(idx[0], 6);
    assert_int_equal(idx[4], 2);
    assert_true(more);
    flt.after_id = ids[2];
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 2);
    assert_int_equal(idx[0], 1);
    assert_int_equal(idx[1], 0);
    assert_false(more);

    /* Cursor with a filter: CL jobs after job 5 (the cursor itself need
     * not match the filter). */
    flt = (jm_filter)JM_FILTER_INIT;
    flt.type = "CL";
    flt.after_id = ids[4];
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 4);
    assert_int_equal(idx[0], 5);

    /* An unknown cursor. */
    char unknown[JM_JOB_ID_SIZE];
    jm__job_id_new("FL", unknown);
    flt = (jm_filter)JM_FILTER_INIT;
    flt.after_id = unknown;
    jm_job_list *l = NULL;
    assert_int_equal(OPS->list(f->s, &flt, &l), JM_ENOTFOUND);
    assert_null(l);
}

/* ------------------------------------------------------------------------
 * Damaged rows and failed claims
 * ------------------------------------------------------------------------ */

/* Damage no constraint forbids (or one lifted for the write): `set` is
 * the SET clause for row `seq`. */
static void damage_set(const char *db, const char *set, int64_t seq)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "PRAGMA ignore_check_constraints=ON; UPDATE jm_jobs SET %s WHERE seq = %lld", set,
             (long long)seq);
    tu_sql_exec(db, sql);
}

/* Row `seq` was set aside at `now`: failed, its message naming `damage`. */
static void assert_set_aside(const char *db, int64_t seq, const char *damage, int64_t now)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM jm_jobs WHERE seq = %lld AND status = 5 "
             "AND message = 'Damaged row: %s' AND finished_at = %lld AND updated_at = %lld "
             "AND lease_until IS NULL AND owner_pid IS NULL AND owner_instance IS NULL",
             (long long)seq, damage, (long long)now, (long long)now);
    if (tu_sql_int(db, sql) != 1)
        fail_msg("row %lld was not set aside as \"%s\"", (long long)seq, damage);
}

/* jm_get of a damaged row: JM_EDB naming the row and the damage. */
static void assert_get_damaged(jm__store *s, const char *id, int64_t seq, const char *damage)
{
    jm_job *j = NULL;
    int rc = OPS->get(s, id, &j);
    if (rc != JM_EDB)
        fail_msg("get %s: %s (%s), want JM_EDB", id, jm_err_name(rc), jm_last_error());
    assert_null(j);
    char want[128];
    snprintf(want, sizeof want, "damaged job row (seq %lld): %s", (long long)seq, damage);
    if (!strstr(jm_last_error(), want))
        fail_msg("get %s: \"%s\" does not say \"%s\"", id, jm_last_error(), want);
}

static void claim_sets_damaged_rows_aside(void **state)
{
    if (tu_skip_unless_sqlite("damages rows through SQLite's writable schema"))
        return;
    fx *f = *state;
    char ids[6][JM_JOB_ID_SIZE];
    int64_t seq[6];
    for (int i = 0; i < 6; i++)
        seq[i] = add_job(f->s, "FL", ids[i], T0 + i);
    tu_damage_null(f->db, "id", seq[1]);
    damage_set(f->db, "id = ''", seq[2]);
    damage_set(f->db, "type = 'F'", seq[3]); /* still due for "FL,CL" */

    /* Three good jobs, in claim order, past the damaged rows between them. */
    jm_job **jobs = NULL;
    assert_int_equal(claim(f->s, &owner_a, "FL,CL", T0 + 10, 3, &jobs), 3);
    assert_string_equal(jobs[0]->id, ids[0]);
    assert_string_equal(jobs[1]->id, ids[4]);
    assert_string_equal(jobs[2]->id, ids[5]);
    free_claimed(jobs, 3);
    assert_set_aside(f->db, seq[1], "id is NULL", T0 + 10);
    assert_set_aside(f->db, seq[2], "id is empty", T0 + 10);
    assert_set_aside(f->db, seq[3], "type is not two bytes", T0 + 10);
    assert_int_equal(claim(f->s, &owner_a, "FL,CL", T0 + 20, 3, NULL), 0);

    assert_get_damaged(f->s, ids[1], seq[1], "id is NULL");
    assert_get_damaged(f->s, ids[2], seq[2], "id is empty");
    assert_get_damaged(f->s, ids[3], seq[3], "type is not two bytes");
}

static void list_and_get_report_damaged_rows(void **state)
{
    if (tu_skip_unless_sqlite("damages rows through SQLite's writable schema"))
        return;
    fx *f = *state;
    char ids[12][JM_JOB_ID_SIZE];
    seed_list(f, ids);
    int64_t seq[12];
    for (int i = 0; i < 12; i++) {
        jm_job *j = get(f->s, ids[i]);
        seq[i] = j->seq;
        jm_job_free(j);
    }
    tu_damage_null(f->db, "type", seq[5]);
    tu_damage_null(f->db, "id", seq[6]);
    damage_set(f->db, "id = ''", seq[7]);
    int idx[12], more = -1;

    /* Every other row is listed, in order; the count still counts all. */
    jm_filter flt = JM_FILTER_INIT;
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 9);
    const int sound[] = {0, 1, 2, 3, 4, 8, 9, 10, 11};
    for (int i = 0; i < 9; i++)
        assert_int_equal(idx[i], sound[i]);
    assert_false(more);
    assert_int_equal(count_of(f->s, &flt), 12);

    /* Pages stay full and the cursor moves past the damaged rows. */
    flt.limit = 4;
    flt.after_id = ids[3];
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 4);
    assert_int_equal(idx[0], 4);
    assert_int_equal(idx[1], 8);
    assert_int_equal(idx[3], 10);
    assert_true(more);
    flt.after_id = ids[4];
    flt.limit = 1;
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 1);
    assert_int_equal(idx[0], 8);
    assert_true(more);
    /* Newest first, across them too; damaged rows alone are no next page. */
    flt = (jm_filter)JM_FILTER_INIT;
    flt.newest_first = 1;
    flt.limit = 4;
    flt.after_id = ids[9];
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 4);
    assert_int_equal(idx[0], 8);
    assert_int_equal(idx[1], 4);
    assert_int_equal(idx[3], 2);
    assert_true(more);
    flt = (jm_filter)JM_FILTER_INIT;
    flt.limit = 1;
    flt.after_id = ids[4];
    flt.statuses = JM_STATUS_BIT(JM_STATUS_QUEUED);
    flt.created_before_ms = T0 + 80; /* rows 4..7: 5..7 damaged */
    assert_int_equal(list_ids(f->s, &flt, ids, idx, &more), 0);
    assert_false(more);

    assert_get_damaged(f->s, ids[5], seq[5], "type is NULL");
    assert_get_damaged(f->s, ids[6], seq[6], "id is NULL");
    assert_get_damaged(f->s, ids[7], seq[7], "id is empty");
}

/* The claim fails (a trigger refuses every take) in the transaction that
 * records an outcome: the outcome is recorded, the claim undone alone and
 * reported apart. */
static void cycle_records_outcomes_when_claim_fails(void **state)
{
    if (tu_skip_unless_sqlite("fails claims with an SQLite trigger"))
        return;
    fx *f = *state;
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE], c[JM_JOB_ID_SIZE];
    add_job(f->s, "FL", a, T0);
    jm_job *j = claim_one(f->s, &owner_a, T0 + 1);
    add_job(f->s, "FL", b, T0 + 2);
    jm__new_row later = row_of("CL", c, T0 + 2);
    later.status = JM_STATUS_NEW;
    later.run_at = T0 + 3; /* promoted by the claim, and that undone too */
    insert_ok(f->s, &later, 1);
    tu_sql_exec(f->db, "CREATE TRIGGER no_claims BEFORE UPDATE OF status ON jm_jobs "
                       "WHEN NEW.status = 2 BEGIN SELECT RAISE(ABORT, 'claims are off'); END");

    jm__finish fin = finish_of(j, JM_STATUS_COMPLETED, T0 + 3);
    fin.message = "done";
    jm__claim_req req = {&owner_a, "FL,CL", T0 + 3, T0 + 30003, 2, NULL, 0};
    jm_job **jobs = NULL;
    size_t n = 99;
    int claim_err = JM_OK;
    int rc = OPS->cycle(f->s, &fin, 1, &req, &jobs, &n, &claim_err);
    if (rc != JM_OK)
        fail_msg("cycle: %s: %s", jm_err_name(rc), jm_last_error());
    assert_int_not_equal(claim_err, JM_OK);
    assert_non_null(strstr(jm_last_error(), "claims are off"));
    assert_null(jobs);
    assert_int_equal(n, 0);
    assert_int_equal(fin.final_status, JM_STATUS_COMPLETED);
    jm_job_free(j);
    jm_job *g = get(f->s, a);
    assert_int_equal(g->status, JM_STATUS_COMPLETED);
    assert_string_equal(g->message, "done");
    jm_job_free(g);
    g = get(f->s, b);
    assert_int_equal(g->status, JM_STATUS_QUEUED);
    assert_int_equal(g->attempts, 0);
    jm_job_free(g);
    assert_int_equal(status_of(f->s, c), JM_STATUS_NEW);

    /* A claim alone fails the same way, and leaves the store usable. */
    jm__claim_req alone = {&owner_a, "FL,CL", T0 + 4, T0 + 30004, 2, NULL, 0};
    assert_int_not_equal(OPS->claim(f->s, &alone, &jobs, &n), JM_OK);
    tu_sql_exec(f->db, "DROP TRIGGER no_claims");
    assert_int_equal(claim(f->s, &owner_a, "FL,CL", T0 + 5, 2, &jobs), 2);
    assert_string_equal(jobs[0]->id, b);
    free_claimed(jobs, 2);
}

/* --- write_group pulls writes while the group is open -------------------- */

typedef struct puller {
    jm__write *w;
    size_t n, next, calls;
} puller;

static jm__write *pull(void *ctx)
{
    puller *p = ctx;
    p->calls++;
    return p->next < p->n ? p->w + p->next++ : NULL;
}

static jm__write insert_write(const jm__new_row *r)
{
    jm__write w = {.kind = JM__WRITE_INSERT};
    w.u.insert.rows = r;
    w.u.insert.n = 1;
    return w;
}

static void write_group_takes_pulled_writes(void **state)
{
    fx *f = *state;
    char holder[JM_JOB_ID_SIZE], ids[4][JM_JOB_ID_SIZE];
    jm__new_row first = row_of("FL", holder, T0);
    first.idempotency_key = "K";
    jm__new_row rows[4];
    for (int i = 0; i < 4; i++)
        rows[i] = row_of("CL", ids[i], T0);
    rows[1].idempotency_key = "K"; /* conflicts with `first`, in the same group */
    jm__write w0 = insert_write(&first);
    jm__write pulled[4];
    for (int i = 0; i < 4; i++) {
        pulled[i] = insert_write(&rows[i]);
        pulled[i].rc = -12345; /* the store sets every pulled result */
    }
    pulled[3] = (jm__write){.kind = JM__WRITE_CANCEL};
    pulled[3].u.cancel.id = "CL-unknown";
    pulled[3].u.cancel.now = T0;
    jm__write *first_w[] = {&w0};
    puller p = {pulled, 4, 0, 0};
    assert_int_equal(OPS->write_group(f->s, first_w, 1, pull, &p), JM_OK);
    /* Every pulled write went in the group, then one call found none. */
    assert_int_equal(p.next, 4);
    assert_int_equal(p.calls, 5);
    assert_int_equal(w0.rc, JM_OK);
    assert_int_equal(pulled[0].rc, JM_OK);
    assert_int_equal(pulled[1].rc, JM_ECONFLICT);
    assert_non_null(strstr(pulled[1].err, holder));
    assert_int_equal(pulled[2].rc, JM_OK);
    assert_int_equal(pulled[3].rc, JM_ENOTFOUND);
    /* The conflict was undone alone: the group's three jobs were written. */
    assert_int_equal(count_all(f->s), 3);
    jm_job *j = NULL;
    assert_int_equal(OPS->get(f->s, ids[2], &j), JM_OK);
    jm_job_free(j);
    assert_int_equal(OPS->get(f->s, ids[1], &j), JM_ENOTFOUND);
}

/* A group stops pulling at its bound; what it did not take stays with the
 * caller, untouched. */
static void write_group_stops_at_its_bound(void **state)
{
    fx *f = *state;
    size_t total = JM__WRITE_GROUP_MAX + 3;
    jm__new_row *rows = calloc(total, sizeof *rows);
    jm__write *w = calloc(total, sizeof *w);
    char (*ids)[JM_JOB_ID_SIZE] = calloc(total, JM_JOB_ID_SIZE);
    assert_true(rows && w && ids);
    for (size_t i = 0; i < total; i++) {
        rows[i] = row_of("CL", ids[i], T0);
        w[i] = insert_write(&rows[i]);
        w[i].rc = -1;
    }
    jm__write *first_w[] = {&w[0], &w[1]};
    puller p = {w + 2, total - 2, 0, 0};
    assert_int_equal(OPS->write_group(f->s, first_w, 2, pull, &p), JM_OK);
    assert_int_equal(p.next, JM__WRITE_GROUP_MAX - 2);
    assert_int_equal(count_all(f->s), JM__WRITE_GROUP_MAX);
    for (size_t i = JM__WRITE_GROUP_MAX; i < total; i++)
        assert_int_equal(w[i].rc, -1);
    free(ids);
    free(w);
    free(rows);
}


int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(reopen_keeps_data),
        T(open_refuses_non_database),
        T(insert_get_round_trip),
        T(idempotency_conflict_names_holder),
        T(conflict_in_batch_inserts_nothing),
        T(claim_order_and_fields),
        T(claim_one_at_a_time_follows_order),
        T(claim_filters_types),
        T(claim_ahead_takes_listed_types),
        T(claim_promotes_due_new_jobs),
        T(concurrent_claims_never_share_a_job),
        T(finish_records_outcome),
        T(finish_keep_message_and_continue),
        T(finish_with_stale_attempt_changes_nothing),
        T(finish_cancel_request_overrides),
        T(cancel_by_status),
        T(retry_constraint_failures),
        T(checkpoint_and_progress_guarded),
        T(renew_reports_owned_jobs),
        T(recover_by_owner),
        T(recover_expired_leases),
        T(recover_running_without_lease),
        T(release_puts_back_without_retry),
        T(prune_finished_before_cutoff_in_batches),
        T(list_and_count_filters),
        T(list_keyset_cursor),
        T(claim_sets_damaged_rows_aside),
        T(list_and_get_report_damaged_rows),
        T(cycle_records_outcomes_when_claim_fails),
        T(write_group_takes_pulled_writes),
        T(write_group_stops_at_its_bound),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
