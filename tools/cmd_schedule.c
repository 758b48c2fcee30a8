/*
 * cmd_schedule.c: `jobmgr schedule`: adds, lists, shows, changes, pauses
 * and deletes the schedules of a jobs database, and previews the fire
 * times of a cron expression without any database (`schedule next`).
 *
 * The tool only writes schedule rows; a running manager (`jobmgr run`, or
 * a host program) fires them. It does not list a schedule's past jobs: the
 * library has no filter for them, so `show` names the last job only.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ref_cmd.h"

/* How many fire times `show` lists, and `next` prints by default. */
#define SCHEDULE_PREVIEW_COUNT 5
/* The most fire times `next --count` prints. */
#define SCHEDULE_NEXT_MAX_COUNT 100
/* The most failures in a row --pause-after-failures takes. */
#define SCHEDULE_PAUSE_AFTER_MAX 1000000

enum {
    OPT_TYPE = CLI_OPT_FIRST_FREE,
    OPT_PARAMS,
    OPT_CRON,
    OPT_TZ,
    OPT_EVERY,
    OPT_ANCHOR,
    OPT_JITTER,
    OPT_OVERLAP,
    OPT_MISFIRE,
    OPT_PAUSE_AFTER,
    OPT_PAUSED,
    OPT_NAMESPACE,
    OPT_PRIORITY,
    OPT_MAX_RETRIES,
    OPT_NAME,
    OPT_COUNT,
    OPT_FROM
};

/* ---- Policy words ------------------------------------------------------------ */

/* Indexed by the enums' values; the same words are read and written. */
static const char *const overlap_names[] = {"skip", "queue-one", "allow"};
static const char *const misfire_names[] = {"skip", "run-once", "catch-up"};
#define NAMES_COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *cli_overlap_name(jm_overlap o)
{
    return (unsigned)o < NAMES_COUNT(overlap_names) ? overlap_names[o] : "?";
}

const char *cli_misfire_name(jm_misfire mf)
{
    return (unsigned)mf < NAMES_COUNT(misfire_names) ? misfire_names[mf] : "?";
}

static int parse_overlap(const char *s, jm_overlap *out)
{
    for (size_t i = 0; i < NAMES_COUNT(overlap_names); i++)
        if (strcmp(s, overlap_names[i]) == 0) {
            *out = (jm_overlap)i;
            return 0;
        }
    return -1;
}

/* "skip", "run-once" or "catch-up:N". */
static int parse_misfire(const char *s, jm_misfire *out, int *catch_up_max)
{
    const char *catch_up = misfire_names[JM_MISFIRE_CATCH_UP];
    size_t len = strlen(catch_up);
    long n;
    if (strncmp(s, catch_up, len) == 0 && s[len] == ':') {
        if (cli_parse_int(s + len + 1, 1, JM_CATCH_UP_MAX, &n))
            return -1;
        *out = JM_MISFIRE_CATCH_UP;
        *catch_up_max = (int)n;
        return 0;
    }
    for (size_t i = 0; i < NAMES_COUNT(misfire_names); i++)
        if (i != JM_MISFIRE_CATCH_UP && strcmp(s, misfire_names[i]) == 0) {
            *out = (jm_misfire)i;
            *catch_up_max = 0;
            return 0;
        }
    return -1;
}

static int by_next_fire(const void *a, const void *b)
{
    const jm_schedule *x = *(const jm_schedule *const *)a;
    const jm_schedule *y = *(const jm_schedule *const *)b;
    if (!x->spec.paused != !y->spec.paused)
        return x->spec.paused ? 1 : -1;
    if (x->next_fire_ms != y->next_fire_ms)
        return x->next_fire_ms < y->next_fire_ms ? -1 : 1;
    return strcmp(x->spec.name, y->spec.name);
}

size_t cli_schedules_by_next_fire(jm_schedule **list, size_t n)
{
    size_t active = 0;
    if (n > 1)
        qsort(list, n, sizeof *list, by_next_fire);
    while (active < n && !list[active]->spec.paused)
        active++;
    return active;
}

