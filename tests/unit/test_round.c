/* The round state machine (daemon/consensus/round.h) on its own: four
 * validators of equal stake (quorum 3, one honest 2), this node one of
 * them, events fed by hand and the actions it asks for checked. The cases of
 * Algorithm 1 of "The latest gossip on BFT consensus": deciding, prevoting
 * nil (invalid, late, no proposal), locking, unlocking on a newer
 * proof-of-lock and not on an older one, re-proposing the valid value,
 * deciding on an earlier round's precommits, round skipping and its bound,
 * the timeouts and their growth, nil quorums, duplicate and conflicting
 * votes, bad signatures, votes from non-validators, the wrong proposer, and
 * messages for other heights. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/consensus/round.h"
#include "lib/errors.h"

#define NVAL 4
#define H 7                           /* the height under test */
#define GH ((const uint8_t *)"tally-round-test genesis hash..")

static struct tally_key key[NVAL + 1];    /* key[NVAL]: not a validator */
static struct validator_set vals;
static struct csm m;
static struct csm_out out;
static int self;                          /* this node: validator index */

static void setup(void)
{
	uint8_t seed[32];

	for (int i = 0; i <= NVAL; i++) {
		memset(seed, 0x61 + i, sizeof(seed));
		ck_assert_int_eq(key_from_seed(&key[i], seed), 0);
	}
	/* Sort the validators' keys so key[i] is validator i. */
	for (int i = 0; i < NVAL; i++)
		for (int j = i + 1; j < NVAL; j++)
			if (memcmp(key[j].pub, key[i].pub, PUBKEY_LEN) < 0) {
				struct tally_key t = key[i];

				key[i] = key[j];
				key[j] = t;
			}
	memset(&vals, 0, sizeof(vals));
	vals.n = NVAL;
	for (int i = 0; i < NVAL; i++) {
		memcpy(vals.v[i].pubkey, key[i].pub, PUBKEY_LEN);
		vals.v[i].stake = 10;
	}
	/* This node: a validator that does not propose round 0. */
	self = (int)(valset_proposer(&vals, 0) + 1) % NVAL;
	csm_init(&m, GH, key[self].pub);
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(csm_start_height(&m, H, &vals, &out), 0);
}

static void teardown(void)
{
	csm_free(&m);
	for (int i = 0; i <= NVAL; i++)
		key_free(&key[i]);
}

static int who(const uint8_t *pub)
{
	for (int i = 0; i <= NVAL; i++)
		if (!memcmp(key[i].pub, pub, PUBKEY_LEN))
			return i;
	ck_abort_msg("unknown key");
	return -1;
}

static int proposer(uint32_t round)
{
	return who(csm_proposer(&m, round));
}

static void id_of(char c, uint8_t id[HASH_LEN])
{
	memset(id, c, HASH_LEN);
}

static bool has(uint8_t kind, uint8_t type_or_wait, uint32_t round, const uint8_t *id)
{
	for (size_t i = 0; i < out.n; i++) {
		const struct csm_action *a = &out.a[i];

		if (a->kind != kind || a->round != round)
			continue;
		if (kind == CSM_VOTE && a->vote_type != type_or_wait)
			continue;
		if (kind == CSM_SCHEDULE && a->wait != type_or_wait)
			continue;
		if (id && memcmp(a->block_id, id, HASH_LEN))
			continue;
		return true;
	}
	return false;
}

static enum csm_check vote_as(int k, uint8_t type, uint64_t height, uint32_t round,
			      const uint8_t *id, int *err)
{
	struct vote v = { .type = type, .height = height, .round = round };
	uint8_t sig[SIG_LEN];
	enum csm_check c;

	memcpy(v.block_id, id ? id : cs_nil_id, HASH_LEN);
	ck_assert_int_eq(vote_sign(&v, &key[k], GH, sig), 0);
	c = csm_check_vote(&m, &v, key[k].pub, sig, err, NULL);
	if (c == CSM_ACCEPT)
		ck_assert_int_eq(csm_on_vote(&m, &v, key[k].pub, sig, &out), 0);
	return c;
}

