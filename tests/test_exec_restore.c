/*
 * The restore executor (src/executors/restore.c) on the reference engine:
 * parameter validation; backup -> restore round trips (zstd and none,
 * buffered and flushed rows, soft-deleted rows) compared row by row, key,
 * times and document bytes; an existing target refused without overwrite
 * and replaced with it; and a corrupt, truncated or hostile backup (a
 * flipped byte, a cut file, "../" and absolute names, a symlinked rows
 * file and backup directory, a FIFO, huge sizes, duplicate, extra and
 * missing entries, wrong types, not JSON, a manifest over 1 MiB, a
 * metadata type that does not match) failing with a clear message and
 * changing nothing; a pause between import batches that aborts the import
 * and a next run that imports again, reading the rows file once, every
 * byte charged to the I/O budget. A wrapper host injects JM_EBUSY into
 * import_begin, and cancels the job or asks it to pause between batches.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec_harness.h"
#include "builtin.h"
#include "sha256.h"
#include "jobmgr/engine.h"
#include "test_util.h"

#define NS "app"
#define TABLE "events"
#define ROWS 2500 /* more than one import batch */

/* ---- the wrapper host ---------------------------------------------------- */

static struct {
    const jm_host *inner;
    int busy_import_begin;
    int busy_after_commit; /* > 0: commit, then report JM_EBUSY this often */
    int cancel_after_batches; /* > 0: cancel `job` after this many import_rows */
    int pause_after_batches;  /* > 0: ask the running job to pause after this many */
    xh *x;
    int batches;
    int aborts;
    jm_manager *m;
    char job[JM_JOB_ID_SIZE];
} g;

static int w_import_begin(void *self, const char *ns, const char *table, const char *meta,
                          int overwrite, void **imp)
{
    if (g.busy_import_begin > 0) {
        g.busy_import_begin--;
        return jm_host_error(JM_EBUSY, "injected: import_begin busy");
    }
    return g.inner->import_begin(self, ns, table, meta, overwrite, imp);
}

static int w_import_rows(void *self, void *imp, const jm_host_row *rows, size_t n)
{
    int rc = g.inner->import_rows(self, imp, rows, n);
    if (++g.batches == g.cancel_after_batches)
        assert_int_equal(jm_cancel(g.m, g.job), JM_OK);
    if (g.batches == g.pause_after_batches)
        xh_request_pause(g.x);
    return rc;
}

/* Commits for real, then claims a transient failure: as if the run died
 * after the table became visible and before its outcome was recorded. */
static int w_import_commit(void *self, void *imp)
{
    int rc = g.inner->import_commit(self, imp);
    if (rc == JM_OK && g.busy_after_commit > 0) {
        g.busy_after_commit--;
        return jm_host_error(JM_EBUSY, "injected: busy after the commit");
    }
    return rc;
}

static void w_import_abort(void *self, void *imp)
{
    g.aborts++;
    g.inner->import_abort(self, imp);
}

/* ---- fixture ------------------------------------------------------------- */

