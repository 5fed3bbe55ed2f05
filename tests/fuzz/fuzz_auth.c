/* Signed-request headers (daemon/api/auth.h) on a request built without a
 * connection, at a fixed clock so that seeds with real signatures stay
 * valid. The input is the request as lines:
 *
 *     METHOD \n PATH \n Name: value \n Name: value ...
 *
 * Properties: a request is accepted only when each X-Tally-* header is
 * there once, the timestamp is canonical decimal within AUTH_SKEW_S of the
 * clock, the nonce is 16..64 lowercase hex and the signature verifies over
 * the documented message (checked here again with lib/crypto.h); a
 * refusal is a 4xx with a JSON error; an accepted nonce spent twice is a
 * replay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api/auth.h"
#include "lib/chain/request.h"
#include "lib/codec.h"
#include "lib/errors.h"
#include "tests/fuzz/fuzz.h"
#include "tests/vectors/examples.h"

#define FIELDS_MAX 16

static struct examples x;
static struct auth_cache cache;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	examples_build(&x);
	auth_cache_init(&cache);
	return 0;
}

static unsigned count_header(const struct http_field *f, size_t n, const char *name,
			     const char **first)
{
	unsigned c = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(f[i].name, name))
			continue;
		if (c++ == 0)
			*first = f[i].value;
	}
	return c;
}

/* The documented rules, restated. */
static int should_accept(const struct http_request *req, const struct http_field *f, size_t n)
{
	const char *key = NULL, *ts = NULL, *nonce = NULL, *sig_hex = NULL;
	uint8_t pub[PUBKEY_LEN], sig[SIG_LEN];
	char msg[1024];
	uint64_t t = 0;

	if (count_header(f, n, "X-Tally-Key", &key) != 1 ||
	    count_header(f, n, "X-Tally-Timestamp", &ts) != 1 ||
	    count_header(f, n, "X-Tally-Nonce", &nonce) != 1 ||
	    count_header(f, n, "X-Tally-Signature", &sig_hex) != 1)
		return 0;
	if (hex_decode(key, pub, PUBKEY_LEN) || hex_decode(sig_hex, sig, SIG_LEN))
		return 0;
	if (!*ts || strlen(ts) > 20 || (ts[0] == '0' && ts[1]))
		return 0;     /* canonical decimal: no leading zero */
	for (const char *p = ts; *p; p++) {
		if (*p < '0' || *p > '9' || t > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return 0;
		t = t * 10 + (uint64_t)(*p - '0');
	}
	if (t + AUTH_SKEW_S < EXAMPLE_NOW_S || t > EXAMPLE_NOW_S + AUTH_SKEW_S)
		return 0;
	size_t nl = strlen(nonce);
	if (nl < 16 || nl > AUTH_NONCE_HEX_MAX || strspn(nonce, "0123456789abcdef") != nl)
		return 0;
	if (request_message(msg, sizeof(msg), req->method, req->path, ts, nonce))
		return 0;
	return sig_verify(pub, SIG_REQUEST, x.genesis_hash, msg, strlen(msg), sig) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_field f[FIELDS_MAX];
	struct http_request req = { .fields = f };
	struct http_response resp = { .status = 200 };
	struct auth_signed s;
	char *text = fuzz_text(data, size), *save = NULL;
	char *line = strtok_r(text, "\n", &save);
	size_t n = 0;

	req.method = line ? line : "";
	line = strtok_r(NULL, "\n", &save);
	req.path = line ? line : "";
	while ((line = strtok_r(NULL, "\n", &save)) && n < FIELDS_MAX) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		f[n].is_query = 0;
		f[n].name = line;
		f[n].value = colon + 1 + (colon[1] == ' ');
		n++;
	}
	req.nfields = n;

	int want = should_accept(&req, f, n);
	int rc = auth_verify(&req, x.genesis_hash, EXAMPLE_NOW_S, &s, &resp);
	fuzz_require(want == (rc == 0), "auth_verify %s a request the rules %s",
		     rc == 0 ? "accepts" : "refuses", want ? "accept" : "refuse");
	if (rc) {
		fuzz_require(resp.status >= 400 && resp.status < 500 && resp.json,
			     "a refusal answered %u", resp.status);
	} else {
		/* The cache is shared by all inputs: a nonce may have been
		 * spent by an earlier one, but never twice by this one. */
		int first = auth_spend_nonce(&cache, &s, EXAMPLE_NOW_S, NULL);
		int again = auth_spend_nonce(&cache, &s, EXAMPLE_NOW_S, NULL);
		fuzz_require(first == 0 || first == TALLY_E_REPLAY || first == TALLY_E_CAPACITY,
			     "spending a nonce: %d", first);
		fuzz_require(again == TALLY_E_REPLAY || again == TALLY_E_CAPACITY,
			     "a nonce spent twice: %d", again);
	}
	json_decref(resp.json);
	free(resp.text);
	free(text);
	return 0;
}
