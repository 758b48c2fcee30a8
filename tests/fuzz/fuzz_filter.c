/*
 * libFuzzer target: filters. The input is cut into the fields of a
 * jm_filter (statuses, limit, times, newest_first from the first bytes;
 * type, namespace, idempotency key and after_id from NUL-separated strings
 * after them) and handed to jm_list and jm_count on a small database.
 * Both must answer with a documented code, agree with each other, keep a
 * page within its limit, and return only jobs that match the filter.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobmgr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static jm_manager *M;
static char dir[] = "/tmp/jm-fuzz-filter-XXXXXX";
static char dbpath[sizeof dir + 16];
static char first_id[JM_JOB_ID_SIZE];

#define JOBS 24

static jm_decision never(void *self, jm_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return jm_decision_completed(NULL, NULL);
}

static void cleanup(void)
{
    jm_close(M);
    char path[sizeof dbpath + 8];
    unlink(dbpath);
    snprintf(path, sizeof path, "%s-wal", dbpath);
    unlink(path);
    snprintf(path, sizeof path, "%s-shm", dbpath);
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!mkdtemp(dir))
        abort();
    snprintf(dbpath, sizeof dbpath, "%s/jobs.db", dir);
    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = dbpath;
    cfg.node_id = "fuzz";
    cfg.log_level = JM_LOG_OFF;
    if (jm_open(&cfg, &M) != JM_OK)
        abort();
    static const char *const types[] = {"AA", "FL", "ZZ"};
    for (int t = 0; t < 3; t++) {
        jm_executor ex = {JM_EXECUTOR_VERSION, types[t], "x", 1, NULL, never, NULL, JM_CLASS_NORMAL, NULL};
        if (jm_register(M, &ex, NULL) != JM_OK)
            abort();
    }
    static const char *const spaces[] = {"a", "ns", "x\"; DROP TABLE jm_jobs; --", "%", "_"};
    for (int i = 0; i < JOBS; i++) {
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        char key[16];
        snprintf(key, sizeof key, "k%d", i % 7);
        o.namespace_id = i % 6 == 5 ? NULL : spaces[i % 5];
        o.idempotency_key = i < 7 ? key : NULL;
        o.run_at_ms = i % 2 ? INT64_C(4000000000000) : 0;
        char id[JM_JOB_ID_SIZE];
        if (jm_create(M, types[i % 3], "{}", &o, id) != JM_OK)
            abort();
        if (i == 0)
            memcpy(first_id, id, sizeof id);
        if (i % 4 == 3 && jm_cancel(M, id) != JM_OK)
            abort();
    }
    atexit(cleanup);
    return 0;
}

/* The next NUL-terminated field of the input, or NULL when absent; "#"
 * stands for the first job's id (so the cursor is sometimes valid). */
static const char *field(char **p, char *end)
{
    if (*p >= end)
        return NULL;
    char *s = *p;
    size_t n = strnlen(s, (size_t)(end - s));
    *p = s + n + 1;
    if (n == 1 && s[0] == '#')
        return first_id;
    if (n == 1 && s[0] == '!')
        return NULL;
    return s;
}

static int64_t read64(const uint8_t *d)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | d[i];
    return (int64_t)v;
}

#define HEADER 20

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t head[HEADER] = {0};
    memcpy(head, data, size < HEADER ? size : HEADER);
    size_t rest = size > HEADER ? size - HEADER : 0;
    char *buf = malloc(rest + 1);
    if (!buf)
        return 0;
    memcpy(buf, data + (size - rest), rest);
    buf[rest] = '\0';
    char *p = buf, *end = buf + rest;

    jm_filter f = JM_FILTER_INIT;
    f.version = head[0] == 0xff ? 2u : JM_FILTER_VERSION;
    f.statuses = head[1] | (head[2] & 0x80 ? 0x100u : 0u);
    f.limit = (int)(int16_t)(head[3] << 8 | head[4]);
    f.newest_first = head[2] & 1;
    /* Times: small values mostly, so that they sometimes matter. */
    f.created_after_ms = head[2] & 2 ? read64(head + 4) : 0;
    f.created_before_ms = head[2] & 4 ? read64(head + 12) : 0;
    f.type = field(&p, end);
    f.namespace_id = field(&p, end);
    f.idempotency_key = field(&p, end);
    f.after_id = field(&p, end);

    jm_job_list *l = NULL;
    int rl = jm_list(M, &f, &l);
    int64_t n = -1;
    int rcnt = jm_count(M, &f, &n);
    if (rl != JM_OK && rl != JM_EINVAL && rl != JM_ETOOBIG && rl != JM_ENOTFOUND)
        abort();
    if (rcnt != JM_OK && rcnt != JM_EINVAL && rcnt != JM_ETOOBIG)
        abort();
    if (rl == JM_OK) {
        size_t k = jm_job_list_count(l);
        int lim = f.limit ? f.limit : JM_LIST_DEFAULT_LIMIT;
        if (k > (size_t)lim || rcnt != JM_OK || (int64_t)k > n || n > JOBS)
            abort();
        for (size_t i = 0; i < k; i++) {
            const jm_job *j = jm_job_list_at(l, i);
            if (f.type && strcmp(jm_job_type(j), f.type) != 0)
                abort();
            if (f.namespace_id &&
                (!jm_job_namespace(j) || strcmp(jm_job_namespace(j), f.namespace_id) != 0))
                abort();
            if (f.statuses && !(f.statuses & JM_STATUS_BIT(jm_job_status(j))))
                abort();
        }
    } else if (l) {
        abort();
    }
    jm_job_list_free(l);
    free(buf);
    return 0;
}
