/* The RFC 6962 / RFC 9162 Merkle log (lib/merkle.c).
 *
 * Three independent sources of truth:
 *  - published reference data (below, with its source);
 *  - a naive reference written here straight from RFC 6962 section 2.1
 *    (MTH, PATH, SUBPROOF as recursive functions over the leaf hashes);
 *  - recursive re-computations of a proof's roots along the same RFC
 *    structure, to predict which named error a tampered proof must get. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/errors.h"
#include "lib/merkle.h"

#define MAX_N 64

typedef uint8_t hash_t[HASH_LEN];

static void unhex(const char *s, uint8_t *out, size_t n)
{
	ck_assert_int_eq(hex_decode(s, out, n), 0);
}

/* ---------------------------------------------------------------------------
 * Reference data used by certificate-transparency implementations: the eight
 * leaves, the hashes of every perfect subtree over them and the roots of the
 * trees of sizes 0..8, from transparency-dev/merkle testonly/constants.go
 * (LeafInputs, NodeHashes, RootHashes); the inclusion and consistency proofs
 * from transparency-dev/merkle proof/verify_test.go (inclusionProofs,
 * consistencyProofs; there the leaf field is 1-based, here the index is
 * 0-based). The same data is in google/certificate-transparency's
 * merkle_tree_test.cc. */
static const char *const ref_leaves[8] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};

static const char *const ref_nodes[4][8] = {
	{
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
		"07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
		"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
		"4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
		"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
		"46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
	}, {
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	}, {
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
	}, {
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	},
};

static const char *const ref_roots[9] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct ref_proof {
	uint64_t a, b;              /* (index, size) or (old_size, new_size) */
	size_t n;
	const char *hash[3];
};

