/* Writes the seed corpus of the fuzz targets (`make fuzz-seeds`):
 *
 *   seeds DIR      DIR/NAME/SEED for each target NAME
 *
 * from the test vectors of docs/FORMATS.md (tests/vectors/examples.h), the
 * example contracts of contracts/examples/, and the fixed chain of
 * tests/support/fixchain.h, so the fuzzers start from inputs that get past
 * every decoder's first checks. Seeds are deterministic; files whose name
 * starts with "regress-" (crash inputs kept after a fix) are left alone. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/consensus/msg.h"
#include "daemon/net/wire.h"
#include "lib/chain/chainfile.h"
#include "lib/chain/request.h"
#include "tests/support/fixchain.h"
#include "tests/vectors/examples.h"

static const char *root;
static unsigned written;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz-seeds: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void seed(const char *target, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) && errno != EEXIST)
		die("mkdir %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f))
		die("cannot write %s", path);
	written++;
}

static void seed_text(const char *target, const char *name, const char *text)
{
	seed(target, name, text, strlen(text));
}

static void seed_enc(const char *target, const char *name, struct enc *e)
{
	if (enc_error(e))
		die("%s/%s: encoding failed", target, name);
	seed(target, name, e->buf, e->len);
	enc_free(e);
}

static const struct example_vector *vector(const struct examples *x, const char *name)
{
	for (size_t i = 0; i < x->n; i++)
		if (!strcmp(x->v[i].name, name))
			return &x->v[i];
	die("no vector %s", name);
	return NULL;
}

static void seed_vector(const struct examples *x, const char *target, const char *name)
{
	const struct example_vector *v = vector(x, name);

	seed(target, name, v->bytes, v->len);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0)
		die("cannot read %s", path);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("cannot read %s", path);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Every transaction of the fixed chain, by kind, and the kinds it lacks
 * (UNSTAKE, EVIDENCE) built here. */
static void seed_txs(const struct examples *x, const struct fixchain *fx)
{
	char name[64];
	unsigned count[16] = { 0 };
	struct tx *t = calloc(1, sizeof(*t));

	seed_vector(x, "tx", "lease_open.tx");
	seed_vector(x, "tx", "lease_start.tx");
	seed_vector(x, "tx", "usage.tx");
	for (size_t i = 0; i < fx->c.nblocks; i++) {
		const struct block *b = &fx->c.blocks[i];

		for (size_t j = 0; j < b->ntx; j++) {
			if (tx_decode(t, b->txs[j].bytes, b->txs[j].len))
				die("block %zu tx %zu does not decode", i + 1, j);
			snprintf(name, sizeof(name), "fix-%s-%u", tx_kind_name(t->kind),
				 count[t->kind]++);
			seed("tx", name, b->txs[j].bytes, b->txs[j].len);
		}
	}

	struct enc e;
	memset(t, 0, sizeof(*t));
	t->version = TX_VERSION;
	strcpy(t->chain_id, EXAMPLE_CHAIN);
	memcpy(t->signer, x->provider.pub, PUBKEY_LEN);
	t->nonce = 2;
	t->kind = TX_UNSTAKE;
	t->u.stake.amount = 10;
	if (tx_sign(t, &x->provider, x->genesis_hash))
		die("signing");
	enc_init(&e);
	tx_encode(&e, t);
	seed_enc("tx", "unstake", &e);

	/* Evidence: two precommits of one validator for one (height, round). */
	struct vote v = { .type = VOTE_PRECOMMIT, .height = 7, .round = 1 };
	t->kind = TX_EVIDENCE;
	t->nonce = 3;
	memset(v.block_id, 0xaa, HASH_LEN);
	enc_init(&e);
	vote_encode(&e, &v);
	memcpy(t->u.evidence.vote_a, e.buf, e.len);
	t->u.evidence.vote_a_len = (uint32_t)e.len;
	enc_free(&e);
	memset(v.block_id, 0xbb, HASH_LEN);
	enc_init(&e);
	vote_encode(&e, &v);
	memcpy(t->u.evidence.vote_b, e.buf, e.len);
	t->u.evidence.vote_b_len = (uint32_t)e.len;
	enc_free(&e);
	if (tx_sign(t, &x->provider, x->genesis_hash))
		die("signing");
	enc_init(&e);
	tx_encode(&e, t);
	seed_enc("tx", "evidence", &e);
	free(t);
}

