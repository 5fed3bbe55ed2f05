/* Votes (lib/chain/block.h): prevote or precommit, fixed size, canonical. */
#include "lib/chain/block.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vote v;
	struct enc e;

	if (vote_decode(&v, data, size) != 0)
		return 0;
	fuzz_require(size == VOTE_LEN, "a vote of %zu bytes", size);
	fuzz_require(v.type == VOTE_PREVOTE || v.type == VOTE_PRECOMMIT, "vote type %u", v.type);
	enc_init(&e);
	vote_encode(&e, &v);
	fuzz_same_bytes("vote", data, size, &e);
	return 0;
}
