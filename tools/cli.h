/*
 * cli.h: what the files of the `jobmgr` command-line tool share.
 *
 * The tool is a user of the public API like any other program: it includes
 * <jobmgr.h> and <jobmgr/engine.h> only, never the library's private
 * headers. This header declares the global options, the exit codes, and the
 * helpers for argument parsing, time, tables and JSON that the command files
 * (cmd_*.c) use.
 */
#ifndef JOBMGR_CLI_H
#define JOBMGR_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <jobmgr.h>

/* Exit codes, documented in `jobmgr --help`. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1,  /* anything not listed below */
    CLI_EXIT_USAGE = 2,    /* bad command line */
    CLI_EXIT_NOTFOUND = 3, /* JM_ENOTFOUND */
    CLI_EXIT_CONFLICT = 4, /* JM_ECONFLICT: idempotency key held, or retry refused by it */
    CLI_EXIT_STATE = 5,    /* JM_ESTATE, JM_ENOTCANCELLABLE */
    CLI_EXIT_DB = 6        /* JM_EDB, JM_EIO, JM_EBUSY */
};

/* The environment variable naming the jobs database when --db is absent. */
#define CLI_ENV_DB "JOBMGR_DB"
/* The schema of the jobs tables when --db is a PostgreSQL URL. */
#define CLI_ENV_PG_SCHEMA "JOBMGR_PG_SCHEMA"

/* Options every command accepts, before or after its name. */
typedef struct cli_global {
    const char *db;  /* --db, else $JOBMGR_DB, else NULL */
    int json;        /* --json */
    int no_color;    /* --no-color */
} cli_global;

/* A command: its name, a one-line summary for the command list, its usage
 * text for `jobmgr help NAME`, and its entry point. argv[0] is the command
 * name; the function returns an exit code. */
typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage;
    int (*run)(cli_global *g, int argc, char **argv);
} cli_command;

/* The command table (main.c). */
extern const cli_command cli_commands[];
extern const size_t cli_ncommands;

/* Commands (one file per group). */
int cli_cmd_list(cli_global *g, int argc, char **argv);   /* cmd_query.c */
int cli_cmd_show(cli_global *g, int argc, char **argv);   /* cmd_query.c */
int cli_cmd_create(cli_global *g, int argc, char **argv); /* cmd_control.c */
int cli_cmd_cancel(cli_global *g, int argc, char **argv); /* cmd_control.c */
int cli_cmd_retry(cli_global *g, int argc, char **argv);  /* cmd_control.c */
int cli_cmd_prune(cli_global *g, int argc, char **argv);  /* cmd_control.c */
int cli_cmd_stats(cli_global *g, int argc, char **argv);  /* cmd_stats.c */
int cli_cmd_run(cli_global *g, int argc, char **argv);    /* cmd_run.c */
int cli_cmd_watch(cli_global *g, int argc, char **argv);  /* cmd_watch.c */
int cli_cmd_schedule(cli_global *g, int argc, char **argv); /* cmd_schedule.c */
int cli_cmd_policy(cli_global *g, int argc, char **argv);   /* cmd_policy.c */
int cli_cmd_pause_job(cli_global *g, int argc, char **argv);  /* cmd_rules.c */
int cli_cmd_resume_job(cli_global *g, int argc, char **argv); /* cmd_rules.c */
int cli_cmd_pause(cli_global *g, int argc, char **argv);      /* cmd_rules.c */
int cli_cmd_resume(cli_global *g, int argc, char **argv);     /* cmd_rules.c */
int cli_cmd_paused(cli_global *g, int argc, char **argv);     /* cmd_rules.c */
int cli_cmd_conflict(cli_global *g, int argc, char **argv);   /* cmd_rules.c */
int cli_cmd_limit(cli_global *g, int argc, char **argv);      /* cmd_rules.c */
int cli_cmd_conflicts(cli_global *g, int argc, char **argv);  /* cmd_rules_list.c */
int cli_cmd_limits(cli_global *g, int argc, char **argv);     /* cmd_rules_list.c */
int cli_cmd_serve(cli_global *g, int argc, char **argv);      /* cmd_serve.c */

/* The priorities the tool accepts for a job (--priority), either way. */
#define CLI_PRIORITY_LIMIT 1000000

/* ---- Arguments and errors (args.c) ---------------------------------------- */

/* Long-option codes of the global options, shared by every command's table. */
enum { CLI_OPT_DB = 0x100, CLI_OPT_JSON, CLI_OPT_NO_COLOR, CLI_OPT_HELP, CLI_OPT_FIRST_FREE };

#define CLI_GLOBAL_LONG_OPTIONS                                                \
    { "db", 1, NULL, CLI_OPT_DB }, { "json", 0, NULL, CLI_OPT_JSON },          \
        { "no-color", 0, NULL, CLI_OPT_NO_COLOR }, { "help", 0, NULL, CLI_OPT_HELP }

