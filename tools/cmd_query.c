/*
 * cmd_query.c: the commands that read jobs: `list` (one page of jobs,
 * filtered) and `show` (one job, every field).
 *
 * Both only read; neither changes a job (opening the database still runs
 * the library's crash recovery, as any jm_open does).
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <string.h>

#include "cli.h"

/* Width of the message column in `list` before it is cut. */
#define LIST_MESSAGE_WIDTH 60

enum {
    OPT_STATUS = CLI_OPT_FIRST_FREE,
    OPT_TYPE,
    OPT_NAMESPACE,
    OPT_KEY,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_LIMIT,
    OPT_CURSOR,
    OPT_NEWEST
};

/* The columns of `list`; RESOURCE and BLOCKED BY are shown only when a
 * job on the page has one, so a page of plain jobs stays narrow. */
enum {
    COL_ID,
    COL_STATUS,
    COL_NAMESPACE,
    COL_RESOURCE,
    COL_KEY,
    COL_PRI,
    COL_RETRIES,
    COL_CREATED,
    COL_BLOCKED_BY,
    COL_MESSAGE,
    LIST_NCOLS
};

static int print_list_table(const cli_global *g, const jm_job_list *l)
{
    static const char *const all_headers[LIST_NCOLS] = {
        "ID",  "STATUS",  "NAMESPACE", "RESOURCE",   "KEY",
        "PRI", "RETRIES", "CREATED",   "BLOCKED BY", "MESSAGE"};
    size_t n = jm_job_list_count(l);
    int shown[LIST_NCOLS];
    for (size_t c = 0; c < LIST_NCOLS; c++)
        shown[c] = c != COL_RESOURCE && c != COL_BLOCKED_BY;
    for (size_t i = 0; i < n; i++) {
        const jm_job *j = jm_job_list_at(l, i);
        shown[COL_RESOURCE] |= jm_job_resource(j) != NULL;
        shown[COL_BLOCKED_BY] |= jm_job_blocked_by(j) != NULL;
    }
    const char *headers[LIST_NCOLS];
    size_t ncols = 0;
    for (size_t c = 0; c < LIST_NCOLS; c++)
        if (shown[c])
            headers[ncols++] = all_headers[c];
    cli_table *t = cli_table_new(ncols, headers);
    if (!t)
        return -1;
    /* PRI and RETRIES are numbers: right-aligned, at their place among the
     * columns shown. */
    size_t at = 0;
    for (size_t c = 0; c < LIST_NCOLS; c++) {
        if (!shown[c])
            continue;
        if (c == COL_PRI || c == COL_RETRIES)
            cli_table_align_right(t, at);
        at++;
    }
    for (size_t i = 0; i < n; i++) {
        const jm_job *j = jm_job_list_at(l, i);
        char pri[16], retries[32], created[CLI_TIME_BUF], msg[LIST_MESSAGE_WIDTH * 4 + 8];
        snprintf(pri, sizeof pri, "%d", jm_job_priority(j));
        snprintf(retries, sizeof retries, "%d/%d", jm_job_retry_count(j),
                 jm_job_max_retries(j));
        const char *row[LIST_NCOLS] = {
            [COL_ID] = jm_job_id(j),
            [COL_STATUS] = jm_status_name(jm_job_status(j)),
            [COL_NAMESPACE] = jm_job_namespace(j),
            [COL_RESOURCE] = jm_job_resource(j),
            [COL_KEY] = jm_job_idempotency_key(j),
            [COL_PRI] = pri,
            [COL_RETRIES] = retries,
            [COL_CREATED] = cli_format_time(jm_job_created_at(j), created, sizeof created),
            [COL_BLOCKED_BY] = jm_job_blocked_by(j),
            [COL_MESSAGE] = jm_job_message(j) ? cli_text_cut(jm_job_message(j),
                                                             LIST_MESSAGE_WIDTH, msg, sizeof msg)
                                              : NULL};
        const char *cells[LIST_NCOLS];
        cli_color colors[LIST_NCOLS] = {CLI_COLOR_NONE};
        size_t k = 0;
        for (size_t c = 0; c < LIST_NCOLS; c++) {
            if (!shown[c])
                continue;
            if (c == COL_STATUS)
                colors[k] = cli_status_color(jm_job_status(j));
            cells[k++] = row[c];
        }
        if (cli_table_add(t, cells, colors)) {
            cli_table_free(t);
            return -1;
        }
    }
    cli_table_print(t, stdout, cli_use_color(g), 0);
    cli_table_free(t);
    return 0;
}

