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
 * signature leaves:
 *   u8 version(2) | u64 height | u32 round | u8 step | fixed32 block_id |
 *   fixed64 signature | fixed32 SHA-256 of everything before it
 * (version 1, written before, has no checksum and is still read). After a
 * restart it refuses to sign for a lower (height, round, step), or the same
 * one with another block.
 *
 * A file that is cut short, torn or otherwise damaged is refused
 * (TALLY_E_ENCODING, and why says what to do): a validator that does not
 * know what it signed could sign twice. The one safe repair is
 * privval_repair(). A state without a signature (all zeros: what a repair
 * writes) is never sent again as one. */
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

#define PRIVVAL_FILE_LEN (1 + 8 + 4 + 1 + HASH_LEN + SIG_LEN + HASH_LEN)
/* The round a repair puts the guard at. Round r's timeouts grow by r times
 * their delta (timeout.h), so reaching round 2^16 of one height takes honest
 * validators years: every round the validator could have signed in lies
 * below. Small enough that a proposer's priorities are computed for it at
 * once (proposer.c iterates the rounds). */
#define PRIVVAL_REPAIR_ROUND (1u << 16)

int privval_open(struct privval *pv, const char *path, const struct tally_key *key, char *why);
/* Replaces a damaged (or missing) file at path with a guard that has
 * signed through PRIVVAL_REPAIR_ROUND of next_height, the one height the
 * validator can have signed without the store holding its block (the
 * store's tip + 1): every height at or below the tip is final, so nothing
 * is signed there again, and at next_height signing resumes at round
 * PRIVVAL_REPAIR_ROUND + 1, above any round it could have reached. The
 * damaged file is kept as path.damaged. Only correct when the store is this
 * validator's newest (not restored from a backup). */
int privval_repair(const char *path, uint64_t next_height, char *why);
void privval_close(struct privval *pv);
/* The round at which this validator takes part in height: after a repair
 * at that height, the first round above the guard's (it can sign nothing
 * below); else 0. The engine starts the height there, so that a lone
 * validator still decides the height it was repaired at. */
uint32_t privval_first_round(const struct privval *pv, uint64_t height);
/* Sign for the chain whose genesis hash is chain, if the guard allows. */
int privval_sign_vote(struct privval *pv, const uint8_t chain[HASH_LEN], const struct vote *v,
		      uint8_t sig[SIG_LEN], char *why);
int privval_sign_proposal(struct privval *pv, const uint8_t chain[HASH_LEN],
			  const struct proposal *p,
			  uint8_t sig[SIG_LEN], char *why);

#endif
