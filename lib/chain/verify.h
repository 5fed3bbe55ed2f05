/* Chain verification, as an auditor does it: block by block from genesis or
 * from a trusted checkpoint, checking links, heights, times, transaction and
 * usage-log roots, validator-set hashes and commit certificates (> 2/3 of
 * stake). The node itself and `tally audit` / `tally chain verify` share it. */
#ifndef TALLY_CHAIN_H
#define TALLY_CHAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/chain/block.h"
#include "lib/chain/genesis.h"
#include "lib/merkle.h"

struct chain_verifier {
	char chain_id[CHAIN_ID_MAX + 1];
	uint8_t genesis_hash[HASH_LEN];      /* every signature is bound to it */
	uint64_t height;                     /* last verified height */
	uint64_t time_ns;
	uint8_t last_block_id[HASH_LEN];     /* genesis hash at height 0 */
	uint8_t last_cert_hash[HASH_LEN];    /* zero at height 0 */
	struct commit_cert last_cert;        /* the last block's certificate, the one
					      * the next block must name (height 0: none) */
	struct validator_set vals;           /* signs the next block */
	struct validator_set last_vals;      /* signed the last block (n = 0: none, or not known) */
	struct merkle_frontier usage;        /* usage log, recomputed from USAGE txs */
	/* Optional: true when this transaction's signature was already checked
	 * (a node's mempool); NULL checks every one. */
	bool (*tx_verified)(void *ctx, const uint8_t hash[HASH_LEN]);
	void *tx_verified_ctx;
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
/* Checks that the checkpoint's header is a version 1 header of g's chain
 * (TALLY_E_VERSION, TALLY_E_CHAIN_ID), has the pinned id (TALLY_E_LINK), that
 * vals is well formed and hashes to header.next_validators_hash (it signs the
 * next block; TALLY_E_VALSET), that the certificate names the header
 * (TALLY_E_CERT) and, when vals also hashes to header.validators_hash (the set
 * did not change at this block), that it verifies against vals; and that the
 * frontier matches header.usage_size/usage_root (TALLY_E_USAGEROOT). When
 * the set did change, the pinned id is the trust and the next block's
 * last_commit_hash binds the certificate. Signatures are bound to g's
 * genesis hash. On failure why[256] names the block and what differs. */
int chain_verifier_from_checkpoint(struct chain_verifier *v, const struct chain_checkpoint *cp,
				   const uint8_t pinned_block_id[HASH_LEN], const struct genesis *g,
				   char *why);

/* Verifies the next block and its commit certificate: version and chain id,
 * height = last + 1, time strictly after the last (after genesis_time_ns for
 * block 1; TALLY_E_RANGE), prev_block_id and last_commit_hash links,
 * validators_hash, proposer a member of the set (TALLY_E_UNAUTHORIZED),
 * txs_root, every transaction strictly decoded, for this chain and signed,
 * the usage log after appending each USAGE transaction's bytes, and the
 * certificate (height, block id, > 2/3 of stake). next_vals is the
 * validator set named by header.next_validators_hash when it differs from
 * the current one (NULL otherwise). On failure returns the specific error
 * (TALLY_E_HEIGHT, TALLY_E_LINK, TALLY_E_TXROOT, TALLY_E_USAGEROOT,
 * TALLY_E_VALSET, TALLY_E_CERT, TALLY_E_QUORUM, TALLY_E_SIGNATURE,
 * TALLY_E_CHAIN_ID, ...) and a sentence naming the height in why[256];
 * the verifier is left unchanged. */
/* chain_verify_block in two steps, for a node that executes the block in
 * between to learn the next validator set: the header, transactions and
 * certificate against v (which it does not change; *usage receives the usage
 * log after the block), then advancing v past the block. */
/* What a validator checks of a proposed block before executing it: the
 * header, transactions and usage log as chain_verify_header does, without a
 * certificate (a proposal has none yet). */
int chain_verify_proposal(const struct chain_verifier *v, const struct block *b,
			  struct merkle_frontier *usage, char *why);
int chain_verify_header(const struct chain_verifier *v, const struct block *b,
			const struct commit_cert *cert, struct merkle_frontier *usage, char *why);
int chain_advance(struct chain_verifier *v, const struct block *b,
		  const struct commit_cert *cert, const struct merkle_frontier *usage,
		  const struct validator_set *next_vals, char *why);

/* The certificate of the last block that the next block, whose header is
 * next, names.
 *
 * Validators each assemble a certificate for a block from the precommits
 * they received (any signers with more than 2/3 of the stake), so theirs
 * may differ; the next block's last_commit_hash names one, the one its
 * proposer held, and that one becomes the chain's (as CometBFT's LastCommit
 * does). A node that holds another one adopts it: next must be the next
 * height (TALLY_E_HEIGHT), c a certificate for the last block (height and
 * id, TALLY_E_CERT) that verifies against the set that signed it
 * (v->last_vals; TALLY_E_VALSET when unknown); v->last_cert_hash becomes its
 * hash. v is unchanged on failure. */
int chain_adopt_last_cert(struct chain_verifier *v, const struct block_header *next,
			  const struct commit_cert *c, char *why);

/* What the next block's execution needs of the last block's commit (the
 * liveness rule, lib/chain/state.h): v's last certificate and the set that
 * signed it; signers is NULL when that set is not known (a checkpoint). */
void chain_last_commit(const struct chain_verifier *v, struct last_commit *lc);

/* The chain's one clock rule (issue 11, kind 8), applied alike by every
 * node: a block may be dated at most max_future_ns after the clock of the
 * node judging it, now_ns (both unix ns). A validator prevotes nil on a
 * proposed block that is not ("timely", daemon/consensus/engine.c); a node
 * refuses a block it syncs that is not, rather than take its chain ahead of
 * its clock (a certified block that far ahead means this node's clock is
 * behind, or most validators' are ahead). That a block is dated strictly
 * after the last one is chain_verify_header's. 0, or TALLY_E_FUTURE with a
 * sentence saying how far ahead. */
#define CHAIN_MAX_FUTURE_NS (3000ull * 1000000ull)
int chain_check_block_time(uint64_t time_ns, uint64_t now_ns, uint64_t max_future_ns,
			   char *why);

int chain_verify_block(struct chain_verifier *v, const struct block *b,
		       const struct commit_cert *cert, const struct validator_set *next_vals,
		       char *why);

#endif
