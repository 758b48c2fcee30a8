/*
 * Schedules in PostgreSQL: the jm_schedules table, and firing. A fire
 * moves the schedule's next fire time by compare-and-set and creates its
 * jobs in the same transaction, with the schedule's row locked, so a fire
 * is done once or not at all whichever node and thread fires. The unique
 * index on (schedule_id, fire_time) refuses a second job for one fire time
 * all the same. The failures-in-a-row count moves in the schema's trigger,
 * not here.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "job_id.h"
#include "pg_internal.h"
#include "schedule_snapshot.h"

#define SCHED_COLUMNS                                                                    \
    "id, name, type, params, namespace_id, max_retries, priority, cron, tz, interval_ms, " \
    "anchor_ms, jitter_ms, overlap, misfire, catch_up_max, pause_after_failures, paused, " \
    "next_fire, last_fire, last_job_id, consecutive_failures, created_at, updated_at"

/* A name spelled like another row's id cannot hide that row: the row
 * whose id it is comes first. */
static const char get_sql[] = "SELECT " SCHED_COLUMNS " FROM jm_schedules "
                              "WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1";
static const char list_sql[] = "SELECT " SCHED_COLUMNS " FROM jm_schedules ORDER BY name";
static const char due_sql[] = "SELECT " SCHED_COLUMNS " FROM jm_schedules "
                              "WHERE paused = 0 AND next_fire <= $1 ORDER BY next_fire LIMIT $2";

static int name_taken(const char *name)
{
    return jm__seterr(JM_ECONFLICT, "a schedule named '%.200s' exists already", name);
}

/* The spec's columns, $1..$18, in SCHED_COLUMNS order. */
static void spec_params(jm__pg_params *p, const jm_schedule *sc)
{
    const jm_schedule_spec *sp = &sc->spec;
    jm__pg_p_init(p);
    jm__pg_p_str(p, sc->id);
    jm__pg_p_str(p, sp->name);
    jm__pg_p_str(p, sp->type);
    jm__pg_p_str(p, sp->params_json ? sp->params_json : "{}");
    jm__pg_p_str(p, sp->opts.namespace_id);
    jm__pg_p_i64(p, sp->opts.max_retries);
    jm__pg_p_i64(p, sp->opts.priority);
    jm__pg_p_str(p, sp->cron);
    jm__pg_p_str(p, sp->tz);
    jm__pg_p_i64(p, sp->interval_ms);
    jm__pg_p_i64(p, sp->anchor_ms);
    jm__pg_p_i64(p, sp->jitter_ms);
    jm__pg_p_i64(p, (int64_t)sp->overlap);
    jm__pg_p_i64(p, (int64_t)sp->misfire);
    jm__pg_p_i64(p, sp->catch_up_max);
    jm__pg_p_i64(p, sp->pause_after_failures);
    jm__pg_p_i64(p, sp->paused != 0);
    jm__pg_p_i64(p, sc->next_fire_ms);
}

int jm__pg_schedule_insert(jm__store *s, const jm_schedule *sc)
{
    /* A name or id in use inserts nothing: the caller's conflict. */
    static const char sql[] =
        "INSERT INTO jm_schedules (" SCHED_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, "
        "$8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 0, NULL, 0, $19, $19) "
        "ON CONFLICT DO NOTHING";
    jm__pg_params p;
    spec_params(&p, sc);
    jm__pg_p_i64(&p, sc->created_at);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "creating a schedule", sql, &p, &r);
    if (rc)
        return rc;
    int64_t inserted = jm__pg_changes(r);
    PQclear(r);
    return inserted ? JM_OK : name_taken(sc->spec.name);
}

