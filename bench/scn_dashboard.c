/*
 * dashboard: `jobmgr serve` timed from outside, through HTTP, with a
 * million jobs in its table: p50 and p99 of every page and GET of the API
 * (target: p99 <= 50 ms each), then the CPU the server burns while nobody
 * asks (target: < 1 % of a core).
 *
 * The table is what a day of a busy system leaves (--dashboard-jobs jobs):
 * - history: created with jm_create_many, then backdated over the last 24
 *   hours and finished by direct SQL while no manager has the file open
 *   (the set-up shortcut of scale and prune: running them would measure
 *   nothing more): 1 in 25 failed, 1 in 97 cancelled, the rest completed,
 *   about 1/24 of them in the last hour, so the throughput chart has data;
 * - 2 % worked just now by a real worker pool with no-op executors of the
 *   eight built-in types: 1 in 20 runs fail, 1 in 50 ask to retry in an
 *   hour (retrying), the rest complete with a result;
 * - 1.5 % queued after that (1 in 10 due an hour from now: new);
 * - HELD_JOBS running: a second manager in this process holds them in
 *   their executors for the whole measurement, renewing their leases.
 * Types follow one weighting (FL 40 %, CO 15, SE, RT and CL 10 each, BK 8,
 * UC 5, RS 2), namespaces ns-0..ns-99; SCHEDULES hourly schedules and one
 * pause of a resource stand beside them.
 *
 * The server is the real tool (JM_BENCH_CLI, built with this program) in
 * a child process, on an ephemeral port; requests go one at a time over a
 * keep-alive connection (http_get.c). First in rounds that ask every
 * endpoint once, in random order, rounds a random pause apart, so the
 * overview's background refreshes (every 2 s or more while someone asks)
 * overlap the other requests at random moments, as they do with a page
 * open; then each endpoint alone, many times in a row after a pause,
 * which tells a slow answer from one that waited for a refresh.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "http_get.h"
#include "scenarios.h"

#define SCN "dashboard"
#define MAX_REPS 64

/* The requirement. */
#define TARGET_P99_MS 50.0
#define TARGET_IDLE_PCT 1.0

/* The seeded table. */
#define BATCH 1000
#define WORKED_PER_MILLE 20
#define QUEUED_PER_MILLE 15
#define HELD_JOBS 16
#define HELD_PRIORITY 10
#define WORKERS 2
#define FAIL_EVERY 20
#define RETRY_EVERY 50
#define LATER_EVERY 10
#define HISTORY_FAILED_EVERY 25
#define HISTORY_CANCELLED_EVERY 97
#define NAMESPACES 100
#define TABLES 40
#define PARAM_ROWS 5000
#define SCHEDULES 12
#define PAUSED_RESOURCE "archive.cold"
#define MS_PER_HOUR (3600 * 1000LL)
#define HISTORY_SPAN_MS (24 * MS_PER_HOUR)
/* History ends this long before the set-up, so no row finishes in the future. */
#define HISTORY_MARGIN_MS 10000
#define HISTORY_CHUNK 100000
#define WORK_TIMEOUT_S 600
#define HOLD_TIMEOUT_S 60

/* The measurement. */
#define ID_SAMPLES 1024
#define DEEP_PAGES 50
#define NEWEST_LIMIT 100
/* Before the idle measurement: time for whatever the last requests
 * started (a refresh, a closing connection) to end. */
#define SETTLE_US 3000000
/* Before each endpoint asked alone: this many times what the first
 * snapshot took, plus a little, for a refresh started before to end. */
#define PAUSE_FACTOR 2
#define PAUSE_MIN_US 100000
/* A Prometheus server's usual scrape interval: one /metrics request this
 * long after the last request, as a scrape of a dashboard nobody watches. */
#define SCRAPE_GAP_S 15
/* A first overview computes its snapshot: it may take long at a million. */
#define HTTP_TIMEOUT_S 300
#define START_TIMEOUT_MS 120000
#define STOP_TIMEOUT_MS 30000
#define TOKEN_BYTES 16
/* Below this the queued portion may hold no BK job to list. */
#define MIN_JOBS 10000
/* Room for the note naming the endpoints over the target. */
#define NOTE_OVER_MAX 300

#ifdef JM_BENCH_CLI
static const char cli_path[] = JM_BENCH_CLI;
#else
static const char cli_path[] = "";
#endif

extern char **environ;

static const struct {
    const char *type;
    int percent;
} type_mix[] = {{"FL", 40}, {"CO", 15}, {"SE", 10}, {"RT", 10},
                {"CL", 10}, {"BK", 8},  {"UC", 5},  {"RS", 2}};
#define NTYPES (sizeof type_mix / sizeof type_mix[0])

enum {
    EP_INDEX, EP_APP_JS, EP_OVERVIEW, EP_JOBS, EP_FAILED, EP_BK_QUEUED, EP_NEWEST, EP_DEEP,
    EP_JOB, EP_SCHEDULES, EP_PAUSES, EP_METRICS, EP_COUNT
};

