/* Trying a block (see lib/chain/trial.h). The overlay keeps entries; the
 * usage log, which a memory overlay only counts, is kept here as a frontier
 * so that exec_finish gets the root the block would give. */
#include "lib/chain/trial.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/exec.h"
#include "lib/errors.h"

static struct state_backend overlay_of(struct trial *t)
{
	return memstate_backend(t->over);
}

static int t_get(void *ctx, const uint8_t *key, size_t klen, uint8_t *val, size_t cap,
		 size_t *vlen)
{
	struct state_backend be = overlay_of(ctx);

	return be.get(be.ctx, key, klen, val, cap, vlen);
}

static int t_put(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct state_backend be = overlay_of(ctx);

	return be.put(be.ctx, key, klen, val, vlen);
}

static int t_scan_type(void *ctx, uint8_t type, state_entry_fn fn, void *fctx)
{
	struct state_backend be = overlay_of(ctx);

	return be.scan_type(be.ctx, type, fn, fctx);
}

static int t_scan_bucket(void *ctx, uint32_t bucket, state_entry_fn fn, void *fctx)
{
	struct state_backend be = overlay_of(ctx);

	return be.scan_bucket(be.ctx, bucket, fn, fctx);
}

/* Room for one more record of size bytes in *arr (n held, *cap allocated).
 * False when there is none: t->rc is then TALLY_E_NOMEM, the trial notes
 * nothing more and trial_commit refuses it (its roots still stand, so the
 * block is judged; its commit executes it instead). */
static bool note_room(struct trial *t, void **arr, size_t *cap, size_t n, size_t size)
{
	if (!t->rc && n == *cap) {
		size_t grown = *cap ? 2 * *cap : 256;
		void *p = realloc(*arr, grown * size);

		if (p) {
			*arr = p;
			*cap = grown;
		} else {
			t->rc = TALLY_E_NOMEM;
		}
	}
	return !t->rc;
}

static int t_usage_append(void *ctx, uint64_t index, const uint8_t leaf_hash[HASH_LEN],
			  const uint8_t tx_hash[HASH_LEN], const uint8_t lease_id[LEASE_ID_LEN],
			  uint64_t seq)
{
	struct trial *t = ctx;
	struct trial_usage *u;

	if (index != t->usage.size)
		return TALLY_E_STATE;
	merkle_frontier_append(&t->usage, leaf_hash);
	if (!note_room(t, (void **)&t->appended, &t->cap_appended, t->nappended,
		       sizeof(*t->appended)))
		return 0;
	u = &t->appended[t->nappended++];
	u->index = index;
	memcpy(u->leaf, leaf_hash, HASH_LEN);
	memcpy(u->tx_hash, tx_hash, HASH_LEN);
	memcpy(u->lease_id, lease_id, LEASE_ID_LEN);
	u->seq = seq;
	return 0;
}

/* The trial keeps no bucket hashes of its own: it notes them for
 * trial_commit. */
static int t_bucket_hash_put(void *ctx, uint32_t bucket, const uint8_t hash[HASH_LEN])
{
	struct trial *t = ctx;
	struct trial_bucket *b;

	if (!note_room(t, (void **)&t->buckets, &t->cap_buckets, t->nbuckets,
		       sizeof(*t->buckets)))
		return 0;
	b = &t->buckets[t->nbuckets++];
	b->bucket = bucket;
	memcpy(b->hash, hash, HASH_LEN);
	return 0;
}

static int t_usage_root(void *ctx, uint64_t size, uint8_t out[HASH_LEN])
{
	struct trial *t = ctx;

	if (size != t->usage.size)
		return TALLY_E_STATE;   /* only the log as it stands is known */
	merkle_frontier_root(&t->usage, out);
	return 0;
}

int trial_begin(struct trial *t, const struct state *base, const struct merkle_frontier *usage)
{
	struct state_backend be = {
		.ctx = t,
		.get = t_get,
		.put = t_put,
		.scan_type = t_scan_type,
		.scan_bucket = t_scan_bucket,
		.usage_append = t_usage_append,
		.usage_root = t_usage_root,
		.bucket_hash_put = t_bucket_hash_put,
	};
	int rc;

	memset(t, 0, sizeof(*t));
	if (usage->size != base->usage_size)
		return TALLY_E_STATE;
	t->usage = *usage;
	t->base_usage_size = base->usage_size;
	if (base->node)
		state_root(base, t->base_root);
	t->over = memstate_new_overlay(&base->be);
	if (!t->over)
		return TALLY_E_NOMEM;
	rc = state_open_copy(&t->state, &be, base);
	if (rc)
		trial_end(t);
	return rc;
}

void trial_end(struct trial *t)
{
	state_close(&t->state);
	memstate_free(t->over);
	t->over = NULL;
	free(t->appended);
	free(t->buckets);
	t->appended = NULL;
	t->buckets = NULL;
	t->nappended = t->cap_appended = t->nbuckets = t->cap_buckets = 0;
}

