/* u64 counters in API JSON (lib/json_u64.c): exact on both sides of 2^63,
 * never a negative number, and a strict reader. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/decimal.h"
#include "lib/errors.h"
#include "lib/json_u64.h"

static char *dump(uint64_t v)
{
	json_t *a = json_array();

	json_array_append_new(a, json_u64(v));
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

START_TEST(test_written_exactly)
{
	static const struct { uint64_t v; const char *text; } cases[] = {
		{ 0, "[0]" },
		{ INT64_MAX, "[9223372036854775807]" },
		{ (uint64_t)INT64_MAX + 1, "[\"9223372036854775808\"]" },
		/* the cpu_ns that printed -8758884873709551616 */
		{ 9687859200000000000ull, "[\"9687859200000000000\"]" },
		{ UINT64_MAX, "[\"18446744073709551615\"]" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = dump(cases[i].v);
		ck_assert_str_eq(s, cases[i].text);
		free(s);
	}
}
END_TEST

START_TEST(test_read_back)
{
	static const uint64_t values[] = { 0, 1, INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		json_t *j = json_u64(values[i]);
		uint64_t v = 7;

		ck_assert_int_eq(json_u64_get(j, &v), 0);
		ck_assert_uint_eq(v, values[i]);
		json_decref(j);
	}
}
END_TEST

START_TEST(test_reader_is_strict)
{
	static const char *const bad[] = {
		"[-1]", "[1.5]", "[\"\"]", "[\"-1\"]", "[\"+1\"]", "[\"01\"]", "[\" 1\"]",
		"[\"1 \"]", "[\"18446744073709551616\"]", "[\"99999999999999999999\"]",
		"[\"123456789012345678901\"]", "[\"0x10\"]", "[null]", "[true]", "[\"1\\u00002\"]",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *a = json_loads(bad[i], JSON_ALLOW_NUL, NULL);
		uint64_t v = 7;

		ck_assert_msg(a != NULL, "%s", bad[i]);
		ck_assert_msg(json_u64_get(json_array_get(a, 0), &v) == -1, "%s accepted", bad[i]);
		ck_assert_uint_eq(v, 7);
		json_decref(a);
	}
}
END_TEST

/* The one reader of decimal text the node did not write (lib/decimal.h):
 * what it takes, what it refuses, and which refusal. */
START_TEST(test_decimal_canonical)
{
	static const struct { const char *s; int rc; uint64_t v; } cases[] = {
		{ "0", 0, 0 }, { "7", 0, 7 }, { "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", TALLY_E_RANGE, 0 },
		{ "99999999999999999999999", TALLY_E_RANGE, 0 },
		{ "", TALLY_E_ENCODING, 0 }, { "01", TALLY_E_ENCODING, 0 },
		{ "00", TALLY_E_ENCODING, 0 }, { "-3", TALLY_E_ENCODING, 0 },
		{ "+3", TALLY_E_ENCODING, 0 }, { " 3", TALLY_E_ENCODING, 0 },
		{ "3 ", TALLY_E_ENCODING, 0 }, { "1x", TALLY_E_ENCODING, 0 },
		{ "0x10", TALLY_E_ENCODING, 0 }, { "1e3", TALLY_E_ENCODING, 0 },
		{ "-0", TALLY_E_ENCODING, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int rc = decimal_u64(cases[i].s, strlen(cases[i].s), &v);

		ck_assert_msg(rc == cases[i].rc, "'%s': rc %d, not %d", cases[i].s, rc,
			      cases[i].rc);
		ck_assert_msg(v == (rc ? 12345 : cases[i].v), "'%s': read %llu", cases[i].s,
			      (unsigned long long)v);
	}
	/* Only the n bytes given are read. */
	uint64_t v;
	ck_assert_int_eq(decimal_u64("123junk", 3, &v), 0);
	ck_assert_uint_eq(v, 123);
}
END_TEST

Suite *json_u64_suite(void)
{
	Suite *s = suite_create("json_u64");
	TCase *tc = tcase_create("exact");

	tcase_add_test(tc, test_written_exactly);
	tcase_add_test(tc, test_read_back);
	tcase_add_test(tc, test_reader_is_strict);
	tcase_add_test(tc, test_decimal_canonical);
	suite_add_tcase(s, tc);
	return s;
}
