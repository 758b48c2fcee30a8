/*
 * Segment files on disk: naming, the crash-safe write protocol (temporary
 * name, fsync, rename, directory fsync), reading and verifying, unlinking
 * after a commit, and collecting the orphans a crash leaves behind. What a
 * segment contains is segment.c's business; when files are written is the
 * business of flush, purge and compact.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "engine_internal.h"

int jm__eng_seg_path(const jm_engine *e, int64_t id, int tmp, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/" JM_ENG_SEG_PREFIX "%lld" JM_ENG_SEG_SUFFIX "%s", e->dir,
                     (long long)id, tmp ? JM_ENG_TMP_SUFFIX : "");
    if (n < 0 || (size_t)n >= len)
        return jm_host_error(JM_EINVAL, "segment path too long");
    return JM_OK;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Makes a rename in the directory durable. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return jm_host_error(JM_EIO, "opening %s: %s", dir, strerror(errno));
    int rc = fsync(fd) == 0 ? JM_OK : jm_host_error(JM_EIO, "fsync %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int jm__eng_write_file(jm_engine *e, int64_t id, const uint8_t *buf, size_t len)
{
    char tmp[JM_ENG_PATH_MAX], final[JM_ENG_PATH_MAX];
    int rc;
    if ((rc = jm__eng_seg_path(e, id, 1, tmp, sizeof tmp)) ||
        (rc = jm__eng_seg_path(e, id, 0, final, sizeof final)))
        return rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, JM_ENG_FILE_MODE);
    if (fd < 0)
        return jm_host_error(JM_EIO, "creating %s: %s", tmp, strerror(errno));
    if (write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
        rc = jm_host_error(JM_EIO, "writing %s: %s", tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    if (close(fd) != 0) {
        rc = jm_host_error(JM_EIO, "closing %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, final) != 0) {
        rc = jm_host_error(JM_EIO, "renaming %s: %s", tmp, strerror(errno));
        goto fail;
    }
    /* The catalog will point at this file once the transaction commits: its
     * name must be on disk first. */
    if ((rc = sync_dir(e->dir))) {
        unlink(final);
        return rc;
    }
    return JM_OK;
fail:
    unlink(tmp);
    return rc;
}

int jm__eng_read_fd(int fd, const char *path, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return jm_host_error(JM_EIO, "stat %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return jm_host_error(JM_EIO, "%s is not a regular file", path);
    if ((uint64_t)sb.st_size > SIZE_MAX - 1)
        return jm_host_error(JM_EIO, "%s is too large", path);
    size_t size = (size_t)sb.st_size;
    uint8_t *buf = jm__malloc(size ? size : 1);
    if (!buf)
        return jm_host_error(JM_ENOMEM, "out of memory reading %s", path);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, buf + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = r < 0 ? errno : 0;
            jm__free(buf);
            return jm_host_error(JM_EIO, "reading %s: %s", path,
                                 err ? strerror(err) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    *out = buf;
    *len = size;
    return JM_OK;
}

int jm__eng_adopt_segment(uint8_t *buf, size_t len, const char *path, int64_t table_id,
                          jm__segment **out)
{
    *out = NULL;
    jm__segment *s = NULL;
    int rc = jm__segment_decode(buf, len, &s);
    if (rc) {
        jm__free(buf);
        /* Keep the decoder's reason, and say which file it is about. */
        char why[512];
        snprintf(why, sizeof why, "%s", jm_last_error());
        return jm_host_error(rc, "%s: %s", path, why);
    }
    s->owned = buf;
    if (s->table_id != table_id) {
        jm__segment_free(s);
        return jm_host_error(JM_EIO, "%s belongs to table %lld, not %lld", path,
                             (long long)s->table_id, (long long)table_id);
    }
    *out = s;
    return JM_OK;
}

int jm__eng_load_segment(jm_engine *e, int64_t id, int64_t table_id, jm__segment **out)
{
    *out = NULL;
    char path[JM_ENG_PATH_MAX];
    int rc = jm__eng_seg_path(e, id, 0, path, sizeof path);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return jm_host_error(JM_EIO, "opening segment %s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = jm__eng_read_fd(fd, path, &buf, &len);
    close(fd);
    return rc ? rc : jm__eng_adopt_segment(buf, len, path, table_id, out);
}

void jm__eng_unlink_segments(jm_engine *e, const jm__eng_ids *ids)
{
    char path[JM_ENG_PATH_MAX];
    for (size_t i = 0; i < ids->n; i++)
        if (jm__eng_seg_path(e, ids->v[i], 0, path, sizeof path) == JM_OK)
            unlink(path);
}

/* --- orphans ------------------------------------------------------------- */

/* Parses "seg-<id>.jms" (exactly); 1 and *id if it matches. */
static int parse_seg_name(const char *name, int64_t *id)
{
    size_t plen = strlen(JM_ENG_SEG_PREFIX);
    if (strncmp(name, JM_ENG_SEG_PREFIX, plen) != 0)
        return 0;
    const char *p = name + plen;
    if (*p < '0' || *p > '9')
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || strcmp(end, JM_ENG_SEG_SUFFIX) != 0)
        return 0;
    *id = v;
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char sql_segment_exists[] = "SELECT 1 FROM segments WHERE id = ?1";

static int is_recorded(jm_engine *e, int64_t id, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = jm__eng_stmt(e, sql_segment_exists, &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return jm__eng_sqlite_err(e->db, rc, "checking a segment");
    *out = rc == SQLITE_ROW;
    return JM_OK;
}

int jm__eng_collect_orphans(jm_engine *e)
{
    DIR *d = opendir(e->dir);
    if (!d)
        return jm_host_error(JM_EIO, "opening %s: %s", e->dir, strerror(errno));
    int rc = JM_OK;
    char path[JM_ENG_PATH_MAX];
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        const char *name = ent->d_name;
        if (strncmp(name, JM_ENG_SEG_PREFIX, strlen(JM_ENG_SEG_PREFIX)) != 0)
            continue;
        int64_t id = 0;
        int orphan;
        if (ends_with(name, JM_ENG_TMP_SUFFIX)) {
            /* A segment whose write never finished. */
            orphan = 1;
        } else if (parse_seg_name(name, &id)) {
            /* Written but never committed, or replaced and not yet unlinked. */
            int recorded = 0;
            if ((rc = is_recorded(e, id, &recorded)))
                break;
            orphan = !recorded;
        } else {
            continue;
        }
        if (!orphan)
            continue;
        int n = snprintf(path, sizeof path, "%s/%s", e->dir, name);
        if (n < 0 || (size_t)n >= sizeof path)
            continue;
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = jm_host_error(JM_EIO, "removing orphan %s: %s", path, strerror(errno));
            break;
        }
    }
    closedir(d);
    return rc;
}
