/* The state transition: what each transaction does to the state (rules at
 * the top of lib/chain/state.h; the lease rules are contracts/'s). */
#include "lib/chain/state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"
#include "lib/merkle.h"
#include "lib/chain/evidence.h"

/* "ab12cd34…": enough of a key for a message. */
static const char *short_hex(const uint8_t *p, char buf[16])
{
	hex_encode(p, 4, buf);
	strcat(buf, "\xe2\x80\xa6");
	return buf;
}

bool state_err_is_fatal(int err)
{
	return err == TALLY_E_STORE || err == TALLY_E_DISKFULL || err == TALLY_E_NOMEM ||
	       err == TALLY_E_IO || err == TALLY_E_INTERNAL;
}

/* The accounts a transaction touches, read once and written back at the end,
 * so that aliases (a transfer to oneself) see one copy. */
struct touched {
	uint8_t pub[PUBKEY_LEN];
	struct account a;
};

struct txn {
	struct state *s;
	const struct block_ctx *b;
	const struct tx *t;
	const uint8_t *hash;
	struct tx_receipt *r;
	char *why;
	size_t n;
	struct touched acc[4];
};

static int account_ref(struct txn *x, const uint8_t pub[PUBKEY_LEN], struct account **out)
{
	int rc;

	for (size_t i = 0; i < x->n; i++) {
		if (!memcmp(x->acc[i].pub, pub, PUBKEY_LEN)) {
			*out = &x->acc[i].a;
			return 0;
		}
	}
	if (x->n == sizeof(x->acc) / sizeof(x->acc[0]))
		return TALLY_E_INTERNAL;
	memcpy(x->acc[x->n].pub, pub, PUBKEY_LEN);
	rc = state_account_get(x->s, pub, &x->acc[x->n].a);
	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	*out = &x->acc[x->n++].a;
	return 0;
}

static int debit(struct txn *x, struct account *a, uint64_t amount, const char *what)
{
	if (a->balance < amount)
		return why_set(x->why, TALLY_E_BALANCE, "%s %" PRIu64 " exceeds balance %" PRIu64
			       " (micro-units)",
			       what, amount, a->balance);
	a->balance -= amount;
	return 0;
}

static int credit(struct txn *x, struct account *a, uint64_t amount)
{
	if (a->balance > UINT64_MAX - amount)
		return why_set(x->why, TALLY_E_OVERFLOW, "balance %" PRIu64 " + %" PRIu64
			       " overflows 64 bits", a->balance, amount);
	a->balance += amount;
	return 0;
}

static int write_accounts(struct txn *x)
{
	int rc = 0;

	for (size_t i = 0; i < x->n && !rc; i++)
		rc = state_account_put(x->s, x->acc[i].pub, &x->acc[i].a);
	return rc;
}

static int lease_load(struct txn *x, const uint8_t id[LEASE_ID_LEN], struct lease *l)
{
	char hex[2 * HASH_LEN + 1];
	int rc = state_lease_get(x->s, id, l);

	if (rc == TALLY_E_NOTFOUND) {
		hex_encode(id, LEASE_ID_LEN, hex);
		return why_set(x->why, TALLY_E_NOTFOUND, "lease %s does not exist", hex);
	}
	return rc;
}

/* The accounts, then the lease; and what the receipt says of the lease. */
static int write_lease(struct txn *x, const struct lease *l)
{
	int rc = write_accounts(x);

	if (!rc)
		rc = state_lease_put(x->s, l);
	if (!rc && x->r) {
		x->r->has_lease = true;
		memcpy(x->r->lease_id, l->id, LEASE_ID_LEN);
		x->r->lease_state = l->state;
		x->r->close_reason = l->close_reason;
	}
	return rc;
}

/* The contract's provider must have an announcement that admits it. */
static int check_provider(struct txn *x, const struct lease_contract *c)
{
	struct provider_entry p;
	int rc = state_provider_get(x->s, c->provider, &p);

	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	return provider_offer_admits(rc ? NULL : &p.offer, c, x->why);
}

static int apply_open(struct txn *x, struct account *signer)
{
	const struct lease_contract *c = &x->t->u.open;
	struct lease l;
	int rc = state_lease_get(x->s, x->hash, &l);

	if (rc == 0)
		return why_set(x->why, TALLY_E_REPLAY, "lease already exists");
	if (rc != TALLY_E_NOTFOUND)
		return rc;
	rc = check_provider(x, c);
	if (!rc)
		rc = debit(x, signer, c->deposit, "deposit");
	if (!rc)
		rc = lease_open(&l, x->hash, c, x->b->height, x->why);
	if (!rc)
		rc = write_lease(x, &l);
	return rc;
}

