/* The test vectors of docs/FORMATS.md: the code must produce exactly the hex
 * the document shows, and the documented objects must check out on their
 * own terms (hashes, signatures, the domain construction, a chain that
 * replays under every rule with its state roots, a state proof, the
 * settlement table), so neither the code nor the document can drift and the
 * vectors cannot break a rule. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/consensus/msg.h"
#include "lib/chain/replay.h"
#include "lib/chain/verify.h"
#include "tests/vectors/examples.h"

static struct examples x;
static char *doc;

static char *read_doc(void)
{
	const char *dir = getenv("TALLY_SRCDIR");
	char path[4096];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/docs/FORMATS.md", dir ? dir : "../..");
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s (set TALLY_SRCDIR)", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void setup(void)
{
	examples_build(&x);
	doc = read_doc();
}

static void teardown(void)
{
	examples_free(&x);
	free(doc);
}

/* The bytes in the fenced block after "<!-- vector: name -->"; NULL when the
 * document has no such vector. */
static uint8_t *doc_vector(const char *name, size_t *len)
{
	char marker[128];
	const char *p, *end;
	uint8_t *out;
	size_t n = 0;

	snprintf(marker, sizeof(marker), "<!-- vector: %s -->\n```\n", name);
	p = strstr(doc, marker);
	if (!p)
		return NULL;
	p += strlen(marker);
	end = strstr(p, "```");
	ck_assert_ptr_nonnull(end);
	out = malloc((size_t)(end - p) / 2 + 1);
	for (; p < end; p++) {
		char pair[3];

		if (*p == '\n')
			continue;
		ck_assert_msg(p + 1 < end && p[1] != '\n', "vector %s: odd hex digit count", name);
		pair[0] = p[0];
		pair[1] = p[1];
		pair[2] = '\0';
		ck_assert_msg(hex_decode(pair, out + n, 1) == 0, "vector %s: bad hex", name);
		n++;
		p++;
	}
	*len = n;
	return out;
}

static size_t count_markers(void)
{
	size_t n = 0;

	for (const char *p = doc; (p = strstr(p, "<!-- vector: ")); p++)
		n++;
	return n;
}

START_TEST(test_document_matches_code)
{
	for (size_t i = 0; i < x.n; i++) {
		size_t n;
		uint8_t *want = doc_vector(x.v[i].name, &n);

		ck_assert_msg(want, "docs/FORMATS.md has no vector \"%s\" (make vectors)",
			      x.v[i].name);
		ck_assert_msg(n == x.v[i].len && memcmp(want, x.v[i].bytes, n) == 0,
			      "vector \"%s\" in docs/FORMATS.md differs from the code", x.v[i].name);
		free(want);
	}
	ck_assert_uint_eq(count_markers(), x.n);
}
END_TEST

static const struct example_vector *get(const char *name)
{
	const struct example_vector *v = examples_get(&x, name);

	ck_assert_msg(v, "no example %s", name);
	return v;
}

static void assert_hash_of(const char *hash_name, const char *of_name)
{
	const struct example_vector *h = get(hash_name), *o = get(of_name);
	uint8_t want[HASH_LEN];

	sha256(o->bytes, o->len, want);
	ck_assert_uint_eq(h->len, HASH_LEN);
	ck_assert_mem_eq(h->bytes, want, HASH_LEN);
}

