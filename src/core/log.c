/* Formats log lines and hands them to the configured sink (stderr when the
 * host gave none). Lines are formatted on the stack: logging must work when
 * memory is short. */
#include "log.h"

#include <stdio.h>

#include "manager.h"

static const char *level_name(jm_log_level l)
{
    switch (l) {
    case JM_LOG_DEBUG:
        return "debug";
    case JM_LOG_INFO:
        return "info";
    case JM_LOG_WARN:
        return "warn";
    default:
        return "error";
    }
}

void jm__vlog(jm_manager *m, jm_log_level level, const char *job_id, const char *fmt,
              va_list ap)
{
    if (level < m->cfg.log_level || m->cfg.log_level >= JM_LOG_OFF)
        return;
    char line[2048];
    int n = job_id ? snprintf(line, sizeof line, "[%s] ", job_id) : 0;
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (m->cfg.log_fn)
        m->cfg.log_fn(m->cfg.log_user, level, line);
    else
        fprintf(stderr, "jobmgr %s: %s\n", level_name(level), line);
}

void jm__log(jm_manager *m, jm_log_level level, const char *job_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jm__vlog(m, level, job_id, fmt, ap);
    va_end(ap);
}
