/* Creating jobs (create.c): the checks a job passes before its row is
 * written, shared with schedules. */
#ifndef JM_CREATE_H
#define JM_CREATE_H

#include "manager.h"

/* Validates a job as jm_create() does (type registered, options,
 * parameters, the executor's validate) and fills `row`, but not its id or
 * created_at. The errors are jm_create()'s. */
/* The row may own a resource string the caller frees (row->resource_owned),
 * whatever the result. */
int jm__create_prepare(jm_manager *m, const jm_new_job *j, int64_t now, jm__new_row *row);

#endif
