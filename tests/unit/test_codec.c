/* Canonical encoding (lib/codec.c): exact bytes, round trips, and strict
 * decoding of every malformed input. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/codec.h"
#include "lib/errors.h"

/* A composite object using every field type, as the ledger's objects do. */
#define SAMPLE_NAME_MAX 16
#define SAMPLE_BLOB_MAX 8

struct sample {
	uint8_t version;
	uint16_t port;
	uint32_t count;
	uint64_t amount;
	bool flag;
	uint8_t id[4];
	uint8_t blob[SAMPLE_BLOB_MAX];
	size_t blob_len;
	char name[SAMPLE_NAME_MAX + 1];
};

static const struct sample sample_value = {
	.version = 1,
	.port = 0xbeef,
	.count = 0x01020304,
	.amount = 0x1122334455667788ull,
	.flag = true,
	.id = { 0xde, 0xad, 0xbe, 0xef },
	.blob = { 9, 8, 7 },
	.blob_len = 3,
	.name = "tally",
};

/* Its encoding, written out by hand: the format is the bytes, not the code. */
static const uint8_t sample_bytes[] = {
	0x01,                                           /* version */
	0xef, 0xbe,                                     /* port, LE */
	0x04, 0x03, 0x02, 0x01,                         /* count, LE */
	0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* amount, LE */
	0x01,                                           /* flag */
	0xde, 0xad, 0xbe, 0xef,                         /* id, fixed */
	0x03, 0x00, 0x00, 0x00, 9, 8, 7,                /* blob */
	0x05, 0x00, 0x00, 0x00, 't', 'a', 'l', 'l', 'y', /* name */
};

static void sample_encode(struct enc *e, const struct sample *v)
{
	enc_u8(e, v->version);
	enc_u16(e, v->port);
	enc_u32(e, v->count);
	enc_u64(e, v->amount);
	enc_bool(e, v->flag);
	enc_fixed(e, v->id, sizeof(v->id));
	enc_bytes(e, v->blob, v->blob_len);
	enc_str(e, v->name);
}

static int sample_decode(const uint8_t *p, size_t len, struct sample *v)
{
	struct dec d;
	const uint8_t *blob;

	memset(v, 0, sizeof(*v));
	dec_init(&d, p, len);
	v->version = dec_u8(&d);
	if (!dec_error(&d) && v->version != 1)
		dec_fail(&d, TALLY_E_VERSION);
	v->port = dec_u16(&d);
	v->count = dec_u32(&d);
	v->amount = dec_u64(&d);
	v->flag = dec_bool(&d);
	dec_fixed(&d, v->id, sizeof(v->id));
	blob = dec_bytes(&d, &v->blob_len, SAMPLE_BLOB_MAX);
	if (blob)
		memcpy(v->blob, blob, v->blob_len);
	dec_str(&d, v->name, SAMPLE_NAME_MAX);
	return dec_finish(&d);
}

static void sample_assert_eq(const struct sample *a, const struct sample *b)
{
	ck_assert_uint_eq(a->version, b->version);
	ck_assert_uint_eq(a->port, b->port);
	ck_assert_uint_eq(a->count, b->count);
	ck_assert_uint_eq(a->amount, b->amount);
	ck_assert_int_eq(a->flag, b->flag);
	ck_assert_mem_eq(a->id, b->id, sizeof(a->id));
	ck_assert_uint_eq(a->blob_len, b->blob_len);
	ck_assert_mem_eq(a->blob, b->blob, a->blob_len);
	ck_assert_str_eq(a->name, b->name);
}

START_TEST(test_composite_exact_bytes)
{
	struct enc e;
	size_t len;
	uint8_t *buf;
	struct sample back;

	enc_init(&e);
	sample_encode(&e, &sample_value);
	ck_assert_int_eq(enc_error(&e), 0);
	buf = enc_take(&e, &len);
	ck_assert_uint_eq(len, sizeof(sample_bytes));
	ck_assert_mem_eq(buf, sample_bytes, len);
	/* enc_take resets the encoder. */
	ck_assert_ptr_null(e.buf);
	ck_assert_uint_eq(e.len, 0);

	ck_assert_int_eq(sample_decode(buf, len, &back), 0);
	sample_assert_eq(&back, &sample_value);
	free(buf);
}
END_TEST

