/* The USAGE records per second that a real node accepts and commits, against
 * raw Ed25519 verification measured in the same run.
 *
 * The bench writes a single-validator devnet into a temp dir (node key,
 * genesis with a funded tenant, tallyd.conf with block_interval_ms = 100)
 * and starts bin/tallyd on a free loopback port with --no-vms: the ledger and
 * the API only, so nothing but this bench signs transactions. Then, over the
 * HTTP API:
 *
 *   1. as the tenant it opens LEASES leases (LEASE_OPEN);
 *   2. as the provider, which is the node's own key, it starts them
 *      (LEASE_START) and reads each lease's started_ns;
 *   3. it signs RECORDS usage records per lease with synthetic meter input,
 *      chained per lease (seq, prev_hash = hash of the previous USAGE tx,
 *      each start where the last one ended), provider nonces in order,
 *      leases interleaved;
 *   4. it submits them (curl multi, keep-alive) in PHASES parts of the
 *      rounds, each another way: one POST /v1/tx per record on one
 *      connection and on CONNS at once, answered once the mempool took
 *      it; the same two with "Prefer: respond-async", answered once the
 *      record is decoded and queued (daemon/ledger/inbox.h); then POST
 *      /v1/txs batches as JSON on one connection and on CONNS, then the
 *      same batches as the binary body (Content-Type
 *      application/octet-stream, docs/PROTOCOL.md), and last the binary
 *      batches on CONNS asynchronously; each part is timed from its first
 *      submit until GET /v1/status counts every one of its records in the
 *      usage log.
 *
 * Each part also prints the node's own CPU time (user + system, all its
 * threads, from /proc/PID/stat) and minor page faults per record: unlike
 * the rate, they do not move with what else runs on the machine.
 *
 * Signing is done before the clock starts: it is the provider's cost, not
 * the node's. The baseline is OpenSSL Ed25519 verification of messages as
 * long as the signed payload of one USAGE transaction. The node's figure
 * includes everything a record costs it (HTTP, JSON, strict decode,
 * signature, mempool, block application, SQLite with synchronous=FULL, the
 * usage log), and the bench's own client work, which shares the CPUs.
 *
 * One signer signs every record. Requests on parallel connections can
 * overtake one another inside the node (its HTTP server runs four threads);
 * the mempool holds one that arrives early, up to 2048 nonces ahead, until
 * its predecessors are in (daemon/ledger/mempool.h). One further ahead is
 * refused with 409 "nonce" and sent again once its predecessor is in: the
 * bench counts these resends and prints them with the figures.
 *
 * The node is stopped and the temp dir removed at the end, pass or fail. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "bench/bench_quiet.h"
#include "bench/bench_util.h"
#include "contracts/contract.h"
#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/errors.h"
#include "lib/chain/genesis.h"
#include "lib/chain/tx.h"

#define CHAIN "tally-node-bench"
#define SEC 1000000000ull
#define LEASES 500
#define RECORDS 180            /* per lease: LEASES x RECORDS USAGE transactions */
#define CONNS 4                /* concurrent connections (tallyd serves 4 threads) */
/* POST /v1/txs: transactions per request on one connection, and on CONNS
 * (CONNS requests in flight stay well within the 2048 nonces the mempool
 * holds ahead; a USAGE transaction is 251 bytes, so 100 of them make a
 * body of about 50 KB, under the API's 64 KiB). */
#define PER_POST_MAX 100
#define PER_POST_CONNS 16
#define PHASES 9               /* RECORDS / PHASES rounds each */
#define INTERVAL_S 60
#define RAW_N 20000
#define WAIT_S 60              /* longest wait for any one step */

/* --- process state and cleanup ---------------------------------------------- */

static char g_dir[] = "/tmp/tally-node-bench-XXXXXX";
static int g_have_dir;
static pid_t g_node = -1;
static char g_base[64];        /* http://127.0.0.1:PORT */
static volatile sig_atomic_t g_interrupted;

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static void print_node_log(void)
{
	char path[sizeof(g_dir) + 16], line[1024];
	FILE *f;
	long lines = 0, skip;

	if (!g_have_dir)
		return;
	snprintf(path, sizeof(path), "%s/tallyd.log", g_dir);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		lines++;
	skip = lines > 20 ? lines - 20 : 0;
	rewind(f);
	if (lines)
		fprintf(stderr, "node_bench: last lines of the node's log:\n");
	for (long i = 0; fgets(line, sizeof(line), f); i++)
		if (i >= skip)
			fprintf(stderr, "  %s", line);
	fclose(f);
}

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "node_bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_node_log();
	exit(1);
}

static void stop_node(void)
{
	bench_stop_children(&g_node, 1);
}

/* atexit: runs on success and after die() alike. */
static void cleanup(void)
{
	stop_node();
	if (g_have_dir)
		bench_rm_tree(g_dir);
	g_have_dir = 0;
}

static void on_signal(int sig)
{
	(void)sig;
	g_interrupted = 1;
}

