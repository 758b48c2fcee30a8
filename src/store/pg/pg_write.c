/*
 * Creating jobs, and group commit: several callers' writes (creates,
 * cancels, retries, checkpoints) in one transaction. The other writes
 * live in pg_jobs.c.
 *
 * An idempotency key is claimed with ON CONFLICT DO NOTHING on the unique
 * partial index of active jobs (jm_jobs_idempotency): a refused row is no
 * error, so a transaction it happens in stays usable and the refusal needs
 * no savepoint of its own.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job_id.h"
#include "pg_array.h"
#include "pg_internal.h"

/* The ON CONFLICT target: the predicate of jm_jobs_idempotency. */
#define ON_ACTIVE_KEY                                                                 \
    "ON CONFLICT (idempotency_key) "                                                  \
    "WHERE idempotency_key IS NOT NULL AND (status <= 3 OR status = 7) DO NOTHING "

/* How often a refused row is tried again when its key's holder ended
 * between the insert and the look-up (under READ COMMITTED the look-up
 * sees a later snapshot). */
#define INSERT_TRIES 3

/* The name PostgreSQL gives the seq column's CHECK (pg_schema.c): its
 * violation means the ids have run out of sequence numbers. */
#define SEQ_CHECK "jm_jobs_seq_check"

#define INSERT_INTO                                                                   \
    "INSERT INTO jm_jobs (id, type, status, namespace_id, params, idempotency_key, "    \
    "max_retries, priority, created_at, updated_at, run_at, resource, pinned_node, "    \
    "schedule_id, fire_time) "                                                          \
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, $13, $14) "

/* A row without a key cannot be refused: it goes in without ON CONFLICT,
 * whose speculative insertion costs a lock and a log record more. */
#define INSERT_ROW INSERT_INTO ON_ACTIVE_KEY "RETURNING seq"
#define INSERT_KEYLESS INSERT_INTO "RETURNING seq"

/* A row due now wakes the other processes' managers with its own commit:
 * the NOTIFY ($15 the channel, $16 this process's token) rides in the
 * insert's statement and transaction, so it costs no round trip or commit
 * of its own, and a refused or undone row sends none. */
#define WITH_WAKE(insert) "WITH ins AS (" insert ") SELECT seq, pg_notify($15, $16) FROM ins"

/* [has a key][wakes] */
static const char *const insert_sql[2][2] = {
    {INSERT_KEYLESS, WITH_WAKE(INSERT_KEYLESS)},
    {INSERT_ROW, WITH_WAKE(INSERT_ROW)},
};

/* A batch in one statement: each row gets its seq first (in the batch's
 * order), so the result maps every row to its seq and says whether it went
 * in, and rows go in in the batch's order, so of two rows with one key the
 * first wins. */
#define BATCH_ROWS                                                                    \
    "WITH u AS MATERIALIZED ("                                                          \
    " SELECT nextval((SELECT pg_get_serial_sequence('jm_jobs', 'seq'))::regclass) AS seq, x.*" \
    " FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[]," \
    "  $7::int[], $8::int[], $9::bigint[], $10::bigint[], $11::text[], $12::text[],"    \
    "  $13::text[], $14::bigint[])"                                                     \
    " WITH ORDINALITY AS x(id, type, status, namespace_id, params, idempotency_key,"    \
    "  max_retries, priority, created_at, run_at, resource, pinned_node, schedule_id,"  \
    "  fire_time, ord)), "                                                              \
    "ins AS ("                                                                          \
    " INSERT INTO jm_jobs (seq, id, type, status, namespace_id, params, idempotency_key," \
    "  max_retries, priority, created_at, updated_at, run_at, resource, pinned_node,"   \
    "  schedule_id, fire_time) OVERRIDING SYSTEM VALUE"                                 \
    " SELECT seq, id, type, status, namespace_id, params, idempotency_key, max_retries," \
    "  priority, created_at, created_at, run_at, resource, pinned_node, schedule_id,"   \
    "  fire_time FROM u ORDER BY ord " ON_ACTIVE_KEY "RETURNING seq) "

static const char batch_sql[] =
    BATCH_ROWS "SELECT seq, (seq IN (SELECT seq FROM ins))::int FROM u ORDER BY ord";

/* As batch_sql, for a batch with rows due now: one NOTIFY ($15, $16 as in
 * WITH_WAKE) once any row went in. */
