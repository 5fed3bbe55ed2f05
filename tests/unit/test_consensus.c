/* Consensus among real ledgers: four validators, each a ledger with its own
 * SQLite store, signer state and consensus WAL in its own data directory,
 * in one process, joined by an in-process network that delivers in order
 * on a simulated clock (the transport of daemon/consensus/engine.h, as tests
 * use it). A node that falls behind syncs the blocks it missed with
 * ledger_apply_synced_block, adopting the certificate each next block names.
 *
 * The crash test forks the four of them and SIGKILLs the process at random
 * moments, sometimes tearing a WAL's last record as a kill inside an append
 * would, then reopens every ledger (which replays its WAL) and checks: every
 * store holds the same blocks and verifies from genesis, the chain goes on,
 * and no validator ever signed two different votes or proposals for one
 * height, round and step (every signed message is logged as it leaves). */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/consensus/msg.h"
#include "daemon/ledger/ledger.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

#define NV 4
#define CHAIN "tally-consensus-test"
#define T0 1700000000000000000ull
#define MSEC 1000000ull

static struct tally_key vkey[NV], user;
static struct genesis gen;
static struct genesis_account accounts[1];
static uint8_t gh[HASH_LEN];
static char base[40];   /* per test case, made and removed in the runner's process */
static char dir[80];    /* per test, inside base: its nodes' directories and log */

struct qmsg {
	int to;
	uint8_t *bytes;
	size_t len;
};

struct timer {
	int node;
	uint64_t at;
	struct cs_timeout t;
};

struct tnode {
	struct tnet *net;
	int idx;
};

struct tnet {
	struct ledger *l[NV];
	struct tnode ctx[NV];
	struct engine_io io[NV];
	char dir[NV][128];
	struct qmsg *q;
	size_t qhead, qn, qcap;
	struct timer *timers;
	size_t ntimers, tcap;
	uint64_t clock;
	uint64_t nonce;
	int logfd;                           /* every signed message, as it left */
};

static void quiet(void *ctx, const char *line)
{
	(void)ctx, (void)line;
}

static void setup(void)
{
	uint8_t seed[32];

	for (int i = 0; i < NV; i++) {
		memset(seed, 0x71 + i, sizeof(seed));
		ck_assert_int_eq(key_from_seed(&vkey[i], seed), 0);
	}
	for (int i = 0; i < NV; i++)
		for (int j = i + 1; j < NV; j++)
			if (memcmp(vkey[j].pub, vkey[i].pub, PUBKEY_LEN) < 0) {
				struct tally_key t = vkey[i];

				vkey[i] = vkey[j];
				vkey[j] = t;
			}
	memset(seed, 0x7f, sizeof(seed));
	ck_assert_int_eq(key_from_seed(&user, seed), 0);
	memset(&gen, 0, sizeof(gen));
	strcpy(gen.chain_id, CHAIN);
	gen.genesis_time_ns = T0;
	gen.validators.n = NV;
	for (int i = 0; i < NV; i++) {
		memcpy(gen.validators.v[i].pubkey, vkey[i].pub, PUBKEY_LEN);
		gen.validators.v[i].stake = 10;
		snprintf(gen.info[i].name, sizeof(gen.info[i].name), "v%d", i);
	}
	memcpy(accounts[0].pubkey, user.pub, PUBKEY_LEN);
	accounts[0].balance = 1000000000;
	gen.accounts = accounts;
	gen.naccounts = 1;
	genesis_hash(&gen, gh);
	lt_test_dir(dir, sizeof(dir), base);
}

static void teardown(void)
{
	cb_rm_tree(dir);
	for (int i = 0; i < NV; i++)
		key_free(&vkey[i]);
	key_free(&user);
}

/* The directory lives in the runner's process (an unchecked fixture), so
 * it goes even when a test fails inside its fork. */
static void base_setup(void)
{
	lt_case_dir(base, sizeof(base), "consensus");
}

