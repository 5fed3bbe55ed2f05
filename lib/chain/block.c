/* Block headers, blocks, votes, validator sets and commit certificates.
 * Byte layouts are in lib/chain/block.h and docs/FORMATS.md. */
#include "lib/chain/block.h"

#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"
#include "lib/merkle.h"
#include "lib/chain/tx.h"

/* --- header ------------------------------------------------------------- */

void header_encode(struct enc *e, const struct block_header *h)
{
	enc_u8(e, h->version);
	enc_str(e, h->chain_id);
	enc_u64(e, h->height);
	enc_u64(e, h->time_ns);
	enc_fixed(e, h->prev_block_id, HASH_LEN);
	enc_fixed(e, h->txs_root, HASH_LEN);
	enc_u64(e, h->usage_size);
	enc_fixed(e, h->usage_root, HASH_LEN);
	enc_fixed(e, h->state_root, HASH_LEN);
	enc_fixed(e, h->validators_hash, HASH_LEN);
	enc_fixed(e, h->next_validators_hash, HASH_LEN);
	enc_fixed(e, h->proposer, PUBKEY_LEN);
	enc_fixed(e, h->last_commit_hash, HASH_LEN);
}

int header_decode_from(struct dec *d, struct block_header *h)
{
	memset(h, 0, sizeof(*h));
	h->version = dec_u8(d);
	if (!dec_error(d) && h->version != BLOCK_VERSION)
		dec_fail(d, TALLY_E_VERSION);
	dec_str(d, h->chain_id, CHAIN_ID_MAX);
	if (!dec_error(d) && chain_id_valid(h->chain_id) != 0)
		dec_fail(d, TALLY_E_ENCODING);
	h->height = dec_u64(d);
	h->time_ns = dec_u64(d);
	dec_fixed(d, h->prev_block_id, HASH_LEN);
	dec_fixed(d, h->txs_root, HASH_LEN);
	h->usage_size = dec_u64(d);
	dec_fixed(d, h->usage_root, HASH_LEN);
	dec_fixed(d, h->state_root, HASH_LEN);
	dec_fixed(d, h->validators_hash, HASH_LEN);
	dec_fixed(d, h->next_validators_hash, HASH_LEN);
	dec_fixed(d, h->proposer, PUBKEY_LEN);
	dec_fixed(d, h->last_commit_hash, HASH_LEN);
	return dec_error(d);
}

int header_decode(struct block_header *h, const uint8_t *p, size_t n)
{
	struct dec d;

	dec_init(&d, p, n);
	header_decode_from(&d, h);
	return dec_finish(&d);
}

void block_id(const struct block_header *h, uint8_t out[HASH_LEN])
{
	struct enc e;

	enc_init(&e);
	header_encode(&e, h);
	/* Only an allocation failure can stop a header from encoding; an id
	 * computed over a partial header would silently name another block. */
	if (enc_error(&e))
		abort();
	sha256(e.buf, e.len, out);
	enc_free(&e);
}

/* --- block -------------------------------------------------------------- */

void block_encode(struct enc *e, const struct block *b)
{
	header_encode(e, &b->header);
	if (b->ntx > BLOCK_MAX_TXS) {
		if (!e->err)
			e->err = TALLY_E_TOOLONG;
		return;
	}
	enc_u32(e, (uint32_t)b->ntx);
	for (size_t i = 0; i < b->ntx; i++) {
		if (b->txs[i].len > TX_MAX_SIZE) {
			if (!e->err)
				e->err = TALLY_E_TOOLONG;
			return;
		}
		enc_bytes(e, b->txs[i].bytes, b->txs[i].len);
	}
}

/* The one walk of an encoded block: the header into h, the count (given
 * to on_count, when not NULL, before any transaction), then each
 * transaction, fn called with its place in p; strict (the count and each
 * length within their limits, nothing trailing). */
static int walk_txs(const uint8_t *p, size_t n, struct block_header *h,
		    int (*on_count)(void *ctx, size_t count),
		    int (*fn)(void *ctx, size_t i, size_t off, size_t len), void *ctx)
{
	struct dec d;
	uint32_t k;
	int rc;

	dec_init(&d, p, n);
	header_decode_from(&d, h);
	k = dec_u32(&d);
	if (!dec_error(&d) && k > BLOCK_MAX_TXS)
		dec_fail(&d, TALLY_E_TOOLONG);
	if (!dec_error(&d) && on_count && (rc = on_count(ctx, k)))
		dec_fail(&d, rc);
	for (uint32_t i = 0; i < k && !dec_error(&d); i++) {
		size_t len;
		const uint8_t *tx = dec_bytes(&d, &len, TX_MAX_SIZE);

		if (!tx)
			break;
		if ((rc = fn(ctx, i, (size_t)(tx - p), len))) {
			dec_fail(&d, rc);
			break;
		}
	}
	return dec_finish(&d);
}