/* What each endpoint is called in the table, and its path where fixed. */
static const struct {
    const char *label;
    const char *path;
} endpoints[EP_COUNT] = {
    [EP_INDEX] = {"GET /", "/"},
    [EP_APP_JS] = {"GET /app.js", "/app.js"},
    [EP_OVERVIEW] = {"GET /api/overview", "/api/overview"},
    [EP_JOBS] = {"GET /api/jobs (first page)", "/api/jobs"},
    [EP_FAILED] = {"GET /api/jobs?status=failed", "/api/jobs?status=failed"},
    [EP_BK_QUEUED] = {"GET /api/jobs?type=BK&status=queued", "/api/jobs?type=BK&status=queued"},
    [EP_NEWEST] = {"GET /api/jobs?newest=1&limit=100", "/api/jobs?newest=1&limit=100"},
    [EP_DEEP] = {"GET /api/jobs?cursor=<page 50>", NULL},
    [EP_JOB] = {"GET /api/jobs/<random id>", NULL},
    [EP_SCHEDULES] = {"GET /api/schedules", "/api/schedules"},
    [EP_PAUSES] = {"GET /api/pauses", "/api/pauses"},
    [EP_METRICS] = {"GET /metrics", "/metrics"},
};

/* --- Seeding ------------------------------------------------------------ */

typedef struct seed {
    const char *path;
    long total, history, worked, queued;
    long next;                            /* index of the next job created */
    long stride;                          /* one id kept per stride jobs */
    char (*ids)[JM_JOB_ID_SIZE];          /* ids kept for /api/jobs/<id> */
    size_t nids;
} seed;

/* The worked portion's executor: fails, retries or completes by turn. */
typedef struct mix_state {
    bu_counter *runs;
    atomic_long turn;
} mix_state;

/* The held jobs' executor: counts its starts and waits for `release`. */
typedef struct hold_state {
    bu_counter *started;
    bu_counter *release;
} hold_state;

static jm_decision mix_execute(void *self, jm_ctx *ctx)
{
    (void)ctx;
    mix_state *st = self;
    long k = atomic_fetch_add(&st->turn, 1);
    jm_decision d;
    if (k % FAIL_EVERY == FAIL_EVERY - 1)
        d = jm_decision_failed("bench: the table was locked", "bench: simulated failure");
    else if (k % RETRY_EVERY == RETRY_EVERY / 2)
        d = jm_decision_retry("bench: busy, again in an hour", NULL, MS_PER_HOUR);
    else
        d = jm_decision_completed("done", "{\"rows\":1000}");
    bu_counter_bump(st->runs);
    return d;
}

static jm_decision hold_execute(void *self, jm_ctx *ctx)
{
    hold_state *h = self;
    jm_ctx_progress(ctx, 0.5);
    bu_counter_bump(h->started);
    while (bu_counter_wait(h->release, 0.2) != 0 && !jm_ctx_is_cancelled(ctx))
        ;
    return jm_decision_completed("held", NULL);
}

static int register_all(jm_manager *m, jm_decision (*execute)(void *, jm_ctx *), void *self)
{
    int rc = JM_OK;
    for (size_t t = 0; t < NTYPES && rc == JM_OK; t++) {
        jm_executor ex = {JM_EXECUTOR_VERSION, type_mix[t].type, "bench-dashboard", 1, NULL,
                          execute, NULL, JM_CLASS_NORMAL, NULL};
        rc = jm_register(m, &ex, self);
    }
    return rc;
}

static const char *type_of(long i)
{
    int h = (int)(((uint64_t)i * 2654435761u) % 100);
    for (size_t t = 0; t < NTYPES; t++) {
        if (h < type_mix[t].percent)
            return type_mix[t].type;
        h -= type_mix[t].percent;
    }
    return type_mix[0].type;
}

static jm_manager *open_seed(const seed *s, jm_decision (*execute)(void *, jm_ctx *), void *self)
{
    jm_config cfg = bu_config(s->path);
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = register_all(m, execute, self);
    if (rc != JM_OK) {
        bench_fail(SCN, "set-up: jm_open: %s: %s", jm_strerror(rc), jm_last_error());
        jm_close(m);
        return NULL;
    }
    return m;
}

/* Creates n jobs of the mix; every `later_every`-th (0: none) due an hour
 * from now; all with `priority`. Keeps one id per stride. */
static int create_jobs(jm_manager *m, seed *s, long n, long later_every, int priority)
{
    jm_new_job *jobs = calloc(BATCH, sizeof *jobs);
    char (*params)[96] = calloc(BATCH, sizeof *params);
    char (*ns)[16] = calloc(BATCH, sizeof *ns);
    char (*ids)[JM_JOB_ID_SIZE] = calloc(BATCH, sizeof *ids);
    int rc = JM_ENOMEM;
    if (!jobs || !params || !ns || !ids)
        goto done;
    rc = JM_OK;
    int64_t later = bu_wall_ms() + MS_PER_HOUR;
    for (long made = 0; made < n && rc == JM_OK;) {
        long k = n - made < BATCH ? n - made : BATCH;
        for (long j = 0; j < k; j++) {
            long i = s->next + j;
            jm_create_opts o = JM_CREATE_OPTS_INIT;
            snprintf(ns[j], sizeof ns[j], "ns-%ld", i % NAMESPACES);
            snprintf(params[j], sizeof params[j], "{\"table\":\"ns-%ld.t-%ld\",\"rows\":%ld}",
                     i % NAMESPACES, i % TABLES, i % PARAM_ROWS);
            o.namespace_id = ns[j];
            o.priority = priority;
            if (later_every > 0 && i % later_every == later_every - 1)
                o.run_at_ms = later;
            jobs[j].type = type_of(i);
            jobs[j].params_json = params[j];
            jobs[j].opts = o;
        }
        rc = jm_create_many(m, jobs, (size_t)k, ids);
        for (long j = 0; rc == JM_OK && j < k; j++)
            if ((s->next + j) % s->stride == 0 && s->nids < ID_SAMPLES)
                memcpy(s->ids[s->nids++], ids[j], JM_JOB_ID_SIZE);
        s->next += k;
        made += k;
    }
    if (rc != JM_OK)
        bench_fail(SCN, "set-up: jm_create_many: %s: %s", jm_strerror(rc), jm_last_error());
done:
    free(jobs);
    free(params);
    free(ns);
    free(ids);
    return rc != JM_OK;
}

