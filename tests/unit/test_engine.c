/* The consensus engine (daemon/consensus/engine.h) with a small in-memory
 * application and its real WAL and signing guard in a temporary directory;
 * the other three validators are played by the test, which signs their
 * votes. A decided block whose commit failed is committed when the engine
 * replays its WAL; after a restart the engine sends again exactly what it
 * had signed; a WAL for a later height than the chain's is refused; a
 * message of the next height waits for it (a forged one is refused, and
 * takes no place of its validator's); an idle engine starts on
 * transactions or on a peer's message; evidence is surfaced once, and
 * found after the commit too. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/consensus/engine.h"
#include "daemon/consensus/proposer.h"
#include "daemon/consensus/timers.h"
#include "daemon/consensus/wal.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

#define NV 4
#define T0 1700000000000000000ull
#define GH ((const uint8_t *)"tally-engine-test genesis hash.")

static struct tally_key key[NV];
static struct validator_set vals;
static int self;                              /* the engine's validator */
static char base[40];   /* per test case, made and removed in the runner's process */
static char dir[80], wal_path[128], pv_path[128];   /* per test, inside base */

/* --- the application ------------------------------------------------------------- */

struct app {
	uint64_t height, time_ns;
	struct commit_cert last_cert;
	uint8_t last_id[HASH_LEN];
	bool fail_commit, txs;
	int commits, evidence;
	struct cs_evidence ev;
} A;

static int a_tip(void *ctx, struct engine_tip *t)
{
	(void)ctx;
	memset(t, 0, sizeof(*t));
	t->height = A.height;
	t->time_ns = A.time_ns;
	t->vals = vals;
	t->last_cert = A.last_cert;
	t->signers = vals;
	return 0;
}

static int a_build(void *ctx, uint64_t height, uint64_t time_ns, const uint8_t proposer[PUBKEY_LEN],
		   const struct commit_cert *prev, uint8_t **out, size_t *len, char *why)
{
	struct block b;
	struct enc e;

	(void)ctx, (void)why, (void)prev;
	memset(&b, 0, sizeof(b));
	b.header.version = BLOCK_VERSION;
	strcpy(b.header.chain_id, "tally-engine-test");
	b.header.height = height;
	b.header.time_ns = time_ns;
	memcpy(b.header.proposer, proposer, PUBKEY_LEN);
	memcpy(b.header.prev_block_id, A.last_id, HASH_LEN);
	enc_init(&e);
	block_encode(&e, &b);
	*out = enc_take(&e, len);
	return 0;
}

static int a_check(void *ctx, const uint8_t *b, size_t len, const struct commit_cert *prev,
		   char *why)
{
	(void)ctx, (void)b, (void)len, (void)prev, (void)why;
	return 0;
}

static int a_commit(void *ctx, const uint8_t *bytes, size_t len, const struct commit_cert *cert,
		    const struct commit_cert *prev, char *why)
{
	struct block b;

	(void)ctx, (void)prev;
	if (A.fail_commit)
		return why_set(why, TALLY_E_STORE, "the store failed (the test says so)");
	ck_assert_int_eq(block_decode(&b, bytes, len), 0);
	ck_assert_uint_eq(b.header.height, A.height + 1);
	ck_assert_int_eq(cert_verify(cert, &vals, GH), 0);
	block_id(&b.header, A.last_id);
	ck_assert_mem_eq(cert->block_id, A.last_id, HASH_LEN);
	A.height = b.header.height;
	A.time_ns = b.header.time_ns;
	A.last_cert = *cert;
	A.commits++;
	block_free(&b);
	return 0;
}

static bool a_has_txs(void *ctx)
{
	(void)ctx;
	return A.txs;
}

static void a_evidence(void *ctx, const struct cs_evidence *ev)
{
	(void)ctx;
	A.evidence++;
	A.ev = *ev;
}

static const struct engine_app app = {
	.tip = a_tip, .build = a_build, .check = a_check, .commit = a_commit,
	.has_txs = a_has_txs, .evidence = a_evidence,
};