/* A vote at this height that must be taken. */
static void vote(int k, uint8_t type, uint32_t round, const uint8_t *id)
{
	int err;

	ck_assert_int_eq(vote_as(k, type, H, round, id, &err), CSM_ACCEPT);
}

static enum csm_check propose_as(int k, uint64_t height, uint32_t round, int32_t pol,
				 const uint8_t *id, bool valid, bool timely, int *err)
{
	struct proposal p = { .height = height, .round = round, .pol_round = pol };
	uint8_t sig[SIG_LEN];
	struct enc e;
	enum csm_check c;

	memcpy(p.block_id, id, HASH_LEN);
	enc_init(&e);
	proposal_encode(&e, &p);
	ck_assert_int_eq(sig_sign(&key[k], SIG_PROPOSAL, GH, e.buf, e.len, sig), 0);
	enc_free(&e);
	c = csm_check_proposal(&m, &p, sig, err);
	if (c == CSM_ACCEPT)
		ck_assert_int_eq(csm_on_proposal(&m, &p, sig, valid, timely, &out), 0);
	return c;
}

/* The round's proposal from its proposer, which must be taken. */
static void propose(uint32_t round, int32_t pol, const uint8_t *id, bool valid, bool timely)
{
	int err;

	ck_assert_int_eq(propose_as(proposer(round), H, round, pol, id, valid, timely, &err),
			 CSM_ACCEPT);
}

static void timeout(uint32_t round, uint8_t wait)
{
	ck_assert_int_eq(csm_on_timeout(&m, H, round, wait, &out), 0);
}

/* Into round 0: the wait between heights ends. */
static void begin(void)
{
	out.n = 0;
	timeout(0, CS_WAIT_COMMIT);
	ck_assert_uint_eq(m.round, 0);
	ck_assert_uint_eq(m.step, CS_PROPOSE);
}

/* This node's own vote, as the engine feeds it back. */
static void own(uint8_t type, uint32_t round, const uint8_t *id)
{
	vote(self, type, round, id);
}

/* The other validators, 0-based among those that are not this node. */
static int other(int i)
{
	return i < self ? i : i + 1;
}

/* This node and two others prevote (or precommit) id in round. */
static void quorum(uint8_t type, uint32_t round, const uint8_t *id)
{
	own(type, round, id);
	vote(other(0), type, round, id);
	vote(other(1), type, round, id);
}

/* Locks this node on id in round (a non-proposer round). */
static void lock_on(uint32_t round, const uint8_t *id)
{
	propose(round, -1, id, true, true);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, round, id));
	out.n = 0;
	quorum(VOTE_PREVOTE, round, id);
	ck_assert(has(CSM_VOTE, VOTE_PRECOMMIT, round, id));
	ck_assert_int_eq(m.locked_round, round);
	ck_assert_mem_eq(m.locked_id, id, HASH_LEN);
	own(VOTE_PRECOMMIT, round, id);
}

/* Ends the current round: the others precommit nil (those that have not
 * precommitted in it yet), then the precommit wait. */
static void fail_round(void)
{
	uint32_t round = m.round;

	for (int i = 0; i < NVAL - 1; i++)
		if (!csm_vote(&m, round, VOTE_PRECOMMIT, (size_t)other(i)))
			vote(other(i), VOTE_PRECOMMIT, round, NULL);
	ck_assert(m.precommit_wait);
	out.n = 0;
	timeout(round, CS_WAIT_PRECOMMIT);
	ck_assert_uint_eq(m.round, round + 1);
	ck_assert_uint_eq(m.step, CS_PROPOSE);
}

/* --- tests ------------------------------------------------------------------------- */

