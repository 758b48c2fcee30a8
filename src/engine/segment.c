/*
 * Segment encoding and decoding, in memory. Reading and writing files, and
 * deciding which rows go into a segment, belong to the engine files that
 * call this one.
 */
#include "segment.h"

#include <string.h>

#include "alloc.h"
#include "crc32.h"
#include "jobmgr/host.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Two's complement through uint64_t: defined behaviour for every value. */
static int64_t to_i64(uint64_t v)
{
    return v <= (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
}

size_t jm__segment_size(size_t n, size_t doc_bytes)
{
    size_t fixed = JM_SEG_HEADER_SIZE + JM_SEG_TRAILER_SIZE;
    if (n > (SIZE_MAX - fixed) / JM_SEG_ROW_HEADER_SIZE)
        return 0;
    size_t total = fixed + n * JM_SEG_ROW_HEADER_SIZE;
    if (doc_bytes > SIZE_MAX - total)
        return 0;
    return total + doc_bytes;
}

void jm__segment_writer_init(jm__seg_writer *w, uint8_t *buf, size_t cap, int64_t table_id,
                             uint64_t rows)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    w->want = rows;
    w->last_key = INT64_MIN;
    if (cap < JM_SEG_HEADER_SIZE) {
        w->pos = cap + 1; /* poisons the writer: every later call fails */
        return;
    }
    memcpy(buf, JM_SEG_MAGIC, JM_SEG_MAGIC_LEN);
    put_u32(buf + JM_SEG_MAGIC_LEN, JM_SEG_VERSION);
    put_u64(buf + JM_SEG_MAGIC_LEN + 4, (uint64_t)table_id);
    put_u64(buf + JM_SEG_MAGIC_LEN + 12, rows);
    w->pos = JM_SEG_HEADER_SIZE;
}

int jm__segment_writer_add(jm__seg_writer *w, const jm__seg_row *row)
{
    if (w->pos > w->cap || w->have >= w->want)
        return jm_host_error(JM_EINVAL, "segment writer: more rows than announced");
    if (row->key <= w->last_key)
        return jm_host_error(JM_EINVAL, "segment writer: key %lld out of order",
                             (long long)row->key);
    if (row->doc_len > JM_SEG_DOC_MAX || (row->doc_len && !row->doc))
        return jm_host_error(JM_EINVAL, "segment writer: bad document for key %lld",
                             (long long)row->key);
    size_t need = (size_t)JM_SEG_ROW_HEADER_SIZE + row->doc_len;
    if (w->cap - w->pos < need + JM_SEG_TRAILER_SIZE)
        return jm_host_error(JM_EINVAL, "segment writer: buffer too small");
    uint8_t *p = w->buf + w->pos;
    put_u64(p, (uint64_t)row->key);
    put_u64(p + 8, (uint64_t)row->created_at);
    put_u64(p + 16, (uint64_t)row->deleted_at);
    put_u32(p + 24, row->doc_len);
    if (row->doc_len)
        memcpy(p + JM_SEG_ROW_HEADER_SIZE, row->doc, row->doc_len);
    w->pos += need;
    w->have++;
    w->last_key = row->key;
    return JM_OK;
}

int jm__segment_writer_finish(jm__seg_writer *w, size_t *len, uint32_t *crc)
{
    if (w->pos > w->cap || w->have != w->want || w->cap - w->pos != JM_SEG_TRAILER_SIZE)
        return jm_host_error(JM_EINVAL, "segment writer: %llu of %llu rows, size mismatch",
                             (unsigned long long)w->have, (unsigned long long)w->want);
    uint32_t c = jm__crc32(0, w->buf, w->pos);
    put_u32(w->buf + w->pos, c);
    w->pos += JM_SEG_TRAILER_SIZE;
    if (len)
        *len = w->pos;
    if (crc)
        *crc = c;
    return JM_OK;
}

int jm__segment_encode(int64_t table_id, const jm__seg_row *rows, size_t n, uint8_t **out,
                       size_t *len)
{
    if (!out || !len || (n && !rows))
        return jm_host_error(JM_EINVAL, "segment encode: NULL argument");
    *out = NULL;
    size_t docs = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].doc_len > SIZE_MAX - docs)
            return jm_host_error(JM_EINVAL, "segment encode: documents too large");
        docs += rows[i].doc_len;
    }
    size_t size = jm__segment_size(n, docs);
    if (size == 0)
        return jm_host_error(JM_EINVAL, "segment encode: too large");
    uint8_t *buf = jm__malloc(size);
    if (!buf)
        return jm_host_error(JM_ENOMEM, "out of memory encoding a segment");
    jm__seg_writer w;
    jm__segment_writer_init(&w, buf, size, table_id, n);
    int rc = JM_OK;
    for (size_t i = 0; i < n && rc == JM_OK; i++)
        rc = jm__segment_writer_add(&w, &rows[i]);
    if (rc == JM_OK)
        rc = jm__segment_writer_finish(&w, len, NULL);
    if (rc) {
        jm__free(buf);
        return rc;
    }
    *out = buf;
    return JM_OK;
}

