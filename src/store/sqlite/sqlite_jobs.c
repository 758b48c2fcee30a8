/*
 * Job rows outside the run loop: create, read, list, count, cancel, retry
 * by hand and prune. Every value is a bound parameter.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job.h"
#include "job_id.h"
#include "sqlite_internal.h"

/* Looks up the active job holding `key`; "" if none. */
static int active_holder(jm__store *s, const char *key, char out[JM_JOB_ID_SIZE])
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_ACTIVE_BY_KEY, &st);
    if (rc)
        return rc;
    out[0] = '\0';
    jm__bind_text(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        jm__row_id(st, 0, out);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? JM_OK : jm__sqlite_err(s, rc, "looking up an idempotency key");
}

/* Binds what finds the row `id` names: its seq at seq_param and the id
 * as the row stores it at id_param. An id carries its seq (record/job_id.h)
 * and its row stores all but that last group. An id written by an earlier
 * version is stored whole; its seq comes from the index kept for those.
 * No row has seq 0, so an id that names none finds nothing. */
int jm__sqlite_bind_row_key(jm__store *s, sqlite3_stmt *st, const char *id, int id_param,
                        int seq_param, int64_t *seq_out)
{
    int64_t seq = jm__job_id_seq(id);
    int len = JM__ID_SEQ_AT;
    if (!seq) {
        sqlite3_stmt *q = NULL;
        int rc = jm__sqlite_stmt(s, Q_LEGACY_SEQ, &q);
        if (rc)
            return rc;
        jm__bind_text(q, 1, id);
        int src = sqlite3_step(q);
        if (src == SQLITE_ROW)
            seq = sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
        if (src != SQLITE_ROW && src != SQLITE_DONE)
            return jm__sqlite_err(s, src, "looking up a job id");
        len = -1;
    }
    sqlite3_bind_text(st, id_param, id, len, SQLITE_STATIC);
    sqlite3_bind_int64(st, seq_param, seq);
    if (seq_out)
        *seq_out = seq;
    return JM_OK;
}

/* How SQLite's message begins when a row breaks the seq check of jm_jobs
 * (sqlite_schema.c): the ids have run out of sequence numbers. */
#define SEQ_CHECK_VIOLATION "CHECK constraint failed: seq <"

/* Whether `id` is one of the first n rows' (those inserted so far). */
static int is_batch_id(const jm__new_row *rows, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].id, id) == 0)
            return 1;
    return 0;
}

/* The row at or after `from` in seq order: 1 if there is one. */
static int row_from(jm__store *s, jm__query q, int64_t from, int64_t *seq, int64_t *created,
                    int *found)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, q, &st);
    if (rc)
        return rc;
    if (q == Q_ROW_FROM)
        sqlite3_bind_int64(st, 1, from);
    int src = sqlite3_step(st);
    *found = src == SQLITE_ROW;
    if (*found) {
        *seq = sqlite3_column_int64(st, 0);
        *created = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return src == SQLITE_ROW || src == SQLITE_DONE
               ? JM_OK
               : jm__sqlite_err(s, src, "reading creation times");
}

/* ---- create: a batch in one statement ----
 *
 * One INSERT per row opens a write cursor on the table and on each of its
 * nine indexes, seeks each from its root, and closes them again: more than
 * half of a batched create's instructions. A batch of at least JM_BATCH_STATEMENT_MIN rows
 * goes in through one INSERT ... SELECT over the batch itself, a table-
 * valued function of this connection (jm_new_rows) reading the caller's
 * rows in place: the cursors stay open from row to row, and an append to
 * an index that the last row appended to costs one comparison instead of
 * a descent. The rows get the seqs the table would have given them one by
 * one (the next after the last, in order) and the same created_at (never
 * below the previous row's). Should the statement fail, it has changed
 * nothing, and the rows go in one by one as before, which reports the
 * failure (an idempotency conflict and its row, an exhausted seq) as it
 * always has. */
