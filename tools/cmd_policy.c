/*
 * cmd_policy.c: `jobmgr policy`: adds, lists, shows, pauses, resumes and
 * deletes the table policies of a jobs database, and evaluates them once
 * against a reference engine (`policy eval`).
 *
 * The tool only writes policy rows; a running manager with a host that
 * lists tables (`jobmgr run`, or a host program) evaluates them every
 * policy interval. The library keeps no list of a policy's jobs: they are
 * found by their idempotency key, which `jobmgr list --key` filters on.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jobmgr/engine.h>

#include "cli.h"
#include "ref_cmd.h"

/* The largest row, segment and small-file counts a threshold takes. */
#define POLICY_COUNT_MAX 1000000000000L
/* The largest --small-bytes: a terabyte. */
#define POLICY_BYTES_MAX (1L << 40)

enum {
    OPT_KIND = CLI_OPT_FIRST_FREE,
    OPT_NAMESPACE,
    OPT_TABLE,
    OPT_TABLE_TYPE,
    OPT_ROWS,
    OPT_MAX_AGE,
    OPT_SEGMENTS,
    OPT_SMALL_FILES,
    OPT_SMALL_BYTES,
    OPT_EVERY,
    OPT_RETENTION_HOURS,
    OPT_PRIORITY,
    OPT_PAUSED,
    OPT_ENGINE
};

/* ---- Kind words --------------------------------------------------------------- */

/* Indexed by jm_policy_kind; the same words are read and written. */
static const char *const kind_names[] = {"flush", "compact", "retention", "stream-eviction"};
/* The built-in job type each kind creates, indexed the same way. */
static const char *const kind_job_types[] = {JM_FLUSH, JM_COMPACT, JM_RETENTION,
                                             JM_STREAM_EVICTION};
#define NAMES_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define KIND_BIT(k) (1u << (k))

const char *cli_policy_kind_name(jm_policy_kind k)
{
    return (unsigned)k < NAMES_COUNT(kind_names) ? kind_names[k] : "?";
}

const char *cli_policy_job_type(jm_policy_kind k)
{
    return (unsigned)k < NAMES_COUNT(kind_job_types) ? kind_job_types[k] : "?";
}

static int parse_kind(const char *s, jm_policy_kind *out)
{
    for (size_t i = 0; i < NAMES_COUNT(kind_names); i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (jm_policy_kind)i;
            return 0;
        }
    return -1;
}

/* ---- Text of a policy ------------------------------------------------------------ */

/* "1MiB", "64KiB", or "1000B": exact, in the largest unit that divides. */
static const char *bytes_text(int64_t b, char *buf, size_t len)
{
    if (b > 0 && b % (1 << 20) == 0)
        snprintf(buf, len, "%lldMiB", (long long)(b >> 20));
    else if (b > 0 && b % (1 << 10) == 0)
        snprintf(buf, len, "%lldKiB", (long long)(b >> 10));
    else
        snprintf(buf, len, "%lldB", (long long)b);
    return buf;
}

/* "app.orders", "all tables in app", "all Stream tables in app", "all
 * User tables": what the library's evaluation applies the policy to. */
static const char *target_text(const jm_policy_spec *sp, char *buf, size_t len)
{
    if (sp->table) {
        snprintf(buf, len, "%s.%s", sp->ns ? sp->ns : "?", sp->table);
        return buf;
    }
    const char *type = NULL;
    if (sp->table_type >= 0)
        type = jm_table_type_name((jm_table_type)sp->table_type);
    else if (sp->kind == JM_POLICY_STREAM_EVICTION)
        type = jm_table_type_name(JM_TABLE_STREAM); /* it looks at no other type */
    snprintf(buf, len, "all %s%stables%s%s", type ? type : "", type ? " " : "",
             sp->ns ? " in " : "", sp->ns ? sp->ns : "");
    return buf;
}

/* "rows>=10000 or age>=1m", "segments>=8 or small files>4 (<1MiB)",
 * "deleted>720h, every 1d", "past TTL, every 5m". */
