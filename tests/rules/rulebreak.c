/* rulebreak: writes small chain export files, each certified by its
 * validator's key and each breaking exactly one rule that validators
 * enforce, plus a control that breaks none. tests/rules/run.sh then checks
 * that `tally audit --chain` and `tally chain verify` refuse every one,
 * naming the height and the rule, and verify the control: an auditor that
 * is looser than the chain fails it.
 *
 *   rulebreak DIR     writes DIR/<name>.chain and prints one line a file:
 *                     NAME LEASE-ID HEIGHT PHRASE...
 *                     (HEIGHT 0 and PHRASE "VERIFIED" for the control)
 *
 * Every chain starts the same: block 1 opens a lease (tenant), block 2
 * starts it (provider), block 3 holds its usage record seq 0. The break
 * comes in block 4 unless the scenario says otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/chainfile.h"
#include "lib/chain/evidence.h"
#include "lib/errors.h"
#include "tests/support/chainbuild.h"
#include "tests/support/fileclaim.h"

#define G 1700000000000000000ull          /* genesis time */
#define BT(h) (G + (uint64_t)(h) * 10 * CB_SEC)   /* time of block h */

struct base {
	struct chainbuild c;
	uint8_t lease[HASH_LEN];
	uint8_t last_usage[HASH_LEN];
	uint64_t started_ns;
};

static void base_build(struct base *b)
{
	struct tx t;

	cb_init(&b->c, "rules-test", G);
	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_OPEN;
	cb_contract(&b->c, &t.u.open, BT(1));
	cb_tx(&b->c, &t, CB_TENANT, false, b->lease);
	cb_seal(&b->c, BT(1), false, NULL, NULL);

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_START;
	memcpy(t.u.start.lease_id, b->lease, LEASE_ID_LEN);
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
	cb_seal(&b->c, BT(2), false, NULL, NULL);
	b->started_ns = BT(2);

	cb_usage(&t, b->lease, 0, NULL, b->started_ns, CB_SEC, CB_SEC / 2);
	cb_tx(&b->c, &t, CB_VALIDATOR, false, b->last_usage);
	cb_seal(&b->c, BT(3), false, NULL, NULL);
}

static void close_tx(struct base *b, enum cb_who who, uint8_t reason)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_CLOSE;
	memcpy(t.u.close.lease_id, b->lease, LEASE_ID_LEN);
	t.u.close.reason = reason;
	cb_tx(&b->c, &t, who, false, NULL);
}

static void transfer_tx(struct base *b, enum cb_who who, uint64_t amount, bool keep_nonce,
			uint64_t nonce)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_TRANSFER;
	t.nonce = nonce;
	memcpy(t.u.transfer.to, b->c.key[CB_VALIDATOR].pub, PUBKEY_LEN);
	t.u.transfer.amount = amount;
	cb_tx(&b->c, &t, who, keep_nonce, NULL);
}

/* A second lease's contract, to be spoiled by the scenario. */
static void open_tx(struct base *b, struct tx *t, enum cb_who who, bool keep_nonce)
{
	cb_tx(&b->c, t, who, keep_nonce, NULL);
}

static void contract(struct base *b, struct tx *t)
{
	memset(t, 0, sizeof(*t));
	t->kind = TX_LEASE_OPEN;
	cb_contract(&b->c, &t->u.open, BT(4));
}

/* The next usage record (seq 1), for the scenario to spoil. */
static void usage1(struct base *b, struct tx *t)
{
	cb_usage(t, b->lease, 1, b->last_usage, b->started_ns + CB_SEC, CB_SEC, CB_SEC / 2);
}

static void zero_state_root(struct block_header *h, void *ctx)
{
	(void)ctx;
	h->state_root[0] ^= 1;
}

static void other_next_vals(struct block_header *h, void *ctx)
{
	(void)ctx;
	h->next_validators_hash[0] ^= 1;
}

static void other_usage_size(struct block_header *h, void *ctx)
{
	(void)ctx;
	h->usage_size += 1;
}

