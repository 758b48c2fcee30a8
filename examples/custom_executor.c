/*
 * custom_executor: writing an executor of your own.
 *
 * The executor (type "CX") sums the squares of the numbers 1..items, a
 * stand-in for any long job that works through its input in batches. It
 * shows every part of the executor contract:
 *   - validate() refuses bad parameters at jm_create();
 *   - each run does one batch, saves a checkpoint and reports progress,
 *     then asks to continue, so a long job is many short runs that survive
 *     crashes and never spend a retry;
 *   - it checks jm_ctx_is_cancelled() between items and stops cleanly;
 *   - the final decision carries metrics JSON, stored as the job's result;
 * and the manager's own metrics (jm_stats) at the end.
 *
 * Uses only the public header. Usage: custom_executor [database-file]
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jobmgr.h>

#define WORKERS 2
#define POLL_MS 10
#define WAIT_TIMEOUT_MS 30000
#define DRAIN_MS 2000
#define MAX_ITEMS 1000000

/* ------------------------------------------------------------------------
 * The executor. Parameters: {"items": 50, "batch": 20, "item_ms": 0}
 * Checkpoint: {"done": 40, "sum": 22140}
 * ------------------------------------------------------------------------ */

static int param_int(const cJSON *params, const char *name, int fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);
    return cJSON_IsNumber(v) ? v->valueint : fallback;
}

static int sum_validate(void *self, const cJSON *params, char *err, size_t errlen)
{
    (void)self;
    static const char *const names[] = {"items", "batch", "item_ms"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, names[i]);
        if (v && (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > MAX_ITEMS)) {
            snprintf(err, errlen, "\"%s\" must be a number within 0..%d", names[i], MAX_ITEMS);
            return 1;
        }
    }
    if (!cJSON_GetObjectItemCaseSensitive(params, "items")) {
        snprintf(err, errlen, "\"items\" is required");
        return 1;
    }
    if (param_int(params, "batch", 1) < 1) {
        snprintf(err, errlen, "\"batch\" must be at least 1");
        return 1;
    }
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads where the last run stopped; a first run starts from zero. */
static void read_checkpoint(jm_ctx *ctx, int64_t *done, int64_t *sum)
{
    *done = 0;
    *sum = 0;
    const char *text = jm_job_checkpoint(jm_ctx_job(ctx));
    cJSON *cp = text ? cJSON_Parse(text) : NULL;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(cp, "done");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cp, "sum");
    if (cJSON_IsNumber(d) && cJSON_IsNumber(s)) {
        *done = (int64_t)d->valuedouble;
        *sum = (int64_t)s->valuedouble;
    }
    cJSON_Delete(cp);
}

static jm_decision sum_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    const cJSON *params = jm_ctx_params(ctx);
    int64_t items = param_int(params, "items", 0);
    int64_t batch = param_int(params, "batch", 1);
    int item_ms = param_int(params, "item_ms", 0);
    int64_t done, sum;
    read_checkpoint(ctx, &done, &sum);

    int64_t end = done + batch < items ? done + batch : items;
    while (done < end) {
        if (jm_ctx_is_cancelled(ctx)) {
            jm_ctx_log(ctx, JM_LOG_INFO, "cancelled after %" PRId64 " items", done);
            return jm_decision_cancelled(jm_ctx_strf(ctx, "cancelled at %" PRId64 "/%" PRId64,
                                                     done, items));
        }
        done++;
        sum += done * done;
        if (item_ms > 0)
            sleep_ms(item_ms);
    }

    /* Durable now: a crash after this line resumes from here. */
    int rc = jm_ctx_checkpoint(
        ctx, jm_ctx_strf(ctx, "{\"done\": %" PRId64 ", \"sum\": %" PRId64 "}", done, sum));
    if (rc != JM_OK)
        return jm_decision_retry(jm_ctx_strf(ctx, "checkpoint failed: %s", jm_last_error()),
                                 NULL, -1);
    jm_ctx_progress(ctx, items > 0 ? (double)done / (double)items : 1.0);

    if (done < items)
        return jm_decision_continue(
            jm_ctx_strf(ctx, "%" PRId64 " of %" PRId64 " items", done, items), 0);
    return jm_decision_completed(
        jm_ctx_strf(ctx, "sum of squares 1..%" PRId64 " is %" PRId64, items, sum),
        jm_ctx_strf(ctx, "{\"items\": %" PRId64 ", \"sum\": %" PRId64 ", \"runs\": %d}", items,
                    sum, jm_job_attempts(jm_ctx_job(ctx))));
}

static const jm_executor sum_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = "CX",
    .name = "sum-of-squares",
    .cancellable = 1,
    .validate = sum_validate,
    .execute = sum_execute,
    .cancel = NULL, /* execute never blocks long: polling the flag is enough */
};

/* ------------------------------------------------------------------------
 * The program
 * ------------------------------------------------------------------------ */

