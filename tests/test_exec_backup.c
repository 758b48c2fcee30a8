/*
 * The backup executor (src/executors/backup.c) on the reference engine:
 * parameter validation (every field missing or of the wrong type, URLs
 * refused with a clear message, relative paths and ".." refused); a backup
 * of buffered and flushed rows with its files, manifest and metrics; a
 * retried run that starts over from a stale temporary directory; a missing
 * table and a type mismatch; JM_EBUSY from the host turned into a retry;
 * an unwritable location failing with the errno text; a cancel from
 * inside the export that leaves nothing behind; a backup paused mid-way
 * (also with its files damaged meanwhile) whose next run writes exactly
 * the bytes of an uninterrupted backup, which restores; and every byte it
 * reads and writes charged to the I/O budget.
 *
 * A wrapper host delegates every operation to the engine's and injects
 * JM_EBUSY, a cancel or a pause request where a test asks. The pause
 * request is the flag the manager sets on a running job's context when
 * its pause is asked for (xh_request_pause).
 */
#define _GNU_SOURCE
#include <dirent.h>
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
#include "backup_format.h"
#include "builtin.h"
#include "sha256.h"
#include "jobmgr/engine.h"
#include "test_util.h"

#define NS "app"
#define TABLE "events"

/* ---- the wrapper host ---------------------------------------------------- */

static struct {
    const jm_host *inner;
    int busy_table_info; /* fail this many table_info calls with JM_EBUSY */
    int busy_export;
    int64_t cancel_at_rows; /* > 0: cancel `job` once this many rows were exported */
    int64_t pause_at_rows;  /* > 0: ask the running job to pause at this many, once */
    xh *x;
    jm_manager *m;
    char job[JM_JOB_ID_SIZE];
    int64_t exported;
    const jm_host_export_cb *cb;
} g;

static int w_table_info(void *self, const char *ns, const char *table, jm_host_table *out)
{
    if (g.busy_table_info > 0) {
        g.busy_table_info--;
        return jm_host_error(JM_EBUSY, "injected: table_info busy");
    }
    return g.inner->table_info(self, ns, table, out);
}

static int w_meta(void *arg, const char *meta)
{
    (void)arg;
    return g.cb->meta(g.cb->arg, meta);
}

static int w_rows(void *arg, const jm_host_row *rows, size_t n)
{
    (void)arg;
    g.exported += (int64_t)n;
    if (g.cancel_at_rows > 0 && g.exported >= g.cancel_at_rows)
        assert_int_equal(jm_cancel(g.m, g.job), JM_OK);
    if (g.pause_at_rows > 0 && g.exported >= g.pause_at_rows) {
        g.pause_at_rows = 0;
        xh_request_pause(g.x);
    }
    return g.cb->rows(g.cb->arg, rows, n);
}

static int w_export(void *self, const char *ns, const char *table, const jm_host_export_cb *cb)
{
    if (g.busy_export > 0) {
        g.busy_export--;
        return jm_host_error(JM_EBUSY, "injected: export busy");
    }
    jm_host_export_cb mine = {w_meta, w_rows, NULL};
    g.cb = cb;
    return g.inner->export_table(self, ns, table, &mine);
}

/* ---- fixture ------------------------------------------------------------- */

typedef struct fx {
    xh x;
    char *edir;
    char *bdir; /* backup location */
    jm_engine *e;
    jm_host host;
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
    f->host.table_info = w_table_info;
    f->host.export_table = w_export;
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
    /* The backup may hold 0700 directories we made: still ours to remove. */
    tu_rmdir(f->bdir);
    free(f);
    return 0;
}

/* n rows, the first half flushed to a segment, every fifth soft-deleted. */
static void fill(fx *f, int n)
{
    int64_t *keys = calloc((size_t)n, sizeof *keys);
    for (int i = 0; i < n; i++) {
        char doc[128];
        snprintf(doc, sizeof doc, "{\"i\":%d, \"s\":\"q\\\"uote\\\\ \\u00e9\"}", i);
        assert_int_equal(
            jm_engine_insert(f->e, NS, TABLE, doc, XH_T0 - XH_HOUR_MS + i, &keys[i]), JM_OK);
        if (i == n / 2 - 1) {
            jm_host_flush fl;
            assert_int_equal(g.inner->flush(g.inner->self, NS, TABLE, &fl), JM_OK);
        }
    }
    for (int i = 0; i < n; i += 5)
        assert_int_equal(jm_engine_soft_delete(f->e, NS, TABLE, keys[i], XH_T0 - 1000), JM_OK);
    free(keys);
}

