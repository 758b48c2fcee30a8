/*
 * The dashboard through real HTTP: `jobmgr serve` runs as a child process
 * on the test's database, and every check goes through a socket. What the
 * page shows must be what the library says; every action needs the token
 * (and, from the page, the CSRF token); --read-only refuses actions; and
 * hostile requests get a 4xx with a JSON error and change nothing.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "http_client.h"
#include "test_store.h"
#include "test_util.h"

#define TOKEN "test-token-0123456789abcdef"
#define BEARER "Authorization: Bearer " TOKEN "\r\n"
#define HOSTILE "<img src=x onerror=\"alert(1)\"><script>alert('x')</script>\" '"
#define FL_PARAMS "{\"namespace_id\":\"app\",\"table_name\":\"orders\",\"table_type\":\"User\"}"
#define QUEUED_FL 25
#define QUEUED_CL 10

typedef struct fx {
    char *dir, *db, *token_file;
    jm_config cfg;
    jm_manager *m;
    pid_t pid;
    unsigned port;
    char failed_id[JM_JOB_ID_SIZE];
    char queued_id[JM_JOB_ID_SIZE];
} fx;

static jm_decision execute(void *self, jm_ctx *ctx)
{
    (void)self;
    const cJSON *fail = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), "fail");
    return fail ? jm_decision_failed(HOSTILE, "trace <b>bold</b>")
                : jm_decision_completed("done", NULL);
}

static void create(fx *f, const char *type, const char *params, char *id_out)
{
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(jm_create(f->m, type, params, NULL, id), JM_OK);
    if (id_out)
        memcpy(id_out, id, sizeof id);
}

/* ---- The server as a child process ----------------------------------------- */

/* Starts `jobmgr serve` with `extra` arguments (NULL-terminated); returns
 * its exit code if it ended before listening, else -1 with f->port set. */
