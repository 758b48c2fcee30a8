/*
 * Backup (BK): a consistent snapshot of one table (buffer and segments,
 * soft-deleted rows included) with its metadata, written to a local
 * directory in the format of backup_format.h.
 *
 * Everything is written into <location>/<ns>/<table>/.<job id>.tmp/, every
 * file and the directory fsynced, the manifest last; only then is the
 * directory renamed to <location>/<ns>/<table>/<job id>. So a backup that
 * was interrupted never looks complete: outside a ".tmp" directory there is
 * always a whole, verified backup or nothing. A retried or crashed run
 * starts over, and a cancelled or failed one removes what it wrote.
 * It does not upload anywhere: other schemes (s3://…) are refused when the
 * job is created.
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

/* Bytes gathered before one write(2). */
#define BK_WRITE_BUFFER_BYTES (256 * 1024)
/* zstd's default level: fast, and most of the gain. */
#define BK_ZSTD_LEVEL 3
/* Values the export callbacks return to stop the export (host errors are
 * negative, so these never collide with one). */
#define BK_STOP_CANCELLED 1
#define BK_STOP_FAILED 2
/* manifest.json, meta.json and the rows file. */
#define BK_FILES_WRITTEN 3

/* One output file: buffered writes, counted and hashed as they reach it. */
typedef struct sink {
    int fd;
    const char *name;
    jm__sha256 sha;
    int64_t bytes;
    char *buf;
    size_t used;
} sink;

typedef struct backup {
    jm_ctx *ctx;
    int tmpfd;
    jm_table_type type;
    jm__backup_compression compression;
    jm__manifest manifest;
    sink rows;
    ZSTD_CCtx *zc;
    char *zbuf; /* compressed output, zbuf_cap bytes */
    size_t zbuf_cap;
    char *line; /* the row being encoded, line_cap bytes */
    size_t line_cap;
    int meta_seen;
    int64_t row_count;
    int64_t last_key;
    const char *fail; /* why the export was stopped with BK_STOP_FAILED */
    int64_t meta_bytes;
} backup;

static const char *errno_text(backup *b, const char *what, const char *name, int err)
{
    char buf[128];
    return jm_ctx_strf(b->ctx, "%s %s: %s", what, name, jm__fs_strerror(err, buf, sizeof buf));
}

static int sink_flush(backup *b, sink *s)
{
    if (s->used && jm__fs_write_all(s->fd, s->buf, s->used) != 0) {
        b->fail = errno_text(b, "writing", s->name, errno);
        return -1;
    }
    s->used = 0;
    return 0;
}

static int sink_put(backup *b, sink *s, const void *data, size_t n)
{
    jm__sha256_update(&s->sha, data, n);
    s->bytes += (int64_t)n;
    if (s->used + n > BK_WRITE_BUFFER_BYTES) {
        if (sink_flush(b, s))
            return -1;
        if (n >= BK_WRITE_BUFFER_BYTES) {
            if (jm__fs_write_all(s->fd, data, n) != 0) {
                b->fail = errno_text(b, "writing", s->name, errno);
                return -1;
            }
            return 0;
        }
    }
    memcpy(s->buf + s->used, data, n);
    s->used += n;
    return 0;
}

/* Feeds uncompressed row bytes to the rows file (through zstd if asked);
 * `end` finishes the zstd frame. */
