/* Four validators on loopback: commit latency, blocks per second, and
 * transfers and USAGE records committed per second, each against a
 * baseline measured in the same run.
 *
 * The bench makes a devnet with `tally node init --dev DIR --validators N`
 * (the same command an operator runs), funds its own sender keys in the
 * genesis, sets block_interval_ms = 100 on every node, and starts N real
 * `tallyd --no-vms` processes on free loopback ports. It does so twice in
 * one run: once with N = 1 (the baseline: the same node, the same API, the
 * same block interval, without the network and its votes) and once with
 * N = 4. Then, against each devnet:
 *
 *   idle:  PROBES transfers, one at a time, each submitted (POST /v1/tx) to
 *          the next node in turn and awaited before the next, so that the
 *          mempool is empty when each arrives;
 *   load:  SENDERS senders at once, each sending LOAD transfers one after
 *          the other (each POST answered before the next) to node
 *          (sender mod N) + 1;
 *   batched: the same again, each sender's transfers in POST /v1/txs
 *          batches of BATCH. The senders share this machine's two cores
 *          with the nodes: one POST per transfer costs them and the
 *          nodes' HTTP threads about half the machine, which a provider's
 *          own USAGE records (submitted inside tallyd by its keeper) never
 *          pay. The batched figure is the network's own rate, the one
 *          issue 14's throughput target is about; both are printed.
 *
 * A watcher thread polls node 1's GET /v1/status and notes the first time
 * it sees each height; after each phase the bench reads every transaction's
 * height (GET /v1/tx/HASH), and a transaction's commit latency is the time
 * its height was first seen minus the time its POST was sent. The watcher's
 * poll (a loopback round trip, about a millisecond) bounds the resolution.
 * Blocks per second are the heights made during the phase over its
 * duration; transfers per second, under load, the transfers over the time
 * from the first submit until the last was seen committed.
 *
 *   usage: what the network exists for: every node is a provider (its
 *          dev config announces the image "tiny", and `--no-vms` leaves
 *          its leases to the bench), a tenant opens ULEASES leases over
 *          the providers in turn, each provider starts its own, and then
 *          each provider's URECORDS records per lease, signed with its node
 *          key before the clock starts, go to its own node in POST /v1/txs
 *          batches of UBATCH, as its keeper would submit them; timed from
 *          the first submit until node 1's usage log holds them all.
 *
 * The raw Ed25519 verification baseline is measured before and after the
 * devnets, for messages as long as a signed transfer and as a signed USAGE
 * payload; each rate is compared with its own.
 *
 * Everything the bench started is stopped and its temp dir removed at the
 * end, pass or fail (also on ^C; the nodes get SIGTERM if the bench itself
 * is killed). */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "bench/bench_util.h"
#include "contracts/contract.h"
#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/errors.h"
#include "lib/chain/tx.h"

#define CHAIN "tally-net-bench"
#define MAX_NODES 4
#define SENDERS 8              /* concurrent senders under load */
#define LOAD 1000              /* transfers per sender under load: seconds of it */
#define BATCH 150              /* transfers per POST /v1/txs (64 KiB body limit) */
#define PROBES 40              /* one-at-a-time transfers with an empty mempool */
#define ULEASES 200            /* leases of the usage phase, over the providers in turn */
#define URECORDS 40            /* USAGE records per lease: ULEASES x URECORDS in all */
#define INTERVAL_S 60          /* the metering interval a dev node announces */
/* Transactions per POST /v1/txs in the usage phase, within the API's 64 KiB
 * body: a USAGE transaction is 251 bytes (502 in hex), a LEASE_OPEN with
 * its contract about 400. */
#define UBATCH 100
#define OBATCH 60
#define BLOCK_MS 100
#define RAW_N 20000
#define WAIT_S 90              /* longest wait for any one step */
#define MAX_HEIGHT 100000
#define SEC 1000000000ull
#define TENANT (SENDERS + 1)   /* keys[]: the senders, the probes' key, the tenant */
#define NKEYS (SENDERS + 2)

/* --- process state and cleanup ---------------------------------------------- */

static char g_dir[] = "/tmp/tally-net-bench-XXXXXX";
static int g_have_dir;
static char g_net[sizeof(g_dir) + 32];      /* the current devnet's dir */
static pid_t g_node[MAX_NODES];
static int g_nodes;
static int g_port;                          /* node 1's API port */
static volatile sig_atomic_t g_interrupted;

static void print_node_log(void)
{
	char path[sizeof(g_net) + 32], line[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/node-1.log", g_net);
	f = fopen(path, "r");
	if (!f)
		return;
	fprintf(stderr, "net_bench: node 1's log:\n");
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "  %s", line);
	fclose(f);
}

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "net_bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (g_have_dir)
		print_node_log();
	exit(1);
}

