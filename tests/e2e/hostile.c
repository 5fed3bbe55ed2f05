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
 *       fresh nonces; prints "status N" lines with counts.
 *   hostile liar PORT UPSTREAM RULE...
 *       a lying node: listens on 127.0.0.1:PORT and answers each GET by
 *       asking the node at 127.0.0.1:UPSTREAM and relaying its answer, with
 *       Connection: close (one connection at a time), changed by the RULEs
 *       (none: an honest relay). TARGET is the request's path and query as
 *       the client sent it:
 *         rewrite TARGET OTHER   a request for exactly TARGET is sent on as
 *                                OTHER (lease B's proof for lease A's)
 *         flip PREFIX HEX K      in answers to a target starting PREFIX, the
 *                                first HEX (lowercase) in the body has its
 *                                digit K (from 0) changed to another hex
 *                                digit: one byte of the object it encodes
 *         set PREFIX KEY N       in answers to a target starting PREFIX (a
 *                                JSON object), the integer KEY becomes N
 *       Says on stderr each lie it told, and each it could not (no HEX, no
 *       KEY in the answer). Non-GETs are refused (405); a client silent
 *       for 10 s or a node silent for 30 s ends that request; no request
 *       for 300 s ends the liar. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/chain/request.h"
#include "lib/json_u64.h"

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

/* --- liar ---------------------------------------------------------------- */

/* A node that lies: the real one's answers, changed by the rules. */
enum lie { LIE_REWRITE, LIE_FLIP, LIE_SET };

struct rule {
	enum lie kind;
	const char *path;     /* rewrite: the target asked; flip, set: its prefix */
	const char *arg;      /* rewrite: the target sent; flip: the hex; set: the key */
	size_t digit;         /* flip: which digit of the hex */
	uint64_t value;       /* set */
};

#define LIAR_RULES_MAX 16
#define LIAR_HEAD_MAX (64 * 1024)
#define LIAR_ANSWER_MAX ((size_t)64 << 20)
#define LIAR_IDLE_S 300

static int parse_rules(int argc, char **argv, struct rule *r, int *n)
{
	*n = 0;
	for (int i = 0; i < argc; (*n)++) {
		int need = !strcmp(argv[i], "rewrite") ? 3 : !strcmp(argv[i], "flip") ||
			   !strcmp(argv[i], "set") ? 4 : 0;
		char *end;

		if (!need || i + need > argc || *n == LIAR_RULES_MAX) {
			fprintf(stderr, "hostile liar: bad rule at '%s'\n", argv[i]);
			return -1;
		}
		r[*n] = (struct rule){ .path = argv[i + 1], .arg = argv[i + 2] };
		if (argv[i][0] == 'r') {
			r[*n].kind = LIE_REWRITE;
		} else if (argv[i][0] == 'f') {
			size_t len = strlen(argv[i + 2]);
			r[*n].kind = LIE_FLIP;
			r[*n].digit = strtoul(argv[i + 3], &end, 10);
			if (!len || strspn(argv[i + 2], "0123456789abcdef") != len || *end ||
			    r[*n].digit >= len) {
				fprintf(stderr, "hostile liar: flip needs lowercase hex and a digit"
					" index within it\n");
				return -1;
			}
		} else {
			r[*n].kind = LIE_SET;
			errno = 0;
			r[*n].value = strtoull(argv[i + 3], &end, 10);
			if (errno || *end || !isdigit((unsigned char)argv[i + 3][0])) {
				fprintf(stderr, "hostile liar: set needs a decimal u64\n");
				return -1;
			}
		}
		i += need;
	}
	return 0;
}

static int starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* Reads from fd until the peer closes, into a malloc'd, NUL-ended buffer;
 * at most LIAR_ANSWER_MAX bytes and 30 s of silence. NULL on failure. */