static int start_server(fx *f, const char *listen, const char *const *extra)
{
    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    const char *argv[16] = {"jobmgr", "--db", f->cfg.db_url ? f->cfg.db_url : f->db,
                            "serve", "--listen", listen};
    size_t n = 6;
    for (; extra && *extra && n < 15; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        if (f->cfg.pg_schema)
            setenv("JOBMGR_PG_SCHEMA", f->cfg.pg_schema, 1);
        execv(JM_TEST_CLI, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    char line[256] = "";
    size_t got = 0;
    struct pollfd p = {out[0], POLLIN, 0};
    while (got < sizeof line - 1 && !strchr(line, '\n') && poll(&p, 1, 60000) > 0) {
        ssize_t r = read(out[0], line + got, sizeof line - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        line[got] = '\0';
    }
    close(out[0]);
    const char *colon = strrchr(line, ':');
    if (!strstr(line, "listening on") || !colon) {
        int status = 0;
        waitpid(f->pid, &status, 0);
        f->pid = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }
    f->port = (unsigned)atoi(colon + 1);
    return -1;
}

static void serve(fx *f, const char *const *extra)
{
    const char *base[8] = {"--token-file", f->token_file};
    size_t n = 2;
    for (; extra && *extra && n < 7; extra++)
        base[n++] = *extra;
    assert_int_equal(start_server(f, "127.0.0.1:0", base), -1);
}

static int exited(void *arg)
{
    fx *f = arg;
    int status = 0;
    pid_t r = waitpid(f->pid, &status, WNOHANG);
    if (r == f->pid) {
        f->pid = WIFEXITED(status) ? -WEXITSTATUS(status) : -1000;
        return 1;
    }
    return 0;
}

/* SIGTERM must stop the server, promptly and cleanly. */
static void stop_server(fx *f)
{
    if (f->pid <= 0)
        return;
    kill(f->pid, SIGTERM);
    pid_t pid = f->pid;
    if (!tu_wait_until(exited, f, 60000)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the server did not stop within 60 s of SIGTERM");
    }
    assert_int_equal(f->pid, 0); /* exit code 0 */
    f->pid = 0;
}

/* ---- Fixture ----------------------------------------------------------------- */

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir();
    f->db = tu_path(f->dir, "jobs.db");
    f->token_file = tu_path(f->dir, "token");
    FILE *t = fopen(f->token_file, "w");
    fprintf(t, "%s\n", TOKEN);
    fclose(t);
    f->cfg = tu_config(f->db);
    assert_int_equal(jm_open(&f->cfg, &f->m), JM_OK);
    static const jm_executor types[] = {
        {JM_EXECUTOR_VERSION, "FL", "flush", 1, NULL, execute, NULL, JM_CLASS_NORMAL, NULL},
        {JM_EXECUTOR_VERSION, "CL", "cleanup", 1, NULL, execute, NULL, JM_CLASS_NORMAL, NULL},
    };
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(jm_register(f->m, &types[i], f), JM_OK);
    /* 3 completed FL, 2 failed CL with a hostile message, then the queue. */
    for (int i = 0; i < 3; i++)
        create(f, "FL", "{}", NULL);
    create(f, "CL", "{\"fail\":1}", f->failed_id);
    create(f, "CL", "{\"fail\":1}", NULL);
    int ran = 0;
    assert_int_equal(jm_run_once(f->m, 5, &ran), JM_OK);
    assert_int_equal(ran, 5);
    for (int i = 0; i < QUEUED_FL; i++)
        create(f, "FL", "{}", i == 0 ? f->queued_id : NULL);
    for (int i = 0; i < QUEUED_CL; i++)
        create(f, "CL", "{}", NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    stop_server(f);
    jm_close(f->m);
    free(f->db);
    free(f->token_file);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- Helpers ----------------------------------------------------------------- */

/* A request whose answer must be `status` with a JSON body; returns it. */
static cJSON *call(fx *f, const char *method, const char *path, const char *headers,
                   const char *body, int status)
{
    tu_http_resp r;
    assert_int_equal(tu_http(f->port, method, path, headers, body, &r), 0);
    if (r.status != status)
        fail_msg("%s %s: want %d, got %d: %s", method, path, status, r.status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    tu_http_free(&r);
    if (!j)
        fail_msg("%s %s: the answer is not JSON", method, path);
    return j;
}

/* A refused request: its status and error code, and a JSON error body. */
static void refused(fx *f, const char *method, const char *path, const char *headers,
                    const char *body, int status, const char *code)
{
    cJSON *j = call(f, method, path, headers, body, status);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    assert_true(cJSON_IsString(c) && cJSON_IsString(msg));
    if (code)
        assert_string_equal(c->valuestring, code);
    cJSON_Delete(j);
}

static double num(const cJSON *o, const char *path)
{
    /* "a.b.c" */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *v = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = cJSON_GetObjectItemCaseSensitive(v, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *text(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A string member copied out; the test fails if it is missing. */
static void copy_text(char *out, size_t len, const cJSON *o, const char *name)
{
    const char *v = text(o, name);
    assert_non_null(v);
    snprintf(out, len, "%s", v ? v : "");
}

static int64_t count_all(fx *f)
{
    int64_t n = -1;
    assert_int_equal(jm_count(f->m, NULL, &n), JM_OK);
    return n;
}

/* ---- Tests ------------------------------------------------------------------- */

static void overview_matches_the_library(void **state)
{
    fx *f = *state;
    serve(f, NULL);
    jm_stats_report *st = NULL;
    assert_int_equal(jm_stats(f->m, &st), JM_OK);
    cJSON *o = call(f, "GET", "/api/overview", NULL, NULL, 200);
    for (int s = 0; s < JM_STATUS_COUNT; s++) {
        char key[64];
        snprintf(key, sizeof key, "by_status.%s", jm_status_name((jm_status)s));
        assert_int_equal((int64_t)num(o, key), st->by_status[s]);
    }
    assert_int_equal((int64_t)num(o, "by_status.completed"), 3);
    assert_int_equal((int64_t)num(o, "by_status.failed"), 2);
    assert_int_equal((int64_t)num(o, "queue_depth"), st->queue_depth);
    assert_int_equal((int64_t)num(o, "failed_last_hour"), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "types")), 2);
    /* The chart's hour holds the five jobs that just finished. */
    const cJSON *b = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "throughput"), "buckets");
    assert_int_equal(cJSON_GetArraySize(b), 60);
    double completed = 0, failed = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, b) {
        completed += num(e, "completed");
        failed += num(e, "failed");
    }
    assert_int_equal((int)completed, 3);
    assert_int_equal((int)failed, 2);
    jm_stats_free(st);
    cJSON_Delete(o);
}

static void list_filters_and_pages(void **state)
{
    fx *f = *state;
    serve(f, NULL);
    cJSON *o = call(f, "GET", "/api/jobs?type=CL&limit=100", NULL, NULL, 200);
    const cJSON *jobs = cJSON_GetObjectItem(o, "jobs"), *j;
    assert_int_equal(cJSON_GetArraySize(jobs), QUEUED_CL + 2);
    cJSON_ArrayForEach(j, jobs) assert_string_equal(text(j, "type"), "CL");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "next_cursor")));
    cJSON_Delete(o);

    /* Keyset pages of 10 through the queued FL jobs: each once, in order. */
    char path[256], cursor[JM_JOB_ID_SIZE] = "", ids[QUEUED_FL + 1][JM_JOB_ID_SIZE];
    int seen = 0, pages = 0;
    double last_created = 0;
    do {
        snprintf(path, sizeof path, "/api/jobs?type=FL&status=queued&limit=10%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        o = call(f, "GET", path, NULL, NULL, 200);
        cJSON_ArrayForEach(j, cJSON_GetObjectItem(o, "jobs")) {
            assert_string_equal(text(j, "status"), "queued");
            assert_string_equal(text(j, "type"), "FL");
            assert_true(num(j, "created_at_ms") >= last_created);
            last_created = num(j, "created_at_ms");
            for (int k = 0; k < seen; k++)
                assert_string_not_equal(ids[k], text(j, "id"));
            assert_true(seen < QUEUED_FL);
            copy_text(ids[seen++], sizeof ids[0], j, "id");
        }
        const char *next = text(o, "next_cursor");
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        cJSON_Delete(o);
        pages++;
    } while (cursor[0] && pages < 10);
    assert_int_equal(seen, QUEUED_FL);
    assert_int_equal(pages, 3);

    /* Newest first starts with the last job created. */
    o = call(f, "GET", "/api/jobs?newest=1&limit=1", NULL, NULL, 200);
    jm_filter fl = JM_FILTER_INIT;
    fl.newest_first = 1;
    fl.limit = 1;
    jm_job_list *list = NULL;
    assert_int_equal(jm_list(f->m, &fl, &list), JM_OK);
    assert_string_equal(text(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "jobs"), 0), "id"),
                        jm_job_id(jm_job_list_at(list, 0)));
    jm_job_list_free(list);
    cJSON_Delete(o);
}