/* ---- Text of a schedule -------------------------------------------------------- */

/* "every 5m", or "0 3 * * * (Europe/Berlin)". */
static const char *trigger_text(const jm_schedule_spec *sp, char *buf, size_t len)
{
    char every[32];
    if (sp->cron)
        snprintf(buf, len, "%s (%s)", sp->cron, sp->tz ? sp->tz : "UTC");
    else
        snprintf(buf, len, "every %s", cli_format_every(sp->interval_ms, every, sizeof every));
    return buf;
}

/* "overlap skip, misfire catch-up:3, jitter 30s, pause after 5". */
static const char *policies_text(const jm_schedule_spec *sp, char *buf, size_t len)
{
    char misfire[32], jitter[48] = "", pause[48] = "", span[32];
    if (sp->misfire == JM_MISFIRE_CATCH_UP)
        snprintf(misfire, sizeof misfire, "%s:%d", cli_misfire_name(sp->misfire),
                 sp->catch_up_max);
    else
        snprintf(misfire, sizeof misfire, "%s", cli_misfire_name(sp->misfire));
    if (sp->jitter_ms > 0)
        snprintf(jitter, sizeof jitter, ", jitter %s",
                 cli_format_every(sp->jitter_ms, span, sizeof span));
    if (sp->pause_after_failures > 0)
        snprintf(pause, sizeof pause, ", pause after %d", sp->pause_after_failures);
    snprintf(buf, len, "overlap %s, misfire %s%s%s", cli_overlap_name(sp->overlap), misfire,
             jitter, pause);
    return buf;
}

/* Up to `n` next fire times of a schedule into out, their count in
 * *count, from its stored next fire time (which is in the past while it is
 * paused or overdue): cron times from jm_schedule_next(), interval times by
 * adding the interval. jm_schedule_next() gives up on a fire time with
 * none within eight years after it: the times found before are given. */
static int upcoming(const jm_schedule *sc, size_t n, int64_t *out, size_t *count)
{
    const jm_schedule_spec *sp = &sc->spec;
    out[0] = sc->next_fire_ms;
    *count = 1;
    if (!sp->cron) {
        for (; *count < n; (*count)++)
            out[*count] = out[*count - 1] + sp->interval_ms;
        return JM_OK;
    }
    for (size_t more = n - 1; more > 0; more--) {
        int rc = jm_schedule_next(sp->cron, sp->tz, sc->next_fire_ms, more, out + 1);
        if (rc == JM_OK)
            *count += more;
        if (rc != JM_ENOTFOUND)
            return rc;
    }
    return JM_OK;
}

/* ---- Arguments ------------------------------------------------------------------- */

/* The options of `add` and `update` (`rename` only for update). */
typedef struct spec_args {
    jm_schedule_spec spec;
    const char *ref;    /* the positional NAME (add) or ID|NAME (update) */
    const char *rename; /* update --name */
} spec_args;

