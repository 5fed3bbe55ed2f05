/* The ledger state and its transition: accounts, validators, leases and the
 * usage log, and what each transaction does to them.
 *
 * This is the one rule set. It is pure: the state lives behind a small
 * storage interface (struct state_backend: SQLite in the node,
 * lib/chain/memstate.h in the auditor and the tests), nothing here reads a
 * clock, draws a random number or does I/O, and iteration is in key order.
 * Validators and auditors run this same code, so an audit is exactly as
 * strict as the chain and recomputes every state root.
 *
 * State entries are (key, value) pairs of bytes:
 *   account   key = 0x01 || pubkey(32)   value = u64 balance | u64 nonce
 *   validator key = 0x02 || pubkey(32)   value = u64 stake | u8 jailed (0/1)
 *   lease     key = 0x03 || lease id(32) value = lease_encode_to() of the lease
 *   provider  key = 0x20 || pubkey(32)   value = u8 version (2) | u64 height |
 *                                        the announcement (contracts/provider.h)
 *   unbonding key = 0x04 || u64 BE release height || tx hash[0..24)
 *                                        value = fixed32 owner | u64 amount | u64 since
 *   evidence  key = 0x05 || SHA-256(validator | u64 height | u32 round | u8 type)
 *                                        value = u64 height of the block that judged it
 *   params    key = 0x06 || 32 zero bytes value = chain_params_encode (version-2 genesis)
 *   liveness  key = 0x07 || pubkey(32)   value = u64 jailed_until | u64 missed
 *                                        (present only while one is not 0;
 *                                        missed: the consecutive commits of
 *                                        sets it was in that lack its
 *                                        precommit, state_liveness)
 * (integers little-endian, as everywhere in lib/codec.h). An account appears
 * once it has been credited or has sent a transaction; one with balance and
 * nonce 0 that never existed is absent. A backend put of an empty value
 * deletes the key (no entry has an empty value).
 *
 * State root (byte-exact; docs/FORMATS.md section 9):
 *   - bucket(key) = big-endian u16 of the first 2 bytes of SHA-256(key);
 *   - bucket hash = SHA-256(0x02 || for each entry of the bucket in ascending
 *     key order (bytewise): u32 len(key) || key || u32 len(value) || value);
 *     a bucket with no entry hashes to 32 zero bytes;
 *   - the state root is the binary Merkle tree over the 65536 bucket hashes
 *     in bucket order, node = SHA-256(0x01 || left || right), 16 levels (the
 *     bucket hashes are used as they are, with no 0x00 leaf hashing).
 * The tree lives in memory (2 x 65536 hashes); after each block only the
 * buckets written in it and their 16 ancestors are recomputed.
 *
 * Transaction rules (beyond tx_check_rules, which state_apply_tx applies at
 * the block's time through tx_check_rules_at_block; signatures are the
 * caller's: chain_verify_block or the node's admission):
 *   - every kind: nonce == the signer's account nonce (lower:
 *     TALLY_E_REPLAY, higher: TALLY_E_NONCE); on success the nonce is
 *     incremented. A missing account reads as balance 0, nonce 0.
 *   - LEASE_OPEN: the contract's provider has an announcement that admits
 *     it (provider_offer_admits: image, prices, interval; TALLY_E_CONTRACT);
 *     the deposit moves from the tenant's balance to the lease's escrow;
 *     lease id = the transaction's hash.
 *   - LEASE_START, USAGE, LEASE_CLOSE: the lease rules of contracts/
 *     (lease_start, lease_apply_usage, lease_close: who may sign what, and
 *     when). USAGE appends the full signed transaction to the usage log
 *     (leaf = merkle_leaf_hash(tx bytes)), charges the escrow and credits
 *     the provider; a close returns the escrow left to the tenant.
 *   - TRANSFER: amount from the signer's balance to `to`.
 *   - STAKE: any account; balance to stake (a validator entry is created
 *     on the first). A staker is a candidate once its stake reaches the
 *     params' min_self_stake; state_validator_set picks the set.
 *   - UNSTAKE: a staker; the amount leaves the stake at once and becomes an
 *     unbonding entry released (to the balance) at the end of block
 *     height + unbonding_blocks (at once when that is 0); refused when the
 *     set would be empty (TALLY_E_STATE).
 *   - EVIDENCE: lib/chain/evidence.h's rules, the accused a validator the
 *     state knows (TALLY_E_UNAUTHORIZED), the votes' height not above the
 *     block's (TALLY_E_RANGE) nor older than the unbonding period
 *     (TALLY_E_EXPIRED), the offence not judged before (TALLY_E_EXISTS, an
 *     evidence entry). Slashes slash_ppm (floor) of the offender's stake and
 *     of its unbonding entries begun at or after the offence, burned, and
 *     jails it until height + jail_blocks; refused when the set would be
 *     empty (TALLY_E_STATE).
 *   - UNJAIL: a jailed validator whose term is over (TALLY_E_STATE before).
 *   - PROVIDER: the signer's registry entry becomes the announcement, at
 *     this height (an update replaces it whole); the withdrawal (no image)
 *     needs a standing announcement (TALLY_E_NOTFOUND) and leaves the entry
 *     withdrawn (kept, like a validator with stake 0). Leases already open
 *     keep their contracts.
 * After the transactions, state_liveness counts missed commits and jails
 * for downtime, and state_end_block releases due unbonding entries and
 * prunes expired evidence entries.
 * All arithmetic is on uint64_t with explicit overflow checks. A
 * transaction reads what it touches into local copies, checks every rule,
 * and only then writes, so a refused transaction writes nothing. */
