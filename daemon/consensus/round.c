/* The round state machine (see round.h). Line numbers in comments are those
 * of Algorithm 1 in "The latest gossip on BFT consensus" (2018). */
#include "daemon/consensus/round.h"

#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"

const char *cs_step_name(uint8_t step)
{
	static const char *const names[] = { "new-height", "propose", "prevote", "precommit",
					     "decided" };

	return step < sizeof(names) / sizeof(names[0]) ? names[step] : "?";
}

const char *csm_check_name(enum csm_check c)
{
	static const char *const names[] = { "accepted", "duplicate", "equivocation", "old",
					     "next-height", "ahead", "ignored", "refused" };

	return (size_t)c < sizeof(names) / sizeof(names[0]) ? names[c] : "?";
}

static void emit(struct csm_out *out, const struct csm_action *a)
{
	/* Bounded by construction (round.h); dropping one would stall the node,
	 * so running out is a programming error. */
	if (out->n == CSM_ACTIONS_MAX)
		abort();
	out->a[out->n++] = *a;
}

static void schedule(struct csm *m, uint8_t wait, struct csm_out *out)
{
	struct csm_action a = { .kind = CSM_SCHEDULE, .height = m->height, .round = m->round,
				.wait = wait };

	emit(out, &a);
}

void csm_init(struct csm *m, const uint8_t chain[HASH_LEN], const uint8_t *self)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->chain, chain, HASH_LEN);
	if (self) {
		m->has_self = true;
		memcpy(m->self, self, PUBKEY_LEN);
	}
	m->self_idx = -1;
	m->locked_round = m->valid_round = -1;
	height_votes_init(&m->votes, &m->vals);
}

static void drop_height(struct csm *m)
{
	height_votes_free(&m->votes);
	free(m->props);
	m->props = NULL;
	m->nprops = m->props_cap = 0;
}

void csm_free(struct csm *m)
{
	drop_height(m);
}

static ssize_t index_of(const struct csm *m, const uint8_t pub[PUBKEY_LEN])
{
	const struct validator *v = valset_find(&m->vals, pub);

	return v ? v - m->vals.v : -1;
}

int csm_start_height(struct csm *m, uint64_t height, const struct validator_set *vals,
		     struct csm_out *out)
{
	if (valset_check(vals))
		return TALLY_E_VALSET;
	drop_height(m);
	m->height = height;
	m->vals = *vals;
	height_votes_init(&m->votes, &m->vals);
	m->self_idx = m->has_self ? (int)index_of(m, m->self) : -1;
	m->round = 0;
	m->first_round = 0;
	m->step = CS_NEW_HEIGHT;
	m->locked_round = m->valid_round = -1;
	memset(m->locked_id, 0, HASH_LEN);
	memset(m->valid_id, 0, HASH_LEN);
	m->prevote_wait = m->pol_seen = m->precommit_wait = false;
	m->decided_round = 0;
	memset(m->decided_id, 0, HASH_LEN);
	schedule(m, CS_WAIT_COMMIT, out);
	return 0;
}

void csm_set_first_round(struct csm *m, uint32_t round)
{
	if (m->step == CS_NEW_HEIGHT)
		m->first_round = round;
}

/* --- reads ------------------------------------------------------------------ */

const uint8_t *csm_proposer(const struct csm *m, uint32_t round)
{
	if (!m->vals.n)
		return NULL;
	return m->vals.v[valset_proposer(&m->vals, round)].pubkey;
}

static struct csm_prop *prop_slot(const struct csm *m, uint32_t round, size_t *pos)
{
	size_t lo = 0, hi = m->nprops;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->props[mid].round == round)
			return &m->props[mid];
		if (m->props[mid].round < round)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos)
		*pos = lo;
	return NULL;
}

const struct csm_proposal *csm_proposal(const struct csm *m, uint32_t round)
{
	struct csm_prop *s = prop_slot(m, round, NULL);

	return s ? &s->prop : NULL;
}

