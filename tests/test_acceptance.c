/*
 * The seed's acceptance scenarios AS1-AS33, one test each, adapted to
 * jobmgr's semantics (DESIGN.md): AS8 runs under both recovery policies.
 *
 * Single-threaded: jobs are driven with jm_run_once() and a fake clock, so
 * nothing sleeps. Every test gets a fresh temporary database.
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

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Strict UTF-8 check (no overlongs, no surrogates, ≤ U+10FFFF). */
static int valid_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s;
        int n;
        unsigned min;
        if (c < 0x80) {
            s++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            min = 0x80;
            c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            min = 0x800;
            c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            min = 0x10000;
            c &= 0x07;
        } else {
            return 0;
        }
        s++;
        for (int i = 0; i < n; i++, s++) {
            if ((*s & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (*s & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
    }
    return 1;
}

/* A string of `reps` copies of `unit`, malloc'd. */
static char *repeat(const char *unit, size_t reps)
{
    size_t u = strlen(unit);
    char *s = malloc(u * reps + 1);
    assert_non_null(s);
    for (size_t i = 0; i < reps; i++)
        memcpy(s + i * u, unit, u);
    s[u * reps] = '\0';
    return s;
}

#define TRUNC_MARK "...[truncated]"

/* ------------------------------------------------------------------------
 * Status transitions (AS1-AS10)
 * ------------------------------------------------------------------------ */

static void test_AS1_job_creation(void **state)
{
    fx *f = *state;
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.namespace_id = "app";
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{\"table\":\"events\"}", &o, id);

    assert_memory_equal(id, "TS-", 3);
    char type[3] = {0};
    assert_int_equal(jm_job_id_parse(id, type), JM_OK);
    assert_string_equal(type, "TS");

    const jm_job *j = getj(f, id);
    assert_string_equal(jm_job_id(j), id);
    assert_string_equal(jm_job_type(j), "TS");
    assert_int_equal(jm_job_status(j), JM_STATUS_QUEUED);
    assert_string_equal(jm_job_namespace(j), "app");
    assert_null(jm_job_idempotency_key(j));
    assert_null(jm_job_message(j));
    assert_null(jm_job_exception_trace(j));
    assert_null(jm_job_result(j));
    assert_int_equal(jm_job_retry_count(j), 0);
    assert_int_equal(jm_job_max_retries(j), JM_DEFAULT_MAX_RETRIES);
    assert_true(jm_job_created_at(j) == T0);
    assert_true(jm_job_started_at(j) == 0);
    assert_true(jm_job_finished_at(j) == 0);
    assert_true(jm_job_progress(j) == 0.0);
    assert_int_equal(jm_job_attempts(j), 0);
    cJSON *p = cJSON_Parse(jm_job_params(j));
    assert_non_null(p);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p, "table")), "events");
    cJSON_Delete(p);

    assert_true(count_all(f) == 1);
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, NULL, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 1);
    assert_string_equal(jm_job_id(jm_job_list_at(l, 0)), id);
    jm_job_list_free(l);
}

static void test_AS2_new_to_queued(void **state)
{
    fx *f = *state;
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.run_at_ms = T0 + 5000;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_NEW);
    assert_true(jm_job_run_at(getj(f, id)) == T0 + 5000);

    /* A run_at already past (or 0) gives a queued job at once. */
    char past[JM_JOB_ID_SIZE], zero[JM_JOB_ID_SIZE];
    jm_create_opts op = JM_CREATE_OPTS_INIT;
    op.run_at_ms = T0 - 1;
    create_ok(f, "TS", "{}", &op, past);
    create_ok(f, "TS", "{}", NULL, zero);
    assert_int_equal(jm_job_status(getj(f, past)), JM_STATUS_QUEUED);
    assert_int_equal(jm_job_status(getj(f, zero)), JM_STATUS_QUEUED);
    assert_int_equal(jm_cancel(f->m, past), JM_OK);
    assert_int_equal(jm_cancel(f->m, zero), JM_OK);

    /* Not due: a runner leaves it new. */
    assert_int_equal(run1(f), 0);
    tu_clock_advance(&f->clock, 4999);
    assert_int_equal(run1(f), 0);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_NEW);
    assert_int_equal(f->s.runs, 0);

    /* Due: it becomes queued and then runs. */
    tu_clock_advance(&f->clock, 1);
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.runs, 1);
    assert_string_equal(f->s.id[0], id);
    assert_int_equal(f->s.seen_status[0], JM_STATUS_RUNNING);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_true(jm_job_started_at(j) == T0 + 5000);
}

static void test_AS3_queued_to_running(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_QUEUED);
    tu_clock_advance(&f->clock, 7);
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.runs, 1);
    assert_int_equal(f->s.seen_status[0], JM_STATUS_RUNNING);
    assert_int_equal(f->s.ctx_status[0], JM_STATUS_RUNNING);
    const jm_job *j = getj(f, id);
    assert_true(jm_job_started_at(j) == T0 + 7);
    assert_string_equal(jm_job_node_id(j), "test-node");
    assert_int_equal(jm_job_attempts(j), 1);
}