/* n rows of about 1 KiB each, the first half flushed; returns the bytes of
 * their documents. */
static int64_t fill_big(fx *f, int n)
{
    int64_t total = 0;
    char doc[1200];
    for (int i = 0; i < n; i++) {
        int len = snprintf(doc, sizeof doc, "{\"i\":%d,\"pad\":\"", i);
        for (int k = 0; k < 1000; k++)
            doc[len++] = (char)('a' + (i * 7 + k * k) % 26);
        len += snprintf(doc + len, sizeof doc - (size_t)len, "\"}");
        total += len;
        int64_t key;
        assert_int_equal(jm_engine_insert(f->e, NS, TABLE, doc, XH_T0 - XH_HOUR_MS + i, &key),
                         JM_OK);
        if (i == n / 2 - 1) {
            jm_host_flush fl;
            assert_int_equal(g.inner->flush(g.inner->self, NS, TABLE, &fl), JM_OK);
        }
    }
    return total;
}

static char *params(const fx *f, const char *compression)
{
    char *p = malloc(8192);
    snprintf(p, 8192,
             "{\"namespace_id\":\"" NS "\",\"table_name\":\"" TABLE "\",\"table_type\":\"Shared\","
             "\"backup_location\":\"%s/backups\",\"compression\":\"%s\"}",
             f->bdir, compression);
    return p;
}

static char *result_string(fx *f, const char *id, const char *field)
{
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->x.m, id, &j), JM_OK);
    cJSON *v = cJSON_Parse(jm_job_result(j) ? jm_job_result(j) : "{}");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, field);
    char *out = cJSON_IsString(s) ? strdup(s->valuestring) : NULL;
    cJSON_Delete(v);
    jm_job_free(j);
    return out;
}

/* Entries of a directory other than . and .. (-1 if it cannot be read). */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
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

static void assert_message_has(fx *f, const char *id, const char *needle)
{
    xh_assert_message_has(&f->x, id, needle);
}

/* ---- tests --------------------------------------------------------------- */

