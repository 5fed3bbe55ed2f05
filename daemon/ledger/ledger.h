/* The ledger engine, as tallyd uses it: a store in a data directory bound to
 * one genesis, a mempool, the application side of consensus (building,
 * checking and committing blocks for daemon/consensus/engine.h, which it
 * hosts), application of blocks made elsewhere, and reads for the API.
 *
 * Files in the data directory:
 *   ledger.sqlite (+ -wal, -shm)   the store (daemon/ledger/store.c)
 *   signer_state                   what the validator last signed (privval.h)
 *   consensus.wal                  the height being decided (wal.h)
 *   mempool.log                    the transactions accepted and not yet
 *                                  committed, read again at open (pending.h)
 *
 * Every function takes the engine's lock (a recursive mutex), so the API
 * server may call from several threads, and the commit hook may call the
 * getters. Functions return 0 or a tally_err; where a why[WHY_MAX] buffer is
 * given it receives a sentence for the user. */
#ifndef TALLY_LEDGER_H
#define TALLY_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "daemon/consensus/engine.h"
#include "daemon/ledger/store.h"
#include "lib/chain/block.h"
#include "lib/chain/genesis.h"
#include "lib/chain/state_proof.h"
#include "lib/merkle.h"
#include "lib/chain/tx.h"

#define LEDGER_MEMPOOL_DEFAULT 100000

struct ledger;
struct mempool_hold;                     /* daemon/ledger/mempool.h */

/* What a committed block hands to the hook: everything borrowed for the
 * duration of the call. */
struct ledger_committed {
	const struct block_header *header;
	const uint8_t *block_id;            /* HASH_LEN */
	size_t ntx;
	const uint8_t (*hashes)[HASH_LEN];  /* tx hashes, in block order */
	const struct block_tx *raw;         /* the signed bytes */
};
typedef void (*ledger_hook_fn)(void *ctx, const struct ledger_committed *c);

struct ledger_config {
	const char *data_dir;               /* created (0700) if missing */
	const struct genesis *genesis;
	const struct tally_key *validator_key;  /* NULL on a non-validating node; borrowed */
	/* A damaged signer_state is replaced by privval_repair() at the
	 * store's tip + 1 (tallyd --repair-signer-state) instead of refused. */
	bool repair_signer_state;
	size_t mempool_max;                 /* 0: LEDGER_MEMPOOL_DEFAULT */
	/* Bounds of the transactions held for a nonce gap (mempool.h); NULL:
	 * the MEMPOOL_HOLD_* defaults. */
	const struct mempool_hold *hold;
	size_t block_max_txs;               /* 0: BLOCK_MAX_TXS */
	/* Free bytes data_dir keeps in reserve: with less, ledger_submit refuses
	 * new transactions (TALLY_E_DISKFULL), so those already admitted can
	 * still commit. 0: no reserve. */
	uint64_t min_free_bytes;
	/* Log lines (a transaction dropped from a block, ...); NULL: stderr. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
	/* Consensus (daemon/consensus/engine.h); zeros give the defaults. */
	struct cs_timeouts timeouts;         /* all zero: cs_timeouts_default() */
	uint64_t max_future_ns;              /* 0: CS_MAX_FUTURE_MS (proposals and synced blocks) */
	bool empty_blocks;                   /* false: between heights, wait for transactions */
	/* The transport carrying consensus messages and timers; NULL: the
	 * devnet's loopback (this node is its only peer; ledger_consensus_tick
	 * fires its timers). With a transport the engine runs on a node without
	 * a validator key too, following consensus without voting. */
	const struct engine_io *consensus_io;
	/* A validator's two conflicting votes (NULL: logged only). */
	void (*evidence)(void *ctx, const struct cs_evidence *ev);
	void *evidence_ctx;
	/* A transaction entered the mempool (called under the ledger's lock,
	 * so it must not call the ledger): the driver wakes at once instead
	 * of at its next poll, so an idle chain starts a height without
	 * waiting. NULL: the driver finds it at its poll. */
	void (*txs_waiting)(void *ctx);
	void *txs_waiting_ctx;
};

