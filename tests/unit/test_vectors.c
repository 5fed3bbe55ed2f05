/* The test vectors of docs/FORMATS.md: the code must produce exactly the hex
 * the document shows, and the documented objects must check out on their
 * own terms (hashes, signatures, the domain construction, a verifying
 * chain), so neither the code nor the document can drift. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	assert_hash_of("block1.cert.hash", "block1.cert");

	/* usage.leaf = SHA-256(0x00 || usage.tx) */
	const struct example_vector *tx = get("usage.tx");
	uint8_t *buf = malloc(tx->len + 1), leaf[HASH_LEN];
	buf[0] = 0x00;
	memcpy(buf + 1, tx->bytes, tx->len);
	sha256(buf, tx->len + 1, leaf);
	free(buf);
	ck_assert_mem_eq(get("usage.leaf")->bytes, leaf, HASH_LEN);
	/* A log of one record has that leaf as its root. */
	ck_assert_mem_eq(get("block1.usage_root")->bytes, leaf, HASH_LEN);

	/* The lease id in LEASE_START and USAGE is the LEASE_OPEN hash. */
	ck_assert_mem_eq(x.start.u.start.lease_id, get("lease_open.hash")->bytes, HASH_LEN);
	ck_assert_mem_eq(x.usage.u.usage.lease_id, get("lease_open.hash")->bytes, HASH_LEN);
}
END_TEST

/* The signed message spelled out byte by byte, then checked with raw
 * Ed25519 against the signature at the end of the transaction. */
START_TEST(test_domain_construction)
{
	const struct example_vector *msg = get("lease_open.signed_message");
	const struct example_vector *tx = get("lease_open.tx");
	uint8_t prefix[12 + HASH_LEN];

	memcpy(prefix, "tally/v2/tx", 11);
	prefix[11] = 0x00;
	memcpy(prefix + 12, x.genesis_hash, HASH_LEN);
	ck_assert_mem_eq(x.genesis_hash, get("genesis.hash")->bytes, HASH_LEN);
	ck_assert_mem_eq(msg->bytes, prefix, sizeof(prefix));
	ck_assert_uint_eq(msg->len, sizeof(prefix) + tx->len - SIG_LEN);
	ck_assert_mem_eq(msg->bytes + sizeof(prefix), tx->bytes, tx->len - SIG_LEN);
	ck_assert_int_eq(ed25519_verify(x.tenant.pub, msg->bytes, msg->len,
					tx->bytes + tx->len - SIG_LEN), 0);
}
END_TEST

START_TEST(test_objects_valid)
{
	const char *txs[] = { "lease_open.tx", "lease_start.tx", "usage.tx" };
	char why[WHY_MAX];

	for (size_t i = 0; i < 3; i++) {
		const struct example_vector *v = get(txs[i]);
		struct tx t;

		ck_assert_msg(tx_check(&t, v->bytes, v->len, EXAMPLE_CHAIN, x.genesis_hash, EXAMPLE_NOW_S, why) == 0,
			      "%s: %s", txs[i], why);
	}
	struct lease_contract c;
	const struct example_vector *cv = get("contract");
	ck_assert_int_eq(contract_decode(&c, cv->bytes, cv->len), 0);
	ck_assert_uint_eq(cv->len, 165 + strlen(EXAMPLE_CHAIN) + strlen("debian-12") +
			  strlen(c.vm.hostname) + strlen(c.vm.ssh_key));
	ck_assert_str_eq(c.vm.hostname, "web-1");
	ck_assert_uint_eq(get("usage.record")->len, 125);
	ck_assert_uint_eq(get("block1.header")->len, 285 + strlen(EXAMPLE_CHAIN));
	ck_assert_uint_eq(get("block1.precommit")->len, VOTE_LEN);

	/* The example block 1 verifies from the example genesis. */
	struct chain_verifier v;
	struct block b;
	struct commit_cert cert;
	const struct example_vector *bv = get("block1"), *cv2 = get("block1.cert");
	ck_assert_int_eq(chain_verifier_from_genesis(&v, &x.genesis), 0);
	ck_assert_int_eq(block_decode(&b, bv->bytes, bv->len), 0);
	ck_assert_int_eq(cert_decode(&cert, cv2->bytes, cv2->len), 0);
	ck_assert_msg(chain_verify_block(&v, &b, &cert, NULL, why) == 0, "%s", why);
	block_free(&b);

	/* The precommit's signature in the certificate, over the vote vector. */
	const struct example_vector *pv = get("block1.precommit");
	ck_assert_int_eq(sig_verify(x.provider.pub, SIG_VOTE, x.genesis_hash, pv->bytes, pv->len,
				    cert.sigs[0].sig), 0);
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
	suite_add_tcase(s, tc);
	return s;
}
