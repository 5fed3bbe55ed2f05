/* State proofs (lib/chain/state_proof.h): a proof made from a state leads to
 * its root and yields the entry, or proves it absent; any change to the
 * entries or siblings, or a proof of another bucket, is refused; the
 * decoder is strict. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/memstate.h"
#include "lib/chain/state_proof.h"
#include "lib/errors.h"

static struct memstate *mem;
static struct state st;
static uint8_t lease_key[STATE_KEY_LEN];
static struct lease lease;

/* An account id whose key falls in bucket, found by counting up from seed
 * (one in 65536 does: a test second at most). */
static void key_in_bucket(uint32_t bucket, uint32_t seed, uint8_t id[32])
{
	uint8_t key[STATE_KEY_LEN];

	memset(id, 0, 32);
	for (uint32_t i = seed;; i++) {
		memcpy(id, &i, sizeof(i));
		state_key(key, STATE_KEY_ACCOUNT, id);
		if (state_bucket_of(key, sizeof(key)) == bucket)
			return;
	}
}

/* A state of 200 accounts, one lease, and two more accounts in the lease's
 * bucket, so its proof holds three entries. */
static void setup(void)
{
	struct state_backend be;
	struct account a = { .balance = 5, .nonce = 1 };
	uint8_t id[32];

	mem = memstate_new();
	ck_assert_ptr_nonnull(mem);
	be = memstate_backend(mem);
	ck_assert_int_eq(state_open(&st, &be, 0), 0);
	for (uint32_t i = 0; i < 200; i++) {
		memset(id, 0, sizeof(id));
		memcpy(id, &i, sizeof(i));
		id[31] = 0xaa;
		a.balance = i;
		ck_assert_int_eq(state_account_put(&st, id, &a), 0);
	}
	memset(&lease, 0, sizeof(lease));
	memset(lease.id, 0x42, LEASE_ID_LEN);
	lease.contract.version = CONTRACT_VERSION;
	strcpy(lease.contract.chain_id, "t");
	strcpy(lease.contract.vm.image, "tiny");
	lease.contract.deposit = 1000;
	lease.state = LEASE_OPENED;
	lease.escrow = 1000;
	ck_assert_int_eq(state_lease_put(&st, &lease), 0);
	state_key(lease_key, STATE_KEY_LEASE, lease.id);
	uint32_t bucket = state_bucket_of(lease_key, STATE_KEY_LEN);
	key_in_bucket(bucket, 1, id);
	ck_assert_int_eq(state_account_put(&st, id, &a), 0);
	key_in_bucket(bucket, ((uint32_t *)(void *)id)[0] + 1, id);
	ck_assert_int_eq(state_account_put(&st, id, &a), 0);
	ck_assert_int_eq(state_root_update(&st), 0);
}

static void teardown(void)
{
	state_close(&st);
	memstate_free(mem);
}

START_TEST(a_proof_leads_to_the_root)
{
	struct state_proof p;
	uint8_t root[HASH_LEN], again[HASH_LEN];
	const uint8_t *val;
	size_t vlen;
	struct lease got;
	char why[WHY_MAX];

	state_root(&st, root);
	ck_assert_int_eq(state_root_recompute(&st, again), 0);
	ck_assert_mem_eq(root, again, HASH_LEN);
	ck_assert_int_eq(state_proof_make(&st, lease_key, STATE_KEY_LEN, &p), 0);
	ck_assert_uint_eq(p.n, 3);
	state_proof_root(&p, again);
	ck_assert_mem_eq(root, again, HASH_LEN);
	ck_assert_int_eq(state_proof_verify(&p, lease_key, STATE_KEY_LEN, root, &val, &vlen), 0);
	ck_assert_ptr_nonnull(val);
	ck_assert_int_eq(state_proof_lease(&p, lease.id, root, &got, why), 0);
	ck_assert_uint_eq(got.escrow, 1000);
	ck_assert_mem_eq(got.id, lease.id, LEASE_ID_LEN);

	/* Another root (the state after one more write) is refused. */
	struct account a = { 1, 1 };
	uint8_t id[32] = { 7 };
	ck_assert_int_eq(state_account_put(&st, id, &a), 0);
	struct state_proof q;
	ck_assert_int_eq(state_proof_make(&st, lease_key, STATE_KEY_LEN, &q), TALLY_E_STATE);
	ck_assert_int_eq(state_root_update(&st), 0);
	state_root(&st, again);
	ck_assert_int_eq(state_proof_lease(&p, lease.id, again, &got, why), TALLY_E_PROOF_ROOT);
	ck_assert_ptr_nonnull(strstr(why, "does not lead to the block's state root"));
	state_proof_free(&p);
}
END_TEST