/* Schedules and a pause, as a used system has some. */
static int add_schedules_and_pause(jm_manager *m)
{
    int rc = JM_OK;
    for (int i = 0; i < SCHEDULES && rc == JM_OK; i++) {
        char name[32], params[64], id[JM_SCHEDULE_ID_SIZE];
        jm_schedule_spec sp = JM_SCHEDULE_SPEC_INIT;
        snprintf(name, sizeof name, "hourly-%d", i);
        snprintf(params, sizeof params, "{\"table\":\"ns-%d.t-%d\"}", i, i);
        sp.name = name;
        sp.type = type_mix[(size_t)i % NTYPES].type;
        sp.params_json = params;
        sp.interval_ms = MS_PER_HOUR;
        sp.paused = i == SCHEDULES - 1;
        rc = jm_schedule_create(m, &sp, id);
    }
    if (rc == JM_OK)
        rc = jm_pause(m, JM_PAUSE_RESOURCE, PAUSED_RESOURCE);
    if (rc != JM_OK)
        bench_fail(SCN, "set-up: schedules and pause: %s: %s", jm_strerror(rc), jm_last_error());
    return rc != JM_OK;
}

/* Backdates the history (every row so far) over HISTORY_SPAN_MS ending
 * just before `now`, keeping created_at in seq order as the library does,
 * and finishes it: failed, cancelled or completed by seq. While no manager
 * has the file open. */
static int finish_history(const char *path, int64_t now)
{
    sqlite3 *db = bu_sqlite_open(path, "NORMAL");
    if (!db)
        return 1;
    int rc = 0;
    sqlite3_int64 maxseq = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), 0) FROM jm_jobs", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        maxseq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    /* The library's schema stores statuses as jm_status integers; a
     * cancelled job never started, the others ran once, starting 20 to
     * 69 ms after their creation and ending 0.1 to 2.1 s after it. */
    const char *sql =
        "UPDATE jm_jobs SET "
        " status = CASE WHEN seq % :cevery = 0 THEN :cancelled"
        "  WHEN seq % :fevery = 0 THEN :failed ELSE :completed END,"
        " created_at = :start + seq * :span / :maxseq,"
        " run_at = :start + seq * :span / :maxseq,"
        " attempts = CASE WHEN seq % :cevery = 0 THEN 0 ELSE 1 END,"
        " started_at = CASE WHEN seq % :cevery = 0 THEN NULL"
        "  ELSE :start + seq * :span / :maxseq + 20 + seq % 50 END,"
        " finished_at = :start + seq * :span / :maxseq + 120 + seq * 13 % 2000,"
        " updated_at = :start + seq * :span / :maxseq + 120 + seq * 13 % 2000,"
        " message = CASE WHEN seq % :cevery = 0 THEN 'cancelled by an operator'"
        "  WHEN seq % :fevery = 0 THEN 'bench: the table was locked' ELSE 'done' END,"
        " exception_trace = CASE WHEN seq % :cevery <> 0 AND seq % :fevery = 0"
        "  THEN 'bench: simulated failure' END"
        " WHERE seq BETWEEN :lo AND :hi AND status = :queued";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "jm-bench: %s\n", sqlite3_errmsg(db));
        rc = 1;
        goto done;
    }
    const struct {
        const char *name;
        sqlite3_int64 value;
    } binds[] = {
        {":cevery", HISTORY_CANCELLED_EVERY},
        {":fevery", HISTORY_FAILED_EVERY},
        {":cancelled", JM_STATUS_CANCELLED},
        {":failed", JM_STATUS_FAILED},
        {":completed", JM_STATUS_COMPLETED},
        {":queued", JM_STATUS_QUEUED},
        {":start", now - HISTORY_MARGIN_MS - HISTORY_SPAN_MS},
        {":span", HISTORY_SPAN_MS},
        {":maxseq", maxseq ? maxseq : 1},
    };
    for (sqlite3_int64 lo = 1; lo <= maxseq && rc == 0; lo += HISTORY_CHUNK) {
        for (size_t i = 0; i < sizeof binds / sizeof binds[0]; i++)
            sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, binds[i].name),
                               binds[i].value);
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":lo"), lo);
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":hi"), lo + HISTORY_CHUNK - 1);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "jm-bench: finishing the history: %s\n", sqlite3_errmsg(db));
            rc = 1;
        }
        sqlite3_reset(st);
    }
    if (rc == 0)
        rc = bu_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* History, then the worked portion, then the queued one; the held jobs
 * come later, in their own manager. */
