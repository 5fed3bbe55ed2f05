/* The mempool: signed transactions waiting for a block.
 *
 * A transaction enters after tx_check() (strict decode, chain id, static
 * contract rules, signature) and the stateful checks here, made against the
 * committed state plus the transactions already pending:
 *   - its hash is not pending already (TALLY_E_REPLAY);
 *   - its nonce is the signer's next one, counting pending transactions of
 *     the same signer (used: TALLY_E_REPLAY, gap: TALLY_E_NONCE);
 *   - a LEASE_OPEN deposit, TRANSFER or STAKE amount fits in the balance left
 *     after the signer's pending debits (TALLY_E_BALANCE);
 *   - START/USAGE/CLOSE name a committed lease in a state that allows them,
 *     signed by its provider (START, USAGE) or tenant/provider (CLOSE);
 *   - STAKE/UNSTAKE come from a validator; EVIDENCE is refused for now;
 *   - the pool holds fewer than its bound (TALLY_E_CAPACITY).
 * Transactions leave in arrival order, which is nonce order per signer.
 * Entries keep the decoded transaction, so block production does not decode
 * or verify a signature twice. Not thread safe: the ledger's lock covers it. */
#ifndef TALLY_LEDGER_MEMPOOL_H
#define TALLY_LEDGER_MEMPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/ledger/store.h"
#include "lib/tx.h"

struct mempool_entry {
	struct mempool_entry *next, *prev;
	uint8_t hash[HASH_LEN];
	struct tx tx;
	uint8_t *bytes;
	size_t len;
};

struct mempool;

struct mempool *mempool_new(size_t max);
void mempool_free(struct mempool *m);
size_t mempool_size(const struct mempool *m);

/* Stateful checks, then add. t must have passed tx_check(). */
int mempool_add(struct mempool *m, struct store *s, const struct tx *t, const uint8_t *bytes,
		size_t len, const uint8_t hash[HASH_LEN], char *why);
/* The oldest entry, and the next one after e (NULL at the end). */
const struct mempool_entry *mempool_first(const struct mempool *m);
const struct mempool_entry *mempool_next(const struct mempool_entry *e);
/* The entry with this hash (a transaction whose signature was verified). */
const struct mempool_entry *mempool_find(const struct mempool *m, const uint8_t hash[HASH_LEN]);
/* The next nonce of a signer with pending transactions (false if none). */
bool mempool_next_nonce(const struct mempool *m, const uint8_t pub[PUBKEY_LEN], uint64_t *nonce);
void mempool_remove(struct mempool *m, const uint8_t hash[HASH_LEN]);
/* After a block: run the stateful checks again over every entry, in order,
 * against the new state, and drop the ones that no longer pass. Returns
 * the number dropped, or a negative tally_err if the store failed. */
long mempool_recheck(struct mempool *m, struct store *s);

#endif
