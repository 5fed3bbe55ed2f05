#include "daemon/api/auth.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/table.h"
#include "lib/codec.h"
#include "lib/decimal.h"
#include "lib/errors.h"
#include "lib/chain/request.h"

struct auth_seen {
	char nonce[AUTH_NONCE_HEX_MAX + 1];
	uint64_t at_s;
};

/* One key's nonces: a ring, oldest overwritten first once it left the
 * window. A live nonce is never forgotten: forgetting would let a replay in. */
struct auth_key_state {
	uint8_t key[PUBKEY_LEN];
	size_t next;
	uint64_t newest_s;
	struct auth_seen seen[AUTH_NONCES_PER_KEY];
	int oom;
	UT_hash_handle hh;
};

void auth_cache_init(struct auth_cache *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
}

void auth_cache_free(struct auth_cache *c)
{
	struct auth_key_state *k, *tmp;

	HASH_ITER(hh, c->keys, k, tmp) {
		HASH_DEL(c->keys, k);
		free(k);
	}
	c->nkeys = 0;
	pthread_mutex_destroy(&c->lock);
}

static int live(uint64_t at_s, uint64_t now_s)
{
	return at_s + AUTH_NONCE_WINDOW_S >= now_s;
}

/* Forgets keys none of whose nonces is live any more, at most once a window
 * (or when the table is full), so the table holds only recent keys. */
static void sweep(struct auth_cache *c, uint64_t now_s, int force)
{
	struct auth_key_state *k, *tmp;

	if (!force && c->last_sweep_s + AUTH_NONCE_WINDOW_S > now_s)
		return;
	c->last_sweep_s = now_s;
	HASH_ITER(hh, c->keys, k, tmp) {
		if (!live(k->newest_s, now_s)) {
			HASH_DEL(c->keys, k);
			free(k);
			c->nkeys--;
		}
	}
}

static int key_state(struct auth_cache *c, const uint8_t key[PUBKEY_LEN], uint64_t now_s,
		     struct auth_key_state **out)
{
	struct auth_key_state *k;

	HASH_FIND(hh, c->keys, key, PUBKEY_LEN, k);
	if (k) {
		*out = k;
		return 0;
	}
	if (c->nkeys >= AUTH_KEYS_MAX)
		sweep(c, now_s, 1);
	if (c->nkeys >= AUTH_KEYS_MAX)
		return TALLY_E_NOMEM;
	k = calloc(1, sizeof(*k));
	if (!k)
		return TALLY_E_NOMEM;
	memcpy(k->key, key, PUBKEY_LEN);
	HASH_ADD(hh, c->keys, key, PUBKEY_LEN, k);
	if (k->oom) {
		free(k);
		return TALLY_E_NOMEM;
	}
	c->nkeys++;
	*out = k;
	return 0;
}

static int remember(struct auth_cache *c, const struct auth_signed *s, uint64_t now_s,
		    uint64_t *retry_s)
{
	struct auth_key_state *k;
	int rc = key_state(c, s->key, now_s, &k);

	if (rc)
		return rc;
	for (size_t i = 0; i < AUTH_NONCES_PER_KEY; i++) {
		const struct auth_seen *e = &k->seen[i];
		if (e->nonce[0] && live(e->at_s, now_s) && !strcmp(e->nonce, s->nonce))
			return TALLY_E_REPLAY;
	}
	struct auth_seen *slot = &k->seen[k->next];
	if (slot->nonce[0] && live(slot->at_s, now_s)) {
		*retry_s = slot->at_s + AUTH_NONCE_WINDOW_S + 1 - now_s;
		return TALLY_E_CAPACITY;
	}
	snprintf(slot->nonce, sizeof(slot->nonce), "%s", s->nonce);
	slot->at_s = now_s;
	if (now_s > k->newest_s)
		k->newest_s = now_s;
	k->next = (k->next + 1) % AUTH_NONCES_PER_KEY;
	return 0;
}