START_TEST(test_hashes)
{
	assert_hash_of("genesis.hash", "genesis");
	assert_hash_of("lease_open.hash", "lease_open.tx");
	assert_hash_of("usage.hash", "usage.tx");
	assert_hash_of("block1.id", "block1.header");
	assert_hash_of("block2.id", "block2.header");
	assert_hash_of("block1.cert.hash", "block1.cert");
	assert_hash_of("cert3.hash", "cert3");
	assert_hash_of("genesis.v2.hash", "genesis.v2");

	/* The staking transactions decode to what the document says. */
	static const struct { const char *name; uint8_t kind; uint64_t amount; } st[] = {
		{ "stake.tx", TX_STAKE, 2000 }, { "unstake.tx", TX_UNSTAKE, 500 },
		{ "evidence.tx", TX_EVIDENCE, 0 }, { "unjail.tx", TX_UNJAIL, 0 },
	};
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		const struct example_vector *v = get(st[i].name);
		struct tx t;

		ck_assert_int_eq(tx_decode(&t, v->bytes, v->len), 0);
		ck_assert_int_eq(t.kind, st[i].kind);
		ck_assert_int_eq(tx_verify_all(&t, v->bytes, v->len, x.genesis_hash, NULL), 0);
		if (st[i].amount)
			ck_assert_uint_eq(t.u.stake.amount, st[i].amount);
	}
	/* The unbonding key is 0x04, the release height big-endian, then the
	 * UNSTAKE's hash. */
	const struct example_vector *uk = get("unbonding.key"), *ut = get("unstake.tx");
	uint8_t uh[HASH_LEN];
	tx_hash(ut->bytes, ut->len, uh);
	ck_assert_uint_eq(uk->bytes[0], STATE_KEY_UNBONDING);
	ck_assert_uint_eq(uk->bytes[8], 103);
	ck_assert_mem_eq(uk->bytes + 9, uh, 24);

	/* usage.leaf = SHA-256(0x00 || usage.tx) */
	const struct example_vector *tx = get("usage.tx");
	uint8_t *buf = malloc(tx->len + 1), leaf[HASH_LEN];
	buf[0] = 0x00;
	memcpy(buf + 1, tx->bytes, tx->len);
	sha256(buf, tx->len + 1, leaf);
	free(buf);
	ck_assert_mem_eq(get("usage.leaf")->bytes, leaf, HASH_LEN);

	/* The lease id in LEASE_START and USAGE is the LEASE_OPEN hash. */
	ck_assert_mem_eq(x.start.u.start.lease_id, get("lease_open.hash")->bytes, HASH_LEN);
	ck_assert_mem_eq(x.usage.u.usage.lease_id, get("lease_open.hash")->bytes, HASH_LEN);

	/* The empty state's root: 16 levels of node(0, 0) over zero buckets. */
	uint8_t h[HASH_LEN] = { 0 };
	for (int i = 0; i < STATE_TREE_LEVELS; i++)
		merkle_node_hash(h, h, h);
	ck_assert_mem_eq(get("state.empty_root")->bytes, h, HASH_LEN);
}
END_TEST

/* The signed messages spelled out byte by byte, then checked with raw
 * Ed25519 against the signatures. */
START_TEST(test_domain_construction)
{
	const struct example_vector *msg = get("lease_open.signed_message");
	const struct example_vector *tx = get("lease_open.tx");
	uint8_t prefix[17 + HASH_LEN];

	memcpy(prefix, "tally/v2/tx", 11);
	prefix[11] = 0x00;
	memcpy(prefix + 12, x.genesis_hash, HASH_LEN);
	ck_assert_mem_eq(x.genesis_hash, get("genesis.hash")->bytes, HASH_LEN);
	ck_assert_mem_eq(msg->bytes, prefix, 12 + HASH_LEN);
	ck_assert_uint_eq(msg->len, 12 + HASH_LEN + tx->len - SIG_LEN);
	ck_assert_mem_eq(msg->bytes + 12 + HASH_LEN, tx->bytes, tx->len - SIG_LEN);
	ck_assert_int_eq(ed25519_verify(x.tenant.pub, msg->bytes, msg->len,
					tx->bytes + tx->len - SIG_LEN), 0);

	/* The signed request: METHOD \n PATH \n TIMESTAMP \n NONCE. */
	const struct example_vector *rm = get("request.message"), *rs = get("request.signed_message");
	char path[128], hex[65], want[512];
	hex_encode(x.lease_id, LEASE_ID_LEN, hex);
	snprintf(path, sizeof(path), "/v1/leases/%s/private", hex);
	snprintf(want, sizeof(want), "GET\n%s\n" EXAMPLE_REQUEST_TS "\n" EXAMPLE_REQUEST_NONCE, path);
	ck_assert_uint_eq(rm->len, strlen(want));
	ck_assert_mem_eq(rm->bytes, want, rm->len);
	memcpy(prefix, "tally/v2/request", 16);
	prefix[16] = 0x00;
	memcpy(prefix + 17, x.genesis_hash, HASH_LEN);
	ck_assert_uint_eq(rs->len, sizeof(prefix) + rm->len);
	ck_assert_mem_eq(rs->bytes, prefix, sizeof(prefix));
	ck_assert_mem_eq(rs->bytes + sizeof(prefix), rm->bytes, rm->len);
	ck_assert_int_eq(ed25519_verify(x.tenant.pub, rs->bytes, rs->len, get("request.sig")->bytes),
			 0);
	ck_assert_int_eq(sig_verify(x.tenant.pub, SIG_REQUEST, x.genesis_hash, rm->bytes, rm->len,
				    get("request.sig")->bytes), 0);
}
END_TEST

