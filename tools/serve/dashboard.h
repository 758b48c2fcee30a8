/*
 * dashboard.h: the web dashboard behind `jobmgr serve`.
 *
 * An HTTP server (libmicrohttpd, its own threads) over an open manager: the
 * page and its assets, the JSON API under /api/ and /metrics. It uses the
 * public API only, like the rest of the tool. The HTTP contract is in
 * docs/dashboard.md.
 */
#ifndef JOBMGR_DASHBOARD_H
#define JOBMGR_DASHBOARD_H

#include <stddef.h>

#include <jobmgr.h>

/* The bounds of a token read from --token-file. */
#define DASH_TOKEN_MIN 16
#define DASH_TOKEN_MAX 256

typedef struct dash_config {
    jm_manager *m;     /* the manager the server reads and steers; borrowed */
    jm_manager *reader; /* a second manager on the same database for the
                           snapshots, so counting a large table holds up no
                           request; NULL: m. Borrowed */
    const char *listen; /* "HOST:PORT" ("[::1]:8080" for IPv6); port 0 picks one */
    const char *token; /* the secret every mutating request needs; required */
    int read_only;     /* refuse every action */
    int token_given;   /* the operator chose the token; needed beyond loopback */
} dash_config;

typedef struct dash_server dash_server;

/* Starts serving. On failure returns -1 with the reason in err. */
int dash_start(const dash_config *cfg, dash_server **out, char *err, size_t errlen);

/* The port the server listens on (the one picked when cfg->listen said 0). */
unsigned dash_port(const dash_server *d);

/* Whether the server listens on a loopback address only. */
int dash_is_loopback(const dash_server *d);

/* Whether --listen's address is a loopback one; -1 with the reason in err
 * if it is malformed or does not resolve. */
int dash_listen_is_loopback(const char *listen, int *loopback, char *err, size_t errlen);

/* Stops serving: waits for requests in flight, then frees everything.
 * The manager stays open. NULL is fine. */
void dash_stop(dash_server *d);

/* Fills buf with a fresh random token (2 * nbytes hex digits); -1 if the
 * system gave no randomness. buf holds at least 2 * nbytes + 1 bytes. */
int dash_random_hex(char *buf, size_t nbytes);

/* Reads a token file: its first line, trimmed. -1 with the reason in err
 * if unreadable or not DASH_TOKEN_MIN..DASH_TOKEN_MAX printable characters. */
int dash_read_token(const char *path, char *buf, size_t len, char *err, size_t errlen);

#endif
