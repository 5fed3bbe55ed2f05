/* Genesis and chain verification, on a hand-built chain of three validators
 * with real signatures, USAGE transactions and commit certificates. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/chain/verify.h"
#include "lib/errors.h"
#include "lib/chain/tx.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

#define CHAIN "tally-test"
#define T0 1700000000000000000ull
#define SEC 1000000000ull
#define NVAL 4             /* three in the genesis set, a fourth joins later */
#define MAXBLOCKS 6

/* --- a chain builder ----------------------------------------------------- */

struct tchain {
	struct tally_key vkeys[NVAL];          /* sorted by public key */
	struct tally_key tenant, provider;
	struct genesis g;
	uint8_t gh[HASH_LEN];                  /* its hash: signatures are bound to it */
	struct genesis_account accounts[2];
	/* what the builder carries from block to block */
	struct validator_set vals;
	struct merkle_frontier usage;
	uint64_t height, time_ns;
	uint8_t last_id[HASH_LEN], last_cert_hash[HASH_LEN];
	uint64_t tenant_nonce, provider_nonce, usage_seq;
	uint8_t lease_id[HASH_LEN], usage_prev[HASH_LEN];
	/* the chain */
	size_t n;
	struct block blocks[MAXBLOCKS];
	struct commit_cert certs[MAXBLOCKS];
	const struct validator_set *next_vals[MAXBLOCKS];
};

/* What a block to build holds and how it is signed. */
struct spec {
	struct block_tx txs[4];
	bool is_usage[4];
	size_t ntx;
	unsigned signers;                         /* bit i: vkeys[i] signs */
	const struct validator_set *next;         /* NULL: the set stays */
	void (*tweak)(struct block_header *h);    /* a fault, before signing */
	bool usage_not_logged;                    /* a fault: skip the log */
};

static struct tchain ch;

static void seed_key(struct tally_key *k, uint8_t b)
{
	uint8_t seed[32];

	memset(seed, b, sizeof(seed));
	ck_assert_int_eq(key_from_seed(k, seed), 0);
}

static struct block_tx sign_tx(struct tx *t, const struct tally_key *k, uint64_t *nonce)
{
	struct block_tx bt = { 0 };   /* not hashed: the tests change some bytes */
	struct enc e;

	t->version = TX_VERSION;
	if (!t->chain_id[0])
		strcpy(t->chain_id, CHAIN);
	memcpy(t->signer, k->pub, PUBKEY_LEN);
	t->nonce = (*nonce)++;
	ck_assert_int_eq(tx_sign(t, k, ch.gh), 0);
	enc_init(&e);
	tx_encode(&e, t);
	ck_assert_int_eq(enc_error(&e), 0);
	bt.bytes = enc_take(&e, &bt.len);
	return bt;
}

static struct block_tx tx_open(void)
{
	struct tx t = { .kind = TX_LEASE_OPEN };
	struct lease_contract *c = &t.u.open;
	struct block_tx bt;

	c->version = CONTRACT_VERSION;
	strcpy(c->chain_id, CHAIN);
	memcpy(c->tenant, ch.tenant.pub, PUBKEY_LEN);
	memcpy(c->provider, ch.provider.pub, PUBKEY_LEN);
	c->nonce = ch.tenant_nonce;
	c->expiry = T0 / SEC + 3600;
	c->vm.vcpus = 1;
	c->vm.memory_mib = 512;
	strcpy(c->vm.image, "tiny");
	c->duration_s = 600;
	c->deposit = 1000000;
	c->interval_s = 1;
	c->prices.vcpu_second = 20;
	c->prices.mem_gib_second = 5;
	bt = sign_tx(&t, &ch.tenant, &ch.tenant_nonce);
	tx_hash(bt.bytes, bt.len, ch.lease_id);
	return bt;
}

static struct block_tx tx_start(void)
{
	struct tx t = { .kind = TX_LEASE_START };

	memcpy(t.u.start.lease_id, ch.lease_id, HASH_LEN);
	return sign_tx(&t, &ch.provider, &ch.provider_nonce);
}

static struct block_tx tx_usage(void)
{
	struct tx t = { .kind = TX_USAGE };
	struct usage_record *u = &t.u.usage;
	struct block_tx bt;

	memcpy(u->lease_id, ch.lease_id, HASH_LEN);
	u->seq = ch.usage_seq++;
	memcpy(u->prev_hash, ch.usage_prev, HASH_LEN);
	u->start_ns = T0 + 100 * SEC + u->seq * SEC;
	u->end_ns = u->start_ns + SEC;
	u->cpu_ns = SEC / 2;
	u->mem_mib = 512;
	bt = sign_tx(&t, &ch.provider, &ch.provider_nonce);
	tx_hash(bt.bytes, bt.len, ch.usage_prev);
	return bt;
}

static struct block_tx tx_transfer(const char *chain_id)
{
	struct tx t = { .kind = TX_TRANSFER };

	strcpy(t.chain_id, chain_id);
	memcpy(t.u.transfer.to, ch.provider.pub, PUBKEY_LEN);
	t.u.transfer.amount = 5;
	return sign_tx(&t, &ch.tenant, &ch.tenant_nonce);
}

static void spec_add(struct spec *s, struct block_tx bt, bool usage)
{
	s->is_usage[s->ntx] = usage;
	s->txs[s->ntx++] = bt;
}

static void sign_cert(struct commit_cert *c, const struct block_header *h, unsigned signers)
{
	struct vote v = { .type = VOTE_PRECOMMIT, .height = h->height, .round = 0 };

	memset(c, 0, sizeof(*c));
	c->height = h->height;
	block_id(h, c->block_id);
	memcpy(v.block_id, c->block_id, HASH_LEN);
	for (int i = 0; i < NVAL; i++) {
		if (!(signers & (1u << i)))
			continue;
		memcpy(c->sigs[c->n].validator, ch.vkeys[i].pub, PUBKEY_LEN);
		ck_assert_int_eq(vote_sign(&v, &ch.vkeys[i], ch.gh, c->sigs[c->n].sig), 0);
		c->n++;
	}
}

