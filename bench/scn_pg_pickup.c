/*
 * The pickup rows of the pg scenario: the time from just before jm_create
 * to the first line of the job's executor, on CLOCK_MONOTONIC (one clock
 * for every process on Linux).
 *
 * Cross-node, a forked child opens its own manager on the same schema
 * under node id "bench-b", with one worker and poll_interval_ms 1 000, so
 * that a poll cannot explain a start within milliseconds: only the
 * wake-up (LISTEN/NOTIFY) can. The parent opens a manager as "bench-a",
 * without workers, and creates. The child is forked before the parent has
 * opened anything, as a libpq connection must not cross a fork. In-process
 * is the same with one manager and one worker.
 *
 * The executor writes its timestamp to a pipe, which the creator reads
 * before it sleeps a random 5 to 25 ms (idle workers, not a queue) and
 * creates the next job. Warm-up jobs first make sure the worker runs.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scenarios.h"

/* The worker's poll: far above the target, so a fast start is a wake-up. */
#define PICK_POLL_MS 1000
#define PICK_GAP_MIN_US 5000
#define PICK_GAP_MAX_US 25000
#define PICK_WARMUPS 3
/* A job not started by then is lost; the first waits for the child's open. */
#define PICK_TIMEOUT_MS 30000
#define PICK_STOP_MS 5000
#define PICK_CHILD_EXIT_S 30
#define PICK_P99_TARGET_MS 10.0

typedef struct pick_exec {
    int fd; /* where the executor writes its start */
} pick_exec;

static jm_decision pick_execute(void *self, jm_ctx *ctx)
{
    int64_t now = bu_mono_ns();
    const pick_exec *p = self;
    (void)ctx;
    /* A write this short to a pipe is atomic; a failed one shows up in the
     * creator as a start that never came. */
    ssize_t w = write(p->fd, &now, sizeof now);
    (void)w;
    return jm_decision_completed(NULL, NULL);
}

static int register_pick(jm_manager *m, pick_exec *p)
{
    jm_executor ex = {JM_EXECUTOR_VERSION, "BQ", "bench-pickup", 1, NULL, pick_execute,
                      NULL, JM_CLASS_NORMAL, NULL};
    return jm_register(m, &ex, p);
}

/* Reads one timestamp within timeout_ms: 0, or 1 on timeout, end of file
 * or error. */
