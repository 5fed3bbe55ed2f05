/* The mempool's durable copy, DATA_DIR/mempool.log (daemon/ledger/pending.h),
 * through the ledger on real files: transactions accepted and not committed
 * are in the pool again, in the same order, after the ledger is closed and
 * reopened or opened on a copy of the log taken while it was open (what a
 * SIGKILL leaves); held ones too; the next block commits each exactly once.
 * A log torn at every byte of its last record, damaged, or of garbage opens
 * with the records before the damage; records of transactions committed
 * since are dropped; the log is emptied or rewritten after blocks, so it
 * does not grow with the chain. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/ledger/ledger.h"
#include "daemon/ledger/pending.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

/* Under ASan (make check-unit SAN=1) the torn-tail loop takes every
 * STRIDE-th cut, the plain run every one. */
#ifdef __SANITIZE_ADDRESS__
#define STRIDE 7
#else
#define STRIDE 1
#endif

#define CHAIN "tally-pending-test"
#define T0 1700000000000000000ull          /* genesis time, ns */
#define SEC 1000000000ull
#define FUNDS 10000000ull
#define STAKE 1000ull

static struct lt_world w;

static void base_setup(void)
{
	lt_world_case_begin(&w, "pending");
}

static void base_teardown(void)
{
	lt_world_case_end(&w);
}

static void setup(void)
{
	lt_world_begin(&w, CHAIN, T0, 0x50, STAKE, FUNDS);
}

static void teardown(void)
{
	lt_world_end(&w);
}

/* The ledger's log lines, kept for the test to read. */
static char last_lines[4][512];

static void keep_line(void *ctx, const char *line)
{
	(void)ctx;
	memmove(last_lines[1], last_lines[0], sizeof(last_lines) - sizeof(last_lines[0]));
	snprintf(last_lines[0], sizeof(last_lines[0]), "%s", line);
}

static bool logged(const char *part)
{
	for (size_t i = 0; i < 4; i++)
		if (strstr(last_lines[i], part))
			return true;
	return false;
}

static struct ledger *open_at(const char *path)
{
	struct ledger_config cfg = {
		.data_dir = path, .genesis = &w.gen, .validator_key = &w.keys[LT_VAL],
		.log = keep_line,
	};
	struct ledger *l = NULL;
	char why[WHY_MAX];
	int rc;

	memset(last_lines, 0, sizeof(last_lines));
	rc = ledger_open(&l, &cfg, why);
	ck_assert_msg(rc == 0, "ledger_open: %s (%s)", why, tally_strerror(rc));
	return l;
}

static void make_transfer(struct signed_tx *out, int from, int to, uint64_t nonce, uint64_t amount)
{
	lt_transfer(out, CHAIN, &w.keys[from], &w.keys[to], nonce, amount, &w.gen);
}

static uint64_t balance(struct ledger *l, int who)
{
	return lt_balance(l, w.keys[who].pub);
}

/* The pending (queued) transactions' hashes, in mempool order. */
struct pool_list {
	uint8_t hash[64][HASH_LEN];
	size_t n;
};

static int list_one(void *ctx, const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN])
{
	struct pool_list *p = ctx;

	(void)bytes; (void)len;
	ck_assert_uint_lt(p->n, 64);
	memcpy(p->hash[p->n++], hash, HASH_LEN);
	return 0;
}

static struct pool_list pool_of(struct ledger *l)
{
	struct pool_list p = { .n = 0 };

	ck_assert_int_eq(ledger_pending_each(l, list_one, &p), 0);
	return p;
}

static void path_in(char *out, size_t size, const char *d, const char *name)
{
	ck_assert_int_lt(snprintf(out, size, "%s/%s", d, name), (int)size);
}