typedef struct fx {
    xh x;
    char *edir;
    char *bdir;
    jm_engine *e;
    jm_host host;
    char backup[8192]; /* the last backup's directory */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    memset(&g, 0, sizeof g);
    f->edir = tu_tmpdir();
    f->bdir = tu_tmpdir();
    assert_int_equal(jm_engine_open(f->edir, &f->e), JM_OK);
    g.inner = jm_engine_host(f->e);
    f->host = *g.inner;
    f->host.import_begin = w_import_begin;
    f->host.import_rows = w_import_rows;
    f->host.import_abort = w_import_abort;
    f->host.import_commit = w_import_commit;
    assert_int_equal(xh_open(&f->x, &f->host), JM_OK);
    g.m = f->x.m;
    g.x = &f->x;
    assert_int_equal(jm_register(f->x.m, &jm__backup_executor, NULL), JM_OK);
    assert_int_equal(jm_register(f->x.m, &jm__restore_executor, NULL), JM_OK);
    assert_int_equal(jm_engine_create_namespace(f->e, NS), JM_OK);
    assert_int_equal(jm_engine_create_table(f->e, NS, TABLE, JM_TABLE_SHARED, NULL), JM_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    xh_close(&f->x);
    jm_engine_close(f->e);
    tu_rmdir(f->edir);
    tu_rmdir(f->bdir);
    free(f);
    return 0;
}

/* n rows with documents whose bytes matter (spacing, escapes, UTF-8), the
 * first half flushed to a segment, every seventh soft-deleted. */
static void fill(fx *f, const char *table, int n)
{
    int64_t *keys = calloc((size_t)n, sizeof *keys);
    for (int i = 0; i < n; i++) {
        char doc[256];
        snprintf(doc, sizeof doc,
                 "{ \"i\" : %d,\n\t\"s\":\"q\\\"uote \\\\ h\xc3\xa9llo \\u00e9 \\n\",  \"a\":[1, "
                 "2.50, true, null] }",
                 i);
        assert_int_equal(jm_engine_insert(f->e, NS, table, doc, XH_T0 - XH_HOUR_MS + i * 7,
                                          &keys[i]),
                         JM_OK);
        if (i == n / 2 - 1) {
            jm_host_flush fl;
            assert_int_equal(g.inner->flush(g.inner->self, NS, table, &fl), JM_OK);
            assert_int_equal(fl.rows, n / 2);
        }
    }
    for (int i = 0; i < n; i += 7)
        assert_int_equal(jm_engine_soft_delete(f->e, NS, table, keys[i], XH_T0 - 500 + i), JM_OK);
    free(keys);
}

static void make_backup(fx *f, const char *compression)
{
    char id[JM_JOB_ID_SIZE], p[8192];
    snprintf(p, sizeof p,
             "{\"namespace_id\":\"" NS "\",\"table_name\":\"" TABLE "\",\"table_type\":\"Shared\","
             "\"backup_location\":\"%s\",\"compression\":\"%s\"}",
             f->bdir, compression);
    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, id), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_COMPLETED);
    snprintf(f->backup, sizeof f->backup, "%s/" NS "/" TABLE "/%s", f->bdir, id);
}

static int run_restore(fx *f, const char *location, const char *target, const char *extra,
                       char id[JM_JOB_ID_SIZE])
{
    char p[10000];
    snprintf(p, sizeof p,
             "{\"backup_location\":\"%s\",\"target_namespace\":\"" NS "\","
             "\"target_table_name\":\"%s\"%s}",
             location, target, extra ? extra : "");
    assert_int_equal(xh_create(&f->x, JM_RESTORE, p, id), JM_OK);
    memcpy(g.job, id, JM_JOB_ID_SIZE);
    return xh_run_to_end(&f->x, id, 5, NULL);
}

/* ---- comparing tables ---------------------------------------------------- */

typedef struct rowv {
    int64_t key, created, deleted;
    char *doc;
    size_t len;
} rowv;

typedef struct rowset {
    rowv *v;
    size_t n, cap;
} rowset;

static int collect(void *arg, const jm_host_row *r)
{
    rowset *rs = arg;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 64;
        rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
    }
    rowv *o = &rs->v[rs->n++];
    o->key = r->key;
    o->created = r->created_at;
    o->deleted = r->deleted_at;
    o->len = r->doc_len;
    o->doc = malloc(r->doc_len + 1);
    memcpy(o->doc, r->doc, r->doc_len);
    return 0;
}

static void free_rows(rowset *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->v[i].doc);
    free(rs->v);
}

static void assert_same_rows(fx *f, const char *a, const char *b)
{
    rowset ra = {0}, rb = {0};
    assert_int_equal(jm_engine_scan(f->e, NS, a, 1, collect, &ra), JM_OK);
    assert_int_equal(jm_engine_scan(f->e, NS, b, 1, collect, &rb), JM_OK);
    assert_int_equal(ra.n, rb.n);
    for (size_t i = 0; i < ra.n; i++) {
        assert_int_equal(ra.v[i].key, rb.v[i].key);
        assert_int_equal(ra.v[i].created, rb.v[i].created);
        assert_int_equal(ra.v[i].deleted, rb.v[i].deleted);
        assert_int_equal(ra.v[i].len, rb.v[i].len);
        assert_memory_equal(ra.v[i].doc, rb.v[i].doc, ra.v[i].len);
    }
    free_rows(&ra);
    free_rows(&rb);
}

