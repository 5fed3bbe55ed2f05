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
 * that no longer apply are dropped. Entries keep the signed bytes and the
 * few fields the pool orders them by (kind, signer, nonce), not the decoded
 * transaction (a struct tx is kilobytes, a USAGE transaction's bytes a few
 * hundred): where one is applied again (recheck, a held one's turn, block
 * production) it is decoded again from the bytes, which tx_check() already
 * took (mempool_tx_decode), and its signature is never verified again. Not
 * thread safe: the ledger's mempool lock covers it (daemon/ledger/ledger_impl.h).
 * The committed state it stands on is the ledger's read-only snapshot of
 * it, which moves on only after a block has committed and its
 * transactions have left the pool, so admission never sees a block half
 * applied.
 *
 * Held transactions. Clients that submit an account's transactions on
 * several connections cannot keep them in order: a transaction whose nonce
 * is ahead of the account's next one (counting its pending transactions) by
 * at most hold.ahead is held, outside the queue, until the gap fills; then
 * it is applied like any other (and refused then if it no longer applies).
 * A held transaction is checked for its signature alone, and a chain
 * without fees charges nothing for it, so only accounts the check state
 * knows are held for: a balance, a nonce used or a validator entry (a key
 * with none of these is free to make, and a few thousand fresh keys would
 * fill the hold); an unknown account's early nonce is TALLY_E_NONCE. The
 * window bounds an account's held transactions (hold.ahead at most),
 * hold.max bounds them in all. When they are full, an account that holds
 * fewer than the account holding most takes the place of that account's
 * highest nonce (dropped, "evicted"), so a few accounts (known ones cost a
 * transaction each, nothing more) cannot keep the others' out: the
 * account holding most, or as many as any, is refused (TALLY_E_CAPACITY).
 * A held transaction is also dropped, and reported to the held_dropped hook
 * as an eviction is, when its gap is still open hold.timeout_ns of block
 * time after it arrived, when its nonce was used by another transaction,
 * when it no longer applies once its turn comes, or when the pool is full
 * at that moment. A nonce further ahead, a nonce already used, the same
 * bytes or another transaction for a held nonce are refused as before
 * (TALLY_E_NONCE, TALLY_E_REPLAY). */
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
	enum tx_kind kind;           /* of the decoded transaction */
	uint8_t signer[PUBKEY_LEN];
	uint64_t nonce;
	uint8_t *bytes;              /* as signed; they passed tx_check() */
	size_t len;
	int oom;                     /* uthash could not index it */
	UT_hash_handle hh;           /* by hash */
};

struct mempool;

/* Bounds of the held transactions (see above). The window is eight batches
 * of LEDGER_BATCH_MAX (256): a client with one in flight on each of four
 * connections sends the next as soon as one is answered, so the others may
 * run past a request that waits (node_bench, four connections sending
 * batches of 256: 5% of records refused and sent again with a window of
 * 1024, none with 2048). The bound in all is eight windows, so that a few
 * accounts holding their whole window leave room for the others (and past
 * it, an account holding less takes the place of the one holding most); it
 * bounds the memory held at MEMPOOL_HOLD_MAX x TX_MAX_SIZE bytes (64 MiB,
 * about 5 MiB of USAGE records). */
#define MEMPOOL_HOLD_AHEAD 2048                        /* nonces past the next one */
#define MEMPOOL_HOLD_MAX 16384                         /* held in all */
#define MEMPOOL_HOLD_TIMEOUT_NS (30ull * 1000000000ull)  /* of block time */
struct mempool_hold {
	uint64_t ahead;                  /* 0: nothing is held (a gap is refused) */
	size_t max;
	uint64_t timeout_ns;
};

/* A pool of at most max transactions over the committed state (borrowed;
 * it must outlive the pool), holding with the MEMPOOL_HOLD_* bounds. */
struct mempool *mempool_new(size_t max, struct state *committed);
void mempool_free(struct mempool *m);
void mempool_set_hold(struct mempool *m, const struct mempool_hold *h);
/* Called under the caller's lock: entered for each transaction that joins
 * the queue (the one added, and held ones whose gap it filled), in queue
 * order; held_dropped for each held transaction dropped, with the reason.
 * Either may be NULL. */
void mempool_set_hooks(struct mempool *m,
		       void (*entered)(void *ctx, const struct mempool_entry *e),
		       void (*held_dropped)(void *ctx, const uint8_t hash[HASH_LEN], const char *why),
		       void *ctx);
/* Transactions queued; held; held ones dropped since the pool was made. */
size_t mempool_size(const struct mempool *m);
size_t mempool_held(const struct mempool *m);
uint64_t mempool_held_dropped(const struct mempool *m);
/* Whether a transaction with this hash is held. */
bool mempool_is_held(const struct mempool *m, const uint8_t hash[HASH_LEN]);

/* Applies t (which passed tx_check()) to the check state in the block bc
 * (the next height, the node's time), then queues it, and after it the held
 * transactions of its signer that now follow in nonce order. A nonce ahead
 * within the window holds t instead, when the check state knows its
 * account (TALLY_E_NONCE otherwise): 0 with *held true (held may be NULL
 * when the caller does not ask), having evicted another account's held
 * transaction when the hold was full (see above; TALLY_E_CAPACITY when
 * none may go). */
int mempool_add(struct mempool *m, const struct block_ctx *bc, const struct tx *t,
		const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN], bool *held,
		char *why);
/* The oldest entry, and the next one after e (NULL at the end). */
const struct mempool_entry *mempool_first(const struct mempool *m);
const struct mempool_entry *mempool_next(const struct mempool_entry *e);
/* Every transaction of the pool, the queued ones in queue order and then the
 * held ones in arrival order, with its signed bytes; stops at fn's first
 * non-zero return and returns it. For the pool's durable copy
 * (daemon/ledger/pending.h). */
int mempool_each(const struct mempool *m,
		 int (*fn)(void *ctx, const uint8_t *bytes, size_t len), void *ctx);
/* Decodes into *t, to apply it again, the bytes of a transaction that
 * passed tx_check() (a pool entry's, a batch's): 0, or the decoder's error
 * with why (which those bytes never draw). Its signature is not verified
 * again. */
int mempool_tx_decode(struct tx *t, const uint8_t *bytes, size_t len, char *why);
/* Applies e's transaction to s in the block bc as state_apply_tx() does,
 * decoded into *scratch (mempool_tx_decode); state_apply_tx's result. */
int mempool_entry_apply(const struct mempool_entry *e, struct state *s,
			const struct block_ctx *bc, struct tx *scratch, char *why);
/* The entry with this hash (a transaction whose signature was verified). */
const struct mempool_entry *mempool_find(const struct mempool *m, const uint8_t hash[HASH_LEN]);
/* The nonce the account's next transaction must carry, counting its pending
 * ones. */
int mempool_next_nonce(struct mempool *m, const uint8_t pub[PUBKEY_LEN], uint64_t *nonce);
/* Forgets a transaction a block committed, queued or held. */
void mempool_remove(struct mempool *m, const uint8_t hash[HASH_LEN]);
/* After a block (the committed state changed): a new check state, every
 * pending transaction applied to it again in order at bc, and the ones that
 * no longer apply dropped, each reported to dropped (may be NULL) with the
 * reason; then the held transactions whose turn came are queued, and those
 * that can never fit dropped (held_dropped hook). Returns the number of
 * pending ones dropped, or a negative tally_err if the store failed. */
long mempool_recheck(struct mempool *m, const struct block_ctx *bc,
		     void (*dropped)(void *ctx, const struct mempool_entry *e, const char *why),
		     void *ctx);

#endif
