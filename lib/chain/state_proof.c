/* State proofs (format and rules in lib/chain/state_proof.h). */
#include "lib/chain/state_proof.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"
#include "lib/merkle.h"

void state_proof_free(struct state_proof *p)
{
	for (size_t i = 0; p->e && i < p->n; i++)
		free(p->e[i].value);
	free(p->e);
	memset(p, 0, sizeof(*p));
}

/* Appends a copy of one entry; cap tracks the array's room. */
static int add_entry(struct state_proof *p, size_t *cap, const uint8_t *key,
		     const uint8_t *val, size_t vlen)
{
	struct state_proof_entry *e;

	if (p->n == STATE_PROOF_ENTRIES_MAX)
		return TALLY_E_TOOLONG;
	if (p->n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 4;

		e = realloc(p->e, ncap * sizeof(*e));
		if (!e)
			return TALLY_E_NOMEM;
		p->e = e;
		*cap = ncap;
	}
	e = &p->e[p->n];
	e->value = malloc(vlen ? vlen : 1);
	if (!e->value)
		return TALLY_E_NOMEM;
	memcpy(e->key, key, STATE_KEY_LEN);
	memcpy(e->value, val, vlen);
	e->vlen = vlen;
	p->n++;
	return 0;
}

struct collect {
	struct state_proof *p;
	size_t cap;
};

static int collect_entry(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			 size_t vlen)
{
	struct collect *c = ctx;

	if (klen != STATE_KEY_LEN || vlen > STATE_VALUE_MAX)
		return TALLY_E_STORE;
	return add_entry(c->p, &c->cap, key, val, vlen);
}

int state_proof_make(struct state *s, const uint8_t *key, size_t klen, struct state_proof *p)
{
	struct collect c = { p, 0 };
	uint32_t node;
	int rc;

	memset(p, 0, sizeof(*p));
	if (klen != STATE_KEY_LEN)
		return TALLY_E_RANGE;
	/* Siblings from a tree that lags the entries would prove nothing. */
	if (!s->node || s->ndirty)
		return TALLY_E_STATE;
	p->bucket = state_bucket_of(key, klen);
	rc = s->be.scan_bucket(s->be.ctx, p->bucket, collect_entry, &c);
	if (rc) {
		state_proof_free(p);
		return rc;
	}
	/* node[1] is the root, node[65536 + b] bucket b: a node's sibling is
	 * its index with the low bit flipped, its parent the index halved. */
	node = STATE_BUCKETS + p->bucket;
	for (int level = 0; level < STATE_TREE_LEVELS; level++, node >>= 1)
		memcpy(p->sibling[level], s->node[node ^ 1], HASH_LEN);
	return 0;
}

int state_proof_copy(struct state_proof *dst, const struct state_proof *src)
{
	size_t cap = 0;
	int rc = 0;

	memset(dst, 0, sizeof(*dst));
	dst->bucket = src->bucket;
	memcpy(dst->sibling, src->sibling, sizeof(dst->sibling));
	for (size_t i = 0; i < src->n && !rc; i++)
		rc = add_entry(dst, &cap, src->e[i].key, src->e[i].value, src->e[i].vlen);
	if (rc)
		state_proof_free(dst);
	return rc;
}

void state_proof_encode(struct enc *e, const struct state_proof *p)
{
	enc_u8(e, STATE_PROOF_VERSION);
	enc_u32(e, p->bucket);
	enc_u32(e, (uint32_t)p->n);
	for (size_t i = 0; i < p->n; i++) {
		enc_bytes(e, p->e[i].key, STATE_KEY_LEN);
		enc_bytes(e, p->e[i].value, p->e[i].vlen);
	}
	for (int k = 0; k < STATE_TREE_LEVELS; k++)
		enc_fixed(e, p->sibling[k], HASH_LEN);
}

int state_proof_decode_from(struct dec *d, struct state_proof *p)
{
	size_t cap = 0, klen, vlen;
	const uint8_t *key, *val;
	uint32_t count;
	uint8_t version;

	memset(p, 0, sizeof(*p));
	version = dec_u8(d);
	if (!dec_error(d) && version != STATE_PROOF_VERSION)
		dec_fail(d, TALLY_E_VERSION);
	p->bucket = dec_u32(d);
	if (!dec_error(d) && p->bucket >= STATE_BUCKETS)
		dec_fail(d, TALLY_E_RANGE);
	count = dec_u32(d);
	if (!dec_error(d) && count > STATE_PROOF_ENTRIES_MAX)
		dec_fail(d, TALLY_E_TOOLONG);
	for (uint32_t i = 0; i < count && !dec_error(d); i++) {
		key = dec_bytes(d, &klen, STATE_KEY_LEN);
		val = dec_bytes(d, &vlen, STATE_VALUE_MAX);
		if (dec_error(d))
			break;
		if (klen != STATE_KEY_LEN) {
			dec_fail(d, TALLY_E_RANGE);
			break;
		}
		/* One bucket, one encoding: its entries in key order, each once. */
		if (state_bucket_of(key, klen) != p->bucket ||
		    (p->n && memcmp(p->e[p->n - 1].key, key, STATE_KEY_LEN) >= 0)) {
			dec_fail(d, TALLY_E_ENCODING);
			break;
		}
		if (add_entry(p, &cap, key, val, vlen)) {
			dec_fail(d, TALLY_E_NOMEM);
			break;
		}
	}
	for (int k = 0; k < STATE_TREE_LEVELS; k++)
		dec_fixed(d, p->sibling[k], HASH_LEN);
	if (dec_error(d))
		state_proof_free(p);
	return dec_error(d);
}

