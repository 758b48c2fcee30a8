/*
 * Bad input on every public function: NULL pointers, malformed and unknown
 * ids, wrong types, invalid or oversize JSON, bad options, filters and
 * configurations. Each call returns its documented code, leaves a detailed
 * message in jm_last_error(), and changes nothing in the database.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "script_fx.h"
#include "test_util.h"

/* The fixture (fake clock, scripted executor "TS", helpers) is shared:
 * tests/support/script_fx.h. */

/* ------------------------------------------------------------------------
 * Seeded database and "nothing changed" checks
 * ------------------------------------------------------------------------ */

static char g_queued[JM_JOB_ID_SIZE];  /* queued, no key */
static char g_failed[JM_JOB_ID_SIZE];  /* failed */
static char g_held[JM_JOB_ID_SIZE];    /* new, key "held", namespace "ns1" */

#define UNKNOWN_TS "TS-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f"
#define UNKNOWN_ZZ "ZZ-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f"

static int bi_setup(void **state)
{
    fx_setup(state);
    fx *f = *state;
    jm_decision d = jm_decision_failed("broken", "trace");
    script_set(&f->s, 1, &d);
    create_ok(f, "TS", "{\"n\":1}", NULL, g_failed);
    assert_int_equal(run1(f), 1);
    script_reset(&f->s);
    create_ok(f, "TS", "{\"n\":2}", NULL, g_queued);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = "held";
    o.namespace_id = "ns1";
    o.run_at_ms = T0 + 3600000;
    create_ok(f, "TS", "{\"n\":3}", &o, g_held);
    tu_clock_advance(&f->clock, 10); /* a write now would show in updated_at */
    return 0;
}

static void put_str(FILE *out, const char *s)
{
    fprintf(out, "%s|", s ? s : "(null)");
}

/* Every job with every field, as text. */
static char *dump(fx *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    jm_filter fl = JM_FILTER_INIT;
    fl.limit = JM_LIST_MAX_LIMIT;
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, &fl, &l), JM_OK);
    for (size_t i = 0; i < jm_job_list_count(l); i++) {
        const jm_job *j = jm_job_list_at(l, i);
        put_str(out, jm_job_id(j));
        put_str(out, jm_job_type(j));
        put_str(out, jm_status_name(jm_job_status(j)));
        put_str(out, jm_job_namespace(j));
        put_str(out, jm_job_params(j));
        put_str(out, jm_job_idempotency_key(j));
        put_str(out, jm_job_message(j));
        put_str(out, jm_job_exception_trace(j));
        put_str(out, jm_job_result(j));
        put_str(out, jm_job_checkpoint(j));
        fprintf(out, "%g|%d|%d|%d|%lld|%lld|%lld|%lld|%lld|%d|%d\n", jm_job_progress(j),
                jm_job_retry_count(j), jm_job_max_retries(j), jm_job_priority(j),
                (long long)jm_job_created_at(j), (long long)jm_job_updated_at(j),
                (long long)jm_job_started_at(j), (long long)jm_job_finished_at(j),
                (long long)jm_job_run_at(j), jm_job_attempts(j), jm_job_cancel_requested(j));
    }
    jm_job_list_free(l);
    fclose(out);
    return buf;
}

static void assert_unchanged(fx *f, const char *before)
{
    char *now = dump(f);
    if (strcmp(before, now) != 0)
        fail_msg("database changed:\nbefore:\n%s\nafter:\n%s", before, now);
    free(now);
}

/* A call must return `want`; a failure must leave a message. */
#define EXPECT_RC(call, want)                                                             \
    do {                                                                                  \
        int rc_ = (call);                                                                 \
        int want_ = (want);                                                               \
        if (rc_ != want_)                                                                 \
            fail_msg("%s = %s, expected %s (%s)", #call, jm_err_name(rc_),              \
                     jm_err_name(want_), jm_last_error());                                \
        assert_non_null(jm_last_error());                                                 \
        if (want_ != JM_OK)                                                               \
            assert_true(jm_last_error()[0] != '\0');                                      \
    } while (0)

/* ------------------------------------------------------------------------
 * NULL pointers
 * ------------------------------------------------------------------------ */

