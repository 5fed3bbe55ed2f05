/* The ledger's reads for the API (see ledger.h): each takes the lock and
 * reads the committed state or the store. */
#include "daemon/ledger/ledger_impl.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/consensus/proposer.h"
#include "lib/chain/chainfile.h"
#include "lib/errors.h"

int ledger_account(struct ledger *l, const uint8_t pub[PUBKEY_LEN], struct account *a)
{
	int rc;

	ledger_lock(l);
	rc = state_account_get(&l->state, pub, a);
	ledger_unlock(l);
	return rc;
}

int ledger_validator(struct ledger *l, const uint8_t pub[PUBKEY_LEN], struct validator_entry *v)
{
	int rc;

	ledger_lock(l);
	rc = state_validator_get(&l->state, pub, v);
	ledger_unlock(l);
	return rc;
}

int ledger_read_state(struct ledger *l, int (*fn)(void *ctx, struct state *s), void *ctx,
		      uint64_t *height)
{
	int rc;

	ledger_lock(l);
	*height = l->tip.height;
	rc = fn(ctx, &l->state);
	ledger_unlock(l);
	return rc;
}

int ledger_lease(struct ledger *l, const uint8_t id[LEASE_ID_LEN], struct lease *out)
{
	int rc;

	ledger_lock(l);
	rc = state_lease_get(&l->state, id, out);
	ledger_unlock(l);
	return rc;
}

int ledger_provider(struct ledger *l, const uint8_t pub[PUBKEY_LEN], struct provider_entry *out)
{
	int rc;

	ledger_lock(l);
	rc = state_provider_get(&l->state, pub, out);
	ledger_unlock(l);
	return rc;
}

struct provider_list {
	uint8_t (*keys)[PUBKEY_LEN];
	struct provider_entry *e;
	size_t n, cap;
};

static int provider_collect(void *ctx, const uint8_t pub[PUBKEY_LEN],
			    const struct provider_entry *p)
{
	struct provider_list *pl = ctx;

	if (provider_offer_withdrawn(&p->offer))
		return 0;
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? 2 * pl->cap : 16;
		void *k = realloc(pl->keys, cap * sizeof(*pl->keys));

		if (!k)
			return TALLY_E_NOMEM;
		pl->keys = k;
		void *e = realloc(pl->e, cap * sizeof(*pl->e));
		if (!e)
			return TALLY_E_NOMEM;
		pl->e = e;
		pl->cap = cap;
	}
	memcpy(pl->keys[pl->n], pub, PUBKEY_LEN);
	pl->e[pl->n++] = *p;
	return 0;
}

int ledger_providers(struct ledger *l, uint8_t (**keys)[PUBKEY_LEN], struct provider_entry **out,
		     size_t *n, uint64_t *height)
{
	struct provider_list pl = { 0 };
	int rc;

	ledger_lock(l);
	rc = state_provider_each(&l->state, provider_collect, &pl);
	if (height)
		*height = l->tip.height;
	ledger_unlock(l);
	if (rc) {
		free(pl.keys);
		free(pl.e);
		return rc;
	}
	*keys = pl.keys;
	*out = pl.e;
	*n = pl.n;
	return 0;
}

int ledger_state_proof(struct ledger *l, const uint8_t key[STATE_KEY_LEN],
		       struct state_proof *p, uint64_t *height, uint8_t root[HASH_LEN])
{
	int rc;

	ledger_lock(l);
	rc = state_proof_make(&l->state, key, STATE_KEY_LEN, p);
	*height = l->tip.height;
	state_root(&l->state, root);
	ledger_unlock(l);
	return rc;
}

struct lease_list {
	struct lease *v;
	size_t n, cap;
};

static int lease_list_add(void *ctx, const struct lease *le)
{
	struct lease_list *ll = ctx;

	if (ll->n == ll->cap) {
		size_t cap = ll->cap ? ll->cap * 2 : 16;
		struct lease *v = realloc(ll->v, cap * sizeof(*v));

		if (!v)
			return TALLY_E_NOMEM;
		ll->v = v;
		ll->cap = cap;
	}
	ll->v[ll->n++] = *le;
	return 0;
}

