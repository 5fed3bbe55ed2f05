#include "daemon/api/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/codec.h"
#include "lib/errors.h"
#include "lib/chain/request.h"

void auth_cache_init(struct auth_cache *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
}

static int nonce_valid(const char *nonce)
{
	size_t n = strlen(nonce);

	if (n < 16 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((nonce[i] >= '0' && nonce[i] <= '9') || (nonce[i] >= 'a' && nonce[i] <= 'f')))
			return 0;
	return 1;
}

/* Records the nonce; refuses one seen inside the window. When the ring is
 * full of live nonces, refuse rather than forget one (forgetting would let a
 * replay through). */
static int nonce_remember(struct auth_cache *c, const char *nonce, uint64_t now_s)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < AUTH_NONCES; i++) {
		const struct auth_seen *s = &c->seen[i];
		if (s->at_s + AUTH_NONCE_WINDOW_S >= now_s && s->nonce[0] &&
		    !strcmp(s->nonce, nonce)) {
			rc = TALLY_E_REPLAY;
			goto out;
		}
	}
	struct auth_seen *slot = &c->seen[c->next];
	if (slot->nonce[0] && slot->at_s + AUTH_NONCE_WINDOW_S >= now_s) {
		rc = TALLY_E_NOMEM;
		goto out;
	}
	snprintf(slot->nonce, sizeof(slot->nonce), "%s", nonce);
	slot->at_s = now_s;
	c->next = (c->next + 1) % AUTH_NONCES;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int auth_check(struct auth_cache *c, const struct http_request *req,
	       const uint8_t chain[HASH_LEN],
	       uint64_t now_s, uint8_t signer[PUBKEY_LEN], struct http_response *resp)
{
	const char *key = http_header(req, "X-Tally-Key");
	const char *ts = http_header(req, "X-Tally-Timestamp");
	const char *nonce = http_header(req, "X-Tally-Nonce");
	const char *sig_hex = http_header(req, "X-Tally-Signature");
	uint8_t sig[SIG_LEN];
	char msg[1024];
	char *end;

	if (!key || !ts || !nonce || !sig_hex) {
		http_error(resp, 401, "unauthorized",
			   "this read needs a signed request (X-Tally-Key, X-Tally-Timestamp, "
			   "X-Tally-Nonce, X-Tally-Signature)");
		return TALLY_E_UNAUTHORIZED;
	}
	if (hex_decode(key, signer, PUBKEY_LEN) || hex_decode(sig_hex, sig, SIG_LEN)) {
		http_error(resp, 400, "encoding", "X-Tally-Key or X-Tally-Signature is not hex "
			   "of the right length");
		return TALLY_E_ENCODING;
	}
	errno = 0;
	unsigned long long t = strtoull(ts, &end, 10);
	if (errno || end == ts || *end || ts[0] == '-') {
		http_error(resp, 400, "encoding", "X-Tally-Timestamp is not unix seconds");
		return TALLY_E_ENCODING;
	}
	if (t + AUTH_SKEW_S < now_s || t > now_s + AUTH_SKEW_S) {
		http_error(resp, 401, "expired", "request timestamp %llu is more than %d s from "
			   "the node's clock %llu", t, AUTH_SKEW_S, (unsigned long long)now_s);
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
	if (sig_verify(signer, SIG_REQUEST, chain, msg, strlen(msg), sig)) {
		http_error(resp, 401, "signature", "request signature does not verify");
		return TALLY_E_SIGNATURE;
	}
	int rc = nonce_remember(c, nonce, now_s);
	if (rc == TALLY_E_REPLAY)
		http_error(resp, 401, "replay", "request nonce already used");
	else if (rc)
		http_error(resp, 503, "unavailable", "too many signed requests; retry shortly");
	return rc;
}
