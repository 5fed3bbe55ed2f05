/* The auditor on a real, signed chain (tests/unit/chain_fixture.c): an
 * honest chain verifies with the right bill, and each kind of tampering
 * fails with an error that names the record or the height. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/audit.h"
#include "lib/errors.h"
#include "tests/unit/chain_fixture.h"

static struct fixture fx;
static struct audit_result res;

static void setup(void)
{
	fixture_build(&fx);
	memset(&res, 0, sizeof(res));
}

static void teardown(void)
{
	audit_result_free(&res);
	fixture_free(&fx);
}

static void run_from(size_t first, const struct chain_checkpoint *cp, const uint8_t *pinned,
		     const struct lease *settled, audit_proof_fn fn, void *ctx)
{
	struct audit_block blocks[FIXTURE_BLOCKS];
	struct audit_input in;
	char why[WHY_MAX] = "";

	memset(&in, 0, sizeof(in));
	for (size_t i = first; i < FIXTURE_BLOCKS; i++) {
		blocks[i - first].block = &fx.blocks[i];
		blocks[i - first].cert = &fx.certs[i];
		blocks[i - first].next_vals = NULL;
	}
	in.genesis = &fx.genesis;
	in.checkpoint = cp;
	in.pinned_id = pinned;
	in.blocks = blocks;
	in.nblocks = FIXTURE_BLOCKS - first;
	memcpy(in.lease_id, fx.lease_id, LEASE_ID_LEN);
	in.settled = settled;
	in.proof_fn = fn;
	in.proof_ctx = ctx;
	ck_assert_msg(audit_run(&in, &res, why) == 0, "audit_run: %s", why);
}

static void run(void)
{
	run_from(0, NULL, NULL, &fx.settled, NULL, NULL);
}

/* Set TALLY_TEST_VERBOSE to see the auditor's sentences. */
static void dump(void)
{
	if (!getenv("TALLY_TEST_VERBOSE"))
		return;
	for (size_t i = 0; i < res.nerrors; i++)
		fprintf(stderr, "  audit error: %s\n", res.errors[i].msg);
}

/* An error about height (0: any) and, when seq >= 0, that record, whose
 * message contains text (NULL: any). */
static bool has_error(uint64_t height, long long seq, const char *text)
{
	for (size_t i = 0; i < res.nerrors; i++) {
		const struct audit_error *e = &res.errors[i];
		if (height && e->height != height)
			continue;
		if (seq >= 0 && (!e->has_seq || e->seq != (uint64_t)seq))
			continue;
		if (text && !strstr(e->msg, text))
			continue;
		return true;
	}
	return false;
}

START_TEST(honest_chain_verifies_with_the_bill)
{
	run();
	dump();
	ck_assert(res.verified);
	ck_assert_uint_eq(res.nerrors, 0);
	ck_assert_uint_eq(res.verified_height, FIXTURE_BLOCKS);
	ck_assert_uint_eq(res.nrecords, FIXTURE_RECORDS);
	for (size_t i = 0; i < res.nrecords; i++) {
		ck_assert_uint_eq(res.records[i].rec.seq, i);
		ck_assert(res.records[i].proven);
		ck_assert(res.records[i].signature_ok);
		ck_assert_uint_eq(res.records[i].index, i);
	}
	ck_assert(res.lease_found && res.replayed && res.compared);
	ck_assert_uint_eq(res.lease.charged, FIXTURE_CHARGED);
	ck_assert_uint_eq(res.lease.sla_credits, FIXTURE_SLA);
	ck_assert_uint_eq(res.refund, FIXTURE_DEPOSIT - FIXTURE_CHARGED);
	ck_assert_uint_eq(res.lease.state, LEASE_CLOSED);
	ck_assert_uint_eq(res.lease.close_reason, CLOSE_TENANT);
	ck_assert_uint_eq(res.records[2].charge.sla_credit, 1);
	ck_assert_uint_eq(res.records[2].charge.net, 11);
	ck_assert_uint_eq(res.mem_mib_s, 512 * FIXTURE_RECORDS);
}
END_TEST

START_TEST(a_different_settlement_fails)
{
	struct lease claim = fx.settled;

	claim.charged += 1;
	run_from(0, NULL, NULL, &claim, NULL, NULL);
	ck_assert(!res.verified);
	ck_assert(has_error(0, -1, "the amount charged is 50 on the node"));
}
END_TEST

/* The carries are part of the bill: what the lease owes below a micro-unit
 * is billed by its next records. A claim that differs in them alone is
 * named, also when it comes without a state proof. */
START_TEST(a_different_carry_fails)
{
	struct lease claim = fx.settled;

	claim.carry.credit = (claim.carry.credit + 1) % PPM_ONE;
	run_from(0, NULL, NULL, &claim, NULL, NULL);
	dump();
	ck_assert(!res.verified);
	ck_assert(has_error(0, -1, "carry_credit is"));
}
END_TEST

