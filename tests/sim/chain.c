/* One simulated node's chain: the consensus engine's application, on the
 * in-memory state. Blocks are built and checked on a trial of the state
 * (lib/chain/trial.h) and a decided block is committed by the auditor's
 * replay (lib/chain/replay.h: chain_verify_block with its certificate, then
 * execution and the header's roots compared), so every block a node commits
 * is one the chain layer verifies and executes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/consensus/proposer.h"
#include "lib/chain/exec.h"
#include "lib/chain/trial.h"
#include "lib/chain/verify.h"
#include "lib/errors.h"
#include "tests/sim/sim.h"

#define POOL_MAX 2000
#define BLOCK_TXS_MAX 200

int chain_init(struct chain *c, struct sim *s, int node, const struct genesis *g, char *why)
{
	memset(c, 0, sizeof(*c));
	c->sim = s;
	c->node = node;
	c->vals = g->validators;
	for (size_t i = 0; i < c->vals.n; i++)
		c->vals.v[i].priority = 0;
	return replay_init(&c->r, g, why);
}

void chain_free(struct chain *c)
{
	replay_free(&c->r);
	for (size_t i = 0; i < c->nblocks; i++)
		free(c->block[i]);
	free(c->block);
	free(c->block_len);
	free(c->cert);
	for (size_t i = 0; i < c->npool; i++)
		free(c->pool[i].bytes);
	free(c->pool);
	memset(c, 0, sizeof(*c));
}

void chain_add_tx(struct chain *c, const uint8_t *bytes, size_t len)
{
	struct pending_tx *p;
	uint8_t hash[HASH_LEN];
	struct tx t;

	if (c->npool >= POOL_MAX || tx_decode(&t, bytes, len))
		return;
	tx_hash(bytes, len, hash);
	for (size_t i = 0; i < c->npool; i++)
		if (!memcmp(c->pool[i].hash, hash, HASH_LEN))
			return;
	if (c->npool == c->pool_cap) {
		size_t cap = c->pool_cap ? 2 * c->pool_cap : 64;
		struct pending_tx *grown = realloc(c->pool, cap * sizeof(*grown));

		if (!grown)
			abort();
		c->pool = grown;
		c->pool_cap = cap;
	}
	p = &c->pool[c->npool++];
	p->bytes = malloc(len);
	if (!p->bytes)
		abort();
	memcpy(p->bytes, bytes, len);
	p->len = len;
	memcpy(p->hash, hash, HASH_LEN);
	p->tx = t;
}

/* After a commit: what the block carried, and what can no longer apply
 * (a nonce the account has passed), leave the pool. */
static void pool_prune(struct chain *c, const struct block *b)
{
	size_t k = 0;

	for (size_t i = 0; i < c->npool; i++) {
		struct pending_tx *p = &c->pool[i];
		struct account a;
		bool gone = false;

		for (size_t j = 0; j < b->ntx && !gone; j++) {
			uint8_t h[HASH_LEN];

			tx_hash(b->txs[j].bytes, b->txs[j].len, h);
			gone = !memcmp(h, p->hash, HASH_LEN);
		}
		if (!gone) {
			int rc = state_account_get(&c->r.state, p->tx.signer, &a);

			gone = (rc == 0 || rc == TALLY_E_NOTFOUND) && p->tx.nonce < a.nonce;
		}
		if (gone)
			free(p->bytes);
		else
			c->pool[k++] = *p;
	}
	c->npool = k;
}

/* --- the application ------------------------------------------------------------- */

static int app_tip(void *ctx, struct engine_tip *t)
{
	struct chain *c = ctx;

	t->height = c->r.v.height;
	t->time_ns = c->r.v.time_ns;
	t->vals = c->vals;
	memset(&t->last_cert, 0, sizeof(t->last_cert));
	if (c->nblocks)
		t->last_cert = c->cert[c->nblocks - 1];
	t->signers = c->r.v.last_vals;
	return 0;
}

