/* The consensus engine (see engine.h). */
#include "daemon/consensus/engine.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/consensus/wal.h"
#include "lib/chain/state.h"
#include "lib/chain/verify.h"
#include "lib/codec.h"
#include "lib/errors.h"

/* Next-height messages kept until that height starts: enough for every
 * validator's two votes of two rounds, and a couple of proposals. */
#define NEXT_VOTES_MAX (4 * VALIDATORS_MAX)
#define NEXT_PROPOSALS_MAX 2
#define NEXT_VOTES_PER_VALIDATOR 4

/* A block this height's proposals carried (or this node built), with the
 * previous block's certificate that came with it. */
struct blk {
	uint8_t id[HASH_LEN];
	uint8_t *bytes;
	size_t len;
	uint8_t *prev;                   /* cert_encode, or NULL at height 1 */
	size_t prev_len;
	bool has_prev;
	struct commit_cert prev_cert;
	bool checked, valid;
};

struct held {
	uint8_t *bytes;
	size_t len;
};

struct reported {
	uint8_t who[PUBKEY_LEN];
	uint64_t height;
	uint32_t round;
	uint8_t type;
};

/* Actions waiting to be carried out, in order. */
struct queue {
	struct csm_action *a;
	size_t head, n, cap;
};

struct engine {
	uint8_t chain[HASH_LEN];
	struct engine_config cfg;
	struct engine_app app;
	struct engine_io io;
	bool started;
	bool replaying;                  /* inputs come from the WAL */
	struct wal *wal;
	struct csm m;
	struct engine_tip tip;           /* the application's, when this height began */

	struct csm_action *owed;         /* votes and proposals held until engine_start,
					  * or whose signing failed (engine_retry) */
	uint64_t retry_ns;               /* catch_up waits until then */
	uint64_t owed_retry_ns;          /* engine_retry waits until then */
	size_t nowed, owed_cap;
	struct blk *blocks;
	size_t nblocks, blocks_cap;
	struct held *next;               /* messages of the next height */
	size_t nnext;
	struct held *deferred;           /* the next height's, now to be handled */
	size_t ndeferred, deferred_at;
	struct reported *reported;
	size_t nreported, reported_cap;

	bool idle;                       /* between heights, waiting for transactions */
	bool commit_pending;             /* decided, but the commit failed: retry */
	bool height_pending;             /* committed, but the next height could not begin */
	int last_err;
	char last_why[WHY_MAX];
	uint64_t replayed, committed, evidence;
};

/* --- small helpers -------------------------------------------------------------- */

/* Work a failure left (a vote or proposal not signed, a commit not stored:
 * a full disk) is tried again at most this often. */
#define ENGINE_RETRY_NS 1000000000ull

static void elog(struct engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void elog(struct engine *e, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!e->app.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	e->app.log(e->app.ctx, line);
}

static void fail(struct engine *e, int rc, const char *why)
{
	e->last_err = rc;
	snprintf(e->last_why, sizeof(e->last_why), "%s", why && why[0] ? why : tally_strerror(rc));
	elog(e, "consensus at height %" PRIu64 ": %s", e->m.height, e->last_why);
}

static uint64_t now(struct engine *e)
{
	return e->started ? e->io.now_ns(e->io.ctx) : 0;
}

static const uint8_t *self_key(const struct engine *e)
{
	return e->cfg.pv ? e->cfg.pv->key->pub : NULL;
}

static int queue_push(struct queue *q, const struct csm_action *a)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 16;
		struct csm_action *grown = realloc(q->a, cap * sizeof(*grown));

		if (!grown)
			return TALLY_E_NOMEM;
		q->a = grown;
		q->cap = cap;
	}
	q->a[q->n++] = *a;
	return 0;
}

static int queue_out(struct engine *e, struct queue *q, const struct csm_out *out)
{
	for (size_t i = 0; i < out->n; i++)
		if (queue_push(q, &out->a[i])) {
			fail(e, TALLY_E_NOMEM, "out of memory for consensus actions");
			return TALLY_E_NOMEM;
		}
	return 0;
}

static struct blk *blk_find(struct engine *e, const uint8_t id[HASH_LEN])
{
	for (size_t i = 0; i < e->nblocks; i++)
		if (!memcmp(e->blocks[i].id, id, HASH_LEN))
			return &e->blocks[i];
	return NULL;
}

/* Keeps a block (taking bytes, which is malloc'd) with the previous block's
 * certificate (copied; prev_len 0 for none). NULL when out of memory or the
 * certificate does not decode (*err). */
static struct blk *blk_keep(struct engine *e, const uint8_t id[HASH_LEN], uint8_t *bytes,
			    size_t len, const uint8_t *prev, size_t prev_len, int *err)
{
	struct blk *b = blk_find(e, id);
	struct commit_cert pc;

	*err = TALLY_E_NOMEM;
	if (b) {
		free(bytes);
		return b;
	}
	if (prev_len && (*err = cert_decode(&pc, prev, prev_len))) {
		free(bytes);
		return NULL;
	}
	*err = TALLY_E_NOMEM;
	if (e->nblocks == e->blocks_cap) {
		size_t cap = e->blocks_cap ? 2 * e->blocks_cap : 4;
		struct blk *grown = realloc(e->blocks, cap * sizeof(*grown));

		if (!grown) {
			free(bytes);
			return NULL;
		}
		e->blocks = grown;
		e->blocks_cap = cap;
	}
	b = &e->blocks[e->nblocks];
	memset(b, 0, sizeof(*b));
	if (prev_len) {
		b->prev = malloc(prev_len);
		if (!b->prev) {
			free(bytes);
			return NULL;
		}
		memcpy(b->prev, prev, prev_len);
		b->prev_len = prev_len;
		b->has_prev = true;
		b->prev_cert = pc;
	}
	e->nblocks++;
	memcpy(b->id, id, HASH_LEN);
	b->bytes = bytes;
	b->len = len;
	*err = 0;
	return b;
}

