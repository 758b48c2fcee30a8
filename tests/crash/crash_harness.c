/*
 * The crash harness: proves that SIGKILL at any moment loses no job, never
 * lets one job run in two places at once, never re-runs a completed job,
 * never lets an idempotency key have two active jobs, and never corrupts
 * the jobs database or the reference engine's tables.
 *
 * The driver sets up an engine directory whose tables it knows row by row,
 * then for R rounds: creates a share of a few thousand jobs (its own "LX"
 * type, some with idempotency keys, and flush/compact/retention/stream
 * eviction jobs on those tables), starts worker processes (fork + exec of
 * this program with --worker: each opens its own manager with a 1 s lease
 * and runs a few worker threads; worker 0 also opens the engine, which
 * one process at a time may hold), and kills a random subset with SIGKILL
 * at random moments. A last clean worker then finishes everything and the
 * checker runs.
 *
 * LX jobs write "S <job id> <pid> <monotonic ns> <attempt>\n" when they start and
 * "F ..." when they finish to a ledger file outside the jobs database
 * (O_APPEND, one write() per record); the driver notes when it reaped each
 * killed process. A run without F was killed and counts as running until
 * its process's reaping time.
 *
 * Usage: crash_harness [--rounds N] [--jobs N] [--workers N] [--threads N]
 *                      [--seed N] [--keep] [--long]
 * The seed is printed first; the same seed replays the same kill schedule
 * and jobs (process timing still varies). Exit status 0 iff no violation.
 * Not part of the library: it uses only the public API and the engine.
 */
#define _GNU_SOURCE /* usleep, mkdtemp */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobmgr.h"
#include "jobmgr/engine.h"

#define DEFAULT_ROUNDS 20
#define DEFAULT_JOBS 3000
#define DEFAULT_WORKERS 3
#define DEFAULT_THREADS 3
#define LONG_ROUNDS 200
#define LONG_JOBS 20000
#define LEASE_MS 1000
#define POLL_MS 50
#define BUSY_TIMEOUT_MS 30000
#define JOB_MAX_RETRIES 1000 /* kills spend retries; none may run out */
#define ROUND_MIN_MS 150
#define ROUND_MAX_MS 1200
#define FINAL_TIMEOUT_MS 240000
#define LX_MAX_WORK_US 40000
#define UNSTARTED_SLACK 2
#define KEYED_EVERY 10 /* one LX job in this many has an idempotency key */
#define NKEYS 40       /* distinct keys, reused across rounds */
#define BATCH 100      /* jobs per jm_create_many */

#define NS "crash"
#define USER_TABLES 3
#define STREAM_TABLES 2
#define TABLE_ROWS 240
#define CHUNKS 6 /* rows inserted in this many chunks, flushed between */
#define DAY_MS INT64_C(86400000)
#define RETENTION_HOURS 720
#define STREAM_TTL_S 3600

/* ------------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static int64_t rnd_range(int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "crash: %s: %s (%s)\n", what, jm_err_name(rc), jm_last_error());
    exit(2);
}

static long violations;

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
    if (violations < 50) {
        va_list ap;
        va_start(ap, fmt);
        fputs("crash: VIOLATION: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    violations++;
}

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p)
        exit(2);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static jm_config base_config(const char *db)
{
    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = db;
    cfg.node_id = "crash-node"; /* one node: a dead worker's jobs come back at once */
    cfg.lease_ms = LEASE_MS;
    cfg.poll_interval_ms = POLL_MS;
    cfg.recovery = JM_RECOVER_RETRY;
    cfg.busy_timeout_ms = BUSY_TIMEOUT_MS;
    cfg.max_retries = JOB_MAX_RETRIES;
    cfg.backoff_base_ms = 10;
    cfg.backoff_max_ms = 100;
    cfg.log_level = JM_LOG_ERROR;
    return cfg;
}

/* ---- the LX executor (worker side) ---- */

static int ledger_fd = -1;

static void ledger(char kind, const jm_job *job)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%c %s %ld %" PRId64 " %d\n", kind, jm_job_id(job),
                     (long)getpid(), mono_ns(), jm_job_attempts(job));
    if (write(ledger_fd, line, (size_t)n) != n)
        _exit(5);
}