/* Creates the store from the genesis (state at height 0) or reopens it,
 * refusing a store made for another genesis or chain id. */
int ledger_open(struct ledger **out, const struct ledger_config *cfg, char *why);
void ledger_close(struct ledger *l);

/* Checks a signed transaction (tx_check with the wall clock, then the
 * mempool's stateful checks) and queues it, or holds it when its nonce is
 * ahead within the mempool's window (daemon/ledger/mempool.h). hash
 * receives its hash. */
int ledger_submit(struct ledger *l, const uint8_t *bytes, size_t len, uint8_t hash[HASH_LEN],
		  char *why);
/* The same, with the node's own admission between the two: admit (may be
 * NULL) is called with the decoded, signature-checked transaction and its
 * hash, and a non-zero return refuses it with that error. When the mempool
 * then refuses it, undo (may be NULL) is called with the hash. *held (held
 * may be NULL) says whether it waits for a nonce gap to fill. */
struct ledger_admission {
	void *ctx;
	int (*admit)(void *ctx, const struct tx *t, const uint8_t hash[HASH_LEN], char *why);
	void (*undo)(void *ctx, const uint8_t hash[HASH_LEN]);
};
int ledger_submit_admitted(struct ledger *l, const uint8_t *bytes, size_t len,
			   const struct ledger_admission *adm, uint8_t hash[HASH_LEN], bool *held,
			   char *why);

/* Many transactions at once (POST /v1/txs), each answered as
 * ledger_submit_admitted would answer it alone: their signatures are
 * checked at the same time on the ledger's worker threads (one fewer than
 * the cores, and the caller), then they enter the mempool in the order
 * given, under one hold of the mempool's lock, so an account's transactions
 * in one batch may follow each other's nonces. An item whose bytes is NULL
 * is skipped: its rc and why stay as the caller set them. A caller that
 * hashed the bytes already (the peer transport, for its seen-set) hands the
 * hash over with hashed set, and it is not computed again: it must be
 * tx_hash's of exactly those bytes, as the mempool files them under it.
 * Returns 0 when every item has its answer (rc 0: pending, or held), or
 * refuses the whole batch, admitting none of it: more than LEDGER_BATCH_MAX
 * items (TALLY_E_TOOLONG), the disk short of its reserve
 * (TALLY_E_DISKFULL), no memory. */
#define LEDGER_BATCH_MAX 256
struct ledger_batch_item {
	const uint8_t *bytes;                /* in: a signed transaction */
	size_t len;
	const uint8_t *origin;               /* in: for the admit hook, or NULL */
	bool hashed;                         /* in: hash holds tx_hash(bytes, len) already */
	int rc;                              /* out: 0 or the refusal */
	uint8_t hash[HASH_LEN];              /* out, when it decoded (in, with hashed) */
	bool held;                           /* out: waits for a nonce gap */
	char why[WHY_MAX];                   /* out, with rc */
};
int ledger_submit_batch(struct ledger *l, struct ledger_batch_item *items, size_t n,
			const struct ledger_admission *adm, char *why);

struct ledger_block_result {
	uint64_t height;
	uint8_t id[HASH_LEN];
	size_t ntx;                          /* transactions committed */
	size_t ndropped;                     /* refused at apply time, left out */
};

/* The devnet's block production: runs this node's consensus engine through
 * one height now, with the loopback I/O and its clock at time_ns, and
 * commits the block decided (this node's validator must hold more than 2/3
 * of the stake: TALLY_E_QUORUM otherwise). The block holds the mempool's
 * transactions in order; one that fails at apply time is left out (and
 * logged). time_ns must be above the previous block's time. On any failure
 * nothing is stored (TALLY_E_DISKFULL when the disk is full) and the
 * mempool is unchanged. An empty block is produced when the mempool is
 * empty. */
int ledger_produce_block(struct ledger *l, uint64_t time_ns, struct ledger_block_result *res,
			 char *why);