static void stop_nodes(void)
{
	bench_stop_children(g_node, g_nodes);
	g_nodes = 0;
}

/* atexit: runs on success and after die() alike. */
static void cleanup(void)
{
	stop_nodes();
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
	int i;

	if (g_interrupted)
		die("interrupted");
	if ((i = bench_child_exited(g_node, g_nodes, &how)) >= 0)
		die("node %d's tallyd exited (%s)", i + 1, how);
}

/* --- the devnet ------------------------------------------------------------- */

/* A base port with 2 x n free ports from it on 127.0.0.1 (API ports, then
 * the peer ports `tally node init` gives by default). */
static int free_ports(int n)
{
	for (int tries = 0; tries < 200; tries++) {
		int base = 20000 + (int)((getpid() * 7919u + tries * 104729u) % 30000u);
		int ok = 1;

		for (int p = base; ok && p < base + 2 * n; p++) {
			struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(p),
						  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
			int fd = socket(AF_INET, SOCK_STREAM, 0);

			ok = fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa));
			if (fd >= 0)
				close(fd);
		}
		if (ok)
			return base;
	}
	die("no free loopback ports");
}

/* Runs argv to its end with stdout and stderr to log; dies unless it
 * exits 0. */
static void run(char *const argv[], const char *log)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		FILE *f = fopen(log, "a");

		if (f) {
			dup2(fileno(f), STDOUT_FILENO);
			dup2(fileno(f), STDERR_FILENO);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		die("%s %s failed (see %s)", argv[0], argv[1], log);
}

static void start_node(const char *tallyd, int k)
{
	char conf[sizeof(g_net) + 32], log[sizeof(g_net) + 32];
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/node-%d/tallyd.conf", g_net, k);
	snprintf(log, sizeof(log), "%s/node-%d.log", g_net, k);
	pid = bench_spawn_tallyd(tallyd, conf, log);
	if (pid < 0)
		die("fork: %s", strerror(errno));
	g_node[g_nodes++] = pid;
}

/* --- HTTP ------------------------------------------------------------------- */

/* One keep-alive connection's handle and answer buffer; one per thread. */
struct http {
	CURL *h;
	struct bench_buf body;
	struct curl_slist *hdrs;
};

static void http_init(struct http *c)
{
	memset(c, 0, sizeof(*c));
	if (!(c->h = curl_easy_init()))
		die("cannot initialise libcurl");
	c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, bench_buf_append);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->body);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
}

static void http_free(struct http *c)
{
	curl_easy_cleanup(c->h);
	curl_slist_free_all(c->hdrs);
	free(c->body.p);
}

/* GET (body NULL) or POST body to node k's path; the HTTP status, 0 when
 * there was no answer. The answer is in c->body. */
static long http_do(struct http *c, int k, const char *path, const char *body)
{
	char url[256];
	long status = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", g_port + k - 1, path);
	c->body.len = 0;
	if (c->body.p)
		c->body.p[0] = '\0';
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	if (body) {
		curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
	} else {
		curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
	}
	if (curl_easy_perform(c->h) == CURLE_OK)
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* The integer or hex string field of a 200 answer to GET path on node k;
 * NULL/-1 when there is none (yet). */
static json_t *get_json(struct http *c, int k, const char *path)
{
	if (http_do(c, k, path, NULL) != 200)
		return NULL;
	return json_loadb(c->body.p, c->body.len, 0, NULL);
}

static int64_t get_int(struct http *c, int k, const char *path, const char *key)
{
	json_t *j = get_json(c, k, path);
	json_t *v = j ? json_object_get(j, key) : NULL;
	int64_t r = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;

	json_decref(j);
	return r;
}

/* --- transactions ----------------------------------------------------------- */

struct sent {
	char *body;                    /* {"tx":"<hex>"} */
	char hash[2 * HASH_LEN + 1];
	double submit_s;               /* when its POST was sent */
	int64_t height;                /* where it committed */
};

static uint8_t g_genesis_hash[HASH_LEN];
static size_t g_tx_len;

/* t signed by k into out: its POST body and hash; the encoded length into
 * *len when len is not NULL. */
static void sign_sent(struct tx *t, const struct tally_key *k, struct sent *out, size_t *len)
{
	uint8_t h[HASH_LEN];
	char why[WHY_MAX];

	if (bench_sign_json(t, k, g_genesis_hash, &out->body, h, len, why))
		die("%s", why);
	hex_encode(h, HASH_LEN, out->hash);
	out->height = -1;
}

static void sign_transfer(const struct tally_key *from, uint64_t nonce, const uint8_t to[PUBKEY_LEN],
			  struct sent *out)
{
	struct tx t;

	bench_tx_base(&t, CHAIN, TX_TRANSFER, from, nonce);
	memcpy(t.u.transfer.to, to, PUBKEY_LEN);
	t.u.transfer.amount = 1 + nonce;
	sign_sent(&t, from, out, &g_tx_len);
}

static void free_sent(struct sent *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].body);
	free(s);
}

