/* Proposer selection: CometBFT's weighted round robin over the validator
 * set (proposer priorities), and the priorities' encoding for the store.
 * For one increment:
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
#ifndef TALLY_CONSENSUS_PROPOSER_H
#define TALLY_CONSENSUS_PROPOSER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/chain/block.h"
#include "lib/codec.h"

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

#endif
