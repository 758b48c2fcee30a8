/*
 * A test fixture shared by the acceptance, status-machine and bad-input
 * tests: a temporary database, a fake clock, and a scripted executor
 * ("TS") that returns the decisions it is given and records what each job
 * looked like from inside execute(). Not part of the library.
 */
#ifndef JM_SCRIPT_FX_H
#define JM_SCRIPT_FX_H

#include <stdint.h>

#include "jobmgr.h"
#include "test_util.h"


#define T0 INT64_C(1700000000000)
#define MAX_RUNS 64

typedef struct script script;
typedef jm_decision (*step_fn)(script *s, jm_ctx *ctx, int run);

/* An executor that returns d[run] (the last one repeats) or calls fn, and
 * records what the job looked like from inside execute(). */
struct script {
    jm_manager *m;
    int runs;
    int n;
    jm_decision d[MAX_RUNS];
    step_fn fn;
    void *user;
    char id[MAX_RUNS][JM_JOB_ID_SIZE];
    int seen_status[MAX_RUNS];     /* jm_get() from inside execute() */
    int seen_retry[MAX_RUNS];
    char *seen_message[MAX_RUNS];  /* NULL when unset */
    char *seen_trace[MAX_RUNS];
    char *seen_checkpoint[MAX_RUNS]; /* from jm_ctx_job() */
    int ctx_status[MAX_RUNS];        /* jm_ctx_job() status */
    int scratch[8];                  /* for step functions */
};

typedef struct fx {
    char *dir;
    char *db;
    tu_clock clock;
    jm_config cfg;
    jm_manager *m;
    script s;
    jm_job *cur; /* the last job getj() read; freed by the next call */
} fx;

/* The scripted executor: d[run] (the last repeats) or fn. */
jm_decision script_execute(void *self, jm_ctx *ctx);
void script_reset(script *s);
void script_set(script *s, int n, const jm_decision *d);
jm_executor script_executor(const char *type, int cancellable);
/* Opens f->cfg and registers the scripted executor as "TS". */
void fx_open(fx *f);
/* Closes and reopens the manager with f->cfg (after a test changed it). */
void fx_reopen(fx *f);
/* cmocka setup/teardown: temp dir, fake clock at T0, manager. */
int fx_setup(void **state);
int fx_teardown(void **state);
/* Reads job `id` (must exist); the result lives until the next getj(). */
const jm_job *getj(fx *f, const char *id);
/* One jm_run_once(m, 1); returns how many ran. */
int run1(fx *f);
void create_ok(fx *f, const char *type, const char *params, const jm_create_opts *o,
               char id[JM_JOB_ID_SIZE]);
int64_t now_of(fx *f);
int64_t count_all(fx *f);

#endif
