/* The inbox of received transactions (daemon/ledger/inbox.h) in front of a
 * real ledger on real files: what it takes is admitted in the order it
 * came; what fails to decode is refused at once, what fails its signature
 * or the state is refused when its turn comes and remembered with its
 * reason; the same transaction twice and a full queue are refused; what
 * still waits when the inbox is freed is admitted, not lost, and what waits
 * when the node is killed is in inbox.log, checked when it restarts. */
#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ledger/inbox.h"
#include "daemon/ledger/ledger.h"
#include "daemon/ledger/ledger_impl.h"
#include "daemon/ledger/pending.h"
#include "daemon/ledger/txqueue.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

#define CHAIN "tally-inbox-test"
#define T0 1700000000000000000ull          /* genesis time, ns */
#define SEC 1000000000ull
#define FUNDS 10000000ull
#define STAKE 1000ull
#define WAIT_S 60

static struct lt_world w;

static void base_setup(void)
{
	lt_world_case_begin(&w, "inbox");
}

static void base_teardown(void)
{
	lt_world_case_end(&w);
}

static void setup(void)
{
	lt_world_begin(&w, CHAIN, T0, 0x60, STAKE, FUNDS);
}

static void teardown(void)
{
	lt_world_end(&w);
}

static void quiet(void *ctx, const char *line)
{
	(void)ctx; (void)line;
}

static struct ledger *open_ledger(void)
{
	struct ledger_config cfg = {
		.data_dir = w.dir, .genesis = &w.gen, .validator_key = &w.keys[LT_VAL],
		.log = quiet,
	};
	struct ledger *l = NULL;
	char why[WHY_MAX];
	int rc = ledger_open(&l, &cfg, why);

	ck_assert_msg(rc == 0, "ledger_open: %s (%s)", why, tally_strerror(rc));
	return l;
}

static struct inbox *open_inbox(struct ledger *l, size_t max_txs)
{
	char why[WHY_MAX];
	struct inbox *q = inbox_new(l, CHAIN, NULL, max_txs, why);

	ck_assert_msg(q, "inbox_new: %s", why);
	return q;
}

/* From `from` to the other of tenant and other. */
static void make_transfer(struct signed_tx *out, const char *chain, int from, uint64_t nonce,
			  uint64_t amount)
{
	lt_transfer(out, chain, &w.keys[from], &w.keys[from == LT_OTHER ? LT_TENANT : LT_OTHER],
		    nonce, amount, &w.gen);
}

static uint64_t now_s(void)
{
	return (uint64_t)time(NULL);
}

static int put(struct inbox *q, const struct signed_tx *s, char *why)
{
	uint8_t hash[HASH_LEN];
	int rc = inbox_put(q, s->bytes, s->len, now_s(), hash, why);

	if (!rc)
		ck_assert_mem_eq(hash, s->hash, HASH_LEN);
	return rc;
}

static void put_ok(struct inbox *q, const struct signed_tx *s)
{
	char why[WHY_MAX];
	int rc = put(q, s, why);

	ck_assert_msg(rc == 0, "inbox_put: %s (%s)", why, tally_strerror(rc));
}

/* Waits until the inbox has settled `settled` transactions in all
 * (admitted or refused) and none waits. */
static struct inbox_stats wait_settled(struct inbox *q, uint64_t settled)
{
	struct inbox_stats s;

	for (int i = 0; i < WAIT_S * 1000; i++) {
		inbox_stats(q, &s);
		if (s.admitted + s.refused >= settled && !s.waiting)
			return s;
		usleep(1000);
	}
	ck_abort_msg("the inbox settled %" PRIu64 " of %" PRIu64 " in %d s",
		     s.admitted + s.refused, settled, WAIT_S);
	return s;
}

/* One account's transactions, put in nonce order, enter the mempool in
 * that order (none held, none refused) and commit. */
START_TEST(test_inbox_admits_in_order)
{
	enum { N = 300 };
	struct ledger *l = open_ledger();
	struct inbox *q = open_inbox(l, 0);
	static struct signed_tx s[N];
	struct inbox_stats st;
	struct ledger_status ls;

	for (int i = 0; i < N; i++) {
		make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
		put_ok(q, &s[i]);
	}
	st = wait_settled(q, N);
	ck_assert_uint_eq(st.received, N);
	ck_assert_uint_eq(st.admitted, N);
	ck_assert_uint_eq(st.refused, 0);
	ck_assert_int_eq(ledger_status(l, &ls), 0);
	ck_assert_uint_eq(ls.mempool_size, N);
	ck_assert_uint_eq(ls.mempool_held, 0);
	for (int i = 0; i < N; i++) {
		struct inbox_status is;

		inbox_status(q, s[i].hash, &is);
		ck_assert_int_eq(is.state, INBOX_UNKNOWN);
		ck_assert_int_eq(lt_tx_state(l, s[i].hash), LEDGER_TX_PENDING);
	}
	ck_assert_uint_eq(lt_produce(l, T0 + SEC).ntx, N);
	ck_assert_uint_eq(lt_balance(l, w.keys[LT_OTHER].pub), FUNDS + N);
	inbox_free(q);
	ledger_close(l);
}
END_TEST

