/*
 * Reading jobs (src/core/query.c): jm_list and jm_count with every filter
 * field alone and combined, keyset pagination in both directions, the
 * limits, a cursor that names a pruned job, and jm_get of every field
 * after a full lifecycle. Time is a fake clock; jobs run with jm_run_once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#define T0 INT64_C(1700000000000)

typedef struct fx fx;
typedef jm_decision (*run_fn)(fx *f, jm_ctx *ctx);

struct fx {
    char *dir;
    char *db;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
    run_fn fn;
    int runs;
    int64_t seen_running; /* jm_count of running jobs from inside execute */
};

static jm_decision execute(void *self, jm_ctx *ctx)
{
    fx *f = self;
    f->runs++;
    if (f->fn)
        return f->fn(f, ctx);
    return jm_decision_completed("ok", NULL);
}

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
    f->cfg.node_id = "query-node";
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    jm_executor fl = {JM_EXECUTOR_VERSION, "FL", "flush", 1, NULL, execute, NULL, JM_CLASS_NORMAL, NULL};
    jm_executor cl = {JM_EXECUTOR_VERSION, "CL", "cleanup", 0, NULL, execute, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(f->m, &fl, f), JM_OK);
    assert_int_equal(jm_register(f->m, &cl, f), JM_OK);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    jm_close(f->m);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void create_ok(fx *f, const char *type, const char *params, const jm_create_opts *o,
                      char id[JM_JOB_ID_SIZE])
{
    int rc = jm_create(f->m, type, params, o, id);
    if (rc != JM_OK)
        fail_msg("jm_create: %s: %s", jm_err_name(rc), jm_last_error());
}

static int64_t count_of(fx *f, const jm_filter *flt)
{
    int64_t n = -1;
    int rc = jm_count(f->m, flt, &n);
    if (rc != JM_OK)
        fail_msg("jm_count: %s: %s", jm_err_name(rc), jm_last_error());
    return n;
}

static jm_job_list *list_of(fx *f, const jm_filter *flt)
{
    jm_job_list *l = NULL;
    int rc = jm_list(f->m, flt, &l);
    if (rc != JM_OK)
        fail_msg("jm_list: %s: %s", jm_err_name(rc), jm_last_error());
    return l;
}

/* Index of `id` among ids[0..n), or -1. */
static int index_of(char (*ids)[JM_JOB_ID_SIZE], int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------------------
 * Filters
 * ------------------------------------------------------------------------ */

enum { J_NEW, J_QUEUED, J_RETRYING, J_DONE, J_FAILED, J_CANCELLED, J_FL2, J_CL2, NJ };

static jm_decision by_params(fx *f, jm_ctx *ctx)
{
    const char *what = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "do"));
    jm_filter flt = JM_FILTER_INIT;
    flt.statuses = JM_STATUS_BIT(JM_STATUS_RUNNING);
    f->seen_running = count_of(f, &flt);
    if (what && strcmp(what, "retry") == 0)
        return jm_decision_retry("again", NULL, 60000);
    if (what && strcmp(what, "fail") == 0)
        return jm_decision_failed("bad", NULL);
    return jm_decision_completed("ok", NULL);
}

/* One job in each status but running (seen from inside execute), created
 * 1 s apart from T0 + 1000, with types, namespaces and keys:
 *   J_NEW      FL ns-a  key-new  scheduled
 *   J_QUEUED   FL ns-a  key-q
 *   J_RETRYING CL ns-b           retries in 60 s
 *   J_DONE     FL ns-b  key-done completed
 *   J_FAILED   CL ns-a           failed
 *   J_CANCELLED FL              cancelled
 *   J_FL2      FL ns-a  key-fl2 queued
 *   J_CL2      CL ns-b  key-cl2 queued
 */