static const char batch_wake_sql[] =
    BATCH_ROWS "SELECT seq, (seq IN (SELECT seq FROM ins))::int, "
    "(SELECT pg_notify($15, $16) FROM (SELECT 1 FROM ins LIMIT 1) AS any_in) "
    "FROM u ORDER BY ord";

static const char holder_sql[] =
    "SELECT seq, id FROM jm_jobs "
    "WHERE idempotency_key = $1 AND (status <= 3 OR status = 7)";

/* ---- the refused row ---- */

/* The active job holding `key`: its whole id and seq, or "" if none. */
static int active_holder(jm__store *s, const char *key, char id[JM_JOB_ID_SIZE], int64_t *seq)
{
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, key);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "looking up an idempotency key", holder_sql, &p, &r);
    if (rc)
        return rc;
    id[0] = '\0';
    *seq = 0;
    if (PQntuples(r) > 0) {
        jm__pg_row_id(r, 0, 0, id);
        *seq = jm__pg_i64(r, 0, 0);
    }
    PQclear(r);
    return JM_OK;
}

static int conflict(const jm__new_row *r, size_t index, const char *holder, int in_batch,
                    size_t *conflict_index, char conflict_id[JM_JOB_ID_SIZE])
{
    if (conflict_index)
        *conflict_index = index;
    if (conflict_id)
        snprintf(conflict_id, JM_JOB_ID_SIZE, "%s", in_batch ? "" : holder);
    return jm__seterr(JM_ECONFLICT, "idempotency key '%.300s' is held by active job %s",
                      r->idempotency_key, holder);
}

/* A refused row without an active holder: it ended meanwhile, every try. */
static int holder_gone(const jm__new_row *r)
{
    return jm__seterr(JM_EBUSY, "inserting a job: the active job holding idempotency key "
                                "'%.300s' kept ending while it was looked up",
                      r->idempotency_key);
}

/* The database's error in the store's words where it has some. */
static int insert_error(int rc)
{
    if (rc == JM_EDB && strstr(jm_last_error(), SEQ_CHECK))
        return jm__seterr(JM_EDB, "inserting a job: the database has used up its %lld job "
                                  "sequence numbers (prune, then start a new database)",
                          (long long)JM__ID_SEQ_LIMIT - 1);
    return rc;
}

/* ---- one row: one statement, its own transaction ---- */

/* Runs the insert once: *refused when the key is held. */
static int insert_once(jm__store *s, const jm__new_row *r, int *refused)
{
    char stored[JM__ID_SEQ_AT + 1];
    snprintf(stored, sizeof stored, "%.*s", JM__ID_SEQ_AT, r->id); /* without its seq */
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, stored);
    jm__pg_p_str(&p, r->type);
    jm__pg_p_i64(&p, (int64_t)r->status);
    jm__pg_p_str(&p, r->namespace_id);
    jm__pg_p_str(&p, r->params);
    jm__pg_p_str(&p, r->idempotency_key);
    jm__pg_p_i64(&p, r->max_retries);
    jm__pg_p_i64(&p, r->priority);
    jm__pg_p_i64(&p, r->created_at);
    jm__pg_p_i64(&p, r->run_at);
    jm__pg_p_str(&p, r->resource);
    jm__pg_p_str(&p, r->node_id);
    jm__pg_p_str(&p, r->schedule_id);
    if (r->schedule_id)
        jm__pg_p_i64(&p, r->fire_time);
    else
        jm__pg_p_str(&p, NULL);
    int wake = r->status == JM_STATUS_QUEUED;
    if (wake) {
        jm__pg_p_str(&p, s->channel);
        jm__pg_p_str(&p, s->token);
    }
    PGresult *res = NULL;
    int rc = jm__pg_run(s, "inserting a job", insert_sql[r->idempotency_key != NULL][wake], &p,
                        &res);
    if (rc)
        return insert_error(rc);
    *refused = PQntuples(res) == 0;
    if (!*refused)
        jm__job_id_set_seq(r->id, jm__pg_i64(res, 0, 0));
    PQclear(res);
    return JM_OK;
}

static int insert_single(jm__store *s, const jm__new_row *r, size_t *conflict_index,
                         char conflict_id[JM_JOB_ID_SIZE])
{
    for (int tries = 0; tries < INSERT_TRIES; tries++) {
        int refused = 0;
        int rc = insert_once(s, r, &refused);
        if (rc || !refused)
            return rc;
        if (!r->idempotency_key)
            return jm__seterr(JM_EDB, "inserting a job: a row without a key was refused");
        char holder[JM_JOB_ID_SIZE];
        int64_t seq;
        if ((rc = active_holder(s, r->idempotency_key, holder, &seq)))
            return rc;
        if (holder[0])
            return conflict(r, 0, holder, 0, conflict_index, conflict_id);
    }
    return holder_gone(r);
}