static struct sent *alloc_sent(size_t n)
{
	struct sent *s = calloc(n, sizeof(*s));

	if (!s)
		die("out of memory");
	return s;
}

/* --- the height watcher ----------------------------------------------------- */

static double g_seen[MAX_HEIGHT];       /* first time node 1 showed each height */
static int64_t g_top;                   /* highest height seen */
static volatile int g_watch_stop;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void *watch(void *arg)
{
	struct http c;
	(void)arg;

	http_init(&c);
	while (!g_watch_stop) {
		int64_t h = get_int(&c, 1, "/v1/status", "height");
		double now = bench_now_s();

		pthread_mutex_lock(&g_mu);
		for (int64_t i = g_top + 1; h > 0 && i <= h && i < MAX_HEIGHT; i++)
			g_seen[i] = now;
		if (h > g_top)
			g_top = h;
		pthread_mutex_unlock(&g_mu);
		usleep(500);
	}
	http_free(&c);
	return NULL;
}

static int64_t top(void)
{
	int64_t h;

	pthread_mutex_lock(&g_mu);
	h = g_top;
	pthread_mutex_unlock(&g_mu);
	return h;
}

/* Until node 1 shows the transaction committed; sets its height. */
static void wait_committed(struct http *c, struct sent *s)
{
	char path[128];
	double end = bench_now_s() + WAIT_S;

	snprintf(path, sizeof(path), "/v1/tx/%s", s->hash);
	while ((s->height = get_int(c, 1, path, "height")) < 0) {
		check_alive();
		if (bench_now_s() > end)
			die("transaction %.16s not committed within %d s", s->hash, WAIT_S);
		usleep(2000);
	}
	/* The watcher may not have polled since. */
	while (top() < s->height) {
		check_alive();
		usleep(500);
	}
}

/* --- senders ---------------------------------------------------------------- */

struct sender {
	pthread_t th;
	int node;                      /* 1-based */
	struct sent *txs;
	size_t n, batch;               /* batch 1: POST /v1/tx each */
	int failed;                    /* HTTP status of a refusal, or 0 */
};

/* {"txs":["<hex>",...]} of txs[0..k): each body is {"tx":"<hex>"}. */
static char *batch_body(const struct sent *txs, size_t k)
{
	size_t hex = strlen(txs[0].body) - 9, len = 10 + k * (hex + 3);
	char *b = malloc(len), *p;

	if (!b)
		die("out of memory");
	p = b + sprintf(b, "{\"txs\":[");
	for (size_t i = 0; i < k; i++)
		p += sprintf(p, "%s\"%.*s\"", i ? "," : "", (int)hex, txs[i].body + 7);
	strcpy(p, "]}");
	return b;
}

/* Every answer of a POST /v1/txs is pending or held. */
static bool batch_taken(const struct http *c, size_t k)
{
	json_t *j = json_loadb(c->body.p, c->body.len, 0, NULL), *r = json_object_get(j, "results");
	bool ok = json_is_array(r) && json_array_size(r) == k;

	for (size_t i = 0; ok && i < k; i++) {
		const char *st = json_string_value(json_object_get(json_array_get(r, i), "status"));

		ok = st && (!strcmp(st, "pending") || !strcmp(st, "held"));
	}
	json_decref(j);
	return ok;
}

static void *send_all(void *arg)
{
	struct sender *s = arg;
	struct http c;

	http_init(&c);
	for (size_t i = 0; i < s->n && !s->failed; i += s->batch) {
		size_t k = s->n - i < s->batch ? s->n - i : s->batch;
		double now = bench_now_s();
		long st;

		for (size_t j = i; j < i + k; j++)
			s->txs[j].submit_s = now;
		if (s->batch == 1) {
			st = http_do(&c, s->node, "/v1/tx", s->txs[i].body);
		} else {
			char *body = batch_body(s->txs + i, k);

			st = http_do(&c, s->node, "/v1/txs", body);
			free(body);
			if (st == 200 && !batch_taken(&c, k))
				st = 409;
		}
		if (st != 200 && st != 202)
			s->failed = st ? (int)st : -1;
	}
	http_free(&c);
	return NULL;
}

/* --- one devnet's figures ---------------------------------------------------- */

struct load {
	double p50_ms, p99_ms, blocks_s, tx_s;
	int64_t blocks;
	double cpu_us, minflt;         /* all the nodes', per record (usage phase) */
	double node_cpu_us[MAX_NODES]; /* each node's, per record (usage phase) */
};

/* The CPU time (user + system) and minor page faults of all n nodes so far
 * (bench_proc_usage). */
