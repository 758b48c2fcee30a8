/*
 * latency: with idle workers (jm_start 2), single creates spaced apart by
 * sleeping (the scenario's definition: a trickle of jobs, not a wait for
 * a result), and the time from just before jm_create was called to the
 * executor's entry, on CLOCK_MONOTONIC (system-wide, so it also holds
 * between processes). The executor records its start into a slot named
 * by the job's "i" parameter; "t" carries the creation time (ns after a
 * base), which is how the second process passes its timestamps.
 *
 * In-process the time is also taken from jm_create's return, when the job
 * exists (its insert is committed): the in-process targets apply to that,
 * since the create's own synced commit alone takes about as long as the
 * whole 0.2 ms budget on the development machine's disk. In-process the
 * manager's default poll interval stays: a create in the same process
 * wakes the loop directly. Cross-process, a forked child
 * creates the jobs and the parent runs the workers with poll_interval_ms
 * set to --poll-ms (50 by default); the wake-up channel beside the
 * database starts them before any poll, and the child's return times
 * come back through a shared mapping.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scenarios.h"

#define LAT_WORKERS 2
/* Seconds to wait for the last job beyond the creates' own duration. */
#define LAT_SLACK_S 30.0

typedef struct lat_state {
    int64_t base;     /* CLOCK_MONOTONIC ns that "t" is relative to */
    long n;
    int64_t *sent;    /* "t" of job i, read back by the executor */
    int64_t *start;   /* executor entry of job i, relative to base */
    int64_t *returned; /* in-process: jm_create returned, relative to base */
    bu_counter *c;
} lat_state;

static jm_decision lat_execute(void *self, jm_ctx *ctx)
{
    lat_state *s = self;
    int64_t now = bu_mono_ns() - s->base;
    const cJSON *p = jm_ctx_params(ctx);
    const cJSON *ji = cJSON_GetObjectItemCaseSensitive(p, "i");
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(p, "t");
    if (cJSON_IsNumber(ji) && cJSON_IsNumber(jt) && ji->valuedouble >= 0 &&
        ji->valuedouble < (double)s->n) {
        long i = (long)ji->valuedouble;
        s->start[i] = now;
        s->sent[i] = (int64_t)jt->valuedouble;
    }
    bu_counter_bump(s->c);
    return jm_decision_completed(NULL, NULL);
}

static int register_lat(jm_manager *m, lat_state *s)
{
    jm_executor ex = {JM_EXECUTOR_VERSION, "BL", "bench-latency", 1, NULL, lat_execute, NULL, JM_CLASS_NORMAL, NULL};
    return jm_register(m, &ex, s);
}

/* Creates the n spaced jobs; records the return time if `returned`. */
static int create_spaced(jm_manager *m, lat_state *s, long gap_us, int64_t *returned)
{
    for (long i = 0; i < s->n; i++) {
        char params[96], id[JM_JOB_ID_SIZE];
        int64_t t = bu_mono_ns() - s->base;
        snprintf(params, sizeof params, "{\"i\":%ld,\"t\":%lld}", i, (long long)t);
        int rc = jm_create(m, "BL", params, NULL, id);
        if (returned)
            returned[i] = bu_mono_ns() - s->base;
        if (rc != JM_OK) {
            fprintf(stderr, "jm-bench: latency: jm_create: %s: %s\n", jm_strerror(rc),
                    jm_last_error());
            return 1;
        }
        bu_sleep_us(gap_us);
    }
    return 0;
}