static int exists(fx *f, const char *table)
{
    int e = -1;
    assert_int_equal(jm_engine_table_exists(f->e, NS, table, &e), JM_OK);
    return e;
}

static void assert_message_has(fx *f, const char *id, const char *needle)
{
    xh_assert_message_has(&f->x, id, needle);
}

/* ---- files of a backup --------------------------------------------------- */

static char *bpath(fx *f, const char *name)
{
    return tu_path(f->backup, name);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const char *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static cJSON *manifest(fx *f)
{
    size_t n;
    char *p = bpath(f, "manifest.json");
    char *text = slurp(p, &n);
    cJSON *m = cJSON_Parse(text);
    assert_non_null(m);
    free(text);
    free(p);
    return m;
}

static void save_manifest(fx *f, cJSON *m)
{
    char *text = cJSON_Print(m);
    char *p = bpath(f, "manifest.json");
    spit(p, text, strlen(text));
    free(p);
    cJSON_free(text);
    cJSON_Delete(m);
}

static cJSON *file_entry(cJSON *m, const char *name)
{
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(m, "files"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring, name) == 0)
            return e;
    }
    return NULL;
}

/* Rewrites a file and fixes its manifest entry, so only deeper checks can
 * catch what is wrong with it. */
static void replace_consistently(fx *f, const char *name, const char *data, size_t n)
{
    char *p = bpath(f, name);
    spit(p, data, n);
    free(p);
    cJSON *m = manifest(f);
    cJSON *e = file_entry(m, name);
    char hex[JM_SHA256_HEX_SIZE];
    jm__sha256_hex(data, n, hex);
    cJSON_ReplaceItemInObjectCaseSensitive(e, "bytes", cJSON_CreateNumber((double)n));
    cJSON_ReplaceItemInObjectCaseSensitive(e, "sha256", cJSON_CreateString(hex));
    save_manifest(f, m);
}

/* ---- tests --------------------------------------------------------------- */

static void validation(void **state)
{
    fx *f = *state;
    xh *x = &f->x;
    const char *t = JM_RESTORE;
    assert_true(xh_rejects(x, t, "{\"target_namespace\":\"a\",\"target_table_name\":\"b\"}",
                           "backup_location"));
    assert_true(xh_rejects(x, t, "{\"backup_location\":[],\"target_namespace\":\"a\","
                                 "\"target_table_name\":\"b\"}",
                           "backup_location"));
    assert_true(xh_rejects(x, t, "{\"backup_location\":\"s3://backups/kalamdb/x.zst\","
                                 "\"target_namespace\":\"a\",\"target_table_name\":\"b\"}",
                           "only local directories are supported: s3 is not"));
    assert_true(xh_rejects(x, t, "{\"backup_location\":\"x/y\",\"target_namespace\":\"a\","
                                 "\"target_table_name\":\"b\"}",
                           "absolute"));
    assert_true(xh_rejects(x, t, "{\"backup_location\":\"/x/../y\",\"target_namespace\":\"a\","
                                 "\"target_table_name\":\"b\"}",
                           ".."));
    assert_true(xh_rejects(x, t, "{\"backup_location\":\"/x\",\"target_table_name\":\"b\"}",
                           "target_namespace"));
    assert_true(xh_rejects(x, t, "{\"backup_location\":\"/x\",\"target_namespace\":\"a b\","
                                 "\"target_table_name\":\"b\"}",
                           "target_namespace"));
    assert_true(xh_rejects(x, t, "{\"backup_location\":\"/x\",\"target_namespace\":\"a\"}",
                           "target_table_name"));
    assert_true(xh_rejects(x, t, "{\"backup_location\":\"/x\",\"target_namespace\":\"a\","
                                 "\"target_table_name\":false}",
                           "target_table_name"));
    assert_true(xh_rejects(x, t, "{\"backup_location\":\"/x\",\"target_namespace\":\"a\","
                                 "\"target_table_name\":\"b\",\"overwrite\":\"yes\"}",
                           "overwrite"));
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(x, t, "{\"backup_location\":\"/x\",\"target_namespace\":\"a\","
                                    "\"target_table_name\":\"b\"}",
                               id),
                     JM_OK);
}