static int read_ts(int fd, int timeout_ms, int64_t *out)
{
    unsigned char buf[sizeof *out];
    size_t got = 0;
    int64_t until = bu_mono_ns() + (int64_t)timeout_ms * 1000000;
    while (got < sizeof buf) {
        int64_t left = (until - bu_mono_ns()) / 1000000;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, left > 0 ? (int)left : 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 1;
        ssize_t k = read(fd, buf + got, sizeof buf - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return 1;
        got += (size_t)k;
    }
    memcpy(out, buf, sizeof *out);
    return 0;
}

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Warm-ups, then n spaced creates on m, each waiting for its start on fd:
 * latencies in ms into lat. 0 on success. */
static int sample(jm_manager *m, int fd, long n, double *lat, const char *what)
{
    uint32_t seed = (uint32_t)bu_mono_ns() | 1;
    for (long i = -PICK_WARMUPS; i < n; i++) {
        bu_sleep_us(PICK_GAP_MIN_US +
                    (long)(next_rand(&seed) % (PICK_GAP_MAX_US - PICK_GAP_MIN_US + 1)));
        char id[JM_JOB_ID_SIZE];
        int64_t t0 = bu_mono_ns(), ts = 0;
        int rc = jm_create(m, "BQ", "{}", NULL, id);
        if (rc != JM_OK) {
            bench_fail("pg", "pickup %s: jm_create: %s: %s", what, jm_strerror(rc),
                       jm_last_error());
            return 1;
        }
        if (read_ts(fd, PICK_TIMEOUT_MS, &ts)) {
            bench_fail("pg", "pickup %s: job %s did not start within %d s", what, id,
                       PICK_TIMEOUT_MS / 1000);
            return 1;
        }
        if (ts < t0) {
            bench_fail("pg", "pickup %s: a start from before its create (a job ran twice?)",
                       what);
            return 1;
        }
        if (i >= 0)
            lat[i] = (double)(ts - t0) / 1e6;
    }
    return 0;
}

/* Nothing more on fd: a start after every sample was read is a job run
 * twice. 0 if none. */
static int check_no_extra(int fd, const char *what)
{
    int64_t extra;
    if (read_ts(fd, 0, &extra) == 0) {
        bench_fail("pg", "pickup %s: more starts than jobs (a job ran twice)", what);
        return 1;
    }
    return 0;
}

/* The other node: runs jobs until the parent closes ctl_fd. Never returns. */
static void child_node(const char *url, const char *schema, int ts_fd, int ctl_fd)
{
    jm_config cfg = bpg_lib_config(url, schema);
    cfg.node_id = "bench-b";
    cfg.poll_interval_ms = PICK_POLL_MS;
    pick_exec px = {ts_fd};
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = register_pick(m, &px);
    if (rc == JM_OK)
        rc = jm_start(m, 1);
    if (rc != JM_OK) {
        fprintf(stderr, "jm-bench: pg pickup node: %s: %s\n", jm_strerror(rc), jm_last_error());
        jm_close(m);
        _exit(1);
    }
    char byte;
    ssize_t r;
    while ((r = read(ctl_fd, &byte, 1)) != 0 && (r > 0 || errno == EINTR))
        ;
    rc = jm_stop(m, PICK_STOP_MS);
    if (rc != JM_OK)
        fprintf(stderr, "jm-bench: pg pickup node: jm_stop: %s: %s\n", jm_strerror(rc),
                jm_last_error());
    jm_close(m);
    _exit(rc == JM_OK ? 0 : 1);
}

/* Waits for the child to end, killing it if it hangs; 0 if it exited 0. */
static int wait_child(pid_t pid)
{
    int status = 0;
    for (int i = 0; i < PICK_CHILD_EXIT_S * 100; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
        if (r < 0 && errno != EINTR)
            return 1;
        bu_sleep_us(10000);
    }
    bench_fail("pg", "pickup: the other node did not stop within %d s", PICK_CHILD_EXIT_S);
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return 1;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int cross_node(const bench_opts *o, long n, double *lat)
{
    char schema[BPG_SCHEMA_SIZE];
    bpg_schema_name(schema);
    int ts[2] = {-1, -1}, ctl[2] = {-1, -1}, bad = 1;
    jm_manager *m = NULL;
    pid_t pid = -1;
    if (pipe(ts) != 0 || pipe(ctl) != 0) {
        bench_fail("pg", "pickup: pipe: %s", strerror(errno));
        goto done;
    }
    pid = fork();
    if (pid == 0) {
        close(ts[0]);
        close(ctl[1]);
        child_node(o->pg_url, schema, ts[1], ctl[0]);
    }
    if (pid < 0) {
        bench_fail("pg", "pickup: fork: %s", strerror(errno));
        goto done;
    }
    close_fd(&ts[1]);
    close_fd(&ctl[0]);
    jm_config cfg = bpg_lib_config(o->pg_url, schema);
    cfg.node_id = "bench-a";
    pick_exec px = {-1}; /* never runs here: no workers */
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = register_pick(m, &px);
    if (rc != JM_OK)
        bench_fail("pg", "pickup: jm_open: %s: %s", jm_strerror(rc), jm_last_error());
    else
        bad = sample(m, ts[0], n, lat, "cross-node");
done:
    jm_close(m);
    close_fd(&ctl[1]); /* the child's cue to stop */
    if (pid > 0) {
        if (wait_child(pid)) {
            bench_fail("pg", "pickup: the other node's process failed");
            bad = 1;
        }
        if (!bad)
            bad = check_no_extra(ts[0], "cross-node");
    }
    close_fd(&ts[0]);
    close_fd(&ts[1]);
    close_fd(&ctl[0]);
    bpg_drop_schema(o->pg_url, schema);
    return bad;
}

static int in_process(const bench_opts *o, long n, double *lat)
{
    char schema[BPG_SCHEMA_SIZE];
    bpg_schema_name(schema);
    int ts[2] = {-1, -1}, bad = 1;
    jm_manager *m = NULL;
    if (pipe(ts) != 0) {
        bench_fail("pg", "pickup: pipe: %s", strerror(errno));
        return 1;
    }
    jm_config cfg = bpg_lib_config(o->pg_url, schema);
    cfg.node_id = "bench-a";
    cfg.poll_interval_ms = PICK_POLL_MS;
    pick_exec px = {ts[1]};
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = register_pick(m, &px);
    if (rc == JM_OK)
        rc = jm_start(m, 1);
    if (rc != JM_OK) {
        bench_fail("pg", "pickup: set-up: %s: %s", jm_strerror(rc), jm_last_error());
        goto done;
    }
    bad = sample(m, ts[0], n, lat, "in-process");
    rc = jm_stop(m, PICK_STOP_MS);
    if (rc != JM_OK) {
        bench_fail("pg", "pickup: jm_stop: %s: %s", jm_strerror(rc), jm_last_error());
        bad = 1;
    }
    if (!bad)
        bad = check_no_extra(ts[0], "in-process");
done:
    jm_close(m);
    close_fd(&ts[0]);
    close_fd(&ts[1]);
    bpg_drop_schema(o->pg_url, schema);
    return bad;
}

static void report(const char *what, double *lat, long n, int with_target)
{
    char metric[96], target[32];
    double max = bu_max(lat, (size_t)n);
    double p50 = bu_percentile(lat, (size_t)n, 50), p99 = bu_percentile(lat, (size_t)n, 99);
    snprintf(metric, sizeof metric, "pickup %s: jm_create -> executor p50", what);
    bench_report("pg", metric, p50, "ms", NAN, NULL, NULL, BENCH_NO_TARGET);
    snprintf(metric, sizeof metric, "pickup %s: jm_create -> executor p99", what);
    if (with_target) {
        snprintf(target, sizeof target, "<= %.0f ms", PICK_P99_TARGET_MS);
        bench_report("pg", metric, p99, "ms", NAN, NULL, target, p99 <= PICK_P99_TARGET_MS);
    } else {
        bench_report("pg", metric, p99, "ms", NAN, NULL, NULL, BENCH_NO_TARGET);
    }
    bench_note("pg", "pickup %s: max %.2f ms", what, max);
}

int bpg_pickup(const bench_opts *o)
{
    long n = o->pg_pickup_samples;
    double *lat = calloc((size_t)n, sizeof *lat);
    if (!lat)
        return 1;
    bench_log("pg: pickup across nodes, %ld samples", n);
    int bad = cross_node(o, n, lat);
    if (!bad) {
        report("cross-node", lat, n, 1);
        bench_log("pg: pickup in-process, %ld samples", n);
        bad = in_process(o, n, lat);
    }
    if (!bad)
        report("in-process", lat, n, 0);
    free(lat);
    bench_note("pg", "pickup: %ld creates %d-%d ms apart (random), after %d warm-ups; worker "
                     "poll_interval_ms %d; cross-node: a forked process as node bench-b runs "
                     "them, this one (bench-a, no workers) creates; one run, no reps",
               n, PICK_GAP_MIN_US / 1000, PICK_GAP_MAX_US / 1000, PICK_WARMUPS, PICK_POLL_MS);
    return bad;
}