#ifndef TALLY_CHAIN_STATE_H
#define TALLY_CHAIN_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "lib/chain/block.h"
#include "lib/chain/genesis.h"
#include "lib/chain/tx.h"
#include "lib/crypto.h"

#define STATE_BUCKETS 65536
#define STATE_TREE_LEVELS 16
#define STATE_KEY_LEN 33          /* type byte + 32-byte id */
#define STATE_VALUE_MAX 4096      /* no entry's value encodes larger */

/* Key types of state entries (first byte of the key). */
enum state_key_type {
	STATE_KEY_ACCOUNT = 1,
	STATE_KEY_VALIDATOR = 2,
	STATE_KEY_LEASE = 3,
	STATE_KEY_UNBONDING = 4,
	STATE_KEY_EVIDENCE = 5,
	STATE_KEY_PARAMS = 6,
	STATE_KEY_LIVENESS = 7,
	STATE_KEY_PROVIDER = 0x20,
};

/* 2: the announcement holds its SLA bounds (a version-1 entry is
 * TALLY_E_VERSION: nothing of the older layout is kept). */
#define PROVIDER_ENTRY_VERSION 2

/* A provider's registry entry: its last announcement (or withdrawal) and
 * the height of the block that committed it. */
struct provider_entry {
	uint64_t height;
	struct provider_offer offer;
};

struct account {
	uint64_t balance;
	uint64_t nonce;
};

struct validator_entry {
	uint64_t stake;
	bool jailed;
};

/* Stake on its way back to a balance (section 10.8 of docs/FORMATS.md). */
struct unbonding {
	uint64_t release;                /* paid back at the end of this block */
	uint8_t tag[24];                 /* the UNSTAKE's hash, first 24 bytes */
	uint8_t owner[PUBKEY_LEN];
	uint64_t amount;
	uint64_t since;                  /* the block of the UNSTAKE */
};

/* A validator's jail term and liveness count. */
struct liveness {
	uint64_t jailed_until;           /* UNJAIL allowed from this height on */
	uint64_t missed;                 /* consecutive commits missed */
};

/* Called for each entry, in ascending key order; a non-zero return stops
 * the scan and is returned. */
typedef int (*state_entry_fn)(void *ctx, const uint8_t *key, size_t klen,
			      const uint8_t *val, size_t vlen);

/* Where the state lives. Every function returns 0 or a tally_err; a
 * failure of the store itself is TALLY_E_STORE, TALLY_E_DISKFULL or
 * TALLY_E_NOMEM (state_err_is_fatal). */
