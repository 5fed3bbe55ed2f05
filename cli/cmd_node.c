/* tally node init: what an operator runs first.
 *
 * `node init --dev DIR` makes a one-node devnet: the node's key (validator
 * and provider), a funded faucet account, a genesis with this node as the
 * only validator, and the tallyd.conf that points at them.
 * `node init --dev DIR --validators N [--full-nodes M]` makes a devnet of
 * N validators and M full nodes on this machine, DIR/node-1 ... each with
 * its key, configuration and data directory, all peers of each other, one
 * genesis and one faucet.
 * `node init --join GENESIS.json --peer ADDR ... --dir DIR` sets up a node
 * that joins an existing network. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/devcert.h"
#include "cli/tally.h"
#include "lib/errors.h"
#include "lib/chain/genesis.h"

#define DEV_STAKE 1000000u
#define DEV_FAUCET_BALANCE 1000000000000000ull   /* 1e9 units in micro-units */
#define FUND_MAX 64
#define DEV_NODES_MAX 32
#define JOIN_PEERS_MAX 64
/* Certificates in a row a validator of a new production network may miss
 * before it is jailed: with blocks a second apart, some 17 minutes away. */
#define PRODUCTION_LIVENESS_WINDOW 1000

struct init_opts {
	const char *dir;
	const char *chain_id;
	const char *listen;
	uint64_t interval_s;
	const char *domain_type;
	const char *network;
	const char *image_dir;
	bool tls;
	size_t nfund;
	struct { uint8_t pub[PUBKEY_LEN]; uint64_t amount; } fund[FUND_MAX];
	/* a devnet of several nodes */
	uint64_t validators;             /* 0: the single-node layout */
	uint64_t full_nodes;
	uint64_t peer_port;              /* first peer port; 0: after the API ports */
	bool production;                 /* /etc/tally and /var/lib/tally */
	bool liveness_given;
	uint64_t liveness_window;        /* the genesis's (--liveness-window) */
	/* joining */
	const char *join;                /* genesis file */
	const char *peer_listen;
	size_t npeers;
	const char *peers[JOIN_PEERS_MAX];
};

/* One node of a devnet being written. */
struct dev_node {
	char name[24];
	char dir[PATH_MAX];
	char listen[192];                /* API */
	char peer_listen[192];
	struct tally_key key;
	bool validator;
};

/* DIR must not exist or be empty: init never mixes with older files. */
static int prepare_dir(const char *dir)
{
	DIR *d;
	struct dirent *e;

	if (mkdir(dir, 0755) == 0)
		return EXIT_OK;
	if (errno != EEXIST) {
		err("cannot create %s: %s", dir, strerror(errno));
		return EXIT_USAGE;
	}
	d = opendir(dir);
	if (!d) {
		err("cannot open %s: %s", dir, strerror(errno));
		return EXIT_USAGE;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			closedir(d);
			err("%s is not empty; node init refuses to write into it", dir);
			return EXIT_USAGE;
		}
	closedir(d);
	return EXIT_OK;
}

