/* Ledger throughput against raw signature verification, in one run.
 *
 * Baseline: OpenSSL Ed25519 verifications per second of 200-byte messages.
 * Measured: signed USAGE transactions per second that the ledger accepts
 * (tx_check: strict decode, chain id, signature) and commits in blocks of
 * BLOCK_TXS (one SQLite transaction each, synchronous=FULL), over LEASES
 * running leases with synthetic meter input. The transactions are signed
 * before the clock starts: signing is the provider's cost, not the ledger's.
 * The ratio measured / baseline is the figure (target >= 0.6: signature
 * checking should be the only real cost). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "daemon/ledger/ledger.h"
#include "lib/errors.h"

#define CHAIN "tally-bench"
#define T0 1700000000000000000ull
#define SEC 1000000000ull
#define LEASES 1000
#define ROUNDS 10
#define BLOCK_TXS 1000
#define RAW_N 20000

struct signed_tx {
	uint8_t *bytes;
	size_t len;
};

static void die(const char *what, int rc, const char *why)
{
	fprintf(stderr, "ledger_bench: %s: %s%s%s\n", what, tally_strerror(rc),
		why && why[0] ? ": " : "", why ? why : "");
	exit(1);
}

static double raw_verify_rate(void)
{
	enum raw_verify_step failed;
	double rate;
	int rc = bench_raw_verify_rate(RAW_N, 200, 0, &rate, &failed);

	if (rc && (failed == RAW_VERIFY_ALLOC || failed == RAW_VERIFY_KEY))
		die("setup", TALLY_E_NOMEM, NULL);
	if (rc)
		die(failed == RAW_VERIFY_SIGN ? "sign" : "verify", rc, NULL);
	return rate;
}

/* The bench chain's genesis hash: signatures are bound to it. */
static uint8_t g_genesis_hash[HASH_LEN];

static struct signed_tx sign_tx(struct tx *t, const struct tally_key *k)
{
	struct signed_tx s;
	struct enc e;
	int rc = tx_sign(t, k, g_genesis_hash);

	if (rc)
		die("tx_sign", rc, NULL);
	enc_init(&e);
	tx_encode(&e, t);
	if (enc_error(&e))
		die("tx_encode", enc_error(&e), NULL);
	s.bytes = enc_take(&e, &s.len);
	return s;
}

static void submit_all(struct ledger *l, struct signed_tx *s, size_t n)
{
	uint8_t h[HASH_LEN];
	char why[WHY_MAX];

	for (size_t i = 0; i < n; i++) {
		int rc = ledger_submit(l, s[i].bytes, s[i].len, h, why);

		if (rc)
			die("submit", rc, why);
	}
}

static void produce(struct ledger *l, uint64_t t, size_t want)
{
	struct ledger_block_result r;
	char why[WHY_MAX];
	int rc = ledger_produce_block(l, t, &r, why);

	if (rc)
		die("produce", rc, why);
	if (r.ntx != want)
		die("produce", TALLY_E_INTERNAL, "a transaction was dropped");
}

static void quiet(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "ledger: %s\n", line);
}

