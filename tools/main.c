/*
 * main.c: the `jobmgr` command-line tool's entry point: global options,
 * the command table with each command's usage, and dispatch.
 *
 * Commands live in cmd_*.c, one file per group; this file only decides
 * which one runs. It never touches a database itself.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jobmgr/sqlite.h"

enum { OPT_VERSION = CLI_OPT_FIRST_FREE };

static const char usage_list[] =
    "Usage: jobmgr list [--status S[,S...]] [--type T] [--namespace N] [--key K]\n"
    "                   [--since TIME] [--until TIME] [--limit N] [--cursor ID]\n"
    "                   [--newest] [--json]\n"
    "\n"
    "Lists jobs, oldest first (--newest: newest first), one page at a time.\n"
    "A RESOURCE column appears when a job on the page acts on a resource, and\n"
    "a BLOCKED BY column when one waits for a running job, a limit or a pause.\n"
    "  --status S[,S]  only these statuses: new, queued, running, retrying,\n"
    "                  completed, failed, cancelled, paused\n"
    "  --type T        only this type (FL, CL, RT, SE, UC, CO, BK, RS, ...)\n"
    "  --namespace N   only this namespace\n"
    "  --key K         only this idempotency key\n"
    "  --since TIME    created at or after TIME (2h: two hours ago; ISO 8601)\n"
    "  --until TIME    created before TIME\n"
    "  --limit N       page size, 1..10000 (default 100)\n"
    "  --cursor ID     start after this job: the id the previous page's\n"
    "                  \"more jobs\" line (or JSON next_cursor) gave\n"
    "  --json          {\"jobs\": [...], \"next_cursor\": ID or null}\n";

static const char usage_show[] =
    "Usage: jobmgr show ID [--json]\n"
    "\n"
    "Shows every field of one job; params, result (metrics) and checkpoint are\n"
    "pretty-printed JSON. \"resource\" is what the job acts on, \"blocked by\"\n"
    "what held it back at the last claim that passed it: a running job's id,\n"
    "limit:TYPE@RESOURCE (* for any) or paused:type:T / paused:resource:R.\n"
    "Exit 3 if there is no such job.\n";

static const char usage_create[] =
    "Usage: jobmgr create TYPE --params JSON [--key K] [--namespace N]\n"
    "                     [--run-at TIME] [--max-retries N] [--priority P]\n"
    "                     [--resource R] [--json]\n"
    "\n"
    "Creates a job of a built-in TYPE (FL, CL, RT, SE, UC, CO, BK, RS) and\n"
    "prints its id. The executor checks the parameters (exit 1 if it refuses).\n"
    "  --params JSON     the job's parameters, a JSON object (required)\n"
    "  --key K           idempotency key: while an active job holds K, prints\n"
    "                    that job's id and exits 4\n"
    "  --namespace N     the job's namespace, for filtering\n"
    "  --run-at TIME     when it is due: ISO 8601, or 10m, 2h (from now)\n"
    "  --max-retries N   retries allowed, 0..1000 (default: the manager's, 3)\n"
    "  --priority P      higher runs first among due jobs (default 0)\n"
    "  --resource R      what the job acts on, for conflicts, limits and pauses\n"
    "                    (default: the one the type derives from its params,\n"
    "                    app.orders for a table)\n"
    "  --json            {\"id\": ID, \"created\": true|false}\n";

static const char usage_cancel[] =
    "Usage: jobmgr cancel ID [--json]\n"
    "\n"
    "Cancels a new, queued, retrying or paused job at once; asks a running job to stop\n"
    "(its status shows once its executor has stopped). Exit 5 if the job has\n"
    "finished or its running type cannot be cancelled, 3 if there is no such job.\n";

static const char usage_retry[] =
    "Usage: jobmgr retry ID [--json]\n"
    "\n"
    "Requeues a failed or cancelled job: retry count reset, due now. Exit 5 if\n"
    "the job is in another status, 4 if its key is held by another active job.\n";

static const char usage_prune[] =
    "Usage: jobmgr prune --older-than TIME [--json]\n"
    "\n"
    "Deletes completed, failed and cancelled jobs that finished before TIME\n"
    "(7d: seven days ago; or ISO 8601) and prints how many.\n";

static const char usage_stats[] =
    "Usage: jobmgr stats [--json]\n"
    "\n"
    "Prints job counts by type and status, the queue depth (jobs due and\n"
    "waiting), the oldest due job's age, running jobs and the jobs that failed\n"
    "in the last hour.\n";

static const char usage_run[] =
    "Usage: jobmgr run --engine DIR [--workers N] [--drain SPAN]\n"
    "                  [--policy-interval SPAN] [--io-limit CLASS=RATE,...]\n"
    "                  [--high-workers H] [--verbose]\n"
    "\n"
    "Runs the built-in executors against the reference engine in DIR, with N\n"
    "worker threads (default 4), until SIGINT (Ctrl-C) or SIGTERM. Then it stops\n"
    "claiming jobs, gives running ones SPAN to finish (default 10s), asks the\n"
    "rest to stop (they go back to retrying, no retry spent) and exits 0.\n"
    "It fires the schedules and evaluates the table policies of the database.\n"
    "The jobs database is --db, else $JOBMGR_DB, else DIR/jobs.db.\n"
    "  --policy-interval SPAN  how often the policies are evaluated (default\n"
    "                          10s; 1s to 1d)\n"
    "  --io-limit CLASS=RATE,...  the I/O budget of a priority class (high:\n"
    "                          flush, stream eviction; normal: the others) in\n"
    "                          bytes per second, shared by the workers; K, M\n"
    "                          or G multiply by 1024, 1024^2, 1024^3; 0 (the\n"
    "                          default) is unlimited. high=10M,normal=5M\n"
    "  --high-workers H  keep H of the N workers for high-class jobs (flush,\n"
    "                          stream eviction): the others run on at most N-H;\n"
    "                          0..N-1 (default 0: none kept)\n"
    "  --verbose   log the manager's info lines too (to stderr)\n";

static const char usage_watch[] =
    "Usage: jobmgr watch [--interval MS] [--once] [--type T] [--json]\n"
    "\n"
    "A live view of the running jobs with a progress bar each. On a terminal\n"
    "the view refreshes in place every MS milliseconds (default 1000); q or\n"
    "Ctrl-C quits. Otherwise it prints one line per running job every interval.\n"
    "Each snapshot also names the (at most 5) schedules that fire next, soonest\n"
    "first; paused ones are left out.\n"
    "  --once      one snapshot, then exit\n"
    "  --type T    only jobs and schedules of this type\n"
    "  --json      one JSON object per snapshot and line: \"running\" jobs,\n"
    "              \"next_fires\" [{\"id\", \"name\", \"next_fire\", \"next_fire_ms\"}],\n"
    "              \"queued\", \"retrying\"\n";

static const char usage_schedule[] =
    "Usage: jobmgr schedule add NAME --type T [--params JSON]\n"
    "                           (--cron EXPR [--tz ZONE] | --every SPAN [--anchor TIME])\n"
    "                           [--jitter SPAN] [--overlap skip|queue-one|allow]\n"
    "                           [--misfire skip|run-once|catch-up:N]\n"
    "                           [--pause-after-failures K] [--paused]\n"
    "                           [--namespace N] [--priority P] [--max-retries N] [--json]\n"
    "       jobmgr schedule update ID|NAME [--name NEW] (every option of add again)\n"
    "       jobmgr schedule list [--json]\n"
    "       jobmgr schedule show ID|NAME [--json]\n"
    "       jobmgr schedule pause|resume|rm ID|NAME [--json]\n"
    "       jobmgr schedule next EXPR [--tz ZONE] [--count N] [--from TIME] [--json]\n"
    "\n"
    "A schedule creates jobs on a trigger: a cron expression read in a time zone,\n"
    "or a fixed interval. Schedules are rows in the jobs database; a running\n"
    "manager (jobmgr run, or a host program) fires them.\n"
    "  add      creates a schedule and prints its id. Exit 4 if the name is\n"
    "           taken, 1 with the library's reason if it refuses the schedule.\n"
    "  update   replaces the whole spec: give every option again, as to add;\n"
    "           those left out go back to their defaults, and the schedule\n"
    "           runs unless --paused is given. It keeps its name unless\n"
    "           --name NEW, and its next fire time if the trigger is the same.\n"
    "  list     every schedule by name: trigger, next and last fire time,\n"
    "           policies, paused, failures in a row\n"
    "  show     every field, the next 5 fire times (from the stored next one,\n"
    "           which is past while paused or overdue) and the last job it\n"
    "           created (the library keeps no list of a schedule's jobs)\n"
    "  pause    fires no more; times missed meanwhile go to the misfire policy\n"
    "  resume   fires again, and clears the count of failures in a row\n"
    "  rm       deletes the schedule; its jobs stay\n"
    "  next     the next fire times of a cron expression; needs no database\n"
    "Exit 3 if there is no such schedule.\n"
    "  --type T        the jobs' type (FL, CL, RT, SE, UC, CO, BK, RS, ...)\n"
    "  --params JSON   the jobs' parameters, a JSON object (default {})\n"
    "  --cron EXPR     minute hour day-of-month month day-of-week, or six fields\n"
    "                  with seconds first; or @hourly, @daily, @weekly, @monthly,\n"
    "                  @yearly. Quote it.\n"
    "  --tz ZONE       the zone EXPR is read in: UTC (default) or an IANA name\n"
    "                  (Europe/Berlin)\n"
    "  --every SPAN    or: every SPAN (30s, 5m, 1h30m, 1d; 1s to 366d)\n"
    "  --anchor TIME   fire at TIME + k*SPAN (ISO 8601, or 10m: from now);\n"
    "                  default: counted from when the schedule is created\n"
    "  --jitter SPAN   each job runs up to SPAN (at most 1d) after its fire\n"
    "                  time, at random\n"
    "  --overlap P     while its last job is active: skip the fire (default),\n"
    "                  queue-one (fire only if none of its jobs waits), allow\n"
    "  --misfire P     fire times missed while no manager ran or while paused:\n"
    "                  skip them (default), run-once (one job for the latest),\n"
    "                  catch-up:N (a job for each, at most N, 1..1000)\n"
    "  --pause-after-failures K  pause after K failed jobs in a row (0: never)\n"
    "  --paused        create it paused\n"
    "  --namespace N, --priority P, --max-retries N  the jobs' options, as create's\n"
    "  --name NEW      (update) rename it\n"
    "  --count N       (next) how many fire times, 1..100 (default 5)\n"
    "  --from TIME     (next) the times after TIME instead of now (ISO 8601, or\n"
    "                  2h: from now); shown in local time\n"
    "  --json          add, update: {\"id\": ID}; list: an array of schedules;\n"
    "                  show: the schedule with \"upcoming\" and \"last_job\";\n"
    "                  pause, resume: {\"id\", \"name\", \"paused\"}; rm: {\"id\",\n"
    "                  \"name\", \"deleted\"}; next: {\"expr\", \"tz\", \"from\",\n"
    "                  \"fire_times\": [{\"fire_at\", \"fire_at_ms\"}, ...]}\n";

static const char usage_policy[] =
    "Usage: jobmgr policy add NAME --kind flush|compact|retention|stream-eviction\n"
    "                         [--namespace N] [--table T] [--table-type User|Shared|Stream]\n"
    "                         [--rows N] [--max-age SPAN] [--segments N]\n"
    "                         [--small-files N] [--small-bytes BYTES] [--every SPAN]\n"
    "                         [--retention-hours H] [--priority P] [--paused] [--json]\n"
    "       jobmgr policy list [--json]\n"
    "       jobmgr policy show ID|NAME [--json]\n"
    "       jobmgr policy pause|resume|rm ID|NAME [--json]\n"
    "       jobmgr policy eval --engine DIR [--json]\n"
    "\n"
    "A policy is a rule on one table, or on every table (of a type, in a\n"
    "namespace), that creates a built-in job when the table's figures call for\n"
    "it. Policies are rows in the jobs database; a running manager whose host\n"
    "lists tables (jobmgr run, or a host program) evaluates them. Each job a\n"
    "policy creates has the key policy:<kind>:<namespace>.<table> (the kind\n"
    "written flush, compact, retention or stream_eviction), so a table never has\n"
    "two of its jobs waiting or running at once.\n"
    "  add      creates a policy and prints its id. Exit 4 if the name is\n"
    "           taken, 1 with the library's reason if it refuses the policy.\n"
    "  list     every policy by name: kind, target, rule, paused\n"
    "  show     every field\n"
    "  pause    evaluated no more until resumed\n"
    "  resume   evaluated again\n"
    "  rm       deletes the policy; its jobs stay\n"
    "  eval     evaluates the policies once against the reference engine in\n"
    "           DIR and prints how many jobs that created. The database is\n"
    "           --db, else $JOBMGR_DB, else DIR/jobs.db. The engine is open in\n"
    "           one process at a time: not while jobmgr run uses DIR.\n"
    "Exit 3 if there is no such policy.\n"
    "  --kind K           flush (FL jobs), compact (CO), retention (RT) or\n"
    "                     stream-eviction (SE); required\n"
    "  --namespace N      only tables in N (default: every namespace)\n"
    "  --table T          only table T of namespace N (needs --namespace)\n"
    "  --table-type TYPE  without --table: only tables of TYPE\n"
    "  --rows N           flush: when N rows or more are buffered\n"
    "  --max-age SPAN     flush: when the oldest buffered row is SPAN old (5m)\n"
    "  --segments N       compact: when the table has N segments or more\n"
    "  --small-files N    compact: when more than N segments are small\n"
    "  --small-bytes B    compact: a segment under B bytes is small (default\n"
    "                     1048576)\n"
    "  --every SPAN       retention, stream-eviction: at most every SPAN per\n"
    "                     table (at least 1s)\n"
    "  --retention-hours H  retention: purge rows deleted more than H hours ago\n"
    "  --priority P       the priority of the jobs it creates (default 0)\n"
    "  --paused           create it paused\n"
    "  --engine DIR       (eval) the reference engine whose tables are judged\n"
    "  --json             add: {\"id\": ID}; list: an array of policies; show:\n"
    "                     the policy; pause, resume: {\"id\", \"name\", \"paused\"};\n"
    "                     rm: {\"id\", \"name\", \"deleted\"}; eval: {\"created\": N}\n";

static const char usage_pause_job[] =
    "Usage: jobmgr pause-job ID [--json]\n"
    "\n"
    "Pauses one job. A new, queued or retrying job becomes paused at once; a\n"
    "running one gets a pause request (its executor yields at its next safe\n"
    "point, and the job becomes paused with its checkpoint). A pause spends no\n"
    "retry; a cancel wins over it. Exit 5 if the job has finished, is paused\n"
    "already or has a pause requested, 3 if there is no such job.\n"
    "  --json  {\"id\", \"status\", \"pause_requested\"}\n";

static const char usage_resume_job[] =
    "Usage: jobmgr resume-job ID [--json]\n"
    "\n"
    "Requeues a paused job (queued, or new while its run_at is still ahead), or\n"
    "withdraws the pause request of a running one. Exit 5 if the job is neither\n"
    "paused nor asked to pause, 3 if there is no such job.\n"
    "  --json  {\"id\", \"status\", \"pause_requested\"}\n";

static const char usage_pause[] =
    "Usage: jobmgr pause all|type TYPE|resource RES [--json]\n"
    "\n"
    "Stops claiming the jobs in scope, in every process on the database, until\n"
    "resumed: every job, the jobs of one type, or the jobs on one resource\n"
    "(app.orders). Jobs already running go on (pause-job asks one to yield);\n"
    "waiting ones keep their status. Pausing what is paused changes nothing.\n"
    "  --json  {\"scope\", \"what\", \"paused\": true}\n";

static const char usage_resume[] =
    "Usage: jobmgr resume all|type TYPE|resource RES [--json]\n"
    "\n"
    "Ends a pause that `jobmgr pause` set, given the same way. Exit 3 if there\n"
    "is no such pause (`jobmgr paused` lists them).\n"
    "  --json  {\"scope\", \"what\", \"paused\": false}\n";

static const char usage_paused[] =
    "Usage: jobmgr paused [--json]\n"
    "\n"
    "Lists the standing pauses: scope (all, type, resource), the type or\n"
    "resource, and since when.\n"
    "  --json  [{\"scope\", \"what\", \"since\", \"since_ms\"}, ...]\n";

static const char usage_conflicts[] =
    "Usage: jobmgr conflicts [--json]\n"
    "\n"
    "Lists the conflict rules, the defaults included: two types, and whether\n"
    "their jobs may run together on one resource ('*': every type).\n"
    "  --json  [{\"type_a\", \"type_b\", \"exclusive\"}, ...]\n";

static const char usage_limits[] =
    "Usage: jobmgr limits [--json]\n"
    "\n"
    "Lists the limits: the type (any), the resource (any, or each on its\n"
    "own) and how many such jobs may run at once.\n"
    "  --json  [{\"type\", \"resource\", \"max_running\"}, ...] (null: any;\n"
    "          resource \"*\": each resource)\n";

static const char usage_conflict[] =
    "Usage: jobmgr conflict TYPE_A TYPE_B on|off [--json]\n"
    "\n"
    "Sets whether jobs of two types may run at the same time on the same\n"
    "resource, for every process on the database: on, never together; off,\n"
    "allowed. Symmetric; the types may be the same, and one of them may be '*'\n"
    "for every type (quote it). A pair's own setting wins over a '*' one.\n"
    "Jobs without a resource never conflict. The defaults: CL and RS exclude\n"
    "every type, CO excludes CO and BK (docs/conflicts.md).\n"
    "  --json  {\"type_a\", \"type_b\", \"exclusive\"}\n";

static const char usage_limit[] =
    "Usage: jobmgr limit [--type T] [--resource R|'*'] N [--json]\n"
    "\n"
    "Caps how many jobs run at once, across every process on the database:\n"
    "  limit N                       every job\n"
    "  limit --type T N              jobs of type T\n"
    "  limit --resource R N          jobs on resource R\n"
    "  limit --type T --resource R N jobs of type T on resource R\n"
    "--resource '*' counts each resource on its own (jobs without a resource\n"
    "are not counted). N is at least 1; 0 removes the limit so given.\n"
    "  --json  {\"type\", \"resource\", \"max_running\"}\n";

static const char usage_serve[] =
    "Usage: jobmgr serve [--listen HOST:PORT] [--token-file F] [--read-only]\n"
    "\n"
    "Serves the web dashboard until SIGINT or SIGTERM: overview, jobs, schedules,\n"
    "pauses, a JSON API under /api/ and Prometheus metrics at /metrics\n"
    "(docs/dashboard.md). Prints the address it listens on.\n"
    "  --listen HOST:PORT  where to listen (default 127.0.0.1:8080; port 0\n"
    "                      picks a free one; [::1]:8080 for IPv6)\n"
    "  --token-file F      the token actions need (first line of F, 16..256\n"
    "                      characters); without it, a random token is made and\n"
    "                      printed on stderr. Required beyond loopback, where\n"
    "                      every request needs the token\n"
    "  --read-only         refuse every action\n";

const cli_command cli_commands[] = {
    {"list", "list jobs, filtered, one page at a time", usage_list, cli_cmd_list},
    {"show", "show every field of one job", usage_show, cli_cmd_show},
    {"create", "create a job and print its id", usage_create, cli_cmd_create},
    {"cancel", "cancel a job, or ask a running one to stop", usage_cancel, cli_cmd_cancel},
    {"retry", "requeue a failed or cancelled job", usage_retry, cli_cmd_retry},
    {"prune", "delete finished jobs older than a time", usage_prune, cli_cmd_prune},
    {"stats", "counts by type and status, queue depth, failures", usage_stats, cli_cmd_stats},
    {"run", "run the built-in executors on a reference engine", usage_run, cli_cmd_run},
    {"watch", "live view of running jobs with progress bars", usage_watch, cli_cmd_watch},
    {"schedule", "add, list, show, change and preview schedules", usage_schedule,
     cli_cmd_schedule},
    {"policy", "add, list, show, pause and evaluate table policies", usage_policy,
     cli_cmd_policy},
    {"pause-job", "pause one job, or ask a running one to yield", usage_pause_job,
     cli_cmd_pause_job},
    {"resume-job", "requeue a paused job", usage_resume_job, cli_cmd_resume_job},
    {"pause", "stop claiming every job, a type's or a resource's", usage_pause, cli_cmd_pause},
    {"resume", "end a pause", usage_resume, cli_cmd_resume},
    {"paused", "list the standing pauses", usage_paused, cli_cmd_paused},
    {"conflict", "let two types run together on one resource, or not", usage_conflict,
     cli_cmd_conflict},
    {"limit", "cap the running jobs of a type, a resource, or all", usage_limit,
     cli_cmd_limit},
    {"serve", "serve the web dashboard and its JSON API", usage_serve, cli_cmd_serve},
    {"conflicts", "list the conflict rules", usage_conflicts, cli_cmd_conflicts},
    {"limits", "list the limits", usage_limits, cli_cmd_limits},
};
const size_t cli_ncommands = sizeof cli_commands / sizeof cli_commands[0];

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < cli_ncommands; i++)
        if (strcmp(cli_commands[i].name, name) == 0)
            return &cli_commands[i];
    return NULL;
}

/* `jobmgr help [COMMAND]`. */
static int run_help(int argc, char **argv)
{
    if (argc < 2) {
        cli_print_help(stdout, NULL);
        return CLI_EXIT_OK;
    }
    if (argc > 2)
        return cli_usage_error("help", "takes at most one command name");
    if (strcmp(argv[1], "help") == 0) {
        printf("Usage: jobmgr help [COMMAND]\n\nPrints the usage of COMMAND, or the "
               "manual page.\n");
        return CLI_EXIT_OK;
    }
    if (!find_command(argv[1]))
        return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
    cli_print_help(stdout, argv[1]);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_GLOBAL_LONG_OPTIONS, {"version", 0, NULL, OPT_VERSION}, {NULL, 0, NULL, 0}};
    cli_global g = {getenv(CLI_ENV_DB), 0, 0};
    int c, code = -1;

    /* "+": stop at the command name; its options are its own. */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
        if (c == OPT_VERSION) {
            int bundled = 0;
            const char *sqlite = jm_sqlite_version(&bundled);
            printf("jobmgr %s (SQLite %s, %s)\n", JM_VERSION_STRING, sqlite,
                   bundled ? "bundled" : "system");
            return CLI_EXIT_OK;
        }
        if (cli_global_option(&g, NULL, c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        return cli_usage_error(NULL, "unexpected option");
    }
    if (optind >= argc)
        return cli_usage_error(NULL, "no command given");

    const char *name = argv[optind];
    if (strcmp(name, "help") == 0)
        return run_help(argc - optind, argv + optind);
    const cli_command *cmd = find_command(name);
    if (!cmd)
        return cli_usage_error(NULL, "unknown command '%s'", name);
    int rc = cmd->run(&g, argc - optind, argv + optind);
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
        fprintf(stderr, "jobmgr: writing the output failed\n");
        return CLI_EXIT_FAILURE;
    }
    return rc;
}
