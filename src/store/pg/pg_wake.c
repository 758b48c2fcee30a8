/*
 * Wake-ups across processes through PostgreSQL: each handle has a
 * connection of its own that LISTENs on the schema's channel while a
 * watcher waits (wake_listen: the server queues every notification for
 * each listener until it reads it, so a listener nobody reads would hold
 * the queue back for all); a post is a NOTIFY (the store's inserts send
 * their own, pg_write.c), and a sleeper polls the connection's socket. As with the SQLite
 * store's shared counter, every post counts (the handle's sequence moves)
 * but a post of this process never cuts a sleeper of this process short:
 * a notification carries its process's token, and only another process's
 * ends a sleep at once (the caller wakes its own sleepers itself).
 *
 * The handle is used from any thread: a mutex guards the connection, and
 * is never held while a sleeper sleeps in poll(); a pipe ends those sleeps
 * early (an interrupt, a notification another thread read, a connection
 * dropped or made). A lost connection is made again, with backoff, by
 * later calls; while it is down a post does nothing and a wait sleeps its
 * timeout, so managers poll as they always could. Not here: waking this
 * process's own sleepers, and any delivery guarantee (a notification sent
 * while the connection was down is lost; the reconnect counts as a post).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "pg_internal.h"

/* Reconnect backoff: from 250 ms, doubling, at most 10 s between tries. */
#define RECONNECT_FIRST_MS 250
#define RECONNECT_MAX_MS 10000
/* How long a post waits for the server before it gives the connection up. */
#define POST_TIMEOUT_MS 2000
#define CHANNEL_SIZE JM_PG_CHANNEL_SIZE
#define TOKEN_SIZE JM_PG_TOKEN_SIZE

struct jm__wake {
    pthread_mutex_t lock; /* guards conn and the fields up to the strings */
    PGconn *conn;         /* NULL while down */
    int connecting;       /* a thread is making a connection, unlocked */
    int sleepers;         /* threads in poll() */
    int listen;           /* a watcher waits: the connection LISTENs */
    int64_t retry_at;     /* down: when the next connection may be tried */
    int64_t backoff_ms;   /* ... and the wait after that one fails */
    char *conninfo;
    char *schema_quoted;
    char channel[CHANNEL_SIZE];
    char listen_sql[CHANNEL_SIZE + 8];
    char unlisten_sql[CHANNEL_SIZE + 10];
    char token[TOKEN_SIZE]; /* this process's, the payload of its posts */
    _Atomic uint64_t seq;   /* posts read, interrupts, reconnects */
    _Atomic uint64_t wakes; /* of those, the ones that end a sleep at once */
    int kick[2];            /* the pipe that ends sleeps early */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- this process's token --------------------------------------------- */

static pthread_mutex_t token_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t token_pid;
static char token_text[TOKEN_SIZE];

static uint64_t random_u64(void)
{
    uint64_t r = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t got = read(fd, &r, sizeof r);
        close(fd);
        if (got == (ssize_t)sizeof r)
            return r;
    }
    /* No urandom: the clock still tells two processes of one pid apart. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000007) ^ (uint64_t)ts.tv_nsec ^
           (uint64_t)mono_ms() << 20;
}

/* Unique per process, across hosts; made again in a forked child, which
 * is another process. */
void jm__pg_process_token(char out[TOKEN_SIZE])
{
    pthread_mutex_lock(&token_lock);
    pid_t pid = getpid();
    if (pid != token_pid) {
        snprintf(token_text, sizeof token_text, "%ld-%016llx", (long)pid,
                 (unsigned long long)random_u64());
        token_pid = pid;
    }
    memcpy(out, token_text, TOKEN_SIZE);
    pthread_mutex_unlock(&token_lock);
}

/* --- the pipe ---------------------------------------------------------- */

static void kick(jm__wake *w)
{
    ssize_t put = write(w->kick[1], "", 1);
    (void)put; /* full: a kick is pending already */
}

static void drain(jm__wake *w)
{
    char buf[64];
    while (read(w->kick[0], buf, sizeof buf) > 0)
        ;
}

static int pipe_open(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK) != 0 ||
            fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0)
            return -1;
    return 0;
}

/* --- the connection, under the lock ------------------------------------ */

static void drop(jm__wake *w)
{
    PQfinish(w->conn);
    w->conn = NULL;
    w->retry_at = mono_ms() + w->backoff_ms;
    if (w->sleepers)
        kick(w); /* they poll a socket that is gone */
}

