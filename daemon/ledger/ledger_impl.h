/* The ledger engine's insides, shared by its files (ledger.c: open and
 * submit; execute.c: blocks; reads.c: the API's reads; verify_store.c).
 * Nothing outside daemon/ledger/ includes this. */
#ifndef TALLY_LEDGER_IMPL_H
#define TALLY_LEDGER_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>

#include "daemon/consensus/engine.h"
#include "daemon/consensus/timers.h"
#include "daemon/consensus/privval.h"
#include "daemon/ledger/ledger.h"
#include "daemon/ledger/mempool.h"
#include "daemon/ledger/pending.h"
#include "daemon/ledger/store.h"
#include "daemon/ledger/workers.h"
#include "lib/seen.h"
#include "lib/chain/state.h"
#include "lib/chain/trial.h"
#include "lib/chain/verify.h"

#define LEDGER_DB "ledger.sqlite"
#define LEDGER_SIGNER_STATE "signer_state"
#define LEDGER_DROPPED_MAX 1024

/* A transaction admitted and later left out of a block, and why: kept so
 * that its sender can learn what became of it. */
struct dropped_tx {
	uint8_t hash[HASH_LEN];
	uint64_t height;                     /* the block it was left out of */
	char why[WHY_MAX];
};
#define LEDGER_CONSENSUS_WAL "consensus.wal"
#define LEDGER_VERIFIED_MAX 32768            /* verified signatures remembered */


struct ledger {
	pthread_mutex_t mu;
	struct store *st;
	struct state state;                  /* the committed state, on st */
	char chain_id[CHAIN_ID_MAX + 1];
	uint8_t genesis_hash[HASH_LEN];
	const struct tally_key *key;
	bool has_pv;
	struct privval pv;
	struct workers *workers;             /* batch submissions' signature checks */
	/* Transactions whose signatures this node verified lately (a proposed
	 * block's, ahead of the chain's verification; submissions'), so that
	 * neither the block nor the same transaction arriving by gossip after
	 * it is verified a second time; under verified_mu. */
	pthread_mutex_t verified_mu;
	struct seen *verified;

	/* Admission runs under mp_mu, not mu, so that submissions go on while
	 * a block commits; a block's build holds both, as it borrows the
	 * pool's entries (lock order: mu, then mp_mu).
	 * mp_mu covers the mempool; its check state's base, mp_base: a
	 * snapshot of the committed state read on a connection of its own
	 * (store_open_reader), which moves on after each commit, with the tip
	 * it is at; and the dropped ring. Only mp_base's backend and usage
	 * size are used. */
	pthread_mutex_t mp_mu;
	struct mempool *mp;
	/* The mempool's durable copy (pending.h), under mp_mu: every
	 * transaction the pool takes is appended, in the pool's order. NULL
	 * until ledger_open has submitted what the last run left in it.
	 * pending_failed: an append or a rewrite failed (logged once); the next
	 * commit rewrites the log from the pool. */
	struct pending *pending;
	bool pending_failed;
	struct store *mp_reader;
	int dir_fd;                      /* holds the data directory's lock (lib/dirlock.h) */
	struct state mp_base;
	uint64_t mp_tip_height, mp_tip_time_ns;
	size_t block_max_txs;
	char data_dir[PATH_MAX];
	uint64_t min_free_bytes;             /* data_dir's reserve (ledger_config) */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
	ledger_hook_fn hook;
	void *hook_ctx;
	ledger_admit_fn admit;
	void *admit_ctx;
	const uint8_t *admit_origin;         /* the submission's, under mp_mu */
	void (*evidence)(void *ctx, const struct cs_evidence *ev);
	void *evidence_ctx;
	void (*txs_waiting)(void *ctx);
	void *txs_waiting_ctx;
	uint64_t max_future_ns;              /* the chain's clock rule's bound */

	/* The tip, as an auditor's verifier holds it: height, time, last block
	 * and certificate, the set that signs the next block, the usage log's
	 * frontier. Blocks are checked against it by lib/chain/verify.h. */
	struct chain_verifier tip;
	struct commit_cert tip_cert;         /* the stored certificate of the tip block */
	struct validator_set vals;           /* S_{height + 1}, with priorities */

