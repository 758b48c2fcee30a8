/*
 * cmd_rules.c: the commands that steer which jobs may start: `pause-job`
 * and `resume-job` (one job), `pause`, `resume` and `paused` (every job, a
 * type or a resource), `conflict` (two types on one resource) and `limit`
 * (how many run at once).
 *
 * The rules live in the jobs database and every manager on it obeys them
 * at its next claim; each command here is one library call with argument
 * checks and output. Listing conflicts and limits is cmd_rules_list.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <limits.h>
#include <string.h>

#include "cli.h"

enum { OPT_TYPE = CLI_OPT_FIRST_FREE, OPT_RESOURCE };

/* The words of the pause scopes on the command line and in output. */
static const char *scope_name(jm_pause_scope s)
{
    switch (s) {
    case JM_PAUSE_ALL:
        return "all";
    case JM_PAUSE_TYPE:
        return "type";
    case JM_PAUSE_RESOURCE:
        return "resource";
    }
    return "unknown";
}

/* Checks a type argument: two uppercase letters, or "*" where `star`
 * allows it. Prints the usage error and returns CLI_EXIT_USAGE if not. */
static int check_type(const char *command, const char *t, int star)
{
    if (cli_valid_type(t) || (star && strcmp(t, "*") == 0))
        return CLI_EXIT_OK;
    return cli_usage_error(command, "bad type '%s' (two uppercase letters%s)", t,
                           star ? ", or '*' for every type" : "");
}

/* ---- pause-job, resume-job ---------------------------------------------------- */

/* One job paused or resumed; prints its status afterwards. */
static int change_job(cli_global *g, const char *command, int argc, char **argv, int pause)
{
    jm_manager *m = NULL;
    jm_job *j = NULL;
    const char *id = NULL;
    int code = cli_change_job(g, command, argc, argv, pause ? jm_pause_job : jm_resume_job, &m,
                              &j, &id);
    if (code != CLI_EXIT_OK)
        goto done;
    jm_status st = jm_job_status(j);
    if (g->json) {
        cJSON *o = cJSON_CreateObject();
        if (o && (!cJSON_AddStringToObject(o, "id", id) ||
                  !cJSON_AddStringToObject(o, "status", jm_status_name(st)) ||
                  !cJSON_AddBoolToObject(o, "pause_requested", jm_job_pause_requested(j)))) {
            cJSON_Delete(o);
            o = NULL;
        }
        code = cli_json_emit(o);
        goto done;
    }
    /* A running job only gets (or loses) the request: its executor yields
     * at its next safe point. */
    const char *verb;
    if (st == JM_STATUS_RUNNING)
        verb = pause ? "pause requested for" : "pause request withdrawn for";
    else
        verb = pause ? "paused" : "resumed";
    printf("%s %s (%s)\n", verb, id, jm_status_name(st));
    code = CLI_EXIT_OK;
done:
    jm_job_free(j);
    jm_close(m);
    return code;
}

int cli_cmd_pause_job(cli_global *g, int argc, char **argv)
{
    return change_job(g, "pause-job", argc, argv, 1);
}

int cli_cmd_resume_job(cli_global *g, int argc, char **argv)
{
    return change_job(g, "resume-job", argc, argv, 0);
}

/* ---- pause, resume, paused ---------------------------------------------------- */

/* Reads "all", "type TYPE" or "resource RES" from argv[optind...]. */
static int parse_scope(const char *command, int argc, char **argv, jm_pause_scope *scope,
                       const char **what)
{
    int n = argc - optind;
    if (n < 1)
        return cli_usage_error(command, "needs what to %s: all, type TYPE or resource RES",
                               command);
    const char *word = argv[optind];
    *what = NULL;
    if (strcmp(word, "all") == 0) {
        *scope = JM_PAUSE_ALL;
        if (n != 1)
            return cli_usage_error(command, "unexpected argument '%s' after all",
                                   argv[optind + 1]);
        return CLI_EXIT_OK;
    }
    if (strcmp(word, "type") == 0)
        *scope = JM_PAUSE_TYPE;
    else if (strcmp(word, "resource") == 0)
        *scope = JM_PAUSE_RESOURCE;
    else
        return cli_usage_error(command, "unknown scope '%s' (all, type TYPE, resource RES)",
                               word);
    if (n != 2)
        return cli_usage_error(command, "%s needs exactly one %s", word,
                               *scope == JM_PAUSE_TYPE ? "job type" : "resource");
    *what = argv[optind + 1];
    if (*scope == JM_PAUSE_TYPE)
        return check_type(command, *what, 0);
    if (!**what)
        return cli_usage_error(command, "the resource is empty");
    return CLI_EXIT_OK;
}

