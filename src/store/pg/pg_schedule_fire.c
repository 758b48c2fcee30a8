/*
 * Firing schedules in PostgreSQL (the schedule_fire op). One transaction
 * first locks every fired schedule's row, in id order so two nodes firing
 * the same schedules never deadlock; the second waits and then finds the
 * next fire time moved, so a fire happens once. Each fire then runs under
 * a savepoint: its jobs go in, each unless the overlap policy skips it,
 * and one UPDATE moves the next fire time by compare-and-set. A fire
 * another node made first, or that fails on its own, is undone alone.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job_id.h"
#include "pg_internal.h"

/* The fires' schedule ids as a text[] literal: {"a","b"}. */
static char *id_array(const jm__fire *fires, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += 2 * strlen(fires[i].schedule_id) + 3;
    char *buf = jm__malloc(len), *o = buf;
    if (!buf)
        return NULL;
    *o++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        *o++ = '"';
        for (const char *c = fires[i].schedule_id; *c; c++) {
            if (*c == '"' || *c == '\\')
                *o++ = '\\';
            *o++ = *c;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return buf;
}

/* Locks the fires' schedules until the transaction ends; *out gets their
 * rows as they are once locked (id, next_fire, paused). */
static int lock_schedules(jm__store *s, const jm__fire *fires, size_t n, PGresult **out)
{
    static const char sql[] = "SELECT id, next_fire, paused FROM jm_schedules "
                              "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE";
    char *ids = id_array(fires, n);
    if (!ids)
        return jm__seterr(JM_ENOMEM, "out of memory firing schedules");
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, ids);
    int rc = jm__pg_run(s, "locking schedules to fire", sql, &p, out);
    jm__free(ids);
    return rc;
}

/* Whether the locked row of f's schedule still has the next fire time f
 * read, unpaused: if not, a fire, a pause, an update or a delete came
 * first. */
static int still_due(const PGresult *locked, const jm__fire *f)
{
    for (int i = 0; i < PQntuples(locked); i++) {
        const char *id = jm__pg_str(locked, i, 0);
        if (id && strcmp(id, f->schedule_id) == 0)
            return jm__pg_i64(locked, i, 1) == f->expect_next && jm__pg_i64(locked, i, 2) == 0;
    }
    return 0;
}

/* The schedule's active jobs (a paused one is active: it will run) and,
 * of those, the ones waiting to run. */
static int active_jobs(jm__store *s, const char *id, int64_t *active, int64_t *waiting)
{
    static const char sql[] = "SELECT count(*), coalesce(sum((status <> 2)::int), 0) "
                              "FROM jm_jobs WHERE schedule_id = $1 "
                              "AND (status <= 3 OR status = 7)";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, id);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "counting a schedule's jobs", sql, &p, &r);
    if (rc)
        return rc;
    *active = jm__pg_i64(r, 0, 0);
    *waiting = jm__pg_i64(r, 0, 1);
    PQclear(r);
    return JM_OK;
}

/* Creates one fire's job and completes its id. JM_ECONFLICT, with no
 * message, when a job for this fire time exists: fired elsewhere. As in
 * every insert, created_at never falls below the last row's. */
static int insert_job(jm__store *s, jm__new_row *row)
{
    static const char sql[] =
        "INSERT INTO jm_jobs (id, type, status, namespace_id, params, idempotency_key, "
        "max_retries, priority, created_at, updated_at, run_at, resource, pinned_node, "
        "schedule_id, fire_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
        "GREATEST($9, coalesce((SELECT created_at FROM jm_jobs ORDER BY seq DESC LIMIT 1), "
        "$9)), $9, $10, $11, $12, $13, $14) "
        "ON CONFLICT (schedule_id, fire_time) WHERE schedule_id IS NOT NULL DO NOTHING "
        "RETURNING seq";
    char prefix[JM__ID_SEQ_AT + 1];
    snprintf(prefix, sizeof prefix, "%.*s", JM__ID_SEQ_AT, row->id);
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, prefix);
    jm__pg_p_str(&p, row->type);
    jm__pg_p_i64(&p, (int64_t)row->status);
    jm__pg_p_str(&p, row->namespace_id);
    jm__pg_p_str(&p, row->params);
    jm__pg_p_str(&p, row->idempotency_key);
    jm__pg_p_i64(&p, row->max_retries);
    jm__pg_p_i64(&p, row->priority);
    jm__pg_p_i64(&p, row->created_at);
    jm__pg_p_i64(&p, row->run_at);
    jm__pg_p_str(&p, row->resource);
    jm__pg_p_str(&p, row->node_id);
    jm__pg_p_str(&p, row->schedule_id);
    jm__pg_p_i64(&p, row->fire_time);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "creating a scheduled job", sql, &p, &r);
    if (rc)
        return rc;
    if (PQntuples(r) == 0)
        rc = JM_ECONFLICT;
    else
        jm__job_id_set_seq(row->id, jm__pg_i64(r, 0, 0));
    PQclear(r);
    return rc;
}

