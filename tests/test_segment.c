/*
 * The segment format (src/engine/segment.c) and its CRC-32: round trips,
 * and a decoder that rejects every single-byte corruption, every
 * truncation and hostile lengths without reading out of bounds (the ASan
 * build checks the latter).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "crc32.h"
#include "segment.h"
#include "jobmgr.h"

static const char *const docs[] = {"{\"a\":1}", "[1,2,3]", "\"text\"", "{}"};
#define NDOCS (sizeof docs / sizeof *docs)

static void sample_rows(jm__seg_row *rows)
{
    for (size_t i = 0; i < NDOCS; i++) {
        rows[i].key = (int64_t)(i * 3 + 1);
        rows[i].created_at = 1700000000000LL + (int64_t)i;
        rows[i].deleted_at = i == 2 ? 1700000000500LL : 0;
        rows[i].doc = docs[i];
        rows[i].doc_len = (uint32_t)strlen(docs[i]);
    }
}

static void encode_sample(uint8_t **buf, size_t *len)
{
    jm__seg_row rows[NDOCS];
    sample_rows(rows);
    assert_int_equal(jm__segment_encode(42, rows, NDOCS, buf, len), JM_OK);
}

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

/* After editing a buffer, make its CRC right again so the structural
 * checks, not the checksum, have to catch the edit. */
static void fix_crc(uint8_t *buf, size_t len)
{
    put_u32(buf + len - JM_SEG_TRAILER_SIZE, jm__crc32(0, buf, len - JM_SEG_TRAILER_SIZE));
}

static void expect_eio(const uint8_t *buf, size_t len)
{
    jm__segment *s = NULL;
    assert_int_equal(jm__segment_decode(buf, len, &s), JM_EIO);
    assert_null(s);
    assert_true(strlen(jm_last_error()) > 0);
}

static void test_crc32_known_value(void **state)
{
    (void)state;
    assert_int_equal(jm__crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(jm__crc32(0, "", 0), 0);
    /* Continuing over pieces equals one pass. */
    uint32_t c = jm__crc32(0, "12345", 5);
    assert_int_equal(jm__crc32(c, "6789", 4), 0xCBF43926u);
}

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t *buf = NULL;
    size_t len = 0;
    encode_sample(&buf, &len);
    size_t docs_len = 0;
    for (size_t i = 0; i < NDOCS; i++)
        docs_len += strlen(docs[i]);
    assert_int_equal(len, jm__segment_size(NDOCS, docs_len));
    assert_memory_equal(buf, JM_SEG_MAGIC, JM_SEG_MAGIC_LEN);

    jm__segment *s = NULL;
    assert_int_equal(jm__segment_decode(buf, len, &s), JM_OK);
    assert_int_equal(s->table_id, 42);
    assert_int_equal(s->n, NDOCS);
    assert_int_equal(s->size, len);
    jm__seg_row want[NDOCS];
    sample_rows(want);
    for (size_t i = 0; i < NDOCS; i++) {
        assert_int_equal(s->rows[i].key, want[i].key);
        assert_int_equal(s->rows[i].created_at, want[i].created_at);
        assert_int_equal(s->rows[i].deleted_at, want[i].deleted_at);
        assert_int_equal(s->rows[i].doc_len, want[i].doc_len);
        assert_memory_equal(s->rows[i].doc, want[i].doc, want[i].doc_len);
        const jm__seg_row *f = jm__segment_find(s, want[i].key);
        assert_non_null(f);
        assert_int_equal(f->key, want[i].key);
    }
    assert_null(jm__segment_find(s, 2));
    assert_null(jm__segment_find(s, 0));
    assert_null(jm__segment_find(s, 1000));
    jm__segment_free(s);
    jm__free(buf);
}

static void test_empty_segment(void **state)
{
    (void)state;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(jm__segment_encode(7, NULL, 0, &buf, &len), JM_OK);
    assert_int_equal(len, JM_SEG_HEADER_SIZE + JM_SEG_TRAILER_SIZE);
    jm__segment *s = NULL;
    assert_int_equal(jm__segment_decode(buf, len, &s), JM_OK);
    assert_int_equal(s->n, 0);
    assert_null(jm__segment_find(s, 1));
    jm__segment_free(s);
    jm__free(buf);
}

static void test_every_byte_corruption_detected(void **state)
{
    (void)state;
    uint8_t *buf = NULL;
    size_t len = 0;
    encode_sample(&buf, &len);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    static const uint8_t flips[] = {0x01, 0x80, 0xff, 0x5a};
    for (size_t i = 0; i < len; i++) {
        for (size_t f = 0; f < sizeof flips; f++) {
            memcpy(copy, buf, len);
            copy[i] ^= flips[f];
            expect_eio(copy, len);
        }
    }
    free(copy);
    jm__free(buf);
}

static void test_every_truncation_detected(void **state)
{
    (void)state;
    uint8_t *buf = NULL;
    size_t len = 0;
    encode_sample(&buf, &len);
    for (size_t n = 0; n < len; n++) {
        /* An exact-size copy, so ASan catches any read past the end. */
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        expect_eio(copy, n);
        free(copy);
    }
    /* A byte too many is wrong too. */
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    longer[len] = 0;
    expect_eio(longer, len + 1);
    free(longer);
    jm__free(buf);
}

