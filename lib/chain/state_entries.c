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

/* Candidates for the set: unjailed entries with at least the minimum stake;
 * pub/over, when pub is not NULL, stand in for pub's stored entry. */
struct candidates {
	const struct chain_params *p;
	const uint8_t *pub;
	const struct validator_entry *over;
	bool seen;
	struct validator *v;
	size_t n, cap;
};

static int candidate_add(struct candidates *c, const uint8_t pub[PUBKEY_LEN],
			 const struct validator_entry *v)
{
	if (v->jailed || v->stake < c->p->min_self_stake || v->stake == 0)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		struct validator *nv = realloc(c->v, cap * sizeof(*nv));

		if (!nv)
			return TALLY_E_NOMEM;
		c->v = nv;
		c->cap = cap;
	}
	memcpy(c->v[c->n].pubkey, pub, PUBKEY_LEN);
	c->v[c->n].stake = v->stake;
	c->v[c->n].priority = 0;
	c->n++;
	return 0;
}

static int candidate_cb(void *ctx, const uint8_t pub[PUBKEY_LEN], const struct validator_entry *v)
{
	struct candidates *c = ctx;

	if (c->pub && !memcmp(pub, c->pub, PUBKEY_LEN)) {
		c->seen = true;
		v = c->over;
	}
	return candidate_add(c, pub, v);
}

/* Most stake first; equal stakes by ascending pubkey. */
static int by_power(const void *a, const void *b)
{
	const struct validator *x = a, *y = b;

	if (x->stake != y->stake)
		return x->stake > y->stake ? -1 : 1;
	return memcmp(x->pubkey, y->pubkey, PUBKEY_LEN);
}

static int by_pubkey(const void *a, const void *b)
{
	return memcmp(((const struct validator *)a)->pubkey,
		      ((const struct validator *)b)->pubkey, PUBKEY_LEN);
}

int state_validator_set_if(struct state *s, const uint8_t pub[PUBKEY_LEN],
			   const struct validator_entry *v, struct validator_set *out)
{
	struct chain_params p;
	struct candidates c = { .p = &p, .pub = pub, .over = v };
	int rc = state_params(s, &p);

	memset(out, 0, sizeof(*out));
	if (!rc)
		rc = state_validator_each(s, candidate_cb, &c);
	if (!rc && pub && !c.seen)
		rc = candidate_add(&c, pub, v);
	if (!rc && c.n) {   /* none: c.v is NULL, and qsort may not take it */
		qsort(c.v, c.n, sizeof(*c.v), by_power);
		out->n = c.n < p.max_validators ? c.n : p.max_validators;
		memcpy(out->v, c.v, out->n * sizeof(*c.v));
		qsort(out->v, out->n, sizeof(*out->v), by_pubkey);
	}
	if (!rc)
		rc = valset_check(out);
	free(c.v);
	return rc;
}

int state_validator_set(struct state *s, struct validator_set *out)
{
	return state_validator_set_if(s, NULL, NULL, out);
}

static const uint8_t params_id[32];

int state_params(struct state *s, struct chain_params *p)
{
	uint8_t val[STATE_VALUE_MAX];
	size_t n;
	int rc = get_value(s, STATE_KEY_PARAMS, params_id, val, &n);

	if (rc == TALLY_E_NOTFOUND) {
		*p = GENESIS_V1_PARAMS;
		return 0;
	}
	if (rc)
		return rc;
	return chain_params_decode(p, val, n) ? TALLY_E_STORE : 0;
}

/* Deletes an entry (an empty value) and marks its bucket. */
static int del_value(struct state *s, uint8_t type, const uint8_t id[32])
{
	uint8_t key[STATE_KEY_LEN];
	int rc;

	state_key(key, type, id);
	rc = s->be.put(s->be.ctx, key, sizeof(key), (const uint8_t *)"", 0);
	if (!rc)
		state_mark_dirty(s, state_bucket_of(key, sizeof(key)));
	return rc;
}

static void unbonding_id(const struct unbonding *u, uint8_t id[32])
{
	for (int i = 0; i < 8; i++)
		id[i] = (uint8_t)(u->release >> (56 - 8 * i));
	memcpy(id + 8, u->tag, sizeof(u->tag));
}

struct unbonding_scan {
	int (*fn)(void *ctx, const struct unbonding *u);
	void *ctx;
};

static int unbonding_cb(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			size_t vlen)
{
	struct unbonding_scan *us = ctx;
	struct unbonding u;
	struct dec d;

	if (klen != STATE_KEY_LEN)
		return TALLY_E_STORE;
	u.release = 0;
	for (int i = 0; i < 8; i++)
		u.release = u.release << 8 | key[1 + i];
	memcpy(u.tag, key + 9, sizeof(u.tag));
	dec_init(&d, val, vlen);
	dec_fixed(&d, u.owner, PUBKEY_LEN);
	u.amount = dec_u64(&d);
	u.since = dec_u64(&d);
	if (dec_finish(&d) || u.amount == 0)
		return TALLY_E_STORE;
	return us->fn(us->ctx, &u);
}