/* Bytes that do not decode, or are for another chain, are refused at once
 * and never counted received; a bad signature or a transfer the account
 * cannot pay is taken, then refused when its turn comes, with its reason;
 * a good transaction between them is admitted all the same. */
START_TEST(test_inbox_refusals)
{
	struct ledger *l = open_ledger();
	struct inbox *q = open_inbox(l, 0);
	struct signed_tx good, badsig, broke, other_chain, cut;
	struct inbox_status is;
	struct inbox_stats st;
	char why[WHY_MAX];

	make_transfer(&good, CHAIN, LT_TENANT, 0, 5);
	make_transfer(&badsig, CHAIN, LT_TENANT, 1, 5);
	badsig.bytes[badsig.len - 1] ^= 1;             /* in the signature */
	tx_hash(badsig.bytes, badsig.len, badsig.hash);
	/* More than it has, good's 5 too. */
	make_transfer(&broke, CHAIN, LT_OTHER, 0, FUNDS + 1000);
	make_transfer(&other_chain, "tally-elsewhere", LT_TENANT, 1, 5);
	cut = good;
	cut.len -= 10;

	ck_assert_int_ne(put(q, &cut, why), 0);
	ck_assert_msg(why[0], "a cut transaction is refused with a reason");
	ck_assert_int_eq(put(q, &other_chain, why), TALLY_E_CHAIN_ID);
	ck_assert_msg(why[0], "another chain's transaction is refused with a reason");
	put_ok(q, &badsig);
	put_ok(q, &good);
	put_ok(q, &broke);
	st = wait_settled(q, 3);
	ck_assert_uint_eq(st.received, 3);
	ck_assert_uint_eq(st.admitted, 1);
	ck_assert_uint_eq(st.refused, 2);

	inbox_status(q, badsig.hash, &is);
	ck_assert_int_eq(is.state, INBOX_REFUSED);
	ck_assert_int_eq(is.rc, TALLY_E_SIGNATURE);
	ck_assert_msg(is.why[0], "a refusal keeps its reason");
	ck_assert_int_eq(lt_tx_state(l, badsig.hash), LEDGER_TX_UNKNOWN);
	inbox_status(q, broke.hash, &is);
	ck_assert_int_eq(is.state, INBOX_REFUSED);
	ck_assert_int_eq(is.rc, TALLY_E_BALANCE);
	inbox_status(q, good.hash, &is);
	ck_assert_int_eq(is.state, INBOX_UNKNOWN);
	ck_assert_int_eq(lt_tx_state(l, good.hash), LEDGER_TX_PENDING);
	inbox_status(q, cut.hash, &is);
	ck_assert_int_eq(is.state, INBOX_UNKNOWN);
	inbox_free(q);
	ledger_close(l);
}
END_TEST

/* While the ledger is busy (its mempool lock held), what comes waits: the
 * same transaction again is a replay, one beyond the bound is refused for
 * now with a reason; once the ledger is free every one waiting is
 * admitted. */