int jm__segment_decode(const uint8_t *buf, size_t len, jm__segment **out)
{
    if (!out || (!buf && len))
        return jm_host_error(JM_EINVAL, "segment decode: NULL argument");
    *out = NULL;
    if (len < JM_SEG_HEADER_SIZE + JM_SEG_TRAILER_SIZE)
        return jm_host_error(JM_EIO, "segment: truncated (%zu bytes, header needs %d)", len,
                             JM_SEG_HEADER_SIZE + JM_SEG_TRAILER_SIZE);
    if (memcmp(buf, JM_SEG_MAGIC, JM_SEG_MAGIC_LEN) != 0)
        return jm_host_error(JM_EIO, "segment: bad magic (not a segment file)");
    uint32_t version = get_u32(buf + JM_SEG_MAGIC_LEN);
    if (version != JM_SEG_VERSION)
        return jm_host_error(JM_EIO, "segment: unsupported format version %u", version);
    size_t body = len - JM_SEG_TRAILER_SIZE;
    uint32_t stored = get_u32(buf + body);
    uint32_t actual = jm__crc32(0, buf, body);
    if (stored != actual)
        return jm_host_error(JM_EIO, "segment: checksum mismatch (stored %08x, computed %08x)",
                             stored, actual);
    int64_t table_id = to_i64(get_u64(buf + JM_SEG_MAGIC_LEN + 4));
    uint64_t count = get_u64(buf + JM_SEG_MAGIC_LEN + 12);
    /* Every row takes at least its header: a larger count cannot be true,
     * and checking it first keeps a hostile count from sizing an allocation. */
    if (count > (body - JM_SEG_HEADER_SIZE) / JM_SEG_ROW_HEADER_SIZE)
        return jm_host_error(JM_EIO, "segment: row count %llu exceeds the file size",
                             (unsigned long long)count);
    jm__segment *s = jm__calloc(1, sizeof *s);
    jm__seg_row *rows = jm__calloc(count ? (size_t)count : 1, sizeof *rows);
    if (!s || !rows) {
        jm__free(s);
        jm__free(rows);
        return jm_host_error(JM_ENOMEM, "out of memory decoding a segment");
    }
    size_t pos = JM_SEG_HEADER_SIZE;
    int rc = JM_OK;
    for (uint64_t i = 0; i < count; i++) {
        if (body - pos < JM_SEG_ROW_HEADER_SIZE) {
            rc = jm_host_error(JM_EIO, "segment: row %llu truncated", (unsigned long long)i);
            goto fail;
        }
        const uint8_t *p = buf + pos;
        jm__seg_row *r = &rows[i];
        r->key = to_i64(get_u64(p));
        r->created_at = to_i64(get_u64(p + 8));
        r->deleted_at = to_i64(get_u64(p + 16));
        r->doc_len = get_u32(p + 24);
        pos += JM_SEG_ROW_HEADER_SIZE;
        if (r->doc_len > JM_SEG_DOC_MAX || r->doc_len > body - pos) {
            rc = jm_host_error(JM_EIO, "segment: row %llu document length %u out of bounds",
                               (unsigned long long)i, r->doc_len);
            goto fail;
        }
        /* The writer's rule: increasing, starting above INT64_MIN. */
        if (r->key <= (i > 0 ? rows[i - 1].key : INT64_MIN)) {
            rc = jm_host_error(JM_EIO, "segment: row %llu key %lld out of order",
                               (unsigned long long)i, (long long)r->key);
            goto fail;
        }
        if (r->created_at < 0 || r->deleted_at < 0) {
            rc = jm_host_error(JM_EIO, "segment: row %llu has a negative time",
                               (unsigned long long)i);
            goto fail;
        }
        r->doc = (const char *)(buf + pos);
        pos += r->doc_len;
    }
    if (pos != body) {
        rc = jm_host_error(JM_EIO, "segment: %zu unexpected bytes after the last row",
                           body - pos);
        goto fail;
    }
    s->table_id = table_id;
    s->n = (size_t)count;
    s->rows = rows;
    s->crc = stored;
    s->size = len;
    *out = s;
    return JM_OK;
fail:
    jm__free(rows);
    jm__free(s);
    return rc;
}

const jm__seg_row *jm__segment_find(const jm__segment *s, int64_t key)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->rows[mid].key < key)
            lo = mid + 1;
        else if (s->rows[mid].key > key)
            hi = mid;
        else
            return &s->rows[mid];
    }
    return NULL;
}

void jm__segment_free(jm__segment *s)
{
    if (!s)
        return;
    jm__free(s->rows);
    jm__free(s->owned);
    jm__free(s);
}
