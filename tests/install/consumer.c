/*
 * consumer: a program built out of tree against an installed jobmgr, by
 * scripts/checks/install.sh (once through CMake's find_package, once through
 * pkg-config). It opens a jobs database in the directory it is given,
 * registers a tiny executor, creates one job, runs it with jm_run_once() and
 * checks that it completed. It uses the installed headers only; it does not
 * test jobmgr's behaviour, only that the installed files make a working
 * program.
 *
 * Usage: consumer DIR   (exit 0 on success)
 */
#include <stdio.h>
#include <string.h>

#include <jobmgr.h>

static jm_decision echo_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed("echoed", "{\"echoes\": 1}");
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "consumer: %s: %s (%s)\n", what, jm_strerror(rc), jm_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: consumer DIR\n");
        return 2;
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/consumer.db", argv[1]) >= (int)sizeof path) {
        fprintf(stderr, "consumer: directory name too long\n");
        return 2;
    }

    int status = 1, rc, ran = 0;
    jm_manager *m = NULL;
    jm_job *job = NULL;
    char id[JM_JOB_ID_SIZE];

    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = path;
    if ((rc = jm_open(&cfg, &m)) != JM_OK) {
        fail("jm_open", rc);
        goto done;
    }
    const jm_executor echo = {JM_EXECUTOR_VERSION, "EC", "echo", 1, NULL, echo_execute, NULL, JM_CLASS_NORMAL, NULL};
    if ((rc = jm_register(m, &echo, NULL)) != JM_OK) {
        fail("jm_register", rc);
        goto done;
    }
    if ((rc = jm_create(m, "EC", "{\"say\": \"hello\"}", NULL, id)) != JM_OK) {
        fail("jm_create", rc);
        goto done;
    }
    if ((rc = jm_run_once(m, 1, &ran)) != JM_OK) {
        fail("jm_run_once", rc);
        goto done;
    }
    if ((rc = jm_get(m, id, &job)) != JM_OK) {
        fail("jm_get", rc);
        goto done;
    }
    if (ran != 1 || jm_job_status(job) != JM_STATUS_COMPLETED ||
        strcmp(jm_job_message(job), "echoed") != 0) {
        fprintf(stderr, "consumer: job %s: ran %d, status %s, message %s\n", id, ran,
                jm_status_name(jm_job_status(job)),
                jm_job_message(job) ? jm_job_message(job) : "(none)");
        goto done;
    }
    printf("consumer: jobmgr %s: job %s %s\n", JM_VERSION_STRING, id,
           jm_status_name(jm_job_status(job)));
    status = 0;
done:
    jm_job_free(job);
    jm_close(m);
    return status;
}