/* Every documented transaction passes the node's admission checks at the
 * time of its block, and the objects have the documented sizes. */
START_TEST(test_objects_valid)
{
	const char *txs[] = { "lease_open.tx", "lease_start.tx", "usage.tx", "settle.sla.tx",
			      "settle.last.tx", "settle.exhaust.tx" };
	char why[WHY_MAX];

	for (size_t i = 0; i < sizeof(txs) / sizeof(txs[0]); i++) {
		const struct example_vector *v = get(txs[i]);
		struct tx t;

		ck_assert_msg(tx_check(&t, v->bytes, v->len, EXAMPLE_CHAIN, x.genesis_hash,
				       EXAMPLE_NOW_S, why) == 0, "%s: %s", txs[i], why);
	}
	struct lease_contract c;
	const struct example_vector *cv = get("contract");
	ck_assert_int_eq(contract_decode(&c, cv->bytes, cv->len), 0);
	ck_assert_int_eq(contract_validate(&c, EXAMPLE_CHAIN, EXAMPLE_NOW_S, why), 0);
	ck_assert_uint_eq(cv->len, 165 + strlen(EXAMPLE_CHAIN) + strlen("debian-12") +
			  strlen(c.vm.hostname) + strlen(c.vm.ssh_key));
	ck_assert_str_eq(c.vm.hostname, "web-1");
	/* The second lease's contract, with the deposit of one interval. */
	ck_assert_int_eq(contract_validate(&x.settle[4].before.contract, EXAMPLE_CHAIN,
					   EXAMPLE_NOW_S, why), 0);
	ck_assert_uint_eq(get("usage.record")->len, 125);
	ck_assert_uint_eq(get("block1.header")->len, 285 + strlen(EXAMPLE_CHAIN));
	ck_assert_uint_eq(get("block1.precommit")->len, VOTE_LEN);
	ck_assert_uint_eq(get("lease.key")->len, STATE_KEY_LEN);
	ck_assert_uint_eq(get("lease.key")->bytes[0], STATE_KEY_LEASE);
	ck_assert_mem_eq(get("lease.key")->bytes + 1, x.lease_id, LEASE_ID_LEN);

	/* The precommit's signature in the certificate, over the vote vector. */
	struct commit_cert cert;
	const struct example_vector *pv = get("block1.precommit"), *c1 = get("block1.cert");
	ck_assert_int_eq(cert_decode(&cert, c1->bytes, c1->len), 0);
	ck_assert_int_eq(sig_verify(x.provider.pub, SIG_VOTE, x.genesis_hash, pv->bytes, pv->len,
				    cert.sigs[0].sig), 0);
}
END_TEST

/* The export vector replays from its genesis under every rule, state roots
 * included; its lease's proof leads to block 2's state root and holds
 * lease.state; the vectors of the blocks and the proof are its parts. */