static void validation(void **state)
{
    fx *f = *state;
    xh *x = &f->x;
    const char *t = JM_BACKUP;
#define BASE "\"namespace_id\":\"a\",\"table_name\":\"b\",\"table_type\":\"User\""
    assert_true(xh_rejects(x, t, "{\"table_name\":\"b\",\"table_type\":\"User\","
                                 "\"backup_location\":\"/x\",\"compression\":\"zstd\"}",
                           "namespace_id"));
    assert_true(xh_rejects(x, t, "{\"namespace_id\":7,\"table_name\":\"b\",\"table_type\":\"User\","
                                 "\"backup_location\":\"/x\",\"compression\":\"zstd\"}",
                           "namespace_id"));
    assert_true(xh_rejects(x, t, "{\"namespace_id\":\"a\",\"table_type\":\"User\","
                                 "\"backup_location\":\"/x\",\"compression\":\"zstd\"}",
                           "table_name"));
    assert_true(xh_rejects(x, t, "{\"namespace_id\":\"a\",\"table_name\":\"../b\","
                                 "\"table_type\":\"User\",\"backup_location\":\"/x\","
                                 "\"compression\":\"zstd\"}",
                           "table_name"));
    assert_true(xh_rejects(x, t, "{\"namespace_id\":\"a\",\"table_name\":\"b\","
                                 "\"backup_location\":\"/x\",\"compression\":\"zstd\"}",
                           "table_type"));
    assert_true(xh_rejects(x, t, "{\"namespace_id\":\"a\",\"table_name\":\"b\",\"table_type\":"
                                 "\"Temp\",\"backup_location\":\"/x\",\"compression\":\"zstd\"}",
                           "table_type"));
    assert_true(xh_rejects(x, t, "{" BASE ",\"compression\":\"zstd\"}", "backup_location"));
    assert_true(
        xh_rejects(x, t, "{" BASE ",\"backup_location\":5,\"compression\":\"zstd\"}",
                   "backup_location"));
    assert_true(xh_rejects(x, t, "{" BASE ",\"backup_location\":\"relative/dir\","
                                 "\"compression\":\"zstd\"}",
                           "absolute"));
    assert_true(xh_rejects(x, t, "{" BASE ",\"backup_location\":\"/a/../etc\","
                                 "\"compression\":\"zstd\"}",
                           ".."));
    assert_true(xh_rejects(x, t, "{" BASE ",\"backup_location\":\"/a/..\","
                                 "\"compression\":\"zstd\"}",
                           ".."));
    assert_true(xh_rejects(x, t, "{" BASE ",\"backup_location\":\"/x\"}", "compression"));
    assert_true(xh_rejects(x, t, "{" BASE ",\"backup_location\":\"/x\",\"compression\":true}",
                           "compression"));
    assert_true(xh_rejects(x, t, "{" BASE ",\"backup_location\":\"/x\",\"compression\":\"gzip\"}",
                           "compression"));
    /* Other schemes: refused with a message that says so. */
    assert_true(xh_rejects(x, t, "{" BASE ",\"backup_location\":\"s3://backups/kalamdb/\","
                                 "\"compression\":\"zstd\"}",
                           "only local directories are supported: s3 is not"));
    assert_true(xh_rejects(x, t, "{" BASE ",\"backup_location\":\"http://host/x\","
                                 "\"compression\":\"none\"}",
                           "http is not"));
    /* Too long a path. */
    char *p = malloc(6000);
    int n = snprintf(p, 6000, "{" BASE ",\"compression\":\"none\",\"backup_location\":\"/");
    memset(p + n, 'a', 4200);
    strcpy(p + n + 4200, "\"}");
    assert_true(xh_rejects(x, t, p, "backup_location"));
    free(p);
    /* ".." inside a name is fine; it is not a component. */
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(x, t, "{" BASE ",\"backup_location\":\"/a/b..c/..d\","
                                    "\"compression\":\"none\"}",
                               id),
                     JM_OK);
#undef BASE
}

static void check_backup_dir(const char *path, const char *rows_name, int64_t rows)
{
    assert_int_equal(entries(path), 3);
    char *mpath = tu_path(path, "manifest.json");
    size_t len = 0;
    char *text = slurp(mpath, &len);
    assert_non_null(text);
    jm__manifest *m = NULL;
    char err[256] = "";
    assert_int_equal(jm__manifest_parse(text, len, &m, err, sizeof err), JM_OK);
    assert_int_equal(m->row_count, rows);
    assert_string_equal(m->ns, NS);
    assert_string_equal(m->table, TABLE);
    assert_int_equal(m->table_type, JM_TABLE_SHARED);
    assert_int_equal(m->created_at, XH_T0);
    /* Every file's size and checksum as the manifest says. */
    for (size_t i = 0; i < m->nfiles; i++) {
        char *fp = tu_path(path, m->files[i].name);
        size_t n = 0;
        char *data = slurp(fp, &n);
        assert_non_null(data);
        assert_int_equal((int64_t)n, m->files[i].bytes);
        char hex[JM_SHA256_HEX_SIZE];
        jm__sha256_hex(data, n, hex);
        assert_string_equal(hex, m->files[i].sha256);
        free(data);
        free(fp);
    }
    assert_non_null(jm__manifest_find(m, rows_name));
    jm__manifest_free(m);
    free(text);
    free(mpath);
}

