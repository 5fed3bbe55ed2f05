/* Consensus timeouts: how long a validator waits in each step of a round
 * before it moves on without the messages it waits for. Each grows linearly
 * with the round, so that after a period of asynchrony the waits become long
 * enough for every correct validator to hear from the others (the partial
 * synchrony assumption of "The latest gossip on BFT consensus", Buchman,
 * Kwon and Milosevic, 2018, section 4). */
#ifndef TALLY_CONSENSUS_TIMEOUT_H
#define TALLY_CONSENSUS_TIMEOUT_H

#include <stdint.h>

/* The steps of a height (enum cs_step in round.h) that have a timeout. */
enum cs_wait {
	CS_WAIT_COMMIT = 0,      /* after a height is decided, before round 0 of the next */
	CS_WAIT_PROPOSE = 1,     /* for the round's proposal */
	CS_WAIT_PREVOTE = 2,     /* after +2/3 prevotes for anything, for +2/3 for one value */
	CS_WAIT_PRECOMMIT = 3,   /* after +2/3 precommits for anything, for a decision */
};

/* Nanoseconds. Timeout of step s in round r = base_s + r * delta_s
 * (saturating); the commit wait does not grow. */
struct cs_timeouts {
	uint64_t propose_ns, propose_delta_ns;
	uint64_t prevote_ns, prevote_delta_ns;
	uint64_t precommit_ns, precommit_delta_ns;
	uint64_t commit_ns;
};

#define CS_TIMEOUT_PROPOSE_MS 3000
#define CS_TIMEOUT_PROPOSE_DELTA_MS 500
#define CS_TIMEOUT_PREVOTE_MS 1000
#define CS_TIMEOUT_PREVOTE_DELTA_MS 500
#define CS_TIMEOUT_PRECOMMIT_MS 1000
#define CS_TIMEOUT_PRECOMMIT_DELTA_MS 500
#define CS_TIMEOUT_COMMIT_MS 1000

/* The defaults above (CometBFT's defaults, which suit validators a few
 * hundred milliseconds apart). */
struct cs_timeouts cs_timeouts_default(void);
/* 0, or TALLY_E_INVALID with why[WHY_MAX] when a base is zero or any value
 * is above an hour (a typo that would stall the chain). */
int cs_timeouts_check(const struct cs_timeouts *t, char *why);
/* The duration of the wait in round r, in ns. */
uint64_t cs_timeout_ns(const struct cs_timeouts *t, enum cs_wait w, uint32_t round);

#endif
