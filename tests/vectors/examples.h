/* The example objects of docs/FORMATS.md, built from fixed key seeds so they
 * are the same on every machine (Ed25519 signatures are deterministic).
 *
 * The example chain is a real one: its blocks are executed with the chain's
 * own state transition (lib/chain/exec.h), so every header carries the
 * state root, usage log and validator hashes a validator computes, and the
 * unit test replays it with every rule (tests/unit/test_vectors.c).
 *
 *   genesis   G = 1700000000 s; the provider is the only validator
 *   block 1   G + 12 s: PROVIDER (the provider's announcement), LEASE_OPEN
 *             (tenant), LEASE_START (provider): the lease runs from G + 12 s
 *   block 2   G + 73 s: USAGE seq 0, G + 12 s .. G + 72 s
 *
 * Settlement goes on beyond the chain as lease-state transitions
 * (contracts/lease.c), each a vector: an SLA breach, the tenant's close, the
 * last record up to it; and a second lease whose record outruns its escrow.
 *
 * Shared by tests/vectors/gen.c, which prints them for the document, and
 * tests/unit/test_vectors.c, which checks the document still matches the
 * code. Header-only so neither needs a build rule of its own. */
#ifndef TALLY_TESTS_VECTORS_EXAMPLES_H
#define TALLY_TESTS_VECTORS_EXAMPLES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contracts/contract.h"
#include "lib/chain/block.h"
#include "lib/chain/chainfile.h"
#include "lib/chain/evidence.h"
#include "lib/chain/exec.h"
#include "lib/chain/genesis.h"
#include "lib/chain/memstate.h"
#include "lib/chain/request.h"
#include "lib/chain/state.h"
#include "lib/chain/state_proof.h"
#include "lib/chain/tx.h"
#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/errors.h"
#include "lib/merkle.h"

#define EXAMPLE_CHAIN "tally-dev"
#define EXAMPLE_SEC 1000000000ull
#define EXAMPLE_GENESIS_TIME_NS 1700000000000000000ull
#define EXAMPLE_NOW_S 1700000000ull
#define EXAMPLE_T(s) (EXAMPLE_GENESIS_TIME_NS + (uint64_t)(s) * EXAMPLE_SEC)
#define EXAMPLE_BLOCK1_NS EXAMPLE_T(12)
#define EXAMPLE_BLOCK2_NS EXAMPLE_T(73)
#define EXAMPLE_REQUEST_TS "1700000100"
#define EXAMPLE_REQUEST_NONCE "00112233445566778899aabbccddeeff"
#define EXAMPLES_MAX 96
#define EXAMPLE_SETTLE_CASES 7

struct example_vector {
	const char *name;
	uint8_t *bytes;
	size_t len;
};

/* One settlement case: a record applied to a lease at a block time, or
 * (close) the tenant's close; what it charged and paid. */
struct example_settle {
	const char *name;
	bool close;
	struct lease before, after;
	struct usage_record rec;
	uint64_t time_ns;
	struct usage_charge charge;
	uint64_t paid, refund;
};

struct examples {
	/* seed 32 x 0x01: the tenant; seed 32 x 0x02: the provider, which is
	 * also the only validator of the example chain */
	struct tally_key tenant, provider;
	struct tally_key others[3];          /* seeds 0x03..0x05: cert3's other validators */
	struct genesis genesis;
	uint8_t genesis_hash[HASH_LEN];      /* every signature is bound to it */
	struct genesis_account accounts[2];
	struct lease_contract contract;
	struct tx provider_tx, open, start, usage;
	uint8_t lease_id[LEASE_ID_LEN];
	struct memstate *mem;
	struct state state;                  /* after the last block built */
	struct block blocks[2];              /* blocks[i] is height i + 1 */
	struct commit_cert certs[2];
	struct commit_cert cert3;
	struct validator_set vals3;
	struct example_settle settle[EXAMPLE_SETTLE_CASES];
	size_t n;
	struct example_vector v[EXAMPLES_MAX];
};

static inline void example_fail(const char *what)
{
	fprintf(stderr, "examples: %s\n", what);
	abort();
}

static inline void example_add(struct examples *x, const char *name, const void *p, size_t n)
{
	struct example_vector *v;

	if (x->n >= EXAMPLES_MAX)
		example_fail("too many vectors");
	v = &x->v[x->n++];
	v->name = name;
	v->bytes = malloc(n ? n : 1);
	if (!v->bytes)
		example_fail("out of memory");
	memcpy(v->bytes, p, n);
	v->len = n;
}

