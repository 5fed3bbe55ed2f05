/* The node's TLS identity: TLS 1.3 only, each side presenting a self-signed
 * X.509 certificate over its Ed25519 node key and proving the key in the
 * handshake (CertificateVerify, RFC 8446 section 4.4.3, with the ed25519
 * signature scheme of RFC 8446 section 4.2.3). The certificate is only a
 * carrier for the key: who may connect is decided by the key alone, by the
 * caller's verify callback, never by a CA, names or dates. */
#ifndef TALLY_NET_TLSID_H
#define TALLY_NET_TLSID_H

#include <openssl/ssl.h>
#include <stdint.h>

#include "lib/crypto.h"

/* A context for both directions (SSL_set_connect_state or
 * SSL_set_accept_state per connection): TLS 1.3 only, the ed25519
 * signature scheme only, a peer certificate required, no session tickets
 * or resumption (every connection proves the key again). verify is
 * OpenSSL's verify callback, which decides on the key (tlsid_cert_key).
 * why[WHY_MAX] on failure; returns 0 or TALLY_E_CRYPTO. */
int tlsid_ctx_new(SSL_CTX **out, const struct tally_key *k,
		  int (*verify)(int preverify_ok, X509_STORE_CTX *store), char *why);

/* The Ed25519 public key of a certificate. 0, or TALLY_E_KEY when the
 * certificate's key is of another type or refused by key_check. */
int tlsid_cert_key(X509 *cert, uint8_t pub[PUBKEY_LEN]);

/* The key the peer of an established connection proved. 0 or TALLY_E_KEY. */
int tlsid_peer_key(SSL *ssl, uint8_t pub[PUBKEY_LEN]);

#endif