/* One option of a spec; returns -1 if it was one, or an exit code. */
static int spec_option(const char *sub, int c, const char *arg, jm_schedule_spec *sp,
                       int *has_anchor)
{
    long n;
    switch (c) {
    case OPT_TYPE:
        if (!cli_valid_type(arg))
            return cli_usage_error("schedule", "%s: bad --type '%s' (two uppercase letters)",
                                   sub, arg);
        sp->type = arg;
        return -1;
    case OPT_PARAMS: {
        cJSON *parsed = cJSON_Parse(arg);
        int is_object = cJSON_IsObject(parsed);
        cJSON_Delete(parsed);
        if (!is_object)
            return cli_usage_error("schedule", "%s: --params is not a JSON object: %s", sub,
                                   arg);
        sp->params_json = arg;
        return -1;
    }
    case OPT_CRON:
        sp->cron = arg;
        return -1;
    case OPT_TZ:
        sp->tz = arg;
        return -1;
    case OPT_EVERY:
        if (cli_parse_span(arg, &sp->interval_ms) || sp->interval_ms == 0)
            return cli_usage_error("schedule", "%s: bad --every '%s' (30s, 5m, 1h30m, 1d)",
                                   sub, arg);
        return -1;
    case OPT_ANCHOR:
        if (cli_parse_time(arg, CLI_TIME_FUTURE, cli_now_ms(), &sp->anchor_ms))
            return cli_usage_error("schedule",
                                   "%s: bad --anchor '%s' (ISO 8601, or 10m: from now)", sub,
                                   arg);
        *has_anchor = 1;
        return -1;
    case OPT_JITTER:
        if (cli_parse_span(arg, &sp->jitter_ms))
            return cli_usage_error("schedule", "%s: bad --jitter '%s' (30s, 5m, 1h)", sub, arg);
        return -1;
    case OPT_OVERLAP:
        if (parse_overlap(arg, &sp->overlap))
            return cli_usage_error("schedule",
                                   "%s: bad --overlap '%s' (skip, queue-one or allow)", sub,
                                   arg);
        return -1;
    case OPT_MISFIRE:
        if (parse_misfire(arg, &sp->misfire, &sp->catch_up_max))
            return cli_usage_error("schedule",
                                   "%s: bad --misfire '%s' (skip, run-once or catch-up:N, "
                                   "N 1..%d)",
                                   sub, arg, JM_CATCH_UP_MAX);
        return -1;
    case OPT_PAUSE_AFTER:
        if (cli_parse_int(arg, 0, SCHEDULE_PAUSE_AFTER_MAX, &n))
            return cli_usage_error("schedule", "%s: bad --pause-after-failures '%s' (0..%d)",
                                   sub, arg, SCHEDULE_PAUSE_AFTER_MAX);
        sp->pause_after_failures = (int)n;
        return -1;
    case OPT_PAUSED:
        sp->paused = 1;
        return -1;
    case OPT_NAMESPACE:
        sp->opts.namespace_id = arg;
        return -1;
    case OPT_PRIORITY:
        if (cli_parse_int(arg, -CLI_PRIORITY_LIMIT, CLI_PRIORITY_LIMIT, &n))
            return cli_usage_error("schedule", "%s: bad --priority '%s' (an integer)", sub, arg);
        sp->opts.priority = (int)n;
        return -1;
    case OPT_MAX_RETRIES:
        if (cli_parse_int(arg, 0, JM_MAX_RETRIES_LIMIT, &n))
            return cli_usage_error("schedule", "%s: bad --max-retries '%s' (0..%d)", sub, arg,
                                   JM_MAX_RETRIES_LIMIT);
        sp->opts.max_retries = (int)n;
        return -1;
    default:
        return cli_usage_error("schedule", "%s: unexpected option", sub);
    }
}

/* Parses `add NAME …` or `update ID|NAME …`; returns -1 to go on, or an
 * exit code. The library judges the spec as a whole (a tz without cron, a
 * jitter too long, …): only the command line's shape is checked here. */
static int parse_spec_args(cli_global *g, int is_update, int argc, char **argv, spec_args *a)
{
    static const struct option opts[] = {
        CLI_GLOBAL_LONG_OPTIONS,
        {"type", 1, NULL, OPT_TYPE},
        {"params", 1, NULL, OPT_PARAMS},
        {"cron", 1, NULL, OPT_CRON},
        {"tz", 1, NULL, OPT_TZ},
        {"every", 1, NULL, OPT_EVERY},
        {"anchor", 1, NULL, OPT_ANCHOR},
        {"jitter", 1, NULL, OPT_JITTER},
        {"overlap", 1, NULL, OPT_OVERLAP},
        {"misfire", 1, NULL, OPT_MISFIRE},
        {"pause-after-failures", 1, NULL, OPT_PAUSE_AFTER},
        {"paused", 0, NULL, OPT_PAUSED},
        {"namespace", 1, NULL, OPT_NAMESPACE},
        {"priority", 1, NULL, OPT_PRIORITY},
        {"max-retries", 1, NULL, OPT_MAX_RETRIES},
        {"name", 1, NULL, OPT_NAME},
        {NULL, 0, NULL, 0}};
    const char *sub = argv[0];
    jm_schedule_spec init = JM_SCHEDULE_SPEC_INIT;
    int c, code = -1, has_anchor = 0;
    a->spec = init;
    a->ref = a->rename = NULL;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "schedule", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        if (c == OPT_NAME && is_update) {
            a->rename = optarg;
            continue;
        }
        if ((code = spec_option(sub, c, optarg, &a->spec, &has_anchor)) >= 0)
            return code;
    }
    if (argc - optind != 1)
        return cli_usage_error("schedule", "%s: needs exactly one %s", sub,
                               is_update ? "schedule id or name" : "schedule name");
    a->ref = argv[optind];
    if (!a->spec.type)
        return cli_usage_error("schedule", "%s: --type T is required", sub);
    if (!a->spec.cron == !a->spec.interval_ms)
        return cli_usage_error("schedule", "%s: give one of --cron EXPR and --every SPAN", sub);
    if (has_anchor && a->spec.anchor_ms == 0)
        return cli_usage_error("schedule", "%s: --anchor must be after the epoch", sub);
    return -1;
}

