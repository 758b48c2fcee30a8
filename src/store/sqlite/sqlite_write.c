/*
 * Group commit: several callers' writes in one transaction and one sync.
 * Each write runs under a savepoint, so a write refused on its own (an
 * idempotency conflict, a refused transition) is undone alone and the
 * others still commit; an error of the transaction itself undoes them all,
 * so a group is never half written.
 */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "sqlite_internal.h"

static int apply(jm__store *s, jm__write *w)
{
    switch (w->kind) {
    case JM__WRITE_INSERT:
        return jm__sqlite_insert(s, w->u.insert.rows, w->u.insert.n, &w->u.insert.conflict_index,
                                 w->u.insert.conflict_id);
    case JM__WRITE_CANCEL:
        return jm__sqlite_cancel(s, w->u.cancel.id, w->u.cancel.cancellable_running,
                                 w->u.cancel.now, &w->u.cancel.outcome, &w->u.cancel.seq,
                                 &w->u.cancel.owner_instance);
    case JM__WRITE_RETRY:
        return jm__sqlite_retry(s, w->u.retry.id, w->u.retry.now);
    case JM__WRITE_CHECKPOINT:
        return jm__sqlite_checkpoint(s, w->u.checkpoint.seq, w->u.checkpoint.attempt,
                                     w->u.checkpoint.json, w->u.checkpoint.now);
    }
    return jm__seterr(JM_EINVAL, "unknown write kind %d", (int)w->kind);
}

/* Errors of the transaction, not of one write: they undo the group. */
static int fails_group(jm__store *s, int rc)
{
    return rc == JM_EIO || rc == JM_ENOMEM || rc == JM_EBUSY || sqlite3_get_autocommit(s->db);
}

static int exec_fixed(jm__store *s, jm__query q, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, q, &st);
    if (rc)
        return rc;
    return jm__sqlite_write(s, st, what, NULL);
}

/* Runs one write under the savepoint; its own failure is undone alone. */
static int apply_apart(jm__store *s, jm__write *w)
{
    /* One row is one statement, and a statement that fails is undone
     * alone by SQLite itself: no savepoint needed. */
    if (w->kind == JM__WRITE_INSERT && w->u.insert.n == 1) {
        w->rc = apply(s, w);
        if (w->rc == JM_OK)
            return JM_OK;
        snprintf(w->err, sizeof w->err, "%s", jm_last_error());
        return fails_group(s, w->rc) ? w->rc : JM_OK;
    }
    int rc = exec_fixed(s, Q_WRITE_SAVEPOINT, "starting a write");
    if (rc)
        return rc;
    w->rc = apply(s, w);
    if (w->rc == JM_OK)
        return exec_fixed(s, Q_WRITE_RELEASE, "ending a write");
    snprintf(w->err, sizeof w->err, "%s", jm_last_error());
    if (fails_group(s, w->rc))
        return w->rc;
    if ((rc = exec_fixed(s, Q_WRITE_ROLLBACK, "undoing a write")) ||
        (rc = exec_fixed(s, Q_WRITE_RELEASE, "ending a write")))
        return rc;
    return JM_OK;
}

int jm__sqlite_write_group(jm__store *s, jm__write *const *w, size_t n, jm__write_next more,
                           void *ctx)
{
    jm__write *all[JM__WRITE_GROUP_MAX];
    if (n > JM__WRITE_GROUP_MAX)
        return jm__seterr(JM_EINVAL, "a write group of %zu, more than %d", n,
                          JM__WRITE_GROUP_MAX);
    for (size_t i = 0; i < n; i++) {
        all[i] = w[i];
        w[i]->rc = JM_OK;
        w[i]->err[0] = '\0';
    }
    if (n == 1 && !more)
        return w[0]->rc = apply(s, w[0]);
    int rc = jm__sqlite_begin(s);
    for (size_t i = 0; rc == JM_OK && i < n; i++)
        rc = apply_apart(s, all[i]);
    /* Writes that arrive while this group is open join it. */
    while (rc == JM_OK && more && n < JM__WRITE_GROUP_MAX) {
        jm__write *x = more(ctx);
        if (!x)
            break;
        x->rc = JM_OK;
        x->err[0] = '\0';
        all[n++] = x;
        rc = apply_apart(s, x);
    }
    if (rc == JM_OK)
        rc = jm__sqlite_commit(s);
    if (rc == JM_OK)
        return JM_OK;
    char msg[JM_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s", jm_last_error());
    if (!sqlite3_get_autocommit(s->db))
        jm__sqlite_rollback(s);
    /* Nothing of the group was written: every write reports why. */
    for (size_t i = 0; i < n; i++) {
        all[i]->rc = rc;
        snprintf(all[i]->err, sizeof all[i]->err, "%s", msg);
    }
    return jm__seterr(rc, "%s", msg);
}