static void job_page_shows_every_field_as_data(void **state)
{
    fx *f = *state;
    serve(f, NULL);
    char path[128];
    snprintf(path, sizeof path, "/api/jobs/%s", f->failed_id);
    cJSON *o = call(f, "GET", path, NULL, NULL, 200);
    /* The hostile message comes back byte for byte, as JSON text. */
    assert_string_equal(text(o, "message"), HOSTILE);
    assert_string_equal(text(o, "exception_trace"), "trace <b>bold</b>");
    assert_string_equal(text(o, "status"), "failed");
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(o, "params")));
    static const char *const fields[] = {"created_at_ms", "finished_at_ms", "started_at_ms",
                                         "attempts", "retry_count", "max_retries", "progress"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, fields[i])));
    assert_non_null(cJSON_GetObjectItem(o, "lease_until_ms"));
    assert_non_null(cJSON_GetObjectItem(o, "blocked_by"));
    cJSON_Delete(o);
    /* A well-formed id of no job, and ids that are not ids. */
    char missing[JM_JOB_ID_SIZE];
    snprintf(missing, sizeof missing, "%s", f->failed_id);
    missing[10] = missing[10] == '0' ? '1' : '0';
    snprintf(path, sizeof path, "/api/jobs/%s", missing);
    refused(f, "GET", path, NULL, NULL, 404, "JM_ENOTFOUND");
    refused(f, "GET", "/api/jobs/not-a-job", NULL, NULL, 404, "not_found");
    refused(f, "GET", "/api/jobs/%3Cscript%3E", NULL, NULL, 404, "not_found");
}

