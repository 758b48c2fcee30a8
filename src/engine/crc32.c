/*
 * CRC-32 with the reflected polynomial 0xEDB88320, one table lookup per
 * byte. The table is built once per process on first use (pthread_once),
 * so no caller has to initialise anything.
 */
#include "crc32.h"

#include <pthread.h>

#define CRC32_POLY 0xEDB88320u
#define CRC32_TABLE_SIZE 256

static uint32_t table[CRC32_TABLE_SIZE];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void)
{
    for (uint32_t i = 0; i < CRC32_TABLE_SIZE; i++) {
        uint32_t c = i;
        for (int bit = 0; bit < 8; bit++)
            c = (c & 1u) ? (c >> 1) ^ CRC32_POLY : c >> 1;
        table[i] = c;
    }
}

uint32_t jm__crc32(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&table_once, build_table);
    const uint8_t *p = buf;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}
