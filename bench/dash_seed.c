/*
 * The dashboard scenario's jobs table: what a day of a busy system leaves
 * (--dashboard-jobs jobs; scn_dashboard() sets the shares of each part):
 * - history: created with jm_create_many, then backdated over the last 24
 *   hours and finished by direct SQL while no manager has the file open
 *   (the set-up shortcut of scale and prune: running them would measure
 *   nothing more): 1 in 25 failed, 1 in 97 cancelled, the rest completed,
 *   about 1/24 of them in the last hour, so the throughput chart has data;
 * - 2 % worked just now by a real worker pool with no-op executors of the
 *   eight built-in types: 1 in 20 runs fail, 1 in 50 ask to retry in an
 *   hour (retrying), the rest complete with a result;
 * - 1.5 % queued after that (1 in 10 due an hour from now: new);
 * - BDASH_HELD_JOBS running: a second manager in this process holds them
 *   in their executors for the whole measurement, renewing their leases.
 * Types follow one weighting (FL 40 %, CO 15, SE, RT and CL 10 each, BK 8,
 * UC 5, RS 2), namespaces ns-0..ns-99; BDASH_SCHEDULES hourly schedules
 * and one pause of a resource stand beside them. It measures nothing.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash_bench.h"

/* The seeded table. */
#define BATCH 1000
#define HELD_PRIORITY 10
#define HISTORY_FAILED_EVERY 25
#define HISTORY_CANCELLED_EVERY 97
#define NAMESPACES 100
#define TABLES 40
#define PARAM_ROWS 5000
#define PAUSED_RESOURCE "archive.cold"
#define MS_PER_HOUR (3600 * 1000LL)
#define HISTORY_SPAN_MS (24 * MS_PER_HOUR)
/* History ends this long before the set-up, so no row finishes in the future. */
#define HISTORY_MARGIN_MS 10000
#define WORK_TIMEOUT_S 600

static const struct {
    const char *type;
    int percent;
} type_mix[] = {{"FL", 40}, {"CO", 15}, {"SE", 10}, {"RT", 10},
                {"CL", 10}, {"BK", 8},  {"UC", 5},  {"RS", 2}};
#define NTYPES (sizeof type_mix / sizeof type_mix[0])

static jm_decision mix_execute(void *self, jm_ctx *ctx)
{
    (void)ctx;
    bdash_mix_state *st = self;
    long k = atomic_fetch_add(&st->turn, 1);
    jm_decision d;
    if (k % BDASH_FAIL_EVERY == BDASH_FAIL_EVERY - 1)
        d = jm_decision_failed("bench: the table was locked", "bench: simulated failure");
    else if (k % BDASH_RETRY_EVERY == BDASH_RETRY_EVERY / 2)
        d = jm_decision_retry("bench: busy, again in an hour", NULL, MS_PER_HOUR);
    else
        d = jm_decision_completed("done", "{\"rows\":1000}");
    bu_counter_bump(st->runs);
    return d;
}

static jm_decision hold_execute(void *self, jm_ctx *ctx)
{
    bdash_hold_state *h = self;
    jm_ctx_progress(ctx, 0.5);
    bu_counter_bump(h->started);
    while (bu_counter_wait(h->release, 0.2) != 0 && !jm_ctx_is_cancelled(ctx))
        ;
    return jm_decision_completed("held", NULL);
}

static int register_all(jm_manager *m, jm_decision (*execute)(void *, jm_ctx *), void *self)
{
    int rc = JM_OK;
    for (size_t t = 0; t < NTYPES && rc == JM_OK; t++) {
        jm_executor ex = {JM_EXECUTOR_VERSION, type_mix[t].type, "bench-dashboard", 1, NULL,
                          execute, NULL, JM_CLASS_NORMAL, NULL};
        rc = jm_register(m, &ex, self);
    }
    return rc;
}

static const char *type_of(long i)
{
    int h = (int)(((uint64_t)i * 2654435761u) % 100);
    for (size_t t = 0; t < NTYPES; t++) {
        if (h < type_mix[t].percent)
            return type_mix[t].type;
        h -= type_mix[t].percent;
    }
    return type_mix[0].type;
}

static jm_manager *open_seed(const bdash_seed *s, jm_decision (*execute)(void *, jm_ctx *),
                             void *self)
{
    jm_config cfg = bu_config(s->path);
    jm_manager *m = NULL;
    int rc = jm_open(&cfg, &m);
    if (rc == JM_OK)
        rc = register_all(m, execute, self);
    if (rc != JM_OK) {
        bench_fail(BDASH_SCN, "set-up: jm_open: %s: %s", jm_strerror(rc), jm_last_error());
        jm_close(m);
        return NULL;
    }
    return m;
}