static jm_decision lx_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    const jm_job *job = jm_ctx_job(ctx);
    ledger('S', job);
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "work_us");
    int64_t us = cJSON_IsNumber(w) ? (int64_t)w->valuedouble : 0;
    /* A little work, with a checkpoint half-way for some jobs. */
    usleep((useconds_t)(us / 2));
    if (us % 3 == 0 && jm_ctx_checkpoint(ctx, "{\"half\": true}") != JM_OK)
        return jm_decision_retry("checkpoint failed", jm_last_error(), 0);
    usleep((useconds_t)(us - us / 2));
    ledger('F', job);
    return jm_decision_completed("done", NULL);
}

static const jm_executor lx_executor = {
    JM_EXECUTOR_VERSION, "LX", "ledgered work", 1, NULL, lx_execute, NULL, JM_CLASS_NORMAL, NULL,
};

static int64_t count_active(jm_manager *m)
{
    jm_filter f = JM_FILTER_INIT;
    f.statuses = JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |
                 JM_STATUS_BIT(JM_STATUS_RUNNING) | JM_STATUS_BIT(JM_STATUS_RETRYING);
    int64_t n = -1;
    int rc = jm_count(m, &f, &n);
    return rc == JM_OK ? n : -1;
}

/* A worker process: runs jobs until killed or, if `final`, until none is
 * left. */
static int worker_main(const char *dir, int with_engine, int threads, int final)
{
    char *db = path_in(dir, "jobs.db");
    char *ledger_path = path_in(dir, "ledger");
    char *engdir = path_in(dir, "engine");
    ledger_fd = open(ledger_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (ledger_fd < 0)
        return 2;
    jm_engine *e = NULL;
    jm_config cfg = base_config(db);
    if (with_engine) {
        int rc;
        int64_t until = wall_ms() + 10000;
        /* A killed predecessor's lock is gone once it is reaped; wait a
         * little anyway rather than fail on a slow kernel. */
        while ((rc = jm_engine_open(engdir, &e)) == JM_EBUSY && wall_ms() < until)
            sleep_ms(20);
        if (rc)
            die("worker: jm_engine_open", rc);
        cfg.host = jm_engine_host(e);
    }
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc)
        die("worker: jm_open", rc);
    if ((rc = jm_register(m, &lx_executor, NULL)))
        die("worker: jm_register", rc);
    if (with_engine && (rc = jm_register_builtin(m)))
        die("worker: jm_register_builtin", rc);
    if ((rc = jm_start(m, threads)))
        die("worker: jm_start", rc);
    if (!final) {
        for (;;)
            pause(); /* until SIGKILL */
    }
    int64_t until = wall_ms() + FINAL_TIMEOUT_MS;
    int quiet = 0;
    while (quiet < 3) {
        sleep_ms(100);
        int64_t n = count_active(m);
        quiet = n == 0 ? quiet + 1 : 0;
        if (wall_ms() > until) {
            fprintf(stderr, "crash: final worker: %" PRId64 " jobs still active\n", n);
            jm_close(m);
            jm_engine_close(e);
            return 3;
        }
    }
    jm_close(m);
    jm_engine_close(e);
    close(ledger_fd);
    free(db);
    free(ledger_path);
    free(engdir);
    return 0;
}

/* ---- the driver ---- */

typedef struct job_rec {
    char id[JM_JOB_ID_SIZE];
    char type[3];
    int key; /* -1: none */
} job_rec;

typedef struct killed {
    long pid;
    int64_t reaped_ns;
} killed;

typedef struct driver {
    const char *dir;
    char *db;
    char *engdir;
    char *ledger_path;
    const char *self_exe;
    int rounds, njobs, nworkers, threads;
    job_rec *jobs;
    size_t njobrecs, capjobs;
    killed *kills;
    size_t nkills, capkills;
    pid_t *workers;
    int64_t table_now; /* the time the engine's rows are dated from */
    int lx_created;
    int key_conflicts;
    int64_t active_after_rounds; /* jobs the final worker still had to run */
    long interrupted;            /* runs started but never finished */
} driver;

static void add_job(driver *d, const char *id, const char *type, int key)
{
    if (d->njobrecs == d->capjobs) {
        d->capjobs = d->capjobs ? d->capjobs * 2 : 1024;
        d->jobs = realloc(d->jobs, d->capjobs * sizeof *d->jobs);
        if (!d->jobs)
            exit(2);
    }
    job_rec *r = &d->jobs[d->njobrecs++];
    /* Bounded copies: ids and types are fixed-size, whatever the caller's
     * buffer (snprintf here trips -Wformat-truncation at -O2). */
    size_t n = strnlen(id, sizeof r->id - 1);
    memcpy(r->id, id, n);
    r->id[n] = '\0';
    n = strnlen(type, sizeof r->type - 1);
    memcpy(r->type, type, n);
    r->type[n] = '\0';
    r->key = key;
}