#define JM_BATCH_STATEMENT_MIN 8

/* What the statement's one parameter points to. */
typedef struct batch_src {
    const jm__new_row *rows;
    size_t n;
    int64_t last_created; /* the table's last row's created_at, or INT64_MIN */
} batch_src;

#define BATCH_PTR_TYPE "jm_new_rows"

enum {
    BC_ID, BC_TYPE, BC_STATUS, BC_NAMESPACE, BC_PARAMS, BC_KEY, BC_MAX_RETRIES,
    BC_PRIORITY, BC_CREATED_AT, BC_UPDATED_AT, BC_RUN_AT, BC_RESOURCE, BC_SRC
};

typedef struct batch_cursor {
    sqlite3_vtab_cursor base;
    const batch_src *src;
    size_t i;
    int64_t created_at; /* row i's */
} batch_cursor;

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int batch_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                         sqlite3_vtab **out, char **err)
{
    (void)aux;
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(id, type, status, namespace_id, "
                                      "params, idempotency_key, max_retries, priority, "
                                      "created_at, updated_at, run_at, resource, src HIDDEN)");
    if (rc != SQLITE_OK)
        return rc;
    /* Only for statements of ours: never inside a trigger or a view. */
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    sqlite3_vtab *vt = sqlite3_malloc(sizeof *vt);
    if (!vt)
        return SQLITE_NOMEM;
    memset(vt, 0, sizeof *vt);
    *out = vt;
    return SQLITE_OK;
}

static int batch_disconnect(sqlite3_vtab *vt)
{
    sqlite3_free(vt);
    return SQLITE_OK;
}

/* Usable only with its source bound: jm_new_rows(?). */
static int batch_best_index(sqlite3_vtab *vt, sqlite3_index_info *info)
{
    (void)vt;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (c->iColumn == BC_SRC && c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->usable) {
            info->aConstraintUsage[i].argvIndex = 1;
            info->aConstraintUsage[i].omit = 1;
            info->estimatedCost = 1;
            return SQLITE_OK;
        }
    }
    return SQLITE_CONSTRAINT;
}

static int batch_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
    (void)vt;
    batch_cursor *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    *out = &c->base;
    return SQLITE_OK;
}

static int batch_close(sqlite3_vtab_cursor *cur)
{
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int batch_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
                        sqlite3_value **argv)
{
    (void)idx;
    (void)idx_str;
    batch_cursor *c = (batch_cursor *)cur;
    c->src = argc == 1 ? sqlite3_value_pointer(argv[0], BATCH_PTR_TYPE) : NULL;
    c->i = 0;
    if (c->src && c->src->n)
        c->created_at = max64(c->src->rows[0].created_at, c->src->last_created);
    return SQLITE_OK;
}

static int batch_next(sqlite3_vtab_cursor *cur)
{
    batch_cursor *c = (batch_cursor *)cur;
    if (++c->i < c->src->n)
        c->created_at = max64(c->src->rows[c->i].created_at, c->created_at);
    return SQLITE_OK;
}

static int batch_eof(sqlite3_vtab_cursor *cur)
{
    const batch_cursor *c = (const batch_cursor *)cur;
    return !c->src || c->i >= c->src->n;
}

static void result_text(sqlite3_context *ctx, const char *v, int len)
{
    if (v)
        sqlite3_result_text(ctx, v, len, SQLITE_STATIC);
    else
        sqlite3_result_null(ctx);
}

