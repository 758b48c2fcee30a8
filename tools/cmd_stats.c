/*
 * cmd_stats.c: `jobmgr stats`: job counts by type and status, queue depth,
 * the oldest due job's age and recent failures, from jm_stats().
 *
 * The tool's manager has just opened, so jm_stats()'s per-manager counters
 * (runs, retries since start) are zero here; only the table-wide figures
 * are shown. A long-running host exposes the counters with
 * jm_metrics_prometheus().
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

/* A count cell: "-" for zero so the table's shape stands out. */
static const char *count_text(int64_t n, char *buf, size_t len)
{
    if (n == 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%lld", (long long)n);
    return buf;
}

static int add_obj(cJSON *parent, const char *name, cJSON *child)
{
    if (!child)
        return -1;
    if (!cJSON_AddItemToObject(parent, name, child)) {
        cJSON_Delete(child);
        return -1;
    }
    return 0;
}

static cJSON *stats_json(const jm_stats_report *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char buf[CLI_TIME_BUF];
    int bad = 0;
    bad |= !cJSON_AddStringToObject(o, "taken_at", cli_format_time(r->taken_at_ms, buf,
                                                                   sizeof buf));
    bad |= add_obj(o, "by_status", cli_status_counts_json(r->by_status));
    bad |= !cJSON_AddNumberToObject(o, "queue_depth", (double)r->queue_depth);
    bad |= !cJSON_AddNumberToObject(o, "oldest_due_age_ms", (double)r->oldest_due_age_ms);
    bad |= !cJSON_AddNumberToObject(o, "running", (double)r->running);
    bad |= !cJSON_AddNumberToObject(o, "failed_last_hour", (double)r->failed_last_hour);
    cJSON *types = cJSON_CreateObject();
    bad |= add_obj(o, "types", types);
    for (size_t i = 0; !bad && i < r->ntypes; i++) {
        const jm_type_stats *t = &r->types[i];
        cJSON *to = cJSON_CreateObject();
        bad |= add_obj(types, t->type, to);
        if (!bad) {
            bad |= add_obj(to, "by_status", cli_status_counts_json(t->by_status));
        }
    }
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int print_stats(const cli_global *g, const jm_stats_report *r)
{
    enum { NCOLS = JM_STATUS_COUNT + 2 };
    const char *headers[NCOLS];
    headers[0] = "TYPE";
    for (int s = 0; s < JM_STATUS_COUNT; s++)
        headers[s + 1] = jm_status_name((jm_status)s);
    headers[NCOLS - 1] = "total";
    cli_table *t = cli_table_new(NCOLS, headers);
    if (!t)
        return -1;
    for (size_t c = 1; c < NCOLS; c++)
        cli_table_align_right(t, c);
    char bufs[NCOLS][24];
    const char *cells[NCOLS];
    cli_color colors[NCOLS];
    for (size_t i = 0; i <= r->ntypes; i++) {
        /* The last row sums all types. */
        const int64_t *by = i < r->ntypes ? r->types[i].by_status : r->by_status;
        int64_t total = 0;
        cells[0] = i < r->ntypes ? r->types[i].type : "all";
        colors[0] = i < r->ntypes ? CLI_COLOR_NONE : CLI_COLOR_BOLD;
        for (int s = 0; s < JM_STATUS_COUNT; s++) {
            total += by[s];
            cells[s + 1] = count_text(by[s], bufs[s + 1], sizeof bufs[s + 1]);
            colors[s + 1] = by[s] ? cli_status_color((jm_status)s) : CLI_COLOR_NONE;
        }
        cells[NCOLS - 1] = count_text(total, bufs[NCOLS - 1], sizeof bufs[NCOLS - 1]);
        colors[NCOLS - 1] = CLI_COLOR_NONE;
        if (cli_table_add(t, cells, colors)) {
            cli_table_free(t);
            return -1;
        }
    }
    cli_table_print(t, stdout, cli_use_color(g), 0);
    cli_table_free(t);

    char age[32];
    printf("\nqueue depth:        %lld\n", (long long)r->queue_depth);
    printf("oldest queued age:  %s\n",
           r->oldest_due_age_ms > 0 ? cli_format_span(r->oldest_due_age_ms, age, sizeof age)
                                    : "-");
    printf("running:            %lld\n", (long long)r->running);
    printf("failed last hour:   %lld\n", (long long)r->failed_last_hour);
    return 0;
}

int cli_cmd_stats(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "stats", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        return cli_usage_error("stats", "unexpected option");
    }
    if (optind < argc)
        return cli_usage_error("stats", "unexpected argument '%s'", argv[optind]);

    jm_manager *m = NULL;
    jm_stats_report *r = NULL;
    if ((code = cli_open(g, "stats", NULL, &m)) != CLI_EXIT_OK)
        return code;
    int rc = jm_stats(m, &r);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "stats");
        goto done;
    }
    if (g->json) {
        code = cli_json_emit(stats_json(r));
    } else if (print_stats(g, r)) {
        fprintf(stderr, "jobmgr: stats: out of memory\n");
        code = CLI_EXIT_FAILURE;
    } else {
        code = CLI_EXIT_OK;
    }
done:
    jm_stats_free(r);
    jm_close(m);
    return code;
}
