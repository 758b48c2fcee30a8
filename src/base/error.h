/*
 * The thread-local last error. Every failing path records a message with
 * jm__seterr and returns its code, so callers can `return jm__seterr(...)`.
 */
#ifndef JM_ERROR_H
#define JM_ERROR_H

#include <stdarg.h>

#include "jobmgr.h"

#define JM_ERRMSG_SIZE 1024

int jm__seterr(int code, const char *fmt, ...) JM_PRINTF(2, 3);
int jm__vseterr(int code, const char *fmt, va_list ap) JM_PRINTF(2, 0);

#endif
