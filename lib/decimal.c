/* Canonical decimal u64 (see decimal.h). */
#include "lib/decimal.h"

#include "lib/errors.h"

int decimal_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (n == 0 || (s[0] == '0' && n > 1))
		return TALLY_E_ENCODING;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return TALLY_E_ENCODING;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (x > (UINT64_MAX - d) / 10)
			return TALLY_E_RANGE;
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}