static void held_free(struct held *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(h[i].bytes);
	free(h);
}

static void drop_height(struct engine *e)
{
	for (size_t i = 0; i < e->nblocks; i++) {
		free(e->blocks[i].bytes);
		free(e->blocks[i].prev);
	}
	e->nblocks = 0;
	e->nreported = 0;
}

/* --- the WAL ---------------------------------------------------------------------- */

static int log_input(struct engine *e, const struct wal_rec *r)
{
	char why[WHY_MAX] = "";
	int rc;

	if (e->replaying)
		return 0;
	rc = wal_append(e->wal, r, why);
	if (rc)
		fail(e, rc, why);
	return rc;
}

/* --- next-height messages ------------------------------------------------------------ */

/* Whether a proposal of the next height is worth one of its places: a new
 * block (pol_round -1) whose header names a proposer of the current set
 * that signed the proposal. Its proposer is not known before this height is
 * decided, and a re-proposal is signed by another than its block's
 * proposer: those are left to regossip, which sends them again once the
 * node is at that height. Nobody is accused for one: a byzantine
 * validator's proposal naming another proposer is relayed by honest peers. */
static bool next_proposal_verifies(const struct engine *e, const struct cs_msg *m)
{
	struct block_header h;
	uint8_t id[HASH_LEN];
	struct dec d;

	if (m->p.pol_round != -1)
		return false;
	dec_init(&d, m->block, m->block_len);
	if (header_decode_from(&d, &h))
		return false;
	block_id(&h, id);
	return !memcmp(id, m->p.block_id, HASH_LEN) && valset_find(&e->m.vals, h.proposer) &&
	       !proposal_verify(&m->p, h.proposer, e->chain, m->sig);
}

/* Keeps m, of the next height, for when it begins: 0 (kept or not), or
 * TALLY_E_SIGNATURE for a vote whose signature does not verify (a forgery:
 * an honest peer relays only votes an engine verified). A vote is verified
 * before it takes one of its validator's places, and a proposal before it
 * takes one of the two (next_proposal_verifies), so forgeries cannot take
 * them all and leave the validators' own early messages out. */
static int hold_next(struct engine *e, const struct cs_msg *m, const uint8_t *bytes,
		     size_t len)
{
	size_t proposals = 0, mine = 0;
	struct held *grown;
	uint8_t *copy;

	if (e->replaying)
		return 0;
	for (size_t i = 0; i < e->nnext; i++) {
		struct cs_msg o;

		if (e->next[i].len == len && !memcmp(e->next[i].bytes, bytes, len))
			return 0;
		if (cs_msg_decode(&o, e->next[i].bytes, e->next[i].len))
			continue;
		if (o.kind == CS_MSG_PROPOSAL)
			proposals++;
		else if (m->kind == CS_MSG_VOTE && !memcmp(o.validator, m->validator, PUBKEY_LEN))
			mine++;
	}
	/* The current set filters senders: a vote from a key outside it is left
	 * to gossip (the next set is known only once this height is decided). */
	if (m->kind == CS_MSG_PROPOSAL ? proposals >= NEXT_PROPOSALS_MAX :
	    (mine >= NEXT_VOTES_PER_VALIDATOR || e->nnext >= NEXT_VOTES_MAX + NEXT_PROPOSALS_MAX ||
	     !valset_find(&e->m.vals, m->validator)))
		return 0;
	if (m->kind == CS_MSG_VOTE && vote_verify(&m->v, m->validator, e->chain, m->sig))
		return TALLY_E_SIGNATURE;
	if (m->kind == CS_MSG_PROPOSAL && !next_proposal_verifies(e, m))
		return 0;
	copy = malloc(len);
	grown = realloc(e->next, (e->nnext + 1) * sizeof(*grown));
	if (!copy || !grown) {
		free(copy);
		if (grown)
			e->next = grown;
		return 0;
	}
	e->next = grown;
	memcpy(copy, bytes, len);
	e->next[e->nnext].bytes = copy;
	e->next[e->nnext].len = len;
	e->nnext++;
	return 0;
}

/* --- evidence ------------------------------------------------------------------------ */

/* Whether m's step (validator, height, round, type) was reported already. */
static bool reported_already(const struct engine *e, const struct cs_msg *m)
{
	for (size_t i = 0; i < e->nreported; i++)
		if (!memcmp(e->reported[i].who, m->validator, PUBKEY_LEN) &&
		    e->reported[i].height == m->v.height && e->reported[i].round == m->v.round &&
		    e->reported[i].type == m->v.type)
			return true;
	return false;
}

/* Reports a validator's two votes for one step (one height, round and
 * type; different blocks) to the application as evidence, once per step:
 * "have" is the vote this node held, m the one that conflicts with it. */
static void report_equivocation(struct engine *e, const struct vote *have,
				const uint8_t have_sig[SIG_LEN], const struct cs_msg *m)
{
	struct cs_evidence ev;
	char hex[17];

	if (reported_already(e, m))
		return;
	if (e->nreported == e->reported_cap) {
		size_t cap = e->reported_cap ? 2 * e->reported_cap : 8;
		struct reported *grown = realloc(e->reported, cap * sizeof(*grown));

		if (!grown)
			return;
		e->reported = grown;
		e->reported_cap = cap;
	}
	memcpy(e->reported[e->nreported].who, m->validator, PUBKEY_LEN);
	e->reported[e->nreported].height = m->v.height;
	e->reported[e->nreported].round = m->v.round;
	e->reported[e->nreported].type = m->v.type;
	e->nreported++;
	e->evidence++;
	memset(&ev, 0, sizeof(ev));
	memcpy(ev.validator, m->validator, PUBKEY_LEN);
	ev.a = *have;
	memcpy(ev.sig_a, have_sig, SIG_LEN);
	ev.b = m->v;
	memcpy(ev.sig_b, m->sig, SIG_LEN);
	hex_encode(m->validator, 8, hex);
	elog(e, "validator %s signed two different %s at height %" PRIu64 " round %u", hex,
	     m->v.type == VOTE_PREVOTE ? "prevotes" : "precommits", m->v.height, m->v.round);
	if (e->app.evidence)
		e->app.evidence(e->app.ctx, &ev);
}