/* Builds the block that follows the builder's state, without advancing it.
 * The block takes ownership of the spec's transaction bytes. */
static void make_block(struct block *b, struct commit_cert *c, struct spec *s,
		       struct merkle_frontier *usage_after)
{
	struct block_header *h = &b->header;

	memset(b, 0, sizeof(*b));
	b->ntx = s->ntx;
	b->txs = calloc(s->ntx ? s->ntx : 1, sizeof(*b->txs));
	memcpy(b->txs, s->txs, s->ntx * sizeof(*b->txs));
	*usage_after = ch.usage;
	for (size_t i = 0; i < s->ntx; i++) {
		uint8_t leaf[HASH_LEN];

		if (!s->is_usage[i] || s->usage_not_logged)
			continue;
		merkle_leaf_hash(s->txs[i].bytes, s->txs[i].len, leaf);
		merkle_frontier_append(usage_after, leaf);
	}
	h->version = BLOCK_VERSION;
	strcpy(h->chain_id, CHAIN);
	h->height = ch.height + 1;
	h->time_ns = ch.time_ns + SEC;
	memcpy(h->prev_block_id, ch.last_id, HASH_LEN);
	block_txs_root(b, h->txs_root);
	h->usage_size = usage_after->size;
	merkle_frontier_root(usage_after, h->usage_root);
	sha256(&h->height, sizeof(h->height), h->state_root);   /* not checked here */
	valset_hash(&ch.vals, h->validators_hash);
	if (s->next)
		valset_hash(s->next, h->next_validators_hash);
	else
		memcpy(h->next_validators_hash, h->validators_hash, HASH_LEN);
	memcpy(h->proposer, ch.vals.v[h->height % ch.vals.n].pubkey, PUBKEY_LEN);
	memcpy(h->last_commit_hash, ch.last_cert_hash, HASH_LEN);
	if (s->tweak)
		s->tweak(h);
	sign_cert(c, h, s->signers);
}

static void append_block(struct spec *s)
{
	size_t i = ch.n++;
	struct merkle_frontier usage;

	ck_assert_uint_lt(i, MAXBLOCKS);
	make_block(&ch.blocks[i], &ch.certs[i], s, &usage);
	ch.usage = usage;
	ch.height++;
	ch.time_ns = ch.blocks[i].header.time_ns;
	block_id(&ch.blocks[i].header, ch.last_id);
	cert_hash(&ch.certs[i], ch.last_cert_hash);
	ch.next_vals[i] = s->next;
	if (s->next)
		ch.vals = *s->next;
}

/* The case's directory, made and removed in the runner's process: a test
 * whose assertion fails ends before its own clean-up, and leaves nothing. */
static char base[40];

static void case_begin(void)
{
	lt_case_dir(base, sizeof(base), "chain");
}

static void case_end(void)
{
	cb_rm_tree(base);
}

static struct validator_set joined;   /* vkeys 0, 1 and 3 after block 3 of chain_joined */

static void chain_setup(void)
{
	memset(&ch, 0, sizeof(ch));
	for (int i = 0; i < NVAL; i++)
		seed_key(&ch.vkeys[i], (uint8_t)(0x41 + i));
	for (int i = 0; i < NVAL; i++)
		for (int j = i + 1; j < NVAL; j++)
			if (memcmp(ch.vkeys[j].pub, ch.vkeys[i].pub, PUBKEY_LEN) < 0) {
				struct tally_key t = ch.vkeys[i];
				ch.vkeys[i] = ch.vkeys[j];
				ch.vkeys[j] = t;
			}
	seed_key(&ch.tenant, 0x21);
	seed_key(&ch.provider, 0x22);

	struct genesis *g = &ch.g;
	strcpy(g->chain_id, CHAIN);
	g->genesis_time_ns = T0;
	g->validators.n = 3;
	for (int i = 0; i < 3; i++) {
		memcpy(g->validators.v[i].pubkey, ch.vkeys[i].pub, PUBKEY_LEN);
		g->validators.v[i].stake = i == 2 ? 101 : 100;   /* total 301 */
	}
	g->naccounts = 1;
	g->accounts = ch.accounts;
	memcpy(ch.accounts[0].pubkey, ch.tenant.pub, PUBKEY_LEN);
	ch.accounts[0].balance = 1000000000;

	ch.vals = g->validators;
	merkle_frontier_init(&ch.usage);
	ch.time_ns = T0;
	genesis_hash(g, ch.last_id);
	genesis_hash(g, ch.gh);

	joined.n = 3;
	int k = 0;
	for (int i = 0; i < NVAL; i++) {
		if (i == 2)
			continue;
		memcpy(joined.v[k].pubkey, ch.vkeys[i].pub, PUBKEY_LEN);
		joined.v[k++].stake = 50;
	}
}

static void chain_teardown(void)
{
	for (size_t i = 0; i < ch.n; i++)
		block_free(&ch.blocks[i]);
	for (int i = 0; i < NVAL; i++)
		key_free(&ch.vkeys[i]);
	key_free(&ch.tenant);
	key_free(&ch.provider);
}

/* Four blocks: a lease opened, started, metered three times, then an empty
 * block. Certificates signed by all three, or by two holding 201 of 301. */
