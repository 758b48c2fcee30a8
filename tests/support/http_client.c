/* A small blocking HTTP/1.1 client for the dashboard's tests. */
#define _GNU_SOURCE

#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int tu_http_raw(unsigned port, const char *raw, size_t len, tu_http_resp *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {60, 0}; /* a hung server fails the test, not CI */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    /* The server may answer and close before taking all of a large body. */
    for (size_t sent = 0; sent < len;) {
        ssize_t n = send(fd, raw + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    size_t cap = 8192, got = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (got == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    size_t head_len = end ? (size_t)(end - buf) : got;
    out->head = strndup(buf, head_len);
    const char *body = end ? end + 4 : buf + got;
    out->body_len = (size_t)(buf + got - body);
    out->body = malloc(out->body_len + 1);
    memcpy(out->body, body, out->body_len);
    out->body[out->body_len] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) == 0)
        out->status = atoi(buf + 9);
    free(buf);
    return 0;
}

int tu_http(unsigned port, const char *method, const char *path, const char *headers,
            const char *body, tu_http_resp *out)
{
    size_t blen = body ? strlen(body) : 0;
    char length[96] = "";
    if (body)
        snprintf(length, sizeof length,
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    char *req = NULL;
    int n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n%s%s\r\n%s",
                     method, path, port, headers ? headers : "", length, body ? body : "");
    if (n < 0)
        return -1;
    int rc = tu_http_raw(port, req, (size_t)n, out);
    free(req);
    return rc;
}

const char *tu_http_header(const tu_http_resp *r, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    for (const char *line = r->head; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            snprintf(buf, len, "%.*s", (int)(ll - (size_t)(v - line)), v);
            return buf;
        }
        line = eol ? eol + 2 : NULL;
    }
    return NULL;
}

void tu_http_free(tu_http_resp *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
}