static int pause_or_resume(cli_global *g, const char *command, int argc, char **argv,
                           int pause)
{
    int code = cli_only_global_options(g, command, argc, argv);
    if (code >= 0)
        return code;
    jm_pause_scope scope = JM_PAUSE_ALL;
    const char *what = NULL;
    if ((code = parse_scope(command, argc, argv, &scope, &what)) != CLI_EXIT_OK)
        return code;

    jm_manager *m = NULL;
    if ((code = cli_open(g, command, NULL, &m)) != CLI_EXIT_OK)
        return code;
    int rc = pause ? jm_pause(m, scope, what) : jm_resume(m, scope, what);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, command);
        goto done;
    }
    if (g->json) {
        cJSON *o = cJSON_CreateObject();
        if (o && (!cJSON_AddStringToObject(o, "scope", scope_name(scope)) ||
                  !(what ? cJSON_AddStringToObject(o, "what", what)
                         : cJSON_AddNullToObject(o, "what")) ||
                  !cJSON_AddBoolToObject(o, "paused", pause))) {
            cJSON_Delete(o);
            o = NULL;
        }
        code = cli_json_emit(o);
        goto done;
    }
    if (scope == JM_PAUSE_ALL)
        printf("%s all work\n", pause ? "paused" : "resumed");
    else
        printf("%s %s %s\n", pause ? "paused" : "resumed", scope_name(scope), what);
    code = CLI_EXIT_OK;
done:
    jm_close(m);
    return code;
}

int cli_cmd_pause(cli_global *g, int argc, char **argv)
{
    return pause_or_resume(g, "pause", argc, argv, 1);
}

int cli_cmd_resume(cli_global *g, int argc, char **argv)
{
    return pause_or_resume(g, "resume", argc, argv, 0);
}

static cJSON *pauses_json(const jm_pause_entry *list, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        char since[CLI_TIME_BUF];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            goto fail;
        }
        if (!cJSON_AddStringToObject(o, "scope", scope_name(list[i].scope)) ||
            !(list[i].what ? cJSON_AddStringToObject(o, "what", list[i].what)
                           : cJSON_AddNullToObject(o, "what")) ||
            !cJSON_AddStringToObject(o, "since",
                                     cli_format_time(list[i].since_ms, since, sizeof since)) ||
            !cJSON_AddNumberToObject(o, "since_ms", (double)list[i].since_ms))
            goto fail;
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}

static int print_pauses(const cli_global *g, const jm_pause_entry *list, size_t n)
{
    static const char *const headers[] = {"SCOPE", "WHAT", "SINCE"};
    cli_table *t = cli_table_new(3, headers);
    if (!t)
        return -1;
    int64_t now = cli_now_ms();
    for (size_t i = 0; i < n; i++) {
        char since[CLI_WHEN_BUF];
        const char *cells[] = {scope_name(list[i].scope), list[i].what,
                               cli_format_when(list[i].since_ms, now, since, sizeof since)};
        if (cli_table_add(t, cells, NULL)) {
            cli_table_free(t);
            return -1;
        }
    }
    cli_table_print(t, stdout, cli_use_color(g), 0);
    cli_table_free(t);
    return 0;
}

int cli_cmd_paused(cli_global *g, int argc, char **argv)
{
    int code = cli_only_global_options(g, "paused", argc, argv);
    if (code >= 0)
        return code;
    if (optind < argc)
        return cli_usage_error("paused", "unexpected argument '%s'", argv[optind]);

    jm_manager *m = NULL;
    jm_pause_entry *list = NULL;
    size_t n = 0;
    if ((code = cli_open(g, "paused", NULL, &m)) != CLI_EXIT_OK)
        return code;
    int rc = jm_paused_list(m, &list, &n);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "paused");
        goto done;
    }
    if (g->json) {
        code = cli_json_emit(pauses_json(list, n));
    } else if (n == 0) {
        printf("no pauses\n");
        code = CLI_EXIT_OK;
    } else if (print_pauses(g, list, n)) {
        fprintf(stderr, "jobmgr: paused: out of memory\n");
        code = CLI_EXIT_FAILURE;
    } else {
        code = CLI_EXIT_OK;
    }
done:
    jm_paused_list_free(list, n);
    jm_close(m);
    return code;
}

/* ---- conflict ------------------------------------------------------------------- */

