/* The API's defences that need no socket: error text that is valid UTF-8
 * whatever the client sent, the keyed hash of its tables, replay state
 * bounded per key, and the per-address request rate. The rest runs against
 * a real tallyd in tests/e2e/test_api_input.sh and test_api_limits.sh. */
#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/api/auth.h"
#include "daemon/api/http.h"
#include "daemon/api/ratelimit.h"
#include "daemon/api/txbody.h"
#include "lib/chain/tx.h"
#include "lib/codec.h"
#include "lib/errors.h"
#include "lib/keyed_hash.h"

/* What a JSON library accepts as a string is the test of valid UTF-8 here:
 * jansson refuses anything else. */
static int json_accepts(const char *s)
{
	json_t *j = json_string(s);
	int ok = j != NULL;

	json_decref(j);
	return ok;
}

static void clean_is(const char *in, const char *want)
{
	char out[64];

	http_clean_text(out, sizeof(out), in);
	ck_assert_str_eq(out, want);
}

START_TEST(clean_text_keeps_utf8_and_escapes_the_rest)
{
	clean_is("no such path: /v1/x", "no such path: /v1/x");
	clean_is("/\xff", "/\\xff");
	clean_is("a\nb\x7f", "a\\x0ab\\x7f");
	clean_is("\xe2\x82\xac \xf0\x9f\x98\x80", "\xe2\x82\xac \xf0\x9f\x98\x80");
	clean_is("\xc0\xaf", "\\xc0\\xaf");                 /* overlong '/' */
	clean_is("\xed\xa0\x80", "\\xed\\xa0\\x80");        /* a surrogate */
	clean_is("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
	clean_is("\xe2\x82", "\\xe2\\x82");                 /* cut short */
	clean_is("", "");
}
END_TEST

/* The example: "/" and 166 euro signs overran the message buffer in
 * the middle of a character. */
START_TEST(clean_text_cuts_on_a_character_boundary)
{
	char in[1024] = "no such path: /", out[HTTP_ERROR_MAX];
	size_t prefix = strlen(in);

	for (int i = 0; i < 166; i++)
		strcat(in, "\xe2\x82\xac");
	size_t n = http_clean_text(out, sizeof(out), in);
	ck_assert_uint_eq(n, strlen(out));
	ck_assert_uint_le(n, sizeof(out) - 1);
	ck_assert(json_accepts(out));
	ck_assert_str_eq(out + n - 3, "...");
	ck_assert_uint_eq((n - 3 - prefix) % 3, 0);
	ck_assert_int_eq(memcmp(out, in, n - 3), 0);

	/* Exactly full: no ellipsis. */
	char fits[HTTP_ERROR_MAX];
	memset(fits, 'a', sizeof(fits) - 1);
	fits[sizeof(fits) - 1] = '\0';
	http_clean_text(out, sizeof(out), fits);
	ck_assert_str_eq(out, fits);
	/* One byte over: cut, and marked. */
	char over[HTTP_ERROR_MAX + 1];
	memset(over, 'a', sizeof(over) - 1);
	over[sizeof(over) - 1] = '\0';
	n = http_clean_text(out, sizeof(out), over);
	ck_assert_uint_eq(n, sizeof(out) - 1);
	ck_assert_str_eq(out + n - 3, "...");
}
END_TEST

/* Property: for any bytes, the result is valid UTF-8 that fits, and what was
 * valid text without control characters comes back unchanged when it fits. */
START_TEST(clean_text_of_random_bytes_is_always_valid)
{
	unsigned seed = (unsigned)time(NULL);
	char in[2048], out[HTTP_ERROR_MAX];

	srandom(seed);
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = (size_t)random() % (iter % 10 ? 64 : sizeof(in));
		for (size_t i = 0; i < len; i++) {
			/* Mostly high bytes and controls: the cases that matter. */
			long r = random();
			in[i] = (char)(r % 4 ? 0x80 + (r >> 8) % 0x80 : 1 + (r >> 8) % 0x7f);
		}
		in[len] = '\0';
		size_t cap = 8 + (size_t)random() % (sizeof(out) - 8);
		size_t n = http_clean_text(out, cap, in);
		ck_assert_msg(n == strlen(out) && n < cap, "seed %u iter %d: length", seed, iter);
		ck_assert_msg(json_accepts(out), "seed %u iter %d: not UTF-8", seed, iter);
		int plain = json_accepts(in);
		for (size_t i = 0; plain && i < len; i++)
			plain = (unsigned char)in[i] >= 0x20 && in[i] != 0x7f;
		if (plain && len < cap)
			ck_assert_msg(!strcmp(out, in), "seed %u iter %d: changed", seed, iter);
	}
}
END_TEST