/* Moves f's next fire time, compare-and-set, recording its last job if
 * `last` is not NULL; f->lost if it had moved. */
static int move_next_fire(jm__store *s, jm__fire *f, const jm__new_row *last)
{
    static const char sql[] =
        "UPDATE jm_schedules SET next_fire = $3, updated_at = $4, "
        "last_fire = coalesce($5, last_fire), last_job_id = coalesce($6, last_job_id) "
        "WHERE id = $1 AND next_fire = $2 AND paused = 0";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, f->schedule_id);
    jm__pg_p_i64(&p, f->expect_next);
    jm__pg_p_i64(&p, f->new_next);
    jm__pg_p_i64(&p, f->now);
    if (last) {
        jm__pg_p_i64(&p, last->fire_time);
        jm__pg_p_str(&p, last->id);
    } else {
        jm__pg_p_str(&p, NULL);
        jm__pg_p_str(&p, NULL);
    }
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "moving a schedule's next fire time", sql, &p, &r);
    if (rc)
        return rc;
    if (jm__pg_changes(r) == 0)
        f->lost = 1;
    PQclear(r);
    return JM_OK;
}

/* One fire, inside the transaction and its savepoint, its schedule
 * locked. If another node fired it first, f->lost is set and the caller
 * undoes the savepoint. */
static int fire_one(jm__store *s, jm__fire *f, const PGresult *locked)
{
    f->lost = 0;
    f->created = f->skipped = 0;
    if (!still_due(locked, f)) {
        f->lost = 1;
        return JM_OK;
    }
    int64_t active = 0, waiting = 0;
    int rc;
    if (f->nrows && f->overlap != JM_OVERLAP_ALLOW &&
        (rc = active_jobs(s, f->schedule_id, &active, &waiting)))
        return rc;
    jm__new_row *last = NULL;
    for (size_t i = 0; i < f->nrows; i++) {
        int skip = (f->overlap == JM_OVERLAP_SKIP && active > 0) ||
                   (f->overlap == JM_OVERLAP_QUEUE_ONE && waiting > 0);
        if (f->made)
            f->made[i] = !skip;
        if (skip) {
            f->skipped++;
            continue;
        }
        if ((rc = insert_job(s, &f->rows[i]))) {
            if (rc == JM_ECONFLICT) {
                f->lost = 1;
                return JM_OK;
            }
            return rc;
        }
        active++;
        waiting++;
        f->created++;
        last = &f->rows[i];
    }
    return move_next_fire(s, f, last);
}

/* Runs fires[i] under its savepoint. A fire lost, or failing on its own
 * (a refused row, say), is undone alone; an error of the transaction (the
 * connection, memory, a lock) is returned and ends them all. */
static int fire_saved(jm__store *s, jm__fire *f, const PGresult *locked)
{
    int rc = jm__pg_exec(s, "starting a fire", "SAVEPOINT jm_fire");
    if (rc)
        return rc;
    int frc = fire_one(s, f, locked);
    if (frc || f->lost) {
        char msg[JM_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "%s", frc ? jm_last_error() : "");
        f->lost = 1;
        f->created = 0;
        if ((rc = jm__pg_exec(s, "undoing a fire", "ROLLBACK TO SAVEPOINT jm_fire")))
            return rc;
        if (frc == JM_EIO || frc == JM_ENOMEM || frc == JM_EBUSY)
            return jm__seterr(frc, "%s", msg);
    }
    return jm__pg_exec(s, "ending a fire", "RELEASE SAVEPOINT jm_fire");
}

int jm__pg_schedule_fire(jm__store *s, jm__fire *fires, size_t n)
{
    PGresult *locked = NULL;
    int rc = jm__pg_begin(s, "firing schedules");
    if (rc == JM_OK)
        rc = lock_schedules(s, fires, n, &locked);
    for (size_t i = 0; rc == JM_OK && i < n; i++)
        rc = fire_saved(s, &fires[i], locked);
    PQclear(locked);
    if (rc == JM_OK)
        rc = jm__pg_commit(s, "firing schedules");
    if (rc == JM_OK)
        return JM_OK;
    char msg[JM_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s", jm_last_error());
    jm__pg_rollback(s);
    for (size_t i = 0; i < n; i++) {
        fires[i].lost = 1;
        fires[i].created = 0;
    }
    return jm__seterr(rc, "%s", msg);
}