/* Applies a block made by another node (or replays a stored one): every
 * transaction must apply, every header field must match the recomputed one
 * and the certificate must verify against the current validator set. The
 * consensus engine moves on to the next height (block sync). */
int ledger_apply_block(struct ledger *l, const uint8_t *block, size_t block_len,
		       const uint8_t *cert, size_t cert_len, char *why);
/* The same for a block fetched from a peer (block sync), with the
 * certificate of the block before it that its header names (prev_cert,
 * encoded; NULL: the one stored). Validators may hold different
 * certificates for a block; the next block's names the chain's, and this
 * node stores that one in place of its own (chain_adopt_last_cert). Both
 * also refuse a block dated more than max_future_ns ahead of the node's
 * clock (chain_check_block_time: TALLY_E_FUTURE, checked once its
 * certificate verified), so a node never takes its chain ahead of its
 * clock. */
int ledger_apply_synced_block(struct ledger *l, const uint8_t *block, size_t block_len,
			      const uint8_t *cert, size_t cert_len, const uint8_t *prev_cert,
			      size_t prev_len, char *why);

/* What the consensus engine asks of the ledger (struct engine_app), also
 * usable alone. Neither commits anything: the block is executed on a trial
 * of the state (lib/chain/trial.h).
 *   ledger_build_block: the next block from the mempool, in order, at time_ns
 *     with this proposer; transactions that no longer apply are left out
 *     (*dropped counts them). *block is malloc'd (block_encode).
 *   ledger_check_block: 0 when a proposed block verifies as the next one
 *     (lib/chain/verify.h, without certificate; prev, when not NULL, the
 *     last block's certificate its proposal carried) and executes to the
 *     roots its header names; else the rule it breaks, with why. */
int ledger_build_block(struct ledger *l, uint64_t time_ns, const uint8_t proposer[PUBKEY_LEN],
		       uint8_t **block, size_t *len, size_t *dropped, char *why);
int ledger_check_block(struct ledger *l, const uint8_t *block, size_t len,
		       const struct commit_cert *prev, char *why);

/* Consensus. The engine opens with the ledger (replaying its WAL,
 * consensus.wal in the data directory) when the node has a validator key or
 * a transport; nothing is signed or sent before ledger_consensus_start.
 * Each call runs under the ledger's lock. TALLY_E_STATE without an engine. */
int ledger_consensus_start(struct ledger *l, char *why);
/* A message from a peer (engine_receive). */
int ledger_consensus_receive(struct ledger *l, const uint8_t *msg, size_t len,
			     enum csm_check *verdict, char *why);
/* A timer of the transport fired (engine_on_timeout). */
int ledger_consensus_timeout(struct ledger *l, const struct cs_timeout *t);
void ledger_consensus_regossip(struct ledger *l);
int ledger_consensus_status(struct ledger *l, struct engine_status *st);

/* The devnet's loop (loopback I/O): fires the timers due at now_ns and
 * starts a height when transactions wait. out (may be NULL) receives what
 * was committed and the last error of the engine, if any. */
struct ledger_tick {
	uint64_t committed;                  /* blocks committed by this call */
	struct ledger_block_result last;     /* the last of them */
	int err;                             /* an engine error, or 0 */
	char why[WHY_MAX];
};
int ledger_consensus_tick(struct ledger *l, uint64_t now_ns, struct ledger_tick *out);
/* When the loopback's next timer is due (unix ns); UINT64_MAX when none. */
uint64_t ledger_consensus_next_ns(struct ledger *l);

void ledger_set_commit_hook(struct ledger *l, ledger_hook_fn fn, void *ctx);

/* Called once for each transaction that enters the mempool, whoever
 * submitted it (the API, the keeper, a peer), with its signed bytes and
 * hash, on the submitter's thread and under the mempool's lock (which a
 * block's commit holds only at its end, daemon/ledger/ledger_impl.h): copy what is
 * needed and return; never call back into the ledger. origin is the
 * submission's (ledger_batch_item.origin: the peer a transaction came
 * from), or NULL; a held transaction whose gap a submission filled enters
 * with that submission's origin. The peer transport gossips transactions
 * from here, to every peer but the origin. */
