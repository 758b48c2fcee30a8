/* Job id generation and parsing. Parsing is strict: ids come from users and
 * the command line, and a malformed one must never reach a query. */
#include "job_id.h"

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

/* Random bytes for ids, drawn from the kernel in blocks: libuuid's
 * uuid_generate_random reseeds the C library's PRNG on every call, which
 * cost more than the rest of a batched insert. The pool is per thread and
 * refilled after a fork, so two processes never share random bytes. */
#define JM_ID_POOL_BYTES 512

typedef struct id_pool {
    unsigned char bytes[JM_ID_POOL_BYTES];
    size_t used;
    pid_t pid;
} id_pool;

static _Thread_local id_pool pool = {{0}, JM_ID_POOL_BYTES, 0};

static void random_bytes(unsigned char *dst, size_t n)
{
    pid_t pid = getpid();
    if (pool.pid != pid || pool.used + n > JM_ID_POOL_BYTES) {
        size_t got = 0;
        while (got < JM_ID_POOL_BYTES) {
            ssize_t r = getrandom(pool.bytes + got, JM_ID_POOL_BYTES - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got < JM_ID_POOL_BYTES) {
            /* No getrandom: fall back to libuuid for this id. */
            uuid_t u;
            uuid_generate_random(u);
            memcpy(dst, u, n < sizeof u ? n : sizeof u);
            return;
        }
        pool.used = 0;
        pool.pid = pid;
    }
    memcpy(dst, pool.bytes + pool.used, n);
    pool.used += n;
}

void jm__job_id_new(const char *type, char out[JM_JOB_ID_SIZE])
{
    uuid_t u;
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
    uuid_unparse_lower(u, out + 3);
}

static const char hex_digits[] = "0123456789abcdef";

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
