/* SHA-256 and Ed25519 through OpenSSL's EVP interface.
 *
 * Accounts are identified by their Ed25519 public key. Keys live in PEM files
 * that `openssl pkey` reads. Every signature is domain separated and bound to
 * one chain: the signed message is
 *
 *     "tally/v2/" || domain name || 0x00 || genesis hash (32 bytes) || payload
 *
 * so a signature made for one object type or one chain (two chains with the
 * same chain id have different genesis hashes) is never valid for another.
 *
 * Verification is strict (docs/FORMATS.md section 2): a public key or a
 * signature's R that is not a canonical encoding (y >= p) or is a point of
 * small order (1, 2, 4 or 8) is refused, and so is an S not below the group
 * order; key_check is the one function that decides whether a key may enter
 * the chain, wherever it does. */
#ifndef TALLY_CRYPTO_H
#define TALLY_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define HASH_LEN 32
#define PUBKEY_LEN 32
#define SIG_LEN 64
#define CHAIN_ID_MAX 48   /* bytes; chain ids are printable ASCII */

/* One domain per kind of signed object. The names are in docs/FORMATS.md. */
enum sig_domain {
	SIG_TX = 0,        /* "tx": every transaction, including leases and usage */
	SIG_VOTE,          /* "vote": a validator's prevote/precommit */
	SIG_REQUEST,       /* "request": a tenant's signed API read request */
	SIG_PROPOSAL,      /* "proposal": a proposer's block proposal */
	SIG__COUNT
};

const char *sig_domain_name(enum sig_domain d);

void sha256(const void *p, size_t n, uint8_t out[HASH_LEN]);

/* Streaming SHA-256 for multi-part inputs. */
struct sha256_stream;
struct sha256_stream *sha256_begin(void);
void sha256_add(struct sha256_stream *s, const void *p, size_t n);
/* Writes the digest and frees the stream. */
void sha256_end(struct sha256_stream *s, uint8_t out[HASH_LEN]);

struct tally_key {
	void *pkey;                 /* EVP_PKEY *, private */
	uint8_t pub[PUBKEY_LEN];
};

int key_generate(struct tally_key *k);
/* From a 32-byte RFC 8032 seed: used by the test vectors and dev keys. */
int key_from_seed(struct tally_key *k, const uint8_t seed[32]);
/* A PKCS#8 PEM private key, as `openssl genpkey -algorithm ed25519` writes.
 * TALLY_E_NOTFOUND when path does not exist, TALLY_E_IO (errno says why)
 * when it cannot be opened, TALLY_E_KEY when it holds no such key. */
int key_load_pem(struct tally_key *k, const char *path);
/* Written atomically with mode 0600; refuses to overwrite an existing file
 * (TALLY_E_EXISTS). On TALLY_E_IO errno says why (the temporary file next
 * to path could not be created, written or linked). */
int key_save_pem(const struct tally_key *k, const char *path);
void key_free(struct tally_key *k);

/* Raw Ed25519 over msg, as in RFC 8032 (no domain). Verification is
 * strict: TALLY_E_KEY for a public key key_check refuses, TALLY_E_SIGNATURE
 * for a non-canonical or small-order R, an S not below the group order, or a
 * signature that does not verify. */
int ed25519_sign(const struct tally_key *k, const void *msg, size_t n, uint8_t sig[SIG_LEN]);
int ed25519_verify(const uint8_t pub[PUBKEY_LEN], const void *msg, size_t n,
		   const uint8_t sig[SIG_LEN]);
/* 0 when the 32 bytes are a canonical encoding of a point of large order;
 * TALLY_E_KEY otherwise. */
int ed25519_point_check(const uint8_t enc[32]);
/* Whether a public key may enter the chain (as a signer, a recipient, a
 * tenant or provider, a validator, a genesis account, a request or peer
 * key): ed25519_point_check. 0 or TALLY_E_KEY. */
int key_check(const uint8_t pub[PUBKEY_LEN]);

/* Domain-separated signatures bound to the chain whose genesis hash is
 * chain; return 0 or a tally_err (TALLY_E_SIGNATURE when the signature does
 * not verify, TALLY_E_KEY for a refused key). */
int sig_sign(const struct tally_key *k, enum sig_domain d, const uint8_t chain[HASH_LEN],
	     const void *payload, size_t n, uint8_t sig[SIG_LEN]);
int sig_verify(const uint8_t pub[PUBKEY_LEN], enum sig_domain d, const uint8_t chain[HASH_LEN],
	       const void *payload, size_t n, const uint8_t sig[SIG_LEN]);

/* A valid chain id: 1..CHAIN_ID_MAX bytes of [a-z0-9._-]. */
int chain_id_valid(const char *chain_id);

#endif