int main(void)
{
	static struct signed_tx opens[LEASES], starts[LEASES], usage[ROUNDS][LEASES];
	static uint8_t lease_id[LEASES][HASH_LEN], prev[LEASES][HASH_LEN];
	struct tally_key val, tenant;
	struct genesis g;
	struct genesis_account acc;
	struct ledger_config cfg = { .genesis = &g, .log = quiet, .mempool_max = 2 * BLOCK_TXS };
	struct ledger *l;
	char dir[] = "/tmp/tally-ledger-bench-XXXXXX", why[WHY_MAX];
	uint64_t t = T0, started;
	double raw, rate, el;
	struct tx tx;
	int rc;

	raw = raw_verify_rate();
	if (key_generate(&val) || key_generate(&tenant) || !mkdtemp(dir))
		die("setup", TALLY_E_CRYPTO, NULL);
	memset(&g, 0, sizeof(g));
	strcpy(g.chain_id, CHAIN);
	g.genesis_time_ns = T0;
	g.validators.n = 1;
	memcpy(g.validators.v[0].pubkey, val.pub, PUBKEY_LEN);
	g.validators.v[0].stake = 1000;
	memcpy(acc.pubkey, tenant.pub, PUBKEY_LEN);
	acc.balance = (uint64_t)LEASES * 1000000;
	g.naccounts = 1;
	g.accounts = &acc;
	genesis_hash(&g, g_genesis_hash);
	cfg.data_dir = dir;
	cfg.validator_key = &val;     /* the validator is also the provider */
	if ((rc = ledger_open(&l, &cfg, why)))
		die("ledger_open", rc, why);

	/* Leases: open and start them all. */
	for (int i = 0; i < LEASES; i++) {
		struct lease_contract *c = &tx.u.open;

		bench_tx_base(&tx, CHAIN, TX_LEASE_OPEN, &tenant, i);
		c->version = CONTRACT_VERSION;
		strcpy(c->chain_id, CHAIN);
		memcpy(c->tenant, tenant.pub, PUBKEY_LEN);
		memcpy(c->provider, val.pub, PUBKEY_LEN);
		c->nonce = i;
		c->expiry = 4000000000ull;
		c->vm.vcpus = 2;
		c->vm.memory_mib = 1024;
		c->vm.disk_gib = 10;
		strcpy(c->vm.image, "debian-12");
		c->duration_s = 3600;
		c->deposit = 1000000;
		c->interval_s = 60;
		c->prices.vcpu_second = 100;
		c->prices.mem_gib_second = 10;
		c->sla.max_delay_ppm = 100000;
		c->sla.credit_ppm = 100000;
		opens[i] = sign_tx(&tx, &tenant);
		tx_hash(opens[i].bytes, opens[i].len, lease_id[i]);
		if (i == 0) {
			/* The provider announces what the leases pay, first. */
			struct lease_contract k = *c;
			struct signed_tx ann;

			bench_tx_base(&tx, CHAIN, TX_PROVIDER, &val, 0);
			bench_offer_for(&k, &tx.u.provider);
			ann = sign_tx(&tx, &val);
			submit_all(l, &ann, 1);
			produce(l, t += SEC, 1);
		}
		bench_tx_base(&tx, CHAIN, TX_LEASE_START, &val, 1 + i);
		memcpy(tx.u.start.lease_id, lease_id[i], LEASE_ID_LEN);
		starts[i] = sign_tx(&tx, &val);
	}
	submit_all(l, opens, LEASES);
	produce(l, t += SEC, LEASES);
	submit_all(l, starts, LEASES);
	produce(l, started = t += SEC, LEASES);

	/* Usage records, signed in advance: meter input varies per lease. */
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < LEASES; i++) {
			struct usage_record *u = &tx.u.usage;

			bench_tx_base(&tx, CHAIN, TX_USAGE, &val, 1 + (uint64_t)LEASES + (uint64_t)r * LEASES + i);
			memcpy(u->lease_id, lease_id[i], LEASE_ID_LEN);
			u->seq = r;
			if (r)
				memcpy(u->prev_hash, prev[i], HASH_LEN);
			u->start_ns = started + (uint64_t)r * 60 * SEC;
			u->end_ns = u->start_ns + 60 * SEC;
			u->cpu_ns = (uint64_t)(i % 100 + 1) * SEC;
			u->run_delay_ns = (uint64_t)(i % 7) * 100000000ull;
			u->mem_mib = 1024;
			u->mem_peak_bytes = (uint64_t)(512 + i % 256) << 20;
			u->gpu_source = GPU_SOURCE_NONE;
			usage[r][i] = sign_tx(&tx, &val);
			tx_hash(usage[r][i].bytes, usage[r][i].len, prev[i]);
		}
	}

	el = bench_now_s();
	for (int r = 0; r < ROUNDS; r++) {
		/* A record may not end after the block that commits it (5 s of
		 * slack): the blocks of round r come after its records' end. */
		uint64_t ends = started + (uint64_t)(r + 1) * 60 * SEC;

		if (t + SEC < ends)
			t = ends - SEC;
		for (int b = 0; b < LEASES; b += BLOCK_TXS) {
			int n = LEASES - b < BLOCK_TXS ? LEASES - b : BLOCK_TXS;

			submit_all(l, &usage[r][b], n);
			produce(l, t += SEC, n);
		}
	}
	el = bench_now_s() - el;
	rate = (double)ROUNDS * LEASES / el;

	printf("ledger_bench: raw Ed25519 verify: %.0f /s (%d messages of 200 bytes)\n", raw, RAW_N);
	printf("ledger_bench: ledger USAGE accept+commit: %.0f tx/s (%d txs, blocks of %d, %d leases)\n",
	       rate, ROUNDS * LEASES, BLOCK_TXS, LEASES);
	printf("ledger_bench: ratio ledger / raw verify: %.2f (target >= 0.60)\n", rate / raw);

	ledger_close(l);
	bench_rm_tree(dir);
	for (int i = 0; i < LEASES; i++) {
		free(opens[i].bytes);
		free(starts[i].bytes);
		for (int r = 0; r < ROUNDS; r++)
			free(usage[r][i].bytes);
	}
	key_free(&val);
	key_free(&tenant);
	return 0;
}