static void build_chain(void)
{
	struct spec s;

	memset(&s, 0, sizeof(s));
	spec_add(&s, tx_open(), false);
	spec_add(&s, tx_transfer(CHAIN), false);
	s.signers = 7;
	append_block(&s);

	memset(&s, 0, sizeof(s));
	spec_add(&s, tx_start(), false);
	spec_add(&s, tx_usage(), true);
	s.signers = 5;
	append_block(&s);

	memset(&s, 0, sizeof(s));
	spec_add(&s, tx_usage(), true);
	spec_add(&s, tx_usage(), true);
	s.signers = 6;
	append_block(&s);

	memset(&s, 0, sizeof(s));
	s.signers = 7;
	append_block(&s);
}

static void verify_ok(struct chain_verifier *v, size_t i)
{
	char why[256] = "";

	ck_assert_msg(chain_verify_block(v, &ch.blocks[i], &ch.certs[i], ch.next_vals[i], why) == 0,
		      "block %zu: %s", i + 1, why);
}

/* A verifier that has accepted the first k blocks. */
static void verifier_at(struct chain_verifier *v, size_t k)
{
	ck_assert_int_eq(chain_verifier_from_genesis(v, &ch.g), 0);
	for (size_t i = 0; i < k; i++)
		verify_ok(v, i);
}

/* --- tests --------------------------------------------------------------- */

START_TEST(test_chain_accepted)
{
	struct chain_verifier v;
	uint8_t gh[HASH_LEN], id[HASH_LEN];

	build_chain();
	ck_assert_int_eq(chain_verifier_from_genesis(&v, &ch.g), 0);
	genesis_hash(&ch.g, gh);
	ck_assert_mem_eq(v.last_block_id, gh, HASH_LEN);
	ck_assert_uint_eq(v.height, 0);
	for (size_t i = 0; i < ch.n; i++)
		verify_ok(&v, i);
	ck_assert_uint_eq(v.height, 4);
	ck_assert_uint_eq(v.usage.size, 3);
	block_id(&ch.blocks[3].header, id);
	ck_assert_mem_eq(v.last_block_id, id, HASH_LEN);

	/* The same chain through its encodings, as an auditor receives it. */
	ck_assert_int_eq(chain_verifier_from_genesis(&v, &ch.g), 0);
	for (size_t i = 0; i < ch.n; i++) {
		struct block b;
		struct commit_cert c;
		struct enc e;
		char why[256];

		enc_init(&e);
		block_encode(&e, &ch.blocks[i]);
		ck_assert_int_eq(block_decode(&b, e.buf, e.len), 0);
		enc_free(&e);
		enc_init(&e);
		cert_encode(&e, &ch.certs[i]);
		ck_assert_int_eq(cert_decode(&c, e.buf, e.len), 0);
		enc_free(&e);
		ck_assert_msg(chain_verify_block(&v, &b, &c, NULL, why) == 0, "%s", why);
		block_free(&b);
	}
}
END_TEST

/* Verifies blocks[i] (possibly replaced) against a verifier at i; it must
 * fail with rc and leave the verifier untouched. */
static void expect_fail(size_t i, const struct block *b, const struct commit_cert *c,
			const struct validator_set *next, int rc, const char *why_want)
{
	struct chain_verifier v, before;
	char why[256] = "";

	verifier_at(&v, i);
	before = v;
	ck_assert_int_eq(chain_verify_block(&v, b, c, next, why), rc);
	ck_assert_mem_eq(&v, &before, sizeof(v));
	if (why_want)
		ck_assert_str_eq(why, why_want);
	else
		ck_assert_str_ne(why, "");
}

START_TEST(test_order_and_links)
{
	build_chain();
	/* Block 2 straight after genesis, block 1 twice. */
	expect_fail(0, &ch.blocks[1], &ch.certs[1], NULL, TALLY_E_HEIGHT,
		    "block 2: height out of sequence, expected 1 after block 0");
	expect_fail(1, &ch.blocks[0], &ch.certs[0], NULL, TALLY_E_HEIGHT, NULL);
	/* A certificate for another block. */
	expect_fail(1, &ch.blocks[1], &ch.certs[2], NULL, TALLY_E_CERT,
		    "block 2: commit certificate is for another block");
	expect_fail(1, &ch.blocks[1], NULL, NULL, TALLY_E_CERT, "block 2: no commit certificate");
}
END_TEST

START_TEST(test_tampered_txs)
{
	struct block b;

	build_chain();
	/* The header as it was, the transactions swapped. */
	b = ch.blocks[2];
	struct block_tx swapped[2] = { ch.blocks[2].txs[1], ch.blocks[2].txs[0] };
	b.txs = swapped;
	expect_fail(2, &b, &ch.certs[2], NULL, TALLY_E_TXROOT,
		    "block 3: transactions root mismatch");
	/* One dropped. */
	b.ntx = 1;
	expect_fail(2, &b, &ch.certs[2], NULL, TALLY_E_TXROOT,
		    "block 3: transactions root mismatch");
}
END_TEST

/* Faults a dishonest validator set could sign: each block below carries a
 * valid certificate, so only the specific check can catch it. */
static void tweak_time(struct block_header *h) { h->time_ns = ch.time_ns; }
static void tweak_prev(struct block_header *h) { h->prev_block_id[0] ^= 1; }
static void tweak_last_commit(struct block_header *h) { h->last_commit_hash[31] ^= 1; }
static void tweak_vals(struct block_header *h) { h->validators_hash[3] ^= 1; }
static void tweak_proposer(struct block_header *h) { memcpy(h->proposer, ch.tenant.pub, PUBKEY_LEN); }
static void tweak_usage_size(struct block_header *h) { h->usage_size++; }
static void tweak_usage_root(struct block_header *h) { h->usage_root[0] ^= 1; }
static void tweak_chain(struct block_header *h) { strcpy(h->chain_id, "tally-other"); }

