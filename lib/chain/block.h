/* Blocks, votes and commit certificates.
 *
 * Header (canonical encoding in this field order):
 *   u8 version | str chain_id | u64 height | u64 time_ns | fixed32 prev_block_id |
 *   fixed32 txs_root | u64 usage_size | fixed32 usage_root | fixed32 state_root |
 *   fixed32 validators_hash | fixed32 next_validators_hash | fixed32 proposer |
 *   fixed32 last_commit_hash
 * The block id is SHA-256 of the encoded header. txs_root is the RFC 6962 root
 * over the block's transactions (leaf = the full signed transaction);
 * usage_size/usage_root describe the usage log after this block; state_root
 * commits to accounts, validators and leases after this block;
 * last_commit_hash is SHA-256 of the previous block's commit certificate
 * (zero at height 1).
 *
 * A block body is the header followed by u32 count and each transaction as
 * length-prefixed bytes.
 *
 * A vote is  u8 type | u64 height | u32 round | fixed32 block_id, signed in
 * domain SIG_VOTE. A commit certificate is
 *   u64 height | u32 round | fixed32 block_id | u32 count |
 *   count x (fixed32 validator | fixed64 precommit signature)
 * with validators in ascending byte order and no repeats. A block is final
 * when the signers hold more than 2/3 of the validator set's stake. */
#ifndef TALLY_BLOCK_H
#define TALLY_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/codec.h"
#include "lib/crypto.h"

#define BLOCK_VERSION 1
#define BLOCK_MAX_TXS 10000
#define VALIDATORS_MAX 128

struct block_header {
	uint8_t version;
	char chain_id[CHAIN_ID_MAX + 1];
	uint64_t height;                 /* genesis state is height 0; first block is 1 */
	uint64_t time_ns;                /* unix ns, strictly increasing */
	uint8_t prev_block_id[HASH_LEN];
	uint8_t txs_root[HASH_LEN];
	uint64_t usage_size;
	uint8_t usage_root[HASH_LEN];
	uint8_t state_root[HASH_LEN];
	uint8_t validators_hash[HASH_LEN];
	uint8_t next_validators_hash[HASH_LEN];
	uint8_t proposer[PUBKEY_LEN];
	uint8_t last_commit_hash[HASH_LEN];
};

void header_encode(struct enc *e, const struct block_header *h);
int header_decode_from(struct dec *d, struct block_header *h);
int header_decode(struct block_header *h, const uint8_t *p, size_t n);
void block_id(const struct block_header *h, uint8_t out[HASH_LEN]);

/* One transaction of a block: its bytes and, when hashed, their hashes,
 * computed from these bytes on this machine (never taken from a peer):
 * hash is tx_hash of the bytes, leaf their RFC 6962 leaf hash (the
 * transaction's leaf in txs_root and, for a USAGE, in the usage log).
 * block_decode and block_tx_replace compute them once for all that follows
 * (verification, execution, the node's records); a block put together
 * from borrowed bytes leaves hashed false (zeroed), and block_tx_hash and
 * block_tx_leaf compute them when asked. The bytes are const so that
 * hashes cannot go stale in place: a transaction is changed whole
 * (block_tx_replace, or the struct moved with its hashes). */
struct block_tx {
	const uint8_t *bytes;
	size_t len;
	bool hashed;
	uint8_t hash[HASH_LEN];
	uint8_t leaf[HASH_LEN];
};

/* The transaction's hash and leaf hash: the kept ones when hashed, else
 * computed from the bytes. */
void block_tx_hash(const struct block_tx *t, uint8_t out[HASH_LEN]);
void block_tx_leaf(const struct block_tx *t, uint8_t out[HASH_LEN]);

struct block {
	struct block_header header;
	size_t ntx;
	struct block_tx *txs;            /* owned: the array and each malloc'd bytes */
};

/* Sets the encoder's error to TALLY_E_TOOLONG when ntx > BLOCK_MAX_TXS or a
 * transaction is longer than TX_MAX_SIZE. */
void block_encode(struct enc *e, const struct block *b);
/* Strict; copies every transaction. On failure b is left empty (freed). */
int block_decode(struct block *b, const uint8_t *p, size_t n);
void block_free(struct block *b);
/* Transaction i of a decoded block (one whose bytes it owns) becomes a copy
 * of bytes[len], hashed anew; the header is left as it is (a tool or test
 * that makes a changed block). TALLY_E_RANGE when i >= ntx, TALLY_E_TOOLONG
 * above TX_MAX_SIZE, TALLY_E_NOMEM (then nothing changed). */
int block_tx_replace(struct block *b, size_t i, const uint8_t *bytes, size_t len);
/* Where each transaction's bytes lie in an encoded block (block_encode's
 * layout), without copying them: fn(ctx, i, off, len) for transaction i in
 * order, its bytes p[off .. off + len). As strict as block_decode (the same
 * walk); a non-zero return of fn stops it and is returned. The node's
 * store keeps these places instead of a second copy of the bytes. */
int block_tx_each(const uint8_t *p, size_t n,
		  int (*fn)(void *ctx, size_t i, size_t off, size_t len), void *ctx);