const struct csm_proposal *csm_valid_block(const struct csm *m, const uint8_t id[HASH_LEN])
{
	for (size_t i = 0; i < m->nprops; i++)
		if (m->props[i].prop.valid && !memcmp(m->props[i].prop.p.block_id, id, HASH_LEN))
			return &m->props[i].prop;
	return NULL;
}

static const struct vote_set *set_of(const struct round_votes *r, uint8_t type)
{
	return type == VOTE_PREVOTE ? &r->prevotes : &r->precommits;
}

const struct vote_set *csm_votes(const struct csm *m, uint32_t round, uint8_t type)
{
	const struct round_votes *r = height_votes_round(&m->votes, round);

	if (!r || (type != VOTE_PREVOTE && type != VOTE_PRECOMMIT))
		return NULL;
	return set_of(r, type);
}

const struct vs_vote *csm_vote(const struct csm *m, uint32_t round, uint8_t type, size_t idx)
{
	const struct vote_set *s = csm_votes(m, round, type);

	return s ? vote_set_get(s, idx) : NULL;
}

/* A proposal of this height carries block id (valid or not). */
static bool knows_block(const struct csm *m, const uint8_t id[HASH_LEN])
{
	for (size_t i = 0; i < m->nprops; i++)
		if (!memcmp(m->props[i].prop.p.block_id, id, HASH_LEN))
			return true;
	return false;
}

int csm_cert(const struct csm *m, struct commit_cert *cert)
{
	const struct round_votes *r;

	if (m->step != CS_DECIDED)
		return TALLY_E_STATE;
	r = height_votes_round(&m->votes, m->decided_round);
	if (!r)
		return TALLY_E_STATE;
	return vote_set_cert(&r->precommits, m->height, m->decided_id, cert);
}

/* --- checks ------------------------------------------------------------------ */

static enum csm_check check_height(const struct csm *m, uint64_t height)
{
	if (height < m->height)
		return CSM_OLD;
	if (height == m->height + 1)
		return CSM_NEXT_HEIGHT;
	if (height > m->height)
		return CSM_AHEAD;
	return m->step == CS_DECIDED ? CSM_OLD : CSM_ACCEPT;
}

enum csm_check csm_check_proposal(const struct csm *m, const struct proposal *p,
				  const uint8_t sig[SIG_LEN], int *err)
{
	const struct csm_proposal *have;
	const uint8_t *who;
	enum csm_check c = check_height(m, p->height);

	*err = 0;
	if (c != CSM_ACCEPT)
		return c;
	if (p->pol_round < -1 || (int64_t)p->pol_round >= (int64_t)p->round) {
		*err = TALLY_E_RANGE;
		return CSM_REFUSED;
	}
	if ((uint64_t)p->round > (uint64_t)m->round + 1)
		return CSM_IGNORED;
	who = csm_proposer(m, p->round);
	if (!who) {
		*err = TALLY_E_VALSET;
		return CSM_REFUSED;
	}
	have = csm_proposal(m, p->round);
	if (have && !memcmp(have->p.block_id, p->block_id, HASH_LEN) &&
	    have->p.pol_round == p->pol_round)
		return CSM_DUPLICATE;
	if (proposal_verify(p, who, m->chain, sig)) {
		*err = TALLY_E_SIGNATURE;
		return CSM_REFUSED;
	}
	/* The first proposal of a round is the one; a second from the same
	 * proposer is equivocation. */
	return have ? CSM_EQUIVOCATION : CSM_ACCEPT;
}