static void seed(fx *f, char ids[NJ][JM_JOB_ID_SIZE])
{
    struct {
        const char *type, *ns, *key, *params;
        int64_t run_at;
        int priority;
    } spec[NJ] = {
        [J_NEW] = {"FL", "ns-a", "key-new", "{}", T0 + 3600000, 0},
        [J_QUEUED] = {"FL", "ns-a", "key-q", "{}", 0, -10},
        [J_RETRYING] = {"CL", "ns-b", NULL, "{\"do\":\"retry\"}", 0, 10},
        [J_DONE] = {"FL", "ns-b", "key-done", "{}", 0, 9},
        [J_FAILED] = {"CL", "ns-a", NULL, "{\"do\":\"fail\"}", 0, 8},
        [J_CANCELLED] = {"FL", NULL, NULL, "{}", 0, 0},
        [J_FL2] = {"FL", "ns-a", "key-fl2", "{}", 0, -10},
        [J_CL2] = {"CL", "ns-b", "key-cl2", "{}", 0, -10},
    };
    for (int i = 0; i < NJ; i++) {
        tu_clock_advance(&f->clock, 1000);
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.namespace_id = spec[i].ns;
        o.idempotency_key = spec[i].key;
        o.run_at_ms = spec[i].run_at;
        o.priority = spec[i].priority;
        create_ok(f, spec[i].type, spec[i].params, &o, ids[i]);
    }
    assert_int_equal(jm_cancel(f->m, ids[J_CANCELLED]), JM_OK);
    /* Run the three high-priority jobs only. */
    f->fn = by_params;
    int ran = 0;
    assert_int_equal(jm_run_once(f->m, 3, &ran), JM_OK);
    assert_int_equal(ran, 3);
    assert_int_equal(f->seen_running, 1);
    f->fn = NULL;
    assert_int_equal(tu_status(f->m, ids[J_NEW]), JM_STATUS_NEW);
    assert_int_equal(tu_status(f->m, ids[J_QUEUED]), JM_STATUS_QUEUED);
    assert_int_equal(tu_status(f->m, ids[J_RETRYING]), JM_STATUS_RETRYING);
    assert_int_equal(tu_status(f->m, ids[J_DONE]), JM_STATUS_COMPLETED);
    assert_int_equal(tu_status(f->m, ids[J_FAILED]), JM_STATUS_FAILED);
    assert_int_equal(tu_status(f->m, ids[J_CANCELLED]), JM_STATUS_CANCELLED);
}

/* The seed indexes that `flt` lists, in order, as a bit mask; checks that
 * jm_count agrees with the listing. */
static unsigned listed(fx *f, char ids[NJ][JM_JOB_ID_SIZE], const jm_filter *flt)
{
    jm_job_list *l = list_of(f, flt);
    unsigned mask = 0;
    int prev = -1;
    for (size_t i = 0; i < jm_job_list_count(l); i++) {
        int k = index_of(ids, NJ, jm_job_id(jm_job_list_at(l, i)));
        assert_true(k >= 0);
        /* Creation order. */
        assert_true(k > prev);
        prev = k;
        mask |= 1u << k;
    }
    assert_false(jm_job_list_has_more(l));
    assert_int_equal(count_of(f, flt), (int64_t)jm_job_list_count(l));
    jm_job_list_free(l);
    return mask;
}

#define B(x) (1u << (x))