/* Creates n jobs of the mix; every `later_every`-th (0: none) due an hour
 * from now; all with `priority`. Keeps one id per stride. */
static int create_jobs(jm_manager *m, bdash_seed *s, long n, long later_every, int priority)
{
    jm_new_job *jobs = calloc(BATCH, sizeof *jobs);
    char (*params)[96] = calloc(BATCH, sizeof *params);
    char (*ns)[16] = calloc(BATCH, sizeof *ns);
    char (*ids)[JM_JOB_ID_SIZE] = calloc(BATCH, sizeof *ids);
    int rc = JM_ENOMEM;
    if (!jobs || !params || !ns || !ids)
        goto done;
    rc = JM_OK;
    int64_t later = bu_wall_ms() + MS_PER_HOUR;
    for (long made = 0; made < n && rc == JM_OK;) {
        long k = n - made < BATCH ? n - made : BATCH;
        for (long j = 0; j < k; j++) {
            long i = s->next + j;
            jm_create_opts o = JM_CREATE_OPTS_INIT;
            snprintf(ns[j], sizeof ns[j], "ns-%ld", i % NAMESPACES);
            snprintf(params[j], sizeof params[j], "{\"table\":\"ns-%ld.t-%ld\",\"rows\":%ld}",
                     i % NAMESPACES, i % TABLES, i % PARAM_ROWS);
            o.namespace_id = ns[j];
            o.priority = priority;
            if (later_every > 0 && i % later_every == later_every - 1)
                o.run_at_ms = later;
            jobs[j].type = type_of(i);
            jobs[j].params_json = params[j];
            jobs[j].opts = o;
        }
        rc = jm_create_many(m, jobs, (size_t)k, ids);
        for (long j = 0; rc == JM_OK && j < k; j++)
            if ((s->next + j) % s->stride == 0 && s->nids < BDASH_ID_SAMPLES)
                memcpy(s->ids[s->nids++], ids[j], JM_JOB_ID_SIZE);
        s->next += k;
        made += k;
    }
    if (rc != JM_OK)
        bench_fail(BDASH_SCN, "set-up: jm_create_many: %s: %s", jm_strerror(rc), jm_last_error());
done:
    free(jobs);
    free(params);
    free(ns);
    free(ids);
    return rc != JM_OK;
}

/* Schedules and a pause, as a used system has some. */
static int add_schedules_and_pause(jm_manager *m)
{
    int rc = JM_OK;
    for (int i = 0; i < BDASH_SCHEDULES && rc == JM_OK; i++) {
        char name[32], params[64], id[JM_SCHEDULE_ID_SIZE];
        jm_schedule_spec sp = JM_SCHEDULE_SPEC_INIT;
        snprintf(name, sizeof name, "hourly-%d", i);
        snprintf(params, sizeof params, "{\"table\":\"ns-%d.t-%d\"}", i, i);
        sp.name = name;
        sp.type = type_mix[(size_t)i % NTYPES].type;
        sp.params_json = params;
        sp.interval_ms = MS_PER_HOUR;
        sp.paused = i == BDASH_SCHEDULES - 1;
        rc = jm_schedule_create(m, &sp, id);
    }
    if (rc == JM_OK)
        rc = jm_pause(m, JM_PAUSE_RESOURCE, PAUSED_RESOURCE);
    if (rc != JM_OK)
        bench_fail(BDASH_SCN, "set-up: schedules and pause: %s: %s", jm_strerror(rc),
                   jm_last_error());
    return rc != JM_OK;
}

/* Backdates the history (every row so far) over HISTORY_SPAN_MS ending
 * just before `now`, keeping created_at in seq order as the library does,
 * and finishes it: failed, cancelled or completed by seq. While no manager
 * has the file open. */
