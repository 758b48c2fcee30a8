/*
 * Schedules in SQLite: the jm_schedules table, and firing. A fire moves
 * the schedule's next fire time by compare-and-set and creates its jobs in
 * the same transaction, so a fire is done once or not at all whichever
 * process and thread fires, and a crash between the two cannot happen. The
 * unique index on (schedule_id, fire_time) refuses a second job for one
 * fire time all the same.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job_id.h"
#include "schedule_snapshot.h"
#include "sqlite_internal.h"

enum {
    S_INSERT,
    S_GET,
    S_LIST,
    S_UPDATE,
    S_DELETE,
    S_PAUSE,
    S_DUE,
    S_NEXT,
    S_CAS,
    S_ACTIVE,
    S_JOB,
};
_Static_assert(S_JOB + 1 == JM__SCHED_QUERIES, "JM__SCHED_QUERIES counts the statements");

#define SCHED_COLUMNS                                                                    \
    "id, name, type, params, namespace_id, max_retries, priority, cron, tz, interval_ms, " \
    "anchor_ms, jitter_ms, overlap, misfire, catch_up_max, pause_after_failures, paused, " \
    "next_fire, last_fire, last_job_id, consecutive_failures, created_at, updated_at"

static const char *const sched_sql[JM__SCHED_QUERIES] = {
    [S_INSERT] = "INSERT INTO jm_schedules (" SCHED_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                 "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, 0, NULL, 0, ?19, ?19)",
    [S_GET] = JM__SQL_BY_ID_OR_NAME(SCHED_COLUMNS, "jm_schedules"),
    [S_LIST] = "SELECT " SCHED_COLUMNS " FROM jm_schedules ORDER BY name",
    [S_UPDATE] = "UPDATE jm_schedules SET name = ?2, type = ?3, params = ?4, namespace_id = ?5, "
                 "max_retries = ?6, priority = ?7, cron = ?8, tz = ?9, interval_ms = ?10, "
                 "anchor_ms = ?11, jitter_ms = ?12, overlap = ?13, misfire = ?14, "
                 "catch_up_max = ?15, pause_after_failures = ?16, paused = ?17, "
                 "next_fire = ?18, updated_at = ?19 WHERE id = ?1",
    [S_DELETE] = "DELETE FROM jm_schedules WHERE id = ?1",
    [S_PAUSE] = "UPDATE jm_schedules SET paused = ?2, updated_at = ?3, consecutive_failures = "
                "CASE WHEN ?2 = 0 THEN 0 ELSE consecutive_failures END WHERE id = ?1",
    [S_DUE] = "SELECT " SCHED_COLUMNS " FROM jm_schedules INDEXED BY jm_schedules_due "
              "WHERE paused = 0 AND next_fire <= ?1 ORDER BY next_fire LIMIT ?2",
    [S_NEXT] = "SELECT min(next_fire) FROM jm_schedules WHERE paused = 0",
    /* ?5, ?6: the last job created, if any (NULL: keep the last one). */
    [S_CAS] = "UPDATE jm_schedules SET next_fire = ?3, updated_at = ?4, "
              "last_fire = coalesce(?5, last_fire), last_job_id = coalesce(?6, last_job_id) "
              "WHERE id = ?1 AND next_fire = ?2 AND paused = 0",
    /* Active jobs of the schedule (a paused one is active: it will run), and
     * of those the waiting ones. */
    [S_ACTIVE] = "SELECT count(*), coalesce(sum(status <> 2), 0) FROM jm_jobs "
                 "INDEXED BY jm_jobs_schedule_active WHERE schedule_id = ?1 "
                 "AND (status <= 3 OR status = 7)",
    [S_JOB] = "INSERT INTO jm_jobs (id, type, status, namespace_id, params, max_retries, "
              "priority, created_at, updated_at, run_at, schedule_id, fire_time, resource) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, max(?8, coalesce("
              "(SELECT created_at FROM jm_jobs ORDER BY seq DESC LIMIT 1), ?8)), ?8, ?9, ?10, "
              "?11, ?12)",
};

static int stmt(jm__store *s, int q, sqlite3_stmt **out)
{
    return jm__sqlite_stmt_text(s, &s->sched[q], sched_sql[q], out);
}

