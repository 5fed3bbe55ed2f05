/* The binary batch body (see txbody.h). */
#include "daemon/api/txbody.h"

#include "lib/chain/tx.h"
#include "lib/codec.h"
#include "lib/errors.h"

int txbody_split(const uint8_t *body, size_t len, struct txbody_tx *out, size_t max, size_t *n,
		 char *why)
{
	struct dec d;
	size_t count, i, at;

	*n = 0;
	dec_init(&d, body, len);
	count = dec_u16(&d);
	if (dec_error(&d))
		return why_set(why, TALLY_E_ENCODING, "the body is %zu byte%s: it must start with"
			       " a u16 count of transactions", len, len == 1 ? "" : "s");
	if (count == 0)
		return why_set(why, TALLY_E_ENCODING, "the body's count of transactions is 0");
	if (count > max)
		return why_set(why, TALLY_E_TOOLONG, "a batch holds at most %zu transactions, not"
			       " %zu", max, count);
	for (i = 0; i < count; i++) {
		at = len - dec_remaining(&d);
		out[i].bytes = dec_bytes(&d, &out[i].len, TX_MAX_SIZE);
		if (dec_error(&d) == TALLY_E_TOOLONG)
			return why_set(why, TALLY_E_TOOLONG, "transaction %zu of %zu (at byte %zu)"
				       " is longer than %d bytes", i + 1, count, at, TX_MAX_SIZE);
		if (dec_error(&d))
			return why_set(why, TALLY_E_ENCODING, "transaction %zu of %zu (at byte %zu)"
				       " is cut short: the body ends at byte %zu", i + 1, count, at,
				       len);
		if (out[i].len == 0)
			return why_set(why, TALLY_E_ENCODING, "transaction %zu of %zu (at byte %zu)"
				       " is empty", i + 1, count, at);
	}
	if (dec_remaining(&d))
		return why_set(why, TALLY_E_ENCODING, "%zu byte%s follow%s the last of the %zu"
			       " transaction%s", dec_remaining(&d), dec_remaining(&d) == 1 ? "" : "s",
			       dec_remaining(&d) == 1 ? "s" : "", count, count == 1 ? "" : "s");
	*n = count;
	return 0;
}
