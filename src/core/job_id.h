/* Typed job ids: "<type>-<uuid>". */
#ifndef JM_JOB_ID_H
#define JM_JOB_ID_H

#include "jobmgr.h"

/* Non-zero if t is exactly two uppercase ASCII letters. */
int jm__type_valid(const char *t);

/* A new id for `type` (already valid). The uuid has the time-ordered
 * version-7 layout (48-bit milliseconds, then random bits from libuuid), so
 * ids of one type sort by creation time and index inserts land at the end
 * of the B-tree instead of scattering across it. */
void jm__job_id_new(const char *type, char out[JM_JOB_ID_SIZE]);

#endif