/* --- the I/O: what the engine sends is kept ---------------------------------------- */

#define SENT_MAX 256
static struct { uint8_t *bytes; size_t len; } sent[SENT_MAX];
static size_t nsent;
static uint64_t clock_ns = T0 + 5000000000ull;

static void io_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	(void)ctx;
	ck_assert_uint_lt(nsent, SENT_MAX);
	sent[nsent].bytes = malloc(len);
	memcpy(sent[nsent].bytes, msg, len);
	sent[nsent].len = len;
	nsent++;
}

static void io_schedule(void *ctx, uint64_t at, const struct cs_timeout *t)
{
	(void)ctx, (void)at, (void)t;
}

static uint64_t io_now(void *ctx)
{
	(void)ctx;
	return clock_ns;
}

static const struct engine_io io = { .broadcast = io_broadcast, .schedule = io_schedule,
				     .now_ns = io_now };

static void clear_sent(void)
{
	for (size_t i = 0; i < nsent; i++)
		free(sent[i].bytes);
	nsent = 0;
}

/* --- fixture ------------------------------------------------------------------------ */

static struct privval pv;

static void setup(void)
{
	uint8_t seed[32];

	for (int i = 0; i < NV; i++) {
		memset(seed, 0x91 + i, sizeof(seed));
		ck_assert_int_eq(key_from_seed(&key[i], seed), 0);
	}
	for (int i = 0; i < NV; i++)
		for (int j = i + 1; j < NV; j++)
			if (memcmp(key[j].pub, key[i].pub, PUBKEY_LEN) < 0) {
				struct tally_key t = key[i];

				key[i] = key[j];
				key[j] = t;
			}
	memset(&vals, 0, sizeof(vals));
	vals.n = NV;
	for (int i = 0; i < NV; i++) {
		memcpy(vals.v[i].pubkey, key[i].pub, PUBKEY_LEN);
		vals.v[i].stake = 10;
	}
	/* The engine proposes height 1, round 0. */
	self = (int)valset_proposer(&vals, 0);
	memset(&A, 0, sizeof(A));
	A.time_ns = T0;
	/* Each test starts with no WAL and no signer state: a directory of
	 * its own. */
	lt_test_dir(dir, sizeof(dir), base);
	snprintf(wal_path, sizeof(wal_path), "%s/consensus.wal", dir);
	snprintf(pv_path, sizeof(pv_path), "%s/signer_state", dir);
}

static void teardown(void)
{
	cb_rm_tree(dir);
	clear_sent();
	for (int i = 0; i < NV; i++)
		key_free(&key[i]);
}

/* The case's directory lives in the runner's process (an unchecked
 * fixture), so it goes even when a test fails inside its fork. */
static void dir_setup(void)
{
	lt_case_dir(base, sizeof(base), "engine");
}

static void dir_teardown(void)
{
	cb_rm_tree(base);
}

static struct engine *start(bool wait_for_txs)
{
	struct engine_config cfg = { .chain = GH, .wal_path = wal_path, .pv = &pv,
				     .wait_for_txs = wait_for_txs };
	struct engine *e;
	char why[WHY_MAX];

	ck_assert_int_eq(privval_open(&pv, pv_path, &key[self], why), 0);
	ck_assert_msg(engine_open(&e, &cfg, &app, why) == 0, "%s", why);
	ck_assert_msg(engine_start(e, &io, why) == 0, "%s", why);
	return e;
}

static void stop(struct engine *e)
{
	engine_close(e);
	privval_close(&pv);
}

static int other(int i)
{
	return i < self ? i : i + 1;
}

static enum csm_check send_vote(struct engine *e, int k, uint8_t type, uint64_t height,
				uint32_t round, const uint8_t id[HASH_LEN])
{
	struct cs_msg m = { .kind = CS_MSG_VOTE };
	enum csm_check verdict;
	char why[WHY_MAX];
	struct enc enc;
	int rc;

	m.v.type = type;
	m.v.height = height;
	m.v.round = round;
	memcpy(m.v.block_id, id, HASH_LEN);
	memcpy(m.validator, key[k].pub, PUBKEY_LEN);
	ck_assert_int_eq(vote_sign(&m.v, &key[k], GH, m.sig), 0);
	enc_init(&enc);
	cs_msg_encode(&enc, &m);
	rc = engine_receive(e, enc.buf, enc.len, &verdict, why);
	ck_assert_msg(rc == 0, "%s", why);
	enc_free(&enc);
	return verdict;
}