static void backup_writes_files_and_metrics(void **state)
{
    fx *f = *state;
    fill(f, 300);
    const char *comps[] = {"zstd", "none"};
    for (int c = 0; c < 2; c++) {
        char id[JM_JOB_ID_SIZE];
        char *p = params(f, comps[c]);
        assert_int_equal(xh_create(&f->x, JM_BACKUP, p, id), JM_OK);
        free(p);
        assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_COMPLETED);
        assert_int_equal(xh_metric(&f->x, id, "rows"), 300);
        assert_int_equal(xh_metric(&f->x, id, "files"), 3);
        char *path = result_string(f, id, "path");
        assert_non_null(path);
        char expect[8192];
        snprintf(expect, sizeof expect, "%s/backups/" NS "/" TABLE "/%s", f->bdir, id);
        assert_string_equal(path, expect);
        check_backup_dir(path, c == 0 ? "rows.jsonl.zst" : "rows.jsonl", 300);
        /* bytes_written is the three files' sizes. */
        int64_t total = 0;
        const char *names[] = {"manifest.json", "meta.json", c == 0 ? "rows.jsonl.zst" : "rows.jsonl"};
        for (int i = 0; i < 3; i++) {
            char *fp = tu_path(path, names[i]);
            struct stat st;
            assert_int_equal(stat(fp, &st), 0);
            assert_int_equal(st.st_mode & 0777, 0600);
            total += st.st_size;
            free(fp);
        }
        assert_int_equal(xh_metric(&f->x, id, "bytes_written"), total);
        free(path);
    }
    /* Two backups side by side; no temporary directory left. */
    char tdir[8192];
    snprintf(tdir, sizeof tdir, "%s/backups/" NS "/" TABLE, f->bdir);
    assert_int_equal(entries(tdir), 2);
}

static void empty_table(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    char *p = params(f, "zstd");
    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, id), JM_OK);
    free(p);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, id, "rows"), 0);
    char *path = result_string(f, id, "path");
    check_backup_dir(path, "rows.jsonl.zst", 0);
    free(path);
}

/* A crashed run left .<id>.tmp behind: the next run removes it and starts
 * over. */
static void stale_tmp_dir_replaced(void **state)
{
    fx *f = *state;
    fill(f, 20);
    char id[JM_JOB_ID_SIZE];
    char *p = params(f, "none");
    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, id), JM_OK);
    free(p);
    char tmp[8192], junk[8300];
    snprintf(tmp, sizeof tmp, "%s/backups/" NS "/" TABLE "/.%s.tmp", f->bdir, id);
    char *dir = malloc(8192);
    snprintf(dir, 8192, "%s/backups", f->bdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(dir, 8192, "%s/backups/" NS, f->bdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(dir, 8192, "%s/backups/" NS "/" TABLE, f->bdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkdir(tmp, 0700), 0);
    snprintf(junk, sizeof junk, "%s/rows.jsonl", tmp);
    FILE *fp = fopen(junk, "w");
    fputs("half a row", fp);
    fclose(fp);
    snprintf(junk, sizeof junk, "%s/sub", tmp);
    assert_int_equal(mkdir(junk, 0700), 0);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(entries(dir), 1); /* only the final directory */
    char *path = result_string(f, id, "path");
    check_backup_dir(path, "rows.jsonl", 20);
    free(path);
    free(dir);
}

static void missing_table_and_type_mismatch(void **state)
{
    fx *f = *state;
    char id[JM_JOB_ID_SIZE];
    char p[8192];
    snprintf(p, sizeof p,
             "{\"namespace_id\":\"" NS "\",\"table_name\":\"nope\",\"table_type\":\"Shared\","
             "\"backup_location\":\"%s\",\"compression\":\"none\"}",
             f->bdir);
    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, id), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_FAILED);
    assert_message_has(f, id, "does not exist");
    snprintf(p, sizeof p,
             "{\"namespace_id\":\"" NS "\",\"table_name\":\"" TABLE "\",\"table_type\":\"Stream\","
             "\"backup_location\":\"%s\",\"compression\":\"none\"}",
             f->bdir);
    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, id), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_FAILED);
    assert_message_has(f, id, "Shared");
    assert_int_equal(entries(f->bdir), 0); /* nothing was created */
}

static void busy_host_retries(void **state)
{
    fx *f = *state;
    fill(f, 10);
    char id[JM_JOB_ID_SIZE];
    char *p = params(f, "zstd");
    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, id), JM_OK);
    free(p);
    g.busy_table_info = 1;
    g.busy_export = 1;
    assert_int_equal(xh_run1(&f->x, id), JM_STATUS_RETRYING);
    assert_int_equal(xh_run_to_end(&f->x, id, 1, NULL), JM_STATUS_RETRYING);
    assert_int_equal(xh_run_to_end(&f->x, id, 1, NULL), JM_STATUS_COMPLETED);
    jm_job *j = NULL;
    assert_int_equal(jm_get(f->x.m, id, &j), JM_OK);
    assert_int_equal(jm_job_retry_count(j), 2);
    jm_job_free(j);
    assert_int_equal(xh_metric(&f->x, id, "rows"), 10);
    /* The busy export's temporary directory is gone. */
    char dir[8192];
    snprintf(dir, sizeof dir, "%s/backups/" NS "/" TABLE, f->bdir);
    assert_int_equal(entries(dir), 1);
}

