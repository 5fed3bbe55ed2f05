/* Stake, unbonding, evidence and jailing (lib/chain/state.c, the rules of
 * docs/FORMATS.md sections 10.1, 10.8, 10.9 and 10.10) on an in-memory
 * state: who joins the set and when, unbonding paid at its release height
 * and not before, the slash and where it goes, the jail and its end, every
 * refusal with its error, and the state root after deletions. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/evidence.h"
#include "lib/chain/exec.h"
#include "lib/chain/memstate.h"
#include "lib/chain/replay.h"
#include "lib/errors.h"
#include "tests/support/chainbuild.h"

#define CHAIN "stake-test"
#define NVAL 3
#define STAKE0 1000
#define FUNDS 100000

enum { V0, V1, V2, A, B, NKEYS };

static struct tally_key keys[NKEYS];
static uint64_t nonce[NKEYS];
static struct genesis gen;
static struct genesis_account gen_acc[2];
static struct memstate *mem;
static struct state st;
static const uint8_t chain_hash[HASH_LEN] = { 7 };

static const struct chain_params params = {
	.unbonding_blocks = 10, .slash_ppm = 100000, .jail_blocks = 5,
	.min_self_stake = 500, .max_validators = 3, .liveness_window = 0,
};

static int cmp_val(const void *a, const void *b)
{
	return memcmp(((const struct validator *)a)->pubkey,
		      ((const struct validator *)b)->pubkey, PUBKEY_LEN);
}

static int cmp_acc(const void *a, const void *b)
{
	return memcmp(((const struct genesis_account *)a)->pubkey,
		      ((const struct genesis_account *)b)->pubkey, PUBKEY_LEN);
}

static void open_state(const struct genesis *g)
{
	struct state_backend be;

	mem = memstate_new();
	ck_assert_ptr_nonnull(mem);
	be = memstate_backend(mem);
	ck_assert_int_eq(state_open(&st, &be, 0), 0);
	ck_assert_int_eq(state_load_genesis(&st, g), 0);
	ck_assert_int_eq(state_root_update(&st), 0);
}

/* Three validators of equal stake; A and B funded accounts. */
static void setup(void)
{
	uint8_t seed[32];

	for (int i = 0; i < NKEYS; i++) {
		memset(seed, 0x60 + i, sizeof(seed));
		ck_assert_int_eq(key_from_seed(&keys[i], seed), 0);
		nonce[i] = 0;
	}
	memset(&gen, 0, sizeof(gen));
	gen.version = 2;
	gen.params = params;
	strcpy(gen.chain_id, CHAIN);
	gen.validators.n = NVAL;
	for (int i = 0; i < NVAL; i++) {
		memcpy(gen.validators.v[i].pubkey, keys[i].pub, PUBKEY_LEN);
		gen.validators.v[i].stake = STAKE0;
	}
	qsort(gen.validators.v, NVAL, sizeof(gen.validators.v[0]), cmp_val);
	for (int i = 0; i < 2; i++) {
		memcpy(gen_acc[i].pubkey, keys[A + i].pub, PUBKEY_LEN);
		gen_acc[i].balance = FUNDS;
	}
	qsort(gen_acc, 2, sizeof(gen_acc[0]), cmp_acc);
	gen.accounts = gen_acc;
	gen.naccounts = 2;
	open_state(&gen);
}

static void teardown(void)
{
	state_close(&st);
	memstate_free(mem);
}

/* Applies one transaction of who at height: its error, why[] its reason. */
static int apply(int who, struct tx *t, uint64_t height, struct tx_receipt *r, char *why)
{
	struct block_ctx bc = { CHAIN, height, 1700000000000000000ull + height };
	uint8_t hash[HASH_LEN];
	struct enc e;
	int rc;

	t->version = TX_VERSION;
	strcpy(t->chain_id, CHAIN);
	memcpy(t->signer, keys[who].pub, PUBKEY_LEN);
	t->nonce = nonce[who];
	ck_assert_int_eq(tx_sign(t, &keys[who], chain_hash), 0);
	enc_init(&e);
	tx_encode(&e, t);
	ck_assert_int_eq(enc_error(&e), 0);
	tx_hash(e.buf, e.len, hash);
	rc = state_apply_tx(&st, &bc, t, e.buf, e.len, hash, r, why);
	enc_free(&e);
	if (!rc)
		nonce[who]++;
	return rc;
}

