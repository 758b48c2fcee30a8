/*
 * The HTTP side of the dashboard: the libmicrohttpd daemon, bounded
 * request bodies, who may do what (token, CSRF, read-only, Host), the
 * headers every answer carries, and the routes.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "serve_internal.h"

#define THREADS 4
#define CONNECTION_LIMIT 256
#define CONNECTION_TIMEOUT_S 30
/* Bounds the request line and headers of one connection. */
#define CONNECTION_MEMORY (64 * 1024)

static const char CSP[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                          "base-uri 'none'; form-action 'self'";
/* Cookies are per host, not per port: the name carries the port, so two
 * servers on one host never read or replace each other's. */
static const char COOKIE_NAME_FMT[] = "jm_token_%u";
static const char COOKIE_ATTRS[] = "HttpOnly; SameSite=Strict; Path=/";

/* A request's body, gathered over the handler's calls. */
typedef struct conn_ctx {
    char *body;
    size_t len;
    int too_big;
} conn_ctx;

/* Compares in time that depends only on the secret's length. */
static int same_secret(const char *given, const char *secret)
{
    size_t glen = given ? strlen(given) : 0, slen = strlen(secret);
    unsigned char diff = (unsigned char)(glen != slen);
    for (size_t i = 0; i < slen; i++)
        diff |= (unsigned char)((i < glen ? (unsigned char)given[i] : 0) ^ (unsigned char)secret[i]);
    return given && diff == 0;
}

int dash_random_hex(char *buf, size_t nbytes)
{
    unsigned char raw[128];
    if (nbytes > sizeof raw)
        return -1;
    size_t got = 0;
    while (got < nbytes) {
        ssize_t n = getrandom(raw + got, nbytes - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    for (size_t i = 0; i < nbytes; i++)
        snprintf(buf + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

int dash_read_token(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the token file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[DASH_TOKEN_MAX + 4] = "";
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    size_t n = ok ? strlen(line) : 0;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
        line[--n] = '\0';
    size_t start = 0;
    while (line[start] == ' ' || line[start] == '\t')
        start++;
    n -= start;
    int printable = 1;
    for (size_t i = start; line[i]; i++)
        printable &= line[i] > 0x20 && line[i] < 0x7f && line[i] != ';' && line[i] != ',';
    if (n < DASH_TOKEN_MIN || n > DASH_TOKEN_MAX || !printable || n >= len) {
        snprintf(err, errlen,
                 "the token in %s must be %d to %d printable characters without spaces, "
                 "';' or ','",
                 path, DASH_TOKEN_MIN, DASH_TOKEN_MAX);
        return -1;
    }
    memcpy(buf, line + start, n + 1);
    return 0;
}

/* ---- Who may do what ------------------------------------------------------- */

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* A loopback server answers only to loopback host names, so a page from
 * elsewhere cannot reach it by rebinding its own name to 127.0.0.1. */
static int host_allowed(const dash_server *s, struct MHD_Connection *c)
{
    if (!s->loopback)
        return 1;
    const char *host = header(c, MHD_HTTP_HEADER_HOST);
    if (!host)
        return 0;
    size_t n = strlen(host);
    const char *colon = strrchr(host, ':');
    if (colon && !strchr(colon, ']'))
        n = (size_t)(colon - host);
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < 3; i++)
        if (strlen(names[i]) == n && strncmp(host, names[i], n) == 0)
            return 1;
    return n > 4 && strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == n;
}

/* Whether the request carries the token: 2 by header, 1 by cookie, 0 not. */
static int credential(const dash_server *s, struct MHD_Connection *c)
{
    const char *auth = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && strncmp(auth, "Bearer ", 7) == 0)
        return same_secret(auth + 7, s->token) ? 2 : 0;
    const char *cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, s->cookie_name);
    return same_secret(cookie, s->token) ? 1 : 0;
}

/* A cross-site POST carries its own Origin; ours carries our Host. */
static int origin_allowed(struct MHD_Connection *c)
{
    const char *origin = header(c, "Origin");
    const char *host = header(c, MHD_HTTP_HEADER_HOST);
    if (!origin)
        return 1;
    return host && strncmp(origin, "http://", 7) == 0 && strcmp(origin + 7, host) == 0;
}

/* ---- Routes ------------------------------------------------------------------ */

static const dash_asset *find_asset(const char *path)
{
    for (size_t i = 0; i < dash_nassets; i++)
        if (strcmp(dash_assets[i].path, path) == 0)
            return &dash_assets[i];
    return NULL;
}

static void serve_static(dash_server *s, const char *path, dash_resp *r)
{
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        r->status = 200;
        r->body = s->index_html;
        r->len = s->index_len;
        r->is_static = 1;
        r->type = "text/html; charset=utf-8";
        return;
    }
    const dash_asset *a = find_asset(path);
    if (!a) {
        dash_error(r, 404, "not_found", "no such page");
        return;
    }
    r->status = 200;
    r->body = (char *)a->data;
    r->len = a->len;
    r->is_static = 1;
    r->type = a->type;
}

static void login(dash_server *s, const dash_req *rq, dash_resp *r)
{
    cJSON *body = dash_body_object(rq, r);
    if (!body)
        return;
    const char *token = NULL;
    if (dash_member_text(body, "token", &token, r) == 0) {
        if (!same_secret(token, s->token)) {
            dash_error(r, 401, "unauthorized", "wrong token");
        } else {
            static _Thread_local char cookie[sizeof COOKIE_ATTRS + DASH_TOKEN_MAX + 64];
            snprintf(cookie, sizeof cookie, "%s=%s; %s", s->cookie_name, s->token, COOKIE_ATTRS);
            r->status = 204;
            r->cookie = cookie;
        }
    }
    cJSON_Delete(body);
}

static void session(const dash_server *s, int authed, dash_resp *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddBoolToObject(o, "read_only", s->read_only) ||
        !cJSON_AddBoolToObject(o, "authenticated", authed) ||
        !cJSON_AddBoolToObject(o, "token_required_for_reads", !s->loopback)) {
        cJSON_Delete(o);
        dash_nomem(r);
        return;
    }
    dash_json(r, 200, o);
}