static void test_null_pointers(void **state)
{
    fx *f = *state;
    char *before = dump(f);
    char id[JM_JOB_ID_SIZE];
    jm_job *j = NULL;
    jm_job_list *l = NULL;
    int64_t n = 0;
    jm_new_job nj = {"TS", "{}", JM_CREATE_OPTS_INIT};
    char ids[1][JM_JOB_ID_SIZE];
    jm_manager *m2 = NULL;

    EXPECT_RC(jm_create(NULL, "TS", "{}", NULL, id), JM_EINVAL);
    EXPECT_RC(jm_create(f->m, NULL, "{}", NULL, id), JM_EINVAL);
    EXPECT_RC(jm_create(f->m, "TS", "{}", NULL, NULL), JM_EINVAL);
    EXPECT_RC(jm_create_many(NULL, &nj, 1, ids), JM_EINVAL);
    EXPECT_RC(jm_create_many(f->m, NULL, 1, ids), JM_EINVAL);
    EXPECT_RC(jm_create_many(f->m, &nj, 1, NULL), JM_EINVAL);
    nj.type = NULL;
    EXPECT_RC(jm_create_many(f->m, &nj, 1, ids), JM_EINVAL);

    EXPECT_RC(jm_get(NULL, g_queued, &j), JM_EINVAL);
    EXPECT_RC(jm_get(f->m, NULL, &j), JM_EINVAL);
    EXPECT_RC(jm_get(f->m, g_queued, NULL), JM_EINVAL);
    assert_null(j);
    EXPECT_RC(jm_list(NULL, NULL, &l), JM_EINVAL);
    EXPECT_RC(jm_list(f->m, NULL, NULL), JM_EINVAL);
    assert_null(l);
    EXPECT_RC(jm_count(NULL, NULL, &n), JM_EINVAL);
    EXPECT_RC(jm_count(f->m, NULL, NULL), JM_EINVAL);
    EXPECT_RC(jm_cancel(NULL, g_queued), JM_EINVAL);
    EXPECT_RC(jm_cancel(f->m, NULL), JM_EINVAL);
    EXPECT_RC(jm_retry(NULL, g_failed), JM_EINVAL);
    EXPECT_RC(jm_retry(f->m, NULL), JM_EINVAL);
    EXPECT_RC(jm_prune(NULL, now_of(f) + 1000, &n), JM_EINVAL);

    jm_executor ex = script_executor("QQ", 1);
    EXPECT_RC(jm_register(NULL, &ex, NULL), JM_EINVAL);
    EXPECT_RC(jm_register(f->m, NULL, NULL), JM_EINVAL);

    EXPECT_RC(jm_start(NULL, 1), JM_EINVAL);
    EXPECT_RC(jm_run(NULL, 1), JM_EINVAL);
    int ran = -1;
    EXPECT_RC(jm_run_once(NULL, 1, &ran), JM_EINVAL);
    EXPECT_RC(jm_recover(NULL, &ran), JM_EINVAL);

    jm_config cfg = f->cfg;
    EXPECT_RC(jm_open(NULL, &m2), JM_EINVAL);
    EXPECT_RC(jm_open(&cfg, NULL), JM_EINVAL);
    assert_null(m2);

    char t[3];
    EXPECT_RC(jm_job_id_parse(NULL, t), JM_EINVAL);
    jm_status st;
    EXPECT_RC(jm_status_parse(NULL, &st), JM_EINVAL);
    EXPECT_RC(jm_status_parse("new", NULL), JM_EINVAL);

    /* Every free/close function accepts NULL. */
    jm_close(NULL);
    jm_job_free(NULL);
    jm_job_list_free(NULL);
    jm_free(NULL);

    /* Optional out-parameters may be NULL. */
    EXPECT_RC(jm_list(f->m, NULL, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 3);
    assert_null(jm_job_list_at(l, 3));
    assert_null(jm_job_list_at(l, (size_t)-1));
    jm_job_list_free(l);
    EXPECT_RC(jm_count(f->m, NULL, &n), JM_OK);
    assert_true(n == 3);
    EXPECT_RC(jm_recover(f->m, NULL), JM_OK);

    assert_unchanged(f, before);
    /* The register calls above registered nothing. */
    EXPECT_RC(jm_create(f->m, "QQ", "{}", NULL, id), JM_ENOEXEC);
    free(before);
}

/* ------------------------------------------------------------------------
 * Ids
 * ------------------------------------------------------------------------ */

static const char *const MALFORMED_IDS[] = {
    "",
    "FL",
    "FL-",
    "FL-xyz",
    "fl-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",  /* lower-case type */
    "Fl-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
    "FLX-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f", /* 3-letter type */
    "F-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
    "FL-0B6C2F3E-8A1D-4C5E-9F70-1A2B3C4D5E6F",  /* upper-case hex */
    "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5E6f",  /* one upper-case digit */
    "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6",   /* 38 chars */
    "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f0", /* 40 chars */
    "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6g",  /* not hex */
    "FL_0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",  /* wrong separator */
    "FL-0b6c2f3e8-a1d-4c5e-9f70-1a2b3c4d5e6f",  /* hyphen moved */
    "FL-0b6c2f3e-8a1d-4c5e-9f70_1a2b3c4d5e6f",
    "FL-0b6c2f3e08a1d04c5e09f7001a2b3c4d5e6f",  /* no hyphens */
    " FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6",  /* leading space */
    "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f\n",
    "F1-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
    "12-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f",
    "FL-0b6c2f3e-8a1d-4c5e-9f70-1a2b3c4d5e6f' OR '1'='1",
};

#define N_MALFORMED (sizeof MALFORMED_IDS / sizeof MALFORMED_IDS[0])

static void test_malformed_ids(void **state)
{
    fx *f = *state;
    char *before = dump(f);
    for (size_t i = 0; i < N_MALFORMED; i++) {
        const char *bad = MALFORMED_IDS[i];
        jm_job *j = NULL;
        int rc = jm_get(f->m, bad, &j);
        if (rc != JM_EINVAL)
            fail_msg("jm_get('%s') = %s, expected EINVAL", bad, jm_err_name(rc));
        assert_null(j);
        assert_true(jm_last_error()[0] != '\0');
        EXPECT_RC(jm_cancel(f->m, bad), JM_EINVAL);
        EXPECT_RC(jm_retry(f->m, bad), JM_EINVAL);
        EXPECT_RC(jm_job_id_parse(bad, NULL), JM_EINVAL);
        jm_filter fl = JM_FILTER_INIT;
        fl.after_id = bad;
        jm_job_list *l = NULL;
        EXPECT_RC(jm_list(f->m, &fl, &l), JM_EINVAL);
        assert_null(l);
    }
    assert_unchanged(f, before);
    free(before);
}

static void test_unknown_ids(void **state)
{
    fx *f = *state;
    char *before = dump(f);
    const char *unknown[] = {UNKNOWN_TS, UNKNOWN_ZZ};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(jm_job_id_parse(unknown[i], NULL), JM_OK);
        jm_job *j = NULL;
        EXPECT_RC(jm_get(f->m, unknown[i], &j), JM_ENOTFOUND);
        assert_null(j);
        EXPECT_RC(jm_cancel(f->m, unknown[i]), JM_ENOTFOUND);
        EXPECT_RC(jm_retry(f->m, unknown[i]), JM_ENOTFOUND);
        jm_filter fl = JM_FILTER_INIT;
        fl.after_id = unknown[i];
        jm_job_list *l = NULL;
        EXPECT_RC(jm_list(f->m, &fl, &l), JM_ENOTFOUND);
        assert_null(l);
    }
    assert_unchanged(f, before);
    free(before);
}

