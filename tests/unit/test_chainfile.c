/* The chain export file: a round trip keeps every byte, and the decoder is
 * strict (every truncation, trailing bytes, bad magic, bad version, a block
 * out of place, a next validator set where the header announces none or
 * none where it does). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/chain/audit.h"
#include "lib/chain/chainfile.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/chainbuild.h"
#include "tests/support/fileclaim.h"
#include "tests/support/ledgertest.h"
#include "tests/unit/chain_fixture.h"

/* The case's directory, made and removed in the runner's process: a test
 * whose assertion fails ends before its own clean-up, and leaves nothing. */
static char base[40];

static void case_begin(void)
{
	lt_case_dir(base, sizeof(base), "chainfile");
}

static void case_end(void)
{
	cb_rm_tree(base);
}

static struct fixture fx;
static uint8_t *bytes;
static size_t nbytes;

static char *genesis_json(void)
{
	char *json = genesis_to_json(&fx.genesis);

	ck_assert_ptr_nonnull(json);
	return json;
}

/* The audit of the fixture's lease over the file's blocks, with the state
 * the file claims for it (cl); blocks holds FIXTURE_BLOCKS entries. */
static void audit_input_from(struct audit_input *in, struct audit_block *blocks,
			     const struct chainfile *g, const struct chainfile_lease *cl)
{
	memset(in, 0, sizeof(*in));
	for (size_t i = 0; i < g->nblocks; i++) {
		blocks[i].block = &g->blocks[i].block;
		blocks[i].cert = g->blocks[i].cert;
		blocks[i].next_vals = NULL;
	}
	in->genesis = &g->genesis;
	in->blocks = blocks;
	in->nblocks = g->nblocks;
	memcpy(in->lease_id, fx.lease_id, LEASE_ID_LEN);
	in->settled_proof = &cl->proof;
	in->settled_height = cl->height;
}

/* The fixture as a chain file, with one lease state (its validator set
 * never changes: the_next_set_is_where_the_header_says has a chain whose
 * set does). */
static void setup(void)
{
	struct chainfile f;
	char why[WHY_MAX] = "";
	struct enc e;

	fixture_build(&fx);
	chainfile_init(&f);
	char *json = genesis_json();
	ck_assert_msg(chainfile_set_genesis(&f, json, why) == 0, "%s", why);
	free(json);
	for (size_t i = 0; i < FIXTURE_BLOCKS; i++)
		ck_assert_int_eq(chainfile_add_block(&f, &fx.blocks[i], &fx.certs[i], NULL), 0);
	ck_assert_msg(chainfile_add_lease(&f, fx.lease_id, FIXTURE_BLOCKS, &fx.settled_proof,
					  why) == 0, "%s", why);
	enc_init(&e);
	chainfile_encode(&e, &f);
	ck_assert_int_eq(enc_error(&e), 0);
	bytes = enc_take(&e, &nbytes);
	chainfile_free(&f);
}

static void teardown(void)
{
	free(bytes);
	fixture_free(&fx);
}

START_TEST(round_trip_keeps_every_byte)
{
	struct chainfile f;
	char why[WHY_MAX] = "";
	struct enc e;

	ck_assert_msg(chainfile_decode(&f, bytes, nbytes, why) == 0, "%s", why);
	ck_assert_uint_eq(f.nblocks, FIXTURE_BLOCKS);
	ck_assert_uint_eq(f.nleases, 1);
	for (size_t i = 0; i < FIXTURE_BLOCKS; i++)
		ck_assert_ptr_null(f.blocks[i].next_vals);
	ck_assert_str_eq(f.genesis.chain_id, fx.genesis.chain_id);
	const struct chainfile_lease *cl = chainfile_find_lease(&f, fx.lease_id);
	ck_assert_ptr_nonnull(cl);
	ck_assert_uint_eq(cl->height, FIXTURE_BLOCKS);
	ck_assert_uint_eq(cl->lease.charged, FIXTURE_CHARGED);
	ck_assert_msg(chainfile_check_lease(&f, cl, why) == 0, "%s", why);
	for (size_t i = 0; i < FIXTURE_BLOCKS; i++) {
		uint8_t a[HASH_LEN], b[HASH_LEN];
		block_id(&f.blocks[i].block.header, a);
		block_id(&fx.blocks[i].header, b);
		ck_assert_mem_eq(a, b, HASH_LEN);
		ck_assert_uint_eq(f.blocks[i].block.ntx, fx.blocks[i].ntx);
	}
	enc_init(&e);
	chainfile_encode(&e, &f);
	ck_assert_uint_eq(e.len, nbytes);
	ck_assert_mem_eq(e.buf, bytes, nbytes);
	enc_free(&e);
	chainfile_free(&f);
}
END_TEST