START_TEST(test_waits_then_decides)
{
	struct commit_cert cert;
	uint8_t a[HASH_LEN];
	int err;

	id_of('a', a);
	ck_assert_uint_eq(m.step, CS_NEW_HEIGHT);
	ck_assert(has(CSM_SCHEDULE, CS_WAIT_COMMIT, 0, NULL));
	begin();
	ck_assert(has(CSM_SCHEDULE, CS_WAIT_PROPOSE, 0, NULL));
	ck_assert(!has(CSM_PROPOSE, 0, 0, NULL));
	out.n = 0;
	propose(0, -1, a, true, true);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 0, a));
	ck_assert_uint_eq(m.step, CS_PREVOTE);
	out.n = 0;
	quorum(VOTE_PREVOTE, 0, a);
	ck_assert(has(CSM_VOTE, VOTE_PRECOMMIT, 0, a));
	ck_assert_uint_eq(m.step, CS_PRECOMMIT);
	ck_assert_int_eq(m.locked_round, 0);
	ck_assert_int_eq(m.valid_round, 0);
	own(VOTE_PRECOMMIT, 0, a);
	vote(other(0), VOTE_PRECOMMIT, 0, a);
	ck_assert_uint_ne(m.step, CS_DECIDED);          /* two of four: not yet */
	ck_assert_int_eq(csm_cert(&m, &cert), TALLY_E_STATE);
	out.n = 0;
	vote(other(2), VOTE_PRECOMMIT, 0, a);
	ck_assert(has(CSM_DECIDE, 0, 0, a));
	ck_assert_uint_eq(m.step, CS_DECIDED);
	ck_assert_int_eq(csm_cert(&m, &cert), 0);
	ck_assert_uint_eq(cert.n, 3);
	ck_assert_uint_eq(cert.height, H);
	ck_assert_int_eq(cert_verify(&cert, &vals, GH), 0);
	/* Once decided, the height takes nothing more. */
	ck_assert_int_eq(vote_as(other(1), VOTE_PRECOMMIT, H, 0, a, &err), CSM_OLD);
}
END_TEST

START_TEST(test_prevote_nil_invalid_late_or_missing)
{
	uint8_t a[HASH_LEN];

	id_of('a', a);
	begin();
	/* An invalid block: nil. */
	out.n = 0;
	propose(0, -1, a, false, true);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 0, cs_nil_id));
	own(VOTE_PREVOTE, 0, NULL);
	fail_round();
	/* A block too far ahead of this node's clock: nil. */
	out.n = 0;
	propose(1, -1, a, true, false);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 1, cs_nil_id));
	own(VOTE_PREVOTE, 1, NULL);
	fail_round();
	/* No proposal at all: the propose timeout, then nil. */
	out.n = 0;
	timeout(2, CS_WAIT_PROPOSE);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 2, cs_nil_id));
	ck_assert_uint_eq(m.step, CS_PREVOTE);
}
END_TEST

START_TEST(test_lock_refuses_other_values)
{
	uint8_t a[HASH_LEN], b[HASH_LEN];

	id_of('a', a);
	id_of('b', b);
	begin();
	lock_on(0, a);
	fail_round();
	/* A new value with no proof-of-lock: nil, the lock holds. */
	out.n = 0;
	propose(1, -1, b, true, true);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 1, cs_nil_id));
	ck_assert_int_eq(m.locked_round, 0);
	own(VOTE_PREVOTE, 1, NULL);
	fail_round();
	/* The locked value again: prevoted. */
	out.n = 0;
	propose(2, -1, a, true, true);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 2, a));
}
END_TEST

START_TEST(test_relock_on_pol_in_current_round)
{
	uint8_t a[HASH_LEN], b[HASH_LEN];

	id_of('a', a);
	id_of('b', b);
	begin();
	lock_on(0, a);
	fail_round();
	out.n = 0;
	propose(1, -1, b, true, true);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 1, cs_nil_id));
	own(VOTE_PREVOTE, 1, NULL);
	/* +2/3 prevoted b in this round while this node is in prevote: lock on
	 * b and precommit it (line 36). */
	out.n = 0;
	for (int i = 0; i < 3; i++)
		vote(other(i), VOTE_PREVOTE, 1, b);
	ck_assert(has(CSM_VOTE, VOTE_PRECOMMIT, 1, b));
	ck_assert_int_eq(m.locked_round, 1);
	ck_assert_mem_eq(m.locked_id, b, HASH_LEN);
}
END_TEST

