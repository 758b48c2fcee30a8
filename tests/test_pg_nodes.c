/*
 * Several nodes on one PostgreSQL jobs table: processes with distinct node
 * ids, as machines would be. 3 nodes x 2 workers work 20 000 jobs, each
 * executed exactly once; a node SIGKILLed mid-job has its job recovered by
 * another once the lease expires; a node SIGSTOPped mid-job loses its job
 * the same way and, resumed, changes nothing; the server restarts under a
 * working node, and its connections are ended with pg_terminate_backend: it
 * reconnects and loses nothing. Both end every connection of the server,
 * so ctest runs this program alone.
 *
 * Needs JM_TEST_PG_URL (scripts/pg_server.sh); skipped (77) without it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "jobmgr.h"
#include "test_util.h"

#define NODES 3
#define WORK_JOBS 20000
#define LEASE_MS 1000

static const char *url;

typedef struct node_ctx {
    const char *name;
    const char *log;    /* every run appends "<job id> <node>\n" here */
    const char *hold;   /* while this file is missing, a job marked hold blocks */
} node_ctx;

static int sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    return nanosleep(&ts, NULL);
}

static jm_decision node_exec(void *self, jm_ctx *ctx)
{
    node_ctx *n = self;
    const jm_job *j = jm_ctx_job(ctx);
    char line[128];
    int len = snprintf(line, sizeof line, "%s %s\n", jm_job_id(j), n->name);
    int fd = open(n->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, (size_t)len) != len)
        _exit(20);
    close(fd);
    const cJSON *hold = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "hold");
    /* Only the first run holds: the node that recovers it runs it through. */
    if (cJSON_IsString(hold) && strcmp(hold->valuestring, n->name) == 0)
        while (access(n->hold, F_OK) != 0)
            sleep_ms(5);
    return jm_decision_completed(n->name, NULL);
}

static jm_config node_config(const char *schema, const char *node)
{
    jm_config c = tu_config("unused");
    c.db_path = NULL;
    c.db_url = url;
    c.pg_schema = schema;
    c.node_id = node;
    c.lease_ms = LEASE_MS;
    c.poll_interval_ms = 20;
    return c;
}

/* A node: a process of its own with two workers, until `stop` closes. */
static pid_t start_node(const char *schema, node_ctx *n, int stop_fd_read, int stop_fd_write)
{
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid != 0)
        return pid;
    close(stop_fd_write);
    jm_config c = node_config(schema, n->name);
    jm_manager *m = NULL;
    if (jm_open(&c, &m) != JM_OK)
        _exit(10);
    jm_executor ex;
    memset(&ex, 0, sizeof ex);
    ex.version = JM_EXECUTOR_VERSION;
    ex.type = "NX";
    ex.name = "node";
    ex.execute = node_exec;
    if (jm_register(m, &ex, n) != JM_OK || jm_start(m, 2) != JM_OK)
        _exit(11);
    char b;
    while (read(stop_fd_read, &b, 1) > 0)
        ;
    jm_stop(m, 10000);
    jm_close(m);
    _exit(0);
}

/* The manager the test itself uses, with the executor registered so it
 * may create jobs, and no workers. */