/* ------------------------------------------------------------------------
 * Types, JSON, sizes, validation
 * ------------------------------------------------------------------------ */

static void test_wrong_types(void **state)
{
    fx *f = *state;
    char *before = dump(f);
    static const char *const malformed[] = {"fl", "F", "FLX", "", "Ts", "T1", "T-", " TS"};
    char id[JM_JOB_ID_SIZE];
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        int rc = jm_create(f->m, malformed[i], "{}", NULL, id);
        if (rc != JM_EINVAL)
            fail_msg("type '%s': %s, expected EINVAL", malformed[i], jm_err_name(rc));
        jm_filter fl = JM_FILTER_INIT;
        fl.type = malformed[i];
        jm_job_list *l = NULL;
        int64_t n = 0;
        EXPECT_RC(jm_list(f->m, &fl, &l), JM_EINVAL);
        EXPECT_RC(jm_count(f->m, &fl, &n), JM_EINVAL);
    }
    EXPECT_RC(jm_create(f->m, NULL, "{}", NULL, id), JM_EINVAL);
    EXPECT_RC(jm_create(f->m, "ZZ", "{}", NULL, id), JM_ENOEXEC);
    EXPECT_RC(jm_create(f->m, "FL", "{}", NULL, id), JM_ENOEXEC); /* built-ins not registered */
    /* A well-formed but unused type is a valid filter that matches nothing. */
    jm_filter fl = JM_FILTER_INIT;
    fl.type = "ZZ";
    int64_t n = -1;
    EXPECT_RC(jm_count(f->m, &fl, &n), JM_OK);
    assert_true(n == 0);
    assert_unchanged(f, before);
    free(before);
}

static void test_invalid_json(void **state)
{
    fx *f = *state;
    char *before = dump(f);
    static const char *const bad[] = {"{",   "nope", "",     "{\"a\":1,}", "{\"a\" 1}", "}",
                                      "[1]", "3",    "\"s\"", "null",      "true",      "[]",
                                      "{}{}", "{\"a\":\"\xff\"}"};
    char id[JM_JOB_ID_SIZE];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = jm_create(f->m, "TS", bad[i], NULL, id);
        if (rc != JM_EJSON)
            fail_msg("params '%s': %s, expected EJSON", bad[i], jm_err_name(rc));
        assert_true(jm_last_error()[0] != '\0');
    }
    assert_unchanged(f, before);
    free(before);
}

/* A compact JSON object of exactly `size` bytes. */
static char *object_of_size(size_t size)
{
    /* {"k":"aaaa"} : 8 bytes of framing */
    char *s = malloc(size + 1);
    assert_non_null(s);
    memcpy(s, "{\"k\":\"", 6);
    memset(s + 6, 'a', size - 8);
    memcpy(s + size - 2, "\"}", 2);
    s[size] = '\0';
    return s;
}