/* Counts the notifications libpq has read. */
static void collect(jm__wake *w)
{
    PGnotify *n;
    int woke = 0;
    while ((n = PQnotifies(w->conn))) {
        atomic_fetch_add(&w->seq, 1);
        if (strcmp(n->extra, w->token) != 0) {
            atomic_fetch_add(&w->wakes, 1);
            woke = 1;
        }
        PQfreemem(n);
    }
    /* A sleeper may have missed the socket's data this thread read. */
    if (woke && w->sleepers)
        kick(w);
}

/* Reads what the server sent; a connection found lost is dropped. */
static void pump(jm__wake *w)
{
    if (!w->conn)
        return;
    if (!PQconsumeInput(w->conn) || PQstatus(w->conn) != CONNECTION_OK) {
        drop(w);
        return;
    }
    collect(w);
}

/* Drives the command sent until its results are in. -1: the connection
 * failed or the server did not answer in time (the caller drops it). */
static int await_idle(jm__wake *w, int64_t timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int unsent = PQflush(w->conn);
        if (unsent < 0 || !PQconsumeInput(w->conn))
            return -1;
        collect(w);
        while (!PQisBusy(w->conn)) {
            PGresult *r = PQgetResult(w->conn);
            if (!r) {
                collect(w);
                return 0;
            }
            PQclear(r); /* an error of the command itself changes nothing */
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {PQsocket(w->conn), (short)(POLLIN | (unsent ? POLLOUT : 0)), 0};
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            return -1;
    }
}

/* A new connection, listening on the channel if `listen`, or NULL with
 * the error recorded. */
static PGconn *connect_listen(jm__wake *w, int listen)
{
    PGconn *c = jm__pg_connect(w->conninfo, w->schema_quoted, 0);
    if (!c)
        return NULL;
    int ok = 1;
    if (listen) {
        PGresult *r = PQexec(c, w->listen_sql);
        ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) {
            const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
            jm__seterr(JM_EIO, "no wake-up channel: listening on %s: %.*s", w->channel,
                       (int)strcspn(msg, "\n"), msg);
        }
        PQclear(r);
    }
    if (ok && PQsetnonblocking(c, 1) != 0) {
        jm__seterr(JM_EIO, "no wake-up channel: %s", "cannot make the connection non-blocking");
        ok = 0;
    }
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Under the lock: has connection c LISTEN or UNLISTEN as w->listen says.
 * -1 when the connection failed or the server did not answer in time. */
static int set_listen(jm__wake *w, PGconn *c)
{
    PGconn *held = w->conn;
    w->conn = c; /* await_idle drives w->conn */
    const char *sql = w->listen ? w->listen_sql : w->unlisten_sql;
    int rc = PQsendQuery(c, sql) ? await_idle(w, POST_TIMEOUT_MS) : -1;
    w->conn = held;
    return rc;
}

/* Called without the lock: makes the connection again if it is down and
 * its backoff has passed. Connecting happens unlocked, so other threads'
 * posts and waits go on (as if down) meanwhile. */
static void reconnect_if_due(jm__wake *w)
{
    pthread_mutex_lock(&w->lock);
    if (w->conn || w->connecting || mono_ms() < w->retry_at) {
        pthread_mutex_unlock(&w->lock);
        return;
    }
    w->connecting = 1;
    int listen = w->listen;
    pthread_mutex_unlock(&w->lock);
    PGconn *c = connect_listen(w, listen);
    pthread_mutex_lock(&w->lock);
    w->connecting = 0;
    if (c && listen != w->listen && set_listen(w, c) != 0) {
        PQfinish(c); /* wake_listen changed its mind meanwhile, and this failed */
        c = NULL;
    }
    if (c) {
        w->conn = c;
        w->backoff_ms = RECONNECT_FIRST_MS;
        /* Posts made while it was down are lost: count one for them. */
        atomic_fetch_add(&w->seq, 1);
        atomic_fetch_add(&w->wakes, 1);
        if (w->sleepers)
            kick(w);
    } else {
        w->retry_at = mono_ms() + w->backoff_ms;
        w->backoff_ms = w->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS
                                                             : w->backoff_ms * 2;
    }
    pthread_mutex_unlock(&w->lock);
}

/* --- the ops ----------------------------------------------------------- */

void jm__pg_wake_close(jm__wake *w)
{
    if (!w)
        return;
    if (w->conn)
        PQfinish(w->conn);
    for (int i = 0; i < 2; i++)
        if (w->kick[i] >= 0)
            close(w->kick[i]);
    pthread_mutex_destroy(&w->lock);
    jm__free(w->conninfo);
    jm__free(w->schema_quoted);
    jm__free(w);
}