static void actions_need_the_token(void **state)
{
    fx *f = *state;
    serve(f, NULL);
    char path[128];
    snprintf(path, sizeof path, "/api/jobs/%s/cancel", f->queued_id);
    refused(f, "POST", path, NULL, "", 401, "unauthorized");
    refused(f, "POST", path, "Authorization: Bearer wrong-token-0123456789\r\n", "", 401,
            "unauthorized");
    refused(f, "POST", path, "Authorization: Bearer " TOKEN "x\r\n", "", 401, "unauthorized");
    assert_int_equal(tu_status(f->m, f->queued_id), JM_STATUS_QUEUED);
    cJSON *o = call(f, "POST", path, BEARER, "", 200);
    assert_string_equal(text(o, "status"), "cancelled");
    cJSON_Delete(o);
    assert_int_equal(tu_status(f->m, f->queued_id), JM_STATUS_CANCELLED);
    /* Finished: the library's refusal, as a conflict. */
    refused(f, "POST", path, BEARER, "", 409, "JM_ESTATE");
}

/* The page's token: from the meta tag of the page. */
static void page_csrf(fx *f, char *out, size_t len)
{
    tu_http_resp r;
    assert_int_equal(tu_http(f->port, "GET", "/", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    const char *m = strstr(r.body, "name=\"csrf-token\" content=\"");
    assert_non_null(m);
    m += strlen("name=\"csrf-token\" content=\"");
    size_t n = strcspn(m, "\"");
    assert_true(n >= 32 && n < len);
    memcpy(out, m, n);
    out[n] = '\0';
    char csp[512];
    assert_non_null(tu_http_header(&r, "Content-Security-Policy", csp, sizeof csp));
    assert_non_null(strstr(csp, "script-src 'self'"));
    tu_http_free(&r);
}

static void the_page_needs_cookie_and_csrf(void **state)
{
    fx *f = *state;
    serve(f, NULL);
    refused(f, "POST", "/api/login", NULL, "{\"token\":\"nope-nope-nope-nope\"}", 401,
            "unauthorized");
    tu_http_resp r;
    assert_int_equal(tu_http(f->port, "POST", "/api/login", NULL, "{\"token\":\"" TOKEN "\"}", &r),
                     0);
    assert_int_equal(r.status, 204);
    char cookie[512];
    assert_non_null(tu_http_header(&r, "Set-Cookie", cookie, sizeof cookie));
    char name[32];
    snprintf(name, sizeof name, "jm_token_%u=", f->port);
    assert_true(strncmp(cookie, name, strlen(name)) == 0);
    assert_non_null(strstr(cookie, "HttpOnly"));
    assert_non_null(strstr(cookie, "SameSite=Strict"));
    tu_http_free(&r);

    char path[128], csrf[80], headers[512];
    snprintf(path, sizeof path, "/api/jobs/%s/cancel", f->queued_id);
    /* The cookie alone, as a forged cross-site form would send it. */
    snprintf(headers, sizeof headers, "Cookie: jm_token_%u=%s\r\n", f->port, TOKEN);
    refused(f, "POST", path, headers, "", 403, "csrf");
    snprintf(headers, sizeof headers, "Cookie: jm_token_%u=%s\r\nX-CSRF-Token: %s\r\n", f->port, TOKEN,
             "0000000000000000000000000000000000000000000000000000000000000000");
    refused(f, "POST", path, headers, "", 403, "csrf");
    page_csrf(f, csrf, sizeof csrf);
    snprintf(headers, sizeof headers,
             "Cookie: jm_token_%u=%s\r\nX-CSRF-Token: %s\r\nOrigin: http://evil.example\r\n",
             f->port, TOKEN, csrf);
    refused(f, "POST", path, headers, "", 403, "forbidden");
    assert_int_equal(tu_status(f->m, f->queued_id), JM_STATUS_QUEUED);
    snprintf(headers, sizeof headers,
             "Cookie: jm_token_%u=%s\r\nX-CSRF-Token: %s\r\nOrigin: http://127.0.0.1:%u\r\n",
             f->port, TOKEN, csrf, f->port);
    cJSON *o = call(f, "POST", path, headers, "", 200);
    cJSON_Delete(o);
    assert_int_equal(tu_status(f->m, f->queued_id), JM_STATUS_CANCELLED);
}

static void read_only_refuses_every_action(void **state)
{
    fx *f = *state;
    static const char *const ro[] = {"--read-only", NULL};
    serve(f, ro);
    int64_t before = count_all(f);
    char path[128];
    snprintf(path, sizeof path, "/api/jobs/%s/cancel", f->queued_id);
    refused(f, "POST", path, BEARER, "", 403, "read_only");
    refused(f, "POST", "/api/jobs", BEARER, "{\"type\":\"FL\",\"params\":" FL_PARAMS "}", 403,
            "read_only");
    refused(f, "POST", "/api/pauses", BEARER, "{\"scope\":\"all\"}", 403, "read_only");
    assert_int_equal(tu_status(f->m, f->queued_id), JM_STATUS_QUEUED);
    assert_int_equal(count_all(f), before);
    cJSON *o = call(f, "GET", "/api/session", NULL, NULL, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "read_only")));
    cJSON_Delete(o);
    o = call(f, "GET", "/api/jobs", NULL, NULL, 200);
    cJSON_Delete(o);
}