static void seed_blocks(const struct examples *x, const struct fixchain *fx)
{
	char name[64];
	struct enc e;

	seed_vector(x, "block", "block1");
	seed_vector(x, "header", "block1.header");
	seed_vector(x, "cert", "block1.cert");
	seed_vector(x, "vote", "block1.precommit");
	for (size_t i = 0; i < fx->c.nblocks; i++) {
		struct enc c;
		snprintf(name, sizeof(name), "fix-%zu", i + 1);
		fixchain_encode_block(fx, i, &e, &c);
		seed_enc("block", name, &e);
		seed_enc("cert", name, &c);
		enc_init(&e);
		header_encode(&e, &fx->c.blocks[i].header);
		seed_enc("header", name, &e);
		if (fx->c.next_vals[i]) {
			enc_init(&e);
			valset_encode(&e, fx->c.next_vals[i]);
			seed_enc("valset", name, &e);
		}
	}
	struct vote v = { .type = VOTE_PREVOTE, .height = 1, .round = 3 };
	enc_init(&e);
	vote_encode(&e, &v);
	seed_enc("vote", "prevote-nil", &e);
	enc_init(&e);
	valset_encode(&e, &x->genesis.validators);
	seed_enc("valset", "example", &e);
}

static void seed_contracts(const struct examples *x, const char *srcdir)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	seed_vector(x, "contract", "contract");
	seed_vector(x, "usage", "usage.record");
	char *json = contract_to_json(&x->contract);
	if (!json)
		die("the example contract has no JSON");
	seed_text("contract_json", "example", json);
	free(json);
	snprintf(path, sizeof(path), "%s/contracts/examples", srcdir);
	if (!(d = opendir(path)))
		die("cannot list %s", path);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/contracts/examples/%s", srcdir, de->d_name);
		char *text = read_file(path);
		seed_text("contract_json", de->d_name, text);
		free(text);
	}
	closedir(d);
}

static void seed_chainfile(struct fixchain *fx)
{
	char path[4096], why[WHY_MAX];
	struct chainfile f;
	struct enc e;

	snprintf(path, sizeof(path), "%s/chainfile", root);
	if (mkdir(path, 0755) && errno != EEXIST)
		die("mkdir %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/chainfile/fixchain", root);
	cb_write_file(&fx->c, path);
	written++;
	chainfile_init(&f);
	if (chainfile_load(&f, path, why))
		die("%s: %s", path, why);
	for (size_t i = 0; i < f.nleases; i++) {
		char name[32];

		snprintf(name, sizeof(name), "fix-%zu", i);
		enc_init(&e);
		lease_encode_to(&e, &f.leases[i].lease);
		seed_enc("lease", name, &e);
	}
	chainfile_free(&f);
	seed_text("genesis", "fixchain.json", fx->c.genesis_json);
}

static void seed_genesis(const struct examples *x)
{
	char *json = genesis_to_json(&x->genesis);

	if (!json)
		die("the example genesis has no JSON");
	seed_text("genesis", "example.json", json);
	free(json);
}