static void expect_signed_fault(struct spec *s, int rc, const char *why_want)
{
	struct block b;
	struct commit_cert c;
	struct merkle_frontier u;

	make_block(&b, &c, s, &u);
	expect_fail(ch.n, &b, &c, s->next, rc, why_want);
	block_free(&b);
}

START_TEST(test_signed_faults)
{
	struct spec s;

	build_chain();
	struct { void (*tweak)(struct block_header *); int rc; const char *why; } cases[] = {
		{ tweak_time, TALLY_E_RANGE, NULL },
		{ tweak_prev, TALLY_E_LINK, "block 5: previous block id does not match block 4" },
		{ tweak_last_commit, TALLY_E_LINK,
		  "block 5: last commit hash does not match the certificate of block 4" },
		{ tweak_vals, TALLY_E_VALSET,
		  "block 5: validators hash does not match the current validator set" },
		{ tweak_proposer, TALLY_E_UNAUTHORIZED, NULL },
		{ tweak_usage_size, TALLY_E_USAGEROOT,
		  "block 5: usage log size mismatch (recomputed 3, header says 4)" },
		{ tweak_usage_root, TALLY_E_USAGEROOT,
		  "block 5: usage log root mismatch (the header's is not the root of its 3 records)" },
		{ tweak_chain, TALLY_E_CHAIN_ID, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&s, 0, sizeof(s));
		spec_add(&s, tx_transfer(CHAIN), false);
		s.signers = 7;
		s.tweak = cases[i].tweak;
		expect_signed_fault(&s, cases[i].rc, cases[i].why);
	}

	/* A USAGE transaction left out of the usage log. */
	memset(&s, 0, sizeof(s));
	spec_add(&s, tx_usage(), true);
	s.signers = 7;
	s.usage_not_logged = true;
	expect_signed_fault(&s, TALLY_E_USAGEROOT, NULL);

	/* A transaction for another chain. */
	memset(&s, 0, sizeof(s));
	spec_add(&s, tx_transfer("tally-other"), false);
	s.signers = 7;
	expect_signed_fault(&s, TALLY_E_CHAIN_ID,
			    "block 5: transaction 0 is for chain 'tally-other'");

	/* Signed, for this chain, but refused by a rule that needs no state: a
	 * verifier that does not execute (from a checkpoint) refuses it too. */
	{
		struct tx t = { .kind = TX_TRANSFER };

		t.u.transfer.to[0] = 1;   /* the identity point: small order */
		t.u.transfer.amount = 5;
		memset(&s, 0, sizeof(s));
		s.txs[s.ntx++] = sign_tx(&t, &ch.tenant, &ch.tenant_nonce);
		s.signers = 7;
		expect_signed_fault(&s, TALLY_E_KEY, "block 5: transaction 0 (TRANSFER): the "
				    "recipient's key is not a valid Ed25519 key (small order or "
				    "not canonical)");
	}
	{
		struct tx t = { .kind = TX_LEASE_OPEN };
		struct block_tx bt;

		memset(&s, 0, sizeof(s));
		s.txs[s.ntx++] = bt = tx_open();   /* the contract as built */
		ck_assert_int_eq(tx_decode(&t, bt.bytes, bt.len), 0);
		free((void *)bt.bytes);
		ch.tenant_nonce--;
		t.u.open.deposit = 1;   /* below the first interval's most */
		s.txs[0] = sign_tx(&t, &ch.tenant, &ch.tenant_nonce);
		s.signers = 7;
		expect_signed_fault(&s, TALLY_E_CONTRACT, NULL);
	}

	/* A transaction whose signature does not verify. */
	memset(&s, 0, sizeof(s));
	spec_add(&s, tx_transfer(CHAIN), false);
	/* Bytes this test signed and owns, not hashed yet (spec_add). */
	((uint8_t *)s.txs[0].bytes)[s.txs[0].len - 1] ^= 0x01;
	s.signers = 7;
	expect_signed_fault(&s, TALLY_E_SIGNATURE, NULL);

	/* A transaction that does not decode. */
	memset(&s, 0, sizeof(s));
	spec_add(&s, tx_transfer(CHAIN), false);
	((uint8_t *)s.txs[0].bytes)[0] = 9;
	s.signers = 7;
	expect_signed_fault(&s, TALLY_E_VERSION, NULL);

	/* Two thirds of the stake or less: 200 of 301, then 100 of 301 (exactly
	 * two thirds is in test_block.c). */
	memset(&s, 0, sizeof(s));
	s.signers = 3;
	expect_signed_fault(&s, TALLY_E_QUORUM,
			    "block 5: commit certificate signers hold 2/3 of the stake or less");
	memset(&s, 0, sizeof(s));
	s.signers = 4;
	expect_signed_fault(&s, TALLY_E_QUORUM, NULL);
	/* A signer outside the set. */
	memset(&s, 0, sizeof(s));
	s.signers = 7 | 8;
	expect_signed_fault(&s, TALLY_E_CERT, NULL);
}
END_TEST

START_TEST(test_validator_set_change)
{
	struct spec s;
	struct chain_verifier v;
	char why[256];

	build_chain();
	/* Block 5 hands over to {vkeys 0, 1, 3}; block 6 is signed by them. */
	memset(&s, 0, sizeof(s));
	s.signers = 7;
	s.next = &joined;
	append_block(&s);
	memset(&s, 0, sizeof(s));
	spec_add(&s, tx_usage(), true);
	s.signers = 1 | 2 | 8;
	append_block(&s);

	verifier_at(&v, 6);
	ck_assert_mem_eq(&v.vals, &joined, sizeof(joined));

	/* The new set must be given, and be the one named. */
	expect_fail(4, &ch.blocks[4], &ch.certs[4], NULL, TALLY_E_VALSET, NULL);
	struct validator_set wrong = joined;
	wrong.v[0].stake++;
	expect_fail(4, &ch.blocks[4], &ch.certs[4], &wrong, TALLY_E_VALSET, NULL);

	/* After the change the old member vkeys[2] no longer counts. */
	verifier_at(&v, 5);
	struct commit_cert c;
	sign_cert(&c, &ch.blocks[5].header, 1 | 4);
	ck_assert_int_eq(chain_verify_block(&v, &ch.blocks[5], &c, NULL, why), TALLY_E_CERT);
}
END_TEST

