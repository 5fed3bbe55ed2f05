/* Blocks (lib/chain/block.h): header, then the length-prefixed signed
 * transactions; canonical, within BLOCK_MAX_TXS, and each transaction
 * inside is handed to the transaction decoder as a validator would. */
#include <stdlib.h>

#include "lib/chain/block.h"
#include "lib/chain/tx.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct block b;
	struct enc e;
	uint8_t root[HASH_LEN];

	if (block_decode(&b, data, size) != 0)
		return 0;
	fuzz_require(b.ntx <= BLOCK_MAX_TXS, "%zu transactions", b.ntx);
	fuzz_require(b.header.version == BLOCK_VERSION, "block version %u", b.header.version);
	fuzz_require(fuzz_chain_id_ok(b.header.chain_id), "chain id '%s'", b.header.chain_id);
	enc_init(&e);
	block_encode(&e, &b);
	fuzz_same_bytes("block", data, size, &e);
	block_txs_root(&b, root);
	struct tx *t = malloc(sizeof(*t));
	if (!t)
		abort();
	for (size_t i = 0; i < b.ntx; i++) {
		fuzz_require(b.txs[i].len <= TX_MAX_SIZE, "transaction %zu: %zu bytes", i,
			     b.txs[i].len);
		(void)tx_decode(t, b.txs[i].bytes, b.txs[i].len);
	}
	free(t);
	block_free(&b);
	return 0;
}