/* Every wait loop calls this: a node that died or a ^C ends the bench. */
static void check_alive(void)
{
	const char *how;

	if (g_interrupted)
		die("interrupted");
	if (bench_child_exited(&g_node, 1, &how) >= 0)
		die("tallyd exited (%s)", how);
}

/* --- baseline --------------------------------------------------------------- */

/* A warm-up pass of RAW_N / 10, untimed: the first verifications of a run
 * are slower. */
static double raw_verify_rate(size_t msg_len)
{
	enum raw_verify_step failed;
	double rate;
	int rc = bench_raw_verify_rate(RAW_N, msg_len, RAW_N / 10, &rate, &failed);

	if (rc)
		die("%s", bench_raw_verify_failure(failed, rc));
	return rate;
}

/* --- the devnet ------------------------------------------------------------- */

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		die("no free loopback port: %s", strerror(errno));
	close(fd);
	return ntohs(sa.sin_port);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f))
		die("cannot write %s: %s", path, strerror(errno));
}

/* The devnet's genesis hash (make_devnet): signatures are bound to it. */
static uint8_t g_genesis_hash[HASH_LEN];

/* node.pem, genesis.json (the node the only validator, the tenant funded)
 * and tallyd.conf in g_dir. */
static void make_devnet(const struct tally_key *node, const struct tally_key *tenant,
			uint64_t tenant_funds, int port)
{
	struct genesis g;
	struct genesis_account acc = { .balance = tenant_funds };
	char path[256], conf[2048];
	char *json;
	int rc;

	snprintf(path, sizeof(path), "%s/node.pem", g_dir);
	if ((rc = key_save_pem(node, path)))
		die("cannot write %s: %s", path, tally_strerror(rc));

	memset(&g, 0, sizeof(g));
	strcpy(g.chain_id, CHAIN);
	g.genesis_time_ns = wall_ns() - SEC;
	g.validators.n = 1;
	memcpy(g.validators.v[0].pubkey, node->pub, PUBKEY_LEN);
	g.validators.v[0].stake = 1000000;
	strcpy(g.info[0].name, "node0");
	snprintf(g.info[0].api, sizeof(g.info[0].api), "%s", g_base);
	memcpy(acc.pubkey, tenant->pub, PUBKEY_LEN);
	g.naccounts = 1;
	g.accounts = &acc;
	genesis_hash(&g, g_genesis_hash);
	json = genesis_to_json(&g);
	if (!json)
		die("genesis_to_json: out of memory");
	snprintf(path, sizeof(path), "%s/genesis.json", g_dir);
	write_text(path, json);
	free(json);

	snprintf(conf, sizeof(conf),
		 "[node]\n"
		 "data_dir = %s/data\n"
		 "key = %s/node.pem\n"
		 "genesis = %s/genesis.json\n"
		 "listen = 127.0.0.1:%d\n"
		 "log_level = warn\n"
		 "block_interval_ms = 100\n"
		 /* The bench is one client sending as fast as the node takes. */
		 "\n[api]\n"
		 "requests_per_s = 0\n"
		 "\n[metering]\n"
		 "interval_s = %d\n"
		 /* The chain takes leases only of a provider's announced image:
		  * the node announces this one although it runs no VM (the
		  * bench starts and meters the leases itself). */
		 "\n[provider]\n"
		 "announce = yes\n"
		 "\n[image.tiny]\n"
		 "path = %s/tiny.img\n",
		 g_dir, g_dir, g_dir, port, INTERVAL_S, g_dir);
	snprintf(path, sizeof(path), "%s/tallyd.conf", g_dir);
	write_text(path, conf);
	snprintf(path, sizeof(path), "%s/tiny.img", g_dir);
	write_text(path, "");
}

static void start_node(const char *tallyd)
{
	char conf[256], log[256];

	snprintf(conf, sizeof(conf), "%s/tallyd.conf", g_dir);
	snprintf(log, sizeof(log), "%s/tallyd.log", g_dir);
	g_node = bench_spawn_tallyd(tallyd, conf, log);
	if (g_node < 0)
		die("fork: %s", strerror(errno));
}

/* --- HTTP ------------------------------------------------------------------- */

static CURL *g_get;            /* for the bench's reads */
static struct bench_buf g_get_buf;

/* GET base + path; the JSON body of a 200 answer, or NULL (no answer yet,
 * or another status) when may_fail, else dies. */
static json_t *get_json(const char *path, int may_fail)
{
	char url[256];
	long status = 0;
	json_t *j;
	CURLcode rc;

	snprintf(url, sizeof(url), "%s%s", g_base, path);
	g_get_buf.len = 0;
	curl_easy_setopt(g_get, CURLOPT_URL, url);
	rc = curl_easy_perform(g_get);
	if (rc == CURLE_OK)
		curl_easy_getinfo(g_get, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || status != 200) {
		if (may_fail)
			return NULL;
		die("GET %s: %s", path, rc != CURLE_OK ? curl_easy_strerror(rc) :
		    g_get_buf.p ? g_get_buf.p : "(no body)");
	}
	j = json_loadb(g_get_buf.p, g_get_buf.len, 0, NULL);
	if (!j)
		die("GET %s: the answer is not JSON", path);
	return j;
}

