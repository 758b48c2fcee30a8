/*
 * memory: the resident memory of a manager whose table holds a million
 * queued jobs, against one with an empty table, each measured in a fresh
 * process (this program re-executed with --child-rss), so nothing the
 * benchmark itself allocated counts. The child reads VmRSS after jm_open,
 * after jm_start with idle workers (no executor for the queued type, so
 * nothing is claimed), and after registering the executor and working the
 * queue for a moment; then VmHWM, the peak. The library must not load the
 * queue into memory: the difference is what the queue costs.
 *
 * Also the CPU an idle manager burns: jm_start with 4 workers and no jobs,
 * getrusage user+sys over the wall time, as a percentage of one core.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scenarios.h"

#define MAX_REPS 64
#define CHILD_WORKERS 2
#define CHILD_IDLE_US 1500000
#define CHILD_WORK_US 2000000
#define IDLE_WORKERS 4
#define KIB_PER_MIB 1024.0

enum { RSS_OPEN, RSS_IDLE, RSS_WORKING, RSS_PEAK, RSS_FIELDS };

int memory_child(int argc, char **argv)
{
    if (argc != 1)
        return 2;
    jm_config cfg = bu_config(argv[0]);
    jm_manager *m = NULL;
    bu_counter *c = bu_counter_new(1);
    int rc = c ? jm_open(&cfg, &m) : JM_ENOMEM;
    if (rc != JM_OK) {
        fprintf(stderr, "jm-bench child: jm_open: %s\n", jm_last_error());
        return 1;
    }
    long v[RSS_FIELDS];
    v[RSS_OPEN] = bu_status_kib("VmRSS");
    if ((rc = jm_start(m, CHILD_WORKERS)) != JM_OK) {
        fprintf(stderr, "jm-bench child: jm_start: %s\n", jm_last_error());
        return 1;
    }
    bu_sleep_us(CHILD_IDLE_US);
    v[RSS_IDLE] = bu_status_kib("VmRSS");
    if ((rc = bu_register_noop(m, "BM", c)) != JM_OK) {
        fprintf(stderr, "jm-bench child: jm_register: %s\n", jm_last_error());
        return 1;
    }
    bu_sleep_us(CHILD_WORK_US);
    v[RSS_WORKING] = bu_status_kib("VmRSS");
    v[RSS_PEAK] = bu_status_kib("VmHWM");
    jm_close(m);
    long ran = bu_counter_value(c);
    bu_counter_free(c);
    /* The last figure: jobs run while working, to show the phase did work. */
    printf("%ld %ld %ld %ld %ld\n", v[RSS_OPEN], v[RSS_IDLE], v[RSS_WORKING], v[RSS_PEAK], ran);
    return 0;
}

/* Runs the child on `db`; fills v[RSS_FIELDS] in KiB and *ran. 0 on
 * success. */