/* A precommit for id at height, round 0, naming validator k but signed by
 * a key outside the set: refused as a forgery (the driver drops the peer
 * that sent it) and used for nothing. */
static void send_forged_precommit(struct engine *e, int k, uint64_t height,
				  const uint8_t id[HASH_LEN])
{
	struct cs_msg m = { .kind = CS_MSG_VOTE };
	struct tally_key stranger;
	enum csm_check verdict;
	uint8_t seed[32];
	char why[WHY_MAX];
	struct enc enc;

	memset(seed, 0x07, sizeof(seed));
	ck_assert_int_eq(key_from_seed(&stranger, seed), 0);
	m.v.type = VOTE_PRECOMMIT;
	m.v.height = height;
	memcpy(m.v.block_id, id, HASH_LEN);
	memcpy(m.validator, key[k].pub, PUBKEY_LEN);
	ck_assert_int_eq(vote_sign(&m.v, &stranger, GH, m.sig), 0);
	enc_init(&enc);
	cs_msg_encode(&enc, &m);
	ck_assert_int_eq(engine_receive(e, enc.buf, enc.len, &verdict, why), TALLY_E_SIGNATURE);
	enc_free(&enc);
	key_free(&stranger);
}

/* The block of the proposal the engine sent, and its own votes' ids. */
static bool find_sent(uint8_t kind, uint8_t type, struct cs_msg *out)
{
	for (size_t i = 0; i < nsent; i++) {
		struct cs_msg m;

		ck_assert_int_eq(cs_msg_decode(&m, sent[i].bytes, sent[i].len), 0);
		if (m.kind == kind && (kind == CS_MSG_PROPOSAL || m.v.type == type)) {
			*out = m;
			return true;
		}
	}
	return false;
}

/* Height 1 up to this node's precommit of its own block; the block id. */
static void to_precommit(struct engine *e, uint8_t id[HASH_LEN])
{
	struct cs_msg m;

	ck_assert_int_eq(engine_skip_wait(e), 0);
	ck_assert(find_sent(CS_MSG_PROPOSAL, 0, &m));
	memcpy(id, m.p.block_id, HASH_LEN);
	ck_assert(find_sent(CS_MSG_VOTE, VOTE_PREVOTE, &m));
	ck_assert_mem_eq(m.v.block_id, id, HASH_LEN);
	ck_assert_int_eq(send_vote(e, other(0), VOTE_PREVOTE, 1, 0, id), CSM_ACCEPT);
	ck_assert_int_eq(send_vote(e, other(1), VOTE_PREVOTE, 1, 0, id), CSM_ACCEPT);
	ck_assert(find_sent(CS_MSG_VOTE, VOTE_PRECOMMIT, &m));
	ck_assert_mem_eq(m.v.block_id, id, HASH_LEN);
}

/* --- tests ---------------------------------------------------------------------------- */

START_TEST(test_decided_block_survives_failed_commit)
{
	struct engine *e = start(false);
	struct engine_status st;
	uint8_t id[HASH_LEN];

	to_precommit(e, id);
	A.fail_commit = true;
	send_vote(e, other(0), VOTE_PRECOMMIT, 1, 0, id);
	send_vote(e, other(1), VOTE_PRECOMMIT, 1, 0, id);
	engine_status(e, &st);
	ck_assert_uint_eq(st.step, CS_DECIDED);
	ck_assert_int_eq(A.commits, 0);
	ck_assert_int_eq(engine_take_error(e, NULL), TALLY_E_STORE);
	stop(e);
	/* The store works again: the replay decides and commits the block. */
	A.fail_commit = false;
	e = start(false);
	ck_assert_int_eq(A.commits, 1);
	ck_assert_uint_eq(A.height, 1);
	ck_assert_mem_eq(A.last_id, id, HASH_LEN);
	ck_assert_uint_eq(A.last_cert.n, 3);
	engine_status(e, &st);
	ck_assert_uint_eq(st.height, 2);
	ck_assert_uint_eq(st.step, CS_NEW_HEIGHT);
	ck_assert_uint_gt(st.replayed, 4);
	stop(e);
}
END_TEST