static void unwritable_location_fails_with_errno_text(void **state)
{
    fx *f = *state;
    fill(f, 5);
    /* A file where a directory should be. */
    char *file = tu_path(f->bdir, "backups");
    FILE *fp = fopen(file, "w");
    fclose(fp);
    char id[JM_JOB_ID_SIZE];
    char *p = params(f, "none");
    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, id), JM_OK);
    free(p);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_FAILED);
    assert_message_has(f, id, "Not a directory");
    free(file);
}

static void cancel_mid_export_leaves_nothing(void **state)
{
    fx *f = *state;
    fill(f, 3000);
    char id[JM_JOB_ID_SIZE];
    char *p = params(f, "zstd");
    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, id), JM_OK);
    free(p);
    memcpy(g.job, id, sizeof g.job);
    g.cancel_at_rows = 1;
    assert_int_equal(xh_run1(&f->x, id), JM_STATUS_CANCELLED);
    assert_true(g.exported < 3000); /* it stopped mid-way */
    char dir[8192];
    snprintf(dir, sizeof dir, "%s/backups/" NS "/" TABLE, f->bdir);
    assert_int_equal(entries(dir), 0); /* no tmp, no final directory */
    assert_null(result_string(f, id, "path"));
}

/* The files of two backup directories are the same bytes. */
static void assert_same_backup(const char *a, const char *b, const char *rows_name)
{
    const char *names[] = {"manifest.json", "meta.json", rows_name};
    for (int i = 0; i < 3; i++) {
        char *pa = tu_path(a, names[i]), *pb = tu_path(b, names[i]);
        size_t na = 0, nb = 0;
        char *da = slurp(pa, &na), *db = slurp(pb, &nb);
        assert_non_null(da);
        assert_non_null(db);
        if (na != nb || memcmp(da, db, na) != 0)
            fail_msg("%s differs: %zu and %zu bytes", names[i], na, nb);
        free(da);
        free(db);
        free(pa);
        free(pb);
    }
}

/* A backup paused mid-way: its first run returns continue and keeps its
 * files; the next one takes them up and writes what an uninterrupted
 * backup writes. `damage` changes the kept files first: 1 appends bytes
 * past the checkpoint (a run that wrote on and died), 2 changes a byte
 * before it (which makes the run start over). */
static void pause_and_resume(fx *f, const char *compression, int damage)
{
    const int n = 3000;
    fill_big(f, n);
    const char *rows_name = strcmp(compression, "zstd") == 0 ? "rows.jsonl.zst" : "rows.jsonl";
    char whole[JM_JOB_ID_SIZE], paused[JM_JOB_ID_SIZE];
    char *p = params(f, compression);
    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, whole), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, whole, 3, NULL), JM_STATUS_COMPLETED);

    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, paused), JM_OK);
    free(p);
    g.pause_at_rows = n / 2;
    g.exported = 0;
    assert_int_equal(xh_run1(&f->x, paused), JM_STATUS_QUEUED);
    assert_message_has(f, paused, "paused after");
    int64_t kept = xh_checkpoint_int(&f->x, paused, "rows");
    int64_t kept_bytes = xh_checkpoint_int(&f->x, paused, "rows_bytes");
    printf("# backup (%s) paused after %lld of %d rows, %lld bytes\n", compression,
           (long long)kept, n, (long long)kept_bytes);
    assert_true(kept >= n / 2 && kept < n);
    assert_true(kept_bytes > 0);
    char tmp[8192];
    snprintf(tmp, sizeof tmp, "%s/backups/" NS "/" TABLE "/.%s.tmp/%s", f->bdir, paused,
             rows_name);
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0);
    assert_int_equal((int64_t)st.st_size, kept_bytes);
    if (damage == 1) {
        FILE *fp = fopen(tmp, "ab");
        fputs("written after the pause by a run that died", fp);
        fclose(fp);
    } else if (damage == 2) {
        FILE *fp = fopen(tmp, "r+b");
        fseek(fp, kept_bytes / 2, SEEK_SET);
        int c = fgetc(fp);
        fseek(fp, kept_bytes / 2, SEEK_SET);
        fputc(c ^ 1, fp);
        fclose(fp);
    }

    assert_int_equal(xh_run_to_end(&f->x, paused, 3, NULL), JM_STATUS_COMPLETED);
    assert_int_equal(xh_metric(&f->x, paused, "rows"), n);
    assert_int_equal(xh_metric(&f->x, paused, "bytes_written"),
                     xh_metric(&f->x, whole, "bytes_written"));
    char *a = result_string(f, whole, "path"), *b = result_string(f, paused, "path");
    check_backup_dir(b, rows_name, n);
    assert_same_backup(a, b, rows_name);

    /* Batches of rows, each its own zstd frame: it restores. */
    char rp[8300], id[JM_JOB_ID_SIZE];
    snprintf(rp, sizeof rp,
             "{\"backup_location\":\"%s\",\"target_namespace\":\"" NS "\","
             "\"target_table_name\":\"copy\"}",
             b);
    assert_int_equal(xh_create(&f->x, JM_RESTORE, rp, id), JM_OK);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_COMPLETED);
    int64_t count = 0;
    assert_int_equal(jm_engine_count(f->e, NS, "copy", 1, &count), JM_OK);
    assert_int_equal(count, n);
    free(a);
    free(b);
}