static void test_AS4_running_to_completed(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_completed("Flushed 5 rows", "{\"rows_flushed\":5}");
    script_set(&f->s, 1, &d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    tu_clock_advance(&f->clock, 20);
    assert_int_equal(run1(f), 1);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_string_equal(jm_job_message(j), "Flushed 5 rows");
    assert_true(jm_job_progress(j) == 1.0);
    assert_true(jm_job_finished_at(j) == T0 + 20);
    assert_non_null(jm_job_result(j));
    cJSON *r = cJSON_Parse(jm_job_result(j));
    assert_non_null(r);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "rows_flushed")) == 5);
    cJSON_Delete(r);
    /* Nothing left to run. */
    assert_int_equal(run1(f), 0);
    assert_int_equal(f->s.runs, 1);
}

static void test_AS5_running_to_retrying(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_retry("Transient failure", "at write()", -1);
    script_set(&f->s, 1, &d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
    assert_int_equal(jm_job_retry_count(j), 1);
    assert_string_equal(jm_job_message(j), "Transient failure");
    assert_string_equal(jm_job_exception_trace(j), "at write()");
    assert_true(jm_job_run_at(j) == T0 + 10); /* tu_config: base 10, no jitter */
    assert_true(jm_job_finished_at(j) == 0);
}

static void test_AS6_retrying_to_running(void **state)
{
    fx *f = *state;
    jm_decision d[2] = {jm_decision_retry("Transient failure", NULL, -1),
                        jm_decision_completed("ok", NULL)};
    script_set(&f->s, 2, d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_RETRYING);

    /* Backoff not elapsed: stays retrying. */
    tu_clock_advance(&f->clock, 9);
    assert_int_equal(run1(f), 0);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_RETRYING);

    tu_clock_advance(&f->clock, 1);
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.runs, 2);
    assert_int_equal(f->s.seen_status[1], JM_STATUS_RUNNING);
    assert_int_equal(f->s.seen_retry[1], 1);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_int_equal(jm_job_retry_count(j), 1);
    assert_int_equal(jm_job_attempts(j), 2);
    assert_true(jm_job_started_at(j) == T0 + 10);
}

static void test_AS7_running_to_failed(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_failed("Table not found", "Error: no such table\n  at flush()");
    script_set(&f->s, 1, &d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    tu_clock_advance(&f->clock, 3);
    assert_int_equal(run1(f), 1);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_string_equal(jm_job_message(j), "Table not found");
    assert_string_equal(jm_job_exception_trace(j), "Error: no such table\n  at flush()");
    assert_int_equal(jm_job_retry_count(j), 0);
    assert_true(jm_job_finished_at(j) == T0 + 3);
    /* A failed decision is final: it does not run again. */
    tu_clock_advance(&f->clock, 100000);
    assert_int_equal(run1(f), 0);
    assert_int_equal(f->s.runs, 1);
}

/* AS8: a worker process claims a job and dies without finishing it. */
static jm_decision die_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    _exit(0);
}

static void crash_in_child(fx *f, const char *id)
{
    /* The parent's manager is closed first: no SQLite connection crosses
     * the fork. */
    jm_close(f->m);
    f->m = NULL;
    f->s.m = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        jm_manager *cm = NULL;
        if (jm_open(&f->cfg, &cm) != JM_OK)
            _exit(2);
        jm_executor ex = script_executor("TS", 1);
        ex.execute = die_execute;
        if (jm_register(cm, &ex, NULL) != JM_OK)
            _exit(3);
        int ran = 0;
        jm_run_once(cm, 1, &ran);
        _exit(4); /* execute() never ran */
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    (void)id;
}

static void test_AS8_crash_recovery_retry_policy(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    crash_in_child(f, id);

    f->cfg.recovery = JM_RECOVER_RETRY;
    fx_open(f); /* recovery runs at open */
    int n = -1;
    assert_int_equal(jm_recover(f->m, &n), JM_OK);
    assert_int_equal(n, 0); /* already recovered by jm_open */
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
    assert_int_equal(jm_job_retry_count(j), 1);
    assert_string_equal(jm_job_message(j), "Recovered after worker was lost");
    assert_int_equal(jm_job_attempts(j), 1);

    /* It runs again here and completes: nothing was lost. */
    tu_clock_advance(&f->clock, 3600000);
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.runs, 1);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_COMPLETED);
}

static void test_AS8_crash_recovery_fail_policy(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    crash_in_child(f, id);

    f->cfg.recovery = JM_RECOVER_FAIL;
    fx_open(f);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_string_equal(jm_job_message(j), "Server restarted");
    assert_true(jm_job_finished_at(j) != 0);
    int n = -1;
    assert_int_equal(jm_recover(f->m, &n), JM_OK);
    assert_int_equal(n, 0);
    tu_clock_advance(&f->clock, 3600000);
    assert_int_equal(run1(f), 0);
    assert_int_equal(f->s.runs, 0);
}

