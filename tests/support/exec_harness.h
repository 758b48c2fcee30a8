/*
 * exec_harness: runs the built-in executors' jobs in tests. A manager on a
 * temporary database with a fake clock and a given host (the fake host or
 * the reference engine), and helpers that run one job to its end, moving
 * the fake clock over backoffs instead of sleeping, and read its result.
 * Not part of the library.
 */
#ifndef JM_EXEC_HARNESS_H
#define JM_EXEC_HARNESS_H

#include <stdint.h>

#include "jobmgr.h"
#include "jobmgr/host.h"
#include "test_util.h"

/* The fake clock's start: 2023-11-14, so cut-offs in the past are positive. */
#define XH_T0 INT64_C(1700000000000)
#define XH_HOUR_MS INT64_C(3600000)

typedef struct xh {
    char *dir;
    char *db;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
} xh;

/* Opens a manager at XH_T0 with cfg.host = host (may be NULL) and registers
 * nothing. Returns JM_OK or the jm_open() error. */
int xh_open(xh *x, const jm_host *host);
/* Closes the manager and removes the directory. */
void xh_close(xh *x);

/* jm_create() with default options. */
int xh_create(xh *x, const char *type, const char *params, char id[JM_JOB_ID_SIZE]);

/* Runs at most one due job (jm_run_once) and returns the status of `id`
 * afterwards (-1 if unreadable). */
int xh_run1(xh *x, const char *id);

/* Runs due jobs one at a time (jm_run_once) until `id` is completed, failed
 * or cancelled, or `max_runs` runs (of any job: follow-up jobs count) have
 * happened; when `id` waits for a backoff or a delay, moves the clock to
 * its run_at first. *runs (may be NULL) gets the number of runs. Returns the last
 * status (-1 if unreadable or the job never became due). A failed job's
 * message is printed as a "# " line, to help when that was unexpected. */
int xh_run_to_end(xh *x, const char *id, int max_runs, int *runs);

/* The job's result metric `name`, or -1 if the job, the result or the field
 * is missing. */
int64_t xh_metric(xh *x, const char *id, const char *name);
/* An integer field of the job's checkpoint, or INT64_MIN if missing. */
int64_t xh_checkpoint_int(xh *x, const char *id, const char *name);
/* A copy of the job's message ("" if none); free with free(). */
char *xh_message(xh *x, const char *id);
/* Fails the current test unless the job's message contains `needle`. */
void xh_assert_message_has(xh *x, const char *id, const char *needle);
/* The job's run_at minus the clock's now. */
int64_t xh_due_in(xh *x, const char *id);

/* Asks every job running in the manager to pause, as the manager does when
 * a pause of a running job is requested: sets the flag jm_ctx_should_yield()
 * reads and wakes jm_ctx_throttle() waiters. For a host wrapper to call
 * from inside an executor's run. */
void xh_request_pause(xh *x);

/* 1 if jm_create(type, params) fails with JM_EINVAL and jm_last_error()
 * names `field`; else 0 (printing what happened). */
int xh_rejects(xh *x, const char *type, const char *params, const char *field);

#endif