static int rows_put(backup *b, const void *data, size_t n, int end)
{
    if (b->compression == JM_BACKUP_NONE)
        return n ? sink_put(b, &b->rows, data, n) : 0;
    ZSTD_inBuffer in = {data, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {b->zbuf, b->zbuf_cap, 0};
        size_t left = ZSTD_compressStream2(b->zc, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left)) {
            b->fail = jm_ctx_strf(b->ctx, "zstd compression failed: %s", ZSTD_getErrorName(left));
            return -1;
        }
        if (out.pos && sink_put(b, &b->rows, b->zbuf, out.pos))
            return -1;
        if (end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

/* Writes a whole small file into the backup directory, fsynced, and
 * records it in the manifest (if `entry`). */
static int write_file(backup *b, const char *name, const char *data, size_t n,
                      jm__manifest_file *entry)
{
    int fd = openat(b->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    JM_FS_FILE_MODE);
    if (fd < 0 || jm__fs_write_all(fd, data, n) != 0 || jm__fs_sync(fd) != 0) {
        b->fail = errno_text(b, "writing", name, errno);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (close(fd) != 0) {
        b->fail = errno_text(b, "closing", name, errno);
        return -1;
    }
    if (entry) {
        snprintf(entry->name, sizeof entry->name, "%s", name);
        entry->bytes = (int64_t)n;
        jm__sha256_hex(data, n, entry->sha256);
    }
    return 0;
}

static int on_meta(void *arg, const char *meta_json)
{
    backup *b = arg;
    char err[256];
    size_t n = strlen(meta_json);
    if (b->meta_seen) {
        b->fail = "the host sent the table metadata twice";
        return BK_STOP_FAILED;
    }
    b->meta_seen = 1;
    /* A backup that restore would refuse is no backup: check it now. */
    if (jm__backup_meta_check(meta_json, n, b->type, err, sizeof err) != JM_OK) {
        b->fail = jm_ctx_strf(b->ctx, "the host's table metadata is unusable: %s", err);
        return BK_STOP_FAILED;
    }
    if (write_file(b, JM_BACKUP_META_FILE, meta_json, n, &b->manifest.files[0]))
        return BK_STOP_FAILED;
    b->meta_bytes = (int64_t)n;
    return 0;
}

static int on_rows(void *arg, const jm_host_row *rows, size_t n)
{
    backup *b = arg;
    if (jm_ctx_is_cancelled(b->ctx))
        return BK_STOP_CANCELLED;
    if (!b->meta_seen) {
        b->fail = "the host sent rows before the table metadata";
        return BK_STOP_FAILED;
    }
    for (size_t i = 0; i < n; i++) {
        const jm_host_row *r = &rows[i];
        if (b->row_count > 0 && r->key <= b->last_key) {
            b->fail = jm_ctx_strf(b->ctx, "the host exported key %lld after %lld (not in key order)",
                                  (long long)r->key, (long long)b->last_key);
            return BK_STOP_FAILED;
        }
        size_t need = jm__backup_row_line_size(r);
        if (need == 0 || need > JM_BACKUP_LINE_MAX_BYTES) {
            b->fail = jm_ctx_strf(b->ctx,
                                  "row %lld cannot be backed up: its line would be %s "
                                  "(the format carries at most %d bytes, no NUL bytes and "
                                  "integers within 2^53)",
                                  (long long)r->key, need ? "too long" : "invalid",
                                  JM_BACKUP_LINE_MAX_BYTES);
            return BK_STOP_FAILED;
        }
        if (need > b->line_cap) {
            /* Its old content is not needed: a new buffer, not a copy. */
            cJSON_free(b->line);
            b->line_cap = need < BK_WRITE_BUFFER_BYTES ? BK_WRITE_BUFFER_BYTES : need;
            b->line = cJSON_malloc(b->line_cap);
            if (!b->line) {
                b->line_cap = 0;
                b->fail = "out of memory encoding a row";
                return BK_STOP_FAILED;
            }
        }
        jm__backup_row_encode(r, b->line);
        if (rows_put(b, b->line, need, 0))
            return BK_STOP_FAILED;
        b->last_key = r->key;
        b->row_count++;
    }
    return 0;
}

static int open_rows(backup *b)
{
    b->rows.name = jm__backup_rows_file(b->compression);
    jm__sha256_init(&b->rows.sha);
    b->rows.buf = cJSON_malloc(BK_WRITE_BUFFER_BYTES);
    if (!b->rows.buf) {
        b->fail = "out of memory";
        return -1;
    }
    if (b->compression == JM_BACKUP_ZSTD) {
        b->zbuf_cap = ZSTD_CStreamOutSize();
        b->zbuf = cJSON_malloc(b->zbuf_cap);
        b->zc = ZSTD_createCCtx();
        if (!b->zbuf || !b->zc) {
            b->fail = "out of memory";
            return -1;
        }
        /* The frame checksum lets zstd itself notice a damaged frame too. */
        if (ZSTD_isError(ZSTD_CCtx_setParameter(b->zc, ZSTD_c_compressionLevel, BK_ZSTD_LEVEL)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(b->zc, ZSTD_c_checksumFlag, 1))) {
            b->fail = "zstd refused its parameters";
            return -1;
        }
    }
    b->rows.fd = openat(b->tmpfd, b->rows.name,
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, JM_FS_FILE_MODE);
    if (b->rows.fd < 0) {
        b->fail = errno_text(b, "creating", b->rows.name, errno);
        return -1;
    }
    return 0;
}

static int finish_rows(backup *b)
{
    if (rows_put(b, NULL, 0, 1) || sink_flush(b, &b->rows))
        return -1;
    if (jm__fs_sync(b->rows.fd) != 0) {
        b->fail = errno_text(b, "syncing", b->rows.name, errno);
        return -1;
    }
    int rc = close(b->rows.fd);
    b->rows.fd = -1;
    if (rc != 0) {
        b->fail = errno_text(b, "closing", b->rows.name, errno);
        return -1;
    }
    jm__manifest_file *f = &b->manifest.files[1];
    snprintf(f->name, sizeof f->name, "%s", b->rows.name);
    f->bytes = b->rows.bytes;
    jm__sha256_final_hex(&b->rows.sha, f->sha256);
    return 0;
}

static int write_manifest(backup *b, int64_t *bytes)
{
    char *text = jm__manifest_print(&b->manifest);
    if (!text) {
        b->fail = "out of memory writing the manifest";
        return -1;
    }
    *bytes = (int64_t)strlen(text);
    int rc = write_file(b, JM_BACKUP_MANIFEST_FILE, text, strlen(text), NULL);
    cJSON_free(text);
    return rc;
}

static const char *metrics(jm_ctx *ctx, int64_t rows, int64_t bytes, const char *path)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    const char *out = NULL;
    if (o && cJSON_AddNumberToObject(o, "rows", (double)rows) &&
        cJSON_AddNumberToObject(o, "bytes_written", (double)bytes) &&
        cJSON_AddNumberToObject(o, "files", BK_FILES_WRITTEN) &&
        cJSON_AddStringToObject(o, "path", path))
        text = cJSON_PrintUnformatted(o);
    if (text)
        out = jm_ctx_strf(ctx, "%s", text);
    cJSON_free(text);
    cJSON_Delete(o);
    return out;
}

static int backup_validate(void *self, const cJSON *p, char *err, size_t errlen)
{
    (void)self;
    const char *s = NULL;
    jm_table_type t;
    jm__backup_compression c;
    if (jm__param_name(p, "namespace_id", &s, err, errlen) ||
        jm__param_name(p, "table_name", &s, err, errlen) ||
        jm__param_table_type(p, "table_type", &t, err, errlen) ||
        jm__param_local_dir(p, "backup_location", &s, err, errlen) ||
        jm__param_string(p, "compression", 1, 16, &s, err, errlen))
        return -1;
    if (jm__backup_compression_parse(s, &c)) {
        snprintf(err, errlen, "parameter \"compression\" must be \"zstd\" or \"none\"");
        return -1;
    }
    return 0;
}

static jm_decision backup_execute(void *self, jm_ctx *ctx)
{
    (void)self;
    jm_decision d;
    const jm_host *h = jm__exec_host(ctx, &d);
    if (!h)
        return d;
    const char *ns = jm__get_str(ctx, "namespace_id");
    const char *table = jm__get_str(ctx, "table_name");
    const char *location = jm__get_str(ctx, "backup_location");
    const char *id = jm_job_id(jm_ctx_job(ctx));
    backup b;
    memset(&b, 0, sizeof b);
    b.ctx = ctx;
    b.tmpfd = b.rows.fd = -1;
    jm_table_type_parse(jm__get_str(ctx, "table_type"), &b.type);
    jm__backup_compression_parse(jm__get_str(ctx, "compression"), &b.compression);
    int locfd = -1, nsfd = -1, tablefd = -1;
    int renamed = 0;
    const char *tmpname = jm_ctx_strf(ctx, ".%s.tmp", id);

    jm_host_table info;
    if (jm__exec_table(ctx, h, ns, table, b.type, &info, &d))
        goto done;

    /* Where: the names were validated, so they are single path components.
     * jm_ctx_strf gives "" when memory is short: never a directory name. */
    if (!*tmpname) {
        b.fail = "out of memory";
    } else if ((locfd = jm__fs_mkdir_p(location)) < 0) {
        b.fail = errno_text(&b, "creating", location, errno);
    } else if ((nsfd = jm__fs_subdir(locfd, ns, 1)) < 0 ||
               (tablefd = jm__fs_subdir(nsfd, table, 1)) < 0) {
        b.fail = errno_text(&b, "creating the directory for", table, errno);
    } else if (jm__fs_remove_tree(tablefd, tmpname) != 0 || jm__fs_remove_tree(tablefd, id) != 0) {
        /* A crashed or retried run of this job starts over. */
        b.fail = errno_text(&b, "removing an earlier attempt of", id, errno);
    } else if ((b.tmpfd = jm__fs_subdir(tablefd, tmpname, 1)) < 0) {
        b.fail = errno_text(&b, "creating", tmpname, errno);
    }
    if (b.fail || open_rows(&b)) {
        d = jm_decision_failed(jm_ctx_strf(ctx, "backup failed: %s", b.fail), NULL);
        goto done;
    }

    jm_host_export_cb cb = {on_meta, on_rows, &b};
    int rc = h->export_table(h->self, ns, table, &cb);
    if (rc == BK_STOP_CANCELLED) {
        d = jm_decision_cancelled("backup cancelled; nothing was kept");
        goto done;
    }
    if (rc == BK_STOP_FAILED) {
        d = jm_decision_failed(jm_ctx_strf(ctx, "backup failed: %s", b.fail), NULL);
        goto done;
    }
    if (rc == JM_ENOTFOUND) {
        d = jm_decision_failed(jm_ctx_strf(ctx, "table %s.%s does not exist", ns, table), NULL);
        goto done;
    }
    if (rc) {
        d = jm__host_failure(ctx, rc, "export_table", -1);
        goto done;
    }
    if (!b.meta_seen) {
        d = jm_decision_failed("backup failed: the host sent no table metadata", NULL);
        goto done;
    }

    int64_t manifest_bytes = 0;
    b.manifest.format_version = JM_BACKUP_FORMAT_VERSION;
    snprintf(b.manifest.ns, sizeof b.manifest.ns, "%s", ns);
    snprintf(b.manifest.table, sizeof b.manifest.table, "%s", table);
    b.manifest.table_type = b.type;
    b.manifest.row_count = b.row_count;
    b.manifest.compression = b.compression;
    b.manifest.created_at = jm_ctx_now(ctx);
    b.manifest.nfiles = JM_BACKUP_DATA_FILES;
    if (finish_rows(&b) || write_manifest(&b, &manifest_bytes)) {
        d = jm_decision_failed(jm_ctx_strf(ctx, "backup failed: %s", b.fail), NULL);
        goto done;
    }
    if (jm__fs_sync(b.tmpfd) != 0) {
        d = jm_decision_failed(errno_text(&b, "backup failed: syncing", tmpname, errno), NULL);
        goto done;
    }
    if (jm_ctx_is_cancelled(ctx)) {
        d = jm_decision_cancelled("backup cancelled; nothing was kept");
        goto done;
    }
    /* The commit point: the complete directory appears under its final
     * name at once. The parents are synced so the rename (and directories
     * made for it) survive a crash. */
    if (renameat(tablefd, tmpname, tablefd, id) != 0) {
        d = jm_decision_failed(errno_text(&b, "backup failed: renaming", tmpname, errno), NULL);
        goto done;
    }
    renamed = 1;
    if (jm__fs_sync(tablefd) != 0 || jm__fs_sync(nsfd) != 0 || jm__fs_sync(locfd) != 0) {
        int e = errno;
        jm__fs_remove_tree(tablefd, id);
        d = jm_decision_failed(errno_text(&b, "backup failed: syncing the directory of", id, e),
                               NULL);
        goto done;
    }
    int64_t total = b.meta_bytes + b.rows.bytes + manifest_bytes;
    size_t loclen = strlen(location);
    while (loclen > 0 && location[loclen - 1] == '/')
        loclen--;
    const char *path = jm_ctx_strf(ctx, "%.*s/%s/%s/%s", (int)loclen, location, ns, table, id);
    jm_ctx_log(ctx, JM_LOG_INFO, "backup of %s.%s: %lld rows, %lld bytes in %s", ns, table,
               (long long)b.row_count, (long long)total, path);
    d = jm_decision_completed(
        jm_ctx_strf(ctx, "backed up %lld rows of %s.%s", (long long)b.row_count, ns, table),
        metrics(ctx, b.row_count, total, path));
done:
    if (b.rows.fd >= 0)
        close(b.rows.fd);
    if (b.tmpfd >= 0)
        close(b.tmpfd);
    /* Nothing of a failed or cancelled backup stays behind. */
    if (tablefd >= 0 && !renamed && jm__fs_remove_tree(tablefd, tmpname) != 0) {
        char ebuf[128];
        jm_ctx_log(ctx, JM_LOG_WARN, "could not remove %s: %s", tmpname,
                   jm__fs_strerror(errno, ebuf, sizeof ebuf));
    }
    if (tablefd >= 0)
        close(tablefd);
    if (nsfd >= 0)
        close(nsfd);
    if (locfd >= 0)
        close(locfd);
    ZSTD_freeCCtx(b.zc);
    cJSON_free(b.zbuf);
    cJSON_free(b.rows.buf);
    cJSON_free(b.line);
    return d;
}

const jm_executor jm__backup_executor = {
    JM_EXECUTOR_VERSION, JM_BACKUP, "backup", 1, backup_validate, backup_execute, NULL,
};