static int report(int rc, const char *what)
{
    if (rc != JM_OK)
        fprintf(stderr, "custom_executor: %s: %s (%s)\n", what, jm_strerror(rc),
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

/* Waits until job `id` has status `want` (or, with want < 0, any final one). */
static int wait_for(jm_manager *m, const char *id, int want, jm_status *out)
{
    for (long waited = 0; waited <= WAIT_TIMEOUT_MS; waited += POLL_MS) {
        jm_job *job = NULL;
        int rc = jm_get(m, id, &job);
        if (report(rc, "jm_get") != JM_OK)
            return rc;
        jm_status s = jm_job_status(job);
        jm_job_free(job);
        int final = s == JM_STATUS_COMPLETED || s == JM_STATUS_FAILED ||
                    s == JM_STATUS_CANCELLED;
        if ((want >= 0 && (int)s == want) || (want < 0 && final)) {
            *out = s;
            return JM_OK;
        }
        sleep_ms(POLL_MS);
    }
    fprintf(stderr, "custom_executor: job %s did not reach the expected status\n", id);
    return JM_EBUSY;
}

static int print_job(jm_manager *m, const char *label, const char *id)
{
    jm_job *job = NULL;
    int rc = jm_get(m, id, &job);
    if (report(rc, "jm_get") != JM_OK)
        return rc;
    const char *msg = jm_job_message(job), *result = jm_job_result(job);
    const char *cp = jm_job_checkpoint(job);
    printf("%-9s %-9s runs=%d progress=%.0f%%\n          message:    %s\n"
           "          checkpoint: %s\n          result:     %s\n",
           label, jm_status_name(jm_job_status(job)), jm_job_attempts(job),
           100.0 * jm_job_progress(job), msg ? msg : "-", cp ? cp : "-",
           result ? result : "-");
    jm_job_free(job);
    return JM_OK;
}

int main(int argc, char **argv)
{
    const char *db_path = argc > 1 ? argv[1] : "custom_executor.db";
    jm_manager *m = NULL;
    jm_stats_report *stats = NULL;
    char batched[JM_JOB_ID_SIZE], long_one[JM_JOB_ID_SIZE], id[JM_JOB_ID_SIZE];
    jm_status status;
    int rc;

    remove_database(db_path);
    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = db_path;
    if ((rc = report(jm_open(&cfg, &m), "jm_open")) != JM_OK)
        goto done;
    if ((rc = report(jm_register(m, &sum_executor, NULL), "jm_register")) != JM_OK)
        goto done;

    /* validate() refuses a bad job before it is stored. */
    rc = jm_create(m, "CX", "{\"items\": -5}", NULL, id);
    if (rc != JM_EINVAL) {
        fprintf(stderr, "custom_executor: bad params: expected EINVAL, got %s\n",
                jm_err_name(rc));
        rc = rc == JM_OK ? JM_ESTATE : rc;
        goto done;
    }
    printf("refused   {\"items\": -5}: %s\n", jm_last_error());

    /* 50 items in batches of 20: three runs (continue, continue, done). */
    rc = jm_create(m, "CX", "{\"items\": 50, \"batch\": 20}", NULL, batched);
    if (report(rc, "jm_create") != JM_OK)
        goto done;
    /* A long job we cancel while it runs. */
    rc = jm_create(m, "CX", "{\"items\": 100000, \"batch\": 100000, \"item_ms\": 1}", NULL,
                   long_one);
    if (report(rc, "jm_create") != JM_OK)
        goto done;

    if ((rc = report(jm_start(m, WORKERS), "jm_start")) != JM_OK)
        goto done;
    if ((rc = wait_for(m, long_one, JM_STATUS_RUNNING, &status)) != JM_OK)
        goto stop;
    if ((rc = report(jm_cancel(m, long_one), "jm_cancel")) != JM_OK)
        goto stop;
    if ((rc = wait_for(m, long_one, -1, &status)) != JM_OK)
        goto stop;
    if (status != JM_STATUS_CANCELLED) {
        fprintf(stderr, "custom_executor: the long job ended %s\n", jm_status_name(status));
        rc = JM_ESTATE;
        goto stop;
    }
    if ((rc = wait_for(m, batched, -1, &status)) != JM_OK)
        goto stop;
    if (status != JM_STATUS_COMPLETED) {
        fprintf(stderr, "custom_executor: the batched job ended %s\n", jm_status_name(status));
        rc = JM_ESTATE;
    }
stop:;
    int stop_rc = report(jm_stop(m, DRAIN_MS), "jm_stop");
    if (rc == JM_OK)
        rc = stop_rc;
    if (rc != JM_OK)
        goto done;

    if ((rc = print_job(m, "batched", batched)) != JM_OK ||
        (rc = print_job(m, "cancelled", long_one)) != JM_OK)
        goto done;

    /* The manager's metrics: what ran here, and how it ended. */
    if ((rc = report(jm_stats(m, &stats), "jm_stats")) != JM_OK)
        goto done;
    printf("metrics   runs=%" PRId64 " completed=%" PRId64 " cancelled=%" PRId64
           " queue_depth=%" PRId64 "\n",
           stats->runs, stats->completed, stats->cancelled, stats->queue_depth);
    for (size_t i = 0; i < stats->ntypes; i++) {
        const jm_type_stats *t = &stats->types[i];
        printf("          type %s: runs=%" PRId64 " max=%" PRId64 " ms total=%.0f ms\n",
               t->type, t->runs, t->duration_max_ms, t->duration_sum_ms);
    }
    /* Three batches of one job and the cancelled run of the other. */
    if (stats->completed != 1 || stats->cancelled != 1 || stats->runs != 4) {
        fprintf(stderr, "custom_executor: unexpected metrics\n");
        rc = JM_ESTATE;
    }

done:
    jm_stats_free(stats);
    jm_close(m);
    return rc == JM_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