/* Flips every byte of every encoded block and certificate of the chain;
 * each change must be refused at its own block, by the decoder or by the
 * verifier. */
START_TEST(test_every_byte_flip_detected)
{
	struct chain_verifier at[MAXBLOCKS + 1];
	size_t flips = 0;

	build_chain();
	ck_assert_int_eq(chain_verifier_from_genesis(&at[0], &ch.g), 0);
	for (size_t i = 0; i < ch.n; i++) {
		at[i + 1] = at[i];
		verify_ok(&at[i + 1], i);
	}
	for (size_t i = 0; i < ch.n; i++) {
		struct enc eb, ec;

		enc_init(&eb);
		block_encode(&eb, &ch.blocks[i]);
		enc_init(&ec);
		cert_encode(&ec, &ch.certs[i]);
		ck_assert_int_eq(enc_error(&eb) | enc_error(&ec), 0);
		for (int which = 0; which < 2; which++) {
			uint8_t *p = which ? ec.buf : eb.buf;
			size_t n = which ? ec.len : eb.len;

			for (size_t j = 0; j < n; j++) {
				struct chain_verifier v = at[i];
				struct block b;
				struct commit_cert c;
				char why[256];
				int rc;

				p[j] ^= 0x01;
				rc = block_decode(&b, eb.buf, eb.len);
				if (!rc) {
					rc = cert_decode(&c, ec.buf, ec.len);
					if (!rc)
						rc = chain_verify_block(&v, &b, &c, NULL, why);
					block_free(&b);
				}
				ck_assert_msg(rc != 0, "block %zu: %s byte %zu flipped went unnoticed",
					      i + 1, which ? "certificate" : "block", j);
				p[j] ^= 0x01;
				flips++;
			}
		}
		enc_free(&eb);
		enc_free(&ec);
	}
	ck_assert_uint_gt(flips, 2000);
}
END_TEST

static void assert_same_verifier(const struct chain_verifier *a, const struct chain_verifier *b)
{
	uint8_t ra[HASH_LEN], rb[HASH_LEN];

	ck_assert_str_eq(a->chain_id, b->chain_id);
	ck_assert_uint_eq(a->height, b->height);
	ck_assert_uint_eq(a->time_ns, b->time_ns);
	ck_assert_mem_eq(a->last_block_id, b->last_block_id, HASH_LEN);
	ck_assert_mem_eq(a->last_cert_hash, b->last_cert_hash, HASH_LEN);
	valset_hash(&a->vals, ra);
	valset_hash(&b->vals, rb);
	ck_assert_mem_eq(ra, rb, HASH_LEN);
	ck_assert_uint_eq(a->usage.size, b->usage.size);
	merkle_frontier_root(&a->usage, ra);
	merkle_frontier_root(&b->usage, rb);
	ck_assert_mem_eq(ra, rb, HASH_LEN);
}

static void checkpoint_at(struct chain_checkpoint *cp, size_t k)
{
	struct chain_verifier v;

	verifier_at(&v, k);
	memset(cp, 0, sizeof(*cp));
	cp->header = ch.blocks[k - 1].header;
	cp->cert = ch.certs[k - 1];
	cp->vals = v.vals;
	cp->usage = v.usage;
}

START_TEST(test_checkpoint)
{
	struct chain_checkpoint cp;
	struct chain_verifier v, full;
	uint8_t pin[HASH_LEN];
	char why[256], want[256], hex[17];

	build_chain();
	checkpoint_at(&cp, 2);
	block_id(&ch.blocks[1].header, pin);
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, pin, &ch.g, why), 0);
	verifier_at(&full, 2);
	assert_same_verifier(&v, &full);
	verify_ok(&v, 2);
	verify_ok(&v, 3);
	ck_assert_uint_eq(v.height, 4);
	ck_assert_uint_eq(v.usage.size, 3);

	/* Not the pinned block. */
	uint8_t other[HASH_LEN];
	memcpy(other, pin, HASH_LEN);
	other[0] ^= 1;
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, other, &ch.g, why), TALLY_E_LINK);
	hex_encode(pin, 8, hex);
	snprintf(want, sizeof(want), "block 2: its id %s... is not the pinned block id", hex);
	ck_assert_msg(strncmp(why, want, strlen(want)) == 0, "%s", why);
	/* A block of another chain, pinned by its own id. */
	checkpoint_at(&cp, 2);
	strcpy(cp.header.chain_id, "tally-other");
	block_id(&cp.header, other);
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, other, &ch.g, why),
			 TALLY_E_CHAIN_ID);
	ck_assert_str_eq(why, "block 2: the checkpoint is for chain 'tally-other', the genesis is"
			 " chain '" CHAIN "'");
	/* A usage frontier that is not the header's log. */
	checkpoint_at(&cp, 2);
	cp.usage.edge[0][0] ^= 1;
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, pin, &ch.g, why), TALLY_E_USAGEROOT);
	checkpoint_at(&cp, 2);
	merkle_frontier_init(&cp.usage);
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, pin, &ch.g, why), TALLY_E_USAGEROOT);
	/* A validator set other than the header names. */
	checkpoint_at(&cp, 2);
	cp.vals.v[0].stake++;
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, pin, &ch.g, why), TALLY_E_VALSET);
	ck_assert_str_eq(why, "block 2: the validator set given for block 3 does not match the"
			 " header's next validators hash");
	/* A forged or too thin certificate. */
	checkpoint_at(&cp, 2);
	cp.cert.sigs[0].sig[0] ^= 1;
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, pin, &ch.g, why), TALLY_E_SIGNATURE);
	checkpoint_at(&cp, 2);
	cp.cert.n = 1;
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, pin, &ch.g, why), TALLY_E_QUORUM);
	checkpoint_at(&cp, 2);
	cp.cert = ch.certs[0];
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, pin, &ch.g, why), TALLY_E_CERT);
	/* The checkpoint's certificate is the one block 3 links to. */
	checkpoint_at(&cp, 2);
	sign_cert(&cp.cert, &cp.header, 7);   /* valid, but not the chain's */
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, pin, &ch.g, why), 0);
	ck_assert_int_eq(chain_verify_block(&v, &ch.blocks[2], &ch.certs[2], NULL, why),
			 TALLY_E_LINK);
}
END_TEST

