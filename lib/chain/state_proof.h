/* State proofs: one entry of the state (an account, a validator, a lease)
 * proven against a committed state root, so that what a node or an export
 * file says the chain holds is checked, not trusted. The node makes them,
 * the export file carries them, `tally audit` and `tally chain verify`
 * check them: all through this file.
 *
 * A proof opens the bucket of the key (lib/chain/state.h: the first two
 * bytes of SHA-256(key), big-endian) with every entry it holds, and gives
 * the 16 sibling hashes on the path from that bucket to the root:
 *
 *   u8      version     1
 *   u32     bucket      0..65535
 *   u32     n           0..STATE_PROOF_ENTRIES_MAX entries, then n x
 *     bytes key         STATE_KEY_LEN (33) bytes, in the bucket, strictly
 *                       ascending (bytewise)
 *     bytes value       0..STATE_VALUE_MAX (4096) bytes
 *   16 x fixed32 sibling  sibling[0] is bucket ^ 1's hash (the leaf level),
 *                       sibling[k] the hash of the other child at height k
 *                       of the tree, sibling[15] the root's child not on
 *                       the path
 *
 * The entries are exactly the bytes the bucket hash hashes, so the verifier
 * recomputes the bucket hash, folds the siblings up (at level k, bit k of
 * the bucket says whether the path is the right child) and compares the
 * root. Because the proof holds the whole bucket, it proves absence too: a
 * key of that bucket that is not among the entries is not in the state.
 * docs/FORMATS.md, "State proofs", has the same and a vector. */
#ifndef TALLY_CHAIN_STATE_PROOF_H
#define TALLY_CHAIN_STATE_PROOF_H

#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "lib/chain/state.h"
#include "lib/codec.h"

#define STATE_PROOF_VERSION 1
/* A bucket holds about entries / 65536 of the state's entries; this bound
 * is far above that, and keeps a proof below 300 MiB. */
#define STATE_PROOF_ENTRIES_MAX 65536

struct state_proof_entry {
	uint8_t key[STATE_KEY_LEN];
	uint8_t *value;                      /* owned */
	size_t vlen;
};

struct state_proof {
	uint32_t bucket;
	size_t n;
	struct state_proof_entry *e;         /* owned; ascending keys */
	uint8_t sibling[STATE_TREE_LEVELS][HASH_LEN];
};

/* The proof of key (klen must be STATE_KEY_LEN) in s, whose tree must be up
 * to date (state_root_update called since the last write; TALLY_E_STATE
 * otherwise, or for a scratch state). TALLY_E_TOOLONG when its bucket holds
 * more than STATE_PROOF_ENTRIES_MAX entries. The key need not exist. */
int state_proof_make(struct state *s, const uint8_t *key, size_t klen, struct state_proof *p);
void state_proof_free(struct state_proof *p);
/* A deep copy (TALLY_E_NOMEM). */
int state_proof_copy(struct state_proof *dst, const struct state_proof *src);

void state_proof_encode(struct enc *e, const struct state_proof *p);
/* Strict: version (TALLY_E_VERSION), bucket above 65535 or a key of
 * another length (TALLY_E_RANGE), more entries than the maximum or a value
 * above STATE_VALUE_MAX (TALLY_E_TOOLONG), keys not strictly ascending or
 * not of the bucket (TALLY_E_ENCODING). On failure p is left empty. */
int state_proof_decode_from(struct dec *d, struct state_proof *p);
int state_proof_decode(struct state_proof *p, const uint8_t *b, size_t n);

/* The state root the proof leads to. */
void state_proof_root(const struct state_proof *p, uint8_t out[HASH_LEN]);

/* Checks the proof for key against root: the key's bucket is the proof's
 * (TALLY_E_PROOF_INDEX) and the proof leads to root (TALLY_E_PROOF_ROOT).
 * Then *value (a view into p) and *vlen are the key's value, or *value is
 * NULL when the state proven holds no such key. */
int state_proof_verify(const struct state_proof *p, const uint8_t *key, size_t klen,
		       const uint8_t root[HASH_LEN], const uint8_t **value, size_t *vlen);

/* The lease id's state as the proof holds it, without checking a root
 * (TALLY_E_NOTFOUND when the proof does not hold the lease; a value that
 * does not decode as a lease of that id: its decode error). why[WHY_MAX]. */
int state_proof_lease_value(const struct state_proof *p, const uint8_t id[LEASE_ID_LEN],
			    struct lease *out, char *why);
/* The provider's registry entry as the proof holds it, without checking a
 * root (TALLY_E_NOTFOUND when the proof does not hold it; a value that does
 * not decode: its decode error). */
int state_proof_provider_value(const struct state_proof *p, const uint8_t pub[PUBKEY_LEN],
			       struct provider_entry *out);
/* state_proof_verify for the lease's key against root, then
 * state_proof_lease_value: the lease proven to be in that state. */
int state_proof_lease(const struct state_proof *p, const uint8_t id[LEASE_ID_LEN],
		      const uint8_t root[HASH_LEN], struct lease *out, char *why);

#endif