struct decode_ctx {
	struct block *b;
	const uint8_t *p;
};

static int decode_count(void *ctx, size_t count)
{
	struct decode_ctx *c = ctx;

	if (count && !(c->b->txs = calloc(count, sizeof(*c->b->txs))))
		return TALLY_E_NOMEM;
	return 0;
}

/* A copy of bytes[len] into t, hashed. */
static int tx_copy(struct block_tx *t, const uint8_t *bytes, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return TALLY_E_NOMEM;
	memcpy(copy, bytes, len);
	t->bytes = copy;
	t->len = len;
	tx_hash(copy, len, t->hash);
	merkle_leaf_hash(copy, len, t->leaf);
	t->hashed = true;
	return 0;
}

static int decode_tx(void *ctx, size_t i, size_t off, size_t len)
{
	struct decode_ctx *c = ctx;
	struct block *b = c->b;
	int rc = tx_copy(&b->txs[i], c->p + off, len);

	if (!rc)
		b->ntx = i + 1;
	return rc;
}

int block_decode(struct block *b, const uint8_t *p, size_t n)
{
	struct decode_ctx c = { b, p };
	int rc;

	memset(b, 0, sizeof(*b));
	rc = walk_txs(p, n, &b->header, decode_count, decode_tx, &c);
	if (rc)
		block_free(b);
	return rc;
}

int block_tx_each(const uint8_t *p, size_t n,
		  int (*fn)(void *ctx, size_t i, size_t off, size_t len), void *ctx)
{
	struct block_header h;

	return walk_txs(p, n, &h, NULL, fn, ctx);
}

void block_free(struct block *b)
{
	for (size_t i = 0; i < b->ntx; i++)
		free((void *)b->txs[i].bytes);   /* owned: block_decode's copies */
	free(b->txs);
	memset(b, 0, sizeof(*b));
}

int block_tx_replace(struct block *b, size_t i, const uint8_t *bytes, size_t len)
{
	struct block_tx t;
	int rc;

	if (i >= b->ntx)
		return TALLY_E_RANGE;
	if (len > TX_MAX_SIZE)
		return TALLY_E_TOOLONG;
	rc = tx_copy(&t, bytes, len);
	if (rc)
		return rc;
	free((void *)b->txs[i].bytes);
	b->txs[i] = t;
	return 0;
}

void block_tx_hash(const struct block_tx *t, uint8_t out[HASH_LEN])
{
	if (t->hashed)
		memcpy(out, t->hash, HASH_LEN);
	else
		tx_hash(t->bytes, t->len, out);
}

void block_tx_leaf(const struct block_tx *t, uint8_t out[HASH_LEN])
{
	if (t->hashed)
		memcpy(out, t->leaf, HASH_LEN);
	else
		merkle_leaf_hash(t->bytes, t->len, out);
}

void block_txs_root(const struct block *b, uint8_t out[HASH_LEN])
{
	uint8_t (*leaves)[HASH_LEN];

	if (b->ntx == 0) {
		merkle_empty_root(out);
		return;
	}
	leaves = malloc(b->ntx * sizeof(*leaves));
	if (!leaves)
		abort();   /* a root that cannot be computed must not come out wrong */
	for (size_t i = 0; i < b->ntx; i++)
		block_tx_leaf(&b->txs[i], leaves[i]);
	merkle_root_of((const uint8_t (*)[HASH_LEN])leaves, b->ntx, out);
	free(leaves);
}

/* --- votes -------------------------------------------------------------- */

void vote_encode(struct enc *e, const struct vote *v)
{
	enc_u8(e, v->type);
	enc_u64(e, v->height);
	enc_u32(e, v->round);
	enc_fixed(e, v->block_id, HASH_LEN);
}

int vote_decode_from(struct dec *d, struct vote *v)
{
	memset(v, 0, sizeof(*v));
	v->type = dec_u8(d);
	if (!dec_error(d) && v->type != VOTE_PREVOTE && v->type != VOTE_PRECOMMIT)
		dec_fail(d, TALLY_E_RANGE);
	v->height = dec_u64(d);
	v->round = dec_u32(d);
	dec_fixed(d, v->block_id, HASH_LEN);
	return dec_error(d);
}

