/* hostile: a client that behaves badly on purpose, for the API tests. It
 * speaks raw HTTP/1.1 over TCP from a chosen loopback source address, so a
 * test can play several clients on one machine.
 *
 *   hostile fuzz PORT COUNT SEED
 *       COUNT requests with random bytes in method, path, query and headers
 *       (and sometimes a body). Fails (exit 1) on any 5xx, on an error body
 *       from the node that is not JSON with "error" and "code", or on a
 *       connection the node dropped without an answer. A failing SEED
 *       replays exactly.
 *   hostile raw PORT
 *       sends stdin as one request; prints the status code, then the body.
 *   hostile slow PORT SRC N SECONDS
 *       opens N connections from SRC and trickles a request's header one byte
 *       a second on each, for SECONDS; prints "open K" each second (how many
 *       the node keeps) and "closed_by_node M" at the end.
 *   hostile idle PORT SRC N LIMIT
 *       opens N connections from SRC that send nothing; prints the seconds
 *       until the node closed the last one ("closed after S s"), or "open"
 *       after LIMIT seconds.
 *   hostile burst PORT SRC COUNT PATH
 *       COUNT GET PATH requests from SRC, one connection each, as fast as
 *       they go; prints "status N COUNT" lines, then the first answer that
 *       was a refusal, each line starting "> ".
 *   hostile signed PORT KEY.pem GENESIS-HASH COUNT PATH
 *       COUNT signed GETs of PATH (docs/PROTOCOL.md, private reads) with
 *       fresh nonces; prints "status N" lines with counts. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/chain/request.h"

#define ANSWER_MAX (1 << 20)

static int dial(int port, const char *src)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	if (fd < 0)
		return -1;
	if (src) {
		struct sockaddr_in from = { .sin_family = AF_INET };
		inet_pton(AF_INET, src, &from.sin_addr);
		if (bind(fd, (struct sockaddr *)&from, sizeof(from))) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (struct sockaddr *)&to, sizeof(to))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads until the node closes (requests say Connection: close); at most
 * 30 s, so a node that hangs fails the test instead of stalling it. */