int auth_spend_nonce(struct auth_cache *c, const struct auth_signed *s, uint64_t now_s,
		     struct http_response *resp)
{
	uint64_t retry_s = 0;

	pthread_mutex_lock(&c->lock);
	sweep(c, now_s, 0);
	int rc = remember(c, s, now_s, &retry_s);
	pthread_mutex_unlock(&c->lock);
	if (!resp || !rc)
		return rc;
	if (rc == TALLY_E_REPLAY)
		http_error(resp, 401, "replay", "request nonce already used");
	else if (rc == TALLY_E_CAPACITY)
		http_error(resp, 429, "too_many_requests", "this key made %d signed requests in "
			   "the last %d s; retry in %llu s", AUTH_NONCES_PER_KEY,
			   AUTH_NONCE_WINDOW_S, (unsigned long long)retry_s);
	else
		http_error(resp, 503, "unavailable", "too many signed requests; retry shortly");
	return rc;
}

static int nonce_valid(const char *nonce)
{
	size_t n = strlen(nonce);

	if (n < 16 || n > AUTH_NONCE_HEX_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((nonce[i] >= '0' && nonce[i] <= '9') || (nonce[i] >= 'a' && nonce[i] <= 'f')))
			return 0;
	return 1;
}

int auth_verify(const struct http_request *req, const uint8_t chain[HASH_LEN], uint64_t now_s,
		struct auth_signed *out, struct http_response *resp)
{
	static const char *const names[] = { "X-Tally-Key", "X-Tally-Timestamp",
					      "X-Tally-Nonce", "X-Tally-Signature" };
	const char *v[4];
	uint8_t sig[SIG_LEN];
	char msg[1024];

	for (size_t i = 0; i < 4; i++) {
		int rc = http_header_once(req, names[i], &v[i]);
		if (rc == TALLY_E_EXISTS) {
			http_error(resp, 400, "invalid", "%s is given more than once", names[i]);
			return TALLY_E_INVALID;
		}
		if (rc) {
			http_error(resp, 401, "unauthorized",
				   "this read needs a signed request (X-Tally-Key, "
				   "X-Tally-Timestamp, X-Tally-Nonce, X-Tally-Signature)");
			return TALLY_E_UNAUTHORIZED;
		}
	}
	const char *key = v[0], *ts = v[1], *nonce = v[2], *sig_hex = v[3];
	if (hex_decode(key, out->key, PUBKEY_LEN) || hex_decode(sig_hex, sig, SIG_LEN)) {
		http_error(resp, 400, "encoding", "X-Tally-Key or X-Tally-Signature is not hex "
			   "of the right length");
		return TALLY_E_ENCODING;
	}
	uint64_t t;
	if (decimal_u64(ts, strlen(ts), &t)) {
		http_error(resp, 400, "encoding", "X-Tally-Timestamp is not unix seconds");
		return TALLY_E_ENCODING;
	}
	if (t + AUTH_SKEW_S < now_s || t > now_s + AUTH_SKEW_S) {
		http_error(resp, 401, "expired", "request timestamp %" PRIu64 " is more than %d s"
			   " from the node's clock %llu", t, AUTH_SKEW_S, (unsigned long long)now_s);
		return TALLY_E_EXPIRED;
	}
	if (!nonce_valid(nonce)) {
		http_error(resp, 400, "encoding", "X-Tally-Nonce must be 16 to 64 lowercase hex "
			   "characters");
		return TALLY_E_ENCODING;
	}
	if (request_message(msg, sizeof(msg), req->method, req->path, ts, nonce)) {
		http_error(resp, 400, "too_long", "request path too long");
		return TALLY_E_TOOLONG;
	}
	if (sig_verify(out->key, SIG_REQUEST, chain, msg, strlen(msg), sig)) {
		http_error(resp, 401, "signature", "request signature does not verify");
		return TALLY_E_SIGNATURE;
	}
	snprintf(out->nonce, sizeof(out->nonce), "%s", nonce);
	return 0;
}