static jm_manager *open_client(const char *schema)
{
    jm_config c = node_config(schema, "client");
    jm_manager *m = NULL;
    if (jm_open(&c, &m) != JM_OK)
        fail_msg("jm_open: %s", jm_last_error());
    static node_ctx none = {"client", "/dev/null", "/"};
    jm_executor ex;
    memset(&ex, 0, sizeof ex);
    ex.version = JM_EXECUTOR_VERSION;
    ex.type = "NX";
    ex.name = "node";
    ex.execute = node_exec;
    assert_int_equal(jm_register(m, &ex, &none), JM_OK);
    return m;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void three_nodes_run_each_job_once(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char schema[64];
    snprintf(schema, sizeof schema, "t_nodes_%d", (int)getpid());
    char *log = tu_path(dir, "runs.log");
    jm_manager *m = open_client(schema);
    static jm_new_job jobs[1000];
    static char ids[1000][JM_JOB_ID_SIZE];
    for (int i = 0; i < 1000; i++)
        jobs[i] = (jm_new_job){"NX", NULL, JM_CREATE_OPTS_INIT};
    for (int b = 0; b < WORK_JOBS / 1000; b++)
        assert_int_equal(jm_create_many(m, jobs, 1000, ids), JM_OK);

    static const char *names[NODES] = {"node-a", "node-b", "node-c"};
    node_ctx n[NODES];
    pid_t pids[NODES];
    int stop[2];
    assert_int_equal(pipe2(stop, O_CLOEXEC), 0);
    for (int i = 0; i < NODES; i++) {
        n[i] = (node_ctx){names[i], log, "/"};
        pids[i] = start_node(schema, &n[i], stop[0], stop[1]);
    }
    close(stop[0]);
    int done = tu_wait_completed(m, WORK_JOBS, 10 * TU_TIMEOUT_MS);
    close(stop[1]);
    for (int i = 0; i < NODES; i++) {
        int st = 0;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_true(done);

    /* Every job ran once: 20 000 lines, 20 000 distinct ids, and every
     * node took a share. */
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char **seen = calloc(WORK_JOBS + 1, sizeof *seen);
    assert_non_null(seen);
    int lines = 0, per_node[NODES] = {0};
    char id[64], node[32];
    while (fscanf(f, "%63s %31s", id, node) == 2) {
        assert_true(lines < WORK_JOBS);
        seen[lines++] = strdup(id);
        for (int i = 0; i < NODES; i++)
            per_node[i] += strcmp(node, names[i]) == 0;
    }
    fclose(f);
    assert_int_equal(lines, WORK_JOBS);
    qsort(seen, (size_t)lines, sizeof *seen, cmp_str);
    for (int i = 1; i < lines; i++)
        if (strcmp(seen[i - 1], seen[i]) == 0)
            fail_msg("job %s ran twice", seen[i]);
    for (int i = 0; i < NODES; i++)
        assert_true(per_node[i] > 0);
    printf("# nodes: %d jobs, runs per node %d / %d / %d\n", lines, per_node[0], per_node[1],
           per_node[2]);
    jm_filter all = JM_FILTER_INIT;
    int64_t total = 0;
    assert_int_equal(jm_count(m, &all, &total), JM_OK);
    assert_int_equal(total, WORK_JOBS);
    for (int i = 0; i < lines; i++)
        free(seen[i]);
    free(seen);
    jm_close(m);
    free(log);
    tu_rmdir(dir);
}

typedef struct line_arg {
    const char *log;
    const char *needle;
} line_arg;

static int log_has(void *arg)
{
    line_arg *a = arg;
    FILE *f = fopen(a->log, "r");
    if (!f)
        return 0;
    char line[256];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, a->needle) != NULL;
    fclose(f);
    return found;
}

typedef struct job_arg {
    jm_manager *m;
    const char *id;
} job_arg;

static int job_completed(void *arg)
{
    job_arg *a = arg;
    return tu_status(a->m, a->id) == JM_STATUS_COMPLETED;
}

/* Node A takes the job and holds it; `sig` stops or kills A; node B
 * recovers the job once A's lease expired and completes it. */
static void node_lost_mid_job(int sig)
{
    char *dir = tu_tmpdir();
    char schema[64];
    snprintf(schema, sizeof schema, "t_lost%d_%d", sig, (int)getpid());
    char *log = tu_path(dir, "runs.log");
    char *hold = tu_path(dir, "release");
    jm_manager *m = open_client(schema);
    int stop[2];
    assert_int_equal(pipe2(stop, O_CLOEXEC), 0);
    node_ctx a = {"node-a", log, hold}, b = {"node-b", log, hold};
    pid_t pa = start_node(schema, &a, stop[0], stop[1]);

    char id[JM_JOB_ID_SIZE];
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.max_retries = 3;
    assert_int_equal(jm_create(m, "NX", "{\"hold\":\"node-a\"}", &o, id), JM_OK);
    line_arg started = {log, "node-a"};
    assert_true(tu_wait_until(log_has, &started, TU_TIMEOUT_MS));
    assert_int_equal(kill(pa, sig), 0);

    pid_t pb = start_node(schema, &b, stop[0], stop[1]);
    job_arg j = {m, id};
    assert_true(tu_wait_until(job_completed, &j, TU_TIMEOUT_MS));
    jm_job *job = NULL;
    assert_int_equal(jm_get(m, id, &job), JM_OK);
    assert_string_equal(jm_job_message(job), "node-b");
    assert_int_equal(jm_job_retry_count(job), 1); /* the lost run spent one */
    jm_job_free(job);

    if (sig == SIGSTOP) {
        /* The stale node wakes up, its executor returns: its outcome is
         * fenced by the claim and changes nothing. */
        int fd = open(hold, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(kill(pa, SIGCONT), 0);
    }
    close(stop[0]);
    close(stop[1]);
    int st = 0;
    assert_int_equal(waitpid(pb, &st, 0), pb);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(waitpid(pa, &st, 0), pa);
    if (sig == SIGSTOP)
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    job = NULL;
    assert_int_equal(jm_get(m, id, &job), JM_OK);
    assert_int_equal(jm_job_status(job), JM_STATUS_COMPLETED);
    assert_string_equal(jm_job_message(job), "node-b");
    assert_int_equal(jm_job_retry_count(job), 1);
    jm_job_free(job);
    jm_close(m);
    free(log);
    free(hold);
    tu_rmdir(dir);
}

static void killed_node_job_recovered_after_lease(void **state)
{
    (void)state;
    node_lost_mid_job(SIGKILL);
}

static void stopped_node_resumed_changes_nothing(void **state)
{
    (void)state;
    node_lost_mid_job(SIGSTOP);
}

/* Ends every other client connection of the database, as an operator's
 * pg_terminate_backend would: the node's, its wake-up listener's and the
 * test's own manager's. */
static void terminate_other_connections(void)
{
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    /* The timeout waits until each has ended: a statement sent to a
     * backend still on its way out fails with it, ambiguously (it may have
     * run), and is the caller's to judge; this test wants the clear case. */
    PGresult *r = PQexec(c, "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                            "AND backend_type = 'client backend'");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    printf("# terminated %s connection(s)\n", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
}

/* How a run is disrupted, and how often: each time once a further share
 * of the jobs has completed. */
typedef struct disruption {
    const char *name;
    void (*run)(void);
    int times;
} disruption;

static void restart_server(void)
{
    int64_t t0 = tu_mono_ms();
    assert_int_equal(system(getenv("JM_TEST_PG_RESTART")), 0);
    printf("# restart: the server was back after %lld ms\n", (long long)(tu_mono_ms() - t0));
}

/* A node works JOBS jobs while `d` cuts its connections: it reconnects,
 * every job completes, and a run whose outcome was cut off runs again
 * (never fewer runs than jobs). The test's own manager loses its
 * connection too: its next calls reconnect and answer. */
static void node_survives(const disruption *d)
{
    enum { JOBS = 3000 };
    char *dir = tu_tmpdir();
    char schema[64];
    snprintf(schema, sizeof schema, "t_%s_%d", d->name, (int)getpid());
    char *log = tu_path(dir, "runs.log");
    jm_manager *m = open_client(schema);
    static jm_new_job jobs[JOBS];
    static char ids[JOBS][JM_JOB_ID_SIZE];
    for (int i = 0; i < JOBS; i++)
        jobs[i] = (jm_new_job){"NX", NULL, JM_CREATE_OPTS_INIT};
    assert_int_equal(jm_create_many(m, jobs, JOBS, ids), JM_OK);
    int stop[2];
    assert_int_equal(pipe2(stop, O_CLOEXEC), 0);
    node_ctx a = {"node-a", log, "/"};
    pid_t pa = start_node(schema, &a, stop[0], stop[1]);
    int64_t t0 = tu_mono_ms();
    for (int k = 1; k <= d->times; k++) {
        assert_true(tu_wait_completed(m, (int64_t)JOBS * k / (d->times + 2), TU_TIMEOUT_MS));
        d->run();
    }
    /* A create right after answers: the client reconnects by itself. */
    char id[JM_JOB_ID_SIZE];
    int crc = jm_create(m, "NX", NULL, NULL, id);
    if (crc != JM_OK)
        fail_msg("jm_create after %s: %s", d->name, jm_last_error());
    int done = tu_wait_completed(m, JOBS + 1, 4 * TU_TIMEOUT_MS);
    printf("# %s: all %d jobs completed %lld ms after the first disruption\n", d->name,
           JOBS + 1, (long long)(tu_mono_ms() - t0));
    close(stop[0]);
    close(stop[1]);
    int st = 0;
    assert_int_equal(waitpid(pa, &st, 0), pa);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(done);
    jm_filter f = JM_FILTER_INIT;
    int64_t total = 0;
    assert_int_equal(jm_count(m, &f, &total), JM_OK);
    assert_int_equal(total, JOBS + 1);
    FILE *fp = fopen(log, "r");
    assert_non_null(fp);
    int lines = 0, c;
    while ((c = fgetc(fp)) != EOF)
        lines += c == '\n';
    fclose(fp);
    printf("# %s: %d runs for %d jobs\n", d->name, lines, JOBS + 1);
    assert_true(lines >= JOBS + 1);
    jm_close(m);
    free(log);
    tu_rmdir(dir);
}

/* The server restarts (fast shutdown: every connection ends) while a node
 * works. Needs JM_TEST_PG_RESTART, the command that restarts it
 * (scripts/test.sh sets it). */
static void server_restart_under_a_working_node(void **state)
{
    (void)state;
    const char *restart = getenv("JM_TEST_PG_RESTART");
    if (!restart || !*restart) {
        printf("skipped: JM_TEST_PG_RESTART is not set (scripts/test.sh sets it)\n");
        return;
    }
    const disruption d = {"restart", restart_server, 1};
    node_survives(&d);
}

/* pg_terminate_backend on every connection, three times during the run. */
static void terminated_connections_under_a_working_node(void **state)
{
    (void)state;
    const disruption d = {"terminate", terminate_other_connections, 3};
    node_survives(&d);
}

int main(void)
{
    url = getenv("JM_TEST_PG_URL");
    if (!url || !*url) {
        printf("skipped: JM_TEST_PG_URL is not set (scripts/pg_server.sh starts a server)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(three_nodes_run_each_job_once),
        cmocka_unit_test(killed_node_job_recovered_after_lease),
        cmocka_unit_test(stopped_node_resumed_changes_nothing),
        cmocka_unit_test(server_restart_under_a_working_node),
        cmocka_unit_test(terminated_connections_under_a_working_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
