/* HTTP client for the node API (see cli/client.h). */
#include "cli/client.h"
#include "cli/progress.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/chain/request.h"

#define BODY_MAX (256u << 20)   /* refuse answers beyond this */

struct body {
	char *p;
	size_t len;
	int too_big;
};

__attribute__((format(printf, 2, 3)))
static void set_err(struct client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct body *b = ctx;
	size_t add = size * n;

	if (b->len + add > BODY_MAX) {
		b->too_big = 1;
		return 0;
	}
	char *np = realloc(b->p, b->len + add + 1);
	if (!np)
		return 0;
	memcpy(np + b->len, p, add);
	b->p = np;
	b->len += add;
	b->p[b->len] = 0;
	return add;
}

static const char *default_cacert = "";

void client_set_cacert(const char *path)
{
	default_cacert = path ? path : "";
}

/* libcurl's own parser: a URL it would refuse later (a port above 65535, a
 * space in the host) is refused here, as a bad URL rather than as a node
 * that cannot be reached. */
static bool url_parses(const char *url)
{
	CURLU *u = curl_url();
	bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK;

	curl_url_cleanup(u);
	return ok;
}

int client_init(struct client *c, const char *base_url)
{
	size_t n;

	memset(c, 0, sizeof(*c));
	c->timeout_s = CLIENT_TIMEOUT_S;
	n = strlen(base_url);
	while (n && base_url[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(c->base) ||
	    (strncasecmp(base_url, "http://", 7) && strncasecmp(base_url, "https://", 8)) ||
	    n <= (size_t)(base_url[4] == ':' ? 7 : 8) || !url_parses(base_url)) {
		set_err(c, "bad node URL '%s' (want http://HOST:PORT or https://HOST:PORT)",
			base_url);
		return -1;
	}
	/* The API's paths are appended to it: a URL that names them already
	 * would ask for /v1/v1/... and read as a node without them. */
	if (n >= 3 && !strncasecmp(base_url + n - 3, "/v1", 3)) {
		set_err(c, "bad node URL '%s': give the node's address without /v1 (e.g. %.*s)",
			base_url, (int)(n - 3), base_url);
		return -1;
	}
	if (strlen(default_cacert) >= sizeof(c->cacert)) {
		set_err(c, "--cacert path too long");
		return -1;
	}
	snprintf(c->cacert, sizeof(c->cacert), "%s", default_cacert);
	memcpy(c->base, base_url, n);
	c->base[n] = 0;
	c->curl = curl_easy_init();
	if (!c->curl) {
		set_err(c, "cannot initialise libcurl");
		return -1;
	}
	return 0;
}

void client_free(struct client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
}

/* "Connection refused" -> "connection refused": a clause inside a sentence;
 * a name ("OpenSSL", "TLS") keeps its capitals. */
static void lower_first(char *s)
{
	size_t i = 1;

	if (!s[0] || !isupper((unsigned char)s[0]))
		return;
	while (s[i] && !isspace((unsigned char)s[i]) && !isupper((unsigned char)s[i]) &&
	       s[i] != '/')
		i++;
	if (!s[i] || isspace((unsigned char)s[i]))
		s[0] = (char)tolower((unsigned char)s[0]);
}

/* libcurl's progress callback: non-zero abandons the transfer. */
static int cancelled(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		     curl_off_t ulnow)
{
	const struct client *c = ctx;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return c->cancel && *c->cancel;
}

static void transport_error(struct client *c, CURLcode rc, const char *curl_err)
{
	long os_errno = 0;
	char why[256];

	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
	if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
		snprintf(why, sizeof(why), "%s (the node's TLS certificate is not trusted: give "
			 "its CA with --cacert FILE)", curl_err[0] ? curl_err : curl_easy_strerror(rc));
		set_err(c, "cannot reach node at %s: %s", c->base, why);
		return;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(why, sizeof(why), "no answer within %ld s", c->timeout_s);
	else if (os_errno && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_RECV_ERROR ||
			      rc == CURLE_SEND_ERROR))
		snprintf(why, sizeof(why), "%s", strerror((int)os_errno));
	else if (curl_err[0])
		snprintf(why, sizeof(why), "%s", curl_err);
	else
		snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
	lower_first(why);
	/* The scheme the other way round from the node's API: say so, rather
	 * than leave OpenSSL's or HTTP's words to be decoded. */
	if (!strncasecmp(c->base, "https://", 8) && rc == CURLE_SSL_CONNECT_ERROR &&
	    (strstr(why, "wrong version number") || strstr(why, "packet length too long")))
		set_err(c, "cannot reach node at %s: it does not speak TLS there (%s); if its API"
			" is plain HTTP, use http://", c->base, why);
	else if (!strncasecmp(c->base, "https://", 8) && rc == CURLE_SSL_CONNECT_ERROR)
		/* A plain HTTP server may also just close the connection. */
		set_err(c, "cannot reach node at %s: the TLS handshake failed (%s); if its API is"
			" plain HTTP, use http://", c->base, why);
	else if (!strncasecmp(c->base, "http://", 7) &&
		 (rc == CURLE_GOT_NOTHING || rc == CURLE_WEIRD_SERVER_REPLY ||
		  rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_RECV_ERROR))
		set_err(c, "cannot reach node at %s: %s; if its API uses TLS, use https://",
			c->base, why);
	else
		set_err(c, "cannot reach node at %s: %s", c->base, why);
}

