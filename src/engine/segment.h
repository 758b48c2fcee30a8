/*
 * The segment file format, encoded and decoded in memory (no I/O here, so
 * a fuzzer or a test can hand the decoder any buffer).
 *
 * Layout, all integers little-endian:
 *   magic    8 bytes  "JMSEG001"
 *   version  u32      JM_SEG_VERSION
 *   table_id i64
 *   rows     u64
 *   rows times, in strictly increasing key order:
 *     key i64, created_at i64, deleted_at i64 (0: live), doc_len u32, doc bytes
 *   crc      u32      CRC-32 of every byte before it
 * The decoder trusts nothing: it checks the magic, the version, the CRC,
 * every length against the bytes that remain, the row count, the key order
 * and that nothing follows the last row. Anything wrong is JM_EIO.
 */
#ifndef JM_ENGINE_SEGMENT_H
#define JM_ENGINE_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#define JM_SEG_MAGIC "JMSEG001"
#define JM_SEG_MAGIC_LEN 8
#define JM_SEG_VERSION 1u
/* magic, version, table id, row count */
#define JM_SEG_HEADER_SIZE (JM_SEG_MAGIC_LEN + 4 + 8 + 8)
/* key, created_at, deleted_at, doc length */
#define JM_SEG_ROW_HEADER_SIZE (8 + 8 + 8 + 4)
#define JM_SEG_TRAILER_SIZE 4
/* The largest document a segment may hold (the engine's document limit). */
#define JM_SEG_DOC_MAX (1024u * 1024u)

/* One row; `doc` points into the buffer the segment was decoded from. */
typedef struct jm__seg_row {
    int64_t key;
    int64_t created_at;
    int64_t deleted_at;
    const char *doc;
    uint32_t doc_len;
} jm__seg_row;

typedef struct jm__segment {
    int64_t table_id;
    size_t n;
    jm__seg_row *rows; /* n rows, by key */
    uint32_t crc;
    size_t size;       /* encoded bytes */
    uint8_t *owned;    /* the buffer rows point into, if the segment owns it */
} jm__segment;

/* Bytes needed to encode `n` rows whose documents total `doc_bytes`; 0 if
 * that does not fit in a size_t. */
size_t jm__segment_size(size_t n, size_t doc_bytes);

/* Streams rows into a caller's buffer of jm__segment_size() bytes. */
typedef struct jm__seg_writer {
    uint8_t *buf;
    size_t cap, pos;
    uint64_t want, have;
    int64_t last_key;
} jm__seg_writer;

void jm__segment_writer_init(jm__seg_writer *w, uint8_t *buf, size_t cap, int64_t table_id,
                             uint64_t rows);
/* JM_EINVAL if the row does not fit, breaks key order or is malformed. */
int jm__segment_writer_add(jm__seg_writer *w, const jm__seg_row *row);
/* Appends the CRC. JM_EINVAL unless exactly the announced rows were added
 * and the buffer is full. */
int jm__segment_writer_finish(jm__seg_writer *w, size_t *len, uint32_t *crc);

/* Encodes rows (in key order) into a new jm__malloc'd buffer. */
int jm__segment_encode(int64_t table_id, const jm__seg_row *rows, size_t n, uint8_t **out,
                       size_t *len);

/* Decodes and verifies buf[0..len). The rows point into `buf`, which must
 * outlive *out unless ownership is passed by setting (*out)->owned.
 * JM_EIO (with a message saying what is wrong) for anything malformed,
 * JM_EINVAL for NULL arguments, JM_ENOMEM. */
int jm__segment_decode(const uint8_t *buf, size_t len, jm__segment **out);

/* The row with `key`, or NULL. */
const jm__seg_row *jm__segment_find(const jm__segment *s, int64_t key);

/* Frees the segment and the buffer it owns. NULL is fine. */
void jm__segment_free(jm__segment *s);

#endif
