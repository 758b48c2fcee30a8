/*
 * Creating jobs: validation of type, parameters and options, then one
 * transaction for the whole batch, shared with other threads' creates
 * that arrive meanwhile (write_queue.c). Idempotency is enforced by the store's
 * unique index, never by a read-then-write here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job_id.h"
#include "json_check.h"
#include "log.h"
#include "manager.h"
#include "text.h"
#include "create.h"
#include "wake.h"

static int fail(int code, size_t i, int many, const char *fmt, ...) JM_PRINTF(4, 5);

/* Checks an optional key-like option; `what` names it in the message. */
static int check_key(const char *v, const char *what, size_t i, int many)
{
    if (!v)
        return JM_OK;
    size_t len = strnlen(v, JM_MAX_KEY_BYTES + 1);
    if (len > JM_MAX_KEY_BYTES)
        return fail(JM_ETOOBIG, i, many, "%s longer than %d bytes", what, JM_MAX_KEY_BYTES);
    if (!jm__text_valid(v, len))
        return fail(JM_EINVAL, i, many, "%s must be non-empty printable UTF-8", what);
    return JM_OK;
}

/* Non-zero if the JSON text s[0..len) escapes a NUL character (\u0000).
 * cJSON ends a string at a NUL, so an executor would see "a" where the
 * stored parameters say "a\u0000b": a name could pass validation and act
 * on another object than the one the job shows. The text is valid JSON,
 * so every backslash starts an escape and the scan skips escaped pairs. */
static int escapes_nul(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0)
            return 1;
        i++;
    }
    return 0;
}

