/*
 * The allocator hook (src/base/alloc.c): every allocation of the library
 * (and of cJSON) goes through jm_set_allocator's functions and is freed by
 * the time the manager closes; the Nth allocation failing, for every N in
 * turn, gives JM_ENOMEM or success, never a crash, and leaves the jobs
 * database consistent; bad allocators are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#define T0 INT64_C(1700000000000)

/* A counting allocator that can fail one allocation: the fail_at-th after
 * it was armed (0: never). Header space keeps the user block aligned. */
typedef struct counter {
    _Atomic long allocs;
    _Atomic long frees;
    _Atomic long live;
    _Atomic long armed_count; /* allocations since arming */
    _Atomic long fail_at;
    _Atomic int failed;       /* the armed failure happened */
} counter;

static counter C;

typedef union header {
    size_t size;
    max_align_t align;
} header;

static void *count_malloc(void *user, size_t size)
{
    counter *c = user;
    long at = atomic_load(&c->fail_at);
    if (at > 0) {
        long k = atomic_fetch_add(&c->armed_count, 1) + 1;
        if (k == at) {
            atomic_store(&c->failed, 1);
            return NULL;
        }
    }
    header *h = malloc(sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    atomic_fetch_add(&c->allocs, 1);
    atomic_fetch_add(&c->live, 1);
    return h + 1;
}

static void count_free(void *user, void *p)
{
    counter *c = user;
    if (!p)
        return;
    atomic_fetch_add(&c->frees, 1);
    atomic_fetch_sub(&c->live, 1);
    free((header *)p - 1);
}

static const jm_allocator counting = {JM_ALLOCATOR_VERSION, count_malloc, count_free, &C};

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

static jm_decision exec_ok(void *self, jm_ctx *ctx)
{
    (void)self;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "n");
    const char *msg = jm_ctx_strf(ctx, "done %d", cJSON_IsNumber(n) ? n->valueint : -1);
    return jm_decision_completed(msg, "{\"rows\":1}");
}

/* A validator, so jm_create parses the parameters (allocating through the
 * hook); without one it only checks the text. */
static int validate_n(void *self, const cJSON *params, char *err, size_t errlen)
{
    (void)self;
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(params, "n")))
        return 0;
    snprintf(err, errlen, "n must be a number");
    return 1;
}

typedef struct fx {
    char *dir;
    char *db;
    tu_clock clock;
    jm_config cfg;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clock.now, T0);
    f->cfg = tu_config(f->db);
    f->cfg.now_ms = tu_fake_now;
    f->cfg.now_user = &f->clock;
    f->cfg.node_id = "alloc-node";
    memset(&C, 0, sizeof C);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    disarm();
    jm_set_allocator(NULL);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static jm_manager *open_with_ex(fx *f)
{
    jm_manager *m = NULL;
    int rc = jm_open(&f->cfg, &m);
    if (rc)
        fail_msg("jm_open: %s", jm_last_error());
    jm_executor ex = {JM_EXECUTOR_VERSION, "FL", "flush", 1, validate_n, exec_ok, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(m, &ex, NULL), JM_OK);
    return m;
}

static int64_t count_jobs(jm_manager *m, unsigned statuses)
{
    jm_filter flt = JM_FILTER_INIT;
    flt.statuses = statuses;
    int64_t n = -1;
    int rc = jm_count(m, &flt, &n);
    if (rc)
        fail_msg("jm_count: %s", jm_last_error());
    return n;
}

/* ------------------------------------------------------------------------ */