/* ---- a batch: one statement in one transaction ---- */

enum { B_ID, B_TYPE, B_STATUS, B_NS, B_PARAMS, B_KEY, B_MAX_RETRIES, B_PRIORITY,
       B_CREATED_AT, B_RUN_AT, B_RESOURCE, B_NODE, B_SCHEDULE, B_FIRE_TIME, B_COLUMNS };

static void put_row(jm__pg_arr *c, const jm__new_row *r)
{
    jm__pg_arr_text(&c[B_ID], r->id, JM__ID_SEQ_AT); /* without its seq: the row's */
    jm__pg_arr_text(&c[B_TYPE], r->type, SIZE_MAX);
    jm__pg_arr_i64(&c[B_STATUS], (int64_t)r->status);
    jm__pg_arr_text(&c[B_NS], r->namespace_id, SIZE_MAX);
    jm__pg_arr_text(&c[B_PARAMS], r->params, SIZE_MAX);
    jm__pg_arr_text(&c[B_KEY], r->idempotency_key, SIZE_MAX);
    jm__pg_arr_i64(&c[B_MAX_RETRIES], r->max_retries);
    jm__pg_arr_i64(&c[B_PRIORITY], r->priority);
    jm__pg_arr_i64(&c[B_CREATED_AT], r->created_at);
    jm__pg_arr_i64(&c[B_RUN_AT], r->run_at);
    jm__pg_arr_text(&c[B_RESOURCE], r->resource, SIZE_MAX);
    jm__pg_arr_text(&c[B_NODE], r->node_id, SIZE_MAX);
    jm__pg_arr_text(&c[B_SCHEDULE], r->schedule_id, SIZE_MAX);
    if (r->schedule_id)
        jm__pg_arr_i64(&c[B_FIRE_TIME], r->fire_time);
    else
        jm__pg_arr_null(&c[B_FIRE_TIME]);
}

static void free_columns(jm__pg_arr *c)
{
    for (int i = 0; i < B_COLUMNS; i++)
        jm__pg_arr_free(&c[i]);
}

/* The batch's columns as array literals, $1..$14 of batch_sql, then, when
 * a row is due now (*wake), the NOTIFY's of batch_wake_sql. */
static int batch_params(jm__store *s, const jm__new_row *rows, size_t n, jm__pg_arr *c,
                        jm__pg_params *p, int *wake)
{
    memset(c, 0, B_COLUMNS * sizeof *c);
    *wake = 0;
    for (size_t i = 0; i < n; i++) {
        put_row(c, &rows[i]);
        if (rows[i].status == JM_STATUS_QUEUED)
            *wake = 1;
    }
    jm__pg_p_init(p);
    for (int i = 0; i < B_COLUMNS; i++) {
        if (jm__pg_arr_end(&c[i]) != 0) {
            free_columns(c);
            return jm__seterr(JM_ENOMEM, "out of memory inserting %zu jobs", n);
        }
        jm__pg_p_str(p, c[i].p);
    }
    if (*wake) {
        jm__pg_p_str(p, s->channel);
        jm__pg_p_str(p, s->token);
    }
    return JM_OK;
}

/* Where a batch is undone: its own transaction, or a savepoint inside the
 * caller's. */
static int scope_open(jm__store *s, int own)
{
    return own ? jm__pg_begin(s, "inserting jobs")
               : jm__pg_exec(s, "inserting jobs", "SAVEPOINT jm_insert");
}

static int scope_close(jm__store *s, int own)
{
    return own ? jm__pg_commit(s, "inserting jobs")
               : jm__pg_exec(s, "inserting jobs", "RELEASE SAVEPOINT jm_insert");
}

/* Undoes the batch; `reopen` to try it again. */
static int scope_undo(jm__store *s, int own, int reopen)
{
    if (own) {
        jm__pg_rollback(s);
        return reopen ? jm__pg_begin(s, "inserting jobs") : JM_OK;
    }
    int rc = jm__pg_exec(s, "undoing inserted jobs", "ROLLBACK TO SAVEPOINT jm_insert");
    if (rc == JM_OK && !reopen)
        rc = jm__pg_exec(s, "undoing inserted jobs", "RELEASE SAVEPOINT jm_insert");
    return rc;
}