/* SipHash-2-4 reference vectors (the SipHash paper, appendix A, and the
 * reference implementation's vectors.h): key 00..0f, messages 00..(n-1). */
START_TEST(keyed_hash_is_siphash_2_4)
{
	uint8_t key[KEYED_HASH_KEY_LEN], msg[64];
	uint64_t h;

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	ck_assert_int_eq(keyed_hash_with(key, msg, 0, &h), 0);
	ck_assert_uint_eq(h, 0x726fdb47dd0e0e31ull);
	ck_assert_int_eq(keyed_hash_with(key, msg, 15, &h), 0);
	ck_assert_uint_eq(h, 0xa129ca6149be45e5ull);
	ck_assert_int_eq(keyed_hash_with(key, msg, 63, &h), 0);
	ck_assert_uint_eq(h, 0x958a324ceb064572ull);

	/* The process key is random and fixed for the process. */
	ck_assert_int_eq(keyed_hash_init(), 0);
	ck_assert_uint_eq(keyed_hash(msg, 15), keyed_hash(msg, 15));
	ck_assert_uint_ne(keyed_hash(msg, 15), 0xa129ca6149be45e5ull);
	ck_assert_uint_ne(keyed_hash(msg, 15), keyed_hash(msg, 14));
}
END_TEST

static struct auth_signed signed_by(uint8_t who, unsigned n)
{
	struct auth_signed s = { .key = { 0 } };

	s.key[0] = who;
	s.key[31] = (uint8_t)(who >> 8);
	snprintf(s.nonce, sizeof(s.nonce), "%016x%08x", n, who);
	return s;
}

/* The "replay ring": one key's flood used to fill a ring all keys
 * shared. Now a key that spends its share is refused alone. */
START_TEST(a_key_that_fills_its_share_refuses_no_other)
{
	struct auth_cache c;
	const uint64_t t = 1700000000;

	auth_cache_init(&c);
	for (unsigned i = 0; i < AUTH_NONCES_PER_KEY; i++) {
		struct auth_signed s = signed_by(1, i);
		ck_assert_int_eq(auth_spend_nonce(&c, &s, t, NULL), 0);
	}
	struct auth_signed more = signed_by(1, 100000);
	ck_assert_int_eq(auth_spend_nonce(&c, &more, t + 10, NULL), TALLY_E_CAPACITY);
	struct auth_signed other = signed_by(2, 0);
	ck_assert_int_eq(auth_spend_nonce(&c, &other, t + 10, NULL), 0);
	/* A replay is still a replay, for the key that made it. */
	ck_assert_int_eq(auth_spend_nonce(&c, &other, t + 11, NULL), TALLY_E_REPLAY);
	struct auth_signed same_nonce = other;
	same_nonce.key[1] = 9;
	ck_assert_int_eq(auth_spend_nonce(&c, &same_nonce, t + 11, NULL), 0);
	/* Once the window has passed, the full key may go on. */
	ck_assert_int_eq(auth_spend_nonce(&c, &more, t + AUTH_NONCE_WINDOW_S + 1, NULL), 0);
	auth_cache_free(&c);
}
END_TEST

