/* Transactions: round trips of every kind, strict decoding, signatures and
 * the stateless admission checks (tx_check). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"
#include "lib/chain/evidence.h"
#include "lib/chain/tx.h"

#define CHAIN "tally-test"
/* The genesis hash signatures are bound to (any 32 bytes will do here). */
#define GH ((const uint8_t *)"tally-test genesis hash (32 B)..")
#define NOW_S 1700000000ull

static struct tally_key tenant, provider;

static void keys_setup(void)
{
	uint8_t seed[32];

	memset(seed, 0x01, sizeof(seed));
	ck_assert_int_eq(key_from_seed(&tenant, seed), 0);
	memset(seed, 0x02, sizeof(seed));
	ck_assert_int_eq(key_from_seed(&provider, seed), 0);
}

static void keys_teardown(void)
{
	key_free(&tenant);
	key_free(&provider);
}

static void good_contract(struct lease_contract *c)
{
	memset(c, 0, sizeof(*c));
	c->version = CONTRACT_VERSION;
	strcpy(c->chain_id, CHAIN);
	memcpy(c->tenant, tenant.pub, PUBKEY_LEN);
	memcpy(c->provider, provider.pub, PUBKEY_LEN);
	c->nonce = 7;
	c->expiry = NOW_S + 600;
	c->vm.vcpus = 2;
	c->vm.memory_mib = 1024;
	c->vm.disk_gib = 10;
	strcpy(c->vm.image, "debian-12");
	c->duration_s = 3600;
	c->deposit = 5000000;
	c->interval_s = 60;
	c->prices.vcpu_second = 10;
	c->prices.mem_gib_second = 2;
	c->sla.max_delay_ppm = 50000;
	c->sla.credit_ppm = 100000;
}

/* An announcement with every field in use. */
static void good_offer(struct provider_offer *o)
{
	memset(o, 0, sizeof(*o));
	strcpy(o->endpoint, "https://node1.example:8443");
	o->prices.vcpu_second = 10;
	o->prices.mem_gib_second = 2;
	o->prices.gpu_second = 300;
	o->interval_s = 60;
	o->sla_max_credit_ppm = 250000;
	o->sla_min_delay_ppm = 20000;
	o->nimages = 2;
	strcpy(o->images[0], "debian-12");
	strcpy(o->images[1], "tiny");
	o->ngpu_classes = 1;
	strcpy(o->gpu_classes[0], "nvidia-a100");
	o->vcpus = 64;
	o->memory_mib = 262144;
	o->gpus = 4;
	strcpy(o->region, "eu-west (Dublin)");
}

/* A transaction of each kind with non-trivial field values. */
static void make_tx(struct tx *t, enum tx_kind kind)
{
	memset(t, 0, sizeof(*t));
	t->version = TX_VERSION;
	t->kind = kind;
	strcpy(t->chain_id, CHAIN);
	memcpy(t->signer, provider.pub, PUBKEY_LEN);
	t->nonce = 0x0102030405060708ull;
	switch (kind) {
	case TX_LEASE_OPEN:
		good_contract(&t->u.open);
		memcpy(t->signer, tenant.pub, PUBKEY_LEN);
		t->nonce = t->u.open.nonce;
		break;
	case TX_LEASE_START:
		memset(t->u.start.lease_id, 0xab, LEASE_ID_LEN);
		break;
	case TX_USAGE:
		memset(t->u.usage.lease_id, 0xab, LEASE_ID_LEN);
		t->u.usage.seq = 3;
		memset(t->u.usage.prev_hash, 0xcd, HASH_LEN);
		t->u.usage.start_ns = 1700000000000000000ull;
		t->u.usage.end_ns = 1700000060000000000ull;
		t->u.usage.cpu_ns = 12345678901ull;
		t->u.usage.run_delay_ns = 1000;
		t->u.usage.gpu_ns = 0;
		t->u.usage.mem_mib = 1024;
		t->u.usage.mem_peak_bytes = 99999999;
		t->u.usage.gpu_source = GPU_SOURCE_LIBVIRT;
		break;
	case TX_LEASE_CLOSE:
		memset(t->u.close.lease_id, 0xab, LEASE_ID_LEN);
		t->u.close.reason = CLOSE_TENANT;
		memcpy(t->signer, tenant.pub, PUBKEY_LEN);
		break;
	case TX_TRANSFER:
		memcpy(t->u.transfer.to, tenant.pub, PUBKEY_LEN);
		t->u.transfer.amount = 123456789;
		break;
	case TX_STAKE:
	case TX_UNSTAKE:
		t->u.stake.amount = 1000;
		break;
	case TX_EVIDENCE:
		memset(t->u.evidence.vote_a, 0x11, 109);
		t->u.evidence.vote_a_len = 109;
		memset(t->u.evidence.vote_b, 0x22, 256);
		t->u.evidence.vote_b_len = 256;
		break;
	case TX_UNJAIL:
		break;
	case TX_PROVIDER:
		good_offer(&t->u.provider);
		break;
	}
}