START_TEST(test_inbox_bound_and_duplicates)
{
	struct ledger *l = open_ledger();
	struct inbox *q = open_inbox(l, 3);
	struct signed_tx s[4];
	struct inbox_status is;
	struct inbox_stats st;
	char why[WHY_MAX];

	for (int i = 0; i < 4; i++)
		make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
	ledger_mp_lock(l);
	put_ok(q, &s[0]);
	ck_assert_int_eq(put(q, &s[0], why), TALLY_E_REPLAY);
	ck_assert_msg(strstr(why, "received already"), "%s", why);
	put_ok(q, &s[1]);
	put_ok(q, &s[2]);
	ck_assert_int_eq(put(q, &s[3], why), TALLY_E_UNAVAILABLE);
	ck_assert_msg(strstr(why, "try again"), "%s", why);
	for (int i = 0; i < 3; i++) {
		inbox_status(q, s[i].hash, &is);
		ck_assert_int_eq(is.state, INBOX_RECEIVED);
	}
	inbox_stats(q, &st);
	ck_assert_uint_eq(st.waiting, 3);
	ck_assert_uint_eq(st.received, 3);
	ledger_mp_unlock(l);
	st = wait_settled(q, 3);
	ck_assert_uint_eq(st.admitted, 3);
	/* Room again: the one refused for now is taken. */
	put_ok(q, &s[3]);
	st = wait_settled(q, 4);
	ck_assert_uint_eq(st.admitted, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(lt_tx_state(l, s[i].hash), LEDGER_TX_PENDING);
	inbox_free(q);
	ledger_close(l);
}
END_TEST

/* Freed while transactions wait (the node stopping), the inbox admits
 * them first: every one answered "received" reaches the mempool. */
START_TEST(test_inbox_free_admits_what_waits)
{
	enum { N = 64 };
	struct ledger *l = open_ledger();
	struct inbox *q = open_inbox(l, 0);
	struct signed_tx s[N];
	struct ledger_status ls;

	ledger_mp_lock(l);
	for (int i = 0; i < N; i++) {
		make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
		put_ok(q, &s[i]);
	}
	ledger_mp_unlock(l);
	inbox_free(q);
	ck_assert_int_eq(ledger_status(l, &ls), 0);
	ck_assert_uint_eq(ls.mempool_size, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(lt_tx_state(l, s[i].hash), LEDGER_TX_PENDING);
	ledger_close(l);
}
END_TEST

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;

	*len = 0;
	if (!f)
		return NULL;
	buf = malloc(1 << 20);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static void spill(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* A node killed while transactions wait for their checks: each one it
 * answered "received" was in inbox.log before the answer, and the node
 * restarted on that log (the ledger's own files gone with the kill, so the
 * mempool never saw them) checks them in their order: the good ones
 * admitted, the bad signature refused with its reason; then the log is
 * empty. */
START_TEST(test_inbox_survives_a_kill)
{
	enum { N = 40, BAD = 7 };
	struct ledger *l = open_ledger();
	struct inbox *q = open_inbox(l, 0);
	struct signed_tx s[N], extra;
	struct inbox_status is;
	struct inbox_stats st;
	struct stat sb;
	char logp[160];
	size_t len, want = 0;
	char *saved;

	snprintf(logp, sizeof(logp), "%s/%s", w.dir, INBOX_FILE);
	for (int i = 0; i < N; i++) {
		make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
		if (i == BAD) {
			s[i].bytes[s[i].len - 1] ^= 1;     /* in the signature */
			tx_hash(s[i].bytes, s[i].len, s[i].hash);
		}
	}
	ledger_mp_lock(l);
	for (int i = 0; i < N; i++) {
		put_ok(q, &s[i]);
		want += 4 + s[i].len + PENDING_CHECK_LEN;
		/* In the log as soon as it is answered. */
		ck_assert_int_eq(stat(logp, &sb), 0);
		ck_assert_uint_eq((size_t)sb.st_size, want);
	}
	saved = slurp(logp, &len);     /* what a kill now would leave */
	ck_assert_uint_eq(len, want);
	ledger_mp_unlock(l);
	inbox_free(q);
	ledger_close(l);

	/* The restart, on a ledger that never admitted them. */
	cb_rm_tree(w.dir);
	ck_assert_int_eq(mkdir(w.dir, 0700), 0);
	spill(logp, saved, len);
	free(saved);
	l = open_ledger();
	ledger_mp_lock(l);
	q = open_inbox(l, 0);
	/* What comes after the restart is logged behind what was restored. */
	make_transfer(&extra, CHAIN, LT_TENANT, N, 1);
	put_ok(q, &extra);
	ck_assert_int_eq(stat(logp, &sb), 0);
	ck_assert_uint_eq((size_t)sb.st_size, want + 4 + extra.len + PENDING_CHECK_LEN);
	ledger_mp_unlock(l);
	st = wait_settled(q, N + 1);
	ck_assert_uint_eq(st.received, N + 1);
	ck_assert_uint_eq(st.admitted, N);
	ck_assert_uint_eq(st.refused, 1);
	inbox_status(q, s[BAD].hash, &is);
	ck_assert_int_eq(is.state, INBOX_REFUSED);
	ck_assert_int_eq(is.rc, TALLY_E_SIGNATURE);
	for (int i = 0; i < BAD; i++)
		ck_assert_int_eq(lt_tx_state(l, s[i].hash), LEDGER_TX_PENDING);
	/* After the gap of the refused one, the rest wait for its nonce. */
	for (int i = BAD + 1; i < N; i++)
		ck_assert_int_eq(lt_tx_state(l, s[i].hash), LEDGER_TX_HELD);
	ck_assert_int_eq(lt_tx_state(l, extra.hash), LEDGER_TX_HELD);
	ck_assert_int_eq(stat(logp, &sb), 0);
	ck_assert_uint_eq((size_t)sb.st_size, 0);
	inbox_free(q);
	ledger_close(l);
}
END_TEST

/* A log that cannot be written: the transaction is refused with the
 * error, not answered "received" (a kill would lose it), and the inbox
 * writes a new log and takes the next one. */
START_TEST(test_inbox_log_failure_refuses)
{
	struct ledger *l = open_ledger();
	struct signed_tx s[2];
	struct inbox_stats st;
	struct inbox *q;
	struct stat sb;
	char logp[160], why[WHY_MAX];
	int rc;

	snprintf(logp, sizeof(logp), "%s/%s", w.dir, INBOX_FILE);
	ck_assert_int_eq(symlink("/dev/full", logp), 0);   /* every write: ENOSPC */
	q = open_inbox(l, 0);
	make_transfer(&s[0], CHAIN, LT_TENANT, 0, 1);
	make_transfer(&s[1], CHAIN, LT_TENANT, 1, 1);
	rc = put(q, &s[0], why);
	ck_assert_msg(rc == TALLY_E_DISKFULL || rc == TALLY_E_IO, "%s (%s)", why, tally_strerror(rc));
	ck_assert_msg(strstr(why, INBOX_FILE), "%s", why);
	inbox_stats(q, &st);
	ck_assert_uint_eq(st.received, 0);
	ck_assert_uint_eq(st.waiting, 0);
	/* A new file in its place: the next one is taken, and logged there. */
	ck_assert_int_eq(lstat(logp, &sb), 0);
	ck_assert(S_ISREG(sb.st_mode));
	put_ok(q, &s[0]);
	put_ok(q, &s[1]);
	st = wait_settled(q, 2);
	ck_assert_uint_eq(st.admitted, 2);
	inbox_free(q);
	ledger_close(l);
}
END_TEST

static void noop_settled(void *ctx, const struct ledger_batch_item *items, size_t k)
{
	(void)ctx;
	(void)items;
	(void)k;
}

/* A queue with a log and a bound per origin: a sender whose transaction
 * was backed out because the log failed leaves no share behind, and its
 * share goes once (with the back-out), not once more for the refusal,
 * which would take another sender's share with it or count the shares
 * below zero. Not started: what is taken waits, so the shares stay
 * counted, and each sender gets its one place and no more. */
START_TEST(test_txqueue_log_failure_keeps_shares)
{
	struct ledger *l = open_ledger();
	struct txqueue_config cfg = {
		.ledger = l,
		.max_txs = 16,
		.max_bytes = 1 << 20,
		.max_origin_txs = 1,
		.settled = noop_settled,
		.what = "test transactions",
		.log_file = "txq.log",
	};
	uint8_t a[PUBKEY_LEN], b[PUBKEY_LEN];
	struct signed_tx s[5];
	struct txqueue *q;
	char logp[160], why[WHY_MAX];
	int rc;

	memset(a, 0xa, sizeof(a));
	memset(b, 0xb, sizeof(b));
	for (int i = 0; i < 5; i++)
		make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
	snprintf(logp, sizeof(logp), "%s/txq.log", w.dir);
	ck_assert_int_eq(symlink("/dev/full", logp), 0);   /* the first append fails */
	q = txqueue_new(&cfg, NULL, why);
	ck_assert_msg(q != NULL, "%s", why);
	rc = txqueue_put(q, s[0].bytes, s[0].len, s[0].hash, a, why);
	ck_assert_msg(rc == TALLY_E_DISKFULL || rc == TALLY_E_IO, "%s", why);
	ck_assert_uint_eq(txqueue_count(q), 0);
	/* The log written again: each sender has one place. */
	ck_assert_int_eq(txqueue_put(q, s[1].bytes, s[1].len, s[1].hash, b, why), 0);
	ck_assert_int_eq(txqueue_put(q, s[2].bytes, s[2].len, s[2].hash, b, why),
			 TALLY_E_UNAVAILABLE);
	ck_assert_int_eq(txqueue_put(q, s[3].bytes, s[3].len, s[3].hash, a, why), 0);
	ck_assert_int_eq(txqueue_put(q, s[4].bytes, s[4].len, s[4].hash, a, why),
			 TALLY_E_UNAVAILABLE);
	ck_assert_uint_eq(txqueue_count(q), 2);
	txqueue_free(q);
	ledger_close(l);
}
END_TEST

/* Shares of TXQUEUE_ORIGINS senders taken: one more sender is refused for
 * that, and told so (not that it sent as many as one may). */
START_TEST(test_txqueue_senders_bound_said)
{
	struct ledger *l = open_ledger();
	struct txqueue_config cfg = {
		.ledger = l,
		.max_txs = 2 * TXQUEUE_ORIGINS,
		.max_bytes = 1 << 20,
		.max_origin_txs = 4,
		.settled = noop_settled,
		.what = "test transactions",
	};
	uint8_t origin[PUBKEY_LEN] = { 0 }, hash[HASH_LEN] = { 0 }, tx[8] = { 1 };
	struct txqueue *q;
	char why[WHY_MAX];

	q = txqueue_new(&cfg, NULL, why);
	ck_assert_msg(q != NULL, "%s", why);
	for (int i = 0; i <= TXQUEUE_ORIGINS; i++) {
		memcpy(origin, &i, sizeof(i));
		memcpy(hash, &i, sizeof(i));
		why[0] = '\0';
		if (i < TXQUEUE_ORIGINS) {
			ck_assert_msg(txqueue_put(q, tx, sizeof(tx), hash, origin, why) == 0, "%s",
				      why);
			continue;
		}
		ck_assert_int_eq(txqueue_put(q, tx, sizeof(tx), hash, origin, why),
				 TALLY_E_UNAVAILABLE);
		ck_assert_msg(strstr(why, "256 senders"), "%s", why);
	}
	ck_assert_uint_eq(txqueue_count(q), TXQUEUE_ORIGINS);
	txqueue_free(q);
	ledger_close(l);
}
END_TEST

/* A log a killed node left torn, or followed by garbage: the whole records
 * before the damage are checked (and admitted), the rest is dropped, and
 * the log is written again without it, so what comes next is appended
 * behind whole records only. */
START_TEST(test_inbox_restores_a_damaged_log)
{
	static const char *const tails[] = { "torn", "garbage" };
	uint8_t rec[PENDING_RECORD_MAX];

	for (int t = 0; t < 2; t++) {
		struct ledger *l = open_ledger();
		struct signed_tx s[3];
		struct inbox_stats st;
		struct inbox *q;
		struct stat sb;
		char logp[160];
		FILE *f;
		size_t n, whole = 0;

		snprintf(logp, sizeof(logp), "%s/%s", w.dir, INBOX_FILE);
		for (int i = 0; i < 3; i++)
			make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
		ck_assert_ptr_nonnull(f = fopen(logp, "wb"));
		for (int i = 0; i < 2; i++) {
			n = pending_frame(rec, s[i].bytes, s[i].len);
			ck_assert_uint_eq(fwrite(rec, 1, n, f), n);
			whole += n;
		}
		n = pending_frame(rec, s[2].bytes, s[2].len);
		if (t == 0) {
			ck_assert_uint_eq(fwrite(rec, 1, n - 5, f), n - 5);   /* cut short */
		} else {
			memset(rec, 0xee, n);                                  /* not a record */
			ck_assert_uint_eq(fwrite(rec, 1, n, f), n);
		}
		ck_assert_int_eq(fclose(f), 0);
		ledger_mp_lock(l);
		q = open_inbox(l, 0);
		/* Written again at once: the two whole records, nothing after. */
		ck_assert_int_eq(stat(logp, &sb), 0);
		ck_assert_msg((size_t)sb.st_size == whole, "%s: %jd bytes, not %zu", tails[t],
			      (intmax_t)sb.st_size, whole);
		ledger_mp_unlock(l);
		st = wait_settled(q, 2);
		ck_assert_uint_eq(st.received, 2);
		ck_assert_uint_eq(st.admitted, 2);
		ck_assert_int_eq(lt_tx_state(l, s[0].hash), LEDGER_TX_PENDING);
		ck_assert_int_eq(lt_tx_state(l, s[1].hash), LEDGER_TX_PENDING);
		ck_assert_int_eq(lt_tx_state(l, s[2].hash), LEDGER_TX_UNKNOWN);
		/* The third, sent again, is logged behind nothing. */
		put_ok(q, &s[2]);
		st = wait_settled(q, 3);
		ck_assert_uint_eq(st.admitted, 3);
		ck_assert_int_eq(stat(logp, &sb), 0);
		ck_assert_uint_eq((size_t)sb.st_size, 0);
		inbox_free(q);
		ledger_close(l);
		cb_rm_tree(w.dir);
		ck_assert_int_eq(mkdir(w.dir, 0700), 0);
	}
}
END_TEST

/* items[i] for s[i] (bytes and len; the rest zero: not refused yet). */
static void batch_of(struct ledger_batch_item *items, const struct signed_tx *const *s, size_t n)
{
	memset(items, 0, n * sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		items[i].bytes = s[i]->bytes;
		items[i].len = s[i]->len;
	}
}

static size_t file_size(const char *path)
{
	struct stat sb;

	ck_assert_int_eq(stat(path, &sb), 0);
	return (size_t)sb.st_size;
}

/* inbox.log's expected content: s[0..n)'s records, in order. */
static size_t frames_of(uint8_t *out, const struct signed_tx *const *s, size_t n)
{
	size_t at = 0;

	for (size_t i = 0; i < n; i++)
		at += pending_frame(out + at, s[i]->bytes, s[i]->len);
	return at;
}

/* A batch answers each transaction in its place, as one put each would:
 * one waiting already and one twice in the batch are replays (the first
 * of the pair taken), bytes that do not decode are refused at once, an
 * item refused before (not hex, say) is left as it was; those taken are
 * counted received, are in inbox.log in their order, and are admitted. */
START_TEST(test_inbox_batch_duplicates)
{
	struct ledger *l = open_ledger();
	struct inbox *q = open_inbox(l, 0);
	struct signed_tx s[3], cut;
	const struct signed_tx *b[] = { &s[1], &s[0], &s[2], &s[1], &cut, &s[2] };
	const struct signed_tx *logged[] = { &s[0], &s[1], &s[2] };
	struct ledger_batch_item items[6];
	uint8_t want[3 * PENDING_RECORD_MAX];
	struct inbox_stats st;
	char logp[160], *got;
	size_t len, n;

	snprintf(logp, sizeof(logp), "%s/%s", w.dir, INBOX_FILE);
	for (int i = 0; i < 3; i++)
		make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
	cut = s[0];
	cut.len -= 10;
	ledger_mp_lock(l);
	put_ok(q, &s[0]);
	batch_of(items, b, 6);
	items[5].rc = TALLY_E_ENCODING;                /* refused before: skipped */
	snprintf(items[5].why, sizeof(items[5].why), "not hex");
	ck_assert_uint_eq(inbox_put_batch(q, items, 6, now_s()), 2);
	ck_assert_msg(items[0].rc == 0, "%s", items[0].why);
	ck_assert_mem_eq(items[0].hash, s[1].hash, HASH_LEN);
	ck_assert_int_eq(items[1].rc, TALLY_E_REPLAY);
	ck_assert_msg(strstr(items[1].why, "received already"), "%s", items[1].why);
	ck_assert_msg(items[2].rc == 0, "%s", items[2].why);
	ck_assert_mem_eq(items[2].hash, s[2].hash, HASH_LEN);
	ck_assert_int_eq(items[3].rc, TALLY_E_REPLAY);
	ck_assert_msg(strstr(items[3].why, "received already"), "%s", items[3].why);
	ck_assert_int_ne(items[4].rc, 0);
	ck_assert_int_ne(items[4].rc, TALLY_E_REPLAY);
	ck_assert_msg(items[4].why[0], "a cut transaction is refused with a reason");
	ck_assert_int_eq(items[5].rc, TALLY_E_ENCODING);
	ck_assert_str_eq(items[5].why, "not hex");
	inbox_stats(q, &st);
	ck_assert_uint_eq(st.received, 3);
	ck_assert_uint_eq(st.waiting, 3);
	n = frames_of(want, logged, 3);
	got = slurp(logp, &len);
	ck_assert_uint_eq(len, n);
	ck_assert_mem_eq(got, want, n);
	free(got);
	ledger_mp_unlock(l);
	st = wait_settled(q, 3);
	ck_assert_uint_eq(st.admitted, 3);
	ck_assert_uint_eq(st.refused, 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(lt_tx_state(l, s[i].hash), LEDGER_TX_PENDING);
	inbox_free(q);
	ledger_close(l);
}
END_TEST

/* A batch that reaches the inbox's bound: its head is taken, its tail
 * refused for now (try again), and once there is room the tail sent
 * again is taken. */
START_TEST(test_inbox_batch_bound)
{
	struct ledger *l = open_ledger();
	struct inbox *q = open_inbox(l, 3);
	struct signed_tx s[5];
	const struct signed_tx *b[] = { &s[1], &s[2], &s[3], &s[4] };
	struct ledger_batch_item items[4];
	struct inbox_stats st;
	char logp[160];

	snprintf(logp, sizeof(logp), "%s/%s", w.dir, INBOX_FILE);
	for (int i = 0; i < 5; i++)
		make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
	ledger_mp_lock(l);
	put_ok(q, &s[0]);
	batch_of(items, b, 4);
	ck_assert_uint_eq(inbox_put_batch(q, items, 4, now_s()), 2);
	ck_assert_msg(items[0].rc == 0, "%s", items[0].why);
	ck_assert_msg(items[1].rc == 0, "%s", items[1].why);
	for (int i = 2; i < 4; i++) {
		ck_assert_int_eq(items[i].rc, TALLY_E_UNAVAILABLE);
		ck_assert_msg(strstr(items[i].why, "try again"), "%s", items[i].why);
	}
	inbox_stats(q, &st);
	ck_assert_uint_eq(st.received, 3);
	ck_assert_uint_eq(st.waiting, 3);
	ck_assert_uint_eq(file_size(logp), 3 * (4 + s[0].len + PENDING_CHECK_LEN));
	ledger_mp_unlock(l);
	st = wait_settled(q, 3);
	ck_assert_uint_eq(st.admitted, 3);
	batch_of(items, b + 2, 2);
	ck_assert_uint_eq(inbox_put_batch(q, items, 2, now_s()), 2);
	st = wait_settled(q, 5);
	ck_assert_uint_eq(st.received, 5);
	ck_assert_uint_eq(st.admitted, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(lt_tx_state(l, s[i].hash), LEDGER_TX_PENDING);
	inbox_free(q);
	ledger_close(l);
}
END_TEST

/* A batch whose inbox.log write fails is not received at all: each of its
 * transactions that passed its checks is refused with the log's error
 * and the advice to submit synchronously (one that did not decode keeps
 * its own reason), none is counted or waits; sent again once the inbox
 * wrote a new log, the whole batch is taken. */
START_TEST(test_inbox_batch_log_failure_takes_nothing)
{
	struct ledger *l = open_ledger();
	struct signed_tx s[3], cut;
	/* The last one repeats the first: refused with the same error, not
	 * as "waiting already" for a transaction that does not wait. */
	const struct signed_tx *b[] = { &s[0], &cut, &s[1], &s[2], &s[0] };
	struct ledger_batch_item items[5];
	struct inbox_stats st;
	struct inbox *q;
	struct stat sb;
	char logp[160];

	snprintf(logp, sizeof(logp), "%s/%s", w.dir, INBOX_FILE);
	ck_assert_int_eq(symlink("/dev/full", logp), 0);   /* every write: ENOSPC */
	q = open_inbox(l, 0);
	for (int i = 0; i < 3; i++)
		make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
	cut = s[0];
	cut.len -= 10;
	batch_of(items, b, 5);
	ck_assert_uint_eq(inbox_put_batch(q, items, 5, now_s()), 0);
	for (int i = 0; i < 5; i++) {
		if (i == 1) {
			ck_assert_int_ne(items[i].rc, 0);
			ck_assert_msg(!strstr(items[i].why, INBOX_FILE), "%s", items[i].why);
			continue;
		}
		ck_assert_msg(items[i].rc == TALLY_E_DISKFULL || items[i].rc == TALLY_E_IO,
			      "%d: %s (%s)", i, items[i].why, tally_strerror(items[i].rc));
		ck_assert_msg(strstr(items[i].why, INBOX_FILE) &&
			      strstr(items[i].why, "without Prefer: respond-async"), "%s",
			      items[i].why);
	}
	inbox_stats(q, &st);
	ck_assert_uint_eq(st.received, 0);
	ck_assert_uint_eq(st.waiting, 0);
	for (int i = 0; i < 3; i++) {
		struct inbox_status is;

		inbox_status(q, s[i].hash, &is);
		ck_assert_int_eq(is.state, INBOX_UNKNOWN);
	}
	/* A new file in its place: the batch sent again is taken whole. */
	ck_assert_int_eq(lstat(logp, &sb), 0);
	ck_assert(S_ISREG(sb.st_mode));
	batch_of(items, b, 4);
	ck_assert_uint_eq(inbox_put_batch(q, items, 4, now_s()), 3);
	st = wait_settled(q, 3);
	ck_assert_uint_eq(st.received, 3);
	ck_assert_uint_eq(st.admitted, 3);
	inbox_free(q);
	ledger_close(l);
}
END_TEST

/* A node killed after answering batches: inbox.log holds each batch's
 * transactions in their order, behind what came before, and the node
 * restarted on it checks them in that order (the bad signature refused,
 * those after it held for its nonce). */
START_TEST(test_inbox_batch_survives_a_kill)
{
	enum { N = 24, BAD = 13 };
	struct ledger *l = open_ledger();
	struct inbox *q = open_inbox(l, 0);
	static struct signed_tx s[N];
	const struct signed_tx *all[N];
	struct ledger_batch_item items[N];
	static uint8_t want[N * PENDING_RECORD_MAX];
	struct inbox_status is;
	struct inbox_stats st;
	char logp[160], *saved;
	size_t len, n;

	snprintf(logp, sizeof(logp), "%s/%s", w.dir, INBOX_FILE);
	for (int i = 0; i < N; i++) {
		make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
		if (i == BAD) {
			s[i].bytes[s[i].len - 1] ^= 1;     /* in the signature */
			tx_hash(s[i].bytes, s[i].len, s[i].hash);
		}
		all[i] = &s[i];
	}
	ledger_mp_lock(l);
	put_ok(q, &s[0]);                              /* one alone, then two batches */
	batch_of(items, all + 1, 10);
	ck_assert_uint_eq(inbox_put_batch(q, items, 10, now_s()), 10);
	batch_of(items, all + 11, N - 11);
	ck_assert_uint_eq(inbox_put_batch(q, items, N - 11, now_s()), N - 11);
	n = frames_of(want, all, N);
	saved = slurp(logp, &len);                     /* what a kill now would leave */
	ck_assert_uint_eq(len, n);
	ck_assert_mem_eq(saved, want, n);
	ledger_mp_unlock(l);
	inbox_free(q);
	ledger_close(l);

	/* The restart, on a ledger that never admitted them. */
	cb_rm_tree(w.dir);
	ck_assert_int_eq(mkdir(w.dir, 0700), 0);
	spill(logp, saved, len);
	free(saved);
	l = open_ledger();
	q = open_inbox(l, 0);
	st = wait_settled(q, N);
	ck_assert_uint_eq(st.received, N);
	ck_assert_uint_eq(st.admitted, N - 1);
	ck_assert_uint_eq(st.refused, 1);
	inbox_status(q, s[BAD].hash, &is);
	ck_assert_int_eq(is.state, INBOX_REFUSED);
	ck_assert_int_eq(is.rc, TALLY_E_SIGNATURE);
	for (int i = 0; i < BAD; i++)
		ck_assert_int_eq(lt_tx_state(l, s[i].hash), LEDGER_TX_PENDING);
	for (int i = BAD + 1; i < N; i++)
		ck_assert_int_eq(lt_tx_state(l, s[i].hash), LEDGER_TX_HELD);
	ck_assert_uint_eq(file_size(logp), 0);
	inbox_free(q);
	ledger_close(l);
}
END_TEST

/* A batch through a queue with a bound per origin and a log: each sender
 * gets its one place, the next of the same sender in the batch is
 * refused for that; when the batch's log write fails nothing stays
 * queued and no share is left behind (each sender has its place again
 * in the next batch). Not started: what is taken waits. */
START_TEST(test_txqueue_batch_shares)
{
	struct ledger *l = open_ledger();
	struct txqueue_config cfg = {
		.ledger = l,
		.max_txs = 16,
		.max_bytes = 1 << 20,
		.max_origin_txs = 1,
		.settled = noop_settled,
		.what = "test transactions",
		.log_file = "txq.log",
	};
	uint8_t a[PUBKEY_LEN], b[PUBKEY_LEN];
	const uint8_t *from[] = { a, b, a, b, a };
	struct ledger_batch_item items[5];
	struct signed_tx s[6];
	struct txqueue *q;
	char logp[160], why[WHY_MAX];

	memset(a, 0xa, sizeof(a));
	memset(b, 0xb, sizeof(b));
	for (int i = 0; i < 6; i++)
		make_transfer(&s[i], CHAIN, LT_TENANT, (uint64_t)i, 1);
	snprintf(logp, sizeof(logp), "%s/txq.log", w.dir);
	ck_assert_int_eq(symlink("/dev/full", logp), 0);   /* the first append fails */
	q = txqueue_new(&cfg, NULL, why);
	ck_assert_msg(q != NULL, "%s", why);
	memset(items, 0, sizeof(items));
	for (int i = 0; i < 5; i++) {
		items[i].bytes = s[i].bytes;
		items[i].len = s[i].len;
		items[i].origin = from[i];
		memcpy(items[i].hash, s[i].hash, HASH_LEN);
	}
	ck_assert_uint_eq(txqueue_put_batch(q, items, 2), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_msg(items[i].rc == TALLY_E_DISKFULL || items[i].rc == TALLY_E_IO, "%s",
			      items[i].why);
	ck_assert_uint_eq(txqueue_count(q), 0);
	/* The log written again: a and b one place each, in one batch. */
	for (int i = 0; i < 5; i++) {
		items[i].rc = 0;
		items[i].why[0] = '\0';
	}
	ck_assert_uint_eq(txqueue_put_batch(q, items, 5), 2);
	ck_assert_msg(items[0].rc == 0, "%s", items[0].why);
	ck_assert_msg(items[1].rc == 0, "%s", items[1].why);
	for (int i = 2; i < 5; i++) {
		ck_assert_int_eq(items[i].rc, TALLY_E_UNAVAILABLE);
		ck_assert_msg(strstr(items[i].why, "from this sender"), "%s", items[i].why);
	}
	ck_assert_uint_eq(txqueue_count(q), 2);
	/* Without an origin: no share to count against. */
	ck_assert_int_eq(txqueue_put(q, s[5].bytes, s[5].len, s[5].hash, NULL, why), 0);
	ck_assert_uint_eq(txqueue_count(q), 3);
	txqueue_free(q);
	ledger_close(l);
}
END_TEST

Suite *inbox_suite(void)
{
	Suite *s = suite_create("inbox");
	TCase *tc = tcase_create("inbox");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_inbox_admits_in_order);
	tcase_add_test(tc, test_inbox_refusals);
	tcase_add_test(tc, test_inbox_bound_and_duplicates);
	tcase_add_test(tc, test_inbox_free_admits_what_waits);
	tcase_add_test(tc, test_inbox_survives_a_kill);
	tcase_add_test(tc, test_inbox_log_failure_refuses);
	tcase_add_test(tc, test_inbox_restores_a_damaged_log);
	tcase_add_test(tc, test_txqueue_log_failure_keeps_shares);
	tcase_add_test(tc, test_txqueue_senders_bound_said);
	tcase_add_test(tc, test_inbox_batch_duplicates);
	tcase_add_test(tc, test_inbox_batch_bound);
	tcase_add_test(tc, test_inbox_batch_log_failure_takes_nothing);
	tcase_add_test(tc, test_inbox_batch_survives_a_kill);
	tcase_add_test(tc, test_txqueue_batch_shares);
	suite_add_tcase(s, tc);
	return s;
}
