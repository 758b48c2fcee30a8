/*
 * cmd_run.c: `jobmgr run`: runs the built-in executors against the
 * reference engine in a directory until SIGINT or SIGTERM, then stops
 * gracefully (running jobs get a drain period, then are asked to stop and
 * go back to retrying without spending a retry).
 *
 * Signals are blocked in every thread before the workers start and taken
 * with sigwait() on the main thread, so no work happens in a signal handler.
 * It runs only the built-in types; a host with its own executors embeds the
 * library instead. The manager's loop also evaluates the database's table
 * policies every --policy-interval, with the engine as host, and the
 * executors spend the I/O budgets --io-limit sets; --high-workers keeps
 * workers for the high-class jobs. The default database and
 * the opening of the engine are shared with `policy eval`.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmgr/engine.h>

#include "cli.h"

/* How long running jobs may go on after Ctrl-C before they are asked to stop. */
#define RUN_DEFAULT_DRAIN_MS 10000
#define RUN_DEFAULT_WORKERS 4
/* The longest --drain and --policy-interval: a day (the library's limit
 * of cfg.policy_interval_ms too). */
#define RUN_SPAN_MAX_MS (24LL * 3600 * 1000)
/* The jobs database inside the engine directory when --db is not given. */
#define RUN_DEFAULT_DB_NAME "jobs.db"

enum {
    OPT_WORKERS = CLI_OPT_FIRST_FREE,
    OPT_ENGINE,
    OPT_DRAIN,
    OPT_VERBOSE,
    OPT_POLICY_INTERVAL,
    OPT_IO_LIMIT,
    OPT_HIGH_WORKERS
};

/* --io-limit's class names, by jm_class. */
static const char *const class_names[JM_CLASS_COUNT] = {"normal", "high"};

/* An --io-limit rate: bytes per second, with an optional K, M or G suffix
 * (powers of 1024); 0 is unlimited. */
static int parse_rate(const char *s, size_t len, int64_t *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    int64_t unit = 1;
    switch (buf[len - 1]) {
    case 'K':
        unit = INT64_C(1) << 10;
        break;
    case 'M':
        unit = INT64_C(1) << 20;
        break;
    case 'G':
        unit = INT64_C(1) << 30;
        break;
    default:
        break;
    }
    if (unit > 1)
        buf[--len] = '\0';
    if (len == 0 || buf[0] < '0' || buf[0] > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v < 0 || v > INT64_MAX / unit)
        return -1;
    *out = (int64_t)v * unit;
    return 0;
}

/* "high=10M,normal=5M": each named class's rate into rates[], set[] marking
 * which were given. */
static int parse_io_limit(const char *s, int64_t rates[JM_CLASS_COUNT], int set[JM_CLASS_COUNT])
{
    while (*s) {
        size_t item = strcspn(s, ","), name = strcspn(s, "=");
        if (name >= item)
            return -1;
        int cls = -1;
        for (int c = 0; c < JM_CLASS_COUNT; c++)
            if (strlen(class_names[c]) == name && strncmp(s, class_names[c], name) == 0)
                cls = c;
        if (cls < 0 || parse_rate(s + name + 1, item - name - 1, &rates[cls]))
            return -1;
        set[cls] = 1;
        s += item;
        if (*s == ',' && !*++s)
            return -1;
    }
    return 0;
}

const char *cli_engine_db(const cli_global *g, const char *command, const char *dir, char *buf,
                          size_t len)
{
    if (g->db && *g->db)
        return g->db;
    int n = snprintf(buf, len, "%s/%s", dir, RUN_DEFAULT_DB_NAME);
    if (n < 0 || (size_t)n >= len) {
        cli_usage_error(command, "engine directory name too long");
        return NULL;
    }
    return buf;
}

int cli_open_engine(const char *dir, jm_engine **out)
{
    int rc = jm_engine_open(dir, out);
    if (rc != JM_OK) {
        char what[CLI_PATH_MAX + 64];
        snprintf(what, sizeof what, "opening engine %s", dir);
        return cli_lib_error(rc, what);
    }
    return CLI_EXIT_OK;
}

/* The manager's log lines go to stderr, one whole line per call. */
static void log_line(void *user, jm_log_level level, const char *line)
{
    (void)user;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    fprintf(stderr, "jobmgr: %s: %s\n", level <= JM_LOG_ERROR ? names[level] : "log", line);
}

