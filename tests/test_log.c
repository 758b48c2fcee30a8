/*
 * Logging (src/core/log.c): the level filter (lines below cfg.log_level
 * are dropped, JM_LOG_OFF drops everything), job lines prefixed
 * "[<id>] ", and the default sink writing to stderr when cfg.log_fn is
 * NULL (checked by pointing file descriptor 2 at a temporary file).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#define T0 INT64_C(1700000000000)
#define MAX_LINES 256

/* A sink that keeps every line with its level. */
typedef struct sink {
    pthread_mutex_t mu;
    int n;
    jm_log_level level[MAX_LINES];
    char *line[MAX_LINES];
} sink;

static void sink_fn(void *user, jm_log_level level, const char *line)
{
    sink *s = user;
    pthread_mutex_lock(&s->mu);
    if (s->n < MAX_LINES) {
        s->level[s->n] = level;
        s->line[s->n] = strdup(line);
        s->n++;
    }
    pthread_mutex_unlock(&s->mu);
}

typedef struct fx {
    char *dir;
    char *db;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
    sink s;
    int runs;
    char last_id[JM_JOB_ID_SIZE];
} fx;

/* Index of the first logged line containing `text`, or -1. */
static int sink_find(fx *f, const char *text)
{
    for (int i = 0; i < f->s.n; i++)
        if (strstr(f->s.line[i], text))
            return i;
    return -1;
}

/* Logs one marked line at every level, retries once, then completes. */
static jm_decision execute(void *self, jm_ctx *ctx)
{
    fx *f = self;
    f->runs++;
    jm_ctx_log(ctx, JM_LOG_DEBUG, "marker-debug %d", f->runs);
    jm_ctx_log(ctx, JM_LOG_INFO, "marker-info %d", f->runs);
    jm_ctx_log(ctx, JM_LOG_WARN, "marker-warn %d", f->runs);
    jm_ctx_log(ctx, JM_LOG_ERROR, "marker-error %d", f->runs);
    if (f->runs == 1)
        return jm_decision_retry("first run fails", NULL, 0);
    return jm_decision_completed("second run works", NULL);
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    f->db = tu_path(f->dir, "jobs.db");
    atomic_store(&f->clock.now, T0);
    pthread_mutex_init(&f->s.mu, NULL);
    f->cfg = tu_config(f->db);
    f->cfg.now_ms = tu_fake_now;
    f->cfg.now_user = &f->clock;
    f->cfg.node_id = "log-node";
    f->cfg.log_fn = sink_fn;
    f->cfg.log_user = &f->s;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    jm_close(f->m);
    for (int i = 0; i < f->s.n; i++)
        free(f->s.line[i]);
    pthread_mutex_destroy(&f->s.mu);
    free(f->db);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static void open_at(fx *f, jm_log_level level)
{
    f->cfg.log_level = level;
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    jm_executor ex = {JM_EXECUTOR_VERSION, "FL", "flush", 1, NULL, execute, NULL, JM_CLASS_NORMAL, NULL};
    assert_int_equal(jm_register(f->m, &ex, f), JM_OK);
}

/* Creates a job and runs it twice (a retry, then completed). */
static void run_job(fx *f, char id[JM_JOB_ID_SIZE])
{
    assert_int_equal(jm_create(f->m, "FL", NULL, NULL, id), JM_OK);
    int ran = 0;
    assert_int_equal(jm_run_once(f->m, 1, &ran), JM_OK);
    assert_int_equal(ran, 1);
    assert_int_equal(jm_run_once(f->m, 1, &ran), JM_OK);
    assert_int_equal(ran, 1);
    assert_int_equal(tu_status(f->m, id), JM_STATUS_COMPLETED);
}

/* ------------------------------------------------------------------------ */

static void level_filter(void **state)
{
    fx *f = *state;
    open_at(f, JM_LOG_WARN);
    char id[JM_JOB_ID_SIZE];
    run_job(f, id);
    assert_true(f->s.n > 0);
    for (int i = 0; i < f->s.n; i++)
        if (f->s.level[i] < JM_LOG_WARN)
            fail_msg("line below the level delivered: %s", f->s.line[i]);
    assert_true(sink_find(f, "marker-warn 1") >= 0);
    assert_true(sink_find(f, "marker-error 2") >= 0);
    assert_int_equal(sink_find(f, "marker-info"), -1);
    assert_int_equal(sink_find(f, "marker-debug"), -1);
    /* The library's own INFO lines ("started …") are dropped too. */
    assert_int_equal(sink_find(f, "started"), -1);
}

static void every_level_at_debug(void **state)
{
    fx *f = *state;
    open_at(f, JM_LOG_DEBUG);
    char id[JM_JOB_ID_SIZE];
    run_job(f, id);
    const char *marks[] = {"marker-debug 1", "marker-info 1", "marker-warn 2", "marker-error 2"};
    const jm_log_level levels[] = {JM_LOG_DEBUG, JM_LOG_INFO, JM_LOG_WARN, JM_LOG_ERROR};
    for (int i = 0; i < 4; i++) {
        int k = sink_find(f, marks[i]);
        if (k < 0)
            fail_msg("'%s' was not logged", marks[i]);
        assert_int_equal(f->s.level[k], levels[i]);
    }
    /* INFO keeps info and up. */
    jm_close(f->m);
    f->m = NULL;
    int before = f->s.n;
    open_at(f, JM_LOG_INFO);
    f->runs = 0;
    run_job(f, id);
    for (int i = before; i < f->s.n; i++)
        assert_true(f->s.level[i] >= JM_LOG_INFO);
    int k = -1;
    for (int i = before; i < f->s.n && k < 0; i++)
        if (strstr(f->s.line[i], "marker-info 1"))
            k = i;
    assert_true(k >= 0);
}

static void log_off_drops_everything(void **state)
{
    fx *f = *state;
    open_at(f, JM_LOG_OFF);
    char id[JM_JOB_ID_SIZE];
    run_job(f, id);
    /* Refusals log nothing either. */
    assert_int_equal(jm_cancel(f->m, id), JM_ESTATE);
    assert_int_equal(f->s.n, 0);
}

static void job_lines_prefixed_with_id(void **state)
{
    fx *f = *state;
    open_at(f, JM_LOG_DEBUG);
    char id[JM_JOB_ID_SIZE];
    run_job(f, id);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "[%s] ", id);
    int about_job = 0;
    for (int i = 0; i < f->s.n; i++) {
        const char *l = f->s.line[i];
        if (!strstr(l, id))
            continue;
        about_job++;
        if (strncmp(l, prefix, strlen(prefix)) != 0)
            fail_msg("job line without the prefix: '%s'", l);
    }
    /* The executor's four lines a run, and the library's own events. */
    assert_true(about_job >= 8 + 3);
    char want[128];
    snprintf(want, sizeof want, "%smarker-warn 1", prefix);
    int k = sink_find(f, want);
    assert_true(k >= 0);
    assert_string_equal(f->s.line[k], want);
    snprintf(want, sizeof want, "%sstarted", prefix);
    assert_true(sink_find(f, want) >= 0);
    snprintf(want, sizeof want, "%sretrying", prefix);
    assert_true(sink_find(f, want) >= 0);
    snprintf(want, sizeof want, "%scompleted", prefix);
    assert_true(sink_find(f, want) >= 0);
    /* Manager lines not about a job have no prefix. */
    for (int i = 0; i < f->s.n; i++)
        if (f->s.line[i][0] == '[')
            assert_non_null(strstr(f->s.line[i], id));
}