static void round_trip(fx *f, const char *compression)
{
    fill(f, TABLE, ROWS);
    make_backup(f, compression);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(run_restore(f, f->backup, "copy", NULL, id), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, id, "rows_restored"), ROWS);
    assert_same_rows(f, TABLE, "copy");
    int64_t n = 0;
    assert_int_equal(jm_engine_count(f->e, NS, "copy", 1, &n), JM_OK);
    assert_int_equal(n, ROWS);
    assert_int_equal(jm_engine_count(f->e, NS, "copy", 0, &n), JM_OK);
    assert_int_equal(n, ROWS - (ROWS + 6) / 7);
    assert_int_equal(g.aborts, 0);
}

static void round_trip_zstd(void **state)
{
    round_trip(*state, "zstd");
}

static void round_trip_none(void **state)
{
    round_trip(*state, "none");
}

static int64_t normal_bytes(fx *f)
{
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->x.m, &r), JM_OK);
    int64_t n = r->throttle_bytes[JM_CLASS_NORMAL];
    jm_stats_free(r);
    return n;
}

static int64_t backup_file_size(fx *f, const char *name)
{
    char *p = bpath(f, name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    free(p);
    return (int64_t)st.st_size;
}

/* Paused between import batches: the import is aborted and nothing shows;
 * the next run imports from the first row, reading the rows file once (it
 * was verified before the pause). */
static void pause_between_batches_starts_the_import_over(void **state)
{
    fx *f = *state;
    fill(f, TABLE, ROWS);
    make_backup(f, "zstd");
    char id[JM_JOB_ID_SIZE], p[10000];
    snprintf(p, sizeof p,
             "{\"backup_location\":\"%s\",\"target_namespace\":\"" NS "\","
             "\"target_table_name\":\"copy\"}",
             f->backup);
    assert_int_equal(xh_create(&f->x, JM_RESTORE, p, id), JM_OK);
    g.pause_after_batches = 1;
    assert_int_equal(xh_run1(&f->x, id), JM_STATUS_QUEUED);
    assert_message_has(f, id, "paused after staging 1000 of 2500 rows");
    assert_int_equal(g.aborts, 1);
    assert_int_equal(exists(f, "copy"), 0);
    assert_int_equal(xh_checkpoint_int(&f->x, id, "paused_at_rows"), 1000);

    int64_t before = normal_bytes(f);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, id, "rows_restored"), ROWS);
    assert_same_rows(f, TABLE, "copy");
    assert_int_equal(g.aborts, 1);
    /* The manifest, meta.json and the rows file read once; every document
     * handed to the host. */
    rowset rs = {0};
    assert_int_equal(jm_engine_scan(f->e, NS, TABLE, 1, collect, &rs), JM_OK);
    int64_t docs = 0;
    for (size_t i = 0; i < rs.n; i++)
        docs += (int64_t)rs.v[i].len;
    free_rows(&rs);
    int64_t files = backup_file_size(f, "manifest.json") + backup_file_size(f, "meta.json") +
                    backup_file_size(f, "rows.jsonl.zst");
    assert_int_equal(normal_bytes(f) - before, files + docs);
}

static void existing_target_needs_overwrite(void **state)
{
    fx *f = *state;
    fill(f, TABLE, 40);
    make_backup(f, "zstd");
    assert_int_equal(jm_engine_create_table(f->e, NS, "other", JM_TABLE_SHARED, NULL), JM_OK);
    fill(f, "other", 10);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(run_restore(f, f->backup, "other", NULL, id), JM_STATUS_FAILED);
    assert_message_has(f, id, "exists; set overwrite");
    int64_t n = 0;
    assert_int_equal(jm_engine_count(f->e, NS, "other", 1, &n), JM_OK);
    assert_int_equal(n, 10); /* unchanged */
    assert_int_equal(run_restore(f, f->backup, "other", ",\"overwrite\":true", id),
                     JM_STATUS_COMPLETED);
    assert_same_rows(f, TABLE, "other");
}

/* A corrupt or hostile backup fails with `needle` in the message, and an
 * existing target stays as it was. */
