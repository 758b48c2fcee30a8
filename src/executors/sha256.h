/*
 * SHA-256 (FIPS 180-4), small and self-contained, for the checksums in
 * backup manifests. It is not constant-time and is not meant for keys or
 * secrets: it detects corruption and tampering of files we wrote.
 */
#ifndef JM_SHA256_H
#define JM_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define JM_SHA256_DIGEST_SIZE 32
#define JM_SHA256_BLOCK_SIZE 64
/* 64 lower-case hex digits and a NUL. */
#define JM_SHA256_HEX_SIZE (2 * JM_SHA256_DIGEST_SIZE + 1)

typedef struct jm__sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    unsigned char block[JM_SHA256_BLOCK_SIZE];
    size_t used; /* bytes waiting in block */
} jm__sha256;

void jm__sha256_init(jm__sha256 *s);
/* Hashes n more bytes (n may be 0; data may then be NULL). */
void jm__sha256_update(jm__sha256 *s, const void *data, size_t n);
/* Writes the digest; s must be initialised again before reuse. */
void jm__sha256_final(jm__sha256 *s, unsigned char out[JM_SHA256_DIGEST_SIZE]);
/* Finishes and writes the digest as lower-case hex. */
void jm__sha256_final_hex(jm__sha256 *s, char out[JM_SHA256_HEX_SIZE]);
/* One call: the hex digest of data[0..n). */
void jm__sha256_hex(const void *data, size_t n, char out[JM_SHA256_HEX_SIZE]);

#endif
