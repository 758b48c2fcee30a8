/*
 * cmd_watch.c: `jobmgr watch`: a live view of the running jobs, one
 * progress bar per job (from jm_job_progress()).
 *
 * On a terminal it redraws one frame in place every --interval ms with ANSI
 * cursor control (home, clear to end of line, clear below), never wider or
 * taller than the window so nothing scrolls; it reads keys without echo and
 * quits on q. When stdout is not a terminal it prints plain lines instead,
 * one snapshot per interval, for logs and pipes. Ctrl-C (SIGINT) and
 * SIGTERM end it with exit 0; the handler only sets a flag.
 *
 * Under the jobs it names the schedules that fire next (not the paused
 * ones), so a quiet view still says when work will come.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

#define WATCH_DEFAULT_INTERVAL_MS 1000
#define WATCH_MIN_INTERVAL_MS 50
#define WATCH_MAX_INTERVAL_MS 3600000
#define WATCH_BAR_CELLS 20
/* The most running jobs one frame fetches; a terminal shows fewer anyway. */
#define WATCH_MAX_JOBS 1000
/* Window size when the terminal does not say. */
#define WATCH_DEFAULT_COLS 80
#define WATCH_DEFAULT_ROWS 24
/* Lines of a frame that are not job rows: title, counts, blank, header,
 * and one for "… and N more"; the next fires' line, when shown, is one
 * more. */
#define WATCH_FRAME_OVERHEAD 5
/* The most schedules whose next fire time a snapshot shows. */
#define WATCH_MAX_SCHEDULES 5

enum { OPT_INTERVAL = CLI_OPT_FIRST_FREE, OPT_ONCE, OPT_TYPE };

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct snapshot {
    jm_job_list *running;
    jm_schedule **schedules; /* every schedule */
    size_t nschedules;
    /* The ones to show, soonest first: not paused, of --type if given. */
    const jm_schedule *fires[WATCH_MAX_SCHEDULES];
    size_t nfires;
    int64_t queued, retrying, now;
} snapshot;

static void snapshot_free(snapshot *s)
{
    jm_job_list_free(s->running);
    jm_schedule_list_free(s->schedules, s->nschedules);
    s->running = NULL;
    s->schedules = NULL;
    s->nschedules = s->nfires = 0;
}

static int count_status(jm_manager *m, const char *type, jm_status s, int64_t *out)
{
    jm_filter f = JM_FILTER_INIT;
    f.statuses = JM_STATUS_BIT(s);
    f.type = type;
    return jm_count(m, &f, out);
}

static int take_snapshot(jm_manager *m, const char *type, snapshot *s)
{
    jm_filter f = JM_FILTER_INIT;
    f.statuses = JM_STATUS_BIT(JM_STATUS_RUNNING);
    f.type = type;
    f.limit = WATCH_MAX_JOBS;
    s->now = cli_now_ms();
    int rc = jm_list(m, &f, &s->running);
    if (rc == JM_OK)
        rc = count_status(m, type, JM_STATUS_QUEUED, &s->queued);
    if (rc == JM_OK)
        rc = count_status(m, type, JM_STATUS_RETRYING, &s->retrying);
    if (rc == JM_OK)
        rc = jm_schedule_list(m, &s->schedules, &s->nschedules);
    if (rc == JM_OK) {
        size_t active = cli_schedules_by_next_fire(s->schedules, s->nschedules);
        for (size_t i = 0; i < active && s->nfires < WATCH_MAX_SCHEDULES; i++)
            if (!type || strcmp(s->schedules[i]->spec.type, type) == 0)
                s->fires[s->nfires++] = s->schedules[i];
    }
    return rc;
}

static int64_t elapsed_ms(const jm_job *j, int64_t now)
{
    return jm_job_started_at(j) > 0 ? now - jm_job_started_at(j) : 0;
}

/* Plain lines: one per running job, or one saying there is none. */
static void print_plain(const snapshot *s)
{
    char when[CLI_TIME_BUF], bar[64], span[32];
    cli_format_time(s->now, when, sizeof when);
    size_t n = jm_job_list_count(s->running);
    if (n == 0)
        printf("%s no running jobs (queued %lld, retrying %lld)\n", when,
               (long long)s->queued, (long long)s->retrying);
    for (size_t i = 0; i < n; i++) {
        const jm_job *j = jm_job_list_at(s->running, i);
        const char *msg = jm_job_message(j);
        printf("%s %s running %s elapsed %s%s%s\n", when, jm_job_id(j),
               cli_progress_bar(jm_job_progress(j), WATCH_BAR_CELLS, bar, sizeof bar),
               cli_format_span(elapsed_ms(j, s->now), span, sizeof span), msg ? " " : "",
               msg ? msg : "");
    }
    if (s->nfires) {
        printf("%s next fires:", when);
        for (size_t i = 0; i < s->nfires; i++) {
            char at[CLI_WHEN_BUF];
            printf("%s %s %s", i ? "," : "", s->fires[i]->spec.name,
                   cli_format_when(s->fires[i]->next_fire_ms, s->now, at, sizeof at));
        }
        putchar('\n');
    }
    fflush(stdout);
}