/* Handles one getopt_long() result `c` for the global options. Returns 1 if
 * it was one (--help prints the command's usage and sets *exit_now to 0),
 * 0 if the command must handle it. Unknown options and missing arguments
 * print a usage error and set *exit_now to CLI_EXIT_USAGE. `*exit_now` is
 * left alone otherwise. */
int cli_global_option(cli_global *g, const char *command, int c, const char *arg,
                      char **argv, int *exit_now);

/* Parses a command line that takes the global options and nothing else
 * besides its arguments, leaving optind at the first argument. Returns -1
 * to go on, or an exit code (--help, or a usage error). */
int cli_only_global_options(cli_global *g, const char *command, int argc, char **argv);

/* Prints "jobmgr: <command>: <message>" and a pointer to the command's help
 * on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...) JM_PRINTF(2, 3);

/* Prints "jobmgr: <what>: <jm_last_error()>" on stderr and returns the exit
 * code for library error `rc`. */
int cli_lib_error(int rc, const char *what);

/* The exit code for a library error code. */
int cli_exit_code(int rc);

/* Prints the usage text of `command` on `out` (NULL: the man-style page). */
void cli_print_help(FILE *out, const char *command);

/* Parses a whole decimal integer in [min, max]. 0 on success, -1 if not. */
int cli_parse_int(const char *s, long min, long max, long *out);

/* Parses "queued,running" into a JM_STATUS_BIT mask: 0, or -1 if a name
 * is unknown or none is given. */
int cli_parse_statuses(const char *arg, unsigned int *mask);

/* Non-zero if `t` looks like a job type: two uppercase letters. */
int cli_valid_type(const char *t);

/* Checks that `id` is a job id; on failure prints a usage error. */
int cli_check_id(const char *command, const char *id);

/* The front half of the commands that change one job (cancel, retry,
 * pause-job, resume-job): one id argument, the database opened, `op`
 * called, and the job read back into *j. Returns CLI_EXIT_OK with *m, *j
 * and *id set, or the exit code (the caller then closes *m, frees *j). */
int cli_change_job(cli_global *g, const char *command, int argc, char **argv,
                   int (*op)(jm_manager *, const char *), jm_manager **m, jm_job **j,
                   const char **id);

/* Whether --db names a PostgreSQL database (postgresql:// or postgres://). */
int cli_db_is_url(const char *db);
/* Points cfg at the database --db names: a file, or a PostgreSQL URL (with
 * the schema $JOBMGR_PG_SCHEMA, if set). */
void cli_config_db(jm_config *cfg, const char *db);

/* Opens the manager on g->db (with `host`, may be NULL) and registers the
 * built-in executors. Prints the error and returns an exit code on failure,
 * CLI_EXIT_OK on success. */
int cli_open(const cli_global *g, const char *command, const struct jm_host *host,
             jm_manager **out);

/* ---- The reference engine (cmd_run.c) ------------------------------------- */

struct jm_engine;

/* The longest path of a jobs database or an engine directory the tool takes. */
#define CLI_PATH_MAX 4096

/* The jobs database of a command that takes --engine DIR: g->db (--db,
 * else $JOBMGR_DB), else DIR/jobs.db written into `buf` (`len` bytes).
 * NULL after a usage error (the path is too long). */
const char *cli_engine_db(const cli_global *g, const char *command, const char *dir, char *buf,
                          size_t len);

/* Opens the reference engine in `dir` into *out. Prints the error and
 * returns an exit code on failure, CLI_EXIT_OK on success. */
int cli_open_engine(const char *dir, struct jm_engine **out);

/* ---- Time (timefmt.c) ----------------------------------------------------- */

/* How a relative time ("10m") is read: before or after now. */
typedef enum { CLI_TIME_PAST, CLI_TIME_FUTURE } cli_time_dir;

/* Parses `s` as a time in ms since the epoch: "now"; a relative span with
 * its unit ("30s", "10m", "2h", "7d", "1w", also combined: "1h30m"; a bare
 * number is refused) taken before or
 * after `now_ms` by `dir`; or ISO 8601 ("2026-11-22T10:00:00Z",
 * "…+02:00", "…" local, optional ".fff" fraction, "T" or a space, or a date
 * alone meaning local midnight). 0 on success, -1 if malformed. */
int cli_parse_time(const char *s, cli_time_dir dir, int64_t now_ms, int64_t *out);

/* Parses a span ("7d", "1h30m", a plain number is seconds) into ms. */
int cli_parse_span(const char *s, int64_t *out_ms);

/* Formats `ms` as local ISO 8601 with offset ("2026-11-22T11:00:00+01:00")
 * into buf (at least CLI_TIME_BUF bytes); "-" for 0. Returns buf. */
#define CLI_TIME_BUF 40
const char *cli_format_time(int64_t ms, char *buf, size_t len);

/* Formats a duration compactly ("3d4h", "2h05m", "1m30s", "850ms"). */
const char *cli_format_span(int64_t ms, char *buf, size_t len);

/* Formats a span exactly, in the syntax cli_parse_span() reads ("5m",
 * "1h30m", "1w2d"); one not in whole seconds as "1500ms". */
