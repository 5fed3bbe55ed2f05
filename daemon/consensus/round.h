/* The Tendermint round state machine: Algorithm 1 of "The latest gossip on
 * BFT consensus" (Buchman, Kwon, Milosevic, 2018), for one validator, one
 * height at a time. CometBFT's consensus/state.go is the reading reference.
 *
 * Pure: no I/O, no clock, no randomness. Events go in (a proposal, a vote, a
 * timeout, the start of a height); actions come out (propose, vote, schedule
 * a timeout, decide). Signing, logging, sending, timers and block execution
 * are the caller's (daemon/consensus/engine.h), which feeds its own signed
 * votes and proposals back in as events like any other.
 *
 * A height goes through
 *   NEW_HEIGHT  wait CS_WAIT_COMMIT after the previous decision, then round 0;
 *   PROPOSE     the round's proposer (valset_proposer) proposes its valid
 *               value if it has one, else a new block; the others wait
 *               CS_WAIT_PROPOSE for it;
 *   PREVOTE     for the proposed block when it is valid and timely and the
 *               lock allows (lines 22-33 of Algorithm 1), else nil; after +2/3
 *               prevotes for anything, wait CS_WAIT_PREVOTE (line 34);
 *   PRECOMMIT   on +2/3 prevotes for the round's proposed valid block: lock
 *               on it and precommit it (line 36); on +2/3 prevotes for nil, or
 *               the prevote wait, precommit nil (lines 44, 61); after +2/3
 *               precommits for anything, wait CS_WAIT_PRECOMMIT, then the
 *               next round (lines 47, 65);
 *   DECIDED     on +2/3 precommits of any round for a block this node holds
 *               and found valid (line 49).
 * and in any step, more than 1/3 of the stake voting in a later round moves
 * the node to that round (line 55).
 *
 * Locks follow the paper: a validator locked on v in round lr prevotes
 * another value only for a proposal carrying a proof-of-lock round vr >= lr
 * with +2/3 prevotes for it in vr (line 29); validValue/validRound are
 * re-proposed by a later proposer with that proof (line 15). "Timely" is the
 * proposal-time bound of Proposer-Based Timestamps (CometBFT's PBTS): a new
 * block (vr = -1) is prevoted only if its time was not too far ahead of the
 * node's clock when it arrived; a re-proposed block with a proof-of-lock is
 * not judged again.
 *
 * Messages are kept for every round up to current + 1, and for later rounds
 * within the per-validator bound of voteset.h, so that round skipping and
 * late proof-of-lock prevotes work; proposals for rounds up to current + 1.
 * Messages of the next height are the caller's to buffer (CSM_NEXT_HEIGHT).
 *
 * The block id of nil is 32 zero bytes. */
#ifndef TALLY_CONSENSUS_ROUND_H
#define TALLY_CONSENSUS_ROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/consensus/proposer.h"
#include "daemon/consensus/timeout.h"
#include "daemon/consensus/voteset.h"
#include "lib/chain/block.h"
#include "lib/crypto.h"

enum cs_step {
	CS_NEW_HEIGHT = 0,
	CS_PROPOSE = 1,
	CS_PREVOTE = 2,
	CS_PRECOMMIT = 3,
	CS_DECIDED = 4,
};

const char *cs_step_name(uint8_t step);

enum csm_action_kind {
	CSM_PROPOSE = 1,     /* sign and send a proposal: of block_id when pol_round >= 0
			      * (the valid value), else of a new block */
	CSM_VOTE = 2,        /* sign and send a vote_type vote for block_id (nil: zero) */
	CSM_SCHEDULE = 3,    /* call csm_on_timeout(height, round, wait) after the wait's duration */
	CSM_DECIDE = 4,      /* block_id is decided: commit it with csm_cert() */
};

struct csm_action {
	uint8_t kind;                    /* enum csm_action_kind */
	uint64_t height;
	uint32_t round;
	uint8_t vote_type;               /* CSM_VOTE: VOTE_PREVOTE or VOTE_PRECOMMIT */
	uint8_t wait;                    /* CSM_SCHEDULE: enum cs_wait */
	int32_t pol_round;               /* CSM_PROPOSE */
	uint8_t block_id[HASH_LEN];
};

/* One event gives at most a few actions per rule that fires; a rule fires at
 * most once per round and a round change at most once per event. */
#define CSM_ACTIONS_MAX 32

struct csm_out {
	size_t n;
	struct csm_action a[CSM_ACTIONS_MAX];
};

/* A proposal received (or made) for a round, with what the caller found. */
struct csm_proposal {
	struct proposal p;
	uint8_t sig[SIG_LEN];
	bool valid;                      /* the block verifies and executes on the state */
	bool timely;                     /* its time was within the bound when it arrived */
};

