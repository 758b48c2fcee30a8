/* Logging through the host's callback, job lines prefixed "[<id>] ". */
#ifndef JM_LOG_H
#define JM_LOG_H

#include <stdarg.h>

#include "jobmgr.h"

void jm__log(jm_manager *m, jm_log_level level, const char *job_id, const char *fmt, ...)
    JM_PRINTF(4, 5);
void jm__vlog(jm_manager *m, jm_log_level level, const char *job_id, const char *fmt,
              va_list ap);

#endif
