/*
 * What the three files of the dashboard scenario share: dash_seed.c fills
 * the jobs table, dash_child.c runs `jobmgr serve` on it as a child
 * process, scn_dashboard.c asks it, measures and reports. Only what
 * crosses between them is here; each file keeps the rest static.
 */
#ifndef JM_BENCH_DASH_BENCH_H
#define JM_BENCH_DASH_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

#include "bench_util.h"

/* The scenario's name: its rows, notes, failures and progress lines. */
#define BDASH_SCN "dashboard"

/* --- The seeded table (dash_seed.c) ------------------------------------ */

/* Jobs a second manager holds running through the whole measurement. */
#define BDASH_HELD_JOBS 16
/* Workers of the worked portion; 1 in BDASH_FAIL_EVERY of its runs fail,
 * 1 in BDASH_RETRY_EVERY ask to retry in an hour. */
#define BDASH_WORKERS 2
#define BDASH_FAIL_EVERY 20
#define BDASH_RETRY_EVERY 50
/* 1 in BDASH_LATER_EVERY queued jobs is due an hour from now. */
#define BDASH_LATER_EVERY 10
/* Hourly schedules in the table, the last one paused. */
#define BDASH_SCHEDULES 12
/* Ids kept for GET /api/jobs/<id>: the room bdash_seed.ids must have. */
#define BDASH_ID_SAMPLES 1024
/* How long the held jobs may take to start, and their manager to stop. */
#define BDASH_HOLD_TIMEOUT_S 60

/* The table to seed and how far seeding got. The caller sets path, the
 * sizes, stride and ids (room for BDASH_ID_SAMPLES), next and nids 0;
 * seeding advances next and fills ids[0..nids). */
typedef struct bdash_seed {
    const char *path;
    long total, history, worked, queued;
    long next;                            /* index of the next job created */
    long stride;                          /* one id kept per stride jobs */
    char (*ids)[JM_JOB_ID_SIZE];          /* ids kept for /api/jobs/<id> */
    size_t nids;
} bdash_seed;

/* The worked portion's executor: fails, retries or completes by turn,
 * bumping runs after each run (its target: the worked jobs). */
typedef struct bdash_mix_state {
    bu_counter *runs;
    atomic_long turn;
} bdash_mix_state;

/* The held jobs' executor: counts its starts and waits for `release`. */
typedef struct bdash_hold_state {
    bu_counter *started;
    bu_counter *release;
} bdash_hold_state;

/* Seeds s->path: schedules, the pause and the history (backdated and
 * finished by SQL), then the worked portion run to its end by mix's
 * executor, then the queued one; the held jobs come later, from
 * bdash_hold_jobs. 0 on success, else non-zero after bench_fail. */
int bdash_seed_table(bdash_seed *s, bdash_mix_state *mix);
/* Creates the held jobs and starts a manager whose every worker runs one
 * until h->release is bumped; returns it once all have started. The caller
 * owns it: it bumps h->release, then stops and closes it. NULL after
 * bench_fail. */
jm_manager *bdash_hold_jobs(bdash_seed *s, bdash_hold_state *h);

/* --- The child server (dash_child.c) ----------------------------------- */

/* The jobmgr tool built beside jm-bench (JM_BENCH_CLI); "" when it was
 * built without it. */
extern const char bdash_cli_path[];

/* Random bytes of the API token, and the room its hex text and NUL take. */
#define BDASH_TOKEN_BYTES 16
#define BDASH_TOKEN_SIZE (2 * BDASH_TOKEN_BYTES + 1)

/* A running `jobmgr serve`. pid and out are -1 when there is none. */
typedef struct bdash_server {
    pid_t pid;
    int out;         /* its stdout */
    const char *log; /* its stderr goes to this file */
    unsigned port;
} bdash_server;

/* A fresh random token, as hex, into token (len >= BDASH_TOKEN_SIZE) and
 * into a new file at path readable by its owner only. 0 on success; reports
 * nothing. */
int bdash_write_token(const char *path, char *token, size_t len);
/* Starts `jobmgr serve` on db, with token_file, on an ephemeral port of
 * 127.0.0.1, its stderr into sv->log, and waits until it prints its
 * address: 0, with sv->port set. Else non-zero after bench_fail; sv may
 * still hold a process or pipe for bdash_stop_server. */
int bdash_start_server(const char *db, const char *token_file, bdash_server *sv);
/* SIGTERM, then waits (SIGKILL if it takes too long), and closes sv->out;
 * 0 if it exited with status 0 in time, else non-zero after bench_fail. */
int bdash_stop_server(bdash_server *sv);
/* User + system CPU seconds of a process, from /proc/PID/stat; < 0 if
 * unreadable. */
double bdash_proc_cpu_seconds(pid_t pid);

#endif
