/* The consensus engine of one node: it drives the round state machine
 * (round.h) with the node's signing guard (privval.h), its write-ahead log
 * (wal.h), an application that builds, checks and commits blocks, and an
 * I/O layer that carries messages and timers. The engine never reads a
 * clock or a socket itself, so the same code runs in tallyd, in the
 * single-validator devnet (a loopback I/O) and in the deterministic
 * simulator (tests/sim/).
 *
 * Inputs, each handled to the end before the call returns:
 *   engine_receive      a consensus message from a peer (msg.h bytes)
 *   engine_on_timeout   a timer the engine asked for has fired
 *   engine_txs_available  transactions wait (wakes an engine idle between heights)
 *   engine_on_committed the application committed blocks another way (block sync)
 * Outputs go through struct engine_io (broadcast, schedule) and struct
 * engine_app (build, check, commit, evidence).
 *
 * Order of work for an input the machine acts on: check it (signatures,
 * membership, round; a proposal's block is decoded, executed by app->check
 * once per block id and its time judged against the clock), append it to
 * the WAL and make it durable, then feed it to the machine and carry out
 * what the machine asks: a vote or proposal is signed through the guard,
 * logged, broadcast and fed back in as an input; a decision is committed
 * through app->commit with the certificate of +2/3 precommits, after which
 * the WAL starts the next height.
 *
 * Restart: engine_open reads the tip from the application and replays the
 * WAL of the next height through the same path (nothing is sent or signed
 * while replaying); engine_start then signs and sends what the machine
 * still owes (the guard returns the very signature already made for the
 * same step and block, and refuses a different one) and arms its waits
 * again. A height decided before the crash but not committed is committed
 * during the replay.
 *
 * Not thread-safe: one caller at a time (tallyd's ledger lock). */
#ifndef TALLY_CONSENSUS_ENGINE_H
#define TALLY_CONSENSUS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/consensus/msg.h"
#include "daemon/consensus/privval.h"
#include "daemon/consensus/round.h"
#include "daemon/consensus/timeout.h"
#include "lib/chain/block.h"
#include "lib/chain/verify.h"

/* How far ahead of this node's clock a new block's time may be before the
 * node prevotes nil on it (chain_check_block_time, lib/chain/verify.h). */
#define CS_MAX_FUTURE_MS (CHAIN_MAX_FUTURE_NS / 1000000ull)

struct cs_timeout {
	uint64_t height;
	uint32_t round;
	uint8_t wait;                    /* enum cs_wait */
};

/* Two signed votes of one validator for one height, round and type, for
 * different blocks: what an EVIDENCE transaction carries. */
struct cs_evidence {
	uint8_t validator[PUBKEY_LEN];
	struct vote a, b;
	uint8_t sig_a[SIG_LEN], sig_b[SIG_LEN];
};

/* The chain as the application holds it. */
struct engine_tip {
	uint64_t height;                 /* of the last committed block (0: genesis) */
	uint64_t time_ns;                /* its time (the genesis time at 0) */
	struct validator_set vals;       /* S_{height+1} with proposer priorities */
	/* The last block's certificate as this node holds it (n = 0 at height 0):
	 * the one a block this node builds names (last_commit_hash) and its
	 * proposal carries. */
	struct commit_cert last_cert;
	/* The set that signed the last block (n = 0 when not known): a
	 * precommit for it that comes after the decision is checked against
	 * it and added to last_cert. */
	struct validator_set signers;
};

struct engine_app {
	void *ctx;
	int (*tip)(void *ctx, struct engine_tip *out);
	/* The block for height at time_ns with this proposer, from the pending
	 * transactions, executed but not committed, naming prev as the last
	 * block's certificate (NULL at height 1; it may hold more precommits
	 * than the one the application stored, trial_with_last_cert). *block
	 * is malloc'd (block_encode). */
	int (*build)(void *ctx, uint64_t height, uint64_t time_ns,
		     const uint8_t proposer[PUBKEY_LEN], const struct commit_cert *prev,
		     uint8_t **block, size_t *len, char *why);
	/* 0 when the block verifies (lib/chain/verify.h, without certificate) and
	 * executes (lib/chain/exec.h) on the state after the tip, the last
	 * block's certificate being prev, the one the proposal carried (NULL at
	 * height 1; chain_adopt_last_cert); the rule it breaks otherwise; a store
	 * failure (state_err_is_fatal) when it could not be checked now. Nothing
	 * is committed. */
	int (*check)(void *ctx, const uint8_t *block, size_t len, const struct commit_cert *prev,
		     char *why);
	/* Verify and commit a decided block with its certificate, prev becoming
	 * the last block's certificate in the store first. */
	int (*commit)(void *ctx, const uint8_t *block, size_t len, const struct commit_cert *cert,
		      const struct commit_cert *prev, char *why);
	/* Optional: transactions wait (for engine_config.wait_for_txs). */
	bool (*has_txs)(void *ctx);
	/* Optional: a validator signed two conflicting votes (reported once per
	 * validator, height, round and type). */
	void (*evidence)(void *ctx, const struct cs_evidence *ev);
	/* Optional: a line for the node's log. */
	void (*log)(void *ctx, const char *line);
};

