/*
 * engine_demo: the eight built-in executors doing real work on the
 * reference engine.
 *
 * It builds a small database (a namespace, two users, a user table, a
 * shared table with an ACL and a live query, a stream table with a TTL),
 * fills it with rows (some soft-deleted long ago, some stream rows past
 * their TTL), then runs one job of each type through the worker pool:
 * flush, compact, retention, stream eviction, backup, restore, cleanup and
 * user cleanup. It prints every job with its status and metrics, and the
 * tables' row counts before and after. A final part creates no job itself:
 * two table policies see rows arrive and past their TTL, and the manager's
 * loop creates and runs a flush and a stream eviction for them.
 *
 *   engine_demo [DIR]     (default: ./engine_demo_data, recreated each run)
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jobmgr.h>
#include <jobmgr/engine.h>

#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)
#define WAIT_LIMIT_MS 60000
/* How often the manager's loop evaluates the policies here: often, so the
 * final part does not wait long. */
#define POLICY_INTERVAL_MS 100
/* The flush policy's threshold, and the orders that cross it. */
#define POLICY_FLUSH_ROWS 200
#define LATE_ORDERS 250
/* Clicks written already past the one-hour TTL, for the eviction policy,
 * which runs on a table at most once a minute. */
#define EXPIRED_CLICKS 300
#define POLICY_EVICT_EVERY_MS 60000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes what an earlier run left, so every run starts empty. */
static int clear_dir(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

/* Stops the demo with the library's explanation of what went wrong. */
static void check(int rc, const char *what)
{
    if (rc != JM_OK) {
        fprintf(stderr, "engine_demo: %s: %s (%s)\n", what, jm_strerror(rc), jm_last_error());
        exit(1);
    }
}

static int64_t count_rows(jm_engine *e, const char *table)
{
    int exists = 0;
    check(jm_engine_table_exists(e, "app", table, &exists), "table_exists");
    if (!exists)
        return -1;
    int64_t n = 0;
    check(jm_engine_count(e, "app", table, 1, &n), "count");
    return n;
}

static void print_counts(jm_engine *e, const char *when)
{
    static const char *const tables[] = {"orders", "clicks", "notes", "scratch",
                                         "orders_restored"};
    printf("\nrow counts %s (soft-deleted rows included; - = no such table)\n", when);
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        int64_t n = count_rows(e, tables[i]);
        int64_t segs = 0;
        if (n >= 0)
            check(jm_engine_segment_count(e, "app", tables[i], &segs), "segment_count");
        if (n < 0)
            printf("  app.%-16s %8s\n", tables[i], "-");
        else
            printf("  app.%-16s %8lld rows  %lld segment(s)\n", tables[i], (long long)n,
                   (long long)segs);
    }
}

/* Waits until no job is new, queued, running or retrying. */
static void wait_for_jobs(jm_manager *m)
{
    jm_filter f = JM_FILTER_INIT;
    f.statuses = JM_STATUS_BIT(JM_STATUS_NEW) | JM_STATUS_BIT(JM_STATUS_QUEUED) |
                 JM_STATUS_BIT(JM_STATUS_RUNNING) | JM_STATUS_BIT(JM_STATUS_RETRYING);
    for (int waited = 0; waited < WAIT_LIMIT_MS; waited += 20) {
        int64_t active = 0;
        check(jm_count(m, &f, &active), "jm_count");
        if (active == 0)
            return;
        sleep_ms(20);
    }
    fprintf(stderr, "engine_demo: jobs did not finish within %d ms\n", WAIT_LIMIT_MS);
    exit(1);
}

static void create(jm_manager *m, const char *type, const char *params, char id[JM_JOB_ID_SIZE])
{
    char what[64];
    snprintf(what, sizeof what, "jm_create %s", type);
    check(jm_create(m, type, params, NULL, id), what);
}

/* The "path" member of a finished job's metrics (the backup directory). */
static char *result_path(jm_manager *m, const char *id)
{
    jm_job *j = NULL;
    check(jm_get(m, id, &j), "jm_get");
    cJSON *r = jm_job_result(j) ? cJSON_Parse(jm_job_result(j)) : NULL;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "path");
    char *path = cJSON_IsString(p) ? strdup(p->valuestring) : NULL;
    cJSON_Delete(r);
    jm_job_free(j);
    if (!path) {
        fprintf(stderr, "engine_demo: job %s reported no backup path\n", id);
        exit(1);
    }
    return path;
}