struct state_backend {
	void *ctx;
	/* The value of key into val[cap]; TALLY_E_NOTFOUND when absent. */
	int (*get)(void *ctx, const uint8_t *key, size_t klen, uint8_t *val, size_t cap,
		   size_t *vlen);
	int (*put)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
	/* Every entry whose key starts with type, in ascending key order. */
	int (*scan_type)(void *ctx, uint8_t type, state_entry_fn fn, void *fctx);
	/* Every entry of one bucket, in ascending key order. */
	int (*scan_bucket)(void *ctx, uint32_t bucket, state_entry_fn fn, void *fctx);
	/* The usage log: leaf_hash appended at index (the log's size), and the
	 * record it came from (its tx hash, lease and seq) for the node's reads. */
	int (*usage_append)(void *ctx, uint64_t index, const uint8_t leaf_hash[HASH_LEN],
			    const uint8_t tx_hash[HASH_LEN], const uint8_t lease_id[LEASE_ID_LEN],
			    uint64_t seq);
	int (*usage_root)(void *ctx, uint64_t size, uint8_t out[HASH_LEN]);
	/* Optional (NULL in memory): keep bucket hashes, so that opening a
	 * large state does not rehash every entry. An all-zero hash deletes. */
	int (*bucket_hash_put)(void *ctx, uint32_t bucket, const uint8_t hash[HASH_LEN]);
	int (*bucket_hash_each)(void *ctx,
				int (*fn)(void *fctx, uint32_t bucket, const uint8_t hash[HASH_LEN]),
				void *fctx);
};

/* A copy of a state's tree made ready for its next trial (trial_commit
 * leaves one): state_open_copy takes it instead of copying 4 MiB. It is
 * the tree node as it stood at version (struct state's tree_version). */
struct state_spare {
	uint8_t (*node)[HASH_LEN];           /* NULL once taken */
	const void *of;
	uint64_t version;
};

struct state {
	struct state_backend be;
	uint64_t usage_size;                 /* usage log size */
	uint8_t (*node)[HASH_LEN];           /* the tree: node[1] the root, node[65536 + b] bucket b */
	uint8_t empty[STATE_TREE_LEVELS + 1][HASH_LEN];   /* empty subtree hash by height */
	uint8_t *dirty_bits;                 /* buckets written since the last root update */
	uint32_t *dirty;
	size_t ndirty;
	uint64_t tree_version;               /* moves whenever node changes */
	struct state_spare *spare;           /* NULL, or a copy of node for a trial */
};

/* Binds s to a backend holding a state whose usage log has usage_size
 * leaves, and builds the tree (from the kept bucket hashes when the backend
 * keeps them, else from every entry). */
int state_open(struct state *s, const struct state_backend *be, uint64_t usage_size);
/* A state over be, which holds base's entries and takes the writes (a
 * memory overlay over base's backend), whose tree starts as a copy of
 * base's: a block tried on it gives the roots it would give on base, and
 * base is not changed (lib/chain/trial.h). TALLY_E_STATE when base keeps no
 * tree or has writes not yet in its root. */
int state_open_copy(struct state *s, const struct state_backend *be, const struct state *base);
/* Keeps copy (malloc'd, 2 * 65536 nodes, equal to s->node as it stands) as
 * s's spare for its next state_open_copy, which then takes it instead of
 * copying the tree; any change to s's tree before then voids it. Takes
 * copy in every case (out of memory: freed, and the next copy is made). */
void state_spare_keep(struct state *s, uint8_t (*copy)[HASH_LEN]);
/* A state with no root (the mempool's check state): the transition runs,
 * state_root_update is TALLY_E_STATE. */
void state_open_scratch(struct state *s, const struct state_backend *be, uint64_t usage_size);
void state_close(struct state *s);
/* After the backend rolled back: forget the written buckets and rebuild the
 * tree from the backend, with the usage log at usage_size. */
int state_reload(struct state *s, uint64_t usage_size);

/* Recomputes the buckets written since the last call (storing their hashes
 * where the backend keeps them) and their ancestors. */
int state_root_update(struct state *s);
void state_root(const struct state *s, uint8_t out[HASH_LEN]);
/* From scratch, every bucket from the entries (slow: tests and audits). */
int state_root_recompute(struct state *s, uint8_t out[HASH_LEN]);
/* bucket(key) as above. Each thread remembers the buckets of the keys it
 * asked for last (the same keys come back within a block), compared whole,
 * so the answer is always SHA-256's. */
