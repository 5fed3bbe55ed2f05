/* The in-memory chain builder of chainbuild.h. */
#include "tests/support/chainbuild.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/chainfile.h"
#include "tests/support/offer.h"
#include "lib/chain/exec.h"
#include "lib/errors.h"
#include "lib/merkle.h"

__attribute__((noreturn, format(printf, 1, 2)))
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("chainbuild: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void cb_init_params(struct chainbuild *c, const char *chain_id, uint64_t genesis_time_ns,
		    const struct chain_params *p)
{
	static const uint8_t seeds[CB_NKEYS] = { 0x11, 0x22, 0x33 };
	char hex[CB_NKEYS][2 * PUBKEY_LEN + 1], why[WHY_MAX] = "", *json;
	struct state_backend be;

	memset(c, 0, sizeof(*c));
	snprintf(c->chain_id, sizeof(c->chain_id), "%s", chain_id);
	for (int i = 0; i < CB_NKEYS; i++) {
		uint8_t seed[32];

		memset(seed, seeds[i], sizeof(seed));
		if (key_from_seed(&c->key[i], seed))
			die("cannot make key %d", i);
		hex_encode(c->key[i].pub, PUBKEY_LEN, hex[i]);
	}
	char params[512] = "";

	if (p)
		snprintf(params, sizeof(params), " \"params\": {\"unbonding_blocks\": %" PRIu64
			 ", \"slash_ppm\": %u, \"jail_blocks\": %" PRIu64 ", \"min_self_stake\": %"
			 PRIu64 ", \"max_validators\": %u, \"liveness_window\": %" PRIu64 "},",
			 p->unbonding_blocks, p->slash_ppm, p->jail_blocks, p->min_self_stake,
			 p->max_validators, p->liveness_window);
	if (asprintf(&json,
		     "{\"chain_id\": \"%s\", \"genesis_time_ns\": %" PRIu64 ",%s"
		     " \"validators\": [{\"pubkey\": \"%s\", \"stake\": 100, \"name\": \"node-1\","
		     " \"api\": \"http://127.0.0.1:7654\"}],"
		     " \"accounts\": [{\"pubkey\": \"%s\", \"balance\": 1000000000},"
		     " {\"pubkey\": \"%s\", \"balance\": 1000000000},"
		     " {\"pubkey\": \"%s\", \"balance\": 1000000}]}",
		     chain_id, genesis_time_ns, params, hex[CB_VALIDATOR], hex[CB_VALIDATOR],
		     hex[CB_TENANT], hex[CB_STRANGER]) < 0)
		die("out of memory");
	if (genesis_parse(&c->genesis, json, why))
		die("genesis: %s", why);
	c->genesis_json = json;
	genesis_hash(&c->genesis, c->genesis_hash);
	c->mem = memstate_new();
	if (!c->mem)
		die("out of memory");
	be = memstate_backend(c->mem);
	if (state_open(&c->state, &be, 0) || state_load_genesis(&c->state, &c->genesis) ||
	    state_root_update(&c->state))
		die("cannot build the genesis state");
	c->time_ns = genesis_time_ns;
	genesis_hash(&c->genesis, c->prev_id);
	c->vals = c->genesis.validators;
	merkle_frontier_init(&c->usage);

	/* The validator announces itself as a provider of cb_contract's leases
	 * in the first block, before anything else. */
	struct lease_contract k;
	struct tx t;

	cb_contract(c, &k, genesis_time_ns);
	memset(&t, 0, sizeof(t));
	t.kind = TX_PROVIDER;
	test_offer_for(&k, &t.u.provider);
	cb_tx(c, &t, CB_VALIDATOR, false, NULL);
}

void cb_init(struct chainbuild *c, const char *chain_id, uint64_t genesis_time_ns)
{
	cb_init_params(c, chain_id, genesis_time_ns, NULL);
}

void cb_free(struct chainbuild *c)
{
	for (size_t i = 0; i < c->nblocks; i++) {
		block_free(&c->blocks[i]);
		free(c->next_vals[i]);
	}
	free(c->blocks);
	free(c->next_vals);
	free(c->certs);
	for (size_t i = 0; i < c->npending; i++)
		free(c->pending[i].bytes);
	state_close(&c->state);
	memstate_free(c->mem);
	genesis_free(&c->genesis);
	free(c->genesis_json);
	for (int i = 0; i < CB_NKEYS; i++)
		key_free(&c->key[i]);
}

void cb_tx(struct chainbuild *c, struct tx *t, enum cb_who who, bool keep_nonce,
	   uint8_t hash[HASH_LEN])
{
	struct enc e;

	t->version = TX_VERSION;
	snprintf(t->chain_id, sizeof(t->chain_id), "%s", c->chain_id);
	memcpy(t->signer, c->key[who].pub, PUBKEY_LEN);
	if (!keep_nonce)
		t->nonce = c->nonce[who]++;
	if (tx_sign(t, &c->key[who], c->genesis_hash))
		die("cannot sign");
	enc_init(&e);
	tx_encode(&e, t);
	if (enc_error(&e) || c->npending == sizeof(c->pending) / sizeof(c->pending[0]))
		die("cannot encode the transaction");
	if (hash)
		tx_hash(e.buf, e.len, hash);
	size_t i = c->npending++;
	c->pending[i].bytes = enc_take(&e, &c->pending[i].len);
}