static uint64_t json_u64(json_t *obj, const char *key, const char *what)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		die("%s: no integer \"%s\" in the answer", what, key);
	return (uint64_t)json_integer_value(v);
}

static void get_setup(void)
{
	g_get = curl_easy_init();
	if (!g_get)
		die("cannot initialise libcurl");
	curl_easy_setopt(g_get, CURLOPT_WRITEFUNCTION, bench_buf_append);
	curl_easy_setopt(g_get, CURLOPT_WRITEDATA, &g_get_buf);
	curl_easy_setopt(g_get, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(g_get, CURLOPT_NOSIGNAL, 1L);
}

/* Until the API answers; up to 10 s for the node to open its store. */
static void wait_healthy(void)
{
	double end = bench_now_s() + 10;

	while (bench_now_s() < end) {
		json_t *j;

		check_alive();
		j = get_json("/v1/status", 1);
		if (j) {
			json_decref(j);
			return;
		}
		usleep(50000);
	}
	die("tallyd did not answer on %s within 10 s", g_base);
}

/* Until the node's PROVIDER announcement is on the chain (up to 30 s): the
 * chain refuses leases of a provider that has none. */
static void wait_announced(const uint8_t pub[PUBKEY_LEN])
{
	char path[128], hex[2 * PUBKEY_LEN + 1];
	double end = bench_now_s() + 30;

	hex_encode(pub, PUBKEY_LEN, hex);
	snprintf(path, sizeof(path), "/v1/providers/%s", hex);
	while (bench_now_s() < end) {
		json_t *j;

		check_alive();
		j = get_json(path, 1);
		if (j) {
			bool withdrawn = json_is_true(json_object_get(j, "withdrawn"));

			json_decref(j);
			if (!withdrawn)
				return;
		}
		usleep(100000);
	}
	die("the node's provider announcement did not commit within 30 s");
}

static uint64_t account_nonce(const uint8_t pub[PUBKEY_LEN])
{
	char path[128], hex[2 * PUBKEY_LEN + 1];
	json_t *j;
	uint64_t nonce;

	hex_encode(pub, PUBKEY_LEN, hex);
	snprintf(path, sizeof(path), "/v1/accounts/%s", hex);
	j = get_json(path, 0);
	nonce = json_u64(j, "nonce", path);
	json_decref(j);
	return nonce;
}

/* Until the account's committed nonce reaches want. */
static void wait_nonce(const uint8_t pub[PUBKEY_LEN], uint64_t want, const char *what)
{
	double end = bench_now_s() + WAIT_S;

	while (account_nonce(pub) < want) {
		check_alive();
		if (bench_now_s() > end)
			die("%s: not committed within %d s", what, WAIT_S);
		usleep(20000);
	}
}

/* --- signed transactions and their submission -------------------------------- */

struct signed_tx {
	char *body;                    /* {"tx":"<hex>"} */
	size_t len;                    /* of the binary transaction */
	uint8_t hash[HASH_LEN];
};

static void sign_tx(struct tx *t, const struct tally_key *k, struct signed_tx *out)
{
	char why[WHY_MAX];

	if (bench_sign_json(t, k, g_genesis_hash, &out->body, out->hash, &out->len, why))
		die("%s", why);
}

enum { TX_NEW, TX_FLIGHT, TX_RETRY, TX_DONE };

/* A list of one signer's transactions in nonce order, sent on nconns
 * connections. */
struct batch {
	const struct signed_tx *txs;
	size_t n;
	uint8_t *state;
	size_t lo;                     /* lowest index not yet accepted */
	size_t fresh;                  /* next index never sent */
	size_t nretry;                 /* in TX_RETRY now */
	size_t resent;                 /* resends after a nonce gap, in all */
};

struct conn {
	CURL *h;
	struct bench_buf resp;
	long idx;                      /* transaction in flight; -1 when idle */
	/* POST /v1/txs: the transactions in flight, in the body's order. */
	size_t sent[PER_POST_MAX];
	size_t nsent;
	char *body;
};

struct submitter {
	CURLM *multi;
	struct curl_slist *hdrs, *async_hdrs;
	char url[128], batch_url[128];
	struct conn c[CONNS];
	int nconns;                    /* in use: 1..CONNS */
	size_t per_post;               /* 0: POST /v1/tx; else up to this many per POST /v1/txs */
	bool binary;                   /* POST /v1/txs with the binary body */
	bool async;                    /* with Prefer: respond-async */
	struct curl_slist *bin_hdrs, *async_bin_hdrs;
};

static void submitter_init(struct submitter *s)
{
	memset(s, 0, sizeof(*s));
	s->nconns = CONNS;
	s->multi = curl_multi_init();
	s->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	s->bin_hdrs = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	s->async_hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	s->async_bin_hdrs = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	if (s->async_hdrs)
		s->async_hdrs = curl_slist_append(s->async_hdrs, "Prefer: respond-async");
	if (s->async_bin_hdrs)
		s->async_bin_hdrs = curl_slist_append(s->async_bin_hdrs, "Prefer: respond-async");
	if (!s->multi || !s->hdrs || !s->bin_hdrs || !s->async_hdrs || !s->async_bin_hdrs)
		die("cannot initialise libcurl");
	/* One connection per easy handle, kept alive. */
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CONNS);
	snprintf(s->url, sizeof(s->url), "%s/v1/tx", g_base);
	snprintf(s->batch_url, sizeof(s->batch_url), "%s/v1/txs", g_base);
	for (int i = 0; i < CONNS; i++) {
		struct conn *c = &s->c[i];

		c->h = curl_easy_init();
		if (!c->h)
			die("cannot initialise libcurl");
		c->idx = -1;
		curl_easy_setopt(c->h, CURLOPT_URL, s->url);
		curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, s->hdrs);
		curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, bench_buf_append);
		curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->resp);
		curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 30L);
		curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
	}
}

