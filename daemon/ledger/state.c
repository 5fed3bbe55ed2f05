/* Ledger state transitions and the incremental state root (see state.h).
 *
 * Transaction rules, beyond what tx_check() checks statically:
 *   - every kind: nonce == the signer's account nonce (lower: TALLY_E_REPLAY,
 *     higher: TALLY_E_NONCE); on success the nonce is incremented. A missing
 *     account reads as balance 0, nonce 0 and is created when written.
 *   - LEASE_OPEN: contract_validate() again at the block's time (so expiry is
 *     judged by block time, deterministically); the deposit moves from the
 *     tenant's balance to the lease's escrow; lease id = the tx hash.
 *   - LEASE_START, USAGE: only by the contract's provider. USAGE appends the
 *     full signed tx to the usage log (leaf = merkle_leaf_hash(tx bytes)),
 *     charges the escrow and credits the provider (lease_apply_usage()).
 *   - LEASE_CLOSE: the tenant may close with CLOSE_TENANT only; the provider
 *     with CLOSE_TERM_ENDED (the term has ended by block time),
 *     CLOSE_EXHAUSTED (the escrow cannot pay one more full interval at the
 *     contract's maximum), CLOSE_PROVIDER_FAILED, or CLOSE_REJECTED (lease
 *     still opened; lease_close() checks the state). The escrow left goes back
 *     to the tenant.
 *   - TRANSFER: amount from the signer's balance to `to`.
 *   - STAKE / UNSTAKE: only by an account that is already a validator
 *     (joining the set is not supported yet); STAKE moves balance to stake,
 *     UNSTAKE moves stake back to balance at once (no unbonding period yet)
 *     and may not leave the validator set without stake.
 *   - EVIDENCE: refused (TALLY_E_STATE), not supported yet.
 * All arithmetic is on uint64_t with explicit overflow checks.
 *
 * A transaction first reads what it touches into local copies, checks every
 * rule, and only then writes, so a refused transaction writes nothing. */
#include "daemon/ledger/state.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"

#define NS_PER_S 1000000000ull

/* "ab12cd34…": enough of a key for a message. */
static const char *short_hex(const uint8_t *p, char buf[16])
{
	hex_encode(p, 4, buf);
	strcat(buf, "\xe2\x80\xa6");
	return buf;
}

int state_err_is_fatal(int err)
{
	return err == TALLY_E_STORE || err == TALLY_E_DISKFULL || err == TALLY_E_NOMEM ||
	       err == TALLY_E_IO || err == TALLY_E_INTERNAL;
}

/* --- the state tree -------------------------------------------------------- */

#define TREE_LEAVES STATE_BUCKETS

int state_tree_init(struct state_tree *t)
{
	t->node = malloc(sizeof(*t->node) * 2 * TREE_LEAVES);
	if (!t->node)
		return TALLY_E_NOMEM;
	memset(t->empty[0], 0, HASH_LEN);
	for (int h = 1; h <= STATE_TREE_LEVELS; h++)
		merkle_node_hash(t->empty[h - 1], t->empty[h - 1], t->empty[h]);
	/* Node i sits at depth floor(log2 i); its subtree height is 16 - depth. */
	for (uint32_t i = 1, depth = 0; i < 2 * TREE_LEAVES; i++) {
		if (i == (2u << depth))
			depth++;
		memcpy(t->node[i], t->empty[STATE_TREE_LEVELS - depth], HASH_LEN);
	}
	return 0;
}

void state_tree_free(struct state_tree *t)
{
	free(t->node);
	t->node = NULL;
}

/* Recompute the ancestors of the given leaves (ascending, unique). */
static void tree_fix_paths(struct state_tree *t, uint32_t *idx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		idx[i] += TREE_LEAVES;
	for (int level = 0; level < STATE_TREE_LEVELS; level++) {
		size_t m = 0;

		for (size_t i = 0; i < n; i++) {
			uint32_t parent = idx[i] >> 1;

			if (m && idx[m - 1] == parent)
				continue;
			merkle_node_hash(t->node[2 * parent], t->node[2 * parent + 1],
					 t->node[parent]);
			idx[m++] = parent;
		}
		n = m;
	}
}