/* Blocks before a checkpoint are bound to the block after them by hashes
 * alone: a changed byte anywhere in blocks 1..6 of the file (a block, its
 * certificate or its set flag) either does not decode or breaks the chain
 * of hashes up to block 7, which an audit from a checkpoint at 7 pins. */
START_TEST(a_changed_byte_before_a_checkpoint_is_refused)
{
	struct chainfile f;
	char why[WHY_MAX] = "";
	size_t start, end;
	struct enc e;

	ck_assert_msg(chainfile_decode(&f, bytes, nbytes, why) == 0, "%s", why);
	for (size_t h = 0; h <= FIXTURE_BLOCKS; h++)
		ck_assert_msg(chainfile_check_prefix(&f, h, why) == 0, "%zu: %s", h, why);
	ck_assert_int_eq(chainfile_check_prefix(&f, FIXTURE_BLOCKS + 1, why), TALLY_E_HEIGHT);
	/* Where blocks 1..6 lie: after the magic, version, genesis and count,
	 * each a block, a certificate (both length-prefixed) and a flag. */
	start = CHAINFILE_MAGIC_LEN + 4 + 4 + strlen(f.genesis_json) + 8;
	end = start;
	for (size_t i = 0; i + 1 < FIXTURE_BLOCKS; i++) {
		enc_init(&e);
		block_encode(&e, &f.blocks[i].block);
		cert_encode(&e, f.blocks[i].cert);
		end += 4 + 4 + 1 + e.len;
		enc_free(&e);
	}
	chainfile_free(&f);
	ck_assert_uint_lt(end, nbytes);
	for (size_t at = start; at < end; at++) {
		uint8_t *b = malloc(nbytes);

		ck_assert_ptr_nonnull(b);
		memcpy(b, bytes, nbytes);
		b[at] ^= 0x01;
		if (chainfile_decode(&f, b, nbytes, why) == 0) {
			int rc = chainfile_check_prefix(&f, FIXTURE_BLOCKS, why);

			ck_assert_msg(rc == TALLY_E_LINK || rc == TALLY_E_TXROOT,
				      "byte %zu changed: %d (%s)", at, rc, why);
			chainfile_free(&f);
		}
		free(b);
	}
}
END_TEST

START_TEST(every_truncation_fails)
{
	struct chainfile f;
	char why[WHY_MAX];

	for (size_t n = 0; n < nbytes; n++) {
		int rc = chainfile_decode(&f, bytes, n, why);
		ck_assert_msg(rc != 0, "a file cut at %zu of %zu bytes decoded", n, nbytes);
		ck_assert_ptr_null(f.blocks);
	}
}
END_TEST

START_TEST(trailing_bytes_fail)
{
	uint8_t *longer = malloc(nbytes + 1);
	struct chainfile f;
	char why[WHY_MAX] = "";

	memcpy(longer, bytes, nbytes);
	longer[nbytes] = 0;
	ck_assert_int_eq(chainfile_decode(&f, longer, nbytes + 1, why), TALLY_E_TRAILING);
	ck_assert_ptr_nonnull(strstr(why, "after the last lease"));
	free(longer);
}
END_TEST

START_TEST(bad_magic_and_version_fail)
{
	struct chainfile f;
	char why[WHY_MAX] = "";

	bytes[0] ^= 0x20;
	ck_assert_int_eq(chainfile_decode(&f, bytes, nbytes, why), TALLY_E_ENCODING);
	ck_assert_ptr_nonnull(strstr(why, "magic"));
	bytes[0] ^= 0x20;
	bytes[CHAINFILE_MAGIC_LEN] = 1;         /* version 1: no state proofs */
	ck_assert_int_eq(chainfile_decode(&f, bytes, nbytes, why), TALLY_E_VERSION);
	bytes[CHAINFILE_MAGIC_LEN] = 2;
	ck_assert_int_eq(chainfile_decode(&f, bytes, nbytes, why), 0);
	chainfile_free(&f);
}
END_TEST