static void test_params_too_big(void **state)
{
    fx *f = *state;
    char *before = dump(f);
    char id[JM_JOB_ID_SIZE];
    char *over = object_of_size(JM_MAX_PARAMS_BYTES + 1);
    char *huge = object_of_size(4 * JM_MAX_PARAMS_BYTES);
    EXPECT_RC(jm_create(f->m, "TS", over, NULL, id), JM_ETOOBIG);
    EXPECT_RC(jm_create(f->m, "TS", huge, NULL, id), JM_ETOOBIG);
    assert_unchanged(f, before);

    /* At the limit: accepted and stored whole. */
    char *exact = object_of_size(JM_MAX_PARAMS_BYTES);
    EXPECT_RC(jm_create(f->m, "TS", exact, NULL, id), JM_OK);
    cJSON *a = cJSON_Parse(exact), *b = cJSON_Parse(jm_job_params(getj(f, id)));
    assert_true(cJSON_Compare(a, b, 1));
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(over);
    free(huge);
    free(exact);
    free(before);
}

static int refuse_bad(void *self, const cJSON *params, char *err, size_t errlen)
{
    int *calls = self;
    (*calls)++;
    if (!cJSON_IsObject(params))
        return snprintf(err, errlen, "params not an object"), 1;
    if (cJSON_GetObjectItemCaseSensitive(params, "bad")) {
        snprintf(err, errlen, "param 'bad' is not allowed here");
        return 1;
    }
    return 0;
}

static jm_decision noop_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed(NULL, NULL);
}

static void test_validate_refuses(void **state)
{
    fx *f = *state;
    static int calls;
    calls = 0;
    jm_executor ex = {0};
    ex.version = JM_EXECUTOR_VERSION;
    ex.type = "VA";
    ex.name = "validating";
    ex.validate = refuse_bad;
    ex.execute = noop_execute;
    assert_int_equal(jm_register(f->m, &ex, &calls), JM_OK);
    char *before = dump(f);
    char id[JM_JOB_ID_SIZE];
    EXPECT_RC(jm_create(f->m, "VA", "{\"bad\":1}", NULL, id), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "param 'bad' is not allowed here"));
    assert_int_equal(calls, 1);
    /* Invalid JSON never reaches validate(). */
    EXPECT_RC(jm_create(f->m, "VA", "{bad", NULL, id), JM_EJSON);
    assert_int_equal(calls, 1);
    /* Nor through create_many. */
    jm_new_job jobs[2] = {{"VA", "{}", JM_CREATE_OPTS_INIT}, {"VA", "{\"bad\":2}", JM_CREATE_OPTS_INIT}};
    char ids[2][JM_JOB_ID_SIZE];
    EXPECT_RC(jm_create_many(f->m, jobs, 2, ids), JM_EINVAL);
    assert_non_null(strstr(jm_last_error(), "param 'bad' is not allowed here"));
    assert_unchanged(f, before);
    EXPECT_RC(jm_create(f->m, "VA", "{\"good\":1}", NULL, id), JM_OK);
    free(before);
}

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */

