/* The state in memory (see lib/chain/memstate.h). */
#include "lib/chain/memstate.h"

#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"

struct mem_entry {
	uint8_t key[STATE_KEY_LEN];
	uint8_t *val;
	size_t vlen;
};

struct mem_bucket {
	struct mem_entry *e;    /* ascending key order */
	uint32_t n, cap;
};

struct memstate {
	struct mem_bucket *bucket;       /* STATE_BUCKETS of them */
	/* The buckets that hold an array, each once: memstate_free visits
	 * these, not all 65536 (a trial or the mempool's overlay over the
	 * committed state holds a few hundred and is freed once a block). */
	uint32_t *used;
	uint32_t nused, cap_used;
	void *by_type[256];              /* tsearch trees of key copies, per key type */
	struct merkle_store *usage;      /* NULL in an overlay */
	bool overlay;
	struct state_backend below;      /* in an overlay */
};

struct memstate *memstate_new(void)
{
	struct memstate *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->bucket = calloc(STATE_BUCKETS, sizeof(*m->bucket));
	m->usage = merkle_mem_store_new();
	if (!m->bucket || !m->usage) {
		memstate_free(m);
		return NULL;
	}
	return m;
}

struct memstate *memstate_new_overlay(const struct state_backend *below)
{
	struct memstate *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->bucket = calloc(STATE_BUCKETS, sizeof(*m->bucket));
	if (!m->bucket) {
		memstate_free(m);
		return NULL;
	}
	m->overlay = true;
	m->below = *below;
	return m;
}

void memstate_free(struct memstate *m)
{
	if (!m)
		return;
	for (int t = 0; t < 256; t++)
		tdestroy(m->by_type[t], free);
	for (uint32_t u = 0; m->bucket && u < m->nused; u++) {
		struct mem_bucket *b = &m->bucket[m->used[u]];

		for (uint32_t i = 0; i < b->n; i++)
			free(b->e[i].val);
		free(b->e);
	}
	free(m->used);
	free(m->bucket);
	if (m->usage)
		merkle_mem_store_free(m->usage);
	free(m);
}

struct merkle_store *memstate_usage(struct memstate *m)
{
	return m->usage;
}

/* The index of key in its bucket, or where it would go (*found false). */
static uint32_t find(const struct mem_bucket *b, const uint8_t *key, bool *found)
{
	uint32_t lo = 0, hi = b->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(b->e[mid].key, key, STATE_KEY_LEN);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static int get(void *ctx, const uint8_t *key, size_t klen, uint8_t *val, size_t cap,
	       size_t *vlen)
{
	struct memstate *m = ctx;
	const struct mem_bucket *b;
	bool found;
	uint32_t i;

	if (klen != STATE_KEY_LEN)
		return TALLY_E_NOTFOUND;
	b = &m->bucket[state_bucket_of(key, klen)];
	i = find(b, key, &found);
	if (!found && m->overlay)
		return m->below.get(m->below.ctx, key, klen, val, cap, vlen);
	if (!found || b->e[i].vlen == 0)   /* absent, or deleted here */
		return TALLY_E_NOTFOUND;
	if (b->e[i].vlen > cap)
		return TALLY_E_TOOLONG;
	memcpy(val, b->e[i].val, b->e[i].vlen);
	*vlen = b->e[i].vlen;
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STATE_KEY_LEN);
}

/* Room for one more entry in bucket number bn: false when out of memory.
 * A bucket's first array is noted in m->used. */
static bool bucket_room(struct memstate *m, uint32_t bn)
{
	struct mem_bucket *b = &m->bucket[bn];
	uint32_t cap;
	struct mem_entry *p;

	if (b->n < b->cap)
		return true;
	if (b->cap == 0 && m->nused == m->cap_used) {
		uint32_t ucap = m->cap_used ? 2 * m->cap_used : 64;
		uint32_t *u = realloc(m->used, ucap * sizeof(*u));

		if (!u)
			return false;
		m->used = u;
		m->cap_used = ucap;
	}
	cap = b->cap ? 2 * b->cap : 2;
	p = realloc(b->e, cap * sizeof(*p));
	if (!p)
		return false;
	if (b->cap == 0)
		m->used[m->nused++] = bn;
	b->e = p;
	b->cap = cap;
	return true;
}

static int put(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct memstate *m = ctx;
	struct mem_bucket *b;
	uint8_t *copy, *tkey;
	bool found;
	uint32_t bn, i;

	if (klen != STATE_KEY_LEN)
		return TALLY_E_INVALID;
	copy = malloc(vlen ? vlen : 1);
	if (!copy)
		return TALLY_E_NOMEM;
	memcpy(copy, val, vlen);
	bn = state_bucket_of(key, klen);
	b = &m->bucket[bn];
	i = find(b, key, &found);
	if (found) {
		free(b->e[i].val);
		b->e[i].val = copy;
		b->e[i].vlen = vlen;
		return 0;
	}
	tkey = malloc(STATE_KEY_LEN);
	if (!tkey || !bucket_room(m, bn)) {
		free(tkey);
		free(copy);
		return TALLY_E_NOMEM;
	}
	memcpy(tkey, key, STATE_KEY_LEN);
	if (!tsearch(tkey, &m->by_type[key[0]], key_cmp)) {
		free(tkey);
		free(copy);
		return TALLY_E_NOMEM;
	}
	memmove(&b->e[i + 1], &b->e[i], (b->n - i) * sizeof(*b->e));
	b->n++;
	memcpy(b->e[i].key, key, STATE_KEY_LEN);
	b->e[i].val = copy;
	b->e[i].vlen = vlen;
	return 0;
}

/* This state's own entries of a scan, in key order. */
struct own_list {
	struct memstate *m;
	const uint8_t **key;
	size_t n, cap;
	int rc;
};

