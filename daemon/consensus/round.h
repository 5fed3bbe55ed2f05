/* Consensus: a Tendermint/CometBFT-style round state machine.
 *
 * Today the devnet has one validator: it proposes, prevotes and precommits
 * itself and its precommit forms the commit certificate. The state machine
 * is already fed by events (proposal received, vote received, timeout) and
 * sends through an injected transport, so peers exchanging proposals and
 * votes over the network plug in without changing it.
 */
#ifndef TALLY_CONSENSUS_ROUND_H
#define TALLY_CONSENSUS_ROUND_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/consensus/privval.h"
#include "daemon/consensus/proposer.h"
#include "lib/chain/block.h"
#include "lib/crypto.h"

enum cs_step {
	CS_PROPOSE = 1,
	CS_PREVOTE = 2,
	CS_PRECOMMIT = 3,
	CS_DECIDED = 4,
};

/* How messages leave this node. For the devnet a loopback queue; for a
 * network, gossip to peers (who feed them to cs_on_proposal / cs_on_vote). */
struct cs_transport {
	void *ctx;
	void (*send_proposal)(void *ctx, const struct proposal *p, const uint8_t sig[SIG_LEN]);
	void (*send_vote)(void *ctx, const struct vote *v, const uint8_t validator[PUBKEY_LEN],
			  const uint8_t sig[SIG_LEN]);
	/* Ask to be called back with cs_on_timeout(height, round, step); may be NULL. */
	void (*schedule_timeout)(void *ctx, uint64_t height, uint32_t round, uint8_t step);
};

/* Votes of one round of one type, by validator index. */
struct vote_tally {
	bool have[VALIDATORS_MAX];
	uint8_t block_id[VALIDATORS_MAX][HASH_LEN];
	uint8_t sig[VALIDATORS_MAX][SIG_LEN];
};

struct consensus {
	uint8_t chain[HASH_LEN];         /* the genesis hash signatures are bound to */
	struct privval *pv;              /* NULL on a non-validating node */
	struct cs_transport tr;
	/* Asked before prevoting for a proposed block: 0 when the block is valid. */
	int (*block_valid)(void *ctx, const uint8_t block_id[HASH_LEN]);
	void *app_ctx;

	uint64_t height;
	uint32_t round;
	uint8_t step;                    /* enum cs_step */
	struct validator_set vals;       /* S_height */
	bool have_proposal;
	struct proposal proposal;
	bool locked;
	uint32_t locked_round;
	uint8_t locked_id[HASH_LEN];
	struct vote_tally prevotes, precommits;   /* of the current round */
	struct commit_cert cert;         /* when step == CS_DECIDED */
	char why[256];                   /* the last refusal, for logs */
};

void cs_init(struct consensus *cs, const uint8_t chain[HASH_LEN], struct privval *pv,
	     const struct cs_transport *tr);
/* Enter round `round` of `height` with S_height. */
void cs_start(struct consensus *cs, uint64_t height, uint32_t round,
	      const struct validator_set *vals);
/* This node's validator is the proposer of the current round. */
bool cs_is_proposer(const struct consensus *cs);
const uint8_t *cs_proposer(const struct consensus *cs);
/* As the proposer: sign and send a proposal for block_id. */
int cs_propose(struct consensus *cs, const uint8_t block_id[HASH_LEN]);
/* Events. Each returns 0 when the message was taken (or harmlessly ignored as
 * stale) and an error for a bad signature or an unknown signer. */
int cs_on_proposal(struct consensus *cs, const struct proposal *p, const uint8_t sig[SIG_LEN]);
int cs_on_vote(struct consensus *cs, const struct vote *v, const uint8_t validator[PUBKEY_LEN],
	       const uint8_t sig[SIG_LEN]);
int cs_on_timeout(struct consensus *cs, uint64_t height, uint32_t round, uint8_t step);
/* The commit certificate once decided. */
bool cs_decided(const struct consensus *cs, struct commit_cert *out);

#endif
