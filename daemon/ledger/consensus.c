/* Consensus: proposer priorities, the signing guard and the round state
 * machine (see consensus.h for the algorithms).
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
#include "daemon/ledger/consensus.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contracts/contract.h"
#include "lib/codec.h"
#include "lib/errors.h"

/* --- proposer selection ---------------------------------------------------- */

static int64_t total_power(const struct validator_set *s)
{
	uint64_t t = valset_total_stake(s);

	/* Stakes beyond INT64_MAX / 8 would overflow priorities; the genesis and
	 * STAKE rules keep totals far below that, so clamp rather than wrap. */
	return t > (uint64_t)INT64_MAX / 8 ? INT64_MAX / 8 : (int64_t)t;
}

static void rescale(struct validator_set *s, int64_t total)
{
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	int64_t limit = 2 * total;

	for (size_t i = 0; i < s->n; i++) {
		lo = s->v[i].priority < lo ? s->v[i].priority : lo;
		hi = s->v[i].priority > hi ? s->v[i].priority : hi;
	}
	if (s->n == 0 || limit == 0)
		return;
	/* diff fits: priorities stay within a few times the total stake. */
	int64_t diff = hi - lo;

	if (diff > limit) {
		int64_t ratio = (diff + limit - 1) / limit;

		for (size_t i = 0; i < s->n; i++)
			s->v[i].priority /= ratio;
	}
}

static void center(struct validator_set *s)
{
	__int128 sum = 0;

	if (!s->n)
		return;
	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i].priority;
	int64_t avg = (int64_t)(sum / (__int128)s->n);

	if (sum % (__int128)s->n != 0 && sum < 0)
		avg--;   /* floor, as CometBFT's big.Int division does */
	for (size_t i = 0; i < s->n; i++)
		s->v[i].priority -= avg;
}

size_t valset_increment(struct validator_set *s)
{
	int64_t total = total_power(s);
	size_t best = 0;

	rescale(s, total);
	center(s);
	for (size_t i = 0; i < s->n; i++) {
		s->v[i].priority += (int64_t)s->v[i].stake;
		/* The set is sorted by pubkey, so the first maximum is the smaller key. */
		if (s->v[i].priority > s->v[best].priority)
			best = i;
	}
	if (s->n)
		s->v[best].priority -= total;
	return best;
}

size_t valset_proposer(const struct validator_set *s, uint32_t round)
{
	struct validator_set copy = *s;
	size_t who = 0;

	for (uint64_t r = 0; r <= round; r++)
		who = valset_increment(&copy);
	return who;
}

void valset_next(const struct validator_set *cur, const struct validator_set *stakes,
		 struct validator_set *out)
{
	struct validator_set inc = *cur;
	int64_t total;

	valset_increment(&inc);
	*out = *stakes;
	total = total_power(stakes);
	for (size_t i = 0; i < out->n; i++) {
		const struct validator *old = valset_find(&inc, out->v[i].pubkey);

		out->v[i].priority = old ? old->priority : -(total + (total >> 3));
	}
}

void priorities_encode(struct enc *e, const struct validator_set *s)
{
	enc_u32(e, (uint32_t)s->n);
	for (size_t i = 0; i < s->n; i++) {
		enc_fixed(e, s->v[i].pubkey, PUBKEY_LEN);
		enc_u64(e, s->v[i].stake);
		enc_u64(e, (uint64_t)s->v[i].priority);
	}
}

int priorities_decode(struct validator_set *s, const uint8_t *p, size_t n)
{
	struct dec d;
	uint32_t count;

	memset(s, 0, sizeof(*s));
	dec_init(&d, p, n);
	count = dec_u32(&d);
	if (count > VALIDATORS_MAX)
		dec_fail(&d, TALLY_E_TOOLONG);
	for (uint32_t i = 0; i < count && !dec_error(&d); i++) {
		dec_fixed(&d, s->v[i].pubkey, PUBKEY_LEN);
		s->v[i].stake = dec_u64(&d);
		s->v[i].priority = (int64_t)dec_u64(&d);
	}
	s->n = dec_error(&d) ? 0 : count;
	return dec_finish(&d);
}