int cli_cmd_list(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_GLOBAL_LONG_OPTIONS,
        {"status", 1, NULL, OPT_STATUS},
        {"type", 1, NULL, OPT_TYPE},
        {"namespace", 1, NULL, OPT_NAMESPACE},
        {"key", 1, NULL, OPT_KEY},
        {"since", 1, NULL, OPT_SINCE},
        {"until", 1, NULL, OPT_UNTIL},
        {"limit", 1, NULL, OPT_LIMIT},
        {"cursor", 1, NULL, OPT_CURSOR},
        {"newest", 0, NULL, OPT_NEWEST},
        {NULL, 0, NULL, 0}};
    jm_filter f = JM_FILTER_INIT;
    int64_t now = cli_now_ms();
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "list", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        long n;
        switch (c) {
        case OPT_STATUS:
            if (cli_parse_statuses(optarg, &f.statuses))
                return cli_usage_error("list", "bad --status '%s' (new, queued, running, "
                                               "retrying, completed, failed, cancelled, "
                                               "paused)",
                                       optarg);
            break;
        case OPT_TYPE:
            if (!cli_valid_type(optarg))
                return cli_usage_error("list", "bad --type '%s' (two uppercase letters)",
                                       optarg);
            f.type = optarg;
            break;
        case OPT_NAMESPACE:
            f.namespace_id = optarg;
            break;
        case OPT_KEY:
            f.idempotency_key = optarg;
            break;
        case OPT_SINCE:
        case OPT_UNTIL: {
            int64_t t;
            if (cli_parse_time(optarg, CLI_TIME_PAST, now, &t))
                return cli_usage_error("list", "bad time '%s' (ISO 8601 or 10m, 2h, 7d)",
                                       optarg);
            /* The filter is strict (created_at > after): --since is
             * inclusive, so step one millisecond back. */
            if (c == OPT_SINCE)
                f.created_after_ms = t > 0 ? t - 1 : 0;
            else
                f.created_before_ms = t;
            break;
        }
        case OPT_LIMIT:
            if (cli_parse_int(optarg, 1, JM_LIST_MAX_LIMIT, &n))
                return cli_usage_error("list", "bad --limit '%s' (1..%d)", optarg,
                                       JM_LIST_MAX_LIMIT);
            f.limit = (int)n;
            break;
        case OPT_CURSOR:
            if (cli_check_id("list", optarg))
                return CLI_EXIT_USAGE;
            f.after_id = optarg;
            break;
        case OPT_NEWEST:
            f.newest_first = 1;
            break;
        default:
            return cli_usage_error("list", "unexpected option");
        }
    }
    if (optind < argc)
        return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);

    jm_manager *m = NULL;
    jm_job_list *l = NULL;
    if ((code = cli_open(g, "list", NULL, &m)) != CLI_EXIT_OK)
        return code;
    int rc = jm_list(m, &f, &l);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "list");
        goto done;
    }
    size_t n = jm_job_list_count(l);
    const char *next = jm_job_list_has_more(l) && n ? jm_job_id(jm_job_list_at(l, n - 1)) : NULL;
    if (g->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = o ? cJSON_AddArrayToObject(o, "jobs") : NULL;
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *jj = cli_job_json(jm_job_list_at(l, i));
            if (!jj || !cJSON_AddItemToArray(arr, jj)) {
                cJSON_Delete(jj);
                arr = NULL;
            }
        }
        if (arr && !(next ? cJSON_AddStringToObject(o, "next_cursor", next)
                          : cJSON_AddNullToObject(o, "next_cursor")))
            arr = NULL;
        if (!arr) {
            cJSON_Delete(o);
            o = NULL;
        }
        code = cli_json_emit(o);
        goto done;
    }
    if (n == 0) {
        printf("no jobs\n");
    } else if (print_list_table(g, l)) {
        fprintf(stderr, "jobmgr: list: out of memory\n");
        code = CLI_EXIT_FAILURE;
        goto done;
    }
    if (next)
        printf("more jobs: jobmgr list --cursor %s (with the same filters)\n", next);
    code = CLI_EXIT_OK;
