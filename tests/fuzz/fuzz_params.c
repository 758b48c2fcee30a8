/*
 * libFuzzer target: job parameters. Every input is
 *  1. checked by jm__json_check, which must agree with cJSON: whatever the
 *     check accepts, cJSON parses (as jm_create parses it), and the check's
 *     "object or not" matches cJSON's;
 *  2. when it parses to an object, handed to the validate function of each
 *     of the eight built-in executors, which must answer 0 or refuse with a
 *     NUL-terminated, non-empty message in a small buffer (never write past
 *     it: the buffer is exactly sized for ASan);
 *  3. when the text is accepted by jm__json_check and is at most a few KiB,
 *     passed to jm_create on an in-memory-like manager with the built-ins,
 *     whose answer must be one of jm_create's documented codes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_check.h"
#include "builtin.h"
#include "jobmgr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const jm_executor *const executors[] = {
    &jm__flush_executor,       &jm__cleanup_executor, &jm__retention_executor,
    &jm__stream_eviction_executor, &jm__user_cleanup_executor, &jm__compact_executor,
    &jm__backup_executor,      &jm__restore_executor,
};

static jm_manager *M;
static char dir[] = "/tmp/jm-fuzz-params-XXXXXX";
static char dbpath[sizeof dir + 16];

/* Small inputs only go through jm_create: a database write per input
 * would slow the fuzzer to a crawl. */
#define CREATE_MAX_BYTES 4096

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
    if (jm_open(&cfg, &M) != JM_OK || jm_register_builtin(M) != JM_OK)
        abort();
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    jm__json_kind kind = jm__json_check(text, size);
    cJSON *p = cJSON_ParseWithLengthOpts(text, size + 1, NULL, 1);
    if (kind != JM_JSON_INVALID) {
        if (!p)
            abort(); /* the check accepted what cJSON refuses */
        if ((kind == JM_JSON_OBJECT) != (cJSON_IsObject(p) != 0))
            abort();
    }
    if (cJSON_IsObject(p)) {
        for (size_t i = 0; i < sizeof executors / sizeof executors[0]; i++) {
            char err[64];
            memset(err, 'x', sizeof err);
            int bad = executors[i]->validate(NULL, p, err, sizeof err);
            if (bad && (!memchr(err, '\0', sizeof err) || err[0] == '\0'))
                abort();
        }
    }
    cJSON_Delete(p);

    if (size <= CREATE_MAX_BYTES) {
        char id[JM_JOB_ID_SIZE];
        const jm_executor *ex = executors[size % 8];
        jm_create_opts o = JM_CREATE_OPTS_INIT;
        o.run_at_ms = INT64_C(4000000000000); /* never due */
        int rc = jm_create(M, ex->type, text, &o, id);
        if (rc != JM_OK && rc != JM_EINVAL && rc != JM_EJSON && rc != JM_ETOOBIG)
            abort();
        /* jm_create reads a C string: judge the text up to the first NUL. */
        if (rc == JM_OK && (jm__json_check(text, strlen(text)) != JM_JSON_OBJECT ||
                            jm_cancel(M, id) != JM_OK))
            abort();
    }
    free(text);
    return 0;
}