static int seed_table(seed *s, mix_state *mix)
{
    bench_log(SCN ": creating %ld jobs of history", s->history);
    jm_manager *m = open_seed(s, mix_execute, mix);
    if (!m)
        return 1;
    int bad = add_schedules_and_pause(m) || create_jobs(m, s, s->history, 0, 0);
    jm_close(m);
    if (bad)
        return 1;
    bench_log(SCN ": backdating and finishing them");
    if (finish_history(s->path, bu_wall_ms())) {
        bench_fail(SCN, "set-up: finishing the history failed");
        return 1;
    }
    bench_log(SCN ": working %ld jobs, then queueing %ld", s->worked, s->queued);
    if (!(m = open_seed(s, mix_execute, mix)))
        return 1;
    bad = create_jobs(m, s, s->worked, 0, 0);
    int rc = bad ? JM_OK : jm_start(m, WORKERS);
    if (!bad && rc == JM_OK && bu_counter_wait(mix->runs, WORK_TIMEOUT_S) != 0) {
        bench_fail(SCN, "set-up: %ld of %ld jobs ran in %d s", bu_counter_value(mix->runs),
                   s->worked, WORK_TIMEOUT_S);
        bad = 1;
    }
    if (!bad && rc == JM_OK)
        rc = jm_stop(m, WORK_TIMEOUT_S * 1000LL);
    if (rc != JM_OK) {
        bench_fail(SCN, "set-up: working: %s: %s", jm_strerror(rc), jm_last_error());
        bad = 1;
    }
    if (!bad)
        bad = create_jobs(m, s, s->queued, LATER_EVERY, 0);
    jm_close(m);
    return bad;
}

/* The held jobs: a manager whose every worker runs one until released. */
static jm_manager *hold_jobs(seed *s, hold_state *h)
{
    jm_manager *m = open_seed(s, hold_execute, h);
    if (!m)
        return NULL;
    int rc = JM_OK;
    if (create_jobs(m, s, HELD_JOBS, 0, HELD_PRIORITY) || (rc = jm_start(m, HELD_JOBS)) != JM_OK ||
        bu_counter_wait(h->started, HOLD_TIMEOUT_S) != 0) {
        if (rc != JM_OK)
            bench_fail(SCN, "set-up: jm_start: %s: %s", jm_strerror(rc), jm_last_error());
        else
            bench_fail(SCN, "set-up: %ld of %d held jobs started", bu_counter_value(h->started),
                       HELD_JOBS);
        bu_counter_bump(h->release);
        jm_close(m);
        return NULL;
    }
    return m;
}

/* --- The server ----------------------------------------------------------- */

typedef struct server {
    pid_t pid;
    int out;         /* its stdout */
    const char *log; /* its stderr goes to this file */
    unsigned port;
} server;

/* The last line of the server's stderr, for a failure's message. */
static const char *log_tail(const server *sv, char *buf, size_t len)
{
    FILE *f = fopen(sv->log, "r");
    char line[512];
    snprintf(buf, len, "nothing");
    while (f && fgets(line, sizeof line, f))
        if (line[0] != '\n')
            snprintf(buf, len, "%.*s", (int)strcspn(line, "\n"), line);
    if (f)
        fclose(f);
    return buf;
}

