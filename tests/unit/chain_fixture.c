/* The in-memory test chain of chain_fixture.h. */
#include "tests/unit/chain_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/exec.h"
#include "lib/chain/memstate.h"
#include "lib/merkle.h"
#include "tests/support/offer.h"

#define CHAIN_ID "audit-test"
#define T0 1700000000000000000ull
#define SEC 1000000000ull

static void seed_key(struct tally_key *k, uint8_t byte)
{
	uint8_t seed[32];

	memset(seed, byte, sizeof(seed));
	ck_assert_int_eq(key_from_seed(k, seed), 0);
}

/* The genesis hash the fixture's signatures are bound to. */
static uint8_t gh[HASH_LEN];

static void make_genesis(struct fixture *f)
{
	char vhex[65], thex[65], json[1024], why[256] = "";

	hex_encode(f->validator.pub, PUBKEY_LEN, vhex);
	hex_encode(f->tenant.pub, PUBKEY_LEN, thex);
	snprintf(json, sizeof(json),
		 "{\"chain_id\": \"" CHAIN_ID "\", \"genesis_time_ns\": %llu,"
		 " \"validators\": [{\"pubkey\": \"%s\", \"stake\": 100, \"name\": \"node0\","
		 " \"api\": \"http://127.0.0.1:7654\"}],"
		 " \"accounts\": [{\"pubkey\": \"%s\", \"balance\": 1000000000}]}",
		 (unsigned long long)T0, vhex, thex);
	ck_assert_msg(genesis_parse(&f->genesis, json, why) == 0, "genesis: %s", why);
	genesis_hash(&f->genesis, gh);
}

/* Encodes and signs t; returns malloc'd bytes. */
static uint8_t *sign_tx(struct tx *t, const struct tally_key *k, size_t *len)
{
	struct enc e;

	t->version = TX_VERSION;
	strcpy(t->chain_id, CHAIN_ID);
	memcpy(t->signer, k->pub, PUBKEY_LEN);
	ck_assert_int_eq(tx_sign(t, k, gh), 0);
	enc_init(&e);
	tx_encode(&e, t);
	ck_assert_int_eq(enc_error(&e), 0);
	return enc_take(&e, len);
}

static void contract(struct fixture *f, struct lease_contract *c)
{
	memset(c, 0, sizeof(*c));
	c->version = CONTRACT_VERSION;
	strcpy(c->chain_id, CHAIN_ID);
	memcpy(c->tenant, f->tenant.pub, PUBKEY_LEN);
	memcpy(c->provider, f->validator.pub, PUBKEY_LEN);
	c->nonce = 1;
	c->expiry = T0 / SEC + 3600;
	c->vm.vcpus = 1;
	c->vm.memory_mib = 512;
	c->vm.disk_gib = 1;
	strcpy(c->vm.image, "tiny");
	c->duration_s = 3600;
	c->deposit = FIXTURE_DEPOSIT;
	c->interval_s = 1;
	c->prices.vcpu_second = 20;
	c->prices.mem_gib_second = 5;
	c->prices.gpu_second = 1000;
	c->sla.max_delay_ppm = 100000;
	c->sla.credit_ppm = 100000;
}

struct pending {
	uint8_t *txs[4];
	size_t lens[4];
	size_t n;
};

static void add(struct pending *p, uint8_t *bytes, size_t len)
{
	p->txs[p->n] = bytes;
	p->lens[p->n++] = len;
}

/* The chain's state as its blocks are built: each header's roots are what
 * executing its transactions produces, as a validator computes them. */
static struct memstate *mem;
static struct state state;

static void finish_block(struct fixture *f, size_t i, struct pending *p,
			 struct merkle_frontier *usage)
{
	struct block *b = &f->blocks[i];
	struct block_header *h = &b->header;
	struct exec_result r;
	char why[WHY_MAX] = "";
	struct vote v;
	struct tx t;