enum csm_check csm_check_vote(const struct csm *m, const struct vote *v,
			      const uint8_t who[PUBKEY_LEN], const uint8_t sig[SIG_LEN], int *err,
			      bool *equivocation)
{
	const struct vs_vote *have;
	ssize_t idx;
	enum csm_check c = check_height(m, v->height);

	*err = 0;
	if (equivocation)
		*equivocation = false;
	if (c != CSM_ACCEPT)
		return c;
	if (v->type != VOTE_PREVOTE && v->type != VOTE_PRECOMMIT) {
		*err = TALLY_E_RANGE;
		return CSM_REFUSED;
	}
	idx = index_of(m, who);
	if (idx < 0) {
		*err = TALLY_E_UNAUTHORIZED;
		return CSM_REFUSED;
	}
	have = csm_vote(m, v->round, v->type, (size_t)idx);
	if (have && vote_set_sig_for(csm_votes(m, v->round, v->type), (size_t)idx, v->block_id))
		return CSM_DUPLICATE;
	if (!have && !height_votes_admits(&m->votes, v->round, m->round, (size_t)idx))
		return CSM_IGNORED;
	if (vote_verify(v, who, m->chain, sig)) {
		*err = TALLY_E_SIGNATURE;
		return CSM_REFUSED;
	}
	if (!have)
		return CSM_ACCEPT;
	if (equivocation)
		*equivocation = true;
	/* Kept for a block that can matter, so a faulty validator cannot fill
	 * the set with votes for blocks nobody proposed. */
	return cs_is_nil(v->block_id) || knows_block(m, v->block_id) ? CSM_ACCEPT :
									 CSM_EQUIVOCATION;
}

/* --- the rules ----------------------------------------------------------------- */

static void vote(struct csm *m, uint8_t type, const uint8_t id[HASH_LEN], struct csm_out *out)
{
	struct csm_action a = { .kind = CSM_VOTE, .height = m->height, .round = m->round,
				.vote_type = type };

	m->step = type == VOTE_PREVOTE ? CS_PREVOTE : CS_PRECOMMIT;
	if (m->self_idx < 0)
		return;   /* a watching node follows the steps without voting */
	memcpy(a.block_id, id, HASH_LEN);
	emit(out, &a);
}

/* StartRound (line 11). */
static void start_round(struct csm *m, uint32_t round, struct csm_out *out)
{
	m->round = round;
	m->step = CS_PROPOSE;
	m->prevote_wait = m->pol_seen = m->precommit_wait = false;
	if (m->self_idx >= 0 && !memcmp(csm_proposer(m, round), m->self, PUBKEY_LEN)) {
		struct csm_action a = { .kind = CSM_PROPOSE, .height = m->height, .round = round,
					.pol_round = -1 };

		/* Lines 14-18: the valid value, with its round as proof-of-lock. */
		if (m->valid_round >= 0) {
			a.pol_round = (int32_t)m->valid_round;
			memcpy(a.block_id, m->valid_id, HASH_LEN);
		}
		emit(out, &a);
	}
	/* Line 21 for the others; the proposer arms it too, so that a proposal it
	 * fails to make costs one timeout rather than the round. */
	schedule(m, CS_WAIT_PROPOSE, out);
}

/* Line 49: +2/3 precommits in any round for a valid block this node holds. */
static bool try_decide(struct csm *m, struct csm_out *out)
{
	uint8_t id[HASH_LEN];

	for (size_t i = 0; i < m->votes.n; i++) {
		const struct round_votes *r = m->votes.r[i];
		struct csm_action a = { .kind = CSM_DECIDE, .height = m->height };

		if (!vote_set_quorum_id(&r->precommits, id) || cs_is_nil(id) ||
		    !csm_valid_block(m, id))
			continue;
		m->step = CS_DECIDED;
		m->decided_round = r->round;
		memcpy(m->decided_id, id, HASH_LEN);
		a.round = r->round;
		memcpy(a.block_id, id, HASH_LEN);
		emit(out, &a);
		return true;
	}
	return false;
}