static int amount_tx(int who, uint8_t kind, uint64_t amount, uint64_t height, char *why)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = kind;
	t.u.stake.amount = amount;
	return apply(who, &t, height, NULL, why);
}

static void ok(int rc, const char *why)
{
	ck_assert_msg(rc == 0, "%s (%s)", why, tally_strerror(rc));
}

/* The end of block height: releases, root, and the next set. */
static void end_block(uint64_t height, struct validator_set *next)
{
	struct block b;
	struct exec_result r;
	uint8_t full[HASH_LEN];

	memset(&b, 0, sizeof(b));
	b.header.height = height;
	ck_assert_int_eq(exec_finish(&st, &b, NULL, &r), 0);
	ck_assert_int_eq(state_root_recompute(&st, full), 0);
	ck_assert_mem_eq(full, r.state_root, HASH_LEN);   /* deletions included */
	if (next)
		*next = r.next_vals;
}

static bool in_set(const struct validator_set *s, int who)
{
	return valset_find(s, keys[who].pub) != NULL;
}

static uint64_t balance(int who)
{
	struct account a;
	int rc = state_account_get(&st, keys[who].pub, &a);

	ck_assert(rc == 0 || rc == TALLY_E_NOTFOUND);
	return a.balance;
}

static uint64_t stake(int who)
{
	struct validator_entry v;
	int rc = state_validator_get(&st, keys[who].pub, &v);

	ck_assert(rc == 0 || rc == TALLY_E_NOTFOUND);
	return v.stake;
}

struct ub_sum {
	uint64_t n, total;
};

static int ub_add(void *ctx, const struct unbonding *u)
{
	struct ub_sum *s = ctx;

	s->n++;
	s->total += u->amount;
	return 0;
}

static struct ub_sum unbonding(void)
{
	struct ub_sum s = { 0 };

	ck_assert_int_eq(state_unbonding_each(&st, ub_add, &s), 0);
	return s;
}

static int supply_val(void *ctx, const uint8_t pub[PUBKEY_LEN], const struct validator_entry *v)
{
	(void)pub;
	*(uint64_t *)ctx += v->stake;
	return 0;
}

/* Every balance, stake and unbonding amount. */
static uint64_t supply(void)
{
	uint64_t sum = unbonding().total;

	for (int i = 0; i < NKEYS; i++)
		sum += balance(i);
	ck_assert_int_eq(state_validator_each(&st, supply_val, &sum), 0);
	return sum;
}

START_TEST(any_account_joins_by_stake)
{
	struct validator_set next;
	char why[WHY_MAX];

	/* Below the minimum it is a staker, not a candidate. */
	ok(amount_tx(A, TX_STAKE, 400, 1, why), why);
	ck_assert_uint_eq(balance(A), FUNDS - 400);
	ck_assert_uint_eq(stake(A), 400);
	end_block(1, &next);
	ck_assert_uint_eq(next.n, 3);
	ck_assert(!in_set(&next, A));
	/* At 1100 it is the largest: the set holds three, so one of the equal
	 * validators leaves, the one with the largest pubkey. */
	ok(amount_tx(A, TX_STAKE, 700, 2, why), why);
	end_block(2, &next);
	ck_assert_uint_eq(next.n, 3);
	ck_assert(in_set(&next, A));
	const uint8_t *largest = gen.validators.v[NVAL - 1].pubkey;
	ck_assert_ptr_null(valset_find(&next, largest));
	/* Sorted by pubkey, as every set. */
	ck_assert_int_eq(valset_check(&next), 0);
	/* More than the balance. */
	ck_assert_int_eq(amount_tx(B, TX_STAKE, FUNDS + 1, 3, why), TALLY_E_BALANCE);
}
END_TEST