START_TEST(test_unlock_on_newer_pol_only)
{
	uint8_t a[HASH_LEN], b[HASH_LEN];

	id_of('a', a);
	id_of('b', b);
	begin();
	/* Round 0: this node never gets the proposal, the others prevote b: a
	 * proof-of-lock for b in round 0 that does not lock this node. */
	timeout(0, CS_WAIT_PROPOSE);
	own(VOTE_PREVOTE, 0, NULL);
	for (int i = 0; i < 3; i++)
		vote(other(i), VOTE_PREVOTE, 0, b);
	ck_assert_int_eq(m.locked_round, -1);
	timeout(0, CS_WAIT_PREVOTE);
	fail_round();
	/* Round 1: locked on a. */
	lock_on(1, a);
	fail_round();
	/* Round 2: b again with the older proof-of-lock (round 0 < 1): nil. */
	out.n = 0;
	propose(2, 0, b, true, true);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 2, cs_nil_id));
	own(VOTE_PREVOTE, 2, NULL);
	fail_round();
	/* Round 2's prevotes for b arrive late, in round 3: a newer proof-of-lock
	 * (line 36 applies to the current round only, so no lock moves). */
	for (int i = 0; i < 3; i++)
		vote(other(i), VOTE_PREVOTE, 2, b);
	ck_assert_int_eq(m.locked_round, 1);
	/* Round 3: b with the proof-of-lock of round 2 (>= 1): unlocked, prevoted. */
	out.n = 0;
	propose(3, 2, b, true, true);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 3, b));
}
END_TEST

START_TEST(test_pol_waits_for_its_prevotes)
{
	uint8_t b[HASH_LEN];

	id_of('b', b);
	begin();
	timeout(0, CS_WAIT_PROPOSE);
	own(VOTE_PREVOTE, 0, NULL);
	fail_round();
	out.n = 0;
	propose(1, 0, b, true, true);
	/* The proposal names round 0 as its proof-of-lock; the prevotes are not
	 * here: no prevote yet. */
	ck_assert(!has(CSM_VOTE, VOTE_PREVOTE, 1, NULL));
	ck_assert_uint_eq(m.step, CS_PROPOSE);
	vote(other(0), VOTE_PREVOTE, 0, b);
	vote(other(1), VOTE_PREVOTE, 0, b);
	ck_assert(!has(CSM_VOTE, VOTE_PREVOTE, 1, NULL));
	vote(other(2), VOTE_PREVOTE, 0, b);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 1, b));
}
END_TEST

START_TEST(test_proposer_reproposes_valid_value)
{
	uint8_t a[HASH_LEN];
	bool found = false;

	id_of('a', a);
	begin();
	lock_on(0, a);
	do
		fail_round();
	while (proposer(m.round) != self);
	/* Entering a round this node proposes: its valid value, with its round. */
	for (size_t i = 0; i < out.n; i++)
		if (out.a[i].kind == CSM_PROPOSE && out.a[i].round == m.round) {
			ck_assert_int_eq(out.a[i].pol_round, 0);
			ck_assert_mem_eq(out.a[i].block_id, a, HASH_LEN);
			found = true;
		}
	ck_assert(found);
}
END_TEST

START_TEST(test_decides_on_earlier_round)
{
	struct commit_cert cert;
	uint8_t a[HASH_LEN];

	id_of('a', a);
	begin();
	propose(0, -1, a, true, true);
	own(VOTE_PREVOTE, 0, a);
	vote(other(0), VOTE_PRECOMMIT, 0, a);
	/* Half the stake is in round 3: this node skips there... */
	vote(other(1), VOTE_PREVOTE, 3, NULL);
	vote(other(2), VOTE_PREVOTE, 3, NULL);
	ck_assert_uint_eq(m.round, 3);
	/* ...and then round 0's precommits complete: decided, in round 0. */
	out.n = 0;
	vote(other(1), VOTE_PRECOMMIT, 0, a);
	ck_assert_uint_ne(m.step, CS_DECIDED);
	vote(other(2), VOTE_PRECOMMIT, 0, a);
	ck_assert(has(CSM_DECIDE, 0, 0, a));
	ck_assert_int_eq(csm_cert(&m, &cert), 0);
	ck_assert_uint_eq(cert.round, 0);
	ck_assert_int_eq(cert_verify(&cert, &vals, GH), 0);
}
END_TEST

