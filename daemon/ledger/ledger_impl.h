/* The ledger engine's insides, shared by its files (ledger.c: open and
 * submit; execute.c: blocks; reads.c: the API's reads; verify_store.c).
 * Nothing outside daemon/ledger/ includes this. */
#ifndef TALLY_LEDGER_IMPL_H
#define TALLY_LEDGER_IMPL_H

#include <pthread.h>
#include <stdbool.h>

#include "daemon/consensus/round.h"
#include "daemon/ledger/ledger.h"
#include "daemon/ledger/mempool.h"
#include "daemon/ledger/store.h"
#include "lib/chain/state.h"
#include "lib/chain/verify.h"

#define LEDGER_DB "ledger.sqlite"
#define LEDGER_SIGNER_STATE "signer_state"
#define LOOP_QUEUE_MAX 16
#define LEDGER_DROPPED_MAX 1024

/* A transaction admitted and later left out of a block, and why: kept so
 * that its sender can learn what became of it. */
struct dropped_tx {
	uint8_t hash[HASH_LEN];
	uint64_t height;                     /* the block it was left out of */
	char why[WHY_MAX];
};

/* The devnet transport: messages this node sends come back to it. */
struct loop_msg {
	bool is_vote;
	struct proposal p;
	struct vote v;
	uint8_t who[PUBKEY_LEN];
	uint8_t sig[SIG_LEN];
};

struct ledger {
	pthread_mutex_t mu;
	struct store *st;
	struct state state;                  /* the committed state, on st */
	char chain_id[CHAIN_ID_MAX + 1];
	uint8_t genesis_hash[HASH_LEN];
	const struct tally_key *key;
	bool has_pv;
	struct privval pv;
	struct consensus cs;
	struct mempool *mp;
	size_t block_max_txs;
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
	ledger_hook_fn hook;
	void *hook_ctx;
	ledger_admit_fn admit;
	void *admit_ctx;

	/* The tip, as an auditor's verifier holds it: height, time, last block
	 * and certificate, the set that signs the next block, the usage log's
	 * frontier. Blocks are checked against it by lib/chain/verify.h. */
	struct chain_verifier tip;
	struct validator_set vals;           /* S_{height + 1}, with priorities */

	/* The last LEDGER_DROPPED_MAX transactions left out, a ring. */
	struct dropped_tx *dropped;
	size_t dropped_next;

	/* Consensus loopback. */
	struct loop_msg queue[LOOP_QUEUE_MAX];
	size_t nqueue;
	uint8_t building_id[HASH_LEN];
};

void ledger_lock(struct ledger *l);
/* Remembers a transaction left out of block `height` (with the lock held). */
void ledger_note_dropped(struct ledger *l, const uint8_t hash[HASH_LEN], uint64_t height,
			 const char *why);
void ledger_unlock(struct ledger *l);
void ledger_logf(struct ledger *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Tip, usage frontier, priorities and the state from the store (at open,
 * and after a failed block to drop whatever it left in memory). */
int ledger_load_tip(struct ledger *l, char *why);
/* The proposer priorities of S_{height + 1}, into the store's metadata. */
int ledger_put_priorities(struct ledger *l, const struct validator_set *s);
/* The loopback transport and the consensus round for a block this node
 * built (execute.c). */
void ledger_consensus_init(struct ledger *l);

#endif