/* Whether seq is one of the batch's rows that went in. */
static int in_batch(const PGresult *r, int64_t seq)
{
    for (int i = 0; i < PQntuples(r); i++)
        if (jm__pg_i64(r, i, 1) && jm__pg_i64(r, i, 0) == seq)
            return 1;
    return 0;
}

/* Runs the batch once, inside its scope. *gone: the row refused while
 * its key's holder ended meanwhile (the batch is still in, for the caller
 * to undo and try again); NULL otherwise. */
static int batch_once(jm__store *s, const jm__new_row *rows, size_t n, const jm__pg_params *p,
                      int wake, size_t *conflict_index, char conflict_id[JM_JOB_ID_SIZE],
                      const jm__new_row **gone)
{
    PGresult *r = NULL;
    *gone = NULL;
    int rc = jm__pg_run(s, "inserting jobs", wake ? batch_wake_sql : batch_sql, p, &r);
    if (rc)
        return insert_error(rc);
    int got = PQntuples(r);
    if (got < 0 || (size_t)got != n) {
        PQclear(r);
        return jm__seterr(JM_EDB, "inserting jobs: %d rows came back for %zu", got, n);
    }
    size_t refused = 0;
    while (refused < n && jm__pg_i64(r, (int)refused, 1))
        refused++;
    if (refused == n) {
        for (size_t i = 0; i < n; i++)
            jm__job_id_set_seq(rows[i].id, jm__pg_i64(r, (int)i, 0));
        PQclear(r);
        return JM_OK;
    }
    const jm__new_row *row = &rows[refused];
    char holder[JM_JOB_ID_SIZE] = "";
    int64_t seq = 0;
    if (!row->idempotency_key)
        rc = jm__seterr(JM_EDB, "inserting jobs: a row without a key was refused");
    else if (!(rc = active_holder(s, row->idempotency_key, holder, &seq)) && holder[0])
        rc = conflict(row, refused, holder, in_batch(r, seq), conflict_index, conflict_id);
    else if (rc == JM_OK)
        *gone = row;
    PQclear(r);
    return rc;
}