START_TEST(a_block_out_of_place_fails)
{
	struct chainfile f, g;
	char why[WHY_MAX] = "";
	struct enc e;

	ck_assert_int_eq(chainfile_decode(&f, bytes, nbytes, why), 0);
	/* Drop block 2: block 3 then sits at position 2. */
	chainfile_init(&g);
	ck_assert_int_eq(chainfile_set_genesis(&g, f.genesis_json, why), 0);
	for (size_t i = 0; i < f.nblocks; i++)
		if (i != 1)
			ck_assert_int_eq(chainfile_add_block(&g, &f.blocks[i].block,
							     f.blocks[i].cert, NULL), 0);
	chainfile_free(&f);
	enc_init(&e);
	chainfile_encode(&e, &g);
	ck_assert_int_eq(chainfile_decode(&f, e.buf, e.len, why), TALLY_E_HEIGHT);
	ck_assert_ptr_nonnull(strstr(why, "position 2 claims height 3"));
	enc_free(&e);
	chainfile_free(&g);
}
END_TEST

START_TEST(a_valset_out_of_order_fails)
{
	struct chainfile f;
	struct validator_set two;
	struct enc e;
	struct dec d;

	memset(&two, 0, sizeof(two));
	two.n = 2;
	memset(two.v[0].pubkey, 2, PUBKEY_LEN);
	memset(two.v[1].pubkey, 1, PUBKEY_LEN);
	two.v[0].stake = two.v[1].stake = 1;
	enc_init(&e);
	valset_encode(&e, &two);
	struct validator_set out;
	dec_init(&d, e.buf, e.len);
	ck_assert_int_eq(valset_decode_from(&d, &out), TALLY_E_VALSET);
	enc_free(&e);

	/* Stakes whose total does not fit 64 bits: the set rule refuses them,
	 * so the decoder does too (it calls the same valset_check). */
	memset(two.v[0].pubkey, 1, PUBKEY_LEN);
	memset(two.v[1].pubkey, 2, PUBKEY_LEN);
	two.v[0].stake = UINT64_MAX;
	two.v[1].stake = 1;
	ck_assert_int_eq(valset_check(&two), TALLY_E_VALSET);
	enc_init(&e);
	valset_encode(&e, &two);
	dec_init(&d, e.buf, e.len);
	ck_assert_int_eq(valset_decode_from(&d, &out), TALLY_E_VALSET);
	ck_assert_uint_eq(out.n, 0);
	enc_free(&e);
	/* And the same set without the overflow decodes. */
	two.v[0].stake = UINT64_MAX - 1;
	enc_init(&e);
	valset_encode(&e, &two);
	dec_init(&d, e.buf, e.len);
	ck_assert_int_eq(valset_decode_from(&d, &out), 0);
	ck_assert_int_eq(dec_finish(&d), 0);
	ck_assert_uint_eq(out.n, 2);
	enc_free(&e);
	(void)f;
}
END_TEST

/* f, encoded, is refused as non-canonical with the sentence want. */
static void expect_refused(const struct chainfile *f, const char *want)
{
	struct chainfile g;
	char why[WHY_MAX] = "";
	struct enc e;

	enc_init(&e);
	chainfile_encode(&e, f);
	ck_assert_int_eq(chainfile_decode(&g, e.buf, e.len, why), TALLY_E_ENCODING);
	ck_assert_str_eq(why, want);
	enc_free(&e);
}

/* A chain whose set changes at block 1 (a STAKE): its file carries the new
 * set there and round-trips. The same chain with that set withheld, or with
 * a set on block 2, whose header announces no change, is refused, naming
 * the block: an exporter cannot leave out what a reader from a later
 * checkpoint needs, nor add a set no check reads. */