static char *read_all(int fd, size_t *len)
{
	size_t cap = 1 << 16;
	char *buf = malloc(cap);
	struct pollfd p = { .fd = fd, .events = POLLIN };

	*len = 0;
	while (buf) {
		if (cap - *len < 2) {
			char *more = cap < LIAR_ANSWER_MAX ? realloc(buf, cap * 2) : NULL;
			if (!more)
				break;
			buf = more;
			cap *= 2;
		}
		if (poll(&p, 1, 30000) <= 0)
			break;
		ssize_t r = recv(fd, buf + *len, cap - 1 - *len, 0);
		if (r < 0)
			break;
		if (r == 0) {
			buf[*len] = '\0';
			return buf;
		}
		*len += (size_t)r;
	}
	free(buf);
	return NULL;
}

/* The request head (up to the blank line) from the client, NUL-ended; 10 s
 * at most. -1 for a client that sent none. */
static int read_head(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (len < cap - 1) {
		if (poll(&p, 1, 10000) <= 0)
			return -1;
		ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
		if (r <= 0)
			return -1;
		len += (size_t)r;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return 0;
	}
	return -1;
}

/* The header line named name in a head (which ends with a blank line), or
 * NULL. */
static const char *find_header(const char *head, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n"))
		if (!strncasecmp(l + 2, name, n) && l[2 + n] == ':')
			return l + 2;
	return NULL;
}

/* Copies head's header lines (up to its blank line) to f but those named in
 * skip. */
static void copy_headers(FILE *f, const char *head, const char *const *skip)
{
	for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r';) {
		const char *next = strstr(l + 2, "\r\n");
		int keep = 1;
		for (size_t i = 0; skip[i] && keep; i++)
			keep = !(!strncasecmp(l + 2, skip[i], strlen(skip[i])) &&
				 l[2 + strlen(skip[i])] == ':');
		if (keep)
			fprintf(f, "%.*s\r\n", (int)(next - l - 2), l + 2);
		l = next;
	}
}

/* The liar's own refusal, in the node's error shape. */
static void liar_refuse(int fd, int status, const char *why)
{
	char body[256], ans[512];
	int b = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"code\":\"liar\"}", why);
	int n = snprintf(ans, sizeof(ans), "HTTP/1.1 %d Liar\r\nContent-Type: application/json\r\n"
			 "Content-Length: %d\r\nConnection: close\r\n\r\n%s", status, b, body);

	send_all(fd, ans, (size_t)n);
	fprintf(stderr, "liar: refused: %s\n", why);
}

/* The body after the rules for target: the same buffer, or a new one. */
static char *lie(const struct rule *r, int n, const char *target, char *body, size_t *len)
{
	for (int i = 0; i < n; i++) {
		if (r[i].kind == LIE_REWRITE || !starts_with(target, r[i].path))
			continue;
		if (r[i].kind == LIE_FLIP) {
			char *at = memmem(body, *len, r[i].arg, strlen(r[i].arg));
			if (!at) {
				fprintf(stderr, "liar: flip: %s: the hex is not in the answer\n",
					target);
				continue;
			}
			char *c = at + r[i].digit;   /* stays a hex digit, another one */
			*c = *c == '9' ? '8' : *c == 'f' ? 'e' : (char)(*c + 1);
			fprintf(stderr, "liar: flip: %s: digit %zu of the hex changed\n", target,
				r[i].digit);
			continue;
		}
		json_error_t e;
		json_t *j = json_loadb(body, *len, 0, &e);
		char *out;
		if (!json_is_object(j) || !json_is_integer(json_object_get(j, r[i].arg)) ||
		    json_object_set_new(j, r[i].arg, json_u64(r[i].value)) ||
		    !(out = json_dumps(j, JSON_COMPACT))) {
			fprintf(stderr, "liar: set: %s: no number \"%s\" in the answer\n", target,
				r[i].arg);
			json_decref(j);
			continue;
		}
		json_decref(j);
		free(body);
		body = out;
		*len = strlen(out);
		fprintf(stderr, "liar: set: %s: \"%s\" is now %llu\n", target, r[i].arg,
			(unsigned long long)r[i].value);
	}
	return body;
}

/* The node's answer to the request head for target (sent as sent),
 * malloc'd in *ans; NULL if none came. */