static void nodes_usage(int n, double *cpu_s, uint64_t *minflt, double *node_s)
{
	*cpu_s = 0;
	*minflt = 0;
	for (int k = 0; k < n; k++) {
		double c;
		uint64_t f;

		if (bench_proc_usage(g_node[k], &c, &f))
			die("cannot read /proc/%d/stat (node %d)", (int)g_node[k], k + 1);
		*cpu_s += c;
		*minflt += f;
		node_s[k] = c;
	}
}

/* With NET_BENCH_PERF_CTL=FIFO, writes cmd ("enable" or "disable") to that
 * fifo: `perf record -D -1 --control fifo:FIFO` then samples the
 * four-validator usage phase alone (bench/README.md). */
static void perf_ctl(int n, const char *cmd)
{
	const char *path = getenv("NET_BENCH_PERF_CTL");
	FILE *f;

	if (n != MAX_NODES || !path || !*path)
		return;
	if (!(f = fopen(path, "w")))
		die("NET_BENCH_PERF_CTL %s: %s", path, strerror(errno));
	fprintf(f, "%s\n", cmd);
	fclose(f);
}

struct figures {
	double idle_p50_ms, idle_p99_ms, idle_blocks_s;
	struct load load, batched, usage;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of n sorted values. */
static double quantile(const double *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n + 0.999999);

	return v[(i ? i : 1) - 1];
}

static void latencies(struct sent *txs, size_t n, double *p50, double *p99)
{
	double *l = malloc(n * sizeof(*l));

	if (!l)
		die("out of memory");
	pthread_mutex_lock(&g_mu);
	for (size_t i = 0; i < n; i++)
		l[i] = 1000 * (g_seen[txs[i].height] - txs[i].submit_s);
	pthread_mutex_unlock(&g_mu);
	qsort(l, n, sizeof(*l), cmp_double);
	*p50 = quantile(l, n, 0.50);
	*p99 = quantile(l, n, 0.99);
	free(l);
}

static void make_devnet(const char *tally, int n, struct tally_key *keys, int nkeys)
{
	char net[sizeof(g_net)], log[sizeof(g_net) + 16], nv[8], listen[32];
	char fund[NKEYS][2 * PUBKEY_LEN + 16];
	char *argv[32 + 2 * NKEYS];
	int a = 0;

	snprintf(g_net, sizeof(g_net), "%s/net-%d", g_dir, n);
	snprintf(net, sizeof(net), "%s", g_net);
	snprintf(log, sizeof(log), "%s.init.log", g_net);
	snprintf(nv, sizeof(nv), "%d", n);
	g_port = free_ports(n);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", g_port);
	argv[a++] = (char *)tally;
	argv[a++] = "node";
	argv[a++] = "init";
	argv[a++] = "--dev";
	argv[a++] = net;
	argv[a++] = "--validators";
	argv[a++] = nv;
	argv[a++] = "--chain-id";
	argv[a++] = CHAIN;
	argv[a++] = "--listen";
	argv[a++] = listen;
	for (int i = 0; i < nkeys; i++) {
		char hex[2 * PUBKEY_LEN + 1];

		hex_encode(keys[i].pub, PUBKEY_LEN, hex);
		snprintf(fund[i], sizeof(fund[i]), "%s:1000000000", hex);
		argv[a++] = "--fund";
		argv[a++] = fund[i];
	}
	argv[a] = NULL;
	run(argv, log);
	for (int k = 1; k <= n; k++) {
		char conf[sizeof(g_net) + 32];
		FILE *f;

		snprintf(conf, sizeof(conf), "%s/node-%d/tallyd.conf", g_net, k);
		if (!(f = fopen(conf, "a")))
			die("%s: %s", conf, strerror(errno));
		/* Every node a provider of the image "tiny", announced although
		 * it runs no VM: the bench starts and meters its leases. */
		fprintf(f, "[node]\nblock_interval_ms = %d\n[api]\nrequests_per_s = 0\n"
			"[provider]\nannounce = yes\n[image.tiny]\npath = %s/tiny.img\n",
			BLOCK_MS, g_net);
		fclose(f);
	}
	snprintf(log, sizeof(log), "%s/tiny.img", g_net);
	FILE *img = fopen(log, "w");
	if (!img)
		die("%s: %s", log, strerror(errno));
	fclose(img);
}