static void hostile_requests_change_nothing(void **state)
{
    fx *f = *state;
    serve(f, NULL);
    int64_t before = count_all(f);
    /* Filter injection and malformed filters. */
    refused(f, "GET", "/api/jobs?type=FL%27%20OR%201%3D1--", NULL, NULL, 400, "JM_EINVAL");
    refused(f, "GET", "/api/jobs?status=queued%27%3B%20DROP%20TABLE%20jm_jobs", NULL, NULL, 400,
            "JM_EINVAL");
    refused(f, "GET", "/api/jobs?limit=0", NULL, NULL, 400, "JM_EINVAL");
    refused(f, "GET", "/api/jobs?limit=99999999999999999999999", NULL, NULL, 400, "JM_EINVAL");
    refused(f, "GET", "/api/jobs?since=yesterday", NULL, NULL, 400, "JM_EINVAL");
    refused(f, "GET", "/api/jobs?newest=yes", NULL, NULL, 400, "JM_EINVAL");
    refused(f, "GET", "/api/jobs?cursor=FL-nonsense", NULL, NULL, 400, NULL);
    /* Malformed paths and methods. */
    refused(f, "GET", "/api/jobs/..%2F..%2Fetc%2Fpasswd", NULL, NULL, 404, "not_found");
    refused(f, "GET", "/../../etc/passwd", NULL, NULL, 404, "not_found");
    refused(f, "GET", "/api/nothing", NULL, NULL, 404, "not_found");
    refused(f, "DELETE", "/api/jobs", BEARER, NULL, 405, "method_not_allowed");
    char long_path[1200] = "/api/jobs/";
    memset(long_path + 10, 'a', sizeof long_path - 11);
    long_path[sizeof long_path - 1] = '\0';
    refused(f, "GET", long_path, NULL, NULL, 414, "uri_too_long");
    /* Another host name (DNS rebinding) is turned away on loopback. */
    tu_http_resp r;
    const char rebind[] = "GET /api/overview HTTP/1.1\r\nHost: evil.example:80\r\n"
                          "Connection: close\r\n\r\n";
    assert_int_equal(tu_http_raw(f->port, rebind, sizeof rebind - 1, &r), 0);
    assert_int_equal(r.status, 421);
    tu_http_free(&r);
    /* Huge headers: refused by the connection's memory bound. */
    size_t big = 100 * 1024;
    char *hdr = malloc(big + 32);
    memcpy(hdr, "X-Big: ", 7);
    memset(hdr + 7, 'x', big);
    memcpy(hdr + 7 + big, "\r\n", 3);
    assert_int_equal(tu_http(f->port, "GET", "/api/jobs", hdr, NULL, &r), 0);
    assert_true(r.status >= 400 && r.status < 500);
    tu_http_free(&r);
    free(hdr);
    /* Bodies: too large, not JSON, not an object, wrong member types. */
    char *body = malloc(70 * 1024 + 1);
    memset(body, ' ', 70 * 1024);
    body[70 * 1024] = '\0';
    refused(f, "POST", "/api/jobs", BEARER, body, 413, "too_large");
    free(body);
    refused(f, "POST", "/api/jobs", BEARER, "{\"type\":", 400, "JM_EJSON");
    refused(f, "POST", "/api/jobs", BEARER, "[1,2]", 400, "JM_EJSON");
    refused(f, "POST", "/api/jobs", BEARER, "", 400, "JM_EJSON");
    refused(f, "POST", "/api/jobs", BEARER, "{\"type\":\"FL\",\"params\":\"x\"}", 400, "JM_EJSON");
    refused(f, "POST", "/api/jobs", BEARER, "{\"type\":42}", 400, "JM_EINVAL");
    refused(f, "POST", "/api/jobs", BEARER, "{\"type\":\"FL\",\"priority\":1.5}", 400,
            "JM_EINVAL");
    refused(f, "POST", "/api/jobs", BEARER, "{\"type\":\"F'\",\"params\":{}}", 400, NULL);
    refused(f, "POST", "/api/pauses", BEARER, "{\"scope\":\"everything\"}", 400, "JM_EINVAL");
    refused(f, "POST", "/api/pauses", BEARER, "{\"scope\":\"type\"}", 400, "JM_EINVAL");
    refused(f, "POST", "/api/schedules/nope/run", BEARER, "", 404, "JM_ENOTFOUND");
    assert_int_equal(count_all(f), before);
    assert_int_equal(tu_status(f->m, f->queued_id), JM_STATUS_QUEUED);
}

