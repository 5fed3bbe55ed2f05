/* Typed state entries over the backend's bytes: keys, value encodings,
 * the validator set and the genesis state (rules in lib/chain/state.h). */
#include "lib/chain/state.h"

#include <stdlib.h>
#include <string.h>

#include "lib/codec.h"
#include "lib/errors.h"

void state_key(uint8_t key[STATE_KEY_LEN], uint8_t type, const uint8_t id[32])
{
	key[0] = type;
	memcpy(key + 1, id, 32);
}

static int get_value(struct state *s, uint8_t type, const uint8_t id[32], uint8_t *val,
		     size_t *vlen)
{
	uint8_t key[STATE_KEY_LEN];

	state_key(key, type, id);
	return s->be.get(s->be.ctx, key, sizeof(key), val, STATE_VALUE_MAX, vlen);
}

/* Writes the encoded value and marks its bucket. */
static int put_value(struct state *s, uint8_t type, const uint8_t id[32], struct enc *e)
{
	uint8_t key[STATE_KEY_LEN];
	int rc = enc_error(e);

	if (!rc && e->len > STATE_VALUE_MAX)
		rc = TALLY_E_TOOLONG;
	if (rc) {
		enc_free(e);
		return rc;
	}
	state_key(key, type, id);
	rc = s->be.put(s->be.ctx, key, sizeof(key), e->buf, e->len);
	if (!rc)
		state_mark_dirty(s, state_bucket_of(key, sizeof(key)));
	enc_free(e);
	return rc;
}

void account_value_encode(struct enc *e, const struct account *a)
{
	enc_u64(e, a->balance);
	enc_u64(e, a->nonce);
}

int account_value_decode(struct account *a, const uint8_t *p, size_t n)
{
	struct dec d;

	dec_init(&d, p, n);
	a->balance = dec_u64(&d);
	a->nonce = dec_u64(&d);
	return dec_finish(&d);
}

void validator_value_encode(struct enc *e, const struct validator_entry *v)
{
	enc_u64(e, v->stake);
	enc_bool(e, v->jailed);
}

int validator_value_decode(struct validator_entry *v, const uint8_t *p, size_t n)
{
	struct dec d;

	dec_init(&d, p, n);
	v->stake = dec_u64(&d);
	v->jailed = dec_bool(&d);
	return dec_finish(&d);
}

int state_account_get(struct state *s, const uint8_t pub[PUBKEY_LEN], struct account *a)
{
	uint8_t val[STATE_VALUE_MAX];
	size_t n;
	int rc = get_value(s, STATE_KEY_ACCOUNT, pub, val, &n);

	memset(a, 0, sizeof(*a));
	if (rc)
		return rc;
	return account_value_decode(a, val, n) ? TALLY_E_STORE : 0;
}

int state_account_put(struct state *s, const uint8_t pub[PUBKEY_LEN], const struct account *a)
{
	struct enc e;

	enc_init(&e);
	account_value_encode(&e, a);
	return put_value(s, STATE_KEY_ACCOUNT, pub, &e);
}

int state_validator_get(struct state *s, const uint8_t pub[PUBKEY_LEN],
			struct validator_entry *v)
{
	uint8_t val[STATE_VALUE_MAX];
	size_t n;
	int rc = get_value(s, STATE_KEY_VALIDATOR, pub, val, &n);

	memset(v, 0, sizeof(*v));
	if (rc)
		return rc;
	return validator_value_decode(v, val, n) ? TALLY_E_STORE : 0;
}

int state_validator_put(struct state *s, const uint8_t pub[PUBKEY_LEN],
			const struct validator_entry *v)
{
	struct enc e;

	enc_init(&e);
	validator_value_encode(&e, v);
	return put_value(s, STATE_KEY_VALIDATOR, pub, &e);
}

struct validator_scan {
	int (*fn)(void *ctx, const uint8_t pub[PUBKEY_LEN], const struct validator_entry *v);
	void *ctx;
};

static int validator_entry_cb(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			      size_t vlen)
{
	struct validator_scan *vs = ctx;
	struct validator_entry v;

	if (klen != STATE_KEY_LEN || validator_value_decode(&v, val, vlen))
		return TALLY_E_STORE;
	return vs->fn(vs->ctx, key + 1, &v);
}

