/* The example objects of docs/FORMATS.md, built from fixed key seeds so they
 * are the same on every machine (Ed25519 signatures are deterministic).
 *
 * Shared by tests/vectors/gen.c, which prints them for the document, and
 * tests/unit/test_vectors.c, which checks the document still matches the
 * code. Header-only so neither needs a build rule of its own. */
#ifndef TALLY_TESTS_VECTORS_EXAMPLES_H
#define TALLY_TESTS_VECTORS_EXAMPLES_H

#include <stdlib.h>
#include <string.h>

#include "contracts/contract.h"
#include "lib/chain/block.h"
#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/errors.h"
#include "lib/chain/genesis.h"
#include "lib/merkle.h"
#include "lib/chain/tx.h"

#define EXAMPLE_CHAIN "tally-dev"
#define EXAMPLE_GENESIS_TIME_NS 1700000000000000000ull
#define EXAMPLE_NOW_S 1700000000ull
#define EXAMPLES_MAX 32

struct example_vector {
	const char *name;
	uint8_t *bytes;
	size_t len;
};

struct examples {
	/* seed 32 x 0x01: the tenant; seed 32 x 0x02: the provider, which is
	 * also the only validator of the example chain */
	struct tally_key tenant, provider;
	struct genesis genesis;
	uint8_t genesis_hash[HASH_LEN];      /* every signature is bound to it */
	struct genesis_account accounts[2];
	struct lease_contract contract;
	struct tx open, start, usage;
	struct block_header header;
	struct commit_cert cert;
	size_t n;
	struct example_vector v[EXAMPLES_MAX];
};

static inline void example_add(struct examples *x, const char *name, const void *p, size_t n)
{
	struct example_vector *v;

	if (x->n >= EXAMPLES_MAX)
		abort();
	v = &x->v[x->n++];
	v->name = name;
	v->bytes = malloc(n ? n : 1);
	if (!v->bytes)
		abort();
	memcpy(v->bytes, p, n);
	v->len = n;
}

/* Adds the encoding in e (and frees it); returns the vector. */
static inline struct example_vector *example_add_enc(struct examples *x, const char *name,
						     struct enc *e)
{
	if (enc_error(e))
		abort();
	example_add(x, name, e->buf, e->len);
	enc_free(e);
	return &x->v[x->n - 1];
}

static inline void example_add_hash(struct examples *x, const char *name, const void *p,
				    size_t n)
{
	uint8_t h[HASH_LEN];

	sha256(p, n, h);
	example_add(x, name, h, HASH_LEN);
}

static inline void example_seed(uint8_t seed[32], uint8_t b)
{
	memset(seed, b, 32);
}

static inline void example_contract(struct examples *x)
{
	struct lease_contract *c = &x->contract;

	memset(c, 0, sizeof(*c));
	c->version = CONTRACT_VERSION;
	strcpy(c->chain_id, EXAMPLE_CHAIN);
	memcpy(c->tenant, x->tenant.pub, PUBKEY_LEN);
	memcpy(c->provider, x->provider.pub, PUBKEY_LEN);
	c->nonce = 0;
	c->expiry = EXAMPLE_NOW_S + 3600;
	c->vm.vcpus = 2;
	c->vm.memory_mib = 2048;
	c->vm.disk_gib = 20;
	c->vm.gpus = 0;
	strcpy(c->vm.image, "debian-12");
	strcpy(c->vm.hostname, "web-1");
	strcpy(c->vm.ssh_key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERE"
	       "RERERERERERERERER tenant@example");
	c->duration_s = 3600;
	c->deposit = 10000000;             /* 10 units */
	c->interval_s = 60;
	c->prices.vcpu_second = 10;
	c->prices.mem_gib_second = 2;
	c->prices.gpu_second = 0;
	c->sla.max_delay_ppm = 50000;      /* 5% */
	c->sla.credit_ppm = 100000;        /* 10% */
}

static inline struct example_vector *example_tx(struct examples *x, struct tx *t,
						const struct tally_key *k, const char *name)
{
	struct enc e;

	if (tx_sign(t, k, x->genesis_hash))
		abort();
	enc_init(&e);
	tx_encode(&e, t);
	return example_add_enc(x, name, &e);
}

