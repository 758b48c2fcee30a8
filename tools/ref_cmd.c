/*
 * ref_cmd.c: the flows `jobmgr schedule` and `jobmgr policy` share over a
 * row named by id or name (ref_cmd.h): argument checks, `show`, and
 * `pause`, `resume` and `rm`. It knows the library's calls only through
 * the command's cli_ref_kind, and prints nothing of a row but its id and
 * name: `show`'s text and JSON are the command's own.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>

#include "ref_cmd.h"

int cli_ref_global_options(cli_global *g, const char *command, int argc, char **argv)
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
        return cli_usage_error(command, "%s: unexpected option", argv[0]);
    }
    return -1;
}

const char *cli_ref_label(const char *command, const char *sub, const char *ref, char *buf,
                          size_t len)
{
    if (ref)
        snprintf(buf, len, "%s %s %s", command, sub, ref);
    else
        snprintf(buf, len, "%s %s", command, sub);
    return buf;
}

int cli_ref_print_id(const cli_global *g, const char *id)
{
    if (!g->json) {
        printf("%s\n", id);
        return CLI_EXIT_OK;
    }
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "id", id)) {
        cJSON_Delete(o);
        o = NULL;
    }
    return cli_json_emit(o);
}

/* The one id or name argument of show, pause, resume and rm; NULL after a
 * usage error (its exit code in *code). */
static const char *one_ref(const cli_ref_kind *k, cli_global *g, int argc, char **argv,
                           int *code)
{
    if ((*code = cli_ref_global_options(g, k->command, argc, argv)) >= 0)
        return NULL;
    if (argc - optind != 1) {
        *code = cli_usage_error(k->command, "%s: needs exactly one %s id or name", argv[0],
                                k->command);
        return NULL;
    }
    return argv[optind];
}

int cli_ref_show(const cli_ref_kind *k, cli_global *g, int argc, char **argv)
{
    int code;
    const char *ref = one_ref(k, g, argc, argv, &code);
    if (!ref)
        return code;
    jm_manager *m = NULL;
    void *row = NULL;
    char label[CLI_REF_LABEL_SIZE];
    cli_ref_label(k->command, "show", ref, label, sizeof label);
    if ((code = cli_open(g, k->command, NULL, &m)) != CLI_EXIT_OK)
        return code;
    int rc = k->get(m, ref, &row);
    code = rc == JM_OK ? k->show(g, m, row, label) : cli_lib_error(rc, label);
    k->free(row);
    jm_close(m);
    return code;
}

/* {"id": ID, "name": NAME, "paused": BOOL} or {…, "deleted": true}. */
static int print_act_json(const cli_ref_kind *k, cli_ref_action act, const void *row)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "id", k->id(row)) &&
             cJSON_AddStringToObject(o, "name", k->name(row)) &&
             (act == CLI_REF_DELETE
                  ? cJSON_AddTrueToObject(o, "deleted") != NULL
                  : cJSON_AddBoolToObject(o, "paused", act == CLI_REF_PAUSE) != NULL);
    if (!ok) {
        cJSON_Delete(o);
        o = NULL;
    }
    return cli_json_emit(o);
}

int cli_ref_act(const cli_ref_kind *k, cli_ref_action act, cli_global *g, int argc,
                char **argv)
{
    /* Indexed by cli_ref_action. */
    static const char *const verbs[] = {"paused", "resumed", "deleted"};
    int code;
    const char *ref = one_ref(k, g, argc, argv, &code);
    if (!ref)
        return code;
    jm_manager *m = NULL;
    void *row = NULL;
    char label[CLI_REF_LABEL_SIZE];
    cli_ref_label(k->command, argv[0], ref, label, sizeof label);
    if ((code = cli_open(g, k->command, NULL, &m)) != CLI_EXIT_OK)
        return code;
    /* Resolved first, then acted on by id: the report names the row that
     * was acted on, whichever way the user named it. */
    int rc = k->get(m, ref, &row);
    if (rc == JM_OK)
        rc = act == CLI_REF_PAUSE    ? k->pause(m, k->id(row))
             : act == CLI_REF_RESUME ? k->resume(m, k->id(row))
                                     : k->remove(m, k->id(row));
    if (rc != JM_OK) {
        code = cli_lib_error(rc, label);
    } else if (g->json) {
        code = print_act_json(k, act, row);
    } else {
        printf("%s %s (%s)\n", verbs[act], k->name(row), k->id(row));
        code = CLI_EXIT_OK;
    }
    k->free(row);
    jm_close(m);
    return code;
}
