/*
 * cmd_control.c: the commands that change jobs: `create`, `cancel`,
 * `retry` and `prune`.
 *
 * Each is one library call; the tool adds argument checks (so a typo is a
 * usage error, exit 2, not a library error) and output. It does not run
 * jobs: `jobmgr run` does that.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <string.h>

#include "cli.h"

enum {
    OPT_PARAMS = CLI_OPT_FIRST_FREE,
    OPT_KEY,
    OPT_NAMESPACE,
    OPT_RUN_AT,
    OPT_MAX_RETRIES,
    OPT_PRIORITY,
    OPT_RESOURCE,
    OPT_OLDER_THAN
};

/* Prints {"id": …, "status": …} or "<verb> <id>". */
static int report(const cli_global *g, const char *verb, const char *id, const char *status)
{
    if (g->json) {
        cJSON *o = cJSON_CreateObject();
        if (o && (!cJSON_AddStringToObject(o, "id", id) ||
                  !cJSON_AddStringToObject(o, "status", status))) {
            cJSON_Delete(o);
            o = NULL;
        }
        return cli_json_emit(o);
    }
    printf("%s %s (%s)\n", verb, id, status);
    return CLI_EXIT_OK;
}

int cli_cmd_create(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_GLOBAL_LONG_OPTIONS,
        {"params", 1, NULL, OPT_PARAMS},
        {"key", 1, NULL, OPT_KEY},
        {"namespace", 1, NULL, OPT_NAMESPACE},
        {"run-at", 1, NULL, OPT_RUN_AT},
        {"max-retries", 1, NULL, OPT_MAX_RETRIES},
        {"priority", 1, NULL, OPT_PRIORITY},
        {"resource", 1, NULL, OPT_RESOURCE},
        {NULL, 0, NULL, 0}};
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    const char *params = NULL;
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "create", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        long n;
        switch (c) {
        case OPT_PARAMS:
            params = optarg;
            break;
        case OPT_KEY:
            o.idempotency_key = optarg;
            break;
        case OPT_NAMESPACE:
            o.namespace_id = optarg;
            break;
        case OPT_RUN_AT:
            if (cli_parse_time(optarg, CLI_TIME_FUTURE, cli_now_ms(), &o.run_at_ms))
                return cli_usage_error("create",
                                       "bad --run-at '%s' (ISO 8601, or 10m, 2h: from now)",
                                       optarg);
            break;
        case OPT_MAX_RETRIES:
            if (cli_parse_int(optarg, 0, JM_MAX_RETRIES_LIMIT, &n))
                return cli_usage_error("create", "bad --max-retries '%s' (0..%d)", optarg,
                                       JM_MAX_RETRIES_LIMIT);
            o.max_retries = (int)n;
            break;
        case OPT_PRIORITY:
            if (cli_parse_int(optarg, -CLI_PRIORITY_LIMIT, CLI_PRIORITY_LIMIT, &n))
                return cli_usage_error("create", "bad --priority '%s' (an integer)", optarg);
            o.priority = (int)n;
            break;
        case OPT_RESOURCE:
            o.resource = optarg;
            break;
        default:
            return cli_usage_error("create", "unexpected option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("create", "needs exactly one job type (FL, CL, RT, SE, UC, "
                                         "CO, BK, RS)");
    const char *type = argv[optind];
    if (!params)
        return cli_usage_error("create", "--params JSON is required");
    cJSON *parsed = cJSON_Parse(params);
    int is_object = cJSON_IsObject(parsed);
    cJSON_Delete(parsed);
    if (!is_object)
        return cli_usage_error("create", "--params is not a JSON object: %s", params);

    jm_manager *m = NULL;
    if ((code = cli_open(g, "create", NULL, &m)) != CLI_EXIT_OK)
        return code;
    char id[JM_JOB_ID_SIZE] = "";
    int rc = jm_create(m, type, params, &o, id);
    if (rc == JM_ECONFLICT) {
        /* The key is held: give the holder's id, so a script can use it. */
        fprintf(stderr, "jobmgr: create: %s\n", jm_last_error());
        if (g->json) {
            cJSON *out = cJSON_CreateObject();
            if (out && (!cJSON_AddStringToObject(out, "id", id) ||
                        !cJSON_AddFalseToObject(out, "created"))) {
                cJSON_Delete(out);
                out = NULL;
            }
            cli_json_emit(out);
        } else {
            printf("%s\n", id);
        }
        code = CLI_EXIT_CONFLICT;
        goto done;
    }
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "create");
        goto done;
    }
    if (g->json) {
        cJSON *out = cJSON_CreateObject();
        if (out && (!cJSON_AddStringToObject(out, "id", id) ||
                    !cJSON_AddTrueToObject(out, "created"))) {
            cJSON_Delete(out);
            out = NULL;
        }
        code = cli_json_emit(out);
    } else {
        printf("%s\n", id);
        code = CLI_EXIT_OK;
    }