/* The frame's line of next fires: "next fires: nightly in 4m59s, …". */
static void next_fires_line(const snapshot *s, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "next fires:");
    for (size_t i = 0; i < s->nfires && used < len; i++) {
        const jm_schedule *sc = s->fires[i];
        char span[32];
        int64_t d = sc->next_fire_ms - s->now;
        cli_format_span(d < 0 ? -d : d, span, sizeof span);
        int w = snprintf(buf + used, len - used, "%s %s %s%s", i ? "," : "", sc->spec.name,
                         d < 0 ? "overdue " : "in ", span);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static void window_size(size_t *cols, size_t *rows)
{
    struct winsize ws;
    *cols = WATCH_DEFAULT_COLS;
    *rows = WATCH_DEFAULT_ROWS;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        *cols = ws.ws_col;
        *rows = ws.ws_row;
    }
}

/* Renders one frame into `out` (plain text with newlines, possibly colour). */
static int render_frame(FILE *out, const cli_global *g, const snapshot *s, size_t cols,
                        size_t rows, int keys)
{
    int color = cli_use_color(g);
    char when[CLI_TIME_BUF], line[512], cut[2048];
    size_t n = jm_job_list_count(s->running);
    snprintf(line, sizeof line, "jobmgr watch  %s  %s%s", g->db,
             cli_format_time(s->now, when, sizeof when), keys ? "  (q quits)" : "");
    cli_put_colored(out, color, CLI_COLOR_BOLD, cli_text_cut(line, cols, cut, sizeof cut));
    fputc('\n', out);
    snprintf(line, sizeof line, "running %zu   queued %lld   retrying %lld", n,
             (long long)s->queued, (long long)s->retrying);
    fprintf(out, "%s\n", cli_text_cut(line, cols, cut, sizeof cut));
    if (s->nfires) {
        next_fires_line(s, line, sizeof line);
        fprintf(out, "%s\n", cli_text_cut(line, cols, cut, sizeof cut));
    }
    fputc('\n', out);

    static const char *const headers[] = {"ID", "PROGRESS", "ELAPSED", "NODE", "MESSAGE"};
    cli_table *t = cli_table_new(5, headers);
    if (!t)
        return -1;
    cli_table_align_right(t, 2);
    size_t overhead = WATCH_FRAME_OVERHEAD + (s->nfires ? 1 : 0);
    size_t fit = rows > overhead ? rows - overhead : 1;
    size_t shown = n < fit ? n : fit;
    for (size_t i = 0; i < shown; i++) {
        const jm_job *j = jm_job_list_at(s->running, i);
        char bar[64], span[32];
        const char *cells[] = {jm_job_id(j),
                               cli_progress_bar(jm_job_progress(j), WATCH_BAR_CELLS, bar,
                                                sizeof bar),
                               cli_format_span(elapsed_ms(j, s->now), span, sizeof span),
                               jm_job_node_id(j), jm_job_message(j)};
        cli_color colors[5] = {CLI_COLOR_NONE, CLI_COLOR_CYAN, CLI_COLOR_NONE,
                               CLI_COLOR_DIM, CLI_COLOR_NONE};
        if (cli_table_add(t, cells, colors)) {
            cli_table_free(t);
            return -1;
        }
    }
    cli_table_print(t, out, color, cols);
    cli_table_free(t);
    if (shown < n)
        fprintf(out, "... and %zu more\n", n - shown);
    return 0;
}

/* Draws a frame in place: home, each line cleared to its end, then the rest
 * of the screen cleared, so a shorter frame leaves nothing behind. */
static int draw_frame(const cli_global *g, const snapshot *s, int keys)
{
    size_t cols, rows;
    window_size(&cols, &rows);
    /* Never write the last column: some terminals wrap there. */
    size_t usable = cols > 1 ? cols - 1 : cols;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return -1;
    int rc = render_frame(mem, g, s, usable, rows, keys);
    if (fclose(mem) != 0 || rc != 0) {
        free(text);
        return -1;
    }
    fputs("\033[H", stdout);
    for (const char *p = text; *p; p++) {
        if (*p == '\n')
            fputs("\033[K", stdout);
        fputc(*p, stdout);
    }
    fputs("\033[J", stdout);
    fflush(stdout);
    free(text);
    return 0;
}

/* Waits up to `ms` for a key on stdin (if `keys`) or a stop signal.
 * Returns 1 if the user asked to quit. */
static int wait_for_quit(int ms, int keys)
{
    int64_t deadline = cli_now_ms() + ms;
    for (;;) {
        if (stop_requested)
            return 1;
        int64_t left = deadline - cli_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        int r = poll(keys ? &pfd : NULL, keys ? 1 : 0, (int)left);
        if (r < 0 && errno != EINTR)
            return 0;
        if (r > 0 && (pfd.revents & (POLLIN | POLLHUP))) {
            char buf[64];
            ssize_t got = read(STDIN_FILENO, buf, sizeof buf);
            if (got <= 0)
                return 1; /* the terminal went away */
            for (ssize_t i = 0; i < got; i++)
                if (buf[i] == 'q' || buf[i] == 'Q')
                    return 1;
        }
    }
}

