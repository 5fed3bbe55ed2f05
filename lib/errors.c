#include "lib/errors.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const messages[TALLY_E__COUNT] = {
	[TALLY_OK] = "success",
	[TALLY_E_NOMEM] = "out of memory",
	[TALLY_E_IO] = "input/output error",
	[TALLY_E_INVALID] = "invalid argument",
	[TALLY_E_NOTFOUND] = "not found",
	[TALLY_E_EXISTS] = "already exists",
	[TALLY_E_INTERNAL] = "internal error",
	[TALLY_E_TRUNCATED] = "input truncated",
	[TALLY_E_TRAILING] = "trailing bytes after object",
	[TALLY_E_VERSION] = "unknown format version",
	[TALLY_E_TOOLONG] = "length exceeds field maximum",
	[TALLY_E_RANGE] = "value out of range",
	[TALLY_E_ENCODING] = "non-canonical encoding",
	[TALLY_E_KEY] = "bad or unreadable key",
	[TALLY_E_SIGNATURE] = "signature does not verify",
	[TALLY_E_CRYPTO] = "cryptographic library failure",
	[TALLY_E_PROOF_INDEX] = "proof leaf index out of range",
	[TALLY_E_PROOF_SIZE] = "proof has the wrong number of hashes",
	[TALLY_E_PROOF_ROOT] = "proof does not match the root",
	[TALLY_E_PROOF_RANGE] = "proof tree sizes out of range",
	[TALLY_E_CHAIN_ID] = "wrong chain id",
	[TALLY_E_NONCE] = "wrong nonce",
	[TALLY_E_REPLAY] = "replayed transaction",
	[TALLY_E_BALANCE] = "insufficient balance",
	[TALLY_E_OVERFLOW] = "arithmetic overflow",
	[TALLY_E_EXPIRED] = "expired",
	[TALLY_E_STATE] = "not allowed in the current state",
	[TALLY_E_UNAUTHORIZED] = "signer not authorized",
	[TALLY_E_CONTRACT] = "contract invalid",
	[TALLY_E_CAPACITY] = "insufficient host capacity",
	[TALLY_E_LINK] = "previous-block link broken",
	[TALLY_E_HEIGHT] = "block height out of sequence",
	[TALLY_E_TXROOT] = "transactions root mismatch",
	[TALLY_E_USAGEROOT] = "usage-log root mismatch",
	[TALLY_E_STATEROOT] = "state root mismatch",
	[TALLY_E_VALSET] = "validator set hash mismatch",
	[TALLY_E_CERT] = "commit certificate invalid",
	[TALLY_E_QUORUM] = "commit certificate lacks a 2/3 stake quorum",
	[TALLY_E_FUTURE] = "dated too far ahead of this node's clock",
	[TALLY_E_USAGECHAIN] = "usage record chain broken",
	[TALLY_E_BILL] = "recomputed bill differs from settlement",
	[TALLY_E_STORE] = "store failure",
	[TALLY_E_DISKFULL] = "disk full",
	[TALLY_E_UNAVAILABLE] = "temporarily unavailable",
};

const char *tally_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= TALLY_E__COUNT || !messages[err])
		return "unknown error";
	return messages[err];
}

int why_set(char *why, int err, const char *fmt, ...)
{
	va_list ap;

	if (why) {
		va_start(ap, fmt);
		vsnprintf(why, WHY_MAX, fmt, ap);
		va_end(ap);
	}
	return err;
}
