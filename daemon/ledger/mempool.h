/* The mempool: signed transactions waiting for a block.
 *
 * A transaction enters after tx_check() (strict decode, chain id, static
 * contract rules, signature) when it applies, by the chain's own state
 * transition (lib/chain/state.h), to a check state: the committed state
 * plus every transaction already pending, in memory over the store
 * (memstate_new_overlay). So admission refuses exactly what a block would:
 * a used or skipped nonce, a debit beyond the balance left after pending
 * ones, a lease transaction its lease's rules refuse (contracts/), and so
 * on. Beyond that, a transaction already pending is TALLY_E_REPLAY and a
 * full pool TALLY_E_CAPACITY.
 *
 * Transactions leave in arrival order, which is nonce order per signer.
 * After each block the check state is rebuilt over the new committed state
 * and the pending transactions are applied to it again in order; those
 * that no longer apply are dropped. Entries keep the decoded transaction, so
 * block production does not decode or verify a signature twice. Not thread
 * safe: the ledger's lock covers it. */
#ifndef TALLY_LEDGER_MEMPOOL_H
#define TALLY_LEDGER_MEMPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/chain/state.h"
#include "lib/chain/tx.h"
#include "lib/table.h"

struct mempool_entry {
	struct mempool_entry *next, *prev;
	uint8_t hash[HASH_LEN];
	struct tx tx;
	uint8_t *bytes;
	size_t len;
	int oom;                     /* uthash could not index it */
	UT_hash_handle hh;           /* by hash */
};

struct mempool;

/* A pool of at most max transactions over the committed state (borrowed;
 * it must outlive the pool). */
struct mempool *mempool_new(size_t max, struct state *committed);
void mempool_free(struct mempool *m);
size_t mempool_size(const struct mempool *m);

/* Applies t (which passed tx_check()) to the check state in the block bc
 * (the next height, the node's time), then queues it. */
int mempool_add(struct mempool *m, const struct block_ctx *bc, const struct tx *t,
		const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN], char *why);
/* The oldest entry, and the next one after e (NULL at the end). */
const struct mempool_entry *mempool_first(const struct mempool *m);
const struct mempool_entry *mempool_next(const struct mempool_entry *e);
/* The entry with this hash (a transaction whose signature was verified). */
const struct mempool_entry *mempool_find(const struct mempool *m, const uint8_t hash[HASH_LEN]);
/* The nonce the account's next transaction must carry, counting its pending
 * ones. */
int mempool_next_nonce(struct mempool *m, const uint8_t pub[PUBKEY_LEN], uint64_t *nonce);
void mempool_remove(struct mempool *m, const uint8_t hash[HASH_LEN]);
/* After a block (the committed state changed): a new check state, every
 * pending transaction applied to it again in order at bc, and the ones that
 * no longer apply dropped, each reported to dropped (may be NULL) with the
 * reason. Returns the number dropped, or a negative tally_err if the store
 * failed. */
long mempool_recheck(struct mempool *m, const struct block_ctx *bc,
		     void (*dropped)(void *ctx, const struct mempool_entry *e, const char *why),
		     void *ctx);

#endif