static int write_token(const char *path, char *token, size_t len)
{
    unsigned char raw[TOKEN_BYTES];
    if (len < 2 * TOKEN_BYTES + 1 || getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return 1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return 1;
    int bad = dprintf(fd, "%s\n", token) < 0;
    return close(fd) != 0 || bad;
}

/* Reads the "listening on" line from the child's stdout. */
static int read_port(server *sv)
{
    char buf[512];
    size_t have = 0;
    int64_t deadline = bu_mono_ns() + (int64_t)START_TIMEOUT_MS * 1000000;
    while (have < sizeof buf - 1) {
        int left_ms = (int)((deadline - bu_mono_ns()) / 1000000);
        struct pollfd p = {sv->out, POLLIN, 0};
        if (left_ms <= 0 || poll(&p, 1, left_ms) <= 0)
            break;
        ssize_t k = read(sv->out, buf + have, sizeof buf - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        buf[have] = '\0';
        const char *at = strstr(buf, "listening on http://");
        if (at && strchr(at, '\n')) {
            char host[64];
            if (sscanf(at, "listening on http://%63[^:]:%u/", host, &sv->port) == 2 && sv->port)
                return 0;
            break;
        }
    }
    char tail[256];
    bench_fail(SCN, "the server printed no address within %d s: '%.*s'; its stderr: %s",
               START_TIMEOUT_MS / 1000, (int)have, have ? buf : "",
               log_tail(sv, tail, sizeof tail));
    return 1;
}

static int start_server(const char *db, const char *token_file, server *sv)
{
    int fds[2];
    sv->pid = -1;
    sv->out = -1;
    if (pipe(fds) != 0) {
        bench_fail(SCN, "pipe: %s", strerror(errno));
        return 1;
    }
    /* Close-on-exec, so the child gets only the dup2'ed write end. */
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, sv->log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    char *argv[] = {(char *)cli_path, "serve", "--db", (char *)db, "--listen", "127.0.0.1:0",
                    "--token-file", (char *)token_file, NULL};
    int rc = posix_spawn(&sv->pid, cli_path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    sv->out = fds[0];
    if (rc != 0) {
        sv->pid = -1;
        bench_fail(SCN, "starting %s: %s", cli_path, strerror(rc));
        return 1;
    }
    return read_port(sv);
}

/* SIGTERM, then waits; 0 if it exited with status 0 in time. */
static int stop_server(server *sv)
{
    int bad = 0;
    if (sv->pid > 0) {
        kill(sv->pid, SIGTERM);
        int status = 0;
        int64_t deadline = bu_mono_ns() + (int64_t)STOP_TIMEOUT_MS * 1000000;
        pid_t got;
        while ((got = waitpid(sv->pid, &status, WNOHANG)) == 0 && bu_mono_ns() < deadline)
            bu_sleep_us(10000);
        if (got == 0) {
            kill(sv->pid, SIGKILL);
            waitpid(sv->pid, &status, 0);
            bench_fail(SCN, "the server did not stop within %d s of SIGTERM",
                       STOP_TIMEOUT_MS / 1000);
            bad = 1;
        } else if (got < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char tail[256];
            bench_fail(SCN, "the server ended with %s %d after SIGTERM; its stderr: %s",
                       got > 0 && WIFSIGNALED(status) ? "signal" : "status",
                       got > 0 && WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                       log_tail(sv, tail, sizeof tail));
            bad = 1;
        }
        sv->pid = -1;
    }
    if (sv->out >= 0)
        close(sv->out);
    sv->out = -1;
    return bad;
}

/* User + system CPU seconds of a process, from /proc/PID/stat; < 0 if
 * unreadable. */
static double proc_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields count from
     * the last ')'. utime and stime are fields 14 and 15. */
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* --- Requests -------------------------------------------------------------- */

typedef struct probe {
    http_conn *c;
    const seed *s;
    char deep[160];           /* the deep page's path */
    uint64_t rng;
    int64_t last_taken;       /* the overview's last taken_at_ms */
    long snapshots;           /* distinct overview snapshots seen */
    long total_in_overview;   /* jobs by_status adds up to, first answer */
    char by_status[256];      /* by_status of the first answer, as JSON */
} probe;

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static const cJSON *array_of(const cJSON *o, const char *name)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsArray(a) ? a : NULL;
}

static const char *text_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Whether every job of a list has `field` equal to `want`. */
static int all_jobs(const cJSON *jobs, const char *field, const char *want)
{
    const cJSON *j;
    cJSON_ArrayForEach(j, jobs)
    {
        const char *v = text_of(j, field);
        if (!v || strcmp(v, want) != 0)
            return 0;
    }
    return 1;
}

static int check_overview(probe *p, const cJSON *o)
{
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(o, "by_status");
    const cJSON *taken = cJSON_GetObjectItemCaseSensitive(o, "taken_at_ms");
    if (!cJSON_IsObject(by) || !cJSON_IsNumber(taken) ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "throughput")))
        return 0;
    if ((int64_t)taken->valuedouble != p->last_taken) {
        p->last_taken = (int64_t)taken->valuedouble;
        p->snapshots++;
    }
    if (!p->total_in_overview) {
        const cJSON *v;
        long sum = 0;
        cJSON_ArrayForEach(v, by) sum += (long)v->valuedouble;
        p->total_in_overview = sum;
        char *text = cJSON_PrintUnformatted(by);
        snprintf(p->by_status, sizeof p->by_status, "%s", text ? text : "?");
        cJSON_free(text);
    }
    return 1;
}

/* Whether an answer is what the endpoint should answer; `what` names the
 * job asked for by EP_JOB. */
static int answer_ok(probe *p, int ep, const http_response *r, const char *what)
{
    if (r->status != 200)
        return 0;
    switch (ep) {
    case EP_INDEX:
        return strstr(r->body, "<html") && strstr(r->body, "name=\"csrf-token\"") &&
               !strstr(r->body, "{{CSRF}}");
    case EP_APP_JS:
        return r->len > 0;
    case EP_METRICS:
        return strstr(r->body, "jobmgr_") != NULL;
    default:
        break;
    }
    cJSON *o = cJSON_ParseWithLength(r->body, r->len);
    const cJSON *a = NULL;
    int ok = 0;
    switch (ep) {
    case EP_OVERVIEW:
        ok = o && check_overview(p, o);
        break;
    case EP_JOBS:
    case EP_DEEP:
        ok = (a = array_of(o, "jobs")) && cJSON_GetArraySize(a) > 0;
        break;
    case EP_FAILED:
        ok = (a = array_of(o, "jobs")) && cJSON_GetArraySize(a) > 0 &&
             all_jobs(a, "status", "failed");
        break;
    case EP_BK_QUEUED:
        ok = (a = array_of(o, "jobs")) && cJSON_GetArraySize(a) > 0 &&
             all_jobs(a, "status", "queued") && all_jobs(a, "type", "BK");
        break;
    case EP_NEWEST:
        ok = (a = array_of(o, "jobs")) && cJSON_GetArraySize(a) == NEWEST_LIMIT;
        break;
    case EP_JOB:
        ok = o && text_of(o, "id") && strcmp(text_of(o, "id"), what) == 0;
        break;
    case EP_SCHEDULES:
        ok = (a = array_of(o, "schedules")) && cJSON_GetArraySize(a) == SCHEDULES;
        break;
    case EP_PAUSES:
        ok = (a = array_of(o, "pauses")) && cJSON_GetArraySize(a) == 1;
        break;
    default:
        break;
    }
    cJSON_Delete(o);
    return ok;
}