static void report_ms(const char *metric, double *v, size_t n, double p50_target,
                      double p99_target, const char *p99_label)
{
    char m[96], t[64];
    double max = bu_max(v, n);
    double p50 = bu_percentile(v, n, 50), p99 = bu_percentile(v, n, 99);
    snprintf(m, sizeof m, "%s p50", metric);
    if (p50_target > 0) {
        snprintf(t, sizeof t, "<= %.1f ms", p50_target);
        bench_report("latency", m, p50, "ms", NAN, NULL, t, p50 <= p50_target);
    } else {
        bench_report("latency", m, p50, "ms", NAN, NULL, NULL, BENCH_NO_TARGET);
    }
    snprintf(m, sizeof m, "%s p99", metric);
    if (p99_target > 0) {
        if (p99_label)
            snprintf(t, sizeof t, "%s", p99_label);
        else
            snprintf(t, sizeof t, "<= %.0f ms", p99_target);
        bench_report("latency", m, p99, "ms", NAN, NULL, t, p99 <= p99_target);
    } else {
        bench_report("latency", m, p99, "ms", NAN, NULL, NULL, BENCH_NO_TARGET);
    }
    snprintf(m, sizeof m, "%s max", metric);
    bench_report("latency", m, max, "ms", NAN, NULL, NULL, BENCH_NO_TARGET);
}

static lat_state *lat_new(long n)
{
    lat_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->n = n;
    s->base = bu_mono_ns();
    s->sent = calloc((size_t)n, sizeof *s->sent);
    s->start = calloc((size_t)n, sizeof *s->start);
    s->returned = calloc((size_t)n, sizeof *s->returned);
    s->c = bu_counter_new(n);
    for (long i = 0; s->start && i < n; i++)
        s->start[i] = -1;
    return s;
}

static void lat_free(lat_state *s)
{
    if (!s)
        return;
    free(s->sent);
    free(s->start);
    free(s->returned);
    bu_counter_free(s->c);
    free(s);
}

/* Gathers start - sent (and start - returned) in ms; 0 if every job ran. */
static int collect(const lat_state *s, double *from_call, double *from_return)
{
    for (long i = 0; i < s->n; i++) {
        if (s->start[i] < 0)
            return 1;
        from_call[i] = (double)(s->start[i] - s->sent[i]) / 1e6;
        if (from_return)
            from_return[i] = (double)(s->start[i] - s->returned[i]) / 1e6;
    }
    return 0;
}

static int in_process(const bench_opts *o)
{
    char *path = bu_db_path(o->dir, "latency");
    lat_state *s = lat_new(o->latency_jobs);
    double *a = calloc((size_t)o->latency_jobs, sizeof *a);
    double *b = calloc((size_t)o->latency_jobs, sizeof *b);
    jm_config cfg = bu_config(path);
    jm_manager *m = NULL;
    int bad = 1;
    int rc = s && s->c && s->start && a && b ? jm_open(&cfg, &m) : JM_ENOMEM;
    if (rc == JM_OK)
        rc = register_lat(m, s);
    if (rc == JM_OK)
        rc = jm_start(m, LAT_WORKERS);
    if (rc != JM_OK) {
        bench_fail("latency", "set-up: %s: %s", jm_strerror(rc), jm_last_error());
        goto done;
    }
    bu_sleep_us(100000); /* let the workers go idle */
    if (create_spaced(m, s, o->latency_gap_us, s->returned))
        goto done;
    double wait = LAT_SLACK_S;
    if (bu_counter_wait(s->c, wait)) {
        bench_fail("latency", "in-process: only %ld of %ld jobs started within %.0f s",
                   bu_counter_value(s->c), s->n, wait);
        goto done;
    }
    jm_stop(m, 5000);
    if (collect(s, a, b)) {
        bench_fail("latency", "in-process: a job's start was not recorded");
        goto done;
    }
    report_ms("in-process, jm_create call -> executor", a, (size_t)s->n, 0, 0, NULL);
    report_ms("in-process, jm_create return -> executor", b, (size_t)s->n, 0.2, 2, NULL);
    bad = 0;
done:
    jm_close(m);
    lat_free(s);
    free(a);
    free(b);
    bu_remove_db(path);
    free(path);
    return bad;
}

/* The child: waits for the parent's go, then creates the jobs through its
 * own manager. Never returns. */
static void child_creator(const char *path, lat_state *s, long gap_us, int go_fd,
                          int64_t *returned)
{
    char byte;
    if (read(go_fd, &byte, 1) != 1)
        _exit(2);
    jm_config cfg = bu_config(path);
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = register_lat(m, s);
    if (rc != JM_OK) {
        fprintf(stderr, "jm-bench: latency child: %s: %s\n", jm_strerror(rc), jm_last_error());
        _exit(1);
    }
    int bad = create_spaced(m, s, gap_us, returned);
    jm_close(m);
    _exit(bad);
}

