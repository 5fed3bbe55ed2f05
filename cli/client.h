/* HTTP client for the node API (docs/PROTOCOL.md), on libcurl and jansson.
 * Node URLs are http:// or https://; over https the node's certificate is
 * verified as curl does (the system's CAs, or the file given by
 * client_set_cacert(), and the host name). Every call has a timeout; a
 * failure leaves one clear sentence in c->err:
 *   "cannot reach node at http://127.0.0.1:7654: connection refused"
 *   "node refused (HTTP 402): deposit 5000000 exceeds balance 1200 (micro-units)" */
#ifndef TALLY_CLI_CLIENT_H
#define TALLY_CLI_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <time.h>

#include <jansson.h>

enum client_rc {
	CLIENT_OK = 0,
	CLIENT_UNREACHABLE,   /* transport failure or timeout: exit 2 */
	CLIENT_REFUSED,       /* an HTTP error status from the node: exit 1 */
	CLIENT_BADREPLY,      /* not the JSON the API promises: exit 2 */
};

#define CLIENT_TIMEOUT_S 30
#define CLIENT_ERR_MAX 512

struct client {
	char base[512];        /* without a trailing slash */
	long timeout_s;
	long status;           /* HTTP status of the last answer */
	char code[32];         /* the node's error code ("balance", "not_found") */
	char err[CLIENT_ERR_MAX];
	char cacert[4096];     /* PEM file of trusted CAs; empty: the system's */
	time_t retry_until;    /* no wait for a 429 past this (time(2)); 0: the timeout */
	/* A command that waits (lease create --wait, tx --wait, usage --follow)
	 * sets this: a read the node did not answer (down, restarting) is tried
	 * again every second until then (time(2)), saying so once; 0: not. */
	time_t reach_until;
	/* Set by a command that ends on a signal (usage --follow's Ctrl-C): once
	 * *cancel is non-zero a request in progress is abandoned and none is
	 * tried again. NULL: none. */
	volatile sig_atomic_t *cancel;
	void *curl;            /* CURL * */
};

/* The CA file every client made after this call trusts (--cacert,
 * $TALLY_CACERT); NULL or "" for the system's CAs. */
void client_set_cacert(const char *path);
/* base_url is http://HOST:PORT or https://HOST:PORT (a path is allowed);
 * -1 with c->err set for anything else. */
int client_init(struct client *c, const char *base_url);
void client_free(struct client *c);
/* GET path (starting with '/'); *out is the parsed JSON body. */
enum client_rc client_get(struct client *c, const char *path, json_t **out);
/* GET path; *out the raw body (malloc'd, NUL terminated). */
enum client_rc client_get_raw(struct client *c, const char *path, char **out, size_t *len);
/* GET path as a signed request (docs/PROTOCOL.md, "Private reads"),
 * signed by key (a struct tally_key *) for the chain whose genesis hash is
 * chain. */
enum client_rc client_get_signed(struct client *c, const char *path, const void *key,
				 const uint8_t chain[32], json_t **out);
/* POST a JSON body; *out (may be NULL) the parsed answer. */
enum client_rc client_post(struct client *c, const char *path, const json_t *body, json_t **out);

#endif
