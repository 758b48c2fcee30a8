/*
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial), table driven. It guards
 * segment files against torn writes and bit rot; it is not a defence
 * against deliberate tampering.
 */
#ifndef JM_ENGINE_CRC32_H
#define JM_ENGINE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues `crc` (0 to start) over buf[0..len). */
uint32_t jm__crc32(uint32_t crc, const void *buf, size_t len);

#endif