static void create_from_the_api(void **state)
{
    fx *f = *state;
    serve(f, NULL);
    /* The server runs the built-in executors: FL checks its parameters. */
    refused(f, "POST", "/api/jobs", BEARER, "{\"type\":\"FL\",\"params\":{}}", 400, "JM_EINVAL");
    cJSON *o = call(f, "POST", "/api/jobs", BEARER,
                    "{\"type\":\"FL\",\"params\":" FL_PARAMS ",\"key\":\"k1\",\"priority\":7}",
                    201);
    char id[JM_JOB_ID_SIZE];
    copy_text(id, sizeof id, o, "id");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "created")));
    cJSON_Delete(o);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->m, id, &j), JM_OK);
    assert_int_equal(jm_job_priority(j), 7);
    assert_string_equal(jm_job_idempotency_key(j), "k1");
    assert_non_null(strstr(jm_job_params(j), "orders"));
    jm_job_free(j);
    /* The same key again: the holder, not a second job. */
    o = call(f, "POST", "/api/jobs", BEARER, "{\"type\":\"FL\",\"params\":" FL_PARAMS ",\"key\":\"k1\"}",
             200);
    assert_string_equal(text(o, "id"), id);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "created")));
    cJSON_Delete(o);
}

static void pauses_and_schedules(void **state)
{
    fx *f = *state;
    serve(f, NULL);
    cJSON *o = call(f, "POST", "/api/pauses", BEARER, "{\"scope\":\"type\",\"what\":\"FL\"}", 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "pauses")), 1);
    cJSON_Delete(o);
    jm_pause_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(jm_paused_list(f->m, &list, &n), JM_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].what, "FL");
    jm_paused_list_free(list, n);
    o = call(f, "POST", "/api/pauses/resume", BEARER, "{\"scope\":\"type\",\"what\":\"FL\"}", 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "pauses")), 0);
    cJSON_Delete(o);

    jm_schedule_spec sp = JM_SCHEDULE_SPEC_INIT;
    sp.name = "nightly flush";
    sp.type = "FL";
    sp.params_json = FL_PARAMS;
    sp.interval_ms = 3600000;
    char sid[JM_SCHEDULE_ID_SIZE];
    assert_int_equal(jm_schedule_create(f->m, &sp, sid), JM_OK);
    int64_t before = count_all(f);
    o = call(f, "POST", "/api/schedules/nightly%20flush/run", BEARER, "", 201);
    char id[JM_JOB_ID_SIZE];
    copy_text(id, sizeof id, o, "id");
    cJSON_Delete(o);
    assert_int_equal(count_all(f), before + 1);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->m, id, &j), JM_OK);
    assert_string_equal(jm_job_type(j), "FL");
    jm_job_free(j);
    char path[96];
    snprintf(path, sizeof path, "/api/schedules/%s/pause", sid);
    o = call(f, "POST", path, BEARER, "", 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "paused")));
    cJSON_Delete(o);
    o = call(f, "GET", "/api/schedules", NULL, NULL, 200);
    assert_string_equal(text(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "schedules"), 0), "name"),
                        "nightly flush");
    cJSON_Delete(o);
}