/* Strips `prefix` off `path`: the rest ("" or "/…"), or NULL. */
static const char *under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) || (path[n] != '\0' && path[n] != '/'))
        return NULL;
    return path + n;
}

static void dispatch(dash_server *s, const dash_req *rq, dash_resp *r)
{
    const char *path = rq->path, *rest;
    int post = strcmp(rq->method, "POST") == 0;
    if (!post && strcmp(rq->method, "GET") && strcmp(rq->method, "HEAD")) {
        dash_error(r, 405, "method_not_allowed", "GET, HEAD or POST");
        return;
    }
    if (strlen(path) > DASH_PATH_MAX) {
        dash_error(r, 414, "uri_too_long", "the path is longer than %d bytes", DASH_PATH_MAX);
        return;
    }
    if (!host_allowed(s, rq->conn)) {
        dash_error(r, 421, "misdirected", "this server answers to localhost names only");
        return;
    }
    if (strncmp(path, "/api/", 5) && strcmp(path, "/metrics")) {
        if (post)
            dash_error(r, 405, "method_not_allowed", "pages take GET");
        else
            serve_static(s, path, r);
        return;
    }
    if (post && !origin_allowed(rq->conn)) {
        dash_error(r, 403, "forbidden", "cross-origin request");
        return;
    }
    int cred = credential(s, rq->conn);
    if (strcmp(path, "/api/login") == 0 || strcmp(path, "/api/logout") == 0) {
        if (!post) {
            dash_error(r, 405, "method_not_allowed", "POST");
        } else if (strcmp(path, "/api/login") == 0) {
            login(s, rq, r);
        } else {
            static _Thread_local char cookie[sizeof COOKIE_ATTRS + 64];
            snprintf(cookie, sizeof cookie, "%s=; %s; Max-Age=0", s->cookie_name, COOKIE_ATTRS);
            r->status = 204;
            r->cookie = cookie;
        }
        return;
    }
    if (strcmp(path, "/api/session") == 0 && !post) {
        session(s, cred != 0, r);
        return;
    }
    if (!cred && (post || !s->loopback)) {
        dash_error(r, 401, "unauthorized", "this needs the server's token");
        return;
    }
    if (post && s->read_only) {
        dash_error(r, 403, "read_only", "the server is read-only");
        return;
    }
    if (post && cred == 1 && !same_secret(header(rq->conn, "X-CSRF-Token"), s->csrf)) {
        dash_error(r, 403, "csrf", "missing or wrong X-CSRF-Token");
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        if (post)
            dash_error(r, 405, "method_not_allowed", "GET");
        else
            dash_route_metrics(s, rq, r);
    } else if (strcmp(path, "/api/overview") == 0 && !post) {
        dash_route_overview(s, rq, r);
    } else if ((rest = under(path, "/api/jobs"))) {
        dash_route_jobs(s, rq, rest, r);
    } else if ((rest = under(path, "/api/schedules"))) {
        dash_route_schedules(s, rq, rest, r);
    } else if (strcmp(path, "/api/policies") == 0) {
        dash_route_policies(s, rq, r);
    } else if ((rest = under(path, "/api/pauses"))) {
        dash_route_pauses(s, rq, rest, r);
    } else {
        dash_error(r, 404, "not_found", "no such path");
    }
}

