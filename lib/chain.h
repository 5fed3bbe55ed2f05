/* Chain verification, as an auditor does it: block by block from genesis or
 * from a trusted checkpoint, checking links, heights, times, transaction and
 * usage-log roots, validator-set hashes and commit certificates (> 2/3 of
 * stake). The node itself and `tally audit` / `tally chain verify` share it. */
#ifndef TALLY_CHAIN_H
#define TALLY_CHAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/block.h"
#include "lib/genesis.h"
#include "lib/merkle.h"

struct chain_verifier {
	char chain_id[CHAIN_ID_MAX + 1];
	uint64_t height;                     /* last verified height */
	uint64_t time_ns;
	uint8_t last_block_id[HASH_LEN];     /* genesis hash at height 0 */
	uint8_t last_cert_hash[HASH_LEN];    /* zero at height 0 */
	struct validator_set vals;           /* signs the next block */
	struct merkle_frontier usage;        /* usage log, recomputed from USAGE txs */
};

/* A trusted starting point: a header the auditor pins (by block id), its
 * certificate, the validator set for the next block and the usage-log
 * frontier at that height (all fetched from a node and checked here). */
struct chain_checkpoint {
	struct block_header header;
	struct commit_cert cert;
	struct validator_set vals;
	struct merkle_frontier usage;
};

int chain_verifier_from_genesis(struct chain_verifier *v, const struct genesis *g);
/* Checks that the checkpoint's header has the pinned id, its certificate
 * verifies against vals when vals hashes to header.validators_hash, and the
 * frontier matches header.usage_size/usage_root. */
int chain_verifier_from_checkpoint(struct chain_verifier *v, const struct chain_checkpoint *cp,
				   const uint8_t pinned_block_id[HASH_LEN]);

/* Verifies the next block and its commit certificate. next_vals is the
 * validator set named by header.next_validators_hash when it differs from
 * the current one (NULL otherwise). On failure returns the specific error
 * (TALLY_E_HEIGHT, TALLY_E_LINK, TALLY_E_TXROOT, TALLY_E_USAGEROOT,
 * TALLY_E_VALSET, TALLY_E_CERT, TALLY_E_QUORUM, TALLY_E_SIGNATURE,
 * TALLY_E_CHAIN_ID, ...) and a sentence naming the height in why[256];
 * the verifier is left unchanged. */
int chain_verify_block(struct chain_verifier *v, const struct block *b,
		       const struct commit_cert *cert, const struct validator_set *next_vals,
		       char *why);

#endif