static int apply_start(struct txn *x)
{
	struct lease l;
	int rc = lease_load(x, x->t->u.start.lease_id, &l);

	if (!rc)
		rc = lease_start(&l, x->t->signer, x->b->time_ns, x->why);
	if (!rc)
		rc = write_lease(x, &l);
	return rc;
}

static int apply_usage(struct txn *x, const uint8_t *bytes, size_t len)
{
	const struct usage_record *u = &x->t->u.usage;
	struct usage_charge ch;
	struct account *prov, *tenant;
	uint64_t gets = 0, refund = 0, escrow_before;
	uint8_t leaf[HASH_LEN];
	struct lease l;
	int rc = lease_load(x, u->lease_id, &l);

	if (rc)
		return rc;
	escrow_before = l.escrow;
	rc = lease_apply_usage(&l, x->t->signer, u, x->hash, x->b->height, x->b->time_ns, &ch,
			       &gets, &refund, x->why);
	if (rc)
		return rc;
	if (escrow_before - l.escrow != gets + refund)
		return why_set(x->why, TALLY_E_INTERNAL, "usage settlement does not conserve money");
	rc = account_ref(x, l.contract.provider, &prov);
	if (!rc)
		rc = credit(x, prov, gets);
	if (!rc && refund)
		rc = account_ref(x, l.contract.tenant, &tenant);
	if (!rc && refund)
		rc = credit(x, tenant, refund);
	if (rc)
		return rc;
	/* Every check passed: now write. */
	tx_usage_leaf(x->t, bytes, len, leaf);
	rc = write_lease(x, &l);
	if (!rc)
		rc = x->s->be.usage_append(x->s->be.ctx, x->s->usage_size, leaf, x->hash,
					   u->lease_id, u->seq);
	if (rc)
		return rc;
	if (x->r) {
		x->r->charge = ch;
		x->r->paid = gets;
		x->r->refund = refund;
		x->r->usage_index = x->s->usage_size;
	}
	x->s->usage_size++;
	return 0;
}

static int apply_close(struct txn *x)
{
	const struct tx_lease_close *cl = &x->t->u.close;
	struct account *tenant;
	uint64_t refund = 0;
	struct lease l;
	int rc = lease_load(x, cl->lease_id, &l);

	if (!rc)
		rc = lease_close(&l, x->t->signer, cl->reason, x->b->height, x->b->time_ns,
				 &refund, x->why);
	if (!rc)
		rc = account_ref(x, l.contract.tenant, &tenant);
	if (!rc)
		rc = credit(x, tenant, refund);
	if (!rc)
		rc = write_lease(x, &l);
	if (!rc && x->r)
		x->r->refund = refund;
	return rc;
}

static int apply_transfer(struct txn *x, struct account *signer)
{
	const struct tx_transfer *tr = &x->t->u.transfer;
	struct account *to;
	int rc = debit(x, signer, tr->amount, "transfer");

	if (!rc)
		rc = account_ref(x, tr->to, &to);
	if (!rc)
		rc = credit(x, to, tr->amount);
	if (!rc)
		rc = write_accounts(x);
	return rc;
}

/* "would leave the validator set empty" for a change of pub's entry to *v. */
static int keeps_set(struct txn *x, const uint8_t pub[PUBKEY_LEN],
		     const struct validator_entry *v, const char *what)
{
	struct validator_set set;
	int rc = state_validator_set_if(x->s, pub, v, &set);

	if (rc == TALLY_E_VALSET)
		return why_set(x->why, TALLY_E_STATE, "%s would leave the validator set empty",
			       what);
	return rc;
}

static int apply_stake(struct txn *x, struct account *signer)
{
	uint64_t amount = x->t->u.stake.amount;
	struct validator_entry v;
	int rc = state_validator_get(x->s, x->t->signer, &v);

	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	rc = debit(x, signer, amount, "stake");
	if (rc)
		return rc;
	if (v.stake > UINT64_MAX - amount)
		return why_set(x->why, TALLY_E_OVERFLOW, "stake overflows 64 bits");
	v.stake += amount;
	rc = write_accounts(x);
	if (!rc)
		rc = state_validator_put(x->s, x->t->signer, &v);
	return rc;
}