/* ---- libmicrohttpd glue ------------------------------------------------------ */

static enum MHD_Result send_resp(struct MHD_Connection *c, dash_resp *r, int api)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_COPY);
    if (!r->is_static)
        cJSON_free(r->body);
    r->body = NULL;
    if (!resp)
        return MHD_NO;
    int ok = MHD_add_response_header(resp, "Content-Security-Policy", CSP) == MHD_YES &&
             MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES &&
             MHD_add_response_header(resp, "X-Frame-Options", "DENY") == MHD_YES &&
             MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") == MHD_YES &&
             MHD_add_response_header(resp, "Cache-Control", api ? "no-store" : "no-cache") ==
                 MHD_YES &&
             (!r->type ||
              MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type) == MHD_YES) &&
             (!r->cookie ||
              MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->cookie) == MHD_YES);
    enum MHD_Result ret = ok ? MHD_queue_response(c, r->status, resp) : MHD_NO;
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    dash_server *s = cls;
    conn_ctx *cx = *con_cls;
    dash_resp r = {0};
    if (!cx) {
        if (!(cx = calloc(1, sizeof *cx)))
            return MHD_NO;
        *con_cls = cx;
        const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t n = 0;
        if (cl && (dash_parse_i64(cl, 0, INT64_MAX, &n) || n > DASH_BODY_MAX)) {
            /* Refused before reading it. */
            cx->too_big = 1;
            dash_error(&r, 413, "too_large", "request bodies are at most %d bytes",
                       DASH_BODY_MAX);
            return send_resp(c, &r, 1);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cx->too_big && cx->len + *upload_size > DASH_BODY_MAX) {
            cx->too_big = 1;
            free(cx->body);
            cx->body = NULL;
        }
        if (!cx->too_big) {
            char *b = realloc(cx->body, cx->len + *upload_size + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + cx->len, upload, *upload_size);
            cx->len += *upload_size;
            b[cx->len] = '\0';
            cx->body = b;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cx->too_big) {
        dash_error(&r, 413, "too_large", "request bodies are at most %d bytes", DASH_BODY_MAX);
        return send_resp(c, &r, 1);
    }
    dash_req rq = {c, method, url, cx->body ? cx->body : "", cx->len};
    dispatch(s, &rq, &r);
    return send_resp(c, &r, strncmp(url, "/api/", 5) == 0);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    conn_ctx *cx = *con_cls;
    if (cx) {
        free(cx->body);
        free(cx);
        *con_cls = NULL;
    }
}

/* ---- Start and stop ---------------------------------------------------------- */

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *in6 = (const void *)sa;
    return sa->sa_family == AF_INET6 && memcmp(&in6->sin6_addr, &in6addr_loopback,
                                               sizeof in6addr_loopback) == 0;
}