	memset(b, 0, sizeof(*b));
	b->ntx = p->n;
	b->txs = calloc(p->n ? p->n : 1, sizeof(*b->txs));
	ck_assert_ptr_nonnull(b->txs);
	for (size_t k = 0; k < p->n; k++) {
		b->txs[k].bytes = p->txs[k];
		b->txs[k].len = p->lens[k];
		ck_assert_int_eq(tx_decode(&t, p->txs[k], p->lens[k]), 0);
		if (t.kind == TX_USAGE) {
			uint8_t leaf[HASH_LEN];
			merkle_leaf_hash(p->txs[k], p->lens[k], leaf);
			merkle_frontier_append(usage, leaf);
		}
	}
	h->version = BLOCK_VERSION;
	strcpy(h->chain_id, CHAIN_ID);
	h->height = i + 1;
	h->time_ns = T0 + (i + 1) * 10 * SEC;
	if (i == 0)
		genesis_hash(&f->genesis, h->prev_block_id);
	else
		block_id(&f->blocks[i - 1].header, h->prev_block_id);
	ck_assert_msg(exec_block(&state, b, NULL, NULL, NULL, &r, NULL, why) == 0, "%s", why);
	exec_fill_header(b, &r);
	ck_assert_uint_eq(h->usage_size, usage->size);
	valset_hash(&f->genesis.validators, h->validators_hash);
	memcpy(h->proposer, f->validator.pub, PUBKEY_LEN);
	if (i > 0)
		cert_hash(&f->certs[i - 1], h->last_commit_hash);

	struct commit_cert *c = &f->certs[i];
	memset(c, 0, sizeof(*c));
	memset(&v, 0, sizeof(v));
	v.type = VOTE_PRECOMMIT;
	v.height = h->height;
	v.round = 0;
	block_id(h, v.block_id);
	c->height = h->height;
	memcpy(c->block_id, v.block_id, HASH_LEN);
	c->n = 1;
	memcpy(c->sigs[0].validator, f->validator.pub, PUBKEY_LEN);
	ck_assert_int_eq(vote_sign(&v, &f->validator, gh, c->sigs[0].sig), 0);
	memset(p, 0, sizeof(*p));
}

static uint8_t *usage_tx(struct fixture *f, uint64_t seq, const uint8_t prev[HASH_LEN],
			 uint64_t started_ns, uint64_t delay, size_t *len)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_USAGE;
	t.nonce = 2 + seq;
	struct usage_record *u = &t.u.usage;
	memcpy(u->lease_id, f->lease_id, LEASE_ID_LEN);
	u->seq = seq;
	memcpy(u->prev_hash, prev, HASH_LEN);
	u->start_ns = started_ns + seq * SEC;
	u->end_ns = u->start_ns + SEC;
	u->cpu_ns = SEC / 2;
	u->run_delay_ns = delay;
	u->mem_mib = 512;
	u->mem_peak_bytes = 300u << 20;
	u->gpu_source = GPU_SOURCE_NONE;
	return sign_tx(&t, &f->validator, len);
}

