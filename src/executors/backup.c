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
 *
 * Rows are written in batches of BK_CHUNK_BYTES (uncompressed), each its
 * own zstd frame. Between batches a backup yields to a pause: the rows
 * file is synced, its size, digest and last key go into the checkpoint,
 * and the run returns continue, keeping the temporary directory. The next
 * run checks those files against the checkpoint (anything amiss: it starts
 * over), skips the rows it has, and writes the same bytes an uninterrupted
 * backup would. Every byte read from the host or a file and written to a
 * file is charged to the class's I/O budget first.
 *
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
/* Uncompressed row bytes in one batch: a batch ends after the row that
 * reaches it. Each batch is one zstd frame, so where a backup paused
 * leaves no trace in what it writes. */
#define BK_CHUNK_BYTES (1024 * 1024)
/* Values the export callbacks return to stop the export (host errors are
 * negative, so these never collide with one). */
#define BK_STOP_CANCELLED 1
#define BK_STOP_FAILED 2
#define BK_STOP_PAUSED 3  /* at a batch boundary, checkpoint saved */
#define BK_STOP_CHANGED 4 /* resuming: the table's metadata changed */
/* A paused backup is due again at once: the pause holds it back. */
#define BK_RESUME_DELAY_MS 0
/* Checkpoint fields of a paused backup. */
#define CP_ROWS "rows"
#define CP_LAST_KEY "last_key"
#define CP_ROWS_BYTES "rows_bytes"
#define CP_ROWS_SHA "rows_sha256"
#define CP_META_SHA "meta_sha256"
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
    char meta_sha[JM_SHA256_HEX_SIZE]; /* meta.json's digest */
    int64_t chunk_bytes; /* row bytes in the batch being written */
    int resumed;         /* continuing the files of a paused run */
    int64_t resume_key;  /* ... which hold the rows up to this key */
    int pause_rc;        /* saving the checkpoint at a pause failed with this */
} backup;

/* Where a paused run stopped, from its checkpoint. */
typedef struct resume_point {
    int64_t rows;
    int64_t last_key;
    int64_t rows_bytes;
    char rows_sha[JM_SHA256_HEX_SIZE];
    char meta_sha[JM_SHA256_HEX_SIZE];
} resume_point;

static const char *errno_text(backup *b, const char *what, const char *name, int err)
{
    char buf[128];
    return jm_ctx_strf(b->ctx, "%s %s: %s", what, name, jm__fs_strerror(err, buf, sizeof buf));
}

static int sink_flush(backup *b, sink *s)
{
    if (s->used)
        jm_ctx_throttle(b->ctx, (int64_t)s->used);
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
            jm_ctx_throttle(b->ctx, (int64_t)n);
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
    jm_ctx_throttle(b->ctx, (int64_t)n);
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
    if (b->resumed) {
        /* meta.json is written already: it must still be the table's. */
        char hex[JM_SHA256_HEX_SIZE];
        jm__sha256_hex(meta_json, n, hex);
        return strcmp(hex, b->meta_sha) == 0 ? 0 : BK_STOP_CHANGED;
    }
    /* A backup that restore would refuse is no backup: check it now. */
    if (jm__backup_meta_check(meta_json, n, b->type, err, sizeof err) != JM_OK) {
        b->fail = jm_ctx_strf(b->ctx, "the host's table metadata is unusable: %s", err);
        return BK_STOP_FAILED;
    }
    if (write_file(b, JM_BACKUP_META_FILE, meta_json, n, &b->manifest.files[0]))
        return BK_STOP_FAILED;
    b->meta_bytes = (int64_t)n;
    memcpy(b->meta_sha, b->manifest.files[0].sha256, sizeof b->meta_sha);
    return 0;
}

/* Saves where the rows file ends: its size and digest so far, the rows it
 * holds and the last key, with meta.json's digest. */
