/*
 * event_loop: a host with its own poll() event loop and no worker threads.
 *
 * Many servers already have one loop that waits on sockets and timers, and
 * want background jobs to run inside it rather than on threads of their
 * own. jm_run_once() is made for that: it runs the due jobs on the calling
 * thread and returns. This host calls it
 *   - right after it creates work (a request arrived on its pipe), and
 *   - on a timer tick, which picks up retries whose backoff elapsed and
 *     jobs scheduled for later.
 * The "requests" are lines written into a pipe, standing in for sockets;
 * some arrive over time, written by the loop itself on later ticks.
 *
 * Uses only the public header. Usage: event_loop [database-file]
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jobmgr.h>

#define TICK_MS 25          /* the loop's timer */
#define RUN_BATCH 16        /* jobs per jm_run_once call */
#define SCHEDULE_MS 200     /* one job is created due this much later */
#define RETRY_BACKOFF_MS 60 /* the flaky job's retry delay */
#define MAX_TICKS 2000      /* a safety stop: 50 s */
#define REQUESTS_LATER 3    /* requests written during the loop */

/* ------------------------------------------------------------------------
 * The executor: "send an e-mail"; {"to": "...", "flaky": true} fails once.
 * ------------------------------------------------------------------------ */

static jm_decision mail_execute(void *self, jm_ctx *ctx)
{
    int *sent = self;
    const cJSON *params = jm_ctx_params(ctx);
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(params, "to");
    const cJSON *flaky = cJSON_GetObjectItemCaseSensitive(params, "flaky");
    if (cJSON_IsTrue(flaky) && jm_job_retry_count(jm_ctx_job(ctx)) == 0)
        return jm_decision_retry("mail server busy", NULL, RETRY_BACKOFF_MS);
    (*sent)++; /* only this thread runs jobs: no lock needed */
    return jm_decision_completed(
        jm_ctx_strf(ctx, "sent to %s", cJSON_IsString(to) ? to->valuestring : "?"), NULL);
}

