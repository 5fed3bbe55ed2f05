/* The liveness rule (lib/chain/liveness.c, docs/FORMATS.md section 10.10)
 * on chains of four validators whose blocks carry real certificates, built
 * and replayed as an auditor replays them (lib/chain/replay.h): misses
 * counted from the certificate each block names, the count reset by a
 * signature, jailing at exactly the window without a slash, UNJAIL after
 * the term, the limits that keep the chain live, the named certificate
 * deciding when nodes hold different ones, and a block whose liveness
 * effect was left out refused although it is signed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/exec.h"
#include "lib/chain/memstate.h"
#include "lib/chain/replay.h"
#include "lib/chain/trial.h"
#include "lib/errors.h"

#define CHAIN "liveness-test"
#define NVAL 4
#define STAKE0 1000
#define WINDOW 3
#define JAIL 5
#define T0 1700000000000000000ull
#define SEC 1000000000ull

enum { V0, V1, V2, V3 };
#define ALL 0xf                       /* signer masks: bit i = validator i */
#define BUT(i) (ALL & ~(1u << (i)))

static struct tally_key keys[NVAL];
static struct genesis gen;
static uint8_t gen_hash[HASH_LEN];
static uint64_t nonce[NVAL];

static int cmp_val(const void *a, const void *b)
{
	return memcmp(((const struct validator *)a)->pubkey,
		      ((const struct validator *)b)->pubkey, PUBKEY_LEN);
}

static void make_genesis(uint64_t window)
{
	uint8_t seed[32];

	memset(&gen, 0, sizeof(gen));
	gen.version = 2;
	gen.params = (struct chain_params){ .unbonding_blocks = 20, .slash_ppm = 100000,
					    .jail_blocks = JAIL, .min_self_stake = 1,
					    .max_validators = NVAL, .liveness_window = window };
	strcpy(gen.chain_id, CHAIN);
	gen.genesis_time_ns = T0;
	gen.validators.n = NVAL;
	for (int i = 0; i < NVAL; i++) {
		memset(seed, 0x30 + i, sizeof(seed));
		ck_assert_int_eq(key_from_seed(&keys[i], seed), 0);
		memcpy(gen.validators.v[i].pubkey, keys[i].pub, PUBKEY_LEN);
		gen.validators.v[i].stake = STAKE0;
		nonce[i] = 0;
	}
	qsort(gen.validators.v, NVAL, sizeof(gen.validators.v[0]), cmp_val);
	genesis_hash(&gen, gen_hash);
}

static void start(struct replay *r, uint64_t window)
{
	char why[WHY_MAX];

	make_genesis(window);
	ck_assert_msg(replay_init(r, &gen, why) == 0, "%s", why);
}

/* A certificate for b signed by the validators of mask that are in set. */
static void certify(const struct block *b, const struct validator_set *set, unsigned mask,
		    struct commit_cert *c)
{
	struct vote v = { .type = VOTE_PRECOMMIT, .height = b->header.height };

	block_id(&b->header, v.block_id);
	memset(c, 0, sizeof(*c));
	c->height = v.height;
	memcpy(c->block_id, v.block_id, HASH_LEN);
	for (size_t i = 0; i < set->n; i++) {
		for (int k = 0; k < NVAL; k++) {
			if (!(mask & (1u << k)) || memcmp(keys[k].pub, set->v[i].pubkey, PUBKEY_LEN))
				continue;
			memcpy(c->sigs[c->n].validator, keys[k].pub, PUBKEY_LEN);
			ck_assert_int_eq(vote_sign(&v, &keys[k], gen_hash, c->sigs[c->n].sig), 0);
			c->n++;
		}
	}
}

/* An UNJAIL of who, signed, as block bytes. */
static void unjail_tx(int who, struct block_tx *bt)
{
	struct tx t;
	struct enc e;

	memset(&t, 0, sizeof(t));
	t.version = TX_VERSION;
	t.kind = TX_UNJAIL;
	strcpy(t.chain_id, CHAIN);
	memcpy(t.signer, keys[who].pub, PUBKEY_LEN);
	t.nonce = nonce[who];
	ck_assert_int_eq(tx_sign(&t, &keys[who], gen_hash), 0);
	enc_init(&e);
	tx_encode(&e, &t);
	ck_assert_int_eq(enc_error(&e), 0);
	bt->bytes = enc_take(&e, &bt->len);
}