const char *cli_format_every(int64_t ms, char *buf, size_t len);

/* Formats a time and how far it is from `now`:
 * "2026-11-22T11:00:00+01:00 (in 4m59s)" or "… (3m00s ago)"; "-" for 0.
 * buf holds at least CLI_WHEN_BUF bytes. */
#define CLI_WHEN_BUF (CLI_TIME_BUF + 32)
const char *cli_format_when(int64_t ms, int64_t now, char *buf, size_t len);

/* The wall clock, ms since the epoch. */
int64_t cli_now_ms(void);

/* ---- Tables and colour (table.c) ------------------------------------------ */

/* Colours for cells; CLI_COLOR_NONE prints plain. */
typedef enum {
    CLI_COLOR_NONE,
    CLI_COLOR_BOLD,
    CLI_COLOR_DIM,
    CLI_COLOR_RED,
    CLI_COLOR_GREEN,
    CLI_COLOR_YELLOW,
    CLI_COLOR_BLUE,
    CLI_COLOR_CYAN,
    CLI_COLOR_MAGENTA
} cli_color;

/* Non-zero if stdout should be coloured: a terminal, NO_COLOR unset or
 * empty, and no --no-color. */
int cli_use_color(const cli_global *g);

/* The colour a status is shown in. */
cli_color cli_status_color(jm_status s);

/* Writes `text` in colour `c` to `out` if `enabled`. */
void cli_put_colored(FILE *out, int enabled, cli_color c, const char *text);

/* A table of text cells printed with aligned columns. */
typedef struct cli_table cli_table;

/* NULL if out of memory. The headers are copied. */
cli_table *cli_table_new(size_t ncols, const char *const *headers);
/* Adds a row (ncols cells, NULL shown as "-", copied); colors may be NULL.
 * Returns -1 if out of memory. */
int cli_table_add(cli_table *t, const char *const *cells, const cli_color *colors);
/* Right-aligns column `col` (numbers). */
void cli_table_align_right(cli_table *t, size_t col);
/* Prints the table; each line is cut to `max_width` columns (0: no cut). */
void cli_table_print(const cli_table *t, FILE *out, int color, size_t max_width);
void cli_table_free(cli_table *t);

/* Display width of UTF-8 text (code points; terminal text here is narrow). */
size_t cli_text_width(const char *s);

/* Copies `s` into buf cut to `width` columns, marking a cut with "…". */
const char *cli_text_cut(const char *s, size_t width, char *buf, size_t len);

/* Writes a progress bar "[#####.....]  50%" of `width` cells inside the
 * brackets into buf. */
const char *cli_progress_bar(double fraction, size_t width, char *buf, size_t len);

/* ---- JSON (json_out.c) ----------------------------------------------------- */

/* A job as a JSON object: every field; params, result and checkpoint
 * embedded as JSON values; times as ms and as local ISO strings. NULL if
 * out of memory. */
cJSON *cli_job_json(const jm_job *j);

/* {"new": n, "queued": n, ...}: one count per status. */
cJSON *cli_status_counts_json(const int64_t *by_status);

/* A schedule as a JSON object: every field, params embedded, times as ms
 * and local ISO strings as for jobs, the interval also as a span ("5m").
 * NULL if out of memory. */
cJSON *cli_schedule_json(const jm_schedule *sc);

/* A policy as a JSON object: every field of its spec, the job type it
 * creates, the spans also as text ("1m"), times as ms and local ISO
 * strings. NULL if out of memory. */
cJSON *cli_policy_json(const jm_policy *p);

/* Prints `v` indented by two spaces per level, then a newline. `indent`
 * is the starting level (for values nested in human output). */
void cli_json_print(FILE *out, const cJSON *v, int indent);

/* Pretty-prints a JSON text held as a string; prints it as it is if it does
 * not parse. */
void cli_json_print_text(FILE *out, const char *text, int indent);

/* Prints `v` as the command's JSON output and frees it; returns an exit
 * code (CLI_EXIT_FAILURE if v is NULL: out of memory). */
int cli_json_emit(cJSON *v);

/* ---- Schedules (cmd_schedule.c) -------------------------------------------- */

/* The words of the overlap and misfire policies on the command line and in
 * output ("skip", "queue-one", "allow"; "skip", "run-once", "catch-up"). */
const char *cli_overlap_name(jm_overlap o);
const char *cli_misfire_name(jm_misfire mf);

/* Sorts schedules for "what fires next": those not paused first, soonest
 * next fire time first, then the paused ones. Returns how many are not
 * paused. */
size_t cli_schedules_by_next_fire(jm_schedule **list, size_t n);

/* ---- Policies (cmd_policy.c) ---------------------------------------------- */

/* The word of a policy kind on the command line and in output ("flush",
 * "compact", "retention", "stream-eviction"), and the built-in job type
 * it creates ("FL", "CO", "RT", "SE"). */
const char *cli_policy_kind_name(jm_policy_kind k);
const char *cli_policy_job_type(jm_policy_kind k);

#endif /* JOBMGR_CLI_H */