/* Until every node answers and, in a network, is connected to all others. */
static void wait_ready(struct http *c, int n)
{
	double end = bench_now_s() + WAIT_S;

	for (int k = 1; k <= n; k++) {
		for (;;) {
			json_t *j = get_json(c, k, "/v1/status");
			json_t *conn = json_object_get(json_object_get(j, "peers"), "connected");
			int ok = j && (n == 1 || (int)json_array_size(conn) == n - 1);

			json_decref(j);
			if (ok)
				break;
			check_alive();
			if (bench_now_s() > end)
				die("node %d not ready within %d s", k, WAIT_S);
			usleep(50000);
		}
	}
	json_t *j = get_json(c, 1, "/v1/status");
	const char *gh = json_string_value(json_object_get(j, "genesis_hash"));

	if (!gh || hex_decode(gh, g_genesis_hash, HASH_LEN))
		die("no genesis_hash in node 1's status");
	json_decref(j);
}

/* GET path's non-negative integer key on node k; dies after WAIT_S without one. */
static uint64_t get_u64(struct http *c, int k, const char *path, const char *key)
{
	double end = bench_now_s() + WAIT_S;
	int64_t v;

	while ((v = get_int(c, k, path, key)) < 0) {
		check_alive();
		if (bench_now_s() > end)
			die("GET %s on node %d: no \"%s\" within %d s", path, k, key, WAIT_S);
		usleep(20000);
	}
	return (uint64_t)v;
}

/* The provider keys of the devnet's n nodes, each one's announcement
 * committed, and each one's next nonce. */
static void load_providers(struct http *c, int n, struct tally_key *prov, uint64_t *nonce)
{
	for (int k = 1; k <= n; k++) {
		char path[sizeof(g_net) + 128], hex[2 * PUBKEY_LEN + 1];
		double end = bench_now_s() + WAIT_S;
		json_t *j;

		snprintf(path, sizeof(path), "%s/node-%d/node.pem", g_net, k);
		if (key_load_pem(&prov[k - 1], path))
			die("cannot read node %d's key %s", k, path);
		hex_encode(prov[k - 1].pub, PUBKEY_LEN, hex);
		snprintf(path, sizeof(path), "/v1/providers/%s", hex);
		while (!(j = get_json(c, 1, path)) || json_is_true(json_object_get(j, "withdrawn"))) {
			json_decref(j);
			check_alive();
			if (bench_now_s() > end)
				die("node %d's provider announcement not committed within %d s", k,
				    WAIT_S);
			usleep(50000);
		}
		json_decref(j);
		snprintf(path, sizeof(path), "/v1/accounts/%s", hex);
		nonce[k - 1] = get_u64(c, 1, path, "nonce");
	}
}

/* Sends txs[0..n) in order to node k in batches, then waits until each is
 * committed. */
static void send_committed(struct http *c, int k, struct sent *txs, size_t n, const char *what)
{
	struct sender s = { .node = k, .txs = txs, .n = n, .batch = OBATCH };

	send_all(&s);
	if (s.failed)
		die("%s: refused (HTTP %d: %s)", what, s.failed, c->body.p ? c->body.p : "");
	for (size_t i = 0; i < n; i++)
		wait_committed(c, &txs[i]);
}

static size_t g_usage_len;             /* of a signed USAGE transaction */

/* The usage phase (see the top): ULEASES leases over the n providers,
 * URECORDS records each, submitted by each provider to its own node. */