static void test_AS9_job_id_prefixes(void **state)
{
    fx *f = *state;
    static const char *types[] = {JM_FLUSH,     JM_CLEANUP, JM_RETENTION, JM_STREAM_EVICTION,
                                  JM_USER_CLEANUP, JM_COMPACT, JM_BACKUP,    JM_RESTORE};
    static const char *expect[] = {"FL", "CL", "RT", "SE", "UC", "CO", "BK", "RS"};
    for (size_t i = 0; i < 8; i++) {
        assert_string_equal(types[i], expect[i]);
        jm_executor ex = script_executor(types[i], 1);
        assert_int_equal(jm_register(f->m, &ex, &f->s), JM_OK);
    }
    for (size_t i = 0; i < 8; i++) {
        char id[JM_JOB_ID_SIZE];
        create_ok(f, types[i], "{}", NULL, id);
        char prefix[4];
        snprintf(prefix, sizeof prefix, "%s-", expect[i]);
        assert_memory_equal(id, prefix, 3);
        char t[3] = {0};
        assert_int_equal(jm_job_id_parse(id, t), JM_OK);
        assert_string_equal(t, expect[i]);
        assert_string_equal(jm_job_type(getj(f, id)), expect[i]);
        jm_filter fl = JM_FILTER_INIT;
        fl.type = expect[i];
        int64_t n = 0;
        assert_int_equal(jm_count(f->m, &fl, &n), JM_OK);
        assert_true(n == 1);
    }
    /* Each job runs on the executor of its type. */
    int ran = 0;
    assert_int_equal(jm_run_once(f->m, 100, &ran), JM_OK);
    assert_int_equal(ran, 8);
    for (int i = 0; i < 8; i++) {
        char t[3] = {0};
        assert_int_equal(jm_job_id_parse(f->s.id[i], t), JM_OK);
        assert_int_equal(jm_job_status(getj(f, f->s.id[i])), JM_STATUS_COMPLETED);
    }
}

static jm_decision log_step(script *s, jm_ctx *ctx, int run)
{
    (void)s;
    (void)run;
    jm_ctx_log(ctx, JM_LOG_INFO, "Starting flush operation");
    jm_ctx_log(ctx, JM_LOG_DEBUG, "batch %d of %d", 1, 3);
    jm_ctx_log(ctx, JM_LOG_ERROR, "Failed to write Parquet file");
    return jm_decision_completed("done", NULL);
}

static void test_AS10_job_logging_prefix(void **state)
{
    fx *f = *state;
    static tu_log log; /* outlives a failed assertion: teardown closes the manager */
    tu_log_init(&log);
    f->cfg.log_fn = tu_log_fn;
    f->cfg.log_user = &log;
    f->cfg.log_level = JM_LOG_DEBUG;
    fx_reopen(f);
    script_reset(&f->s);
    f->s.fn = log_step;

    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);

    char want[256];
    snprintf(want, sizeof want, "[%s] Starting flush operation\n", id);
    assert_non_null(strstr(log.all, want));
    snprintf(want, sizeof want, "[%s] batch 1 of 3\n", id);
    assert_non_null(strstr(log.all, want));
    snprintf(want, sizeof want, "[%s] Failed to write Parquet file\n", id);
    assert_non_null(strstr(log.all, want));

    /* Every line that is about this job begins with its prefix. */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "[%s] ", id);
    int about = 0;
    for (char *line = log.all; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)len, line);
        if (strstr(buf, id)) {
            about++;
            if (strncmp(buf, prefix, strlen(prefix)) != 0)
                fail_msg("log line about the job lacks its prefix: %s", buf);
        }
        line += len + (nl ? 1 : 0);
    }
    assert_true(about >= 3);

    /* Below the level: dropped. */
    f->cfg.log_level = JM_LOG_WARN;
    fx_reopen(f);
    script_reset(&f->s);
    f->s.fn = log_step;
    memset(log.all, 0, sizeof log.all);
    log.used = 0;
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    snprintf(want, sizeof want, "[%s] Starting flush operation", id);
    assert_null(strstr(log.all, want));
    snprintf(want, sizeof want, "[%s] Failed to write Parquet file", id);
    assert_non_null(strstr(log.all, want));

    jm_close(f->m);
    f->m = NULL;
    tu_log_destroy(&log);
}

/* ------------------------------------------------------------------------
 * Idempotency (AS11-AS16)
 * ------------------------------------------------------------------------ */

static jm_create_opts keyed(const char *key)
{
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.idempotency_key = key;
    return o;
}

