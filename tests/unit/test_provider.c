/* The provider registry: the PROVIDER body's strict decoding, what a
 * PROVIDER does to the state (announce, replace, withdraw), and the chain's
 * rule that a LEASE_OPEN meets its provider's announcement, run through the
 * three paths that must agree (docs/FORMATS.md sections 4, 9, 10.3, 10.11):
 *   - a node's admission (ledger_submit: the mempool's check state),
 *   - a node applying a block that holds the LEASE_OPEN,
 *   - the auditor replaying that block. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contracts/provider.h"
#include "lib/chain/state.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"
#include "tests/support/offer.h"

/* The case's directory, made and removed in the runner's process: a test
 * whose assertion fails ends before its own clean-up, and leaves nothing. */
static char base[40];

static void case_begin(void)
{
	lt_case_dir(base, sizeof(base), "provider");
}

static void case_end(void)
{
	cb_rm_tree(base);
}

/* An hour ago, so that blocks are in the past and contracts unexpired at
 * the node's clock (admission judges with it). */
static uint64_t G;
#define BT(h) (G + (uint64_t)(h) * 10 * CB_SEC)

static void clock_setup(void)
{
	G = ((uint64_t)time(NULL) - 3600) * CB_SEC;
}

static void good_offer(struct provider_offer *o)
{
	struct lease_contract c;
	struct chainbuild cb;

	memset(&cb, 0, sizeof(cb));
	snprintf(cb.chain_id, sizeof(cb.chain_id), "offer");
	cb_contract(&cb, &c, G);
	test_offer_for(&c, o);
	o->nimages = 2;
	strcpy(o->images[1], "ubuntu-24.04");
	o->ngpu_classes = 2;
	strcpy(o->gpu_classes[0], "a100");
	strcpy(o->gpu_classes[1], "h100");
}

/* Encodes o and decodes it back: the decoder's verdict. */
static int round_trip(const struct provider_offer *o, struct provider_offer *back)
{
	struct enc e;
	struct dec d;
	int rc;

	enc_init(&e);
	provider_offer_encode_to(&e, o);
	if (enc_error(&e)) {
		rc = enc_error(&e);
		enc_free(&e);
		return rc;
	}
	dec_init(&d, e.buf, e.len);
	provider_offer_decode_from(&d, back);
	rc = dec_finish(&d);
	enc_free(&e);
	return rc;
}