static int mail_validate(void *self, const cJSON *params, char *err, size_t errlen)
{
    (void)self;
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(params, "to"))) {
        snprintf(err, errlen, "\"to\" must be a string");
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The host
 * ------------------------------------------------------------------------ */

static int report(int rc, const char *what)
{
    if (rc != JM_OK)
        fprintf(stderr, "event_loop: %s: %s (%s)\n", what, jm_strerror(rc), jm_last_error());
    return rc;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* A client sends a request: one line into the pipe. */
static int send_request(int fd, const char *line)
{
    size_t n = strlen(line);
    return write(fd, line, n) == (ssize_t)n ? 0 : -1;
}

/* Turns one request line into a job. "mail <to>", "flaky <to>",
 * "later <to>" (due SCHEDULE_MS from now). */
static int handle_request(jm_manager *m, const char *line)
{
    char kind[16], to[128];
    if (sscanf(line, "%15s %127s", kind, to) != 2) {
        fprintf(stderr, "event_loop: malformed request \"%s\"\n", line);
        return JM_EINVAL;
    }
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    if (strcmp(kind, "later") == 0)
        o.run_at_ms = wall_ms() + SCHEDULE_MS;
    char params[256], id[JM_JOB_ID_SIZE];
    snprintf(params, sizeof params, "{\"to\": \"%s\", \"flaky\": %s}", to,
             strcmp(kind, "flaky") == 0 ? "true" : "false");
    int rc = report(jm_create(m, "EM", params, &o, id), "jm_create");
    if (rc == JM_OK)
        printf("request   %-6s %-22s -> job %s\n", kind, to, id);
    return rc;
}

static int unfinished(jm_manager *m, int64_t *n)
{
    jm_filter f = JM_FILTER_INIT;
    f.statuses = JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |
                 JM_STATUS_BIT(JM_STATUS_RUNNING) | JM_STATUS_BIT(JM_STATUS_RETRYING);
    return report(jm_count(m, &f, n), "jm_count");
}

/* Runs what is due now; `why` is for the printout. */
static int run_due(jm_manager *m, const char *why)
{
    int ran = 0;
    int rc = report(jm_run_once(m, RUN_BATCH, &ran), "jm_run_once");
    if (rc == JM_OK && ran > 0)
        printf("run       %d job(s) (%s)\n", ran, why);
    return rc;
}

int main(int argc, char **argv)
{
    const char *db_path = argc > 1 ? argv[1] : "event_loop.db";
    static const char *const initial[] = {"mail alice@example.com\n", "flaky bob@example.com\n",
                                          "later carol@example.com\n"};
    static const char *const later[REQUESTS_LATER] = {
        "mail dave@example.com\n", "mail erin@example.com\n", "flaky frank@example.com\n"};
    jm_manager *m = NULL;
    int fds[2] = {-1, -1};
    int sent = 0, rc;
    char pending[512];
    size_t used = 0;

    remove_database(db_path);
    if (pipe(fds) != 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
        perror("event_loop: pipe");
        return EXIT_FAILURE;
    }
    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = db_path;
    if ((rc = report(jm_open(&cfg, &m), "jm_open")) != JM_OK)
        goto done;
    jm_executor mail = {JM_EXECUTOR_VERSION, "EM", "email", 1, mail_validate, mail_execute,
                        NULL, JM_CLASS_NORMAL, NULL};
    if ((rc = report(jm_register(m, &mail, &sent), "jm_register")) != JM_OK)
        goto done;

    for (size_t i = 0; i < sizeof initial / sizeof initial[0]; i++) {
        if (send_request(fds[1], initial[i]) != 0) {
            perror("event_loop: write");
            rc = JM_EIO;
            goto done;
        }
    }

    int64_t next_tick = mono_ms() + TICK_MS;
    int written_later = 0;
    for (int tick = 0; tick < MAX_TICKS;) {
        int64_t wait = next_tick - mono_ms();
        struct pollfd p = {fds[0], POLLIN, 0};
        int n = poll(&p, 1, wait > 0 ? (int)wait : 0);
        if (n < 0 && errno != EINTR) {
            perror("event_loop: poll");
            rc = JM_EIO;
            goto done;
        }
        if (n > 0 && (p.revents & POLLIN)) {
            /* Requests arrived: create their jobs, then run them now. */
            ssize_t got = read(fds[0], pending + used, sizeof pending - 1 - used);
            if (got < 0 && errno != EAGAIN) {
                perror("event_loop: read");
                rc = JM_EIO;
                goto done;
            }
            used += got > 0 ? (size_t)got : 0;
            pending[used] = '\0';
            char *line = pending, *nl;
            while ((nl = strchr(line, '\n'))) {
                *nl = '\0';
                if ((rc = handle_request(m, line)) != JM_OK)
                    goto done;
                line = nl + 1;
            }
            used = strlen(line);
            memmove(pending, line, used + 1);
            if ((rc = run_due(m, "new work")) != JM_OK)
                goto done;
        }
        if (mono_ms() < next_tick)
            continue;
        /* The timer: retries and scheduled jobs that came due. */
        tick++;
        next_tick += TICK_MS;
        if ((rc = run_due(m, "timer")) != JM_OK)
            goto done;
        /* Finished when every request was written, read (a whole tick of
         * polling has passed since the last write) and run. */
        int64_t left = 0;
        if ((rc = unfinished(m, &left)) != JM_OK)
            goto done;
        if (left == 0 && written_later == REQUESTS_LATER && used == 0) {
            printf("done      after %d ticks: %d mails sent, no thread but this one\n", tick,
                   sent);
            break;
        }
        if (tick % 4 == 0 && written_later < REQUESTS_LATER) {
            if (send_request(fds[1], later[written_later++]) != 0) {
                perror("event_loop: write");
                rc = JM_EIO;
                goto done;
            }
        }
    }
    if (sent != 6) {
        fprintf(stderr, "event_loop: expected 6 mails, sent %d\n", sent);
        rc = JM_ESTATE;
    }

done:
    jm_close(m);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    return rc == JM_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
