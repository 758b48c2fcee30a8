/*
 * quickstart: the smallest complete program using jobmgr.
 *
 * It opens a jobs database, registers an executor of its own (type "QS",
 * which pretends to resize images), creates a few jobs, runs two workers
 * until every job has finished, and prints the jobs as a table. Along the
 * way it shows an idempotent duplicate being refused, a job that fails
 * twice and then succeeds, and one that runs out of retries.
 *
 * It uses only the public header, as any program would. Usage:
 *
 *     quickstart [database-file]      (default: ./quickstart.db)
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jobmgr.h>

#define WORKERS 2
#define POLL_MS 20
#define WAIT_TIMEOUT_MS 30000
#define DRAIN_MS 1000

/* ------------------------------------------------------------------------
 * The executor: "resize an image". Parameters:
 *   {"name": "cat.png", "fail_times": 2}
 * It fails (asking for a retry) on its first `fail_times` runs, then
 * succeeds; a real executor would fail only when something went wrong.
 * ------------------------------------------------------------------------ */

static int resize_validate(void *self, const cJSON *params, char *err, size_t errlen)
{
    (void)self;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(params, "name");
    if (!cJSON_IsString(name) || name->valuestring[0] == '\0') {
        snprintf(err, errlen, "\"name\" must be a non-empty string");
        return 1;
    }
    const cJSON *fail_times = cJSON_GetObjectItemCaseSensitive(params, "fail_times");
    if (fail_times && (!cJSON_IsNumber(fail_times) || fail_times->valuedouble < 0)) {
        snprintf(err, errlen, "\"fail_times\" must be a number >= 0");
        return 1;
    }
    return 0;
}

static jm_decision resize_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    const cJSON *params = jm_ctx_params(ctx);
    const char *name = cJSON_GetObjectItemCaseSensitive(params, "name")->valuestring;
    const cJSON *fail_times = cJSON_GetObjectItemCaseSensitive(params, "fail_times");
    int failures_wanted = fail_times ? fail_times->valueint : 0;

    /* The retry count says how many runs of this job have failed so far. */
    int retries = jm_job_retry_count(jm_ctx_job(ctx));
    if (retries < failures_wanted) {
        /* A negative backoff asks for the manager's exponential policy. */
        return jm_decision_retry(
            jm_ctx_strf(ctx, "image service busy (failure %d of %d)", retries + 1,
                        failures_wanted),
            NULL, -1);
    }

    jm_ctx_progress(ctx, 1.0);
    return jm_decision_completed(
        jm_ctx_strf(ctx, "resized %s", name),
        jm_ctx_strf(ctx, "{\"width\": 640, \"height\": 480, \"runs\": %d}", retries + 1));
}

static const jm_executor resize_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = "QS",
    .name = "quickstart-resize",
    .cancellable = 1,
    .validate = resize_validate,
    .execute = resize_execute,
    .cancel = NULL,
};

/* ------------------------------------------------------------------------
 * The program
 * ------------------------------------------------------------------------ */

/* Prints a failed call with the library's detailed message; returns rc. */
static int report(int rc, const char *what)
{
    if (rc != JM_OK)
        fprintf(stderr, "quickstart: %s: %s (%s)\n", what, jm_strerror(rc), jm_last_error());
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A previous run's database (and SQLite's WAL files) would make the output
 * differ from run to run: start from nothing. */
static void remove_database(const char *path)
{
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    char file[4096];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
        remove(file);
    }
}

/* Waits until no job is new, queued, running or retrying. */
static int wait_for_all_jobs(jm_manager *m)
{
    jm_filter unfinished = JM_FILTER_INIT;
    unfinished.statuses = JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |
                          JM_STATUS_BIT(JM_STATUS_RUNNING) |
                          JM_STATUS_BIT(JM_STATUS_RETRYING);

    for (long waited = 0; waited <= WAIT_TIMEOUT_MS; waited += POLL_MS) {
        int64_t left = 0;
        int rc = jm_count(m, &unfinished, &left);
        if (report(rc, "jm_count") != JM_OK)
            return rc;
        if (left == 0)
            return JM_OK;
        sleep_ms(POLL_MS);
    }
    fprintf(stderr, "quickstart: jobs still unfinished after %d ms\n", WAIT_TIMEOUT_MS);
    return JM_EBUSY;
}