struct scenario {
	const char *name;
	const char *phrase;      /* what the refusal must say ("%s": the lease, short) */
	void (*build)(struct base *b);   /* queue block 4's transactions */
	void (*tamper)(struct block_header *h, void *ctx);
	/* changes the file after the chain */
	void (*file)(struct base *b, struct chainfile *f);
};

static void s_control(struct base *b)
{
	struct tx t;

	usage1(b, &t);
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
	close_tx(b, CB_TENANT, CLOSE_TENANT);
}

static void s_tenant_provider_failed(struct base *b)
{
	close_tx(b, CB_TENANT, CLOSE_PROVIDER_FAILED);
}

static void s_term_not_ended(struct base *b)
{
	close_tx(b, CB_VALIDATOR, CLOSE_TERM_ENDED);
}

static void s_exhausted_covered(struct base *b)
{
	close_tx(b, CB_VALIDATOR, CLOSE_EXHAUSTED);
}

static void s_stranger_close(struct base *b)
{
	close_tx(b, CB_STRANGER, CLOSE_TENANT);
}

static void s_tenant_close_reason(struct base *b)
{
	close_tx(b, CB_TENANT, CLOSE_TERM_ENDED);
}

static void s_provider_close_tenant(struct base *b)
{
	close_tx(b, CB_VALIDATOR, CLOSE_TENANT);
}

static void s_start_by_tenant(struct base *b)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_START;
	memcpy(t.u.start.lease_id, b->lease, LEASE_ID_LEN);
	cb_tx(&b->c, &t, CB_TENANT, false, NULL);
}

static void s_start_twice(struct base *b)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_START;
	memcpy(t.u.start.lease_id, b->lease, LEASE_ID_LEN);
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

static void s_usage_by_tenant(struct base *b)
{
	struct tx t;

	usage1(b, &t);
	cb_tx(&b->c, &t, CB_TENANT, false, NULL);
}

static void s_nonce_ahead(struct base *b)
{
	transfer_tx(b, CB_TENANT, 1, true, b->c.nonce[CB_TENANT] + 5);
}

static void s_nonce_used(struct base *b)
{
	transfer_tx(b, CB_TENANT, 1, true, 0);
}

static void s_transfer_above_balance(struct base *b)
{
	transfer_tx(b, CB_STRANGER, 2000000, false, 0);
}

static void s_deposit_above_balance(struct base *b)
{
	struct tx t;

	contract(b, &t);
	memcpy(t.u.open.tenant, b->c.key[CB_STRANGER].pub, PUBKEY_LEN);
	t.u.open.nonce = b->c.nonce[CB_STRANGER];
	t.u.open.deposit = 2000000;
	open_tx(b, &t, CB_STRANGER, false);
}

static void s_contract_expired(struct base *b)
{
	struct tx t;

	contract(b, &t);
	t.u.open.expiry = BT(4) / CB_SEC - 1;
	open_tx(b, &t, CB_TENANT, false);
}

static void s_deposit_below_interval(struct base *b)
{
	struct tx t;

	contract(b, &t);
	t.u.open.deposit = 1;
	open_tx(b, &t, CB_TENANT, false);
}

static void s_contract_nonce(struct base *b)
{
	struct tx t;

	contract(b, &t);
	t.u.open.nonce += 7;
	open_tx(b, &t, CB_TENANT, false);
}

static void s_contract_chain(struct base *b)
{
	struct tx t;

	contract(b, &t);
	snprintf(t.u.open.chain_id, sizeof(t.u.open.chain_id), "other-chain");
	open_tx(b, &t, CB_TENANT, false);
}

static void s_contract_not_tenant(struct base *b)
{
	struct tx t;

	contract(b, &t);
	t.nonce = b->c.nonce[CB_STRANGER];
	t.u.open.nonce = t.nonce;
	open_tx(b, &t, CB_STRANGER, false);
}