int vote_decode(struct vote *v, const uint8_t *p, size_t n)
{
	struct dec d;

	dec_init(&d, p, n);
	vote_decode_from(&d, v);
	return dec_finish(&d);
}

/* The 45 bytes of an encoded vote, on the stack. */
static void vote_bytes(const struct vote *v, uint8_t out[VOTE_LEN])
{
	uint8_t *p = out;

	*p++ = v->type;
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v->height >> (8 * i));
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(v->round >> (8 * i));
	memcpy(p, v->block_id, HASH_LEN);
}

int vote_sign(const struct vote *v, const struct tally_key *k, const uint8_t chain[HASH_LEN],
	      uint8_t sig[SIG_LEN])
{
	uint8_t msg[VOTE_LEN];

	if (v->type != VOTE_PREVOTE && v->type != VOTE_PRECOMMIT)
		return TALLY_E_INVALID;
	vote_bytes(v, msg);
	return sig_sign(k, SIG_VOTE, chain, msg, sizeof(msg), sig);
}

int vote_verify(const struct vote *v, const uint8_t pub[PUBKEY_LEN],
		const uint8_t chain[HASH_LEN], const uint8_t sig[SIG_LEN])
{
	uint8_t msg[VOTE_LEN];

	vote_bytes(v, msg);
	return sig_verify(pub, SIG_VOTE, chain, msg, sizeof(msg), sig);
}

/* --- validator sets ----------------------------------------------------- */

uint64_t valset_total_stake(const struct validator_set *s)
{
	uint64_t total = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].stake > UINT64_MAX - total)
			return UINT64_MAX;   /* valset_check refuses such sets */
		total += s->v[i].stake;
	}
	return total;
}

const struct validator *valset_find(const struct validator_set *s, const uint8_t pub[PUBKEY_LEN])
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(s->v[mid].pubkey, pub, PUBKEY_LEN);

		if (c == 0)
			return &s->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int valset_check(const struct validator_set *s)
{
	uint64_t total = 0;

	if (s->n == 0 || s->n > VALIDATORS_MAX)
		return TALLY_E_VALSET;
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].stake == 0 || s->v[i].stake > UINT64_MAX - total)
			return TALLY_E_VALSET;
		total += s->v[i].stake;
		if (i > 0 && memcmp(s->v[i - 1].pubkey, s->v[i].pubkey, PUBKEY_LEN) >= 0)
			return TALLY_E_VALSET;
	}
	return 0;
}

void valset_encode(struct enc *e, const struct validator_set *s)
{
	enc_u32(e, (uint32_t)s->n);
	for (size_t i = 0; i < s->n; i++) {
		enc_fixed(e, s->v[i].pubkey, PUBKEY_LEN);
		enc_u64(e, s->v[i].stake);
	}
}

int valset_decode_from(struct dec *d, struct validator_set *s)
{
	uint32_t n = dec_u32(d);

	memset(s, 0, sizeof(*s));
	if (!dec_error(d) && (n == 0 || n > VALIDATORS_MAX))
		dec_fail(d, n ? TALLY_E_TOOLONG : TALLY_E_VALSET);
	for (uint32_t i = 0; i < n && !dec_error(d); i++) {
		dec_fixed(d, s->v[i].pubkey, PUBKEY_LEN);
		s->v[i].stake = dec_u64(d);
	}
	if (dec_error(d)) {
		memset(s, 0, sizeof(*s));
		return dec_error(d);
	}
	s->n = n;
	/* The set's own rule, the one every user of a set applies. */
	if (valset_check(s)) {
		memset(s, 0, sizeof(*s));
		dec_fail(d, TALLY_E_VALSET);
	}
	return dec_error(d);
}

void valset_hash(const struct validator_set *s, uint8_t out[HASH_LEN])
{
	struct enc e;

	enc_init(&e);
	valset_encode(&e, s);
	if (enc_error(&e))
		abort();
	sha256(e.buf, e.len, out);
	enc_free(&e);
}

/* --- commit certificates ------------------------------------------------ */

void cert_encode(struct enc *e, const struct commit_cert *c)
{
	if (c->n > VALIDATORS_MAX) {
		if (!e->err)
			e->err = TALLY_E_TOOLONG;
		return;
	}
	enc_u64(e, c->height);
	enc_u32(e, c->round);
	enc_fixed(e, c->block_id, HASH_LEN);
	enc_u32(e, (uint32_t)c->n);
	for (size_t i = 0; i < c->n; i++) {
		enc_fixed(e, c->sigs[i].validator, PUBKEY_LEN);
		enc_fixed(e, c->sigs[i].sig, SIG_LEN);
	}
}