static int apply_unstake(struct txn *x, struct account *signer)
{
	uint64_t amount = x->t->u.stake.amount;
	struct validator_entry v;
	struct chain_params p;
	struct unbonding u;
	char a[16];
	int rc = state_validator_get(x->s, x->t->signer, &v);

	if (rc == TALLY_E_NOTFOUND)
		return why_set(x->why, TALLY_E_UNAUTHORIZED, "account %s has no stake",
			       short_hex(x->t->signer, a));
	if (!rc)
		rc = state_params(x->s, &p);
	if (rc)
		return rc;
	if (amount > v.stake)
		return why_set(x->why, TALLY_E_BALANCE, "unstake %" PRIu64
			       " exceeds stake %" PRIu64 " (micro-units)", amount, v.stake);
	v.stake -= amount;
	rc = keeps_set(x, x->t->signer, &v, "this unstake");
	if (rc)
		return rc;
	memset(&u, 0, sizeof(u));
	if (p.unbonding_blocks == 0) {
		rc = credit(x, signer, amount);   /* no unbonding period: back at once */
	} else {
		u.release = x->b->height + p.unbonding_blocks;
		memcpy(u.tag, x->hash, sizeof(u.tag));
		memcpy(u.owner, x->t->signer, PUBKEY_LEN);
		u.amount = amount;
		u.since = x->b->height;
	}
	if (!rc)
		rc = write_accounts(x);
	if (!rc)
		rc = state_validator_put(x->s, x->t->signer, &v);
	if (!rc && u.amount)
		rc = state_unbonding_put(x->s, &u);
	return rc;
}

/* A jailed validator whose term is over returns to the candidates. */
static int apply_unjail(struct txn *x)
{
	struct validator_entry v;
	struct liveness l;
	char a[16];
	int rc = state_validator_get(x->s, x->t->signer, &v);

	if (rc == TALLY_E_NOTFOUND)
		return why_set(x->why, TALLY_E_UNAUTHORIZED, "account %s is not a validator",
			       short_hex(x->t->signer, a));
	if (rc)
		return rc;
	if (!v.jailed)
		return why_set(x->why, TALLY_E_STATE, "validator %s is not jailed",
			       short_hex(x->t->signer, a));
	rc = state_liveness_get(x->s, x->t->signer, &l);
	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	if (x->b->height < l.jailed_until)
		return why_set(x->why, TALLY_E_STATE, "validator %s is jailed until block %" PRIu64
			       " (this is block %" PRIu64 ")", short_hex(x->t->signer, a),
			       l.jailed_until, x->b->height);
	v.jailed = false;
	memset(&l, 0, sizeof(l));
	rc = write_accounts(x);
	if (!rc)
		rc = state_validator_put(x->s, x->t->signer, &v);
	if (!rc)
		rc = state_liveness_put(x->s, x->t->signer, &l);
	return rc;
}

static int check_nonce(struct txn *x, const struct account *a)
{
	char h[16];

	if (x->t->nonce < a->nonce)
		return why_set(x->why, TALLY_E_REPLAY, "nonce %" PRIu64 " already used by account %s",
			       x->t->nonce, short_hex(x->t->signer, h));
	if (x->t->nonce > a->nonce)
		return why_set(x->why, TALLY_E_NONCE, "nonce %" PRIu64 " is ahead of account %s's"
			       " next nonce %" PRIu64, x->t->nonce, short_hex(x->t->signer, h),
			       a->nonce);
	if (a->nonce == UINT64_MAX)
		return why_set(x->why, TALLY_E_OVERFLOW, "nonce space exhausted");
	return 0;
}

/* floor(amount * ppm / 10^6): what a slash takes. */
static uint64_t slash_part(uint64_t amount, uint32_t ppm)
{
	return (uint64_t)((unsigned __int128)amount * ppm / PARAMS_PPM);
}

/* Unbonding entries collected by a scan, to be written after it (a scan's
 * callback may not write entries of the type it scans). */
struct unbonding_list {
	struct unbonding *u;
	size_t n, cap;
};

static int unbonding_push(struct unbonding_list *l, const struct unbonding *u)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct unbonding *p = realloc(l->u, cap * sizeof(*p));

		if (!p)
			return TALLY_E_NOMEM;
		l->u = p;
		l->cap = cap;
	}
	l->u[l->n++] = *u;
	return 0;
}

/* The offender's unbonding entries that began at or after the offence (the
 * stake they hold was bonded when it was committed), to be slashed. */
struct slash_scan {
	const uint8_t *offender;
	uint64_t since;
	struct unbonding_list list;
};

