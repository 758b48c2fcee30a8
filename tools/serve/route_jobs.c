/*
 * /api/jobs: the job list (every jm_filter field, keyset paging), one job,
 * creating a job, and the actions on one job.
 */
#define _GNU_SOURCE

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../cli.h"
#include "serve_internal.h"

#define LIST_DEFAULT 50
#define LIST_MAX 1000

/* Reads the query into a filter; answers 400 and returns -1 if malformed. */
static int read_filter(const dash_req *rq, jm_filter *f, dash_resp *r)
{
    const char *v;
    int64_t n;
    if ((v = dash_arg(rq, "status")) && cli_parse_statuses(v, &f->statuses)) {
        dash_error(r, 400, "JM_EINVAL", "status: a comma list of new, queued, running, "
                                        "retrying, completed, failed, cancelled, paused");
        return -1;
    }
    f->type = dash_arg(rq, "type");
    f->namespace_id = dash_arg(rq, "namespace");
    f->idempotency_key = dash_arg(rq, "key");
    f->after_id = dash_arg(rq, "cursor");
    static const struct {
        const char *name;
        size_t off;
    } times[] = {{"since", offsetof(jm_filter, created_after_ms)},
                 {"until", offsetof(jm_filter, created_before_ms)}};
    for (size_t i = 0; i < 2; i++) {
        if (!(v = dash_arg(rq, times[i].name)))
            continue;
        if (dash_parse_i64(v, 0, INT64_MAX / 2, &n)) {
            dash_error(r, 400, "JM_EINVAL", "%s: milliseconds since the epoch", times[i].name);
            return -1;
        }
        /* jm_filter bounds are exclusive; since is inclusive here. */
        *(int64_t *)((char *)f + times[i].off) = i == 0 && n > 0 ? n - 1 : n;
    }
    f->limit = LIST_DEFAULT;
    if ((v = dash_arg(rq, "limit"))) {
        if (dash_parse_i64(v, 1, LIST_MAX, &n)) {
            dash_error(r, 400, "JM_EINVAL", "limit: 1..%d", LIST_MAX);
            return -1;
        }
        f->limit = (int)n;
    }
    if ((v = dash_arg(rq, "newest"))) {
        if (strcmp(v, "1") && strcmp(v, "0")) {
            dash_error(r, 400, "JM_EINVAL", "newest: 0 or 1");
            return -1;
        }
        f->newest_first = v[0] == '1';
    }
    return 0;
}

static void list_jobs(dash_server *s, const dash_req *rq, dash_resp *r)
{
    jm_filter f = JM_FILTER_INIT;
    if (read_filter(rq, &f, r))
        return;
    jm_job_list *list = NULL;
    int rc = jm_list(s->m, &f, &list);
    if (rc) {
        dash_lib_error(r, rc);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "jobs") : NULL;
    size_t n = jm_job_list_count(list);
    int bad = !arr;
    for (size_t i = 0; i < n && !bad; i++) {
        cJSON *row = dash_job_summary(jm_job_list_at(list, i));
        bad = !row || !cJSON_AddItemToArray(arr, row);
    }
    const char *next = n > 0 && jm_job_list_has_more(list)
                           ? jm_job_id(jm_job_list_at(list, n - 1))
                           : NULL;
    if (!bad)
        bad = !(next ? cJSON_AddStringToObject(o, "next_cursor", next)
                     : cJSON_AddNullToObject(o, "next_cursor"));
    jm_job_list_free(list);
    if (bad) {
        cJSON_Delete(o);
        dash_nomem(r);
        return;
    }
    dash_json(r, 200, o);
}

static void answer_job(dash_server *s, const char *id, unsigned status, dash_resp *r)
{
    jm_job *j = NULL;
    int rc = jm_get(s->m, id, &j);
    if (rc) {
        dash_lib_error(r, rc);
        return;
    }
    cJSON *o = dash_job_full(j);
    jm_job_free(j);
    if (!o) {
        dash_nomem(r);
        return;
    }
    dash_json(r, status, o);
}

