/* Transactions: canonical encoding, strict decoding, signing and the
 * stateless checks a node makes before a transaction reaches its mempool.
 * Byte layouts are in docs/FORMATS.md. */
#include "lib/chain/tx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/errors.h"
#include "lib/merkle.h"

#define EVIDENCE_VOTE_MAX 256
#define NS_PER_S 1000000000ull

static const char *const kind_names[] = {
	[TX_LEASE_OPEN] = "LEASE_OPEN",
	[TX_LEASE_START] = "LEASE_START",
	[TX_USAGE] = "USAGE",
	[TX_LEASE_CLOSE] = "LEASE_CLOSE",
	[TX_TRANSFER] = "TRANSFER",
	[TX_STAKE] = "STAKE",
	[TX_UNSTAKE] = "UNSTAKE",
	[TX_EVIDENCE] = "EVIDENCE",
	[TX_UNJAIL] = "UNJAIL",
	[TX_PROVIDER] = "PROVIDER",
};

static bool kind_known(unsigned k)
{
	return k < sizeof(kind_names) / sizeof(kind_names[0]) && kind_names[k];
}

const char *tx_kind_name(enum tx_kind k)
{
	return kind_known(k) ? kind_names[k] : "UNKNOWN";
}

bool tx_enters_usage_log(const struct tx *t)
{
	return t->kind == TX_USAGE;
}

bool tx_usage_leaf(const struct tx *t, const uint8_t *p, size_t n, uint8_t leaf[HASH_LEN])
{
	if (!tx_enters_usage_log(t))
		return false;
	merkle_leaf_hash(p, n, leaf);
	return true;
}

static void encode_body(struct enc *e, const struct tx *t)
{
	switch (t->kind) {
	case TX_LEASE_OPEN:
		contract_encode_to(e, &t->u.open);
		break;
	case TX_LEASE_START:
		enc_fixed(e, t->u.start.lease_id, LEASE_ID_LEN);
		break;
	case TX_USAGE:
		usage_encode_to(e, &t->u.usage);
		break;
	case TX_LEASE_CLOSE:
		enc_fixed(e, t->u.close.lease_id, LEASE_ID_LEN);
		enc_u8(e, t->u.close.reason);
		break;
	case TX_TRANSFER:
		enc_fixed(e, t->u.transfer.to, PUBKEY_LEN);
		enc_u64(e, t->u.transfer.amount);
		break;
	case TX_STAKE:
	case TX_UNSTAKE:
		enc_u64(e, t->u.stake.amount);
		break;
	case TX_EVIDENCE:
		if (t->u.evidence.vote_a_len > EVIDENCE_VOTE_MAX ||
		    t->u.evidence.vote_b_len > EVIDENCE_VOTE_MAX) {
			if (!e->err)
				e->err = TALLY_E_TOOLONG;
			return;
		}
		enc_bytes(e, t->u.evidence.vote_a, t->u.evidence.vote_a_len);
		enc_bytes(e, t->u.evidence.vote_b, t->u.evidence.vote_b_len);
		break;
	case TX_PROVIDER:
		provider_offer_encode_to(e, &t->u.provider);
		break;
	case TX_UNJAIL:
		break;   /* no body: the signer is the validator */
	default:
		/* An unknown kind has no encoding; say so instead of emitting
		 * bytes no decoder accepts. */
		if (!e->err)
			e->err = TALLY_E_RANGE;
		break;
	}
}

void tx_encode_unsigned(struct enc *e, const struct tx *t)
{
	size_t start = e->len;

	enc_u8(e, t->version);
	enc_u8(e, t->kind);
	enc_str(e, t->chain_id);
	enc_fixed(e, t->signer, PUBKEY_LEN);
	enc_u64(e, t->nonce);
	encode_body(e, t);
	if (!e->err && e->len - start + SIG_LEN > TX_MAX_SIZE)
		e->err = TALLY_E_TOOLONG;
}

void tx_encode(struct enc *e, const struct tx *t)
{
	tx_encode_unsigned(e, t);
	enc_fixed(e, t->sig, SIG_LEN);
}

static void decode_body(struct dec *d, struct tx *t)
{
	size_t n;
	const uint8_t *p;

	switch (t->kind) {
	case TX_LEASE_OPEN:
		contract_decode_from(d, &t->u.open);
		break;
	case TX_LEASE_START:
		dec_fixed(d, t->u.start.lease_id, LEASE_ID_LEN);
		break;
	case TX_USAGE:
		usage_decode_from(d, &t->u.usage);
		break;
	case TX_LEASE_CLOSE:
		dec_fixed(d, t->u.close.lease_id, LEASE_ID_LEN);
		t->u.close.reason = dec_u8(d);
		if (!dec_error(d) && (t->u.close.reason < CLOSE_TERM_ENDED ||
				      t->u.close.reason > CLOSE_REASON_MAX))
			dec_fail(d, TALLY_E_RANGE);
		break;
	case TX_TRANSFER:
		dec_fixed(d, t->u.transfer.to, PUBKEY_LEN);
		t->u.transfer.amount = dec_u64(d);
		if (!dec_error(d) && t->u.transfer.amount == 0)
			dec_fail(d, TALLY_E_RANGE);
		break;
	case TX_STAKE:
	case TX_UNSTAKE:
		t->u.stake.amount = dec_u64(d);
		if (!dec_error(d) && t->u.stake.amount == 0)
			dec_fail(d, TALLY_E_RANGE);
		break;
	case TX_EVIDENCE:
		p = dec_bytes(d, &n, EVIDENCE_VOTE_MAX);
		if (p) {
			memcpy(t->u.evidence.vote_a, p, n);
			t->u.evidence.vote_a_len = (uint32_t)n;
		}
		p = dec_bytes(d, &n, EVIDENCE_VOTE_MAX);
		if (p) {
			memcpy(t->u.evidence.vote_b, p, n);
			t->u.evidence.vote_b_len = (uint32_t)n;
		}
		break;
	case TX_UNJAIL:
		break;   /* no body: the signer is the validator */
	case TX_PROVIDER:
		provider_offer_decode_from(d, &t->u.provider);
		break;
	default:
		dec_fail(d, TALLY_E_RANGE);
		break;
	}
}