static int run_child(const char *db, long v[RSS_FIELDS], long *ran)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        char *args[] = {"jm-bench", "--child-rss", (char *)db, NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return 1;
    }
    char buf[256] = {0};
    size_t got = 0;
    ssize_t k;
    while (got < sizeof buf - 1 && (k = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)k;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        sscanf(buf, "%ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3], ran) != 5)
        return 1;
    return 0;
}

static int make_db(const char *path, long n)
{
    jm_config cfg = bu_config(path);
    jm_manager *m = NULL;
    bu_counter *c = bu_counter_new(1);
    int rc = c ? jm_open(&cfg, &m) : JM_ENOMEM;
    if (rc == JM_OK)
        rc = bu_register_noop(m, "BM", c);
    if (rc == JM_OK && n > 0)
        rc = bu_fill(m, "BM", n, 1000, 0, 0);
    if (rc != JM_OK)
        bench_fail("memory", "set-up: %s: %s", jm_strerror(rc), jm_last_error());
    jm_close(m);
    bu_counter_free(c);
    return rc != JM_OK;
}

static int idle_cpu(const bench_opts *o)
{
    char *path = bu_db_path(o->dir, "idle");
    jm_config cfg = bu_config(path);
    jm_manager *m = NULL;
    bu_counter *c = bu_counter_new(1);
    int rc = c ? jm_open(&cfg, &m) : JM_ENOMEM;
    if (rc == JM_OK)
        rc = bu_register_noop(m, "BI", c);
    if (rc == JM_OK)
        rc = jm_start(m, IDLE_WORKERS);
    if (rc == JM_OK) {
        bu_sleep_us(200000); /* start-up is not idling */
        double cpu0 = bu_cpu_seconds();
        int64_t t0 = bu_mono_ns();
        bu_sleep_us((long)(o->idle_seconds * 1e6));
        double pct = (bu_cpu_seconds() - cpu0) / bu_seconds_since(t0) * 100;
        char metric[96];
        snprintf(metric, sizeof metric, "idle manager CPU, %d workers, %.0f s", IDLE_WORKERS,
                 o->idle_seconds);
        bench_report("memory", metric, pct, "% core", NAN, NULL, "< 1% of a core", pct < 1.0);
        rc = jm_stop(m, 1000);
    }
    if (rc != JM_OK)
        bench_fail("memory", "idle manager: %s: %s", jm_strerror(rc), jm_last_error());
    jm_close(m);
    bu_counter_free(c);
    bu_remove_db(path);
    free(path);
    return rc != JM_OK;
}

int scn_memory(const bench_opts *o)
{
    char *empty = bu_db_path(o->dir, "mem-empty");
    char *full = bu_db_path(o->dir, "mem-full");
    int bad = 1;
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    double e[RSS_FIELDS][MAX_REPS], f[RSS_FIELDS][MAX_REPS];
    long ran[MAX_REPS] = {0};
    bench_log("memory: creating %ld queued jobs", o->memory_jobs);
    if (!empty || !full || make_db(empty, 0) || make_db(full, o->memory_jobs))
        goto done;
    for (int r = 0; r < reps; r++) {
        long ve[RSS_FIELDS], vf[RSS_FIELDS], ran_e = 0;
        bench_log("memory: rep %d/%d", r + 1, reps);
        /* The working phase runs jobs, so the full table's queue shrinks
         * a little each rep; it stays far larger than any prefetch. */
        if (run_child(empty, ve, &ran_e) || run_child(full, vf, &ran[r])) {
            bench_fail("memory", "the measuring child process failed");
            goto done;
        }
        for (int i = 0; i < RSS_FIELDS; i++) {
            e[i][r] = (double)ve[i] / KIB_PER_MIB;
            f[i][r] = (double)vf[i] / KIB_PER_MIB;
        }
    }
    static const char *const names[RSS_FIELDS] = {"after jm_open", "after jm_start, idle",
                                                  "while working the queue", "peak (VmHWM)"};
    double med_e[RSS_FIELDS], med_f[RSS_FIELDS];
    for (int i = 0; i < RSS_FIELDS; i++) {
        med_e[i] = bu_median(e[i], (size_t)reps);
        med_f[i] = bu_median(f[i], (size_t)reps);
        char metric[96];
        snprintf(metric, sizeof metric, "RSS %s, empty table", names[i]);
        bench_report("memory", metric, med_e[i], "MiB", NAN, NULL, NULL, BENCH_NO_TARGET);
        snprintf(metric, sizeof metric, "RSS %s, %ld queued", names[i], o->memory_jobs);
        bench_report("memory", metric, med_f[i], "MiB", med_f[i] / med_e[i], "empty table", NULL,
                     BENCH_NO_TARGET);
    }
    double idle_delta = med_f[RSS_IDLE] - med_e[RSS_IDLE];
    double peak_delta = med_f[RSS_PEAK] - med_e[RSS_PEAK];
    char metric[96];
    snprintf(metric, sizeof metric, "RSS added by %ld queued jobs, idle", o->memory_jobs);
    bench_report("memory", metric, idle_delta, "MiB", NAN, NULL, "<= 16 MiB", idle_delta <= 16);
    snprintf(metric, sizeof metric, "peak RSS added by %ld queued jobs", o->memory_jobs);
    bench_report("memory", metric, peak_delta, "MiB", NAN, NULL, "<= 16 MiB", peak_delta <= 16);
    bench_note("memory", "each figure from a fresh process (jm-bench --child-rss DB): VmRSS after "
                         "jm_open, after jm_start(%d) with no executor for the queued type "
                         "(%.1f s), after registering it and working %.1f s; VmHWM at the end",
               CHILD_WORKERS, CHILD_IDLE_US / 1e6, CHILD_WORK_US / 1e6);
    bench_note("memory", "jobs worked in the working phase of the full table (first rep): %ld",
               ran[0]);
    bad = idle_cpu(o);
done:
    if (empty)
        bu_remove_db(empty);
    if (full)
        bu_remove_db(full);
    free(empty);
    free(full);
    return bad;
}
