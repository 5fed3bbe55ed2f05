/* Signed API requests: a tenant proves it holds its key to read a lease's
 * private details. See docs/PROTOCOL.md, "Private reads". */
#ifndef TALLY_AUTH_H
#define TALLY_AUTH_H

#include <pthread.h>
#include <stdint.h>

#include "daemon/api/http.h"
#include "lib/crypto.h"

#define AUTH_SKEW_S 60
#define AUTH_NONCE_WINDOW_S 120
#define AUTH_NONCES 4096

struct auth_seen {
	char nonce[65];
	uint64_t at_s;
};

/* Nonces seen within the replay window; a ring, oldest overwritten first. */
struct auth_cache {
	pthread_mutex_t lock;
	struct auth_seen seen[AUTH_NONCES];
	size_t next;
};

void auth_cache_init(struct auth_cache *c);

/* Checks the X-Tally-* headers of req at time now_s. On success *signer is
 * the key that signed; on failure resp holds the error (401 or 400) and a
 * non-zero tally_err is returned. */
int auth_check(struct auth_cache *c, const struct http_request *req,
	       const uint8_t chain[HASH_LEN],
	       uint64_t now_s, uint8_t signer[PUBKEY_LEN], struct http_response *resp);

#endif