START_TEST(test_checkpoint_across_set_change)
{
	struct spec s;
	struct chain_checkpoint cp;
	struct chain_verifier v;
	uint8_t pin[HASH_LEN];
	char why[256];

	build_chain();
	memset(&s, 0, sizeof(s));
	s.signers = 7;
	s.next = &joined;
	append_block(&s);
	memset(&s, 0, sizeof(s));
	s.signers = 1 | 2 | 8;
	append_block(&s);
	/* Pinned at block 5, where the set changes: vals is the new set. */
	checkpoint_at(&cp, 5);
	ck_assert_mem_eq(&cp.vals, &joined, sizeof(joined));
	block_id(&ch.blocks[4].header, pin);
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, pin, &ch.g, why), 0);
	verify_ok(&v, 5);
	/* The old set is not the one the next block needs. */
	cp.vals = ch.g.validators;
	ck_assert_int_eq(chain_verifier_from_checkpoint(&v, &cp, pin, &ch.g, why), TALLY_E_VALSET);
}
END_TEST

/* The example genesis's validators and accounts, as the hash encodes them
 * (docs/FORMATS.md section 7), after the head already in e; the hash of it
 * all must be the genesis hash. Frees e. */
static void expect_genesis_hash(const struct genesis *g, struct enc *e)
{
	uint8_t h1[HASH_LEN], h2[HASH_LEN];

	enc_u32(e, 2);
	enc_fixed(e, ch.vkeys[0].pub, PUBKEY_LEN);
	enc_u64(e, 7);
	enc_fixed(e, ch.vkeys[1].pub, PUBKEY_LEN);
	enc_u64(e, 1000000);
	enc_u32(e, 2);
	enc_fixed(e, ch.vkeys[0].pub, PUBKEY_LEN);
	enc_u64(e, 0);
	enc_fixed(e, ch.vkeys[1].pub, PUBKEY_LEN);
	enc_u64(e, 1000000000);
	sha256(e->buf, e->len, h2);
	enc_free(e);
	genesis_hash(g, h1);
	ck_assert_mem_eq(h1, h2, HASH_LEN);
}

/* --- genesis ------------------------------------------------------------- */

static char *genesis_json(const char *extra_top, const char *stake, const char *second_pub)
{
	char a[65], b[65], *out;

	hex_encode(ch.vkeys[1].pub, PUBKEY_LEN, a);
	hex_encode(ch.vkeys[0].pub, PUBKEY_LEN, b);
	ck_assert_int_gt(asprintf(&out,
		"{ \"chain_id\": \"tally-dev\", \"genesis_time_ns\": 1700000000000000000,%s"
		"  \"validators\": [ { \"pubkey\": \"%s\", \"stake\": %s, \"name\": \"node1\","
		"                      \"api\": \"http://127.0.0.1:7655\" },"
		"                    { \"pubkey\": \"%s\", \"stake\": 7 } ],"
		"  \"accounts\": [ { \"pubkey\": \"%s\", \"balance\": 1000000000 },"
		"                  { \"pubkey\": \"%s\", \"balance\": 0 } ] }",
		extra_top, a, stake, second_pub ? second_pub : b, a, b), 0);
	return out;
}