static void collect_key(const void *node, VISIT which, void *ctx)
{
	struct own_list *ol = ctx;

	if (ol->rc || (which != postorder && which != leaf))
		return;
	if (ol->n == ol->cap) {
		size_t cap = ol->cap ? 2 * ol->cap : 16;
		const uint8_t **p = realloc(ol->key, cap * sizeof(*p));

		if (!p) {
			ol->rc = TALLY_E_NOMEM;
			return;
		}
		ol->key = p;
		ol->cap = cap;
	}
	ol->key[ol->n++] = *(const uint8_t *const *)node;
}

/* The merge of this state's entries (own, ascending) with below's scan:
 * below's entries pass through unless this state holds the same key, whose
 * value wins, and this state's keys are emitted in their place in order. */
struct merge {
	struct memstate *m;
	const uint8_t **own;
	size_t n, next;
	state_entry_fn fn;
	void *fctx;
};

static int emit_own(struct merge *mg, const uint8_t *key)
{
	uint8_t val[STATE_VALUE_MAX];
	size_t vlen;
	const struct mem_bucket *b = &mg->m->bucket[state_bucket_of(key, STATE_KEY_LEN)];
	bool found;
	uint32_t i = find(b, key, &found);

	if (!found)
		return TALLY_E_INTERNAL;
	if (b->e[i].vlen == 0)
		return 0;   /* deleted: hides below's entry and is not one itself */
	memcpy(val, b->e[i].val, b->e[i].vlen);
	vlen = b->e[i].vlen;
	return mg->fn(mg->fctx, key, STATE_KEY_LEN, val, vlen);
}

static int merge_below(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
		       size_t vlen)
{
	struct merge *mg = ctx;
	int rc = 0;
	int c = 1;

	while (mg->next < mg->n &&
	       (c = memcmp(mg->own[mg->next], key, klen < STATE_KEY_LEN ? klen : STATE_KEY_LEN)) < 0) {
		rc = emit_own(mg, mg->own[mg->next++]);
		if (rc)
			return rc;
	}
	if (mg->next < mg->n && c == 0 && klen == STATE_KEY_LEN)
		return emit_own(mg, mg->own[mg->next++]);
	return mg->fn(mg->fctx, key, klen, val, vlen);
}

static int merge_rest(struct merge *mg)
{
	int rc = 0;

	while (mg->next < mg->n && !rc)
		rc = emit_own(mg, mg->own[mg->next++]);
	return rc;
}

static int scan_type(void *ctx, uint8_t type, state_entry_fn fn, void *fctx)
{
	struct memstate *m = ctx;
	struct own_list ol = { .m = m };
	struct merge mg = { .m = m, .fn = fn, .fctx = fctx };
	int rc;

	/* Keys first, values read as each is emitted: fn may not write
	 * entries of this type (the state transition does not). */
	twalk_r(m->by_type[type], collect_key, &ol);
	mg.own = ol.key;
	mg.n = ol.n;
	rc = ol.rc;
	if (!rc && m->overlay)
		rc = m->below.scan_type(m->below.ctx, type, merge_below, &mg);
	if (!rc)
		rc = merge_rest(&mg);
	free(ol.key);
	return rc;
}

static int scan_bucket(void *ctx, uint32_t bucket, state_entry_fn fn, void *fctx)
{
	struct memstate *m = ctx;
	const struct mem_bucket *b = &m->bucket[bucket];
	const uint8_t **own = malloc((b->n ? b->n : 1) * sizeof(*own));
	struct merge mg = { .m = m, .own = own, .n = b->n, .fn = fn, .fctx = fctx };
	int rc = 0;

	if (!own)
		return TALLY_E_NOMEM;
	for (uint32_t i = 0; i < b->n; i++)
		own[i] = b->e[i].key;
	if (m->overlay)
		rc = m->below.scan_bucket(m->below.ctx, bucket, merge_below, &mg);
	if (!rc)
		rc = merge_rest(&mg);
	free(own);
	return rc;
}

int memstate_each_own(struct memstate *m, state_entry_fn fn, void *fctx)
{
	int rc = 0;

	for (int t = 0; t < 256 && !rc; t++) {
		struct own_list ol = { .m = m };

		twalk_r(m->by_type[t], collect_key, &ol);
		rc = ol.rc;
		for (size_t k = 0; k < ol.n && !rc; k++) {
			const struct mem_bucket *b =
				&m->bucket[state_bucket_of(ol.key[k], STATE_KEY_LEN)];
			bool found;
			uint32_t i = find(b, ol.key[k], &found);

			rc = found ? fn(fctx, ol.key[k], STATE_KEY_LEN, b->e[i].val, b->e[i].vlen)
				   : TALLY_E_INTERNAL;
		}
		free(ol.key);
	}
	return rc;
}

static int usage_append(void *ctx, uint64_t index, const uint8_t leaf_hash[HASH_LEN],
			const uint8_t tx_hash[HASH_LEN], const uint8_t lease_id[LEASE_ID_LEN],
			uint64_t seq)
{
	struct memstate *m = ctx;

	(void)tx_hash, (void)lease_id, (void)seq;
	return m->overlay ? 0 : merkle_append(m->usage, index, leaf_hash);
}

static int usage_root(void *ctx, uint64_t size, uint8_t out[HASH_LEN])
{
	struct memstate *m = ctx;

	return m->overlay ? TALLY_E_STATE : merkle_root(m->usage, size, out);
}

struct state_backend memstate_backend(struct memstate *m)
{
	struct state_backend be = {
		.ctx = m,
		.get = get,
		.put = put,
		.scan_type = scan_type,
		.scan_bucket = scan_bucket,
		.usage_append = usage_append,
		.usage_root = usage_root,
	};

	return be;
}