static const struct tally_key *key_of(const struct tx *t)
{
	return memcmp(t->signer, tenant.pub, PUBKEY_LEN) == 0 ? &tenant : &provider;
}

/* Signs t and returns its malloc'd encoding. */
static uint8_t *signed_bytes(struct tx *t, size_t *n)
{
	struct enc e;

	ck_assert_int_eq(tx_sign(t, key_of(t), GH), 0);
	enc_init(&e);
	tx_encode(&e, t);
	ck_assert_int_eq(enc_error(&e), 0);
	return enc_take(&e, n);
}

static uint8_t *reencode(const struct tx *t, size_t *n)
{
	struct enc e;

	enc_init(&e);
	tx_encode(&e, t);
	ck_assert_int_eq(enc_error(&e), 0);
	return enc_take(&e, n);
}

START_TEST(test_round_trip_every_kind)
{
	for (int kind = TX_LEASE_OPEN; kind <= TX_PROVIDER; kind++) {
		if (!strcmp(tx_kind_name(kind), "UNKNOWN"))
			continue;
		struct tx t, back;
		size_t n, n2;
		uint8_t *p;

		make_tx(&t, kind);
		p = signed_bytes(&t, &n);
		ck_assert_int_eq(tx_decode(&back, p, n), 0);
		ck_assert_int_eq(back.kind, kind);
		ck_assert_str_eq(back.chain_id, CHAIN);
		ck_assert_uint_eq(back.nonce, t.nonce);
		ck_assert_mem_eq(back.signer, t.signer, PUBKEY_LEN);
		ck_assert_mem_eq(back.sig, t.sig, SIG_LEN);
		ck_assert_int_eq(tx_verify(&back, p, n, GH), 0);
		uint8_t *q = reencode(&back, &n2);
		ck_assert_uint_eq(n2, n);
		ck_assert_mem_eq(q, p, n);
		free(q);
		free(p);
	}
}
END_TEST

START_TEST(test_kind_fields_survive)
{
	struct tx t, back;
	size_t n;
	uint8_t *p;

	make_tx(&t, TX_USAGE);
	p = signed_bytes(&t, &n);
	ck_assert_uint_eq(n, 110 + strlen(CHAIN) + 125);
	ck_assert_int_eq(tx_decode(&back, p, n), 0);
	ck_assert_uint_eq(back.u.usage.cpu_ns, 12345678901ull);
	ck_assert_uint_eq(back.u.usage.gpu_source, GPU_SOURCE_LIBVIRT);
	free(p);

	make_tx(&t, TX_TRANSFER);
	p = signed_bytes(&t, &n);
	ck_assert_int_eq(tx_decode(&back, p, n), 0);
	ck_assert_uint_eq(back.u.transfer.amount, 123456789);
	ck_assert_mem_eq(back.u.transfer.to, tenant.pub, PUBKEY_LEN);
	free(p);

	make_tx(&t, TX_EVIDENCE);
	p = signed_bytes(&t, &n);
	ck_assert_int_eq(tx_decode(&back, p, n), 0);
	ck_assert_uint_eq(back.u.evidence.vote_a_len, 109);
	ck_assert_uint_eq(back.u.evidence.vote_b_len, 256);
	ck_assert_mem_eq(back.u.evidence.vote_b, t.u.evidence.vote_b, 256);
	free(p);

	make_tx(&t, TX_LEASE_OPEN);
	p = signed_bytes(&t, &n);
	ck_assert_int_eq(tx_decode(&back, p, n), 0);
	ck_assert_uint_eq(back.u.open.deposit, 5000000);
	ck_assert_str_eq(back.u.open.vm.image, "debian-12");
	free(p);
}
END_TEST