/* A name or id already taken is the caller's conflict, not the database's. */
static int write_err(jm__store *s, int src, const jm_schedule *sc, const char *what)
{
    if (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY)
        return jm__seterr(JM_ECONFLICT, "a schedule named '%.200s' exists already",
                          sc->spec.name);
    return jm__sqlite_err(s, src, what);
}

static void bind_spec(sqlite3_stmt *st, const jm_schedule *sc)
{
    const jm_schedule_spec *p = &sc->spec;
    jm__bind_text(st, 1, sc->id);
    jm__bind_text(st, 2, p->name);
    jm__bind_text(st, 3, p->type);
    jm__bind_text(st, 4, p->params_json ? p->params_json : "{}");
    jm__bind_text(st, 5, p->opts.namespace_id);
    sqlite3_bind_int(st, 6, p->opts.max_retries);
    sqlite3_bind_int(st, 7, p->opts.priority);
    jm__bind_text(st, 8, p->cron);
    jm__bind_text(st, 9, p->tz);
    sqlite3_bind_int64(st, 10, p->interval_ms);
    sqlite3_bind_int64(st, 11, p->anchor_ms);
    sqlite3_bind_int64(st, 12, p->jitter_ms);
    sqlite3_bind_int(st, 13, (int)p->overlap);
    sqlite3_bind_int(st, 14, (int)p->misfire);
    sqlite3_bind_int(st, 15, p->catch_up_max);
    sqlite3_bind_int(st, 16, p->pause_after_failures);
    sqlite3_bind_int(st, 17, p->paused != 0);
    sqlite3_bind_int64(st, 18, sc->next_fire_ms);
}

int jm__sqlite_schedule_insert(jm__store *s, const jm_schedule *sc)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, S_INSERT, &st);
    if (rc)
        return rc;
    bind_spec(st, sc);
    sqlite3_bind_int64(st, 19, sc->created_at);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return src == SQLITE_DONE ? JM_OK : write_err(s, src, sc, "creating a schedule");
}

static int col_text(sqlite3_stmt *st, int i, const char **slot)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    if (!t && sqlite3_column_type(st, i) != SQLITE_NULL)
        return jm__seterr(JM_ENOMEM, "out of memory reading a schedule");
    return jm__schedule_set_str(slot, t);
}

/* A jm__sqlite_row_reader: `slot` is a jm_schedule **. */
static int read_row(sqlite3_stmt *st, void *slot)
{
    jm_schedule **out = slot;
    jm_schedule *sc = jm__schedule_new();
    if (!sc)
        return jm__seterr(JM_ENOMEM, "out of memory reading a schedule");
    jm_schedule_spec *p = &sc->spec;
    *p = (jm_schedule_spec)JM_SCHEDULE_SPEC_INIT;
    const char *id = (const char *)sqlite3_column_text(st, 0);
    snprintf(sc->id, sizeof sc->id, "%s", id ? id : "");
    int rc = col_text(st, 1, &p->name);
    if (!rc)
        rc = col_text(st, 2, &p->type);
    if (!rc)
        rc = col_text(st, 3, &p->params_json);
    if (!rc)
        rc = col_text(st, 4, &p->opts.namespace_id);
    if (!rc)
        rc = col_text(st, 7, &p->cron);
    if (!rc)
        rc = col_text(st, 8, &p->tz);
    if (rc) {
        jm_schedule_free(sc);
        return rc;
    }
    p->opts.max_retries = sqlite3_column_int(st, 5);
    p->opts.priority = sqlite3_column_int(st, 6);
    p->interval_ms = sqlite3_column_int64(st, 9);
    p->anchor_ms = sqlite3_column_int64(st, 10);
    p->jitter_ms = sqlite3_column_int64(st, 11);
    p->overlap = (jm_overlap)sqlite3_column_int(st, 12);
    p->misfire = (jm_misfire)sqlite3_column_int(st, 13);
    p->catch_up_max = sqlite3_column_int(st, 14);
    p->pause_after_failures = sqlite3_column_int(st, 15);
    p->paused = sqlite3_column_int(st, 16);
    sc->next_fire_ms = sqlite3_column_int64(st, 17);
    sc->last_fire_ms = sqlite3_column_int64(st, 18);
    const char *last = (const char *)sqlite3_column_text(st, 19);
    snprintf(sc->last_job_id, sizeof sc->last_job_id, "%s", last ? last : "");
    sc->consecutive_failures = sqlite3_column_int(st, 20);
    sc->created_at = sqlite3_column_int64(st, 21);
    sc->updated_at = sqlite3_column_int64(st, 22);
    *out = sc;
    return JM_OK;
}

