/* Merkle log benchmark: append, proof generation and proof verification on a
 * tree of 10^6 leaves in the in-memory store, each rate printed as a ratio
 * against the rate of raw OpenSSL SHA-256 over 65-byte inputs (the size of
 * one node hash) measured in the same run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bench/bench_util.h"
#include "lib/crypto.h"
#include "lib/errors.h"
#include "lib/merkle.h"

#define LEAVES 1000000ull
#define SAMPLES 200000

static uint8_t sink;   /* keeps results observable */

static void fold(const uint8_t h[HASH_LEN])
{
	sink ^= h[0];
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "merkle_bench: %s: %s\n", what, tally_strerror(rc));
	exit(1);
}

/* Raw SHA-256 of 65-byte inputs straight through OpenSSL. */
static double baseline_rate(void)
{
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
	uint8_t in[65] = { 0x01 }, out[HASH_LEN];
	unsigned int len;
	const unsigned n = 2000000;
	double t;

	if (!md)
		die("EVP_MD_fetch", TALLY_E_CRYPTO);
	t = bench_now_s();
	for (unsigned i = 0; i < n; i++) {
		if (!EVP_Digest(in, sizeof(in), out, &len, md, NULL))
			die("EVP_Digest", TALLY_E_CRYPTO);
		memcpy(in + 1, out, HASH_LEN);   /* chained, like a tree */
	}
	t = bench_now_s() - t;
	fold(out);
	EVP_MD_free(md);
	return n / t;
}

/* Rates are printed once the closing baseline is known. */
static struct result {
	const char *what;
	double rate;
} results[8];
static int n_results;

static void record(const char *what, double rate)
{
	results[n_results].what = what;
	results[n_results].rate = rate;
	n_results++;
}

int main(void)
{
	static uint8_t leaf[LEAVES][HASH_LEN];
	static uint8_t root[HASH_LEN];
	uint8_t proof[MERKLE_MAX_PROOF][HASH_LEN];
	static uint64_t sample_a[SAMPLES], sample_b[SAMPLES];
	struct merkle_store *s = merkle_mem_store_new();
	size_t n, min_len = SIZE_MAX, max_len = 0, len0 = 0;
	double base_before, base_after, base, t;
	int rc;

	if (!s)
		die("merkle_mem_store_new", TALLY_E_NOMEM);
	for (uint64_t i = 0; i < LEAVES; i++)
		merkle_leaf_hash(&i, sizeof(i), leaf[i]);

	printf("merkle log, %llu leaves, in-memory store\n", (unsigned long long)LEAVES);
	/* The baseline is measured before and after the Merkle runs and
	 * averaged, so load from other work skews both sides of a ratio alike. */
	base_before = baseline_rate();

	/* Append. */
	t = bench_now_s();
	for (uint64_t i = 0; i < LEAVES; i++) {
		rc = merkle_append(s, i, leaf[i]);
		if (rc)
			die("merkle_append", rc);
	}
	record("append", LEAVES / (bench_now_s() - t));

	struct merkle_frontier f;
	merkle_frontier_init(&f);
	t = bench_now_s();
	for (uint64_t i = 0; i < LEAVES; i++)
		merkle_frontier_append(&f, leaf[i]);
	record("frontier append", LEAVES / (bench_now_s() - t));
	merkle_frontier_root(&f, root);

	uint8_t check[HASH_LEN];
	rc = merkle_root(s, LEAVES, check);
	if (rc || memcmp(check, root, HASH_LEN))
		die("store and frontier roots differ", rc ? rc : TALLY_E_INTERNAL);

	/* Inclusion proofs for random leaves at the full size. */
	for (int i = 0; i < SAMPLES; i++)
		sample_a[i] = bench_rng_below(LEAVES);
	t = bench_now_s();
	for (int i = 0; i < SAMPLES; i++) {
		rc = merkle_inclusion_proof(s, sample_a[i], LEAVES, proof, &n);
		if (rc)
			die("merkle_inclusion_proof", rc);
		fold(proof[0]);
		if (n < min_len)
			min_len = n;
		if (n > max_len)
			max_len = n;
	}
	record("inclusion proof generation", SAMPLES / (bench_now_s() - t));

	rc = merkle_inclusion_proof(s, sample_a[0], LEAVES, proof, &n);
	if (rc)
		die("merkle_inclusion_proof", rc);
	t = bench_now_s();
	for (int i = 0; i < SAMPLES; i++) {
		rc = merkle_inclusion_verify(sample_a[0], LEAVES, leaf[sample_a[0]],
					     (const uint8_t (*)[HASH_LEN])proof, n, root);
		if (rc)
			die("merkle_inclusion_verify", rc);
	}
	record("inclusion proof verification", SAMPLES / (bench_now_s() - t));

	/* Consistency proofs from random earlier sizes to the full size. */
	for (int i = 0; i < SAMPLES; i++)
		sample_b[i] = 1 + bench_rng_below(LEAVES - 1);
	t = bench_now_s();
	for (int i = 0; i < SAMPLES; i++) {
		rc = merkle_consistency_proof(s, sample_b[i], LEAVES, proof, &n);
		if (rc)
			die("merkle_consistency_proof", rc);
		fold(proof[0]);
	}
	record("consistency proof generation", SAMPLES / (bench_now_s() - t));

	uint8_t old_root[HASH_LEN];
	rc = merkle_root(s, sample_b[0], old_root);
	if (!rc)
		rc = merkle_consistency_proof(s, sample_b[0], LEAVES, proof, &n);
	if (rc)
		die("merkle_consistency_proof", rc);
	t = bench_now_s();
	for (int i = 0; i < SAMPLES; i++) {
		rc = merkle_consistency_verify(sample_b[0], LEAVES, old_root, root,
					       (const uint8_t (*)[HASH_LEN])proof, n);
		if (rc)
			die("merkle_consistency_verify", rc);
	}
	record("consistency proof verification", SAMPLES / (bench_now_s() - t));

	base_after = baseline_rate();
	base = (base_before + base_after) / 2;
	printf("  %-34s %10.0f /s   baseline (%.0f before, %.0f after)\n",
	       "raw SHA-256, 65-byte inputs", base, base_before, base_after);
	for (int i = 0; i < n_results; i++)
		printf("  %-34s %10.0f /s   %.4f x baseline (%.1f hashes' time each)\n",
		       results[i].what, results[i].rate, results[i].rate / base,
		       base / results[i].rate);

	rc = merkle_inclusion_proof(s, 0, LEAVES, proof, &len0);
	if (rc)
		die("merkle_inclusion_proof", rc);
	printf("  inclusion proof size at %llu leaves: %zu hashes (%zu bytes) for leaf 0; "
	       "%zu..%zu hashes over %d random leaves\n",
	       (unsigned long long)LEAVES, len0, len0 * HASH_LEN, min_len, max_len, SAMPLES);
	printf("  (checksum %02x)\n", sink);
	merkle_mem_store_free(s);
	return 0;
}