START_TEST(test_truncation_rejected)
{
	for (int kind = TX_LEASE_OPEN; kind <= TX_PROVIDER; kind++) {
		if (!strcmp(tx_kind_name(kind), "UNKNOWN"))
			continue;
		struct tx t, back;
		size_t n;
		uint8_t *p;

		make_tx(&t, kind);
		p = signed_bytes(&t, &n);
		for (size_t cut = 0; cut < n; cut++) {
			/* A copy of exactly `cut` bytes so ASan sees any overread. */
			uint8_t *q = malloc(cut ? cut : 1);

			memcpy(q, p, cut);
			ck_assert_msg(tx_decode(&back, q, cut) != 0,
				      "%s cut at %zu of %zu decoded", tx_kind_name(kind), cut, n);
			free(q);
		}
		free(p);
	}
}
END_TEST

START_TEST(test_trailing_rejected)
{
	struct tx t, back;
	size_t n;
	uint8_t *p;

	make_tx(&t, TX_STAKE);
	p = signed_bytes(&t, &n);
	p = realloc(p, n + 1);
	p[n] = 0;
	ck_assert_int_eq(tx_decode(&back, p, n + 1), TALLY_E_TRAILING);
	free(p);
}
END_TEST

START_TEST(test_version_and_kind)
{
	struct tx t, back;
	size_t n;
	uint8_t *p;

	make_tx(&t, TX_TRANSFER);
	p = signed_bytes(&t, &n);
	p[0] = 2;
	ck_assert_int_eq(tx_decode(&back, p, n), TALLY_E_VERSION);
	p[0] = 0;
	ck_assert_int_eq(tx_decode(&back, p, n), TALLY_E_VERSION);
	p[0] = TX_VERSION;
	p[1] = 0;
	ck_assert_int_eq(tx_decode(&back, p, n), TALLY_E_RANGE);
	p[1] = TX_PROVIDER + 1;
	ck_assert_int_eq(tx_decode(&back, p, n), TALLY_E_RANGE);
	free(p);

	/* The encoder refuses an unknown kind rather than emit garbage. */
	struct enc e;
	make_tx(&t, TX_TRANSFER);
	t.kind = 42;
	enc_init(&e);
	tx_encode(&e, &t);
	ck_assert_int_eq(enc_error(&e), TALLY_E_RANGE);
	enc_free(&e);
	ck_assert_str_eq(tx_kind_name(TX_USAGE), "USAGE");
	ck_assert_str_eq(tx_kind_name(42), "UNKNOWN");
}
END_TEST

/* Values a well-formed encoder could write but the format forbids. */
START_TEST(test_out_of_range_bodies)
{
	struct tx t, back;
	size_t n;
	uint8_t *p;

	make_tx(&t, TX_LEASE_CLOSE);
	for (int reason = 0; reason < 8; reason++) {
		t.u.close.reason = (uint8_t)reason;
		p = signed_bytes(&t, &n);
		ck_assert_int_eq(tx_decode(&back, p, n),
				 reason >= 1 && reason <= CLOSE_REASON_MAX ? 0 : TALLY_E_RANGE);
		free(p);
	}
	make_tx(&t, TX_TRANSFER);
	t.u.transfer.amount = 0;
	p = signed_bytes(&t, &n);
	ck_assert_int_eq(tx_decode(&back, p, n), TALLY_E_RANGE);
	free(p);
	make_tx(&t, TX_UNSTAKE);
	t.u.stake.amount = 0;
	p = signed_bytes(&t, &n);
	ck_assert_int_eq(tx_decode(&back, p, n), TALLY_E_RANGE);
	free(p);
	make_tx(&t, TX_USAGE);
	t.u.usage.gpu_source = 3;
	p = signed_bytes(&t, &n);
	ck_assert_int_eq(tx_decode(&back, p, n), TALLY_E_RANGE);
	free(p);
	/* A chain id with a character outside [a-z0-9._-]. */
	make_tx(&t, TX_STAKE);
	p = signed_bytes(&t, &n);
	p[6] = 'T';
	ck_assert_int_eq(tx_decode(&back, p, n), TALLY_E_ENCODING);
	free(p);
}
END_TEST