static int insert_batch(jm__store *s, const jm__new_row *rows, size_t n, size_t *conflict_index,
                        char conflict_id[JM_JOB_ID_SIZE])
{
    jm__pg_arr cols[B_COLUMNS];
    jm__pg_params p;
    int wake = 0;
    int rc = batch_params(s, rows, n, cols, &p, &wake);
    if (rc)
        return rc;
    /* Inside a transaction (a write group) the batch is undone alone. */
    int own = !s->in_tx;
    if ((rc = scope_open(s, own))) {
        free_columns(cols);
        return rc;
    }
    const jm__new_row *gone = NULL;
    for (int tries = 0; tries < INSERT_TRIES; tries++) {
        rc = batch_once(s, rows, n, &p, wake, conflict_index, conflict_id, &gone);
        if (rc || !gone || tries + 1 == INSERT_TRIES)
            break;
        if ((rc = scope_undo(s, own, 1)))
            break;
    }
    free_columns(cols);
    if (rc == JM_OK && gone)
        rc = holder_gone(gone);
    if (rc == JM_OK && (rc = scope_close(s, own)) == JM_OK)
        return JM_OK;
    char msg[JM_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s", jm_last_error());
    scope_undo(s, own, 0);
    return jm__seterr(rc, "%s", msg);
}

int jm__pg_insert(jm__store *s, const jm__new_row *rows, size_t n, size_t *conflict_index,
                  char conflict_id[JM_JOB_ID_SIZE])
{
    if (n == 0)
        return JM_OK;
    /* One row is one statement: no BEGIN and COMMIT beside it, and a
     * refusal inserts nothing. */
    if (n == 1)
        return insert_single(s, rows, conflict_index, conflict_id);
    return insert_batch(s, rows, n, conflict_index, conflict_id);
}

/* ---- group commit ----
 *
 * Each write runs under a savepoint, so a write refused on its own is
 * undone alone and the others still commit; an error of the transaction
 * itself undoes them all, so a group is never half written. An insert
 * needs no savepoint here: a refused key inserts nothing, and a batch
 * takes its own (insert_batch). */

static int apply(jm__store *s, jm__write *w)
{
    switch (w->kind) {
    case JM__WRITE_INSERT:
        return jm__pg_insert(s, w->u.insert.rows, w->u.insert.n, &w->u.insert.conflict_index,
                             w->u.insert.conflict_id);
    case JM__WRITE_CANCEL:
        return jm__pg_cancel(s, w->u.cancel.id, w->u.cancel.cancellable_running,
                             w->u.cancel.now, &w->u.cancel.outcome, &w->u.cancel.seq,
                             &w->u.cancel.owner_instance);
    case JM__WRITE_RETRY:
        return jm__pg_retry(s, w->u.retry.id, w->u.retry.now);
    case JM__WRITE_CHECKPOINT:
        return jm__pg_checkpoint(s, w->u.checkpoint.seq, w->u.checkpoint.attempt,
                                 w->u.checkpoint.json, w->u.checkpoint.now);
    }
    return jm__seterr(JM_EINVAL, "unknown write kind %d", (int)w->kind);
}

/* Errors of the transaction, not of one write: they undo the group. A
 * statement that failed outside a savepoint has aborted the transaction. */
static int fails_group(jm__store *s, int rc, int under_savepoint)
{
    if (rc == JM_EIO || rc == JM_ENOMEM || rc == JM_EBUSY || !s->in_tx || !s->conn)
        return 1;
    return !under_savepoint && PQtransactionStatus(s->conn) != PQTRANS_INTRANS;
}

/* Runs one write apart from the others; its own failure is undone alone. */
static int apply_apart(jm__store *s, jm__write *w)
{
    int savepoint = w->kind != JM__WRITE_INSERT;
    int rc;
    if (savepoint && (rc = jm__pg_exec(s, "starting a write", "SAVEPOINT jm_write")))
        return rc;
    w->rc = apply(s, w);
    if (w->rc == JM_OK)
        return savepoint ? jm__pg_exec(s, "ending a write", "RELEASE SAVEPOINT jm_write")
                         : JM_OK;
    snprintf(w->err, sizeof w->err, "%s", jm_last_error());
    if (fails_group(s, w->rc, savepoint))
        return w->rc;
    if (savepoint &&
        ((rc = jm__pg_exec(s, "undoing a write", "ROLLBACK TO SAVEPOINT jm_write")) ||
         (rc = jm__pg_exec(s, "ending a write", "RELEASE SAVEPOINT jm_write"))))
        return rc;
    return JM_OK;
}

static void reset_write(jm__write *w)
{
    w->rc = JM_OK;
    w->err[0] = '\0';
}

int jm__pg_write_group(jm__store *s, jm__write *const *w, size_t n, jm__write_next more,
                       void *ctx)
{
    jm__write *all[JM__WRITE_GROUP_MAX];
    if (n > JM__WRITE_GROUP_MAX)
        return jm__seterr(JM_EINVAL, "a write group of %zu, more than %d", n,
                          JM__WRITE_GROUP_MAX);
    for (size_t i = 0; i < n; i++) {
        all[i] = w[i];
        reset_write(w[i]);
    }
    if (n == 1 && !more)
        return w[0]->rc = apply(s, w[0]);
    int rc = jm__pg_begin(s, "beginning a write group");
    for (size_t i = 0; rc == JM_OK && i < n; i++)
        rc = apply_apart(s, all[i]);
    /* Writes that arrive while this group is open join it. */
    while (rc == JM_OK && more && n < JM__WRITE_GROUP_MAX) {
        jm__write *x = more(ctx);
        if (!x)
            break;
        reset_write(x);
        all[n++] = x;
        rc = apply_apart(s, x);
    }
    /* COMMIT of an aborted transaction rolls it back and succeeds: never
     * report a group written that was not. */
    if (rc == JM_OK && PQtransactionStatus(s->conn) != PQTRANS_INTRANS)
        rc = jm__seterr(JM_EDB, "committing a write group: the transaction was aborted");
    if (rc == JM_OK)
        rc = jm__pg_commit(s, "committing a write group");
    if (rc == JM_OK)
        return JM_OK;
    char msg[JM_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s", jm_last_error());
    jm__pg_rollback(s);
    /* Nothing of the group was written: every write reports why. */
    for (size_t i = 0; i < n; i++) {
        all[i]->rc = rc;
        snprintf(all[i]->err, sizeof all[i]->err, "%s", msg);
    }
    return jm__seterr(rc, "%s", msg);
}