/* Row `row` of a result selecting SCHED_COLUMNS, as a snapshot. */
static int read_row(const PGresult *r, int row, jm_schedule **out)
{
    jm_schedule *sc = jm__schedule_new();
    if (!sc)
        return jm__seterr(JM_ENOMEM, "out of memory reading a schedule");
    jm_schedule_spec *sp = &sc->spec;
    *sp = (jm_schedule_spec)JM_SCHEDULE_SPEC_INIT;
    const char *id = jm__pg_str(r, row, 0), *last = jm__pg_str(r, row, 19);
    snprintf(sc->id, sizeof sc->id, "%s", id ? id : "");
    snprintf(sc->last_job_id, sizeof sc->last_job_id, "%s", last ? last : "");
    int rc = jm__schedule_set_str(&sp->name, jm__pg_str(r, row, 1));
    if (!rc)
        rc = jm__schedule_set_str(&sp->type, jm__pg_str(r, row, 2));
    if (!rc)
        rc = jm__schedule_set_str(&sp->params_json, jm__pg_str(r, row, 3));
    if (!rc)
        rc = jm__schedule_set_str(&sp->opts.namespace_id, jm__pg_str(r, row, 4));
    if (!rc)
        rc = jm__schedule_set_str(&sp->cron, jm__pg_str(r, row, 7));
    if (!rc)
        rc = jm__schedule_set_str(&sp->tz, jm__pg_str(r, row, 8));
    if (rc) {
        jm_schedule_free(sc);
        return rc;
    }
    sp->opts.max_retries = (int)jm__pg_i64(r, row, 5);
    sp->opts.priority = (int)jm__pg_i64(r, row, 6);
    sp->interval_ms = jm__pg_i64(r, row, 9);
    sp->anchor_ms = jm__pg_i64(r, row, 10);
    sp->jitter_ms = jm__pg_i64(r, row, 11);
    sp->overlap = (jm_overlap)jm__pg_i64(r, row, 12);
    sp->misfire = (jm_misfire)jm__pg_i64(r, row, 13);
    sp->catch_up_max = (int)jm__pg_i64(r, row, 14);
    sp->pause_after_failures = (int)jm__pg_i64(r, row, 15);
    sp->paused = (int)jm__pg_i64(r, row, 16);
    sc->next_fire_ms = jm__pg_i64(r, row, 17);
    sc->last_fire_ms = jm__pg_i64(r, row, 18);
    sc->consecutive_failures = (int)jm__pg_i64(r, row, 20);
    sc->created_at = jm__pg_i64(r, row, 21);
    sc->updated_at = jm__pg_i64(r, row, 22);
    *out = sc;
    return JM_OK;
}

int jm__pg_schedule_get(jm__store *s, const char *id_or_name, jm_schedule **out)
{
    *out = NULL;
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, id_or_name);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading a schedule", get_sql, &p, &r);
    if (rc)
        return rc;
    if (PQntuples(r) == 0)
        rc = jm__seterr(JM_ENOTFOUND, "no schedule '%.200s'", id_or_name);
    else
        rc = read_row(r, 0, out);
    PQclear(r);
    return rc;
}

/* Every row of a statement, as snapshots: *out NULL when there are none. */
static int read_all(jm__store *s, const char *sql, const jm__pg_params *p, jm_schedule ***out,
                    size_t *n)
{
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "listing schedules", sql, p, &r);
    if (rc)
        return rc;
    int rows = PQntuples(r);
    jm_schedule **list = NULL;
    size_t count = 0;
    if (rows > 0 && !(list = jm__calloc((size_t)rows, sizeof *list)))
        rc = jm__seterr(JM_ENOMEM, "out of memory listing schedules");
    for (int i = 0; rc == JM_OK && i < rows; i++)
        if ((rc = read_row(r, i, &list[i])) == JM_OK)
            count++;
    PQclear(r);
    if (rc) {
        jm_schedule_list_free(list, count);
        return rc;
    }
    *out = list;
    *n = count;
    return JM_OK;
}

int jm__pg_schedule_list(jm__store *s, jm_schedule ***out, size_t *n)
{
    return read_all(s, list_sql, NULL, out, n);
}