static char *forward(int upstream, const char *head, const char *sent, size_t *len)
{
	static const char *const skip[] = { "Host", "Connection", "Keep-Alive", NULL };
	char *req = NULL, *ans = NULL;
	size_t req_len;
	FILE *f = open_memstream(&req, &req_len);
	int up;

	/* Connection: close, so the answer ends where the node closes. */
	fprintf(f, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n", sent,
		upstream);
	copy_headers(f, head, skip);
	fputs("\r\n", f);
	fclose(f);
	up = dial(upstream, NULL);
	if (up >= 0 && !send_all(up, req, req_len))
		ans = read_all(up, len);
	if (up >= 0)
		close(up);
	free(req);
	return ans;
}

/* One request from the client, answered with Connection: close. */
static void liar_serve(int fd, int upstream, const struct rule *r, int n)
{
	static const char *const skip[] = { "Content-Length", "Connection", "Keep-Alive",
					    "Transfer-Encoding", NULL };
	static char head[LIAR_HEAD_MAX];
	char method[16], target[4096], version[16], *ans, *body, *out = NULL, *end;
	const char *sent;
	size_t ans_len, body_len, out_len;
	FILE *f;

	if (read_head(fd, head, sizeof(head)))
		return;
	if (sscanf(head, "%15s %4095s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7)) {
		liar_refuse(fd, 400, "not an HTTP/1.x request line");
		return;
	}
	if (strcmp(method, "GET") || find_header(head, "Content-Length") ||
	    find_header(head, "Transfer-Encoding")) {
		liar_refuse(fd, 405, "the liar forwards GETs without a body only");
		return;
	}
	sent = target;
	for (int i = 0; i < n; i++)
		if (r[i].kind == LIE_REWRITE && !strcmp(target, r[i].path)) {
			sent = r[i].arg;
			fprintf(stderr, "liar: rewrite: %s sent as %s\n", target, sent);
		}
	ans = forward(upstream, head, sent, &ans_len);
	if (!ans) {
		liar_refuse(fd, 502, "no answer from the node");
		return;
	}
	/* The node frames its answers with Content-Length; a chunked one
	 * would need decoding, which the liar does not do. */
	end = strstr(ans, "\r\n\r\n");
	if (!end || status_of(ans) < 100 || find_header(ans, "Transfer-Encoding")) {
		liar_refuse(fd, 502, "an answer from the node the liar cannot relay");
		free(ans);
		return;
	}
	body_len = ans_len - (size_t)(end + 4 - ans);
	body = malloc(body_len + 1);
	if (body) {
		memcpy(body, end + 4, body_len + 1);
		body = lie(r, n, target, body, &body_len);
		f = open_memstream(&out, &out_len);
		fprintf(f, "%.*s\r\n", (int)strcspn(ans, "\r"), ans);
		copy_headers(f, ans, skip);
		fprintf(f, "Content-Length: %zu\r\nConnection: close\r\n\r\n", body_len);
		fwrite(body, 1, body_len, f);
		fclose(f);
		send_all(fd, out, out_len);
	}
	free(out);
	free(body);
	free(ans);
}

static int liar(int port, int upstream, int argc, char **argv)
{
	struct rule rules[LIAR_RULES_MAX];
	struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int n, one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (parse_rules(argc, argv, rules, &n))
		return 2;
	inet_pton(AF_INET, "127.0.0.1", &at.sin_addr);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&at, sizeof(at)) || listen(ls, 16)) {
		fprintf(stderr, "hostile liar: cannot listen on 127.0.0.1:%d: %s\n", port,
			strerror(errno));
		return 2;
	}
	for (;;) {
		struct pollfd p = { .fd = ls, .events = POLLIN };
		if (poll(&p, 1, LIAR_IDLE_S * 1000) == 0) {
			fprintf(stderr, "liar: no request for %d s: exiting\n", LIAR_IDLE_S);
			return 0;
		}
		int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		liar_serve(fd, upstream, rules, n);
		close(fd);
	}
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
	if (argc >= 4 && !strcmp(argv[1], "liar"))
		return liar(atoi(argv[2]), atoi(argv[3]), argc - 4, argv + 4);
	fprintf(stderr, "usage: see the comment at the top of tests/e2e/hostile.c\n");
	return 2;
}
