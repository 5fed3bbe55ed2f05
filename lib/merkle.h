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
 * failure has its own error (TALLY_E_PROOF_*), listed with each verifier
 * below. Proof hashes are in the RFC's order: the leaf (or old-tree) side
 * first, the root side last. */
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

/* Appends the leaf hash at index `size` (the tree's current size, which the
 * caller keeps) and stores every perfect subtree it completes: the leaf at
 * (0, size), then (1, size >> 1) when size is odd, and so on up. Returns 0,
 * the store's error, or TALLY_E_OVERFLOW for a full tree. */
int merkle_append(struct merkle_store *s, uint64_t size, const uint8_t leaf_hash[HASH_LEN]);
/* Root of the first `size` leaves (size may be below the current size; size 0
 * gives the empty root). TALLY_E_NOTFOUND when size is beyond the stored
 * tree. */
int merkle_root(struct merkle_store *s, uint64_t size, uint8_t out[HASH_LEN]);
/* PATH(index, D[0:size]) into proof[MERKLE_MAX_PROOF]; *n gets its length.
 * TALLY_E_PROOF_INDEX when index >= size, TALLY_E_NOTFOUND when size is
 * beyond the stored tree. */
int merkle_inclusion_proof(struct merkle_store *s, uint64_t index, uint64_t size,
			   uint8_t proof[][HASH_LEN], size_t *n);
/* PROOF(old_size, D[0:new_size]) into proof[MERKLE_MAX_PROOF]; empty when
 * old_size is 0 or equals new_size. TALLY_E_PROOF_RANGE when
 * old_size > new_size, TALLY_E_NOTFOUND when new_size is beyond the stored
 * tree. */
int merkle_consistency_proof(struct merkle_store *s, uint64_t old_size, uint64_t new_size,
			     uint8_t proof[][HASH_LEN], size_t *n);

/* RFC 9162 section 2.1.3.2. Returns 0 when the proof holds, else:
 *   step 1  index >= size                                TALLY_E_PROOF_INDEX
 *   step 4a a hash left over after sn reached 0          TALLY_E_PROOF_SIZE
 *   step 5  sn not 0 at the end (too few hashes)         TALLY_E_PROOF_SIZE
 *   step 5  the computed root differs from root          TALLY_E_PROOF_ROOT
 * The root, not the size, pins the tree: a proof also holds for another size
 * whose path to index has the same shape (PATH(0, 5) is PATH(0, 8) in form),
 * so take size and root together from one signed header. */
int merkle_inclusion_verify(uint64_t index, uint64_t size, const uint8_t leaf_hash[HASH_LEN],
			    const uint8_t proof[][HASH_LEN], size_t n,
			    const uint8_t root[HASH_LEN]);
/* RFC 9162 section 2.1.4.2, plus the cases the RFC leaves to the caller.
 * Returns 0 when the proof holds, else:
 *   pre     old_size > new_size                          TALLY_E_PROOF_RANGE
 *   pre     old_size == 0 with a non-empty proof         TALLY_E_PROOF_RANGE
 *   pre     old_size == 0, old_root not the empty root   TALLY_E_PROOF_ROOT
 *   pre     old_size == new_size, non-empty proof        TALLY_E_PROOF_SIZE
 *   pre     old_size == new_size, roots differ           TALLY_E_PROOF_ROOT
 *   step 1  empty proof (0 < old_size < new_size)        TALLY_E_PROOF_SIZE
 *   step 6a a hash left over after sn reached 0          TALLY_E_PROOF_SIZE
 *   step 7  sn not 0 at the end (too few hashes)         TALLY_E_PROOF_SIZE
 *   step 7  fr differs from old_root or sr from new_root TALLY_E_PROOF_ROOT
 * Any size is consistent with size 0: new_root is not checked then. */
int merkle_consistency_verify(uint64_t old_size, uint64_t new_size,
			      const uint8_t old_root[HASH_LEN], const uint8_t new_root[HASH_LEN],
			      const uint8_t proof[][HASH_LEN], size_t n);

/* The right edge of a tree (at most 64 hashes): enough to append and to
 * compute the current root without any stored nodes. Used by verifiers that
 * recompute roots block by block. */
struct merkle_frontier {
	uint64_t size;
	/* edge[k] is the root of the perfect subtree of 2^k leaves on the right
	 * edge when bit k of size is set (that subtree covers the leaves just
	 * before those of the lower set bits); every other entry is zero. */
	uint8_t edge[64][HASH_LEN];
};
void merkle_frontier_init(struct merkle_frontier *f);
/* Aborts on a tree of 2^64 - 1 leaves rather than wrap. */
void merkle_frontier_append(struct merkle_frontier *f, const uint8_t leaf_hash[HASH_LEN]);
void merkle_frontier_root(const struct merkle_frontier *f, uint8_t out[HASH_LEN]);

/* The frontier of the first `size` leaves of a stored tree (0, or the
 * store's error). */
int merkle_frontier_load(struct merkle_store *s, uint64_t size, struct merkle_frontier *f);
/* The inverse: stores the frontier's perfect subtrees, all that appends and
 * proofs of later leaves need from before it (an auditor starting at a
 * checkpoint). */
int merkle_store_seed(struct merkle_store *s, const struct merkle_frontier *f);

/* Root over a list of leaves in memory (transactions root of a block). */
void merkle_root_of(const uint8_t leaf_hashes[][HASH_LEN], size_t n, uint8_t out[HASH_LEN]);

#endif