/* prepare_dir, then the absolute path of dir into out[PATH_MAX]. */
static int fresh_dir(const char *dir, char *out)
{
	int rc = prepare_dir(dir);

	if (rc)
		return rc;
	if (!realpath(dir, out)) {
		err("cannot resolve %s: %s", dir, strerror(errno));
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t n = strlen(text);

	if (fd < 0) {
		err("cannot create %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	if (write(fd, text, n) != (ssize_t)n || fsync(fd) != 0) {
		err("cannot write %s: %s", path, strerror(errno));
		close(fd);
		return EXIT_USAGE;
	}
	close(fd);
	return EXIT_OK;
}

static int new_key(const char *dir, const char *name, struct tally_key *k)
{
	char path[PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = key_generate(k);
	if (!rc)
		rc = key_save_pem(k, path);
	if (rc) {
		err("cannot write %s: %s", path, tally_strerror(rc));
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int mkdir_data(const char *dir)
{
	char path[PATH_MAX + 8];

	snprintf(path, sizeof(path), "%s/data", dir);
	if (mkdir(path, 0700)) {
		err("cannot create %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int cmp_account(const void *a, const void *b)
{
	return memcmp(json_string_value(json_object_get(*(json_t *const *)a, "pubkey")),
		      json_string_value(json_object_get(*(json_t *const *)b, "pubkey")), 64);
}

static json_t *account_json(const uint8_t pub[PUBKEY_LEN], uint64_t balance)
{
	char hex[65];

	hex_encode(pub, PUBKEY_LEN, hex);
	return json_pack("{s:s,s:I}", "pubkey", hex, "balance", (json_int_t)balance);
}

static const char *scheme(const struct init_opts *o)
{
	return o->tls ? "https" : "http";
}

/* The genesis JSON of lib/chain/genesis.h, checked by genesis_parse before it
 * is written: the validators among nodes, equal stakes; the faucet (if
 * any) and the --fund accounts sorted by pubkey, a key funded twice is an
 * error. */
static char *genesis_text(const struct init_opts *o, const struct dev_node *nodes, size_t nnodes,
			  const struct tally_key *faucet)
{
	json_t *accts[FUND_MAX + 1];
	size_t n = 0;
	char hex[65], api[300], why[256] = "";
	struct timespec now;

	if (faucet)
		accts[n++] = account_json(faucet->pub, DEV_FAUCET_BALANCE);
	for (size_t i = 0; i < o->nfund; i++)
		accts[n++] = account_json(o->fund[i].pub, o->fund[i].amount);
	qsort(accts, n, sizeof(accts[0]), cmp_account);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, accts[i]);
	json_t *vals = json_array();
	for (size_t i = 0; i < nnodes; i++) {
		if (!nodes[i].validator)
			continue;
		hex_encode(nodes[i].key.pub, PUBKEY_LEN, hex);
		snprintf(api, sizeof(api), "%s://%s", scheme(o), nodes[i].listen);
		json_array_append_new(vals, json_pack("{s:s,s:I,s:s,s:s}", "pubkey", hex, "stake",
						      (json_int_t)DEV_STAKE, "name",
						      nnodes == 1 ? "node0" : nodes[i].name,
						      "api", api));
	}
	clock_gettime(CLOCK_REALTIME, &now);
	struct chain_params p = GENESIS_DEFAULT_PARAMS;

	/* A new production network jails validators that stay away; a devnet,
	 * whose tests stop nodes for as long as they like, does not unless
	 * asked. */
	p.liveness_window = o->liveness_given ? o->liveness_window :
			    o->production ? PRODUCTION_LIVENESS_WINDOW : 0;
	json_t *params = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
				   "unbonding_blocks", (json_int_t)p.unbonding_blocks,
				   "slash_ppm", (json_int_t)p.slash_ppm,
				   "jail_blocks", (json_int_t)p.jail_blocks,
				   "min_self_stake", (json_int_t)p.min_self_stake,
				   "max_validators", (json_int_t)p.max_validators,
				   "liveness_window", (json_int_t)p.liveness_window);
	json_t *g = json_pack("{s:s,s:I,s:o,s:o,s:o}",
			      "chain_id", o->chain_id,
			      "genesis_time_ns",
			      (json_int_t)((uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec),
			      "params", params, "validators", vals, "accounts", arr);
	char *dumped = g ? json_dumps(g, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	char *text = NULL;
	if (dumped && asprintf(&text, "%s\n", dumped) < 0)
		text = NULL;
	free(dumped);
	json_decref(g);
	if (!text) {
		err("out of memory");
		return NULL;
	}
	struct genesis parsed;
	memset(&parsed, 0, sizeof(parsed));
	int rc = genesis_parse(&parsed, text, why);
	if (rc) {
		err("the genesis would be invalid: %s", why[0] ? why : tally_strerror(rc));
		free(text);
		return NULL;
	}
	genesis_free(&parsed);
	return text;
}

static bool has_file(const char *dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, R_OK) == 0;
}

/* tallyd.conf for a node in dir, whose key is pub; genesis is the genesis
 * file's path; a [peers] section when peer_listen or peer lines are given.
 * The meter's pin directory and the domains' name prefix are the node's own
 * (from its key), so that several nodes, of one devnet or of several, run
 * VMs side by side on one host. Without dir, the drop-in of a production
 * node: the paths are tallyd's defaults (/etc/tally, /var/lib/tally), and
 * the settings are the operator's to edit. */
static char *conf_text(const struct init_opts *o, const char *dir, const uint8_t *pub,
		       const char *genesis, const char *listen, const char *peer_listen,
		       const char *const *peers, size_t npeers)
{
	char *text = NULL, tag[9] = "";
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	if (dir && pub)
		hex_encode(pub, 4, tag);
	if (dir)
		fprintf(f,
			"# tallyd configuration written by 'tally node init'\n"
			"[node]\n"
			"data_dir = %s/data\n"
			"key = %s/node.pem\n"
			"genesis = %s\n",
			dir, dir, genesis);
	else
		fprintf(f,
			"# This node's settings, written by 'tally node init --production'. tallyd\n"
			"# reads them after /etc/tally/tallyd.conf; every key is in tallyd.conf(5).\n"
			"# Check an edit with 'tallyd --check-config', then restart tallyd.\n"
			"[node]\n");
	fprintf(f,
		"listen = %s\n"
		"log_level = info\n"
		"\n[metering]\n"
		"interval_s = %" PRIu64 "\n",
		listen, o->interval_s);
	if (tag[0])
		fprintf(f, "pin_dir = /sys/fs/bpf/tally-%s\n", tag);
	fprintf(f,
		"\n[libvirt]\n"
		"uri = qemu:///system\n"
		"domain_type = %s\n"
		"network = %s\n",
		o->domain_type, o->network);
	if (tag[0])
		fprintf(f, "name_prefix = tally-%s-\n", tag);
	if (dir)
		fprintf(f,
			"state_dir = %s/vms\n"
			"overcommit_cpu = 2.0\n"
			"overcommit_mem = 1.0\n",
			dir);
	if (!strcmp(o->network, "user"))
		fprintf(f,
			"# the guests' SSH ports, on loopback; guests cannot connect out\n"
			"forward_address = 127.0.0.1\n"
			"forward_ports = 22000-22099\n"
			"guest_outbound = no\n");
	fprintf(f,
		"\n[prices]\n%s"
		"vcpu_second = 20\n"
		"mem_gib_second = 5\n"
		"gpu_second = 1000\n", dir ? "" : "# the node's offer, micro-units per unit-second\n");
	if (o->image_dir && has_file(o->image_dir, "vmlinuz") &&
	    has_file(o->image_dir, "initrd.img"))
		fprintf(f,
			"\n[image.tiny]\n"
			"kernel = %s/vmlinuz\n"
			"initrd = %s/initrd.img\n"
			"cmdline = console=ttyS0 tally.burn=50\n"
			"min_memory_mib = 64\n",
			o->image_dir, o->image_dir);
	if (o->tls && dir)
		fprintf(f, "\n[api]\ntls_cert = %s/tls.crt\ntls_key = %s/tls.key\n", dir, dir);
	/* The Debian cloud guest (make guest-debian), whenever it was built. */
	if (o->image_dir && has_file(o->image_dir, "debian-12.qcow2") &&
	    has_file(o->image_dir, "debian-12.vmlinuz") &&
	    has_file(o->image_dir, "debian-12.initrd.img"))
		fprintf(f,
			"\n[image.debian-12]\n"
			"path = %s/debian-12.qcow2\n"
			"format = qcow2\n"
			"kernel = %s/debian-12.vmlinuz\n"
			"initrd = %s/debian-12.initrd.img\n"
			"cmdline = root=/dev/vda rw console=ttyS0\n"
			"min_memory_mib = 384\n"
			"cloud_init = yes\n"
			"ssh_user = debian\n",
			o->image_dir, o->image_dir, o->image_dir);
	if ((peer_listen && *peer_listen) || npeers) {
		fprintf(f, "\n[peers]\n");
		if (peer_listen && *peer_listen)
			fprintf(f, "listen = %s\n", peer_listen);
		for (size_t i = 0; i < npeers; i++)
			fprintf(f, "peer = %s\n", peers[i]);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static int parse_fund(struct init_opts *o, const char *arg)
{
	const char *colon = strchr(arg, ':');
	char hex[65];

	if (o->nfund == FUND_MAX) {
		err("at most %d --fund accounts", FUND_MAX);
		return EXIT_USAGE;
	}
	if (!colon || colon - arg != 64) {
		err("--fund '%s' is not PUBKEY:AMOUNT (64 hex characters, ':', micro-units)", arg);
		return EXIT_USAGE;
	}
	memcpy(hex, arg, 64);
	hex[64] = 0;
	if (parse_hex32(hex, o->fund[o->nfund].pub, "--fund public key") ||
	    parse_u64(colon + 1, &o->fund[o->nfund].amount, "--fund amount"))
		return EXIT_USAGE;
	if (o->fund[o->nfund].amount == 0 || o->fund[o->nfund].amount > INT64_MAX) {
		err("--fund amount must be between 1 and %" PRId64, INT64_MAX);
		return EXIT_USAGE;
	}
	o->nfund++;
	return EXIT_OK;
}

static int check_choice(const char *what, const char *v, const char *const *allowed)
{
	for (size_t i = 0; allowed[i]; i++)
		if (!strcmp(v, allowed[i]))
			return EXIT_OK;
	err("%s '%s' is not one of the allowed values (see --help)", what, v);
	return EXIT_USAGE;
}

/* HOST:PORT into its host (brackets kept) and port. */
static int split_listen(const char *listen, char *host, size_t hostlen, uint64_t *port)
{
	const char *colon = strrchr(listen, ':');
	char *end;

	if (!colon || colon == listen || (size_t)(colon - listen) >= hostlen)
		return -1;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	*port = strtoull(colon + 1, &end, 10);
	return *end || !colon[1] || *port == 0 || *port > 65535 ? -1 : 0;
}

/* --peer [KEY@]HOST:PORT, as tallyd's [peers] reads it. */
static int check_peer(const char *arg)
{
	const char *at = strchr(arg, '@'), *addr = at ? at + 1 : arg;
	uint8_t key[PUBKEY_LEN];
	char host[128], hex[65];
	uint64_t port;

	if (at) {
		if (at - arg != 64) {
			err("--peer '%s': the key before '@' is 64 hex characters", arg);
			return EXIT_USAGE;
		}
		memcpy(hex, arg, 64);
		hex[64] = '\0';
		if (parse_hex32(hex, key, "--peer key"))
			return EXIT_USAGE;
		if (key_check(key)) {
			err("--peer '%s': not a valid Ed25519 public key", arg);
			return EXIT_USAGE;
		}
	}
	if (split_listen(addr, host, sizeof(host), &port) || strpbrk(addr, " \t/@")) {
		err("--peer '%s' is not [KEY@]HOST:PORT", arg);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* DIR/tls.crt and DIR/tls.key for the listen address's host. */
static int write_devcert(const char *listen, const char *dir)
{
	char host[128], cert[PATH_MAX + 16], key[PATH_MAX + 16], why[256] = "";
	const char *colon = strrchr(listen, ':');
	size_t n = colon ? (size_t)(colon - listen) : strlen(listen);

	if (n >= sizeof(host))
		n = sizeof(host) - 1;
	memcpy(host, listen, n);
	host[n] = '\0';
	if (host[0] == '[' && n >= 2 && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	snprintf(cert, sizeof(cert), "%s/tls.crt", dir);
	snprintf(key, sizeof(key), "%s/tls.key", dir);
	if (devcert_write(cert, key, host, why)) {
		err("%s", why);
		return -1;
	}
	return 0;
}

/* The files of one node in node->dir: key (already made), tallyd.conf,
 * data/, the TLS pair. */
static int write_node(const struct init_opts *o, const struct dev_node *node, const char *genesis,
		      const char *const *peers, size_t npeers)
{
	char path[PATH_MAX + 32];
	char *conf = conf_text(o, node->dir, node->key.pub, genesis, node->listen,
			       node->peer_listen, peers, npeers);
	int rc = EXIT_USAGE;

	if (!conf)
		return err("out of memory"), EXIT_USAGE;
	snprintf(path, sizeof(path), "%s/tallyd.conf", node->dir);
	if (!write_file(path, conf, 0644) && !(o->tls && write_devcert(node->listen, node->dir)) &&
	    !mkdir_data(node->dir))
		rc = EXIT_OK;
	free(conf);
	return rc;
}

static int do_init(struct init_opts *o, const struct common *co)
{
	static const char *const files[] = { "node.pem", "faucet.pem", "genesis.json",
					     "tallyd.conf", "data" };
	char dir[PATH_MAX], path[PATH_MAX + 32], nodehex[65], faucethex[65], api[300];
	struct dev_node node;
	struct tally_key faucet;
	char *genesis = NULL;
	int rc;

	rc = fresh_dir(o->dir, dir);
	if (rc)
		return rc;
	memset(&node, 0, sizeof(node));
	memset(&faucet, 0, sizeof(faucet));
	snprintf(node.dir, sizeof(node.dir), "%s", dir);
	snprintf(node.listen, sizeof(node.listen), "%s", o->listen);
	node.validator = true;
	rc = new_key(dir, "node.pem", &node.key);
	if (!rc)
		rc = new_key(dir, "faucet.pem", &faucet);
	if (rc)
		goto out;
	rc = EXIT_USAGE;
	genesis = genesis_text(o, &node, 1, &faucet);
	if (!genesis)
		goto out;
	snprintf(path, sizeof(path), "%s/genesis.json", dir);
	if (write_file(path, genesis, 0644) || write_node(o, &node, path, NULL, 0))
		goto out;
	rc = EXIT_OK;
	hex_encode(node.key.pub, PUBKEY_LEN, nodehex);
	hex_encode(faucet.pub, PUBKEY_LEN, faucethex);
	snprintf(api, sizeof(api), "%s://%s", scheme(o), o->listen);
	if (co->json) {
		json_t *fl = json_array();
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) + 2 * o->tls; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir,
				 i < sizeof(files) / sizeof(files[0]) ? files[i] :
				 i == sizeof(files) / sizeof(files[0]) ? "tls.crt" : "tls.key");
			json_array_append_new(fl, json_string(path));
		}
		print_json(json_pack("{s:s,s:s,s:s,s:s,s:o,s:s}", "dir", dir, "chain_id",
				     o->chain_id, "node", nodehex, "faucet", faucethex,
				     "files", fl, "api", api));
	} else {
		printf("devnet '%s' in %s\n"
		       "  node (validator, provider)  %s  key %s/node.pem\n"
		       "  faucet (funded)             %s  key %s/faucet.pem\n"
		       "  genesis                     %s/genesis.json\n"
		       "  config                      %s/tallyd.conf\n"
		       "start it with:  tallyd -c %s/tallyd.conf\n"
		       "then lease with: TALLY_KEY=%s/faucet.pem tally lease create --node %s"
		       " --wait\n",
		       o->chain_id, dir, nodehex, dir, faucethex, dir, dir, dir, dir, dir, api);
		if (o->tls)
			printf("the API is HTTPS with a self-signed certificate; clients use\n"
			       "  --node %s --cacert %s/tls.crt\n"
			       "  (or TALLY_NODE and TALLY_CACERT)\n", api, dir);
	}
out:
	free(genesis);
	key_free(&node.key);
	key_free(&faucet);
	return rc;
}

/* A devnet of validators and full nodes, DIR/node-1 ... DIR/node-N; every
 * node a peer of every other, by key. */
static int do_init_devnet(struct init_opts *o, const struct common *co)
{
	size_t total = (size_t)(o->validators + o->full_nodes);
	struct dev_node *nodes = calloc(total, sizeof(*nodes));
	char dir[PATH_MAX], host[128], path[PATH_MAX + 32], gpath[PATH_MAX + 32];
	char faucethex[65];
	char (*peer)[256] = calloc(total, sizeof(*peer));
	const char **others = calloc(total, sizeof(*others));
	struct tally_key faucet;
	char *genesis = NULL;
	uint64_t port, peer_port;
	int rc;

	memset(&faucet, 0, sizeof(faucet));
	if (!nodes || !peer || !others) {
		rc = (err("out of memory"), EXIT_USAGE);
		goto out;
	}
	if (split_listen(o->listen, host, sizeof(host), &port)) {
		rc = usage_error("node init", "--listen '%s' is not HOST:PORT", o->listen);
		goto out;
	}
	peer_port = o->peer_port ? o->peer_port : port + total;
	if (port + total - 1 > 65535 || peer_port + total - 1 > 65535 ||
	    (peer_port < port + total && peer_port + total > port)) {
		rc = usage_error("node init", "the API ports %" PRIu64 "..%" PRIu64 " and peer ports "
				 "%" PRIu64 "..%" PRIu64 " must be valid and apart", port,
				 port + total - 1, peer_port, peer_port + total - 1);
		goto out;
	}
	if ((rc = fresh_dir(o->dir, dir)) || (rc = new_key(dir, "faucet.pem", &faucet)))
		goto out;
	for (size_t i = 0; i < total; i++) {
		struct dev_node *nd = &nodes[i];
		char hex[65];

		snprintf(nd->name, sizeof(nd->name), "node-%u", (unsigned)(i + 1));
		snprintf(nd->dir, sizeof(nd->dir), "%.4000s/%s", dir, nd->name);
		snprintf(nd->listen, sizeof(nd->listen), "%s:%" PRIu64, host, port + i);
		snprintf(nd->peer_listen, sizeof(nd->peer_listen), "%s:%" PRIu64, host,
			 peer_port + i);
		nd->validator = i < o->validators;
		if (mkdir(nd->dir, 0755)) {
			rc = (err("cannot create %s: %s", nd->dir, strerror(errno)), EXIT_USAGE);
			goto out;
		}
		if ((rc = new_key(nd->dir, "node.pem", &nd->key)))
			goto out;
		hex_encode(nd->key.pub, PUBKEY_LEN, hex);
		snprintf(peer[i], sizeof(peer[i]), "%s@%s", hex, nd->peer_listen);
	}
	rc = EXIT_USAGE;
	genesis = genesis_text(o, nodes, total, &faucet);
	if (!genesis)
		goto out;
	snprintf(gpath, sizeof(gpath), "%s/genesis.json", dir);
	if (write_file(gpath, genesis, 0644))
		goto out;
	for (size_t i = 0; i < total; i++) {
		size_t k = 0;
		for (size_t j = 0; j < total; j++)
			if (j != i)
				others[k++] = peer[j];
		if (write_node(o, &nodes[i], gpath, others, k))
			goto out;
	}
	rc = EXIT_OK;
	hex_encode(faucet.pub, PUBKEY_LEN, faucethex);
	if (co->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < total; i++) {
			char hex[65], api[300];
			hex_encode(nodes[i].key.pub, PUBKEY_LEN, hex);
			snprintf(api, sizeof(api), "%s://%s", scheme(o), nodes[i].listen);
			snprintf(path, sizeof(path), "%s/tallyd.conf", nodes[i].dir);
			json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:b,s:s,s:s,s:s}",
							     "name", nodes[i].name, "dir",
							     nodes[i].dir, "key", hex, "validator",
							     nodes[i].validator, "api", api, "peers",
							     nodes[i].peer_listen, "config", path));
		}
		print_json(json_pack("{s:s,s:s,s:s,s:s,s:o}", "dir", dir, "chain_id", o->chain_id,
				     "faucet", faucethex, "genesis", gpath, "nodes", arr));
	} else {
		printf("devnet '%s' in %s: %" PRIu64 " validator(s), %" PRIu64 " full node(s)\n",
		       o->chain_id, dir, o->validators, o->full_nodes);
		for (size_t i = 0; i < total; i++) {
			char hex[65];
			hex_encode(nodes[i].key.pub, PUBKEY_LEN, hex);
			printf("  %-8s %-10s %.16s  API %s://%s  peers %s\n", nodes[i].name,
			       nodes[i].validator ? "validator" : "full node", hex, scheme(o),
			       nodes[i].listen, nodes[i].peer_listen);
		}
		printf("  faucet (funded) %s  key %s/faucet.pem\n"
		       "  genesis         %s\n"
		       "start each with:  tallyd -c %s/node-K/tallyd.conf\n",
		       faucethex, dir, gpath, dir);
		if (o->validators > 1)
			printf("blocks need more than 2/3 of the validators' stake: with %" PRIu64
			       " equal validators, at least %" PRIu64 " running\n", o->validators,
			       o->validators * 2 / 3 + 1);
	}
out:
	if (nodes)
		for (size_t i = 0; i < total; i++)
			key_free(&nodes[i].key);
	free(nodes);
	free(peer);
	free(others);
	free(genesis);
	key_free(&faucet);
	return rc;
}

/* A node joining a network: its key, the network's genesis (checked), and
 * a tallyd.conf dialing the given peers. */
static int do_init_join(struct init_opts *o, const struct common *co)
{
	char dir[PATH_MAX], gpath[PATH_MAX + 32], why[256] = "", hex[65], ghex[65];
	uint8_t gh[HASH_LEN];
	struct genesis g;
	struct dev_node node;
	char *text = NULL;
	int rc;

	memset(&g, 0, sizeof(g));
	memset(&node, 0, sizeof(node));
	rc = genesis_load(&g, o->join, why);
	if (rc) {
		err("--join %s: %s", o->join, why[0] ? why : tally_strerror(rc));
		return EXIT_USAGE;
	}
	genesis_hash(&g, gh);
	text = genesis_to_json(&g);
	if (!text) {
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = fresh_dir(o->dir, dir)))
		goto out;
	snprintf(node.dir, sizeof(node.dir), "%s", dir);
	snprintf(node.listen, sizeof(node.listen), "%s", o->listen);
	snprintf(node.peer_listen, sizeof(node.peer_listen), "%s",
		 o->peer_listen ? o->peer_listen : "");
	snprintf(gpath, sizeof(gpath), "%s/genesis.json", dir);
	if ((rc = new_key(dir, "node.pem", &node.key)) ||
	    (rc = write_file(gpath, text, 0644)) ||
	    (rc = write_node(o, &node, gpath, o->peers, o->npeers)))
		goto out;
	hex_encode(node.key.pub, PUBKEY_LEN, hex);
	hex_encode(gh, HASH_LEN, ghex);
	if (co->json) {
		json_t *pl = json_array();
		for (size_t i = 0; i < o->npeers; i++)
			json_array_append_new(pl, json_string(o->peers[i]));
		print_json(json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "dir", dir, "chain_id", g.chain_id,
				     "genesis_hash", ghex, "node", hex, "config",
				     "tallyd.conf", "peers", pl));
	} else {
		printf("node for chain '%s' (genesis %.16s...) in %s\n"
		       "  node key  %s  (%s/node.pem)\n"
		       "  config    %s/tallyd.conf, dialing %zu peer(s)\n"
		       "Peers accept only keys they know: ask their operators to add\n"
		       "  allow = %s\n"
		       "under [peers] in their tallyd.conf (validators' keys need no entry), then\n"
		       "start it with:  tallyd -c %s/tallyd.conf\n",
		       g.chain_id, ghex, dir, hex, dir, dir, o->npeers, hex, dir);
	}
out:
	free(text);
	genesis_free(&g);
	key_free(&node.key);
	return rc;
}

/* --- a production node ---------------------------------------------------- */

/* Where tallyd looks by default, and where the package put it. */
#define PROD_ETC "/etc/tally"
#define PROD_DROPINS PROD_ETC "/tallyd.conf.d"
#define PROD_VAR "/var/lib/tally"

/* mkdir, or an existing directory, then mode and owner root:root exactly:
 * the package may have made it with others. */
static int own_dir(const char *dir, mode_t mode)
{
	struct stat st;

	if (mkdir(dir, mode) && errno != EEXIST)
		return err("cannot create %s: %s", dir, strerror(errno)), EXIT_USAGE;
	if (lstat(dir, &st) || !S_ISDIR(st.st_mode))
		return err("%s is not a directory", dir), EXIT_USAGE;
	if (chmod(dir, mode) || chown(dir, 0, 0))
		return err("cannot set the mode of %s: %s", dir, strerror(errno)), EXIT_USAGE;
	return EXIT_OK;
}

/* Nothing of a node may be there yet: init never replaces a key, a
 * genesis, settings or a ledger. */
static int refuse_existing(void)
{
	static const char *const files[] = { PROD_ETC "/node.pem", PROD_ETC "/genesis.json",
					     PROD_DROPINS "/50-node.conf" };
	struct stat st;
	DIR *d;
	struct dirent *e;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (lstat(files[i], &st) == 0) {
			err("%s exists: this host is a node already; node init replaces nothing "
			    "(move it away to start over)", files[i]);
			return EXIT_USAGE;
		}
	d = opendir(PROD_VAR);
	if (!d)
		return errno == ENOENT ? EXIT_OK :
		       (err("cannot open %s: %s", PROD_VAR, strerror(errno)), EXIT_USAGE);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			closedir(d);
			err("%s holds another node's data (%s); node init does not mix with it "
			    "(move it away to start over)", PROD_VAR, e->d_name);
			return EXIT_USAGE;
		}
	closedir(d);
	return EXIT_OK;
}

/* The network's genesis: --join's file, checked, or a new one with this
 * node its only validator and the --fund accounts funded. */
static char *production_genesis(const struct init_opts *o, const struct tally_key *key,
				char chain_id[CHAIN_ID_MAX + 1])
{
	struct dev_node node;
	struct genesis g;
	char why[256] = "", *text;

	if (!o->join) {
		memset(&node, 0, sizeof(node));
		node.key = *key;
		node.validator = true;
		snprintf(node.listen, sizeof(node.listen), "%s", o->listen);
		snprintf(chain_id, CHAIN_ID_MAX + 1, "%s", o->chain_id);
		return genesis_text(o, &node, 1, NULL);
	}
	memset(&g, 0, sizeof(g));
	int rc = genesis_load(&g, o->join, why);
	if (rc) {
		err("--join %s: %s", o->join, why[0] ? why : tally_strerror(rc));
		return NULL;
	}
	snprintf(chain_id, CHAIN_ID_MAX + 1, "%s", g.chain_id);
	text = genesis_to_json(&g);
	genesis_free(&g);
	if (!text)
		err("out of memory");
	return text;
}

/* `node init --production`: this host's node, where tallyd and its unit
 * look by default. Written in an order that leaves nothing half made: the
 * key last but one, the settings last, and what was made is removed again
 * when a step fails. */
static int do_init_production(struct init_opts *o, const struct common *co)
{
	static const char key_path[] = PROD_ETC "/node.pem";
	static const char genesis_path[] = PROD_ETC "/genesis.json";
	static const char conf_path[] = PROD_DROPINS "/50-node.conf";
	char chain_id[CHAIN_ID_MAX + 1] = "", hex[65];
	struct tally_key key;
	char *genesis = NULL, *conf = NULL;
	int rc;

	if (geteuid() != 0)
		return err("node init --production writes %s and %s: run it as root", PROD_ETC,
			   PROD_VAR), EXIT_USAGE;
	if ((rc = refuse_existing()))
		return rc;
	memset(&key, 0, sizeof(key));
	rc = key_generate(&key);
	if (rc)
		return err("cannot make a key: %s", tally_strerror(rc)), EXIT_USAGE;
	rc = EXIT_USAGE;
	genesis = production_genesis(o, &key, chain_id);
	conf = conf_text(o, NULL, NULL, NULL, o->listen, o->peer_listen, o->peers, o->npeers);
	if (!genesis || !conf)
		goto out;
	if (own_dir(PROD_ETC, 0755) || own_dir(PROD_DROPINS, 0755) || own_dir(PROD_VAR, 0711))
		goto out;
	if (write_file(genesis_path, genesis, 0644))
		goto out;
	int krc = key_save_pem(&key, key_path);
	if (krc) {
		err("cannot write %s: %s", key_path, tally_strerror(krc));
		unlink(genesis_path);
		goto out;
	}
	if (write_file(conf_path, conf, 0644)) {
		unlink(key_path);
		unlink(genesis_path);
		goto out;
	}
	rc = EXIT_OK;
	hex_encode(key.pub, PUBKEY_LEN, hex);
	if (co->json) {
		print_json(json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b}", "chain_id", chain_id, "node",
				     hex, "key", key_path, "genesis", genesis_path, "config",
				     conf_path, "data_dir", PROD_VAR, "validator", !o->join));
	} else {
		printf("this host is a node of chain '%s'%s\n"
		       "  node key   %s  %s (0600)\n"
		       "  genesis    %s\n"
		       "  settings   %s (edit them; tallyd.conf(5))\n"
		       "  data       %s (0711)\n"
		       "start it with:  systemctl enable --now tallyd   (or: tallyd)\n",
		       chain_id, o->join ? "" : ", its only validator", hex, key_path,
		       genesis_path, conf_path, PROD_VAR);
		if (o->join)
			printf("Peers accept only keys they know: ask their operators to add\n"
			       "  allow = %s\nunder [peers] (validators' keys need no entry).\n", hex);
	}
out:
	free(genesis);
	free(conf);
	key_free(&key);
	return rc;
}

