/* The RFC 6962 / RFC 9162 Merkle log: hashing, storage of perfect subtrees,
 * roots, proof generation and proof verification. See lib/merkle.h. */
#include "lib/merkle.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"

#define MERKLE_LEVELS 64

void merkle_leaf_hash(const void *leaf, size_t n, uint8_t out[HASH_LEN])
{
	struct sha256_stream *s = sha256_begin();
	const uint8_t prefix = 0x00;

	sha256_add(s, &prefix, 1);
	sha256_add(s, leaf, n);
	sha256_end(s, out);
}

void merkle_node_hash(const uint8_t left[HASH_LEN], const uint8_t right[HASH_LEN],
		      uint8_t out[HASH_LEN])
{
	/* One contiguous buffer: one digest call instead of a stream, which
	 * matters on the append path. */
	uint8_t buf[1 + 2 * HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, left, HASH_LEN);
	memcpy(buf + 1 + HASH_LEN, right, HASH_LEN);
	sha256(buf, sizeof(buf), out);
}

void merkle_empty_root(uint8_t out[HASH_LEN])
{
	sha256("", 0, out);
}

/* --- bit helpers -------------------------------------------------------- */

/* The largest power of two strictly below n (n >= 2): RFC 6962's k. */
static uint64_t split_point(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

static bool is_pow2(uint64_t n)
{
	return n && !(n & (n - 1));
}

/* --- in-memory store ---------------------------------------------------- */

/* One growable array per level; `present` marks the slots that were put, so
 * a sparse store answers TALLY_E_NOTFOUND rather than a hash of zeros. */
struct mem_level {
	uint8_t (*hash)[HASH_LEN];
	uint8_t *present;
	uint64_t cap;
};

struct mem_store {
	struct merkle_store ops;      /* first, so the two pointers convert */
	struct mem_level level[MERKLE_LEVELS];
};

static int mem_get(void *ctx, unsigned level, uint64_t index, uint8_t out[HASH_LEN])
{
	struct mem_store *m = ctx;

	if (level >= MERKLE_LEVELS || index >= m->level[level].cap ||
	    !m->level[level].present[index])
		return TALLY_E_NOTFOUND;
	memcpy(out, m->level[level].hash[index], HASH_LEN);
	return 0;
}

static int mem_grow(struct mem_level *l, uint64_t index)
{
	uint64_t cap = l->cap ? l->cap : 16;

	while (cap <= index) {
		if (cap > UINT64_MAX / 2 || cap > SIZE_MAX / (2 * HASH_LEN))
			return TALLY_E_NOMEM;
		cap *= 2;
	}
	uint8_t (*hash)[HASH_LEN] = realloc(l->hash, cap * HASH_LEN);
	if (!hash)
		return TALLY_E_NOMEM;
	l->hash = hash;
	uint8_t *present = realloc(l->present, cap);
	if (!present)
		return TALLY_E_NOMEM;
	memset(present + l->cap, 0, cap - l->cap);
	l->present = present;
	l->cap = cap;
	return 0;
}

static int mem_put(void *ctx, unsigned level, uint64_t index, const uint8_t hash[HASH_LEN])
{
	struct mem_store *m = ctx;

	if (level >= MERKLE_LEVELS)
		return TALLY_E_INVALID;
	struct mem_level *l = &m->level[level];
	if (index >= l->cap) {
		int rc = mem_grow(l, index);
		if (rc)
			return rc;
	}
	memcpy(l->hash[index], hash, HASH_LEN);
	l->present[index] = 1;
	return 0;
}

struct merkle_store *merkle_mem_store_new(void)
{
	struct mem_store *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->ops.ctx = m;
	m->ops.get = mem_get;
	m->ops.put = mem_put;
	return &m->ops;
}

void merkle_mem_store_free(struct merkle_store *s)
{
	struct mem_store *m;

	if (!s)
		return;
	m = s->ctx;
	for (unsigned i = 0; i < MERKLE_LEVELS; i++) {
		free(m->level[i].hash);
		free(m->level[i].present);
	}
	free(m);
}

/* --- append and roots --------------------------------------------------- */

int merkle_append(struct merkle_store *s, uint64_t size, const uint8_t leaf_hash[HASH_LEN])
{
	uint8_t hash[HASH_LEN], left[HASH_LEN];
	uint64_t index = size;
	unsigned level = 0;
	int rc;

	if (size == UINT64_MAX)
		return TALLY_E_OVERFLOW;
	memcpy(hash, leaf_hash, HASH_LEN);
	rc = s->put(s->ctx, 0, index, hash);
	/* Each odd index closes a perfect subtree with its left sibling. */
	while (!rc && (index & 1)) {
		rc = s->get(s->ctx, level, index - 1, left);
		if (rc)
			break;
		merkle_node_hash(left, hash, hash);
		index >>= 1;
		level++;
		rc = s->put(s->ctx, level, index, hash);
	}
	return rc;
}

/* MTH(D[begin:end]) from stored perfect subtrees. The ranges the RFC's
 * recursion visits start at a multiple of the power of two at or above their
 * length, so they split into perfect subtrees along the set bits of the
 * length, largest first; the hash is their right fold. */
static int range_hash(struct merkle_store *s, uint64_t begin, uint64_t end,
		      uint8_t out[HASH_LEN])
{
	uint8_t piece[MERKLE_LEVELS][HASH_LEN];
	uint64_t len = end - begin, off = begin;
	int n = 0, rc;

	if (len == 0) {
		merkle_empty_root(out);
		return 0;
	}
	for (int level = 63; level >= 0; level--) {
		uint64_t width = (uint64_t)1 << level;
		if (!(len & width))
			continue;
		if (off & (width - 1))
			return TALLY_E_INTERNAL;
		rc = s->get(s->ctx, (unsigned)level, off >> level, piece[n]);
		if (rc)
			return rc;
		n++;
		off += width;
	}
	memcpy(out, piece[n - 1], HASH_LEN);
	for (int i = n - 2; i >= 0; i--)
		merkle_node_hash(piece[i], out, out);
	return 0;
}

int merkle_root(struct merkle_store *s, uint64_t size, uint8_t out[HASH_LEN])
{
	return range_hash(s, 0, size, out);
}

/* --- proof generation --------------------------------------------------- */

/* Both generators walk the RFC's recursion from the top, which yields the
 * proof hashes root side first; the RFC lists them leaf side first. */
static void reverse_proof(uint8_t proof[][HASH_LEN], size_t n)
{
	uint8_t tmp[HASH_LEN];

	for (size_t i = 0; i < n / 2; i++) {
		memcpy(tmp, proof[i], HASH_LEN);
		memcpy(proof[i], proof[n - 1 - i], HASH_LEN);
		memcpy(proof[n - 1 - i], tmp, HASH_LEN);
	}
}

/* PATH(m, D[n]) of RFC 6962 section 2.1.1 (RFC 9162 section 2.1.3.1). */
int merkle_inclusion_proof(struct merkle_store *s, uint64_t index, uint64_t size,
			   uint8_t proof[][HASH_LEN], size_t *n)
{
	uint64_t begin = 0, end = size;
	size_t count = 0;
	int rc;

	*n = 0;
	if (index >= size)
		return TALLY_E_PROOF_INDEX;
	while (end - begin > 1) {
		uint64_t k = split_point(end - begin);
		if (count == MERKLE_MAX_PROOF)
			return TALLY_E_INVALID;
		if (index < begin + k) {
			rc = range_hash(s, begin + k, end, proof[count]);
			end = begin + k;
		} else {
			rc = range_hash(s, begin, begin + k, proof[count]);
			begin += k;
		}
		if (rc)
			return rc;
		count++;
	}
	reverse_proof(proof, count);
	*n = count;
	return 0;
}

/* PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 6962 section 2.1.2
 * (RFC 9162 section 2.1.4.1). Sizes 0 and m == n have the empty proof. */
int merkle_consistency_proof(struct merkle_store *s, uint64_t old_size, uint64_t new_size,
			     uint8_t proof[][HASH_LEN], size_t *n)
{
	uint64_t begin = 0, end = new_size;
	bool whole_old_tree = true;   /* the RFC's b: D[0:m] is a root the verifier has */
	size_t count = 0;
	int rc;

	*n = 0;
	if (old_size > new_size)
		return TALLY_E_PROOF_RANGE;
	if (old_size == 0 || old_size == new_size)
		return 0;
	for (;;) {
		if (count == MERKLE_MAX_PROOF)
			return TALLY_E_INVALID;
		if (old_size == end) {
			if (whole_old_tree)
				break;
			rc = range_hash(s, begin, end, proof[count++]);
			if (rc)
				return rc;
			break;
		}
		uint64_t k = split_point(end - begin);
		if (old_size - begin <= k) {
			rc = range_hash(s, begin + k, end, proof[count]);
			end = begin + k;
		} else {
			rc = range_hash(s, begin, begin + k, proof[count]);
			begin += k;
			whole_old_tree = false;
		}
		if (rc)
			return rc;
		count++;
	}
	reverse_proof(proof, count);
	*n = count;
	return 0;
}

/* --- proof verification ------------------------------------------------- */

/* Right-shifts fn and sn together until fn's lowest bit is set or fn is 0. */
static void shift_to_set_bit(uint64_t *fn, uint64_t *sn)
{
	while (*fn && !(*fn & 1)) {
		*fn >>= 1;
		*sn >>= 1;
	}
}

int merkle_inclusion_verify(uint64_t index, uint64_t size, const uint8_t leaf_hash[HASH_LEN],
			    const uint8_t proof[][HASH_LEN], size_t n,
			    const uint8_t root[HASH_LEN])
{
	uint8_t r[HASH_LEN];
	uint64_t fn, sn;

	/* 1. */
	if (index >= size)
		return TALLY_E_PROOF_INDEX;
	/* 2., 3. */
	fn = index;
	sn = size - 1;
	memcpy(r, leaf_hash, HASH_LEN);
	/* 4. */
	for (size_t i = 0; i < n; i++) {
		if (sn == 0)                              /* 4.a */
			return TALLY_E_PROOF_SIZE;
		if ((fn & 1) || fn == sn) {               /* 4.b */
			merkle_node_hash(proof[i], r, r);
			if (!(fn & 1))
				shift_to_set_bit(&fn, &sn);
		} else {
			merkle_node_hash(r, proof[i], r);
		}
		fn >>= 1;                                 /* 4.c */
		sn >>= 1;
	}
	/* 5. */
	if (sn != 0)
		return TALLY_E_PROOF_SIZE;
	if (memcmp(r, root, HASH_LEN) != 0)
		return TALLY_E_PROOF_ROOT;
	return 0;
}

int merkle_consistency_verify(uint64_t old_size, uint64_t new_size,
			      const uint8_t old_root[HASH_LEN], const uint8_t new_root[HASH_LEN],
			      const uint8_t proof[][HASH_LEN], size_t n)
{
	uint8_t fr[HASH_LEN], sr[HASH_LEN];
	uint64_t fn, sn;
	size_t i;

	/* The cases the RFC's algorithm leaves to its caller. */
	if (old_size > new_size)
		return TALLY_E_PROOF_RANGE;
	if (old_size == 0) {
		uint8_t empty[HASH_LEN];

		if (n != 0)
			return TALLY_E_PROOF_RANGE;
		merkle_empty_root(empty);
		return memcmp(old_root, empty, HASH_LEN) ? TALLY_E_PROOF_ROOT : 0;
	}
	if (old_size == new_size) {
		if (n != 0)
			return TALLY_E_PROOF_SIZE;
		return memcmp(old_root, new_root, HASH_LEN) ? TALLY_E_PROOF_ROOT : 0;
	}
	/* 1. */
	if (n == 0)
		return TALLY_E_PROOF_SIZE;
	/* 2., 5.: with first a power of two, the path starts at first_hash. */
	if (is_pow2(old_size)) {
		memcpy(fr, old_root, HASH_LEN);
		i = 0;
	} else {
		memcpy(fr, proof[0], HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, HASH_LEN);
	/* 3. */
	fn = old_size - 1;
	sn = new_size - 1;
	/* 4. */
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	/* 6. */
	for (; i < n; i++) {
		if (sn == 0)                              /* 6.a */
			return TALLY_E_PROOF_SIZE;
		if ((fn & 1) || fn == sn) {               /* 6.b */
			merkle_node_hash(proof[i], fr, fr);
			merkle_node_hash(proof[i], sr, sr);
			if (!(fn & 1))
				shift_to_set_bit(&fn, &sn);
		} else {
			merkle_node_hash(sr, proof[i], sr);
		}
		fn >>= 1;                                 /* 6.c */
		sn >>= 1;
	}
	/* 7. */
	if (sn != 0)
		return TALLY_E_PROOF_SIZE;
	if (memcmp(fr, old_root, HASH_LEN) != 0 || memcmp(sr, new_root, HASH_LEN) != 0)
		return TALLY_E_PROOF_ROOT;
	return 0;
}

/* --- frontier ----------------------------------------------------------- */

void merkle_frontier_init(struct merkle_frontier *f)
{
	memset(f, 0, sizeof(*f));
}

void merkle_frontier_append(struct merkle_frontier *f, const uint8_t leaf_hash[HASH_LEN])
{
	uint8_t hash[HASH_LEN];
	unsigned level = 0;

	/* A tree of 2^64 - 1 leaves is far beyond anything tally stores; stop
	 * rather than wrap the size. */
	if (f->size == UINT64_MAX)
		abort();
	memcpy(hash, leaf_hash, HASH_LEN);
	/* Binary increment: each carry merges two equal perfect subtrees. */
	while (f->size & ((uint64_t)1 << level)) {
		merkle_node_hash(f->edge[level], hash, hash);
		memset(f->edge[level], 0, HASH_LEN);
		level++;
	}
	memcpy(f->edge[level], hash, HASH_LEN);
	f->size++;
}

void merkle_frontier_root(const struct merkle_frontier *f, uint8_t out[HASH_LEN])
{
	bool have = false;

	if (f->size == 0) {
		merkle_empty_root(out);
		return;
	}
	/* Right fold, smallest (rightmost) subtree first. */
	for (unsigned level = 0; level < MERKLE_LEVELS; level++) {
		if (!(f->size & ((uint64_t)1 << level)))
			continue;
		if (have) {
			merkle_node_hash(f->edge[level], out, out);
		} else {
			memcpy(out, f->edge[level], HASH_LEN);
			have = true;
		}
	}
}

int merkle_frontier_load(struct merkle_store *s, uint64_t size, struct merkle_frontier *f)
{
	uint64_t start = 0;
	int rc;

	merkle_frontier_init(f);
	/* Left to right, the largest perfect subtree first. */
	for (int k = MERKLE_LEVELS - 1; k >= 0; k--) {
		uint64_t width = (uint64_t)1 << k;

		if (!(size & width))
			continue;
		rc = s->get(s->ctx, (unsigned)k, start >> k, f->edge[k]);
		if (rc)
			return rc;
		start += width;
	}
	f->size = size;
	return 0;
}

int merkle_store_seed(struct merkle_store *s, const struct merkle_frontier *f)
{
	uint64_t start = 0;
	int rc;

	for (int k = MERKLE_LEVELS - 1; k >= 0; k--) {
		uint64_t width = (uint64_t)1 << k;

		if (!(f->size & width))
			continue;
		rc = s->put(s->ctx, (unsigned)k, start >> k, f->edge[k]);
		if (rc)
			return rc;
		start += width;
	}
	return 0;
}

void merkle_root_of(const uint8_t leaf_hashes[][HASH_LEN], size_t n, uint8_t out[HASH_LEN])
{
	struct merkle_frontier f;

	merkle_frontier_init(&f);
	for (size_t i = 0; i < n; i++)
		merkle_frontier_append(&f, leaf_hashes[i]);
	merkle_frontier_root(&f, out);
}
