/* The round state machine (see round.h).
 *
 * The state machine is the Tendermint round structure, kept small:
 *   propose   - the round's proposer signs a proposal; others wait for it
 *               (or a propose timeout, then prevote nil);
 *   prevote   - for the proposed block when it is valid and does not
 *               conflict with a lock, else nil;
 *   precommit - on more than 2/3 of the stake prevoting one block: lock on
 *               it and precommit it; on more than 2/3 prevoting nil (or a
 *               prevote timeout), precommit nil;
 *   decide    - on more than 2/3 of the stake precommitting one block, the
 *               precommits form the commit certificate; a precommit timeout
 *               moves to the next round.
 * Votes for other heights or rounds are ignored: a later network version
 * will buffer future-round votes (round skipping) and unlock on a newer
 * proof-of-lock; the structure here (tallies per round, a lock with its
 * round, the pol_round field in proposals) is where those go. */
#include "daemon/consensus/round.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/codec.h"
#include "lib/errors.h"

static const uint8_t nil_id[HASH_LEN];

void cs_init(struct consensus *cs, const uint8_t chain[HASH_LEN], struct privval *pv,
	     const struct cs_transport *tr)
{
	memset(cs, 0, sizeof(*cs));
	memcpy(cs->chain, chain, HASH_LEN);
	cs->pv = pv;
	cs->tr = *tr;
}

static void enter_round(struct consensus *cs, uint32_t round)
{
	cs->round = round;
	cs->step = CS_PROPOSE;
	cs->have_proposal = false;
	memset(&cs->prevotes, 0, sizeof(cs->prevotes));
	memset(&cs->precommits, 0, sizeof(cs->precommits));
	if (cs->tr.schedule_timeout)
		cs->tr.schedule_timeout(cs->tr.ctx, cs->height, round, CS_PROPOSE);
}

void cs_start(struct consensus *cs, uint64_t height, uint32_t round,
	      const struct validator_set *vals)
{
	cs->height = height;
	cs->vals = *vals;
	cs->locked = false;
	memset(&cs->cert, 0, sizeof(cs->cert));
	enter_round(cs, round);
}

const uint8_t *cs_proposer(const struct consensus *cs)
{
	if (!cs->vals.n)
		return NULL;
	return cs->vals.v[valset_proposer(&cs->vals, cs->round)].pubkey;
}

bool cs_is_proposer(const struct consensus *cs)
{
	const uint8_t *p = cs_proposer(cs);

	return cs->pv && p && !memcmp(p, cs->pv->key->pub, PUBKEY_LEN);
}

static ssize_t val_index(const struct consensus *cs, const uint8_t pub[PUBKEY_LEN])
{
	const struct validator *v = valset_find(&cs->vals, pub);

	return v ? v - cs->vals.v : -1;
}

static int sign_and_send_vote(struct consensus *cs, uint8_t type, const uint8_t id[HASH_LEN])
{
	struct vote v = { .type = type, .height = cs->height, .round = cs->round };
	uint8_t sig[SIG_LEN];
	int rc;

	if (!cs->pv || val_index(cs, cs->pv->key->pub) < 0)
		return 0;   /* not a validator of this height: watch only */
	memcpy(v.block_id, id, HASH_LEN);
	rc = privval_sign_vote(cs->pv, cs->chain, &v, sig, cs->why);
	if (rc)
		return rc;
	cs->tr.send_vote(cs->tr.ctx, &v, cs->pv->key->pub, sig);
	return 0;
}

int cs_propose(struct consensus *cs, const uint8_t block_id[HASH_LEN])
{
	struct proposal p = { .height = cs->height, .round = cs->round, .pol_round = -1 };
	uint8_t sig[SIG_LEN];
	int rc;

	if (!cs_is_proposer(cs) || cs->step != CS_PROPOSE)
		return TALLY_E_STATE;
	/* A locked proposer re-proposes its locked block. */
	memcpy(p.block_id, cs->locked ? cs->locked_id : block_id, HASH_LEN);
	if (cs->locked)
		p.pol_round = (int32_t)cs->locked_round;
	rc = privval_sign_proposal(cs->pv, cs->chain, &p, sig, cs->why);
	if (rc)
		return rc;
	cs->tr.send_proposal(cs->tr.ctx, &p, sig);
	return 0;
}

static int prevote(struct consensus *cs)
{
	const uint8_t *id = nil_id;

	if (cs->have_proposal) {
		bool ok = !cs->block_valid || cs->block_valid(cs->app_ctx, cs->proposal.block_id) == 0;

		if (ok && (!cs->locked || !memcmp(cs->locked_id, cs->proposal.block_id, HASH_LEN)))
			id = cs->proposal.block_id;
	}
	cs->step = CS_PREVOTE;
	if (cs->tr.schedule_timeout)
		cs->tr.schedule_timeout(cs->tr.ctx, cs->height, cs->round, CS_PREVOTE);
	return sign_and_send_vote(cs, VOTE_PREVOTE, id);
}

int cs_on_proposal(struct consensus *cs, const struct proposal *p, const uint8_t sig[SIG_LEN])
{
	const uint8_t *who;
	struct enc e;
	int rc;

	if (p->height != cs->height || p->round != cs->round || cs->have_proposal)
		return 0;
	who = cs_proposer(cs);
	if (!who)
		return TALLY_E_VALSET;
	enc_init(&e);
	proposal_encode(&e, p);
	rc = enc_error(&e);
	if (!rc)
		rc = sig_verify(who, SIG_PROPOSAL, cs->chain, e.buf, e.len, sig);
	enc_free(&e);
	if (rc)
		return rc;
	cs->have_proposal = true;
	cs->proposal = *p;
	if (cs->step == CS_PROPOSE)
		return prevote(cs);
	return 0;
}