done:
    jm_job_list_free(l);
    jm_close(m);
    return code;
}

/* One "label: value" line of `show`, labels aligned. */
static void field(const char *label, const char *value)
{
    printf("%-16s %s\n", label, value ? value : "-");
}

static void time_field(const char *label, int64_t ms)
{
    char buf[CLI_TIME_BUF];
    field(label, cli_format_time(ms, buf, sizeof buf));
}

/* A JSON field printed on the lines below its label, indented. */
static void json_field(const char *label, const char *json)
{
    if (!json) {
        field(label, NULL);
        return;
    }
    printf("%-16s ", label);
    cli_json_print_text(stdout, json, 0);
}

static void print_job(const cli_global *g, const jm_job *j)
{
    char buf[64];
    int color = cli_use_color(g);
    field("id:", jm_job_id(j));
    field("type:", jm_job_type(j));
    printf("%-16s ", "status:");
    cli_put_colored(stdout, color, cli_status_color(jm_job_status(j)),
                    jm_status_name(jm_job_status(j)));
    if (jm_job_cancel_requested(j))
        printf(" (cancel requested)");
    if (jm_job_pause_requested(j))
        printf(" (pause requested)");
    putchar('\n');
    field("namespace:", jm_job_namespace(j));
    field("resource:", jm_job_resource(j));
    field("blocked by:", jm_job_blocked_by(j));
    field("key:", jm_job_idempotency_key(j));
    snprintf(buf, sizeof buf, "%d", jm_job_priority(j));
    field("priority:", buf);
    snprintf(buf, sizeof buf, "%d of %d", jm_job_retry_count(j), jm_job_max_retries(j));
    field("retries:", buf);
    snprintf(buf, sizeof buf, "%d", jm_job_attempts(j));
    field("attempts:", buf);
    char bar[64];
    field("progress:", cli_progress_bar(jm_job_progress(j), 20, bar, sizeof bar));
    field("node:", jm_job_node_id(j));
    field("schedule:", jm_job_schedule_id(j));
    time_field("fire time:", jm_job_fire_time(j));
    time_field("created:", jm_job_created_at(j));
    time_field("updated:", jm_job_updated_at(j));
    time_field("run at:", jm_job_run_at(j));
    time_field("started:", jm_job_started_at(j));
    time_field("finished:", jm_job_finished_at(j));
    if (jm_job_started_at(j) > 0 && jm_job_finished_at(j) >= jm_job_started_at(j)) {
        char span[32];
        field("duration:", cli_format_span(jm_job_finished_at(j) - jm_job_started_at(j), span,
                                           sizeof span));
    }
    field("message:", jm_job_message(j));
    json_field("params:", jm_job_params(j));
    json_field("result:", jm_job_result(j));
    json_field("checkpoint:", jm_job_checkpoint(j));
    if (jm_job_exception_trace(j))
        printf("%-16s\n%s\n", "trace:", jm_job_exception_trace(j));
    else
        field("trace:", NULL);
}

int cli_cmd_show(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "show", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        return cli_usage_error("show", "unexpected option");
    }
    if (argc - optind != 1)
        return cli_usage_error("show", "needs exactly one job id");
    const char *id = argv[optind];
    if (cli_check_id("show", id))
        return CLI_EXIT_USAGE;

    jm_manager *m = NULL;
    jm_job *j = NULL;
    if ((code = cli_open(g, "show", NULL, &m)) != CLI_EXIT_OK)
        return code;
    int rc = jm_get(m, id, &j);
    if (rc != JM_OK) {
        char what[80];
        snprintf(what, sizeof what, "show %s", id);
        code = cli_lib_error(rc, what);
        goto done;
    }
    if (g->json) {
        code = cli_json_emit(cli_job_json(j));
    } else {
        print_job(g, j);
        code = CLI_EXIT_OK;
    }
done:
    jm_job_free(j);
    jm_close(m);
    return code;
}
