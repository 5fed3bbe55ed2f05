/* The validator's signing guard (CometBFT's privval): a validator never
 * signs two different things for one (height, round, step). */
#ifndef TALLY_CONSENSUS_PRIVVAL_H
#define TALLY_CONSENSUS_PRIVVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/chain/block.h"
#include "lib/crypto.h"

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
/* Sign for the chain whose genesis hash is chain, if the guard allows. */
int privval_sign_vote(struct privval *pv, const uint8_t chain[HASH_LEN], const struct vote *v,
		      uint8_t sig[SIG_LEN], char *why);
int privval_sign_proposal(struct privval *pv, const uint8_t chain[HASH_LEN],
			  const struct proposal *p,
			  uint8_t sig[SIG_LEN], char *why);

#endif
