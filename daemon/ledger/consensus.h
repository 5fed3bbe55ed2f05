/* Consensus: proposer selection, the validator's signing guard and a
 * Tendermint/CometBFT-style round state machine.
 *
 * Today the devnet has one validator: it proposes, prevotes and precommits
 * itself and its precommit forms the commit certificate. The state machine
 * is already fed by events (proposal received, vote received, timeout) and
 * sends through an injected transport, so peers exchanging proposals and
 * votes over the network plug in without changing it.
 *
 * Proposer selection is CometBFT's weighted round robin (proposer
 * priorities). For one increment:
 *   1. if max(priority) - min(priority) > 2 * total stake, divide every
 *      priority by ceil(diff / (2 * total)) (truncating toward zero);
 *   2. subtract floor(sum(priority) / n) from every priority (centering);
 *   3. add each validator's stake to its priority;
 *   4. the proposer is the validator with the highest priority, ties going
 *      to the smaller pubkey; subtract the total stake from its priority.
 * The set at height H (priorities S_H) gives proposer(H, r) = the validator
 * chosen by the (r+1)-th increment of a copy of S_H; S_{H+1} is S_H after one
 * increment, with stakes updated from the state (a validator new to the set
 * starts at -1.125 * total, as CometBFT does; one that left is dropped).
 * S_1 is the genesis set with every priority 0. Priorities are not hashed
 * into headers. */
#ifndef TALLY_LEDGER_CONSENSUS_H
#define TALLY_LEDGER_CONSENSUS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/block.h"
#include "lib/crypto.h"

/* --- proposer selection ---------------------------------------------------- */

/* One increment (steps 1-4 above); returns the proposer's index. */
size_t valset_increment(struct validator_set *s);
/* The proposer of round `round` for a set holding S_H (s is not changed). */
size_t valset_proposer(const struct validator_set *s, uint32_t round);
/* S_{H+1}: one increment of *cur, then stakes and membership from *stakes
 * (priorities in *stakes ignored). */
void valset_next(const struct validator_set *cur, const struct validator_set *stakes,
		 struct validator_set *out);
/* Encoding with priorities, for the store: u32 n | n x (fixed32 pubkey |
 * u64 stake | u64 priority as two's complement). */
void priorities_encode(struct enc *e, const struct validator_set *s);
int priorities_decode(struct validator_set *s, const uint8_t *p, size_t n);

/* --- proposals --------------------------------------------------------------- */

struct proposal {
	uint64_t height;
	uint32_t round;
	int32_t pol_round;           /* -1: no proof-of-lock round */
	uint8_t block_id[HASH_LEN];
};

/* u64 height | u32 round | u32 pol_round (two's complement) | fixed32 block_id,
 * signed in domain SIG_PROPOSAL. */
void proposal_encode(struct enc *e, const struct proposal *p);

/* --- the validator's signing guard ------------------------------------------- */

enum sign_step {
	SIGN_PROPOSAL = 1,
	SIGN_PREVOTE = 2,
	SIGN_PRECOMMIT = 3,
};

/* What the validator last signed, kept in a file and fsynced before any
 * signature leaves: u8 version(1) | u64 height | u32 round | u8 step |
 * fixed32 block_id | fixed64 signature. After a restart it refuses to sign
 * for a lower (height, round, step), or the same one with another block. */
struct privval {
	const struct tally_key *key;     /* borrowed */
	char *path;
	bool any;                        /* anything signed yet */
	uint64_t height;
	uint32_t round;
	uint8_t step;
	uint8_t block_id[HASH_LEN];
	uint8_t sig[SIG_LEN];
};

int privval_open(struct privval *pv, const char *path, const struct tally_key *key, char *why);
void privval_close(struct privval *pv);
int privval_sign_vote(struct privval *pv, const char *chain_id, const struct vote *v,
		      uint8_t sig[SIG_LEN], char *why);
int privval_sign_proposal(struct privval *pv, const char *chain_id, const struct proposal *p,
			  uint8_t sig[SIG_LEN], char *why);

/* --- the round state machine -------------------------------------------------- */

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
	char chain_id[CHAIN_ID_MAX + 1];
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

void cs_init(struct consensus *cs, const char *chain_id, struct privval *pv,
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