/* A vote of this height that conflicts with the one held for its step
 * (csm_check_vote said so, and checked its signature). */
static void surface_evidence(struct engine *e, const struct cs_msg *m)
{
	const struct validator *val = valset_find(&e->m.vals, m->validator);
	const struct vs_vote *have;
	struct vote v;

	if (!val)
		return;
	have = csm_vote(&e->m, m->v.round, m->v.type, (size_t)(val - e->m.vals.v));
	if (!have)
		return;
	v = m->v;
	memcpy(v.block_id, have->id, HASH_LEN);
	report_equivocation(e, &v, have->sig, m);
}

/* --- inputs -------------------------------------------------------------------------- */

static int wake(struct engine *e, struct queue *q);

/* A proposal the machine accepts: its block, checked once per id, and
 * whether its time is within the bound of this node's clock. */
static int judge_block(struct engine *e, const struct cs_msg *m, const struct wal_rec *from,
		       bool *valid, bool *timely, char *why)
{
	struct block_header h;
	uint8_t id[HASH_LEN];
	struct blk *b;
	struct dec d;
	int rc;

	dec_init(&d, m->block, m->block_len);
	if (header_decode_from(&d, &h))
		return why_set(why, TALLY_E_ENCODING, "the proposed block's header does not decode");
	block_id(&h, id);
	if (memcmp(id, m->p.block_id, HASH_LEN))
		return why_set(why, TALLY_E_LINK, "the block sent is not the one proposed");
	b = blk_find(e, id);
	if (!b) {
		uint8_t *copy = malloc(m->block_len ? m->block_len : 1);

		if (!copy)
			return TALLY_E_NOMEM;
		memcpy(copy, m->block, m->block_len);
		b = blk_keep(e, id, copy, m->block_len, m->prev_cert, m->prev_cert_len, &rc);
		if (!b)
			return why_set(why, rc, "the certificate the proposal carries: %s",
				       tally_strerror(rc));
	} else if (b->prev_len != m->prev_cert_len ||
		   (b->prev_len && memcmp(b->prev, m->prev_cert, b->prev_len))) {
		/* Only one certificate hashes to what the block names. */
		return why_set(why, TALLY_E_CERT, "the proposal carries another certificate for"
			       " the previous block than its block was checked with");
	}
	if (from) {
		/* As judged when it arrived: the replay acts as the node did. */
		*valid = from->flags & WAL_FLAG_VALID;
		*timely = from->flags & WAL_FLAG_TIMELY;
		b->checked = true;
		b->valid = *valid;
		return 0;
	}
	if (!b->checked) {
		char sub[WHY_MAX] = "";

		rc = e->app.check(e->app.ctx, b->bytes, b->len, b->has_prev ? &b->prev_cert : NULL,
				  sub);
		if (rc && state_err_is_fatal(rc))
			return why_set(why, rc, "cannot check the proposed block: %s",
				       sub[0] ? sub : tally_strerror(rc));
		b->checked = true;
		b->valid = rc == 0;
		if (rc)
			elog(e, "height %" PRIu64 " round %u: the proposed block is invalid: %s",
			     m->p.height, m->p.round, sub[0] ? sub : tally_strerror(rc));
	}
	*valid = b->valid;
	{
		/* The chain's clock rule, against this node's clock (the I/O's). */
		char sub[WHY_MAX] = "";

		*timely = !chain_check_block_time(h.time_ns, now(e), e->cfg.max_future_ns, sub);
		if (!*timely)
			elog(e, "height %" PRIu64 " round %u: the proposed block is not timely: %s",
			     m->p.height, m->p.round, sub);
	}
	return 0;
}

/* A precommit for the last block that came after this node decided it, in
 * the round its certificate is of: added to that certificate, which this
 * node's next proposal names (last_commit_hash) and carries. The chain then
 * records every validator that signed in time for the block interval, not
 * only the first 2/3 to arrive, and the liveness rule (lib/chain/state.h)
 * does not count a slow but honest validator as absent: CometBFT gathers
 * its LastCommit during timeout_commit the same way. A signer the set that
 * signed the block does not hold, or one held already, changes nothing; a
 * signature that does not verify is TALLY_E_SIGNATURE (the peer forged it).
 * A verified precommit for another block (or nil) from a signer the
 * certificate holds is an equivocation found late, reported as evidence
 * like one found during the height. */
static int late_precommit(struct engine *e, const struct cs_msg *m)
{
	struct commit_cert *c = &e->tip.last_cert;
	size_t i;

	if (m->kind != CS_MSG_VOTE || m->v.type != VOTE_PRECOMMIT || !e->tip.height ||
	    !c->n || c->n > VALIDATORS_MAX || m->v.height != c->height ||
	    m->v.round != c->round || !valset_find(&e->tip.signers, m->validator))
		return 0;
	for (i = 0; i < c->n && memcmp(c->sigs[i].validator, m->validator, PUBKEY_LEN) < 0; i++)
		;
	bool in_cert = i < c->n && !memcmp(c->sigs[i].validator, m->validator, PUBKEY_LEN);
	bool same = !memcmp(m->v.block_id, c->block_id, HASH_LEN);

	if (in_cert && !same) {
		struct vote have = m->v;

		/* Once per offence: more of its votes cost no signature check. */
		if (reported_already(e, m))
			return 0;
		if (vote_verify(&m->v, m->validator, e->chain, m->sig))
			return TALLY_E_SIGNATURE;
		memcpy(have.block_id, c->block_id, HASH_LEN);
		report_equivocation(e, &have, c->sigs[i].sig, m);
		return 0;
	}
	if (in_cert || !same || c->n >= VALIDATORS_MAX)
		return 0;
	if (vote_verify(&m->v, m->validator, e->chain, m->sig))
		return TALLY_E_SIGNATURE;
	memmove(&c->sigs[i + 1], &c->sigs[i], (c->n - i) * sizeof(c->sigs[0]));
	memcpy(c->sigs[i].validator, m->validator, PUBKEY_LEN);
	memcpy(c->sigs[i].sig, m->sig, SIG_LEN);
	c->n++;
	return 0;
}