/* The whole of a file (*len bytes; malloc'd). */
static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	FILE *f = fopen(path, "rb");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fstat(fileno(f), &st), 0);
	b = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(fread(b, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	*len = (size_t)st.st_size;
	return b;
}

static void spill(const char *path, const uint8_t *b, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(b, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* A fresh data directory beside the test's, with the log given. */
static void fresh_dir_with_log(char *out, size_t size, const char *name, const uint8_t *log,
			       size_t len)
{
	char p[256];

	ck_assert_int_lt(snprintf(out, size, "%s/%s", w.dir, name), (int)size);
	ck_assert_int_eq(mkdir(out, 0700), 0);
	path_in(p, sizeof(p), out, PENDING_FILE);
	spill(p, log, len);
}

/* The transactions queued and held survive a reopen, and a copy of the log
 * taken while the ledger was open; in order, committed once each. */
START_TEST(test_pending_survives_reopen)
{
	struct signed_tx s[5], other;
	char logp[256], copy[128];
	uint8_t *log;
	size_t len;
	struct ledger *l = open_at(w.dir);

	for (int i = 0; i < 3; i++) {
		make_transfer(&s[i], LT_TENANT, LT_OTHER, i, 100 + i);
		ck_assert(!lt_submit_held(l, &s[i]));
	}
	make_transfer(&s[4], LT_TENANT, LT_OTHER, 4, 104);
	ck_assert(lt_submit_held(l, &s[4]));
	make_transfer(&other, LT_OTHER, LT_TENANT, 0, 7);
	ck_assert(!lt_submit_held(l, &other));
	/* What a SIGKILL now would leave: the log as it is. */
	path_in(logp, sizeof(logp), w.dir, PENDING_FILE);
	log = slurp(logp, &len);
	ck_assert_uint_gt(len, 0);
	ledger_close(l);

	for (int round = 0; round < 2; round++) {
		const char *d = w.dir;

		if (round == 1) {
			fresh_dir_with_log(copy, sizeof(copy), "killed", log, len);
			d = copy;
		}
		l = open_at(d);
		ck_assert_msg(logged("mempool: 5 pending transactions restored from mempool.log,"
				     " 0 no longer applied"), "%s", last_lines[0]);
		struct pool_list p = pool_of(l);
		ck_assert_uint_eq(p.n, 4);
		ck_assert_mem_eq(p.hash[0], s[0].hash, HASH_LEN);
		ck_assert_mem_eq(p.hash[1], s[1].hash, HASH_LEN);
		ck_assert_mem_eq(p.hash[2], s[2].hash, HASH_LEN);
		ck_assert_mem_eq(p.hash[3], other.hash, HASH_LEN);
		ck_assert_int_eq(lt_tx_state(l, s[4].hash), LEDGER_TX_HELD);
		/* The gap fills: the held one follows. */
		make_transfer(&s[3], LT_TENANT, LT_OTHER, 3, 103);
		ck_assert(!lt_submit_held(l, &s[3]));
		struct ledger_block_result r = lt_produce(l, T0 + SEC);
		ck_assert_uint_eq(r.ntx, 6);
		ck_assert_uint_eq(r.ndropped, 0);
		for (int i = 0; i < 5; i++)
			ck_assert_int_eq(lt_tx_state(l, s[i].hash), LEDGER_TX_COMMITTED);
		ck_assert_uint_eq(balance(l, LT_TENANT), FUNDS - (100 + 101 + 102 + 103 + 104) + 7);
		ck_assert_uint_eq(balance(l, LT_OTHER), FUNDS + (100 + 101 + 102 + 103 + 104) - 7);
		/* Nothing left to commit twice, now or after another reopen. */
		ck_assert_uint_eq(lt_produce(l, T0 + 2 * SEC).ntx, 0);
		ledger_close(l);
		l = open_at(d);
		ck_assert_uint_eq(pool_of(l).n, 0);
		ck_assert_uint_eq(lt_produce(l, T0 + 3 * SEC).ntx, 0);
		ck_assert_uint_eq(balance(l, LT_TENANT), FUNDS - (100 + 101 + 102 + 103 + 104) + 7);
		ledger_close(l);
	}
	free(log);
}
END_TEST

/* A log cut at every byte of its last record: the records before it are
 * restored, the node opens, and the torn tail is gone from the file. */
START_TEST(test_pending_torn_tail)
{
	struct signed_tx s[3];
	char logp[256];
	uint8_t *log;
	size_t len, cases = 0;
	struct ledger *l = open_at(w.dir);

	for (int i = 0; i < 3; i++) {
		make_transfer(&s[i], LT_TENANT, LT_OTHER, i, 10);
		lt_submit_held(l, &s[i]);
	}
	ledger_close(l);
	path_in(logp, sizeof(logp), w.dir, PENDING_FILE);
	log = slurp(logp, &len);
	size_t last = len - (4 + s[2].len + PENDING_CHECK_LEN);
	ck_assert_uint_eq(last, 2 * (4 + s[0].len + PENDING_CHECK_LEN));

	for (size_t cut = last; cut < len; cut += STRIDE) {
		spill(logp, log, cut);
		l = open_at(w.dir);
		struct pool_list p = pool_of(l);
		ck_assert_msg(p.n == 2, "cut at %zu of %zu: %zu restored", cut, len, p.n);
		ck_assert_mem_eq(p.hash[0], s[0].hash, HASH_LEN);
		ck_assert_mem_eq(p.hash[1], s[1].hash, HASH_LEN);
		ledger_close(l);
		/* Compacted at open: the two whole records alone. */
		ck_assert_uint_eq(file_size(logp), last);
		cases++;
	}
	/* Whole, it restores all three. */
	spill(logp, log, len);
	l = open_at(w.dir);
	ck_assert_uint_eq(pool_of(l).n, 3);
	ck_assert_uint_eq(lt_produce(l, T0 + SEC).ntx, 3);
	ck_assert_uint_eq(balance(l, LT_OTHER), FUNDS + 30);
	ledger_close(l);
	printf("torn-file: mempool.log cut at %zu offsets of its last record\n", cases);
	free(log);
}
END_TEST

/* Damage: a wrong check value, a length beyond TX_MAX_SIZE, a well framed
 * record that is no transaction, garbage. The node opens each time with
 * what came before the damage (or, for the record that is no transaction,
 * everything else). */
START_TEST(test_pending_damaged)
{
	struct signed_tx s[3];
	uint8_t recs[3][PENDING_RECORD_MAX], buf[3 * PENDING_RECORD_MAX + 64], junk[600];
	size_t rl[3], n;
	char d[128];
	struct ledger *l;

	for (int i = 0; i < 3; i++) {
		make_transfer(&s[i], LT_TENANT, LT_OTHER, i, 10);
		rl[i] = pending_frame(recs[i], s[i].bytes, s[i].len);
		ck_assert_uint_eq(rl[i], 4 + s[i].len + PENDING_CHECK_LEN);
	}
	ck_assert_uint_eq(pending_frame(recs[0], s[0].bytes, 0), 0);
	ck_assert_uint_eq(pending_frame(buf, buf, TX_MAX_SIZE + 1), 0);

	/* Record 2's check value wrong: record 1 alone (3 follows the damage). */
	n = 0;
	for (int i = 0; i < 3; i++) {
		memcpy(buf + n, recs[i], rl[i]);
		if (i == 1)
			buf[n + rl[i] - 1] ^= 1;
		n += rl[i];
	}
	fresh_dir_with_log(d, sizeof(d), "badcheck", buf, n);
	l = open_at(d);
	ck_assert_uint_eq(pool_of(l).n, 1);
	ck_assert(logged("bytes that are no whole record"));
	ledger_close(l);

	/* Record 2's length above TX_MAX_SIZE. */
	n = 0;
	memcpy(buf + n, recs[0], rl[0]);
	n += rl[0];
	memcpy(buf + n, recs[1], rl[1]);
	buf[n] = (TX_MAX_SIZE + 1) & 0xff;
	buf[n + 1] = (TX_MAX_SIZE + 1) >> 8;
	n += rl[1];
	fresh_dir_with_log(d, sizeof(d), "toolong", buf, n);
	l = open_at(d);
	ck_assert_uint_eq(pool_of(l).n, 1);
	ledger_close(l);

	/* A length of 2^32 - 1 at the start: nothing, and the node opens. */
	memset(buf, 0xff, 64);
	fresh_dir_with_log(d, sizeof(d), "huge", buf, 64);
	l = open_at(d);
	ck_assert_uint_eq(pool_of(l).n, 0);
	ledger_close(l);

	/* Record 2 well framed but no transaction: refused on replay, the
	 * others restored (3 then waits for its nonce, 1, which never came, so
	 * it is held). */
	n = 0;
	memcpy(buf + n, recs[0], rl[0]);
	n += rl[0];
	memset(junk, 0x5a, sizeof(junk));
	n += pending_frame(buf + n, junk, sizeof(junk));
	memcpy(buf + n, recs[2], rl[2]);
	n += rl[2];
	fresh_dir_with_log(d, sizeof(d), "notx", buf, n);
	l = open_at(d);
	ck_assert(logged("mempool: 2 pending transactions restored from mempool.log, 1 no longer"
			 " applied"));
	ck_assert_uint_eq(pool_of(l).n, 1);
	ck_assert_int_eq(lt_tx_state(l, s[2].hash), LEDGER_TX_HELD);
	ledger_close(l);

	/* Garbage of several sizes. */
	srand(7);
	for (int k = 0; k < 20; k++) {
		char name[32];
		size_t m = (size_t)rand() % sizeof(junk);

		for (size_t i = 0; i < m; i++)
			junk[i] = (uint8_t)rand();
		/* A small length now and then, so that some garbage is read as a
		 * record's body. */
		if (m >= 4 && k % 2) {
			junk[0] = (uint8_t)(m / 2);
			junk[1] = junk[2] = junk[3] = 0;
		}
		snprintf(name, sizeof(name), "garbage%d", k);
		fresh_dir_with_log(d, sizeof(d), name, junk, m);
		l = open_at(d);
		ck_assert_uint_eq(pool_of(l).n, 0);
		lt_produce(l, T0 + SEC);
		ledger_close(l);
	}
}
END_TEST

/* Records of transactions a block committed after the log was copied:
 * dropped on replay, committed once. */
START_TEST(test_pending_committed_dropped)
{
	struct signed_tx s[2];
	char logp[256];
	uint8_t *log;
	size_t len;
	struct ledger *l = open_at(w.dir);

	for (int i = 0; i < 2; i++) {
		make_transfer(&s[i], LT_TENANT, LT_OTHER, i, 1000);
		lt_submit_held(l, &s[i]);
	}
	path_in(logp, sizeof(logp), w.dir, PENDING_FILE);
	log = slurp(logp, &len);
	ck_assert_uint_eq(lt_produce(l, T0 + SEC).ntx, 2);
	/* Emptied with the pool. */
	ck_assert_uint_eq(file_size(logp), 0);
	ledger_close(l);
	/* As if the node died after the commit and before the log was
	 * emptied. */
	spill(logp, log, len);
	l = open_at(w.dir);
	ck_assert(logged("mempool: 0 pending transactions restored from mempool.log, 2 no longer"
			 " applied"));
	ck_assert_uint_eq(pool_of(l).n, 0);
	ck_assert_uint_eq(file_size(logp), 0);
	ck_assert_uint_eq(lt_produce(l, T0 + 2 * SEC).ntx, 0);
	ck_assert_uint_eq(balance(l, LT_OTHER), FUNDS + 2000);
	ck_assert_uint_eq(balance(l, LT_TENANT), FUNDS - 2000);
	ledger_close(l);
	free(log);
}
END_TEST

/* Over many blocks the log stays near the pool's size: emptied when the
 * pool is, rewritten once it outgrows the pool (a held transaction keeps the
 * pool from ever emptying here), and what it holds is the pool. */
START_TEST(test_pending_stays_bounded)
{
	char logp[256];
	struct signed_tx s, held;
	uint64_t nonce = 0, max_size = 0;
	bool shrank = false;
	struct ledger_batch_item items[LEDGER_BATCH_MAX];
	static struct signed_tx batch[LEDGER_BATCH_MAX];
	char why[WHY_MAX];
	struct ledger *l = open_at(w.dir);

	path_in(logp, sizeof(logp), w.dir, PENDING_FILE);
	make_transfer(&s, LT_TENANT, LT_OTHER, nonce++, 1);
	lt_submit_held(l, &s);
	lt_produce(l, T0 + SEC);
	ck_assert_uint_eq(file_size(logp), 0);

	/* Nonce 1 of LT_OTHER never comes: this one is held throughout. */
	make_transfer(&held, LT_OTHER, LT_TENANT, 2, 1);
	ck_assert(lt_submit_held(l, &held));
	for (int b = 0; b < 30; b++) {
		uint64_t before, after;

		/* One batch of 200: one write. */
		memset(items, 0, sizeof(items));
		for (int i = 0; i < 200; i++) {
			make_transfer(&batch[i], LT_TENANT, LT_OTHER, nonce++, 1);
			items[i].bytes = batch[i].bytes;
			items[i].len = batch[i].len;
		}
		ck_assert_int_eq(ledger_submit_batch(l, items, 200, NULL, why), 0);
		for (int i = 0; i < 200; i++)
			ck_assert_msg(items[i].rc == 0, "%s", items[i].why);
		before = file_size(logp);
		ck_assert_uint_ge(before, 200 * (4 + batch[0].len + PENDING_CHECK_LEN));
		ck_assert_uint_eq(lt_produce(l, T0 + (2 + b) * SEC).ntx, 200);
		after = file_size(logp);
		if (after < before)
			shrank = true;
		if (after > max_size)
			max_size = after;
		/* 4 x the held record + 1 MiB, and never more than one batch over. */
		ck_assert_uint_le(after, 4 * (4 + held.len + PENDING_CHECK_LEN) + (1u << 20));
	}
	ck_assert(shrank);
	ck_assert_int_eq(lt_tx_state(l, held.hash), LEDGER_TX_HELD);
	ledger_close(l);
	/* What is left restores the held transaction alone. */
	l = open_at(w.dir);
	ck_assert(logged("mempool: 1 pending transactions restored from mempool.log, 0 no longer"
			 " applied"));
	ck_assert_int_eq(lt_tx_state(l, held.hash), LEDGER_TX_HELD);
	ck_assert_uint_eq(file_size(logp), 4 + held.len + PENDING_CHECK_LEN);
	ledger_close(l);
	ck_assert_uint_gt(max_size, 0);
}
END_TEST

/* A record framed from the hash its writer has (pending_frame_hashed with
 * tx_hash, as the ledger and the inbox write) is byte for byte the one
 * framed from the bytes alone, and a log of such records is read back
 * whole; a length out of range frames nothing either way. */
START_TEST(test_pending_frame_hashed)
{
	struct signed_tx s[3];
	uint8_t a[PENDING_RECORD_MAX], b[PENDING_RECORD_MAX], buf[3 * PENDING_RECORD_MAX];
	size_t na, nb, n = 0;
	char d[128];
	struct ledger *l;

	for (int i = 0; i < 3; i++) {
		uint8_t hash[HASH_LEN];

		make_transfer(&s[i], LT_TENANT, LT_OTHER, i, 10);
		tx_hash(s[i].bytes, s[i].len, hash);
		na = pending_frame(a, s[i].bytes, s[i].len);
		nb = pending_frame_hashed(b, s[i].bytes, s[i].len, hash);
		ck_assert_uint_eq(na, 4 + s[i].len + PENDING_CHECK_LEN);
		ck_assert_uint_eq(nb, na);
		ck_assert_mem_eq(a, b, na);
		memcpy(buf + n, b, nb);
		n += nb;
	}
	ck_assert_uint_eq(pending_frame_hashed(a, s[0].bytes, 0, s[0].hash), 0);
	ck_assert_uint_eq(pending_frame_hashed(a, buf, TX_MAX_SIZE + 1, s[0].hash), 0);
	fresh_dir_with_log(d, sizeof(d), "hashed", buf, n);
	l = open_at(d);
	ck_assert_uint_eq(pool_of(l).n, 3);
	ledger_close(l);
}
END_TEST

/* A log that cannot be read stops the open, saying which file and that
 * moving it aside starts the node without what it holds: its transactions
 * are not dropped by a rewrite. */
START_TEST(test_pending_unreadable_refuses)
{
	struct ledger_config cfg = {
		.data_dir = w.dir, .genesis = &w.gen, .validator_key = &w.keys[LT_VAL],
		.log = keep_line,
	};
	struct ledger *l = open_at(w.dir);
	char logp[256], why[WHY_MAX] = "";
	int rc;

	ledger_close(l);
	l = NULL;
	path_in(logp, sizeof(logp), w.dir, PENDING_FILE);
	ck_assert_int_eq(unlink(logp) == 0 || errno == ENOENT, 1);
	ck_assert_int_eq(mkdir(logp, 0700), 0);   /* opens, and no read succeeds */
	rc = ledger_open(&l, &cfg, why);
	ck_assert_int_ne(rc, 0);
	ck_assert_ptr_null(l);
	ck_assert_msg(strstr(why, logp) && strstr(why, "; move it aside to start without the"
						  " transactions it holds"), "%s", why);
	ck_assert_int_eq(rmdir(logp), 0);
}
END_TEST

Suite *pending_suite(void)
{
	Suite *s = suite_create("pending");
	TCase *tc = tcase_create("pending");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_pending_survives_reopen);
	tcase_add_test(tc, test_pending_torn_tail);
	tcase_add_test(tc, test_pending_damaged);
	tcase_add_test(tc, test_pending_committed_dropped);
	tcase_add_test(tc, test_pending_stays_bounded);
	tcase_add_test(tc, test_pending_unreadable_refuses);
	tcase_add_test(tc, test_pending_frame_hashed);
	suite_add_tcase(s, tc);
	return s;
}
