/* Turns a row of JM_JOB_COLUMNS into a jm_job, and tells a row that outside
 * damage made unreadable from one SQLite had no memory to read. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "job_id.h"
#include "sqlite_internal.h"

static int col_str(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    if (!v) {
        *out = NULL;
        /* NULL text with a non-NULL type means SQLite ran out of memory. */
        return sqlite3_column_type(st, i) == SQLITE_NULL ? JM_OK : JM_ENOMEM;
    }
    *out = jm__strndup((const char *)v, (size_t)sqlite3_column_bytes(st, i));
    return *out ? JM_OK : JM_ENOMEM;
}

void jm__row_id(sqlite3_stmt *st, int c, char out[JM_JOB_ID_SIZE])
{
    const char *id = (const char *)sqlite3_column_text(st, c + 1);
    int n = sqlite3_column_bytes(st, c + 1);
    snprintf(out, JM_JOB_ID_SIZE, "%s", id ? id : "");
    if (n == JM__ID_SEQ_AT)
        jm__job_id_set_seq(out, sqlite3_column_int64(st, c));
}

const char *jm__row_damage(sqlite3_stmt *st, int c)
{
    /* The column types first: asking for the text converts the value. */
    if (sqlite3_column_type(st, c + 1) == SQLITE_NULL)
        return "id is NULL";
    if (sqlite3_column_type(st, c + 2) == SQLITE_NULL)
        return "type is NULL";
    /* NULL text of a non-NULL value: SQLite ran out of memory, and the
     * row may be sound (jm__row_to_job reports that). */
    if (sqlite3_column_text(st, c + 1) && sqlite3_column_bytes(st, c + 1) == 0)
        return "id is empty";
    if (sqlite3_column_text(st, c + 2) && sqlite3_column_bytes(st, c + 2) != 2)
        return "type is not two bytes";
    return NULL;
}

int jm__row_to_job(sqlite3_stmt *st, int c, jm_job **out)
{
    const char *damage = jm__row_damage(st, c);
    if (damage)
        return jm__seterr(JM_EDB, "damaged job row (seq %lld): %s",
                          (long long)sqlite3_column_int64(st, c + 0), damage);
    jm_job *j = jm__job_new();
    if (!j)
        return jm__seterr(JM_ENOMEM, "out of memory reading a job");
    j->seq = sqlite3_column_int64(st, c + 0);
    const char *id = (const char *)sqlite3_column_text(st, c + 1);
    const char *type = (const char *)sqlite3_column_text(st, c + 2);
    if (!id || !type) {
        jm_job_free(j);
        return jm__seterr(JM_ENOMEM, "out of memory reading a job");
    }
    jm__row_id(st, c, j->id);
    snprintf(j->type, sizeof j->type, "%s", type);
    j->status = (jm_status)sqlite3_column_int(st, c + 3);
    int rc = JM_OK;
    char **strs[] = {&j->namespace_id, &j->params, &j->idempotency_key, &j->message,
                     &j->trace,        &j->result, &j->checkpoint,      &j->node_id};
    for (int i = 0; i < 8 && rc == JM_OK; i++)
        rc = col_str(st, c + 4 + i, strs[i]);
    if (rc) {
        jm_job_free(j);
        return jm__seterr(JM_ENOMEM, "out of memory reading a job");
    }
    j->progress = sqlite3_column_double(st, c + 12);
    j->retry_count = sqlite3_column_int(st, c + 13);
    j->max_retries = sqlite3_column_int(st, c + 14);
    j->priority = sqlite3_column_int(st, c + 15);
    j->attempts = sqlite3_column_int(st, c + 16);
    j->cancel_requested = sqlite3_column_int(st, c + 17);
    j->created_at = sqlite3_column_int64(st, c + 18);
    j->updated_at = sqlite3_column_int64(st, c + 19);
    j->started_at = sqlite3_column_int64(st, c + 20);
    j->finished_at = sqlite3_column_int64(st, c + 21);
    j->run_at = sqlite3_column_int64(st, c + 22);
    j->lease_until = sqlite3_column_int64(st, c + 23);
    if (col_str(st, c + 24, &j->schedule_id) || col_str(st, c + 26, &j->resource) ||
        col_str(st, c + 28, &j->blocked_by)) {
        jm_job_free(j);
        return jm__seterr(JM_ENOMEM, "out of memory reading a job");
    }
    j->fire_time = sqlite3_column_int64(st, c + 25);
    j->pause_requested = sqlite3_column_int(st, c + 27);
    *out = j;
    return JM_OK;
}