static void filter_by_status(void **state)
{
    fx *f = *state;
    char ids[NJ][JM_JOB_ID_SIZE];
    seed(f, ids);
    jm_filter flt = JM_FILTER_INIT;
    assert_int_equal(listed(f, ids, &flt), B(NJ) - 1);
    assert_int_equal(listed(f, ids, NULL), B(NJ) - 1);

    const struct {
        jm_status st;
        unsigned want;
    } one[] = {
        {JM_STATUS_NEW, B(J_NEW)},
        {JM_STATUS_QUEUED, B(J_QUEUED) | B(J_FL2) | B(J_CL2)},
        {JM_STATUS_RUNNING, 0},
        {JM_STATUS_RETRYING, B(J_RETRYING)},
        {JM_STATUS_COMPLETED, B(J_DONE)},
        {JM_STATUS_FAILED, B(J_FAILED)},
        {JM_STATUS_CANCELLED, B(J_CANCELLED)},
    };
    for (size_t i = 0; i < sizeof one / sizeof *one; i++) {
        flt.statuses = JM_STATUS_BIT(one[i].st);
        if (listed(f, ids, &flt) != one[i].want)
            fail_msg("status %s listed the wrong jobs", jm_status_name(one[i].st));
    }
    flt.statuses = JM_STATUS_BIT(JM_STATUS_FAILED) | JM_STATUS_BIT(JM_STATUS_CANCELLED);
    assert_int_equal(listed(f, ids, &flt), B(J_FAILED) | B(J_CANCELLED));
    flt.statuses = JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |
                   JM_STATUS_BIT(JM_STATUS_RETRYING);
    assert_int_equal(listed(f, ids, &flt),
                     B(J_NEW) | B(J_QUEUED) | B(J_FL2) | B(J_CL2) | B(J_RETRYING));
    flt.statuses = (1u << JM_STATUS_COUNT) - 1;
    assert_int_equal(listed(f, ids, &flt), B(NJ) - 1);
    /* Unknown status bits are refused, not ignored. */
    flt.statuses = 1u << JM_STATUS_COUNT;
    jm_job_list *l = NULL;
    int64_t n;
    assert_int_equal(jm_list(f->m, &flt, &l), JM_EINVAL);
    assert_int_equal(jm_count(f->m, &flt, &n), JM_EINVAL);
}

static void filter_by_type_namespace_key(void **state)
{
    fx *f = *state;
    char ids[NJ][JM_JOB_ID_SIZE];
    seed(f, ids);
    jm_filter flt = JM_FILTER_INIT;
    flt.type = "CL";
    assert_int_equal(listed(f, ids, &flt), B(J_RETRYING) | B(J_FAILED) | B(J_CL2));
    flt.type = "FL";
    assert_int_equal(listed(f, ids, &flt),
                     B(J_NEW) | B(J_QUEUED) | B(J_DONE) | B(J_CANCELLED) | B(J_FL2));
    flt.type = "RT";
    assert_int_equal(listed(f, ids, &flt), 0);

    flt = (jm_filter)JM_FILTER_INIT;
    flt.namespace_id = "ns-a";
    assert_int_equal(listed(f, ids, &flt), B(J_NEW) | B(J_QUEUED) | B(J_FAILED) | B(J_FL2));
    flt.namespace_id = "ns-b";
    assert_int_equal(listed(f, ids, &flt), B(J_RETRYING) | B(J_DONE) | B(J_CL2));
    flt.namespace_id = "ns-";
    assert_int_equal(listed(f, ids, &flt), 0);

    flt = (jm_filter)JM_FILTER_INIT;
    flt.idempotency_key = "key-done";
    assert_int_equal(listed(f, ids, &flt), B(J_DONE));
    flt.idempotency_key = "KEY-DONE";
    assert_int_equal(listed(f, ids, &flt), 0);
    /* Values with SQL in them are only values. */
    flt.idempotency_key = "x' OR '1'='1";
    assert_int_equal(listed(f, ids, &flt), 0);
    flt = (jm_filter)JM_FILTER_INIT;
    flt.namespace_id = "ns-a' OR 1=1 --";
    assert_int_equal(listed(f, ids, &flt), 0);
}

static void filter_by_creation_time(void **state)
{
    fx *f = *state;
    char ids[NJ][JM_JOB_ID_SIZE];
    seed(f, ids); /* job i created at T0 + (i + 1) * 1000 */
    jm_filter flt = JM_FILTER_INIT;
    flt.created_after_ms = T0 + 3000; /* strictly after: jobs 3.. */
    assert_int_equal(listed(f, ids, &flt), (B(NJ) - 1) & ~(B(0) | B(1) | B(2)));
    flt.created_before_ms = T0 + 6000; /* strictly before: ..4 */
    assert_int_equal(listed(f, ids, &flt), B(3) | B(4));
    flt.created_after_ms = 0;
    assert_int_equal(listed(f, ids, &flt), B(0) | B(1) | B(2) | B(3) | B(4));
    flt.created_after_ms = T0 + 5000;
    assert_int_equal(listed(f, ids, &flt), 0);
    flt = (jm_filter)JM_FILTER_INIT;
    flt.created_after_ms = -1;
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, &flt, &l), JM_EINVAL);
}