done:
    jm_close(m);
    return code;
}

int cli_change_job(cli_global *g, const char *command, int argc, char **argv,
                   int (*op)(jm_manager *, const char *), jm_manager **m, jm_job **j,
                   const char **id)
{
    *m = NULL;
    *j = NULL;
    int code = cli_only_global_options(g, command, argc, argv);
    if (code >= 0)
        return code;
    if (argc - optind != 1)
        return cli_usage_error(command, "needs exactly one job id");
    *id = argv[optind];
    if (cli_check_id(command, *id))
        return CLI_EXIT_USAGE;
    char what[80];
    snprintf(what, sizeof what, "%s %s", command, *id);
    if ((code = cli_open(g, command, NULL, m)) != CLI_EXIT_OK)
        return code;
    int rc = op(*m, *id);
    if (rc == JM_OK)
        rc = jm_get(*m, *id, j);
    return rc == JM_OK ? CLI_EXIT_OK : cli_lib_error(rc, what);
}

/* cancel and retry: one id, one call, then the job's new status. */
static int change_one(cli_global *g, const char *command, int argc, char **argv,
                      int is_retry)
{
    jm_manager *m = NULL;
    jm_job *j = NULL;
    const char *id = NULL;
    int code = cli_change_job(g, command, argc, argv, is_retry ? jm_retry : jm_cancel, &m, &j,
                              &id);
    if (code != CLI_EXIT_OK)
        goto done;
    const char *verb;
    if (is_retry)
        verb = "requeued";
    else if (jm_job_status(j) == JM_STATUS_CANCELLED)
        verb = "cancelled";
    else
        verb = "cancel requested for"; /* running: its executor stops it */
    code = report(g, verb, id, jm_status_name(jm_job_status(j)));
done:
    jm_job_free(j);
    jm_close(m);
    return code;
}

int cli_cmd_cancel(cli_global *g, int argc, char **argv)
{
    return change_one(g, "cancel", argc, argv, 0);
}

int cli_cmd_retry(cli_global *g, int argc, char **argv)
{
    return change_one(g, "retry", argc, argv, 1);
}

int cli_cmd_prune(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_GLOBAL_LONG_OPTIONS, {"older-than", 1, NULL, OPT_OLDER_THAN}, {NULL, 0, NULL, 0}};
    int64_t before = -1;
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "prune", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        if (c != OPT_OLDER_THAN)
            return cli_usage_error("prune", "unexpected option");
        if (cli_parse_time(optarg, CLI_TIME_PAST, cli_now_ms(), &before))
            return cli_usage_error("prune", "bad --older-than '%s' (7d, 12h, or ISO 8601)",
                                   optarg);
    }
    if (optind < argc)
        return cli_usage_error("prune", "unexpected argument '%s'", argv[optind]);
    if (before < 0)
        return cli_usage_error("prune", "--older-than is required (for example 7d)");

    jm_manager *m = NULL;
    if ((code = cli_open(g, "prune", NULL, &m)) != CLI_EXIT_OK)
        return code;
    int64_t deleted = 0;
    int rc = jm_prune(m, before, &deleted);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "prune");
        goto done;
    }
    if (g->json) {
        cJSON *o = cJSON_CreateObject();
        char buf[CLI_TIME_BUF];
        if (o && (!cJSON_AddNumberToObject(o, "deleted", (double)deleted) ||
                  !cJSON_AddStringToObject(o, "finished_before",
                                           cli_format_time(before, buf, sizeof buf)))) {
            cJSON_Delete(o);
            o = NULL;
        }
        code = cli_json_emit(o);
    } else {
        char buf[CLI_TIME_BUF];
        printf("pruned %lld job%s finished before %s\n", (long long)deleted,
               deleted == 1 ? "" : "s", cli_format_time(before, buf, sizeof buf));
        code = CLI_EXIT_OK;
    }
done:
    jm_close(m);
    return code;
}