static void free_list(void *list, size_t n)
{
    jm_schedule_list_free(list, n);
}

static const jm__sqlite_rows schedule_rows = {
    .noun = "schedule",
    .reading = "reading a schedule",
    .listing = "listing schedules",
    .elem_size = sizeof(jm_schedule *),
    .read = read_row,
    .free_list = free_list,
};

int jm__sqlite_schedule_get(jm__store *s, const char *id_or_name, jm_schedule **out)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, S_GET, &st);
    return rc ? rc : jm__sqlite_get_by_ref(s, st, id_or_name, &schedule_rows, out);
}

/* Every row of a bound statement, as snapshots. */
static int read_all(jm__store *s, sqlite3_stmt *st, jm_schedule ***out, size_t *n)
{
    void *list = NULL;
    int rc = jm__sqlite_read_list(s, st, &schedule_rows, &list, n);
    if (rc == JM_OK)
        *out = list;
    return rc;
}

int jm__sqlite_schedule_list(jm__store *s, jm_schedule ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, S_LIST, &st);
    return rc ? rc : read_all(s, st, out, n);
}

int jm__sqlite_schedule_due(jm__store *s, int64_t now, size_t limit, jm_schedule ***out,
                            size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, S_DUE, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    return read_all(s, st, out, n);
}

/* Runs a bound write; *changed gets the rows it changed. */
static int step_write(jm__store *s, sqlite3_stmt *st, const char *what, int *changed)
{
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src != SQLITE_DONE)
        return jm__sqlite_err(s, src, what);
    if (changed)
        *changed = sqlite3_changes(s->db);
    return JM_OK;
}

int jm__sqlite_schedule_update(jm__store *s, const jm_schedule *sc, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, S_UPDATE, &st);
    if (rc)
        return rc;
    bind_spec(st, sc);
    sqlite3_bind_int64(st, 19, now);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src != SQLITE_DONE)
        return write_err(s, src, sc, "updating a schedule");
    if (sqlite3_changes(s->db) == 0)
        return jm__seterr(JM_ENOTFOUND, "no schedule '%s'", sc->id);
    return JM_OK;
}

int jm__sqlite_schedule_delete(jm__store *s, const char *id)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, S_DELETE, &st), changed = 0;
    if (rc)
        return rc;
    jm__bind_text(st, 1, id);
    if ((rc = step_write(s, st, "deleting a schedule", &changed)))
        return rc;
    return changed ? JM_OK : jm__seterr(JM_ENOTFOUND, "no schedule '%.200s'", id);
}

int jm__sqlite_schedule_pause(jm__store *s, const char *id, int paused, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, S_PAUSE, &st), changed = 0;
    if (rc)
        return rc;
    jm__bind_text(st, 1, id);
    sqlite3_bind_int(st, 2, paused != 0);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = step_write(s, st, "pausing a schedule", &changed)))
        return rc;
    return changed ? JM_OK : jm__seterr(JM_ENOTFOUND, "no schedule '%.200s'", id);
}

int jm__sqlite_schedule_next_fire(jm__store *s, int64_t *out)
{
    *out = 0;
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, S_NEXT, &st);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = jm__sqlite_err(s, src, "reading the next fire time");
    sqlite3_reset(st);
    return rc;
}

/* One of the store's fixed statements (the write savepoint), prepared
 * once. */
static int exec_fixed(jm__store *s, jm__query q, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__sqlite_stmt(s, q, &st);
    return rc ? rc : jm__sqlite_write(s, st, what, NULL);
}