START_TEST(test_restart_resends_what_was_signed)
{
	struct engine *e = start(false);
	uint8_t id[HASH_LEN];
	uint8_t *before[SENT_MAX];
	size_t lens[SENT_MAX], n;

	to_precommit(e, id);
	n = nsent;
	for (size_t i = 0; i < n; i++) {
		before[i] = sent[i].bytes;
		lens[i] = sent[i].len;
	}
	nsent = 0;
	stop(e);
	/* After a restart it sends its proposal and votes again, byte for byte. */
	e = start(false);
	for (size_t i = 0; i < n; i++) {
		bool found = false;

		for (size_t j = 0; j < nsent && !found; j++)
			found = sent[j].len == lens[i] && !memcmp(sent[j].bytes, before[i], lens[i]);
		ck_assert_msg(found, "message %zu was not sent again as it was", i);
		free(before[i]);
	}
	/* Every message it sends now is one it had signed already. */
	for (size_t j = 0; j < nsent; j++) {
		struct cs_msg m;

		ck_assert_int_eq(cs_msg_decode(&m, sent[j].bytes, sent[j].len), 0);
		if (m.kind == CS_MSG_VOTE && !memcmp(m.validator, key[self].pub, PUBKEY_LEN))
			ck_assert_mem_eq(m.v.block_id, id, HASH_LEN);
	}
	/* The decision then goes through. */
	send_vote(e, other(0), VOTE_PRECOMMIT, 1, 0, id);
	send_vote(e, other(1), VOTE_PRECOMMIT, 1, 0, id);
	ck_assert_int_eq(A.commits, 1);
	stop(e);
}
END_TEST

START_TEST(test_wal_of_a_later_height_refused)
{
	struct engine_config cfg = { .chain = GH, .wal_path = wal_path, .pv = &pv };
	struct engine *e;
	struct wal *w;
	char why[WHY_MAX];

	ck_assert_int_eq(wal_open(&w, wal_path, why), 0);
	ck_assert_int_eq(wal_start_height(w, 5, why), 0);
	wal_close(w);
	ck_assert_int_eq(privval_open(&pv, pv_path, &key[self], why), 0);
	ck_assert_int_eq(engine_open(&e, &cfg, &app, why), TALLY_E_STATE);
	ck_assert_ptr_nonnull(strstr(why, "height 5"));
	privval_close(&pv);
}
END_TEST

START_TEST(test_next_height_message_waits)
{
	struct engine *e = start(false);
	uint8_t id[HASH_LEN], nil[HASH_LEN] = { 0 };

	to_precommit(e, id);
	/* A peer already at height 2. */
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PREVOTE, 2, 0, nil), CSM_NEXT_HEIGHT);
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PREVOTE, 3, 0, nil), CSM_AHEAD);
	send_vote(e, other(0), VOTE_PRECOMMIT, 1, 0, id);
	send_vote(e, other(1), VOTE_PRECOMMIT, 1, 0, id);
	ck_assert_uint_eq(A.height, 1);
	/* Height 2 took the waiting vote. */
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PREVOTE, 2, 0, nil), CSM_DUPLICATE);
	ck_assert_int_eq(send_vote(e, other(0), VOTE_PREVOTE, 1, 0, id), CSM_OLD);
	stop(e);
}
END_TEST

/* A peer forging votes of the next height in a validator's name: each is
 * refused (the driver drops that peer) and takes none of the places the
 * engine keeps for that validator's early votes, so its own vote, coming
 * after them, still waits for height 2 and counts there. */
