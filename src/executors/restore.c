/*
 * Restore (RS): loads a backup directory written by the backup executor
 * into a new table (or over an existing one, with `overwrite`), through the
 * host's import_begin / import_rows / import_commit, so nothing is visible
 * until the whole table appears at once.
 *
 * The backup is untrusted input. The directory and every file are opened
 * without following links, files must be regular and exactly the size the
 * manifest says, the manifest is parsed strictly (backup_format.c), and the
 * SHA-256 of both data files is checked before the import begins; the rows
 * file is hashed again while it streams, so a file changed meanwhile is
 * caught too. Every row line is checked (shape, types, strictly increasing
 * keys, length) and the row count must match. Any failure aborts the
 * import: a corrupt, truncated or hostile backup changes nothing.
 *
 * Between batches of the import a restore yields to a pause. A host's
 * import lives only as long as the run that began it, so the import is
 * aborted (nothing becomes visible) and the next run imports from the
 * first row again; the checkpoint records that the files were verified,
 * and a next run whose manifest gives the same digest skips the first read
 * (the import's read hashes the file anyway). Every byte read from the
 * files and handed to the host is charged to the class's I/O budget first.
 *
 * It does not read remote storage and does not rename the restored table's
 * documents: rows come back byte for byte, keys and times included.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "backup_format.h"
#include "builtin.h"
#include "exec_util.h"
#include "fs_util.h"
#include "sha256.h"

/* Bytes read from a file at a time. */
#define RS_READ_BYTES (256 * 1024)
/* Rows handed to import_rows at once; cancellation is checked between. */
#define RS_BATCH_ROWS 1000
/* zstd may ask for a window up to 2^27 (128 MiB) — its own default limit,
 * stated here so a hostile frame can never ask for more memory. */
#define RS_ZSTD_WINDOW_LOG_MAX 27
/* A paused restore is due again at once: the pause holds it back. */
#define RS_RESUME_DELAY_MS 0
/* Checkpoint fields: the rows file's digest the files were verified
 * against (a paused run's), and the rows imported when it paused. */
#define CP_VERIFIED "verified_rows_sha256"
#define CP_PAUSED_AT "paused_at_rows"

typedef struct restore {
    jm_ctx *ctx;
    const jm_host *h;
    const jm__manifest *m;
    const char *rows_name;
    void *import;
    jm_decision d; /* set when a step fails */
    /* the line being assembled */
    char *line;
    size_t line_len;
    /* the batch: rows whose documents live in `docs` */
    jm_host_row batch[RS_BATCH_ROWS];
    size_t nbatch;
    char *docs;
    size_t docs_used;
    int64_t rows;
    int64_t last_key;
    /* zstd: the decoder, its output buffer, and its last hint (0 = a frame
     * just ended, so the input may end here) */
    ZSTD_DCtx *dc;
    char *zout;
    size_t zout_cap;
    size_t zlast;
} restore;

static jm_decision fail(restore *r, const char *msg)
{
    r->d = jm_decision_failed(jm_ctx_strf(r->ctx, "restore failed: %s", msg), NULL);
    return r->d;
}

static int fail_errno(restore *r, const char *what, const char *name, int err)
{
    char buf[128];
    fail(r, jm_ctx_strf(r->ctx, "%s %s: %s", what, name, jm__fs_strerror(err, buf, sizeof buf)));
    return -1;
}

/* Reads the whole manifest (at most JM_BACKUP_MANIFEST_MAX_BYTES) and
 * parses it. */