static void create_job(dash_server *s, const dash_req *rq, dash_resp *r)
{
    cJSON *body = dash_body_object(rq, r);
    if (!body)
        return;
    const char *type = NULL, *ns = NULL, *key = NULL, *resource = NULL;
    int64_t priority = 0, max_retries = -1, run_at = 0;
    char *params = NULL;
    if (dash_member_text(body, "type", &type, r) || dash_member_text(body, "namespace", &ns, r) ||
        dash_member_text(body, "key", &key, r) ||
        dash_member_text(body, "resource", &resource, r) ||
        dash_member_int(body, "priority", -1000000, 1000000, &priority, r) ||
        dash_member_int(body, "max_retries", -1, 1000, &max_retries, r) ||
        dash_member_int(body, "run_at_ms", 0, INT64_MAX / 2, &run_at, r))
        goto done;
    if (!type) {
        dash_error(r, 400, "JM_EINVAL", "\"type\" is required");
        goto done;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "params");
    if (p && !cJSON_IsNull(p)) {
        if (!cJSON_IsObject(p)) {
            dash_error(r, 400, "JM_EJSON", "\"params\" must be a JSON object");
            goto done;
        }
        if (!(params = cJSON_PrintUnformatted(p))) {
            dash_nomem(r);
            goto done;
        }
    }
    jm_create_opts o = JM_CREATE_OPTS_INIT;
    o.namespace_id = ns;
    o.idempotency_key = key;
    o.resource = resource;
    o.priority = (int)priority;
    o.max_retries = (int)max_retries;
    o.run_at_ms = run_at;
    char id[JM_JOB_ID_SIZE] = "";
    int rc = jm_create(s->m, type, params, &o, id);
    if (rc && rc != JM_ECONFLICT) {
        dash_lib_error(r, rc);
        goto done;
    }
    /* A held key answers with the holder, as `jobmgr create` does. */
    cJSON *out = cJSON_CreateObject();
    if (!out || !cJSON_AddStringToObject(out, "id", id) ||
        !cJSON_AddBoolToObject(out, "created", rc == JM_OK)) {
        cJSON_Delete(out);
        dash_nomem(r);
        goto done;
    }
    dash_json(r, rc == JM_OK ? 201 : 200, out);
done:
    cJSON_free(params);
    cJSON_Delete(body);
}

static const struct {
    const char *name;
    int (*op)(jm_manager *, const char *);
} actions[] = {
    {"cancel", jm_cancel},
    {"retry", jm_retry},
    {"pause", jm_pause_job},
    {"resume", jm_resume_job},
};

void dash_route_jobs(dash_server *s, const dash_req *rq, const char *rest, dash_resp *r)
{
    int post = strcmp(rq->method, "POST") == 0;
    if (*rest == '\0') {
        if (post)
            create_job(s, rq, r);
        else
            list_jobs(s, rq, r);
        return;
    }
    /* "/ID" or "/ID/ACTION" */
    char id[JM_JOB_ID_SIZE];
    const char *slash = strchr(rest + 1, '/');
    size_t n = slash ? (size_t)(slash - rest - 1) : strlen(rest + 1);
    if (rest[0] != '/' || n == 0 || n >= sizeof id) {
        dash_error(r, 404, "not_found", "no such job");
        return;
    }
    memcpy(id, rest + 1, n);
    id[n] = '\0';
    if (!dash_valid_name(id) || jm_job_id_parse(id, NULL) != JM_OK) {
        dash_error(r, 404, "not_found", "not a job id");
        return;
    }
    if (!slash) {
        if (post)
            dash_error(r, 405, "method_not_allowed", "a job is changed through its actions");
        else
            answer_job(s, id, 200, r);
        return;
    }
    for (size_t i = 0; i < sizeof actions / sizeof *actions; i++) {
        if (strcmp(slash + 1, actions[i].name))
            continue;
        if (!post) {
            dash_error(r, 405, "method_not_allowed", "%s takes POST", actions[i].name);
            return;
        }
        int rc = actions[i].op(s->m, id);
        if (rc)
            dash_lib_error(r, rc);
        else
            answer_job(s, id, 200, r);
        return;
    }
    dash_error(r, 404, "not_found", "no such action");
}
