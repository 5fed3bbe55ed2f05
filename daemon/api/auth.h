/* Signed API requests: a tenant proves it holds its key to read a lease's
 * private details. See docs/PROTOCOL.md, "Private reads".
 *
 * A check has two steps, so that a stranger spends no replay state:
 *   auth_verify()      headers, clock and signature; no state is touched;
 *   auth_spend_nonce() once the caller knows the key may read what it asks
 *                      for, records the nonce (refusing a replay).
 * Replay state is kept per key and bounded per key (AUTH_NONCES_PER_KEY live
 * nonces), so one key that fills its own share refuses no other key. */
#ifndef TALLY_AUTH_H
#define TALLY_AUTH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/api/http.h"
#include "lib/crypto.h"

#define AUTH_SKEW_S 60
#define AUTH_NONCE_WINDOW_S 120
/* Signed reads one key may make per window: about 2 a second, sustained. */
#define AUTH_NONCES_PER_KEY 256
/* Keys with live nonces. Only tenants with a VM on this node get this far,
 * so the node's capacity bounds them long before this does. */
#define AUTH_KEYS_MAX 4096
#define AUTH_NONCE_HEX_MAX 64

struct auth_key_state;   /* one key's nonces (auth.c) */

struct auth_cache {
	pthread_mutex_t lock;
	struct auth_key_state *keys;   /* a table keyed by public key */
	size_t nkeys;
	uint64_t last_sweep_s;
};

/* A request whose signature verified. */
struct auth_signed {
	uint8_t key[PUBKEY_LEN];
	char nonce[AUTH_NONCE_HEX_MAX + 1];
};

void auth_cache_init(struct auth_cache *c);
void auth_cache_free(struct auth_cache *c);

/* Checks the X-Tally-* headers of req at time now_s (each present once, the
 * timestamp within AUTH_SKEW_S, the signature over the request in domain
 * "request" bound to the chain whose genesis hash is chain). On success *out
 * names the key and nonce; on failure resp holds the error (400 or 401) and
 * a tally_err is returned. */
int auth_verify(const struct http_request *req, const uint8_t chain[HASH_LEN], uint64_t now_s,
		struct auth_signed *out, struct http_response *resp);

/* Records s's nonce for its key at now_s. 0; TALLY_E_REPLAY (401 replay)
 * when the key used it within AUTH_NONCE_WINDOW_S; TALLY_E_CAPACITY (429)
 * when the key has AUTH_NONCES_PER_KEY live nonces; TALLY_E_NOMEM (503)
 * when AUTH_KEYS_MAX keys have live nonces or memory runs out. resp, when
 * not NULL, holds the error. */
int auth_spend_nonce(struct auth_cache *c, const struct auth_signed *s, uint64_t now_s,
		     struct http_response *resp);

#endif