/* One request, timed; -1 (after bench_fail) if it failed or answered
 * wrong, else the milliseconds it took. */
static double ask(probe *p, int ep)
{
    char path[160];
    const char *what = "";
    if (ep == EP_DEEP) {
        snprintf(path, sizeof path, "%s", p->deep);
    } else if (ep == EP_JOB) {
        what = p->s->ids[next_rand(&p->rng) % p->s->nids];
        snprintf(path, sizeof path, "/api/jobs/%s", what);
    } else {
        snprintf(path, sizeof path, "%s", endpoints[ep].path);
    }
    http_response r;
    int64_t t0 = bu_mono_ns();
    int rc = http_get(p->c, path, &r);
    double ms = bu_seconds_since(t0) * 1000;
    if (rc != 0) {
        bench_fail(SCN, "GET %s: %s", path, http_error(p->c));
        return -1;
    }
    if (!answer_ok(p, ep, &r, what)) {
        bench_fail(SCN, "GET %s answered %d, not as expected: %.200s", path, r.status, r.body);
        return -1;
    }
    return ms;
}

/* Follows next_cursor DEEP_PAGES pages into the plain list. */
static int find_deep_page(probe *p)
{
    snprintf(p->deep, sizeof p->deep, "/api/jobs");
    for (int page = 0; page < DEEP_PAGES; page++) {
        http_response r;
        if (http_get(p->c, p->deep, &r) != 0 || r.status != 200) {
            bench_fail(SCN, "following the cursor: GET %s: %s", p->deep,
                       r.status != 200 ? "not 200" : http_error(p->c));
            return 1;
        }
        cJSON *o = cJSON_ParseWithLength(r.body, r.len);
        const char *next = text_of(o, "next_cursor");
        if (next)
            snprintf(p->deep, sizeof p->deep, "/api/jobs?cursor=%s", next);
        cJSON_Delete(o);
        if (!next) {
            bench_fail(SCN, "the job list ended after %d pages", page + 1);
            return 1;
        }
    }
    return 0;
}

/* --- Reporting ------------------------------------------------------------- */

/* Per endpoint and repetition, in milliseconds: p50 and p99 of the mixed
 * rounds, and p99 of the endpoint asked alone. */
typedef struct figures {
    double p50[EP_COUNT][MAX_REPS];
    double p99[EP_COUNT][MAX_REPS];
    double alone[EP_COUNT][MAX_REPS];
} figures;

static void report_p99(const char *metric, double v, double *worst, char *worst_metric,
                       char *over, size_t *used)
{
    char target[32];
    snprintf(target, sizeof target, "<= %.0f ms", TARGET_P99_MS);
    bench_report(SCN, metric, v, "ms", NAN, NULL, target, v <= TARGET_P99_MS);
    if (v > *worst) {
        *worst = v;
        snprintf(worst_metric, 96, "worst: %s", metric);
    }
    if (v > TARGET_P99_MS && *used < NOTE_OVER_MAX)
        *used += (size_t)snprintf(over + *used, NOTE_OVER_MAX - *used, "%s%s %.1f ms",
                                  *used ? ", " : "", metric, v);
}

static void report_all(long jobs, figures *f, int reps)
{
    double worst = -1;
    char worst_metric[96] = "", over[NOTE_OVER_MAX] = "", metric[96];
    size_t used = 0;
    for (int ep = 0; ep < EP_COUNT; ep++) {
        snprintf(metric, sizeof metric, "%s p50", endpoints[ep].label);
        bench_report(SCN, metric, bu_median(f->p50[ep], (size_t)reps), "ms", NAN, NULL, NULL,
                     BENCH_NO_TARGET);
        snprintf(metric, sizeof metric, "%s p99", endpoints[ep].label);
        report_p99(metric, bu_median(f->p99[ep], (size_t)reps), &worst, worst_metric, over,
                   &used);
        snprintf(metric, sizeof metric, "%s p99 alone", endpoints[ep].label);
        report_p99(metric, bu_median(f->alone[ep], (size_t)reps), &worst, worst_metric, over,
                   &used);
    }
    char ratio_to[64], target[32];
    snprintf(ratio_to, sizeof ratio_to, "the %.0f ms target", TARGET_P99_MS);
    snprintf(target, sizeof target, "<= %.0f ms", TARGET_P99_MS);
    bench_report(SCN, worst_metric, worst, "ms", worst / TARGET_P99_MS, ratio_to, target,
                 worst <= TARGET_P99_MS);
    if (over[0])
        bench_note(SCN, "over the p99 target with %ld jobs: %s", jobs, over);
}