static int batch_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    const batch_cursor *c = (const batch_cursor *)cur;
    const jm__new_row *r = &c->src->rows[c->i];
    switch (col) {
    /* Stored without its last group: the row's seq (schema version 4). */
    case BC_ID: result_text(ctx, r->id, JM__ID_SEQ_AT); break;
    case BC_TYPE: result_text(ctx, r->type, -1); break;
    case BC_STATUS: sqlite3_result_int(ctx, (int)r->status); break;
    case BC_NAMESPACE: result_text(ctx, r->namespace_id, -1); break;
    case BC_PARAMS: result_text(ctx, r->params, -1); break;
    case BC_KEY: result_text(ctx, r->idempotency_key, -1); break;
    case BC_MAX_RETRIES: sqlite3_result_int(ctx, r->max_retries); break;
    case BC_PRIORITY: sqlite3_result_int(ctx, r->priority); break;
    case BC_CREATED_AT: sqlite3_result_int64(ctx, c->created_at); break;
    case BC_UPDATED_AT: sqlite3_result_int64(ctx, r->created_at); break;
    case BC_RUN_AT: sqlite3_result_int64(ctx, r->run_at); break;
    case BC_RESOURCE: result_text(ctx, r->resource, -1); break;
    default: sqlite3_result_null(ctx); break;
    }
    return SQLITE_OK;
}

static int batch_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = (sqlite3_int64)((const batch_cursor *)cur)->i;
    return SQLITE_OK;
}

/* Eponymous only (no xCreate): it exists on every connection that has
 * registered it, as a table-valued function, and never in a schema. */
static const sqlite3_module batch_module = {
    .iVersion = 0,
    .xConnect = batch_connect,
    .xBestIndex = batch_best_index,
    .xDisconnect = batch_disconnect,
    .xOpen = batch_open,
    .xClose = batch_close,
    .xFilter = batch_filter,
    .xNext = batch_next,
    .xEof = batch_eof,
    .xColumn = batch_column,
    .xRowid = batch_rowid,
};

static const char batch_insert_sql[] =
    "INSERT INTO jm_jobs (id, type, status, namespace_id, params, idempotency_key, "
    "max_retries, priority, created_at, updated_at, run_at, resource) "
    "SELECT id, type, status, namespace_id, params, idempotency_key, max_retries, "
    "priority, created_at, updated_at, run_at, resource FROM jm_new_rows(?1)";

/* The batch statement, prepared for this batch: the function is
 * registered on the connection the first time. NULL if it cannot be had. */
