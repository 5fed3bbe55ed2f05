/* The node's HTTP API as a client reaches it: raw bytes on a connection,
 * parsed by libmicrohttpd and handled by daemon/api/ (request line, path
 * splitting, route matching, query arguments, headers, body, every route's
 * handler) over a real ledger holding the fixed chain of
 * tests/support/fixchain.h. The connection is one end of a socketpair
 * handed to a server with no listening socket, so nothing listens on the
 * network.
 *
 * Property: whatever the bytes, the node answers no 5xx (those are the
 * node's own faults: http_server_faults() stays 0) and never hangs. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/clock.h"
#include "daemon/log.h"
#include "daemon/node.h"
#include "lib/errors.h"
#include "tests/fuzz/fuzz.h"
#include "tests/support/fixchain.h"

/* An answer slower than this is a hang. */
#define HTTP_FUZZ_TIMEOUT_MS 10000

static struct node n;
static struct fixchain fx;
static int echo;              /* FUZZ_HTTP_ECHO=1: answers on stderr */

static void die(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_http: %s: %s\n", what, why);
	abort();
}

static void node_up(void)
{
	char why[WHY_MAX] = "", dir[4200];

	node_clock_start();
	log_setup(LOG_LVL_WARN, 0);
	fixchain_build(&fx);
	config_defaults(&n.cfg);
	n.cfg.api.requests_per_s = 0;         /* one client sends everything */
	n.cfg.api.max_connections_per_ip = n.cfg.api.max_connections;
	if (genesis_parse(&n.genesis, fx.c.genesis_json, why))
		die("genesis", why);
	genesis_hash(&n.genesis, n.genesis_hash);
	memcpy(n.key.pub, fx.c.key[CB_VALIDATOR].pub, PUBKEY_LEN);
	n.api = (struct api){
		.cfg = &n.cfg,
		.genesis = &n.genesis,
		.genesis_hash = n.genesis_hash,
		.node_pub = n.key.pub,
	};
	auth_cache_init(&n.api.auth);
	snprintf(dir, sizeof(dir), "%s/data", fuzz_scratch_dir());
	struct ledger_config lc = { .data_dir = dir, .genesis = &n.genesis };
	if (ledger_open(&n.ledger, &lc, why))
		die("ledger", why);
	for (size_t i = 0; i < fx.c.nblocks; i++) {
		struct enc b, c;

		fixchain_encode_block(&fx, i, &b, &c);
		if (ledger_apply_block(n.ledger, b.buf, b.len, c.buf, c.len, why))
			die("block", why);
		enc_free(&b);
		enc_free(&c);
	}
	n.api.ledger = n.ledger;
	if (http_server_start(&n.api.http, NULL, &n.cfg.api, api_routes, api_nroutes, &n.api, why))
		die("API", why);
}

static void node_down(void)
{
	http_server_stop(n.api.http);
	ledger_close(n.ledger);
	auth_cache_free(&n.api.auth);
	genesis_free(&n.genesis);
	fixchain_free(&fx);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	echo = getenv("FUZZ_HTTP_ECHO") != NULL;
	node_up();
	atexit(node_down);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
	char buf[65536];
	int sv[2];

	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	if (http_server_add_connection(n.api.http, sv[1], (struct sockaddr *)&peer, sizeof(peer)))
		die("connection", strerror(errno));
	/* The server may answer and close before it read everything (a request
	 * too large): a short write is then fine. */
	for (size_t off = 0; off < size;) {
		ssize_t w = write(sv[0], data + off, size - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(sv[0], SHUT_WR);
	for (;;) {
		struct pollfd p = { .fd = sv[0], .events = POLLIN };
		int r = poll(&p, 1, HTTP_FUZZ_TIMEOUT_MS);

		fuzz_require(r > 0, "no answer and no close within %d ms", HTTP_FUZZ_TIMEOUT_MS);
		ssize_t r2 = read(sv[0], buf, sizeof(buf));
		if (r2 <= 0)
			break;
		if (echo)
			fwrite(buf, 1, (size_t)r2, stderr);
	}
	close(sv[0]);
	fuzz_require(http_server_faults(n.api.http) == 0, "the node answered 5xx to a client's bytes");
	return 0;
}