START_TEST(offer_round_trip_and_strict_decoding)
{
	struct provider_offer o, back;
	char why[WHY_MAX];

	good_offer(&o);
	ck_assert_int_eq(provider_offer_check(&o, why), 0);
	ck_assert_int_eq(round_trip(&o, &back), 0);
	ck_assert_mem_eq(&o, &back, sizeof(o));

	/* The withdrawal: all zero; anything beside it is not canonical, SLA
	 * bounds included. */
	memset(&o, 0, sizeof(o));
	ck_assert(provider_offer_withdrawn(&o));
	ck_assert_int_eq(round_trip(&o, &back), 0);
	o.prices.gpu_second = 1;
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_ENCODING);
	memset(&o, 0, sizeof(o));
	strcpy(o.region, "eu");
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_ENCODING);
	memset(&o, 0, sizeof(o));
	o.sla_max_credit_ppm = 1;
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_ENCODING);
	memset(&o, 0, sizeof(o));
	o.sla_min_delay_ppm = 1;
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_ENCODING);
	{
		/* Its one encoding is 64 zero bytes; the 56 of the layout before
		 * the SLA bounds are cut short. */
		static const uint8_t zeros[64];
		struct enc e;
		struct dec d;

		memset(&o, 0, sizeof(o));
		enc_init(&e);
		provider_offer_encode_to(&e, &o);
		ck_assert_uint_eq(e.len, 64);
		ck_assert_mem_eq(e.buf, zeros, 64);
		enc_free(&e);
		dec_init(&d, zeros, 56);
		provider_offer_decode_from(&d, &back);
		ck_assert_int_eq(dec_finish(&d), TALLY_E_TRUNCATED);
	}

	good_offer(&o);
	o.endpoint[0] = '\0';
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_RANGE);
	good_offer(&o);
	strcpy(o.endpoint, "http://a b");
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_ENCODING);
	good_offer(&o);
	o.interval_s = 0;
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_RANGE);
	o.interval_s = CONTRACT_INTERVAL_S_MAX + 1;
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_RANGE);
	good_offer(&o);
	o.prices.mem_gib_second = CONTRACT_U64_FIELD_MAX + 1;
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_RANGE);
	/* The SLA bounds: ppm, 0..1000000 each. */
	good_offer(&o);
	o.sla_max_credit_ppm = PPM_ONE;
	o.sla_min_delay_ppm = 0;
	ck_assert_int_eq(round_trip(&o, &back), 0);
	ck_assert_mem_eq(&o, &back, sizeof(o));
	o.sla_max_credit_ppm = PPM_ONE + 1;
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_RANGE);
	ck_assert_int_eq(provider_offer_check(&o, why), TALLY_E_RANGE);
	ck_assert_msg(strstr(why, "sla_max_credit_ppm 1000001") != NULL, "%s", why);
	good_offer(&o);
	o.sla_min_delay_ppm = PPM_ONE;
	ck_assert_int_eq(round_trip(&o, &back), 0);
	o.sla_min_delay_ppm = UINT32_MAX;
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_RANGE);
	ck_assert_int_eq(provider_offer_check(&o, why), TALLY_E_RANGE);
	ck_assert_msg(strstr(why, "sla_min_delay_ppm") != NULL, "%s", why);
	/* Images and classes: valid names, each once, ascending. */
	good_offer(&o);
	strcpy(o.images[1], "Debian");
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_ENCODING);
	strcpy(o.images[1], o.images[0]);
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_ENCODING);
	strcpy(o.images[1], "a");
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_ENCODING);
	good_offer(&o);
	strcpy(o.gpu_classes[0], "z");
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_ENCODING);
	good_offer(&o);
	strcpy(o.region, "tab\there");
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_ENCODING);
	ck_assert_int_eq(provider_offer_check(&o, why), TALLY_E_ENCODING);
	ck_assert(strstr(why, "region") != NULL);
	/* Counts above the limit: the encoder refuses, and so does the decoder
	 * a count it reads. */
	good_offer(&o);
	o.nimages = PROVIDER_IMAGES_MAX + 1;
	ck_assert_int_eq(round_trip(&o, &back), TALLY_E_TOOLONG);
	{
		struct enc e;
		struct dec d;

		good_offer(&o);
		enc_init(&e);
		provider_offer_encode_to(&e, &o);
		ck_assert_int_eq(enc_error(&e), 0);
		/* n sits after endpoint (4 + len), three prices, interval_s and
		 * the two SLA bounds. */
		size_t at = 4 + strlen(o.endpoint) + 24 + 4 + 8;
		e.buf[at] = PROVIDER_IMAGES_MAX + 1;
		dec_init(&d, e.buf, e.len);
		provider_offer_decode_from(&d, &back);
		ck_assert_int_eq(dec_finish(&d), TALLY_E_TOOLONG);
		enc_free(&e);
	}
}
END_TEST

/* cb's contract and the announcement made for it. */
static void offer_and_contract(struct provider_offer *o, struct lease_contract *c)
{
	struct chainbuild cb;

	memset(&cb, 0, sizeof(cb));
	snprintf(cb.chain_id, sizeof(cb.chain_id), "offer");
	cb_contract(&cb, c, G);
	test_offer_for(c, o);
}

START_TEST(offer_admits_contracts_at_or_above_it)
{
	struct provider_offer o;
	struct lease_contract c;
	char why[WHY_MAX];

	offer_and_contract(&o, &c);
	ck_assert_int_eq(provider_offer_admits(&o, &c, why), 0);
	c.prices.vcpu_second++;
	c.prices.gpu_second += 7;
	ck_assert_int_eq(provider_offer_admits(&o, &c, why), 0);
	ck_assert_int_eq(provider_offer_admits(NULL, &c, why), TALLY_E_CONTRACT);
	ck_assert_msg(strstr(why, "is not registered") != NULL, "%s", why);
	c.prices.mem_gib_second--;
	ck_assert_int_eq(provider_offer_admits(&o, &c, why), TALLY_E_CONTRACT);
	ck_assert_msg(strstr(why, "below") != NULL, "%s", why);
}
END_TEST