START_TEST(unstake_pays_back_after_the_period)
{
	struct validator_set next;
	uint64_t before = supply();
	char why[WHY_MAX];

	ok(amount_tx(V0, TX_UNSTAKE, 300, 5, why), why);
	ck_assert_uint_eq(stake(V0), STAKE0 - 300);
	ck_assert_uint_eq(balance(V0), 0);
	ck_assert_uint_eq(unbonding().n, 1);
	ck_assert_uint_eq(unbonding().total, 300);
	ck_assert_uint_eq(supply(), before);
	end_block(5, &next);
	ck_assert(in_set(&next, V0));           /* 700 is above the minimum */
	ck_assert_uint_eq(next.v[0].stake + next.v[1].stake + next.v[2].stake, 3 * STAKE0 - 300);
	end_block(14, NULL);                    /* 5 + 10 - 1: not yet */
	ck_assert_uint_eq(balance(V0), 0);
	ck_assert_uint_eq(unbonding().n, 1);
	end_block(15, NULL);                    /* released at the end of 5 + 10 */
	ck_assert_uint_eq(balance(V0), 300);
	ck_assert_uint_eq(unbonding().n, 0);
	ck_assert_uint_eq(supply(), before);
	/* Below the minimum it leaves the set, its stake still an entry. */
	ok(amount_tx(V0, TX_UNSTAKE, 300, 16, why), why);
	end_block(16, &next);
	ck_assert(!in_set(&next, V0));
	ck_assert_uint_eq(next.n, 2);
	ck_assert_int_eq(amount_tx(V0, TX_UNSTAKE, 401, 17, why), TALLY_E_BALANCE);
	ck_assert_int_eq(amount_tx(A, TX_UNSTAKE, 1, 17, why), TALLY_E_UNAUTHORIZED);
	/* The set is never left empty. */
	ok(amount_tx(V1, TX_UNSTAKE, STAKE0, 18, why), why);
	ck_assert_int_eq(amount_tx(V2, TX_UNSTAKE, 501, 18, why), TALLY_E_STATE);
	ck_assert_msg(strstr(why, "validator set empty"), "%s", why);
	ok(amount_tx(V2, TX_UNSTAKE, 500, 18, why), why);   /* still at the minimum */
}
END_TEST

/* Two unstakes in one block are two entries; releases follow key order. */
START_TEST(unbonding_entries_are_separate)
{
	char why[WHY_MAX];

	ok(amount_tx(V0, TX_UNSTAKE, 10, 3, why), why);
	ok(amount_tx(V0, TX_UNSTAKE, 20, 3, why), why);
	ok(amount_tx(V1, TX_UNSTAKE, 5, 4, why), why);
	ck_assert_uint_eq(unbonding().n, 3);
	end_block(13, NULL);
	ck_assert_uint_eq(balance(V0), 30);
	ck_assert_uint_eq(balance(V1), 0);
	ck_assert_uint_eq(unbonding().n, 1);
	end_block(14, NULL);
	ck_assert_uint_eq(balance(V1), 5);
	ck_assert_uint_eq(unbonding().n, 0);
}
END_TEST

static void make_vote(struct signed_vote *sv, int who, uint64_t height, uint32_t round,
		      uint8_t id_byte)
{
	memset(sv, 0, sizeof(*sv));
	sv->v.type = VOTE_PRECOMMIT;
	sv->v.height = height;
	sv->v.round = round;
	memset(sv->v.block_id, id_byte, HASH_LEN);
	memcpy(sv->validator, keys[who].pub, PUBKEY_LEN);
	ck_assert_int_eq(vote_sign(&sv->v, &keys[who], chain_hash, sv->sig), 0);
}

static int evidence(int by, int offender, uint64_t vote_height, uint32_t round,
		    uint64_t height, struct tx_receipt *r, char *why)
{
	struct signed_vote x, y;
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_EVIDENCE;
	make_vote(&x, offender, vote_height, round, 0xaa);
	make_vote(&y, offender, vote_height, round, 0x11);
	ck_assert_int_eq(evidence_make(&t.u.evidence, &x, &y), 0);
	ck_assert_int_eq(evidence_verify(&t.u.evidence, chain_hash, why), 0);
	return apply(by, &t, height, r, why);
}