void cb_contract(const struct chainbuild *c, struct lease_contract *k, uint64_t time_ns)
{
	memset(k, 0, sizeof(*k));
	k->version = CONTRACT_VERSION;
	snprintf(k->chain_id, sizeof(k->chain_id), "%s", c->chain_id);
	memcpy(k->tenant, c->key[CB_TENANT].pub, PUBKEY_LEN);
	memcpy(k->provider, c->key[CB_VALIDATOR].pub, PUBKEY_LEN);
	k->nonce = c->nonce[CB_TENANT];
	k->expiry = time_ns / CB_SEC + 3600;
	k->vm.vcpus = 1;
	k->vm.memory_mib = 512;
	k->vm.disk_gib = 0;
	snprintf(k->vm.image, sizeof(k->vm.image), "tiny");
	k->duration_s = 3600;
	k->deposit = 1000000;
	k->interval_s = 1;
	k->prices.vcpu_second = 20;
	k->prices.mem_gib_second = 5;
	k->sla.max_delay_ppm = 100000;
	k->sla.credit_ppm = 100000;
}

void cb_usage(struct tx *t, const uint8_t lease_id[LEASE_ID_LEN], uint64_t seq,
	      const uint8_t prev[HASH_LEN], uint64_t start_ns, uint64_t span_ns, uint64_t cpu_ns)
{
	struct usage_record *u = &t->u.usage;

	memset(t, 0, sizeof(*t));
	t->kind = TX_USAGE;
	memcpy(u->lease_id, lease_id, LEASE_ID_LEN);
	u->seq = seq;
	if (prev)
		memcpy(u->prev_hash, prev, HASH_LEN);
	u->start_ns = start_ns;
	u->end_ns = start_ns + span_ns;
	u->cpu_ns = cpu_ns;
	u->mem_mib = 512;
	u->mem_peak_bytes = 300u << 20;
	u->gpu_source = GPU_SOURCE_NONE;
}

void cb_double_precommit(const struct chainbuild *c, enum cb_who who, uint64_t height,
			 struct signed_vote *x, struct signed_vote *y)
{
	memset(x, 0, sizeof(*x));
	x->v.type = VOTE_PRECOMMIT;
	x->v.height = height;
	memcpy(x->validator, c->key[who].pub, PUBKEY_LEN);
	*y = *x;
	memset(x->v.block_id, 0x11, HASH_LEN);
	memset(y->v.block_id, 0x22, HASH_LEN);
	if (vote_sign(&x->v, &c->key[who], c->genesis_hash, x->sig) ||
	    vote_sign(&y->v, &c->key[who], c->genesis_hash, y->sig))
		die("cannot sign a vote");
}

static void grow(struct chainbuild *c)
{
	if (c->nblocks < c->cap)
		return;
	c->cap = c->cap ? 2 * c->cap : 8;
	c->blocks = realloc(c->blocks, c->cap * sizeof(*c->blocks));
	c->certs = realloc(c->certs, c->cap * sizeof(*c->certs));
	c->next_vals = realloc(c->next_vals, c->cap * sizeof(*c->next_vals));
	if (!c->blocks || !c->certs || !c->next_vals)
		die("out of memory");
}

