/* Committing a decided block from its trial (lib/chain/trial.h,
 * trial_commit) instead of executing it a second time. Over a chain with a
 * little of everything (a provider's announcement, a transfer, a lease
 * opened, started, metered and closed, stake, an unstake and its release,
 * an evidence that slashes and jails), a state that takes each block's
 * trial as a validator does (the proposal checked on a trial, kept, then
 * committed) holds after every block exactly what a state that executes the
 * block holds: every entry of every type, deletions included, the tree and
 * the usage log. And a trial whose state moved on refuses to commit. */
#include <check.h>
#include <string.h>

#include "lib/chain/evidence.h"
#include "lib/chain/replay.h"
#include "lib/chain/trial.h"
#include "lib/errors.h"
#include "tests/support/chainbuild.h"

#define T0 (1700000000ull * CB_SEC)
#define BT(i) (T0 + (uint64_t)(i) * CB_SEC)

/* Blocks 1 to 7: everything a block can do to the state. */
static void every_kind_chain(struct chainbuild *c)
{
	const struct chain_params p = { .unbonding_blocks = 2, .slash_ppm = 100000,
					.jail_blocks = 2, .min_self_stake = 1,
					.max_validators = 10 };
	uint8_t lease[HASH_LEN], prev[HASH_LEN];
	struct signed_vote x, y;
	struct tx t;

	cb_init_params(c, "trial-commit", T0, &p);   /* the announcement is queued */
	memset(&t, 0, sizeof(t));
	t.kind = TX_TRANSFER;
	memcpy(t.u.transfer.to, c->key[CB_STRANGER].pub, PUBKEY_LEN);
	t.u.transfer.amount = 77;
	cb_tx(c, &t, CB_TENANT, false, NULL);
	memset(&t, 0, sizeof(t));
	t.kind = TX_STAKE;
	t.u.stake.amount = 40;
	cb_tx(c, &t, CB_TENANT, false, NULL);
	cb_seal(c, BT(1), false, NULL, NULL);

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_OPEN;
	cb_contract(c, &t.u.open, BT(2));
	cb_tx(c, &t, CB_TENANT, false, lease);
	memset(&t, 0, sizeof(t));
	t.kind = TX_UNSTAKE;
	t.u.stake.amount = 15;                 /* released at the end of block 4 */
	cb_tx(c, &t, CB_TENANT, false, NULL);
	cb_seal(c, BT(2), false, NULL, NULL);

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_START;
	memcpy(t.u.start.lease_id, lease, LEASE_ID_LEN);
	cb_tx(c, &t, CB_VALIDATOR, false, NULL);
	cb_seal(c, BT(3), false, NULL, NULL);

	/* Two records of the lease in one block, chained. */
	cb_usage(&t, lease, 0, NULL, BT(3), CB_SEC, CB_SEC / 2);
	cb_tx(c, &t, CB_VALIDATOR, false, prev);
	cb_usage(&t, lease, 1, prev, BT(4), CB_SEC, CB_SEC / 4);
	cb_tx(c, &t, CB_VALIDATOR, false, prev);
	cb_seal(c, BT(5), false, NULL, NULL);

	/* The tenant (in the set) equivocates at height 4; the stranger
	 * reports it. */
	cb_double_precommit(c, CB_TENANT, 4, &x, &y);
	memset(&t, 0, sizeof(t));
	t.kind = TX_EVIDENCE;
	ck_assert_int_eq(evidence_make(&t.u.evidence, &x, &y), 0);
	cb_tx(c, &t, CB_STRANGER, false, NULL);
	cb_usage(&t, lease, 2, prev, BT(5), CB_SEC, CB_SEC);
	cb_tx(c, &t, CB_VALIDATOR, false, prev);
	cb_seal(c, BT(6), false, NULL, NULL);

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_CLOSE;
	memcpy(t.u.close.lease_id, lease, LEASE_ID_LEN);
	t.u.close.reason = CLOSE_TENANT;
	cb_tx(c, &t, CB_TENANT, false, NULL);
	cb_seal(c, BT(7), false, NULL, NULL);
}

/* A running digest of every entry a scan gives, and their number. */
struct digest {
	struct sha256_stream *h;
	size_t n;
};

static int digest_entry(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			size_t vlen)
{
	struct digest *d = ctx;

	sha256_add(d->h, &klen, sizeof(klen));
	sha256_add(d->h, key, klen);
	sha256_add(d->h, &vlen, sizeof(vlen));
	sha256_add(d->h, val, vlen);
	d->n++;
	return 0;
}

/* Every entry of s, of every key type in key order: their digest, and
 * how many. */