static void fill(jm_engine *e, int64_t now)
{
    check(jm_engine_create_namespace(e, "app"), "create namespace");
    check(jm_engine_create_user(e, "alice", "Alice"), "create user alice");
    check(jm_engine_create_user(e, "bob", "Bob"), "create user bob");

    jm_table_opts own = JM_TABLE_OPTS_INIT;
    own.owner_user_id = "alice";
    check(jm_engine_create_table(e, "app", "notes", JM_TABLE_USER, &own), "create notes");
    own.owner_user_id = "bob";
    check(jm_engine_create_table(e, "app", "scratch", JM_TABLE_USER, &own), "create scratch");
    check(jm_engine_create_table(e, "app", "orders", JM_TABLE_SHARED, NULL), "create orders");
    jm_table_opts stream = JM_TABLE_OPTS_INIT;
    stream.ttl_seconds = 3600;
    check(jm_engine_create_table(e, "app", "clicks", JM_TABLE_STREAM, &stream), "create clicks");

    check(jm_engine_grant(e, "app", "orders", "alice"), "grant alice");
    check(jm_engine_grant(e, "app", "orders", "bob"), "grant bob");
    int64_t lq;
    check(jm_engine_add_live_query(e, "bob", "app", "orders", &lq), "live query");

    char doc[128];
    for (int i = 0; i < 500; i++) {
        int64_t key;
        snprintf(doc, sizeof doc, "{\"order\": %d, \"total\": %d.%02d}", i, i * 3, i % 100);
        check(jm_engine_insert(e, "app", "orders", doc, now - 90 * DAY_MS + i, &key), "insert");
        /* A fifth of the orders were deleted two months ago: past retention. */
        if (i % 5 == 0)
            check(jm_engine_soft_delete(e, "app", "orders", key, now - 60 * DAY_MS),
                  "soft delete");
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(doc, sizeof doc, "{\"click\": %d}", i);
        /* Half the clicks are two hours old, past the one-hour TTL. */
        int64_t at = i < 1500 ? now - 2 * HOUR_MS + i : now - 1000 + i % 1000;
        check(jm_engine_insert(e, "app", "clicks", doc, at, NULL), "insert click");
    }
    for (int i = 0; i < 200; i++) {
        snprintf(doc, sizeof doc, "{\"note\": %d}", i);
        check(jm_engine_insert(e, "app", "notes", doc, 0, NULL), "insert note");
        check(jm_engine_insert(e, "app", "scratch", doc, 0, NULL), "insert scratch");
    }
}

/* A table's figures as policies see them, from the engine's host. */
static jm_host_figures figures(jm_engine *e, const char *table)
{
    const jm_host *h = jm_engine_host(e);
    jm_host_figures f;
    check(h->table_figures(h->self, "app", table, now_ms(), JM_POLICY_SMALL_BYTES_DEFAULT, 0, &f),
          "table_figures");
    return f;
}

/* Waits until a job with idempotency key `key` has finished, and returns
 * it (the caller frees it). Policies key their jobs
 * "policy:<kind>:<namespace>.<table>". */
static jm_job *wait_for_policy_job(jm_manager *m, const char *key)
{
    jm_filter f = JM_FILTER_INIT;
    f.idempotency_key = key;
    f.statuses = JM_STATUS_BIT(JM_STATUS_COMPLETED) | JM_STATUS_BIT(JM_STATUS_FAILED) |
                 JM_STATUS_BIT(JM_STATUS_CANCELLED);
    f.limit = 1;
    for (int waited = 0; waited < WAIT_LIMIT_MS; waited += 20) {
        jm_job_list *l = NULL;
        check(jm_list(m, &f, &l), "jm_list");
        if (jm_job_list_count(l) > 0) {
            jm_job *j = NULL;
            check(jm_get(m, jm_job_id(jm_job_list_at(l, 0)), &j), "jm_get");
            jm_job_list_free(l);
            return j;
        }
        jm_job_list_free(l);
        sleep_ms(20);
    }
    fprintf(stderr, "engine_demo: no policy job %s finished within %d ms\n", key, WAIT_LIMIT_MS);
    exit(1);
}