START_TEST(test_next_height_forgeries_leave_room)
{
	struct engine *e = start(false);
	uint8_t id[HASH_LEN], nil[HASH_LEN] = { 0 }, junk[HASH_LEN];

	to_precommit(e, id);
	for (int i = 0; i < 8; i++) {
		memset(junk, 0x40 + i, sizeof(junk));
		send_forged_precommit(e, other(2), 2, junk);
	}
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PREVOTE, 2, 0, nil), CSM_NEXT_HEIGHT);
	send_vote(e, other(0), VOTE_PRECOMMIT, 1, 0, id);
	send_vote(e, other(1), VOTE_PRECOMMIT, 1, 0, id);
	ck_assert_uint_eq(A.height, 1);
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PREVOTE, 2, 0, nil), CSM_DUPLICATE);
	stop(e);
}
END_TEST

/* A proposal for height 2, round 1, of a new block on block prev by
 * validator k, signed by signer; the engine's verdict. */
static enum csm_check send_next_proposal(struct engine *e, int k, const struct tally_key *signer,
					 const uint8_t prev[HASH_LEN], uint64_t t, int *rc)
{
	struct cs_msg m = { .kind = CS_MSG_PROPOSAL };
	enum csm_check verdict = CSM_IGNORED;
	struct block b;
	struct enc eb, ep, em;
	char why[WHY_MAX];

	memset(&b, 0, sizeof(b));
	b.header.version = BLOCK_VERSION;
	strcpy(b.header.chain_id, "tally-engine-test");
	b.header.height = 2;
	b.header.time_ns = t;
	memcpy(b.header.proposer, key[k].pub, PUBKEY_LEN);
	memcpy(b.header.prev_block_id, prev, HASH_LEN);
	enc_init(&eb);
	block_encode(&eb, &b);
	m.p.height = 2;
	m.p.round = 1;
	m.p.pol_round = -1;
	block_id(&b.header, m.p.block_id);
	enc_init(&ep);
	proposal_encode(&ep, &m.p);
	ck_assert_int_eq(sig_sign(signer, SIG_PROPOSAL, GH, ep.buf, ep.len, m.sig), 0);
	m.block = eb.buf;
	m.block_len = eb.len;
	enc_init(&em);
	cs_msg_encode(&em, &m);
	*rc = engine_receive(e, em.buf, em.len, &verdict, why);
	enc_free(&eb);
	enc_free(&ep);
	enc_free(&em);
	return verdict;
}

/* Proposals of the next height signed by others than the proposer their
 * block names take none of the two places the engine keeps for them, and
 * accuse nobody: the real one, coming after them, still waits for height 2
 * and is the round's proposal there. */
START_TEST(test_next_height_forged_proposals_leave_room)
{
	struct engine *e = start(false);
	uint8_t id[HASH_LEN], nil[HASH_LEN] = { 0 };
	struct tally_key stranger;
	uint8_t seed[32];
	int p = (int)valset_proposer(&vals, 1), rc;

	ck_assert_int_ne(p, self);
	memset(seed, 0x09, sizeof(seed));
	ck_assert_int_eq(key_from_seed(&stranger, seed), 0);
	to_precommit(e, id);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(send_next_proposal(e, p, &stranger, id, T0 + 5000 + i, &rc),
				 CSM_NEXT_HEIGHT);
		ck_assert_int_eq(rc, 0);
	}
	ck_assert_int_eq(send_next_proposal(e, p, &key[p], id, T0 + 4000, &rc), CSM_NEXT_HEIGHT);
	ck_assert_int_eq(rc, 0);
	send_vote(e, other(0), VOTE_PRECOMMIT, 1, 0, id);
	send_vote(e, other(1), VOTE_PRECOMMIT, 1, 0, id);
	ck_assert_uint_eq(A.height, 1);
	/* Round 1 of height 2 (the others' precommits for nil in round 0). */
	for (int i = 0; i < 3; i++)
		send_vote(e, other(i), VOTE_PRECOMMIT, 2, 0, nil);
	for (int i = 0; i < 3; i++)
		send_vote(e, other(i), VOTE_PREVOTE, 2, 1, nil);
	ck_assert_int_eq(send_next_proposal(e, p, &key[p], id, T0 + 4000, &rc), CSM_DUPLICATE);
	key_free(&stranger);
	stop(e);
}
END_TEST

