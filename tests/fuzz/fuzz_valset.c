/* Validator sets (lib/chain/block.h), as stores and chain files hold them:
 * 1..128 members, keys strictly ascending, stakes above zero, total within
 * 64 bits. */
#include <string.h>

#include "lib/chain/block.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct validator_set s;
	struct dec d;
	struct enc e;
	unsigned __int128 total = 0;

	dec_init(&d, data, size);
	if (valset_decode_from(&d, &s) != 0 || dec_finish(&d) != 0)
		return 0;
	fuzz_require(s.n >= 1 && s.n <= VALIDATORS_MAX, "%zu validators", s.n);
	for (size_t i = 0; i < s.n; i++) {
		fuzz_require(s.v[i].stake > 0, "validator %zu has no stake", i);
		fuzz_require(i == 0 || memcmp(s.v[i - 1].pubkey, s.v[i].pubkey, PUBKEY_LEN) < 0,
			     "validators %zu and %zu not strictly ascending", i - 1, i);
		total += s.v[i].stake;
	}
	fuzz_require(total <= UINT64_MAX, "total stake beyond 64 bits");
	enc_init(&e);
	valset_encode(&e, &s);
	fuzz_same_bytes("validator set", data, size, &e);
	return 0;
}