static void print_policy_job(const char *policy, const char *rule, const jm_job *j)
{
    printf("  policy %-12s (%s)\n    created %s: %s, %s\n", policy, rule, jm_job_id(j),
           jm_status_name(jm_job_status(j)), jm_job_message(j) ? jm_job_message(j) : "");
}

/* The final part: rows arrive in app.orders and expired clicks in
 * app.clicks; two policies notice, and the manager's loop, started with
 * cfg.host and a short cfg.policy_interval_ms, creates and runs the jobs.
 * There is no jm_create here. */
static void policy_part(jm_manager *m, jm_engine *e)
{
    int64_t now = now_ms();
    for (int i = 0; i < LATE_ORDERS; i++)
        check(jm_engine_insert(e, "app", "orders", "{\"order\": \"later\"}", 0, NULL),
              "insert");
    for (int i = 0; i < EXPIRED_CLICKS; i++)
        check(jm_engine_insert(e, "app", "clicks", "{\"click\": \"old\"}", now - 2 * HOUR_MS,
                               NULL),
              "insert click");
    jm_host_figures orders = figures(e, "orders"), clicks = figures(e, "clicks");
    printf("\npolicies (evaluated every %d ms by the manager's loop)\n", POLICY_INTERVAL_MS);
    printf("  before: app.orders %lld buffered rows, app.clicks %lld rows past the TTL\n",
           (long long)orders.buffered_rows, (long long)clicks.expired_rows);

    char id[JM_SCHEDULE_ID_SIZE];
    jm_policy_spec flush = JM_POLICY_SPEC_INIT;
    flush.name = "flush-orders";
    flush.kind = JM_POLICY_FLUSH;
    flush.ns = "app";
    flush.table = "orders";
    flush.rows = POLICY_FLUSH_ROWS;
    check(jm_policy_create(m, &flush, id), "jm_policy_create flush");
    jm_policy_spec evict = JM_POLICY_SPEC_INIT;
    evict.name = "evict-clicks";
    evict.kind = JM_POLICY_STREAM_EVICTION;
    evict.ns = "app";
    evict.table = "clicks";
    evict.every_ms = POLICY_EVICT_EVERY_MS;
    check(jm_policy_create(m, &evict, id), "jm_policy_create stream eviction");

    jm_job *flushed = wait_for_policy_job(m, "policy:flush:app.orders");
    jm_job *evicted = wait_for_policy_job(m, "policy:stream_eviction:app.clicks");
    char rule[96];
    snprintf(rule, sizeof rule, "flush app.orders at %d buffered rows", POLICY_FLUSH_ROWS);
    print_policy_job(flush.name, rule, flushed);
    snprintf(rule, sizeof rule, "evict app.clicks past its TTL, at most every %d s",
             POLICY_EVICT_EVERY_MS / 1000);
    print_policy_job(evict.name, rule, evicted);
    jm_job_free(flushed);
    jm_job_free(evicted);
    orders = figures(e, "orders");
    clicks = figures(e, "clicks");
    printf("  after:  app.orders %lld buffered rows, app.clicks %lld rows past the TTL\n",
           (long long)orders.buffered_rows, (long long)clicks.expired_rows);
}

