/* Helpers of the ledger's unit tests (ledgertest.h). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/codec.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

void lt_case_dir(char *base, size_t size, const char *name)
{
	if (snprintf(base, size, "/tmp/tally-%s-XXXXXX", name) >= (int)size || !mkdtemp(base))
		abort();
}

void lt_test_dir(char *dir, size_t size, const char *base)
{
	ck_assert_int_lt(snprintf(dir, size, "%s/t-XXXXXX", base), (int)size);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

void lt_world_case_begin(struct lt_world *w, const char *name)
{
	lt_case_dir(w->base, sizeof(w->base), name);
}

void lt_world_case_end(struct lt_world *w)
{
	cb_rm_tree(w->base);
}

void lt_world_begin(struct lt_world *w, const char *chain, uint64_t t0_ns, uint8_t seed0,
		    uint64_t stake, uint64_t funds)
{
	lt_keys(w->keys, LT_NKEYS, seed0);
	lt_genesis(&w->gen, w->accounts, chain, t0_ns, &w->keys[LT_VAL], stake,
		   &w->keys[LT_TENANT], funds, &w->keys[LT_OTHER], funds);
	lt_test_dir(w->dir, sizeof(w->dir), w->base);
}

void lt_world_end(struct lt_world *w)
{
	cb_rm_tree(w->dir);
	for (int i = 0; i < LT_NKEYS; i++)
		key_free(&w->keys[i]);
}

enum ledger_tx_state lt_tx_state(struct ledger *l, const uint8_t hash[HASH_LEN])
{
	struct ledger_tx_status st;

	ck_assert_int_eq(ledger_tx_status(l, hash, &st), 0);
	return st.status;
}

void lt_keys(struct tally_key *keys, int n, uint8_t seed0)
{
	uint8_t seed[32];

	for (int i = 0; i < n; i++) {
		memset(seed, seed0 + i, sizeof(seed));
		ck_assert_int_eq(key_from_seed(&keys[i], seed), 0);
	}
}

void lt_genesis(struct genesis *g, struct genesis_account accounts[2], const char *chain,
		uint64_t t0_ns, const struct tally_key *val, uint64_t stake,
		const struct tally_key *a, uint64_t fa, const struct tally_key *b, uint64_t fb)
{
	bool a_first = memcmp(a->pub, b->pub, PUBKEY_LEN) < 0;

	memset(g, 0, sizeof(*g));
	ck_assert_uint_le(strlen(chain), CHAIN_ID_MAX);
	strcpy(g->chain_id, chain);
	g->genesis_time_ns = t0_ns;
	g->validators.n = 1;
	memcpy(g->validators.v[0].pubkey, val->pub, PUBKEY_LEN);
	g->validators.v[0].stake = stake;
	strcpy(g->info[0].name, "node0");
	memcpy(accounts[a_first ? 0 : 1].pubkey, a->pub, PUBKEY_LEN);
	accounts[a_first ? 0 : 1].balance = fa;
	memcpy(accounts[a_first ? 1 : 0].pubkey, b->pub, PUBKEY_LEN);
	accounts[a_first ? 1 : 0].balance = fb;
	g->naccounts = 2;
	g->accounts = accounts;
}

void lt_sign(struct tx *t, const struct tally_key *k, const struct genesis *g,
	     struct signed_tx *out)
{
	uint8_t gh[HASH_LEN];
	struct enc e;

	genesis_hash(g, gh);
	ck_assert_int_eq(tx_sign(t, k, gh), 0);
	enc_init(&e);
	tx_encode(&e, t);
	ck_assert_int_eq(enc_error(&e), 0);
	ck_assert_uint_le(e.len, TX_MAX_SIZE);
	memcpy(out->bytes, e.buf, e.len);
	out->len = e.len;
	tx_hash(out->bytes, out->len, out->hash);
	enc_free(&e);
}

void lt_transfer(struct signed_tx *out, const char *chain, const struct tally_key *from,
		 const struct tally_key *to, uint64_t nonce, uint64_t amount,
		 const struct genesis *g)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.version = TX_VERSION;
	t.kind = TX_TRANSFER;
	ck_assert_uint_le(strlen(chain), CHAIN_ID_MAX);
	strcpy(t.chain_id, chain);
	memcpy(t.signer, from->pub, PUBKEY_LEN);
	t.nonce = nonce;
	memcpy(t.u.transfer.to, to->pub, PUBKEY_LEN);
	t.u.transfer.amount = amount;
	lt_sign(&t, from, g, out);
}

bool lt_submit_held(struct ledger *l, const struct signed_tx *s)
{
	uint8_t hash[HASH_LEN];
	char why[WHY_MAX];
	bool held;
	int rc = ledger_submit_admitted(l, s->bytes, s->len, NULL, hash, &held, why);

	ck_assert_msg(rc == 0, "submit: %s (%s)", why, tally_strerror(rc));
	ck_assert_mem_eq(hash, s->hash, HASH_LEN);
	return held;
}

struct ledger_block_result lt_produce(struct ledger *l, uint64_t time_ns)
{
	struct ledger_block_result r;
	char why[WHY_MAX];
	int rc = ledger_produce_block(l, time_ns, &r, why);

	ck_assert_msg(rc == 0, "produce: %s (%s)", why, tally_strerror(rc));
	return r;
}

uint64_t lt_balance(struct ledger *l, const uint8_t pub[PUBKEY_LEN])
{
	struct account a;
	int rc = ledger_account(l, pub, &a);

	ck_assert(rc == 0 || rc == TALLY_E_NOTFOUND);
	return rc ? 0 : a.balance;
}