static void test_AS11_duplicate_idempotency_key_rejected(void **state)
{
    fx *f = *state;
    jm_create_opts o = keyed("flush-app-events");
    char id1[JM_JOB_ID_SIZE], id2[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", &o, id1);
    memset(id2, 0, sizeof id2);
    assert_int_equal(jm_create(f->m, "TS", "{\"other\":1}", &o, id2), JM_ECONFLICT);
    assert_string_equal(id2, id1);
    assert_true(count_all(f) == 1);
    assert_string_equal(jm_job_idempotency_key(getj(f, id1)), "flush-app-events");
    assert_string_not_equal(jm_last_error(), "");
}

static void test_AS12_same_key_allowed_after_first_completes(void **state)
{
    fx *f = *state;
    jm_create_opts o = keyed("k");
    char id1[JM_JOB_ID_SIZE], id2[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", &o, id1);
    assert_int_equal(run1(f), 1);
    assert_int_equal(jm_job_status(getj(f, id1)), JM_STATUS_COMPLETED);
    create_ok(f, "TS", "{}", &o, id2);
    assert_string_not_equal(id1, id2);
    assert_int_equal(jm_job_status(getj(f, id2)), JM_STATUS_QUEUED);
    assert_true(count_all(f) == 2);
    /* And the new one blocks again. */
    char id3[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, "TS", "{}", &o, id3), JM_ECONFLICT);
    assert_string_equal(id3, id2);
}

static void test_AS13_idempotency_key_case_sensitive(void **state)
{
    fx *f = *state;
    jm_create_opts a = keyed("Key"), b = keyed("key"), c = keyed("KEY");
    char ida[JM_JOB_ID_SIZE], idb[JM_JOB_ID_SIZE], idc[JM_JOB_ID_SIZE], idx[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", &a, ida);
    create_ok(f, "TS", "{}", &b, idb);
    create_ok(f, "TS", "{}", &c, idc);
    assert_int_equal(jm_create(f->m, "TS", "{}", &b, idx), JM_ECONFLICT);
    assert_string_equal(idx, idb);
    assert_int_equal(jm_create(f->m, "TS", "{}", &a, idx), JM_ECONFLICT);
    assert_string_equal(idx, ida);
    assert_true(count_all(f) == 3);
}

static void test_AS14_jobs_without_key_always_allowed(void **state)
{
    fx *f = *state;
    char ids[5][JM_JOB_ID_SIZE];
    for (int i = 0; i < 5; i++) {
        create_ok(f, "TS", "{\"same\":true}", NULL, ids[i]);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(ids[i], ids[k]);
    }
    assert_true(count_all(f) == 5);
}

static jm_decision dup_while_running(script *s, jm_ctx *ctx, int run)
{
    (void)run;
    jm_create_opts o = keyed("active-key");
    char *other = s->user;
    memset(other, 0, JM_JOB_ID_SIZE);
    int rc = jm_create(s->m, "TS", "{}", &o, other);
    return rc == JM_ECONFLICT ? jm_decision_completed("conflict seen", NULL)
                              : jm_decision_failed(jm_ctx_strf(ctx, "rc %d", rc), NULL);
}

static void test_AS15_only_active_statuses_block(void **state)
{
    fx *f = *state;
    jm_create_opts o = keyed("active-key");
    char id[JM_JOB_ID_SIZE], other[JM_JOB_ID_SIZE];

    /* new */
    jm_create_opts later = o;
    later.run_at_ms = T0 + 60000;
    create_ok(f, "TS", "{}", &later, id);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_NEW);
    assert_int_equal(jm_create(f->m, "TS", "{}", &o, other), JM_ECONFLICT);
    assert_string_equal(other, id);
    assert_int_equal(jm_cancel(f->m, id), JM_OK);

    /* queued */
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_QUEUED);
    assert_int_equal(jm_create(f->m, "TS", "{}", &o, other), JM_ECONFLICT);
    assert_string_equal(other, id);

    /* running: tried from inside execute() */
    script_reset(&f->s);
    f->s.fn = dup_while_running;
    f->s.user = other;
    assert_int_equal(run1(f), 1);
    assert_string_equal(other, id);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_string_equal(jm_job_message(j), "conflict seen");

    /* retrying */
    jm_decision d = jm_decision_retry("again", NULL, -1);
    script_set(&f->s, 1, &d);
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(run1(f), 1);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_RETRYING);
    assert_int_equal(jm_create(f->m, "TS", "{}", &o, other), JM_ECONFLICT);
    assert_string_equal(other, id);

    /* 4 jobs with the key: cancelled, completed, retrying; only one active */
    jm_filter fl = JM_FILTER_INIT;
    fl.idempotency_key = "active-key";
    int64_t n = 0;
    assert_int_equal(jm_count(f->m, &fl, &n), JM_OK);
    assert_true(n == 3);
}

static void test_AS16_finished_jobs_do_not_block(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE], next[JM_JOB_ID_SIZE];

    /* completed */
    jm_create_opts o = keyed("k-completed");
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(run1(f), 1);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_COMPLETED);
    create_ok(f, "TS", "{}", &o, next);
    assert_int_equal(jm_cancel(f->m, next), JM_OK);

    /* failed */
    jm_decision d = jm_decision_failed("no", NULL);
    script_set(&f->s, 1, &d);
    o = keyed("k-failed");
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(run1(f), 1);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_FAILED);
    create_ok(f, "TS", "{}", &o, next);
    assert_string_not_equal(id, next);

    /* cancelled */
    o = keyed("k-cancelled");
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(jm_cancel(f->m, id), JM_OK);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_CANCELLED);
    create_ok(f, "TS", "{}", &o, next);
    assert_string_not_equal(id, next);
    assert_true(count_all(f) == 6);
}

/* ------------------------------------------------------------------------
 * Message and exception trace (AS17-AS25)
 * ------------------------------------------------------------------------ */