/* One message, from a peer, from this node, or from the WAL (from != NULL). */
static int handle_msg(struct engine *e, const uint8_t *bytes, size_t len,
		      const struct wal_rec *from, enum csm_check *verdict, struct queue *q,
		      char *why)
{
	struct csm_out out = { 0 };
	struct wal_rec rec = { .kind = WAL_MESSAGE, .msg = bytes, .msg_len = len };
	enum csm_check c;
	struct cs_msg m;
	bool valid = false, timely = false, equivocation = false;
	int err = 0, rc;

	*verdict = CSM_REFUSED;
	rc = cs_msg_decode(&m, bytes, len);
	if (rc)
		return why_set(why, rc, "the consensus message does not decode: %s",
			       tally_strerror(rc));
	c = m.kind == CS_MSG_PROPOSAL ?
	    csm_check_proposal(&e->m, &m.p, m.sig, &err) :
	    csm_check_vote(&e->m, &m.v, m.validator, m.sig, &err, &equivocation);
	*verdict = c;
	/* Reported when it arrives; a replay does not report it again. */
	if (equivocation && !from)
		surface_evidence(e, &m);
	switch (c) {
	case CSM_ACCEPT:
		break;
	case CSM_REFUSED:
		return why_set(why, err, "consensus message refused: %s", tally_strerror(err));
	case CSM_EQUIVOCATION:
		return 0;
	case CSM_NEXT_HEIGHT:
		if (hold_next(e, &m, bytes, len))
			return why_set(why, TALLY_E_SIGNATURE, "a vote for the next height whose"
				       " signature does not verify");
		return 0;
	case CSM_OLD:
		/* A forgery: no honest node sends one (the peer is dropped). */
		if (!from && late_precommit(e, &m))
			return why_set(why, TALLY_E_SIGNATURE, "a precommit for the last block"
				       " whose signature does not verify");
		return 0;
	default:
		return 0;
	}
	/* Someone started this height: an idle node joins it. */
	if (e->idle && !from) {
		rc = wake(e, q);
		if (rc)
			return rc;
	}
	if (m.kind == CS_MSG_PROPOSAL) {
		rc = judge_block(e, &m, from, &valid, &timely, why);
		if (rc) {
			*verdict = CSM_REFUSED;
			return rc;
		}
		rec.flags = (valid ? WAL_FLAG_VALID : 0) | (timely ? WAL_FLAG_TIMELY : 0);
	}
	rec.received_ns = now(e);
	rc = log_input(e, &rec);
	if (rc)
		return why_set(why, rc, "%s", e->last_why);
	if (from)
		e->replayed++;
	rc = m.kind == CS_MSG_PROPOSAL ?
	     csm_on_proposal(&e->m, &m.p, m.sig, valid, timely, &out) :
	     csm_on_vote(&e->m, &m.v, m.validator, m.sig, &out);
	if (!rc)
		rc = queue_out(e, q, &out);
	return rc;
}

static int handle_timeout(struct engine *e, const struct cs_timeout *t, bool from_wal,
			  bool force, struct queue *q)
{
	struct wal_rec rec = { .kind = WAL_TIMEOUT, .height = t->height, .round = t->round,
			       .wait = t->wait };
	struct csm_out out = { 0 };
	int rc;

	if (!csm_timeout_matters(&e->m, t->height, t->round, t->wait))
		return 0;
	if (t->wait == CS_WAIT_COMMIT && !from_wal && !force && e->cfg.wait_for_txs &&
	    !(e->app.has_txs && e->app.has_txs(e->app.ctx))) {
		e->idle = true;
		return 0;
	}
	rc = log_input(e, &rec);
	if (rc)
		return rc;
	if (from_wal)
		e->replayed++;
	e->idle = false;
	rc = csm_on_timeout(&e->m, t->height, t->round, t->wait, &out);
	if (!rc)
		rc = queue_out(e, q, &out);
	return rc;
}

static int wake(struct engine *e, struct queue *q)
{
	struct cs_timeout t = { .height = e->m.height, .round = 0, .wait = CS_WAIT_COMMIT };

	return handle_timeout(e, &t, false, true, q);
}

/* --- actions ---------------------------------------------------------------------------- */

/* Logs a message this node signed, feeds it back in, and sends it. */
static void feed_own(struct engine *e, const struct cs_msg *m, struct queue *q)
{
	enum csm_check verdict;
	char why[WHY_MAX] = "";
	struct enc enc;
	int rc;

	enc_init(&enc);
	cs_msg_encode(&enc, m);
	rc = enc_error(&enc);
	if (!rc)
		rc = handle_msg(e, enc.buf, enc.len, NULL, &verdict, q, why);
	if (!rc && verdict != CSM_ACCEPT)
		rc = why_set(why, TALLY_E_INTERNAL, "this node's own message was %s",
			     csm_check_name(verdict));
	if (rc)
		fail(e, rc, why);
	else
		e->io.broadcast(e->io.ctx, enc.buf, enc.len);
	enc_free(&enc);
}