/* RFC 6962 root over the block's transactions (from their kept leaf
 * hashes where hashed). */
void block_txs_root(const struct block *b, uint8_t out[HASH_LEN]);

enum vote_type {
	VOTE_PREVOTE = 1,
	VOTE_PRECOMMIT = 2,
};

struct vote {
	uint8_t type;
	uint64_t height;
	uint32_t round;
	uint8_t block_id[HASH_LEN];
};

#define VOTE_LEN (1 + 8 + 4 + HASH_LEN)   /* encoded size of a vote */

void vote_encode(struct enc *e, const struct vote *v);
/* Strict; type must be VOTE_PREVOTE or VOTE_PRECOMMIT (else TALLY_E_RANGE). */
int vote_decode(struct vote *v, const uint8_t *p, size_t n);
/* The same, reading from d (for a vote inside a larger message). */
int vote_decode_from(struct dec *d, struct vote *v);
/* Signatures in domain SIG_VOTE, bound to the chain whose genesis hash is
 * chain. */
int vote_sign(const struct vote *v, const struct tally_key *k, const uint8_t chain[HASH_LEN],
	      uint8_t sig[SIG_LEN]);
int vote_verify(const struct vote *v, const uint8_t pub[PUBKEY_LEN],
		const uint8_t chain[HASH_LEN], const uint8_t sig[SIG_LEN]);

struct validator {
	uint8_t pubkey[PUBKEY_LEN];
	uint64_t stake;
	int64_t priority;                /* proposer priority; not hashed */
};

/* Kept sorted by pubkey. */
struct validator_set {
	size_t n;
	struct validator v[VALIDATORS_MAX];
};

uint64_t valset_total_stake(const struct validator_set *s);
const struct validator *valset_find(const struct validator_set *s, const uint8_t pub[PUBKEY_LEN]);
/* u32 count | count x (fixed32 pubkey | u64 stake): what valset_hash
 * hashes and what stores and export files hold. */
void valset_encode(struct enc *e, const struct validator_set *s);
/* Strict: the decoded set must pass valset_check (TALLY_E_VALSET), the one
 * rule for sets; a count above VALIDATORS_MAX is TALLY_E_TOOLONG. */
int valset_decode_from(struct dec *d, struct validator_set *s);
/* SHA-256 of valset_encode. */
void valset_hash(const struct validator_set *s, uint8_t out[HASH_LEN]);
/* 0 when the set is well formed: 1..VALIDATORS_MAX members, pubkeys strictly
 * ascending, every stake > 0, total stake within 64 bits; else TALLY_E_VALSET. */
int valset_check(const struct validator_set *s);

struct commit_sig {
	uint8_t validator[PUBKEY_LEN];
	uint8_t sig[SIG_LEN];
};

struct commit_cert {
	uint64_t height;
	uint32_t round;
	uint8_t block_id[HASH_LEN];
	size_t n;
	struct commit_sig sigs[VALIDATORS_MAX];
};

void cert_encode(struct enc *e, const struct commit_cert *c);
/* Strict: at most VALIDATORS_MAX signers (TALLY_E_TOOLONG), in strictly
 * ascending order (TALLY_E_ENCODING), so a certificate has one encoding. */
int cert_decode(struct commit_cert *c, const uint8_t *p, size_t n);
void cert_hash(const struct commit_cert *c, uint8_t out[HASH_LEN]);
/* Every signature a precommit for (height, round, block_id) by a member of
 * vals, in ascending validator order, signers' stake * 3 > total * 2.
 * Returns TALLY_E_CERT (signers out of order, repeated or not members),
 * TALLY_E_SIGNATURE or TALLY_E_QUORUM. That height and block_id are the ones
 * the caller expects is the caller's check (chain_verify_block makes it). */
int cert_verify(const struct commit_cert *c, const struct validator_set *vals,
		const uint8_t chain[HASH_LEN]);

/* The commit of block h - 1 as block h's execution sees it: the
 * certificate its header's last_commit_hash names and the validator set
 * that signed h - 1 (the liveness rule, lib/chain/state.h). Either is NULL
 * when not known (height 1, or a chain verified from a checkpoint). */
struct last_commit {
	const struct commit_cert *cert;
	const struct validator_set *signers;
};

/* A proposer's proposal of a block for (height, round). */
struct proposal {
	uint64_t height;
	uint32_t round;
	int32_t pol_round;           /* -1: no proof-of-lock round */
	uint8_t block_id[HASH_LEN];
};

/* u64 height | u32 round | u32 pol_round (two's complement) | fixed32 block_id,
 * signed in domain SIG_PROPOSAL. */
void proposal_encode(struct enc *e, const struct proposal *p);
#define PROPOSAL_LEN (8 + 4 + 4 + HASH_LEN)   /* encoded size of a proposal */
/* Strict; pol_round must be -1 or below round (else TALLY_E_RANGE). */
int proposal_decode(struct proposal *p, const uint8_t *b, size_t n);
int proposal_decode_from(struct dec *d, struct proposal *p);
int proposal_verify(const struct proposal *p, const uint8_t pub[PUBKEY_LEN],
		    const uint8_t chain[HASH_LEN], const uint8_t sig[SIG_LEN]);

#endif