static void test_AS17_message_on_success(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_completed("Flushed 1234 rows to 2 files", "{\"rows\":1234}");
    script_set(&f->s, 1, &d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_null(jm_job_message(getj(f, id)));
    assert_int_equal(run1(f), 1);
    const jm_job *j = getj(f, id);
    assert_string_equal(jm_job_message(j), "Flushed 1234 rows to 2 files");
    assert_null(jm_job_exception_trace(j));
}

static jm_decision strf_step(script *s, jm_ctx *ctx, int run)
{
    (void)s;
    (void)run;
    return jm_decision_failed(jm_ctx_strf(ctx, "Failed on %s", "events"),
                              jm_ctx_strf(ctx, "IOError: %s (errno %d)", "disk full", 28));
}

static void test_AS18_exception_trace_on_failure(void **state)
{
    fx *f = *state;
    script_reset(&f->s);
    f->s.fn = strf_step; /* strings built with jm_ctx_strf are copied */
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_string_equal(jm_job_message(j), "Failed on events");
    assert_string_equal(jm_job_exception_trace(j), "IOError: disk full (errno 28)");
}

static void test_AS19_exception_trace_includes_stack(void **state)
{
    fx *f = *state;
    static const char *stack = "Error: write failed: No space left on device\n"
                               "  #0 0x00005555 in segment_write (segment.c:88)\n"
                               "  #1 0x00005556 in flush_batch (flush.c:142)\n"
                               "  #2 0x00005557 in flush_execute (flush.c:201)\n"
                               "\tcaused by: ENOSPC\n";
    jm_decision d[2] = {jm_decision_retry("write failed", stack, 0),
                        jm_decision_failed("write failed", stack)};
    script_set(&f->s, 2, d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    assert_string_equal(jm_job_exception_trace(getj(f, id)), stack);
    assert_int_equal(run1(f), 1);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_string_equal(jm_job_exception_trace(j), stack);
}

static void check_truncated(const char *got, size_t limit, const char *input_prefix_unit)
{
    assert_non_null(got);
    size_t len = strlen(got);
    assert_true(len <= limit);
    assert_true(len > limit - 16); /* cut near the limit, not far below it */
    assert_true(ends_with(got, TRUNC_MARK));
    assert_true(valid_utf8(got));
    /* The kept text is a prefix of the input. */
    size_t kept = len - strlen(TRUNC_MARK);
    size_t u = strlen(input_prefix_unit);
    for (size_t i = 0; i + u <= kept; i += u)
        assert_memory_equal(got + i, input_prefix_unit, u);
    assert_true(kept % u == 0); /* never half a character */
}

static void test_AS20_message_length_limit(void **state)
{
    fx *f = *state;
    char *ascii = repeat("a", 1500);
    char *exact = repeat("b", JM_MAX_MESSAGE_BYTES);
    char *multi = repeat("\xc3\xa9", 800); /* é: 1600 bytes */
    char *multi3 = repeat("\xe2\x82\xac", 400); /* €: 1200 bytes */
    jm_decision d[4] = {jm_decision_completed(ascii, NULL), jm_decision_completed(exact, NULL),
                        jm_decision_completed(multi, NULL), jm_decision_completed(multi3, NULL)};
    script_set(&f->s, 4, d);
    char id[4][JM_JOB_ID_SIZE];
    for (int i = 0; i < 4; i++) {
        create_ok(f, "TS", "{}", NULL, id[i]);
        assert_int_equal(run1(f), 1);
    }
    check_truncated(jm_job_message(getj(f, id[0])), JM_MAX_MESSAGE_BYTES, "a");
    assert_string_equal(jm_job_message(getj(f, id[1])), exact); /* at the limit: kept whole */
    check_truncated(jm_job_message(getj(f, id[2])), JM_MAX_MESSAGE_BYTES, "\xc3\xa9");
    check_truncated(jm_job_message(getj(f, id[3])), JM_MAX_MESSAGE_BYTES, "\xe2\x82\xac");
    free(ascii);
    free(exact);
    free(multi);
    free(multi3);
}

static void test_AS21_exception_trace_length_limit(void **state)
{
    fx *f = *state;
    char *ascii = repeat("x", 15000);
    char *exact = repeat("y", JM_MAX_TRACE_BYTES);
    char *multi = repeat("\xe2\x82\xac", 5000); /* 15000 bytes of € */
    char *emoji = repeat("\xf0\x9f\x98\x80", 3000); /* 12000 bytes of 😀 */
    jm_decision d[4] = {jm_decision_failed("m", ascii), jm_decision_failed("m", exact),
                        jm_decision_failed("m", multi), jm_decision_retry("m", emoji, -1)};
    script_set(&f->s, 4, d);
    char id[4][JM_JOB_ID_SIZE];
    for (int i = 0; i < 4; i++) {
        create_ok(f, "TS", "{}", NULL, id[i]);
        assert_int_equal(run1(f), 1);
    }
    check_truncated(jm_job_exception_trace(getj(f, id[0])), JM_MAX_TRACE_BYTES, "x");
    assert_string_equal(jm_job_exception_trace(getj(f, id[1])), exact);
    check_truncated(jm_job_exception_trace(getj(f, id[2])), JM_MAX_TRACE_BYTES, "\xe2\x82\xac");
    check_truncated(jm_job_exception_trace(getj(f, id[3])), JM_MAX_TRACE_BYTES,
                    "\xf0\x9f\x98\x80");
    free(ascii);
    free(exact);
    free(multi);
    free(emoji);
}

static void test_AS22_message_cleared_on_retry(void **state)
{
    fx *f = *state;
    jm_decision d[2] = {jm_decision_retry("first failure", NULL, 0),
                        jm_decision_completed(NULL, NULL)};
    script_set(&f->s, 2, d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    assert_string_equal(jm_job_message(getj(f, id)), "first failure");
    assert_int_equal(run1(f), 1);
    assert_int_equal(f->s.runs, 2);
    /* Cleared when the retry started running. */
    assert_int_equal(f->s.seen_status[1], JM_STATUS_RUNNING);
    assert_null(f->s.seen_message[1]);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_COMPLETED);
}

static void test_AS23_exception_trace_preserved_across_retries(void **state)
{
    fx *f = *state;
    jm_decision d[4] = {jm_decision_retry("m1", "trace-1", 0), jm_decision_retry("m2", NULL, 0),
                        jm_decision_retry("m3", "trace-3", 0), jm_decision_completed("ok", NULL)};
    script_set(&f->s, 4, d);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = 5;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", &o, id);
    for (int i = 0; i < 4; i++)
        assert_int_equal(run1(f), 1);
    assert_null(f->s.seen_trace[0]);
    assert_string_equal(f->s.seen_trace[1], "trace-1"); /* kept into the next run */
    assert_string_equal(f->s.seen_trace[2], "trace-1"); /* m2 gave none: kept */
    assert_string_equal(f->s.seen_trace[3], "trace-3");
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_int_equal(jm_job_retry_count(j), 3);
    assert_string_equal(jm_job_exception_trace(j), "trace-3");
}

static void test_AS24_message_visible_in_listing(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_completed("Evicted 10 rows", NULL);
    script_set(&f->s, 1, &d);
    char id[JM_JOB_ID_SIZE], other[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    create_ok(f, "TS", "{}", NULL, other);
    jm_filter fl = JM_FILTER_INIT;
    fl.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED);
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, &fl, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 1);
    assert_string_equal(jm_job_id(jm_job_list_at(l, 0)), id);
    assert_string_equal(jm_job_message(jm_job_list_at(l, 0)), "Evicted 10 rows");
    jm_job_list_free(l);
}

static void test_AS25_exception_trace_visible_in_listing(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_failed("boom", "Trace line 1\nTrace line 2");
    script_set(&f->s, 1, &d);
    char id[JM_JOB_ID_SIZE], other[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, other);
    assert_int_equal(jm_cancel(f->m, other), JM_OK);
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    jm_filter fl = JM_FILTER_INIT;
    fl.statuses = JM_STATUS_BIT(JM_STATUS_FAILED);
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, &fl, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 1);
    const jm_job *j = jm_job_list_at(l, 0);
    assert_string_equal(jm_job_id(j), id);
    assert_string_equal(jm_job_message(j), "boom");
    assert_string_equal(jm_job_exception_trace(j), "Trace line 1\nTrace line 2");
    jm_job_list_free(l);
}