static void expect_refused(fx *f, const char *location, const char *needle)
{
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(run_restore(f, location ? location : f->backup, "copy", NULL, id),
                     JM_STATUS_FAILED);
    assert_message_has(f, id, needle);
    assert_int_equal(exists(f, "copy"), 0);
    /* Over an existing table: still nothing changes. */
    int64_t before = 0, after = 0;
    assert_int_equal(jm_engine_count(f->e, NS, TABLE, 1, &before), JM_OK);
    assert_int_equal(run_restore(f, location ? location : f->backup, TABLE,
                                 ",\"overwrite\":true", id),
                     JM_STATUS_FAILED);
    assert_int_equal(jm_engine_count(f->e, NS, TABLE, 1, &after), JM_OK);
    assert_int_equal(before, after);
}

static void flipped_byte_checksum_mismatch(void **state)
{
    fx *f = *state;
    const char *comps[] = {"zstd", "none"};
    const char *files[] = {"rows.jsonl.zst", "rows.jsonl"};
    fill(f, TABLE, 100);
    for (int c = 0; c < 2; c++) {
        make_backup(f, comps[c]);
        size_t n;
        char *p = bpath(f, files[c]);
        char *data = slurp(p, &n);
        data[n / 2] ^= 0x20;
        spit(p, data, n);
        char expect[64];
        snprintf(expect, sizeof expect, "checksum mismatch for %s", files[c]);
        expect_refused(f, NULL, expect);
        free(data);
        free(p);
    }
    /* The metadata is checked too. */
    make_backup(f, "none");
    size_t n;
    char *p = bpath(f, "meta.json");
    char *data = slurp(p, &n);
    data[1] = ' ';
    spit(p, data, n);
    expect_refused(f, NULL, "checksum mismatch for meta.json");
    free(data);
    free(p);
}

static void truncated_backups(void **state)
{
    fx *f = *state;
    fill(f, TABLE, 100);
    make_backup(f, "zstd");
    char *p = bpath(f, "rows.jsonl.zst");
    size_t n;
    char *data = slurp(p, &n);
    assert_int_equal(truncate(p, (off_t)(n - 10)), 0);
    expect_refused(f, NULL, "truncated");
    /* Cut, with the manifest made to agree: zstd notices the frame is
     * incomplete. */
    replace_consistently(f, "rows.jsonl.zst", data, n - 10);
    expect_refused(f, NULL, "truncated");
    free(data);
    free(p);

    make_backup(f, "none");
    p = bpath(f, "rows.jsonl");
    data = slurp(p, &n);
    /* Cut in the middle of the last line. */
    replace_consistently(f, "rows.jsonl", data, n - 5);
    expect_refused(f, NULL, "truncated");
    /* Whole lines dropped: the row count says so. */
    char *last = memrchr(data, '\n', n - 1);
    replace_consistently(f, "rows.jsonl", data, (size_t)(last - data) + 1);
    expect_refused(f, NULL, "row count mismatch");
    free(data);
    free(p);
}

static void bad_rows_refused(void **state)
{
    fx *f = *state;
    fill(f, TABLE, 30);
    make_backup(f, "none");
    const char *bad[] = {
        /* keys not increasing */
        "{\"key\":5,\"created_at\":1,\"deleted_at\":0,\"doc\":\"{}\"}\n"
        "{\"key\":5,\"created_at\":1,\"deleted_at\":0,\"doc\":\"{}\"}\n",
        /* a wrong type */
        "{\"key\":\"5\",\"created_at\":1,\"deleted_at\":0,\"doc\":\"{}\"}\n",
        /* an extra field */
        "{\"key\":5,\"created_at\":1,\"deleted_at\":0,\"doc\":\"{}\",\"x\":1}\n",
        /* more rows than the manifest's count */
        NULL,
    };
    const char *needles[] = {"does not follow", "integers", "unknown field", "more rows"};
    for (int i = 0; i < 4; i++) {
        cJSON *m = manifest(f);
        cJSON_ReplaceItemInObjectCaseSensitive(m, "row_count", cJSON_CreateNumber(bad[i] ? 2 : 1));
        save_manifest(f, m);
        const char *text = bad[i] ? bad[i]
                                  : "{\"key\":1,\"created_at\":1,\"deleted_at\":0,\"doc\":\"{}\"}\n"
                                    "{\"key\":2,\"created_at\":1,\"deleted_at\":0,\"doc\":\"{}\"}\n";
        replace_consistently(f, "rows.jsonl", text, strlen(text));
        expect_refused(f, NULL, needles[i]);
    }
    /* A line longer than the limit, without a newline in sight. */
    size_t big = 4 * 1024 * 1024 + 10;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    replace_consistently(f, "rows.jsonl", huge, big);
    expect_refused(f, NULL, "longer than");
    free(huge);
}