static void everything_goes_through_and_is_freed(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_set_allocator(&counting), JM_OK);
    long live0 = atomic_load(&C.live);

    jm_manager *m = open_with_ex(f);
    long after_open = atomic_load(&C.allocs);
    assert_true(after_open > 0);

    char id[JM_JOB_ID_SIZE];
    long before = atomic_load(&C.allocs);
    assert_int_equal(jm_create(m, "FL", "{\"n\":5}", NULL, id), JM_OK);
    assert_true(atomic_load(&C.allocs) > before); /* the validator's parse */

    before = atomic_load(&C.allocs);
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(m, NULL, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 1);
    assert_true(atomic_load(&C.allocs) > before);
    long live_with_list = atomic_load(&C.live);
    jm_job_list_free(l);
    assert_true(atomic_load(&C.live) < live_with_list);

    before = atomic_load(&C.allocs);
    int ran = 0;
    assert_int_equal(jm_run_once(m, 10, &ran), JM_OK);
    assert_int_equal(ran, 1);
    assert_true(atomic_load(&C.allocs) > before);

    jm_job *j = NULL;
    assert_int_equal(jm_get(m, id, &j), JM_OK);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_string_equal(jm_job_message(j), "done 5");
    jm_job_free(j);

    /* The worker pool's allocations too. */
    assert_int_equal(jm_start(m, 2), JM_OK);
    assert_int_equal(jm_stop(m, 1000), JM_OK);

    jm_close(m);
    assert_int_equal(atomic_load(&C.live), live0);
    assert_int_equal(atomic_load(&C.allocs), atomic_load(&C.frees));
    assert_int_equal(jm_set_allocator(NULL), JM_OK);
}

static void set_allocator_null_restores(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_set_allocator(&counting), JM_OK);
    assert_int_equal(jm_set_allocator(NULL), JM_OK);
    jm_manager *m = open_with_ex(f);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(m, "FL", "{\"n\":1}", NULL, id), JM_OK);
    int ran = 0;
    assert_int_equal(jm_run_once(m, 1, &ran), JM_OK);
    jm_close(m);
    assert_int_equal(atomic_load(&C.allocs), 0);
    /* Memory the library hands out is plain malloc'd now. */
    m = open_with_ex(f);
    jm_job *j = NULL;
    assert_int_equal(jm_get(m, id, &j), JM_OK);
    jm_job_free(j);
    jm_close(m);
    assert_int_equal(atomic_load(&C.allocs), 0);
}

static void bad_allocators_refused(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_set_allocator(&counting), JM_OK);
    jm_allocator bad = counting;
    bad.version = 0;
    assert_int_equal(jm_set_allocator(&bad), JM_EINVAL);
    bad.version = JM_ALLOCATOR_VERSION + 1;
    assert_int_equal(jm_set_allocator(&bad), JM_EINVAL);
    bad = counting;
    bad.malloc_fn = NULL;
    assert_int_equal(jm_set_allocator(&bad), JM_EINVAL);
    bad = counting;
    bad.free_fn = NULL;
    assert_int_equal(jm_set_allocator(&bad), JM_EINVAL);
    /* A refusal leaves the installed allocator in place. */
    long before = atomic_load(&C.allocs);
    jm_manager *m = open_with_ex(f);
    assert_true(atomic_load(&C.allocs) > before);
    jm_close(m);
    assert_int_equal(atomic_load(&C.live), 0);
    assert_int_equal(jm_set_allocator(NULL), JM_OK);
}

/* ------------------------------------------------------------------------
 * Failing the Nth allocation
 * ------------------------------------------------------------------------ */

#define MAX_N 2000

/* Wrong answers found while walking N are collected and reported at the
 * end, so one of them does not hide the allocations after it. */
typedef struct notes {
    char text[640]; /* cmocka prints about 1 KiB of a message */
    size_t used;
    int count;
} notes;

static void note(notes *nt, const char *fmt, ...) JM_PRINTF(2, 3);
static void note(notes *nt, const char *fmt, ...)
{
    nt->count++;
    if (nt->used + 200 >= sizeof nt->text)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(nt->text + nt->used, sizeof nt->text - nt->used, fmt, ap);
    va_end(ap);
    if (k > 0)
        nt->used += (size_t)k < sizeof nt->text - nt->used ? (size_t)k : 0;
    nt->text[nt->used++] = '\n';
    nt->text[nt->used] = '\0';
}

static void check_notes(const notes *nt, const char *what)
{
    if (nt->count)
        fail_msg("%s: %d wrong outcome(s) under allocation failure:\n%s", what, nt->count,
                 nt->text);
}