/* ------------------------------------------------------------------------
 * Retry logic (AS26-AS30)
 * ------------------------------------------------------------------------ */

static void test_AS26_retry_count_increments(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_retry("again", NULL, 0);
    script_set(&f->s, 1, &d);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = 5;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(jm_job_max_retries(getj(f, id)), 5);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(run1(f), 1);
        const jm_job *j = getj(f, id);
        assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
        assert_int_equal(jm_job_retry_count(j), i);
        assert_int_equal(f->s.seen_retry[i - 1], i - 1);
    }
}

static void test_AS27_max_retries_default_enforced(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_retry("again", NULL, 0);
    script_set(&f->s, 1, &d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(jm_job_max_retries(getj(f, id)), 3);
    int total = 0;
    for (int i = 0; i < 10; i++)
        total += run1(f);
    assert_int_equal(total, 4); /* the first run and 3 retries */
    assert_int_equal(f->s.runs, 4);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_int_equal(jm_job_retry_count(j), 3);
    assert_string_equal(jm_job_message(j), "Max retries exceeded");

    /* The config's default applies to jobs without their own. */
    f->cfg.max_retries = 1;
    fx_reopen(f);
    script_set(&f->s, 1, &d);
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(jm_job_max_retries(getj(f, id)), 1);
    total = 0;
    for (int i = 0; i < 10; i++)
        total += run1(f);
    assert_int_equal(total, 2);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_FAILED);

    /* max_retries 0: the first retry decision fails the job. */
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = 0;
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(run1(f), 1);
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_int_equal(jm_job_retry_count(j), 0);
    assert_string_equal(jm_job_message(j), "Max retries exceeded");
}

/* Runs job `id` through retries, checking each decision's delay. */
static void expect_delays(fx *f, const char *id, const int64_t *delays, int n)
{
    for (int i = 0; i < n; i++) {
        int64_t now = now_of(f);
        assert_int_equal(run1(f), 1);
        const jm_job *j = getj(f, id);
        assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
        assert_int_equal(jm_job_retry_count(j), i + 1);
        int64_t got = jm_job_run_at(j) - now;
        if (got != delays[i])
            fail_msg("retry %d: delay %lld, expected %lld", i + 1, (long long)got,
                     (long long)delays[i]);
        tu_clock_advance(&f->clock, delays[i] - 1);
        assert_int_equal(run1(f), 0); /* not due yet */
        tu_clock_advance(&f->clock, 1);
    }
}