START_TEST(a_running_lease_compares_at_the_claimed_record)
{
	struct lease claim = fx.settled;

	/* The node read the lease after record seq 1: 12 and 13 (the halves
	 * carried). */
	claim.state = LEASE_RUNNING;
	claim.close_reason = CLOSE_NONE;
	claim.closed_height = 0;
	claim.next_seq = 2;
	claim.charged = 25;
	claim.escrow = FIXTURE_DEPOSIT - 25;
	memset(&claim.carry, 0, sizeof(claim.carry));
	claim.sla_credits = 0;
	claim.cpu_ns = 1000000000;
	claim.run_delay_ns = 0;
	run_from(0, NULL, NULL, &claim, NULL, NULL);
	dump();
	ck_assert(res.verified);
	ck_assert(res.compared);
}
END_TEST

START_TEST(one_changed_byte_in_a_record_is_named)
{
	struct block *b = &fx.blocks[4];             /* height 5: record seq 2 */
	struct enc e;
	struct tx t;
	size_t diff = 0;

	ck_assert_uint_eq(b->ntx, 1);
	ck_assert_int_eq(tx_decode(&t, b->txs[0].bytes, b->txs[0].len), 0);
	ck_assert_uint_eq(t.u.usage.seq, 2);
	t.u.usage.cpu_ns += 1;                      /* keeps the old signature */
	enc_init(&e);
	tx_encode(&e, &t);
	ck_assert_uint_eq(e.len, b->txs[0].len);
	for (size_t i = 0; i < e.len; i++)
		diff += e.buf[i] != b->txs[0].bytes[i];
	ck_assert_uint_eq(diff, 1);
	ck_assert_int_eq(block_tx_replace(b, 0, e.buf, e.len), 0);
	enc_free(&e);

	run();
	dump();
	ck_assert(!res.verified);
	ck_assert(has_error(5, -1, "transactions root"));
	ck_assert(has_error(0, 2, "signature does not verify"));
}
END_TEST

START_TEST(a_dropped_record_is_named)
{
	struct block *b = &fx.blocks[3];             /* height 4: seq 0 and 1 */
	const uint8_t *txs[1] = { b->txs[0].bytes };
	size_t lens[1] = { b->txs[0].len };
	uint8_t *keep = malloc(lens[0]);

	memcpy(keep, txs[0], lens[0]);
	txs[0] = keep;
	fixture_set_txs(&fx, 3, txs, lens, 1);
	free(keep);

	run();
	dump();
	ck_assert(!res.verified);
	ck_assert(has_error(4, -1, NULL));
	ck_assert(has_error(5, 2, "record seq 1 is missing"));
	/* The records after the break are still charged for the report, in
	 * chain order from the carries record 0 left: seq 2 gets its half
	 * micro-unit of memory, seq 3 carries a half on. */
	ck_assert_uint_eq(res.nrecords, 3);
	ck_assert_uint_eq(res.records[0].charge.gross, 12);
	ck_assert_uint_eq(res.records[1].charge.gross, 13);
	ck_assert_uint_eq(res.records[2].charge.gross, 12);
	ck_assert_uint_eq(res.records[1].paid, 0);
}
END_TEST

START_TEST(swapped_records_are_named)
{
	/* Record seq 2 (height 5) and seq 3 (height 6) trade places. */
	struct block *b5 = &fx.blocks[4], *b6 = &fx.blocks[5];
	struct block_tx tmp = b5->txs[0];

	b5->txs[0] = b6->txs[0];
	b6->txs[0] = tmp;

	run();
	dump();
	ck_assert(!res.verified);
	ck_assert(has_error(5, -1, "transactions root"));
	ck_assert(has_error(5, 3, "record seq 2 is missing"));
	ck_assert(has_error(6, 2, "out of order"));
}
END_TEST

START_TEST(a_duplicated_record_is_named)
{
	struct block *b = &fx.blocks[5];             /* height 6: seq 3 */
	const uint8_t *txs[2] = { b->txs[0].bytes, fx.blocks[4].txs[0].bytes };
	size_t lens[2] = { b->txs[0].len, fx.blocks[4].txs[0].len };
	uint8_t *a = malloc(lens[0]), *c = malloc(lens[1]);

	memcpy(a, txs[0], lens[0]);
	memcpy(c, txs[1], lens[1]);
	txs[0] = a;
	txs[1] = c;
	fixture_set_txs(&fx, 5, txs, lens, 2);
	free(a);
	free(c);

	run();
	dump();
	ck_assert(!res.verified);
	ck_assert(has_error(6, 2, "duplicate"));
}
END_TEST

