#include "lib/keyed_hash.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "lib/errors.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = TALLY_E_CRYPTO;
static uint8_t process_key[KEYED_HASH_KEY_LEN];
static EVP_MAC *siphash;
/* One MAC context per thread, so callers on the API's threads never wait for
 * each other; freed when the thread ends. */
static pthread_key_t thread_ctx;

static void free_ctx(void *ctx)
{
	EVP_MAC_CTX_free(ctx);
}

static void init_key(void)
{
	if (RAND_bytes(process_key, sizeof(process_key)) != 1)
		return;
	siphash = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	if (!siphash)
		return;
	if (pthread_key_create(&thread_ctx, free_ctx)) {
		EVP_MAC_free(siphash);
		siphash = NULL;
		return;
	}
	init_rc = 0;
}

int keyed_hash_init(void)
{
	pthread_once(&init_once, init_key);
	return init_rc;
}

/* SipHash's default output is 128 bits; tables want 64. */
static int mac_run(EVP_MAC_CTX *ctx, const uint8_t *key, const void *p, size_t n,
		   uint64_t *out)
{
	size_t size = sizeof(*out), got = 0;
	uint8_t digest[sizeof(*out)];
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end(),
	};

	if (EVP_MAC_init(ctx, key, KEYED_HASH_KEY_LEN, params) != 1 ||
	    EVP_MAC_update(ctx, p, n) != 1 ||
	    EVP_MAC_final(ctx, digest, &got, sizeof(digest)) != 1 || got != sizeof(digest))
		return TALLY_E_CRYPTO;
	/* SipHash's output is a little-endian 64-bit word. */
	*out = 0;
	for (size_t i = 0; i < sizeof(digest); i++)
		*out |= (uint64_t)digest[i] << (8 * i);
	return 0;
}

int keyed_hash_with(const uint8_t key[KEYED_HASH_KEY_LEN], const void *p, size_t n,
		    uint64_t *out)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	int rc = ctx ? mac_run(ctx, key, p, n, out) : TALLY_E_CRYPTO;

	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

static uint64_t fallback(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < sizeof(process_key); i++)
		h = (h ^ process_key[i]) * 0x100000001b3ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

uint64_t keyed_hash(const void *p, size_t n)
{
	uint64_t h;

	if (keyed_hash_init())
		return fallback(p, n);
	EVP_MAC_CTX *ctx = pthread_getspecific(thread_ctx);
	if (!ctx) {
		ctx = EVP_MAC_CTX_new(siphash);
		if (!ctx || pthread_setspecific(thread_ctx, ctx)) {
			EVP_MAC_CTX_free(ctx);
			return fallback(p, n);
		}
	}
	if (mac_run(ctx, process_key, p, n, &h))
		return fallback(p, n);
	return h;
}
