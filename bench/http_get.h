/*
 * A tiny blocking HTTP/1.1 client for the dashboard scenario: GET only,
 * one request at a time on a keep-alive connection to a numeric IPv4
 * address, bodies framed by Content-Length. It is what a benchmark needs
 * to time a server from outside, not a general client: no TLS, no
 * redirects, no chunked bodies (answered as an error), no pipelining.
 */
#ifndef JM_BENCH_HTTP_GET_H
#define JM_BENCH_HTTP_GET_H

#include <stddef.h>

/* The largest response head (status line and headers) accepted. */
#define HTTP_HEAD_MAX (16 * 1024)
/* The largest body accepted. */
#define HTTP_BODY_MAX (64 * 1024 * 1024)

typedef struct http_conn http_conn;

/* One response. body is NUL-terminated (len excludes the NUL) and owned
 * by the connection: valid until its next request or http_close(). */
typedef struct http_response {
    int status;
    const char *body;
    size_t len;
} http_response;

/* A connection to ip:port (opened at the first request), each read or
 * write waiting at most timeout_s; `bearer` (may be NULL) is sent as
 * "Authorization: Bearer ..." with every request. NULL when out of
 * memory. */
http_conn *http_new(const char *ip, unsigned port, const char *bearer, double timeout_s);
/* GETs `path` ("/api/jobs?limit=5"), reconnecting first if the server
 * closed the connection. 0 on success (any HTTP status); -1 on a network
 * or framing error, described by http_error(). */
int http_get(http_conn *c, const char *path, http_response *out);
/* What the last failed call went wrong on. */
const char *http_error(const http_conn *c);
/* Closes the socket and frees everything; NULL is fine. */
void http_close(http_conn *c);

#endif