static void base_teardown(void)
{
	cb_rm_tree(base);
}

/* --- the network ----------------------------------------------------------------- */

static void log_signed(struct tnet *n, int from, const uint8_t *msg, size_t len)
{
	struct cs_msg m;
	uint32_t hdr[2] = { (uint32_t)from, (uint32_t)len };
	bool own;

	ck_assert_int_eq(cs_msg_decode(&m, msg, len), 0);
	own = m.kind == CS_MSG_VOTE ? !memcmp(m.validator, vkey[from].pub, PUBKEY_LEN) :
	      proposal_verify(&m.p, vkey[from].pub, gh, m.sig) == 0;
	if (!own)
		return;   /* a peer's message sent on again */
	if (write(n->logfd, hdr, sizeof(hdr)) != sizeof(hdr) ||
	    write(n->logfd, msg, len) != (ssize_t)len)
		abort();
}

static void io_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	struct tnode *t = ctx;
	struct tnet *n = t->net;

	log_signed(n, t->idx, msg, len);
	for (int i = 0; i < NV; i++) {
		if (i == t->idx)
			continue;
		if (n->qn == n->qcap) {
			n->qcap = n->qcap ? 2 * n->qcap : 256;
			n->q = realloc(n->q, n->qcap * sizeof(*n->q));
			ck_assert_ptr_nonnull(n->q);
		}
		n->q[n->qn].to = i;
		n->q[n->qn].bytes = malloc(len);
		ck_assert_ptr_nonnull(n->q[n->qn].bytes);
		memcpy(n->q[n->qn].bytes, msg, len);
		n->q[n->qn].len = len;
		n->qn++;
	}
}

static void io_schedule(void *ctx, uint64_t at, const struct cs_timeout *t)
{
	struct tnode *tn = ctx;
	struct tnet *n = tn->net;

	if (n->ntimers == n->tcap) {
		n->tcap = n->tcap ? 2 * n->tcap : 64;
		n->timers = realloc(n->timers, n->tcap * sizeof(*n->timers));
		ck_assert_ptr_nonnull(n->timers);
	}
	n->timers[n->ntimers].node = tn->idx;
	n->timers[n->ntimers].at = at;
	n->timers[n->ntimers].t = *t;
	n->ntimers++;
}

static uint64_t io_now(void *ctx)
{
	struct tnode *t = ctx;

	return t->net->clock;
}

static void net_open(struct tnet *n)
{
	char why[WHY_MAX], logpath[160];

	memset(n, 0, sizeof(*n));
	n->clock = T0 + 1000 * MSEC;
	snprintf(logpath, sizeof(logpath), "%s/signed.log", dir);
	n->logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
	ck_assert_int_ge(n->logfd, 0);
	for (int i = 0; i < NV; i++) {
		struct ledger_config cfg = {
			.genesis = &gen, .validator_key = &vkey[i], .log = quiet,
			.timeouts = {
				.propose_ns = 300 * MSEC, .propose_delta_ns = 100 * MSEC,
				.prevote_ns = 100 * MSEC, .prevote_delta_ns = 50 * MSEC,
				.precommit_ns = 100 * MSEC, .precommit_delta_ns = 50 * MSEC,
				.commit_ns = 20 * MSEC,
			},
			.empty_blocks = true,
		};

		snprintf(n->dir[i], sizeof(n->dir[i]), "%s/node%d", dir, i);
		n->ctx[i].net = n;
		n->ctx[i].idx = i;
		n->io[i].ctx = &n->ctx[i];
		n->io[i].broadcast = io_broadcast;
		n->io[i].schedule = io_schedule;
		n->io[i].now_ns = io_now;
		cfg.data_dir = n->dir[i];
		cfg.consensus_io = &n->io[i];
		ck_assert_msg(ledger_open(&n->l[i], &cfg, why) == 0, "node %d: %s", i, why);
	}
	/* The last nonce the user's transactions used. */
	{
		struct account a;
		int rc = ledger_account(n->l[0], user.pub, &a);

		n->nonce = rc == 0 ? a.nonce : 0;
	}
	for (int i = 0; i < NV; i++)
		ck_assert_msg(ledger_consensus_start(n->l[i], why) == 0, "node %d: %s", i, why);
}