/* Line 55: more than 1/3 of the stake is in a later round. */
static bool try_skip(struct csm *m, struct csm_out *out)
{
	uint64_t total = valset_total_stake(&m->vals);
	bool found = false;
	uint32_t best = 0;

	for (size_t i = 0; i < m->votes.n; i++) {
		uint32_t r = m->votes.r[i]->round;

		if (r > m->round && cs_one_honest(height_votes_round_stake(&m->votes, r), total)) {
			best = r;
			found = true;
		}
	}
	if (!found)
		return false;
	start_round(m, best, out);
	return true;
}

/* Lines 22 and 28, in the propose step. */
static bool try_prevote(struct csm *m, const struct csm_proposal *pr, struct csm_out *out)
{
	const uint8_t *id = pr->p.block_id;
	const struct round_votes *pol;
	bool ok;

	if (pr->p.pol_round < 0) {
		ok = pr->valid && pr->timely &&
		     (m->locked_round < 0 || !memcmp(m->locked_id, id, HASH_LEN));
	} else {
		int64_t vr = pr->p.pol_round;

		pol = height_votes_round(&m->votes, (uint32_t)vr);
		if (!pol || !cs_quorum(vote_set_stake_for(&pol->prevotes, id),
				       valset_total_stake(&m->vals)))
			return false;   /* wait for the proof-of-lock, or the timeout */
		ok = pr->valid && (m->locked_round <= vr || !memcmp(m->locked_id, id, HASH_LEN));
	}
	vote(m, VOTE_PREVOTE, ok ? id : cs_nil_id, out);
	return true;
}

/* The rules of the current round, lines 22 to 48. */
static bool try_round(struct csm *m, struct csm_out *out)
{
	const struct csm_proposal *pr = csm_proposal(m, m->round);
	const struct round_votes *r = height_votes_round(&m->votes, m->round);
	uint64_t total = valset_total_stake(&m->vals);

	if (m->step == CS_NEW_HEIGHT || m->step == CS_DECIDED)
		return false;
	if (m->step == CS_PROPOSE && pr && try_prevote(m, pr, out))
		return true;
	if (!r)
		return false;
	/* Line 36: +2/3 prevotes for the round's valid proposal. */
	if (!m->pol_seen && m->step >= CS_PREVOTE && pr && pr->valid &&
	    cs_quorum(vote_set_stake_for(&r->prevotes, pr->p.block_id), total)) {
		m->pol_seen = true;
		if (m->step == CS_PREVOTE) {
			m->locked_round = m->round;
			memcpy(m->locked_id, pr->p.block_id, HASH_LEN);
			vote(m, VOTE_PRECOMMIT, pr->p.block_id, out);
		}
		m->valid_round = m->round;
		memcpy(m->valid_id, pr->p.block_id, HASH_LEN);
		return true;
	}
	if (m->step == CS_PREVOTE) {
		/* Line 44: +2/3 prevotes for nil. */
		if (cs_quorum(vote_set_stake_for(&r->prevotes, cs_nil_id), total)) {
			vote(m, VOTE_PRECOMMIT, cs_nil_id, out);
			return true;
		}
		/* Line 34. */
		if (!m->prevote_wait && vote_set_quorum_any(&r->prevotes)) {
			m->prevote_wait = true;
			schedule(m, CS_WAIT_PREVOTE, out);
			return true;
		}
	}
	/* Line 47. */
	if (!m->precommit_wait && vote_set_quorum_any(&r->precommits)) {
		m->precommit_wait = true;
		schedule(m, CS_WAIT_PRECOMMIT, out);
		return true;
	}
	return false;
}

/* Every rule that holds fires, until none does. */
static void progress(struct csm *m, struct csm_out *out)
{
	while (m->step != CS_DECIDED &&
	       (try_decide(m, out) || try_skip(m, out) || try_round(m, out)))
		;
}

/* --- events ------------------------------------------------------------------- */