START_TEST(the_next_set_is_where_the_header_says)
{
	const struct chain_params p = { .unbonding_blocks = 2, .slash_ppm = 100000,
					.jail_blocks = 2, .min_self_stake = 1,
					.max_validators = 10 };
	struct chainbuild c;
	struct chainfile f, g;
	char why[WHY_MAX] = "";
	struct enc e;
	struct tx t;

	cb_init_params(&c, "next-set", 1700000000ull * CB_SEC, &p);
	memset(&t, 0, sizeof(t));
	t.kind = TX_STAKE;
	t.u.stake.amount = 40;
	cb_tx(&c, &t, CB_TENANT, false, NULL);
	cb_seal(&c, (1700000000ull + 1) * CB_SEC, false, NULL, NULL);
	cb_seal(&c, (1700000000ull + 2) * CB_SEC, false, NULL, NULL);
	chainfile_init(&f);
	cb_file(&c, &f);
	ck_assert_ptr_nonnull(f.blocks[0].next_vals);
	ck_assert_ptr_null(f.blocks[1].next_vals);
	enc_init(&e);
	chainfile_encode(&e, &f);
	ck_assert_msg(chainfile_decode(&g, e.buf, e.len, why) == 0, "%s", why);
	ck_assert_mem_eq(g.blocks[0].next_vals, f.blocks[0].next_vals, sizeof(struct validator_set));
	chainfile_free(&g);
	enc_free(&e);

	/* The new set withheld at block 1. */
	struct validator_set *set = f.blocks[0].next_vals;
	f.blocks[0].next_vals = NULL;
	expect_refused(&f, "block at height 1: its header announces a change of the validator"
		       " set, but no next set follows");
	/* A set on block 2, whose header announces none. */
	f.blocks[0].next_vals = set;
	f.blocks[1].next_vals = malloc(sizeof(*set));
	ck_assert_ptr_nonnull(f.blocks[1].next_vals);
	*f.blocks[1].next_vals = *set;
	expect_refused(&f, "block at height 2: a next validator set follows, but its header"
		       " announces no change of the set");
	chainfile_free(&f);
	cb_free(&c);
}
END_TEST

START_TEST(save_and_load_a_file)
{
	char path[96];
	struct chainfile f, g;
	char why[WHY_MAX] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/chain-XXXXXX", base);
	fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(chainfile_decode(&f, bytes, nbytes, why), 0);
	ck_assert_msg(chainfile_save(&f, path, why) == 0, "%s", why);
	ck_assert_msg(chainfile_load(&g, path, why) == 0, "%s", why);
	unlink(path);
	ck_assert_uint_eq(g.nblocks, FIXTURE_BLOCKS);

	/* The audit reads the same from the file as from memory. */
	struct audit_block blocks[FIXTURE_BLOCKS];
	struct audit_input in;
	struct audit_result res;
	audit_input_from(&in, blocks, &g, chainfile_find_lease(&g, fx.lease_id));
	ck_assert_int_eq(audit_run(&in, &res, why), 0);
	ck_assert(res.verified);
	ck_assert(res.compared);
	ck_assert_uint_eq(res.lease.charged, FIXTURE_CHARGED);
	audit_result_free(&res);
	chainfile_free(&f);
	chainfile_free(&g);

	ck_assert_int_eq(chainfile_load(&g, path, why), TALLY_E_NOTFOUND);
}
END_TEST

/* The file's lease state changed the way a dishonest exporter would: money
 * still adds up (charged 48 instead of 49, the rest refunded), so the file
 * decodes, but its proof no longer leads to block 7's state root: both the
 * file check and the audit refuse it, naming the lease and the block. */
START_TEST(a_changed_lease_state_is_refused)
{
	struct chainfile f, g;
	char why[WHY_MAX] = "", hex[17];
	struct enc e;

	ck_assert_int_eq(chainfile_decode(&f, bytes, nbytes, why), 0);
	ck_assert_int_eq(fileclaim_undercharge(&f.leases[0]), 0);
	enc_init(&e);
	chainfile_encode(&e, &f);
	chainfile_free(&f);
	ck_assert_msg(chainfile_decode(&g, e.buf, e.len, why) == 0, "%s", why);
	enc_free(&e);
	ck_assert_uint_eq(g.leases[0].lease.charged, FIXTURE_CHARGED - 1);

	hex_encode(fx.lease_id, 8, hex);
	ck_assert_int_eq(chainfile_check_lease(&g, &g.leases[0], why), TALLY_E_PROOF_ROOT);
	ck_assert_ptr_nonnull(strstr(why, "block 7"));
	ck_assert_ptr_nonnull(strstr(why, hex));
	ck_assert_ptr_nonnull(strstr(why, "is not what the chain committed"));

	struct audit_block blocks[FIXTURE_BLOCKS];
	struct audit_input in;
	struct audit_result res;
	audit_input_from(&in, blocks, &g, &g.leases[0]);
	ck_assert_int_eq(audit_run(&in, &res, why), 0);
	ck_assert(!res.verified);
	ck_assert_uint_ge(res.nerrors, 1);
	ck_assert_int_eq(res.errors[0].code, TALLY_E_PROOF_ROOT);
	ck_assert_uint_eq(res.errors[0].height, 7);
	ck_assert_ptr_nonnull(strstr(res.errors[0].msg, "is not what the chain committed"));
	ck_assert_ptr_nonnull(strstr(res.errors[0].msg, hex));
	audit_result_free(&res);

	/* The honest claim, audited over blocks 1..6 only, names the block it
	 * could not check. */
	in.settled_proof = &fx.settled_proof;
	in.nblocks = 6;
	ck_assert_int_eq(audit_run(&in, &res, why), 0);
	ck_assert(!res.verified);
	ck_assert_int_eq(res.errors[0].code, TALLY_E_HEIGHT);
	ck_assert_ptr_nonnull(strstr(res.errors[0].msg, "block 7"));
	audit_result_free(&res);
	chainfile_free(&g);
}
END_TEST

