/* Vote sets: the prevotes or precommits of one round of one height, by
 * validator, with the stake behind each block id; and the rounds of a height.
 *
 * Thresholds are on stake, as in "The latest gossip on BFT consensus"
 * (Buchman, Kwon, Milosevic, 2018), where n = total stake and f < n/3:
 *   quorum ("2f+1"):  stake * 3 > total * 2
 *   one honest ("f+1"): stake * 3 > total
 * A correct validator has one vote in a set. A faulty one may sign several,
 * for different blocks (equivocation, which the caller surfaces as
 * evidence): each is counted for its own block, as the paper's conditions
 * count the messages for one value ("2f+1 <PREVOTE, h, r, id(v)>"), so a
 * proof-of-lock seen by some correct validators can be seen by all of them
 * whatever they received first. Quorum intersection still holds: two
 * quorums for different blocks share more than 1/3 of the stake, which a
 * correct validator must be part of. Which further votes the caller keeps
 * is its choice (round.c: those for a block it knows, so the set stays
 * bounded). The block id of nil is 32 zero bytes. */
#ifndef TALLY_CONSENSUS_VOTESET_H
#define TALLY_CONSENSUS_VOTESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/chain/block.h"

extern const uint8_t cs_nil_id[HASH_LEN];

bool cs_is_nil(const uint8_t id[HASH_LEN]);
/* stake * 3 > total * 2, and stake * 3 > total, without overflow. */
bool cs_quorum(uint64_t stake, uint64_t total);
bool cs_one_honest(uint64_t stake, uint64_t total);

struct vs_vote {
	bool have;
	uint8_t id[HASH_LEN];
	uint8_t sig[SIG_LEN];
};

struct vs_extra {
	uint32_t idx;                        /* the validator */
	uint8_t id[HASH_LEN];
	uint8_t sig[SIG_LEN];
};

struct vs_tally {
	uint8_t id[HASH_LEN];
	uint64_t stake;
};

struct vote_set {
	const struct validator_set *vals;    /* borrowed: S_height */
	uint8_t type;                        /* VOTE_PREVOTE or VOTE_PRECOMMIT */
	uint32_t round;
	struct vs_vote *v;                   /* vals->n: each validator's first vote */
	struct vs_extra *x;                  /* further votes of equivocating validators */
	size_t nx, xcap;
	struct vs_tally *t;                  /* distinct ids voted for, in first-seen order */
	size_t nt, tcap;
	uint64_t stake;                      /* of the validators with a vote in the set */
};

int vote_set_init(struct vote_set *s, const struct validator_set *vals, uint8_t type,
		  uint32_t round);
void vote_set_free(struct vote_set *s);
/* Validator idx's first vote, or NULL. */
const struct vs_vote *vote_set_get(const struct vote_set *s, size_t idx);
/* The signature of validator idx's vote for id, or NULL when it has none. */
const uint8_t *vote_set_sig_for(const struct vote_set *s, size_t idx, const uint8_t id[HASH_LEN]);
/* Records validator idx's vote for id (the caller checked its signature);
 * nothing when idx voted for id already. TALLY_E_NOMEM. */
int vote_set_add(struct vote_set *s, size_t idx, const uint8_t id[HASH_LEN],
		 const uint8_t sig[SIG_LEN]);
uint64_t vote_set_stake_for(const struct vote_set *s, const uint8_t id[HASH_LEN]);
/* +2/3 of the stake voted, for anything. */
bool vote_set_quorum_any(const struct vote_set *s);
/* The id (possibly nil) that +2/3 of the stake voted for, if one did. */
bool vote_set_quorum_id(const struct vote_set *s, uint8_t id[HASH_LEN]);
/* The commit certificate of a precommit set for id at height: every
 * precommit for id (one per validator), signers in ascending key order. TALLY_E_QUORUM when they
 * hold 2/3 of the stake or less, TALLY_E_INVALID for a prevote set. */
int vote_set_cert(const struct vote_set *s, uint64_t height, const uint8_t id[HASH_LEN],
		  struct commit_cert *cert);

/* A round of a height: its prevotes and precommits. */
struct round_votes {
	uint32_t round;
	struct vote_set prevotes, precommits;
};

/* Every round of one height that holds votes, in ascending round order. */
struct height_votes {
	const struct validator_set *vals;    /* borrowed: S_height */
	struct round_votes **r;
	size_t n, cap;
};

/* How many rounds above current + 1 one validator may open: a faulty
 * validator cannot make a node keep votes for rounds without end, while a
 * node that fell behind still sees the rounds the others are in (CometBFT
 * allows two "catch-up" rounds per peer for the same reason). */
#define CS_FUTURE_ROUNDS_PER_VALIDATOR 2

void height_votes_init(struct height_votes *hv, const struct validator_set *vals);
void height_votes_free(struct height_votes *hv);
/* The round's votes, or NULL when none was kept. */
struct round_votes *height_votes_round(const struct height_votes *hv, uint32_t round);
/* The round's votes, made empty when missing (TALLY_E_NOMEM). */
int height_votes_open(struct height_votes *hv, uint32_t round, struct round_votes **out);
/* Whether a vote of validator idx for round is kept, the node being in round
 * current: rounds up to current + 1 always; a later round when it is kept
 * already or idx opened fewer than CS_FUTURE_ROUNDS_PER_VALIDATOR of the
 * rounds above current + 1. */
bool height_votes_admits(const struct height_votes *hv, uint32_t round, uint32_t current,
			 size_t idx);
/* The stake of the validators with a vote (of either type) in round. */
uint64_t height_votes_round_stake(const struct height_votes *hv, uint32_t round);

#endif