START_TEST(test_idle_until_transactions_or_a_peer)
{
	struct cs_timeout t = { .height = 1, .round = 0, .wait = CS_WAIT_COMMIT };
	struct engine_status st;
	struct engine *e = start(true);
	uint8_t nil[HASH_LEN] = { 0 };

	ck_assert_int_eq(engine_on_timeout(e, &t), 0);
	engine_status(e, &st);
	ck_assert(st.idle);
	ck_assert_uint_eq(st.step, CS_NEW_HEIGHT);
	ck_assert_uint_eq(nsent, 0);
	/* Transactions arrive: round 0 starts and this node proposes. */
	A.txs = true;
	ck_assert_int_eq(engine_txs_available(e), 0);
	engine_status(e, &st);
	ck_assert(!st.idle);
	ck_assert_uint_ge(st.step, CS_PROPOSE);
	ck_assert_uint_gt(nsent, 0);
	stop(e);
	/* Idle again after a restart; a peer's message of this height wakes it. */
	A.txs = false;
	clear_sent();
	unlink(wal_path);
	unlink(pv_path);
	e = start(true);
	ck_assert_int_eq(engine_on_timeout(e, &t), 0);
	engine_status(e, &st);
	ck_assert(st.idle);
	ck_assert_int_eq(send_vote(e, other(1), VOTE_PREVOTE, 1, 0, nil), CSM_ACCEPT);
	engine_status(e, &st);
	ck_assert(!st.idle);
	ck_assert_uint_ge(st.step, CS_PROPOSE);
	stop(e);
}
END_TEST

/* Whether the engine's regossip of the last block's certificate carries
 * validator k's precommit for it. */
static bool regossips_precommit_of(struct engine *e, int k, const uint8_t id[HASH_LEN])
{
	clear_sent();
	engine_regossip(e);
	for (size_t i = 0; i < nsent; i++) {
		struct cs_msg m;

		ck_assert_int_eq(cs_msg_decode(&m, sent[i].bytes, sent[i].len), 0);
		if (m.kind == CS_MSG_VOTE && m.v.type == VOTE_PRECOMMIT && m.v.height == 1 &&
		    !memcmp(m.v.block_id, id, HASH_LEN) && !memcmp(m.validator, key[k].pub, PUBKEY_LEN))
			return true;
	}
	return false;
}

/* A precommit for the decided block that comes after the decision joins the
 * certificate the engine names next; a forged one, one for another block
 * or one from outside the set does not. */
START_TEST(test_late_precommit_joins_certificate)
{
	struct engine *e = start(false);
	uint8_t id[HASH_LEN], other_id[HASH_LEN];

	to_precommit(e, id);
	send_vote(e, other(0), VOTE_PRECOMMIT, 1, 0, id);
	send_vote(e, other(1), VOTE_PRECOMMIT, 1, 0, id);
	ck_assert_int_eq(A.commits, 1);
	ck_assert_uint_eq(A.last_cert.n, 3);
	ck_assert(!regossips_precommit_of(e, other(2), id));
	/* Another block's precommit, and a key outside the set: nothing. */
	memset(other_id, 0x5a, sizeof(other_id));
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PRECOMMIT, 1, 0, other_id), CSM_OLD);
	ck_assert(!regossips_precommit_of(e, other(2), id));
	send_forged_precommit(e, other(2), 1, id);
	ck_assert(!regossips_precommit_of(e, other(2), id));
	/* The real one joins it, once. */
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PRECOMMIT, 1, 0, id), CSM_OLD);
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PRECOMMIT, 1, 0, id), CSM_OLD);
	ck_assert(regossips_precommit_of(e, other(2), id));
	stop(e);
}
END_TEST

/* A validator that decides from the others' precommits before it
 * precommitted itself signs that precommit afterwards, sends it, and names
 * it in its next certificate. */
