/*
 * libFuzzer target: the segment file reader (jm__segment_decode). The
 * first input byte chooses whether the last four bytes are first replaced
 * by the correct CRC-32, so the fuzzer gets past the checksum and reaches
 * the row parser. A decoded segment must be internally sane (keys
 * strictly increasing, documents inside the buffer) and re-encode to
 * exactly the same bytes; anything else must be JM_EIO.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "crc32.h"
#include "segment.h"
#include "jobmgr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int fix_crc = data[0] & 1;
    data++;
    size--;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (fix_crc && size >= JM_SEG_TRAILER_SIZE) {
        uint32_t c = jm__crc32(0, buf, size - JM_SEG_TRAILER_SIZE);
        for (int i = 0; i < 4; i++)
            buf[size - JM_SEG_TRAILER_SIZE + (size_t)i] = (uint8_t)(c >> (8 * i));
    }
    jm__segment *seg = NULL;
    int rc = jm__segment_decode(buf, size, &seg);
    if (rc == JM_OK) {
        for (size_t i = 0; i < seg->n; i++) {
            const jm__seg_row *r = &seg->rows[i];
            if (i > 0 && r->key <= seg->rows[i - 1].key)
                abort();
            if (r->doc_len > JM_SEG_DOC_MAX ||
                (r->doc_len && ((const uint8_t *)r->doc < buf ||
                                (const uint8_t *)r->doc + r->doc_len > buf + size)))
                abort();
            if (jm__segment_find(seg, r->key) != r)
                abort();
        }
        uint8_t *again = NULL;
        size_t len = 0;
        if (jm__segment_encode(seg->table_id, seg->rows, seg->n, &again, &len) != JM_OK ||
            len != size || memcmp(again, buf, size) != 0)
            abort();
        jm__free(again);
        jm__segment_free(seg);
    } else if (rc != JM_EIO || seg) {
        abort();
    }
    free(buf);
    return 0;
}