static char *repeat_char(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_bad_create_opts(void **state)
{
    fx *f = *state;
    char *before = dump(f);
    char id[JM_JOB_ID_SIZE];
    char *long_key = repeat_char('k', JM_MAX_KEY_BYTES + 1);
    struct {
        const char *what;
        jm_create_opts o;
        int want;
    } rows[] = {
        {"version 99", {99, NULL, NULL, -1, 0, 0, NULL, NULL}, JM_EINVAL},
        {"version 0", {0, NULL, NULL, -1, 0, 0, NULL, NULL}, JM_EINVAL},
        {"max_retries 1001", {JM_CREATE_OPTS_VERSION, NULL, NULL, 1001, 0, 0, NULL, NULL}, JM_EINVAL},
        {"run_at -1", {JM_CREATE_OPTS_VERSION, NULL, NULL, -1, -1, 0, NULL, NULL}, JM_EINVAL},
        {"key empty", {JM_CREATE_OPTS_VERSION, NULL, "", -1, 0, 0, NULL, NULL}, JM_EINVAL},
        {"key invalid utf-8", {JM_CREATE_OPTS_VERSION, NULL, "k\xff\xfe", -1, 0, 0, NULL, NULL}, JM_EINVAL},
        {"key cut utf-8", {JM_CREATE_OPTS_VERSION, NULL, "k\xc3", -1, 0, 0, NULL, NULL}, JM_EINVAL},
        {"key 256 bytes", {JM_CREATE_OPTS_VERSION, NULL, long_key, -1, 0, 0, NULL, NULL}, JM_ETOOBIG},
        {"namespace 256 bytes", {JM_CREATE_OPTS_VERSION, long_key, NULL, -1, 0, 0, NULL, NULL}, JM_ETOOBIG},
        {"resource 256 bytes", {JM_CREATE_OPTS_VERSION, NULL, NULL, -1, 0, 0, long_key, NULL}, JM_ETOOBIG},
        {"resource empty", {JM_CREATE_OPTS_VERSION, NULL, NULL, -1, 0, 0, "", NULL}, JM_EINVAL},
        {"resource invalid utf-8", {JM_CREATE_OPTS_VERSION, NULL, NULL, -1, 0, 0, "r\xff", NULL}, JM_EINVAL},
        {"node_id empty", {JM_CREATE_OPTS_VERSION, NULL, NULL, -1, 0, 0, NULL, ""}, JM_EINVAL},
        {"node_id 256 bytes", {JM_CREATE_OPTS_VERSION, NULL, NULL, -1, 0, 0, NULL, long_key}, JM_ETOOBIG},
        /* The held key conflicts and reports its holder. */
        {"key held", {JM_CREATE_OPTS_VERSION, NULL, "held", -1, 0, 0, NULL, NULL}, JM_ECONFLICT},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        memset(id, 0, sizeof id);
        int rc = jm_create(f->m, "TS", "{}", &rows[i].o, id);
        if (rc != rows[i].want)
            fail_msg("%s: %s, expected %s", rows[i].what, jm_err_name(rc),
                     jm_err_name(rows[i].want));
        assert_true(jm_last_error()[0] != '\0');
        if (rows[i].want == JM_ECONFLICT)
            assert_string_equal(id, g_held);
    }
    assert_unchanged(f, before);

    /* The edges that are fine. */
    long_key[JM_MAX_KEY_BYTES] = '\0'; /* 255 bytes */
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = long_key;
    o.namespace_id = long_key;
    o.max_retries = JM_MAX_RETRIES_LIMIT;
    EXPECT_RC(jm_create(f->m, "TS", "{}", &o, id), JM_OK);
    const jm_job *j = getj(f, id);
    assert_string_equal(jm_job_idempotency_key(j), long_key);
    assert_string_equal(jm_job_namespace(j), long_key);
    assert_int_equal(jm_job_max_retries(j), JM_MAX_RETRIES_LIMIT);
    o = (jm_create_opts)JM_CREATE_OPTS_INIT;
    o.max_retries = -5; /* negative: the manager's default */
    o.idempotency_key = "k\xc3\xa9y \xe2\x82\xac";
    EXPECT_RC(jm_create(f->m, "TS", "{}", &o, id), JM_OK);
    assert_int_equal(jm_job_max_retries(getj(f, id)), JM_DEFAULT_MAX_RETRIES);
    free(long_key);
    free(before);
}

static void test_bad_filters(void **state)
{
    fx *f = *state;
    char *before = dump(f);
    struct {
        const char *what;
        jm_filter fl;
        int list_rc;
        int count_rc;
    } rows[] = {
        {"version 99", {99, 0, NULL, NULL, NULL, 0, 0, NULL, 0, 0}, JM_EINVAL, JM_EINVAL},
        {"limit -1", {JM_FILTER_VERSION, 0, NULL, NULL, NULL, 0, 0, NULL, -1, 0}, JM_EINVAL, JM_OK},
        {"limit 10001", {JM_FILTER_VERSION, 0, NULL, NULL, NULL, 0, 0, NULL, 10001, 0}, JM_EINVAL,
         JM_OK},
        {"after_id malformed", {JM_FILTER_VERSION, 0, NULL, NULL, NULL, 0, 0, "FL-xyz", 0, 0},
         JM_EINVAL, JM_OK},
        {"after_id unknown", {JM_FILTER_VERSION, 0, NULL, NULL, NULL, 0, 0, UNKNOWN_TS, 0, 0},
         JM_ENOTFOUND, JM_OK},
        {"type malformed", {JM_FILTER_VERSION, 0, "fl", NULL, NULL, 0, 0, NULL, 0, 0}, JM_EINVAL,
         JM_EINVAL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        jm_job_list *l = NULL;
        int rc = jm_list(f->m, &rows[i].fl, &l);
        if (rc != rows[i].list_rc)
            fail_msg("jm_list, %s: %s, expected %s", rows[i].what, jm_err_name(rc),
                     jm_err_name(rows[i].list_rc));
        assert_true(jm_last_error()[0] != '\0');
        if (rc == JM_OK)
            jm_job_list_free(l);
        else
            assert_null(l);
        /* jm_count ignores after_id and limit. */
        int64_t n = -1;
        rc = jm_count(f->m, &rows[i].fl, &n);
        if (rc != rows[i].count_rc)
            fail_msg("jm_count, %s: %s, expected %s", rows[i].what, jm_err_name(rc),
                     jm_err_name(rows[i].count_rc));
        if (rc == JM_OK)
            assert_true(n == 3);
    }

    /* The edges that are fine. */
    jm_filter fl = JM_FILTER_INIT;
    fl.limit = JM_LIST_MAX_LIMIT;
    jm_job_list *l = NULL;
    EXPECT_RC(jm_list(f->m, &fl, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 3);
    assert_false(jm_job_list_has_more(l));
    jm_job_list_free(l);
    /* Values are bound, never spliced into SQL. */
    fl = (jm_filter)JM_FILTER_INIT;
    fl.namespace_id = "ns1' OR '1'='1";
    fl.idempotency_key = "x\"; DROP TABLE jobs; --";
    int64_t n = -1;
    EXPECT_RC(jm_count(f->m, &fl, &n), JM_OK);
    assert_true(n == 0);
    assert_unchanged(f, before);
    free(before);
}

/* ------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------ */

static void test_bad_config(void **state)
{
    if (tu_skip_unless_sqlite("the config checks are the same on both stores"))
        return;
    fx *f = *state;
    char *before = dump(f);
    jm_manager *m2 = NULL;
    char *nodir = tu_path(f->dir, "no/such/dir/jobs.db");
    char *other = tu_path(f->dir, "other.db");
    jm_config c;
#define BAD_CFG(stmt, want)                                                              \
    do {                                                                                 \
        c = tu_config(other);                                                            \
        stmt;                                                                            \
        m2 = NULL;                                                                       \
        int rc_ = jm_open(&c, &m2);                                                      \
        if ((want) == JM_OK ? rc_ == JM_OK : rc_ != (want))                              \
            fail_msg("jm_open with %s: %s, expected %s", #stmt, jm_err_name(rc_),       \
                     jm_err_name(want));                                                 \
        assert_true(jm_last_error()[0] != '\0');                                         \
        assert_null(m2);                                                                 \
    } while (0)

    BAD_CFG(c.db_path = NULL, JM_EINVAL);
    BAD_CFG(c.db_path = "", JM_EINVAL);
    BAD_CFG(c.version = 99, JM_EINVAL);
    BAD_CFG(c.version = 0, JM_EINVAL);
    BAD_CFG(c.max_retries = -1, JM_EINVAL);
    BAD_CFG(c.max_retries = JM_MAX_RETRIES_LIMIT + 1, JM_EINVAL);
    BAD_CFG(c.lease_ms = 0, JM_EINVAL);
    BAD_CFG(c.lease_ms = -5, JM_EINVAL);
    BAD_CFG(c.backoff_jitter = 1.5, JM_EINVAL);
    BAD_CFG(c.backoff_jitter = -0.1, JM_EINVAL);
    BAD_CFG(c.backoff_base_ms = -1, JM_EINVAL);
    BAD_CFG(c.recovery = (jm_recovery_policy)7, JM_EINVAL);
    /* Not JM_OK; which code (EIO, EDB) is the library's choice. */
    BAD_CFG(c.db_path = nodir, JM_OK);
#undef BAD_CFG
    /* None of them created the file. */
    assert_int_equal(access(other, F_OK), -1);

    /* A file that is not a jobs database. */
    FILE *junk = fopen(other, "w");
    assert_non_null(junk);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database at all\n", junk);
    fclose(junk);
    c = tu_config(other);
    m2 = NULL;
    EXPECT_RC(jm_open(&c, &m2), JM_EDB);
    assert_null(m2);

    free(nodir);
    free(other);
    assert_unchanged(f, before);
    free(before);
}

static void test_register_errors(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    jm_executor ex = script_executor("QQ", 1);
    ex.version = 99;
    EXPECT_RC(jm_register(f->m, &ex, NULL), JM_EINVAL);
    ex.version = 0;
    EXPECT_RC(jm_register(f->m, &ex, NULL), JM_EINVAL);
    ex = script_executor("QQ", 1);
    ex.execute = NULL;
    EXPECT_RC(jm_register(f->m, &ex, NULL), JM_EINVAL);
    static const char *const bad_types[] = {"fl", "F", "FLX", "", "q1", "Q-"};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        ex = script_executor(bad_types[i], 1);
        int rc = jm_register(f->m, &ex, NULL);
        if (rc != JM_EINVAL)
            fail_msg("register '%s': %s, expected EINVAL", bad_types[i], jm_err_name(rc));
    }
    ex = script_executor(NULL, 1);
    EXPECT_RC(jm_register(f->m, &ex, NULL), JM_EINVAL);
    /* Nothing was registered for QQ. */
    EXPECT_RC(jm_create(f->m, "QQ", "{}", NULL, id), JM_ENOEXEC);

    /* Duplicate type: refused, and the first registration stays. */
    ex = script_executor("TS", 0);
    EXPECT_RC(jm_register(f->m, &ex, NULL), JM_ECONFLICT);
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.runs, 1); /* g_queued ran on the original executor */
    assert_string_equal(f->s.id[0], g_queued);
}

static void test_start_bad_worker_counts(void **state)
{
    fx *f = *state;
    char *before = dump(f);
    EXPECT_RC(jm_start(f->m, 0), JM_EINVAL);
    EXPECT_RC(jm_start(f->m, -1), JM_EINVAL);
    EXPECT_RC(jm_start(f->m, JM_MAX_WORKERS + 1), JM_EINVAL);
    EXPECT_RC(jm_run(f->m, 0), JM_EINVAL);
    EXPECT_RC(jm_run(f->m, JM_MAX_WORKERS + 1), JM_EINVAL);
    /* Nothing started: stopping is a no-op and nothing ran. */
    EXPECT_RC(jm_stop(f->m, 0), JM_OK);
    assert_int_equal(f->s.runs, 0);
    assert_unchanged(f, before);
    free(before);
}

/* ------------------------------------------------------------------------
 * jm_create_many
 * ------------------------------------------------------------------------ */

static void test_create_many_bad(void **state)
{
    fx *f = *state;
    char *before = dump(f);
    char ids[4][JM_JOB_ID_SIZE];
    jm_new_job good = {"TS", "{\"ok\":1}", JM_CREATE_OPTS_INIT};
    jm_new_job jobs[4] = {good, good, good, good};

    EXPECT_RC(jm_create_many(f->m, jobs, 0, ids), JM_EINVAL);
    {
        size_t n = (size_t)JM_MAX_CREATE_MANY + 1;
        jm_new_job *many = calloc(n, sizeof *many);
        char(*many_ids)[JM_JOB_ID_SIZE] = calloc(n, JM_JOB_ID_SIZE);
        assert_non_null(many);
        assert_non_null(many_ids);
        for (size_t i = 0; i < n; i++)
            many[i] = good;
        EXPECT_RC(jm_create_many(f->m, many, n, many_ids), JM_EINVAL);
        free(many);
        free(many_ids);
    }

    struct {
        const char *what;
        jm_new_job bad;
        int want;
    } rows[] = {
        {"invalid JSON", {"TS", "{", JM_CREATE_OPTS_INIT}, JM_EJSON},
        {"JSON array", {"TS", "[1]", JM_CREATE_OPTS_INIT}, JM_EJSON},
        {"unknown type", {"ZZ", "{}", JM_CREATE_OPTS_INIT}, JM_ENOEXEC},
        {"malformed type", {"fl", "{}", JM_CREATE_OPTS_INIT}, JM_EINVAL},
        {"opts version", {"TS", "{}", {99, NULL, NULL, -1, 0, 0, NULL, NULL}}, JM_EINVAL},
        {"empty key", {"TS", "{}", {JM_CREATE_OPTS_VERSION, NULL, "", -1, 0, 0, NULL, NULL}}, JM_EINVAL},
        {"held key", {"TS", "{}", {JM_CREATE_OPTS_VERSION, NULL, "held", -1, 0, 0, NULL, NULL}}, JM_ECONFLICT},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        jobs[2] = rows[i].bad;
        memset(ids, 0, sizeof ids);
        int rc = jm_create_many(f->m, jobs, 4, ids);
        if (rc != rows[i].want)
            fail_msg("create_many with %s: %s, expected %s", rows[i].what, jm_err_name(rc),
                     jm_err_name(rows[i].want));
        assert_true(jm_last_error()[0] != '\0');
        if (rc == JM_ECONFLICT)
            assert_string_equal(ids[2], g_held);
        assert_true(count_all(f) == 3);
    }

    /* Oversize parameters. */
    char *over = object_of_size(JM_MAX_PARAMS_BYTES + 1);
    jobs[2] = good;
    jobs[3].params_json = over;
    EXPECT_RC(jm_create_many(f->m, jobs, 4, ids), JM_ETOOBIG);
    free(over);

    /* Two jobs of the batch with the same key. */
    jobs[3] = good;
    jobs[1].opts.idempotency_key = "twice";
    jobs[3].opts.idempotency_key = "twice";
    EXPECT_RC(jm_create_many(f->m, jobs, 4, ids), JM_ECONFLICT);
    assert_true(count_all(f) == 3);
    assert_unchanged(f, before);

    /* Fixed, the batch goes through whole. */
    jobs[3].opts.idempotency_key = "once";
    EXPECT_RC(jm_create_many(f->m, jobs, 4, ids), JM_OK);
    assert_true(count_all(f) == 7);
    free(before);
}

/* ------------------------------------------------------------------------
 * Inside an executor
 * ------------------------------------------------------------------------ */

static jm_decision ctx_bad_step(script *s, jm_ctx *ctx, int run)
{
    (void)run;
    char id[JM_JOB_ID_SIZE];
    s->scratch[0] = jm_ctx_checkpoint(ctx, "{\"offset\":7}");
    s->scratch[1] = jm_ctx_checkpoint(ctx, "{");
    s->scratch[2] = jm_ctx_checkpoint(ctx, "");
    s->scratch[3] = jm_ctx_create_job(ctx, "ZZ", "{}", NULL, id);
    s->scratch[4] = jm_ctx_create_job(ctx, "fl", "{}", NULL, id);
    s->scratch[5] = jm_ctx_create_job(ctx, "TS", "nope", NULL, id);
    jm_ctx_progress(ctx, 7.5);  /* clamped */
    jm_ctx_progress(ctx, -1.0); /* clamped */
    return jm_decision_continue(NULL, 0);
}

static void test_context_bad_input(void **state)
{
    fx *f = *state;
    EXPECT_RC(jm_cancel(f->m, g_queued), JM_OK); /* only the executor's job runs */
    f->s.fn = ctx_bad_step;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    int64_t n0 = count_all(f);
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.scratch[0], JM_OK);
    assert_int_equal(f->s.scratch[1], JM_EJSON);
    assert_int_equal(f->s.scratch[2], JM_EJSON);
    assert_int_equal(f->s.scratch[3], JM_ENOEXEC);
    assert_int_equal(f->s.scratch[4], JM_EINVAL);
    assert_int_equal(f->s.scratch[5], JM_EJSON);
    assert_true(count_all(f) == n0);
    const jm_job *j = getj(f, id);
    assert_string_equal(jm_job_checkpoint(j), "{\"offset\":7}"); /* the bad ones changed nothing */
    assert_true(jm_job_progress(j) >= 0.0 && jm_job_progress(j) <= 1.0);
}

