/* Canonical binary encoding: fixed field order, fixed-width little-endian
 * integers, byte strings prefixed by a u32 length. One object has exactly one
 * encoding, so hashes and signatures over it are the same on every node.
 *
 * Encoders grow a buffer and remember an allocation failure instead of
 * returning it from every call; check enc_error() once at the end.
 * Decoders are strict: the first error sticks, later reads return zeros, and
 * dec_finish() fails on any error or on trailing bytes. */
#ifndef TALLY_CODEC_H
#define TALLY_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct enc {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int err;              /* first error (TALLY_E_NOMEM), sticky */
};

void enc_init(struct enc *e);
void enc_free(struct enc *e);
/* Hand the buffer to the caller (who frees it); the encoder is reset. */
uint8_t *enc_take(struct enc *e, size_t *len);
int enc_error(const struct enc *e);

void enc_u8(struct enc *e, uint8_t v);
void enc_u16(struct enc *e, uint16_t v);
void enc_u32(struct enc *e, uint32_t v);
void enc_u64(struct enc *e, uint64_t v);
void enc_bool(struct enc *e, bool v);
/* Raw bytes of a fixed-size field (a hash, a key): no length prefix. */
void enc_fixed(struct enc *e, const void *p, size_t n);
/* A u32 length, then the bytes. */
void enc_bytes(struct enc *e, const void *p, size_t n);
/* A string as enc_bytes without its terminating NUL. */
void enc_str(struct enc *e, const char *s);

struct dec {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;              /* first error, sticky */
};

void dec_init(struct dec *d, const void *p, size_t len);
int dec_error(const struct dec *d);
/* Record an error found by the caller (e.g. a value out of range). */
void dec_fail(struct dec *d, int err);
size_t dec_remaining(const struct dec *d);

uint8_t dec_u8(struct dec *d);
uint16_t dec_u16(struct dec *d);
uint32_t dec_u32(struct dec *d);
uint64_t dec_u64(struct dec *d);
/* Only 0 and 1 are canonical booleans. */
bool dec_bool(struct dec *d);
void dec_fixed(struct dec *d, void *out, size_t n);
/* A length-prefixed byte string of at most max bytes, returned as a view into
 * the input (not copied). */
const uint8_t *dec_bytes(struct dec *d, size_t *n, size_t max);
/* A length-prefixed string of at most max bytes into out[max + 1], NUL
 * terminated. Embedded NULs are rejected. */
void dec_str(struct dec *d, char *out, size_t max);
/* 0 when every byte was consumed without error, else the error. */
int dec_finish(struct dec *d);

/* Lowercase hex helpers for ids and keys in JSON and on the command line. */
void hex_encode(const void *p, size_t n, char *out /* 2n + 1 */);
/* Strict: exactly 2n hex digits. Returns 0 or TALLY_E_ENCODING. */
int hex_decode(const char *s, void *out, size_t n);

#endif