static int load_manifest(restore *r, int dirfd, jm__manifest **out)
{
    struct stat st;
    char err[256];
    int rc = -1;
    char *text = NULL;
    int fd = jm__fs_open_regular(dirfd, JM_BACKUP_MANIFEST_FILE, &st);
    if (fd < 0) {
        fail_errno(r, "cannot open", JM_BACKUP_MANIFEST_FILE, errno);
        goto done;
    }
    if (st.st_size > JM_BACKUP_MANIFEST_MAX_BYTES) {
        fail(r, jm_ctx_strf(r->ctx, "%s is larger than %d bytes", JM_BACKUP_MANIFEST_FILE,
                            JM_BACKUP_MANIFEST_MAX_BYTES));
        goto done;
    }
    /* One byte more than allowed: a file that grew since fstat shows. */
    text = cJSON_malloc(JM_BACKUP_MANIFEST_MAX_BYTES + 1);
    if (!text) {
        fail(r, "out of memory reading the manifest");
        goto done;
    }
    jm_ctx_throttle(r->ctx, (int64_t)st.st_size);
    ssize_t n = jm__fs_read_full(fd, text, JM_BACKUP_MANIFEST_MAX_BYTES + 1);
    if (n < 0) {
        fail_errno(r, "reading", JM_BACKUP_MANIFEST_FILE, errno);
        goto done;
    }
    if (jm__manifest_parse(text, (size_t)n, out, err, sizeof err) != JM_OK) {
        fail(r, jm_ctx_strf(r->ctx, "invalid %s: %s", JM_BACKUP_MANIFEST_FILE, err));
        goto done;
    }
    rc = 0;
done:
    cJSON_free(text);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Opens a data file the manifest lists: no link, a regular file, and
 * exactly the manifest's size. */
static int open_data(restore *r, int dirfd, const jm__manifest_file *f)
{
    struct stat st;
    int fd = jm__fs_open_regular(dirfd, f->name, &st);
    if (fd < 0) {
        if (errno == ELOOP || errno == EINVAL)
            fail(r, jm_ctx_strf(r->ctx, "%s is not a regular file (links are not followed)",
                                f->name));
        else
            fail_errno(r, "cannot open", f->name, errno);
        return -1;
    }
    if ((int64_t)st.st_size != f->bytes) {
        fail(r, jm_ctx_strf(r->ctx, "%s is %s: %lld bytes, the manifest says %lld", f->name,
                            (int64_t)st.st_size < f->bytes ? "truncated" : "larger than expected",
                            (long long)st.st_size, (long long)f->bytes));
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads meta.json whole (NUL-terminated, the caller frees it) and checks its
 * checksum and that it describes a table of the manifest's type. */
static char *load_meta(restore *r, int dirfd)
{
    const jm__manifest_file *f = jm__manifest_find(r->m, JM_BACKUP_META_FILE);
    char err[256], hex[JM_SHA256_HEX_SIZE];
    char *meta = NULL;
    if (f->bytes > JM_BACKUP_META_MAX_BYTES) {
        fail(r, jm_ctx_strf(r->ctx, "%s is larger than %d bytes", f->name,
                            JM_BACKUP_META_MAX_BYTES));
        return NULL;
    }
    int fd = open_data(r, dirfd, f);
    if (fd < 0)
        return NULL;
    size_t n = (size_t)f->bytes;
    meta = cJSON_malloc(n + 1);
    if (!meta) {
        fail(r, "out of memory reading the metadata");
        goto done;
    }
    jm_ctx_throttle(r->ctx, f->bytes);
    ssize_t got = jm__fs_read_full(fd, meta, n + 1);
    if (got < 0) {
        fail_errno(r, "reading", f->name, errno);
        goto bad;
    }
    if ((size_t)got != n) {
        fail(r, jm_ctx_strf(r->ctx, "%s changed size while being read", f->name));
        goto bad;
    }
    meta[n] = '\0';
    jm__sha256_hex(meta, n, hex);
    if (strcmp(hex, f->sha256) != 0) {
        fail(r, jm_ctx_strf(r->ctx, "checksum mismatch for %s", f->name));
        goto bad;
    }
    if (jm__backup_meta_check(meta, n, r->m->table_type, err, sizeof err) != JM_OK) {
        fail(r, jm_ctx_strf(r->ctx, "incompatible table metadata: %s", err));
        goto bad;
    }
    goto done;
bad:
    cJSON_free(meta);
    meta = NULL;
done:
    close(fd);
    return meta;
}

/* Reads the rows file from its start, hashing it, and hands each chunk to
 * `each` (if any). Fails if it is not exactly the manifest's size or its
 * digest differs. */
static int read_rows_file(restore *r, int fd, const jm__manifest_file *f, char *buf,
                          int (*each)(restore *r, const char *data, size_t n))
{
    jm__sha256 sha;
    char hex[JM_SHA256_HEX_SIZE];
    int64_t total = 0;
    jm__sha256_init(&sha);
    if (lseek(fd, 0, SEEK_SET) != 0)
        return fail_errno(r, "reading", f->name, errno);
    for (;;) {
        /* What is left by the manifest's size; a file that grew is caught
         * below whatever it costs. */
        int64_t left = f->bytes - total;
        jm_ctx_throttle(r->ctx, left < RS_READ_BYTES ? left : RS_READ_BYTES);
        ssize_t n = read(fd, buf, RS_READ_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno(r, "reading", f->name, errno);
        if (n == 0)
            break;
        total += n;
        if (total > f->bytes) {
            fail(r, jm_ctx_strf(r->ctx, "%s grew while being read", f->name));
            return -1;
        }
        jm__sha256_update(&sha, buf, (size_t)n);
        if (each && each(r, buf, (size_t)n))
            return -1;
    }
    if (total != f->bytes) {
        fail(r, jm_ctx_strf(r->ctx, "%s is truncated: %lld bytes, the manifest says %lld",
                            f->name, (long long)total, (long long)f->bytes));
        return -1;
    }
    jm__sha256_final_hex(&sha, hex);
    if (strcmp(hex, f->sha256) != 0) {
        fail(r, jm_ctx_strf(r->ctx, "checksum mismatch for %s", f->name));
        return -1;
    }
    return 0;
}

/* A batch boundary of the import, after import_rows: the import cannot
 * outlive this run, so it is aborted by the caller; the checkpoint saves
 * that the files were verified. Fills r->d and returns -1. */
static int pause_import(restore *r)
{
    const jm__manifest_file *f = jm__manifest_find(r->m, r->rows_name);
    cJSON *cp = cJSON_CreateObject();
    int rc = JM_ENOMEM;
    if (cp && cJSON_AddStringToObject(cp, CP_VERIFIED, f->sha256) &&
        cJSON_AddNumberToObject(cp, CP_PAUSED_AT, (double)r->rows))
        rc = jm__checkpoint_save(r->ctx, cp);
    else
        jm_host_error(JM_ENOMEM, "out of memory building a checkpoint");
    cJSON_Delete(cp);
    if (rc != JM_OK) {
        r->d = jm__host_failure(r->ctx, rc, "saving the restore's checkpoint", -1);
        return -1;
    }
    r->d = jm_decision_continue(
        jm_ctx_strf(r->ctx, "paused after staging %lld of %lld rows; the import starts over "
                            "when resumed",
                    (long long)r->rows, (long long)r->m->row_count),
        RS_RESUME_DELAY_MS);
    return -1;
}

static int flush_batch(restore *r)
{
    if (r->nbatch == 0)
        return 0;
    jm_ctx_throttle(r->ctx, (int64_t)r->docs_used);
    int rc = r->h->import_rows(r->h->self, r->import, r->batch, r->nbatch);
    if (rc) {
        r->d = jm__host_failure(r->ctx, rc, "import_rows", -1);
        return -1;
    }
    r->nbatch = 0;
    r->docs_used = 0;
    if (r->m->row_count > 0)
        jm_ctx_progress(r->ctx, (double)r->rows / (double)r->m->row_count);
    if (jm_ctx_is_cancelled(r->ctx)) {
        r->d = jm_decision_cancelled("restore cancelled; nothing was restored");
        return -1;
    }
    /* With every row staged, committing beats starting over. */
    if (r->rows < r->m->row_count && jm__exec_should_pause(r->ctx))
        return pause_import(r);
    return 0;
}

static int take_line(restore *r)
{
    char err[256];
    /* A decoded document is never longer than its line, so this much room
     * always holds it; a full arena ends the batch first. */
    if (r->nbatch == RS_BATCH_ROWS || r->docs_used + r->line_len > JM_BACKUP_LINE_MAX_BYTES) {
        if (flush_batch(r))
            return -1;
    }
    jm_host_row *row = &r->batch[r->nbatch];
    if (jm__backup_row_parse(r->line, r->line_len, row, r->docs + r->docs_used, err,
                             sizeof err) != JM_OK) {
        fail(r, jm_ctx_strf(r->ctx, "%s, row %lld: %s", r->rows_name, (long long)r->rows + 1,
                            err));
        return -1;
    }
    if (r->rows > 0 && row->key <= r->last_key) {
        fail(r, jm_ctx_strf(r->ctx, "%s, row %lld: key %lld does not follow %lld", r->rows_name,
                            (long long)r->rows + 1, (long long)row->key,
                            (long long)r->last_key));
        return -1;
    }
    if (r->rows >= r->m->row_count) {
        fail(r, jm_ctx_strf(r->ctx, "%s holds more rows than the manifest's %lld", r->rows_name,
                            (long long)r->m->row_count));
        return -1;
    }
    r->docs_used += row->doc_len;
    r->last_key = row->key;
    r->rows++;
    r->nbatch++;
    return 0;
}

/* Uncompressed rows-file bytes: split into lines. */
static int feed_lines(restore *r, const char *data, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        if (r->line_len + take >= JM_BACKUP_LINE_MAX_BYTES) {
            fail(r, jm_ctx_strf(r->ctx, "%s, row %lld: line longer than %d bytes", r->rows_name,
                                (long long)r->rows + 1, JM_BACKUP_LINE_MAX_BYTES));
            return -1;
        }
        memcpy(r->line + r->line_len, data, take);
        r->line_len += take;
        data += take;
        n -= take;
        if (nl) {
            if (take_line(r))
                return -1;
            r->line_len = 0;
            data++;
            n--;
        }
    }
    return 0;
}

static int feed_zstd(restore *r, const char *data, size_t n)
{
    ZSTD_inBuffer in = {data, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {r->zout, r->zout_cap, 0};
        size_t ret = ZSTD_decompressStream(r->dc, &out, &in);
        if (ZSTD_isError(ret)) {
            fail(r, jm_ctx_strf(r->ctx, "%s is corrupt: %s", r->rows_name,
                                ZSTD_getErrorName(ret)));
            return -1;
        }
        r->zlast = ret;
        if (out.pos && feed_lines(r, r->zout, out.pos))
            return -1;
        /* A full output buffer may leave decoded bytes inside zstd. */
        if (in.pos == in.size && out.pos < out.size)
            return 0;
    }
}

static int restore_validate(void *self, const cJSON *p, char *err, size_t errlen)
{
    (void)self;
    const char *s = NULL;
    int b = 0;
    return jm__param_local_dir(p, "backup_location", &s, err, errlen) ||
                   jm__param_name(p, "target_namespace", &s, err, errlen) ||
                   jm__param_name(p, "target_table_name", &s, err, errlen) ||
                   jm__param_bool(p, "overwrite", 0, &b, err, errlen)
               ? -1
               : 0;
}

/* Whether a paused run verified a rows file of the digest `f` gives. */
static int verified_before(restore *r, const jm__manifest_file *f)
{
    cJSON *cp = jm__checkpoint_load(r->ctx);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cp, CP_VERIFIED);
    int yes = cJSON_IsString(v) && strcmp(v->valuestring, f->sha256) == 0;
    cJSON_Delete(cp);
    return yes;
}

/* Everything up to the import: manifest, files, metadata, checksums (the
 * rows file's only if no paused run verified it). The host has not been
 * touched when this fails. */
static int verify(restore *r, int dirfd, int *rows_fd, char **meta, char *buf)
{
    *meta = load_meta(r, dirfd);
    if (!*meta)
        return -1;
    const jm__manifest_file *f = jm__manifest_find(r->m, r->rows_name);
    *rows_fd = open_data(r, dirfd, f);
    if (*rows_fd < 0)
        return -1;
    if (verified_before(r, f)) {
        jm_ctx_log(r->ctx, JM_LOG_INFO, "%s was verified before the pause", f->name);
        return 0;
    }
    return read_rows_file(r, *rows_fd, f, buf, NULL);
}

static int alloc_buffers(restore *r, char **buf)
{
    *buf = cJSON_malloc(RS_READ_BYTES);
    r->line = cJSON_malloc(JM_BACKUP_LINE_MAX_BYTES);
    r->docs = cJSON_malloc(JM_BACKUP_LINE_MAX_BYTES);
    if (!*buf || !r->line || !r->docs)
        return -1;
    if (r->m->compression != JM_BACKUP_ZSTD)
        return 0;
    r->zout_cap = ZSTD_DStreamOutSize();
    r->zout = cJSON_malloc(r->zout_cap);
    r->dc = ZSTD_createDCtx();
    if (!r->zout || !r->dc ||
        ZSTD_isError(ZSTD_DCtx_setParameter(r->dc, ZSTD_d_windowLogMax, RS_ZSTD_WINDOW_LOG_MAX)))
        return -1;
    r->zlast = 1; /* no frame has ended yet: an empty file is truncated */
    return 0;
}

/* The table it writes: the backup it reads conflicts with nothing. */
static int restore_resource(void *self, const cJSON *p, char *buf, size_t buflen)
{
    (void)self;
    return jm__table_resource(p, "target_namespace", "target_table_name", buf, buflen);
}

static jm_decision restore_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    restore r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    const jm_host *h = jm__exec_host(ctx, &r.d);
    if (!h)
        return r.d;
    r.h = h;
    const char *location = jm__get_str(ctx, "backup_location");
    const char *ns = jm__get_str(ctx, "target_namespace");
    const char *table = jm__get_str(ctx, "target_table_name");
    int overwrite = jm__get_bool(ctx, "overwrite", 0);
    if (!overwrite) {
        /* An earlier run may have died after its import committed and before
         * its outcome was recorded: the checkpoint says so, and the target
         * existing then means the restore is done, not a conflict. (With
         * overwrite the run simply restores again, which is idempotent.) */
        cJSON *cp = jm__checkpoint_load(ctx);
        int committing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cp, "committing"));
        int64_t done_rows = jm__checkpoint_int(cp, "rows", 0);
        cJSON_Delete(cp);
        if (committing) {
            jm_host_table info;
            int trc = h->table_info(h->self, ns, table, &info);
            if (trc == JM_OK)
                return jm_decision_completed(
                    jm_ctx_strf(ctx, "restored %lld rows into %s.%s (committed by an earlier run)",
                                (long long)done_rows, ns, table),
                    jm_ctx_strf(ctx, "{\"rows_restored\":%lld}", (long long)done_rows));
            if (trc != JM_ENOTFOUND)
                return jm__host_failure(ctx, trc, "table_info", -1);
        }
    }
    jm__manifest *m = NULL;
    char *meta = NULL;
    char *buf = NULL;
    int rows_fd = -1;

    /* O_NOFOLLOW: a link in place of the backup directory is refused. */
    int dirfd = open(location, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0) {
        int e = errno;
        if (e == ELOOP || e == ENOTDIR)
            fail(&r, jm_ctx_strf(ctx, "%s is not a directory (links are not followed)",
                                 location));
        else
            fail_errno(&r, "cannot open backup directory", location, e);
        goto done;
    }
    if (load_manifest(&r, dirfd, &m))
        goto done;
    r.m = m;
    r.rows_name = jm__backup_rows_file(m->compression);
    if (alloc_buffers(&r, &buf)) {
        fail(&r, "out of memory");
        goto done;
    }
    if (verify(&r, dirfd, &rows_fd, &meta, buf))
        goto done;

    int rc = h->import_begin(h->self, ns, table, meta, overwrite, &r.import);
    if (rc == JM_ECONFLICT) {
        fail(&r, jm_ctx_strf(ctx, "target %s.%s exists; set overwrite to replace it", ns,
                             table));
        goto done;
    }
    if (rc) {
        r.import = NULL;
        r.d = jm__host_failure(ctx, rc, "import_begin", -1);
        goto done;
    }
    /* The second read streams the rows into the import and hashes the file
     * again: it must be the file the first read verified. */
    const jm__manifest_file *f = jm__manifest_find(m, r.rows_name);
    if (read_rows_file(&r, rows_fd, f, buf,
                       m->compression == JM_BACKUP_ZSTD ? feed_zstd : feed_lines))
        goto done;
    if (m->compression == JM_BACKUP_ZSTD && r.zlast != 0) {
        fail(&r, jm_ctx_strf(ctx, "%s is truncated: its last zstd frame is incomplete",
                             r.rows_name));
        goto done;
    }
    if (r.line_len != 0) {
        fail(&r, jm_ctx_strf(ctx, "%s is truncated: the last row has no end of line",
                             r.rows_name));
        goto done;
    }
    if (r.rows != m->row_count) {
        fail(&r, jm_ctx_strf(ctx, "row count mismatch: %s holds %lld rows, the manifest says %lld",
                             r.rows_name, (long long)r.rows, (long long)m->row_count));
        goto done;
    }
    if (flush_batch(&r))
        goto done;
    if (!overwrite) {
        rc = jm_ctx_checkpoint(ctx, jm_ctx_strf(ctx, "{\"committing\":true,\"rows\":%lld}",
                                                (long long)r.rows));
        if (rc) {
            r.d = jm_decision_retry(
                jm_ctx_strf(ctx, "saving the restore's checkpoint failed: %s", jm_last_error()),
                NULL, -1);
            goto done;
        }
    }
    rc = h->import_commit(h->self, r.import);
    /* import_commit ends the import whatever it returns. */
    r.import = NULL;
    if (rc) {
        r.d = jm__host_failure(ctx, rc, "import_commit", -1);
        goto done;
    }
    jm_ctx_log(ctx, JM_LOG_INFO, "restored %lld rows into %s.%s", (long long)r.rows, ns, table);
    r.d = jm_decision_completed(
        jm_ctx_strf(ctx, "restored %lld rows into %s.%s", (long long)r.rows, ns, table),
        jm_ctx_strf(ctx, "{\"rows_restored\":%lld}", (long long)r.rows));
done:
    if (r.import)
        h->import_abort(h->self, r.import);
    if (rows_fd >= 0)
        close(rows_fd);
    if (dirfd >= 0)
        close(dirfd);
    ZSTD_freeDCtx(r.dc);
    cJSON_free(r.zout);
    cJSON_free(r.docs);
    cJSON_free(r.line);
    cJSON_free(buf);
    cJSON_free(meta);
    jm__manifest_free(m);
    return r.d;
}

const jm_executor jm__restore_executor = {
    .version = JM_EXECUTOR_VERSION,
    .type = JM_RESTORE,
    .name = "restore",
    .cancellable = 1,
    .validate = restore_validate,
    .execute = restore_execute,
    .cancel = NULL,
    .priority_class = JM_CLASS_NORMAL,
    .resource = restore_resource,
};
