/*
 * slow_job: a helper of the CLI test (test_cli.sh). It opens the jobs
 * database DB, registers a test executor "SL" that reports progress 0.5 and
 * then waits until the file GATE exists (or the job is cancelled), creates
 * one such job, prints its id on stdout and runs it on one worker. It exits
 * 0 once the job has completed, 1 on any failure or after a time limit.
 * This gives `jobmgr watch` a job that stays running as long as the test
 * needs.
 *
 *   cli_slow_job DB GATE
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <jobmgr.h>

#define POLL_MS 20
#define TIME_LIMIT_MS 90000

static const char *gate_path;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static jm_decision slow_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    for (long waited = 0; waited < TIME_LIMIT_MS; waited += POLL_MS) {
        /* Reported over and over: the manager saves it at most every
         * 500 ms, so the first report alone might never reach the table. */
        jm_ctx_progress(ctx, 0.5);
        if (jm_ctx_is_cancelled(ctx))
            return jm_decision_cancelled("cancelled while waiting");
        if (access(gate_path, F_OK) == 0)
            return jm_decision_completed("gate opened", "{\"waited\": true}");
        sleep_ms(POLL_MS);
    }
    return jm_decision_failed("gate never opened", NULL);
}

static const jm_executor slow_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = "SL",
    .name = "slow test job",
    .cancellable = 1,
    .execute = slow_execute,
};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: cli_slow_job DB GATE\n");
        return 2;
    }
    gate_path = argv[2];
    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = argv[1];
    jm_manager *m = NULL;
    jm_job *j = NULL;
    int code = 1;
    char id[JM_JOB_ID_SIZE];
    if (jm_open(&cfg, &m) != JM_OK || jm_register(m, &slow_executor, NULL) != JM_OK ||
        jm_create(m, "SL", "{}", NULL, id) != JM_OK || jm_start(m, 1) != JM_OK) {
        fprintf(stderr, "slow_job: %s\n", jm_last_error());
        goto done;
    }
    printf("%s\n", id);
    fflush(stdout);
    for (long waited = 0; waited < TIME_LIMIT_MS; waited += POLL_MS) {
        jm_job_free(j);
        j = NULL;
        if (jm_get(m, id, &j) != JM_OK) {
            fprintf(stderr, "slow_job: %s\n", jm_last_error());
            goto done;
        }
        if (jm_job_status(j) == JM_STATUS_COMPLETED) {
            code = 0;
            break;
        }
        sleep_ms(POLL_MS);
    }
done:
    jm_job_free(j);
    jm_close(m);
    return code;
}
