/* The state root: bucket hashes and the 16-level tree over them, kept up to
 * date incrementally (the rules are in lib/chain/state.h). */
#include "lib/chain/state.h"

#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"
#include "lib/merkle.h"

#define LEAVES STATE_BUCKETS

static uint32_t bucket_hashed(const uint8_t *key, size_t klen)
{
	uint8_t h[HASH_LEN];

	sha256(key, klen, h);
	return (uint32_t)h[0] << 8 | h[1];
}

/* The buckets of the keys this thread asked for last: a transaction reads
 * and writes the same few keys (its signer, its lease), and a block is
 * applied to a trial, its writes committed and the mempool checked again
 * over the same keys, each asking for the bucket (a SHA-256) once more.
 * Direct-mapped by bytes of the key's id (a public key or a hash, so well
 * spread); a slot holds the whole key and answers only for an equal one,
 * so two keys that share a slot cost a SHA-256, never a wrong bucket. Per
 * thread: no lock, and the node's threads each keep theirs. */
#define BUCKET_MEMO_SLOTS 2048

struct bucket_memo {
	uint8_t key[STATE_KEY_LEN];
	bool used;
	uint16_t bucket;
};

static _Thread_local struct bucket_memo bucket_memo[BUCKET_MEMO_SLOTS];

static uint32_t memo_slot(const uint8_t key[STATE_KEY_LEN])
{
	uint32_t x = (uint32_t)key[1] | (uint32_t)key[2] << 8 | (uint32_t)key[3] << 16 |
		     (uint32_t)key[4] << 24;

	x ^= (uint32_t)key[0] * 0x9e3779b1u ^ (uint32_t)key[STATE_KEY_LEN - 1] << 5;
	return x % BUCKET_MEMO_SLOTS;
}

uint32_t state_bucket_of(const uint8_t *key, size_t klen)
{
	struct bucket_memo *m;

	if (klen != STATE_KEY_LEN)
		return bucket_hashed(key, klen);
	m = &bucket_memo[memo_slot(key)];
	if (!m->used || memcmp(m->key, key, STATE_KEY_LEN)) {
		memcpy(m->key, key, STATE_KEY_LEN);
		m->bucket = (uint16_t)bucket_hashed(key, klen);
		m->used = true;
	}
	return m->bucket;
}

/* Recompute the ancestors of the given leaves (ascending, unique); idx is
 * used as scratch. */
static void fix_paths(struct state *s, uint32_t *idx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		idx[i] += LEAVES;
	for (int level = 0; level < STATE_TREE_LEVELS; level++) {
		size_t m = 0;

		for (size_t i = 0; i < n; i++) {
			uint32_t parent = idx[i] >> 1;

			if (m && idx[m - 1] == parent)
				continue;
			merkle_node_hash(s->node[2 * parent], s->node[2 * parent + 1],
					 s->node[parent]);
			idx[m++] = parent;
		}
		n = m;
	}
}

static void tree_reset(struct state *s)
{
	/* Node i sits at depth floor(log2 i); its subtree height is 16 - depth. */
	for (uint32_t i = 1, depth = 0; i < 2 * LEAVES; i++) {
		if (i == (2u << depth))
			depth++;
		memcpy(s->node[i], s->empty[STATE_TREE_LEVELS - depth], HASH_LEN);
	}
	memset(s->dirty_bits, 0, LEAVES / 8);
	s->ndirty = 0;
}

/* The running hash of one bucket: the 0x02 tag goes in with the first
 * entry, so a bucket with none stays all zero. */
struct bucket_hasher {
	struct sha256_stream *h;
};

/* One entry of a bucket into the running hash: u32 len(key) | key |
 * u32 len(value) | value. */
static int hash_entry(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
		      size_t vlen)
{
	static const uint8_t tag = 0x02;
	struct bucket_hasher *bh = ctx;
	uint8_t len[4];

	if (!bh->h) {
		bh->h = sha256_begin();
		if (!bh->h)
			return TALLY_E_NOMEM;
		sha256_add(bh->h, &tag, 1);
	}
	for (int i = 0; i < 4; i++)
		len[i] = (uint8_t)(klen >> (8 * i));
	sha256_add(bh->h, len, 4);
	sha256_add(bh->h, key, klen);
	for (int i = 0; i < 4; i++)
		len[i] = (uint8_t)(vlen >> (8 * i));
	sha256_add(bh->h, len, 4);
	sha256_add(bh->h, val, vlen);
	return 0;
}