int csm_on_proposal(struct csm *m, const struct proposal *p, const uint8_t sig[SIG_LEN],
		    bool valid, bool timely, struct csm_out *out)
{
	struct csm_prop *s;
	size_t pos = 0;

	if (p->height != m->height || m->step == CS_DECIDED || prop_slot(m, p->round, &pos))
		return 0;
	if (m->nprops == m->props_cap) {
		size_t cap = m->props_cap ? 2 * m->props_cap : 4;
		struct csm_prop *grown = realloc(m->props, cap * sizeof(*grown));

		if (!grown)
			return TALLY_E_NOMEM;
		m->props = grown;
		m->props_cap = cap;
	}
	memmove(&m->props[pos + 1], &m->props[pos], (m->nprops - pos) * sizeof(*m->props));
	m->nprops++;
	s = &m->props[pos];
	memset(s, 0, sizeof(*s));
	s->round = p->round;
	s->prop.p = *p;
	memcpy(s->prop.sig, sig, SIG_LEN);
	s->prop.valid = valid;
	s->prop.timely = timely;
	progress(m, out);
	return 0;
}

int csm_on_vote(struct csm *m, const struct vote *v, const uint8_t who[PUBKEY_LEN],
		const uint8_t sig[SIG_LEN], struct csm_out *out)
{
	struct round_votes *r;
	ssize_t idx = index_of(m, who);
	int rc;

	if (v->height != m->height || m->step == CS_DECIDED || idx < 0)
		return 0;
	rc = height_votes_open(&m->votes, v->round, &r);
	if (!rc)
		rc = vote_set_add(v->type == VOTE_PREVOTE ? &r->prevotes : &r->precommits,
				  (size_t)idx, v->block_id, sig);
	if (rc)
		return rc;
	progress(m, out);
	return 0;
}

bool csm_timeout_matters(const struct csm *m, uint64_t height, uint32_t round, uint8_t wait)
{
	if (height != m->height || m->step == CS_DECIDED)
		return false;
	switch (wait) {
	case CS_WAIT_COMMIT:
		return m->step == CS_NEW_HEIGHT;
	case CS_WAIT_PROPOSE:          /* line 57 */
		return round == m->round && m->step == CS_PROPOSE;
	case CS_WAIT_PREVOTE:          /* line 61 */
		return round == m->round && m->step == CS_PREVOTE;
	case CS_WAIT_PRECOMMIT:        /* line 65 */
		return round == m->round && m->step != CS_NEW_HEIGHT && round < UINT32_MAX;
	default:
		return false;
	}
}

int csm_on_timeout(struct csm *m, uint64_t height, uint32_t round, uint8_t wait,
		   struct csm_out *out)
{
	if (!csm_timeout_matters(m, height, round, wait))
		return 0;
	switch (wait) {
	case CS_WAIT_COMMIT:
		start_round(m, m->first_round, out);
		break;
	case CS_WAIT_PROPOSE:
		vote(m, VOTE_PREVOTE, cs_nil_id, out);
		break;
	case CS_WAIT_PREVOTE:
		vote(m, VOTE_PRECOMMIT, cs_nil_id, out);
		break;
	case CS_WAIT_PRECOMMIT:
		start_round(m, round + 1, out);
		break;
	}
	progress(m, out);
	return 0;
}

void csm_pending_waits(const struct csm *m, struct csm_out *out)
{
	struct csm_action a = { .kind = CSM_SCHEDULE, .height = m->height, .round = m->round };

	switch (m->step) {
	case CS_NEW_HEIGHT:
		a.wait = CS_WAIT_COMMIT;
		emit(out, &a);
		return;
	case CS_PROPOSE:
		a.wait = CS_WAIT_PROPOSE;
		emit(out, &a);
		break;
	case CS_PREVOTE:
		if (m->prevote_wait) {
			a.wait = CS_WAIT_PREVOTE;
			emit(out, &a);
		}
		break;
	default:
		break;
	}
	if (m->step != CS_DECIDED && m->precommit_wait) {
		a.wait = CS_WAIT_PRECOMMIT;
		emit(out, &a);
	}
}