/* ---- Output ----------------------------------------------------------------------- */

static int print_list_table(const cli_global *g, jm_schedule **list, size_t n, int64_t now)
{
    static const char *const headers[] = {"NAME",     "ID",     "TRIGGER", "NEXT FIRE",
                                          "LAST FIRE", "POLICIES", "PAUSED", "FAILURES"};
    cli_table *t = cli_table_new(8, headers);
    if (!t)
        return -1;
    cli_table_align_right(t, 7);
    for (size_t i = 0; i < n; i++) {
        const jm_schedule *sc = list[i];
        char trigger[256], next[CLI_WHEN_BUF], last[CLI_TIME_BUF], policies[160], fails[16];
        snprintf(fails, sizeof fails, "%d", sc->consecutive_failures);
        const char *cells[] = {sc->spec.name,
                               sc->id,
                               trigger_text(&sc->spec, trigger, sizeof trigger),
                               cli_format_when(sc->next_fire_ms, now, next, sizeof next),
                               cli_format_time(sc->last_fire_ms, last, sizeof last),
                               policies_text(&sc->spec, policies, sizeof policies),
                               sc->spec.paused ? "yes" : "no",
                               fails};
        cli_color colors[8] = {CLI_COLOR_BOLD};
        colors[6] = sc->spec.paused ? CLI_COLOR_YELLOW : CLI_COLOR_NONE;
        colors[7] = sc->consecutive_failures > 0 ? CLI_COLOR_RED : CLI_COLOR_NONE;
        if (cli_table_add(t, cells, colors)) {
            cli_table_free(t);
            return -1;
        }
    }
    cli_table_print(t, stdout, cli_use_color(g), 0);
    cli_table_free(t);
    return 0;
}

/* One "label: value" line of `show`, as `jobmgr show` aligns them. */
static void field(const char *label, const char *value)
{
    printf("%-16s %s\n", label, value ? value : "-");
}