static int slash_collect(void *ctx, const struct unbonding *u)
{
	struct slash_scan *ss = ctx;

	if (memcmp(u->owner, ss->offender, PUBKEY_LEN) || u->since < ss->since)
		return 0;
	return unbonding_push(&ss->list, u);
}

/* Evidence of equivocation (lib/chain/evidence.h): its votes' signatures
 * were checked with the transaction's. The offence is judged once: the
 * offender loses slash_ppm of its stake and of the unbonding entries that
 * began at or after the offence (burned), and is jailed. */
static int apply_evidence(struct txn *x)
{
	struct slash_scan ss = { 0 };
	struct signed_vote a;
	struct validator_entry v;
	struct chain_params p;
	struct liveness l;
	uint8_t id[32];
	uint64_t judged, slashed;
	char hex[16];
	int rc = evidence_check(&x->t->u.evidence, &a, NULL, x->why);

	if (rc)
		return rc;
	if (a.v.height > x->b->height)
		return why_set(x->why, TALLY_E_RANGE, "evidence: votes for height %" PRIu64
			       " cannot be judged in block %" PRIu64, a.v.height, x->b->height);
	rc = state_params(x->s, &p);
	if (rc)
		return rc;
	if (p.unbonding_blocks && x->b->height - a.v.height > p.unbonding_blocks)
		return why_set(x->why, TALLY_E_EXPIRED, "evidence: votes for height %" PRIu64
			       " are older than the unbonding period (%" PRIu64 " blocks)",
			       a.v.height, p.unbonding_blocks);
	rc = state_validator_get(x->s, a.validator, &v);
	if (rc == TALLY_E_NOTFOUND)
		return why_set(x->why, TALLY_E_UNAUTHORIZED, "evidence: %s is not a validator",
			       short_hex(a.validator, hex));
	if (rc)
		return rc;
	state_evidence_id(a.validator, &a.v, id);
	rc = state_evidence_get(x->s, id, &judged);
	if (rc == 0)
		return why_set(x->why, TALLY_E_EXISTS, "evidence: this offence of %s was judged in"
			       " block %" PRIu64, short_hex(a.validator, hex), judged);
	if (rc != TALLY_E_NOTFOUND)
		return rc;
	rc = state_liveness_get(x->s, a.validator, &l);
	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	slashed = slash_part(v.stake, p.slash_ppm);
	v.stake -= slashed;
	v.jailed = true;
	if (l.jailed_until < x->b->height + p.jail_blocks)
		l.jailed_until = x->b->height + p.jail_blocks;
	l.missed = 0;
	rc = keeps_set(x, a.validator, &v, "jailing the last validator");
	if (rc)
		return rc;
	ss.offender = a.validator;
	ss.since = a.v.height;
	rc = state_unbonding_each(x->s, slash_collect, &ss);
	for (size_t i = 0; !rc && i < ss.list.n; i++) {
		uint64_t cut = slash_part(ss.list.u[i].amount, p.slash_ppm);

		ss.list.u[i].amount -= cut;
		slashed += cut;   /* below the supply cap: cannot overflow */
	}
	if (!rc)
		rc = write_accounts(x);
	if (!rc)
		rc = state_validator_put(x->s, a.validator, &v);
	if (!rc)
		rc = state_liveness_put(x->s, a.validator, &l);
	for (size_t i = 0; !rc && i < ss.list.n; i++)
		rc = state_unbonding_put(x->s, &ss.list.u[i]);
	if (!rc)
		rc = state_evidence_put(x->s, id, x->b->height);
	if (!rc && x->r)
		x->r->slashed = slashed;
	free(ss.list.u);
	return rc;
}

/* Unbonding entries released at the end of a block. */
struct release_scan {
	uint64_t height;
	struct unbonding_list list;
};

#define RELEASE_STOP (-1)   /* past the entries due: ends the key-order scan */

static int release_collect(void *ctx, const struct unbonding *u)
{
	struct release_scan *rs = ctx;

	if (u->release > rs->height)
		return RELEASE_STOP;
	return unbonding_push(&rs->list, u);
}

/* Evidence entries that can no longer refuse anything (collected by the
 * scan, deleted after it). */
struct prune_scan {
	uint64_t height, unbonding_blocks;
	uint8_t (*id)[32];
	size_t n, cap;
};

static int prune_collect(void *ctx, const uint8_t id[32], uint64_t judged)
{
	struct prune_scan *ps = ctx;

	if (judged > ps->height || ps->height - judged < ps->unbonding_blocks)
		return 0;
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? 2 * ps->cap : 8;
		uint8_t (*p)[32] = realloc(ps->id, cap * sizeof(*p));

		if (!p)
			return TALLY_E_NOMEM;
		ps->id = p;
		ps->cap = cap;
	}
	memcpy(ps->id[ps->n++], id, 32);
	return 0;
}