START_TEST(test_no_decision_without_the_block)
{
	uint8_t a[HASH_LEN];

	id_of('a', a);
	begin();
	/* +2/3 precommits for a block this node never received (or found
	 * invalid): it cannot commit what it does not hold. */
	for (int i = 0; i < 3; i++)
		vote(other(i), VOTE_PRECOMMIT, 0, a);
	ck_assert_uint_ne(m.step, CS_DECIDED);
	propose(0, -1, a, false, true);
	ck_assert_uint_ne(m.step, CS_DECIDED);
	ck_assert_ptr_null(csm_valid_block(&m, a));
}
END_TEST

START_TEST(test_round_skip_and_its_bound)
{
	int err;

	begin();
	/* One validator (1/4 of the stake) in round 5: no skip. */
	vote(other(0), VOTE_PREVOTE, 5, NULL);
	ck_assert_uint_eq(m.round, 0);
	/* A second one (1/2 > 1/3) in round 5: skip to it. */
	out.n = 0;
	vote(other(1), VOTE_PRECOMMIT, 5, NULL);
	ck_assert_uint_eq(m.round, 5);
	ck_assert_uint_eq(m.step, CS_PROPOSE);
	ck_assert(has(CSM_SCHEDULE, CS_WAIT_PROPOSE, 5, NULL));
	/* One validator may open two rounds beyond current + 1, not three. */
	ck_assert_int_eq(vote_as(other(2), VOTE_PREVOTE, H, 100, NULL, &err), CSM_ACCEPT);
	ck_assert_int_eq(vote_as(other(2), VOTE_PREVOTE, H, 200, NULL, &err), CSM_ACCEPT);
	ck_assert_int_eq(vote_as(other(2), VOTE_PREVOTE, H, 300, NULL, &err), CSM_IGNORED);
	/* A round opened already takes anyone's vote; current + 1 always. */
	ck_assert_int_eq(vote_as(other(0), VOTE_PREVOTE, H, 100, NULL, &err), CSM_ACCEPT);
	ck_assert_uint_eq(m.round, 100);            /* two in round 100: skip again */
	ck_assert_int_eq(vote_as(other(2), VOTE_PREVOTE, H, 101, NULL, &err), CSM_ACCEPT);
	/* A proposal beyond current + 1 is not kept. */
	uint8_t a[HASH_LEN];
	id_of('a', a);
	ck_assert_int_eq(propose_as(proposer(150), H, 150, -1, a, true, true, &err), CSM_IGNORED);
	ck_assert_int_eq(propose_as(proposer(101), H, 101, -1, a, true, true, &err), CSM_ACCEPT);
}
END_TEST

