/*
 * args.c: the pieces of argument handling every command shares: the global
 * options, usage errors, mapping library errors to exit codes, number and id
 * checks, and opening the jobs database.
 *
 * It does not know any command's own options; each cmd_*.c parses those.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "jobmgr: %s%s", command ? command : "", command ? ": " : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (command)
        fprintf(stderr, "\nTry 'jobmgr help %s'.\n", command);
    else
        fprintf(stderr, "\nTry 'jobmgr --help'.\n");
    return CLI_EXIT_USAGE;
}

int cli_exit_code(int rc)
{
    switch (rc) {
    case JM_OK:
        return CLI_EXIT_OK;
    case JM_ENOTFOUND:
        return CLI_EXIT_NOTFOUND;
    case JM_ECONFLICT:
        return CLI_EXIT_CONFLICT;
    case JM_ESTATE:
    case JM_ENOTCANCELLABLE:
        return CLI_EXIT_STATE;
    case JM_EDB:
    case JM_EIO:
    case JM_EBUSY:
        return CLI_EXIT_DB;
    default:
        return CLI_EXIT_FAILURE;
    }
}

int cli_lib_error(int rc, const char *what)
{
    fprintf(stderr, "jobmgr: %s: %s\n", what, jm_last_error());
    return cli_exit_code(rc);
}

int cli_global_option(cli_global *g, const char *command, int c, const char *arg,
                      char **argv, int *exit_now)
{
    switch (c) {
    case CLI_OPT_DB:
        g->db = arg;
        return 1;
    case CLI_OPT_JSON:
        g->json = 1;
        return 1;
    case CLI_OPT_NO_COLOR:
        g->no_color = 1;
        return 1;
    case CLI_OPT_HELP:
        cli_print_help(stdout, command);
        *exit_now = CLI_EXIT_OK;
        return 1;
    case ':':
        *exit_now = cli_usage_error(command, "option '%s' needs a value", argv[optind - 1]);
        return 1;
    case '?':
        *exit_now = cli_usage_error(command, "unknown option '%s'", argv[optind - 1]);
        return 1;
    default:
        return 0;
    }
}

int cli_only_global_options(cli_global *g, const char *command, int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, command, c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        return cli_usage_error(command, "unexpected option");
    }
    return -1;
}

int cli_parse_int(const char *s, long min, long max, long *out)
{
    if (!s || !*s)
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cli_valid_type(const char *t)
{
    return strlen(t) == 2 && t[0] >= 'A' && t[0] <= 'Z' && t[1] >= 'A' && t[1] <= 'Z';
}

int cli_check_id(const char *command, const char *id)
{
    if (jm_job_id_parse(id, NULL) != JM_OK)
        return cli_usage_error(command, "'%s' is not a job id (TY-<uuid>)", id);
    return CLI_EXIT_OK;
}

int cli_db_is_url(const char *db)
{
    return strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0;
}

void cli_config_db(jm_config *cfg, const char *db)
{
    if (cli_db_is_url(db)) {
        cfg->db_url = db;
        cfg->pg_schema = getenv(CLI_ENV_PG_SCHEMA);
    } else {
        cfg->db_path = db;
    }
}

int cli_open(const cli_global *g, const char *command, const struct jm_host *host,
             jm_manager **out)
{
    *out = NULL;
    if (!g->db || !*g->db)
        return cli_usage_error(command, "no jobs database: pass --db FILE or set %s",
                               CLI_ENV_DB);
    jm_config cfg = JM_CONFIG_INIT;
    cli_config_db(&cfg, g->db);
    cfg.host = host;
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc != JM_OK) {
        char what[64 + 4096];
        snprintf(what, sizeof what, "opening %s", g->db);
        return cli_lib_error(rc, what);
    }
    rc = jm_register_builtin(m);
    if (rc != JM_OK) {
        int code = cli_lib_error(rc, "registering the built-in executors");
        jm_close(m);
        return code;
    }
    *out = m;
    return CLI_EXIT_OK;
}

int cli_parse_statuses(const char *arg, unsigned int *mask)
{
    char buf[256];
    if (strlen(arg) >= sizeof buf)
        return -1;
    strcpy(buf, arg);
    *mask = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        jm_status s;
        if (jm_status_parse(tok, &s) != JM_OK)
            return -1;
        *mask |= JM_STATUS_BIT(s);
    }
    return *mask ? 0 : -1;
}