static sqlite3_stmt *batch_stmt(jm__store *s)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, batch_insert_sql, -1, &st, NULL) == SQLITE_OK)
        return st;
    if (sqlite3_create_module_v2(s->db, BATCH_PTR_TYPE, &batch_module, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, batch_insert_sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    return st;
}

/* Inserts the whole batch with one statement, inside the transaction
 * jm__sqlite_insert opened for it. JM_OK with every row in and its id
 * complete; 1 when the rows should go in one by one instead (nothing was
 * changed, the transaction is open); another JM_ code when the
 * transaction is lost. */
static int insert_batch(jm__store *s, const jm__new_row *rows, size_t n)
{
    int64_t last_seq = 0, last_created = INT64_MIN;
    int found = 0;
    int rc = row_from(s, Q_LAST_ROW, 0, &last_seq, &last_created, &found);
    if (rc)
        return sqlite3_get_autocommit(s->db) ? rc : 1;
    if (!found) {
        last_seq = 0;
        last_created = INT64_MIN;
    }
    sqlite3_stmt *st = batch_stmt(s);
    if (!st)
        return 1;
    batch_src src = {rows, n, last_created};
    sqlite3_bind_pointer(st, 1, &src, BATCH_PTR_TYPE, NULL);
    int src_rc = sqlite3_step(st);
    int64_t changed = src_rc == SQLITE_DONE ? sqlite3_changes64(s->db) : 0;
    int64_t last = sqlite3_last_insert_rowid(s->db);
    sqlite3_finalize(st);
    if (src_rc == SQLITE_DONE) {
        /* The table gave each row the next seq after the largest, so n rows
         * ending at last_seq + n have exactly the n seqs after it, in
         * order. Anything else, never seen, is undone and done again the
         * slow way. */
        if (changed == (int64_t)n && last == last_seq + (int64_t)n) {
            for (size_t i = 0; i < n; i++)
                jm__job_id_set_seq(rows[i].id, last_seq + 1 + (int64_t)i);
            return JM_OK;
        }
        jm__sqlite_rollback(s);
        return (rc = jm__sqlite_begin(s)) ? rc : 1;
    }
    if (sqlite3_get_autocommit(s->db))
        return jm__sqlite_err(s, src_rc, "inserting jobs");
    return 1;
}

int jm__sqlite_insert(jm__store *s, const jm__new_row *rows, size_t n, size_t *conflict_index,
                      char conflict_id[JM_JOB_ID_SIZE])
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_INSERT, &st);
    if (rc)
        return rc;
    /* One row is one statement, its own transaction: no BEGIN and COMMIT
     * to run beside it. Inside a write group the group's savepoint holds
     * the rows together. */
    int batch = n > 1 && sqlite3_get_autocommit(s->db);
    if (batch && (rc = jm__sqlite_begin(s)))
        return rc;
    if (n >= JM_BATCH_STATEMENT_MIN) {
        rc = insert_batch(s, rows, n);
        if (rc == JM_OK)
            return jm__sqlite_commit(s);
        if (rc != 1)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const jm__new_row *r = &rows[i];
        /* Stored without its last group: the seq this insert assigns. */
        sqlite3_bind_text(st, P_INSERT_id, r->id, JM__ID_SEQ_AT, SQLITE_STATIC);
        jm__bind_text(st, P_INSERT_type, r->type);
        sqlite3_bind_int(st, P_INSERT_status, (int)r->status);
        jm__bind_text(st, P_INSERT_namespace_id, r->namespace_id);
        jm__bind_text(st, P_INSERT_params, r->params);
        jm__bind_text(st, P_INSERT_key, r->idempotency_key);
        sqlite3_bind_int(st, P_INSERT_max_retries, r->max_retries);
        sqlite3_bind_int(st, P_INSERT_priority, r->priority);
        sqlite3_bind_int64(st, P_INSERT_now, r->created_at);
        sqlite3_bind_int64(st, P_INSERT_run_at, r->run_at);
        jm__bind_text(st, P_INSERT_resource, r->resource);
        int src = sqlite3_step(st);
        sqlite3_reset(st);
        if (src == SQLITE_DONE) {
            jm__job_id_set_seq(r->id, sqlite3_last_insert_rowid(s->db));
            continue;
        }
        /* JM_ECONFLICT only for the idempotency index (jm__sqlite_err
         * tells it apart); any other constraint is JM_EDB in SQLite's words. */
        rc = jm__sqlite_err(s, src, "inserting a job");
        if (rc == JM_ECONFLICT && r->idempotency_key) {
            char holder[JM_JOB_ID_SIZE];
            int hrc = active_holder(s, r->idempotency_key, holder);
            if (hrc) {
                rc = hrc;
            } else if (holder[0]) {
                if (conflict_index)
                    *conflict_index = i;
                if (conflict_id)
                    snprintf(conflict_id, JM_JOB_ID_SIZE, "%s",
                             is_batch_id(rows, i, holder) ? "" : holder);
                rc = jm__seterr(JM_ECONFLICT, "idempotency key '%.300s' is held by active job %s",
                                r->idempotency_key, holder);
            }
        } else if (src == SQLITE_CONSTRAINT_CHECK &&
                   strncmp(sqlite3_errmsg(s->db), SEQ_CHECK_VIOLATION,
                           sizeof SEQ_CHECK_VIOLATION - 1) == 0) {
            /* The core validated the other columns; seq is the database's. */
            rc = jm__seterr(JM_EDB, "inserting a job: the database has used up its %lld job "
                                    "sequence numbers (prune, then start a new database)",
                            (long long)JM__ID_SEQ_LIMIT - 1);
        }
        sqlite3_clear_bindings(st);
        if (batch)
            jm__sqlite_rollback(s);
        return rc;
    }
    sqlite3_clear_bindings(st);
    return batch ? jm__sqlite_commit(s) : JM_OK;
}