static void add_kill(driver *d, long pid, int64_t ns)
{
    if (d->nkills == d->capkills) {
        d->capkills = d->capkills ? d->capkills * 2 : 64;
        d->kills = realloc(d->kills, d->capkills * sizeof *d->kills);
        if (!d->kills)
            exit(2);
    }
    d->kills[d->nkills].pid = pid;
    d->kills[d->nkills].reaped_ns = ns;
    d->nkills++;
}

/* The document of row k of a table. */
static void row_doc(const char *table, int k, char *buf, size_t len)
{
    snprintf(buf, len, "{\"t\": \"%s\", \"k\": %d}", table, k);
}

/* Which rows each table must hold at the end, and whether deleted. */
static int user_row_old_deleted(int k) { return k % 5 == 0; }
static int user_row_recent_deleted(int k) { return !user_row_old_deleted(k) && k % 7 == 0; }
static int stream_row_expired(int k) { return k % 2 == 0; }

static void setup_engine(driver *d)
{
    jm_engine *e = NULL;
    int rc = jm_engine_open(d->engdir, &e);
    if (rc)
        die("jm_engine_open", rc);
    const jm_host *h = jm_engine_host(e);
    if ((rc = jm_engine_create_namespace(e, NS)))
        die("create namespace", rc);
    int64_t now = d->table_now;
    for (int t = 0; t < USER_TABLES + STREAM_TABLES; t++) {
        int stream = t >= USER_TABLES;
        char name[16];
        snprintf(name, sizeof name, stream ? "s%d" : "u%d", stream ? t - USER_TABLES : t);
        jm_table_opts o = JM_TABLE_OPTS_INIT;
        o.ttl_seconds = stream ? STREAM_TTL_S : 0;
        if ((rc = jm_engine_create_table(e, NS, name, stream ? JM_TABLE_STREAM : JM_TABLE_USER,
                                         &o)))
            die("create table", rc);
        int64_t keys[TABLE_ROWS];
        for (int k = 0; k < TABLE_ROWS; k++) {
            char doc[64];
            row_doc(name, k, doc, sizeof doc);
            int64_t created = stream ? (stream_row_expired(k) ? now - 2 * 3600 * 1000
                                                              : now - 10 * 60 * 1000)
                                     : now - 90 * DAY_MS + k;
            if ((rc = jm_engine_insert(e, NS, name, doc, created, &keys[k])))
                die("insert", rc);
            if (k % (TABLE_ROWS / CHUNKS) == TABLE_ROWS / CHUNKS - 1 && k < TABLE_ROWS - 1) {
                jm_host_flush fl;
                if ((rc = h->flush(h->self, NS, name, &fl)))
                    die("flush", rc);
            }
        }
        for (int k = 0; k < TABLE_ROWS && !stream; k++) {
            int64_t when = user_row_old_deleted(k)      ? now - 60 * DAY_MS
                           : user_row_recent_deleted(k) ? now - 3600 * 1000
                                                        : 0;
            if (when && (rc = jm_engine_soft_delete(e, NS, name, keys[k], when)))
                die("soft delete", rc);
        }
        /* Keys are 1.. in insertion order per table; the checker relies on
         * it to name rows. */
        if (keys[0] != 1 || keys[TABLE_ROWS - 1] != TABLE_ROWS) {
            fprintf(stderr, "crash: unexpected engine keys\n");
            exit(2);
        }
    }
    jm_engine_close(e);
}

typedef struct builtin_job {
    const char *type;
    const char *extra; /* more parameters, after the table's */
} builtin_job;