/* --- The scenario ------------------------------------------------------------ */

/* `rounds` rounds that ask every endpoint once each, in a new random
 * order every round, a random pause of 0 to 2 gap_ms between rounds: the
 * overview's refreshes overlap the other requests at random moments, as
 * with a page open while someone browses. */
static int measure_mixed(probe *p, long rounds, long gap_ms, double *lat[EP_COUNT])
{
    int order[EP_COUNT];
    for (int ep = 0; ep < EP_COUNT; ep++)
        order[ep] = ep;
    for (long i = 0; i < rounds; i++) {
        if (i > 0 && gap_ms > 0)
            bu_sleep_us((long)(next_rand(&p->rng) % (uint64_t)(2 * gap_ms * 1000 + 1)));
        for (int k = EP_COUNT - 1; k > 0; k--) {
            int j = (int)(next_rand(&p->rng) % (uint64_t)(k + 1)), t = order[k];
            order[k] = order[j];
            order[j] = t;
        }
        for (int k = 0; k < EP_COUNT; k++) {
            double ms = ask(p, order[k]);
            if (ms < 0)
                return 1;
            lat[order[k]][i] = ms;
        }
    }
    return 0;
}

/* Each endpoint `rounds` times in a row, after a pause of pause_us for
 * any overview refresh started before to end. */
static int measure_alone(probe *p, long rounds, long pause_us, double *lat[EP_COUNT])
{
    for (int ep = 0; ep < EP_COUNT; ep++) {
        bu_sleep_us(pause_us);
        for (long i = 0; i < rounds; i++)
            if ((lat[ep][i] = ask(p, ep)) < 0)
                return 1;
    }
    return 0;
}

/* The CPU the server burns over idle_seconds with nobody asking. */
static int idle_cost(const bench_opts *o, const server *sv)
{
    bench_log(SCN ": idle for %.1f s, then measuring %.0f s", SETTLE_US / 1e6, o->idle_seconds);
    bu_sleep_us(SETTLE_US);
    double c0 = proc_cpu_seconds(sv->pid);
    int64_t t0 = bu_mono_ns();
    bu_sleep_us((long)(o->idle_seconds * 1e6));
    double c1 = proc_cpu_seconds(sv->pid);
    double secs = bu_seconds_since(t0);
    if (c0 < 0 || c1 < 0) {
        bench_fail(SCN, "cannot read /proc/%d/stat", (int)sv->pid);
        return 1;
    }
    double pct = (c1 - c0) / secs * 100;
    char metric[96], target[32];
    snprintf(metric, sizeof metric, "idle server CPU over %.0f s, no requests", o->idle_seconds);
    snprintf(target, sizeof target, "< %.0f%% of a core", TARGET_IDLE_PCT);
    bench_report(SCN, metric, pct, "% core", NAN, NULL, target, pct < TARGET_IDLE_PCT);
    return 0;
}