int ledger_leases_at(struct ledger *l, const struct lease_filter *f, struct lease **out,
		     size_t *n, uint64_t *height)
{
	struct lease_list ll = { 0 };
	int rc;

	ledger_lock(l);
	rc = store_lease_each(l->st, f, lease_list_add, &ll);
	if (height)
		*height = l->tip.height;
	ledger_unlock(l);
	if (rc) {
		free(ll.v);
		ll.v = NULL;
		ll.n = 0;
	}
	*out = ll.v;
	*n = ll.n;
	return rc;
}

int ledger_leases(struct ledger *l, const struct lease_filter *f, struct lease **out, size_t *n)
{
	return ledger_leases_at(l, f, out, n, NULL);
}

struct usage_list {
	struct ledger *l;
	struct ledger_usage *v;
	size_t n, cap;
};

static int usage_list_add(void *ctx, uint64_t index, uint64_t seq, const uint8_t tx_hash[HASH_LEN])
{
	struct usage_list *ul = ctx;
	struct ledger_usage *u;

	if (ul->n == ul->cap) {
		size_t cap = ul->cap ? ul->cap * 2 : 16;
		struct ledger_usage *v = realloc(ul->v, cap * sizeof(*v));

		if (!v)
			return TALLY_E_NOMEM;
		ul->v = v;
		ul->cap = cap;
	}
	u = &ul->v[ul->n];
	memset(u, 0, sizeof(*u));
	u->index = index;
	u->seq = seq;
	memcpy(u->tx_hash, tx_hash, HASH_LEN);
	ul->n++;
	return 0;
}

void ledger_usage_free(struct ledger_usage *u, size_t n)
{
	for (size_t i = 0; u && i < n; i++)
		free(u[i].tx);
	free(u);
}

int ledger_lease_usage(struct ledger *l, const uint8_t id[LEASE_ID_LEN],
		       struct ledger_usage **out, size_t *n)
{
	struct usage_list ul = { .l = l };
	int rc;

	ledger_lock(l);
	rc = store_usage_each(l->st, id, usage_list_add, &ul);
	/* Fetch the bytes after the iteration: one statement at a time. */
	for (size_t i = 0; i < ul.n && !rc; i++)
		rc = store_tx_get(l->st, ul.v[i].tx_hash, &ul.v[i].tx, &ul.v[i].tx_len,
				  &ul.v[i].height, NULL);
	ledger_unlock(l);
	if (rc) {
		ledger_usage_free(ul.v, ul.n);
		ul.v = NULL;
		ul.n = 0;
	}
	*out = ul.v;
	*n = ul.n;
	return rc;
}

int ledger_block_raw(struct ledger *l, uint64_t height, struct stored_block *out)
{
	int rc;

	ledger_lock(l);
	rc = store_block_get(l->st, height, out);
	ledger_unlock(l);
	return rc;
}

/* The stored parts of a block that ledger_block, ledger_header and
 * ledger_cert decode. */
enum block_part { PART_BODY, PART_HEADER, PART_CERT };

/* Reads the block at height and decodes one part of it into out (a struct
 * block, block_header or commit_cert, by part); a part that does not decode
 * is TALLY_E_STORE. */
static int decode_block_part(struct ledger *l, uint64_t height, enum block_part part, void *out)
{
	struct stored_block sb;
	int rc = ledger_block_raw(l, height, &sb);

	if (rc)
		return rc;
	switch (part) {
	case PART_BODY:
		rc = block_decode(out, sb.body, sb.body_len);
		break;
	case PART_HEADER:
		rc = header_decode(out, sb.header, sb.header_len);
		break;
	case PART_CERT:
		rc = cert_decode(out, sb.cert, sb.cert_len);
		break;
	}
	stored_block_free(&sb);
	return rc ? TALLY_E_STORE : 0;
}

int ledger_block(struct ledger *l, uint64_t height, struct block *out)
{
	memset(out, 0, sizeof(*out));
	return decode_block_part(l, height, PART_BODY, out);
}

