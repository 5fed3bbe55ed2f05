/* The state transition: what each transaction does to the state (rules at
 * the top of lib/chain/state.h; the lease rules are contracts/'s). */
#include "lib/chain/state.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/errors.h"
#include "lib/merkle.h"
#include "lib/chain/evidence.h"

#define NS_PER_S 1000000000ull

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
		return why_set(x->why, TALLY_E_BALANCE, "%s %" PRIu64 " exceeds balance %" PRIu64,
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
	merkle_leaf_hash(bytes, len, leaf);
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

static int sum_stake(void *ctx, const uint8_t pub[PUBKEY_LEN], const struct validator_entry *v)
{
	uint64_t *total = ctx;

	(void)pub;
	if (!v->jailed && *total <= UINT64_MAX - v->stake)
		*total += v->stake;
	return 0;
}

static int apply_stake(struct txn *x, struct account *signer, bool bond)
{
	uint64_t amount = x->t->u.stake.amount, total = 0;
	struct validator_entry v;
	char a[16];
	int rc = state_validator_get(x->s, x->t->signer, &v);

	if (rc == TALLY_E_NOTFOUND)
		return why_set(x->why, TALLY_E_UNAUTHORIZED,
			       "account %s is not a validator (joining the set is not supported yet)",
			       short_hex(x->t->signer, a));
	if (rc)
		return rc;
	if (bond) {
		rc = debit(x, signer, amount, "stake");
		if (rc)
			return rc;
		if (v.stake > UINT64_MAX - amount)
			return why_set(x->why, TALLY_E_OVERFLOW, "stake overflows 64 bits");
		v.stake += amount;
	} else {
		if (amount > v.stake)
			return why_set(x->why, TALLY_E_BALANCE, "unstake %" PRIu64
				       " exceeds stake %" PRIu64, amount, v.stake);
		rc = state_validator_each(x->s, sum_stake, &total);
		if (rc)
			return rc;
		if (!v.jailed && total - amount == 0)
			return why_set(x->why, TALLY_E_STATE,
				       "unstaking %" PRIu64 " would leave the validator set without stake",
				       amount);
		v.stake -= amount;
		rc = credit(x, signer, amount);
		if (rc)
			return rc;
	}
	rc = write_accounts(x);
	if (!rc)
		rc = state_validator_put(x->s, x->t->signer, &v);
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

/* Evidence of equivocation (lib/chain/evidence.h): its votes' signatures
 * were checked with the transaction's. Recorded in its block; it changes
 * nothing but its signer's nonce until slashing is defined. */
static int apply_evidence(struct txn *x)
{
	struct signed_vote a;
	struct validator_entry v;
	char hex[16];
	int rc = evidence_check(&x->t->u.evidence, &a, NULL, x->why);

	if (rc)
		return rc;
	if (a.v.height > x->b->height)
		return why_set(x->why, TALLY_E_RANGE, "evidence: votes for height %" PRIu64
			       " cannot be judged in block %" PRIu64, a.v.height, x->b->height);
	rc = state_validator_get(x->s, a.validator, &v);
	if (rc == TALLY_E_NOTFOUND)
		return why_set(x->why, TALLY_E_UNAUTHORIZED, "evidence: %s is not a validator",
			       short_hex(a.validator, hex));
	if (rc)
		return rc;
	return write_accounts(x);
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
	rc = tx_check_rules(t, b->chain_id, b->time_ns / NS_PER_S, why);
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
		return apply_stake(&x, signer, true);
	case TX_UNSTAKE:
		return apply_stake(&x, signer, false);
	case TX_EVIDENCE:
		return apply_evidence(&x);
	case TX_PROVIDER:
		return apply_provider(&x);
	}
	return why_set(why, TALLY_E_INVALID, "unknown transaction kind %u", t->kind);
}