static void test_AS28_exponential_backoff(void **state)
{
    fx *f = *state;
    f->cfg.backoff_base_ms = 100;
    f->cfg.backoff_max_ms = 10000;
    f->cfg.backoff_jitter = 0;
    fx_reopen(f);
    jm_decision d = jm_decision_retry("again", NULL, -1);
    script_set(&f->s, 1, &d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    static const int64_t want[] = {100, 200, 400};
    expect_delays(f, id, want, 3);
    assert_int_equal(run1(f), 1);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_FAILED);

    /* Capped by backoff_max_ms. */
    f->cfg.backoff_max_ms = 250;
    fx_reopen(f);
    script_set(&f->s, 1, &d);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = 4;
    create_ok(f, "TS", "{}", &o, id);
    static const int64_t capped[] = {100, 200, 250, 250};
    expect_delays(f, id, capped, 4);
    assert_int_equal(jm_cancel(f->m, id), JM_OK); /* out of the way */

    /* Jitter only ever shortens a delay, by at most its fraction. */
    f->cfg.backoff_max_ms = 10000;
    f->cfg.backoff_jitter = 0.5;
    fx_reopen(f);
    script_set(&f->s, 1, &d);
    o.max_retries = 3;
    create_ok(f, "TS", "{}", &o, id);
    int64_t full = 100;
    for (int i = 0; i < 3; i++) {
        int64_t now = now_of(f);
        assert_int_equal(run1(f), 1);
        int64_t got = jm_job_run_at(getj(f, id)) - now;
        assert_true(got <= full);
        assert_true(got >= full / 2);
        tu_clock_advance(&f->clock, full);
        full *= 2;
    }
}

static void test_AS29_fails_after_max_retries(void **state)
{
    fx *f = *state;
    jm_decision d = jm_decision_retry("Connection refused", "tb: connect()", 0);
    script_set(&f->s, 1, &d);
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = 2;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(run1(f), 1);
    assert_int_equal(run1(f), 1);
    assert_int_equal(jm_job_status(getj(f, id)), JM_STATUS_RETRYING);
    tu_clock_advance(&f->clock, 5);
    assert_int_equal(run1(f), 1);
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_int_equal(jm_job_retry_count(j), 2);
    assert_string_equal(jm_job_message(j), "Max retries exceeded");
    assert_string_equal(jm_job_exception_trace(j), "tb: connect()");
    assert_true(jm_job_finished_at(j) == T0 + 5);
    tu_clock_advance(&f->clock, 100000);
    assert_int_equal(run1(f), 0);
    assert_int_equal(f->s.runs, 3);

    /* Without a trace, the last message becomes the trace. */
    d = jm_decision_retry("Connection refused", NULL, 0);
    script_set(&f->s, 1, &d);
    o.max_retries = 0;
    create_ok(f, "TS", "{}", &o, id);
    assert_int_equal(run1(f), 1);
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_FAILED);
    assert_string_equal(jm_job_message(j), "Max retries exceeded");
    assert_string_equal(jm_job_exception_trace(j), "Connection refused");
}

static void test_AS30_retry_with_custom_backoff(void **state)
{
    fx *f = *state;
    jm_decision d[3] = {jm_decision_retry("slow down", NULL, 5000),
                        jm_decision_retry("now", NULL, 0), jm_decision_completed("ok", NULL)};
    script_set(&f->s, 3, d);
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", "{}", NULL, id);
    assert_int_equal(run1(f), 1);
    /* Used as is, even above backoff_max_ms (100 in tu_config). */
    const jm_job *j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_RETRYING);
    assert_true(jm_job_run_at(j) == T0 + 5000);
    tu_clock_advance(&f->clock, 4999);
    assert_int_equal(run1(f), 0);
    tu_clock_advance(&f->clock, 1);
    assert_int_equal(run1(f), 1);
    j = getj(f, id);
    assert_true(jm_job_run_at(j) == T0 + 5000); /* backoff 0: due at once */
    assert_int_equal(run1(f), 1);
    j = getj(f, id);
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
    assert_int_equal(jm_job_retry_count(j), 2);
}

/* ------------------------------------------------------------------------
 * Parameters (AS31-AS33)
 * ------------------------------------------------------------------------ */

static const char *AS_PARAMS =
    "{\"namespace\":\"app\",\"table\":\"events\",\"n\":42,\"ratio\":0.5,\"on\":true,"
    "\"none\":null,\"nested\":{\"a\":[1,2,3]},\"s\":\"h\\u00e9llo \\\"q\\\" \xe2\x82\xac\"}";