static inline void example_genesis(struct examples *x)
{
	struct genesis *g = &x->genesis;
	struct enc e;

	memset(g, 0, sizeof(*g));
	strcpy(g->chain_id, EXAMPLE_CHAIN);
	g->genesis_time_ns = EXAMPLE_GENESIS_TIME_NS;
	g->validators.n = 1;
	memcpy(g->validators.v[0].pubkey, x->provider.pub, PUBKEY_LEN);
	g->validators.v[0].stake = 1000000;
	strcpy(g->info[0].name, "node0");
	/* accounts sorted by public key, as genesis_parse leaves them */
	g->naccounts = 2;
	g->accounts = x->accounts;
	memcpy(x->accounts[0].pubkey, x->tenant.pub, PUBKEY_LEN);
	x->accounts[0].balance = 1000000000;
	memcpy(x->accounts[1].pubkey, x->provider.pub, PUBKEY_LEN);
	x->accounts[1].balance = 5000000;
	if (memcmp(x->accounts[0].pubkey, x->accounts[1].pubkey, PUBKEY_LEN) > 0) {
		struct genesis_account tmp = x->accounts[0];

		x->accounts[0] = x->accounts[1];
		x->accounts[1] = tmp;
	}
	enc_init(&e);
	genesis_encode(&e, g);
	struct example_vector *v = example_add_enc(x, "genesis", &e);
	example_add_hash(x, "genesis.hash", v->bytes, v->len);
}

static inline void example_txs(struct examples *x, uint8_t lease_id[HASH_LEN])
{
	struct example_vector *v;
	struct enc e;

	example_contract(x);
	enc_init(&e);
	contract_encode_to(&e, &x->contract);
	example_add_enc(x, "contract", &e);

	memset(&x->open, 0, sizeof(x->open));
	x->open.version = TX_VERSION;
	x->open.kind = TX_LEASE_OPEN;
	strcpy(x->open.chain_id, EXAMPLE_CHAIN);
	memcpy(x->open.signer, x->tenant.pub, PUBKEY_LEN);
	x->open.nonce = x->contract.nonce;
	x->open.u.open = x->contract;
	/* The exact bytes Ed25519 signs, to show the domain construction. */
	enc_init(&e);
	enc_fixed(&e, "tally/v2/tx", 11);
	enc_u8(&e, 0);
	enc_fixed(&e, x->genesis_hash, HASH_LEN);
	tx_encode_unsigned(&e, &x->open);
	example_add_enc(x, "lease_open.signed_message", &e);
	v = example_tx(x, &x->open, &x->tenant, "lease_open.tx");
	tx_hash(v->bytes, v->len, lease_id);
	example_add(x, "lease_open.hash", lease_id, HASH_LEN);

	memset(&x->start, 0, sizeof(x->start));
	x->start.version = TX_VERSION;
	x->start.kind = TX_LEASE_START;
	strcpy(x->start.chain_id, EXAMPLE_CHAIN);
	memcpy(x->start.signer, x->provider.pub, PUBKEY_LEN);
	x->start.nonce = 0;
	memcpy(x->start.u.start.lease_id, lease_id, HASH_LEN);
	example_tx(x, &x->start, &x->provider, "lease_start.tx");

	memset(&x->usage, 0, sizeof(x->usage));
	x->usage.version = TX_VERSION;
	x->usage.kind = TX_USAGE;
	strcpy(x->usage.chain_id, EXAMPLE_CHAIN);
	memcpy(x->usage.signer, x->provider.pub, PUBKEY_LEN);
	x->usage.nonce = 1;
	struct usage_record *u = &x->usage.u.usage;
	memcpy(u->lease_id, lease_id, HASH_LEN);
	u->seq = 0;
	u->start_ns = EXAMPLE_GENESIS_TIME_NS + 10000000000ull;
	u->end_ns = u->start_ns + 60000000000ull;
	u->cpu_ns = 90000000000ull;          /* 1.5 vCPUs busy on average */
	u->run_delay_ns = 1200000000ull;     /* 1% of 2 vCPUs x 60 s */
	u->gpu_ns = 0;
	u->mem_mib = 2048;
	u->mem_peak_bytes = 1500000000ull;
	u->gpu_source = GPU_SOURCE_NONE;
	enc_init(&e);
	usage_encode_to(&e, u);
	example_add_enc(x, "usage.record", &e);
	v = example_tx(x, &x->usage, &x->provider, "usage.tx");
	example_add_hash(x, "usage.hash", v->bytes, v->len);
	uint8_t leaf[HASH_LEN];
	merkle_leaf_hash(v->bytes, v->len, leaf);
	example_add(x, "usage.leaf", leaf, HASH_LEN);
}