static void seed_config(void)
{
	seed_text("config", "devnet.conf",
		  "# tallyd configuration written by 'tally node init --dev'\n"
		  "[node]\ndata_dir = /tmp/dev/data\nkey = /tmp/dev/node.pem\n"
		  "genesis = /tmp/dev/genesis.json\nlisten = 127.0.0.1:7654\nlog_level = info\n"
		  "\n[metering]\ninterval_s = 5\n"
		  "\n[libvirt]\nuri = qemu:///system\ndomain_type = qemu\nnetwork = none\n"
		  "state_dir = /tmp/dev/vms\novercommit_cpu = 2.0\novercommit_mem = 1.0\n"
		  "\n[prices]\nvcpu_second = 20\nmem_gib_second = 5\ngpu_second = 1000\n"
		  "\n[image.tiny]\nkernel = /srv/guest/vmlinuz\ninitrd = /srv/guest/initrd.img\n"
		  "cmdline = console=ttyS0 tally.burn=50\nmin_memory_mib = 64\n");
	seed_text("config", "full.conf",
		  "[node]\nlisten = [::1]:7654\nlog = syslog\nblock_interval_ms = 500\n"
		  "[api]\ntls_cert = /etc/tally/api.crt\ntls_key = /etc/tally/api.key\n"
		  "max_connections = 512\nmax_connections_per_ip = 16\ntimeout_s = 10\n"
		  "requests_per_s = 50\nrequest_burst = 100\n"
		  "[metering]\ninterval_s = 60\npin_dir = /sys/fs/bpf/tally\n"
		  "[libvirt]\nname_prefix = t-\narchive_dir = /var/lib/tally/archive\n"
		  "[image.debian-12]\npath = /srv/images/debian-12.qcow2\nformat = qcow2\n"
		  "gpu_classes = nvidia-a100,nvidia-l4\ncloud_init = yes\n"
		  "[gpu.0000:65:00.0]\nclass = nvidia-a100\n");
}

static void seed_json_u64(void)
{
	static const char *const v[] = {
		"0", "42", "9223372036854775807", "\"9223372036854775808\"",
		"\"18446744073709551615\"", "\"18446744073709551616\"", "-1", "\"01\"",
		"1.5", "\"\"", "null",
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char name[16];
		snprintf(name, sizeof(name), "v%zu", i);
		seed_text("json_u64", name, v[i]);
	}
}

/* A signed private read as `tally` makes it, at the fuzz target's fixed
 * clock (EXAMPLE_NOW_S) and for the example chain. */
static void seed_auth(const struct examples *x, const uint8_t lease[HASH_LEN])
{
	char path[128], msg[1024], ts[32], key[2 * PUBKEY_LEN + 1], sig_hex[2 * SIG_LEN + 1];
	char lease_hex[2 * HASH_LEN + 1], *text = NULL;
	const char *nonce = "00112233445566778899aabbccddeeff";
	uint8_t sig[SIG_LEN];

	hex_encode(lease, HASH_LEN, lease_hex);
	snprintf(path, sizeof(path), "/v1/leases/%s/private", lease_hex);
	snprintf(ts, sizeof(ts), "%llu", (unsigned long long)EXAMPLE_NOW_S);
	if (request_message(msg, sizeof(msg), "GET", path, ts, nonce) ||
	    sig_sign(&x->tenant, SIG_REQUEST, x->genesis_hash, msg, strlen(msg), sig))
		die("signing a request");
	hex_encode(x->tenant.pub, PUBKEY_LEN, key);
	hex_encode(sig, SIG_LEN, sig_hex);
	if (asprintf(&text, "GET\n%s\nX-Tally-Key: %s\nX-Tally-Timestamp: %s\n"
		     "X-Tally-Nonce: %s\nX-Tally-Signature: %s\nAccept: */*\n",
		     path, key, ts, nonce, sig_hex) < 0)
		die("out of memory");
	seed_text("auth", "signed", text);
	free(text);
	seed_text("auth", "unsigned", "GET\n/v1/leases\nAccept: */*\n");
}