int cli_cmd_conflict(cli_global *g, int argc, char **argv)
{
    int code = cli_only_global_options(g, "conflict", argc, argv);
    if (code >= 0)
        return code;
    if (argc - optind != 3)
        return cli_usage_error("conflict", "needs TYPE_A TYPE_B on|off");
    const char *a = argv[optind], *b = argv[optind + 1], *state = argv[optind + 2];
    if (check_type("conflict", a, 1) || check_type("conflict", b, 1))
        return CLI_EXIT_USAGE;
    if (strcmp(a, "*") == 0 && strcmp(b, "*") == 0)
        return cli_usage_error("conflict", "at most one of the types may be '*'");
    int exclusive;
    if (strcmp(state, "on") == 0)
        exclusive = 1;
    else if (strcmp(state, "off") == 0)
        exclusive = 0;
    else
        return cli_usage_error("conflict", "bad state '%s' (on: never together on one "
                                           "resource; off: allowed)",
                               state);

    jm_manager *m = NULL;
    if ((code = cli_open(g, "conflict", NULL, &m)) != CLI_EXIT_OK)
        return code;
    int rc = jm_conflict_set(m, a, b, exclusive);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "conflict");
        goto done;
    }
    if (g->json) {
        cJSON *o = cJSON_CreateObject();
        if (o && (!cJSON_AddStringToObject(o, "type_a", a) ||
                  !cJSON_AddStringToObject(o, "type_b", b) ||
                  !cJSON_AddBoolToObject(o, "exclusive", exclusive))) {
            cJSON_Delete(o);
            o = NULL;
        }
        code = cli_json_emit(o);
    } else {
        printf("conflict %s %s: %s\n", a, b,
               exclusive ? "on (never together on one resource)" : "off (may run together)");
        code = CLI_EXIT_OK;
    }
done:
    jm_close(m);
    return code;
}

/* ---- limit ---------------------------------------------------------------------- */

/* "of type CO on each resource", "of any type on resource app.orders",
 * "of type FL in all": which running jobs a limit counts. */
static const char *limit_text(const char *type, const char *resource, char *buf, size_t len)
{
    char of[16];
    if (type)
        snprintf(of, sizeof of, "of type %s", type);
    else
        snprintf(of, sizeof of, "of any type");
    if (!resource)
        snprintf(buf, len, "%s in all", of);
    else if (strcmp(resource, JM_EACH_RESOURCE) == 0)
        snprintf(buf, len, "%s on each resource", of);
    else
        snprintf(buf, len, "%s on resource %s", of, resource);
    return buf;
}

int cli_cmd_limit(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                         {"type", 1, NULL, OPT_TYPE},
                                         {"resource", 1, NULL, OPT_RESOURCE},
                                         {NULL, 0, NULL, 0}};
    const char *type = NULL, *resource = NULL;
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "limit", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        switch (c) {
        case OPT_TYPE:
            if (check_type("limit", optarg, 0))
                return CLI_EXIT_USAGE;
            type = optarg;
            break;
        case OPT_RESOURCE:
            if (!*optarg)
                return cli_usage_error("limit", "the resource is empty");
            resource = optarg;
            break;
        default:
            return cli_usage_error("limit", "unexpected option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("limit", "needs exactly one number of running jobs (0 "
                                        "removes the limit)");
    long max;
    if (cli_parse_int(argv[optind], 0, INT_MAX, &max))
        return cli_usage_error("limit", "bad number '%s' (0 removes the limit, else at least 1)",
                               argv[optind]);

    jm_manager *m = NULL;
    if ((code = cli_open(g, "limit", NULL, &m)) != CLI_EXIT_OK)
        return code;
    int rc = jm_limit_set(m, type, resource, (int)max);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "limit");
        goto done;
    }
    if (g->json) {
        cJSON *o = cJSON_CreateObject();
        if (o && (!(type ? cJSON_AddStringToObject(o, "type", type)
                         : cJSON_AddNullToObject(o, "type")) ||
                  !(resource ? cJSON_AddStringToObject(o, "resource", resource)
                             : cJSON_AddNullToObject(o, "resource")) ||
                  !cJSON_AddNumberToObject(o, "max_running", (double)max))) {
            cJSON_Delete(o);
            o = NULL;
        }
        code = cli_json_emit(o);
    } else {
        char text[JM_MAX_RESOURCE_BYTES + 64];
        limit_text(type, resource, text, sizeof text);
        if (max > 0)
            printf("limit: at most %ld running job%s %s\n", max, max == 1 ? "" : "s", text);
        else
            printf("limit removed: jobs %s\n", text);
        code = CLI_EXIT_OK;
    }
done:
    jm_close(m);
    return code;
}