int jm__pg_wake_open(jm__store *s, jm__wake **out)
{
    *out = NULL;
    jm__wake *w = jm__calloc(1, sizeof *w);
    if (!w)
        return jm__seterr(JM_ENOMEM, "out of memory opening the wake-up channel");
    w->kick[0] = w->kick[1] = -1;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        jm__free(w);
        return jm__seterr(JM_ENOMEM, "no wake-up channel: cannot make its lock");
    }
    if (!(w->conninfo = jm__strdup(s->conninfo)) ||
        !(w->schema_quoted = jm__strdup(s->schema_quoted))) {
        jm__pg_wake_close(w);
        return jm__seterr(JM_ENOMEM, "out of memory opening the wake-up channel");
    }
    if (pipe_open(w->kick) != 0) {
        int e = errno;
        jm__pg_wake_close(w);
        return jm__seterr(JM_EIO, "no wake-up channel: making its pipe: %s", strerror(e));
    }
    char quoted[CHANNEL_SIZE];
    jm__pg_channel(s, w->channel, sizeof w->channel, quoted, sizeof quoted);
    snprintf(w->listen_sql, sizeof w->listen_sql, "LISTEN %s", quoted);
    snprintf(w->unlisten_sql, sizeof w->unlisten_sql, "UNLISTEN %s", quoted);
    jm__pg_process_token(w->token);
    w->backoff_ms = RECONNECT_FIRST_MS;
    /* The store's own connection just worked: a first failure is a reason
     * (no connection slot, a standby that cannot LISTEN) to poll instead. */
    if (!(w->conn = connect_listen(w, 0))) {
        jm__pg_wake_close(w);
        return JM_EIO;
    }
    *out = w;
    return JM_OK;
}

void jm__pg_wake_post(jm__wake *w)
{
    static const char sql[] = "SELECT pg_notify($1, $2)";
    reconnect_if_due(w);
    pthread_mutex_lock(&w->lock);
    if (w->conn) {
        const char *values[2] = {w->channel, w->token};
        /* A round trip, bounded: a server that stopped answering costs
         * the connection, not a hang. */
        if (!PQsendQueryParams(w->conn, sql, 2, NULL, values, NULL, NULL, 0) ||
            await_idle(w, POST_TIMEOUT_MS) != 0)
            drop(w);
    }
    pthread_mutex_unlock(&w->lock);
}

void jm__pg_wake_listen(jm__wake *w, int on)
{
    reconnect_if_due(w);
    pthread_mutex_lock(&w->lock);
    w->listen = on;
    /* Down: the reconnect listens as w->listen says by then. */
    if (w->conn && set_listen(w, w->conn) != 0)
        drop(w);
    pthread_mutex_unlock(&w->lock);
}

uint64_t jm__pg_wake_seq(jm__wake *w)
{
    return atomic_load(&w->seq);
}

/* One sleep in poll(), the lock released meanwhile, then what came in. */
static void sleep_once(jm__wake *w, int64_t left_ms)
{
    struct pollfd fds[2] = {
        {w->kick[0], POLLIN, 0},
        {w->conn ? PQsocket(w->conn) : -1, POLLIN, 0}, /* -1: down, ignored */
    };
    w->sleepers++;
    pthread_mutex_unlock(&w->lock);
    poll(fds, 2, left_ms > INT_MAX ? INT_MAX : (int)left_ms);
    pthread_mutex_lock(&w->lock);
    /* The last sleeper up empties the pipe: each sleeper has seen it. */
    if (--w->sleepers == 0)
        drain(w);
    pump(w);
}

int jm__pg_wake_wait(jm__wake *w, uint64_t *seen, int64_t timeout_ms)
{
    int64_t start = mono_ms();
    int64_t timeout = timeout_ms > 0 ? timeout_ms : 0;
    reconnect_if_due(w);
    pthread_mutex_lock(&w->lock);
    uint64_t wakes = atomic_load(&w->wakes);
    if (atomic_load(&w->seq) == *seen) {
        pump(w);
        while (atomic_load(&w->wakes) == wakes) {
            int64_t left = timeout - (mono_ms() - start);
            if (left <= 0)
                break;
            sleep_once(w, left);
        }
    }
    uint64_t now = atomic_load(&w->seq);
    pthread_mutex_unlock(&w->lock);
    if (now == *seen)
        return 0;
    *seen = now;
    return 1;
}

/* A bump, not only a kick: a waiter that has not gone to sleep yet finds
 * the count moved and returns at once. */
void jm__pg_wake_interrupt(jm__wake *w)
{
    atomic_fetch_add(&w->seq, 1);
    atomic_fetch_add(&w->wakes, 1);
    kick(w);
}