void cb_seal(struct chainbuild *c, uint64_t time_ns, bool lenient,
	     void (*tamper)(struct block_header *h, void *ctx), void *ctx)
{
	struct block *b;
	struct block_header *h;
	struct commit_cert *cert;
	struct block_ctx bc = { c->chain_id, c->height + 1, time_ns };
	struct last_commit lc;
	struct exec_result r;
	char why[WHY_MAX];
	struct vote v;

	grow(c);
	b = &c->blocks[c->nblocks];
	cert = &c->certs[c->nblocks];
	memset(b, 0, sizeof(*b));
	b->txs = calloc(c->npending ? c->npending : 1, sizeof(*b->txs));
	if (!b->txs)
		die("out of memory");
	for (size_t i = 0; i < c->npending; i++) {
		struct tx t;
		uint8_t hash[HASH_LEN];
		int rc;

		b->txs[i].bytes = c->pending[i].bytes;
		b->txs[i].len = c->pending[i].len;
		if (tx_decode(&t, b->txs[i].bytes, b->txs[i].len))
			die("a queued transaction does not decode");
		tx_hash(b->txs[i].bytes, b->txs[i].len, hash);
		/* The usage log a block names holds every USAGE transaction in it
		 * (lib/chain/verify.h): a hostile validator's block does too. */
		if (t.kind == TX_USAGE) {
			uint8_t leaf[HASH_LEN];

			merkle_leaf_hash(b->txs[i].bytes, b->txs[i].len, leaf);
			merkle_frontier_append(&c->usage, leaf);
		}
		rc = state_apply_tx(&c->state, &bc, &t, b->txs[i].bytes, b->txs[i].len, hash,
				    NULL, why);
		if (rc && (!lenient || state_err_is_fatal(rc)))
			die("block %" PRIu64 " transaction %zu does not apply: %s", bc.height, i,
			    why);
	}
	b->ntx = c->npending;
	c->npending = 0;
	b->header.height = bc.height;   /* the end-of-block rules run at it */
	memcpy(b->header.last_commit_hash, c->last_cert_hash, HASH_LEN);
	lc.cert = c->nblocks ? &c->certs[c->nblocks - 1] : NULL;
	lc.signers = c->nblocks ? &c->last_vals : NULL;
	if (exec_finish(&c->state, b, &lc, &r))
		die("cannot finish block %" PRIu64, bc.height);
	h = &b->header;
	h->version = BLOCK_VERSION;
	snprintf(h->chain_id, sizeof(h->chain_id), "%s", c->chain_id);
	h->height = bc.height;
	h->time_ns = time_ns;
	memcpy(h->prev_block_id, c->prev_id, HASH_LEN);
	memcpy(h->last_commit_hash, c->last_cert_hash, HASH_LEN);
	exec_fill_header(b, &r);
	h->usage_size = c->usage.size;
	merkle_frontier_root(&c->usage, h->usage_root);
	valset_hash(&c->vals, h->validators_hash);
	memcpy(h->proposer, c->key[CB_VALIDATOR].pub, PUBKEY_LEN);
	if (tamper)
		tamper(h, ctx);

	memset(cert, 0, sizeof(*cert));
	memset(&v, 0, sizeof(v));
	v.type = VOTE_PRECOMMIT;
	v.height = h->height;
	block_id(h, v.block_id);
	cert->height = h->height;
	memcpy(cert->block_id, v.block_id, HASH_LEN);
	cert->n = 1;
	memcpy(cert->sigs[0].validator, c->key[CB_VALIDATOR].pub, PUBKEY_LEN);
	if (vote_sign(&v, &c->key[CB_VALIDATOR], c->genesis_hash, cert->sigs[0].sig))
		die("cannot sign the precommit");

	c->next_vals[c->nblocks] = NULL;
	c->last_vals = c->vals;
	if (memcmp(h->next_validators_hash, h->validators_hash, HASH_LEN)) {
		c->next_vals[c->nblocks] = malloc(sizeof(r.next_vals));
		if (!c->next_vals[c->nblocks])
			die("out of memory");
		*c->next_vals[c->nblocks] = r.next_vals;
		c->vals = r.next_vals;
	}
	c->height = h->height;
	c->time_ns = time_ns;
	memcpy(c->prev_id, v.block_id, HASH_LEN);
	cert_hash(cert, c->last_cert_hash);
	c->nblocks++;
}

struct lease_ids {
	uint8_t (*id)[LEASE_ID_LEN];
	size_t n;
};

static int add_lease_id(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			size_t vlen)
{
	struct lease_ids *ids = ctx;

	(void)val, (void)vlen;
	if (klen != STATE_KEY_LEN)
		return TALLY_E_STORE;
	ids->id = realloc(ids->id, (ids->n + 1) * sizeof(*ids->id));
	if (!ids->id)
		die("out of memory");
	memcpy(ids->id[ids->n++], key + 1, LEASE_ID_LEN);
	return 0;
}

void cb_file(struct chainbuild *c, struct chainfile *f)
{
	struct state_backend be = memstate_backend(c->mem);
	struct lease_ids ids = { NULL, 0 };
	char why[WHY_MAX];

	if (chainfile_set_genesis(f, c->genesis_json, why))
		die("genesis: %s", why);
	for (size_t i = 0; i < c->nblocks; i++)
		if (chainfile_add_block(f, &c->blocks[i], &c->certs[i], c->next_vals[i]))
			die("out of memory");
	if (be.scan_type(be.ctx, STATE_KEY_LEASE, add_lease_id, &ids))
		die("cannot list the leases");
	for (size_t i = 0; i < ids.n; i++) {
		uint8_t key[STATE_KEY_LEN];
		struct state_proof p;

		state_key(key, STATE_KEY_LEASE, ids.id[i]);
		if (state_proof_make(&c->state, key, sizeof(key), &p))
			die("cannot prove lease %zu", i);
		if (chainfile_add_lease(f, ids.id[i], c->height, &p, why))
			die("lease %zu: %s", i, why);
		state_proof_free(&p);
	}
	free(ids.id);
}

void cb_write_file(struct chainbuild *c, const char *path)
{
	struct chainfile f;
	char why[WHY_MAX];

	chainfile_init(&f);
	cb_file(c, &f);
	if (chainfile_save(&f, path, why))
		die("%s", why);
	chainfile_free(&f);
}
