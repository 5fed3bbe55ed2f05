/* A keyed hash for in-memory tables whose keys a stranger chooses (public
 * keys, client addresses, transaction ids): SipHash-2-4 with a 64-bit output
 * (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012), through
 * OpenSSL 3's EVP_MAC "SIPHASH", keyed with 16 random bytes drawn once per
 * process. Without the key nobody can compute which inputs collide, so nobody
 * can flood one bucket of a table and make its lookups linear.
 *
 * The values differ from one process to the next: use them for tables only,
 * never for anything stored, sent or compared across processes. */
#ifndef TALLY_KEYED_HASH_H
#define TALLY_KEYED_HASH_H

#include <stddef.h>
#include <stdint.h>

#define KEYED_HASH_KEY_LEN 16

/* Draws the per-process key (once; later calls do nothing). 0, or
 * TALLY_E_CRYPTO when OpenSSL has no random bytes or no SipHash. Call it at
 * start-up so a failure stops the program there; keyed_hash() calls it too. */
int keyed_hash_init(void);

/* SipHash-2-4-64 of p[0..n) under the per-process key. Thread-safe. Should
 * OpenSSL fail after keyed_hash_init() succeeded (out of memory), the value
 * is still a function of the key and the bytes, only slower to find
 * collisions for (FNV-1a over key and bytes), so a table keeps working. */
uint64_t keyed_hash(const void *p, size_t n);

/* The same function under an explicit key, for test vectors. 0 or
 * TALLY_E_CRYPTO. */
int keyed_hash_with(const uint8_t key[KEYED_HASH_KEY_LEN], const void *p, size_t n,
		    uint64_t *out);

#endif