START_TEST(replay_state_is_bounded_and_forgets_old_keys)
{
	struct auth_cache c;
	const uint64_t t = 1700000000;

	auth_cache_init(&c);
	for (unsigned k = 0; k < AUTH_KEYS_MAX; k++) {
		struct auth_signed s = signed_by((uint8_t)k, k);
		s.key[2] = (uint8_t)(k >> 8);
		ck_assert_int_eq(auth_spend_nonce(&c, &s, t, NULL), 0);
	}
	ck_assert_uint_eq(c.nkeys, AUTH_KEYS_MAX);
	struct auth_signed late = signed_by(7, 7);
	late.key[3] = 0xee;
	ck_assert_int_eq(auth_spend_nonce(&c, &late, t + 1, NULL), TALLY_E_NOMEM);
	/* After the window every old key is forgotten. */
	ck_assert_int_eq(auth_spend_nonce(&c, &late, t + AUTH_NONCE_WINDOW_S + 1, NULL), 0);
	ck_assert_uint_eq(c.nkeys, 1);
	auth_cache_free(&c);
}
END_TEST

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static struct sockaddr_in6 v6(const char *ip)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6 };

	inet_pton(AF_INET6, ip, &a.sin6_addr);
	return a;
}

#define SA(x) ((const struct sockaddr *)&(x))

START_TEST(rate_limit_is_per_address)
{
	struct ratelimit *rl;
	struct sockaddr_in a = v4("192.0.2.1"), b = v4("192.0.2.2");
	struct sockaddr_in6 mapped = v6("::ffff:192.0.2.1");
	struct sockaddr_in6 h1 = v6("2001:db8:1:2::1"), h2 = v6("2001:db8:1:2::ffff");
	struct sockaddr_in6 other = v6("2001:db8:1:3::1");

	ck_assert_int_eq(ratelimit_new(&rl, 10, 5), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(ratelimit_take(rl, SA(a), 1000), 0);
	ck_assert_uint_eq(ratelimit_take(rl, SA(a), 1000), 1);
	ck_assert_uint_eq(ratelimit_take(rl, SA(mapped), 1000), 1);   /* the same host */
	ck_assert_uint_eq(ratelimit_take(rl, SA(b), 1000), 0);
	/* 10 a second: one more after 100 ms, not before. */
	ck_assert_uint_eq(ratelimit_take(rl, SA(a), 1050), 1);
	ck_assert_uint_eq(ratelimit_take(rl, SA(a), 1100), 0);
	/* IPv6 hosts are counted by /64. */
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(ratelimit_take(rl, SA(h1), 1000), 0);
	ck_assert_uint_eq(ratelimit_take(rl, SA(h2), 1000), 1);
	ck_assert_uint_eq(ratelimit_take(rl, SA(other), 1000), 0);
	ratelimit_free(rl);

	ck_assert_int_eq(ratelimit_new(&rl, 0, 1), 0);
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(ratelimit_take(rl, SA(a), 1000), 0);
	ratelimit_free(rl);
}
END_TEST

/* More addresses than the table holds: the limiter forgets, and never
 * refuses an address that has not used its own share. */
START_TEST(rate_limit_table_is_bounded_and_fails_open)
{
	struct ratelimit *rl;

	ck_assert_int_eq(ratelimit_new(&rl, 1, 2), 0);
	for (uint32_t i = 0; i < 3 * RATELIMIT_ADDRS; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(i) };
		ck_assert_uint_eq(ratelimit_take(rl, SA(a), 5000), 0);
	}
	ratelimit_free(rl);
}
END_TEST

/* Bad input never gets a 5xx: every error a client's request can cause maps
 * to a 4xx with its own code; only the node's own failures are 5xx. */