	/* The last LEDGER_DROPPED_MAX transactions left out, a ring. */
	struct dropped_tx *dropped;
	size_t dropped_next;


	/* Consensus (consensus.c): the engine, and its I/O until a transport
	 * is given: the devnet's loopback, whose only peer is this node. */
	struct engine *cs;
	bool cs_started;
	bool cs_loopback;
	struct engine_io cs_io;
	bool in_engine;                      /* the engine is calling the ledger */
	uint64_t loop_clock_ns;              /* 0: the wall clock */
	struct cs_timers timers;             /* the loopback's */
	/* The trial of the block this node built or found valid last, kept
	 * until the next commit: when that block is the one decided, its
	 * commit writes the trial's result instead of executing it again
	 * (execute.c, lib/chain/trial.h). */
	struct trial kept;
	bool kept_valid;
	uint64_t kept_height;
	uint8_t kept_id[HASH_LEN];
	struct exec_result kept_r;
	uint64_t ncommitted_tried;           /* commits that wrote a kept trial */
	/* The block this node built last, and the last committed one. */
	uint8_t built_id[HASH_LEN];
	size_t built_dropped;
	struct ledger_block_result last;
	uint64_t ncommitted;                 /* blocks committed since open */
	/* Per validator since open: blocks whose chain certificate holds its
	 * precommit, and blocks of its set whose certificate does not
	 * (execute.c, as each next block fixes the certificate). */
	struct ledger_vote_stat *vstats;
	size_t nvstats;
};

void ledger_lock(struct ledger *l);
/* The mempool's lock (mp_mu above). */
void ledger_mp_lock(struct ledger *l);
void ledger_mp_unlock(struct ledger *l);
/* After a commit, with both locks held: the mempool's base moves to the
 * new committed state, read without a snapshot (nothing writes it until the
 * next block). Then, with the ledger's lock alone, ledger_mp_settle
 * checkpoints the WAL when it is long (admission goes on meanwhile) and
 * takes the mempool's snapshot again, before anything writes the store. */
int ledger_mp_rebase(struct ledger *l);
void ledger_mp_settle(struct ledger *l);     /* logs what fails */
/* Whether this node verified every signature of the transaction with this
 * hash: its mempool holds it (queued or held), or it was verified lately;
 * and noting one whose signatures verified. Any thread; not with mp_mu
 * held. */
bool ledger_tx_verified(struct ledger *l, const uint8_t hash[HASH_LEN]);
void ledger_note_verified(struct ledger *l, const uint8_t hash[HASH_LEN]);
/* The verified set alone (no mempool lock): whether the transaction with
 * this hash was noted verified lately. Any thread. */
bool ledger_verified_lately(struct ledger *l, const uint8_t hash[HASH_LEN]);
/* After a commit, once the mempool is rebased, with mp_mu held: the
 * mempool's log emptied when the pool is, rewritten from the pool when it
 * outgrew it (more than 4 times the pool's records + 1 MiB) or when an
 * append failed. */
void ledger_pending_compact(struct ledger *l);
/* Remembers a transaction left out of block `height` (with mp_mu held). */
void ledger_note_dropped(struct ledger *l, const uint8_t hash[HASH_LEN], uint64_t height,
			 const char *why);
void ledger_unlock(struct ledger *l);
void ledger_logf(struct ledger *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Tip, usage frontier, priorities and the state from the store (at open,
 * and after a failed block to drop whatever it left in memory). */
int ledger_load_tip(struct ledger *l, char *why);
/* The proposer priorities of S_{height + 1}, into the store's metadata;
 * and the set that signed the tip block (S_height). */
int ledger_put_priorities(struct ledger *l, const struct validator_set *s);
int ledger_put_last_set(struct ledger *l, const struct validator_set *s);
/* The application interface the consensus engine drives (execute.c). */
struct engine_app ledger_engine_app(struct ledger *l);
/* Opens the engine at ledger_open (consensus.c): the WAL in data_dir
 * replayed. */
int ledger_consensus_open(struct ledger *l, const struct ledger_config *cfg, char *why);
void ledger_consensus_close(struct ledger *l);
/* Starts the engine's I/O if it has not started (consensus.c). */
int ledger_consensus_ensure_started(struct ledger *l, char *why);

#endif