static void print_schedule(const jm_schedule *sc, const int64_t *times, size_t ntimes,
                           const jm_job *last_job, int64_t now)
{
    const jm_schedule_spec *sp = &sc->spec;
    char buf[256], span[32], when[CLI_WHEN_BUF];
    field("id:", sc->id);
    field("name:", sp->name);
    field("type:", sp->type);
    printf("%-16s ", "params:");
    cli_json_print_text(stdout, sp->params_json ? sp->params_json : "{}", 0);
    field("namespace:", sp->opts.namespace_id);
    snprintf(buf, sizeof buf, "%d", sp->opts.priority);
    field("priority:", buf);
    snprintf(buf, sizeof buf, "%d", sp->opts.max_retries);
    field("max retries:", buf);
    field("trigger:", trigger_text(sp, buf, sizeof buf));
    if (sp->interval_ms > 0)
        field("anchor:", cli_format_time(sp->anchor_ms, when, sizeof when));
    field("jitter:", sp->jitter_ms > 0 ? cli_format_every(sp->jitter_ms, span, sizeof span)
                                       : NULL);
    field("overlap:", cli_overlap_name(sp->overlap));
    if (sp->misfire == JM_MISFIRE_CATCH_UP)
        snprintf(buf, sizeof buf, "%s:%d", cli_misfire_name(sp->misfire), sp->catch_up_max);
    else
        snprintf(buf, sizeof buf, "%s", cli_misfire_name(sp->misfire));
    field("misfire:", buf);
    if (sp->pause_after_failures > 0)
        snprintf(buf, sizeof buf, "%d failures in a row", sp->pause_after_failures);
    else
        snprintf(buf, sizeof buf, "never");
    field("pause after:", buf);
    field("paused:", sp->paused ? "yes" : "no");
    snprintf(buf, sizeof buf, "%d in a row", sc->consecutive_failures);
    field("failures:", buf);
    field("next fire:", cli_format_when(sc->next_fire_ms, now, when, sizeof when));
    field("last fire:", cli_format_when(sc->last_fire_ms, now, when, sizeof when));
    field("created:", cli_format_time(sc->created_at, when, sizeof when));
    field("updated:", cli_format_time(sc->updated_at, when, sizeof when));
    if (ntimes) {
        printf("upcoming:\n");
        for (size_t i = 0; i < ntimes; i++)
            printf("  %s\n", cli_format_when(times[i], now, when, sizeof when));
    } else {
        field("upcoming:", NULL);
    }
    if (last_job)
        printf("%-16s %s %s\n", "last job:", jm_job_id(last_job),
               jm_status_name(jm_job_status(last_job)));
    else if (sc->last_job_id[0])
        printf("%-16s %s (deleted)\n", "last job:", sc->last_job_id);
    else
        field("last job:", NULL);
}

/* Fire times as [{"fire_at": ISO, "fire_at_ms": ms}, …] under `name`. */
static int add_times(cJSON *o, const char *name, const int64_t *times, size_t n)
{
    cJSON *arr = cJSON_AddArrayToObject(o, name);
    for (size_t i = 0; arr && i < n; i++) {
        char iso[CLI_TIME_BUF];
        cJSON *t = cJSON_CreateObject();
        if (!t || !cJSON_AddItemToArray(arr, t)) {
            cJSON_Delete(t);
            return -1;
        }
        if (!cJSON_AddStringToObject(t, "fire_at", cli_format_time(times[i], iso, sizeof iso)) ||
            !cJSON_AddNumberToObject(t, "fire_at_ms", (double)times[i]))
            return -1;
    }
    return arr ? 0 : -1;
}

/* ---- Subcommands --------------------------------------------------------------------- */

static int run_add(cli_global *g, int argc, char **argv)
{
    spec_args a;
    int code = parse_spec_args(g, 0, argc, argv, &a);
    if (code >= 0)
        return code;
    a.spec.name = a.ref;
    jm_manager *m = NULL;
    if ((code = cli_open(g, "schedule", NULL, &m)) != CLI_EXIT_OK)
        return code;
    char id[JM_SCHEDULE_ID_SIZE], label[CLI_REF_LABEL_SIZE];
    int rc = jm_schedule_create(m, &a.spec, id);
    code = rc == JM_OK ? cli_ref_print_id(g, id)
                       : cli_lib_error(rc, cli_ref_label("schedule", "add", NULL, label,
                                                         sizeof label));
    jm_close(m);
    return code;
}

static int run_update(cli_global *g, int argc, char **argv)
{
    spec_args a;
    int code = parse_spec_args(g, 1, argc, argv, &a);
    if (code >= 0)
        return code;
    jm_manager *m = NULL;
    jm_schedule *old = NULL;
    char label[CLI_REF_LABEL_SIZE];
    cli_ref_label("schedule", "update", a.ref, label, sizeof label);
    if ((code = cli_open(g, "schedule", NULL, &m)) != CLI_EXIT_OK)
        return code;
    /* It keeps its name unless --name gives another; it is changed by id,
     * so a rename cannot make it miss itself. */
    int rc = jm_schedule_get(m, a.ref, &old);
    if (rc == JM_OK) {
        a.spec.name = a.rename ? a.rename : old->spec.name;
        rc = jm_schedule_update(m, old->id, &a.spec);
    }
    code = rc == JM_OK ? cli_ref_print_id(g, old->id) : cli_lib_error(rc, label);
    jm_schedule_free(old);
    jm_close(m);
    return code;
}