static const char *rule_text(const jm_policy_spec *sp, char *buf, size_t len)
{
    char span[32], bytes[32];
    int64_t small = sp->small_bytes ? sp->small_bytes : JM_POLICY_SMALL_BYTES_DEFAULT;
    switch (sp->kind) {
    case JM_POLICY_FLUSH:
        if (sp->rows && sp->max_age_ms)
            snprintf(buf, len, "rows>=%lld or age>=%s", (long long)sp->rows,
                     cli_format_every(sp->max_age_ms, span, sizeof span));
        else if (sp->rows)
            snprintf(buf, len, "rows>=%lld", (long long)sp->rows);
        else
            snprintf(buf, len, "age>=%s", cli_format_every(sp->max_age_ms, span, sizeof span));
        break;
    case JM_POLICY_COMPACT:
        if (sp->segments && sp->small_files)
            snprintf(buf, len, "segments>=%lld or small files>%lld (<%s)",
                     (long long)sp->segments, (long long)sp->small_files,
                     bytes_text(small, bytes, sizeof bytes));
        else if (sp->segments)
            snprintf(buf, len, "segments>=%lld", (long long)sp->segments);
        else
            snprintf(buf, len, "small files>%lld (<%s)", (long long)sp->small_files,
                     bytes_text(small, bytes, sizeof bytes));
        break;
    case JM_POLICY_RETENTION:
        snprintf(buf, len, "deleted>%dh, every %s", sp->retention_hours,
                 cli_format_every(sp->every_ms, span, sizeof span));
        break;
    default:
        snprintf(buf, len, "past TTL, every %s",
                 cli_format_every(sp->every_ms, span, sizeof span));
        break;
    }
    return buf;
}

/* ---- Arguments ------------------------------------------------------------------- */

/* The threshold options of `add`, and the kinds each applies to: one given
 * for another kind is a usage error, since the library would keep it and
 * never look at it. */
typedef struct threshold_option {
    int code;
    const char *name;
    unsigned kinds;
} threshold_option;

static const threshold_option thresholds[] = {
    {OPT_ROWS, "--rows", KIND_BIT(JM_POLICY_FLUSH)},
    {OPT_MAX_AGE, "--max-age", KIND_BIT(JM_POLICY_FLUSH)},
    {OPT_SEGMENTS, "--segments", KIND_BIT(JM_POLICY_COMPACT)},
    {OPT_SMALL_FILES, "--small-files", KIND_BIT(JM_POLICY_COMPACT)},
    {OPT_SMALL_BYTES, "--small-bytes", KIND_BIT(JM_POLICY_COMPACT)},
    {OPT_EVERY, "--every", KIND_BIT(JM_POLICY_RETENTION) | KIND_BIT(JM_POLICY_STREAM_EVICTION)},
    {OPT_RETENTION_HOURS, "--retention-hours", KIND_BIT(JM_POLICY_RETENTION)},
};

/* Kinds named as a list for a message: "flush", "retention or stream-eviction". */
static const char *kinds_text(unsigned kinds, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NAMES_COUNT(kind_names); i++) {
        if (!(kinds & KIND_BIT(i)))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? " or " : "", kind_names[i]);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    return buf;
}

/* One option of `add`; returns -1 if it was one, or an exit code. */
static int spec_option(int c, const char *arg, jm_policy_spec *sp, int *has_kind)
{
    long n;
    switch (c) {
    case OPT_KIND:
        if (parse_kind(arg, &sp->kind))
            return cli_usage_error("policy",
                                   "add: bad --kind '%s' (flush, compact, retention or "
                                   "stream-eviction)",
                                   arg);
        *has_kind = 1;
        return -1;
    case OPT_NAMESPACE:
        sp->ns = arg;
        return -1;
    case OPT_TABLE:
        sp->table = arg;
        return -1;
    case OPT_TABLE_TYPE: {
        jm_table_type t;
        if (jm_table_type_parse(arg, &t) != JM_OK)
            return cli_usage_error("policy", "add: bad --table-type '%s' (User, Shared or "
                                             "Stream)",
                                   arg);
        sp->table_type = (int)t;
        return -1;
    }
    case OPT_ROWS:
        if (cli_parse_int(arg, 0, POLICY_COUNT_MAX, &n))
            return cli_usage_error("policy", "add: bad --rows '%s' (0..%ld)", arg,
                                   POLICY_COUNT_MAX);
        sp->rows = n;
        return -1;
    case OPT_MAX_AGE:
        if (cli_parse_span(arg, &sp->max_age_ms))
            return cli_usage_error("policy", "add: bad --max-age '%s' (30s, 5m, 1h)", arg);
        return -1;
    case OPT_SEGMENTS:
        if (cli_parse_int(arg, 0, POLICY_COUNT_MAX, &n))
            return cli_usage_error("policy", "add: bad --segments '%s' (0..%ld)", arg,
                                   POLICY_COUNT_MAX);
        sp->segments = n;
        return -1;
    case OPT_SMALL_FILES:
        if (cli_parse_int(arg, 0, POLICY_COUNT_MAX, &n))
            return cli_usage_error("policy", "add: bad --small-files '%s' (0..%ld)", arg,
                                   POLICY_COUNT_MAX);
        sp->small_files = n;
        return -1;
    case OPT_SMALL_BYTES:
        if (cli_parse_int(arg, 0, POLICY_BYTES_MAX, &n))
            return cli_usage_error("policy", "add: bad --small-bytes '%s' (bytes, 0..%ld)", arg,
                                   POLICY_BYTES_MAX);
        sp->small_bytes = n;
        return -1;
    case OPT_EVERY:
        if (cli_parse_span(arg, &sp->every_ms))
            return cli_usage_error("policy", "add: bad --every '%s' (30s, 5m, 1h, 1d)", arg);
        return -1;
    case OPT_RETENTION_HOURS:
        if (cli_parse_int(arg, 0, INT_MAX, &n))
            return cli_usage_error("policy", "add: bad --retention-hours '%s' (an hour count)",
                                   arg);
        sp->retention_hours = (int)n;
        return -1;
    case OPT_PRIORITY:
        if (cli_parse_int(arg, -CLI_PRIORITY_LIMIT, CLI_PRIORITY_LIMIT, &n))
            return cli_usage_error("policy", "add: bad --priority '%s' (an integer)", arg);
        sp->priority = (int)n;
        return -1;
    case OPT_PAUSED:
        sp->paused = 1;
        return -1;
    default:
        return cli_usage_error("policy", "add: unexpected option");
    }
}