int state_unbonding_each(struct state *s,
			 int (*fn)(void *ctx, const struct unbonding *u), void *ctx)
{
	struct unbonding_scan us = { fn, ctx };

	return s->be.scan_type(s->be.ctx, STATE_KEY_UNBONDING, unbonding_cb, &us);
}

int state_unbonding_put(struct state *s, const struct unbonding *u)
{
	uint8_t id[32];
	struct enc e;

	unbonding_id(u, id);
	if (u->amount == 0)
		return del_value(s, STATE_KEY_UNBONDING, id);
	enc_init(&e);
	enc_fixed(&e, u->owner, PUBKEY_LEN);
	enc_u64(&e, u->amount);
	enc_u64(&e, u->since);
	return put_value(s, STATE_KEY_UNBONDING, id, &e);
}

int state_liveness_get(struct state *s, const uint8_t pub[PUBKEY_LEN], struct liveness *l)
{
	uint8_t val[STATE_VALUE_MAX];
	size_t n;
	struct dec d;
	int rc = get_value(s, STATE_KEY_LIVENESS, pub, val, &n);

	memset(l, 0, sizeof(*l));
	if (rc)
		return rc;
	dec_init(&d, val, n);
	l->jailed_until = dec_u64(&d);
	l->missed = dec_u64(&d);
	if (dec_finish(&d) || (l->jailed_until == 0 && l->missed == 0))
		return TALLY_E_STORE;
	return 0;
}

int state_liveness_put(struct state *s, const uint8_t pub[PUBKEY_LEN], const struct liveness *l)
{
	struct enc e;

	if (l->jailed_until == 0 && l->missed == 0)
		return del_value(s, STATE_KEY_LIVENESS, pub);
	enc_init(&e);
	enc_u64(&e, l->jailed_until);
	enc_u64(&e, l->missed);
	return put_value(s, STATE_KEY_LIVENESS, pub, &e);
}

void state_evidence_id(const uint8_t validator[PUBKEY_LEN], const struct vote *v,
		       uint8_t id[32])
{
	/* fixed32 validator | u64 height | u32 round | u8 type, little-endian. */
	uint8_t buf[PUBKEY_LEN + 8 + 4 + 1];

	memcpy(buf, validator, PUBKEY_LEN);
	for (int i = 0; i < 8; i++)
		buf[PUBKEY_LEN + i] = (uint8_t)(v->height >> (8 * i));
	for (int i = 0; i < 4; i++)
		buf[PUBKEY_LEN + 8 + i] = (uint8_t)(v->round >> (8 * i));
	buf[PUBKEY_LEN + 12] = v->type;
	sha256(buf, sizeof(buf), id);
}

int state_evidence_get(struct state *s, const uint8_t id[32], uint64_t *height)
{
	uint8_t val[STATE_VALUE_MAX];
	size_t n;
	struct dec d;
	int rc = get_value(s, STATE_KEY_EVIDENCE, id, val, &n);

	if (rc)
		return rc;
	dec_init(&d, val, n);
	*height = dec_u64(&d);
	return dec_finish(&d) ? TALLY_E_STORE : 0;
}

int state_evidence_put(struct state *s, const uint8_t id[32], uint64_t height)
{
	struct enc e;

	enc_init(&e);
	enc_u64(&e, height);
	return put_value(s, STATE_KEY_EVIDENCE, id, &e);
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
	if (!rc && g->version >= 2) {
		struct enc e;

		enc_init(&e);
		chain_params_encode(&e, &g->params);
		rc = put_value(s, STATE_KEY_PARAMS, params_id, &e);
	}
	return rc;
}

struct evidence_scan {
	int (*fn)(void *ctx, const uint8_t id[32], uint64_t height);
	void *ctx;
};

static int evidence_cb(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
		       size_t vlen)
{
	struct evidence_scan *es = ctx;
	uint64_t height;
	struct dec d;

	if (klen != STATE_KEY_LEN)
		return TALLY_E_STORE;
	dec_init(&d, val, vlen);
	height = dec_u64(&d);
	if (dec_finish(&d))
		return TALLY_E_STORE;
	return es->fn(es->ctx, key + 1, height);
}

int state_evidence_each(struct state *s,
			int (*fn)(void *ctx, const uint8_t id[32], uint64_t height), void *ctx)
{
	struct evidence_scan es = { fn, ctx };

	return s->be.scan_type(s->be.ctx, STATE_KEY_EVIDENCE, evidence_cb, &es);
}

int state_evidence_del(struct state *s, const uint8_t id[32])
{
	return del_value(s, STATE_KEY_EVIDENCE, id);
}