struct load_ctx {
	struct state_tree *t;
	uint32_t *idx;
	size_t n;
};

static int load_one(void *ctx, uint32_t bucket, const uint8_t hash[HASH_LEN])
{
	struct load_ctx *lc = ctx;

	memcpy(lc->t->node[TREE_LEAVES + bucket], hash, HASH_LEN);
	lc->idx[lc->n++] = bucket;
	return 0;
}

int state_tree_load(struct state_tree *t, struct store *s)
{
	struct load_ctx lc = { t, malloc(sizeof(uint32_t) * TREE_LEAVES), 0 };
	int rc;

	if (!lc.idx)
		return TALLY_E_NOMEM;
	state_tree_free(t);
	rc = state_tree_init(t);
	if (!rc)
		rc = store_bucket_each(s, load_one, &lc);   /* ascending bucket order */
	if (!rc)
		tree_fix_paths(t, lc.idx, lc.n);
	free(lc.idx);
	return rc;
}

int state_tree_update(struct state_tree *t, struct store *s)
{
	uint32_t *dirty;
	size_t n;
	int rc = store_take_dirty(s, &dirty, &n);

	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		uint8_t h[HASH_LEN];

		rc = store_bucket_compute(s, dirty[i], h);
		if (!rc)
			rc = store_bucket_put(s, dirty[i], h);
		if (!rc)
			memcpy(t->node[TREE_LEAVES + dirty[i]], h, HASH_LEN);
	}
	if (!rc)
		tree_fix_paths(t, dirty, n);
	free(dirty);
	return rc;
}

void state_tree_root(const struct state_tree *t, uint8_t out[HASH_LEN])
{
	memcpy(out, t->node[1], HASH_LEN);
}

int state_root_recompute(struct store *s, uint8_t out[HASH_LEN])
{
	uint8_t (*level)[HASH_LEN] = malloc(sizeof(*level) * TREE_LEAVES);
	int rc = 0;

	if (!level)
		return TALLY_E_NOMEM;
	for (uint32_t b = 0; b < TREE_LEAVES && !rc; b++)
		rc = store_bucket_compute(s, b, level[b]);
	for (uint32_t n = TREE_LEAVES; n > 1 && !rc; n /= 2)
		for (uint32_t i = 0; i < n / 2; i++)
			merkle_node_hash(level[2 * i], level[2 * i + 1], level[i]);
	if (!rc)
		memcpy(out, level[0], HASH_LEN);
	free(level);
	return rc;
}

/* --- genesis --------------------------------------------------------------- */

int state_load_genesis(struct store *s, const struct genesis *g)
{
	int rc = 0;

	for (size_t i = 0; i < g->naccounts && !rc; i++) {
		struct account a = { .balance = g->accounts[i].balance, .nonce = 0 };

		rc = store_account_put(s, g->accounts[i].pubkey, &a);
	}
	for (size_t i = 0; i < g->validators.n && !rc; i++) {
		struct validator_entry v = { .stake = g->validators.v[i].stake, .jailed = false };

		rc = store_validator_put(s, g->validators.v[i].pubkey, &v);
	}
	return rc;
}

/* --- one transaction ------------------------------------------------------- */

/* The accounts a transaction touches, read once and written back at the end,
 * so that aliases (a transfer to oneself, a provider who is the tenant) see
 * one copy. */
struct touched {
	uint8_t pub[PUBKEY_LEN];
	struct account a;
};

struct txn {
	struct apply_ctx *c;
	const struct tx *t;
	const uint8_t *hash;
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
	rc = store_account_get(x->c->store, pub, &x->acc[x->n].a);
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
		rc = store_account_put(x->c->store, x->acc[i].pub, &x->acc[i].a);
	return rc;
}