/* The next block as an honest proposer (V0) builds it on r, with the
 * transactions given (taken over by b); its header from executing it on a
 * trial. 0, or the execution's error. forget, when >= 0, wipes that
 * validator's liveness count in the trial first: the block a proposer who
 * leaves the rule out would build. */
static int build(struct replay *r, struct block *b, struct block_tx *txs, size_t ntx,
		 int forget, struct exec_result *er, char *why)
{
	struct last_commit lc;
	struct trial t;
	int rc;

	memset(b, 0, sizeof(*b));
	trial_next_header(&r->v, T0 + (r->v.height + 1) * SEC, keys[V0].pub, &b->header);
	b->ntx = ntx;
	b->txs = txs;
	ck_assert_int_eq(trial_begin(&t, &r->state, &r->v.usage), 0);
	if (forget >= 0) {
		struct liveness l = { 0 };

		ck_assert_int_eq(state_liveness_put(&t.state, keys[forget].pub, &l), 0);
	}
	chain_last_commit(&r->v, &lc);
	rc = exec_block(&t.state, b, &lc, NULL, NULL, er, NULL, why);
	trial_end(&t);
	if (!rc)
		exec_fill_header(b, er);
	return rc;
}

static void block_drop(struct block *b)
{
	for (size_t i = 0; i < b->ntx; i++)
		free((void *)b->txs[i].bytes);   /* signed here, owned */
	b->ntx = 0;
	b->txs = NULL;
}

/* One block built, signed by mask (of the set that signs it) and replayed;
 * what execution did. */
static struct exec_result step(struct replay *r, unsigned mask)
{
	struct exec_result er;
	struct commit_cert c;
	struct block b;
	char why[WHY_MAX];

	ck_assert_msg(build(r, &b, NULL, 0, -1, &er, why) == 0, "%s", why);
	certify(&b, &r->v.vals, mask, &c);
	ck_assert_msg(replay_block(r, &b, &c, NULL, NULL, why) == 0, "%s", why);
	return er;
}

static struct liveness live(struct replay *r, int who)
{
	struct liveness l;
	int rc = state_liveness_get(&r->state, keys[who].pub, &l);

	ck_assert(rc == 0 || rc == TALLY_E_NOTFOUND);
	return l;
}

static struct validator_entry val(struct replay *r, int who)
{
	struct validator_entry v;

	ck_assert_int_eq(state_validator_get(&r->state, keys[who].pub, &v), 0);
	return v;
}

static bool signs_next(struct replay *r, int who)
{
	return valset_find(&r->v.vals, keys[who].pub) != NULL;
}

START_TEST(misses_count_and_a_signature_resets)
{
	struct replay r;

	start(&r, WINDOW);
	step(&r, BUT(V3));                        /* block 1: nothing to count yet */
	ck_assert_uint_eq(live(&r, V3).missed, 0);
	step(&r, BUT(V3));                        /* block 2 counts block 1 */
	ck_assert_uint_eq(live(&r, V3).missed, 1);
	step(&r, ALL);                            /* counts block 2, missed too */
	ck_assert_uint_eq(live(&r, V3).missed, 2);
	step(&r, BUT(V3));                        /* counts block 3, signed */
	ck_assert_uint_eq(live(&r, V3).missed, 0);
	/* Entry gone with the count: nothing left in the state. */
	ck_assert_int_eq(state_liveness_get(&r.state, keys[V3].pub, &(struct liveness){ 0 }),
			 TALLY_E_NOTFOUND);
	step(&r, BUT(V3));
	step(&r, ALL);                            /* two misses, then a signature */
	ck_assert_uint_eq(live(&r, V3).missed, 2);
	step(&r, ALL);
	ck_assert_uint_eq(live(&r, V3).missed, 0);
	ck_assert(signs_next(&r, V3));
	/* The others signed every block: never counted. */
	for (int i = V0; i < V3; i++)
		ck_assert_uint_eq(live(&r, i).missed, 0);
	replay_free(&r);
}
END_TEST