int tx_decode(struct tx *t, const uint8_t *p, size_t n)
{
	struct dec d;
	int rc;

	memset(t, 0, sizeof(*t));
	if (n > TX_MAX_SIZE)
		return TALLY_E_TOOLONG;
	dec_init(&d, p, n);
	t->version = dec_u8(&d);
	if (!dec_error(&d) && t->version != TX_VERSION)
		dec_fail(&d, TALLY_E_VERSION);
	t->kind = dec_u8(&d);
	if (!dec_error(&d) && !kind_known(t->kind))
		dec_fail(&d, TALLY_E_RANGE);
	dec_str(&d, t->chain_id, CHAIN_ID_MAX);
	if (!dec_error(&d) && chain_id_valid(t->chain_id) != 0)
		dec_fail(&d, TALLY_E_ENCODING);
	dec_fixed(&d, t->signer, PUBKEY_LEN);
	t->nonce = dec_u64(&d);
	decode_body(&d, t);
	dec_fixed(&d, t->sig, SIG_LEN);
	rc = dec_finish(&d);
	if (rc)
		memset(t, 0, sizeof(*t));
	return rc;
}

int tx_sign(struct tx *t, const struct tally_key *k, const uint8_t chain[HASH_LEN])
{
	struct enc e;
	int rc;

	enc_init(&e);
	tx_encode_unsigned(&e, t);
	rc = enc_error(&e);
	if (!rc)
		rc = sig_sign(k, SIG_TX, chain, e.buf, e.len, t->sig);
	enc_free(&e);
	return rc;
}

/* The signature covers the bytes as received: a strict decoder accepts only
 * the canonical encoding, so they are exactly tx_encode_unsigned(t). */
int tx_verify(const struct tx *t, const uint8_t *p, size_t n, const uint8_t chain[HASH_LEN])
{
	if (n < SIG_LEN)
		return TALLY_E_TRUNCATED;
	return sig_verify(t->signer, SIG_TX, chain, p, n - SIG_LEN, p + n - SIG_LEN);
}

void tx_hash(const uint8_t *p, size_t n, uint8_t out[HASH_LEN])
{
	sha256(p, n, out);
}

int tx_check_rules(const struct tx *t, const char *chain_id, uint64_t now_s, char *why)
{
	if (why)
		why[0] = '\0';
	if (strcmp(t->chain_id, chain_id) != 0)
		return why_set(why, TALLY_E_CHAIN_ID,
			      "transaction is for chain '%s', this chain is '%s'",
			      t->chain_id, chain_id);
	if (key_check(t->signer))
		return why_set(why, TALLY_E_KEY, "the signer's key is not a valid Ed25519 key"
			       " (small order or not canonical)");
	if (t->kind == TX_TRANSFER && key_check(t->u.transfer.to))
		return why_set(why, TALLY_E_KEY, "the recipient's key is not a valid Ed25519 key"
			       " (small order or not canonical)");
	if (t->kind == TX_LEASE_OPEN)
		return contract_check_open(&t->u.open, t->signer, t->nonce, t->chain_id, chain_id,
					   now_s, why);
	return 0;
}

int tx_check_rules_at_block(const struct tx *t, const char *chain_id, uint64_t block_time_ns,
			    char *why)
{
	return tx_check_rules(t, chain_id, block_time_ns / NS_PER_S, why);
}

int tx_check_unsigned(struct tx *t, const uint8_t *p, size_t n, const char *chain_id,
		      uint64_t now_s, char *why)
{
	int rc;

	if (why)
		why[0] = '\0';
	if (n > TX_MAX_SIZE)
		return why_set(why, TALLY_E_TOOLONG,
			      "transaction is %zu bytes, above the limit of %d", n, TX_MAX_SIZE);
	rc = tx_decode(t, p, n);
	if (rc)
		return why_set(why, rc, "transaction does not decode: %s", tally_strerror(rc));
	return tx_check_rules(t, chain_id, now_s, why);
}

int tx_check(struct tx *t, const uint8_t *p, size_t n, const char *chain_id,
	     const uint8_t chain[HASH_LEN], uint64_t now_s, char *why)
{
	char hex[2 * PUBKEY_LEN + 1];
	int rc = tx_check_unsigned(t, p, n, chain_id, now_s, why);

	if (rc)
		return rc;
	rc = tx_verify(t, p, n, chain);
	if (rc) {
		hex_encode(t->signer, 8, hex);
		if (rc == TALLY_E_SIGNATURE || rc == TALLY_E_KEY)
			return why_set(why, TALLY_E_SIGNATURE,
				      "signature does not verify for signer %s", hex);
		return why_set(why, rc, "signature check for signer %s failed: %s", hex,
			      tally_strerror(rc));
	}
	return 0;
}
