/*
 * A full disk under the PostgreSQL server: its data directory sits on a
 * small filesystem of its own, which the test fills with a file of its
 * own. Creating jobs from several threads at once (so in groups that
 * commit together) then fails, one at a time and in batches, with JM_EIO
 * and the server's word for it (no space left), promptly and without
 * losing a job already acknowledged; once the file is gone,
 * creating works again at once, and every acknowledged job runs exactly
 * once while nothing else exists. The WAL lives on another filesystem,
 * so the server keeps answering instead of stopping: what fills up is
 * the tables and indexes, as when a volume of data outgrows its disk.
 *
 * Needs JM_TEST_PG_DISKFULL_URL and JM_TEST_PG_DISKFULL_FILLER, which
 * scripts/pg_disk_full.sh sets (as root); skipped (77) without them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jobmgr.h"
#include "test_util.h"

/* Jobs created while the disk still has room, in batches of BATCH; the
 * batches tried on the full disk are of BATCH too. */
#define BEFORE_JOBS 200
#define BATCH 20
/* Threads creating at once on the full disk; the failures of each kind
 * (one job, a batch) each must see before the disk is freed, and the most
 * creates each tries to get them. */
#define CREATORS 4
#define FAILS_WANTED 3
#define MAX_TRIES 200
/* The most jobs the test keeps track of: those before, those the full
 * disk still took, and those after. */
#define MAX_JOBS (BEFORE_JOBS + CREATORS * MAX_TRIES * BATCH + 2 * BATCH)
/* How long the store may spend reconnecting; a refused create must answer
 * well within it. */
#define BUSY_TIMEOUT_MS 20000
/* What the server says when it cannot extend a table's file. */
#define NO_SPACE "No space left on device"
/* The filler is written in pieces of FILL_LARGE bytes, then of a page, so
 * that not one page of room remains. */
#define FILL_LARGE (1 << 20)
#define FILL_PAGE 4096

/* How long jm_stop() lets the running jobs end on their own. */
#define DRAIN_MS 10000

static const char *url;
static const char *filler;

/* Job ids noted by several threads. Noting never asserts: cmocka's
 * failures belong to the test's own thread. */
typedef struct id_log {
    pthread_mutex_t lock;
    char ids[MAX_JOBS][JM_JOB_ID_SIZE];
    size_t n;
    int overflow;
} id_log;

/* The ids acknowledged by a create that returned JM_OK, and those the
 * executor ran, once per run. */
static id_log acked = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0, 0};
static id_log runs = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0, 0};

static void note(id_log *l, const char *id)
{
    pthread_mutex_lock(&l->lock);
    if (l->n < MAX_JOBS)
        snprintf(l->ids[l->n++], JM_JOB_ID_SIZE, "%.*s", JM_JOB_ID_SIZE - 1, id);
    else
        l->overflow = 1;
    pthread_mutex_unlock(&l->lock);
}

static jm_decision record_run(void *self, jm_ctx *ctx)
{
    (void)self;
    note(&runs, jm_job_id(jm_ctx_job(ctx)));
    return jm_decision_completed(NULL, NULL);
}

static jm_manager *open_manager(void)
{
    jm_config c = tu_config("unused");
    c.db_path = NULL;
    c.db_url = url;
    c.pg_schema = "t_disk_full";
    c.node_id = "disk-full";
    c.poll_interval_ms = 20;
    c.busy_timeout_ms = BUSY_TIMEOUT_MS;
    jm_manager *m = NULL;
    if (jm_open(&c, &m) != JM_OK)
        fail_msg("jm_open: %s", jm_last_error());
    jm_executor ex;
    memset(&ex, 0, sizeof ex);
    ex.version = JM_EXECUTOR_VERSION;
    ex.type = "NX";
    ex.name = "noop";
    ex.execute = record_run;
    assert_int_equal(jm_register(m, &ex, NULL), JM_OK);
    return m;
}

static int create_one(jm_manager *m)
{
    char id[JM_JOB_ID_SIZE];
    int rc = jm_create(m, "NX", "{\"one\":true}", NULL, id);
    if (rc == JM_OK)
        note(&acked, id);
    return rc;
}