int jm__sqlite_get(jm__store *s, const char *id, jm_job **out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_GET, &st);
    if (rc == JM_OK)
        rc = jm__sqlite_bind_row_key(s, st, id, 1, 2, NULL);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        rc = jm__row_to_job(st, 0, out);
    else if (src == SQLITE_DONE)
        rc = jm__seterr(JM_ENOTFOUND, "job %s not found", id);
    else
        rc = jm__sqlite_err(s, src, "reading a job");
    sqlite3_reset(st);
    return rc;
}

/* ---- list and count: one cached statement per filter shape ---- */

enum {
    SHAPE_TYPE = 1 << 0,
    SHAPE_NS = 1 << 1,
    SHAPE_KEY = 1 << 2,
    SHAPE_AFTER = 1 << 3,
    SHAPE_BEFORE = 1 << 4,
    SHAPE_CURSOR = 1 << 5,
    SHAPE_DESC = 1 << 6,
    SHAPE_COUNT = 1 << 7,
    SHAPE_NSTATUS_SHIFT = 8 /* 3 bits: how many statuses in the IN list (0..7) */
};

static int popcount7(unsigned m)
{
    int n = 0;
    for (int i = 0; i < JM_STATUS_COUNT; i++)
        n += (m >> i) & 1u;
    return n;
}

static unsigned shape_of(const jm_filter *f, int count)
{
    unsigned mask = f->statuses & ((1u << JM_STATUS_COUNT) - 1);
    unsigned nst = mask == (1u << JM_STATUS_COUNT) - 1 ? 0 : (unsigned)popcount7(mask);
    unsigned sh = nst << SHAPE_NSTATUS_SHIFT;
    if (f->type)
        sh |= SHAPE_TYPE;
    if (f->namespace_id)
        sh |= SHAPE_NS;
    if (f->idempotency_key)
        sh |= SHAPE_KEY;
    if (f->created_after_ms)
        sh |= SHAPE_AFTER;
    if (f->created_before_ms)
        sh |= SHAPE_BEFORE;
    if (count)
        sh |= SHAPE_COUNT;
    else {
        if (f->after_id)
            sh |= SHAPE_CURSOR;
        if (f->newest_first)
            sh |= SHAPE_DESC;
    }
    return sh;
}

static void build_sql(unsigned sh, char *sql, size_t cap)
{
    size_t n = 0;
#define ADD(...) n += (size_t)snprintf(sql + n, n < cap ? cap - n : 0, __VA_ARGS__)
    if (sh & SHAPE_COUNT)
        ADD("SELECT count(*) FROM jm_jobs WHERE 1");
    else
        ADD("SELECT " JM_JOB_COLUMNS " FROM jm_jobs WHERE 1");
    unsigned nst = sh >> SHAPE_NSTATUS_SHIFT;
    if (nst) {
        ADD(" AND status IN (");
        for (unsigned i = 0; i < nst; i++)
            ADD(i ? ", ?" : "?");
        ADD(")");
    }
    if (sh & SHAPE_TYPE)
        ADD(" AND type = ?");
    if (sh & SHAPE_NS)
        ADD(" AND namespace_id = ?");
    if (sh & SHAPE_KEY)
        ADD(" AND idempotency_key = ?");
    /* Creation times grow with seq, so each time bound comes with the seq
     * bound it implies (see created_bound): the time terms only confirm. */
    if (sh & SHAPE_AFTER)
        ADD(" AND +created_at > ? AND seq >= ?");
    if (sh & SHAPE_BEFORE)
        ADD(" AND +created_at < ? AND seq <= ?");
    if (sh & SHAPE_CURSOR)
        ADD((sh & SHAPE_DESC) ? " AND seq < ?" : " AND seq > ?");
    if (!(sh & SHAPE_COUNT))
        ADD((sh & SHAPE_DESC) ? " ORDER BY seq DESC LIMIT ?" : " ORDER BY seq LIMIT ?");
#undef ADD
}