/* The SLA bounds: a contract may promise up to the announced credit and
 * must allow at least the announced delay; exactly at each bound is
 * admitted, one ppm past it refused, with the numbers said. */
START_TEST(offer_bounds_the_sla_terms)
{
	struct provider_offer o;
	struct lease_contract c;
	char why[WHY_MAX];

	offer_and_contract(&o, &c);
	o.sla_max_credit_ppm = 300000;
	o.sla_min_delay_ppm = 20000;
	c.sla.credit_ppm = 300000;
	c.sla.max_delay_ppm = 20000;
	ck_assert_int_eq(provider_offer_admits(&o, &c, why), 0);
	ck_assert_int_eq(provider_offer_sla_admits(&o, &c, why), 0);
	/* Less credit and more delay are the tenant's to give up. */
	c.sla.credit_ppm = 0;
	c.sla.max_delay_ppm = PPM_ONE;
	ck_assert_int_eq(provider_offer_admits(&o, &c, why), 0);

	c.sla.max_delay_ppm = 20000;
	c.sla.credit_ppm = 300001;
	ck_assert_int_eq(provider_offer_admits(&o, &c, why), TALLY_E_CONTRACT);
	ck_assert_msg(strstr(why, "credits at most 300000 ppm") && strstr(why, "not 300001") &&
		      strstr(why, "sla_max_credit_ppm"), "%s", why);
	ck_assert_int_eq(provider_offer_sla_admits(&o, &c, why), TALLY_E_CONTRACT);

	c.sla.credit_ppm = 300000;
	c.sla.max_delay_ppm = 19999;
	ck_assert_int_eq(provider_offer_admits(&o, &c, why), TALLY_E_CONTRACT);
	ck_assert_msg(strstr(why, "at least 20000 ppm") && strstr(why, "not 19999") &&
		      strstr(why, "sla_min_delay_ppm"), "%s", why);

	/* Bounds of 0 credit and a whole delay: only a contract promising
	 * nothing is admitted. */
	o.sla_max_credit_ppm = 0;
	o.sla_min_delay_ppm = PPM_ONE;
	c.sla.credit_ppm = 0;
	c.sla.max_delay_ppm = PPM_ONE;
	ck_assert_int_eq(provider_offer_admits(&o, &c, why), 0);
	c.sla.credit_ppm = 1;
	ck_assert_int_eq(provider_offer_admits(&o, &c, why), TALLY_E_CONTRACT);
	c.sla.credit_ppm = 0;
	c.sla.max_delay_ppm = PPM_ONE - 1;
	ck_assert_int_eq(provider_offer_admits(&o, &c, why), TALLY_E_CONTRACT);
}
END_TEST

/* The registry entry: version 2 (the announcement with its SLA bounds); a
 * version-1 entry is TALLY_E_VERSION. */
START_TEST(provider_entry_version)
{
	struct provider_entry p, back;
	struct enc e;

	memset(&p, 0, sizeof(p));
	p.height = 7;
	good_offer(&p.offer);
	enc_init(&e);
	provider_value_encode(&e, &p);
	ck_assert_int_eq(enc_error(&e), 0);
	ck_assert_uint_eq(e.buf[0], 2);
	ck_assert_int_eq(provider_value_decode(&back, e.buf, e.len), 0);
	ck_assert_mem_eq(&back, &p, sizeof(p));
	e.buf[0] = 1;
	ck_assert_int_eq(provider_value_decode(&back, e.buf, e.len), TALLY_E_VERSION);
	e.buf[0] = 3;
	ck_assert_int_eq(provider_value_decode(&back, e.buf, e.len), TALLY_E_VERSION);
	enc_free(&e);
}
END_TEST

/* --- the state transition -------------------------------------------------- */

static int apply(struct chainbuild *cb, struct tx *t, enum cb_who who, uint64_t height,
		 char *why)
{
	struct block_ctx b = { .chain_id = cb->chain_id, .height = height, .time_ns = BT(height) };
	uint8_t hash[HASH_LEN];
	int rc;

	t->version = TX_VERSION;
	snprintf(t->chain_id, sizeof(t->chain_id), "%s", cb->chain_id);
	memcpy(t->signer, cb->key[who].pub, PUBKEY_LEN);
	t->nonce = cb->nonce[who];
	memset(hash, (int)height, sizeof(hash));
	rc = state_apply_tx(&cb->state, &b, t, NULL, 0, hash, NULL, why);
	if (!rc)
		cb->nonce[who]++;
	return rc;
}