static void metrics_and_assets(void **state)
{
    fx *f = *state;
    serve(f, NULL);
    tu_http_resp r;
    assert_int_equal(tu_http(f->port, "GET", "/metrics", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    /* The same snapshot as the library's: 3 completed flushes. */
    assert_non_null(strstr(r.body, "jobmgr_jobs{type=\"FL\",status=\"completed\"} 3\n"));
    assert_non_null(strstr(r.body, "jobmgr_jobs{type=\"CL\",status=\"failed\"} 2\n"));
    tu_http_free(&r);
    static const char *const assets[] = {"/", "/app.js", "/app.css"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(tu_http(f->port, "GET", assets[i], NULL, NULL, &r), 0);
        assert_int_equal(r.status, 200);
        assert_true(r.body_len > 100);
        char v[64];
        assert_non_null(tu_http_header(&r, "X-Content-Type-Options", v, sizeof v));
        tu_http_free(&r);
    }
}

static void beyond_loopback_every_request_needs_the_token(void **state)
{
    fx *f = *state;
    /* Without a chosen token it will not listen beyond loopback. */
    assert_int_equal(start_server(f, "0.0.0.0:0", NULL), 2);
    const char *const args[] = {"--token-file", f->token_file, NULL};
    assert_int_equal(start_server(f, "0.0.0.0:0", args), -1);
    refused(f, "GET", "/api/overview", NULL, NULL, 401, "unauthorized");
    refused(f, "GET", "/metrics", NULL, NULL, 401, "unauthorized");
    cJSON *o = call(f, "GET", "/api/jobs", BEARER, NULL, 200);
    cJSON_Delete(o);
    o = call(f, "GET", "/api/session", NULL, NULL, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "token_required_for_reads")));
    cJSON_Delete(o);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(overview_matches_the_library, setup, teardown),
        cmocka_unit_test_setup_teardown(list_filters_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(job_page_shows_every_field_as_data, setup, teardown),
        cmocka_unit_test_setup_teardown(actions_need_the_token, setup, teardown),
        cmocka_unit_test_setup_teardown(the_page_needs_cookie_and_csrf, setup, teardown),
        cmocka_unit_test_setup_teardown(read_only_refuses_every_action, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_requests_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(create_from_the_api, setup, teardown),
        cmocka_unit_test_setup_teardown(pauses_and_schedules, setup, teardown),
        cmocka_unit_test_setup_teardown(metrics_and_assets, setup, teardown),
        cmocka_unit_test_setup_teardown(beyond_loopback_every_request_needs_the_token, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