static void submitter_free(struct submitter *s)
{
	for (int i = 0; i < CONNS; i++) {
		if (s->c[i].idx >= 0)
			curl_multi_remove_handle(s->multi, s->c[i].h);
		curl_easy_cleanup(s->c[i].h);
		free(s->c[i].resp.p);
		free(s->c[i].body);
	}
	curl_multi_cleanup(s->multi);
	curl_slist_free_all(s->hdrs);
	curl_slist_free_all(s->bin_hdrs);
	curl_slist_free_all(s->async_hdrs);
	curl_slist_free_all(s->async_bin_hdrs);
}

/* The next transaction to send, or -1 for none now. After a refusal nothing
 * behind the refused transaction can be accepted before it is, and it can
 * be only once every transaction before it has been: so it is sent again as
 * soon as that holds, and nothing else is sent meanwhile. */
static long next_to_send(struct batch *b)
{
	if (b->nretry) {
		if (b->state[b->lo] != TX_RETRY)
			return -1;
		b->nretry--;
		b->resent++;
		return (long)b->lo;
	}
	if (b->fresh < b->n)
		return (long)b->fresh++;
	return -1;
}

static void send_one(struct submitter *s, struct conn *c, struct batch *b, long idx)
{
	c->idx = idx;
	c->resp.len = 0;
	b->state[idx] = TX_FLIGHT;
	curl_easy_setopt(c->h, CURLOPT_URL, s->url);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, s->async ? s->async_hdrs : s->hdrs);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, b->txs[idx].body);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(b->txs[idx].body));
	if (curl_multi_add_handle(s->multi, c->h) != CURLM_OK)
		die("curl_multi_add_handle failed");
}

/* POST /v1/txs: the transactions to send next in one request, into c->sent.
 * Fresh ones in order; after a refusal, once nothing is in flight (every
 * transaction before the refused ones is then in), the refused ones in
 * order. */
static size_t pick_post(struct submitter *s, struct batch *b, struct conn *c)
{
	c->nsent = 0;
	if (b->nretry) {
		for (int i = 0; i < s->nconns; i++)
			if (s->c[i].idx >= 0)
				return 0;
		for (size_t i = b->lo; i < b->n && c->nsent < s->per_post; i++)
			if (b->state[i] == TX_RETRY) {
				c->sent[c->nsent++] = i;
				b->nretry--;
				b->resent++;
			}
		return c->nsent;
	}
	while (b->fresh < b->n && c->nsent < s->per_post)
		c->sent[c->nsent++] = b->fresh++;
	return c->nsent;
}

/* The binary body of c->sent (daemon/api/txbody.h): u16 count, then each
 * transaction as u32 length and bytes, little-endian. Built from the hex of
 * each one's {"tx":"<hex>"}: the bench's cost, not the node's. */
static size_t binary_body(struct conn *c, struct batch *b)
{
	size_t len = 2, at = 2;
	uint8_t *p;

	for (size_t k = 0; k < c->nsent; k++)
		len += 4 + b->txs[c->sent[k]].len;
	free(c->body);
	c->body = malloc(len);
	if (!c->body)
		die("out of memory");
	p = (uint8_t *)c->body;
	p[0] = (uint8_t)c->nsent;
	p[1] = (uint8_t)(c->nsent >> 8);
	for (size_t k = 0; k < c->nsent; k++) {
		const struct signed_tx *t = &b->txs[c->sent[k]];
		char hex[2 * TX_MAX_SIZE + 1];

		for (int i = 0; i < 4; i++)
			p[at + i] = (uint8_t)(t->len >> (8 * i));
		/* t->body is {"tx":"<hex>"}: its hex starts at byte 7. */
		snprintf(hex, sizeof(hex), "%.*s", (int)(2 * t->len), t->body + 7);
		if (hex_decode(hex, p + at + 4, t->len))
			die("a signed transaction's hex does not decode");
		at += 4 + t->len;
	}
	return len;
}