START_TEST(test_length_limits)
{
	struct tx t, back;
	size_t n;
	uint8_t *p;
	struct enc e;

	/* An evidence vote longer than 256 bytes: the encoder refuses it, and a
	 * hand-made encoding with a 257-byte length prefix does not decode. */
	make_tx(&t, TX_EVIDENCE);
	t.u.evidence.vote_a_len = 257;
	enc_init(&e);
	tx_encode(&e, &t);
	ck_assert_int_eq(enc_error(&e), TALLY_E_TOOLONG);
	enc_free(&e);

	make_tx(&t, TX_EVIDENCE);
	p = signed_bytes(&t, &n);
	size_t len_off = 46 + strlen(CHAIN);   /* vote_a's u32 length */
	ck_assert_uint_eq(p[len_off], 109);
	p[len_off] = 1;
	p[len_off + 1] = 1;                     /* 257 */
	ck_assert_int_eq(tx_decode(&back, p, n), TALLY_E_TOOLONG);
	free(p);

	/* Nothing larger than TX_MAX_SIZE is even looked at. */
	p = calloc(1, TX_MAX_SIZE + 1);
	ck_assert_int_eq(tx_decode(&back, p, TX_MAX_SIZE + 1), TALLY_E_TOOLONG);
	free(p);
}
END_TEST

START_TEST(test_signature_checks)
{
	struct tx t, back;
	size_t n;
	uint8_t *p;

	make_tx(&t, TX_TRANSFER);
	p = signed_bytes(&t, &n);
	/* Any changed byte of the signed payload or the signature. */
	for (size_t i = 0; i < n; i++) {
		p[i] ^= 0x01;
		if (tx_decode(&back, p, n) == 0)
			ck_assert_msg(tx_verify(&back, p, n, GH) != 0, "flip at %zu verified", i);
		p[i] ^= 0x01;
	}
	ck_assert_int_eq(tx_decode(&back, p, n), 0);
	ck_assert_int_eq(tx_verify(&back, p, n, GH), 0);
	free(p);

	/* Signed by a key other than the signer field. */
	make_tx(&t, TX_TRANSFER);
	ck_assert_int_eq(tx_sign(&t, &tenant, GH), 0);
	p = reencode(&t, &n);
	ck_assert_int_eq(tx_decode(&back, p, n), 0);
	ck_assert_int_eq(tx_verify(&back, p, n, GH), TALLY_E_SIGNATURE);
	free(p);
}
END_TEST

START_TEST(test_hash)
{
	struct tx t;
	size_t n;
	uint8_t *p, h[HASH_LEN], want[HASH_LEN];

	make_tx(&t, TX_LEASE_OPEN);
	p = signed_bytes(&t, &n);
	tx_hash(p, n, h);
	sha256(p, n, want);
	ck_assert_mem_eq(h, want, HASH_LEN);
	free(p);
}
END_TEST

static int check_tx(struct tx *t, const char *chain, char *why)
{
	size_t n;
	uint8_t *p = signed_bytes(t, &n);
	struct tx back;
	int rc = tx_check(&back, p, n, chain, GH, NOW_S, why);

	free(p);
	return rc;
}

START_TEST(test_check_accepts)
{
	char why[WHY_MAX];

	for (int kind = TX_LEASE_OPEN; kind <= TX_PROVIDER; kind++) {
		if (!strcmp(tx_kind_name(kind), "UNKNOWN"))
			continue;
		struct tx t;

		make_tx(&t, kind);
		ck_assert_msg(check_tx(&t, CHAIN, why) == 0, "%s: %s", tx_kind_name(kind), why);
	}
}
END_TEST

START_TEST(test_check_wrong_chain)
{
	char why[WHY_MAX];
	struct tx t;

	make_tx(&t, TX_TRANSFER);
	ck_assert_int_eq(check_tx(&t, "other-chain", why), TALLY_E_CHAIN_ID);
	ck_assert_str_eq(why, "transaction is for chain 'tally-test', this chain is 'other-chain'");
}
END_TEST