START_TEST(a_changed_header_is_named)
{
	fx.blocks[4].header.time_ns += 1;            /* height 5 */
	run();
	dump();
	ck_assert(!res.verified);
	ck_assert(has_error(5, -1, "block 5"));
	ck_assert_uint_eq(res.verified_height, 4);
	/* Records in and after the broken block are not proven. */
	ck_assert(has_error(0, 2, "not proven"));
}
END_TEST

START_TEST(a_checkpoint_starts_the_audit)
{
	struct chain_checkpoint cp;
	uint8_t pinned[HASH_LEN];

	memset(&cp, 0, sizeof(cp));
	cp.header = fx.blocks[0].header;
	cp.cert = fx.certs[0];
	cp.vals = fx.genesis.validators;
	merkle_frontier_init(&cp.usage);
	block_id(&cp.header, pinned);
	run_from(1, &cp, pinned, &fx.settled, NULL, NULL);
	dump();
	ck_assert(res.verified);
	ck_assert_uint_eq(res.lease.charged, FIXTURE_CHARGED);

	/* A checkpoint pinned to another id is refused outright. */
	struct audit_input in;
	char why[WHY_MAX] = "";
	memset(&in, 0, sizeof(in));
	in.genesis = &fx.genesis;
	in.checkpoint = &cp;
	pinned[0] ^= 1;
	in.pinned_id = pinned;
	audit_result_free(&res);
	ck_assert_int_ne(audit_run(&in, &res, why), 0);
	ck_assert_msg(strstr(why, "checkpoint at height 1 does not verify") &&
		      strstr(why, "is not the pinned block id") &&
		      strstr(why, "the source holds another block at this height"), "%s", why);
}
END_TEST

/* A node's proof service, one of whose proofs is wrong. */
struct proof_service {
	struct merkle_store *store;
	uint64_t bad_index;
};

static int serve_proof(void *ctx, uint64_t index, uint64_t size, uint8_t proof[][HASH_LEN],
		       size_t *n, char *why)
{
	struct proof_service *ps = ctx;
	int rc = merkle_inclusion_proof(ps->store, index, size, proof, n);

	if (rc) {
		snprintf(why, WHY_MAX, "%s", tally_strerror(rc));
		return rc;
	}
	if (index == ps->bad_index && *n)
		proof[0][0] ^= 1;
	return 0;
}

START_TEST(a_bad_inclusion_proof_is_named)
{
	struct proof_service ps = { merkle_mem_store_new(), 1 };
	uint64_t size = 0;
	struct tx t;

	for (size_t i = 0; i < FIXTURE_BLOCKS; i++)
		for (size_t k = 0; k < fx.blocks[i].ntx; k++) {
			const struct block_tx *bt = &fx.blocks[i].txs[k];
			uint8_t leaf[HASH_LEN];
			ck_assert_int_eq(tx_decode(&t, bt->bytes, bt->len), 0);
			if (t.kind != TX_USAGE)
				continue;
			merkle_leaf_hash(bt->bytes, bt->len, leaf);
			ck_assert_int_eq(merkle_append(ps.store, size++, leaf), 0);
		}
	run_from(0, NULL, NULL, &fx.settled, serve_proof, &ps);
	merkle_mem_store_free(ps.store);
	ck_assert(!res.verified);
	ck_assert_uint_eq(res.nerrors, 1);
	ck_assert(has_error(4, 1, "inclusion proof"));
	ck_assert(res.records[0].proven && !res.records[1].proven);
}
END_TEST

START_TEST(an_unknown_lease_is_not_verified)
{
	fx.lease_id[0] ^= 0xff;
	run_from(0, NULL, NULL, NULL, NULL, NULL);
	ck_assert(!res.verified);
	ck_assert(!res.lease_found);
	ck_assert(has_error(0, -1, "LEASE_OPEN is in none"));
}
END_TEST

Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("audit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, honest_chain_verifies_with_the_bill);
	tcase_add_test(tc, a_different_settlement_fails);
	tcase_add_test(tc, a_different_carry_fails);
	tcase_add_test(tc, a_running_lease_compares_at_the_claimed_record);
	tcase_add_test(tc, one_changed_byte_in_a_record_is_named);
	tcase_add_test(tc, a_dropped_record_is_named);
	tcase_add_test(tc, swapped_records_are_named);
	tcase_add_test(tc, a_duplicated_record_is_named);
	tcase_add_test(tc, a_changed_header_is_named);
	tcase_add_test(tc, a_checkpoint_starts_the_audit);
	tcase_add_test(tc, a_bad_inclusion_proof_is_named);
	tcase_add_test(tc, an_unknown_lease_is_not_verified);
	suite_add_tcase(s, tc);
	return s;
}