/* What a message is to the machine (csm_check_*). */
enum csm_check {
	CSM_ACCEPT = 0,      /* new: log it, then feed it in */
	CSM_DUPLICATE,       /* held already */
	CSM_EQUIVOCATION,    /* a second, different message signed by the same validator
			      * for the same height, round and type, not kept (a
			      * proposal, or a vote for a block this node does not know) */
	CSM_OLD,             /* an earlier height, or this height is decided */
	CSM_NEXT_HEIGHT,     /* the next height: keep it until then */
	CSM_AHEAD,           /* a later height: this node is behind */
	CSM_IGNORED,         /* a round not kept now (gossip brings it again) */
	CSM_REFUSED,         /* bad signature, not a validator, not the proposer */
};

const char *csm_check_name(enum csm_check c);

struct csm_prop {
	uint32_t round;
	struct csm_proposal prop;
};

struct csm {
	uint8_t chain[HASH_LEN];         /* the genesis hash signatures are bound to */
	bool has_self;
	uint8_t self[PUBKEY_LEN];        /* this node's validator key */
	uint64_t height;
	uint32_t round;
	uint8_t step;                    /* enum cs_step */
	uint32_t first_round;            /* the round the height's first StartRound takes */
	struct validator_set vals;       /* S_height with proposer priorities */
	int self_idx;                    /* in vals, or -1: this node only watches */
	int64_t locked_round;            /* -1: not locked */
	uint8_t locked_id[HASH_LEN];
	int64_t valid_round;             /* -1: no valid value */
	uint8_t valid_id[HASH_LEN];
	struct height_votes votes;       /* borrows vals: the machine must not move */
	struct csm_prop *props;          /* ascending round */
	size_t nprops, props_cap;
	/* "for the first time" conditions of the current round (lines 34, 36, 47) */
	bool prevote_wait, pol_seen, precommit_wait;
	uint32_t decided_round;          /* when step == CS_DECIDED */
	uint8_t decided_id[HASH_LEN];
};

/* self: this node's validator key, or NULL on a node that only watches. */
void csm_init(struct csm *m, const uint8_t chain[HASH_LEN], const uint8_t *self);
void csm_free(struct csm *m);

/* Begins height with S_height (vals, with priorities): step NEW_HEIGHT, a
 * CS_WAIT_COMMIT wait scheduled. TALLY_E_VALSET for an ill-formed set. */
int csm_start_height(struct csm *m, uint64_t height, const struct validator_set *vals,
		     struct csm_out *out);
/* Before the height's first round begins: it begins at round instead of 0
 * (a validator whose signing guard was repaired can sign nothing below it;
 * see privval_first_round). Votes and proposals of earlier rounds still
 * count, so the node still decides with the others. */
void csm_set_first_round(struct csm *m, uint32_t round);

/* Read-only: what a message would be to the machine now (signatures checked
 * here). On CSM_REFUSED *err receives the reason (TALLY_E_SIGNATURE,
 * TALLY_E_UNAUTHORIZED, TALLY_E_RANGE). */
enum csm_check csm_check_proposal(const struct csm *m, const struct proposal *p,
				  const uint8_t sig[SIG_LEN], int *err);
/* *equivocation (may be NULL) is set when the vote is a validator's second,
 * different one for a height, round and type (evidence): it is accepted
 * (counted for its block, see voteset.h) when its block is nil or the block
 * of a proposal this node holds, else CSM_EQUIVOCATION. */
enum csm_check csm_check_vote(const struct csm *m, const struct vote *v,
			      const uint8_t who[PUBKEY_LEN], const uint8_t sig[SIG_LEN], int *err,
			      bool *equivocation);

/* Events. A message must have been checked (CSM_ACCEPT) in the same state.
 * Return 0 or TALLY_E_NOMEM (the message is then not counted). */
int csm_on_proposal(struct csm *m, const struct proposal *p, const uint8_t sig[SIG_LEN],
		    bool valid, bool timely, struct csm_out *out);
int csm_on_vote(struct csm *m, const struct vote *v, const uint8_t who[PUBKEY_LEN],
		const uint8_t sig[SIG_LEN], struct csm_out *out);
int csm_on_timeout(struct csm *m, uint64_t height, uint32_t round, uint8_t wait,
		   struct csm_out *out);
/* Whether that timeout would change anything now (a stale one does not). */
bool csm_timeout_matters(const struct csm *m, uint64_t height, uint32_t round, uint8_t wait);

/* The waits the current state is in (to arm again after a restart). */
void csm_pending_waits(const struct csm *m, struct csm_out *out);

/* Reads. */
const uint8_t *csm_proposer(const struct csm *m, uint32_t round);
const struct csm_proposal *csm_proposal(const struct csm *m, uint32_t round);
/* A valid proposal of this height (any round) of block id, or NULL. */
const struct csm_proposal *csm_valid_block(const struct csm *m, const uint8_t id[HASH_LEN]);
/* Validator idx's (first) vote of type in round, or NULL. */
const struct vs_vote *csm_vote(const struct csm *m, uint32_t round, uint8_t type, size_t idx);
/* The votes of type in round, or NULL when none was kept. */
const struct vote_set *csm_votes(const struct csm *m, uint32_t round, uint8_t type);
/* The commit certificate of the decision (TALLY_E_STATE before one). */
int csm_cert(const struct csm *m, struct commit_cert *cert);

#endif