START_TEST(absence_is_proven)
{
	struct state_proof p;
	uint8_t root[HASH_LEN], key[STATE_KEY_LEN], id[32];
	const uint8_t *val;
	size_t vlen;
	struct lease got;
	char why[WHY_MAX];

	state_root(&st, root);
	/* A lease id in the same bucket as the lease, which the state lacks. */
	memset(id, 0, sizeof(id));
	for (uint32_t i = 0;; i++) {
		memcpy(id, &i, sizeof(i));
		state_key(key, STATE_KEY_LEASE, id);
		if (state_bucket_of(key, sizeof(key)) == state_bucket_of(lease_key, STATE_KEY_LEN))
			break;
	}
	ck_assert_int_eq(state_proof_make(&st, key, sizeof(key), &p), 0);
	ck_assert_int_eq(state_proof_verify(&p, key, sizeof(key), root, &val, &vlen), 0);
	ck_assert_ptr_null(val);
	ck_assert_int_eq(state_proof_lease(&p, id, root, &got, why), TALLY_E_NOTFOUND);
	state_proof_free(&p);

	/* An empty bucket: no entry, and still the root. */
	for (uint32_t i = 1000;; i++) {
		memcpy(id, &i, sizeof(i));
		state_key(key, STATE_KEY_LEASE, id);
		ck_assert_int_eq(state_proof_make(&st, key, sizeof(key), &p), 0);
		if (p.n == 0)
			break;
		state_proof_free(&p);
	}
	ck_assert_int_eq(state_proof_verify(&p, key, sizeof(key), root, &val, &vlen), 0);
	ck_assert_ptr_null(val);
	/* And it proves nothing about a key of another bucket. */
	ck_assert_int_eq(state_proof_verify(&p, lease_key, STATE_KEY_LEN, root, &val, &vlen),
			 TALLY_E_PROOF_INDEX);
	state_proof_free(&p);
}
END_TEST

START_TEST(any_change_is_refused)
{
	struct state_proof p;
	uint8_t root[HASH_LEN];
	const uint8_t *val;
	size_t vlen;

	state_root(&st, root);
	ck_assert_int_eq(state_proof_make(&st, lease_key, STATE_KEY_LEN, &p), 0);
	for (size_t i = 0; i < p.n; i++) {
		for (size_t k = 0; k < p.e[i].vlen; k += 7) {
			p.e[i].value[k] ^= 1;
			ck_assert_int_eq(state_proof_verify(&p, lease_key, STATE_KEY_LEN, root, &val,
							    &vlen), TALLY_E_PROOF_ROOT);
			p.e[i].value[k] ^= 1;
		}
	}
	for (int k = 0; k < STATE_TREE_LEVELS; k++) {
		p.sibling[k][k] ^= 0x80;
		ck_assert_int_eq(state_proof_verify(&p, lease_key, STATE_KEY_LEN, root, &val, &vlen),
				 TALLY_E_PROOF_ROOT);
		p.sibling[k][k] ^= 0x80;
	}
	/* Dropping an entry of the bucket changes its hash too. */
	p.n--;
	ck_assert_int_eq(state_proof_verify(&p, lease_key, STATE_KEY_LEN, root, &val, &vlen),
			 TALLY_E_PROOF_ROOT);
	p.n++;
	ck_assert_int_eq(state_proof_verify(&p, lease_key, STATE_KEY_LEN, root, &val, &vlen), 0);
	state_proof_free(&p);
}
END_TEST