static void set_entry(fx *f, const char *name, const char *field, cJSON *value)
{
    cJSON *m = manifest(f);
    cJSON_ReplaceItemInObjectCaseSensitive(file_entry(m, name), field, value);
    save_manifest(f, m);
}

static void hostile_manifests(void **state)
{
    fx *f = *state;
    fill(f, TABLE, 20);

    make_backup(f, "none");
    set_entry(f, "rows.jsonl", "name", cJSON_CreateString("../rows.jsonl"));
    expect_refused(f, NULL, "name");

    make_backup(f, "none");
    set_entry(f, "rows.jsonl", "name", cJSON_CreateString("/etc/passwd"));
    expect_refused(f, NULL, "name");

    make_backup(f, "none");
    set_entry(f, "rows.jsonl", "bytes", cJSON_CreateNumber(1e18));
    expect_refused(f, NULL, "bytes");

    make_backup(f, "none");
    set_entry(f, "rows.jsonl", "bytes", cJSON_CreateString("12"));
    expect_refused(f, NULL, "bytes");

    make_backup(f, "none");
    {
        cJSON *m = manifest(f);
        cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files");
        cJSON_AddItemToArray(files, cJSON_Duplicate(file_entry(m, "rows.jsonl"), 1));
        save_manifest(f, m);
    }
    expect_refused(f, NULL, "twice");

    make_backup(f, "none");
    {
        cJSON *m = manifest(f);
        cJSON *extra = cJSON_Duplicate(file_entry(m, "meta.json"), 1);
        cJSON_ReplaceItemInObjectCaseSensitive(extra, "name", cJSON_CreateString("extra.bin"));
        cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(m, "files"), extra);
        save_manifest(f, m);
    }
    expect_refused(f, NULL, "extra.bin");

    make_backup(f, "none");
    {
        cJSON *m = manifest(f);
        cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files");
        for (int i = cJSON_GetArraySize(files) - 1; i >= 0; i--)
            if (strcmp(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(files, i), "name")
                           ->valuestring,
                       "rows.jsonl") == 0)
                cJSON_DeleteItemFromArray(files, i);
        save_manifest(f, m);
    }
    expect_refused(f, NULL, "missing");

    make_backup(f, "none");
    {
        cJSON *m = manifest(f);
        cJSON_ReplaceItemInObjectCaseSensitive(m, "row_count", cJSON_CreateString("20"));
        save_manifest(f, m);
    }
    expect_refused(f, NULL, "row_count");

    make_backup(f, "none");
    {
        cJSON *m = manifest(f);
        cJSON_ReplaceItemInObjectCaseSensitive(m, "format_version", cJSON_CreateNumber(2));
        save_manifest(f, m);
    }
    expect_refused(f, NULL, "format_version");

    make_backup(f, "none");
    {
        char *p = bpath(f, "manifest.json");
        spit(p, "this is not json", 16);
        free(p);
    }
    expect_refused(f, NULL, "not a JSON object");

    make_backup(f, "none");
    {
        size_t n;
        char *p = bpath(f, "manifest.json");
        char *text = slurp(p, &n);
        size_t big = 1024 * 1024 + 1;
        char *padded = malloc(big);
        memset(padded, ' ', big);
        memcpy(padded, text, n);
        spit(p, padded, big);
        free(padded);
        free(text);
        free(p);
    }
    expect_refused(f, NULL, "larger than");

    /* Schema compatibility: the metadata's type must be the manifest's. */
    make_backup(f, "none");
    {
        cJSON *m = manifest(f);
        cJSON_ReplaceItemInObjectCaseSensitive(m, "table_type", cJSON_CreateString("Stream"));
        save_manifest(f, m);
    }
    expect_refused(f, NULL, "does not match");

    /* No manifest at all: an interrupted backup. */
    make_backup(f, "none");
    {
        char *p = bpath(f, "manifest.json");
        assert_int_equal(unlink(p), 0);
        free(p);
    }
    expect_refused(f, NULL, "manifest.json");
}