int state_bucket_hash_scan(state_scan_fn scan, void *sctx, uint8_t out[HASH_LEN])
{
	struct bucket_hasher bh = { NULL };
	int rc = scan(sctx, hash_entry, &bh);

	memset(out, 0, HASH_LEN);
	if (bh.h) {
		sha256_end(bh.h, out);
		if (rc)
			memset(out, 0, HASH_LEN);
	}
	return rc;
}

struct bucket_scan {
	struct state *s;
	uint32_t bucket;
};

static int scan_backend_bucket(void *ctx, state_entry_fn fn, void *fctx)
{
	struct bucket_scan *bs = ctx;

	return bs->s->be.scan_bucket(bs->s->be.ctx, bs->bucket, fn, fctx);
}

int state_bucket_hash(struct state *s, uint32_t bucket, uint8_t out[HASH_LEN])
{
	struct bucket_scan bs = { s, bucket };

	return state_bucket_hash_scan(scan_backend_bucket, &bs, out);
}

struct load_ctx {
	struct state *s;
	uint32_t *idx;
	size_t n;
};

static int load_one(void *ctx, uint32_t bucket, const uint8_t hash[HASH_LEN])
{
	struct load_ctx *lc = ctx;

	if (bucket >= LEAVES || (lc->n && lc->idx[lc->n - 1] >= bucket))
		return TALLY_E_STORE;     /* kept hashes must come in bucket order */
	memcpy(lc->s->node[LEAVES + bucket], hash, HASH_LEN);
	lc->idx[lc->n++] = bucket;
	return 0;
}

/* The tree from the kept bucket hashes, or from every entry. */
static int tree_build(struct state *s)
{
	struct load_ctx lc = { s, malloc(sizeof(uint32_t) * LEAVES), 0 };
	int rc = 0;

	if (!lc.idx)
		return TALLY_E_NOMEM;
	tree_reset(s);
	s->tree_version++;
	if (s->be.bucket_hash_each) {
		rc = s->be.bucket_hash_each(s->be.ctx, load_one, &lc);
	} else {
		for (uint32_t b = 0; b < LEAVES && !rc; b++) {
			uint8_t h[HASH_LEN];
			static const uint8_t zero[HASH_LEN];

			rc = state_bucket_hash(s, b, h);
			if (!rc && memcmp(h, zero, HASH_LEN))
				rc = load_one(&lc, b, h);
		}
	}
	if (!rc)
		fix_paths(s, lc.idx, lc.n);
	free(lc.idx);
	return rc;
}

/* A state over be with room for its tree (node, when not NULL, is that
 * room, taken over). */
static int tree_alloc(struct state *s, const struct state_backend *be, uint64_t usage_size,
		      uint8_t (*node)[HASH_LEN])
{
	memset(s, 0, sizeof(*s));
	s->be = *be;
	s->usage_size = usage_size;
	s->node = node ? node : malloc(sizeof(*s->node) * 2 * LEAVES);
	s->dirty_bits = calloc(LEAVES / 8, 1);
	s->dirty = malloc(sizeof(*s->dirty) * LEAVES);
	if (!s->node || !s->dirty_bits || !s->dirty) {
		state_close(s);
		return TALLY_E_NOMEM;
	}
	return 0;
}

int state_open(struct state *s, const struct state_backend *be, uint64_t usage_size)
{
	int rc = tree_alloc(s, be, usage_size, NULL);

	if (rc)
		return rc;
	memset(s->empty[0], 0, HASH_LEN);
	for (int h = 1; h <= STATE_TREE_LEVELS; h++)
		merkle_node_hash(s->empty[h - 1], s->empty[h - 1], s->empty[h]);
	return tree_build(s);
}