static size_t entries_digest(struct state *s, uint8_t out[HASH_LEN])
{
	struct digest d = { sha256_begin(), 0 };

	ck_assert_ptr_nonnull(d.h);
	for (int type = 0; type < 256; type++)
		ck_assert_int_eq(s->be.scan_type(s->be.ctx, (uint8_t)type, digest_entry, &d), 0);
	sha256_end(d.h, out);
	return d.n;
}

/* a and b hold the same state: entries, tree, usage log. */
static void same_state(struct replay *a, struct replay *b, uint64_t height)
{
	uint8_t da[HASH_LEN], db[HASH_LEN], ra[HASH_LEN], rb[HASH_LEN], full[HASH_LEN];
	size_t na = entries_digest(&a->state, da), nb = entries_digest(&b->state, db);

	ck_assert_msg(na == nb && !memcmp(da, db, HASH_LEN),
		      "block %llu: the entries differ (%zu executed, %zu from the trial)",
		      (unsigned long long)height, na, nb);
	ck_assert_mem_eq(a->state.node, b->state.node, 2 * STATE_BUCKETS * HASH_LEN);
	state_root(&b->state, rb);
	ck_assert_int_eq(state_root_recompute(&b->state, full), 0);
	ck_assert_mem_eq(rb, full, HASH_LEN);
	ck_assert_uint_eq(a->state.usage_size, b->state.usage_size);
	ck_assert_int_eq(merkle_root(memstate_usage(a->mem), a->state.usage_size, ra), 0);
	ck_assert_int_eq(merkle_root(memstate_usage(b->mem), b->state.usage_size, rb), 0);
	ck_assert_mem_eq(ra, rb, HASH_LEN);
}

/* The next block as a validator takes it: its proposal checked on a trial
 * that is kept, its certificate verified, the trial committed, the
 * verifier advanced. */
static void commit_from_trial(struct replay *r, const struct block *b,
			      const struct commit_cert *cert)
{
	struct chain_verifier next = r->v;
	struct merkle_frontier usage;
	struct exec_result er;
	struct trial t;
	char why[WHY_MAX] = "";

	ck_assert_msg(trial_check_block_kept(&r->v, &r->state, b, NULL, &t, &er, why) == 0,
		      "%s", why);
	ck_assert_msg(chain_verify_header(&r->v, b, cert, &usage, why) == 0, "%s", why);
	ck_assert_int_eq(trial_commit(&t, &r->state), 0);
	trial_end(&t);
	ck_assert_msg(chain_advance(&next, b, cert, &usage, &er.next_vals, why) == 0, "%s", why);
	r->v = next;
}

START_TEST(trial_commit_is_execution)
{
	struct chainbuild c;
	struct replay a, b;
	char why[WHY_MAX] = "";
	uint8_t d[HASH_LEN];
	size_t before;

	every_kind_chain(&c);
	ck_assert_int_eq(replay_init(&a, &c.genesis, why), 0);
	ck_assert_int_eq(replay_init(&b, &c.genesis, why), 0);
	for (size_t i = 0; i < c.nblocks; i++) {
		ck_assert_msg(replay_block(&a, &c.blocks[i], &c.certs[i], c.next_vals[i], NULL,
					   why) == 0, "%s", why);
		commit_from_trial(&b, &c.blocks[i], &c.certs[i]);
		same_state(&a, &b, i + 1);
	}
	/* The chain did what it says: three records, the unbonding entry
	 * released (deleted), the offence judged. */
	ck_assert_uint_eq(b.state.usage_size, 3);
	before = entries_digest(&b.state, d);
	ck_assert_uint_gt(before, 5);
	replay_free(&a);
	replay_free(&b);
	cb_free(&c);
}
END_TEST

/* A trial commit leaves the next trial a ready copy of the tree; a block
 * executed on the state in between changes the tree under that copy, which
 * must then go unused. Trials and plain execution alternate here on one
 * state, each block compared with execution alone. */
START_TEST(trial_after_plain_execution)
{
	struct chainbuild c;
	struct replay a, b;
	char why[WHY_MAX] = "";
	uint8_t before[HASH_LEN], after[HASH_LEN];
	int moved = 0;

	every_kind_chain(&c);
	ck_assert_int_eq(replay_init(&a, &c.genesis, why), 0);
	ck_assert_int_eq(replay_init(&b, &c.genesis, why), 0);
	for (size_t i = 0; i < c.nblocks; i++) {
		state_root(&a.state, before);
		ck_assert_msg(replay_block(&a, &c.blocks[i], &c.certs[i], c.next_vals[i], NULL,
					   why) == 0, "%s", why);
		state_root(&a.state, after);
		if (i % 2 == 1) {
			/* The tree moves under the copy the last trial left. */
			moved += memcmp(before, after, HASH_LEN) != 0;
			ck_assert_msg(replay_block(&b, &c.blocks[i], &c.certs[i], c.next_vals[i],
						   NULL, why) == 0, "%s", why);
		} else {
			commit_from_trial(&b, &c.blocks[i], &c.certs[i]);
			ck_assert_ptr_nonnull(b.state.spare);
			ck_assert_ptr_nonnull(b.state.spare->node);
			ck_assert_mem_eq(b.state.spare->node, b.state.node,
					 2 * STATE_BUCKETS * HASH_LEN);
		}
		same_state(&a, &b, i + 1);
	}
	ck_assert_int_gt(moved, 0);
	replay_free(&a);
	replay_free(&b);
	cb_free(&c);
}
END_TEST

