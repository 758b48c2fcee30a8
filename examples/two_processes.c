/*
 * two_processes: two processes share one jobs database and split the work.
 *
 * The parent creates 200 jobs in one transaction, then forks. Each process
 * opens its own manager on the same file and runs two workers until no
 * job is left. A claim is one atomic statement, so no job runs twice even
 * though both processes claim from the same table at once: each job's
 * result names the process that ran it, and the parent checks that every
 * job completed after exactly one run and that the two counts add up.
 *
 * How the jobs split depends on timing: a manager claims ahead of its
 * workers when jobs are very short, so with tiny jobs one process may take
 * most of them; either way none runs twice.
 *
 * Nothing of the library is open across fork(): a SQLite connection must
 * not be shared by two processes. Uses only the public header.
 * Usage: two_processes [database-file]
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobmgr.h>

#define JOBS 200
#define WORKERS 2
#define JOB_MS 10 /* each job's work: long enough for both to get a share */
#define POLL_MS 20
#define WAIT_TIMEOUT_MS 60000
#define DRAIN_MS 2000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The work: note who ran the job, in its result. */
static jm_decision work_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    sleep_ms(JOB_MS);
    return jm_decision_completed(NULL, jm_ctx_strf(ctx, "{\"pid\": %ld}", (long)getpid()));
}

static const jm_executor work_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = "TP",
    .name = "shared-work",
    .cancellable = 1,
    .validate = NULL,
    .execute = work_execute,
    .cancel = NULL,
};

static int report(const char *who, int rc, const char *what)
{
    if (rc != JM_OK)
        fprintf(stderr, "two_processes (%s): %s: %s (%s)\n", who, what, jm_strerror(rc),
                jm_last_error());
    return rc;
}

static void remove_database(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char file[4096];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
        remove(file);
    }
}

static int open_manager(const char *who, const char *db_path, jm_manager **m)
{
    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = db_path;
    cfg.poll_interval_ms = POLL_MS; /* how soon the other's jobs are noticed */
    int rc = report(who, jm_open(&cfg, m), "jm_open");
    if (rc == JM_OK)
        rc = report(who, jm_register(*m, &work_executor, NULL), "jm_register");
    return rc;
}

static int create_jobs(const char *db_path)
{
    jm_manager *m = NULL;
    static jm_new_job jobs[JOBS];
    static char ids[JOBS][JM_JOB_ID_SIZE];
    int rc = open_manager("parent", db_path, &m);
    for (int i = 0; i < JOBS && rc == JM_OK; i++) {
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        jm_new_job j = {"TP", NULL, o};
        jobs[i] = j;
    }
    if (rc == JM_OK)
        rc = report("parent", jm_create_many(m, jobs, JOBS, ids), "jm_create_many");
    jm_close(m);
    return rc;
}

/* Runs workers until no job is left; both processes do this. */
static int run_until_empty(const char *who, const char *db_path)
{
    jm_manager *m = NULL;
    int rc = open_manager(who, db_path, &m);
    if (rc == JM_OK)
        rc = report(who, jm_start(m, WORKERS), "jm_start");
    jm_filter left = JM_FILTER_INIT;
    left.statuses = JM_STATUS_BIT(JM_STATUS_QUEUED) | JM_STATUS_BIT(JM_STATUS_RUNNING) |
                    JM_STATUS_BIT(JM_STATUS_RETRYING);
    for (long waited = 0; rc == JM_OK; waited += POLL_MS) {
        int64_t n = 0;
        if ((rc = report(who, jm_count(m, &left, &n), "jm_count")) != JM_OK || n == 0)
            break;
        if (waited > WAIT_TIMEOUT_MS) {
            fprintf(stderr, "two_processes (%s): %" PRId64 " jobs left after %d ms\n", who, n,
                    WAIT_TIMEOUT_MS);
            rc = JM_EBUSY;
        }
        sleep_ms(POLL_MS);
    }
    if (m) {
        int stop_rc = report(who, jm_stop(m, DRAIN_MS), "jm_stop");
        if (rc == JM_OK)
            rc = stop_rc;
    }
    jm_close(m);
    return rc;
}

/* Counts the jobs each process ran; every job must have completed after
 * exactly one claim. */
static int check_and_count(const char *db_path, pid_t parent, pid_t child, int *by_parent,
                           int *by_child)
{
    jm_manager *m = NULL;
    jm_job_list *list = NULL;
    int rc = open_manager("parent", db_path, &m);
    jm_filter all = JM_FILTER_INIT;
    all.limit = JOBS;
    if (rc == JM_OK)
        rc = report("parent", jm_list(m, &all, &list), "jm_list");
    *by_parent = *by_child = 0;
    for (size_t i = 0; rc == JM_OK && i < jm_job_list_count(list); i++) {
        const jm_job *job = jm_job_list_at(list, i);
        long pid = 0;
        const char *result = jm_job_result(job);
        if (jm_job_status(job) != JM_STATUS_COMPLETED || jm_job_attempts(job) != 1 ||
            !result || sscanf(result, "{\"pid\": %ld}", &pid) != 1) {
            fprintf(stderr, "two_processes: job %s: %s after %d run(s)\n", jm_job_id(job),
                    jm_status_name(jm_job_status(job)), jm_job_attempts(job));
            rc = JM_ESTATE;
        } else if (pid == (long)parent) {
            (*by_parent)++;
        } else if (pid == (long)child) {
            (*by_child)++;
        } else {
            fprintf(stderr, "two_processes: job %s ran in unknown process %ld\n",
                    jm_job_id(job), pid);
            rc = JM_ESTATE;
        }
    }
    if (rc == JM_OK && *by_parent + *by_child != JOBS) {
        fprintf(stderr, "two_processes: %d jobs found, expected %d\n", *by_parent + *by_child,
                JOBS);
        rc = JM_ESTATE;
    }
    jm_job_list_free(list);
    jm_close(m);
    return rc;
}

int main(int argc, char **argv)
{
    const char *db_path = argc > 1 ? argv[1] : "two_processes.db";
    remove_database(db_path);
    if (create_jobs(db_path) != JM_OK)
        return EXIT_FAILURE;
    printf("created   %d jobs in %s\n", JOBS, db_path);
    fflush(stdout); /* or the child would print the parent's buffer again */

    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        perror("two_processes: fork");
        return EXIT_FAILURE;
    }
    if (child == 0)
        _exit(run_until_empty("child", db_path) == JM_OK ? EXIT_SUCCESS : EXIT_FAILURE);

    int rc = run_until_empty("parent", db_path);
    int status = 0;
    if (waitpid(child, &status, 0) != child) {
        perror("two_processes: waitpid");
        return EXIT_FAILURE;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != EXIT_SUCCESS) {
        fprintf(stderr, "two_processes: the child failed (status %d)\n", status);
        return EXIT_FAILURE;
    }
    if (rc != JM_OK)
        return EXIT_FAILURE;

    int by_parent = 0, by_child = 0;
    if (check_and_count(db_path, parent, child, &by_parent, &by_child) != JM_OK)
        return EXIT_FAILURE;
    printf("parent    pid %ld ran %d jobs\n", (long)parent, by_parent);
    printf("child     pid %ld ran %d jobs\n", (long)child, by_child);
    printf("all %d jobs completed, each exactly once\n", JOBS);
    return EXIT_SUCCESS;
}