static void create_builtin_jobs(driver *d, jm_manager *m, int wave)
{
    char params[512], id[JM_JOB_ID_SIZE];
    for (int t = 0; t < USER_TABLES + STREAM_TABLES; t++) {
        int stream = t >= USER_TABLES;
        char name[16];
        snprintf(name, sizeof name, stream ? "s%d" : "u%d", stream ? t - USER_TABLES : t);
        const char *tt = stream ? "Stream" : "User";
        builtin_job js[4];
        int n = 0;
        if (wave == 0) {
            js[n++] = (builtin_job){JM_FLUSH, ""};
            js[n++] = stream ? (builtin_job){JM_STREAM_EVICTION,
                                                ", \"ttl_seconds\": 3600, \"batch_size\": 7"}
                             : (builtin_job){JM_RETENTION, ", \"retention_hours\": 720"};
        } else {
            js[n++] = (builtin_job){JM_COMPACT, ", \"target_file_size_mb\": 64"};
            js[n++] = (builtin_job){JM_FLUSH, ""};
            js[n++] = (builtin_job){JM_COMPACT, ", \"target_file_size_mb\": 1"};
        }
        for (int i = 0; i < n; i++) {
            snprintf(params, sizeof params,
                     "{\"namespace_id\": \"%s\", \"table_name\": \"%s\", \"table_type\": "
                     "\"%s\"%s}",
                     NS, name, tt, js[i].extra);
            int rc = jm_create(m, js[i].type, params, NULL, id);
            if (rc)
                die("create builtin job", rc);
            add_job(d, id, js[i].type, -1);
        }
    }
}

/* Creates this round's share of LX jobs: unkeyed ones in batches, keyed
 * ones one by one, checking the key rule as it goes. */
static void create_lx_jobs(driver *d, jm_manager *m, int count)
{
    jm_new_job batch[BATCH];
    char params[BATCH][64];
    char ids[BATCH][JM_JOB_ID_SIZE];
    int nb = 0;
    for (int i = 0; i < count; i++) {
        int seq = d->lx_created++;
        int64_t us = rnd_range(0, LX_MAX_WORK_US);
        if (seq % KEYED_EVERY == 0) {
            int key = (int)rnd_range(0, NKEYS - 1);
            char keytext[32], p[64], id[JM_JOB_ID_SIZE];
            snprintf(keytext, sizeof keytext, "key-%d", key);
            snprintf(p, sizeof p, "{\"work_us\": %" PRId64 "}", us);
            jm_create_opts o = JM_CREATE_OPTS_INIT;
            o.idempotency_key = keytext;
            int rc = jm_create(m, "LX", p, &o, id);
            if (rc == JM_ECONFLICT) {
                d->key_conflicts++;
                int found = 0;
                for (size_t j = 0; j < d->njobrecs && !found; j++)
                    found = d->jobs[j].key == key && strcmp(d->jobs[j].id, id) == 0;
                if (!found)
                    violation("key %s: conflict names %s, not a job created with it", keytext,
                              id);
                continue;
            }
            if (rc)
                die("jm_create (keyed)", rc);
            /* The key was free: every earlier job with it must be final. */
            for (size_t j = 0; j < d->njobrecs; j++) {
                if (d->jobs[j].key != key)
                    continue;
                jm_job *old = NULL;
                if (jm_get(m, d->jobs[j].id, &old) == JM_OK) {
                    jm_status s = jm_job_status(old);
                    if (s != JM_STATUS_COMPLETED && s != JM_STATUS_FAILED &&
                        s != JM_STATUS_CANCELLED)
                        violation("key %s: %s created while %s is %s", keytext, id,
                                  d->jobs[j].id, jm_status_name(s));
                    jm_job_free(old);
                }
            }
            add_job(d, id, "LX", key);
            continue;
        }
        snprintf(params[nb], sizeof params[nb], "{\"work_us\": %" PRId64 "}", us);
        jm_new_job j = {"LX", params[nb], JM_CREATE_OPTS_INIT};
        batch[nb++] = j;
        if (nb == BATCH || i == count - 1) {
            int rc = jm_create_many(m, batch, (size_t)nb, ids);
            if (rc)
                die("jm_create_many", rc);
            for (int k = 0; k < nb; k++)
                add_job(d, ids[k], "LX", -1);
            nb = 0;
        }
    }
    if (nb) {
        int rc = jm_create_many(m, batch, (size_t)nb, ids);
        if (rc)
            die("jm_create_many", rc);
        for (int k = 0; k < nb; k++)
            add_job(d, ids[k], "LX", -1);
    }
}

static pid_t spawn_worker(driver *d, int with_engine, int final)
{
    char threads[16];
    snprintf(threads, sizeof threads, "%d", d->threads);
    pid_t pid = fork();
    if (pid < 0) {
        perror("crash: fork");
        exit(2);
    }
    if (pid == 0) {
        /* A fresh process image: no SQLite state crosses the fork. */
        char *argv[] = {(char *)d->self_exe, "--worker", (char *)d->dir,
                        with_engine ? "1" : "0", threads, final ? "1" : "0", NULL};
        execv(d->self_exe, argv);
        _exit(127);
    }
    return pid;
}