static int create_batch(jm_manager *m)
{
    jm_new_job jobs[BATCH];
    char ids[BATCH][JM_JOB_ID_SIZE];
    for (int i = 0; i < BATCH; i++)
        jobs[i] = (jm_new_job){"NX", "{\"batch\":true}", JM_CREATE_OPTS_INIT};
    int rc = jm_create_many(m, jobs, BATCH, ids);
    if (rc == JM_OK)
        for (int i = 0; i < BATCH; i++)
            note(&acked, ids[i]);
    return rc;
}

/* Writes the filler until the filesystem refuses; returns the bytes it
 * took. */
static int64_t fill_disk(void)
{
    static char piece[FILL_LARGE];
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fail_msg("opening %s: %s", filler, strerror(errno));
    int64_t total = 0;
    static const size_t sizes[] = {FILL_LARGE, FILL_PAGE};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        ssize_t w;
        while ((w = write(fd, piece, sizes[k])) > 0)
            total += w;
        if (errno != ENOSPC)
            fail_msg("filling %s: %s", filler, strerror(errno));
    }
    close(fd);
    return total;
}

/* One creating thread's account. */
typedef struct creator {
    jm_manager *m;
    int ok[2], failed[2];     /* [0] one job, [1] a batch */
    int64_t slowest_ms;       /* the slowest failing create */
    char first[2][512];       /* each kind's first failure */
    char wrong[600];          /* a failure not JM_EIO or not saying why; "" if none */
} creator;

/* Creates alternately one job and a batch until each has failed
 * FAILS_WANTED times. */
static void *create_until_refused(void *arg)
{
    creator *c = arg;
    for (int i = 0; i < MAX_TRIES && !c->wrong[0] &&
                    (c->failed[0] < FAILS_WANTED || c->failed[1] < FAILS_WANTED);
         i++) {
        int many = i % 2;
        int64_t t0 = tu_mono_ms();
        int rc = many ? create_batch(c->m) : create_one(c->m);
        int64_t took = tu_mono_ms() - t0;
        if (rc == JM_OK) {
            c->ok[many]++;
            continue;
        }
        c->failed[many]++;
        if (took > c->slowest_ms)
            c->slowest_ms = took;
        if (!c->first[many][0])
            snprintf(c->first[many], sizeof c->first[many], "JM_%s: %s", jm_err_name(rc),
                     jm_last_error());
        if (rc != JM_EIO || !strstr(jm_last_error(), NO_SPACE))
            snprintf(c->wrong, sizeof c->wrong, "%s returned JM_%s: %s",
                     many ? "jm_create_many" : "jm_create", jm_err_name(rc), jm_last_error());
    }
    return NULL;
}

/* Every failure was JM_EIO, said why, and came back well before a lost
 * connection would have been waited out. */
static void assert_refused_clearly(const creator *c, int n)
{
    creator sum = {0};
    for (int k = 0; k < n; k++) {
        if (c[k].wrong[0])
            fail_msg("on a full disk, want JM_EIO saying \"%s\": %s", NO_SPACE, c[k].wrong);
        for (int i = 0; i < 2; i++) {
            const char *what = i ? "jm_create_many" : "jm_create";
            if (c[k].failed[i] < FAILS_WANTED)
                fail_msg("%s: the full disk refused %d of %d tries", what, c[k].failed[i],
                         c[k].ok[i] + c[k].failed[i]);
            sum.ok[i] += c[k].ok[i];
            sum.failed[i] += c[k].failed[i];
        }
        if (c[k].slowest_ms > sum.slowest_ms)
            sum.slowest_ms = c[k].slowest_ms;
    }
    printf("# the full disk still took %d single and %d batch creates, then refused %d and %d "
           "(slowest refusal %lld ms)\n",
           sum.ok[0], sum.ok[1], sum.failed[0], sum.failed[1], (long long)sum.slowest_ms);
    printf("# jm_create: %s\n# jm_create_many: %s\n", c[0].first[0], c[0].first[1]);
    assert_true(sum.slowest_ms < BUSY_TIMEOUT_MS);
}