int state_open_copy(struct state *s, const struct state_backend *be, const struct state *base)
{
	struct state_spare *sp = base->spare;
	int rc;

	memset(s, 0, sizeof(*s));
	/* A base with writes not yet in its root would give a tree that is
	 * neither its before nor its after. */
	if (!base->node || base->ndirty)
		return TALLY_E_STATE;
	/* base's spare, when it is a copy of base's tree as it stands (the
	 * spare is base's to give: it is not part of the state). */
	if (sp && sp->node && sp->of == (const void *)base->node &&
	    sp->version == base->tree_version) {
		rc = tree_alloc(s, be, base->usage_size, sp->node);
		sp->node = NULL;
		if (rc)
			return rc;
	} else {
		rc = tree_alloc(s, be, base->usage_size, NULL);
		if (rc)
			return rc;
		memcpy(s->node, base->node, sizeof(*s->node) * 2 * LEAVES);
	}
	memcpy(s->empty, base->empty, sizeof(s->empty));
	return 0;
}

void state_spare_keep(struct state *s, uint8_t (*copy)[HASH_LEN])
{
	if (!s->spare)
		s->spare = calloc(1, sizeof(*s->spare));
	if (!s->spare) {
		free(copy);   /* the next trial copies the tree instead */
		return;
	}
	free(s->spare->node);
	s->spare->node = copy;
	s->spare->of = s->node;
	s->spare->version = s->tree_version;
}

void state_open_scratch(struct state *s, const struct state_backend *be, uint64_t usage_size)
{
	memset(s, 0, sizeof(*s));
	s->be = *be;
	s->usage_size = usage_size;
}

void state_close(struct state *s)
{
	if (s->spare)
		free(s->spare->node);
	free(s->spare);
	s->spare = NULL;
	free(s->node);
	free(s->dirty_bits);
	free(s->dirty);
	s->node = NULL;
	s->dirty_bits = NULL;
	s->dirty = NULL;
}

int state_reload(struct state *s, uint64_t usage_size)
{
	s->usage_size = usage_size;
	return s->node ? tree_build(s) : 0;
}

void state_mark_dirty(struct state *s, uint32_t bucket)
{
	uint8_t bit = 1u << (bucket & 7);

	if (!s->dirty_bits)
		return;     /* a scratch state keeps no root */
	if (s->dirty_bits[bucket >> 3] & bit)
		return;
	s->dirty_bits[bucket >> 3] |= bit;
	s->dirty[s->ndirty++] = bucket;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int state_root_update(struct state *s)
{
	int rc = 0;

	if (!s->node)
		return TALLY_E_STATE;
	s->tree_version++;
	qsort(s->dirty, s->ndirty, sizeof(*s->dirty), cmp_u32);
	for (size_t i = 0; i < s->ndirty && !rc; i++) {
		uint32_t b = s->dirty[i];
		uint8_t h[HASH_LEN];

		rc = state_bucket_hash(s, b, h);
		if (!rc && s->be.bucket_hash_put)
			rc = s->be.bucket_hash_put(s->be.ctx, b, h);
		if (!rc)
			memcpy(s->node[LEAVES + b], h, HASH_LEN);
	}
	if (rc)
		return rc;
	fix_paths(s, s->dirty, s->ndirty);
	memset(s->dirty_bits, 0, LEAVES / 8);
	s->ndirty = 0;
	return 0;
}

void state_root(const struct state *s, uint8_t out[HASH_LEN])
{
	memcpy(out, s->node[1], HASH_LEN);
}

int state_root_recompute(struct state *s, uint8_t out[HASH_LEN])
{
	uint8_t (*level)[HASH_LEN] = malloc(sizeof(*level) * LEAVES);
	int rc = 0;

	if (!level)
		return TALLY_E_NOMEM;
	for (uint32_t b = 0; b < LEAVES && !rc; b++)
		rc = state_bucket_hash(s, b, level[b]);
	for (uint32_t n = LEAVES; n > 1 && !rc; n /= 2)
		for (uint32_t i = 0; i < n / 2; i++)
			merkle_node_hash(level[2 * i], level[2 * i + 1], level[i]);
	if (!rc)
		memcpy(out, level[0], HASH_LEN);
	free(level);
	return rc;
}