static void net_close(struct tnet *n)
{
	for (int i = 0; i < NV; i++)
		ledger_close(n->l[i]);
	for (size_t i = n->qhead; i < n->qn; i++)
		free(n->q[i].bytes);
	free(n->q);
	free(n->timers);
	close(n->logfd);
}

static uint64_t height_of(struct tnet *n, int i)
{
	struct ledger_status st;

	ledger_status(n->l[i], &st);
	return st.height;
}

/* Node i fetches the blocks it lacks from node j, as block sync does. */
static void sync_from(struct tnet *n, int i, int j)
{
	uint64_t hj = height_of(n, j);
	char why[WHY_MAX];

	/* Each applied block can let the engine decide the next one itself
	 * (messages it held for that height): the next to fetch is always the
	 * one after its tip. */
	for (uint64_t h = height_of(n, i) + 1; h <= hj; h = height_of(n, i) + 1) {
		struct stored_block sb, prev;
		int rc;

		ck_assert_int_eq(ledger_block_raw(n->l[j], h, &sb), 0);
		memset(&prev, 0, sizeof(prev));
		if (h > 1)
			ck_assert_int_eq(ledger_block_raw(n->l[j], h - 1, &prev), 0);
		rc = ledger_apply_synced_block(n->l[i], sb.body, sb.body_len, sb.cert, sb.cert_len,
					       h > 1 ? prev.cert : NULL, prev.cert_len, why);
		ck_assert_msg(rc == 0, "node %d syncing block %llu: %s", i, (unsigned long long)h,
			      why);
		stored_block_free(&sb);
		if (h > 1)
			stored_block_free(&prev);
	}
}

static void submit_tx(struct tnet *n)
{
	struct tx t;
	struct enc e;
	uint8_t hash[HASH_LEN];
	char why[WHY_MAX];

	memset(&t, 0, sizeof(t));
	t.version = TX_VERSION;
	t.kind = TX_TRANSFER;
	strcpy(t.chain_id, CHAIN);
	memcpy(t.signer, user.pub, PUBKEY_LEN);
	t.nonce = n->nonce;
	memcpy(t.u.transfer.to, vkey[n->nonce % NV].pub, PUBKEY_LEN);
	t.u.transfer.amount = 1;
	ck_assert_int_eq(tx_sign(&t, &user, gh), 0);
	enc_init(&e);
	tx_encode(&e, &t);
	ck_assert_int_eq(enc_error(&e), 0);
	/* To every node, as transaction gossip would (a node may refuse it if
	 * it still misses the block with the previous nonce). */
	for (int i = 0; i < NV; i++)
		ledger_submit(n->l[i], e.buf, e.len, hash, why);
	enc_free(&e);
	n->nonce++;
}

/* One delivery, or the earliest timer; false when nothing is left. */
static bool net_step(struct tnet *n)
{
	char why[WHY_MAX];

	if (n->qhead < n->qn) {
		struct qmsg m = n->q[n->qhead++];
		enum csm_check verdict;
		int rc = ledger_consensus_receive(n->l[m.to], m.bytes, m.len, &verdict, why);

		ck_assert_msg(rc == 0 || rc == TALLY_E_DISKFULL, "node %d refused a message: %s",
			      m.to, why);
		/* Behind: sync from the peers ahead, as a transport would. */
		if (verdict == CSM_AHEAD)
			for (int j = 0; j < NV; j++)
				if (height_of(n, j) > height_of(n, m.to))
					sync_from(n, m.to, j);
		free(m.bytes);
		if (n->qhead == n->qn)
			n->qhead = n->qn = 0;
		return true;
	}
	if (n->ntimers) {
		size_t best = 0;
		struct timer t;

		for (size_t i = 1; i < n->ntimers; i++)
			if (n->timers[i].at < n->timers[best].at)
				best = i;
		t = n->timers[best];
		n->timers[best] = n->timers[--n->ntimers];
		if (t.at > n->clock)
			n->clock = t.at;
		ledger_consensus_timeout(n->l[t.node], &t.t);
		return true;
	}
	return false;
}