static void owe(struct engine *e, const struct csm_action *a)
{
	if (e->nowed == e->owed_cap) {
		size_t cap = e->owed_cap ? 2 * e->owed_cap : 8;
		struct csm_action *grown = realloc(e->owed, cap * sizeof(*grown));

		if (!grown) {
			fail(e, TALLY_E_NOMEM, "out of memory for consensus actions");
			return;
		}
		e->owed = grown;
		e->owed_cap = cap;
	}
	e->owed[e->nowed++] = *a;
}

static void sign_vote(struct engine *e, const struct csm_action *a, struct queue *q)
{
	struct cs_msg m = { .kind = CS_MSG_VOTE };
	char why[WHY_MAX] = "";
	int rc;

	m.v.type = a->vote_type;
	m.v.height = a->height;
	m.v.round = a->round;
	memcpy(m.v.block_id, a->block_id, HASH_LEN);
	memcpy(m.validator, self_key(e), PUBKEY_LEN);
	rc = privval_sign_vote(e->cfg.pv, e->chain, &m.v, m.sig, why);
	if (rc) {
		/* Not signed (its record could not be stored: a full disk): owed,
		 * and tried again by engine_retry. */
		fail(e, rc, why);
		owe(e, a);
		return;
	}
	feed_own(e, &m, q);
}

static void propose(struct engine *e, const struct csm_action *a, struct queue *q)
{
	struct cs_msg m = { .kind = CS_MSG_PROPOSAL };
	char why[WHY_MAX] = "";
	struct blk *b;
	int rc;

	if (a->pol_round >= 0) {
		b = blk_find(e, a->block_id);
		if (!b) {
			fail(e, TALLY_E_INTERNAL, "the valid block to propose again is gone");
			return;
		}
	} else {
		uint64_t t = now(e);
		struct block_header h;
		uint8_t id[HASH_LEN], *bytes = NULL;
		size_t len = 0;
		struct enc prev;
		struct dec d;

		/* Never before the last block: the chain's times only increase. */
		if (t <= e->tip.time_ns)
			t = e->tip.time_ns + 1;
		rc = e->app.build(e->app.ctx, a->height, t, self_key(e),
				  e->tip.height ? &e->tip.last_cert : NULL, &bytes, &len, why);
		if (rc) {
			free(bytes);
			fail(e, rc, why);
			return;
		}
		dec_init(&d, bytes, len);
		if (header_decode_from(&d, &h)) {
			free(bytes);
			fail(e, TALLY_E_INTERNAL, "the block built does not decode");
			return;
		}
		block_id(&h, id);
		/* It names the certificate this node holds for the last block. */
		enc_init(&prev);
		if (e->tip.height)
			cert_encode(&prev, &e->tip.last_cert);
		rc = enc_error(&prev);
		if (rc)
			free(bytes);
		b = rc ? NULL : blk_keep(e, id, bytes, len, prev.buf, prev.len, &rc);
		enc_free(&prev);
		if (!b) {
			fail(e, rc, "cannot keep the block built");
			return;
		}
		/* Built by executing it: no need to check it again. */
		b->checked = b->valid = true;
	}
	m.p.height = a->height;
	m.p.round = a->round;
	m.p.pol_round = a->pol_round;
	memcpy(m.p.block_id, b->id, HASH_LEN);
	m.block = b->bytes;
	m.block_len = b->len;
	m.prev_cert = b->prev;
	m.prev_cert_len = b->prev_len;
	rc = privval_sign_proposal(e->cfg.pv, e->chain, &m.p, m.sig, why);
	if (rc) {
		fail(e, rc, why);
		owe(e, a);
		return;
	}
	feed_own(e, &m, q);
}

static void schedule(struct engine *e, const struct cs_timeout *t)
{
	uint64_t at = now(e), d = cs_timeout_ns(&e->cfg.timeouts, t->wait, t->round);

	at = at + d < at ? UINT64_MAX : at + d;
	e->io.schedule(e->io.ctx, at, t);
}

static void next_height(struct engine *e, struct queue *q);
static void send_msg(struct engine *e, const struct cs_msg *m);

/* This validator decided a block without a precommit of its own for it in
 * the round that decided it (the others' precommits came first, or its own
 * went to nil before the proposal arrived): it signs that precommit now, if
 * its signing guard allows (nothing later or conflicting signed), sends it
 * and adds it to the certificate its next proposal names (late_precommit),
 * so that the liveness rule does not count a live validator absent. Safe:
 * the block is decided at this height already, and more than 2/3
 * precommitted it in that round, so a polka for it was there to be seen. */
static void precommit_decided(struct engine *e, const struct commit_cert *cert)
{
	struct cs_msg m = { .kind = CS_MSG_VOTE };
	char why[WHY_MAX] = "";

	/* Called once the next height began: e->tip.signers is the decided
	 * block's set (this node may not be in it, or only in the next). */
	if (!e->cfg.pv || !e->started || e->replaying ||
	    !valset_find(&e->tip.signers, self_key(e)))
		return;
	for (size_t i = 0; i < cert->n; i++)
		if (!memcmp(cert->sigs[i].validator, self_key(e), PUBKEY_LEN))
			return;
	m.v.type = VOTE_PRECOMMIT;
	m.v.height = cert->height;
	m.v.round = cert->round;
	memcpy(m.v.block_id, cert->block_id, HASH_LEN);
	memcpy(m.validator, self_key(e), PUBKEY_LEN);
	if (privval_sign_vote(e->cfg.pv, e->chain, &m.v, m.sig, why))
		return;   /* the guard says no: it signed something after it */
	(void)late_precommit(e, &m);
	send_msg(e, &m);
}