/* Records an error; in a batch the message names the job's index. */
static int fail(int code, size_t i, int many, const char *fmt, ...)
{
    char msg[JM_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return many ? jm__seterr(code, "job %zu: %s", i, msg) : jm__seterr(code, "%s", msg);
}

#define FAIL(code, ...) return fail(code, i, many, __VA_ARGS__)

/* Validates one job and fills its row (but not id/created_at). */
/* The executor's resource for a job whose creator named none; none if the
 * hook declines or gives something no caller could have passed. */
static int derive_resource(const jm__executor_entry *e, const cJSON *params, jm__new_row *row)
{
    char buf[JM_MAX_RESOURCE_BYTES + 2] = "";
    if (e->ex.resource(e->self, params, buf, sizeof buf) != 0)
        return JM_OK;
    buf[sizeof buf - 1] = '\0';
    size_t len = strlen(buf);
    if (len == 0 || len > JM_MAX_RESOURCE_BYTES || !jm__text_valid(buf, len) ||
        strcmp(buf, JM_EACH_RESOURCE) == 0)
        return JM_OK;
    if (!(row->resource_owned = jm__strdup(buf)))
        return jm__seterr(JM_ENOMEM, "%s", "out of memory deriving a resource");
    row->resource = row->resource_owned;
    return JM_OK;
}

static int prepare(jm_manager *m, const jm_new_job *j, size_t i, int many, int64_t now,
                   jm__new_row *row);

int jm__create_prepare(jm_manager *m, const jm_new_job *j, int64_t now, jm__new_row *row)
{
    return prepare(m, j, 0, 0, now, row);
}

static int prepare(jm_manager *m, const jm_new_job *j, size_t i, int many, int64_t now,
                   jm__new_row *row)
{
    if (!j->type)
        FAIL(JM_EINVAL, "%s", "job type is NULL");
    if (!jm__type_valid(j->type))
        FAIL(JM_EINVAL, "job type must be two uppercase letters (got '%.8s')", j->type);
    jm__executor_entry e;
    if (!jm__registry_find(&m->registry, j->type, &e))
        FAIL(JM_ENOEXEC, "no executor registered for type %s", j->type);
    const jm_create_opts *o = &j->opts;
    if (o->version != JM_CREATE_OPTS_VERSION)
        FAIL(JM_EINVAL, "unknown jm_create_opts version %u", o->version);
    int rc;
    if ((rc = check_key(o->namespace_id, "namespace_id", i, many)) ||
        (rc = check_key(o->idempotency_key, "idempotency_key", i, many)) ||
        (rc = check_key(o->resource, "resource", i, many)) ||
        (rc = check_key(o->node_id, "node_id", i, many)))
        return rc;
    if (o->resource && strcmp(o->resource, JM_EACH_RESOURCE) == 0)
        FAIL(JM_EINVAL, "resource \"%s\" is reserved (JM_EACH_RESOURCE)", JM_EACH_RESOURCE);
    if (o->max_retries > JM_MAX_RETRIES_LIMIT)
        FAIL(JM_EINVAL, "max_retries must be at most %d", JM_MAX_RETRIES_LIMIT);
    if (o->run_at_ms < 0)
        FAIL(JM_EINVAL, "%s", "run_at_ms must not be negative");
    const char *params = j->params_json ? j->params_json : "{}";
    size_t len = strnlen(params, JM_MAX_PARAMS_BYTES + 1);
    if (len > JM_MAX_PARAMS_BYTES)
        FAIL(JM_ETOOBIG, "parameters larger than %d bytes", JM_MAX_PARAMS_BYTES);
    jm__json_kind kind = jm__json_check(params, len);
    if (kind == JM_JSON_INVALID)
        FAIL(JM_EJSON, "%s", "parameters are not valid JSON");
    if (kind != JM_JSON_OBJECT)
        FAIL(JM_EJSON, "%s", "parameters must be a JSON object");
    if (!jm__utf8_valid(params, len))
        FAIL(JM_EJSON, "%s", "parameters are not valid UTF-8");
    if (escapes_nul(params, len))
        FAIL(JM_EINVAL, "%s",
             "parameters must not contain \\u0000: a NUL would cut a string short");
    int derive = !o->resource && e.ex.resource;
    if (e.ex.validate || derive) {
        /* The text is valid JSON, so a parse failure can only be memory. */
        cJSON *p = cJSON_ParseWithLengthOpts(params, len + 1, NULL, 1);
        if (!p)
            FAIL(JM_ENOMEM, "%s", "out of memory parsing parameters");
        char err[512] = "";
        int bad = e.ex.validate ? e.ex.validate(e.self, p, err, sizeof err) : 0;
        err[sizeof err - 1] = '\0';
        if (bad) {
            cJSON_Delete(p);
            FAIL(JM_EINVAL, "invalid %s parameters: %s", j->type,
                 *err ? err : "rejected by the executor");
        }
        rc = derive ? derive_resource(&e, p, row) : JM_OK;
        cJSON_Delete(p);
        if (rc)
            return rc;
    }
    row->type = j->type;
    row->params = params;
    row->namespace_id = o->namespace_id;
    row->idempotency_key = o->idempotency_key;
    row->max_retries = o->max_retries < 0 ? m->cfg.max_retries : o->max_retries;
    row->priority = o->priority;
    if (o->resource)
        row->resource = o->resource;
    row->node_id = o->node_id;
    row->run_at = o->run_at_ms ? o->run_at_ms : now;
    row->status = row->run_at > now ? JM_STATUS_NEW : JM_STATUS_QUEUED;
    return JM_OK;
}

#undef FAIL

static int create_rows(jm_manager *m, const jm_new_job *jobs, size_t n,
                       char (*ids_out)[JM_JOB_ID_SIZE], char *single_id_out)
{
    int many = single_id_out == NULL;
    jm__new_row one;
    jm__new_row *rows = n == 1 ? &one : jm__calloc(n, sizeof *rows);
    char(*ids)[JM_JOB_ID_SIZE] = ids_out;
    char one_id[JM_JOB_ID_SIZE];
    if (!ids)
        ids = n == 1 ? &one_id : jm__calloc(n, JM_JOB_ID_SIZE);
    if (!rows || !ids) {
        if (rows != &one)
            jm__free(rows);
        if (ids != ids_out && ids != &one_id)
            jm__free(ids);
        return jm__seterr(JM_ENOMEM, "out of memory creating jobs");
    }
    int64_t now = jm__now(m);
    int64_t earliest = INT64_MAX;
    int rc = JM_OK;
    size_t touched = 0;
    for (size_t i = 0; i < n && rc == JM_OK; i++) {
        memset(&rows[i], 0, sizeof rows[i]);
        touched = i + 1;
        if ((rc = prepare(m, &jobs[i], i, many, now, &rows[i])))
            break;
        jm__job_id_new(rows[i].type, ids[i]);
        rows[i].id = ids[i];
        rows[i].created_at = now;
        if (rows[i].run_at < earliest)
            earliest = rows[i].run_at;
    }
    jm__write w = {.kind = JM__WRITE_INSERT};
    w.u.insert.rows = rows;
    w.u.insert.n = n;
    if (rc == JM_OK)
        rc = jm__write_submit(m, &w);
    size_t conflict_index = w.u.insert.conflict_index;
    const char *conflict_id = w.u.insert.conflict_id;
    if (rc == JM_ECONFLICT) {
        char *dst = single_id_out ? single_id_out : (ids_out ? ids_out[conflict_index] : NULL);
        if (dst)
            memcpy(dst, conflict_id, JM_JOB_ID_SIZE);
        if (many) {
            char msg[JM_ERRMSG_SIZE];
            snprintf(msg, sizeof msg, "%s", jm_last_error());
            jm__seterr(JM_ECONFLICT, "job %zu: %s", conflict_index, msg);
        }
    } else if (rc == JM_OK && single_id_out) {
        memcpy(single_id_out, ids[0], JM_JOB_ID_SIZE);
    }
    for (size_t i = 0; i < touched; i++)
        jm__free(rows[i].resource_owned);
    if (rows != &one)
        jm__free(rows);
    if (ids != ids_out && ids != &one_id)
        jm__free(ids);
    if (rc == JM_OK) {
        jm__pool_notify(m, earliest);
        if (earliest <= now && !m->ops->insert_wakes)
            jm__wake_post(m);
    }
    return rc;
}

int jm_create(jm_manager *m, const char *type, const char *params_json,
              const jm_create_opts *o, char id_out[JM_JOB_ID_SIZE])
{
    if (!m || !id_out)
        return jm__seterr(JM_EINVAL, "jm_create: manager or id_out is NULL");
    jm_new_job j = {type, params_json, JM_CREATE_OPTS_INIT};
    if (o)
        j.opts = *o;
    char id[JM_JOB_ID_SIZE];
    int rc = create_rows(m, &j, 1, NULL, id);
    if (rc == JM_OK || rc == JM_ECONFLICT)
        memcpy(id_out, id, JM_JOB_ID_SIZE);
    return rc;
}

int jm_create_many(jm_manager *m, const jm_new_job *jobs, size_t n,
                   char (*ids_out)[JM_JOB_ID_SIZE])
{
    if (!m || !jobs || !ids_out)
        return jm__seterr(JM_EINVAL, "jm_create_many: manager, jobs or ids_out is NULL");
    if (n == 0 || n > JM_MAX_CREATE_MANY)
        return jm__seterr(JM_EINVAL, "jm_create_many: n must be 1..%d", JM_MAX_CREATE_MANY);
    return create_rows(m, jobs, n, ids_out, NULL);
}
