/* peer_hostile: a peer that breaks the peer protocol on purpose, for
 * tests/net/. It speaks TLS 1.3 with its own Ed25519 key over blocking
 * sockets (no libevent: it must not share the node's code paths beyond the
 * message encodings), from a chosen loopback source address, so a node's
 * per-address limits see it apart from honest peers.
 *
 *   peer_hostile garbage PORT SRC
 *       random bytes instead of a TLS handshake.
 *   peer_hostile unknown PORT SRC GENESIS
 *       a fresh key the node does not know.
 *   peer_hostile MODE PORT SRC GENESIS KEY.pem [N]
 *       with a key the node accepts, after TLS:
 *       wrong-genesis   a HELLO of another chain
 *       oversized       a correct HELLO, then a frame head announcing 64 MiB
 *       garbage-frame   a correct HELLO, then a TXS frame of random bytes
 *       flood           a correct HELLO, then N PINGs as fast as they go
 *       bad-block       a HELLO announcing a tip 5 above the node's; answers
 *                       the node's GET_BLOCKS with a well-formed block that
 *                       does not verify (wrong links, no signatures)
 *       hello           a correct HELLO only (is the key accepted now?)
 *       txs             a correct HELLO, then one TXS frame of the signed
 *                       transactions given in hex as arguments 6 and on
 *       forged-vote     a correct HELLO, then a precommit for the node's next
 *                       height naming validator key VKEY (the 64 hex of
 *                       argument 6) with a signature that does not verify
 *   peer_hostile equivocate PORT SRC GENESIS KEY.pem VALIDATOR.pem HEIGHT ROUND
 *       a byzantine validator: after a correct HELLO, two precommits for
 *       HEIGHT and ROUND for two different (made-up) blocks, both signed
 *       with VALIDATOR.pem's key, as that validator would if it
 *       equivocated; prints "open K1 K2" with the two block ids' first 8
 *       bytes in hex (or "closed")
 *   peer_hostile evidence-tx CHAIN_ID GENESIS SIGNER.pem VALIDATOR.pem HEIGHT ROUND NONCE
 *       no connection: prints (hex) an EVIDENCE transaction signed by
 *       SIGNER.pem with NONCE, of two precommits of VALIDATOR.pem's key for
 *       HEIGHT and ROUND and two made-up blocks (another pair of votes for
 *       the offence equivocate commits), for POST /v1/tx
 *   peer_hostile deaf PORT SRC GENESIS KEY.pem SECONDS
 *       a correct HELLO with a tiny receive buffer, then never a read: a
 *       PING every 2 s (so the node does not find it silent) for up to
 *       SECONDS; prints "closed after S" when the node closed the
 *       connection S seconds after HELLO, else "open after S"
 *   peer_hostile txs-listen PORT SRC GENESIS KEY.pem SECONDS [TXHEX ...]
 *       a correct HELLO, one TXS frame of the transactions given (if any),
 *       then for SECONDS it reads what the node sends and never relays
 *       anything (a PING every 2 s, so the node does not find it silent);
 *       prints a line per distinct transaction it was sent: "HASH TIMES
 *       FIRST LAST" (seconds after HELLO), then "closed" or "open"
 *   peer_hostile txs-flood PORT SRC GENESIS KEY.pem CHAIN_ID SIGNER.pem SECONDS
 *       a correct HELLO, then for SECONDS, up to 800 TXS frames a second (below
 *       the node's message rate) of 256 transfers each, signed by
 *       SIGNER.pem with nonces a million ahead: valid transactions the
 *       node refuses only once it checked them, so they cost the sender
 *       nothing and come back; prints "open after K" or "closed after K"
 *       (K frames sent)
 *       consensus       a correct HELLO, then a vote twice and a proposal
 *                       with a small block, for a height far ahead
 *                       (unsigned: a node behind would take them to be
 *                       news of its peers' heights; only the transport's
 *                       decoding is the point)
 *
 * Prints one line: "closed" when the node closed the connection (a TLS
 * refusal counts: "refused" when the handshake failed), "open" when it
 * was still open after 5 s; modes that send many messages add how many went
 * out ("closed after K"). Exit 0 whatever the node did: the test judges. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "daemon/net/tlsid.h"
#include "daemon/net/wire.h"
#include "lib/chain/block.h"
#include "lib/chain/evidence.h"
#include "lib/chain/tx.h"
#include "lib/codec.h"
#include "lib/crypto.h"

static int rcvbuf;   /* deaf: SO_RCVBUF before connecting (0: the default) */