START_TEST(test_timeouts_in_order_and_growing)
{
	struct cs_timeouts t = cs_timeouts_default();
	char why[WHY_MAX];

	ck_assert_int_eq(cs_timeouts_check(&t, why), 0);
	ck_assert_uint_eq(cs_timeout_ns(&t, CS_WAIT_PROPOSE, 0), 3000000000ull);
	ck_assert_uint_eq(cs_timeout_ns(&t, CS_WAIT_PROPOSE, 4), 5000000000ull);
	ck_assert_uint_eq(cs_timeout_ns(&t, CS_WAIT_PREVOTE, 2), 2000000000ull);
	ck_assert_uint_eq(cs_timeout_ns(&t, CS_WAIT_PRECOMMIT, 1), 1500000000ull);
	ck_assert_uint_eq(cs_timeout_ns(&t, CS_WAIT_COMMIT, 9), 1000000000ull);
	t.propose_delta_ns = UINT64_MAX / 2;
	ck_assert_uint_eq(cs_timeout_ns(&t, CS_WAIT_PROPOSE, UINT32_MAX), UINT64_MAX);
	t = cs_timeouts_default();
	t.prevote_ns = 0;
	ck_assert_int_eq(cs_timeouts_check(&t, why), TALLY_E_INVALID);

	/* A stale timeout changes nothing. */
	ck_assert(!csm_timeout_matters(&m, H, 0, CS_WAIT_PROPOSE));
	begin();
	ck_assert(!csm_timeout_matters(&m, H - 1, 0, CS_WAIT_PROPOSE));
	ck_assert(!csm_timeout_matters(&m, H, 1, CS_WAIT_PROPOSE));
	ck_assert(!csm_timeout_matters(&m, H, 0, CS_WAIT_PREVOTE));
	/* propose -> prevote nil */
	out.n = 0;
	timeout(0, CS_WAIT_PROPOSE);
	ck_assert(has(CSM_VOTE, VOTE_PREVOTE, 0, cs_nil_id));
	own(VOTE_PREVOTE, 0, NULL);
	/* +2/3 prevotes for different things: the prevote wait (line 34), once */
	uint8_t a[HASH_LEN];
	id_of('a', a);
	vote(other(0), VOTE_PREVOTE, 0, a);
	out.n = 0;
	vote(other(1), VOTE_PREVOTE, 0, a);
	ck_assert(has(CSM_SCHEDULE, CS_WAIT_PREVOTE, 0, NULL));
	out.n = 0;
	vote(other(2), VOTE_PREVOTE, 0, NULL);
	ck_assert_uint_eq(out.n, 0);
	/* prevote wait -> precommit nil */
	timeout(0, CS_WAIT_PREVOTE);
	ck_assert(has(CSM_VOTE, VOTE_PRECOMMIT, 0, cs_nil_id));
	ck_assert_uint_eq(m.step, CS_PRECOMMIT);
	own(VOTE_PRECOMMIT, 0, NULL);
	vote(other(0), VOTE_PRECOMMIT, 0, a);
	out.n = 0;
	vote(other(1), VOTE_PRECOMMIT, 0, a);
	ck_assert(has(CSM_SCHEDULE, CS_WAIT_PRECOMMIT, 0, NULL));
	/* a has 2 of 4 precommits: no decision; the wait ends the round */
	ck_assert_uint_ne(m.step, CS_DECIDED);
	out.n = 0;
	timeout(0, CS_WAIT_PRECOMMIT);
	ck_assert_uint_eq(m.round, 1);
	ck_assert(has(CSM_SCHEDULE, CS_WAIT_PROPOSE, 1, NULL));
	/* After a restart the machine names the waits it is in. */
	out.n = 0;
	csm_pending_waits(&m, &out);
	ck_assert(has(CSM_SCHEDULE, CS_WAIT_PROPOSE, 1, NULL));
}
END_TEST

START_TEST(test_nil_quorums)
{
	begin();
	timeout(0, CS_WAIT_PROPOSE);
	/* +2/3 prevotes for nil: precommit nil at once (line 44). */
	out.n = 0;
	quorum(VOTE_PREVOTE, 0, NULL);
	ck_assert(has(CSM_VOTE, VOTE_PRECOMMIT, 0, cs_nil_id));
	ck_assert_int_eq(m.locked_round, -1);
	/* +2/3 precommits for nil decide nothing. */
	out.n = 0;
	quorum(VOTE_PRECOMMIT, 0, NULL);
	ck_assert_uint_eq(m.step, CS_PRECOMMIT);
	ck_assert(has(CSM_SCHEDULE, CS_WAIT_PRECOMMIT, 0, NULL));
	ck_assert(!has(CSM_DECIDE, 0, 0, NULL));
}
END_TEST