static ssize_t read_answer(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (len < cap - 1) {
		if (poll(&p, 1, 30000) <= 0)
			return -1;
		ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
		if (r < 0 && errno == ECONNRESET)
			break;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

static int status_of(const char *answer)
{
	int major, minor, status;

	if (sscanf(answer, "HTTP/%d.%d %d", &major, &minor, &status) != 3)
		return -1;
	return status;
}

static const char *body_of(const char *answer)
{
	const char *b = strstr(answer, "\r\n\r\n");

	return b ? b + 4 : NULL;
}

/* One request: the status, with the answer in buf. -1: no answer. */
static int exchange(int port, const char *src, const char *req, size_t n, char *buf, size_t cap)
{
	int fd = dial(port, src);

	if (fd < 0)
		return -1;
	int status = -1;
	if (send_all(fd, req, n) == 0 && read_answer(fd, buf, cap) > 0)
		status = status_of(buf);
	close(fd);
	return status;
}

/* --- fuzz ---------------------------------------------------------------- */

static const char *const pieces[] = {
	"/", "/v1", "/v1/", "v1", "status", "accounts", "leases", "blocks", "tx", "proofs",
	"inclusion", "consistency", "usage", "private", "genesis", "validators", "node", "vms",
	"healthz", "metrics", "..", ".", "%2e%2e", "%2f", "%00", "%ff", "%c0%af", "%e2%82%ac",
	"\xe2\x82\xac", "\xff", "\xc3", "<x>", "'", "\"", ";rm -rf", "$(id)", "`id`", "\\",
	"0", "-1", "18446744073709551616", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};
static const char *const methods[] = {
	"GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE",
	"CONNECT", "get", "FOO", "G\xffT",
};
static const char *const header_names[] = {
	"X-Tally-Key", "X-Tally-Timestamp", "X-Tally-Nonce", "X-Tally-Signature",
	"Content-Type", "Accept", "Host", "User-Agent", "X-Junk", "Range", "Cookie",
	/* Content-Length, Transfer-Encoding and Expect change how much the node
	 * waits for: the raw tests try them one by one. */
};

static unsigned rnd(unsigned n)
{
	return (unsigned)random() % n;
}

/* A random byte for a place; raw is allowed to break the syntax. */
static void put_random(FILE *f, int raw)
{
	int c = (int)rnd(256);

	if (raw && c != '\r' && c != '\n' && c != ' ' && c != 0)
		fputc(c, f);
	else
		fprintf(f, "%%%02x", c);
}

static const char *const routes[] = {
	"/healthz", "/metrics", "/v1/status", "/v1/genesis", "/v1/leases", "/v1/blocks",
	"/v1/blocks/1", "/v1/validators", "/v1/proofs/inclusion", "/v1/proofs/consistency",
	"/v1/node/vms", "/v1/tx",
	"/v1/accounts/0000000000000000000000000000000000000000000000000000000000000000",
	"/v1/leases/0000000000000000000000000000000000000000000000000000000000000000/private",
	"/v1/leases/0000000000000000000000000000000000000000000000000000000000000000/proof",
};

static void random_path(FILE *f)
{
	unsigned n = 1 + rnd(8);

	if (rnd(3) == 0) {   /* a real route, so the handlers see the junk too */
		fputs(routes[rnd(sizeof(routes) / sizeof(routes[0]))], f);
		n = rnd(4) ? 0 : 1;
	}
	for (unsigned i = 0; i < n; i++) {
		fputc('/', f);
		if (rnd(3))
			fputs(pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))], f);
		unsigned k = rnd(4) ? rnd(4) : rnd(300);
		for (unsigned j = 0; j < k; j++)
			put_random(f, rnd(4) == 0);
	}
	if (rnd(2)) {
		unsigned args = rnd(6);
		fputc('?', f);
		for (unsigned i = 0; i < args; i++) {
			static const char *const keys[] = { "from", "to", "height", "index", "size",
							    "old", "new", "tenant", "provider",
							    "state" };
			fputs(rnd(2) ? keys[rnd(10)] : "x", f);
			if (rnd(4))
				fputc('=', f);
			unsigned k = rnd(20);
			for (unsigned j = 0; j < k; j++)
				put_random(f, rnd(3) == 0);
			fputc('&', f);
		}
	}
}

static void random_header(FILE *f)
{
	if (rnd(4)) {
		fputs(header_names[rnd(sizeof(header_names) / sizeof(header_names[0]))], f);
	} else {
		unsigned k = 1 + rnd(12);
		for (unsigned j = 0; j < k; j++) {
			int c = 0x21 + (int)rnd(0xdf);
			fputc(c == ':' || c == 0x7f ? 'x' : c, f);
		}
	}
	fputs(": ", f);
	unsigned k = rnd(5) ? rnd(70) : rnd(3000);
	for (unsigned j = 0; j < k; j++) {
		int c = (int)rnd(256);
		fputc(c == '\r' || c == '\n' || c == 0 ? ' ' : c, f);
	}
	fputs("\r\n", f);
}