static int save_progress(backup *b)
{
    jm__sha256 so_far = b->rows.sha;
    char hex[JM_SHA256_HEX_SIZE];
    jm__sha256_final_hex(&so_far, hex);
    int rc = JM_ENOMEM;
    cJSON *cp = cJSON_CreateObject();
    if (cp && cJSON_AddNumberToObject(cp, CP_ROWS, (double)b->row_count) &&
        cJSON_AddNumberToObject(cp, CP_LAST_KEY, (double)b->last_key) &&
        cJSON_AddNumberToObject(cp, CP_ROWS_BYTES, (double)b->rows.bytes) &&
        cJSON_AddStringToObject(cp, CP_ROWS_SHA, hex) &&
        cJSON_AddStringToObject(cp, CP_META_SHA, b->meta_sha))
        rc = jm__checkpoint_save(b->ctx, cp);
    else
        jm_host_error(JM_ENOMEM, "out of memory building a checkpoint");
    cJSON_Delete(cp);
    return rc;
}

/* The end of a batch: ends its zstd frame, and stops the export here if
 * the job is asked to pause, with the rows file synced and the checkpoint
 * saved (b->pause_rc says whether that worked). 0 to go on, or BK_STOP_*. */
static int batch_end(backup *b)
{
    b->chunk_bytes = 0;
    if (rows_put(b, NULL, 0, 1))
        return BK_STOP_FAILED;
    if (!jm__exec_should_pause(b->ctx))
        return 0;
    if (sink_flush(b, &b->rows))
        return BK_STOP_FAILED;
    if (jm__fs_sync(b->rows.fd) != 0) {
        b->fail = errno_text(b, "syncing", b->rows.name, errno);
        return BK_STOP_FAILED;
    }
    b->pause_rc = save_progress(b);
    return BK_STOP_PAUSED;
}

static int on_rows(void *arg, const jm_host_row *rows, size_t n)
{
    backup *b = arg;
    int64_t read = 0;
    for (size_t i = 0; i < n; i++)
        read += (int64_t)rows[i].doc_len;
    jm_ctx_throttle(b->ctx, read);
    if (jm_ctx_is_cancelled(b->ctx))
        return BK_STOP_CANCELLED;
    if (!b->meta_seen) {
        b->fail = "the host sent rows before the table metadata";
        return BK_STOP_FAILED;
    }
    for (size_t i = 0; i < n; i++) {
        const jm_host_row *r = &rows[i];
        /* A resumed run has these in its rows file. */
        if (b->resumed && r->key <= b->resume_key)
            continue;
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
        b->chunk_bytes += (int64_t)need;
        int stop = b->chunk_bytes >= BK_CHUNK_BYTES ? batch_end(b) : 0;
        if (stop)
            return stop;
    }
    return 0;
}

/* The rows file's buffers and compressor, for a new file or a resumed
 * one. */
static int rows_buffers(backup *b)
{
    b->rows.name = jm__backup_rows_file(b->compression);
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
    return 0;
}