START_TEST(evidence_slashes_and_jails)
{
	struct validator_set next;
	struct tx_receipt r;
	struct liveness l;
	char why[WHY_MAX];
	uint64_t before;

	/* V1 unbonds 100 before its offence and 200 after it. */
	ok(amount_tx(V1, TX_UNSTAKE, 100, 2, why), why);
	ok(amount_tx(V1, TX_UNSTAKE, 200, 4, why), why);
	before = supply();
	ok(evidence(A, V1, 3, 0, 6, &r, why), why);
	/* 10% of the bonded 700 and of the 200 unbonding since the offence. */
	ck_assert_uint_eq(stake(V1), 630);
	ck_assert_uint_eq(unbonding().total, 100 + 180);
	ck_assert_uint_eq(r.slashed, 70 + 20);
	ck_assert_uint_eq(supply(), before - 90);           /* burned */
	ck_assert_uint_eq(nonce[A], 1);
	ck_assert_int_eq(state_liveness_get(&st, keys[V1].pub, &l), 0);
	ck_assert_uint_eq(l.jailed_until, 6 + 5);
	end_block(6, &next);
	ck_assert_uint_eq(next.n, 2);
	ck_assert(!in_set(&next, V1));
	/* The same offence twice, in any encoding: refused. */
	ck_assert_int_eq(evidence(B, V1, 3, 0, 7, NULL, why), TALLY_E_EXISTS);
	ck_assert_msg(strstr(why, "judged in block 6"), "%s", why);
	/* A jailed validator cannot leave itself out of a second offence. */
	ok(evidence(B, V1, 3, 1, 7, &r, why), why);
	ck_assert_uint_eq(r.slashed, 63 + 18);
	/* Older than the unbonding period (10 blocks before 14 is 4). */
	ck_assert_int_eq(evidence(B, V2, 3, 0, 14, NULL, why), TALLY_E_EXPIRED);
	ok(evidence(B, V2, 4, 0, 14, NULL, why), why);
	/* A non-validator, and jailing the last one. */
	ck_assert_int_eq(evidence(B, A, 4, 0, 14, NULL, why), TALLY_E_UNAUTHORIZED);
	ck_assert_int_eq(evidence(B, V0, 4, 0, 14, NULL, why), TALLY_E_STATE);
	ck_assert_msg(strstr(why, "validator set empty"), "%s", why);
	/* Votes from a later height than the block. */
	ck_assert_int_eq(evidence(B, V0, 15, 0, 14, NULL, why), TALLY_E_RANGE);
}
END_TEST

START_TEST(unjail_after_the_term)
{
	struct validator_set next;
	struct tx t;
	char why[WHY_MAX];

	memset(&t, 0, sizeof(t));
	t.kind = TX_UNJAIL;
	ck_assert_int_eq(apply(V1, &t, 2, NULL, why), TALLY_E_STATE);
	ck_assert_msg(strstr(why, "is not jailed"), "%s", why);
	ck_assert_int_eq(apply(A, &t, 2, NULL, why), TALLY_E_UNAUTHORIZED);
	ok(evidence(A, V1, 3, 0, 6, NULL, why), why);
	ck_assert_int_eq(apply(V1, &t, 10, NULL, why), TALLY_E_STATE);
	ck_assert_msg(strstr(why, "jailed until block 11"), "%s", why);
	ck_assert_uint_eq(nonce[V1], 0);
	ok(apply(V1, &t, 11, NULL, why), why);
	end_block(11, &next);
	ck_assert(in_set(&next, V1));
	ck_assert_uint_eq(stake(V1), 900);
	/* Its liveness entry is gone with the jail. */
	struct liveness l;
	ck_assert_int_eq(state_liveness_get(&st, keys[V1].pub, &l), TALLY_E_NOTFOUND);
	/* Unjailed below the minimum: a staker out of the set until it bonds. */
	ok(evidence(A, V1, 12, 0, 12, NULL, why), why);
	ok(amount_tx(V1, TX_UNSTAKE, 400, 13, why), why);   /* 810 - 400 = 410 */
	ok(apply(V1, &t, 17, NULL, why), why);
	end_block(17, &next);
	ck_assert(!in_set(&next, V1));
	end_block(23, NULL);                                /* the 400 come back */
	ck_assert_uint_eq(balance(V1), 400);
	ok(amount_tx(V1, TX_STAKE, 90, 24, why), why);
	end_block(24, &next);
	ck_assert(in_set(&next, V1));
}
END_TEST

/* A version-1 genesis has no params entry: UNSTAKE pays back at once. */
START_TEST(version1_unstake_at_once)
{
	char why[WHY_MAX];
	struct chain_params p;

	teardown();
	gen.version = 1;
	open_state(&gen);
	ck_assert_int_eq(state_params(&st, &p), 0);
	ck_assert_uint_eq(p.unbonding_blocks, 0);
	ck_assert_uint_eq(p.min_self_stake, 1);
	ok(amount_tx(V0, TX_UNSTAKE, 300, 5, why), why);
	ck_assert_uint_eq(balance(V0), 300);
	ck_assert_uint_eq(unbonding().n, 0);
}
END_TEST