/* Leases out of id order, and a lease of a height the file lacks. */
START_TEST(lease_entries_are_strict)
{
	struct chainfile f;
	char why[WHY_MAX] = "";
	struct enc e;

	chainfile_init(&f);
	ck_assert_int_eq(chainfile_add_lease(&f, fx.lease_id, 3, &fx.settled_proof, why), 0);
	ck_assert_int_eq(chainfile_add_lease(&f, fx.lease_id, 3, &fx.settled_proof, why),
			 TALLY_E_ENCODING);
	uint8_t other[LEASE_ID_LEN];
	memset(other, 0xff, sizeof(other));
	ck_assert_int_eq(chainfile_add_lease(&f, other, 3, &fx.settled_proof, why),
			 TALLY_E_NOTFOUND);
	chainfile_free(&f);

	/* Such a file is damaged, not missing: loading it says so
	 * (TALLY_E_NOTFOUND is kept for a file that does not exist). */
	char path[96];
	snprintf(path, sizeof(path), "%s/chain-XXXXXX", base);
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(chainfile_decode(&f, bytes, nbytes, why), 0);
	ck_assert_uint_eq(f.nleases, 1);
	f.leases[0].id[0] ^= 0x01;      /* the proof holds the lease it names, not this one */
	enc_init(&e);
	chainfile_encode(&e, &f);
	chainfile_free(&f);
	ck_assert_int_eq(chainfile_decode(&f, e.buf, e.len, why), TALLY_E_NOTFOUND);
	FILE *fp = fopen(path, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(e.buf, 1, e.len, fp), e.len);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(chainfile_load(&f, path, why), TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "damaged") && strstr(why, "its proof does not hold it"), "%s", why);
	unlink(path);
	enc_free(&e);

	/* The fixture's file with its lease moved to height 8 of 7. */
	ck_assert_int_eq(chainfile_decode(&f, bytes, nbytes, why), 0);
	f.leases[0].height = FIXTURE_BLOCKS + 1;
	enc_init(&e);
	chainfile_encode(&e, &f);
	chainfile_free(&f);
	ck_assert_int_eq(chainfile_decode(&f, e.buf, e.len, why), TALLY_E_HEIGHT);
	ck_assert_ptr_nonnull(strstr(why, "block 8"));
	enc_free(&e);
}
END_TEST

Suite *chainfile_suite(void)
{
	Suite *s = suite_create("chainfile");
	TCase *tc = tcase_create("chainfile");

	tcase_add_unchecked_fixture(tc, case_begin, case_end);
	tcase_add_checked_fixture(tc, setup, teardown);
	/* Every truncation decodes the genesis again: seconds under ASan on a
	 * busy machine, beyond Check's default 4 s. */
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, round_trip_keeps_every_byte);
	tcase_add_test(tc, every_truncation_fails);
	tcase_add_test(tc, a_changed_byte_before_a_checkpoint_is_refused);
	tcase_add_test(tc, trailing_bytes_fail);
	tcase_add_test(tc, bad_magic_and_version_fail);
	tcase_add_test(tc, a_block_out_of_place_fails);
	tcase_add_test(tc, a_valset_out_of_order_fails);
	tcase_add_test(tc, the_next_set_is_where_the_header_says);
	tcase_add_test(tc, save_and_load_a_file);
	tcase_add_test(tc, a_changed_lease_state_is_refused);
	tcase_add_test(tc, lease_entries_are_strict);
	suite_add_tcase(s, tc);
	return s;
}