int scn_dashboard(const bench_opts *o)
{
    if (!cli_path[0]) {
        bench_note(SCN, "skipped: jm-bench was built without the jobmgr tool (JM_BUILD_TOOLS)");
        return 0;
    }
    if (bench_dashboard.jobs < MIN_JOBS) {
        bench_note(SCN, "skipped: it needs at least %d jobs (--dashboard-jobs, --jobs)", MIN_JOBS);
        return 0;
    }
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    long rounds = bench_dashboard.requests;
    seed s = {.total = bench_dashboard.jobs};
    s.worked = s.total * WORKED_PER_MILLE / 1000;
    s.queued = s.total * QUEUED_PER_MILLE / 1000;
    s.history = s.total - s.worked - s.queued - HELD_JOBS;
    s.stride = s.total / ID_SAMPLES > 0 ? s.total / ID_SAMPLES : 1;
    s.ids = calloc(ID_SAMPLES, sizeof *s.ids);
    mix_state mix = {bu_counter_new(s.worked), 0};
    hold_state hold = {bu_counter_new(HELD_JOBS), bu_counter_new(1)};
    server sv = {-1, -1, NULL, 0};
    probe p = {.s = &s, .rng = 0x9e3779b97f4a7c15u};
    jm_manager *held = NULL;
    double *lat[EP_COUNT] = {0};
    static figures fig;
    char *dir = bu_mkdtemp(o->dir, "dashboard");
    char *db = dir ? bu_path(dir, "jobs.db") : NULL;
    char *token_file = dir ? bu_path(dir, "token") : NULL;
    char *log = dir ? bu_path(dir, "serve.log") : NULL;
    char token[2 * TOKEN_BYTES + 1];
    int bad = 1;
    int alloc_ok = s.ids && mix.runs && hold.started && hold.release && db && token_file && log;
    for (int ep = 0; ep < EP_COUNT; ep++)
        alloc_ok &= (lat[ep] = calloc((size_t)rounds, sizeof *lat[ep])) != NULL;
    if (!alloc_ok) {
        bench_fail(SCN, "out of memory or no temporary directory");
        goto done;
    }
    s.path = db;
    sv.log = log;

    int64_t t0 = bu_mono_ns();
    if (seed_table(&s, &mix) || !(held = hold_jobs(&s, &hold)))
        goto done;
    bench_log(SCN ": %ld jobs seeded in %.1f s; starting %s", s.total, bu_seconds_since(t0),
              cli_path);
    if (write_token(token_file, token, sizeof token)) {
        bench_fail(SCN, "cannot write the token file %s", token_file);
        goto done;
    }
    if (start_server(db, token_file, &sv))
        goto done;
    if (!(p.c = http_new("127.0.0.1", sv.port, token, HTTP_TIMEOUT_S))) {
        bench_fail(SCN, "out of memory");
        goto done;
    }

    /* The first overview waits for the first snapshot: reported apart. */
    double first = ask(&p, EP_OVERVIEW);
    if (first < 0 || find_deep_page(&p))
        goto done;
    long pause_us = (long)(first * 1000 * PAUSE_FACTOR) + PAUSE_MIN_US;
    for (int ep = 0; ep < EP_COUNT; ep++)
        if (ask(&p, ep) < 0)
            goto done;
    if (p.total_in_overview != s.total) {
        bench_fail(SCN, "the overview counts %ld jobs; %ld were created", p.total_in_overview,
                   s.total);
        goto done;
    }
    for (int r = 0; r < reps; r++) {
        bench_log(SCN ": rep %d/%d: %ld rounds of %d requests, then %ld of each alone", r + 1,
                  reps, rounds, EP_COUNT, rounds);
        if (measure_mixed(&p, rounds, bench_dashboard.gap_ms, lat))
            goto done;
        for (int ep = 0; ep < EP_COUNT; ep++) {
            fig.p50[ep][r] = bu_percentile(lat[ep], (size_t)rounds, 50);
            fig.p99[ep][r] = bu_percentile(lat[ep], (size_t)rounds, 99);
        }
        if (measure_alone(&p, rounds, pause_us, lat))
            goto done;
        for (int ep = 0; ep < EP_COUNT; ep++)
            fig.alone[ep][r] = bu_percentile(lat[ep], (size_t)rounds, 99);
    }
    /* Idle means no connection either, as after the page is closed. */
    http_close(p.c);
    p.c = NULL;
    int64_t last_request = bu_mono_ns();
    report_all(s.total, &fig, reps);
    char metric[96], target[32];
    snprintf(target, sizeof target, "<= %.0f ms", TARGET_P99_MS);
    /* Right after start the first snapshot may still be counting: a
     * start-up cost, shown, with no target. */
    bench_report(SCN, "GET /api/overview right after start (may wait for the first snapshot)",
                 first, "ms", NAN, NULL, NULL, 1);
    if (idle_cost(o, &sv))
        goto done;
    double quiet = bu_seconds_since(last_request);
    if (quiet < SCRAPE_GAP_S)
        bu_sleep_us((long)((SCRAPE_GAP_S - quiet) * 1e6));
    if (!(p.c = http_new("127.0.0.1", sv.port, token, HTTP_TIMEOUT_S))) {
        bench_fail(SCN, "out of memory");
        goto done;
    }
    double scrape = ask(&p, EP_METRICS);
    if (scrape < 0)
        goto done;
    snprintf(metric, sizeof metric, "GET /metrics, once, %d s after the last request", SCRAPE_GAP_S);
    bench_report(SCN, metric, scrape, "ms", NAN, NULL, target, scrape <= TARGET_P99_MS);
    bench_note(SCN, "table: %ld jobs by status %s; types FL 40 %%, CO 15, SE, RT, CL 10 each, "
                    "BK 8, UC 5, RS 2; %d schedules, 1 pause",
               s.total, p.by_status, SCHEDULES);
    bench_note(SCN, "history backdated over 24 h and finished by SQL; %ld jobs worked just now by "
                    "%d workers (1/%d failed, 1/%d retrying); %ld queued after (1/%d due in 1 h); "
                    "%d held running by a second manager",
               s.worked, WORKERS, FAIL_EVERY, RETRY_EVERY, s.queued, LATER_EVERY, HELD_JOBS);
    bench_note(SCN, "one keep-alive connection, one warm-up request each; per rep %ld rounds "
                    "asking each of the %d endpoints once in random order, 0 to %ld ms between "
                    "rounds (p50, p99), then %ld requests of each endpoint in a row after a "
                    "%.1f s pause (p99 alone); overview snapshots seen meanwhile: %ld",
               rounds, EP_COUNT, 2 * bench_dashboard.gap_ms, rounds, pause_us / 1e6, p.snapshots);
    bad = 0;
done:
    http_close(p.c);
    if (sv.pid > 0 || sv.out >= 0)
        bad |= stop_server(&sv);
    if (hold.release)
        bu_counter_bump(hold.release);
    if (held && jm_stop(held, HOLD_TIMEOUT_S * 1000LL) != JM_OK)
        bench_fail(SCN, "stopping the held jobs' manager: %s", jm_last_error());
    jm_close(held);
    for (int ep = 0; ep < EP_COUNT; ep++)
        free(lat[ep]);
    bu_counter_free(mix.runs);
    bu_counter_free(hold.started);
    bu_counter_free(hold.release);
    free(s.ids);
    free(db);
    free(token_file);
    free(log);
    if (dir)
        bu_rm_rf(dir);
    free(dir);
    return bad;
}
