/* The RFC 6962 / RFC 9162 Merkle log used for the usage log and the
 * transactions root:
 *     leaf hash = SHA-256(0x00 || leaf)
 *     node hash = SHA-256(0x01 || left || right)
 *     root of the empty tree = SHA-256("")
 *
 * A tree is kept as the hashes of its perfect subtrees: the node at
 * (level, index) covers leaves [index << level, (index + 1) << level). Where
 * those hashes live is the caller's choice (memory, SQLite) through
 * struct merkle_store; roots at any size and proofs are computed from them.
 *
 * Verification follows RFC 9162 section 2.1.3.2 and 2.1.4.2 line for line; every
 * failure has its own error (TALLY_E_PROOF_*). */
#ifndef TALLY_MERKLE_H
#define TALLY_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/crypto.h"

#define MERKLE_MAX_PROOF 64   /* hashes in any proof of a tree below 2^63 leaves */

void merkle_leaf_hash(const void *leaf, size_t n, uint8_t out[HASH_LEN]);
void merkle_node_hash(const uint8_t left[HASH_LEN], const uint8_t right[HASH_LEN],
		      uint8_t out[HASH_LEN]);
void merkle_empty_root(uint8_t out[HASH_LEN]);

/* Storage of perfect-subtree hashes. get returns 0 or TALLY_E_NOTFOUND. */
struct merkle_store {
	void *ctx;
	int (*get)(void *ctx, unsigned level, uint64_t index, uint8_t out[HASH_LEN]);
	int (*put)(void *ctx, unsigned level, uint64_t index, const uint8_t hash[HASH_LEN]);
};

/* An in-memory store, for tests, the CLI and auditors. */
struct merkle_store *merkle_mem_store_new(void);
void merkle_mem_store_free(struct merkle_store *s);

/* Appends the leaf hash at index `size` (the tree's current size) and stores
 * every perfect subtree it completes. */
int merkle_append(struct merkle_store *s, uint64_t size, const uint8_t leaf_hash[HASH_LEN]);
/* Root of the first `size` leaves (size may be below the current size). */
int merkle_root(struct merkle_store *s, uint64_t size, uint8_t out[HASH_LEN]);
int merkle_inclusion_proof(struct merkle_store *s, uint64_t index, uint64_t size,
			   uint8_t proof[][HASH_LEN], size_t *n);
int merkle_consistency_proof(struct merkle_store *s, uint64_t old_size, uint64_t new_size,
			     uint8_t proof[][HASH_LEN], size_t *n);

int merkle_inclusion_verify(uint64_t index, uint64_t size, const uint8_t leaf_hash[HASH_LEN],
			    const uint8_t proof[][HASH_LEN], size_t n,
			    const uint8_t root[HASH_LEN]);
int merkle_consistency_verify(uint64_t old_size, uint64_t new_size,
			      const uint8_t old_root[HASH_LEN], const uint8_t new_root[HASH_LEN],
			      const uint8_t proof[][HASH_LEN], size_t n);

/* The right edge of a tree (at most 64 hashes): enough to append and to
 * compute the current root without any stored nodes. Used by verifiers that
 * recompute roots block by block. */
struct merkle_frontier {
	uint64_t size;
	uint8_t edge[64][HASH_LEN];   /* perfect subtree roots, one per set bit of size */
};
void merkle_frontier_init(struct merkle_frontier *f);
void merkle_frontier_append(struct merkle_frontier *f, const uint8_t leaf_hash[HASH_LEN]);
void merkle_frontier_root(const struct merkle_frontier *f, uint8_t out[HASH_LEN]);

/* Root over a list of leaves in memory (transactions root of a block). */
void merkle_root_of(const uint8_t leaf_hashes[][HASH_LEN], size_t n, uint8_t out[HASH_LEN]);

#endif
