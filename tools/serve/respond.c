/*
 * Building answers: JSON bodies and JSON errors, and the HTTP status each
 * library error maps to.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_internal.h"

static const char NOMEM_BODY[] =
    "{\"error\":{\"code\":\"JM_ENOMEM\",\"message\":\"out of memory\"}}";

void dash_nomem(dash_resp *r)
{
    if (r->body && !r->is_static)
        cJSON_free(r->body);
    r->status = 500;
    r->body = (char *)NOMEM_BODY;
    r->len = sizeof NOMEM_BODY - 1;
    r->is_static = 1;
    r->type = "application/json";
}

void dash_text(dash_resp *r, unsigned status, char *text, const char *type)
{
    if (r->body && !r->is_static)
        cJSON_free(r->body);
    r->status = status;
    r->body = text;
    r->len = strlen(text);
    r->is_static = 0;
    r->type = type;
}

void dash_json(dash_resp *r, unsigned status, cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!text) {
        dash_nomem(r);
        return;
    }
    dash_text(r, status, text, "application/json");
}

void dash_error(dash_resp *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON *e = o ? cJSON_AddObjectToObject(o, "error") : NULL;
    if (!e || !cJSON_AddStringToObject(e, "code", code) ||
        !cJSON_AddStringToObject(e, "message", msg)) {
        cJSON_Delete(o);
        dash_nomem(r);
        return;
    }
    dash_json(r, status, o);
}

static unsigned lib_status(int rc)
{
    switch (rc) {
    case JM_EINVAL:
    case JM_EJSON:
    case JM_ETOOBIG:
        return 400;
    case JM_ENOTFOUND:
        return 404;
    case JM_ECONFLICT:
    case JM_ESTATE:
    case JM_ENOTCANCELLABLE:
    case JM_ENOEXEC:
        return 409;
    case JM_EBUSY:
    case JM_ESTOPPED:
        return 503;
    default:
        return 500;
    }
}

void dash_lib_error(dash_resp *r, int rc)
{
    char code[48];
    snprintf(code, sizeof code, "JM_%s", jm_err_name(rc));
    dash_error(r, lib_status(rc), code, "%s", jm_last_error());
}
