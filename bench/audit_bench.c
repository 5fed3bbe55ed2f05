/* Audit speed in usage records per second, against raw Ed25519 verification
 * measured in the same run, and the size of a usage-log inclusion proof at
 * 10^6 records.
 *
 * The chain is real: the ledger engine (daemon/ledger) in a temp dir, one
 * validator that is also the provider, one tenant, one lease of RECORDS
 * one-minute usage records (a week of metering), every transaction signed,
 * committed BLOCK_RECORDS to a block with commit certificates, then closed
 * by the tenant. The bench reads the blocks and certificates back and times
 * lib/chain/audit.h's audit_run over them from genesis, with the inclusion proofs
 * computed from the blocks (as `tally audit --chain FILE` does), comparing
 * with the settlement the ledger reports. It also times chain verification
 * alone (lib/chain/verify.h over the same blocks), which is part of the audit.
 *
 * The baseline is OpenSSL Ed25519 verification of RECORDS messages as long
 * as a signed USAGE payload. An audit verifies at least one signature per
 * record, so the ratio audit / raw verify is at most about 1.
 *
 * The proof size is PATH(m, D[n]) of RFC 9162 for n = 10^6, computed with
 * lib/merkle.h on an in-memory store of 10^6 leaf hashes for a sample of
 * indices (each proof verified against the root), next to the bound
 * ceil(log2 n). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"
#include "daemon/ledger/ledger.h"
#include "lib/chain/audit.h"
#include "lib/chain/verify.h"
#include "lib/errors.h"
#include "lib/merkle.h"

#define CHAIN "tally-audit-bench"
#define T0 1700000000000000000ull
#define SEC 1000000000ull
#define RECORDS 10080              /* a week of one-minute records */
#define BLOCK_RECORDS 1000
#define INTERVAL_S 60
#define VCPUS 2
#define MEMORY_MIB 2048
#define PROOF_LEAVES 1000000ull
#define PROOF_SAMPLES 1000
#define ROUNDS 3                   /* timed rounds, interleaved */

static char g_dir[] = "/tmp/tally-audit-bench-XXXXXX";
static int g_have_dir;

/* atexit: the temp dir goes, pass or fail. */
static void cleanup(void)
{
	if (g_have_dir)
		bench_rm_tree(g_dir);
	g_have_dir = 0;
}

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "audit_bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void log_line(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "audit_bench: ledger: %s\n", line);
}

/* --- baseline --------------------------------------------------------------- */

static double raw_verify_rate(size_t n, size_t msg_len)
{
	enum raw_verify_step failed;
	double rate;
	int rc = bench_raw_verify_rate(n, msg_len, 0, &rate, &failed);

	if (rc)
		die("%s", bench_raw_verify_failure(failed, rc));
	return rate;
}

/* --- the chain -------------------------------------------------------------- */

struct bench_chain {
	struct genesis g;
	struct genesis_account acc;
	struct tally_key val, tenant;
	struct ledger *l;
	uint64_t time_ns;              /* of the last block */
	uint8_t lease_id[LEASE_ID_LEN];
	size_t usage_len;              /* bytes of one signed USAGE transaction */
};

/* Signs t, submits it to the ledger and returns its hash and length. */
static size_t submit(struct bench_chain *c, struct tx *t, const struct tally_key *k,
		     uint8_t hash[HASH_LEN])
{
	char why[WHY_MAX];
	struct enc e;
	size_t len;
	uint8_t gh[HASH_LEN];
	int rc;

	genesis_hash(&c->g, gh);
	rc = tx_sign(t, k, gh);
	if (rc)
		die("tx_sign: %s", tally_strerror(rc));
	enc_init(&e);
	tx_encode(&e, t);
	if (enc_error(&e))
		die("tx_encode: %s", tally_strerror(enc_error(&e)));
	if ((rc = ledger_submit(c->l, e.buf, e.len, hash, why)))
		die("submit %s: %s", tx_kind_name(t->kind), why);
	len = e.len;
	enc_free(&e);
	return len;
}

static void produce(struct bench_chain *c, size_t want)
{
	struct ledger_block_result r;
	char why[WHY_MAX];
	int rc;

	c->time_ns += SEC;
	if ((rc = ledger_produce_block(c->l, c->time_ns, &r, why)))
		die("block: %s", why);
	if (r.ntx != want)
		die("block %" PRIu64 ": %zu of %zu transactions committed", r.height, r.ntx, want);
}