/* An empty value deletes, in a state and through an overlay over it. */
START_TEST(deletion_through_an_overlay)
{
	struct memstate *over;
	struct state_backend below = memstate_backend(mem), be;
	struct state ov;
	char why[WHY_MAX];
	uint8_t root[HASH_LEN];

	ok(amount_tx(V0, TX_UNSTAKE, 10, 1, why), why);
	end_block(1, NULL);
	over = memstate_new_overlay(&below);
	ck_assert_ptr_nonnull(over);
	be = memstate_backend(over);
	state_open_scratch(&ov, &be, 0);
	ck_assert_int_eq(state_end_block(&ov, 11), 0);
	ck_assert_uint_eq(unbonding().n, 1);                /* below unchanged */
	struct ub_sum s = { 0 };
	ck_assert_int_eq(state_unbonding_each(&ov, ub_add, &s), 0);
	ck_assert_uint_eq(s.n, 0);                          /* hidden above */
	state_close(&ov);
	memstate_free(over);
	end_block(11, NULL);
	state_root(&st, root);
	ck_assert_uint_eq(unbonding().n, 0);
}
END_TEST

/* The auditor's replay (tally audit, tally chain verify) runs these rules:
 * a chain of STAKE, UNSTAKE, its release and EVIDENCE replays; one whose
 * block claims the state root without the release, holds an EVIDENCE of an
 * offence already judged, or one against a validator that did not sign one
 * of its votes (an innocent one slashed), is refused at that block. */
#define T0 (1700000000ull * CB_SEC)

static void same_root_as_before(struct block_header *h, void *ctx)
{
	memcpy(h->state_root, ctx, HASH_LEN);
}

/* The staking chain; with tamper, the last block is tampered as said. */
static void staking_chain(struct chainbuild *c, int tamper)
{
	const struct chain_params p = { .unbonding_blocks = 2, .slash_ppm = 100000,
					.jail_blocks = 2, .min_self_stake = 1,
					.max_validators = 10 };
	struct signed_vote x, y;
	struct tx t;
	uint8_t root[HASH_LEN];

	cb_init_params(c, "stake-audit", T0, &p);
	memset(&t, 0, sizeof(t));
	t.kind = TX_STAKE;
	t.u.stake.amount = 40;              /* the validator keeps more than 2/3 */
	cb_tx(c, &t, CB_TENANT, false, NULL);
	cb_seal(c, T0 + 1 * CB_SEC, false, NULL, NULL);
	memset(&t, 0, sizeof(t));
	t.kind = TX_UNSTAKE;
	t.u.stake.amount = 15;              /* released at the end of block 4 */
	cb_tx(c, &t, CB_TENANT, false, NULL);
	cb_seal(c, T0 + 2 * CB_SEC, false, NULL, NULL);
	cb_seal(c, T0 + 3 * CB_SEC, false, NULL, NULL);
	state_root(&c->state, root);
	cb_seal(c, T0 + 4 * CB_SEC, false, tamper == 1 ? same_root_as_before : NULL, root);
	/* The tenant equivocates at height 4 (it is in the set) and the
	 * stranger reports it, twice when tampering. */
	cb_double_precommit(c, CB_TENANT, 4, &x, &y);
	if (tamper == 3)
		y.sig[7] ^= 0x10;           /* the second vote is forged */
	for (int i = 0; i < (tamper == 2 ? 2 : 1); i++) {
		memset(&t, 0, sizeof(t));
		t.kind = TX_EVIDENCE;
		ck_assert_int_eq(evidence_make(&t.u.evidence, &x, &y), 0);
		cb_tx(c, &t, CB_STRANGER, false, NULL);
	}
	cb_seal(c, T0 + 5 * CB_SEC, tamper == 2, NULL, NULL);
}

/* Replays c's blocks: 0, or the first failure with its height in *at. */
static int replay_chain(struct chainbuild *c, uint64_t *at, char *why)
{
	struct replay r;
	int rc = replay_init(&r, &c->genesis, why);

	for (size_t i = 0; !rc && i < c->nblocks; i++) {
		*at = i + 1;
		rc = replay_block(&r, &c->blocks[i], &c->certs[i], c->next_vals[i], NULL, why);
	}
	if (!rc) {
		struct account a;
		struct validator_entry v;

		/* 1e9 - 40 + 15 back; 25 staked less 10% (floor 2) burned. */
		ck_assert_int_eq(state_account_get(&r.state, c->key[CB_TENANT].pub, &a), 0);
		ck_assert_uint_eq(a.balance, 1000000000ull - 40 + 15);
		ck_assert_int_eq(state_validator_get(&r.state, c->key[CB_TENANT].pub, &v), 0);
		ck_assert_uint_eq(v.stake, 23);
		ck_assert(v.jailed);
	}
	replay_free(&r);
	return rc;
}