/* Runs until every node reaches height target (false after max steps). */
static bool net_run(struct tnet *n, uint64_t target, long max)
{
	for (long s = 0; s < max; s++) {
		uint64_t low = UINT64_MAX;

		for (int i = 0; i < NV; i++) {
			uint64_t h = height_of(n, i);

			low = h < low ? h : low;
		}
		if (low >= target)
			return true;
		if (s % 40 == 0)
			submit_tx(n);
		/* A transport sends again what peers may have missed. */
		if (s % 200 == 199)
			for (int i = 0; i < NV; i++)
				ledger_consensus_regossip(n->l[i]);
		if (!net_step(n))
			for (int i = 0; i < NV; i++)
				ledger_consensus_regossip(n->l[i]);
	}
	return false;
}

/* What each node is doing, for a failure message. */
static const char *net_state(struct tnet *n)
{
	static char buf[512];
	size_t off = 0;

	for (int i = 0; i < NV; i++) {
		struct engine_status st;

		ledger_consensus_status(n->l[i], &st);
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					"%snode %d: tip %llu, height %llu round %u %s%s", i ? "; " : "",
					i, (unsigned long long)height_of(n, i),
					(unsigned long long)st.height, st.round, cs_step_name(st.step),
					st.idle ? " idle" : "");
	}
	snprintf(buf + off, sizeof(buf) - off, "; %zu timers, %zu queued", n->ntimers,
		 n->qn - n->qhead);
	return buf;
}

/* --- checks ------------------------------------------------------------------------ */

/* Every store: the same block ids up to the lowest height, the same
 * certificate for every block but each store's last, and a chain that
 * verifies from genesis. */
static void check_agreement(struct tnet *n)
{
	uint64_t low = UINT64_MAX;
	char why[WHY_MAX];

	for (int i = 0; i < NV; i++) {
		uint64_t h = height_of(n, i), verified = 0;

		low = h < low ? h : low;
		ck_assert_msg(ledger_verify_store(n->dir[i], &gen, &verified, why) == 0,
			      "node %d's store: %s", i, why);
		ck_assert_uint_eq(verified, h);
	}
	for (uint64_t h = 1; h <= low; h++) {
		struct stored_block a, b;

		ck_assert_int_eq(ledger_block_raw(n->l[0], h, &a), 0);
		for (int i = 1; i < NV; i++) {
			ck_assert_int_eq(ledger_block_raw(n->l[i], h, &b), 0);
			ck_assert_msg(!memcmp(a.id, b.id, HASH_LEN), "nodes 0 and %d differ at %llu", i,
				      (unsigned long long)h);
			if (h < low)
				ck_assert_msg(a.cert_len == b.cert_len &&
					      !memcmp(a.cert, b.cert, a.cert_len),
					      "nodes 0 and %d hold different certificates for %llu", i,
					      (unsigned long long)h);
			stored_block_free(&b);
		}
		stored_block_free(&a);
	}
}

struct signed_key {
	int node;
	uint8_t step;
	uint64_t height;
	uint32_t round;
	uint8_t id[HASH_LEN];
};