START_TEST(announce_replace_and_withdraw)
{
	struct chainbuild *cb = calloc(1, sizeof(*cb));
	struct provider_entry p;
	uint8_t before[HASH_LEN], after[HASH_LEN];
	char why[WHY_MAX];
	struct tx t;

	ck_assert_ptr_nonnull(cb);
	cb_init(cb, "registry", G);
	/* The stranger never announced: a withdrawal has nothing to take back,
	 * and writes nothing. */
	ck_assert_int_eq(state_provider_get(&cb->state, cb->key[CB_STRANGER].pub, &p),
			 TALLY_E_NOTFOUND);
	ck_assert_int_eq(state_root_update(&cb->state), 0);
	state_root(&cb->state, before);
	memset(&t, 0, sizeof(t));
	t.kind = TX_PROVIDER;
	ck_assert_int_eq(apply(cb, &t, CB_STRANGER, 1, why), TALLY_E_NOTFOUND);
	ck_assert_msg(strstr(why, "no announcement to withdraw") != NULL, "%s", why);
	ck_assert_int_eq(state_root_update(&cb->state), 0);
	state_root(&cb->state, after);
	ck_assert_mem_eq(before, after, HASH_LEN);

	/* Announce at height 1: the entry holds it and the root moves. */
	memset(&t, 0, sizeof(t));
	t.kind = TX_PROVIDER;
	good_offer(&t.u.provider);
	ck_assert_msg(apply(cb, &t, CB_STRANGER, 1, why) == 0, "%s", why);
	ck_assert_int_eq(state_provider_get(&cb->state, cb->key[CB_STRANGER].pub, &p), 0);
	ck_assert_uint_eq(p.height, 1);
	ck_assert_mem_eq(&p.offer, &t.u.provider, sizeof(p.offer));
	ck_assert_int_eq(state_root_update(&cb->state), 0);
	state_root(&cb->state, after);
	ck_assert(memcmp(before, after, HASH_LEN) != 0);

	/* An update replaces it whole. */
	memset(&t, 0, sizeof(t));
	t.kind = TX_PROVIDER;
	good_offer(&t.u.provider);
	t.u.provider.nimages = 1;
	t.u.provider.ngpu_classes = 0;
	t.u.provider.prices.vcpu_second = 99;
	ck_assert_msg(apply(cb, &t, CB_STRANGER, 2, why) == 0, "%s", why);
	ck_assert_int_eq(state_provider_get(&cb->state, cb->key[CB_STRANGER].pub, &p), 0);
	ck_assert_uint_eq(p.height, 2);
	ck_assert_uint_eq(p.offer.nimages, 1);
	ck_assert_uint_eq(p.offer.ngpu_classes, 0);
	ck_assert_uint_eq(p.offer.prices.vcpu_second, 99);

	/* Withdraw: the entry stays, withdrawn; a second withdrawal is refused. */
	memset(&t, 0, sizeof(t));
	t.kind = TX_PROVIDER;
	ck_assert_msg(apply(cb, &t, CB_STRANGER, 3, why) == 0, "%s", why);
	ck_assert_int_eq(state_provider_get(&cb->state, cb->key[CB_STRANGER].pub, &p), 0);
	ck_assert(provider_offer_withdrawn(&p.offer));
	ck_assert_uint_eq(p.height, 3);
	ck_assert_int_eq(apply(cb, &t, CB_STRANGER, 4, why), TALLY_E_NOTFOUND);
	cb_free(cb);
	free(cb);
}
END_TEST

/* --- LEASE_OPEN against the registry, three paths ---------------------------- */

struct open_case {
	const char *name;
	void (*change)(struct lease_contract *c, struct chainbuild *cb);
	bool withdraw;       /* the provider withdrew before the open */
	int want;
};

static void none(struct lease_contract *c, struct chainbuild *cb)
{
	(void)c, (void)cb;
}

static void unregistered(struct lease_contract *c, struct chainbuild *cb)
{
	memcpy(c->provider, cb->key[CB_STRANGER].pub, PUBKEY_LEN);
}

