/* TLS 1.3 contexts over the node's Ed25519 key (see tlsid.h). */
#include "daemon/net/tlsid.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>

#include "lib/codec.h"
#include "lib/errors.h"

/* A certificate that says only "this key": subject and issuer name the
 * key's first 16 bytes in hex (a common name holds at most 64 characters), a random serial, valid from an hour ago for 100 years (dates are
 * not checked by peers), signed by the key itself. */
static X509 *self_signed(const struct tally_key *k)
{
	char cn[2 * PUBKEY_LEN + 16];
	uint8_t serial[16];
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;
	int ok = x && name && RAND_bytes(serial, sizeof(serial)) == 1;

	serial[0] &= 0x7f;   /* a positive serial */
	snprintf(cn, sizeof(cn), "tally-node-");
	hex_encode(k->pub, 16, cn + 11);
	ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) &&
	     (sn = BN_to_ASN1_INTEGER(bn, NULL)) && X509_set_serialNumber(x, sn) &&
	     X509_set_version(x, 2) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
	     X509_time_adj_ex(X509_getm_notAfter(x), 36500, 0, NULL) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
					-1, 0) &&
	     X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) &&
	     X509_set_pubkey(x, k->pkey) &&
	     X509_sign(x, k->pkey, NULL) > 0;   /* Ed25519 takes no digest */
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int tlsid_ctx_new(SSL_CTX **out, const struct tally_key *k,
		  int (*verify)(int preverify_ok, X509_STORE_CTX *store), char *why)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	X509 *cert = self_signed(k);
	int ok = ctx && cert &&
		 SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) &&
		 SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) &&
		 SSL_CTX_set1_sigalgs_list(ctx, "ed25519") &&
		 SSL_CTX_use_certificate(ctx, cert) == 1 &&
		 SSL_CTX_use_PrivateKey(ctx, k->pkey) == 1 &&
		 SSL_CTX_check_private_key(ctx) == 1;

	X509_free(cert);   /* the context holds its own reference */
	*out = NULL;
	if (!ok) {
		unsigned long e = ERR_get_error();
		char buf[160];

		ERR_error_string_n(e, buf, sizeof(buf));
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return why_set(why, TALLY_E_CRYPTO, "cannot set up the peer TLS context over the "
			       "node key: %s", e ? buf : "out of memory");
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify);
	SSL_CTX_set_verify_depth(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	*out = ctx;
	return 0;
}

int tlsid_cert_key(X509 *cert, uint8_t pub[PUBKEY_LEN])
{
	EVP_PKEY *pk = cert ? X509_get0_pubkey(cert) : NULL;
	size_t len = PUBKEY_LEN;

	if (!pk || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(pk, pub, &len) != 1 || len != PUBKEY_LEN)
		return TALLY_E_KEY;
	return key_check(pub);
}

int tlsid_peer_key(SSL *ssl, uint8_t pub[PUBKEY_LEN])
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	int rc = tlsid_cert_key(cert, pub);

	X509_free(cert);
	return rc;
}