void proposal_encode(struct enc *e, const struct proposal *p)
{
	enc_u64(e, p->height);
	enc_u32(e, p->round);
	enc_u32(e, (uint32_t)p->pol_round);
	enc_fixed(e, p->block_id, HASH_LEN);
}

/* --- the signing guard ----------------------------------------------------- */

#define PRIVVAL_VERSION 1

static int privval_load(struct privval *pv, char *why)
{
	uint8_t buf[256];
	struct dec d;
	ssize_t n;
	int fd = open(pv->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, WHY_MAX, "cannot read %s: %s", pv->path, strerror(errno));
		return TALLY_E_IO;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		snprintf(why, WHY_MAX, "cannot read %s: %s", pv->path, strerror(errno));
		return TALLY_E_IO;
	}
	dec_init(&d, buf, (size_t)n);
	if (dec_u8(&d) != PRIVVAL_VERSION)
		dec_fail(&d, TALLY_E_VERSION);
	pv->height = dec_u64(&d);
	pv->round = dec_u32(&d);
	pv->step = dec_u8(&d);
	dec_fixed(&d, pv->block_id, HASH_LEN);
	dec_fixed(&d, pv->sig, SIG_LEN);
	if (!dec_error(&d) && (pv->step < SIGN_PROPOSAL || pv->step > SIGN_PRECOMMIT))
		dec_fail(&d, TALLY_E_RANGE);
	if (dec_finish(&d)) {
		/* Refuse to guess: signing without knowing what was signed could
		 * equivocate. The operator must restore or remove the file. */
		snprintf(why, WHY_MAX, "%s is corrupt; refusing to sign without it", pv->path);
		return TALLY_E_ENCODING;
	}
	pv->any = true;
	return 0;
}

int privval_open(struct privval *pv, const char *path, const struct tally_key *key, char *why)
{
	int rc;

	memset(pv, 0, sizeof(*pv));
	pv->key = key;
	pv->path = strdup(path);
	if (!pv->path)
		return TALLY_E_NOMEM;
	rc = privval_load(pv, why);
	if (rc)
		privval_close(pv);
	return rc;
}

void privval_close(struct privval *pv)
{
	free(pv->path);
	pv->path = NULL;
}

static int fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, rc = 0;

	if (!copy)
		return TALLY_E_NOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return TALLY_E_IO;
	if (fsync(fd) != 0)
		rc = TALLY_E_IO;
	close(fd);
	return rc;
}

/* Write the new last-signed state durably: temp file, fsync, rename, fsync
 * the directory. Only then may the signature leave. */
static int privval_persist(const struct privval *next, char *why)
{
	char tmp[4096];
	struct enc e;
	int fd, rc = TALLY_E_IO;

	enc_init(&e);
	enc_u8(&e, PRIVVAL_VERSION);
	enc_u64(&e, next->height);
	enc_u32(&e, next->round);
	enc_u8(&e, next->step);
	enc_fixed(&e, next->block_id, HASH_LEN);
	enc_fixed(&e, next->sig, SIG_LEN);
	if (enc_error(&e)) {
		enc_free(&e);
		return TALLY_E_NOMEM;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", next->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (write(fd, e.buf, e.len) != (ssize_t)e.len || fsync(fd) != 0) {
		rc = errno == ENOSPC ? TALLY_E_DISKFULL : TALLY_E_IO;
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, next->path) != 0) {
		unlink(tmp);
		goto out;
	}
	rc = fsync_dir_of(next->path);
out:
	if (rc)
		snprintf(why, WHY_MAX, "cannot record the signing state in %s: %s", next->path,
			 tally_strerror(rc));
	enc_free(&e);
	return rc;
}

/* CometBFT's rule: (height, round, step) never goes back, and the same
 * (height, round, step) is signed again only for the same block. */