static void usage_phase(int n, const struct tally_key *tenant, struct load *f)
{
	struct http c;
	struct tally_key prov[MAX_NODES];
	uint64_t nonce[MAX_NODES], next[ULEASES], u0, total = (uint64_t)ULEASES * URECORDS;
	uint8_t id[ULEASES][LEASE_ID_LEN], prev[ULEASES][HASH_LEN];
	struct sender snd[MAX_NODES];
	struct sent *opens = alloc_sent(ULEASES), *starts = alloc_sent(ULEASES);
	struct tx t;
	int64_t h0;
	double t0, t1, cpu0, cpu1, node0[MAX_NODES], node1[MAX_NODES];
	uint64_t flt0, flt1;

	http_init(&c);
	load_providers(&c, n, prov, nonce);
	for (size_t i = 0; i < ULEASES; i++) {
		bench_tx_base(&t, CHAIN, TX_LEASE_OPEN, tenant, i);
		if (bench_lease_contract(&t.u.open, CHAIN, tenant->pub, prov[i % (size_t)n].pub, i,
					 (uint64_t)time(NULL) + 3600, URECORDS, INTERVAL_S))
			die("the contract's maximum charge overflows");
		sign_sent(&t, tenant, &opens[i], NULL);
		if (hex_decode(opens[i].hash, id[i], LEASE_ID_LEN))
			die("bad hash");
	}
	send_committed(&c, 1, opens, ULEASES, "LEASE_OPEN");
	for (size_t i = 0; i < ULEASES; i++) {
		size_t k = i % (size_t)n;

		bench_tx_base(&t, CHAIN, TX_LEASE_START, &prov[k], nonce[k]++);
		memcpy(t.u.start.lease_id, id[i], LEASE_ID_LEN);
		sign_sent(&t, &prov[k], &starts[i], NULL);
	}
	send_committed(&c, 1, starts, ULEASES, "LEASE_START");
	for (size_t i = 0; i < ULEASES; i++) {
		char path[128];

		snprintf(path, sizeof(path), "/v1/leases/%s", opens[i].hash);
		next[i] = get_u64(&c, 1, path, "started_ns");
	}

	/* Each provider's records, round r of its leases before round r + 1
	 * (as the meters of concurrent leases deliver them), its nonces in
	 * that order. */
	for (int k = 0; k < n; k++) {
		size_t mine = (ULEASES - (size_t)k + (size_t)n - 1) / (size_t)n, j = 0;

		snd[k] = (struct sender){ .node = k + 1, .n = mine * URECORDS, .batch = UBATCH };
		snd[k].txs = alloc_sent(snd[k].n);
		for (size_t r = 0; r < URECORDS; r++)
			for (size_t i = (size_t)k; i < ULEASES; i += (size_t)n) {
				struct sent *s = &snd[k].txs[j++];

				bench_tx_base(&t, CHAIN, TX_USAGE, &prov[k], nonce[k]++);
				bench_usage_record(&t.u.usage, id[i], r, prev[i], next[i], i);
				next[i] = t.u.usage.end_ns;
				sign_sent(&t, &prov[k], s, &g_usage_len);
				if (hex_decode(s->hash, prev[i], HASH_LEN))
					die("bad hash");
			}
	}

	u0 = get_u64(&c, 1, "/v1/status", "usage_size");
	h0 = top();
	perf_ctl(n, "enable");
	nodes_usage(n, &cpu0, &flt0, node0);
	t0 = bench_now_s();
	for (int k = 0; k < n; k++)
		if (pthread_create(&snd[k].th, NULL, send_all, &snd[k]))
			die("pthread_create failed");
	for (int k = 0; k < n; k++)
		pthread_join(snd[k].th, NULL);
	for (int k = 0; k < n; k++)
		if (snd[k].failed)
			die("provider %d: a USAGE record was refused (HTTP %d)", k + 1, snd[k].failed);
	for (double end = bench_now_s() + WAIT_S;
	     get_u64(&c, 1, "/v1/status", "usage_size") < u0 + total; usleep(1000)) {
		check_alive();
		if (bench_now_s() > end)
			die("the usage records were not all committed within %d s", WAIT_S);
	}
	t1 = bench_now_s();
	nodes_usage(n, &cpu1, &flt1, node1);
	perf_ctl(n, "disable");
	for (int k = 0; k < n; k++)
		f->node_cpu_us[k] = 1e6 * (node1[k] - node0[k]) / (double)total;
	f->blocks = top() - h0;
	f->blocks_s = (double)f->blocks / (t1 - t0);
	f->tx_s = (double)total / (t1 - t0);
	f->p50_ms = f->p99_ms = 0;
	f->cpu_us = 1e6 * (cpu1 - cpu0) / (double)total;
	f->minflt = (double)(flt1 - flt0) / (double)total;

	for (int k = 0; k < n; k++) {
		free_sent(snd[k].txs, snd[k].n);
		key_free(&prov[k]);
	}
	free_sent(opens, ULEASES);
	free_sent(starts, ULEASES);
	http_free(&c);
}

/* SENDERS senders at once against a running devnet of n nodes, each LOAD
 * transfers from its key starting at nonce0, batch to a POST; all signed
 * before the clock starts. */
static void load_phase(int n, struct tally_key *keys, uint64_t nonce0, size_t batch,
		       struct load *f)
{
	struct http c;
	struct sender snd[SENDERS];
	const uint8_t *to = keys[SENDERS].pub;
	size_t total = (size_t)SENDERS * LOAD;
	struct sent *all;
	int64_t h0, last = 0;
	double t0, t1;

	for (int s = 0; s < SENDERS; s++) {
		snd[s] = (struct sender){ .node = s % n + 1, .n = LOAD, .batch = batch };
		if (!(snd[s].txs = calloc(LOAD, sizeof(struct sent))))
			die("out of memory");
		for (size_t i = 0; i < LOAD; i++)
			sign_transfer(&keys[s], nonce0 + i, to, &snd[s].txs[i]);
	}
	http_init(&c);
	h0 = top();
	t0 = bench_now_s();
	for (int s = 0; s < SENDERS; s++)
		if (pthread_create(&snd[s].th, NULL, send_all, &snd[s]))
			die("pthread_create failed");
	for (int s = 0; s < SENDERS; s++)
		pthread_join(snd[s].th, NULL);
	for (int s = 0; s < SENDERS; s++)
		if (snd[s].failed)
			die("sender %d: a transfer was refused (HTTP %d)", s, snd[s].failed);
	for (int s = 0; s < SENDERS; s++) {
		wait_committed(&c, &snd[s].txs[LOAD - 1]);
		if (snd[s].txs[LOAD - 1].height > last)
			last = snd[s].txs[LOAD - 1].height;
	}
	pthread_mutex_lock(&g_mu);
	t1 = g_seen[last];
	pthread_mutex_unlock(&g_mu);
	f->blocks = last - h0;
	f->blocks_s = (double)(last - h0) / (t1 - t0);
	f->tx_s = (double)total / (t1 - t0);