START_TEST(test_duplicate_conflicting_and_forged_votes)
{
	uint8_t a[HASH_LEN], b[HASH_LEN];
	struct vote v = { .type = VOTE_PREVOTE, .height = H, .round = 0 };
	uint8_t sig[SIG_LEN];
	int err;

	id_of('a', a);
	id_of('b', b);
	begin();
	vote(other(0), VOTE_PREVOTE, 0, a);
	ck_assert_int_eq(vote_as(other(0), VOTE_PREVOTE, H, 0, a, &err), CSM_DUPLICATE);
	/* The same validator, a block nobody proposed: equivocation, not kept. */
	struct vote vb = { .type = VOTE_PREVOTE, .height = H, .round = 0 };
	bool equivocation = false;

	memcpy(vb.block_id, b, HASH_LEN);
	ck_assert_int_eq(vote_sign(&vb, &key[other(0)], GH, sig), 0);
	ck_assert_int_eq(csm_check_vote(&m, &vb, key[other(0)].pub, sig, &err, &equivocation),
			 CSM_EQUIVOCATION);
	ck_assert(equivocation);
	ck_assert_uint_eq(vote_set_stake_for(csm_votes(&m, 0, VOTE_PREVOTE), b), 0);
	/* Once b is proposed, the second vote counts for b (the paper counts
	 * messages per value), still as equivocation, and the first still for a;
	 * "+2/3 for anything" counts the validator once. */
	propose(0, -1, b, true, true);
	equivocation = false;
	ck_assert_int_eq(csm_check_vote(&m, &vb, key[other(0)].pub, sig, &err, &equivocation),
			 CSM_ACCEPT);
	ck_assert(equivocation);
	ck_assert_int_eq(csm_on_vote(&m, &vb, key[other(0)].pub, sig, &out), 0);
	ck_assert_uint_eq(vote_set_stake_for(csm_votes(&m, 0, VOTE_PREVOTE), b), 10);
	ck_assert_uint_eq(vote_set_stake_for(csm_votes(&m, 0, VOTE_PREVOTE), a), 10);
	ck_assert_uint_eq(csm_votes(&m, 0, VOTE_PREVOTE)->stake, 10);   /* counted once */
	ck_assert_int_eq(vote_as(other(0), VOTE_PREVOTE, H, 0, b, &err), CSM_DUPLICATE);
	/* A precommit is another type: taken. */
	vote(other(0), VOTE_PRECOMMIT, 0, b);
	/* A signature by another key, or over another vote: refused. */
	memcpy(v.block_id, a, HASH_LEN);
	ck_assert_int_eq(vote_sign(&v, &key[other(2)], GH, sig), 0);
	ck_assert_int_eq(csm_check_vote(&m, &v, key[other(1)].pub, sig, &err, NULL), CSM_REFUSED);
	ck_assert_int_eq(err, TALLY_E_SIGNATURE);
	v.round = 1;
	ck_assert_int_eq(csm_check_vote(&m, &v, key[other(2)].pub, sig, &err, NULL), CSM_REFUSED);
	ck_assert_int_eq(err, TALLY_E_SIGNATURE);
	/* Signed for another chain: refused. */
	v.round = 0;
	ck_assert_int_eq(vote_sign(&v, &key[other(2)], (const uint8_t *)"another chain's genesis hash...",
				   sig), 0);
	ck_assert_int_eq(csm_check_vote(&m, &v, key[other(2)].pub, sig, &err, NULL), CSM_REFUSED);
}
END_TEST

START_TEST(test_non_validator_and_wrong_proposer)
{
	uint8_t a[HASH_LEN];
	int err;

	id_of('a', a);
	begin();
	ck_assert_int_eq(vote_as(NVAL, VOTE_PREVOTE, H, 0, a, &err), CSM_REFUSED);
	ck_assert_int_eq(err, TALLY_E_UNAUTHORIZED);
	/* Signed by a validator that is not the round's proposer. */
	int k = (proposer(0) + 1) % NVAL;
	ck_assert_int_eq(propose_as(k, H, 0, -1, a, true, true, &err), CSM_REFUSED);
	ck_assert_int_eq(err, TALLY_E_SIGNATURE);
	ck_assert_int_eq(propose_as(NVAL, H, 0, -1, a, true, true, &err), CSM_REFUSED);
	/* A proof-of-lock round not below the round is malformed. */
	ck_assert_int_eq(propose_as(proposer(1), H, 1, 1, a, true, true, &err), CSM_REFUSED);
	ck_assert_int_eq(err, TALLY_E_RANGE);
	/* The first proposal of a round is the one. */
	uint8_t b[HASH_LEN];
	id_of('b', b);
	ck_assert_int_eq(propose_as(proposer(0), H, 0, -1, a, true, true, &err), CSM_ACCEPT);
	ck_assert_int_eq(propose_as(proposer(0), H, 0, -1, a, true, true, &err), CSM_DUPLICATE);
	ck_assert_int_eq(propose_as(proposer(0), H, 0, -1, b, true, true, &err), CSM_EQUIVOCATION);
	ck_assert_mem_eq(csm_proposal(&m, 0)->p.block_id, a, HASH_LEN);
}
END_TEST