static int print_jobs(jm_manager *m)
{
    jm_job_list *list = NULL;
    int rc = jm_list(m, NULL, &list);
    if (report(rc, "jm_list") != JM_OK)
        return rc;

    printf("\n%-39s  %-9s  %7s  %s\n", "id", "status", "retries", "message");
    for (size_t i = 0; i < jm_job_list_count(list); i++) {
        const jm_job *job = jm_job_list_at(list, i);
        const char *message = jm_job_message(job);
        printf("%-39s  %-9s  %7d  %s\n", jm_job_id(job), jm_status_name(jm_job_status(job)),
               jm_job_retry_count(job), message ? message : "");
    }
    jm_job_list_free(list);
    return JM_OK;
}

int main(int argc, char **argv)
{
    const char *db_path = argc > 1 ? argv[1] : "quickstart.db";
    jm_manager *m = NULL;
    char id[JM_JOB_ID_SIZE];
    char first_id[JM_JOB_ID_SIZE];
    int rc;

    remove_database(db_path);

    /* 1. Open the jobs database; short retry delays keep the demo quick. */
    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = db_path;
    cfg.backoff_base_ms = 50;
    cfg.backoff_max_ms = 200;
    if ((rc = report(jm_open(&cfg, &m), "jm_open")) != JM_OK)
        goto done;

    /* 2. Register the executor for type "QS". */
    if ((rc = report(jm_register(m, &resize_executor, NULL), "jm_register")) != JM_OK)
        goto done;

    /* 3. Create jobs. The first carries an idempotency key. */
    jm_create_opts keyed = JM_CREATE_OPTS_INIT;
    keyed.idempotency_key = "resize:cat.png";
    rc = jm_create(m, "QS", "{\"name\": \"cat.png\"}", &keyed, first_id);
    if (report(rc, "jm_create cat.png") != JM_OK)
        goto done;
    printf("created   %s  resize cat.png\n", first_id);

    rc = jm_create(m, "QS", "{\"name\": \"dog.png\"}", NULL, id);
    if (report(rc, "jm_create dog.png") != JM_OK)
        goto done;
    printf("created   %s  resize dog.png\n", id);

    /* Fails twice, then succeeds: two of its three retries are spent. */
    rc = jm_create(m, "QS", "{\"name\": \"bird.png\", \"fail_times\": 2}", NULL, id);
    if (report(rc, "jm_create bird.png") != JM_OK)
        goto done;
    printf("created   %s  resize bird.png (fails twice first)\n", id);

    /* Allowed one retry but fails three times: ends "Max retries exceeded". */
    jm_create_opts one_retry = JM_CREATE_OPTS_INIT;
    one_retry.max_retries = 1;
    rc = jm_create(m, "QS", "{\"name\": \"huge.png\", \"fail_times\": 3}", &one_retry, id);
    if (report(rc, "jm_create huge.png") != JM_OK)
        goto done;
    printf("created   %s  resize huge.png (fails more often than allowed)\n", id);

    /* The same key again while the first job is active: refused, and id
     * receives the job that holds the key. */
    rc = jm_create(m, "QS", "{\"name\": \"cat.png\"}", &keyed, id);
    if (rc != JM_ECONFLICT) {
        fprintf(stderr, "quickstart: duplicate create: expected ECONFLICT, got %s\n",
                jm_err_name(rc));
        rc = rc == JM_OK ? JM_ESTATE : rc;
        goto done;
    }
    if (strcmp(id, first_id) != 0) {
        fprintf(stderr, "quickstart: duplicate create named %s, not %s\n", id, first_id);
        rc = JM_ESTATE;
        goto done;
    }
    printf("duplicate %s  refused: key \"%s\" is held by this job\n", id,
           keyed.idempotency_key);

    /* 4. Run two workers until every job has finished, then stop them. */
    if ((rc = report(jm_start(m, WORKERS), "jm_start")) != JM_OK)
        goto done;
    rc = wait_for_all_jobs(m);
    int stop_rc = report(jm_stop(m, DRAIN_MS), "jm_stop");
    if (rc == JM_OK)
        rc = stop_rc;
    if (rc != JM_OK)
        goto done;

    /* 5. Show the outcome. */
    rc = print_jobs(m);

done:
    jm_close(m);
    return rc == JM_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