static void filters_combined(void **state)
{
    fx *f = *state;
    char ids[NJ][JM_JOB_ID_SIZE];
    seed(f, ids);
    jm_filter flt = JM_FILTER_INIT;
    flt.type = "FL";
    flt.namespace_id = "ns-a";
    assert_int_equal(listed(f, ids, &flt), B(J_NEW) | B(J_QUEUED) | B(J_FL2));
    flt.statuses = JM_STATUS_BIT(JM_STATUS_QUEUED);
    assert_int_equal(listed(f, ids, &flt), B(J_QUEUED) | B(J_FL2));
    flt.created_after_ms = T0 + 2000;
    assert_int_equal(listed(f, ids, &flt), B(J_FL2));
    flt.idempotency_key = "key-q";
    assert_int_equal(listed(f, ids, &flt), 0);
    flt.created_after_ms = 0;
    assert_int_equal(listed(f, ids, &flt), B(J_QUEUED));
    flt.type = "CL";
    assert_int_equal(listed(f, ids, &flt), 0);

    flt = (jm_filter)JM_FILTER_INIT;
    flt.statuses = JM_STATUS_BIT(JM_STATUS_QUEUED) | JM_STATUS_BIT(JM_STATUS_RETRYING);
    flt.namespace_id = "ns-b";
    assert_int_equal(listed(f, ids, &flt), B(J_RETRYING) | B(J_CL2));
    flt.created_before_ms = T0 + 8000;
    assert_int_equal(listed(f, ids, &flt), B(J_RETRYING));
    flt.newest_first = 1;
    jm_job_list *l = list_of(f, &flt);
    assert_int_equal(jm_job_list_count(l), 1);
    jm_job_list_free(l);
}

/* ------------------------------------------------------------------------
 * Pagination and limits
 * ------------------------------------------------------------------------ */

#define MANY 250

static void create_many_in_order(fx *f, char (*ids)[JM_JOB_ID_SIZE], int n)
{
    for (int i = 0; i < n; i++) {
        tu_clock_advance(&f->clock, 1);
        create_ok(f, i % 3 ? "FL" : "CL", NULL, NULL, ids[i]);
    }
}

/* Walks every page of `page` jobs; checks each is in order, no id twice,
 * none missed, has_more true until the last page. */