START_TEST(test_decided_without_own_precommit_signs_it)
{
	struct engine *e = start(false);
	uint8_t id[HASH_LEN];
	struct cs_msg m;

	ck_assert_int_eq(engine_skip_wait(e), 0);
	ck_assert(find_sent(CS_MSG_PROPOSAL, 0, &m));
	memcpy(id, m.p.block_id, HASH_LEN);
	ck_assert(!find_sent(CS_MSG_VOTE, VOTE_PRECOMMIT, &m));
	clear_sent();
	/* The others' precommits arrive before any polka reached this node. */
	for (int k = 0; k < NV - 1; k++)
		send_vote(e, other(k), VOTE_PRECOMMIT, 1, 0, id);
	ck_assert_int_eq(A.commits, 1);
	ck_assert_uint_eq(A.last_cert.n, 3);
	ck_assert(find_sent(CS_MSG_VOTE, VOTE_PRECOMMIT, &m));
	ck_assert_mem_eq(m.validator, key[self].pub, PUBKEY_LEN);
	ck_assert_uint_eq(m.v.height, 1);
	ck_assert_mem_eq(m.v.block_id, id, HASH_LEN);
	ck_assert(regossips_precommit_of(e, self, id));
	stop(e);
}
END_TEST

START_TEST(test_evidence_surfaced_once)
{
	struct engine *e = start(false);
	struct engine_status st;
	uint8_t id[HASH_LEN], nil[HASH_LEN] = { 0 }, junk[HASH_LEN];

	to_precommit(e, id);
	memset(junk, 0x5a, HASH_LEN);
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PREVOTE, 1, 0, nil), CSM_ACCEPT);
	/* For the proposed block: counted for it, and evidence. */
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PREVOTE, 1, 0, id), CSM_ACCEPT);
	ck_assert_int_eq(A.evidence, 1);
	ck_assert_mem_eq(A.ev.validator, key[other(2)].pub, PUBKEY_LEN);
	ck_assert_int_eq(vote_verify(&A.ev.a, A.ev.validator, GH, A.ev.sig_a), 0);
	ck_assert_int_eq(vote_verify(&A.ev.b, A.ev.validator, GH, A.ev.sig_b), 0);
	ck_assert_mem_ne(A.ev.a.block_id, A.ev.b.block_id, HASH_LEN);
	/* For a block nobody proposed: not kept, and not reported again. */
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PREVOTE, 1, 0, junk), CSM_EQUIVOCATION);
	ck_assert_int_eq(A.evidence, 1);
	engine_status(e, &st);
	ck_assert_uint_eq(st.evidence, 1);
	stop(e);
}
END_TEST

/* A precommit that conflicts with one the certificate holds, arriving after
 * the commit, is evidence like one found during the height: once per step,
 * with the certificate's signature and the late vote's, both verifying. A
 * forged one, or a conflicting one from a validator the certificate does
 * not hold (nothing to pair it with), is not. */