/* Parses `add NAME …` into *sp; returns -1 to go on, or an exit code. The
 * library judges the spec as a whole (a flush policy with no threshold, a
 * table without its namespace, …): only the command line's shape is
 * checked here. */
static int parse_add_args(cli_global *g, int argc, char **argv, jm_policy_spec *sp)
{
    static const struct option opts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                         {"kind", 1, NULL, OPT_KIND},
                                         {"namespace", 1, NULL, OPT_NAMESPACE},
                                         {"table", 1, NULL, OPT_TABLE},
                                         {"table-type", 1, NULL, OPT_TABLE_TYPE},
                                         {"rows", 1, NULL, OPT_ROWS},
                                         {"max-age", 1, NULL, OPT_MAX_AGE},
                                         {"segments", 1, NULL, OPT_SEGMENTS},
                                         {"small-files", 1, NULL, OPT_SMALL_FILES},
                                         {"small-bytes", 1, NULL, OPT_SMALL_BYTES},
                                         {"every", 1, NULL, OPT_EVERY},
                                         {"retention-hours", 1, NULL, OPT_RETENTION_HOURS},
                                         {"priority", 1, NULL, OPT_PRIORITY},
                                         {"paused", 0, NULL, OPT_PAUSED},
                                         {NULL, 0, NULL, 0}};
    jm_policy_spec init = JM_POLICY_SPEC_INIT;
    unsigned given = 0; /* bit i: thresholds[i] was given */
    int c, code = -1, has_kind = 0;
    *sp = init;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "policy", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        for (size_t i = 0; i < NAMES_COUNT(thresholds); i++)
            if (thresholds[i].code == c)
                given |= 1u << i;
        if ((code = spec_option(c, optarg, sp, &has_kind)) >= 0)
            return code;
    }
    if (argc - optind != 1)
        return cli_usage_error("policy", "add: needs exactly one policy name");
    sp->name = argv[optind];
    if (!has_kind)
        return cli_usage_error("policy", "add: --kind K is required (flush, compact, "
                                         "retention or stream-eviction)");
    for (size_t i = 0; i < NAMES_COUNT(thresholds); i++) {
        char kinds[64];
        if ((given & (1u << i)) && !(thresholds[i].kinds & KIND_BIT(sp->kind)))
            return cli_usage_error("policy", "add: %s applies to --kind %s, not %s",
                                   thresholds[i].name,
                                   kinds_text(thresholds[i].kinds, kinds, sizeof kinds),
                                   kind_names[sp->kind]);
    }
    return -1;
}

/* ---- Output ----------------------------------------------------------------------- */