START_TEST(test_other_heights)
{
	uint8_t a[HASH_LEN];
	int err;

	id_of('a', a);
	begin();
	ck_assert_int_eq(vote_as(other(0), VOTE_PREVOTE, H - 1, 0, a, &err), CSM_OLD);
	ck_assert_int_eq(vote_as(other(0), VOTE_PRECOMMIT, 1, 3, a, &err), CSM_OLD);
	ck_assert_int_eq(vote_as(other(0), VOTE_PREVOTE, H + 1, 0, a, &err), CSM_NEXT_HEIGHT);
	ck_assert_int_eq(vote_as(other(0), VOTE_PREVOTE, H + 2, 0, a, &err), CSM_AHEAD);
	ck_assert_int_eq(propose_as(proposer(0), H - 1, 0, -1, a, true, true, &err), CSM_OLD);
	ck_assert_int_eq(propose_as(proposer(0), H + 1, 0, -1, a, true, true, &err),
			 CSM_NEXT_HEIGHT);
	/* None of them counted. */
	ck_assert_ptr_null(height_votes_round(&m.votes, 3));
	ck_assert_ptr_null(csm_proposal(&m, 0));
}
END_TEST

START_TEST(test_watching_node_never_votes)
{
	uint8_t a[HASH_LEN];

	id_of('a', a);
	csm_free(&m);
	csm_init(&m, GH, NULL);
	out.n = 0;
	ck_assert_int_eq(csm_start_height(&m, H, &vals, &out), 0);
	begin();
	propose(0, -1, a, true, true);
	for (int i = 0; i < 3; i++)
		vote(i, VOTE_PREVOTE, 0, a);
	for (int i = 0; i < 3; i++)
		vote(i, VOTE_PRECOMMIT, 0, a);
	ck_assert_uint_eq(m.step, CS_DECIDED);
	for (size_t i = 0; i < out.n; i++)
		ck_assert(out.a[i].kind != CSM_VOTE && out.a[i].kind != CSM_PROPOSE);
}
END_TEST

START_TEST(test_stake_thresholds)
{
	/* Exactly 2/3 is not a quorum; exactly 1/3 is not one honest. */
	ck_assert(!cs_quorum(20, 30));
	ck_assert(cs_quorum(21, 30));
	ck_assert(!cs_one_honest(10, 30));
	ck_assert(cs_one_honest(11, 30));
	ck_assert(cs_quorum(UINT64_MAX, UINT64_MAX));
	ck_assert(!cs_quorum(UINT64_MAX / 3 * 2, UINT64_MAX));
}
END_TEST

Suite *round_suite(void)
{
	Suite *s = suite_create("round");
	TCase *tc = tcase_create("round");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_waits_then_decides);
	tcase_add_test(tc, test_prevote_nil_invalid_late_or_missing);
	tcase_add_test(tc, test_lock_refuses_other_values);
	tcase_add_test(tc, test_relock_on_pol_in_current_round);
	tcase_add_test(tc, test_unlock_on_newer_pol_only);
	tcase_add_test(tc, test_pol_waits_for_its_prevotes);
	tcase_add_test(tc, test_proposer_reproposes_valid_value);
	tcase_add_test(tc, test_decides_on_earlier_round);
	tcase_add_test(tc, test_no_decision_without_the_block);
	tcase_add_test(tc, test_round_skip_and_its_bound);
	tcase_add_test(tc, test_timeouts_in_order_and_growing);
	tcase_add_test(tc, test_nil_quorums);
	tcase_add_test(tc, test_duplicate_conflicting_and_forged_votes);
	tcase_add_test(tc, test_non_validator_and_wrong_proposer);
	tcase_add_test(tc, test_other_heights);
	tcase_add_test(tc, test_watching_node_never_votes);
	tcase_add_test(tc, test_stake_thresholds);
	suite_add_tcase(s, tc);
	return s;
}
