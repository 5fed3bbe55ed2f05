/* Evidence of equivocation (see evidence.h). */
#include "lib/chain/evidence.h"

#include <inttypes.h>
#include <string.h>

#include "lib/errors.h"

void signed_vote_encode(struct enc *e, const struct signed_vote *s)
{
	vote_encode(e, &s->v);
	enc_fixed(e, s->validator, PUBKEY_LEN);
	enc_fixed(e, s->sig, SIG_LEN);
}

int signed_vote_decode(struct signed_vote *s, const uint8_t *p, size_t n)
{
	struct dec d;
	int rc;

	memset(s, 0, sizeof(*s));
	dec_init(&d, p, n);
	rc = vote_decode_from(&d, &s->v);
	if (rc)
		dec_fail(&d, rc);
	dec_fixed(&d, s->validator, PUBKEY_LEN);
	dec_fixed(&d, s->sig, SIG_LEN);
	return dec_finish(&d);
}

static bool conflict(const struct signed_vote *x, const struct signed_vote *y)
{
	return !memcmp(x->validator, y->validator, PUBKEY_LEN) && x->v.type == y->v.type &&
	       x->v.height == y->v.height && x->v.round == y->v.round &&
	       memcmp(x->v.block_id, y->v.block_id, HASH_LEN) != 0;
}

static int put_vote(uint8_t out[256], uint32_t *len, const struct signed_vote *s)
{
	struct enc e;
	int rc;

	enc_init(&e);
	signed_vote_encode(&e, s);
	rc = enc_error(&e);
	if (!rc && e.len != SIGNED_VOTE_LEN)
		rc = TALLY_E_INTERNAL;
	if (!rc) {
		memcpy(out, e.buf, e.len);
		*len = (uint32_t)e.len;
	}
	enc_free(&e);
	return rc;
}

int evidence_make(struct tx_evidence *out, const struct signed_vote *x,
		  const struct signed_vote *y)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!conflict(x, y))
		return TALLY_E_INVALID;
	if (memcmp(x->v.block_id, y->v.block_id, HASH_LEN) > 0) {
		const struct signed_vote *t = x;

		x = y;
		y = t;
	}
	rc = put_vote(out->vote_a, &out->vote_a_len, x);
	if (!rc)
		rc = put_vote(out->vote_b, &out->vote_b_len, y);
	return rc;
}

int evidence_check(const struct tx_evidence *ev, struct signed_vote *a, struct signed_vote *b,
		   char *why)
{
	struct signed_vote va, vb;
	int rc;

	rc = signed_vote_decode(&va, ev->vote_a, ev->vote_a_len);
	if (rc)
		return why_set(why, rc, "evidence: the first vote does not decode: %s",
			       tally_strerror(rc));
	rc = signed_vote_decode(&vb, ev->vote_b, ev->vote_b_len);
	if (rc)
		return why_set(why, rc, "evidence: the second vote does not decode: %s",
			       tally_strerror(rc));
	if (key_check(va.validator))
		return why_set(why, TALLY_E_KEY, "evidence: the accused key is not a valid Ed25519"
			       " key");
	if (!conflict(&va, &vb))
		return why_set(why, TALLY_E_INVALID, "evidence: the two votes do not conflict (one"
			       " validator, height, round and type, two different blocks)");
	if (memcmp(va.v.block_id, vb.v.block_id, HASH_LEN) > 0)
		return why_set(why, TALLY_E_ENCODING, "evidence: the votes are not in canonical order"
			       " (the smaller block id first)");
	if (a)
		*a = va;
	if (b)
		*b = vb;
	return 0;
}

int evidence_verify(const struct tx_evidence *ev, const uint8_t chain[HASH_LEN], char *why)
{
	struct signed_vote a, b;
	int rc = evidence_check(ev, &a, &b, why);

	if (rc)
		return rc;
	if (vote_verify(&a.v, a.validator, chain, a.sig) ||
	    vote_verify(&b.v, b.validator, chain, b.sig)) {
		char hex[17];

		hex_encode(a.validator, 8, hex);
		return why_set(why, TALLY_E_SIGNATURE, "evidence: a vote's signature does not verify"
			       " for the accused validator %s", hex);
	}
	return 0;
}

int tx_verify_all(const struct tx *t, const uint8_t *p, size_t n, const uint8_t chain[HASH_LEN],
		  char *why)
{
	char hex[17];
	int rc = tx_verify(t, p, n, chain);

	if (rc) {
		hex_encode(t->signer, 8, hex);
		if (rc == TALLY_E_KEY)
			return why_set(why, rc, "its signer %s is not a usable Ed25519 public key",
				       hex);
		return why_set(why, rc, "its signature does not verify for its signer %s", hex);
	}
	if (t->kind == TX_EVIDENCE)
		return evidence_verify(&t->u.evidence, chain, why);
	return 0;
}