static void test_AS31_parameters_stored_as_json(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE], empty[JM_JOB_ID_SIZE];
    create_ok(f, "TS", AS_PARAMS, NULL, id);
    const char *stored = jm_job_params(getj(f, id));
    assert_non_null(stored);
    cJSON *want = cJSON_Parse(AS_PARAMS), *got = cJSON_Parse(stored);
    assert_non_null(want);
    assert_non_null(got);
    assert_true(cJSON_Compare(want, got, 1));
    cJSON_Delete(want);
    cJSON_Delete(got);

    /* NULL parameters are the empty object. */
    create_ok(f, "TS", NULL, NULL, empty);
    got = cJSON_Parse(jm_job_params(getj(f, empty)));
    assert_non_null(got);
    assert_true(cJSON_IsObject(got));
    assert_null(got->child);
    cJSON_Delete(got);

    /* In listings too. */
    jm_job_list *l = NULL;
    assert_int_equal(jm_list(f->m, NULL, &l), JM_OK);
    assert_int_equal(jm_job_list_count(l), 2);
    got = cJSON_Parse(jm_job_params(jm_job_list_at(l, 0)));
    assert_non_null(got);
    assert_true(cJSON_IsObject(got));
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(got, "n")) == 42);
    cJSON_Delete(got);
    jm_job_list_free(l);
}

static jm_decision params_step(script *s, jm_ctx *ctx, int run)
{
    (void)s;
    (void)run;
    const cJSON *p = jm_ctx_params(ctx);
    if (!cJSON_IsObject(p))
        return jm_decision_failed("params not an object", NULL);
    const cJSON *table = cJSON_GetObjectItemCaseSensitive(p, "table");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(p, "n");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "nested"), "a");
    const cJSON *str = cJSON_GetObjectItemCaseSensitive(p, "s");
    if (!cJSON_IsString(table) || strcmp(table->valuestring, "events") != 0)
        return jm_decision_failed("table", NULL);
    if (!cJSON_IsNumber(n) || n->valueint != 42)
        return jm_decision_failed("n", NULL);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3 || cJSON_GetArrayItem(a, 2)->valueint != 3)
        return jm_decision_failed("nested.a", NULL);
    if (!cJSON_IsString(str) || strcmp(str->valuestring, "h\xc3\xa9llo \"q\" \xe2\x82\xac") != 0)
        return jm_decision_failed("s", NULL);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "on")) ||
        !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(p, "none")))
        return jm_decision_failed("on/none", NULL);
    return jm_decision_completed("params ok", NULL);
}

static void test_AS32_parameters_retrieved_as_object(void **state)
{
    fx *f = *state;
    script_reset(&f->s);
    f->s.fn = params_step;
    char id[JM_JOB_ID_SIZE];
    create_ok(f, "TS", AS_PARAMS, NULL, id);
    assert_int_equal(run1(f), 1);
    const jm_job *j = getj(f, id);
    assert_string_equal(jm_job_message(j), "params ok");
    assert_int_equal(jm_job_status(j), JM_STATUS_COMPLETED);
}

static void test_AS33_invalid_json_rejected(void **state)
{
    fx *f = *state;
    static const char *bad[] = {"{",      "not json", "",    "{\"a\":}", "{'a':1}",
                                "[1,2]",  "42",       "\"s\"", "null",   "true",
                                "{\"a\":1} trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char id[JM_JOB_ID_SIZE];
        memset(id, 0, sizeof id);
        int rc = jm_create(f->m, "TS", bad[i], NULL, id);
        if (rc != JM_EJSON)
            fail_msg("params '%s': %s, expected EJSON", bad[i], jm_err_name(rc));
        assert_non_null(jm_last_error());
        assert_string_not_equal(jm_last_error(), "");
    }
    assert_true(count_all(f) == 0);
    assert_int_equal(run1(f), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_AS1_job_creation),
        T(test_AS2_new_to_queued),
        T(test_AS3_queued_to_running),
        T(test_AS4_running_to_completed),
        T(test_AS5_running_to_retrying),
        T(test_AS6_retrying_to_running),
        T(test_AS7_running_to_failed),
        T(test_AS8_crash_recovery_retry_policy),
        T(test_AS8_crash_recovery_fail_policy),
        T(test_AS9_job_id_prefixes),
        T(test_AS10_job_logging_prefix),
        T(test_AS11_duplicate_idempotency_key_rejected),
        T(test_AS12_same_key_allowed_after_first_completes),
        T(test_AS13_idempotency_key_case_sensitive),
        T(test_AS14_jobs_without_key_always_allowed),
        T(test_AS15_only_active_statuses_block),
        T(test_AS16_finished_jobs_do_not_block),
        T(test_AS17_message_on_success),
        T(test_AS18_exception_trace_on_failure),
        T(test_AS19_exception_trace_includes_stack),
        T(test_AS20_message_length_limit),
        T(test_AS21_exception_trace_length_limit),
        T(test_AS22_message_cleared_on_retry),
        T(test_AS23_exception_trace_preserved_across_retries),
        T(test_AS24_message_visible_in_listing),
        T(test_AS25_exception_trace_visible_in_listing),
        T(test_AS26_retry_count_increments),
        T(test_AS27_max_retries_default_enforced),
        T(test_AS28_exponential_backoff),
        T(test_AS29_fails_after_max_retries),
        T(test_AS30_retry_with_custom_backoff),
        T(test_AS31_parameters_stored_as_json),
        T(test_AS32_parameters_retrieved_as_object),
        T(test_AS33_invalid_json_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