START_TEST(test_integer_round_trips)
{
	static const uint64_t values[] = {
		0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
		0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull,
		0x7fffffffffffffffull, 0x8000000000000000ull, UINT64_MAX,
	};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint64_t v = values[i];
		struct enc e;
		struct dec d;

		enc_init(&e);
		enc_u8(&e, (uint8_t)v);
		enc_u16(&e, (uint16_t)v);
		enc_u32(&e, (uint32_t)v);
		enc_u64(&e, v);
		ck_assert_int_eq(enc_error(&e), 0);
		ck_assert_uint_eq(e.len, 1 + 2 + 4 + 8);
		/* Little endian: byte i of the u64 is bits 8i..8i+7. */
		for (int b = 0; b < 8; b++)
			ck_assert_uint_eq(e.buf[7 + b], (uint8_t)(v >> (8 * b)));

		dec_init(&d, e.buf, e.len);
		ck_assert_uint_eq(dec_u8(&d), (uint8_t)v);
		ck_assert_uint_eq(dec_u16(&d), (uint16_t)v);
		ck_assert_uint_eq(dec_u32(&d), (uint32_t)v);
		ck_assert_uint_eq(dec_u64(&d), v);
		ck_assert_uint_eq(dec_remaining(&d), 0);
		ck_assert_int_eq(dec_finish(&d), 0);
		enc_free(&e);
	}
}
END_TEST

START_TEST(test_bool_round_trip_and_range)
{
	struct enc e;
	struct dec d;

	enc_init(&e);
	enc_bool(&e, false);
	enc_bool(&e, true);
	ck_assert_uint_eq(e.len, 2);
	ck_assert_uint_eq(e.buf[0], 0);
	ck_assert_uint_eq(e.buf[1], 1);
	dec_init(&d, e.buf, e.len);
	ck_assert(!dec_bool(&d));
	ck_assert(dec_bool(&d));
	ck_assert_int_eq(dec_finish(&d), 0);
	enc_free(&e);

	/* Only 0 and 1 are canonical. */
	for (unsigned v = 2; v <= 0xff; v++) {
		uint8_t b = (uint8_t)v;
		dec_init(&d, &b, 1);
		(void)dec_bool(&d);
		ck_assert_int_eq(dec_finish(&d), TALLY_E_RANGE);
	}
}
END_TEST