/* Block 1 of the example chain: LEASE_OPEN, LEASE_START, USAGE. */
static inline void example_block(struct examples *x, const uint8_t genesis_hash[HASH_LEN])
{
	struct block b = { 0 };
	struct block_tx txs[3];
	struct merkle_frontier usage;
	uint8_t id[HASH_LEN], leaf[HASH_LEN];
	struct enc e;

	for (int i = 0; i < 3; i++) {
		/* lease_open.tx, lease_start.tx and usage.tx, in that order */
		const char *names[3] = { "lease_open.tx", "lease_start.tx", "usage.tx" };

		for (size_t j = 0; j < x->n; j++)
			if (strcmp(x->v[j].name, names[i]) == 0) {
				txs[i].bytes = x->v[j].bytes;
				txs[i].len = x->v[j].len;
			}
	}
	b.ntx = 3;
	b.txs = txs;

	struct block_header *h = &x->header;
	memset(h, 0, sizeof(*h));
	h->version = BLOCK_VERSION;
	strcpy(h->chain_id, EXAMPLE_CHAIN);
	h->height = 1;
	h->time_ns = EXAMPLE_GENESIS_TIME_NS + 12000000000ull;
	memcpy(h->prev_block_id, genesis_hash, HASH_LEN);
	block_txs_root(&b, h->txs_root);
	merkle_frontier_init(&usage);
	merkle_leaf_hash(txs[2].bytes, txs[2].len, leaf);
	merkle_frontier_append(&usage, leaf);
	h->usage_size = usage.size;
	merkle_frontier_root(&usage, h->usage_root);
	/* The state root is the ledger engine's; the example takes it as given. */
	memset(h->state_root, 0x5a, HASH_LEN);
	valset_hash(&x->genesis.validators, h->validators_hash);
	memcpy(h->next_validators_hash, h->validators_hash, HASH_LEN);
	memcpy(h->proposer, x->provider.pub, PUBKEY_LEN);
	/* last_commit_hash stays zero at height 1 */
	b.header = *h;

	example_add(x, "validators.hash", h->validators_hash, HASH_LEN);
	example_add(x, "block1.txs_root", h->txs_root, HASH_LEN);
	example_add(x, "block1.usage_root", h->usage_root, HASH_LEN);
	enc_init(&e);
	header_encode(&e, h);
	example_add_enc(x, "block1.header", &e);
	block_id(h, id);
	example_add(x, "block1.id", id, HASH_LEN);
	enc_init(&e);
	block_encode(&e, &b);
	example_add_enc(x, "block1", &e);

	struct vote vote = { .type = VOTE_PRECOMMIT, .height = 1, .round = 0 };
	memcpy(vote.block_id, id, HASH_LEN);
	enc_init(&e);
	vote_encode(&e, &vote);
	example_add_enc(x, "block1.precommit", &e);

	memset(&x->cert, 0, sizeof(x->cert));
	x->cert.height = 1;
	x->cert.round = 0;
	memcpy(x->cert.block_id, id, HASH_LEN);
	x->cert.n = 1;
	memcpy(x->cert.sigs[0].validator, x->provider.pub, PUBKEY_LEN);
	if (vote_sign(&vote, &x->provider, x->genesis_hash, x->cert.sigs[0].sig))
		abort();
	enc_init(&e);
	cert_encode(&e, &x->cert);
	struct example_vector *v = example_add_enc(x, "block1.cert", &e);
	example_add_hash(x, "block1.cert.hash", v->bytes, v->len);
}

static inline void examples_build(struct examples *x)
{
	uint8_t seed[32], lease_id[HASH_LEN], gen_hash[HASH_LEN];

	memset(x, 0, sizeof(*x));
	example_seed(seed, 0x01);
	if (key_from_seed(&x->tenant, seed))
		abort();
	example_seed(seed, 0x02);
	if (key_from_seed(&x->provider, seed))
		abort();
	example_add(x, "key.tenant", x->tenant.pub, PUBKEY_LEN);
	example_add(x, "key.provider", x->provider.pub, PUBKEY_LEN);
	example_genesis(x);
	genesis_hash(&x->genesis, gen_hash);
	memcpy(x->genesis_hash, gen_hash, HASH_LEN);
	example_txs(x, lease_id);
	example_block(x, gen_hash);
}

static inline const struct example_vector *examples_get(const struct examples *x,
							const char *name)
{
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->v[i].name, name) == 0)
			return &x->v[i];
	return NULL;
}

static inline void examples_free(struct examples *x)
{
	for (size_t i = 0; i < x->n; i++)
		free(x->v[i].bytes);
	key_free(&x->tenant);
	key_free(&x->provider);
	x->n = 0;
}

#endif
