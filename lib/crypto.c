#include "lib/crypto.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lib/codec.h"
#include "lib/errors.h"

static const char *const domain_names[SIG__COUNT] = {
	[SIG_TX] = "tx",
	[SIG_VOTE] = "vote",
	[SIG_REQUEST] = "request",
	[SIG_PROPOSAL] = "proposal",
};

const char *sig_domain_name(enum sig_domain d)
{
	return (unsigned)d < SIG__COUNT ? domain_names[d] : NULL;
}

/* OpenSSL 3 looks the algorithm up in its provider tables, under a lock, on
 * every digest made with EVP_sha256(); fetching it once halves the cost of
 * a short hash, and Merkle hashing is nearly all short hashes. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_md_once = PTHREAD_ONCE_INIT;

static void sha256_md_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_algorithm(void)
{
	pthread_once(&sha256_md_once, sha256_md_fetch);
	if (!sha256_md)
		abort();
	return sha256_md;
}

void sha256(const void *p, size_t n, uint8_t out[HASH_LEN])
{
	unsigned int len = HASH_LEN;

	/* EVP_Digest only fails on allocation failure inside OpenSSL; a hash
	 * that silently came out wrong would be far worse than stopping. */
	if (!EVP_Digest(p, n, out, &len, sha256_algorithm(), NULL))
		abort();
}

struct sha256_stream *sha256_begin(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || !EVP_DigestInit_ex(ctx, sha256_algorithm(), NULL))
		abort();
	return (struct sha256_stream *)ctx;
}

void sha256_add(struct sha256_stream *s, const void *p, size_t n)
{
	if (!EVP_DigestUpdate((EVP_MD_CTX *)s, p, n))
		abort();
}

void sha256_end(struct sha256_stream *s, uint8_t out[HASH_LEN])
{
	unsigned int len = HASH_LEN;

	if (!EVP_DigestFinal_ex((EVP_MD_CTX *)s, out, &len))
		abort();
	EVP_MD_CTX_free((EVP_MD_CTX *)s);
}

static int key_fill_pub(struct tally_key *k)
{
	size_t len = PUBKEY_LEN;

	if (!EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &len) || len != PUBKEY_LEN)
		return TALLY_E_KEY;
	return 0;
}

int key_generate(struct tally_key *k)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY *pkey = NULL;
	int rc = TALLY_E_CRYPTO;

	memset(k, 0, sizeof(*k));
	if (ctx && EVP_PKEY_keygen_init(ctx) > 0 && EVP_PKEY_keygen(ctx, &pkey) > 0) {
		k->pkey = pkey;
		rc = key_fill_pub(k);
	}
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int key_from_seed(struct tally_key *k, const uint8_t seed[32])
{
	memset(k, 0, sizeof(*k));
	k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (!k->pkey)
		return TALLY_E_CRYPTO;
	return key_fill_pub(k);
}

static int pem_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return -1;
}

int key_load_pem(struct tally_key *k, const char *path)
{
	FILE *f = fopen(path, "r");

	memset(k, 0, sizeof(*k));
	if (!f)
		return errno == ENOENT ? TALLY_E_NOTFOUND : TALLY_E_IO;
	/* With no callback OpenSSL would prompt for a passphrase on the
	 * terminal; tally keys are never encrypted, so refuse instead. */
	EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, pem_no_passphrase, NULL);
	fclose(f);
	if (!pkey)
		return TALLY_E_KEY;
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		return TALLY_E_KEY;
	}
	k->pkey = pkey;
	return key_fill_pub(k);
}

int key_save_pem(const struct tally_key *k, const char *path)
{
	char tmp[4096];
	int rc = TALLY_E_IO, err;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return TALLY_E_INVALID;
	if (access(path, F_OK) == 0)
		return TALLY_E_EXISTS;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return TALLY_E_IO;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		goto out_unlink;
	}
	if (!PEM_write_PrivateKey(f, k->pkey, NULL, NULL, 0, NULL, NULL)) {
		fclose(f);
		rc = TALLY_E_CRYPTO;
		goto out_unlink;
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		rc = errno == ENOSPC ? TALLY_E_DISKFULL : TALLY_E_IO;
		fclose(f);
		goto out_unlink;
	}
	if (fclose(f) != 0)
		goto out_unlink;
	/* link() rather than rename() so an existing key is never replaced. */
	if (link(tmp, path) != 0) {
		rc = errno == EEXIST ? TALLY_E_EXISTS : TALLY_E_IO;
		goto out_unlink;
	}
	rc = 0;
out_unlink:
	err = errno;
	unlink(tmp);
	errno = err;   /* the caller names the failure, not unlink's */
	return rc;
}