/* An evidence entry judged in block j refuses the same offence again; from
 * block j + unbonding_blocks + 1 on, that offence (its votes no later than
 * j) is refused as expired anyway, so the entry goes at the end of block
 * j + unbonding_blocks. Never when unbonding_blocks is 0 (no expiry). */
static int prune_evidence(struct state *s, uint64_t height)
{
	struct prune_scan ps = { .height = height };
	struct chain_params p;
	int rc = state_params(s, &p);

	if (rc || p.unbonding_blocks == 0)
		return rc;
	ps.unbonding_blocks = p.unbonding_blocks;
	rc = state_evidence_each(s, prune_collect, &ps);
	for (size_t i = 0; !rc && i < ps.n; i++)
		rc = state_evidence_del(s, ps.id[i]);
	free(ps.id);
	return rc;
}

int state_end_block(struct state *s, uint64_t height)
{
	struct release_scan rs = { .height = height };
	int rc = state_unbonding_each(s, release_collect, &rs);

	if (rc == RELEASE_STOP)
		rc = 0;
	/* Key order is release height first: the same order on every node. */
	for (size_t i = 0; !rc && i < rs.list.n; i++) {
		struct account a;

		rc = state_account_get(s, rs.list.u[i].owner, &a);
		if (rc == TALLY_E_NOTFOUND)
			rc = 0;
		if (!rc && a.balance > UINT64_MAX - rs.list.u[i].amount)
			rc = TALLY_E_OVERFLOW;
		if (!rc) {
			a.balance += rs.list.u[i].amount;
			rc = state_account_put(s, rs.list.u[i].owner, &a);
		}
		if (!rc) {
			rs.list.u[i].amount = 0;
			rc = state_unbonding_put(s, &rs.list.u[i]);
		}
	}
	free(rs.list.u);
	if (!rc)
		rc = prune_evidence(s, height);
	return rc;
}

/* A provider's announcement replaces its entry; a withdrawal needs one
 * standing. */
static int apply_provider(struct txn *x)
{
	struct provider_entry p;
	char hex[16];
	int rc = state_provider_get(x->s, x->t->signer, &p);

	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	if (provider_offer_withdrawn(&x->t->u.provider) &&
	    (rc == TALLY_E_NOTFOUND || provider_offer_withdrawn(&p.offer)))
		return why_set(x->why, TALLY_E_NOTFOUND, "provider %s has no announcement to"
			       " withdraw", short_hex(x->t->signer, hex));
	p.height = x->b->height;
	p.offer = x->t->u.provider;
	rc = write_accounts(x);
	if (!rc)
		rc = state_provider_put(x->s, x->t->signer, &p);
	return rc;
}

int state_apply_tx(struct state *s, const struct block_ctx *b, const struct tx *t,
		   const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN],
		   struct tx_receipt *r, char *why)
{
	struct txn x = { .s = s, .b = b, .t = t, .hash = hash, .r = r, .why = why };
	struct account *signer;
	int rc;

	if (why)
		why[0] = '\0';
	if (r) {
		memset(r, 0, sizeof(*r));
		r->kind = t->kind;
	}
	rc = tx_check_rules_at_block(t, b->chain_id, b->time_ns, why);
	if (rc)
		return rc;
	rc = account_ref(&x, t->signer, &signer);
	if (!rc)
		rc = check_nonce(&x, signer);
	if (rc)
		return rc;
	/* Incremented in the local copy: written only if the rest succeeds. */
	signer->nonce++;
	switch (t->kind) {
	case TX_LEASE_OPEN:
		return apply_open(&x, signer);
	case TX_LEASE_START:
		return apply_start(&x);
	case TX_USAGE:
		return apply_usage(&x, bytes, len);
	case TX_LEASE_CLOSE:
		return apply_close(&x);
	case TX_TRANSFER:
		return apply_transfer(&x, signer);
	case TX_STAKE:
		return apply_stake(&x, signer);
	case TX_UNSTAKE:
		return apply_unstake(&x, signer);
	case TX_EVIDENCE:
		return apply_evidence(&x);
	case TX_UNJAIL:
		return apply_unjail(&x);
	case TX_PROVIDER:
		return apply_provider(&x);
	}
	return why_set(why, TALLY_E_INVALID, "unknown transaction kind %u", t->kind);
}
