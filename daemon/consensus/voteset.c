/* Vote sets and the rounds of a height (see voteset.h). */
#include "daemon/consensus/voteset.h"

#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"

const uint8_t cs_nil_id[HASH_LEN];

bool cs_is_nil(const uint8_t id[HASH_LEN])
{
	return memcmp(id, cs_nil_id, HASH_LEN) == 0;
}

bool cs_quorum(uint64_t stake, uint64_t total)
{
	return (unsigned __int128)stake * 3 > (unsigned __int128)total * 2;
}

bool cs_one_honest(uint64_t stake, uint64_t total)
{
	return (unsigned __int128)stake * 3 > (unsigned __int128)total;
}

int vote_set_init(struct vote_set *s, const struct validator_set *vals, uint8_t type,
		  uint32_t round)
{
	size_t n = vals->n ? vals->n : 1;

	memset(s, 0, sizeof(*s));
	s->vals = vals;
	s->type = type;
	s->round = round;
	s->v = calloc(n, sizeof(*s->v));
	s->t = calloc(n, sizeof(*s->t));
	s->tcap = n;
	if (!s->v || !s->t) {
		vote_set_free(s);
		return TALLY_E_NOMEM;
	}
	return 0;
}

void vote_set_free(struct vote_set *s)
{
	free(s->v);
	free(s->x);
	free(s->t);
	s->v = NULL;
	s->x = NULL;
	s->t = NULL;
	s->nx = s->xcap = s->nt = s->tcap = 0;
}

const struct vs_vote *vote_set_get(const struct vote_set *s, size_t idx)
{
	return idx < s->vals->n && s->v[idx].have ? &s->v[idx] : NULL;
}

const uint8_t *vote_set_sig_for(const struct vote_set *s, size_t idx, const uint8_t id[HASH_LEN])
{
	if (idx >= s->vals->n || !s->v[idx].have)
		return NULL;
	if (!memcmp(s->v[idx].id, id, HASH_LEN))
		return s->v[idx].sig;
	for (size_t i = 0; i < s->nx; i++)
		if (s->x[i].idx == idx && !memcmp(s->x[i].id, id, HASH_LEN))
			return s->x[i].sig;
	return NULL;
}

static struct vs_tally *tally_of(const struct vote_set *s, const uint8_t id[HASH_LEN])
{
	for (size_t i = 0; i < s->nt; i++)
		if (!memcmp(s->t[i].id, id, HASH_LEN))
			return &s->t[i];
	return NULL;
}

int vote_set_add(struct vote_set *s, size_t idx, const uint8_t id[HASH_LEN],
		 const uint8_t sig[SIG_LEN])
{
	struct vs_tally *t;
	bool first;

	if (idx >= s->vals->n || vote_set_sig_for(s, idx, id))
		return 0;
	first = !s->v[idx].have;
	t = tally_of(s, id);
	if (!t && s->nt == s->tcap) {
		size_t cap = 2 * s->tcap;
		struct vs_tally *grown = realloc(s->t, cap * sizeof(*grown));

		if (!grown)
			return TALLY_E_NOMEM;
		s->t = grown;
		s->tcap = cap;
	}
	if (!first && s->nx == s->xcap) {
		size_t cap = s->xcap ? 2 * s->xcap : 4;
		struct vs_extra *grown = realloc(s->x, cap * sizeof(*grown));

		if (!grown)
			return TALLY_E_NOMEM;
		s->x = grown;
		s->xcap = cap;
	}
	if (first) {
		s->v[idx].have = true;
		memcpy(s->v[idx].id, id, HASH_LEN);
		memcpy(s->v[idx].sig, sig, SIG_LEN);
		/* A valid set's total stake fits in 64 bits: no sum overflows. */
		s->stake += s->vals->v[idx].stake;
	} else {
		s->x[s->nx].idx = (uint32_t)idx;
		memcpy(s->x[s->nx].id, id, HASH_LEN);
		memcpy(s->x[s->nx].sig, sig, SIG_LEN);
		s->nx++;
	}
	if (!t) {
		t = &s->t[s->nt++];
		memcpy(t->id, id, HASH_LEN);
		t->stake = 0;
	}
	t->stake += s->vals->v[idx].stake;
	return 0;
}

uint64_t vote_set_stake_for(const struct vote_set *s, const uint8_t id[HASH_LEN])
{
	const struct vs_tally *t = tally_of(s, id);

	return t ? t->stake : 0;
}

bool vote_set_quorum_any(const struct vote_set *s)
{
	return cs_quorum(s->stake, valset_total_stake(s->vals));
}