struct engine_io {
	void *ctx;
	/* Send one consensus message (msg.h) to every peer. */
	void (*broadcast)(void *ctx, const uint8_t *msg, size_t len);
	/* Call engine_on_timeout(t) at at_ns on the now_ns clock (or later). */
	void (*schedule)(void *ctx, uint64_t at_ns, const struct cs_timeout *t);
	uint64_t (*now_ns)(void *ctx);   /* unix ns */
};

struct engine_config {
	const uint8_t *chain;            /* the genesis hash (HASH_LEN) */
	const char *wal_path;
	struct privval *pv;              /* NULL: a node that follows without voting */
	struct cs_timeouts timeouts;     /* all zero: cs_timeouts_default() */
	uint64_t max_future_ns;          /* 0: CS_MAX_FUTURE_MS */
	/* Stay between heights until app->has_txs (or a peer starts the height):
	 * no empty blocks on an idle chain. */
	bool wait_for_txs;
};

struct engine_status {
	uint64_t height;                 /* being decided */
	uint32_t round;
	uint8_t step;                    /* enum cs_step */
	bool idle;                       /* waiting for transactions */
	bool validator;                  /* this node votes at this height */
	int64_t locked_round, valid_round;
	uint8_t proposer[PUBKEY_LEN];    /* of the current round */
	uint64_t replayed;               /* WAL records replayed at open */
	uint64_t wal_cut;                /* bytes of torn WAL tail cut at open */
	uint64_t committed;              /* heights committed by this engine */
	uint64_t evidence;               /* equivocations seen */
};

struct engine;

/* Reads the tip, opens the WAL and replays it. TALLY_E_STATE with why when
 * the WAL is for a height above the tip's next (another data directory, or a
 * store that lost blocks: the node refuses rather than vote blind). */
int engine_open(struct engine **out, const struct engine_config *cfg,
		const struct engine_app *app, char *why);
/* Begins I/O: signs and sends what the replayed state owes, arms its waits. */
int engine_start(struct engine *e, const struct engine_io *io, char *why);
void engine_close(struct engine *e);

/* A message from a peer. 0 when taken or harmlessly not needed (duplicate,
 * old, a round not kept); an error when it is malformed or its signature
 * or signer is wrong (the peer misbehaves: TALLY_E_ENCODING, TALLY_E_RANGE,
 * TALLY_E_SIGNATURE, TALLY_E_UNAUTHORIZED, TALLY_E_LINK for a block that is
 * not the proposal's), or when acting on it failed here (TALLY_E_IO,
 * TALLY_E_DISKFULL: nothing of it was acted on). *verdict (may be NULL)
 * says what it was to the machine; CSM_AHEAD means this node is behind and
 * should sync blocks. */
int engine_receive(struct engine *e, const uint8_t *msg, size_t len, enum csm_check *verdict,
		   char *why);
int engine_on_timeout(struct engine *e, const struct cs_timeout *t);
/* Transactions wait: an engine idle between heights starts the next round. */
int engine_txs_available(struct engine *e);
/* Ends the wait between heights now, whatever wait_for_txs says (the
 * devnet's ledger_produce_block). */
int engine_skip_wait(struct engine *e);
/* The application's tip moved (blocks applied by block sync): leave the
 * height being decided for the one after the tip. */
int engine_on_committed(struct engine *e);
/* Sends again, for peers that missed them, the precommits of the last
 * block's certificate (a peer still at that height decides with them), this
 * height's proposal of the current round, the proof-of-lock prevotes it
 * names and every vote of the current round: the I/O layer calls it on a
 * timer or when a peer connects. */
void engine_regossip(struct engine *e);
/* Tries again, at most once a second, what a failure left undone: a vote
 * or proposal whose signing state could not be stored, a commit that could
 * not be written (a full disk), a height that could not begin. The I/O
 * layer calls it on its timer; without it a validator whose disk filled
 * would stay silent after the space came back. */
void engine_retry(struct engine *e);

void engine_status(const struct engine *e, struct engine_status *st);
/* The last error of an action (signing, logging, building, committing), or
 * 0; cleared by reading. */
int engine_take_error(struct engine *e, char *why);

#endif