START_TEST(test_check_bad_signature)
{
	char why[WHY_MAX], hex[17];
	struct tx t, back;
	size_t n;
	uint8_t *p;

	make_tx(&t, TX_USAGE);
	p = signed_bytes(&t, &n);
	p[n - 1] ^= 0x80;
	ck_assert_int_eq(tx_check(&back, p, n, CHAIN, GH, NOW_S, why), TALLY_E_SIGNATURE);
	hex_encode(provider.pub, 8, hex);
	ck_assert_ptr_nonnull(strstr(why, "signature does not verify for signer"));
	ck_assert_ptr_nonnull(strstr(why, hex));
	free(p);

	/* A payload byte changed after signing: cpu_ns, for instance. */
	p = signed_bytes(&t, &n);
	p[110 - SIG_LEN + strlen(CHAIN) + 32 + 8 + 32 + 16] ^= 0x01;
	ck_assert_int_eq(tx_check(&back, p, n, CHAIN, GH, NOW_S, why), TALLY_E_SIGNATURE);
	free(p);

	/* Garbage does not decode, and says so. */
	uint8_t junk[3] = { 1, 3, 0 };
	ck_assert_int_eq(tx_check(&back, junk, sizeof(junk), CHAIN, GH, NOW_S, why),
			 TALLY_E_TRUNCATED);
	ck_assert_ptr_nonnull(strstr(why, "does not decode"));
}
END_TEST

START_TEST(test_check_lease_open_rules)
{
	char why[WHY_MAX];
	struct tx t;

	/* Signed by someone other than the tenant. */
	make_tx(&t, TX_LEASE_OPEN);
	memcpy(t.signer, provider.pub, PUBKEY_LEN);
	ck_assert_int_eq(check_tx(&t, CHAIN, why), TALLY_E_UNAUTHORIZED);
	ck_assert_ptr_nonnull(strstr(why, "tenant"));

	make_tx(&t, TX_LEASE_OPEN);
	t.nonce = t.u.open.nonce + 1;
	ck_assert_int_eq(check_tx(&t, CHAIN, why), TALLY_E_NONCE);
	ck_assert_ptr_nonnull(strstr(why, "nonce"));

	make_tx(&t, TX_LEASE_OPEN);
	strcpy(t.u.open.chain_id, "other-chain");
	ck_assert_int_eq(check_tx(&t, CHAIN, why), TALLY_E_CHAIN_ID);
	ck_assert_ptr_nonnull(strstr(why, "other-chain"));

	make_tx(&t, TX_LEASE_OPEN);
	t.u.open.deposit = 0;
	ck_assert_int_eq(check_tx(&t, CHAIN, why), TALLY_E_CONTRACT);
	ck_assert_str_ne(why, "");

	make_tx(&t, TX_LEASE_OPEN);
	t.u.open.expiry = NOW_S - 1;
	ck_assert_int_eq(check_tx(&t, CHAIN, why), TALLY_E_EXPIRED);
	ck_assert_str_ne(why, "");
}
END_TEST

/* At a block's time the rules read whole seconds: a contract expiring at
 * second E may commit in a block dated any nanosecond of E, not in one
 * dated the first nanosecond of E + 1. */
START_TEST(test_check_rules_at_block_time)
{
	struct tx t;
	char why[WHY_MAX] = "";
	const uint64_t ns = 1000000000ull;

	make_tx(&t, TX_LEASE_OPEN);
	ck_assert_int_eq(tx_check_rules_at_block(&t, CHAIN, t.u.open.expiry * ns, why), 0);
	ck_assert_int_eq(tx_check_rules_at_block(&t, CHAIN, t.u.open.expiry * ns + ns - 1, why),
			 0);
	ck_assert_int_eq(tx_check_rules_at_block(&t, CHAIN, (t.u.open.expiry + 1) * ns, why),
			 TALLY_E_EXPIRED);
	ck_assert_ptr_nonnull(strstr(why, "expired"));
}
END_TEST

/* The signed votes an EVIDENCE carries decode strictly: every length short
 * of SIGNED_VOTE_LEN, a trailing byte and a vote type other than prevote
 * and precommit are refused; a good one round-trips and verifies, and
 * evidence_check names what is not evidence. */