int state_validator_each(struct state *s,
			 int (*fn)(void *ctx, const uint8_t pub[PUBKEY_LEN],
				   const struct validator_entry *v), void *ctx)
{
	struct validator_scan vs = { fn, ctx };

	return s->be.scan_type(s->be.ctx, STATE_KEY_VALIDATOR, validator_entry_cb, &vs);
}

int state_lease_get(struct state *s, const uint8_t id[LEASE_ID_LEN], struct lease *l)
{
	uint8_t val[STATE_VALUE_MAX];
	size_t n;
	int rc = get_value(s, STATE_KEY_LEASE, id, val, &n);

	if (rc)
		return rc;
	return lease_decode(l, val, n) ? TALLY_E_STORE : 0;
}

int state_lease_put(struct state *s, const struct lease *l)
{
	struct enc e;

	enc_init(&e);
	lease_encode_to(&e, l);
	return put_value(s, STATE_KEY_LEASE, l->id, &e);
}

void provider_value_encode(struct enc *e, const struct provider_entry *p)
{
	enc_u8(e, PROVIDER_ENTRY_VERSION);
	enc_u64(e, p->height);
	provider_offer_encode_to(e, &p->offer);
}

int provider_value_decode(struct provider_entry *p, const uint8_t *v, size_t n)
{
	struct dec d;

	dec_init(&d, v, n);
	if (dec_u8(&d) != PROVIDER_ENTRY_VERSION && !dec_error(&d))
		dec_fail(&d, TALLY_E_VERSION);
	p->height = dec_u64(&d);
	provider_offer_decode_from(&d, &p->offer);
	return dec_finish(&d);
}

int state_provider_get(struct state *s, const uint8_t pub[PUBKEY_LEN], struct provider_entry *p)
{
	uint8_t val[STATE_VALUE_MAX];
	size_t n;
	int rc = get_value(s, STATE_KEY_PROVIDER, pub, val, &n);

	memset(p, 0, sizeof(*p));
	if (rc)
		return rc;
	return provider_value_decode(p, val, n) ? TALLY_E_STORE : 0;
}

int state_provider_put(struct state *s, const uint8_t pub[PUBKEY_LEN],
		       const struct provider_entry *p)
{
	struct enc e;

	enc_init(&e);
	provider_value_encode(&e, p);
	return put_value(s, STATE_KEY_PROVIDER, pub, &e);
}

struct provider_scan {
	int (*fn)(void *ctx, const uint8_t pub[PUBKEY_LEN], const struct provider_entry *p);
	void *ctx;
};

static int provider_entry_cb(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			     size_t vlen)
{
	struct provider_scan *ps = ctx;
	struct provider_entry p;

	if (klen != STATE_KEY_LEN || provider_value_decode(&p, val, vlen))
		return TALLY_E_STORE;
	return ps->fn(ps->ctx, key + 1, &p);
}

int state_provider_each(struct state *s,
			int (*fn)(void *ctx, const uint8_t pub[PUBKEY_LEN],
				  const struct provider_entry *p), void *ctx)
{
	struct provider_scan ps = { fn, ctx };

	return s->be.scan_type(s->be.ctx, STATE_KEY_PROVIDER, provider_entry_cb, &ps);
}

static int valset_add(void *ctx, const uint8_t pub[PUBKEY_LEN], const struct validator_entry *v)
{
	struct validator_set *set = ctx;

	if (v->jailed || v->stake == 0)
		return 0;
	if (set->n == VALIDATORS_MAX)
		return TALLY_E_VALSET;
	memcpy(set->v[set->n].pubkey, pub, PUBKEY_LEN);
	set->v[set->n].stake = v->stake;
	set->v[set->n].priority = 0;
	set->n++;
	return 0;
}

int state_validator_set(struct state *s, struct validator_set *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = state_validator_each(s, valset_add, out);
	if (!rc)
		rc = valset_check(out);
	return rc;
}

int state_load_genesis(struct state *s, const struct genesis *g)
{
	int rc = 0;

	for (size_t i = 0; i < g->naccounts && !rc; i++) {
		struct account a = { .balance = g->accounts[i].balance, .nonce = 0 };

		rc = state_account_put(s, g->accounts[i].pubkey, &a);
	}
	for (size_t i = 0; i < g->validators.n && !rc; i++) {
		struct validator_entry v = { .stake = g->validators.v[i].stake, .jailed = false };

		rc = state_validator_put(s, g->validators.v[i].pubkey, &v);
	}
	return rc;
}
