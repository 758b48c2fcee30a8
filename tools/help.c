/*
 * help.c: the tool's documentation: the man-style page of `jobmgr --help`
 * and the usage of each command (`jobmgr help CMD`, `CMD --help`).
 *
 * The exit codes and environment listed here are the contract scripts rely
 * on; cli.h defines the codes, and the two must say the same.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char page_head[] =
    "NAME\n"
    "    jobmgr - inspect and steer the jobs of a jobmgr database\n"
    "\n"
    "SYNOPSIS\n"
    "    jobmgr [--db FILE] [--json] [--no-color] COMMAND [ARGS...]\n"
    "    jobmgr help [COMMAND]\n"
    "    jobmgr --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    jobmgr reads and changes the jobs database of the jobmgr library\n"
    "    (a SQLite file) through the library's public API, and can run the\n"
    "    built-in executors against the reference engine. It also adds and\n"
    "    changes schedules, which any running manager fires, and table\n"
    "    policies, which a running manager judges its host's tables by, and\n"
    "    the rules every manager's claims obey: pauses, conflicts between job\n"
    "    types on one resource, and limits on running jobs.\n"
    "    Several programs may use one database at once. Times are shown in\n"
    "    local time, ISO 8601 with the offset; they are accepted as ISO 8601\n"
    "    (2026-11-22T10:00:00Z, 2026-11-22T11:00:00+01:00, 2026-11-22T10:00:00\n"
    "    local, 2026-11-22) or relative with a unit (30s, 10m, 2h, 7d, 1w,\n"
    "    1h30m; before now for filters and prune, after now for --run-at,\n"
    "    --anchor and --from).\n"
    "\n"
    "COMMANDS\n";

static const char page_tail[] =
    "\n"
    "OPTIONS\n"
    "    --db FILE     the jobs database (default: $JOBMGR_DB; `run` and\n"
    "                  `policy eval` also default to DIR/jobs.db), or a\n"
    "                  PostgreSQL URL: postgresql://... or postgres://...\n"
    "    --json        machine-readable output (every command that prints results)\n"
    "    --no-color    no colours (they are used only on a terminal anyway)\n"
    "    --help        this page, or a command's usage after its name\n"
    "    --version     the version\n"
    "    Global options may also follow the command name.\n"
    "\n"
    "EXIT STATUS\n"
    "    0  success\n"
    "    1  any other failure (bad parameters refused by the executor, unknown\n"
    "       job type, a schedule, cron expression or policy the library\n"
    "       refuses, out of memory, ...)\n"
    "    2  usage error: unknown command or option, malformed value, time, id\n"
    "       or JSON on the command line\n"
    "    3  not found: no job with that id, no schedule or policy with that id\n"
    "       or name, no such pause to resume, or (schedule next) no fire time\n"
    "       within eight years of the one before\n"
    "    4  conflict: the idempotency key is held by an active job (create\n"
    "       prints that job's id), a retry would take a key held by another,\n"
    "       or a schedule or policy name is taken\n"
    "    5  state: the job's status does not allow it (cancel of a finished\n"
    "       job, retry of one not failed or cancelled, cancel of a running job\n"
    "       whose type cannot be cancelled, pause-job of a finished or paused\n"
    "       job, resume-job of one neither paused nor asked to pause)\n"
    "    6  database error: not a jobs database, I/O error, or busy too long\n"
    "\n"
    "ENVIRONMENT\n"
    "    JOBMGR_DB   the jobs database when --db is not given\n"
    "    JOBMGR_PG_SCHEMA  the schema of the jobs tables on PostgreSQL\n"
    "                (default jobmgr)\n"
    "    NO_COLOR    when set and not empty, no colours\n"
    "    TZ          the time zone times are shown and read in\n"
    "\n"
    "EXAMPLES\n"
    "    export JOBMGR_DB=data/jobs.db\n"
    "    jobmgr create FL --params '{\"namespace_id\":\"app\",\"table_name\":\"orders\","
    "\"table_type\":\"User\"}' --key flush:app.orders\n"
    "    jobmgr run --engine data --workers 4 &\n"
    "    jobmgr list --status queued,running --since 1h\n"
    "    jobmgr show FL-1b4e28ba-2fa1-11d2-883f-0016d3cca427 --json\n"
    "    jobmgr watch\n"
    "    jobmgr stats\n"
    "    jobmgr prune --older-than 7d\n"
    "    jobmgr schedule add nightly-flush --type FL --params \"$params\" \\\n"
    "        --cron '0 3 * * *' --tz Europe/Berlin\n"
    "    jobmgr schedule next '*/15 9-17 * * 1-5' --count 3\n"
    "    jobmgr policy add flush-orders --kind flush --namespace app --table orders \\\n"
    "        --rows 10000 --max-age 1m\n"
    "    jobmgr pause type CO\n"
    "    jobmgr limit --type BK --resource '*' 1\n";

void cli_print_help(FILE *out, const char *command)
{
    if (command) {
        for (size_t i = 0; i < cli_ncommands; i++) {
            if (strcmp(cli_commands[i].name, command) == 0) {
                fprintf(out, "%s", cli_commands[i].usage);
                fprintf(out, "\nGlobal options (--db FILE, --json, --no-color) may be given "
                             "too; see 'jobmgr --help'.\n");
                return;
            }
        }
    }
    fputs(page_head, out);
    int width = (int)strlen("help");
    for (size_t i = 0; i < cli_ncommands; i++)
        if ((int)strlen(cli_commands[i].name) > width)
            width = (int)strlen(cli_commands[i].name);
    for (size_t i = 0; i < cli_ncommands; i++)
        fprintf(out, "    %-*s %s\n", width, cli_commands[i].name, cli_commands[i].summary);
    fprintf(out, "    %-*s %s\n", width, "help", "print a command's usage");
    fputs(page_tail, out);
}