START_TEST(jailed_at_the_window_without_slash_then_unjails)
{
	struct exec_result er;
	struct block_tx *tx;
	struct commit_cert c;
	struct block b;
	char why[WHY_MAX];
	struct replay r;

	start(&r, WINDOW);
	for (int h = 1; h <= WINDOW; h++) {
		er = step(&r, BUT(V3));
		ck_assert_uint_eq(er.downtime.n, 0);
		ck_assert(signs_next(&r, V3));
	}
	ck_assert_uint_eq(live(&r, V3).missed, WINDOW - 1);
	er = step(&r, BUT(V3));                   /* block 4: the third miss in a row */
	ck_assert_uint_eq(r.v.height, WINDOW + 1);
	ck_assert_uint_eq(er.downtime.n, 1);
	ck_assert_mem_eq(er.downtime.pub[0], keys[V3].pub, PUBKEY_LEN);
	ck_assert(val(&r, V3).jailed);
	ck_assert_uint_eq(val(&r, V3).stake, STAKE0);          /* no slash */
	ck_assert_uint_eq(live(&r, V3).jailed_until, WINDOW + 1 + JAIL);
	ck_assert_uint_eq(live(&r, V3).missed, 0);
	ck_assert(!signs_next(&r, V3));                         /* out from block 5 */
	ck_assert_uint_eq(r.v.vals.n, NVAL - 1);
	/* Block 5 still counts block 4's set, V3 in it: jailed, not counted. */
	step(&r, BUT(V3));
	ck_assert_uint_eq(live(&r, V3).missed, 0);
	while (r.v.height + 2 < WINDOW + 1 + JAIL)
		step(&r, ALL);
	/* Block 8: before the term, the UNJAIL makes the block invalid. */
	tx = calloc(1, sizeof(*tx));
	ck_assert_ptr_nonnull(tx);
	unjail_tx(V3, tx);
	ck_assert_int_eq(build(&r, &b, tx, 1, -1, &er, why), TALLY_E_STATE);
	ck_assert_msg(strstr(why, "jailed until block 9"), "%s", why);
	step(&r, ALL);
	/* Block 9: it applies, and V3 signs from block 10 on. */
	ck_assert_uint_eq(r.v.height + 1, WINDOW + 1 + JAIL);
	ck_assert_msg(build(&r, &b, tx, 1, -1, &er, why) == 0, "%s", why);
	certify(&b, &r.v.vals, ALL, &c);
	ck_assert_msg(replay_block(&r, &b, &c, NULL, NULL, why) == 0, "%s", why);
	block_drop(&b);
	free(tx);
	nonce[V3]++;
	ck_assert(!val(&r, V3).jailed);
	ck_assert_uint_eq(val(&r, V3).stake, STAKE0);
	ck_assert(signs_next(&r, V3));
	step(&r, ALL);
	step(&r, ALL);
	ck_assert_uint_eq(live(&r, V3).missed, 0);
	ck_assert_int_eq(state_liveness_get(&r.state, keys[V3].pub, &(struct liveness){ 0 }),
			 TALLY_E_NOTFOUND);
	replay_free(&r);
}
END_TEST

/* Window 0 (and every chain begun before the rule): nothing counted. */
START_TEST(window_zero_is_off)
{
	struct replay r;

	start(&r, 0);
	for (int h = 1; h <= 10; h++)
		step(&r, BUT(V3));
	ck_assert_uint_eq(live(&r, V3).missed, 0);
	ck_assert(!val(&r, V3).jailed);
	ck_assert(signs_next(&r, V3));
	replay_free(&r);
}
END_TEST

/* Two nodes hold different valid certificates of block 4; block 5 names
 * the one without V3. Both reach the same state (the one that held the
 * other adopts the named one, as a node does), and execution refuses a
 * certificate that is not the named one. */