static void other_image(struct lease_contract *c, struct chainbuild *cb)
{
	(void)cb;
	strcpy(c->vm.image, "debian-12");
}

static void cpu_below(struct lease_contract *c, struct chainbuild *cb)
{
	(void)cb;
	c->prices.vcpu_second--;
}

static void mem_below(struct lease_contract *c, struct chainbuild *cb)
{
	(void)cb;
	c->prices.mem_gib_second--;
}

static void gpu_below(struct lease_contract *c, struct chainbuild *cb)
{
	/* The announcement asks 0 per GPU-second: raise it, so a contract at
	 * the old price is below. */
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_PROVIDER;
	test_offer_for(c, &t.u.provider);
	t.u.provider.prices.gpu_second = 1;
	cb_tx(cb, &t, CB_VALIDATOR, false, NULL);
}

static void other_interval(struct lease_contract *c, struct chainbuild *cb)
{
	(void)cb;
	c->interval_s = 2;
}

/* The provider announces again with SLA bounds of 300000 ppm of credit at
 * most and 20000 ppm of delay at least; the contract's terms are then
 * these moved by the two deltas. */
static void sla_bounds(struct lease_contract *c, struct chainbuild *cb, int credit_delta,
		       int delay_delta)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_PROVIDER;
	test_offer_for(c, &t.u.provider);
	t.u.provider.sla_max_credit_ppm = 300000;
	t.u.provider.sla_min_delay_ppm = 20000;
	cb_tx(cb, &t, CB_VALIDATOR, false, NULL);
	c->sla.credit_ppm = (uint32_t)(300000 + credit_delta);
	c->sla.max_delay_ppm = (uint32_t)(20000 + delay_delta);
}

static void sla_at_bounds(struct lease_contract *c, struct chainbuild *cb)
{
	sla_bounds(c, cb, 0, 0);
}

static void credit_above(struct lease_contract *c, struct chainbuild *cb)
{
	sla_bounds(c, cb, 1, 0);
}

static void delay_below(struct lease_contract *c, struct chainbuild *cb)
{
	sla_bounds(c, cb, 0, -1);
}

static void above(struct lease_contract *c, struct chainbuild *cb)
{
	(void)cb;
	c->prices.vcpu_second += 5;
	c->prices.mem_gib_second += 1;
	c->prices.gpu_second = 3;
}

static void run_open_case(const struct open_case *oc)
{
	char dir[80], why[WHY_MAX] = "";
	struct chainbuild *cb = calloc(1, sizeof(*cb));
	struct ledger_config cfg = { 0 };
	uint8_t lease[HASH_LEN], hash[HASH_LEN];
	struct ledger *l;
	struct tx t;
	int admitted, applied, audited;

	ck_assert_ptr_nonnull(cb);
	lt_test_dir(dir, sizeof(dir), base);
	cb_init(cb, "registry", G);
	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_OPEN;
	cb_contract(cb, &t.u.open, BT(2));
	t.u.open.expiry = (uint64_t)time(NULL) + 3600;
	oc->change(&t.u.open, cb);
	if (oc->withdraw) {
		struct tx w = { .kind = TX_PROVIDER };

		cb_tx(cb, &w, CB_VALIDATOR, false, NULL);
	}
	/* Block 1: the announcement (and any change of it). */
	cb_seal(cb, BT(1), false, NULL, NULL);
	cb_tx(cb, &t, CB_TENANT, false, lease);

	cfg.data_dir = dir;
	cfg.genesis = &cb->genesis;
	ck_assert_msg(ledger_open(&l, &cfg, why) == 0, "%s", why);
	ck_assert_msg(cb_apply_blocks(l, cb, 0, 0, why) == 0, "%s", why);
	admitted = ledger_submit(l, cb->pending[0].bytes, cb->pending[0].len, hash, why);
	if (oc->want)
		ck_assert_msg(why[0] != '\0', "%s: refused without a reason", oc->name);
	cb_seal(cb, BT(2), true, NULL, NULL);
	applied = cb_apply_blocks(l, cb, 1, 1, why);
	ledger_close(l);
	cb_rm_tree(dir);
	audited = cb_audit_code(cb, lease, 2);
	ck_assert_msg(admitted == oc->want, "%s: admission says %d, the rule %d", oc->name,
		      admitted, oc->want);
	ck_assert_msg(applied == oc->want, "%s: the node applied it with %d, the rule %d",
		      oc->name, applied, oc->want);
	ck_assert_msg(audited == oc->want, "%s: the auditor says %d, the rule %d", oc->name,
		      audited, oc->want);
	cb_free(cb);
	free(cb);
}

