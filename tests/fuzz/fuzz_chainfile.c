/* The chain export file (lib/chain/chainfile.h) that `tally audit --chain`
 * and `tally chain verify` read from anyone: strict, canonical, every
 * block at its height, a refusal that says what and where. */
#include "lib/chain/chainfile.h"
#include "lib/errors.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chainfile f;
	char why[WHY_MAX] = "";
	struct enc e;

	chainfile_init(&f);
	int rc = chainfile_decode(&f, data, size, why);
	if (rc) {
		fuzz_require(why[0], "chain file refused (%d) without a reason", rc);
		chainfile_free(&f);
		return 0;
	}
	for (size_t i = 0; i < f.nblocks; i++)
		fuzz_require(f.blocks[i].block.header.height == i + 1,
			     "block %zu has height %llu", i,
			     (unsigned long long)f.blocks[i].block.header.height);
	enc_init(&e);
	chainfile_encode(&e, &f);
	fuzz_same_bytes("chain file", data, size, &e);
	chainfile_free(&f);
	return 0;
}
