/* The built-in executors, one file each, registered by jm_register_builtin. */
#ifndef JM_BUILTIN_H
#define JM_BUILTIN_H

#include "jobmgr.h"

extern const jm_executor jm__flush_executor;
extern const jm_executor jm__cleanup_executor;
extern const jm_executor jm__retention_executor;
extern const jm_executor jm__stream_eviction_executor;
extern const jm_executor jm__user_cleanup_executor;
extern const jm_executor jm__compact_executor;
extern const jm_executor jm__backup_executor;
extern const jm_executor jm__restore_executor;

#endif