START_TEST(the_named_certificate_decides)
{
	struct replay a, b;
	struct commit_cert full, part;
	struct exec_result er;
	struct last_commit lc;
	struct merkle_frontier usage;
	struct block blk;
	char why[WHY_MAX];
	uint8_t root_a[HASH_LEN], root_b[HASH_LEN];

	start(&a, WINDOW);
	ck_assert_msg(replay_init(&b, &gen, why) == 0, "%s", why);
	for (int h = 1; h < WINDOW; h++) {
		struct block x;

		ck_assert_msg(build(&a, &x, NULL, 0, -1, &er, why) == 0, "%s", why);
		certify(&x, &a.v.vals, BUT(V3), &part);
		ck_assert_msg(replay_block(&a, &x, &part, NULL, NULL, why) == 0, "%s", why);
		ck_assert_msg(replay_block(&b, &x, &part, NULL, NULL, why) == 0, "%s", why);
	}
	/* Block 3: a received V3's late precommit, b did not. */
	ck_assert_msg(build(&a, &blk, NULL, 0, -1, &er, why) == 0, "%s", why);
	certify(&blk, &a.v.vals, ALL, &full);
	certify(&blk, &a.v.vals, BUT(V3), &part);
	ck_assert_msg(replay_block(&a, &blk, &full, NULL, NULL, why) == 0, "%s", why);
	ck_assert_msg(replay_block(&b, &blk, &part, NULL, NULL, why) == 0, "%s", why);
	/* b proposes block 4, naming its certificate: V3's third miss. */
	ck_assert_msg(build(&b, &blk, NULL, 0, -1, &er, why) == 0, "%s", why);
	ck_assert_uint_eq(er.downtime.n, 1);
	/* a's own certificate is not the one named: not executed with it. */
	chain_last_commit(&a.v, &lc);
	{
		struct trial t;

		ck_assert_int_eq(trial_begin(&t, &a.state, &a.v.usage), 0);
		ck_assert_int_eq(exec_block(&t.state, &blk, &lc, NULL, NULL, &er, NULL, why),
				 TALLY_E_CERT);
		ck_assert_msg(strstr(why, "last_commit_hash names"), "%s", why);
		trial_end(&t);
	}
	ck_assert_int_eq(chain_verify_header(&a.v, &blk, &part, &usage, why), TALLY_E_LINK);
	/* Adopting the named one, a reaches what b reaches. */
	ck_assert_msg(chain_adopt_last_cert(&a.v, &blk.header, &part, why) == 0, "%s", why);
	certify(&blk, &b.v.vals, BUT(V3), &part);
	ck_assert_msg(replay_block(&a, &blk, &part, NULL, NULL, why) == 0, "%s", why);
	ck_assert_msg(replay_block(&b, &blk, &part, NULL, NULL, why) == 0, "%s", why);
	state_root(&a.state, root_a);
	state_root(&b.state, root_b);
	ck_assert_mem_eq(root_a, root_b, HASH_LEN);
	ck_assert(val(&a, V3).jailed);
	replay_free(&a);
	replay_free(&b);
}
END_TEST

/* A block whose proposer left the jailing out, signed by a quorum all the
 * same: the auditor's replay refuses it (its state root is not the one
 * the rule gives). */
START_TEST(a_block_without_its_liveness_effect_is_refused)
{
	struct exec_result er;
	struct commit_cert c;
	struct block b;
	char why[WHY_MAX];
	struct replay r;

	start(&r, WINDOW);
	for (int h = 1; h <= WINDOW; h++)
		step(&r, BUT(V3));
	ck_assert_msg(build(&r, &b, NULL, 0, V3, &er, why) == 0, "%s", why);
	ck_assert_uint_eq(er.downtime.n, 0);
	certify(&b, &r.v.vals, BUT(V3), &c);
	ck_assert_int_eq(replay_block(&r, &b, &c, NULL, NULL, why), TALLY_E_STATEROOT);
	ck_assert_msg(strstr(why, "block 4"), "%s", why);
	replay_free(&r);
}
END_TEST

/* The limits, on the rule itself: one block jails less than 1/3 of the
 * power of the set that signed the last block, and never the last
 * candidates; a validator spared keeps its count. */