static void walk(fx *f, char (*ids)[JM_JOB_ID_SIZE], int n, int page, int newest_first)
{
    int *seen = calloc((size_t)n, sizeof *seen);
    char cursor[JM_JOB_ID_SIZE] = "";
    int pos = 0, pages = 0;
    for (;;) {
        jm_filter flt = JM_FILTER_INIT;
        flt.limit = page;
        flt.newest_first = newest_first;
        flt.after_id = cursor[0] ? cursor : NULL;
        jm_job_list *l = list_of(f, &flt);
        size_t c = jm_job_list_count(l);
        pages++;
        for (size_t i = 0; i < c; i++, pos++) {
            int k = index_of(ids, n, jm_job_id(jm_job_list_at(l, i)));
            assert_true(k >= 0);
            seen[k]++;
            int want = newest_first ? n - 1 - pos : pos;
            if (k != want)
                fail_msg("page %d item %zu: job %d, want %d", pages, i, k, want);
        }
        int more = jm_job_list_has_more(l);
        if (c)
            snprintf(cursor, sizeof cursor, "%s", jm_job_id(jm_job_list_at(l, c - 1)));
        jm_job_list_free(l);
        if (!more) {
            assert_true(c > 0);
            break;
        }
        assert_int_equal(c, (size_t)page);
        assert_true(pages <= n / page + 1);
    }
    assert_int_equal(pos, n);
    assert_int_equal(pages, (n + page - 1) / page);
    for (int i = 0; i < n; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
}

static void keyset_pagination(void **state)
{
    fx *f = *state;
    char(*ids)[JM_JOB_ID_SIZE] = calloc(MANY, JM_JOB_ID_SIZE);
    create_many_in_order(f, ids, MANY);
    walk(f, ids, MANY, 40, 0);
    walk(f, ids, MANY, 40, 1);
    /* Pages that end exactly on the last job: no empty page follows. */
    walk(f, ids, MANY, 50, 0);
    walk(f, ids, MANY, 50, 1);
    walk(f, ids, MANY, 1, 1);

    /* With a filter, pages hold matching jobs only. */
    jm_filter flt = JM_FILTER_INIT;
    flt.type = "CL";
    flt.limit = 40;
    int total = 0, pages = 0;
    char cursor[JM_JOB_ID_SIZE] = "";
    for (;;) {
        flt.after_id = cursor[0] ? cursor : NULL;
        jm_job_list *l = list_of(f, &flt);
        size_t c = jm_job_list_count(l);
        for (size_t i = 0; i < c; i++)
            assert_string_equal(jm_job_type(jm_job_list_at(l, i)), "CL");
        total += (int)c;
        pages++;
        int more = jm_job_list_has_more(l);
        if (c)
            snprintf(cursor, sizeof cursor, "%s", jm_job_id(jm_job_list_at(l, c - 1)));
        jm_job_list_free(l);
        if (!more)
            break;
    }
    assert_int_equal(total, (MANY + 2) / 3);
    assert_int_equal(pages, 3); /* 84 = 40 + 40 + 4 */
    free(ids);
}

static void limits(void **state)
{
    fx *f = *state;
    char(*ids)[JM_JOB_ID_SIZE] = calloc(MANY, JM_JOB_ID_SIZE);
    create_many_in_order(f, ids, MANY);
    jm_filter flt = JM_FILTER_INIT;
    jm_job_list *l = list_of(f, &flt); /* limit 0 */
    assert_int_equal(jm_job_list_count(l), JM_LIST_DEFAULT_LIMIT);
    assert_true(jm_job_list_has_more(l));
    assert_string_equal(jm_job_id(jm_job_list_at(l, 99)), ids[99]);
    assert_null(jm_job_list_at(l, 100));
    jm_job_list_free(l);
    l = list_of(f, NULL);
    assert_int_equal(jm_job_list_count(l), JM_LIST_DEFAULT_LIMIT);
    jm_job_list_free(l);

    flt.limit = JM_LIST_MAX_LIMIT;
    l = list_of(f, &flt);
    assert_int_equal(jm_job_list_count(l), MANY);
    assert_false(jm_job_list_has_more(l));
    jm_job_list_free(l);
    flt.limit = MANY;
    l = list_of(f, &flt);
    assert_int_equal(jm_job_list_count(l), MANY);
    assert_false(jm_job_list_has_more(l));
    jm_job_list_free(l);
    flt.limit = MANY - 1;
    l = list_of(f, &flt);
    assert_int_equal(jm_job_list_count(l), MANY - 1);
    assert_true(jm_job_list_has_more(l));
    jm_job_list_free(l);

    flt.limit = JM_LIST_MAX_LIMIT + 1;
    l = (jm_job_list *)1;
    assert_int_equal(jm_list(f->m, &flt, &l), JM_EINVAL);
    assert_null(l);
    flt.limit = -1;
    assert_int_equal(jm_list(f->m, &flt, &l), JM_EINVAL);
    /* jm_count ignores limit and cursor. */
    flt.limit = 3;
    flt.after_id = ids[200];
    assert_int_equal(count_of(f, &flt), MANY);
    free(ids);
}

static void cursor_of_pruned_job(void **state)
{
    fx *f = *state;
    char a[JM_JOB_ID_SIZE], b[JM_JOB_ID_SIZE], c[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, NULL, a);
    int ran = 0;
    assert_int_equal(jm_run_once(f->m, 1, &ran), JM_OK);
    assert_int_equal(ran, 1);
    create_ok(f, "FL", NULL, NULL, b);
    create_ok(f, "FL", NULL, NULL, c);
    jm_filter flt = JM_FILTER_INIT;
    flt.after_id = a;
    jm_job_list *l = list_of(f, &flt);
    assert_int_equal(jm_job_list_count(l), 2);
    jm_job_list_free(l);

    tu_clock_advance(&f->clock, 10);
    int64_t deleted = 0;
    assert_int_equal(jm_prune(f->m, T0 + 5, &deleted), JM_OK);
    assert_int_equal(deleted, 1);
    l = (jm_job_list *)1;
    assert_int_equal(jm_list(f->m, &flt, &l), JM_ENOTFOUND);
    assert_null(l);
    flt.newest_first = 1;
    assert_int_equal(jm_list(f->m, &flt, &l), JM_ENOTFOUND);
    /* A malformed cursor is a bad argument. */
    flt.after_id = "FL-not-an-id";
    assert_int_equal(jm_list(f->m, &flt, &l), JM_EINVAL);
    flt.after_id = b;
    l = list_of(f, &flt);
    assert_int_equal(jm_job_list_count(l), 0);
    assert_false(jm_job_list_has_more(l));
    jm_job_list_free(l);
}

/* ------------------------------------------------------------------------
 * jm_get after a full lifecycle
 * ------------------------------------------------------------------------ */

static jm_decision lifecycle(fx *f, jm_ctx *ctx)
{
    if (f->runs == 1) {
        assert_int_equal(jm_ctx_checkpoint(ctx, "{\"step\":1}"), JM_OK);
        jm_ctx_progress(ctx, 0.5);
        return jm_decision_retry("first try failed", "trace of try 1", 5000);
    }
    /* The second run starts at T0 + 6000 and takes 7 ms. */
    assert_string_equal(jm_job_checkpoint(jm_ctx_job(ctx)), "{\"step\":1}");
    tu_clock_advance(&f->clock, 7);
    return jm_decision_completed("all done", "{\"rows\":3,\"bytes\":1024}");
}

static void get_every_field_after_lifecycle(void **state)
{
    fx *f = *state;
    f->fn = lifecycle;
    const char *params = "{\"table\":\"t1\",  \"n\": [1,2]}";
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.namespace_id = "ns-life";
    o.idempotency_key = "life-key";
    o.max_retries = 2;
    o.priority = 7;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "FL", params, &o, id);

    jm_job *j = NULL;
    assert_int_equal(jm_get(f->m, id, &j), JM_OK);
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_int_equal(jm_job_started_at(j), 0);
    assert_int_equal(jm_job_finished_at(j), 0);
    assert_int_equal(jm_job_attempts(j), 0);
    assert_null(jm_job_node_id(j));
    jm_job_free(j);

    tu_clock_advance(&f->clock, 1000); /* T0 + 1000 */
    int ran = 0;
    assert_int_equal(jm_run_once(f->m, 1, &ran), JM_OK);
    assert_int_equal(ran, 1);
    assert_int_equal(jm_get(f->m, id, &j), JM_OK);
    assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
    assert_int_equal(jm_job_run_at(j), T0 + 6000);
    assert_string_equal(jm_job_message(j), "first try failed");
    jm_job_free(j);

    tu_clock_advance(&f->clock, 5000); /* T0 + 6000 */
    assert_int_equal(jm_run_once(f->m, 1, &ran), JM_OK);
    assert_int_equal(ran, 1);

    assert_int_equal(jm_get(f->m, id, &j), JM_OK);
    char type[3];
    assert_int_equal(jm_job_id_parse(jm_job_id(j), type), JM_OK);
    assert_string_equal(jm_job_id(j), id);
    assert_string_equal(jm_job_type(j), "FL");
    assert_string_equal(type, "FL");
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_string_equal(jm_job_namespace(j), "ns-life");
    assert_string_equal(jm_job_params(j), params);
    assert_string_equal(jm_job_idempotency_key(j), "life-key");
    assert_string_equal(jm_job_message(j), "all done");
    assert_string_equal(jm_job_exception_trace(j), "trace of try 1");
    assert_string_equal(jm_job_result(j), "{\"rows\":3,\"bytes\":1024}");
    assert_string_equal(jm_job_checkpoint(j), "{\"step\":1}");
    assert_true(jm_job_progress(j) == 1.0);
    assert_int_equal(jm_job_retry_count(j), 1);
    assert_int_equal(jm_job_max_retries(j), 2);
    assert_int_equal(jm_job_priority(j), 7);
    assert_int_equal(jm_job_created_at(j), T0);
    assert_int_equal(jm_job_started_at(j), T0 + 6000);
    assert_int_equal(jm_job_finished_at(j), T0 + 6007);
    assert_int_equal(jm_job_updated_at(j), T0 + 6007);
    assert_int_equal(jm_job_run_at(j), T0 + 6000);
    assert_string_equal(jm_job_node_id(j), "query-node");
    assert_int_equal(jm_job_attempts(j), 2);
    assert_int_equal(jm_job_cancel_requested(j), 0);
    jm_job_free(j);

    /* The finished job no longer holds its key. */
    char again[JM_JOB_ID_SIZE];
    create_ok(f, "FL", NULL, &o, again);
    assert_string_not_equal(again, id);

    /* Unknown and malformed ids. */
    char unknown[JM_JOB_ID_SIZE];
    snprintf(unknown, sizeof unknown, "%s", id);
    unknown[5] = unknown[5] == '0' ? '1' : '0';
    j = (jm_job *)1;
    assert_int_equal(jm_get(f->m, unknown, &j), JM_ENOTFOUND);
    assert_null(j);
    assert_int_equal(jm_get(f->m, "nonsense", &j), JM_EINVAL);
    assert_int_equal(jm_get(f->m, NULL, &j), JM_EINVAL);
    assert_int_equal(jm_get(f->m, id, NULL), JM_EINVAL);
}