/* The first seq whose created_at is at least `at`, or INT64_MAX if none.
 * created_at never decreases along seq (schema version 3), so a binary
 * search over seq finds it with a few dozen rowid seeks at most. Rows
 * created meanwhile only come after the bound, so it stays exact without
 * a snapshot. */
static int created_from(jm__store *s, int64_t at, int64_t *out)
{
    int64_t lo = 0, hi = 0, seq = 0, created = 0;
    int found = 0, rc;
    *out = INT64_MAX;
    if ((rc = row_from(s, Q_LAST_ROW, 0, &hi, &created, &found)) || !found || created < at)
        return rc;
    if ((rc = row_from(s, Q_ROW_FROM, INT64_MIN, &lo, &created, &found)) || !found)
        return rc;
    /* Smallest s in [lo, hi] whose next row has created_at >= at; true at
     * hi, and false below it once false at some s. */
    while (lo < hi) {
        int64_t mid = lo + (int64_t)(((uint64_t)hi - (uint64_t)lo) / 2);
        if ((rc = row_from(s, Q_ROW_FROM, mid, &seq, &created, &found)))
            return rc;
        if (!found || created >= at)
            hi = mid;
        else
            lo = seq + 1;
    }
    if ((rc = row_from(s, Q_ROW_FROM, lo, &seq, &created, &found)))
        return rc;
    if (found && created >= at)
        *out = seq;
    return JM_OK;
}

/* Prepares (once) and binds the statement for f's shape. */
static int filter_stmt(jm__store *s, const jm_filter *f, int count, int64_t cursor_seq,
                       int64_t limit, sqlite3_stmt **out)
{
    int64_t after_lo = 0, before_hi = 0;
    int rc;
    if (f->created_after_ms) {
        if (f->created_after_ms == INT64_MAX)
            after_lo = INT64_MAX;
        else if ((rc = created_from(s, f->created_after_ms + 1, &after_lo)))
            return rc;
    }
    if (f->created_before_ms) {
        if ((rc = created_from(s, f->created_before_ms, &before_hi)))
            return rc;
        if (before_hi != INT64_MAX)
            before_hi--;
    }
    unsigned sh = shape_of(f, count);
    if (!s->shape[sh]) {
        char sql[1024];
        build_sql(sh, sql, sizeof sql);
        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->shape[sh], NULL);
        if (rc != SQLITE_OK)
            return jm__sqlite_err(s, rc, "preparing a job query");
    }
    sqlite3_stmt *st = s->shape[sh];
    int i = 1;
    if (sh >> SHAPE_NSTATUS_SHIFT)
        for (int b = 0; b < JM_STATUS_COUNT; b++)
            if (f->statuses & (1u << b))
                sqlite3_bind_int(st, i++, b);
    if (f->type)
        jm__bind_text(st, i++, f->type);
    if (f->namespace_id)
        jm__bind_text(st, i++, f->namespace_id);
    if (f->idempotency_key)
        jm__bind_text(st, i++, f->idempotency_key);
    if (f->created_after_ms) {
        sqlite3_bind_int64(st, i++, f->created_after_ms);
        sqlite3_bind_int64(st, i++, after_lo);
    }
    if (f->created_before_ms) {
        sqlite3_bind_int64(st, i++, f->created_before_ms);
        sqlite3_bind_int64(st, i++, before_hi);
    }
    if (sh & SHAPE_CURSOR)
        sqlite3_bind_int64(st, i++, cursor_seq);
    if (!count)
        sqlite3_bind_int64(st, i++, limit);
    *out = st;
    return JM_OK;
}