/* Adds the encoding in e (and frees it); returns the vector. */
static inline struct example_vector *example_add_enc(struct examples *x, const char *name,
						     struct enc *e)
{
	if (enc_error(e))
		example_fail(name);
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

static inline void example_add_lease(struct examples *x, const char *name, const struct lease *l)
{
	struct enc e;

	enc_init(&e);
	lease_encode_to(&e, l);
	example_add_enc(x, name, &e);
}

static inline void example_key(struct tally_key *k, uint8_t b)
{
	uint8_t seed[32];

	memset(seed, b, 32);
	if (key_from_seed(k, seed))
		example_fail("key");
}

static inline void example_contract(struct examples *x, struct lease_contract *c)
{
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

/* Fills the envelope, signs with k and adds the encoding as a vector. */
static inline struct example_vector *example_tx(struct examples *x, struct tx *t, uint8_t kind,
						const struct tally_key *k, uint64_t nonce,
						const char *name)
{
	struct enc e;

	t->version = TX_VERSION;
	t->kind = kind;
	strcpy(t->chain_id, EXAMPLE_CHAIN);
	memcpy(t->signer, k->pub, PUBKEY_LEN);
	t->nonce = nonce;
	if (tx_sign(t, k, x->genesis_hash))
		example_fail(name);
	enc_init(&e);
	tx_encode(&e, t);
	return example_add_enc(x, name, &e);
}

static inline void example_genesis(struct examples *x)
{
	struct genesis *g = &x->genesis;
	struct state_backend be;
	uint8_t root[HASH_LEN];
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
	genesis_hash(g, x->genesis_hash);

	/* The state roots of nothing and of the genesis. */
	x->mem = memstate_new();
	if (!x->mem)
		example_fail("out of memory");
	be = memstate_backend(x->mem);
	if (state_open(&x->state, &be, 0))
		example_fail("state");
	state_root(&x->state, root);
	example_add(x, "state.empty_root", root, HASH_LEN);
	if (state_load_genesis(&x->state, g) || state_root_update(&x->state))
		example_fail("genesis state");
	state_root(&x->state, root);
	example_add(x, "state.genesis_root", root, HASH_LEN);
}

/* Executes txs as block `height` at time_ns on the example state and
 * certifies it with the provider's precommit (round 0). */
static inline void example_seal(struct examples *x, uint64_t height, uint64_t time_ns,
				const char *const *tx_names, size_t ntx)
{
	struct block *b = &x->blocks[height - 1];
	struct block_header *h = &b->header;
	struct commit_cert *c = &x->certs[height - 1];
	struct exec_result r;
	char why[WHY_MAX];
	struct vote v;

	memset(b, 0, sizeof(*b));
	b->txs = calloc(ntx, sizeof(*b->txs));
	if (!b->txs)
		example_fail("out of memory");
	for (size_t i = 0; i < ntx; i++) {
		for (size_t j = 0; j < x->n; j++) {
			if (strcmp(x->v[j].name, tx_names[i]))
				continue;
			uint8_t *copy = malloc(x->v[j].len);

			if (!copy)
				example_fail("out of memory");
			memcpy(copy, x->v[j].bytes, x->v[j].len);
			b->txs[i].bytes = copy;
			b->txs[i].len = x->v[j].len;
		}
	}
	b->ntx = ntx;
	h->version = BLOCK_VERSION;
	strcpy(h->chain_id, EXAMPLE_CHAIN);
	h->height = height;
	h->time_ns = time_ns;
	if (height == 1) {
		memcpy(h->prev_block_id, x->genesis_hash, HASH_LEN);
	} else {
		block_id(&x->blocks[height - 2].header, h->prev_block_id);
		cert_hash(&x->certs[height - 2], h->last_commit_hash);
	}
	if (exec_block(&x->state, b, NULL, NULL, NULL, &r, NULL, why)) {
		fprintf(stderr, "examples: %s\n", why);
		abort();
	}
	exec_fill_header(b, &r);
	valset_hash(&x->genesis.validators, h->validators_hash);
	memcpy(h->proposer, x->provider.pub, PUBKEY_LEN);

	memset(&v, 0, sizeof(v));
	v.type = VOTE_PRECOMMIT;
	v.height = height;
	block_id(h, v.block_id);
	memset(c, 0, sizeof(*c));
	c->height = height;
	memcpy(c->block_id, v.block_id, HASH_LEN);
	c->n = 1;
	memcpy(c->sigs[0].validator, x->provider.pub, PUBKEY_LEN);
	if (vote_sign(&v, &x->provider, x->genesis_hash, c->sigs[0].sig))
		example_fail("precommit");
}

static inline void example_block_vectors(struct examples *x, uint64_t height, const char *header,
					 const char *id, const char *whole, const char *cert,
					 const char *cert_hash_name)
{
	const struct block *b = &x->blocks[height - 1];
	uint8_t h[HASH_LEN];
	struct enc e;

	enc_init(&e);
	header_encode(&e, &b->header);
	example_add_enc(x, header, &e);
	block_id(&b->header, h);
	example_add(x, id, h, HASH_LEN);
	enc_init(&e);
	block_encode(&e, b);
	example_add_enc(x, whole, &e);
	enc_init(&e);
	cert_encode(&e, &x->certs[height - 1]);
	struct example_vector *v = example_add_enc(x, cert, &e);
	if (cert_hash_name)
		example_add_hash(x, cert_hash_name, v->bytes, v->len);
}

/* The provider's announcement: what the example contract pays, and more. */
static inline void example_offer(struct provider_offer *o)
{
	memset(o, 0, sizeof(*o));
	strcpy(o->endpoint, "https://node0.example:7654");
	o->prices.vcpu_second = 10;
	o->prices.mem_gib_second = 2;
	o->prices.gpu_second = 0;
	o->interval_s = 60;
	o->sla_max_credit_ppm = 500000;    /* the node's defaults: 50% at most, */
	o->sla_min_delay_ppm = 10000;      /* 1% of delay allowed at least */
	o->nimages = 2;
	strcpy(o->images[0], "debian-12");
	strcpy(o->images[1], "tiny");
	o->ngpu_classes = 0;
	o->vcpus = 16;
	o->memory_mib = 65536;
	o->gpus = 0;
	strcpy(o->region, "eu-west");
}

/* Genesis, block 1 (PROVIDER, LEASE_OPEN, LEASE_START), block 2 (USAGE
 * seq 0). */
static inline void example_chain(struct examples *x)
{
	static const char *const b1[] = { "provider.tx", "lease_open.tx", "lease_start.tx" };
	static const char *const b2[] = { "usage.tx" };
	struct example_vector *v;
	struct enc e;

	example_contract(x, &x->contract);
	enc_init(&e);
	contract_encode_to(&e, &x->contract);
	example_add_enc(x, "contract", &e);

	memset(&x->provider_tx, 0, sizeof(x->provider_tx));
	example_offer(&x->provider_tx.u.provider);
	enc_init(&e);
	provider_offer_encode_to(&e, &x->provider_tx.u.provider);
	example_add_enc(x, "provider.offer", &e);
	example_tx(x, &x->provider_tx, TX_PROVIDER, &x->provider, 0, "provider.tx");

	/* The exact bytes Ed25519 signs, to show the domain construction. */
	memset(&x->open, 0, sizeof(x->open));
	x->open.version = TX_VERSION;
	x->open.kind = TX_LEASE_OPEN;
	strcpy(x->open.chain_id, EXAMPLE_CHAIN);
	memcpy(x->open.signer, x->tenant.pub, PUBKEY_LEN);
	x->open.nonce = x->contract.nonce;
	x->open.u.open = x->contract;
	enc_init(&e);
	enc_fixed(&e, "tally/v2/tx", 11);
	enc_u8(&e, 0);
	enc_fixed(&e, x->genesis_hash, HASH_LEN);
	tx_encode_unsigned(&e, &x->open);
	example_add_enc(x, "lease_open.signed_message", &e);
	v = example_tx(x, &x->open, TX_LEASE_OPEN, &x->tenant, x->contract.nonce,
		       "lease_open.tx");
	tx_hash(v->bytes, v->len, x->lease_id);
	example_add(x, "lease_open.hash", x->lease_id, HASH_LEN);

	memset(&x->start, 0, sizeof(x->start));
	memcpy(x->start.u.start.lease_id, x->lease_id, HASH_LEN);
	example_tx(x, &x->start, TX_LEASE_START, &x->provider, 1, "lease_start.tx");
	example_seal(x, 1, EXAMPLE_BLOCK1_NS, b1, 3);

	/* Record 0 starts at the LEASE_START block's time and ends a minute
	 * later; block 2 commits it a second after it ended. */
	memset(&x->usage, 0, sizeof(x->usage));
	struct usage_record *u = &x->usage.u.usage;
	memcpy(u->lease_id, x->lease_id, HASH_LEN);
	u->seq = 0;
	u->start_ns = EXAMPLE_BLOCK1_NS;
	u->end_ns = u->start_ns + 60 * EXAMPLE_SEC;
	u->cpu_ns = 90 * EXAMPLE_SEC;        /* 1.5 vCPUs busy on average */
	u->run_delay_ns = 1200000000ull;     /* 1% of 2 vCPUs x 60 s */
	u->gpu_ns = 0;
	u->mem_mib = 2048;
	u->mem_peak_bytes = 1500000000ull;
	u->gpu_source = GPU_SOURCE_NONE;
	enc_init(&e);
	usage_encode_to(&e, u);
	example_add_enc(x, "usage.record", &e);
	v = example_tx(x, &x->usage, TX_USAGE, &x->provider, 2, "usage.tx");
	example_add_hash(x, "usage.hash", v->bytes, v->len);
	uint8_t leaf[HASH_LEN];
	merkle_leaf_hash(v->bytes, v->len, leaf);
	example_add(x, "usage.leaf", leaf, HASH_LEN);
	example_seal(x, 2, EXAMPLE_BLOCK2_NS, b2, 1);

	example_add(x, "validators.hash", x->blocks[0].header.validators_hash, HASH_LEN);
	example_add(x, "block1.txs_root", x->blocks[0].header.txs_root, HASH_LEN);
	example_add(x, "block1.state_root", x->blocks[0].header.state_root, HASH_LEN);
	example_block_vectors(x, 1, "block1.header", "block1.id", "block1", "block1.cert",
			      "block1.cert.hash");
	struct vote vote = { .type = VOTE_PRECOMMIT, .height = 1, .round = 0 };
	memcpy(vote.block_id, x->certs[0].block_id, HASH_LEN);
	enc_init(&e);
	vote_encode(&e, &vote);
	example_add_enc(x, "block1.precommit", &e);
	example_add(x, "block2.state_root", x->blocks[1].header.state_root, HASH_LEN);
	example_block_vectors(x, 2, "block2.header", "block2.id", "block2", "block2.cert", NULL);
}

/* The lease's state entry after block 2, and its proof against block 2's
 * state root. */
static inline void example_lease_entry(struct examples *x, struct state_proof *p)
{
	uint8_t key[STATE_KEY_LEN];
	struct lease l;
	struct enc e;

	state_key(key, STATE_KEY_LEASE, x->lease_id);
	example_add(x, "lease.key", key, sizeof(key));
	if (state_lease_get(&x->state, x->lease_id, &l))
		example_fail("lease");
	example_add_lease(x, "lease.state", &l);
	if (state_proof_make(&x->state, key, sizeof(key), p))
		example_fail("proof");
	enc_init(&e);
	state_proof_encode(&e, p);
	example_add_enc(x, "lease.proof", &e);
}

/* The provider's registry entry after block 2, and its proof against
 * block 2's state root. */
static inline void example_provider_entry(struct examples *x)
{
	uint8_t key[STATE_KEY_LEN];
	struct provider_entry p;
	struct state_proof pr;
	struct enc e;

	state_key(key, STATE_KEY_PROVIDER, x->provider.pub);
	example_add(x, "provider.key", key, sizeof(key));
	if (state_provider_get(&x->state, x->provider.pub, &p))
		example_fail("provider entry");
	enc_init(&e);
	provider_value_encode(&e, &p);
	example_add_enc(x, "provider.entry", &e);
	if (state_proof_make(&x->state, key, sizeof(key), &pr))
		example_fail("provider proof");
	enc_init(&e);
	state_proof_encode(&e, &pr);
	example_add_enc(x, "provider.proof", &e);
	state_proof_free(&pr);
}

/* The chain as an export file: genesis, blocks 1 and 2, the lease at 2. */
static inline void example_export(struct examples *x, const struct state_proof *p)
{
	struct chainfile f;
	char why[WHY_MAX], *json = genesis_to_json(&x->genesis);
	struct enc e;

	chainfile_init(&f);
	if (!json || chainfile_set_genesis(&f, json, why))
		example_fail("export genesis");
	free(json);
	for (int i = 0; i < 2; i++)
		if (chainfile_add_block(&f, &x->blocks[i], &x->certs[i], NULL))
			example_fail("export block");
	if (chainfile_add_lease(&f, x->lease_id, 2, p, why))
		example_fail(why);
	enc_init(&e);
	chainfile_encode(&e, &f);
	example_add_enc(x, "export", &e);
	chainfile_free(&f);
}

/* A proposal of block 2, as its proposer signs it and sends it. */
static inline void example_proposal(struct examples *x)
{
	/* A proposal of block 2 in round 1 that names no proof-of-lock round:
	 * what a proposer would have sent had round 0 passed without a
	 * decision. */
	struct proposal pr = { .height = 2, .round = 1, .pol_round = -1 };
	uint8_t sig[SIG_LEN];
	struct enc e, m, sub;

	block_id(&x->blocks[1].header, pr.block_id);
	enc_init(&e);
	proposal_encode(&e, &pr);
	if (enc_error(&e) || sig_sign(&x->provider, SIG_PROPOSAL, x->genesis_hash, e.buf, e.len, sig))
		example_fail("proposal");
	/* The consensus message: u8 1 | proposal | sig | bytes block | bytes prev_cert. */
	enc_init(&m);
	enc_u8(&m, 1);
	enc_fixed(&m, e.buf, e.len);
	enc_fixed(&m, sig, SIG_LEN);
	enc_init(&sub);
	block_encode(&sub, &x->blocks[1]);
	enc_bytes(&m, sub.buf, sub.len);
	enc_free(&sub);
	enc_init(&sub);
	cert_encode(&sub, &x->certs[0]);
	enc_bytes(&m, sub.buf, sub.len);
	enc_free(&sub);
	example_add_enc(x, "block2.proposal", &e);
	example_add_enc(x, "block2.proposal_msg", &m);
}

/* A certificate of three signers out of a set of four (stake 10 each:
 * 30 * 3 > 40 * 2), for block 1 in round 2, had the chain that set. */
static inline void example_cert3(struct examples *x)
{
	const struct tally_key *k[4] = { &x->provider, &x->others[0], &x->others[1],
					 &x->others[2] };
	struct vote v = { .type = VOTE_PRECOMMIT, .height = 1, .round = 2 };
	struct enc e;

	memset(&x->vals3, 0, sizeof(x->vals3));
	for (int i = 0; i < 4; i++) {
		size_t at = x->vals3.n;

		/* keep the set sorted by public key */
		while (at > 0 && memcmp(x->vals3.v[at - 1].pubkey, k[i]->pub, PUBKEY_LEN) > 0) {
			x->vals3.v[at] = x->vals3.v[at - 1];
			at--;
		}
		memcpy(x->vals3.v[at].pubkey, k[i]->pub, PUBKEY_LEN);
		x->vals3.v[at].stake = 10;
		x->vals3.n++;
	}
	enc_init(&e);
	valset_encode(&e, &x->vals3);
	example_add_enc(x, "cert3.validators", &e);
	block_id(&x->blocks[0].header, v.block_id);
	memset(&x->cert3, 0, sizeof(x->cert3));
	x->cert3.height = 1;
	x->cert3.round = 2;
	memcpy(x->cert3.block_id, v.block_id, HASH_LEN);
	/* Every member but the second in key order signs. */
	for (size_t i = 0; i < x->vals3.n; i++) {
		if (i == 1)
			continue;
		for (int j = 0; j < 4; j++) {
			if (memcmp(k[j]->pub, x->vals3.v[i].pubkey, PUBKEY_LEN))
				continue;
			struct commit_sig *s = &x->cert3.sigs[x->cert3.n++];
			memcpy(s->validator, k[j]->pub, PUBKEY_LEN);
			if (vote_sign(&v, k[j], x->genesis_hash, s->sig))
				example_fail("cert3");
		}
	}
	enc_init(&e);
	cert_encode(&e, &x->cert3);
	struct example_vector *cv = example_add_enc(x, "cert3", &e);
	example_add_hash(x, "cert3.hash", cv->bytes, cv->len);
}

/* The tenant's signed read of the lease's private details. */
static inline void example_request(struct examples *x)
{
	char path[128], hex[2 * LEASE_ID_LEN + 1], msg[512];
	uint8_t sig[SIG_LEN];
	struct enc e;

	hex_encode(x->lease_id, LEASE_ID_LEN, hex);
	snprintf(path, sizeof(path), "/v1/leases/%s/private", hex);
	if (request_message(msg, sizeof(msg), "GET", path, EXAMPLE_REQUEST_TS,
			    EXAMPLE_REQUEST_NONCE) ||
	    sig_sign(&x->tenant, SIG_REQUEST, x->genesis_hash, msg, strlen(msg), sig))
		example_fail("request");
	example_add(x, "request.message", msg, strlen(msg));
	enc_init(&e);
	enc_fixed(&e, "tally/v2/request", 16);
	enc_u8(&e, 0);
	enc_fixed(&e, x->genesis_hash, HASH_LEN);
	enc_fixed(&e, msg, strlen(msg));
	example_add_enc(x, "request.signed_message", &e);
	example_add(x, "request.sig", sig, SIG_LEN);
}

/* A USAGE transaction of the provider's, its record following the lease's
 * last one from its end, of span_s seconds. */
static inline struct example_vector *example_record(struct examples *x, const struct lease *l,
						    uint64_t span_s, uint64_t cpu_s,
						    uint64_t delay_ns, uint64_t nonce,
						    const char *name, struct usage_record *out)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	struct usage_record *u = &t.u.usage;
	memcpy(u->lease_id, l->id, LEASE_ID_LEN);
	u->seq = l->next_seq;
	memcpy(u->prev_hash, l->last_usage_hash, HASH_LEN);
	u->start_ns = l->last_end_ns;
	u->end_ns = u->start_ns + span_s * EXAMPLE_SEC;
	u->cpu_ns = cpu_s * EXAMPLE_SEC;
	u->run_delay_ns = delay_ns;
	u->mem_mib = l->contract.vm.memory_mib;
	u->mem_peak_bytes = 1500000000ull;
	u->gpu_source = GPU_SOURCE_NONE;
	*out = *u;
	return example_tx(x, &t, TX_USAGE, &x->provider, nonce, name);
}

/* Applies the record of vector tx to s->before at time_ns into s->after. */
static inline void example_apply(struct examples *x, struct example_settle *s,
				 const struct example_vector *tx, uint64_t time_ns)
{
	uint8_t hash[HASH_LEN];
	char why[WHY_MAX];

	tx_hash(tx->bytes, tx->len, hash);
	s->after = s->before;
	s->time_ns = time_ns;
	if (lease_apply_usage(&s->after, x->provider.pub, &s->rec, hash, 3, time_ns, &s->charge,
			      &s->paid, &s->refund, why)) {
		fprintf(stderr, "examples: %s: %s\n", s->name, why);
		abort();
	}
}

/* Another lease of the tenant, of contract c (nonce its LEASE_OPEN's),
 * opened and started at block 1's time into *out, for a settlement case
 * named name. Its id, the hash of its LEASE_OPEN, is all the document
 * needs of that transaction: no vector of its own. */
static inline void example_other_lease(struct examples *x, const struct lease_contract *c,
				       const char *name, struct lease *out)
{
	struct example_vector *tx;
	uint8_t id[LEASE_ID_LEN];
	char why[WHY_MAX];
	struct tx open;

	memset(&open, 0, sizeof(open));
	open.u.open = *c;
	tx = example_tx(x, &open, TX_LEASE_OPEN, &x->tenant, c->nonce, name);
	tx_hash(tx->bytes, tx->len, id);
	free(tx->bytes);
	x->n--;
	if (lease_open(out, id, c, 1, why) ||
	    lease_start(out, x->provider.pub, EXAMPLE_BLOCK1_NS, why))
		example_fail(name);
}

/* Settlement, record by record: the record of block 2; an SLA breach; the
 * tenant's close (closing); the last record, up to the close; a second
 * lease whose record costs more than its escrow holds; and a third whose
 * memory charge leaves fractions to carry, its first record judged in three
 * SLA windows. */
static inline void example_settlement(struct examples *x)
{
	struct example_settle *s = x->settle;
	struct example_vector *tx;
	char why[WHY_MAX];

	/* settle.normal: record 0 in block 2, as the chain applied it. */
	s[0].name = "settle.normal";
	if (lease_open(&s[0].before, x->lease_id, &x->contract, 1, why) ||
	    lease_start(&s[0].before, x->provider.pub, EXAMPLE_BLOCK1_NS, why))
		example_fail("normal");
	s[0].rec = x->usage.u.usage;
	for (size_t j = 0; j < x->n; j++)
		if (!strcmp(x->v[j].name, "usage.tx"))
			example_apply(x, &s[0], &x->v[j], EXAMPLE_BLOCK2_NS);

	/* settle.sla: record 1, 7 s of vCPU wait in 120 vCPU-seconds (above
	 * 5%): 10% of its gross back to the tenant. */
	s[1].name = "settle.sla";
	s[1].before = s[0].after;
	tx = example_record(x, &s[1].before, 60, 100, 7 * EXAMPLE_SEC, 3, "settle.sla.tx",
			    &s[1].rec);
	example_apply(x, &s[1], tx, EXAMPLE_T(133));
	example_add_lease(x, "settle.sla.lease", &s[1].after);

	/* settle.closing: the tenant closes at G + 150 s; the lease waits for
	 * the provider's last record up to then. */
	s[2].name = "settle.closing";
	s[2].close = true;
	s[2].before = s[1].after;
	s[2].after = s[2].before;
	s[2].time_ns = EXAMPLE_T(150);
	if (lease_close(&s[2].after, x->tenant.pub, CLOSE_TENANT, 4, s[2].time_ns, &s[2].refund,
			why))
		example_fail(why);
	example_add_lease(x, "settle.closing.lease", &s[2].after);

	/* settle.last: record 2, 18 s up to the close, closes the lease and
	 * refunds the escrow left. */
	s[3].name = "settle.last";
	s[3].before = s[2].after;
	tx = example_record(x, &s[3].before, 18, 20, 0, 4, "settle.last.tx", &s[3].rec);
	example_apply(x, &s[3], tx, EXAMPLE_T(151));
	example_add_lease(x, "settle.last.lease", &s[3].after);

	/* settle.exhaust: a second lease whose deposit covers one interval
	 * (1440), started at block 1's time; its first record spans two
	 * intervals (the provider's node was down) at full CPU: 2880 due, the
	 * escrow's 1440 paid, the lease closed as escrow-exhausted. */
	struct lease_contract c2 = x->contract;

	c2.nonce = 1;
	c2.deposit = 1440;
	s[4].name = "settle.exhaust";
	example_other_lease(x, &c2, "settle.exhaust.open_tx", &s[4].before);
	example_add_lease(x, "settle.exhaust.before", &s[4].before);
	tx = example_record(x, &s[4].before, 120, 240, 0, 5, "settle.exhaust.tx", &s[4].rec);
	example_apply(x, &s[4], tx, EXAMPLE_T(133));
	example_add_lease(x, "settle.exhaust.lease", &s[4].after);

	/* settle.window: a third lease, of 1000 MiB (a memory charge of
	 * 1.953125 a second: fractions to carry), started at block 1's time;
	 * its first record spans 150 s (2.5 intervals, rounded up: three SLA
	 * windows of 50 s, 5 s of delay allowed in each) at full CPU with 6 s
	 * of delay: one window counts as breached, and a third of the gross,
	 * rounded up, earns the credit. settle.carry: its next record, 60 s
	 * with 7 s of delay (one window, breached), pays the memory fraction
	 * the first left and takes the credit's fraction with it. */
	struct lease_contract c3 = x->contract;

	c3.nonce = 2;
	c3.vm.memory_mib = 1000;
	s[5].name = "settle.window";
	example_other_lease(x, &c3, "settle.window.open_tx", &s[5].before);
	tx = example_record(x, &s[5].before, 150, 300, 6 * EXAMPLE_SEC, 6, "settle.window.tx",
			    &s[5].rec);
	example_apply(x, &s[5], tx, EXAMPLE_T(163));
	example_add_lease(x, "settle.window.lease", &s[5].after);
	s[6].name = "settle.carry";
	s[6].before = s[5].after;
	tx = example_record(x, &s[6].before, 60, 120, 7 * EXAMPLE_SEC, 7, "settle.carry.tx",
			    &s[6].rec);
	example_apply(x, &s[6], tx, EXAMPLE_T(223));
	example_add_lease(x, "settle.carry.lease", &s[6].after);
}

/* The row of docs/FORMATS.md's settlement table for one case (times in
 * seconds after the genesis time). */
static inline void example_settle_row(const struct example_settle *s, char *out, size_t cap)
{
	char state[64];

	if (s->after.state == LEASE_CLOSED)
		snprintf(state, sizeof(state), "closed, %s",
			 lease_close_reason_name(s->after.close_reason));
	else
		snprintf(state, sizeof(state), "%s", lease_state_name(s->after.state));
	if (s->close) {
		snprintf(out, cap, "| `%s` | %llu | tenant's LEASE_CLOSE | | | | | | | 0 | %llu | %s |",
			 s->name,
			 (unsigned long long)((s->time_ns - EXAMPLE_GENESIS_TIME_NS) / EXAMPLE_SEC),
			 (unsigned long long)s->refund, state);
		return;
	}
	snprintf(out, cap, "| `%s` | %llu | %llu..%llu | %llu | %llu | %llu | %llu | %llu | %llu"
		 " | %llu | %llu | %s |", s->name,
		 (unsigned long long)((s->time_ns - EXAMPLE_GENESIS_TIME_NS) / EXAMPLE_SEC),
		 (unsigned long long)((s->rec.start_ns - EXAMPLE_GENESIS_TIME_NS) / EXAMPLE_SEC),
		 (unsigned long long)((s->rec.end_ns - EXAMPLE_GENESIS_TIME_NS) / EXAMPLE_SEC),
		 (unsigned long long)s->charge.cpu, (unsigned long long)s->charge.mem,
		 (unsigned long long)s->charge.gpu, (unsigned long long)s->charge.gross,
		 (unsigned long long)s->charge.sla_credit, (unsigned long long)s->charge.net,
		 (unsigned long long)s->paid, (unsigned long long)s->refund, state);
}

/* One entry of a staking state as key and value vectors. */
static inline void example_entry(struct examples *x, struct state *st, uint8_t type,
				 const uint8_t id[32], const char *key_name, const char *val_name)
{
	uint8_t key[STATE_KEY_LEN], val[STATE_VALUE_MAX];
	size_t n;

	state_key(key, type, id);
	if (st->be.get(st->be.ctx, key, sizeof(key), val, sizeof(val), &n))
		example_fail(key_name);
	example_add(x, key_name, key, sizeof(key));
	example_add(x, val_name, val, n);
}

/* Genesis version 2 (the example genesis with the default parameters), the
 * staking transactions, and the entries they write, made by the chain's own
 * state transition on the version-2 genesis state: others[0] stakes 2000 at
 * height 1 and unstakes 500 at height 3; the tenant's EVIDENCE of two
 * precommits of the provider at height 2, round 0, judged at height 4,
 * slashes and jails it; the provider's UNJAIL. */
static inline void example_staking(struct examples *x)
{
	struct genesis g = x->genesis;
	struct memstate *mem = memstate_new();
	struct state_backend be;
	struct state st;
	struct signed_vote a, b;
	struct tx stake, unstake, ev, unjail;
	struct account fund = { .balance = 10000, .nonce = 0 };
	struct enc e;
	uint8_t id[32] = { 0 }, hash[HASH_LEN];
	char why[WHY_MAX];
	const struct example_vector *v;

	g.version = 2;
	g.params = GENESIS_DEFAULT_PARAMS;
	g.validators.v[0].stake = 1000000;
	enc_init(&e);
	genesis_encode(&e, &g);
	v = example_add_enc(x, "genesis.v2", &e);
	example_add_hash(x, "genesis.v2.hash", v->bytes, v->len);

	memset(&stake, 0, sizeof(stake));
	stake.u.stake.amount = 2000;
	example_tx(x, &stake, TX_STAKE, &x->others[0], 0, "stake.tx");
	memset(&unstake, 0, sizeof(unstake));
	unstake.u.stake.amount = 500;
	example_tx(x, &unstake, TX_UNSTAKE, &x->others[0], 1, "unstake.tx");
	memset(&a, 0, sizeof(a));
	a.v.type = VOTE_PRECOMMIT;
	a.v.height = 2;
	memcpy(a.validator, x->provider.pub, PUBKEY_LEN);
	b = a;
	memset(a.v.block_id, 0x11, HASH_LEN);
	memset(b.v.block_id, 0xaa, HASH_LEN);
	memset(&ev, 0, sizeof(ev));
	if (vote_sign(&a.v, &x->provider, x->genesis_hash, a.sig) ||
	    vote_sign(&b.v, &x->provider, x->genesis_hash, b.sig) ||
	    evidence_make(&ev.u.evidence, &a, &b))
		example_fail("evidence");
	example_tx(x, &ev, TX_EVIDENCE, &x->tenant, 0, "evidence.tx");
	memset(&unjail, 0, sizeof(unjail));
	example_tx(x, &unjail, TX_UNJAIL, &x->provider, 0, "unjail.tx");

	/* The state: a second validator so that jailing leaves one. */
	if (!mem)
		example_fail("staking state");
	be = memstate_backend(mem);
	if (state_open(&st, &be, 0) || state_load_genesis(&st, &g) ||
	    state_account_put(&st, x->others[0].pub, &fund) ||
	    state_validator_put(&st, x->others[1].pub,
				&(struct validator_entry){ .stake = 1000000 }))
		example_fail("staking state");
	struct { struct tx *t; uint64_t height; } steps[] = {
		{ &stake, 1 }, { &unstake, 3 }, { &ev, 4 },
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct block_ctx bc = { EXAMPLE_CHAIN, steps[i].height,
					EXAMPLE_GENESIS_TIME_NS + steps[i].height * 1000000000ull };

		enc_init(&e);
		tx_encode(&e, steps[i].t);
		tx_hash(e.buf, e.len, hash);
		if (state_apply_tx(&st, &bc, steps[i].t, e.buf, e.len, hash, NULL, why)) {
			fprintf(stderr, "%s\n", why);
			example_fail("staking step");
		}
		if (steps[i].t == &unstake) {
			/* key id: big-endian release height 3 + 100, then the hash */
			memset(id, 0, sizeof(id));
			id[7] = 103;
			memcpy(id + 8, hash, 24);
		}
		enc_free(&e);
	}
	example_entry(x, &st, STATE_KEY_UNBONDING, id, "unbonding.key", "unbonding.value");
	state_evidence_id(x->provider.pub, &a.v, id);
	example_entry(x, &st, STATE_KEY_EVIDENCE, id, "evidence.key", "evidence.value");
	memset(id, 0, sizeof(id));
	example_entry(x, &st, STATE_KEY_PARAMS, id, "params.key", "params.value");
	example_entry(x, &st, STATE_KEY_LIVENESS, x->provider.pub, "liveness.key",
		      "liveness.value");
	example_entry(x, &st, STATE_KEY_VALIDATOR, x->provider.pub, "validator.slashed.key",
		      "validator.slashed.value");
	state_close(&st);
	memstate_free(mem);
}

static inline void examples_build(struct examples *x)
{
	struct state_proof p;

	memset(x, 0, sizeof(*x));
	example_key(&x->tenant, 0x01);
	example_key(&x->provider, 0x02);
	for (int i = 0; i < 3; i++)
		example_key(&x->others[i], (uint8_t)(0x03 + i));
	example_add(x, "key.tenant", x->tenant.pub, PUBKEY_LEN);
	example_add(x, "key.provider", x->provider.pub, PUBKEY_LEN);
	example_genesis(x);
	example_chain(x);
	example_lease_entry(x, &p);
	example_provider_entry(x);
	example_export(x, &p);
	state_proof_free(&p);
	example_proposal(x);
	example_cert3(x);
	example_request(x);
	example_settlement(x);
	example_staking(x);
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
	for (int i = 0; i < 2; i++)
		block_free(&x->blocks[i]);
	state_close(&x->state);
	memstate_free(x->mem);
	key_free(&x->tenant);
	key_free(&x->provider);
	for (int i = 0; i < 3; i++)
		key_free(&x->others[i]);
	x->n = 0;
}

#endif