START_TEST(only_the_nodes_failures_are_5xx)
{
	for (int err = TALLY_E_NOMEM; err < TALLY_E__COUNT; err++) {
		const char *code = NULL;
		unsigned status = http_status_of(err, &code);
		bool node_fault = err == TALLY_E_NOMEM || err == TALLY_E_IO ||
				  err == TALLY_E_INTERNAL || err == TALLY_E_CRYPTO ||
				  err == TALLY_E_STORE || err == TALLY_E_DISKFULL ||
				  err == TALLY_E_UNAVAILABLE;

		ck_assert_ptr_nonnull(code);
		if (node_fault)
			ck_assert_msg(status >= 500, "%s -> %u", tally_strerror(err), status);
		else
			ck_assert_msg(status >= 400 && status < 500 && strcmp(code, "internal"),
				      "%s -> %u %s", tally_strerror(err), status, code);
	}
}
END_TEST

/* A binary batch body (daemon/api/txbody.h) of the given lengths, each
 * transaction's bytes filled with its index; its length. */
static size_t txbody_of(uint8_t *out, size_t cap, const size_t *lens, size_t n)
{
	struct enc e;
	uint8_t *p;
	size_t len;

	enc_init(&e);
	enc_u16(&e, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t fill[TX_MAX_SIZE + 2];

		memset(fill, (int)i, sizeof(fill));
		enc_bytes(&e, fill, lens[i]);
	}
	ck_assert_int_eq(enc_error(&e), 0);
	p = enc_take(&e, &len);
	ck_assert_uint_le(len, cap);
	memcpy(out, p, len);
	free(p);
	return len;
}

static int split(const uint8_t *body, size_t len, size_t *n, char *why)
{
	struct txbody_tx txs[4];

	return txbody_split(body, len, txs, 4, n, why);
}

/* Views into the body, in order; the framing is checked whole. */
START_TEST(txbody_splits_a_well_framed_body)
{
	static const size_t lens[] = { 251, 1, TX_MAX_SIZE };
	static uint8_t body[3 * (4 + TX_MAX_SIZE) + 2];
	struct txbody_tx txs[4];
	char why[WHY_MAX];
	size_t n, len = txbody_of(body, sizeof(body), lens, 3);

	ck_assert_uint_eq(len, 2 + 3 * 4 + 251 + 1 + TX_MAX_SIZE);
	ck_assert_int_eq(txbody_split(body, len, txs, 4, &n, why), 0);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_uint_eq(txs[i].len, lens[i]);
		ck_assert_uint_eq(txs[i].bytes[0], i);
		ck_assert_uint_eq(txs[i].bytes[txs[i].len - 1], i);
	}
	ck_assert_ptr_eq(txs[0].bytes, body + 2 + 4);
	/* Exactly max transactions. */
	ck_assert_int_eq(txbody_split(body, len, txs, 3, &n, why), 0);
	ck_assert_uint_eq(n, 3);
}
END_TEST