void key_free(struct tally_key *k)
{
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

int ed25519_sign(const struct tally_key *k, const void *msg, size_t n, uint8_t sig[SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = SIG_LEN;
	int rc = TALLY_E_CRYPTO;

	if (ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) > 0 &&
	    EVP_DigestSign(ctx, sig, &siglen, msg, n) > 0 && siglen == SIG_LEN)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* y of a point's encoding (the sign bit of x cleared) is at least
 * p = 2^255 - 19: bytes 1..30 all 0xff, byte 31 0x7f, byte 0 from 0xed. */
static bool y_not_canonical(const uint8_t enc[32])
{
	if ((enc[31] & 0x7f) != 0x7f || enc[0] < 0xed)
		return false;
	for (int i = 1; i < 31; i++)
		if (enc[i] != 0xff)
			return false;
	return true;
}

/* The y coordinates (little-endian, sign bit cleared) of the eight points of
 * order 1, 2, 4 and 8 on edwards25519: the identity (y = 1), order 2
 * (y = p - 1), order 4 (y = 0, x = +-sqrt(-1)) and order 8 (y = +-y8 with
 * y8^2 = (-1 + sqrt(1 + d)) / d, the points whose double has y = 0).
 * docs/FORMATS.md section 2 derives them. */
static const uint8_t small_order_y[5][32] = {
	{ 0 },
	{ 1 },
	{ 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0x7f },
	{ 0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
	  0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
	  0x6d, 0x53, 0xfc, 0x05 },
	{ 0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
	  0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
	  0x92, 0xac, 0x03, 0x7a },
};

int ed25519_point_check(const uint8_t enc[32])
{
	uint8_t y[32];

	if (y_not_canonical(enc))
		return TALLY_E_KEY;
	memcpy(y, enc, 32);
	y[31] &= 0x7f;
	for (size_t i = 0; i < sizeof(small_order_y) / sizeof(small_order_y[0]); i++)
		if (!memcmp(y, small_order_y[i], 32))
			return TALLY_E_KEY;
	return 0;
}

int key_check(const uint8_t pub[PUBKEY_LEN])
{
	return ed25519_point_check(pub);
}

/* The group order L = 2^252 + 27742317777372353535851937790883648493,
 * little-endian: S must be below it. */
static const uint8_t group_order[32] = {
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
	0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x10,
};

static bool scalar_canonical(const uint8_t s[32])
{
	for (int i = 31; i >= 0; i--) {
		if (s[i] != group_order[i])
			return s[i] < group_order[i];
	}
	return false;   /* S == L */
}

int ed25519_verify(const uint8_t pub[PUBKEY_LEN], const void *msg, size_t n,
		   const uint8_t sig[SIG_LEN])
{
	EVP_PKEY *pkey;
	EVP_MD_CTX *ctx;
	int rc = TALLY_E_CRYPTO;

	/* Strict RFC 8032 (section 5.1.7) plus what it leaves open: A and R
	 * canonical and of large order, S below L. */
	if (key_check(pub))
		return TALLY_E_KEY;
	if (ed25519_point_check(sig) || !scalar_canonical(sig + 32))
		return TALLY_E_SIGNATURE;
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, PUBKEY_LEN);
	ctx = EVP_MD_CTX_new();
	if (!pkey) {
		rc = TALLY_E_KEY;
		goto out;
	}
	if (!ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) <= 0)
		goto out;
	rc = EVP_DigestVerify(ctx, sig, SIG_LEN, msg, n) == 1 ? 0 : TALLY_E_SIGNATURE;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return rc;
}

/* Builds the domain-separated message described in crypto.h. */
static int sig_message(struct enc *e, enum sig_domain d, const uint8_t chain[HASH_LEN],
		       const void *payload, size_t n)
{
	const char *name = sig_domain_name(d);

	if (!name || !chain)
		return TALLY_E_INVALID;
	enc_init(e);
	enc_fixed(e, "tally/v2/", 9);
	enc_fixed(e, name, strlen(name));
	enc_u8(e, 0);
	enc_fixed(e, chain, HASH_LEN);
	enc_fixed(e, payload, n);
	if (enc_error(e)) {
		enc_free(e);
		return TALLY_E_NOMEM;
	}
	return 0;
}

int sig_sign(const struct tally_key *k, enum sig_domain d, const uint8_t chain[HASH_LEN],
	     const void *payload, size_t n, uint8_t sig[SIG_LEN])
{
	struct enc e;
	int rc = sig_message(&e, d, chain, payload, n);

	if (rc)
		return rc;
	rc = ed25519_sign(k, e.buf, e.len, sig);
	enc_free(&e);
	return rc;
}

int sig_verify(const uint8_t pub[PUBKEY_LEN], enum sig_domain d, const uint8_t chain[HASH_LEN],
	       const void *payload, size_t n, const uint8_t sig[SIG_LEN])
{
	struct enc e;
	int rc = sig_message(&e, d, chain, payload, n);

	if (rc)
		return rc;
	rc = ed25519_verify(pub, e.buf, e.len, sig);
	enc_free(&e);
	return rc;
}

int chain_id_valid(const char *chain_id)
{
	size_t n = chain_id ? strlen(chain_id) : 0;

	if (n == 0 || n > CHAIN_ID_MAX)
		return TALLY_E_CHAIN_ID;
	for (size_t i = 0; i < n; i++) {
		char c = chain_id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return TALLY_E_CHAIN_ID;
	}
	return 0;
}