/* The schedule's active jobs and, of those, the ones waiting to run. */
static int active_jobs(jm__store *s, const char *id, int64_t *active, int64_t *waiting)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, S_ACTIVE, &st);
    if (rc)
        return rc;
    jm__bind_text(st, 1, id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *active = sqlite3_column_int64(st, 0);
        *waiting = sqlite3_column_int64(st, 1);
    } else {
        rc = jm__sqlite_err(s, src, "counting a schedule's jobs");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int insert_job(jm__store *s, jm__new_row *r)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, S_JOB, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, r->id, JM__ID_SEQ_AT, SQLITE_STATIC);
    jm__bind_text(st, 2, r->type);
    sqlite3_bind_int(st, 3, (int)r->status);
    jm__bind_text(st, 4, r->namespace_id);
    jm__bind_text(st, 5, r->params);
    sqlite3_bind_int(st, 6, r->max_retries);
    sqlite3_bind_int(st, 7, r->priority);
    sqlite3_bind_int64(st, 8, r->created_at);
    sqlite3_bind_int64(st, 9, r->run_at);
    jm__bind_text(st, 10, r->schedule_id);
    sqlite3_bind_int64(st, 11, r->fire_time);
    jm__bind_text(st, 12, r->resource);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src == SQLITE_CONSTRAINT_UNIQUE)
        return JM_ECONFLICT; /* a job for this fire time exists: fired elsewhere */
    if (src != SQLITE_DONE)
        return jm__sqlite_err(s, src, "creating a scheduled job");
    jm__job_id_set_seq(r->id, sqlite3_last_insert_rowid(s->db));
    return JM_OK;
}

/* One fire, inside the transaction and its savepoint. The jobs go in
 * first; then one UPDATE moves the next fire time, compare-and-set, and
 * records the last job. If the time had moved already, or a job for one
 * of these fire times exists (the unique index), another manager fired
 * it: f->lost is set and the caller undoes the savepoint. */
static int fire_one(jm__store *s, jm__fire *f)
{
    f->lost = 0;
    f->created = f->skipped = 0;
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
    sqlite3_stmt *st = NULL;
    int changed = 0;
    if ((rc = stmt(s, S_CAS, &st)))
        return rc;
    jm__bind_text(st, 1, f->schedule_id);
    sqlite3_bind_int64(st, 2, f->expect_next);
    sqlite3_bind_int64(st, 3, f->new_next);
    sqlite3_bind_int64(st, 4, f->now);
    if (last) {
        sqlite3_bind_int64(st, 5, last->fire_time);
        jm__bind_text(st, 6, last->id);
    }
    if ((rc = step_write(s, st, "moving a schedule's next fire time", &changed)))
        return rc;
    if (!changed)
        f->lost = 1;
    return JM_OK;
}

int jm__sqlite_schedule_fire(jm__store *s, jm__fire *fires, size_t n)
{
    int rc = jm__sqlite_begin(s);
    for (size_t i = 0; rc == JM_OK && i < n; i++) {
        /* One fire that fails on its own (a damaged schedule, say) is undone
         * alone; the others still fire. */
        if ((rc = exec_fixed(s, Q_WRITE_SAVEPOINT, "starting a fire")))
            break;
        int frc = fire_one(s, &fires[i]);
        if (frc && sqlite3_get_autocommit(s->db)) {
            rc = frc;
            break;
        }
        if (frc || fires[i].lost) {
            char msg[JM_ERRMSG_SIZE];
            snprintf(msg, sizeof msg, "%s", frc ? jm_last_error() : "");
            fires[i].lost = 1;
            fires[i].created = 0;
            if ((rc = exec_fixed(s, Q_WRITE_ROLLBACK, "undoing a fire")))
                break;
            if (frc == JM_EIO || frc == JM_ENOMEM || frc == JM_EBUSY) {
                rc = jm__seterr(frc, "%s", msg);
                break;
            }
        }
        rc = exec_fixed(s, Q_WRITE_RELEASE, "ending a fire");
    }
    if (rc == JM_OK)
        return jm__sqlite_commit(s);
    char msg[JM_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s", jm_last_error());
    jm__sqlite_rollback(s);
    for (size_t i = 0; i < n; i++) {
        fires[i].lost = 1;
        fires[i].created = 0;
    }
    return jm__seterr(rc, "%s", msg);
}