static int privval_check(const struct privval *pv, uint64_t height, uint32_t round,
			 uint8_t step, const uint8_t block_id[HASH_LEN], bool *same, char *why)
{
	*same = false;
	if (!pv->any)
		return 0;
	if (height != pv->height)
		goto cmp_height;
	if (round != pv->round)
		goto cmp_round;
	if (step != pv->step)
		goto cmp_step;
	if (memcmp(block_id, pv->block_id, HASH_LEN) == 0) {
		*same = true;
		return 0;
	}
	snprintf(why, WHY_MAX, "refusing to sign a conflicting vote at height %" PRIu64
		 " round %u step %u: another block was signed there", height, round, step);
	return TALLY_E_STATE;
cmp_height:
	if (height > pv->height)
		return 0;
	goto regress;
cmp_round:
	if (round > pv->round)
		return 0;
	goto regress;
cmp_step:
	if (step > pv->step)
		return 0;
regress:
	snprintf(why, WHY_MAX, "refusing to sign height %" PRIu64 " round %u step %u: already"
		 " signed height %" PRIu64 " round %u step %u", height, round, step, pv->height,
		 pv->round, pv->step);
	return TALLY_E_STATE;
}

static int privval_sign(struct privval *pv, const char *chain_id, enum sig_domain dom,
			uint64_t height, uint32_t round, uint8_t step,
			const uint8_t block_id[HASH_LEN], const struct enc *payload,
			uint8_t sig[SIG_LEN], char *why)
{
	struct privval next;
	bool same;
	int rc = privval_check(pv, height, round, step, block_id, &same, why);

	if (rc)
		return rc;
	if (same) {
		memcpy(sig, pv->sig, SIG_LEN);
		return 0;
	}
	next = *pv;
	rc = sig_sign(pv->key, dom, chain_id, payload->buf, payload->len, next.sig);
	if (rc) {
		snprintf(why, WHY_MAX, "signing failed: %s", tally_strerror(rc));
		return rc;
	}
	next.any = true;
	next.height = height;
	next.round = round;
	next.step = step;
	memcpy(next.block_id, block_id, HASH_LEN);
	rc = privval_persist(&next, why);
	if (rc)
		return rc;
	*pv = next;
	memcpy(sig, pv->sig, SIG_LEN);
	return 0;
}

int privval_sign_vote(struct privval *pv, const char *chain_id, const struct vote *v,
		      uint8_t sig[SIG_LEN], char *why)
{
	struct enc e;
	int rc;

	if (v->type != VOTE_PREVOTE && v->type != VOTE_PRECOMMIT)
		return TALLY_E_INVALID;
	enc_init(&e);
	vote_encode(&e, v);
	rc = enc_error(&e);
	if (!rc)
		rc = privval_sign(pv, chain_id, SIG_VOTE, v->height, v->round,
				  v->type == VOTE_PREVOTE ? SIGN_PREVOTE : SIGN_PRECOMMIT,
				  v->block_id, &e, sig, why);
	enc_free(&e);
	return rc;
}

int privval_sign_proposal(struct privval *pv, const char *chain_id, const struct proposal *p,
			  uint8_t sig[SIG_LEN], char *why)
{
	struct enc e;
	int rc;

	enc_init(&e);
	proposal_encode(&e, p);
	rc = enc_error(&e);
	if (!rc)
		rc = privval_sign(pv, chain_id, SIG_PROPOSAL, p->height, p->round, SIGN_PROPOSAL,
				  p->block_id, &e, sig, why);
	enc_free(&e);
	return rc;
}

/* --- the round state machine ----------------------------------------------- */

static const uint8_t nil_id[HASH_LEN];

void cs_init(struct consensus *cs, const char *chain_id, struct privval *pv,
	     const struct cs_transport *tr)
{
	memset(cs, 0, sizeof(*cs));
	snprintf(cs->chain_id, sizeof(cs->chain_id), "%s", chain_id);
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
	rc = privval_sign_vote(cs->pv, cs->chain_id, &v, sig, cs->why);
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
	rc = privval_sign_proposal(cs->pv, cs->chain_id, &p, sig, cs->why);
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
		rc = sig_verify(who, SIG_PROPOSAL, cs->chain_id, e.buf, e.len, sig);
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
	rc = vote_verify(v, validator, cs->chain_id, sig);
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
