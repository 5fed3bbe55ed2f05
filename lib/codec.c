#include "lib/codec.h"

#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"

void enc_init(struct enc *e)
{
	memset(e, 0, sizeof(*e));
}

void enc_free(struct enc *e)
{
	free(e->buf);
	enc_init(e);
}

uint8_t *enc_take(struct enc *e, size_t *len)
{
	uint8_t *buf = e->buf;

	*len = e->len;
	enc_init(e);
	return buf;
}

int enc_error(const struct enc *e)
{
	return e->err;
}

static bool enc_reserve(struct enc *e, size_t n)
{
	if (e->err)
		return false;
	if (n > SIZE_MAX - e->len) {
		e->err = TALLY_E_NOMEM;
		return false;
	}
	if (e->len + n <= e->cap)
		return true;
	size_t cap = e->cap ? e->cap : 64;
	while (cap < e->len + n)
		cap = cap > SIZE_MAX / 2 ? e->len + n : cap * 2;
	uint8_t *buf = realloc(e->buf, cap);
	if (!buf) {
		e->err = TALLY_E_NOMEM;
		return false;
	}
	e->buf = buf;
	e->cap = cap;
	return true;
}

void enc_fixed(struct enc *e, const void *p, size_t n)
{
	if (!n || !enc_reserve(e, n))
		return;
	memcpy(e->buf + e->len, p, n);
	e->len += n;
}

static void enc_le(struct enc *e, uint64_t v, size_t width)
{
	uint8_t b[8];

	for (size_t i = 0; i < width; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	enc_fixed(e, b, width);
}

void enc_u8(struct enc *e, uint8_t v) { enc_le(e, v, 1); }
void enc_u16(struct enc *e, uint16_t v) { enc_le(e, v, 2); }
void enc_u32(struct enc *e, uint32_t v) { enc_le(e, v, 4); }
void enc_u64(struct enc *e, uint64_t v) { enc_le(e, v, 8); }
void enc_bool(struct enc *e, bool v) { enc_le(e, v ? 1 : 0, 1); }

void enc_bytes(struct enc *e, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		if (!e->err)
			e->err = TALLY_E_TOOLONG;
		return;
	}
	enc_u32(e, (uint32_t)n);
	enc_fixed(e, p, n);
}

void enc_str(struct enc *e, const char *s)
{
	enc_bytes(e, s, strlen(s));
}

void dec_init(struct dec *d, const void *p, size_t len)
{
	d->p = p;
	d->len = len;
	d->off = 0;
	d->err = 0;
}

int dec_error(const struct dec *d)
{
	return d->err;
}

void dec_fail(struct dec *d, int err)
{
	if (!d->err)
		d->err = err;
}

size_t dec_remaining(const struct dec *d)
{
	return d->err ? 0 : d->len - d->off;
}

/* Returns a pointer to the next n bytes and consumes them, or NULL. */
static const uint8_t *dec_take(struct dec *d, size_t n)
{
	if (d->err)
		return NULL;
	if (n > d->len - d->off) {
		d->err = TALLY_E_TRUNCATED;
		return NULL;
	}
	const uint8_t *p = d->p + d->off;
	d->off += n;
	return p;
}

static uint64_t dec_le(struct dec *d, size_t width)
{
	const uint8_t *b = dec_take(d, width);
	uint64_t v = 0;

	if (!b)
		return 0;
	for (size_t i = 0; i < width; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

uint8_t dec_u8(struct dec *d) { return (uint8_t)dec_le(d, 1); }
uint16_t dec_u16(struct dec *d) { return (uint16_t)dec_le(d, 2); }
uint32_t dec_u32(struct dec *d) { return (uint32_t)dec_le(d, 4); }
uint64_t dec_u64(struct dec *d) { return dec_le(d, 8); }

bool dec_bool(struct dec *d)
{
	uint8_t v = dec_u8(d);

	if (v > 1)
		dec_fail(d, TALLY_E_RANGE);
	return v == 1;
}

void dec_fixed(struct dec *d, void *out, size_t n)
{
	const uint8_t *p = dec_take(d, n);

	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

const uint8_t *dec_bytes(struct dec *d, size_t *n, size_t max)
{
	uint32_t len = dec_u32(d);

	*n = 0;
	if (d->err)
		return NULL;
	if (len > max) {
		d->err = TALLY_E_TOOLONG;
		return NULL;
	}
	const uint8_t *p = dec_take(d, len);
	if (p)
		*n = len;
	return p;
}

void dec_str(struct dec *d, char *out, size_t max)
{
	size_t n;
	const uint8_t *p = dec_bytes(d, &n, max);

	out[0] = '\0';
	if (!p)
		return;
	if (memchr(p, '\0', n)) {
		dec_fail(d, TALLY_E_ENCODING);
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

int dec_finish(struct dec *d)
{
	if (d->err)
		return d->err;
	if (d->off != d->len)
		return TALLY_E_TRAILING;
	return 0;
}

void hex_encode(const void *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *s, void *out, size_t n)
{
	uint8_t *b = out;

	if (strlen(s) != 2 * n)
		return TALLY_E_ENCODING;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return TALLY_E_ENCODING;
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
