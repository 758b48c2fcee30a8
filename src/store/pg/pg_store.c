/* The PostgreSQL store: opening and closing it, reading job rows, and its
 * vtable. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "job_id.h"
#include "pg_internal.h"

/* Schema names the store accepts; the wake channel "jm_wake_<schema>"
 * must fit PostgreSQL's 63-byte identifiers. */
#define SCHEMA_MAX 48

static int schema_valid(const char *name)
{
    size_t n = strlen(name);
    /* PostgreSQL keeps pg_* for its own schemas. */
    if (n == 0 || n > SCHEMA_MAX || (name[0] >= '0' && name[0] <= '9') ||
        strncmp(name, "pg_", 3) == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

static void pg_close(jm__store *s)
{
    if (!s)
        return;
    jm__pg_rollback(s);
    jm__pg_gate_free(s);
    if (s->conn)
        PQfinish(s->conn);
    if (s->side)
        PQfinish(s->side);
    jm__free(s->prepared);
    jm__free(s->conninfo);
    jm__free(s->schema);
    jm__free(s->schema_quoted);
    jm__free(s);
}

static int pg_open(const jm__store_config *cfg, jm__store **out)
{
    *out = NULL;
    const char *schema = cfg->schema ? cfg->schema : "jobmgr";
    if (!cfg->url)
        return jm__seterr(JM_EINVAL, "the PostgreSQL store needs a connection URL");
    if (!schema_valid(schema))
        return jm__seterr(JM_EINVAL,
                          "bad PostgreSQL schema name: expected 1 to %d of a-z, 0-9 and _, "
                          "not starting with a digit or pg_",
                          SCHEMA_MAX);
    jm__store *s = jm__calloc(1, sizeof *s);
    char quoted[SCHEMA_MAX + 3];
    snprintf(quoted, sizeof quoted, "\"%s\"", schema);
    if (!s || !(s->conninfo = jm__strdup(cfg->url)) || !(s->schema = jm__strdup(schema)) ||
        !(s->schema_quoted = jm__strdup(quoted))) {
        pg_close(s);
        return jm__seterr(JM_ENOMEM, "out of memory opening the PostgreSQL store");
    }
    s->reader = cfg->reader;
    s->durable_sync = cfg->durable_sync;
    s->busy_timeout_ms = cfg->busy_timeout_ms;
    jm__pg_channel(s, s->channel, sizeof s->channel, NULL, 0);
    jm__pg_process_token(s->token);
    s->conn = jm__pg_connect(s->conninfo, s->schema_quoted, s->durable_sync);
    int rc = s->conn ? JM_OK : JM_EIO;
    if (!rc && !s->reader)
        rc = jm__pg_schema_ensure(s);
    if (rc) {
        pg_close(s);
        return rc;
    }
    *out = s;
    return JM_OK;
}

static const char *pg_file_path(jm__store *s)
{
    (void)s;
    return NULL;
}

static const char *pg_caveat(void)
{
    return NULL;
}

int jm__pg_id_split(const char *id, char prefix[JM_JOB_ID_SIZE], int64_t *seq)
{
    int64_t v = 0;
    size_t n = id ? strnlen(id, JM_JOB_ID_SIZE) : 0;
    int ok = n == JM__ID_SEQ_AT + JM__ID_SEQ_DIGITS;
    for (size_t i = JM__ID_SEQ_AT; ok && i < n; i++) {
        char c = id[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        ok = d >= 0;
        v = v * 16 + d;
    }
    if (!ok || v <= 0)
        return jm__seterr(JM_ENOTFOUND, "no job %s", id ? id : "(null)");
    memcpy(prefix, id, JM__ID_SEQ_AT);
    prefix[JM__ID_SEQ_AT] = '\0';
    *seq = v;
    return JM_OK;
}

void jm__pg_row_id(const PGresult *r, int row, int first, char out[JM_JOB_ID_SIZE])
{
    const char *id = jm__pg_str(r, row, first + 1);
    snprintf(out, JM_JOB_ID_SIZE, "%s", id ? id : "");
    if (id && strlen(id) == JM__ID_SEQ_AT)
        jm__job_id_set_seq(out, jm__pg_i64(r, row, first));
}

static int dup_col(const PGresult *r, int row, int col, char **out)
{
    const char *v = jm__pg_str(r, row, col);
    *out = v ? jm__strdup(v) : NULL;
    return v && !*out ? JM_ENOMEM : JM_OK;
}

int jm__pg_row_to_job(const PGresult *r, int row, int c, jm_job **out)
{
    jm_job *j = jm__job_new();
    if (!j)
        return jm__seterr(JM_ENOMEM, "out of memory reading a job");
    j->seq = jm__pg_i64(r, row, c + 0);
    jm__pg_row_id(r, row, c, j->id);
    const char *type = jm__pg_str(r, row, c + 2);
    snprintf(j->type, sizeof j->type, "%s", type ? type : "");
    j->status = (jm_status)jm__pg_i64(r, row, c + 3);
    char **strs[] = {&j->namespace_id, &j->params, &j->idempotency_key, &j->message,
                     &j->trace,        &j->result, &j->checkpoint,      &j->node_id};
    int rc = JM_OK;
    for (int i = 0; i < 8 && rc == JM_OK; i++)
        rc = dup_col(r, row, c + 4 + i, strs[i]);
    if (!rc)
        rc = dup_col(r, row, c + 24, &j->schedule_id);
    if (!rc)
        rc = dup_col(r, row, c + 26, &j->resource);
    if (!rc)
        rc = dup_col(r, row, c + 28, &j->blocked_by);
    if (rc) {
        jm_job_free(j);
        return jm__seterr(JM_ENOMEM, "out of memory reading a job");
    }
    j->progress = jm__pg_dbl(r, row, c + 12);
    j->retry_count = (int)jm__pg_i64(r, row, c + 13);
    j->max_retries = (int)jm__pg_i64(r, row, c + 14);
    j->priority = (int)jm__pg_i64(r, row, c + 15);
    j->attempts = (int)jm__pg_i64(r, row, c + 16);
    j->cancel_requested = (int)jm__pg_i64(r, row, c + 17);
    j->created_at = jm__pg_i64(r, row, c + 18);
    j->updated_at = jm__pg_i64(r, row, c + 19);
    j->started_at = jm__pg_i64(r, row, c + 20);
    j->finished_at = jm__pg_i64(r, row, c + 21);
    j->run_at = jm__pg_i64(r, row, c + 22);
    j->lease_until = jm__pg_i64(r, row, c + 23);
    j->fire_time = jm__pg_i64(r, row, c + 25);
    j->pause_requested = (int)jm__pg_i64(r, row, c + 27);
    *out = j;
    return JM_OK;
}

const jm__store_ops jm__pg_store = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .insert = jm__pg_insert,
    .insert_wakes = 1,
    .get = jm__pg_get,
    .list = jm__pg_list,
    .count = jm__pg_count,
    .claim = jm__pg_claim,
    .finish = jm__pg_finish,
    .cycle = jm__pg_cycle,
    .write_group = jm__pg_write_group,
    .schedule_insert = jm__pg_schedule_insert,
    .schedule_get = jm__pg_schedule_get,
    .schedule_list = jm__pg_schedule_list,
    .schedule_update = jm__pg_schedule_update,
    .schedule_delete = jm__pg_schedule_delete,
    .schedule_pause = jm__pg_schedule_pause,
    .schedule_due = jm__pg_schedule_due,
    .schedule_next_fire = jm__pg_schedule_next_fire,
    .schedule_fire = jm__pg_schedule_fire,
    .policy_insert = jm__pg_policy_insert,
    .policy_get = jm__pg_policy_get,
    .policy_list = jm__pg_policy_list,
    .policy_delete = jm__pg_policy_delete,
    .policy_pause = jm__pg_policy_pause,
    .keyed_job_created = jm__pg_keyed_job_created,
    .conflict_set = jm__pg_conflict_set,
    .limit_set = jm__pg_limit_set,
    .pause_set = jm__pg_pause_set,
    .pause_list = jm__pg_pause_list,
    .conflict_list = jm__pg_conflict_list,
    .limit_list = jm__pg_limit_list,
    .pause_job = jm__pg_pause_job,
    .resume_job = jm__pg_resume_job,
    .checkpoint = jm__pg_checkpoint,
    .progress = jm__pg_progress,
    .renew = jm__pg_renew,
    .cancel = jm__pg_cancel,
    .status = jm__pg_status,
    .retry = jm__pg_retry,
    .prune = jm__pg_prune,
    .settle = NULL,
    .running_owners = jm__pg_running_owners,
    .recover_owner = jm__pg_recover_owner,
    .recover_expired = jm__pg_recover_expired,
    .rebase = jm__pg_rebase,
    .file_path = pg_file_path,
    .start_check = jm__pg_start_check,
    .caveat = pg_caveat,
    .release = jm__pg_release,
    .stats = jm__pg_stats,
    .throughput = jm__pg_throughput,
    .insert_in = jm__pg_insert_in,
    .wake_open = jm__pg_wake_open,
    .wake_close = jm__pg_wake_close,
    .wake_post = jm__pg_wake_post,
    .wake_seq = jm__pg_wake_seq,
    .wake_wait = jm__pg_wake_wait,
    .wake_interrupt = jm__pg_wake_interrupt,
    .wake_listen = jm__pg_wake_listen,
};
