/* Unsigned 64-bit counters in the API's JSON (lib/json_u64.h): a value is
 * read only when it is a non-negative JSON integer or a string of 1..20
 * decimal digits without a leading zero within 2^64 - 1, and what
 * json_u64() writes reads back as the same value. */
#include <string.h>

#include "lib/json_u64.h"
#include "tests/fuzz/fuzz.h"

/* The rule for the string spelling, restated: digits only, no leading zero
 * unless "0", at most 2^64 - 1. */
static int digits_ok(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || (s[0] == '0' && n > 1))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	*out = v;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	uint64_t v = 0xdeadbeef, want = 0;

	if (!j)
		return 0;
	int rc = json_u64_get(j, &v);
	int ok;
	if (json_is_integer(j)) {
		ok = json_integer_value(j) >= 0;
		want = (uint64_t)json_integer_value(j);
	} else if (json_is_string(j)) {
		ok = digits_ok(json_string_value(j), json_string_length(j), &want);
	} else {
		ok = 0;
	}
	fuzz_require(ok == (rc == 0), "json_u64_get %s a value the rule %s",
		     rc == 0 ? "accepts" : "refuses", ok ? "accepts" : "refuses");
	if (rc == 0) {
		fuzz_require(v == want, "read %llu, the input says %llu",
			     (unsigned long long)v, (unsigned long long)want);
		json_t *w = json_u64(v);
		uint64_t back = 0;
		fuzz_require(w && json_u64_get(w, &back) == 0 && back == v,
			     "json_u64(%llu) does not read back", (unsigned long long)v);
		json_decref(w);
	} else {
		fuzz_require(v == 0xdeadbeef, "a refused read changed its output");
	}
	json_decref(j);
	return 0;
}