uint32_t state_bucket_of(const uint8_t *key, size_t klen);
/* Marks the bucket of an entry just written (every entry write calls it). */
void state_mark_dirty(struct state *s, uint32_t bucket);
/* SHA-256 hash of one bucket from its entries (zero when empty). */
int state_bucket_hash(struct state *s, uint32_t bucket, uint8_t out[HASH_LEN]);
/* Hands every entry of one bucket, in ascending key order, to fn. */
typedef int (*state_scan_fn)(void *sctx, state_entry_fn fn, void *fctx);
/* The bucket hash of the entries scan gives (the rule above; zero for
 * none): the one computation behind state_bucket_hash and state proofs
 * (lib/chain/state_proof.h). Returns scan's error, or TALLY_E_NOMEM. */
int state_bucket_hash_scan(state_scan_fn scan, void *sctx, uint8_t out[HASH_LEN]);

/* The key of an entry: type (enum state_key_type) || id. */
void state_key(uint8_t key[STATE_KEY_LEN], uint8_t type, const uint8_t id[32]);

/* Typed entries. A missing account reads as zeros with TALLY_E_NOTFOUND;
 * a missing validator or lease is TALLY_E_NOTFOUND. A stored value that
 * does not decode is TALLY_E_STORE. */
int state_account_get(struct state *s, const uint8_t pub[PUBKEY_LEN], struct account *a);
int state_account_put(struct state *s, const uint8_t pub[PUBKEY_LEN], const struct account *a);
int state_validator_get(struct state *s, const uint8_t pub[PUBKEY_LEN],
			struct validator_entry *v);
int state_validator_put(struct state *s, const uint8_t pub[PUBKEY_LEN],
			const struct validator_entry *v);
/* Every validator entry in ascending pubkey order. */
int state_validator_each(struct state *s,
			 int (*fn)(void *ctx, const uint8_t pub[PUBKEY_LEN],
				   const struct validator_entry *v), void *ctx);
int state_lease_get(struct state *s, const uint8_t id[LEASE_ID_LEN], struct lease *l);
int state_lease_put(struct state *s, const struct lease *l);
/* A provider's entry; TALLY_E_NOTFOUND when it never announced. A
 * withdrawn entry reads as found (provider_offer_withdrawn). */
int state_provider_get(struct state *s, const uint8_t pub[PUBKEY_LEN], struct provider_entry *p);
int state_provider_put(struct state *s, const uint8_t pub[PUBKEY_LEN],
		       const struct provider_entry *p);
/* Every provider entry (withdrawn ones too) in ascending pubkey order; a
 * non-zero return of fn stops the scan and is returned. */
int state_provider_each(struct state *s,
			int (*fn)(void *ctx, const uint8_t pub[PUBKEY_LEN],
				  const struct provider_entry *p), void *ctx);
/* The chain's parameters: the params entry, or GENESIS_V1_PARAMS when there
 * is none (a version-1 genesis). */
int state_params(struct state *s, struct chain_params *p);
/* The validator set that signs the next block, in pubkey order, priorities
 * 0: among the validator entries not jailed with stake >= min_self_stake,
 * the max_validators of most stake (equal stakes: the smaller pubkey
 * first). TALLY_E_VALSET when none qualifies. */
int state_validator_set(struct state *s, struct validator_set *out);
/* The same as if pub's entry were *v (a transaction's check before it
 * writes). */
int state_validator_set_if(struct state *s, const uint8_t pub[PUBKEY_LEN],
			   const struct validator_entry *v, struct validator_set *out);
/* Unbonding entries in ascending key order (release height first). */
int state_unbonding_each(struct state *s,
			 int (*fn)(void *ctx, const struct unbonding *u), void *ctx);
/* Writes u, or deletes it when u->amount is 0. */
int state_unbonding_put(struct state *s, const struct unbonding *u);
/* A missing liveness entry reads as zeros with TALLY_E_NOTFOUND. */
int state_liveness_get(struct state *s, const uint8_t pub[PUBKEY_LEN], struct liveness *l);
/* Writes l, or deletes the entry when both fields are 0. */
int state_liveness_put(struct state *s, const uint8_t pub[PUBKEY_LEN], const struct liveness *l);
/* The evidence entry's id for an offence (validator, height, round, type). */
void state_evidence_id(const uint8_t validator[PUBKEY_LEN], const struct vote *v,
		       uint8_t id[32]);
/* The height that judged it; TALLY_E_NOTFOUND when never judged. */
int state_evidence_get(struct state *s, const uint8_t id[32], uint64_t *height);
int state_evidence_put(struct state *s, const uint8_t id[32], uint64_t height);
/* Every evidence entry in ascending id order; a non-zero return of fn stops
 * the scan and is returned (fn may not write evidence entries). */