static void open_fails_cleanly(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_set_allocator(&counting), JM_OK);
    int n;
    for (n = 1; n < MAX_N; n++) {
        arm(n);
        jm_manager *m = (jm_manager *)1;
        int rc = jm_open(&f->cfg, &m);
        int failed = atomic_load(&C.failed);
        disarm();
        if (rc == JM_OK) {
            assert_non_null(m);
            jm_close(m);
            if (!failed)
                break;
        } else {
            if (rc != JM_ENOMEM)
                fail_msg("allocation %d failing: jm_open = %s (%s)", n, jm_err_name(rc),
                         jm_last_error());
            assert_null(m);
        }
        assert_int_equal(atomic_load(&C.live), 0);
    }
    assert_true(n > 1 && n < MAX_N);
    /* The database opens normally afterwards. */
    jm_manager *m = open_with_ex(f);
    assert_int_equal(count_jobs(m, 0), 0);
    jm_close(m);
    assert_int_equal(atomic_load(&C.live), 0);
    assert_int_equal(jm_set_allocator(NULL), JM_OK);
}

static void create_fails_cleanly(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_set_allocator(&counting), JM_OK);
    jm_manager *m = open_with_ex(f);
    long live0 = atomic_load(&C.live);
    int64_t have = 0;
    notes nt = {0};
    int n;
    for (n = 1; n < MAX_N; n++) {
        char id[JM_JOB_ID_SIZE];
        arm(n);
        int rc = jm_create(m, "FL", "{\"n\":7,\"list\":[1,2,{\"x\":\"y\"}]}", NULL, id);
        int failed = atomic_load(&C.failed);
        disarm();
        if (rc == JM_OK) {
            have++;
            assert_int_equal(tu_status(m, id), JM_STATUS_QUEUED);
        } else if (rc != JM_ENOMEM) {
            note(&nt, "allocation %d failing: jm_create = %s (%s), want JM_ENOMEM", n,
                 jm_err_name(rc), jm_last_error());
        }
        /* A failed create left no row; a successful one exactly one. */
        assert_int_equal(count_jobs(m, 0), have);
        assert_int_equal(atomic_load(&C.live), live0);
        if (rc == JM_OK && !failed)
            break;
    }
    assert_true(n > 1 && n < MAX_N);

    /* Batches too: all or nothing. */
    jm_new_job jobs[5];
    for (int i = 0; i < 5; i++) {
        jobs[i] = (jm_new_job){"FL", "{\"n\":1}", JM_CREATE_OPTS_INIT};
    }
    char ids[5][JM_JOB_ID_SIZE];
    for (n = 1; n < MAX_N; n++) {
        arm(n);
        int rc = jm_create_many(m, jobs, 5, ids);
        int failed = atomic_load(&C.failed);
        disarm();
        if (rc == JM_OK)
            have += 5;
        else if (rc != JM_ENOMEM)
            note(&nt, "allocation %d failing: jm_create_many = %s (%s), want JM_ENOMEM", n,
                 jm_err_name(rc), jm_last_error());
        assert_int_equal(count_jobs(m, 0), have);
        if (rc == JM_OK && !failed)
            break;
    }
    assert_true(n > 1 && n < MAX_N);
    jm_close(m);
    assert_int_equal(atomic_load(&C.live), 0);
    assert_int_equal(jm_set_allocator(NULL), JM_OK);
    check_notes(&nt, "jm_create/jm_create_many");
}