bool vote_set_quorum_id(const struct vote_set *s, uint8_t id[HASH_LEN])
{
	uint64_t total = valset_total_stake(s->vals);

	for (size_t i = 0; i < s->nt; i++)
		if (cs_quorum(s->t[i].stake, total)) {
			memcpy(id, s->t[i].id, HASH_LEN);
			return true;
		}
	return false;
}

int vote_set_cert(const struct vote_set *s, uint64_t height, const uint8_t id[HASH_LEN],
		  struct commit_cert *cert)
{
	if (s->type != VOTE_PRECOMMIT)
		return TALLY_E_INVALID;
	if (!cs_quorum(vote_set_stake_for(s, id), valset_total_stake(s->vals)))
		return TALLY_E_QUORUM;
	memset(cert, 0, sizeof(*cert));
	cert->height = height;
	cert->round = s->round;
	memcpy(cert->block_id, id, HASH_LEN);
	/* The set is sorted by key, so the signers come out ascending. */
	for (size_t i = 0; i < s->vals->n; i++) {
		const uint8_t *sig = vote_set_sig_for(s, i, id);

		if (!sig)
			continue;
		memcpy(cert->sigs[cert->n].validator, s->vals->v[i].pubkey, PUBKEY_LEN);
		memcpy(cert->sigs[cert->n].sig, sig, SIG_LEN);
		cert->n++;
	}
	return 0;
}

/* --- the rounds of a height ----------------------------------------------- */

void height_votes_init(struct height_votes *hv, const struct validator_set *vals)
{
	memset(hv, 0, sizeof(*hv));
	hv->vals = vals;
}

static void round_free(struct round_votes *r)
{
	if (!r)
		return;
	vote_set_free(&r->prevotes);
	vote_set_free(&r->precommits);
	free(r);
}

void height_votes_free(struct height_votes *hv)
{
	for (size_t i = 0; i < hv->n; i++)
		round_free(hv->r[i]);
	free(hv->r);
	hv->r = NULL;
	hv->n = hv->cap = 0;
}

/* The position of round in hv->r, or where it would go. */
static size_t position(const struct height_votes *hv, uint32_t round, bool *found)
{
	size_t lo = 0, hi = hv->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (hv->r[mid]->round == round) {
			*found = true;
			return mid;
		}
		if (hv->r[mid]->round < round)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

struct round_votes *height_votes_round(const struct height_votes *hv, uint32_t round)
{
	bool found;
	size_t i = position(hv, round, &found);

	return found ? hv->r[i] : NULL;
}

int height_votes_open(struct height_votes *hv, uint32_t round, struct round_votes **out)
{
	struct round_votes *r;
	bool found;
	size_t i = position(hv, round, &found);

	if (found) {
		*out = hv->r[i];
		return 0;
	}
	if (hv->n == hv->cap) {
		size_t cap = hv->cap ? 2 * hv->cap : 8;
		struct round_votes **grown = realloc(hv->r, cap * sizeof(*grown));

		if (!grown)
			return TALLY_E_NOMEM;
		hv->r = grown;
		hv->cap = cap;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return TALLY_E_NOMEM;
	r->round = round;
	if (vote_set_init(&r->prevotes, hv->vals, VOTE_PREVOTE, round) ||
	    vote_set_init(&r->precommits, hv->vals, VOTE_PRECOMMIT, round)) {
		round_free(r);
		return TALLY_E_NOMEM;
	}
	memmove(&hv->r[i + 1], &hv->r[i], (hv->n - i) * sizeof(*hv->r));
	hv->r[i] = r;
	hv->n++;
	*out = r;
	return 0;
}

bool height_votes_admits(const struct height_votes *hv, uint32_t round, uint32_t current,
			 size_t idx)
{
	size_t opened = 0;

	if ((uint64_t)round <= (uint64_t)current + 1 || height_votes_round(hv, round))
		return true;
	for (size_t i = 0; i < hv->n; i++) {
		const struct round_votes *r = hv->r[i];

		if ((uint64_t)r->round <= (uint64_t)current + 1)
			continue;
		if (vote_set_get(&r->prevotes, idx) || vote_set_get(&r->precommits, idx))
			opened++;
	}
	return opened < CS_FUTURE_ROUNDS_PER_VALIDATOR;
}

uint64_t height_votes_round_stake(const struct height_votes *hv, uint32_t round)
{
	const struct round_votes *r = height_votes_round(hv, round);
	uint64_t stake = 0;

	if (!r)
		return 0;
	for (size_t i = 0; i < hv->vals->n; i++)
		if (r->prevotes.v[i].have || r->precommits.v[i].have)
			stake += hv->vals->v[i].stake;
	return stake;
}