START_TEST(test_export_replays)
{
	const struct example_vector *ev = get("export");
	struct chainfile f;
	struct replay rp;
	char why[WHY_MAX] = "";
	uint8_t root[HASH_LEN];

	ck_assert_msg(chainfile_decode(&f, ev->bytes, ev->len, why) == 0, "%s", why);
	ck_assert_uint_eq(f.nblocks, 2);
	ck_assert_uint_eq(f.nleases, 1);
	ck_assert_msg(replay_init(&rp, &f.genesis, why) == 0, "%s", why);
	state_root(&rp.state, root);
	ck_assert_mem_eq(root, get("state.genesis_root")->bytes, HASH_LEN);
	for (size_t i = 0; i < f.nblocks; i++)
		ck_assert_msg(replay_block(&rp, &f.blocks[i].block, f.blocks[i].cert,
					   f.blocks[i].next_vals, NULL, why) == 0, "%s", why);
	state_root(&rp.state, root);
	ck_assert_mem_eq(root, get("block2.state_root")->bytes, HASH_LEN);
	ck_assert_mem_eq(f.blocks[0].block.header.state_root, get("block1.state_root")->bytes,
			 HASH_LEN);
	ck_assert_msg(chainfile_check_lease(&f, &f.leases[0], why) == 0, "%s", why);
	replay_free(&rp);

	/* Its parts are the other vectors. */
	struct enc e;
	const char *parts[] = { "block1", "block2" };
	for (int i = 0; i < 2; i++) {
		enc_init(&e);
		block_encode(&e, &f.blocks[i].block);
		ck_assert_uint_eq(e.len, get(parts[i])->len);
		ck_assert_mem_eq(e.buf, get(parts[i])->bytes, e.len);
		enc_free(&e);
	}
	enc_init(&e);
	state_proof_encode(&e, &f.leases[0].proof);
	ck_assert_uint_eq(e.len, get("lease.proof")->len);
	ck_assert_mem_eq(e.buf, get("lease.proof")->bytes, e.len);
	enc_free(&e);

	/* The proof vector on its own: it leads to block 2's state root and
	 * holds the lease.state vector under lease.key. */
	struct state_proof p;
	const uint8_t *val;
	size_t vlen;
	const struct example_vector *pv = get("lease.proof"), *key = get("lease.key");
	ck_assert_int_eq(state_proof_decode(&p, pv->bytes, pv->len), 0);
	ck_assert_int_eq(state_proof_verify(&p, key->bytes, key->len,
					    get("block2.state_root")->bytes, &val, &vlen), 0);
	ck_assert_ptr_nonnull(val);
	ck_assert_uint_eq(vlen, get("lease.state")->len);
	ck_assert_mem_eq(val, get("lease.state")->bytes, vlen);
	state_proof_free(&p);
	chainfile_free(&f);
}
END_TEST

/* The proposal is the provider's, for block 2; its message decodes and
 * encodes to the same bytes with the consensus engine's codec. */
START_TEST(test_proposal)
{
	const struct example_vector *pv = get("block2.proposal"), *mv = get("block2.proposal_msg");
	struct proposal p;
	struct cs_msg m;
	struct enc e;

	ck_assert_int_eq(proposal_decode(&p, pv->bytes, pv->len), 0);
	ck_assert_uint_eq(p.height, 2);
	ck_assert_int_eq(p.pol_round, -1);
	ck_assert_mem_eq(p.block_id, get("block2.id")->bytes, HASH_LEN);
	ck_assert_int_eq(cs_msg_decode(&m, mv->bytes, mv->len), 0);
	ck_assert_uint_eq(m.kind, CS_MSG_PROPOSAL);
	ck_assert_int_eq(proposal_verify(&m.p, x.provider.pub, x.genesis_hash, m.sig), 0);
	ck_assert_uint_eq(m.block_len, get("block2")->len);
	ck_assert_mem_eq(m.block, get("block2")->bytes, m.block_len);
	ck_assert_uint_eq(m.prev_cert_len, get("block1.cert")->len);
	ck_assert_mem_eq(m.prev_cert, get("block1.cert")->bytes, m.prev_cert_len);
	enc_init(&e);
	cs_msg_encode(&e, &m);
	ck_assert_uint_eq(e.len, mv->len);
	ck_assert_mem_eq(e.buf, mv->bytes, e.len);
	enc_free(&e);
}
END_TEST