static int print_list_table(const cli_global *g, jm_policy **list, size_t n)
{
    static const char *const headers[] = {"NAME", "ID", "KIND", "TARGET", "RULE", "PAUSED"};
    cli_table *t = cli_table_new(6, headers);
    if (!t)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const jm_policy *p = list[i];
        char target[2 * JM_HOST_NAME_MAX + 64], rule[160];
        const char *cells[] = {p->spec.name,
                               p->id,
                               cli_policy_kind_name(p->spec.kind),
                               target_text(&p->spec, target, sizeof target),
                               rule_text(&p->spec, rule, sizeof rule),
                               p->spec.paused ? "yes" : "no"};
        cli_color colors[6] = {CLI_COLOR_BOLD};
        colors[5] = p->spec.paused ? CLI_COLOR_YELLOW : CLI_COLOR_NONE;
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

static void print_policy(const jm_policy *p)
{
    const jm_policy_spec *sp = &p->spec;
    char buf[2 * JM_HOST_NAME_MAX + 64], span[32], when[CLI_TIME_BUF];
    int64_t small = sp->small_bytes ? sp->small_bytes : JM_POLICY_SMALL_BYTES_DEFAULT;
    field("id:", p->id);
    field("name:", sp->name);
    field("kind:", cli_policy_kind_name(sp->kind));
    field("job type:", cli_policy_job_type(sp->kind));
    field("target:", target_text(sp, buf, sizeof buf));
    field("namespace:", sp->ns);
    field("table:", sp->table);
    field("table type:", sp->table_type >= 0 ? jm_table_type_name((jm_table_type)sp->table_type)
                                             : NULL);
    field("rule:", rule_text(sp, buf, sizeof buf));
    switch (sp->kind) {
    case JM_POLICY_FLUSH:
        snprintf(buf, sizeof buf, "%lld", (long long)sp->rows);
        field("rows:", sp->rows ? buf : NULL);
        field("max age:", sp->max_age_ms ? cli_format_every(sp->max_age_ms, span, sizeof span)
                                         : NULL);
        break;
    case JM_POLICY_COMPACT:
        snprintf(buf, sizeof buf, "%lld", (long long)sp->segments);
        field("segments:", sp->segments ? buf : NULL);
        snprintf(buf, sizeof buf, "%lld", (long long)sp->small_files);
        field("small files:", sp->small_files ? buf : NULL);
        field("small bytes:", bytes_text(small, buf, sizeof buf));
        break;
    case JM_POLICY_RETENTION:
        snprintf(buf, sizeof buf, "%d", sp->retention_hours);
        field("retention hours:", buf);
        field("every:", cli_format_every(sp->every_ms, span, sizeof span));
        break;
    default:
        field("every:", cli_format_every(sp->every_ms, span, sizeof span));
        break;
    }
    snprintf(buf, sizeof buf, "%d", sp->priority);
    field("priority:", buf);
    field("paused:", sp->paused ? "yes" : "no");
    field("created:", cli_format_time(p->created_at, when, sizeof when));
    field("updated:", cli_format_time(p->updated_at, when, sizeof when));
}

/* ---- Subcommands --------------------------------------------------------------------- */

static int run_add(cli_global *g, int argc, char **argv)
{
    jm_policy_spec spec;
    int code = parse_add_args(g, argc, argv, &spec);
    if (code >= 0)
        return code;
    jm_manager *m = NULL;
    if ((code = cli_open(g, "policy", NULL, &m)) != CLI_EXIT_OK)
        return code;
    char id[JM_SCHEDULE_ID_SIZE], label[CLI_REF_LABEL_SIZE];
    int rc = jm_policy_create(m, &spec, id);
    code = rc == JM_OK ? cli_ref_print_id(g, id)
                       : cli_lib_error(rc, cli_ref_label("policy", "add", NULL, label,
                                                         sizeof label));
    jm_close(m);
    return code;
}

static int run_list(cli_global *g, int argc, char **argv)
{
    int code = cli_ref_global_options(g, "policy", argc, argv);
    if (code >= 0)
        return code;
    if (optind < argc)
        return cli_usage_error("policy", "list: unexpected argument '%s'", argv[optind]);
    jm_manager *m = NULL;
    jm_policy **list = NULL;
    size_t n = 0;
    if ((code = cli_open(g, "policy", NULL, &m)) != CLI_EXIT_OK)
        return code;
    int rc = jm_policy_list(m, &list, &n);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "policy list");
        goto done;
    }
    if (g->json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *o = cli_policy_json(list[i]);
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
        printf("no policies\n");
    } else if (print_list_table(g, list, n)) {
        fprintf(stderr, "jobmgr: policy list: out of memory\n");
        code = CLI_EXIT_FAILURE;
    }
done:
    jm_policy_list_free(list, n);
    jm_close(m);
    return code;
}