/* The block that more than 2/3 of the stake voted for in this tally, if any;
 * *nil_quorum when the 2/3 voted nil. */
static bool quorum(const struct consensus *cs, const struct vote_tally *t, uint8_t out[HASH_LEN],
		   bool *nil_quorum)
{
	unsigned __int128 total = valset_total_stake(&cs->vals);

	*nil_quorum = false;
	for (size_t i = 0; i < cs->vals.n; i++) {
		unsigned __int128 sum = 0;

		if (!t->have[i])
			continue;
		for (size_t j = 0; j < cs->vals.n; j++)
			if (t->have[j] && !memcmp(t->block_id[j], t->block_id[i], HASH_LEN))
				sum += cs->vals.v[j].stake;
		if (sum * 3 > total * 2) {
			if (!memcmp(t->block_id[i], nil_id, HASH_LEN)) {
				*nil_quorum = true;
				return false;
			}
			memcpy(out, t->block_id[i], HASH_LEN);
			return true;
		}
	}
	return false;
}

static void build_cert(struct consensus *cs, const uint8_t id[HASH_LEN])
{
	struct commit_cert *c = &cs->cert;

	memset(c, 0, sizeof(*c));
	c->height = cs->height;
	c->round = cs->round;
	memcpy(c->block_id, id, HASH_LEN);
	/* vals is sorted by pubkey, so the signatures come out in ascending order. */
	for (size_t i = 0; i < cs->vals.n; i++) {
		if (!cs->precommits.have[i] || memcmp(cs->precommits.block_id[i], id, HASH_LEN))
			continue;
		memcpy(c->sigs[c->n].validator, cs->vals.v[i].pubkey, PUBKEY_LEN);
		memcpy(c->sigs[c->n].sig, cs->precommits.sig[i], SIG_LEN);
		c->n++;
	}
	cs->step = CS_DECIDED;
}

static int after_prevote(struct consensus *cs)
{
	uint8_t id[HASH_LEN];
	bool nil;

	if (cs->step != CS_PREVOTE)
		return 0;
	if (quorum(cs, &cs->prevotes, id, &nil)) {
		if (!cs->have_proposal || memcmp(cs->proposal.block_id, id, HASH_LEN))
			return 0;   /* wait for the proposal of the block they vote for */
		cs->locked = true;
		cs->locked_round = cs->round;
		memcpy(cs->locked_id, id, HASH_LEN);
		cs->step = CS_PRECOMMIT;
		if (cs->tr.schedule_timeout)
			cs->tr.schedule_timeout(cs->tr.ctx, cs->height, cs->round, CS_PRECOMMIT);
		return sign_and_send_vote(cs, VOTE_PRECOMMIT, id);
	}
	if (nil) {
		cs->step = CS_PRECOMMIT;
		return sign_and_send_vote(cs, VOTE_PRECOMMIT, nil_id);
	}
	return 0;
}

int cs_on_vote(struct consensus *cs, const struct vote *v, const uint8_t validator[PUBKEY_LEN],
	       const uint8_t sig[SIG_LEN])
{
	struct vote_tally *t;
	ssize_t i;
	uint8_t id[HASH_LEN];
	bool nil;
	int rc;

	if (v->height != cs->height || v->round != cs->round || cs->step == CS_DECIDED)
		return 0;
	i = val_index(cs, validator);
	if (i < 0)
		return TALLY_E_UNAUTHORIZED;
	rc = vote_verify(v, validator, cs->chain, sig);
	if (rc)
		return rc;
	if (v->type == VOTE_PREVOTE)
		t = &cs->prevotes;
	else if (v->type == VOTE_PRECOMMIT)
		t = &cs->precommits;
	else
		return TALLY_E_INVALID;
	if (t->have[i])
		/* A second, different vote is evidence of equivocation; EVIDENCE
		 * transactions will carry it once they are supported. */
		return 0;
	t->have[i] = true;
	memcpy(t->block_id[i], v->block_id, HASH_LEN);
	memcpy(t->sig[i], sig, SIG_LEN);
	if (v->type == VOTE_PREVOTE)
		return after_prevote(cs);
	if (quorum(cs, &cs->precommits, id, &nil))
		build_cert(cs, id);
	return 0;
}

int cs_on_timeout(struct consensus *cs, uint64_t height, uint32_t round, uint8_t step)
{
	if (height != cs->height || round != cs->round || cs->step == CS_DECIDED)
		return 0;
	if (step == CS_PROPOSE && cs->step == CS_PROPOSE)
		return prevote(cs);
	if (step == CS_PREVOTE && cs->step == CS_PREVOTE) {
		cs->step = CS_PRECOMMIT;
		return sign_and_send_vote(cs, VOTE_PRECOMMIT, nil_id);
	}
	if (step == CS_PRECOMMIT && cs->step == CS_PRECOMMIT && round < UINT32_MAX)
		enter_round(cs, round + 1);
	return 0;
}

bool cs_decided(const struct consensus *cs, struct commit_cert *out)
{
	if (cs->step != CS_DECIDED)
		return false;
	if (out)
		*out = cs->cert;
	return true;
}