static void commit(struct engine *e, struct queue *q)
{
	struct commit_cert cert;
	char why[WHY_MAX] = "";
	struct blk *b = blk_find(e, e->m.decided_id);
	int rc;

	e->commit_pending = true;
	rc = csm_cert(&e->m, &cert);
	if (rc) {
		snprintf(why, sizeof(why), "no certificate for the decided block: %s",
			 tally_strerror(rc));
		fail(e, rc, why);
		return;
	}
	if (!b) {
		fail(e, TALLY_E_INTERNAL, "the decided block is not held");
		return;
	}
	rc = e->app.commit(e->app.ctx, b->bytes, b->len, &cert,
			   b->has_prev ? &b->prev_cert : NULL, why);
	if (rc) {
		fail(e, rc, why);
		if (e->started && !e->replaying) {
			struct cs_timeout t = { .height = e->m.height, .wait = CS_WAIT_COMMIT };

			schedule(e, &t);   /* try again after a while */
		}
		return;
	}
	e->commit_pending = false;
	e->committed++;
	next_height(e, q);
	precommit_decided(e, &cert);
}

static void next_height(struct engine *e, struct queue *q)
{
	struct csm_out out = { 0 };
	char why[WHY_MAX] = "";
	int rc;

	e->height_pending = true;
	rc = e->app.tip(e->app.ctx, &e->tip);
	if (!rc)
		rc = wal_start_height(e->wal, e->tip.height + 1, why);
	if (rc) {
		fail(e, rc, why);
		return;
	}
	drop_height(e);
	rc = csm_start_height(&e->m, e->tip.height + 1, &e->tip.vals, &out);
	if (rc) {
		fail(e, rc, "the application's validator set is ill-formed");
		return;
	}
	csm_set_first_round(&e->m, privval_first_round(e->cfg.pv, e->tip.height + 1));
	e->height_pending = false;
	e->idle = false;
	queue_out(e, q, &out);
	/* What arrived early for this height is handled once the actions that
	 * begin it are. */
	held_free(e->deferred, e->ndeferred);
	e->deferred = e->next;
	e->ndeferred = e->nnext;
	e->deferred_at = 0;
	e->next = NULL;
	e->nnext = 0;
}

static void act(struct engine *e, const struct csm_action *a, struct queue *q)
{
	switch (a->kind) {
	case CSM_SCHEDULE: {
		struct cs_timeout t = { .height = a->height, .round = a->round, .wait = a->wait };

		/* While replaying, waits are armed again by engine_start. */
		if (e->started && !e->replaying)
			schedule(e, &t);
		return;
	}
	case CSM_VOTE:
	case CSM_PROPOSE:
		if (!e->started || e->replaying) {
			owe(e, a);
			return;
		}
		if (a->kind == CSM_VOTE)
			sign_vote(e, a, q);
		else
			propose(e, a, q);
		return;
	case CSM_DECIDE:
		commit(e, q);
		return;
	}
}

/* Carries out every queued action, then what arrived early for a height
 * that began meanwhile. */
static void drain(struct engine *e, struct queue *q)
{
	for (;;) {
		while (q->head < q->n) {
			struct csm_action a = q->a[q->head++];

			act(e, &a, q);
		}
		if (e->deferred_at < e->ndeferred) {
			struct held *h = &e->deferred[e->deferred_at++];
			enum csm_check verdict;
			char why[WHY_MAX];

			handle_msg(e, h->bytes, h->len, NULL, &verdict, q, why);
			continue;
		}
		break;
	}
	held_free(e->deferred, e->ndeferred);
	e->deferred = NULL;
	e->ndeferred = e->deferred_at = 0;
	q->head = q->n = 0;
}

/* Work left by a failure: a commit to retry, a height to begin. At most
 * once per ENGINE_RETRY_NS: every input and engine_retry come here, and a
 * failure that lasts (a full disk) would otherwise be retried, and logged,
 * as often as votes arrive. */
static void catch_up(struct engine *e, struct queue *q)
{
	uint64_t t;

	if (!(e->commit_pending && e->m.step == CS_DECIDED) && !e->height_pending)
		return;
	t = now(e);
	if (t < e->retry_ns)
		return;
	e->retry_ns = t + ENGINE_RETRY_NS;
	if (e->commit_pending && e->m.step == CS_DECIDED)
		commit(e, q);
	else
		next_height(e, q);
}

/* --- open, replay, start ----------------------------------------------------------------- */

static int replay(struct engine *e, char *why)
{
	struct queue q = { 0 };
	size_t n = wal_nrecords(e->wal);
	const struct wal_rec *first = wal_record(e->wal, 0);
	uint64_t height = e->tip.height + 1;
	struct csm_out out = { 0 };
	int rc;

	if (first && first->height > height)
		return why_set(why, TALLY_E_STATE, "the consensus WAL is for height %" PRIu64
			       " but the chain's next height is %" PRIu64 ": it belongs to another"
			       " data directory or the store lost blocks; refusing to vote without"
			       " knowing what this node did", first->height, height);
	if (!first || first->height < height) {
		/* Empty, or left from a height whose block is committed. */
		rc = wal_start_height(e->wal, height, why);
		if (rc)
			return rc;
		n = 0;
	}
	rc = csm_start_height(&e->m, height, &e->tip.vals, &out);
	if (rc)
		return why_set(why, rc, "the chain's validator set is ill-formed");
	csm_set_first_round(&e->m, privval_first_round(e->cfg.pv, height));
	e->replaying = true;
	queue_out(e, &q, &out);
	drain(e, &q);
	for (size_t i = 1; i < n; i++) {
		const struct wal_rec *r = wal_record(e->wal, i);
		enum csm_check verdict;
		char sub[WHY_MAX] = "";

		if (r->kind == WAL_MESSAGE) {
			rc = handle_msg(e, r->msg, r->msg_len, r, &verdict, &q, sub);
			if (rc || (verdict != CSM_ACCEPT && verdict != CSM_OLD))
				elog(e, "consensus WAL record %zu not replayed (%s): %s", i,
				     csm_check_name(verdict), sub[0] ? sub : "-");
		} else if (r->kind == WAL_TIMEOUT) {
			struct cs_timeout t = { r->height, r->round, r->wait };

			handle_timeout(e, &t, true, false, &q);
		}
		drain(e, &q);
	}
	e->replaying = false;
	free(q.a);
	return 0;
}