int jm__pg_schedule_due(jm__store *s, int64_t now, size_t limit, jm_schedule ***out,
                        size_t *n)
{
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_i64(&p, now);
    jm__pg_p_i64(&p, (int64_t)limit);
    return read_all(s, due_sql, &p, out, n);
}

/* Runs a write of one schedule; JM_ENOTFOUND naming `id` if it changed
 * no row. */
static int write_one(jm__store *s, const char *what, const char *sql, const jm__pg_params *p,
                     const char *id)
{
    PGresult *r = NULL;
    int rc = jm__pg_run(s, what, sql, p, &r);
    if (rc)
        return rc;
    int64_t changed = jm__pg_changes(r);
    PQclear(r);
    return changed ? JM_OK : jm__seterr(JM_ENOTFOUND, "no schedule '%.200s'", id);
}

/* After a refused update: is the name another schedule's? Then the
 * refusal was its unique constraint (23505), which jm__pg_err leaves
 * unnamed: the caller's conflict. */
static int update_refused(jm__store *s, int rc, const jm_schedule *sc)
{
    static const char sql[] = "SELECT 1 FROM jm_schedules WHERE name = $1 AND id <> $2";
    if (rc != JM_EDB)
        return rc;
    char msg[JM_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s", jm_last_error());
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, sc->spec.name);
    jm__pg_p_str(&p, sc->id);
    PGresult *r = NULL;
    if (jm__pg_run(s, "updating a schedule", sql, &p, &r) == JM_OK && PQntuples(r) > 0) {
        PQclear(r);
        return name_taken(sc->spec.name);
    }
    PQclear(r);
    return jm__seterr(rc, "%s", msg);
}

int jm__pg_schedule_update(jm__store *s, const jm_schedule *sc, int64_t now)
{
    static const char sql[] =
        "UPDATE jm_schedules SET name = $2, type = $3, params = $4, namespace_id = $5, "
        "max_retries = $6, priority = $7, cron = $8, tz = $9, interval_ms = $10, "
        "anchor_ms = $11, jitter_ms = $12, overlap = $13, misfire = $14, "
        "catch_up_max = $15, pause_after_failures = $16, paused = $17, "
        "next_fire = $18, updated_at = $19 WHERE id = $1";
    jm__pg_params p;
    spec_params(&p, sc);
    jm__pg_p_i64(&p, now);
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "updating a schedule", sql, &p, &r);
    if (rc)
        return update_refused(s, rc, sc);
    int64_t changed = jm__pg_changes(r);
    PQclear(r);
    return changed ? JM_OK : jm__seterr(JM_ENOTFOUND, "no schedule '%s'", sc->id);
}

int jm__pg_schedule_delete(jm__store *s, const char *id)
{
    static const char sql[] = "DELETE FROM jm_schedules WHERE id = $1";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, id);
    return write_one(s, "deleting a schedule", sql, &p, id);
}

int jm__pg_schedule_pause(jm__store *s, const char *id, int paused, int64_t now)
{
    /* Resuming clears the failures in a row. */
    static const char sql[] =
        "UPDATE jm_schedules SET paused = $2, updated_at = $3, consecutive_failures = "
        "CASE WHEN $2 = 0 THEN 0 ELSE consecutive_failures END WHERE id = $1";
    jm__pg_params p;
    jm__pg_p_init(&p);
    jm__pg_p_str(&p, id);
    jm__pg_p_i64(&p, paused != 0);
    jm__pg_p_i64(&p, now);
    return write_one(s, "pausing a schedule", sql, &p, id);
}

int jm__pg_schedule_next_fire(jm__store *s, int64_t *out)
{
    static const char sql[] = "SELECT min(next_fire) FROM jm_schedules WHERE paused = 0";
    *out = 0;
    PGresult *r = NULL;
    int rc = jm__pg_run(s, "reading the next fire time", sql, NULL, &r);
    if (rc)
        return rc;
    *out = jm__pg_i64(r, 0, 0);
    PQclear(r);
    return JM_OK;
}