/* The node's {"error", "code"} body, or the status line when there is none. */
static void http_error(struct client *c, const char *path, const struct body *b)
{
	json_t *j = b->p ? json_loads(b->p, 0, NULL) : NULL;
	const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
	const char *code = j ? json_string_value(json_object_get(j, "code")) : NULL;

	snprintf(c->code, sizeof(c->code), "%s", code ? code : "");
	if (msg)
		set_err(c, "node refused (HTTP %ld): %s", c->status, msg);
	else
		set_err(c, "node at %s answered HTTP %ld to %.200s", c->base, c->status, path);
	json_decref(j);
}

/* One request; hdrs stay the caller's. */
static enum client_rc perform_once(struct client *c, const char *path, const char *post,
				   struct curl_slist *hdrs, struct body *b)
{
	char url[2048], curl_err[CURL_ERROR_SIZE] = "";
	CURLcode rc;

	memset(b, 0, sizeof(*b));
	c->status = 0;
	c->code[0] = 0;
	if (snprintf(url, sizeof(url), "%s%s", c->base, path) >= (int)sizeof(url)) {
		set_err(c, "URL too long");
		return CLIENT_BADREPLY;
	}
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, c->timeout_s);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	if (c->cancel) {
		curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, cancelled);
		curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
		curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	}
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "tally-cli/1");
	/* Only the API's schemes, also after a redirect; verification is
	 * libcurl's default and stays on. */
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->cacert[0])
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->cacert);
	if (post)
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, post);
	if (hdrs)
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(c->curl);
	if (rc != CURLE_OK) {
		if (b->too_big)
			set_err(c, "node at %s sent an answer above %u MiB", c->base,
				BODY_MAX >> 20);
		else
			transport_error(c, rc, curl_err);
		free(b->p);
		b->p = NULL;
		return b->too_big ? CLIENT_BADREPLY : CLIENT_UNREACHABLE;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
	if (c->status >= 400) {
		http_error(c, path, b);
		free(b->p);
		b->p = NULL;
		return CLIENT_REFUSED;
	}
	return CLIENT_OK;
}

/* A node over its per-address rate answers 429 with a Retry-After before
 * it reads the request (docs/PROTOCOL.md), so the request is sent again
 * after the wait it names (at most RETRY_WAIT_MAX_S s each time), for as
 * long as the client's own timeout and its retry_until allow: a command
 * that polls (tx --wait, submit --wait, an audit's proofs) slows down to
 * the node's rate instead of failing. A 429 without Retry-After (a key over
 * its signed-request budget) is final. */
#define RETRY_WAIT_MAX_S 10

static enum client_rc perform(struct client *c, const char *path, const char *post,
			      struct curl_slist *hdrs, struct body *b)
{
	long waited = 0;
	bool said = false;
	enum client_rc rc;