START_TEST(limits_keep_the_chain_live)
{
	struct liveness_jailed j;
	struct commit_cert c = { .height = 1 };
	struct last_commit lc = { &c, NULL };
	struct liveness l = { .missed = WINDOW - 1 };
	struct validator_set set;
	uint8_t named[HASH_LEN];
	struct replay r;

	start(&r, WINDOW);
	set = r.v.vals;
	lc.signers = &set;
	/* V2 and V3 at the brink, and neither in the certificate. */
	for (int k = V2; k <= V3; k++)
		ck_assert_int_eq(state_liveness_put(&r.state, keys[k].pub, &l), 0);
	for (size_t i = 0; i < set.n; i++)
		if (memcmp(set.v[i].pubkey, keys[V2].pub, PUBKEY_LEN) &&
		    memcmp(set.v[i].pubkey, keys[V3].pub, PUBKEY_LEN))
			memcpy(c.sigs[c.n++].validator, set.v[i].pubkey, PUBKEY_LEN);
	cert_hash(&c, named);
	ck_assert_int_eq(state_liveness(&r.state, 2, named, &lc, &j), 0);
	/* One of them (the smaller pubkey first): 1/4; both would be 1/2. */
	ck_assert_uint_eq(j.n, 1);
	int first = memcmp(keys[V2].pub, keys[V3].pub, PUBKEY_LEN) < 0 ? V2 : V3;
	int second = first == V2 ? V3 : V2;
	ck_assert(val(&r, first).jailed);
	ck_assert(!val(&r, second).jailed);
	ck_assert_uint_eq(live(&r, second).missed, WINDOW);
	/* The next block, with the three left: 1/3 is too much at once too. */
	set.n = 0;
	for (size_t i = 0; i < r.v.vals.n; i++)
		if (memcmp(r.v.vals.v[i].pubkey, keys[first].pub, PUBKEY_LEN))
			set.v[set.n++] = r.v.vals.v[i];
	c.height = 2;
	cert_hash(&c, named);
	ck_assert_int_eq(state_liveness(&r.state, 3, named, &lc, &j), 0);
	ck_assert_uint_eq(j.n, 0);
	ck_assert_uint_eq(live(&r, second).missed, WINDOW + 1);
	/* The last candidate is never jailed: V0 alone unjailed, missing from
	 * a certificate of a set of four (a quarter of its power). */
	for (int k = V0; k < NVAL; k++) {
		struct validator_entry v = val(&r, k);

		v.jailed = k != V0;
		ck_assert_int_eq(state_validator_put(&r.state, keys[k].pub, &v), 0);
	}
	l.missed = WINDOW - 1;
	ck_assert_int_eq(state_liveness_put(&r.state, keys[V0].pub, &l), 0);
	set = r.v.vals;
	c.height = 3;
	c.n = 0;
	cert_hash(&c, named);
	ck_assert_int_eq(state_liveness(&r.state, 4, named, &lc, &j), 0);
	ck_assert_uint_eq(j.n, 0);
	ck_assert(!val(&r, V0).jailed);
	ck_assert_uint_eq(live(&r, V0).missed, WINDOW);
	/* Neither a missing certificate nor a missing set is taken. */
	lc.signers = NULL;
	ck_assert_int_eq(state_liveness(&r.state, 5, named, &lc, &j), TALLY_E_CERT);
	ck_assert_int_eq(state_liveness(&r.state, 5, named, NULL, &j), TALLY_E_CERT);
	replay_free(&r);
}
END_TEST

Suite *liveness_suite(void)
{
	Suite *s = suite_create("liveness");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, misses_count_and_a_signature_resets);
	tcase_add_test(tc, jailed_at_the_window_without_slash_then_unjails);
	tcase_add_test(tc, window_zero_is_off);
	tcase_add_test(tc, the_named_certificate_decides);
	tcase_add_test(tc, a_block_without_its_liveness_effect_is_refused);
	tcase_add_test(tc, limits_keep_the_chain_live);
	suite_add_tcase(s, tc);
	return s;
}