/* {"txs":["<hex>",...]} of c->sent, or its binary body. */
static void send_post(struct submitter *s, struct conn *c, struct batch *b)
{
	size_t len = 16, at;

	if (s->binary) {
		at = binary_body(c, b);
	} else {
		for (size_t k = 0; k < c->nsent; k++)
			len += 2 * b->txs[c->sent[k]].len + 3;
		free(c->body);
		c->body = malloc(len);
		if (!c->body)
			die("out of memory");
		at = (size_t)sprintf(c->body, "{\"txs\":[");
		for (size_t k = 0; k < c->nsent; k++) {
			const struct signed_tx *t = &b->txs[c->sent[k]];

			/* t->body is {"tx":"<hex>"}: its hex starts at byte 7. */
			at += (size_t)sprintf(c->body + at, "%s\"%.*s\"", k ? "," : "",
					      (int)(2 * t->len), t->body + 7);
		}
		strcpy(c->body + at, "]}");
		at += 2;
	}
	for (size_t k = 0; k < c->nsent; k++)
		b->state[c->sent[k]] = TX_FLIGHT;
	c->idx = (long)c->sent[0];
	c->resp.len = 0;
	curl_easy_setopt(c->h, CURLOPT_URL, s->batch_url);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER,
			 s->binary ? (s->async ? s->async_bin_hdrs : s->bin_hdrs) :
				     (s->async ? s->async_hdrs : s->hdrs));
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)at);
	if (curl_multi_add_handle(s->multi, c->h) != CURLM_OK)
		die("curl_multi_add_handle failed");
}

static void mark_done(struct batch *b, size_t idx)
{
	b->state[idx] = TX_DONE;
	while (b->lo < b->n && b->state[b->lo] == TX_DONE)
		b->lo++;
}

/* 200 with one answer per transaction: "pending", "held" or "received" is in; refused
 * with code "nonce" goes again; anything else is a failure. */
static void on_post_answer(struct conn *c, struct batch *b, CURLcode rc)
{
	long status = 0;
	json_t *j = NULL, *res;

	c->idx = -1;
	if (rc != CURLE_OK)
		die("POST /v1/txs: %s", curl_easy_strerror(rc));
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200 && c->resp.p)
		j = json_loadb(c->resp.p, c->resp.len, 0, NULL);
	res = json_object_get(j, "results");
	if (!j || json_array_size(res) != c->nsent)
		die("POST /v1/txs (%zu transactions): HTTP %ld: %s", c->nsent, status,
		    c->resp.p ? c->resp.p : "(no body)");
	for (size_t k = 0; k < c->nsent; k++) {
		json_t *r = json_array_get(res, k);
		const char *st = json_string_value(json_object_get(r, "status"));
		const char *code = json_string_value(json_object_get(r, "code"));

		if (st && (!strcmp(st, "pending") || !strcmp(st, "held") ||
			   !strcmp(st, "received"))) {
			mark_done(b, c->sent[k]);
		} else if (code && !strcmp(code, "nonce")) {
			b->state[c->sent[k]] = TX_RETRY;
			b->nretry++;
		} else {
			die("POST /v1/txs: transaction %zu of %zu refused: %s", c->sent[k], b->n,
			    json_string_value(json_object_get(r, "error")));
		}
	}
	c->nsent = 0;
	json_decref(j);
}

/* 202: accepted (queued or held). 409 "nonce": it overtook its predecessor
 * by more than the node holds; send it again.
 * Anything else is a failure of the bench or the node. */
static void on_answer(struct conn *c, struct batch *b, CURLcode rc)
{
	long status = 0, idx = c->idx;
	const char *code = NULL;
	json_t *j = NULL;

	c->idx = -1;
	if (rc != CURLE_OK)
		die("POST /v1/tx: %s", curl_easy_strerror(rc));
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	if (status == 202) {
		mark_done(b, (size_t)idx);
		return;
	}
	if (c->resp.p)
		j = json_loadb(c->resp.p, c->resp.len, 0, NULL);
	code = json_string_value(json_object_get(j, "code"));
	if (status == 409 && code && !strcmp(code, "nonce")) {
		b->state[idx] = TX_RETRY;
		b->nretry++;
		json_decref(j);
		return;
	}
	die("POST /v1/tx (transaction %ld of %zu): HTTP %ld: %s", idx, b->n, status,
	    c->resp.p ? c->resp.p : "(no body)");
}

/* Sends every transaction of b until the node has accepted them all. */
static void submit_batch(struct submitter *s, struct batch *b)
{
	int running;

	b->state = calloc(b->n, 1);
	if (!b->state)
		die("out of memory");
	b->lo = b->fresh = b->nretry = b->resent = 0;
	while (b->lo < b->n) {
		CURLMsg *m;
		int left, answered = 0;

		for (int i = 0; i < s->nconns; i++) {
			long idx;

			if (s->c[i].idx >= 0)
				continue;
			if (s->per_post) {
				if (pick_post(s, b, &s->c[i]))
					send_post(s, &s->c[i], b);
				continue;
			}
			if ((idx = next_to_send(b)) < 0)
				continue;
			send_one(s, &s->c[i], b, idx);
		}
		if (curl_multi_perform(s->multi, &running) != CURLM_OK)
			die("curl_multi_perform failed");
		while ((m = curl_multi_info_read(s->multi, &left))) {
			struct conn *c;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			CURLcode rc = m->data.result;

			curl_multi_remove_handle(s->multi, c->h);
			if (s->per_post)
				on_post_answer(c, b, rc);
			else
				on_answer(c, b, rc);
			answered++;
		}
		check_alive();
		/* A connection fell idle: give it the next transaction at once
		 * rather than wait for the others. */
		if (answered)
			continue;
		if (curl_multi_poll(s->multi, NULL, 0, 100, NULL) != CURLM_OK)
			die("curl_multi_poll failed");
	}
	free(b->state);
	b->state = NULL;
}

