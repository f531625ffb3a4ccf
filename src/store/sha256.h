/* sha256.h -- SHA-256 (FIPS 180-4), streaming, self-contained.
 *
 * The store names every blob by the SHA-256 of its bytes (Ollama's `sha256:<hex>`), so it
 * hashes whole model files while copying them; hence the streaming form. Pure: no I/O,
 * no allocation. Not thread-safe per context (one struct sha256 per stream); distinct
 * contexts may be used from any threads. */
#ifndef BELLOWS_SHA256_H
#define BELLOWS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32     /* digest bytes */
#define SHA256_HEX_LEN 64 /* hex characters, without the NUL */

/* Caller-provided storage; fields are private to sha256.c. */
struct sha256 {
    uint32_t h[8];
    uint64_t n_bytes;     /* total bytes fed so far */
    uint8_t buf[64];      /* partial block */
    size_t buf_len;
};

void sha256_init(struct sha256 *s);
/* Feed len bytes (len may be 0; data may be NULL then). */
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* Write the 32-byte digest to out. The context must be re-initialised before reuse. */
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);

/* Lowercase hex of a digest: 64 characters plus a NUL into hex. */
void sha256_hex(const uint8_t digest[SHA256_LEN], char hex[SHA256_HEX_LEN + 1]);

/* One-shot convenience: hex of the SHA-256 of data. */
void sha256_hex_of(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);

#endif