static int put_below(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
		     size_t vlen)
{
	struct state *base = ctx;

	return base->be.put(base->be.ctx, key, klen, val, vlen);
}

int trial_can_commit(const struct trial *t, const struct state *base)
{
	uint8_t root[HASH_LEN];

	if (t->rc)
		return t->rc;
	if (!t->over || !t->state.node || t->state.ndirty || !base->node || base->ndirty ||
	    base->usage_size != t->base_usage_size)
		return TALLY_E_STATE;
	/* The usage log alone does not tell: a block with no USAGE moves the
	 * state and not the log. */
	state_root(base, root);
	return memcmp(root, t->base_root, HASH_LEN) ? TALLY_E_STATE : 0;
}

int trial_commit(struct trial *t, struct state *base)
{
	uint8_t (*node)[HASH_LEN];
	int rc = trial_can_commit(t, base);

	if (rc)
		return rc;
	rc = memstate_each_own(t->over, put_below, base);
	for (size_t i = 0; i < t->nappended && !rc; i++) {
		const struct trial_usage *u = &t->appended[i];

		rc = base->be.usage_append(base->be.ctx, u->index, u->leaf, u->tx_hash,
					   u->lease_id, u->seq);
	}
	for (size_t i = 0; i < t->nbuckets && !rc && base->be.bucket_hash_put; i++)
		rc = base->be.bucket_hash_put(base->be.ctx, t->buckets[i].bucket,
					      t->buckets[i].hash);
	if (rc)
		return rc;
	/* The trees trade places: the trial's is the state's after the block.
	 * The state's old one differs from it on the paths from the buckets
	 * the block changed to the root alone: copied along those, it is the
	 * next trial's tree, ready (state_spare_keep). */
	node = base->node;
	base->node = t->state.node;
	t->state.node = NULL;
	base->tree_version++;
	base->usage_size = t->state.usage_size;
	for (size_t i = 0; i < t->nbuckets; i++)
		for (uint32_t k = STATE_BUCKETS + t->buckets[i].bucket; k >= 1; k >>= 1)
			memcpy(node[k], base->node[k], HASH_LEN);
	state_spare_keep(base, node);
	return 0;
}

void trial_next_header(const struct chain_verifier *v, uint64_t time_ns,
		       const uint8_t proposer[PUBKEY_LEN], struct block_header *h)
{
	memset(h, 0, sizeof(*h));
	h->version = BLOCK_VERSION;
	snprintf(h->chain_id, sizeof(h->chain_id), "%s", v->chain_id);
	h->height = v->height + 1;
	h->time_ns = time_ns;
	memcpy(h->prev_block_id, v->last_block_id, HASH_LEN);
	memcpy(h->last_commit_hash, v->last_cert_hash, HASH_LEN);
	valset_hash(&v->vals, h->validators_hash);
	memcpy(h->proposer, proposer, PUBKEY_LEN);
}

int trial_with_last_cert(const struct chain_verifier *v, const struct commit_cert *prev,
			 struct chain_verifier **out, char *why)
{
	struct block_header next = { .height = v->height + 1 };
	struct chain_verifier *c = malloc(sizeof(*c));
	int rc = 0;

	*out = NULL;
	if (!c)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	*c = *v;
	if (prev)
		rc = chain_adopt_last_cert(c, &next, prev, why);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int trial_check_block(const struct chain_verifier *v, const struct state *s, const struct block *b,
		      const struct commit_cert *prev, char *why)
{
	struct exec_result r;

	return trial_check_block_kept(v, s, b, prev, NULL, &r, why);
}

int trial_check_block_kept(const struct chain_verifier *v, const struct state *s,
			   const struct block *b, const struct commit_cert *prev,
			   struct trial *kept, struct exec_result *r, char *why)
{
	struct chain_verifier next = *v;
	struct merkle_frontier usage;
	struct last_commit lc;
	struct trial local, *t = kept ? kept : &local;   /* its backend points at it */
	int rc;

	memset(t, 0, sizeof(*t));   /* ending it is harmless whatever comes */
	rc = prev ? chain_adopt_last_cert(&next, &b->header, prev, why) : 0;
	/* What verification refuses is never executed. */
	if (!rc)
		rc = chain_verify_proposal(&next, b, &usage, why);
	if (rc)
		return rc;
	rc = trial_begin(t, s, &v->usage);
	if (rc)
		return why_set(why, rc, "cannot try block %llu: %s",
			       (unsigned long long)b->header.height, tally_strerror(rc));
	chain_last_commit(&next, &lc);
	rc = exec_block(&t->state, b, &lc, NULL, NULL, r, NULL, why);
	if (!rc)
		rc = exec_check_header(&b->header, r, why);
	if (rc || !kept)
		trial_end(t);
	return rc;
}