START_TEST(test_late_equivocation_is_evidence)
{
	struct engine *e = start(false);
	struct engine_status st;
	uint8_t id[HASH_LEN], other_id[HASH_LEN], nil[HASH_LEN] = { 0 };

	to_precommit(e, id);
	send_vote(e, other(0), VOTE_PRECOMMIT, 1, 0, id);
	send_vote(e, other(1), VOTE_PRECOMMIT, 1, 0, id);
	ck_assert_int_eq(A.commits, 1);
	ck_assert_int_eq(A.evidence, 0);
	memset(other_id, 0x5a, sizeof(other_id));
	/* other(2) is not in the certificate: nothing to pair it with. */
	ck_assert_int_eq(send_vote(e, other(2), VOTE_PRECOMMIT, 1, 0, other_id), CSM_OLD);
	ck_assert_int_eq(A.evidence, 0);
	/* Signed by a stranger in other(0)'s name: nothing. */
	send_forged_precommit(e, other(0), 1, other_id);
	ck_assert_int_eq(A.evidence, 0);
	/* other(0) signed another precommit for round 0: evidence. */
	ck_assert_int_eq(send_vote(e, other(0), VOTE_PRECOMMIT, 1, 0, other_id), CSM_OLD);
	ck_assert_int_eq(A.evidence, 1);
	ck_assert_mem_eq(A.ev.validator, key[other(0)].pub, PUBKEY_LEN);
	ck_assert_uint_eq(A.ev.a.height, 1);
	ck_assert_uint_eq(A.ev.b.height, 1);
	ck_assert_mem_eq(A.ev.a.block_id, id, HASH_LEN);
	ck_assert_mem_eq(A.ev.b.block_id, other_id, HASH_LEN);
	ck_assert_int_eq(vote_verify(&A.ev.a, A.ev.validator, GH, A.ev.sig_a), 0);
	ck_assert_int_eq(vote_verify(&A.ev.b, A.ev.validator, GH, A.ev.sig_b), 0);
	/* A third vote of the same step (nil) is the same offence. */
	ck_assert_int_eq(send_vote(e, other(0), VOTE_PRECOMMIT, 1, 0, nil), CSM_OLD);
	ck_assert_int_eq(A.evidence, 1);
	/* The certificate keeps its signers. */
	ck_assert_uint_eq(A.last_cert.n, 3);
	engine_status(e, &st);
	ck_assert_uint_eq(st.evidence, 1);
	stop(e);
}
END_TEST

/* The timers an I/O layer keeps: one per (height, round, wait), the
 * latest request winning; fired earliest first, only once due. */
START_TEST(test_timer_set)
{
	struct cs_timers s = { 0 };
	struct cs_timeout a = { 5, 0, CS_WAIT_PROPOSE }, b = { 5, 1, CS_WAIT_PROPOSE },
			  c = { 5, 0, CS_WAIT_PREVOTE }, got;

	ck_assert_uint_eq(cs_timers_next(&s), UINT64_MAX);
	ck_assert(!cs_timers_pop(&s, UINT64_MAX, &got));
	ck_assert_int_eq(cs_timers_set(&s, 300, &a), 0);
	ck_assert_int_eq(cs_timers_set(&s, 200, &b), 0);
	ck_assert_int_eq(cs_timers_set(&s, 100, &c), 0);
	ck_assert_int_eq(cs_timers_set(&s, 50, &a), 0);   /* armed again: earlier */
	ck_assert_uint_eq(s.n, 3);
	ck_assert_uint_eq(cs_timers_next(&s), 50);
	ck_assert(!cs_timers_pop(&s, 49, &got));
	ck_assert(cs_timers_pop(&s, 150, &got));
	ck_assert(!memcmp(&got, &a, sizeof(got)));
	ck_assert(cs_timers_pop(&s, 150, &got));
	ck_assert(!memcmp(&got, &c, sizeof(got)));
	ck_assert(!cs_timers_pop(&s, 150, &got));
	ck_assert(cs_timers_pop(&s, UINT64_MAX, &got));
	ck_assert(!memcmp(&got, &b, sizeof(got)));
	ck_assert_uint_eq(s.n, 0);
	cs_timers_free(&s);
}
END_TEST

Suite *engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("engine");

	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_decided_block_survives_failed_commit);
	tcase_add_test(tc, test_restart_resends_what_was_signed);
	tcase_add_test(tc, test_wal_of_a_later_height_refused);
	tcase_add_test(tc, test_next_height_message_waits);
	tcase_add_test(tc, test_next_height_forgeries_leave_room);
	tcase_add_test(tc, test_next_height_forged_proposals_leave_room);
	tcase_add_test(tc, test_idle_until_transactions_or_a_peer);
	tcase_add_test(tc, test_evidence_surfaced_once);
	tcase_add_test(tc, test_late_precommit_joins_certificate);
	tcase_add_test(tc, test_late_equivocation_is_evidence);
	tcase_add_test(tc, test_decided_without_own_precommit_signs_it);
	tcase_add_test(tc, test_timer_set);
	suite_add_tcase(s, tc);
	return s;
}