static const struct ref_proof ref_inclusion[] = {
	{ 0, 1, 0, { NULL } },
	{ 0, 8, 3, {
		"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 5, 8, 3, {
		"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
		"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 3, 1, {
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
	{ 1, 5, 3, {
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
};

static const struct ref_proof ref_consistency[] = {
	{ 1, 1, 0, { NULL } },
	{ 1, 8, 3, {
		"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 6, 8, 3, {
		"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 5, 2, {
		"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
	{ 6, 7, 3, {
		"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
};

/* The leaf hashes of the reference tree. */
static void ref_leaf_hashes(hash_t out[8])
{
	for (int i = 0; i < 8; i++) {
		uint8_t data[16];
		size_t len = strlen(ref_leaves[i]) / 2;

		unhex(ref_leaves[i], data, len);
		merkle_leaf_hash(data, len, out[i]);
	}
}

/* ---------------------------------------------------------------------------
 * Naive reference: RFC 6962 section 2.1, recursion for recursion. */

static uint64_t rfc_k(uint64_t n)   /* largest power of two < n, for n > 1 */
{
	uint64_t k = 1;

	while (k <= (n - 1) / 2)
		k <<= 1;
	return k;
}

/* MTH(D[0:n]) over d (d points at the first leaf hash of the range). */
static void ref_mth(const hash_t *d, uint64_t n, uint8_t out[HASH_LEN])
{
	uint8_t l[HASH_LEN], r[HASH_LEN];

	if (n == 0) {
		sha256("", 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, d[0], HASH_LEN);
		return;
	}
	uint64_t k = rfc_k(n);
	ref_mth(d, k, l);
	ref_mth(d + k, n - k, r);
	merkle_node_hash(l, r, out);
}

/* PATH(m, D[n]); appends to proof at *len. */
static void ref_path(uint64_t m, const hash_t *d, uint64_t n, hash_t *proof, size_t *len)
{
	if (n == 1)
		return;
	uint64_t k = rfc_k(n);
	if (m < k) {
		ref_path(m, d, k, proof, len);
		ref_mth(d + k, n - k, proof[(*len)++]);
	} else {
		ref_path(m - k, d + k, n - k, proof, len);
		ref_mth(d, k, proof[(*len)++]);
	}
}

/* SUBPROOF(m, D[n], b). */
static void ref_subproof(uint64_t m, const hash_t *d, uint64_t n, bool b,
			 hash_t *proof, size_t *len)
{
	if (m == n) {
		if (!b)
			ref_mth(d, n, proof[(*len)++]);
		return;
	}
	uint64_t k = rfc_k(n);
	if (m <= k) {
		ref_subproof(m, d, k, b, proof, len);
		ref_mth(d + k, n - k, proof[(*len)++]);
	} else {
		ref_subproof(m - k, d + k, n - k, false, proof, len);
		ref_mth(d, k, proof[(*len)++]);
	}
}

/* PROOF(m, D[n]); the empty proof for m == 0 and m == n. */
static void ref_consistency_proof(uint64_t m, const hash_t *d, uint64_t n,
				  hash_t *proof, size_t *len)
{
	*len = 0;
	if (m > 0 && m < n)
		ref_subproof(m, d, n, true, proof, len);
}

/* ---------------------------------------------------------------------------
 * Recursive recomputation of the root a proof claims, along the RFC 6962
 * structure. Returns false when the proof has too few hashes; *pos says how
 * many were used. */

static bool rec_inclusion_root(uint64_t m, uint64_t n, const uint8_t leaf[HASH_LEN],
			       const hash_t *proof, size_t len, size_t *pos,
			       uint8_t out[HASH_LEN])
{
	uint8_t sub[HASH_LEN];

	if (n == 1) {
		memcpy(out, leaf, HASH_LEN);
		return true;
	}
	uint64_t k = rfc_k(n);
	bool left = m < k;
	if (!rec_inclusion_root(left ? m : m - k, left ? k : n - k, leaf, proof, len, pos, sub))
		return false;
	if (*pos >= len)
		return false;
	if (left)
		merkle_node_hash(sub, proof[*pos], out);
	else
		merkle_node_hash(proof[*pos], sub, out);
	(*pos)++;
	return true;
}

/* fr = MTH(D[0:m]) and sr = MTH(D[0:n]) as the proof claims them. */
static bool rec_consistency_roots(uint64_t m, uint64_t n, bool b,
				  const uint8_t old_root[HASH_LEN],
				  const hash_t *proof, size_t len, size_t *pos,
				  uint8_t fr[HASH_LEN], uint8_t sr[HASH_LEN])
{
	if (m == n) {
		if (b) {
			memcpy(fr, old_root, HASH_LEN);
		} else {
			if (*pos >= len)
				return false;
			memcpy(fr, proof[(*pos)++], HASH_LEN);
		}
		memcpy(sr, fr, HASH_LEN);
		return true;
	}
	uint64_t k = rfc_k(n);
	if (m <= k) {
		if (!rec_consistency_roots(m, k, b, old_root, proof, len, pos, fr, sr))
			return false;
		if (*pos >= len)
			return false;
		merkle_node_hash(sr, proof[(*pos)++], sr);
	} else {
		if (!rec_consistency_roots(m - k, n - k, false, old_root, proof, len, pos, fr, sr))
			return false;
		if (*pos >= len)
			return false;
		merkle_node_hash(proof[*pos], fr, fr);
		merkle_node_hash(proof[*pos], sr, sr);
		(*pos)++;
	}
	return true;
}

/* The error merkle_inclusion_verify must return, worked out independently. */
static int expect_inclusion(uint64_t m, uint64_t n, const uint8_t leaf[HASH_LEN],
			    const hash_t *proof, size_t len, const uint8_t root[HASH_LEN])
{
	uint8_t got[HASH_LEN];
	size_t pos = 0;

	if (m >= n)
		return TALLY_E_PROOF_INDEX;
	if (!rec_inclusion_root(m, n, leaf, proof, len, &pos, got) || pos != len)
		return TALLY_E_PROOF_SIZE;
	return memcmp(got, root, HASH_LEN) ? TALLY_E_PROOF_ROOT : 0;
}

static int expect_consistency(uint64_t m, uint64_t n, const uint8_t old_root[HASH_LEN],
			      const uint8_t new_root[HASH_LEN], const hash_t *proof, size_t len)
{
	uint8_t fr[HASH_LEN], sr[HASH_LEN];
	size_t pos = 0;

	if (m > n)
		return TALLY_E_PROOF_RANGE;
	if (m == 0) {
		sha256("", 0, fr);
		return len ? TALLY_E_PROOF_RANGE : memcmp(fr, old_root, HASH_LEN) ? TALLY_E_PROOF_ROOT : 0;
	}
	if (m == n)
		return len ? TALLY_E_PROOF_SIZE : memcmp(old_root, new_root, HASH_LEN) ? TALLY_E_PROOF_ROOT : 0;
	if (!rec_consistency_roots(m, n, true, old_root, proof, len, &pos, fr, sr) || pos != len)
		return TALLY_E_PROOF_SIZE;
	if (memcmp(fr, old_root, HASH_LEN) || memcmp(sr, new_root, HASH_LEN))
		return TALLY_E_PROOF_ROOT;
	return 0;
}

/* ---------------------------------------------------------------------------
 * A tree of MAX_N distinct leaves in a memory store, with the reference
 * roots of each prefix. */

struct fixture {
	struct merkle_store *s;
	hash_t leaf[MAX_N];
	hash_t root[MAX_N + 1];
};

static void fixture_build(struct fixture *fx, uint64_t n)
{
	fx->s = merkle_mem_store_new();
	ck_assert_ptr_nonnull(fx->s);
	for (uint64_t i = 0; i < n; i++) {
		uint8_t data[8];

		for (int b = 0; b < 8; b++)
			data[b] = (uint8_t)(i >> (8 * b));
		merkle_leaf_hash(data, sizeof(data), fx->leaf[i]);
		ck_assert_int_eq(merkle_append(fx->s, i, fx->leaf[i]), 0);
	}
	for (uint64_t i = 0; i <= n; i++)
		ref_mth(fx->leaf, i, fx->root[i]);
}

/* ---------------------------------------------------------------------------
 * Tests: hashing and the reference data. */

START_TEST(test_empty_tree)
{
	uint8_t want[HASH_LEN], got[HASH_LEN];
	struct merkle_frontier f;
	struct merkle_store *s = merkle_mem_store_new();

	unhex(ref_roots[0], want, HASH_LEN);
	merkle_empty_root(got);
	ck_assert_mem_eq(got, want, HASH_LEN);
	memset(got, 0, HASH_LEN);
	ck_assert_int_eq(merkle_root(s, 0, got), 0);
	ck_assert_mem_eq(got, want, HASH_LEN);
	memset(got, 0, HASH_LEN);
	merkle_root_of(NULL, 0, got);
	ck_assert_mem_eq(got, want, HASH_LEN);
	merkle_frontier_init(&f);
	memset(got, 0, HASH_LEN);
	merkle_frontier_root(&f, got);
	ck_assert_mem_eq(got, want, HASH_LEN);
	merkle_mem_store_free(s);
}
END_TEST

START_TEST(test_hash_prefixes)
{
	/* Leaf and node hashes are SHA-256 over the 0x00/0x01 prefixed input. */
	uint8_t buf[65], want[HASH_LEN], got[HASH_LEN], l[HASH_LEN], r[HASH_LEN];

	buf[0] = 0x00;
	memcpy(buf + 1, "tally", 5);
	sha256(buf, 6, want);
	merkle_leaf_hash("tally", 5, got);
	ck_assert_mem_eq(got, want, HASH_LEN);

	memset(l, 0xaa, HASH_LEN);
	memset(r, 0x55, HASH_LEN);
	buf[0] = 0x01;
	memcpy(buf + 1, l, HASH_LEN);
	memcpy(buf + 1 + HASH_LEN, r, HASH_LEN);
	sha256(buf, sizeof(buf), want);
	merkle_node_hash(l, r, got);
	ck_assert_mem_eq(got, want, HASH_LEN);
	/* Order matters. */
	merkle_node_hash(r, l, got);
	ck_assert_mem_ne(got, want, HASH_LEN);
	/* The output may alias an input (verifiers fold in place). */
	memcpy(got, r, HASH_LEN);
	merkle_node_hash(l, got, got);
	ck_assert_mem_eq(got, want, HASH_LEN);
}
END_TEST

START_TEST(test_reference_roots)
{
	hash_t leaf[8];
	uint8_t want[HASH_LEN], got[HASH_LEN];
	struct merkle_store *s = merkle_mem_store_new();
	struct merkle_frontier f;

	ref_leaf_hashes(leaf);
	merkle_frontier_init(&f);
	for (uint64_t n = 1; n <= 8; n++) {
		ck_assert_int_eq(merkle_append(s, n - 1, leaf[n - 1]), 0);
		merkle_frontier_append(&f, leaf[n - 1]);
		unhex(ref_roots[n], want, HASH_LEN);

		ck_assert_int_eq(merkle_root(s, n, got), 0);
		ck_assert_mem_eq(got, want, HASH_LEN);
		merkle_frontier_root(&f, got);
		ck_assert_mem_eq(got, want, HASH_LEN);
		merkle_root_of((const uint8_t (*)[HASH_LEN])leaf, n, got);
		ck_assert_mem_eq(got, want, HASH_LEN);
		ref_mth(leaf, n, got);
		ck_assert_mem_eq(got, want, HASH_LEN);
	}
	/* Roots of every smaller size from the full store. */
	for (uint64_t n = 0; n <= 8; n++) {
		unhex(ref_roots[n], want, HASH_LEN);
		ck_assert_int_eq(merkle_root(s, n, got), 0);
		ck_assert_mem_eq(got, want, HASH_LEN);
	}
	merkle_mem_store_free(s);
}
END_TEST

START_TEST(test_reference_nodes_stored)
{
	/* merkle_append stores exactly the perfect subtrees: every reference
	 * node hash is at its (level, index), and nothing beyond. */
	hash_t leaf[8];
	uint8_t want[HASH_LEN], got[HASH_LEN];
	struct merkle_store *s = merkle_mem_store_new();

	ref_leaf_hashes(leaf);
	for (uint64_t i = 0; i < 8; i++)
		ck_assert_int_eq(merkle_append(s, i, leaf[i]), 0);
	for (unsigned level = 0; level < 4; level++) {
		unsigned width = 8u >> level;
		for (unsigned i = 0; i < width; i++) {
			unhex(ref_nodes[level][i], want, HASH_LEN);
			ck_assert_int_eq(s->get(s->ctx, level, i, got), 0);
			ck_assert_mem_eq(got, want, HASH_LEN);
		}
		ck_assert_int_eq(s->get(s->ctx, level, width, got), TALLY_E_NOTFOUND);
	}
	ck_assert_int_eq(s->get(s->ctx, 4, 0, got), TALLY_E_NOTFOUND);
	merkle_mem_store_free(s);
}
END_TEST

static void decode_ref_proof(const struct ref_proof *p, hash_t *out)
{
	for (size_t i = 0; i < p->n; i++)
		unhex(p->hash[i], out[i], HASH_LEN);
}

START_TEST(test_reference_inclusion_proofs)
{
	hash_t leaf[8], want[3], proof[MERKLE_MAX_PROOF];
	uint8_t root[HASH_LEN];
	struct merkle_store *s = merkle_mem_store_new();
	size_t n;

	ref_leaf_hashes(leaf);
	for (uint64_t i = 0; i < 8; i++)
		ck_assert_int_eq(merkle_append(s, i, leaf[i]), 0);
	for (size_t t = 0; t < sizeof(ref_inclusion) / sizeof(ref_inclusion[0]); t++) {
		const struct ref_proof *p = &ref_inclusion[t];

		decode_ref_proof(p, want);
		ck_assert_int_eq(merkle_inclusion_proof(s, p->a, p->b, proof, &n), 0);
		ck_assert_uint_eq(n, p->n);
		if (n)
			ck_assert_mem_eq(proof, want, n * HASH_LEN);
		unhex(ref_roots[p->b], root, HASH_LEN);
		ck_assert_int_eq(merkle_inclusion_verify(p->a, p->b, leaf[p->a],
							 (const uint8_t (*)[HASH_LEN])want,
							 p->n, root), 0);
	}
	merkle_mem_store_free(s);
}
END_TEST

START_TEST(test_reference_consistency_proofs)
{
	hash_t leaf[8], want[3], proof[MERKLE_MAX_PROOF];
	uint8_t r1[HASH_LEN], r2[HASH_LEN];
	struct merkle_store *s = merkle_mem_store_new();
	size_t n;

	ref_leaf_hashes(leaf);
	for (uint64_t i = 0; i < 8; i++)
		ck_assert_int_eq(merkle_append(s, i, leaf[i]), 0);
	for (size_t t = 0; t < sizeof(ref_consistency) / sizeof(ref_consistency[0]); t++) {
		const struct ref_proof *p = &ref_consistency[t];

		decode_ref_proof(p, want);
		ck_assert_int_eq(merkle_consistency_proof(s, p->a, p->b, proof, &n), 0);
		ck_assert_uint_eq(n, p->n);
		if (n)
			ck_assert_mem_eq(proof, want, n * HASH_LEN);
		unhex(ref_roots[p->a], r1, HASH_LEN);
		unhex(ref_roots[p->b], r2, HASH_LEN);
		ck_assert_int_eq(merkle_consistency_verify(p->a, p->b, r1, r2,
							   (const uint8_t (*)[HASH_LEN])want,
							   p->n), 0);
	}
	merkle_mem_store_free(s);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Every (m, n) up to MAX_N against the naive reference, with tampering. */

static int verify_incl(uint64_t m, uint64_t n, const uint8_t *leaf, const hash_t *proof,
		       size_t len, const uint8_t *root)
{
	return merkle_inclusion_verify(m, n, leaf, (const uint8_t (*)[HASH_LEN])proof, len, root);
}

static int verify_cons(uint64_t m, uint64_t n, const uint8_t *r1, const uint8_t *r2,
		       const hash_t *proof, size_t len)
{
	return merkle_consistency_verify(m, n, r1, r2, (const uint8_t (*)[HASH_LEN])proof, len);
}

/* Checks a probe against both the independent prediction and, where the
 * outcome is certain from the kind of tampering alone, a fixed error (-1:
 * none). Check records every passing ck_assert, which is slow in a loop of
 * thousands, so these only call into Check on failure. */
#define PROBE_INCL(what, fixed, m, n, leaf, proof, len, root) do {                    \
	int want_ = expect_inclusion(m, n, leaf, proof, len, root);                    \
	int got_ = verify_incl(m, n, leaf, proof, len, root);                          \
	if (got_ != want_ || ((fixed) >= 0 && got_ != (fixed)))                        \
		ck_abort_msg("inclusion (%llu, %llu) %s: got %s, want %s",            \
			     (unsigned long long)(m), (unsigned long long)(n), what,   \
			     tally_strerror(got_),                                     \
			     tally_strerror(got_ != want_ ? want_ : (fixed)));         \
} while (0)

#define PROBE_CONS(what, fixed, m, n, r1, r2, proof, len) do {                         \
	int want_ = expect_consistency(m, n, r1, r2, proof, len);                      \
	int got_ = verify_cons(m, n, r1, r2, proof, len);                              \
	if (got_ != want_ || ((fixed) >= 0 && got_ != (fixed)))                        \
		ck_abort_msg("consistency (%llu, %llu) %s: got %s, want %s",          \
			     (unsigned long long)(m), (unsigned long long)(n), what,   \
			     tally_strerror(got_),                                     \
			     tally_strerror(got_ != want_ ? want_ : (fixed)));         \
} while (0)

static void tamper_inclusion(const struct fixture *fx, uint64_t m, uint64_t n,
			     const hash_t *proof, size_t len)
{
	hash_t bad[MERKLE_MAX_PROOF + 2];
	uint8_t leaf[HASH_LEN], root[HASH_LEN];
	const uint8_t *good_root = fx->root[n];

	/* A flipped bit, at either end, in each proof hash. */
	for (size_t i = 0; i < len; i++) {
		for (unsigned bit = 0; bit < 8 * HASH_LEN; bit += 8 * HASH_LEN - 1) {
			memcpy(bad, proof, len * HASH_LEN);
			bad[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			PROBE_INCL("flipped bit", TALLY_E_PROOF_ROOT, m, n, fx->leaf[m], bad, len, good_root);
		}
	}
	/* A dropped hash, first or last. */
	if (len > 0) {
		PROBE_INCL("dropped last", TALLY_E_PROOF_SIZE, m, n, fx->leaf[m], proof, len - 1, good_root);
		PROBE_INCL("dropped first", TALLY_E_PROOF_SIZE, m, n, fx->leaf[m], proof + 1, len - 1, good_root);
	}
	/* An added hash at the end or the front. */
	memcpy(bad, proof, len * HASH_LEN);
	memcpy(bad[len], good_root, HASH_LEN);
	PROBE_INCL("added root", TALLY_E_PROOF_SIZE, m, n, fx->leaf[m], bad, len + 1, good_root);
	memcpy(bad[0], fx->leaf[m], HASH_LEN);
	memcpy(bad + 1, proof, len * HASH_LEN);
	PROBE_INCL("prepended leaf", TALLY_E_PROOF_SIZE, m, n, fx->leaf[m], bad, len + 1, good_root);
	/* A wrong leaf or root. */
	memcpy(leaf, fx->leaf[m], HASH_LEN);
	leaf[HASH_LEN - 1] ^= 1;
	PROBE_INCL("wrong leaf", TALLY_E_PROOF_ROOT, m, n, leaf, proof, len, good_root);
	memcpy(root, good_root, HASH_LEN);
	root[0] ^= 0x80;
	PROBE_INCL("wrong root", TALLY_E_PROOF_ROOT, m, n, fx->leaf[m], proof, len, root);
	if (n > 1)
		PROBE_INCL("root of smaller tree", TALLY_E_PROOF_ROOT, m, n, fx->leaf[m], proof,
			   len, fx->root[n - 1]);
	/* A wrong index. */
	const uint64_t wrong_index[] = { m - 1, m + 1, m ^ 1, m ^ 2, n, n + 1, UINT64_MAX };
	for (size_t i = 0; i < sizeof(wrong_index) / sizeof(wrong_index[0]); i++) {
		uint64_t w = wrong_index[i];
		if (w == m)
			continue;
		PROBE_INCL("wrong index", w >= n ? TALLY_E_PROOF_INDEX : -1, w, n,
			   fx->leaf[m], proof, len, good_root);
		/* Within the tree, another index never verifies. */
		if (w < n && verify_incl(w, n, fx->leaf[m], proof, len, good_root) == 0)
			ck_abort_msg("leaf %llu of %llu verified as leaf %llu",
				     (unsigned long long)m, (unsigned long long)n,
				     (unsigned long long)w);
	}
	/* A wrong size. Sizes with the same path shape to leaf m verify: the
	 * root, not the size, is what binds the tree. expect_inclusion()
	 * predicts which. */
	const uint64_t wrong_size[] = { n - 1, n + 1, 2 * n, n / 2, m, 0, UINT64_MAX };
	for (size_t i = 0; i < sizeof(wrong_size) / sizeof(wrong_size[0]); i++) {
		uint64_t w = wrong_size[i];
		if (w == n)
			continue;
		PROBE_INCL("wrong size", w <= m ? TALLY_E_PROOF_INDEX : -1, m, w,
			   fx->leaf[m], proof, len, good_root);
	}
}

static void tamper_consistency(const struct fixture *fx, uint64_t m, uint64_t n,
			       const hash_t *proof, size_t len)
{
	hash_t bad[MERKLE_MAX_PROOF + 2];
	uint8_t r[HASH_LEN];
	const uint8_t *r1 = fx->root[m], *r2 = fx->root[n];

	/* A flipped bit, at either end, in each proof hash. */
	for (size_t i = 0; i < len; i++) {
		for (unsigned bit = 0; bit < 8 * HASH_LEN; bit += 8 * HASH_LEN - 1) {
			memcpy(bad, proof, len * HASH_LEN);
			bad[i][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			PROBE_CONS("flipped bit", TALLY_E_PROOF_ROOT, m, n, r1, r2, bad, len);
		}
	}
	/* A dropped hash (only 0 < m < n have any). */
	if (len > 0) {
		PROBE_CONS("dropped last", TALLY_E_PROOF_SIZE, m, n, r1, r2, proof, len - 1);
		PROBE_CONS("dropped first", TALLY_E_PROOF_SIZE, m, n, r1, r2, proof + 1, len - 1);
	}
	/* An added hash: at the end, at the front, or any proof at all where
	 * the proof must be empty (m == 0 and m == n). */
	memcpy(bad, proof, len * HASH_LEN);
	memcpy(bad[len], r2, HASH_LEN);
	PROBE_CONS("added new root", m == 0 ? TALLY_E_PROOF_RANGE : TALLY_E_PROOF_SIZE,
		   m, n, r1, r2, bad, len + 1);
	memcpy(bad[0], r1, HASH_LEN);
	memcpy(bad + 1, proof, len * HASH_LEN);
	PROBE_CONS("prepended old root", m == 0 ? TALLY_E_PROOF_RANGE : TALLY_E_PROOF_SIZE,
		   m, n, r1, r2, bad, len + 1);
	/* Wrong roots. */
	memcpy(r, r1, HASH_LEN);
	r[7] ^= 4;
	PROBE_CONS("wrong old root", TALLY_E_PROOF_ROOT, m, n, r, r2, proof, len);
	memcpy(r, r2, HASH_LEN);
	r[9] ^= 2;
	PROBE_CONS("wrong new root", m == 0 ? 0 : TALLY_E_PROOF_ROOT, m, n, r1, r, proof, len);
	if (m != n)
		PROBE_CONS("swapped roots", TALLY_E_PROOF_ROOT, m, n, r2, r1, proof, len);
	/* An empty proof where one is needed. */
	if (len > 0)
		PROBE_CONS("empty proof", TALLY_E_PROOF_SIZE, m, n, r1, r2, proof, 0);
	/* Wrong sizes; as with inclusion, a size with the same proof shape
	 * verifies, and expect_consistency() says which. */
	const uint64_t wrong_old[] = { m - 1, m + 1, m ^ 2, 2 * m, n + 1, 0, UINT64_MAX };
	for (size_t i = 0; i < sizeof(wrong_old) / sizeof(wrong_old[0]); i++) {
		uint64_t w = wrong_old[i];
		if (w == m)
			continue;
		PROBE_CONS("wrong old size", w > n ? TALLY_E_PROOF_RANGE : -1, w, n, r1, r2, proof, len);
	}
	const uint64_t wrong_new[] = { n - 1, n + 1, 2 * n, n / 2, m, 0, UINT64_MAX };
	for (size_t i = 0; i < sizeof(wrong_new) / sizeof(wrong_new[0]); i++) {
		uint64_t w = wrong_new[i];
		if (w == n)
			continue;
		PROBE_CONS("wrong new size", m > w ? TALLY_E_PROOF_RANGE : -1, m, w, r1, r2, proof, len);
	}
}

START_TEST(test_inclusion_all_sizes)
{
	struct fixture fx;
	hash_t got[MERKLE_MAX_PROOF], want[MERKLE_MAX_PROOF];
	size_t n_got, n_want;
	int rc;

	fixture_build(&fx, MAX_N);
	for (uint64_t n = 1; n <= MAX_N; n++) {
		for (uint64_t m = 0; m < n; m++) {
			n_want = 0;
			ref_path(m, fx.leaf, n, want, &n_want);
			rc = merkle_inclusion_proof(fx.s, m, n, got, &n_got);
			if (rc || n_got != n_want || memcmp(got, want, n_got * HASH_LEN))
				ck_abort_msg("PATH(%llu, %llu): rc %d, %zu hashes, want %zu",
					     (unsigned long long)m, (unsigned long long)n,
					     rc, n_got, n_want);
			rc = verify_incl(m, n, fx.leaf[m], got, n_got, fx.root[n]);
			if (rc)
				ck_abort_msg("PATH(%llu, %llu) does not verify: %d",
					     (unsigned long long)m, (unsigned long long)n, rc);
			tamper_inclusion(&fx, m, n, got, n_got);
		}
	}
	merkle_mem_store_free(fx.s);
}
END_TEST

START_TEST(test_consistency_all_sizes)
{
	struct fixture fx;
	hash_t got[MERKLE_MAX_PROOF], want[MERKLE_MAX_PROOF];
	size_t n_got, n_want;
	int rc;

	fixture_build(&fx, MAX_N);
	for (uint64_t n = 1; n <= MAX_N; n++) {
		for (uint64_t m = 0; m <= n; m++) {
			ref_consistency_proof(m, fx.leaf, n, want, &n_want);
			rc = merkle_consistency_proof(fx.s, m, n, got, &n_got);
			if (rc || n_got != n_want || memcmp(got, want, n_got * HASH_LEN))
				ck_abort_msg("PROOF(%llu, %llu): rc %d, %zu hashes, want %zu",
					     (unsigned long long)m, (unsigned long long)n,
					     rc, n_got, n_want);
			rc = verify_cons(m, n, fx.root[m], fx.root[n], got, n_got);
			if (rc)
				ck_abort_msg("PROOF(%llu, %llu) does not verify: %d",
					     (unsigned long long)m, (unsigned long long)n, rc);
			tamper_consistency(&fx, m, n, got, n_got);
		}
	}
	merkle_mem_store_free(fx.s);
}
END_TEST

START_TEST(test_verify_edge_cases)
{
	uint8_t empty[HASH_LEN], some[HASH_LEN], other[HASH_LEN];
	hash_t one[1];

	merkle_empty_root(empty);
	memset(some, 0x5a, HASH_LEN);
	memset(other, 0xa5, HASH_LEN);
	memcpy(one[0], some, HASH_LEN);

	/* The empty tree includes nothing. */
	ck_assert_int_eq(verify_incl(0, 0, some, NULL, 0, empty), TALLY_E_PROOF_INDEX);
	/* A one-leaf tree: its root is the leaf hash, the proof is empty. */
	ck_assert_int_eq(verify_incl(0, 1, some, NULL, 0, some), 0);
	ck_assert_int_eq(verify_incl(0, 1, some, NULL, 0, other), TALLY_E_PROOF_ROOT);
	ck_assert_int_eq(verify_incl(0, 1, some, one, 1, some), TALLY_E_PROOF_SIZE);
	ck_assert_int_eq(verify_incl(1, 1, some, NULL, 0, some), TALLY_E_PROOF_INDEX);

	/* Sizes going backwards. */
	ck_assert_int_eq(verify_cons(2, 1, some, other, NULL, 0), TALLY_E_PROOF_RANGE);
	ck_assert_int_eq(verify_cons(1, 0, some, empty, NULL, 0), TALLY_E_PROOF_RANGE);
	/* Size 0 is consistent with anything, with the empty proof only, and
	 * its root is the empty root. */
	ck_assert_int_eq(verify_cons(0, 0, empty, empty, NULL, 0), 0);
	ck_assert_int_eq(verify_cons(0, 5, empty, other, NULL, 0), 0);
	ck_assert_int_eq(verify_cons(0, 5, empty, other, one, 1), TALLY_E_PROOF_RANGE);
	ck_assert_int_eq(verify_cons(0, 0, empty, empty, one, 1), TALLY_E_PROOF_RANGE);
	ck_assert_int_eq(verify_cons(0, 5, some, other, NULL, 0), TALLY_E_PROOF_ROOT);
	/* Equal sizes: equal roots, empty proof. */
	ck_assert_int_eq(verify_cons(3, 3, some, some, NULL, 0), 0);
	ck_assert_int_eq(verify_cons(3, 3, some, other, NULL, 0), TALLY_E_PROOF_ROOT);
	ck_assert_int_eq(verify_cons(3, 3, some, some, one, 1), TALLY_E_PROOF_SIZE);
	/* A real step needs a proof. */
	ck_assert_int_eq(verify_cons(1, 2, some, other, NULL, 0), TALLY_E_PROOF_SIZE);
}
END_TEST

START_TEST(test_generation_errors)
{
	struct fixture fx;
	hash_t proof[MERKLE_MAX_PROOF];
	uint8_t root[HASH_LEN];
	size_t n = 99;

	fixture_build(&fx, 10);
	ck_assert_int_eq(merkle_inclusion_proof(fx.s, 10, 10, proof, &n), TALLY_E_PROOF_INDEX);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(merkle_inclusion_proof(fx.s, 0, 0, proof, &n), TALLY_E_PROOF_INDEX);
	ck_assert_int_eq(merkle_consistency_proof(fx.s, 5, 4, proof, &n), TALLY_E_PROOF_RANGE);
	/* Beyond what was appended: the store has no such nodes. */
	ck_assert_int_eq(merkle_root(fx.s, 11, root), TALLY_E_NOTFOUND);
	ck_assert_int_eq(merkle_root(fx.s, 16, root), TALLY_E_NOTFOUND);
	ck_assert_int_eq(merkle_inclusion_proof(fx.s, 3, 12, proof, &n), TALLY_E_NOTFOUND);
	ck_assert_int_eq(merkle_consistency_proof(fx.s, 3, 12, proof, &n), TALLY_E_NOTFOUND);
	/* Trivial consistency proofs need no nodes. */
	ck_assert_int_eq(merkle_consistency_proof(fx.s, 0, 12, proof, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(merkle_consistency_proof(fx.s, 7, 7, proof, &n), 0);
	ck_assert_uint_eq(n, 0);
	merkle_mem_store_free(fx.s);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Frontier against the store, and what append writes. */

#define FRONTIER_N 300

START_TEST(test_frontier_matches_store)
{
	struct merkle_store *s = merkle_mem_store_new();
	struct merkle_frontier f;
	static hash_t leaf[FRONTIER_N], root[FRONTIER_N + 1];
	uint8_t got[HASH_LEN];

	merkle_frontier_init(&f);
	merkle_frontier_root(&f, root[0]);
	for (uint64_t i = 0; i < FRONTIER_N; i++) {
		char data[32];
		int len = snprintf(data, sizeof(data), "usage record %llu", (unsigned long long)i);

		merkle_leaf_hash(data, (size_t)len, leaf[i]);
		if (merkle_append(s, i, leaf[i]))
			ck_abort_msg("append %llu", (unsigned long long)i);
		merkle_frontier_append(&f, leaf[i]);
		merkle_frontier_root(&f, root[i + 1]);
		if (f.size != i + 1 || merkle_root(s, i + 1, got) ||
		    memcmp(got, root[i + 1], HASH_LEN))
			ck_abort_msg("size %llu: store and frontier differ", (unsigned long long)i + 1);
		/* The documented edge layout: edge[k] set iff bit k of size is. */
		for (unsigned k = 0; k < 64; k++) {
			static const uint8_t zero[HASH_LEN];
			bool set = (f.size >> k) & 1;
			if (set != (memcmp(f.edge[k], zero, HASH_LEN) != 0))
				ck_abort_msg("size %llu edge %u", (unsigned long long)f.size, k);
		}
	}
	/* Every earlier size from the full store, and from merkle_root_of. */
	for (uint64_t n = 0; n <= FRONTIER_N; n++) {
		uint8_t of[HASH_LEN];

		merkle_root_of((const uint8_t (*)[HASH_LEN])leaf, n, of);
		if (merkle_root(s, n, got) || memcmp(got, root[n], HASH_LEN) ||
		    memcmp(of, root[n], HASH_LEN))
			ck_abort_msg("root at size %llu", (unsigned long long)n);
	}
	/* And the naive MTH for a few sizes. */
	const uint64_t sizes[] = { 1, 2, 3, 127, 128, 129, 255, 256, 257, 300 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ref_mth(leaf, sizes[i], got);
		ck_assert_mem_eq(got, root[sizes[i]], HASH_LEN);
	}
	merkle_mem_store_free(s);
}
END_TEST

/* A store that counts and checks the writes merkle_append makes. */
struct counting_store {
	struct merkle_store ops;
	struct merkle_store *inner;
	unsigned puts;
	bool rewrite;               /* a (level, index) written twice */
};

static int counting_get(void *ctx, unsigned level, uint64_t index, uint8_t out[HASH_LEN])
{
	struct counting_store *c = ctx;

	return c->inner->get(c->inner->ctx, level, index, out);
}

static int counting_put(void *ctx, unsigned level, uint64_t index, const uint8_t hash[HASH_LEN])
{
	struct counting_store *c = ctx;
	uint8_t old[HASH_LEN];

	if (c->inner->get(c->inner->ctx, level, index, old) == 0)
		c->rewrite = true;
	c->puts++;
	return c->inner->put(c->inner->ctx, level, index, hash);
}

START_TEST(test_append_stores_perfect_subtrees)
{
	struct counting_store c = { .inner = merkle_mem_store_new() };
	uint8_t leaf[HASH_LEN], got[HASH_LEN];

	c.ops.ctx = &c;
	c.ops.get = counting_get;
	c.ops.put = counting_put;
	for (uint64_t n = 1; n <= 100; n++) {
		unsigned before = c.puts, want = 1;

		merkle_leaf_hash(&n, sizeof(n), leaf);
		ck_assert_int_eq(merkle_append(&c.ops, n - 1, leaf), 0);
		/* Appending leaf n - 1 completes one subtree per trailing one
		 * bit of n - 1, plus the leaf itself. */
		for (uint64_t i = n - 1; i & 1; i >>= 1)
			want++;
		ck_assert_uint_eq(c.puts - before, want);
		/* All perfect subtrees within the first n leaves are there. */
		for (unsigned level = 0; ((uint64_t)1 << level) <= n; level++) {
			uint64_t count = n >> level;
			ck_assert_int_eq(c.ops.get(c.ops.ctx, level, count - 1, got), 0);
			ck_assert_int_eq(c.ops.get(c.ops.ctx, level, count, got), TALLY_E_NOTFOUND);
		}
	}
	ck_assert(!c.rewrite);
	merkle_mem_store_free(c.inner);
}
END_TEST

/* A store whose writes fail: the error reaches the caller. */
static int failing_put(void *ctx, unsigned level, uint64_t index, const uint8_t hash[HASH_LEN])
{
	(void)ctx; (void)level; (void)index; (void)hash;
	return TALLY_E_STORE;
}

START_TEST(test_append_store_errors)
{
	struct counting_store c = { .inner = merkle_mem_store_new() };
	struct merkle_store failing;
	uint8_t leaf[HASH_LEN] = { 1 };

	failing.ctx = &c;
	failing.get = counting_get;
	failing.put = failing_put;
	ck_assert_int_eq(merkle_append(&failing, 0, leaf), TALLY_E_STORE);
	/* Appending at odd size 1 to a store without leaf 0. */
	ck_assert_int_eq(merkle_append(c.inner, 1, leaf), TALLY_E_NOTFOUND);
	ck_assert_int_eq(merkle_append(c.inner, UINT64_MAX, leaf), TALLY_E_OVERFLOW);
	merkle_mem_store_free(c.inner);
	merkle_mem_store_free(NULL);
}
END_TEST

START_TEST(test_large_tree_proofs)
{
	/* Far from the exhaustive range: a tree of 5000 leaves, proofs for
	 * scattered sizes and indices against the frontier's roots. */
	enum { N = 5000 };
	struct merkle_store *s = merkle_mem_store_new();
	struct merkle_frontier f;
	static hash_t leaf[N], root[N + 1];
	hash_t proof[MERKLE_MAX_PROOF];
	size_t n;

	merkle_frontier_init(&f);
	merkle_frontier_root(&f, root[0]);
	for (uint64_t i = 0; i < N; i++) {
		merkle_leaf_hash(&i, sizeof(i), leaf[i]);
		ck_assert_int_eq(merkle_append(s, i, leaf[i]), 0);
		merkle_frontier_append(&f, leaf[i]);
		merkle_frontier_root(&f, root[i + 1]);
	}
	for (uint64_t size = 1; size <= N; size += 97) {
		for (uint64_t m = 0; m < size; m += 1 + size / 7) {
			int rc[6];

			rc[0] = merkle_inclusion_proof(s, m, size, proof, &n);
			rc[1] = verify_incl(m, size, leaf[m], proof, n, root[size]);
			rc[2] = expect_inclusion(m, size, leaf[m], proof, n, root[size]);
			rc[3] = merkle_consistency_proof(s, m, size, proof, &n);
			rc[4] = verify_cons(m, size, root[m], root[size], proof, n);
			rc[5] = expect_consistency(m, size, root[m], root[size], proof, n);
			for (int i = 0; i < 6; i++)
				if (rc[i])
					ck_abort_msg("(%llu, %llu) step %d: %d", (unsigned long long)m,
						     (unsigned long long)size, i, rc[i]);
		}
	}
	merkle_mem_store_free(s);
}
END_TEST

Suite *merkle_suite(void)
{
	Suite *s = suite_create("merkle");
	TCase *tc = tcase_create("reference");

	tcase_add_test(tc, test_empty_tree);
	tcase_add_test(tc, test_hash_prefixes);
	tcase_add_test(tc, test_reference_roots);
	tcase_add_test(tc, test_reference_nodes_stored);
	tcase_add_test(tc, test_reference_inclusion_proofs);
	tcase_add_test(tc, test_reference_consistency_proofs);
	suite_add_tcase(s, tc);

	tc = tcase_create("proofs");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_inclusion_all_sizes);
	tcase_add_test(tc, test_consistency_all_sizes);
	tcase_add_test(tc, test_verify_edge_cases);
	tcase_add_test(tc, test_generation_errors);
	tcase_add_test(tc, test_large_tree_proofs);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_add_test(tc, test_frontier_matches_store);
	tcase_add_test(tc, test_append_stores_perfect_subtrees);
	tcase_add_test(tc, test_append_store_errors);
	suite_add_tcase(s, tc);
	return s;
}