static int run_list(cli_global *g, int argc, char **argv)
{
    int code = cli_ref_global_options(g, "schedule", argc, argv);
    if (code >= 0)
        return code;
    if (optind < argc)
        return cli_usage_error("schedule", "list: unexpected argument '%s'", argv[optind]);
    jm_manager *m = NULL;
    jm_schedule **list = NULL;
    size_t n = 0;
    if ((code = cli_open(g, "schedule", NULL, &m)) != CLI_EXIT_OK)
        return code;
    int rc = jm_schedule_list(m, &list, &n);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "schedule list");
        goto done;
    }
    if (g->json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *o = cli_schedule_json(list[i]);
            if (!o || !cJSON_AddItemToArray(arr, o)) {
                cJSON_Delete(o);
                cJSON_Delete(arr);
                arr = NULL;
            }
        }
        code = cli_json_emit(arr);
        goto done;
    }
    code = CLI_EXIT_OK;
    if (n == 0) {
        printf("no schedules\n");
    } else if (print_list_table(g, list, n, cli_now_ms())) {
        fprintf(stderr, "jobmgr: schedule list: out of memory\n");
        code = CLI_EXIT_FAILURE;
    }
done:
    jm_schedule_list_free(list, n);
    jm_close(m);
    return code;
}

/* `show`'s own part: the schedule with its next fire times and its last
 * job, as JSON or as its fields. */
static int show_schedule(const cli_global *g, jm_manager *m, const void *row, const char *label)
{
    const jm_schedule *sc = row;
    jm_job *last = NULL;
    int64_t times[SCHEDULE_PREVIEW_COUNT];
    size_t ntimes = 0;
    int rc, code;
    /* Fire times it cannot compute leave the list empty, with a warning:
     * the schedule itself is still worth showing. */
    if (upcoming(sc, SCHEDULE_PREVIEW_COUNT, times, &ntimes) != JM_OK) {
        fprintf(stderr, "jobmgr: %s: no upcoming fire times: %s\n", label, jm_last_error());
        ntimes = 0;
    }
    /* A pruned last job is not an error: show says so. */
    if (sc->last_job_id[0] && (rc = jm_get(m, sc->last_job_id, &last)) != JM_OK &&
        rc != JM_ENOTFOUND) {
        code = cli_lib_error(rc, label);
        goto done;
    }
    if (g->json) {
        cJSON *o = cli_schedule_json(sc);
        cJSON *lj = last ? cli_job_json(last) : cJSON_CreateNull();
        int ok = o && lj && add_times(o, "upcoming", times, ntimes) == 0 &&
                 cJSON_AddItemToObject(o, "last_job", lj);
        if (ok) {
            lj = NULL; /* the object holds it now */
        } else {
            cJSON_Delete(o);
            o = NULL;
        }
        cJSON_Delete(lj);
        code = cli_json_emit(o);
    } else {
        print_schedule(sc, times, ntimes, last, cli_now_ms());
        code = CLI_EXIT_OK;
    }
done:
    jm_job_free(last);
    return code;
}

static int get_schedule(jm_manager *m, const char *id_or_name, void **out)
{
    jm_schedule *sc = NULL;
    int rc = jm_schedule_get(m, id_or_name, &sc);
    *out = sc;
    return rc;
}

static void free_schedule(void *row)
{
    jm_schedule_free(row);
}

static const char *schedule_id(const void *row)
{
    return ((const jm_schedule *)row)->id;
}

static const char *schedule_name(const void *row)
{
    return ((const jm_schedule *)row)->spec.name;
}

/* The library's schedule calls, for the flows schedules share with
 * policies. */
static const cli_ref_kind schedule_kind = {
    .command = "schedule",
    .get = get_schedule,
    .free = free_schedule,
    .pause = jm_schedule_pause,
    .resume = jm_schedule_resume,
    .remove = jm_schedule_delete,
    .id = schedule_id,
    .name = schedule_name,
    .show = show_schedule,
};

