/*
 * cmd_rules_list.c: `conflicts` and `limits`, the rules that decide which
 * jobs may start, as stored in the jobs database (the defaults included).
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Opens the database for a listing command that takes no arguments; *m
 * stays NULL when the command ends here (--help, a usage error). */
static int open_for(cli_global *g, const char *command, int argc, char **argv, jm_manager **m)
{
    int code = cli_only_global_options(g, command, argc, argv);
    if (code >= 0)
        return code;
    if (optind < argc)
        return cli_usage_error(command, "unexpected argument '%s'", argv[optind]);
    return cli_open(g, command, NULL, m);
}

/* Prints a table, or exits with an out-of-memory message. */
static int print_table(const cli_global *g, const char *command, cli_table *t)
{
    if (!t) {
        fprintf(stderr, "jobmgr: %s: out of memory\n", command);
        return CLI_EXIT_FAILURE;
    }
    cli_table_print(t, stdout, cli_use_color(g), 0);
    cli_table_free(t);
    return CLI_EXIT_OK;
}

static cJSON *conflicts_json(const jm_conflict *v, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        if (!cJSON_AddStringToObject(o, "type_a", v[i].type_a) ||
            !cJSON_AddStringToObject(o, "type_b", v[i].type_b) ||
            !cJSON_AddBoolToObject(o, "exclusive", v[i].exclusive)) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

int cli_cmd_conflicts(cli_global *g, int argc, char **argv)
{
    jm_manager *m = NULL;
    int code = open_for(g, "conflicts", argc, argv, &m);
    if (!m)
        return code;
    jm_conflict *v = NULL;
    size_t n = 0;
    int rc = jm_conflict_list(m, &v, &n);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "conflicts");
    } else if (g->json) {
        code = cli_json_emit(conflicts_json(v, n));
    } else if (n == 0) {
        printf("no conflicts\n");
    } else {
        static const char *const headers[] = {"TYPE A", "TYPE B", "TOGETHER ON ONE RESOURCE"};
        cli_table *t = cli_table_new(3, headers);
        for (size_t i = 0; t && i < n; i++) {
            const char *cells[] = {v[i].type_a, v[i].type_b, v[i].exclusive ? "never" : "allowed"};
            if (cli_table_add(t, cells, NULL)) {
                cli_table_free(t);
                t = NULL;
            }
        }
        code = print_table(g, "conflicts", t);
    }
    jm_conflict_list_free(v);
    jm_close(m);
    return code;
}

static cJSON *limits_json(const jm_limit *v, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        if (!(v[i].type[0] ? cJSON_AddStringToObject(o, "type", v[i].type)
                           : cJSON_AddNullToObject(o, "type")) ||
            !(v[i].resource ? cJSON_AddStringToObject(o, "resource", v[i].resource)
                            : cJSON_AddNullToObject(o, "resource")) ||
            !cJSON_AddNumberToObject(o, "max_running", v[i].max_running)) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

int cli_cmd_limits(cli_global *g, int argc, char **argv)
{
    jm_manager *m = NULL;
    int code = open_for(g, "limits", argc, argv, &m);
    if (!m)
        return code;
    jm_limit *v = NULL;
    size_t n = 0;
    int rc = jm_limit_list(m, &v, &n);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "limits");
    } else if (g->json) {
        code = cli_json_emit(limits_json(v, n));
    } else if (n == 0) {
        printf("no limits\n");
    } else {
        static const char *const headers[] = {"TYPE", "RESOURCE", "MAX RUNNING"};
        cli_table *t = cli_table_new(3, headers);
        for (size_t i = 0; t && i < n; i++) {
            char max[16];
            snprintf(max, sizeof max, "%d", v[i].max_running);
            const char *res = !v[i].resource ? "any"
                              : strcmp(v[i].resource, JM_EACH_RESOURCE) == 0 ? "each"
                                                                              : v[i].resource;
            const char *cells[] = {v[i].type[0] ? v[i].type : "any", res, max};
            if (cli_table_add(t, cells, NULL)) {
                cli_table_free(t);
                t = NULL;
            }
        }
        code = print_table(g, "limits", t);
    }
    jm_limit_list_free(v, n);
    jm_close(m);
    return code;
}