static int seq_of(jm__store *s, const char *id, int64_t *seq)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_STATUS_OF, &st);
    if (rc == JM_OK)
        rc = jm__sqlite_bind_row_key(s, st, id, 1, 2, seq);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        rc = jm__seterr(JM_ENOTFOUND, "cursor job %s not found", id);
    else if (src != SQLITE_ROW)
        rc = jm__sqlite_err(s, src, "reading the list cursor");
    sqlite3_reset(st);
    return rc;
}

/* Reads the rows of f after *cursor (from the first if f has no cursor)
 * into l until it holds `limit`, and one more to tell whether another page
 * follows. A row outside damage made unreadable is left out; *cursor moves
 * past every row read, left out or not. *again: a left-out row took a place
 * the query's LIMIT counted, so rows may remain behind *cursor. */
static int list_rows(jm__store *s, const jm_filter *f, int64_t *cursor, size_t limit,
                     jm_job_list *l, int *again)
{
    sqlite3_stmt *st = NULL;
    int64_t want = (int64_t)(limit - l->count) + 1;
    int rc = filter_stmt(s, f, 0, *cursor, want, &st);
    *again = 0;
    if (rc)
        return rc;
    int64_t seen = 0;
    int skipped = 0, src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        seen++;
        *cursor = sqlite3_column_int64(st, 0);
        if (jm__row_damage(st, 0)) {
            skipped = 1;
            continue;
        }
        if (l->count == limit) {
            l->has_more = 1;
            break;
        }
        if ((rc = jm__row_to_job(st, 0, &l->items[l->count])))
            break;
        l->count++;
    }
    if (rc == JM_OK && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = jm__sqlite_err(s, src, "listing jobs");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    *again = rc == JM_OK && skipped && !l->has_more && seen == want;
    return rc;
}

int jm__sqlite_list(jm__store *s, const jm_filter *f, jm_job_list **out)
{
    int64_t cursor = 0;
    int rc;
    if (f->after_id && (rc = seq_of(s, f->after_id, &cursor)))
        return rc;
    size_t limit = (size_t)(f->limit ? f->limit : JM_LIST_DEFAULT_LIMIT);
    jm_job_list *l = jm__calloc(1, sizeof *l);
    if (!l || !(l->items = jm__calloc(limit, sizeof(jm_job *)))) {
        jm__free(l);
        return jm__seterr(JM_ENOMEM, "out of memory listing jobs");
    }
    /* Reads after the first go on behind the last row read: the cursor's
     * shape, which any non-NULL after_id selects. */
    jm_filter behind = *f;
    behind.after_id = "";
    int again = 0;
    rc = list_rows(s, f, &cursor, limit, l, &again);
    while (rc == JM_OK && again)
        rc = list_rows(s, &behind, &cursor, limit, l, &again);
    if (rc) {
        jm_job_list_free(l);
        return rc;
    }
    *out = l;
    return JM_OK;
}

/* A count by one status alone, the common dashboard question, walks
 * that status's index entries: 40 ns each, 45 ms for a million completed
 * jobs. When the status holds most of the table, counting the rest and
 * subtracting from the total (which SQLite reads from page headers, not
 * entries) is several times cheaper. A bounded count tells which. */
#define JM_COUNT_DIRECT_MAX 50000

static int count_one_status(jm__store *s, int status, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_COUNT_STATUS_UPTO, &st);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 1, status);
    sqlite3_bind_int(st, 2, JM_COUNT_DIRECT_MAX);
    int src = sqlite3_step(st);
    int64_t n = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (src != SQLITE_ROW)
        return jm__sqlite_err(s, src, "counting jobs");
    if (n < JM_COUNT_DIRECT_MAX) {
        *out = n;
        return JM_OK;
    }
    /* One statement: the total and the rest come from one snapshot. */
    if ((rc = jm__sqlite_stmt(s, Q_COUNT_STATUS_BY_REST, &st)))
        return rc;
    sqlite3_bind_int(st, 1, status);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return src == SQLITE_ROW ? JM_OK : jm__sqlite_err(s, src, "counting jobs");
}