START_TEST(test_genesis_parse)
{
	struct genesis g, back;
	char why[256], *json;
	uint8_t h1[HASH_LEN], h2[HASH_LEN];

	json = genesis_json("", "1000000", NULL);
	ck_assert_msg(genesis_parse(&g, json, why) == 0, "%s", why);
	free(json);
	ck_assert_str_eq(g.chain_id, "tally-dev");
	ck_assert_uint_eq(g.genesis_time_ns, 1700000000000000000ull);
	ck_assert_uint_eq(g.validators.n, 2);
	/* Sorted by key, with the names following their validators. */
	ck_assert_mem_eq(g.validators.v[0].pubkey, ch.vkeys[0].pub, PUBKEY_LEN);
	ck_assert_uint_eq(g.validators.v[0].stake, 7);
	ck_assert_str_eq(g.info[0].name, "");
	ck_assert_uint_eq(g.validators.v[1].stake, 1000000);
	ck_assert_str_eq(g.info[1].name, "node1");
	ck_assert_str_eq(g.info[1].api, "http://127.0.0.1:7655");
	ck_assert_uint_eq(g.naccounts, 2);
	ck_assert_mem_eq(g.accounts[0].pubkey, ch.vkeys[0].pub, PUBKEY_LEN);
	ck_assert_uint_eq(g.accounts[1].balance, 1000000000);

	/* The hash is over the documented encoding. */
	struct enc e;
	enc_init(&e);
	enc_u8(&e, 1);
	enc_str(&e, "tally-dev");
	enc_u64(&e, 1700000000000000000ull);
	expect_genesis_hash(&g, &e);
	genesis_hash(&g, h1);

	/* JSON round trip. */
	json = genesis_to_json(&g);
	ck_assert_ptr_nonnull(json);
	ck_assert_msg(genesis_parse(&back, json, why) == 0, "%s", why);
	free(json);
	genesis_hash(&back, h2);
	ck_assert_mem_eq(h1, h2, HASH_LEN);
	ck_assert_str_eq(back.info[1].name, "node1");
	genesis_free(&back);

	/* From a file, and a file that is not there. */
	char path[96];
	snprintf(path, sizeof(path), "%s/genesis-XXXXXX", base);
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	json = genesis_to_json(&g);
	ck_assert_int_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	free(json);
	int rc = genesis_load(&back, path, why);
	unlink(path);
	ck_assert_msg(rc == 0, "%s", why);
	genesis_hash(&back, h2);
	ck_assert_mem_eq(h1, h2, HASH_LEN);
	genesis_free(&back);
	ck_assert_int_eq(genesis_load(&back, path, why), TALLY_E_NOTFOUND);
	ck_assert_ptr_nonnull(strstr(why, path));

	/* A chain file given for a genesis (both come from a node) is named,
	 * however large, and so is the binary one that is not. */
	static const char chain_head[] = "TALLYCHN\0\0\0\1";
	snprintf(path, sizeof(path), "%s/genesis-XXXXXX", base);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, chain_head, sizeof(chain_head)), (ssize_t)sizeof(chain_head));
	for (int i = 0; i < 40; i++) {
		static char junk[8192];
		ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	}
	close(fd);
	rc = genesis_load(&back, path, why);
	ck_assert_int_eq(rc, TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "is a chain file (tally chain export), not a genesis file"),
		      "%s", why);
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "{\"a\0", 5), 5);
	close(fd);
	rc = genesis_load(&back, path, why);
	unlink(path);
	ck_assert_int_eq(rc, TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "contains a NUL byte"), "%s", why);
	genesis_free(&g);
}
END_TEST

static void expect_bad_genesis(char *json, const char *fragment)
{
	struct genesis g;
	char why[256] = "";

	ck_assert_int_ne(genesis_parse(&g, json, why), 0);
	ck_assert_msg(strstr(why, fragment), "why \"%s\" lacks \"%s\"", why, fragment);
	ck_assert_ptr_null(g.accounts);
	free(json);
}

START_TEST(test_genesis_strict)
{
	char a[65];

	hex_encode(ch.vkeys[1].pub, PUBKEY_LEN, a);
	expect_bad_genesis(genesis_json(" \"extra\": 1,", "5", NULL), "unknown key \"extra\"");
	expect_bad_genesis(genesis_json(" \"chain_id\": \"x\",", "5", NULL), "not valid JSON");
	expect_bad_genesis(genesis_json("", "0", NULL), "validators[0]: \"stake\"");
	expect_bad_genesis(genesis_json("", "-3", NULL), "validators[0]: \"stake\"");
	expect_bad_genesis(genesis_json("", "1.5", NULL), "validators[0]: \"stake\"");
	expect_bad_genesis(genesis_json("", "\"5\"", NULL), "validators[0]: \"stake\"");
	expect_bad_genesis(genesis_json("", "5", a), "listed twice");
	expect_bad_genesis(genesis_json("", "5", "00zz"), "validators[1]: \"pubkey\"");
	expect_bad_genesis(genesis_json("", "5, \"colour\": \"red\"", NULL),
			   "validators[0]: unknown key \"colour\"");
	expect_bad_genesis(strdup("{ \"chain_id\": \"Tally\", \"genesis_time_ns\": 1,"
				  " \"validators\": [], \"accounts\": [] }"), "chain_id");
	expect_bad_genesis(strdup("{ \"chain_id\": \"t\", \"genesis_time_ns\": 1,"
				  " \"validators\": [], \"accounts\": [] }"), "1 to 128 validators");
	expect_bad_genesis(strdup("{ \"chain_id\": \"t\", \"genesis_time_ns\": 1,"
				  " \"accounts\": [] }"), "\"validators\" is missing");
	expect_bad_genesis(strdup("[1, 2]"), "must be a JSON object");
	/* Stakes that together pass 2^63 - 1, the cap on the supply. */
	char *big;
	char b[65], c[65];
	hex_encode(ch.vkeys[0].pub, PUBKEY_LEN, b);
	hex_encode(ch.vkeys[2].pub, PUBKEY_LEN, c);
	ck_assert_int_gt(asprintf(&big,
		"{ \"chain_id\": \"t\", \"genesis_time_ns\": 1, \"validators\": ["
		" { \"pubkey\": \"%s\", \"stake\": 4611686018427387904 },"
		" { \"pubkey\": \"%s\", \"stake\": 4611686018427387903 },"
		" { \"pubkey\": \"%s\", \"stake\": 1 } ], \"accounts\": [] }",
		a, b, c), 0);
	expect_bad_genesis(big, "exceeds 2^63 - 1");
	/* A small-order key (the identity), as a validator or an account. */
	expect_bad_genesis(genesis_json("", "5",
			   "0100000000000000000000000000000000000000000000000000000000000000"),
			   "not a valid Ed25519 key");
}
END_TEST

#define PARAMS_JSON(ub, ppm, jail, minst, maxv, live)					\
	" \"params\": { \"unbonding_blocks\": " ub ", \"slash_ppm\": " ppm ","		\
	" \"jail_blocks\": " jail ", \"min_self_stake\": " minst ","			\
	" \"max_validators\": " maxv ", \"liveness_window\": " live " },"

/* Version 2: the parameters are read, hashed after genesis_time_ns and kept
 * through JSON; a file without them is version 1 with its old hash. */
