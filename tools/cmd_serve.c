/*
 * `jobmgr serve`: the web dashboard. Opens the manager, starts the HTTP
 * server (tools/serve/) and waits for SIGINT or SIGTERM; the server's
 * threads never see those signals, so stopping is one orderly path.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "serve/dashboard.h"

enum { OPT_LISTEN = CLI_OPT_FIRST_FREE, OPT_TOKEN_FILE, OPT_READ_ONLY };

/* The host part of --listen, for the address printed at start. */
static void print_address(const char *listen, unsigned port)
{
    const char *colon = strrchr(listen, ':');
    int host_len = colon ? (int)(colon - listen) : (int)strlen(listen);
    printf("jobmgr serve: listening on http://%.*s:%u/\n", host_len, listen, port);
    fflush(stdout);
}

int cli_cmd_serve(cli_global *g, int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_LONG_OPTIONS,
                                         {"listen", 1, NULL, OPT_LISTEN},
                                         {"token-file", 1, NULL, OPT_TOKEN_FILE},
                                         {"read-only", 0, NULL, OPT_READ_ONLY},
                                         {NULL, 0, NULL, 0}};
    const char *listen = "127.0.0.1:8080", *token_file = NULL;
    int read_only = 0, c, code = -1;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (cli_global_option(g, "serve", c, optarg, argv, &code)) {
            if (code >= 0)
                return code;
            continue;
        }
        if (c == OPT_LISTEN)
            listen = optarg;
        else if (c == OPT_TOKEN_FILE)
            token_file = optarg;
        else if (c == OPT_READ_ONLY)
            read_only = 1;
        else
            return cli_usage_error("serve", "unexpected option");
    }
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);

    char token[DASH_TOKEN_MAX + 1], err[512];
    int loopback = 0;
    if (dash_listen_is_loopback(listen, &loopback, err, sizeof err))
        return cli_usage_error("serve", "%s", err);
    if (!loopback && !token_file)
        return cli_usage_error("serve", "listening beyond loopback needs --token-file");
    if (token_file && dash_read_token(token_file, token, sizeof token, err, sizeof err))
        return cli_usage_error("serve", "%s", err);
    if (!token_file && dash_random_hex(token, 16)) {
        fprintf(stderr, "jobmgr: serve: no randomness for a token\n");
        return CLI_EXIT_FAILURE;
    }

    /* Blocked before any thread starts, so only sigwait() below takes them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    jm_manager *m = NULL, *reader = NULL;
    if ((code = cli_open(g, "serve", NULL, &m)) != CLI_EXIT_OK)
        return code;
    if ((code = cli_open(g, "serve", NULL, &reader)) != CLI_EXIT_OK) {
        jm_close(m);
        return code;
    }
    dash_config cfg = {m, reader, listen, token, read_only, token_file != NULL};
    dash_server *d = NULL;
    if (dash_start(&cfg, &d, err, sizeof err)) {
        fprintf(stderr, "jobmgr: serve: %s\n", err);
        jm_close(reader);
        jm_close(m);
        return CLI_EXIT_FAILURE;
    }
    if (!token_file)
        fprintf(stderr, "jobmgr serve: token: %s\n", token);
    print_address(listen, dash_port(d));
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "jobmgr serve: stopping\n");
    dash_stop(d);
    jm_close(reader);
    jm_close(m);
    return CLI_EXIT_OK;
}