enum { O_DEV = 256, O_CHAIN, O_FUND, O_LISTEN, O_INTERVAL, O_DOMAIN, O_NET, O_IMG,
       O_TLS, O_VALS, O_FULL, O_PEERPORT, O_JOIN, O_PEER, O_DIR, O_PEERLISTEN, O_PRODUCTION,
       O_LIVENESS };

static const struct opt_doc init_opts[] = {
	{ "dev", O_DEV, "DIR", "where to write a devnet", 0 },
	{ "production", O_PRODUCTION, NULL, "make this host a node: " PROD_ETC " and " PROD_VAR
	  " (as root)", 0 },
	{ "validators", O_VALS, "N", "validators in the devnet (1..32; with --full-nodes)", 0 },
	{ "full-nodes", O_FULL, "M", "non-validating nodes in the devnet (default 0)", 0 },
	{ "peer-port", O_PEERPORT, "P", "first peer port of the devnet", 0 },
	{ "join", O_JOIN, "GENESIS.json", "the network to join", 0 },
	{ "peer", O_PEER, "ADDR", "a peer to dial, [KEY@]HOST:PORT; repeatable", OPT_REPEAT },
	{ "dir", O_DIR, "DIR", "where to write the joining node", 0 },
	{ "peer-listen", O_PEERLISTEN, "ADDR",
	  "accept peers on ADDR (joining node; default: dial only)", 0 },
	{ "chain-id", O_CHAIN, "ID", "chain id, [a-z0-9._-] (default tally-dev-XXXXXXXX, random)", 0 },
	{ "fund", O_FUND, "PUBKEY:AMOUNT", "also fund this account (micro-units); repeatable",
	  OPT_REPEAT },
	{ "listen", O_LISTEN, "ADDR", "API address (default 127.0.0.1:7654)", 0 },
	{ "interval", O_INTERVAL, "S", "metering interval in seconds (default 60)", 0 },
	{ "liveness-window", O_LIVENESS, "N", "a new chain jails (without a slash) a validator that\n"
	  "misses N certificates in a row; 0 turns it off (default\n"
	  "1000 with --production, 0 for a devnet)", 0 },
	{ "domain-type", O_DOMAIN, "kvm|qemu", "libvirt domain type: kvm (default) or qemu (TCG)", 0 },
	{ "network", O_NET, "nat|user|none", "VM network: nat (default), user or none; user forwards\n"
	  "ports 22000-22099 on 127.0.0.1 to the guests' SSH", 0 },
	{ "image-dir", O_IMG, "DIR", "catalogue the images found in DIR: 'tiny' (vmlinuz and\n"
	  "initrd.img, make guest-image) and 'debian-12'\n"
	  "(debian-12.qcow2, .vmlinuz, .initrd.img, make guest-debian)", 0 },
	{ "tls", O_TLS, NULL, "serve the API over HTTPS with a self-signed certificate\n"
	  "for the listen address (clients: --cacert DIR/tls.crt)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_node_init = {
	.name = "node init",
	.synopsis = "--dev DIR [--validators N [--full-nodes M] [--peer-port P]]\n"
		    " [--chain-id ID] [--fund PUBKEY:AMOUNT ...] [--listen ADDR]\n"
		    " [--interval S] [--domain-type qemu|kvm]\n"
		    " [--network none|user|nat] [--image-dir DIR] [--tls]\n"
		    " [--liveness-window N]\n"
		    "--join GENESIS.json --peer [KEY@]HOST:PORT ... --dir DIR\n"
		    " [--listen ADDR] [--peer-listen ADDR] [other options as above]\n"
		    "--production (--chain-id ID [--fund PUBKEY:AMOUNT ...] | --join GENESIS.json\n"
		    " --peer [KEY@]HOST:PORT ... [--peer-listen ADDR]) [--listen ADDR]\n"
		    " [--interval S] [--domain-type kvm|qemu] [--network nat|user|none]\n"
		    " [--image-dir DIR] [--liveness-window N]",
	.summary = "set up a devnet (one node or several) or a node joining a network",
	.description =
		"--dev DIR alone sets up a single-node devnet in DIR (which must be empty or absent):\n"
		"  DIR/node.pem      the node's key: its validator and provider account\n"
		"  DIR/faucet.pem    a dev account funded with 10^15 micro-units (10^9 units)\n"
		"  DIR/genesis.json  this node the only validator; faucet and --fund funded\n"
		"  DIR/tallyd.conf   the daemon's configuration\n"
		"  DIR/data/         the ledger's data directory\n"
		"  DIR/tls.crt, DIR/tls.key   with --tls: a self-signed certificate and its key\n"
		"\n"
		"With --validators N a devnet of N validators and M full nodes on this machine:\n"
		"  DIR/faucet.pem, DIR/genesis.json (the N validators, equal stake)\n"
		"  DIR/node-K/{node.pem,tallyd.conf,data/} for K = 1 .. N+M, API on ports\n"
		"  PORT, PORT+1, ... of --listen, peers on P, P+1, ... (default P: after the\n"
		"  API ports); each node dials every other by key.\n"
		"\n"
		"--join sets up a node of an existing network in --dir DIR: a new key, a copy\n"
		"of the network's genesis, and a tallyd.conf dialing each --peer (KEY@HOST:PORT\n"
		"accepts only that key there; HOST:PORT any validator's). It prints the line\n"
		"the peers' operators add to accept the new node.\n"
		"\n"
		"--production makes this host a node, where tallyd and its systemd unit look\n"
		"by default (as root; it refuses to replace anything there):\n"
		"  /etc/tally/node.pem        the node's key (0600)\n"
		"  /etc/tally/genesis.json    a new network's (--chain-id: this node its only\n"
		"                             validator, the --fund accounts funded), or a copy\n"
		"                             of --join's, checked\n"
		"  /etc/tally/tallyd.conf.d/50-node.conf   the node's settings, read after\n"
		"                             the package's tallyd.conf (tallyd.conf(5))\n"
		"  /var/lib/tally/            the data directory (0711; must be empty)",
	.opts = init_opts,
};

int cmd_node_init(int argc, char **argv)
{
	struct optable ot;
	static const char *const domains[] = { "qemu", "kvm", NULL };
	static const char *const networks[] = { "none", "user", "nat", NULL };
	struct init_opts o;
	struct common co;
	bool full_given = false, port_given = false;
	int c;

	memset(&o, 0, sizeof(o));
	o.chain_id = NULL;
	o.listen = "127.0.0.1:7654";
	o.interval_s = 60;
	o.domain_type = "kvm";
	o.network = "nat";
	cmd_optable(&ot, &doc_node_init, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		switch (c) {
		case O_DEV: o.dir = optarg; break;
		case O_PRODUCTION: o.production = true; break;
		case O_CHAIN: o.chain_id = optarg; break;
		case O_FUND:
			if (parse_fund(&o, optarg))
				return EXIT_USAGE;
			break;
		case O_LISTEN: o.listen = optarg; break;
		case O_INTERVAL:
			if (parse_u64(optarg, &o.interval_s, "--interval"))
				return EXIT_USAGE;
			break;
		case O_LIVENESS:
			if (parse_u64(optarg, &o.liveness_window, "--liveness-window"))
				return EXIT_USAGE;
			if (o.liveness_window > PARAMS_LIVENESS_MAX)
				return usage_error("node init", "--liveness-window must be 0..%u",
						   PARAMS_LIVENESS_MAX);
			o.liveness_given = true;
			break;
		case O_DOMAIN: o.domain_type = optarg; break;
		case O_NET: o.network = optarg; break;
		case O_IMG: o.image_dir = optarg; break;
		case O_TLS: o.tls = true; break;
		case O_VALS:
			if (parse_u64(optarg, &o.validators, "--validators"))
				return EXIT_USAGE;
			if (o.validators < 1 || o.validators > DEV_NODES_MAX)
				return usage_error("node init", "--validators must be 1..%d",
						   DEV_NODES_MAX);
			break;
		case O_FULL:
			if (parse_u64(optarg, &o.full_nodes, "--full-nodes"))
				return EXIT_USAGE;
			full_given = true;
			break;
		case O_PEERPORT:
			if (parse_u64(optarg, &o.peer_port, "--peer-port"))
				return EXIT_USAGE;
			port_given = true;
			break;
		case O_JOIN: o.join = optarg; break;
		case O_PEER:
			if (o.npeers == JOIN_PEERS_MAX)
				return usage_error("node init", "at most %d --peer", JOIN_PEERS_MAX);
			if (check_peer(optarg))
				return EXIT_USAGE;
			o.peers[o.npeers++] = optarg;
			break;
		case O_DIR: o.dir = optarg; break;
		case O_PEERLISTEN: o.peer_listen = optarg; break;
		default:
			return bad_option("node init", c, argv);
		}
	}
	if (co.help)
		return cmd_help(&doc_node_init);
	if (optind != argc)
		return usage_error("node init", "unexpected argument '%s'", argv[optind]);
	if (o.production && (o.dir || o.validators || full_given || port_given || o.tls))
		return usage_error("node init", "--production writes /etc/tally and /var/lib/tally: "
				   "not with --dev, --dir, --validators, --full-nodes, --peer-port "
				   "or --tls (a production API names its certificate in [api] "
				   "tls_cert and tls_key)");
	if (o.join && o.liveness_given)
		return usage_error("node init", "--liveness-window is a new chain's rule: a joining"
				   " node takes the network's genesis as it is");
	if (o.production && !o.join && !o.chain_id)
		return usage_error("node init", "--production needs --chain-id ID for a new "
				   "network, or --join GENESIS.json");
	if (!o.dir && !o.production)
		return usage_error("node init", o.join ? "--dir DIR is required with --join"
						       : "--dev DIR, --production or --join is required");
	if (o.join && !o.npeers)
		return usage_error("node init", "--join needs at least one --peer [KEY@]HOST:PORT");
	if (!o.join && (o.npeers || o.peer_listen))
		return usage_error("node init", "--peer and --peer-listen go with --join");
	if ((full_given || port_given) && !o.validators)
		return usage_error("node init", "--full-nodes and --peer-port go with --validators");
	if (o.join && o.validators)
		return usage_error("node init", "--join and --validators do not mix");
	if (o.validators + o.full_nodes > DEV_NODES_MAX)
		return usage_error("node init", "a devnet has at most %d nodes", DEV_NODES_MAX);
	/* A chain id of its own, so that two devnets are two chains by name as
	 * well as by genesis hash. */
	static char unique_id[32];
	if (!o.chain_id) {
		uint8_t r[4];
		char hex[9];

		if (getrandom(r, sizeof(r), 0) != sizeof(r))
			return err("cannot draw a random chain id"), EXIT_USAGE;
		hex_encode(r, sizeof(r), hex);
		snprintf(unique_id, sizeof(unique_id), "tally-dev-%s", hex);
		o.chain_id = unique_id;
	}
	if (chain_id_valid(o.chain_id) != 0)
		return usage_error("node init", "chain id '%s' must be 1..%d characters of "
				   "[a-z0-9._-]", o.chain_id, CHAIN_ID_MAX);
	if (o.interval_s < 1 || o.interval_s > 3600)
		return usage_error("node init", "--interval must be 1..3600 seconds");
	if (check_choice("--domain-type", o.domain_type, domains) ||
	    check_choice("--network", o.network, networks))
		return EXIT_USAGE;
	char lhost[128];
	uint64_t lport;
	if (strpbrk(o.listen, "/ \t@") || split_listen(o.listen, lhost, sizeof(lhost), &lport))
		return usage_error("node init", "--listen '%s' is not HOST:PORT (a port of "
				   "1..65535)", o.listen);
	char imgdir[PATH_MAX];
	if (o.image_dir) {
		if (!realpath(o.image_dir, imgdir)) {
			err("--image-dir %s: %s", o.image_dir, strerror(errno));
			return EXIT_USAGE;
		}
		o.image_dir = imgdir;
	}
	if (o.production)
		return do_init_production(&o, &co);
	if (o.join)
		return do_init_join(&o, &co);
	return o.validators ? do_init_devnet(&o, &co) : do_init(&o, &co);
}

/* --- node top ------------------------------------------------------------ */

static volatile sig_atomic_t stop;

static void on_sigint(int sig)
{
	(void)sig;
	stop = 1;
}

/* A share the node computed (% of one host CPU), or "-" while it has
 * read the VM only once. */
static void share_text(json_t *vm, const char *key, char out[16])
{
	json_t *v = json_object_get(vm, key);

	if (json_is_number(v))
		snprintf(out, 16, "%.1f", json_number_value(v));
	else
		snprintf(out, 16, "-");
}

/* One screen of the node's answer: CPU and run delay as shares of one host
 * CPU, as the node computed them (daemon/meter/rate.c); memory. */
static void show_top(json_t *vms)
{
	size_t i;
	json_t *vm;

	printf("%-16s %-24s %5s %8s %8s %10s %10s\n", "LEASE", "DOMAIN", "VCPU",
	       "CPU%", "DELAY%", "MEM MiB", "PEAK MiB");
	json_array_foreach(vms, i, vm) {
		char cpu[16], delay[16];

		share_text(vm, "cpu_pct", cpu);
		share_text(vm, "run_delay_pct", delay);
		printf("%-16.16s %-24.24s %5" PRIu64 " %8s %8s %10" PRIu64 " %10" PRIu64 "\n",
		       jget_str(vm, "lease"), jget_str(vm, "domain"), jget_u64(vm, "vcpus"),
		       cpu, delay, jget_u64(vm, "mem_bytes") >> 20,
		       jget_u64(vm, "mem_peak_bytes") >> 20);
	}
	if (json_array_size(vms) == 0)
		printf("(no VMs)\n");
}

static const struct opt_doc top_opts[] = {
	{ "once", 'o', NULL, "print one screen and exit", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_node_top = {
	.name = "node top",
	.synopsis = "[--once] [--node URL] [--json]",
	.summary = "live CPU, run delay and memory of the node's VMs",
	.description =
		"The node's VMs from GET /v1/node/vms: CPU use (% of one host CPU), vCPU\n"
		"run-queue delay (%), memory and peak memory. The node computes the shares\n"
		"over its last second or two of readings. Refreshes every second until\n"
		"Ctrl-C; --once prints one screen (the node's second reading, a second\n"
		"after the first). With --json, the node's answer as it is.",
	.opts = top_opts,
};

int cmd_node_top(int argc, char **argv)
{
	struct optable ot;
	struct common co;
	struct client cl;
	bool once = false, first = true;
	int c, rc = EXIT_OK;

	cmd_optable(&ot, &doc_node_top, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		if (c == 'o')
			once = true;
		else
			return bad_option("node top", c, argv);
	}
	if (co.help)
		return cmd_help(&doc_node_top);
	if (optind != argc)
		return usage_error("node top", "unexpected argument '%s'", argv[optind]);
	if (client_init(&cl, co.node)) {
		err("%s", cl.err);
		return EXIT_USAGE;
	}
	signal(SIGINT, on_sigint);
	while (!stop) {
		json_t *j;
		enum client_rc crc = client_get(&cl, "/v1/node/vms", &j);

		if (crc) {
			rc = client_fail(&cl, crc);
			break;
		}
		json_t *vms = json_object_get(j, "vms");
		if (!json_is_array(vms)) {
			err("node at %s answered /v1/node/vms without a \"vms\" list", cl.base);
			json_decref(j);
			rc = EXIT_USAGE;
			break;
		}
		/* The node's shares need two of its readings: --once shows its
		 * second, a second after the first. */
		if (!(once && first)) {
			if (co.json) {
				print_json(json_incref(j));
			} else {
				if (!once && isatty(STDOUT_FILENO))
					printf("\033[H\033[2J");
				show_top(vms);
				if (json_is_true(json_object_get(j, "no_vms")))
					printf("(the node runs with --no-vms: it runs no VMs at all)\n");
			}
			fflush(stdout);
		}
		json_decref(j);
		if (once && !first)
			break;
		first = false;
		sleep(1);
	}
	client_free(&cl);
	return rc;
}