int cli_cmd_run(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                         {"workers", 1, NULL, OPT_WORKERS},
                                         {"engine", 1, NULL, OPT_ENGINE},
                                         {"drain", 1, NULL, OPT_DRAIN},
                                         {"verbose", 0, NULL, OPT_VERBOSE},
                                         {"policy-interval", 1, NULL, OPT_POLICY_INTERVAL},
                                         {"io-limit", 1, NULL, OPT_IO_LIMIT},
                                         {"high-workers", 1, NULL, OPT_HIGH_WORKERS},
                                         {NULL, 0, NULL, 0}};
    long workers = RUN_DEFAULT_WORKERS, drain_ms = RUN_DEFAULT_DRAIN_MS, high_workers = 0;
    int64_t policy_interval_ms = JM_DEFAULT_POLICY_INTERVAL_MS;
    int64_t rates[JM_CLASS_COUNT] = {0};
    int rate_set[JM_CLASS_COUNT] = {0};
    const char *dir = NULL;
    int verbose = 0;
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "run", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        switch (c) {
        case OPT_WORKERS:
            if (cli_parse_int(optarg, 1, JM_MAX_WORKERS, &workers))
                return cli_usage_error("run", "bad --workers '%s' (1..%d)", optarg,
                                       JM_MAX_WORKERS);
            break;
        case OPT_ENGINE:
            dir = optarg;
            break;
        case OPT_DRAIN: {
            int64_t span;
            if (cli_parse_span(optarg, &span) || span > RUN_SPAN_MAX_MS)
                return cli_usage_error("run", "bad --drain '%s' (30s, 2m)", optarg);
            drain_ms = (long)span;
            break;
        }
        case OPT_POLICY_INTERVAL:
            if (cli_parse_span(optarg, &policy_interval_ms) || policy_interval_ms == 0 ||
                policy_interval_ms > RUN_SPAN_MAX_MS)
                return cli_usage_error("run", "bad --policy-interval '%s' (1s to 1d)", optarg);
            break;
        case OPT_IO_LIMIT:
            if (!*optarg || parse_io_limit(optarg, rates, rate_set))
                return cli_usage_error("run", "bad --io-limit '%s' (high=10M,normal=5M)",
                                       optarg);
            break;
        case OPT_HIGH_WORKERS:
            if (cli_parse_int(optarg, 0, JM_MAX_WORKERS - 1, &high_workers))
                return cli_usage_error("run", "bad --high-workers '%s' (0..%d)", optarg,
                                       JM_MAX_WORKERS - 1);
            break;
        case OPT_VERBOSE:
            verbose = 1;
            break;
        default:
            return cli_usage_error("run", "unexpected option");
        }
    }
    if (optind < argc)
        return cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
    if (!dir)
        return cli_usage_error("run", "--engine DIR is required");
    if (high_workers >= workers)
        return cli_usage_error("run", "--high-workers (%ld) must be fewer than --workers (%ld)",
                               high_workers, workers);

    char db_path[CLI_PATH_MAX];
    if (!(g->db = cli_engine_db(g, "run", dir, db_path, sizeof db_path)))
        return CLI_EXIT_USAGE;

    /* Block the stop signals before any thread exists, so every worker
     * inherits the mask and only sigwait() below receives them. A shell
     * starts background commands with SIGINT ignored, and an ignored signal
     * is discarded even while blocked: restore the default action first
     * (once blocked, it cannot end the process). */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop_set, NULL) != 0) {
        fprintf(stderr, "jobmgr: run: cannot block signals\n");
        return CLI_EXIT_FAILURE;
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);

    jm_engine *e = NULL;
    jm_manager *m = NULL;
    if ((code = cli_open_engine(dir, &e)) != CLI_EXIT_OK)
        return code;
    jm_config cfg = JM_CONFIG_INIT;
    cli_config_db(&cfg, g->db);
    cfg.host = jm_engine_host(e);
    cfg.log_fn = log_line;
    cfg.log_level = verbose ? JM_LOG_INFO : JM_LOG_WARN;
    cfg.policy_interval_ms = policy_interval_ms;
    cfg.high_workers = (int)high_workers;
    int rc = jm_open(&cfg, &m);
    if (rc != JM_OK) {
        char what[CLI_PATH_MAX + 64];
        snprintf(what, sizeof what, "opening %s", g->db);
        code = cli_lib_error(rc, what);
        goto done;
    }
    if ((rc = jm_register_builtin(m)) != JM_OK) {
        code = cli_lib_error(rc, "registering the built-in executors");
        goto done;
    }
    for (int cls = 0; cls < JM_CLASS_COUNT; cls++) {
        if (!rate_set[cls])
            continue;
        if ((rc = jm_set_rate_limit(m, (jm_class)cls, rates[cls])) != JM_OK) {
            code = cli_lib_error(rc, "setting the I/O budget");
            goto done;
        }
        if (rates[cls] > 0)
            fprintf(stderr, "jobmgr: I/O budget of the %s class: %lld bytes/s\n",
                    class_names[cls], (long long)rates[cls]);
    }
    if ((rc = jm_start(m, (int)workers)) != JM_OK) {
        code = cli_lib_error(rc, "starting the workers");
        goto done;
    }
    fprintf(stderr, "jobmgr: running %ld worker%s on engine %s, jobs in %s (Ctrl-C stops)\n",
            workers, workers == 1 ? "" : "s", dir, g->db);
    if (high_workers > 0)
        fprintf(stderr, "jobmgr: %ld of them kept for high-class jobs\n", high_workers);

    int sig = 0;
    while (sigwait(&stop_set, &sig) != 0)
        ;
    fprintf(stderr, "jobmgr: %s: stopping (running jobs get %ld ms to finish)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", drain_ms);
    if ((rc = jm_stop(m, drain_ms)) != JM_OK) {
        code = cli_lib_error(rc, "stopping");
        goto done;
    }
    fprintf(stderr, "jobmgr: stopped\n");
    code = CLI_EXIT_OK;
done:
    jm_close(m);
    jm_engine_close(e);
    return code;
}