int cli_cmd_watch(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                         {"interval", 1, NULL, OPT_INTERVAL},
                                         {"once", 0, NULL, OPT_ONCE},
                                         {"type", 1, NULL, OPT_TYPE},
                                         {NULL, 0, NULL, 0}};
    long interval = WATCH_DEFAULT_INTERVAL_MS;
    int once = 0;
    const char *type = NULL;
    int c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "watch", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        switch (c) {
        case OPT_INTERVAL:
            if (cli_parse_int(optarg, WATCH_MIN_INTERVAL_MS, WATCH_MAX_INTERVAL_MS, &interval))
                return cli_usage_error("watch", "bad --interval '%s' (%d..%d ms)", optarg,
                                       WATCH_MIN_INTERVAL_MS, WATCH_MAX_INTERVAL_MS);
            break;
        case OPT_ONCE:
            once = 1;
            break;
        case OPT_TYPE:
            if (!cli_valid_type(optarg))
                return cli_usage_error("watch", "bad --type '%s' (two uppercase letters)",
                                       optarg);
            type = optarg;
            break;
        default:
            return cli_usage_error("watch", "unexpected option");
        }
    }
    if (optind < argc)
        return cli_usage_error("watch", "unexpected argument '%s'", argv[optind]);

    jm_manager *m = NULL;
    if ((code = cli_open(g, "watch", NULL, &m)) != CLI_EXIT_OK)
        return code;

    int live = !once && !g->json && isatty(STDOUT_FILENO);
    int keys = live && isatty(STDIN_FILENO);
    struct termios saved;
    int restore_term = 0;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: poll() must wake up */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (keys && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO); /* keys at once, unechoed; ^C still signals */
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
            restore_term = 1;
    }
    if (live)
        fputs("\033[?25l\033[2J", stdout); /* hide the cursor, clear once */

    code = CLI_EXIT_OK;
    for (;;) {
        snapshot s = {0};
        int rc = take_snapshot(m, type, &s);
        if (rc != JM_OK) {
            snapshot_free(&s);
            if (live)
                fputs("\033[?25h\n", stdout);
            live = 0;
            code = cli_lib_error(rc, "watch");
            break;
        }
        if (g->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON *arr = o ? cJSON_AddArrayToObject(o, "running") : NULL;
            for (size_t i = 0; arr && i < jm_job_list_count(s.running); i++) {
                cJSON *jj = cli_job_json(jm_job_list_at(s.running, i));
                if (!jj || !cJSON_AddItemToArray(arr, jj)) {
                    cJSON_Delete(jj);
                    arr = NULL;
                }
            }
            cJSON *fires = arr ? cJSON_AddArrayToObject(o, "next_fires") : NULL;
            for (size_t i = 0; fires && i < s.nfires; i++) {
                const jm_schedule *sc = s.fires[i];
                char at[CLI_TIME_BUF];
                cJSON *f = cJSON_CreateObject();
                if (!f || !cJSON_AddItemToArray(fires, f)) {
                    cJSON_Delete(f);
                    fires = NULL;
                } else if (!cJSON_AddStringToObject(f, "id", sc->id) ||
                           !cJSON_AddStringToObject(f, "name", sc->spec.name) ||
                           !cJSON_AddStringToObject(
                               f, "next_fire", cli_format_time(sc->next_fire_ms, at, sizeof at)) ||
                           !cJSON_AddNumberToObject(f, "next_fire_ms", (double)sc->next_fire_ms)) {
                    fires = NULL;
                }
            }
            if (!fires || !cJSON_AddNumberToObject(o, "queued", (double)s.queued) ||
                !cJSON_AddNumberToObject(o, "retrying", (double)s.retrying)) {
                cJSON_Delete(o);
                o = NULL;
            }
            /* One compact document per line (JSON Lines), so a script can
             * read snapshots as they come. */
            char *text = o ? cJSON_PrintUnformatted(o) : NULL;
            if (text) {
                printf("%s\n", text);
                fflush(stdout);
            } else {
                fprintf(stderr, "jobmgr: watch: out of memory\n");
                code = CLI_EXIT_FAILURE;
            }
            cJSON_free(text);
            cJSON_Delete(o);
        } else if (live) {
            if (draw_frame(g, &s, keys)) {
                code = CLI_EXIT_FAILURE;
                snapshot_free(&s);
                break;
            }
        } else {
            print_plain(&s);
        }
        snapshot_free(&s);
        if (once || code != CLI_EXIT_OK || wait_for_quit((int)interval, keys))
            break;
    }
    if (live)
        fputs("\033[?25h", stdout); /* the cursor back, the last frame stays */
    fflush(stdout);
    if (restore_term)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    jm_close(m);
    return code;
}
