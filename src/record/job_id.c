/* Job id generation and parsing. Parsing is strict: ids come from users and
 * the command line, and a malformed one must never reach a query. */
#include "job_id.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "error.h"

int jm__type_valid(const char *t)
{
    return t && t[0] >= 'A' && t[0] <= 'Z' && t[1] >= 'A' && t[1] <= 'Z' && t[2] == '\0';
}

static const char hex_digits[] = "0123456789abcdef";

/* Random bytes for ids, drawn from the kernel in blocks: libuuid's
 * uuid_generate_random reseeds the C library's PRNG on every call, which
 * cost more than the rest of a batched insert. The pool is per thread, and
 * a fork empties the forking thread's pool in the child (the only thread
 * there), so two processes never share random bytes. Asking getpid() on
 * every id did the same at the price of a system call per id: about 1 us
 * on a virtual machine, a third of a batched create's time. Should the
 * fork handler not be had, that check is kept. */
#define JM_ID_POOL_BYTES 512

typedef struct id_pool {
    unsigned char bytes[JM_ID_POOL_BYTES];
    size_t used;
    pid_t pid; /* whose bytes they are, when forks are not watched */
} id_pool;

static _Thread_local id_pool pool = {{0}, JM_ID_POOL_BYTES, 0};
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
/* Set once, by the first refill of any thread; every thread's first
 * refill passes through pthread_once, which publishes it. */
static int forks_watched;

static void pool_forget(void)
{
    pool.used = JM_ID_POOL_BYTES;
}

static void watch_forks(void)
{
    forks_watched = pthread_atfork(NULL, NULL, pool_forget) == 0;
}

static void random_bytes(unsigned char *dst, size_t n)
{
    if (pool.used + n > JM_ID_POOL_BYTES || (!forks_watched && pool.pid != getpid())) {
        pthread_once(&fork_once, watch_forks);
        size_t got = 0;
        while (got < JM_ID_POOL_BYTES) {
            ssize_t r = getrandom(pool.bytes + got, JM_ID_POOL_BYTES - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got < JM_ID_POOL_BYTES) {
            /* No getrandom: fall back to libuuid for this id. */
            pool.used = JM_ID_POOL_BYTES;
            uuid_t u;
            uuid_generate_random(u);
            memcpy(dst, u, n < sizeof u ? n : sizeof u);
            return;
        }
        pool.used = 0;
        pool.pid = forks_watched ? 0 : getpid();
    }
    memcpy(dst, pool.bytes + pool.used, n);
    pool.used += n;
}

/* The 36 characters of a uuid, lower-case, with its four dashes. */
static void uuid_text(const unsigned char u[16], char *out)
{
    static const unsigned char at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    for (int i = 0; i < 16; i++) {
        out[at[i]] = hex_digits[u[i] >> 4];
        out[at[i] + 1] = hex_digits[u[i] & 0xf];
    }
    out[8] = out[13] = out[18] = out[23] = '-';
    out[36] = '\0';
}

void jm__job_id_new(const char *type, char out[JM_JOB_ID_SIZE])
{
    unsigned char u[16];
    random_bytes(u, 10);
    memset(u + 10, 0, 6);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    for (int i = 5; i >= 0; i--) {
        u[i] = (unsigned char)(ms & 0xff);
        ms >>= 8;
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x80);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    out[0] = type[0];
    out[1] = type[1];
    out[2] = '-';
    uuid_text(u, out + 3);
}

void jm__job_id_set_seq(char id[JM_JOB_ID_SIZE], int64_t seq)
{
    uint64_t v = (uint64_t)seq;
    id[JM__ID_SEQ_AT + JM__ID_SEQ_DIGITS] = '\0';
    for (int i = JM__ID_SEQ_AT + JM__ID_SEQ_DIGITS - 1; i >= JM__ID_SEQ_AT; i--) {
        id[i] = hex_digits[v & 0xf];
        v >>= 4;
    }
}

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int jm_job_id_parse(const char *id, char type_out[3])
{
    if (!id)
        return jm__seterr(JM_EINVAL, "job id is NULL");
    size_t len = strnlen(id, JM_JOB_ID_SIZE);
    if (len != JM_JOB_ID_SIZE - 1)
        return jm__seterr(JM_EINVAL, "malformed job id: expected 39 characters");
    if (!(id[0] >= 'A' && id[0] <= 'Z' && id[1] >= 'A' && id[1] <= 'Z') || id[2] != '-')
        return jm__seterr(JM_EINVAL, "malformed job id: expected a two-letter type and '-'");
    const char *u = id + 3;
    for (int i = 0; i < 36; i++) {
        int dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? u[i] != '-' : !is_lower_hex(u[i]))
            return jm__seterr(JM_EINVAL, "malformed job id: bad uuid at character %d", i + 4);
    }
    if (type_out) {
        type_out[0] = id[0];
        type_out[1] = id[1];
        type_out[2] = '\0';
    }
    return JM_OK;
}

int64_t jm__job_id_seq(const char *id)
{
    /* The caller has parsed the id; only its length, version digit and
     * last group matter here (the store compares the rest). */
    if (!id || strnlen(id, JM_JOB_ID_SIZE) != JM_JOB_ID_SIZE - 1 || id[17] != '8')
        return 0;
    int64_t seq = 0;
    for (int i = JM__ID_SEQ_AT; i < JM__ID_SEQ_AT + JM__ID_SEQ_DIGITS; i++) {
        char c = id[i];
        if (!is_lower_hex(c))
            return 0;
        seq = seq * 16 + (c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return seq;
}