/* ------------------------------------------------------------------------
 * Names of codes and statuses, jm_last_error, the allocator
 * ------------------------------------------------------------------------ */

static void test_error_names(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *name;
        const char *text;
    } codes[] = {
#define ROW(name, value, text) {JM_##name, #name, text},
        JM_ERRNO_MAP(ROW)
#undef ROW
    };
    assert_int_equal(sizeof codes / sizeof codes[0], 14);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_string_equal(jm_strerror(codes[i].code), codes[i].text);
        assert_string_equal(jm_err_name(codes[i].code), codes[i].name);
        for (size_t k = 0; k < i; k++)
            assert_int_not_equal(codes[i].code, codes[k].code);
    }
    assert_int_equal(JM_OK, 0);
    assert_int_equal(JM_ESTOPPED, -13);
    static const int unknown[] = {1, -14, -999, 12345, INT32_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_string_equal(jm_strerror(unknown[i]), "unknown error");
        assert_non_null(jm_err_name(unknown[i]));
        assert_true(jm_err_name(unknown[i])[0] != '\0');
    }
}

static void test_status_names(void **state)
{
    (void)state;
    static const char *const names[] = {"new",       "queued", "running",  "retrying",
                                        "completed", "failed", "cancelled", "paused"};
    assert_int_equal(JM_STATUS_COUNT, 8);
    for (int s = 0; s < JM_STATUS_COUNT; s++) {
        assert_string_equal(jm_status_name((jm_status)s), names[s]);
        jm_status back = (jm_status)-1;
        assert_int_equal(jm_status_parse(names[s], &back), JM_OK);
        assert_int_equal(back, s);
        assert_int_equal(JM_STATUS_BIT(s), 1u << s);
    }
    assert_string_equal(jm_status_name((jm_status)8), "unknown");
    assert_string_equal(jm_status_name((jm_status)-1), "unknown");
    assert_string_equal(jm_status_name((jm_status)1000), "unknown");
    static const char *const bad[] = {"unknown", "", "QUEUED", "Queued", "queued ", " new",
                                      "cancel",  "done", "complete"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jm_status out = JM_STATUS_FAILED;
        EXPECT_RC(jm_status_parse(bad[i], &out), JM_EINVAL);
    }
}