void fixture_build(struct fixture *f)
{
	struct merkle_frontier usage;
	struct pending p;
	uint8_t prev[HASH_LEN] = { 0 };
	struct tx t;
	size_t len;
	uint8_t *bytes;

	memset(f, 0, sizeof(*f));
	memset(&p, 0, sizeof(p));
	seed_key(&f->validator, 0x11);
	seed_key(&f->tenant, 0x22);
	make_genesis(f);
	merkle_frontier_init(&usage);
	mem = memstate_new();
	ck_assert_ptr_nonnull(mem);
	struct state_backend be = memstate_backend(mem);
	ck_assert_int_eq(state_open(&state, &be, 0), 0);
	ck_assert_int_eq(state_load_genesis(&state, &f->genesis), 0);
	ck_assert_int_eq(state_root_update(&state), 0);

	memset(&t, 0, sizeof(t));
	t.kind = TX_TRANSFER;
	t.nonce = 0;
	memcpy(t.u.transfer.to, f->validator.pub, PUBKEY_LEN);
	t.u.transfer.amount = 5;
	bytes = sign_tx(&t, &f->tenant, &len);
	add(&p, bytes, len);
	/* The provider announces what the lease will pay. */
	struct lease_contract c;
	contract(f, &c);
	memset(&t, 0, sizeof(t));
	t.kind = TX_PROVIDER;
	t.nonce = 0;
	test_offer_for(&c, &t.u.provider);
	bytes = sign_tx(&t, &f->validator, &len);
	add(&p, bytes, len);
	finish_block(f, 0, &p, &usage);

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_OPEN;
	contract(f, &t.u.open);
	t.nonce = t.u.open.nonce;
	bytes = sign_tx(&t, &f->tenant, &len);
	tx_hash(bytes, len, f->lease_id);
	add(&p, bytes, len);
	finish_block(f, 1, &p, &usage);

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_START;
	t.nonce = 1;
	memcpy(t.u.start.lease_id, f->lease_id, LEASE_ID_LEN);
	bytes = sign_tx(&t, &f->validator, &len);
	add(&p, bytes, len);
	finish_block(f, 2, &p, &usage);

	uint64_t started = f->blocks[2].header.time_ns;
	for (uint64_t seq = 0; seq < FIXTURE_RECORDS; seq++) {
		bytes = usage_tx(f, seq, prev, started, seq == 2 ? SEC / 5 : 0, &len);
		tx_hash(bytes, len, prev);
		add(&p, bytes, len);
		if (seq != 0)
			finish_block(f, 3 + seq - 1, &p, &usage);
	}

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_CLOSE;
	t.nonce = 2;
	memcpy(t.u.close.lease_id, f->lease_id, LEASE_ID_LEN);
	t.u.close.reason = CLOSE_TENANT;
	bytes = sign_tx(&t, &f->tenant, &len);
	add(&p, bytes, len);
	/* The provider takes the close without billing the time since the
	 * last record (the lease would otherwise wait, closing, for it). */
	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_CLOSE;
	t.nonce = 2 + FIXTURE_RECORDS;
	memcpy(t.u.close.lease_id, f->lease_id, LEASE_ID_LEN);
	t.u.close.reason = CLOSE_TENANT;
	bytes = sign_tx(&t, &f->validator, &len);
	add(&p, bytes, len);
	finish_block(f, 6, &p, &usage);
	uint8_t key[STATE_KEY_LEN];
	state_key(key, STATE_KEY_LEASE, f->lease_id);
	ck_assert_int_eq(state_proof_make(&state, key, sizeof(key), &f->settled_proof), 0);
	state_close(&state);
	memstate_free(mem);

	/* What the ledger settled, written out by hand from the prices. */
	struct lease *s = &f->settled;
	memcpy(s->id, f->lease_id, LEASE_ID_LEN);
	contract(f, &s->contract);
	s->state = LEASE_CLOSED;
	s->close_reason = CLOSE_TENANT;
	s->opened_height = 2;
	s->started_ns = started;
	s->closed_height = 7;
	s->escrow = 0;
	s->charged = FIXTURE_CHARGED;
	s->sla_credits = FIXTURE_SLA;
	s->next_seq = FIXTURE_RECORDS;
	memcpy(s->last_usage_hash, prev, HASH_LEN);
	s->last_end_ns = started + FIXTURE_RECORDS * SEC;
	s->cpu_ns = FIXTURE_RECORDS * SEC / 2;
	s->run_delay_ns = SEC / 5;
	s->carry.credit = 200000;          /* 0.2 of seq 2's credit of 1.2 */
}

void fixture_set_txs(struct fixture *f, size_t i, const uint8_t *const *txs,
		     const size_t *lens, size_t n)
{
	struct block *b = &f->blocks[i];
	struct block_tx *nt = calloc(n ? n : 1, sizeof(*nt));

	ck_assert_ptr_nonnull(nt);
	for (size_t k = 0; k < n; k++) {
		uint8_t *copy = malloc(lens[k]);

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, txs[k], lens[k]);
		nt[k].bytes = copy;
		nt[k].len = lens[k];
	}
	struct block_header h = b->header;
	block_free(b);
	b->header = h;
	b->txs = nt;
	b->ntx = n;
}

void fixture_free(struct fixture *f)
{
	for (size_t i = 0; i < FIXTURE_BLOCKS; i++)
		block_free(&f->blocks[i]);
	genesis_free(&f->genesis);
	state_proof_free(&f->settled_proof);
	key_free(&f->validator);
	key_free(&f->tenant);
}