START_TEST(the_decoder_is_strict)
{
	struct state_proof p, q;
	struct enc e;
	uint8_t *b;
	size_t n;

	ck_assert_int_eq(state_proof_make(&st, lease_key, STATE_KEY_LEN, &p), 0);
	enc_init(&e);
	state_proof_encode(&e, &p);
	ck_assert_int_eq(enc_error(&e), 0);
	b = enc_take(&e, &n);
	ck_assert_uint_eq(n, 1 + 4 + 4 + 3 * (4 + STATE_KEY_LEN + 4) + p.e[0].vlen + p.e[1].vlen +
			  p.e[2].vlen + STATE_TREE_LEVELS * HASH_LEN);
	ck_assert_int_eq(state_proof_decode(&q, b, n), 0);
	enc_init(&e);
	state_proof_encode(&e, &q);
	ck_assert_uint_eq(e.len, n);
	ck_assert_mem_eq(e.buf, b, n);
	enc_free(&e);
	state_proof_free(&q);

	for (size_t cut = 0; cut < n; cut++)
		ck_assert_int_ne(state_proof_decode(&q, b, cut), 0);
	uint8_t *longer = malloc(n + 1);
	memcpy(longer, b, n);
	longer[n] = 0;
	ck_assert_int_eq(state_proof_decode(&q, longer, n + 1), TALLY_E_TRAILING);
	free(longer);

	b[0] = 2;
	ck_assert_int_eq(state_proof_decode(&q, b, n), TALLY_E_VERSION);
	b[0] = 1;
	b[3] = 1;                        /* bucket + 65536 */
	ck_assert_int_eq(state_proof_decode(&q, b, n), TALLY_E_RANGE);
	b[3] = 0;
	/* The first two entries swapped: out of order. */
	size_t e0 = 9, e1 = e0 + 8 + STATE_KEY_LEN + p.e[0].vlen;
	size_t l0 = e1 - e0, l1 = 8 + STATE_KEY_LEN + p.e[1].vlen;
	uint8_t *sw = malloc(n);
	memcpy(sw, b, n);
	memcpy(sw + e0, b + e1, l1);
	memcpy(sw + e0 + l1, b + e0, l0);
	ck_assert_int_eq(state_proof_decode(&q, sw, n), TALLY_E_ENCODING);
	/* A key of another bucket. */
	memcpy(sw, b, n);
	sw[e0 + 4 + 5] ^= 1;
	ck_assert_int_eq(state_proof_decode(&q, sw, n), TALLY_E_ENCODING);
	/* A key of another length. */
	memcpy(sw, b, n);
	sw[e0] = STATE_KEY_LEN - 1;
	ck_assert_int_ne(state_proof_decode(&q, sw, n), 0);
	free(sw);
	free(b);

	/* The copy is a proof of its own. */
	uint8_t r1[HASH_LEN], r2[HASH_LEN];
	ck_assert_int_eq(state_proof_copy(&q, &p), 0);
	state_proof_free(&p);
	state_proof_root(&q, r1);
	state_root(&st, r2);
	ck_assert_mem_eq(r1, r2, HASH_LEN);
	state_proof_free(&q);
}
END_TEST

/* SHA-256's answer: the bucket as docs/FORMATS.md section 9 defines it. */
static uint32_t bucket_by_sha256(const uint8_t *key, size_t klen)
{
	uint8_t h[HASH_LEN];

	sha256(key, klen, h);
	return (uint32_t)h[0] << 8 | h[1];
}

/* state_bucket_of remembers the buckets of recent keys: it must answer
 * each key with its own bucket, whatever it was asked before, also for
 * keys that differ in one byte anywhere (some of them sharing a place in
 * what it remembers) and for keys of other lengths. */
START_TEST(bucket_of_answers_each_key_its_own)
{
	enum { N = 3 * STATE_KEY_LEN };
	uint8_t keys[N][STATE_KEY_LEN], base[STATE_KEY_LEN];
	uint32_t want[N];
	size_t differ = 0;

	for (size_t i = 0; i < sizeof(base); i++)
		base[i] = (uint8_t)(0x5a + 7 * i);
	base[0] = STATE_KEY_LEASE;
	/* The base key with byte k changed, in three ways each. */
	for (size_t k = 0; k < N; k++) {
		memcpy(keys[k], base, STATE_KEY_LEN);
		keys[k][k % STATE_KEY_LEN] ^= (uint8_t)(1 + k / STATE_KEY_LEN);
		want[k] = bucket_by_sha256(keys[k], STATE_KEY_LEN);
	}
	for (size_t k = 0; k < N; k++)
		differ += want[k] != want[0];
	ck_assert_uint_gt(differ, N / 2);   /* the test can tell buckets apart */
	/* Asked over and over, interleaved with the base key, in both orders. */
	for (int round = 0; round < 3; round++) {
		for (size_t k = 0; k < N; k++) {
			size_t j = round == 1 ? N - 1 - k : k;

			ck_assert_uint_eq(state_bucket_of(keys[j], STATE_KEY_LEN), want[j]);
			ck_assert_uint_eq(state_bucket_of(base, STATE_KEY_LEN),
					  bucket_by_sha256(base, STATE_KEY_LEN));
			ck_assert_uint_eq(state_bucket_of(keys[j], STATE_KEY_LEN), want[j]);
		}
	}
	/* A key of another length (a proof's, from the network) with the same
	 * leading bytes is its own key too. */
	ck_assert_uint_eq(state_bucket_of(base, STATE_KEY_LEN - 1),
			  bucket_by_sha256(base, STATE_KEY_LEN - 1));
	ck_assert_uint_eq(state_bucket_of(base, STATE_KEY_LEN),
			  bucket_by_sha256(base, STATE_KEY_LEN));
}
END_TEST

Suite *state_proof_suite(void)
{
	Suite *s = suite_create("state_proof");
	TCase *tc = tcase_create("state_proof");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_proof_leads_to_the_root);
	tcase_add_test(tc, absence_is_proven);
	tcase_add_test(tc, any_change_is_refused);
	tcase_add_test(tc, the_decoder_is_strict);
	tcase_add_test(tc, bucket_of_answers_each_key_its_own);
	suite_add_tcase(s, tc);
	return s;
}