static bool signers_ascending(const struct commit_cert *c)
{
	for (size_t i = 1; i < c->n; i++)
		if (memcmp(c->sigs[i - 1].validator, c->sigs[i].validator, PUBKEY_LEN) >= 0)
			return false;
	return true;
}

int cert_decode(struct commit_cert *c, const uint8_t *p, size_t n)
{
	struct dec d;
	uint32_t count;
	int rc;

	memset(c, 0, sizeof(*c));
	dec_init(&d, p, n);
	c->height = dec_u64(&d);
	c->round = dec_u32(&d);
	dec_fixed(&d, c->block_id, HASH_LEN);
	count = dec_u32(&d);
	if (!dec_error(&d) && count > VALIDATORS_MAX)
		dec_fail(&d, TALLY_E_TOOLONG);
	for (uint32_t i = 0; i < count && !dec_error(&d); i++) {
		dec_fixed(&d, c->sigs[i].validator, PUBKEY_LEN);
		dec_fixed(&d, c->sigs[i].sig, SIG_LEN);
		c->n = i + 1;
	}
	/* One certificate, one encoding: signers in ascending order only. */
	if (!dec_error(&d) && !signers_ascending(c))
		dec_fail(&d, TALLY_E_ENCODING);
	rc = dec_finish(&d);
	if (rc)
		memset(c, 0, sizeof(*c));
	return rc;
}

void cert_hash(const struct commit_cert *c, uint8_t out[HASH_LEN])
{
	struct enc e;

	enc_init(&e);
	cert_encode(&e, c);
	if (enc_error(&e))
		abort();
	sha256(e.buf, e.len, out);
	enc_free(&e);
}

int cert_verify(const struct commit_cert *c, const struct validator_set *vals,
		const uint8_t chain[HASH_LEN])
{
	struct vote v = { .type = VOTE_PRECOMMIT, .height = c->height, .round = c->round };
	unsigned __int128 signed_stake = 0, total = 0;

	if (c->n > VALIDATORS_MAX || !signers_ascending(c))
		return TALLY_E_CERT;
	memcpy(v.block_id, c->block_id, HASH_LEN);
	for (size_t i = 0; i < vals->n; i++)
		total += vals->v[i].stake;
	for (size_t i = 0; i < c->n; i++) {
		const struct validator *m = valset_find(vals, c->sigs[i].validator);

		if (!m)
			return TALLY_E_CERT;
		if (vote_verify(&v, m->pubkey, chain, c->sigs[i].sig) != 0)
			return TALLY_E_SIGNATURE;
		signed_stake += m->stake;
	}
	if (!(signed_stake * 3 > total * 2))
		return TALLY_E_QUORUM;
	return 0;
}

void proposal_encode(struct enc *e, const struct proposal *p)
{
	enc_u64(e, p->height);
	enc_u32(e, p->round);
	enc_u32(e, (uint32_t)p->pol_round);
	enc_fixed(e, p->block_id, HASH_LEN);
}

int proposal_decode_from(struct dec *d, struct proposal *p)
{
	memset(p, 0, sizeof(*p));
	p->height = dec_u64(d);
	p->round = dec_u32(d);
	p->pol_round = (int32_t)dec_u32(d);
	dec_fixed(d, p->block_id, HASH_LEN);
	if (!dec_error(d) && (p->pol_round < -1 || (int64_t)p->pol_round >= (int64_t)p->round))
		dec_fail(d, TALLY_E_RANGE);
	return dec_error(d);
}

int proposal_decode(struct proposal *p, const uint8_t *b, size_t n)
{
	struct dec d;

	dec_init(&d, b, n);
	proposal_decode_from(&d, p);
	return dec_finish(&d);
}

int proposal_verify(const struct proposal *p, const uint8_t pub[PUBKEY_LEN],
		    const uint8_t chain[HASH_LEN], const uint8_t sig[SIG_LEN])
{
	struct enc e;
	int rc;

	enc_init(&e);
	proposal_encode(&e, p);
	rc = enc_error(&e);
	if (!rc)
		rc = sig_verify(pub, SIG_PROPOSAL, chain, e.buf, e.len, sig);
	enc_free(&e);
	return rc;
}