START_TEST(trial_of_a_moved_state_refuses)
{
	struct chainbuild c;
	struct replay r;
	struct exec_result er;
	struct trial t;
	char why[WHY_MAX] = "";
	uint8_t root[HASH_LEN];

	every_kind_chain(&c);
	ck_assert_int_eq(replay_init(&r, &c.genesis, why), 0);
	for (size_t i = 0; i < 4; i++)
		ck_assert_int_eq(replay_block(&r, &c.blocks[i], &c.certs[i], c.next_vals[i], NULL,
					      why), 0);
	/* Block 5 tried, then executed for real: its records moved the usage
	 * log under the trial, which must not be written over it. */
	ck_assert_msg(trial_check_block_kept(&r.v, &r.state, &c.blocks[4], NULL, &t, &er, why)
		      == 0, "%s", why);
	ck_assert_int_eq(replay_block(&r, &c.blocks[4], &c.certs[4], c.next_vals[4], NULL, why),
			 0);
	state_root(&r.state, root);
	ck_assert_int_eq(trial_commit(&t, &r.state), TALLY_E_STATE);
	trial_end(&t);
	ck_assert_mem_eq(r.state.node[1], root, HASH_LEN);   /* untouched */
	/* A block that is not valid keeps nothing, and ending it is harmless. */
	ck_assert_int_ne(trial_check_block_kept(&r.v, &r.state, &c.blocks[4], NULL, &t, &er,
						why), 0);
	ck_assert_ptr_null(t.over);
	trial_end(&t);
	replay_free(&r);
	cb_free(&c);
}
END_TEST

/* A trial of block 2 on the state after block 1, and that state then
 * moved on by blocks 2 and 3, neither of which appends to the usage log:
 * committing the trial there would put block 2's writes back over block
 * 3's (the lease opened again after it started) under block 2's tree. It
 * refuses, and the state is untouched. */
START_TEST(trial_of_a_state_moved_without_usage_refuses)
{
	struct chainbuild c;
	struct replay r;
	struct exec_result er;
	struct trial t;
	char why[WHY_MAX] = "";
	uint8_t root[HASH_LEN], d0[HASH_LEN], d1[HASH_LEN];
	size_t n0, n1;

	every_kind_chain(&c);
	ck_assert_int_eq(replay_init(&r, &c.genesis, why), 0);
	ck_assert_int_eq(replay_block(&r, &c.blocks[0], &c.certs[0], c.next_vals[0], NULL, why),
			 0);
	ck_assert_msg(trial_check_block_kept(&r.v, &r.state, &c.blocks[1], NULL, &t, &er, why)
		      == 0, "%s", why);
	for (size_t i = 1; i < 3; i++)
		ck_assert_msg(replay_block(&r, &c.blocks[i], &c.certs[i], c.next_vals[i], NULL,
					   why) == 0, "%s", why);
	ck_assert_uint_eq(r.state.usage_size, 0);   /* the log did not move */
	state_root(&r.state, root);
	n0 = entries_digest(&r.state, d0);
	ck_assert_int_eq(trial_commit(&t, &r.state), TALLY_E_STATE);
	trial_end(&t);
	n1 = entries_digest(&r.state, d1);
	ck_assert_mem_eq(r.state.node[1], root, HASH_LEN);
	ck_assert_uint_eq(n0, n1);
	ck_assert_mem_eq(d0, d1, HASH_LEN);
	/* The chain goes on from there as it should. */
	for (size_t i = 3; i < c.nblocks; i++)
		ck_assert_msg(replay_block(&r, &c.blocks[i], &c.certs[i], c.next_vals[i], NULL,
					   why) == 0, "%s", why);
	replay_free(&r);
	cb_free(&c);
}
END_TEST

Suite *trial_suite(void)
{
	Suite *s = suite_create("trial");
	TCase *tc = tcase_create("commit");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, trial_commit_is_execution);
	tcase_add_test(tc, trial_after_plain_execution);
	tcase_add_test(tc, trial_of_a_moved_state_refuses);
	tcase_add_test(tc, trial_of_a_state_moved_without_usage_refuses);
	suite_add_tcase(s, tc);
	return s;
}