static void open_lease(struct bench_chain *c)
{
	struct lease_contract *k;
	struct tx t;
	uint8_t hash[HASH_LEN];

	bench_tx_base(&t, CHAIN, TX_LEASE_OPEN, &c->tenant, 0);
	k = &t.u.open;
	k->version = CONTRACT_VERSION;
	strcpy(k->chain_id, CHAIN);
	memcpy(k->tenant, c->tenant.pub, PUBKEY_LEN);
	memcpy(k->provider, c->val.pub, PUBKEY_LEN);
	k->nonce = 0;
	k->expiry = (uint64_t)time(NULL) + 3600;
	k->vm.vcpus = VCPUS;
	k->vm.memory_mib = MEMORY_MIB;
	k->vm.disk_gib = 20;
	strcpy(k->vm.image, "debian-12");
	k->duration_s = (uint64_t)RECORDS * INTERVAL_S;
	k->interval_s = INTERVAL_S;
	k->prices.vcpu_second = 20;
	k->prices.mem_gib_second = 5;
	k->sla.max_delay_ppm = 50000;
	k->sla.credit_ppm = 100000;
	if (settle_max_charge(k, k->duration_s, &k->deposit))
		die("the contract's maximum charge overflows");
	struct tx ann;
	bench_tx_base(&ann, CHAIN, TX_PROVIDER, &c->val, 0);
	bench_offer_for(k, &ann.u.provider);
	submit(c, &ann, &c->val, hash);
	submit(c, &t, &c->tenant, c->lease_id);
	produce(c, 2);

	bench_tx_base(&t, CHAIN, TX_LEASE_START, &c->val, 1);
	memcpy(t.u.start.lease_id, c->lease_id, LEASE_ID_LEN);
	submit(c, &t, &c->val, hash);
	produce(c, 1);
}

/* Synthetic meter input, as node_bench's: CPU 5%..100% of the vCPUs, run
 * delay now and then above the SLA's threshold. */
static void add_usage(struct bench_chain *c)
{
	uint64_t span = (uint64_t)INTERVAL_S * SEC, cap = (uint64_t)VCPUS * span;
	uint8_t prev[HASH_LEN] = { 0 };
	struct lease l;
	uint64_t start;
	struct tx t;
	int rc;

	if ((rc = ledger_lease(c->l, c->lease_id, &l)))
		die("lease: %s", tally_strerror(rc));
	start = l.started_ns;
	for (size_t seq = 0; seq < RECORDS; seq++) {
		struct usage_record *u = &t.u.usage;

		bench_tx_base(&t, CHAIN, TX_USAGE, &c->val, 2 + seq);
		memcpy(u->lease_id, c->lease_id, LEASE_ID_LEN);
		u->seq = seq;
		memcpy(u->prev_hash, prev, HASH_LEN);
		u->start_ns = start;
		u->end_ns = start + span;
		u->cpu_ns = cap / 20 * (1 + seq * 7 % 20);
		u->run_delay_ns = seq % 5 * 2 * SEC;
		u->mem_mib = MEMORY_MIB;
		u->mem_peak_bytes = ((uint64_t)MEMORY_MIB / 2 + seq % 256) << 20;
		u->gpu_source = GPU_SOURCE_NONE;
		c->usage_len = submit(c, &t, &c->val, prev);
		start = u->end_ns;
		/* The block that commits a record is not dated before its end. */
		if (c->time_ns + SEC < start)
			c->time_ns = start - SEC;
		if ((seq + 1) % BLOCK_RECORDS == 0 || seq + 1 == RECORDS)
			produce(c, seq % BLOCK_RECORDS + 1);
	}
}

static void close_lease(struct bench_chain *c)
{
	uint8_t hash[HASH_LEN];
	struct tx t;

	bench_tx_base(&t, CHAIN, TX_LEASE_CLOSE, &c->tenant, 1);
	memcpy(t.u.close.lease_id, c->lease_id, LEASE_ID_LEN);
	t.u.close.reason = CLOSE_TENANT;
	submit(c, &t, &c->tenant, hash);
	produce(c, 1);
}