static int lease_load(struct txn *x, const uint8_t id[LEASE_ID_LEN], struct lease *l)
{
	char hex[2 * HASH_LEN + 1];
	int rc = store_lease_get(x->c->store, id, l);

	if (rc == TALLY_E_NOTFOUND) {
		hex_encode(id, LEASE_ID_LEN, hex);
		return why_set(x->why, TALLY_E_NOTFOUND, "lease %s does not exist", hex);
	}
	return rc;
}

static int apply_open(struct txn *x, struct account *signer)
{
	const struct lease_contract *c = &x->t->u.open;
	struct lease l;
	int rc;

	rc = contract_validate(c, x->c->chain_id, x->c->time_ns / NS_PER_S, x->why);
	if (rc)
		return rc;
	if (store_lease_get(x->c->store, x->hash, &l) == 0)
		return why_set(x->why, TALLY_E_REPLAY, "lease already exists");
	rc = debit(x, signer, c->deposit, "deposit");
	if (!rc)
		rc = lease_open(&l, x->hash, c, x->c->height, x->why);
	if (!rc)
		rc = write_accounts(x);
	if (!rc)
		rc = store_lease_put(x->c->store, &l);
	return rc;
}

static int not_provider(struct txn *x, const struct lease *l)
{
	char a[16], b[16];

	return why_set(x->why, TALLY_E_UNAUTHORIZED, "account %s is not the provider %s of the lease",
		       short_hex(x->t->signer, a), short_hex(l->contract.provider, b));
}

static int apply_start(struct txn *x)
{
	struct lease l;
	int rc = lease_load(x, x->t->u.start.lease_id, &l);

	if (rc)
		return rc;
	if (memcmp(x->t->signer, l.contract.provider, PUBKEY_LEN))
		return not_provider(x, &l);
	rc = lease_start(&l, x->c->time_ns, x->why);
	if (!rc)
		rc = write_accounts(x);
	if (!rc)
		rc = store_lease_put(x->c->store, &l);
	return rc;
}

static int apply_usage(struct txn *x, const uint8_t *bytes, size_t len)
{
	const struct usage_record *u = &x->t->u.usage;
	struct usage_charge ch;
	struct account *prov;
	uint64_t gets = 0, escrow_before;
	uint8_t leaf[HASH_LEN];
	struct lease l;
	int rc = lease_load(x, u->lease_id, &l);

	if (rc)
		return rc;
	if (memcmp(x->t->signer, l.contract.provider, PUBKEY_LEN))
		return not_provider(x, &l);
	escrow_before = l.escrow;
	rc = lease_apply_usage(&l, u, x->hash, &ch, &gets, x->why);
	if (rc)
		return rc;
	if (escrow_before - l.escrow != gets)
		return why_set(x->why, TALLY_E_INTERNAL, "usage settlement does not conserve money");
	if (l.state == LEASE_CLOSED)
		l.closed_height = x->c->height;
	rc = account_ref(x, l.contract.provider, &prov);
	if (!rc)
		rc = credit(x, prov, gets);
	if (rc)
		return rc;
	/* Every check passed: now write. */
	merkle_leaf_hash(bytes, len, leaf);
	rc = write_accounts(x);
	if (!rc)
		rc = store_lease_put(x->c->store, &l);
	if (!rc)
		rc = merkle_append(store_merkle(x->c->store), x->c->usage_size, leaf);
	if (!rc)
		rc = store_usage_put(x->c->store, x->c->usage_size, x->hash, u->lease_id, u->seq);
	if (!rc)
		x->c->usage_size++;
	return rc;
}