	if (post)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	for (;;) {
		curl_off_t after = 0;

		rc = perform_once(c, path, post, hdrs, b);
		/* Only reads: a request that may have been applied is not sent
		 * twice. */
		if (rc == CLIENT_UNREACHABLE && !post && !b->too_big && c->reach_until &&
		    time(NULL) + 1 <= c->reach_until && !(c->cancel && *c->cancel)) {
			if (!said) {
				progress_interrupt();
				fprintf(stderr, "tally: %s; trying again every second\n", c->err);
				said = true;
			}
			if (sleep(1))
				break;   /* a signal (Ctrl-C in usage --follow): stop */
			continue;
		}
		if (said && rc != CLIENT_UNREACHABLE)
			fprintf(stderr, "tally: node at %s answers again\n", c->base);
		if (rc != CLIENT_REFUSED || c->status != 429)
			break;
		curl_easy_getinfo(c->curl, CURLINFO_RETRY_AFTER, &after);
		if (after < 1)
			break;
		if (after > RETRY_WAIT_MAX_S)
			after = RETRY_WAIT_MAX_S;
		if (waited + after > c->timeout_s ||
		    (c->retry_until && time(NULL) + after > c->retry_until))
			break;
		sleep((unsigned)after);
		waited += after;
	}
	curl_slist_free_all(hdrs);
	return rc;
}

static enum client_rc parse(struct client *c, const char *path, struct body *b, json_t **out)
{
	json_error_t jerr;

	*out = json_loadb(b->p ? b->p : "", b->len, 0, &jerr);
	free(b->p);
	if (!*out) {
		set_err(c, "node at %s answered %s with malformed JSON: %s", c->base, path,
			jerr.text);
		return CLIENT_BADREPLY;
	}
	return CLIENT_OK;
}

enum client_rc client_get(struct client *c, const char *path, json_t **out)
{
	struct body b;
	enum client_rc rc = perform(c, path, NULL, NULL, &b);

	*out = NULL;
	if (rc)
		return rc;
	return parse(c, path, &b, out);
}

enum client_rc client_get_raw(struct client *c, const char *path, char **out, size_t *len)
{
	struct body b;
	enum client_rc rc = perform(c, path, NULL, NULL, &b);

	*out = NULL;
	*len = 0;
	if (rc)
		return rc;
	if (!b.p) {
		b.p = calloc(1, 1);
		if (!b.p) {
			set_err(c, "out of memory");
			return CLIENT_BADREPLY;
		}
	}
	*out = b.p;
	*len = b.len;
	return CLIENT_OK;
}

enum client_rc client_post(struct client *c, const char *path, const json_t *body, json_t **out)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct body b;
	enum client_rc rc;

	if (out)
		*out = NULL;
	if (!text) {
		set_err(c, "out of memory");
		return CLIENT_BADREPLY;
	}
	rc = perform(c, path, text, NULL, &b);
	free(text);
	if (rc)
		return rc;
	if (!out) {
		free(b.p);
		return CLIENT_OK;
	}
	return parse(c, path, &b, out);
}


enum client_rc client_get_signed(struct client *c, const char *path, const void *key,
				 const uint8_t chain[32], json_t **out)
{
	const struct tally_key *k = key;
	char ts[32], nonce[33], msg[2048], hdr[256], hex[2 * SIG_LEN + 1];
	uint8_t raw[16], sig[SIG_LEN];
	struct curl_slist *hdrs = NULL;
	struct body b;

	*out = NULL;
	/* The nonce only has to be fresh; RAND_bytes makes it unguessable too. */
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		set_err(c, "cannot make a request nonce");
		return CLIENT_BADREPLY;
	}
	hex_encode(raw, sizeof(raw), nonce);
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	if (request_message(msg, sizeof(msg), "GET", path, ts, nonce) ||
	    sig_sign(k, SIG_REQUEST, chain, msg, strlen(msg), sig)) {
		set_err(c, "cannot sign the request for %s", path);
		return CLIENT_BADREPLY;
	}
	hex_encode(k->pub, PUBKEY_LEN, hex);
	snprintf(hdr, sizeof(hdr), "X-Tally-Key: %s", hex);
	hdrs = curl_slist_append(hdrs, hdr);
	snprintf(hdr, sizeof(hdr), "X-Tally-Timestamp: %s", ts);
	hdrs = curl_slist_append(hdrs, hdr);
	snprintf(hdr, sizeof(hdr), "X-Tally-Nonce: %s", nonce);
	hdrs = curl_slist_append(hdrs, hdr);
	hex_encode(sig, SIG_LEN, hex);
	snprintf(hdr, sizeof(hdr), "X-Tally-Signature: %s", hex);
	hdrs = curl_slist_append(hdrs, hdr);
	enum client_rc rc = perform(c, path, NULL, hdrs, &b);
	if (rc)
		return rc;
	return parse(c, path, &b, out);
}