int ledger_header(struct ledger *l, uint64_t height, struct block_header *out)
{
	return decode_block_part(l, height, PART_HEADER, out);
}

int ledger_cert(struct ledger *l, uint64_t height, struct commit_cert *out)
{
	return decode_block_part(l, height, PART_CERT, out);
}

static int valset_at(struct store *st, const struct validator_set *genesis_set, uint64_t height,
		     struct validator_set *out)
{
	/* The newest next_vals at or below height - 1 names the set of `height`. */
	*out = *genesis_set;
	for (uint64_t h = 1; h < height; h++) {
		struct stored_block sb;
		struct dec d;
		int rc = store_block_get(st, h, &sb);

		if (rc)
			return rc;
		if (sb.next_vals) {
			dec_init(&d, sb.next_vals, sb.next_vals_len);
			rc = valset_decode_from(&d, out);
			if (!rc)
				rc = dec_finish(&d);
		}
		stored_block_free(&sb);
		if (rc)
			return TALLY_E_STORE;
	}
	return 0;
}

int ledger_valset(struct ledger *l, uint64_t height, struct validator_set *out)
{
	struct validator_set g;
	uint8_t *pr = NULL;
	size_t prl;
	int rc;

	if (height == 0)
		return TALLY_E_INVALID;
	ledger_lock(l);
	if (height > l->tip.height + 1) {
		rc = TALLY_E_NOTFOUND;
	} else if (height == l->tip.height + 1) {
		*out = l->vals;
		rc = 0;
	} else {
		/* From the genesis set, following each block's next_vals. */
		rc = store_meta_get(l->st, "genesis_set", &pr, &prl);
		if (!rc)
			rc = priorities_decode(&g, pr, prl);
		if (!rc)
			rc = valset_at(l->st, &g, height, out);
	}
	ledger_unlock(l);
	free(pr);
	for (size_t i = 0; !rc && i < out->n; i++)
		out->v[i].priority = 0;
	return rc;
}

int ledger_usage_root(struct ledger *l, uint64_t size, uint8_t root[HASH_LEN])
{
	int rc;

	ledger_lock(l);
	rc = size > l->tip.usage.size ? TALLY_E_PROOF_RANGE :
	     merkle_root(store_merkle(l->st), size, root);
	ledger_unlock(l);
	return rc;
}

int ledger_usage_inclusion(struct ledger *l, uint64_t index, uint64_t size,
			   uint8_t leaf_hash[HASH_LEN], uint8_t proof[][HASH_LEN], size_t *n)
{
	uint8_t txh[HASH_LEN], lease_id[LEASE_ID_LEN];
	uint8_t *bytes = NULL;
	size_t len;
	int rc;

	ledger_lock(l);
	if (size > l->tip.usage.size) {
		rc = TALLY_E_PROOF_RANGE;
		goto out;
	}
	if (index >= size) {
		rc = TALLY_E_PROOF_INDEX;
		goto out;
	}
	rc = store_usage_at(l->st, index, txh, lease_id, NULL);
	if (!rc)
		rc = store_tx_get(l->st, txh, &bytes, &len, NULL, NULL);
	if (!rc) {
		merkle_leaf_hash(bytes, len, leaf_hash);
		rc = merkle_inclusion_proof(store_merkle(l->st), index, size, proof, n);
	}
out:
	ledger_unlock(l);
	free(bytes);
	return rc;
}

int ledger_usage_consistency(struct ledger *l, uint64_t old_size, uint64_t new_size,
			     uint8_t proof[][HASH_LEN], size_t *n)
{
	int rc;

	ledger_lock(l);
	rc = new_size > l->tip.usage.size ? TALLY_E_PROOF_RANGE :
	     merkle_consistency_proof(store_merkle(l->st), old_size, new_size, proof, n);
	ledger_unlock(l);
	return rc;
}

int ledger_tx(struct ledger *l, const uint8_t hash[HASH_LEN], uint8_t **bytes, size_t *len,
	      uint64_t *height, uint32_t *index)
{
	int rc;

	ledger_lock(l);
	rc = store_tx_get(l->st, hash, bytes, len, height, index);
	ledger_unlock(l);
	return rc;
}