/* Reaps a worker that should still be running; one that exited on its
 * own crashed or failed. */
static void kill_worker(driver *d, int w)
{
    pid_t pid = d->workers[w];
    kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    add_kill(d, (long)pid, mono_ns());
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        violation("worker %ld ended by itself before the kill (status 0x%x)", (long)pid,
                  status);
    d->workers[w] = 0;
}

typedef struct sched {
    int64_t at_ms;
    int worker;
} sched;

static int sched_cmp(const void *a, const void *b)
{
    const sched *x = a, *y = b;
    return (x->at_ms > y->at_ms) - (x->at_ms < y->at_ms);
}

static void run_rounds(driver *d)
{
    jm_config cfg = base_config(d->db);
    /* Most jobs at once, so the workers are busy when the kills come; the
     * rest a share per round, so creation meets running jobs too. */
    int first = d->njobs * 2 / 3;
    int per_round = (d->njobs - first) / d->rounds + 1;
    for (int r = 0; r < d->rounds; r++) {
        /* The driver's manager is open only while it creates jobs: it never
         * runs jobs and holds no SQLite state across a fork. */
        jm_manager *m = NULL;
        int rc = jm_open(&cfg, &m);
        if (rc)
            die("driver: jm_open", rc);
        if ((rc = jm_register(m, &lx_executor, NULL)) || (rc = jm_register_builtin(m)))
            die("driver: jm_register", rc);
        int want = r == 0 ? first : per_round;
        int share = d->lx_created + want > d->njobs ? d->njobs - d->lx_created : want;
        if (share > 0)
            create_lx_jobs(d, m, share);
        if (r == 0 || r == d->rounds / 3)
            create_builtin_jobs(d, m, r == 0 ? 0 : 1);
        jm_close(m);

        for (int w = 0; w < d->nworkers; w++)
            if (!d->workers[w])
                d->workers[w] = spawn_worker(d, w == 0, 0);
        /* Kill a random non-empty subset at random moments of the round. */
        int64_t len = rnd_range(ROUND_MIN_MS, ROUND_MAX_MS);
        sched s[64];
        int ns = 0;
        for (int w = 0; w < d->nworkers && ns < 64; w++)
            if (rnd() % 100 < 60)
                s[ns++] = (sched){rnd_range(0, len), w};
        if (ns == 0)
            s[ns++] = (sched){rnd_range(0, len), (int)rnd_range(0, d->nworkers - 1)};
        qsort(s, (size_t)ns, sizeof s[0], sched_cmp);
        int64_t slept = 0;
        for (int i = 0; i < ns; i++) {
            sleep_ms(s[i].at_ms - slept);
            slept = s[i].at_ms;
            kill_worker(d, s[i].worker);
        }
        sleep_ms(len - slept);
    }
    for (int w = 0; w < d->nworkers; w++)
        if (d->workers[w])
            kill_worker(d, w);
}

/* ---- the checker ---- */

typedef struct lrec {
    char kind;
    char id[JM_JOB_ID_SIZE];
    long pid;
    int64_t ns;
    int attempt;
} lrec;

static int lrec_cmp(const void *a, const void *b)
{
    const lrec *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    if (x->ns != y->ns)
        return (x->ns > y->ns) - (x->ns < y->ns);
    /* Same nanosecond: S before F of the same run cannot happen the other
     * way round. */
    return (x->kind == 'F') - (y->kind == 'F');
}

static int64_t reaped_at(const driver *d, long pid)
{
    for (size_t i = 0; i < d->nkills; i++)
        if (d->kills[i].pid == pid)
            return d->kills[i].reaped_ns;
    return INT64_MAX; /* never killed */
}

static int job_cmp(const void *a, const void *b)
{
    return strcmp(((const job_rec *)a)->id, ((const job_rec *)b)->id);
}

typedef struct open_run {
    long pid;
    int attempt;
    int64_t start;
} open_run;

/* Checks one job's ledger records (sorted by time). Returns the number of
 * runs. */