/* No node ever sent two different signed messages for one step. */
static size_t check_no_equivocation(void)
{
	char logpath[160];
	struct signed_key *seen = NULL;
	size_t n = 0, cap = 0;
	uint32_t hdr[2];
	FILE *f;

	snprintf(logpath, sizeof(logpath), "%s/signed.log", dir);
	f = fopen(logpath, "rb");
	ck_assert_ptr_nonnull(f);
	while (fread(hdr, sizeof(hdr), 1, f) == 1) {
		uint8_t *buf = malloc(hdr[1]);
		struct signed_key k = { .node = (int)hdr[0] };
		struct cs_msg m;

		/* A kill can cut the last record short: it never left. */
		if (!buf || fread(buf, 1, hdr[1], f) != hdr[1]) {
			free(buf);
			break;
		}
		ck_assert_int_eq(cs_msg_decode(&m, buf, hdr[1]), 0);
		k.step = m.kind == CS_MSG_VOTE ? m.v.type : 0;
		k.height = m.kind == CS_MSG_VOTE ? m.v.height : m.p.height;
		k.round = m.kind == CS_MSG_VOTE ? m.v.round : m.p.round;
		memcpy(k.id, m.kind == CS_MSG_VOTE ? m.v.block_id : m.p.block_id, HASH_LEN);
		free(buf);
		for (size_t i = 0; i < n; i++)
			if (seen[i].node == k.node && seen[i].step == k.step &&
			    seen[i].height == k.height && seen[i].round == k.round)
				ck_assert_msg(!memcmp(seen[i].id, k.id, HASH_LEN),
					      "node %d signed two different messages for step %u at"
					      " height %llu round %u", k.node, k.step,
					      (unsigned long long)k.height, k.round);
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			seen = realloc(seen, cap * sizeof(*seen));
			ck_assert_ptr_nonnull(seen);
		}
		seen[n++] = k;
	}
	fclose(f);
	free(seen);
	return n;
}

/* --- tests --------------------------------------------------------------------------- */

START_TEST(test_four_validators_agree)
{
	struct tnet n;

	net_open(&n);
	ck_assert_msg(net_run(&n, 12, 200000), "the chain stalled: %s", net_state(&n));
	check_agreement(&n);
	net_close(&n);
	/* Reopened, each replays its WAL and they go on. */
	net_open(&n);
	ck_assert_msg(net_run(&n, 16, 200000), "the chain stalled after a restart: %s",
		      net_state(&n));
	check_agreement(&n);
	net_close(&n);
	/* At least a quorum prevoted and precommitted each height. */
	ck_assert_uint_ge(check_no_equivocation(), 16 * 2 * 3);
}
END_TEST

static void tear_wal(int node, unsigned *seed)
{
	char path[200];
	uint8_t junk[40];
	size_t len = 1 + rand_r(seed) % sizeof(junk);
	int fd;

	snprintf(path, sizeof(path), "%s/node%d/consensus.wal", dir, node);
	for (size_t i = 0; i < len; i++)
		junk[i] = (uint8_t)rand_r(seed);
	junk[0] = 200;   /* a record header promising more than follows */
	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, junk, len), (ssize_t)len);
	close(fd);
}

START_TEST(test_sigkill_at_random_moments)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	uint64_t reached = 0;

	for (int run = 0; run < 6; run++) {
		struct tnet n;
		int status;
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			net_open(&n);
			net_run(&n, UINT64_MAX, 100000000);
			_exit(3);
		}
		usleep(200000 + rand_r(&seed) % 900000);
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status), "the network exited early with %d",
			      WEXITSTATUS(status));
		/* A kill inside an append leaves part of a record. */
		if (rand_r(&seed) % 2)
			tear_wal(rand_r(&seed) % NV, &seed);
		net_open(&n);
		check_agreement(&n);
		reached = height_of(&n, 0);
		ck_assert_msg(net_run(&n, reached + 3, 200000), "the chain stalled after kill %d: %s",
			      run + 1, net_state(&n));
		check_agreement(&n);
		net_close(&n);
	}
	ck_assert_uint_gt(check_no_equivocation(), 0);
}
END_TEST

Suite *consensus_suite(void)
{
	Suite *s = suite_create("consensus");
	TCase *tc = tcase_create("consensus");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_four_validators_agree);
	tcase_add_test(tc, test_sigkill_at_random_moments);
	suite_add_tcase(s, tc);
	return s;
}
