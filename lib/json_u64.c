/* Unsigned 64-bit counters in JSON (see json_u64.h). */
#include "lib/json_u64.h"

#include "lib/decimal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

json_t *json_u64(uint64_t v)
{
	char s[24];

	if (v <= INT64_MAX)
		return json_integer((json_int_t)v);
	snprintf(s, sizeof(s), "%" PRIu64, v);
	return json_string(s);
}

int json_u64_get(const json_t *j, uint64_t *v)
{
	const char *s;
	size_t n;
	uint64_t x = 0;

	if (json_is_integer(j)) {
		if (json_integer_value(j) < 0)
			return -1;
		*v = (uint64_t)json_integer_value(j);
		return 0;
	}
	if (!json_is_string(j))
		return -1;
	s = json_string_value(j);
	n = json_string_length(j);
	if (strlen(s) != n || decimal_u64(s, n, &x))
		return -1;
	*v = x;
	return 0;
}