static void list_and_get_fail_cleanly(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_set_allocator(&counting), JM_OK);
    jm_manager *m = open_with_ex(f);
    char ids[3][JM_JOB_ID_SIZE];
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.namespace_id = "ns";
    o.idempotency_key = "key";
    assert_int_equal(jm_create(m, "FL", "{\"n\":1}", &o, ids[0]), JM_OK);
    assert_int_equal(jm_create(m, "FL", "{\"n\":2}", NULL, ids[1]), JM_OK);
    assert_int_equal(jm_create(m, "FL", "{\"n\":3}", NULL, ids[2]), JM_OK);
    long live0 = atomic_load(&C.live);

    int n;
    for (n = 1; n < MAX_N; n++) {
        arm(n);
        jm_job_list *l = (jm_job_list *)1;
        int rc = jm_list(m, NULL, &l);
        int failed = atomic_load(&C.failed);
        disarm();
        if (rc == JM_OK) {
            assert_int_equal(jm_job_list_count(l), 3);
            for (size_t i = 0; i < 3; i++)
                assert_string_equal(jm_job_id(jm_job_list_at(l, i)), ids[i]);
            jm_job_list_free(l);
            if (!failed)
                break;
        } else {
            if (rc != JM_ENOMEM)
                fail_msg("allocation %d failing: jm_list = %s", n, jm_err_name(rc));
            assert_null(l);
        }
        assert_int_equal(atomic_load(&C.live), live0);
    }
    assert_true(n > 1 && n < MAX_N);

    for (n = 1; n < MAX_N; n++) {
        arm(n);
        jm_job *j = (jm_job *)1;
        int rc = jm_get(m, ids[0], &j);
        int failed = atomic_load(&C.failed);
        disarm();
        if (rc == JM_OK) {
            assert_string_equal(jm_job_namespace(j), "ns");
            assert_string_equal(jm_job_idempotency_key(j), "key");
            assert_string_equal(jm_job_params(j), "{\"n\":1}");
            jm_job_free(j);
            if (!failed)
                break;
        } else {
            if (rc != JM_ENOMEM)
                fail_msg("allocation %d failing: jm_get = %s", n, jm_err_name(rc));
            assert_null(j);
        }
        assert_int_equal(atomic_load(&C.live), live0);
    }
    assert_true(n > 1 && n < MAX_N);
    jm_close(m);
    assert_int_equal(atomic_load(&C.live), 0);
    assert_int_equal(jm_set_allocator(NULL), JM_OK);
}

static void run_once_fails_cleanly(void **state)
{
    fx *f = *state;
    assert_int_equal(jm_set_allocator(&counting), JM_OK);
    jm_manager *m = open_with_ex(f);
    int n;
    int64_t created = 0, lost = 0;
    notes nt = {0};
    for (n = 1; n < MAX_N; n++) {
        char id[JM_JOB_ID_SIZE];
        assert_int_equal(jm_create(m, "FL", "{\"n\":9}", NULL, id), JM_OK);
        created++;
        arm(n);
        int ran = -1;
        int rc = jm_run_once(m, 1, &ran);
        int failed = atomic_load(&C.failed);
        disarm();
        if (rc != JM_OK && rc != JM_ENOMEM)
            fail_msg("allocation %d failing: jm_run_once = %s (%s)", n, jm_err_name(rc),
                     jm_last_error());
        /* Nothing lost: the job either ran to completion or waits to run
         * again (queued, or put back as retrying); it never failed because
         * memory was short, and no retry was spent on it. */
        jm_job *j = NULL;
        assert_int_equal(jm_get(m, id, &j), JM_OK);
        jm_status st = jm_job_status(j);
        if (st != JM_STATUS_COMPLETED && st != JM_STATUS_QUEUED && st != JM_STATUS_RETRYING) {
            note(&nt, "allocation %d failing: the job ended %s (\"%s\")", n,
                 jm_status_name(st), jm_job_message(j) ? jm_job_message(j) : "");
            lost++;
        }
        assert_int_equal(jm_job_retry_count(j), 0);
        jm_job_free(j);
        if (st == JM_STATUS_QUEUED || st == JM_STATUS_RETRYING) {
            /* Without the failure it runs (recovery would requeue a job
             * whose outcome was lost; none may stay running here). */
            assert_int_equal(jm_run_once(m, 1, &ran), JM_OK);
            assert_int_equal(ran, 1);
            assert_int_equal(tu_status(m, id), JM_STATUS_COMPLETED);
        }
        assert_int_equal(count_jobs(m, 0), created);
        assert_int_equal(count_jobs(m, JM_STATUS_BIT(JM_STATUS_COMPLETED)), created - lost);
        if (rc == JM_OK && !failed)
            break;
    }
    assert_true(n > 1 && n < MAX_N);
    jm_close(m);
    assert_int_equal(atomic_load(&C.live), 0);
    assert_int_equal(jm_set_allocator(NULL), JM_OK);
    check_notes(&nt, "jm_run_once");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(everything_goes_through_and_is_freed),
        T(set_allocator_null_restores),
        T(bad_allocators_refused),
        T(open_fails_cleanly),
        T(create_fails_cleanly),
        T(list_and_get_fail_cleanly),
        T(run_once_fails_cleanly),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