	/* Each transfer's height, then the latencies of all of them. */
	if (!(all = malloc(total * sizeof(*all))))
		die("out of memory");
	for (int s = 0; s < SENDERS; s++)
		for (size_t i = 0; i < LOAD; i++) {
			wait_committed(&c, &snd[s].txs[i]);
			all[(size_t)s * LOAD + i] = snd[s].txs[i];
		}
	latencies(all, total, &f->p50_ms, &f->p99_ms);
	free(all);
	for (int s = 0; s < SENDERS; s++) {
		for (size_t i = 0; i < LOAD; i++)
			free(snd[s].txs[i].body);
		free(snd[s].txs);
	}
	http_free(&c);
}

static void run_devnet(const char *tally, const char *tallyd, int n, struct tally_key *keys,
		       struct figures *f)
{
	struct http c;
	pthread_t watcher;
	struct sent probes[PROBES];
	double t0, t1;
	int64_t h0;

	memset(g_seen, 0, sizeof(g_seen));
	g_top = 0;
	g_watch_stop = 0;
	make_devnet(tally, n, keys, NKEYS);
	for (int k = 1; k <= n; k++)
		start_node(tallyd, k);
	http_init(&c);
	wait_ready(&c, n);
	if (pthread_create(&watcher, NULL, watch, NULL))
		die("pthread_create failed");

	/* Idle: one transfer at a time from the last key, to each node in turn. */
	h0 = top();
	t0 = bench_now_s();
	for (size_t i = 0; i < PROBES; i++) {
		long st;

		sign_transfer(&keys[SENDERS], i, keys[0].pub, &probes[i]);
		probes[i].submit_s = bench_now_s();
		st = http_do(&c, (int)(i % (size_t)n) + 1, "/v1/tx", probes[i].body);
		if (st != 200 && st != 202)
			die("POST /v1/tx: %ld %s", st, c.body.p ? c.body.p : "");
		wait_committed(&c, &probes[i]);
		/* A pause of two block intervals: the next arrives at an idle chain. */
		usleep(2 * BLOCK_MS * 1000);
	}
	t1 = bench_now_s();
	latencies(probes, PROBES, &f->idle_p50_ms, &f->idle_p99_ms);
	f->idle_blocks_s = (double)(top() - h0) / (t1 - t0);

	/* Load: every sender at once, one POST per transfer, then in batches. */
	load_phase(n, keys, 0, 1, &f->load);
	load_phase(n, keys, LOAD, BATCH, &f->batched);
	usage_phase(n, &keys[TENANT], &f->usage);

	g_watch_stop = 1;
	pthread_join(watcher, NULL);
	for (size_t i = 0; i < PROBES; i++)
		free(probes[i].body);
	http_free(&c);
	stop_nodes();
}

/* --- report ----------------------------------------------------------------- */

static double raw_verify_rate(size_t msg_len)
{
	enum raw_verify_step failed;
	double rate;
	int rc = bench_raw_verify_rate(RAW_N, msg_len, RAW_N / 10, &rate, &failed);

	if (rc)
		die("%s", bench_raw_verify_failure(failed, rc));
	return rate;
}

static void line(const char *what, double v, double base, const char *unit)
{
	printf("  %-34s %9.1f %-6s (1 validator: %8.1f)  ratio %.2f\n", what, v, unit, base,
	       base > 0 ? v / base : 0.0);
}

static void report_load(const char *title, const char *how, size_t batch,
			const struct load *four, const struct load *one)
{
	printf("%s (%d senders x %d transfers at once, %s, %zu a request; sender i to node"
	       " i mod N + 1; %" PRId64 " blocks):\n", title, SENDERS, LOAD, how, batch,
	       four->blocks);
	line("commit latency p50", four->p50_ms, one->p50_ms, "ms");
	line("commit latency p99", four->p99_ms, one->p99_ms, "ms");
	line("blocks per second", four->blocks_s, one->blocks_s, "/s");
	line("transfers committed per second", four->tx_s, one->tx_s, "/s");
}

