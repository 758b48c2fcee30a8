/* Helpers shared by the built-in executors; see exec_util.h. */
#include "exec_util.h"

#include <stdio.h>
#include <string.h>

#include "sha256.h"

/* The prefix of a resource shortened to its digest. */
#define RESOURCE_DIGEST_PREFIX "sha256:"

int jm__name_valid(const char *s)
{
    return jm_host_name_check("name", s) == JM_OK;
}

int jm__param_string(const cJSON *p, const char *field, int required, size_t max_len,
                     const char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, field);
    if (!v) {
        if (!required)
            return 0;
        snprintf(err, errlen, "missing required parameter \"%s\"", field);
        return -1;
    }
    if (!cJSON_IsString(v) || !v->valuestring) {
        snprintf(err, errlen, "parameter \"%s\" must be a string", field);
        return -1;
    }
    size_t n = strlen(v->valuestring);
    if (n == 0 || n > max_len) {
        snprintf(err, errlen, "parameter \"%s\" must be 1..%zu bytes long", field, max_len);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

int jm__param_name(const cJSON *p, const char *field, const char **out, char *err,
                   size_t errlen)
{
    const char *s = NULL;
    if (jm__param_string(p, field, 1, JM_HOST_NAME_MAX, &s, err, errlen))
        return -1;
    if (!jm__name_valid(s)) {
        snprintf(err, errlen,
                 "parameter \"%s\" must be letters, digits, '_', '.' or '-' (not \".\" or \"..\")",
                 field);
        return -1;
    }
    *out = s;
    return 0;
}

int jm__param_int(const cJSON *p, const char *field, int required, int64_t min, int64_t max,
                  int64_t *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, field);
    if (!v) {
        if (!required)
            return 0;
        snprintf(err, errlen, "missing required parameter \"%s\"", field);
        return -1;
    }
    /* cJSON keeps numbers as doubles: accept only integral values that a
     * double holds exactly, so 1e300 or 2.5 never sneak through. */
    double d = v->valuedouble;
    /* Range first: converting a double outside int64_t is undefined, and
     * (double)INT64_MAX rounds up to 2^63, which does not fit. */
    if (!cJSON_IsNumber(v) || d != d || d < (double)min || d > (double)max ||
        d >= 9223372036854775808.0 || d != (double)(int64_t)d) {
        snprintf(err, errlen, "parameter \"%s\" must be an integer in %lld..%lld", field,
                 (long long)min, (long long)max);
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

int jm__param_bool(const cJSON *p, const char *field, int required, int *out, char *err,
                   size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, field);
    if (!v) {
        if (!required)
            return 0;
        snprintf(err, errlen, "missing required parameter \"%s\"", field);
        return -1;
    }
    if (!cJSON_IsBool(v)) {
        snprintf(err, errlen, "parameter \"%s\" must be true or false", field);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

int jm__param_table_type(const cJSON *p, const char *field, jm_table_type *out, char *err,
                         size_t errlen)
{
    const char *s = NULL;
    if (jm__param_string(p, field, 1, 16, &s, err, errlen))
        return -1;
    if (jm_table_type_parse(s, out) != JM_OK) {
        snprintf(err, errlen, "parameter \"%s\" must be \"User\", \"Shared\" or \"Stream\"",
                 field);
        return -1;
    }
    return 0;
}

int jm__param_local_dir(const cJSON *p, const char *field, const char **out, char *err,
                        size_t errlen)
{
    const char *s = NULL;
    if (jm__param_string(p, field, 1, JM_PARAM_PATH_MAX, &s, err, errlen))
        return -1;
    const char *scheme_end = strstr(s, "://");
    if (scheme_end) {
        snprintf(err, errlen,
                 "parameter \"%s\": only local directories are supported: %.*s is not", field,
                 (int)(scheme_end - s > 32 ? 32 : scheme_end - s), s);
        return -1;
    }
    if (s[0] != '/') {
        snprintf(err, errlen, "parameter \"%s\" must be an absolute path", field);
        return -1;
    }
    /* A ".." component could climb out of where the operator looked. */
    for (const char *c = s; (c = strstr(c, "..")) != NULL; c += 2) {
        if (c[-1] == '/' && (c[2] == '/' || c[2] == '\0')) {
            snprintf(err, errlen, "parameter \"%s\" must not contain \"..\" components", field);
            return -1;
        }
    }
    *out = s;
    return 0;
}

const char *jm__get_str(jm_ctx *ctx, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A JSON number as int64_t, or def when it is absent or out of range. */
static int64_t number_or(const cJSON *v, int64_t def)
{
    if (!cJSON_IsNumber(v))
        return def;
    double d = v->valuedouble;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return def;
    return (int64_t)d;
}

int64_t jm__get_int(jm_ctx *ctx, const char *field, int64_t def)
{
    return number_or(cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), field), def);
}

int jm__get_bool(jm_ctx *ctx, const char *field, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(jm_ctx_params(ctx), field);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

cJSON *jm__checkpoint_load(jm_ctx *ctx)
{
    const char *cp = jm_job_checkpoint(jm_ctx_job(ctx));
    if (!cp)
        return NULL;
    cJSON *v = cJSON_Parse(cp);
    if (v && !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

int64_t jm__checkpoint_int(const cJSON *cp, const char *field, int64_t def)
{
    return number_or(cJSON_GetObjectItemCaseSensitive(cp, field), def);
}

int jm__checkpoint_save(jm_ctx *ctx, const cJSON *cp)
{
    char *text = cJSON_PrintUnformatted(cp);
    if (!text)
        return jm_host_error(JM_ENOMEM, "out of memory saving a checkpoint");
    int rc = jm_ctx_checkpoint(ctx, text);
    cJSON_free(text);
    return rc;
}

const jm_host *jm__exec_host(jm_ctx *ctx, jm_decision *fail)
{
    const jm_host *h = jm_ctx_host(ctx);
    if (!h) {
        *fail = jm_decision_failed("no host configured: set cfg.host to the engine's host "
                                   "(e.g. jm_engine_host())",
                                   NULL);
        return NULL;
    }
    if (h->version < 1) {
        *fail = jm_decision_failed(
            jm_ctx_strf(ctx, "host interface version %u is too old (need 1)", h->version), NULL);
        return NULL;
    }
    return h;
}

jm_decision jm__host_failure(jm_ctx *ctx, int rc, const char *what, int64_t busy_backoff_ms)
{
    const char *detail = jm_last_error();
    if (rc == JM_EBUSY)
        return jm_decision_retry(jm_ctx_strf(ctx, "%s: busy, will retry: %s", what, detail),
                                 NULL, busy_backoff_ms);
    return jm_decision_failed(jm_ctx_strf(ctx, "%s failed: %s", what, detail),
                              jm_ctx_strf(ctx, "%s: %s (%s)", what, jm_strerror(rc), detail));
}

int jm__json_int(const cJSON *obj, const char *field, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    /* Range first: only then is the conversion to int64_t defined. */
    if (d != d || d < -(double)JM__JSON_INT_MAX || d > (double)JM__JSON_INT_MAX ||
        d != (double)(int64_t)d)
        return -1;
    *out = (int64_t)d;
    return 0;
}

const char *jm__metrics_json(jm_ctx *ctx, const char *const names[], const int64_t values[],
                             size_t n)
{
    const char *result = NULL;
    char *text = NULL;
    cJSON *obj = cJSON_CreateObject();
    if (!obj)
        goto done;
    for (size_t i = 0; i < n; i++)
        if (!cJSON_AddNumberToObject(obj, names[i], (double)values[i]))
            goto done;
    text = cJSON_PrintUnformatted(obj);
    if (!text)
        goto done;
    /* jm_ctx_strf gives "" when out of memory; "" is no JSON object. */
    result = jm_ctx_strf(ctx, "%s", text);
    if (!*result)
        result = NULL;
done:
    cJSON_free(text);
    cJSON_Delete(obj);
    return result;
}

int jm__exec_table(jm_ctx *ctx, const jm_host *h, const char *ns, const char *table,
                   jm_table_type expected, jm_host_table *info, jm_decision *fail)
{
    memset(info, 0, sizeof *info);
    int rc = h->table_info(h->self, ns, table, info);
    if (rc == JM_ENOTFOUND) {
        *fail = jm_decision_failed(jm_ctx_strf(ctx, "table %s.%s not found: it does not exist", ns, table), NULL);
        return -1;
    }
    if (rc != JM_OK) {
        *fail = jm__host_failure(ctx, rc, jm_ctx_strf(ctx, "looking up table %s.%s", ns, table),
                                 JM__BACKOFF_POLICY);
        return -1;
    }
    if (info->type != expected) {
        *fail = jm_decision_failed(jm_ctx_strf(ctx, "table %s.%s is a %s table, not %s", ns,
                                               table, jm_table_type_name(info->type),
                                               jm_table_type_name(expected)),
                                   NULL);
        return -1;
    }
    return 0;
}

int jm__resource_text(const char *text, char *buf, size_t buflen)
{
    size_t n = strlen(text);
    if (n <= JM_MAX_RESOURCE_BYTES) {
        if (n + 1 > buflen)
            return -1;
        memcpy(buf, text, n + 1);
        return 0;
    }
    char hex[JM_SHA256_HEX_SIZE];
    jm__sha256_hex(text, n, hex);
    int len = snprintf(buf, buflen, RESOURCE_DIGEST_PREFIX "%s", hex);
    return len < 0 || (size_t)len >= buflen ? -1 : 0;
}

int jm__table_resource(const cJSON *p, const char *ns_field, const char *table_field, char *buf,
                       size_t buflen)
{
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(p, ns_field);
    const cJSON *table = cJSON_GetObjectItemCaseSensitive(p, table_field);
    if (!cJSON_IsString(ns) || !cJSON_IsString(table) || !ns->valuestring ||
        !table->valuestring)
        return -1;
    /* Two names of at most JM_HOST_NAME_MAX bytes and the dot. */
    char text[2 * JM_HOST_NAME_MAX + 2];
    int n = snprintf(text, sizeof text, "%s.%s", ns->valuestring, table->valuestring);
    if (n < 0 || (size_t)n >= sizeof text)
        return -1;
    return jm__resource_text(text, buf, buflen);
}

int jm__exec_should_pause(jm_ctx *ctx)
{
    return jm_ctx_should_yield(ctx) && !jm_ctx_is_cancelled(ctx);
}