static void s_usage_gap(struct base *b)
{
	struct tx t;

	usage1(b, &t);
	t.u.usage.seq = 2;
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

static void s_usage_prev_hash(struct base *b)
{
	struct tx t;

	usage1(b, &t);
	t.u.usage.prev_hash[5] ^= 1;
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

static void s_usage_gap_in_time(struct base *b)
{
	struct tx t;

	usage1(b, &t);
	t.u.usage.start_ns += CB_SEC;
	t.u.usage.end_ns += CB_SEC;
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

static void s_usage_cpu(struct base *b)
{
	struct tx t;

	usage1(b, &t);
	t.u.usage.cpu_ns = 2 * CB_SEC;
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

static void s_usage_memory(struct base *b)
{
	struct tx t;

	usage1(b, &t);
	t.u.usage.mem_mib = 1024;
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

static void s_usage_after_term(struct base *b)
{
	struct tx t;

	usage1(b, &t);
	t.u.usage.end_ns = b->started_ns + 3601 * CB_SEC;
	t.u.usage.cpu_ns = 0;
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

static void s_usage_after_close(struct base *b)
{
	struct tx t;

	close_tx(b, CB_TENANT, CLOSE_TENANT);
	close_tx(b, CB_VALIDATOR, CLOSE_TENANT);    /* the provider takes the close */
	usage1(b, &t);
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

static void s_usage_past_close(struct base *b)
{
	struct tx t;

	close_tx(b, CB_TENANT, CLOSE_TENANT);       /* closing at block 4's time */
	cb_usage(&t, b->lease, 1, b->last_usage, b->started_ns + CB_SEC,
		 BT(4) + CB_SEC - (b->started_ns + CB_SEC), 0);
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

static void s_usage_in_future(struct base *b)
{
	struct tx t;

	/* 600 s of usage committed 20 s after the start. */
	cb_usage(&t, b->lease, 1, b->last_usage, b->started_ns + CB_SEC, 600 * CB_SEC,
		 600 * CB_SEC);
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

static void s_close_twice_early(struct base *b)
{
	close_tx(b, CB_TENANT, CLOSE_TENANT);
	close_tx(b, CB_TENANT, CLOSE_TENANT);
}

static void s_unstake_all(struct base *b)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_UNSTAKE;
	t.u.stake.amount = 100;
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

/* Any account may stake now; a validator that is not jailed may not
 * unjail. */
static void s_unjail_not_jailed(struct base *b)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_UNJAIL;
	cb_tx(&b->c, &t, CB_VALIDATOR, false, NULL);
}

/* The lease's state in the file, changed as a dishonest exporter would: one
 * unit less charged and one more in escrow, so the money still adds up and
 * the file decodes, but it is not the state block 4 committed. */
static void f_lease_state(struct base *b, struct chainfile *f)
{
	(void)b;
	if (fileclaim_undercharge(&f->leases[0]))
		exit(2);
}

/* A second lease opens in block 4 and is the one audited; the file lies
 * about the first one. An audit of any lease of the file refuses a file
 * that holds a false claim, as chain verify does. */
static uint8_t first_lease[HASH_LEN];

static void s_second_lease(struct base *b)
{
	struct tx t;

	memcpy(first_lease, b->lease, HASH_LEN);
	contract(b, &t);
	cb_tx(&b->c, &t, CB_TENANT, false, b->lease);
}

static void f_other_lease_state(struct base *b, struct chainfile *f)
{
	(void)b;
	for (size_t i = 0; i < f->nleases; i++)
		if (!memcmp(f->leases[i].id, first_lease, HASH_LEN)) {
			if (fileclaim_undercharge(&f->leases[i]))
				exit(2);
			return;
		}
	exit(2);
}

/* Block 4 timed before block 3 (certified all the same). */
static void time_backwards(struct block_header *h, void *ctx)
{
	(void)ctx;
	h->time_ns = BT(3) - 1;
}

/* An EVIDENCE against the validator for two precommits at height 3, the
 * second of which it never signed: its signature is another vote's. */
static void s_evidence_forged(struct base *b)
{
	struct signed_vote x, y;
	struct tx t;

	memset(&x, 0, sizeof(x));
	x.v.type = VOTE_PRECOMMIT;
	x.v.height = 3;
	memcpy(x.validator, b->c.key[CB_VALIDATOR].pub, PUBKEY_LEN);
	y = x;
	memset(x.v.block_id, 0x11, HASH_LEN);
	memset(y.v.block_id, 0x22, HASH_LEN);
	if (vote_sign(&x.v, &b->c.key[CB_VALIDATOR], b->c.genesis_hash, x.sig))
		exit(2);
	memcpy(y.sig, x.sig, SIG_LEN);
	memset(&t, 0, sizeof(t));
	t.kind = TX_EVIDENCE;
	if (evidence_make(&t.u.evidence, &x, &y))
		exit(2);
	cb_tx(&b->c, &t, CB_STRANGER, false, NULL);
}

/* Block 4's certificate, changed after it was made. */
static struct commit_cert *cert4(struct chainfile *f)
{
	return f->blocks[3].cert;
}

static void f_cert_unsigned(struct base *b, struct chainfile *f)
{
	(void)b;
	cert4(f)->n = 0;
}

static void f_cert_round(struct base *b, struct chainfile *f)
{
	(void)b;
	cert4(f)->round = 1;
}

static void f_cert_other_block(struct base *b, struct chainfile *f)
{
	(void)b;
	block_id(&f->blocks[2].block.header, cert4(f)->block_id);
}

/* The stranger's precommit for block 4 added: a signer outside the set. */
static void f_cert_stranger(struct base *b, struct chainfile *f)
{
	struct commit_cert *c = cert4(f);
	struct vote v = { .type = VOTE_PRECOMMIT, .height = c->height, .round = c->round };
	struct commit_sig s;
	size_t at = 0;

	memcpy(v.block_id, c->block_id, HASH_LEN);
	memcpy(s.validator, b->c.key[CB_STRANGER].pub, PUBKEY_LEN);
	if (vote_sign(&v, &b->c.key[CB_STRANGER], b->c.genesis_hash, s.sig))
		exit(2);
	while (at < c->n && memcmp(c->sigs[at].validator, s.validator, PUBKEY_LEN) < 0)
		at++;
	memmove(&c->sigs[at + 1], &c->sigs[at], (c->n - at) * sizeof(s));
	c->sigs[at] = s;
	c->n++;
}

static void s_nothing(struct base *b)
{
	(void)b;
}

static const struct scenario scenarios[] = {
	{ "control", "VERIFIED", s_control, NULL, NULL },
	{ "close-tenant-provider-failed", "only as tenant-closed", s_tenant_provider_failed, NULL, NULL },
	{ "close-tenant-term-ended", "only as tenant-closed", s_tenant_close_reason, NULL, NULL },
	{ "close-provider-tenant-closed", "cannot close a running lease as tenant-closed",
	  s_provider_close_tenant, NULL, NULL },
	{ "close-term-not-ended", "term has not ended", s_term_not_ended, NULL, NULL },
	{ "close-exhausted-covered", "still covers an interval", s_exhausted_covered, NULL, NULL },
	{ "close-by-stranger", "only the lease's tenant or provider", s_stranger_close, NULL, NULL },
	{ "start-by-tenant", "signed by its provider", s_start_by_tenant, NULL, NULL },
	{ "start-twice", "only an opened lease can start", s_start_twice, NULL, NULL },
	{ "usage-by-tenant", "signed by its provider", s_usage_by_tenant, NULL, NULL },
	{ "nonce-ahead", "is ahead of", s_nonce_ahead, NULL, NULL },
	{ "nonce-used", "already used", s_nonce_used, NULL, NULL },
	{ "transfer-above-balance", "exceeds balance", s_transfer_above_balance, NULL, NULL },
	{ "deposit-above-balance", "deposit 2000000 exceeds balance", s_deposit_above_balance,
	  NULL, NULL },
	{ "contract-expired", "expired", s_contract_expired, NULL, NULL },
	{ "deposit-below-interval", "first interval", s_deposit_below_interval, NULL, NULL },
	{ "contract-nonce", "differs from the contract's nonce", s_contract_nonce, NULL, NULL },
	{ "contract-chain", "the contract is for chain", s_contract_chain, NULL, NULL },
	{ "contract-not-tenant", "signed by its tenant", s_contract_not_tenant, NULL, NULL },
	{ "usage-seq-gap", "expected seq 1, got 2", s_usage_gap, NULL, NULL },
	{ "usage-prev-hash", "does not link", s_usage_prev_hash, NULL, NULL },
	{ "usage-time-gap", "not where the previous one ended", s_usage_gap_in_time, NULL, NULL },
	{ "usage-cpu-above-vcpus", "exceeds 1 vCPUs", s_usage_cpu, NULL, NULL },
	{ "usage-memory", "MiB of memory", s_usage_memory, NULL, NULL },
	{ "usage-after-term", "after the term ends", s_usage_after_term, NULL, NULL },
	{ "usage-after-close", "usage applies only to a running lease", s_usage_after_close,
	  NULL, NULL },
	{ "usage-past-tenant-close", "after the tenant closed the lease", s_usage_past_close,
	  NULL, NULL },
	{ "usage-in-the-future", "bills time that has not happened", s_usage_in_future, NULL, NULL },
	{ "tenant-close-before-grace", "the lease is closing", s_close_twice_early, NULL, NULL },
	{ "unstake-all", "would leave the validator set empty", s_unstake_all, NULL, NULL },
	{ "unjail-not-jailed", "is not jailed", s_unjail_not_jailed, NULL, NULL },
	{ "state-root", "state root", s_nothing, zero_state_root, NULL },
	{ "next-validators", "next validator set", s_nothing, other_next_vals, NULL },
	{ "usage-log-size", "usage log", s_nothing, other_usage_size, NULL },
	{ "lease-state-changed", "lease %s: the claimed state", s_control, NULL, f_lease_state },
	{ "other-lease-state-changed", "the claimed state (", s_second_lease, NULL,
	  f_other_lease_state },
	{ "time-backwards", "is not after the previous time", s_control, time_backwards, NULL },
	{ "evidence-forged-vote", "does not verify for the accused validator", s_evidence_forged,
	  NULL, NULL },
	{ "cert-unsigned", "2/3 of the stake or less", s_control, NULL, f_cert_unsigned },
	{ "cert-other-round", "commit certificate signature does not verify", s_control, NULL,
	  f_cert_round },
	{ "cert-other-block", "commit certificate is for another block", s_control, NULL,
	  f_cert_other_block },
	{ "cert-signer-outside-set", "not validators", s_control, NULL, f_cert_stranger },
};

int main(int argc, char **argv)
{
	char path[4096], lease[2 * HASH_LEN + 1], short_id[17], phrase[128];

	if (argc != 2) {
		fprintf(stderr, "usage: rulebreak DIR\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		const struct scenario *s = &scenarios[i];
		struct base *b = calloc(1, sizeof(*b));

		if (!b)
			return 2;
		base_build(b);
		s->build(b);
		cb_seal(&b->c, BT(4), true, s->tamper, NULL);
		snprintf(path, sizeof(path), "%s/%s.chain", argv[1], s->name);
		if (s->file) {
			struct chainfile f;
			char why[WHY_MAX];

			chainfile_init(&f);
			cb_file(&b->c, &f);
			s->file(b, &f);
			if (chainfile_save(&f, path, why)) {
				fprintf(stderr, "rulebreak: %s\n", why);
				return 2;
			}
			chainfile_free(&f);
		} else {
			cb_write_file(&b->c, path);
		}
		hex_encode(b->lease, HASH_LEN, lease);
		hex_encode(b->lease, 8, short_id);
		snprintf(phrase, sizeof(phrase), s->phrase, short_id);
		printf("%s %s %d %s\n", s->name, lease, i == 0 ? 0 : 4, phrase);
		cb_free(&b->c);
		free(b);
	}
	return 0;
}