int main(int argc, char **argv)
{
	struct tally_key keys[NKEYS];
	struct figures one, four;
	double raw_before, raw_after, raw, uraw_before, uraw_after, uraw;

	if (argc != 3) {
		fprintf(stderr, "usage: net_bench PATH/TO/tally PATH/TO/tallyd\n"
				"Four validators on loopback against one, and transfers/s against\n"
				"raw Ed25519 verification (bench/README.md).\n");
		return 2;
	}
	if (!mkdtemp(g_dir))
		die("mkdtemp: %s", strerror(errno));
	g_have_dir = 1;
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (int i = 0; i < NKEYS; i++)
		if (key_generate(&keys[i]))
			die("key_generate failed");

	/* The lengths of a signed transfer and a signed USAGE transaction (each
	 * of a fixed size) from one of each. */
	static const uint8_t zero[HASH_LEN];
	struct sent probe;
	struct tx t;

	sign_transfer(&keys[0], 0, keys[1].pub, &probe);
	free(probe.body);
	bench_tx_base(&t, CHAIN, TX_USAGE, &keys[0], 0);
	bench_usage_record(&t.u.usage, zero, 0, zero, (uint64_t)time(NULL) * SEC, 0);
	sign_sent(&t, &keys[0], &probe, &g_usage_len);
	free(probe.body);
	raw_before = raw_verify_rate(g_tx_len - SIG_LEN);
	uraw_before = raw_verify_rate(g_usage_len - SIG_LEN);
	run_devnet(argv[1], argv[2], 1, keys, &one);
	run_devnet(argv[1], argv[2], 4, keys, &four);
	raw_after = raw_verify_rate(g_tx_len - SIG_LEN);
	uraw_after = raw_verify_rate(g_usage_len - SIG_LEN);
	raw = (raw_before + raw_after) / 2;
	uraw = (uraw_before + uraw_after) / 2;

	printf("net_bench: 4 validators (real tallyd --no-vms on loopback, block_interval_ms = %d)"
	       " against 1, same run\n", BLOCK_MS);
	printf("empty mempool (%d transfers one at a time, each to the next node):\n", PROBES);
	line("commit latency p50", four.idle_p50_ms, one.idle_p50_ms, "ms");
	line("commit latency p99", four.idle_p99_ms, one.idle_p99_ms, "ms");
	line("blocks per second", four.idle_blocks_s, one.idle_blocks_s, "/s");
	report_load("under load", "one POST /v1/tx each", 1, &four.load, &one.load);
	report_load("under load, batched", "POST /v1/txs", BATCH, &four.batched, &one.batched);
	printf("usage records (%d leases over the providers, %d records each, each provider"
	       " to its own node, POST /v1/txs, %d a request; %" PRId64 " blocks):\n", ULEASES,
	       URECORDS, UBATCH, four.usage.blocks);
	line("blocks per second", four.usage.blocks_s, one.usage.blocks_s, "/s");
	line("USAGE records committed per second", four.usage.tx_s, one.usage.tx_s, "/s");
	line("CPU per record, all nodes", four.usage.cpu_us,
	     one.usage.cpu_us, "us");
	line("page faults per 1000 records, all", 1000 * four.usage.minflt,
	     1000 * one.usage.minflt, "");
	printf("raw Ed25519 verification (one core): %.0f/s for %zu-byte messages (a transfer;"
	       " before %.0f, after %.0f), %.0f/s for %zu-byte messages (a USAGE record; before"
	       " %.0f, after %.0f)\n", raw, g_tx_len - SIG_LEN, raw_before, raw_after, uraw,
	       g_usage_len - SIG_LEN, uraw_before, uraw_after);
	printf("  USAGE records committed by 4 validators / raw verification: ratio %.3f"
	       " (target >= 0.25); 1 validator: %.3f\n", four.usage.tx_s / uraw,
	       one.usage.tx_s / uraw);
	printf("  CPU per USAGE record, per node: %.1f us with 4 validators, %.1f us alone;"
	       " one raw verification %.1f us\n", four.usage.cpu_us / MAX_NODES,
	       one.usage.cpu_us, 1e6 / uraw);
	printf("  CPU per USAGE record of each of the 4 nodes:");
	for (int k = 0; k < MAX_NODES; k++)
		printf(" %.1f", four.usage.node_cpu_us[k]);
	printf(" us\n");
	printf("  transfers committed by 4 validators / raw verification: ratio %.3f batched,"
	       " %.3f one POST each\n", four.batched.tx_s / raw, four.load.tx_s / raw);
	printf("  transfers committed by 1 validator  / raw verification: ratio %.3f batched,"
	       " %.3f one POST each\n", one.batched.tx_s / raw, one.load.tx_s / raw);
	printf("targets (issue 14, printed, not enforced): p50 commit latency <= 50 ms"
	       " (measured %.1f ms idle, %.1f ms under load, %.1f ms batched)\n",
	       four.idle_p50_ms, four.load.p50_ms, four.batched.p50_ms);
	for (int i = 0; i < NKEYS; i++)
		key_free(&keys[i]);
	curl_global_cleanup();
	return 0;
}
