/*
 * The dashboard scenario's HTTP client (http_get.h): a blocking socket,
 * one request written whole, the response read into one growing buffer
 * and framed by its Content-Length (or by the server closing, when it
 * sends none). A reused connection the server has closed meanwhile is
 * opened again once, as browsers do. It times nothing itself.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include "http_get.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The first read size; the buffer doubles from there as a body needs. */
#define HTTP_BUF_START (64 * 1024)
#define HTTP_REQUEST_MAX 4096
#define HTTP_BEARER_MAX 300

struct http_conn {
    char ip[INET_ADDRSTRLEN];
    unsigned port;
    char bearer[HTTP_BEARER_MAX];
    double timeout_s;
    int fd;       /* -1 while not connected */
    int used;     /* a request has gone over this socket already */
    char *buf;
    size_t cap;
    char err[256];
};

static int fail(http_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(http_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -1;
}

static void disconnect(http_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->used = 0;
}

http_conn *http_new(const char *ip, unsigned port, const char *bearer, double timeout_s)
{
    http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    snprintf(c->ip, sizeof c->ip, "%s", ip);
    snprintf(c->bearer, sizeof c->bearer, "%s", bearer ? bearer : "");
    c->port = port;
    c->timeout_s = timeout_s;
    c->fd = -1;
    c->cap = HTTP_BUF_START;
    if (!(c->buf = malloc(c->cap))) {
        free(c);
        return NULL;
    }
    return c;
}

static int connect_now(http_conn *c)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)c->port);
    if (inet_pton(AF_INET, c->ip, &sa.sin_addr) != 1)
        return fail(c, "not an IPv4 address: %s", c->ip);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(c, "socket: %s", strerror(errno));
    struct timeval tv = {(time_t)c->timeout_s,
                         (suseconds_t)((c->timeout_s - (double)(time_t)c->timeout_s) * 1e6)};
    int one = 1;
    /* Requests go out in one write; no delay waiting to fill a segment. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        return fail(c, "connect %s:%u: %s", c->ip, c->port, strerror(e));
    }
    c->fd = fd;
    c->used = 0;
    return 0;
}

static int send_all(http_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return fail(c, "send: %s", k < 0 ? strerror(errno) : "nothing sent");
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int grow(http_conn *c, size_t need)
{
    if (need <= c->cap)
        return 0;
    size_t cap = c->cap;
    while (cap < need)
        cap *= 2;
    char *b = realloc(c->buf, cap);
    if (!b)
        return fail(c, "out of memory for a %zu-byte response", need);
    c->buf = b;
    c->cap = cap;
    return 0;
}

/* Reads more into buf at *have: bytes read, 0 at the end of the stream,
 * -1 on error. */
static ssize_t read_more(http_conn *c, size_t *have)
{
    if (*have + 1 >= c->cap && grow(c, c->cap * 2))
        return -1;
    for (;;) {
        ssize_t k = recv(c->fd, c->buf + *have, c->cap - *have - 1, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return fail(c, "recv: %s", errno == EAGAIN || errno == EWOULDBLOCK
                                           ? "timed out"
                                           : strerror(errno));
        *have += (size_t)k;
        return k;
    }
}

/* The value of header `name` within head[0..len), or NULL. */
static const char *find_header(const char *head, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2] != '\r';
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            const char *v = h + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *end = strstr(v, "\r\n");
            *vlen = end ? (size_t)(end - v) : strlen(v);
            return v;
        }
    }
    return NULL;
}

/* Reads one response. *closed: the stream ended before any byte came. */
static int read_response(http_conn *c, http_response *out, int *closed)
{
    size_t have = 0;
    char *end = NULL;
    *closed = 0;
    while (!end) {
        ssize_t k = read_more(c, &have);
        if (k < 0)
            return -1;
        if (k == 0) {
            *closed = have == 0;
            return fail(c, "the server closed the connection %s",
                        have ? "within a response head" : "before answering");
        }
        c->buf[have] = '\0';
        end = strstr(c->buf, "\r\n\r\n");
        if (!end && have > HTTP_HEAD_MAX)
            return fail(c, "a response head over %d bytes", HTTP_HEAD_MAX);
    }
    size_t head = (size_t)(end - c->buf) + 4;
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.%*1[01] %3d", &status) != 1)
        return fail(c, "not an HTTP/1.x response: %.40s", c->buf);
    /* Header lookups stop at the blank line, inside the NUL-ended head. */
    char saved = c->buf[head];
    c->buf[head] = '\0';
    size_t vlen = 0;
    const char *te = find_header(c->buf, "Transfer-Encoding", &vlen);
    const char *cl = find_header(c->buf, "Content-Length", &vlen);
    long long length = cl ? strtoll(cl, NULL, 10) : -1;
    const char *conn = find_header(c->buf, "Connection", &vlen);
    int keep = !(conn && vlen == 5 && strncasecmp(conn, "close", 5) == 0);
    c->buf[head] = saved;
    if (te)
        return fail(c, "a Transfer-Encoding body, which this client does not read");
    if (length > HTTP_BODY_MAX)
        return fail(c, "a body of %lld bytes, over %d", length, HTTP_BODY_MAX);
    if (length >= 0) {
        if (grow(c, head + (size_t)length + 1))
            return -1;
        while (have < head + (size_t)length) {
            ssize_t k = read_more(c, &have);
            if (k <= 0)
                return k < 0 ? -1 : fail(c, "the server closed the connection within a body");
        }
    } else {
        /* No length: the body runs to the end of the stream. */
        ssize_t k;
        while ((k = read_more(c, &have)) > 0)
            if (have - head > HTTP_BODY_MAX)
                return fail(c, "a body over %d bytes", HTTP_BODY_MAX);
        if (k < 0)
            return -1;
        length = (long long)(have - head);
        keep = 0;
    }
    c->buf[head + (size_t)length] = '\0';
    out->status = status;
    out->body = c->buf + head;
    out->len = (size_t)length;
    if (!keep)
        disconnect(c);
    return 0;
}

int http_get(http_conn *c, const char *path, http_response *out)
{
    char req[HTTP_REQUEST_MAX];
    int n;
    if (c->bearer[0])
        n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%u\r\nAuthorization: Bearer %s\r\n"
                     "Accept: */*\r\n\r\n",
                     path, c->ip, c->port, c->bearer);
    else
        n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%u\r\nAccept: */*\r\n\r\n",
                     path, c->ip, c->port);
    if (n < 0 || (size_t)n >= sizeof req)
        return fail(c, "a request over %d bytes", HTTP_REQUEST_MAX);
    /* A reused connection may have been closed by the server while idle:
     * that, and only that, earns one more try on a new one. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = c->fd >= 0 && c->used;
        if (c->fd < 0 && connect_now(c))
            return -1;
        int closed = 0, sent = send_all(c, req, (size_t)n) == 0;
        if (sent && read_response(c, out, &closed) == 0) {
            if (c->fd >= 0)
                c->used = 1;
            return 0;
        }
        disconnect(c);
        if (!reused || (sent && !closed))
            return -1;
    }
    return -1;
}

const char *http_error(const http_conn *c)
{
    return c->err;
}

void http_close(http_conn *c)
{
    if (!c)
        return;
    disconnect(c);
    free(c->buf);
    free(c);
}