/* A count by one status alone takes another way when the status holds
 * most of the table (the total less the rest): both ways agree with a
 * plain count, on both sides of the switch. */
static void count_of_a_dominant_status(void **state)
{
    fx *f = *state;
    enum { BATCH = 1000, N = 70000 };
    static jm_new_job jobs[BATCH];
    static char ids[BATCH][JM_JOB_ID_SIZE];
    for (int i = 0; i < BATCH; i++)
        jobs[i] = (jm_new_job){i % 2 ? "FL" : "CL", NULL, JM_CREATE_OPTS_INIT};
    for (int b = 0; b < N / BATCH; b++)
        assert_int_equal(jm_create_many(f->m, jobs, BATCH, ids), JM_OK);
    /* 56 000 completed, 7 000 failed, 7 000 cancelled. */
    tu_sql_exec(f->db, "UPDATE jm_jobs SET status = CASE seq % 10 WHEN 0 THEN 5 WHEN 1 THEN 6 "
                       "ELSE 4 END, finished_at = 1");
    static const jm_status st[] = {JM_STATUS_COMPLETED, JM_STATUS_FAILED, JM_STATUS_CANCELLED,
                                   JM_STATUS_QUEUED};
    static const int64_t want[] = {56000, 7000, 7000, 0};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
            jm_filter flt = JM_FILTER_INIT;
            flt.statuses = JM_STATUS_BIT(st[i]);
            int64_t n = -1;
            assert_int_equal(jm_count(f->m, &flt, &n), JM_OK);
            char sql[96];
            snprintf(sql, sizeof sql, "SELECT count(*) FROM jm_jobs WHERE status = %d", (int)st[i]);
            assert_int_equal(n, tu_sql_int(f->db, sql));
            if (round == 0)
                assert_int_equal(n, want[i]);
            /* With a second filter the plain count runs: same answer. */
            flt.type = "FL";
            int64_t fl = -1;
            assert_int_equal(jm_count(f->m, &flt, &fl), JM_OK);
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM jm_jobs WHERE status = %d AND type = 'FL'", (int)st[i]);
            assert_int_equal(fl, tu_sql_int(f->db, sql));
        }
        /* Fewer completed than the switch point: the direct count again. */
        tu_sql_exec(f->db, "DELETE FROM jm_jobs WHERE status = 4 AND seq % 10 < 8");
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(filter_by_status),
        T(filter_by_type_namespace_key),
        T(filter_by_creation_time),
        T(filters_combined),
        T(keyset_pagination),
        T(limits),
        T(cursor_of_pruned_job),
        T(get_every_field_after_lifecycle),
        T(count_of_a_dominant_status),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