/* --- the leases ------------------------------------------------------------- */

static void make_contract(struct lease_contract *c, const struct tally_key *tenant,
			  const struct tally_key *provider, uint64_t nonce)
{
	if (bench_lease_contract(c, CHAIN, tenant->pub, provider->pub, nonce,
				 wall_ns() / SEC + 3600, RECORDS, INTERVAL_S))
		die("the contract's maximum charge overflows");
}

static struct signed_tx *alloc_txs(size_t n)
{
	struct signed_tx *t = calloc(n, sizeof(*t));

	if (!t)
		die("out of memory");
	return t;
}

static void free_txs(struct signed_tx *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(t[i].body);
	free(t);
}

static uint64_t lease_started_ns(const uint8_t id[LEASE_ID_LEN])
{
	char path[128], hex[2 * LEASE_ID_LEN + 1];
	const char *state;
	uint64_t started;
	json_t *j;

	hex_encode(id, LEASE_ID_LEN, hex);
	snprintf(path, sizeof(path), "/v1/leases/%s", hex);
	j = get_json(path, 0);
	state = json_string_value(json_object_get(j, "state"));
	if (!state || strcmp(state, "running"))
		die("lease %.16s is %s, not running", hex, state ? state : "(no state)");
	started = json_u64(j, "started_ns", path);
	json_decref(j);
	return started;
}

struct status {
	uint64_t height, usage_size, waiting;
};

static void get_status(struct status *st)
{
	json_t *j = get_json("/v1/status", 0);

	st->height = json_u64(j, "height", "/v1/status");
	st->usage_size = json_u64(j, "usage_size", "/v1/status");
	/* What the node still has to commit: queued, held for a nonce gap, or
	 * received asynchronously and not yet checked. */
	st->waiting = json_u64(j, "mempool", "/v1/status") + json_u64(j, "held", "/v1/status") +
		      json_u64(j, "inbox", "/v1/status");
	json_decref(j);
}

/* Until the usage log holds want records. A record that the node accepted
 * but left out of a block (it logs why) would never arrive: nothing waiting
 * in the node (mempool, held, inbox) for a second, with records still
 * missing, ends the wait. (A batch being checked is in none of the three
 * for a moment, hence the second: on a loaded machine a moment is long.) */
static void wait_usage(uint64_t want, struct status *st)
{
	double end = bench_now_s() + WAIT_S, busy = bench_now_s();

	for (;;) {
		get_status(st);
		if (st->usage_size >= want)
			return;
		if (st->waiting)
			busy = bench_now_s();
		else if (bench_now_s() - busy > 1.0)
			die("only %" PRIu64 " of %" PRIu64 " usage records were committed; the "
			    "node dropped the rest", st->usage_size, want);
		check_alive();
		if (bench_now_s() > end)
			die("only %" PRIu64 " of %" PRIu64 " usage records committed after %d s",
			    st->usage_size, want, WAIT_S);
		usleep(5000);
	}
}

/* --- the run ----------------------------------------------------------------- */

struct bench {
	struct tally_key node, tenant;     /* the node's key is the provider */
	struct submitter sub;
	uint8_t lease_id[LEASES][LEASE_ID_LEN];
	uint8_t prev[LEASES][HASH_LEN];    /* hash of each lease's last USAGE tx */
	uint64_t next_start[LEASES];       /* where each lease's next record starts */
	uint64_t provider_nonce;           /* the provider's next nonce */
	size_t msg_len;                    /* of a signed USAGE payload */
};

/* The baseline's message length: a USAGE transaction has a fixed-size
 * encoding, so any one will do. */
static size_t usage_payload_len(const struct bench *bn)
{
	static const uint8_t zero[HASH_LEN];
	struct signed_tx s;
	struct tx t;

	bench_tx_base(&t, CHAIN, TX_USAGE, &bn->node, 0);
	bench_usage_record(&t.u.usage, zero, 0, zero, wall_ns(), 0);
	sign_tx(&t, &bn->node, &s);
	free(s.body);
	return s.len - SIG_LEN;
}

/* 1. The tenant opens LEASES leases. */
static void open_leases(struct bench *bn)
{
	struct signed_tx *opens = alloc_txs(LEASES);
	struct batch b = { .txs = opens, .n = LEASES };
	struct tx t;

	for (size_t i = 0; i < LEASES; i++) {
		bench_tx_base(&t, CHAIN, TX_LEASE_OPEN, &bn->tenant, i);
		make_contract(&t.u.open, &bn->tenant, &bn->node, i);
		sign_tx(&t, &bn->tenant, &opens[i]);
		memcpy(bn->lease_id[i], opens[i].hash, LEASE_ID_LEN);
	}
	submit_batch(&bn->sub, &b);
	wait_nonce(bn->tenant.pub, LEASES, "the LEASE_OPEN transactions");
	free_txs(opens, LEASES);
}