int jm__sqlite_count(jm__store *s, const jm_filter *f, int64_t *out)
{
    unsigned sh = shape_of(f, 1);
    if (sh == (SHAPE_COUNT | 1u << SHAPE_NSTATUS_SHIFT)) {
        int status = 0;
        while (!(f->statuses & JM_STATUS_BIT(status)))
            status++;
        return count_one_status(s, status, out);
    }
    sqlite3_stmt *st = NULL;
    int rc = filter_stmt(s, f, 1, 0, 0, &st);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = jm__sqlite_err(s, src, "counting jobs");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int jm__sqlite_status(jm__store *s, const char *id, jm_status *out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_STATUS_OF, &st);
    if (rc == JM_OK)
        rc = jm__sqlite_bind_row_key(s, st, id, 1, 2, NULL);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = (jm_status)sqlite3_column_int(st, 0);
    else if (src == SQLITE_DONE)
        rc = jm__seterr(JM_ENOTFOUND, "job %s not found", id);
    else
        rc = jm__sqlite_err(s, src, "reading a job's status");
    sqlite3_reset(st);
    return rc;
}

int jm__sqlite_cancel(jm__store *s, const char *id, int cancellable_running, int64_t now,
                      jm__cancel_outcome *outcome, int64_t *seq, int64_t *owner_instance)
{
    *owner_instance = 0;
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_CANCEL, &st);
    if (rc == JM_OK)
        rc = jm__sqlite_bind_row_key(s, st, id, 1, 4, NULL);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int(st, 3, cancellable_running ? 1 : 0);
    int src = sqlite3_step(st);
    int found = src == SQLITE_ROW;
    if (found) {
        int status = sqlite3_column_int(st, 0);
        *outcome = status == JM_STATUS_RUNNING ? JM__CANCEL_REQUESTED : JM__CANCEL_CANCELLED;
        *seq = sqlite3_column_int64(st, 1);
        *owner_instance = sqlite3_column_int64(st, 2);
        src = sqlite3_step(st);
    }
    sqlite3_reset(st);
    if (src != SQLITE_DONE)
        return jm__sqlite_err(s, src, "cancelling a job");
    if (found)
        return JM_OK;
    /* Nothing changed: read the status only to explain the refusal. */
    jm_status cur;
    if ((rc = jm__sqlite_status(s, id, &cur)))
        return rc;
    if (cur == JM_STATUS_RUNNING)
        return jm__seterr(JM_ENOTCANCELLABLE, "job %s is running and its type cannot be cancelled",
                          id);
    return jm__seterr(JM_ESTATE, "job %s is %s: it cannot be cancelled", id, jm_status_name(cur));
}

int jm__sqlite_retry(jm__store *s, const char *id, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_RETRY, &st);
    if (rc == JM_OK)
        rc = jm__sqlite_bind_row_key(s, st, id, 1, 3, NULL);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 2, now);
    int src = sqlite3_step(st);
    int changed = sqlite3_changes(s->db);
    sqlite3_reset(st);
    if (src != SQLITE_DONE) {
        rc = jm__sqlite_err(s, src, "requeueing a job");
        return rc == JM_ECONFLICT ? jm__seterr(JM_ECONFLICT,
                                               "job %s cannot be requeued: its idempotency key "
                                               "is held by another active job",
                                               id)
                                  : rc;
    }
    if (changed)
        return JM_OK;
    jm_status cur;
    if ((rc = jm__sqlite_status(s, id, &cur)))
        return rc;
    return jm__seterr(JM_ESTATE, "job %s is %s: only failed or cancelled jobs can be retried", id,
                      jm_status_name(cur));
}

int jm__sqlite_prune(jm__store *s, int64_t finished_before, int64_t batch, int64_t *deleted)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, Q_PRUNE, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, finished_before);
    sqlite3_bind_int64(st, 2, batch);
    return jm__sqlite_write(s, st, "pruning jobs", deleted);
}
