/* Block execution: applying a block's transactions to the state and
 * computing the header fields that follow from them. The node runs it when
 * it builds a block and when it applies one made elsewhere; the auditor and
 * `tally chain verify` run it over the in-memory state; so a block is valid
 * for all of them by the same code.
 *
 * A block is valid for the state only when every one of its transactions
 * applies (a transaction that breaks a state rule makes the whole block
 * invalid: a proposer leaves such transactions out), and the header's
 * usage_size, usage_root, state_root and next_validators_hash equal what
 * execution produced. (Links, heights, times, the transactions root,
 * signatures and the commit certificate are lib/chain/verify.h's.) */
#ifndef TALLY_CHAIN_EXEC_H
#define TALLY_CHAIN_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "lib/chain/block.h"
#include "lib/chain/state.h"
#include "lib/chain/tx.h"

/* What executing a block produced. (Its transactions root is not
 * execution's: verification checks it, exec_fill_header fills it.) */
struct exec_result {
	uint64_t usage_size;
	uint8_t usage_root[HASH_LEN];
	uint8_t state_root[HASH_LEN];
	struct validator_set next_vals;      /* staked and unjailed after the block */
	uint8_t next_vals_hash[HASH_LEN];
	struct liveness_jailed downtime;     /* jailed by the liveness rule */
};

/* Once every transaction of b is applied: the liveness rule with lc, the
 * commit of the block before b that b's last_commit_hash names
 * (state_liveness; chain_last_commit gives it from the verifier b is
 * checked against; NULL only for a chain whose liveness_window is 0), the
 * end-of-block rules at b's height (state_end_block: unbonding stake
 * released, expired evidence pruned), then the state root, and r
 * (TALLY_E_VALSET when no validator would be left). */
int exec_finish(struct state *s, const struct block *b, const struct last_commit *lc,
		struct exec_result *r);

/* Applies every transaction of b at its header's height and time, in order,
 * then exec_finish with lc. txs holds the transactions decoded (b->ntx of them) or
 * is NULL to decode them here; receipts, when not NULL, receives one per
 * transaction. The first transaction that does not apply ends it: its error,
 * with why[WHY_MAX] naming the height, the index and the kind
 * ("block 7: transaction 2 (USAGE) does not apply: ..."); *failed_at, when
 * not NULL, gets its index. A store failure is returned as it is. */
int exec_block(struct state *s, const struct block *b, const struct last_commit *lc,
	       const struct tx *txs,
	       struct tx_receipt *receipts, struct exec_result *r, size_t *failed_at,
	       char *why);

/* The header's fields against what execution produced: 0, or the first that
 * differs (TALLY_E_USAGEROOT, TALLY_E_STATEROOT, TALLY_E_VALSET) with a
 * sentence naming the height. */
int exec_check_header(const struct block_header *h, const struct exec_result *r, char *why);

/* The header fields a proposer fills: b's transactions root
 * (block_txs_root) and the rest from r. */
void exec_fill_header(struct block *b, const struct exec_result *r);

#endif