static int check_job_ledger(driver *d, const lrec *r, size_t n, int final_attempts)
{
    open_run open[64];
    int nopen = 0, runs = 0;
    int64_t final_f = -1;
    for (size_t i = 0; i < n; i++) {
        /* Runs of processes reaped before this record are over. */
        for (int k = 0; k < nopen;) {
            if (reaped_at(d, open[k].pid) < r[i].ns)
                open[k] = open[--nopen];
            else
                k++;
        }
        if (r[i].kind == 'S') {
            runs++;
            if (nopen > 0)
                violation("job %s: run by pid %ld (attempt %d) started while pid %ld's run "
                          "(attempt %d) was still going",
                          r[i].id, r[i].pid, r[i].attempt, open[0].pid, open[0].attempt);
            if (final_f >= 0)
                violation("job %s: started again (pid %ld) after its completing run ended",
                          r[i].id, r[i].pid);
            if (r[i].attempt > final_attempts)
                violation("job %s: run of attempt %d, but the job ended at attempt %d",
                          r[i].id, r[i].attempt, final_attempts);
            if (nopen < 64)
                open[nopen++] = (open_run){r[i].pid, r[i].attempt, r[i].ns};
        } else {
            int found = 0;
            for (int k = 0; k < nopen && !found; k++) {
                if (open[k].pid == r[i].pid && open[k].attempt == r[i].attempt) {
                    open[k] = open[--nopen];
                    found = 1;
                }
            }
            if (!found)
                violation("job %s: finish by pid %ld (attempt %d) without its start",
                          r[i].id, r[i].pid, r[i].attempt);
            if (r[i].attempt == final_attempts)
                final_f = r[i].ns;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (r[i].kind == 'S') {
            int done = 0;
            for (size_t k = i + 1; k < n && !done; k++)
                done = r[k].kind == 'F' && r[k].pid == r[i].pid && r[k].attempt == r[i].attempt;
            d->interrupted += !done;
        }
    return runs;
}

typedef struct expect_rows {
    const char *table;
    int stream;
    int next; /* next row index expected */
    int bad;
} expect_rows;

static int expected_present(int stream, int k)
{
    return stream ? !stream_row_expired(k) : !user_row_old_deleted(k);
}

static int scan_row(void *arg, const jm_host_row *row)
{
    expect_rows *x = arg;
    /* Keys are 1-based row numbers: key k+1 is row k. */
    int k = (int)row->key - 1;
    if (k < 0 || k >= TABLE_ROWS) {
        violation("table %s: unknown key %" PRId64, x->table, row->key);
        x->bad = 1;
        return 0;
    }
    while (x->next < k) {
        if (expected_present(x->stream, x->next))
            violation("table %s: row %d lost", x->table, x->next);
        x->next++;
    }
    if (k < x->next) {
        violation("table %s: row %d seen twice or out of order", x->table, k);
        return 0;
    }
    if (!expected_present(x->stream, k))
        violation("table %s: row %d should have been removed", x->table, k);
    char doc[64];
    row_doc(x->table, k, doc, sizeof doc);
    if (row->doc_len != strlen(doc) || memcmp(row->doc, doc, row->doc_len) != 0)
        violation("table %s: row %d has document %.*s", x->table, k, (int)row->doc_len,
                  row->doc);
    int should_be_deleted = !x->stream && user_row_recent_deleted(k);
    if ((row->deleted_at != 0) != should_be_deleted)
        violation("table %s: row %d deleted_at %" PRId64, x->table, k, row->deleted_at);
    x->next = k + 1;
    return 0;
}

static void check_integrity(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        violation("cannot open %s", path);
        sqlite3_close(db);
        return;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        violation("integrity_check of %s could not run: %s", path, sqlite3_errmsg(db));
    } else {
        const char *res = (const char *)sqlite3_column_text(st, 0);
        if (!res || strcmp(res, "ok") != 0)
            violation("integrity_check of %s: %s", path, res ? res : "(null)");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static lrec *read_ledger(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    *n = 0;
    if (!f)
        return NULL;
    size_t cap = 4096;
    lrec *v = malloc(cap * sizeof *v);
    char line[256];
    while (v && fgets(line, sizeof line, f)) {
        lrec r;
        long long ns;
        if (sscanf(line, "%c %39s %ld %lld %d", &r.kind, r.id, &r.pid, &ns, &r.attempt) != 5 ||
            (r.kind != 'S' && r.kind != 'F')) {
            violation("ledger: malformed line '%s'", line);
            continue;
        }
        r.ns = ns;
        if (*n == cap) {
            cap *= 2;
            lrec *nv = realloc(v, cap * sizeof *v);
            if (!nv)
                exit(2);
            v = nv;
        }
        v[(*n)++] = r;
    }
    fclose(f);
    return v;
}

static long check(driver *d)
{
    jm_config cfg = base_config(d->db);
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc)
        die("checker: jm_open", rc);

    /* Every job created exists and ended completed. */
    qsort(d->jobs, d->njobrecs, sizeof *d->jobs, job_cmp);
    int *attempts = calloc(d->njobrecs ? d->njobrecs : 1, sizeof *attempts);
    int *retries = calloc(d->njobrecs ? d->njobrecs : 1, sizeof *retries);
    for (size_t i = 0; i < d->njobrecs; i++) {
        jm_job *j = NULL;
        if ((rc = jm_get(m, d->jobs[i].id, &j)) != JM_OK) {
            violation("job %s (%s) lost: %s", d->jobs[i].id, d->jobs[i].type, jm_err_name(rc));
            continue;
        }
        if (jm_job_status(j) != JM_STATUS_COMPLETED)
            violation("job %s (%s) ended %s: %s", d->jobs[i].id, d->jobs[i].type,
                      jm_status_name(jm_job_status(j)),
                      jm_job_message(j) ? jm_job_message(j) : "");
        attempts[i] = jm_job_attempts(j);
        retries[i] = jm_job_retry_count(j);
        jm_job_free(j);
    }
    int64_t total = -1;
    jm_filter all = JM_FILTER_INIT;
    if (jm_count(m, &all, &total) != JM_OK || total != (int64_t)d->njobrecs)
        violation("the jobs table holds %" PRId64 " jobs, %zu were created", total,
                  d->njobrecs);

    /* Idempotency keys: now all final, and as many jobs per key as were
     * created with it. */
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", k);
        jm_filter f = JM_FILTER_INIT;
        f.idempotency_key = key;
        int64_t n = -1, created = 0;
        jm_count(m, &f, &n);
        for (size_t i = 0; i < d->njobrecs; i++)
            created += d->jobs[i].key == k;
        if (n != created)
            violation("key %s: %" PRId64 " jobs, %" PRId64 " created", key, n, created);
        f.statuses = JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |
                     JM_STATUS_BIT(JM_STATUS_RUNNING) | JM_STATUS_BIT(JM_STATUS_RETRYING);
        jm_count(m, &f, &n);
        if (n > 1)
            violation("key %s: %" PRId64 " active jobs", key, n);
    }
    jm_close(m);

    /* The ledger. */
    size_t nrec = 0;
    lrec *recs = read_ledger(d->ledger_path, &nrec);
    qsort(recs, nrec, sizeof *recs, lrec_cmp);
    long runs = 0;
    size_t i = 0;
    while (i < nrec) {
        size_t j = i;
        while (j < nrec && strcmp(recs[j].id, recs[i].id) == 0)
            j++;
        job_rec key;
        snprintf(key.id, sizeof key.id, "%s", recs[i].id);
        job_rec *jr = bsearch(&key, d->jobs, d->njobrecs, sizeof *d->jobs, job_cmp);
        if (!jr)
            violation("ledger names job %s that was never created", recs[i].id);
        else
            runs += check_job_ledger(d, &recs[i], j - i, attempts[jr - d->jobs]);
        i = j;
    }
    /* Every completed LX job finished a run in the ledger, and spent no
     * retry for a run that never started: recovery charges only runs the
     * run journal marked started, a few microseconds before the executor
     * writes its S record. A kill in that window charges a run the ledger
     * does not show; more than UNSTARTED_SLACK of them in one run means
     * claimed jobs that never started were charged. */
    long unstarted_charges = 0;
    for (size_t k = 0, r = 0; k < d->njobrecs; k++) {
        if (strcmp(d->jobs[k].type, "LX") != 0)
            continue;
        while (r < nrec && strcmp(recs[r].id, d->jobs[k].id) < 0)
            r++;
        int finished = 0, started = 0;
        for (size_t q = r; q < nrec && strcmp(recs[q].id, d->jobs[k].id) == 0; q++) {
            finished |= recs[q].kind == 'F' && recs[q].attempt == attempts[k];
            started += recs[q].kind == 'S';
        }
        if (!finished)
            violation("job %s completed without a finished run of attempt %d in the ledger",
                      d->jobs[k].id, attempts[k]);
        if (retries[k] > started)
            unstarted_charges += retries[k] - started;
    }
    if (unstarted_charges > UNSTARTED_SLACK)
        violation("%ld retries spent on runs that never started (%zu kills)",
                  unstarted_charges, d->nkills);
    free(recs);
    free(attempts);
    free(retries);

    /* The databases and the engine's tables. */
    check_integrity(d->db);
    char *catalog = path_in(d->engdir, "catalog.db");
    check_integrity(catalog);
    free(catalog);
    jm_engine *e = NULL;
    if ((rc = jm_engine_open(d->engdir, &e)) != JM_OK) {
        violation("engine does not open: %s", jm_last_error());
        return runs;
    }
    for (int t = 0; t < USER_TABLES + STREAM_TABLES; t++) {
        int stream = t >= USER_TABLES;
        char name[16];
        snprintf(name, sizeof name, stream ? "s%d" : "u%d", stream ? t - USER_TABLES : t);
        expect_rows x = {name, stream, 0, 0};
        if ((rc = jm_engine_scan(e, NS, name, 1, scan_row, &x)) != JM_OK) {
            violation("table %s: scan failed: %s", name, jm_last_error());
            continue;
        }
        for (; x.next < TABLE_ROWS && !x.bad; x.next++)
            if (expected_present(stream, x.next))
                violation("table %s: row %d lost", name, x.next);
    }
    jm_engine_close(e);
    return runs;
}

static void usage(void)
{
    fprintf(stderr, "usage: crash_harness [--rounds N] [--jobs N] [--workers N] [--threads N]"
                    " [--seed N] [--keep] [--long]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--worker") == 0)
        return worker_main(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));

    driver d;
    memset(&d, 0, sizeof d);
    d.rounds = DEFAULT_ROUNDS;
    d.njobs = DEFAULT_JOBS;
    d.nworkers = DEFAULT_WORKERS;
    d.threads = DEFAULT_THREADS;
    uint64_t seed = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32);
    int keep = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--long") == 0) {
            d.rounds = LONG_ROUNDS;
            d.njobs = LONG_JOBS;
        } else if (strcmp(a, "--keep") == 0) {
            keep = 1;
        } else if (v && strcmp(a, "--rounds") == 0) {
            d.rounds = atoi(v), i++;
        } else if (v && strcmp(a, "--jobs") == 0) {
            d.njobs = atoi(v), i++;
        } else if (v && strcmp(a, "--workers") == 0) {
            d.nworkers = atoi(v), i++;
        } else if (v && strcmp(a, "--threads") == 0) {
            d.threads = atoi(v), i++;
        } else if (v && strcmp(a, "--seed") == 0) {
            seed = strtoull(v, NULL, 10), i++;
        } else {
            usage();
        }
    }
    if (d.rounds < 1 || d.njobs < 1 || d.nworkers < 1 || d.nworkers > 64 || d.threads < 1 ||
        d.threads > JM_MAX_WORKERS)
        usage();
    if (seed == 0)
        seed = 1; /* xorshift needs a non-zero state */
    printf("crash: seed %" PRIu64 "\n", seed);
    fflush(stdout);
    rng_state = seed;

    static char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        die("readlink /proc/self/exe", JM_EIO);
    self[len] = '\0';
    d.self_exe = self;
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/jmcrash-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpl)) {
        perror("crash: mkdtemp");
        return 2;
    }
    d.dir = tmpl;
    d.db = path_in(d.dir, "jobs.db");
    d.engdir = path_in(d.dir, "engine");
    d.ledger_path = path_in(d.dir, "ledger");
    d.workers = calloc((size_t)d.nworkers, sizeof *d.workers);
    d.table_now = wall_ms();

    setup_engine(&d);
    run_rounds(&d);

    {
        jm_config cfg = base_config(d.db);
        jm_manager *m = NULL;
        int rc = jm_open(&cfg, &m);
        if (rc)
            die("driver: jm_open", rc);
        d.active_after_rounds = count_active(m);
        jm_close(m);
    }
    /* A clean worker finishes everything. */
    pid_t fin = spawn_worker(&d, 1, 1);
    int status = 0;
    while (waitpid(fin, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        violation("the final worker did not finish cleanly (status 0x%x)", status);

    long runs = check(&d);
    printf("crash: %d idempotent creations refused, %ld runs interrupted, %" PRId64
           " jobs left for the final worker\n",
           d.key_conflicts, d.interrupted, d.active_after_rounds);
    printf("crash: rounds %d, kills %zu, jobs %zu, runs %ld, violations %ld\n", d.rounds,
           d.nkills, d.njobrecs, runs, violations);
    if (violations || keep)
        printf("crash: files kept in %s\n", d.dir);
    else {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", d.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "crash: could not remove %s\n", d.dir);
    }
    free(d.db);
    free(d.engdir);
    free(d.ledger_path);
    free(d.jobs);
    free(d.kills);
    free(d.workers);
    return violations ? 1 : 0;
}