/* Offsets in the sample: the header, then the first row. */
#define OFF_VERSION JM_SEG_MAGIC_LEN
#define OFF_COUNT (JM_SEG_MAGIC_LEN + 12)
#define OFF_ROW0 JM_SEG_HEADER_SIZE
#define OFF_ROW0_DOCLEN (OFF_ROW0 + 24)

static void test_hostile_fields_with_valid_crc(void **state)
{
    (void)state;
    uint8_t *buf = NULL;
    size_t len = 0;
    encode_sample(&buf, &len);
    uint8_t *c = malloc(len);
    assert_non_null(c);

    /* A row count far beyond the file: refused before any allocation. */
    static const uint64_t counts[] = {UINT64_MAX, (uint64_t)SIZE_MAX / 2, 1u << 30, NDOCS + 1,
                                      NDOCS - 1, 0};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        memcpy(c, buf, len);
        put_u64(c + OFF_COUNT, counts[i]);
        fix_crc(c, len);
        expect_eio(c, len);
    }
    /* Document lengths that run past the end or exceed the limit. */
    static const uint32_t doclens[] = {UINT32_MAX, JM_SEG_DOC_MAX + 1, 10000, 8};
    for (size_t i = 0; i < sizeof doclens / sizeof *doclens; i++) {
        memcpy(c, buf, len);
        put_u32(c + OFF_ROW0_DOCLEN, doclens[i]);
        fix_crc(c, len);
        expect_eio(c, len);
    }
    /* Another format version. */
    memcpy(c, buf, len);
    put_u32(c + OFF_VERSION, JM_SEG_VERSION + 1);
    fix_crc(c, len);
    expect_eio(c, len);
    /* Keys out of order (the second row's key equals the first's). */
    memcpy(c, buf, len);
    size_t row1 = OFF_ROW0 + JM_SEG_ROW_HEADER_SIZE + strlen(docs[0]);
    memcpy(c + row1, c + OFF_ROW0, 8);
    fix_crc(c, len);
    expect_eio(c, len);
    /* The smallest key, which the writer refuses (it could not re-encode). */
    memcpy(c, buf, len);
    put_u64(c + OFF_ROW0, (uint64_t)INT64_MIN);
    fix_crc(c, len);
    expect_eio(c, len);
    /* A negative time. */
    memcpy(c, buf, len);
    put_u64(c + OFF_ROW0 + 8, (uint64_t)-5);
    fix_crc(c, len);
    expect_eio(c, len);
    free(c);
    jm__free(buf);
}

static void test_writer_and_bad_arguments(void **state)
{
    (void)state;
    jm__segment *s = NULL;
    assert_int_equal(jm__segment_decode(NULL, 10, &s), JM_EINVAL);
    assert_int_equal(jm__segment_decode((const uint8_t *)"x", 1, NULL), JM_EINVAL);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(jm__segment_encode(1, NULL, 1, &buf, &len), JM_EINVAL);
    assert_int_equal(jm__segment_encode(1, NULL, 0, NULL, &len), JM_EINVAL);

    /* Keys must increase. */
    jm__seg_row rows[2] = {{5, 1, 0, "1", 1}, {5, 1, 0, "2", 1}};
    assert_int_equal(jm__segment_encode(1, rows, 2, &buf, &len), JM_EINVAL);
    assert_null(buf);

    /* A writer refuses more rows than announced and a short finish. */
    size_t size = jm__segment_size(1, 1);
    uint8_t *mem = malloc(size);
    assert_non_null(mem);
    jm__seg_writer w;
    jm__segment_writer_init(&w, mem, size, 1, 1);
    assert_int_equal(jm__segment_writer_finish(&w, &len, NULL), JM_EINVAL);
    assert_int_equal(jm__segment_writer_add(&w, &rows[0]), JM_OK);
    rows[1].key = 6;
    assert_int_equal(jm__segment_writer_add(&w, &rows[1]), JM_EINVAL);
    uint32_t crc = 0;
    assert_int_equal(jm__segment_writer_finish(&w, &len, &crc), JM_OK);
    assert_int_equal(len, size);
    assert_int_equal(crc, jm__crc32(0, mem, size - JM_SEG_TRAILER_SIZE));
    /* A buffer too small for the header poisons the writer. */
    jm__segment_writer_init(&w, mem, 3, 1, 0);
    assert_int_equal(jm__segment_writer_finish(&w, &len, NULL), JM_EINVAL);
    free(mem);
    assert_int_equal(jm__segment_size(SIZE_MAX / 2, 0), 0);
    jm__segment_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_known_value),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty_segment),
        cmocka_unit_test(test_every_byte_corruption_detected),
        cmocka_unit_test(test_every_truncation_detected),
        cmocka_unit_test(test_hostile_fields_with_valid_crc),
        cmocka_unit_test(test_writer_and_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