START_TEST(test_evidence_votes_strict)
{
	struct signed_vote sv, back;
	struct tx_evidence ev;
	uint8_t buf[SIGNED_VOTE_LEN + 1];
	char why[WHY_MAX] = "";
	struct enc e;

	memset(&sv, 0, sizeof(sv));
	sv.v.type = VOTE_PRECOMMIT;
	sv.v.height = 7;
	sv.v.round = 1;
	memset(sv.v.block_id, 0x33, HASH_LEN);
	memcpy(sv.validator, provider.pub, PUBKEY_LEN);
	ck_assert_int_eq(vote_sign(&sv.v, &provider, GH, sv.sig), 0);
	enc_init(&e);
	signed_vote_encode(&e, &sv);
	ck_assert_uint_eq(e.len, SIGNED_VOTE_LEN);
	memcpy(buf, e.buf, e.len);
	enc_free(&e);
	ck_assert_int_eq(signed_vote_decode(&back, buf, SIGNED_VOTE_LEN), 0);
	ck_assert_mem_eq(&back.v.block_id, sv.v.block_id, HASH_LEN);
	ck_assert_int_eq(vote_verify(&back.v, back.validator, GH, back.sig), 0);
	for (size_t n = 0; n < SIGNED_VOTE_LEN; n++)
		ck_assert_int_eq(signed_vote_decode(&back, buf, n), TALLY_E_TRUNCATED);
	buf[SIGNED_VOTE_LEN] = 0;
	ck_assert_int_eq(signed_vote_decode(&back, buf, SIGNED_VOTE_LEN + 1), TALLY_E_TRAILING);
	buf[0] = 3;
	ck_assert_int_eq(signed_vote_decode(&back, buf, SIGNED_VOTE_LEN), TALLY_E_RANGE);

	/* Evidence of one vote against itself, or of a short vote, is not. */
	memset(&ev, 0, sizeof(ev));
	buf[0] = VOTE_PRECOMMIT;
	memcpy(ev.vote_a, buf, SIGNED_VOTE_LEN);
	memcpy(ev.vote_b, buf, SIGNED_VOTE_LEN);
	ev.vote_a_len = ev.vote_b_len = SIGNED_VOTE_LEN;
	ck_assert_int_eq(evidence_check(&ev, NULL, NULL, why), TALLY_E_INVALID);
	ev.vote_b_len = SIGNED_VOTE_LEN - 1;
	ck_assert_int_eq(evidence_check(&ev, NULL, NULL, why), TALLY_E_TRUNCATED);
	ck_assert_msg(strstr(why, "second vote does not decode"), "%s", why);
	/* Another block: evidence, once ordered; its signatures are checked. */
	back = sv;
	memset(back.v.block_id, 0x44, HASH_LEN);
	ck_assert_int_eq(vote_sign(&back.v, &provider, GH, back.sig), 0);
	ck_assert_int_eq(evidence_make(&ev, &back, &sv), 0);
	ck_assert_int_eq(evidence_check(&ev, NULL, NULL, why), 0);
	ck_assert_int_eq(evidence_verify(&ev, GH, why), 0);
	ev.vote_b[SIGNED_VOTE_LEN - 1] ^= 1;
	ck_assert_int_eq(evidence_verify(&ev, GH, why), TALLY_E_SIGNATURE);
}
END_TEST

Suite *tx_suite(void)
{
	Suite *s = suite_create("tx");
	TCase *tc = tcase_create("tx");

	tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
	tcase_add_test(tc, test_round_trip_every_kind);
	tcase_add_test(tc, test_kind_fields_survive);
	tcase_add_test(tc, test_truncation_rejected);
	tcase_add_test(tc, test_trailing_rejected);
	tcase_add_test(tc, test_version_and_kind);
	tcase_add_test(tc, test_out_of_range_bodies);
	tcase_add_test(tc, test_length_limits);
	tcase_add_test(tc, test_signature_checks);
	tcase_add_test(tc, test_hash);
	tcase_add_test(tc, test_check_accepts);
	tcase_add_test(tc, test_check_wrong_chain);
	tcase_add_test(tc, test_check_bad_signature);
	tcase_add_test(tc, test_check_lease_open_rules);
	tcase_add_test(tc, test_check_rules_at_block_time);
	tcase_add_test(tc, test_evidence_votes_strict);
	suite_add_tcase(s, tc);
	return s;
}
