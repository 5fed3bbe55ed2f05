/* One small, fixed chain for the fuzz targets' seeds and fixtures and the
 * torn-file tests: every transaction kind the ledger runs today, on a
 * chain whose blocks, lease id and hashes are the same on every machine
 * (fixed key seeds, fixed times, deterministic Ed25519).
 *
 *   block 1: the tenant opens a lease; the validator pays the stranger
 *   block 2: the validator (the provider) starts the lease
 *   block 3: usage record 0
 *   block 4: usage record 1; the validator stakes more
 *   block 5: the tenant closes the lease */
#ifndef TALLY_TEST_FIXCHAIN_H
#define TALLY_TEST_FIXCHAIN_H

#include "tests/support/chainbuild.h"

#define FIX_CHAIN_ID "tally-fix"
#define FIX_GENESIS_NS 1700000000000000000ull
#define FIX_BLOCK_NS(h) (FIX_GENESIS_NS + (uint64_t)(h) * 10 * CB_SEC)
#define FIX_BLOCKS 5

struct fixchain {
	struct chainbuild c;
	uint8_t lease[HASH_LEN];
	uint8_t usage[2][HASH_LEN];      /* the usage transactions' hashes */
	uint8_t transfer[HASH_LEN];
};

void fixchain_build(struct fixchain *f);
void fixchain_free(struct fixchain *f);
/* Block i + 1 and its certificate, encoded as a peer sends them (what
 * ledger_apply_block takes); free both with enc_free(). */
void fixchain_encode_block(const struct fixchain *f, size_t i, struct enc *block,
			   struct enc *cert);

#endif