/* Every acknowledged job reads back, in status `want`. */
static void assert_acked_readable(jm_manager *m, jm_status want)
{
    assert_false(acked.overflow);
    for (size_t i = 0; i < acked.n; i++) {
        jm_job *j = NULL;
        int rc = jm_get(m, acked.ids[i], &j);
        if (rc != JM_OK)
            fail_msg("acknowledged job %s: jm_get: %s", acked.ids[i], jm_last_error());
        assert_int_equal(jm_job_status(j), want);
        jm_job_free(j);
    }
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The runs are the acknowledged jobs, each once, and nothing else. */
static void assert_each_ran_once(void)
{
    assert_false(runs.overflow);
    assert_int_equal(runs.n, acked.n);
    qsort(acked.ids, acked.n, JM_JOB_ID_SIZE, cmp_id);
    qsort(runs.ids, runs.n, JM_JOB_ID_SIZE, cmp_id);
    for (size_t i = 0; i < acked.n; i++) {
        if (i > 0 && strcmp(runs.ids[i - 1], runs.ids[i]) == 0)
            fail_msg("job %s ran twice", runs.ids[i]);
        if (strcmp(acked.ids[i], runs.ids[i]) != 0)
            fail_msg("the runs and the acknowledged jobs differ at %s / %s", acked.ids[i],
                     runs.ids[i]);
    }
}

static void full_disk_refuses_creates_and_loses_nothing(void **state)
{
    (void)state;
    jm_manager *m = open_manager();
    for (int i = 0; i < BEFORE_JOBS / BATCH; i++)
        assert_int_equal(create_batch(m), JM_OK);

    int64_t filled = fill_disk();
    printf("# the filler took the last %lld bytes\n", (long long)filled);
    creator c[CREATORS];
    pthread_t threads[CREATORS];
    for (int k = 0; k < CREATORS; k++) {
        c[k] = (creator){.m = m};
        assert_int_equal(pthread_create(&threads[k], NULL, create_until_refused, &c[k]), 0);
    }
    for (int k = 0; k < CREATORS; k++)
        assert_int_equal(pthread_join(threads[k], NULL), 0);
    assert_refused_clearly(c, CREATORS);

    /* Reading needs no room: everything acknowledged is there, and the
     * refused batches left nothing behind. */
    assert_acked_readable(m, JM_STATUS_QUEUED);
    jm_filter all = JM_FILTER_INIT;
    int64_t total = 0;
    assert_int_equal(jm_count(m, &all, &total), JM_OK);
    assert_int_equal(total, (int64_t)acked.n);

    /* Room again: the next creates succeed, on the same manager. */
    if (unlink(filler) != 0)
        fail_msg("removing %s: %s", filler, strerror(errno));
    if (create_one(m) != JM_OK)
        fail_msg("jm_create once the disk had room: %s", jm_last_error());
    if (create_batch(m) != JM_OK)
        fail_msg("jm_create_many once the disk had room: %s", jm_last_error());

    int64_t r0 = tu_mono_ms();
    assert_int_equal(jm_start(m, 2), JM_OK);
    int done = tu_wait_completed(m, (int64_t)acked.n, 4 * TU_TIMEOUT_MS);
    assert_int_equal(jm_stop(m, DRAIN_MS), JM_OK);
    assert_true(done);
    printf("# %zu acknowledged jobs ran in %lld ms\n", acked.n, (long long)(tu_mono_ms() - r0));
    assert_int_equal(jm_count(m, &all, &total), JM_OK);
    assert_int_equal(total, (int64_t)acked.n);
    assert_acked_readable(m, JM_STATUS_COMPLETED);
    assert_each_ran_once();
    jm_close(m);
}

int main(void)
{
    url = getenv("JM_TEST_PG_DISKFULL_URL");
    filler = getenv("JM_TEST_PG_DISKFULL_FILLER");
    if (!url || !*url || !filler || !*filler) {
        fprintf(stderr, "skipped: JM_TEST_PG_DISKFULL_URL or JM_TEST_PG_DISKFULL_FILLER is not "
                        "set (scripts/pg_disk_full.sh sets them)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_disk_refuses_creates_and_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