int engine_open(struct engine **out, const struct engine_config *cfg,
		const struct engine_app *app, char *why)
{
	struct engine *e = calloc(1, sizeof(*e));
	int rc;

	*out = NULL;
	if (!e)
		return TALLY_E_NOMEM;
	memcpy(e->chain, cfg->chain, HASH_LEN);
	e->cfg = *cfg;
	e->cfg.chain = e->chain;
	e->cfg.wal_path = NULL;
	if (!e->cfg.timeouts.propose_ns && !e->cfg.timeouts.prevote_ns &&
	    !e->cfg.timeouts.precommit_ns && !e->cfg.timeouts.commit_ns)
		e->cfg.timeouts = cs_timeouts_default();
	rc = cs_timeouts_check(&e->cfg.timeouts, why);
	if (rc)
		goto err;
	if (!e->cfg.max_future_ns)
		e->cfg.max_future_ns = CS_MAX_FUTURE_MS * 1000000ull;
	e->app = *app;
	csm_init(&e->m, e->chain, self_key(e));
	rc = app->tip(app->ctx, &e->tip);
	if (rc) {
		why_set(why, rc, "cannot read the chain tip: %s", tally_strerror(rc));
		goto err;
	}
	rc = wal_open(&e->wal, cfg->wal_path, why);
	if (rc)
		goto err;
	e->replayed = 0;
	if (wal_cut_bytes(e->wal))
		elog(e, "consensus WAL %s: cut %" PRIu64 " bytes of a torn last record",
		     cfg->wal_path, wal_cut_bytes(e->wal));
	rc = replay(e, why);
	if (rc)
		goto err;
	*out = e;
	return 0;
err:
	engine_close(e);
	return rc;
}

/* Carries out the owed votes and proposals of the current height that the
 * machine does not hold yet. One that fails again is owed again. */
static void pay_owed(struct engine *e, struct queue *q)
{
	size_t n = e->nowed;
	struct csm_action *due;

	if (!n)
		return;
	due = malloc(n * sizeof(*due));
	if (!due) {
		fail(e, TALLY_E_NOMEM, "out of memory for consensus actions");
		return;
	}
	memcpy(due, e->owed, n * sizeof(*due));
	e->nowed = 0;
	for (size_t i = 0; i < n; i++) {
		const struct csm_action *a = &due[i];

		if (a->height != e->m.height)
			continue;
		if (a->kind == CSM_VOTE && e->m.self_idx >= 0 &&
		    csm_vote(&e->m, a->round, a->vote_type, (size_t)e->m.self_idx))
			continue;
		if (a->kind == CSM_PROPOSE && csm_proposal(&e->m, a->round))
			continue;
		queue_push(q, a);
		drain(e, q);
	}
	free(due);
}

void engine_retry(struct engine *e)
{
	struct queue q = { 0 };
	uint64_t t;

	if (!e->started || e->replaying || (!e->nowed && !e->commit_pending && !e->height_pending))
		return;
	t = now(e);
	if (t < e->owed_retry_ns)
		return;
	e->owed_retry_ns = t + ENGINE_RETRY_NS;
	catch_up(e, &q);
	drain(e, &q);
	pay_owed(e, &q);
	free(q.a);
}

int engine_start(struct engine *e, const struct engine_io *io, char *why)
{
	struct queue q = { 0 };
	struct csm_out out = { 0 };

	e->io = *io;
	e->started = true;
	catch_up(e, &q);
	drain(e, &q);
	/* What the replayed machine asked for and the WAL does not hold. */
	pay_owed(e, &q);
	csm_pending_waits(&e->m, &out);
	queue_out(e, &q, &out);
	drain(e, &q);
	if (e->commit_pending) {
		struct cs_timeout t = { .height = e->m.height, .wait = CS_WAIT_COMMIT };

		schedule(e, &t);
	}
	free(q.a);
	engine_regossip(e);
	if (e->last_err)
		why_set(why, e->last_err, "%s", e->last_why);
	return 0;
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	wal_close(e->wal);
	csm_free(&e->m);
	drop_height(e);
	free(e->blocks);
	free(e->owed);
	free(e->reported);
	held_free(e->next, e->nnext);
	held_free(e->deferred, e->ndeferred);
	free(e);
}

/* --- inputs ---------------------------------------------------------------------------------- */

/* Every input first finishes what a failure left (a commit to retry, a
 * height to begin), and last carries out what it led to. */
static int enter(struct engine *e, struct queue *q)
{
	memset(q, 0, sizeof(*q));
	if (!e->started)
		return TALLY_E_STATE;
	catch_up(e, q);
	drain(e, q);
	return 0;
}

static void leave(struct engine *e, struct queue *q)
{
	drain(e, q);
	free(q->a);
}

int engine_receive(struct engine *e, const uint8_t *msg, size_t len, enum csm_check *verdict,
		   char *why)
{
	enum csm_check v = CSM_IGNORED;
	struct queue q;
	int rc;

	why[0] = '\0';
	if (enter(e, &q))
		return why_set(why, TALLY_E_STATE, "consensus has not started");
	rc = handle_msg(e, msg, len, NULL, &v, &q, why);
	leave(e, &q);
	if (verdict)
		*verdict = v;
	return rc;
}

int engine_on_timeout(struct engine *e, const struct cs_timeout *t)
{
	struct queue q;
	int rc = enter(e, &q);

	if (rc)
		return rc;
	if (!e->commit_pending)
		rc = handle_timeout(e, t, false, false, &q);
	leave(e, &q);
	return rc;
}

