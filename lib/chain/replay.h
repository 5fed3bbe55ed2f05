/* Replaying a chain from genesis, as an auditor does it and as a node
 * checks its own store: every block is verified (lib/chain/verify.h:
 * links, heights, times, transactions root, signatures, usage log, commit
 * certificate) and executed on an in-memory state (lib/chain/exec.h), and
 * its header's state root, usage log and next validator set must be what
 * executing it produced. So a chain that replays is one that every
 * validator would have accepted, rule for rule, and the state after it is
 * known. */
#ifndef TALLY_CHAIN_REPLAY_H
#define TALLY_CHAIN_REPLAY_H

#include <stdbool.h>

#include "lib/chain/exec.h"
#include "lib/chain/genesis.h"
#include "lib/chain/memstate.h"
#include "lib/chain/state.h"
#include "lib/chain/verify.h"

struct replay {
	struct chain_verifier v;         /* the last replayed block */
	struct memstate *mem;
	struct state state;              /* after the last replayed block */
	bool broken;                     /* a block failed: the state is not the chain's */
	bool signed_ok;                  /* the last block's signatures and certificate
					  * verified, whether or not it then executed */
};

/* The genesis state (TALLY_E_NOMEM, or the genesis's own error with
 * why[WHY_MAX]). */
int replay_init(struct replay *r, const struct genesis *g, char *why);
void replay_free(struct replay *r);

/* Verifies and executes the next block. next_vals is the validator set the
 * block names for the next height when it changes (an export file carries
 * it), or NULL to take the one execution produced. receipts, when not NULL,
 * receives one per transaction. On failure returns the specific error with
 * why[WHY_MAX] naming the height (and the transaction and rule when a
 * transaction does not apply); the replay is then broken and refuses any
 * further block. */
int replay_block(struct replay *r, const struct block *b, const struct commit_cert *cert,
		 const struct validator_set *next_vals, struct tx_receipt *receipts, char *why);

#endif
