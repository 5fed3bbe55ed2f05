/* Trying a block without changing the state: a proposer builds its block
 * this way, and every validator checks a proposed block this way before it
 * votes for it; only a decided block is then applied for real.
 *
 * A trial is a memory overlay over the state's backend (lib/chain/memstate.h:
 * reads fall through, writes stay in memory), a copy of the state's root
 * tree and of its usage log's frontier. Execution (lib/chain/exec.h) on
 * trial.state runs the one state transition and gives the roots the block
 * would give on the state itself.
 *
 * A trial of the block that is then decided need not be executed again:
 * trial_commit writes what it wrote into the state it was begun on, which
 * is then exactly what executing the block there would have made it. */
#ifndef TALLY_CHAIN_TRIAL_H
#define TALLY_CHAIN_TRIAL_H

#include "lib/chain/block.h"
#include "lib/chain/exec.h"
#include "lib/chain/memstate.h"
#include "lib/chain/state.h"
#include "lib/chain/verify.h"
#include "lib/merkle.h"

/* A usage log append of the trial, as the state's backend takes it. */
struct trial_usage {
	uint64_t index;
	uint8_t leaf[HASH_LEN];
	uint8_t tx_hash[HASH_LEN];
	uint8_t lease_id[LEASE_ID_LEN];
	uint64_t seq;
};

/* A bucket hash the trial's root update computed. */
struct trial_bucket {
	uint32_t bucket;
	uint8_t hash[HASH_LEN];
};

struct trial {
	struct state state;              /* execute the block on this */
	struct memstate *over;
	struct merkle_frontier usage;    /* the usage log, appended to by the trial */
	uint64_t base_usage_size;        /* of the state it was begun on */
	uint8_t base_root[HASH_LEN];     /* its root then */
	struct trial_usage *appended;    /* in order; nappended of them */
	size_t nappended, cap_appended;
	struct trial_bucket *buckets;    /* in the order computed; a later one wins */
	size_t nbuckets, cap_buckets;
	int rc;                          /* an append or bucket the trial could not keep */
};

/* base: the committed state (it must not change while the trial lives);
 * usage: its usage log's frontier (size base->usage_size). TALLY_E_NOMEM,
 * or TALLY_E_STATE when base keeps no tree or usage is not its log. */
int trial_begin(struct trial *t, const struct state *base, const struct merkle_frontier *usage);
/* Forgets everything the trial wrote. */
void trial_end(struct trial *t);

/* Whether trial t can be committed into base (trial_commit) with nothing
 * written yet: 0; t->rc when t could not record what it wrote
 * (TALLY_E_NOMEM); TALLY_E_STATE when base is not the state t was begun on
 * as it stood then (its root or usage log moved, or it has writes not in
 * its root) or t's execution is unfinished. A caller that gets an error
 * here executes the block instead. */
int trial_can_commit(const struct trial *t, const struct state *base);
/* Writes what trial t wrote into base, the state it was begun on, which
 * must not have changed since (trial_can_commit's refusals, before any
 * write): t's entries in ascending key order (an
 * empty value deletes), its usage log appends in order, and the bucket
 * hashes its root update computed, through base's backend; then base takes
 * t's tree and usage size. base is then the state that executing the same
 * transactions on it would have made, so a decided block that was tried
 * is not executed twice. A backend failure is returned as it is, with
 * base's backend part-written: the caller rolls its store back and reloads
 * base (state_reload). TALLY_E_NOMEM when t could not record what it
 * wrote. t is to be ended afterwards either way. */
int trial_commit(struct trial *t, struct state *base);

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
/* trial_check_block, which keeps its trial when the block is valid: kept
 * then holds the state after the block (for trial_commit; the caller ends
 * it) and r what its execution produced. When the block is not valid
 * nothing is kept (ending kept is harmless). */
int trial_check_block_kept(const struct chain_verifier *v, const struct state *s,
			   const struct block *b, const struct commit_cert *prev,
			   struct trial *kept, struct exec_result *r, char *why);

#endif