static void print_jobs(jm_manager *m)
{
    jm_filter f = JM_FILTER_INIT;
    f.limit = 50;
    jm_job_list *l = NULL;
    check(jm_list(m, &f, &l), "jm_list");
    printf("\n%-40s  %-10s  %s\n", "job", "status", "message / metrics");
    for (size_t i = 0; i < jm_job_list_count(l); i++) {
        const jm_job *j = jm_job_list_at(l, i);
        printf("%-40s  %-10s  %s\n", jm_job_id(j), jm_status_name(jm_job_status(j)),
               jm_job_message(j) ? jm_job_message(j) : "");
        if (jm_job_result(j))
            printf("%-40s  %-10s  %s\n", "", "", jm_job_result(j));
    }
    jm_job_list_free(l);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "engine_demo_data";
    if (clear_dir(dir) != 0) {
        fprintf(stderr, "engine_demo: cannot clear %s: %s\n", dir, strerror(errno));
        return 1;
    }

    jm_engine *e = NULL;
    check(jm_engine_open(dir, &e), "jm_engine_open");
    int64_t now = now_ms();
    fill(e, now);
    check(jm_engine_soft_delete_user(e, "bob"), "soft delete bob");
    print_counts(e, "before");

    char db[4200], backups[4200], params[8192];
    snprintf(db, sizeof db, "%s/jobs.db", dir);
    char *abs_dir = realpath(dir, NULL);
    if (!abs_dir) {
        perror("realpath");
        return 1;
    }
    snprintf(backups, sizeof backups, "%s/backups", abs_dir);

    jm_config cfg = JM_CONFIG_INIT;
    cfg.db_path = db;
    cfg.host = jm_engine_host(e);
    cfg.backoff_base_ms = 100;
    cfg.policy_interval_ms = POLICY_INTERVAL_MS;
    jm_manager *m = NULL;
    check(jm_open(&cfg, &m), "jm_open");
    check(jm_register_builtin(m), "jm_register_builtin");
    check(jm_start(m, 4), "jm_start");

    char id[JM_JOB_ID_SIZE], backup_id[JM_JOB_ID_SIZE];
    /* Round 1: maintenance that needs nothing else first. */
    create(m, JM_FLUSH, "{\"namespace_id\": \"app\", \"table_name\": \"orders\", "
                        "\"table_type\": \"Shared\"}", id);
    create(m, JM_RETENTION, "{\"namespace_id\": \"app\", \"table_name\": \"orders\", "
                            "\"table_type\": \"Shared\", \"retention_hours\": 720}", id);
    create(m, JM_STREAM_EVICTION, "{\"namespace_id\": \"app\", \"table_name\": \"clicks\", "
                                  "\"table_type\": \"Stream\", \"ttl_seconds\": 3600, "
                                  "\"batch_size\": 1000}", id);
    create(m, JM_USER_CLEANUP, "{\"user_id\": \"bob\", \"username\": \"Bob\", "
                               "\"cascade\": true}", id);
    create(m, JM_FLUSH, "{\"namespace_id\": \"app\", \"table_name\": \"notes\", "
                        "\"table_type\": \"User\"}", id);
    wait_for_jobs(m);

    /* Round 2: more orders arrive and are flushed into a second segment,
     * then compaction merges the two. */
    for (int i = 0; i < 100; i++)
        check(jm_engine_insert(e, "app", "orders", "{\"order\": \"late\"}", 0, NULL), "insert");
    create(m, JM_FLUSH, "{\"namespace_id\": \"app\", \"table_name\": \"orders\", "
                        "\"table_type\": \"Shared\"}", id);
    wait_for_jobs(m);
    create(m, JM_COMPACT, "{\"namespace_id\": \"app\", \"table_name\": \"orders\", "
                          "\"table_type\": \"Shared\", \"target_file_size_mb\": 64}", id);
    wait_for_jobs(m);

    /* Round 3: back the orders up, restore them under a new name, and drop
     * the notes table with a cleanup job. */
    snprintf(params, sizeof params,
             "{\"namespace_id\": \"app\", \"table_name\": \"orders\", \"table_type\": "
             "\"Shared\", \"backup_location\": \"%s\", \"compression\": \"zstd\"}",
             backups);
    create(m, JM_BACKUP, params, backup_id);
    create(m, JM_CLEANUP, "{\"table_id\": \"app:notes\", \"table_type\": \"User\", "
                          "\"operation\": \"drop_table\"}", id);
    wait_for_jobs(m);
    char *path = result_path(m, backup_id);
    snprintf(params, sizeof params,
             "{\"backup_location\": \"%s\", \"target_namespace\": \"app\", "
             "\"target_table_name\": \"orders_restored\", \"overwrite\": false}",
             path);
    create(m, JM_RESTORE, params, id);
    wait_for_jobs(m);
    print_jobs(m);
    print_counts(e, "after");

    policy_part(m, e);
    check(jm_stop(m, 5000), "jm_stop");

    jm_filter failed = JM_FILTER_INIT;
    failed.statuses = JM_STATUS_BIT(JM_STATUS_FAILED) | JM_STATUS_BIT(JM_STATUS_CANCELLED);
    int64_t bad = 0;
    check(jm_count(m, &failed, &bad), "jm_count");
    free(path);
    free(abs_dir);
    jm_close(m);
    jm_engine_close(e);
    if (bad) {
        fprintf(stderr, "engine_demo: %lld job(s) did not complete\n", (long long)bad);
        return 1;
    }
    printf("\nall jobs completed\n");
    return 0;
}