static void paused_zstd_backup_resumes_identical(void **state)
{
    pause_and_resume(*state, "zstd", 0);
}

static void paused_plain_backup_resumes_identical(void **state)
{
    pause_and_resume(*state, "none", 0);
}

static void bytes_written_after_the_pause_are_cut_off(void **state)
{
    pause_and_resume(*state, "zstd", 1);
}

static void damaged_kept_files_start_over(void **state)
{
    pause_and_resume(*state, "none", 2);
}

/* Every document read from the host and every byte written to the three
 * files is charged to the normal class's budget. */
static void io_is_charged_to_the_budget(void **state)
{
    fx *f = *state;
    int64_t docs = fill_big(f, 300);
    char id[JM_JOB_ID_SIZE];
    char *p = params(f, "zstd");
    assert_int_equal(xh_create(&f->x, JM_BACKUP, p, id), JM_OK);
    free(p);
    assert_int_equal(xh_run_to_end(&f->x, id, 3, NULL), JM_STATUS_COMPLETED);
    jm_stats_report *r = NULL;
    assert_int_equal(jm_stats(f->x.m, &r), JM_OK);
    assert_int_equal(r->throttle_bytes[JM_CLASS_NORMAL],
                     docs + xh_metric(&f->x, id, "bytes_written"));
    assert_int_equal(r->throttle_bytes[JM_CLASS_HIGH], 0);
    jm_stats_free(r);
}

static void no_host_fails_clearly(void **state)
{
    (void)state;
    xh x;
    assert_int_equal(xh_open(&x, NULL), JM_OK);
    assert_int_equal(jm_register(x.m, &jm__backup_executor, NULL), JM_OK);
    char id[JM_JOB_ID_SIZE];
    assert_int_equal(xh_create(&x, JM_BACKUP,
                               "{\"namespace_id\":\"a\",\"table_name\":\"b\",\"table_type\":\"User\","
                               "\"backup_location\":\"/nonexistent\",\"compression\":\"none\"}",
                               id),
                     JM_OK);
    assert_int_equal(xh_run_to_end(&x, id, 3, NULL), JM_STATUS_FAILED);
    char *msg = xh_message(&x, id);
    assert_non_null(strstr(msg, "host"));
    free(msg);
    xh_close(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(validation, setup, teardown),
        cmocka_unit_test_setup_teardown(backup_writes_files_and_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_table, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_tmp_dir_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_table_and_type_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_host_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(unwritable_location_fails_with_errno_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cancel_mid_export_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(paused_zstd_backup_resumes_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(paused_plain_backup_resumes_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(bytes_written_after_the_pause_are_cut_off, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(damaged_kept_files_start_over, setup, teardown),
        cmocka_unit_test_setup_teardown(io_is_charged_to_the_budget, setup, teardown),
        cmocka_unit_test(no_host_fails_clearly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