/* 2. The provider starts them; each lease's first record starts at its
 * started_ns. */
static void start_leases(struct bench *bn)
{
	struct signed_tx *starts = alloc_txs(LEASES);
	struct batch b = { .txs = starts, .n = LEASES };
	struct tx t;

	bn->provider_nonce = account_nonce(bn->node.pub);
	for (size_t i = 0; i < LEASES; i++) {
		bench_tx_base(&t, CHAIN, TX_LEASE_START, &bn->node, bn->provider_nonce++);
		memcpy(t.u.start.lease_id, bn->lease_id[i], LEASE_ID_LEN);
		sign_tx(&t, &bn->node, &starts[i]);
	}
	submit_batch(&bn->sub, &b);
	wait_nonce(bn->node.pub, bn->provider_nonce, "the LEASE_START transactions");
	for (size_t i = 0; i < LEASES; i++)
		bn->next_start[i] = lease_started_ns(bn->lease_id[i]);
	free_txs(starts, LEASES);
}

/* 3. Every usage record, signed before the clock starts: round r of every
 * lease before round r + 1, as the meters of concurrent leases deliver
 * them, provider nonces in that order. */
static struct signed_tx *sign_usage(struct bench *bn)
{
	struct signed_tx *usage = alloc_txs((size_t)LEASES * RECORDS);
	struct tx t;

	for (size_t r = 0; r < RECORDS; r++) {
		for (size_t i = 0; i < LEASES; i++) {
			struct signed_tx *s = &usage[r * LEASES + i];

			bench_tx_base(&t, CHAIN, TX_USAGE, &bn->node, bn->provider_nonce++);
			bench_usage_record(&t.u.usage, bn->lease_id[i], r, bn->prev[i], bn->next_start[i], i);
			bn->next_start[i] = t.u.usage.end_ns;
			sign_tx(&t, &bn->node, s);
			memcpy(bn->prev[i], s->hash, HASH_LEN);
		}
	}
	if (usage[0].len - SIG_LEN != bn->msg_len)
		die("a USAGE payload is %zu bytes, not %zu", usage[0].len - SIG_LEN, bn->msg_len);
	return usage;
}

/* How one part is sent. */
struct way {
	int conns;
	size_t per_post;               /* 0: one POST /v1/tx per transaction */
	bool binary;                   /* batches as the binary body */
	bool async;                    /* with Prefer: respond-async */
};

struct result {
	int conns;
	size_t per_post;               /* 0: one POST /v1/tx per transaction */
	bool binary;                   /* batches as the binary body */
	bool async;                    /* answered once received (Prefer: respond-async) */
	size_t n;
	double accepted_s, committed_s;
	uint64_t blocks;
	size_t resent;
	double cpu_s;                  /* the node's user + system CPU time */
	uint64_t minflt;               /* the node's minor page faults */
};

/* The node's CPU time and minor page faults so far (bench_proc_usage). */
static void node_usage(double *cpu_s, uint64_t *minflt)
{
	if (bench_proc_usage(g_node, cpu_s, minflt))
		die("cannot read /proc/%d/stat", (int)g_node);
}

/* 4. Submits n records on conns connections and waits until the usage log
 * holds them all, after the before_n committed earlier. */
static void run_usage(struct bench *bn, const struct signed_tx *usage, size_t n,
		      uint64_t before_n, const struct way *w, struct result *res)
{
	struct batch b = { .txs = usage, .n = n };
	struct status st0, st;
	double t0, cpu0, cpu1;
	uint64_t flt0, flt1;

	get_status(&st0);
	if (st0.usage_size != before_n)
		die("the usage log holds %" PRIu64 " records, not %" PRIu64, st0.usage_size,
		    before_n);
	bn->sub.nconns = w->conns;
	bn->sub.per_post = w->per_post;
	bn->sub.binary = w->binary;
	bn->sub.async = w->async;
	node_usage(&cpu0, &flt0);
	t0 = bench_now_s();
	submit_batch(&bn->sub, &b);
	bn->sub.per_post = 0;
	bn->sub.binary = false;
	bn->sub.async = false;
	res->accepted_s = bench_now_s() - t0;
	wait_usage(before_n + n, &st);
	res->committed_s = bench_now_s() - t0;
	node_usage(&cpu1, &flt1);
	res->cpu_s = cpu1 - cpu0;
	res->minflt = flt1 - flt0;
	res->blocks = st.height - st0.height;
	res->resent = b.resent;
	res->conns = w->conns;
	res->per_post = w->per_post;
	res->binary = w->binary;
	res->async = w->async;
	res->n = n;
}