START_TEST(test_genesis_params)
{
	struct genesis g, back;
	char why[256] = "", *json;
	uint8_t h1[HASH_LEN], h2[HASH_LEN];
	struct enc e;

	json = genesis_json(PARAMS_JSON("10", "250000", "5", "7", "3", "12"), "1000000", NULL);
	ck_assert_msg(genesis_parse(&g, json, why) == 0, "%s", why);
	free(json);
	ck_assert_uint_eq(g.version, 2);
	ck_assert_uint_eq(g.params.unbonding_blocks, 10);
	ck_assert_uint_eq(g.params.slash_ppm, 250000);
	ck_assert_uint_eq(g.params.jail_blocks, 5);
	ck_assert_uint_eq(g.params.min_self_stake, 7);
	ck_assert_uint_eq(g.params.max_validators, 3);
	ck_assert_uint_eq(g.params.liveness_window, 12);
	enc_init(&e);
	enc_u8(&e, 2);
	enc_str(&e, "tally-dev");
	enc_u64(&e, 1700000000000000000ull);
	enc_u64(&e, 10);
	enc_u32(&e, 250000);
	enc_u64(&e, 5);
	enc_u64(&e, 7);
	enc_u32(&e, 3);
	enc_u64(&e, 12);
	ck_assert_uint_eq(e.len, 1 + 4 + 9 + 8 + CHAIN_PARAMS_LEN);
	expect_genesis_hash(&g, &e);
	json = genesis_to_json(&g);
	ck_assert_msg(genesis_parse(&back, json, why) == 0, "%s", why);
	free(json);
	genesis_hash(&g, h1);
	genesis_hash(&back, h2);
	ck_assert_mem_eq(h1, h2, HASH_LEN);
	ck_assert_mem_eq(&back.params, &g.params, sizeof(g.params));
	genesis_free(&back);
	genesis_free(&g);

	/* Version 1 runs with the rules it began with. */
	json = genesis_json("", "1000000", NULL);
	ck_assert_msg(genesis_parse(&g, json, why) == 0, "%s", why);
	free(json);
	ck_assert_uint_eq(g.version, 1);
	ck_assert_uint_eq(g.params.unbonding_blocks, 0);
	ck_assert_uint_eq(g.params.max_validators, VALIDATORS_MAX);
	json = genesis_to_json(&g);
	ck_assert_ptr_null(strstr(json, "params"));
	free(json);
	genesis_free(&g);

	/* Out of range, each with its reason. */
	expect_bad_genesis(genesis_json(PARAMS_JSON("10", "1000001", "5", "7", "3", "0"), "9",
					NULL), "slash_ppm");
	expect_bad_genesis(genesis_json(PARAMS_JSON("10", "1", "5", "0", "3", "0"), "9", NULL),
			   "min_self_stake");
	expect_bad_genesis(genesis_json(PARAMS_JSON("10", "1", "5", "7", "129", "0"), "9", NULL),
			   "max_validators");
	expect_bad_genesis(genesis_json(PARAMS_JSON("10", "1", "5", "7", "3", "1000001"), "9",
					NULL), "\"liveness_window\" must be 0 (off) or 1..1000000");
	expect_bad_genesis(genesis_json(PARAMS_JSON("10", "1", "5", "7", "1", "0"), "9", NULL),
			   "above \"max_validators\" 1");
	expect_bad_genesis(genesis_json(PARAMS_JSON("10", "1", "5", "8", "3", "0"), "9", NULL),
			   "below \"min_self_stake\" 8");
	expect_bad_genesis(genesis_json(" \"params\": { \"unbonding_blocks\": 1 },", "9", NULL),
			   "\"slash_ppm\" is missing");
	expect_bad_genesis(genesis_json(" \"params\": { \"colour\": 1 },", "9", NULL),
			   "params: unknown key \"colour\"");
}
END_TEST

/* The one clock rule: at most the bound ahead of the judging node's clock,
 * at the edge and one nanosecond past it, and no overflow near the end of
 * time. */
START_TEST(test_block_time_bound)
{
	const uint64_t now = 1700000000000000000ull, bound = CHAIN_MAX_FUTURE_NS;
	char why[WHY_MAX] = "";

	ck_assert_int_eq(chain_check_block_time(now - 1, now, bound, why), 0);
	ck_assert_int_eq(chain_check_block_time(now + bound, now, bound, why), 0);
	ck_assert_int_eq(chain_check_block_time(now + bound + 1, now, bound, why), TALLY_E_FUTURE);
	ck_assert_int_eq(chain_check_block_time(now + 3600 * 1000000000ull, now, bound, why),
			 TALLY_E_FUTURE);
	ck_assert_msg(strstr(why, "3600000 ms ahead of this node's clock (at most 3000 ms"), "%s",
		      why);
	ck_assert_int_eq(chain_check_block_time(UINT64_MAX, UINT64_MAX - 5, bound, why), 0);
}
END_TEST

Suite *chain_suite(void)
{
	Suite *s = suite_create("chain");
	TCase *tc = tcase_create("chain");

	tcase_add_unchecked_fixture(tc, case_begin, case_end);
	tcase_add_checked_fixture(tc, chain_setup, chain_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_chain_accepted);
	tcase_add_test(tc, test_order_and_links);
	tcase_add_test(tc, test_tampered_txs);
	tcase_add_test(tc, test_signed_faults);
	tcase_add_test(tc, test_validator_set_change);
	tcase_add_test(tc, test_every_byte_flip_detected);
	tcase_add_test(tc, test_checkpoint);
	tcase_add_test(tc, test_checkpoint_across_set_change);
	tcase_add_test(tc, test_genesis_parse);
	tcase_add_test(tc, test_genesis_strict);
	tcase_add_test(tc, test_genesis_params);
	tcase_add_test(tc, test_block_time_bound);
	suite_add_tcase(s, tc);
	return s;
}