/* "HOST:PORT" or "[V6]:PORT" into an address. */
static int resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
                   size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hn = colon ? (size_t)(colon - listen) : 0;
    if (hn > 1 && listen[0] == '[' && listen[hn - 1] == ']') {
        h++;
        hn -= 2;
    }
    int64_t port;
    if (!colon || hn == 0 || hn >= sizeof host || dash_parse_i64(colon + 1, 0, 65535, &port)) {
        snprintf(err, errlen, "--listen takes HOST:PORT (127.0.0.1:8080, [::1]:8080), not %s",
                 listen);
        return -1;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int grc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (grc || !ai || ai->ai_addrlen > sizeof *ss) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, grc ? gai_strerror(grc) : "none");
        if (ai)
            freeaddrinfo(ai);
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int dash_listen_is_loopback(const char *listen, int *loopback, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (resolve(listen, &ss, &sslen, err, errlen))
        return -1;
    *loopback = is_loopback((struct sockaddr *)&ss);
    return 0;
}

/* A listening socket on `ss`; its port into *port. -1 with errno set. */
static int listen_on(const struct sockaddr_storage *ss, socklen_t sslen, unsigned *port)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) ||
        bind(fd, (const struct sockaddr *)ss, sslen) || listen(fd, SOMAXCONN) ||
        getsockname(fd, (struct sockaddr *)&bound, &blen)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                               : ((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

static int fill_index(dash_server *s)
{
    const dash_asset *a = find_asset("/index.html");
    static const char mark[] = "{{CSRF}}";
    if (!a)
        return -1;
    const char *at = memmem(a->data, a->len, mark, sizeof mark - 1);
    size_t head = at ? (size_t)(at - (const char *)a->data) : a->len;
    size_t tail = at ? a->len - head - (sizeof mark - 1) : 0;
    size_t csrf = at ? strlen(s->csrf) : 0;
    if (!(s->index_html = malloc(head + csrf + tail + 1)))
        return -1;
    memcpy(s->index_html, a->data, head);
    memcpy(s->index_html + head, s->csrf, csrf);
    memcpy(s->index_html + head + csrf, a->data + a->len - tail, tail);
    s->index_len = head + csrf + tail;
    s->index_html[s->index_len] = '\0';
    return 0;
}

int dash_start(const dash_config *cfg, dash_server **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg->m || !cfg->token || strlen(cfg->token) < DASH_TOKEN_MIN ||
        strlen(cfg->token) > DASH_TOKEN_MAX) {
        snprintf(err, errlen, "a manager and a token of %d to %d characters are required",
                 DASH_TOKEN_MIN, DASH_TOKEN_MAX);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (resolve(cfg->listen ? cfg->listen : "127.0.0.1:8080", &ss, &sslen, err, errlen))
        return -1;
    dash_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->m = cfg->m;
    s->reader = cfg->reader ? cfg->reader : cfg->m;
    s->read_only = cfg->read_only;
    s->loopback = is_loopback((struct sockaddr *)&ss);
    if (!s->loopback && !cfg->token_given) {
        snprintf(err, errlen, "listening beyond loopback needs --token-file");
        goto fail;
    }
    snprintf(s->token, sizeof s->token, "%s", cfg->token);
    if (dash_random_hex(s->csrf, 32) || fill_index(s)) {
        snprintf(err, errlen, "cannot prepare the page (no randomness or no memory)");
        goto fail;
    }
    if (dash_overview_start(s)) {
        snprintf(err, errlen, "cannot start the overview's thread");
        goto fail;
    }
    /* Bound here, so the port (and the cookie named after it) is known
     * before the first request can arrive. */
    int fd = listen_on(&ss, sslen, &s->port);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen ? cfg->listen : "127.0.0.1:8080",
                 strerror(errno));
        goto fail;
    }
    snprintf(s->cookie_name, sizeof s->cookie_name, COOKIE_NAME_FMT, s->port);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)THREADS, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->daemon) {
        close(fd);
        snprintf(err, errlen, "cannot start the HTTP server on %s",
                 cfg->listen ? cfg->listen : "127.0.0.1:8080");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    dash_stop(s);
    return -1;
}

unsigned dash_port(const dash_server *d)
{
    return d->port;
}

int dash_is_loopback(const dash_server *d)
{
    return d->loopback;
}

void dash_stop(dash_server *d)
{
    if (!d)
        return;
    if (d->daemon)
        MHD_stop_daemon(d->daemon);
    dash_overview_stop(d);
    free(d->index_html);
    free(d);
}