static int app_build(void *ctx, uint64_t height, uint64_t time_ns,
		     const uint8_t proposer[PUBKEY_LEN], const struct commit_cert *prev,
		     uint8_t **out, size_t *len, char *why)
{
	struct chain *c = ctx;
	struct chain_verifier *tip;
	struct block b;
	struct block_header *h = &b.header;
	struct block_ctx bc = { c->r.v.chain_id, height, time_ns };
	struct last_commit lc;
	struct exec_result r;
	struct trial t;
	struct enc e;
	int rc;

	memset(&b, 0, sizeof(b));
	if (height != c->r.v.height + 1)
		return why_set(why, TALLY_E_HEIGHT, "asked for block %" PRIu64, height);
	if ((rc = trial_with_last_cert(&c->r.v, prev, &tip, why)))
		return rc;
	trial_next_header(tip, time_ns, proposer, h);
	b.txs = calloc(BLOCK_TXS_MAX, sizeof(*b.txs));
	if (!b.txs) {
		free(tip);
		return TALLY_E_NOMEM;
	}
	rc = trial_begin(&t, &c->r.state, &c->r.v.usage);
	for (size_t i = 0; !rc && i < c->npool && b.ntx < BLOCK_TXS_MAX; i++) {
		struct pending_tx *p = &c->pool[i];
		char sub[WHY_MAX];
		int arc = state_apply_tx(&t.state, &bc, &p->tx, p->bytes, p->len, p->hash, NULL,
					 sub);

		if (!arc) {
			b.txs[b.ntx].bytes = p->bytes;
			b.txs[b.ntx].len = p->len;
			b.ntx++;
		} else if (state_err_is_fatal(arc)) {
			rc = arc;
		}
	}
	chain_last_commit(tip, &lc);
	if (!rc)
		rc = exec_finish(&t.state, &b, &lc, &r);
	trial_end(&t);
	free(tip);
	if (rc) {
		free(b.txs);
		return why_set(why, rc, "building block %" PRIu64 ": %s", height, tally_strerror(rc));
	}
	exec_fill_header(&b, &r);
	enc_init(&e);
	block_encode(&e, &b);
	free(b.txs);
	if ((rc = enc_error(&e))) {
		enc_free(&e);
		return rc;
	}
	*out = enc_take(&e, len);
	return 0;
}

static int app_check(void *ctx, const uint8_t *bytes, size_t len, const struct commit_cert *prev,
		     char *why)
{
	struct chain *c = ctx;
	struct block b;
	int rc = block_decode(&b, bytes, len);

	if (rc)
		return why_set(why, rc, "the block does not decode");
	rc = trial_check_block(&c->r.v, &c->r.state, &b, prev, why);
	block_free(&b);
	return rc;
}

int chain_commit(struct chain *c, const uint8_t *bytes, size_t len,
		 const struct commit_cert *cert, const struct commit_cert *prev, char *why)
{
	struct chain_verifier before = c->r.v;
	struct validator_set next;
	struct block b;
	int rc = block_decode(&b, bytes, len);

	if (rc)
		return why_set(why, rc, "the block does not decode");
	/* The last block's certificate becomes the one this block names. */
	rc = prev ? chain_adopt_last_cert(&c->r.v, &b.header, prev, why) : 0;
	if (!rc)
		rc = replay_block(&c->r, &b, cert, NULL, NULL, why);
	if (rc) {
		c->r.v = before;
		block_free(&b);
		return rc;
	}
	if (prev && c->nblocks)
		c->cert[c->nblocks - 1] = *prev;
	/* S_{h+1}: the priorities advanced, the stakes execution produced. */
	valset_next(&c->vals, &c->r.v.vals, &next);
	c->vals = next;
	if (c->nblocks == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;

		c->block = realloc(c->block, cap * sizeof(*c->block));
		c->block_len = realloc(c->block_len, cap * sizeof(*c->block_len));
		c->cert = realloc(c->cert, cap * sizeof(*c->cert));
		if (!c->block || !c->block_len || !c->cert)
			abort();
		c->cap = cap;
	}
	c->block[c->nblocks] = malloc(len);
	if (!c->block[c->nblocks])
		abort();
	memcpy(c->block[c->nblocks], bytes, len);
	c->block_len[c->nblocks] = len;
	c->cert[c->nblocks] = *cert;
	c->nblocks++;
	pool_prune(c, &b);
	sim_on_commit(c->sim, c->node, b.header.height, bytes, len, cert);
	block_free(&b);
	return 0;
}

static int app_commit(void *ctx, const uint8_t *bytes, size_t len,
		      const struct commit_cert *cert, const struct commit_cert *prev, char *why)
{
	return chain_commit(ctx, bytes, len, cert, prev, why);
}

static bool app_has_txs(void *ctx)
{
	struct chain *c = ctx;

	return c->npool > 0;
}

static void app_evidence(void *ctx, const struct cs_evidence *ev)
{
	struct chain *c = ctx;

	sim_on_evidence(c->sim, c->node, ev);
}

static void app_log(void *ctx, const char *line)
{
	struct chain *c = ctx;
	const char *dir = c->sim->o.dir, *at = strstr(line, dir);

	/* The run's directory differs from run to run; the trace must not. */
	if (at)
		sim_trace(c->sim, "node %d: %.*sDIR%s", c->node, (int)(at - line), line,
			  at + strlen(dir));
	else
		sim_trace(c->sim, "node %d: %s", c->node, line);
}

struct engine_app chain_app(struct chain *c)
{
	struct engine_app app = {
		.ctx = c,
		.tip = app_tip,
		.build = app_build,
		.check = app_check,
		.commit = app_commit,
		.has_txs = app_has_txs,
		.evidence = app_evidence,
		.log = app_log,
	};

	return app;
}
