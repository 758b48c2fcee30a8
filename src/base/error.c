/* Error names and messages, generated from JM_ERRNO_MAP, and the
 * thread-local detail message that jm__seterr and jm_host_error both set. */
#include "error.h"
#include "jobmgr/host.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[JM_ERRMSG_SIZE];

int jm__vseterr(int code, const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    return code;
}

int jm__seterr(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jm__vseterr(code, fmt, ap);
    va_end(ap);
    return code;
}

const char *jm_last_error(void)
{
    return last_error[0] ? last_error : "no error";
}

const char *jm_strerror(int code)
{
    switch (code) {
#define XX(name, value, text) \
    case (value):             \
        return text;
        JM_ERRNO_MAP(XX)
#undef XX
    default:
        return "unknown error";
    }
}

const char *jm_err_name(int code)
{
    switch (code) {
#define XX(name, value, text) \
    case (value):             \
        return #name;
        JM_ERRNO_MAP(XX)
#undef XX
    default:
        return "EUNKNOWN";
    }
}

/* The public name of jm__seterr, for hosts and executors. */
int jm_host_error(int code, const char *fmt, ...)
{
    if (!fmt)
        return jm__seterr(code, "host error");
    va_list ap;
    va_start(ap, fmt);
    jm__vseterr(code, fmt, ap);
    va_end(ap);
    return code;
}