/* Every malformed body is refused whole, with the place it went wrong. */
START_TEST(txbody_refuses_malformed_bodies)
{
	static const size_t two[] = { 10, 20 }, five[] = { 1, 1, 1, 1, 1 };
	static const size_t long_one[] = { 10, TX_MAX_SIZE + 1 }, empty[] = { 10, 0 };
	static uint8_t body[2 * (4 + TX_MAX_SIZE + 1) + 2];
	char why[WHY_MAX];
	size_t n = 99, len;

	/* Nothing, or less than the count. */
	ck_assert_int_eq(split(body, 0, &n, why), TALLY_E_ENCODING);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(split((const uint8_t *)"\x01", 1, &n, why), TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "u16 count") != NULL, "%s", why);
	/* A count of 0. */
	ck_assert_int_eq(split((const uint8_t *)"\x00\x00", 2, &n, why), TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "is 0") != NULL, "%s", why);
	/* More than max (4 here). */
	len = txbody_of(body, sizeof(body), five, 5);
	ck_assert_int_eq(split(body, len, &n, why), TALLY_E_TOOLONG);
	ck_assert_msg(strstr(why, "at most 4") != NULL, "%s", why);
	/* Cut short: in the second one's bytes, in its length, before it. */
	len = txbody_of(body, sizeof(body), two, 2);
	ck_assert_int_eq(split(body, len, &n, why), 0);
	ck_assert_int_eq(split(body, len - 1, &n, why), TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "transaction 2 of 2 (at byte 16) is cut short") != NULL, "%s",
		      why);
	ck_assert_int_eq(split(body, 2 + 4 + 10 + 3, &n, why), TALLY_E_ENCODING);
	ck_assert_int_eq(split(body, 2 + 4 + 10, &n, why), TALLY_E_ENCODING);
	ck_assert_uint_eq(n, 0);
	/* A byte after the last one. */
	body[len] = 0;
	ck_assert_int_eq(split(body, len + 1, &n, why), TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "1 byte follows the last of the 2 transactions") != NULL, "%s",
		      why);
	/* A count above what follows. */
	body[0] = 3;
	ck_assert_int_eq(split(body, len, &n, why), TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "transaction 3 of 3") != NULL, "%s", why);
	/* One longer than a transaction can be; an empty one. */
	len = txbody_of(body, sizeof(body), long_one, 2);
	ck_assert_int_eq(split(body, len, &n, why), TALLY_E_TOOLONG);
	ck_assert_msg(strstr(why, "transaction 2 of 2") != NULL, "%s", why);
	len = txbody_of(body, sizeof(body), empty, 2);
	ck_assert_int_eq(split(body, len, &n, why), TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "is empty") != NULL, "%s", why);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* Whether one Prefer header of value v names respond-async. */
static bool prefers_async(const char *v)
{
	struct http_field f[] = { { 0, "Content-Type", "application/json" }, { 0, "prefer", v } };
	struct http_request req = { .method = "POST", .path = "/v1/tx", .fields = f,
				    .nfields = 2 };

	return http_prefers(&req, "respond-async");
}

/* RFC 7240's preferences: names compared without case, in a list, with
 * values and parameters after them; a comma inside a quoted value separates
 * nothing, so what follows it there is no preference. */
START_TEST(prefer_names_a_preference_not_a_quoted_value)
{
	ck_assert(prefers_async("respond-async"));
	ck_assert(prefers_async("Respond-Async"));
	ck_assert(prefers_async("wait=5, respond-async"));
	ck_assert(prefers_async("respond-async; x=1, wait=5"));
	ck_assert(prefers_async("foo=\"a,b\", respond-async"));
	ck_assert(prefers_async("foo=\"a\\\",b\", respond-async"));
	ck_assert(!prefers_async("respond-asyncx"));
	ck_assert(!prefers_async("return=minimal; respond-async"));
	ck_assert(!prefers_async(""));
	ck_assert(!prefers_async("foo=\"a,respond-async\""));
	ck_assert(!prefers_async("foo=\"a, respond-async;\""));
	ck_assert(!prefers_async("foo=\"a\\\", respond-async\""));
}
END_TEST

Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("defences");

	tcase_add_test(tc, clean_text_keeps_utf8_and_escapes_the_rest);
	tcase_add_test(tc, clean_text_cuts_on_a_character_boundary);
	tcase_add_test(tc, clean_text_of_random_bytes_is_always_valid);
	tcase_add_test(tc, keyed_hash_is_siphash_2_4);
	tcase_add_test(tc, a_key_that_fills_its_share_refuses_no_other);
	tcase_add_test(tc, replay_state_is_bounded_and_forgets_old_keys);
	tcase_add_test(tc, rate_limit_is_per_address);
	tcase_add_test(tc, rate_limit_table_is_bounded_and_fails_open);
	tcase_add_test(tc, only_the_nodes_failures_are_5xx);
	tcase_add_test(tc, txbody_splits_a_well_framed_body);
	tcase_add_test(tc, txbody_refuses_malformed_bodies);
	tcase_add_test(tc, prefer_names_a_preference_not_a_quoted_value);
	suite_add_tcase(s, tc);
	return s;
}