START_TEST(test_bytes_and_strings)
{
	struct enc e;
	struct dec d;
	const uint8_t *p;
	size_t n;
	char s[8];

	enc_init(&e);
	enc_bytes(&e, NULL, 0);
	enc_bytes(&e, "\x00\x01\x02", 3);
	enc_str(&e, "");
	enc_str(&e, "abcdefg");
	ck_assert_int_eq(enc_error(&e), 0);
	ck_assert_uint_eq(e.len, 4 + 7 + 4 + 11);

	dec_init(&d, e.buf, e.len);
	p = dec_bytes(&d, &n, 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(dec_error(&d), 0);
	p = dec_bytes(&d, &n, 3);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(p, "\x00\x01\x02", 3);
	/* A view into the input, not a copy. */
	ck_assert_ptr_eq(p, e.buf + 8);
	dec_str(&d, s, 7);
	ck_assert_str_eq(s, "");
	dec_str(&d, s, 7);      /* exactly at the maximum */
	ck_assert_str_eq(s, "abcdefg");
	ck_assert_int_eq(dec_finish(&d), 0);
	enc_free(&e);
}
END_TEST

START_TEST(test_fixed_round_trip)
{
	uint8_t in[32], out[32];
	struct enc e;
	struct dec d;

	for (int i = 0; i < 32; i++)
		in[i] = (uint8_t)(i * 7 + 3);
	enc_init(&e);
	enc_fixed(&e, in, sizeof(in));
	enc_fixed(&e, NULL, 0);
	ck_assert_uint_eq(e.len, 32);
	ck_assert_mem_eq(e.buf, in, 32);
	dec_init(&d, e.buf, e.len);
	dec_fixed(&d, out, sizeof(out));
	ck_assert_mem_eq(out, in, 32);
	ck_assert_int_eq(dec_finish(&d), 0);
	enc_free(&e);
}
END_TEST

START_TEST(test_truncation_at_every_offset)
{
	struct sample v;

	for (size_t len = 0; len < sizeof(sample_bytes); len++) {
		/* A copy of exactly len bytes, so ASan catches any read past it. */
		uint8_t *cut = malloc(len ? len : 1);

		memcpy(cut, sample_bytes, len);
		ck_assert_msg(sample_decode(cut, len, &v) == TALLY_E_TRUNCATED,
			      "truncated to %zu bytes", len);
		free(cut);
	}
	ck_assert_int_eq(sample_decode(sample_bytes, sizeof(sample_bytes), &v), 0);
}
END_TEST

START_TEST(test_trailing_bytes)
{
	uint8_t buf[sizeof(sample_bytes) + 4];
	struct sample v;

	memcpy(buf, sample_bytes, sizeof(sample_bytes));
	memset(buf + sizeof(sample_bytes), 0, 4);
	for (size_t extra = 1; extra <= 4; extra++)
		ck_assert_int_eq(sample_decode(buf, sizeof(sample_bytes) + extra, &v),
				 TALLY_E_TRAILING);
}
END_TEST

START_TEST(test_wrong_version)
{
	uint8_t buf[sizeof(sample_bytes)];
	struct sample v;

	memcpy(buf, sample_bytes, sizeof(buf));
	buf[0] = 2;
	ck_assert_int_eq(sample_decode(buf, sizeof(buf), &v), TALLY_E_VERSION);
	buf[0] = 0;
	ck_assert_int_eq(sample_decode(buf, sizeof(buf), &v), TALLY_E_VERSION);
}
END_TEST

START_TEST(test_overlong_lengths)
{
	uint8_t buf[sizeof(sample_bytes)];
	struct sample v;
	struct dec d;
	size_t n;
	char s[4];

	/* The blob's length prefix (offset 20) beyond its maximum of 8: the
	 * length is refused before the bytes are looked for. */
	memcpy(buf, sample_bytes, sizeof(buf));
	buf[20] = SAMPLE_BLOB_MAX + 1;
	ck_assert_int_eq(sample_decode(buf, sizeof(buf), &v), TALLY_E_TOOLONG);
	buf[20] = 0xff; buf[21] = 0xff; buf[22] = 0xff; buf[23] = 0xff;
	ck_assert_int_eq(sample_decode(buf, sizeof(buf), &v), TALLY_E_TOOLONG);

	/* The string's prefix (offset 27) beyond its maximum of 16. */
	memcpy(buf, sample_bytes, sizeof(buf));
	buf[27] = SAMPLE_NAME_MAX + 1;
	ck_assert_int_eq(sample_decode(buf, sizeof(buf), &v), TALLY_E_TOOLONG);

	/* A huge length within the maximum is a truncation, not a wrap. */
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 'x' };
	dec_init(&d, huge, sizeof(huge));
	ck_assert_ptr_null(dec_bytes(&d, &n, SIZE_MAX));
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(dec_finish(&d), TALLY_E_TRUNCATED);

	/* dec_str: one byte over the maximum. */
	static const uint8_t four[] = { 4, 0, 0, 0, 'a', 'b', 'c', 'd' };
	dec_init(&d, four, sizeof(four));
	dec_str(&d, s, 3);
	ck_assert_str_eq(s, "");
	ck_assert_int_eq(dec_finish(&d), TALLY_E_TOOLONG);

	/* An encoder asked for more than a u32 length can say. */
	struct enc e;
	static const uint8_t one = 1;
	enc_init(&e);
	enc_bytes(&e, &one, (size_t)UINT32_MAX + 1);
	ck_assert_int_eq(enc_error(&e), TALLY_E_TOOLONG);
	ck_assert_uint_eq(e.len, 0);
	enc_free(&e);
}
END_TEST

START_TEST(test_embedded_nul)
{
	static const uint8_t nul[] = { 3, 0, 0, 0, 'a', 0, 'b' };
	static const uint8_t nul_end[] = { 2, 0, 0, 0, 'a', 0 };
	struct dec d;
	char s[8];

	dec_init(&d, nul, sizeof(nul));
	dec_str(&d, s, 7);
	ck_assert_str_eq(s, "");
	ck_assert_int_eq(dec_finish(&d), TALLY_E_ENCODING);

	dec_init(&d, nul_end, sizeof(nul_end));
	dec_str(&d, s, 7);
	ck_assert_int_eq(dec_finish(&d), TALLY_E_ENCODING);

	/* The same bytes are fine as a byte string. */
	size_t n;
	dec_init(&d, nul, sizeof(nul));
	ck_assert_ptr_nonnull(dec_bytes(&d, &n, 7));
	ck_assert_int_eq(dec_finish(&d), 0);
}
END_TEST