typedef void (*ledger_admit_fn)(void *ctx, const uint8_t *bytes, size_t len,
				const uint8_t hash[HASH_LEN], const uint8_t *origin);
void ledger_set_admit_hook(struct ledger *l, ledger_admit_fn fn, void *ctx);

/* Each pending transaction in mempool order, under the mempool's lock (fn
 * copies and must not call back into the ledger); stops at fn's first
 * non-zero return and returns it. For a peer that just connected. */
int ledger_pending_each(struct ledger *l,
			int (*fn)(void *ctx, const uint8_t *bytes, size_t len,
				  const uint8_t hash[HASH_LEN]),
			void *ctx);

/* Per validator, counted since this node opened its ledger, for each block
 * whose certificate the chain fixed (the one the next block names, so the
 * same figures on every node): the blocks that certificate holds its
 * precommit for, and the blocks it was in the signing set of but is missing
 * from. Up to max entries into out in key order; *n receives how many. */
struct ledger_vote_stat {
	uint8_t validator[PUBKEY_LEN];
	uint64_t signed_blocks;
	uint64_t missed_blocks;
};
int ledger_vote_stats(struct ledger *l, struct ledger_vote_stat *out, size_t max, size_t *n);

struct ledger_status {
	char chain_id[CHAIN_ID_MAX + 1];
	uint8_t genesis_hash[HASH_LEN];
	uint64_t height;                     /* 0 before the first block */
	uint8_t last_block_id[HASH_LEN];     /* the genesis hash at height 0 */
	uint64_t time_ns;                    /* of the last block (genesis time at 0) */
	uint8_t state_root[HASH_LEN];
	uint64_t usage_size;
	uint8_t usage_root[HASH_LEN];
	size_t mempool_size;
	size_t mempool_held;                 /* waiting for a nonce gap to fill */
	uint64_t held_dropped;               /* held ones dropped since open */
	uint64_t committed;                  /* blocks committed since open */
	uint64_t committed_from_trial;       /* of them, written from the trial this
					      * node made building or checking the
					      * block, not executed a second time */
};
int ledger_status(struct ledger *l, struct ledger_status *st);

/* Missing accounts read as zeros with TALLY_E_NOTFOUND. */
int ledger_account(struct ledger *l, const uint8_t pub[PUBKEY_LEN], struct account *a);
/* The nonce the account's next transaction must carry, counting its
 * transactions pending in the mempool. */
int ledger_next_nonce(struct ledger *l, const uint8_t pub[PUBKEY_LEN], uint64_t *nonce);
int ledger_validator(struct ledger *l, const uint8_t pub[PUBKEY_LEN], struct validator_entry *v);
/* Runs fn over the committed state under the ledger's lock (fn only reads)
 * and gives the height it is of; fn's return is returned. */
int ledger_read_state(struct ledger *l, int (*fn)(void *ctx, struct state *s), void *ctx,
		      uint64_t *height);
int ledger_lease(struct ledger *l, const uint8_t id[LEASE_ID_LEN], struct lease *out);
/* A provider's registry entry (TALLY_E_NOTFOUND when it never announced;
 * a withdrawn one is found, provider_offer_withdrawn). */
int ledger_provider(struct ledger *l, const uint8_t pub[PUBKEY_LEN], struct provider_entry *out);
/* Every provider entry that is not withdrawn, in key order, with the height
 * of the state read; *keys and *out are malloc'd (free both). */
int ledger_providers(struct ledger *l, uint8_t (**keys)[PUBKEY_LEN], struct provider_entry **out,
		     size_t *n, uint64_t *height);
/* The state proof (lib/chain/state_proof.h) of key in the committed state,
 * with the height and state root it is of; free with state_proof_free. */