static int create_rows(backup *b)
{
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

/* Where a paused run of this job stopped; -1 if it never paused (or the
 * checkpoint is unreadable: the run then starts over). */
static int resume_point_load(jm_ctx *ctx, resume_point *rp)
{
    cJSON *cp = jm__checkpoint_load(ctx);
    const cJSON *rows_sha = cJSON_GetObjectItemCaseSensitive(cp, CP_ROWS_SHA);
    const cJSON *meta_sha = cJSON_GetObjectItemCaseSensitive(cp, CP_META_SHA);
    int rc = cp && jm__json_int(cp, CP_ROWS, &rp->rows) == 0 && rp->rows >= 0 &&
                     jm__json_int(cp, CP_LAST_KEY, &rp->last_key) == 0 &&
                     jm__json_int(cp, CP_ROWS_BYTES, &rp->rows_bytes) == 0 &&
                     rp->rows_bytes >= 0 && cJSON_IsString(rows_sha) &&
                     strlen(rows_sha->valuestring) == JM_SHA256_HEX_SIZE - 1 &&
                     cJSON_IsString(meta_sha) &&
                     strlen(meta_sha->valuestring) == JM_SHA256_HEX_SIZE - 1
                 ? 0
                 : -1;
    if (rc == 0) {
        memcpy(rp->rows_sha, rows_sha->valuestring, JM_SHA256_HEX_SIZE);
        memcpy(rp->meta_sha, meta_sha->valuestring, JM_SHA256_HEX_SIZE);
    }
    cJSON_Delete(cp);
    return rc;
}

/* The digest of the first `n` bytes of fd, read into buf (of `cap` bytes)
 * and charged to the I/O budget; it leaves fd at offset n. */
static int digest_prefix(backup *b, int fd, int64_t n, char *buf, size_t cap, jm__sha256 *sha)
{
    if (lseek(fd, 0, SEEK_SET) != 0)
        return -1;
    jm__sha256_init(sha);
    while (n > 0) {
        size_t want = (uint64_t)n < cap ? (size_t)n : cap;
        jm_ctx_throttle(b->ctx, (int64_t)want);
        ssize_t got = jm__fs_read_full(fd, buf, want);
        if (got != (ssize_t)want)
            return -1;
        jm__sha256_update(sha, buf, want);
        n -= (int64_t)want;
    }
    return 0;
}

/* Takes up the temporary directory a paused run of this job left: meta.json
 * and the rows file up to the checkpoint's size must have its digests
 * (what is past that size, written after the pause, is cut off). Returns
 * 0 with b->tmpfd and b->rows.fd open and the rows file's state restored,
 * or -1 with nothing open and *why set: the run then starts over. */
static int resume_files(backup *b, int tablefd, const char *tmpname, const resume_point *rp,
                        const char **why)
{
    struct stat st;
    char *meta = NULL;
    char hex[JM_SHA256_HEX_SIZE];
    int fd = -1;
    *why = "its temporary directory is gone";
    if ((b->tmpfd = jm__fs_subdir(tablefd, tmpname, 0)) < 0)
        goto fail;
    /* A run that wrote the manifest died before the rename: it is
     * written again. */
    *why = "its manifest could not be removed";
    if (unlinkat(b->tmpfd, JM_BACKUP_MANIFEST_FILE, 0) != 0 && errno != ENOENT)
        goto fail;
    *why = "its meta.json is missing or changed";
    fd = jm__fs_open_regular(b->tmpfd, JM_BACKUP_META_FILE, &st);
    if (fd < 0 || st.st_size > JM_BACKUP_META_MAX_BYTES ||
        !(meta = cJSON_malloc((size_t)st.st_size + 1)))
        goto fail;
    jm_ctx_throttle(b->ctx, (int64_t)st.st_size);
    if (jm__fs_read_full(fd, meta, (size_t)st.st_size + 1) != (ssize_t)st.st_size)
        goto fail;
    jm__sha256_hex(meta, (size_t)st.st_size, hex);
    if (strcmp(hex, rp->meta_sha) != 0)
        goto fail;
    close(fd);
    jm__manifest_file *f = &b->manifest.files[0];
    snprintf(f->name, sizeof f->name, "%s", JM_BACKUP_META_FILE);
    f->bytes = (int64_t)st.st_size;
    memcpy(f->sha256, hex, sizeof hex);
    memcpy(b->meta_sha, hex, sizeof hex);
    b->meta_bytes = (int64_t)st.st_size;

    *why = "its rows file is missing, shorter than saved or changed";
    fd = openat(b->tmpfd, b->rows.name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < rp->rows_bytes ||
        ftruncate(fd, rp->rows_bytes) != 0 ||
        digest_prefix(b, fd, rp->rows_bytes, b->rows.buf, BK_WRITE_BUFFER_BYTES, &b->rows.sha))
        goto fail;
    jm__sha256 so_far = b->rows.sha;
    jm__sha256_final_hex(&so_far, hex);
    if (strcmp(hex, rp->rows_sha) != 0)
        goto fail;
    b->rows.fd = fd;
    b->rows.bytes = rp->rows_bytes;
    b->row_count = rp->rows;
    b->last_key = rp->last_key;
    b->resume_key = rp->last_key;
    b->resumed = 1;
    cJSON_free(meta);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    if (b->tmpfd >= 0)
        close(b->tmpfd);
    b->tmpfd = -1;
    cJSON_free(meta);
    return -1;
}

/* A new temporary directory (an earlier attempt's removed) with an empty
 * rows file. 0, or -1 with b->fail set. */
static int fresh_files(backup *b, int tablefd, const char *tmpname, const char *id)
{
    if (jm__fs_remove_tree(tablefd, tmpname) != 0 || jm__fs_remove_tree(tablefd, id) != 0) {
        /* A crashed or retried run of this job starts over. */
        b->fail = errno_text(b, "removing an earlier attempt of", id, errno);
        return -1;
    }
    if ((b->tmpfd = jm__fs_subdir(tablefd, tmpname, 1)) < 0) {
        b->fail = errno_text(b, "creating", tmpname, errno);
        return -1;
    }
    jm__sha256_init(&b->rows.sha);
    return create_rows(b);
}

static int backup_resource(void *self, const cJSON *p, char *buf, size_t buflen)
{
    (void)self;
    return jm__table_resource(p, "namespace_id", "table_name", buf, buflen);
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
    int renamed = 0, keep_tmp = 0;
    const char *tmpname = jm_ctx_strf(ctx, ".%s.tmp", id);
    resume_point rp;
    const char *why = NULL;

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
    } else if (rows_buffers(&b) == 0) {
        /* A run after a pause takes up its files; anything else starts
         * over. */
        if (resume_point_load(ctx, &rp) == 0 &&
            resume_files(&b, tablefd, tmpname, &rp, &why) != 0)
            jm_ctx_log(ctx, JM_LOG_WARN, "cannot resume the paused backup (%s): starting over",
                       why);
        if (!b.resumed)
            fresh_files(&b, tablefd, tmpname, id);
    }
    if (b.fail) {
        d = jm_decision_failed(jm_ctx_strf(ctx, "backup failed: %s", b.fail), NULL);
        goto done;
    }
    if (b.resumed)
        jm_ctx_log(ctx, JM_LOG_INFO, "resuming after %lld rows (%lld bytes written)",
                   (long long)b.row_count, (long long)b.rows.bytes);

    jm_host_export_cb cb = {on_meta, on_rows, &b};
    int rc = h->export_table(h->self, ns, table, &cb);
    if (rc == BK_STOP_CANCELLED) {
        d = jm_decision_cancelled("backup cancelled; nothing was kept");
        goto done;
    }
    if (rc == BK_STOP_PAUSED) {
        if (b.pause_rc != JM_OK) {
            d = jm__host_failure(ctx, b.pause_rc, "saving the backup's checkpoint", -1);
            goto done;
        }
        keep_tmp = 1;
        d = jm_decision_continue(jm_ctx_strf(ctx, "paused after %lld rows of %s.%s",
                                             (long long)b.row_count, ns, table),
                                 BK_RESUME_DELAY_MS);
        goto done;
    }
    if (rc == BK_STOP_CHANGED) {
        /* Its files no longer match the table: the next run starts over
         * (they are removed below, so it cannot resume). */
        d = jm_decision_continue(
            jm_ctx_strf(ctx, "the metadata of %s.%s changed while the backup was paused: "
                             "starting over",
                        ns, table),
            BK_RESUME_DELAY_MS);
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
    /* Nothing of a failed or cancelled backup stays behind; a paused one
     * keeps its files for the next run. */
    if (tablefd >= 0 && !renamed && !keep_tmp && jm__fs_remove_tree(tablefd, tmpname) != 0) {
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
    .version = JM_EXECUTOR_VERSION,
    .type = JM_BACKUP,
    .name = "backup",
    .cancellable = 1,
    .validate = backup_validate,
    .execute = backup_execute,
    .cancel = NULL,
    .priority_class = JM_CLASS_NORMAL,
    .resource = backup_resource,
};