static int cross_process(const bench_opts *o)
{
    char *path = bu_db_path(o->dir, "latency-xp");
    lat_state *s = lat_new(o->latency_jobs);
    double *a = calloc((size_t)o->latency_jobs, sizeof *a);
    double *b = calloc((size_t)o->latency_jobs, sizeof *b);
    /* The child's return times, shared with this process. */
    size_t shared_bytes = (size_t)o->latency_jobs * sizeof(int64_t);
    int64_t *returned = mmap(NULL, shared_bytes, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    jm_manager *m = NULL;
    int bad = 1, go[2] = {-1, -1};
    pid_t pid = -1;
    if (returned == MAP_FAILED)
        returned = NULL;
    if (!s || !s->c || !s->start || !a || !b || !returned || pipe(go) != 0)
        goto done;
    /* Fork before this process has a manager or any thread. */
    pid = fork();
    if (pid == 0) {
        close(go[1]);
        child_creator(path, s, o->latency_gap_us, go[0], returned);
    }
    close(go[0]);
    go[0] = -1;
    if (pid < 0)
        goto done;
    jm_config cfg = bu_config(path);
    cfg.poll_interval_ms = o->latency_poll_ms;
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = register_lat(m, s);
    if (rc == JM_OK)
        rc = jm_start(m, LAT_WORKERS);
    if (rc != JM_OK) {
        bench_fail("latency", "set-up: %s: %s", jm_strerror(rc), jm_last_error());
        goto done;
    }
    bu_sleep_us(100000);
    if (write(go[1], "g", 1) != 1)
        goto done;
    double wait = (double)s->n * ((double)o->latency_gap_us / 1e6 + 0.001) + LAT_SLACK_S;
    if (bu_counter_wait(s->c, wait)) {
        bench_fail("latency", "cross-process: only %ld of %ld jobs started within %.0f s",
                   bu_counter_value(s->c), s->n, wait);
        goto done;
    }
    jm_stop(m, 5000);
    memcpy(s->returned, returned, shared_bytes);
    if (collect(s, a, b)) {
        bench_fail("latency", "cross-process: a job's start was not recorded");
        goto done;
    }
    report_ms("other process, jm_create call -> executor", a, (size_t)s->n, 0, 0, NULL);
    /* The wake-up channel's targets; the poll remains the bound without it. */
    report_ms("other process, jm_create return -> executor", b, (size_t)s->n, 1.0, 5, NULL);
    bad = 0;
done:
    if (go[1] >= 0)
        close(go[1]);
    if (pid > 0) {
        int status = 0;
        waitpid(pid, &status, 0);
        if (!bad && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            bench_fail("latency", "the creating child process failed");
            bad = 1;
        }
    }
    jm_close(m);
    lat_free(s);
    free(a);
    free(b);
    if (returned)
        munmap(returned, shared_bytes);
    bu_remove_db(path);
    free(path);
    return bad;
}

int scn_latency(const bench_opts *o)
{
    int bad = in_process(o);
    bad |= cross_process(o);
    bench_note("latency", "%ld single creates %ld us apart (sleeping), %d idle workers; measured "
                          "from just before jm_create (so it includes the create's own commit) "
                          "and also from its return",
               o->latency_jobs, o->latency_gap_us, LAT_WORKERS);
    bench_note("latency", "in-process: default poll_interval_ms (%d); other process: a forked "
                          "child creates, poll_interval_ms = %ld in the worker process (the wake-up channel "
                          "starts the jobs before any poll)",
               JM_DEFAULT_POLL_INTERVAL_MS, o->latency_poll_ms);
    bench_note("latency", "in-process targets apply from jm_create's return (the job committed); "
                          "the call's own synced commit is the first row's extra");
    bench_note("latency", "one run (no reps): percentiles over all jobs");
    return bad;
}