int ledger_state_proof(struct ledger *l, const uint8_t key[STATE_KEY_LEN],
		       struct state_proof *p, uint64_t *height, uint8_t root[HASH_LEN]);
/* Leases matching the filter, in id order; *out is malloc'd. */
int ledger_leases(struct ledger *l, const struct lease_filter *f, struct lease **out, size_t *n);
/* The same, with the height of the state they were read at. */
int ledger_leases_at(struct ledger *l, const struct lease_filter *f, struct lease **out,
		     size_t *n, uint64_t *height);

struct ledger_usage {
	uint64_t index;                      /* position in the usage log */
	uint64_t seq;
	uint8_t tx_hash[HASH_LEN];
	uint64_t height;                     /* of the block that committed it */
	uint8_t *tx;                         /* the signed USAGE transaction */
	size_t tx_len;
};
/* A lease's usage records in seq order; free with ledger_usage_free(). */
int ledger_lease_usage(struct ledger *l, const uint8_t id[LEASE_ID_LEN],
		       struct ledger_usage **out, size_t *n);
void ledger_usage_free(struct ledger_usage *u, size_t n);

/* Stored blobs of a block (free with stored_block_free()), or decoded parts. */
int ledger_block_raw(struct ledger *l, uint64_t height, struct stored_block *out);
int ledger_block(struct ledger *l, uint64_t height, struct block *out);   /* block_free() */
int ledger_header(struct ledger *l, uint64_t height, struct block_header *out);
int ledger_cert(struct ledger *l, uint64_t height, struct commit_cert *out);
/* The validator set that signs block `height` (1 .. tip + 1). */
int ledger_valset(struct ledger *l, uint64_t height, struct validator_set *out);

/* Usage log: root at any size up to the current one, inclusion of the
 * record at index in the tree of `size` leaves (leaf_hash receives the
 * record's leaf hash), consistency between two sizes. proof holds up to
 * MERKLE_MAX_PROOF hashes. */
int ledger_usage_root(struct ledger *l, uint64_t size, uint8_t root[HASH_LEN]);
int ledger_usage_inclusion(struct ledger *l, uint64_t index, uint64_t size,
			   uint8_t leaf_hash[HASH_LEN], uint8_t proof[][HASH_LEN], size_t *n);
int ledger_usage_consistency(struct ledger *l, uint64_t old_size, uint64_t new_size,
			     uint8_t proof[][HASH_LEN], size_t *n);

/* What became of a transaction this node admitted. */
enum ledger_tx_state {
	LEDGER_TX_UNKNOWN = 0,       /* never seen, or dropped too long ago */
	LEDGER_TX_PENDING,           /* in the mempool */
	LEDGER_TX_HELD,              /* in the mempool, waiting for a nonce gap to fill */
	LEDGER_TX_COMMITTED,         /* in block `height` */
	LEDGER_TX_DROPPED,           /* left out of block `height`: why says why */
};
struct ledger_tx_status {
	enum ledger_tx_state status;
	uint64_t height;
	char why[WHY_MAX];
};
int ledger_tx_status(struct ledger *l, const uint8_t hash[HASH_LEN],
		     struct ledger_tx_status *st);

/* A committed transaction by hash; *bytes is malloc'd. */
int ledger_tx(struct ledger *l, const uint8_t hash[HASH_LEN], uint8_t **bytes, size_t *len,
	      uint64_t *height, uint32_t *index);

/* Verifies the chain stored in data_dir from the genesis, as an auditor
 * would: every stored block replayed (lib/chain/replay.h: signatures,
 * certificates, every transaction's rules and every state root), and each
 * stored header blob equal to the header inside the stored body; then the
 * state the store keeps (its entries, the bucket hashes its root is loaded
 * from, its usage log) equal to the state the blocks make
 * (TALLY_E_STATEROOT, TALLY_E_USAGEROOT). Opens its own connection and
 * reads one snapshot, so it may run while the ledger is open. *height
 * receives the last verified height. */
int ledger_verify_store(const char *data_dir, const struct genesis *g, uint64_t *height,
			char *why);

#endif