/* Raw HTTP requests for every route, with the fixed chain's ids. */
static void seed_http(const struct fixchain *fx)
{
	char lease[2 * HASH_LEN + 1], tx[2 * HASH_LEN + 1], acct[2 * PUBKEY_LEN + 1];
	char req[16384], name[32];
	int i = 0;

	hex_encode(fx->lease, HASH_LEN, lease);
	hex_encode(fx->usage[0], HASH_LEN, tx);
	hex_encode(fx->c.key[CB_TENANT].pub, PUBKEY_LEN, acct);
	const char *gets[] = {
		"/healthz", "/metrics", "/v1/status", "/v1/genesis", "/v1/validators",
		"/v1/blocks?from=1&to=5", "/v1/blocks/3", "/v1/leases",
		"/v1/leases?state=running", "/v1/node/vms",
		"/v1/proofs/inclusion?index=0&size=2", "/v1/proofs/consistency?old=1&new=2",
		"/v1/no/such/path", "//v1//status/", "/v1/blocks/01",
	};
	for (size_t k = 0; k < sizeof(gets) / sizeof(gets[0]); k++) {
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", gets[k]);
		snprintf(name, sizeof(name), "get-%02d", i++);
		seed_text("http", name, req);
	}
	snprintf(req, sizeof(req), "GET /v1/accounts/%s HTTP/1.1\r\nHost: x\r\n\r\n", acct);
	seed_text("http", "account", req);
	snprintf(req, sizeof(req), "GET /v1/leases/%s HTTP/1.1\r\nHost: x\r\n\r\n"
		 "GET /v1/leases/%s/usage HTTP/1.1\r\nHost: x\r\n\r\n", lease, lease);
	seed_text("http", "lease-pipelined", req);
	snprintf(req, sizeof(req), "GET /v1/leases?tenant=%s&provider=%s HTTP/1.1\r\n"
		 "Host: x\r\n\r\n", acct, acct);
	seed_text("http", "leases-filter", req);
	snprintf(req, sizeof(req), "GET /v1/tx/%s HTTP/1.1\r\nHost: x\r\n\r\n"
		 "GET /v1/tx/%s/status HTTP/1.1\r\nHost: x\r\n\r\n", tx, tx);
	seed_text("http", "tx", req);
	snprintf(req, sizeof(req), "GET /v1/leases/%s/private HTTP/1.1\r\nHost: x\r\n"
		 "X-Tally-Key: %s\r\nX-Tally-Timestamp: 1700000000\r\n"
		 "X-Tally-Nonce: 00112233445566778899aabbccddeeff\r\nX-Tally-Signature: %0128d\r\n"
		 "\r\n", lease, acct, 0);
	seed_text("http", "private", req);

	/* A transaction the node has committed already, and a body that is
	 * not one. */
	const struct block_tx *bt = &fx->c.blocks[0].txs[1];
	char *hex = malloc(2 * bt->len + 1), body[10000];
	hex_encode(bt->bytes, bt->len, hex);
	snprintf(body, sizeof(body), "{\"tx\":\"%s\"}", hex);
	free(hex);
	snprintf(req, sizeof(req), "POST /v1/tx HTTP/1.1\r\nHost: x\r\nContent-Type: "
		 "application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
	seed_text("http", "post-tx", req);
	snprintf(req, sizeof(req), "POST /v1/tx HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
		 "chunked\r\n\r\n5\r\n{\"tx\"\r\n5\r\n:\"00\"\r\n1\r\n}\r\n0\r\n\r\n");
	seed_text("http", "post-chunked", req);
	seed_text("http", "post-ambiguous", "POST /v1/tx HTTP/1.1\r\nHost: x\r\n"
		  "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}");
	seed_text("http", "http10", "GET /v1/status HTTP/1.0\r\n\r\n");
}

static void seed_frame(const struct wire_msg *m, const char *name)
{
	struct enc e;

	enc_init(&e);
	wire_encode(&e, m);
	seed_enc("peer", name, &e);
}

/* Peer frames of every type and the consensus messages they carry, around
 * the fixed chain's blocks. */
static void seed_peer(const struct examples *x, const struct fixchain *fx)
{
	struct enc b1, c1, b2, c2, tx, e, msg;
	struct wire_msg m;
	struct cs_msg cm;

	fixchain_encode_block(fx, 0, &b1, &c1);
	fixchain_encode_block(fx, 1, &b2, &c2);
	enc_init(&tx);
	tx_encode(&tx, &x->open);

	memset(&cm, 0, sizeof(cm));
	cm.kind = CS_MSG_VOTE;
	cm.v = (struct vote){ .type = VOTE_PRECOMMIT, .height = 2, .round = 1 };
	block_id(&fx->c.blocks[1].header, cm.v.block_id);
	memcpy(cm.validator, x->provider.pub, PUBKEY_LEN);
	enc_init(&msg);
	cs_msg_encode(&msg, &cm);
	seed("consensus", "precommit", msg.buf, msg.len);
	memset(&cm, 0, sizeof(cm));
	cm.kind = CS_MSG_PROPOSAL;
	cm.p = (struct proposal){ .height = 2, .round = 1, .pol_round = 0 };
	block_id(&fx->c.blocks[1].header, cm.p.block_id);
	cm.block = b2.buf;
	cm.block_len = b2.len;
	cm.prev_cert = c1.buf;
	cm.prev_cert_len = c1.len;
	enc_init(&e);
	cs_msg_encode(&e, &cm);
	seed_enc("consensus", "proposal", &e);

	memset(&m, 0, sizeof(m));
	m.type = WIRE_HELLO;
	m.u.hello.version = WIRE_VERSION;
	memcpy(m.u.hello.genesis_hash, x->genesis_hash, HASH_LEN);
	snprintf(m.u.hello.chain_id, sizeof(m.u.hello.chain_id), "%s", x->genesis.chain_id);
	memcpy(m.u.hello.node_key, x->provider.pub, PUBKEY_LEN);
	m.u.hello.height = 2;
	block_id(&fx->c.blocks[1].header, m.u.hello.last_block_id);
	seed_frame(&m, "hello");
	m.type = WIRE_STATUS;
	m.u.status.height = 2;
	block_id(&fx->c.blocks[1].header, m.u.status.last_block_id);
	seed_frame(&m, "status");
	struct wire_bytes txv = { tx.buf, tx.len };
	m.type = WIRE_TXS;
	m.u.txs.n = 1;
	m.u.txs.items = &txv;
	seed_frame(&m, "txs");
	m.type = WIRE_GET_BLOCKS;
	m.u.get_blocks.from = 1;
	m.u.get_blocks.count = 5;
	seed_frame(&m, "get-blocks");
	m.type = WIRE_BLOCK;
	m.u.block = (struct wire_block){ .height = 2, .block = b2.buf, .block_len = b2.len,
					 .cert = c2.buf, .cert_len = c2.len,
					 .prev_cert = c1.buf, .prev_cert_len = c1.len };
	seed_frame(&m, "block");
	m.type = WIRE_NO_BLOCK;
	m.u.no_block = 9;
	seed_frame(&m, "no-block");
	m.type = WIRE_CONSENSUS;
	m.u.consensus.bytes = msg.buf;
	m.u.consensus.len = msg.len;
	seed_frame(&m, "consensus-precommit");
	m.type = WIRE_PING;
	m.u.ping = 0x0123456789abcdefull;
	seed_frame(&m, "ping");
	enc_free(&msg);
	enc_free(&tx);
	enc_free(&b1);
	enc_free(&c1);
	enc_free(&b2);
	enc_free(&c2);
}

int main(int argc, char **argv)
{
	const char *srcdir = getenv("TALLY_SRCDIR");
	struct examples x;
	struct fixchain fx;

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz-seeds DIR\n");
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) && errno != EEXIST)
		die("mkdir %s: %s", root, strerror(errno));
	examples_build(&x);
	fixchain_build(&fx);
	seed_txs(&x, &fx);
	seed_blocks(&x, &fx);
	seed_contracts(&x, srcdir ? srcdir : ".");
	seed_chainfile(&fx);
	seed_genesis(&x);
	seed_config();
	seed_json_u64();
	seed_auth(&x, vector(&x, "lease_open.hash")->bytes);
	seed_http(&fx);
	seed_peer(&x, &fx);
	printf("fuzz-seeds: %u seeds in %s\n", written, root);
	fixchain_free(&fx);
	examples_free(&x);
	return 0;
}
