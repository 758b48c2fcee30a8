/* Typed job ids: "<type>-<uuid>". */
#ifndef JM_JOB_ID_H
#define JM_JOB_ID_H

#include <stdint.h>

#include "jobmgr.h"

/* Where the id's last group, the job's sequence number, starts ("FL-" and
 * four groups with their dashes), and how many hex digits it has. */
#define JM__ID_SEQ_AT 27
#define JM__ID_SEQ_DIGITS 12
/* Sequence numbers an id can carry: 48 bits. */
#define JM__ID_SEQ_LIMIT (INT64_C(1) << 48)

/* Non-zero if t is exactly two uppercase ASCII letters. */
int jm__type_valid(const char *t);

/* A new id for `type` (already valid), all but its sequence number: the
 * uuid has the custom version-8 layout, 48-bit milliseconds, 26 random
 * bits, then a 48-bit group the store fills with the row's sequence number
 * (jm__job_id_set_seq). Ids sort by creation time; an id is unique in its
 * database because its sequence number is, and it locates its row without
 * an index of its own. */
void jm__job_id_new(const char *type, char out[JM_JOB_ID_SIZE]);

/* Writes `seq` (0 <= seq < JM__ID_SEQ_LIMIT) as the id's last group, and
 * the NUL after it. */
void jm__job_id_set_seq(char id[JM_JOB_ID_SIZE], int64_t seq);

/* The sequence number an id of version 8 carries, or 0 for any other
 * (ids of earlier versions carry none). Checks only what it reads: the
 * id is expected to have passed jm_job_id_parse. */
int64_t jm__job_id_seq(const char *id);

#endif