static int finish_history(const char *path, int64_t now)
{
    /* The library's schema stores statuses as jm_status integers; a
     * cancelled job never started, the others ran once, starting 20 to
     * 69 ms after their creation and ending 0.1 to 2.1 s after it. */
    static const char sql[] =
        "UPDATE jm_jobs SET "
        " status = CASE WHEN seq % :cevery = 0 THEN :cancelled"
        "  WHEN seq % :fevery = 0 THEN :failed ELSE :completed END,"
        " created_at = :start + seq * :span / :maxseq,"
        " run_at = :start + seq * :span / :maxseq,"
        " attempts = CASE WHEN seq % :cevery = 0 THEN 0 ELSE 1 END,"
        " started_at = CASE WHEN seq % :cevery = 0 THEN NULL"
        "  ELSE :start + seq * :span / :maxseq + 20 + seq % 50 END,"
        " finished_at = :start + seq * :span / :maxseq + 120 + seq * 13 % 2000,"
        " updated_at = :start + seq * :span / :maxseq + 120 + seq * 13 % 2000,"
        " message = CASE WHEN seq % :cevery = 0 THEN 'cancelled by an operator'"
        "  WHEN seq % :fevery = 0 THEN 'bench: the table was locked' ELSE 'done' END,"
        " exception_trace = CASE WHEN seq % :cevery <> 0 AND seq % :fevery = 0"
        "  THEN 'bench: simulated failure' END"
        " WHERE seq BETWEEN :lo AND :hi AND status = :queued";
    const bu_bind binds[] = {
        {":cevery", HISTORY_CANCELLED_EVERY},
        {":fevery", HISTORY_FAILED_EVERY},
        {":cancelled", JM_STATUS_CANCELLED},
        {":failed", JM_STATUS_FAILED},
        {":completed", JM_STATUS_COMPLETED},
        {":queued", JM_STATUS_QUEUED},
        {":start", now - HISTORY_MARGIN_MS - HISTORY_SPAN_MS},
        {":span", HISTORY_SPAN_MS},
    };
    return bu_update_in_chunks(path, sql, binds, sizeof binds / sizeof binds[0],
                               "finishing the history");
}

/* History, then the worked portion, then the queued one; the held jobs
 * come later, in their own manager. */
int bdash_seed_table(bdash_seed *s, bdash_mix_state *mix)
{
    bench_log(BDASH_SCN ": creating %ld jobs of history", s->history);
    jm_manager *m = open_seed(s, mix_execute, mix);
    if (!m)
        return 1;
    int bad = add_schedules_and_pause(m) || create_jobs(m, s, s->history, 0, 0);
    jm_close(m);
    if (bad)
        return 1;
    bench_log(BDASH_SCN ": backdating and finishing them");
    if (finish_history(s->path, bu_wall_ms())) {
        bench_fail(BDASH_SCN, "set-up: finishing the history failed");
        return 1;
    }
    bench_log(BDASH_SCN ": working %ld jobs, then queueing %ld", s->worked, s->queued);
    if (!(m = open_seed(s, mix_execute, mix)))
        return 1;
    bad = create_jobs(m, s, s->worked, 0, 0);
    int rc = bad ? JM_OK : jm_start(m, BDASH_WORKERS);
    if (!bad && rc == JM_OK && bu_counter_wait(mix->runs, WORK_TIMEOUT_S) != 0) {
        bench_fail(BDASH_SCN, "set-up: %ld of %ld jobs ran in %d s", bu_counter_value(mix->runs),
                   s->worked, WORK_TIMEOUT_S);
        bad = 1;
    }
    if (!bad && rc == JM_OK)
        rc = jm_stop(m, WORK_TIMEOUT_S * 1000LL);
    if (rc != JM_OK) {
        bench_fail(BDASH_SCN, "set-up: working: %s: %s", jm_strerror(rc), jm_last_error());
        bad = 1;
    }
    if (!bad)
        bad = create_jobs(m, s, s->queued, BDASH_LATER_EVERY, 0);
    jm_close(m);
    return bad;
}

/* The held jobs: a manager whose every worker runs one until released. */
jm_manager *bdash_hold_jobs(bdash_seed *s, bdash_hold_state *h)
{
    jm_manager *m = open_seed(s, hold_execute, h);
    if (!m)
        return NULL;
    int rc = JM_OK;
    if (create_jobs(m, s, BDASH_HELD_JOBS, 0, HELD_PRIORITY) ||
        (rc = jm_start(m, BDASH_HELD_JOBS)) != JM_OK ||
        bu_counter_wait(h->started, BDASH_HOLD_TIMEOUT_S) != 0) {
        if (rc != JM_OK)
            bench_fail(BDASH_SCN, "set-up: jm_start: %s: %s", jm_strerror(rc), jm_last_error());
        else
            bench_fail(BDASH_SCN, "set-up: %ld of %d held jobs started",
                       bu_counter_value(h->started), BDASH_HELD_JOBS);
        bu_counter_bump(h->release);
        jm_close(m);
        return NULL;
    }
    return m;
}