static void links_and_special_files_refused(void **state)
{
    fx *f = *state;
    fill(f, TABLE, 20);

    /* The rows file replaced by a link to an identical copy elsewhere. */
    make_backup(f, "none");
    char *rows = bpath(f, "rows.jsonl");
    char *copy = tu_path(f->bdir, "outside.jsonl");
    size_t n;
    char *data = slurp(rows, &n);
    spit(copy, data, n);
    assert_int_equal(unlink(rows), 0);
    assert_int_equal(symlink(copy, rows), 0);
    expect_refused(f, NULL, "links are not followed");
    free(data);
    free(copy);
    free(rows);

    /* The manifest as a link. */
    make_backup(f, "none");
    char *man = bpath(f, "manifest.json");
    char *mcopy = tu_path(f->bdir, "outside.json");
    data = slurp(man, &n);
    spit(mcopy, data, n);
    assert_int_equal(unlink(man), 0);
    assert_int_equal(symlink(mcopy, man), 0);
    expect_refused(f, NULL, "manifest.json");
    free(data);
    free(mcopy);
    free(man);

    /* The backup directory itself as a link to a good backup. */
    make_backup(f, "none");
    char *link = tu_path(f->bdir, "link-to-backup");
    assert_int_equal(symlink(f->backup, link), 0);
    expect_refused(f, link, "links are not followed");
    free(link);

    /* A FIFO in place of the rows file: never opened for a blocking read. */
    make_backup(f, "none");
    rows = bpath(f, "rows.jsonl");
    assert_int_equal(unlink(rows), 0);
    assert_int_equal(mkfifo(rows, 0600), 0);
    expect_refused(f, NULL, "not a regular file");
    free(rows);

    /* Not there at all. */
    char *gone = tu_path(f->bdir, "no-such-backup");
    expect_refused(f, gone, "cannot open");
    free(gone);
}

static void busy_import_retries(void **state)
{
    fx *f = *state;
    fill(f, TABLE, 50);
    make_backup(f, "zstd");
    g.busy_import_begin = 1;
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(run_restore(f, f->backup, "copy", NULL, id), JM_STATUS_COMPLETED);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->x.m, id, &j), JM_OK);
    assert_int_equal(jm_job_retry_count(j), 1);
    jm_job_free(j);
    assert_same_rows(f, TABLE, "copy");
}

/* A run whose import committed but whose outcome was lost runs again: the
 * checkpoint taken before the commit makes the existing target count as
 * done instead of a conflict. */
static void rerun_after_commit_completes(void **state)
{
    fx *f = *state;
    fill(f, TABLE, 50);
    make_backup(f, "zstd");
    g.busy_after_commit = 1;
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(run_restore(f, f->backup, "copy", NULL, id), JM_STATUS_COMPLETED);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->x.m, id, &j), JM_OK);
    assert_int_equal(jm_job_retry_count(j), 1);
    assert_non_null(strstr(jm_job_message(j), "committed by an earlier run"));
    assert_non_null(strstr(jm_job_result(j), "\"rows_restored\":50"));
    jm_job_free(j);
    assert_same_rows(f, TABLE, "copy");
}

static void cancel_between_batches(void **state)
{
    fx *f = *state;
    fill(f, TABLE, ROWS);
    make_backup(f, "zstd");
    g.cancel_after_batches = 1;
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(run_restore(f, f->backup, "copy", NULL, id), JM_STATUS_CANCELLED);
    assert_int_equal(g.batches, 1);
    assert_int_equal(g.aborts, 1);
    assert_int_equal(exists(f, "copy"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(validation, setup, teardown),
        cmocka_unit_test_setup_teardown(round_trip_zstd, setup, teardown),
        cmocka_unit_test_setup_teardown(round_trip_none, setup, teardown),
        cmocka_unit_test_setup_teardown(existing_target_needs_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(pause_between_batches_starts_the_import_over, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(flipped_byte_checksum_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(truncated_backups, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_rows_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_manifests, setup, teardown),
        cmocka_unit_test_setup_teardown(links_and_special_files_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_import_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(rerun_after_commit_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_between_batches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