static void build_chain(struct bench_chain *c)
{
	struct ledger_config cfg = { .genesis = &c->g, .log = log_line };
	char why[WHY_MAX];
	int rc;

	memset(c, 0, sizeof(*c));
	if ((rc = key_generate(&c->val)) || (rc = key_generate(&c->tenant)))
		die("key: %s", tally_strerror(rc));
	strcpy(c->g.chain_id, CHAIN);
	c->g.genesis_time_ns = c->time_ns = T0;
	c->g.validators.n = 1;
	memcpy(c->g.validators.v[0].pubkey, c->val.pub, PUBKEY_LEN);
	c->g.validators.v[0].stake = 1000000;
	memcpy(c->acc.pubkey, c->tenant.pub, PUBKEY_LEN);
	c->acc.balance = 1000000000000ull;
	c->g.naccounts = 1;
	c->g.accounts = &c->acc;
	if (!mkdtemp(g_dir))
		die("mkdtemp: %s", strerror(errno));
	g_have_dir = 1;
	cfg.data_dir = g_dir;
	cfg.validator_key = &c->val;
	if ((rc = ledger_open(&c->l, &cfg, why)))
		die("ledger_open: %s", why);
	open_lease(c);
	add_usage(c);
	close_lease(c);
}

/* --- the audit -------------------------------------------------------------- */

struct chain_read {
	size_t n;
	struct block *blocks;
	struct commit_cert *certs;
	struct audit_block *ab;
	struct lease settled;
};

static void read_chain(struct bench_chain *c, struct chain_read *r)
{
	struct ledger_status st;
	int rc;

	if ((rc = ledger_status(c->l, &st)))
		die("status: %s", tally_strerror(rc));
	r->n = st.height;
	r->blocks = calloc(r->n, sizeof(*r->blocks));
	r->certs = calloc(r->n, sizeof(*r->certs));
	r->ab = calloc(r->n, sizeof(*r->ab));
	if (!r->blocks || !r->certs || !r->ab)
		die("out of memory");
	for (size_t i = 0; i < r->n; i++) {
		if ((rc = ledger_block(c->l, i + 1, &r->blocks[i])) ||
		    (rc = ledger_cert(c->l, i + 1, &r->certs[i])))
			die("block %zu: %s", i + 1, tally_strerror(rc));
		r->ab[i].block = &r->blocks[i];
		r->ab[i].cert = &r->certs[i];
	}
	if ((rc = ledger_lease(c->l, c->lease_id, &r->settled)))
		die("lease: %s", tally_strerror(rc));
	if (r->settled.state != LEASE_CLOSED)
		die("the lease did not close");
}

static double time_chain_verify(const struct genesis *g, const struct chain_read *r)
{
	struct chain_verifier *v = malloc(sizeof(*v));
	char why[WHY_MAX];
	double t;
	int rc;

	if (!v)
		die("out of memory");
	t = bench_now_s();
	if ((rc = chain_verifier_from_genesis(v, g)))
		die("chain verifier: %s", tally_strerror(rc));
	for (size_t i = 0; i < r->n; i++)
		if ((rc = chain_verify_block(v, &r->blocks[i], &r->certs[i], NULL, why)))
			die("chain verification: %s", why);
	t = bench_now_s() - t;
	free(v);
	return t;
}

static double time_audit(const struct bench_chain *c, const struct chain_read *r)
{
	struct audit_input in = {
		.genesis = &c->g,
		.blocks = r->ab,
		.nblocks = r->n,
		.settled = &r->settled,
	};
	struct audit_result res;
	char why[WHY_MAX];
	double t;
	int rc;

	memcpy(in.lease_id, c->lease_id, LEASE_ID_LEN);
	t = bench_now_s();
	rc = audit_run(&in, &res, why);
	t = bench_now_s() - t;
	if (rc)
		die("%s", why);
	if (!res.verified || res.nrecords != RECORDS || !res.compared) {
		for (size_t i = 0; i < res.nerrors; i++)
			fprintf(stderr, "audit_bench: audit: %s\n", res.errors[i].msg);
		die("the audit of an honest chain did not verify (%zu of %d records)",
		    res.nrecords, RECORDS);
	}
	for (size_t i = 0; i < res.nrecords; i++)
		if (!res.records[i].signature_ok || !res.records[i].proven)
			die("record %zu was not checked", i);
	audit_result_free(&res);
	return t;
}

