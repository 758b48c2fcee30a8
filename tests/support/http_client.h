/*
 * A small blocking HTTP/1.1 client for the tests of `jobmgr serve`: one
 * request per connection, sent as given, so a test can also send what no
 * well-behaved client would.
 */
#ifndef JM_TEST_HTTP_CLIENT_H
#define JM_TEST_HTTP_CLIENT_H

#include <stddef.h>

typedef struct tu_http_resp {
    int status;        /* 0 if no status line came back */
    char *head;        /* the status line and headers, NUL-terminated */
    char *body;        /* NUL-terminated */
    size_t body_len;
} tu_http_resp;

/* Sends `raw` (len bytes) to 127.0.0.1:port and reads the answer until the
 * server closes. 0, or -1 if the connection failed. */
int tu_http_raw(unsigned port, const char *raw, size_t len, tu_http_resp *out);

/* Sends METHOD PATH with Host, Connection: close, `headers` (each line
 * ending "\r\n", may be NULL) and `body` (may be NULL). 0 or -1. */
int tu_http(unsigned port, const char *method, const char *path, const char *headers,
            const char *body, tu_http_resp *out);

/* The value of header `name` in the answer (case-insensitive), copied into
 * buf; NULL if absent. */
const char *tu_http_header(const tu_http_resp *r, const char *name, char *buf, size_t len);

void tu_http_free(tu_http_resp *r);

#endif