static void report_run(const struct result *res, double raw)
{
	double rate = res->n / res->committed_s;
	char how[128];

	if (res->per_post)
		snprintf(how, sizeof(how), "batches of %zu per POST /v1/txs (%s body)%s",
			 res->per_post, res->binary ? "binary" : "JSON",
			 res->async ? ", Prefer: respond-async" : "");
	else
		snprintf(how, sizeof(how), "one POST /v1/tx each%s",
			 res->async ? ", Prefer: respond-async" : "");
	printf("node_bench: node USAGE accept+commit, %s, %d connection%s: %.0f records/s;"
	       " ratio node / raw verify: %.3f\n", how, res->conns, res->conns > 1 ? "s" : "",
	       rate, rate / raw);
	printf("node_bench:   %zu records: all accepted (202) after %.2f s, all committed after"
	       " %.2f s, in %" PRIu64 " blocks; %zu submits (%.1f%%) sent again after"
	       " overtaking their predecessor's nonce\n", res->n, res->accepted_s,
	       res->committed_s, res->blocks, res->resent, 100.0 * res->resent / res->n);
	printf("node_bench:   node CPU (user + system, all threads) %.1f us per record, %.2f"
	       " minor page faults per record\n", 1e6 * res->cpu_s / res->n,
	       (double)res->minflt / res->n);
}

static void report(const struct result *res, size_t nres, double raw_before,
		   double raw_after, size_t msg_len)
{
	double raw = (raw_before + raw_after) / 2;

	printf("node_bench: raw Ed25519 verify: %.0f /s (mean of %.0f before and %.0f after the"
	       " node; %d signatures, %zu-byte messages: a signed USAGE payload)\n", raw,
	       raw_before, raw_after, RAW_N, msg_len);
	printf("node_bench: %d leases x %d records, in %d parts each sent another way below,"
	       " block_interval_ms 100\n", LEASES, RECORDS, PHASES);
	for (size_t i = 0; i < nres; i++)
		report_run(&res[i], raw);
}

int main(int argc, char **argv)
{
	const char *tallyd = argc > 1 ? argv[1] : "bin/tallyd";
	const size_t nusage = (size_t)LEASES * RECORDS, part = (size_t)LEASES * (RECORDS / PHASES);
	/* One POST per record on one connection and on CONNS, answered once
	 * admitted and then once received; then batches as JSON and as the
	 * binary body; last binary batches answered once received. */
	static const struct way phase[PHASES] = {
		{ 1, 0, false, false }, { CONNS, 0, false, false },
		{ 1, 0, false, true }, { CONNS, 0, false, true },
		{ 1, PER_POST_MAX, false, false }, { CONNS, PER_POST_CONNS, false, false },
		{ 1, PER_POST_MAX, true, false }, { CONNS, PER_POST_CONNS, true, false },
		{ CONNS, PER_POST_CONNS, true, true },
	};
	static struct bench bn;
	struct sigaction sa = { .sa_handler = on_signal };
	struct lease_contract probe;
	struct signed_tx *usage;
	struct result res[PHASES];
	struct quiet_report quiet;
	double raw_before, raw_after;
	int rc, port;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: node_bench [PATH-TO-TALLYD]   (default bin/tallyd)\n");
		return 2;
	}
	if (access(tallyd, X_OK))
		die("%s: %s (build it with make bin/tallyd)", tallyd, strerror(errno));
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		die("cannot initialise libcurl");
	atexit(cleanup);

	/* The baseline and the node share the machine: say what else runs. */
	quiet_probe(&quiet, NULL, 0, 0);
	quiet_print(stdout, "node_bench: ", &quiet);
	if ((rc = key_generate(&bn.node)) || (rc = key_generate(&bn.tenant)))
		die("key: %s", tally_strerror(rc));
	bn.msg_len = usage_payload_len(&bn);
	/* The baseline before the node starts and again after it stops; the
	 * figure is their mean, as other work on the machine may come and go. */
	raw_before = raw_verify_rate(bn.msg_len);

	if (!mkdtemp(g_dir))
		die("mkdtemp: %s", strerror(errno));
	g_have_dir = 1;
	port = free_port();
	snprintf(g_base, sizeof(g_base), "http://127.0.0.1:%d", port);
	make_contract(&probe, &bn.tenant, &bn.node, 0);
	make_devnet(&bn.node, &bn.tenant, (uint64_t)LEASES * probe.deposit + 1000000, port);
	start_node(tallyd);
	get_setup();
	wait_healthy();
	wait_announced(bn.node.pub);
	submitter_init(&bn.sub);

	open_leases(&bn);
	start_leases(&bn);
	usage = sign_usage(&bn);
	/* A part of the rounds each way, in nonce order. */
	for (size_t i = 0; i < PHASES; i++)
		run_usage(&bn, usage + i * part, part, i * part, &phase[i], &res[i]);

	stop_node();
	raw_after = raw_verify_rate(bn.msg_len);
	report(res, PHASES, raw_before, raw_after, bn.msg_len);

	submitter_free(&bn.sub);
	curl_easy_cleanup(g_get);
	free(g_get_buf.p);
	free_txs(usage, nusage);
	key_free(&bn.node);
	key_free(&bn.tenant);
	curl_global_cleanup();
	return 0;
}