static void free_chain_read(struct chain_read *r)
{
	for (size_t i = 0; i < r->n; i++)
		block_free(&r->blocks[i]);
	free(r->blocks);
	free(r->certs);
	free(r->ab);
}

/* --- inclusion proof size at 10^6 records ------------------------------------ */

static unsigned ceil_log2(uint64_t n)
{
	unsigned k = 0;

	while ((1ull << k) < n)
		k++;
	return k;
}

/* Min and max length of PATH(m, D[n]) over the first, last and middle
 * leaves and PROOF_SAMPLES random ones; every proof is verified. */
static void proof_size(uint64_t n, size_t *min, size_t *max)
{
	struct merkle_store *s = merkle_mem_store_new();
	uint8_t leaf[HASH_LEN], root[HASH_LEN], proof[MERKLE_MAX_PROOF][HASH_LEN];
	int rc;

	if (!s)
		die("out of memory");
	for (uint64_t i = 0; i < n; i++) {
		merkle_leaf_hash(&i, sizeof(i), leaf);
		if ((rc = merkle_append(s, i, leaf)))
			die("merkle_append: %s", tally_strerror(rc));
	}
	if ((rc = merkle_root(s, n, root)))
		die("merkle_root: %s", tally_strerror(rc));
	*min = SIZE_MAX;
	*max = 0;
	for (size_t k = 0; k < PROOF_SAMPLES + 3; k++) {
		uint64_t m = k == 0 ? 0 : k == 1 ? n - 1 : k == 2 ? n / 2 : bench_rng_below(n);
		size_t len;

		if ((rc = merkle_inclusion_proof(s, m, n, proof, &len)))
			die("inclusion proof of %" PRIu64 ": %s", m, tally_strerror(rc));
		merkle_leaf_hash(&m, sizeof(m), leaf);
		if ((rc = merkle_inclusion_verify(m, n, leaf, proof, len, root)))
			die("inclusion proof of %" PRIu64 " does not verify: %s", m,
			    tally_strerror(rc));
		if (len < *min)
			*min = len;
		if (len > *max)
			*max = len;
	}
	merkle_mem_store_free(s);
}

int main(void)
{
	static struct bench_chain c;
	struct chain_read r;
	double raw = 0, t_chain = 1e9, t_audit = 1e9, rate;
	size_t pmin, pmax;

	atexit(cleanup);
	build_chain(&c);
	read_chain(&c, &r);

	/* Rounds of baseline, chain and audit in turn, best of each: other
	 * work on the machine slows any one of them, never speeds it up. */
	for (int round = 0; round < ROUNDS; round++) {
		double x = raw_verify_rate(RECORDS, c.usage_len - SIG_LEN);

		raw = x > raw ? x : raw;
		x = time_chain_verify(&c.g, &r);
		t_chain = x < t_chain ? x : t_chain;
		x = time_audit(&c, &r);
		t_audit = x < t_audit ? x : t_audit;
	}
	rate = RECORDS / t_audit;

	printf("audit_bench: raw Ed25519 verify: %.0f /s (%d signatures, %zu-byte messages: a"
	       " signed USAGE payload; best of %d)\n", raw, RECORDS, c.usage_len - SIG_LEN,
	       ROUNDS);
	printf("audit_bench: audit (lib/chain/audit.h, from genesis, proofs from the blocks): %.0f"
	       " records/s (%d records of one lease in %zu blocks, %.2f s; best of %d)\n", rate,
	       RECORDS, r.n, t_audit, ROUNDS);
	printf("audit_bench:   of which chain verification (lib/chain/verify.h) alone: %.2f s"
	       " (%.0f records/s)\n", t_chain, RECORDS / t_chain);
	printf("audit_bench: ratio audit / raw verify: %.3f\n", rate / raw);

	proof_size(PROOF_LEAVES, &pmin, &pmax);
	printf("audit_bench: inclusion proof at %llu records: %zu..%zu hashes = %zu..%zu bytes"
	       " (ceil(log2 n) = %u; %d sampled proofs verified)\n", PROOF_LEAVES, pmin, pmax,
	       pmin * HASH_LEN, pmax * HASH_LEN, ceil_log2(PROOF_LEAVES), PROOF_SAMPLES + 3);

	free_chain_read(&r);
	ledger_close(c.l);
	key_free(&c.val);
	key_free(&c.tenant);
	return 0;
}
