/*
 * The dashboard scenario's server: the real tool (JM_BENCH_CLI, built with
 * jm-bench) run as `jobmgr serve` in a child process on an ephemeral port
 * of 127.0.0.1, with a token file of its own. Starting it (and reading the
 * address it prints), stopping it, the last line of its stderr for a
 * failure's message, and the CPU time it has used. It sends no requests.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dash_bench.h"

#define START_TIMEOUT_MS 120000
#define STOP_TIMEOUT_MS 30000

#ifdef JM_BENCH_CLI
const char bdash_cli_path[] = JM_BENCH_CLI;
#else
const char bdash_cli_path[] = "";
#endif

extern char **environ;

/* The last line of the server's stderr, for a failure's message. */
static const char *log_tail(const bdash_server *sv, char *buf, size_t len)
{
    FILE *f = fopen(sv->log, "r");
    char line[512];
    snprintf(buf, len, "nothing");
    while (f && fgets(line, sizeof line, f))
        if (line[0] != '\n')
            snprintf(buf, len, "%.*s", (int)strcspn(line, "\n"), line);
    if (f)
        fclose(f);
    return buf;
}

int bdash_write_token(const char *path, char *token, size_t len)
{
    unsigned char raw[BDASH_TOKEN_BYTES];
    if (len < BDASH_TOKEN_SIZE || getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return 1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return 1;
    int bad = dprintf(fd, "%s\n", token) < 0;
    return close(fd) != 0 || bad;
}

/* Reads the "listening on" line from the child's stdout. */
static int read_port(bdash_server *sv)
{
    char buf[512];
    size_t have = 0;
    int64_t deadline = bu_mono_ns() + (int64_t)START_TIMEOUT_MS * 1000000;
    while (have < sizeof buf - 1) {
        int left_ms = (int)((deadline - bu_mono_ns()) / 1000000);
        struct pollfd p = {sv->out, POLLIN, 0};
        if (left_ms <= 0 || poll(&p, 1, left_ms) <= 0)
            break;
        ssize_t k = read(sv->out, buf + have, sizeof buf - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        buf[have] = '\0';
        const char *at = strstr(buf, "listening on http://");
        if (at && strchr(at, '\n')) {
            char host[64];
            if (sscanf(at, "listening on http://%63[^:]:%u/", host, &sv->port) == 2 && sv->port)
                return 0;
            break;
        }
    }
    char tail[256];
    bench_fail(BDASH_SCN, "the server printed no address within %d s: '%.*s'; its stderr: %s",
               START_TIMEOUT_MS / 1000, (int)have, have ? buf : "",
               log_tail(sv, tail, sizeof tail));
    return 1;
}

int bdash_start_server(const char *db, const char *token_file, bdash_server *sv)
{
    int fds[2];
    sv->pid = -1;
    sv->out = -1;
    if (pipe(fds) != 0) {
        bench_fail(BDASH_SCN, "pipe: %s", strerror(errno));
        return 1;
    }
    /* Close-on-exec, so the child gets only the dup2'ed write end. */
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, sv->log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    char *argv[] = {(char *)bdash_cli_path, "serve", "--db", (char *)db, "--listen", "127.0.0.1:0",
                    "--token-file", (char *)token_file, NULL};
    int rc = posix_spawn(&sv->pid, bdash_cli_path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    sv->out = fds[0];
    if (rc != 0) {
        sv->pid = -1;
        bench_fail(BDASH_SCN, "starting %s: %s", bdash_cli_path, strerror(rc));
        return 1;
    }
    return read_port(sv);
}

/* SIGTERM, then waits; 0 if it exited with status 0 in time. */
int bdash_stop_server(bdash_server *sv)
{
    int bad = 0;
    if (sv->pid > 0) {
        kill(sv->pid, SIGTERM);
        int status = 0;
        int64_t deadline = bu_mono_ns() + (int64_t)STOP_TIMEOUT_MS * 1000000;
        pid_t got;
        while ((got = waitpid(sv->pid, &status, WNOHANG)) == 0 && bu_mono_ns() < deadline)
            bu_sleep_us(10000);
        if (got == 0) {
            kill(sv->pid, SIGKILL);
            waitpid(sv->pid, &status, 0);
            bench_fail(BDASH_SCN, "the server did not stop within %d s of SIGTERM",
                       STOP_TIMEOUT_MS / 1000);
            bad = 1;
        } else if (got < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char tail[256];
            bench_fail(BDASH_SCN, "the server ended with %s %d after SIGTERM; its stderr: %s",
                       got > 0 && WIFSIGNALED(status) ? "signal" : "status",
                       got > 0 && WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                       log_tail(sv, tail, sizeof tail));
            bad = 1;
        }
        sv->pid = -1;
    }
    if (sv->out >= 0)
        close(sv->out);
    sv->out = -1;
    return bad;
}

/* User + system CPU seconds of a process, from /proc/PID/stat; < 0 if
 * unreadable. */
double bdash_proc_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields count from
     * the last ')'. utime and stime are fields 14 and 15. */
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}