START_TEST(test_errors_are_sticky)
{
	static const uint8_t buf[] = { 2, 0xaa, 0xbb, 0xcc };
	struct dec d;
	uint8_t out[2] = { 0x55, 0x55 };
	size_t n = 99;

	dec_init(&d, buf, sizeof(buf));
	(void)dec_bool(&d);                      /* 2: TALLY_E_RANGE */
	ck_assert_int_eq(dec_error(&d), TALLY_E_RANGE);
	/* Later reads return zeros and keep the first error. */
	ck_assert_uint_eq(dec_u16(&d), 0);
	ck_assert_uint_eq(dec_u64(&d), 0);      /* would also truncate */
	dec_fixed(&d, out, sizeof(out));
	ck_assert_uint_eq(out[0], 0);
	ck_assert_uint_eq(out[1], 0);
	ck_assert_ptr_null(dec_bytes(&d, &n, 10));
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(dec_remaining(&d), 0);
	ck_assert_int_eq(dec_finish(&d), TALLY_E_RANGE);

	/* dec_fail keeps the first error too. */
	dec_init(&d, buf, sizeof(buf));
	dec_fail(&d, TALLY_E_VERSION);
	dec_fail(&d, TALLY_E_RANGE);
	ck_assert_int_eq(dec_finish(&d), TALLY_E_VERSION);

	/* A truncated read zeroes its output. */
	dec_init(&d, buf, 1);
	out[0] = out[1] = 0x55;
	dec_fixed(&d, out, 2);
	ck_assert_uint_eq(out[0], 0);
	ck_assert_int_eq(dec_finish(&d), TALLY_E_TRUNCATED);
}
END_TEST

START_TEST(test_encoder_grows)
{
	struct enc e;

	enc_init(&e);
	for (uint32_t i = 0; i < 10000; i++)
		enc_u32(&e, i);
	ck_assert_int_eq(enc_error(&e), 0);
	ck_assert_uint_eq(e.len, 40000);
	ck_assert_uint_eq(e.buf[4 * 9999], 9999 & 0xff);
	ck_assert_uint_eq(e.buf[4 * 9999 + 1], 9999 >> 8);
	enc_free(&e);
	ck_assert_ptr_null(e.buf);
	ck_assert_uint_eq(e.len, 0);
}
END_TEST

/* --- hex ---------------------------------------------------------------- */

START_TEST(test_hex_round_trip)
{
	uint8_t in[256], out[256];
	char hex[2 * 256 + 1];

	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	hex_encode(in, sizeof(in), hex);
	ck_assert_uint_eq(strlen(hex), 512);
	ck_assert(!strncmp(hex, "000102", 6));
	ck_assert_str_eq(hex + 500, "fafbfcfdfeff");
	ck_assert_int_eq(hex_decode(hex, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, in, sizeof(in));

	hex_encode(in, 0, hex);
	ck_assert_str_eq(hex, "");
	ck_assert_int_eq(hex_decode("", out, 0), 0);

	/* Upper case digits decode to the same bytes. */
	ck_assert_int_eq(hex_decode("DEADbeef", out, 4), 0);
	ck_assert_mem_eq(out, "\xde\xad\xbe\xef", 4);
}
END_TEST

START_TEST(test_hex_strict)
{
	static const char *const bad[] = {
		"abc",          /* odd length */
		"ab",           /* too short for 2 bytes */
		"abcdef",       /* too long for 2 bytes */
		"0xab",         /* prefix */
		"abg0",         /* not a digit */
		"ab 0",         /* space */
		" abc",
		"ab-0",
		"ab\xc3\xa9",   /* non-ASCII */
		"",
	};
	uint8_t out[2];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(hex_decode(bad[i], out, 2) == TALLY_E_ENCODING, "\"%s\"", bad[i]);
	ck_assert_int_eq(hex_decode("ab0f", out, 2), 0);
	ck_assert_uint_eq(out[0], 0xab);
	ck_assert_uint_eq(out[1], 0x0f);
}
END_TEST

Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("round trips");

	tcase_add_test(tc, test_composite_exact_bytes);
	tcase_add_test(tc, test_integer_round_trips);
	tcase_add_test(tc, test_bool_round_trip_and_range);
	tcase_add_test(tc, test_bytes_and_strings);
	tcase_add_test(tc, test_fixed_round_trip);
	tcase_add_test(tc, test_encoder_grows);
	suite_add_tcase(s, tc);

	tc = tcase_create("strict decoding");
	tcase_add_test(tc, test_truncation_at_every_offset);
	tcase_add_test(tc, test_trailing_bytes);
	tcase_add_test(tc, test_wrong_version);
	tcase_add_test(tc, test_overlong_lengths);
	tcase_add_test(tc, test_embedded_nul);
	tcase_add_test(tc, test_errors_are_sticky);
	suite_add_tcase(s, tc);

	tc = tcase_create("hex");
	tcase_add_test(tc, test_hex_round_trip);
	tcase_add_test(tc, test_hex_strict);
	suite_add_tcase(s, tc);
	return s;
}