/* `show`'s own part: the policy as JSON or as its fields. */
static int show_policy(const cli_global *g, jm_manager *m, const void *row, const char *label)
{
    (void)m;
    (void)label;
    if (g->json)
        return cli_json_emit(cli_policy_json(row));
    print_policy(row);
    return CLI_EXIT_OK;
}

static int get_policy(jm_manager *m, const char *id_or_name, void **out)
{
    jm_policy *p = NULL;
    int rc = jm_policy_get(m, id_or_name, &p);
    *out = p;
    return rc;
}

static void free_policy(void *row)
{
    jm_policy_free(row);
}

static const char *policy_id(const void *row)
{
    return ((const jm_policy *)row)->id;
}

static const char *policy_name(const void *row)
{
    return ((const jm_policy *)row)->spec.name;
}

/* The library's policy calls, for the flows policies share with schedules. */
static const cli_ref_kind policy_kind = {
    .command = "policy",
    .get = get_policy,
    .free = free_policy,
    .pause = jm_policy_pause,
    .resume = jm_policy_resume,
    .remove = jm_policy_delete,
    .id = policy_id,
    .name = policy_name,
    .show = show_policy,
};

static int run_show(cli_global *g, int argc, char **argv)
{
    return cli_ref_show(&policy_kind, g, argc, argv);
}

static int run_pause(cli_global *g, int argc, char **argv)
{
    return cli_ref_act(&policy_kind, CLI_REF_PAUSE, g, argc, argv);
}

static int run_resume(cli_global *g, int argc, char **argv)
{
    return cli_ref_act(&policy_kind, CLI_REF_RESUME, g, argc, argv);
}

static int run_rm(cli_global *g, int argc, char **argv)
{
    return cli_ref_act(&policy_kind, CLI_REF_DELETE, g, argc, argv);
}

/* `eval --engine DIR`: one evaluation with the engine as host, as a
 * running manager does every policy interval. The engine is open in one
 * process at a time, so this cannot run beside `jobmgr run` on DIR. */
static int run_eval(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_GLOBAL_LONG_OPTIONS, {"engine", 1, NULL, OPT_ENGINE}, {NULL, 0, NULL, 0}};
    const char *dir = NULL;
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "policy", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        if (c != OPT_ENGINE)
            return cli_usage_error("policy", "eval: unexpected option");
        dir = optarg;
    }
    if (optind < argc)
        return cli_usage_error("policy", "eval: unexpected argument '%s'", argv[optind]);
    if (!dir)
        return cli_usage_error("policy", "eval: --engine DIR is required");
    char db_path[CLI_PATH_MAX];
    if (!(g->db = cli_engine_db(g, "policy", dir, db_path, sizeof db_path)))
        return CLI_EXIT_USAGE;

    jm_engine *e = NULL;
    jm_manager *m = NULL;
    if ((code = cli_open_engine(dir, &e)) != CLI_EXIT_OK)
        return code;
    if ((code = cli_open(g, "policy", jm_engine_host(e), &m)) != CLI_EXIT_OK)
        goto done;
    int created = 0;
    int rc = jm_policy_evaluate(m, &created);
    if (rc != JM_OK) {
        code = cli_lib_error(rc, "policy eval");
    } else if (g->json) {
        cJSON *o = cJSON_CreateObject();
        if (o && !cJSON_AddNumberToObject(o, "created", created)) {
            cJSON_Delete(o);
            o = NULL;
        }
        code = cli_json_emit(o);
    } else {
        printf("created %d job%s\n", created, created == 1 ? "" : "s");
        code = CLI_EXIT_OK;
    }
done:
    jm_close(m);
    jm_engine_close(e);
    return code;
}

typedef struct subcommand {
    const char *name;
    int (*run)(cli_global *g, int argc, char **argv);
} subcommand;

static const subcommand subcommands[] = {
    {"add", run_add},       {"list", run_list}, {"show", run_show}, {"pause", run_pause},
    {"resume", run_resume}, {"rm", run_rm},     {"eval", run_eval},
};

int cli_cmd_policy(cli_global *g, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("policy", "needs a subcommand: add, list, show, pause, resume, "
                                         "rm or eval");
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0) {
        cli_print_help(stdout, "policy");
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < NAMES_COUNT(subcommands); i++)
        if (strcmp(subcommands[i].name, name) == 0)
            return subcommands[i].run(g, argc - 1, argv + 1);
    return cli_usage_error("policy", "unknown subcommand '%s'", name);
}