/* Which close reasons the signer may give (see the top of this file). */
static int close_allowed(struct txn *x, const struct lease *l, uint8_t reason)
{
	bool tenant = !memcmp(x->t->signer, l->contract.tenant, PUBKEY_LEN);
	bool provider = !memcmp(x->t->signer, l->contract.provider, PUBKEY_LEN);
	uint64_t max_charge;

	if (!tenant && !provider)
		return why_set(x->why, TALLY_E_UNAUTHORIZED,
			       "only the lease's tenant or provider can close it");
	if (reason == CLOSE_TENANT && tenant)
		return 0;
	if (!provider)
		return why_set(x->why, TALLY_E_UNAUTHORIZED,
			       "the tenant can close a lease only as tenant-closed, not %s",
			       lease_close_reason_name(reason));
	switch (reason) {
	case CLOSE_TERM_ENDED:
		if (!lease_term_ended(l, x->c->time_ns))
			return why_set(x->why, TALLY_E_STATE,
				       "the lease's term has not ended at block time %" PRIu64 " ns",
				       x->c->time_ns);
		return 0;
	case CLOSE_EXHAUSTED:
		if (settle_max_interval_charge(&l->contract, &max_charge))
			max_charge = UINT64_MAX;   /* no escrow can cover it */
		if (l->state == LEASE_RUNNING && l->escrow >= max_charge)
			return why_set(x->why, TALLY_E_STATE,
				       "escrow %" PRIu64 " still covers an interval (at most %" PRIu64 ")",
				       l->escrow, max_charge);
		return 0;
	case CLOSE_PROVIDER_FAILED:
	case CLOSE_REJECTED:
		return 0;
	}
	return why_set(x->why, TALLY_E_UNAUTHORIZED, "the provider cannot close a lease as %s",
		       lease_close_reason_name(reason));
}

static int apply_close(struct txn *x)
{
	const struct tx_lease_close *cl = &x->t->u.close;
	struct account *tenant;
	uint64_t refund = 0;
	struct lease l;
	int rc = lease_load(x, cl->lease_id, &l);

	if (rc)
		return rc;
	rc = close_allowed(x, &l, cl->reason);
	if (!rc)
		rc = lease_close(&l, cl->reason, x->c->height, &refund, x->why);
	if (!rc)
		rc = account_ref(x, l.contract.tenant, &tenant);
	if (!rc)
		rc = credit(x, tenant, refund);
	if (!rc)
		rc = write_accounts(x);
	if (!rc)
		rc = store_lease_put(x->c->store, &l);
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

struct stake_sum {
	uint64_t total;
};

static int sum_stake(void *ctx, const uint8_t pub[PUBKEY_LEN], const struct validator_entry *v)
{
	struct stake_sum *s = ctx;

	(void)pub;
	if (!v->jailed && s->total <= UINT64_MAX - v->stake)
		s->total += v->stake;
	return 0;
}

static int apply_stake(struct txn *x, struct account *signer, bool bond)
{
	uint64_t amount = x->t->u.stake.amount;
	struct validator_entry v;
	struct stake_sum sum = { 0 };
	char a[16];
	int rc = store_validator_get(x->c->store, x->t->signer, &v);

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
		rc = store_validator_each(x->c->store, sum_stake, &sum);
		if (rc)
			return rc;
		if (!v.jailed && sum.total - amount == 0)
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
		rc = store_validator_put(x->c->store, x->t->signer, &v);
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

int state_apply_tx(struct apply_ctx *c, const struct tx *t, const uint8_t *bytes, size_t len,
		   const uint8_t hash[HASH_LEN], char *why)
{
	struct txn x = { .c = c, .t = t, .hash = hash, .why = why };
	struct account *signer;
	int rc;

	if (why)
		why[0] = '\0';
	if (strcmp(t->chain_id, c->chain_id))
		return why_set(why, TALLY_E_CHAIN_ID, "transaction is for chain %s, not %s",
			       t->chain_id, c->chain_id);
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
		return why_set(why, TALLY_E_STATE, "evidence transactions are not supported yet");
	}
	return why_set(why, TALLY_E_INVALID, "unknown transaction kind %u", t->kind);
}
