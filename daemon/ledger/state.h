/* Ledger state: applying one transaction, loading genesis, and the state
 * root.
 *
 * State root (byte-exact; docs/FORMATS.md takes it from here):
 *   - every state entry is (key, value):
 *       account   key = 0x01 || pubkey(32)   value = u64 balance | u64 nonce
 *       validator key = 0x02 || pubkey(32)   value = u64 stake | u8 jailed (0/1)
 *       lease     key = 0x03 || lease id(32) value = the lease's canonical
 *                                            encoding (lease_encode_to)
 *     (integers little-endian, as everywhere in lib/codec.h);
 *   - bucket(key) = big-endian u16 of the first 2 bytes of SHA-256(key),
 *     0..65535;
 *   - bucket hash = SHA-256(0x02 || for each entry of the bucket in ascending
 *     key order (bytewise): u32 len(key) || key || u32 len(value) || value);
 *     a bucket with no entry hashes to 32 zero bytes;
 *   - the state root is the binary Merkle tree over the 65536 bucket hashes
 *     in bucket order, node = SHA-256(0x01 || left || right), 16 levels (the
 *     bucket hashes are used as they are, with no 0x00 leaf hashing).
 *     Empty subtrees are not special: their hash is the same node rule over
 *     zero buckets, which the code precomputes per level.
 * Only entries that exist are hashed: an account appears once it has been
 * credited or has sent a transaction; an account with balance and nonce 0
 * that never existed is absent.
 *
 * The tree lives in memory (2 x 65536 hashes, rebuilt at open from the
 * stored bucket hashes); after each block only the buckets written in it
 * and their 16 ancestors are recomputed. */
#ifndef TALLY_LEDGER_STATE_H
#define TALLY_LEDGER_STATE_H

#include <stdint.h>

#include "daemon/ledger/store.h"
#include "lib/genesis.h"
#include "lib/tx.h"

#define STATE_TREE_LEVELS 16

struct state_tree {
	uint8_t (*node)[HASH_LEN];     /* heap: node[1] is the root, node[65536 + b] bucket b */
	uint8_t empty[STATE_TREE_LEVELS + 1][HASH_LEN];  /* by subtree height */
};

int state_tree_init(struct state_tree *t);
void state_tree_free(struct state_tree *t);
/* Rebuild the tree from the buckets table. */
int state_tree_load(struct state_tree *t, struct store *s);
/* Recompute the buckets written since the last call, store their hashes and
 * update the tree. Runs inside the block's SQLite transaction. */
int state_tree_update(struct state_tree *t, struct store *s);
void state_tree_root(const struct state_tree *t, uint8_t out[HASH_LEN]);
/* From scratch: every bucket from the state tables, for tests and audits. */
int state_root_recompute(struct store *s, uint8_t out[HASH_LEN]);

/* What one transaction applies against. */
struct apply_ctx {
	struct store *store;
	const char *chain_id;
	uint64_t height;         /* of the block being built */
	uint64_t time_ns;        /* its time */
	uint64_t usage_size;     /* usage log size; advanced by USAGE */
};

/* Applies a transaction whose signature and static rules were already
 * checked (tx_check). On a rule failure nothing is written and
 * why[WHY_MAX] says why; a store failure (TALLY_E_STORE, TALLY_E_DISKFULL)
 * may leave partial writes, and the caller must roll the block back. */
int state_apply_tx(struct apply_ctx *c, const struct tx *t, const uint8_t *bytes, size_t len,
		   const uint8_t hash[HASH_LEN], char *why);
/* True for errors that mean the store failed rather than the transaction. */
int state_err_is_fatal(int err);

/* Genesis accounts and validators into an empty store (in a transaction). */
int state_load_genesis(struct store *s, const struct genesis *g);

#endif