int state_proof_decode(struct state_proof *p, const uint8_t *b, size_t n)
{
	struct dec d;
	int rc;

	dec_init(&d, b, n);
	state_proof_decode_from(&d, p);
	rc = dec_finish(&d);
	if (rc)
		state_proof_free(p);
	return rc;
}

static int scan_entries(void *ctx, state_entry_fn fn, void *fctx)
{
	const struct state_proof *p = ctx;
	int rc = 0;

	for (size_t i = 0; i < p->n && !rc; i++)
		rc = fn(fctx, p->e[i].key, STATE_KEY_LEN, p->e[i].value, p->e[i].vlen);
	return rc;
}

void state_proof_root(const struct state_proof *p, uint8_t out[HASH_LEN])
{
	uint8_t h[HASH_LEN];
	uint32_t index = p->bucket;

	/* Only allocation can fail; a proof that cannot be hashed is no proof. */
	if (state_bucket_hash_scan(scan_entries, (void *)p, h))
		abort();
	for (int level = 0; level < STATE_TREE_LEVELS; level++, index >>= 1) {
		if (index & 1)
			merkle_node_hash(p->sibling[level], h, h);
		else
			merkle_node_hash(h, p->sibling[level], h);
	}
	memcpy(out, h, HASH_LEN);
}

int state_proof_verify(const struct state_proof *p, const uint8_t *key, size_t klen,
		       const uint8_t root[HASH_LEN], const uint8_t **value, size_t *vlen)
{
	uint8_t got[HASH_LEN];

	*value = NULL;
	*vlen = 0;
	if (klen != STATE_KEY_LEN || state_bucket_of(key, klen) != p->bucket)
		return TALLY_E_PROOF_INDEX;
	state_proof_root(p, got);
	if (memcmp(got, root, HASH_LEN) != 0)
		return TALLY_E_PROOF_ROOT;
	for (size_t i = 0; i < p->n; i++) {
		if (!memcmp(p->e[i].key, key, STATE_KEY_LEN)) {
			*value = p->e[i].value;
			*vlen = p->e[i].vlen;
			break;
		}
	}
	return 0;
}

int state_proof_lease_value(const struct state_proof *p, const uint8_t id[LEASE_ID_LEN],
			    struct lease *out, char *why)
{
	uint8_t key[STATE_KEY_LEN];
	char hex[17];
	int rc;

	hex_encode(id, 8, hex);
	state_key(key, STATE_KEY_LEASE, id);
	for (size_t i = 0; i < p->n; i++) {
		if (memcmp(p->e[i].key, key, STATE_KEY_LEN))
			continue;
		rc = lease_decode(out, p->e[i].value, p->e[i].vlen);
		if (rc)
			return why_set(why, rc, "lease %s: the state in its proof does not decode: %s",
				       hex, tally_strerror(rc));
		if (memcmp(out->id, id, LEASE_ID_LEN))
			return why_set(why, TALLY_E_ENCODING, "lease %s: the state in its proof is"
				       " another lease's", hex);
		return 0;
	}
	return why_set(why, TALLY_E_NOTFOUND, "lease %s: its proof does not hold it", hex);
}

int state_proof_provider_value(const struct state_proof *p, const uint8_t pub[PUBKEY_LEN],
			       struct provider_entry *out)
{
	uint8_t key[STATE_KEY_LEN];

	state_key(key, STATE_KEY_PROVIDER, pub);
	for (size_t i = 0; i < p->n; i++)
		if (!memcmp(p->e[i].key, key, STATE_KEY_LEN))
			return provider_value_decode(out, p->e[i].value, p->e[i].vlen);
	return TALLY_E_NOTFOUND;
}

int state_proof_lease(const struct state_proof *p, const uint8_t id[LEASE_ID_LEN],
		      const uint8_t root[HASH_LEN], struct lease *out, char *why)
{
	uint8_t key[STATE_KEY_LEN];
	const uint8_t *val;
	size_t vlen;
	char hex[17];
	int rc;

	hex_encode(id, 8, hex);
	state_key(key, STATE_KEY_LEASE, id);
	rc = state_proof_verify(p, key, sizeof(key), root, &val, &vlen);
	if (rc == TALLY_E_PROOF_INDEX)
		return why_set(why, rc, "its state proof opens bucket %" PRIu32 ", not the"
			       " lease's", p->bucket);
	if (rc)
		return why_set(why, rc, "its state proof does not lead to the block's state root");
	if (!val)
		return why_set(why, TALLY_E_NOTFOUND, "the state proven holds no lease %s", hex);
	return state_proof_lease_value(p, id, out, why);
}