START_TEST(auditor_replays_staking)
{
	struct chainbuild c;
	char why[WHY_MAX] = "";
	uint64_t at = 0;

	staking_chain(&c, 0);
	ck_assert_msg(replay_chain(&c, &at, why) == 0, "%s", why);
	cb_free(&c);
	/* Block 4 claims the root as if nothing were released. */
	staking_chain(&c, 1);
	ck_assert_int_eq(replay_chain(&c, &at, why), TALLY_E_STATEROOT);
	ck_assert_uint_eq(at, 4);
	cb_free(&c);
	/* Block 5 holds the same offence twice. */
	staking_chain(&c, 2);
	ck_assert_int_eq(replay_chain(&c, &at, why), TALLY_E_EXISTS);
	ck_assert_uint_eq(at, 5);
	ck_assert_msg(strstr(why, "transaction 1 (EVIDENCE) does not apply") &&
		      strstr(why, "judged in block 5"), "%s", why);
	cb_free(&c);
	/* Block 5 slashes the tenant for a vote it never signed: the chain
	 * refuses it as a forgery of the accused's signature, not the
	 * reporter's. */
	char accused[17], want[WHY_MAX];

	staking_chain(&c, 3);
	hex_encode(c.key[CB_TENANT].pub, 8, accused);
	snprintf(want, sizeof(want), "block 5: transaction 0 (EVIDENCE): evidence: a vote's"
		 " signature does not verify for the accused validator %s", accused);
	ck_assert_int_eq(replay_chain(&c, &at, why), TALLY_E_SIGNATURE);
	ck_assert_uint_eq(at, 5);
	ck_assert_str_eq(why, want);
	cb_free(&c);
}
END_TEST

static int count_evidence(void *ctx, const uint8_t id[32], uint64_t height)
{
	(void)id;
	(void)height;
	(*(int *)ctx)++;
	return 0;
}

static int evidence_entries(void)
{
	int n = 0;

	ck_assert_int_eq(state_evidence_each(&st, count_evidence, &n), 0);
	return n;
}

/* An evidence entry judged in block 3 (unbonding 10) refuses the offence
 * again up to block 13 and is pruned at the end of it; from block 14 the
 * offence is refused as expired. */
START_TEST(evidence_entry_pruned_when_expired)
{
	char why[WHY_MAX];

	ok(evidence(A, V0, 3, 0, 3, NULL, why), why);
	ck_assert_int_eq(evidence_entries(), 1);
	end_block(3, NULL);
	end_block(12, NULL);
	ck_assert_int_eq(evidence_entries(), 1);
	ck_assert_int_eq(evidence(A, V0, 3, 0, 13, NULL, why), TALLY_E_EXISTS);
	end_block(13, NULL);                    /* root recomputed: deletion included */
	ck_assert_int_eq(evidence_entries(), 0);
	ck_assert_int_eq(evidence(A, V0, 3, 0, 14, NULL, why), TALLY_E_EXPIRED);
	/* A newer offence is judged and kept. */
	ok(evidence(B, V1, 12, 0, 14, NULL, why), why);
	end_block(14, NULL);
	ck_assert_int_eq(evidence_entries(), 1);
}
END_TEST

/* Without an unbonding period evidence never expires: nothing is pruned. */
START_TEST(evidence_kept_without_unbonding)
{
	char why[WHY_MAX];

	teardown();
	gen.params.unbonding_blocks = 0;
	open_state(&gen);
	ok(evidence(A, V0, 3, 0, 3, NULL, why), why);
	end_block(1000, NULL);
	ck_assert_int_eq(evidence_entries(), 1);
	ck_assert_int_eq(evidence(A, V0, 3, 0, 1001, NULL, why), TALLY_E_EXISTS);
}
END_TEST

Suite *stake_suite(void)
{
	Suite *s = suite_create("stake");
	TCase *tc = tcase_create("stake");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, any_account_joins_by_stake);
	tcase_add_test(tc, unstake_pays_back_after_the_period);
	tcase_add_test(tc, unbonding_entries_are_separate);
	tcase_add_test(tc, evidence_slashes_and_jails);
	tcase_add_test(tc, unjail_after_the_term);
	tcase_add_test(tc, evidence_entry_pruned_when_expired);
	tcase_add_test(tc, evidence_kept_without_unbonding);
	tcase_add_test(tc, version1_unstake_at_once);
	tcase_add_test(tc, deletion_through_an_overlay);
	tcase_add_test(tc, auditor_replays_staking);
	suite_add_tcase(s, tc);
	return s;
}
