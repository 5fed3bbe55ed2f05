#include "lib/chain/request.h"

#include <stdio.h>

#include "lib/errors.h"

int request_message(char *out, size_t cap, const char *method, const char *path,
		    const char *timestamp, const char *nonce)
{
	int n = snprintf(out, cap, "%s\n%s\n%s\n%s", method, path, timestamp, nonce);

	return n < 0 || (size_t)n >= cap ? TALLY_E_TOOLONG : 0;
}