static void test_last_error_details(void **state)
{
    fx *f = *state;
    assert_non_null(jm_last_error());
    jm_job *j = NULL;
    EXPECT_RC(jm_get(f->m, UNKNOWN_TS, &j), JM_ENOTFOUND);
    char *msg = strdup(jm_last_error());
    /* A success does not clear it. */
    EXPECT_RC(jm_get(f->m, g_queued, &j), JM_OK);
    jm_job_free(j);
    assert_string_equal(jm_last_error(), msg);
    free(msg);
    /* A refused transition says something. */
    EXPECT_RC(jm_retry(f->m, g_queued), JM_ESTATE);
    assert_true(strlen(jm_last_error()) > 3);
}

static void *counting_malloc(void *user, size_t n)
{
    (void)user;
    return malloc(n);
}

static void counting_free(void *user, void *p)
{
    (void)user;
    free(p);
}

static void test_bad_allocator(void **state)
{
    (void)state; /* no manager is open in this test */
    jm_allocator a;
    memset(&a, 0, sizeof a);
    a.malloc_fn = counting_malloc;
    a.free_fn = counting_free;
    a.version = 99;
    EXPECT_RC(jm_set_allocator(&a), JM_EINVAL);
    a.version = JM_ALLOCATOR_VERSION;
    a.malloc_fn = NULL;
    EXPECT_RC(jm_set_allocator(&a), JM_EINVAL);
    a.malloc_fn = counting_malloc;
    a.free_fn = NULL;
    EXPECT_RC(jm_set_allocator(&a), JM_EINVAL);
    EXPECT_RC(jm_set_allocator(NULL), JM_OK);
}

#define T(name) cmocka_unit_test_setup_teardown(name, bi_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_null_pointers),
        T(test_malformed_ids),
        T(test_unknown_ids),
        T(test_wrong_types),
        T(test_invalid_json),
        T(test_params_too_big),
        T(test_validate_refuses),
        T(test_bad_create_opts),
        T(test_bad_filters),
        T(test_bad_config),
        T(test_register_errors),
        T(test_start_bad_worker_counts),
        T(test_create_many_bad),
        T(test_context_bad_input),
        T(test_error_names),
        T(test_status_names),
        T(test_last_error_details),
        cmocka_unit_test(test_bad_allocator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