/* Runs `fn` with stderr pointing at a temporary file; returns what was
 * written (malloc'd). */
static char *capture_stderr(fx *f, void (*fn)(fx *f))
{
    char *path = tu_path(f->dir, "stderr.txt");
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fd, 2) >= 0);
    fn(f);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)size + 1);
    assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
    close(fd);
    free(path);
    return buf;
}

static void open_and_run(fx *f)
{
    open_at(f, f->cfg.log_level);
    run_job(f, f->last_id);
    jm_close(f->m);
    f->m = NULL;
}

static void default_sink_is_stderr(void **state)
{
    fx *f = *state;
    f->cfg.log_fn = NULL;
    f->cfg.log_user = NULL;
    f->cfg.log_level = JM_LOG_WARN;
    char *out = capture_stderr(f, open_and_run);
    const char *id = f->last_id;
    char want[128];
    snprintf(want, sizeof want, "[%s] marker-warn 1", id);
    if (!strstr(out, want))
        fail_msg("stderr lacks '%s':\n%s", want, out);
    snprintf(want, sizeof want, "[%s] marker-error 2", id);
    assert_non_null(strstr(out, want));
    assert_null(strstr(out, "marker-info"));
    assert_null(strstr(out, "marker-debug"));
    /* One line each, newline-terminated. */
    assert_true(strlen(out) > 0);
    assert_int_equal(out[strlen(out) - 1], '\n');
    free(out);

    /* Off: stderr stays silent. */
    f->cfg.log_level = JM_LOG_OFF;
    f->runs = 0;
    out = capture_stderr(f, open_and_run);
    assert_string_equal(out, "");
    free(out);
    /* Nothing went to the (unused) sink either. */
    assert_int_equal(f->s.n, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(level_filter),
        T(every_level_at_debug),
        T(log_off_drops_everything),
        T(job_lines_prefixed_with_id),
        T(default_sink_is_stderr),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