int state_evidence_each(struct state *s,
			int (*fn)(void *ctx, const uint8_t id[32], uint64_t height), void *ctx);
int state_evidence_del(struct state *s, const uint8_t id[32]);

/* End-of-block rules (section 10.1 of docs/FORMATS.md), which exec_finish
 * runs after the block's transactions and state_liveness: the unbonding
 * entries whose release height is at most height are paid to their owners
 * and removed; when unbonding_blocks > 0, the evidence entries judged at
 * or before height - unbonding_blocks are removed (any evidence they could
 * refuse as judged is now refused as expired: its votes are at most as
 * recent as the block that judged them). */
int state_end_block(struct state *s, uint64_t height);

/* Who the liveness rule jailed in one block, in pubkey order. */
struct liveness_jailed {
	size_t n;
	uint8_t pub[VALIDATORS_MAX][PUBKEY_LEN];
};

/* The liveness rule (section 10.10 of docs/FORMATS.md), which exec_finish
 * runs at the end of block height, before state_end_block. Off (nothing
 * read or written but the params) when params.liveness_window is 0 or
 * height < 2. Else lc must hold the certificate of block height - 1 whose
 * SHA-256 is named (the header's last_commit_hash) and the set that signed
 * height - 1: TALLY_E_CERT when either is missing or the certificate is
 * not the named one for height - 1. For each member of that set, in pubkey
 * order, whose validator entry exists and is not jailed: missed = 0 when
 * its precommit is in the certificate, else missed + 1 (saturating). One
 * whose missed reaches the window is jailed, without slashing:
 * jailed = 1, jailed_until = height + jail_blocks, missed = 0; so it leaves
 * the set that signs height + 1 (this block's next_validators_hash). Two
 * limits keep the chain live, checked for each in pubkey order with the
 * jailings before it: the validators one block jails hold together less
 * than 1/3 of the stake of the set that signed height - 1, and the set
 * after it is not empty; one that a limit spares keeps its count and is
 * jailed at a later block that allows it. jailed, when not NULL, receives
 * who was jailed. A store failure is returned as it is. */
int state_liveness(struct state *s, uint64_t height, const uint8_t named[HASH_LEN],
		   const struct last_commit *lc, struct liveness_jailed *jailed);

/* Value encodings, as hashed into buckets (decoders are strict). */
void account_value_encode(struct enc *e, const struct account *a);
int account_value_decode(struct account *a, const uint8_t *p, size_t n);
void validator_value_encode(struct enc *e, const struct validator_entry *v);
int validator_value_decode(struct validator_entry *v, const uint8_t *p, size_t n);
void provider_value_encode(struct enc *e, const struct provider_entry *p);
int provider_value_decode(struct provider_entry *p, const uint8_t *v, size_t n);

/* Genesis accounts and validators into an empty state. */
int state_load_genesis(struct state *s, const struct genesis *g);

/* The block a transaction is applied in. */
struct block_ctx {
	const char *chain_id;
	uint64_t height;
	uint64_t time_ns;        /* the block's time, unix ns */
};

/* What applying one transaction did, for the node's logs and the auditor's
 * report. */
struct tx_receipt {
	uint8_t kind;                    /* enum tx_kind */
	bool has_lease;
	uint8_t lease_id[LEASE_ID_LEN];  /* the lease it concerns */
	uint8_t lease_state;             /* the lease's state after it */
	uint8_t close_reason;
	struct usage_charge charge;      /* USAGE: the record's charge */
	uint64_t paid;                   /* USAGE: escrow paid to the provider */
	uint64_t usage_index;            /* USAGE: its position in the usage log */
	uint64_t refund;                 /* a close: escrow back to the tenant */
	uint64_t slashed;                /* EVIDENCE: stake burned */
};

/* Applies a transaction whose signature was already checked. On a rule
 * failure nothing is written and why[WHY_MAX] says why; a store failure
 * (state_err_is_fatal) may leave partial writes, and the caller must roll
 * the block back. r may be NULL. */
int state_apply_tx(struct state *s, const struct block_ctx *b, const struct tx *t,
		   const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN],
		   struct tx_receipt *r, char *why);
/* True for errors that mean the store failed rather than the transaction. */
bool state_err_is_fatal(int err);

#endif