static char *random_request(size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	const char *method = methods[rnd(sizeof(methods) / sizeof(methods[0]))];

	fprintf(f, "%s ", method);
	random_path(f);
	fputs(rnd(20) ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n", f);
	fputs("Host: 127.0.0.1\r\nConnection: close\r\n", f);
	unsigned h = rnd(8);
	for (unsigned i = 0; i < h; i++)
		random_header(f);
	if (!strcmp(method, "POST") && rnd(2)) {
		unsigned n = rnd(200);
		fprintf(f, "Content-Length: %u\r\n\r\n", n);
		for (unsigned i = 0; i < n; i++)
			fputc((int)rnd(256), f);
	} else {
		fputs("\r\n", f);
	}
	fclose(f);
	return buf;
}

/* The node's own error bodies are JSON {"error": "...", "code": "..."}. The
 * HTTP library answers a few protocol errors (a request line it cannot
 * parse) itself, with its own text/html body: those are counted apart. */
static int error_body_ok(const char *answer, int *library)
{
	const char *body = body_of(answer);
	const char *ct = strcasestr(answer, "\r\nContent-Type: application/json");

	*library = 0;
	if (!body || !ct || ct > body) {
		*library = 1;
		return 1;
	}
	if (!*body)
		return 1;   /* HEAD: headers only */
	json_error_t e;
	json_t *j = json_loads(body, 0, &e);
	int ok = j && json_is_string(json_object_get(j, "error")) &&
		 json_string_length(json_object_get(j, "error")) > 0 &&
		 json_is_string(json_object_get(j, "code"));
	json_decref(j);
	return ok;
}

static int fuzz(int port, unsigned count, unsigned seed)
{
	static char answer[ANSWER_MAX];
	unsigned by_class[6] = { 0 }, library = 0, bad = 0;

	srandom(seed);
	for (unsigned i = 0; i < count; i++) {
		size_t len;
		char *req = random_request(&len);
		int status = exchange(port, NULL, req, len, answer, sizeof(answer));
		int lib = 0;
		if (status < 100 || status >= 500 ||
		    (status >= 400 && !error_body_ok(answer, &lib))) {
			bad++;
			fprintf(stderr, "seed %u request %u: status %d for:\n", seed, i, status);
			fwrite(req, 1, len < 600 ? len : 600, stderr);
			fprintf(stderr, "\n--- answer:\n%.600s\n", status < 0 ? "(none)" : answer);
		}
		library += (unsigned)lib;
		by_class[status >= 100 && status < 600 ? status / 100 : 0]++;
		free(req);
	}
	printf("fuzz seed %u: %u requests: 2xx %u, 3xx %u, 4xx %u (%u from the HTTP library), "
	       "5xx %u, no answer %u, bad %u\n", seed, count, by_class[2], by_class[3],
	       by_class[4], library, by_class[5], by_class[0], bad);
	return bad ? 1 : 0;
}

/* --- the others ---------------------------------------------------------- */

static int raw(int port)
{
	static char req[1 << 20], answer[ANSWER_MAX];
	size_t n = fread(req, 1, sizeof(req), stdin);
	int status = exchange(port, NULL, req, n, answer, sizeof(answer));
	const char *body = status > 0 ? body_of(answer) : NULL;

	printf("%d\n%s\n", status, body ? body : "");
	return status > 0 ? 0 : 1;
}

static int still_open(int fd)
{
	char c;
	ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
		return 0;
	return 1;   /* nothing yet, or an early answer not read */
}

static int slow(int port, const char *src, int n, int seconds)
{
	static const char head[] = "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ";
	int fds[1024], closed = 0;

	if (n > 1024)
		n = 1024;
	for (int i = 0; i < n; i++) {
		fds[i] = dial(port, src);
		if (fds[i] >= 0 && send_all(fds[i], head, sizeof(head) - 1))
			fds[i] = (close(fds[i]), -1);
	}
	for (int s = 0; s < seconds; s++) {
		int open = 0;

		sleep(1);   /* the node decides on a connection right after accepting it */
		for (int i = 0; i < n; i++) {
			if (fds[i] < 0)
				continue;
			if (!still_open(fds[i]) || send_all(fds[i], "a", 1)) {
				close(fds[i]);
				fds[i] = -1;
				closed++;
				continue;
			}
			open++;
		}
		printf("open %d\n", open);
		fflush(stdout);
	}
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	printf("closed_by_node %d\n", closed);
	return 0;
}

static int idle(int port, const char *src, int n, int limit)
{
	int fds[1024], left = 0;
	struct timespec t0, t;

	if (n > 1024)
		n = 1024;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		fds[i] = dial(port, src);
		left += fds[i] >= 0;
	}
	for (;;) {
		for (int i = 0; i < n; i++) {
			if (fds[i] >= 0 && !still_open(fds[i])) {
				close(fds[i]);
				fds[i] = -1;
				left--;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (!left) {
			printf("closed after %ld s\n", (long)(t.tv_sec - t0.tv_sec));
			return 0;
		}
		if (t.tv_sec - t0.tv_sec >= limit) {
			printf("open %d\n", left);
			for (int i = 0; i < n; i++)
				if (fds[i] >= 0)
					close(fds[i]);
			return 0;
		}
		usleep(200000);
	}
}

static void print_counts(const unsigned *counts)
{
	for (int s = 0; s < 600; s++)
		if (counts[s])
			printf("status %d %u\n", s, counts[s]);
}

static int burst(int port, const char *src, unsigned count, const char *path)
{
	static char answer[ANSWER_MAX];
	static unsigned counts[600];
	char req[2048];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			 "Connection: close\r\n\r\n", path);

	static char first_refusal[8192];

	for (unsigned i = 0; i < count; i++) {
		int s = exchange(port, src, req, (size_t)n, answer, sizeof(answer));
		counts[s > 0 && s < 600 ? s : 0]++;
		if (s >= 400 && !first_refusal[0])
			snprintf(first_refusal, sizeof(first_refusal), "%.8000s", answer);
	}
	print_counts(counts);
	/* The first refusal, whole, each line quoted with "> ". */
	for (char *line = strtok(first_refusal, "\n"); line; line = strtok(NULL, "\n"))
		printf("> %s\n", line);
	return 0;
}

static int signed_reads(int port, const char *key_path, const char *chain_hex, unsigned count,
			const char *path)
{
	uint8_t chain[HASH_LEN];
	static char answer[ANSWER_MAX];
	static unsigned counts[600];
	struct tally_key k;
	char msg[2048], req[4096], ts[32], nonce[33], pub[65], sig_hex[2 * SIG_LEN + 1];
	uint8_t sig[SIG_LEN], raw_nonce[16];

	if (hex_decode(chain_hex, chain, HASH_LEN)) {
		fprintf(stderr, "hostile: %s is not a 64-hex genesis hash\n", chain_hex);
		return 2;
	}
	if (key_load_pem(&k, key_path)) {
		fprintf(stderr, "hostile: cannot load %s\n", key_path);
		return 2;
	}
	hex_encode(k.pub, PUBKEY_LEN, pub);
	for (unsigned i = 0; i < count; i++) {
		for (size_t j = 0; j < sizeof(raw_nonce); j++)
			raw_nonce[j] = (uint8_t)random();
		memcpy(raw_nonce, &i, sizeof(i));
		hex_encode(raw_nonce, sizeof(raw_nonce), nonce);
		snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
		if (request_message(msg, sizeof(msg), "GET", path, ts, nonce) ||
		    sig_sign(&k, SIG_REQUEST, chain, msg, strlen(msg), sig))
			return 2;
		hex_encode(sig, SIG_LEN, sig_hex);
		int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				 "Connection: close\r\nX-Tally-Key: %s\r\nX-Tally-Timestamp: %s\r\n"
				 "X-Tally-Nonce: %s\r\nX-Tally-Signature: %s\r\n\r\n", path, pub, ts,
				 nonce, sig_hex);
		int s = exchange(port, NULL, req, (size_t)n, answer, sizeof(answer));
		counts[s > 0 && s < 600 ? s : 0]++;
	}
	key_free(&k);
	print_counts(counts);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "fuzz"))
		return fuzz(atoi(argv[2]), (unsigned)atoi(argv[3]), (unsigned)strtoul(argv[4], NULL, 10));
	if (argc == 3 && !strcmp(argv[1], "raw"))
		return raw(atoi(argv[2]));
	if (argc == 6 && !strcmp(argv[1], "slow"))
		return slow(atoi(argv[2]), argv[3], atoi(argv[4]), atoi(argv[5]));
	if (argc == 6 && !strcmp(argv[1], "idle"))
		return idle(atoi(argv[2]), argv[3], atoi(argv[4]), atoi(argv[5]));
	if (argc == 6 && !strcmp(argv[1], "burst"))
		return burst(atoi(argv[2]), argv[3], (unsigned)atoi(argv[4]), argv[5]);
	if (argc == 7 && !strcmp(argv[1], "signed"))
		return signed_reads(atoi(argv[2]), argv[3], argv[4], (unsigned)atoi(argv[5]),
				    argv[6]);
	fprintf(stderr, "usage: see the comment at the top of tests/e2e/hostile.c\n");
	return 2;
}