static int run_show(cli_global *g, int argc, char **argv)
{
    return cli_ref_show(&schedule_kind, g, argc, argv);
}

static int run_pause(cli_global *g, int argc, char **argv)
{
    return cli_ref_act(&schedule_kind, CLI_REF_PAUSE, g, argc, argv);
}

static int run_resume(cli_global *g, int argc, char **argv)
{
    return cli_ref_act(&schedule_kind, CLI_REF_RESUME, g, argc, argv);
}

static int run_rm(cli_global *g, int argc, char **argv)
{
    return cli_ref_act(&schedule_kind, CLI_REF_DELETE, g, argc, argv);
}

/* `next EXPR`: a pure preview; it never opens the database. */
static int run_next(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                         {"tz", 1, NULL, OPT_TZ},
                                         {"count", 1, NULL, OPT_COUNT},
                                         {"from", 1, NULL, OPT_FROM},
                                         {NULL, 0, NULL, 0}};
    const char *tz = NULL;
    long count = SCHEDULE_PREVIEW_COUNT;
    int64_t from = cli_now_ms();
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "schedule", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        switch (c) {
        case OPT_TZ:
            tz = optarg;
            break;
        case OPT_COUNT:
            if (cli_parse_int(optarg, 1, SCHEDULE_NEXT_MAX_COUNT, &count))
                return cli_usage_error("schedule", "next: bad --count '%s' (1..%d)", optarg,
                                       SCHEDULE_NEXT_MAX_COUNT);
            break;
        case OPT_FROM:
            if (cli_parse_time(optarg, CLI_TIME_FUTURE, cli_now_ms(), &from))
                return cli_usage_error("schedule",
                                       "next: bad --from '%s' (ISO 8601, or 2h: from now)",
                                       optarg);
            break;
        default:
            return cli_usage_error("schedule", "next: unexpected option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("schedule", "next: needs exactly one cron expression (quote it)");
    const char *expr = argv[optind];
    int64_t times[SCHEDULE_NEXT_MAX_COUNT];
    int rc = jm_schedule_next(expr, tz, from, (size_t)count, times);
    if (rc != JM_OK)
        return cli_lib_error(rc, "schedule next");
    if (g->json) {
        cJSON *o = cJSON_CreateObject();
        char iso[CLI_TIME_BUF];
        if (!o || !cJSON_AddStringToObject(o, "expr", expr) ||
            !(tz ? cJSON_AddStringToObject(o, "tz", tz) : cJSON_AddNullToObject(o, "tz")) ||
            !cJSON_AddStringToObject(o, "from", cli_format_time(from, iso, sizeof iso)) ||
            !cJSON_AddNumberToObject(o, "from_ms", (double)from) ||
            add_times(o, "fire_times", times, (size_t)count)) {
            cJSON_Delete(o);
            o = NULL;
        }
        return cli_json_emit(o);
    }
    for (long i = 0; i < count; i++) {
        char iso[CLI_TIME_BUF];
        printf("%s\n", cli_format_time(times[i], iso, sizeof iso));
    }
    return CLI_EXIT_OK;
}

typedef struct subcommand {
    const char *name;
    int (*run)(cli_global *g, int argc, char **argv);
} subcommand;

static const subcommand subcommands[] = {
    {"add", run_add},       {"update", run_update}, {"list", run_list}, {"show", run_show},
    {"pause", run_pause},   {"resume", run_resume}, {"rm", run_rm},     {"next", run_next},
};

int cli_cmd_schedule(cli_global *g, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("schedule", "needs a subcommand: add, update, list, show, "
                                           "pause, resume, rm or next");
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0) {
        cli_print_help(stdout, "schedule");
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < NAMES_COUNT(subcommands); i++)
        if (strcmp(subcommands[i].name, name) == 0)
            return subcommands[i].run(g, argc - 1, argv + 1);
    return cli_usage_error("schedule", "unknown subcommand '%s'", name);
}
