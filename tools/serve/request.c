/*
 * Reading requests: query arguments, JSON bodies and their members, and
 * the names a path may carry. Everything here refuses rather than guesses.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <microhttpd.h>

#include "serve_internal.h"

const char *dash_arg(const dash_req *rq, const char *name)
{
    const char *v = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

cJSON *dash_body_object(const dash_req *rq, dash_resp *r)
{
    if (rq->body_len == 0) {
        dash_error(r, 400, "JM_EJSON", "the request needs a JSON object as its body");
        return NULL;
    }
    cJSON *o = cJSON_ParseWithLength(rq->body, rq->body_len);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        dash_error(r, 400, "JM_EJSON", "the body is not a JSON object");
        return NULL;
    }
    return o;
}

int dash_member_text(const cJSON *o, const char *name, const char **out, dash_resp *r)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v)) {
        dash_error(r, 400, "JM_EINVAL", "\"%s\" must be a string", name);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

int dash_member_int(const cJSON *o, const char *name, int64_t min, int64_t max, int64_t *out,
                    dash_resp *r)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v))
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
    if (!cJSON_IsNumber(v) || d != d || d < (double)min || d > (double)max ||
        d != (double)(int64_t)d) {
        dash_error(r, 400, "JM_EINVAL", "\"%s\" must be a whole number in [%lld, %lld]", name,
                   (long long)min, (long long)max);
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

int dash_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s || strlen(s) > 20)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || s[0] == ' ' || s[0] == '+' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int dash_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '/')
            return 0;
    }
    return 1;
}

int64_t dash_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}