static int dial(int port, const char *src)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct sockaddr_in from = { .sin_family = AF_INET };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	inet_pton(AF_INET, src, &from.sin_addr);
	if (fd >= 0 && rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof(from)) ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to))) {
		perror("peer_hostile: connect");
		exit(2);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* As tallyd's own peer connections: with Nagle's algorithm a second
	 * small frame (equivocate's second vote) would wait for the node's
	 * delayed ACK, tens of milliseconds, and reach it after the rest of
	 * the network had moved on. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int accept_any(int ok, X509_STORE_CTX *st)
{
	(void)ok;
	(void)st;
	return 1;
}

/* TLS as a client with key k; NULL when the node refused the handshake. */
static SSL *tls(int fd, const struct tally_key *k)
{
	char why[256] = "";
	SSL_CTX *ctx;

	if (tlsid_ctx_new(&ctx, k, accept_any, why)) {
		fprintf(stderr, "peer_hostile: %s\n", why);
		exit(2);
	}
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	/* TLS 1.3: the server judges the client's certificate after the
	 * client's handshake ends; a refusal arrives as an alert on the first
	 * read. */
	return ssl;
}

static void send_msg(SSL *ssl, const struct wire_msg *m)
{
	struct enc e;

	enc_init(&e);
	wire_encode(&e, m);
	if (e.len)
		SSL_write(ssl, e.buf, (int)e.len);
	enc_free(&e);
}

/* One consensus message in the engine's encoding, in a CONSENSUS frame. */
static void send_consensus(SSL *ssl, const struct cs_msg *cm)
{
	struct wire_msg m = { .type = WIRE_CONSENSUS };
	struct enc e;

	enc_init(&e);
	cs_msg_encode(&e, cm);
	m.u.consensus.bytes = e.buf;
	m.u.consensus.len = e.len;
	send_msg(ssl, &m);
	enc_free(&e);
}

/* Reads one frame; 0, or -1 when the connection closed or timed out
 * (*closed says which). */
static int read_msg(SSL *ssl, struct wire_msg *m, uint8_t **body, int *closed)
{
	uint8_t head[WIRE_HEAD_LEN], type;
	size_t len, got = 0;

	*closed = 0;
	while (got < WIRE_HEAD_LEN) {
		int r = SSL_read(ssl, head + got, (int)(WIRE_HEAD_LEN - got));
		if (r <= 0) {
			/* A receive timeout (SO_RCVTIMEO) is a retry to OpenSSL. */
			int e = SSL_get_error(ssl, r);
			*closed = !(e == SSL_ERROR_WANT_READ ||
				    (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)));
			return -1;
		}
		got += (size_t)r;
	}
	if (wire_head(head, &type, &len))
		return -1;
	free(*body);
	*body = malloc(len + 1);
	for (got = 0; got < len;) {
		int r = SSL_read(ssl, *body + got, (int)(len - got));
		if (r <= 0) {
			*closed = 1;
			return -1;
		}
		got += (size_t)r;
	}
	return wire_decode(type, *body, len, m) ? -1 : 0;
}

/* Waits 5 s for the node to close; "closed" or "open". */
static const char *outcome(SSL *ssl)
{
	struct wire_msg m;
	uint8_t *body = NULL;
	int closed = 0;
	time_t end = time(NULL) + 5;

	/* Messages the node sends meanwhile (STATUS, PING, consensus) are read
	 * past: it may send some every second. */
	while (time(NULL) < end) {
		memset(&m, 0, sizeof(m));
		if (read_msg(ssl, &m, &body, &closed) == 0)
			continue;
		if (closed)
			break;
	}
	free(body);
	return closed ? "closed" : "open";
}

static void hello(SSL *ssl, const struct tally_key *k, const uint8_t genesis[HASH_LEN],
		  uint64_t height)
{
	struct wire_msg m = { .type = WIRE_HELLO };

	m.u.hello.version = WIRE_VERSION;
	memcpy(m.u.hello.genesis_hash, genesis, HASH_LEN);
	snprintf(m.u.hello.chain_id, sizeof(m.u.hello.chain_id), "hostile");
	memcpy(m.u.hello.node_key, k->pub, PUBKEY_LEN);
	m.u.hello.height = height;
	send_msg(ssl, &m);
}

/* A block at height h that decodes but verifies against nothing. */
static void bad_block(SSL *ssl, uint64_t h)
{
	struct block b;
	struct commit_cert c;
	struct enc eb, ec;
	struct wire_msg m = { .type = WIRE_BLOCK };

	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	b.header.version = BLOCK_VERSION;
	snprintf(b.header.chain_id, sizeof(b.header.chain_id), "hostile");
	b.header.height = h;
	b.header.time_ns = 1;
	memset(b.header.prev_block_id, 0xab, HASH_LEN);
	c.height = h;
	block_id(&b.header, c.block_id);
	enc_init(&eb);
	enc_init(&ec);
	block_encode(&eb, &b);
	cert_encode(&ec, &c);
	m.u.block.height = h;
	m.u.block.block = eb.buf;
	m.u.block.block_len = eb.len;
	m.u.block.cert = ec.buf;
	m.u.block.cert_len = ec.len;
	send_msg(ssl, &m);
	enc_free(&eb);
	enc_free(&ec);
}

static void usage(void)
{
	fprintf(stderr, "usage: peer_hostile garbage PORT SRC | unknown PORT SRC GENESIS |\n"
			"       peer_hostile MODE PORT SRC GENESIS KEY.pem [N | VKEY]\n"
			"       peer_hostile equivocate PORT SRC GENESIS KEY.pem VALIDATOR.pem HEIGHT"
			" ROUND\n"
			"       peer_hostile evidence-tx CHAIN_ID GENESIS SIGNER.pem VALIDATOR.pem HEIGHT"
			" ROUND NONCE\n");
	exit(2);
}

static int evidence_tx(int argc, char **argv)
{
	struct tally_key signer, val;
	struct signed_vote a, b;
	uint8_t genesis[HASH_LEN];
	struct tx t;
	struct enc e;
	char *hex;

	if (argc < 9 || hex_decode(argv[3], genesis, HASH_LEN) || key_load_pem(&signer, argv[4]) ||
	    key_load_pem(&val, argv[5]))
		usage();
	memset(&a, 0, sizeof(a));
	a.v.type = VOTE_PRECOMMIT;
	a.v.height = strtoull(argv[6], NULL, 10);
	a.v.round = (uint32_t)strtoul(argv[7], NULL, 10);
	memcpy(a.validator, val.pub, PUBKEY_LEN);
	b = a;
	memset(a.v.block_id, 0x01, HASH_LEN);
	memset(b.v.block_id, 0x02, HASH_LEN);
	memset(&t, 0, sizeof(t));
	t.version = TX_VERSION;
	t.kind = TX_EVIDENCE;
	snprintf(t.chain_id, sizeof(t.chain_id), "%s", argv[2]);
	memcpy(t.signer, signer.pub, PUBKEY_LEN);
	t.nonce = strtoull(argv[8], NULL, 10);
	if (vote_sign(&a.v, &val, genesis, a.sig) || vote_sign(&b.v, &val, genesis, b.sig) ||
	    evidence_make(&t.u.evidence, &a, &b) || tx_sign(&t, &signer, genesis)) {
		fprintf(stderr, "peer_hostile: cannot make the evidence\n");
		exit(2);
	}
	enc_init(&e);
	tx_encode(&e, &t);
	hex = malloc(2 * e.len + 1);
	if (enc_error(&e) || !hex)
		exit(2);
	hex_encode(e.buf, e.len, hex);
	puts(hex);
	free(hex);
	enc_free(&e);
	key_free(&signer);
	key_free(&val);
	return 0;
}

/* txs-listen (see the top): what the node sends it, by transaction. */
struct heard {
	uint8_t hash[HASH_LEN];
	long times;
	double first, last;
};

static void heard_add(struct heard **h, size_t *n, const uint8_t hash[HASH_LEN], double at)
{
	for (size_t i = 0; i < *n; i++) {
		if (!memcmp((*h)[i].hash, hash, HASH_LEN)) {
			(*h)[i].times++;
			(*h)[i].last = at;
			return;
		}
	}
	if (!(*h = realloc(*h, (*n + 1) * sizeof(**h))))
		exit(2);
	memcpy((*h)[*n].hash, hash, HASH_LEN);
	(*h)[*n].times = 1;
	(*h)[*n].first = (*h)[*n].last = at;
	(*n)++;
}

static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void txs_listen(SSL *ssl, const struct tally_key *k, const uint8_t genesis[HASH_LEN],
		       uint64_t node_height, int argc, char **argv)
{
	struct timeval tv = { 1, 0 };
	struct wire_msg m, ping = { .type = WIRE_PING };
	struct heard *h = NULL;
	struct timespec t0;
	uint8_t *body = NULL;
	double secs, pinged = 0;
	size_t n = 0;
	int closed = 0;

	if (argc < 7)
		usage();
	secs = atof(argv[6]);
	setsockopt(SSL_get_fd(ssl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	signal(SIGPIPE, SIG_IGN);
	hello(ssl, k, genesis, node_height);
	if (argc > 7) {
		struct wire_bytes items[WIRE_TXS_MAX];
		struct wire_msg t = { .type = WIRE_TXS };
		int nt = argc - 7;

		if (nt > WIRE_TXS_MAX)
			usage();
		for (int i = 0; i < nt; i++) {
			size_t len = strlen(argv[7 + i]) / 2;
			uint8_t *b = malloc(len ? len : 1);

			if (!b || hex_decode(argv[7 + i], b, len))
				usage();
			items[i] = (struct wire_bytes){ b, len };
		}
		t.u.txs.n = (uint16_t)nt;
		t.u.txs.items = items;
		send_msg(ssl, &t);
		for (int i = 0; i < nt; i++)
			free((uint8_t *)items[i].bytes);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!closed && since(&t0) < secs) {
		if (since(&t0) - pinged >= 2) {
			pinged = since(&t0);
			ping.u.ping = (uint64_t)pinged;
			send_msg(ssl, &ping);
		}
		memset(&m, 0, sizeof(m));
		if (read_msg(ssl, &m, &body, &closed))
			continue;
		if (m.type == WIRE_TXS) {
			struct wire_txs_iter it;
			struct wire_bytes tx;

			wire_txs_begin(&it, &m.u.txs);
			while (wire_txs_next(&it, &tx)) {
				uint8_t hash[HASH_LEN];

				tx_hash(tx.bytes, tx.len, hash);
				heard_add(&h, &n, hash, since(&t0));
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		char hex[2 * HASH_LEN + 1];

		hex_encode(h[i].hash, HASH_LEN, hex);
		printf("%s %ld %.1f %.1f\n", hex, h[i].times, h[i].first, h[i].last);
	}
	puts(closed ? "closed" : "open");
	free(h);
	free(body);
}

int main(int argc, char **argv)
{
	uint8_t genesis[HASH_LEN];
	struct tally_key k;
	struct wire_msg m;
	uint8_t *body = NULL;
	int closed;

	if (argc < 4)
		usage();
	if (!strcmp(argv[1], "evidence-tx"))
		return evidence_tx(argc, argv);
	const char *mode = argv[1], *src = argv[3];
	int port = atoi(argv[2]);

	if (!strcmp(mode, "deaf"))
		rcvbuf = 4096;
	int fd = dial(port, src);

	if (!strcmp(mode, "garbage")) {
		uint8_t junk[4096];
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)rand();
		ssize_t w = write(fd, junk, sizeof(junk));
		(void)w;
		char buf[256];
		ssize_t r;
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			;
		puts(r == 0 || errno == ECONNRESET ? "closed" : "open");
		return 0;
	}
	if (argc < 5 || hex_decode(argv[4], genesis, HASH_LEN))
		usage();
	if (!strcmp(mode, "unknown")) {
		key_generate(&k);
	} else {
		if (argc < 6 || key_load_pem(&k, argv[5]))
			usage();
	}
	SSL *ssl = tls(fd, &k);
	if (!ssl) {
		puts("refused");
		return 0;
	}
	/* The node's HELLO comes first once it accepted our key. */
	if (read_msg(ssl, &m, &body, &closed) || m.type != WIRE_HELLO) {
		puts(closed ? "refused" : "open");
		return 0;
	}
	uint64_t node_height = m.u.hello.height;

	if (!strcmp(mode, "unknown") || !strcmp(mode, "hello")) {
		hello(ssl, &k, genesis, node_height);
		puts(outcome(ssl));
	} else if (!strcmp(mode, "consensus")) {
		uint8_t blk[64];
		struct cs_msg v = { .kind = CS_MSG_VOTE }, p = { .kind = CS_MSG_PROPOSAL };

		hello(ssl, &k, genesis, node_height);
		v.v.type = VOTE_PREVOTE;
		v.v.height = node_height + 1000;
		memcpy(v.validator, k.pub, PUBKEY_LEN);
		send_consensus(ssl, &v);
		send_consensus(ssl, &v);
		memset(blk, 7, sizeof(blk));
		p.p.height = node_height + 1000;
		p.p.pol_round = -1;
		p.block = blk;
		p.block_len = sizeof(blk);
		send_consensus(ssl, &p);
		puts(outcome(ssl));
	} else if (!strcmp(mode, "txs")) {
		struct wire_bytes items[WIRE_TXS_MAX];
		struct wire_msg t = { .type = WIRE_TXS };
		uint8_t *bufs[WIRE_TXS_MAX];
		int n = argc - 6;

		if (n < 1 || n > WIRE_TXS_MAX)
			usage();
		for (int i = 0; i < n; i++) {
			size_t len = strlen(argv[6 + i]) / 2;

			bufs[i] = malloc(len ? len : 1);
			if (!bufs[i] || hex_decode(argv[6 + i], bufs[i], len))
				usage();
			items[i] = (struct wire_bytes){ bufs[i], len };
		}
		hello(ssl, &k, genesis, node_height);
		t.u.txs.n = (uint16_t)n;
		t.u.txs.items = items;
		send_msg(ssl, &t);
		puts(outcome(ssl));
		for (int i = 0; i < n; i++)
			free(bufs[i]);
	} else if (!strcmp(mode, "txs-listen")) {
		txs_listen(ssl, &k, genesis, node_height, argc, argv);
	} else if (!strcmp(mode, "forged-vote")) {
		struct cs_msg v = { .kind = CS_MSG_VOTE };

		if (argc < 7 || hex_decode(argv[6], v.validator, PUBKEY_LEN))
			usage();
		hello(ssl, &k, genesis, node_height);
		v.v.type = VOTE_PRECOMMIT;
		v.v.height = node_height + 1;
		memset(v.v.block_id, 0x5a, HASH_LEN);
		memset(v.sig, 0x33, SIG_LEN);
		send_consensus(ssl, &v);
		puts(outcome(ssl));
	} else if (!strcmp(mode, "equivocate")) {
		struct tally_key val;
		struct cs_msg v = { .kind = CS_MSG_VOTE };
		char a[17], b[17];

		if (argc < 9 || key_load_pem(&val, argv[6]))
			usage();
		srand((unsigned)getpid());
		hello(ssl, &k, genesis, node_height);
		v.v.type = VOTE_PRECOMMIT;
		v.v.height = strtoull(argv[7], NULL, 10);
		v.v.round = (uint32_t)strtoul(argv[8], NULL, 10);
		memcpy(v.validator, val.pub, PUBKEY_LEN);
		for (int i = 0; i < 2; i++) {
			for (size_t j = 0; j < HASH_LEN; j++)
				v.v.block_id[j] = (uint8_t)rand();
			if (vote_sign(&v.v, &val, genesis, v.sig)) {
				fprintf(stderr, "peer_hostile: cannot sign\n");
				exit(2);
			}
			hex_encode(v.v.block_id, 8, i ? b : a);
			send_consensus(ssl, &v);
		}
		const char *o = outcome(ssl);
		if (!strcmp(o, "open"))
			printf("open %s %s\n", a, b);
		else
			puts(o);
		key_free(&val);
	} else if (!strcmp(mode, "wrong-genesis")) {
		genesis[0] ^= 0xff;
		hello(ssl, &k, genesis, node_height);
		puts(outcome(ssl));
	} else if (!strcmp(mode, "oversized")) {
		hello(ssl, &k, genesis, node_height);
		uint8_t head[WIRE_HEAD_LEN] = { 0, 0, 0, 4, WIRE_TXS };   /* 64 MiB */
		SSL_write(ssl, head, sizeof(head));
		puts(outcome(ssl));
	} else if (!strcmp(mode, "garbage-frame")) {
		hello(ssl, &k, genesis, node_height);
		uint8_t f[WIRE_HEAD_LEN + 200] = { 201, 0, 0, 0, WIRE_TXS };
		for (size_t i = WIRE_HEAD_LEN; i < sizeof(f); i++)
			f[i] = (uint8_t)rand();
		SSL_write(ssl, f, sizeof(f));
		puts(outcome(ssl));
	} else if (!strcmp(mode, "flood")) {
		long n = argc > 6 ? atol(argv[6]) : 100000, sent = 0;
		const char *o = NULL;
		hello(ssl, &k, genesis, node_height);
		struct wire_msg ping = { .type = WIRE_PING };
		for (; sent < n; sent++) {
			struct enc e;
			enc_init(&e);
			ping.u.ping = (uint64_t)sent;
			wire_encode(&e, &ping);
			int w = SSL_write(ssl, e.buf, (int)e.len);
			enc_free(&e);
			if (w <= 0) {
				/* A send timeout: the node stopped reading but kept
				 * the connection; anything else: it closed it. */
				o = SSL_get_error(ssl, w) == SSL_ERROR_WANT_WRITE ? "open" : "closed";
				break;
			}
		}
		printf("%s after %ld\n", o ? o : outcome(ssl), sent);
	} else if (!strcmp(mode, "txs-flood")) {
		enum { NTX = 30000 };
		struct wire_bytes *items = calloc(NTX, sizeof(*items));
		struct wire_msg t = { .type = WIRE_TXS };
		struct tally_key signer;
		struct timespec pause = { 0, 1200000 };   /* at most 800 frames a second */
		long secs, frames = 0;
		time_t end;
		const char *o = "open";

		if (argc < 9 || !items || key_load_pem(&signer, argv[7]))
			usage();
		secs = atol(argv[8]);
		for (int i = 0; i < NTX; i++) {
			struct tx x = { .version = TX_VERSION, .kind = TX_TRANSFER };
			struct enc e;

			snprintf(x.chain_id, sizeof(x.chain_id), "%s", argv[6]);
			memcpy(x.signer, signer.pub, PUBKEY_LEN);
			memset(x.u.transfer.to, 0x11, PUBKEY_LEN);
			x.u.transfer.amount = 1;
			x.nonce = 1000000 + (uint64_t)i;
			if (tx_sign(&x, &signer, genesis))
				usage();
			enc_init(&e);
			tx_encode(&e, &x);
			items[i].len = e.len;
			items[i].bytes = enc_take(&e, &items[i].len);
		}
		signal(SIGPIPE, SIG_IGN);
		hello(ssl, &k, genesis, node_height);
		end = time(NULL) + secs;
		for (int at = 0; time(NULL) < end; at = (at + WIRE_TXS_MAX) % (NTX - WIRE_TXS_MAX)) {
			struct enc e;
			int w;

			t.u.txs.n = WIRE_TXS_MAX;
			t.u.txs.items = items + at;
			enc_init(&e);
			wire_encode(&e, &t);
			w = SSL_write(ssl, e.buf, (int)e.len);
			enc_free(&e);
			if (w <= 0 && SSL_get_error(ssl, w) != SSL_ERROR_WANT_WRITE) {
				o = "closed";
				break;
			}
			frames++;
			nanosleep(&pause, NULL);
		}
		printf("%s after %ld\n", o, frames);
		for (int i = 0; i < NTX; i++)
			free((uint8_t *)items[i].bytes);
		free(items);
		key_free(&signer);
	} else if (!strcmp(mode, "deaf")) {
		long secs = argc > 6 ? atol(argv[6]) : 60, t = 0;
		struct wire_msg ping = { .type = WIRE_PING };
		const char *o = "open";

		/* A write after the node closed: an error, not SIGPIPE. */
		signal(SIGPIPE, SIG_IGN);
		hello(ssl, &k, genesis, node_height);
		for (t = 0; t < secs; t += 2) {
			struct enc e;
			int w;

			sleep(2);
			enc_init(&e);
			ping.u.ping = (uint64_t)t;
			wire_encode(&e, &ping);
			w = SSL_write(ssl, e.buf, (int)e.len);
			enc_free(&e);
			if (w <= 0 && SSL_get_error(ssl, w) != SSL_ERROR_WANT_WRITE) {
				o = "closed";
				break;
			}
		}
		printf("%s after %ld\n", o, t);
	} else if (!strcmp(mode, "bad-block")) {
		hello(ssl, &k, genesis, node_height + 5);
		const char *o = "open";
		for (int i = 0; i < 20; i++) {
			if (read_msg(ssl, &m, &body, &closed)) {
				if (closed) {
					o = "closed";
					break;
				}
				continue;
			}
			if (m.type == WIRE_GET_BLOCKS) {
				bad_block(ssl, m.u.get_blocks.from);
				o = outcome(ssl);
				break;
			}
		}
		puts(o);
	} else {
		usage();
	}
	free(body);
	SSL_free(ssl);
	close(fd);
	key_free(&k);
	return 0;
}