START_TEST(lease_open_meets_the_announcement_everywhere)
{
	static const struct open_case cases[] = {
		{ "at the announced prices", none, false, 0 },
		{ "above them", above, false, 0 },
		{ "unregistered provider", unregistered, false, TALLY_E_CONTRACT },
		{ "withdrawn provider", none, true, TALLY_E_CONTRACT },
		{ "image not offered", other_image, false, TALLY_E_CONTRACT },
		{ "vcpu_second below", cpu_below, false, TALLY_E_CONTRACT },
		{ "mem_gib_second below", mem_below, false, TALLY_E_CONTRACT },
		{ "gpu_second below", gpu_below, false, TALLY_E_CONTRACT },
		{ "another interval", other_interval, false, TALLY_E_CONTRACT },
		{ "SLA at both announced bounds", sla_at_bounds, false, 0 },
		{ "credit_ppm one above the bound", credit_above, false, TALLY_E_CONTRACT },
		{ "max_delay_ppm one below the bound", delay_below, false, TALLY_E_CONTRACT },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_open_case(&cases[i]);
}
END_TEST

/* A validator certifies block 1 with the state root of another
 * announcement (lower prices than the PROVIDER in the block says): the node
 * and the auditor recompute the entry and refuse the root. */
static void other_root(struct block_header *h, void *ctx)
{
	memcpy(h->state_root, ctx, HASH_LEN);
}

START_TEST(a_state_root_without_the_announcement_is_refused)
{
	char dir[80], why[WHY_MAX] = "";
	struct chainbuild *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct ledger_config cfg = { 0 };
	uint8_t lease[HASH_LEN] = { 0 }, root[HASH_LEN];
	struct lease_contract c;
	struct ledger *l;
	struct tx t;

	ck_assert(a && b);
	cb_init(a, "registry", G);
	cb_init(b, "registry", G);
	memset(&t, 0, sizeof(t));
	t.kind = TX_PROVIDER;
	cb_contract(b, &c, G);
	test_offer_for(&c, &t.u.provider);
	t.u.provider.prices.vcpu_second = 1;
	cb_tx(b, &t, CB_VALIDATOR, false, NULL);
	cb_seal(b, BT(1), false, NULL, NULL);
	memcpy(root, b->blocks[0].header.state_root, HASH_LEN);
	cb_seal(a, BT(1), false, NULL, NULL);
	ck_assert(memcmp(root, a->blocks[0].header.state_root, HASH_LEN) != 0);
	/* The same block, certified with b's root. */
	cb_free(a);
	cb_init(a, "registry", G);
	cb_seal(a, BT(1), false, other_root, root);

	ck_assert_int_eq(cb_audit_code(a, lease, 1), TALLY_E_STATEROOT);
	lt_test_dir(dir, sizeof(dir), base);
	cfg.data_dir = dir;
	cfg.genesis = &a->genesis;
	ck_assert_msg(ledger_open(&l, &cfg, why) == 0, "%s", why);
	ck_assert_int_eq(cb_apply_blocks(l, a, 0, 0, why), TALLY_E_STATEROOT);
	ledger_close(l);
	cb_rm_tree(dir);
	cb_free(a);
	cb_free(b);
	free(a);
	free(b);
}
END_TEST

Suite *provider_suite(void)
{
	Suite *s = suite_create("provider");
	TCase *tc = tcase_create("provider");

	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, case_begin, case_end);
	tcase_add_checked_fixture(tc, clock_setup, NULL);
	tcase_add_test(tc, offer_round_trip_and_strict_decoding);
	tcase_add_test(tc, offer_admits_contracts_at_or_above_it);
	tcase_add_test(tc, offer_bounds_the_sla_terms);
	tcase_add_test(tc, provider_entry_version);
	tcase_add_test(tc, announce_replace_and_withdraw);
	tcase_add_test(tc, lease_open_meets_the_announcement_everywhere);
	tcase_add_test(tc, a_state_root_without_the_announcement_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