/* Three signers of four, each stake 10: 30 * 3 > 40 * 2. Without one of
 * them, 20 * 3 > 40 * 2 fails. */
START_TEST(test_cert3)
{
	const struct example_vector *vv = get("cert3.validators"), *cv = get("cert3");
	struct validator_set vals;
	struct commit_cert c;
	struct dec d;

	dec_init(&d, vv->bytes, vv->len);
	ck_assert_int_eq(valset_decode_from(&d, &vals), 0);
	ck_assert_int_eq(dec_finish(&d), 0);
	ck_assert_uint_eq(vals.n, 4);
	ck_assert_int_eq(cert_decode(&c, cv->bytes, cv->len), 0);
	ck_assert_uint_eq(c.n, 3);
	ck_assert_uint_eq(cv->len, 48 + 96 * 3);
	ck_assert_mem_eq(c.block_id, get("block1.id")->bytes, HASH_LEN);
	ck_assert_int_eq(cert_verify(&c, &vals, x.genesis_hash), 0);
	c.n = 2;
	ck_assert_int_eq(cert_verify(&c, &vals, x.genesis_hash), TALLY_E_QUORUM);
}
END_TEST

/* Each settlement case: the lease states before and after are the vectors
 * and decode, and the document's table row is what the code computes. */
START_TEST(test_settlement)
{
	const char *after[EXAMPLE_SETTLE_CASES] = { "lease.state", "settle.sla.lease",
		"settle.closing.lease", "settle.last.lease", "settle.exhaust.lease",
		"settle.window.lease", "settle.carry.lease" };
	char row[512];

	for (int i = 0; i < EXAMPLE_SETTLE_CASES; i++) {
		const struct example_settle *s = &x.settle[i];
		const struct example_vector *v = get(after[i]);
		struct lease l;
		struct enc e;

		ck_assert_int_eq(lease_decode(&l, v->bytes, v->len), 0);
		enc_init(&e);
		lease_encode_to(&e, &s->after);
		ck_assert_uint_eq(e.len, v->len);
		ck_assert_mem_eq(e.buf, v->bytes, e.len);
		enc_free(&e);
		example_settle_row(s, row, sizeof(row));
		ck_assert_msg(strstr(doc, row), "docs/FORMATS.md lacks the settlement row\n%s", row);
		/* Money is conserved: what was paid and refunded left the escrow. */
		ck_assert_uint_eq(s->before.escrow - s->after.escrow, s->paid + s->refund);
	}
	/* The cases follow each other: normal, SLA, closing, last. */
	for (int i = 1; i < 4; i++) {
		struct enc a, b;

		enc_init(&a);
		enc_init(&b);
		lease_encode_to(&a, &x.settle[i - 1].after);
		lease_encode_to(&b, &x.settle[i].before);
		ck_assert_mem_eq(a.buf, b.buf, a.len);
		enc_free(&a);
		enc_free(&b);
	}
	struct lease l;
	const struct example_vector *bv = get("settle.exhaust.before");
	ck_assert_int_eq(lease_decode(&l, bv->bytes, bv->len), 0);
	ck_assert_uint_eq(l.escrow, 1440);
}
END_TEST

Suite *vectors_suite(void)
{
	Suite *s = suite_create("vectors");
	TCase *tc = tcase_create("vectors");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_document_matches_code);
	tcase_add_test(tc, test_hashes);
	tcase_add_test(tc, test_domain_construction);
	tcase_add_test(tc, test_objects_valid);
	tcase_add_test(tc, test_export_replays);
	tcase_add_test(tc, test_proposal);
	tcase_add_test(tc, test_cert3);
	tcase_add_test(tc, test_settlement);
	suite_add_tcase(s, tc);
	return s;
}