static int start_now(struct engine *e, bool force)
{
	struct queue q;
	int rc = enter(e, &q);

	if (rc)
		return rc;
	if (e->m.step == CS_NEW_HEIGHT && (e->idle || force))
		rc = wake(e, &q);
	leave(e, &q);
	return rc;
}

int engine_txs_available(struct engine *e)
{
	return start_now(e, false);
}

int engine_skip_wait(struct engine *e)
{
	return start_now(e, true);
}

int engine_on_committed(struct engine *e)
{
	struct engine_tip tip;
	struct queue q = { 0 };
	int rc = e->app.tip(e->app.ctx, &tip);

	if (rc)
		return rc;
	if (tip.height < e->m.height)
		return 0;
	/* The height being decided is in the chain already. */
	e->commit_pending = false;
	next_height(e, &q);
	if (e->started)
		drain(e, &q);
	free(q.a);
	return e->height_pending ? e->last_err : 0;
}

/* --- gossip and status ------------------------------------------------------------------------- */

static void send_msg(struct engine *e, const struct cs_msg *m)
{
	struct enc enc;

	enc_init(&enc);
	cs_msg_encode(&enc, m);
	if (!enc_error(&enc))
		e->io.broadcast(e->io.ctx, enc.buf, enc.len);
	enc_free(&enc);
}

static void send_vote(struct engine *e, uint32_t round, uint8_t type, size_t idx,
		      const uint8_t id[HASH_LEN], const uint8_t sig[SIG_LEN])
{
	struct cs_msg m = { .kind = CS_MSG_VOTE };

	m.v.type = type;
	m.v.height = e->m.height;
	m.v.round = round;
	memcpy(m.v.block_id, id, HASH_LEN);
	memcpy(m.validator, e->m.vals.v[idx].pubkey, PUBKEY_LEN);
	memcpy(m.sig, sig, SIG_LEN);
	send_msg(e, &m);
}

/* Every vote kept, an equivocator's further ones too: a proof-of-lock some
 * validators saw reaches the others whatever they received first. */
static void send_votes(struct engine *e, uint32_t round, uint8_t type)
{
	const struct vote_set *s = csm_votes(&e->m, round, type);

	if (!s)
		return;
	for (size_t i = 0; i < e->m.vals.n; i++)
		if (s->v[i].have)
			send_vote(e, round, type, i, s->v[i].id, s->v[i].sig);
	for (size_t i = 0; i < s->nx; i++)
		send_vote(e, round, type, s->x[i].idx, s->x[i].id, s->x[i].sig);
}

/* The precommits of the last block's certificate: a peer still deciding
 * that height (it missed them) decides with them, as CometBFT's LastCommit
 * gossip does. */
static void send_last_commit(struct engine *e)
{
	const struct commit_cert *c = &e->tip.last_cert;

	for (size_t i = 0; e->tip.height && i < c->n; i++) {
		struct cs_msg m = { .kind = CS_MSG_VOTE };

		m.v.type = VOTE_PRECOMMIT;
		m.v.height = c->height;
		m.v.round = c->round;
		memcpy(m.v.block_id, c->block_id, HASH_LEN);
		memcpy(m.validator, c->sigs[i].validator, PUBKEY_LEN);
		memcpy(m.sig, c->sigs[i].sig, SIG_LEN);
		send_msg(e, &m);
	}
}

void engine_regossip(struct engine *e)
{
	const struct csm_proposal *pr;

	if (!e->started)
		return;
	send_last_commit(e);
	if (e->m.step == CS_NEW_HEIGHT || e->m.step == CS_DECIDED)
		return;
	pr = csm_proposal(&e->m, e->m.round);
	if (pr) {
		struct blk *b = blk_find(e, pr->p.block_id);
		struct cs_msg m = { .kind = CS_MSG_PROPOSAL, .p = pr->p };

		if (b) {
			memcpy(m.sig, pr->sig, SIG_LEN);
			m.block = b->bytes;
			m.block_len = b->len;
			m.prev_cert = b->prev;
			m.prev_cert_len = b->prev_len;
			send_msg(e, &m);
		}
		if (pr->p.pol_round >= 0)
			send_votes(e, (uint32_t)pr->p.pol_round, VOTE_PREVOTE);
	}
	send_votes(e, e->m.round, VOTE_PREVOTE);
	send_votes(e, e->m.round, VOTE_PRECOMMIT);
	/* The precommits that ended the round before: a validator still in it
	 * (it missed them, and its own precommit was among them) moves on
	 * with them. One further behind needs none: the validators that went
	 * on without its votes hold more than 2/3, and their votes of this
	 * round are more than the 1/3 that takes it here. Without these, such
	 * a validator with more than a third of the power, and the others
	 * waiting for its votes of this round, waited for each other for
	 * good (simulator seed 418 of the liveness scenario). */
	if (e->m.round > 0)
		send_votes(e, e->m.round - 1, VOTE_PRECOMMIT);
}

void engine_status(const struct engine *e, struct engine_status *st)
{
	const uint8_t *p = csm_proposer(&e->m, e->m.round);

	memset(st, 0, sizeof(*st));
	st->height = e->m.height;
	st->round = e->m.round;
	st->step = e->m.step;
	st->idle = e->idle;
	st->validator = e->m.self_idx >= 0;
	st->locked_round = e->m.locked_round;
	st->valid_round = e->m.valid_round;
	if (p)
		memcpy(st->proposer, p, PUBKEY_LEN);
	st->replayed = e->replayed;
	st->wal_cut = e->wal ? wal_cut_bytes(e->wal) : 0;
	st->committed = e->committed;
	st->evidence = e->evidence;
}

int engine_take_error(struct engine *e, char *why)
{
	int rc = e->last_err;

	if (why)
		snprintf(why, WHY_MAX, "%s", rc ? e->last_why : "");
	e->last_err = 0;
	e->last_why[0] = '\0';
	return rc;
}
