/* Trying a block without changing the state: a proposer builds its block
 * this way, and every validator checks a proposed block this way before it
 * votes for it; only a decided block is then applied for real.
 *
 * A trial is a memory overlay over the state's backend (lib/chain/memstate.h:
 * reads fall through, writes stay in memory), a copy of the state's root
 * tree and of its usage log's frontier. Execution (lib/chain/exec.h) on
 * trial.state runs the one state transition and gives the roots the block
 * would give on the state itself. */
#ifndef TALLY_CHAIN_TRIAL_H
#define TALLY_CHAIN_TRIAL_H

#include "lib/chain/block.h"
#include "lib/chain/memstate.h"
#include "lib/chain/state.h"
#include "lib/chain/verify.h"
#include "lib/merkle.h"

struct trial {
	struct state state;              /* execute the block on this */
	struct memstate *over;
	struct merkle_frontier usage;    /* the usage log, appended to by the trial */
};

/* base: the committed state (it must not change while the trial lives);
 * usage: its usage log's frontier (size base->usage_size). TALLY_E_NOMEM,
 * or TALLY_E_STATE when base keeps no tree or usage is not its log. */
int trial_begin(struct trial *t, const struct state *base, const struct merkle_frontier *usage);
/* Forgets everything the trial wrote. */
void trial_end(struct trial *t);

/* The header of the block after the one v verified last, before execution
 * fills its roots: version, chain id, height, time_ns, the links, the
 * validators hash and the proposer. */
void trial_next_header(const struct chain_verifier *v, uint64_t time_ns,
		       const uint8_t proposer[PUBKEY_LEN], struct block_header *h);

/* A copy of v (*out, malloc'd) whose last block's certificate is prev, by
 * chain_adopt_last_cert's rules (prev NULL: a plain copy), for building the
 * block after it: a proposer names the certificate it holds, which may have
 * gathered precommits that came after the decision (daemon/consensus/
 * engine.c). TALLY_E_NOMEM, or what chain_adopt_last_cert refuses. */
int trial_with_last_cert(const struct chain_verifier *v, const struct commit_cert *prev,
			 struct chain_verifier **out, char *why);

/* Whether a proposed block is valid as the next block after the one v
 * verified last, on the state s after it: prev, when not NULL, is the
 * certificate of that block the proposal carried (chain_adopt_last_cert);
 * the block verifies (chain_verify_proposal) and executing it on a trial of
 * s gives the roots its header names (exec_check_header). 0 or the rule it
 * breaks, with why[WHY_MAX]; s is not changed. */
int trial_check_block(const struct chain_verifier *v, const struct state *s, const struct block *b,
		      const struct commit_cert *prev, char *why);

#endif
