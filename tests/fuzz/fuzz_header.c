/* Block headers (lib/chain/block.h), as the API and peers serve them. */
#include "lib/chain/block.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct block_header h;
	struct enc e;
	uint8_t id[HASH_LEN];

	if (header_decode(&h, data, size) != 0)
		return 0;
	fuzz_require(h.version == BLOCK_VERSION, "header version %u", h.version);
	fuzz_require(fuzz_chain_id_ok(h.chain_id), "chain id '%s'", h.chain_id);
	enc_init(&e);
	header_encode(&e, &h);
	fuzz_same_bytes("header", data, size, &e);
	block_id(&h, id);
	return 0;
}
